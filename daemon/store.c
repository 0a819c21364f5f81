/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the node database: schema, pragmas, transactions, peers, messages, deliveries. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 2: receipts_issued (receipts signed a batch at a time). A database of version 1 is
 * upgraded when it is opened for writing: the table is created, nothing else changes.
 * A release of version 1 must not open it afterwards (it would take a retransmission of
 * a message received since for a conflict), which the version number stops. */
#define SCHEMA_VERSION 2

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta("
    "  key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;"
    /* Every card ever accepted; the active one per id has retired_ms NULL. Retired
     * cards stay so that old messages from replaced or removed peers still open. */
    "CREATE TABLE IF NOT EXISTS peers("
    "  rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, card TEXT NOT NULL,"
    "  added_ms INTEGER NOT NULL, retired_ms INTEGER) STRICT;"
    "CREATE UNIQUE INDEX IF NOT EXISTS peers_active ON peers(id) WHERE retired_ms IS NULL;"
    "CREATE TABLE IF NOT EXISTS messages("
    "  id BLOB PRIMARY KEY CHECK(length(id) = 16),"
    "  outgoing INTEGER NOT NULL CHECK(outgoing IN (0, 1)),"
    "  sender TEXT NOT NULL,"
    "  recipients TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  content_type INTEGER NOT NULL,"
    "  thread_id BLOB CHECK(thread_id IS NULL OR length(thread_id) = 16),"
    "  envelope BLOB NOT NULL,"
    "  envelope_hash BLOB NOT NULL CHECK(length(envelope_hash) = 32),"
    "  stored_ms INTEGER NOT NULL,"
    "  read_ms INTEGER,"
    "  patient_tag BLOB CHECK(patient_tag IS NULL OR length(patient_tag) = 32),"
    "  receipt BLOB,"
    "  ack_required INTEGER NOT NULL DEFAULT 0,"
    "  urgent INTEGER NOT NULL DEFAULT 0,"
    "  ref_id BLOB CHECK(ref_id IS NULL OR length(ref_id) = 16)) STRICT;"
    "CREATE INDEX IF NOT EXISTS messages_created ON messages(created_ms);"
    "CREATE INDEX IF NOT EXISTS messages_thread ON messages(thread_id) WHERE thread_id IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS messages_patient ON messages(patient_tag) WHERE patient_tag IS NOT NULL;"
    /* Acknowledgements by the message they acknowledge: audit log --message (auditor.c)
     * finds them without reading every message. Added to existing databases at open. */
    "CREATE INDEX IF NOT EXISTS messages_ref ON messages(ref_id) WHERE ref_id IS NOT NULL;"
    /* Received messages that ask for this node's acknowledgement (liaison status counts
     * those not yet acknowledged without reading the envelopes). */
    "CREATE INDEX IF NOT EXISTS messages_ack_in ON messages(id) WHERE outgoing = 0 AND ack_required = 1;"
    /* Our messages that ask for acknowledgement: the overdue scan (every 5 s) reads
     * these alone, not every delivery ever made (docs/PERFORMANCE.md, finding 21). */
    "CREATE INDEX IF NOT EXISTS messages_ack_out ON messages(created_ms, urgent, id)"
    "  WHERE outgoing = 1 AND ack_required = 1;"
    /* One row per patient tag this node has seen, with the tag of its case-folded id:
     * ids that differ only in letter case are different patients to the tags, and
     * are pointed out (store.h). distinct_ok: the sender confirmed it is another patient. */
    "CREATE TABLE IF NOT EXISTS patient_folds("
    "  tag BLOB PRIMARY KEY CHECK(length(tag) = 32),"
    "  fold BLOB NOT NULL CHECK(length(fold) = 32),"
    "  distinct_ok INTEGER NOT NULL DEFAULT 0 CHECK(distinct_ok IN (0, 1))) STRICT, WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS patient_folds_fold ON patient_folds(fold);"
    "CREATE TABLE IF NOT EXISTS deliveries("
    "  message_id BLOB NOT NULL REFERENCES messages(id),"
    "  recipient TEXT NOT NULL,"
    "  state INTEGER NOT NULL CHECK(state BETWEEN 0 AND 3),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_ms INTEGER NOT NULL,"
    "  detail TEXT,"
    "  receipt BLOB,"
    "  delivered_ms INTEGER,"
    "  PRIMARY KEY(message_id, recipient)) STRICT, WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(next_attempt_ms) WHERE state < 2;"
    /* The receipt this node issued for each message it received (PROTOCOL.md 7.1), kept
     * to answer a retransmission with it. Receipts are signed when their batch commits,
     * after the message row is written; rows of messages received before receipts were
     * batched have it in messages.receipt instead. */
    "CREATE TABLE IF NOT EXISTS receipts_issued("
    "  message_id BLOB PRIMARY KEY REFERENCES messages(id), receipt BLOB NOT NULL) STRICT, WITHOUT ROWID;"
    /* Acknowledgements seen on this node (ours and others'), per acknowledged message. */
    "CREATE TABLE IF NOT EXISTS acks("
    "  message_id BLOB NOT NULL, by TEXT NOT NULL, ack_id BLOB NOT NULL, at_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(message_id, by)) STRICT, WITHOUT ROWID;"
    /* Overdue acknowledgements already flagged (so each is flagged once). */
    "CREATE TABLE IF NOT EXISTS ack_overdue("
    "  message_id BLOB NOT NULL, recipient TEXT NOT NULL, flagged_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(message_id, recipient)) STRICT, WITHOUT ROWID;"
    /* Case reviews this node takes part in, and their participants. */
    "CREATE TABLE IF NOT EXISTS reviews("
    "  review_id BLOB PRIMARY KEY CHECK(length(review_id) = 16), opened_by TEXT NOT NULL,"
    "  opened_ms INTEGER NOT NULL, closed_ms INTEGER, patient_tag BLOB) STRICT;"
    "CREATE TABLE IF NOT EXISTS review_participants("
    "  review_id BLOB NOT NULL REFERENCES reviews(review_id), participant TEXT NOT NULL,"
    "  added_ms INTEGER NOT NULL, PRIMARY KEY(review_id, participant)) STRICT, WITHOUT ROWID;"
    /* The audit log (audit.c). Append-only guardrails; tamper evidence comes from
     * the hash chain, checkpoints and witnesses, not from these triggers. */
    "CREATE TABLE IF NOT EXISTS audit("
    "  seq INTEGER PRIMARY KEY,"
    "  time_ms INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  outcome TEXT NOT NULL,"
    "  message_id BLOB NOT NULL,"
    "  peer TEXT NOT NULL,"
    "  content_type INTEGER NOT NULL,"
    "  patient_tag BLOB NOT NULL,"
    "  details TEXT NOT NULL,"
    "  prev_hash BLOB NOT NULL,"
    "  entry_hash BLOB NOT NULL) STRICT;"
    /* What an auditor asks about one patient (audit disclosures, audit log --patient) and
     * about one message (audit log --message): found by index, not by reading every entry
     * of the log. Added to existing databases at open (version 2 too; a one-off build of a
     * few hundred milliseconds per 300,000 entries). */
    "CREATE INDEX IF NOT EXISTS audit_patient ON audit(patient_tag);"
    "CREATE INDEX IF NOT EXISTS audit_message ON audit(message_id);"
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_next_seq BEFORE INSERT ON audit"
    "  WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit)"
    "  BEGIN SELECT RAISE(ABORT, 'audit entries must be appended in sequence'); END;";

enum stmt_id {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
    ST_META_GET, ST_META_SET,
    ST_PEER_PUT, ST_PEER_DEL, ST_PEER_EACH, ST_PEER_HIST,
    ST_MSG_INSERT, ST_MSG_GET, ST_MSG_META, ST_MSG_READ,
    ST_DLV_ADD, ST_DLV_DUE, ST_DLV_NEXT, ST_DLV_ATTEMPT, ST_DLV_DONE, ST_DLV_REJECT, ST_DLV_WAKE,
    ST_DLV_EACH, ST_DEPTH_ALL, ST_DEPTH_PEER, ST_AWAITING_ACK, ST_AWAITING_THEIR_ACK,
    ST_PATIENT_SEEN, ST_PATIENT_KNOWN, ST_PATIENT_VARIANTS, ST_PATIENT_UNFOLDED, ST_RCPT_ISSUED,
    ST_COUNT
};

static const char *stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT op",
    [ST_RELEASE] = "RELEASE op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO op",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [ST_PEER_PUT] = "INSERT INTO peers(id, card, added_ms) VALUES(?1, ?2, ?3)",
    [ST_PEER_DEL] = "UPDATE peers SET retired_ms = ?2 WHERE id = ?1 AND retired_ms IS NULL",
    [ST_PEER_EACH] = "SELECT id, card, added_ms FROM peers WHERE retired_ms IS NULL ORDER BY id",
    [ST_PEER_HIST] = "SELECT id, card, added_ms FROM peers WHERE id = ?1 ORDER BY rowid DESC",
    [ST_MSG_INSERT] = "INSERT INTO messages(id, outgoing, sender, recipients, created_ms, content_type, thread_id,"
                      " envelope, envelope_hash, stored_ms, read_ms, patient_tag, receipt, ack_required, urgent, ref_id)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, ?11, NULL, ?13, ?14, ?15)"
                      " ON CONFLICT(id) DO NOTHING",
    [ST_MSG_GET] = "SELECT id, outgoing, sender, recipients, created_ms, content_type, thread_id, stored_ms,"
                   " read_ms, patient_tag, envelope_hash, ack_required, urgent, ref_id, envelope,"
                   " coalesce(receipt, (SELECT r.receipt FROM receipts_issued r WHERE r.message_id = messages.id))"
                   " FROM messages WHERE id = ?1",
    /* ST_MSG_GET without the envelope and receipt: reading a 4 KB envelope means its
     * overflow pages and a copy, for callers that only want the metadata. */
    [ST_MSG_META] = "SELECT id, outgoing, sender, recipients, created_ms, content_type, thread_id, stored_ms,"
                    " read_ms, patient_tag, envelope_hash, ack_required, urgent, ref_id FROM messages WHERE id = ?1",
    [ST_MSG_READ] = "UPDATE messages SET read_ms = ?2 WHERE id = ?1 AND outgoing = 0 AND read_ms IS NULL",
    [ST_DLV_ADD] = "INSERT INTO deliveries(message_id, recipient, state, attempts, next_attempt_ms)"
                   " VALUES(?1, ?2, ?4, ?4, ?3)",
    [ST_DLV_DUE] = "SELECT message_id, recipient, state, attempts, next_attempt_ms FROM deliveries"
                   " WHERE state < 2 AND (next_attempt_ms <= ?1 OR next_attempt_ms > ?3)"
                   " ORDER BY next_attempt_ms LIMIT ?2",
    [ST_DLV_NEXT] = "SELECT min(next_attempt_ms) FROM deliveries WHERE state < 2",
    [ST_DLV_ATTEMPT] = "UPDATE deliveries SET state = ?3, attempts = attempts + 1, next_attempt_ms = ?4, detail = ?5"
                       " WHERE message_id = ?1 AND recipient = ?2 AND state < 2",
    [ST_DLV_DONE] = "UPDATE deliveries SET state = 2, receipt = ?3, delivered_ms = ?4, detail = NULL"
                    " WHERE message_id = ?1 AND recipient = ?2 AND state < 2",
    [ST_DLV_REJECT] = "UPDATE deliveries SET state = 3, detail = ?3 WHERE message_id = ?1 AND recipient = ?2 AND state < 2",
    [ST_DLV_WAKE] = "UPDATE deliveries SET next_attempt_ms = ?2 WHERE recipient = ?1 AND state < 2 AND next_attempt_ms > ?2",
    [ST_DLV_EACH] = "SELECT message_id, recipient, state, attempts, next_attempt_ms, coalesce(delivered_ms, 0),"
                    " coalesce(detail, '') FROM deliveries WHERE message_id = ?1 ORDER BY recipient",
    [ST_DEPTH_ALL] = "SELECT count(*) FROM deliveries WHERE state < 2",
    [ST_AWAITING_ACK] = "SELECT count(*) FROM messages m INDEXED BY messages_ack_in WHERE m.outgoing = 0"
                        " AND m.ack_required = 1 AND NOT EXISTS (SELECT 1 FROM acks a WHERE a.message_id = m.id"
                        " AND a.by = ?1)",
    [ST_DEPTH_PEER] = "SELECT count(*) FROM deliveries WHERE state < 2 AND recipient = ?1",
    /* Our medication changes some recipient has not acknowledged yet, leaving out the
     * recipients that rejected them and those already flagged overdue (listed apart). */
    [ST_AWAITING_THEIR_ACK] = "SELECT count(DISTINCT m.id) FROM messages m INDEXED BY messages_ack_out"
                              " JOIN deliveries d ON d.message_id = m.id WHERE m.outgoing = 1 AND m.ack_required = 1"
                              " AND d.state <> 3"
                              " AND NOT EXISTS (SELECT 1 FROM acks a WHERE a.message_id = m.id AND a.by = d.recipient)"
                              " AND NOT EXISTS (SELECT 1 FROM ack_overdue o WHERE o.message_id = m.id"
                              " AND o.recipient = d.recipient)",
    [ST_PATIENT_SEEN] = "INSERT INTO patient_folds(tag, fold, distinct_ok) VALUES(?1, ?2, ?3)"
                        " ON CONFLICT(tag) DO UPDATE SET distinct_ok = max(distinct_ok, excluded.distinct_ok)"
                        " WHERE excluded.distinct_ok > distinct_ok",
    [ST_PATIENT_KNOWN] = "SELECT count(*) FROM patient_folds WHERE tag = ?1",
    [ST_PATIENT_VARIANTS] = "SELECT count(*) FROM messages WHERE patient_tag IN ("
                            STORE_PATIENT_VARIANT_TAGS("?1", "?2") ")",
    [ST_PATIENT_UNFOLDED] = "SELECT patient_tag, id FROM messages WHERE patient_tag IS NOT NULL"
                            " AND patient_tag NOT IN (SELECT tag FROM patient_folds) ORDER BY patient_tag, stored_ms",
    [ST_RCPT_ISSUED] = "INSERT INTO receipts_issued(message_id, receipt) VALUES(?1, ?2)",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    bool in_txn;
    uint64_t txn_id;    /* number of the current (or last) transaction store_begin opened */
    bool readonly;
    char err[512];
};

