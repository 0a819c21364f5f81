/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the control requests that wait for a sent message to settle (WaitRequest): who
 * asked and where to answer, about which message, until when; and which messages the
 * open batch changed, so that after its commit only their waits are looked at again.
 * It knows nothing of SQL or protobuf: control.c decides what "settled" means and
 * answers; node.c tells it when a batch commits. Loop thread only. */
#ifndef LIAISON_WAITS_H
#define LIAISON_WAITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"

#define WAITS_MAX 16384u         /* waits in progress at once, all clients together */
#define WAITS_PER_UID_MAX 4096u  /* ...of which one local user may hold (so that one user's
                                  * waits, left behind by a client gone, cannot refuse
                                  * everybody else's) */
#define WAITS_TOUCH_MAX 8192u    /* messages remembered per batch; beyond, every wait is looked at */

typedef struct wait {
    void *sock;                  /* the control socket the request came on */
    uint8_t rid[256];            /* the requester's routing id there */
    size_t rid_len;
    uint64_t request_id;
    uint8_t msgid[LIAISON_MSGID_BYTES];
    bool acks;                   /* also wait for acknowledgements */
    uint32_t uid;                /* the local user who asked (peer credentials) */
    uint64_t deadline_ms;        /* monotonic (loop_mono_ms) */
} wait_t;

typedef struct waits waits_t;

waits_t *waits_new(void);
void waits_free(waits_t *w); /* NULL-safe */

size_t waits_count(const waits_t *w);

/* Adds a copy of a wait. Returns 0; WAITS_FULL (WAITS_MAX in progress) or
 * WAITS_USER_FULL (WAITS_PER_UID_MAX of x->uid); or -1: a routing id over 256 bytes, or
 * out of memory. */
#define WAITS_FULL 1
#define WAITS_USER_FULL 2
int waits_add(waits_t *w, const wait_t *x);

/* Notes that message id changed in the open batch (a receipt, a rejection, an
 * acknowledgement). Costs nothing while nobody waits. */
void waits_touch(waits_t *w, const uint8_t id[static LIAISON_MSGID_BYTES]);

/* Returns true to remove the wait (it was answered). */
typedef bool (*waits_fn)(void *ctx, const wait_t *x);

/* After a batch: if it committed, calls fn for each wait about a message touched in
 * it; either way forgets the touched messages (a rolled-back batch changed nothing). */
void waits_after_commit(waits_t *w, bool committed, waits_fn fn, void *ctx);

/* Calls fn for each wait whose deadline is at or before now_ms; every one is removed,
 * whatever fn returns. */
void waits_expire(waits_t *w, uint64_t now_ms, waits_fn fn, void *ctx);

/* The earliest deadline, UINT64_MAX when nobody waits. */
uint64_t waits_next_deadline(waits_t *w);

/* Removes every wait on sock (when it is closed), calling fn (may be NULL) for each. */
void waits_drop_socket(waits_t *w, const void *sock, waits_fn fn, void *ctx);

#endif
