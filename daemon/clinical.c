/* SPDX-License-Identifier: Apache-2.0 */
/* Owns acknowledgements, case-review membership and overdue-acknowledgement flags. */
#include "clinical.h"

#include <errno.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <sodium.h>

#include "log.h"
#include "text.h"
#include "wire.pb-c.h"

extern char **environ;

static bool in_list(char *const *list, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], id) == 0)
            return true;
    return false;
}

/* Appends id to out unless it is this node or already there. Returns -1 when full. */
static int add_recipient(node_t *n, char out[][LIAISON_MAX_ID + 1], size_t *n_out, const char *id)
{
    if (strcmp(id, n->cfg.id) == 0)
        return 0;
    for (size_t i = 0; i < *n_out; i++)
        if (strcmp(out[i], id) == 0)
            return 0;
    if (*n_out + 1 >= LIAISON_MAX_RECIPIENTS)
        return -1;
    snprintf(out[(*n_out)++], LIAISON_MAX_ID + 1, "%s", id);
    return 0;
}

static int ack_recipients(node_t *n, const payload_info_t *info, char out[][LIAISON_MAX_ID + 1], size_t *n_out,
                          bool *refused, char *err, size_t errlen)
{
    char hex[TEXT_MSGID_HEX];
    text_msgid_to_hex(info->ref_id, hex);
    store_msg_t m;
    int rc = store_msg_get(n->store, info->ref_id, &m, NULL, NULL, NULL, NULL);
    *refused = true;
    if (rc != 0) {
        snprintf(err, errlen, rc > 0 ? "no message %s on this node to acknowledge (see: liaison inbox)"
                                     : "cannot read message %s", hex);
        return -1;
    }
    if (m.outgoing) {
        snprintf(err, errlen, "message %s was sent by this node; only its recipients can acknowledge it", hex);
        return -1;
    }
    if (m.content_type == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK) {
        snprintf(err, errlen, "message %s is itself an acknowledgement", hex);
        return -1;
    }
    /* The loop closes at the author and at everyone else who was told. */
    add_recipient(n, out, n_out, m.sender);
    char list[sizeof m.recipients];
    snprintf(list, sizeof list, "%s", m.recipients);
    for (char *save = NULL, *id = strtok_r(list, ",", &save); id; id = strtok_r(NULL, ",", &save))
        add_recipient(n, out, n_out, id);
    return 0;
}

/* A closing's action items are owned by participants of the review. */
static int check_owners(const store_review_t *r, const payload_info_t *info, const char *hex, char *err,
                        size_t errlen)
{
    if (info->review_action != PAYLOAD_REVIEW_CLOSE)
        return 0;
    for (size_t i = 0; i < info->n_participants; i++)
        if (!store_review_has(r, info->participants[i])) {
            snprintf(err, errlen, "action owner '%s' does not take part in review %s (add them first: liaison review "
                                  "add %s %s)", info->participants[i], hex, hex, info->participants[i]);
            return -1;
        }
    return 0;
}

static int count_held(void *ctx, const store_msg_t *m)
{
    (void)m;
    (*(int *)ctx)++;
    return 0;
}

/* A review id that is already the id or the thread of a message this node holds would
 * turn that conversation into the review's thread, where thread_check then refuses
 * every ordinary reply: a peer that learnt the id could silence a thread it was told
 * of. Returns 1 in use, 0 free, -1 on a database error. */
static int thread_in_use(node_t *n, const uint8_t id[static LIAISON_MSGID_BYTES])
{
    int held = 0;
    store_query_t q = {.thread_id = id, .limit = 1};
    if (store_msg_each(n->store, &q, count_held, &held) != 0)
        return -1;
    return held ? 1 : 0;
}

