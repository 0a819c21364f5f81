/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of checkpoint.c: the C2SP signed-note known answer of Go's sumdb/note, the exact
 * note bytes, round trips, every one-character change, other keys and strict parsing. */
#include "unit.h"

#include <inttypes.h>

#include "checkpoint.h"

#define EM_DASH "\xe2\x80\x94"

/* golang.org/x/mod/sumdb/note's documented example (note.go, note_test.go): a signed note
 * by the Ed25519 key "PeterNeumann", key ID c74f20a3. */
#define GO_VKEY_B64 "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"   /* 0x01 || public key */
#define GO_SKEY_B64 "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"   /* 0x01 || seed */
#define GO_TEXT "If you think cryptography is the answer to your problem,\n" \
                "then you don't know what your problem is.\n"
#define GO_SIG_B64 "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="

/* The root of the 8-leaf CT reference tree and its base64 (computed with Python's base64). */
#define CT_ROOT8_HEX "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
#define CT_ROOT8_B64 "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg="
#define DUMMY_SIG "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

static keys_t *ka, *kb;

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    ka = unit_fixed_keys(1);
    kb = unit_fixed_keys(100);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keys_destroy(&ka);
    keys_destroy(&kb);
    return 0;
}

static void b64_decode(const char *s, uint8_t *out, size_t len)
{
    size_t got = 0;
    assert_int_equal(sodium_base642bin(out, len, s, strlen(s), NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
    assert_int_equal(got, len);
}

static checkpoint_t sample(void)
{
    checkpoint_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.node_id, sizeof c.node_id, "%s", "clinic-a.north");
    c.size = 8;
    unit_hex(CT_ROOT8_HEX, c.root, sizeof c.root);
    c.time_ms = 1700000000123u;
    return c;
}

static void assert_cp_equal(const checkpoint_t *a, const checkpoint_t *b)
{
    assert_string_equal(a->node_id, b->node_id);
    assert_int_equal(a->size, b->size);
    assert_memory_equal(a->root, b->root, sizeof a->root);
    assert_int_equal(a->time_ms, b->time_ms);
}

static int verify(const char *text, size_t len, const keys_t *k)
{
    checkpoint_t out;
    char err[256] = "";
    int rc = checkpoint_verify(text, len, k->sign_pk, &out, err, sizeof err);
    if (rc != 0)
        assert_true(strlen(err) > 0);
    return rc;
}

static int parse(const char *text)
{
    checkpoint_t out;
    char err[256] = "";
    int rc = checkpoint_parse(text, strlen(text), &out, err, sizeof err);
    if (rc != 0)
        assert_true(strncmp(err, "checkpoint: ", 12) == 0);
    return rc;
}

/* The key ID and signature layout of C2SP signed-note, checked against Go's implementation. */
static void test_go_note_kat(void **state)
{
    (void)state;
    uint8_t vkey[33], skey[33], blob[68], id[4], pk[32], sk[64], sig[64];
    const uint8_t want_id[4] = {0xc7, 0x4f, 0x20, 0xa3};

    b64_decode(GO_VKEY_B64, vkey, sizeof vkey);
    b64_decode(GO_SKEY_B64, skey, sizeof skey);
    b64_decode(GO_SIG_B64, blob, sizeof blob);
    assert_int_equal(vkey[0], CHECKPOINT_SIG_TYPE_ED25519);
    assert_int_equal(skey[0], CHECKPOINT_SIG_TYPE_ED25519);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, skey + 1), 0);
    assert_memory_equal(pk, vkey + 1, 32);

    checkpoint_key_id("PeterNeumann", pk, id);
    assert_memory_equal(id, want_id, 4);
    assert_memory_equal(blob, want_id, 4);
    /* The signature covers the text with its final newline, nothing else. */
    assert_int_equal(crypto_sign_verify_detached(blob + 4, (const uint8_t *)GO_TEXT, strlen(GO_TEXT), pk), 0);
    assert_int_equal(crypto_sign_detached(sig, NULL, (const uint8_t *)GO_TEXT, strlen(GO_TEXT), sk), 0);
    assert_memory_equal(sig, blob + 4, 64);
    sodium_memzero(sk, sizeof sk);
}

