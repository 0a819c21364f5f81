/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the case-review commands: open, reply, add, close, show, list. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "payload.h"
#include "payload.pb-c.h"
#include "render.h"
#include "text.h"

static int parse_rid(const char *s, uint8_t rid[LIAISON_MSGID_BYTES])
{
    if (!s)
        return cli_fail(EXIT_USAGE, "give the review id (32 hex characters; see: liaison review list)");
    if (text_msgid_from_hex(s, rid) != 0)
        return cli_fail(EXIT_USAGE, "'%.40s' is not a review id (32 hex characters; see: liaison review list)", s);
    return 0;
}

/* The review's first message on this node (its opening, or the addition of this
 * node), with its payload; *r is the caller's to free. */
/* The review's messages with their payloads, oldest first (limit 0: all), left unread:
 * a lookup (of the patient and question, or of the replies an add forwards) is not a
 * reading, though the daemon audits each payload it returns. */
static int review_messages(cli_t *cli, const uint8_t rid[LIAISON_MSGID_BYTES], uint32_t limit,
                           Liaison__Control__Response **r)
{
    Liaison__Control__ListRequest lr = LIAISON__CONTROL__LIST_REQUEST__INIT;
    lr.box = LIAISON__CONTROL__LIST_REQUEST__BOX__BOTH;
    lr.thread_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, (uint8_t *)rid};
    lr.content_type = 5;
    lr.with_payloads = true;
    lr.keep_unread = true;
    lr.limit = limit;
    lr.oldest = true;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_LIST;
    rq.list = &lr;
    return cli_call(cli, false, &rq, LIAISON__CONTROL__RESPONSE__RESULT_LIST, r);
}

static int first_review_message(cli_t *cli, const uint8_t rid[LIAISON_MSGID_BYTES], Liaison__Control__Response **r,
                                const Liaison__Control__MessageSummary **m)
{
    int rc = review_messages(cli, rid, 1, r);
    if (rc)
        return rc;
    *m = (*r)->list && (*r)->list->n_messages ? (*r)->list->messages[0] : NULL;
    return 0;
}

/* That first message carries the patient every later message must name. */
static int review_patient(cli_t *cli, const uint8_t rid[LIAISON_MSGID_BYTES], char *id, size_t idlen, char *label,
                          size_t labellen)
{
    Liaison__Control__Response *r;
    const Liaison__Control__MessageSummary *m;
    int rc = first_review_message(cli, rid, &r, &m);
    if (rc)
        return rc;
    rc = EXIT_REFUSED;
    if (m && render_patient(m->content_type, m->payload.data, m->payload.len, id, idlen, label, labellen) == 0)
        rc = 0;
    liaison_response_free(r);
    if (rc) {
        char hex[TEXT_MSGID_HEX];
        text_msgid_to_hex(rid, hex);
        return cli_fail(EXIT_REFUSED, "no review %s on this node (see: liaison review list)", hex);
    }
    return 0;
}

/* Sends one review message; the daemon addresses it to the review's participants. */
static int send_review(cli_t *cli, Liaison__Payload__CaseReview *cr, const char *to, bool print_review,
                       unsigned flags)
{
    char id[LIAISON_ID_HEX], rid[TEXT_MSGID_HEX];
    int rc = cli_send(cli, to, 5, &cr->base, NULL, flags, id);
    if (rc)
        return rc;
    text_msgid_to_hex(cr->review_id.data, rid);
    if (print_review)
        cli_done("liaison review list", "review %s was opened (its message stored and sent as %s)", rid, id);
    if (cli->json)
        return cli_json_out(json_pack("{s:s, s:s}", "review_id", rid, "message_id", id));
    printf("%s\n", print_review ? rid : id);
    return 0;
}

static int with_existing(cli_t *cli, const char *rid_text, uint8_t rid[LIAISON_MSGID_BYTES],
                         Liaison__Payload__PatientRef *pr, char *pid, char *label)
{
    int rc = parse_rid(rid_text, rid);
    if (rc || (rc = review_patient(cli, rid, pid, 80, label, 160)))
        return rc;
    pr->id = pid;
    pr->label = label;
    return 0;
}

