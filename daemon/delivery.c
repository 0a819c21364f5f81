/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the message lifecycle between daemons: transmit with backoff, accept or
 * reject inbound envelopes, store receipts and rejections. */
#include "delivery.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "arena.h"
#include "clinical.h"
#include "log.h"
#include "patient.h"
#include "payload.h"
#include "receipt.h"
#include "seal.h"
#include "text.h"
#include "transport.h"
#include "waits.h"
#include "witness.h"
#include "wire.pb-c.h"

#define PUMP_BATCH 1000u
#define FRAME_ARENA_BYTES 8192u /* a peer frame with a 4 KB message unpacks within it */
#define REJECT_REASON_KEPT 200u /* bytes of a peer's Reject.reason we keep */

static bool code_is_permanent(int code)
{
    return code != LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER &&
           code != LIAISON__WIRE__REJECT_CODE__REJECT_NOT_IN_DIRECTORY;
}

static const char *code_name(int code)
{
    switch (code) {
    case LIAISON__WIRE__REJECT_CODE__REJECT_MALFORMED: return "malformed";
    case LIAISON__WIRE__REJECT_CODE__REJECT_VERSION: return "version";
    case LIAISON__WIRE__REJECT_CODE__REJECT_SIGNATURE: return "signature";
    case LIAISON__WIRE__REJECT_CODE__REJECT_SENDER: return "sender";
    case LIAISON__WIRE__REJECT_CODE__REJECT_NOT_RECIPIENT: return "not-recipient";
    case LIAISON__WIRE__REJECT_CODE__REJECT_CONTENT: return "content";
    case LIAISON__WIRE__REJECT_CODE__REJECT_CLOCK: return "clock";
    case LIAISON__WIRE__REJECT_CODE__REJECT_CONFLICT: return "conflict";
    case LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER: return "try-later";
    case LIAISON__WIRE__REJECT_CODE__REJECT_POLICY: return "policy";
    case LIAISON__WIRE__REJECT_CODE__REJECT_NOT_IN_DIRECTORY: return "not-in-directory";
    default: return "unknown";
    }
}

/* Packs a Frame into a malloc'd buffer. */
static uint8_t *frame_pack(const Liaison__Wire__Frame *f, size_t *len)
{
    *len = liaison__wire__frame__get_packed_size(f);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf)
        liaison__wire__frame__pack(f, buf);
    return buf;
}

static uint8_t *reject_frame(const uint8_t *msgid, int code, const char *reason, size_t *len)
{
    Liaison__Wire__Reject r = LIAISON__WIRE__REJECT__INIT;
    r.code = (Liaison__Wire__RejectCode)code;
    r.reason = (char *)reason;
    if (msgid)
        r.message_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, (uint8_t *)msgid};
    Liaison__Wire__Frame f;
    liaison__wire__frame__init(&f);
    f.kind_case = LIAISON__WIRE__FRAME__KIND_REJECT;
    f.reject = &r;
    return frame_pack(&f, len);
}

uint8_t *delivery_try_later_frame(const uint8_t msgid[static LIAISON_MSGID_BYTES], size_t *len)
{
    return reject_frame(msgid, LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER,
                        "the recipient could not commit the message right now", len);
}

/* Answers on the ROUTER connection rid with a Reject, after the current batch commits. */
static void send_reject(node_t *n, const uint8_t *rid, size_t rid_len, const uint8_t *msgid, int code,
                        const char *reason)
{
    size_t len;
    uint8_t *buf = reject_frame(msgid, code, reason, &len);
    if (!buf)
        return;
    if (msgid)
        node_defer_about(n, rid, rid_len, buf, len, msgid);
    else
        node_defer(n, n->router, rid, rid_len, buf, len, false, 0);
}

/* Records the refusal of an inbound frame and answers the peer with a Reject. */
static void reject(node_t *n, const char *peer, const uint8_t *rid, size_t rid_len, const uint8_t *msgid, int code,
                   uint32_t content_type, const char *reason)
{
    char details[300];
    snprintf(details, sizeof details, "%s: %s", code_name(code), reason);
    char actor[LIAISON_MAX_ID + 8];
    snprintf(actor, sizeof actor, "peer:%s", peer && peer[0] ? peer : "?");
    log_notice("refused a message from %s: %s", peer && peer[0] ? peer : "an unknown peer", details);
    if (store_op_begin(n->store) == 0) {
        audit_entry_t e = {.actor = actor, .action = "message-rejected", .outcome = "refused", .message_id = msgid,
                           .peer = peer, .content_type = content_type, .details = details};
        store_op_end(n->store, node_audit(n, &e) == 0);
    }
    send_reject(n, rid, rid_len, msgid, code, reason);
}

void delivery_refuse_connection(node_t *n, const uint8_t *rid, size_t rid_len)
{
    send_reject(n, rid, rid_len, NULL, LIAISON__WIRE__REJECT_CODE__REJECT_NOT_IN_DIRECTORY,
                "your transport key is not in this node's directory");
}

static void send_receipt(node_t *n, const uint8_t *rid, size_t rid_len, const uint8_t *msgid, const uint8_t *receipt,
                         size_t rlen)
{
    Liaison__Wire__Frame f;
    liaison__wire__frame__init(&f);
    f.kind_case = LIAISON__WIRE__FRAME__KIND_RECEIPT;
    f.receipt = (ProtobufCBinaryData){rlen, (uint8_t *)receipt};
    size_t len;
    uint8_t *buf = frame_pack(&f, &len);
    if (buf)
        node_defer_about(n, rid, rid_len, buf, len, msgid);
}

