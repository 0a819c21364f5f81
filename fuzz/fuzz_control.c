/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the local control API's request decoding (control.c serve/dispatch, auditor.c):
 * the size limit, liaison.control.Request unpacking with protobuf-c, a walk over every
 * field present (through the descriptors, so new fields are covered without changes
 * here), and the checks each operation makes before it touches the store: id and length
 * checks, payload validation for send, card decoding for peer add. The operations'
 * validation is inline in control.c (static, tied to the node), so it is mirrored here. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "card.h"
#include "control.pb-c.h"
#include "fuzz_common.h"
#include "payload.h"
#include "text.h"
#include "wire.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DEPTH 16

static volatile uint8_t sink;
static bool unknown_seen; /* reset for every input */

/* Touches the first and last byte of every string and bytes field, so ASan catches a length
 * that does not match the allocation, and runs the UTF-8 check the daemon applies to text. */
static void walk(const ProtobufCMessage *m, int depth)
{
    FUZZ_CHECK(depth < MAX_DEPTH);
    const ProtobufCMessageDescriptor *d = m->descriptor;
    FUZZ_CHECK(d != NULL && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *member = base + f->offset;
        size_t n = 1;
        bool repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
        if (repeated) {
            n = *(const size_t *)(const void *)(base + f->quantifier_offset);
            member = *(const char *const *)(const void *)member;
            FUZZ_CHECK(n == 0 || member != NULL);
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(const void *)(base + f->quantifier_offset) != f->id)
                continue;
        }
        for (size_t j = 0; j < n; j++) {
            switch (f->type) {
            case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(const char *const *)(const void *)(member + j * (repeated ? sizeof(char *) : 0));
                FUZZ_CHECK(s != NULL);
                size_t len = strlen(s);
                if (len)
                    sink ^= (uint8_t)(s[0] ^ s[len - 1]);
                (void)text_valid_utf8(s, LIAISON_MAX_CONTROL, true);
                break;
            }
            case PROTOBUF_C_TYPE_BYTES: {
                const ProtobufCBinaryData *b = (const ProtobufCBinaryData *)(const void *)(
                    member + j * (repeated ? sizeof(ProtobufCBinaryData) : 0));
                FUZZ_CHECK(b->len == 0 || b->data != NULL);
                if (b->len)
                    sink ^= (uint8_t)(b->data[0] ^ b->data[b->len - 1]);
                break;
            }
            case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub =
                    *(const ProtobufCMessage *const *)(const void *)(member + j * (repeated ? sizeof(void *) : 0));
                if (sub)
                    walk(sub, depth + 1);
                else
                    FUZZ_CHECK(!repeated);
                break;
            }
            default: break; /* scalars and enums: any value is representable */
            }
        }
    }
    if (m->n_unknown_fields)
        unknown_seen = true;
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        if (u->len)
            sink ^= (uint8_t)(u->data[0] ^ u->data[u->len - 1]);
    }
}

static bool valid_msgid(const ProtobufCBinaryData *b)
{
    return b->len == LIAISON_MSGID_BYTES;
}

/* control.c op_send and send_payload, up to sealing. */
static void op_send(const Liaison__Control__SendRequest *s)
{
    char err[256];
    payload_info_t info;
    if (s->thread_id.len != 0 && s->thread_id.len != LIAISON_MSGID_BYTES)
        return;
    if (s->content_type == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK || !payload_known_type(s->content_type))
        return;
    if (payload_validate(s->content_type, s->payload.data, s->payload.len, &info, err, sizeof err) != 0)
        return;
    if (s->n_to + 1 > LIAISON_MAX_RECIPIENTS)
        return;
    for (size_t i = 0; i < s->n_to; i++)
        if (!text_valid_id(s->to[i]))
            return;
}

/* control.c op_peer_add, up to the directory. */
static void op_peer_add(const Liaison__Control__PeerAddRequest *pr)
{
    char err[256];
    card_t card;
    if (!pr->card || strlen(pr->card) > LIAISON_MAX_CARD_TEXT)
        return;
    if (card_decode(pr->card, &card, err, sizeof err) == 0)
        FUZZ_CHECK(text_valid_id(card.id));
}

