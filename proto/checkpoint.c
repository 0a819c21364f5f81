/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the signed checkpoint note: writing it, parsing it strictly and verifying its signature. */
#include "checkpoint.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "text.h"

#define B64 sodium_base64_VARIANT_ORIGINAL
#define SIG_BLOB_BYTES (CHECKPOINT_KEY_ID_BYTES + crypto_sign_BYTES)
/* Encoded lengths without the NUL that sodium_base64_ENCODED_LEN counts. */
#define ROOT_B64_LEN (sodium_base64_ENCODED_LEN(MERKLE_HASH_BYTES, B64) - 1u)
#define SIG_B64_LEN (sodium_base64_ENCODED_LEN(SIG_BLOB_BYTES, B64) - 1u)
#define MAX_DECIMAL 20u /* digits of UINT64_MAX */
#define TIME_PREFIX "time "
/* Longest body: origin, size, root and time lines with their newlines. */
#define BODY_MAX (sizeof CHECKPOINT_ORIGIN_PREFIX - 1u + LIAISON_MAX_ID + 1u + MAX_DECIMAL + 1u + ROOT_B64_LEN + \
                  1u + sizeof TIME_PREFIX - 1u + MAX_DECIMAL + 1u)

_Static_assert(crypto_sign_PUBLICKEYBYTES == LIAISON_KEY_BYTES, "Ed25519 public keys are 32 bytes");
_Static_assert(ROOT_B64_LEN == 44u && SIG_B64_LEN == 92u, "base64 lengths of the root and signature");

/* A parsed note: the checkpoint, the signed body's length and the signature blob. */
typedef struct note {
    checkpoint_t cp;
    size_t body_len;
    uint8_t blob[SIG_BLOB_BYTES];
} note_t;

/* Reading position in the note text. */
typedef struct cursor {
    const char *p;
    size_t left;
} cursor_t;

void checkpoint_key_id(const char *name, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                       uint8_t out[static CHECKPOINT_KEY_ID_BYTES])
{
    static const uint8_t sep[2] = {0x0a, CHECKPOINT_SIG_TYPE_ED25519};
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state st;

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
    crypto_hash_sha256_update(&st, sep, sizeof sep);
    crypto_hash_sha256_update(&st, sign_pk, LIAISON_KEY_BYTES);
    crypto_hash_sha256_final(&st, h);
    memcpy(out, h, CHECKPOINT_KEY_ID_BYTES);
}

char *checkpoint_sign(const checkpoint_t *c, const keys_t *k)
{
    char *note = NULL;
    char body[BODY_MAX + 1];
    char root_b64[ROOT_B64_LEN + 1];
    char sig_b64[SIG_B64_LEN + 1];
    uint8_t blob[SIG_BLOB_BYTES];
    size_t body_len, note_len;
    int n;

    if (!c || !k || !k->sign_sk || !text_valid_id(c->node_id))
        goto out;
    /* The key ID names sign_pk: refuse to sign under an ID that is not the signer's. */
    if (sodium_memcmp(k->sign_sk + crypto_sign_SEEDBYTES, k->sign_pk, crypto_sign_PUBLICKEYBYTES) != 0)
        goto out;
    sodium_bin2base64(root_b64, sizeof root_b64, c->root, MERKLE_HASH_BYTES, B64);
    n = snprintf(body, sizeof body, CHECKPOINT_ORIGIN_PREFIX "%s\n%" PRIu64 "\n%s\n" TIME_PREFIX "%" PRIu64 "\n",
                 c->node_id, c->size, root_b64, c->time_ms);
    if (n < 0 || (size_t)n >= sizeof body)
        goto out;
    body_len = (size_t)n;
    checkpoint_key_id(c->node_id, k->sign_pk, blob);
    if (crypto_sign_detached(blob + CHECKPOINT_KEY_ID_BYTES, NULL, (const uint8_t *)body, body_len, k->sign_sk) != 0)
        goto out;
    sodium_bin2base64(sig_b64, sizeof sig_b64, blob, sizeof blob, B64);
    note_len = body_len + 1u + sizeof CHECKPOINT_EM_DASH " " - 1u + strlen(c->node_id) + 1u + SIG_B64_LEN + 1u;
    note = malloc(note_len + 1u);
    if (!note)
        goto out;
    n = snprintf(note, note_len + 1u, "%s\n" CHECKPOINT_EM_DASH " %s %s\n", body, c->node_id, sig_b64);
    if (n < 0 || (size_t)n != note_len) {
        free(note);
        note = NULL;
    }
out:
    return note;
}

