/* SPDX-License-Identifier: Apache-2.0 */
/* Owns contact cards: their signed wire form, their one-line text form and every check on them. */
#include "card.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domains.h"
#include "text.h"
#include "wire.pb-c.h"

/* Longest card text without whitespace, prefix included. */
#define CARD_TEXT_MAX LIAISON_MAX_CARD_TEXT

/* Builds "liaison-v1/card" 0x00 || body into a malloc'd buffer. */
static uint8_t *card_signed_message(const uint8_t *body, size_t body_len, size_t *len)
{
    uint8_t *m = malloc(sizeof LIAISON_DOMAIN_CARD + body_len);
    if (m) {
        memcpy(m, LIAISON_DOMAIN_CARD, sizeof LIAISON_DOMAIN_CARD);
        memcpy(m + sizeof LIAISON_DOMAIN_CARD, body, body_len);
        *len = sizeof LIAISON_DOMAIN_CARD + body_len;
    }
    return m;
}

/* The first character of s that changes the direction text is shown in (the Unicode
 * bidirectional controls: U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), as
 * its code point, or 0. Text in Arabic or Hebrew needs none of them; in a name they only
 * serve to make it read as something else ("U+202E" turns "rotkafo" round). */
static unsigned bidi_control(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; u[i]; i++) {
        if (u[i] == 0xd8 && u[i + 1] == 0x9c)
            return 0x061c;
        if (u[i] == 0xe2 && u[i + 1] == 0x80 && (u[i + 2] == 0x8e || u[i + 2] == 0x8f ||
                                                  (u[i + 2] >= 0xaa && u[i + 2] <= 0xae)))
            return 0x2000u + (u[i + 2] & 0x3fu);
        if (u[i] == 0xe2 && u[i + 1] == 0x81 && u[i + 2] >= 0xa6 && u[i + 2] <= 0xa9)
            return 0x2040u + (u[i + 2] & 0x3fu);
    }
    return 0;
}

const char *card_add_problem(const card_t *c, char *buf, size_t len)
{
    const char *why = text_endpoint_problem(c->endpoint, false);
    if (why) {
        snprintf(buf, len, "the endpoint is not tcp://HOST:PORT (or ipc://PATH): %s", why);
        return buf;
    }
    const char *field = bidi_control(c->name) ? "name" : bidi_control(c->org) ? "org" : NULL;
    if (field) {
        snprintf(buf, len, "its %s holds the invisible direction control U+%04X, which makes text read as"
                 " something else: ask for a card without it", field,
                 bidi_control(c->name) ? bidi_control(c->name) : bidi_control(c->org));
        return buf;
    }
    return NULL;
}

/* Checks the user-visible fields of c; shared by encode (our own card, strict) and
 * decode (lenient about the endpoint, see below). */
static int card_check_fields(const char *id, const char *name, const char *role, const char *org,
                             const char *endpoint, bool strict, char *err, size_t errlen)
{
    int rc = -1;
    char shown[LIAISON_MAX_ID + 1];

    if (!text_valid_id(id)) {
        text_printable(shown, sizeof shown, id);
        snprintf(err, errlen, "card: id '%s' is not a valid node id (1-%u of a-z 0-9 . _ -, starting with a letter or digit)",
                 shown, LIAISON_MAX_ID);
        goto out;
    }
    if (!name || !name[0] || !text_valid_utf8(name, LIAISON_MAX_NAME, false)) {
        snprintf(err, errlen, "card: name must be 1-%u bytes of single-line UTF-8 text", LIAISON_MAX_NAME);
        goto out;
    }
    if (!text_valid_role(role)) {
        text_printable(shown, 33, role);
        snprintf(err, errlen, "card: role '%s' is not one of %s", shown, text_roles());
        goto out;
    }
    if (!text_valid_utf8(org, LIAISON_MAX_NAME, false)) {
        snprintf(err, errlen, "card: org must be at most %u bytes of single-line UTF-8 text", LIAISON_MAX_NAME);
        goto out;
    }
    if (strict && (bidi_control(name) || bidi_control(org))) {
        const char *field = bidi_control(name) ? "name" : "org";
        snprintf(err, errlen, "card: %s holds the invisible direction control U+%04X, which makes text read as"
                 " something else: remove it", field, bidi_control(bidi_control(name) ? name : org));
        goto out;
    }
    /* Decoding is lenient, so that a card stored before the strict rule stays readable;
     * a card being made, or added by `peer add`, is held to text_endpoint_problem. */
    const char *why = strict ? text_endpoint_problem(endpoint, false)
                      : text_plausible_endpoint(endpoint) ? NULL
                                                          : "it must have the form tcp://HOST:PORT";
    if (why) {
        snprintf(err, errlen, "card: the endpoint is not tcp://HOST:PORT (or ipc://PATH): %s", why);
        goto out;
    }
    rc = 0;
out:
    return rc;
}

