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

int audit_encode(const audit_record_t *r, uint8_t **out, size_t *out_len)
{
    size_t la = strlen(r->actor), lb = strlen(r->action), lo = strlen(r->outcome), lpeer = strlen(r->peer),
           ld = strlen(r->details);
    size_t n = 8 + 8 + 4 + la + 4 + lb + 4 + lo + 4 + r->message_id_len + 4 + lpeer + 4 + 4 + r->patient_tag_len + 4 +
               ld;
    uint8_t *buf = malloc(n);
    if (!buf)
        return -1;
    uint8_t *p = buf;
    p = put_u64(p, r->seq);
    p = put_u64(p, r->time_ms);
    p = put_lp(p, r->actor, la);
    p = put_lp(p, r->action, lb);
    p = put_lp(p, r->outcome, lo);
    p = put_lp(p, r->message_id, r->message_id_len);
    p = put_lp(p, r->peer, lpeer);
    p = put_u32(p, r->content_type);
    p = put_lp(p, r->patient_tag, r->patient_tag_len);
    put_lp(p, r->details, ld);
    *out = buf;
    *out_len = n;
    return 0;
}

int audit_chain_hash(const audit_record_t *r, const uint8_t prev[static LIAISON_HASH_BYTES],
                     uint8_t out[static LIAISON_HASH_BYTES])
{
    uint8_t *e = NULL;
    size_t n = 0;
    if (audit_encode(r, &e, &n) != 0)
        return -1;
    crypto_generichash_state st;
    static const uint8_t zero = 0;
    crypto_generichash_init(&st, NULL, 0, LIAISON_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)AUDIT_CHAIN_DOMAIN, strlen(AUDIT_CHAIN_DOMAIN));
    crypto_generichash_update(&st, &zero, 1);
    crypto_generichash_update(&st, prev, LIAISON_HASH_BYTES);
    crypto_generichash_update(&st, e, n);
    crypto_generichash_final(&st, out, LIAISON_HASH_BYTES);
    free(e);
    return 0;
}
