/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the envelope: sealing for many recipients, and parsing, verifying and opening received bytes. */
#include "seal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "domains.h"
#include "text.h"

#define AEAD_KEY crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define AEAD_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define AEAD_TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
#define WRAPPED_BYTES (AEAD_KEY + AEAD_TAG)   /* wrapped content key: 48 */

_Static_assert(AEAD_KEY == LIAISON_KEY_BYTES, "content and pair keys are 32 bytes");
_Static_assert(AEAD_NONCE == LIAISON_NONCE_BYTES, "XChaCha20 nonce");
_Static_assert(AEAD_TAG == LIAISON_TAG_BYTES, "Poly1305 tag");
_Static_assert(crypto_sign_BYTES == LIAISON_SIG_BYTES, "Ed25519 signature");
_Static_assert(LIAISON_MAX_ID <= 255u, "ids are length-prefixed with one byte in WRAP_AD");
_Static_assert(LIAISON_MAX_BODY <= UINT32_MAX, "u32be lengths in the signed message");

/* "liaison-v1/key-wrap" 0x00 || message_id || u8 len || sender || u8 len || recipient */
#define WRAP_AD_MAX (sizeof LIAISON_DOMAIN_KEY_WRAP + LIAISON_MSGID_BYTES + 2u * (1u + LIAISON_MAX_ID))

/* Writes the key-wrap associated data; both ids must be valid (<= LIAISON_MAX_ID bytes).
 * Returns its length. */
static size_t wrap_ad(uint8_t ad[static WRAP_AD_MAX], const uint8_t msg_id[static LIAISON_MSGID_BYTES],
                      const char *sender, const char *recipient)
{
    size_t sl = strlen(sender), rl = strlen(recipient);
    uint8_t *p = ad;

    memcpy(p, LIAISON_DOMAIN_KEY_WRAP, sizeof LIAISON_DOMAIN_KEY_WRAP);
    p += sizeof LIAISON_DOMAIN_KEY_WRAP;
    memcpy(p, msg_id, LIAISON_MSGID_BYTES);
    p += LIAISON_MSGID_BYTES;
    *p++ = (uint8_t)sl;
    memcpy(p, sender, sl);
    p += sl;
    *p++ = (uint8_t)rl;
    memcpy(p, recipient, rl);
    p += rl;
    return (size_t)(p - ad);
}

static uint8_t *put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

/* The bytes the envelope signature covers:
 * "liaison-v1/envelope" 0x00 || u32be(len(header)) || header || u32be(len(body)) || body.
 * Laid out in buf when they fit in cap bytes (a message of a few KB: no allocation per
 * message), else in a malloc'd buffer left in *spill for the caller to free. The
 * prefix and both lengths are written; *hdr_at and *body_at say where the header and
 * the body go. Returns the buffer, or NULL if out of memory. */
#define SIGNED_INLINE 8192u
static uint8_t *signed_layout(size_t hdr_len, size_t body_len, uint8_t *buf, size_t cap, uint8_t **spill,
                              size_t *len, uint8_t **hdr_at, uint8_t **body_at)
{
    size_t n = sizeof LIAISON_DOMAIN_ENVELOPE + 4u + hdr_len + 4u + body_len;
    uint8_t *m = n <= cap ? buf : (*spill = malloc(n));
    if (!m)
        return NULL;
    uint8_t *p = m;
    memcpy(p, LIAISON_DOMAIN_ENVELOPE, sizeof LIAISON_DOMAIN_ENVELOPE);
    p += sizeof LIAISON_DOMAIN_ENVELOPE;
    p = put_u32be(p, (uint32_t)hdr_len);
    *hdr_at = p;
    p = put_u32be(p + hdr_len, (uint32_t)body_len);
    *body_at = p;
    *len = n;
    return m;
}

