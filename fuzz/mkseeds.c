/* SPDX-License-Identifier: Apache-2.0 */
/* Writes the seed corpora of the fuzz targets: ./mkseeds DIR creates DIR/<target>/<name>
 * files with a few valid inputs each, signed and sealed with the fixed test keys of
 * fuzz_common.h so that they verify and open inside the targets. Envelopes carry random
 * ids and nonces, so a new run gives new bytes; the committed corpus is one such run.
 *
 * Payloads are written with a small protobuf encoder below rather than the generated
 * payload code, so this program does not depend on payload.proto's C names. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit_codec.h"
#include "card.h"
#include "checkpoint.h"
#include "control.pb-c.h"
#include "fuzz_common.h"
#include "merkle.h"
#include "receipt.h"
#include "seal.h"
#include "text.h"
#include "wire.pb-c.h"

static const char *outdir;
static keys_t *alice, *bob, *carol;

/* ---- output ---- */

static void write_seed(const char *target, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", outdir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void write_text(const char *target, const char *name, const char *text)
{
    write_seed(target, name, text, strlen(text));
}

/* ---- a minimal protobuf writer ---- */

typedef struct pb {
    uint8_t *p;
    size_t len, cap;
} pb_t;

static void pb_raw(pb_t *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        FUZZ_CHECK(b->p != NULL);
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void pb_varint(pb_t *b, uint64_t v)
{
    uint8_t c[10];
    size_t n = 0;
    do {
        c[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            c[n] |= 0x80;
        n++;
    } while (v);
    pb_raw(b, c, n);
}

static void pb_uint(pb_t *b, unsigned field, uint64_t v)
{
    pb_varint(b, (uint64_t)field << 3);
    pb_varint(b, v);
}

static void pb_bytes(pb_t *b, unsigned field, const void *data, size_t n)
{
    pb_varint(b, (uint64_t)field << 3 | 2u);
    pb_varint(b, n);
    pb_raw(b, data, n);
}

static void pb_str(pb_t *b, unsigned field, const char *s)
{
    pb_bytes(b, field, s, strlen(s));
}

/* Appends sub as a length-delimited field and frees it. */
static void pb_msg(pb_t *b, unsigned field, pb_t *sub)
{
    pb_bytes(b, field, sub->p, sub->len);
    free(sub->p);
    memset(sub, 0, sizeof *sub);
}

/* ---- payloads (liaison.payload, field numbers of payload.proto) ---- */

static const uint8_t ref_id[LIAISON_MSGID_BYTES] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
                                                     0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
/* A review open's salt (payload.proto ReviewOpen.salt, ReviewAdd.review_salt). */
static const uint8_t review_salt[16] = {0x5a, 0x17, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                                         0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e};

static void patient(pb_t *b, unsigned field)
{
    pb_t p = {0};
    pb_str(&p, 1, "MRN-1042");
    pb_str(&p, 2, "J.D.");
    pb_msg(b, field, &p);
}

static pb_t payload_text(void)
{
    pb_t b = {0};
    pb_str(&b, 1, "Lab results");
    pb_str(&b, 2, "Please call me about the plan.\nThanks, A.");
    return b;
}

static pb_t payload_note(void)
{
    pb_t b = {0}, s = {0};
    patient(&b, 1);
    pb_str(&b, 2, "2024-03-01");
    pb_uint(&b, 3, 1);
    pb_str(&b, 4, "Session focused on sleep hygiene and behavioural activation.\nMood improving.");
    pb_uint(&s, 1, 12);
    pb_msg(&b, 5, &s);
    pb_uint(&s, 1, 8);
    pb_msg(&b, 6, &s);
    pb_str(&s, 1, "PCL-5");
    pb_uint(&s, 2, 30);
    pb_uint(&s, 3, 0);
    pb_uint(&s, 4, 80);
    pb_msg(&b, 7, &s);
    pb_uint(&s, 1, 2);
    pb_str(&s, 2, "Denies suicidal ideation.");
    pb_msg(&b, 8, &s);
    pb_str(&b, 9, "Taking sertraline daily.");
    pb_str(&b, 10, "Mild nausea in the first week.");
    pb_str(&b, 11, "Walks three times a week.");
    pb_str(&b, 12, "2024-03-08");
    return b;
}

static pb_t payload_med(int sw)
{
    pb_t b = {0};
    patient(&b, 1);
    pb_str(&b, 2, "sertraline");
    pb_uint(&b, 3, sw ? 5 : 3);
    pb_str(&b, 4, "50 mg");
    pb_str(&b, 5, "100 mg");
    pb_str(&b, 6, "daily");
    pb_str(&b, 7, "daily");
    if (sw)
        pb_str(&b, 8, "fluoxetine");
    pb_str(&b, 9, "2024-03-02");
    pb_str(&b, 10, "Partial response at 50 mg after six weeks.");
    pb_str(&b, 11, "Activation, GI upset, suicidality in the first weeks.");
    pb_uint(&b, 12, sw ? 0 : 1);
    if (sw)
        pb_uint(&b, 13, 1);
    return b;
}

static pb_t payload_ack(void)
{
    pb_t b = {0};
    static const uint8_t ref_hash[32] = {0x5e, 0xed, 0x0a, 0xc4};
    pb_bytes(&b, 1, ref_id, sizeof ref_id);
    pb_str(&b, 2, "Noted, will watch for activation.");
    pb_bytes(&b, 3, ref_hash, sizeof ref_hash);
    return b;
}

static pb_t payload_review(int kind)
{
    pb_t b = {0}, k = {0}, a = {0};
    pb_bytes(&b, 1, ref_id, sizeof ref_id);
    patient(&b, 2);
    switch (kind) {
    case 3:
        pb_str(&k, 1, "Should we step up care? PHQ-9 unchanged for 8 weeks.");
        pb_str(&k, 2, "bob");
        pb_str(&k, 2, "carol");
        pb_bytes(&k, 3, review_salt, sizeof review_salt);
        break;
    case 4: pb_str(&k, 1, "I agree; consider augmentation."); break;
    case 5:
        pb_str(&k, 1, "carol");
        pb_str(&k, 2, "alice");
        pb_str(&k, 3, "Should we step up care? PHQ-9 unchanged for 8 weeks.");
        pb_bytes(&k, 6, review_salt, sizeof review_salt);
        break;
    default:
        pb_str(&k, 1, "Augment with CBT-I; review in 4 weeks.");
        pb_str(&a, 1, "bob");
        pb_str(&a, 2, "Refer to sleep clinic");
        pb_str(&a, 3, "2024-03-15");
        pb_msg(&k, 2, &a);
        kind = 6;
        break;
    }
    pb_msg(&b, (unsigned)kind, &k);
    return b;
}

typedef struct typed {
    uint32_t ct;
    const char *name;
    pb_t body;
} typed_t;

#define N_PAYLOADS 9
static typed_t payloads[N_PAYLOADS];

static void make_payloads(void)
{
    payloads[0] = (typed_t){1, "text", payload_text()};
    payloads[1] = (typed_t){2, "progress-note", payload_note()};
    payloads[2] = (typed_t){3, "medication-increase", payload_med(0)};
    payloads[3] = (typed_t){3, "medication-switch", payload_med(1)};
    payloads[4] = (typed_t){4, "ack", payload_ack()};
    payloads[5] = (typed_t){5, "review-open", payload_review(3)};
    payloads[6] = (typed_t){5, "review-reply", payload_review(4)};
    payloads[7] = (typed_t){5, "review-add", payload_review(5)};
    payloads[8] = (typed_t){5, "review-close", payload_review(6)};
}

static void seeds_payload(void)
{
    char name[64];
    for (size_t i = 0; i < N_PAYLOADS; i++) {
        pb_t b = {0};
        uint8_t ct = (uint8_t)payloads[i].ct;
        pb_raw(&b, &ct, 1);
        pb_raw(&b, payloads[i].body.p, payloads[i].body.len);
        snprintf(name, sizeof name, "%u-%s", payloads[i].ct, payloads[i].name);
        write_seed("fuzz_payload", name, b.p, b.len);
        free(b.p);
    }
    /* Types without a payload message, with a text message as body. */
    for (uint8_t ct = 0; ct <= 6; ct += 6) {
        pb_t b = {0};
        pb_raw(&b, &ct, 1);
        pb_raw(&b, payloads[0].body.p, payloads[0].body.len);
        snprintf(name, sizeof name, "%u-unknown", ct);
        write_seed("fuzz_payload", name, b.p, b.len);
        free(b.p);
    }
}

/* ---- envelopes and frames ---- */

static uint8_t *pack_frame(const Liaison__Wire__Frame *f, size_t *len)
{
    *len = liaison__wire__frame__get_packed_size(f);
    uint8_t *buf = malloc(*len ? *len : 1);
    FUZZ_CHECK(buf != NULL);
    liaison__wire__frame__pack(f, buf);
    return buf;
}

static void write_frame(const char *name, const Liaison__Wire__Frame *f)
{
    size_t len;
    uint8_t *buf = pack_frame(f, &len);
    write_seed("fuzz_envelope", name, buf, len);
    free(buf);
}

static uint8_t first_msgid[LIAISON_MSGID_BYTES];
static uint8_t first_hash[LIAISON_HASH_BYTES];

static void seeds_envelope(void)
{
    uint8_t pk_self[LIAISON_KEY_BYTES], pk_bob[LIAISON_KEY_BYTES], pk_carol[LIAISON_KEY_BYTES];
    FUZZ_CHECK(keys_pair_key(alice, alice->enc_pk, pk_self) == 0);
    FUZZ_CHECK(keys_pair_key(alice, bob->enc_pk, pk_bob) == 0);
    FUZZ_CHECK(keys_pair_key(alice, carol->enc_pk, pk_carol) == 0);
    seal_recipient_t rc[3] = {{FUZZ_ALICE, pk_self}, {FUZZ_BOB, pk_bob}, {FUZZ_CAROL, pk_carol}};
    char name[96], err[256];
    for (size_t i = 0; i < N_PAYLOADS; i++) {
        uint8_t msgid[LIAISON_MSGID_BYTES], *env = NULL;
        size_t env_len = 0;
        /* Reviews travel in their review's thread; three recipients for the review seeds. */
        bool review = payloads[i].ct == 5;
        seal_input_t in = {.sender = FUZZ_ALICE, .recipients = rc, .n_recipients = review ? 3 : 2,
                           .content_type = payloads[i].ct, .thread_id = review ? ref_id : NULL,
                           .created_ms = 1709290000000ull + i, .payload = payloads[i].body.p,
                           .payload_len = payloads[i].body.len};
        if (seal_envelope(alice, &in, msgid, &env, &env_len, err, sizeof err) != 0) {
            fprintf(stderr, "mkseeds: %s\n", err);
            exit(1);
        }
        if (i == 0) {
            memcpy(first_msgid, msgid, sizeof msgid);
            envelope_hash(env, env_len, first_hash);
        }
        snprintf(name, sizeof name, "envelope-%u-%s", payloads[i].ct, payloads[i].name);
        write_seed("fuzz_envelope", name, env, env_len);
        if (i < 2) {
            Liaison__Wire__Frame f = LIAISON__WIRE__FRAME__INIT;
            f.kind_case = LIAISON__WIRE__FRAME__KIND_ENVELOPE;
            f.envelope = (ProtobufCBinaryData){env_len, env};
            snprintf(name, sizeof name, "frame-envelope-%s", payloads[i].name);
            write_frame(name, &f);
        }
        free(env);
    }
    /* An empty payload of an unknown content type. */
    uint8_t msgid[LIAISON_MSGID_BYTES], *env = NULL;
    size_t env_len = 0;
    seal_input_t in = {.sender = FUZZ_ALICE, .recipients = rc, .n_recipients = 2, .content_type = 99,
                       .created_ms = 1709290000000ull};
    FUZZ_CHECK(seal_envelope(alice, &in, msgid, &env, &env_len, err, sizeof err) == 0);
    write_seed("fuzz_envelope", "envelope-99-empty", env, env_len);
    free(env);

    /* A receipt frame (bob's receipt for the first envelope, as alice would get it). */
    receipt_t r = {.stored_ms = 1709290001000ull};
    memcpy(r.message_id, first_msgid, sizeof r.message_id);
    memcpy(r.envelope_hash, first_hash, sizeof r.envelope_hash);
    snprintf(r.recipient, sizeof r.recipient, FUZZ_BOB);
    snprintf(r.sender, sizeof r.sender, FUZZ_ALICE);
    uint8_t *rb = NULL;
    size_t rb_len = 0;
    FUZZ_CHECK(receipt_make(bob, &r, &rb, &rb_len) == 0);
    Liaison__Wire__Frame f = LIAISON__WIRE__FRAME__INIT;
    f.kind_case = LIAISON__WIRE__FRAME__KIND_RECEIPT;
    f.receipt = (ProtobufCBinaryData){rb_len, rb};
    write_frame("frame-receipt", &f);
    free(rb);

    /* A reject frame. */
    Liaison__Wire__Reject rj = LIAISON__WIRE__REJECT__INIT;
    rj.message_id = (ProtobufCBinaryData){sizeof first_msgid, first_msgid};
    rj.code = LIAISON__WIRE__REJECT_CODE__REJECT_CLOCK;
    rj.reason = "created 900 s in the future (clock window 600 s)";
    f = (Liaison__Wire__Frame)LIAISON__WIRE__FRAME__INIT;
    f.kind_case = LIAISON__WIRE__FRAME__KIND_REJECT;
    f.reject = &rj;
    write_frame("frame-reject", &f);

    /* Witness requests: alice's checkpoint of 7 entries with the proof from 3 (the first
     * hash is the old root; see fuzz_envelope.c receive_witness), and a first offer. */
    uint8_t leaves[7][MERKLE_HASH_BYTES];
    for (unsigned i = 0; i < 7; i++) {
        uint8_t e[8] = {'e', 'n', 't', 'r', 'y', (uint8_t)('0' + i), 0, 0};
        merkle_leaf_hash(e, sizeof e, leaves[i]);
    }
    checkpoint_t cp = {.size = 7, .time_ms = 1709290002000ull};
    snprintf(cp.node_id, sizeof cp.node_id, FUZZ_ALICE);
    FUZZ_CHECK(merkle_root((const uint8_t(*)[MERKLE_HASH_BYTES])leaves, 7, cp.root) == 0);
    char *note = checkpoint_sign(&cp, alice);
    FUZZ_CHECK(note != NULL);
    uint8_t proof[1 + MERKLE_MAX_CONSISTENCY][MERKLE_HASH_BYTES];
    size_t plen = 0;
    FUZZ_CHECK(merkle_root((const uint8_t(*)[MERKLE_HASH_BYTES])leaves, 3, proof[0]) == 0);
    FUZZ_CHECK(merkle_consistency_proof((const uint8_t(*)[MERKLE_HASH_BYTES])leaves, 3, 7, proof + 1,
                                        MERKLE_MAX_CONSISTENCY, &plen) == 0);
    ProtobufCBinaryData pbd[1 + MERKLE_MAX_CONSISTENCY];
    for (size_t i = 0; i < plen + 1; i++)
        pbd[i] = (ProtobufCBinaryData){MERKLE_HASH_BYTES, proof[i]};
    Liaison__Wire__WitnessRequest wr = LIAISON__WIRE__WITNESS_REQUEST__INIT;
    wr.checkpoint = note;
    wr.old_size = 3;
    wr.n_proof = plen + 1;
    wr.proof = pbd;
    f = (Liaison__Wire__Frame)LIAISON__WIRE__FRAME__INIT;
    f.kind_case = LIAISON__WIRE__FRAME__KIND_WITNESS;
    f.witness = &wr;
    write_frame("frame-witness-3-7", &f);
    wr.old_size = 0;
    wr.n_proof = 0;
    wr.proof = NULL;
    write_frame("frame-witness-first", &f);
    free(note);

    Liaison__Wire__WitnessReply rep = LIAISON__WIRE__WITNESS_REPLY__INIT;
    rep.held_size = 7;
    rep.accepted = 1;
    f = (Liaison__Wire__Frame)LIAISON__WIRE__FRAME__INIT;
    f.kind_case = LIAISON__WIRE__FRAME__KIND_WITNESS_REPLY;
    f.witness_reply = &rep;
    write_frame("frame-witness-reply", &f);
}

/* ---- receipts ---- */

static void seeds_receipt(void)
{
    static const struct {
        const char *name, *recipient, *sender;
        uint64_t stored;
    } v[] = {{"bob-from-alice", FUZZ_BOB, FUZZ_ALICE, 1709290001000ull},
             {"bob-from-carol", FUZZ_BOB, FUZZ_CAROL, 0},
             {"long-ids", "bob.example-clinic_01", "a0123456789012345678901234567890123456789012345678901234567890xy",
              UINT64_MAX}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        receipt_t r = {.stored_ms = v[i].stored};
        memcpy(r.message_id, ref_id, sizeof r.message_id);
        memcpy(r.envelope_hash, first_hash, sizeof r.envelope_hash);
        snprintf(r.recipient, sizeof r.recipient, "%s", v[i].recipient);
        snprintf(r.sender, sizeof r.sender, "%s", v[i].sender);
        uint8_t *out = NULL;
        size_t len = 0;
        FUZZ_CHECK(receipt_make(bob, &r, &out, &len) == 0);
        write_seed("fuzz_receipt", v[i].name, out, len);
        free(out);
    }
    /* Receipts of a batch of five: the first leaf (longest proof) and the last. */
    receipt_t batch[5];
    for (size_t i = 0; i < 5; i++) {
        batch[i] = (receipt_t){.stored_ms = 1709290001000ull + i};
        memcpy(batch[i].message_id, ref_id, sizeof batch[i].message_id);
        batch[i].message_id[15] ^= (uint8_t)i;
        memcpy(batch[i].envelope_hash, first_hash, sizeof batch[i].envelope_hash);
        snprintf(batch[i].recipient, sizeof batch[i].recipient, FUZZ_BOB);
        snprintf(batch[i].sender, sizeof batch[i].sender, FUZZ_ALICE);
    }
    uint8_t *outs[5];
    size_t lens[5];
    FUZZ_CHECK(receipt_make_batch(bob, batch, 5, outs, lens) == 0);
    write_seed("fuzz_receipt", "batch-first", outs[0], lens[0]);
    write_seed("fuzz_receipt", "batch-last", outs[4], lens[4]);
    for (size_t i = 0; i < 5; i++)
        free(outs[i]);
}

/* ---- cards ---- */

static char *card_for(const keys_t *k, const char *id, const char *name, const char *role, const char *org,
                      const char *endpoint)
{
    card_t c = {.created_ms = 1709290000000ull};
    char err[256];
    snprintf(c.id, sizeof c.id, "%s", id);
    snprintf(c.name, sizeof c.name, "%s", name);
    snprintf(c.role, sizeof c.role, "%s", role);
    snprintf(c.org, sizeof c.org, "%s", org);
    snprintf(c.endpoint, sizeof c.endpoint, "%s", endpoint);
    memcpy(c.sign_pk, k->sign_pk, LIAISON_KEY_BYTES);
    memcpy(c.enc_pk, k->enc_pk, LIAISON_KEY_BYTES);
    memcpy(c.transport_pk, k->transport_pk, LIAISON_KEY_BYTES);
    char *text = card_encode(&c, k, err, sizeof err);
    if (!text) {
        fprintf(stderr, "mkseeds: %s\n", err);
        exit(1);
    }
    return text;
}

static char *card_alice;

static void seeds_card(void)
{
    card_alice = card_for(alice, FUZZ_ALICE, "Dr. Alice Martín", "psychiatrist", "Northside Clinic",
                          "tcp://alice.example:7701");
    write_text("fuzz_card", "alice", card_alice);
    char *c = card_for(bob, FUZZ_BOB, "Bob Nguyen, LCSW", "therapist", "", "ipc:///run/liaison/bob.sock");
    write_text("fuzz_card", "bob", c);
    free(c);
    c = card_for(carol, FUZZ_CAROL, "Carol \xe6\x9d\x8e", "case-manager", "County \xe2\x80\x94 Care Team",
                 "tcp://[::1]:7703");
    /* As pasted from a mail client: wrapped at 60 columns, with a trailing newline. */
    size_t n = strlen(c);
    char *wrapped = malloc(n + n / 60 + 4);
    FUZZ_CHECK(wrapped != NULL);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && i % 60 == 0)
            wrapped[j++] = '\n';
        wrapped[j++] = c[i];
    }
    wrapped[j++] = '\r';
    wrapped[j++] = '\n';
    wrapped[j] = '\0';
    write_text("fuzz_card", "carol-wrapped", wrapped);
    free(wrapped);
    free(c);
}

/* ---- audit entries (the entry of an inclusion proof) ---- */

static void write_entry(const char *name, const audit_record_t *r)
{
    uint8_t *e = NULL;
    size_t len = 0;
    if (audit_encode(r, &e, &len) != 0)
        exit(1);
    write_seed("fuzz_audit_entry", name, e, len);
    free(e);
}

static void seeds_audit_entry(void)
{
    uint8_t mid[LIAISON_MSGID_BYTES], tag[LIAISON_HASH_BYTES];
    randombytes_buf(mid, sizeof mid);
    randombytes_buf(tag, sizeof tag);
    audit_record_t r = {.seq = 1, .time_ms = 1709290000000ull, .actor = "daemon", .action = "daemon-started",
                        .outcome = "ok", .peer = "", .details = "version 0.1.0"};
    write_entry("started", &r);
    r = (audit_record_t){.seq = 42, .time_ms = 1709290001000ull, .actor = "user:alice", .action = "message-sent",
                         .outcome = "ok", .message_id = mid, .message_id_len = sizeof mid, .peer = "bob",
                         .content_type = 2, .patient_tag = tag, .patient_tag_len = sizeof tag, .details = ""};
    write_entry("sent-note", &r);
    r.action = "message-acknowledged";
    r.details = "acknowledges 00112233445566778899aabbccddeeff";
    write_entry("acknowledged", &r);
}

/* ---- checkpoints ---- */

static void seeds_checkpoint(void)
{
    checkpoint_t cp = {.size = 0, .time_ms = 1709290000000ull};
    snprintf(cp.node_id, sizeof cp.node_id, FUZZ_ALICE);
    merkle_empty_root(cp.root);
    char *note = checkpoint_sign(&cp, alice);
    write_text("fuzz_checkpoint", "alice-empty", note);
    free(note);

    uint8_t leaves[5][MERKLE_HASH_BYTES];
    for (unsigned i = 0; i < 5; i++)
        merkle_leaf_hash((const uint8_t *)"abcde" + i, 1, leaves[i]);
    cp.size = 5;
    cp.time_ms = 1709290300000ull;
    FUZZ_CHECK(merkle_root((const uint8_t(*)[MERKLE_HASH_BYTES])leaves, 5, cp.root) == 0);
    note = checkpoint_sign(&cp, alice);
    write_text("fuzz_checkpoint", "alice-5", note);
    free(note);

    cp.size = UINT64_MAX;
    cp.time_ms = UINT64_MAX;
    snprintf(cp.node_id, sizeof cp.node_id, "alice.north-clinic_1");
    note = checkpoint_sign(&cp, alice);
    write_text("fuzz_checkpoint", "alice-max", note);
    free(note);

    cp.size = 1;
    snprintf(cp.node_id, sizeof cp.node_id, FUZZ_BOB);
    note = checkpoint_sign(&cp, bob);
    write_text("fuzz_checkpoint", "bob-1", note);
    free(note);
}

/* ---- control requests ---- */

static void write_request(const char *name, Liaison__Control__Request *rq)
{
    size_t len = liaison__control__request__get_packed_size(rq);
    uint8_t *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf != NULL);
    liaison__control__request__pack(rq, buf);
    write_seed("fuzz_control", name, buf, len);
    free(buf);
}

