/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the audit operations offered to auditors. */
#include "auditor.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_verify.h"
#include "checkpoint.h"
#include "log.h"
#include "merkle.h"
#include "patient.h"
#include "payload.h"
#include "text.h"
#include "worker.h"

#define MAX_PROOF 128

struct auditor_scratch {
    Liaison__Control__AuditEntries entries;
    Liaison__Control__AuditEntry *rows;
    Liaison__Control__AuditEntry **ptrs;
    char **strings;            /* every strdup'd text, freed together */
    size_t n_strings, cap_strings;
    uint8_t *blobs;            /* copies of message ids, tags, hashes */
    Liaison__Control__AuditProof proof;
    uint8_t *entry;
    ProtobufCBinaryData path[MAX_PROOF];
    uint8_t hashes[MAX_PROOF][LIAISON_HASH_BYTES];
    uint8_t pk[LIAISON_KEY_BYTES];
    Liaison__Control__AuditVerifyResult verify;
    Liaison__Control__AuditCheckpoint checkpoint;
    audit_report_t report;
    char error[512];
    bool oom;                  /* a keep() failed: the answer would be missing text */
    bool audited;              /* the request has its audit entry (audit_query) */
};

static char *keep(auditor_scratch_t *s, const char *text)
{
    if (s->n_strings == s->cap_strings) {
        size_t cap = s->cap_strings ? s->cap_strings * 2 : 64;
        char **p = realloc(s->strings, cap * sizeof *p);
        if (!p) {
            s->oom = true;
            return (char *)"";
        }
        s->strings = p;
        s->cap_strings = cap;
    }
    char *c = strdup(text ? text : "");
    if (!c) {
        s->oom = true;
        return (char *)"";
    }
    s->strings[s->n_strings++] = c;
    return c;
}

/* keep() for an audit entry's stored text, which goes out in a protobuf string field: an
 * entry written before audit_append cleaned its strings may hold bytes that are not UTF-8,
 * which proto3 decoders other than protobuf-c refuse (and with them the whole answer), so
 * those bytes are sent as '?' (that entry's hash then cannot be recomputed from the
 * answer; audit verify --db checks the stored bytes). */
static char *keep_text(auditor_scratch_t *s, const char *text)
{
    char *c = keep(s, text);
    if (*c && !text_valid_utf8(c, SIZE_MAX, true))
        (void)text_clean_line(c, strlen(c) + 1, c);
    return c;
}

void auditor_free(auditor_scratch_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_strings; i++)
        free(s->strings[i]);
    free(s->strings);
    free(s->rows);
    free(s->ptrs);
    free(s->blobs);
    free(s->entry);
    free(s);
}

static void fail(Liaison__Control__Response *resp, auditor_scratch_t *s, Liaison__Control__Code code, const char *msg)
{
    (void)text_clean_line(s->error, sizeof s->error, msg); /* a protobuf string: valid UTF-8 */
    resp->code = code;
    resp->error = s->error;
}

/* Records the auditor's query itself (never the patient id: only its tag). */
static void audit_query(node_t *n, auditor_scratch_t *s, const char *actor, const char *what, const uint8_t *tag,
                        const char *peer)
{
    s->audited = true;
    if (store_op_begin(n->store) != 0)
        return;
    audit_entry_t e = {.actor = actor, .action = "audit-query", .outcome = "ok", .peer = peer, .patient_tag = tag,
                       .details = what};
    store_op_end(n->store, node_audit(n, &e) == 0);
}

