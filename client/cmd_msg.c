/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the messaging commands: send, note, med-change, ack, inbox, outbox, show,
 * thread and the patient timeline. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "payload.h"
#include "payload.pb-c.h"
#include "render.h"
#include "text.h"

/* Sends and prints the new message's id. */
static int send_payload(cli_t *cli, const char *to, uint32_t ct, const ProtobufCMessage *msg, const uint8_t *thread,
                        unsigned flags)
{
    char id[LIAISON_ID_HEX];
    int rc = cli_send(cli, to, ct, msg, thread, flags, id);
    if (rc)
        return rc;
    if (cli->json)
        return cli_json_out(json_pack("{s:s}", "id", id));
    printf("%s\n", id);
    return 0;
}

static int need(const char *cmd, cli_opt_t *o, const char *name, const char *hint)
{
    if (cli_opt(o, name)->value)
        return 0;
    return cli_fail(EXIT_USAGE, "%s needs --%s %s", cmd, name, hint);
}

/* The body of a message: from --file F, or the single positional "-" (stdin) or file. */
static char *read_body(cli_t *cli, cli_opt_t *o, const char **pos, size_t npos, const char *what)
{
    const char *src = cli_opt(o, "file")->value;
    if (src && npos) {
        cli_fail(EXIT_USAGE, "%s: give the %s either with --file F or as '-' (standard input), not both", cli->cmd,
                 what);
        return NULL;
    }
    if (!src && npos)
        src = pos[0];
    if (!src) {
        cli_fail(EXIT_USAGE, "%s: the %s is required: give FILE, or - to read standard input (or --file F)", cli->cmd, what);
        return NULL;
    }
    char *text = cli_read_text(src, PAYLOAD_MAX_TEXT);
    if (text && !text[0]) { /* the payload check would say "text: required", naming no file */
        cli_fail(EXIT_USAGE, "%s: the %s in %s is empty (nothing was sent)", cli->cmd, what,
                 strcmp(src, "-") == 0 ? "standard input" : src);
        free(text);
        return NULL;
    }
    return text;
}

int cmd_send(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "to", .has_arg = true}, {.name = "subject", .has_arg = true},
                     {.name = "thread", .has_arg = true}, {.name = "file", .has_arg = true}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc || (rc = need("send", o, "to", "ID[,ID...]")))
        return rc;
    uint8_t thread[LIAISON_MSGID_BYTES];
    const char *th = cli_opt(o, "thread")->value;
    if (th && text_msgid_from_hex(th, thread) != 0)
        return cli_fail(EXIT_USAGE, "--thread: '%.40s' is not a thread id (32 hex characters)", th);
    char *text = read_body(cli, o, pos, npos, "text");
    if (!text)
        return EXIT_USAGE;
    Liaison__Payload__TextMessage tm = LIAISON__PAYLOAD__TEXT_MESSAGE__INIT;
    tm.subject = (char *)(cli_opt(o, "subject")->value ? cli_opt(o, "subject")->value : "");
    tm.text = text;
    rc = send_payload(cli, cli_opt(o, "to")->value, 1, &tm.base, th ? thread : NULL, 0);
    free(text);
    return rc;
}

static int parse_score(const char *name, const char *s, uint32_t max, Liaison__Payload__Score *out)
{
    uint64_t v;
    if (cli_parse_uint(s, UINT32_MAX, &v) != 0)
        return cli_fail(EXIT_USAGE, "%s: '%.20s' is not a number (0-%u)", name, s, max);
    if (v > max)
        return cli_fail(EXIT_USAGE, "%s: %" PRIu64 " is out of range (0-%u) (nothing was sent)", name, v, max);
    out->value = (uint32_t)v;
    return 0;
}

/* NAME=VALUE/MIN-MAX, e.g. PCL-5=41/0-80 */
static int parse_named(const char *s, Liaison__Payload__NamedScore *out, char *name, size_t namelen)
{
    const char *eq = strrchr(s, '=');
    const char *slash = eq ? strchr(eq, '/') : NULL;
    const char *dash = slash ? strchr(slash, '-') : NULL;
    uint64_t v, lo, hi;
    char buf[32];
    if (!eq || !slash || !dash || eq == s || (size_t)(eq - s) >= namelen)
        return cli_fail(EXIT_USAGE, "--score: '%.64s' is not NAME=VALUE/MIN-MAX (e.g. PCL-5=41/0-80)", s);
    snprintf(name, namelen, "%.*s", (int)(eq - s), s);
    snprintf(buf, sizeof buf, "%.*s", (int)(slash - eq - 1), eq + 1);
    bool ok = cli_parse_uint(buf, 1000000, &v) == 0;
    snprintf(buf, sizeof buf, "%.*s", (int)(dash - slash - 1), slash + 1);
    ok = ok && cli_parse_uint(buf, 1000000, &lo) == 0 && cli_parse_uint(dash + 1, 1000000, &hi) == 0;
    if (!ok)
        return cli_fail(EXIT_USAGE, "--score: '%.64s' is not NAME=VALUE/MIN-MAX (e.g. PCL-5=41/0-80)", s);
    out->name = name;
    out->value = (uint32_t)v;
    out->min = (uint32_t)lo;
    out->max = (uint32_t)hi;
    return 0;
}

static bool has_non_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

static int parse_enum(const char *opt, const char *kind, const char *s, int *out)
{
    int v = payload_enum_value(kind, s);
    if (v < 0)
        return cli_fail(EXIT_USAGE, "--%s: '%.32s' is not one of: %s (nothing was sent)", opt, s,
                        payload_enum_names(kind));
    *out = v;
    return 0;
}

static const char *optval(cli_opt_t *o, const char *name)
{
    const char *v = cli_opt(o, name)->value;
    return v ? v : "";
}

/* --distinct-patient: the id differs only in letter case from one on the node and is
 * another patient (liaison_send_flags). */
static unsigned distinct_flag(cli_opt_t *o)
{
    return cli_opt(o, "distinct-patient")->count ? LIAISON_SEND_DISTINCT_PATIENT : 0;
}

