/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of daemon/verifier.c: the worker thread's verdicts on good, altered and
 * wrongly keyed receipts come back on the event loop, all of them, with the bytes and
 * peer they were handed; stopping with jobs in flight loses no memory. Real libzmq
 * inproc sockets, real libsodium, a real second thread. */
#include "unit.h"

#include <zmq.h>

#include "loop.h"
#include "receipt.h"
#include "verifier.h"

#define JOBS 300

typedef struct seen {
    loop_t *loop;
    int n, good, bad;
    int order_ok;
    char last_err[160];
    verifier_t *v;
    int pending_ok;   /* verifier_pending counted down one job per verdict */
} seen_t;

static void on_done(void *ctx, const verify_job_t *j)
{
    seen_t *s = ctx;
    /* Job i was handed with peer "p<i>" and is good when i is even (see submit_all). */
    int i = atoi(j->peer + 1);
    if (j->ok) {
        s->good++;
        if (i % 2 != 0 || strcmp(j->r.recipient, "bob") != 0 || j->len < 64)
            s->order_ok = 0;
    } else {
        s->bad++;
        if (i % 2 == 0 || !j->err[0])
            s->order_ok = 0;
        snprintf(s->last_err, sizeof s->last_err, "%s", j->err);
    }
    if (s->v && verifier_pending(s->v) != (size_t)(JOBS - s->n - 1))
        s->pending_ok = 0;
    if (++s->n == JOBS)
        loop_stop(s->loop);
}

static void on_timeout(loop_t *l, void *ctx)
{
    (void)ctx;
    loop_stop(l);
}

static uint8_t *make_receipt(const keys_t *k, size_t *len)
{
    receipt_t r;
    memset(&r, 0, sizeof r);
    randombytes_buf(r.message_id, sizeof r.message_id);
    randombytes_buf(r.envelope_hash, sizeof r.envelope_hash);
    snprintf(r.recipient, sizeof r.recipient, "bob");
    snprintf(r.sender, sizeof r.sender, "alice");
    r.stored_ms = 1709210096123ull;
    uint8_t *out = NULL;
    assert_int_equal(receipt_make(k, &r, &out, len), 0);
    return out;
}

/* Even jobs: valid receipts. Odd jobs: alternately one flipped byte, or the wrong key. */
static void submit_all(verifier_t *v, const keys_t *bob, const keys_t *mallory)
{
    for (int i = 0; i < JOBS; i++) {
        size_t len = 0;
        uint8_t *bytes = make_receipt(bob, &len);
        const uint8_t *pk = bob->sign_pk;
        if (i % 4 == 1)
            bytes[len / 2] ^= 0x01;
        else if (i % 4 == 3)
            pk = mallory->sign_pk;
        char peer[16];
        snprintf(peer, sizeof peer, "p%d", i);
        assert_int_equal(verifier_submit(v, peer, pk, bytes, len), 0);
        free(bytes);
    }
}

static void test_verdicts_come_back_on_the_loop(void **state)
{
    (void)state;
    keys_t *bob = keys_generate(), *mallory = keys_generate();
    void *zctx = zmq_ctx_new();
    loop_t *l = loop_new();
    assert_non_null(zctx);
    assert_non_null(l);
    seen_t s = {.loop = l, .order_ok = 1, .pending_ok = 1};
    verifier_t *v = NULL;
    char err[200];
    assert_int_equal(verifier_start(&v, zctx, l, on_done, &s, err, sizeof err), 0);
    s.v = v;
    assert_int_equal(verifier_pending(v), 0);
    submit_all(v, bob, mallory);
    assert_int_equal(verifier_pending(v), JOBS);
    assert_int_equal(loop_add_timer(l, 20000, on_timeout, NULL), 0);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(s.n, JOBS);
    assert_true(s.pending_ok);
    assert_int_equal(verifier_pending(v), 0);
    assert_int_equal(s.good, JOBS / 2);
    assert_int_equal(s.bad, JOBS / 2);
    assert_true(s.order_ok);
    verifier_stop(&v);
    assert_null(v);
    verifier_stop(&v); /* NULL-safe */
    loop_destroy(&l);
    assert_int_equal(zmq_ctx_term(zctx), 0);
    keys_destroy(&bob);
    keys_destroy(&mallory);
}

