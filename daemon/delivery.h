/* SPDX-License-Identifier: Apache-2.0 */
/* The message lifecycle between daemons: queueing a sealed envelope for its
 * recipients, transmitting due deliveries with capped exponential backoff,
 * accepting (or rejecting) inbound envelopes with receipts signed a batch at a time, and storing the
 * receipts and rejections that come back. */
#ifndef LIAISON_DELIVERY_H
#define LIAISON_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node.h"
#include "verifier.h"

/* Handles one frame that arrived on the ROUTER from transport peer `from`: the
 * directory peer whose current transport key the connection authenticated with
 * (never NULL; transport.c drops the frames of keys no longer in the directory). */
void delivery_inbound(node_t *n, peer_t *from, const uint8_t *rid, size_t rid_len, const uint8_t *frame, size_t len,
                      int nframes);

/* Answers a frame that came on a connection whose key is no longer in the directory
 * (transport.c, at most once a minute per key) with a Reject NOT_IN_DIRECTORY without
 * a message id, sent after the current batch commits (PROTOCOL.md 6 and 7.2). */
void delivery_refuse_connection(node_t *n, const uint8_t *rid, size_t rid_len);

/* Handles one frame that arrived on our dealer to peer p (a receipt or a reject).
 * more_behind: further frames are already waiting on that dealer (a receipt is then
 * checked on the verifier thread, so that the loop reads on meanwhile). */
void delivery_reply(node_t *n, peer_t *p, const uint8_t *frame, size_t len, int nframes, bool more_behind);

/* The verifier thread's verdict on a receipt (verifier_done_fn; ctx is the node). */
void delivery_receipt_verified(void *ctx, const verify_job_t *j);

/* A new message's first transmission, from memory, once its transaction commits, to
 * the recipients connected when it is stored: their deliveries are stored as sent
 * (attempts 1, retried at `retry_at_ms`), and node_commit hands the envelope to the
 * transport (delivery_after_commit), instead of the pump reading it back from the
 * database and recording the attempt. The others are stored queued, for the pump.
 * Call inside the operation that stores the message, before its deliveries:
 * sets direct[i] for each of peers[0..n) it holds the envelope for (none if out of
 * memory). delivery_direct_cancel(n, mark) drops what was held since n_outgoing was
 * `mark`, when that operation fails. */
void delivery_direct(node_t *n, const uint8_t id[static LIAISON_MSGID_BYTES], const uint8_t *env, size_t env_len,
                     const char *const *peers, size_t n_peers, uint64_t retry_at_ms, bool *direct);
void delivery_direct_cancel(node_t *n, size_t mark);
/* The retry time of a first attempt made at now_ms. */
uint64_t delivery_first_retry_ms(const node_t *n, uint64_t now_ms);
/* node_commit's follow-up: sends what the committed transaction `txn` holds (committed
 * false: drops everything). A transmission the transport does not take is left to the
 * pump, due at once. */
void delivery_after_commit(node_t *n, bool committed, uint64_t txn);

/* A Reject frame TRY_LATER for message msgid, saying the recipient could not commit it
 * (malloc'd; NULL if out of memory): what node_commit sends instead of a receipt or a
 * refusal that did not commit. */
uint8_t *delivery_try_later_frame(const uint8_t msgid[static LIAISON_MSGID_BYTES], size_t *len);

/* node_commit's step before the commit: signs the receipts held for the messages the
 * batch stores, one signature per sender (PROTOCOL.md 7.1), stores them in the same
 * transaction and queues them to be sent after the commit. Returns 0, or -1 if they
 * could not be signed or stored: the batch must then be rolled back (a message is
 * never committed without its receipt). A held receipt that is not queued (its
 * transaction was rolled back earlier, or this step failed) is answered TRY_LATER. */
int delivery_before_commit(node_t *n);

/* Transmits every delivery that is due and records each attempt. Returns 0, or -1 (the
 * batch's records rolled back, store_error says why) if one cannot be read or recorded:
 * the caller tries again after retry_min_ms, not at once. */
int delivery_pump(node_t *n);

/* Called when the transport to p comes up: makes its deliveries due now. */
void delivery_peer_up(node_t *n, peer_t *p);

/* How far ahead of now a retry can be scheduled (ms). A retry time further ahead was
 * set before the wall clock jumped back: it is treated as due (a jump back by an hour
 * must not hold a message for an hour). */
uint64_t delivery_horizon_ms(const node_t *n);

#endif
