/* SPDX-License-Identifier: Apache-2.0 */
/* The node database (SQLite, WAL): schema, peers, messages (envelopes kept
 * encrypted as carried), per-recipient delivery state and explicit transactions.
 * The audit table lives in the same file but belongs to audit.c. */
#ifndef LIAISON_STORE_H
#define LIAISON_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "constants.h"

typedef struct store store_t;

enum { STORE_READONLY = 1, STORE_CREATE = 2 };

/* Opens (STORE_CREATE: creates, refusing an existing file) the database at path,
 * applies pragmas (WAL, synchronous=FULL, foreign keys, busy timeout, defensive)
 * and checks/creates the schema. A database of a newer schema version than this
 * build's (written by a newer release) is refused unchanged. Returns NULL with err set
 * on failure. */
store_t *store_open(const char *path, int flags, char *err, size_t errlen);

/* Refuses a database whose schema version this build does not know: one written by a
 * newer release (whose tables this one could misread or damage), or a damaged value. A
 * database without the meta table or without a version (not created yet) passes.
 * path names the file in err. Returns 0, or -1 with err set. */
int store_schema_check(sqlite3 *db, const char *path, char *err, size_t errlen);

/* Finalizes every statement and closes. NULL-safe; sets *s to NULL. */
void store_close(store_t **s);

/* The connection, for modules that own their own tables (audit.c). */
sqlite3 *store_db(store_t *s);

/* Explicit transactions; the daemon groups many operations in one (group commit).
 * store_begin is a no-op returning 0 when a transaction is already open.
 * store_commit rolls back instead, and fails, if the database file was deleted or
 * replaced since it was opened; a failed commit leaves no transaction open.
 * Return 0, or -1 with store_error() set. */
int store_begin(store_t *s);
int store_commit(store_t *s);
void store_rollback(store_t *s);
bool store_in_txn(const store_t *s);
/* Whether the open transaction is still there: SQLite may have rolled it back on its
 * own after an I/O error (store_commit then fails). */
bool store_txn_alive(const store_t *s);

/* Marks every undelivered delivery to recipient as rejected with reason and calls cb
 * with each message id and its content type (for the caller's audit entry), inside the
 * caller's transaction. Returns the number marked, or -1 (store_error() set, or cb's
 * non-zero return). */
int64_t store_delivery_reject_pending(store_t *s, const char *recipient, const char *reason,
                                      int (*cb)(void *ctx, const uint8_t *msgid, uint32_t content_type), void *ctx);

/* Number of the transaction store_begin opened last (it changes with every new one,
 * including one opened after SQLite rolled back the previous on its own). What was
 * done under a number that is not the one store_commit commits was rolled back. */
uint64_t store_txn_id(const store_t *s);

/* Last error text of this store (static buffer inside s). */
const char *store_error(const store_t *s);

/* Key/value metadata (node id, audit tag key, schema version). get: 0 found, 1 not
 * found, -1 error; blob variants for binary values. */
int store_meta_get(store_t *s, const char *key, uint8_t *val, size_t cap, size_t *len);
int store_meta_set(store_t *s, const char *key, const uint8_t *val, size_t len);

/* ---- peers ---- */
/* Makes card_text the active card of id (retiring any previous one). 0 or -1. */
int store_peer_put(store_t *s, const char *id, const char *card_text, uint64_t now_ms);
/* Retires the active card of id. Returns 0 removed, 1 not found, -1 error. */
int store_peer_remove(store_t *s, const char *id, uint64_t now_ms);
/* Calls cb for each active peer in id order; a non-zero return from cb stops and is returned. */
typedef int (*store_peer_cb)(void *ctx, const char *id, const char *card_text, uint64_t added_ms);
int store_peer_each(store_t *s, store_peer_cb cb, void *ctx);
/* Calls cb for every card ever accepted for id (active and retired), newest first,
 * so that old messages from a replaced or removed peer can still be verified and opened. */
int store_peer_history(store_t *s, const char *id, store_peer_cb cb, void *ctx);