/* Checks the caller's seal_input_t against the same rules envelope_parse enforces. */
static int check_input(const keys_t *me, const seal_input_t *in, char *err, size_t errlen)
{
    int rc = -1;
    bool sender_listed = false;

    if (!me || !me->sign_sk || !in) {
        snprintf(err, errlen, "seal: no keys or no input");
        goto out;
    }
    if (!text_valid_id(in->sender)) {
        snprintf(err, errlen, "seal: sender is not a valid node id");
        goto out;
    }
    if (!in->recipients || in->n_recipients < 1 || in->n_recipients > LIAISON_MAX_RECIPIENTS) {
        snprintf(err, errlen, "seal: %zu recipients, must be 1 to %u (sender included)", in->n_recipients,
                 LIAISON_MAX_RECIPIENTS);
        goto out;
    }
    for (size_t i = 0; i < in->n_recipients; i++) {
        const seal_recipient_t *r = &in->recipients[i];
        if (!text_valid_id(r->id)) {
            snprintf(err, errlen, "seal: recipient %zu is not a valid node id", i + 1);
            goto out;
        }
        if (!r->pair_key) {
            snprintf(err, errlen, "seal: no pair key for recipient %s", r->id);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(r->id, in->recipients[j].id) == 0) {
                snprintf(err, errlen, "seal: recipient %s is listed twice", r->id);
                goto out;
            }
        }
        if (strcmp(r->id, in->sender) == 0)
            sender_listed = true;
    }
    if (!sender_listed) {
        snprintf(err, errlen, "seal: sender %s must be among the recipients", in->sender);
        goto out;
    }
    if (in->payload_len > LIAISON_MAX_PAYLOAD || (!in->payload && in->payload_len)) {
        snprintf(err, errlen, "seal: payload of %zu bytes, limit is %u", in->payload_len, LIAISON_MAX_PAYLOAD);
        goto out;
    }
    rc = 0;
out:
    return rc;
}

/* What the header commits to: the content key, so that no sender can wrap different
 * keys that open one body to different plaintexts for different recipients. */
static void key_commitment(const uint8_t ck[static AEAD_KEY], uint8_t out[static LIAISON_HASH_BYTES])
{
    crypto_generichash_state st;
    if (crypto_generichash_init(&st, NULL, 0, LIAISON_HASH_BYTES) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *)LIAISON_DOMAIN_KEY_COMMITMENT,
                                  sizeof LIAISON_DOMAIN_KEY_COMMITMENT) != 0 ||
        crypto_generichash_update(&st, ck, AEAD_KEY) != 0 || crypto_generichash_final(&st, out, LIAISON_HASH_BYTES) != 0)
        sodium_memzero(out, LIAISON_HASH_BYTES);
    sodium_memzero(&st, sizeof st);
}

void seal_message_id(uint64_t created_ms, const char *sender, const uint8_t commitment[static LIAISON_HASH_BYTES],
                     uint8_t id[static LIAISON_MSGID_BYTES])
{
    uint8_t h[LIAISON_HASH_BYTES];
    size_t slen = strlen(sender);
    uint8_t len8 = (uint8_t)(slen > 255 ? 255 : slen); /* ids are at most 64 bytes (text_valid_id) */
    crypto_generichash_state st;
    for (size_t i = 0; i < 6; i++)
        id[i] = (uint8_t)(created_ms >> (8 * (5 - i)));
    if (crypto_generichash_init(&st, NULL, 0, sizeof h) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *)LIAISON_DOMAIN_MESSAGE_ID,
                                  sizeof LIAISON_DOMAIN_MESSAGE_ID) != 0 ||
        crypto_generichash_update(&st, &len8, 1) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *)sender, len8) != 0 ||
        crypto_generichash_update(&st, commitment, LIAISON_HASH_BYTES) != 0 ||
        crypto_generichash_final(&st, h, sizeof h) != 0)
        memset(h, 0, sizeof h);
    memcpy(id + 6, h, LIAISON_MSGID_BYTES - 6);
}

