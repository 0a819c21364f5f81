/* SPDX-License-Identifier: Apache-2.0 */
/* The running daemon's state, and its batch discipline: every change made while
 * handling a round of events goes into one SQLite transaction (group commit), and
 * nothing leaves the process (control answers, receipts, rejects, envelopes, witness
 * frames) before the commits it may depend on are durable: each outgoing frame is
 * tagged with the commit sequence number it waits for (store_commits) and held until
 * the durability thread (syncer.h) reports that number on disk. */
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
#include "store.h"

/* A frame held back until the commit it depends on is durable. */
typedef struct deferred {
    uint64_t seq;               /* that commit's sequence number (store_commits) */
    void *sock;                 /* ROUTER socket to answer on; NULL: to peer (by id) */
    char peer[LIAISON_MAX_ID + 1];
    uint8_t rid[256];           /* routing id of the requester */
    size_t rid_len;
    uint8_t *data;              /* malloc'd frame */
    size_t len;
    bool control;               /* a control Response: replaced by an error if the batch fails */
    uint64_t request_id;
} deferred_t;

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
    uint8_t patient_key[LIAISON_KEY_BYTES]; /* key for patient tags (see patient.h) */

    void *zctx;
    void *router;               /* CURVE server: envelopes in, receipts out */
    void *zap;                  /* ZAP handler (REP, inproc://zeromq.zap.01) */
    void *control;              /* control ROUTER on the IPC socket (clinicians) */
    void *auditor;              /* audit ROUTER on the second IPC socket (auditors) */
    struct verifier *verifier;  /* receipt signatures off the loop (verifier.h); may be NULL */
    struct backfill *backfill;  /* copies the WAL into the database file (backfill.h) */
    struct syncer *syncer;      /* makes commits durable (syncer.h) */
    uint64_t durable;           /* commits up to this sequence number are on disk */
    int sync_error;             /* errno of a failed fdatasync: the daemon must stop */

    deferred_t *deferred;       /* held frames, in the order they were made */
    size_t n_deferred, cap_deferred;
    uint64_t held_max;          /* highest seq held (node_awaits_commit) */
    bool pump_needed;           /* deliveries may be due: run the pump after commit */

    char *cp_note;              /* our latest signed checkpoint (witness.c) */
    uint64_t cp_size, cp_time_ms;
    uint64_t cp_seq;            /* commit that stored it: offered once that is durable */

    refused_key_t refused[32];  /* throttles audit rows for a key retrying its handshake */
    uint64_t started_ms;
    uint64_t batches, commits_failed;
} node_t;

/* Sends an answer on a ROUTER socket once everything committed so far, and the open
 * transaction if there is one, is durable (at once if it already is). Takes ownership
 * of data. Returns 0 or -1. */
int node_defer(node_t *n, void *sock, const uint8_t *rid, size_t rid_len, uint8_t *data, size_t len, bool control,
               uint64_t request_id);

/* Sends a frame to peer p once everything committed so far is durable (the open
 * transaction, which may hold the delivery pump's bookkeeping, is not waited for).
 * Takes ownership of frame. Returns transport_send's result when sent at once, 0 when
 * held (it is dropped at release if p is gone or disconnected, or its queue is full:
 * the delivery pump's retries cover that). */
int node_send_peer(node_t *n, peer_t *p, uint8_t *frame, size_t len);

/* True while a held answer waits for the open transaction to commit. */
bool node_awaits_commit(const node_t *n);

/* Commits the batch and asks for it to be made durable; held frames go out as the
 * durability thread reports progress (node_durable). If the commit fails, rolls back,
 * answers the batch's control requests with an error and drops its receipts (peers
 * retry). Returns true if the batch (possibly empty) committed. */
bool node_commit(node_t *n);

/* Asks the durability thread for every commit made so far (after commits made outside
 * node_commit, e.g. a signed checkpoint). */
void node_request_durable(node_t *n);

/* Records that commits up to seq are durable and sends what waited for them. */
void node_durable(node_t *n, uint64_t seq);

/* Commits and waits until everything is durable (for changes to the running daemon
 * that must not precede their durability, and at shutdown). Returns true on success. */
bool node_commit_durable(node_t *n);

/* Frees whatever is still held, unsent (shutdown). */
void node_drop_held(node_t *n);

/* Appends an audit entry inside the caller's operation. Returns 0 or -1. */
int node_audit(node_t *n, const audit_entry_t *e);

/* Writes "user:NAME" (or "uid:N") for a local uid into buf. */
void node_local_actor(uid_t uid, char *buf, size_t len);

#endif