static int review_recipients(node_t *n, const payload_info_t *info, char out[][LIAISON_MAX_ID + 1], size_t *n_out,
                             bool *refused, char *err, size_t errlen)
{
    char hex[TEXT_MSGID_HEX];
    text_msgid_to_hex(info->ref_id, hex);
    store_review_t r;
    int rc = store_review_get(n->store, info->ref_id, &r);
    *refused = true;
    if (rc < 0) {
        snprintf(err, errlen, "cannot read review %s", hex);
        return -1;
    }
    if (info->review_action == PAYLOAD_REVIEW_OPEN) {
        if (!payload_review_id_matches(info->ref_id, n->cfg.id, info->review_salt)) {
            snprintf(err, errlen,
                     "review id %s is not the one this node's id and the open's salt give (PROTOCOL.md 8.5: the first"
                     " 16 bytes of H32(D(\"liaison-v1/review-id\") || u8(len(opener)) || opener || salt))",
                     hex);
            return -1;
        }
        if (rc == 0) {
            snprintf(err, errlen, "review %s already exists", hex);
            return -1;
        }
        int used = thread_in_use(n, info->ref_id);
        if (used != 0) {
            snprintf(err, errlen,
                     used < 0 ? "cannot look up review id %s among the messages" /* not "in use" */
                              : "review id %s is already the id of a message or thread on this node",
                     hex);
            return -1;
        }
        for (size_t i = 0; i < info->n_participants; i++)
            if (add_recipient(n, out, n_out, info->participants[i]) != 0) {
                snprintf(err, errlen, "too many participants");
                return -1;
            }
        if (*n_out == 0) {
            *refused = false;
            snprintf(err, errlen, "a review needs at least one participant besides this node (--with ID)");
            return -1;
        }
        return 0;
    }
    if (rc > 0) {
        snprintf(err, errlen, "no review %s on this node (see: liaison review list)", hex);
        return -1;
    }
    if (!store_review_has(&r, n->cfg.id)) {
        snprintf(err, errlen, "this node is not a participant of review %s", hex);
        return -1;
    }
    if (r.closed_ms) {
        snprintf(err, errlen,
                 "review %s is closed and takes no more messages (see its decision with: liaison review show %s;"
                 " to go on, open a new one with: liaison review open)",
                 hex, hex);
        return -1;
    }
    if (check_owners(&r, info, hex, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < r.n_participants; i++)
        if (add_recipient(n, out, n_out, r.participants[i]) != 0) {
            snprintf(err, errlen, "review %s has more participants than one message can reach", hex);
            return -1;
        }
    if (info->review_action == PAYLOAD_REVIEW_ADD) {
        if (store_review_has(&r, info->added)) {
            snprintf(err, errlen, "'%s' already takes part in review %s", info->added, hex);
            return -1;
        }
        if (add_recipient(n, out, n_out, info->added) != 0) {
            snprintf(err, errlen, "too many participants");
            return -1;
        }
    }
    if (*n_out == 0) {
        snprintf(err, errlen, "review %s has no other participant", hex);
        return -1;
    }
    return 0;
}

/* A case review's thread carries only that review's messages: anything else would
 * slip past its participant and closing rules. Returns 0, -1 refused, or -2 if the
 * review cannot be read (err says which). */
static int thread_check(node_t *n, uint32_t ct, const uint8_t *thread_id, char *err, size_t errlen)
{
    if (!thread_id || ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW)
        return 0;
    char hex[TEXT_MSGID_HEX];
    text_msgid_to_hex(thread_id, hex);
    store_review_t r;
    int rc = store_review_get(n->store, thread_id, &r);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read review %s", hex);
        return -2;
    }
    if (rc == 0) {
        snprintf(err, errlen, "thread %s is a case review; only review messages go there (liaison review reply %s)",
                 hex, hex);
        return -1;
    }
    return 0;
}

int clinical_recipients(node_t *n, uint32_t ct, const payload_info_t *info, const uint8_t *thread_id,
                        char *const *to, size_t n_to, char out[][LIAISON_MAX_ID + 1], size_t *n_out, bool *refused,
                        char *err, size_t errlen)
{
    *n_out = 0;
    *refused = false;
    int rc;
    if (thread_check(n, ct, thread_id, err, errlen) != 0) {
        *refused = true;
        return -1;
    }
    if (ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK) {
        rc = ack_recipients(n, info, out, n_out, refused, err, errlen);
    } else if (ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW) {
        rc = review_recipients(n, info, out, n_out, refused, err, errlen);
    } else {
        rc = 0;
        for (size_t i = 0; i < n_to && rc == 0; i++) {
            if (!text_valid_id(to[i])) {
                snprintf(err, errlen, "'%.64s' is not a valid node id", to[i]);
                rc = -1;
            } else if (add_recipient(n, out, n_out, to[i]) != 0) {
                snprintf(err, errlen, "too many recipients (limit %u)", LIAISON_MAX_RECIPIENTS - 1);
                rc = -1;
            }
        }
        if (rc == 0 && *n_out == 0) {
            snprintf(err, errlen, "no recipient other than this node (use --to ID)");
            rc = -1;
        }
    }
    for (size_t i = 0; rc == 0 && i < *n_out; i++) {
        if (!directory_find(&n->dir, out[i])) {
            *refused = true;
            const peer_t *near = directory_nearest(&n->dir, out[i]);
            if (near)
                snprintf(err, errlen,
                         "peer '%s' is not in the directory (did you mean %s? if not, add their card with: liaison"
                         " peer add CARD)",
                         out[i], near->card.id);
            else
                snprintf(err, errlen,
                         "peer '%s' is not in the directory (add their card with: liaison peer add CARD)", out[i]);
            rc = -1;
        }
    }
    return rc;
}

