/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes payload validation, which runs on every decrypted body a node receives and on
 * every payload a local user sends: the first input byte selects the content type (0..6),
 * the rest is the serialized payload. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    payload_info_t info;

    if (size < 1)
        return 0;
    uint32_t ct = data[0] % 7u;
    /* An exact-size heap copy, so ASan sees any read past the end. */
    size_t len = size - 1;
    uint8_t *body = malloc(len ? len : 1);
    FUZZ_CHECK(body != NULL);
    if (len)
        memcpy(body, data + 1, len);

    FUZZ_CHECK(payload_type_name(ct) != NULL);
    memset(&info, 0xa5, sizeof info); /* payload_validate must fill all of it */
    int rc = payload_validate(ct, body, len, &info, err, sizeof err);
    if (rc == 0) {
        FUZZ_CHECK(payload_known_type(ct));
        FUZZ_CHECK(memchr(info.patient, '\0', sizeof info.patient) != NULL);
        FUZZ_CHECK(info.n_participants <= LIAISON_MAX_RECIPIENTS);
        for (size_t i = 0; i < info.n_participants; i++)
            FUZZ_CHECK(memchr(info.participants[i], '\0', sizeof info.participants[i]) != NULL);
        FUZZ_CHECK(memchr(info.added, '\0', sizeof info.added) != NULL);
    } else {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
    }
    /* Validation without the info output must agree. */
    FUZZ_CHECK(payload_validate(ct, body, len, NULL, err, sizeof err) == rc);
    free(body);
    return 0;
}
