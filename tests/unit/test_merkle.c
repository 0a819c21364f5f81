/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of merkle.c: CT reference vectors, the builder, and inclusion and consistency
 * proofs for every index and size pair up to 70, with tampering. */
#include "unit.h"

#include <inttypes.h>

#include "merkle.h"

#define MAX_LEAVES 70u
#define H MERKLE_HASH_BYTES

/* Leaves and roots of the Certificate Transparency reference tree (RFC 6962 test data, as
 * in transparency-dev/merkle proof/verify_test.go). */
static const char *const ct_leaves[8] = {
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
};
static const char *const ct_roots[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};
#define EMPTY_ROOT "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Known proofs over the CT tree, from the same Go test data (0-based index here). */
static const struct {
    uint64_t index, size;
    size_t n;
    const char *proof[3];
} ct_inclusion[] = {
    {0, 1, 0, {NULL}},
    {0, 8, 3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5, 8, 3,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1, 5, 3,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};
static const struct {
    uint64_t old_size, new_size;
    size_t n;
    const char *proof[3];
} ct_consistency[] = {
    {1, 1, 0, {NULL}},
    {1, 8, 3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6, 8, 3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 5, 2,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6, 7, 3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

static uint8_t leaves[2 * MAX_LEAVES + 2][H];  /* leaf hashes of "entry-0", "entry-1", ... */
static uint8_t roots[2 * MAX_LEAVES + 3][H];   /* roots[n] = MTH(leaves[0..n)) */

static void ct_leaf_hashes(uint8_t out[8][H])
{
    for (size_t i = 0; i < 8; i++) {
        uint8_t data[16];
        size_t len = strlen(ct_leaves[i]) / 2;
        if (len)
            unit_hex(ct_leaves[i], data, len);
        merkle_leaf_hash(len ? data : NULL, len, out[i]);
    }
}

/* A second, recursive MTH straight from the RFC definition, to check the iterative code. */
static void naive_mth(const uint8_t (*l)[H], uint64_t n, uint8_t out[H])
{
    if (n == 0) {
        crypto_hash_sha256(out, (const uint8_t *)"", 0);
    } else if (n == 1) {
        memcpy(out, l[0], H);
    } else {
        uint64_t k = 1;
        uint8_t a[H], b[H], buf[1 + 2 * H];
        while (k * 2 < n)
            k *= 2;
        naive_mth(l, k, a);
        naive_mth(l + k, n - k, b);
        buf[0] = 1;
        memcpy(buf + 1, a, H);
        memcpy(buf + 1 + H, b, H);
        crypto_hash_sha256(out, buf, sizeof buf);
    }
}

/*
 * The left/right pattern of PATH(m, D[n]) bottom-up, from the RFC's recursive definition:
 * bit i set = the i-th proof node is a left sibling. *len = proof length. Verification of a
 * proof only depends on (pattern, length), so two (index, size) pairs with the same shape
 * accept the same proof: the root does not commit to the size on its own.
 */
static uint64_t path_shape(uint64_t m, uint64_t n, size_t *len)
{
    uint64_t bits = 0;
    size_t depth = 0;
    uint64_t stack_left[64];

    while (n > 1) {
        uint64_t k = 1;
        while (k * 2 < n)
            k *= 2;
        if (m < k) {
            stack_left[depth++] = 0;
            n = k;
        } else {
            stack_left[depth++] = 1;
            m -= k;
            n -= k;
        }
    }
    for (size_t i = 0; i < depth; i++)
        bits |= stack_left[depth - 1 - i] << i;
    *len = depth;
    return bits;
}

/* The shape of SUBPROOF(m, D[n], true), 0 < m < n, from the RFC definition: per node in proof
 * order, 'S' (MTH(D[m]) of a subtree the old tree ends in, the seed), 'L' (left sibling,
 * in both old and new roots) or 'R' (right sibling, new root only). NUL-terminated. */
static void consistency_shape(uint64_t m, uint64_t n, char out[130])
{
    char rev[130];
    size_t d = 0;
    bool b = true;

    while (m != n) {
        uint64_t k = 1;
        while (k * 2 < n)
            k *= 2;
        if (m <= k) {
            rev[d++] = 'R';
            n = k;
        } else {
            rev[d++] = 'L';
            m -= k;
            n -= k;
            b = false;
        }
    }
    if (!b)
        rev[d++] = 'S';
    for (size_t i = 0; i < d; i++)
        out[i] = rev[d - 1 - i];
    out[d] = '\0';
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        char s[32];
        int n = snprintf(s, sizeof s, "entry-%zu", i);
        merkle_leaf_hash((const uint8_t *)s, (size_t)n, leaves[i]);
    }
    for (size_t n = 0; n < sizeof roots / sizeof roots[0]; n++)
        naive_mth(leaves, n, roots[n]);
    return 0;
}

static void test_hashes(void **state)
{
    (void)state;
    uint8_t out[H], want[H], a[H], b[H], buf[1 + 2 * H];

    merkle_empty_root(out);
    unit_hex(EMPTY_ROOT, want, H);
    assert_memory_equal(out, want, H);

    /* leaf = SHA-256(0x00 || data) */
    merkle_leaf_hash((const uint8_t *)"abc", 3, out);
    buf[0] = 0;
    memcpy(buf + 1, "abc", 3);
    crypto_hash_sha256(want, buf, 4);
    assert_memory_equal(out, want, H);
    merkle_leaf_hash(NULL, 0, out);
    crypto_hash_sha256(want, buf, 1);
    assert_memory_equal(out, want, H);
    assert_memory_not_equal(out, (unit_hex(EMPTY_ROOT, a, H), a), H);

    /* node = SHA-256(0x01 || left || right), output may alias an input */
    memset(a, 0xa5, H);
    memset(b, 0x5a, H);
    buf[0] = 1;
    memcpy(buf + 1, a, H);
    memcpy(buf + 1 + H, b, H);
    crypto_hash_sha256(want, buf, sizeof buf);
    merkle_node_hash(a, b, out);
    assert_memory_equal(out, want, H);
    merkle_node_hash(a, b, a);
    assert_memory_equal(a, want, H);
    memset(a, 0xa5, H);
    merkle_node_hash(a, b, b);
    assert_memory_equal(b, want, H);
}

static void test_ct_vectors(void **state)
{
    (void)state;
    uint8_t l[8][H], root[H], want[H];
    uint8_t proof[MERKLE_MAX_CONSISTENCY][H], kat[3][H];
    size_t plen;
    merkle_builder_t b;

    ct_leaf_hashes(l);
    merkle_builder_init(&b);
    for (uint64_t n = 1; n <= 8; n++) {
        unit_hex(ct_roots[n - 1], want, H);
        assert_int_equal(merkle_root(l, n, root), 0);
        assert_memory_equal(root, want, H);
        assert_int_equal(merkle_builder_add(&b, l[n - 1]), 0);
        merkle_builder_root(&b, root);
        assert_memory_equal(root, want, H);
    }
    for (size_t t = 0; t < sizeof ct_inclusion / sizeof ct_inclusion[0]; t++) {
        uint64_t idx = ct_inclusion[t].index, size = ct_inclusion[t].size;
        for (size_t i = 0; i < ct_inclusion[t].n; i++)
            unit_hex(ct_inclusion[t].proof[i], kat[i], H);
        assert_int_equal(merkle_inclusion_proof(l, size, idx, proof, MERKLE_MAX_INCLUSION, &plen), 0);
        assert_int_equal(plen, ct_inclusion[t].n);
        if (plen)
            assert_memory_equal(proof, kat, plen * H);
        unit_hex(ct_roots[size - 1], want, H);
        assert_int_equal(merkle_verify_inclusion(l[idx], idx, size, kat, plen, want), 0);
    }
    for (size_t t = 0; t < sizeof ct_consistency / sizeof ct_consistency[0]; t++) {
        uint64_t m = ct_consistency[t].old_size, n = ct_consistency[t].new_size;
        uint8_t r1[H];
        for (size_t i = 0; i < ct_consistency[t].n; i++)
            unit_hex(ct_consistency[t].proof[i], kat[i], H);
        assert_int_equal(merkle_consistency_proof(l, m, n, proof, MERKLE_MAX_CONSISTENCY, &plen), 0);
        assert_int_equal(plen, ct_consistency[t].n);
        if (plen)
            assert_memory_equal(proof, kat, plen * H);
        unit_hex(ct_roots[m - 1], r1, H);
        unit_hex(ct_roots[n - 1], want, H);
        assert_int_equal(merkle_verify_consistency(m, n, r1, want, kat, plen), 0);
    }
}

static void test_builder(void **state)
{
    (void)state;
    merkle_builder_t b, copy;
    uint8_t r1[H], r2[H];

    merkle_builder_init(&b);
    assert_int_equal(merkle_builder_size(&b), 0);
    merkle_builder_root(&b, r1);
    assert_memory_equal(r1, roots[0], H);
    assert_int_equal(merkle_root(NULL, 0, r2), 0);
    assert_memory_equal(r2, roots[0], H);
    for (uint64_t n = 1; n < sizeof roots / sizeof roots[0]; n++) {
        assert_int_equal(merkle_builder_add(&b, leaves[n - 1]), 0);
        assert_int_equal(merkle_builder_size(&b), n);
        copy = b;
        merkle_builder_root(&b, r1);
        merkle_builder_root(&b, r2); /* root() leaves the builder as it was */
        assert_memory_equal(&copy, &b, sizeof b);
        assert_memory_equal(r1, r2, H);
        assert_memory_equal(r1, roots[n], H);
        assert_int_equal(merkle_root(leaves, n, r2), 0);
        assert_memory_equal(r2, roots[n], H);
    }
    /* The stack holds one subtree per set bit of the size. */
    assert_int_equal(b.depth, __builtin_popcountll(b.size));

    /* A builder one leaf short of 2^64 leaves refuses to grow, unchanged. */
    merkle_builder_init(&b);
    b.size = UINT64_MAX;
    b.depth = 64;
    copy = b;
    assert_int_equal(merkle_builder_add(&b, leaves[0]), -1);
    assert_memory_equal(&copy, &b, sizeof b);

    assert_int_equal(merkle_root(NULL, 1, r1), -1);
}

/* Every index of every size 1..MAX_LEAVES: round trip, then every tamper fails. */
static void test_inclusion_all(void **state)
{
    (void)state;
    uint8_t proof[MERKLE_MAX_INCLUSION + 1][H], bad[MERKLE_MAX_INCLUSION + 1][H];
    uint8_t junk[H];
    size_t plen, tmp;

    memset(junk, 0x42, H);
    for (uint64_t n = 1; n <= MAX_LEAVES; n++) {
        for (uint64_t i = 0; i < n; i++) {
            size_t shape_len, other_len;
            uint64_t shape = path_shape(i, n, &shape_len);

            assert_int_equal(merkle_inclusion_proof(leaves, n, i, proof, MERKLE_MAX_INCLUSION, &plen), 0);
            assert_int_equal(plen, shape_len);
            assert_int_equal(merkle_verify_inclusion(leaves[i], i, n, proof, plen, roots[n]), 0);

            /* A too-small buffer fails cleanly. */
            if (plen > 0) {
                assert_int_equal(merkle_inclusion_proof(leaves, n, i, bad, plen - 1, &tmp), -1);
                assert_int_equal(tmp, 0);
            }
            /* Every byte of every proof node, one bit at a time (the bit varies by byte). */
            for (size_t p = 0; p < plen; p++) {
                for (size_t byte = 0; byte < H; byte++) {
                    memcpy(bad, proof, plen * H);
                    bad[p][byte] ^= (uint8_t)(1u << (byte % 8));
                    assert_int_equal(merkle_verify_inclusion(leaves[i], i, n, bad, plen, roots[n]), -1);
                }
            }
            /* Wrong leaf, wrong root. */
            assert_int_equal(merkle_verify_inclusion(leaves[i + 1], i, n, proof, plen, roots[n]), -1);
            assert_int_equal(merkle_verify_inclusion(leaves[i], i, n, proof, plen, roots[n + 1]), -1);
            assert_int_equal(merkle_verify_inclusion(leaves[i], i, n, proof, plen, junk), -1);
            /* Every other index, in range or not. */
            for (uint64_t j = 0; j < n + 3; j++) {
                if (j != i)
                    assert_int_equal(merkle_verify_inclusion(leaves[i], j, n, proof, plen, roots[n]), -1);
            }
            assert_int_equal(merkle_verify_inclusion(leaves[i], UINT64_MAX, n, proof, plen, roots[n]), -1);
            /* Every other size up to 2n+2: refused unless PATH has the very same shape there
             * (then the same hashes are computed and the root cannot tell the sizes apart). */
            for (uint64_t s = 0; s <= 2 * n + 2; s++) {
                if (s == n)
                    continue;
                bool same = false;
                if (i < s) {
                    uint64_t other = path_shape(i, s, &other_len);
                    same = other_len == shape_len && other == shape;
                }
                assert_int_equal(merkle_verify_inclusion(leaves[i], i, s, proof, plen, roots[n]), same ? 0 : -1);
            }
            /* Length changes: one node dropped, appended or prepended. */
            if (plen > 0) {
                assert_int_equal(merkle_verify_inclusion(leaves[i], i, n, proof, plen - 1, roots[n]), -1);
                memcpy(bad[0], proof[0], H);
                memcpy(bad[1], proof, plen * H);
                assert_int_equal(merkle_verify_inclusion(leaves[i], i, n, bad, plen + 1, roots[n]), -1);
            }
            memcpy(bad, proof, plen * H);
            memcpy(bad[plen], roots[n], H);
            assert_int_equal(merkle_verify_inclusion(leaves[i], i, n, bad, plen + 1, roots[n]), -1);
        }
        /* Out of range. */
        assert_int_equal(merkle_inclusion_proof(leaves, n, n, proof, MERKLE_MAX_INCLUSION, &plen), -1);
        assert_int_equal(plen, 0);
    }
    assert_int_equal(merkle_inclusion_proof(leaves, 0, 0, proof, MERKLE_MAX_INCLUSION, &plen), -1);
    assert_int_equal(merkle_verify_inclusion(roots[0], 0, 0, NULL, 0, roots[0]), -1);
    /* Size 1: the leaf is the root, the proof empty (NULL allowed). */
    assert_int_equal(merkle_inclusion_proof(leaves, 1, 0, NULL, 0, &plen), 0);
    assert_int_equal(plen, 0);
    assert_int_equal(merkle_verify_inclusion(leaves[0], 0, 1, NULL, 0, leaves[0]), 0);
}

/* Every pair 0 <= m <= n <= MAX_LEAVES: round trip, then tampering fails. */
static void test_consistency_all(void **state)
{
    (void)state;
    uint8_t proof[MERKLE_MAX_CONSISTENCY + 1][H], bad[MERKLE_MAX_CONSISTENCY + 1][H];
    size_t plen, tmp;

    for (uint64_t n = 0; n <= MAX_LEAVES; n++) {
        for (uint64_t m = 0; m <= n; m++) {
            char shape[130], other[130];

            assert_int_equal(merkle_consistency_proof(leaves, m, n, proof, MERKLE_MAX_CONSISTENCY, &plen), 0);
            assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n], proof, plen), 0);
            if (m == 0 || m == n) {
                assert_int_equal(plen, 0);
                continue;
            }
            consistency_shape(m, n, shape);
            assert_int_equal(plen, strlen(shape));
            assert_true(plen <= MERKLE_MAX_INCLUSION + 1);
            if (plen > 0) {
                assert_int_equal(merkle_consistency_proof(leaves, m, n, bad, plen - 1, &tmp), -1);
                assert_int_equal(tmp, 0);
            }
            /* Every byte of every node. */
            for (size_t p = 0; p < plen; p++) {
                for (size_t byte = 0; byte < H; byte++) {
                    memcpy(bad, proof, plen * H);
                    bad[p][byte] ^= (uint8_t)(1u << (byte % 8));
                    assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n], bad, plen), -1);
                }
            }
            /* Wrong or swapped roots. */
            assert_int_equal(merkle_verify_consistency(m, n, roots[m - 1], roots[n], proof, plen), -1);
            assert_int_equal(merkle_verify_consistency(m, n, roots[m + 1], roots[n], proof, plen), -1);
            assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n + 1], proof, plen), -1);
            assert_int_equal(merkle_verify_consistency(m, n, roots[n], roots[m], proof, plen), -1);
            /* Shrinking is never consistent; equal sizes need an empty proof. */
            assert_int_equal(merkle_verify_consistency(n, m, roots[n], roots[m], proof, plen), -1);
            assert_int_equal(merkle_verify_consistency(n, m, roots[n], roots[m], NULL, 0), -1);
            assert_int_equal(merkle_verify_consistency(m, m, roots[m], roots[m], proof, plen), -1);
            /* Length changes. */
            assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n], proof, 0), -1);
            assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n], proof, plen - 1), -1);
            assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n], proof + 1, plen - 1), -1);
            memcpy(bad, proof, plen * H);
            memcpy(bad[plen], roots[n], H);
            assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n], bad, plen + 1), -1);
            memcpy(bad[0], roots[m], H);
            memcpy(bad[1], proof, plen * H);
            assert_int_equal(merkle_verify_consistency(m, n, roots[m], roots[n], bad, plen + 1), -1);
            /* Other sizes near these: refused unless SUBPROOF has the same shape there. */
            const uint64_t ms[] = {m - 1, m + 1, m ^ 1u, m ^ 2u, 2 * m, m / 2, m};
            const uint64_t ns[] = {n - 1, n + 1, n ^ 1u, n ^ 2u, 2 * n, n / 2, n};
            for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++) {
                for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
                    uint64_t m2 = ms[a], n2 = ns[c];
                    bool same = false;
                    if (m2 == m && n2 == n)
                        continue;
                    if (m2 > 0 && m2 < n2) {
                        consistency_shape(m2, n2, other);
                        same = strcmp(other, shape) == 0;
                    }
                    assert_int_equal(merkle_verify_consistency(m2, n2, roots[m], roots[n], proof, plen),
                                     same ? 0 : -1);
                }
            }
        }
    }
    /* Edge cases outside the RFC's 0 < m < n. */
    uint8_t junk[H];
    memset(junk, 7, H);
    assert_int_equal(merkle_verify_consistency(0, 0, roots[0], roots[0], NULL, 0), 0);
    assert_int_equal(merkle_verify_consistency(0, 5, roots[0], roots[5], NULL, 0), 0);
    assert_int_equal(merkle_verify_consistency(0, 5, roots[0], junk, NULL, 0), 0); /* nothing to bind to */
    assert_int_equal(merkle_verify_consistency(0, 5, junk, roots[5], NULL, 0), -1);
    assert_int_equal(merkle_verify_consistency(0, 0, junk, junk, NULL, 0), -1);
    assert_int_equal(merkle_verify_consistency(0, 5, roots[0], roots[5], (const uint8_t(*)[H])roots, 1), -1);
    assert_int_equal(merkle_verify_consistency(5, 5, roots[5], roots[5], NULL, 0), 0);
    assert_int_equal(merkle_verify_consistency(5, 5, roots[5], roots[4], NULL, 0), -1);
    assert_int_equal(merkle_verify_consistency(6, 5, roots[6], roots[5], NULL, 0), -1);
    assert_int_equal(merkle_consistency_proof(leaves, 6, 5, proof, MERKLE_MAX_CONSISTENCY, &plen), -1);
    assert_int_equal(plen, 0);
    assert_int_equal(merkle_consistency_proof(NULL, 0, 0, NULL, 0, &plen), 0);
    assert_int_equal(plen, 0);
    assert_int_equal(merkle_consistency_proof(NULL, 1, 2, proof, MERKLE_MAX_CONSISTENCY, &plen), -1);
}