static int review_open(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "with", .has_arg = true},
                     {.name = "patient", .has_arg = true},
                     {.name = "label", .has_arg = true},
                     {.name = "question", .has_arg = true},
                     {.name = "distinct-patient"},
                     {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc)
        return rc;
    const char *with = cli_opt(o, "with")->value, *patient = cli_opt(o, "patient")->value;
    const char *question = cli_opt(o, "question")->value;
    if (!with || !patient || !question)
        return cli_fail(EXIT_USAGE, "review open needs --with ID[,ID...] --patient P --question TEXT");
    char list[LIAISON_MAX_RECIPIENTS * (LIAISON_MAX_ID + 2)];
    if (strlen(with) >= sizeof list)
        return cli_fail(EXIT_USAGE, "--with: too many participants");
    snprintf(list, sizeof list, "%s", with);
    char *ids[LIAISON_MAX_RECIPIENTS];
    size_t n = 0;
    for (char *save = NULL, *id = strtok_r(list, ", ", &save); id; id = strtok_r(NULL, ", ", &save)) {
        if (n == LIAISON_MAX_RECIPIENTS - 1)
            return cli_fail(EXIT_USAGE, "--with: at most %u participants", LIAISON_MAX_RECIPIENTS - 1);
        ids[n++] = id;
    }
    /* The review id is this node's (PROTOCOL.md 8.5): derived from its id and a fresh salt. */
    Liaison__Control__Request srq = LIAISON__CONTROL__REQUEST__INIT;
    srq.op_case = LIAISON__CONTROL__REQUEST__OP_STATUS;
    srq.status = true;
    Liaison__Control__Response *st = NULL;
    if ((rc = cli_call(cli, false, &srq, LIAISON__CONTROL__RESPONSE__RESULT_STATUS, &st)))
        return rc;
    uint8_t rid[LIAISON_MSGID_BYTES], salt[PAYLOAD_REVIEW_SALT_BYTES];
    randombytes_buf(salt, sizeof salt);
    payload_review_id(st->status->id, salt, rid);
    liaison__control__response__free_unpacked(st, NULL);
    Liaison__Payload__PatientRef pr = LIAISON__PAYLOAD__PATIENT_REF__INIT;
    pr.id = (char *)patient;
    pr.label = (char *)(cli_opt(o, "label")->value ? cli_opt(o, "label")->value : "");
    Liaison__Payload__ReviewOpen op = LIAISON__PAYLOAD__REVIEW_OPEN__INIT;
    op.question = (char *)question;
    op.participants = ids;
    op.n_participants = n;
    op.salt = (ProtobufCBinaryData){sizeof salt, salt};
    Liaison__Payload__CaseReview cr = LIAISON__PAYLOAD__CASE_REVIEW__INIT;
    cr.review_id = (ProtobufCBinaryData){sizeof rid, rid};
    cr.patient = &pr;
    cr.kind_case = LIAISON__PAYLOAD__CASE_REVIEW__KIND_OPEN;
    cr.open = &op;
    return send_review(cli, &cr, with, true,
                       cli_opt(o, "distinct-patient")->count ? LIAISON_SEND_DISTINCT_PATIENT : 0);
}

static int review_reply(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "file", .has_arg = true}, {0}};
    const char *pos[2];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 2, &npos);
    if (rc)
        return rc;
    const char *src = cli_opt(o, "file")->value;
    if (npos == 2 && !src)
        src = pos[1];
    if (!src || npos < 1 || (npos == 2 && cli_opt(o, "file")->value))
        return cli_fail(EXIT_USAGE, "usage: liaison review reply REVIEW_ID (--file F | -)");
    uint8_t rid[LIAISON_MSGID_BYTES];
    char pid[80], label[160];
    Liaison__Payload__PatientRef pr = LIAISON__PAYLOAD__PATIENT_REF__INIT;
    if ((rc = parse_rid(pos[0], rid)))
        return rc;
    char *text = cli_read_text(src, PAYLOAD_MAX_TEXT);
    if (!text)
        return EXIT_USAGE;
    if ((rc = with_existing(cli, pos[0], rid, &pr, pid, label))) {
        free(text);
        return rc;
    }
    Liaison__Payload__ReviewReply rp = LIAISON__PAYLOAD__REVIEW_REPLY__INIT;
    rp.text = text;
    Liaison__Payload__CaseReview cr = LIAISON__PAYLOAD__CASE_REVIEW__INIT;
    cr.review_id = (ProtobufCBinaryData){sizeof rid, rid};
    cr.patient = &pr;
    cr.kind_case = LIAISON__PAYLOAD__CASE_REVIEW__KIND_REPLY;
    cr.reply = &rp;
    rc = send_review(cli, &cr, "", false, 0);
    free(text);
    return rc;
}

/* The review's opener and question as this node holds them: from the opening, or
 * from the add that brought this node in. The strings point into *r and *first,
 * which the caller frees. */
