/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the offline audit-log verifier. */
#include "audit_verify.h"

#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/stat.h>

#include "audit.h"
#include "audit_codec.h"
#include "checkpoint.h"
#include "merkle.h"
#include "store.h"

typedef struct cp_row {
    uint64_t size;
    char *note;
} cp_row_t;

static void say(audit_report_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(audit_report_t *r, const char *fmt, ...)
{
    size_t used = strlen(r->text);
    if (used + 1 >= sizeof r->text)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text + used, sizeof r->text - used, fmt, ap);
    va_end(ap);
}

static void bad(audit_report_t *r, audit_failure_t kind, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad(audit_report_t *r, audit_failure_t kind, uint64_t seq, const char *fmt, ...)
{
    if (kind == AUDIT_FAIL_CHAIN && r->chain_ok) {
        r->chain_ok = false;
        r->chain_bad_seq = seq;
    }
    if (!r->ok)
        return; /* the first problem is the one reported */
    r->ok = false;
    r->failure = kind;
    r->first_bad_seq = seq;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    say(r, "FAIL: %s\n", line);
}

/* Reads this node's signed checkpoints, smallest first. A database without the
 * checkpoints table (none was ever signed: witness.c creates it) has none. Anything
 * else that keeps them from being read whole is an error (-1, r->text says why): a
 * shorter list would check fewer signatures and could hide the newest checkpoint, the
 * one that shows a truncated log. */
static int load_checkpoints(sqlite3 *db, cp_row_t **out, size_t *n, audit_report_t *r)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int step = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'", -1,
                                  &st, NULL);
    if (step == SQLITE_OK)
        step = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (step == SQLITE_DONE)
        return 0; /* no checkpoint table: nothing signed yet */
    const char *why = NULL;
    if (step != SQLITE_ROW ||
        sqlite3_prepare_v2(db, "SELECT tree_size, note FROM checkpoints ORDER BY tree_size", -1, &st, NULL) !=
            SQLITE_OK)
        why = sqlite3_errmsg(db);
    size_t cap = 0;
    while (!why && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            void *p = realloc(*out, cap * sizeof **out);
            if (!p) {
                why = "out of memory";
                break;
            }
            *out = p;
        }
        /* A size no checkpoint can have (0, negative, not an integer) would sort where
         * no entry reaches it and leave the checkpoints after it unchecked. */
        if (sqlite3_column_type(st, 0) != SQLITE_INTEGER || sqlite3_column_int64(st, 0) < 1 ||
            sqlite3_column_type(st, 1) != SQLITE_TEXT) {
            const char *shown = (const char *)sqlite3_column_text(st, 0);
            bad(r, AUDIT_FAIL_SIGNATURE, 0,
                "a stored checkpoint claims the size '%.40s', which no checkpoint has, or holds no note (the "
                "checkpoints were changed outside liaisond)",
                shown ? shown : "NULL");
            continue;
        }
        const char *t = (const char *)sqlite3_column_text(st, 1);
        (*out)[*n].size = (uint64_t)sqlite3_column_int64(st, 0);
        (*out)[*n].note = strdup(t ? t : "");
        (*n)++;
    }
    if (!why && step != SQLITE_DONE)
        why = sqlite3_errmsg(db);
    for (size_t i = 0; !why && i < *n; i++) /* a note lost for want of memory: not whole either */
        if (!(*out)[i].note)
            why = "out of memory";
    if (why)
        say(r, "cannot read the checkpoints: %s\n", why);
    sqlite3_finalize(st);
    return why ? -1 : 0;
}

/* Checks one signed checkpoint against the root of the first cp->size entries; since is
 * the size of the last checkpoint that matched (the change is after it); card_id, if not
 * NULL, is the node whose card gave pk, whose log the note must name (the key signs
 * whatever origin its holder writes). True if it matches. */
