/* SPDX-License-Identifier: Apache-2.0 */
/* liaison-bench: the machine's limits, measured in this process with the same
 * libraries and the same message size as the end-to-end run.
 *
 *  - libsodium, through the protocol library itself (proto/seal.h, proto/receipt.h):
 *    the sender's per-message crypto (seal: content key, key wrap for each recipient,
 *    AEAD body, Ed25519 signature; envelope hash; verification of the receipt) and the
 *    recipient's (parse, signature verification, key unwrap, AEAD open, envelope hash,
 *    receipt signature).
 *  - libzmq CURVE over loopback TCP: a DEALER streams envelope-sized frames to a ROUTER
 *    in another thread with its own context (as two daemons have), which answers each
 *    with a receipt-sized frame; pipelined. CPU per message counts both ends and their
 *    I/O threads.
 *  - SQLite with the pragmas of daemon/store.c (WAL, synchronous=FULL, foreign_keys,
 *    secure_delete): durable single-row commits per second, and the CPU cost per
 *    message of storing the envelope and the receipt in group commits of 64 messages.
 *  - receipts both alone (the latency floor: a lone message's) and in batches of 64
 *    under one signature (the bound: under load, PROTOCOL.md 7.1).
 *
 * The bound for one daemon per core: each daemon spends its crypto, half of the
 * measured CURVE transport cost, and one message's storage per message; the slower
 * side bounds the pair. The latency floor of one message: three durable commits in
 * sequence (the sender stores the send, the recipient stores the envelope, the sender
 * stores the receipt), the four signature/AEAD steps and one CURVE round trip. */
#include "bench.h"

/* Messages per group commit in the SQLite figure, and receipts per batch signature in
 * the libsodium one (a recipient signs the receipts of one commit together). */
#define BASELINE_BATCH 64u

#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "receipt.h"
#include "seal.h"
#include "wire.pb-c.h"

/* Runs fn repeatedly for about `seconds` of this thread's CPU; returns µs per call. */
typedef int (*op_fn)(void *ctx);
static double per_call_us(op_fn fn, void *ctx, double seconds)
{
    for (int i = 0; i < 3; i++)
        if (fn(ctx) != 0)
            return -1;
    uint64_t budget = (uint64_t)(seconds * 1e9), c0 = cpu_thread_ns(), n = 0;
    while (cpu_thread_ns() - c0 < budget) {
        for (int i = 0; i < 16; i++)
            if (fn(ctx) != 0)
                return -1;
        n += 16;
    }
    return (double)(cpu_thread_ns() - c0) / 1000.0 / (double)n;
}

typedef struct crypto_ctx {
    keys_t *a, *b;
    uint8_t self_a[LIAISON_KEY_BYTES], ab[LIAISON_KEY_BYTES], ba[LIAISON_KEY_BYTES];
    uint8_t *payload;
    size_t plen;
    uint8_t *env;            /* one sealed envelope, for the recipient's side */
    size_t env_len;
    uint8_t *rcpt;           /* one receipt, for the sender's side */
    size_t rcpt_len;
    receipt_t r;
    receipt_t rs[BASELINE_BATCH];   /* a batch of receipts (PROTOCOL.md 7.1) ... */
    uint8_t *batch[BASELINE_BATCH]; /* ... as the recipient signs them, for the sender's side */
    size_t batch_len[BASELINE_BATCH];
} crypto_ctx_t;

static int op_seal(void *p)
{
    crypto_ctx_t *c = p;
    seal_recipient_t rc[2] = {{"node-a", c->self_a}, {"node-b", c->ab}};
    seal_input_t in = {.sender = "node-a", .recipients = rc, .n_recipients = 2, .content_type = 1,
                       .created_ms = liaison_now_ms(), .payload = c->payload, .payload_len = c->plen};
    uint8_t id[LIAISON_MSGID_BYTES], hash[LIAISON_HASH_BYTES], *out = NULL;
    size_t len;
    char err[128];
    if (seal_envelope(c->a, &in, id, &out, &len, err, sizeof err) != 0)
        return -1;
    envelope_hash(out, len, hash);
    free(out);
    return 0;
}