/* Binds what the filters of op_log use; a parameter a statement lacks is skipped. */
static void bind_query(sqlite3_stmt *st, const Liaison__Control__AuditQuery *q, const uint8_t *tag,
                       const uint8_t *fold)
{
    sqlite3_bind_int64(st, 1, (sqlite3_int64)q->since_ms);
    sqlite3_bind_int64(st, 2, q->until_ms ? (sqlite3_int64)q->until_ms : INT64_MAX);
    if (q->peer && q->peer[0])
        sqlite3_bind_text(st, 3, q->peer, -1, SQLITE_STATIC);
    if (tag)
        sqlite3_bind_blob(st, 4, tag, LIAISON_HASH_BYTES, SQLITE_STATIC);
    if (q->action && q->action[0])
        sqlite3_bind_text(st, 5, q->action, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, q->limit ? (sqlite3_int64)q->limit : -1);
    if (q->message_id.len == LIAISON_MSGID_BYTES)
        sqlite3_bind_blob(st, 7, q->message_id.data, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    if (fold)
        sqlite3_bind_blob(st, 8, fold, LIAISON_HASH_BYTES, SQLITE_STATIC);
    if (q->oldest)
        sqlite3_bind_int64(st, 9, q->after_seq > INT64_MAX ? INT64_MAX : (sqlite3_int64)q->after_seq);
}

static void op_log(node_t *n, const char *actor, const Liaison__Control__AuditQuery *q,
                   Liaison__Control__Response *resp, auditor_scratch_t *s)
{
    uint8_t tag[LIAISON_HASH_BYTES];
    bool by_patient = q->patient && q->patient[0];
    if (by_patient && !payload_valid_patient_id(q->patient)) {
        fail(resp, s, LIAISON__CONTROL__CODE__BAD_REQUEST, "patient: not a patient id (1-64 of A-Z a-z 0-9 . _ : -)");
        return;
    }
    if (q->action && q->action[0] && !audit_action_known(q->action)) {
        char list[600], msg[700];
        audit_actions_list(list, sizeof list);
        snprintf(msg, sizeof msg, "action: not an audit action (one of: %s)", list);
        fail(resp, s, LIAISON__CONTROL__CODE__BAD_REQUEST, msg);
        return;
    }
    if (q->peer && q->peer[0] && !text_valid_id(q->peer)) {
        fail(resp, s, LIAISON__CONTROL__CODE__BAD_REQUEST, "peer: not a node id");
        return;
    }
    bool by_message = q->message_id.len != 0;
    if (by_message && q->message_id.len != LIAISON_MSGID_BYTES) {
        fail(resp, s, LIAISON__CONTROL__CODE__BAD_REQUEST, "message_id: not a message id (16 bytes)");
        return;
    }
    if (by_patient)
        patient_tag(n->patient_key, q->patient, tag);
    /* A page of a long log read oldest first (AuditQuery.oldest): each page is a query,
     * audited as such with where it starts. */
    bool paged = q->oldest && q->limit > 0;
    char what[240], msg_hex[TEXT_MSGID_HEX] = "", page[48] = "";
    if (by_message)
        text_msgid_to_hex(q->message_id.data, msg_hex);
    if (paged)
        snprintf(page, sizeof page, " page after=%" PRIu64 " limit=%" PRIu32, q->after_seq, q->limit);
    snprintf(what, sizeof what, "%s since=%" PRIu64 " until=%" PRIu64 "%s%s%s%s%s%s",
             q->disclosures ? "disclosures" : "log", q->since_ms, q->until_ms, q->action && q->action[0] ? " action=" : "",
             q->action ? q->action : "", by_patient ? " patient=(tag)" : "", by_message ? " message=" : "", msg_hex,
             page);
    audit_query(n, s, actor, what, by_patient ? tag : NULL, q->peer && q->peer[0] ? q->peer : NULL);

    /* The filters, shared by the query and by the count of entries about an id that
     * differs only in letter case. The entries about a message include those of its
     * acknowledgements: their own message_id is the acknowledgement's, and the link to
     * the message they acknowledge is the ref_id column of their messages row (their
     * details "acknowledges ID" are text for people, not matched here). */
    char rest[256], where[768], sql[1024];
    const char *peer_cond = q->peer && q->peer[0] ? " AND peer = ?3" : "";
    snprintf(rest, sizeof rest, "%s%s%s", q->action && q->action[0] ? " AND action = ?5" : "",
             q->disclosures ? " AND action IN ('message-queued', 'message-delivered', 'delivery-rejected')" : "",
             by_message ? " AND (message_id = ?7 OR message_id IN (SELECT id FROM messages WHERE ref_id = ?7))" : "");
    snprintf(where, sizeof where, "time_ms >= ?1 AND time_ms <= ?2%s%s%s", peer_cond,
             by_patient ? " AND patient_tag = ?4" : "", rest);
    /* A limit keeps the newest matching entries (as inbox and outbox do: an auditor asking
     * for 50 wants the latest 50, not the node's first day), shown oldest first. A page
     * keeps the oldest after its start instead: the whole log, read page by page, is never
     * held at once (here, or in the client). */
    if (paged)
        snprintf(sql, sizeof sql,
                 "SELECT seq, time_ms, actor, action, outcome, message_id, peer, content_type, patient_tag, details,"
                 " entry_hash FROM audit WHERE seq > ?9 AND %s ORDER BY seq LIMIT ?6",
                 where);
    else
        snprintf(sql, sizeof sql,
                 "SELECT * FROM (SELECT seq, time_ms, actor, action, outcome, message_id, peer, content_type,"
                 " patient_tag, details, entry_hash FROM audit WHERE %s ORDER BY seq DESC LIMIT ?6) ORDER BY seq",
                 where);
    uint8_t fold[LIAISON_HASH_BYTES];
    int64_t variants = 0;
    /* The other spellings of the patient are counted once, with the first page. */
    if (by_patient && !(paged && q->after_seq > 0)) {
        patient_fold_tag(n->patient_key, q->patient, fold);
        snprintf(where, sizeof where, "time_ms >= ?1 AND time_ms <= ?2%s%s%s", peer_cond,
                 " AND patient_tag IN (" STORE_PATIENT_VARIANT_TAGS("?4", "?8") ")", rest);
        char count_sql[1024];
        snprintf(count_sql, sizeof count_sql, "SELECT count(*) FROM audit WHERE %s", where);
        sqlite3_stmt *cs = NULL;
        if (sqlite3_prepare_v2(store_db(n->store), count_sql, -1, &cs, NULL) != SQLITE_OK) {
            fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "cannot query the audit log");
            return;
        }
        bind_query(cs, q, tag, fold);
        variants = sqlite3_step(cs) == SQLITE_ROW ? sqlite3_column_int64(cs, 0) : -1;
        sqlite3_finalize(cs);
        if (variants < 0) {
            fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "cannot query the audit log");
            return;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(n->store), sql, -1, &st, NULL) != SQLITE_OK) {
        fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "cannot query the audit log");
        return;
    }
    bind_query(st, q, by_patient ? tag : NULL, NULL);
    /* Two passes: count, then fill arrays that no longer move. */
    size_t cnt = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cnt++;
    if (rc != SQLITE_DONE) { /* an auditor is never shown part of the log as if it were all of it */
        sqlite3_finalize(st);
        fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "cannot query the audit log");
        return;
    }
    sqlite3_reset(st);
    s->rows = calloc(cnt + 1, sizeof *s->rows);
    s->ptrs = calloc(cnt + 1, sizeof *s->ptrs);
    s->blobs = malloc((cnt + 1) * 80);
    if (!s->rows || !s->ptrs || !s->blobs) {
        sqlite3_finalize(st);
        fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "out of memory");
        return;
    }
    size_t i = 0;
    while (i < cnt && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        Liaison__Control__AuditEntry *e = &s->rows[i];
        liaison__control__audit_entry__init(e);
        uint8_t *blob = s->blobs + i * 80;
        e->seq = (uint64_t)sqlite3_column_int64(st, 0);
        e->time_ms = (uint64_t)sqlite3_column_int64(st, 1);
        e->actor = keep_text(s, (const char *)sqlite3_column_text(st, 2));
        e->action = keep_text(s, (const char *)sqlite3_column_text(st, 3));
        e->outcome = keep_text(s, (const char *)sqlite3_column_text(st, 4));
        if (sqlite3_column_bytes(st, 5) == LIAISON_MSGID_BYTES) {
            memcpy(blob, sqlite3_column_blob(st, 5), 16);
            e->message_id = (ProtobufCBinaryData){16, blob};
        }
        e->peer = keep_text(s, (const char *)sqlite3_column_text(st, 6));
        e->content_type = (uint32_t)sqlite3_column_int64(st, 7);
        if (sqlite3_column_bytes(st, 8) == LIAISON_HASH_BYTES) {
            memcpy(blob + 16, sqlite3_column_blob(st, 8), 32);
            e->patient_tag = (ProtobufCBinaryData){32, blob + 16};
        }
        e->details = keep_text(s, (const char *)sqlite3_column_text(st, 9));
        if (sqlite3_column_bytes(st, 10) == LIAISON_HASH_BYTES) {
            memcpy(blob + 48, sqlite3_column_blob(st, 10), 32);
            e->entry_hash = (ProtobufCBinaryData){32, blob + 48};
        }
        s->ptrs[i] = e;
        i++;
    }
    sqlite3_finalize(st);
    if (i < cnt && rc != SQLITE_DONE) {
        fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "cannot query the audit log");
        return;
    }
    liaison__control__audit_entries__init(&s->entries);
    s->entries.entries = s->ptrs;
    s->entries.n_entries = i;
    s->entries.node_id = n->cfg.id;
    s->entries.node_name = n->cfg.name;
    s->entries.node_role = n->cfg.role;
    s->entries.node_org = n->cfg.org;
    s->entries.patient_case_variants = (uint32_t)(variants > UINT32_MAX ? UINT32_MAX : variants);
    s->entries.rollbacks_recorded = (uint32_t)(n->rollbacks > UINT32_MAX ? UINT32_MAX : n->rollbacks);
    s->entries.last_rollback_ms = n->last_rollback_ms;
    s->entries.paged = paged;
    resp->result_case = LIAISON__CONTROL__RESPONSE__RESULT_AUDIT_ENTRIES;
    resp->audit_entries = &s->entries;
}

