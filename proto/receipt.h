/* SPDX-License-Identifier: Apache-2.0 */
/* Delivery receipts: the recipient's signed statement that it has durably stored
 * an envelope (message id, envelope hash, recipient, sender, time). */
#ifndef LIAISON_RECEIPT_H
#define LIAISON_RECEIPT_H

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

/* Signs r with the recipient's identity key. Returns 0 and a malloc'd serialized
 * Receipt in *out and *out_len, or -1. */
__attribute__((warn_unused_result))
int receipt_make(const keys_t *k, const receipt_t *r, uint8_t **out, size_t *out_len);

/* Parses serialized Receipt bytes (<= LIAISON_MAX_RECEIPT) into *out without
 * checking the signature. Returns 0, or -1 with err set. */
__attribute__((warn_unused_result))
int receipt_parse(const uint8_t *bytes, size_t len, receipt_t *out, char *err, size_t errlen);

/* Parses and verifies the signature with the recipient's identity key.
 * Returns 0 if the receipt is well-formed and validly signed, else -1 with err set. */
__attribute__((warn_unused_result))
int receipt_verify(const uint8_t *bytes, size_t len, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                   receipt_t *out, char *err, size_t errlen);

#endif