int seal_envelope(const keys_t *me, const seal_input_t *in, uint8_t msg_id[static LIAISON_MSGID_BYTES],
                  uint8_t **out, size_t *out_len, char *err, size_t errlen)
{
    static const uint8_t empty[1];
    int rc = -1;
    uint8_t mid[LIAISON_MSGID_BYTES];
    uint8_t ad[WRAP_AD_MAX];
    uint8_t sig[crypto_sign_BYTES];
    /* The content key lives on the stack for microseconds and is wiped on every path
     * (sodium_malloc per message cost more than the rest of the symmetric work). */
    uint8_t ck_buf[AEAD_KEY], commitment[LIAISON_HASH_BYTES];
    /* Every random byte a message needs, drawn at once (one getrandom call instead of
     * one per field): the content key (from which the message id is derived), the
     * body's nonce and one wrap nonce per recipient. Wiped with the content key. */
    enum { RND_FIXED = AEAD_KEY + AEAD_NONCE };
    uint8_t rnd[RND_FIXED + LIAISON_MAX_RECIPIENTS * AEAD_NONCE];
    /* Sized for the most recipients a message may have, so that sealing allocates
     * nothing but its output (and a spill buffer for a large message, signed_layout). */
    uint8_t wrapped[LIAISON_MAX_RECIPIENTS * (AEAD_NONCE + WRAPPED_BYTES)];
    Liaison__Wire__WrappedKey wks[LIAISON_MAX_RECIPIENTS];
    Liaison__Wire__WrappedKey *wkp[LIAISON_MAX_RECIPIENTS];
    char *rcpts[LIAISON_MAX_RECIPIENTS];
    _Alignas(16) uint8_t msg_buf[SIGNED_INLINE];
    uint8_t *ck = NULL, *hdr_bytes = NULL, *body = NULL, *msg = NULL, *spill = NULL, *env_bytes = NULL;
    size_t hdr_len = 0, body_len = 0, msg_len = 0, env_len = 0;
    Liaison__Wire__Header hdr = LIAISON__WIRE__HEADER__INIT;
    Liaison__Wire__Envelope env = LIAISON__WIRE__ENVELOPE__INIT;
    size_t n;

    if (out)
        *out = NULL;
    if (!out || !out_len) {
        snprintf(err, errlen, "seal: no output buffer");
        goto out;
    }
    if (check_input(me, in, err, errlen) != 0)
        goto out;
    n = in->n_recipients;
    ck = ck_buf;
    randombytes_buf(rnd, RND_FIXED + n * AEAD_NONCE);
    memcpy(ck, rnd, AEAD_KEY);
    key_commitment(ck, commitment);
    seal_message_id(in->created_ms, in->sender, commitment, mid);

    for (size_t i = 0; i < n; i++) {
        uint8_t *nonce = wrapped + i * (AEAD_NONCE + WRAPPED_BYTES);
        uint8_t *ct = nonce + AEAD_NONCE;
        unsigned long long ct_len = 0;
        size_t ad_len = wrap_ad(ad, mid, in->sender, in->recipients[i].id);

        memcpy(nonce, rnd + RND_FIXED + i * AEAD_NONCE, AEAD_NONCE);
        if (crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ct_len, ck, AEAD_KEY, ad, ad_len, NULL, nonce,
                                                       in->recipients[i].pair_key) != 0 ||
            ct_len != WRAPPED_BYTES) {
            snprintf(err, errlen, "seal: cannot wrap the content key");
            goto out;
        }
        liaison__wire__wrapped_key__init(&wks[i]);
        wks[i].recipient = (char *)in->recipients[i].id;
        wks[i].nonce = (ProtobufCBinaryData){AEAD_NONCE, nonce};
        wks[i].ciphertext = (ProtobufCBinaryData){WRAPPED_BYTES, ct};
        wkp[i] = &wks[i];
        rcpts[i] = (char *)in->recipients[i].id;
    }

    hdr.version = LIAISON_PROTOCOL_VERSION;
    hdr.message_id = (ProtobufCBinaryData){sizeof mid, mid};
    hdr.sender = (char *)in->sender;
    hdr.n_recipients = n;
    hdr.recipients = rcpts;
    hdr.created_ms = in->created_ms;
    hdr.content_type = in->content_type;
    if (in->thread_id)
        hdr.thread_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, (uint8_t *)in->thread_id};
    hdr.n_keys = n;
    hdr.keys = wkp;
    hdr.key_commitment = (ProtobufCBinaryData){sizeof commitment, commitment};
    hdr_len = liaison__wire__header__get_packed_size(&hdr);
    if (hdr_len > LIAISON_MAX_HEADER) {
        snprintf(err, errlen, "seal: header would be %zu bytes, limit is %u (too many or too long recipient ids)",
                 hdr_len, LIAISON_MAX_HEADER);
        goto out;
    }
    /* Header and body are written where the signature will read them. */
    body_len = AEAD_NONCE + in->payload_len + AEAD_TAG;
    msg = signed_layout(hdr_len, body_len, msg_buf, sizeof msg_buf, &spill, &msg_len, &hdr_bytes, &body);
    if (!msg) {
        snprintf(err, errlen, "seal: out of memory");
        goto out;
    }
    liaison__wire__header__pack(&hdr, hdr_bytes);

    /* The body's AD is the header exactly as it will travel: binds recipients, wraps and ids. */
    memcpy(body, rnd + AEAD_KEY, AEAD_NONCE);
    unsigned long long body_ct_len = 0;
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(body + AEAD_NONCE, &body_ct_len,
                                                   in->payload_len ? in->payload : empty, in->payload_len,
                                                   hdr_bytes, hdr_len, NULL, body, ck) != 0 ||
        body_ct_len != in->payload_len + AEAD_TAG) {
        snprintf(err, errlen, "seal: cannot encrypt the body");
        goto out;
    }
    if (crypto_sign_detached(sig, NULL, msg, msg_len, me->sign_sk) != 0) {
        snprintf(err, errlen, "seal: cannot sign the envelope");
        goto out;
    }
    env.header = (ProtobufCBinaryData){hdr_len, hdr_bytes};
    env.body = (ProtobufCBinaryData){body_len, body};
    env.signature = (ProtobufCBinaryData){sizeof sig, sig};
    env_len = liaison__wire__envelope__get_packed_size(&env);
    env_bytes = malloc(env_len);
    if (!env_bytes) {
        snprintf(err, errlen, "seal: out of memory");
        goto out;
    }
    liaison__wire__envelope__pack(&env, env_bytes);
    memcpy(msg_id, mid, sizeof mid);
    *out = env_bytes;
    *out_len = env_len;
    env_bytes = NULL;
    rc = 0;
