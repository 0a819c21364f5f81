/* SPDX-License-Identifier: Apache-2.0 */
/* Owns delivery receipts: signing them (alone or in batches under one Merkle root) and
 * parsing and verifying received receipt bytes. */
#include "receipt.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "arena.h"
#include "domains.h"
#include "merkle.h"
#include "text.h"
#include "wire.pb-c.h"

/* Builds "liaison-v1/receipt-batch" 0x00 || u32be(size) || root, what a batch's signature covers. */
#define BATCH_SIGNED_BYTES (sizeof LIAISON_DOMAIN_RECEIPT_BATCH + 4u + MERKLE_HASH_BYTES)
static void batch_signed_message(uint32_t size, const uint8_t root[static MERKLE_HASH_BYTES],
                                 uint8_t out[static BATCH_SIGNED_BYTES])
{
    memcpy(out, LIAISON_DOMAIN_RECEIPT_BATCH, sizeof LIAISON_DOMAIN_RECEIPT_BATCH);
    uint8_t *p = out + sizeof LIAISON_DOMAIN_RECEIPT_BATCH;
    p[0] = (uint8_t)(size >> 24);
    p[1] = (uint8_t)(size >> 16);
    p[2] = (uint8_t)(size >> 8);
    p[3] = (uint8_t)size;
    memcpy(p + 4, root, MERKLE_HASH_BYTES);
}

/* Serialized ReceiptBody of r into a malloc'd buffer, or NULL. */
static uint8_t *body_pack(const receipt_t *r, size_t *len)
{
    Liaison__Wire__ReceiptBody rb = LIAISON__WIRE__RECEIPT_BODY__INIT;
    if (!text_valid_id(r->recipient) || !text_valid_id(r->sender))
        return NULL;
    rb.version = LIAISON_PROTOCOL_VERSION;
    rb.message_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, (uint8_t *)r->message_id};
    rb.envelope_hash = (ProtobufCBinaryData){LIAISON_HASH_BYTES, (uint8_t *)r->envelope_hash};
    rb.recipient = (char *)r->recipient;
    rb.sender = (char *)r->sender;
    rb.stored_ms = r->stored_ms;
    *len = liaison__wire__receipt_body__get_packed_size(&rb);
    uint8_t *body = malloc(*len);
    if (body)
        liaison__wire__receipt_body__pack(&rb, body);
    return body;
}

/* Serialized rcpt into a malloc'd buffer of at most LIAISON_MAX_RECEIPT bytes, or NULL. */
static uint8_t *receipt_pack(const Liaison__Wire__Receipt *rcpt, size_t *len)
{
    *len = liaison__wire__receipt__get_packed_size(rcpt);
    if (*len > LIAISON_MAX_RECEIPT)
        return NULL;
    uint8_t *bytes = malloc(*len);
    if (bytes)
        liaison__wire__receipt__pack(rcpt, bytes);
    return bytes;
}

int receipt_make(const keys_t *k, const receipt_t *r, uint8_t **out, size_t *out_len)
{
    if (out)
        *out = NULL;
    if (!r || !out || !out_len)
        return -1;
    return receipt_make_batch(k, r, 1, out, out_len);
}

/* One receipt alone: the signature covers "liaison-v1/receipt" 0x00 || body. */
static uint8_t *make_alone(const keys_t *k, const uint8_t *body, size_t body_len, size_t *len)
{
    uint8_t sig[crypto_sign_BYTES];
    uint8_t *msg = malloc(sizeof LIAISON_DOMAIN_RECEIPT + body_len), *bytes = NULL;
    if (!msg)
        return NULL;
    memcpy(msg, LIAISON_DOMAIN_RECEIPT, sizeof LIAISON_DOMAIN_RECEIPT);
    memcpy(msg + sizeof LIAISON_DOMAIN_RECEIPT, body, body_len);
    if (crypto_sign_detached(sig, NULL, msg, sizeof LIAISON_DOMAIN_RECEIPT + body_len, k->sign_sk) == 0) {
        Liaison__Wire__Receipt rcpt = LIAISON__WIRE__RECEIPT__INIT;
        rcpt.body = (ProtobufCBinaryData){body_len, (uint8_t *)body};
        rcpt.signature = (ProtobufCBinaryData){sizeof sig, sig};
        bytes = receipt_pack(&rcpt, len);
    }
    free(msg);
    return bytes;
}