/* ---- messages ---- */
typedef struct store_msg {
    uint8_t id[LIAISON_MSGID_BYTES];
    bool outgoing;
    char sender[LIAISON_MAX_ID + 1];
    char recipients[(LIAISON_MAX_ID + 1) * LIAISON_MAX_RECIPIENTS]; /* comma-separated */
    uint64_t created_ms;
    uint32_t content_type;
    bool has_thread;
    uint8_t thread_id[LIAISON_MSGID_BYTES];
    uint64_t stored_ms;
    uint64_t read_ms;                 /* 0 = unread */
    bool has_patient_tag;
    uint8_t patient_tag[LIAISON_HASH_BYTES];
    uint8_t envelope_hash[LIAISON_HASH_BYTES];
    bool ack_required;                /* a medication change asking for acknowledgement */
    bool urgent;
    bool has_ref;
    uint8_t ref_id[LIAISON_MSGID_BYTES]; /* acknowledgement: the acknowledged message */
} store_msg_t;

/* Inserts a message with its envelope bytes (a received message's receipt is stored
 * apart, by store_receipt_issued, when its batch is signed; the row's own receipt
 * column holds only those issued before receipts were batched).
 * Returns 0, 1 if the id already exists (nothing written), -1 error. */
int store_msg_insert(store_t *s, const store_msg_t *m, const uint8_t *env, size_t env_len);

/* Stores the receipt this node issued for the received message id. Returns 0 or -1. */
int store_receipt_issued(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const uint8_t *receipt,
                         size_t receipt_len);

/* Looks up a message by id. Fills *m if non-NULL; if env != NULL returns a malloc'd
 * copy of the envelope; if receipt != NULL returns a malloc'd copy of the receipt this
 * node issued for it (NULL if none: an outgoing message, or one whose batch is not
 * signed yet). Returns 0 found, 1 not found, -1 error. */
int store_msg_get(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], store_msg_t *m,
                  uint8_t **env, size_t *env_len, uint8_t **receipt, size_t *receipt_len);

/* Marks an incoming message read at now_ms if it was unread. Returns 0 marked now,
 * 1 already read (or not found), -1 error. */
int store_msg_mark_read(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], uint64_t now_ms);

typedef struct store_query {
    int direction;            /* 0 = both, 1 = incoming, 2 = outgoing */
    uint64_t since_ms;        /* created_ms >= since_ms */
    uint64_t until_ms;        /* 0, or created_ms <= until_ms */
    uint32_t limit;           /* 0 = no limit */
    bool unread_only;
    const uint8_t *thread_id; /* NULL or 16 bytes: only this thread (its messages and the
                               * message whose id it is, the one that started it) */
    const uint8_t *patient_tag; /* NULL or 32 bytes: only this patient */
    uint32_t content_type;    /* 0 = any */
    bool needs_ack;           /* only medication changes still waiting for an acknowledgement:
                               * incoming ones self_id has not acknowledged, outgoing ones
                               * some recipient has not acknowledged */
    const char *self_id;
    bool oldest;              /* with a limit: keep the oldest matching messages instead */
} store_query_t;
/* Calls cb for each matching message, newest first; with thread_id set, oldest first
 * (a thread reads as a conversation). With a limit, the newest `limit` matching
 * messages (the oldest if q->oldest) in either order. Non-zero from cb stops and is returned. */
typedef int (*store_msg_cb)(void *ctx, const store_msg_t *m);
int store_msg_each(store_t *s, const store_query_t *q, store_msg_cb cb, void *ctx);

/* How many messages match q, its limit aside. Returns the count, or -1 on error. */
int64_t store_msg_count(store_t *s, const store_query_t *q);

/* ---- deliveries (outgoing, one row per recipient other than ourselves) ---- */
typedef enum { DELIVERY_QUEUED = 0, DELIVERY_SENT, DELIVERY_DELIVERED, DELIVERY_REJECTED } delivery_state_t;
const char *store_delivery_state_name(delivery_state_t st);

typedef struct store_delivery {
    uint8_t message_id[LIAISON_MSGID_BYTES];
    char recipient[LIAISON_MAX_ID + 1];
    delivery_state_t state;
    uint32_t attempts;
    uint64_t next_attempt_ms;
    uint64_t delivered_ms;
    char detail[256];
} store_delivery_t;

