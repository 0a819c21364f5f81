/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the fuzz targets and mkseeds: fixed test identities, so that the committed
 * seeds (signed and sealed by these keys) verify and open inside the targets. Test keys
 * only: derived from constant seeds, never used outside fuzz/. */
#ifndef LIAISON_FUZZ_COMMON_H
#define LIAISON_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "keys.h"

/* The three test nodes. The fuzz targets receive as FUZZ_BOB from FUZZ_ALICE. */
#define FUZZ_ALICE "alice"
#define FUZZ_BOB "bob"
#define FUZZ_CAROL "carol"
#define FUZZ_TAG_ALICE 0xa1u
#define FUZZ_TAG_BOB 0xb0u
#define FUZZ_TAG_CAROL 0xc4u

/* Stops the run with a message: libFuzzer reports the abort as a crash with the input. */
#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* Deterministic key pairs for a test node: every secret is the tag byte repeated, with a
 * different first byte per key. Same layout as keys_generate (secrets in sodium_malloc'd
 * memory), so keys_destroy frees it. Aborts if it cannot. */
static inline keys_t *fuzz_keys(uint8_t tag)
{
    uint8_t seed[32];
    keys_t *k = calloc(1, sizeof *k);
    FUZZ_CHECK(sodium_init() >= 0);
    FUZZ_CHECK(k != NULL);
    k->sign_sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    k->enc_sk = sodium_malloc(crypto_scalarmult_SCALARBYTES);
    k->transport_sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
    FUZZ_CHECK(k->sign_sk && k->enc_sk && k->transport_sk);
    memset(seed, tag, sizeof seed);
    seed[0] = 's';
    FUZZ_CHECK(crypto_sign_seed_keypair(k->sign_pk, k->sign_sk, seed) == 0);
    seed[0] = 'e';
    memcpy(k->enc_sk, seed, sizeof seed);
    FUZZ_CHECK(crypto_scalarmult_base(k->enc_pk, k->enc_sk) == 0);
    seed[0] = 't';
    FUZZ_CHECK(crypto_box_seed_keypair(k->transport_pk, k->transport_sk, seed) == 0);
    sodium_memzero(seed, sizeof seed);
    return k;
}

/* A NUL-terminated malloc'd copy of the fuzz input (the caller frees it). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
