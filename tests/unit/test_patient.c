/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of daemon/patient.c's tags (PROTOCOL.md 10): the patient tag and the fold
 * tag recomputed here from their definitions with libsodium, ids that differ only in
 * letter case sharing a fold tag and nothing else, and ids longer than one chunk. */
#include "unit.h"

#include "patient.h"

/* KH32(key, D(domain) || id), D(x) = x || 0x00, with `lower` applied to the id if asked. */
static void reference(const uint8_t key[32], const char *domain, const char *id, bool lower, uint8_t out[32])
{
    size_t dl = strlen(domain), il = strlen(id);
    uint8_t *buf = malloc(dl + 1 + il);
    assert_non_null(buf);
    memcpy(buf, domain, dl);
    buf[dl] = 0;
    for (size_t i = 0; i < il; i++)
        buf[dl + 1 + i] = (uint8_t)(lower && id[i] >= 'A' && id[i] <= 'Z' ? id[i] - 'A' + 'a' : id[i]);
    assert_int_equal(crypto_generichash(out, 32, buf, dl + 1 + il, key, 32), 0);
    free(buf);
}

static void test_tags_match_their_definitions(void **state)
{
    (void)state;
    uint8_t key[32], got[32], want[32];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    char long_id[200];
    for (size_t i = 0; i < sizeof long_id - 1; i++)
        long_id[i] = "AbC-9._:z"[i % 9];
    long_id[sizeof long_id - 1] = 0;
    const char *ids[] = {"P-1042", "p-1042", "MRN:00017.a_B", long_id};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        patient_tag(key, ids[i], got);
        reference(key, "liaison-v1/patient", ids[i], false, want);
        assert_memory_equal(got, want, 32);
        patient_fold_tag(key, ids[i], got);
        reference(key, "liaison-v1/patient-fold", ids[i], true, want);
        assert_memory_equal(got, want, 32);
    }
}

static void test_only_letter_case_is_folded(void **state)
{
    (void)state;
    uint8_t key[32] = {1}, a[32], b[32], ta[32], tb[32];
    patient_fold_tag(key, "P-1042", a);
    patient_fold_tag(key, "p-1042", b);
    assert_memory_equal(a, b, 32);
    patient_tag(key, "P-1042", ta);
    patient_tag(key, "p-1042", tb);
    assert_memory_not_equal(ta, tb, 32); /* two patients to the tags */
    assert_memory_not_equal(a, ta, 32);  /* the fold tag is not a tag of the lower-case id */
    patient_tag(key, "p-1042", tb);
    assert_memory_not_equal(a, tb, 32);
    /* Punctuation and digits are not folded: P_1042 is not a case variant of P-1042. */
    patient_fold_tag(key, "P_1042", b);
    assert_memory_not_equal(a, b, 32);
    /* Another key, another fold tag. */
    uint8_t key2[32] = {2};
    patient_fold_tag(key2, "P-1042", b);
    assert_memory_not_equal(a, b, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tags_match_their_definitions),
        cmocka_unit_test(test_only_letter_case_is_folded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