static int fail(store_t *s, const char *what)
{
    snprintf(s->err, sizeof s->err, "%s: %s", what, sqlite3_errmsg(s->db));
    return -1;
}

const char *store_error(const store_t *s) { return s->err; }
sqlite3 *store_db(store_t *s) { return s->db; }
bool store_in_txn(const store_t *s) { return s->in_txn; }

/* Returns the statement, reset and with bindings cleared. */
static sqlite3_stmt *stmt(store_t *s, enum stmt_id id)
{
    sqlite3_stmt *st = s->st[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Steps a statement that returns no rows; resets it. */
static int exec_done(store_t *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(s, what);
    return 0;
}

static int exec_sql(store_t *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(s->err, sizeof s->err, "%s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Prepares sql into *st and steps it once: SQLITE_ROW, SQLITE_DONE or an error code. */
static int first_row(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? sqlite3_step(*st) : rc;
}

int store_schema_check(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    char v[16] = "", *end = NULL;
    long version = 0;
    int step = first_row(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'", &st);
    if (step == SQLITE_ROW) {
        sqlite3_finalize(st);
        st = NULL;
        step = first_row(db, "SELECT value FROM meta WHERE key = 'schema_version'", &st);
    }
    if (step == SQLITE_DONE) {
        rc = 0;
        goto out;
    }
    if (step != SQLITE_ROW)
        goto sqlerr;
    int n = sqlite3_column_bytes(st, 0);
    const void *b = sqlite3_column_blob(st, 0);
    if (b && n > 0 && (size_t)n < sizeof v)
        memcpy(v, b, (size_t)n);
    if (v[0] >= '1' && v[0] <= '9')
        version = strtol(v, &end, 10);
    if (version < 1 || !end || *end != '\0') {
        snprintf(err, errlen,
                 "database %s has no valid schema version (the file is damaged or not liaison's: restore liaison.db"
                 " from a backup of this node)",
                 path);
        goto out;
    }
    if (version > SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "database %s has schema version %ld, newer than this release of liaison reads (%d): a newer release"
                 " has used it. Install that release again (going back to an older release is not supported);"
                 " the database was not changed",
                 path, version, SCHEMA_VERSION);
        goto out;
    }
    rc = 0;
    goto out;
sqlerr:
    snprintf(err, errlen, "cannot read the schema version of %s: %s", path, sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    return rc;
}

store_t *store_open(const char *path, int flags, char *err, size_t errlen)
{
    store_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->readonly = flags & STORE_READONLY;
    struct stat sb;
    if (flags & STORE_CREATE) {
        /* Created here, empty and 0600 whatever the umask: SQLite gives its -wal and -shm
         * files the database's mode, and a copy (cp, tar) keeps it. The file holds who
         * wrote to whom, when, about which patient tag. */
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST)
                snprintf(err, errlen, "database %s already exists", path);
            else
                snprintf(err, errlen, "cannot create database %s: %s", path, strerror(errno));
            goto bad;
        }
        close(fd);
    } else if (stat(path, &sb) != 0) {
        /* liaisond asks paths_check_node (config.h) first, which tells a lost database
         * from a node never made; liaison init refuses a node that has its other files. */
        snprintf(err, errlen, "no database at %s (restore it from this node's backup: see BACKUP AND RESTORE in"
                              " liaisond(8))", path);
        goto bad;
    }
    int oflags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
    oflags |= s->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &s->db, oflags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto bad;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    if (!s->readonly) {
        /* cache_size: 16 MiB at most, so that a batch of a few hundred envelopes is still
         * in the cache when the delivery pump reads it back (2 MiB, the default, made the
         * sender read 18 pages per 4 KB message from the file, 3 with this); main.c
         * releases it after 30 s without traffic. */
        if (exec_sql(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                        " PRAGMA recursive_triggers=ON; PRAGMA secure_delete=ON; PRAGMA temp_store=MEMORY;"
                        " PRAGMA cache_size=-16384;") != 0 ||
            exec_sql(s, "BEGIN IMMEDIATE") != 0) {
            int code = sqlite3_errcode(s->db) & 0xff;
            snprintf(err, errlen, "cannot set up database %s: %s%s", path, s->err,
                     code == SQLITE_NOTADB || code == SQLITE_CORRUPT
                         ? " (the file is damaged or not liaison's: restore liaison.db from a backup of this node)"
                         : "");
            goto bad;
        }
        if (store_schema_check(s->db, path, err, errlen) != 0) {
            exec_sql(s, "ROLLBACK");
            goto bad;
        }
        if (exec_sql(s, schema_sql) != 0) {
            snprintf(err, errlen, "cannot create schema in %s: %s", path, s->err);
            exec_sql(s, "ROLLBACK");
            goto bad;
        }
        char v[32];
        snprintf(v, sizeof v, "%d", SCHEMA_VERSION);
        sqlite3_stmt *st = NULL;
        /* store_schema_check refused a newer version: this creates or upgrades. */
        int ok = sqlite3_prepare_v2(s->db,
                                    "INSERT INTO meta(key, value) VALUES('schema_version', ?1)"
                                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                    -1,
                                    &st, NULL) == SQLITE_OK &&
                 sqlite3_bind_blob(st, 1, v, (int)strlen(v), SQLITE_TRANSIENT) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
        if (!ok || exec_sql(s, "COMMIT") != 0) {
            snprintf(err, errlen, "cannot initialize %s: %s", path, sqlite3_errmsg(s->db));
            exec_sql(s, "ROLLBACK");
            goto bad;
        }
    }
    if (s->readonly) {
        if (store_schema_check(s->db, path, err, errlen) != 0)
            goto bad;
        /* A database of schema 1, read before the daemon has upgraded it: an empty
         * stand-in for the table version 2 added (nothing was issued into it before),
         * so that the statements below prepare. It lives in this connection's TEMP
         * schema; the file is not written. */
        sqlite3_stmt *t = NULL;
        if (first_row(s->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'receipts_issued'", &t) ==
                SQLITE_DONE &&
            exec_sql(s, "CREATE TEMP TABLE receipts_issued(message_id BLOB PRIMARY KEY, receipt BLOB NOT NULL)"
                        " WITHOUT ROWID") != 0) {
            sqlite3_finalize(t);
            snprintf(err, errlen, "database %s: %s", path, s->err);
            goto bad;
        }
        sqlite3_finalize(t);
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "database %s: %s (is it a liaison database?)", path, sqlite3_errmsg(s->db));
            goto bad;
        }
    }
    return s;
bad:
    store_close(&s);
    return NULL;
}

void store_close(store_t **sp)
{
    store_t *s = sp ? *sp : NULL;
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db)
        sqlite3_close(s->db);
    free(s);
    *sp = NULL;
}

/* After SQLITE_FULL, SQLITE_IOERR or SQLITE_NOMEM SQLite may roll back the whole
 * transaction on its own: the connection is then back in autocommit mode. */
static bool txn_vanished(const store_t *s) { return s->in_txn && sqlite3_get_autocommit(s->db); }

uint64_t store_txn_id(const store_t *s) { return s->txn_id; }

bool store_txn_alive(const store_t *s) { return s->in_txn && !sqlite3_get_autocommit(s->db); }

int store_begin(store_t *s)
{
    if (txn_vanished(s))
        s->in_txn = false; /* a new transaction (a new id) begins below */
    if (s->in_txn)
        return 0;
    if (exec_done(s, stmt(s, ST_BEGIN), "begin transaction") != 0)
        return -1;
    s->in_txn = true;
    s->txn_id++;
    return 0;
}

int store_commit(store_t *s)
{
    if (!s->in_txn)
        return 0;
    if (txn_vanished(s)) {
        snprintf(s->err, sizeof s->err, "the transaction was rolled back after an error (%s)", sqlite3_errmsg(s->db));
        s->in_txn = false;
        return -1;
    }
    /* A database file unlinked or replaced under the running daemon still takes writes
     * (into the open, orphaned file) that vanish when it stops: refuse to commit, so that
     * nothing is reported saved that is not in the file at the database's path. */
    int moved = 0;
    if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved) {
        snprintf(s->err, sizeof s->err,
                 "the database file %s was deleted, moved or replaced while liaisond was running (stop liaisond, put"
                 " the node's database back at that path or restore it from a backup, then start liaisond again)",
                 sqlite3_db_filename(s->db, "main"));
        store_rollback(s);
        return -1;
    }
    if (exec_done(s, stmt(s, ST_COMMIT), "commit") != 0) {
        store_rollback(s);
        return -1;
    }
    s->in_txn = false;
    return 0;
}