/* Holds the receipt for a message stored in the open batch (again: one held earlier in
 * the batch, for a retransmission of the same envelope). Returns 0 or -1. */
static int hold_receipt(node_t *n, const uint8_t *rid, size_t rid_len, const receipt_t *r, bool again)
{
    if (rid_len > sizeof n->held[0].rid)
        return -1;
    if (n->n_held == n->cap_held) {
        size_t cap = n->cap_held ? 2 * n->cap_held : 64;
        held_receipt_t *h = realloc(n->held, cap * sizeof *h);
        if (!h)
            return -1;
        n->held = h;
        n->cap_held = cap;
    }
    held_receipt_t *h = &n->held[n->n_held++];
    h->r = *r;
    memcpy(h->rid, rid, rid_len);
    h->rid_len = rid_len;
    h->txn = store_txn_id(n->store);
    h->again = again;
    return 0;
}

/* Index of the receipt held in transaction txn for message id (not a copy), or -1. */
static ptrdiff_t held_find(const node_t *n, const uint8_t *id, uint64_t txn)
{
    for (size_t i = 0; i < n->n_held; i++)
        if (!n->held[i].again && n->held[i].txn == txn &&
            memcmp(n->held[i].r.message_id, id, LIAISON_MSGID_BYTES) == 0)
            return (ptrdiff_t)i;
    return -1;
}

/* Signs the receipts held[idx[0..k)) as one batch, stores them, and queues them for
 * the commit; bytes[idx[i]] keeps each receipt for retransmissions in the batch. */
static int sign_batch(node_t *n, const size_t *idx, size_t k, uint8_t **bytes, size_t *lens)
{
    receipt_t *rs = malloc(k * sizeof *rs);
    uint8_t **outs = calloc(k, sizeof *outs);
    size_t *out_lens = calloc(k, sizeof *out_lens);
    int rc = -1;
    if (!rs || !outs || !out_lens)
        goto out;
    for (size_t i = 0; i < k; i++)
        rs[i] = n->held[idx[i]].r;
    if (receipt_make_batch(n->keys, rs, k, outs, out_lens) != 0) {
        log_err("cannot sign a batch of %zu receipts", k);
        goto out;
    }
    bool began = store_op_begin(n->store) == 0, ok = began;
    for (size_t i = 0; ok && i < k; i++)
        ok = store_receipt_issued(n->store, rs[i].message_id, outs[i], out_lens[i]) == 0;
    if (!began || store_op_end(n->store, ok) != 0 || !ok) {
        log_err("cannot store %zu receipts: %s", k, store_error(n->store));
        goto out;
    }
    for (size_t i = 0; i < k; i++) {
        const held_receipt_t *h = &n->held[idx[i]];
        send_receipt(n, h->rid, h->rid_len, h->r.message_id, outs[i], out_lens[i]);
        bytes[idx[i]] = outs[i];
        lens[idx[i]] = out_lens[i];
        outs[i] = NULL;
    }
    rc = 0;
out:
    if (outs)
        for (size_t i = 0; i < k; i++)
            free(outs[i]);
    free(outs);
    free(out_lens);
    free(rs);
    return rc;
}

/* Answers each held receipt not marked in sent[] (sent NULL: none was queued) with
 * TRY_LATER: its message is not stored, or its receipt not signed and stored, by a
 * transaction that commits. Deferred with the open transaction, if any: it is sent
 * after the commit, or after its rollback (node_commit answers TRY_LATER again). */
static void try_later_unsent(node_t *n, const bool *sent)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_held; i++) {
        if (sent && sent[i])
            continue;
        const held_receipt_t *h = &n->held[i];
        size_t len;
        uint8_t *buf = delivery_try_later_frame(h->r.message_id, &len);
        if (buf && node_defer_about(n, h->rid, h->rid_len, buf, len, h->r.message_id) == 0)
            k++;
    }
    if (k)
        log_warn("%zu messages received are not stored after all: answered TRY_LATER (their senders retry)", k);
}

int delivery_before_commit(node_t *n)
{
    size_t total = n->n_held;
    if (total == 0)
        return 0;
    /* A transaction SQLite rolled back on its own took its messages with it: nothing
     * to sign, and no new transaction to open for receipts of messages not stored. */
    if (!store_txn_alive(n->store)) {
        log_err("the transaction was rolled back after an error: %zu receipts dropped", total);
        try_later_unsent(n, NULL);
        n->n_held = 0;
        return -1;
    }
    int rc = 0;
    uint64_t txn = store_txn_id(n->store);
    uint8_t **bytes = calloc(total, sizeof *bytes);
    size_t *lens = calloc(total, sizeof *lens), *idx = calloc(total, sizeof *idx);
    bool *done = calloc(total, sizeof *done), *sent = calloc(total, sizeof *sent);
    if (!bytes || !lens || !idx || !done || !sent) {
        rc = -1;
        goto out;
    }
    /* One batch per sender (each sender learns only its own receipts' proofs), in the
     * order the envelopes arrived, at most RECEIPT_BATCH_MAX to a signature. A receipt
     * held by a transaction rolled back since is not signed: its message is not stored. */
    for (size_t i = 0; rc == 0 && i < total; i++) {
        if (done[i] || n->held[i].again || n->held[i].txn != txn)
            continue;
        size_t k = 0;
        for (size_t j = i; j < total && k < RECEIPT_BATCH_MAX; j++) {
            const held_receipt_t *h = &n->held[j];
            if (!done[j] && !h->again && h->txn == txn && strcmp(h->r.sender, n->held[i].r.sender) == 0) {
                done[j] = true;
                idx[k++] = j;
            }
        }
        rc = sign_batch(n, idx, k, bytes, lens);
    }
    for (size_t i = 0; i < total; i++)
        sent[i] = bytes[i] != NULL;
    for (size_t i = 0; rc == 0 && i < total; i++) {
        const held_receipt_t *h = &n->held[i];
        if (!h->again || h->txn != txn)
            continue;
        ptrdiff_t first = held_find(n, h->r.message_id, txn);
        if (first >= 0 && bytes[first]) {
            send_receipt(n, h->rid, h->rid_len, h->r.message_id, bytes[first], lens[first]);
            sent[i] = true;
        }
    }
out:
    try_later_unsent(n, sent);
    if (bytes)
        for (size_t i = 0; i < total; i++)
            free(bytes[i]);
    free(bytes);
    free(lens);
    free(idx);
    free(done);
    free(sent);
    n->n_held = 0;
    return rc;
}

