/* SPDX-License-Identifier: Apache-2.0 */
/* An EHR bridge written against the *installed* libliaison-client as a stranger would
 * write it: the installed header, the shared library and code generated with protoc-c
 * from the installed .proto files (pkg-config --variable=protodir liaison-client).
 * Built and driven by tests/integration/test_embed.py; not built by CMake.
 *
 *   ehr_bridge SENDER_HOME RECIPIENT_HOME RECIPIENT_ID SCRATCH_DIR SENDER_PID
 *
 * Sends a progress note and a medication change from the sender to the recipient,
 * waits for their delivery, lists the recipient's inbox, reads the note there and
 * acknowledges the change (liaison_inbox, liaison_read), waits at the sender for the acknowledgement; then walks
 * the error paths and prints each code (SENDER_PID is stopped for a moment to make a
 * call time out). */
#define _POSIX_C_SOURCE 200809L
#include <liaison_client.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "payload.pb-c.h"

static void hex(const ProtobufCBinaryData *b, char out[LIAISON_ID_HEX])
{
    out[0] = 0;
    for (size_t i = 0; i < b->len && i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b->data[i]);
}

/* One round-trip with liaison_call; returns the unpacked response or NULL. */
static Liaison__Control__Response *call(liaison_client_t *c, Liaison__Control__Request *rq, liaison_rc *rcp)
{
    size_t n = liaison__control__request__get_packed_size(rq);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    liaison__control__request__pack(rq, buf);
    void *resp = NULL;
    size_t resp_len = 0;
    liaison_rc rc = liaison_call(c, buf, n, &resp, &resp_len);
    free(buf);
    *rcp = rc;
    if (rc != LIAISON_OK) {
        fprintf(stderr, "call: %s: %s\n", liaison_rc_string(rc), liaison_client_error(c));
        return NULL;
    }
    Liaison__Control__Response *r = liaison__control__response__unpack(NULL, resp_len, resp);
    free(resp);
    return r;
}

static Liaison__Control__Response *list(liaison_client_t *c, Liaison__Control__ListRequest__Box box, bool needs_ack)
{
    Liaison__Control__ListRequest l = LIAISON__CONTROL__LIST_REQUEST__INIT;
    l.box = box;
    l.needs_ack = needs_ack;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_LIST;
    rq.list = &l;
    liaison_rc rc;
    return call(c, &rq, &rc);
}

