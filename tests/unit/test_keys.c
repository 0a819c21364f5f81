/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of keys.c: generation, key files, pairwise keys and fingerprints. */
#include "unit.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "keys.h"

/* Known answers computed independently (Python `cryptography` + hashlib) for
 * unit_fixed_keys(0) ("A") and unit_fixed_keys(100) ("B"). */
#define KAT_A_SIGN_PK "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
#define KAT_A_ENC_PK "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254"
#define KAT_A_TRANSPORT_PK "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a"
#define KAT_A_FINGERPRINT "38367 41139 26283 31550 59716 32188 29090 63989"
#define KAT_B_FINGERPRINT "72301 23888 41830 96148 45579 74557 69121 94182"
#define KAT_PAIR_AB "f2d41f912c63a620f426e6d522b69a2ebb8354740a7121bef9990c81493257cd"
#define KAT_PAIR_AA "a02dbf5dca51cae821219b4adaea3a35f053d0381bbf755f5016c564a9644202"

static void assert_consistent(const keys_t *k)
{
    uint8_t pk[32];
    assert_int_equal(crypto_sign_ed25519_sk_to_pk(pk, k->sign_sk), 0);
    assert_memory_equal(pk, k->sign_pk, 32);
    assert_int_equal(crypto_scalarmult_base(pk, k->enc_sk), 0);
    assert_memory_equal(pk, k->enc_pk, 32);
    assert_int_equal(crypto_scalarmult_base(pk, k->transport_sk), 0);
    assert_memory_equal(pk, k->transport_pk, 32);
    /* The identity key actually signs. */
    uint8_t sig[crypto_sign_BYTES];
    assert_int_equal(crypto_sign_detached(sig, NULL, (const uint8_t *)"x", 1, k->sign_sk), 0);
    assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"x", 1, k->sign_pk), 0);
}

static void test_generate(void **state)
{
    (void)state;
    keys_t *a = keys_generate();
    keys_t *b = keys_generate();
    assert_non_null(a);
    assert_non_null(b);
    assert_consistent(a);
    assert_consistent(b);
    assert_memory_not_equal(a->sign_pk, b->sign_pk, 32);
    assert_memory_not_equal(a->enc_pk, b->enc_pk, 32);
    assert_memory_not_equal(a->transport_pk, b->transport_pk, 32);
    keys_destroy(&a);
    assert_null(a);
    keys_destroy(&a);   /* NULL-safe */
    keys_destroy(NULL);
    keys_destroy(&b);
}

static void test_save_load_roundtrip(void **state)
{
    (void)state;
    char err[512] = "";
    char *dir = unit_tempdir();
    keys_t *k = keys_generate();
    assert_non_null(k);
    if (keys_save(k, dir, err, sizeof err) != 0)
        fail_msg("keys_save: %s", err);

    const char *names[] = {KEYS_IDENTITY_FILE, KEYS_ENCRYPTION_FILE, KEYS_TRANSPORT_FILE};
    for (size_t i = 0; i < 3; i++) {
        char *p = NULL;
        struct stat st;
        assert_true(asprintf(&p, "%s/%s", dir, names[i]) > 0);
        assert_int_equal(stat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_size, 32);
        free(p);
    }
    /* The identity file holds the 32-byte seed, the others the raw secrets. */
    size_t len = 0;
    uint8_t *seed = unit_read_file(dir, KEYS_IDENTITY_FILE, &len);
    assert_non_null(seed);
    assert_int_equal(len, 32);
    assert_memory_equal(seed, k->sign_sk, 32);
    free(seed);
    uint8_t *enc = unit_read_file(dir, KEYS_ENCRYPTION_FILE, &len);
    assert_memory_equal(enc, k->enc_sk, 32);
    free(enc);
    uint8_t *tr = unit_read_file(dir, KEYS_TRANSPORT_FILE, &len);
    assert_memory_equal(tr, k->transport_sk, 32);
    free(tr);

    keys_t *l = keys_load(dir, err, sizeof err);
    if (!l)
        fail_msg("keys_load: %s", err);
    assert_memory_equal(l->sign_pk, k->sign_pk, 32);
    assert_memory_equal(l->enc_pk, k->enc_pk, 32);
    assert_memory_equal(l->transport_pk, k->transport_pk, 32);
    assert_int_equal(sodium_memcmp(l->sign_sk, k->sign_sk, crypto_sign_SECRETKEYBYTES), 0);
    assert_int_equal(sodium_memcmp(l->enc_sk, k->enc_sk, 32), 0);
    assert_int_equal(sodium_memcmp(l->transport_sk, k->transport_sk, 32), 0);
    assert_consistent(l);

    /* An owner-only read-only file is fine. */
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, KEYS_IDENTITY_FILE) > 0);
    assert_int_equal(chmod(p, 0400), 0);
    keys_destroy(&l);
    l = keys_load(dir, err, sizeof err);
    assert_non_null(l);
    free(p);

    keys_destroy(&l);
    keys_destroy(&k);
    unit_rmdir(dir);
}