static void join_recipients(const Liaison__Wire__Header *h, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = 0;
    for (size_t i = 0; i < h->n_recipients && off < cap; i++)
        off += (size_t)snprintf(out + off, cap - off, "%s%s", i ? "," : "", h->recipients[i]);
}

static void accept_envelope(node_t *n, peer_t *from, const uint8_t *rid, size_t rid_len, const uint8_t *bytes,
                            size_t len)
{
    const char *peer = from->card.id;
    char err[256];
    int code = 0;
    payload_info_t info PAYLOAD_INFO_WIPED; /* before every goto: its wipe runs on each way out */
    /* Parsed into storage on the stack: no allocation per inbound message (a 4 KB one
     * fits the envelope's arena). */
    envelope_t env_store, *e = NULL;
    uint8_t *pt = NULL, *stored_receipt = NULL;
    size_t pt_len = 0, stored_len = 0;

    if (envelope_parse_in(&env_store, bytes, len, &code, err, sizeof err) != 0) {
        uint8_t refused[LIAISON_MSGID_BYTES];
        bool named = code != LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER && envelope_refused_msgid(bytes, len, refused);
        reject(n, peer, rid, rid_len, named ? refused : NULL, code, 0, err);
        goto out;
    }
    e = &env_store;
    const Liaison__Wire__Header *h = e->hdr;
    const uint8_t *msgid = envelope_msgid(e);
    uint32_t ct = h->content_type;
    if (strcmp(h->sender, peer) != 0) {
        snprintf(err, sizeof err, "sender '%.64s' is not the connected peer '%s'", h->sender, peer);
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_SENDER, ct, err);
        goto out;
    }
    int vrc = envelope_verify(e, from->card.sign_pk);
    if (vrc == -2) { /* no verdict: a final SIGNATURE refusal would lose the message */
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER, ct, "out of memory");
        goto out;
    }
    if (vrc != 0) {
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_SIGNATURE, ct,
               "signature does not verify with the sender's identity key");
        goto out;
    }
    if (envelope_recipient_index(e, n->cfg.id) < 0) {
        snprintf(err, sizeof err, "this node (%s) is not a recipient", n->cfg.id);
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_NOT_RECIPIENT, ct, err);
        goto out;
    }
    if (!payload_known_type(ct)) {
        snprintf(err, sizeof err, "content type %" PRIu32 " is not known here", ct);
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_CONTENT, ct, err);
        goto out;
    }
    uint8_t hash[LIAISON_HASH_BYTES];
    envelope_hash(bytes, len, hash);
    store_msg_t m;
    int found = store_msg_get(n->store, msgid, &m, NULL, NULL, &stored_receipt, &stored_len);
    if (found < 0) {
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER, ct, "database error");
        goto out;
    }
    if (found == 0) {
        /* A replay or a retry after a lost receipt: answer with the original receipt, store
         * nothing. A copy of a message stored in the open batch, whose receipt is not
         * signed yet, gets that receipt too once the batch is signed. */
        ptrdiff_t held = stored_receipt ? -1 : held_find(n, msgid, store_txn_id(n->store));
        if (!m.outgoing && sodium_memcmp(m.envelope_hash, hash, LIAISON_HASH_BYTES) == 0) {
            /* Stored, but with no receipt to be found (a database restored in part, or
             * edited): the message is here, so a new receipt alone says what is true,
             * where a CONFLICT would refuse the sender's own envelope for good. */
            bool reissue = !stored_receipt && held < 0;
            char actor[LIAISON_MAX_ID + 8];
            snprintf(actor, sizeof actor, "peer:%s", peer);
            if (store_op_begin(n->store) == 0) {
                audit_entry_t a = {.actor = actor, .action = "message-duplicate", .outcome = "ok",
                                   .message_id = msgid, .peer = peer, .content_type = ct,
                                   .details = reissue ? "already stored, its receipt missing: receipt issued again"
                                                      : "already stored; original receipt sent again"};
                store_op_end(n->store, node_audit(n, &a) == 0);
            }
            if (stored_receipt) {
                send_receipt(n, rid, rid_len, msgid, stored_receipt, stored_len);
            } else if (!reissue) {
                receipt_t first = n->held[held].r; /* hold_receipt may move n->held */
                if (hold_receipt(n, rid, rid_len, &first, true) != 0)
                    log_warn("out of memory: a retransmission from %s goes unanswered (it is retried)", peer);
            } else {
                receipt_t r = {.stored_ms = m.stored_ms};
                memcpy(r.message_id, msgid, LIAISON_MSGID_BYTES);
                memcpy(r.envelope_hash, hash, LIAISON_HASH_BYTES);
                snprintf(r.recipient, sizeof r.recipient, "%s", n->cfg.id);
                snprintf(r.sender, sizeof r.sender, "%s", m.sender);
                log_warn("a message from %s is stored here without its receipt (database restored in part?):"
                         " signing it again",
                         peer);
                if (hold_receipt(n, rid, rid_len, &r, false) != 0)
                    log_warn("out of memory: a retransmission from %s goes unanswered (it is retried)", peer);
            }
        } else {
            reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_CONFLICT, ct,
                   "message id already used by a different message");
        }
        goto out;
    }
    /* After the look-up: a retry of a message stored here, whose receipt was lost, gets
     * that receipt however old it is by now; only a new message must be within the
     * clock window and max_age_s. */
    uint64_t now = liaison_now_ms();
    if (h->created_ms > now + (uint64_t)n->cfg.clock_window_s * 1000u) {
        snprintf(err, sizeof err, "created %" PRIu64 " s in the future (clock window %" PRIu32 " s)",
                 (h->created_ms - now) / 1000u, n->cfg.clock_window_s);
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_CLOCK, ct, err);
        goto out;
    }
    if (now > h->created_ms && now - h->created_ms > (uint64_t)n->cfg.max_age_s * 1000u) {
        snprintf(err, sizeof err, "created %" PRIu64 " s ago, older than the accepted %" PRIu32 " s",
                 (now - h->created_ms) / 1000u, n->cfg.max_age_s);
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_CLOCK, ct, err);
        goto out;
    }
    int orc = envelope_open(e, n->cfg.id, from->pair_key, &pt, &pt_len);
    if (orc != 0) {
        reject(n, peer, rid, rid_len, msgid,
               orc == -2 ? LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER : LIAISON__WIRE__REJECT_CODE__REJECT_CONTENT,
               ct, orc == -2 ? "out of memory" : "cannot decrypt the content key or the body");
        goto out;
    }
    int prc = payload_validate(ct, pt, pt_len, &info, err, sizeof err);
    if (prc == -2) {
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER, ct, "out of memory");
        goto out;
    }
    if (prc != 0) {
        /* Name the field, never its value: the reason is audited and sent back. */
        char *colon = strchr(err, ':');
        if (colon)
            snprintf(colon, sizeof err - (size_t)(colon - err), ": invalid");
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_CONTENT, ct, err);
        goto out;
    }
    if (ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW &&
        (h->thread_id.len != LIAISON_MSGID_BYTES || memcmp(h->thread_id.data, info.ref_id, LIAISON_MSGID_BYTES) != 0)) {
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_CONTENT, ct,
               "a review message must carry its review id as thread id");
        goto out;
    }
    int checked = clinical_inbound_check(n, peer, ct, &info,
                                         h->thread_id.len == LIAISON_MSGID_BYTES ? h->thread_id.data : NULL,
                                         h->recipients, h->n_recipients, err, sizeof err);
    if (checked == -2) { /* a read error here is no reason to refuse the message for good */
        log_warn("cannot check a message from %s: %s: %s", peer, err, store_error(n->store));
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER, ct, "database error");
        goto out;
    }
    if (checked == -3) { /* it overtook what it refers to: its sender tries again */
        /* Audited the first time (of the last 64 such messages), not at every retry: a
         * message that waits days for a review's open would fill the log. */
        bool seen = false;
        for (size_t i = 0; i < sizeof n->later_audited / sizeof n->later_audited[0] && !seen; i++)
            seen = memcmp(n->later_audited[i], msgid, LIAISON_MSGID_BYTES) == 0;
        if (seen) {
            send_reject(n, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER, err);
        } else {
            memcpy(n->later_audited[n->later_next], msgid, LIAISON_MSGID_BYTES);
            n->later_next = (n->later_next + 1) % (sizeof n->later_audited / sizeof n->later_audited[0]);
            reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER, ct, err);
        }
        goto out;
    }
    if (checked != 0) {
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_POLICY, ct, err);
        goto out;
    }
    memset(&m, 0, sizeof m);
    memcpy(m.id, msgid, LIAISON_MSGID_BYTES);
    m.outgoing = false;
    snprintf(m.sender, sizeof m.sender, "%s", h->sender);
    join_recipients(h, m.recipients, sizeof m.recipients);
    m.created_ms = h->created_ms;
    m.content_type = ct;
    if (h->thread_id.len == LIAISON_MSGID_BYTES) {
        m.has_thread = true;
        memcpy(m.thread_id, h->thread_id.data, LIAISON_MSGID_BYTES);
    }
    m.stored_ms = now;
    uint8_t fold[LIAISON_HASH_BYTES] = {0};
    if (info.patient[0]) {
        m.has_patient_tag = true;
        patient_tag(n->patient_key, info.patient, m.patient_tag);
        patient_fold_tag(n->patient_key, info.patient, fold);
    }
    memcpy(m.envelope_hash, hash, LIAISON_HASH_BYTES);
    m.ack_required = info.ack_required;
    m.urgent = info.urgent;
    if (ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK) {
        m.has_ref = true;
        memcpy(m.ref_id, info.ref_id, LIAISON_MSGID_BYTES);
    }
    receipt_t r = {.stored_ms = now};
    memcpy(r.message_id, msgid, LIAISON_MSGID_BYTES);
    memcpy(r.envelope_hash, hash, LIAISON_HASH_BYTES);
    snprintf(r.recipient, sizeof r.recipient, "%s", n->cfg.id);
    snprintf(r.sender, sizeof r.sender, "%s", h->sender);
    size_t held_mark = n->n_held;
    bool ok = store_op_begin(n->store) == 0;
    if (ok) {
        char actor[LIAISON_MAX_ID + 8];
        snprintf(actor, sizeof actor, "peer:%s", peer);
        uint8_t ack_tag[LIAISON_HASH_BYTES];
        char ack_details[64] = "";
        bool ack_tagged = ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK &&
                          clinical_ack_audit(n, info.ref_id, ack_tag, ack_details, sizeof ack_details);
        audit_entry_t a = {.actor = actor, .action = "message-received", .outcome = "ok", .message_id = msgid,
                           .peer = peer, .content_type = ct,
                           .patient_tag = m.has_patient_tag ? m.patient_tag : ack_tagged ? ack_tag : NULL,
                           .details = ack_details[0] ? ack_details : NULL};
        /* The receipt is signed with the rest of its batch, just before the commit
         * (delivery_before_commit), and sent after it. */
        ok = store_msg_insert(n->store, &m, bytes, len) == 0 && hold_receipt(n, rid, rid_len, &r, false) == 0 &&
             (!m.has_patient_tag || store_patient_seen(n->store, m.patient_tag, fold, false) == 0) &&
             clinical_record(n, h->sender, msgid, ct, &info, m.has_patient_tag ? m.patient_tag : NULL, h->recipients,
                             h->n_recipients, h->created_ms) == 0 &&
             node_audit(n, &a) == 0;
        if (store_op_end(n->store, ok) != 0)
            ok = false;
    }
    if (!ok) {
        n->n_held = held_mark; /* the operation was rolled back: no receipt for it */
        log_warn("cannot store a message from %s: %s", peer, store_error(n->store));
        reject(n, peer, rid, rid_len, msgid, LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER, ct,
               "the recipient cannot store messages right now");
        goto out;
    }
    if (ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK)
        waits_touch(n->waits, info.ref_id); /* a wait for acknowledgements may end */
    char hex[TEXT_MSGID_HEX];
    text_msgid_to_hex(msgid, hex);
    log_debug("received %s from %s", hex, peer);