/* Takes the next line (without its '\n') from cur. Returns 0, or -1 if no '\n' is left. */
static int next_line(cursor_t *cur, const char **line, size_t *line_len)
{
    int rc = -1;
    const char *nl = cur->left ? memchr(cur->p, '\n', cur->left) : NULL;

    if (!nl)
        goto out;
    *line = cur->p;
    *line_len = (size_t)(nl - cur->p);
    cur->left -= *line_len + 1u;
    cur->p = nl + 1;
    rc = 0;
out:
    return rc;
}

/* Parses s[0..len) as ASCII decimal without sign, spaces or leading zeros ("0" alone is
 * allowed), no larger than UINT64_MAX. Returns 0, or -1. */
static int parse_decimal(const char *s, size_t len, uint64_t *out)
{
    int rc = -1;
    uint64_t v = 0;

    if (len == 0 || len > MAX_DECIMAL || (len > 1 && s[0] == '0'))
        goto out;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            goto out;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10u)
            goto out;
        v = v * 10u + d;
    }
    *out = v;
    rc = 0;
out:
    return rc;
}

/* Decodes s[0..len) as the padded standard base64 of exactly n bytes (n <= SIG_BLOB_BYTES),
 * in its one canonical spelling (re-encoding gives back s). Returns 0, or -1. */
static int decode_b64_exact(const char *s, size_t len, uint8_t *out, size_t n)
{
    int rc = -1;
    uint8_t bin[SIG_BLOB_BYTES];
    char again[SIG_B64_LEN + 1];
    size_t bin_len = 0;
    const char *end = NULL;

    if (n > sizeof bin || len != sodium_base64_ENCODED_LEN(n, B64) - 1u)
        goto out;
    if (sodium_base642bin(bin, sizeof bin, s, len, NULL, &bin_len, &end, B64) != 0 || end != s + len || bin_len != n)
        goto out;
    /* Unused low bits of the last character must be zero: one note, one spelling. */
    sodium_bin2base64(again, sizeof again, bin, n, B64);
    if (memcmp(again, s, len) != 0)
        goto out;
    memcpy(out, bin, n);
    rc = 0;
out:
    return rc;
}

/* The strict parser behind checkpoint_parse and checkpoint_verify. */
static int note_parse(const char *text, size_t len, note_t *out, char *err, size_t errlen)
{
    int rc = -1;
    cursor_t cur = {text, len};
    const char *line = NULL;
    size_t line_len = 0, id_len = 0;
    note_t n;

    memset(&n, 0, sizeof n);
    if (!text || len == 0 || len > CHECKPOINT_MAX_TEXT) {
        snprintf(err, errlen, "checkpoint: %zu bytes, must be 1 to %u", text ? len : 0, CHECKPOINT_MAX_TEXT);
        goto out;
    }
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "checkpoint: contains a NUL byte");
        goto out;
    }
    /* Origin: "liaison.audit/" NODE_ID. */
    if (next_line(&cur, &line, &line_len) != 0 || line_len <= sizeof CHECKPOINT_ORIGIN_PREFIX - 1u ||
        memcmp(line, CHECKPOINT_ORIGIN_PREFIX, sizeof CHECKPOINT_ORIGIN_PREFIX - 1u) != 0) {
        snprintf(err, errlen, "checkpoint: origin line is not \"" CHECKPOINT_ORIGIN_PREFIX "<node id>\"");
        goto out;
    }
    id_len = line_len - (sizeof CHECKPOINT_ORIGIN_PREFIX - 1u);
    if (id_len > LIAISON_MAX_ID) {
        snprintf(err, errlen, "checkpoint: node id is longer than %u bytes", LIAISON_MAX_ID);
        goto out;
    }
    memcpy(n.cp.node_id, line + sizeof CHECKPOINT_ORIGIN_PREFIX - 1u, id_len);
    n.cp.node_id[id_len] = '\0';
    if (!text_valid_id(n.cp.node_id)) {
        snprintf(err, errlen, "checkpoint: origin does not name a valid node id");
        goto out;
    }
    /* Tree size. */
    if (next_line(&cur, &line, &line_len) != 0 || parse_decimal(line, line_len, &n.cp.size) != 0) {
        snprintf(err, errlen, "checkpoint: tree size is not a decimal number without leading zeros");
        goto out;
    }
    /* Root hash. */
    if (next_line(&cur, &line, &line_len) != 0 || decode_b64_exact(line, line_len, n.cp.root, MERKLE_HASH_BYTES) != 0) {
        snprintf(err, errlen, "checkpoint: root hash is not the base64 of %u bytes", MERKLE_HASH_BYTES);
        goto out;
    }
    /* The one extension line: "time " ms. */
    if (next_line(&cur, &line, &line_len) != 0 || line_len < sizeof TIME_PREFIX - 1u ||
        memcmp(line, TIME_PREFIX, sizeof TIME_PREFIX - 1u) != 0 ||
        parse_decimal(line + sizeof TIME_PREFIX - 1u, line_len - (sizeof TIME_PREFIX - 1u), &n.cp.time_ms) != 0) {
        snprintf(err, errlen, "checkpoint: fourth line is not \"" TIME_PREFIX "<decimal ms>\"");
        goto out;
    }
    n.body_len = len - cur.left;
    /* The blank line that ends the signed text. */
    if (next_line(&cur, &line, &line_len) != 0 || line_len != 0) {
        snprintf(err, errlen, "checkpoint: expected a blank line after four lines of text");
        goto out;
    }
    /* Exactly one signature line: EM DASH, space, NODE_ID, space, base64(keyid || sig). */
    if (next_line(&cur, &line, &line_len) != 0 || cur.left != 0) {
        snprintf(err, errlen, "checkpoint: expected exactly one signature line ending the note");
        goto out;
    }
    if (line_len != sizeof CHECKPOINT_EM_DASH " " - 1u + id_len + 1u + SIG_B64_LEN ||
        memcmp(line, CHECKPOINT_EM_DASH " ", sizeof CHECKPOINT_EM_DASH " " - 1u) != 0 ||
        memcmp(line + sizeof CHECKPOINT_EM_DASH " " - 1u, n.cp.node_id, id_len) != 0 ||
        line[sizeof CHECKPOINT_EM_DASH " " - 1u + id_len] != ' ') {
        snprintf(err, errlen, "checkpoint: signature line is not \"<em dash> %s <signature>\"", n.cp.node_id);
        goto out;
    }
    if (decode_b64_exact(line + line_len - SIG_B64_LEN, SIG_B64_LEN, n.blob, SIG_BLOB_BYTES) != 0) {
        snprintf(err, errlen, "checkpoint: signature is not the base64 of %zu bytes", (size_t)SIG_BLOB_BYTES);
        goto out;
    }
    *out = n;
    rc = 0;