static bool check_cp(audit_report_t *r, const uint8_t *pk, const char *card_id, const char *note, uint64_t size,
                     uint64_t since, const uint8_t root[LIAISON_HASH_BYTES], const char *whose)
{
    checkpoint_t cp;
    char err[256];
    if (checkpoint_verify(note, strlen(note), pk, &cp, err, sizeof err) != 0) {
        bad(r, AUDIT_FAIL_SIGNATURE, size, "%s checkpoint at %" PRIu64 " entries: %s (forged, or signed with another key)",
            whose, size, err);
        return false;
    }
    if (card_id && strcmp(cp.node_id, card_id) != 0) {
        bad(r, AUDIT_FAIL_SIGNATURE, size, "%s checkpoint at %" PRIu64 " entries is of the log of %s, but the card"
            " given is %s's", whose, size, cp.node_id, card_id);
        return false;
    }
    if (cp.size != size) {
        bad(r, AUDIT_FAIL_ROOT, size, "%s checkpoint stored for %" PRIu64 " entries says %" PRIu64, whose, size,
            cp.size);
        return false;
    }
    if (sodium_memcmp(cp.root, root, LIAISON_HASH_BYTES) != 0) {
        bad(r, AUDIT_FAIL_ROOT, size,
            "entries 1..%" PRIu64 " do not match the %s checkpoint of that size: one or more of entries %" PRIu64
            "..%" PRIu64 " were changed, removed, reordered or rewritten after it was signed",
            size, whose, since + 1, size);
        return false;
    }
    return true;
}

/* The node id the database records (meta 'node_id') into out, or "" if it has none
 * valid. Only for naming whose log this is in a message: it is not authenticated. */
static void db_node_id(sqlite3 *db, char out[static LIAISON_MAX_ID + 1])
{
    out[0] = 0;
    sqlite3_stmt *m = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'node_id'", -1, &m, NULL) == SQLITE_OK &&
        sqlite3_step(m) == SQLITE_ROW) {
        int len = sqlite3_column_bytes(m, 0);
        const char *v = sqlite3_column_blob(m, 0);
        if (v && len > 0 && (unsigned)len <= LIAISON_MAX_ID && !memchr(v, 0, (size_t)len)) {
            memcpy(out, v, (size_t)len);
            out[len] = 0;
            for (int i = 0; i < len; i++)
                if (out[i] < '!' || out[i] > '~') /* printable ASCII only, for a message */
                    out[0] = 0;
        }
    }
    sqlite3_finalize(m);
}