out:
    if (pt) {
        sodium_memzero(pt, pt_len);
        free(pt);
    }
    free(stored_receipt);
    envelope_release(e);
}

void delivery_inbound(node_t *n, peer_t *from, const uint8_t *rid, size_t rid_len, const uint8_t *frame, size_t len,
                      int nframes)
{
    char err[96];
    if (nframes != 1) {
        snprintf(err, sizeof err, "expected one frame per message, got %d", nframes);
        reject(n, from->card.id, rid, rid_len, NULL, LIAISON__WIRE__REJECT_CODE__REJECT_MALFORMED, 0, err);
        return;
    }
    if (len > LIAISON_MAX_FRAME) {
        snprintf(err, sizeof err, "frame of %zu bytes is over the limit of %u", len, LIAISON_MAX_FRAME);
        reject(n, from->card.id, rid, rid_len, NULL, LIAISON__WIRE__REJECT_CODE__REJECT_MALFORMED, 0, err);
        return;
    }
    /* Unpacked into an arena on the stack (a 4 KB message fits; a larger one spills to
     * malloc), not piece by piece on the heap. */
    _Alignas(16) uint8_t buf[FRAME_ARENA_BYTES];
    pb_arena_t arena;
    pb_arena_init(&arena, buf, sizeof buf);
    Liaison__Wire__Frame *f = liaison__wire__frame__unpack(&arena.alloc, len, frame);
    if (!f) {
        pb_arena_release(&arena);
        reject(n, from->card.id, rid, rid_len, NULL, LIAISON__WIRE__REJECT_CODE__REJECT_MALFORMED, 0,
               "not a liaison frame");
        return;
    }
    if (f->kind_case == LIAISON__WIRE__FRAME__KIND_ENVELOPE)
        accept_envelope(n, from, rid, rid_len, f->envelope.data, f->envelope.len);
    else if (f->kind_case == LIAISON__WIRE__FRAME__KIND_WITNESS && f->witness)
        witness_on_request(n, from, rid, rid_len, f->witness);
    else
        reject(n, from->card.id, rid, rid_len, NULL, LIAISON__WIRE__REJECT_CODE__REJECT_MALFORMED, 0,
               "only envelopes and checkpoints are accepted on the peer socket");
    liaison__wire__frame__free_unpacked(f, &arena.alloc);
    pb_arena_release(&arena);
}