static void test_stop_with_jobs_in_flight(void **state)
{
    (void)state;
    keys_t *bob = keys_generate(), *mallory = keys_generate();
    void *zctx = zmq_ctx_new();
    loop_t *l = loop_new();
    seen_t s = {.loop = l, .order_ok = 1};
    verifier_t *v = NULL;
    char err[200];
    assert_int_equal(verifier_start(&v, zctx, l, on_done, &s, err, sizeof err), 0);
    submit_all(v, bob, mallory);
    /* The loop never runs: every job is still queued or answered but unread. Stopping
     * must join the worker and free them all (the ASan build checks the memory). */
    verifier_stop(&v);
    assert_null(v);
    assert_int_equal(s.n, 0);
    loop_destroy(&l);
    assert_int_equal(zmq_ctx_term(zctx), 0);
    keys_destroy(&bob);
    keys_destroy(&mallory);
}

static void test_refuses_an_overlong_peer_id(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    loop_t *l = loop_new();
    seen_t s = {.loop = l};
    verifier_t *v = NULL;
    char err[200], id[LIAISON_MAX_ID + 2];
    memset(id, 'a', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    uint8_t pk[LIAISON_KEY_BYTES] = {0}, bytes[8] = {0};
    assert_int_equal(verifier_start(&v, zctx, l, on_done, &s, err, sizeof err), 0);
    assert_int_equal(verifier_submit(v, id, pk, bytes, sizeof bytes), -1);
    assert_int_equal(verifier_submit(NULL, "bob", pk, bytes, sizeof bytes), -1);
    assert_int_equal(verifier_pending(v), 0); /* refused jobs are not counted */
    assert_int_equal(verifier_pending(NULL), 0);
    verifier_stop(&v);
    loop_destroy(&l);
    assert_int_equal(zmq_ctx_term(zctx), 0);
}

static void test_refuses_a_receipt_over_the_limit(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    loop_t *l = loop_new();
    seen_t s = {.loop = l};
    verifier_t *v = NULL;
    char err[200];
    uint8_t pk[LIAISON_KEY_BYTES] = {0};
    uint8_t *big = calloc(1, LIAISON_MAX_RECEIPT + 1);
    assert_non_null(big);
    assert_int_equal(verifier_start(&v, zctx, l, on_done, &s, err, sizeof err), 0);
    /* Neither copied nor queued: the caller refuses it itself. */
    assert_int_equal(verifier_submit(v, "bob", pk, big, LIAISON_MAX_RECEIPT + 1), -1);
    assert_int_equal(verifier_submit(v, "bob", pk, big, 0), -1);
    assert_int_equal(verifier_pending(v), 0);
    /* The limit itself is still handed over (and its verdict comes back on stop). */
    assert_int_equal(verifier_submit(v, "bob", pk, big, LIAISON_MAX_RECEIPT), 0);
    assert_int_equal(verifier_pending(v), 1);
    verifier_stop(&v);
    free(big);
    loop_destroy(&l);
    assert_int_equal(zmq_ctx_term(zctx), 0);
}

static void test_queue_is_bounded(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    loop_t *l = loop_new();
    seen_t s = {.loop = l};
    verifier_t *v = NULL;
    char err[200];
    uint8_t pk[LIAISON_KEY_BYTES] = {0}, bytes[64] = {0};
    assert_int_equal(verifier_start(&v, zctx, l, on_done, &s, err, sizeof err), 0);
    /* The loop does not run, so no answer is read: every job stays pending. */
    for (unsigned i = 0; i < VERIFIER_MAX_PENDING; i++)
        assert_int_equal(verifier_submit(v, "bob", pk, bytes, sizeof bytes), 0);
    assert_int_equal(verifier_pending(v), VERIFIER_MAX_PENDING);
    /* One more is refused, not copied: the caller verifies it itself. */
    assert_int_equal(verifier_submit(v, "bob", pk, bytes, sizeof bytes), -1);
    assert_int_equal(verifier_pending(v), VERIFIER_MAX_PENDING);
    verifier_stop(&v);
    assert_int_equal(s.n, 0);
    loop_destroy(&l);
    assert_int_equal(zmq_ctx_term(zctx), 0);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts_come_back_on_the_loop),
        cmocka_unit_test(test_stop_with_jobs_in_flight),
        cmocka_unit_test(test_refuses_an_overlong_peer_id),
        cmocka_unit_test(test_refuses_a_receipt_over_the_limit),
        cmocka_unit_test(test_queue_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
