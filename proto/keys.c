/* SPDX-License-Identifier: Apache-2.0 */
/* Owns a node's key pairs: generation, the secret key files, pairwise wrap keys and fingerprints. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domains.h"

_Static_assert(crypto_sign_SEEDBYTES == LIAISON_KEY_BYTES, "Ed25519 seed size");
_Static_assert(crypto_scalarmult_SCALARBYTES == LIAISON_KEY_BYTES, "X25519 scalar size");
_Static_assert(crypto_scalarmult_BYTES == LIAISON_KEY_BYTES, "X25519 point size");
_Static_assert(crypto_box_SECRETKEYBYTES == LIAISON_KEY_BYTES, "box secret key size");
_Static_assert(crypto_box_PUBLICKEYBYTES == LIAISON_KEY_BYTES, "box public key size");
_Static_assert(crypto_sign_PUBLICKEYBYTES == LIAISON_KEY_BYTES, "Ed25519 public key size");
_Static_assert(crypto_generichash_BYTES == LIAISON_KEY_BYTES, "BLAKE2b-256 size");

#define FP_GROUPS 8u
#define FP_GROUP_BYTES 5u

/* An empty keys_t with its three secret buffers allocated in secure memory. */
static keys_t *keys_alloc(void)
{
    keys_t *k = calloc(1, sizeof *k);
    if (!k)
        goto out;
    k->sign_sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    k->enc_sk = sodium_malloc(crypto_scalarmult_SCALARBYTES);
    k->transport_sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
    if (!k->sign_sk || !k->enc_sk || !k->transport_sk)
        keys_destroy(&k);
out:
    return k;
}

void keys_destroy(keys_t **pk)
{
    if (!pk || !*pk)
        return;
    keys_t *k = *pk;
    sodium_free(k->sign_sk);       /* sodium_free wipes before releasing */
    sodium_free(k->enc_sk);
    sodium_free(k->transport_sk);
    sodium_memzero(k, sizeof *k);
    free(k);
    *pk = NULL;
}

keys_t *keys_generate(void)
{
    keys_t *k = keys_alloc();
    uint8_t *seed = sodium_malloc(crypto_sign_SEEDBYTES);
    int rc = -1;

    if (!k || !seed)
        goto out;
    randombytes_buf(seed, crypto_sign_SEEDBYTES);
    if (crypto_sign_seed_keypair(k->sign_pk, k->sign_sk, seed) != 0)
        goto out;
    randombytes_buf(k->enc_sk, crypto_scalarmult_SCALARBYTES);
    if (crypto_scalarmult_base(k->enc_pk, k->enc_sk) != 0)
        goto out;
    if (crypto_box_keypair(k->transport_pk, k->transport_sk) != 0)
        goto out;
    rc = 0;
out:
    sodium_free(seed);
    if (rc != 0)
        keys_destroy(&k);
    return k;
}

/* Writes dir/name into path. Returns 0, or -1 with err set if it does not fit. */
static int key_path(const char *dir, const char *name, char *path, size_t pathlen, char *err, size_t errlen)
{
    int n = snprintf(path, pathlen, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= pathlen) {
        snprintf(err, errlen, "keys: key directory path is too long: %s", dir);
        return -1;
    }
    return 0;
}

/* Creates path exclusively (mode 0600) and writes the secret fully, then fsyncs. On
 * failure the file it created is removed: a key file cut short, or not known to be on
 * disk, must not be left for the next start to find (and a retry to refuse). */
