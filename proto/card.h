/* SPDX-License-Identifier: Apache-2.0 */
/* Contact cards: a node's id, display data and public keys, signed by its
 * identity key, as one line of text ("liaison-card-v1:" + base64url). */
#ifndef LIAISON_CARD_H
#define LIAISON_CARD_H

#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "constants.h"

#define CARD_PREFIX "liaison-card-v1:"

typedef struct card {
    char id[LIAISON_MAX_ID + 1];
    char name[LIAISON_MAX_NAME + 1];
    char role[32];
    char org[LIAISON_MAX_NAME + 1];
    char endpoint[LIAISON_MAX_ENDPOINT + 1];
    uint8_t sign_pk[LIAISON_KEY_BYTES];
    uint8_t enc_pk[LIAISON_KEY_BYTES];
    uint8_t transport_pk[LIAISON_KEY_BYTES];
    uint64_t created_ms;
} card_t;

/* Builds and signs the card text for c with k (c's public keys must be k's).
 * Returns a malloc'd NUL-terminated line (no newline), or NULL with err set. */
char *card_encode(const card_t *c, const keys_t *k, char *err, size_t errlen);

/* Parses card text (surrounding and embedded whitespace ignored), checks every
 * field and length, and verifies the self-signature with the card's own sign_pk.
 * Returns 0 and fills *out, or -1 with a message in err naming what is wrong. */
__attribute__((warn_unused_result))
int card_decode(const char *text, card_t *out, char *err, size_t errlen);

/* What keeps a decoded card from being added to the directory now, written into buf,
 * or NULL: the rules a card being made is held to, which card_decode leaves out so that
 * cards stored before them stay readable (the endpoint's form; no bidirectional
 * control in the name or org). */
const char *card_add_problem(const card_t *c, char *buf, size_t len);

/* True if both cards carry the same three public keys (constant-time compare). */
int card_same_keys(const card_t *a, const card_t *b);

#endif
