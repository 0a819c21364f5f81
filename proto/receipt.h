/* SPDX-License-Identifier: Apache-2.0 */
/* Delivery receipts: the recipient's signed statement that it has durably stored
 * an envelope (message id, envelope hash, recipient, sender, time), alone or as one of
 * a batch whose Merkle root is signed once (PROTOCOL.md 7.1). */
#ifndef LIAISON_RECEIPT_H
#define LIAISON_RECEIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "constants.h"

typedef struct receipt {
    uint8_t message_id[LIAISON_MSGID_BYTES];
    uint8_t envelope_hash[LIAISON_HASH_BYTES];
    char recipient[LIAISON_MAX_ID + 1];
    char sender[LIAISON_MAX_ID + 1];
    uint64_t stored_ms;
} receipt_t;

/* Most receipts one batch signature covers: their inclusion proofs are at most 10
 * hashes, so that every receipt stays well under LIAISON_MAX_RECEIPT. */
#define RECEIPT_BATCH_MAX 1024u

/* Signs r alone with the recipient's identity key. Returns 0 and a malloc'd serialized
 * Receipt in *out and *out_len, or -1. */
__attribute__((warn_unused_result))
int receipt_make(const keys_t *k, const receipt_t *r, uint8_t **out, size_t *out_len);

/* Signs the n receipts rs[0..n) with one signature: n == 1 is a receipt alone (what
 * receipt_make gives), 2 <= n <= RECEIPT_BATCH_MAX a batch (the bodies are the leaves of
 * a Merkle tree whose root is signed; each receipt carries its leaf's inclusion proof).
 * Returns 0 with a malloc'd serialized Receipt in outs[i], its length in out_lens[i],
 * for every i; or -1 with every outs[i] NULL (outs untouched if n is out of range). */
__attribute__((warn_unused_result))
int receipt_make_batch(const keys_t *k, const receipt_t *rs, size_t n, uint8_t **outs, size_t *out_lens);

/* Parses serialized Receipt bytes (<= LIAISON_MAX_RECEIPT) into *out without
 * checking the signature. Returns 0, or -1 with err set. */
__attribute__((warn_unused_result))
int receipt_parse(const uint8_t *bytes, size_t len, receipt_t *out, char *err, size_t errlen);

/* Parses and verifies the signature with the recipient's identity key (for a receipt
 * of a batch: its inclusion proof, then the signature over the root it leads to).
 * Returns 0 if the receipt is well-formed and validly signed, else -1 with err set. */
__attribute__((warn_unused_result))
int receipt_verify(const uint8_t *bytes, size_t len, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                   receipt_t *out, char *err, size_t errlen);

/* The last batch signature receipt_verify_cached found valid. Zero-initialize; one per
 * thread (no locking). */
typedef struct receipt_cache {
    bool valid;
    uint32_t batch_size;
    uint8_t sign_pk[LIAISON_KEY_BYTES];
    uint8_t root[32];
    uint8_t signature[64];
} receipt_cache_t;

/* receipt_verify with a cache (NULL: none): another receipt of a batch already checked,
 * carrying the same signature bytes over the same root from the same key, costs its
 * inclusion proof (at most 10 SHA-256) instead of an Ed25519 verification. */
__attribute__((warn_unused_result))
int receipt_verify_cached(const uint8_t *bytes, size_t len, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                          receipt_cache_t *cache, receipt_t *out, char *err, size_t errlen);

#endif
