/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes audit_decode (proto/audit_codec.c), which reads the entry of an inclusion proof
 * (`liaison audit verify-proof`, a file from anyone) back into its fields. The encoding
 * has one spelling: any bytes that decode re-encode with audit_encode to exactly those
 * bytes, with a message id of 0 or 16 bytes and a patient tag of 0 or 32. The input and
 * the string buffer are exact-size heap copies, so ASan sees any read or write past them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_codec.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *e = malloc(size ? size : 1);
    char *strings = malloc(size ? size : 1);
    FUZZ_CHECK(e != NULL && strings != NULL);
    if (size)
        memcpy(e, data, size);
    audit_record_t r;
    if (audit_decode(e, size, &r, strings, size) == 0) {
        FUZZ_CHECK(r.message_id_len == 0 || r.message_id_len == LIAISON_MSGID_BYTES);
        FUZZ_CHECK(r.patient_tag_len == 0 || r.patient_tag_len == LIAISON_HASH_BYTES);
        FUZZ_CHECK((r.message_id != NULL) == (r.message_id_len != 0));
        FUZZ_CHECK((r.patient_tag != NULL) == (r.patient_tag_len != 0));
        uint8_t *again = NULL;
        size_t alen = 0;
        FUZZ_CHECK(audit_encode(&r, &again, &alen) == 0);
        FUZZ_CHECK(alen == size && memcmp(again, e, size) == 0);
        free(again);
        uint8_t zero[LIAISON_HASH_BYTES] = {0}, h[LIAISON_HASH_BYTES];
        FUZZ_CHECK(audit_chain_hash(&r, zero, h) == 0);
    }
    free(strings);
    free(e);
    return 0;
}