int cmd_note(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "to", .has_arg = true},           {.name = "patient", .has_arg = true},
                     {.name = "label", .has_arg = true},        {.name = "session-date", .has_arg = true},
                     {.name = "modality", .has_arg = true},     {.name = "phq9", .has_arg = true},
                     {.name = "gad7", .has_arg = true},         {.name = "score", .has_arg = true, .repeat = true},
                     {.name = "risk", .has_arg = true},         {.name = "risk-note", .has_arg = true},
                     {.name = "adherence", .has_arg = true},    {.name = "side-effects", .has_arg = true},
                     {.name = "goals", .has_arg = true},        {.name = "next-session", .has_arg = true},
                     {.name = "file", .has_arg = true},         {.name = "distinct-patient"},
                     {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc || (rc = need("note", o, "to", "ID[,ID...]")) || (rc = need("note", o, "patient", "P (the patient's id)")))
        return rc;
    Liaison__Payload__PatientRef pr = LIAISON__PAYLOAD__PATIENT_REF__INIT;
    Liaison__Payload__ProgressNote n = LIAISON__PAYLOAD__PROGRESS_NOTE__INIT;
    Liaison__Payload__Score phq9 = LIAISON__PAYLOAD__SCORE__INIT, gad7 = LIAISON__PAYLOAD__SCORE__INIT;
    Liaison__Payload__RiskAssessment risk = LIAISON__PAYLOAD__RISK_ASSESSMENT__INIT;
    Liaison__Payload__NamedScore named[CLI_MAX_VALUES];
    Liaison__Payload__NamedScore *named_p[CLI_MAX_VALUES];
    char names[CLI_MAX_VALUES][80] = {{0}};
    char today[11];
    cli_today(today);
    pr.id = (char *)optval(o, "patient");
    pr.label = (char *)optval(o, "label");
    n.patient = &pr;
    n.session_date = (char *)(cli_opt(o, "session-date")->value ? cli_opt(o, "session-date")->value : today);
    /* A note reports a session that took place: a date after today is a typo (2062 for
     * 2026) that would sit at the end of the patient's score trend. Dates compare as
     * text; one that is not a real YYYY-MM-DD date (2026-13-01) is refused as such by
     * the payload check below, not as "after today". */
    /* Today is the local date: on a server whose zone is not the clinician's (UTC, at
     * 03:00 in Kolkata), this morning's session is "after today" there: name the zone. */
    if (payload_valid_date(n.session_date) && strcmp(n.session_date, today) > 0)
        return cli_fail(EXIT_USAGE,
                        "--session-date: %s is after today (%s, the date in %s here; set TZ to your zone if it"
                        " differs): a note reports a session that took place (the next one goes in"
                        " --next-session); nothing was sent",
                        n.session_date, today, cli_zone_name());
    if (cli_opt(o, "phq9")->value) {
        if ((rc = parse_score("phq9", cli_opt(o, "phq9")->value, 27, &phq9)))
            return rc;
        n.phq9 = &phq9;
    }
    if (cli_opt(o, "gad7")->value) {
        if ((rc = parse_score("gad7", cli_opt(o, "gad7")->value, 21, &gad7)))
            return rc;
        n.gad7 = &gad7;
    }
    cli_opt_t *sc = cli_opt(o, "score");
    for (int i = 0; i < sc->count; i++) {
        liaison__payload__named_score__init(&named[i]);
        if ((rc = parse_named(sc->values[i], &named[i], names[i], sizeof names[i])))
            return rc;
        named_p[i] = &named[i];
    }
    n.other_scores = named_p;
    n.n_other_scores = (size_t)sc->count;
    /* The payload rule folds only ASCII letters (PROTOCOL.md 8.2): "SCHLAFQUALITÄT" and
     * "Schlafqualität" would go as two scores of one note. Caught here, where it is typed. */
    for (int i = 0; i < sc->count; i++) {
        char ki[256], kj[256];
        text_fold_key(names[i], ki, sizeof ki);
        for (int j = 0; j < i; j++) {
            text_fold_key(names[j], kj, sizeof kj);
            bool ascii = !has_non_ascii(names[i]) && !has_non_ascii(names[j]); /* the payload check says it */
            if (!ascii && strcmp(ki, kj) == 0)
                return cli_fail(EXIT_USAGE, "--score: '%s' is the same name as score %d, '%s' (names must differ,"
                                " ignoring case, spaces and punctuation); nothing was sent", names[i], j + 1,
                                names[j]);
        }
    }
    int v = 0;
    if (cli_opt(o, "modality")->value) {
        if ((rc = parse_enum("modality", "modality", cli_opt(o, "modality")->value, &v)))
            return rc;
        n.modality = (Liaison__Payload__Modality)v;
    }
    if (cli_opt(o, "risk")->value) {
        if ((rc = parse_enum("risk", "risk", cli_opt(o, "risk")->value, &v)))
            return rc;
        risk.level = (Liaison__Payload__RiskLevel)v;
        risk.text = (char *)optval(o, "risk-note");
        n.risk = &risk;
    } else if (cli_opt(o, "risk-note")->value) {
        return cli_fail(EXIT_USAGE, "--risk-note needs --risk LEVEL (one of: %s)", payload_enum_names("risk"));
    }
    n.adherence = (char *)optval(o, "adherence");
    n.side_effects = (char *)optval(o, "side-effects");
    n.goals = (char *)optval(o, "goals");
    n.next_session_date = (char *)optval(o, "next-session");
    /* The next session comes after this one: an earlier date is a typo (the month or
     * the year) that the team would plan around. Invalid dates are left to the payload
     * check, which names them as such. */
    if (payload_valid_date(n.session_date) && payload_valid_date(n.next_session_date) &&
        strcmp(n.next_session_date, n.session_date) < 0)
        return cli_fail(EXIT_USAGE,
                        "--next-session: %s is before the session it follows (%s%s); nothing was sent",
                        n.next_session_date, cli_opt(o, "session-date")->value ? "--session-date " : "today, ",
                        n.session_date);
    /* Nor is a next session more than a year away a plan: 2062 for 2026. */
    if (payload_valid_date(n.session_date) && payload_valid_date(n.next_session_date)) {
        char ahead[16];
        snprintf(ahead, sizeof ahead, "%04d%s", atoi(n.session_date) + 1, n.session_date + 4);
        if (strcmp(n.next_session_date, ahead) > 0)
            return cli_fail(EXIT_USAGE,
                            "--next-session: %s is more than a year after the session it follows (%s%s): a typo?"
                            " (nothing was sent)",
                            n.next_session_date, cli_opt(o, "session-date")->value ? "--session-date " : "today, ",
                            n.session_date);
    }
    char *text = read_body(cli, o, pos, npos, "narrative");
    if (!text)
        return EXIT_USAGE;
    n.narrative = text;
    rc = send_payload(cli, cli_opt(o, "to")->value, 2, &n.base, NULL, distinct_flag(o));
    free(text);
    return rc;
}

