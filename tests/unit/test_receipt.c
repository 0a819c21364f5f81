/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of receipt.c: round trip, every single-byte change, and each parse rule, for
 * receipts alone and in batches (checked against merkle.c's reference functions). */
#include "unit.h"

#include "merkle.h"
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
            m[pos] = (uint8_t)(m[pos] ^ (mask < 8 ? 1u << mask : 0xffu));
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

/* n receipts of one batch from bob to alice, each checked independently of receipt.c:
 * the leaf is SHA-256(0x00 || body), the proof is merkle_inclusion_proof's, and the
 * signature covers "liaison-v1/receipt-batch" 0x00 || u32be(n) || MTH of the leaves. */
static void check_batch(const keys_t *bob, size_t n)
{
    receipt_t *rs = calloc(n, sizeof *rs);
    uint8_t **outs = calloc(n, sizeof *outs);
    size_t *lens = calloc(n, sizeof *lens);
    uint8_t (*leaves)[MERKLE_HASH_BYTES] = calloc(n, MERKLE_HASH_BYTES);
    char err[256] = "";
    for (size_t i = 0; i < n; i++)
        rs[i] = sample();
    if (n > 1)
        snprintf(rs[n - 1].sender, sizeof rs[n - 1].sender, "%s", "carol"); /* bodies need not share fields */
    assert_int_equal(receipt_make_batch(bob, rs, n, outs, lens), 0);
    Liaison__Wire__Receipt **rc = calloc(n, sizeof *rc);
    for (size_t i = 0; i < n; i++) {
        assert_true(lens[i] <= LIAISON_MAX_RECEIPT);
        rc[i] = liaison__wire__receipt__unpack(NULL, lens[i], outs[i]);
        assert_non_null(rc[i]);
        uint8_t pre[1 + LIAISON_MAX_RECEIPT];
        pre[0] = 0x00;
        memcpy(pre + 1, rc[i]->body.data, rc[i]->body.len);
        crypto_hash_sha256(leaves[i], pre, 1 + rc[i]->body.len);
    }
    uint8_t root[MERKLE_HASH_BYTES];
    assert_int_equal(merkle_root(leaves, n, root), 0);
    uint8_t msg[sizeof "liaison-v1/receipt-batch" + 4 + MERKLE_HASH_BYTES];
    memcpy(msg, "liaison-v1/receipt-batch", sizeof "liaison-v1/receipt-batch");
    uint8_t *p = msg + sizeof "liaison-v1/receipt-batch";
    p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16), p[2] = (uint8_t)(n >> 8), p[3] = (uint8_t)n;
    memcpy(p + 4, root, MERKLE_HASH_BYTES);
    for (size_t i = 0; i < n; i++) {
        receipt_t v;
        if (receipt_verify(outs[i], lens[i], bob->sign_pk, &v, err, sizeof err) != 0)
            fail_msg("batch of %zu, receipt %zu: %s", n, i, err);
        assert_receipts_equal(&rs[i], &v);
        assert_int_equal(rc[i]->batch_size, n);
        assert_int_equal(rc[i]->leaf_index, i);
        assert_int_equal(crypto_sign_verify_detached(rc[i]->signature.data, msg, sizeof msg, bob->sign_pk), 0);
        uint8_t proof[MERKLE_MAX_INCLUSION][MERKLE_HASH_BYTES];
        size_t plen = 0;
        assert_int_equal(merkle_inclusion_proof(leaves, n, i, proof, MERKLE_MAX_INCLUSION, &plen), 0);
        assert_int_equal(rc[i]->n_path, plen);
        for (size_t j = 0; j < plen; j++) {
            assert_int_equal(rc[i]->path[j].len, MERKLE_HASH_BYTES);
            assert_memory_equal(rc[i]->path[j].data, proof[j], MERKLE_HASH_BYTES);
        }
        liaison__wire__receipt__free_unpacked(rc[i], NULL);
        free(outs[i]);
    }
    free(rc);
    free(leaves);
    free(lens);
    free(outs);
    free(rs);
}

