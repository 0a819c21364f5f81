/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of payload.c: every payload type accepted when valid, every rule refused
 * with an error naming the field, and the enumeration names. Real protobuf-c. */
#include "unit.h"

#include <sodium.h>

#include "payload.h"
#include "payload.pb-c.h"

enum { CT_TEXT = 1, CT_NOTE = 2, CT_MED = 3, CT_ACK = 4, CT_REVIEW = 5 };

/* Packs m and validates it as content type ct; returns the result, err filled. */
static int check(uint32_t ct, const ProtobufCMessage *m, payload_info_t *info, char *err, size_t errlen)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    protobuf_c_message_pack(m, buf);
    err[0] = 0;
    int rc = payload_validate(ct, buf, n, info, err, errlen);
    free(buf);
    return rc;
}

/* Asserts a refusal whose message names `field`. */
static void refused(uint32_t ct, const ProtobufCMessage *m, const char *field)
{
    char err[300];
    payload_info_t info;
    assert_int_equal(check(ct, m, &info, err, sizeof err), -1);
    if (!strstr(err, field))
        fail_msg("error '%s' does not name '%s'", err, field);
}

static void accepted(uint32_t ct, const ProtobufCMessage *m, payload_info_t *info)
{
    char err[300];
    if (check(ct, m, info, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
}

/* ---- fixtures: a valid message of each type, fields pointing at static storage ---- */

typedef struct note_fx {
    Liaison__Payload__PatientRef p;
    Liaison__Payload__ProgressNote n;
    Liaison__Payload__Score phq9, gad7;
    Liaison__Payload__RiskAssessment risk;
    Liaison__Payload__NamedScore named[17];
    Liaison__Payload__NamedScore *named_p[17];
} note_fx_t;

static void note_init(note_fx_t *f)
{
    liaison__payload__patient_ref__init(&f->p);
    f->p.id = "P-1042";
    f->p.label = "J.D.";
    liaison__payload__progress_note__init(&f->n);
    f->n.patient = &f->p;
    f->n.session_date = "2026-11-16";
    f->n.narrative = "Engaged in CBT; sleep improved.";
    liaison__payload__score__init(&f->phq9);
    liaison__payload__score__init(&f->gad7);
    liaison__payload__risk_assessment__init(&f->risk);
    static const char *names[17] = {"PCL-5", "AUDIT", "DAST-10", "YMBSS", "HAM-D", "HAM-A", "BDI-II", "BAI", "MDQ",
                                    "ISI", "EPDS", "CSSRS", "PSS", "WHO-5", "K10", "SPIN", "OCI-R"};
    for (int i = 0; i < 17; i++) {
        liaison__payload__named_score__init(&f->named[i]);
        f->named[i].name = (char *)names[i];
        f->named[i].value = 41;
        f->named[i].max = 80;
        f->named_p[i] = &f->named[i];
    }
}

typedef struct med_fx {
    Liaison__Payload__PatientRef p;
    Liaison__Payload__MedicationChange m;
} med_fx_t;

static void med_init(med_fx_t *f)
{
    liaison__payload__patient_ref__init(&f->p);
    f->p.id = "P-1042";
    liaison__payload__medication_change__init(&f->m);
    f->m.patient = &f->p;
    f->m.medication = "sertraline";
    f->m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_INCREASE;
    f->m.previous_dose = "50 mg daily";
    f->m.new_dose = "100 mg daily";
    f->m.effective_date = "2026-11-23";
    f->m.reason = "partial response";
}

static uint8_t rid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static uint8_t salt[16] = {0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x60};

typedef struct review_fx {
    Liaison__Payload__PatientRef p;
    Liaison__Payload__CaseReview r;
    Liaison__Payload__ReviewOpen open;
    Liaison__Payload__ReviewReply reply;
    Liaison__Payload__ReviewAdd add;
    Liaison__Payload__ReviewClose close;
    Liaison__Payload__ActionItem items[33];
    Liaison__Payload__ActionItem *items_p[33];
    char *who[32];
} review_fx_t;

static void review_init(review_fx_t *f)
{
    liaison__payload__patient_ref__init(&f->p);
    f->p.id = "P-1042";
    liaison__payload__case_review__init(&f->r);
    f->r.review_id = (ProtobufCBinaryData){16, rid};
    f->r.patient = &f->p;
    liaison__payload__review_open__init(&f->open);
    liaison__payload__review_reply__init(&f->reply);
    liaison__payload__review_add__init(&f->add);
    liaison__payload__review_close__init(&f->close);
    for (int i = 0; i < 32; i++)
        f->who[i] = "rx.chen";
    f->who[0] = "dr.alvarez";
    f->open.question = "Nausea: switch or split the dose?";
    f->open.participants = f->who;
    f->open.n_participants = 2;
    f->open.salt = (ProtobufCBinaryData){16, salt};
    f->reply.text = "With food first.";
    f->add.participant = "dr.park";
    f->close.decision = "Continue with food.";
    for (int i = 0; i < 33; i++) {
        liaison__payload__action_item__init(&f->items[i]);
        f->items[i].owner = "dr.alvarez";
        f->items[i].text = "screen GI symptoms";
        f->items[i].due_date = "2026-12-07";
        f->items_p[i] = &f->items[i];
    }
    f->close.actions = f->items_p;
    f->close.n_actions = 1;
}

/* ---- text ---- */

static void test_text(void **state)
{
    (void)state;
    Liaison__Payload__TextMessage t = LIAISON__PAYLOAD__TEXT_MESSAGE__INIT;
    payload_info_t info;
    t.subject = "weekly update";
    t.text = "PHQ-9 down to 11.\nSleeping better.";
    accepted(CT_TEXT, &t.base, &info);
    assert_string_equal(info.patient, "");
    t.text = "";
    refused(CT_TEXT, &t.base, "text");
    t.text = "ok";
    t.subject = "two\nlines";
    refused(CT_TEXT, &t.base, "subject");
    t.subject = "bad \xc3\x28 utf-8";
    refused(CT_TEXT, &t.base, "subject");
    static char big[PAYLOAD_MAX_TEXT + 2];
    memset(big, 'x', PAYLOAD_MAX_TEXT + 1);
    t.subject = "";
    t.text = big;
    refused(CT_TEXT, &t.base, "text");
    big[PAYLOAD_MAX_TEXT] = 0;
    accepted(CT_TEXT, &t.base, &info);
}

/* ---- progress notes ---- */

static void test_note_valid(void **state)
{
    (void)state;
    note_fx_t f;
    note_init(&f);
    payload_info_t info;
    accepted(CT_NOTE, &f.n.base, &info);
    assert_string_equal(info.patient, "P-1042");
    assert_false(info.ack_required);
    /* Every optional field set. */
    f.phq9.value = 27;
    f.gad7.value = 0;
    f.n.phq9 = &f.phq9;
    f.n.gad7 = &f.gad7;
    f.n.modality = LIAISON__PAYLOAD__MODALITY__MODALITY_TRAUMA_FOCUSED;
    f.risk.level = LIAISON__PAYLOAD__RISK_LEVEL__RISK_HIGH;
    f.risk.text = "passive ideation, safety plan reviewed";
    f.n.risk = &f.risk;
    f.n.other_scores = f.named_p;
    f.n.n_other_scores = 16;
    f.n.adherence = "missed 2 doses";
    f.n.side_effects = "nausea";
    f.n.goals = "back at work 3 days";
    f.n.next_session_date = "2026-11-23";
    accepted(CT_NOTE, &f.n.base, &info);
}

static void test_note_refusals(void **state)
{
    (void)state;
    note_fx_t f;
    note_init(&f);
    f.n.patient = NULL;
    refused(CT_NOTE, &f.n.base, "patient");
    f.n.patient = &f.p;
    f.p.id = "P 1042";
    refused(CT_NOTE, &f.n.base, "patient");
    char long_id[66];
    memset(long_id, 'a', 65);
    long_id[65] = 0;
    f.p.id = long_id;
    refused(CT_NOTE, &f.n.base, "patient");
    long_id[64] = 0;
    payload_info_t info;
    accepted(CT_NOTE, &f.n.base, &info);
    f.p.id = "P-1042";
    f.p.label = "two\nlines";
    refused(CT_NOTE, &f.n.base, "patient label");
    f.p.label = "";
    const char *bad_dates[] = {"2026-02-30", "2026-13-01", "26-01-01", "", "2026-1-01", "2026-00-10", "2026/01/01"};
    for (size_t i = 0; i < sizeof bad_dates / sizeof bad_dates[0]; i++) {
        f.n.session_date = (char *)bad_dates[i];
        refused(CT_NOTE, &f.n.base, "session date");
    }
    f.n.session_date = "2024-02-29"; /* leap day */
    accepted(CT_NOTE, &f.n.base, &info);
    f.n.session_date = "2026-11-16";
    f.n.next_session_date = "2026-11-31";
    refused(CT_NOTE, &f.n.base, "next session date");
    f.n.next_session_date = "";
    f.phq9.value = 28;
    f.n.phq9 = &f.phq9;
    refused(CT_NOTE, &f.n.base, "phq9");
    f.n.phq9 = NULL;
    f.gad7.value = 22;
    f.n.gad7 = &f.gad7;
    refused(CT_NOTE, &f.n.base, "gad7");
    f.n.gad7 = NULL;
    f.n.other_scores = f.named_p;
    f.n.n_other_scores = 1;
    f.named[0].value = 81;
    refused(CT_NOTE, &f.n.base, "PCL-5");
    f.named[0].value = 41;
    f.named[0].min = 90;
    refused(CT_NOTE, &f.n.base, "PCL-5");
    f.named[0].min = 0;
    f.named[0].max = 1001;
    refused(CT_NOTE, &f.n.base, "PCL-5");
    f.named[0].max = 80;
    f.named[0].name = "";
    refused(CT_NOTE, &f.n.base, "score 1 name");
    f.named[0].name = "PCL-5";
    f.n.n_other_scores = 17;
    refused(CT_NOTE, &f.n.base, "other scores");
    f.n.n_other_scores = 0;
    f.n.modality = (Liaison__Payload__Modality)99;
    refused(CT_NOTE, &f.n.base, "modality");
    f.n.modality = LIAISON__PAYLOAD__MODALITY__MODALITY_CBT;
    f.n.risk = &f.risk;
    f.risk.level = LIAISON__PAYLOAD__RISK_LEVEL__RISK_UNSPECIFIED;
    refused(CT_NOTE, &f.n.base, "risk");
    f.risk.level = (Liaison__Payload__RiskLevel)5;
    refused(CT_NOTE, &f.n.base, "risk");
    f.risk.level = LIAISON__PAYLOAD__RISK_LEVEL__RISK_NONE;
    accepted(CT_NOTE, &f.n.base, &info);
    f.n.narrative = "";
    refused(CT_NOTE, &f.n.base, "narrative");
    static char big[PAYLOAD_MAX_TEXT + 2];
    memset(big, 'x', PAYLOAD_MAX_TEXT + 1);
    f.n.narrative = big;
    refused(CT_NOTE, &f.n.base, "narrative");
    f.n.narrative = "ok";
    f.n.adherence = "\xff";
    refused(CT_NOTE, &f.n.base, "adherence");
}

/* ---- medication changes ---- */

/* A required field of nothing but white space is absent: no order without a drug. */
static void test_blank_required_fields(void **state)
{
    (void)state;
    static const char *blanks[] = {" ", "  \t ", "\n", "\xc2\xa0", " \xc2\xa0 "};
    payload_info_t info;
    for (size_t i = 0; i < sizeof blanks / sizeof blanks[0]; i++) {
        const char *b = blanks[i];
        bool single = !strchr(b, '\n') && !strchr(b, '\t'); /* a single-line field takes neither */
        med_fx_t f;
        if (single) {
            med_init(&f);
            f.m.medication = (char *)b;
            refused(CT_MED, &f.m.base, "medication: required (it is only white space)");
            med_init(&f);
            f.m.new_dose = (char *)b;
            refused(CT_MED, &f.m.base, "new dose: required");
            med_init(&f);
            f.m.previous_dose = (char *)b;
            refused(CT_MED, &f.m.base, "previous dose: required");
        }
        med_init(&f);
        f.m.reason = (char *)b;
        refused(CT_MED, &f.m.base, "reason: required");
        note_fx_t n;
        note_init(&n);
        n.n.narrative = (char *)b;
        refused(CT_NOTE, &n.n.base, "narrative: required");
        Liaison__Payload__TextMessage t = LIAISON__PAYLOAD__TEXT_MESSAGE__INIT;
        t.text = (char *)b;
        refused(CT_TEXT, &t.base, "text: required (it is only white space)");
        t.text = "x";
        if (single) {
            t.subject = (char *)b; /* optional: white space is allowed, if pointless */
            accepted(CT_TEXT, &t.base, &info);
        }
    }
    /* Text with white space around it is fine. */
    med_fx_t f;
    med_init(&f);
    f.m.medication = " sertraline ";
    accepted(CT_MED, &f.m.base, &info);
}

static void test_med(void **state)
{
    (void)state;
    med_fx_t f;
    med_init(&f);
    payload_info_t info;
    accepted(CT_MED, &f.m.base, &info);
    assert_string_equal(info.patient, "P-1042");
    assert_true(info.ack_required); /* the default */
    assert_false(info.urgent);
    f.m.ack_optional = true;
    f.m.urgency = LIAISON__PAYLOAD__URGENCY__URGENCY_URGENT;
    accepted(CT_MED, &f.m.base, &info);
    assert_false(info.ack_required);
    assert_true(info.urgent);

    /* What each action needs. */
    f.m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_START;
    f.m.previous_dose = "";
    accepted(CT_MED, &f.m.base, &info);
    f.m.new_dose = "";
    refused(CT_MED, &f.m.base, "new dose");
    f.m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_STOP;
    refused(CT_MED, &f.m.base, "previous dose");
    f.m.previous_dose = "50 mg";
    accepted(CT_MED, &f.m.base, &info);
    f.m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_HOLD;
    accepted(CT_MED, &f.m.base, &info);
    f.m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_SWITCH;
    f.m.new_dose = "20 mg";
    refused(CT_MED, &f.m.base, "previous medication");
    f.m.previous_medication = "citalopram";
    accepted(CT_MED, &f.m.base, &info);
    f.m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_UNSPECIFIED;
    refused(CT_MED, &f.m.base, "action");
    f.m.action = (Liaison__Payload__MedicationAction)7;
    refused(CT_MED, &f.m.base, "action");
    f.m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_DECREASE;
    f.m.urgency = (Liaison__Payload__Urgency)2;
    refused(CT_MED, &f.m.base, "urgency");
    f.m.urgency = LIAISON__PAYLOAD__URGENCY__URGENCY_ROUTINE;
    f.m.medication = "";
    refused(CT_MED, &f.m.base, "medication");
    f.m.medication = "sertraline";
    f.m.reason = "";
    refused(CT_MED, &f.m.base, "reason");
    f.m.reason = "r";
    f.m.effective_date = "";
    refused(CT_MED, &f.m.base, "effective date");
    f.m.effective_date = "2026-11-23";
    f.m.new_dose = "100\nmg";
    refused(CT_MED, &f.m.base, "new dose");
    f.m.new_dose = "100 mg";
    f.m.patient = NULL;
    refused(CT_MED, &f.m.base, "patient");
}

/* Asserts a refusal whose field (the text before the first ':', which is audited and
 * sent to the peer) is exactly `field`, and whose whole message contains `detail`. */
static void refused_as(uint32_t ct, const ProtobufCMessage *m, const char *field, const char *detail)
{
    char err[300];
    payload_info_t info;
    assert_int_equal(check(ct, m, &info, err, sizeof err), -1);
    const char *colon = strchr(err, ':');
    if (!colon || (size_t)(colon - err) != strlen(field) || strncmp(err, field, strlen(field)) != 0)
        fail_msg("error '%s' does not start with the field '%s:'", err, field);
    if (detail && !strstr(colon, detail))
        fail_msg("error '%s' does not say '%s'", err, detail);
}

/* A score's name is free text that may name a person: no error puts it (or any other
 * value) before the ':'. */
static void test_note_errors_keep_text_after_colon(void **state)
{
    (void)state;
    static const char secret[] = "Jane Roe P-1042 disclosed abuse";
    note_fx_t f;
    note_init(&f);
    f.n.other_scores = f.named_p;
    f.n.n_other_scores = 3;
    f.named[2].name = (char *)secret;
    f.named[2].value = 30;
    f.named[2].max = 27;
    refused_as(CT_NOTE, &f.n.base, "score 3", secret);       /* the local user still sees which */
    f.named[2].value = 3;
    f.named[2].min = 30;
    refused_as(CT_NOTE, &f.n.base, "score 3", "range 30-27 is not valid");
    f.named[2].min = 0;
    f.named[2].name = "Jane Roe\x1b[2J";
    refused_as(CT_NOTE, &f.n.base, "score 3 name", "control character (0x1b)");
    f.named[2].name = "Jane: Roe";
    f.named[2].value = 99;
    refused_as(CT_NOTE, &f.n.base, "score 3", "Jane: Roe");
    f.named[2].value = 3;
    f.named[2].name = (char *)secret;
    payload_info_t info;
    accepted(CT_NOTE, &f.n.base, &info);
    f.n.session_date = "Jane Roe";
    refused_as(CT_NOTE, &f.n.base, "session date", "'Jane Roe'");
    f.n.session_date = "2026-11-16";
    f.n.next_session_date = "Jane: Roe";
    refused_as(CT_NOTE, &f.n.base, "next session date", NULL);
}

/* The PHQ-9 and GAD-7 have their own checked fields: a custom score may not stand in for
 * them under any spelling, and custom names are unique. */
static void test_note_score_names(void **state)
{
    (void)state;
    note_fx_t f;
    note_init(&f);
    payload_info_t info;
    f.n.other_scores = f.named_p;
    f.n.n_other_scores = 2;
    static const char *phq[] = {"PHQ9", "phq-9", "Phq 9", "P.H.Q._9", "phq9"};
    for (size_t i = 0; i < sizeof phq / sizeof phq[0]; i++) {
        f.named[1].name = (char *)phq[i];
        f.named[1].value = 30;
        f.named[1].max = 40;
        refused_as(CT_NOTE, &f.n.base, "score 2", "--phq9");
    }
    f.named[1].name = "GAD_7";
    refused_as(CT_NOTE, &f.n.base, "score 2", "--gad7");
    f.named[1].name = "PHQ-15";
    accepted(CT_NOTE, &f.n.base, &info);
    f.named[1].name = "pcl-5";          /* score 1 is PCL-5 */
    refused_as(CT_NOTE, &f.n.base, "score 2", "score 1");
    f.named[1].name = "PCL 5";
    refused_as(CT_NOTE, &f.n.base, "score 2", "score 1");
    f.named[1].name = "PCL-5 (self)";
    accepted(CT_NOTE, &f.n.base, &info);
}

/* Wrong input is quoted back whole (up to a sensible bound), not cut at 16 bytes. */
static void test_quoting(void **state)
{
    (void)state;
    note_fx_t f;
    note_init(&f);
    f.n.session_date = "2026-11-16T10:00Z";
    refused_as(CT_NOTE, &f.n.base, "session date", "'2026-11-16T10:00Z' is not a date");
    char long_date[200];
    memset(long_date, '9', sizeof long_date - 1);
    long_date[sizeof long_date - 1] = 0;
    f.n.session_date = long_date;
    char err[300];
    assert_int_equal(check(CT_NOTE, &f.n.base, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "99999'... is not a date"));
    assert_true(strlen(err) < 150);
}

/* The reason a text is refused is the actual problem, without quoting the text. */
static void test_text_reasons(void **state)
{
    (void)state;
    Liaison__Payload__TextMessage t = LIAISON__PAYLOAD__TEXT_MESSAGE__INIT;
    t.text = "Seen.\r\nBetter.";
    refused_as(CT_TEXT, &t.base, "text", "carriage return (0x0d) at line 1");
    t.text = "one\ntwo\nthree \x1b[31m";
    refused_as(CT_TEXT, &t.base, "text", "contains a control character (0x1b) at line 3");
    t.text = "one\n\xff";
    refused_as(CT_TEXT, &t.base, "text", "is not valid UTF-8");
    static char big[PAYLOAD_MAX_TEXT + 2];
    memset(big, 'x', PAYLOAD_MAX_TEXT + 1);
    t.text = big;
    refused_as(CT_TEXT, &t.base, "text", "is longer than 65536 bytes");
    t.text = "ok";
    t.subject = "two\nlines";
    refused_as(CT_TEXT, &t.base, "subject", "single line");
    char err[300];
    t.subject = "";
    t.text = "Seen.\r\nBetter.";
    assert_int_equal(check(CT_TEXT, &t.base, NULL, err, sizeof err), -1);
    assert_null(strstr(err, "  "));
    assert_null(strstr(err, "Seen"));
}

/* No medication change contradicts itself. */
static void test_med_coherent(void **state)
{
    (void)state;
    med_fx_t f;
    payload_info_t info;

    med_init(&f);   /* increase 50 mg -> 100 mg */
    f.m.previous_medication = "fluoxetine";
    refused_as(CT_MED, &f.m.base, "previous medication", "--from-drug");
    f.m.previous_medication = "";
    f.m.new_dose = "50 MG daily";
    refused_as(CT_MED, &f.m.base, "new dose", "nothing to increase");
    f.m.new_frequency = "twice daily";   /* same dose, more often: an increase */
    accepted(CT_MED, &f.m.base, &info);

    /* An increase raises the dose and a decrease lowers it, where the amounts compare:
     * an amount and the same unit followed by the same words, at the same frequency.
     * Doses that do not compare are not judged (NULL: accepted either way). */
    static const struct {
        const char *from, *to, *from_freq, *to_freq, *as_increase, *as_decrease;
    } dir[] = {
        {"50 mg daily", "25 mg daily", "", "", "lower than the previous dose, so this is no increase", NULL},
        {"50 mg daily", "  050.0 MG   Daily ", "", "", "the same amount as the previous dose",
         "the same amount as the previous dose"},
        {"50 mg daily", "50.5 mg daily", "", "", NULL, "higher than the previous dose, so this is no decrease"},
        {"50 mg daily", "100mg daily", "", "", NULL, "no decrease"},
        {"50 mg daily", "49.99 mg daily", "", "", "no increase", NULL},
        {"0.5 mg", "0.25 mg", "", "", "no increase", NULL},
        {"0.5 mg", "0.75 mg", "", "", NULL, "no decrease"},
        {"9 mg", "10 mg", "", "", NULL, "no decrease"}, /* more digits, more dose: not compared as text */
        {"50 mg", "100 mg", "daily", "DAILY", NULL, "no decrease"},        /* the same frequency */
        {"2x 10 mg", "3x 10 mg", "", "", NULL, "no decrease"},             /* amount 2, unit "x" */
        /* Not comparable: other units, other words, other frequencies, not plain amounts. */
        {"500 mg", "1 g", "", "", NULL, NULL},
        {"50 mg daily", "100 mg twice daily", "", "", NULL, NULL},
        {"50 mg", "100 mg", "daily", "every other day", NULL, NULL},
        {"20 mg/day", "40 mg/day", "", "", NULL, NULL},
        {"1-2 tablets", "3 tablets", "", "", NULL, NULL},
        {"1,000 mg", "2,000 mg", "", "", NULL, NULL},
        {"titrate to 40 mg", "60 mg", "", "", NULL, NULL},
        {".5 mg", "1 mg", "", "", NULL, NULL},
        {"1 tablet of 50 mg", "1 tablet of 100 mg", "", "", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof dir / sizeof dir[0]; i++) {
        for (int up = 0; up < 2; up++) {
            med_init(&f);
            f.m.action = up ? LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_INCREASE
                            : LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_DECREASE;
            f.m.previous_dose = (char *)dir[i].from;
            f.m.new_dose = (char *)dir[i].to;
            f.m.previous_frequency = (char *)dir[i].from_freq;
            f.m.new_frequency = (char *)dir[i].to_freq;
            const char *refusal = up ? dir[i].as_increase : dir[i].as_decrease;
            if (refusal)
                refused_as(CT_MED, &f.m.base, "new dose", refusal);
            else
                accepted(CT_MED, &f.m.base, &info);
        }
    }

    med_init(&f);
    f.m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_STOP;
    refused_as(CT_MED, &f.m.base, "new dose", "--dose");
    f.m.new_dose = "";
    accepted(CT_MED, &f.m.base, &info);
    f.m.new_frequency = "daily";
    refused_as(CT_MED, &f.m.base, "new frequency", "--frequency");
    f.m.new_frequency = "";
    f.m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_HOLD;
    accepted(CT_MED, &f.m.base, &info);
    f.m.new_dose = "100 mg";
    refused_as(CT_MED, &f.m.base, "new dose", "--dose");
    f.m.new_dose = "";
    f.m.previous_medication = "fluoxetine";
    refused_as(CT_MED, &f.m.base, "previous medication", "--from-drug");

    med_init(&f);
    f.m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_START;
    refused_as(CT_MED, &f.m.base, "previous dose", "--from");
    f.m.previous_dose = "";
    accepted(CT_MED, &f.m.base, &info);
    f.m.previous_frequency = "daily";
    refused_as(CT_MED, &f.m.base, "previous frequency", "--from-frequency");
    f.m.previous_frequency = "";
    f.m.previous_medication = "fluoxetine";
    refused_as(CT_MED, &f.m.base, "previous medication", "--from-drug");

    med_init(&f);
    f.m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_SWITCH;
    f.m.previous_medication = "Sertraline";
    refused_as(CT_MED, &f.m.base, "previous medication", "another medication");
    f.m.previous_medication = "fluoxetine";
    accepted(CT_MED, &f.m.base, &info);
    f.m.action = LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_DECREASE;
    refused_as(CT_MED, &f.m.base, "previous medication", "--from-drug");
}

/* ---- acknowledgements ---- */

static void test_ack(void **state)
{
    (void)state;
    Liaison__Payload__Acknowledgement a = LIAISON__PAYLOAD__ACKNOWLEDGEMENT__INIT;
    payload_info_t info;
    uint8_t hash[32];
    for (size_t i = 0; i < sizeof hash; i++)
        hash[i] = (uint8_t)(0xa0 + i);
    a.acknowledged_id = (ProtobufCBinaryData){16, rid};
    a.acknowledged_hash = (ProtobufCBinaryData){32, hash};
    a.comment = "Seen.";
    accepted(CT_ACK, &a.base, &info);
    assert_true(info.has_ref);
    assert_memory_equal(info.ref_id, rid, 16);
    assert_memory_equal(info.ref_hash, hash, 32);
    a.acknowledged_id.len = 15;
    refused(CT_ACK, &a.base, "acknowledged id");
    a.acknowledged_id.len = 16;
    a.acknowledged_hash.len = 0;
    refused(CT_ACK, &a.base, "acknowledged hash");
    a.acknowledged_hash.len = 31;
    refused(CT_ACK, &a.base, "acknowledged hash");
    a.acknowledged_hash.len = 32;
    static char big[PAYLOAD_MAX_COMMENT + 2];
    memset(big, 'c', PAYLOAD_MAX_COMMENT + 1);
    a.comment = big;
    refused(CT_ACK, &a.base, "comment");
}

/* ---- case reviews ---- */

/* PROTOCOL.md 8.5: the first 16 bytes of
 * H32(D("liaison-v1/review-id") || u8(len(opener)) || opener || salt), written out here. */
static void test_review_id_is_its_openers(void **state)
{
    (void)state;
    uint8_t in[21 + 1 + 10 + 16], h[32], id[16];
    memcpy(in, "liaison-v1/review-id", 21);
    in[21] = 10;
    memcpy(in + 22, "dr.alvarez", 10);
    memcpy(in + 32, salt, 16);
    assert_int_equal(crypto_generichash(h, 32, in, sizeof in, NULL, 0), 0);
    payload_review_id("dr.alvarez", salt, id);
    assert_memory_equal(id, h, 16);
    assert_true(payload_review_id_matches(h, "dr.alvarez", salt));
    assert_false(payload_review_id_matches(h, "rx.chen", salt));
    h[15] ^= 1;
    assert_false(payload_review_id_matches(h, "dr.alvarez", salt));
}

static void test_review(void **state)
{
    (void)state;
    review_fx_t f;
    review_init(&f);
    payload_info_t info;
    refused(CT_REVIEW, &f.r.base, "case review"); /* no kind */
    f.r.kind_case = LIAISON__PAYLOAD__CASE_REVIEW__KIND_OPEN;
    f.r.open = &f.open;
    accepted(CT_REVIEW, &f.r.base, &info);
    assert_int_equal(info.review_action, PAYLOAD_REVIEW_OPEN);
    assert_int_equal(info.n_participants, 2);
    assert_string_equal(info.participants[0], "dr.alvarez");
    assert_string_equal(info.patient, "P-1042");
    assert_memory_equal(info.ref_id, rid, 16);
    f.open.n_participants = 0;
    refused(CT_REVIEW, &f.r.base, "participants");
    f.open.n_participants = 32;
    refused(CT_REVIEW, &f.r.base, "participants");
    f.open.n_participants = 31;
    accepted(CT_REVIEW, &f.r.base, &info);
    f.open.n_participants = 2;
    f.who[1] = "Not An Id";
    refused(CT_REVIEW, &f.r.base, "participant");
    f.who[1] = "rx.chen";
    f.open.question = "";
    refused(CT_REVIEW, &f.r.base, "question");
    f.open.question = "q";
    assert_true(info.has_salt);
    assert_memory_equal(info.review_salt, salt, 16);
    f.open.salt.len = 0; /* the open's salt binds the review id to its opener (PROTOCOL.md 8.5) */
    refused(CT_REVIEW, &f.r.base, "salt");
    f.open.salt.len = 15;
    refused(CT_REVIEW, &f.r.base, "salt");
    f.open.salt.len = 16;
    f.r.review_id.len = 8;
    refused(CT_REVIEW, &f.r.base, "review id");
    f.r.review_id.len = 16;
    f.r.patient = NULL;
    refused(CT_REVIEW, &f.r.base, "patient");
    f.r.patient = &f.p;

    f.r.kind_case = LIAISON__PAYLOAD__CASE_REVIEW__KIND_REPLY;
    f.r.reply = &f.reply;
    accepted(CT_REVIEW, &f.r.base, &info);
    assert_int_equal(info.review_action, PAYLOAD_REVIEW_REPLY);
    f.reply.text = "";
    refused(CT_REVIEW, &f.r.base, "reply");

    f.r.kind_case = LIAISON__PAYLOAD__CASE_REVIEW__KIND_ADD;
    f.r.add = &f.add;
    accepted(CT_REVIEW, &f.r.base, &info);
    assert_int_equal(info.review_action, PAYLOAD_REVIEW_ADD);
    assert_string_equal(info.added, "dr.park");
    assert_false(info.has_salt); /* optional in an add... */
    f.add.review_salt = (ProtobufCBinaryData){16, salt};
    accepted(CT_REVIEW, &f.r.base, &info);
    assert_true(info.has_salt);
    f.add.review_salt.len = 5; /* ...but 16 bytes when given */
    refused(CT_REVIEW, &f.r.base, "review salt");
    f.add.review_salt.len = 0;
    /* The replies an add forwards: node-id authors, times oldest first, bounded. */
    static char big[PAYLOAD_MAX_TEXT + 1];
    memset(big, 'x', PAYLOAD_MAX_TEXT);
    Liaison__Payload__EarlierReply er[PAYLOAD_MAX_EARLIER + 1], *erp[PAYLOAD_MAX_EARLIER + 1];
    for (size_t i = 0; i < PAYLOAD_MAX_EARLIER + 1; i++) {
        liaison__payload__earlier_reply__init(&er[i]);
        er[i].author = "rx.chen";
        er[i].sent_ms = 1000 + i;
        er[i].text = "with food";
        erp[i] = &er[i];
    }
    f.add.earlier = erp;
    f.add.n_earlier = 2;
    accepted(CT_REVIEW, &f.r.base, &info);
    f.add.n_earlier = PAYLOAD_MAX_EARLIER;
    accepted(CT_REVIEW, &f.r.base, &info);
    f.add.n_earlier = PAYLOAD_MAX_EARLIER + 1;
    refused_as(CT_REVIEW, &f.r.base, "earlier replies", "at most 64");
    f.add.n_earlier = 2;
    er[1].sent_ms = 999;
    refused_as(CT_REVIEW, &f.r.base, "earlier reply time", "oldest first");
    er[1].sent_ms = 0;
    refused(CT_REVIEW, &f.r.base, "earlier reply time");
    er[1].sent_ms = 1001;
    er[1].author = "Rx Chen";
    refused(CT_REVIEW, &f.r.base, "earlier reply author");
    er[1].author = "rx.chen";
    er[1].text = "";
    refused(CT_REVIEW, &f.r.base, "earlier reply");
    for (size_t i = 0; i < 5; i++)
        er[i].text = big;   /* 64 KiB each: four fit in 256 KiB, five do not */
    f.add.n_earlier = 4;
    accepted(CT_REVIEW, &f.r.base, &info);
    f.add.n_earlier = 5;
    refused_as(CT_REVIEW, &f.r.base, "earlier replies", "bytes of text at most in all");
    f.add.n_earlier = 0;
    f.add.earlier = NULL;
    f.add.participant = "";
    refused(CT_REVIEW, &f.r.base, "participant");

    f.r.kind_case = LIAISON__PAYLOAD__CASE_REVIEW__KIND_CLOSE;
    f.r.close = &f.close;
    accepted(CT_REVIEW, &f.r.base, &info);
    assert_int_equal(info.review_action, PAYLOAD_REVIEW_CLOSE);
    f.items[0].owner = "Dr Alvarez";
    refused(CT_REVIEW, &f.r.base, "action owner");
    f.items[0].owner = "dr.alvarez";
    f.items[0].due_date = "next week";
    refused(CT_REVIEW, &f.r.base, "action due date");
    f.items[0].due_date = "";
    accepted(CT_REVIEW, &f.r.base, &info);
    f.close.n_actions = 33;
    refused(CT_REVIEW, &f.r.base, "actions");
    f.close.n_actions = 32;
    accepted(CT_REVIEW, &f.r.base, &info);
    f.close.decision = "";
    refused(CT_REVIEW, &f.r.base, "decision");
}

/* ---- out of memory ---- */

/* A payload over a few KB is unpacked partly on the heap. Without memory for it the
 * answer is -2, no verdict, never -1: a receiver refuses an invalid payload for good,
 * and a valid message would be lost to a moment without memory. With memory, the same
 * bytes are valid. */
static void test_out_of_memory_is_no_verdict(void **state)
{
    (void)state;
    char *text = malloc(PAYLOAD_MAX_TEXT + 1), err[300] = "";
    assert_non_null(text);
    memset(text, 'a', PAYLOAD_MAX_TEXT);
    text[PAYLOAD_MAX_TEXT] = 0;
    Liaison__Payload__TextMessage m = LIAISON__PAYLOAD__TEXT_MESSAGE__INIT;
    m.text = text;
    size_t n = liaison__payload__text_message__get_packed_size(&m);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    liaison__payload__text_message__pack(&m, buf);
    payload_info_t info;
    struct rlimit saved;
    if (!unit_memory_tight(&saved, 16 * 1024)) {
        free(buf);
        free(text);
        skip();
        return;
    }
    int rc = payload_validate(CT_TEXT, buf, n, &info, err, sizeof err);
    unit_memory_restore(&saved);
    assert_int_equal(rc, -2);
    assert_string_equal(err, "text: out of memory");
    assert_int_equal(payload_validate(CT_TEXT, buf, n, &info, err, sizeof err), 0);
    free(buf);
    free(text);
}

/* ---- bytes that are no payload at all ---- */

static void test_garbage_and_types(void **state)
{
    (void)state;
    char err[300];
    uint8_t junk[64];
    randombytes_buf(junk, sizeof junk);
    for (uint32_t ct = 1; ct <= 5; ct++)
        assert_int_equal(payload_validate(ct, junk, sizeof junk, NULL, err, sizeof err), -1);
    assert_int_equal(payload_validate(0, junk, 0, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "content type"));
    assert_int_equal(payload_validate(6, junk, 0, NULL, err, sizeof err), -1);
    uint8_t *big = calloc(1, LIAISON_MAX_PAYLOAD + 1);
    assert_non_null(big);
    assert_int_equal(payload_validate(CT_TEXT, big, LIAISON_MAX_PAYLOAD + 1, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "payload"));
    free(big);
    assert_true(payload_known_type(5));
    assert_false(payload_known_type(6));
    assert_false(payload_known_type(0));
    assert_string_equal(payload_type_name(3), "medication-change");
    assert_int_equal(payload_type_from_name("note"), 2);
    assert_int_equal(payload_type_from_name("progress-note"), 2);
    assert_int_equal(payload_type_from_name("review"), 5);
    assert_int_equal(payload_type_from_name("fax"), 0);
}

static void test_enum_names(void **state)
{
    (void)state;
    assert_int_equal(payload_enum_value("modality", "CBT"), 1);
    assert_int_equal(payload_enum_value("modality", "trauma_focused"), 4);
    assert_int_equal(payload_enum_value("modality", "Trauma-Focused"), 4);
    assert_int_equal(payload_enum_value("risk", "extreme"), -1);
    assert_int_equal(payload_enum_value("risk", "none"), 1);
    assert_int_equal(payload_enum_value("action", "switch"), 5);
    assert_int_equal(payload_enum_value("urgency", "routine"), 0);
    assert_int_equal(payload_enum_value("nope", "x"), -1);
    const char *kinds[] = {"modality", "risk", "action", "urgency"};
    for (size_t k = 0; k < 4; k++)
        for (int v = 0; v < 8; v++) {
            const char *n = payload_enum_name(kinds[k], v);
            if (n)
                assert_int_equal(payload_enum_value(kinds[k], n), v);
        }
    assert_null(payload_enum_name("risk", 0));
    assert_null(payload_enum_name("risk", 99));
    assert_true(payload_valid_patient_id("MRN:00042_a.b-c"));
    assert_false(payload_valid_patient_id(""));
    assert_false(payload_valid_patient_id("P/1"));
    assert_true(payload_valid_date("2000-02-29"));
    assert_false(payload_valid_date("1900-02-29"));
}

/* payload_patient: the patient id of a stored payload, without the rules of the day. */
static int patient_of(uint32_t ct, const ProtobufCMessage *m, char out[PAYLOAD_MAX_PATIENT_ID + 1])
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    protobuf_c_message_pack(m, buf);
    int rc = payload_patient(ct, buf, n, out);
    free(buf);
    return rc;
}

static void test_patient_of_stored_payloads(void **state)
{
    (void)state;
    char id[PAYLOAD_MAX_PATIENT_ID + 1];
    note_fx_t nf;
    note_init(&nf);
    assert_int_equal(patient_of(CT_NOTE, &nf.n.base, id), 1);
    assert_string_equal(id, "P-1042");
    med_fx_t mf;
    med_init(&mf);
    mf.p.id = "mrn:77";
    mf.m.new_dose = "1 mg daily"; /* an "increase" to a lower dose: refused today, its patient still read */
    char err[300];
    assert_int_equal(check(CT_MED, &mf.m.base, NULL, err, sizeof err), -1);
    assert_int_equal(patient_of(CT_MED, &mf.m.base, id), 1);
    assert_string_equal(id, "mrn:77");
    review_fx_t rf;
    review_init(&rf);
    assert_int_equal(patient_of(CT_REVIEW, &rf.r.base, id), 1);
    assert_string_equal(id, "P-1042");
    rf.p.id = "P/1"; /* not a patient id */
    assert_int_equal(patient_of(CT_REVIEW, &rf.r.base, id), 0);
    assert_string_equal(id, "");
    rf.r.patient = NULL;
    assert_int_equal(patient_of(CT_REVIEW, &rf.r.base, id), 0);
    /* Types without a patient, and what does not decode. */
    Liaison__Payload__TextMessage tm = LIAISON__PAYLOAD__TEXT_MESSAGE__INIT;
    tm.text = "hello";
    assert_int_equal(patient_of(CT_TEXT, &tm.base, id), 0);
    uint8_t junk[3] = {0xff, 0xff, 0xff};
    assert_int_equal(payload_patient(CT_NOTE, junk, sizeof junk, id), -1);
    assert_int_equal(payload_patient(CT_NOTE, junk, LIAISON_MAX_PAYLOAD + 1, id), -1);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    unit_memory_pin();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_of_memory_is_no_verdict),
        cmocka_unit_test(test_text),        cmocka_unit_test(test_note_valid), cmocka_unit_test(test_note_refusals),
        cmocka_unit_test(test_blank_required_fields),
        cmocka_unit_test(test_med),         cmocka_unit_test(test_ack),        cmocka_unit_test(test_review_id_is_its_openers),
        cmocka_unit_test(test_review),
        cmocka_unit_test(test_note_errors_keep_text_after_colon), cmocka_unit_test(test_note_score_names),
        cmocka_unit_test(test_quoting),     cmocka_unit_test(test_text_reasons), cmocka_unit_test(test_med_coherent),
        cmocka_unit_test(test_garbage_and_types), cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_patient_of_stored_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