static int op_open(void *p)
{
    crypto_ctx_t *c = p;
    envelope_t *e = NULL;
    int code;
    char err[128];
    uint8_t *pt = NULL, hash[LIAISON_HASH_BYTES];
    size_t pt_len;
    int rc = -1;
    if (envelope_parse(c->env, c->env_len, &e, &code, err, sizeof err) == 0 && envelope_verify(e, c->a->sign_pk) == 0 &&
        envelope_recipient_index(e, "node-b") >= 0 && envelope_open(e, "node-b", c->ba, &pt, &pt_len) == 0) {
        envelope_hash(c->env, c->env_len, hash);
        rc = 0;
    }
    if (pt) {
        sodium_memzero(pt, pt_len);
        free(pt);
    }
    envelope_destroy(&e);
    return rc;
}

static int op_rcpt_make(void *p)
{
    crypto_ctx_t *c = p;
    uint8_t *out = NULL;
    size_t len;
    if (receipt_make(c->b, &c->r, &out, &len) != 0)
        return -1;
    free(out);
    return 0;
}

static int op_rcpt_verify(void *p)
{
    crypto_ctx_t *c = p;
    receipt_t r;
    char err[128];
    return receipt_verify(c->rcpt, c->rcpt_len, c->b->sign_pk, &r, err, sizeof err);
}

/* One batch of BASELINE_BATCH receipts signed; the caller divides by the batch. */
static int op_rcpt_make_batch(void *p)
{
    crypto_ctx_t *c = p;
    uint8_t *outs[BASELINE_BATCH];
    size_t lens[BASELINE_BATCH];
    if (receipt_make_batch(c->b, c->rs, BASELINE_BATCH, outs, lens) != 0)
        return -1;
    for (size_t i = 0; i < BASELINE_BATCH; i++)
        free(outs[i]);
    return 0;
}

/* The receipts of one batch checked as delivery.c does (one signature verification,
 * then the cache). */
static int op_rcpt_verify_batch(void *p)
{
    crypto_ctx_t *c = p;
    receipt_cache_t cache = {0};
    receipt_t r;
    char err[128];
    for (size_t i = 0; i < BASELINE_BATCH; i++)
        if (receipt_verify_cached(c->batch[i], c->batch_len[i], c->b->sign_pk, &cache, &r, err, sizeof err) != 0)
            return -1;
    return 0;
}

