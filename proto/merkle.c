/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the audit log's RFC 6962 / RFC 9162 Merkle tree: leaf and node hashes, the incremental
 * builder, roots, and inclusion and consistency proofs with their verification. */
#include "merkle.h"

#include <stdbool.h>
#include <string.h>
#include <sodium.h>

_Static_assert(MERKLE_HASH_BYTES == crypto_hash_sha256_BYTES, "RFC 6962 trees use SHA-256");

/* Number of significant bits of x (0 for 0). */
static unsigned bit_length(uint64_t x)
{
    unsigned n = 0;
    while (x != 0) {
        n++;
        x >>= 1;
    }
    return n;
}

static unsigned popcount(uint64_t x)
{
    unsigned n = 0;
    while (x != 0) {
        n += (unsigned)(x & 1u);
        x >>= 1;
    }
    return n;
}

static bool is_power_of_two(uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* The largest power of two strictly smaller than n; n >= 2. The RFC's split point k. */
static uint64_t split_point(uint64_t n)
{
    return (uint64_t)1 << (bit_length(n - 1) - 1);
}

void merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[static MERKLE_HASH_BYTES])
{
    static const uint8_t prefix = 0x00;
    crypto_hash_sha256_state st;

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &prefix, 1);
    if (len > 0)
        crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, out);
}

void merkle_node_hash(const uint8_t left[static MERKLE_HASH_BYTES], const uint8_t right[static MERKLE_HASH_BYTES],
                      uint8_t out[static MERKLE_HASH_BYTES])
{
    uint8_t buf[1 + 2 * MERKLE_HASH_BYTES];

    /* Copied first, so out may alias either input. */
    buf[0] = 0x01;
    memcpy(buf + 1, left, MERKLE_HASH_BYTES);
    memcpy(buf + 1 + MERKLE_HASH_BYTES, right, MERKLE_HASH_BYTES);
    crypto_hash_sha256(out, buf, sizeof buf);
}

void merkle_empty_root(uint8_t out[static MERKLE_HASH_BYTES])
{
    static const uint8_t nothing[1] = {0};
    crypto_hash_sha256(out, nothing, 0);
}

void merkle_builder_init(merkle_builder_t *b)
{
    memset(b, 0, sizeof *b);
}

int merkle_builder_add(merkle_builder_t *b, const uint8_t leaf_hash[static MERKLE_HASH_BYTES])
{
    int rc = -1;

    /* size < UINT64_MAX has at most 63 set bits, so the push below fits in the stack. */
    if (b->size == UINT64_MAX)
        goto out;
    memcpy(b->stack[b->depth], leaf_hash, MERKLE_HASH_BYTES);
    b->depth++;
    /* Each trailing one bit of the old size is a perfect subtree as large as the one just
     * completed: merge them pairwise, as binary addition carries. */
    for (uint64_t carry = b->size; carry & 1u; carry >>= 1) {
        merkle_node_hash(b->stack[b->depth - 2], b->stack[b->depth - 1], b->stack[b->depth - 2]);
        b->depth--;
    }
    b->size++;
    rc = 0;
out:
    return rc;
}

void merkle_builder_root(const merkle_builder_t *b, uint8_t out[static MERKLE_HASH_BYTES])
{
    uint8_t r[MERKLE_HASH_BYTES];

    if (b->depth == 0) {
        merkle_empty_root(out);
    } else {
        /* MTH splits at the largest power of two, so the root folds the perfect subtrees
         * right to left: node(s0, node(s1, ... node(s_{d-2}, s_{d-1}))). */
        memcpy(r, b->stack[b->depth - 1], MERKLE_HASH_BYTES);
        for (unsigned i = b->depth - 1; i-- > 0;)
            merkle_node_hash(b->stack[i], r, r);
        memcpy(out, r, MERKLE_HASH_BYTES);
    }
}

uint64_t merkle_builder_size(const merkle_builder_t *b)
{
    return b->size;
}

/* out = MTH(leaves[lo..hi)), lo <= hi. Without an oracle: one left-to-right pass. With
 * one: the right spine of the range is walked (at most 64 levels) and each perfect
 * left part is asked of the oracle first; a part it does not know is hashed from the
 * leaves. Returns 0, or -1 if such a part is needed and leaves is NULL. */