void store_rollback(store_t *s)
{
    if (!s->in_txn)
        return;
    /* ROLLBACK can fail only if no transaction is active (SQLite may have rolled back
     * on its own after an I/O error); either way none is active afterwards. */
    sqlite3_step(stmt(s, ST_ROLLBACK));
    sqlite3_reset(s->st[ST_ROLLBACK]);
    s->in_txn = false;
}

int store_meta_get(store_t *s, const char *key, uint8_t *val, size_t cap, size_t *len)
{
    sqlite3_stmt *st = stmt(s, ST_META_GET);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int out = -1;
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (n > cap) {
            snprintf(s->err, sizeof s->err, "meta %s: value of %zu bytes does not fit", key, n);
        } else {
            if (n)
                memcpy(val, sqlite3_column_blob(st, 0), n);
            *len = n;
            out = 0;
        }
    } else if (rc == SQLITE_DONE) {
        out = 1;
    } else {
        fail(s, "read meta");
    }
    sqlite3_reset(st);
    return out;
}

int store_meta_set(store_t *s, const char *key, const uint8_t *val, size_t len)
{
    sqlite3_stmt *st = stmt(s, ST_META_SET);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, val, (int)len, SQLITE_STATIC);
    return exec_done(s, st, "write meta");
}

int store_peer_put(store_t *s, const char *id, const char *card_text, uint64_t now_ms)
{
    if (store_peer_remove(s, id, now_ms) < 0)
        return -1;
    sqlite3_stmt *st = stmt(s, ST_PEER_PUT);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, card_text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)now_ms);
    return exec_done(s, st, "store peer");
}

