/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the daemon's batch discipline (daemon/node.c) on a real SQLite file and
 * real ZeroMQ sockets: an answer deferred until its batch commits is sent only if the
 * transaction that holds its change is the one that commits. SQLite may roll back a
 * whole transaction on its own (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM); made to
 * happen here with max_page_count, SQLite's own "database is full". Also: a read that
 * SQLite breaks off part way (an auditor's query of the log, the list of case reviews) is
 * an error, never a shorter answer given as the whole one. */
#include "unit.h"

#include <zmq.h>

#include <sodium.h>

#include "audit.h"
#include "auditor.h"
#include "breaker.h"
#include "checkpoint.h"
#include "clinical.h"
#include "control.h"
#include "control.pb-c.h"
#include "delivery.h"
#include "keys.h"
#include "loop.h"
#include "receipt.h"
#include "wire.pb-c.h"
#include "node.h"
#include "store.h"
#include "waits.h"
#include "witness.h"

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
    free(f->n.outgoing);
    free(f->n.held);
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


static bool stored(fixture_t *f, const char *key)
{
    uint8_t val[64];
    size_t len = 0;
    return store_meta_get(f->n.store, key, val, sizeof val, &len) == 0;
}

/* Makes SQLite lose the open transaction, as it does on a full disk: the database may
 * not grow, so an operation that needs new pages fails with SQLITE_FULL and SQLite rolls
 * back the whole transaction. The limit is lifted again afterwards. */
static void lose_transaction(fixture_t *f)
{
    sqlite3 *db = store_db(f->n.store);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %d", sqlite3_column_int(st, 0));
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_false(operation(f, "big", 200000, "never sent", 8)); /* needs pages: full */
    assert_true(sqlite3_get_autocommit(db));                     /* SQLite rolled it all back */
    assert_int_equal(sqlite3_exec(db, "PRAGMA max_page_count = 1000000", NULL, NULL, NULL), SQLITE_OK);
}

/* The next answer on the client's side is a control Response to request id with code;
 * its error message is checked to hold `error` (NULL: not checked). */
static void expect_answer(fixture_t *f, uint64_t id, Liaison__Control__Code code, const char *error)
{
    uint8_t buf[2048];
    int n = zmq_recv(f->dealer, buf, sizeof buf, ZMQ_DONTWAIT);
    assert_true(n > 0);
    Liaison__Control__Response *r = liaison__control__response__unpack(NULL, (size_t)n, buf);
    assert_non_null(r);
    assert_int_equal(r->request_id, id);
    assert_int_equal(r->code, code);
    if (error)
        assert_non_null(strstr(r->error, error));
    liaison__control__response__free_unpacked(r, NULL);
}

/* Request id's answer was withdrawn: its change was never saved. */
static void expect_withdrawn(fixture_t *f, uint64_t id)
{
    expect_answer(f, id, LIAISON__CONTROL__CODE__INTERNAL, "nothing was done");
}

/* A wait by uid 1000 for message msgid (request id 11), as control.c keeps it. */
static wait_t a_wait(fixture_t *f, const uint8_t *msgid, uint64_t deadline_ms)
{
    wait_t w = {.sock = f->router, .rid_len = f->rid_len, .request_id = 11, .uid = 1000, .deadline_ms = deadline_ms};
    memcpy(w.rid, f->rid, f->rid_len);
    if (msgid)
        memcpy(w.msgid, msgid, sizeof w.msgid);
    else
        randombytes_buf(w.msgid, sizeof w.msgid);
    return w;
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
    assert_true(operation(f, "small", 8, "answer small", 7)); /* fits in a page */
    lose_transaction(f);
    assert_false(stored(f, "small"));
    /* The batch goes on: a later operation opens a new transaction, which commits. */
    assert_true(operation(f, "later", 8, "answer later", 9));
    assert_true(node_commit(&f->n));
    /* "small" was never saved: its requester is told so, not that it was. */
    expect_withdrawn(f, 7);
    expect_frame(f, "answer later");
    assert_int_equal(zmq_recv(f->dealer, (char[8]){0}, 8, ZMQ_DONTWAIT), -1);
    assert_false(stored(f, "small"));
    assert_true(stored(f, "later"));
}

/* Holds an answer to wait w in the open transaction, as control.c does for a wait it
 * answers inside a batch. */
static void hold_wait_answer(fixture_t *f, const wait_t *w)
{
    char *held = strdup("the answer read inside the transaction");
    assert_non_null(held);
    size_t before = f->n.n_deferred;
    assert_int_equal(node_defer_wait(&f->n, (uint8_t *)held, strlen(held), w), 0);
    assert_int_equal(f->n.n_deferred, before + 1);
    assert_non_null(f->n.deferred[before].wait);
}

/* A wait's answer held by a transaction that rolls back is not withdrawn with an error
 * but worked out again afterwards (control_wait_again): here about a message that does
 * not exist, so the new answer is NOT_FOUND; the old one, never sent, said otherwise. */
static void test_wait_answer_of_a_rolled_back_transaction_is_worked_out_again(void **state)
{
    fixture_t *f = *state;
    assert_true(operation(f, "small", 8, "answer small", 7));
    wait_t w = a_wait(f, NULL, 0);
    hold_wait_answer(f, &w);
    lose_transaction(f);
    node_commit(&f->n); /* the transaction they were held for is gone: nothing of it commits */
    expect_withdrawn(f, 7);
    expect_answer(f, 11, LIAISON__CONTROL__CODE__NOT_FOUND, NULL);
    assert_int_equal(zmq_recv(f->dealer, (char[8]){0}, 8, ZMQ_DONTWAIT), -1);
    assert_int_equal(f->n.n_deferred, 0);
}

/* The same, when the commit of a later transaction of the batch leaves a new one open:
 * delivery_after_commit queues a first transmission whose peer went away meanwhile
 * (an independent review found that the wait asked again then held its answer in the
 * array node_commit was walking: a loop without end, and a use after free once the
 * array grew). The new answer is held for the transaction now open, and sent with it. */
static void test_wait_asked_again_while_a_new_transaction_is_open(void **state)
{
    fixture_t *f = *state;
    assert_true(operation(f, "small", 8, "answer small", 7));
    wait_t w = a_wait(f, NULL, 0);
    hold_wait_answer(f, &w);
    lose_transaction(f);
    assert_true(operation(f, "later", 8, "answer later", 9)); /* a second transaction, which commits */
    /* A message sent in it to a peer connected then, gone before the commit. */
    peer_t *p = calloc(1, sizeof *p);
    assert_non_null(p);
    snprintf(p->card.id, sizeof p->card.id, "bob");
    p->connected = true;
    p->dealer = zmq_socket(f->zctx, ZMQ_DEALER); /* never connected: not used once p is gone */
    assert_non_null(p->dealer);
    peer_t *peers[1] = {p};
    f->n.dir.peers = peers;
    f->n.dir.n = f->n.dir.cap = 1;
    const char *to[] = {"bob"};
    bool direct[1] = {false};
    uint8_t id[LIAISON_MSGID_BYTES] = {1};
    delivery_direct(&f->n, id, (const uint8_t *)"env", 3, to, 1, 0, direct);
    assert_true(direct[0]);
    p->connected = false;
    assert_true(node_commit(&f->n));
    assert_true(store_in_txn(f->n.store)); /* opened to queue the transmission */
    expect_withdrawn(f, 7);
    expect_frame(f, "answer later");
    assert_int_equal(zmq_recv(f->dealer, (char[8]){0}, 8, ZMQ_DONTWAIT), -1);
    assert_int_equal(f->n.n_deferred, 1); /* the wait's new answer, for that transaction */
    assert_true(node_commit(&f->n));
    expect_answer(f, 11, LIAISON__CONTROL__CODE__NOT_FOUND, NULL);
    assert_int_equal(zmq_recv(f->dealer, (char[8]){0}, 8, ZMQ_DONTWAIT), -1);
    f->n.dir.peers = NULL;
    f->n.dir.n = f->n.dir.cap = 0;
    zmq_close(p->dealer);
    free(p);
}

/* A message node "a" sent to bob at time at, its delivery queued (due at), committed. */
static store_msg_t sent_to_bob(fixture_t *f, uint64_t at)
{
    store_msg_t m = {.outgoing = true, .content_type = 1, .created_ms = at, .stored_ms = at};
    randombytes_buf(m.id, sizeof m.id);
    randombytes_buf(m.envelope_hash, sizeof m.envelope_hash);
    snprintf(m.sender, sizeof m.sender, "a");
    snprintf(m.recipients, sizeof m.recipients, "a,bob");
    uint8_t env[32] = {0};
    assert_int_equal(store_op_begin(f->n.store), 0);
    assert_int_equal(store_msg_insert(f->n.store, &m, env, sizeof env), 0);
    assert_int_equal(store_delivery_add(f->n.store, m.id, "bob", at), 0);
    assert_int_equal(store_op_end(f->n.store, true), 0);
    assert_true(node_commit(&f->n));
    return m;
}

/* A wait asked again after a rollback, its message not settled there and its time not
 * up, goes back to waiting; if its user holds as many waits as one may meanwhile, it is
 * refused (and audited) as a new wait would be, not answered "not settled" early. */
static void test_wait_asked_again_without_room_is_refused(void **state)
{
    fixture_t *f = *state;
    char err[256];
    f->n.audit = audit_open(f->n.store, err, sizeof err);
    assert_non_null(f->n.audit);
    f->n.waits = waits_new();
    assert_non_null(f->n.waits);
    /* A message this node sent, its delivery still queued: not settled. */
    store_msg_t m = sent_to_bob(f, 1700000000000u);
    /* Its user already holds as many waits as one may. */
    for (unsigned i = 0; i < WAITS_PER_UID_MAX; i++) {
        wait_t other = a_wait(f, NULL, UINT64_MAX / 2);
        assert_int_equal(waits_add(f->n.waits, &other), 0);
    }
    /* A wait on it, answered inside a transaction that is then lost. */
    assert_true(operation(f, "small", 8, "answer small", 7));
    wait_t w = a_wait(f, m.id, loop_mono_ms() + 30000);
    hold_wait_answer(f, &w);
    lose_transaction(f);
    node_commit(&f->n);
    expect_withdrawn(f, 7);
    /* The refusal is audited: its answer waits for that entry's commit. */
    assert_int_equal(zmq_recv(f->dealer, (char[8]){0}, 8, ZMQ_DONTWAIT), -1);
    assert_true(node_commit(&f->n));
    expect_answer(f, 11, LIAISON__CONTROL__CODE__REFUSED, "4096 waits in progress");
    assert_int_equal(waits_count(f->n.waits), WAITS_PER_UID_MAX);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(f->n.store),
                                        "SELECT count(*) FROM audit WHERE action = 'request-refused'"
                                        " AND outcome = 'refused' AND details LIKE 'wait: you have 4096 waits%'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    waits_free(f->n.waits);
    audit_close(&f->n.audit);
}

/* Stores an incoming message from sender in the open transaction and holds its receipt,
 * as delivery.c does for an envelope it accepts. */
static void hold_one(fixture_t *f, const char *sender, uint64_t i)
{
    store_msg_t m = {0};
    randombytes_buf(m.id, sizeof m.id);
    randombytes_buf(m.envelope_hash, sizeof m.envelope_hash);
    snprintf(m.sender, sizeof m.sender, "%s", sender);
    snprintf(m.recipients, sizeof m.recipients, "%s,b", sender);
    m.created_ms = m.stored_ms = 1700000000000u + i;
    m.content_type = 1;
    uint8_t env[32] = {0};
    assert_int_equal(store_op_begin(f->n.store), 0);
    assert_int_equal(store_msg_insert(f->n.store, &m, env, sizeof env), 0);
    assert_int_equal(store_op_end(f->n.store, true), 0);
    if (f->n.n_held == f->n.cap_held) {
        f->n.cap_held = f->n.cap_held ? 2 * f->n.cap_held : 64;
        f->n.held = realloc(f->n.held, f->n.cap_held * sizeof *f->n.held);
        assert_non_null(f->n.held);
    }
    held_receipt_t *h = &f->n.held[f->n.n_held++];
    memset(h, 0, sizeof *h);
    memcpy(h->r.message_id, m.id, sizeof m.id);
    memcpy(h->r.envelope_hash, m.envelope_hash, sizeof m.envelope_hash);
    snprintf(h->r.recipient, sizeof h->r.recipient, "b");
    snprintf(h->r.sender, sizeof h->r.sender, "%s", sender);
    h->r.stored_ms = m.stored_ms;
    memcpy(h->rid, f->rid, f->rid_len);
    h->rid_len = f->rid_len;
    h->txn = store_txn_id(f->n.store);
}

static void test_receipts_past_1024_from_one_sender_make_further_trees(void **state)
{
    /* PROTOCOL.md 7.1: at most 1,024 receipts to a tree; more from one sender in one
     * commit make further trees, and a last one of a single message is a receipt alone.
     * Senders are never mixed. Every receipt goes out after the commit and verifies. */
    fixture_t *f = *state;
    f->n.keys = keys_generate();
    f->n.router = f->router;
    snprintf(f->n.cfg.id, sizeof f->n.cfg.id, "b");
    for (uint64_t i = 0; i < 1027; i++)
        hold_one(f, i == 3 || i == 700 ? "c" : "a", i); /* 1,025 from a, 2 from c, interleaved */
    assert_true(node_commit(&f->n));
    size_t by_size[3] = {0}; /* batch sizes 0 (alone), 2, 1024 */
    size_t from_c = 0;
    uint8_t buf[4096];
    int len;
    while ((len = zmq_recv(f->dealer, buf, sizeof buf, ZMQ_DONTWAIT)) > 0) {
        Liaison__Wire__Frame *fr = liaison__wire__frame__unpack(NULL, (size_t)len, buf);
        assert_non_null(fr);
        assert_int_equal(fr->kind_case, LIAISON__WIRE__FRAME__KIND_RECEIPT);
        receipt_t v;
        char err[256];
        if (receipt_verify(fr->receipt.data, fr->receipt.len, f->n.keys->sign_pk, &v, err, sizeof err) != 0)
            fail_msg("%s", err);
        Liaison__Wire__Receipt *r = liaison__wire__receipt__unpack(NULL, fr->receipt.len, fr->receipt.data);
        assert_non_null(r);
        if (r->batch_size == 2) {
            assert_string_equal(v.sender, "c");
            by_size[1]++;
            from_c++;
        } else if (r->batch_size == RECEIPT_BATCH_MAX) {
            assert_string_equal(v.sender, "a");
            by_size[2]++;
        } else {
            assert_int_equal(r->batch_size, 0);
            assert_string_equal(v.sender, "a");
            by_size[0]++;
        }
        liaison__wire__receipt__free_unpacked(r, NULL);
        liaison__wire__frame__free_unpacked(fr, NULL);
    }
    assert_int_equal(by_size[2], 1024); /* a: one tree of 1,024... */
    assert_int_equal(by_size[0], 1);    /* ...and the 1,025th alone */
    assert_int_equal(by_size[1], 2);    /* c: its own tree of 2 */
    assert_int_equal(from_c, 2);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(store_db(f->n.store), "SELECT count(*) FROM receipts_issued", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1027);
    sqlite3_finalize(st);
    free(f->n.held);
    f->n.held = NULL;
    keys_destroy(&f->n.keys);
}

/* An auditor's query of the log (auditor.c reads it twice: a count, then the rows). */
static Liaison__Control__Code audit_log_query(fixture_t *f, breaker_t *b, size_t *n_entries)
{
    Liaison__Control__AuditQuery q = LIAISON__CONTROL__AUDIT_QUERY__INIT;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_AUDIT_LOG;
    rq.audit_log = &q;
    Liaison__Control__Response resp = LIAISON__CONTROL__RESPONSE__INIT;
    auditor_scratch_t *s = NULL;
    if (b)
        sqlite3_progress_handler(store_db(f->n.store), 1, break_statement, b);
    assert_false(auditor_handle(&f->n, "auditor:test", &(auditor_reply_to_t){0}, &rq, &resp, &s));
    sqlite3_progress_handler(store_db(f->n.store), 0, NULL, NULL);
    *n_entries = resp.result_case == LIAISON__CONTROL__RESPONSE__RESULT_AUDIT_ENTRIES ? resp.audit_entries->n_entries
                                                                                       : 0;
    Liaison__Control__Code code = resp.code;
    auditor_free(s);
    assert_int_equal(store_commit(f->n.store), 0); /* the query's own audit entry */
    return code;
}

static void test_audit_query_broken_off_is_an_error(void **state)
{
    fixture_t *f = *state;
    char err[256];
    f->n.audit = audit_open(f->n.store, err, sizeof err);
    assert_non_null(f->n.audit);
    assert_int_equal(store_begin(f->n.store), 0);
    for (int i = 0; i < 5; i++) {
        audit_entry_t e = {.actor = "daemon", .action = "daemon-started", .outcome = "ok", .details = "test"};
        assert_int_equal(node_audit(&f->n, &e), 0);
    }
    assert_int_equal(store_commit(f->n.store), 0);
    size_t got = 0;
    assert_int_equal(audit_log_query(f, NULL, &got), LIAISON__CONTROL__CODE__OK);
    assert_int_equal(got, 6); /* and the query's own entry */
    for (int run = 1; run <= 2; run++) { /* the count, then the rows */
        breaker_t b = {.db = store_db(f->n.store), .sql = "SELECT * FROM (SELECT seq, time_ms,", .run = run};
        assert_int_equal(audit_log_query(f, &b, &got), LIAISON__CONTROL__CODE__INTERNAL);
        assert_int_equal(b.broke, 1);
        assert_int_equal(got, 0);
    }
    audit_close(&f->n.audit);
}

static int count_review(void *ctx, const store_review_t *r)
{
    (void)r;
    (*(size_t *)ctx)++;
    return 0;
}

static void test_review_list_broken_off_is_an_error(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_begin(f->n.store), 0);
    for (int i = 0; i < 3; i++) {
        uint8_t id[LIAISON_MSGID_BYTES];
        randombytes_buf(id, sizeof id);
        assert_int_equal(store_review_open(f->n.store, id, "a", NULL, 1000 + (uint64_t)i), 0);
        assert_int_equal(store_review_add(f->n.store, id, "b", 1000 + (uint64_t)i), 0);
    }
    assert_int_equal(store_commit(f->n.store), 0);
    size_t n = 0;
    assert_int_equal(store_review_each(f->n.store, false, count_review, &n), 0);
    assert_int_equal(n, 3);
    /* The list of ids, then one review's participants. */
    const char *sql[] = {"SELECT review_id FROM reviews", "SELECT participant FROM review_participants"};
    for (size_t i = 0; i < 2; i++) {
        breaker_t b = {.db = store_db(f->n.store), .sql = sql[i], .run = 1};
        sqlite3_progress_handler(b.db, 1, break_statement, &b);
        n = 0;
        assert_int_equal(store_review_each(f->n.store, false, count_review, &n), -1);
        sqlite3_progress_handler(b.db, 0, NULL, NULL);
        assert_true(b.broke > 0);
        assert_int_equal(n, 0);
        assert_non_null(strstr(store_error(f->n.store), "interrupted"));
    }
}