/* Sizes near 2^64 are handled without overflow or out-of-bounds reads. */
static void test_huge_sizes(void **state)
{
    (void)state;
    uint8_t proof[MERKLE_MAX_CONSISTENCY][H];

    memset(proof, 0x11, sizeof proof);
    for (size_t plen = 0; plen <= MERKLE_MAX_CONSISTENCY; plen++) {
        assert_int_equal(merkle_verify_inclusion(leaves[0], UINT64_MAX - 1, UINT64_MAX, proof, plen, roots[1]), -1);
        assert_int_equal(merkle_verify_inclusion(leaves[0], 0, UINT64_MAX, proof, plen, roots[1]), -1);
        assert_int_equal(merkle_verify_inclusion(leaves[0], (uint64_t)1 << 63, UINT64_MAX, proof, plen, roots[1]), -1);
        assert_int_equal(merkle_verify_consistency(1, UINT64_MAX, roots[1], roots[2], proof, plen), -1);
        assert_int_equal(merkle_verify_consistency(UINT64_MAX - 1, UINT64_MAX, roots[1], roots[2], proof, plen), -1);
        assert_int_equal(merkle_verify_consistency((uint64_t)1 << 63, UINT64_MAX, roots[1], roots[2], proof, plen), -1);
        assert_int_equal(
            merkle_verify_consistency(((uint64_t)1 << 63) + 1, UINT64_MAX, roots[1], roots[2], proof, plen), -1);
    }
}