int cmd_med_change(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "to", .has_arg = true},       {.name = "patient", .has_arg = true},
                     {.name = "label", .has_arg = true},    {.name = "drug", .has_arg = true},
                     {.name = "action", .has_arg = true},   {.name = "from", .has_arg = true},
                     {.name = "dose", .has_arg = true},     {.name = "from-frequency", .has_arg = true},
                     {.name = "frequency", .has_arg = true}, {.name = "from-drug", .has_arg = true},
                     {.name = "reason", .has_arg = true},   {.name = "monitor", .has_arg = true},
                     {.name = "urgent"},                    {.name = "effective", .has_arg = true},
                     {.name = "no-ack"},                    {.name = "distinct-patient"},
                     {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc || (rc = need("med-change", o, "to", "ID[,ID...]")) ||
        (rc = need("med-change", o, "patient", "P (the patient's id)")) ||
        (rc = need("med-change", o, "drug", "NAME")) ||
        (rc = need("med-change", o, "action", "ACTION (start, stop, increase, decrease, switch, hold)")) ||
        (rc = need("med-change", o, "reason", "TEXT")))
        return rc;
    /* Urgency is the deadline for acknowledging the change (overdue alerts, the hook):
     * with no acknowledgement asked, it would promise a follow-up that never comes. */
    if (cli_opt(o, "urgent")->count && cli_opt(o, "no-ack")->count)
        return cli_fail(EXIT_USAGE, "med-change: --urgent shortens the deadline for acknowledging the change, and"
                                    " --no-ack asks for no acknowledgement: drop --no-ack (an urgent change is to be"
                                    " acknowledged) or --urgent; nothing was sent");
    Liaison__Payload__PatientRef pr = LIAISON__PAYLOAD__PATIENT_REF__INIT;
    Liaison__Payload__MedicationChange m = LIAISON__PAYLOAD__MEDICATION_CHANGE__INIT;
    char today[11];
    cli_today(today);
    pr.id = (char *)optval(o, "patient");
    pr.label = (char *)optval(o, "label");
    m.patient = &pr;
    m.medication = (char *)optval(o, "drug");
    int v = 0;
    if ((rc = parse_enum("action", "action", cli_opt(o, "action")->value, &v)))
        return rc;
    m.action = (Liaison__Payload__MedicationAction)v;
    m.previous_dose = (char *)optval(o, "from");
    m.new_dose = (char *)optval(o, "dose");
    m.previous_frequency = (char *)optval(o, "from-frequency");
    m.new_frequency = (char *)optval(o, "frequency");
    m.previous_medication = (char *)optval(o, "from-drug");
    m.effective_date = (char *)(cli_opt(o, "effective")->value ? cli_opt(o, "effective")->value : today);
    /* A change takes effect about now: planned a few weeks ahead, or reported some days
     * late. A date more than a year away is a typo (2062 for 2026, 2025 for 2026) that
     * the pharmacist would act on. Dates compare as text; one that is not a real date is
     * left to the payload check, which names it as such. */
    if (payload_valid_date(m.effective_date)) {
        char ahead[16], behind[16];
        int year = atoi(today);
        snprintf(ahead, sizeof ahead, "%04d%s", year + 1, today + 4);
        snprintf(behind, sizeof behind, "%04d%s", year - 1, today + 4);
        if (strcmp(m.effective_date, ahead) > 0 || strcmp(m.effective_date, behind) < 0)
            return cli_fail(EXIT_USAGE, "--effective: %s is more than a year from today (%s): a typo? (nothing was"
                            " sent)", m.effective_date, today);
    }
    m.reason = (char *)optval(o, "reason");
    m.monitor = (char *)optval(o, "monitor");
    m.urgency = cli_opt(o, "urgent")->count ? LIAISON__PAYLOAD__URGENCY__URGENCY_URGENT
                                            : LIAISON__PAYLOAD__URGENCY__URGENCY_ROUTINE;
    m.ack_optional = cli_opt(o, "no-ack")->count > 0;
    return send_payload(cli, cli_opt(o, "to")->value, 3, &m.base, NULL, distinct_flag(o));
}

int cmd_ack(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "comment", .has_arg = true}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1)
        return cli_fail(EXIT_USAGE, "ack needs the message id: liaison ack MSG_ID (see: liaison inbox --needs-ack)");
    const char *comment = optval(o, "comment");
    if (!text_valid_utf8(comment, PAYLOAD_MAX_COMMENT, true))
        return cli_fail(EXIT_USAGE, "--comment: must be UTF-8 text of at most %u bytes", PAYLOAD_MAX_COMMENT);
    int code = 0;
    liaison_client_t *c = cli_control(cli, &code);
    if (!c)
        return code;
    char id[LIAISON_ID_HEX], check[64];
    cli_catch_interrupt();
    liaison_rc lrc = liaison_ack(c, pos[0], comment, id);
    snprintf(check, sizeof check, "liaison show %.32s", pos[0]);
    if (lrc == LIAISON_INTERRUPTED)
        return cli_fail_interrupted("the acknowledgement", check);
    if (lrc != LIAISON_OK)
        return cli_fail(cli_exit_code(lrc), "%s", liaison_client_error(c));
    cli_done(check, "the acknowledgement of %.32s was stored and sent as %s", pos[0], id);
    if (cli->json)
        return cli_json_out(json_pack("{s:s, s:s}", "id", id, "acknowledges", pos[0]));
    printf("%s\n", id);
    return 0;
}

/* ---- listing ---- */

static int list(cli_t *cli, Liaison__Control__ListRequest *lr, Liaison__Control__Response **r)
{
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_LIST;
    rq.list = lr;
    return cli_call(cli, false, &rq, LIAISON__CONTROL__RESPONSE__RESULT_LIST, r);
}

static json_t *summaries_json(Liaison__Control__MessageSummary **ms, size_t n, bool with_payload)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, with_payload ? render_message_json(ms[i], ms[i]->payload.data, ms[i]->payload.len)
                                              : render_summary_json(ms[i]));
    return a;
}

