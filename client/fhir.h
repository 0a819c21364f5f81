/* SPDX-License-Identifier: Apache-2.0 */
/* The FHIR R4 AuditEvent coding of audit entries (PROTOCOL.md 11.7 has the table). */
#ifndef LIAISON_FHIR_H
#define LIAISON_FHIR_H

#include <jansson.h>

#include "client_internal.h"

/* The AuditEvent resource for entry e of the log of node a->node_id. A pure function of
 * its arguments (no clock, no randomness): the same entry always exports the same way.
 * Returns a new reference, or NULL if out of memory. */
json_t *fhir_audit_event(const Liaison__Control__AuditEntries *a, const Liaison__Control__AuditEntry *e);

#endif
