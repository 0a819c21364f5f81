/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon-to-daemon transport: the CURVE ROUTER that peers connect to, the ZAP
 * handler that admits only directory keys, and one CURVE DEALER (with a monitor)
 * per peer for our outbound traffic. */
#ifndef LIAISON_TRANSPORT_H
#define LIAISON_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"

/* Binds the ZAP handler, then the CURVE ROUTER on cfg.listen, and opens a dealer
 * for every peer in the directory. Returns 0, or -1 with err set. */
int transport_start(node_t *n, char *err, size_t errlen);

/* Closes every transport socket (LINGER 0: anything not yet handed to the kernel
 * is still queued in the database and will be retried). */
void transport_stop(node_t *n);

/* Opens / closes the outbound socket of one peer. */
int transport_peer_open(node_t *n, peer_t *p, char *err, size_t errlen);
void transport_peer_close(node_t *n, peer_t *p);

/* Peer p answered on our live connection that it does not hold our transport key (a
 * Reject NOT_IN_DIRECTORY: it removed or replaced our card while the connection was up).
 * Marks p disconnected, with the reason as its transport error, and has transport_tick
 * dial it again: its ZAP handler then refuses us until it adds our card, and what we
 * send it waits, queued, meanwhile. `said` is the peer's reason, already printable. */
void transport_peer_refused(node_t *n, peer_t *p, const char *said);

/* Periodic housekeeping: reopens the dealers of peers that refused our handshake. */
void transport_tick(node_t *n);

/* Hands one frame to the peer's dealer without blocking. Returns 0 if queued in
 * libzmq, 1 if the peer is not connected or its queue is full (retry later), -1 on error. */
int transport_send(node_t *n, peer_t *p, const uint8_t *frame, size_t len);

/* Sends [rid][frame] on a ROUTER socket without blocking. Returns 0, or -1 if the
 * requester is gone or its queue is full (the caller's peer will retry). */
int transport_router_send(void *router, const uint8_t *rid, size_t rid_len, const uint8_t *frame, size_t len);

#endif
