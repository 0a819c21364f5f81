/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the zmq_poll-based event loop: watched sockets, timers, deadline, hooks. */
#include "loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define LOOP_MAX_TIMERS 8

typedef struct watch {
    void *sock;
    int fd;
    loop_io_fn fn;
    void *ctx;
    bool removed;
} watch_t;

typedef struct timer {
    uint32_t period_ms;
    uint64_t due_ms;
    loop_fn fn;
    void *ctx;
} timer_t_;

struct loop {
    watch_t *w;
    zmq_pollitem_t *items;
    size_t n, cap;
    bool dirty;             /* a watch was removed during dispatch */
    timer_t_ timers[LOOP_MAX_TIMERS];
    size_t n_timers;
    uint64_t wake_ms;
    loop_fn before_sleep;
    void *before_ctx;
    bool stop;
};

uint64_t loop_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

loop_t *loop_new(void)
{
    loop_t *l = calloc(1, sizeof *l);
    if (l)
        l->wake_ms = UINT64_MAX;
    return l;
}

void loop_destroy(loop_t **lp)
{
    loop_t *l = lp ? *lp : NULL;
    if (!l)
        return;
    free(l->w);
    free(l->items);
    free(l);
    *lp = NULL;
}

int loop_add(loop_t *l, void *sock, int fd, loop_io_fn fn, void *ctx)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        watch_t *w = realloc(l->w, cap * sizeof *w);
        if (!w)
            return -1;
        l->w = w;
        zmq_pollitem_t *it = realloc(l->items, cap * sizeof *it);
        if (!it)
            return -1;
        l->items = it;
        l->cap = cap;
    }
    l->w[l->n] = (watch_t){.sock = sock, .fd = fd, .fn = fn, .ctx = ctx};
    l->n++;
    return 0;
}

void loop_remove(loop_t *l, void *sock, int fd)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!l->w[i].removed && l->w[i].sock == sock && (sock || l->w[i].fd == fd)) {
            l->w[i].removed = true;
            l->dirty = true;
        }
    }
}

static void compact(loop_t *l)
{
    size_t j = 0;
    for (size_t i = 0; i < l->n; i++)
        if (!l->w[i].removed)
            l->w[j++] = l->w[i];
    l->n = j;
    l->dirty = false;
}

int loop_add_timer(loop_t *l, uint32_t period_ms, loop_fn fn, void *ctx)
{
    if (l->n_timers == LOOP_MAX_TIMERS)
        return -1;
    l->timers[l->n_timers++] = (timer_t_){period_ms, loop_mono_ms() + period_ms, fn, ctx};
    return 0;
}

void loop_wake_at(loop_t *l, uint64_t at_ms)
{
    if (at_ms < l->wake_ms)
        l->wake_ms = at_ms;
}

void loop_set_before_sleep(loop_t *l, loop_fn fn, void *ctx)
{
    l->before_sleep = fn;
    l->before_ctx = ctx;
}

void loop_stop(loop_t *l) { l->stop = true; }

int loop_run(loop_t *l)
{
    while (!l->stop) {
        l->wake_ms = UINT64_MAX;
        if (l->before_sleep)
            l->before_sleep(l, l->before_ctx);
        if (l->stop)
            break;
        if (l->dirty)
            compact(l);
        uint64_t now = loop_mono_ms();
        uint64_t next = l->wake_ms;
        for (size_t i = 0; i < l->n_timers; i++)
            if (l->timers[i].due_ms < next)
                next = l->timers[i].due_ms;
        long timeout = next == UINT64_MAX ? -1 : next <= now ? 0 : (long)(next - now);
        for (size_t i = 0; i < l->n; i++)
            l->items[i] = (zmq_pollitem_t){.socket = l->w[i].sock, .fd = l->w[i].fd, .events = ZMQ_POLLIN};
        size_t n = l->n;
        int rc = zmq_poll(l->items, (int)n, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (size_t i = 0; i < n && !l->stop; i++) {
            if ((l->items[i].revents & ZMQ_POLLIN) && !l->w[i].removed)
                l->w[i].fn(l, l->w[i].sock, l->w[i].fd, l->w[i].ctx);
        }
        now = loop_mono_ms();
        for (size_t i = 0; i < l->n_timers && !l->stop; i++) {
            timer_t_ *t = &l->timers[i];
            if (t->due_ms <= now) {
                t->due_ms = now + t->period_ms;
                t->fn(l, t->ctx);
            }
        }
    }
    return 0;
}