out:
    return rc;
}

int checkpoint_parse(const char *text, size_t len, checkpoint_t *out, char *err, size_t errlen)
{
    int rc = -1;
    note_t n;

    if (!out) {
        snprintf(err, errlen, "checkpoint: no output");
        goto out;
    }
    if (note_parse(text, len, &n, err, errlen) != 0)
        goto out;
    *out = n.cp;
    rc = 0;
out:
    return rc;
}

int checkpoint_verify(const char *text, size_t len, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                      checkpoint_t *out, char *err, size_t errlen)
{
    int rc = -1;
    uint8_t key_id[CHECKPOINT_KEY_ID_BYTES];
    note_t n;

    if (!out) {
        snprintf(err, errlen, "checkpoint: no output");
        goto out;
    }
    if (note_parse(text, len, &n, err, errlen) != 0)
        goto out;
    /* Same name, other key ID: a signature by some other key of that name (C2SP says to ignore
     * it); with only one signature line allowed, the note has no signature by sign_pk. */
    checkpoint_key_id(n.cp.node_id, sign_pk, key_id);
    if (sodium_memcmp(key_id, n.blob, CHECKPOINT_KEY_ID_BYTES) != 0) {
        snprintf(err, errlen, "checkpoint: not signed by the identity key of %s (key id differs)", n.cp.node_id);
        goto out;
    }
    if (crypto_sign_verify_detached(n.blob + CHECKPOINT_KEY_ID_BYTES, (const uint8_t *)text, n.body_len,
                                    sign_pk) != 0) {
        snprintf(err, errlen, "checkpoint: bad signature by %s", n.cp.node_id);
        goto out;
    }
    *out = n.cp;
    rc = 0;
out:
    return rc;
}

int checkpoint_proof_from_wire(const Liaison__Wire__WitnessRequest *wr,
                               uint8_t out[static MERKLE_MAX_CONSISTENCY][MERKLE_HASH_BYTES], size_t *len)
{
    *len = 0;
    if (wr->n_proof > MERKLE_MAX_CONSISTENCY)
        return -1;
    for (size_t i = 0; i < wr->n_proof; i++) {
        if (wr->proof[i].len != MERKLE_HASH_BYTES)
            return -1;
        memcpy(out[i], wr->proof[i].data, MERKLE_HASH_BYTES);
    }
    *len = wr->n_proof;
    return 0;
}