static int crypto_bench(size_t size, double seconds, baseline_t *b, size_t *env_len, size_t *rcpt_len)
{
    crypto_ctx_t c = {0};
    int rc = -1;
    if (!(c.a = keys_generate()) || !(c.b = keys_generate()) || keys_pair_key(c.a, c.a->enc_pk, c.self_a) != 0 ||
        keys_pair_key(c.a, c.b->enc_pk, c.ab) != 0 || keys_pair_key(c.b, c.a->enc_pk, c.ba) != 0 ||
        !(c.payload = make_payload(size, &c.plen)))
        goto out;
    seal_recipient_t rcp[2] = {{"node-a", c.self_a}, {"node-b", c.ab}};
    seal_input_t in = {.sender = "node-a", .recipients = rcp, .n_recipients = 2, .content_type = 1,
                       .created_ms = liaison_now_ms(), .payload = c.payload, .payload_len = c.plen};
    uint8_t id[LIAISON_MSGID_BYTES];
    char err[128];
    if (seal_envelope(c.a, &in, id, &c.env, &c.env_len, err, sizeof err) != 0)
        goto out;
    c.r.stored_ms = liaison_now_ms();
    memcpy(c.r.message_id, id, sizeof id);
    envelope_hash(c.env, c.env_len, c.r.envelope_hash);
    snprintf(c.r.recipient, sizeof c.r.recipient, "node-b");
    snprintf(c.r.sender, sizeof c.r.sender, "node-a");
    if (receipt_make(c.b, &c.r, &c.rcpt, &c.rcpt_len) != 0)
        goto out;
    for (size_t i = 0; i < BASELINE_BATCH; i++) {
        c.rs[i] = c.r;
        c.rs[i].message_id[15] ^= (uint8_t)i;
    }
    if (receipt_make_batch(c.b, c.rs, BASELINE_BATCH, c.batch, c.batch_len) != 0)
        goto out;
    double q = seconds / 6;
    if ((b->seal_us = per_call_us(op_seal, &c, q)) < 0 || (b->open_us = per_call_us(op_open, &c, q)) < 0 ||
        (b->rcpt_make_us = per_call_us(op_rcpt_make, &c, q)) < 0 ||
        (b->rcpt_verify_us = per_call_us(op_rcpt_verify, &c, q)) < 0 ||
        (b->rcpt_make_batch_us = per_call_us(op_rcpt_make_batch, &c, q) / BASELINE_BATCH) < 0 ||
        (b->rcpt_verify_batch_us = per_call_us(op_rcpt_verify_batch, &c, q) / BASELINE_BATCH) < 0)
        goto out;
    /* Under load a recipient signs the receipts of each commit together (delivery.c), as
     * many as the SQLite figure below puts in a commit. */
    b->send_crypto_us = b->seal_us + b->rcpt_verify_batch_us;
    b->recv_crypto_us = b->open_us + b->rcpt_make_batch_us;
    /* On the wire each travels in a Frame (a few bytes of protobuf around it). */
    *env_len = c.env_len + 8;
    *rcpt_len = c.batch_len[0] + 8; /* under load receipts carry their batch proofs */
    rc = 0;
out:
    keys_destroy(&c.a);
    keys_destroy(&c.b);
    free(c.payload);
    free(c.env);
    free(c.rcpt);
    for (size_t i = 0; i < BASELINE_BATCH; i++)
        free(c.batch[i]);
    return rc;
}

/* ---- libzmq CURVE ---- */

typedef struct zctx {
    char endpoint[64];
    uint8_t server_pk[32], server_sk[32];
    size_t reply_len;
    _Atomic bool ready;
    _Atomic bool failed;
} zctx_t;

static void *zmq_server(void *arg)
{
    zctx_t *z = arg;
    void *ctx = zmq_ctx_new();
    void *s = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
    int one = 1, zero = 0, hwm = 100000;
    if (!s || zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, z->server_sk, 32) != 0 ||
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) != 0 || zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm) || zmq_bind(s, "tcp://127.0.0.1:*") != 0) {
        atomic_store(&z->failed, true);
        atomic_store(&z->ready, true);
        if (s)
            zmq_close(s);
        if (ctx)
            zmq_ctx_term(ctx);
        return NULL;
    }
    size_t el = sizeof z->endpoint;
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, z->endpoint, &el);
    atomic_store(&z->ready, true);
    uint8_t *reply = calloc(1, z->reply_len);
    for (;;) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&rid, s, 0) < 0 || zmq_msg_recv(&body, s, 0) < 0) {
            zmq_msg_close(&rid);
            zmq_msg_close(&body);
            break;
        }
        bool stop = zmq_msg_size(&body) == 4 && memcmp(zmq_msg_data(&body), "stop", 4) == 0;
        zmq_msg_send(&rid, s, ZMQ_SNDMORE);
        zmq_send(s, reply, z->reply_len, 0);
        zmq_msg_close(&body);
        if (stop)
            break;
    }
    free(reply);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return NULL;
}

