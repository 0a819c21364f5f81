/* SPDX-License-Identifier: Apache-2.0 */
/* Receipt signatures checked off the event loop. One worker thread (worker.h) verifies each
 * receipt the loop hands it (with a copy of the signing peer's public key) and hands
 * back the result; the loop then does the bookkeeping (delivery.c). The Ed25519
 * verification is the largest single cost of a delivery at the sender, and this lets a
 * second core do it while the loop stores, commits and sends. Jobs travel as pointers
 * over a pair of inproc ZeroMQ sockets; nothing is shared between the threads but the
 * job being handed over. */
#ifndef LIAISON_VERIFIER_H
#define LIAISON_VERIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "constants.h"
#include "loop.h"
#include "receipt.h"

typedef struct verifier verifier_t;

/* A receipt and its verdict, as handed back to the loop. */
typedef struct verify_job {
    char peer[LIAISON_MAX_ID + 1];
    uint8_t sign_pk[LIAISON_KEY_BYTES];
    int ok;                     /* 1: well-formed and validly signed; r is set */
    receipt_t r;
    char err[160];              /* why not, when ok is 0 */
    size_t len;
    uint8_t bytes[];            /* the serialized Receipt, as received */
} verify_job_t;

/* Called on the loop thread for each finished job; the job is freed afterwards. */
typedef void (*verifier_done_fn)(void *ctx, const verify_job_t *job);

/* Starts the worker and watches its answers on l. Returns 0 or -1 with err set. */
int verifier_start(verifier_t **out, void *zctx, loop_t *l, verifier_done_fn done, void *ctx, char *err,
                   size_t errlen);

/* Jobs handed over and not yet answered, at most: beyond them the loop verifies
 * receipts itself, and so reads no faster than it verifies. A peer flooding receipts
 * then holds at most this many copies (about 1.3 KB each) in memory. */
#define VERIFIER_MAX_PENDING 4096u

/* Hands a copy of a receipt to the worker. Returns 0, or -1 if it could not be queued
 * (VERIFIER_MAX_PENDING jobs pending, or out of memory: the caller then verifies it
 * itself); a receipt outside 1..LIAISON_MAX_RECEIPT bytes is never copied or queued
 * (-1). */
int verifier_submit(verifier_t *v, const char *peer, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                    const uint8_t *bytes, size_t len);

/* Jobs handed over and not yet answered (0 for NULL). Loop thread only. */
size_t verifier_pending(const verifier_t *v);

/* Stops the worker; jobs not yet answered are dropped (their senders' retries bring
 * the same receipts again). NULL-safe; sets *v to NULL. */
void verifier_stop(verifier_t **v);

#endif