static int write_secret(const char *path, const uint8_t secret[static LIAISON_KEY_BYTES], char *err, size_t errlen)
{
    int rc = -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    size_t off = 0;

    if (fd < 0) {
        if (errno == EEXIST)
            snprintf(err, errlen, "keys: %s already exists; refusing to overwrite a key file", path);
        else
            snprintf(err, errlen, "keys: cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    /* Exactly 0600 whatever the umask or a default ACL on dir did. */
    if (fchmod(fd, 0600) != 0) {
        snprintf(err, errlen, "keys: cannot set mode 0600 on %s: %s", path, strerror(errno));
        goto out;
    }
    while (off < LIAISON_KEY_BYTES) {
        ssize_t w = write(fd, secret + off, LIAISON_KEY_BYTES - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errlen, "keys: cannot write %s: %s", path, w < 0 ? strerror(errno) : "short write");
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "keys: cannot fsync %s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0 && close(fd) != 0 && rc == 0) {
        snprintf(err, errlen, "keys: cannot close %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc != 0 && fd >= 0)
        unlink(path);
    return rc;
}

/* Makes the new directory entries durable. */
static int sync_dir(const char *dir, char *err, size_t errlen)
{
    int rc = -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "keys: cannot fsync directory %s: %s", dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

int keys_save(const keys_t *k, const char *dir, char *err, size_t errlen)
{
    int rc = -1;
    uint8_t seed[crypto_sign_SEEDBYTES];
    const char *names[3] = {KEYS_IDENTITY_FILE, KEYS_ENCRYPTION_FILE, KEYS_TRANSPORT_FILE};
    const uint8_t *secrets[3] = {seed, NULL, NULL};
    char paths[3][PATH_MAX];
    bool created[3] = {false, false, false};

    if (!k || !dir || !k->sign_sk || !k->enc_sk || !k->transport_sk) {
        snprintf(err, errlen, "keys: nothing to save");
        goto out;
    }
    if (crypto_sign_ed25519_sk_to_seed(seed, k->sign_sk) != 0) {
        snprintf(err, errlen, "keys: cannot extract the identity seed");
        goto out;
    }
    secrets[1] = k->enc_sk;
    secrets[2] = k->transport_sk;
    for (size_t i = 0; i < 3; i++) {
        if (key_path(dir, names[i], paths[i], sizeof paths[i], err, errlen) != 0)
            goto out;
    }
    for (size_t i = 0; i < 3; i++) {
        if (write_secret(paths[i], secrets[i], err, errlen) != 0)
            goto out;
        created[i] = true;
    }
    if (sync_dir(dir, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(seed, sizeof seed);
    /* Never leave half a key set behind: remove only what this call created. */
    for (size_t i = 0; rc != 0 && i < 3; i++) {
        if (created[i])
            unlink(paths[i]);
    }
    return rc;
}

int keys_write_secret(const char *dir, const char *name, const uint8_t secret[static LIAISON_KEY_BYTES], char *err,
                      size_t errlen)
{
    char path[PATH_MAX];
    if (key_path(dir, name, path, sizeof path, err, errlen) != 0 || write_secret(path, secret, err, errlen) != 0)
        return -1;
    if (sync_dir(dir, err, errlen) != 0) {
        unlink(path);
        return -1;
    }
    return 0;
}

int keys_read_secret(const char *dir, const char *name, uint8_t secret[static LIAISON_KEY_BYTES], char *err,
                     size_t errlen)
{
    int rc = -1;
    int fd = -1;
    char path[PATH_MAX];
    struct stat st;
    size_t off = 0;

    if (key_path(dir, name, path, sizeof path, err, errlen) != 0)
        goto out;
    /* O_NONBLOCK: a FIFO (or a device) in the key file's place must be refused below by
     * fstat, not wait in open() for a writer that never comes. Regular files ignore it. */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            rc = KEYS_SECRET_MISSING;
        if (errno == ELOOP)
            snprintf(err, errlen, "keys: %s is a symbolic link; key files must be regular files", path);
        else
            snprintf(err, errlen, "keys: cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "keys: cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "keys: %s is not a regular file", path);
        goto out;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        snprintf(err, errlen, "keys: %s is accessible by group or others (mode %04o); run: chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_size != (off_t)LIAISON_KEY_BYTES) {
        snprintf(err, errlen, "keys: %s is %lld bytes, expected %u; the file is damaged or not a liaison key",
                 path, (long long)st.st_size, LIAISON_KEY_BYTES);
        goto out;
    }
    while (off < LIAISON_KEY_BYTES) {
        ssize_t r = read(fd, secret + off, LIAISON_KEY_BYTES - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "keys: cannot read %s: %s", path, r < 0 ? strerror(errno) : "file is short");
            goto out;
        }
        off += (size_t)r;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        sodium_memzero(secret, LIAISON_KEY_BYTES);
    return rc;
}

keys_t *keys_load(const char *dir, char *err, size_t errlen)
{
    int rc = -1;
    keys_t *k = keys_alloc();
    uint8_t *seed = sodium_malloc(crypto_sign_SEEDBYTES);

    if (!k || !seed) {
        snprintf(err, errlen, "keys: out of secure memory");
        goto out;
    }
    if (!dir) {
        snprintf(err, errlen, "keys: no key directory given");
        goto out;
    }
    if (keys_read_secret(dir, KEYS_IDENTITY_FILE, seed, err, errlen) != 0 ||
        keys_read_secret(dir, KEYS_ENCRYPTION_FILE, k->enc_sk, err, errlen) != 0 ||
        keys_read_secret(dir, KEYS_TRANSPORT_FILE, k->transport_sk, err, errlen) != 0)
        goto out;
    if (crypto_sign_seed_keypair(k->sign_pk, k->sign_sk, seed) != 0 ||
        crypto_scalarmult_base(k->enc_pk, k->enc_sk) != 0 ||
        crypto_scalarmult_base(k->transport_pk, k->transport_sk) != 0) {
        snprintf(err, errlen, "keys: cannot derive public keys from the files in %s", dir);
        goto out;
    }
    rc = 0;
out:
    sodium_free(seed);
    if (rc != 0)
        keys_destroy(&k);
    return k;
}

int keys_pair_key(const keys_t *me, const uint8_t their_enc_pk[static LIAISON_KEY_BYTES],
                  uint8_t out[static LIAISON_KEY_BYTES])
{
    int rc = -1;
    /* domain || 0x00 || q || lo_pk || hi_pk */
    uint8_t buf[sizeof LIAISON_DOMAIN_PAIR_KEY + 3u * LIAISON_KEY_BYTES];
    uint8_t *q = buf + sizeof LIAISON_DOMAIN_PAIR_KEY;
    uint8_t *lo = q + LIAISON_KEY_BYTES;
    uint8_t *hi = lo + LIAISON_KEY_BYTES;

    if (!me || !me->enc_sk)
        goto out;
    memcpy(buf, LIAISON_DOMAIN_PAIR_KEY, sizeof LIAISON_DOMAIN_PAIR_KEY);
    /* Fails on an all-zero result, i.e. a low-order their_enc_pk. */
    if (crypto_scalarmult(q, me->enc_sk, their_enc_pk) != 0)
        goto out;
    /* Public keys, so an ordinary memcmp is fine for ordering. */
    if (memcmp(me->enc_pk, their_enc_pk, LIAISON_KEY_BYTES) <= 0) {
        memcpy(lo, me->enc_pk, LIAISON_KEY_BYTES);
        memcpy(hi, their_enc_pk, LIAISON_KEY_BYTES);
    } else {
        memcpy(lo, their_enc_pk, LIAISON_KEY_BYTES);
        memcpy(hi, me->enc_pk, LIAISON_KEY_BYTES);
    }
    if (crypto_generichash(out, LIAISON_KEY_BYTES, buf, sizeof buf, NULL, 0) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(buf, sizeof buf);
    if (rc != 0)
        sodium_memzero(out, LIAISON_KEY_BYTES);
    return rc;
}

void keys_fingerprint(const uint8_t sign_pk[static LIAISON_KEY_BYTES], char out[static KEYS_FINGERPRINT_LEN])
{
    uint8_t msg[sizeof LIAISON_DOMAIN_FINGERPRINT + LIAISON_KEY_BYTES];
    uint8_t h[crypto_generichash_BYTES_MAX];
    char *p = out;

    _Static_assert(crypto_generichash_BYTES_MAX == 64, "BLAKE2b-512");
    _Static_assert(FP_GROUPS * FP_GROUP_BYTES <= sizeof h, "fingerprint input");
    _Static_assert(FP_GROUPS * 6u == KEYS_FINGERPRINT_LEN, "8 groups of 5 digits, 7 spaces and a NUL");

    memcpy(msg, LIAISON_DOMAIN_FINGERPRINT, sizeof LIAISON_DOMAIN_FINGERPRINT);
    memcpy(msg + sizeof LIAISON_DOMAIN_FINGERPRINT, sign_pk, LIAISON_KEY_BYTES);
    /* Cannot fail with these sizes; if it ever did, no digits: a clearly-invalid fingerprint. */
    if (crypto_generichash(h, sizeof h, msg, sizeof msg, NULL, 0) != 0) {
        memset(out, '?', KEYS_FINGERPRINT_LEN - 1u);
        p = NULL;
    }
    for (size_t i = 0; p && i < FP_GROUPS; i++) {
        uint64_t v = 0;
        for (size_t j = 0; j < FP_GROUP_BYTES; j++)
            v = (v << 8) | h[FP_GROUP_BYTES * i + j];
        if (i > 0)
            *p++ = ' ';
        snprintf(p, 6, "%05u", (unsigned)(v % 100000u));
        p += 5;
    }
    out[KEYS_FINGERPRINT_LEN - 1u] = '\0';
}
