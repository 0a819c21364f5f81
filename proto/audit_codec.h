/* SPDX-License-Identifier: Apache-2.0 */
/* The canonical byte encoding of an audit entry and its chain hash, shared by the
 * daemon that appends entries and every verifier (PROTOCOL.md "Audit log"). */
#ifndef LIAISON_AUDIT_CODEC_H
#define LIAISON_AUDIT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "constants.h"

typedef struct audit_record {
    uint64_t seq;
    uint64_t time_ms;
    const char *actor;
    const char *action;
    const char *outcome;
    const uint8_t *message_id;
    size_t message_id_len;   /* 0 or 16 */
    const char *peer;
    uint32_t content_type;
    const uint8_t *patient_tag;
    size_t patient_tag_len;  /* 0 or 32 */
    const char *details;
} audit_record_t;

/* Canonical encoding E of r:
 *   u64be(seq) || u64be(time_ms) || lp(actor) || lp(action) || lp(outcome) ||
 *   lp(message_id) || lp(peer) || u32be(content_type) || lp(patient_tag) || lp(details)
 * with lp(x) = u32be(len(x)) || x. Returns a malloc'd buffer in *out, or -1. */
int audit_encode(const audit_record_t *r, uint8_t **out, size_t *out_len);

/* The same encoding without an allocation when it fits in AUDIT_ENCODE_INLINE bytes
 * (every entry liaisond writes but one with long details): written into buf, else
 * into a malloc'd buffer left in *spill, which the caller frees (initialize it to
 * NULL). Returns where E is, or NULL if out of memory. */
#define AUDIT_ENCODE_INLINE 1024u
const uint8_t *audit_encode_in(const audit_record_t *r, uint8_t buf[static AUDIT_ENCODE_INLINE], uint8_t **spill,
                               size_t *out_len);

/* The inverse of audit_encode, for a verifier that holds E alone (an inclusion proof):
 * fills r, its blobs pointing into e and its strings NUL-terminated copies in `strings`,
 * which must have room for len bytes. Refuses (-1) any E that audit_encode would not
 * write byte for byte: a length past the end, bytes left over, a message id other than 0
 * or 16 bytes, a patient tag other than 0 or 32, a NUL inside a string. */
int audit_decode(const uint8_t *e, size_t len, audit_record_t *r, char *strings, size_t cap);

/* entry_hash = BLAKE2b-256("liaison-v1/audit-chain" 0x00 || prev_hash || E).
 * prev_hash of the first entry is 32 zero bytes. Returns 0 or -1 (out of memory). */
int audit_chain_hash(const audit_record_t *r, const uint8_t prev[static LIAISON_HASH_BYTES],
                     uint8_t out[static LIAISON_HASH_BYTES]);

#endif