out:
    sodium_memzero(ck_buf, sizeof ck_buf);
    sodium_memzero(rnd, sizeof rnd);
    sodium_memzero(ad, sizeof ad);
    free(spill);
    free(env_bytes);
    return rc;
}

void envelope_release(envelope_t *e)
{
    if (!e)
        return;
    if (e->hdr)
        liaison__wire__header__free_unpacked(e->hdr, &e->arena.alloc);
    if (e->env)
        liaison__wire__envelope__free_unpacked(e->env, &e->arena.alloc);
    e->hdr = NULL;
    e->env = NULL;
    pb_arena_release(&e->arena);
}

void envelope_destroy(envelope_t **pe)
{
    if (!pe || !*pe)
        return;
    envelope_release(*pe);
    free(*pe);
    *pe = NULL;
}

/* The envelope's bytes must be the one encoding protobuf-c itself produces for its three
 * fields: no unknown or repeated fields, field order, minimal lengths. Otherwise one signed
 * message would have many byte forms, and the envelope hash (receipts, duplicate detection)
 * would not identify it. The signature still covers only the carried header and body bytes.
 * Returns 1 if canonical, 0 if not, -1 if there was no memory to check (no verdict: a
 * valid message must not be refused for good for want of memory). */
static int envelope_is_canonical(const Liaison__Wire__Envelope *env, const uint8_t *bytes, size_t len)
{
    int ok = 0;
    uint8_t *again = NULL;

    if (env->base.n_unknown_fields != 0 || liaison__wire__envelope__get_packed_size(env) != len)
        goto out;
    again = malloc(len);
    if (!again) {
        ok = -1;
        goto out;
    }
    liaison__wire__envelope__pack(env, again);
    ok = memcmp(again, bytes, len) == 0;
out:
    free(again);
    return ok;
}

