/* SPDX-License-Identifier: Apache-2.0 */
/* Owns our audit checkpoints and the witnessing of peers' checkpoints. */
#include "witness.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "checkpoint.h"
#include "log.h"
#include "merkle.h"
#include "transport.h"

#define MAX_PROOF MERKLE_MAX_CONSISTENCY

static const char witness_schema[] =
    /* Our own signed checkpoints ("log checkpoints", unrelated to SQLite's WAL checkpoints). */
    "CREATE TABLE IF NOT EXISTS checkpoints("
    "  tree_size INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL) STRICT;"
    /* The latest checkpoint of each peer's log that we hold as a witness. */
    "CREATE TABLE IF NOT EXISTS witnessed("
    "  peer TEXT PRIMARY KEY, tree_size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL) STRICT;"
    /* Proof of a peer's misbehaviour: two signed, inconsistent checkpoints. */
    "CREATE TABLE IF NOT EXISTS witness_alarms("
    "  id INTEGER PRIMARY KEY, peer TEXT NOT NULL, at_ms INTEGER NOT NULL, what TEXT NOT NULL,"
    "  held_note TEXT, new_note TEXT) STRICT;";

static int exec(node_t *n, const char *sql)
{
    return sqlite3_exec(store_db(n->store), sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

int witness_open(node_t *n, char *err, size_t errlen)
{
    sqlite3 *db = store_db(n->store);
    if (exec(n, witness_schema) != 0) {
        snprintf(err, errlen, "cannot create the checkpoint tables: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT tree_size, time_ms, note FROM checkpoints ORDER BY tree_size DESC LIMIT 1", -1,
                           &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read checkpoints: %s", sqlite3_errmsg(db));
        return -1;
    }
    /* A read error is not "no checkpoint yet": that would skip the truncation check below. */
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        n->cp_size = (uint64_t)sqlite3_column_int64(st, 0);
        n->cp_time_ms = (uint64_t)sqlite3_column_int64(st, 1);
        free(n->cp_note);
        const char *note = (const char *)sqlite3_column_text(st, 2); /* NULL only for out of memory */
        n->cp_note = note ? strdup(note) : NULL;
    }
    bool ok = rc == SQLITE_DONE || (rc == SQLITE_ROW && n->cp_note);
    if (!ok)
        snprintf(err, errlen, "cannot read checkpoints: %s", rc == SQLITE_ROW ? "out of memory" : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (!ok)
        return -1;
    int64_t size = audit_size(n->audit);
    if (size < 0) {
        snprintf(err, errlen, "cannot read the audit log: %s", sqlite3_errmsg(db));
        return -1;
    }
    if ((uint64_t)size < n->cp_size) {
        snprintf(err, errlen,
                 "the audit log has %" PRId64 " entries but this node signed a checkpoint at %" PRIu64
                 ": the database was truncated or replaced (run: liaison audit verify)",
                 size, n->cp_size);
        return -1;
    }
    return 0;
}

void witness_close(node_t *n)
{
    free(n->cp_note);
    n->cp_note = NULL;
}

/* Packs a frame into a malloc'd buffer. */
static uint8_t *pack_frame(const Liaison__Wire__Frame *f, size_t *len)
{
    *len = liaison__wire__frame__get_packed_size(f);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf)
        liaison__wire__frame__pack(f, buf);
    return buf;
}

/* Sends our latest checkpoint to p with a proof from the size p is believed to hold. */
static void offer(node_t *n, peer_t *p)
{
    if (!n->cp_note || !p->connected || p->witness_sent == n->cp_size)
        return;
    uint64_t nl = 0;
    uint8_t proof[MAX_PROOF][LIAISON_HASH_BYTES];
    size_t plen = 0;
    uint64_t old = p->witness_held <= n->cp_size ? p->witness_held : 0;
    if (old > 0 && old < n->cp_size) {
        if (store_in_txn(n->store) || audit_sync(n->audit, &nl) != 0 || nl < n->cp_size ||
            merkle_consistency_proof_o(NULL, audit_tree(n->audit), old, n->cp_size, proof, MAX_PROOF, &plen) != 0)
            return;
    }
    ProtobufCBinaryData items[MAX_PROOF];
    for (size_t i = 0; i < plen; i++)
        items[i] = (ProtobufCBinaryData){LIAISON_HASH_BYTES, proof[i]};
    Liaison__Wire__WitnessRequest wr = LIAISON__WIRE__WITNESS_REQUEST__INIT;
    wr.checkpoint = n->cp_note;
    wr.old_size = old;
    wr.proof = items;
    wr.n_proof = plen;
    Liaison__Wire__Frame f;
    liaison__wire__frame__init(&f);
    f.kind_case = LIAISON__WIRE__FRAME__KIND_WITNESS;
    f.witness = &wr;
    size_t len;
    uint8_t *buf = pack_frame(&f, &len);
    if (buf && transport_send(n, p, buf, len) == 0) {
        p->witness_sent = n->cp_size;
        p->witness_from = old;
        if (p->witness_pending < WITNESS_PENDING_MAX)
            p->witness_pending++;
    }
    free(buf);
}

static int sign_checkpoint(node_t *n, uint64_t now);

void witness_peer_up(node_t *n, peer_t *p)
{
    p->witness_sent = 0;
    offer(n, p);
}

void witness_after_commit(node_t *n)
{
    if (store_in_txn(n->store))
        return;
    /* An offer that could not go out (inside a transaction, or the send failed) is
     * retried here, once per loop iteration, until it has been sent. */
    for (size_t i = 0; i < n->dir.n; i++)
        offer(n, n->dir.peers[i]);
    uint64_t now = liaison_now_ms();
    int64_t size = audit_size(n->audit);
    if (size <= 0 || (uint64_t)size <= n->cp_size)
        return;
    /* A clock behind the last checkpoint's time (it stepped back) counts no time since
     * it: checkpoints then come by entries only, not one per commit. */
    bool due = (uint64_t)size - n->cp_size >= n->cfg.checkpoint_entries ||
               (now >= n->cp_time_ms && now - n->cp_time_ms >= (uint64_t)n->cfg.checkpoint_seconds * 1000u);
    if (!due || sign_checkpoint(n, now) != 0)
        return;
    for (size_t i = 0; i < n->dir.n; i++)
        offer(n, n->dir.peers[i]);
}

int witness_final_checkpoint(node_t *n)
{
    if (store_in_txn(n->store))
        return -1;
    int64_t size = audit_size(n->audit);
    if (size < 0)
        return -1;
    if ((uint64_t)size <= n->cp_size)
        return 0;
    return sign_checkpoint(n, liaison_now_ms());
}

/* Signs a checkpoint of the whole committed log at time now and commits it. 0 or -1
 * (logged). Its time is never earlier than the previous checkpoint's (one ms after it
 * when the clock stepped back since): witnesses tell a late old checkpoint from a
 * rollback by these times (PROTOCOL.md 11.2, 11.3), so they must follow signing order. */
static int sign_checkpoint(node_t *n, uint64_t now)
{
    uint64_t nl = 0;
    if (n->cp_note && now <= n->cp_time_ms)
        now = n->cp_time_ms + 1;
    checkpoint_t cp = {.time_ms = now};
    if (audit_sync(n->audit, &nl) != 0 || nl == 0) {
        log_warn("checkpoint: cannot read the audit log");
        return -1;
    }
    cp.size = nl;
    snprintf(cp.node_id, sizeof cp.node_id, "%s", n->cfg.id);
    if (merkle_root_o(NULL, audit_tree(n->audit), nl, cp.root) != 0)
        return -1;
    char *note = checkpoint_sign(&cp, n->keys);
    if (!note)
        return -1;
    /* Stored and committed before anyone sees it: an honest crash must never look
     * like a rollback. */
    sqlite3 *db = store_db(n->store);
    sqlite3_stmt *st = NULL;
    bool ok = store_begin(n->store) == 0 &&
              sqlite3_prepare_v2(db, "INSERT INTO checkpoints(tree_size, time_ms, root, note) VALUES(?1, ?2, ?3, ?4)",
                                 -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)cp.size);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)cp.time_ms);
        sqlite3_bind_blob(st, 3, cp.root, LIAISON_HASH_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, note, -1, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    if (!ok || store_commit(n->store) != 0) {
        store_rollback(n->store);
        log_warn("checkpoint: cannot store: %s", sqlite3_errmsg(db));
        free(note);
        return -1;
    }
    free(n->cp_note);
    n->cp_note = note;
    n->cp_size = cp.size;
    n->cp_time_ms = now;
    log_debug("checkpoint at %" PRIu64 " entries", cp.size);
    return 0;
}