static int verify_db(sqlite3 *db, const audit_verify_opts_t *opts, audit_report_t *r)
{
    memset(r, 0, sizeof *r);
    r->ok = true;
    r->chain_ok = true;
    uint8_t pk[LIAISON_KEY_BYTES];
    cp_row_t *cps = NULL;
    size_t ncps = 0, next_cp = 0;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    checkpoint_t extra = {0};
    bool have_extra = false;
    char log_id[LIAISON_MAX_ID + 1] = "";
    bool foreign_cp = false; /* the checkpoint given is of another node's log */

    /* A file that is not a liaison database is unreadable input, not a failed check. */
    sqlite3_stmt *tables = NULL;
    int ntables = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('meta', 'audit')",
                           -1, &tables, NULL) == SQLITE_OK &&
        sqlite3_step(tables) == SQLITE_ROW)
        ntables = sqlite3_column_int(tables, 0);
    sqlite3_finalize(tables);
    if (ntables != 2) {
        say(r, "not a liaison database (%s)\n", ntables < 0 ? sqlite3_errmsg(db) : "it has no audit log");
        return -1;
    }
    char serr[512];
    if (store_schema_check(db, sqlite3_db_filename(db, "main"), serr, sizeof serr) != 0) {
        say(r, "%s\n", serr);
        return -1;
    }
    if (opts && opts->extra_checkpoint) {
        char err[256];
        if (checkpoint_parse(opts->extra_checkpoint, strlen(opts->extra_checkpoint), &extra, err, sizeof err) != 0) {
            say(r, "the checkpoint file is malformed: %s (expected a signed checkpoint note as printed by: liaison "
                   "audit checkpoint)\n",
                err);
            return -1;
        }
    }
    const char *card_id = opts && opts->sign_pk ? opts->card_id : NULL;
    if (opts && opts->sign_pk) {
        memcpy(pk, opts->sign_pk, sizeof pk);
    } else {
        sqlite3_stmt *m = NULL;
        int step = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'sign_pk'", -1, &m, NULL);
        if (step == SQLITE_OK)
            step = sqlite3_step(m);
        bool got = step == SQLITE_ROW && sqlite3_column_bytes(m, 0) == LIAISON_KEY_BYTES;
        if (got)
            memcpy(pk, sqlite3_column_blob(m, 0), sizeof pk);
        else if (step != SQLITE_ROW && step != SQLITE_DONE) /* a read error, not a key missing */
            say(r, "cannot read the identity key recorded in the database: %s\n", sqlite3_errmsg(db));
        sqlite3_finalize(m);
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            return -1;
        if (!got) {
            say(r, "cannot verify checkpoints: no identity key given and none recorded in the database "
                   "(give the node's card with --card FILE)\n");
            return -1;
        }
        say(r, "warning: the identity key was taken from the database itself; give --card FILE to check the "
               "signatures against a card you trust\n");
    }
    if (opts && opts->sign_pk && opts->card_id) {
        db_node_id(db, log_id);
        if (log_id[0] && strcmp(log_id, opts->card_id) != 0)
            say(r, "warning: the card given is %s's, but this database is the log of %s: its checkpoints do not"
                   " verify with that card (give %s's card)\n",
                opts->card_id, log_id, log_id);
    }
    if (load_checkpoints(db, &cps, &ncps, r) != 0)
        goto out;
    if (opts && opts->extra_checkpoint) {
        char err[256];
        if (checkpoint_verify(opts->extra_checkpoint, strlen(opts->extra_checkpoint), pk, &extra, err, sizeof err) != 0) {
            /* The note names its log (its origin, PROTOCOL.md 11.2): one of another node's
             * log is the wrong file given, not a forgery, and says whose it is. Still a
             * failed verification: nothing vouches for this log's length. Only when the
             * note does not verify with the key used: a note that does is this card's
             * node's, and a database that names another node is checked as it stands. */
            db_node_id(db, log_id);
            foreign_cp = log_id[0] && strcmp(extra.node_id, log_id) != 0;
            if (foreign_cp)
                bad(r, AUDIT_FAIL_SIGNATURE, 0,
                    "the checkpoint given with --checkpoint names the log of %s, not %s's, and does not verify with "
                    "the key used (another node's checkpoint, or a forgery)",
                    extra.node_id, log_id);
            else
                bad(r, AUDIT_FAIL_SIGNATURE, 0, "the checkpoint given with --checkpoint does not verify: %s", err);
        } else {
            have_extra = true;
        }
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, time_ms, actor, action, outcome, message_id, peer, content_type, patient_tag,"
                           " details, prev_hash, entry_hash FROM audit ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        say(r, "not a liaison database (no audit table): %s\n", sqlite3_errmsg(db));
        goto out;
    }
    merkle_builder_t mb;
    merkle_builder_init(&mb);
    uint8_t prev[LIAISON_HASH_BYTES] = {0}, root[LIAISON_HASH_BYTES];
    uint64_t expect = 1;
    /* An orderly stop appends daemon-stopped and then signs a checkpoint ending at it;
     * the next start appends only daemon-started (after, once, patient-index-filled).
     * Until then nothing may follow: an entry there was added while liaisond was not
     * running. stopped_at is the size of such a checkpoint while it is the last word. */
    uint64_t stopped_at = 0;
    bool last_stopped = false; /* the entry just read is the daemon's daemon-stopped */
    uint64_t matched_cp = 0, rows = 0; /* the last checkpoint that matched; entries read */
    bool given_ok = false;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        audit_record_t rec;
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
        if (seq != expect) {
            if (seq > expect)
                bad(r, AUDIT_FAIL_CHAIN, expect, "entry %" PRIu64 " is missing (the next entry is %" PRIu64 "): entries were deleted",
                    expect, seq);
            else
                bad(r, AUDIT_FAIL_CHAIN, seq, "entry %" PRIu64 " appears twice or out of order", seq);
        }
        /* As liaisond writes it, or the hash below would not cover what the table holds. */
        const char *malformed = audit_row_malformed(st, 0);
        if (malformed)
            bad(r, AUDIT_FAIL_CHAIN, seq, "entry %" PRIu64 ": %s, which liaisond never writes (it was changed outside"
                                         " liaisond)", seq, malformed);
        memset(&rec, 0, sizeof rec);
        rec.seq = seq;
        rec.time_ms = (uint64_t)sqlite3_column_int64(st, 1);
        rec.actor = (const char *)sqlite3_column_text(st, 2);
        rec.action = (const char *)sqlite3_column_text(st, 3);
        rec.outcome = (const char *)sqlite3_column_text(st, 4);
        rec.message_id = sqlite3_column_blob(st, 5);
        rec.message_id_len = (size_t)sqlite3_column_bytes(st, 5);
        rec.peer = (const char *)sqlite3_column_text(st, 6);
        rec.content_type = (uint32_t)sqlite3_column_int64(st, 7);
        rec.patient_tag = sqlite3_column_blob(st, 8);
        rec.patient_tag_len = (size_t)sqlite3_column_bytes(st, 8);
        rec.details = (const char *)sqlite3_column_text(st, 9);
        if (!rec.actor || !rec.action || !rec.outcome || !rec.peer || !rec.details) {
            rec.actor = rec.actor ? rec.actor : "";
            rec.action = rec.action ? rec.action : "";
            rec.outcome = rec.outcome ? rec.outcome : "";
            rec.peer = rec.peer ? rec.peer : "";
            rec.details = rec.details ? rec.details : "";
        }
        const uint8_t *stored_prev = sqlite3_column_blob(st, 10);
        const uint8_t *stored_hash = sqlite3_column_blob(st, 11);
        uint8_t hash[LIAISON_HASH_BYTES];
        uint8_t ebuf[AUDIT_ENCODE_INLINE], *spill = NULL;
        const uint8_t *e = NULL;
        size_t elen = 0;
        if (audit_chain_hash(&rec, prev, hash) != 0 || !(e = audit_encode_in(&rec, ebuf, &spill, &elen))) {
            say(r, "out of memory\n");
            goto out;
        }
        if (sqlite3_column_bytes(st, 10) != LIAISON_HASH_BYTES ||
            sodium_memcmp(stored_prev, prev, LIAISON_HASH_BYTES) != 0)
            bad(r, AUDIT_FAIL_CHAIN, seq, "entry %" PRIu64 " does not follow entry %" PRIu64
                        " (an entry before it was removed, inserted or reordered)", seq, seq - 1);
        else if (sqlite3_column_bytes(st, 11) != LIAISON_HASH_BYTES ||
                 sodium_memcmp(stored_hash, hash, LIAISON_HASH_BYTES) != 0)
            bad(r, AUDIT_FAIL_CHAIN, seq, "entry %" PRIu64 " (%s, %s) does not match its hash: it was changed after it was written",
                seq, rec.action, rec.actor);
        bool by_daemon = strcmp(rec.actor, "daemon") == 0;
        if (stopped_at) {
            if (by_daemon && strcmp(rec.action, "daemon-started") == 0)
                stopped_at = 0;
            else if (!by_daemon || strcmp(rec.action, "patient-index-filled") != 0)
                bad(r, AUDIT_FAIL_STOPPED, seq,
                    "entry %" PRIu64 " (%s, %s) follows the checkpoint this node signed as it stopped (at %" PRIu64
                    " entries) and comes before its next start: it was added while liaisond was not running",
                    seq, rec.action, rec.actor, stopped_at);
        }
        last_stopped = by_daemon && strcmp(rec.action, "daemon-stopped") == 0;
        if (by_daemon && strcmp(rec.action, "rollback-detected") == 0) {
            r->rollbacks++;
            r->last_rollback_seq = seq;
            r->last_rollback_ms = rec.time_ms;
        }
        /* Continue the chain from the recomputed hash: one bad entry is reported once. */
        memcpy(prev, hash, sizeof prev);
        uint8_t leaf[LIAISON_HASH_BYTES];
        merkle_leaf_hash(e, elen, leaf);
        free(spill);
        merkle_builder_add(&mb, leaf);
        r->entries = seq;
        rows++;
        while (next_cp < ncps && cps[next_cp].size < seq)
            next_cp++;
        if (next_cp < ncps && cps[next_cp].size == seq) {
            merkle_builder_root(&mb, root);
            if (check_cp(r, pk, card_id, cps[next_cp].note, seq, matched_cp, root, "node's own"))
                matched_cp = seq;
            r->checkpoints++;
            next_cp++;
            if (last_stopped)
                stopped_at = seq;
        }
        if (have_extra && extra.size == seq) {
            merkle_builder_root(&mb, root);
            given_ok = check_cp(r, pk, card_id, opts->extra_checkpoint, seq, matched_cp, root, "given");
        }
        expect = seq + 1;
        if (opts && opts->progress && seq % AUDIT_VERIFY_PROGRESS == 0)
            opts->progress(opts->progress_ctx, seq);
    }
    if (step != SQLITE_DONE) {
        say(r, "cannot read the audit log: %s\n", sqlite3_errmsg(db));
        goto out;
    }
    /* Every node's log begins with its node-created entry (liaison init): one with none
     * had every entry removed. */
    if (r->entries == 0)
        bad(r, AUDIT_FAIL_TRUNCATED, 1, "the log is empty, but every node's log begins with its node-created entry:"
                                        " every entry was removed");
    /* The newest checkpoint beyond the end says how much is gone, at least. */
    if (ncps > 0 && cps[ncps - 1].size > r->entries)
        bad(r, AUDIT_FAIL_TRUNCATED, r->entries + 1,
            "a checkpoint was signed at %" PRIu64 " entries but the log has only %" PRIu64
            ": entries %" PRIu64 "..%" PRIu64 " were removed (log truncated)",
            cps[ncps - 1].size, r->entries, r->entries + 1, cps[ncps - 1].size);
    if (have_extra && extra.size > r->entries)
        bad(r, AUDIT_FAIL_BEHIND, r->entries + 1,
            "the given checkpoint covers %" PRIu64 " entries but the log has only %" PRIu64
            ": the log was truncated or this is an older copy (rolled back)",
            extra.size, r->entries);
    uint64_t anchored = ncps ? cps[ncps - 1].size : 0;
    if (have_extra && extra.size > anchored && extra.size <= r->entries)
        anchored = extra.size;
    char chain[64] = "intact";
    if (!r->chain_ok)
        snprintf(chain, sizeof chain, "BROKEN at entry %" PRIu64, r->chain_bad_seq);
    if (rows == r->entries)
        say(r, "%" PRIu64 " entr%s, hash chain %s; %" PRIu64 " signed checkpoint%s checked\n", r->entries,
            r->entries == 1 ? "y" : "ies", chain, r->checkpoints, r->checkpoints == 1 ? "" : "s");
    else
        say(r, "%" PRIu64 " entr%s, numbered up to %" PRIu64 ", hash chain %s; %" PRIu64 " signed checkpoint%s checked\n",
            rows, rows == 1 ? "y" : "ies", r->entries, chain, r->checkpoints, r->checkpoints == 1 ? "" : "s");
    if (given_ok)
        say(r, "the given checkpoint of %s's log at %" PRIu64 " entries matches entries 1..%" PRIu64 "\n",
            extra.node_id, extra.size, extra.size);
    const char *key = opts && opts->sign_pk ? "this card" : "the key recorded in the database";
    switch (r->failure) {
    case AUDIT_FAIL_NONE: break;
    case AUDIT_FAIL_CHAIN:
        say(r, "verification FAILED: the hash chain is broken at entry %" PRIu64 "\n", r->first_bad_seq);
        break;
    case AUDIT_FAIL_SIGNATURE:
        if (foreign_cp)
            say(r, "verification FAILED: the checkpoint names the log of %s, not %s's, and its signature does not "
                   "verify with %s (another node's checkpoint, or a forgery: what it names is not vouched for); give "
                   "the checkpoint of the node whose database this is: on a peer that witnesses it, liaison audit "
                   "checkpoint --peer %s\n",
                extra.node_id, log_id, key, log_id);
        else
            say(r, "verification FAILED: a checkpoint does not verify with %s (the wrong card, or a forged or changed "
                   "checkpoint)\n",
                key);
        break;
    case AUDIT_FAIL_ROOT:
        say(r, "verification FAILED: the log does not match the checkpoint signed at %" PRIu64
               " entries (it was rewritten after it was signed)\n",
            r->first_bad_seq);
        break;
    case AUDIT_FAIL_TRUNCATED:
        say(r, "verification FAILED: the log is shorter than its own signed checkpoints (truncated)\n");
        break;
    case AUDIT_FAIL_STOPPED:
        say(r, "verification FAILED: entries were added at entry %" PRIu64 ", after the node stopped and signed its"
               " log, before it started again\n",
            r->first_bad_seq);
        break;
    case AUDIT_FAIL_BEHIND:
        say(r, "verification FAILED: the database is behind the witnessed checkpoint (%" PRIu64 " entries, the "
               "database has %" PRIu64 "): rolled back, or an older copy?\n",
            extra.size, r->entries);
        break;
    }
    if (r->entries > anchored)
        say(r, "note: %" PRIu64 " entr%s after the last checkpoint (%" PRIu64
               ") %s not yet anchored by a signature; removing %s would not be visible in this file alone "
               "(a peer's %switnessed checkpoint, given with --checkpoint, can exclude it)\n",
            r->entries - anchored, r->entries - anchored == 1 ? "y" : "ies", anchored,
            r->entries - anchored == 1 ? "is" : "are", r->entries - anchored == 1 ? "it" : "them",
            have_extra ? "later " : "");
    else if (r->entries > 0 && r->entries == anchored && !have_extra)
        say(r, "note: the log ends at its last signed checkpoint (%" PRIu64 " entries); entries removed after it would"
               " not be visible in this file alone (a peer's later witnessed checkpoint, given with --checkpoint, can"
               " exclude it)\n",
            anchored);
    if (r->rollbacks > 0)
        say(r, "warning: this node recorded rollback-detected %" PRIu64 " time%s, the latest at entry %" PRIu64
               ": a peer showed it a checkpoint it signed that its log no longer has. The log verifies as it stands,"
               " but entries its peers witnessed are missing from it or were changed: an accounting from this log"
               " alone is incomplete (liaison status lists the alarms; ask the peers' nodes what they hold)\n",
            r->rollbacks, r->rollbacks == 1 ? "" : "s", r->last_rollback_seq);
    rc = 0;
