/* SPDX-License-Identifier: Apache-2.0 */
/* The message lifecycle between daemons: queueing a sealed envelope for its
 * recipients, transmitting due deliveries with capped exponential backoff,
 * accepting (or rejecting) inbound envelopes with signed receipts, and storing the
 * receipts and rejections that come back. */
#ifndef LIAISON_DELIVERY_H
#define LIAISON_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"
#include "verifier.h"

/* Handles one frame that arrived on the ROUTER from transport peer `from`: the
 * directory peer whose current transport key the connection authenticated with
 * (never NULL; transport.c drops the frames of keys no longer in the directory). */
void delivery_inbound(node_t *n, peer_t *from, const uint8_t *rid, size_t rid_len, const uint8_t *frame, size_t len,
                      int nframes);

/* Handles one frame that arrived on our dealer to peer p (a receipt or a reject). */
void delivery_reply(node_t *n, peer_t *p, const uint8_t *frame, size_t len, int nframes);

/* The verifier thread's verdict on a receipt (verifier_done_fn; ctx is the node). */
void delivery_receipt_verified(void *ctx, const verify_job_t *j);

/* Transmits every delivery that is due. Returns 0 or -1. */
int delivery_pump(node_t *n);

/* Called when the transport to p comes up: makes its deliveries due now. */
void delivery_peer_up(node_t *n, peer_t *p);

/* How far ahead of now a retry can be scheduled (ms). A retry time further ahead was
 * set before the wall clock jumped back: it is treated as due (a jump back by an hour
 * must not hold a message for an hour). */
uint64_t delivery_horizon_ms(const node_t *n);

#endif