static void dispatch(const Liaison__Control__Request *rq)
{
    switch (rq->op_case) {
    case LIAISON__CONTROL__REQUEST__OP_SEND:
        FUZZ_CHECK(rq->send != NULL);
        op_send(rq->send);
        break;
    case LIAISON__CONTROL__REQUEST__OP_LIST: {
        const Liaison__Control__ListRequest *lr = rq->list;
        FUZZ_CHECK(lr != NULL);
        (void)(lr->thread_id.len == LIAISON_MSGID_BYTES);
        (void)(lr->patient && lr->patient[0] && text_valid_utf8(lr->patient, 64, false));
        break;
    }
    case LIAISON__CONTROL__REQUEST__OP_SHOW:
        FUZZ_CHECK(rq->show != NULL);
        (void)valid_msgid(&rq->show->message_id);
        break;
    case LIAISON__CONTROL__REQUEST__OP_PEER_ADD:
        FUZZ_CHECK(rq->peer_add != NULL);
        op_peer_add(rq->peer_add);
        break;
    case LIAISON__CONTROL__REQUEST__OP_PEER_REMOVE:
        FUZZ_CHECK(rq->peer_remove != NULL);
        (void)text_valid_id(rq->peer_remove->id ? rq->peer_remove->id : "");
        break;
    case LIAISON__CONTROL__REQUEST__OP_FINGERPRINT:
        FUZZ_CHECK(rq->fingerprint != NULL);
        (void)text_valid_id(rq->fingerprint->id ? rq->fingerprint->id : "");
        break;
    case LIAISON__CONTROL__REQUEST__OP_ACK:
        FUZZ_CHECK(rq->ack != NULL);
        if (valid_msgid(&rq->ack->message_id))
            (void)text_valid_utf8(rq->ack->comment ? rq->ack->comment : "", 2048, true);
        break;
    case LIAISON__CONTROL__REQUEST__OP_WAIT:
        FUZZ_CHECK(rq->wait != NULL);
        (void)(valid_msgid(&rq->wait->message_id) && rq->wait->timeout_ms <= 86400000u);
        break;
    case LIAISON__CONTROL__REQUEST__OP_REVIEWS:
        FUZZ_CHECK(rq->reviews != NULL);
        (void)valid_msgid(&rq->reviews->review_id);
        break;
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_LOG: {
        const Liaison__Control__AuditQuery *q = rq->audit_log;
        FUZZ_CHECK(q != NULL);
        (void)(q->peer && q->peer[0] && text_valid_id(q->peer));
        (void)(q->action && q->action[0] && text_valid_utf8(q->action, 64, false));
        break;
    }
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_PROVE:
        FUZZ_CHECK(rq->audit_prove != NULL);
        (void)(rq->audit_prove->seq == 0);
        break;
    default: break; /* status, peer list, card, audit verify: no fields; unknown: refused */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > LIAISON_MAX_CONTROL)
        return 0; /* refused before decoding, and ZMQ_MAXMSGSIZE drops it anyway */
    Liaison__Control__Request *rq = liaison__control__request__unpack(NULL, size, data);
    if (!rq)
        return 0;
    unknown_seen = false;
    walk(&rq->base, 0);
    dispatch(rq);
    /* Whatever protobuf-c decoded, it can encode again and decode to the same size. Not
     * with unknown fields: protobuf-c 1.4 accepts field number 0 spelled as an overlong
     * varint (80 00), keeps it as an unknown field and writes it back as 00, which its own
     * decoder refuses. Harmless here (the daemon never re-encodes a request, and every
     * signed structure refuses unknown fields), so only known fields are checked. */
    if (unknown_seen) {
        liaison__control__request__free_unpacked(rq, NULL);
        return 0;
    }
    size_t len = liaison__control__request__get_packed_size(rq);
    uint8_t *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(liaison__control__request__pack(rq, buf) == len);
    Liaison__Control__Request *again = liaison__control__request__unpack(NULL, len, buf);
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(again->op_case == rq->op_case && again->request_id == rq->request_id);
    FUZZ_CHECK(liaison__control__request__get_packed_size(again) == len);
    liaison__control__request__free_unpacked(again, NULL);
    free(buf);
    liaison__control__request__free_unpacked(rq, NULL);
    return 0;
}