int clinical_inbound_check(node_t *n, const char *sender, uint32_t ct, const payload_info_t *info,
                           const uint8_t *thread_id, char *const *recipients, size_t n_recipients, char *err,
                           size_t errlen)
{
    char hex[TEXT_MSGID_HEX];
    int checked = thread_check(n, ct, thread_id, err, errlen);
    if (checked != 0)
        return checked;
    if (ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK) {
        text_msgid_to_hex(info->ref_id, hex);
        store_msg_t m;
        int got = store_msg_get(n->store, info->ref_id, &m, NULL, NULL, NULL, NULL);
        if (got < 0) { /* not "does not have": that refusal would be final */
            snprintf(err, errlen, "cannot read message %s", hex);
            return -2;
        }
        if (got > 0) {
            snprintf(err, errlen, "acknowledges message %s, which this node does not have", hex);
            return -1;
        }
        bool was_told = strcmp(m.sender, sender) == 0;
        char list[sizeof m.recipients];
        snprintf(list, sizeof list, "%s", m.recipients);
        for (char *save = NULL, *id = strtok_r(list, ",", &save); id && !was_told; id = strtok_r(NULL, ",", &save))
            was_told = strcmp(id, sender) == 0;
        if (!was_told || strcmp(m.sender, sender) == 0) {
            snprintf(err, errlen, "'%s' acknowledges message %s, which was not sent to them", sender, hex);
            return -1;
        }
        /* Ids are chosen by senders: an acknowledgement counts only for the very
         * envelope it names, never for another message that took the same id. */
        if (sodium_memcmp(m.envelope_hash, info->ref_hash, LIAISON_HASH_BYTES) != 0) {
            snprintf(err, errlen, "'%s' acknowledges a different message under id %s", sender, hex);
            return -1;
        }
        return 0;
    }
    if (ct != LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW)
        return 0;
    text_msgid_to_hex(info->ref_id, hex);
    store_review_t r;
    int rc = store_review_get(n->store, info->ref_id, &r);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read review %s", hex);
        return -2;
    }
    if (info->review_action == PAYLOAD_REVIEW_OPEN) {
        /* The id is its opener's (payload_review_id): another participant who saw it
         * cannot open a review under it here first. */
        if (!payload_review_id_matches(info->ref_id, sender, info->review_salt)) {
            snprintf(err, errlen, "review id %s is not the one the opener '%s' and the open's salt give", hex, sender);
            return -1;
        }
        if (rc == 0 && strcmp(r.opened_by, sender) != 0) {
            snprintf(err, errlen, "review %s already exists", hex);
            return -1;
        }
        /* Known already from an add by a participant that reached this node first: the
         * same review (the id says who opened it), whose open is welcome. A message that
         * put itself in the review's thread before the open came is no reason to refuse
         * it: the id, derived in a domain of its own, cannot be a conversation's, so that
         * message could only copy it (it is no part of the review: review show lists the
         * review's own messages, and the thread takes no others from now on). */
        if (!in_list(recipients, n_recipients, sender))
            return snprintf(err, errlen, "the opener is not a participant"), -1;
        /* The header's recipients are who takes part; the open's participants list says
         * who was invited, and every node shows it: the two must name the same nodes
         * (the opener may be listed or not, as liaisond's own sending allows). */
        for (size_t i = 0; i < info->n_participants; i++)
            if (!in_list(recipients, n_recipients, info->participants[i]))
                return snprintf(err, errlen, "participant '%s' is not a recipient of the open", info->participants[i]),
                       -1;
        size_t merged = r.n_participants;
        for (size_t i = 0; i < n_recipients; i++) {
            bool listed = strcmp(recipients[i], sender) == 0;
            for (size_t j = 0; j < info->n_participants && !listed; j++)
                listed = strcmp(recipients[i], info->participants[j]) == 0;
            if (!listed)
                return snprintf(err, errlen, "recipient '%s' is not among the open's participants", recipients[i]), -1;
            merged += rc == 0 && !store_review_has(&r, recipients[i]);
        }
        /* Learnt from an add first: the open's recipients join the add's. */
        if (merged > LIAISON_MAX_RECIPIENTS)
            return snprintf(err, errlen, "review %s would have more than %u participants", hex,
                            LIAISON_MAX_RECIPIENTS),
                   -1;
        return 0;
    }
    if (rc > 0) {
        /* A participant added to a review learns of it from the add itself. */
        if (info->review_action == PAYLOAD_REVIEW_ADD && strcmp(info->added, n->cfg.id) == 0) {
            /* The add names the opener and carries the open's salt: the review id must be
             * theirs, so that nobody makes this node take a message's id, or a review not
             * yet here, for a review of its own making. */
            if (!info->opener[0] || !info->has_salt ||
                !payload_review_id_matches(info->ref_id, info->opener, info->review_salt)) {
                snprintf(err, errlen,
                         "review %s: the add does not name an opener and salt that give this review id", hex);
                return -1;
            }
            return 0; /* a message already in that thread: as for an open, above */
        }
        /* Its open (or the add naming this node) may still be on its way from another
         * participant: what overtook it waits at its sender, not refused for good. */
        snprintf(err, errlen, "review %s is not known here yet", hex);
        return -3;
    }
    if (!store_review_has(&r, sender)) {
        /* Perhaps added by an add that has not reached this node yet. */
        snprintf(err, errlen, "'%s' is not a participant of review %s here (not yet)", sender, hex);
        return -3;
    }
    if (r.closed_ms) {
        snprintf(err, errlen, "review %s is closed", hex);
        return -1;
    }
    if (check_owners(&r, info, hex, err, errlen) != 0)
        return -1;
    if (info->review_action != PAYLOAD_REVIEW_ADD)
        return 0;
    /* An add records its envelope's recipients as participants (clinical_record): the
     * adding node's list, which may name participants added meanwhile by another
     * participant's add still on its way here (two adds at once: each node learns the
     * other's from the next add). It must reach the node it adds, and the list must stay
     * within what one message can reach. */
    if (!in_list(recipients, n_recipients, info->added)) {
        snprintf(err, errlen, "review %s: the add is not addressed to '%s', the participant it adds", hex,
                 info->added);
        return -1;
    }
    size_t merged = r.n_participants;
    for (size_t i = 0; i < n_recipients; i++)
        merged += !store_review_has(&r, recipients[i]);
    if (merged > LIAISON_MAX_RECIPIENTS) {
        snprintf(err, errlen, "review %s would have more than %u participants, the most one message can reach", hex,
                 LIAISON_MAX_RECIPIENTS);
        return -1;
    }
    return 0;
}