/* Overdue acknowledgements of our own medication changes (from status). */
static int overdue(cli_t *cli, Liaison__Control__Response **r)
{
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_STATUS;
    rq.status = true;
    return cli_call(cli, false, &rq, LIAISON__CONTROL__RESPONSE__RESULT_STATUS, r);
}

/* Listings without --limit show this many (the daemon's default, asked for explicitly). */
#define BOX_DEFAULT_LIMIT 100u
#define BOX_MAX_LIMIT 10000u /* liaisond answers at most 10,001 (one more, to see whether more match) */
/* How far past a listing's limit the messages left out are counted. */
#define BOX_COUNT_MAX 10000u

/* How many messages matching lr are left out of the `shown` listed, for a daemon older
 * than ListResult.matched: counted by listing them again (metadata only) up to
 * BOX_COUNT_MAX more; *exact is false when there are more than that (and the count can
 * be off by what arrived between the two listings). Returns 0, or prints why and
 * returns the exit code. */
static int count_left_out(cli_t *cli, Liaison__Control__ListRequest lr, size_t shown, uint64_t *left, bool *exact)
{
    lr.limit = (uint32_t)(shown + BOX_COUNT_MAX + 1);
    Liaison__Control__Response *r = NULL;
    int rc = list(cli, &lr, &r);
    if (rc)
        return rc;
    size_t n = r->list->n_messages;
    *exact = n <= shown + BOX_COUNT_MAX;
    *left = n > shown ? (uint64_t)(n - shown) - (*exact ? 0u : 1u) : 1u; /* (1: removed in between) */
    liaison_response_free(r);
    return 0;
}

/* Which of st's overdue medication changes are about patient p. A status names no
 * patient (that would decrypt each change, an audited read, at every inbox), so they
 * are matched by id against our changes about p still waiting for an acknowledgement,
 * from the oldest overdue one on: the daemon matches the patient by its keyed tag, as
 * for the inbox itself, and returns metadata only (nothing read, nothing audited).
 * Fills keep (room for st->n_overdue) and *n_keep; *matched is false if that listing
 * was cut at its limit, and then keep holds them all (the block is about all patients,
 * and says so). Returns 0, or prints why and returns the exit code. */
static int overdue_about(cli_t *cli, const char *p, const Liaison__Control__StatusResult *st,
                         Liaison__Control__MessageSummary **keep, size_t *n_keep, bool *matched)
{
    Liaison__Control__ListRequest lr = LIAISON__CONTROL__LIST_REQUEST__INIT;
    lr.box = LIAISON__CONTROL__LIST_REQUEST__BOX__OUTBOX;
    lr.patient = (char *)p;
    lr.content_type = 3;
    lr.needs_ack = true; /* an overdue change still waits: fewer to list */
    lr.oldest = true;
    lr.limit = BOX_MAX_LIMIT + 1u;
    lr.since_ms = UINT64_MAX;
    for (size_t i = 0; i < st->n_overdue; i++)
        if (st->overdue[i]->created_ms < lr.since_ms)
            lr.since_ms = st->overdue[i]->created_ms;
    Liaison__Control__Response *r = NULL;
    int rc = list(cli, &lr, &r);
    if (rc)
        return rc;
    const Liaison__Control__ListResult *l = r->list;
    *matched = l->n_messages < lr.limit;
    *n_keep = 0;
    for (size_t i = 0; i < st->n_overdue; i++) {
        const ProtobufCBinaryData *id = &st->overdue[i]->message_id;
        bool about = !*matched;
        for (size_t k = 0; k < l->n_messages && !about; k++)
            about = l->messages[k]->message_id.len == id->len &&
                    memcmp(l->messages[k]->message_id.data, id->data, id->len) == 0;
        if (about)
            keep[(*n_keep)++] = st->overdue[i];
    }
    liaison_response_free(r);
    return 0;
}

/* The filters given besides --patient, e.g. "--type and --since" (empty if none). */
static void other_filters(cli_opt_t *o, char *buf, size_t len)
{
    static const char *const names[] = {"type", "unread", "needs-ack", "since", "until"};
    const char *given[5];
    size_t n = 0, off = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (cli_opt(o, names[i])->count)
            given[n++] = names[i];
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s--%s", i == 0 ? "" : i + 1 == n ? " and " : ", ", given[i]);
}

