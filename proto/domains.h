/* SPDX-License-Identifier: Apache-2.0 */
/* The domain-separation strings of every liaison hash, key derivation and signature. */
#ifndef LIAISON_DOMAINS_H
#define LIAISON_DOMAINS_H

/*
 * On the wire each domain string is its ASCII bytes followed by exactly one 0x00
 * byte. That is what a C string literal holds, so code feeds sizeof(DOMAIN) bytes
 * (the literal with its terminating NUL), never strlen(DOMAIN).
 *
 * One string per use; never reuse one for a second purpose. docs/PROTOCOL.md cites
 * these names.
 */

/* BLAKE2b-256 key derivation: pairwise key-wrap key from X25519 (keys_pair_key). */
#define LIAISON_DOMAIN_PAIR_KEY "liaison-v1/pair-key"

/* BLAKE2b-512 over an Ed25519 public key: the spoken fingerprint (keys_fingerprint). */
#define LIAISON_DOMAIN_FINGERPRINT "liaison-v1/fingerprint"

/* Ed25519 self-signature of a contact card body (card_encode, card_decode). */
#define LIAISON_DOMAIN_CARD "liaison-v1/card"

/* XChaCha20-Poly1305 associated data prefix of a per-recipient content-key wrap. */
#define LIAISON_DOMAIN_KEY_WRAP "liaison-v1/key-wrap"

/* BLAKE2b-256 of an envelope's content key, carried in its signed header, so that
 * every recipient opens the same body (XChaCha20-Poly1305 alone does not commit to
 * its key). */
#define LIAISON_DOMAIN_KEY_COMMITMENT "liaison-v1/key-commitment"

/* BLAKE2b-256 of an envelope's sender and key commitment, whose first 10 bytes end
 * its message id: nobody else can send an envelope under that id (seal_message_id). */
#define LIAISON_DOMAIN_MESSAGE_ID "liaison-v1/message-id"

/* BLAKE2b-256 of a case review's opener and salt, whose first 16 bytes are the review
 * id: nobody else can open a review under it, and it is never a message's id
 * (payload_review_id). */
#define LIAISON_DOMAIN_REVIEW_ID "liaison-v1/review-id"

/* Ed25519 signature of an envelope's header and body. */
#define LIAISON_DOMAIN_ENVELOPE "liaison-v1/envelope"

/* BLAKE2b-256 of serialized envelope bytes, committed to by receipts. */
#define LIAISON_DOMAIN_ENVELOPE_HASH "liaison-v1/envelope-hash"

/* Ed25519 signature of a delivery receipt body. */
#define LIAISON_DOMAIN_RECEIPT "liaison-v1/receipt"

/* Ed25519 signature of the Merkle root of a batch of delivery receipt bodies. */
#define LIAISON_DOMAIN_RECEIPT_BATCH "liaison-v1/receipt-batch"

/* Audit log chain hash (audit_chain_hash). */
#define LIAISON_DOMAIN_AUDIT_CHAIN "liaison-v1/audit-chain"

/* BLAKE2b-256 keyed with the node's patient key: a patient's tag (daemon/patient.c). */
#define LIAISON_DOMAIN_PATIENT "liaison-v1/patient"

/* BLAKE2b-256 keyed with the node's patient key over the id with A-Z lowered: the fold
 * tag shared by case variants of one id (daemon/patient.c). */
#define LIAISON_DOMAIN_PATIENT_FOLD "liaison-v1/patient-fold"

#endif