/* Records an alarm: a row in witness_alarms (shown by `liaison status`, keeping both
 * signed notes) and an audit entry. `own` is true when the alarm is about this node's
 * own log (rollback-detected), false when about the peer's (witness-alarm). */
static void record_alarm(node_t *n, peer_t *p, bool own, const char *what, const char *held, const char *fresh)
{
    sqlite3 *db = store_db(n->store);
    sqlite3_stmt *st = NULL;
    if (store_op_begin(n->store) != 0)
        return;
    bool ok = sqlite3_prepare_v2(db, "INSERT INTO witness_alarms(peer, at_ms, what, held_note, new_note)"
                                     " VALUES(?1, ?2, ?3, ?4, ?5)", -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, p->card.id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)liaison_now_ms());
        sqlite3_bind_text(st, 3, what, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, held, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, fresh, -1, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    char actor[LIAISON_MAX_ID + 8];
    snprintf(actor, sizeof actor, "peer:%s", p->card.id);
    audit_entry_t a = {.actor = own ? "daemon" : actor, .action = own ? "rollback-detected" : "witness-alarm",
                       .outcome = "failed", .peer = p->card.id, .details = what};
    ok = ok && node_audit(n, &a) == 0;
    if (store_op_end(n->store, ok) == 0 && ok && own) {
        n->rollbacks++;
        n->last_rollback_ms = liaison_now_ms();
    }
}

