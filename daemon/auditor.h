/* SPDX-License-Identifier: Apache-2.0 */
/* The auditor's read-only interface (served on the separate audit socket): audit log
 * queries, inclusion proofs, verification. Never returns clinical content; every
 * query is itself audited. */
#ifndef LIAISON_AUDITOR_H
#define LIAISON_AUDITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "node.h"

/* Where an answer sent later goes: the auditor's connection on the audit socket. */
typedef struct auditor_reply_to {
    const uint8_t *rid;
    size_t rid_len;
    uint64_t request_id;
} auditor_reply_to_t;

/* Answers one audit request into *resp and returns false; memory referenced by *resp
 * is released by auditor_free(scratch) after the response has been packed. `audit
 * verify` reads the whole log, seconds for millions of entries: it runs on a thread of
 * its own (liaisond-audit, started at the first one) with its own read-only connection
 * to the database, while the loop goes on. For it auditor_handle returns true, *resp
 * unused, and the answer goes to `to` when the verification ends (at most 8 are handed
 * over and unanswered at a time, the one running included; more are refused). If the
 * audit socket is made again meanwhile (control_tick), the answer is dropped: the
 * auditor's connection went with the old socket. */
typedef struct auditor_scratch auditor_scratch_t;
bool auditor_handle(node_t *n, const char *actor, const auditor_reply_to_t *to, const Liaison__Control__Request *rq,
                    Liaison__Control__Response *resp, auditor_scratch_t **scratch);
void auditor_free(auditor_scratch_t *scratch);

/* Stops the verifications under way (liaisond is stopping; they are not answered).
 * Before control_stop. */
void auditor_stop(node_t *n);

#endif