/* An audit log of `entries` entries, and the checkpoint tables (witness_open). */
static void open_log(fixture_t *f, int entries)
{
    char err[256];
    f->n.audit = audit_open(f->n.store, err, sizeof err);
    assert_non_null(f->n.audit);
    assert_int_equal(store_begin(f->n.store), 0);
    for (int i = 0; i < entries; i++) {
        audit_entry_t e = {.actor = "daemon", .action = "daemon-started", .outcome = "ok", .details = "test"};
        assert_int_equal(node_audit(&f->n, &e), 0);
    }
    assert_int_equal(store_commit(f->n.store), 0);
    assert_int_equal(witness_open(&f->n, err, sizeof err), 0);
}

static void close_log(fixture_t *f)
{
    witness_close(&f->n);
    audit_close(&f->n.audit);
}

/* witness_open at start-up, with breaker b (NULL: none), as a fresh daemon does. */
static int witness_open_with(fixture_t *f, breaker_t *b, char *err, size_t errlen)
{
    witness_close(&f->n);
    f->n.cp_size = f->n.cp_time_ms = 0;
    breaker_set(store_db(f->n.store), b);
    int rc = witness_open(&f->n, err, errlen);
    breaker_set(store_db(f->n.store), NULL);
    return rc;
}

/* At start-up a log shorter than this node's latest checkpoint (truncated, or the file
 * replaced) stops the daemon; a read of the checkpoint or of the log's size that SQLite
 * breaks off is an error too, not "no checkpoint" or an unknown size that skips the check. */