static void op_prove(node_t *n, const char *actor, const Liaison__Control__AuditProveRequest *q,
                     Liaison__Control__Response *resp, auditor_scratch_t *s)
{
    char what[64];
    snprintf(what, sizeof what, "prove seq=%" PRIu64, q->seq);
    audit_query(n, s, actor, what, NULL, NULL);
    int64_t size = audit_size(n->audit);
    if (size < 0) { /* not "no such entry" nor "no checkpoint yet" */
        fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "cannot read the audit log");
        return;
    }
    if (q->seq == 0 || q->seq > (uint64_t)size) {
        snprintf(s->error, sizeof s->error, "no audit entry %" PRIu64 " (the log has %" PRId64 " entries)", q->seq,
                 size);
        resp->code = LIAISON__CONTROL__CODE__NOT_FOUND;
        resp->error = s->error;
        return;
    }
    if (!n->cp_note || q->seq > n->cp_size) {
        /* When the next checkpoint comes: after checkpoint_entries more entries, or
         * checkpoint_seconds after the last one (witness.c), whichever is first. */
        uint64_t due_ms = n->cp_time_ms + (uint64_t)n->cfg.checkpoint_seconds * 1000u, now = liaison_now_ms();
        uint64_t wait_s = due_ms > now ? (due_ms - now + 999) / 1000 : 1;
        uint64_t due_size = n->cp_size + n->cfg.checkpoint_entries;
        uint64_t more = due_size > (uint64_t)size ? due_size - (uint64_t)size : 1;
        if (n->cp_note)
            snprintf(s->error, sizeof s->error,
                     "entry %" PRIu64 " is not yet covered by the latest checkpoint (%" PRIu64
                     " entries); the next one is signed within %" PRIu64 " s, or once %" PRIu64
                     " more entries are logged: try again then",
                     q->seq, n->cp_size, wait_s, more);
        else
            snprintf(s->error, sizeof s->error,
                     "no checkpoint has been signed yet; entry %" PRIu64 " can be proved after the first one", q->seq);
        resp->code = LIAISON__CONTROL__CODE__NOT_FOUND;
        resp->error = s->error;
        return;
    }
    uint64_t nl = 0;
    size_t plen = 0;
    /* Leaves are read from committed entries only; node_commit may open a new batch (a
     * transmission it could not hand over), whose entries may still roll back: then the
     * tree answers from what it covers (at least the newest checkpoint). */
    node_commit(n);
    nl = audit_tree_size(n->audit);
    if ((!store_in_txn(n->store) && audit_sync(n->audit, &nl) != 0) || nl < n->cp_size ||
        merkle_inclusion_proof_o(NULL, audit_tree(n->audit), n->cp_size, q->seq - 1, s->hashes, MAX_PROOF, &plen) != 0) {
        fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "cannot build the proof");
        return;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(n->store),
                           "SELECT seq, time_ms, actor, action, outcome, message_id, peer, content_type, patient_tag,"
                           " details FROM audit WHERE seq = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "cannot read the entry");
        return;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)q->seq);
    audit_record_t rec;
    size_t elen = 0;
    bool ok = sqlite3_step(st) == SQLITE_ROW && audit_record_from_row(st, 0, &rec) == 0 &&
              audit_encode(&rec, &s->entry, &elen) == 0;
    sqlite3_finalize(st);
    if (!ok) {
        fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "cannot read the entry");
        return;
    }
    for (size_t i = 0; i < plen; i++)
        s->path[i] = (ProtobufCBinaryData){LIAISON_HASH_BYTES, s->hashes[i]};
    memcpy(s->pk, n->keys->sign_pk, LIAISON_KEY_BYTES);
    liaison__control__audit_proof__init(&s->proof);
    s->proof.seq = q->seq;
    s->proof.entry = (ProtobufCBinaryData){elen, s->entry};
    s->proof.leaf_index = q->seq - 1;
    s->proof.checkpoint = keep(s, n->cp_note);
    s->proof.path = s->path;
    s->proof.n_path = plen;
    s->proof.sign_pk = (ProtobufCBinaryData){LIAISON_KEY_BYTES, s->pk};
    resp->result_case = LIAISON__CONTROL__RESPONSE__RESULT_AUDIT_PROOF;
    resp->audit_proof = &s->proof;
}