static int review_origin(cli_t *cli, const uint8_t rid[LIAISON_MSGID_BYTES], Liaison__Control__Response **r,
                         Liaison__Payload__CaseReview **first, const char **opener, const char **question,
                         ProtobufCBinaryData *salt)
{
    const Liaison__Control__MessageSummary *m;
    int rc = first_review_message(cli, rid, r, &m);
    if (rc)
        return rc;
    *first = m ? liaison__payload__case_review__unpack(cli_pb(), m->payload.len, m->payload.data) : NULL;
    *opener = *question = "";
    *salt = (ProtobufCBinaryData){0, NULL};
    if (*first && (*first)->kind_case == LIAISON__PAYLOAD__CASE_REVIEW__KIND_OPEN) {
        *opener = m->sender;
        *question = (*first)->open->question;
        *salt = (*first)->open->salt;
    } else if (*first && (*first)->kind_case == LIAISON__PAYLOAD__CASE_REVIEW__KIND_ADD) {
        *opener = (*first)->add->opened_by;
        *question = (*first)->add->question;
        *salt = (*first)->add->review_salt;
    }
    return 0;
}

/* The replies a review add forwards: pointers into the unpacked payloads it keeps. */
typedef struct earlier {
    Liaison__Payload__EarlierReply items[PAYLOAD_MAX_EARLIER];
    Liaison__Payload__EarlierReply *ptrs[PAYLOAD_MAX_EARLIER];
    Liaison__Payload__CaseReview *unpacked[PAYLOAD_MAX_EARLIER];
    size_t n;
    uint32_t left_out;
} earlier_t;

static void earlier_free(earlier_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        liaison__payload__case_review__free_unpacked(e->unpacked[i], NULL);
    e->n = 0;
}

/* From the newest reply back, as many as fit (PAYLOAD_MAX_EARLIER, and
 * PAYLOAD_MAX_EARLIER_TEXT bytes of text), then put back in order, oldest first. */
static int collect_earlier(const Liaison__Control__Response *all, earlier_t *e)
{
    size_t n = all->list ? all->list->n_messages : 0, text = 0;
    bool full = false;
    for (size_t i = n; i-- > 0;) {
        const Liaison__Control__MessageSummary *m = all->list->messages[i];
        Liaison__Payload__CaseReview *cr =
            liaison__payload__case_review__unpack(cli_pb(), m->payload.len, m->payload.data);
        if (!cr || cr->kind_case != LIAISON__PAYLOAD__CASE_REVIEW__KIND_REPLY) {
            liaison__payload__case_review__free_unpacked(cr, NULL);
            continue;
        }
        size_t len = strlen(cr->reply->text);
        if (full || e->n == PAYLOAD_MAX_EARLIER || text + len > PAYLOAD_MAX_EARLIER_TEXT) {
            full = true; /* older ones would leave a gap: the forwarded replies are the newest run */
            e->left_out++;
            liaison__payload__case_review__free_unpacked(cr, NULL);
            continue;
        }
        text += len;
        Liaison__Payload__EarlierReply *it = &e->items[e->n];
        liaison__payload__earlier_reply__init(it);
        it->author = m->sender;
        it->sent_ms = m->created_ms;
        it->text = cr->reply->text;
        e->unpacked[e->n] = cr;
        e->n++;
    }
    for (size_t i = 0; i < e->n; i++)
        e->ptrs[i] = &e->items[e->n - 1 - i];
    return 0;
}