static int zmq_bench(size_t msg_len, size_t reply_len, double seconds, baseline_t *b)
{
    zctx_t z = {.reply_len = reply_len};
    uint8_t cpk[32], csk[32];
    crypto_box_keypair(z.server_pk, z.server_sk);
    crypto_box_keypair(cpk, csk);
    pthread_t th;
    if (pthread_create(&th, NULL, zmq_server, &z) != 0)
        return -1;
    while (!atomic_load(&z.ready))
        sleep_ns(1000000u);
    if (atomic_load(&z.failed)) {
        pthread_join(th, NULL);
        return -1;
    }
    void *ctx = zmq_ctx_new();
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, hwm = 100000;
    zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, z.server_pk, 32);
    zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, cpk, 32);
    zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, csk, 32);
    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(d, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d, ZMQ_RCVHWM, &hwm, sizeof hwm);
    int rc = zmq_connect(d, z.endpoint);
    uint8_t *msg = calloc(1, msg_len ? msg_len : 1), *in = malloc(reply_len + 64);
    if (!msg || !in)
        rc = -1;
    else
        randombytes_buf(msg, msg_len);
    /* Handshake and warm-up: one round trip; then the round-trip time, one at a time. */
    if (rc == 0) {
        zmq_send(d, msg, msg_len, 0);
        zmq_recv(d, in, reply_len + 64, 0);
    }
    uint64_t rtt0 = now_ns();
    int rtts = 0;
    while (rc == 0 && rtts < 2000 && now_ns() - rtt0 < 500000000u) {
        if (zmq_send(d, msg, msg_len, 0) < 0 || zmq_recv(d, in, reply_len + 64, 0) < 0)
            rc = -1;
        rtts++;
    }
    b->zmq_rtt_us = rtts ? (double)(now_ns() - rtt0) / 1000.0 / rtts : 0;
    const unsigned window = 1000;
    uint64_t sent = 0, got = 0, t0 = now_ns(), c0 = cpu_self_ns(), end = t0 + (uint64_t)(seconds * 1e9);
    while (rc == 0) {
        uint64_t now = now_ns();
        bool sending = now < end;
        while (sending && sent - got < window) {
            if (zmq_send(d, msg, msg_len, 0) < 0) {
                rc = -1;
                break;
            }
            sent++;
        }
        if (!sending && got == sent)
            break;
        if (zmq_recv(d, in, reply_len + 64, 0) < 0)
            rc = -1;
        else
            got++;
    }
    uint64_t t1 = now_ns(), c1 = cpu_self_ns();
    zmq_send(d, "stop", 4, 0);
    zmq_recv(d, in, in ? reply_len + 64 : 0, 0);
    pthread_join(th, NULL);
    zmq_close(d);
    zmq_ctx_term(ctx);
    free(msg);
    free(in);
    if (rc != 0 || !got)
        return -1;
    b->zmq_msgs_s = (double)got / ((double)(t1 - t0) / 1e9);
    b->zmq_cpu_us = (double)(c1 - c0) / 1000.0 / (double)got;
    return 0;
}

/* ---- SQLite ---- */

static int sql_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int sqlite_bench(const char *dir, size_t env_len, size_t rcpt_len, double seconds, baseline_t *b)
{
    char path[700];
    snprintf(path, sizeof path, "%s/baseline.db", dir);
    char wal[720], shm[720];
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    remove(path);
    remove(wal);
    remove(shm);
    sqlite3 *db = NULL;
    sqlite3_stmt *ins_env = NULL, *ins_rcpt = NULL, *begin = NULL, *commit = NULL;
    int rc = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        sql_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                     " PRAGMA recursive_triggers=ON; PRAGMA secure_delete=ON;") != 0 ||
        sql_exec(db, "CREATE TABLE env(id BLOB PRIMARY KEY, body BLOB NOT NULL) STRICT;"
                     "CREATE TABLE rcpt(id BLOB PRIMARY KEY, body BLOB NOT NULL) STRICT;") != 0 ||
        sqlite3_prepare_v3(db, "INSERT INTO env(id, body) VALUES(?1, ?2)", -1, SQLITE_PREPARE_PERSISTENT, &ins_env,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, "INSERT INTO rcpt(id, body) VALUES(?1, ?2)", -1, SQLITE_PREPARE_PERSISTENT, &ins_rcpt,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT, &begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &commit, NULL) != SQLITE_OK)
        goto out;
    uint8_t *body = malloc(env_len), *rbody = malloc(rcpt_len);
    if (!body || !rbody) {
        free(body);
        free(rbody);
        goto out;
    }
    randombytes_buf(body, env_len);
    randombytes_buf(rbody, rcpt_len);