int clinical_record(node_t *n, const char *sender, const uint8_t msgid[static LIAISON_MSGID_BYTES], uint32_t ct,
                    const payload_info_t *info, const uint8_t *patient_tag, char *const *recipients,
                    size_t n_recipients, uint64_t created_ms)
{
    store_t *s = n->store;
    if (ct == LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK)
        return store_ack_add(s, info->ref_id, sender, msgid, created_ms) < 0 ? -1 : 0;
    if (ct != LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW)
        return 0;
    const uint8_t *rid = info->ref_id;
    uint64_t now = liaison_now_ms();
    switch (info->review_action) {
    case PAYLOAD_REVIEW_OPEN:
    case PAYLOAD_REVIEW_ADD:
        /* Creates the review if this node did not know it (opened here, or we are the
         * one being added, and then the add names the opener); everyone in the header's
         * recipient list takes part, from the time this node learns it (its own clock:
         * the list's order, which no sender's clock may change). Learnt from an add,
         * the time recorded is the add's, for want of the open's, which an add does not
         * carry (PROTOCOL.md 8.5): liaison, finding no open among the review's messages
         * here, shows it as when this node was added, not as the opening (an open the
         * add overtook, arriving later, shows its own time there). */
        if (store_review_open(s, rid, info->opener[0] ? info->opener : sender, patient_tag, created_ms) < 0)
            return -1;
        for (size_t i = 0; i < n_recipients; i++)
            if (store_review_add(s, rid, recipients[i], now) < 0)
                return -1;
        return 0;
    case PAYLOAD_REVIEW_CLOSE:
        return store_review_close(s, rid, created_ms) < 0 ? -1 : 0;
    default:
        return 0;
    }
}

/* ---- overdue acknowledgements ---- */