static int subtree_root(const uint8_t (*leaves)[MERKLE_HASH_BYTES], const merkle_oracle_t *o, uint64_t lo,
                        uint64_t hi, uint8_t out[static MERKLE_HASH_BYTES])
{
    if (o && o->perfect) {
        uint8_t parts[MERKLE_MAX_DEPTH + 1][MERKLE_HASH_BYTES];
        unsigned np = 0;
        /* MTH(D[lo:hi)) = node(MTH(perfect left part of size k), MTH(rest)): collect the
         * perfect parts left to right, then fold them right to left. */
        while (hi - lo > 0) {
            uint64_t size = hi - lo, k = is_power_of_two(size) ? size : split_point(size);
            if (!o->perfect(o->ctx, lo, k, parts[np]) && subtree_root(leaves, NULL, lo, lo + k, parts[np]) != 0)
                return -1;
            np++;
            lo += k;
        }
        if (np == 0) {
            merkle_empty_root(out);
            return 0;
        }
        memcpy(out, parts[np - 1], MERKLE_HASH_BYTES);
        for (unsigned i = np - 1; i-- > 0;)
            merkle_node_hash(parts[i], out, out);
        return 0;
    }
    if (!leaves && hi > lo)
        return -1;
    merkle_builder_t b;

    merkle_builder_init(&b);
    for (uint64_t i = lo; i < hi; i++) {
        /* Cannot fail: at most hi - lo < 2^64 leaves. */
        if (merkle_builder_add(&b, leaves[i]) != 0)
            break;
    }
    merkle_builder_root(&b, out);
    return 0;
}

int merkle_root_o(const uint8_t (*leaves)[MERKLE_HASH_BYTES], const merkle_oracle_t *o, uint64_t n,
                  uint8_t out[static MERKLE_HASH_BYTES])
{
    int rc = -1;

    if (!leaves && !o && n > 0)
        goto out;
    rc = subtree_root(leaves, o, 0, n, out);
out:
    return rc;
}

int merkle_root(const uint8_t (*leaves)[MERKLE_HASH_BYTES], uint64_t n, uint8_t out[static MERKLE_HASH_BYTES])
{
    return merkle_root_o(leaves, NULL, n, out);
}

/* Writes the nodes collected top-down in tmp[0..count) to proof bottom-up. */
static int emit_reversed(uint8_t (*tmp)[MERKLE_HASH_BYTES], size_t count, uint8_t (*proof)[MERKLE_HASH_BYTES],
                         size_t cap, size_t *plen)
{
    int rc = -1;

    if (count > cap)
        goto out;
    for (size_t i = 0; i < count; i++)
        memcpy(proof[i], tmp[count - 1 - i], MERKLE_HASH_BYTES);
    *plen = count;
    rc = 0;
out:
    return rc;
}

int merkle_inclusion_proof(const uint8_t (*leaves)[MERKLE_HASH_BYTES], uint64_t n, uint64_t index,
                           uint8_t (*proof)[MERKLE_HASH_BYTES], size_t cap, size_t *plen)
{
    return merkle_inclusion_proof_o(leaves, NULL, n, index, proof, cap, plen);
}

int merkle_inclusion_proof_o(const uint8_t (*leaves)[MERKLE_HASH_BYTES], const merkle_oracle_t *o, uint64_t n,
                             uint64_t index, uint8_t (*proof)[MERKLE_HASH_BYTES], size_t cap, size_t *plen)
{
    int rc = -1;
    uint8_t tmp[MERKLE_MAX_INCLUSION][MERKLE_HASH_BYTES];
    size_t count = 0;
    uint64_t lo = 0, hi = n;

    if (!plen)
        goto out;
    *plen = 0;
    if ((!leaves && !o) || (!proof && cap > 0) || index >= n)
        goto out;
    /* PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k,
     *               = PATH(m - k, D[k:n]) : MTH(D[0:k]) otherwise.
     * Walking down from the root collects the siblings top-down; at most 64 levels. */
    while (hi - lo > 1) {
        uint64_t k = split_point(hi - lo);
        if (index < lo + k) {
            if (subtree_root(leaves, o, lo + k, hi, tmp[count]) != 0)
                goto out;
            hi = lo + k;
        } else {
            if (subtree_root(leaves, o, lo, lo + k, tmp[count]) != 0)
                goto out;
            lo += k;
        }
        count++;
    }
    rc = emit_reversed(tmp, count, proof, cap, plen);
out:
    return rc;
}

