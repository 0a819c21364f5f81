/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of receipt.c: round trip, every single-byte change, and each parse rule. */
#include "unit.h"

#include "receipt.h"
#include "wire.pb-c.h"

static receipt_t sample(void)
{
    receipt_t r;
    memset(&r, 0, sizeof r);
    randombytes_buf(r.message_id, sizeof r.message_id);
    randombytes_buf(r.envelope_hash, sizeof r.envelope_hash);
    snprintf(r.recipient, sizeof r.recipient, "bob");
    snprintf(r.sender, sizeof r.sender, "alice");
    r.stored_ms = 1709210096123ull;
    return r;
}

static void assert_receipts_equal(const receipt_t *a, const receipt_t *b)
{
    assert_memory_equal(a->message_id, b->message_id, 16);
    assert_memory_equal(a->envelope_hash, b->envelope_hash, 32);
    assert_string_equal(a->recipient, b->recipient);
    assert_string_equal(a->sender, b->sender);
    assert_int_equal(a->stored_ms, b->stored_ms);
}

static void test_roundtrip(void **state)
{
    (void)state;
    keys_t *bob = keys_generate(), *alice = keys_generate();
    receipt_t r = sample(), p, v;
    uint8_t *bytes = NULL;
    size_t len = 0;
    char err[256] = "";

    assert_int_equal(receipt_make(bob, &r, &bytes, &len), 0);
    assert_non_null(bytes);
    assert_true(len <= LIAISON_MAX_RECEIPT);
    assert_int_equal(receipt_parse(bytes, len, &p, err, sizeof err), 0);
    assert_receipts_equal(&r, &p);
    if (receipt_verify(bytes, len, bob->sign_pk, &v, err, sizeof err) != 0)
        fail_msg("receipt_verify: %s", err);
    assert_receipts_equal(&r, &v);

    /* Signed by Bob: Alice's key, or any other, does not verify it. */
    assert_int_equal(receipt_verify(bytes, len, alice->sign_pk, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "signature"));

    /* Independent check of the signed bytes: "liaison-v1/receipt" 0x00 || body. */
    Liaison__Wire__Receipt *rc = liaison__wire__receipt__unpack(NULL, len, bytes);
    assert_non_null(rc);
    uint8_t *m = malloc(sizeof "liaison-v1/receipt" + rc->body.len);
    memcpy(m, "liaison-v1/receipt", sizeof "liaison-v1/receipt");
    memcpy(m + sizeof "liaison-v1/receipt", rc->body.data, rc->body.len);
    assert_int_equal(crypto_sign_verify_detached(rc->signature.data, m, sizeof "liaison-v1/receipt" + rc->body.len,
                                                 bob->sign_pk), 0);
    free(m);
    liaison__wire__receipt__free_unpacked(rc, NULL);

    /* Largest ids still fit the limit. */
    memset(r.recipient, 'r', LIAISON_MAX_ID);
    memset(r.sender, 's', LIAISON_MAX_ID);
    r.stored_ms = UINT64_MAX;
    free(bytes);
    assert_int_equal(receipt_make(bob, &r, &bytes, &len), 0);
    assert_true(len <= LIAISON_MAX_RECEIPT);
    assert_int_equal(receipt_verify(bytes, len, bob->sign_pk, &v, err, sizeof err), 0);
    assert_receipts_equal(&r, &v);
    free(bytes);

    /* Bad input to make. */
    r = sample();
    snprintf(r.sender, sizeof r.sender, "Alice");
    bytes = (uint8_t *)1;
    assert_int_equal(receipt_make(bob, &r, &bytes, &len), -1);
    assert_null(bytes);
    keys_destroy(&bob);
    keys_destroy(&alice);
}

static void test_every_single_byte_change(void **state)
{
    (void)state;
    keys_t *bob = keys_generate();
    receipt_t r = sample(), v;
    uint8_t *bytes = NULL;
    size_t len = 0, tried = 0;
    char err[256];
    assert_int_equal(receipt_make(bob, &r, &bytes, &len), 0);
    uint8_t *m = malloc(len);
    for (size_t pos = 0; pos < len; pos++) {
        for (int mask = 0; mask < 9; mask++) {
            memcpy(m, bytes, len);
            m[pos] ^= mask < 8 ? (uint8_t)(1u << mask) : 0xff;
            if (receipt_verify(m, len, bob->sign_pk, &v, err, sizeof err) == 0)
                fail_msg("byte %zu ^ mask %d: changed receipt verifies", pos, mask);
            tried++;
        }
    }
    assert_int_equal(tried, 9 * len);
    /* Truncated and extended. */
    for (size_t l = 0; l < len; l++)
        assert_int_equal(receipt_verify(bytes, l, bob->sign_pk, &v, err, sizeof err), -1);
    uint8_t *ext = malloc(len + 2);
    memcpy(ext, bytes, len);
    ext[len] = 0x78;
    ext[len + 1] = 0x01;
    assert_int_equal(receipt_verify(ext, len + 2, bob->sign_pk, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "canonical"));
    /* The same two fields in the other order: same content, other bytes. */
    Liaison__Wire__Receipt *rc = liaison__wire__receipt__unpack(NULL, len, bytes);
    assert_non_null(rc);
    Liaison__Wire__Receipt only_body = LIAISON__WIRE__RECEIPT__INIT, only_sig = LIAISON__WIRE__RECEIPT__INIT;
    only_body.body = rc->body;
    only_sig.signature = rc->signature;
    uint8_t *reord = malloc(len);
    size_t l1 = liaison__wire__receipt__pack(&only_sig, reord);
    size_t l2 = liaison__wire__receipt__pack(&only_body, reord + l1);
    assert_int_equal(l1 + l2, len);
    assert_int_equal(receipt_verify(reord, len, bob->sign_pk, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "canonical"));
    free(reord);
    liaison__wire__receipt__free_unpacked(rc, NULL);
    assert_int_equal(receipt_verify(bytes, len, bob->sign_pk, &v, err, sizeof err), 0);   /* control */
    free(ext);
    free(m);
    free(bytes);
    keys_destroy(&bob);
}