char *card_encode(const card_t *c, const keys_t *k, char *err, size_t errlen)
{
    char *text = NULL;
    char *b64 = NULL;
    uint8_t *body = NULL, *msg = NULL, *card_bytes = NULL;
    size_t body_len, msg_len = 0, card_len;
    uint8_t sig[crypto_sign_BYTES];
    Liaison__Wire__CardBody cb = LIAISON__WIRE__CARD_BODY__INIT;
    Liaison__Wire__Card card = LIAISON__WIRE__CARD__INIT;

    if (!c || !k || !k->sign_sk) {
        snprintf(err, errlen, "card: nothing to encode");
        goto out;
    }
    if (card_check_fields(c->id, c->name, c->role, c->org, c->endpoint, true, err, errlen) != 0)
        goto out;
    if (sodium_memcmp(c->sign_pk, k->sign_pk, LIAISON_KEY_BYTES) != 0 ||
        sodium_memcmp(c->enc_pk, k->enc_pk, LIAISON_KEY_BYTES) != 0 ||
        sodium_memcmp(c->transport_pk, k->transport_pk, LIAISON_KEY_BYTES) != 0) {
        snprintf(err, errlen, "card: the card's public keys are not this node's keys");
        goto out;
    }
    cb.version = LIAISON_PROTOCOL_VERSION;
    cb.id = (char *)c->id;
    cb.name = (char *)c->name;
    cb.role = (char *)c->role;
    cb.org = (char *)c->org;
    cb.endpoint = (char *)c->endpoint;
    cb.sign_pk = (ProtobufCBinaryData){LIAISON_KEY_BYTES, (uint8_t *)c->sign_pk};
    cb.enc_pk = (ProtobufCBinaryData){LIAISON_KEY_BYTES, (uint8_t *)c->enc_pk};
    cb.transport_pk = (ProtobufCBinaryData){LIAISON_KEY_BYTES, (uint8_t *)c->transport_pk};
    cb.created_ms = c->created_ms;

    body_len = liaison__wire__card_body__get_packed_size(&cb);
    body = malloc(body_len);
    if (!body) {
        snprintf(err, errlen, "card: out of memory");
        goto out;
    }
    liaison__wire__card_body__pack(&cb, body);
    msg = card_signed_message(body, body_len, &msg_len);
    if (!msg || crypto_sign_detached(sig, NULL, msg, msg_len, k->sign_sk) != 0) {
        snprintf(err, errlen, "card: cannot sign the card");
        goto out;
    }
    card.body = (ProtobufCBinaryData){body_len, body};
    card.signature = (ProtobufCBinaryData){sizeof sig, sig};
    card_len = liaison__wire__card__get_packed_size(&card);
    card_bytes = malloc(card_len);
    if (!card_bytes) {
        snprintf(err, errlen, "card: out of memory");
        goto out;
    }
    liaison__wire__card__pack(&card, card_bytes);
    b64 = text_b64_encode(card_bytes, card_len);
    if (!b64) {
        snprintf(err, errlen, "card: out of memory");
        goto out;
    }
    if (sizeof CARD_PREFIX - 1u + strlen(b64) > CARD_TEXT_MAX) {
        snprintf(err, errlen, "card: the card text would exceed %u characters", CARD_TEXT_MAX);
        goto out;
    }
    text = malloc(sizeof CARD_PREFIX + strlen(b64));
    if (!text) {
        snprintf(err, errlen, "card: out of memory");
        goto out;
    }
    memcpy(text, CARD_PREFIX, sizeof CARD_PREFIX - 1u);
    memcpy(text + sizeof CARD_PREFIX - 1u, b64, strlen(b64) + 1u);
out:
    free(body);
    free(msg);
    free(card_bytes);
    free(b64);
    return text;
}

/* Copies s (already checked to fit) into a fixed field. */
static void copy_field(char *dst, size_t dstlen, const char *s)
{
    snprintf(dst, dstlen, "%s", s);
}

/* Checks a bytes field is exactly one public key long. */
static int check_key(const ProtobufCBinaryData *b, const char *field, char *err, size_t errlen)
{
    if (b->len != LIAISON_KEY_BYTES) {
        snprintf(err, errlen, "card: %s is %zu bytes, expected %u", field, b->len, LIAISON_KEY_BYTES);
        return -1;
    }
    return 0;
}

