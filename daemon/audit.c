/* SPDX-License-Identifier: Apache-2.0 */
/* Owns appending to the hash-chained audit table and its canonical entry encoding. */
#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "audit_codec.h"
#include "merkle.h"
#include "text.h"

struct audit {
    store_t *store;
    sqlite3_stmt *head;
    sqlite3_stmt *insert;
    sqlite3_stmt *count;
    sqlite3_stmt *since;
    sqlite3_stmt *range;
    uint64_t n_leaves; /* committed entries the tree covers (brought up to date by audit_sync) */
    /* Hashes of every complete, aligned perfect subtree of 2^(TREE_MIN_LEVEL + i) leaves,
     * kept as leaves arrive, so roots and proofs over the whole log cost O(log n)
     * (a checkpoint of a million-entry log would otherwise rehash a million leaves). */
    uint8_t (*level[64])[LIAISON_HASH_BYTES];
    uint64_t n_level[64], cap_level[64];
    /* Leaf hashes are not all kept (32 bytes an entry would grow without end): only those
     * of the last, incomplete block, and one complete block: the last one completed, or an
     * older one read back from the table when a proof reaches into it (an auditor's
     * inclusion proof, a consistency proof from a peer's older checkpoint). */
    uint8_t tail[256][LIAISON_HASH_BYTES];
    uint8_t old[256][LIAISON_HASH_BYTES];
    uint64_t old_block; /* the block old holds, UINT64_MAX for none */
    merkle_oracle_t oracle;
};

#define TREE_MIN_LEVEL 8u /* 256 leaves: one block */
#define BLOCK (1u << TREE_MIN_LEVEL)

static int level_push(audit_t *a, unsigned i, const uint8_t h[static LIAISON_HASH_BYTES])
{
    if (a->n_level[i] == a->cap_level[i]) {
        uint64_t cap = a->cap_level[i] ? a->cap_level[i] * 2 : 64;
        void *p = realloc(a->level[i], cap * sizeof *a->level[i]);
        if (!p)
            return -1;
        a->level[i] = p;
        a->cap_level[i] = cap;
    }
    memcpy(a->level[i][a->n_level[i]++], h, LIAISON_HASH_BYTES);
    return 0;
}

/* After leaf n_leaves was appended: record the subtrees it completes. */
static int tree_grow(audit_t *a)
{
    if (a->n_leaves % BLOCK != 0)
        return 0;
    uint8_t h[LIAISON_HASH_BYTES];
    if (merkle_root((const uint8_t(*)[LIAISON_HASH_BYTES])a->tail, BLOCK, h) != 0 || level_push(a, 0, h) != 0)
        return -1;
    /* The block just completed is the one the next consistency proof (from the checkpoint
     * a peer last held, a block or less ago) reaches into: keep it rather than read it back. */
    memcpy(a->old, a->tail, sizeof a->old);
    a->old_block = a->n_leaves / BLOCK - 1;
    for (unsigned i = 0; i + 1 < 64 && a->n_level[i] % 2 == 0; i++) {
        merkle_node_hash(a->level[i][a->n_level[i] - 2], a->level[i][a->n_level[i] - 1], h);
        if (level_push(a, i + 1, h) != 0)
            return -1;
    }
    return 0;
}

/* The leaf hash of the entry in the current row of st (columns as audit_record_from_row),
 * which must be entry seq. Returns 0 or -1. */
static int row_leaf(sqlite3_stmt *st, uint64_t seq, uint8_t out[static LIAISON_HASH_BYTES])
{
    audit_record_t r;
    uint8_t buf[AUDIT_ENCODE_INLINE], *spill = NULL;
    const uint8_t *e;
    size_t elen = 0;
    if (audit_record_from_row(st, 0, &r) != 0 || r.seq != seq || !(e = audit_encode_in(&r, buf, &spill, &elen)))
        return -1;
    merkle_leaf_hash(e, elen, out);
    free(spill);
    return 0;
}

/* Reads the leaves of complete block b (entries b*BLOCK+1 .. (b+1)*BLOCK) into a->old. */
static int load_block(audit_t *a, uint64_t b)
{
    if (a->old_block == b)
        return 0;
    a->old_block = UINT64_MAX;
    sqlite3_stmt *st = a->range;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(b * BLOCK));
    sqlite3_bind_int64(st, 2, (sqlite3_int64)((b + 1) * BLOCK));
    uint64_t got = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (got == BLOCK || row_leaf(st, b * BLOCK + got + 1, a->old[got]) != 0)
            break;
        got++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE || got != BLOCK)
        return -1;
    a->old_block = b;
    return 0;
}