static const Liaison__Control__MessageSummary *find(const Liaison__Control__Response *r, const char *id)
{
    if (!r || r->result_case != LIAISON__CONTROL__RESPONSE__RESULT_LIST)
        return NULL;
    for (size_t i = 0; i < r->list->n_messages; i++) {
        char h[LIAISON_ID_HEX];
        hex(&r->list->messages[i]->message_id, h);
        if (strcmp(h, id) == 0)
            return r->list->messages[i];
    }
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sends a progress note about `patient` with liaison_send_flags. */
static liaison_rc note_for(liaison_client_t *c, const char *to, const char *patient, unsigned flags,
                           char id[LIAISON_ID_HEX])
{
    Liaison__Payload__PatientRef p = LIAISON__PAYLOAD__PATIENT_REF__INIT;
    p.id = (char *)patient;
    Liaison__Payload__Score phq9 = LIAISON__PAYLOAD__SCORE__INIT;
    phq9.value = 11;
    Liaison__Payload__ProgressNote note = LIAISON__PAYLOAD__PROGRESS_NOTE__INIT;
    note.patient = &p;
    note.session_date = "2026-11-16";
    note.modality = LIAISON__PAYLOAD__MODALITY__MODALITY_CBT;
    note.narrative = "Engaged in CBT; sleep improved.";
    note.phq9 = &phq9;
    size_t n = liaison__payload__progress_note__get_packed_size(&note);
    uint8_t *buf = malloc(n);
    if (!buf)
        return LIAISON_INTERNAL;
    liaison__payload__progress_note__pack(&note, buf);
    liaison_rc rc = flags ? liaison_send_flags(c, to, LIAISON_CONTENT_PROGRESS_NOTE, buf, n, NULL, flags, id)
                          : liaison_send(c, to, LIAISON_CONTENT_PROGRESS_NOTE, buf, n, NULL, id);
    free(buf);
    return rc;
}

static int send_note(liaison_client_t *c, const char *to, char id[LIAISON_ID_HEX])
{
    liaison_rc rc = note_for(c, to, "P-1042", 0, id);
    if (rc != LIAISON_OK) {
        fprintf(stderr, "send note: %s: %s\n", liaison_rc_string(rc), liaison_client_error(c));
        return 1;
    }
    return 0;
}

static int send_med(liaison_client_t *c, const char *to, char id[LIAISON_ID_HEX])
{
    Liaison__Payload__PatientRef p = LIAISON__PAYLOAD__PATIENT_REF__INIT;
    p.id = "P-1042";
    Liaison__Payload__MedicationChange m = LIAISON__PAYLOAD__MEDICATION_CHANGE__INIT;
    m.patient = &p;
    m.medication = "sertraline";
    m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_INCREASE;
    m.previous_dose = "50 mg daily";
    m.new_dose = "100 mg daily";
    m.effective_date = "2026-11-17";
    m.reason = "partial response";
    m.monitor = "activation";
    size_t n = liaison__payload__medication_change__get_packed_size(&m);
    uint8_t *buf = malloc(n);
    if (!buf)
        return 1;
    liaison__payload__medication_change__pack(&m, buf);
    liaison_rc rc = liaison_send(c, to, LIAISON_CONTENT_MEDICATION_CHANGE, buf, n, NULL, id);
    free(buf);
    if (rc != LIAISON_OK) {
        fprintf(stderr, "send med: %s: %s\n", liaison_rc_string(rc), liaison_client_error(c));
        return 1;
    }
    return 0;
}

static void report(const char *what, liaison_rc rc, const char *msg)
{
    printf("%s %s: %s\n", what, liaison_rc_string(rc), msg);
}

static int error_paths(const char *home, const char *peer, const char *scratch, pid_t daemon)
{
    char err[512], path[512];
    liaison_client_t *c;
    snprintf(path, sizeof path, "%s/nonode", scratch);
    liaison_rc rc = liaison_client_connect(path, LIAISON_SOCKET_CONTROL, &c, err, sizeof err);
    report("connect-no-node", rc, c ? "handle!" : err);
    rc = liaison_client_connect_path(scratch, &c, err, sizeof err);
    report("connect-not-a-socket", rc, c ? "handle!" : err);
    /* A socket file nobody listens on: what a crashed daemon leaves behind. */
    snprintf(path, sizeof path, "%s/stale.sock", scratch);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return 1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return 1;
    close(fd);
    rc = liaison_client_connect_path(path, &c, NULL, 0);
    report("connect-stale", rc, c ? "handle!" : "");
    c = liaison_client_open_path(path, err, sizeof err);
    report("open-stale", c ? LIAISON_OK : LIAISON_UNREACHABLE, err);

    rc = liaison_client_connect(home, LIAISON_SOCKET_CONTROL, &c, err, sizeof err);
    if (rc != LIAISON_OK)
        return 1;
    char id[LIAISON_ID_HEX];
    rc = liaison_send_text(c, "nobody.here", "s", "t", id);
    report("unknown-peer", rc, liaison_client_error(c));
    rc = liaison_send_text(c, "bad/id", "s", "t", id);
    report("bad-recipient", rc, liaison_client_error(c));
    rc = liaison_ack(c, "00112233445566778899aabbccddeeff", "x", id);
    report("ack-unknown", rc, liaison_client_error(c));
    rc = liaison_ack(c, "not-an-id", NULL, NULL);
    report("ack-bad-id", rc, liaison_client_error(c));
    rc = liaison_send(c, peer, LIAISON_CONTENT_PROGRESS_NOTE, "garbage", 7, NULL, id);
    report("bad-payload", rc, liaison_client_error(c));
    /* P-1042 is on the node: p-1042 is refused until the caller says it is another patient. */
    rc = note_for(c, peer, "p-1042", 0, id);
    report("case-variant", rc, liaison_client_error(c));
    rc = note_for(c, peer, "p-1042", 0x80, id);
    report("bad-flags", rc, liaison_client_error(c));
    rc = note_for(c, peer, "p-1042", LIAISON_SEND_DISTINCT_PATIENT, id);
    report("distinct-patient", rc, rc == LIAISON_OK ? id : liaison_client_error(c));
    void *resp;
    size_t rl;
    rc = liaison_call(c, "\xff\xff\xff", 3, &resp, &rl);
    report("bad-raw", rc, liaison_client_error(c));
    rc = liaison_collect(c, NULL, NULL);
    report("collect-none", rc, liaison_client_error(c));
    liaison_message_t *m = NULL;
    size_t nm = 0;
    rc = liaison_read(c, "00112233445566778899aabbccddeeff", &m);
    report("read-unknown", rc, liaison_client_error(c));
    rc = liaison_read(c, "not-an-id", &m);
    report("read-bad-id", rc, liaison_client_error(c));
    m = (liaison_message_t *)&nm; /* outputs are reset on every error */
    nm = 7;
    rc = liaison_inbox(c, 0x40, 0, &m, &nm);
    report("inbox-bad-flags", rc, m || nm ? "output set!" : liaison_client_error(c));
    rc = liaison_inbox(c, 0, 1000, &m, &nm);
    report("inbox-most", rc, rc == LIAISON_OK ? "accepted" : liaison_client_error(c));
    liaison_messages_free(m, nm);
    rc = liaison_inbox(c, 0, 1001, &m, &nm);
    report("inbox-too-many", rc, m || nm ? "output set!" : liaison_client_error(c));
    rc = liaison_inbox(c, 0, 0, &m, NULL);
    report("inbox-null-n", rc, m ? "output set!" : liaison_client_error(c));
    /* A daemon that does not answer in time: the request may still be carried out. */
    liaison_client_set_timeout(c, 1000);
    kill(daemon, SIGSTOP);
    rc = liaison_send_text(c, peer, "late", "sent while the daemon was stopped", id);
    kill(daemon, SIGCONT);
    report("timeout", rc, liaison_client_error(c));
    liaison_client_set_timeout(c, 0);
    uint64_t token;
    for (int i = 0; i < 5; i++)
        if (liaison_submit_text(c, peer, "", "left pending at close", &token) != LIAISON_OK)
            return 1;
    printf("pending %zu\n", liaison_pending(c));
    printf("rc-names %s %s\n", liaison_rc_string(LIAISON_PERMISSION), liaison_rc_string((liaison_rc)99));
    liaison_client_close(c);
    liaison_client_close(NULL);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: ehr_bridge SENDER_HOME RECIPIENT_HOME RECIPIENT_ID SCRATCH_DIR SENDER_PID\n");
        return 2;
    }
    char err[512];
    liaison_client_t *a, *b;
    liaison_rc orc = liaison_client_connect(argv[1], LIAISON_SOCKET_CONTROL, &a, err, sizeof err);
    if (orc != LIAISON_OK) {
        fprintf(stderr, "connect %s: %s: %s\n", argv[1], liaison_rc_string(orc), err);
        return 3;
    }
    orc = liaison_client_connect(argv[2], LIAISON_SOCKET_CONTROL, &b, err, sizeof err);
    if (orc != LIAISON_OK) {
        fprintf(stderr, "connect %s: %s: %s\n", argv[2], liaison_rc_string(orc), err);
        liaison_client_close(a);
        return 3;
    }
    liaison_client_set_timeout(a, 5000);
    int status = 1;
    char note_id[LIAISON_ID_HEX], med_id[LIAISON_ID_HEX], ack_id[LIAISON_ID_HEX];
    if (send_note(a, argv[3], note_id) || send_med(a, argv[3], med_id))
        goto out;
    printf("note %s\nmed %s\n", note_id, med_id);

    /* wait for delivery of both */
    for (int i = 0;; i++) {
        Liaison__Control__Response *r = list(a, LIAISON__CONTROL__LIST_REQUEST__BOX__OUTBOX, false);
        const Liaison__Control__MessageSummary *n = find(r, note_id), *m = find(r, med_id);
        bool done = n && m && n->n_deliveries == 1 && m->n_deliveries == 1 &&
                    strcmp(n->deliveries[0]->state, "delivered") == 0 &&
                    strcmp(m->deliveries[0]->state, "delivered") == 0;
        liaison__control__response__free_unpacked(r, NULL);
        if (done)
            break;
        if (i == 100) {
            fprintf(stderr, "not delivered\n");
            goto out;
        }
        sleep_ms(100);
    }
    printf("delivered\n");

    /* recipient: inbox, read the note, ack the medication change (the typed calls:
     * no control.proto needed for these) */
    liaison_message_t *msgs = NULL, *one = NULL;
    size_t n = 0;
    liaison_rc rc = liaison_inbox(b, LIAISON_INBOX_UNREAD, 0, &msgs, &n);
    if (rc != LIAISON_OK) {
        fprintf(stderr, "inbox: %s: %s\n", liaison_rc_string(rc), liaison_client_error(b));
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        printf("inbox %s from %s to %s type %u awaiting_ack %d payload %zu\n", msgs[i].id, msgs[i].sender,
               msgs[i].recipients, msgs[i].content_type, msgs[i].awaiting_ack, msgs[i].payload_len);
    liaison_messages_free(msgs, n);
    /* With a limit, the oldest or the newest: the note was sent first. */
    rc = liaison_inbox(b, LIAISON_INBOX_OLDEST, 1, &msgs, &n);
    printf("oldest %s\n", rc == LIAISON_OK && n == 1 ? msgs[0].id : "?");
    liaison_messages_free(msgs, n);
    rc = liaison_inbox(b, 0, 1, &msgs, &n);
    printf("newest %s\n", rc == LIAISON_OK && n == 1 ? msgs[0].id : "?");
    liaison_messages_free(msgs, n);

    rc = liaison_read(b, note_id, &one);
    if (rc != LIAISON_OK) {
        fprintf(stderr, "read: %s: %s\n", liaison_rc_string(rc), liaison_client_error(b));
        goto out;
    }
    Liaison__Payload__ProgressNote *pn = liaison__payload__progress_note__unpack(NULL, one->payload_len, one->payload);
    if (pn) {
        printf("read note: patient %s narrative '%s' marked read %d\n", pn->patient->id, pn->narrative,
               one->read_ms != 0);
        liaison__payload__progress_note__free_unpacked(pn, NULL);
    }
    liaison_messages_free(one, 1);
    /* Read now: no longer in the unread inbox; the medication change still is. */
    rc = liaison_inbox(b, LIAISON_INBOX_UNREAD, 0, &msgs, &n);
    if (rc == LIAISON_OK)
        printf("unread now %zu: %s\n", n, n ? msgs[0].id : "-");
    liaison_messages_free(msgs, n);

    /* A medication change is acknowledged only once it has been read on this node:
     * here through the inbox, which reads what it returns with LIAISON_INBOX_READ. */
    rc = liaison_inbox(b, LIAISON_INBOX_NEEDS_ACK | LIAISON_INBOX_READ, 10, &msgs, &n);
    if (rc != LIAISON_OK || n != 1 || strcmp(msgs[0].id, med_id) != 0 || !msgs[0].payload) {
        fprintf(stderr, "needs-ack inbox: %s, %zu messages\n", liaison_rc_string(rc), n);
        liaison_messages_free(msgs, n);
        goto out;
    }
    printf("read medication change (%zu bytes), read_ms set %d\n", msgs[0].payload_len, msgs[0].read_ms != 0);
    liaison_messages_free(msgs, n);
    rc = liaison_ack(b, med_id, "Seen; will screen for activation.", ack_id);
    if (rc != LIAISON_OK) {
        fprintf(stderr, "ack: %s: %s\n", liaison_rc_string(rc), liaison_client_error(b));
        goto out;
    }
    printf("ack %s\n", ack_id);

    for (int i = 0;; i++) {
        Liaison__Control__Response *r = list(a, LIAISON__CONTROL__LIST_REQUEST__BOX__OUTBOX, false);
        const Liaison__Control__MessageSummary *m = find(r, med_id);
        bool done = m && m->n_acks == 1;
        if (done)
            printf("acknowledged by %s\n", m->acks[0]->by);
        liaison__control__response__free_unpacked(r, NULL);
        if (done)
            break;
        if (i == 100) {
            fprintf(stderr, "not acknowledged\n");
            goto out;
        }
        sleep_ms(100);
    }
    /* The sender reads its change back: no read time of its own, nothing it owes, and
     * the acknowledgement with its comment (a read of the acknowledgement, audited). */
    rc = liaison_read(a, med_id, &one);
    if (rc != LIAISON_OK || one->n_acks != 1) {
        fprintf(stderr, "sender read: %s: %s\n", liaison_rc_string(rc), liaison_client_error(a));
        liaison_messages_free(one, one ? 1 : 0);
        goto out;
    }
    printf("sender read: read_ms %llu awaiting_ack %d ack %s by %s comment '%s'\n", (unsigned long long)one->read_ms,
           one->awaiting_ack, strcmp(one->acks[0].ack_id, ack_id) == 0 ? "id ok" : one->acks[0].ack_id,
           one->acks[0].by, one->acks[0].comment ? one->acks[0].comment : "(none)");
    liaison_messages_free(one, 1);
    /* A listing carries who acknowledged, not the comment (that would be a read). */
    rc = liaison_inbox(b, 0, 10, &msgs, &n);
    for (size_t i = 0; rc == LIAISON_OK && i < n; i++)
        if (strcmp(msgs[i].id, med_id) == 0)
            printf("recipient lists: awaiting_ack %d acks %zu by %s comment %s\n", msgs[i].awaiting_ack,
                   msgs[i].n_acks, msgs[i].n_acks ? msgs[i].acks[0].by : "-",
                   msgs[i].n_acks && msgs[i].acks[0].comment ? "set" : "none");
    liaison_messages_free(msgs, n);
    status = error_paths(argv[1], argv[3], argv[4], (pid_t)atol(argv[5]));
out:
    liaison_client_close(a);
    liaison_client_close(b);
    return status;
}