/* Whether an alarm about peer p against the checkpoint held_note is already recorded.
 * A read error counts as "not recorded": the alarm is then raised again (a second row)
 * rather than possibly never. */
static bool alarm_recorded(node_t *n, peer_t *p, const char *held_note)
{
    sqlite3_stmt *st = NULL;
    bool found = false;
    if (held_note && sqlite3_prepare_v2(store_db(n->store),
                                        "SELECT 1 FROM witness_alarms WHERE peer = ?1 AND held_note = ?2 LIMIT 1", -1,
                                        &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, p->card.id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, held_note, -1, SQLITE_STATIC);
        found = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return found;
}

/* An alarm about a peer's log is recorded once per checkpoint held: every later
 * checkpoint of a log that no longer extends it proves nothing new (the first pair of
 * signed notes is the evidence), and would otherwise add an audit entry and a line in
 * liaison status at every checkpoint the peer signs until its log is repaired. */
static void raise_alarm(node_t *n, peer_t *p, const char *what, const char *held, const char *fresh)
{
    if (alarm_recorded(n, p, held)) {
        log_warn("audit log of %s still does not extend the checkpoint held (%s); the alarm is already recorded",
                 p->card.id, what);
        return;
    }
    log_err("ALARM: audit log of %s: %s", p->card.id, what);
    record_alarm(n, p, false, what, held, fresh);
}

/* A peer offered a checkpoint larger than the one held (size held) without the
 * consistency proof from it. An honest peer sends it as soon as it reads the refusal
 * (only offers already on their way arrive without it); a peer that keeps offering
 * larger checkpoints for witness_proof_wait_s without ever proving that its log still
 * extends the one held may be hiding a fork, and is reported like one (once per
 * checkpoint held). The count restarts when a larger checkpoint of it is stored. */
static void unproven(node_t *n, peer_t *p, uint64_t size, uint64_t held, const char *held_note, const char *fresh)
{
    uint64_t now = liaison_now_ms();
    if (p->witness_unproven == 0)
        p->witness_unproven_ms = now;
    if (p->witness_unproven < UINT32_MAX)
        p->witness_unproven++;
    uint64_t waited = now >= p->witness_unproven_ms ? now - p->witness_unproven_ms : 0;
    if (p->witness_unproven < WITNESS_UNPROVEN_MIN || waited < (uint64_t)n->cfg.witness_proof_wait_s * 1000u)
        return;
    char what[300];
    snprintf(what, sizeof what,
             "offered %" PRIu32 " checkpoints over %" PRIu64 " s, the latest at %" PRIu64
             " entries, and never the proof that they extend the one at %" PRIu64 " entries (forked or rewritten?)",
             p->witness_unproven, waited / 1000u, size, held);
    raise_alarm(n, p, what, held_note, fresh);
}

/* Answers a witness request. held_note is the signed note of the checkpoint held (NULL
 * when nothing is held): it proves the claim to the sender, who raises rollback-detected
 * only on a note it signed itself. */
static void reply(node_t *n, const uint8_t *rid, size_t rid_len, uint64_t held, const char *held_note, bool accepted,
                  const char *reason)
{
    Liaison__Wire__WitnessReply wr = LIAISON__WIRE__WITNESS_REPLY__INIT;
    wr.held_size = held;
    wr.held_checkpoint = (char *)(held > 0 && held_note ? held_note : "");
    wr.accepted = accepted;
    wr.reason = (char *)(reason ? reason : "");
    Liaison__Wire__Frame f;
    liaison__wire__frame__init(&f);
    f.kind_case = LIAISON__WIRE__FRAME__KIND_WITNESS_REPLY;
    f.witness_reply = &wr;
    size_t len;
    uint8_t *buf = pack_frame(&f, &len);
    if (buf)
        node_defer(n, n->router, rid, rid_len, buf, len, false, 0);
}

void witness_on_request(node_t *n, peer_t *from, const uint8_t *rid, size_t rid_len,
                        const Liaison__Wire__WitnessRequest *wr)
{
    char err[256], what[300];
    checkpoint_t cp;
    const char *text = wr->checkpoint ? wr->checkpoint : "";
    if (checkpoint_verify(text, strlen(text), from->card.sign_pk, &cp, err, sizeof err) != 0 ||
        strcmp(cp.node_id, from->card.id) != 0) {
        log_warn("peer %s sent a checkpoint that does not verify: %s", from->card.id, err);
        reply(n, rid, rid_len, 0, NULL, false, "checkpoint does not verify");
        return;
    }
    /* What we hold of this peer. */
    sqlite3 *db = store_db(n->store);
    sqlite3_stmt *st = NULL;
    uint64_t held = 0;
    uint8_t held_root[LIAISON_HASH_BYTES] = {0};
    char *held_note = NULL;
    if (sqlite3_prepare_v2(db, "SELECT tree_size, root, note FROM witnessed WHERE peer = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, from->card.id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    bool have = rc == SQLITE_ROW; /* nothing held is not the same as a checkpoint of size 0 */
    if (have) {
        held = (uint64_t)sqlite3_column_int64(st, 0);
        if (sqlite3_column_bytes(st, 1) == LIAISON_HASH_BYTES)
            memcpy(held_root, sqlite3_column_blob(st, 1), LIAISON_HASH_BYTES);
        const char *note = (const char *)sqlite3_column_text(st, 2); /* NULL only for out of memory */
        if (!note || !(held_note = strdup(note)))
            rc = SQLITE_NOMEM;
    }
    /* What we hold cannot be read: not "nothing held", which would accept any checkpoint
     * without a proof (held 0) and replace the one held. Unanswered, as when the query
     * cannot be prepared; the peer offers again on its next checkpoint or connection. */
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_warn("peer %s: cannot read the checkpoint of its log held here: %s", from->card.id,
                 rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return;
    }
    sqlite3_finalize(st);

    /* The signing time of the note we hold: a smaller checkpoint signed *before* it is
     * an old one arriving late (frames of an earlier connection, still queued when the
     * peer restarted), not a claim that the log shrank. Only a note signed after the one
     * held and covering less is evidence of a rollback. */
    checkpoint_t held_cp = {0};
    bool stale = false;
    if (cp.size < held && held_note) {
        if (checkpoint_parse(held_note, strlen(held_note), &held_cp, err, sizeof err) == 0)
            stale = cp.time_ms < held_cp.time_ms;
    }
    bool accept = false;
    if (stale) {
        log_info("peer %s: ignored its checkpoint at %" PRIu64 " entries, older than the one held (%" PRIu64 ")",
                 from->card.id, cp.size, held);
        reply(n, rid, rid_len, held, held_note, false, "older than the checkpoint held");
    } else if (cp.size < held) {
        snprintf(what, sizeof what, "log shrank from %" PRIu64 " to %" PRIu64 " entries (rolled back or truncated)",
                 held, cp.size);
        raise_alarm(n, from, what, held_note, text);
        reply(n, rid, rid_len, held, held_note, false, what);
    } else if (!have) {
        accept = true; /* trust on first use: nothing to be consistent with, whatever old_size says */
    } else if (cp.size == held) {
        if (sodium_memcmp(cp.root, held_root, LIAISON_HASH_BYTES) != 0) {
            snprintf(what, sizeof what, "two different logs of %" PRIu64 " entries (forked or rewritten)", held);
            raise_alarm(n, from, what, held_note, text);
            reply(n, rid, rid_len, held, held_note, false, what);
        } else {
            reply(n, rid, rid_len, held, held_note, true, NULL);
        }
    } else if (wr->old_size != held) {
        unproven(n, from, cp.size, held, held_note, text);
        reply(n, rid, rid_len, held, held_note, false, "send a proof from the size I hold");
    } else {
        uint8_t proof[MERKLE_MAX_CONSISTENCY][MERKLE_HASH_BYTES];
        size_t plen = 0;
        bool shape = checkpoint_proof_from_wire(wr, proof, &plen) == 0;
        if (held == 0 || (shape && merkle_verify_consistency(held, cp.size, held_root, cp.root, proof, plen) == 0)) {
            accept = true;
        } else {
            snprintf(what, sizeof what,
                     "new checkpoint at %" PRIu64 " entries is not an extension of the one at %" PRIu64
                     " (forked or rewritten)",
                     cp.size, held);
            raise_alarm(n, from, what, held_note, text);
            reply(n, rid, rid_len, held, held_note, false, what);
        }
    }
    if (accept) {
        bool ok = store_op_begin(n->store) == 0;
        if (ok) {
            /* Once the savepoint is open, every path below ends it (a failed prepare too). */
            ok = sqlite3_prepare_v2(db, "INSERT INTO witnessed(peer, tree_size, root, note, time_ms)"
                                        " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(peer) DO UPDATE SET"
                                        " tree_size = excluded.tree_size, root = excluded.root,"
                                        " note = excluded.note, time_ms = excluded.time_ms",
                                    -1, &st, NULL) == SQLITE_OK;
            if (ok) {
                sqlite3_bind_text(st, 1, from->card.id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, (sqlite3_int64)cp.size);
                sqlite3_bind_blob(st, 3, cp.root, LIAISON_HASH_BYTES, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 5, (sqlite3_int64)liaison_now_ms());
                ok = sqlite3_step(st) == SQLITE_DONE;
            }
            sqlite3_finalize(st);
            if (store_op_end(n->store, ok) != 0)
                ok = false;
        }
        if (ok)
            from->witness_unproven = 0;
        reply(n, rid, rid_len, ok ? cp.size : held, ok ? text : held_note, ok, ok ? NULL : "cannot store");
    }
    free(held_note);
}

/* A witness refused our checkpoint and showed the one of ours it holds, at a size our
 * log has: if the first held_size entries of our log no longer give the root this node
 * signed for them, they were changed after it signed (rewritten, its checkpoints
 * deleted so that the start-up check passes, or an older copy restored and grown past
 * that size since). A note that does not verify with our own key proves nothing and is
 * ignored. Recorded once per note shown. Inside a transaction (a reply read in the same
 * turn as anything that wrote to the database, which under traffic is most of them) the
 * log is not read again, but the entries the tree already covers are committed ones and
 * are checked all the same; only a size beyond them waits for the next refusal. */
static void check_held_root(node_t *n, peer_t *p, const Liaison__Wire__WitnessReply *wr)
{
    const char *note = wr->held_checkpoint ? wr->held_checkpoint : "";
    checkpoint_t cp;
    char err[256];
    if (!*note || checkpoint_verify(note, strlen(note), n->keys->sign_pk, &cp, err, sizeof err) != 0 ||
        strcmp(cp.node_id, n->cfg.id) != 0 || cp.size != wr->held_size)
        return;
    uint64_t nl = audit_tree_size(n->audit);
    uint8_t root[LIAISON_HASH_BYTES];
    if ((!store_in_txn(n->store) && audit_sync(n->audit, &nl) != 0) || nl < cp.size ||
        merkle_root_o(NULL, audit_tree(n->audit), cp.size, root) != 0)
        return;
    if (sodium_memcmp(root, cp.root, LIAISON_HASH_BYTES) == 0 || alarm_recorded(n, p, note))
        return;
    char what[300];
    snprintf(what, sizeof what, "peer %s holds our signed checkpoint at %" PRIu64 " entries, but the first %" PRIu64
             " entries of our log no longer have its root: this database was rewritten or replaced",
             p->card.id, cp.size, cp.size);
    log_err("ALARM: %s", what);
    record_alarm(n, p, true, what, note, n->cp_note);
}

void witness_on_reply(node_t *n, peer_t *p, const Liaison__Wire__WitnessReply *wr)
{
    if (p->witness_pending == 0) {
        log_warn("peer %s sent a witness reply to no checkpoint offered; ignored", p->card.id);
        return;
    }
    p->witness_pending--;
    if (wr->held_size > n->cp_size) {
        /* A peer holds a larger checkpoint of ours than we have: our database was
         * rolled back, if the peer shows it, i.e. a note this node signed at that size.
         * A bare claim proves nothing and is ignored, so that no peer can make this node
         * accuse itself. Raised once per claim and connection. */
        const char *note = wr->held_checkpoint ? wr->held_checkpoint : "";
        checkpoint_t cp;
        char err[256];
        if (checkpoint_verify(note, strlen(note), n->keys->sign_pk, &cp, err, sizeof err) != 0 ||
            strcmp(cp.node_id, n->cfg.id) != 0 || cp.size != wr->held_size) {
            log_warn("peer %s says it holds our checkpoint at %" PRIu64 " entries (our log has %" PRIu64
                     ") but does not show a note this node signed; ignored",
                     p->card.id, wr->held_size, n->cp_size);
            return;
        }
        /* A claim already reported in this run is not raised again, unless its alarm
         * is not in the database (its write failed, or its batch did not commit):
         * what is in memory must not stand for an alarm that was never recorded. */
        if (p->witness_held != wr->held_size || !alarm_recorded(n, p, note)) {
            char what[300];
            snprintf(what, sizeof what, "peer %s holds our signed checkpoint at %" PRIu64
                     " entries, but our log has only %" PRIu64 ": this database was rolled back",
                     p->card.id, wr->held_size, n->cp_size);
            log_err("ALARM: %s", what);
            record_alarm(n, p, true, what, note, n->cp_note);
        }
        p->witness_held = wr->held_size;
        return;
    }
    p->witness_held = wr->held_size;
    if (!wr->accepted && wr->held_size > 0)
        check_held_root(n, p, wr);
    if (!wr->accepted && wr->held_size != p->witness_from) {
        /* Our proof started from a size the peer does not hold (it answered an offer
         * sent before its previous reply arrived, or it lost state): it told us what it
         * holds, so send the proof from there. A refusal of a proof that did start
         * from its size is final (the peer raised an alarm); no ping-pong. */
        p->witness_sent = 0;
        offer(n, p);
    }
}

int witness_reset(node_t *n, peer_t *p, const char *actor, uint64_t *held_size)
{
    sqlite3 *db = store_db(n->store);
    sqlite3_stmt *st = NULL;
    *held_size = 0;
    if (sqlite3_prepare_v2(db, "SELECT tree_size FROM witnessed WHERE peer = ?1", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, p->card.id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *held_size = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW || store_op_begin(n->store) != 0)
        return -1;
    bool ok = sqlite3_prepare_v2(db, "DELETE FROM witnessed WHERE peer = ?1", -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, p->card.id, -1, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    char details[160];
    snprintf(details, sizeof details,
             "restore accepted: the checkpoint of its log held at %" PRIu64 " entries is forgotten; its next one is"
             " taken as a first one",
             *held_size);
    audit_entry_t a = {.actor = actor, .action = "witness-reset", .outcome = "ok", .peer = p->card.id,
                       .details = details};
    ok = ok && node_audit(n, &a) == 0;
    if (store_op_end(n->store, ok) != 0 || !ok)
        return -1;
    p->witness_unproven = 0;
    return 1;
}

int witness_alarms(node_t *n, witness_alarm_cb cb, void *ctx)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(n->store), "SELECT peer, at_ms, what FROM witness_alarms ORDER BY id DESC LIMIT 50",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = SQLITE_DONE, out = 0;
    while (out == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        out = cb(ctx, (const char *)sqlite3_column_text(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
                 (const char *)sqlite3_column_text(st, 2));
    if (out == 0 && rc != SQLITE_DONE) /* broken off: not a shorter list of alarms */
        out = -1;
    sqlite3_finalize(st);
    return out;
}

int witness_forget_other_key(node_t *n, const char *peer, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                             uint64_t *held_size)
{
    sqlite3 *db = store_db(n->store);
    sqlite3_stmt *st = NULL;
    *held_size = 0;
    if (sqlite3_prepare_v2(db, "SELECT note, tree_size FROM witnessed WHERE peer = ?1", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    bool stale = false;
    if (rc == SQLITE_ROW) {
        const char *note = (const char *)sqlite3_column_text(st, 0);
        checkpoint_t cp;
        char err[160];
        *held_size = (uint64_t)sqlite3_column_int64(st, 1);
        stale = !note || checkpoint_verify(note, strlen(note), sign_pk, &cp, err, sizeof err) != 0;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -1;
    if (!stale)
        return 0;
    if (sqlite3_prepare_v2(db, "DELETE FROM witnessed WHERE peer = ?1", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 1 : -1;
}
