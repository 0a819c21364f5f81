/* SPDX-License-Identifier: Apache-2.0 */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* Answers handled per wake-up before the loop gets to commit. */
#define WORKER_BATCH 512

struct worker {
    void *loop_side;            /* PAIR, bound: jobs out, finished jobs in (loop thread only) */
    void *worker_side;          /* PAIR, connected: used by the worker thread only */
    pthread_t thread;
    bool running;
    loop_t *loop;
    char name[16];
    worker_run_fn run;
    void *run_ctx;
    worker_done_fn done;
    void *done_ctx;
    size_t pending;             /* jobs handed over and not yet finished (loop thread) */
};

/* A job changes threads as a pointer through an inproc PAIR: libzmq's queue orders the
 * two threads' accesses to it, but libzmq is not built with ThreadSanitizer, so under
 * ./run tsan the hand-off is declared to it (release before sending, acquire after
 * receiving). Nothing in other builds. */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define HANDOFF_RELEASE(p) __tsan_release((void *)(p))
#define HANDOFF_ACQUIRE(p) __tsan_acquire((void *)(p))
#else
#define HANDOFF_RELEASE(p) ((void)(p))
#define HANDOFF_ACQUIRE(p) ((void)(p))
#endif

static int send_ptr(void *sock, const void *p, int flags)
{
    if (p)
        HANDOFF_RELEASE(p);
    return zmq_send(sock, &p, sizeof p, flags) == (int)sizeof p ? 0 : -1;
}

/* Receives one pointer; 1 with *p set (NULL is the stop signal), 0 when none is
 * waiting (ZMQ_DONTWAIT), -1 on error. */
static int recv_ptr(void *sock, void **p, int flags)
{
    int rc = zmq_recv(sock, p, sizeof *p, flags);
    if (rc == (int)sizeof *p) {
        if (*p)
            HANDOFF_ACQUIRE(*p);
        return 1;
    }
    if (rc < 0 && errno == EAGAIN)
        return 0;
    return -1;
}

static void *thread_main(void *arg)
{
    worker_t *w = arg;
    pthread_setname_np(pthread_self(), w->name);
    for (;;) {
        void *p = NULL;
        int rc = recv_ptr(w->worker_side, &p, 0);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0 || !p)
            break;
        w->run(w->run_ctx, p);
        if (send_ptr(w->worker_side, p, 0) != 0) {
            free(p);
            break;
        }
    }
    return NULL;
}

static void on_answers(loop_t *l, void *sock, int fd, void *ctx)
{
    (void)l;
    (void)fd;
    worker_t *w = ctx;
    for (int i = 0; i < WORKER_BATCH; i++) {
        void *p = NULL;
        if (recv_ptr(sock, &p, ZMQ_DONTWAIT) != 1 || !p)
            return;
        w->pending--;
        w->done(w->done_ctx, p);
        free(p);
    }
}

static void *pair_socket(void *zctx)
{
    void *s = zmq_socket(zctx, ZMQ_PAIR);
    int zero = 0;
    if (s && (zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero) != 0 ||
              zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero) != 0 ||
              zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) != 0)) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

int worker_start(worker_t **out, void *zctx, loop_t *l, const char *name, const char *what, worker_run_fn run,
                 void *run_ctx, worker_done_fn done, void *done_ctx, char *err, size_t errlen)
{
    *out = NULL;
    worker_t *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "%s: out of memory", what);
        return -1;
    }
    w->loop = l;
    snprintf(w->name, sizeof w->name, "%s", name);
    w->run = run;
    w->run_ctx = run_ctx;
    w->done = done;
    w->done_ctx = done_ctx;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://liaison-worker-%p", (void *)w);
    if (!(w->loop_side = pair_socket(zctx)) || zmq_bind(w->loop_side, ep) != 0 ||
        !(w->worker_side = pair_socket(zctx)) || zmq_connect(w->worker_side, ep) != 0) {
        snprintf(err, errlen, "%s: %s", what, zmq_strerror(zmq_errno()));
        goto bad;
    }
    if (loop_add(l, w->loop_side, 0, on_answers, w) != 0) {
        snprintf(err, errlen, "%s: out of memory", what);
        goto bad;
    }
    int rc = pthread_create(&w->thread, NULL, thread_main, w);
    if (rc != 0) {
        loop_remove(l, w->loop_side, 0);
        snprintf(err, errlen, "%s: cannot start its thread: %s", what, strerror(rc));
        goto bad;
    }
    w->running = true;
    *out = w;
    return 0;
bad:
    if (w->worker_side)
        zmq_close(w->worker_side);
    if (w->loop_side)
        zmq_close(w->loop_side);
    free(w);
    return -1;
}

int worker_submit(worker_t *w, void *job)
{
    if (!w || !job || send_ptr(w->loop_side, job, ZMQ_DONTWAIT) != 0)
        return -1;
    w->pending++;
    return 0;
}

size_t worker_pending(const worker_t *w) { return w ? w->pending : 0; }

void worker_stop(worker_t **wp)
{
    worker_t *w = *wp;
    if (!w)
        return;
    loop_remove(w->loop, w->loop_side, 0);
    if (w->running) {
        /* The stop signal queues behind the jobs already handed over; the worker runs
         * those first, then exits. If it cannot be sent, the context is going away
         * (ETERM): the worker's own receive or send fails the same way and it exits
         * after its current job, so it is joined either way (never detached: the
         * thread reads *w until it returns). */
        while (send_ptr(w->loop_side, NULL, 0) != 0 && zmq_errno() == EINTR)
            ;
        pthread_join(w->thread, NULL);
        w->running = false;
    }
    void *p = NULL;
    while (recv_ptr(w->loop_side, &p, ZMQ_DONTWAIT) == 1 && p)
        free(p);
    zmq_close(w->worker_side);
    zmq_close(w->loop_side);
    free(w);
    *wp = NULL;
}
