/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers of the protocol unit tests: cmocka includes, temp dirs, fixed-seed keys. */
#ifndef LIAISON_TEST_UNIT_H
#define LIAISON_TEST_UNIT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "keys.h"

/* Parses a hex string of exactly 2*len characters into out (test vectors). */
static inline void unit_hex(const char *hex, uint8_t *out, size_t len)
{
    size_t bin_len = 0;
    assert_int_equal(strlen(hex), 2 * len);
    assert_int_equal(sodium_hex2bin(out, len, hex, strlen(hex), NULL, &bin_len, NULL), 0);
    assert_int_equal(bin_len, len);
}

/* A fresh private directory under $TMPDIR (or /tmp); the caller frees the path. */
static inline char *unit_tempdir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = NULL;
    assert_true(asprintf(&path, "%s/liaison-unit-XXXXXX", base && *base ? base : "/tmp") > 0);
    assert_non_null(mkdtemp(path));
    return path;
}

/* Removes dir and the plain files or empty directories directly in it; frees dir. */
static inline void unit_rmdir(char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char *p = NULL;
            assert_true(asprintf(&p, "%s/%s", dir, de->d_name) > 0);
            if (unlink(p) != 0)
                rmdir(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

/* Writes len bytes to dir/name with the given mode (chmod'ed, so the umask does not matter). */
static inline void unit_write_file(const char *dir, const char *name, const uint8_t *data, size_t len, mode_t mode)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
    free(p);
}

/* Reads dir/name fully into a malloc'd buffer; *len set. NULL if it does not exist. */
static inline uint8_t *unit_read_file(const char *dir, const char *name, size_t *len)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    FILE *f = fopen(p, "rb");
    free(p);
    if (!f)
        return NULL;
    uint8_t *buf = malloc(4096);
    assert_non_null(buf);
    *len = fread(buf, 1, 4096, f);
    fclose(f);
    return buf;
}

/* Deterministic keys: identity seed = base..base+31, encryption scalar = base+32..,
 * transport secret = base+64.. (bytes mod 256), loaded through keys_load. */
static inline keys_t *unit_fixed_keys(uint8_t base)
{
    uint8_t s[3][32];
    char err[256] = "";
    for (int f = 0; f < 3; f++)
        for (int i = 0; i < 32; i++)
            s[f][i] = (uint8_t)(base + 32 * f + i);
    char *dir = unit_tempdir();
    unit_write_file(dir, KEYS_IDENTITY_FILE, s[0], 32, 0600);
    unit_write_file(dir, KEYS_ENCRYPTION_FILE, s[1], 32, 0600);
    unit_write_file(dir, KEYS_TRANSPORT_FILE, s[2], 32, 0600);
    keys_t *k = keys_load(dir, err, sizeof err);
    if (!k)
        fail_msg("keys_load: %s", err);
    unit_rmdir(dir);
    return k;
}

/* Out of memory for real, not mocked: the address space is limited (RLIMIT_AS) to what
 * the process maps now plus margin bytes, so that any allocation larger than that
 * fails. glibc serves a large allocation with a new mapping only when its heap holds no
 * free chunk that size: main() calls unit_memory_pin() before any test, so that every
 * allocation of 64 KiB or more is a mapping of its own, given back when freed. Returns
 * false (the caller skips) under AddressSanitizer, whose allocator ends the process
 * rather than fail an allocation. unit_memory_restore lifts the limit again. */
static inline void unit_memory_pin(void) { mallopt(M_MMAP_THRESHOLD, 64 * 1024); }

#if defined(__SANITIZE_ADDRESS__)
#define UNIT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNIT_ASAN 1
#endif
#endif

static inline bool unit_memory_tight(struct rlimit *saved, size_t margin)
{
#if defined(UNIT_ASAN)
    (void)saved;
    (void)margin;
    return false;
#else
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    assert_int_equal(getrlimit(RLIMIT_AS, saved), 0);
    struct rlimit tight = {(rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + margin, saved->rlim_max};
    assert_int_equal(setrlimit(RLIMIT_AS, &tight), 0);
    return true;
#endif
}

static inline void unit_memory_restore(const struct rlimit *saved) { assert_int_equal(setrlimit(RLIMIT_AS, saved), 0); }

#endif