/* The exact note bytes, composed here independently of checkpoint.c. */
static void test_exact_bytes(void **state)
{
    (void)state;
    checkpoint_t c = sample(), back;
    const char *body = "liaison.audit/clinic-a.north\n8\n" CT_ROOT8_B64 "\ntime 1700000000123\n";
    uint8_t kin[64 + 2 + 32], h[32], blob[68];
    char sig_b64[93], *want = NULL, err[256] = "";
    size_t nl = strlen(c.node_id);

    memcpy(kin, c.node_id, nl);
    kin[nl] = 0x0a;
    kin[nl + 1] = 0x01;
    memcpy(kin + nl + 2, ka->sign_pk, 32);
    crypto_hash_sha256(h, kin, nl + 2 + 32);
    memcpy(blob, h, 4);
    assert_int_equal(crypto_sign_detached(blob + 4, NULL, (const uint8_t *)body, strlen(body), ka->sign_sk), 0);
    sodium_bin2base64(sig_b64, sizeof sig_b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    assert_true(asprintf(&want, "%s\n" EM_DASH " clinic-a.north %s\n", body, sig_b64) > 0);

    char *note = checkpoint_sign(&c, ka);
    assert_non_null(note);
    assert_string_equal(note, want);

    assert_int_equal(checkpoint_parse(note, strlen(note), &back, err, sizeof err), 0);
    assert_cp_equal(&back, &c);
    memset(&back, 0, sizeof back);
    assert_int_equal(checkpoint_verify(note, strlen(note), ka->sign_pk, &back, err, sizeof err), 0);
    assert_cp_equal(&back, &c);

    /* The text need not be NUL-terminated: an exact-size copy (ASan checks the reads). */
    size_t len = strlen(note);
    char *exact = malloc(len);
    assert_non_null(exact);
    memcpy(exact, note, len);
    assert_int_equal(checkpoint_verify(exact, len, ka->sign_pk, &back, err, sizeof err), 0);
    free(exact);
    free(note);
    free(want);
}

static void test_round_trip_edges(void **state)
{
    (void)state;
    const char *ids[] = {"a", "0", "n1", "a0._-z",
                         "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01"}; /* 64 */
    const uint64_t nums[] = {0, 1, 9, 10, 1700000000000u, UINT64_MAX - 1, UINT64_MAX};

    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        for (size_t j = 0; j < sizeof nums / sizeof nums[0]; j++) {
            checkpoint_t c = sample(), back;
            char err[256] = "";
            snprintf(c.node_id, sizeof c.node_id, "%s", ids[i]);
            c.size = nums[j];
            c.time_ms = nums[sizeof nums / sizeof nums[0] - 1 - j];
            for (size_t b = 0; b < sizeof c.root; b++)
                c.root[b] = (uint8_t)(i * 31 + j * 7 + b);
            char *note = checkpoint_sign(&c, ka);
            assert_non_null(note);
            assert_true(strlen(note) <= CHECKPOINT_MAX_TEXT);
            assert_int_equal(checkpoint_verify(note, strlen(note), ka->sign_pk, &back, err, sizeof err), 0);
            assert_cp_equal(&back, &c);
            assert_int_equal(verify(note, strlen(note), kb), -1);
            free(note);
        }
    }
}

