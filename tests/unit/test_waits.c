/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of daemon/waits.c: which waits are looked at after a batch (only those
 * about a touched message, none after a rollback, all once too many were touched),
 * deadlines and their order, removal by socket, and the limits. */
#include "unit.h"

#include "waits.h"

static void id_of(uint8_t id[LIAISON_MSGID_BYTES], unsigned k)
{
    memset(id, 0, LIAISON_MSGID_BYTES);
    id[0] = (uint8_t)(k >> 8);
    id[15] = (uint8_t)k;
}

static wait_t make(unsigned k, uint64_t deadline, void *sock)
{
    wait_t w = {.sock = sock, .rid_len = 5, .request_id = k, .deadline_ms = deadline};
    memcpy(w.rid, "\0abcd", 5);
    id_of(w.msgid, k);
    return w;
}

typedef struct seen {
    uint64_t ids[64];
    size_t n;
    bool answer; /* what the callback returns */
} seen_t;

static bool record(void *ctx, const wait_t *w)
{
    seen_t *s = ctx;
    if (s->n < 64)
        s->ids[s->n++] = w->request_id;
    return s->answer;
}

static bool has(const seen_t *s, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->ids[i] == id)
            return true;
    return false;
}

static void test_only_touched_messages_are_looked_at(void **state)
{
    (void)state;
    waits_t *w = waits_new();
    int sock;
    uint8_t id[LIAISON_MSGID_BYTES];
    for (unsigned k = 1; k <= 10; k++) {
        wait_t x = make(k, 1000 + k, &sock);
        assert_int_equal(waits_add(w, &x), 0);
    }
    wait_t again = make(3, 5000, &sock); /* a second wait on message 3 */
    again.request_id = 33;
    assert_int_equal(waits_add(w, &again), 0);
    id_of(id, 3);
    waits_touch(w, id);
    id_of(id, 7);
    waits_touch(w, id);
    id_of(id, 99); /* nobody waits for it */
    waits_touch(w, id);
    seen_t s = {.answer = false};
    waits_after_commit(w, true, record, &s);
    assert_int_equal(s.n, 3);
    assert_true(has(&s, 3) && has(&s, 33) && has(&s, 7));
    assert_int_equal(waits_count(w), 11); /* not answered: kept */
    /* The touched messages are forgotten after each batch. */
    s.n = 0;
    waits_after_commit(w, true, record, &s);
    assert_int_equal(s.n, 0);
    /* A rolled-back batch changed nothing: nobody is looked at. */
    id_of(id, 5);
    waits_touch(w, id);
    waits_after_commit(w, false, record, &s);
    assert_int_equal(s.n, 0);
    waits_after_commit(w, true, record, &s);
    assert_int_equal(s.n, 0);
    /* Answered waits are removed. */
    id_of(id, 3);
    waits_touch(w, id);
    s.answer = true;
    waits_after_commit(w, true, record, &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(waits_count(w), 9);
    waits_free(w);
}

static void test_touches_cost_nothing_without_waits_and_overflow_looks_at_all(void **state)
{
    (void)state;
    waits_t *w = waits_new();
    int sock;
    uint8_t id[LIAISON_MSGID_BYTES];
    id_of(id, 1);
    waits_touch(w, id); /* nobody waits yet: not remembered */
    wait_t x = make(1, 100, &sock);
    assert_int_equal(waits_add(w, &x), 0);
    seen_t s = {.answer = false};
    waits_after_commit(w, true, record, &s);
    assert_int_equal(s.n, 0);
    x = make(2, 100, &sock);
    assert_int_equal(waits_add(w, &x), 0);
    for (unsigned k = 0; k <= WAITS_TOUCH_MAX; k++) { /* one more than it remembers */
        id_of(id, 1000 + k);
        waits_touch(w, id);
    }
    waits_after_commit(w, true, record, &s);
    assert_int_equal(s.n, 2); /* both looked at, though neither message was named */
    waits_touch(NULL, id);    /* NULL-safe, as before control_start */
    waits_after_commit(NULL, true, record, &s);
    waits_free(w);
}

static void test_deadlines(void **state)
{
    (void)state;
    waits_t *w = waits_new();
    int sock;
    assert_int_equal(waits_next_deadline(w), UINT64_MAX);
    uint64_t d[] = {500, 200, 900, 200, 700};
    for (unsigned k = 0; k < 5; k++) {
        wait_t x = make(k + 1, d[k], &sock);
        assert_int_equal(waits_add(w, &x), 0);
    }
    assert_int_equal(waits_next_deadline(w), 200);
    seen_t s = {.answer = false};
    waits_expire(w, 199, record, &s);
    assert_int_equal(s.n, 0);
    waits_expire(w, 200, record, &s); /* both at 200, removed whatever the callback says */
    assert_int_equal(s.n, 2);
    assert_true(has(&s, 2) && has(&s, 4));
    assert_int_equal(waits_count(w), 3);
    assert_int_equal(waits_next_deadline(w), 500);
    waits_expire(w, 10000, record, &s);
    assert_int_equal(waits_count(w), 0);
    assert_int_equal(waits_next_deadline(w), UINT64_MAX);
    wait_t x = make(9, 42, &sock);
    assert_int_equal(waits_add(w, &x), 0);
    assert_int_equal(waits_next_deadline(w), 42);
    waits_free(w);
}

static void test_drop_socket_and_limits(void **state)
{
    (void)state;
    waits_t *w = waits_new();
    int a, b;
    for (unsigned k = 1; k <= 6; k++) {
        wait_t x = make(k, 100 * k, k % 2 ? (void *)&a : (void *)&b);
        assert_int_equal(waits_add(w, &x), 0);
    }
    seen_t s = {0};
    waits_drop_socket(w, &a, record, &s);
    assert_int_equal(s.n, 3);
    assert_true(has(&s, 1) && has(&s, 3) && has(&s, 5));
    assert_int_equal(waits_count(w), 3);
    assert_int_equal(waits_next_deadline(w), 200);
    waits_drop_socket(w, &b, NULL, NULL);
    assert_int_equal(waits_count(w), 0);
    wait_t long_rid = make(1, 1, &a);
    long_rid.rid_len = sizeof long_rid.rid + 1;
    assert_int_equal(waits_add(w, &long_rid), -1);
    /* One user may hold WAITS_PER_UID_MAX of them; others still get theirs... */
    for (unsigned k = 0; k < WAITS_PER_UID_MAX; k++) {
        wait_t x = make(k, 1, &a);
        x.uid = 1000;
        assert_int_equal(waits_add(w, &x), 0);
    }
    wait_t x = make(1, 1, &a);
    x.uid = 1000;
    assert_int_equal(waits_add(w, &x), WAITS_USER_FULL);
    /* ...up to WAITS_MAX for the node, all users together. */
    for (unsigned k = WAITS_PER_UID_MAX; k < WAITS_MAX; k++) {
        wait_t y = make(k, 1, &a);
        y.uid = 1001 + k % 5;
        assert_int_equal(waits_add(w, &y), 0);
    }
    x.uid = 2000;
    assert_int_equal(waits_add(w, &x), WAITS_FULL);
    assert_int_equal(waits_count(w), WAITS_MAX);
    waits_free(w);
    waits_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_touched_messages_are_looked_at),
        cmocka_unit_test(test_touches_cost_nothing_without_waits_and_overflow_looks_at_all),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_drop_socket_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