static void test_save_refuses_overwrite(void **state)
{
    (void)state;
    char err[512] = "";
    char *dir = unit_tempdir();
    keys_t *k1 = keys_generate();
    keys_t *k2 = keys_generate();

    assert_int_equal(keys_save(k1, dir, err, sizeof err), 0);
    assert_int_equal(keys_save(k2, dir, err, sizeof err), -1);
    assert_non_null(strstr(err, "already exists"));
    assert_non_null(strstr(err, KEYS_IDENTITY_FILE));
    keys_t *l = keys_load(dir, err, sizeof err);
    assert_non_null(l);
    assert_memory_equal(l->sign_pk, k1->sign_pk, 32);   /* k1's keys still there */
    assert_memory_equal(l->enc_pk, k1->enc_pk, 32);
    assert_memory_equal(l->transport_pk, k1->transport_pk, 32);
    keys_destroy(&l);
    unit_rmdir(dir);

    /* Only the last file exists: saving fails and removes what it had created. */
    dir = unit_tempdir();
    uint8_t junk[32] = {1};
    unit_write_file(dir, KEYS_TRANSPORT_FILE, junk, sizeof junk, 0600);
    assert_int_equal(keys_save(k2, dir, err, sizeof err), -1);
    assert_non_null(strstr(err, KEYS_TRANSPORT_FILE));
    size_t len = 0;
    assert_null(unit_read_file(dir, KEYS_IDENTITY_FILE, &len));
    assert_null(unit_read_file(dir, KEYS_ENCRYPTION_FILE, &len));
    uint8_t *t = unit_read_file(dir, KEYS_TRANSPORT_FILE, &len);
    assert_non_null(t);
    assert_memory_equal(t, junk, 32);                    /* untouched */
    free(t);
    unit_rmdir(dir);

    /* A symlink in place of a key file is not followed. */
    dir = unit_tempdir();
    char *link = NULL, *target = NULL;
    assert_true(asprintf(&link, "%s/%s", dir, KEYS_IDENTITY_FILE) > 0);
    assert_true(asprintf(&target, "%s/elsewhere", dir) > 0);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(keys_save(k2, dir, err, sizeof err), -1);
    assert_int_equal(access(target, F_OK), -1);
    free(link);
    free(target);
    unit_rmdir(dir);

    /* Missing directory. */
    assert_int_equal(keys_save(k2, "/nonexistent/liaison-keys", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/liaison-keys"));

    keys_destroy(&k1);
    keys_destroy(&k2);
}

/* Counts the entries of dir other than . and .. */
static size_t dir_entries(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* A key file whose write fails part way (here the file size limit, RLIMIT_FSIZE, as a
 * full disk would) is removed, not left cut short: the next start would refuse it as
 * damaged and a retry would refuse to overwrite it. Without the limit, the same calls
 * succeed. */
static void test_failed_write_leaves_no_key_file(void **state)
{
    (void)state;
    char err[512] = "";
    uint8_t secret[32];
    randombytes_buf(secret, sizeof secret);
    keys_t *k = keys_generate();
    assert_non_null(k);
    struct rlimit saved, small = {.rlim_cur = 20, .rlim_max = RLIM_INFINITY};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small.rlim_max = saved.rlim_max;
    void (*old)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG, not the signal's default end */
    for (int i = 0; i < 2; i++) {
        char *dir = unit_tempdir();
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
        int rc = i == 0 ? keys_write_secret(dir, "patient.key", secret, err, sizeof err)
                        : keys_save(k, dir, err, sizeof err);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err, "cannot write"));
        assert_int_equal(dir_entries(dir), 0);
        rc = i == 0 ? keys_write_secret(dir, "patient.key", secret, err, sizeof err) : keys_save(k, dir, err, sizeof err);
        assert_int_equal(rc, 0);
        assert_int_equal(dir_entries(dir), i == 0 ? 1 : 3);
        unit_rmdir(dir);
    }
    signal(SIGXFSZ, old);
    keys_destroy(&k);
}

/* Writes three valid files into a fresh dir; the caller then spoils one. */
static char *dir_with_keys(void)
{
    char err[256];
    char *dir = unit_tempdir();
    keys_t *k = keys_generate();
    assert_non_null(k);
    assert_int_equal(keys_save(k, dir, err, sizeof err), 0);
    keys_destroy(&k);
    return dir;
}

static void expect_load_fails(const char *dir, const char *needle1, const char *needle2)
{
    char err[512] = "";
    keys_t *k = keys_load(dir, err, sizeof err);
    if (k)
        fail_msg("keys_load accepted a bad key directory (expected '%s')", needle1);
    if (needle1 && !strstr(err, needle1))
        fail_msg("error '%s' does not mention '%s'", err, needle1);
    if (needle2 && !strstr(err, needle2))
        fail_msg("error '%s' does not mention '%s'", err, needle2);
}

static void test_load_refuses_bad_files(void **state)
{
    (void)state;
    static const mode_t bad_modes[] = {0644, 0640, 0604, 0660, 0606, 0601, 0610, 0777};
    for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
        char *dir = dir_with_keys();
        char *p = NULL;
        assert_true(asprintf(&p, "%s/%s", dir, KEYS_ENCRYPTION_FILE) > 0);
        assert_int_equal(chmod(p, bad_modes[i]), 0);
        char fix[600];
        snprintf(fix, sizeof fix, "chmod 600 %s", p);
        expect_load_fails(dir, fix, "group or others");
        free(p);
        unit_rmdir(dir);
    }

    uint8_t buf[33] = {0};
    char *dir = dir_with_keys();
    unit_write_file(dir, KEYS_IDENTITY_FILE, buf, 31, 0600);
    expect_load_fails(dir, KEYS_IDENTITY_FILE, "31 bytes");
    unit_rmdir(dir);

    dir = dir_with_keys();
    unit_write_file(dir, KEYS_TRANSPORT_FILE, buf, 33, 0600);
    expect_load_fails(dir, KEYS_TRANSPORT_FILE, "33 bytes");
    unit_rmdir(dir);

    dir = dir_with_keys();
    unit_write_file(dir, KEYS_TRANSPORT_FILE, buf, 0, 0600);
    expect_load_fails(dir, KEYS_TRANSPORT_FILE, "0 bytes");
    unit_rmdir(dir);

    /* Missing file. */
    dir = dir_with_keys();
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, KEYS_ENCRYPTION_FILE) > 0);
    assert_int_equal(unlink(p), 0);
    expect_load_fails(dir, KEYS_ENCRYPTION_FILE, NULL);

    /* A directory in its place. */
    assert_int_equal(mkdir(p, 0700), 0);
    expect_load_fails(dir, KEYS_ENCRYPTION_FILE, "regular file");
    assert_int_equal(rmdir(p), 0);

    /* A symlink to a perfectly good key file is refused too. */
    char *target = NULL;
    assert_true(asprintf(&target, "%s/%s", dir, KEYS_TRANSPORT_FILE) > 0);
    assert_int_equal(symlink(target, p), 0);
    expect_load_fails(dir, KEYS_ENCRYPTION_FILE, "symbolic link");
    free(target);
    free(p);
    unit_rmdir(dir);

    expect_load_fails("/nonexistent/liaison-keys", "/nonexistent/liaison-keys", NULL);
}