uint64_t delivery_horizon_ms(const node_t *n)
{
    /* The furthest any schedule below sets a retry: the backoff cap, or a TRY_LATER. */
    uint64_t later = (uint64_t)n->cfg.retry_min_ms * 5u, cap = n->cfg.retry_max_ms;
    return (later > cap ? later : cap) + 1000u;
}

static uint64_t backoff_ms(const node_t *n, uint32_t attempts)
{
    uint64_t d = n->cfg.retry_min_ms;
    for (uint32_t i = 0; i < attempts && d < n->cfg.retry_max_ms; i++)
        d *= 2;
    return d < n->cfg.retry_max_ms ? d : n->cfg.retry_max_ms;
}

/* The checks after the signature (section 7.1) and the bookkeeping; r is NULL with
 * problem set when the receipt did not verify. */
static void receipt_checked(node_t *n, peer_t *p, const receipt_t *r, const char *problem, const uint8_t *bytes,
                            size_t len)
{
    char hex[TEXT_MSGID_HEX], actor[LIAISON_MAX_ID + 8];
    snprintf(actor, sizeof actor, "peer:%s", p->card.id);
    store_msg_t m;
    if (!problem) {
        if (strcmp(r->recipient, p->card.id) != 0 || strcmp(r->sender, n->cfg.id) != 0)
            problem = "receipt names another sender or recipient";
        else if (store_msg_get(n->store, r->message_id, &m, NULL, NULL, NULL, NULL) != 0 || !m.outgoing)
            problem = "receipt for a message we did not send";
        else if (sodium_memcmp(m.envelope_hash, r->envelope_hash, LIAISON_HASH_BYTES) != 0)
            problem = "receipt for different envelope bytes";
    }
    if (problem) {
        log_warn("ignored a receipt from %s: %s", p->card.id, problem);
        if (store_op_begin(n->store) == 0) {
            audit_entry_t a = {.actor = actor, .action = "receipt-rejected", .outcome = "refused",
                               .peer = p->card.id, .details = problem};
            store_op_end(n->store, node_audit(n, &a) == 0);
        }
        return;
    }
    if (store_op_begin(n->store) != 0)
        return;
    int rc = store_delivery_done(n->store, r->message_id, p->card.id, bytes, len, liaison_now_ms());
    bool ok = rc >= 0;
    if (rc == 0) {
        uint8_t ack_tag[LIAISON_HASH_BYTES];
        char ack_details[64] = "";
        bool ack_tagged = m.has_ref && m.content_type == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK &&
                          clinical_ack_audit(n, m.ref_id, ack_tag, ack_details, sizeof ack_details);
        audit_entry_t a = {.actor = actor, .action = "message-delivered", .outcome = "ok",
                           .message_id = r->message_id, .peer = p->card.id, .content_type = m.content_type,
                           .patient_tag = m.has_patient_tag ? m.patient_tag : ack_tagged ? ack_tag : NULL,
                           .details = ack_details[0] ? ack_details : NULL};
        ok = node_audit(n, &a) == 0;
        waits_touch(n->waits, r->message_id);
        text_msgid_to_hex(r->message_id, hex);
        log_debug("delivered %s to %s", hex, p->card.id);
    }
    store_op_end(n->store, ok);
}