int receipt_make_batch(const keys_t *k, const receipt_t *rs, size_t n, uint8_t **outs, size_t *out_lens)
{
    int rc = -1;
    uint8_t **bodies = NULL;
    size_t *body_lens = NULL;
    uint8_t (*levels)[MERKLE_HASH_BYTES] = NULL;

    if (!outs || !out_lens || n < 1 || n > RECEIPT_BATCH_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        outs[i] = NULL;
    if (!k || !k->sign_sk || !rs)
        return -1;
    bodies = calloc(n, sizeof *bodies);
    body_lens = calloc(n, sizeof *body_lens);
    if (!bodies || !body_lens)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (!(bodies[i] = body_pack(&rs[i], &body_lens[i])))
            goto out;
    if (n == 1) {
        outs[0] = make_alone(k, bodies[0], body_lens[0], &out_lens[0]);
        rc = outs[0] ? 0 : -1;
        goto out;
    }
    size_t count = merkle_levels_count(n);
    levels = malloc(count * sizeof *levels);
    if (!levels)
        goto out;
    for (size_t i = 0; i < n; i++)
        merkle_leaf_hash(bodies[i], body_lens[i], levels[i]);
    merkle_levels(levels, n, levels);
    uint8_t msg[BATCH_SIGNED_BYTES], sig[crypto_sign_BYTES];
    batch_signed_message((uint32_t)n, levels[count - 1], msg);
    if (crypto_sign_detached(sig, NULL, msg, sizeof msg, k->sign_sk) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *hashes[MERKLE_MAX_INCLUSION];
        ProtobufCBinaryData path[MERKLE_MAX_INCLUSION];
        size_t plen = merkle_levels_path(levels, n, i, hashes);
        for (size_t j = 0; j < plen; j++)
            path[j] = (ProtobufCBinaryData){MERKLE_HASH_BYTES, (uint8_t *)hashes[j]};
        Liaison__Wire__Receipt rcpt = LIAISON__WIRE__RECEIPT__INIT;
        rcpt.body = (ProtobufCBinaryData){body_lens[i], bodies[i]};
        rcpt.signature = (ProtobufCBinaryData){sizeof sig, sig};
        rcpt.batch_size = (uint32_t)n;
        rcpt.leaf_index = (uint32_t)i;
        rcpt.n_path = plen;
        rcpt.path = path;
        if (!(outs[i] = receipt_pack(&rcpt, &out_lens[i])))
            goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        for (size_t i = 0; i < n; i++) {
            free(outs[i]);
            outs[i] = NULL;
        }
    if (bodies)
        for (size_t i = 0; i < n; i++)
            free(bodies[i]);
    free(bodies);
    free(body_lens);
    free(levels);
    return rc;
}

/* Unpacks and checks bytes; on success *outer and *inner are the unpacked Receipt and
 * ReceiptBody (caller frees both) and *r is filled. */
static int receipt_unpack(ProtobufCAllocator *al, const uint8_t *bytes, size_t len, Liaison__Wire__Receipt **outer,
                          Liaison__Wire__ReceiptBody **inner, receipt_t *r, char *err, size_t errlen)
{
    int rc = -1;
    Liaison__Wire__Receipt *rc_msg = NULL;
    Liaison__Wire__ReceiptBody *rb = NULL;
    uint8_t again[LIAISON_MAX_RECEIPT];

    *outer = NULL;
    *inner = NULL;
    if (!bytes || len < 1 || len > LIAISON_MAX_RECEIPT) {
        snprintf(err, errlen, "receipt: %zu bytes, must be 1 to %u", bytes ? len : 0, LIAISON_MAX_RECEIPT);
        goto out;
    }
    rc_msg = liaison__wire__receipt__unpack(al, len, bytes);
    if (!rc_msg) {
        snprintf(err, errlen, "receipt: cannot be decoded");
        goto out;
    }
    /* One byte form per receipt, as for envelopes: receipts are stored and compared as bytes. */
    if (rc_msg->base.n_unknown_fields != 0 || liaison__wire__receipt__get_packed_size(rc_msg) != len) {
        snprintf(err, errlen, "receipt: not in canonical form");
        goto out;
    }
    liaison__wire__receipt__pack(rc_msg, again);
    if (memcmp(again, bytes, len) != 0) {
        snprintf(err, errlen, "receipt: not in canonical form");
        goto out;
    }
    if (rc_msg->signature.len != crypto_sign_BYTES) {
        snprintf(err, errlen, "receipt: signature is %zu bytes, expected %u", rc_msg->signature.len, crypto_sign_BYTES);
        goto out;
    }
    if (rc_msg->batch_size == 0 && (rc_msg->leaf_index != 0 || rc_msg->n_path != 0)) {
        snprintf(err, errlen, "receipt: a receipt alone (batch size 0) carries no leaf index or proof");
        goto out;
    }
    if (rc_msg->batch_size == 1 || rc_msg->batch_size > RECEIPT_BATCH_MAX) {
        snprintf(err, errlen, "receipt: batch of %" PRIu32 ", must be 2 to %u (or 0 for a receipt alone)",
                 rc_msg->batch_size, RECEIPT_BATCH_MAX);
        goto out;
    }
    if (rc_msg->batch_size != 0 && rc_msg->leaf_index >= rc_msg->batch_size) {
        snprintf(err, errlen, "receipt: leaf %" PRIu32 " of a batch of %" PRIu32, rc_msg->leaf_index,
                 rc_msg->batch_size);
        goto out;
    }
    for (size_t i = 0; i < rc_msg->n_path; i++)
        if (rc_msg->path[i].len != MERKLE_HASH_BYTES) {
            snprintf(err, errlen, "receipt: proof hash %zu is %zu bytes, expected %u", i, rc_msg->path[i].len,
                     MERKLE_HASH_BYTES);
            goto out;
        }
    rb = liaison__wire__receipt_body__unpack(al, rc_msg->body.len, rc_msg->body.data);
    if (!rb) {
        snprintf(err, errlen, "receipt: body cannot be decoded");
        goto out;
    }
    if (rb->version != LIAISON_PROTOCOL_VERSION) {
        snprintf(err, errlen, "receipt: version %u, this node speaks version %u", rb->version, LIAISON_PROTOCOL_VERSION);
        goto out;
    }
    /* Catches unknown fields, repeated singular fields and strings with embedded NULs. */
    if (rb->base.n_unknown_fields != 0 || liaison__wire__receipt_body__get_packed_size(rb) != rc_msg->body.len) {
        snprintf(err, errlen, "receipt: body is not in canonical form");
        goto out;
    }
    if (rb->message_id.len != LIAISON_MSGID_BYTES) {
        snprintf(err, errlen, "receipt: message id is %zu bytes, expected %u", rb->message_id.len, LIAISON_MSGID_BYTES);
        goto out;
    }
    if (rb->envelope_hash.len != LIAISON_HASH_BYTES) {
        snprintf(err, errlen, "receipt: envelope hash is %zu bytes, expected %u", rb->envelope_hash.len,
                 LIAISON_HASH_BYTES);
        goto out;
    }
    if (!text_valid_id(rb->recipient)) {
        snprintf(err, errlen, "receipt: recipient is not a valid node id");
        goto out;
    }
    if (!text_valid_id(rb->sender)) {
        snprintf(err, errlen, "receipt: sender is not a valid node id");
        goto out;
    }
    memset(r, 0, sizeof *r);
    memcpy(r->message_id, rb->message_id.data, LIAISON_MSGID_BYTES);
    memcpy(r->envelope_hash, rb->envelope_hash.data, LIAISON_HASH_BYTES);
    snprintf(r->recipient, sizeof r->recipient, "%s", rb->recipient);
    snprintf(r->sender, sizeof r->sender, "%s", rb->sender);
    r->stored_ms = rb->stored_ms;
    *outer = rc_msg;
    *inner = rb;
    rc_msg = NULL;
    rb = NULL;
    rc = 0;
out:
    if (rb)
        liaison__wire__receipt_body__free_unpacked(rb, al);
    if (rc_msg)
        liaison__wire__receipt__free_unpacked(rc_msg, al);
    return rc;
}

/* Room to unpack any receipt (at most LIAISON_MAX_RECEIPT bytes) without malloc. */
#define RECEIPT_ARENA_BYTES (4u * LIAISON_MAX_RECEIPT)

int receipt_parse(const uint8_t *bytes, size_t len, receipt_t *out, char *err, size_t errlen)
{
    int rc = -1;
    Liaison__Wire__Receipt *outer = NULL;
    Liaison__Wire__ReceiptBody *inner = NULL;
    receipt_t r;
    _Alignas(16) uint8_t buf[RECEIPT_ARENA_BYTES];
    pb_arena_t arena;
    pb_arena_init(&arena, buf, sizeof buf);

    if (!out) {
        snprintf(err, errlen, "receipt: no output");
        goto out;
    }
    if (receipt_unpack(&arena.alloc, bytes, len, &outer, &inner, &r, err, errlen) != 0)
        goto out;
    *out = r;
    rc = 0;
out:
    if (inner)
        liaison__wire__receipt_body__free_unpacked(inner, &arena.alloc);
    if (outer)
        liaison__wire__receipt__free_unpacked(outer, &arena.alloc);
    pb_arena_release(&arena);
    return rc;
}

int receipt_verify(const uint8_t *bytes, size_t len, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                   receipt_t *out, char *err, size_t errlen)
{
    return receipt_verify_cached(bytes, len, sign_pk, NULL, out, err, errlen);
}

/* The signature of a receipt of a batch: the root its proof leads to, signed (or found
 * in the cache). */
static int verify_batch(const Liaison__Wire__Receipt *outer, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                        receipt_cache_t *cache, const char *recipient, char *err, size_t errlen)
{
    uint8_t leaf[MERKLE_HASH_BYTES], root[MERKLE_HASH_BYTES], path[MERKLE_MAX_INCLUSION][MERKLE_HASH_BYTES];
    if (outer->n_path > MERKLE_MAX_INCLUSION) {
        snprintf(err, errlen, "receipt: proof of %zu hashes", outer->n_path);
        return -1;
    }
    for (size_t i = 0; i < outer->n_path; i++)
        memcpy(path[i], outer->path[i].data, MERKLE_HASH_BYTES);
    merkle_leaf_hash(outer->body.data, outer->body.len, leaf);
    if (merkle_inclusion_root(leaf, outer->leaf_index, outer->batch_size, (const uint8_t(*)[MERKLE_HASH_BYTES])path,
                              outer->n_path, root) != 0) {
        snprintf(err, errlen, "receipt: proof of %zu hashes does not fit leaf %" PRIu32 " of a batch of %" PRIu32,
                 outer->n_path, outer->leaf_index, outer->batch_size);
        return -1;
    }
    /* Only a statement already verified, byte for byte, is taken from the cache: the same
     * key, batch size, root and signature. */
    if (cache && cache->valid && cache->batch_size == outer->batch_size &&
        sodium_memcmp(cache->sign_pk, sign_pk, LIAISON_KEY_BYTES) == 0 &&
        sodium_memcmp(cache->root, root, MERKLE_HASH_BYTES) == 0 &&
        sodium_memcmp(cache->signature, outer->signature.data, crypto_sign_BYTES) == 0)
        return 0;
    uint8_t msg[BATCH_SIGNED_BYTES];
    batch_signed_message(outer->batch_size, root, msg);
    if (crypto_sign_verify_detached(outer->signature.data, msg, sizeof msg, sign_pk) != 0) {
        snprintf(err, errlen, "receipt: batch signature does not verify with %s's identity key", recipient);
        return -1;
    }
    if (cache) {
        cache->valid = true;
        cache->batch_size = outer->batch_size;
        memcpy(cache->sign_pk, sign_pk, LIAISON_KEY_BYTES);
        memcpy(cache->root, root, MERKLE_HASH_BYTES);
        memcpy(cache->signature, outer->signature.data, crypto_sign_BYTES);
    }
    return 0;
}

int receipt_verify_cached(const uint8_t *bytes, size_t len, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                          receipt_cache_t *cache, receipt_t *out, char *err, size_t errlen)
{
    int rc = -1;
    Liaison__Wire__Receipt *outer = NULL;
    Liaison__Wire__ReceiptBody *inner = NULL;
    receipt_t r;
    _Alignas(16) uint8_t buf[RECEIPT_ARENA_BYTES];
    uint8_t msg[sizeof LIAISON_DOMAIN_RECEIPT + LIAISON_MAX_RECEIPT];
    pb_arena_t arena;
    pb_arena_init(&arena, buf, sizeof buf);

    if (!out) {
        snprintf(err, errlen, "receipt: no output");
        goto out;
    }
    if (receipt_unpack(&arena.alloc, bytes, len, &outer, &inner, &r, err, errlen) != 0)
        goto out;
    if (outer->batch_size != 0) {
        if (verify_batch(outer, sign_pk, cache, r.recipient, err, errlen) != 0)
            goto out;
    } else {
        /* Over the body bytes as carried (shorter than the receipt); never re-serialized. */
        memcpy(msg, LIAISON_DOMAIN_RECEIPT, sizeof LIAISON_DOMAIN_RECEIPT);
        memcpy(msg + sizeof LIAISON_DOMAIN_RECEIPT, outer->body.data, outer->body.len);
        if (crypto_sign_verify_detached(outer->signature.data, msg, sizeof LIAISON_DOMAIN_RECEIPT + outer->body.len,
                                        sign_pk) != 0) {
            snprintf(err, errlen, "receipt: signature does not verify with %s's identity key", r.recipient);
            goto out;
        }
    }
    *out = r;
    rc = 0;
out:
    if (inner)
        liaison__wire__receipt_body__free_unpacked(inner, &arena.alloc);
    if (outer)
        liaison__wire__receipt__free_unpacked(outer, &arena.alloc);
    pb_arena_release(&arena);
    return rc;
}