static void test_witness_open_read_broken_off_is_an_error(void **state)
{
    fixture_t *f = *state;
    open_log(f, 5);
    assert_int_equal(sqlite3_exec(store_db(f->n.store),
                                  "INSERT INTO checkpoints(tree_size, time_ms, root, note) VALUES(100, 1, zeroblob(32), 'x')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    char err[256];
    assert_int_equal(witness_open_with(f, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
    const char *sql[] = {"SELECT tree_size, time_ms, note FROM checkpoints", "SELECT coalesce(max(seq), 0) FROM audit"};
    const char *want[] = {"cannot read checkpoints: interrupted", "cannot read the audit log"};
    for (size_t i = 0; i < 2; i++) {
        breaker_t b = {.db = store_db(f->n.store), .sql = sql[i]};
        err[0] = 0;
        assert_int_equal(witness_open_with(f, &b, err, sizeof err), -1);
        assert_true(b.broke > 0);
        assert_non_null(strstr(err, want[i]));
    }
    close_log(f);
}

static int count_alarm(void *ctx, const char *peer, uint64_t at_ms, const char *what)
{
    (void)peer;
    (void)at_ms;
    (void)what;
    (*(size_t *)ctx)++;
    return 0;
}

/* liaison status lists the alarms raised about peers' logs: never fewer as if all. */
static void test_witness_alarms_broken_off_is_an_error(void **state)
{
    fixture_t *f = *state;
    open_log(f, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sqlite3_exec(store_db(f->n.store),
                                      "INSERT INTO witness_alarms(peer, at_ms, what) VALUES('bob', 1, 'log shrank')",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    size_t n = 0;
    assert_int_equal(witness_alarms(&f->n, count_alarm, &n), 0);
    assert_int_equal(n, 3);
    breaker_t b = {.db = store_db(f->n.store), .sql = "SELECT peer, at_ms, what FROM witness_alarms"};
    breaker_set(b.db, &b);
    n = 0;
    assert_int_equal(witness_alarms(&f->n, count_alarm, &n), -1);
    breaker_set(b.db, NULL);
    assert_true(b.broke > 0);
    assert_int_equal(n, 0);
    close_log(f);
}

/* The size of the witnessed checkpoint of peer "bob" held here. */
static int64_t witnessed_size(fixture_t *f)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(f->n.store), "SELECT tree_size FROM witnessed WHERE peer = 'bob'", -1,
                                        &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t size = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return size;
}

/* A peer's checkpoint is accepted only as an extension of the one held (a consistency
 * proof from its size). A read of the one held that SQLite breaks off is not "nothing
 * held", which would take any checkpoint without a proof (a forked log) in its place. */
static void test_witnessed_checkpoint_unreadable_is_not_replaced(void **state)
{
    fixture_t *f = *state;
    open_log(f, 1);
    f->n.router = f->router;
    keys_t *k = unit_fixed_keys(7);
    peer_t p = {0};
    snprintf(p.card.id, sizeof p.card.id, "bob");
    memcpy(p.card.sign_pk, k->sign_pk, LIAISON_KEY_BYTES);
    checkpoint_t held = {.node_id = "bob", .size = 5, .time_ms = 1000}, fork = {.node_id = "bob", .size = 10, .time_ms = 2000};
    randombytes_buf(held.root, sizeof held.root);
    randombytes_buf(fork.root, sizeof fork.root); /* not an extension of the log held */
    char *held_note = checkpoint_sign(&held, k), *fork_note = checkpoint_sign(&fork, k);
    assert_non_null(held_note);
    assert_non_null(fork_note);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(f->n.store),
                                        "INSERT INTO witnessed(peer, tree_size, root, note, time_ms)"
                                        " VALUES('bob', 5, ?1, ?2, 1000)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(st, 1, held.root, sizeof held.root, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, held_note, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    Liaison__Wire__WitnessRequest wr = LIAISON__WIRE__WITNESS_REQUEST__INIT;
    wr.checkpoint = fork_note;
    wr.old_size = 0; /* "you hold nothing of mine": no proof */
    witness_on_request(&f->n, &p, f->rid, f->rid_len, &wr);
    assert_int_equal(witnessed_size(f), 5); /* asked for a proof from 5 */
    breaker_t b = {.db = store_db(f->n.store), .sql = "SELECT tree_size, root, note FROM witnessed"};
    breaker_set(b.db, &b);
    witness_on_request(&f->n, &p, f->rid, f->rid_len, &wr);
    breaker_set(b.db, NULL);
    assert_true(b.broke > 0);
    assert_true(node_commit(&f->n));
    assert_int_equal(witnessed_size(f), 5);
    /* One answer (the first request's); the second was left unanswered. */
    uint8_t buf[4096];
    assert_true(zmq_recv(f->dealer, buf, sizeof buf, ZMQ_DONTWAIT) > 0);
    assert_int_equal(zmq_recv(f->dealer, buf, sizeof buf, ZMQ_DONTWAIT), -1);
    free(held_note);
    free(fork_note);
    keys_destroy(&k);
    f->n.router = NULL;
    close_log(f);
}

/* An auditor's inclusion proof when the log's size cannot be read: INTERNAL, not "no
 * checkpoint has been signed yet" (NOT_FOUND). */
static void test_prove_with_log_size_unreadable_is_internal(void **state)
{
    fixture_t *f = *state;
    open_log(f, 3);
    Liaison__Control__AuditProveRequest pr = LIAISON__CONTROL__AUDIT_PROVE_REQUEST__INIT;
    pr.seq = 2;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_AUDIT_PROVE;
    rq.audit_prove = &pr;
    for (int broken = 0; broken <= 1; broken++) {
        breaker_t b = {.db = store_db(f->n.store), .sql = "SELECT coalesce(max(seq), 0) FROM audit"};
        Liaison__Control__Response resp = LIAISON__CONTROL__RESPONSE__INIT;
        auditor_scratch_t *s = NULL;
        breaker_set(b.db, broken ? &b : NULL);
        assert_false(auditor_handle(&f->n, "auditor:test", &(auditor_reply_to_t){0}, &rq, &resp, &s));
        breaker_set(b.db, NULL);
        assert_int_equal(resp.code, broken ? LIAISON__CONTROL__CODE__INTERNAL : LIAISON__CONTROL__CODE__NOT_FOUND);
        assert_true(b.broke == broken);
        auditor_free(s);
        assert_int_equal(store_commit(f->n.store), 0);
    }
    close_log(f);
}

/* The answer an auditor's connection receives (the fixture's dealer), read on the loop. */
typedef struct answer_seen {
    uint8_t buf[8192];
    int len;
} answer_seen_t;

static void on_answer(loop_t *l, void *sock, int fd, void *ctx)
{
    (void)fd;
    answer_seen_t *a = ctx;
    int n = zmq_recv(sock, a->buf, sizeof a->buf, ZMQ_DONTWAIT);
    if (n > 0) {
        a->len = n;
        loop_stop(l);
    }
}

static void on_no_answer(loop_t *l, void *ctx)
{
    (void)ctx;
    loop_stop(l);
}

static bool verify_request(fixture_t *f, uint64_t id)
{
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_AUDIT_VERIFY;
    rq.audit_verify = true;
    Liaison__Control__Response resp = LIAISON__CONTROL__RESPONSE__INIT;
    auditor_scratch_t *s = NULL;
    auditor_reply_to_t to = {.rid = f->rid, .rid_len = f->rid_len, .request_id = id};
    bool later = auditor_handle(&f->n, "auditor:test", &to, &rq, &resp, &s);
    auditor_free(s);
    return later;
}

/* An auditor's audit verify is handed to a thread of its own (auditor.h): auditor_handle
 * returns before any of it is done, and the answer reaches the auditor's connection from
 * the loop once the thread is through. A stop with verifications queued ends them
 * unanswered. (Under ./run tsan: the hand-over both ways and the stop flag.) */
static void test_audit_verify_is_answered_from_its_own_thread(void **state)
{
    fixture_t *f = *state;
    f->n.keys = keys_generate();
    open_log(f, 3);
    f->n.zctx = f->zctx;
    f->n.loop = loop_new();
    f->n.auditor = f->router;
    snprintf(f->n.paths.db_file, sizeof f->n.paths.db_file, "%s", f->path);
    assert_true(verify_request(f, 77));
    assert_non_null(f->n.audit_worker);
    answer_seen_t a = {.len = 0};
    assert_int_equal(loop_add(f->n.loop, f->dealer, 0, on_answer, &a), 0);
    assert_int_equal(loop_add_timer(f->n.loop, 20000, on_no_answer, NULL), 0);
    assert_int_equal(loop_run(f->n.loop), 0);
    assert_true(a.len > 0);
    Liaison__Control__Response *r = liaison__control__response__unpack(NULL, (size_t)a.len, a.buf);
    assert_non_null(r);
    assert_int_equal(r->request_id, 77);
    assert_int_equal(r->code, LIAISON__CONTROL__CODE__OK);
    assert_int_equal(r->result_case, LIAISON__CONTROL__RESPONSE__RESULT_AUDIT_VERIFY);
    assert_true(r->audit_verify->ok);
    assert_int_equal(r->audit_verify->entries, 4); /* three, and the auditor's query */
    liaison__control__response__free_unpacked(r, NULL);
    for (uint64_t i = 0; i < 3; i++)
        assert_true(verify_request(f, 100 + i));
    auditor_stop(&f->n);
    assert_null(f->n.audit_worker);
    loop_remove(f->n.loop, f->dealer, 0);
    loop_destroy(&f->n.loop);
    f->n.auditor = NULL;
    f->n.zctx = NULL;
    close_log(f);
    keys_destroy(&f->n.keys);
}

/* When the delivery pump runs next: a read that fails is an error, not "nothing due"
 * (queued messages would wait for an unrelated wake-up). */
static void test_next_delivery_due_unreadable_is_an_error(void **state)
{
    fixture_t *f = *state;
    uint64_t due = 7;
    assert_int_equal(store_delivery_next_due(f->n.store, &due), 0);
    assert_true(due == UINT64_MAX);
    breaker_t b = {.db = store_db(f->n.store), .sql = "SELECT min(next_attempt_ms) FROM deliveries"};
    breaker_set(b.db, &b);
    due = 7;
    assert_int_equal(store_delivery_next_due(f->n.store, &due), -1);
    breaker_set(b.db, NULL);
    assert_true(b.broke > 0);
    assert_true(due == 7);
    assert_non_null(strstr(store_error(f->n.store), "interrupted"));
}

/* A delivery whose next attempt cannot be recorded stops the pump with an error (its
 * batch's records rolled back): left due and unrecorded, the daemon's loop sent it again
 * at every turn. */
static void test_pump_attempt_unrecorded_is_an_error(void **state)
{
    fixture_t *f = *state;
    peer_t *p = calloc(1, sizeof *p);
    assert_non_null(p);
    snprintf(p->card.id, sizeof p->card.id, "bob"); /* in the directory, not connected */
    peer_t *peers[1] = {p};
    f->n.dir.peers = peers;
    f->n.dir.n = f->n.dir.cap = 1;
    f->n.cfg.retry_max_ms = 60000;
    sent_to_bob(f, 1000);
    breaker_t b = {.db = store_db(f->n.store), .sql = "UPDATE deliveries SET state = ?3"};
    breaker_set(b.db, &b);
    assert_int_equal(delivery_pump(&f->n), -1);
    breaker_set(b.db, NULL);
    assert_true(b.broke > 0);
    /* (An interrupted write makes SQLite roll back the whole transaction, as a full disk
     * does: store_error then names the rollback that found no savepoint.) */
    uint64_t due = 0;
    assert_int_equal(store_delivery_next_due(f->n.store, &due), 0);
    assert_true(due == 1000); /* still due: nothing was recorded */
    assert_int_equal(delivery_pump(&f->n), 0); /* recorded once it can be */
    assert_int_equal(store_delivery_next_due(f->n.store, &due), 0);
    assert_true(due > 1000);
    f->n.dir.peers = NULL;
    f->n.dir.n = f->n.dir.cap = 0;
    free(p);
}

/* A stored message that cannot be read is not one "no key opens" (which show and inbox
 * report, and audit, as a key problem): control_open_stored tells the two apart. */
static void test_open_stored_read_error_is_not_a_key_problem(void **state)
{
    fixture_t *f = *state;
    uint8_t id[LIAISON_MSGID_BYTES], *pt = NULL;
    size_t pt_len = 0;
    store_msg_t m;
    randombytes_buf(id, sizeof id);
    assert_int_equal(control_open_stored(&f->n, id, &m, &pt, &pt_len), 1); /* no such message */
    breaker_t b = {.db = store_db(f->n.store), .sql = "SELECT id, outgoing, sender, recipients, created_ms,"};
    breaker_set(b.db, &b);
    assert_int_equal(control_open_stored(&f->n, id, &m, &pt, &pt_len), -2);
    breaker_set(b.db, NULL);
    assert_true(b.broke > 0);
    assert_null(pt);
    assert_non_null(strstr(store_error(f->n.store), "interrupted"));
}

/* An inbound message whose check cannot read what it refers to (the acknowledged message,
 * the review) is told to come again (-2: TRY_LATER), not refused for good (-1: POLICY,
 * which the sender marks rejected), as a message about something this node lacks is. */
static void test_inbound_check_read_error_is_not_a_refusal(void **state)
{
    fixture_t *f = *state;
    payload_info_t info;
    memset(&info, 0, sizeof info);
    randombytes_buf(info.ref_id, sizeof info.ref_id);
    char *to[] = {"me"};
    char err[256];
    const struct {
        uint32_t ct;
        const uint8_t *thread;
        const char *sql;
    } cases[] = {
        {LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK, NULL, "SELECT id, outgoing, sender, recipients, created_ms,"},
        {LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW, NULL, "SELECT opened_by, opened_ms"},
        {LIAISON__WIRE__CONTENT_TYPE__CONTENT_TEXT, info.ref_id, "SELECT opened_by, opened_ms"}, /* its thread */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* No such message: refused; no such review: not yet (-3, TRY_LATER: its open may be on its way). */
        int want = cases[i].ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_TEXT             ? 0
                   : cases[i].ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW ? -3
                                                                                    : -1;
        assert_int_equal(clinical_inbound_check(&f->n, "bob", cases[i].ct, &info, cases[i].thread, to, 1, err,
                                                sizeof err),
                         want);
        breaker_t b = {.db = store_db(f->n.store), .sql = cases[i].sql};
        breaker_set(b.db, &b);
        assert_int_equal(clinical_inbound_check(&f->n, "bob", cases[i].ct, &info, cases[i].thread, to, 1, err,
                                                sizeof err),
                         -2);
        breaker_set(b.db, NULL);
        assert_true(b.broke > 0);
        assert_non_null(strstr(err, "cannot read"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_commits_every_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_of_a_rolled_back_transaction_is_withdrawn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_answer_of_a_rolled_back_transaction_is_worked_out_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wait_asked_again_while_a_new_transaction_is_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_asked_again_without_room_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipts_past_1024_from_one_sender_make_further_trees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_query_broken_off_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_list_broken_off_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_witness_open_read_broken_off_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_witness_alarms_broken_off_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_witnessed_checkpoint_unreadable_is_not_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prove_with_log_size_unreadable_is_internal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_is_answered_from_its_own_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_delivery_due_unreadable_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pump_attempt_unrecorded_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_stored_read_error_is_not_a_key_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbound_check_read_error_is_not_a_refusal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