int card_decode(const char *text, card_t *out, char *err, size_t errlen)
{
    int rc = -1;
    char compact[CARD_TEXT_MAX + 1];
    size_t n = 0;
    uint8_t *bytes = NULL, *msg = NULL, *again = NULL;
    size_t bytes_len = 0, msg_len = 0;
    Liaison__Wire__Card *card = NULL;
    Liaison__Wire__CardBody *cb = NULL;
    card_t c;

    memset(&c, 0, sizeof c);
    if (!text || !out) {
        snprintf(err, errlen, "card: no card text");
        goto out;
    }
    /* Cards travel through mail and chat, which wrap lines: drop all ASCII whitespace. */
    for (const char *p = text; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\v' || *p == '\f')
            continue;
        if (n == CARD_TEXT_MAX) {
            snprintf(err, errlen, "card: text is longer than %u characters", CARD_TEXT_MAX);
            goto out;
        }
        compact[n++] = *p;
    }
    compact[n] = '\0';
    if (strncmp(compact, CARD_PREFIX, sizeof CARD_PREFIX - 1u) != 0) {
        snprintf(err, errlen, "card: text does not start with '%s'", CARD_PREFIX);
        goto out;
    }
    if (text_b64_decode(compact + sizeof CARD_PREFIX - 1u, CARD_TEXT_MAX, &bytes, &bytes_len) != 0) {
        snprintf(err, errlen, "card: text after '%s' is not valid base64url (damaged or cut off?)", CARD_PREFIX);
        goto out;
    }
    if (bytes_len == 0) {
        snprintf(err, errlen, "card: no card data after '%s'", CARD_PREFIX);
        goto out;
    }
    card = liaison__wire__card__unpack(NULL, bytes_len, bytes);
    if (!card) {
        snprintf(err, errlen, "card: not a liaison card (cannot decode)");
        goto out;
    }
    if (card->base.n_unknown_fields != 0 || liaison__wire__card__get_packed_size(card) != bytes_len) {
        snprintf(err, errlen, "card: unexpected extra data in the card");
        goto out;
    }
    /* Canonical form (PROTOCOL.md): the same size is not enough, the fields could be in
     * another order; the card must be byte for byte what an encoder writes. */
    again = malloc(bytes_len);
    if (!again) {
        snprintf(err, errlen, "card: out of memory");
        goto out;
    }
    liaison__wire__card__pack(card, again);
    if (memcmp(again, bytes, bytes_len) != 0) {
        snprintf(err, errlen, "card: card is not in canonical form (fields out of order)");
        goto out;
    }
    if (card->signature.len != crypto_sign_BYTES) {
        snprintf(err, errlen, "card: signature is %zu bytes, expected %u", card->signature.len, crypto_sign_BYTES);
        goto out;
    }
    cb = liaison__wire__card_body__unpack(NULL, card->body.len, card->body.data);
    if (!cb) {
        snprintf(err, errlen, "card: card body cannot be decoded");
        goto out;
    }
    if (cb->version != LIAISON_PROTOCOL_VERSION) {
        snprintf(err, errlen, "card: version %u is not supported (this program reads version %u)",
                 cb->version, LIAISON_PROTOCOL_VERSION);
        goto out;
    }
    /* A re-encoded size that differs means unknown or repeated fields, or a string with an
     * embedded NUL that C would silently cut short. */
    if (cb->base.n_unknown_fields != 0 || liaison__wire__card_body__get_packed_size(cb) != card->body.len) {
        snprintf(err, errlen, "card: card body is not in canonical form");
        goto out;
    }
    if (card_check_fields(cb->id, cb->name, cb->role, cb->org, cb->endpoint, false, err, errlen) != 0)
        goto out;
    if (check_key(&cb->sign_pk, "sign_pk", err, errlen) != 0 ||
        check_key(&cb->enc_pk, "enc_pk", err, errlen) != 0 ||
        check_key(&cb->transport_pk, "transport_pk", err, errlen) != 0)
        goto out;
    /* Verify over the body bytes exactly as received; never re-serialize. */
    msg = card_signed_message(card->body.data, card->body.len, &msg_len);
    if (!msg) {
        snprintf(err, errlen, "card: out of memory");
        goto out;
    }
    if (crypto_sign_verify_detached(card->signature.data, msg, msg_len, cb->sign_pk.data) != 0) {
        snprintf(err, errlen, "card: signature does not verify (the card was altered or damaged in transit; ask for it again)");
        goto out;
    }
    copy_field(c.id, sizeof c.id, cb->id);
    copy_field(c.name, sizeof c.name, cb->name);
    copy_field(c.role, sizeof c.role, cb->role);
    copy_field(c.org, sizeof c.org, cb->org);
    copy_field(c.endpoint, sizeof c.endpoint, cb->endpoint);
    memcpy(c.sign_pk, cb->sign_pk.data, LIAISON_KEY_BYTES);
    memcpy(c.enc_pk, cb->enc_pk.data, LIAISON_KEY_BYTES);
    memcpy(c.transport_pk, cb->transport_pk.data, LIAISON_KEY_BYTES);
    c.created_ms = cb->created_ms;
    *out = c;
    rc = 0;
out:
    if (cb)
        liaison__wire__card_body__free_unpacked(cb, NULL);
    if (card)
        liaison__wire__card__free_unpacked(card, NULL);
    free(bytes);
    free(msg);
    free(again);
    return rc;
}

int card_same_keys(const card_t *a, const card_t *b)
{
    int same = 0;
    if (a && b && sodium_memcmp(a->sign_pk, b->sign_pk, LIAISON_KEY_BYTES) == 0 &&
        sodium_memcmp(a->enc_pk, b->enc_pk, LIAISON_KEY_BYTES) == 0 &&
        sodium_memcmp(a->transport_pk, b->transport_pk, LIAISON_KEY_BYTES) == 0)
        same = 1;
    return same;
}