static int box(cli_t *cli, int argc, char **argv, bool out)
{
    cli_opt_t o[] = {{.name = "patient", .has_arg = true}, {.name = "type", .has_arg = true},
                     {.name = "unread"},                   {.name = "needs-ack"},
                     {.name = "since", .has_arg = true},   {.name = "limit", .has_arg = true},
                     {.name = "until", .has_arg = true},   {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc)
        return rc;
    Liaison__Control__ListRequest lr = LIAISON__CONTROL__LIST_REQUEST__INIT;
    lr.box = out ? LIAISON__CONTROL__LIST_REQUEST__BOX__OUTBOX : LIAISON__CONTROL__LIST_REQUEST__BOX__INBOX;
    const char *p = cli_opt(o, "patient")->value, *t = cli_opt(o, "type")->value;
    if (p && !payload_valid_patient_id(p))
        return cli_fail(EXIT_USAGE, "--patient: '%.64s' is not a patient id (1-64 of A-Z a-z 0-9 . _ : -)", p);
    lr.patient = (char *)(p ? p : "");
    if (t && !(lr.content_type = payload_type_from_name(t)))
        return cli_fail(EXIT_USAGE, "--type: '%.32s' is not a type (text, note, med-change, ack, review)", t);
    lr.unread_only = cli_opt(o, "unread")->count > 0;
    lr.needs_ack = cli_opt(o, "needs-ack")->count > 0;
    if (out && (lr.unread_only || lr.needs_ack)) /* an empty list would look like an answer */
        return cli_fail(EXIT_USAGE, "outbox: --%s is about messages received: use it with liaison inbox (see: liaison"
                        " show ID for the acknowledgements of one you sent)", lr.unread_only ? "unread" : "needs-ack");
    if (cli_opt(o, "since")->value && (rc = cli_parse_when_local("since", cli_opt(o, "since")->value, &lr.since_ms)))
        return rc;
    /* Older messages than the newest 10,000 of a window are reached by moving its end. */
    if (cli_opt(o, "until")->value && (rc = cli_parse_until_local("until", cli_opt(o, "until")->value, &lr.until_ms)))
        return rc;
    if (lr.until_ms && lr.since_ms > lr.until_ms)
        return cli_fail(EXIT_USAGE, "--since %s is after --until %s: nothing could match", cli_opt(o, "since")->value,
                        cli_opt(o, "until")->value);
    uint64_t lim = BOX_DEFAULT_LIMIT;
    if (cli_opt(o, "limit")->value &&
        (cli_parse_uint(cli_opt(o, "limit")->value, BOX_MAX_LIMIT, &lim) != 0 || lim == 0))
        return cli_fail(EXIT_USAGE, "--limit: '%.24s' is not a number from 1 to %u", cli_opt(o, "limit")->value,
                        BOX_MAX_LIMIT);
    /* One more than shown: whether the limit cut the list, for a daemon that does not count. */
    lr.limit = (uint32_t)lim + 1u;
    lr.count = true;
    Liaison__Control__Response *r = NULL, *st = NULL;
    if ((rc = list(cli, &lr, &r)) != 0)
        return rc;
    const Liaison__Control__ListResult *l = r->list;
    size_t n = l->n_messages > lim ? (size_t)lim : l->n_messages;
    uint64_t left = 0;
    bool exact = true;
    if (l->matched >= l->n_messages && l->matched > 0) {
        left = l->matched - n; /* counted by the daemon with the listing */
    } else if (l->n_messages > n && (rc = count_left_out(cli, lr, n, &left, &exact)) != 0) {
        liaison_response_free(r); /* (a daemon that does not count: matched 0) */
        return rc;
    }
    if (!out && (rc = overdue(cli, &st)) != 0) {
        liaison_response_free(r);
        return rc;
    }
    /* The overdue acknowledgements of our own changes head the inbox: with --patient,
     * only those about that patient (a clinician who asked about one patient reads the
     * block as about them); the other filters select the messages received, and an
     * overdue acknowledgement, a safety alert, is shown whatever they say (liaison(1)). */
    Liaison__Control__MessageSummary **od = NULL;
    size_t n_od = 0, n_st = st ? st->status->n_overdue : 0;
    bool scoped = false;
    if (st && !(od = calloc(n_st + 1, sizeof *od))) {
        liaison_response_free(st);
        liaison_response_free(r);
        return cli_fail(EXIT_REFUSED, "out of memory");
    }
    if (st && lr.patient[0] && n_st) {
        if ((rc = overdue_about(cli, lr.patient, st->status, od, &n_od, &scoped)) != 0) {
            free(od);
            liaison_response_free(st);
            liaison_response_free(r);
            return rc;
        }
    } else if (st) {
        for (size_t i = 0; i < n_st; i++)
            od[i] = st->status->overdue[i];
        n_od = n_st;
        scoped = lr.patient[0] != '\0';
    }
    if (cli->json) {
        json_t *j = json_pack("{s:o, s:b, s:I, s:b}", "messages", summaries_json(l->messages, n, false), "truncated",
                              left > 0, "not_shown", (json_int_t)left, "not_shown_exact", exact);
        if (lr.patient[0])
            json_object_set_new(j, "patient_case_variants", json_integer(l->patient_case_variants));
        if (st) {
            json_object_set_new(j, "overdue", summaries_json(od, n_od, false));
            json_object_set_new(j, "overdue_scope", json_string(scoped ? "patient" : "all"));
            if (!scoped)
                json_object_set_new(j, "overdue_total",
                                    json_integer((json_int_t)(st->status->overdue_total > n_od
                                                                  ? st->status->overdue_total
                                                                  : n_od)));
            if (scoped)
                json_object_set_new(j, "overdue_other_patients", json_integer((json_int_t)(n_st - n_od)));
        }
        cli_json_out(j);
    } else {
        char others[64];
        other_filters(o, others, sizeof others);
        if (n_od) {
            if (scoped)
                printf("OVERDUE acknowledgements of your medication changes about patient %s:\n", lr.patient);
            else
                printf("OVERDUE acknowledgements of your medication changes, all patients (liaison show MSG_ID for the"
                       " patient):\n");
            for (size_t i = 0; i < n_od; i++)
                render_summary_line(od[i]);
            if (!scoped)
                cli_overdue_more(st->status->overdue_total, n_od);
        }
        /* Not hidden by the filter: only placed under the patient it is about. */
        size_t elsewhere = scoped ? n_st - n_od : 0;
        if (elsewhere && n_od)
            printf("(%zu more of your changes, about other patients, %s overdue acknowledgements: see liaison"
                   " inbox)\n", elsewhere, elsewhere == 1 ? "has" : "have");
        else if (elsewhere)
            printf("No overdue acknowledgements of your medication changes about patient %s (%zu of your changes"
                   " about other patients %s: see liaison inbox).\n", lr.patient, elsewhere,
                   elsewhere == 1 ? "has one" : "have some");
        if (n_od && others[0])
            printf("(Shown whatever %s say%s: %s the messages received, below.)\n", others,
                   strchr(others, ' ') ? "" : "s", strchr(others, ' ') ? "they select" : "it selects");
        if (n_st)
            printf("\n");
        if (n == 0)
            printf(out ? "No messages sent%s.\n" : "No messages%s.\n", lr.patient[0] || t || lr.unread_only ||
                                                                                lr.needs_ack || lr.since_ms ||
                                                                                lr.until_ms
                                                                            ? " match"
                                                                            : "");
        for (size_t i = 0; i < n; i++) {
            render_summary_line(l->messages[i]);
            if (out)
                render_deliveries(l->messages[i], "    ");
        }
        if (left)
            render_left_out(left, exact, n, out ? "outbox" : "inbox", BOX_MAX_LIMIT,
                            n ? l->messages[n - 1]->created_ms : 0);
        if (lr.patient[0])
            render_case_variants(l->patient_case_variants, lr.patient, "messages");
    }
    free(od);
    if (st)
        liaison_response_free(st);
    liaison_response_free(r);
    return 0;
}

int cmd_inbox(cli_t *cli, int argc, char **argv)
{
    return box(cli, argc, argv, false);
}

int cmd_outbox(cli_t *cli, int argc, char **argv)
{
    return box(cli, argc, argv, true);
}

static int one_id(cli_t *cli, int argc, char **argv, const char *what, uint8_t id[LIAISON_MSGID_BYTES])
{
    cli_opt_t o[] = {{0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1)
        return cli_fail(EXIT_USAGE, "%s needs %s (32 hex characters; see: liaison inbox)", cli->cmd, what);
    if (text_msgid_from_hex(pos[0], id) != 0)
        return cli_fail(EXIT_USAGE, "'%.40s' is not %s (32 hex characters; see: liaison inbox)", pos[0], what);
    return 0;
}

/* Whether id is in the node's directory (true if the daemon cannot say: the usual hint). */
static bool in_directory(cli_t *cli, const char *id)
{
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_PEER_LIST;
    rq.peer_list = true;
    Liaison__Control__Response *r = NULL;
    int code = 0;
    liaison_client_t *c = cli_control(cli, &code);
    if (!c || liaison_call_pb(c, &rq, &r) != LIAISON_OK) {
        if (r)
            liaison_response_free(r);
        return true;
    }
    bool found = r->result_case != LIAISON__CONTROL__RESPONSE__RESULT_PEERS || !r->peers;
    for (size_t i = 0; !found && i < r->peers->n_peers; i++)
        found = strcmp(r->peers->peers[i]->id, id) == 0;
    liaison_response_free(r);
    return found;
}

/* The acknowledgement hint after a message shown as text (render_ack_hint). */
static void ack_hint(cli_t *cli, const Liaison__Control__MessageSummary *m)
{
    if (strcmp(m->direction, "in") == 0 && m->awaiting_ack)
        render_ack_hint(m, in_directory(cli, m->sender));
}

int cmd_show(cli_t *cli, int argc, char **argv)
{
    uint8_t id[LIAISON_MSGID_BYTES];
    int rc = one_id(cli, argc, argv, "a message id", id);
    if (rc)
        return rc;
    Liaison__Control__ShowRequest sr = LIAISON__CONTROL__SHOW_REQUEST__INIT;
    sr.message_id = (ProtobufCBinaryData){sizeof id, id};
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_SHOW;
    rq.show = &sr;
    Liaison__Control__Response *r;
    if ((rc = cli_call(cli, false, &rq, LIAISON__CONTROL__RESPONSE__RESULT_SHOW, &r)) != 0)
        return rc;
    if (!r->show->summary) {
        liaison_response_free(r);
        return cli_fail(EXIT_REFUSED, "the daemon answered without the message");
    }
    char hex[TEXT_MSGID_HEX];
    text_msgid_to_hex(id, hex);
    if (strcmp(r->show->summary->direction, "in") == 0 && !r->show->summary->unopenable)
        cli_done("liaison inbox", "message %s is marked read on this node (the read is audited)", hex);
    if (cli->json)
        cli_json_out(render_message_json(r->show->summary, r->show->payload.data, r->show->payload.len));
    else {
        render_message_text(r->show->summary, r->show->payload.data, r->show->payload.len);
        ack_hint(cli, r->show->summary);
    }
    liaison_response_free(r);
    return 0;
}

/* A --timeout value: whole seconds, or a number with s, m or h; at most 24 h. */
static int parse_duration(const char *opt, const char *s, int *ms)
{
    size_t n = strlen(s);
    uint64_t unit = 1000, v;
    char digits[16];
    if (n > 0 && (s[n - 1] == 's' || s[n - 1] == 'm' || s[n - 1] == 'h')) {
        unit = s[n - 1] == 'h' ? 3600000u : s[n - 1] == 'm' ? 60000u : 1000u;
        n--;
    }
    if (n == 0 || n >= sizeof digits)
        goto bad;
    memcpy(digits, s, n);
    digits[n] = 0;
    if (cli_parse_uint(digits, 86400, &v) != 0 || v * unit > (uint64_t)LIAISON_WAIT_MAX_MS)
        goto bad;
    *ms = (int)(v * unit);
    return 0;
bad:
    return cli_fail(EXIT_USAGE, "--%s: '%.40s' is not a duration of at most 24 hours (seconds, or e.g. 90s, 15m, 2h)",
                    opt, s);
}

int cmd_wait(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "timeout", .has_arg = true}, {.name = "ack"}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc)
        return rc;
    uint8_t id[LIAISON_MSGID_BYTES];
    if (npos != 1)
        return cli_fail(EXIT_USAGE, "wait needs the id of a message you sent: liaison wait MSG_ID (see: liaison outbox)");
    if (text_msgid_from_hex(pos[0], id) != 0)
        return cli_fail(EXIT_USAGE, "'%.40s' is not a message id (32 hex characters; see: liaison outbox)", pos[0]);
    int timeout_ms = 60000;
    if (cli_opt(o, "timeout")->value && (rc = parse_duration("timeout", cli_opt(o, "timeout")->value, &timeout_ms)))
        return rc;
    bool acks = cli_opt(o, "ack")->count > 0;
    int code = 0;
    liaison_client_t *c = cli_control(cli, &code);
    if (!c)
        return code;
    char hex[TEXT_MSGID_HEX];
    text_msgid_to_hex(id, hex);
    cli_catch_interrupt();
    Liaison__Control__Response *r = NULL;
    liaison_rc lrc = liaison_wait_pb(c, id, timeout_ms, acks ? LIAISON_WAIT_ACKS : 0, &r);
    if (lrc == LIAISON_INTERRUPTED)
        return cli_fail(EXIT_INTERRUPTED, "stopped waiting; the delivery of message %s goes on all the same (where it"
                        " stands: liaison show %s)", hex, hex);
    if (lrc != LIAISON_OK) {
        if (r)
            liaison_response_free(r);
        return cli_fail(cli_exit_code(lrc), "%s", liaison_client_error(c));
    }
    const Liaison__Control__WaitResult *w = r->wait;
    if (!w->summary) {
        liaison_response_free(r);
        return cli_fail(EXIT_REFUSED, "the daemon answered without the message");
    }
    const Liaison__Control__MessageSummary *m = w->summary;
    unsigned n = (unsigned)m->n_deliveries, delivered = 0, rejected = 0, acked = 0;
    for (size_t i = 0; i < m->n_deliveries; i++) {
        delivered += strcmp(m->deliveries[i]->state, "delivered") == 0;
        rejected += strcmp(m->deliveries[i]->state, "rejected") == 0;
        for (size_t k = 0; k < m->n_acks; k++)
            if (strcmp(m->acks[k]->by, m->deliveries[i]->recipient) == 0) {
                acked++;
                break;
            }
    }
    int exit_code = !w->settled ? EXIT_PENDING : rejected ? EXIT_REFUSED : 0;
    if (cli->json) {
        json_t *j = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:o}", "id", hex, "settled", w->settled, "recipients",
                              (json_int_t)n, "delivered", (json_int_t)delivered, "rejected", (json_int_t)rejected,
                              "acknowledged", (json_int_t)acked, "message", render_summary_json(m));
        cli_json_out(j);
    } else {
        if (!w->settled)
            printf("Not settled yet: delivered to %u of %u recipient%s", delivered, n, n == 1 ? "" : "s");
        else if (!rejected)
            if (n == 1)
                printf("Delivered to its recipient");
            else
                printf("Delivered to all %u recipients", n);
        else
            printf("Settled: delivered to %u of %u recipient%s, rejected by %u (it will not reach %s)", delivered, n,
                   n == 1 ? "" : "s", rejected, rejected == 1 ? "them" : "those");
        if (acks)
            printf(", acknowledged by %u", acked);
        printf(".\n");
        render_deliveries(m, "  ");
    }
    liaison_response_free(r);
    /* --timeout 0 asks for the state now: "Not settled yet" above is the answer (and the
     * exit status 5 says it too), not a wait that ran out. */
    if (exit_code == EXIT_PENDING && timeout_ms > 0) {
        fflush(stdout); /* the state first, then why it is not final */
        char t[32];
        snprintf(t, sizeof t, timeout_ms % 1000 ? "%d ms" : "%d s", timeout_ms % 1000 ? timeout_ms : timeout_ms / 1000);
        if (delivered + rejected == n) /* only acknowledgements are missing */
            cli_fail(EXIT_PENDING, "message %s is delivered but not acknowledged by every recipient within %s (wait"
                                   " longer with --timeout, or see: liaison show %s)", hex, t, hex);
        else
            cli_fail(EXIT_PENDING, "message %s has not settled within %s; its delivery goes on (wait longer with"
                                   " --timeout, or see: liaison show %s)", hex, t, hex);
    }
    return exit_code;
}

