/* SPDX-License-Identifier: Apache-2.0 */
/* Patient tags: the keyed hash that stands for a patient's local id in the audit
 * log and the message index, so a copy of the database does not list patients. */
#ifndef LIAISON_PATIENT_H
#define LIAISON_PATIENT_H

#include <stddef.h>
#include <stdint.h>

#include "constants.h"

#define PATIENT_KEY_FILE "patient.key"

/* tag = BLAKE2b-256(key = patient key, "liaison-v1/patient" 0x00 || patient id). */
void patient_tag(const uint8_t key[static LIAISON_KEY_BYTES], const char *patient_id,
                 uint8_t out[static LIAISON_HASH_BYTES]);

/* fold = BLAKE2b-256(key = patient key, "liaison-v1/patient-fold" 0x00 || the id with
 * A-Z lowered to a-z): equal for ids that differ only in letter case, so that such an
 * id, which is another patient to the tags above, can be pointed out (store.h,
 * patient_folds). */
void patient_fold_tag(const uint8_t key[static LIAISON_KEY_BYTES], const char *patient_id,
                      uint8_t out[static LIAISON_HASH_BYTES]);

/* Returned by patient_key_load when the key file does not exist. */
#define PATIENT_KEY_MISSING 1

/* Creates dir/patient.key (O_EXCL, mode 0600) holding a new random key, copied to
 * key. Only for a new node: tags made with another key do not match the stored ones.
 * Returns 0, or -1 with err set (nothing is left behind). */
int patient_key_create(const char *dir, uint8_t key[static LIAISON_KEY_BYTES], char *err, size_t errlen);

/* Loads dir/patient.key (a regular 32-byte file, not readable by group or others).
 * Never creates it: returns 0, PATIENT_KEY_MISSING if the file does not exist, or
 * -1 if it is unusable; err is set unless 0 is returned, and key is wiped. */
int patient_key_load(const char *dir, uint8_t key[static LIAISON_KEY_BYTES], char *err, size_t errlen);

#endif
