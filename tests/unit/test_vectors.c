/* SPDX-License-Identifier: Apache-2.0 */
/* The test vectors of docs/PROTOCOL.md appendix A against the C code: read from the
 * document itself (so that the document cannot drift from the code), recomputed where the
 * construction is deterministic (keys, fingerprint, pair keys, card, receipt, audit entry,
 * checkpoint) and parsed, verified and opened where it draws random bytes (envelope).
 * tests/unit/vectors.py checks the same block against an implementation in Python. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_codec.h"
#include "card.h"
#include "checkpoint.h"
#include "keys.h"
#include "merkle.h"
#include "payload.h"
#include "payload.pb-c.h"
#include "receipt.h"
#include "seal.h"

#define MAX_VECTORS 96

static struct {
    char name[64];
    char *value;
} vec[MAX_VECTORS];
static size_t n_vec;

/* Reads the block between the markers: "name = value" lines, each continued by lines
 * that start with four spaces. */
static void load_vectors(void)
{
    FILE *f = fopen(LIAISON_PROTOCOL_MD, "r");
    assert_non_null(f);
    static char doc[1 << 18];
    size_t len = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[len] = '\0';
    char *a = strstr(doc, "<!-- test vectors: begin -->"), *b = strstr(doc, "<!-- test vectors: end -->");
    assert_non_null(a);
    assert_non_null(b);
    *b = '\0';
    char *save = NULL;
    for (char *line = strtok_r(a, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "    ", 4) == 0 && n_vec > 0) {
            char *v = vec[n_vec - 1].value;
            size_t have = strlen(v), add = strlen(line + 4);
            v = realloc(v, have + add + 1);
            assert_non_null(v);
            memcpy(v + have, line + 4, add + 1);
            vec[n_vec - 1].value = v;
            continue;
        }
        char *eq = strstr(line, " = ");
        if (!eq)
            continue;
        assert_true(n_vec < MAX_VECTORS);
        assert_true((size_t)(eq - line) < sizeof vec[0].name);
        memcpy(vec[n_vec].name, line, (size_t)(eq - line));
        vec[n_vec].name[eq - line] = '\0';
        vec[n_vec].value = strdup(eq + 3);
        assert_non_null(vec[n_vec].value);
        n_vec++;
    }
    if (n_vec < 40)
        fail_msg("only %zu vectors read from %s", n_vec, LIAISON_PROTOCOL_MD);
}

static const char *text(const char *name)
{
    for (size_t i = 0; i < n_vec; i++)
        if (strcmp(vec[i].name, name) == 0)
            return vec[i].value;
    fail_msg("PROTOCOL.md appendix A has no vector %s", name);
    return NULL;
}

/* The bytes of hex vector name in a malloc'd buffer (the caller frees it). */
static uint8_t *bytes(const char *name, size_t *len)
{
    const char *h = text(name);
    size_t n = strlen(h) / 2;
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    size_t got = 0;
    assert_int_equal(sodium_hex2bin(b, n, h, strlen(h), NULL, &got, NULL), 0);
    assert_int_equal(got, n);
    *len = n;
    return b;
}

static void equal_bytes(const char *name, const uint8_t *have, size_t have_len)
{
    size_t n;
    uint8_t *want = bytes(name, &n);
    if (n != have_len || memcmp(want, have, n) != 0) {
        char hex[4096];
        sodium_bin2hex(hex, sizeof hex, have, have_len < 2000 ? have_len : 2000);
        fail_msg("%s: the C code gives %s", name, hex);
    }
    free(want);
}

static void fixed(const char *name, uint8_t *out, size_t want)
{
    size_t n;
    uint8_t *b = bytes(name, &n);
    assert_int_equal(n, want);
    memcpy(out, b, n);
    free(b);
}

/* A node's keys from the secret files of section 2, written with the vectors' bytes. */
static keys_t *node_keys(const char *who, char dir[static 64])
{
    snprintf(dir, 64, "/tmp/liaison-vectors-XXXXXX");
    assert_non_null(mkdtemp(dir));
    static const char *const files[3][2] = {{KEYS_IDENTITY_FILE, "identity_key"},
                                            {KEYS_ENCRYPTION_FILE, "encryption_key"},
                                            {KEYS_TRANSPORT_FILE, "transport_key"}};
    for (size_t i = 0; i < 3; i++) {
        char name[64], err[200];
        uint8_t secret[LIAISON_KEY_BYTES];
        snprintf(name, sizeof name, "%s.%s", who, files[i][1]);
        fixed(name, secret, sizeof secret);
        assert_int_equal(keys_write_secret(dir, files[i][0], secret, err, sizeof err), 0);
    }
    char err[200];
    keys_t *k = keys_load(dir, err, sizeof err);
    assert_non_null(k);
    return k;
}