out:
    sqlite3_finalize(st);
    for (size_t i = 0; i < ncps; i++)
        free(cps[i].note);
    free(cps);
    return rc;
}

/* SQLite's progress handler: non-zero interrupts the statement running. */
static int cancelled(void *flag) { return atomic_load((const atomic_bool *)flag) ? 1 : 0; }

int audit_verify_db(sqlite3 *db, const audit_verify_opts_t *opts, audit_report_t *r)
{
    /* One read transaction: a log that a daemon appends to while this runs (liaisond's
     * audit verify, on a connection of its own) is read as of one moment, its
     * checkpoints and its entries alike. Inside a transaction already open, that one
     * is used. */
    bool own_txn = sqlite3_get_autocommit(db) && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    if (opts && opts->cancel)
        sqlite3_progress_handler(db, 4096, cancelled, (void *)opts->cancel);
    int rc = verify_db(db, opts, r);
    if (opts && opts->cancel) {
        sqlite3_progress_handler(db, 0, NULL, NULL);
        if (atomic_load(opts->cancel)) { /* whatever a statement cut short made of it */
            snprintf(r->text, sizeof r->text, "the verification was interrupted (liaisond is stopping)\n");
            rc = -1;
        }
    }
    if (own_txn)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* it wrote nothing */
    return rc;
}