/* The oracle over the whole log: subtrees of a block or more from the level hashes,
 * smaller ones (down to single leaves) from the block's leaves. */
static bool tree_perfect(void *ctx, uint64_t lo, uint64_t size, uint8_t out[static LIAISON_HASH_BYTES])
{
    audit_t *a = ctx;
    if (size == 0 || (size & (size - 1)) != 0 || lo % size != 0 || lo + size > a->n_leaves)
        return false;
    if (size < BLOCK) {
        uint64_t b = lo / BLOCK;
        const uint8_t(*leaves)[LIAISON_HASH_BYTES] = (const uint8_t(*)[LIAISON_HASH_BYTES])a->tail;
        if (b < a->n_leaves / BLOCK) {
            if (load_block(a, b) != 0)
                return false;
            leaves = (const uint8_t(*)[LIAISON_HASH_BYTES])a->old;
        }
        return merkle_root(leaves + lo % BLOCK, size, out) == 0;
    }
    unsigned i = 0;
    while ((1ull << (TREE_MIN_LEVEL + i)) < size)
        i++;
    uint64_t idx = lo / size;
    if (i >= 64 || idx >= a->n_level[i])
        return false;
    memcpy(out, a->level[i][idx], LIAISON_HASH_BYTES);
    return true;
}

const char *const audit_actions[] = {
    "node-created",     "daemon-started",    "daemon-stopped",   "peer-added",        "peer-updated",
    "peer-replaced",    "peer-removed",      "message-queued",   "message-delivered", "delivery-rejected",
    "message-received", "message-duplicate", "message-rejected", "receipt-rejected",  "message-read",
    "transport-refused", "request-refused",  "ack-overdue",      "audit-query",       "witness-alarm",
    "rollback-detected", "patient-index-filled", "witness-reset", NULL,
};

bool audit_action_known(const char *action)
{
    for (size_t i = 0; action && audit_actions[i]; i++)
        if (strcmp(action, audit_actions[i]) == 0)
            return true;
    return false;
}