/* Adds a queued delivery due at now_ms. Returns 0 or -1. */
int store_delivery_add(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *recipient, uint64_t now_ms);
/* Adds a delivery that is queued (due at next_attempt_ms) or, with `sent`, in state sent
 * after its first attempt (attempts 1, retried at next_attempt_ms): for a message
 * handed to the transport as soon as its transaction commits (delivery.h). 0 or -1. */
int store_delivery_add_as(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *recipient, bool sent,
                          uint64_t next_attempt_ms);

/* Calls cb for up to `limit` deliveries in state queued/sent with next_attempt_ms <=
 * now_ms (oldest due first), or > beyond_ms: a retry time no schedule sets, left by a
 * wall clock that has since jumped back. */
typedef int (*store_delivery_cb)(void *ctx, const store_delivery_t *d);
int store_delivery_due(store_t *s, uint64_t now_ms, uint64_t beyond_ms, uint32_t limit, store_delivery_cb cb,
                       void *ctx);

/* Sets *due to the earliest next_attempt_ms among queued/sent deliveries, UINT64_MAX if
 * none, and returns 0; or returns -1 if it cannot be read (store_error says why; *due is
 * not changed): never "none due" for a read that failed. */
int store_delivery_next_due(store_t *s, uint64_t *due);

/* After a transmission attempt: state sent (or queued if it could not be handed to
 * the transport), attempts+1, next_attempt_ms, detail (may be NULL). 0 or -1. */
int store_delivery_attempted(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *recipient,
                             delivery_state_t st, uint64_t next_attempt_ms, const char *detail);

/* Stores the verified receipt: state delivered. Returns 0 done, 1 already delivered
 * or unknown (nothing written), -1 error. */
int store_delivery_done(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *recipient,
                        const uint8_t *receipt, size_t receipt_len, uint64_t now_ms);

/* Permanent refusal by the recipient: state rejected with reason. 0, 1 (not pending), -1. */
int store_delivery_rejected(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *recipient,
                            const char *reason);

/* Makes every pending delivery to recipient due now (after a reconnect). 0 or -1. */
int store_delivery_wake(store_t *s, const char *recipient, uint64_t now_ms);

/* Calls cb for each delivery of one message. */
int store_delivery_each(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], store_delivery_cb cb, void *ctx);

/* Number of deliveries without a receipt (queued or sent), for one recipient or all (NULL). */
int64_t store_queue_depth(store_t *s, const char *recipient);
/* Received medication changes that `me` (this node) has not acknowledged yet; -1 on error. */
int64_t store_awaiting_ack(store_t *s, const char *me);
/* Our medication changes still waiting for some recipient's acknowledgement that is
 * not yet overdue; -1 on error. */
int64_t store_awaiting_their_ack(store_t *s);

/* Patient ids that differ only in letter case (patient.h): they are different
 * patients to the tags, and usually the same patient typed two ways. Every tag stored
 * with a message is recorded with its fold tag; distinct_ok marks the sender's word
 * that the id is another patient (it is never unset). 0 or -1. */
int store_patient_seen(store_t *s, const uint8_t tag[static LIAISON_HASH_BYTES],
                       const uint8_t fold[static LIAISON_HASH_BYTES], bool distinct_ok);
/* Whether a message about this patient tag is on the node (since patient_folds
 * exists): 1 yes, 0 no, -1 error. */
int store_patient_known(store_t *s, const uint8_t tag[static LIAISON_HASH_BYTES]);
/* The SQL of the other tags of the same fold, neither confirmed as another patient;
 * TAG and FOLD are the SQL parameters ("?1") that hold the tag and its fold tag. */
#define STORE_PATIENT_VARIANT_TAGS(TAG, FOLD)                                                                  \
    "SELECT tag FROM patient_folds WHERE fold = " FOLD " AND tag <> " TAG " AND distinct_ok = 0"               \
    " AND NOT EXISTS (SELECT 1 FROM patient_folds WHERE tag = " TAG " AND distinct_ok = 1)"
/* Each message whose patient tag has no patient_folds row (stored before that table
 * existed), ordered by tag: cb(ctx, tag, message id) returns 0 to go on, non-zero to
 * stop (-1: an error). Returns 0 or -1. */
