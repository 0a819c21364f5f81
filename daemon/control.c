/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the control socket and the operations it offers to local users. */
#include "control.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <zmq.h>

#include "arena.h"
#include "auditor.h"
#include "clinical.h"
#include "control.pb-c.h"
#include "delivery.h"
#include "payload.pb-c.h"
#include "log.h"
#include "patient.h"
#include "payload.h"
#include "seal.h"
#include "text.h"
#include "transport.h"
#include "waits.h"
#include "witness.h"

#define REQUEST_ARENA_BYTES 16384u /* a send request with a 4 KB payload unpacks within it */
#define CONTROL_BATCH 256
#define LIST_DEFAULT_LIMIT 100u
/* The most messages one list answers (the command line asks for 10,001 at most): each
 * summary is built in memory (about 20 KB at most) before the answer is sent. */
#define LIST_MAX_LIMIT 10001u
/* How long serve() handles requests before the loop gets its turn (timers, the
 * watchdog, peers), whatever is still queued. */
#define CONTROL_BUDGET_MS 100u

typedef Liaison__Control__Response response_t;
typedef Liaison__Control__Request request_t;

/* One request being handled: who asked, where to answer. */
typedef struct call {
    node_t *n;
    void *sock;                 /* the socket to answer on */
    const uint8_t *rid;
    size_t rid_len;
    uint64_t request_id;
    uid_t uid;
    char actor[64];
    const char *op;     /* operation name, for the audit row of a refusal */
    bool audited;       /* the operation already audited its outcome */
    const wait_t *wait; /* answering this wait (waits.h) */
} call_t;

static void answer(call_t *c, response_t *r)
{
    r->request_id = c->request_id;
    size_t len = liaison__control__response__get_packed_size(r);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf) {
        liaison__control__response__pack(r, buf);
        if ((c->wait ? node_defer_wait(c->n, buf, len, c->wait)
                     : node_defer(c->n, c->sock, c->rid, c->rid_len, buf, len, true, c->request_id)) == 0)
            return;
    }
    /* The client is told nothing: it waits for its timeout, whose message sends the user
     * here (what was asked may have been done: the request id says which it was). */
    log_err("out of memory: the answer to request %" PRIu64 " (%s) from %s is lost; the client times out",
            c->request_id, c->op ? c->op : "request", c->actor);
}

static void answer_error(call_t *c, Liaison__Control__Code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool audit_local(call_t *c, const char *action, const char *outcome, const uint8_t *msgid, const char *peer,
                        uint32_t ct, const uint8_t *tag, const char *details);

/* Every refused request leaves exactly one audit row: this one, unless the operation
 * recorded its own. For payload errors only the field is kept (never a value), and a
 * quoted value is masked (text_mask_quoted). */
static void answer_error(call_t *c, Liaison__Control__Code code, const char *fmt, ...)
{
    char raw[512], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    /* Response.error is a protobuf string: valid UTF-8 even when the message quotes a
     * value of the request (an id) or was cut in the middle of a character. */
    (void)text_clean_line(msg, sizeof msg, raw);
    if (!c->audited) {
        char details[256], masked[512];
        text_mask_quoted(masked, sizeof masked, msg); /* first: a value may hold a colon */
        const char *colon = strchr(masked, ':');
        bool field_only = code == LIAISON__CONTROL__CODE__BAD_REQUEST && colon && c->op && strcmp(c->op, "send") == 0;
        snprintf(details, sizeof details, "%s: %.*s", c->op ? c->op : "request",
                 field_only ? (int)(colon - masked) : 200, masked);
        audit_local(c, "request-refused", code == LIAISON__CONTROL__CODE__INTERNAL ? "failed" : "refused", NULL, NULL,
                    0, NULL, details);
    }
    response_t r = LIAISON__CONTROL__RESPONSE__INIT;
    r.code = code;
    r.error = msg;
    answer(c, &r);
}

/* Audits a local operation as its own savepoint. */
static bool audit_local(call_t *c, const char *action, const char *outcome, const uint8_t *msgid, const char *peer,
                        uint32_t ct, const uint8_t *tag, const char *details)
{
    node_t *n = c->n;
    c->audited = true;
    if (store_op_begin(n->store) != 0)
        return false;
    audit_entry_t e = {.actor = c->actor, .action = action, .outcome = outcome, .message_id = msgid, .peer = peer,
                       .content_type = ct, .patient_tag = tag, .details = details};
    bool ok = node_audit(n, &e) == 0;
    return store_op_end(n->store, ok) == 0 && ok;
}

/* Returns 0, or -1 if the peer's queue cannot be counted (store_error says why). */
static int fill_peer(node_t *n, const peer_t *p, Liaison__Control__PeerInfo *pi, char *fp)
{
    liaison__control__peer_info__init(pi);
    pi->id = (char *)p->card.id;
    pi->name = (char *)p->card.name;
    pi->role = (char *)p->card.role;
    pi->org = (char *)p->card.org;
    pi->endpoint = (char *)p->card.endpoint;
    keys_fingerprint(p->card.sign_pk, fp);
    pi->fingerprint = fp;
    pi->connected = p->connected;
    int64_t q = store_queue_depth(n->store, p->card.id);
    pi->queued = q > 0 ? (uint32_t)q : 0;
    pi->transport_error = (char *)p->transport_error;
    pi->added_ms = p->added_ms;
    return q < 0 ? -1 : 0;
}

/* Peer listing shared by status and peer list; arrays freed by free_peers. */
typedef struct peer_set {
    Liaison__Control__PeerInfo *infos;
    Liaison__Control__PeerInfo **ptrs;
    char (*fps)[KEYS_FINGERPRINT_LEN];
    size_t n;
} peer_set_t;

/* Returns 0, or -1 with err (out of memory, or a queue that cannot be counted: never
 * shown as 0 queued). */
static int collect_peers(node_t *n, peer_set_t *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    size_t cnt = n->dir.n;
    s->infos = calloc(cnt + 1, sizeof *s->infos);
    s->ptrs = calloc(cnt + 1, sizeof *s->ptrs);
    s->fps = calloc(cnt + 1, sizeof *s->fps);
    if (!s->infos || !s->ptrs || !s->fps) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (fill_peer(n, n->dir.peers[i], &s->infos[i], s->fps[i]) != 0) {
            snprintf(err, errlen, "cannot count the queue of %s: %s", n->dir.peers[i]->card.id,
                     store_error(n->store));
            return -1;
        }
        s->ptrs[i] = &s->infos[i];
    }
    s->n = cnt;
    return 0;
}

static void free_peers(peer_set_t *s)
{
    free(s->infos);
    free(s->ptrs);
    free(s->fps);
}

typedef struct summary_buf summary_buf_t;
/* Fills b from m and what the store holds about it (deliveries, acknowledgements,
 * overdue flags). Returns 0, or -1 if any of these could not be read: b is then
 * incomplete and must not be reported as the message's state. */
static int fill_summary(node_t *n, const store_msg_t *m, summary_buf_t *b);
static void summary_free(summary_buf_t *b);
static summary_buf_t *summary_new(void);

typedef struct overdue_set {
    uint8_t ids[64][LIAISON_MSGID_BYTES];
    size_t n;
} overdue_set_t;

static int collect_overdue(void *ctx, const uint8_t *msg, const char *recipient, bool urgent, uint64_t created_ms)
{
    (void)recipient;
    (void)urgent;
    (void)created_ms;
    overdue_set_t *os = ctx;
    for (size_t i = 0; i < os->n; i++)
        if (memcmp(os->ids[i], msg, LIAISON_MSGID_BYTES) == 0)
            return 0;
    if (os->n < 64)
        memcpy(os->ids[os->n++], msg, LIAISON_MSGID_BYTES);
    return 0;
}

typedef struct alarm_set {
    Liaison__Control__Alarm a[16];
    Liaison__Control__Alarm *p[16];
    char peer[16][LIAISON_MAX_ID + 1];
    char what[16][256];
    size_t n;
} alarm_set_t;

static int collect_alarm(void *ctx, const char *peer, uint64_t at_ms, const char *what)
{
    alarm_set_t *as = ctx;
    if (as->n >= 16)
        return 1;
    size_t i = as->n++;
    liaison__control__alarm__init(&as->a[i]);
    snprintf(as->peer[i], sizeof as->peer[i], "%s", peer ? peer : "");
    snprintf(as->what[i], sizeof as->what[i], "%s", what ? what : "");
    as->a[i].peer = as->peer[i];
    as->a[i].at_ms = at_ms;
    as->a[i].what = as->what[i];
    as->p[i] = &as->a[i];
    return 0;
}

/* Any count or list that cannot be read makes the whole answer INTERNAL: a status with
 * 0 queued, no overdue acknowledgements or no alarms for a read that failed would look
 * like good news. */
static void op_status(call_t *c)
{
    node_t *n = c->n;
    peer_set_t ps;
    char err[400] = "";
    if (collect_peers(n, &ps, err, sizeof err) != 0) {
        free_peers(&ps);
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot read the node's status: %s", err);
        return;
    }
    Liaison__Control__StatusResult st = LIAISON__CONTROL__STATUS_RESULT__INIT;
    st.id = n->cfg.id;
    st.name = n->cfg.name;
    st.role = n->cfg.role;
    st.listen = n->cfg.listen;
    st.started_ms = n->started_ms;
    int64_t q = store_queue_depth(n->store, NULL);
    st.queue_depth = q > 0 ? (uint32_t)q : 0;
    st.n_peers = ps.n;
    st.peers = ps.ptrs;
    st.version = LIAISON_VERSION;
    int64_t size = audit_size(n->audit);
    st.audit_size = (uint64_t)(size > 0 ? size : 0);
    int64_t owed = store_awaiting_ack(n->store, n->cfg.id);
    st.awaiting_my_ack = owed > 0 ? (uint32_t)owed : 0;
    int64_t awaited = store_awaiting_their_ack(n->store);
    st.awaiting_their_ack = awaited > 0 ? (uint32_t)awaited : 0;
    st.database_failing_since_ms = n->commit_error_ms;
    st.database_error = n->commit_error_ms ? n->commit_error : "";
    if (q < 0 || owed < 0 || awaited < 0)
        snprintf(err, sizeof err, "%s", store_error(n->store));
    else if (size < 0)
        snprintf(err, sizeof err, "cannot read the audit log: %s", sqlite3_errmsg(store_db(n->store)));
    /* Our medication changes whose acknowledgement is overdue, most urgent first. */
    overdue_set_t os = {.n = 0};
    summary_buf_t *bufs[64];
    Liaison__Control__MessageSummary *sums[64];
    size_t nb = 0;
    if (!err[0] && store_overdue_scan(n->store, 0, 0, 0, true, collect_overdue, &os) < 0)
        snprintf(err, sizeof err, "%s", store_error(n->store));
    for (size_t i = 0; !err[0] && i < os.n; i++) {
        store_msg_t m;
        int got = store_msg_get(n->store, os.ids[i], &m, NULL, NULL, NULL, NULL);
        if (got > 0)
            continue;
        if (got < 0 || !(bufs[nb] = summary_new())) {
            snprintf(err, sizeof err, "%s", got < 0 ? store_error(n->store) : "out of memory");
            break;
        }
        sums[nb] = (Liaison__Control__MessageSummary *)bufs[nb];
        nb++;
        if (fill_summary(n, &m, bufs[nb - 1]) != 0)
            snprintf(err, sizeof err, "the state of an overdue message: %s", store_error(n->store));
    }
    st.overdue = sums;
    st.n_overdue = nb;
    /* The list stops at 64: the total says how many there are, so that a client can say
     * the list is cut rather than show 64 as if they were all. */
    int64_t total = err[0] ? 0 : store_overdue_count(n->store);
    if (total < 0)
        snprintf(err, sizeof err, "%s", store_error(n->store));
    st.overdue_total = total > (int64_t)nb ? (uint32_t)(total > UINT32_MAX ? UINT32_MAX : total) : (uint32_t)nb;
    alarm_set_t *as = NULL;
    if (!err[0]) {
        if (!(as = calloc(1, sizeof *as)))
            snprintf(err, sizeof err, "out of memory");
        else if (witness_alarms(n, collect_alarm, as) < 0)
            snprintf(err, sizeof err, "the witness alarms: %s", sqlite3_errmsg(store_db(n->store)));
    }
    if (err[0] || !as) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot read the node's status: %s", err);
    } else {
        st.alarms = as->p;
        st.n_alarms = as->n;
        response_t r = LIAISON__CONTROL__RESPONSE__INIT;
        r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_STATUS;
        r.status = &st;
        answer(c, &r);
    }
    for (size_t i = 0; i < nb; i++)
        summary_free(bufs[i]);
    free(as);
    free_peers(&ps);
}