/* A receipt arrived on p's dealer. When more frames wait behind it, or while the
 * verifier thread is still busy with earlier receipts (which keeps their order), the
 * thread checks it (delivery_receipt_verified continues), so that under load a second
 * core does it while the loop reads, stores and sends; a lone receipt is checked here
 * at once, which saves the two thread hand-offs on a lone message's path. */
static void on_receipt(node_t *n, peer_t *p, const uint8_t *bytes, size_t len, bool more_behind)
{
    if (len < 1 || len > LIAISON_MAX_RECEIPT) {
        /* Refused before it is copied or queued anywhere. */
        char problem[96];
        snprintf(problem, sizeof problem, "receipt of %zu bytes, must be 1 to %u", len, LIAISON_MAX_RECEIPT);
        receipt_checked(n, p, NULL, problem, bytes, len);
        return;
    }
    if ((more_behind || verifier_pending(n->verifier) > 0) &&
        verifier_submit(n->verifier, p->card.id, p->card.sign_pk, bytes, len) == 0)
        return;
    n->receipts_on_loop++;
    receipt_t r;
    char err[160];
    bool ok = receipt_verify_cached(bytes, len, p->card.sign_pk, &n->receipt_cache, &r, err, sizeof err) == 0;
    receipt_checked(n, p, ok ? &r : NULL, ok ? NULL : err, bytes, len);
}

void delivery_receipt_verified(void *ctx, const verify_job_t *j)
{
    node_t *n = ctx;
    peer_t *p = directory_find(&n->dir, j->peer);
    /* A peer removed, or whose keys were replaced, while its receipt was being checked:
     * drop it. Nothing is lost: the message stays "sent" and its retry brings the
     * receipt again, to be checked against the keys of the day. */
    n->receipts_on_thread++;
    if (!p || sodium_memcmp(p->card.sign_pk, j->sign_pk, LIAISON_KEY_BYTES) != 0)
        return;
    receipt_checked(n, p, j->ok ? &j->r : NULL, j->ok ? NULL : j->err, j->bytes, j->len);
}

typedef struct attempts_of {
    const char *peer;
    uint32_t attempts;
} attempts_of_t;

static int attempts_of_peer(void *ctx, const store_delivery_t *d)
{
    attempts_of_t *a = ctx;
    if (strcmp(d->recipient, a->peer) == 0)
        a->attempts = d->attempts;
    return 0;
}

/* When a delivery answered TRY_LATER is tried again: 5 x retry_min_ms on, or later on
 * the backoff of its attempts, so that a message that waits long at its recipient (a
 * full disk, a review whose open has not reached it) is not sent every few seconds. */
static uint64_t try_later_due(node_t *n, const uint8_t *id, const char *peer)
{
    attempts_of_t a = {.peer = peer};
    (void)store_delivery_each(n->store, id, attempts_of_peer, &a);
    uint64_t wait = n->cfg.retry_min_ms * 5u, backoff = backoff_ms(n, a.attempts);
    return liaison_now_ms() + (backoff > wait ? backoff : wait);
}

