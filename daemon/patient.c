/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the node-local patient key and the keyed patient tags derived from it. */
#include "patient.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

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
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, PATIENT_KEY_FILE);
    int rc = -1;
    randombytes_buf(key, LIAISON_KEY_BYTES);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    if (write(fd, key, LIAISON_KEY_BYTES) != (ssize_t)LIAISON_KEY_BYTES || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        sodium_memzero(key, LIAISON_KEY_BYTES);
    return rc;
}

int patient_key_load(const char *dir, uint8_t key[static LIAISON_KEY_BYTES], char *err, size_t errlen)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, PATIENT_KEY_FILE);
    int rc = -1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        snprintf(err, errlen, "%s does not exist", path);
        rc = PATIENT_KEY_MISSING;
        goto out;
    }
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size != LIAISON_KEY_BYTES) {
        snprintf(err, errlen, "%s is not a 32-byte key file (restore it from a backup of this node)", path);
        goto out;
    }
    if (sb.st_mode & 077) {
        snprintf(err, errlen, "%s is readable by others (fix with: chmod 600 %s)", path, path);
        goto out;
    }
    if (read(fd, key, LIAISON_KEY_BYTES) != (ssize_t)LIAISON_KEY_BYTES) {
        snprintf(err, errlen, "cannot read %s", path);
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        sodium_memzero(key, LIAISON_KEY_BYTES);
    return rc;
}