/* Refuses (and audits, by tag) a message that would bring in a patient id this node has
 * not seen and that differs only in letter case from one it holds: ids are compared
 * exactly, so it would open a second record of what is most likely the same patient,
 * at every recipient. True if refused. */
static bool refuse_case_variant(call_t *c, uint32_t ct, const char *patient, const uint8_t tag[LIAISON_HASH_BYTES],
                                const uint8_t fold[LIAISON_HASH_BYTES])
{
    store_t *st = c->n->store;
    int known = store_patient_known(st, tag);
    int64_t others = known == 0 ? store_patient_variants(st, tag, fold) : 0;
    if (known < 0 || others < 0) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot look up the patient id: %s (nothing was sent)",
                     store_error(st));
        return true;
    }
    if (others == 0)
        return false;
    audit_local(c, "request-refused", "refused", NULL, NULL, ct, tag,
                "send: the patient id differs only in letter case from one on this node");
    answer_error(c, LIAISON__CONTROL__CODE__REFUSED,
                 "patient id '%s' differs only in letter case from a patient id on this node (%" PRId64
                 " message(s)); ids are case-sensitive, so this would start a second record of what may be the same"
                 " patient: use the id exactly as spelled before, or, if this is another patient, send again with"
                 " --distinct-patient; nothing was sent",
                 patient, others);
    return true;
}

/* Seals, stores and queues one message; answers with its id once committed. */
static void send_payload(call_t *c, uint32_t ct, const uint8_t *payload, size_t len, const uint8_t *thread_id,
                         char *const *to, size_t n_to, bool distinct_patient)
{
    node_t *n = c->n;
    char err[256];
    payload_info_t info PAYLOAD_INFO_WIPED;
    if (!payload_known_type(ct)) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST, "content type %" PRIu32 " is not known", ct);
        return;
    }
    int vrc = payload_validate(ct, payload, len, &info, err, sizeof err);
    if (vrc != 0) {
        answer_error(c, vrc == -2 ? LIAISON__CONTROL__CODE__INTERNAL : LIAISON__CONTROL__CODE__BAD_REQUEST, "%s", err);
        return;
    }
    /* Urgency only shortens the deadline for acknowledging (the overdue alert, the hook):
     * an urgent change that asks for none would promise an alert that never comes. A
     * sender's rule: a peer's such change is accepted as it is (PROTOCOL.md 8). */
    if (info.urgent && !info.ack_required) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST,
                     "an urgent medication change must ask for acknowledgement (urgency only shortens the deadline"
                     " for it): drop urgency, or ask for acknowledgement");
        return;
    }
    char ids[LIAISON_MAX_RECIPIENTS][LIAISON_MAX_ID + 1];
    size_t nids = 0;
    bool refused = false;
    if (clinical_recipients(n, ct, &info, ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW ? NULL : thread_id, to,
                            n_to, ids, &nids, &refused, err, sizeof err) != 0) {
        answer_error(c, refused ? LIAISON__CONTROL__CODE__REFUSED : LIAISON__CONTROL__CODE__BAD_REQUEST, "%s", err);
        return;
    }
    if (nids + 1 > n->cfg.max_recipients) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST, "%zu recipients, the limit is %" PRIu32, nids + 1,
                     n->cfg.max_recipients);
        return;
    }
    uint8_t ptag[LIAISON_HASH_BYTES] = {0}, fold[LIAISON_HASH_BYTES] = {0};
    if (info.patient[0]) {
        patient_tag(n->patient_key, info.patient, ptag);
        patient_fold_tag(n->patient_key, info.patient, fold);
        if (!distinct_patient && refuse_case_variant(c, ct, info.patient, ptag, fold))
            return;
    }
    /* Review messages travel in their review's thread. */
    if (ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW)
        thread_id = info.ref_id;
    seal_recipient_t rc[LIAISON_MAX_RECIPIENTS];
    char *names[LIAISON_MAX_RECIPIENTS];
    size_t nr = 0;
    names[nr] = n->cfg.id;
    rc[nr++] = (seal_recipient_t){n->cfg.id, n->self_pair_key};
    for (size_t i = 0; i < nids; i++) {
        peer_t *p = directory_find(&n->dir, ids[i]);
        names[nr] = p->card.id;
        rc[nr++] = (seal_recipient_t){p->card.id, p->pair_key};
    }
    uint8_t msgid[LIAISON_MSGID_BYTES];
    uint8_t *env = NULL;
    size_t env_len = 0;
    uint64_t now = liaison_now_ms();
    seal_input_t in = {.sender = n->cfg.id, .recipients = rc, .n_recipients = nr, .content_type = ct,
                       .thread_id = thread_id, .created_ms = now, .payload = payload, .payload_len = len};
    if (seal_envelope(n->keys, &in, msgid, &env, &env_len, err, sizeof err) != 0) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST, "%s", err);
        return;
    }
    store_msg_t m = {.outgoing = true, .created_ms = now, .content_type = ct, .stored_ms = now,
                     .ack_required = info.ack_required, .urgent = info.urgent};
    memcpy(m.id, msgid, sizeof msgid);
    snprintf(m.sender, sizeof m.sender, "%s", n->cfg.id);
    size_t off = 0;
    for (size_t i = 0; i < nr; i++)
        off += (size_t)snprintf(m.recipients + off, sizeof m.recipients - off, "%s%s", i ? "," : "", rc[i].id);
    if (thread_id) {
        m.has_thread = true;
        memcpy(m.thread_id, thread_id, LIAISON_MSGID_BYTES);
    }
    if (ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK) {
        m.has_ref = true;
        memcpy(m.ref_id, info.ref_id, LIAISON_MSGID_BYTES);
    }
    if (info.patient[0]) {
        m.has_patient_tag = true;
        memcpy(m.patient_tag, ptag, sizeof ptag);
    }
    envelope_hash(env, env_len, m.envelope_hash);
    bool ok = store_op_begin(n->store) == 0;
    size_t held = n->n_outgoing;
    bool direct[LIAISON_MAX_RECIPIENTS] = {false};
    bool queued = false;
    if (ok) {
        /* Recipients connected now get the envelope from memory once this commits. */
        uint64_t retry_at = delivery_first_retry_ms(n, now);
        delivery_direct(n, msgid, env, env_len, (const char *const *)names + 1, nr - 1, retry_at, direct);
        ok = store_msg_insert(n->store, &m, env, env_len) == 0 &&
             (!m.has_patient_tag || store_patient_seen(n->store, m.patient_tag, fold, distinct_patient) == 0) &&
             clinical_record(n, n->cfg.id, msgid, ct, &info, m.has_patient_tag ? m.patient_tag : NULL, names, nr,
                             now) == 0;
        for (size_t i = 1; ok && i < nr; i++) {
            queued |= !direct[i - 1];
            ok = store_delivery_add_as(n->store, msgid, rc[i].id, direct[i - 1], direct[i - 1] ? retry_at : now) == 0;
        }
        uint8_t ack_tag[LIAISON_HASH_BYTES];
        char ack_details[64] = "";
        bool ack_tagged = ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK &&
                          clinical_ack_audit(n, info.ref_id, ack_tag, ack_details, sizeof ack_details);
        for (size_t i = 1; ok && i < nr; i++) {
            audit_entry_t a = {.actor = c->actor, .action = "message-queued", .outcome = "ok", .message_id = msgid,
                               .peer = rc[i].id, .content_type = ct,
                               .patient_tag = m.has_patient_tag ? m.patient_tag : ack_tagged ? ack_tag : NULL,
                               .details = ack_details[0] ? ack_details : NULL};
            ok = node_audit(n, &a) == 0;
        }
        if (store_op_end(n->store, ok) != 0)
            ok = false;
    }
    free(env);
    if (!ok) {
        delivery_direct_cancel(n, held);
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot store the message: %s (nothing was sent)",
                     store_error(n->store));
        return;
    }
    if (queued)
        n->pump_needed = true;
    Liaison__Control__SendResult sr = LIAISON__CONTROL__SEND_RESULT__INIT;
    sr.message_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, msgid};
    response_t r = LIAISON__CONTROL__RESPONSE__INIT;
    r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_SEND;
    r.send = &sr;
    answer(c, &r);
}

/* "The thread of message ID": a message already in a thread stands for that thread, so
 * replying to a reply (or listing from it) stays in the conversation. Returns id itself
 * for a thread's first message, a review id, or an id this node does not hold. */
static const uint8_t *thread_of(node_t *n, const uint8_t *id, uint8_t out[static LIAISON_MSGID_BYTES])
{
    store_msg_t m = {0};
    if (store_msg_get(n->store, id, &m, NULL, NULL, NULL, NULL) != 0 || !m.has_thread)
        return id;
    memcpy(out, m.thread_id, LIAISON_MSGID_BYTES);
    return out;
}

static int count_one(void *ctx, const store_msg_t *m)
{
    (void)m;
    (*(int *)ctx)++;
    return 0;
}