static void on_reject(node_t *n, peer_t *p, const Liaison__Wire__Reject *rj)
{
    /* The reason is the peer's text: made printable and bounded here, once, before it
     * reaches the log, the delivery's detail (shown by liaison outbox/show) or the audit. */
    char said[REJECT_REASON_KEPT + 1];
    text_printable(said, sizeof said, rj->reason);
    if (rj->code == LIAISON__WIRE__REJECT_CODE__REJECT_NOT_IN_DIRECTORY) {
        /* About the connection, not a message: the peer no longer holds our key. What was
         * sent on it and not answered waits, queued, for the connection it accepts. */
        transport_peer_refused(n, p, said);
        return;
    }
    if (rj->message_id.len != LIAISON_MSGID_BYTES) {
        log_warn("peer %s refused a frame: %s: %s", p->card.id, code_name(rj->code), said);
        return;
    }
    const uint8_t *id = rj->message_id.data;
    char reason[300], actor[LIAISON_MAX_ID + 8];
    snprintf(reason, sizeof reason, "%s: %s", code_name(rj->code), said);
    snprintf(actor, sizeof actor, "peer:%s", p->card.id);
    if (store_op_begin(n->store) != 0)
        return;
    bool ok;
    if (!code_is_permanent(rj->code)) {
        ok = store_delivery_attempted(n->store, id, p->card.id, DELIVERY_QUEUED, try_later_due(n, id, p->card.id),
                                      reason) == 0;
    } else {
        int rc = store_delivery_rejected(n->store, id, p->card.id, reason);
        ok = rc >= 0;
        if (rc == 0) {
            store_msg_t m;
            uint32_t ct = store_msg_get(n->store, id, &m, NULL, NULL, NULL, NULL) == 0 ? m.content_type : 0;
            audit_entry_t a = {.actor = actor, .action = "delivery-rejected", .outcome = "refused",
                               .message_id = id, .peer = p->card.id, .content_type = ct, .details = reason};
            ok = node_audit(n, &a) == 0;
            waits_touch(n->waits, id);
            log_warn("peer %s refused a message: %s", p->card.id, reason);
        }
    }
    store_op_end(n->store, ok);
}

void delivery_reply(node_t *n, peer_t *p, const uint8_t *frame, size_t len, int nframes, bool more_behind)
{
    if (nframes != 1) {
        log_warn("peer %s sent a %d-frame message; ignored", p->card.id, nframes);
        return;
    }
    _Alignas(16) uint8_t buf[FRAME_ARENA_BYTES];
    pb_arena_t arena;
    pb_arena_init(&arena, buf, sizeof buf);
    Liaison__Wire__Frame *f = liaison__wire__frame__unpack(&arena.alloc, len, frame);
    if (!f) {
        pb_arena_release(&arena);
        log_warn("peer %s sent an unreadable frame; ignored", p->card.id);
        return;
    }
    if (f->kind_case == LIAISON__WIRE__FRAME__KIND_RECEIPT)
        on_receipt(n, p, f->receipt.data, f->receipt.len, more_behind);
    else if (f->kind_case == LIAISON__WIRE__FRAME__KIND_REJECT && f->reject)
        on_reject(n, p, f->reject);
    else if (f->kind_case == LIAISON__WIRE__FRAME__KIND_WITNESS_REPLY && f->witness_reply)
        witness_on_reply(n, p, f->witness_reply);
    else
        log_warn("peer %s sent an unexpected frame kind; ignored", p->card.id);
    liaison__wire__frame__free_unpacked(f, &arena.alloc);
    pb_arena_release(&arena);
}

/* An envelope's frame, shared by the transmissions of one message. */
typedef struct shared_frame {
    size_t refs;
    size_t len;
    uint8_t data[];
} shared_frame_t;

/* A first transmission waiting for its transaction's commit (delivery_direct). */
struct outgoing {
    uint64_t txn;
    uint64_t retry_at_ms;
    uint8_t id[LIAISON_MSGID_BYTES];
    char peer[LIAISON_MAX_ID + 1];
    shared_frame_t *frame;
};

static void frame_release(shared_frame_t *f)
{
    if (f && --f->refs == 0)
        free(f);
}

uint64_t delivery_first_retry_ms(const node_t *n, uint64_t now_ms) { return now_ms + backoff_ms(n, 0); }

void delivery_direct(node_t *n, const uint8_t id[static LIAISON_MSGID_BYTES], const uint8_t *env, size_t env_len,
                     const char *const *peers, size_t n_peers, uint64_t retry_at_ms, bool *direct)
{
    size_t want = 0;
    for (size_t i = 0; i < n_peers; i++) {
        peer_t *p = directory_find(&n->dir, peers[i]);
        direct[i] = p && p->connected && p->dealer;
        want += direct[i];
    }
    if (!want)
        return;
    if (n->n_outgoing + want > n->cap_outgoing) {
        size_t cap = n->cap_outgoing ? n->cap_outgoing : 64;
        while (cap < n->n_outgoing + want)
            cap *= 2;
        struct outgoing *o = realloc(n->outgoing, cap * sizeof *o);
        if (!o)
            goto none;
        n->outgoing = o;
        n->cap_outgoing = cap;
    }
    Liaison__Wire__Frame f;
    liaison__wire__frame__init(&f);
    f.kind_case = LIAISON__WIRE__FRAME__KIND_ENVELOPE;
    f.envelope = (ProtobufCBinaryData){env_len, (uint8_t *)env};
    size_t len = liaison__wire__frame__get_packed_size(&f);
    shared_frame_t *sf = malloc(sizeof *sf + len);
    if (!sf)
        goto none;
    sf->refs = want;
    sf->len = liaison__wire__frame__pack(&f, sf->data);
    uint64_t txn = store_txn_id(n->store);
    for (size_t i = 0; i < n_peers; i++) {
        if (!direct[i])
            continue;
        struct outgoing *o = &n->outgoing[n->n_outgoing++];
        o->txn = txn;
        o->retry_at_ms = retry_at_ms;
        memcpy(o->id, id, LIAISON_MSGID_BYTES);
        snprintf(o->peer, sizeof o->peer, "%s", peers[i]);
        o->frame = sf;
    }
    return;
none:
    for (size_t i = 0; i < n_peers; i++)
        direct[i] = false;
}