/* Checks the unpacked header's fields (version already checked). */
static int check_header(const Liaison__Wire__Header *h, size_t hdr_len, bool stored, char *err, size_t errlen)
{
    int rc = -1;
    bool sender_listed = false;

    /* A re-encoded size different from the carried one means unknown fields, a singular
     * field sent twice, overlong varints, or a string with an embedded NUL that C would
     * silently truncate. All are refused so every reader sees the same header. */
    if (h->base.n_unknown_fields != 0 || liaison__wire__header__get_packed_size(h) != hdr_len) {
        snprintf(err, errlen, "envelope: header is not in canonical form");
        goto out;
    }
    if (h->message_id.len != LIAISON_MSGID_BYTES) {
        snprintf(err, errlen, "envelope: message id is %zu bytes, expected %u", h->message_id.len,
                 LIAISON_MSGID_BYTES);
        goto out;
    }
    if (!text_valid_id(h->sender)) {
        snprintf(err, errlen, "envelope: sender is not a valid node id");
        goto out;
    }
    if (h->n_recipients < 1 || h->n_recipients > LIAISON_MAX_RECIPIENTS) {
        snprintf(err, errlen, "envelope: %zu recipients, limit is %u", h->n_recipients, LIAISON_MAX_RECIPIENTS);
        goto out;
    }
    for (size_t i = 0; i < h->n_recipients; i++) {
        if (!text_valid_id(h->recipients[i])) {
            snprintf(err, errlen, "envelope: recipient %zu is not a valid node id", i + 1);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(h->recipients[i], h->recipients[j]) == 0) {
                snprintf(err, errlen, "envelope: recipient %s is listed twice", h->recipients[i]);
                goto out;
            }
        }
        if (strcmp(h->recipients[i], h->sender) == 0)
            sender_listed = true;
    }
    if (!sender_listed) {
        snprintf(err, errlen, "envelope: sender %s is not among the recipients", h->sender);
        goto out;
    }
    if (h->n_keys != h->n_recipients) {
        snprintf(err, errlen, "envelope: %zu wrapped keys for %zu recipients", h->n_keys, h->n_recipients);
        goto out;
    }
    for (size_t i = 0; i < h->n_keys; i++) {
        const Liaison__Wire__WrappedKey *k = h->keys[i];
        if (!k || k->base.n_unknown_fields != 0 || !k->recipient || strcmp(k->recipient, h->recipients[i]) != 0) {
            snprintf(err, errlen, "envelope: wrapped key %zu is not for recipient %zu", i + 1, i + 1);
            goto out;
        }
        if (k->nonce.len != AEAD_NONCE || k->ciphertext.len != WRAPPED_BYTES) {
            snprintf(err, errlen, "envelope: wrapped key %zu has a %zu-byte nonce and %zu-byte ciphertext, expected %u and %u",
                     i + 1, k->nonce.len, k->ciphertext.len, AEAD_NONCE, WRAPPED_BYTES);
            goto out;
        }
    }
    if (h->thread_id.len != 0 && h->thread_id.len != LIAISON_MSGID_BYTES) {
        snprintf(err, errlen, "envelope: thread id is %zu bytes, expected 0 or %u", h->thread_id.len,
                 LIAISON_MSGID_BYTES);
        goto out;
    }
    if (h->key_commitment.len != LIAISON_HASH_BYTES && !(stored && h->key_commitment.len == 0)) {
        snprintf(err, errlen, "envelope: key commitment is %zu bytes, expected %u", h->key_commitment.len,
                 LIAISON_HASH_BYTES);
        goto out;
    }
    /* The id is the sender's own (seal_message_id): another node that learnt it, as a
     * co-recipient, cannot take it first at a third. Envelopes stored before this rule
     * keep their random ids. */
    if (!stored) {
        uint8_t want[LIAISON_MSGID_BYTES];
        seal_message_id(h->created_ms, h->sender, h->key_commitment.data, want);
        if (sodium_memcmp(want, h->message_id.data, LIAISON_MSGID_BYTES) != 0) {
            snprintf(err, errlen, "envelope: message id is not the one its time, sender and key commitment give");
            goto out;
        }
    }
    rc = 0;