/* ---- audit verify, off the loop ---- */

/* Verifications handed over and not yet answered, all auditors together. */
#define VERIFY_QUEUE_MAX 8

struct auditor_worker {
    worker_t *w;
    atomic_bool stop;           /* set by auditor_stop: a verification under way ends at once */
};

/* One verification: filled by the loop, run on the worker, answered by the loop. */
typedef struct verify_run {
    char db_file[CONFIG_PATH_MAX];
    uint8_t sign_pk[LIAISON_KEY_BYTES];
    uint8_t rid[256];           /* the auditor's connection on the audit socket */
    size_t rid_len;
    uint64_t socket_gen;        /* ...of this one (node_t.auditor_gen) */
    uint64_t request_id;
    int rc;                     /* audit_verify_file's */
    audit_report_t report;
} verify_run_t;

/* On the worker thread: its own read-only connection, one read transaction. */
static void verify_run(void *ctx, void *job)
{
    struct auditor_worker *aw = ctx;
    verify_run_t *v = job;
    audit_verify_opts_t o = {.sign_pk = v->sign_pk, .cancel = &aw->stop};
    v->rc = audit_verify_file(v->db_file, &o, &v->report);
}

/* On the loop thread: the answer goes out with the batch (or at once if none is open). */
static void verify_done(void *ctx, void *job)
{
    node_t *n = ctx;
    verify_run_t *v = job;
    Liaison__Control__Response r = LIAISON__CONTROL__RESPONSE__INIT;
    Liaison__Control__AuditVerifyResult res = LIAISON__CONTROL__AUDIT_VERIFY_RESULT__INIT;
    char error[512];
    r.request_id = v->request_id;
    if (v->rc != 0) {
        (void)text_clean_line(error, sizeof error, v->report.text);
        r.code = LIAISON__CONTROL__CODE__INTERNAL;
        r.error = error;
    } else {
        res.ok = v->report.ok;
        res.report = v->report.text;
        res.entries = v->report.entries;
        res.checkpoints = v->report.checkpoints;
        r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_AUDIT_VERIFY;
        r.audit_verify = &res;
    }
    if (!n->auditor || v->socket_gen != n->auditor_gen) {
        log_warn("the answer to request %" PRIu64 " (audit verify) is dropped: the audit socket it came on was"
                 " deleted and made again meanwhile, and the auditor's connection with it",
                 v->request_id);
        return;
    }
    size_t len = liaison__control__response__get_packed_size(&r);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf)
        liaison__control__response__pack(&r, buf);
    /* It changed nothing: sent now, not held for (and withdrawn with) the open batch. */
    node_commit(n);
    if (!buf || node_defer(n, n->auditor, v->rid, v->rid_len, buf, len, true, v->request_id) != 0)
        log_err("out of memory: the answer to request %" PRIu64 " (audit verify) is lost; the client times out",
                v->request_id);
}