static void seeds_control(void)
{
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    uint64_t id = 1;
    ProtobufCBinaryData mid = {sizeof ref_id, (uint8_t *)ref_id};

    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_STATUS;
    rq.status = 1;
    write_request("status", &rq);

    Liaison__Control__SendRequest sr = LIAISON__CONTROL__SEND_REQUEST__INIT;
    char *to[] = {FUZZ_BOB, FUZZ_CAROL};
    for (size_t i = 0; i < N_PAYLOADS; i += 2) {
        char name[64];
        sr.n_to = payloads[i].ct == 5 ? 0 : 2;
        sr.to = to;
        sr.content_type = payloads[i].ct;
        sr.payload = (ProtobufCBinaryData){payloads[i].body.len, payloads[i].body.p};
        sr.thread_id = payloads[i].ct == 1 ? mid : (ProtobufCBinaryData){0, NULL};
        rq.request_id = id++;
        rq.op_case = LIAISON__CONTROL__REQUEST__OP_SEND;
        rq.send = &sr;
        snprintf(name, sizeof name, "send-%s", payloads[i].name);
        write_request(name, &rq);
    }

    Liaison__Control__ListRequest lr = LIAISON__CONTROL__LIST_REQUEST__INIT;
    lr.box = LIAISON__CONTROL__LIST_REQUEST__BOX__BOTH;
    lr.limit = 10;
    lr.since_ms = 1709290000000ull;
    lr.unread_only = 1;
    lr.patient = "MRN-1042";
    lr.content_type = 3;
    lr.needs_ack = 1;
    lr.thread_id = mid;
    lr.with_payloads = 1;
    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_LIST;
    rq.list = &lr;
    write_request("list", &rq);

    Liaison__Control__ShowRequest sh = LIAISON__CONTROL__SHOW_REQUEST__INIT;
    sh.message_id = mid;
    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_SHOW;
    rq.show = &sh;
    write_request("show", &rq);

    Liaison__Control__PeerAddRequest pa = LIAISON__CONTROL__PEER_ADD_REQUEST__INIT;
    pa.card = card_alice;
    pa.replace = 1;
    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_PEER_ADD;
    rq.peer_add = &pa;
    write_request("peer-add", &rq);

    Liaison__Control__PeerRemoveRequest pr = LIAISON__CONTROL__PEER_REMOVE_REQUEST__INIT;
    pr.id = FUZZ_CAROL;
    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_PEER_REMOVE;
    rq.peer_remove = &pr;
    write_request("peer-remove", &rq);

    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_PEER_LIST;
    rq.peer_list = 1;
    write_request("peer-list", &rq);

    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_CARD;
    rq.card = 1;
    write_request("card", &rq);

    Liaison__Control__FingerprintRequest fr = LIAISON__CONTROL__FINGERPRINT_REQUEST__INIT;
    fr.id = FUZZ_BOB;
    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_FINGERPRINT;
    rq.fingerprint = &fr;
    write_request("fingerprint", &rq);

    Liaison__Control__AckRequest ar = LIAISON__CONTROL__ACK_REQUEST__INIT;
    ar.message_id = mid;
    ar.comment = "Seen; will monitor.";
    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_ACK;
    rq.ack = &ar;
    write_request("ack", &rq);

    Liaison__Control__ReviewListRequest rl = LIAISON__CONTROL__REVIEW_LIST_REQUEST__INIT;
    rl.open_only = 1;
    rl.review_id = mid;
    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_REVIEWS;
    rq.reviews = &rl;
    write_request("reviews", &rq);

    Liaison__Control__AuditQuery aq = LIAISON__CONTROL__AUDIT_QUERY__INIT;
    aq.since_ms = 1;
    aq.until_ms = 1709290000000ull;
    aq.peer = FUZZ_BOB;
    aq.patient = "MRN-1042";
    aq.action = "message-received";
    aq.limit = 50;
    aq.disclosures = 1;
    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_AUDIT_LOG;
    rq.audit_log = &aq;
    write_request("audit-log", &rq);

    Liaison__Control__AuditProveRequest ap = LIAISON__CONTROL__AUDIT_PROVE_REQUEST__INIT;
    ap.seq = 42;
    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_AUDIT_PROVE;
    rq.audit_prove = &ap;
    write_request("audit-prove", &rq);

    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_AUDIT_VERIFY;
    rq.audit_verify = 1;
    write_request("audit-verify", &rq);

    Liaison__Control__WaitRequest wr = LIAISON__CONTROL__WAIT_REQUEST__INIT;
    wr.message_id = mid;
    wr.timeout_ms = 60000;
    wr.acks = 1;
    rq.request_id = id++;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_WAIT;
    rq.wait = &wr;
    write_request("wait", &rq);
}