static void test_batch_roundtrip(void **state)
{
    (void)state;
    keys_t *bob = keys_generate();
    for (size_t n = 2; n <= 70; n++)
        check_batch(bob, n);
    check_batch(bob, 255);
    check_batch(bob, RECEIPT_BATCH_MAX);

    /* A batch of one is a receipt alone, byte for byte (Ed25519 is deterministic). */
    receipt_t r = sample();
    uint8_t *one = NULL, *alone = NULL;
    size_t one_len = 0, alone_len = 0;
    assert_int_equal(receipt_make_batch(bob, &r, 1, &one, &one_len), 0);
    assert_int_equal(receipt_make(bob, &r, &alone, &alone_len), 0);
    assert_int_equal(one_len, alone_len);
    assert_memory_equal(one, alone, one_len);
    free(one);
    free(alone);

    /* Largest ids in the largest batch still fit the limit. */
    receipt_t *rs = calloc(RECEIPT_BATCH_MAX, sizeof *rs);
    uint8_t **outs = calloc(RECEIPT_BATCH_MAX, sizeof *outs);
    size_t *lens = calloc(RECEIPT_BATCH_MAX, sizeof *lens);
    for (size_t i = 0; i < RECEIPT_BATCH_MAX; i++) {
        rs[i] = sample();
        memset(rs[i].recipient, 'r', LIAISON_MAX_ID);
        memset(rs[i].sender, 's', LIAISON_MAX_ID);
        rs[i].stored_ms = UINT64_MAX;
    }
    assert_int_equal(receipt_make_batch(bob, rs, RECEIPT_BATCH_MAX, outs, lens), 0);
    for (size_t i = 0; i < RECEIPT_BATCH_MAX; i++) {
        assert_true(lens[i] <= LIAISON_MAX_RECEIPT);
        free(outs[i]);
    }
    /* Sizes out of range make nothing and leave outs alone (it may hold fewer); one bad
     * body makes nothing either. */
    outs[0] = (uint8_t *)1;
    assert_int_equal(receipt_make_batch(bob, rs, 0, outs, lens), -1);
    assert_int_equal(receipt_make_batch(bob, rs, RECEIPT_BATCH_MAX + 1, outs, lens), -1);
    assert_ptr_equal(outs[0], (uint8_t *)1);
    snprintf(rs[7].sender, sizeof rs[7].sender, "Not An Id");
    assert_int_equal(receipt_make_batch(bob, rs, 16, outs, lens), -1);
    for (size_t i = 0; i < 16; i++)
        assert_null(outs[i]);
    free(lens);
    free(outs);
    free(rs);
    keys_destroy(&bob);
}

/* Re-encodes a batch receipt after change() edits its fields (still canonical bytes). */
static uint8_t *edited(const uint8_t *bytes, size_t len, void (*change)(Liaison__Wire__Receipt *), size_t *out_len)
{
    Liaison__Wire__Receipt *rc = liaison__wire__receipt__unpack(NULL, len, bytes);
    assert_non_null(rc);
    size_t n_path = rc->n_path; /* the unpacked array, to free all of it */
    change(rc);
    *out_len = liaison__wire__receipt__get_packed_size(rc);
    uint8_t *out = malloc(*out_len);
    liaison__wire__receipt__pack(rc, out);
    rc->n_path = n_path;
    liaison__wire__receipt__free_unpacked(rc, NULL);
    return out;
}

static void next_leaf(Liaison__Wire__Receipt *r) { r->leaf_index ^= 1u; }
static void size_one(Liaison__Wire__Receipt *r) { r->batch_size = 1; r->leaf_index = 0; }
static void size_big(Liaison__Wire__Receipt *r) { r->batch_size = RECEIPT_BATCH_MAX + 1; }
static void size_less(Liaison__Wire__Receipt *r) { r->batch_size = r->leaf_index; }
static void bigger_tree(Liaison__Wire__Receipt *r) { r->batch_size += 10; }
static void short_hash(Liaison__Wire__Receipt *r) { r->path[0].len = 31; }
static void one_hash_less(Liaison__Wire__Receipt *r) { r->n_path--; }
static void alone_with_index(Liaison__Wire__Receipt *r) { r->batch_size = 0; }
static void alone_with_proof(Liaison__Wire__Receipt *r) { r->batch_size = 0; r->leaf_index = 0; }