/* A FIFO in a key file's place is refused at once: opening it for reading must not wait
 * for a writer (liaisond would hang at start-up, saying nothing). Checked in a child with
 * an alarm, so that a blocking open fails the test instead of hanging it. */
static void test_load_refuses_fifo_without_blocking(void **state)
{
    (void)state;
    char *dir = dir_with_keys();
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, KEYS_IDENTITY_FILE) > 0);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkfifo(p, 0600), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(3);
        char err[512] = "";
        keys_t *k = keys_load(dir, err, sizeof err);
        _exit(!k && strstr(err, "regular file") ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status)); /* not killed by the alarm: the open did not block */
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The patient key goes through the same reader. */
    uint8_t secret[LIAISON_KEY_BYTES];
    char err[512] = "";
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(3);
        _exit(keys_read_secret(dir, KEYS_IDENTITY_FILE, secret, err, sizeof err) == -1 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    free(p);
    unit_rmdir(dir);
}

static void test_fixed_keys_known_answers(void **state)
{
    (void)state;
    uint8_t want[32];
    keys_t *a = unit_fixed_keys(0);
    unit_hex(KAT_A_SIGN_PK, want, 32);
    assert_memory_equal(a->sign_pk, want, 32);
    unit_hex(KAT_A_ENC_PK, want, 32);
    assert_memory_equal(a->enc_pk, want, 32);
    unit_hex(KAT_A_TRANSPORT_PK, want, 32);
    assert_memory_equal(a->transport_pk, want, 32);
    keys_destroy(&a);
}