int store_peer_remove(store_t *s, const char *id, uint64_t now_ms)
{
    sqlite3_stmt *st = stmt(s, ST_PEER_DEL);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)now_ms);
    if (exec_done(s, st, "remove peer") != 0)
        return -1;
    return sqlite3_changes(s->db) > 0 ? 0 : 1;
}

static int each_peer(store_t *s, sqlite3_stmt *st, store_peer_cb cb, void *ctx)
{
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out = cb(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                 (uint64_t)sqlite3_column_int64(st, 2));
        if (out)
            break;
    }
    if (!out && rc != SQLITE_DONE)
        out = fail(s, "list peers");
    sqlite3_reset(st);
    return out;
}

int store_peer_each(store_t *s, store_peer_cb cb, void *ctx)
{
    return each_peer(s, stmt(s, ST_PEER_EACH), cb, ctx);
}

int store_peer_history(store_t *s, const char *id, store_peer_cb cb, void *ctx)
{
    sqlite3_stmt *st = stmt(s, ST_PEER_HIST);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return each_peer(s, st, cb, ctx);
}

int store_msg_insert(store_t *s, const store_msg_t *m, const uint8_t *env, size_t env_len)
{
    sqlite3_stmt *st = stmt(s, ST_MSG_INSERT);
    sqlite3_bind_blob(st, 1, m->id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, m->outgoing ? 1 : 0);
    sqlite3_bind_text(st, 3, m->sender, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, m->recipients, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)m->created_ms);
    sqlite3_bind_int64(st, 6, m->content_type);
    if (m->has_thread)
        sqlite3_bind_blob(st, 7, m->thread_id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 8, env, (int)env_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 9, m->envelope_hash, LIAISON_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)m->stored_ms);
    if (m->has_patient_tag)
        sqlite3_bind_blob(st, 11, m->patient_tag, LIAISON_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(st, 13, m->ack_required ? 1 : 0);
    sqlite3_bind_int(st, 14, m->urgent ? 1 : 0);
    if (m->has_ref)
        sqlite3_bind_blob(st, 15, m->ref_id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    if (exec_done(s, st, "store message") != 0)
        return -1;
    return sqlite3_changes(s->db) > 0 ? 0 : 1;
}

int store_receipt_issued(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const uint8_t *receipt,
                         size_t receipt_len)
{
    sqlite3_stmt *st = stmt(s, ST_RCPT_ISSUED);
    sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, receipt, (int)receipt_len, SQLITE_STATIC);
    return exec_done(s, st, "store an issued receipt");
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static void fill_msg(sqlite3_stmt *st, store_msg_t *m)
{
    memset(m, 0, sizeof *m);
    if (sqlite3_column_bytes(st, 0) == LIAISON_MSGID_BYTES)
        memcpy(m->id, sqlite3_column_blob(st, 0), LIAISON_MSGID_BYTES);
    m->outgoing = sqlite3_column_int(st, 1) != 0;
    copy_text(m->sender, sizeof m->sender, sqlite3_column_text(st, 2));
    copy_text(m->recipients, sizeof m->recipients, sqlite3_column_text(st, 3));
    m->created_ms = (uint64_t)sqlite3_column_int64(st, 4);
    m->content_type = (uint32_t)sqlite3_column_int64(st, 5);
    if (sqlite3_column_bytes(st, 6) == LIAISON_MSGID_BYTES) {
        m->has_thread = true;
        memcpy(m->thread_id, sqlite3_column_blob(st, 6), LIAISON_MSGID_BYTES);
    }
    m->stored_ms = (uint64_t)sqlite3_column_int64(st, 7);
    m->read_ms = (uint64_t)sqlite3_column_int64(st, 8);
    if (sqlite3_column_bytes(st, 9) == LIAISON_HASH_BYTES) {
        m->has_patient_tag = true;
        memcpy(m->patient_tag, sqlite3_column_blob(st, 9), LIAISON_HASH_BYTES);
    }
    if (sqlite3_column_bytes(st, 10) == LIAISON_HASH_BYTES)
        memcpy(m->envelope_hash, sqlite3_column_blob(st, 10), LIAISON_HASH_BYTES);
    m->ack_required = sqlite3_column_int(st, 11) != 0;
    m->urgent = sqlite3_column_int(st, 12) != 0;
    if (sqlite3_column_bytes(st, 13) == LIAISON_MSGID_BYTES) {
        m->has_ref = true;
        memcpy(m->ref_id, sqlite3_column_blob(st, 13), LIAISON_MSGID_BYTES);
    }
}

static int copy_blob(sqlite3_stmt *st, int col, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int n = sqlite3_column_bytes(st, col);
    const void *p = sqlite3_column_blob(st, col);
    if (!p)
        return 0;
    *out = malloc((size_t)n ? (size_t)n : 1);
    if (!*out)
        return -1;
    memcpy(*out, p, (size_t)n);
    *len = (size_t)n;
    return 0;
}

int store_msg_get(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], store_msg_t *m, uint8_t **env,
                  size_t *env_len, uint8_t **receipt, size_t *receipt_len)
{
    sqlite3_stmt *st = stmt(s, env || receipt ? ST_MSG_GET : ST_MSG_META);
    sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    int rc = sqlite3_step(st), out = -1;
    if (env)
        *env = NULL;
    if (receipt)
        *receipt = NULL;
    if (rc == SQLITE_ROW) {
        if (m)
            fill_msg(st, m);
        out = 0;
        if (env && copy_blob(st, 14, env, env_len) != 0)
            out = -1;
        if (out == 0 && receipt && copy_blob(st, 15, receipt, receipt_len) != 0)
            out = -1;
        if (out != 0) {
            snprintf(s->err, sizeof s->err, "out of memory");
            if (env) {
                free(*env);
                *env = NULL;
            }
        }
    } else if (rc == SQLITE_DONE) {
        out = 1;
    } else {
        fail(s, "read message");
    }
    sqlite3_reset(st);
    return out;
}

