/* SPDX-License-Identifier: Apache-2.0 */
#include "verifier.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* Answers handled per wake-up before the loop gets to commit. */
#define VERIFIER_BATCH 512

struct verifier {
    void *loop_side;            /* PAIR, bound: jobs out, verdicts in (loop thread only) */
    void *worker_side;          /* PAIR, connected: used by the worker thread only */
    pthread_t thread;
    bool running;
    loop_t *loop;
    verifier_done_fn done;
    void *ctx;
    size_t pending;             /* jobs handed over and not yet answered (loop thread) */
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

static void *worker(void *arg)
{
    verifier_t *v = arg;
    pthread_setname_np(pthread_self(), "liaisond-verify"); /* top -H, ps -L (15 characters) */
    receipt_cache_t cache = {0}; /* this thread's own (receipt.h): the receipts of a batch arrive together */
    for (;;) {
        void *p = NULL;
        int rc = recv_ptr(v->worker_side, &p, 0);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0 || !p)
            break;
        verify_job_t *j = p;
        j->ok = receipt_verify_cached(j->bytes, j->len, j->sign_pk, &cache, &j->r, j->err, sizeof j->err) == 0;
        if (send_ptr(v->worker_side, j, 0) != 0) {
            free(j);
            break;
        }
    }
    return NULL;
}

static void on_answers(loop_t *l, void *sock, int fd, void *ctx)
{
    (void)l;
    (void)fd;
    verifier_t *v = ctx;
    for (int i = 0; i < VERIFIER_BATCH; i++) {
        void *p = NULL;
        if (recv_ptr(sock, &p, ZMQ_DONTWAIT) != 1 || !p)
            return;
        v->pending--;
        v->done(v->ctx, p);
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

int verifier_start(verifier_t **out, void *zctx, loop_t *l, verifier_done_fn done, void *ctx, char *err,
                   size_t errlen)
{
    *out = NULL;
    verifier_t *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "receipt verifier: out of memory");
        return -1;
    }
    v->loop = l;
    v->done = done;
    v->ctx = ctx;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://liaison-verifier-%p", (void *)v);
    if (!(v->loop_side = pair_socket(zctx)) || zmq_bind(v->loop_side, ep) != 0 ||
        !(v->worker_side = pair_socket(zctx)) || zmq_connect(v->worker_side, ep) != 0) {
        snprintf(err, errlen, "receipt verifier: %s", zmq_strerror(zmq_errno()));
        goto bad;
    }
    if (loop_add(l, v->loop_side, 0, on_answers, v) != 0) {
        snprintf(err, errlen, "receipt verifier: out of memory");
        goto bad;
    }
    int rc = pthread_create(&v->thread, NULL, worker, v);
    if (rc != 0) {
        loop_remove(l, v->loop_side, 0);
        snprintf(err, errlen, "receipt verifier: cannot start its thread: %s", strerror(rc));
        goto bad;
    }
    v->running = true;
    *out = v;
    return 0;
bad:
    if (v->worker_side)
        zmq_close(v->worker_side);
    if (v->loop_side)
        zmq_close(v->loop_side);
    free(v);
    return -1;
}

int verifier_submit(verifier_t *v, const char *peer, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                    const uint8_t *bytes, size_t len)
{
    if (!v || strlen(peer) > LIAISON_MAX_ID || len < 1 || len > LIAISON_MAX_RECEIPT)
        return -1;
    verify_job_t *j = malloc(sizeof *j + len);
    if (!j)
        return -1;
    memset(j, 0, sizeof *j);
    memcpy(j->peer, peer, strlen(peer) + 1);
    memcpy(j->sign_pk, sign_pk, LIAISON_KEY_BYTES);
    j->len = len;
    memcpy(j->bytes, bytes, len);
    if (send_ptr(v->loop_side, j, ZMQ_DONTWAIT) != 0) {
        free(j);
        return -1;
    }
    v->pending++;
    return 0;
}

size_t verifier_pending(const verifier_t *v) { return v ? v->pending : 0; }

void verifier_stop(verifier_t **vp)
{
    verifier_t *v = *vp;
    if (!v)
        return;
    loop_remove(v->loop, v->loop_side, 0);
    if (v->running) {
        /* The stop signal queues behind the jobs already handed over; the worker answers
         * those first, then exits. */
        if (send_ptr(v->loop_side, NULL, 0) != 0) {
            /* Only if the context is going away (ETERM): the worker's receive fails the
             * same way and it exits on its own. */
            pthread_detach(v->thread);
            v->running = false;
        } else {
            pthread_join(v->thread, NULL);
        }
    }
    void *p = NULL;
    while (recv_ptr(v->loop_side, &p, ZMQ_DONTWAIT) == 1 && p)
        free(p);
    zmq_close(v->worker_side);
    zmq_close(v->loop_side);
    free(v);
    *vp = NULL;
}