static void op_send(call_t *c, const Liaison__Control__SendRequest *s)
{
    if (s->thread_id.len != 0 && s->thread_id.len != LIAISON_MSGID_BYTES) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST, "thread id must be 16 bytes (32 hex characters)");
        return;
    }
    if (s->content_type == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST, "acknowledgements are sent with: liaison ack MSG_ID");
        return;
    }
    if (s->thread_id.len && s->content_type != LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW) {
        /* A thread id this node has never seen is a typo: the message would start a
         * thread of its own and lose the conversation it answers. (A review message
         * travels in its review's thread whatever is given.) */
        int held = 0;
        store_query_t q = {.thread_id = s->thread_id.data, .limit = 1};
        if (store_msg_each(c->n->store, &q, count_one, &held) != 0) {
            answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot look up the thread: %s",
                         store_error(c->n->store));
            return;
        }
        if (!held) {
            char hex[TEXT_MSGID_HEX];
            text_msgid_to_hex(s->thread_id.data, hex);
            answer_error(c, LIAISON__CONTROL__CODE__NOT_FOUND,
                         "no message or thread %s on this node: --thread takes the id of a message you hold (see:"
                         " liaison inbox, liaison outbox); nothing was sent",
                         hex);
            return;
        }
    }
    uint8_t thread[LIAISON_MSGID_BYTES];
    send_payload(c, s->content_type, s->payload.data, s->payload.len,
                 s->thread_id.len ? thread_of(c->n, s->thread_id.data, thread) : NULL, s->to, s->n_to,
                 s->distinct_patient);
}

/* Finds this node's own acknowledgement of a message (store_ack_each callback). */
typedef struct own_ack {
    const char *self;
    uint64_t at_ms;
    bool found;
} own_ack_t;

static int find_own_ack(void *ctx, const char *by, const uint8_t *ack_id, uint64_t at_ms)
{
    (void)ack_id;
    own_ack_t *o = ctx;
    if (strcmp(by, o->self) != 0)
        return 0;
    o->found = true;
    o->at_ms = at_ms;
    return 1;
}

static void op_ack(call_t *c, const Liaison__Control__AckRequest *a)
{
    if (a->message_id.len != LIAISON_MSGID_BYTES) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST, "a message id is 32 hex characters");
        return;
    }
    /* The acknowledgement names the envelope this node holds under that id, so that
     * nobody counts it for a different message that reused the id (PROTOCOL.md 8.4).
     * An unknown id is refused by clinical_recipients, with its own message. */
    store_msg_t m = {0};
    const uint8_t *thread = NULL;
    bool held = store_msg_get(c->n->store, a->message_id.data, &m, NULL, NULL, NULL, NULL) == 0;
    if (held && m.has_thread && m.content_type != LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW)
        thread = m.thread_id; /* a review's thread carries only review messages */
    /* One acknowledgement per message: a second one would be sent, signed and counted
     * by nobody. */
    own_ack_t own = {.self = c->n->cfg.id};
    if (store_ack_each(c->n->store, a->message_id.data, find_own_ack, &own) < 0) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot read acknowledgements: %s",
                     store_error(c->n->store));
        return;
    }
    if (own.found) {
        char hex[TEXT_MSGID_HEX], when[32];
        text_msgid_to_hex(a->message_id.data, hex);
        time_t t = (time_t)(own.at_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED, "message %s was already acknowledged at %s (nothing was sent)",
                     hex, when);
        return;
    }
    /* The author counts an acknowledgement as "seen": one sent from the inbox list, for a
     * message nobody here has opened, would close the loop on a change nobody read. A
     * timeline (listed, left unread) shows only its gist. */
    if (held && !m.outgoing && m.read_ms == 0 && m.content_type != LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK) {
        char hex[TEXT_MSGID_HEX];
        text_msgid_to_hex(a->message_id.data, hex);
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED,
                     "message %s has not been read on this node: read it first with liaison show %s, then"
                     " acknowledge it (nothing was sent)",
                     hex, hex);
        return;
    }
    Liaison__Payload__Acknowledgement ack = LIAISON__PAYLOAD__ACKNOWLEDGEMENT__INIT;
    ack.acknowledged_id = a->message_id;
    ack.acknowledged_hash = (ProtobufCBinaryData){LIAISON_HASH_BYTES, m.envelope_hash};
    ack.comment = a->comment ? a->comment : "";
    size_t len = liaison__payload__acknowledgement__get_packed_size(&ack);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "out of memory");
        return;
    }
    liaison__payload__acknowledgement__pack(&ack, buf);
    send_payload(c, LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK, buf, len, thread, NULL, 0, false);
    free(buf);
}

/* ---- listing ---- */

/* One delivery (slot i: the i-th delivery) and one acknowledgement (the i-th) of a
 * summary: allocated for as many as the message has, not for LIAISON_MAX_RECIPIENTS each
 * (a listing of 10,000 messages held 20 KB a message, 200 MB at once, that way). */
typedef struct summary_slot {
    Liaison__Control__DeliveryState ds;
    char ds_text[LIAISON_MAX_ID + 1];
    char ds_detail[256];
    Liaison__Control__AckInfo ack;
    char ack_by[LIAISON_MAX_ID + 1];
    uint8_t ack_id[LIAISON_MSGID_BYTES];
    char *ack_comment;          /* malloc'd, wiped by summary_free */
} summary_slot_t;

struct summary_buf {
    Liaison__Control__MessageSummary sum;   /* first: a summary_buf_t * is a summary pointer */
    uint8_t id[LIAISON_MSGID_BYTES];
    uint8_t thread[LIAISON_MSGID_BYTES];
    char sender[LIAISON_MAX_ID + 1];
    char *recips;               /* malloc'd copy of the recipient list, cut at the commas */
    char *rptr[LIAISON_MAX_RECIPIENTS];
    summary_slot_t *slots;      /* n_slots of them, malloc'd; moved by slot_at as it grows */
    size_t n_slots;
    Liaison__Control__DeliveryState *dptr[LIAISON_MAX_RECIPIENTS];
    Liaison__Control__AckInfo *aptr[LIAISON_MAX_RECIPIENTS];
    char *optr[LIAISON_MAX_RECIPIENTS];
    size_t oslot[LIAISON_MAX_RECIPIENTS]; /* optr[k] is slots[oslot[k]].ds_text */
    uint8_t ref[LIAISON_MSGID_BYTES];
    uint8_t *payload;           /* malloc'd decrypted payload, wiped by summary_free */
    size_t payload_len;
    node_t *n;                  /* while deliveries are added: whose directory to consult */
};

static summary_buf_t *summary_new(void) { return calloc(1, sizeof(summary_buf_t)); }

static void summary_free(summary_buf_t *b)
{
    if (!b)
        return;
    if (b->payload) {
        sodium_memzero(b->payload, b->payload_len);
        free(b->payload);
    }
    for (size_t i = 0; i < b->n_slots; i++)
        if (b->slots[i].ack_comment) {
            sodium_memzero(b->slots[i].ack_comment, strlen(b->slots[i].ack_comment));
            free(b->slots[i].ack_comment);
        }
    free(b->slots);
    free(b->recips);
    free(b);
}

/* Slot i, growing the slots (at most LIAISON_MAX_RECIPIENTS) and pointing every field
 * that points into them at their new place. NULL if i is past the limit or out of memory. */
static summary_slot_t *slot_at(summary_buf_t *b, size_t i)
{
    if (i < b->n_slots)
        return &b->slots[i];
    if (i >= LIAISON_MAX_RECIPIENTS)
        return NULL;
    size_t cap = b->n_slots ? b->n_slots * 2 : 4;
    if (cap <= i)
        cap = i + 1;
    if (cap > LIAISON_MAX_RECIPIENTS)
        cap = LIAISON_MAX_RECIPIENTS;
    summary_slot_t *p = realloc(b->slots, cap * sizeof *p);
    if (!p)
        return NULL;
    memset(p + b->n_slots, 0, (cap - b->n_slots) * sizeof *p);
    b->slots = p;
    b->n_slots = cap;
    for (size_t k = 0; k < b->sum.n_deliveries; k++) {
        b->dptr[k] = &p[k].ds;
        p[k].ds.recipient = p[k].ds_text;
        p[k].ds.detail = p[k].ds_detail;
    }
    for (size_t k = 0; k < b->sum.n_acks; k++) {
        b->aptr[k] = &p[k].ack;
        p[k].ack.by = p[k].ack_by;
        if (p[k].ack.ack_message_id.len)
            p[k].ack.ack_message_id.data = p[k].ack_id;
    }
    for (size_t k = 0; k < b->sum.n_overdue; k++)
        b->optr[k] = p[b->oslot[k]].ds_text;
    return &p[i];
}

static int add_ack(void *ctx, const char *by, const uint8_t *ack_id, uint64_t at_ms)
{
    summary_buf_t *b = ctx;
    size_t i = b->sum.n_acks;
    if (i >= LIAISON_MAX_RECIPIENTS)
        return 1;
    summary_slot_t *sl = slot_at(b, i);
    if (!sl)
        return -1;
    Liaison__Control__AckInfo *a = &sl->ack;
    liaison__control__ack_info__init(a);
    snprintf(sl->ack_by, sizeof sl->ack_by, "%s", by);
    a->by = sl->ack_by;
    a->at_ms = at_ms;
    if (ack_id) {
        memcpy(sl->ack_id, ack_id, LIAISON_MSGID_BYTES);
        a->ack_message_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, sl->ack_id};
    }
    b->aptr[i] = a;
    b->sum.n_acks = i + 1;
    return 0;
}

typedef struct overdue_find {
    summary_buf_t *b;
    const uint8_t *id;
} overdue_find_t;

static int add_overdue(void *ctx, const uint8_t *msg, const char *recipient, bool urgent, uint64_t created_ms)
{
    (void)urgent;
    (void)created_ms;
    overdue_find_t *of = ctx;
    if (memcmp(msg, of->id, LIAISON_MSGID_BYTES) != 0)
        return 0;
    summary_buf_t *b = of->b;
    /* recipient names are already in the slots' ds_text (deliveries) */
    for (size_t i = 0; i < b->sum.n_deliveries && b->sum.n_overdue < LIAISON_MAX_RECIPIENTS; i++)
        if (strcmp(b->slots[i].ds_text, recipient) == 0) {
            b->oslot[b->sum.n_overdue] = i;
            b->optr[b->sum.n_overdue++] = b->slots[i].ds_text;
        }
    return 0;
}