/* ---- configuration files ---- */

static void seeds_config(void)
{
    write_text("fuzz_config", "full",
               "# liaison node configuration; see liaison.conf(5).\n"
               "[node]\nid = alice\nname = Dr. Alice Mart\xc3\xadn\nrole = psychiatrist\norg = Northside Clinic\n"
               "listen = tcp://0.0.0.0:7701\nadvertise = tcp://alice.example:7701\n\n"
               "[delivery]\nretry_min_ms = 1000\nretry_max_ms = 60000\nclock_window_s = 600\n"
               "max_age_s = 1209600\nmax_recipients = 32\nheartbeat_ms = 5000\n\n"
               "[ack]\nroutine_deadline_s = 86400\nurgent_deadline_s = 7200\nhook = /usr/local/bin/page-on-call\n\n"
               "[audit]\ncheckpoint_entries = 256\ncheckpoint_seconds = 300\nwitness_proof_wait_s = 600\n\n"
               "[log]\nlevel = debug\n");
    write_text("fuzz_config", "minimal",
               "[node]\nid=bob\nname=Bob\nrole=therapist\nlisten=ipc:///run/liaison/bob.sock\n");
    write_text("fuzz_config", "comments",
               "; written by hand\n[node]\r\nid = carol  ; inline comment\r\nname = Carol\r\nrole = case-manager\r\n"
               "org =\r\nlisten = tcp://127.0.0.1:7703\r\n\r\n[log]\r\nlevel = warning\r\n[ack]\r\nhook =\r\n");
}

