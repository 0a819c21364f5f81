/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log's Merkle tree: RFC 6962 / RFC 9162 section 2.1 hashing with SHA-256, roots,
 * inclusion and consistency proofs. Pure functions: no I/O, no allocation, no printing. */
#ifndef LIAISON_MERKLE_H
#define LIAISON_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"

/*
 * Hashes (RFC 9162 section 2.1.1), with H = SHA-256:
 *   MTH({})        = H("")
 *   leaf hash      = H(0x00 || leaf bytes)
 *   node hash      = H(0x01 || left || right)
 *   MTH(D[n]), n>1 = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n.
 * The standard hash makes CT / tlog tooling and test vectors apply to our log; keep
 * BLAKE2b (domains.h) for the keyed and chained uses.
 *
 * Leaves are passed to the tree functions already hashed (merkle_leaf_hash), so a caller
 * that streams rows from disk need not keep the rows.
 */
#define MERKLE_HASH_BYTES 32u

/* Stack depth of the builder: one perfect subtree per set bit of a 64-bit size. */
#define MERKLE_MAX_DEPTH 64u

/* Longest inclusion proof: ceil(log2(size)) <= 64 hashes. */
#define MERKLE_MAX_INCLUSION 64u

/* Capacity that always holds a consistency proof. The true maximum for 64-bit sizes is 65
 * (ceil(log2(new_size)) + 1); 128 leaves room and is what callers should allocate. */
#define MERKLE_MAX_CONSISTENCY 128u

/* out = SHA-256(0x00 || data[0..len)). data may be NULL when len is 0. Cannot fail. */
void merkle_leaf_hash(const uint8_t *data, size_t len, uint8_t out[static MERKLE_HASH_BYTES]);

/* out = SHA-256(0x01 || left || right). out may alias left or right. Cannot fail. */
void merkle_node_hash(const uint8_t left[static MERKLE_HASH_BYTES], const uint8_t right[static MERKLE_HASH_BYTES],
                      uint8_t out[static MERKLE_HASH_BYTES]);

/* out = MTH({}) = SHA-256(""), the root of the empty tree. Cannot fail. */
void merkle_empty_root(uint8_t out[static MERKLE_HASH_BYTES]);

/*
 * Incremental tree builder: one O(n) left-to-right pass over the leaf hashes with O(log n)
 * memory, giving the root after any prefix. An auditor feeds every recomputed leaf and
 * compares merkle_builder_root with each checkpoint's root when the size reaches the
 * checkpoint's size. Plain value type (about 2 KiB): no destroy function, copy freely.
 *
 * stack[0..depth) holds the roots of the perfect subtrees that make up the tree, left
 * (largest) to right (smallest); their sizes are the set bits of size, high to low.
 */
typedef struct merkle_builder {
    uint64_t size;
    unsigned depth;
    uint8_t stack[MERKLE_MAX_DEPTH][MERKLE_HASH_BYTES];
} merkle_builder_t;

/* Empties b. Cannot fail. */
void merkle_builder_init(merkle_builder_t *b);

/* Appends one leaf hash (from merkle_leaf_hash). Returns 0, or -1 and leaves b unchanged if
 * b already holds UINT64_MAX leaves (the size would not fit). That cannot happen to a real
 * log (2^64 entries), so callers may ignore the result; hence no warn_unused_result. */
int merkle_builder_add(merkle_builder_t *b, const uint8_t leaf_hash[static MERKLE_HASH_BYTES]);

/* The root of the leaves added so far (MTH({}) for none). b is not changed, so adding may
 * continue afterwards. Cannot fail. */
void merkle_builder_root(const merkle_builder_t *b, uint8_t out[static MERKLE_HASH_BYTES]);

/* The number of leaves added so far. */
uint64_t merkle_builder_size(const merkle_builder_t *b);

/*
 * An optional source of precomputed subtree hashes, so that the owner of a long, growing
 * log pays O(log n) per root or proof instead of rehashing every leaf. perfect() is asked
 * for MTH(D[lo:lo+size)) of perfect, aligned subtrees (size a power of two, lo a multiple
 * of size); it returns true and fills out if it knows it, false to let the tree functions
 * hash the leaves. Every *_o function below takes one (or NULL) and returns exactly what
 * its plain counterpart does. With an oracle, leaves may be NULL: the functions then ask
 * it for every subtree they need, down to single leaves (size 1), and fail (-1) if it
 * does not know one; an oracle can so serve a log whose leaves are not all in memory.
 */
typedef struct merkle_oracle {
    bool (*perfect)(void *ctx, uint64_t lo, uint64_t size, uint8_t out[static MERKLE_HASH_BYTES]);
    void *ctx;
} merkle_oracle_t;

__attribute__((warn_unused_result))
int merkle_root_o(const uint8_t (*leaves)[MERKLE_HASH_BYTES], const merkle_oracle_t *o, uint64_t n,
                  uint8_t out[static MERKLE_HASH_BYTES]);
__attribute__((warn_unused_result))
int merkle_inclusion_proof_o(const uint8_t (*leaves)[MERKLE_HASH_BYTES], const merkle_oracle_t *o, uint64_t n,
                             uint64_t index, uint8_t (*proof)[MERKLE_HASH_BYTES], size_t cap, size_t *plen);
__attribute__((warn_unused_result))
int merkle_consistency_proof_o(const uint8_t (*leaves)[MERKLE_HASH_BYTES], const merkle_oracle_t *o,
                               uint64_t old_size, uint64_t new_size, uint8_t (*proof)[MERKLE_HASH_BYTES], size_t cap,
                               size_t *plen);