int cmd_thread(cli_t *cli, int argc, char **argv)
{
    uint8_t id[LIAISON_MSGID_BYTES];
    int rc = one_id(cli, argc, argv, "a thread or review id", id);
    if (rc)
        return rc;
    Liaison__Control__ListRequest lr = LIAISON__CONTROL__LIST_REQUEST__INIT;
    lr.box = LIAISON__CONTROL__LIST_REQUEST__BOX__BOTH;
    lr.thread_id = (ProtobufCBinaryData){sizeof id, id};
    lr.with_payloads = true;
    lr.limit = 10000;
    Liaison__Control__Response *r;
    if ((rc = list(cli, &lr, &r)) != 0)
        return rc;
    const Liaison__Control__ListResult *l = r->list;
    char hex[TEXT_MSGID_HEX];
    text_msgid_to_hex(id, hex);
    size_t opened = 0;
    for (size_t i = 0; i < l->n_messages; i++)
        opened += strcmp(l->messages[i]->direction, "in") == 0 && !l->messages[i]->unopenable;
    if (opened)
        cli_done("liaison inbox --unread", "the %zu message%s received in thread %s %s marked read on this node (each"
                 " read is audited)", opened, opened == 1 ? "" : "s", hex, opened == 1 ? "is" : "are");
    if (l->n_messages == 0) { /* a mistyped id, as in text: a script must tell it from a thread */
        liaison_response_free(r);
        return cli_fail(EXIT_REFUSED, "no messages in thread %s on this node", hex);
    }
    if (cli->json) {
        cli_json_out(json_pack("{s:o, s:b}", "messages", summaries_json(l->messages, l->n_messages, true),
                               "truncated", l->truncated));
    } else {
        for (size_t i = 0; i < l->n_messages; i++) {
            if (i)
                printf("\n----------------------------------------------------------------\n");
            render_message_text(l->messages[i], l->messages[i]->payload.data, l->messages[i]->payload.len);
            ack_hint(cli, l->messages[i]);
        }
        render_truncated(l->truncated, l->n_messages,
                         "These are the oldest; read the later ones one by one (liaison inbox --since, then liaison show).");
    }
    liaison_response_free(r);
    return 0;
}