int merkle_consistency_proof(const uint8_t (*leaves)[MERKLE_HASH_BYTES], uint64_t old_size, uint64_t new_size,
                             uint8_t (*proof)[MERKLE_HASH_BYTES], size_t cap, size_t *plen)
{
    return merkle_consistency_proof_o(leaves, NULL, old_size, new_size, proof, cap, plen);
}

int merkle_consistency_proof_o(const uint8_t (*leaves)[MERKLE_HASH_BYTES], const merkle_oracle_t *o,
                               uint64_t old_size, uint64_t new_size, uint8_t (*proof)[MERKLE_HASH_BYTES], size_t cap,
                               size_t *plen)
{
    int rc = -1;
    uint8_t tmp[MERKLE_MAX_INCLUSION + 1][MERKLE_HASH_BYTES];
    size_t count = 0;
    uint64_t m = old_size, lo = 0, hi = new_size;
    bool b = true;

    if (!plen)
        goto out;
    *plen = 0;
    if ((!proof && cap > 0) || old_size > new_size || (!leaves && !o && new_size > 0))
        goto out;
    if (old_size == 0 || old_size == new_size) {
        rc = 0;
        goto out;
    }
    /* SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])          for m <= k,
     *                      = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])  for m > k,
     * SUBPROOF(m, D[m], true) = {}, SUBPROOF(m, D[m], false) = {MTH(D[m])}.
     * m stays in 1..hi-lo and hi-lo shrinks each step: at most 64 steps plus the base. */
    while (m != hi - lo) {
        uint64_t k = split_point(hi - lo);
        if (m <= k) {
            if (subtree_root(leaves, o, lo + k, hi, tmp[count]) != 0)
                goto out;
            hi = lo + k;
        } else {
            if (subtree_root(leaves, o, lo, lo + k, tmp[count]) != 0)
                goto out;
            m -= k;
            lo += k;
            b = false;
        }
        count++;
    }
    if (!b) {
        if (subtree_root(leaves, o, lo, hi, tmp[count]) != 0)
            goto out;
        count++;
    }
    rc = emit_reversed(tmp, count, proof, cap, plen);
out:
    return rc;
}