/* out = MTH(leaves[0..n)). leaves may be NULL when n is 0. Returns 0, or -1 (out untouched)
 * if leaves is NULL with n > 0. */
__attribute__((warn_unused_result))
int merkle_root(const uint8_t (*leaves)[MERKLE_HASH_BYTES], uint64_t n, uint8_t out[static MERKLE_HASH_BYTES]);

/*
 * The inclusion proof PATH(index, D[n]) of RFC 9162 section 2.1.3.1, ordered from the leaf's
 * sibling up to the child of the root: the input of merkle_verify_inclusion. Writes *plen
 * hashes to proof[0..*plen) (zero for n == 1). O(n) hashing.
 * proof may be NULL when cap is 0.
 * Returns 0, or -1 with *plen = 0 if index >= n, leaves is NULL, or the proof would not fit
 * in cap hashes (MERKLE_MAX_INCLUSION always suffices).
 */
__attribute__((warn_unused_result))
int merkle_inclusion_proof(const uint8_t (*leaves)[MERKLE_HASH_BYTES], uint64_t n, uint64_t index,
                           uint8_t (*proof)[MERKLE_HASH_BYTES], size_t cap, size_t *plen);

/*
 * Checks that leaf (a leaf hash) is entry index of the tree of the given size whose root is
 * root, by the algorithm of RFC 9162 section 2.1.3.2. The proof must have exactly the length
 * PATH has for (index, size); longer or shorter proofs are refused before any hashing.
 * Returns 0 if the proof is valid, -1 if not (index >= size, wrong length, NULL arguments,
 * or a different root).
 */
__attribute__((warn_unused_result))
int merkle_verify_inclusion(const uint8_t leaf[static MERKLE_HASH_BYTES], uint64_t index, uint64_t size,
                            const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t plen,
                            const uint8_t root[static MERKLE_HASH_BYTES]);

/* The root that proof (PATH(index, D[size]), as merkle_verify_inclusion takes it) leads to
 * from leaf. Returns 0 with the root in out, or -1 (out untouched) if index >= size, the
 * proof's length is not the one PATH has for (index, size), or proof is NULL with plen > 0. */
__attribute__((warn_unused_result))
int merkle_inclusion_root(const uint8_t leaf[static MERKLE_HASH_BYTES], uint64_t index, uint64_t size,
                          const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t plen,
                          uint8_t out[static MERKLE_HASH_BYTES]);

/* Number of hashes merkle_levels writes for n leaves: at most 2n + log2(n). */
static inline size_t merkle_levels_count(size_t n)
{
    size_t total = 0;
    for (size_t len = n; len > 1; len = (len + 1) / 2)
        total += len;
    return total + (n > 0);
}

/* Every level of the tree over leaves[0..n) (n > 0) in one pass, O(n) hashing, for a
 * caller that wants the root and every leaf's proof: level 0 (the leaves) first, the
 * root last (levels[merkle_levels_count(n) - 1]). levels holds merkle_levels_count(n)
 * hashes and may begin at leaves. */
void merkle_levels(const uint8_t (*leaves)[MERKLE_HASH_BYTES], size_t n, uint8_t (*levels)[MERKLE_HASH_BYTES]);

/* PATH(index, D[n]) read from merkle_levels' output: points path[0..return) at the
 * hashes, leaf's sibling first, as merkle_inclusion_proof writes them. index < n. */
size_t merkle_levels_path(const uint8_t (*levels)[MERKLE_HASH_BYTES], size_t n, size_t index,
                          const uint8_t *path[MERKLE_MAX_INCLUSION]);

/*
 * The consistency proof PROOF(old_size, D[new_size]) of RFC 9162 section 2.1.4.1 over
 * leaves[0..new_size), ordered as the RFC builds it (the input of merkle_verify_consistency).
 * The RFC defines the proof for 0 < old_size < new_size; for old_size == 0 or
 * old_size == new_size the proof is empty (*plen = 0), as in the CT and tlog tooling.
 * proof may be NULL when cap is 0.
 * Returns 0, or -1 with *plen = 0 if old_size > new_size, leaves is NULL (with new_size > 0),
 * or the proof would not fit in cap hashes (MERKLE_MAX_CONSISTENCY always suffices).
 */
__attribute__((warn_unused_result))
int merkle_consistency_proof(const uint8_t (*leaves)[MERKLE_HASH_BYTES], uint64_t old_size, uint64_t new_size,
                             uint8_t (*proof)[MERKLE_HASH_BYTES], size_t cap, size_t *plen);

/*
 * Checks that the tree of new_size leaves with root new_root extends the tree of old_size
 * leaves with root old_root (append-only), by the algorithm of RFC 9162 section 2.1.4.2
 * for 0 < old_size < new_size, with the proof length checked exactly before any hashing.
 * Outside the RFC's range (it defines no proof there):
 *   old_size > new_size    invalid (a log never shrinks);
 *   old_size == new_size   valid iff plen == 0 and old_root == new_root;
 *   old_size == 0          valid iff plen == 0 and old_root == MTH({}) = SHA-256("") (and,
 *                          by the rule above, new_root == old_root when new_size is 0 too).
 *                          transparency-dev/merkle accepts any old root for size 0; we do not,
 *                          as the root of the empty tree is fixed.
 * Returns 0 if consistent, -1 if not or on NULL arguments.
 */
__attribute__((warn_unused_result))
int merkle_verify_consistency(uint64_t old_size, uint64_t new_size, const uint8_t old_root[static MERKLE_HASH_BYTES],
                              const uint8_t new_root[static MERKLE_HASH_BYTES],
                              const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t plen);

#endif
