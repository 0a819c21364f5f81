/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes contact-card text decoding (control.c op_peer_add, the CLI's card commands): the
 * input as a NUL-terminated string into card_decode. A decoded card must satisfy every field
 * rule, and a card carrying the keys of a test identity must survive encode/decode unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "card.h"
#include "fuzz_common.h"
#include "text.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static keys_t *ids[3];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ids[0] = fuzz_keys(FUZZ_TAG_ALICE);
    ids[1] = fuzz_keys(FUZZ_TAG_BOB);
    ids[2] = fuzz_keys(FUZZ_TAG_CAROL);
    return 0;
}

static int same_card(const card_t *a, const card_t *b)
{
    return strcmp(a->id, b->id) == 0 && strcmp(a->name, b->name) == 0 && strcmp(a->role, b->role) == 0 &&
           strcmp(a->org, b->org) == 0 && strcmp(a->endpoint, b->endpoint) == 0 &&
           memcmp(a->sign_pk, b->sign_pk, LIAISON_KEY_BYTES) == 0 &&
           memcmp(a->enc_pk, b->enc_pk, LIAISON_KEY_BYTES) == 0 &&
           memcmp(a->transport_pk, b->transport_pk, LIAISON_KEY_BYTES) == 0 && a->created_ms == b->created_ms;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    card_t c, again;
    char *text = fuzz_cstr(data, size);

    memset(&c, 0, sizeof c);
    if (card_decode(text, &c, err, sizeof err) != 0) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
        free(text);
        return 0;
    }
    FUZZ_CHECK(text_valid_id(c.id));
    FUZZ_CHECK(c.name[0] && text_valid_utf8(c.name, LIAISON_MAX_NAME, false));
    FUZZ_CHECK(text_valid_role(c.role));
    FUZZ_CHECK(text_valid_utf8(c.org, LIAISON_MAX_NAME, false));
    FUZZ_CHECK(text_plausible_endpoint(c.endpoint));
    FUZZ_CHECK(card_same_keys(&c, &c));
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const keys_t *k = ids[i];
        if (memcmp(c.sign_pk, k->sign_pk, LIAISON_KEY_BYTES) != 0 || memcmp(c.enc_pk, k->enc_pk, LIAISON_KEY_BYTES) != 0 ||
            memcmp(c.transport_pk, k->transport_pk, LIAISON_KEY_BYTES) != 0)
            continue;
        char *enc = card_encode(&c, k, err, sizeof err);
        FUZZ_CHECK(enc != NULL);
        FUZZ_CHECK(strlen(enc) <= LIAISON_MAX_CARD_TEXT);
        memset(&again, 0, sizeof again);
        FUZZ_CHECK(card_decode(enc, &again, err, sizeof err) == 0);
        FUZZ_CHECK(same_card(&c, &again));
        /* One text per card (PROTOCOL.md "Canonical form"): the signature covers the body,
         * Ed25519 is deterministic and whitespace is not part of the card, so a card that
         * verifies under a test key is exactly what card_encode writes. */
        size_t j = 0;
        for (const char *p = text; *p; p++) {
            if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\v' || *p == '\f')
                continue;
            FUZZ_CHECK(enc[j] == *p);
            j++;
        }
        FUZZ_CHECK(enc[j] == '\0');
        free(enc);
    }
    free(text);
    return 0;
}