int store_msg_mark_read(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], uint64_t now_ms)
{
    sqlite3_stmt *st = stmt(s, ST_MSG_READ);
    sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)now_ms);
    if (exec_done(s, st, "mark read") != 0)
        return -1;
    return sqlite3_changes(s->db) > 0 ? 0 : 1;
}

/* The filters of q as SQL over messages m (fixed text, every value a parameter: ?1
 * since, ?2 thread, ?3 patient tag, ?4 content type, ?5 until, ?7 this node's id). */
static void query_where(const store_query_t *q, char *buf, size_t len)
{
    snprintf(buf, len, "created_ms >= ?1%s%s%s%s%s%s%s", q->until_ms ? " AND created_ms <= ?5" : "",
             q->direction == 1 ? " AND outgoing = 0" : q->direction == 2 ? " AND outgoing = 1" : "",
             q->unread_only ? " AND outgoing = 0 AND read_ms IS NULL" : "",
             q->thread_id ? " AND (thread_id = ?2 OR id = ?2)" : "", q->patient_tag ? " AND patient_tag = ?3" : "",
             q->content_type ? " AND content_type = ?4" : "",
             q->needs_ack ? " AND ack_required = 1 AND ((outgoing = 0 AND NOT EXISTS (SELECT 1 FROM acks a"
                            " WHERE a.message_id = m.id AND a.by = ?7)) OR (outgoing = 1 AND EXISTS (SELECT 1 FROM"
                            " deliveries d WHERE d.message_id = m.id AND NOT EXISTS (SELECT 1 FROM acks a WHERE"
                            " a.message_id = m.id AND a.by = d.recipient))))"
                          : "");
}

static void query_bind(sqlite3_stmt *st, const store_query_t *q)
{
    sqlite3_bind_int64(st, 1, (sqlite3_int64)q->since_ms);
    if (q->thread_id)
        sqlite3_bind_blob(st, 2, q->thread_id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    if (q->patient_tag)
        sqlite3_bind_blob(st, 3, q->patient_tag, LIAISON_HASH_BYTES, SQLITE_STATIC);
    if (q->content_type)
        sqlite3_bind_int64(st, 4, q->content_type);
    if (q->until_ms)
        sqlite3_bind_int64(st, 5, q->until_ms > INT64_MAX ? INT64_MAX : (sqlite3_int64)q->until_ms);
    if (q->needs_ack)
        sqlite3_bind_text(st, 7, q->self_id ? q->self_id : "", -1, SQLITE_STATIC);
}

int store_msg_each(store_t *s, const store_query_t *q, store_msg_cb cb, void *ctx)
{
    /* Built per call (listing is not a hot path); only fixed SQL text and bound values. */
    char where[1024], sql[1792];
    query_where(q, where, sizeof where);
    /* The limit always keeps the newest messages; a thread is then read oldest first. */
    bool asc = q->thread_id != NULL;
    snprintf(sql, sizeof sql,
             "SELECT * FROM (SELECT id, outgoing, sender, recipients, created_ms, content_type, thread_id, stored_ms,"
             " read_ms, patient_tag, envelope_hash, ack_required, urgent, ref_id FROM messages m"
             " WHERE %s ORDER BY created_ms %s, id %s LIMIT ?6) ORDER BY created_ms %s, id %s",
             where, q->oldest ? "ASC" : "DESC", q->oldest ? "ASC" : "DESC", asc ? "ASC" : "DESC", asc ? "ASC" : "DESC");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fail(s, "list messages");
    query_bind(st, q);
    sqlite3_bind_int64(st, 6, q->limit ? (sqlite3_int64)q->limit : -1);
    int rc, out = 0;
    store_msg_t m;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fill_msg(st, &m);
        if ((out = cb(ctx, &m)) != 0)
            break;
    }
    if (!out && rc != SQLITE_DONE)
        out = fail(s, "list messages");
    sqlite3_finalize(st);
    return out;
}

int64_t store_msg_count(store_t *s, const store_query_t *q)
{
    char where[1024], sql[1200];
    query_where(q, where, sizeof where);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages m WHERE %s", where);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fail(s, "count messages");
    query_bind(st, q);
    int64_t count = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        count = sqlite3_column_int64(st, 0);
    else
        fail(s, "count messages");
    sqlite3_finalize(st);
    return count;
}

const char *store_delivery_state_name(delivery_state_t st)
{
    static const char *names[] = {"queued", "sent", "delivered", "rejected"};
    return (unsigned)st < 4 ? names[st] : "unknown";
}

int store_delivery_add(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *recipient, uint64_t now_ms)
{
    return store_delivery_add_as(s, id, recipient, false, now_ms);
}

int store_delivery_add_as(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *recipient, bool sent,
                          uint64_t next_attempt_ms)
{
    sqlite3_stmt *st = stmt(s, ST_DLV_ADD);
    sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, recipient, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)next_attempt_ms);
    sqlite3_bind_int(st, 4, sent ? 1 : 0); /* state sent (1) after one attempt, or queued (0) after none */
    return exec_done(s, st, "queue delivery");
}

