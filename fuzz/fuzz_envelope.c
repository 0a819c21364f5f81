/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes what a node does with bytes from a peer, as node "bob" receiving from "alice":
 * the input is tried both as a bare serialized Envelope and as a liaison.wire.Frame (the
 * unit of the peer socket), whose envelope, receipt, reject and witness kinds are then
 * handled as delivery.c and witness.c do (minus the database). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz_common.h"
#include "merkle.h"
#include "payload.h"
#include "receipt.h"
#include "seal.h"
#include "text.h"
#include "wire.pb-c.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static keys_t *alice, *bob;
static uint8_t pair_bob_alice[LIAISON_KEY_BYTES]; /* bob's side of the alice-bob wrap key */
static uint8_t pair_alice_self[LIAISON_KEY_BYTES]; /* alice's own copy (she is a recipient too) */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    alice = fuzz_keys(FUZZ_TAG_ALICE);
    bob = fuzz_keys(FUZZ_TAG_BOB);
    FUZZ_CHECK(keys_pair_key(bob, alice->enc_pk, pair_bob_alice) == 0);
    FUZZ_CHECK(keys_pair_key(alice, alice->enc_pk, pair_alice_self) == 0);
    return 0;
}

/* delivery.c accept_envelope, without the store and the clock. */
static void receive_envelope(const uint8_t *bytes, size_t len)
{
    char err[256];
    int code = -1;
    envelope_t *e = NULL;
    uint8_t hash[LIAISON_HASH_BYTES];

    if (envelope_parse(bytes, len, &e, &code, err, sizeof err) != 0) {
        FUZZ_CHECK(e == NULL);
        FUZZ_CHECK(code == LIAISON__WIRE__REJECT_CODE__REJECT_MALFORMED ||
                   code == LIAISON__WIRE__REJECT_CODE__REJECT_VERSION);
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
        return;
    }
    FUZZ_CHECK(e != NULL && e->env != NULL && e->hdr != NULL);
    const Liaison__Wire__Header *h = e->hdr;
    /* What envelope_parse promises to every caller. */
    FUZZ_CHECK(envelope_msgid(e) != NULL);
    FUZZ_CHECK(text_valid_id(h->sender));
    FUZZ_CHECK(h->n_recipients >= 1 && h->n_recipients <= LIAISON_MAX_RECIPIENTS);
    FUZZ_CHECK(h->n_keys == h->n_recipients);
    FUZZ_CHECK(envelope_recipient_index(e, h->sender) >= 0);
    for (size_t i = 0; i < h->n_recipients; i++) {
        FUZZ_CHECK(text_valid_id(h->recipients[i]));
        FUZZ_CHECK(envelope_recipient_index(e, h->recipients[i]) == (int)i);
    }
    FUZZ_CHECK(h->thread_id.len == 0 || h->thread_id.len == LIAISON_MSGID_BYTES);
    envelope_hash(bytes, len, hash);

    bool sig_ok = envelope_verify(e, alice->sign_pk) == 0;
    (void)payload_known_type(h->content_type);

    /* The daemon opens only envelopes whose signature verified; open all parsed ones
     * so the unwrap and decrypt paths see mutated inputs too. */
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    if (envelope_open(e, FUZZ_BOB, pair_bob_alice, &pt, &pt_len) == 0) {
        FUZZ_CHECK(pt != NULL && pt_len <= LIAISON_MAX_PAYLOAD);
        payload_info_t info;
        if (payload_validate(h->content_type, pt, pt_len, &info, err, sizeof err) == 0)
            FUZZ_CHECK(info.n_participants <= LIAISON_MAX_RECIPIENTS);
        sodium_memzero(pt, pt_len);
        free(pt);
        pt = NULL;
    } else {
        FUZZ_CHECK(pt == NULL);
    }
    /* As the sender reading its own copy. */
    if (envelope_open(e, FUZZ_ALICE, pair_alice_self, &pt, &pt_len) == 0) {
        sodium_memzero(pt, pt_len);
        free(pt);
        pt = NULL;
    }
    /* Not a recipient: must fail without touching anything. */
    FUZZ_CHECK(envelope_open(e, "mallory", pair_bob_alice, &pt, &pt_len) != 0 || envelope_recipient_index(e, "mallory") >= 0);
    free(pt);
    /* A valid signature by alice means alice sealed it: then she is the sender. */
    if (sig_ok)
        FUZZ_CHECK(strcmp(h->sender, FUZZ_ALICE) == 0);
    envelope_destroy(&e);
    FUZZ_CHECK(e == NULL);
}