/* An oracle that knows the perfect aligned subtrees of at least 4 leaves (and counts
 * its uses): every *_o function must give exactly what its plain counterpart gives. */
static unsigned oracle_hits;
static bool test_oracle(void *ctx, uint64_t lo, uint64_t size, uint8_t out[static H])
{
    (void)ctx;
    if (size < 4 || (size & (size - 1)) != 0 || lo % size != 0)
        return false;
    naive_mth((const uint8_t(*)[H])leaves + lo, size, out);
    oracle_hits++;
    return true;
}

static void test_oracle_same_results(void **state)
{
    (void)state;
    merkle_oracle_t o = {.perfect = test_oracle, .ctx = NULL};
    for (uint64_t n = 0; n <= 70; n++) {
        uint8_t r1[H], r2[H];
        assert_int_equal(merkle_root_o((const uint8_t(*)[H])leaves, &o, n, r1), 0);
        assert_int_equal(merkle_root((const uint8_t(*)[H])leaves, n, r2), 0);
        assert_memory_equal(r1, r2, H);
        for (uint64_t i = 0; i < n; i++) {
            uint8_t p1[MERKLE_MAX_INCLUSION][H], p2[MERKLE_MAX_INCLUSION][H];
            size_t l1 = 0, l2 = 0;
            assert_int_equal(merkle_inclusion_proof_o((const uint8_t(*)[H])leaves, &o, n, i, p1, MERKLE_MAX_INCLUSION,
                                                      &l1), 0);
            assert_int_equal(merkle_inclusion_proof((const uint8_t(*)[H])leaves, n, i, p2, MERKLE_MAX_INCLUSION, &l2), 0);
            assert_int_equal(l1, l2);
            assert_memory_equal(p1, p2, l1 * H);
        }
        for (uint64_t m = 0; m <= n; m++) {
            uint8_t p1[MERKLE_MAX_CONSISTENCY][H], p2[MERKLE_MAX_CONSISTENCY][H];
            size_t l1 = 0, l2 = 0;
            assert_int_equal(merkle_consistency_proof_o((const uint8_t(*)[H])leaves, &o, m, n, p1,
                                                        MERKLE_MAX_CONSISTENCY, &l1), 0);
            assert_int_equal(merkle_consistency_proof((const uint8_t(*)[H])leaves, m, n, p2, MERKLE_MAX_CONSISTENCY,
                                                      &l2), 0);
            assert_int_equal(l1, l2);
            assert_memory_equal(p1, p2, l1 * H);
        }
    }
    assert_true(oracle_hits > 1000);
}