/* Every single-byte substitution, deletion and insertion is refused. */
static void test_every_change_refused(void **state)
{
    (void)state;
    checkpoint_t c = sample();
    char *note = checkpoint_sign(&c, ka);
    assert_non_null(note);
    size_t len = strlen(note);
    char *buf = malloc(len + 2);
    assert_non_null(buf);

    assert_int_equal(verify(note, len, ka), 0);
    for (size_t pos = 0; pos < len; pos++) {
        for (int v = 0; v < 256; v++) {
            if ((char)v == note[pos])
                continue;
            memcpy(buf, note, len);
            buf[pos] = (char)v;
            if (verify(buf, len, ka) == 0)
                fail_msg("byte %zu changed to 0x%02x still verifies", pos, v);
        }
        /* Deletion. */
        memcpy(buf, note, pos);
        memcpy(buf + pos, note + pos + 1, len - pos - 1);
        if (verify(buf, len - 1, ka) == 0)
            fail_msg("deleting byte %zu still verifies", pos);
    }
    for (size_t pos = 0; pos <= len; pos++) {
        for (int v = 0; v < 256; v++) {
            memcpy(buf, note, pos);
            buf[pos] = (char)v;
            memcpy(buf + pos + 1, note + pos, len - pos);
            if (verify(buf, len + 1, ka) == 0)
                fail_msg("inserting 0x%02x at %zu still verifies", v, pos);
        }
        /* Truncation. */
        if (pos < len && verify(note, pos, ka) == 0)
            fail_msg("the first %zu bytes verify", pos);
    }
    free(buf);
    free(note);
}

/* The 68-byte key id || signature of a note's (last) signature line. */
static void blob_of(const char *note, uint8_t blob[68])
{
    char b64[93];
    const char *sig = strrchr(note, ' ');
    assert_non_null(sig);
    assert_int_equal(strlen(sig + 1), 93); /* 92 characters and the newline */
    memcpy(b64, sig + 1, 92);
    b64[92] = '\0';
    b64_decode(b64, blob, 68);
}

/* The note with its signature blob replaced. */
static char *resign_blob(const char *note, const uint8_t blob[68])
{
    char sig_b64[93], *out = NULL;
    const char *dash = strstr(note, EM_DASH);
    assert_non_null(dash);
    const char *sp = strchr(dash + 4, ' ');
    assert_non_null(sp);
    sodium_bin2base64(sig_b64, sizeof sig_b64, blob, 68, sodium_base64_VARIANT_ORIGINAL);
    assert_true(asprintf(&out, "%.*s%s\n", (int)(sp + 1 - note), note, sig_b64) > 0);
    return out;
}

static void test_other_keys(void **state)
{
    (void)state;
    checkpoint_t c = sample();
    char *by_a = checkpoint_sign(&c, ka), *by_b = checkpoint_sign(&c, kb);
    char err[256] = "";
    checkpoint_t out;
    uint8_t blob[68], id_a[4];

    assert_non_null(by_a);
    assert_non_null(by_b);
    assert_int_equal(verify(by_a, strlen(by_a), ka), 0);
    assert_int_equal(verify(by_b, strlen(by_b), kb), 0);
    /* Same node id, other key: the key id differs. */
    assert_int_equal(checkpoint_verify(by_b, strlen(by_b), ka->sign_pk, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "key id"));
    assert_int_equal(verify(by_a, strlen(by_a), kb), -1);
    /* B's signature under A's key id: the signature itself must fail. */
    blob_of(by_b, blob);
    checkpoint_key_id(c.node_id, ka->sign_pk, id_a);
    memcpy(blob, id_a, 4);
    char *forged = resign_blob(by_b, blob);
    assert_int_equal(checkpoint_verify(forged, strlen(forged), ka->sign_pk, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "bad signature"));
    /* A's signature of another checkpoint grafted onto this body. */
    checkpoint_t c2 = c;
    c2.size = 9;
    char *other = checkpoint_sign(&c2, ka);
    assert_non_null(other);
    blob_of(other, blob);
    char *graft = resign_blob(by_a, blob);
    assert_int_equal(verify(graft, strlen(graft), ka), -1);
    /* Parsing alone does not check signatures (checkpoint_parse is not for received notes). */
    assert_int_equal(checkpoint_parse(forged, strlen(forged), &out, err, sizeof err), 0);

    free(by_a);
    free(by_b);
    free(forged);
    free(other);
    free(graft);
}