void audit_actions_list(char *buf, size_t len)
{
    size_t off = 0;
    if (len)
        buf[0] = 0;
    for (size_t i = 0; audit_actions[i] && off < len; i++) {
        int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", audit_actions[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

audit_t *audit_open(store_t *s, char *err, size_t errlen)
{
    audit_t *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->store = s;
    a->old_block = UINT64_MAX;
    a->oracle = (merkle_oracle_t){.perfect = tree_perfect, .ctx = a};
    sqlite3 *db = store_db(s);
    if (sqlite3_prepare_v3(db, "SELECT seq, entry_hash FROM audit ORDER BY seq DESC LIMIT 1", -1,
                           SQLITE_PREPARE_PERSISTENT, &a->head, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db,
                           "INSERT INTO audit(seq, time_ms, actor, action, outcome, message_id, peer, content_type,"
                           " patient_tag, details, prev_hash, entry_hash)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                           -1, SQLITE_PREPARE_PERSISTENT, &a->insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, "SELECT coalesce(max(seq), 0) FROM audit", -1, SQLITE_PREPARE_PERSISTENT, &a->count,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db,
                           "SELECT seq, time_ms, actor, action, outcome, message_id, peer, content_type, patient_tag,"
                           " details FROM audit WHERE seq > ?1 ORDER BY seq",
                           -1, SQLITE_PREPARE_PERSISTENT, &a->since, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db,
                           "SELECT seq, time_ms, actor, action, outcome, message_id, peer, content_type, patient_tag,"
                           " details FROM audit WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
                           -1, SQLITE_PREPARE_PERSISTENT, &a->range, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "audit log: %s", sqlite3_errmsg(db));
        audit_close(&a);
        return NULL;
    }
    return a;
}

void audit_close(audit_t **ap)
{
    audit_t *a = ap ? *ap : NULL;
    if (!a)
        return;
    sqlite3_finalize(a->head);
    sqlite3_finalize(a->insert);
    sqlite3_finalize(a->count);
    sqlite3_finalize(a->since);
    sqlite3_finalize(a->range);
    for (unsigned i = 0; i < 64; i++)
        free(a->level[i]);
    free(a);
    *ap = NULL;
}

int64_t audit_size(audit_t *a)
{
    int64_t n = -1;
    if (sqlite3_step(a->count) == SQLITE_ROW)
        n = sqlite3_column_int64(a->count, 0);
    sqlite3_reset(a->count);
    return n;
}

static const char *nz(const char *s) { return s ? s : ""; }

static int64_t append_clean(audit_t *a, const audit_entry_t *e)
{
    sqlite3 *db = store_db(a->store);
    int64_t seq = 1;
    uint8_t prev[LIAISON_HASH_BYTES] = {0};
    /* The head is read inside the caller's transaction, so a rolled-back batch never
     * leaves a stale cached head behind. */
    int rc = sqlite3_step(a->head);
    if (rc == SQLITE_ROW) {
        seq = sqlite3_column_int64(a->head, 0) + 1;
        if (sqlite3_column_bytes(a->head, 1) == LIAISON_HASH_BYTES)
            memcpy(prev, sqlite3_column_blob(a->head, 1), LIAISON_HASH_BYTES);
    }
    sqlite3_reset(a->head);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -1;

    audit_record_t r = {
        .seq = (uint64_t)seq,
        .time_ms = liaison_now_ms(),
        .actor = nz(e->actor),
        .action = nz(e->action),
        .outcome = nz(e->outcome),
        .message_id = e->message_id,
        .message_id_len = e->message_id ? LIAISON_MSGID_BYTES : 0,
        .peer = nz(e->peer),
        .content_type = e->content_type,
        .patient_tag = e->patient_tag,
        .patient_tag_len = e->patient_tag ? LIAISON_HASH_BYTES : 0,
        .details = nz(e->details),
    };
    uint8_t hash[LIAISON_HASH_BYTES];
    if (audit_chain_hash(&r, prev, hash) != 0)
        return -1;

    static const uint8_t empty[1] = {0};
    sqlite3_stmt *st = a->insert;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)r.time_ms);
    sqlite3_bind_text(st, 3, r.actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r.action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r.outcome, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, r.message_id ? r.message_id : empty, (int)r.message_id_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, r.peer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, r.content_type);
    sqlite3_bind_blob(st, 9, r.patient_tag ? r.patient_tag : empty, (int)r.patient_tag_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, r.details, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 11, prev, LIAISON_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 12, hash, LIAISON_HASH_BYTES, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        (void)db;
        return -1;
    }
    return seq;
}

/* The longest actor, peer and details an entry keeps (bytes): the daemon's own texts are
 * far shorter; a value quoted from a request or a peer is cut, so that no request can
 * make one entry, which can never be removed, as large as it likes. */
#define AUDIT_NAME_MAX 128
#define AUDIT_DETAILS_MAX 1024

/* A copy of s that is single-line UTF-8 (text_clean_line) and at most max bytes (cut at
 * a character boundary, ending "..."), or NULL (s itself is clean, short enough or NULL;
 * or out of memory: *oom is set). */
static char *cleaned(const char *s, size_t max, bool *oom)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    if (len <= max && text_valid_utf8(s, SIZE_MAX, false))
        return NULL;
    char *c = malloc(len + 1); /* cleaning never lengthens: one '?' per bad byte or character */
    if (!c) {
        *oom = true;
        return NULL;
    }
    (void)text_clean_line(c, len + 1, s);
    if (strlen(c) > max) {
        size_t cut = max - 3;
        while (cut > 0 && ((unsigned char)c[cut] & 0xC0) == 0x80)
            cut--; /* not inside a character */
        memcpy(c + cut, "...", 4);
    }
    return c;
}

/* The stored strings travel in protobuf `string` fields (AuditEntry) and into JSON
 * exports, which need valid UTF-8: an entry's actor, peer and details are made single-line
 * UTF-8 before they are hashed and stored (PROTOCOL.md 11), and cut to AUDIT_NAME_MAX and
 * AUDIT_DETAILS_MAX bytes. They come from the daemon's own text, which may quote a value
 * from a local request or a peer. */