static void remove_dir(const char *dir)
{
    const char *files[] = {KEYS_IDENTITY_FILE, KEYS_ENCRYPTION_FILE, KEYS_TRANSPORT_FILE};
    for (size_t i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static keys_t *alice, *bob;
static char alice_dir[64], bob_dir[64];

static int setup(void **state)
{
    (void)state;
    load_vectors();
    alice = node_keys("alice", alice_dir);
    bob = node_keys("bob", bob_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keys_destroy(&alice);
    keys_destroy(&bob);
    remove_dir(alice_dir);
    remove_dir(bob_dir);
    for (size_t i = 0; i < n_vec; i++)
        free(vec[i].value);
    return 0;
}

static void test_keys_and_fingerprint(void **state)
{
    (void)state;
    equal_bytes("alice.sign_pk", alice->sign_pk, LIAISON_KEY_BYTES);
    equal_bytes("alice.enc_pk", alice->enc_pk, LIAISON_KEY_BYTES);
    equal_bytes("alice.transport_pk", alice->transport_pk, LIAISON_KEY_BYTES);
    equal_bytes("bob.sign_pk", bob->sign_pk, LIAISON_KEY_BYTES);
    equal_bytes("bob.enc_pk", bob->enc_pk, LIAISON_KEY_BYTES);
    equal_bytes("bob.transport_pk", bob->transport_pk, LIAISON_KEY_BYTES);
    char fp[KEYS_FINGERPRINT_LEN];
    keys_fingerprint(alice->sign_pk, fp);
    assert_string_equal(fp, text("alice.fingerprint"));
}

static void test_pair_keys(void **state)
{
    (void)state;
    uint8_t k[LIAISON_KEY_BYTES];
    assert_int_equal(keys_pair_key(alice, bob->enc_pk, k), 0);
    equal_bytes("pair_key.alice_bob", k, sizeof k);
    assert_int_equal(keys_pair_key(bob, alice->enc_pk, k), 0);
    equal_bytes("pair_key.alice_bob", k, sizeof k);
    assert_int_equal(keys_pair_key(alice, alice->enc_pk, k), 0);
    equal_bytes("pair_key.alice_alice", k, sizeof k);
}

static void test_card(void **state)
{
    (void)state;
    card_t c;
    char err[300];
    assert_int_equal(card_decode(text("card.alice"), &c, err, sizeof err), 0);
    assert_string_equal(c.id, "alice");
    assert_string_equal(c.name, "Dr. Alice Example");
    assert_string_equal(c.role, "psychiatrist");
    assert_string_equal(c.org, "Example Clinic");
    assert_string_equal(c.endpoint, "tcp://192.0.2.10:7701");
    assert_int_equal(c.created_ms, 1700000000000u);
    assert_memory_equal(c.sign_pk, alice->sign_pk, LIAISON_KEY_BYTES);
    /* Ed25519 is deterministic: the C encoder writes the very same card. */
    char *again = card_encode(&c, alice, err, sizeof err);
    assert_non_null(again);
    assert_string_equal(again, text("card.alice"));
    free(again);
}

static void test_envelope(void **state)
{
    (void)state;
    size_t len, plen;
    uint8_t *env = bytes("envelope", &len);
    envelope_t *e = NULL;
    int code = 0;
    char err[300];
    assert_int_equal(envelope_parse(env, len, &e, &code, err, sizeof err), 0);
    assert_int_equal(envelope_verify(e, alice->sign_pk), 0);
    assert_int_equal(envelope_verify(e, bob->sign_pk), -1);
    equal_bytes("envelope.message_id", envelope_msgid(e), LIAISON_MSGID_BYTES);
    equal_bytes("envelope.header", e->env->header.data, e->env->header.len);
    equal_bytes("envelope.body", e->env->body.data, e->env->body.len);
    equal_bytes("envelope.signature", e->env->signature.data, e->env->signature.len);
    equal_bytes("envelope.key_commitment", e->hdr->key_commitment.data, e->hdr->key_commitment.len);
    uint8_t k[LIAISON_KEY_BYTES], h[LIAISON_HASH_BYTES];
    /* Bob reads it with the pair key alice-bob, Alice with her own. */
    uint8_t *pt = NULL;
    assert_int_equal(keys_pair_key(bob, alice->enc_pk, k), 0);
    assert_int_equal(envelope_open(e, "bob", k, &pt, &plen), 0);
    equal_bytes("envelope.payload", pt, plen);
    Liaison__Payload__TextMessage *tm = liaison__payload__text_message__unpack(NULL, plen, pt);
    assert_non_null(tm);
    assert_string_equal(tm->subject, "vector");
    assert_string_equal(tm->text, "Hello, Bob.\nSee you Tuesday.");
    liaison__payload__text_message__free_unpacked(tm, NULL);
    free(pt);
    assert_int_equal(keys_pair_key(alice, alice->enc_pk, k), 0);
    assert_int_equal(envelope_open(e, "alice", k, &pt, &plen), 0);
    equal_bytes("envelope.payload", pt, plen);
    free(pt);
    envelope_hash(env, len, h);
    equal_bytes("envelope.hash", h, sizeof h);
    envelope_destroy(&e);
    free(env);
}

static void test_receipt(void **state)
{
    (void)state;
    receipt_t r = {.stored_ms = 1700000000000u + 1500u};
    fixed("envelope.message_id", r.message_id, sizeof r.message_id);
    fixed("envelope.hash", r.envelope_hash, sizeof r.envelope_hash);
    snprintf(r.recipient, sizeof r.recipient, "bob");
    snprintf(r.sender, sizeof r.sender, "alice");
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(receipt_make(bob, &r, &out, &len), 0);
    equal_bytes("receipt", out, len);
    receipt_t back;
    char err[200];
    assert_int_equal(receipt_verify(out, len, bob->sign_pk, &back, err, sizeof err), 0);
    assert_int_equal(back.stored_ms, r.stored_ms);
    free(out);
}

static void test_receipt_batch(void **state)
{
    (void)state;
    receipt_t rs[3];
    memset(rs, 0, sizeof rs);
    fixed("envelope.message_id", rs[0].message_id, sizeof rs[0].message_id);
    fixed("envelope.hash", rs[0].envelope_hash, sizeof rs[0].envelope_hash);
    for (int i = 0; i < 3; i++) {
        rs[i].stored_ms = 1700000000000u + 1500u;
        snprintf(rs[i].recipient, sizeof rs[i].recipient, "bob");
        snprintf(rs[i].sender, sizeof rs[i].sender, "alice");
        if (i > 0) {
            memset(rs[i].message_id, 0xb0 + i, sizeof rs[i].message_id);
            memset(rs[i].envelope_hash, 0xc0 + i, sizeof rs[i].envelope_hash);
        }
    }
    uint8_t *outs[3];
    size_t lens[3];
    assert_int_equal(receipt_make_batch(bob, rs, 3, outs, lens), 0);
    equal_bytes("receipt_batch.0", outs[0], lens[0]);
    equal_bytes("receipt_batch.2", outs[2], lens[2]);
    for (int i = 0; i < 3; i++) {
        receipt_t back;
        char err[200];
        assert_int_equal(receipt_verify(outs[i], lens[i], bob->sign_pk, &back, err, sizeof err), 0);
        assert_memory_equal(back.message_id, rs[i].message_id, sizeof back.message_id);
        free(outs[i]);
    }
    /* The root, from the three bodies with merkle.c. */
    uint8_t leaves[3][MERKLE_HASH_BYTES], root[MERKLE_HASH_BYTES];
    for (int i = 0; i < 3; i++) {
        Liaison__Wire__ReceiptBody rb = LIAISON__WIRE__RECEIPT_BODY__INIT;
        uint8_t buf[256];
        rb.version = 1;
        rb.message_id = (ProtobufCBinaryData){sizeof rs[i].message_id, rs[i].message_id};
        rb.envelope_hash = (ProtobufCBinaryData){sizeof rs[i].envelope_hash, rs[i].envelope_hash};
        rb.recipient = rs[i].recipient;
        rb.sender = rs[i].sender;
        rb.stored_ms = rs[i].stored_ms;
        size_t l = liaison__wire__receipt_body__pack(&rb, buf);
        if (i == 0)
            equal_bytes("receipt.body", buf, l);
        merkle_leaf_hash(buf, l, leaves[i]);
    }
    assert_int_equal(merkle_root(leaves, 3, root), 0);
    equal_bytes("receipt_batch.root", root, sizeof root);
}

static void test_audit_and_checkpoint(void **state)
{
    (void)state;
    uint8_t mid[LIAISON_MSGID_BYTES], tag[LIAISON_HASH_BYTES], pkey[LIAISON_KEY_BYTES];
    fixed("envelope.message_id", mid, sizeof mid);
    fixed("audit.patient_key", pkey, sizeof pkey);
    /* Section 10: the patient tag of patient id P-1042 under that patient key. */
    static const char dom[] = "liaison-v1/patient";
    uint8_t in[sizeof dom + 6];
    memcpy(in, dom, sizeof dom);
    memcpy(in + sizeof dom, "P-1042", 6);
    crypto_generichash(tag, sizeof tag, in, sizeof in, pkey, sizeof pkey);
    equal_bytes("audit.patient_tag", tag, sizeof tag);
    audit_record_t r = {.seq = 1, .time_ms = 1700000000000u, .actor = "user:alice", .action = "message-queued",
                        .outcome = "ok", .message_id = mid, .message_id_len = sizeof mid, .peer = "bob",
                        .content_type = 1, .patient_tag = tag, .patient_tag_len = sizeof tag, .details = ""};
    uint8_t *e = NULL;
    size_t elen = 0;
    assert_int_equal(audit_encode(&r, &e, &elen), 0);
    equal_bytes("audit.entry", e, elen);
    uint8_t zero[LIAISON_HASH_BYTES] = {0}, h[LIAISON_HASH_BYTES], leaf[MERKLE_HASH_BYTES];
    assert_int_equal(audit_chain_hash(&r, zero, h), 0);
    equal_bytes("audit.entry_hash", h, sizeof h);
    merkle_leaf_hash(e, elen, leaf);
    equal_bytes("audit.leaf", leaf, sizeof leaf);
    /* audit_decode reads the vector back to the record it encodes... */
    audit_record_t d;
    char strings[512];
    assert_int_equal(audit_decode(e, elen, &d, strings, sizeof strings), 0);
    assert_int_equal(d.seq, r.seq);
    assert_int_equal(d.time_ms, r.time_ms);
    assert_string_equal(d.actor, r.actor);
    assert_string_equal(d.action, r.action);
    assert_string_equal(d.outcome, r.outcome);
    assert_string_equal(d.peer, r.peer);
    assert_string_equal(d.details, "");
    assert_int_equal(d.content_type, 1);
    assert_int_equal(d.message_id_len, sizeof mid);
    assert_memory_equal(d.message_id, mid, sizeof mid);
    assert_int_equal(d.patient_tag_len, sizeof tag);
    assert_memory_equal(d.patient_tag, tag, sizeof tag);
    /* ...and refuses every other spelling: each shorter prefix, a byte more, a string
     * with a NUL inside, a message id of another length, too small a string buffer. */
    uint8_t *x = malloc(elen + 1);
    assert_non_null(x);
    memcpy(x, e, elen);
    for (size_t n = 0; n < elen; n++)
        assert_int_equal(audit_decode(x, n, &d, strings, sizeof strings), -1);
    x[elen] = 0;
    assert_int_equal(audit_decode(x, elen + 1, &d, strings, sizeof strings), -1);
    assert_int_equal(audit_decode(x, elen, &d, strings, 10), -1);
    x[8 + 8 + 4 + 4] = 0; /* inside "user:alice" */
    assert_int_equal(audit_decode(x, elen, &d, strings, sizeof strings), -1);
    audit_record_t odd = r;
    odd.message_id_len = 15;
    uint8_t *o = NULL;
    size_t olen = 0;
    assert_int_equal(audit_encode(&odd, &o, &olen), 0);
    assert_int_equal(audit_decode(o, olen, &d, strings, sizeof strings), -1);
    free(o);
    free(x);
    free(e);
    checkpoint_t c = {.size = 1, .time_ms = 1700000000000u + 60000u};
    snprintf(c.node_id, sizeof c.node_id, "alice");
    memcpy(c.root, leaf, sizeof leaf);
    char *note = checkpoint_sign(&c, alice);
    assert_non_null(note);
    equal_bytes("checkpoint", (const uint8_t *)note, strlen(note));
    checkpoint_t back;
    char err[300];
    assert_int_equal(checkpoint_verify(note, strlen(note), alice->sign_pk, &back, err, sizeof err), 0);
    assert_int_equal(back.size, 1);
    free(note);
}

/* A case review's id, opened by alice with the salt given (PROTOCOL.md 8.5). */
static void test_review_id(void **state)
{
    (void)state;
    uint8_t salt[PAYLOAD_REVIEW_SALT_BYTES], id[LIAISON_MSGID_BYTES];
    fixed("review.salt", salt, sizeof salt);
    payload_review_id("alice", salt, id);
    equal_bytes("review.id", id, sizeof id);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_and_fingerprint), cmocka_unit_test(test_pair_keys),
        cmocka_unit_test(test_card),                 cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_receipt),              cmocka_unit_test(test_receipt_batch),
        cmocka_unit_test(test_audit_and_checkpoint), cmocka_unit_test(test_review_id),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
