/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes signed checkpoint notes (witness.c, the offline audit verifier): checkpoint_parse
 * and checkpoint_verify with alice's key over the raw bytes (not NUL-terminated). The parser
 * is strict, so a note has one spelling: any note that parses re-signs to a note that
 * parses to the same checkpoint, and any note that verifies is byte for byte what
 * checkpoint_sign writes (Ed25519 is deterministic). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz_common.h"
#include "text.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static keys_t *alice;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    alice = fuzz_keys(FUZZ_TAG_ALICE);
    return 0;
}

static int same_cp(const checkpoint_t *a, const checkpoint_t *b)
{
    return strcmp(a->node_id, b->node_id) == 0 && a->size == b->size && a->time_ms == b->time_ms &&
           memcmp(a->root, b->root, sizeof a->root) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    checkpoint_t parsed, verified, again;
    /* An exact-size heap copy, so ASan sees any read past the end. */
    char *text = malloc(size ? size : 1);
    FUZZ_CHECK(text != NULL);
    if (size)
        memcpy(text, data, size);

    int p = checkpoint_parse(text, size, &parsed, err, sizeof err);
    int v = checkpoint_verify(text, size, alice->sign_pk, &verified, err, sizeof err);
    if (p != 0) {
        FUZZ_CHECK(v != 0);
        free(text);
        return 0;
    }
    FUZZ_CHECK(text_valid_id(parsed.node_id));
    char *note = checkpoint_sign(&parsed, alice);
    FUZZ_CHECK(note != NULL);
    FUZZ_CHECK(strlen(note) <= CHECKPOINT_MAX_TEXT);
    FUZZ_CHECK(checkpoint_verify(note, strlen(note), alice->sign_pk, &again, err, sizeof err) == 0);
    FUZZ_CHECK(same_cp(&parsed, &again));
    if (v == 0) {
        FUZZ_CHECK(same_cp(&parsed, &verified));
        FUZZ_CHECK(strlen(note) == size && memcmp(note, text, size) == 0);
    }
    free(note);
    free(text);
    return 0;
}