static int review_add(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{0}};
    const char *pos[2];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 2, &npos);
    if (rc)
        return rc;
    if (npos != 2)
        return cli_fail(EXIT_USAGE, "usage: liaison review add REVIEW_ID ID");
    if (!text_valid_id(pos[1]))
        return cli_fail(EXIT_USAGE, "'%.64s' is not a node id", pos[1]);
    uint8_t rid[LIAISON_MSGID_BYTES];
    char pid[80], label[160];
    Liaison__Payload__PatientRef pr = LIAISON__PAYLOAD__PATIENT_REF__INIT;
    if ((rc = with_existing(cli, pos[0], rid, &pr, pid, label)))
        return rc;
    /* The new participant learns who opened the review and what it asks. */
    Liaison__Control__Response *r;
    Liaison__Payload__CaseReview *first;
    const char *opener, *question;
    ProtobufCBinaryData salt;
    if ((rc = review_origin(cli, rid, &r, &first, &opener, &question, &salt)))
        return rc;
    Liaison__Payload__ReviewAdd ad = LIAISON__PAYLOAD__REVIEW_ADD__INIT;
    ad.participant = (char *)pos[1];
    ad.opened_by = (char *)opener;
    ad.question = (char *)question;
    ad.review_salt = salt; /* with opened_by, how the new participant checks the review id */
    /* ...and what was said before it came in: the replies this node holds, newest kept
     * when they do not all fit. */
    earlier_t ea = {0};
    Liaison__Control__Response *all = NULL;
    if (!(rc = review_messages(cli, rid, 0, &all)) && !(rc = collect_earlier(all, &ea))) {
        ad.n_earlier = ea.n;
        ad.earlier = ea.ptrs;
        ad.earlier_left_out = ea.left_out;
        Liaison__Payload__CaseReview cr = LIAISON__PAYLOAD__CASE_REVIEW__INIT;
        cr.review_id = (ProtobufCBinaryData){sizeof rid, rid};
        cr.patient = &pr;
        cr.kind_case = LIAISON__PAYLOAD__CASE_REVIEW__KIND_ADD;
        cr.add = &ad;
        rc = send_review(cli, &cr, "", false, 0);
    }
    earlier_free(&ea);
    if (all)
        liaison_response_free(all);
    liaison__payload__case_review__free_unpacked(first, NULL);
    liaison_response_free(r);
    return rc;
}

static int reviews(cli_t *cli, bool open_only, const uint8_t *rid, Liaison__Control__Response **r);

/* True if s is meant as a date: digits and at least one of - / . and nothing else
 * ("2026-02-30", "12/07/2026"); "by Friday" or "by 5pm" are part of the text. */
static bool looks_like_date(const char *s)
{
    bool digit = false, sep = false;
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9')
            digit = true;
        else if (*s == '-' || *s == '/' || *s == '.')
            sep = true;
        else
            return false;
    }
    return digit && sep;
}

/* "OWNER: TEXT by DATE" (the " by DATE" part is optional). */
static int parse_action(const char *s, Liaison__Payload__ActionItem *a, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%s", s);
    char *colon = strchr(buf, ':');
    if (!colon || colon == buf)
        return cli_fail(EXIT_USAGE, "--action: '%.80s' is not \"OWNER: TEXT by DATE\"", s);
    *colon = 0;
    char *text = colon + 1;
    while (*text == ' ')
        text++;
    a->owner = buf;
    a->text = text;
    a->due_date = "";
    char *by = strstr(text, " by ");
    for (char *next = by; next; next = strstr(next + 1, " by "))
        by = next;
    if (by && payload_valid_date(by + 4)) {
        *by = 0;
        a->due_date = by + 4;
    } else if (by && looks_like_date(by + 4)) {
        char why[96];
        (void)payload_date_problem(by + 4, why, sizeof why); /* false: it is not a date */
        return cli_fail(EXIT_USAGE, "--action: the due date '%.40s' is not a date (%s, e.g. \"%s: ... by"
                                    " 2026-12-07\"); nothing was sent", by + 4, why, buf);
    }
    return 0;
}

/* Every action's owner must take part in the review (this node does: only participants
 * may close it), so that nobody is handed a task in a review they cannot see. */
static int check_owners(cli_t *cli, const char *rid_text, const uint8_t rid[LIAISON_MSGID_BYTES],
                        const Liaison__Payload__ActionItem *items, int n)
{
    Liaison__Control__Response *r;
    int rc = reviews(cli, false, rid, &r);
    if (rc)
        return rc;
    if (r->reviews->n_reviews != 1) {
        liaison_response_free(r);
        return cli_fail(EXIT_REFUSED, "no review %s on this node (see: liaison review list)", rid_text);
    }
    const Liaison__Control__ReviewInfo *v = r->reviews->reviews[0];
    for (int i = 0; i < n && rc == 0; i++) {
        bool found = strcmp(items[i].owner, v->opened_by) == 0;
        for (size_t j = 0; j < v->n_participants && !found; j++)
            found = strcmp(items[i].owner, v->participants[j]) == 0;
        if (found)
            continue;
        char who[LIAISON_MAX_RECIPIENTS * (LIAISON_MAX_ID + 2)] = "";
        size_t off = 0;
        for (size_t j = 0; j < v->n_participants && off < sizeof who; j++)
            off += (size_t)snprintf(who + off, sizeof who - off, "%s%s", j ? ", " : "", v->participants[j]);
        rc = cli_fail(EXIT_USAGE, "--action: the owner '%.64s' does not take part in review %s (participants: %s);"
                                  " add them first with: liaison review add %s %.64s; nothing was sent",
                      items[i].owner, rid_text, who, rid_text, items[i].owner);
    }
    liaison_response_free(r);
    return rc;
}

