/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log: an append-only, hash-chained table of every care-team
 * communication and local access, in the node database. See PROTOCOL.md "Audit log". */
#ifndef LIAISON_AUDIT_H
#define LIAISON_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "constants.h"
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

/* Prepares the audit statements on s (the table is created by store_open) and
 * loads the chain head. Returns NULL with err set. */
audit_t *audit_open(store_t *s, char *err, size_t errlen);
void audit_close(audit_t **a);

/* Appends one entry inside the current transaction (starts none itself: callers
 * wrap it with the operation it records). Time is taken now. Returns the new
 * sequence number (>= 1), or -1 with store_error() set. */
int64_t audit_append(audit_t *a, const audit_entry_t *e);

/* Number of entries. */
int64_t audit_size(audit_t *a);

#endif