void delivery_direct_cancel(node_t *n, size_t mark)
{
    while (n->n_outgoing > mark)
        frame_release(n->outgoing[--n->n_outgoing].frame);
}

void delivery_after_commit(node_t *n, bool committed, uint64_t txn)
{
    uint64_t now = liaison_now_ms();
    for (size_t i = 0; i < n->n_outgoing; i++) {
        struct outgoing *o = &n->outgoing[i];
        if (committed && o->txn == txn) {
            peer_t *p = directory_find(&n->dir, o->peer);
            int rc = p && p->connected ? transport_send(n, p, o->frame->data, o->frame->len) : 1;
            if (rc == 0) {
                if (o->retry_at_ms < n->due_hint_ms)
                    n->due_hint_ms = o->retry_at_ms;
            } else {
                /* Stored as sent, not taken (queue full, or the peer went away or was
                 * removed in the same batch): due now, for the pump to handle. */
                const char *why = !p              ? "peer is not in the directory"
                                  : !p->connected ? "waiting for a connection"
                                  : rc > 0        ? "peer queue full"
                                                  : "transport error";
                if (store_op_begin(n->store) == 0)
                    store_op_end(n->store,
                                 store_delivery_attempted(n->store, o->id, o->peer, DELIVERY_QUEUED, now, why) == 0);
                n->pump_needed = true;
            }
        }
        frame_release(o->frame);
    }
    n->n_outgoing = 0;
}

typedef struct pump_ctx {
    node_t *n;
    uint64_t now;
    uint32_t seen;
    int failed;
} pump_ctx_t;

/* A delivery's next attempt that cannot be recorded stops the pump (the batch's
 * bookkeeping is rolled back, and the pump is tried again later: delivery.h); left
 * unrecorded, the delivery would stay due and be sent again at every turn of the loop. */
static int pump_recorded(pump_ctx_t *pc, int recorded)
{
    if (recorded == 0)
        return 0;
    pc->failed = 1;
    return 1;
}

static int pump_one(void *ctx, const store_delivery_t *d)
{
    pump_ctx_t *pc = ctx;
    node_t *n = pc->n;
    pc->seen++;
    peer_t *p = directory_find(&n->dir, d->recipient);
    if (!p) {
        /* Removed from the directory: keep the message, stop the traffic. */
        return pump_recorded(pc, store_delivery_attempted(n->store, d->message_id, d->recipient, DELIVERY_QUEUED,
                                                          pc->now + n->cfg.retry_max_ms,
                                                          "peer is not in the directory"));
    }
    if (!p->connected) {
        /* delivery_peer_up makes it due again as soon as the connection is up. A delivery
         * that was sent goes back to queued: "sent" is an envelope handed to a connection
         * that is up, waiting for its receipt; with the connection gone (the peer may have
         * refused our key) nothing says it arrived, and it is transmitted again. */
        return pump_recorded(pc, store_delivery_attempted(n->store, d->message_id, d->recipient, DELIVERY_QUEUED,
                                                          pc->now + n->cfg.retry_max_ms,
                                                          p->transport_error[0] ? p->transport_error
                                                                                : "waiting for a connection"));
    }
    uint8_t *env = NULL, *frame = NULL;
    size_t env_len = 0, frame_len = 0;
    if (store_msg_get(n->store, d->message_id, NULL, &env, &env_len, NULL, NULL) != 0) {
        pc->failed = 1;
        return 1;
    }
    Liaison__Wire__Frame f;
    liaison__wire__frame__init(&f);
    f.kind_case = LIAISON__WIRE__FRAME__KIND_ENVELOPE;
    f.envelope = (ProtobufCBinaryData){env_len, env};
    frame = frame_pack(&f, &frame_len);
    int rc = frame ? transport_send(n, p, frame, frame_len) : -1;
    int recorded = rc == 0 ? store_delivery_attempted(n->store, d->message_id, d->recipient, DELIVERY_SENT,
                                                      pc->now + backoff_ms(n, d->attempts), NULL)
                           : store_delivery_attempted(n->store, d->message_id, d->recipient, DELIVERY_QUEUED,
                                                      pc->now + n->cfg.retry_min_ms,
                                                      rc > 0 ? "peer queue full" : "transport error");
    free(env);
    free(frame);
    return pump_recorded(pc, recorded);
}

int delivery_pump(node_t *n)
{
    pump_ctx_t pc = {.n = n, .now = liaison_now_ms()};
    if (store_op_begin(n->store) != 0)
        return -1;
    int rc = store_delivery_due(n->store, pc.now, pc.now + delivery_horizon_ms(n), PUMP_BATCH, pump_one, &pc);
    store_op_end(n->store, rc == 0 && !pc.failed);
    if (pc.seen == PUMP_BATCH)
        n->pump_needed = true;
    return rc == 0 && !pc.failed ? 0 : -1;
}

void delivery_peer_up(node_t *n, peer_t *p)
{
    if (store_op_begin(n->store) != 0)
        return;
    store_op_end(n->store, store_delivery_wake(n->store, p->card.id, liaison_now_ms()) == 0);
    n->pump_needed = true;
}