static int add_delivery(void *ctx, const store_delivery_t *d)
{
    summary_buf_t *b = ctx;
    size_t i = b->sum.n_deliveries;
    if (i >= LIAISON_MAX_RECIPIENTS)
        return 1;
    summary_slot_t *sl = slot_at(b, i);
    if (!sl)
        return -1;
    Liaison__Control__DeliveryState *s = &sl->ds;
    liaison__control__delivery_state__init(s);
    snprintf(sl->ds_text, sizeof sl->ds_text, "%s", d->recipient);
    delivery_state_t state = d->state;
    const peer_t *p = b->n && (state == DELIVERY_QUEUED || state == DELIVERY_SENT)
                          ? directory_find(&b->n->dir, d->recipient)
                          : NULL;
    if ((state == DELIVERY_QUEUED || state == DELIVERY_SENT) && b->n && !p) {
        /* Nothing is sent to a removed peer; its last transport error ("retrying") is stale. */
        snprintf(sl->ds_detail, sizeof sl->ds_detail,
                 "%s is no longer in the directory: held, and sent if their card is added again", d->recipient);
        state = DELIVERY_QUEUED;
    } else if (p && !p->connected) {
        /* Sent means handed to a connection that is up, waiting for the receipt. With no
         * connection now (the peer refused our key, say) it is queued, and the reason is
         * the transport's error of the moment, not a stored one the pump has yet to
         * refresh (PROTOCOL.md 7.3). */
        snprintf(sl->ds_detail, sizeof sl->ds_detail, "%s",
                 p->transport_error[0] ? p->transport_error
                 : d->detail[0]        ? d->detail
                                       : "waiting for a connection");
        state = DELIVERY_QUEUED;
    } else {
        snprintf(sl->ds_detail, sizeof sl->ds_detail, "%s", d->detail);
    }
    s->recipient = sl->ds_text;
    s->state = (char *)store_delivery_state_name(state);
    s->delivered_ms = d->delivered_ms;
    s->detail = sl->ds_detail;
    s->attempts = d->attempts;
    b->dptr[i] = s;
    b->sum.n_deliveries = i + 1;
    return 0;
}

static int fill_summary(node_t *n, const store_msg_t *m, summary_buf_t *b)
{
    int rc = 0;
    /* b is new (summary_new): nothing of it to free yet. */
    memset(b, 0, sizeof *b);
    Liaison__Control__MessageSummary *s = &b->sum;
    liaison__control__message_summary__init(s);
    memcpy(b->id, m->id, sizeof b->id);
    s->message_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, b->id};
    s->direction = m->outgoing ? "out" : "in";
    snprintf(b->sender, sizeof b->sender, "%s", m->sender);
    s->sender = b->sender;
    size_t nr = 0;
    if (!(b->recips = strdup(m->recipients)))
        rc = -1; /* out of memory: the summary is incomplete */
    for (char *save = NULL, *t = b->recips ? strtok_r(b->recips, ",", &save) : NULL; t && nr < LIAISON_MAX_RECIPIENTS;
         t = strtok_r(NULL, ",", &save))
        b->rptr[nr++] = t;
    s->recipients = b->rptr;
    s->n_recipients = nr;
    s->created_ms = m->created_ms;
    s->content_type = m->content_type;
    if (m->has_thread) {
        memcpy(b->thread, m->thread_id, sizeof b->thread);
        s->thread_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, b->thread};
    }
    s->received_ms = m->stored_ms;
    s->read_ms = m->read_ms;
    s->deliveries = b->dptr;
    s->ack_required = m->ack_required;
    s->urgent = m->urgent;
    s->acks = b->aptr;
    s->overdue = b->optr;
    if (m->has_ref) {
        memcpy(b->ref, m->ref_id, sizeof b->ref);
        s->ref_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, b->ref};
    }
    if (m->outgoing) {
        b->n = n;
        if (store_delivery_each(n->store, m->id, add_delivery, b) < 0)
            rc = -1;
        b->n = NULL;
    }
    /* Any message may be acknowledged (a text too, with a comment): its acknowledgements
     * are shown whether or not one was asked for. */
    if (store_ack_each(n->store, m->id, add_ack, b) < 0)
        rc = -1;
    if (m->ack_required) {
        if (!m->outgoing) {
            /* Other recipients' acknowledgements reach us too: only our own closes ours. */
            s->awaiting_ack = true;
            for (size_t i = 0; i < s->n_acks; i++)
                if (strcmp(b->slots[i].ack_by, n->cfg.id) == 0)
                    s->awaiting_ack = false;
        }
        if (m->outgoing) {
            /* The deadline under the configuration in force (liaison.conf(5), [ack]). */
            s->ack_due_ms = m->created_ms + (uint64_t)(m->urgent ? n->cfg.ack_urgent_s : n->cfg.ack_routine_s) * 1000u;
            overdue_find_t of = {b, m->id};
            if (store_overdue_of(n->store, m->id, add_overdue, &of) < 0)
                rc = -1;
        }
    }
    return rc;
}

/* What one list answer may carry in decrypted payloads: past it, the listing stops and
 * says so (ListResult.truncated), so that 1,000 messages of 512 KiB cannot make the
 * daemon build, and the client receive, half a gigabyte at once. */
#define LIST_PAYLOAD_CAP (16u * 1024u * 1024u)

typedef struct list_ctx {
    call_t *c;
    node_t *n;
    bool with_payloads, keep_unread;
    bool truncated;    /* stopped at LIST_PAYLOAD_CAP */
    bool audit_failed; /* a read could not be recorded: the listing is refused */
    size_t payload_bytes;
    summary_buf_t **bufs;
    size_t count, cap;
} list_ctx_t;

static bool record_read(call_t *c, const store_msg_t *m, bool mark);

static int list_one(void *ctx, const store_msg_t *m)
{
    list_ctx_t *lc = ctx;
    if (lc->with_payloads && lc->payload_bytes >= LIST_PAYLOAD_CAP) {
        lc->truncated = true;
        return 1;
    }
    if (lc->count == lc->cap) {
        size_t cap = lc->cap ? lc->cap * 2 : 32;
        summary_buf_t **nb = realloc(lc->bufs, cap * sizeof *nb);
        if (!nb)
            return -1;
        lc->bufs = nb;
        lc->cap = cap;
    }
    summary_buf_t *b = summary_new();
    if (!b)
        return -1;
    lc->bufs[lc->count++] = b;
    if (fill_summary(lc->n, m, b) != 0)
        return -1;
    if (!lc->with_payloads)
        return 0;
    store_msg_t full;
    int orc = control_open_stored(lc->n, m->id, &full, &b->payload, &b->payload_len);
    if (orc == -2) /* not "no matching key": the listing fails, and says why */
        return -1;
    if (orc < 0) {
        /* As liaison show: the attempt is audited, and the caller told, not left to
         * guess from a missing payload. The message stays unread. */
        audit_local(lc->c, "message-read", "failed", m->id, m->outgoing ? NULL : m->sender, m->content_type,
                    m->has_patient_tag ? m->patient_tag : NULL, "cannot open: no matching key");
        b->sum.unopenable = true;
    } else if (orc == 0 && record_read(lc->c, &full, !lc->keep_unread)) {
        b->sum.payload = (ProtobufCBinaryData){b->payload_len, b->payload};
        lc->payload_bytes += b->payload_len;
        if (!lc->keep_unread && !m->outgoing && !b->sum.read_ms) {
            store_msg_t now; /* the read just recorded */
            if (store_msg_get(lc->n->store, m->id, &now, NULL, NULL, NULL, NULL) == 0)
                b->sum.read_ms = now.read_ms;
        }
        return 0;
    } else if (orc == 0) {
        lc->audit_failed = true;
    }
    if (b->payload) {
        sodium_memzero(b->payload, b->payload_len);
        free(b->payload);
        b->payload = NULL;
    }
    return lc->audit_failed ? -1 : 0;
}

static void op_list(call_t *c, const Liaison__Control__ListRequest *lr)
{
    node_t *n = c->n;
    store_query_t q = {.direction = lr->box == LIAISON__CONTROL__LIST_REQUEST__BOX__OUTBOX ? 2
                                    : lr->box == LIAISON__CONTROL__LIST_REQUEST__BOX__BOTH ? 0
                                                                                          : 1,
                       .since_ms = lr->since_ms,
                       .until_ms = lr->until_ms,
                       .limit = !lr->limit ? LIST_DEFAULT_LIMIT : lr->limit < LIST_MAX_LIMIT ? lr->limit : LIST_MAX_LIMIT,
                       .unread_only = lr->unread_only, .content_type = lr->content_type,
                       .needs_ack = lr->needs_ack, .self_id = n->cfg.id, .oldest = lr->oldest};
    uint8_t tag[LIAISON_HASH_BYTES], fold[LIAISON_HASH_BYTES];
    int64_t variants = 0;
    if (lr->patient && lr->patient[0]) {
        patient_tag(n->patient_key, lr->patient, tag);
        patient_fold_tag(n->patient_key, lr->patient, fold);
        q.patient_tag = tag;
        if ((variants = store_patient_variants(n->store, tag, fold)) < 0) {
            answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot list messages: %s", store_error(n->store));
            return;
        }
    }
    uint8_t thread[LIAISON_MSGID_BYTES];
    if (lr->thread_id.len == LIAISON_MSGID_BYTES)
        q.thread_id = thread_of(n, lr->thread_id.data, thread);
    else if (lr->thread_id.len) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST, "a thread id is 32 hex characters");
        return;
    }
    /* Counted before the listing, which may mark what it returns read (--unread): the
     * count is of what matched when the listing began, as its messages are. */
    int64_t matched = lr->count ? store_msg_count(n->store, &q) : 0;
    if (matched < 0) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot list messages: %s", store_error(n->store));
        return;
    }
    list_ctx_t lc = {.c = c, .n = n, .with_payloads = lr->with_payloads, .keep_unread = lr->keep_unread};
    int rc = store_msg_each(n->store, &q, list_one, &lc);
    if (lc.audit_failed) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL,
                     "cannot record a read in the audit log, so no content is returned (see the daemon's log)");
    } else if (rc < 0) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot list messages: %s", store_error(n->store));
    } else {
        Liaison__Control__MessageSummary **ptrs = calloc(lc.count + 1, sizeof *ptrs);
        if (!ptrs) {
            answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "out of memory");
        } else {
            for (size_t i = 0; i < lc.count; i++)
                ptrs[i] = &lc.bufs[i]->sum;
            Liaison__Control__ListResult res = LIAISON__CONTROL__LIST_RESULT__INIT;
            res.messages = ptrs;
            res.n_messages = lc.count;
            res.patient_case_variants = (uint32_t)(variants > UINT32_MAX ? UINT32_MAX : variants);
            res.truncated = lc.truncated;
            res.matched = (uint64_t)matched;
            response_t r = LIAISON__CONTROL__RESPONSE__INIT;
            r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_LIST;
            r.list = &res;
            answer(c, &r);
            free(ptrs);
        }
    }
    for (size_t i = 0; i < lc.count; i++)
        summary_free(lc.bufs[i]);
    free(lc.bufs);
}

/* ---- show ---- */

typedef struct open_ctx {
    node_t *n;
    envelope_t *e;
    uint8_t *pt;
    size_t pt_len;
    bool oom; /* an attempt ran out of memory: no verdict on the keys */
} open_ctx_t;

