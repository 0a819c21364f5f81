/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the node-local patient key and the keyed patient tags derived from it. */
#include "patient.h"

#include <string.h>
#include <sodium.h>

#include "keys.h"

#define PATIENT_DOMAIN "liaison-v1/patient"

void patient_tag(const uint8_t key[static LIAISON_KEY_BYTES], const char *patient_id,
                 uint8_t out[static LIAISON_HASH_BYTES])
{
    crypto_generichash_state st;
    static const uint8_t zero = 0;
    crypto_generichash_init(&st, key, LIAISON_KEY_BYTES, LIAISON_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)PATIENT_DOMAIN, strlen(PATIENT_DOMAIN));
    crypto_generichash_update(&st, &zero, 1);
    crypto_generichash_update(&st, (const uint8_t *)patient_id, strlen(patient_id));
    crypto_generichash_final(&st, out, LIAISON_HASH_BYTES);
    sodium_memzero(&st, sizeof st);
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