/* Hands the verification over; false with *resp filled when it cannot be. */
static bool op_verify(node_t *n, const char *actor, const auditor_reply_to_t *to, Liaison__Control__Response *resp,
                      auditor_scratch_t *s)
{
    if (!n->audit_worker) {
        char err[256];
        struct auditor_worker *aw = calloc(1, sizeof *aw);
        if (!aw) {
            fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "out of memory");
            return false;
        }
        atomic_init(&aw->stop, false);
        if (worker_start(&aw->w, n->zctx, n->loop, "liaisond-audit", "audit verification", verify_run, aw,
                         verify_done, n, err, sizeof err) != 0) {
            free(aw);
            fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, err);
            return false;
        }
        n->audit_worker = aw;
    }
    if (worker_pending(n->audit_worker->w) >= VERIFY_QUEUE_MAX) {
        snprintf(s->error, sizeof s->error,
                 "%d verifications of the audit log are already under way on this node: ask again when one has"
                 " answered",
                 VERIFY_QUEUE_MAX);
        resp->code = LIAISON__CONTROL__CODE__REFUSED;
        resp->error = s->error;
        return false;
    }
    verify_run_t *v = malloc(sizeof *v);
    if (!v || to->rid_len > sizeof v->rid) {
        free(v);
        fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, v ? "routing id too long" : "out of memory");
        return false;
    }
    memset(v, 0, offsetof(verify_run_t, report));
    snprintf(v->db_file, sizeof v->db_file, "%s", n->paths.db_file);
    memcpy(v->sign_pk, n->keys->sign_pk, LIAISON_KEY_BYTES);
    memcpy(v->rid, to->rid, to->rid_len);
    v->rid_len = to->rid_len;
    v->socket_gen = n->auditor_gen;
    v->request_id = to->request_id;
    /* The query is audited and committed first: the verification, which reads only what
     * is committed, covers it. */
    audit_query(n, s, actor, "verify", NULL, NULL);
    node_commit(n);
    if (worker_submit(n->audit_worker->w, v) != 0) {
        free(v);
        fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "cannot hand the verification to its thread");
        return false;
    }
    return true;
}