/* Writes path into out as the body of an SQLite file: URI. Every byte outside the
 * unreserved set and '/' is percent-encoded, so that a '?', '#' or '%' in a file name
 * stays part of the name instead of starting the query or fragment (copy#2.db must
 * not open "copy"). Returns -1 if out is too small. */
static int uri_path(const char *path, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                     *p == '/' || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        if (o + (plain ? 1 : 3) >= outlen)
            return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
    return 0;
}

int audit_verify_file(const char *path, const audit_verify_opts_t *opts, audit_report_t *r)
{
    sqlite3 *db = NULL;
    char uri[3 * 1024 + 32];
    struct stat st;
    memset(r, 0, sizeof *r);
    /* Say what is wrong with the path in the words of the file system, not SQLite's
     * ("unable to open database file", "disk I/O error" for a directory). */
    if (stat(path, &st) != 0) {
        snprintf(r->text, sizeof r->text, "cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(r->text, sizeof r->text, "%s is not a database file (it is %s)\n", path,
                 S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        return -1;
    }
    /* A copy with no write-ahead log beside it (a .backup copy, a database whose daemon
     * stopped) is whole in its one file: opened immutable, SQLite reads it without
     * creating the -wal and -shm files a WAL database otherwise needs, so nothing is
     * written beside the evidence and a copy on read-only media can be checked. With a
     * -wal file, its pages are part of the database: read normally, read-only. */
    char wal[PATH_MAX];
    bool has_wal = true;
    if ((size_t)snprintf(wal, sizeof wal, "%s-wal", path) < sizeof wal)
        has_wal = lstat(wal, &st) == 0 || errno != ENOENT;
    const char *query = has_wal ? "?mode=ro" : "?mode=ro&immutable=1";
    memcpy(uri, "file:", 5);
    if (uri_path(path, uri + 5, sizeof uri - 5 - strlen(query) - 1) != 0) {
        snprintf(r->text, sizeof r->text, "the path %.64s... is too long\n", path);
        return -1;
    }
    size_t used = strlen(uri);
    snprintf(uri + used, sizeof uri - used, "%s", query); /* uri_path left room for it */
    if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        snprintf(r->text, sizeof r->text, "cannot open %s as a database: %s\n", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    int rc = audit_verify_db(db, opts, r);
    sqlite3_close(db);
    if (rc != 0 && has_wal && strstr(r->text, "unable to open database file")) {
        /* Reading a WAL database needs its -shm file, which SQLite could not create. */
        snprintf(r->text, sizeof r->text,
                 "cannot read %s: its write-ahead log %s is beside it, and reading it needs a %s-shm file that"
                 " cannot be created there (read-only media?); copy the database with its -wal file to a writable"
                 " directory, or make the copy with: sqlite3 DB \".backup COPY\"\n",
                 path, wal, path);
    } else if (rc != 0 && strncmp(r->text, "not a liaison database", 22) == 0) {
        char why[sizeof r->text];
        snprintf(why, sizeof why, "%s", r->text);
        snprintf(r->text, sizeof r->text, "%s is %s", path, why);
    }
    return rc;
}
