/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes receipt parsing and verification (delivery.c on_receipt), as "alice" reading a
 * receipt signed by "bob", and checks that receipts have one byte form: any receipt that
 * verifies is exactly what receipt_make produces for its fields (Ed25519 is deterministic). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "receipt.h"
#include "text.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static keys_t *bob;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    bob = fuzz_keys(FUZZ_TAG_BOB);
    return 0;
}

static void check_fields(const receipt_t *r)
{
    FUZZ_CHECK(text_valid_id(r->recipient));
    FUZZ_CHECK(text_valid_id(r->sender));
}

static int same_receipt(const receipt_t *a, const receipt_t *b)
{
    return memcmp(a->message_id, b->message_id, sizeof a->message_id) == 0 &&
           memcmp(a->envelope_hash, b->envelope_hash, sizeof a->envelope_hash) == 0 &&
           strcmp(a->recipient, b->recipient) == 0 && strcmp(a->sender, b->sender) == 0 &&
           a->stored_ms == b->stored_ms;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    receipt_t parsed, verified, again;
    uint8_t *out = NULL;
    size_t out_len = 0;

    int p = receipt_parse(data, size, &parsed, err, sizeof err);
    int v = receipt_verify(data, size, bob->sign_pk, &verified, err, sizeof err);
    if (p != 0) {
        FUZZ_CHECK(v != 0);
        return 0;
    }
    check_fields(&parsed);
    /* Re-signing the parsed fields with bob's key gives a receipt that verifies to the same fields. */
    FUZZ_CHECK(receipt_make(bob, &parsed, &out, &out_len) == 0);
    FUZZ_CHECK(out_len <= LIAISON_MAX_RECEIPT);
    FUZZ_CHECK(receipt_verify(out, out_len, bob->sign_pk, &again, err, sizeof err) == 0);
    FUZZ_CHECK(same_receipt(&parsed, &again));
    if (v == 0) {
        FUZZ_CHECK(same_receipt(&parsed, &verified));
        /* One byte form per receipt. */
        FUZZ_CHECK(out_len == size && memcmp(out, data, size) == 0);
    }
    free(out);
    return 0;
}