typedef int (*store_unfolded_cb)(void *ctx, const uint8_t *tag, const uint8_t *id);
int store_patient_unfolded(store_t *s, store_unfolded_cb cb, void *ctx);
/* Messages on this node about such another spelling of the patient; -1 on error. */
int64_t store_patient_variants(store_t *s, const uint8_t tag[static LIAISON_HASH_BYTES],
                               const uint8_t fold[static LIAISON_HASH_BYTES]);

/* Whether any message, review or audit entry carries a patient tag, i.e. whether
 * the node's patient key has been used. 1 yes, 0 no, -1 error. */
int store_has_patient_tags(store_t *s);



/* ---- acknowledgements ---- */
/* Records that `by` acknowledged msg with acknowledgement ack_id. 0 new, 1 known, -1. */
int store_ack_add(store_t *s, const uint8_t msg[static LIAISON_MSGID_BYTES], const char *by,
                  const uint8_t ack_id[static LIAISON_MSGID_BYTES], uint64_t at_ms);
typedef int (*store_ack_cb)(void *ctx, const char *by, const uint8_t *ack_id, uint64_t at_ms);
int store_ack_each(store_t *s, const uint8_t msg[static LIAISON_MSGID_BYTES], store_ack_cb cb, void *ctx);

/* Overdue acknowledgements of our medication changes. With flagged = false: those past
 * their deadline (urgent_ms or routine_ms after creation) not flagged yet; with
 * flagged = true: those flagged and still unacknowledged (deadlines ignored). */
typedef int (*store_overdue_cb)(void *ctx, const uint8_t *msg, const char *recipient, bool urgent,
                                uint64_t created_ms);
int store_overdue_scan(store_t *s, uint64_t now_ms, uint64_t routine_ms, uint64_t urgent_ms, bool flagged,
                       store_overdue_cb cb, void *ctx);
int store_overdue_flag(store_t *s, const uint8_t msg[static LIAISON_MSGID_BYTES], const char *recipient,
                       uint64_t now_ms);
/* The recipients of one medication change of ours whose acknowledgement was flagged
 * overdue and has not come yet: cb as for store_overdue_scan (flagged = true), for msg
 * alone, read by its key (a listing of many changes must not read every flag for each).
 * Returns 0, cb's non-zero return, or -1 (store_error() set). */
/* Our medication changes with at least one acknowledgement flagged overdue and not
 * come yet (those store_overdue_scan lists with flagged = true); -1 on error. */
int64_t store_overdue_count(store_t *s);
int store_overdue_of(store_t *s, const uint8_t msg[static LIAISON_MSGID_BYTES], store_overdue_cb cb, void *ctx);

/* ---- case reviews ---- */
typedef struct store_review {
    uint8_t review_id[LIAISON_MSGID_BYTES];
    char opened_by[LIAISON_MAX_ID + 1];
    uint64_t opened_ms;
    uint64_t closed_ms;        /* 0 = open */
    uint32_t messages;         /* messages in the review's thread on this node */
    char participants[LIAISON_MAX_RECIPIENTS][LIAISON_MAX_ID + 1];
    size_t n_participants;
} store_review_t;
/* 0 created, 1 existed, -1 error. */
int store_review_open(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *opened_by,
                      const uint8_t *patient_tag, uint64_t now_ms);
int store_review_add(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], const char *participant, uint64_t now_ms);
int store_review_close(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], uint64_t now_ms);
/* 0 found, 1 not found, -1 error. */
int store_review_get(store_t *s, const uint8_t id[static LIAISON_MSGID_BYTES], store_review_t *r);
bool store_review_has(const store_review_t *r, const char *id);
typedef int (*store_review_cb)(void *ctx, const store_review_t *r);
/* Calls cb for every review (open ones only if open_only), oldest first, until cb returns
 * non-zero. Returns 0, cb's non-zero value, or -1 if the reviews cannot all be read
 * (store_error says why): never a shorter list as if it were complete. */
int store_review_each(store_t *s, bool open_only, store_review_cb cb, void *ctx);

/* ---- per-operation savepoints inside the batch transaction ----
 * store_op_begin opens the batch transaction if needed and a savepoint; store_op_end
 * releases it (ok) or rolls back just this operation (!ok). Return 0 or -1. */
int store_op_begin(store_t *s);
int store_op_end(store_t *s, bool ok);

#endif