void auditor_stop(node_t *n)
{
    struct auditor_worker *aw = n->audit_worker;
    if (!aw)
        return;
    atomic_store(&aw->stop, true);
    worker_stop(&aw->w);
    free(aw);
    n->audit_worker = NULL;
}

/* This node's latest signed checkpoint, or the latest one of a peer's log that this
 * node holds as its witness: the file an offline `audit verify --checkpoint` reads. */
static void op_checkpoint(node_t *n, const char *actor, const Liaison__Control__AuditCheckpointRequest *q,
                          Liaison__Control__Response *resp, auditor_scratch_t *s)
{
    const char *peer = q && q->peer && q->peer[0] ? q->peer : NULL;
    if (peer && !text_valid_id(peer)) {
        fail(resp, s, LIAISON__CONTROL__CODE__BAD_REQUEST, "peer: not a node id");
        return;
    }
    audit_query(n, s, actor, peer ? "checkpoint witnessed" : "checkpoint", NULL, peer);
    liaison__control__audit_checkpoint__init(&s->checkpoint);
    if (!peer) {
        if (!n->cp_note) {
            fail(resp, s, LIAISON__CONTROL__CODE__NOT_FOUND,
                 "no checkpoint has been signed yet (one is signed every [audit] checkpoint_entries entries or"
                 " checkpoint_seconds seconds)");
            return;
        }
        s->checkpoint.note = keep(s, n->cp_note);
        s->checkpoint.origin = keep(s, n->cfg.id);
        s->checkpoint.size = n->cp_size;
        s->checkpoint.time_ms = n->cp_time_ms;
    } else {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(store_db(n->store), "SELECT note, tree_size, time_ms FROM witnessed WHERE peer = ?1",
                               -1, &st, NULL) != SQLITE_OK) {
            fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "cannot read the witnessed checkpoints");
            return;
        }
        sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        bool readable = true;
        if (rc == SQLITE_ROW) {
            s->checkpoint.note = keep(s, (const char *)sqlite3_column_text(st, 0));
            s->checkpoint.size = (uint64_t)sqlite3_column_int64(st, 1);
            s->checkpoint.origin = keep(s, peer);
            /* The time the peer signed it, from the note (it was verified when stored);
             * the row's time_ms is when this node stored it. */
            checkpoint_t cp;
            char err[160];
            readable = s->checkpoint.note &&
                       checkpoint_parse(s->checkpoint.note, strlen(s->checkpoint.note), &cp, err, sizeof err) == 0;
            if (readable)
                s->checkpoint.time_ms = cp.time_ms;
        }
        sqlite3_finalize(st);
        if (rc == SQLITE_ROW && !readable) {
            fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "cannot read the checkpoint of a peer held here");
            return;
        }
        if (rc != SQLITE_ROW) {
            snprintf(s->error, sizeof s->error,
                     rc == SQLITE_DONE ? "this node holds no checkpoint of '%.64s' (it witnesses only the peers in"
                                         " its directory, once they have sent one)"
                                       : "cannot read the checkpoint of '%.64s'",
                     peer);
            resp->code = rc == SQLITE_DONE ? LIAISON__CONTROL__CODE__NOT_FOUND : LIAISON__CONTROL__CODE__INTERNAL;
            resp->error = s->error;
            return;
        }
    }
    resp->result_case = LIAISON__CONTROL__RESPONSE__RESULT_AUDIT_CHECKPOINT;
    resp->audit_checkpoint = &s->checkpoint;
}