#define STEP(st) (sqlite3_step(st) == SQLITE_DONE ? (sqlite3_reset(st), 0) : (sqlite3_reset(st), -1))
    /* (a) one durable commit per message */
    uint64_t n = 0, t0 = now_ns(), end = t0 + (uint64_t)(seconds / 2 * 1e9);
    int bad = 0;
    while (!bad && now_ns() < end) {
        uint8_t id[16];
        randombytes_buf(id, sizeof id);
        sqlite3_bind_blob(ins_env, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_blob(ins_env, 2, body, (int)env_len, SQLITE_STATIC);
        bad |= STEP(begin) | STEP(ins_env) | STEP(commit);
        n++;
    }
    b->sql_commit_s = (double)n / ((double)(now_ns() - t0) / 1e9);
    /* (b) group commit: BASELINE_BATCH messages (envelope row + receipt row) per transaction */
    n = 0;
    t0 = now_ns();
    uint64_t c0 = cpu_thread_ns();
    end = t0 + (uint64_t)(seconds / 2 * 1e9);
    while (!bad && now_ns() < end) {
        bad |= STEP(begin);
        for (unsigned i = 0; i < BASELINE_BATCH && !bad; i++) {
            uint8_t id[16];
            randombytes_buf(id, sizeof id);
            sqlite3_bind_blob(ins_env, 1, id, 16, SQLITE_STATIC);
            sqlite3_bind_blob(ins_env, 2, body, (int)env_len, SQLITE_STATIC);
            sqlite3_bind_blob(ins_rcpt, 1, id, 16, SQLITE_STATIC);
            sqlite3_bind_blob(ins_rcpt, 2, rbody, (int)rcpt_len, SQLITE_STATIC);
            bad |= STEP(ins_env) | STEP(ins_rcpt);
            n++;
        }
        bad |= STEP(commit);
    }
#undef STEP
    b->sql_row_us = (double)(cpu_thread_ns() - c0) / 1000.0 / (double)(n ? n : 1);
    b->sql_rows_s = (double)n / ((double)(now_ns() - t0) / 1e9);
    free(body);
    free(rbody);
    rc = bad ? -1 : 0;
out:
    if (rc != 0)
        note("sqlite baseline: %s", db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_finalize(ins_env);
    sqlite3_finalize(ins_rcpt);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    remove(path);
    remove(wal);
    remove(shm);
    return rc;
}

/* The figures derived from the measured ones. */
static void derive(baseline_t *b)
{
    b->sender_us = b->send_crypto_us + b->zmq_cpu_us / 2 + b->sql_row_us;
    b->recipient_us = b->recv_crypto_us + b->zmq_cpu_us / 2 + b->sql_row_us;
    double worst = b->sender_us > b->recipient_us ? b->sender_us : b->recipient_us;
    b->bound_msgs_s = worst > 0 ? 1e6 / worst : 0;
    /* The critical path of one message: the sender's commit of the send, seal, the
     * envelope over CURVE and the receipt back, the recipient's open, commit and
     * receipt signature, the sender's receipt verification and commit. */
    b->sql_commit_ms = b->sql_commit_s > 0 ? 1000.0 / b->sql_commit_s : 0;
    b->latency_floor_ms = 3 * b->sql_commit_ms +
                          (b->seal_us + b->open_us + b->rcpt_make_us + b->rcpt_verify_us + b->zmq_rtt_us) / 1000.0;
}

int baseline_run(size_t size, const char *tmp_dir, double seconds, baseline_t *b)
{
    memset(b, 0, sizeof *b);
    b->size = size;
    size_t env_len = 0, rcpt_len = 0;
    if (crypto_bench(size, seconds * 0.3, b, &env_len, &rcpt_len) != 0) {
        note("crypto baseline failed");
        return -1;
    }
    if (zmq_bench(env_len, rcpt_len, seconds * 0.4, b) != 0) {
        note("zmq baseline failed");
        return -1;
    }
    if (sqlite_bench(tmp_dir, env_len, rcpt_len, seconds * 0.3, b) != 0)
        return -1;
    derive(b);
    return 0;
}

void baseline_merge(const baseline_t *a, const baseline_t *b, baseline_t *out)
{
    baseline_t m = *a;
#define MEAN(f) m.f = (a->f + b->f) / 2
    MEAN(seal_us);
    MEAN(rcpt_verify_us);
    MEAN(open_us);
    MEAN(rcpt_make_us);
    MEAN(rcpt_verify_batch_us);
    MEAN(rcpt_make_batch_us);
    MEAN(send_crypto_us);
    MEAN(recv_crypto_us);
    MEAN(zmq_msgs_s);
    MEAN(zmq_cpu_us);
    MEAN(zmq_rtt_us);
    MEAN(sql_commit_s);
    MEAN(sql_row_us);
    MEAN(sql_rows_s);
#undef MEAN
    derive(&m);
    m.bound_before = a->bound_msgs_s;
    m.bound_after = b->bound_msgs_s;
    *out = m;
}


json_t *baseline_json(const baseline_t *b)
{
    json_t *o = json_object(), *c = json_object(), *z = json_object(), *s = json_object();
    json_object_set_new(o, "size", json_integer((json_int_t)b->size));
    json_object_set_new(c, "seal_us", num2(b->seal_us));
    json_object_set_new(c, "receipt_verify_us", num2(b->rcpt_verify_us));
    json_object_set_new(c, "open_us", num2(b->open_us));
    json_object_set_new(c, "receipt_make_us", num2(b->rcpt_make_us));
    json_object_set_new(c, "receipt_verify_batched_us", num2(b->rcpt_verify_batch_us));
    json_object_set_new(c, "receipt_make_batched_us", num2(b->rcpt_make_batch_us));
    json_object_set_new(c, "receipt_batch", json_integer(BASELINE_BATCH));
    json_object_set_new(c, "sender_us", num2(b->send_crypto_us));
    json_object_set_new(c, "recipient_us", num2(b->recv_crypto_us));
    json_object_set_new(o, "libsodium", c);
    json_object_set_new(z, "msgs_per_s", num2(b->zmq_msgs_s));
    json_object_set_new(z, "cpu_us_per_msg_both_ends", num2(b->zmq_cpu_us));
    json_object_set_new(z, "round_trip_us", num2(b->zmq_rtt_us));
    json_object_set_new(o, "zmq_curve", z);
    json_object_set_new(s, "durable_commits_per_s", num2(b->sql_commit_s));
    json_object_set_new(s, "durable_commit_ms", num2(b->sql_commit_ms));
    json_object_set_new(s, "group_commit_msgs_per_s", num2(b->sql_rows_s));
    json_object_set_new(s, "cpu_us_per_msg", num2(b->sql_row_us));
    json_object_set_new(o, "sqlite", s);
    json_object_set_new(o, "sender_us_per_msg", num2(b->sender_us));
    json_object_set_new(o, "recipient_us_per_msg", num2(b->recipient_us));
    json_object_set_new(o, "bound_msgs_per_s", num2(b->bound_msgs_s));
    if (b->bound_before > 0 && b->bound_after > 0) {
        json_object_set_new(o, "bound_before_load_msgs_per_s", num2(b->bound_before));
        json_object_set_new(o, "bound_after_load_msgs_per_s", num2(b->bound_after));
    }
    json_object_set_new(o, "latency_floor_ms", num2(b->latency_floor_ms));
    return o;
}