/* Tries one historical card of the sender: verify, derive the pair key, open. */
static int try_card(void *ctx, const char *id, const char *card_text, uint64_t added_ms)
{
    (void)id;
    (void)added_ms;
    open_ctx_t *oc = ctx;
    card_t card;
    char err[128];
    uint8_t pk[LIAISON_KEY_BYTES];
    if (card_decode(card_text, &card, err, sizeof err) != 0 || envelope_verify(oc->e, card.sign_pk) != 0 ||
        keys_pair_key(oc->n->keys, card.enc_pk, pk) != 0)
        return 0;
    int rc = envelope_open(oc->e, oc->n->cfg.id, pk, &oc->pt, &oc->pt_len);
    sodium_memzero(pk, sizeof pk);
    oc->oom = oc->oom || rc == -2;
    return rc == 0 ? 1 : 0;
}

/* Loads and decrypts a stored message. Returns 0 with a malloc'd plaintext (the
 * caller wipes and frees it), 1 if there is no such message, -1 if no key this node has
 * opens it, or -2 if it could not be tried (the database could not be read: store_error
 * says why; or out of memory: store_error is then not about it). */
int control_open_stored(node_t *n, const uint8_t *id, store_msg_t *m, uint8_t **pt, size_t *pt_len)
{
    uint8_t *env = NULL;
    size_t env_len = 0;
    open_ctx_t oc = {.n = n};
    int code = 0;
    char err[128];
    *pt = NULL;
    int rc = store_msg_get(n->store, id, m, &env, &env_len, NULL, NULL);
    if (rc != 0)
        return rc < 0 ? -2 : rc;
    rc = -1;
    if (envelope_parse_stored(env, env_len, &oc.e, &code, err, sizeof err) != 0)
        goto out;
    if (m->outgoing) {
        int orc = envelope_open(oc.e, n->cfg.id, n->self_pair_key, &oc.pt, &oc.pt_len);
        oc.oom = orc == -2;
        if (orc != 0)
            oc.pt = NULL;
    } else {
        peer_t *p = directory_find(&n->dir, m->sender);
        int vrc = p ? envelope_verify(oc.e, p->card.sign_pk) : -1;
        int orc = vrc == 0 ? envelope_open(oc.e, n->cfg.id, p->pair_key, &oc.pt, &oc.pt_len) : -1;
        oc.oom = vrc == -2 || orc == -2;
        if (orc != 0) {
            oc.pt = NULL;
            /* The sender's earlier cards; a history that cannot be read is no verdict. */
            if (store_peer_history(n->store, m->sender, try_card, &oc) < 0)
                rc = -2;
        }
    }
    if (oc.pt) {
        *pt = oc.pt;
        *pt_len = oc.pt_len;
        rc = 0;
    } else if (oc.oom) {
        rc = -2;
    }
out:
    envelope_destroy(&oc.e);
    free(env);
    return rc;
}

/* Audits the read of a message and, if mark, marks an incoming one read. The content
 * is released only if the read could be recorded. */
static bool record_read(call_t *c, const store_msg_t *m, bool mark)
{
    node_t *n = c->n;
    /* An acknowledgement's comment is about the acknowledged message's patient: its read
     * is found under that patient, as its other entries are (PROTOCOL.md 11). */
    uint8_t ack_tag[LIAISON_HASH_BYTES];
    char ack_details[64] = "", details[96];
    bool ack_tagged = m->content_type == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK && m->has_ref &&
                      clinical_ack_audit(n, m->ref_id, ack_tag, ack_details, sizeof ack_details);
    snprintf(details, sizeof details, "%s%s%s", ack_details, ack_details[0] && !mark ? "; " : "",
             mark ? "" : "listed; left unread");
    if (store_op_begin(n->store) != 0)
        return false;
    audit_entry_t a = {.actor = c->actor, .action = "message-read", .outcome = "ok", .message_id = m->id,
                       .peer = m->outgoing ? NULL : m->sender, .content_type = m->content_type,
                       .patient_tag = m->has_patient_tag ? m->patient_tag : ack_tagged ? ack_tag : NULL,
                       .details = details[0] ? details : NULL};
    bool ok = (m->outgoing || !mark || store_msg_mark_read(n->store, m->id, liaison_now_ms()) >= 0) &&
              node_audit(n, &a) == 0;
    return store_op_end(n->store, ok) == 0 && ok;
}

/* Puts the comment of acknowledgement i of a shown message into its AckInfo: "seen, but
 * she is already on 150 mg" is the answer to the change, and shown only as a message of
 * its own it was easily missed behind "acknowledged by". The comment is released only
 * if its read could be audited (and the acknowledgement is then marked read). */
static void add_ack_comment(call_t *c, summary_buf_t *b, size_t i)
{
    Liaison__Control__AckInfo *a = &b->slots[i].ack;
    if (a->ack_message_id.len != LIAISON_MSGID_BYTES)
        return;
    store_msg_t am;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    if (control_open_stored(c->n, a->ack_message_id.data, &am, &pt, &pt_len) != 0)
        return;
    Liaison__Payload__Acknowledgement *ack =
        am.content_type == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK
            ? liaison__payload__acknowledgement__unpack(NULL, pt_len, pt)
            : NULL;
    if (ack && ack->comment && ack->comment[0] && record_read(c, &am, true) &&
        (b->slots[i].ack_comment = strdup(ack->comment)) != NULL)
        a->comment = b->slots[i].ack_comment;
    if (ack) {
        if (ack->comment)
            sodium_memzero(ack->comment, strlen(ack->comment));
        liaison__payload__acknowledgement__free_unpacked(ack, NULL);
    }
    sodium_memzero(pt, pt_len);
    free(pt);
}

static void op_show(call_t *c, const Liaison__Control__ShowRequest *sr)
{
    node_t *n = c->n;
    char hex[TEXT_MSGID_HEX] = "";
    if (sr->message_id.len != LIAISON_MSGID_BYTES) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST, "a message id is 32 hex characters");
        return;
    }
    const uint8_t *id = sr->message_id.data;
    text_msgid_to_hex(id, hex);
    store_msg_t m;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    summary_buf_t *b = NULL;
    int rc = control_open_stored(n, id, &m, &pt, &pt_len);
    if (rc > 0) {
        store_review_t rv; /* a case review's id is not a message's: say where it is read */
        if (store_review_get(n->store, id, &rv) == 0)
            answer_error(c, LIAISON__CONTROL__CODE__NOT_FOUND,
                         "%s is a case review, not a message (read it with: liaison review show %s)", hex, hex);
        else
            answer_error(c, LIAISON__CONTROL__CODE__NOT_FOUND, "no message %s on this node (see: liaison inbox)", hex);
        goto out;
    }
    if (rc == -2) {
        audit_local(c, "message-read", "failed", id, NULL, 0, NULL, "cannot read the message");
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot read message %s (%s); try again", hex,
                     store_error(n->store));
        goto out;
    }
    if (rc < 0) {
        audit_local(c, "message-read", "failed", id, NULL, 0, NULL, "cannot open: no matching key");
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED,
                     "message %s cannot be opened with the keys this node has for its sender", hex);
        goto out;
    }
    if (!record_read(c, &m, true)) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot record the read in the audit log; not shown");
        goto out;
    }
    store_msg_get(n->store, id, &m, NULL, NULL, NULL, NULL);
    if (!(b = summary_new())) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "out of memory");
        goto out;
    }
    if (fill_summary(n, &m, b) != 0) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot read the state of message %s: %s", hex,
                     store_error(n->store));
        goto out;
    }
    for (size_t i = 0; i < b->sum.n_acks; i++)
        add_ack_comment(c, b, i);
    Liaison__Control__ShowResult res = LIAISON__CONTROL__SHOW_RESULT__INIT;
    res.summary = &b->sum;
    res.payload = (ProtobufCBinaryData){pt_len, pt};
    response_t r = LIAISON__CONTROL__RESPONSE__INIT;
    r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_SHOW;
    r.show = &res;
    answer(c, &r);
out:
    summary_free(b);
    if (pt) {
        sodium_memzero(pt, pt_len);
        free(pt);
    }
}

/* ---- waiting for a sent message to settle ---- */

#define WAIT_MAX_MS 86400000u /* 24 h */

/* Whether a sent message's summary says it settled: every delivery final (delivered
 * or rejected) and, with acks, every recipient it reached has acknowledged it. */
static bool summary_settled(const summary_buf_t *b, bool acks)
{
    const Liaison__Control__MessageSummary *s = &b->sum;
    for (size_t i = 0; i < s->n_deliveries; i++) {
        const char *st = s->deliveries[i]->state;
        bool delivered = strcmp(st, "delivered") == 0;
        if (!delivered && strcmp(st, "rejected") != 0)
            return false;
        bool acked = !acks || !delivered;
        for (size_t k = 0; k < s->n_acks && !acked; k++)
            acked = strcmp(s->acks[k]->by, s->deliveries[i]->recipient) == 0;
        if (!acked)
            return false;
    }
    return true;
}

/* Counts the deliveries neither delivered nor rejected. */
static int count_open(void *ctx, const store_delivery_t *d)
{
    if (d->state != DELIVERY_DELIVERED && d->state != DELIVERY_REJECTED)
        (*(unsigned *)ctx)++;
    return 0;
}

/* Answers wait w with its message's state now, unless only_settled and it has not
 * settled. Returns true if it answered. */
static bool answer_wait(node_t *n, const wait_t *w, bool only_settled)
{
    /* Not a refusal of the request if it fails here: logged, not audited. */
    call_t c = {.n = n, .sock = w->sock, .rid = w->rid, .rid_len = w->rid_len, .request_id = w->request_id,
                .op = "wait", .audited = true, .wait = w};
    if (only_settled && !w->acks) {
        /* A delivery still open means not settled: no need to build the answer (after a
         * batch that touched more messages than are remembered, every wait is looked at). */
        unsigned open = 0;
        if (store_delivery_each(n->store, w->msgid, count_open, &open) >= 0 && open > 0)
            return false;
    }
    store_msg_t m;
    int got = store_msg_get(n->store, w->msgid, &m, NULL, NULL, NULL, NULL);
    if (got > 0) {
        /* Removed beneath the daemon (liaisond deletes no message): what a new wait on
         * it would be told. */
        char hex[TEXT_MSGID_HEX];
        text_msgid_to_hex(w->msgid, hex);
        answer_error(&c, LIAISON__CONTROL__CODE__NOT_FOUND, "no message %s on this node (see: liaison outbox)", hex);
        return true;
    }
    if (got != 0) {
        log_err("wait: cannot read a message: %s", store_error(n->store));
        answer_error(&c, LIAISON__CONTROL__CODE__INTERNAL, "cannot read the message: %s", store_error(n->store));
        return true;
    }
    summary_buf_t *b = summary_new();
    if (!b) {
        answer_error(&c, LIAISON__CONTROL__CODE__INTERNAL, "out of memory");
        return true;
    }
    if (fill_summary(n, &m, b) != 0) {
        /* An incomplete state could read as settled (no deliveries): never answer it. */
        log_err("wait: cannot read the state of a message: %s", store_error(n->store));
        answer_error(&c, LIAISON__CONTROL__CODE__INTERNAL, "cannot read the state of the message: %s",
                     store_error(n->store));
        summary_free(b);
        return true;
    }
    bool settled = summary_settled(b, w->acks);
    if (settled || !only_settled) {
        Liaison__Control__WaitResult res = LIAISON__CONTROL__WAIT_RESULT__INIT;
        res.summary = &b->sum;
        res.settled = settled;
        response_t r = LIAISON__CONTROL__RESPONSE__INIT;
        r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_WAIT;
        r.wait = &res;
        answer(&c, &r);
    }
    summary_free(b);
    return settled || !only_settled;
}


