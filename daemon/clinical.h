/* SPDX-License-Identifier: Apache-2.0 */
/* The care-team rules above plain delivery: acknowledgements that close the loop on a
 * medication change, case-review membership (who receives and who may write), and the
 * overdue-acknowledgement flag with its local hook. */
#ifndef LIAISON_CLINICAL_H
#define LIAISON_CLINICAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node.h"
#include "payload.h"

/* The recipients (other than this node) of a message this node is about to send.
 * Plain messages go to `to` (each must be in the directory); acknowledgements to the
 * acknowledged message's sender and other recipients; review messages to the review's
 * participants; only review messages may name a case review as their thread
 * (thread_id, NULL for none). Writes up to LIAISON_MAX_RECIPIENTS ids into out. Returns 0, or -1
 * with err naming the problem and *refused telling policy (true) from bad input. */
int clinical_recipients(node_t *n, uint32_t content_type, const payload_info_t *info, const uint8_t *thread_id,
                        char *const *to, size_t n_to, char out[][LIAISON_MAX_ID + 1], size_t *n_out, bool *refused,
                        char *err, size_t errlen);

/* Checks an inbound message from `sender` against the care-team rules (an
 * acknowledgement must be about a message the sender received; review messages only
 * from participants of an open review, and a review's thread only review messages).
 * Returns 0; -1 with err set if the message breaks a rule (a final refusal); -2 with err
 * set if what it refers to cannot be read here (a database error); or -3 with err set
 * if it refers to what this node does not know yet (a review whose open or add has not
 * reached it, a participant added by an add still on its way). Neither -2 nor -3 is a
 * refusal: the sender is answered TRY_LATER and tries again. */
int clinical_inbound_check(node_t *n, const char *sender, uint32_t content_type, const payload_info_t *info,
                           const uint8_t *thread_id, char *const *recipients, size_t n_recipients, char *err,
                           size_t errlen);

/* Records the effects of a stored message (inside the caller's operation): the
 * acknowledgement, the review's state. Returns 0 or -1. */
int clinical_record(node_t *n, const char *sender, const uint8_t msgid[static LIAISON_MSGID_BYTES],
                    uint32_t content_type, const payload_info_t *info, const uint8_t *patient_tag,
                    char *const *recipients, size_t n_recipients, uint64_t created_ms);

/* Flags newly overdue acknowledgements (audited once, offered to the hook) and reaps
 * finished hook processes. Called periodically. */
void clinical_tick(node_t *n);

/* What the audit entries of an acknowledgement say besides its own id: details
 * "acknowledges ID" (the acknowledged message, always written to details), and the
 * patient tag of the acknowledged message as this node holds it, so that the
 * acknowledgement (and its comment) is found by patient and counted among the
 * patient's disclosures. Returns true with tag filled if that message is held and
 * tagged, false otherwise. */
bool clinical_ack_audit(node_t *n, const uint8_t ref_id[static LIAISON_MSGID_BYTES],
                        uint8_t tag[static LIAISON_HASH_BYTES], char *details, size_t len);

#endif
