/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log: an append-only, hash-chained table of every care-team
 * communication and local access, in the node database. See PROTOCOL.md "Audit log". */
#ifndef LIAISON_AUDIT_H
#define LIAISON_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit_codec.h"
#include "constants.h"
#include "merkle.h"
#include "store.h"

/* One entry as appended. Strings may be NULL (stored as empty). */
typedef struct audit_entry {
    const char *actor;          /* "uid:1000" / "user:alice" for local users, "peer:ID" for peers, "daemon" */
    const char *action;         /* e.g. "message-queued" (see PROTOCOL.md for the list) */
    const char *outcome;        /* "ok" | "refused" | "failed" */
    const uint8_t *message_id;  /* NULL or LIAISON_MSGID_BYTES */
    const char *peer;           /* other node involved, or NULL */
    uint32_t content_type;      /* 0 if none */
    const uint8_t *patient_tag; /* NULL or LIAISON_HASH_BYTES (keyed hash, never the id) */
    const char *details;        /* short reason, never clinical content */
} audit_entry_t;

typedef struct audit audit_t;

/* Every action this node writes to the audit log (PROTOCOL.md section 11 lists the
 * same), NULL-terminated. Queries by action are checked against it. */
extern const char *const audit_actions[];

/* Whether action is one of audit_actions. */
bool audit_action_known(const char *action);

/* Writes "a, b, c" (every action) into buf, truncated to len. */
void audit_actions_list(char *buf, size_t len);

/* Prepares the audit statements on s (the table is created by store_open) and
 * loads the chain head. Returns NULL with err set. */
audit_t *audit_open(store_t *s, char *err, size_t errlen);
void audit_close(audit_t **a);

/* Appends one entry inside the current transaction (starts none itself: callers
 * wrap it with the operation it records). Time is taken now. actor, peer and details
 * are stored as single-line UTF-8 (text_clean_line), whatever the caller passes.
 * Returns the new sequence number (>= 1), or -1 with store_error() set (or out of
 * memory, which leaves store_error() as it was). */
int64_t audit_append(audit_t *a, const audit_entry_t *e);

/* Number of entries. */
int64_t audit_size(audit_t *a);

/* Brings the Merkle tree over the log up to date with every committed entry and sets n
 * to their number. Call only when no transaction is open (so that only committed
 * entries are included). Returns 0 or -1. */
int audit_sync(audit_t *a, uint64_t *n);

/* The tree over the entries audit_sync has read, as an oracle that knows every perfect
 * subtree, single leaves included: pass it with NULL leaves to the merkle_*_o functions
 * (sizes up to the n audit_sync gave). Leaves older than the last incomplete block of
 * 256 are read back from the table when asked for. Valid while a is open. */
const merkle_oracle_t *audit_tree(const audit_t *a);

/* Entries the tree covers now (committed entries up to the last audit_sync), without
 * reading the table: inside an open transaction, where audit_sync must not be called (it
 * would take in entries that may still be rolled back), the tree can still answer for
 * sizes up to this. */
uint64_t audit_tree_size(const audit_t *a);

/* What is wrong with the entry in the current row of st (columns as below, from col),
 * or NULL if it is as liaisond writes it (PROTOCOL.md 11.1): seq a positive integer,
 * time_ms and content_type integers in range, the texts TEXT without a NUL byte (the
 * chain hashes a text up to its first NUL, where SQLite and the auditor's queries see
 * it whole), message_id a BLOB of 0 or 16 bytes, patient_tag one of 0 or 32. Call it
 * before reading the columns (it reads their types as stored). */
const char *audit_row_malformed(sqlite3_stmt *st, int col);

/* Fills r from the columns seq, time_ms, actor, action, outcome, message_id, peer,
 * content_type, patient_tag, details starting at col of a stepped statement. The
 * pointers stay valid until the statement moves on. Returns 0, or -1 if the row is
 * malformed (audit_row_malformed). */
int audit_record_from_row(sqlite3_stmt *st, int col, audit_record_t *r);

#endif