int64_t audit_append(audit_t *a, const audit_entry_t *e)
{
    bool oom = false;
    char *actor = cleaned(e->actor, AUDIT_NAME_MAX, &oom), *peer = cleaned(e->peer, AUDIT_NAME_MAX, &oom),
         *details = cleaned(e->details, AUDIT_DETAILS_MAX, &oom);
    int64_t seq = -1;
    if (!oom) {
        audit_entry_t c = *e;
        c.actor = actor ? actor : e->actor;
        c.peer = peer ? peer : e->peer;
        c.details = details ? details : e->details;
        seq = append_clean(a, &c);
    }
    free(actor);
    free(peer);
    free(details);
    return seq;
}

const char *audit_row_malformed(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) != SQLITE_INTEGER || sqlite3_column_int64(st, col) < 1)
        return "its sequence number is not a positive integer";
    if (sqlite3_column_type(st, col + 1) != SQLITE_INTEGER || sqlite3_column_int64(st, col + 1) < 0)
        return "its time is not an integer of at least 0";
    if (sqlite3_column_type(st, col + 7) != SQLITE_INTEGER || sqlite3_column_int64(st, col + 7) < 0 ||
        sqlite3_column_int64(st, col + 7) > (sqlite3_int64)UINT32_MAX)
        return "its content type is not an integer from 0 to 4294967295";
    static const int texts[] = {2, 3, 4, 6, 9};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (sqlite3_column_type(st, col + texts[i]) != SQLITE_TEXT)
            return "a text field is NULL or not text";
        const char *t = (const char *)sqlite3_column_text(st, col + texts[i]);
        if (!t || strlen(t) != (size_t)sqlite3_column_bytes(st, col + texts[i]))
            return "a text field holds a NUL byte";
    }
    if (sqlite3_column_type(st, col + 5) != SQLITE_BLOB ||
        (sqlite3_column_bytes(st, col + 5) != 0 && sqlite3_column_bytes(st, col + 5) != LIAISON_MSGID_BYTES))
        return "its message id is not a blob of 0 or 16 bytes";
    if (sqlite3_column_type(st, col + 8) != SQLITE_BLOB ||
        (sqlite3_column_bytes(st, col + 8) != 0 && sqlite3_column_bytes(st, col + 8) != LIAISON_HASH_BYTES))
        return "its patient tag is not a blob of 0 or 32 bytes";
    return NULL;
}

int audit_record_from_row(sqlite3_stmt *st, int col, audit_record_t *r)
{
    memset(r, 0, sizeof *r);
    if (audit_row_malformed(st, col))
        return -1;
    r->seq = (uint64_t)sqlite3_column_int64(st, col + 0);
    r->time_ms = (uint64_t)sqlite3_column_int64(st, col + 1);
    r->actor = (const char *)sqlite3_column_text(st, col + 2);
    r->action = (const char *)sqlite3_column_text(st, col + 3);
    r->outcome = (const char *)sqlite3_column_text(st, col + 4);
    r->message_id = sqlite3_column_blob(st, col + 5);
    r->message_id_len = (size_t)sqlite3_column_bytes(st, col + 5);
    r->peer = (const char *)sqlite3_column_text(st, col + 6);
    r->content_type = (uint32_t)sqlite3_column_int64(st, col + 7);
    r->patient_tag = sqlite3_column_blob(st, col + 8);
    r->patient_tag_len = (size_t)sqlite3_column_bytes(st, col + 8);
    r->details = (const char *)sqlite3_column_text(st, col + 9);
    if (!r->actor || !r->action || !r->outcome || !r->peer || !r->details)
        return -1;
    return 0;
}

int audit_sync(audit_t *a, uint64_t *n)
{
    sqlite3_stmt *st = a->since;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)a->n_leaves);
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (row_leaf(st, a->n_leaves + 1, a->tail[a->n_leaves % BLOCK]) != 0) {
            out = -1;
            break;
        }
        a->n_leaves++;
        if (tree_grow(a) != 0) {
            out = -1;
            break;
        }
    }
    if (out == 0 && rc != SQLITE_DONE)
        out = -1;
    sqlite3_reset(st);
    *n = a->n_leaves;
    return out;
}

const merkle_oracle_t *audit_tree(const audit_t *a)
{
    return &a->oracle;
}

uint64_t audit_tree_size(const audit_t *a) { return a->n_leaves; }