static void test_batch_rules(void **state)
{
    (void)state;
    keys_t *bob = keys_generate();
    receipt_t rs[6], v;
    uint8_t *outs[6];
    size_t lens[6], len;
    char err[256];
    for (size_t i = 0; i < 6; i++)
        rs[i] = sample();
    assert_int_equal(receipt_make_batch(bob, rs, 6, outs, lens), 0);
    const uint8_t *b = outs[3];
    size_t blen = lens[3];
    struct {
        void (*change)(Liaison__Wire__Receipt *);
        const char *want;
    } cases[] = {
        {next_leaf, "batch signature does not verify"},
        {size_one, "batch of 1, must be 2 to 1024"},
        {size_big, "batch of 1025"},
        {size_less, "leaf 3 of a batch of 3"},
        {bigger_tree, "does not fit"},
        {short_hash, "proof hash 0 is 31 bytes"},
        {one_hash_less, "does not fit"},
        {alone_with_index, "carries no leaf index or proof"},
        {alone_with_proof, "carries no leaf index or proof"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t *m = edited(b, blen, cases[c].change, &len);
        err[0] = 0;
        assert_int_equal(receipt_verify(m, len, bob->sign_pk, &v, err, sizeof err), -1);
        if (!strstr(err, cases[c].want))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", c, err, cases[c].want);
        free(m);
    }
    /* Every single-byte change of a batch receipt is refused. */
    uint8_t *m = malloc(blen);
    for (size_t pos = 0; pos < blen; pos++)
        for (int mask = 0; mask < 9; mask++) {
            memcpy(m, b, blen);
            m[pos] = (uint8_t)(m[pos] ^ (mask < 8 ? 1u << mask : 0xffu));
            if (receipt_verify(m, blen, bob->sign_pk, &v, err, sizeof err) == 0)
                fail_msg("byte %zu ^ mask %d: changed batch receipt verifies", pos, mask);
        }
    free(m);
    assert_int_equal(receipt_verify(b, blen, bob->sign_pk, &v, err, sizeof err), 0); /* control */
    for (size_t i = 0; i < 6; i++)
        free(outs[i]);
    keys_destroy(&bob);
}

static void test_batch_cache(void **state)
{
    (void)state;
    keys_t *bob = keys_generate(), *alice = keys_generate();
    receipt_t rs[5], v;
    uint8_t *outs[5];
    size_t lens[5];
    char err[256];
    for (size_t i = 0; i < 5; i++)
        rs[i] = sample();
    assert_int_equal(receipt_make_batch(bob, rs, 5, outs, lens), 0);
    receipt_cache_t cache = {0};
    for (size_t i = 0; i < 5; i++) {
        if (receipt_verify_cached(outs[i], lens[i], bob->sign_pk, &cache, &v, err, sizeof err) != 0)
            fail_msg("receipt %zu: %s", i, err);
        assert_receipts_equal(&rs[i], &v);
        assert_true(cache.valid);
        assert_int_equal(cache.batch_size, 5);
    }
    /* The cache is per key: another key still refuses the batch. */
    assert_int_equal(receipt_verify_cached(outs[2], lens[2], alice->sign_pk, &cache, &v, err, sizeof err), -1);
    /* Same root, other signature bytes: not taken from the cache, and refused. */
    uint8_t *m = malloc(lens[4]);
    memcpy(m, outs[4], lens[4]);
    Liaison__Wire__Receipt *rc = liaison__wire__receipt__unpack(NULL, lens[4], outs[4]);
    size_t sig_at = 0;
    while (sig_at + 64 <= lens[4] && memcmp(m + sig_at, rc->signature.data, 64) != 0)
        sig_at++;
    assert_true(sig_at + 64 <= lens[4]);
    liaison__wire__receipt__free_unpacked(rc, NULL);
    m[sig_at + 10] ^= 1;
    assert_int_equal(receipt_verify_cached(m, lens[4], bob->sign_pk, &cache, &v, err, sizeof err), -1);
    free(m);
    /* What is in the cache is trusted as verified (that is the saving): a statement
     * placed there by hand passes with the cache and fails without it. */
    receipt_cache_t forged = cache;
    receipt_t other[2] = {sample(), sample()};
    uint8_t *oo[2];
    size_t ol[2];
    assert_int_equal(receipt_make_batch(alice, other, 2, oo, ol), 0); /* signed by alice */
    rc = liaison__wire__receipt__unpack(NULL, ol[0], oo[0]);
    uint8_t leaf[MERKLE_HASH_BYTES], root[MERKLE_HASH_BYTES], path[1][MERKLE_HASH_BYTES];
    merkle_leaf_hash(rc->body.data, rc->body.len, leaf);
    memcpy(path[0], rc->path[0].data, MERKLE_HASH_BYTES);
    assert_int_equal(merkle_inclusion_root(leaf, 0, 2, (const uint8_t(*)[MERKLE_HASH_BYTES])path, 1, root), 0);
    memcpy(forged.root, root, MERKLE_HASH_BYTES);
    memcpy(forged.signature, rc->signature.data, 64);
    forged.batch_size = 2;
    liaison__wire__receipt__free_unpacked(rc, NULL);
    assert_int_equal(receipt_verify_cached(oo[0], ol[0], bob->sign_pk, &forged, &v, err, sizeof err), 0);
    assert_int_equal(receipt_verify_cached(oo[0], ol[0], bob->sign_pk, NULL, &v, err, sizeof err), -1);
    free(oo[0]);
    free(oo[1]);
    for (size_t i = 0; i < 5; i++)
        free(outs[i]);
    keys_destroy(&bob);
    keys_destroy(&alice);
}

/* Leaf 2 of a tree of 4 relabelled as leaf 4 of a tree of 6: its path leads to the same
 * root (RFC 9162 combines it the same way), but the signature covers size 4. */
static void as_leaf_4_of_6(Liaison__Wire__Receipt *r)
{
    r->batch_size = 6;
    r->leaf_index = 4;
}

static void later_time(Liaison__Wire__Receipt *r)
{
    Liaison__Wire__ReceiptBody *b = liaison__wire__receipt_body__unpack(NULL, r->body.len, r->body.data);
    assert_non_null(b);
    b->stored_ms++;
    size_t n = liaison__wire__receipt_body__get_packed_size(b);
    assert_true(n <= r->body.len); /* one more ms does not lengthen the varint here */
    r->body.len = liaison__wire__receipt_body__pack(b, r->body.data);
    liaison__wire__receipt_body__free_unpacked(b, NULL);
}

static void test_batch_cache_compares_everything(void **state)
{
    /* With the cache warm from the genuine batch, a receipt whose statement differs in
     * the tree size alone, or in its body alone, is still refused: the cache matches
     * the size, the root and the signature bytes, not the signature bytes only. */
    (void)state;
    keys_t *bob = keys_generate();
    receipt_t rs[4], v;
    uint8_t *outs[4];
    size_t lens[4];
    char err[256];
    for (size_t i = 0; i < 4; i++)
        rs[i] = sample();
    assert_int_equal(receipt_make_batch(bob, rs, 4, outs, lens), 0);
    void (*changes[])(Liaison__Wire__Receipt *) = {as_leaf_4_of_6, later_time};
    for (size_t c = 0; c < sizeof changes / sizeof changes[0]; c++) {
        receipt_cache_t cache = {0};
        for (size_t i = 0; i < 4; i++)
            assert_int_equal(receipt_verify_cached(outs[i], lens[i], bob->sign_pk, &cache, &v, err, sizeof err), 0);
        size_t len;
        uint8_t *m = edited(outs[2], lens[2], changes[c], &len);
        if (c == 0) { /* the relabelled path does lead to the signed root */
            Liaison__Wire__Receipt *rc = liaison__wire__receipt__unpack(NULL, len, m);
            uint8_t leaf[MERKLE_HASH_BYTES], root[MERKLE_HASH_BYTES];
            merkle_leaf_hash(rc->body.data, rc->body.len, leaf);
            uint8_t path[8][MERKLE_HASH_BYTES];
            for (size_t k = 0; k < rc->n_path; k++)
                memcpy(path[k], rc->path[k].data, MERKLE_HASH_BYTES);
            assert_int_equal(
                merkle_inclusion_root(leaf, 4, 6, (const uint8_t(*)[MERKLE_HASH_BYTES])path, rc->n_path, root), 0);
            assert_memory_equal(root, cache.root, MERKLE_HASH_BYTES);
            liaison__wire__receipt__free_unpacked(rc, NULL);
        }
        if (receipt_verify_cached(m, len, bob->sign_pk, &cache, &v, err, sizeof err) != -1)
            fail_msg("change %zu: accepted from a warm cache", c);
        assert_int_equal(receipt_verify_cached(m, len, bob->sign_pk, NULL, &v, err, sizeof err), -1);
        free(m);
    }
    for (size_t i = 0; i < 4; i++)
        free(outs[i]);
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
        cmocka_unit_test(test_batch_roundtrip),
        cmocka_unit_test(test_batch_rules),
        cmocka_unit_test(test_batch_cache),
        cmocka_unit_test(test_batch_cache_compares_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