/* Adds wait w to those in progress, or refuses it (audited) when there is no room. */
static void keep_waiting(call_t *c, const wait_t *w)
{
    int added = waits_add(c->n->waits, w);
    if (added == 0)
        return;
    char hex[TEXT_MSGID_HEX];
    text_msgid_to_hex(w->msgid, hex);
    if (added == WAITS_USER_FULL)
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED,
                     "you have %u waits in progress on this node, the most one user may: try again later, or follow"
                     " the message with liaison show %s",
                     WAITS_PER_UID_MAX, hex);
    else
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED,
                     "too many waits in progress on this node (at most %u): try again later, or follow the message"
                     " with liaison show %s",
                     WAITS_MAX, hex);
}

static void op_wait(call_t *c, const Liaison__Control__WaitRequest *wr)
{
    node_t *n = c->n;
    if (wr->message_id.len != LIAISON_MSGID_BYTES) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST, "a message id is 32 hex characters");
        return;
    }
    if (wr->timeout_ms > WAIT_MAX_MS) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST,
                     "a wait lasts at most 24 hours (%u ms asked): wait again when it ends", wr->timeout_ms);
        return;
    }
    char hex[TEXT_MSGID_HEX];
    text_msgid_to_hex(wr->message_id.data, hex);
    store_msg_t m;
    int rc = store_msg_get(n->store, wr->message_id.data, &m, NULL, NULL, NULL, NULL);
    if (rc > 0) {
        answer_error(c, LIAISON__CONTROL__CODE__NOT_FOUND, "no message %s on this node (see: liaison outbox)", hex);
        return;
    }
    if (rc < 0) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot read message %s: %s", hex, store_error(n->store));
        return;
    }
    if (!m.outgoing) {
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED,
                     "message %s came to this node from %s: wait follows the messages this node sent (see: liaison"
                     " outbox)",
                     hex, m.sender);
        return;
    }
    if (wr->acks && !m.ack_required) {
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED,
                     "message %s does not ask for acknowledgement: wait for its delivery only (without --ack)", hex);
        return;
    }
    wait_t w = {.sock = c->sock, .rid_len = c->rid_len, .request_id = c->request_id, .acks = wr->acks,
                .uid = (uint32_t)c->uid, .deadline_ms = loop_mono_ms() + wr->timeout_ms};
    if (c->rid_len > sizeof w.rid) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST, "routing id of %zu bytes: at most %zu", c->rid_len,
                     sizeof w.rid);
        return;
    }
    memcpy(w.rid, c->rid, c->rid_len);
    memcpy(w.msgid, wr->message_id.data, LIAISON_MSGID_BYTES);
    /* A message still in flight (the usual case, for a client that waits on each send)
     * is told apart by its deliveries alone, without building the answer. */
    unsigned open = 0;
    bool in_flight = wr->timeout_ms > 0 && !wr->acks &&
                     store_delivery_each(n->store, w.msgid, count_open, &open) >= 0 && open > 0;
    if (!in_flight && answer_wait(n, &w, wr->timeout_ms > 0))
        return;
    keep_waiting(c, &w);
}

static bool wait_settled(void *ctx, const wait_t *w) { return answer_wait(ctx, w, true); }

static bool wait_expired(void *ctx, const wait_t *w) { return answer_wait(ctx, w, false); }

void control_waits_after_commit(node_t *n, bool committed)
{
    waits_after_commit(n->waits, committed, wait_settled, n);
}

void control_waits_expire(node_t *n, uint64_t now_mono_ms)
{
    waits_expire(n->waits, now_mono_ms, wait_expired, n);
}

void control_wait_again(node_t *n, const wait_t *w)
{
    bool time_left = w->deadline_ms > loop_mono_ms();
    if (answer_wait(n, w, time_left))
        return;
    /* No room to keep it (it left the list when its withdrawn answer was made): refused
     * as a new wait would be, and audited. */
    call_t c = {.n = n, .sock = w->sock, .rid = w->rid, .rid_len = w->rid_len, .request_id = w->request_id,
                .uid = (uid_t)w->uid, .op = "wait"};
    node_local_actor(c.uid, c.actor, sizeof c.actor);
    keep_waiting(&c, w);
}

/* ---- case reviews ---- */

typedef struct review_set {
    Liaison__Control__ReviewInfo *infos;
    Liaison__Control__ReviewInfo **ptrs;
    store_review_t *raw;
    char *(*pptr)[LIAISON_MAX_RECIPIENTS];
    size_t n, cap;
} review_set_t;

static int add_review(void *ctx, const store_review_t *r)
{
    review_set_t *rs = ctx;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 16;
        void *a = realloc(rs->raw, cap * sizeof *rs->raw);
        if (!a)
            return -1;
        rs->raw = a;
        rs->cap = cap;
    }
    rs->raw[rs->n++] = *r;
    return 0;
}

static void op_reviews(call_t *c, const Liaison__Control__ReviewListRequest *rq)
{
    node_t *n = c->n;
    review_set_t rs = {0};
    int rc;
    if (rq->review_id.len == LIAISON_MSGID_BYTES) {
        store_review_t r;
        rc = store_review_get(n->store, rq->review_id.data, &r);
        if (rc > 0) {
            answer_error(c, LIAISON__CONTROL__CODE__NOT_FOUND, "no such review on this node (see: liaison review list)");
            return;
        }
        if (rc == 0)
            rc = add_review(&rs, &r);
    } else {
        rc = store_review_each(n->store, rq->open_only, add_review, &rs);
    }
    rs.infos = calloc(rs.n + 1, sizeof *rs.infos);
    rs.ptrs = calloc(rs.n + 1, sizeof *rs.ptrs);
    rs.pptr = calloc(rs.n + 1, sizeof *rs.pptr);
    if (rc != 0 || !rs.infos || !rs.ptrs || !rs.pptr) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot list reviews: %s", store_error(n->store));
    } else {
        for (size_t i = 0; i < rs.n; i++) {
            store_review_t *r = &rs.raw[i];
            Liaison__Control__ReviewInfo *ri = &rs.infos[i];
            liaison__control__review_info__init(ri);
            ri->review_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, r->review_id};
            for (size_t j = 0; j < r->n_participants; j++)
                rs.pptr[i][j] = r->participants[j];
            ri->participants = rs.pptr[i];
            ri->n_participants = r->n_participants;
            ri->opened_by = r->opened_by;
            ri->opened_ms = r->opened_ms;
            ri->closed = r->closed_ms != 0;
            ri->closed_ms = r->closed_ms;
            ri->messages = r->messages;
            rs.ptrs[i] = ri;
        }
        Liaison__Control__ReviewList rl = LIAISON__CONTROL__REVIEW_LIST__INIT;
        rl.reviews = rs.ptrs;
        rl.n_reviews = rs.n;
        response_t r = LIAISON__CONTROL__RESPONSE__INIT;
        r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_REVIEWS;
        r.reviews = &rl;
        answer(c, &r);
    }
    free(rs.infos);
    free(rs.ptrs);
    free(rs.pptr);
    free(rs.raw);
}

/* ---- directory ---- */

/* Audits one queued message made undeliverable by a peer's new keys. */
typedef struct rekey_ctx {
    call_t *c;
    const char *peer, *reason;
} rekey_ctx_t;

static int rekey_one(void *ctx, const uint8_t *msgid, uint32_t content_type)
{
    rekey_ctx_t *rk = ctx;
    waits_touch(rk->c->n->waits, msgid);
    audit_entry_t a = {.actor = rk->c->actor, .action = "delivery-rejected", .outcome = "refused", .message_id = msgid,
                       .peer = rk->peer, .content_type = content_type, .details = rk->reason};
    return node_audit(rk->c->n, &a) == 0 ? 0 : -1;
}