int merkle_inclusion_root(const uint8_t leaf[static MERKLE_HASH_BYTES], uint64_t index, uint64_t size,
                          const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t plen,
                          uint8_t out[static MERKLE_HASH_BYTES])
{
    int rc = -1;
    uint8_t r[MERKLE_HASH_BYTES];
    uint64_t fn, sn;
    unsigned inner, border;

    /* 1. leaf_index >= tree_size fails. */
    if (index >= size || (!proof && plen > 0))
        goto out;
    /* Exact length first (transparency-dev/merkle's decomposition): the levels below the
     * point where the paths to index and size-1 diverge, plus the left siblings above it. */
    inner = bit_length(index ^ (size - 1));
    border = inner < 64 ? popcount(index >> inner) : 0; /* a 64-bit shift is undefined */
    if (plen != (size_t)inner + border)
        goto out;
    /* 2.-3. */
    fn = index;
    sn = size - 1;
    memcpy(r, leaf, MERKLE_HASH_BYTES);
    /* 4. */
    for (size_t i = 0; i < plen; i++) {
        if (sn == 0) /* a. */
            goto out;
        if ((fn & 1u) || fn == sn) { /* b. */
            merkle_node_hash(proof[i], r, r);
            /* ii. fn == sn here, and sn != 0, so fn != 0 and the loop shifts at least once. */
            if (!(fn & 1u)) {
                while (!(fn & 1u) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            merkle_node_hash(r, proof[i], r);
        }
        fn >>= 1; /* c. */
        sn >>= 1;
    }
    /* 5. */
    if (sn != 0)
        goto out;
    memcpy(out, r, MERKLE_HASH_BYTES);
    rc = 0;
out:
    return rc;
}

int merkle_verify_inclusion(const uint8_t leaf[static MERKLE_HASH_BYTES], uint64_t index, uint64_t size,
                            const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t plen,
                            const uint8_t root[static MERKLE_HASH_BYTES])
{
    uint8_t r[MERKLE_HASH_BYTES];
    if (merkle_inclusion_root(leaf, index, size, proof, plen, r) != 0)
        return -1;
    return sodium_memcmp(r, root, MERKLE_HASH_BYTES) == 0 ? 0 : -1;
}

void merkle_levels(const uint8_t (*leaves)[MERKLE_HASH_BYTES], size_t n, uint8_t (*levels)[MERKLE_HASH_BYTES])
{
    /* Level 0 is the leaves; each level above pairs neighbours left to right and carries
     * an odd last node up unchanged, which is the tree MTH defines (the largest power of
     * two on the left at every split). */
    if (n == 0)
        return;
    memmove(levels, leaves, n * MERKLE_HASH_BYTES);
    size_t base = 0;
    for (size_t len = n; len > 1; len = (len + 1) / 2) {
        size_t up = base + len;
        for (size_t j = 0; j + 1 < len; j += 2)
            merkle_node_hash(levels[base + j], levels[base + j + 1], levels[up + j / 2]);
        if (len & 1u)
            memcpy(levels[up + len / 2], levels[base + len - 1], MERKLE_HASH_BYTES);
        base = up;
    }
}

size_t merkle_levels_path(const uint8_t (*levels)[MERKLE_HASH_BYTES], size_t n, size_t index,
                          const uint8_t *path[MERKLE_MAX_INCLUSION])
{
    size_t plen = 0, base = 0;
    for (size_t len = n; len > 1; len = (len + 1) / 2) {
        size_t sib = index ^ 1u;
        if (sib < len)
            path[plen++] = levels[base + sib];
        index >>= 1;
        base += len;
    }
    return plen;
}

int merkle_verify_consistency(uint64_t old_size, uint64_t new_size, const uint8_t old_root[static MERKLE_HASH_BYTES],
                              const uint8_t new_root[static MERKLE_HASH_BYTES],
                              const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t plen)
{
    int rc = -1;
    uint8_t fr[MERKLE_HASH_BYTES], sr[MERKLE_HASH_BYTES], empty[MERKLE_HASH_BYTES];
    uint64_t fn, sn;
    unsigned shift, inner, border;
    size_t start;

    if (old_size > new_size || (!proof && plen > 0))
        goto out;
    if (old_size == 0 || old_size == new_size) {
        merkle_empty_root(empty);
        if (plen != 0 || (old_size == 0 && sodium_memcmp(old_root, empty, MERKLE_HASH_BYTES) != 0) ||
            (old_size == new_size && sodium_memcmp(old_root, new_root, MERKLE_HASH_BYTES) != 0))
            goto out;
        rc = 0;
        goto out;
    }
    /* 0 < old_size < new_size. Exact length first: the inclusion path of leaf old_size-1 in
     * the new tree without its lowest `shift` levels (they lie inside a subtree both trees
     * share), preceded by that subtree's root unless it is the whole old tree (step 2). */
    shift = 0;
    while (!((old_size >> shift) & 1u))
        shift++;
    inner = bit_length((old_size - 1) ^ (new_size - 1));
    border = inner < 64 ? popcount((old_size - 1) >> inner) : 0;
    start = is_power_of_two(old_size) ? 0 : 1;
    if (plen != start + (size_t)(inner - shift) + border)
        goto out;
    /* 1. An empty path fails (the count above is never 0 here; kept as the RFC says). */
    if (plen == 0)
        goto out;
    /* 2. and 5.: when old_size is a power of two the RFC prepends old_root to the path; the
     * seed is then old_root and the path is used from its first element. */
    memcpy(fr, start ? proof[0] : old_root, MERKLE_HASH_BYTES);
    memcpy(sr, fr, MERKLE_HASH_BYTES);
    /* 3.-4. */
    fn = old_size - 1;
    sn = new_size - 1;
    while (fn & 1u) {
        fn >>= 1;
        sn >>= 1;
    }
    /* 6. for each subsequent value c */
    for (size_t i = start; i < plen; i++) {
        const uint8_t *c = proof[i];
        if (sn == 0) /* a. */
            goto out;
        if ((fn & 1u) || fn == sn) { /* b. */
            merkle_node_hash(c, fr, fr);
            merkle_node_hash(c, sr, sr);
            if (!(fn & 1u)) { /* iii. fn == sn != 0 here, so this shifts at least once. */
                while (!(fn & 1u) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            merkle_node_hash(sr, c, sr);
        }
        fn >>= 1; /* c. */
        sn >>= 1;
    }
    /* 7. */
    if (sn != 0 || sodium_memcmp(fr, old_root, MERKLE_HASH_BYTES) != 0 ||
        sodium_memcmp(sr, new_root, MERKLE_HASH_BYTES) != 0)
        goto out;
    rc = 0;
out:
    return rc;
}
