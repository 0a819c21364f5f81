/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the canonical encoding of audit entries and their chain hash. */
#include "audit_codec.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "domains.h"
#define AUDIT_CHAIN_DOMAIN LIAISON_DOMAIN_AUDIT_CHAIN

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    p = put_u32(p, (uint32_t)(v >> 32));
    return put_u32(p, (uint32_t)v);
}

static uint8_t *put_lp(uint8_t *p, const void *data, size_t len)
{
    p = put_u32(p, (uint32_t)len);
    if (len)
        memcpy(p, data, len);
    return p + len;
}

static size_t encoded_len(const audit_record_t *r)
{
    return 8 + 8 + 4 + strlen(r->actor) + 4 + strlen(r->action) + 4 + strlen(r->outcome) + 4 + r->message_id_len + 4 +
           strlen(r->peer) + 4 + 4 + r->patient_tag_len + 4 + strlen(r->details);
}

static void encode(const audit_record_t *r, uint8_t *p)
{
    p = put_u64(p, r->seq);
    p = put_u64(p, r->time_ms);
    p = put_lp(p, r->actor, strlen(r->actor));
    p = put_lp(p, r->action, strlen(r->action));
    p = put_lp(p, r->outcome, strlen(r->outcome));
    p = put_lp(p, r->message_id, r->message_id_len);
    p = put_lp(p, r->peer, strlen(r->peer));
    p = put_u32(p, r->content_type);
    p = put_lp(p, r->patient_tag, r->patient_tag_len);
    put_lp(p, r->details, strlen(r->details));
}

int audit_encode(const audit_record_t *r, uint8_t **out, size_t *out_len)
{
    size_t n = encoded_len(r);
    uint8_t *buf = malloc(n);
    if (!buf)
        return -1;
    encode(r, buf);
    *out = buf;
    *out_len = n;
    return 0;
}

const uint8_t *audit_encode_in(const audit_record_t *r, uint8_t buf[static AUDIT_ENCODE_INLINE], uint8_t **spill,
                               size_t *out_len)
{
    size_t n = encoded_len(r);
    uint8_t *p = n <= AUDIT_ENCODE_INLINE ? buf : (*spill = malloc(n));
    if (!p)
        return NULL;
    encode(r, p);
    *out_len = n;
    return p;
}

/* A reader over E: every take checks what is left first. */
typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader_t;

static int take_u32(reader_t *rd, uint32_t *v)
{
    if (rd->left < 4)
        return -1;
    *v = (uint32_t)rd->p[0] << 24 | (uint32_t)rd->p[1] << 16 | (uint32_t)rd->p[2] << 8 | rd->p[3];
    rd->p += 4;
    rd->left -= 4;
    return 0;
}

static int take_u64(reader_t *rd, uint64_t *v)
{
    uint32_t hi, lo;
    if (take_u32(rd, &hi) != 0 || take_u32(rd, &lo) != 0)
        return -1;
    *v = (uint64_t)hi << 32 | lo;
    return 0;
}

static int take_lp(reader_t *rd, const uint8_t **data, size_t *len)
{
    uint32_t n;
    if (take_u32(rd, &n) != 0 || n > rd->left)
        return -1;
    *data = rd->p;
    *len = n;
    rd->p += n;
    rd->left -= n;
    return 0;
}

/* An lp() string, copied with its NUL into *out; one with a NUL inside is refused (its
 * strlen would not be the length E gives). */
static int take_str(reader_t *rd, const char **s, char **out, size_t *cap)
{
    const uint8_t *d;
    size_t n;
    if (take_lp(rd, &d, &n) != 0 || n >= *cap || (n && memchr(d, 0, n)))
        return -1;
    if (n)
        memcpy(*out, d, n);
    (*out)[n] = 0;
    *s = *out;
    *out += n + 1;
    *cap -= n + 1;
    return 0;
}

int audit_decode(const uint8_t *e, size_t len, audit_record_t *r, char *strings, size_t cap)
{
    reader_t rd = {e, len};
    memset(r, 0, sizeof *r);
    if (take_u64(&rd, &r->seq) != 0 || take_u64(&rd, &r->time_ms) != 0 || take_str(&rd, &r->actor, &strings, &cap) ||
        take_str(&rd, &r->action, &strings, &cap) || take_str(&rd, &r->outcome, &strings, &cap) ||
        take_lp(&rd, &r->message_id, &r->message_id_len) != 0 ||
        (r->message_id_len != 0 && r->message_id_len != LIAISON_MSGID_BYTES) ||
        take_str(&rd, &r->peer, &strings, &cap) || take_u32(&rd, &r->content_type) != 0 ||
        take_lp(&rd, &r->patient_tag, &r->patient_tag_len) != 0 ||
        (r->patient_tag_len != 0 && r->patient_tag_len != LIAISON_HASH_BYTES) ||
        take_str(&rd, &r->details, &strings, &cap) || rd.left != 0)
        return -1;
    if (!r->message_id_len)
        r->message_id = NULL;
    if (!r->patient_tag_len)
        r->patient_tag = NULL;
    return 0;
}

int audit_chain_hash(const audit_record_t *r, const uint8_t prev[static LIAISON_HASH_BYTES],
                     uint8_t out[static LIAISON_HASH_BYTES])
{
    uint8_t buf[AUDIT_ENCODE_INLINE], *spill = NULL;
    size_t n = 0;
    const uint8_t *e = audit_encode_in(r, buf, &spill, &n);
    if (!e)
        return -1;
    crypto_generichash_state st;
    static const uint8_t zero = 0;
    crypto_generichash_init(&st, NULL, 0, LIAISON_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)AUDIT_CHAIN_DOMAIN, strlen(AUDIT_CHAIN_DOMAIN));
    crypto_generichash_update(&st, &zero, 1);
    crypto_generichash_update(&st, prev, LIAISON_HASH_BYTES);
    crypto_generichash_update(&st, e, n);
    crypto_generichash_final(&st, out, LIAISON_HASH_BYTES);
    free(spill);
    return 0;
}
