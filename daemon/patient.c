/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the node-local patient key and the keyed patient tags derived from it. */
#include "patient.h"

#include <stdbool.h>
#include <string.h>
#include <sodium.h>

#include "domains.h"
#include "keys.h"

#define PATIENT_DOMAIN LIAISON_DOMAIN_PATIENT
#define PATIENT_FOLD_DOMAIN LIAISON_DOMAIN_PATIENT_FOLD

static void keyed_tag(const uint8_t key[static LIAISON_KEY_BYTES], const char *domain, const char *id, bool fold,
                      uint8_t out[static LIAISON_HASH_BYTES])
{
    crypto_generichash_state st;
    static const uint8_t zero = 0;
    crypto_generichash_init(&st, key, LIAISON_KEY_BYTES, LIAISON_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)domain, strlen(domain));
    crypto_generichash_update(&st, &zero, 1);
    uint8_t chunk[64];
    for (size_t left = strlen(id); left > 0;) {
        size_t k = left < sizeof chunk ? left : sizeof chunk;
        for (size_t i = 0; i < k; i++) {
            uint8_t ch = (uint8_t)id[i];
            chunk[i] = fold && ch >= 'A' && ch <= 'Z' ? (uint8_t)(ch - 'A' + 'a') : ch;
        }
        crypto_generichash_update(&st, chunk, k);
        id += k;
        left -= k;
    }
    crypto_generichash_final(&st, out, LIAISON_HASH_BYTES);
    sodium_memzero(&st, sizeof st);
    sodium_memzero(chunk, sizeof chunk);
}

void patient_tag(const uint8_t key[static LIAISON_KEY_BYTES], const char *patient_id,
                 uint8_t out[static LIAISON_HASH_BYTES])
{
    keyed_tag(key, PATIENT_DOMAIN, patient_id, false, out);
}

void patient_fold_tag(const uint8_t key[static LIAISON_KEY_BYTES], const char *patient_id,
                      uint8_t out[static LIAISON_HASH_BYTES])
{
    keyed_tag(key, PATIENT_FOLD_DOMAIN, patient_id, true, out);
}

int patient_key_create(const char *dir, uint8_t key[static LIAISON_KEY_BYTES], char *err, size_t errlen)
{
    randombytes_buf(key, LIAISON_KEY_BYTES);
    if (keys_write_secret(dir, PATIENT_KEY_FILE, key, err, errlen) != 0) {
        sodium_memzero(key, LIAISON_KEY_BYTES);
        return -1;
    }
    return 0;
}

int patient_key_load(const char *dir, uint8_t key[static LIAISON_KEY_BYTES], char *err, size_t errlen)
{
    int rc = keys_read_secret(dir, PATIENT_KEY_FILE, key, err, errlen);
    return rc == KEYS_SECRET_MISSING ? PATIENT_KEY_MISSING : rc;
}
