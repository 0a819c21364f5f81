/* SPDX-License-Identifier: Apache-2.0 */
/* Protocol constants and limits shared by every parser of liaison bytes. */
#ifndef LIAISON_CONSTANTS_H
#define LIAISON_CONSTANTS_H

#include <stdint.h>
#include <time.h>

#define LIAISON_PROTOCOL_VERSION 1u

#define LIAISON_MSGID_BYTES 16u          /* message and thread ids */
#define LIAISON_KEY_BYTES 32u            /* every public key and symmetric key */
#define LIAISON_HASH_BYTES 32u           /* BLAKE2b-256 */
#define LIAISON_SIG_BYTES 64u            /* Ed25519 */
#define LIAISON_NONCE_BYTES 24u          /* XChaCha20-Poly1305-IETF */
#define LIAISON_TAG_BYTES 16u            /* Poly1305 */

#define LIAISON_MAX_ID 64u               /* node id, bytes */
#define LIAISON_MAX_NAME 128u            /* display name, organization */
#define LIAISON_MAX_ENDPOINT 256u
#define LIAISON_MAX_RECIPIENTS 32u       /* sender included */
#define LIAISON_MAX_HEADER 8192u         /* serialized Header */
#define LIAISON_MAX_PAYLOAD (512u * 1024u)  /* plaintext body */
#define LIAISON_MAX_BODY (LIAISON_NONCE_BYTES + LIAISON_MAX_PAYLOAD + LIAISON_TAG_BYTES)
#define LIAISON_MAX_ENVELOPE (LIAISON_MAX_HEADER + LIAISON_MAX_BODY + 256u)
#define LIAISON_MAX_FRAME (LIAISON_MAX_ENVELOPE + 64u)  /* ZMQ_MAXMSGSIZE between daemons */
#define LIAISON_MAX_RECEIPT 1024u
#define LIAISON_MAX_CARD_TEXT 2048u
#define LIAISON_MAX_CONTROL (LIAISON_MAX_PAYLOAD + 64u * 1024u) /* control request */

/* Milliseconds since the Unix epoch, from the real-time clock. */
static inline uint64_t liaison_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