out:
    return rc;
}

static int parse_into(envelope_t *e, const uint8_t *bytes, size_t len, bool stored, int *code, char *err,
                      size_t errlen)
{
    int rc = -1;
    int why = LIAISON__WIRE__REJECT_CODE__REJECT_MALFORMED;
    const Liaison__Wire__Envelope *env;

    /* Set up first, so that every failure below releases the same way. */
    e->env = NULL;
    e->hdr = NULL;
    e->uncommitted = false;
    pb_arena_init(&e->arena, e->arena_buf, sizeof e->arena_buf);
    if (!bytes || len < 1 || len > LIAISON_MAX_ENVELOPE) {
        snprintf(err, errlen, "envelope: %zu bytes, must be 1 to %u", bytes ? len : 0, LIAISON_MAX_ENVELOPE);
        goto out;
    }
    e->env = liaison__wire__envelope__unpack(&e->arena.alloc, len, bytes);
    if (!e->env) {
        snprintf(err, errlen, "envelope: cannot be decoded");
        goto out_of_memory;
    }
    env = e->env;
    int canonical = envelope_is_canonical(env, bytes, len);
    if (canonical < 0) {
        why = LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER;
        snprintf(err, errlen, "envelope: out of memory");
        goto out;
    }
    if (canonical == 0) {
        snprintf(err, errlen, "envelope: not in canonical form (extra, repeated or reordered fields)");
        goto out;
    }
    if (env->header.len < 1 || env->header.len > LIAISON_MAX_HEADER) {
        snprintf(err, errlen, "envelope: header is %zu bytes, must be 1 to %u", env->header.len, LIAISON_MAX_HEADER);
        goto out;
    }
    if (env->body.len < AEAD_NONCE + AEAD_TAG || env->body.len > LIAISON_MAX_BODY) {
        snprintf(err, errlen, "envelope: body is %zu bytes, must be %u to %u", env->body.len, AEAD_NONCE + AEAD_TAG,
                 LIAISON_MAX_BODY);
        goto out;
    }
    if (env->signature.len != crypto_sign_BYTES) {
        snprintf(err, errlen, "envelope: signature is %zu bytes, expected %u", env->signature.len, crypto_sign_BYTES);
        goto out;
    }
    e->hdr = liaison__wire__header__unpack(&e->arena.alloc, env->header.len, env->header.data);
    if (!e->hdr) {
        snprintf(err, errlen, "envelope: header cannot be decoded");
        goto out_of_memory;
    }
    if (e->hdr->version != LIAISON_PROTOCOL_VERSION) {
        why = LIAISON__WIRE__REJECT_CODE__REJECT_VERSION;
        snprintf(err, errlen, "envelope: version %u, this node speaks version %u", e->hdr->version,
                 LIAISON_PROTOCOL_VERSION);
        goto out;
    }
    if (check_header(e->hdr, env->header.len, stored, err, errlen) != 0)
        goto out;
    e->uncommitted = e->hdr->key_commitment.len == 0;
    why = LIAISON__WIRE__REJECT_CODE__REJECT_UNSPECIFIED;
    rc = 0;
out_of_memory:
    /* protobuf-c's NULL says nothing of the bytes when an allocation failed: a refusal
     * for good would lose a valid message to a moment without memory. */
    if (rc != 0 && e->arena.failed) {
        why = LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER;
        snprintf(err, errlen, "envelope: out of memory");
    }
out:
    if (code)
        *code = why;
    if (rc != 0)
        envelope_release(e);
    return rc;
}

