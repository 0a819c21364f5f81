/* SPDX-License-Identifier: Apache-2.0 */
/* End-to-end envelopes: sealing a payload for a list of recipients (content key,
 * per-recipient key wrap, AEAD body, Ed25519 signature) and parsing, verifying and
 * opening received envelope bytes. Never re-serializes what it verifies. */
#ifndef LIAISON_SEAL_H
#define LIAISON_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "keys.h"
#include "constants.h"
#include "wire.pb-c.h"

/* One recipient of a message being sealed: its id and the pairwise key between
 * the sender and it (keys_pair_key). The sender must be one of them. */
typedef struct seal_recipient {
    const char *id;
    const uint8_t *pair_key;  /* LIAISON_KEY_BYTES */
} seal_recipient_t;

typedef struct seal_input {
    const char *sender;                /* this node's id */
    const seal_recipient_t *recipients;
    size_t n_recipients;               /* 1..LIAISON_MAX_RECIPIENTS, sender included */
    uint32_t content_type;
    const uint8_t *thread_id;          /* NULL or LIAISON_MSGID_BYTES */
    uint64_t created_ms;
    const uint8_t *payload;
    size_t payload_len;                /* <= LIAISON_MAX_PAYLOAD */
} seal_input_t;

/* The message id of an envelope (PROTOCOL.md section 5): the creation time's low 48
 * bits, big-endian, then the first 10 bytes of
 * H32(D("liaison-v1/message-id") || u8(len(sender)) || sender || key_commitment). The
 * key commitment is that of a fresh random content key, so ids are unique; and since
 * the hash covers the sender, nobody else (a co-recipient who saw the id) can make an
 * envelope that a receiver accepts under it. */
void seal_message_id(uint64_t created_ms, const char *sender, const uint8_t commitment[static LIAISON_HASH_BYTES],
                     uint8_t id[static LIAISON_MSGID_BYTES]);

/* Seals in->payload. On success returns 0, writes the new message id into
 * msg_id and a malloc'd serialized Envelope into *out and *out_len. On failure returns
 * -1, *out is NULL, err says why (bad input: duplicate recipient, sender missing,
 * over a limit). */
__attribute__((warn_unused_result))
int seal_envelope(const keys_t *me, const seal_input_t *in, uint8_t msg_id[static LIAISON_MSGID_BYTES],
                  uint8_t **out, size_t *out_len, char *err, size_t errlen);

/* Bytes of an envelope_t's own arena: a 4 KB message with a few recipients unpacks
 * into it whole; a larger one spills over to malloc (arena.h). */
#define ENVELOPE_ARENA_BYTES 16384u

/* A parsed (structurally valid, not yet authenticated) envelope. The pointers
 * point into the unpacked protobuf, which the struct owns (in its arena). */
typedef struct envelope {
    Liaison__Wire__Envelope *env;
    Liaison__Wire__Header *hdr;
    bool uncommitted;   /* envelope_parse_stored: a header from before key commitments */
    pb_arena_t arena;
    _Alignas(16) uint8_t arena_buf[ENVELOPE_ARENA_BYTES];
} envelope_t;

/* Parses serialized Envelope bytes and its Header and checks every structural
 * rule and limit of PROTOCOL.md (sizes, counts, id syntax, one key per recipient
 * in order, no duplicate recipient, sender among recipients, version). No crypto.
 * The Envelope bytes must be in canonical protobuf form (fields 1,2,3 once each, in
 * order, no unknown fields), so each signed message has exactly one byte form and
 * envelope_hash identifies it; the Header must re-encode to its own length (no
 * unknown or repeated fields, no NUL inside strings).
 * Returns 0 and a new envelope in *out, or -1 with *out NULL, a RejectCode in
 * *code (MALFORMED or VERSION; TRY_LATER when out of memory: no verdict on the bytes)
 * and a reason in err. */
__attribute__((warn_unused_result))
int envelope_parse(const uint8_t *bytes, size_t len, envelope_t **out, int *code, char *err, size_t errlen);

/* As envelope_parse, into storage the caller provides (on its stack: no allocation for
 * a message that fits the envelope's arena). On success release it with
 * envelope_release, never envelope_destroy; on failure there is nothing to release. */
__attribute__((warn_unused_result))
int envelope_parse_in(envelope_t *e, const uint8_t *bytes, size_t len, int *code, char *err, size_t errlen);

/* The message id of an envelope that envelope_parse refused, if its header still
 * decodes and carries a 16-byte id (a VERSION, and a MALFORMED header, signature or
 * body): the refusal names the message, so that its sender can settle it rather than
 * send it again for ever. Returns true and writes id, or false. */
bool envelope_refused_msgid(const uint8_t *bytes, size_t len, uint8_t id[static LIAISON_MSGID_BYTES]);

/* As envelope_parse, for an envelope this node already holds in its own database: a
 * header without key_commitment is accepted (envelopes stored before commitments were
 * part of the protocol), and envelope_open then opens it without that check. Never for
 * bytes from the wire. */
__attribute__((warn_unused_result))
int envelope_parse_stored(const uint8_t *bytes, size_t len, envelope_t **out, int *code, char *err, size_t errlen);

/* Verifies the Ed25519 signature over the bytes as carried, with the sender's
 * identity key. Returns 0 if valid, -2 if it could not be checked for want of memory
 * (a message over a few KB needs a buffer), -1 otherwise. */
__attribute__((warn_unused_result))
int envelope_verify(const envelope_t *e, const uint8_t sign_pk[static LIAISON_KEY_BYTES]);

/* Index of id in the recipient list, or -1. */
int envelope_recipient_index(const envelope_t *e, const char *id);

/* Unwraps the content key for recipient `me_id` with the pairwise key between the
 * sender and me, then decrypts the body. Returns 0 with a malloc'd plaintext in *pt and *pt_len (caller wipes with sodium_memzero and
 * frees), -2 if out of memory (nothing is known to be wrong with the envelope), or -1
 * (not a recipient, wrong key, tampered). Does not check the signature:
 * the pairwise wrap only proves the sender or this node made it, so call
 * envelope_verify with the sender's identity key first. */
__attribute__((warn_unused_result))
int envelope_open(const envelope_t *e, const char *me_id, const uint8_t pair_key[static LIAISON_KEY_BYTES],
                  uint8_t **pt, size_t *pt_len);

/* The message id (16 bytes) of a parsed envelope. */
const uint8_t *envelope_msgid(const envelope_t *e);

/* Frees; sets *e to NULL. NULL-safe. */
void envelope_destroy(envelope_t **e);
/* Releases what an envelope parsed by envelope_parse_in holds (not e itself). NULL-safe. */
void envelope_release(envelope_t *e);

/* BLAKE2b-256("liaison-v1/envelope-hash" 0x00 || bytes): the hash receipts commit to. */
void envelope_hash(const uint8_t *bytes, size_t len, uint8_t out[static LIAISON_HASH_BYTES]);

#endif
