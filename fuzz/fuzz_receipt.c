/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes receipt parsing and verification (delivery.c on_receipt), as "alice" reading a
 * receipt signed by "bob", alone or one of a batch, and checks that receipts alone have
 * one byte form (any that verifies is exactly what receipt_make produces for its fields:
 * Ed25519 is deterministic) and that the batch cache never changes a verdict. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "receipt.h"
#include "text.h"
#include "wire.pb-c.h"

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
    /* The cache: empty, then holding what this input left in it, the same verdict. */
    receipt_cache_t cache = {0};
    FUZZ_CHECK((receipt_verify_cached(data, size, bob->sign_pk, &cache, &again, err, sizeof err) == 0) == (v == 0));
    FUZZ_CHECK((receipt_verify_cached(data, size, bob->sign_pk, &cache, &again, err, sizeof err) == 0) == (v == 0));
    if (v == 0) {
        FUZZ_CHECK(same_receipt(&parsed, &verified));
        Liaison__Wire__Receipt *rc = liaison__wire__receipt__unpack(NULL, size, data);
        FUZZ_CHECK(rc != NULL);
        /* One byte form per receipt alone; one of a batch has the batch's signature. */
        if (rc->batch_size == 0)
            FUZZ_CHECK(out_len == size && memcmp(out, data, size) == 0);
        else
            FUZZ_CHECK(rc->batch_size >= 2 && rc->batch_size <= RECEIPT_BATCH_MAX && rc->leaf_index < rc->batch_size);
        liaison__wire__receipt__free_unpacked(rc, NULL);
    }
    free(out);
    return 0;
}
