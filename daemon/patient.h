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

/* Loads dir/patient.key (32 bytes, mode 0600), creating it with a random key if
 * it does not exist. Returns 0, or -1 with err set. */
int patient_key_load(const char *dir, uint8_t key[static LIAISON_KEY_BYTES], char *err, size_t errlen);

#endif