static void fill_delivery(sqlite3_stmt *st, store_delivery_t *d, bool full)
{
    memset(d, 0, sizeof *d);
    if (sqlite3_column_bytes(st, 0) == LIAISON_MSGID_BYTES)
        memcpy(d->message_id, sqlite3_column_blob(st, 0), LIAISON_MSGID_BYTES);
    copy_text(d->recipient, sizeof d->recipient, sqlite3_column_text(st, 1));
    d->state = (delivery_state_t)sqlite3_column_int(st, 2);
    d->attempts = (uint32_t)sqlite3_column_int(st, 3);
    d->next_attempt_ms = (uint64_t)sqlite3_column_int64(st, 4);
    if (full) {
        d->delivered_ms = (uint64_t)sqlite3_column_int64(st, 5);
        copy_text(d->detail, sizeof d->detail, sqlite3_column_text(st, 6));
    }
}

/* Runs a delivery-returning statement, calling cb per row. */
static int each_delivery(store_t *s, sqlite3_stmt *st, bool full, store_delivery_cb cb, void *ctx, const char *what)
{
    int rc, out = 0;
    store_delivery_t d;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fill_delivery(st, &d, full);
        if ((out = cb(ctx, &d)) != 0)
            break;
    }
    if (!out && rc != SQLITE_DONE)
        out = fail(s, what);
    sqlite3_reset(st);
    return out;
}

int store_delivery_due(store_t *s, uint64_t now_ms, uint64_t beyond_ms, uint32_t limit, store_delivery_cb cb,
                       void *ctx)
{
    sqlite3_stmt *st = stmt(s, ST_DLV_DUE);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)now_ms);
    sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
    sqlite3_bind_int64(st, 3, beyond_ms > (uint64_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)beyond_ms);
    return each_delivery(s, st, false, cb, ctx, "list due deliveries");
}

int store_delivery_next_due(store_t *s, uint64_t *due)
{
    sqlite3_stmt *st = stmt(s, ST_DLV_NEXT);
    int out = 0;
    if (sqlite3_step(st) != SQLITE_ROW) /* min() always gives a row: an error, not "none due" */
        out = fail(s, "find the next delivery due");
    else
        *due = sqlite3_column_type(st, 0) == SQLITE_NULL ? UINT64_MAX : (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return out;
}

int store_delivery_attempted(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *recipient,
                             delivery_state_t state, uint64_t next_attempt_ms, const char *detail)
{
    sqlite3_stmt *st = stmt(s, ST_DLV_ATTEMPT);
    sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, recipient, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)state);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)next_attempt_ms);
    if (detail)
        sqlite3_bind_text(st, 5, detail, -1, SQLITE_STATIC);
    return exec_done(s, st, "record delivery attempt");
}

int store_delivery_done(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *recipient,
                        const uint8_t *receipt, size_t receipt_len, uint64_t now_ms)
{
    sqlite3_stmt *st = stmt(s, ST_DLV_DONE);
    sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, recipient, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, receipt, (int)receipt_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)now_ms);
    if (exec_done(s, st, "store receipt") != 0)
        return -1;
    return sqlite3_changes(s->db) > 0 ? 0 : 1;
}

int store_delivery_rejected(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *recipient,
                            const char *reason)
{
    sqlite3_stmt *st = stmt(s, ST_DLV_REJECT);
    sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, recipient, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
    if (exec_done(s, st, "record rejection") != 0)
        return -1;
    return sqlite3_changes(s->db) > 0 ? 0 : 1;
}

int store_delivery_wake(store_t *s, const char *recipient, uint64_t now_ms)
{
    sqlite3_stmt *st = stmt(s, ST_DLV_WAKE);
    sqlite3_bind_text(st, 1, recipient, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)now_ms);
    return exec_done(s, st, "reschedule deliveries");
}

int64_t store_delivery_reject_pending(store_t *s, const char *recipient, const char *reason,
                                      int (*cb)(void *ctx, const uint8_t *msgid, uint32_t content_type), void *ctx)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT d.message_id, m.content_type FROM deliveries d JOIN messages m ON m.id = d.message_id"
                           " WHERE d.recipient = ?1 AND d.state < 2 ORDER BY d.message_id",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "list pending deliveries");
    sqlite3_bind_text(st, 1, recipient, -1, SQLITE_STATIC);
    uint8_t (*ids)[LIAISON_MSGID_BYTES] = NULL;
    uint32_t *types = NULL;
    size_t n = 0, cap = 0;
    int rc;
    int64_t out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != LIAISON_MSGID_BYTES)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            void *pi = realloc(ids, cap * sizeof *ids), *pt = pi ? realloc(types, cap * sizeof *types) : NULL;
            if (pi)
                ids = pi;
            if (pt)
                types = pt;
            if (!pi || !pt) {
                snprintf(s->err, sizeof s->err, "out of memory");
                out = -1;
                break;
            }
        }
        memcpy(ids[n], sqlite3_column_blob(st, 0), LIAISON_MSGID_BYTES);
        types[n++] = (uint32_t)sqlite3_column_int64(st, 1);
    }
    if (out == 0 && rc != SQLITE_DONE)
        out = fail(s, "list pending deliveries");
    sqlite3_finalize(st);
    for (size_t i = 0; out >= 0 && i < n; i++) {
        int r = store_delivery_rejected(s, ids[i], recipient, reason);
        if (r < 0 || (r == 0 && cb && cb(ctx, ids[i], types[i]) != 0))
            out = -1;
        else if (r == 0)
            out++;
    }
    free(ids);
    free(types);
    return out;
}

int store_delivery_each(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], store_delivery_cb cb, void *ctx)
{
    sqlite3_stmt *st = stmt(s, ST_DLV_EACH);
    sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    return each_delivery(s, st, true, cb, ctx, "list deliveries");
}

/* Runs a bound count(*) statement: its result, or -1 with the store's error set. */
static int64_t count_of(store_t *s, sqlite3_stmt *st, const char *what)
{
    int64_t out = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        out = sqlite3_column_int64(st, 0);
    else
        fail(s, what);
    sqlite3_reset(st);
    return out;
}

int64_t store_queue_depth(store_t *s, const char *recipient)
{
    sqlite3_stmt *st = stmt(s, recipient ? ST_DEPTH_PEER : ST_DEPTH_ALL);
    if (recipient)
        sqlite3_bind_text(st, 1, recipient, -1, SQLITE_STATIC);
    return count_of(s, st, "count queue");
}

int64_t store_awaiting_ack(store_t *s, const char *me)
{
    sqlite3_stmt *st = stmt(s, ST_AWAITING_ACK);
    sqlite3_bind_text(st, 1, me, -1, SQLITE_STATIC);
    return count_of(s, st, "count acknowledgements owed");
}

int64_t store_awaiting_their_ack(store_t *s)
{
    return count_of(s, stmt(s, ST_AWAITING_THEIR_ACK), "count acknowledgements awaited");
}

int store_patient_seen(store_t *s, const uint8_t tag[static LIAISON_HASH_BYTES],
                       const uint8_t fold[static LIAISON_HASH_BYTES], bool distinct_ok)
{
    sqlite3_stmt *st = stmt(s, ST_PATIENT_SEEN);
    sqlite3_bind_blob(st, 1, tag, LIAISON_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, fold, LIAISON_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, distinct_ok ? 1 : 0);
    return exec_done(s, st, "record a patient tag");
}