/* ---- text forms ---- */

static void seeds_text(void)
{
    write_text("fuzz_text", "b64url", "bGlhaXNvbi1jYXJkLXYx_-8");
    write_text("fuzz_text", "b64url-wrapped", "bGlh aXNv\nbi1j YXJk\r\nLXYx");
    write_text("fuzz_text", "date", "2024-02-29");
    write_text("fuzz_text", "datetime", "2024-03-01T12:34:56Z");
    write_text("fuzz_text", "datetime-short", "1999-12-31T23:59Z");
    write_text("fuzz_text", "ms", "1709290000000");
    write_text("fuzz_text", "msgid", "0123456789abcdefFEDCBA9876543210");
    write_text("fuzz_text", "utf8", "Gr\xc3\xbc\xc3\x9f" "e \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\tok\n");
    write_text("fuzz_text", "endpoint", "tcp://127.0.0.1:7701");
    write_text("fuzz_text", "role", "case-manager");
    write_text("fuzz_text", "id", "alice.north-clinic_1");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR   (writes DIR/<target>/<seed>)\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        perror(outdir);
        return 1;
    }
    alice = fuzz_keys(FUZZ_TAG_ALICE);
    bob = fuzz_keys(FUZZ_TAG_BOB);
    carol = fuzz_keys(FUZZ_TAG_CAROL);
    make_payloads();
    seeds_payload();
    seeds_envelope();
    seeds_receipt();
    seeds_card();
    seeds_checkpoint();
    seeds_audit_entry();
    seeds_control();
    seeds_config();
    seeds_text();
    for (size_t i = 0; i < N_PAYLOADS; i++)
        free(payloads[i].body.p);
    free(card_alice);
    keys_destroy(&alice);
    keys_destroy(&bob);
    keys_destroy(&carol);
    return 0;
}