static int review_close(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "decision", .has_arg = true}, {.name = "action", .has_arg = true, .repeat = true}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1 || !cli_opt(o, "decision")->value)
        return cli_fail(EXIT_USAGE, "usage: liaison review close REVIEW_ID --decision TEXT [--action \"OWNER: TEXT by"
                                    " DATE\"]...");
    cli_opt_t *ac = cli_opt(o, "action");
    Liaison__Payload__ActionItem items[CLI_MAX_VALUES], *ptrs[CLI_MAX_VALUES];
    char bufs[CLI_MAX_VALUES][700];
    for (int i = 0; i < ac->count; i++) {
        liaison__payload__action_item__init(&items[i]);
        if ((rc = parse_action(ac->values[i], &items[i], bufs[i], sizeof bufs[i])))
            return rc;
        ptrs[i] = &items[i];
    }
    uint8_t rid[LIAISON_MSGID_BYTES];
    char pid[80], label[160];
    Liaison__Payload__PatientRef pr = LIAISON__PAYLOAD__PATIENT_REF__INIT;
    if ((rc = with_existing(cli, pos[0], rid, &pr, pid, label)) ||
        (rc = check_owners(cli, pos[0], rid, items, ac->count)))
        return rc;
    Liaison__Payload__ReviewClose cl = LIAISON__PAYLOAD__REVIEW_CLOSE__INIT;
    cl.decision = (char *)cli_opt(o, "decision")->value;
    cl.actions = ptrs;
    cl.n_actions = (size_t)ac->count;
    Liaison__Payload__CaseReview cr = LIAISON__PAYLOAD__CASE_REVIEW__INIT;
    cr.review_id = (ProtobufCBinaryData){sizeof rid, rid};
    cr.patient = &pr;
    cr.kind_case = LIAISON__PAYLOAD__CASE_REVIEW__KIND_CLOSE;
    cr.close = &cl;
    return send_review(cli, &cr, "", false, 0);
}

static int reviews(cli_t *cli, bool open_only, const uint8_t *rid, Liaison__Control__Response **r)
{
    Liaison__Control__ReviewListRequest rl = LIAISON__CONTROL__REVIEW_LIST_REQUEST__INIT;
    rl.open_only = open_only;
    if (rid)
        rl.review_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, (uint8_t *)rid};
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_REVIEWS;
    rq.reviews = &rl;
    return cli_call(cli, false, &rq, LIAISON__CONTROL__RESPONSE__RESULT_REVIEWS, r);
}

static json_t *review_json(const Liaison__Control__ReviewInfo *v)
{
    json_t *who = json_array();
    for (size_t i = 0; i < v->n_participants; i++)
        json_array_append_new(who, json_string(v->participants[i]));
    return json_pack("{s:o, s:s, s:o, s:o, s:b, s:o, s:I}", "id", cli_json_hex(v->review_id.data, v->review_id.len),
                     "opened_by", v->opened_by, "opened", cli_json_time(v->opened_ms), "participants", who, "closed",
                     v->closed, "closed_at", cli_json_time(v->closed_ms), "messages", (json_int_t)v->messages);
}

/* When a review was opened, as far as this node knows. */
typedef struct opening {
    uint64_t opened_ms;                 /* 0: not known on this node */
    char added_by[LIAISON_MAX_ID + 1];  /* learnt from an add: who sent it ("" if not) */
    uint64_t added_ms;                  /* and when (the add's creation time) */
} opening_t;

/* The opening of review v from its messages on this node, m[0..n) oldest first (all
 * of them, or the first): the open's creation time if this node holds the open. A
 * node that learnt of the review from an add holds no open, and an add does not carry
 * the time of the open (PROTOCOL.md 8.5): the daemon then records the add's time as
 * the opening (ReviewInfo.opened_ms), which is when this node was added, and would be
 * a false opening time if shown as one. If neither is held (or opened: a key problem),
 * the daemon's record stands. */