int store_patient_known(store_t *s, const uint8_t tag[static LIAISON_HASH_BYTES])
{
    sqlite3_stmt *st = stmt(s, ST_PATIENT_KNOWN);
    sqlite3_bind_blob(st, 1, tag, LIAISON_HASH_BYTES, SQLITE_STATIC);
    int64_t n = count_of(s, st, "look up a patient tag");
    return n < 0 ? -1 : n > 0;
}

int store_patient_unfolded(store_t *s, store_unfolded_cb cb, void *ctx)
{
    sqlite3_stmt *st = stmt(s, ST_PATIENT_UNFOLDED);
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != LIAISON_HASH_BYTES || sqlite3_column_bytes(st, 1) != LIAISON_MSGID_BYTES)
            continue; /* the table's CHECKs rule this out */
        if ((out = cb(ctx, sqlite3_column_blob(st, 0), sqlite3_column_blob(st, 1))) != 0)
            break;
    }
    if (!out && rc != SQLITE_DONE)
        out = fail(s, "list patient tags without a fold tag");
    sqlite3_reset(st);
    return out < 0 ? -1 : 0;
}

int64_t store_patient_variants(store_t *s, const uint8_t tag[static LIAISON_HASH_BYTES],
                               const uint8_t fold[static LIAISON_HASH_BYTES])
{
    sqlite3_stmt *st = stmt(s, ST_PATIENT_VARIANTS);
    sqlite3_bind_blob(st, 1, tag, LIAISON_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, fold, LIAISON_HASH_BYTES, SQLITE_STATIC);
    return count_of(s, st, "look for patient ids that differ only in case");
}

int store_op_begin(store_t *s)
{
    if (store_begin(s) != 0)
        return -1;
    return exec_done(s, stmt(s, ST_SAVEPOINT), "savepoint");
}

int store_op_end(store_t *s, bool ok)
{
    if (!ok && exec_done(s, stmt(s, ST_ROLLBACK_TO), "rollback to savepoint") != 0) {
        store_rollback(s);
        return -1;
    }
    if (exec_done(s, stmt(s, ST_RELEASE), "release savepoint") != 0) {
        store_rollback(s);
        return -1;
    }
    return 0;
}

/* ---- acknowledgements, overdue flags, case reviews (not hot paths: prepared per call) ---- */

static sqlite3_stmt *prep(store_t *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail(s, "prepare");
        return NULL;
    }
    return st;
}

/* Steps a one-shot write statement and finalizes it. Returns 0 changed, 1 unchanged, -1 error. */
static int write_once(store_t *s, sqlite3_stmt *st, const char *what)
{
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fail(s, what);
    return sqlite3_changes(s->db) > 0 ? 0 : 1;
}

int store_ack_add(store_t *s, const uint8_t msg[static LIAISON_MSGID_BYTES], const char *by,
                  const uint8_t ack_id[static LIAISON_MSGID_BYTES], uint64_t at_ms)
{
    sqlite3_stmt *st = prep(s, "INSERT INTO acks(message_id, by, ack_id, at_ms) VALUES(?1, ?2, ?3, ?4)"
                               " ON CONFLICT DO NOTHING");
    if (st) {
        sqlite3_bind_blob(st, 1, msg, LIAISON_MSGID_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, by, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, ack_id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)at_ms);
    }
    return write_once(s, st, "store acknowledgement");
}

int store_ack_each(store_t *s, const uint8_t msg[static LIAISON_MSGID_BYTES], store_ack_cb cb, void *ctx)
{
    sqlite3_stmt *st = prep(s, "SELECT by, ack_id, at_ms FROM acks WHERE message_id = ?1 ORDER BY at_ms");
    if (!st)
        return -1;
    sqlite3_bind_blob(st, 1, msg, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *ack = sqlite3_column_bytes(st, 1) == LIAISON_MSGID_BYTES ? sqlite3_column_blob(st, 1) : NULL;
        if ((out = cb(ctx, (const char *)sqlite3_column_text(st, 0), ack, (uint64_t)sqlite3_column_int64(st, 2))))
            break;
    }
    if (!out && rc != SQLITE_DONE)
        out = fail(s, "list acknowledgements");
    sqlite3_finalize(st);
    return out;
}

/* Hands each row (id, recipient, urgent, created_ms) of an overdue query to cb, then
 * finalizes st: cb's first non-zero return, or -1 (what names the read) on an error. */
static int overdue_rows(store_t *s, sqlite3_stmt *st, store_overdue_cb cb, void *ctx, const char *what)
{
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != LIAISON_MSGID_BYTES)
            continue;
        if ((out = cb(ctx, sqlite3_column_blob(st, 0), (const char *)sqlite3_column_text(st, 1),
                      sqlite3_column_int(st, 2) != 0, (uint64_t)sqlite3_column_int64(st, 3))))
            break;
    }
    if (!out && rc != SQLITE_DONE)
        out = fail(s, what);
    sqlite3_finalize(st);
    return out;
}

int store_overdue_scan(store_t *s, uint64_t now_ms, uint64_t routine_ms, uint64_t urgent_ms, bool flagged,
                       store_overdue_cb cb, void *ctx)
{
    /* Outgoing medication changes asking for acknowledgement, per recipient without an
     * acknowledgement whose deadline has passed; new ones (flagged = false) or those
     * already flagged (flagged = true). */
    sqlite3_stmt *st = prep(s, flagged
        ? "SELECT m.id, d.recipient, m.urgent, m.created_ms FROM ack_overdue o JOIN messages m ON m.id = o.message_id"
          " JOIN deliveries d ON d.message_id = o.message_id AND d.recipient = o.recipient"
          " WHERE NOT EXISTS (SELECT 1 FROM acks a WHERE a.message_id = m.id AND a.by = d.recipient)"
          " ORDER BY m.urgent DESC, m.created_ms"
        : "SELECT m.id, d.recipient, m.urgent, m.created_ms FROM messages m INDEXED BY messages_ack_out"
          " JOIN deliveries d ON d.message_id = m.id"
          " WHERE m.outgoing = 1 AND m.ack_required = 1 AND d.state <> 3"
          " AND m.created_ms + CASE WHEN m.urgent THEN ?2 ELSE ?3 END <= ?1"
          " AND NOT EXISTS (SELECT 1 FROM acks a WHERE a.message_id = m.id AND a.by = d.recipient)"
          " AND NOT EXISTS (SELECT 1 FROM ack_overdue o WHERE o.message_id = m.id AND o.recipient = d.recipient)");
    if (!st)
        return -1;
    if (!flagged) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)now_ms);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)urgent_ms);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)routine_ms);
    }
    return overdue_rows(s, st, cb, ctx, "scan overdue acknowledgements");
}

int64_t store_overdue_count(store_t *s)
{
    sqlite3_stmt *st = prep(s, "SELECT count(DISTINCT o.message_id) FROM ack_overdue o"
                               " JOIN deliveries d ON d.message_id = o.message_id AND d.recipient = o.recipient"
                               " WHERE NOT EXISTS (SELECT 1 FROM acks a WHERE a.message_id = o.message_id"
                               " AND a.by = d.recipient)");
    if (!st)
        return -1;
    int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        fail(s, "count overdue acknowledgements");
    sqlite3_finalize(st);
    return n;
}