bool auditor_handle(node_t *n, const char *actor, const auditor_reply_to_t *to, const Liaison__Control__Request *rq,
                    Liaison__Control__Response *resp, auditor_scratch_t **scratch)
{
    auditor_scratch_t *s = calloc(1, sizeof *s);
    *scratch = s;
    if (!s) {
        resp->code = LIAISON__CONTROL__CODE__INTERNAL;
        resp->error = "out of memory";
        return false;
    }
    switch (rq->op_case) {
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_LOG: op_log(n, actor, rq->audit_log, resp, s); break;
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_PROVE: op_prove(n, actor, rq->audit_prove, resp, s); break;
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_VERIFY:
        if (op_verify(n, actor, to, resp, s))
            return true;
        break;
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_CHECKPOINT: op_checkpoint(n, actor, rq->audit_checkpoint, resp, s); break;
    default:
        fail(resp, s, LIAISON__CONTROL__CODE__REFUSED,
             "the audit socket offers only audit operations (audit log, prove, verify, checkpoint)");
        break;
    }
    /* Fail closed: an answer with a text left out for want of memory is not sent as if whole. */
    if (s->oom && resp->code == LIAISON__CONTROL__CODE__OK) {
        resp->result_case = LIAISON__CONTROL__RESPONSE__RESULT__NOT_SET;
        fail(resp, s, LIAISON__CONTROL__CODE__INTERNAL, "out of memory");
    }
    /* Every request leaves an audit entry, a refused one too (an auditor asking for
     * message content, a malformed filter), as on the control socket. */
    if (!s->audited && resp->code != LIAISON__CONTROL__CODE__OK) {
        char details[256], masked[512];
        text_mask_quoted(masked, sizeof masked, resp->error ? resp->error : "refused");
        snprintf(details, sizeof details, "audit socket: %.200s", masked);
        if (store_op_begin(n->store) == 0) {
            audit_entry_t e = {.actor = actor,
                               .action = "request-refused",
                               .outcome = resp->code == LIAISON__CONTROL__CODE__INTERNAL ? "failed" : "refused",
                               .details = details};
            store_op_end(n->store, node_audit(n, &e) == 0);
        }
    }
    return false;
}
