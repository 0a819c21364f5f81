/* SPDX-License-Identifier: Apache-2.0 */
/* The running daemon's state, and its batch discipline: every change made while
 * handling a round of events goes into one SQLite transaction (group commit), and
 * every answer that promises durability (control replies, receipts) is deferred
 * until that transaction has committed. */
#ifndef LIAISON_NODE_H
#define LIAISON_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit.h"
#include "card.h"
#include "config.h"
#include "directory.h"
#include "keys.h"
#include "loop.h"
#include "receipt.h"
#include "store.h"

struct wait;

/* An answer held back until the batch commits. */
typedef struct deferred {
    void *sock;                 /* ROUTER socket to answer on */
    uint8_t rid[256];           /* routing id of the requester */
    size_t rid_len;
    uint8_t *data;              /* malloc'd frame */
    size_t len;
    bool control;               /* a control Response: replaced by an error if the batch fails */
    uint64_t request_id;
    uint64_t txn;               /* store_txn_id of the transaction that holds its change */
    struct wait *wait;          /* a wait's answer (waits.h), own copy: asked again, not
                                 * withdrawn, if the batch rolls back (control_wait_again) */
    bool about_message;         /* a peer's answer about message msgid (a receipt or a
                                 * refusal): TRY_LATER instead if the batch rolls back */
    uint8_t msgid[LIAISON_MSGID_BYTES];
} deferred_t;

/* A receipt for a message stored in the open batch, signed with the rest of its batch
 * just before the commit (delivery_before_commit) and sent after it. */
typedef struct held_receipt {
    receipt_t r;
    uint8_t rid[256];           /* routing id of the sender's connection */
    size_t rid_len;
    uint64_t txn;               /* store_txn_id of the transaction that stores the message */
    bool again;                 /* a retransmission within the batch: the same receipt, sent again */
} held_receipt_t;

typedef struct refused_key {
    uint8_t key[LIAISON_KEY_BYTES];
    uint64_t last_ms;
} refused_key_t;

typedef struct node {
    config_t cfg;
    paths_t paths;
    keys_t *keys;
    store_t *store;
    audit_t *audit;
    loop_t *loop;
    directory_t dir;
    card_t card;                /* our own card */
    char *card_text;
    uint8_t *self_pair_key;     /* pair key with ourselves, to open what we sent */
    uint8_t *patient_key;       /* key for patient tags (see patient.h); sodium_malloc'd */

    void *zctx;
    void *router;               /* CURVE server: envelopes in, receipts out */
    void *zap;                  /* ZAP handler (REP, inproc://zeromq.zap.01) */
    void *router_monitor;       /* the ROUTER's accepts, to guard the descriptors (transport.c) */
    char router_endpoint[256];  /* what the ROUTER is bound to (ZMQ_LAST_ENDPOINT), to unbind */
    uint32_t fd_high;           /* an accepted descriptor this high pauses the listener */
    uint64_t listen_resume_ms;  /* monotonic time to listen again (0: listening) */
    uint64_t listen_paused_ms;  /* monotonic time of the last pause */
    uint32_t listen_pauses_in_row, listen_pauses; /* pauses less than 5 min apart; in all */
    void *control;              /* control ROUTER on the IPC socket (clinicians) */
    void *auditor;              /* audit ROUTER on the second IPC socket (auditors) */
    uint64_t auditor_gen;       /* times the audit socket was made again (control_tick): an
                                 * answer for a connection of an earlier one has nowhere to go */
    struct verifier *verifier;  /* receipt signatures off the loop (verifier.h); may be NULL */
    struct auditor_worker *audit_worker; /* audit verify off the loop (auditor.h); NULL until the first */
    struct backfill *backfill;  /* copies the WAL into the database file (backfill.h) */
    struct waits *waits;        /* control requests waiting for a sent message to settle (waits.h) */

    deferred_t *deferred;
    size_t n_deferred, cap_deferred;
    bool pump_needed;           /* deliveries may be due: run the pump after commit */
    held_receipt_t *held;       /* receipts to sign when the batch commits (delivery.h) */
    size_t n_held, cap_held;
    receipt_cache_t receipt_cache; /* the loop's last verified batch signature (receipt.h) */
    struct outgoing *outgoing;  /* first transmissions held until their batch commits (delivery.h) */
    size_t n_outgoing, cap_outgoing;
    uint64_t due_hint_ms;       /* earliest retry they scheduled (UINT64_MAX: none); main.c takes it */

    char *cp_note;              /* our latest signed checkpoint (witness.c) */
    uint64_t cp_size, cp_time_ms;

    refused_key_t refused[32];  /* throttles audit rows for a key retrying its handshake */
    refused_key_t answered[8];  /* throttles answers to connections of keys no longer in the directory */
    uint8_t later_audited[64][LIAISON_MSGID_BYTES]; /* messages told "not yet" lately: audited once (delivery.c) */
    size_t later_next;
    uint64_t refused_window_ms; /* ...and for all refused keys together (transport.c) */
    uint32_t refused_in_window;
    uint64_t refused_unrecorded;
    uint64_t started_ms;
    uint64_t batches, commits_failed;
    uint64_t commit_error_ms;   /* since when commits fail (0: the last one succeeded) */
    char commit_error[200];     /* why the last one failed (liaison status) */
    uint64_t receipts_on_loop, receipts_on_thread; /* signatures checked where (delivery.c) */
    uint64_t rollbacks, last_rollback_ms; /* rollback-detected entries in our log (main.c, witness.c) */
} node_t;

/* Queues an answer until the current batch commits (or sends it now if no
 * transaction is open). Takes ownership of data. Returns 0 or -1. */
int node_defer(node_t *n, void *sock, const uint8_t *rid, size_t rid_len, uint8_t *data, size_t len, bool control,
               uint64_t request_id);

/* As node_defer, for the answer to wait w (control.c): if its batch rolls back, the
 * answer, which may have read what the batch changed, is not replaced by an error but
 * worked out again from the state after the rollback (control_wait_again). */
int node_defer_wait(node_t *n, uint8_t *data, size_t len, const struct wait *w);

/* As node_defer, for a peer's answer on the ROUTER about message msgid (its receipt or
 * its refusal): if its batch rolls back, the peer is answered TRY_LATER for msgid
 * instead (PROTOCOL.md 6 step 10). */
int node_defer_about(node_t *n, const uint8_t *rid, size_t rid_len, uint8_t *data, size_t len,
                     const uint8_t msgid[static LIAISON_MSGID_BYTES]);

/* Commits the batch and sends the deferred answers. An answer whose transaction did
 * not commit (the commit failed, or the transaction was rolled back earlier in the
 * batch, e.g. by SQLite after a disk error, and a new one begun) is never sent as is:
 * control requests get an error (a wait is looked at again), a receipt or a refusal of
 * a message becomes TRY_LATER for it, and other answers to peers are dropped (peers
 * retry).
 * Returns true if the batch (possibly empty) committed. */
bool node_commit(node_t *n);

/* Frees the arrays a batch grows (answers held for the commit, receipts to sign, first
 * transmissions), when no batch is open: a node that carried a burst of traffic keeps
 * none of that memory once it is quiet (main.c calls it with the database's cache
 * release). They grow again with the next batch. */
void node_release_idle(node_t *n);

/* Appends an audit entry inside the caller's operation. Returns 0 or -1. */
int node_audit(node_t *n, const audit_entry_t *e);

/* Writes "user:NAME" (or "uid:N") for a local uid into buf. */
void node_local_actor(uid_t uid, char *buf, size_t len);

#endif