static void test_pair_key(void **state)
{
    (void)state;
    uint8_t ab[32], ba[32], ac[32], aa[32], want[32];
    keys_t *a = unit_fixed_keys(0);
    keys_t *b = unit_fixed_keys(100);
    keys_t *c = keys_generate();

    assert_int_equal(keys_pair_key(a, b->enc_pk, ab), 0);
    assert_int_equal(keys_pair_key(b, a->enc_pk, ba), 0);
    assert_memory_equal(ab, ba, 32);
    unit_hex(KAT_PAIR_AB, want, 32);
    assert_memory_equal(ab, want, 32);

    assert_int_equal(keys_pair_key(a, a->enc_pk, aa), 0);
    unit_hex(KAT_PAIR_AA, want, 32);
    assert_memory_equal(aa, want, 32);

    assert_int_equal(keys_pair_key(a, c->enc_pk, ac), 0);
    assert_memory_not_equal(ab, ac, 32);
    assert_int_equal(keys_pair_key(c, a->enc_pk, ba), 0);
    assert_memory_equal(ac, ba, 32);

    /* Random pairs are symmetric too. */
    for (int i = 0; i < 20; i++) {
        keys_t *x = keys_generate(), *y = keys_generate();
        uint8_t xy[32], yx[32];
        assert_int_equal(keys_pair_key(x, y->enc_pk, xy), 0);
        assert_int_equal(keys_pair_key(y, x->enc_pk, yx), 0);
        assert_memory_equal(xy, yx, 32);
        keys_destroy(&x);
        keys_destroy(&y);
    }

    /* Low-order points give an all-zero shared secret: refused, output wiped. */
    static const char *low_order[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    };
    for (size_t i = 0; i < sizeof low_order / sizeof low_order[0]; i++) {
        uint8_t pk[32], out[32], zero[32] = {0};
        unit_hex(low_order[i], pk, 32);
        memset(out, 0xaa, sizeof out);
        assert_int_equal(keys_pair_key(a, pk, out), -1);
        assert_memory_equal(out, zero, 32);
    }
    keys_destroy(&a);
    keys_destroy(&b);
    keys_destroy(&c);
}

static void assert_fingerprint_shape(const char *fp)
{
    assert_int_equal(strlen(fp), 47);
    for (size_t i = 0; i < 47; i++) {
        if (i % 6 == 5)
            assert_int_equal(fp[i], ' ');
        else
            assert_true(fp[i] >= '0' && fp[i] <= '9');
    }
}

static void test_fingerprint(void **state)
{
    (void)state;
    char fp[KEYS_FINGERPRINT_LEN], fp2[KEYS_FINGERPRINT_LEN];
    keys_t *a = unit_fixed_keys(0);
    keys_t *b = unit_fixed_keys(100);

    keys_fingerprint(a->sign_pk, fp);
    assert_fingerprint_shape(fp);
    assert_string_equal(fp, KAT_A_FINGERPRINT);
    keys_fingerprint(b->sign_pk, fp);
    assert_string_equal(fp, KAT_B_FINGERPRINT);

    /* Only the identity key matters, and a one-bit change changes it. */
    uint8_t pk[32];
    memcpy(pk, a->sign_pk, 32);
    pk[31] ^= 0x01;
    keys_fingerprint(pk, fp2);
    assert_fingerprint_shape(fp2);
    assert_string_not_equal(fp2, KAT_A_FINGERPRINT);

    for (int i = 0; i < 50; i++) {
        randombytes_buf(pk, sizeof pk);
        keys_fingerprint(pk, fp);
        assert_fingerprint_shape(fp);
    }
    keys_destroy(&a);
    keys_destroy(&b);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    umask(022);   /* a typical umask: key files must still come out 0600 */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_save_refuses_overwrite),
        cmocka_unit_test(test_failed_write_leaves_no_key_file),
        cmocka_unit_test(test_load_refuses_bad_files),
        cmocka_unit_test(test_load_refuses_fifo_without_blocking),
        cmocka_unit_test(test_fixed_keys_known_answers),
        cmocka_unit_test(test_pair_key),
        cmocka_unit_test(test_fingerprint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