static void review_opening(const Liaison__Control__ReviewInfo *v, Liaison__Control__MessageSummary *const *m,
                           size_t n, opening_t *o)
{
    memset(o, 0, sizeof *o);
    o->opened_ms = v->opened_ms;
    for (size_t i = 0; i < n; i++) {
        if (m[i]->unopenable || m[i]->content_type != 5)
            continue;
        Liaison__Payload__CaseReview *cr =
            liaison__payload__case_review__unpack(cli_pb(), m[i]->payload.len, m[i]->payload.data);
        Liaison__Payload__CaseReview__KindCase kind = cr ? cr->kind_case : LIAISON__PAYLOAD__CASE_REVIEW__KIND__NOT_SET;
        liaison__payload__case_review__free_unpacked(cr, NULL);
        if (kind == LIAISON__PAYLOAD__CASE_REVIEW__KIND_OPEN) {
            o->opened_ms = m[i]->created_ms;
            o->added_by[0] = '\0';
            o->added_ms = 0;
            return;
        }
        if (kind == LIAISON__PAYLOAD__CASE_REVIEW__KIND_ADD && !o->added_by[0]) {
            /* The first: the one that brought this node in. */
            snprintf(o->added_by, sizeof o->added_by, "%s", m[i]->sender);
            o->added_ms = m[i]->created_ms;
            o->opened_ms = 0;
        }
    }
}

/* The opening in a review's JSON: "opened" is null when not known here, and a review
 * learnt from an add says when and by whom this node was added. */
static void opening_json(json_t *j, const opening_t *o)
{
    json_object_set_new(j, "opened", cli_json_time(o->opened_ms));
    if (o->added_by[0]) {
        json_object_set_new(j, "added_by", json_string(o->added_by));
        json_object_set_new(j, "added", cli_json_time(o->added_ms));
    }
}

/* The patient of a listed review, and its opening as this node knows it, from its
 * first message on this node, decrypted and audited as a read ("listed; left unread")
 * but left unread. Returns 0, or the exit code after printing why (the daemon
 * unreachable); a review whose first message cannot be opened leaves id and label
 * empty. */
static int listed_patient(cli_t *cli, const Liaison__Control__ReviewInfo *v, char *id, size_t idlen, char *label,
                          size_t labellen, opening_t *o)
{
    id[0] = label[0] = '\0';
    review_opening(v, NULL, 0, o);
    if (v->review_id.len != LIAISON_MSGID_BYTES)
        return 0;
    Liaison__Control__Response *r;
    const Liaison__Control__MessageSummary *m;
    int rc = first_review_message(cli, v->review_id.data, &r, &m);
    if (rc)
        return rc;
    if (!m || render_patient(m->content_type, m->payload.data, m->payload.len, id, idlen, label, labellen) != 0)
        id[0] = label[0] = '\0';
    if (m)
        review_opening(v, r->list->messages, 1, o);
    liaison_response_free(r);
    return 0;
}

/* One row of review list: the parts whose width varies, formatted. */
typedef struct review_row {
    char when[48], patient[240], by[LIAISON_MAX_ID + 32];
} review_row_t;

static void review_row(review_row_t *row, const char *pid, const char *label, const opening_t *o)
{
    char t[32];
    /* Learnt from an add: the time is the add's, and says so. */
    cli_time(o->added_by[0] ? o->added_ms : o->opened_ms, t, sizeof t);
    snprintf(row->when, sizeof row->when, "%s%s", o->added_by[0] ? "added " : "", t);
    snprintf(row->by, sizeof row->by, "%s", o->added_by[0] ? " (when: not known here)" : "");
    snprintf(row->patient, sizeof row->patient, "%s%s%s%s", pid[0] ? pid : "?", label[0] ? " (" : "", label,
             label[0] ? ")" : "");
}

/* The columns are as wide as their widest value in the listing, counted in the columns
 * a terminal gives them (a label in Japanese or Greek, a name with combining marks),
 * so that every row's "opened by" and participants line up. */
static void review_line(const Liaison__Control__ReviewInfo *v, const review_row_t *row, const size_t width[3])
{
    char id[TEXT_MSGID_HEX] = "?", by[LIAISON_MAX_ID + 32];
    if (v->review_id.len == LIAISON_MSGID_BYTES)
        text_msgid_to_hex(v->review_id.data, id);
    snprintf(by, sizeof by, "%s%s", v->opened_by, row->by);
    printf("%s  ", id);
    cli_pad(row->when, width[0]);
    printf("  %-7s patient ", v->closed ? "closed" : "open");
    cli_pad(row->patient, width[1]);
    printf(" opened by ");
    cli_pad(by, width[2]);
    printf(" %3u msg%s  with", v->messages, v->messages == 1 ? " " : "s");
    for (size_t i = 0; i < v->n_participants; i++)
        printf(" %s", v->participants[i]);
    printf("\n");
}

/* Reviews closed longer ago than this are left out of `review list` unless --all asks:
 * naming each review's patient decrypts its first message, an audited read, and a year's
 * closed reviews would add an entry each at every listing (RELIABILITY.md item 37). */