static int parse(const uint8_t *bytes, size_t len, bool stored, envelope_t **out, int *code, char *err, size_t errlen)
{
    if (!out) {
        snprintf(err, errlen, "envelope: no output");
        if (code)
            *code = LIAISON__WIRE__REJECT_CODE__REJECT_MALFORMED;
        return -1;
    }
    *out = NULL;
    envelope_t *e = malloc(sizeof *e); /* not zeroed: the arena's buffer is written before it is read */
    if (!e) {
        snprintf(err, errlen, "envelope: out of memory");
        if (code)
            *code = LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER;
        return -1;
    }
    if (parse_into(e, bytes, len, stored, code, err, errlen) != 0) {
        free(e);
        return -1;
    }
    *out = e;
    return 0;
}

int envelope_parse_in(envelope_t *e, const uint8_t *bytes, size_t len, int *code, char *err, size_t errlen)
{
    return parse_into(e, bytes, len, false, code, err, errlen);
}

bool envelope_refused_msgid(const uint8_t *bytes, size_t len, uint8_t id[static LIAISON_MSGID_BYTES])
{
    envelope_t e;
    pb_arena_init(&e.arena, e.arena_buf, sizeof e.arena_buf);
    e.hdr = NULL;
    e.env = bytes && len <= LIAISON_MAX_ENVELOPE ? liaison__wire__envelope__unpack(&e.arena.alloc, len, bytes) : NULL;
    if (e.env && e.env->header.len <= LIAISON_MAX_HEADER)
        e.hdr = liaison__wire__header__unpack(&e.arena.alloc, e.env->header.len, e.env->header.data);
    bool found = e.hdr && e.hdr->message_id.len == LIAISON_MSGID_BYTES;
    if (found)
        memcpy(id, e.hdr->message_id.data, LIAISON_MSGID_BYTES);
    envelope_release(&e);
    return found;
}

int envelope_parse(const uint8_t *bytes, size_t len, envelope_t **out, int *code, char *err, size_t errlen)
{
    return parse(bytes, len, false, out, code, err, errlen);
}

int envelope_parse_stored(const uint8_t *bytes, size_t len, envelope_t **out, int *code, char *err, size_t errlen)
{
    return parse(bytes, len, true, out, code, err, errlen);
}

int envelope_verify(const envelope_t *e, const uint8_t sign_pk[static LIAISON_KEY_BYTES])
{
    if (!e || !e->env || e->env->signature.len != crypto_sign_BYTES)
        return -1;
    _Alignas(16) uint8_t buf[SIGNED_INLINE];
    uint8_t *spill = NULL, *hdr_at, *body_at;
    size_t msg_len = 0;
    const ProtobufCBinaryData *h = &e->env->header, *b = &e->env->body;
    uint8_t *msg = signed_layout(h->len, b->len, buf, sizeof buf, &spill, &msg_len, &hdr_at, &body_at);
    if (!msg)
        return -2; /* out of memory: says nothing about the signature */
    if (h->len)
        memcpy(hdr_at, h->data, h->len);
    if (b->len)
        memcpy(body_at, b->data, b->len);
    int rc = crypto_sign_verify_detached(e->env->signature.data, msg, msg_len, sign_pk) == 0 ? 0 : -1;
    free(spill);
    return rc;
}

int envelope_recipient_index(const envelope_t *e, const char *id)
{
    int idx = -1;
    if (!e || !e->hdr || !id)
        goto out;
    for (size_t i = 0; i < e->hdr->n_recipients; i++) {
        if (strcmp(e->hdr->recipients[i], id) == 0) {
            idx = (int)i;
            break;
        }
    }
out:
    return idx;
}