static void op_peer_add(call_t *c, const Liaison__Control__PeerAddRequest *pr)
{
    node_t *n = c->n;
    card_t card;
    char err[256], fp[KEYS_FINGERPRINT_LEN];
    if (!pr->card || !pr->card[0] || strlen(pr->card) > LIAISON_MAX_CARD_TEXT) {
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST, "no card text, or longer than %u bytes",
                     LIAISON_MAX_CARD_TEXT);
        return;
    }
    if (card_decode(pr->card, &card, err, sizeof err) != 0) {
        audit_local(c, "peer-added", "refused", NULL, NULL, 0, NULL, err);
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED, "%s", err);
        return;
    }
    if (strcmp(card.id, n->cfg.id) == 0) {
        /* Our own card, or another node made with our id: only the keys tell them apart,
         * and the second is not a mistake to wave through (nor to describe as the first). */
        if (card_same_keys(&n->card, &card)) {
            answer_error(c, LIAISON__CONTROL__CODE__REFUSED,
                         "that is this node's own card ('%s'): give it to your peers, and add theirs with: "
                         "liaison peer add THEIR_CARD",
                         card.id);
            return;
        }
        char details[200];
        keys_fingerprint(card.sign_pk, fp);
        snprintf(details, sizeof details, "a card for this node's own id with other keys (fingerprint %s)", fp);
        audit_local(c, "peer-added", "refused", NULL, card.id, 0, NULL, details);
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED,
                     "a card for this node's own id '%s' with other keys (fingerprint %s): not this node; refused "
                     "(another node was made with this id: it needs an id of its own, given to liaison init --id)",
                     card.id, fp);
        return;
    }
    const char *why = text_endpoint_problem(card.endpoint, false);
    if (why) {
        audit_local(c, "peer-added", "refused", NULL, card.id, 0, NULL, "endpoint not dialable");
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED,
                     "the card of '%s' gives the endpoint '%s': %s (ask them for a new card)", card.id, card.endpoint,
                     why);
        return;
    }
    /* What a card being made is held to (card.c), beyond what decoding takes. */
    char problem[200];
    if (card_add_problem(&card, problem, sizeof problem)) {
        audit_local(c, "peer-added", "refused", NULL, card.id, 0, NULL, "name or org with a direction control");
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED, "the card of '%s': %s", card.id, problem);
        return;
    }
    /* Everything directory_add would refuse is refused here, before anything is stored,
     * audited as accepted or retired: a card that cannot be used never replaces one that can. */
    const char *unusable = NULL;
    if (directory_check_card(n->keys, &card, &unusable, err, sizeof err) != 0) {
        audit_local(c, "peer-added", "refused", NULL, card.id, 0, NULL, unusable);
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED, "%s", err);
        return;
    }
    peer_t *old = directory_find(&n->dir, card.id);
    bool same = old && card_same_keys(&old->card, &card);
    if (old && directory_card_unchanged(old, &card)) {
        /* The card already held (the same text, or the same keys and fields): nothing to
         * store, audit or reconnect. The answer gives the peer's state as it is. */
        Liaison__Control__PeerInfo pi;
        fill_peer(n, old, &pi, fp);
        pi.change = "unchanged";
        response_t r = LIAISON__CONTROL__RESPONSE__INIT;
        r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_PEER;
        r.peer = &pi;
        answer(c, &r);
        return;
    }
    if (old && !same && !pr->replace) {
        audit_local(c, "peer-added", "refused", NULL, card.id, 0, NULL, "id already in the directory with other keys");
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED,
                     "peer '%s' is already in the directory with different keys (if they really changed keys, "
                     "compare the new fingerprint with them and use: liaison peer add --replace CARD)",
                     card.id);
        return;
    }
    peer_t *clash = directory_find_transport(&n->dir, card.transport_pk);
    if (clash && clash != old) {
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED, "the transport key of '%s' is already used by peer '%s'",
                     card.id, clash->card.id);
        return;
    }
    const char *action = old ? (same ? "peer-updated" : "peer-replaced") : "peer-added";
    keys_fingerprint(card.sign_pk, fp);
    char details[300];
    snprintf(details, sizeof details, "role=%s fingerprint=%s", card.role, fp);
    /* What is still queued for them was sealed to their old encryption key, which their
     * new keys cannot open: say so now, instead of sending it for a refusal that names
     * no cause ("cannot decrypt"). */
    bool rekeyed = old && sodium_memcmp(old->card.enc_pk, card.enc_pk, LIAISON_KEY_BYTES) != 0;
    char reason[200];
    snprintf(reason, sizeof reason,
             "sealed to %s's previous keys, which were replaced (peer add --replace): they cannot open it; send it"
             " again",
             card.id);
    rekey_ctx_t rk = {.c = c, .peer = card.id, .reason = reason};
    int64_t withdrawn = 0;
    bool began = store_op_begin(n->store) == 0, ok = began;
    if (ok && !same) {
        /* New keys are a new node with a new log: the checkpoint witnessed for the old
         * keys would make its first ones look like a rollback, for good. */
        uint64_t held = 0;
        int forgot = witness_forget_other_key(n, card.id, card.sign_pk, &held);
        ok = forgot >= 0;
        if (forgot == 1) {
            size_t used = strlen(details);
            snprintf(details + used, sizeof details - used,
                     "; the checkpoint of its log witnessed for its previous keys (%" PRIu64 " entries) set aside",
                     held);
        }
    }
    if (began) {
        audit_entry_t a = {.actor = c->actor, .action = action, .outcome = "ok", .peer = card.id, .details = details};
        ok = ok && store_peer_put(n->store, card.id, pr->card, liaison_now_ms()) == 0 && node_audit(n, &a) == 0;
        if (ok && rekeyed)
            ok = (withdrawn = store_delivery_reject_pending(n->store, card.id, reason, rekey_one, &rk)) >= 0;
        if (store_op_end(n->store, ok) != 0)
            ok = false;
    }
    /* The directory changes only once the change is durable. */
    if (!ok || !node_commit(n)) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot save the peer: %s", store_error(n->store));
        return;
    }
    if (old) {
        transport_peer_close(n, old);
        directory_remove(&n->dir, old);
    }
    peer_t *p = directory_add(&n->dir, n->keys, &card, pr->card, liaison_now_ms(), err, sizeof err);
    if (!p || transport_peer_open(n, p, err, sizeof err) != 0) {
        log_err("peer %s saved but not activated: %s", card.id, err);
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "peer saved, but: %s (restart liaisond)", err);
        return;
    }
    log_info("%s %s (%s)", action, card.id, card.role);
    if (withdrawn > 0)
        log_warn("%" PRId64 " message(s) queued for %s were sealed to its replaced keys: marked undeliverable",
                 withdrawn, card.id);
    Liaison__Control__PeerInfo pi;
    fill_peer(n, p, &pi, fp);
    pi.change = old ? (same ? "updated" : "replaced") : "added";
    response_t r = LIAISON__CONTROL__RESPONSE__INIT;
    r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_PEER;
    r.peer = &pi;
    answer(c, &r);
}

static void op_peer_remove(call_t *c, const Liaison__Control__PeerRemoveRequest *pr)
{
    node_t *n = c->n;
    const char *id = pr->id ? pr->id : "";
    peer_t *p = directory_find(&n->dir, id);
    if (!p) {
        answer_error(c, LIAISON__CONTROL__CODE__NOT_FOUND, "peer '%.64s' is not in the directory (see: liaison peer list)",
                     id);
        return;
    }
    bool ok = store_op_begin(n->store) == 0;
    if (ok) {
        audit_entry_t a = {.actor = c->actor, .action = "peer-removed", .outcome = "ok", .peer = id};
        ok = store_peer_remove(n->store, id, liaison_now_ms()) == 0 && node_audit(n, &a) == 0;
        if (store_op_end(n->store, ok) != 0)
            ok = false;
    }
    if (!ok || !node_commit(n)) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot remove the peer: %s", store_error(n->store));
        return;
    }
    log_info("peer-removed %s", id);
    char idcopy[LIAISON_MAX_ID + 1];
    snprintf(idcopy, sizeof idcopy, "%s", id);
    transport_peer_close(n, p);
    directory_remove(&n->dir, p);
    response_t r = LIAISON__CONTROL__RESPONSE__INIT;
    answer(c, &r);
}

static void op_peer_list(call_t *c)
{
    peer_set_t ps;
    char err[400];
    if (collect_peers(c->n, &ps, err, sizeof err) != 0) {
        free_peers(&ps);
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "%s", err);
        return;
    }
    Liaison__Control__PeerList pl = LIAISON__CONTROL__PEER_LIST__INIT;
    pl.peers = ps.ptrs;
    pl.n_peers = ps.n;
    response_t r = LIAISON__CONTROL__RESPONSE__INIT;
    r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_PEERS;
    r.peers = &pl;
    answer(c, &r);
    free_peers(&ps);
}

static void op_card(call_t *c)
{
    char fp[KEYS_FINGERPRINT_LEN];
    keys_fingerprint(c->n->keys->sign_pk, fp);
    Liaison__Control__CardResult cr = LIAISON__CONTROL__CARD_RESULT__INIT;
    cr.card = c->n->card_text;
    cr.fingerprint = fp;
    response_t r = LIAISON__CONTROL__RESPONSE__INIT;
    r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_CARD;
    r.card = &cr;
    answer(c, &r);
}

static void op_fingerprint(call_t *c, const Liaison__Control__FingerprintRequest *fr)
{
    node_t *n = c->n;
    const char *id = fr->id && fr->id[0] ? fr->id : n->cfg.id;
    const uint8_t *pk = NULL;
    if (strcmp(id, n->cfg.id) == 0) {
        pk = n->keys->sign_pk;
    } else {
        peer_t *p = directory_find(&n->dir, id);
        if (!p) {
            answer_error(c, LIAISON__CONTROL__CODE__NOT_FOUND,
                         "peer '%.64s' is not in the directory (add their card with: liaison peer add CARD)", id);
            return;
        }
        pk = p->card.sign_pk;
    }
    char fp[KEYS_FINGERPRINT_LEN];
    keys_fingerprint(pk, fp);
    Liaison__Control__FingerprintResult res = LIAISON__CONTROL__FINGERPRINT_RESULT__INIT;
    res.id = (char *)id;
    res.fingerprint = fp;
    response_t r = LIAISON__CONTROL__RESPONSE__INIT;
    r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_FINGERPRINT;
    r.fingerprint = &res;
    answer(c, &r);
}

/* A peer's administrator restored it from a backup, and its auditor was told: this
 * node's witness alarms about it stay, and witnessing starts again from its next
 * checkpoint (PROTOCOL.md 11.3). */
static void op_accept_restore(call_t *c, const Liaison__Control__AcceptRestoreRequest *ar)
{
    node_t *n = c->n;
    const char *id = ar->id ? ar->id : "";
    peer_t *p = directory_find(&n->dir, id);
    if (!p) {
        answer_error(c, LIAISON__CONTROL__CODE__NOT_FOUND, "peer '%.64s' is not in the directory (see: liaison peer list)",
                     id);
        return;
    }
    uint64_t held = 0;
    int rc = witness_reset(n, p, c->actor, &held);
    if (rc == 0) {
        answer_error(c, LIAISON__CONTROL__CODE__NOT_FOUND,
                     "this node holds no checkpoint of %s's log: there is nothing to forget (its next one is taken as"
                     " a first one already)",
                     id);
        return;
    }
    if (rc < 0 || !node_commit(n)) {
        answer_error(c, LIAISON__CONTROL__CODE__INTERNAL, "cannot forget the checkpoint held: %s", store_error(n->store));
        return;
    }
    log_info("witness-reset %s: the checkpoint of its log held at %" PRIu64 " entries is forgotten", id, held);
    Liaison__Control__AcceptRestoreResult res = LIAISON__CONTROL__ACCEPT_RESTORE_RESULT__INIT;
    res.forgotten_size = held;
    response_t r = LIAISON__CONTROL__RESPONSE__INIT;
    r.result_case = LIAISON__CONTROL__RESPONSE__RESULT_ACCEPT_RESTORE;
    r.accept_restore = &res;
    answer(c, &r);
}

static const char *op_name(Liaison__Control__Request__OpCase op)
{
    switch (op) {
    case LIAISON__CONTROL__REQUEST__OP_STATUS: return "status";
    case LIAISON__CONTROL__REQUEST__OP_SEND: return "send";
    case LIAISON__CONTROL__REQUEST__OP_LIST: return "list";
    case LIAISON__CONTROL__REQUEST__OP_SHOW: return "show";
    case LIAISON__CONTROL__REQUEST__OP_PEER_ADD: return "peer-add";
    case LIAISON__CONTROL__REQUEST__OP_PEER_REMOVE: return "peer-remove";
    case LIAISON__CONTROL__REQUEST__OP_PEER_LIST: return "peer-list";
    case LIAISON__CONTROL__REQUEST__OP_CARD: return "card";
    case LIAISON__CONTROL__REQUEST__OP_FINGERPRINT: return "fingerprint";
    case LIAISON__CONTROL__REQUEST__OP_ACK: return "ack";
    case LIAISON__CONTROL__REQUEST__OP_REVIEWS: return "reviews";
    case LIAISON__CONTROL__REQUEST__OP_WAIT: return "wait";
    case LIAISON__CONTROL__REQUEST__OP_ACCEPT_RESTORE: return "accept-restore";
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_LOG: return "audit-log";
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_PROVE: return "audit-prove";
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_VERIFY: return "audit-verify";
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_CHECKPOINT: return "audit-checkpoint";
    default: return "unknown";
    }
}

