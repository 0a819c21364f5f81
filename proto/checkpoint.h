/* SPDX-License-Identifier: Apache-2.0 */
/* Signed checkpoints of a node's audit log: C2SP tlog-checkpoint bodies in C2SP signed-note
 * text, signed with the node's Ed25519 identity key. Pure functions: no I/O, no printing. */
#ifndef LIAISON_CHECKPOINT_H
#define LIAISON_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "constants.h"
#include "keys.h"
#include "merkle.h"
#include "wire.pb-c.h"

/*
 * The note, byte for byte (docs/PROTOCOL.md describes the same):
 *
 *   liaison.audit/<NODE_ID>\n                 origin line
 *   <tree size>\n                             ASCII decimal, no leading zeros ("0" if empty)
 *   <base64(root)>\n                          RFC 4648 section 4 (standard alphabet, padded):
 *                                             44 characters for the 32-byte RFC 6962 root
 *   time <unix ms>\n                          one extension line, decimal as above
 *   \n                                        blank line ending the signed text
 *   \xe2\x80\x94 <NODE_ID> <base64(keyid || sig)>\n
 *                                             U+2014 EM DASH, space, key name, space,
 *                                             base64 of 4 + 64 bytes, newline
 *
 * The signed text ("body") is the first four lines including the final newline, and not the
 * blank line (C2SP signed-note). sig = Ed25519(body) with the identity key; there is no
 * domain-separation prefix because generic note verifiers sign and check the bare text.
 * That cannot collide with our other Ed25519 signatures: every one of those signs
 * "liaison-v1/<purpose>" 0x00 || ..., and a body starts with "liaison.audit/" and holds no NUL.
 *
 * keyid = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[0:4], the C2SP
 * signed-note recommendation for signature type 0x01 (Ed25519). The key name is NODE_ID.
 *
 * This module is strict: it reads only notes of exactly this shape (one signature line, by
 * the origin's node). Cosigned notes (C2SP tlog-cosignature lines appended by witnesses)
 * are refused until witnessing is added.
 */
#define CHECKPOINT_ORIGIN_PREFIX "liaison.audit/"
#define CHECKPOINT_EM_DASH "\xe2\x80\x94"
#define CHECKPOINT_MAX_TEXT 1024u      /* longest note accepted by the parsers */
#define CHECKPOINT_KEY_ID_BYTES 4u
#define CHECKPOINT_SIG_TYPE_ED25519 0x01u

typedef struct checkpoint {
    char node_id[LIAISON_MAX_ID + 1];  /* NUL-terminated, valid per text_valid_id */
    uint64_t size;                      /* number of leaves (audit entries) */
    uint8_t root[MERKLE_HASH_BYTES];    /* MTH of the first size entries */
    uint64_t time_ms;                   /* signing time, ms since the Unix epoch */
} checkpoint_t;

/* out = SHA-256(name || 0x0A || 0x01 || sign_pk)[0:4]: the C2SP signed-note key ID of an
 * Ed25519 key named name (a NUL-terminated string). Cannot fail. */
void checkpoint_key_id(const char *name, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                       uint8_t out[static CHECKPOINT_KEY_ID_BYTES]);

/* Signs c with k's identity key (k->sign_sk, whose public half must equal k->sign_pk).
 * Returns the malloc'd NUL-terminated note text (the caller frees it), or NULL if c's
 * node id is not valid per text_valid_id, the key pair is inconsistent, or memory runs out. */
char *checkpoint_sign(const checkpoint_t *c, const keys_t *k);

/* Parses note text (len bytes, need not be NUL-terminated, at most CHECKPOINT_MAX_TEXT) of
 * exactly the form above into *out, WITHOUT checking the signature: use checkpoint_verify
 * for anything received. Refuses NUL bytes, a bad origin or node id, leading zeros or
 * overflow in the numbers, a root that is not the canonical base64 of 32 bytes, a missing
 * or extra line, and a signature line by any name but NODE_ID or not of 68 bytes.
 * Returns 0, or -1 with a message in err (*out untouched). */
__attribute__((warn_unused_result))
int checkpoint_parse(const char *text, size_t len, checkpoint_t *out, char *err, size_t errlen);

/* checkpoint_parse, then checks that the key ID is that of sign_pk under NODE_ID and that
 * the Ed25519 signature over the body verifies with sign_pk. Returns 0 and fills *out only
 * if all holds, else -1 with a message in err (*out untouched). */
__attribute__((warn_unused_result))
int checkpoint_verify(const char *text, size_t len, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                      checkpoint_t *out, char *err, size_t errlen);

/* Copies the consistency proof carried by a WitnessRequest (PROTOCOL.md 11.3) into out,
 * which holds MERKLE_MAX_CONSISTENCY hashes. Returns 0 with *len set, or -1 if the proof
 * has more hashes than that or one that is not exactly 32 bytes. */
__attribute__((warn_unused_result))
int checkpoint_proof_from_wire(const Liaison__Wire__WitnessRequest *wr,
                               uint8_t out[static MERKLE_MAX_CONSISTENCY][MERKLE_HASH_BYTES], size_t *len);

#endif
