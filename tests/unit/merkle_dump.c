/* SPDX-License-Identifier: Apache-2.0 */
/* Test helper: prints, as JSON lines, the leaf hashes, roots, inclusion proofs and consistency
 * proofs that merkle.c computes for leaves "entry-0" .. "entry-<N-1>", for merkle_ref.py to
 * check against its own implementation. Usage: merkle_dump [N] (default 70, at most 1024). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "merkle.h"

#define DEFAULT_N 70u
#define MAX_N 1024u

static void print_hex(const uint8_t h[MERKLE_HASH_BYTES])
{
    char hex[2 * MERKLE_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, h, MERKLE_HASH_BYTES);
    fputs(hex, stdout);
}

static void print_proof(const uint8_t (*proof)[MERKLE_HASH_BYTES], size_t plen)
{
    fputs("\"proof\":[", stdout);
    for (size_t i = 0; i < plen; i++) {
        fputs(i ? ",\"" : "\"", stdout);
        print_hex(proof[i]);
        fputs("\"", stdout);
    }
    fputs("]}\n", stdout);
}

int main(int argc, char **argv)
{
    int rc = 1;
    unsigned long n_arg = DEFAULT_N;
    uint8_t(*leaves)[MERKLE_HASH_BYTES] = NULL;
    uint8_t(*roots)[MERKLE_HASH_BYTES] = NULL;
    uint8_t proof[MERKLE_MAX_CONSISTENCY][MERKLE_HASH_BYTES];
    size_t plen = 0;
    char *end = NULL;

    if (argc > 2 || (argc == 2 && ((n_arg = strtoul(argv[1], &end, 10)) > MAX_N || *end != '\0'))) {
        fprintf(stderr, "usage: merkle_dump [N <= %u]\n", MAX_N);
        goto out;
    }
    if (sodium_init() < 0)
        goto out;
    const uint64_t n = n_arg;
    leaves = calloc(n + 1, sizeof *leaves);
    roots = calloc(n + 1, sizeof *roots);
    if (!leaves || !roots)
        goto out;
    for (uint64_t i = 0; i < n; i++) {
        char s[32];
        int len = snprintf(s, sizeof s, "entry-%" PRIu64, i);
        merkle_leaf_hash((const uint8_t *)s, (size_t)len, leaves[i]);
        printf("{\"kind\":\"leaf\",\"index\":%" PRIu64 ",\"data\":\"%s\",\"hash\":\"", i, s);
        print_hex(leaves[i]);
        fputs("\"}\n", stdout);
    }
    for (uint64_t size = 0; size <= n; size++) {
        if (merkle_root(leaves, size, roots[size]) != 0)
            goto out;
        printf("{\"kind\":\"root\",\"size\":%" PRIu64 ",\"root\":\"", size);
        print_hex(roots[size]);
        fputs("\"}\n", stdout);
    }
    for (uint64_t size = 1; size <= n; size++) {
        for (uint64_t i = 0; i < size; i++) {
            if (merkle_inclusion_proof(leaves, size, i, proof, MERKLE_MAX_INCLUSION, &plen) != 0)
                goto out;
            printf("{\"kind\":\"inclusion\",\"size\":%" PRIu64 ",\"index\":%" PRIu64 ",\"root\":\"", size, i);
            print_hex(roots[size]);
            fputs("\",", stdout);
            print_proof(proof, plen);
        }
    }
    for (uint64_t size = 0; size <= n; size++) {
        for (uint64_t old = 0; old <= size; old++) {
            if (merkle_consistency_proof(leaves, old, size, proof, MERKLE_MAX_CONSISTENCY, &plen) != 0)
                goto out;
            printf("{\"kind\":\"consistency\",\"old\":%" PRIu64 ",\"new\":%" PRIu64 ",\"old_root\":\"", old, size);
            print_hex(roots[old]);
            fputs("\",\"new_root\":\"", stdout);
            print_hex(roots[size]);
            fputs("\",", stdout);
            print_proof(proof, plen);
        }
    }
    printf("{\"kind\":\"end\",\"n\":%" PRIu64 "}\n", n);
    rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    free(leaves);
    free(roots);
    return rc;
}
