/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the daemon's batch discipline (daemon/node.c) on a real SQLite file and
 * real ZeroMQ sockets: an answer deferred until its batch commits is sent only if the
 * transaction that holds its change is the one that commits. SQLite may roll back a
 * whole transaction on its own (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM); made to
 * happen here with max_page_count, SQLite's own "database is full". */
#include "unit.h"

#include <zmq.h>

#include "control.pb-c.h"
#include "node.h"
#include "store.h"

typedef struct fixture {
    char dir[64];
    char path[96];
    node_t n;
    void *zctx, *router, *dealer;
    uint8_t rid[256];
    size_t rid_len;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/liaison-node-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/node.db", f->dir);
    char err[256];
    f->n.store = store_open(f->path, STORE_CREATE, err, sizeof err);
    assert_non_null(f->n.store);
    f->zctx = zmq_ctx_new();
    f->router = zmq_socket(f->zctx, ZMQ_ROUTER);
    f->dealer = zmq_socket(f->zctx, ZMQ_DEALER);
    assert_int_equal(zmq_bind(f->router, "inproc://node-test"), 0);
    assert_int_equal(zmq_connect(f->dealer, "inproc://node-test"), 0);
    /* The router learns the dealer's routing id from a first request. */
    assert_int_equal(zmq_send(f->dealer, "hi", 2, 0), 2);
    int n = zmq_recv(f->router, f->rid, sizeof f->rid, 0);
    assert_true(n > 0);
    f->rid_len = (size_t)n;
    char body[8];
    assert_int_equal(zmq_recv(f->router, body, sizeof body, 0), 2);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    zmq_close(f->dealer);
    zmq_close(f->router);
    zmq_ctx_term(f->zctx);
    free(f->n.deferred);
    store_close(&f->n.store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Writes key = len bytes inside its own savepoint, as every daemon operation does, and
 * defers the answer `answer` (request_id id). Returns whether the write succeeded. */
static bool operation(fixture_t *f, const char *key, size_t len, const char *answer, uint64_t id)
{
    uint8_t *val = calloc(1, len);
    assert_int_equal(store_op_begin(f->n.store), 0);
    bool ok = store_meta_set(f->n.store, key, val, len) == 0;
    ok = store_op_end(f->n.store, ok) == 0 && ok;
    free(val);
    if (ok) {
        char *data = strdup(answer);
        assert_int_equal(node_defer(&f->n, f->router, f->rid, f->rid_len, (uint8_t *)data, strlen(answer), true, id),
                         0);
    }
    return ok;
}

static void expect_frame(fixture_t *f, const char *bytes)
{
    char buf[1024];
    int n = zmq_recv(f->dealer, buf, sizeof buf, ZMQ_DONTWAIT);
    assert_int_equal(n, (int)strlen(bytes));
    assert_memory_equal(buf, bytes, strlen(bytes));
}

static void expect_refusal(fixture_t *f, uint64_t id)
{
    uint8_t buf[2048];
    int n = zmq_recv(f->dealer, buf, sizeof buf, ZMQ_DONTWAIT);
    assert_true(n > 0);
    Liaison__Control__Response *r = liaison__control__response__unpack(NULL, (size_t)n, buf);
    assert_non_null(r);
    assert_int_equal(r->code, LIAISON__CONTROL__CODE__INTERNAL);
    assert_int_equal(r->request_id, id);
    assert_non_null(strstr(r->error, "nothing was done"));
    liaison__control__response__free_unpacked(r, NULL);
}

static bool stored(fixture_t *f, const char *key)
{
    uint8_t val[64];
    size_t len = 0;
    return store_meta_get(f->n.store, key, val, sizeof val, &len) == 0;
}

static void test_batch_commits_every_answer(void **state)
{
    fixture_t *f = *state;
    assert_true(operation(f, "one", 8, "answer one", 1));
    assert_true(operation(f, "two", 8, "answer two", 2));
    assert_int_equal(zmq_recv(f->dealer, (char[8]){0}, 8, ZMQ_DONTWAIT), -1); /* held until the commit */
    assert_true(node_commit(&f->n));
    expect_frame(f, "answer one");
    expect_frame(f, "answer two");
    assert_true(stored(f, "one") && stored(f, "two"));
}

static void test_answer_of_a_rolled_back_transaction_is_withdrawn(void **state)
{
    fixture_t *f = *state;
    sqlite3 *db = store_db(f->n.store);
    /* The database may not grow: the next write that needs a new page fails with
     * SQLITE_FULL, and SQLite rolls back the whole transaction. */
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int pages = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %d", pages);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);

    assert_true(operation(f, "small", 8, "answer small", 7));      /* fits in a page */
    assert_false(operation(f, "big", 200000, "never sent", 8));     /* needs pages: full */
    assert_true(sqlite3_get_autocommit(db));                         /* SQLite rolled it all back */
    assert_false(stored(f, "small"));
    /* The batch goes on: a later operation opens a new transaction, which commits. */
    assert_int_equal(sqlite3_exec(db, "PRAGMA max_page_count = 1000000", NULL, NULL, NULL), SQLITE_OK);
    assert_true(operation(f, "later", 8, "answer later", 9));
    assert_true(node_commit(&f->n));
    /* "small" was never saved: its requester is told so, not that it was. */
    expect_refusal(f, 7);
    expect_frame(f, "answer later");
    assert_int_equal(zmq_recv(f->dealer, (char[8]){0}, 8, ZMQ_DONTWAIT), -1);
    assert_false(stored(f, "small"));
    assert_true(stored(f, "later"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_commits_every_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_of_a_rolled_back_transaction_is_withdrawn, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