/* delivery.c on_receipt as alice: the receipt must be bob's. */
static void receive_receipt(const uint8_t *bytes, size_t len)
{
    char err[160];
    receipt_t r;
    if (receipt_verify(bytes, len, bob->sign_pk, &r, err, sizeof err) == 0) {
        FUZZ_CHECK(text_valid_id(r.recipient) && text_valid_id(r.sender));
    }
}

/* delivery.c on_reject: only prints the reason and looks at the id's length. */
static void receive_reject(const Liaison__Wire__Reject *rj)
{
    char line[300];
    snprintf(line, sizeof line, "%d: %.200s", (int)rj->code, rj->reason ? rj->reason : "");
    (void)(rj->message_id.len == LIAISON_MSGID_BYTES);
    (void)text_valid_utf8(rj->reason, 200, false);
}

/* witness.c witness_on_request, as bob witnessing alice's log; the "held" checkpoint is
 * the empty tree or, for proof checking, a fixed root. */
static void receive_witness(const Liaison__Wire__WitnessRequest *wr)
{
    char err[256];
    checkpoint_t cp, parsed;
    const char *text = wr->checkpoint ? wr->checkpoint : "";
    size_t tlen = strlen(text);
    bool verified = checkpoint_verify(text, tlen, alice->sign_pk, &cp, err, sizeof err) == 0;
    if (checkpoint_parse(text, tlen, &parsed, err, sizeof err) != 0) {
        FUZZ_CHECK(!verified);
        return;
    }
    if (verified)
        FUZZ_CHECK(memcmp(&cp.root, &parsed.root, sizeof cp.root) == 0 && cp.size == parsed.size);
    /* The proof checks run on every parsed note, signed or not, to reach the Merkle code. */
    uint8_t proof[MERKLE_MAX_CONSISTENCY][MERKLE_HASH_BYTES];
    size_t plen = 0;
    if (checkpoint_proof_from_wire(wr, proof, &plen) != 0)
        return;
    uint8_t empty[MERKLE_HASH_BYTES], old_root[MERKLE_HASH_BYTES];
    merkle_empty_root(empty);
    /* As held root: the empty tree, the note's own root, and the first proof hash. */
    (void)merkle_verify_consistency(wr->old_size, parsed.size, empty, parsed.root, proof, plen);
    (void)merkle_verify_consistency(wr->old_size, parsed.size, parsed.root, parsed.root, proof, plen);
    memcpy(old_root, plen ? proof[0] : empty, sizeof old_root);
    (void)merkle_verify_consistency(wr->old_size, parsed.size, old_root, parsed.root, plen ? proof + 1 : proof,
                                    plen ? plen - 1 : 0);
    /* And as an inclusion proof of the first hash at index old_size. */
    if (plen)
        (void)merkle_verify_inclusion(proof[0], wr->old_size, parsed.size, proof + 1, plen - 1, parsed.root);
}

static void receive_frame(const uint8_t *bytes, size_t len)
{
    if (len > LIAISON_MAX_FRAME)
        return; /* ZMQ_MAXMSGSIZE drops it before the daemon sees it */
    Liaison__Wire__Frame *f = liaison__wire__frame__unpack(NULL, len, bytes);
    if (!f)
        return;
    switch (f->kind_case) {
    case LIAISON__WIRE__FRAME__KIND_ENVELOPE: receive_envelope(f->envelope.data, f->envelope.len); break;
    case LIAISON__WIRE__FRAME__KIND_RECEIPT: receive_receipt(f->receipt.data, f->receipt.len); break;
    case LIAISON__WIRE__FRAME__KIND_REJECT:
        if (f->reject)
            receive_reject(f->reject);
        break;
    case LIAISON__WIRE__FRAME__KIND_WITNESS:
        if (f->witness)
            receive_witness(f->witness);
        break;
    case LIAISON__WIRE__FRAME__KIND_WITNESS_REPLY:
        if (f->witness_reply)
            (void)(f->witness_reply->accepted && f->witness_reply->reason && f->witness_reply->reason[0]);
        break;
    default: break;
    }
    liaison__wire__frame__free_unpacked(f, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    receive_envelope(data, size);
    receive_frame(data, size);
    return 0;
}