static void run_hook(node_t *n, const uint8_t *msg, const char *recipient, bool urgent)
{
    if (!n->cfg.ack_hook[0])
        return;
    /* Checked again now, not only when the configuration was read: the program or a
     * directory on its way may have changed hands since (a hook missing then and put
     * there later by another user, say). */
    char err[CONFIG_PATH_MAX * 3 + 256];
    if (config_check_hook_safe(n->paths.config_file, &n->cfg, err, sizeof err) != 0 ||
        config_check_hook(n->paths.config_file, &n->cfg, err, sizeof err) != 0) {
        log_err("ack hook not run: %s", err);
        return;
    }
    char hex[TEXT_MSGID_HEX], e1[64], e2[64], e3[128], e4[32], e5[128];
    text_msgid_to_hex(msg, hex);
    snprintf(e1, sizeof e1, "LIAISON_EVENT=ack-overdue");
    snprintf(e2, sizeof e2, "LIAISON_MESSAGE_ID=%s", hex);
    snprintf(e3, sizeof e3, "LIAISON_RECIPIENT=%s", recipient);
    snprintf(e4, sizeof e4, "LIAISON_URGENCY=%s", urgent ? "urgent" : "routine");
    snprintf(e5, sizeof e5, "LIAISON_NODE=%s", n->cfg.id);
    /* No shell, a fixed small environment, and no clinical content: just which message
     * waits for whom. */
    char *envp[] = {e1, e2, e3, e4, e5, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    char *argv[] = {n->cfg.ack_hook, hex, (char *)recipient, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, n->cfg.ack_hook, NULL, NULL, argv, envp);
    if (rc != 0)
        log_warn("ack hook %s: %s", n->cfg.ack_hook, strerror(rc));
}

typedef struct overdue_ctx {
    node_t *n;
    uint64_t now;
} overdue_ctx_t;

static int flag_one(void *ctx, const uint8_t *msg, const char *recipient, bool urgent, uint64_t created_ms)
{
    overdue_ctx_t *oc = ctx;
    node_t *n = oc->n;
    (void)created_ms;
    /* The deadline that passed, in the unit it was most likely set in. */
    uint32_t s = urgent ? n->cfg.ack_urgent_s : n->cfg.ack_routine_s;
    char details[128];
    snprintf(details, sizeof details, "%s medication change not acknowledged within %" PRIu32 " %s",
             urgent ? "urgent" : "routine", s % 3600u == 0 ? s / 3600u : s % 60u == 0 ? s / 60u : s,
             s % 3600u == 0 ? "h" : s % 60u == 0 ? "min" : "s");
    if (store_op_begin(n->store) != 0)
        return -1;
    audit_entry_t a = {.actor = "daemon", .action = "ack-overdue", .outcome = "ok", .message_id = msg,
                       .peer = recipient, .content_type = LIAISON__WIRE__CONTENT_TYPE__CONTENT_MEDICATION_CHANGE,
                       .details = details};
    bool ok = store_overdue_flag(n->store, msg, recipient, oc->now) == 0 && node_audit(n, &a) == 0;
    if (store_op_end(n->store, ok) != 0 || !ok)
        return -1;
    char hex[TEXT_MSGID_HEX];
    text_msgid_to_hex(msg, hex);
    log_warn("acknowledgement overdue: %s from %s (%s)", hex, recipient, urgent ? "urgent" : "routine");
    run_hook(n, msg, recipient, urgent);
    return 0;
}

void clinical_tick(node_t *n)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    overdue_ctx_t oc = {.n = n, .now = liaison_now_ms()};
    /* A scan broken off is tried again at the next tick; said, so that overdue
     * acknowledgements not flagged meanwhile are not taken for none. */
    if (store_overdue_scan(n->store, oc.now, (uint64_t)n->cfg.ack_routine_s * 1000u,
                           (uint64_t)n->cfg.ack_urgent_s * 1000u, false, flag_one, &oc) < 0)
        log_warn("cannot look for overdue acknowledgements: %s", store_error(n->store));
}

bool clinical_ack_audit(node_t *n, const uint8_t ref_id[static LIAISON_MSGID_BYTES],
                        uint8_t tag[static LIAISON_HASH_BYTES], char *details, size_t len)
{
    char hex[TEXT_MSGID_HEX];
    text_msgid_to_hex(ref_id, hex);
    snprintf(details, len, "acknowledges %s", hex);
    store_msg_t m;
    if (store_msg_get(n->store, ref_id, &m, NULL, NULL, NULL, NULL) != 0 || !m.has_patient_tag)
        return false;
    memcpy(tag, m.patient_tag, LIAISON_HASH_BYTES);
    return true;
}