/* merkle_levels / merkle_levels_path (every proof of a batch in O(n)) against the
 * reference functions, and merkle_inclusion_root against merkle_verify_inclusion. */
static void test_levels(void **state)
{
    (void)state;
    static uint8_t levels[4 * MAX_LEAVES + 4][H];
    uint8_t proof[MERKLE_MAX_INCLUSION][H], root[H];
    for (size_t n = 1; n <= MAX_LEAVES; n++) {
        size_t count = merkle_levels_count(n);
        assert_true(count <= 2 * n + 7);
        merkle_levels(leaves, n, levels);
        assert_memory_equal(levels[count - 1], roots[n], H);
        for (size_t i = 0; i < n; i++) {
            const uint8_t *path[MERKLE_MAX_INCLUSION];
            size_t plen = 0, got = merkle_levels_path(levels, n, i, path);
            assert_int_equal(merkle_inclusion_proof(leaves, n, i, proof, MERKLE_MAX_INCLUSION, &plen), 0);
            assert_int_equal(got, plen);
            for (size_t j = 0; j < plen; j++)
                assert_memory_equal(path[j], proof[j], H);
            assert_int_equal(merkle_inclusion_root(leaves[i], i, n, proof, plen, root), 0);
            assert_memory_equal(root, roots[n], H);
            if (plen > 0)
                assert_int_equal(merkle_inclusion_root(leaves[i], i, n, proof, plen - 1, root), -1);
            assert_int_equal(merkle_inclusion_root(leaves[i], n, n, proof, plen, root), -1);
        }
    }
    /* In place: levels may begin at the leaves. */
    memcpy(levels, leaves, 5 * H);
    merkle_levels((const uint8_t(*)[H])levels, 5, levels);
    assert_memory_equal(levels[merkle_levels_count(5) - 1], roots[5], H);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hashes),
        cmocka_unit_test(test_ct_vectors),
        cmocka_unit_test(test_builder),
        cmocka_unit_test(test_inclusion_all),
        cmocka_unit_test(test_consistency_all),
        cmocka_unit_test(test_huge_sizes),
        cmocka_unit_test(test_oracle_same_results),
        cmocka_unit_test(test_levels),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