#define REVIEW_LIST_CLOSED_DAYS 30

static int review_list(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "open"}, {.name = "all"}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc)
        return rc;
    bool open_only = cli_opt(o, "open")->count > 0, all = cli_opt(o, "all")->count > 0;
    if (open_only && all)
        return cli_fail(EXIT_USAGE, "review list: --open and --all ask for different lists: give one");
    Liaison__Control__Response *r;
    if ((rc = reviews(cli, open_only, NULL, &r)))
        return rc;
    const Liaison__Control__ReviewList *l = r->reviews;
    json_t *a = cli->json ? json_array() : NULL;
    review_row_t *rows = cli->json ? NULL : calloc(l->n_reviews + 1, sizeof *rows);
    size_t *idx = calloc(l->n_reviews + 1, sizeof *idx);
    size_t width[3] = {14, 14, 16};
    if ((!cli->json && !rows) || !idx) {
        free(rows);
        free(idx);
        json_decref(a);
        liaison_response_free(r);
        return cli_fail(EXIT_REFUSED, "out of memory");
    }
    uint64_t cutoff = liaison_now_ms() - (uint64_t)REVIEW_LIST_CLOSED_DAYS * 86400000u;
    size_t n_list = 0, left_out = 0;
    for (size_t i = 0; i < l->n_reviews; i++) {
        if (!all && l->reviews[i]->closed && l->reviews[i]->closed_ms < cutoff)
            left_out++;
        else
            idx[n_list++] = i;
    }
    if (!cli->json && n_list == 0 && left_out)
        printf("No reviews open or closed in the last %d days.\n", REVIEW_LIST_CLOSED_DAYS);
    else if (!cli->json && n_list == 0)
        printf("No %sreviews. Open one with: liaison review open --with ID --patient P --question TEXT\n",
               open_only ? "open " : "");
    size_t n_rows = 0;
    for (size_t k = 0; k < n_list && rc == 0; k++) {
        const Liaison__Control__ReviewInfo *ri = l->reviews[idx[k]];
        char pid[80], label[160];
        opening_t op;
        if ((rc = listed_patient(cli, ri, pid, sizeof pid, label, sizeof label, &op)))
            break;
        if (!cli->json) {
            review_row(&rows[k], pid, label, &op);
            n_rows++;
            size_t w[3] = {text_display_width(rows[k].when), text_display_width(rows[k].patient),
                           strlen(ri->opened_by) + text_display_width(rows[k].by)};
            for (int c = 0; c < 3; c++)
                width[c] = w[c] > width[c] ? w[c] : width[c];
            continue;
        }
        json_t *j = review_json(ri);
        opening_json(j, &op);
        json_object_set_new(j, "patient", pid[0] ? json_pack("{s:s, s:o}", "id", pid, "label",
                                                             label[0] ? json_string(label) : json_null())
                                                 : json_null());
        json_array_append_new(a, j);
    }
    for (size_t k = 0; k < n_rows; k++) /* those listed before a failure too, as they were */
        review_line(l->reviews[idx[k]], &rows[k], width);
    if (!cli->json && rc == 0 && left_out)
        printf("(%zu review%s closed more than %d days ago not listed: each listed review's first message is"
               " decrypted, an audited read; all of them: liaison review list --all)\n",
               left_out, left_out == 1 ? "" : "s", REVIEW_LIST_CLOSED_DAYS);
    if (a && rc == 0)
        cli_json_out(json_pack("{s:o, s:I}", "reviews", a, "closed_not_listed", (json_int_t)left_out));
    else
        json_decref(a);
    free(rows);
    free(idx);
    liaison_response_free(r);
    return rc;
}

