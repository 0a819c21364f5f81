/* SPDX-License-Identifier: Apache-2.0 */
/* Owns delivery receipts: signing them and parsing and verifying received receipt bytes. */
#include "receipt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "arena.h"
#include "domains.h"
#include "text.h"
#include "wire.pb-c.h"

/* Builds "liaison-v1/receipt" 0x00 || body in a malloc'd buffer, or NULL. */
static uint8_t *receipt_signed_message(const uint8_t *body, size_t body_len, size_t *len)
{
    uint8_t *m = malloc(sizeof LIAISON_DOMAIN_RECEIPT + body_len);
    if (m) {
        memcpy(m, LIAISON_DOMAIN_RECEIPT, sizeof LIAISON_DOMAIN_RECEIPT);
        memcpy(m + sizeof LIAISON_DOMAIN_RECEIPT, body, body_len);
        *len = sizeof LIAISON_DOMAIN_RECEIPT + body_len;
    }
    return m;
}

int receipt_make(const keys_t *k, const receipt_t *r, uint8_t **out, size_t *out_len)
{
    int rc = -1;
    uint8_t sig[crypto_sign_BYTES];
    uint8_t *body = NULL, *msg = NULL, *bytes = NULL;
    size_t body_len = 0, msg_len = 0, len = 0;
    Liaison__Wire__ReceiptBody rb = LIAISON__WIRE__RECEIPT_BODY__INIT;
    Liaison__Wire__Receipt rcpt = LIAISON__WIRE__RECEIPT__INIT;

    if (out)
        *out = NULL;
    if (!k || !k->sign_sk || !r || !out || !out_len || !text_valid_id(r->recipient) || !text_valid_id(r->sender))
        goto out;
    rb.version = LIAISON_PROTOCOL_VERSION;
    rb.message_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, (uint8_t *)r->message_id};
    rb.envelope_hash = (ProtobufCBinaryData){LIAISON_HASH_BYTES, (uint8_t *)r->envelope_hash};
    rb.recipient = (char *)r->recipient;
    rb.sender = (char *)r->sender;
    rb.stored_ms = r->stored_ms;
    body_len = liaison__wire__receipt_body__get_packed_size(&rb);
    body = malloc(body_len);
    if (!body)
        goto out;
    liaison__wire__receipt_body__pack(&rb, body);
    msg = receipt_signed_message(body, body_len, &msg_len);
    if (!msg || crypto_sign_detached(sig, NULL, msg, msg_len, k->sign_sk) != 0)
        goto out;
    rcpt.body = (ProtobufCBinaryData){body_len, body};
    rcpt.signature = (ProtobufCBinaryData){sizeof sig, sig};
    len = liaison__wire__receipt__get_packed_size(&rcpt);
    if (len > LIAISON_MAX_RECEIPT)
        goto out;
    bytes = malloc(len);
    if (!bytes)
        goto out;
    liaison__wire__receipt__pack(&rcpt, bytes);
    *out = bytes;
    *out_len = len;
    bytes = NULL;
    rc = 0;
out:
    free(body);
    free(msg);
    free(bytes);
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
    /* Over the body bytes as carried (shorter than the receipt); never re-serialized. */
    memcpy(msg, LIAISON_DOMAIN_RECEIPT, sizeof LIAISON_DOMAIN_RECEIPT);
    memcpy(msg + sizeof LIAISON_DOMAIN_RECEIPT, outer->body.data, outer->body.len);
    if (crypto_sign_verify_detached(outer->signature.data, msg, sizeof LIAISON_DOMAIN_RECEIPT + outer->body.len,
                                    sign_pk) != 0) {
        snprintf(err, errlen, "receipt: signature does not verify with %s's identity key", r.recipient);
        goto out;
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