/* Notes of the wrong shape are refused by the parser, whatever the signature. */
static void test_strict_parse(void **state)
{
    (void)state;
    char *t = NULL;
    const char *root = CT_ROOT8_B64;

#define NOTE(body, name) "liaison.audit/n1\n" body "\n" EM_DASH " " name " " DUMMY_SIG "\n"
    assert_int_equal(parse(NOTE("5\n" CT_ROOT8_B64 "\ntime 7\n", "n1")), 0);
    assert_int_equal(parse(NOTE("0\n" CT_ROOT8_B64 "\ntime 0\n", "n1")), 0);
    assert_int_equal(parse(NOTE("18446744073709551615\n" CT_ROOT8_B64 "\ntime 18446744073709551615\n", "n1")), 0);
    /* Numbers. */
    const char *bad_nums[] = {"05", "00", "+5", "-1", " 5", "5 ", "", "0x5", "5a", "18446744073709551616",
                              "99999999999999999999", "123456789012345678901", "\xd9\xa5"};
    for (size_t i = 0; i < sizeof bad_nums / sizeof bad_nums[0]; i++) {
        assert_true(asprintf(&t, "liaison.audit/n1\n%s\n%s\ntime 7\n\n" EM_DASH " n1 " DUMMY_SIG "\n", bad_nums[i],
                             root) > 0);
        assert_int_equal(parse(t), -1);
        free(t);
        assert_true(asprintf(&t, "liaison.audit/n1\n5\n%s\ntime %s\n\n" EM_DASH " n1 " DUMMY_SIG "\n", root,
                             bad_nums[i]) > 0);
        assert_int_equal(parse(t), -1);
        free(t);
    }
    /* Time line. */
    assert_int_equal(parse(NOTE("5\n" CT_ROOT8_B64 "\ntime  7\n", "n1")), -1);
    assert_int_equal(parse(NOTE("5\n" CT_ROOT8_B64 "\nTime 7\n", "n1")), -1);
    assert_int_equal(parse(NOTE("5\n" CT_ROOT8_B64 "\ntime\t7\n", "n1")), -1);
    assert_int_equal(parse(NOTE("5\n" CT_ROOT8_B64 "\ntime\n", "n1")), -1);
    assert_int_equal(parse(NOTE("5\n" CT_ROOT8_B64 "\n", "n1")), -1);
    assert_int_equal(parse(NOTE("5\n" CT_ROOT8_B64 "\ntime 7\nextra\n", "n1")), -1);
    /* Root: padded standard base64 of 32 bytes, canonical. */
    assert_int_equal(parse(NOTE("5\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\ntime 7\n", "n1")), -1);
    assert_int_equal(parse(NOTE("5\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz-Nw7_RgQyg=\ntime 7\n", "n1")), -1);
    assert_int_equal(parse(NOTE("5\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg\ntime 7\n", "n1")), -1);
    assert_int_equal(parse(NOTE("5\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg==\ntime 7\n", "n1")), -1);
    assert_int_equal(parse(NOTE("5\nXcnaeacGWamt VZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\ntime 7\n", "n1")), -1);
    assert_int_equal(parse(NOTE("5\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQygAAAA\ntime 7\n", "n1")), -1);
    assert_int_equal(parse(NOTE("5\n" CT_ROOT8_HEX "\ntime 7\n", "n1")), -1);
    /* Origin and node id. */
    const char *bad_origins[] = {"liaison.audit/", "liaison.audit/N1", "liaison.audit/-n1", "liaison.audit/n1 ",
                                 "liaison.audit/n1/x", "liaison.audit.n1", "example.com/n1", "n1",
                                 "liaison.audit/n1+x", "liaison.audit/caf\xc3\xa9",
                                 "liaison.audit/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                 "a"}; /* a 65-byte id */
    for (size_t i = 0; i < sizeof bad_origins / sizeof bad_origins[0]; i++) {
        const char *name = strchr(bad_origins[i], '/') ? strchr(bad_origins[i], '/') + 1 : "n1";
        assert_true(asprintf(&t, "%s\n5\n%s\ntime 7\n\n" EM_DASH " %s " DUMMY_SIG "\n", bad_origins[i], root,
                             *name ? name : "n1") > 0);
        assert_int_equal(parse(t), -1);
        free(t);
    }
    /* The signature part. */
    assert_int_equal(parse(NOTE("5\n" CT_ROOT8_B64 "\ntime 7\n", "n2")), -1);
    assert_int_equal(parse(NOTE("5\n" CT_ROOT8_B64 "\ntime 7\n", "n1 ")), -1);
    assert_int_equal(parse("liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n\n-- n1 " DUMMY_SIG "\n"), -1);
    assert_int_equal(parse("liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n\n\xe2\x80\x93 n1 " DUMMY_SIG "\n"), -1);
    assert_int_equal(parse("liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n\n" EM_DASH "  n1 " DUMMY_SIG "\n"), -1);
    assert_int_equal(parse("liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n\n" EM_DASH " n1 " DUMMY_SIG), -1);
    assert_int_equal(parse("liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n\n" EM_DASH " n1 " DUMMY_SIG "\n\n"), -1);
    assert_int_equal(parse("liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n\n" EM_DASH " n1 " DUMMY_SIG "\nx"), -1);
    assert_int_equal(parse("liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n" EM_DASH " n1 " DUMMY_SIG "\n"), -1);
    assert_int_equal(parse("liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n\n\n" EM_DASH " n1 " DUMMY_SIG "\n"), -1);
    assert_int_equal(parse("liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n\n"), -1);
    assert_int_equal(parse(NOTE("5\n" CT_ROOT8_B64 "\ntime 7\n", "n1") EM_DASH " n1 " DUMMY_SIG "\n"), -1);
    assert_int_equal(parse(NOTE("5\n" CT_ROOT8_B64 "\ntime 7\n", "n1") EM_DASH " other " DUMMY_SIG "\n"), -1);
    assert_int_equal(parse("liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n\n" EM_DASH " n1 AAAA" DUMMY_SIG "\n"), -1);
    assert_int_equal(parse("liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n\n" EM_DASH " n1 " CT_ROOT8_B64 "\n"), -1);
    /* The 68-byte blob with non-zero unused bits in its last character. */
    assert_int_equal(parse("liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n\n" EM_DASH " n1 "
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n"),
                     -1);
    /* Line endings: CRLF. */
    assert_int_equal(
        parse("liaison.audit/n1\r\n5\r\n" CT_ROOT8_B64 "\r\ntime 7\r\n\r\n" EM_DASH " n1 " DUMMY_SIG "\r\n"), -1);
#undef NOTE

    /* Size limits, NUL bytes and bad arguments. */
    checkpoint_t out;
    char err[64] = "";
    char big[CHECKPOINT_MAX_TEXT + 2];
    memset(big, 'a', sizeof big);
    assert_int_equal(checkpoint_parse(big, sizeof big, &out, err, sizeof err), -1);
    assert_int_equal(checkpoint_parse("", 0, &out, err, sizeof err), -1);
    assert_int_equal(checkpoint_parse(NULL, 10, &out, err, sizeof err), -1);
    const char good[] = "liaison.audit/n1\n5\n" CT_ROOT8_B64 "\ntime 7\n\n" EM_DASH " n1 " DUMMY_SIG "\n";
    assert_int_equal(checkpoint_parse(good, sizeof good - 1, NULL, err, sizeof err), -1);
    assert_int_equal(checkpoint_parse(good, sizeof good, &out, err, sizeof err), -1); /* with its NUL */
    char withnul[sizeof good];
    memcpy(withnul, good, sizeof good);
    withnul[17] = '\0';
    assert_int_equal(checkpoint_parse(withnul, sizeof good - 1, &out, err, sizeof err), -1);
    /* A short err buffer is truncated, not overrun; NULL err with size 0 is allowed. */
    assert_true(strlen(err) < sizeof err);
    assert_int_equal(checkpoint_parse(withnul, sizeof good - 1, &out, NULL, 0), -1);
    assert_int_equal(checkpoint_parse(good, sizeof good - 1, &out, NULL, 0), 0);
    assert_int_equal(out.size, 5);
    assert_int_equal(out.time_ms, 7);
    assert_string_equal(out.node_id, "n1");
}

static void test_sign_refuses(void **state)
{
    (void)state;
    checkpoint_t c = sample();
    keys_t wrong = *ka;

    assert_null(checkpoint_sign(NULL, ka));
    assert_null(checkpoint_sign(&c, NULL));
    snprintf(c.node_id, sizeof c.node_id, "%s", "Clinic");
    assert_null(checkpoint_sign(&c, ka));
    c.node_id[0] = '\0';
    assert_null(checkpoint_sign(&c, ka));
    memset(c.node_id, 'a', sizeof c.node_id); /* 65 bytes, no NUL */
    assert_null(checkpoint_sign(&c, ka));
    c = sample();
    /* A key pair whose public half is not the secret key's: the key id would lie. */
    memcpy(wrong.sign_pk, kb->sign_pk, sizeof wrong.sign_pk);
    assert_null(checkpoint_sign(&c, &wrong));
    wrong.sign_sk = NULL;
    assert_null(checkpoint_sign(&c, &wrong));
}

/* checkpoint_proof_from_wire: copies a well-formed proof, refuses too many hashes or one
 * of the wrong length. */
static void test_proof_from_wire(void **state)
{
    (void)state;
    uint8_t hashes[MERKLE_MAX_CONSISTENCY + 1][MERKLE_HASH_BYTES];
    ProtobufCBinaryData items[MERKLE_MAX_CONSISTENCY + 1];
    for (size_t i = 0; i <= MERKLE_MAX_CONSISTENCY; i++) {
        randombytes_buf(hashes[i], sizeof hashes[i]);
        items[i] = (ProtobufCBinaryData){MERKLE_HASH_BYTES, hashes[i]};
    }
    Liaison__Wire__WitnessRequest wr = LIAISON__WIRE__WITNESS_REQUEST__INIT;
    uint8_t out[MERKLE_MAX_CONSISTENCY][MERKLE_HASH_BYTES];
    size_t len = 99;
    assert_int_equal(checkpoint_proof_from_wire(&wr, out, &len), 0);
    assert_int_equal(len, 0);
    wr.proof = items;
    wr.n_proof = 3;
    assert_int_equal(checkpoint_proof_from_wire(&wr, out, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(out[2], hashes[2], MERKLE_HASH_BYTES);
    wr.n_proof = MERKLE_MAX_CONSISTENCY;
    assert_int_equal(checkpoint_proof_from_wire(&wr, out, &len), 0);
    assert_int_equal(len, MERKLE_MAX_CONSISTENCY);
    wr.n_proof = MERKLE_MAX_CONSISTENCY + 1;
    assert_int_equal(checkpoint_proof_from_wire(&wr, out, &len), -1);
    assert_int_equal(len, 0);
    wr.n_proof = 3;
    items[1].len = MERKLE_HASH_BYTES - 1;
    assert_int_equal(checkpoint_proof_from_wire(&wr, out, &len), -1);
    items[1].len = MERKLE_HASH_BYTES + 1;
    assert_int_equal(checkpoint_proof_from_wire(&wr, out, &len), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go_note_kat),
        cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_round_trip_edges),
        cmocka_unit_test(test_every_change_refused),
        cmocka_unit_test(test_other_keys),
        cmocka_unit_test(test_strict_parse),
        cmocka_unit_test(test_sign_refuses),
        cmocka_unit_test(test_proof_from_wire),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