static int review_show(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc)
        return rc;
    uint8_t rid[LIAISON_MSGID_BYTES];
    if ((rc = parse_rid(npos ? pos[0] : NULL, rid)))
        return rc;
    Liaison__Control__Response *r, *t;
    if ((rc = reviews(cli, false, rid, &r)))
        return rc;
    if (r->reviews->n_reviews != 1) {
        liaison_response_free(r);
        return cli_fail(EXIT_REFUSED, "no review %s on this node (see: liaison review list)", pos[0]);
    }
    const Liaison__Control__ReviewInfo *v = r->reviews->reviews[0];
    Liaison__Control__ListRequest lr = LIAISON__CONTROL__LIST_REQUEST__INIT;
    lr.box = LIAISON__CONTROL__LIST_REQUEST__BOX__BOTH;
    lr.thread_id = (ProtobufCBinaryData){sizeof rid, rid};
    lr.content_type = 5; /* the review's own messages only (not what copied its id as a thread) */
    lr.with_payloads = true;
    lr.limit = 10000;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_LIST;
    rq.list = &lr;
    if ((rc = cli_call(cli, false, &rq, LIAISON__CONTROL__RESPONSE__RESULT_LIST, &t))) {
        liaison_response_free(r);
        return rc;
    }
    size_t n = t->list ? t->list->n_messages : 0;
    /* Reading them marks the received ones read (and audits each read): if the output
     * is then lost, say so (exit 6), as show and thread do. */
    size_t opened = 0;
    for (size_t i = 0; i < n; i++)
        opened += strcmp(t->list->messages[i]->direction, "in") == 0 && !t->list->messages[i]->unopenable;
    if (opened)
        cli_done("liaison inbox --unread", "the %zu message%s received in review %s %s marked read on this node (each"
                 " read is audited)", opened, opened == 1 ? "" : "s", pos[0], opened == 1 ? "is" : "are");
    char pid[80] = "", label[160] = "";
    for (size_t i = 0; i < n && !pid[0]; i++) {
        const Liaison__Control__MessageSummary *m = t->list->messages[i];
        render_patient(m->content_type, m->payload.data, m->payload.len, pid, sizeof pid, label, sizeof label);
    }
    opening_t op;
    review_opening(v, n ? t->list->messages : NULL, n, &op);
    if (cli->json) {
        json_t *j = review_json(v), *msgs = json_array();
        opening_json(j, &op);
        for (size_t i = 0; i < n; i++) {
            const Liaison__Control__MessageSummary *m = t->list->messages[i];
            json_array_append_new(msgs, render_message_json(m, m->payload.data, m->payload.len));
        }
        json_object_set_new(j, "patient", pid[0] ? json_pack("{s:s, s:o}", "id", pid, "label",
                                                             label[0] ? json_string(label) : json_null())
                                                 : json_null());
        json_object_set_new(j, "messages", msgs);
        json_object_set_new(j, "truncated", json_boolean(t->list && t->list->truncated));
        cli_json_out(j);
    } else {
        char ts[32];
        printf("Case review %s about patient %s%s%s%s\n", pos[0], pid[0] ? pid : "?", label[0] ? " (" : "", label,
               label[0] ? ")" : "");
        if (op.added_by[0]) {
            cli_time(op.added_ms, ts, sizeof ts);
            printf("Opened by %s, when: not known here (the add that brought this node in does not say)\n",
                   v->opened_by);
            printf("This node was added to it by %s on %s; %s\n", op.added_by, ts, v->closed ? "CLOSED" : "open");
        } else {
            cli_time(op.opened_ms, ts, sizeof ts);
            printf("Opened by %s on %s; %s\n", v->opened_by, ts, v->closed ? "CLOSED" : "open");
        }
        printf("Participants:");
        for (size_t i = 0; i < v->n_participants; i++)
            printf(" %s", v->participants[i]);
        printf("\n");
        for (size_t i = 0; i < n; i++) {
            const Liaison__Control__MessageSummary *m = t->list->messages[i];
            cli_time(m->created_ms, ts, sizeof ts);
            printf("\n%s  %s\n", ts, m->sender);
            if (m->unopenable)
                printf("  (cannot be opened: the sender's card was removed or replaced)\n");
            else
                render_payload_text(m->content_type, m->payload.data, m->payload.len, "  ");
        }
        render_truncated(t->list && t->list->truncated, n,
                         "These are the oldest; read the later ones one by one (liaison inbox --since, then liaison show).");
    }
    liaison_response_free(t);
    liaison_response_free(r);
    return 0;
}

int cmd_review(cli_t *cli, int argc, char **argv)
{
    static const struct {
        const char *name, *full;
        int (*run)(cli_t *, int, char **);
    } subs[] = {{"open", "review open", review_open},    {"reply", "review reply", review_reply},
                {"add", "review add", review_add},       {"close", "review close", review_close},
                {"show", "review show", review_show},    {"list", "review list", review_list}};
    if (argc < 1)
        return cli_fail(EXIT_USAGE, "review needs a subcommand: open, reply, add, close, show or list");
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[0], subs[i].name) == 0) {
            cli->cmd = subs[i].full;
            return subs[i].run(cli, argc - 1, argv + 1);
        }
    return cli_fail(EXIT_USAGE, "unknown review subcommand '%.32s' (open, reply, add, close, show, list)", argv[0]);
}
