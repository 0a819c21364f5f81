/* SPDX-License-Identifier: Apache-2.0 */
/* Payload validation: the rules every typed payload must meet, applied where a
 * value is entered (client, control API) and again where it is received; and the
 * names of the payloads' enumerations for people. */
#ifndef LIAISON_PAYLOAD_H
#define LIAISON_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"

#define PAYLOAD_MAX_SUBJECT 200u
#define PAYLOAD_MAX_TEXT (64u * 1024u)     /* narratives, messages, review replies */
#define PAYLOAD_MAX_FIELD (4u * 1024u)     /* reason, monitor, risk text, question, ... */
#define PAYLOAD_MAX_COMMENT (2u * 1024u)
#define PAYLOAD_MAX_LINE 128u              /* medication, doses, patient label */
#define PAYLOAD_MAX_PATIENT_ID 64u
#define PAYLOAD_MAX_SCORES 16u
#define PAYLOAD_MAX_ACTIONS 32u
#define PAYLOAD_MAX_EARLIER 64u            /* replies forwarded by a review add */
#define PAYLOAD_REVIEW_SALT_BYTES 16u      /* a review open's salt (payload_review_id) */
#define PAYLOAD_MAX_EARLIER_TEXT (256u * 1024u)

/* What the daemon needs to know about a valid payload without keeping its content. */
typedef enum payload_review_action {
    PAYLOAD_REVIEW_NONE = 0,
    PAYLOAD_REVIEW_OPEN,
    PAYLOAD_REVIEW_REPLY,
    PAYLOAD_REVIEW_ADD,
    PAYLOAD_REVIEW_CLOSE,
} payload_review_action_t;

typedef struct payload_info {
    char patient[PAYLOAD_MAX_PATIENT_ID + 1]; /* patient local id, empty if none */
    bool ack_required;                  /* a medication change asking for acknowledgement */
    bool urgent;
    uint8_t ref_id[LIAISON_MSGID_BYTES];/* acknowledgement: acknowledged message; case review: review id */
    bool has_ref;
    uint8_t ref_hash[LIAISON_HASH_BYTES]; /* acknowledgement: envelope hash of the acknowledged message */
    payload_review_action_t review_action;               /* case reviews */
    char participants[LIAISON_MAX_RECIPIENTS][LIAISON_MAX_ID + 1]; /* open: the invited participants;
                                                                  * close: the action items' owners */
    size_t n_participants;
    char added[LIAISON_MAX_ID + 1];                      /* add: the new participant */
    char opener[LIAISON_MAX_ID + 1];                     /* add: the review's opener, empty if not said */
    uint8_t review_salt[PAYLOAD_REVIEW_SALT_BYTES];      /* open: its salt; add: the open's, if said */
    bool has_salt;
} payload_info_t;

/* Wipes the patient id info holds (the rest names nodes and messages). For
 * PAYLOAD_INFO_WIPED: a payload_info_t so declared is wiped when it goes out of scope,
 * whichever way the function returns. */
void payload_info_wipe(payload_info_t *info);
#define PAYLOAD_INFO_WIPED __attribute__((cleanup(payload_info_wipe)))

/* A case review's id (PROTOCOL.md 8.5): the first 16 bytes of
 * H32(D("liaison-v1/review-id") || u8(len(opener)) || opener || salt). Bound to its
 * opener, so no other participant can open a review under it first, and in a domain of
 * its own, so it never equals a message id (whose thread a review would take over). */
void payload_review_id(const char *opener, const uint8_t salt[static PAYLOAD_REVIEW_SALT_BYTES],
                       uint8_t id[static LIAISON_MSGID_BYTES]);

/* Whether id is the review id of that opener and salt, in constant time. */
bool payload_review_id_matches(const uint8_t id[static LIAISON_MSGID_BYTES], const char *opener,
                               const uint8_t salt[static PAYLOAD_REVIEW_SALT_BYTES]);

/* True if the daemon knows this content type. */
bool payload_known_type(uint32_t content_type);

/* Short name of a content type ("text", "progress-note", ...), "unknown" otherwise. */
const char *payload_type_name(uint32_t content_type);

/* The content type with that short name, or 0. */
uint32_t payload_type_from_name(const char *name);

/* Decodes and validates a payload of the given type. On success returns 0 and
 * fills *info (may be NULL); on failure returns -1 with err naming the field, or -2
 * if it could not be decoded for want of memory (a payload over a few KB needs some):
 * nothing is then known to be wrong with it. */
__attribute__((warn_unused_result))
int payload_validate(uint32_t content_type, const uint8_t *data, size_t len, payload_info_t *info, char *err,
                     size_t errlen);

/* The patient id a stored payload names, decoded but not validated otherwise (the rules
 * of the day may be stricter than those it was accepted under). Returns 1 with out set
 * (a valid patient id), 0 the payload names none (or an invalid one), -1 undecodable. */
int payload_patient(uint32_t content_type, const uint8_t *data, size_t len, char out[PAYLOAD_MAX_PATIENT_ID + 1]);

/* True if s is a patient local id: 1..64 bytes of [A-Za-z0-9._:-]. */
bool payload_valid_patient_id(const char *s);

/* True if s is a calendar date "YYYY-MM-DD" (years 1900..2999). */
bool payload_valid_date(const char *s);

/* Why s is not a date for payload_valid_date, as a phrase for "'S' is not a date
 * (PHRASE)": "2026 is not a leap year: February 2026 has 28 days", "there is no month
 * 13", "give YYYY-MM-DD"; written into why (at most whylen bytes, NUL-terminated).
 * Returns true (and writes nothing) if s is a date. */
bool payload_date_problem(const char *s, char *why, size_t whylen);

/* Names of the payload enumerations, as typed on the command line and printed:
 * kind is one of "modality", "risk", "action", "urgency". name_of returns NULL for
 * values without a name; value_of returns -1 for unknown names (case-insensitive,
 * '_' and '-' alike). payload_enum_names lists the valid names joined by ", ". */
const char *payload_enum_name(const char *kind, int value);
int payload_enum_value(const char *kind, const char *name);
const char *payload_enum_names(const char *kind);

#endif