/* ---- patient timeline ---- */

static int by_time(const void *a, const void *b)
{
    const Liaison__Control__MessageSummary *x = *(Liaison__Control__MessageSummary *const *)a;
    const Liaison__Control__MessageSummary *y = *(Liaison__Control__MessageSummary *const *)b;
    return x->created_ms < y->created_ms ? -1 : x->created_ms > y->created_ms;
}

/* One scored session of the trend. */
typedef struct trend_point {
    char date[11];    /* the note's session_date */
    uint64_t sent_ms; /* the note's creation time */
    size_t msg;       /* its place in the timeline */
    int score[2];     /* PHQ-9, GAD-7; -1: not scored */
} trend_point_t;

/* A trend follows the sessions, not the mail: a note can be sent after the note of a
 * later session (written up late), and sorted by sending it would end the trend as if
 * it were the latest score. Same date: by sending, so a note sent again comes last. */
static int by_session(const void *a, const void *b)
{
    const trend_point_t *x = a, *y = b;
    int c = strcmp(x->date, y->date);
    if (c)
        return c;
    if (x->sent_ms != y->sent_ms)
        return x->sent_ms < y->sent_ms ? -1 : 1;
    return x->msg < y->msg ? -1 : x->msg > y->msg;
}

/* One line per scored session, by session date: date, score, and a bar scaled to the
 * instrument's maximum. which: 0 PHQ-9, 1 GAD-7. */
static void chart(const char *title, int max, const trend_point_t *pts, size_t n, int which)
{
    size_t have = 0;
    for (size_t i = 0; i < n; i++)
        have += pts[i].score[which] >= 0;
    if (!have)
        return;
    printf("\n%s trend (0-%d), by session date\n", title, max);
    for (size_t i = 0; i < n; i++) {
        int score = pts[i].score[which];
        if (score < 0)
            continue;
        printf("  %s  %2d  ", pts[i].date, score);
        int width = score * 40 / max;
        for (int k = 0; k < width; k++)
            fputs("#", stdout);
        printf("\n");
    }
}

