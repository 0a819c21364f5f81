/* SPDX-License-Identifier: Apache-2.0 */
/* A node's key material: Ed25519 identity, X25519 encryption and CurveZMQ transport
 * key pairs, their files on disk (secret files mode 0600) and their wiping. */
#ifndef LIAISON_KEYS_H
#define LIAISON_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "constants.h"

/* Secret parts live in sodium_malloc'd memory (guard pages, mlock'd, wiped on free). */
typedef struct keys {
    uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t enc_pk[crypto_scalarmult_BYTES];
    uint8_t transport_pk[crypto_box_PUBLICKEYBYTES];
    uint8_t *sign_sk;        /* crypto_sign_SECRETKEYBYTES (seed || pk) */
    uint8_t *enc_sk;         /* crypto_scalarmult_SCALARBYTES */
    uint8_t *transport_sk;   /* crypto_box_SECRETKEYBYTES */
} keys_t;

/* File names inside the key directory. Each holds the 32-byte secret seed/scalar, raw. */
#define KEYS_IDENTITY_FILE "identity.key"
#define KEYS_ENCRYPTION_FILE "encryption.key"
#define KEYS_TRANSPORT_FILE "transport.key"

/* Generates fresh key pairs. Returns NULL on failure (out of secure memory). */
keys_t *keys_generate(void);

/* Writes the three secret files into dir (which must exist), each created with
 * O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600, fsync'd. Refuses to overwrite.
 * Returns 0, or -1 with a message in err and none of the files it created left. */
int keys_save(const keys_t *k, const char *dir, char *err, size_t errlen);

/* Loads the three secret files from dir, derives the public keys. Refuses files
 * that are not regular, not exactly 32 bytes, or readable by group/others.
 * Returns NULL with a message in err on failure. */
keys_t *keys_load(const char *dir, char *err, size_t errlen);

/* One secret of LIAISON_KEY_BYTES in its own file dir/name (the key files above, and
 * others such as the daemon's patient key). keys_write_secret creates the file with
 * mode 0600, never over an existing one, and makes it durable (file and directory
 * fsynced), and leaves no file behind when any step fails; keys_read_secret reads it back
 * only from a regular, private file of exactly that size. Both return 0, or -1 with err
 * naming the file and the fix;
 * keys_read_secret returns KEYS_SECRET_MISSING (with err set) if the file does not
 * exist. */
#define KEYS_SECRET_MISSING 1
int keys_write_secret(const char *dir, const char *name, const uint8_t secret[static LIAISON_KEY_BYTES], char *err,
                      size_t errlen);
int keys_read_secret(const char *dir, const char *name, uint8_t secret[static LIAISON_KEY_BYTES], char *err,
                     size_t errlen);

/* Wipes and frees; sets *k to NULL. NULL-safe. */
void keys_destroy(keys_t **k);

/* The pairwise wrap key of two nodes (symmetric: both sides derive the same key):
 * BLAKE2b-256("liaison-v1/pair-key" 0x00 || X25519(my_sk, their_pk) || lo_pk || hi_pk)
 * where lo_pk/hi_pk are the two X25519 public keys in byte order.
 * Returns 0, or -1 if their_pk is a low-order point (all-zero shared secret). */
__attribute__((warn_unused_result))
int keys_pair_key(const keys_t *me, const uint8_t their_enc_pk[static LIAISON_KEY_BYTES],
                  uint8_t out[static LIAISON_KEY_BYTES]);

/* Fingerprint of an Ed25519 identity key for comparison over the phone:
 * 8 groups of 5 decimal digits separated by spaces (47 chars + NUL). See PROTOCOL.md. */
#define KEYS_FINGERPRINT_LEN 48u
void keys_fingerprint(const uint8_t sign_pk[static LIAISON_KEY_BYTES], char out[static KEYS_FINGERPRINT_LEN]);

#endif
