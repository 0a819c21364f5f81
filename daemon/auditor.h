/* SPDX-License-Identifier: Apache-2.0 */
/* The auditor's read-only interface (served on the separate audit socket): audit log
 * queries, inclusion proofs, verification. Never returns clinical content; every
 * query is itself audited. */
#ifndef LIAISON_AUDITOR_H
#define LIAISON_AUDITOR_H

#include "control.pb-c.h"
#include "node.h"

/* Answers one audit request into *resp. Memory referenced by *resp is released by
 * auditor_free(scratch) after the response has been packed. */
typedef struct auditor_scratch auditor_scratch_t;
void auditor_handle(node_t *n, const char *actor, const Liaison__Control__Request *rq,
                    Liaison__Control__Response *resp, auditor_scratch_t **scratch);
void auditor_free(auditor_scratch_t *scratch);

#endif