int envelope_open(const envelope_t *e, const char *me_id, const uint8_t pair_key[static LIAISON_KEY_BYTES],
                  uint8_t **pt, size_t *pt_len)
{
    int rc = -1;
    uint8_t ad[WRAP_AD_MAX];
    uint8_t ck_buf[AEAD_KEY], commitment[LIAISON_HASH_BYTES];
    uint8_t *ck = NULL, *plain = NULL;
    size_t plain_cap = 0;
    unsigned long long ck_len = 0, plain_len = 0;
    const Liaison__Wire__WrappedKey *wk;
    const Liaison__Wire__Envelope *env;
    int idx;

    if (pt)
        *pt = NULL;
    if (!e || !e->env || !e->hdr || !me_id || !pt || !pt_len)
        goto out;
    idx = envelope_recipient_index(e, me_id);
    if (idx < 0)
        goto out;
    env = e->env;
    wk = e->hdr->keys[idx];
    /* envelope_parse guaranteed these; re-check so a hand-built envelope_t cannot overflow. */
    if (wk->ciphertext.len != WRAPPED_BYTES || wk->nonce.len != AEAD_NONCE || env->body.len < AEAD_NONCE + AEAD_TAG ||
        e->hdr->message_id.len != LIAISON_MSGID_BYTES ||
        e->hdr->key_commitment.len != (e->uncommitted ? 0u : LIAISON_HASH_BYTES) || !text_valid_id(e->hdr->sender))
        goto out;
    ck = ck_buf;
    if (!ck)
        goto out;
    size_t ad_len = wrap_ad(ad, e->hdr->message_id.data, e->hdr->sender, e->hdr->recipients[idx]);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(ck, &ck_len, NULL, wk->ciphertext.data, wk->ciphertext.len, ad,
                                                   ad_len, wk->nonce.data, pair_key) != 0 ||
        ck_len != AEAD_KEY)
        goto out;
    /* The key this recipient was given must be the one the sender signed for all. */
    key_commitment(ck, commitment);
    if (!e->uncommitted && sodium_memcmp(commitment, e->hdr->key_commitment.data, LIAISON_HASH_BYTES) != 0)
        goto out;
    plain_cap = env->body.len - AEAD_NONCE - AEAD_TAG;
    plain = malloc(plain_cap ? plain_cap : 1);
    if (!plain) {
        rc = -2; /* out of memory: the key unwrapped, nothing is known to be wrong */
        goto out;
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plain_len, NULL, env->body.data + AEAD_NONCE,
                                                   env->body.len - AEAD_NONCE, env->header.data, env->header.len,
                                                   env->body.data, ck) != 0 ||
        plain_len != plain_cap)
        goto out;
    *pt = plain;
    *pt_len = plain_cap;
    plain = NULL;
    rc = 0;
out:
    sodium_memzero(ck_buf, sizeof ck_buf);
    sodium_memzero(commitment, sizeof commitment);
    sodium_memzero(ad, sizeof ad);
    if (plain) {
        sodium_memzero(plain, plain_cap);
        free(plain);
    }
    return rc;
}

const uint8_t *envelope_msgid(const envelope_t *e)
{
    return (e && e->hdr && e->hdr->message_id.len == LIAISON_MSGID_BYTES) ? e->hdr->message_id.data : NULL;
}

void envelope_hash(const uint8_t *bytes, size_t len, uint8_t out[static LIAISON_HASH_BYTES])
{
    crypto_generichash_state st;

    /* BLAKE2b with these parameters cannot fail; should it ever, return zeros, not stack garbage. */
    if (crypto_generichash_init(&st, NULL, 0, LIAISON_HASH_BYTES) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *)LIAISON_DOMAIN_ENVELOPE_HASH,
                                  sizeof LIAISON_DOMAIN_ENVELOPE_HASH) != 0 ||
        (len && crypto_generichash_update(&st, bytes, len) != 0) ||
        crypto_generichash_final(&st, out, LIAISON_HASH_BYTES) != 0)
        sodium_memzero(out, LIAISON_HASH_BYTES);
}