static void dispatch(call_t *c, const request_t *rq)
{
    switch (rq->op_case) {
    case LIAISON__CONTROL__REQUEST__OP_STATUS: op_status(c); break;
    case LIAISON__CONTROL__REQUEST__OP_SEND: op_send(c, rq->send); break;
    case LIAISON__CONTROL__REQUEST__OP_LIST: op_list(c, rq->list); break;
    case LIAISON__CONTROL__REQUEST__OP_SHOW: op_show(c, rq->show); break;
    case LIAISON__CONTROL__REQUEST__OP_PEER_ADD: op_peer_add(c, rq->peer_add); break;
    case LIAISON__CONTROL__REQUEST__OP_PEER_REMOVE: op_peer_remove(c, rq->peer_remove); break;
    case LIAISON__CONTROL__REQUEST__OP_PEER_LIST: op_peer_list(c); break;
    case LIAISON__CONTROL__REQUEST__OP_CARD: op_card(c); break;
    case LIAISON__CONTROL__REQUEST__OP_FINGERPRINT: op_fingerprint(c, rq->fingerprint); break;
    case LIAISON__CONTROL__REQUEST__OP_ACK: op_ack(c, rq->ack); break;
    case LIAISON__CONTROL__REQUEST__OP_REVIEWS: op_reviews(c, rq->reviews); break;
    case LIAISON__CONTROL__REQUEST__OP_WAIT: op_wait(c, rq->wait); break;
    case LIAISON__CONTROL__REQUEST__OP_ACCEPT_RESTORE: op_accept_restore(c, rq->accept_restore); break;
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_LOG:
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_PROVE:
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_VERIFY:
    case LIAISON__CONTROL__REQUEST__OP_AUDIT_CHECKPOINT:
        answer_error(c, LIAISON__CONTROL__CODE__REFUSED,
                     "audit operations are offered on the audit socket only (%s, group liaison-audit)",
                     c->n->paths.audit_sock);
        break;
    default:
        answer_error(c, LIAISON__CONTROL__CODE__BAD_REQUEST,
                     "unknown operation (is the client newer than this daemon? liaisond is " LIAISON_VERSION ")");
        break;
    }
}

static void dispatch_audit(call_t *c, const request_t *rq)
{
    response_t r = LIAISON__CONTROL__RESPONSE__INIT;
    auditor_scratch_t *scratch = NULL;
    auditor_reply_to_t to = {.rid = c->rid, .rid_len = c->rid_len, .request_id = c->request_id};
    if (!auditor_handle(c->n, c->actor, &to, rq, &r, &scratch))
        answer(c, &r);
    auditor_free(scratch);
}

/* Peer-Address of an IPC connection ends in ":uid:gid:pid" (SO_PEERCRED). */
static int peer_uid(zmq_msg_t *m, uid_t *uid)
{
    const char *pa = zmq_msg_gets(m, "Peer-Address");
    if (!pa)
        return -1;
    unsigned long u, g, p;
    const char *s = strrchr(pa, ':');
    for (int i = 0; i < 2 && s && s > pa; i++) {
        const char *prev = s - 1;
        while (prev > pa && *prev != ':')
            prev--;
        s = prev;
    }
    if (!s || *s != ':' || sscanf(s, ":%lu:%lu:%lu", &u, &g, &p) != 3)
        return -1;
    *uid = (uid_t)u;
    return 0;
}

static void serve(node_t *n, void *sock, bool audit)
{
    uint64_t until = loop_mono_ms() + CONTROL_BUDGET_MS;
    for (int i = 0; i < CONTROL_BATCH && (i == 0 || loop_mono_ms() < until); i++) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        if (zmq_msg_recv(&rid, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            return;
        }
        zmq_msg_init(&body);
        int nframes = 0;
        bool more = zmq_msg_more(&rid);
        while (more) {
            zmq_msg_t x;
            zmq_msg_init(&x);
            if (zmq_msg_recv(&x, sock, 0) < 0) {
                zmq_msg_close(&x);
                break;
            }
            more = zmq_msg_more(&x);
            if (nframes++ == 0)
                zmq_msg_move(&body, &x);
            zmq_msg_close(&x);
        }
        call_t c = {.n = n, .sock = sock, .rid = zmq_msg_data(&rid), .rid_len = zmq_msg_size(&rid)};
        if (peer_uid(&body, &c.uid) != 0) {
            c.uid = (uid_t)-1;
            snprintf(c.actor, sizeof c.actor, "local:unknown");
        } else {
            node_local_actor(c.uid, c.actor, sizeof c.actor);
        }
        request_t *rq = NULL;
        c.op = "malformed";
        /* Unpacked into an arena on the stack (a request with a 4 KB payload fits), wiped
         * after the request: it holds the payload in the clear. */
        _Alignas(16) uint8_t abuf[REQUEST_ARENA_BYTES];
        pb_arena_t arena;
        pb_arena_init(&arena, abuf, sizeof abuf);
        if (nframes != 1) {
            answer_error(&c, LIAISON__CONTROL__CODE__BAD_REQUEST, "expected one frame per request, got %d", nframes);
        } else if (zmq_msg_size(&body) > LIAISON_MAX_CONTROL) {
            answer_error(&c, LIAISON__CONTROL__CODE__BAD_REQUEST, "request of %zu bytes is over the limit of %u",
                         zmq_msg_size(&body), LIAISON_MAX_CONTROL);
        } else if (!(rq = liaison__control__request__unpack(&arena.alloc, zmq_msg_size(&body),
                                                            zmq_msg_data(&body)))) {
            answer_error(&c, LIAISON__CONTROL__CODE__BAD_REQUEST, "malformed request (not a liaison control message)");
        } else {
            c.request_id = rq->request_id;
            c.op = op_name(rq->op_case);
            if (audit)
                dispatch_audit(&c, rq);
            else
                dispatch(&c, rq);
            liaison__control__request__free_unpacked(rq, &arena.alloc);
        }
        pb_arena_release(&arena);
        /* The request may carry a payload or a comment in the clear. */
        if (zmq_msg_size(&body))
            sodium_memzero(zmq_msg_data(&body), zmq_msg_size(&body));
        zmq_msg_close(&body);
        zmq_msg_close(&rid);
    }
}

static void on_control(loop_t *l, void *sock, int fd, void *ctx)
{
    (void)l;
    (void)fd;
    serve(ctx, sock, false);
}

static void on_audit(loop_t *l, void *sock, int fd, void *ctx)
{
    (void)l;
    (void)fd;
    serve(ctx, sock, true);
}

/* Binds one IPC ROUTER with its file mode 0660 and, if it exists, the given group. */
static void *bind_ipc(node_t *n, const char *path, const char *group, char *err, size_t errlen)
{
    char ep[CONFIG_PATH_MAX + 8];
    snprintf(ep, sizeof ep, "ipc://%s", path);
    void *s = zmq_socket(n->zctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    int64_t max = 2 * (int64_t)LIAISON_MAX_CONTROL; /* above the limit: serve() refuses with a reason */
    /* Created 0600, given its group, and only then opened to the group (0660): created
     * 0660 in the daemon's primary group (the clinicians'), the audit socket could be
     * connected to by a clinician in the moment before its group changed, and a
     * connection made then outlives the change. */
    mode_t old = umask(0177);
    int rc = -1;
    if (s && zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one) == 0 &&
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) == 0 &&
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof max) == 0 &&
        /* No send high-water mark: an answer to a committed request is never dropped,
         * however far a pipelining client lags behind in reading them. */
        zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero) == 0 && zmq_bind(s, ep) == 0)
        rc = 0;
    umask(old);
    if (rc != 0) {
        snprintf(err, errlen, "cannot open the socket %s: %s", path, zmq_strerror(errno));
        if (s)
            zmq_close(s);
        return NULL;
    }
    /* Neither call follows a symbolic link put in the socket's place (the runtime
     * directory is checked to be this user's alone, paths_check_dir, but never follow). */
    struct group gr, *res = NULL;
    char buf[1024];
    if (group && getgrnam_r(group, &gr, buf, sizeof buf, &res) == 0 && res && lchown(path, (uid_t)-1, gr.gr_gid) != 0)
        log_warn("cannot give %s to group %s: %s", path, group, strerror(errno));
    if (fchmodat(AT_FDCWD, path, 0660, AT_SYMLINK_NOFOLLOW) != 0)
        log_warn("cannot set the mode of %s: %s", path, strerror(errno));
    return s;
}

int control_start(node_t *n, char *err, size_t errlen)
{
    if (!n->waits && !(n->waits = waits_new())) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!(n->control = bind_ipc(n, n->paths.control_sock, "liaison", err, errlen)) ||
        !(n->auditor = bind_ipc(n, n->paths.audit_sock, "liaison-audit", err, errlen)))
        return -1;
    if (loop_add(n->loop, n->control, 0, on_control, n) != 0 || loop_add(n->loop, n->auditor, 0, on_audit, n) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Replaces *sock, bound at path, by a new socket bound there. */
static void rebind(node_t *n, void **sock, const char *path, const char *group, loop_io_fn fn)
{
    char err[CONFIG_PATH_MAX + 128];
    node_commit(n); /* deferred answers name the old socket: send them first */
    if (sock == &n->auditor)
        n->auditor_gen++;
    /* Waits on the old socket can no longer be answered: their clients see it gone. */
    waits_drop_socket(n->waits, *sock, NULL, NULL);
    if (*sock) {
        loop_remove(n->loop, *sock, 0);
        zmq_close(*sock);
    }
    *sock = bind_ipc(n, path, group, err, sizeof err);
    if (!*sock || loop_add(n->loop, *sock, 0, fn, n) != 0) {
        log_err("the socket %s was deleted and cannot be made again: %s (retried every second)", path,
                *sock ? "out of memory" : err);
        if (*sock) {
            zmq_close(*sock);
            *sock = NULL;
        }
        return;
    }
    log_warn("the socket %s was deleted while liaisond was running: made it again", path);
}

void control_tick(node_t *n)
{
    struct stat st;
    if (!n->control || (lstat(n->paths.control_sock, &st) != 0 && errno == ENOENT))
        rebind(n, &n->control, n->paths.control_sock, "liaison", on_control);
    if (!n->auditor || (lstat(n->paths.audit_sock, &st) != 0 && errno == ENOENT))
        rebind(n, &n->auditor, n->paths.audit_sock, "liaison-audit", on_audit);
}

void control_stop(node_t *n)
{
    /* Waits end with the sockets (linger 0: nothing more goes out); their clients see
     * the daemon gone, and the message's delivery goes on when it starts again. */
    waits_free(n->waits);
    n->waits = NULL;
    if (n->control) {
        loop_remove(n->loop, n->control, 0);
        zmq_close(n->control);
        n->control = NULL;
        unlink(n->paths.control_sock);
    }
    if (n->auditor) {
        loop_remove(n->loop, n->auditor, 0);
        zmq_close(n->auditor);
        n->auditor = NULL;
        unlink(n->paths.audit_sock);
    }
}
