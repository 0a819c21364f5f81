/* SPDX-License-Identifier: Apache-2.0 */
/* Anchoring the audit log: our signed checkpoints (every N entries or T seconds),
 * sending them to peers with consistency proofs, and witnessing the peers' own
 * checkpoints (a log that forks or shrinks raises an alarm). */
#ifndef LIAISON_WITNESS_H
#define LIAISON_WITNESS_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"
#include "wire.pb-c.h"

/* Creates the checkpoint tables if needed and loads our latest checkpoint. 0, or -1 with
 * err: the tables cannot be created or read, or the audit log is shorter than our latest
 * checkpoint (truncated or replaced). */
int witness_open(node_t *n, char *err, size_t errlen);
void witness_close(node_t *n);

/* After a commit: signs a checkpoint when N entries or T seconds have accumulated,
 * stores it (committed before it is sent), and offers it to connected peers. */
void witness_after_commit(node_t *n);

/* At an orderly stop, after the last entry (daemon-stopped) is committed: signs a
 * checkpoint of the whole log if entries are not yet covered by one, so that a node
 * at rest has no unanchored tail (peers receive it when they next connect). Sends
 * nothing. 0, or -1 (inside a transaction, or the log cannot be read or signed). */
int witness_final_checkpoint(node_t *n);

/* A peer's connection came up: offer it our latest checkpoint. */
void witness_peer_up(node_t *n, peer_t *p);

/* Replies a peer may owe us: a reply beyond the offers sent and not yet answered is
 * ignored, so that unsolicited replies cannot make this node build proofs again and
 * again. Replies lost with a connection count until the cap. */
#define WITNESS_PENDING_MAX 8

/* Offers of a larger checkpoint without a consistency proof from the one held, after
 * which (and after [audit] witness_proof_wait_s since the first) the witness raises an
 * alarm: an honest peer sends the proof as soon as it reads the refusal. */
#define WITNESS_UNPROVEN_MIN 3

/* A peer's checkpoint arrived on the ROUTER: verify, check consistency with what we
 * hold, store or raise an alarm, and answer. */
void witness_on_request(node_t *n, peer_t *from, const uint8_t *rid, size_t rid_len,
                        const Liaison__Wire__WitnessRequest *wr);

/* The peer's answer to our checkpoint arrived on our dealer; ignored unless an offer
 * is pending (WITNESS_PENDING_MAX). */
void witness_on_reply(node_t *n, peer_t *p, const Liaison__Wire__WitnessReply *wr);

/* Calls cb for each alarm raised about a peer's log, newest first (the latest 50), until
 * cb returns non-zero. Returns 0, cb's non-zero value, or -1 if the alarms cannot all be
 * read (never fewer alarms as if they were all). */
/* Inside an open store operation, when peer's card changes: forgets the checkpoint of its
 * log this node holds as its witness if that note does not verify with the new identity
 * key sign_pk (new keys are a new node and a new log, which the old checkpoint would
 * otherwise make look rolled back). Returns 1 forgotten (*held_size: its size), 0 none
 * held or still valid, -1 on a database error. */
int witness_forget_other_key(node_t *n, const char *peer, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                             uint64_t *held_size);

/* A person accepts that peer was restored from a backup: the checkpoint of its log held
 * here is forgotten (its witness alarms stay, as evidence), audited as witness-reset by
 * actor, and the peer's next checkpoint is taken as a first one. Returns 1 with
 * *held_size set, 0 if none is held, -1 on a database error (nothing changed). */
int witness_reset(node_t *n, peer_t *p, const char *actor, uint64_t *held_size);

typedef int (*witness_alarm_cb)(void *ctx, const char *peer, uint64_t at_ms, const char *what);
int witness_alarms(node_t *n, witness_alarm_cb cb, void *ctx);

#endif