typedef struct rspec {
    uint32_t version;
    size_t msgid_len, hash_len, sig_len;
    const char *recipient, *sender;
} rspec_t;

static uint8_t *build_receipt(const keys_t *k, const rspec_t *s, size_t *len)
{
    uint8_t mid[32] = {1}, hash[40] = {2}, sig[80] = {0};
    Liaison__Wire__ReceiptBody rb = LIAISON__WIRE__RECEIPT_BODY__INIT;
    rb.version = s->version;
    rb.message_id = (ProtobufCBinaryData){s->msgid_len, mid};
    rb.envelope_hash = (ProtobufCBinaryData){s->hash_len, hash};
    rb.recipient = (char *)s->recipient;
    rb.sender = (char *)s->sender;
    rb.stored_ms = 5;
    size_t bl = liaison__wire__receipt_body__get_packed_size(&rb);
    uint8_t *m = malloc(sizeof "liaison-v1/receipt" + bl);
    memcpy(m, "liaison-v1/receipt", sizeof "liaison-v1/receipt");
    liaison__wire__receipt_body__pack(&rb, m + sizeof "liaison-v1/receipt");
    assert_int_equal(crypto_sign_detached(sig, NULL, m, sizeof "liaison-v1/receipt" + bl, k->sign_sk), 0);
    Liaison__Wire__Receipt rc = LIAISON__WIRE__RECEIPT__INIT;
    rc.body = (ProtobufCBinaryData){bl, m + sizeof "liaison-v1/receipt"};
    rc.signature = (ProtobufCBinaryData){s->sig_len, sig};
    *len = liaison__wire__receipt__get_packed_size(&rc);
    uint8_t *out = malloc(*len);
    liaison__wire__receipt__pack(&rc, out);
    free(m);
    return out;
}

static void test_parse_rules(void **state)
{
    (void)state;
    keys_t *bob = keys_generate();
    const rspec_t good = {1, 16, 32, 64, "bob", "alice"};
    struct { rspec_t s; const char *needle; } c[] = {
        {good, NULL},
        {good, "version 2"}, {good, "version 0"},
        {good, "message id is 15 bytes"}, {good, "message id is 17 bytes"},
        {good, "envelope hash is 31 bytes"}, {good, "envelope hash is 0 bytes"},
        {good, "signature is 63 bytes"}, {good, "signature is 0 bytes"},
        {good, "recipient is not a valid node id"}, {good, "sender is not a valid node id"},
        {good, "sender is not a valid node id"},
    };
    size_t i = 1;
    c[i++].s.version = 2;
    c[i++].s.version = 0;
    c[i++].s.msgid_len = 15;
    c[i++].s.msgid_len = 17;
    c[i++].s.hash_len = 31;
    c[i++].s.hash_len = 0;
    c[i++].s.sig_len = 63;
    c[i++].s.sig_len = 0;
    c[i++].s.recipient = "Bob";
    c[i++].s.sender = "";
    c[i++].s.sender = "a b";
    assert_int_equal(i, sizeof c / sizeof c[0]);
    for (i = 0; i < sizeof c / sizeof c[0]; i++) {
        size_t len = 0;
        receipt_t r;
        char err[256] = "";
        uint8_t *bytes = build_receipt(bob, &c[i].s, &len);
        int rc = receipt_parse(bytes, len, &r, err, sizeof err);
        if (!c[i].needle) {
            if (rc != 0 || receipt_verify(bytes, len, bob->sign_pk, &r, err, sizeof err) != 0)
                fail_msg("hand-built receipt refused: %s", err);
        } else {
            if (rc == 0)
                fail_msg("receipt accepted (expected '%s')", c[i].needle);
            if (strncmp(err, "receipt: ", 9) != 0 || !strstr(err, c[i].needle))
                fail_msg("error '%s' does not mention '%s'", err, c[i].needle);
        }
        free(bytes);
    }

    receipt_t r;
    char err[256];
    uint8_t junk[LIAISON_MAX_RECEIPT + 1];
    memset(junk, 0xff, sizeof junk);
    assert_int_equal(receipt_parse(junk, 0, &r, err, sizeof err), -1);
    assert_int_equal(receipt_parse(junk, sizeof junk, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "1025 bytes"));
    assert_int_equal(receipt_parse(junk, 10, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot be decoded"));
    assert_int_equal(receipt_parse(NULL, 10, &r, err, sizeof err), -1);
    keys_destroy(&bob);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_every_single_byte_change),
        cmocka_unit_test(test_parse_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