int store_overdue_of(store_t *s, const uint8_t msg[static LIAISON_MSGID_BYTES], store_overdue_cb cb, void *ctx)
{
    sqlite3_stmt *st = prep(s, "SELECT m.id, d.recipient, m.urgent, m.created_ms FROM ack_overdue o"
                               " JOIN messages m ON m.id = o.message_id"
                               " JOIN deliveries d ON d.message_id = o.message_id AND d.recipient = o.recipient"
                               " WHERE o.message_id = ?1"
                               " AND NOT EXISTS (SELECT 1 FROM acks a WHERE a.message_id = m.id AND a.by = d.recipient)"
                               " ORDER BY d.recipient");
    if (!st)
        return -1;
    sqlite3_bind_blob(st, 1, msg, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    return overdue_rows(s, st, cb, ctx, "read the overdue acknowledgements of a message");
}

int store_overdue_flag(store_t *s, const uint8_t msg[static LIAISON_MSGID_BYTES], const char *recipient,
                       uint64_t now_ms)
{
    sqlite3_stmt *st = prep(s, "INSERT INTO ack_overdue(message_id, recipient, flagged_ms) VALUES(?1, ?2, ?3)"
                               " ON CONFLICT DO NOTHING");
    if (st) {
        sqlite3_bind_blob(st, 1, msg, LIAISON_MSGID_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, recipient, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)now_ms);
    }
    return write_once(s, st, "flag overdue acknowledgement");
}

int store_review_open(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *opened_by,
                      const uint8_t *patient_tag, uint64_t now_ms)
{
    sqlite3_stmt *st = prep(s, "INSERT INTO reviews(review_id, opened_by, opened_ms, patient_tag) VALUES(?1, ?2, ?3, ?4)"
                               " ON CONFLICT DO NOTHING");
    if (st) {
        sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, opened_by, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)now_ms);
        if (patient_tag)
            sqlite3_bind_blob(st, 4, patient_tag, LIAISON_HASH_BYTES, SQLITE_STATIC);
    }
    return write_once(s, st, "open review");
}

int store_review_add(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *participant, uint64_t now_ms)
{
    sqlite3_stmt *st = prep(s, "INSERT INTO review_participants(review_id, participant, added_ms) VALUES(?1, ?2, ?3)"
                               " ON CONFLICT DO NOTHING");
    if (st) {
        sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, participant, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)now_ms);
    }
    return write_once(s, st, "add review participant");
}

int store_review_close(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], uint64_t now_ms)
{
    sqlite3_stmt *st = prep(s, "UPDATE reviews SET closed_ms = ?2 WHERE review_id = ?1 AND closed_ms IS NULL");
    if (st) {
        sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)now_ms);
    }
    return write_once(s, st, "close review");
}

int store_review_get(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], store_review_t *r)
{
    memset(r, 0, sizeof *r);
    sqlite3_stmt *st = prep(s, "SELECT opened_by, opened_ms, coalesce(closed_ms, 0),"
                               " (SELECT count(*) FROM messages WHERE thread_id = ?1) FROM reviews WHERE review_id = ?1");
    if (!st)
        return -1;
    sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    int rc = sqlite3_step(st), out;
    if (rc == SQLITE_ROW) {
        memcpy(r->review_id, id, LIAISON_MSGID_BYTES);
        copy_text(r->opened_by, sizeof r->opened_by, sqlite3_column_text(st, 0));
        r->opened_ms = (uint64_t)sqlite3_column_int64(st, 1);
        r->closed_ms = (uint64_t)sqlite3_column_int64(st, 2);
        r->messages = (uint32_t)sqlite3_column_int(st, 3);
        out = 0;
    } else {
        out = rc == SQLITE_DONE ? 1 : fail(s, "read review");
    }
    sqlite3_finalize(st);
    if (out != 0)
        return out;
    st = prep(s, "SELECT participant FROM review_participants WHERE review_id = ?1 ORDER BY added_ms, participant");
    if (!st)
        return -1;
    sqlite3_bind_blob(st, 1, id, LIAISON_MSGID_BYTES, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && r->n_participants < LIAISON_MAX_RECIPIENTS)
        copy_text(r->participants[r->n_participants++], LIAISON_MAX_ID + 1, sqlite3_column_text(st, 0));
    /* Never a list cut short: whoever fell off it would be refused, or left out. */
    if (rc == SQLITE_ROW) {
        snprintf(s->err, sizeof s->err, "review has more than %u participants (the database was changed outside"
                                        " liaisond?)", LIAISON_MAX_RECIPIENTS);
        out = -1;
    } else {
        out = rc == SQLITE_DONE ? 0 : fail(s, "read review participants");
    }
    sqlite3_finalize(st);
    return out;
}

bool store_review_has(const store_review_t *r, const char *id)
{
    for (size_t i = 0; i < r->n_participants; i++)
        if (strcmp(r->participants[i], id) == 0)
            return true;
    return false;
}

int store_review_each(store_t *s, bool open_only, store_review_cb cb, void *ctx)
{
    sqlite3_stmt *st = prep(s, open_only ? "SELECT review_id FROM reviews WHERE closed_ms IS NULL ORDER BY opened_ms"
                                         : "SELECT review_id FROM reviews ORDER BY opened_ms");
    if (!st)
        return -1;
    int rc, out = 0;
    store_review_t r;
    uint8_t id[LIAISON_MSGID_BYTES];
    /* Collect ids first: store_review_get prepares its own statements. */
    uint8_t (*ids)[LIAISON_MSGID_BYTES] = NULL;
    size_t n = 0, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != LIAISON_MSGID_BYTES)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            void *p = realloc(ids, cap * sizeof *ids);
            if (!p) {
                snprintf(s->err, sizeof s->err, "out of memory");
                out = -1;
                break;
            }
            ids = p;
        }
        memcpy(ids[n++], sqlite3_column_blob(st, 0), LIAISON_MSGID_BYTES);
    }
    /* A read that fails part way is an error, not a shorter list. */
    if (out == 0 && rc != SQLITE_DONE)
        out = fail(s, "list reviews");
    sqlite3_finalize(st);
    for (size_t i = 0; out == 0 && i < n; i++) {
        memcpy(id, ids[i], sizeof id);
        int got = store_review_get(s, id, &r);
        if (got < 0)
            out = -1;
        else if (got == 0)
            out = cb(ctx, &r);
    }
    free(ids);
    return out;
}

int store_has_patient_tags(store_t *s)
{
    sqlite3_stmt *st = prep(s, "SELECT EXISTS(SELECT 1 FROM messages WHERE patient_tag IS NOT NULL)"
                               " OR EXISTS(SELECT 1 FROM reviews WHERE patient_tag IS NOT NULL)"
                               " OR EXISTS(SELECT 1 FROM audit WHERE length(patient_tag) > 0)");
    if (!st)
        return -1;
    int rc = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = sqlite3_column_int(st, 0) != 0;
    else
        fail(s, "look for patient tags");
    sqlite3_finalize(st);
    return rc;
}