static void gist(const Liaison__Control__MessageSummary *m)
{
    if (m->unopenable) {
        printf("(cannot be opened: the sender's card was removed or replaced)");
        return;
    }
    json_t *p = render_payload_json(m->content_type, m->payload.data, m->payload.len);
    switch (m->content_type) {
    case 2: {
        json_t *phq = json_object_get(p, "phq9"), *gad = json_object_get(p, "gad7"), *risk = json_object_get(p, "risk");
        printf("session %s", json_string_value(json_object_get(p, "session_date")));
        if (json_is_integer(phq))
            printf(", PHQ-9 %d", (int)json_integer_value(phq));
        if (json_is_integer(gad))
            printf(", GAD-7 %d", (int)json_integer_value(gad));
        if (json_is_object(risk))
            printf(", risk %s", json_string_value(json_object_get(risk, "level")));
        break;
    }
    case 3:
        printf("%s %s", json_string_value(json_object_get(p, "action")),
               json_string_value(json_object_get(p, "medication")));
        if (json_is_string(json_object_get(p, "new_dose")))
            printf(" to %s", json_string_value(json_object_get(p, "new_dose")));
        if (m->urgent)
            printf(" (urgent)");
        for (size_t i = 0; i < m->n_acks; i++)
            printf("; acknowledged by %s", m->acks[i]->by);
        if (m->awaiting_ack)
            printf("; needs your acknowledgement");
        break;
    case 5:
        printf("review %s", json_string_value(json_object_get(p, "kind")));
        break;
    default:
        break;
    }
    json_decref(p);
}

int cmd_patient(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "since", .has_arg = true}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1)
        return cli_fail(EXIT_USAGE, "patient needs the patient's id: liaison patient P");
    if (!payload_valid_patient_id(pos[0]))
        return cli_fail(EXIT_USAGE, "'%.64s' is not a patient id (1-64 of A-Z a-z 0-9 . _ : -)", pos[0]);
    Liaison__Control__ListRequest lr = LIAISON__CONTROL__LIST_REQUEST__INIT;
    lr.box = LIAISON__CONTROL__LIST_REQUEST__BOX__BOTH;
    lr.patient = (char *)pos[0];
    lr.with_payloads = true;
    lr.keep_unread = true; /* a timeline shows each message's gist, not the message */
    lr.limit = 10000;
    if (cli_opt(o, "since")->value && (rc = cli_parse_when_local("since", cli_opt(o, "since")->value, &lr.since_ms)))
        return rc;
    Liaison__Control__Response *r;
    if ((rc = list(cli, &lr, &r)) != 0)
        return rc;
    Liaison__Control__ListResult *l = r->list;
    /* The timeline in the order the messages were sent (each line says when); the
     * trend in the order of the sessions (by_session). */
    if (l->n_messages > 1)
        qsort(l->messages, l->n_messages, sizeof *l->messages, by_time);
    size_t n = l->n_messages, np = 0;
    trend_point_t *pts = calloc(n + 1, sizeof *pts);
    if (!pts) {
        liaison_response_free(r);
        return cli_fail(EXIT_REFUSED, "out of memory");
    }
    char label[160] = "";
    for (size_t i = 0; i < n; i++) {
        const Liaison__Control__MessageSummary *m = l->messages[i];
        trend_point_t *pt = &pts[np];
        render_note_scores(m->content_type, m->payload.data, m->payload.len, &pt->score[0], &pt->score[1], pt->date);
        if (pt->score[0] >= 0 || pt->score[1] >= 0) {
            pt->sent_ms = m->created_ms;
            pt->msg = i;
            np++;
        }
        char pid[80], lab[160];
        if (!label[0] && render_patient(m->content_type, m->payload.data, m->payload.len, pid, sizeof pid, lab,
                                        sizeof lab) == 0)
            snprintf(label, sizeof label, "%s", lab);
    }
    if (np > 1)
        qsort(pts, np, sizeof *pts, by_session);
    if (cli->json) {
        json_t *scores = json_array();
        for (size_t i = 0; i < np; i++) {
            char id[TEXT_MSGID_HEX];
            text_msgid_to_hex(l->messages[pts[i].msg]->message_id.data, id);
            json_array_append_new(scores, json_pack("{s:s, s:s, s:o, s:o}", "message", id, "session_date", pts[i].date,
                                                    "phq9", pts[i].score[0] >= 0 ? json_integer(pts[i].score[0])
                                                                                 : json_null(),
                                                    "gad7", pts[i].score[1] >= 0 ? json_integer(pts[i].score[1])
                                                                                 : json_null()));
        }
        cli_json_out(json_pack("{s:s, s:s?, s:o, s:o, s:I, s:b}", "patient", pos[0], "label", label[0] ? label : NULL,
                               "messages", summaries_json(l->messages, n, true), "scores", scores,
                               "patient_case_variants", (json_int_t)l->patient_case_variants, "truncated",
                               l->truncated));
    } else {
        printf("Patient %s%s%s%s: %zu message%s on this node, in the order sent\n\n", pos[0], label[0] ? " (" : "",
               label, label[0] ? ")" : "", n, n == 1 ? "" : "s");
        char latest[11] = ""; /* the latest session of the notes listed so far */
        for (size_t i = 0; i < n; i++) {
            const Liaison__Control__MessageSummary *m = l->messages[i];
            char t[32], id[TEXT_MSGID_HEX], date[11];
            int s1, s2;
            cli_time_column(m->created_ms, t, sizeof t);
            text_msgid_to_hex(m->message_id.data, id);
            bool in = strcmp(m->direction, "in") == 0;
            printf("%s  %s %-14s %-17s ", t, in ? "<-" : "->", in ? m->sender : "(sent)", payload_type_name(m->content_type));
            gist(m);
            /* A note written up late sits below a later session's: said on its line, so
             * that the last note listed is not taken for the latest session. */
            if (!m->unopenable && render_note_scores(m->content_type, m->payload.data, m->payload.len, &s1, &s2,
                                                     date) == 0 && date[0]) {
                if (strcmp(date, latest) < 0)
                    printf(" (sent after the note of a later session, %s)", latest);
                else
                    snprintf(latest, sizeof latest, "%s", date);
            }
            printf("\n    %s\n", id);
        }
        chart("PHQ-9", 27, pts, np, 0);
        chart("GAD-7", 21, pts, np, 1);
        render_case_variants(l->patient_case_variants, pos[0], "messages");
        render_truncated(l->truncated, n,
                         "These are the newest; the older ones are listed by liaison inbox --patient (and outbox), and read"
                         " with liaison show.");
    }
    free(pts);
    liaison_response_free(r);
    return 0;
}
