/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the validation rules of every payload type and the names of their enumerations. */
#include "payload.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "arena.h"
#include "domains.h"
#include "payload.pb-c.h"
#include "text.h"
#include "wire.pb-c.h"

typedef Liaison__Payload__PatientRef patient_ref_t;

static const struct {
    uint32_t ct;
    const char *name;
} type_names[] = {
    {LIAISON__WIRE__CONTENT_TYPE__CONTENT_TEXT, "text"},
    {LIAISON__WIRE__CONTENT_TYPE__CONTENT_PROGRESS_NOTE, "progress-note"},
    {LIAISON__WIRE__CONTENT_TYPE__CONTENT_MEDICATION_CHANGE, "medication-change"},
    {LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK, "acknowledgement"},
    {LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW, "case-review"},
};

bool payload_known_type(uint32_t ct)
{
    return ct >= LIAISON__WIRE__CONTENT_TYPE__CONTENT_TEXT && ct <= LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW;
}

const char *payload_type_name(uint32_t ct)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (type_names[i].ct == ct)
            return type_names[i].name;
    return "unknown";
}

uint32_t payload_type_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strcmp(type_names[i].name, name) == 0)
            return type_names[i].ct;
    /* Short forms people type. */
    if (strcmp(name, "note") == 0)
        return LIAISON__WIRE__CONTENT_TYPE__CONTENT_PROGRESS_NOTE;
    if (strcmp(name, "med-change") == 0)
        return LIAISON__WIRE__CONTENT_TYPE__CONTENT_MEDICATION_CHANGE;
    if (strcmp(name, "ack") == 0)
        return LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK;
    if (strcmp(name, "review") == 0)
        return LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW;
    return 0;
}

/* ---- enumeration names ---- */

typedef struct enum_table {
    const char *kind;
    const char *names[8];   /* index = value; NULL = no name */
    const char *joined;
} enum_table_t;

static const enum_table_t enums[] = {
    {"modality", {NULL, "cbt", "dbt", "psychodynamic", "trauma-focused", "family", "group", "other"},
     "cbt, dbt, psychodynamic, trauma-focused, family, group, other"},
    {"risk", {NULL, "none", "low", "moderate", "high"}, "none, low, moderate, high"},
    {"action", {NULL, "start", "stop", "increase", "decrease", "switch", "hold"},
     "start, stop, increase, decrease, switch, hold"},
    {"urgency", {"routine", "urgent"}, "routine, urgent"},
};

static const enum_table_t *enum_find(const char *kind)
{
    for (size_t i = 0; i < sizeof enums / sizeof enums[0]; i++)
        if (strcmp(enums[i].kind, kind) == 0)
            return &enums[i];
    return NULL;
}

const char *payload_enum_name(const char *kind, int value)
{
    const enum_table_t *t = enum_find(kind);
    if (!t || value < 0 || value >= 8)
        return NULL;
    return t->names[value];
}

int payload_enum_value(const char *kind, const char *name)
{
    const enum_table_t *t = enum_find(kind);
    if (!t || !name)
        return -1;
    for (int v = 0; v < 8; v++) {
        const char *n = t->names[v];
        if (!n || strlen(n) != strlen(name))
            continue;
        bool same = true;
        for (size_t i = 0; n[i] && same; i++) {
            char a = n[i], b = name[i];
            if (b == '_')
                b = '-';
            if (b >= 'A' && b <= 'Z')
                b = (char)(b - 'A' + 'a');
            same = a == b;
        }
        if (same)
            return v;
    }
    return -1;
}

const char *payload_enum_names(const char *kind)
{
    const enum_table_t *t = enum_find(kind);
    return t ? t->joined : "";
}

/* ---- field rules ---- */

bool payload_valid_patient_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PAYLOAD_MAX_PATIENT_ID)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
static const char *const month_names[] = {"January", "February", "March",     "April",   "May",      "June",
                                          "July",    "August",   "September", "October", "November", "December"};

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool payload_date_problem(const char *s, char *why, size_t whylen)
{
    bool shaped = strlen(s) == 10 && s[4] == '-' && s[7] == '-';
    for (int i = 0; shaped && i < 10; i++)
        shaped = i == 4 || i == 7 || (s[i] >= '0' && s[i] <= '9');
    if (!shaped) {
        snprintf(why, whylen, "give YYYY-MM-DD");
        return false;
    }
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1900 || y > 2999) {
        snprintf(why, whylen, "the year must be 1900 to 2999; give YYYY-MM-DD");
        return false;
    }
    if (m < 1 || m > 12) {
        snprintf(why, whylen, "there is no month %02d: give YYYY-MM-DD, the month 01 to 12", m);
        return false;
    }
    int last = month_days[m - 1] + (m == 2 && leap_year(y));
    if (d < 1) {
        snprintf(why, whylen, "there is no day 00: give YYYY-MM-DD, the day 01 to %d", last);
        return false;
    }
    if (d > last) {
        if (m == 2 && d == 29)
            snprintf(why, whylen, "%d is not a leap year: February %d has 28 days", y, y);
        else
            snprintf(why, whylen, "%s %d has %d days", month_names[m - 1], y, last);
        return false;
    }
    return true;
}

bool payload_valid_date(const char *s)
{
    char why[96];
    return payload_date_problem(s, why, sizeof why);
}

/* Each check returns false after writing "FIELD: what is wrong" into err. */
typedef struct check {
    char *err;
    size_t errlen;
} check_t;

__attribute__((format(printf, 2, 3))) static bool fail(check_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return false;
}

/* Writes s into buf as a quoted value for an error message: at most 64 bytes, then
 * "..." if there was more; bytes that are not printable ASCII are shown as '?'. */
static const char *quoted(const char *s, char buf[static 72])
{
    size_t i = 0, o = 0;
    buf[o++] = '\'';
    for (; s[i] && i < 64; i++)
        buf[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    buf[o++] = '\'';
    if (s[i])
        buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
    buf[o] = '\0';
    return buf;
}

/* True if s has nothing but white space (space, tab, newline, CR, U+00A0): such a
 * value says nothing, so a required field must have more ("--drug ' '" is no drug). */
static bool blank(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            continue;
        if (p[0] == 0xC2 && p[1] == 0xA0) {
            p++;
            continue;
        }
        return false;
    }
    return true;
}

static bool check_text(check_t *c, const char *field, const char *s, size_t max, bool required, bool multiline)
{
    char why[96];
    if (required && blank(s))
        return fail(c, "%s: required%s", field, s[0] ? " (it is only white space)" : "");
    if (!text_check_utf8(s, max, multiline, why, sizeof why))
        return fail(c, "%s: %s", field, why);
    return true;
}

static bool check_date(check_t *c, const char *field, const char *s, bool required)
{
    char q[72];
    if (!s[0])
        return required ? fail(c, "%s: required (YYYY-MM-DD)", field) : true;
    char why[96];
    if (!payload_date_problem(s, why, sizeof why))
        return fail(c, "%s: %s is not a date (%s)", field, quoted(s, q), why);
    return true;
}

static bool check_enum(check_t *c, const char *field, const char *kind, int value, bool required)
{
    if (value == 0 && required && !payload_enum_name(kind, 0))
        return fail(c, "%s: required (one of: %s)", field, payload_enum_names(kind));
    if (value != 0 && !payload_enum_name(kind, value))
        return fail(c, "%s: unknown value %d (one of: %s)", field, value, payload_enum_names(kind));
    return true;
}

static bool check_patient(check_t *c, const patient_ref_t *p, payload_info_t *info)
{
    if (!p)
        return fail(c, "patient: required");
    if (!payload_valid_patient_id(p->id))
        return fail(c, "patient: the id must be 1..%u characters of A-Z a-z 0-9 . _ : -", PAYLOAD_MAX_PATIENT_ID);
    if (!check_text(c, "patient label", p->label, PAYLOAD_MAX_LINE, false, false))
        return false;
    snprintf(info->patient, sizeof info->patient, "%s", p->id);
    return true;
}

static bool check_score(check_t *c, const char *field, const Liaison__Payload__Score *s, uint32_t max)
{
    if (s && s->value > max)
        return fail(c, "%s: %u is out of range (0-%u)", field, s->value, max);
    return true;
}

static bool check_node_id(check_t *c, const char *field, const char *id)
{
    char q[72];
    if (!id[0])
        return fail(c, "%s: required (a node id)", field);
    if (!text_valid_id(id))
        return fail(c, "%s: %s is not a valid node id", field, quoted(id, q));
    return true;
}

/* A score name as compared for uniqueness: ASCII letters lower-cased, ASCII spaces and
 * punctuation dropped, other bytes kept ("PHQ-9", "phq 9" and "Phq_9" are all "phq9"). */
static void score_key(const char *name, char out[static 65])
{
    size_t o = 0;
    for (size_t i = 0; name[i] && o < 64; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch >= 'A' && ch <= 'Z')
            out[o++] = (char)(ch - 'A' + 'a');
        else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch >= 0x80)
            out[o++] = (char)ch;
    }
    out[o] = '\0';
}

/* ---- one function per type ---- */

static bool v_text(check_t *c, const Liaison__Payload__TextMessage *m)
{
    return check_text(c, "subject", m->subject, PAYLOAD_MAX_SUBJECT, false, false) &&
           check_text(c, "text", m->text, PAYLOAD_MAX_TEXT, true, true);
}

static bool v_note(check_t *c, const Liaison__Payload__ProgressNote *m, payload_info_t *info)
{
    if (!check_patient(c, m->patient, info) || !check_date(c, "session date", m->session_date, true) ||
        !check_enum(c, "modality", "modality", (int)m->modality, false) ||
        !check_text(c, "narrative", m->narrative, PAYLOAD_MAX_TEXT, true, true) ||
        !check_score(c, "phq9", m->phq9, 27) || !check_score(c, "gad7", m->gad7, 21))
        return false;
    if (m->n_other_scores > PAYLOAD_MAX_SCORES)
        return fail(c, "other scores: %zu, at most %u", m->n_other_scores, PAYLOAD_MAX_SCORES);
    char keys[PAYLOAD_MAX_SCORES][65];
    for (size_t i = 0; i < m->n_other_scores; i++) {
        /* The field is named by position: a score's name is free text (it could name a
         * person) and the part before the ':' is audited and sent to the peer. */
        const Liaison__Payload__NamedScore *s = m->other_scores[i];
        char field[32];
        snprintf(field, sizeof field, "score %zu name", i + 1);
        if (!check_text(c, field, s->name, 64, true, false))
            return false;
        score_key(s->name, keys[i]);
        if (strcmp(keys[i], "phq9") == 0 || strcmp(keys[i], "gad7") == 0) {
            bool phq = keys[i][0] == 'p';
            return fail(c, "score %zu: '%s' is the %s, which has its own field checked against 0-%u (--%s)", i + 1,
                        s->name, phq ? "PHQ-9" : "GAD-7", phq ? 27u : 21u, phq ? "phq9" : "gad7");
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(keys[i], keys[j]) == 0)
                return fail(c, "score %zu: '%s' is the same name as score %zu (names must differ, ignoring case,"
                               " spaces and punctuation)", i + 1, s->name, j + 1);
        if (s->max > 1000 || s->min > s->max)
            return fail(c, "score %zu: '%s' range %u-%u is not valid (0 <= min <= max <= 1000)", i + 1, s->name,
                        s->min, s->max);
        if (s->value < s->min || s->value > s->max)
            return fail(c, "score %zu: '%s' %u is out of range (%u-%u)", i + 1, s->name, s->value, s->min, s->max);
    }
    if (m->risk) {
        if (m->risk->level == LIAISON__PAYLOAD__RISK_LEVEL__RISK_UNSPECIFIED)
            return fail(c, "risk: a level is required (one of: %s)", payload_enum_names("risk"));
        if (!check_enum(c, "risk", "risk", (int)m->risk->level, true) ||
            !check_text(c, "risk text", m->risk->text, PAYLOAD_MAX_FIELD, false, true))
            return false;
    }
    return check_text(c, "adherence", m->adherence, PAYLOAD_MAX_FIELD, false, true) &&
           check_text(c, "side effects", m->side_effects, PAYLOAD_MAX_FIELD, false, true) &&
           check_text(c, "goals", m->goals, PAYLOAD_MAX_FIELD, false, true) &&
           check_date(c, "next session date", m->next_session_date, false);
}

/* A dose that starts with a plain amount and a unit ("20 mg", "37.5mg daily",
 * " 0.25 MG at night "): the amount's digits without leading zeros (int_*) and its
 * fraction without trailing zeros (frac_*), the unit's letters, and what follows
 * (rest, trimmed). Anything else ("1-2 tablets", "titrate to 40 mg", "1,000 mg") is not
 * compared (docs/PROTOCOL.md 8.3). */
typedef struct dose {
    const char *int_s, *frac_s, *unit, *rest;
    size_t int_n, frac_n, unit_n;
} dose_t;

static bool ascii_space(char ch) { return ch == ' ' || ch == '\t'; }
static bool ascii_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool ascii_alpha(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }

static bool dose_parse(const char *s, dose_t *d)
{
    while (ascii_space(*s))
        s++;
    const char *p = s;
    while (ascii_digit(*p))
        p++;
    if (p == s)
        return false;
    while (*s == '0' && s + 1 < p)
        s++;
    d->int_s = s;
    d->int_n = (size_t)(p - s);
    d->frac_s = p;
    d->frac_n = 0;
    if (*p == '.') {
        const char *f = ++p;
        while (ascii_digit(*p))
            p++;
        if (p == f)
            return false;
        d->frac_s = f;
        d->frac_n = (size_t)(p - f);
        while (d->frac_n && f[d->frac_n - 1] == '0')
            d->frac_n--;
    }
    while (ascii_space(*p))
        p++;
    d->unit = p;
    while (ascii_alpha(*p))
        p++;
    d->unit_n = (size_t)(p - d->unit);
    if (d->unit_n == 0 || (*p && !ascii_space(*p)))
        return false; /* "20 mg/day", "2x": not a plain amount and unit */
    d->rest = p;
    return true;
}

/* The rest of two doses is the same: equal ignoring ASCII case, with runs of spaces and
 * tabs counted as one and none at either end. */
static bool dose_same_rest(const char *a, const char *b)
{
    for (;;) {
        while (ascii_space(*a) && (a[1] == '\0' || ascii_space(a[1])))
            a++;
        while (ascii_space(*b) && (b[1] == '\0' || ascii_space(b[1])))
            b++;
        if (*a == '\0' || *b == '\0')
            return *a == *b;
        if (ascii_space(*a) && ascii_space(*b)) {
            a++, b++;
            continue;
        }
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y)
            return false;
        a++, b++;
    }
}

/* -1, 0, 1 as amount a is below, equal to or above amount b. */
static int dose_cmp(const dose_t *a, const dose_t *b)
{
    if (a->int_n != b->int_n)
        return a->int_n < b->int_n ? -1 : 1;
    int r = memcmp(a->int_s, b->int_s, a->int_n);
    if (r)
        return r < 0 ? -1 : 1;
    size_t n = a->frac_n < b->frac_n ? a->frac_n : b->frac_n;
    if ((r = memcmp(a->frac_s, b->frac_s, n)) != 0)
        return r < 0 ? -1 : 1;
    return a->frac_n == b->frac_n ? 0 : a->frac_n < b->frac_n ? -1 : 1;
}

/* An increase must raise the dose and a decrease lower it, where the two can be
 * compared: amounts in the same unit followed by the same words ("50 mg daily" to
 * "100 mg daily"), at the same frequency. "20 mg daily" to "10 mg twice daily" may
 * raise the day's total and is not judged here; neither is "500 mg" to "1 g". */
static bool check_direction(check_t *c, const Liaison__Payload__MedicationChange *m, bool increase)
{
    dose_t from, to;
    if (strcasecmp(m->previous_frequency, m->new_frequency) != 0 || !dose_parse(m->previous_dose, &from) ||
        !dose_parse(m->new_dose, &to) || from.unit_n != to.unit_n || strncasecmp(from.unit, to.unit, to.unit_n) != 0 ||
        !dose_same_rest(from.rest, to.rest))
        return true;
    int r = dose_cmp(&to, &from);
    if (increase && r <= 0)
        return fail(c, "new dose: %s the previous dose, so this is no increase (use --action decrease, or check --dose"
                       " and --from)",
                    r < 0 ? "lower than" : "the same amount as");
    if (!increase && r >= 0)
        return fail(c, "new dose: %s the previous dose, so this is no decrease (use --action increase, or check --dose"
                       " and --from)",
                    r > 0 ? "higher than" : "the same amount as");
    return true;
}

static bool v_med(check_t *c, const Liaison__Payload__MedicationChange *m, payload_info_t *info)
{
    if (!check_patient(c, m->patient, info) ||
        !check_text(c, "medication", m->medication, PAYLOAD_MAX_LINE, true, false) ||
        !check_enum(c, "action", "action", (int)m->action, true) ||
        !check_text(c, "previous dose", m->previous_dose, PAYLOAD_MAX_LINE, false, false) ||
        !check_text(c, "new dose", m->new_dose, PAYLOAD_MAX_LINE, false, false) ||
        !check_text(c, "previous frequency", m->previous_frequency, 64, false, false) ||
        !check_text(c, "new frequency", m->new_frequency, 64, false, false) ||
        !check_text(c, "previous medication", m->previous_medication, PAYLOAD_MAX_LINE, false, false) ||
        !check_date(c, "effective date", m->effective_date, true) ||
        !check_text(c, "reason", m->reason, PAYLOAD_MAX_FIELD, true, true) ||
        !check_text(c, "monitor", m->monitor, PAYLOAD_MAX_FIELD, false, true) ||
        !check_enum(c, "urgency", "urgency", (int)m->urgency, false))
        return false;
    /* What each action says, so that no order contradicts itself: a start has no
     * previous dose, a stop or hold no new one, only a switch names another drug. */
    int a = (int)m->action;
    bool start = a == LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_START;
    bool sw = a == LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_SWITCH;
    bool up_down = a == LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_INCREASE ||
                   a == LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_DECREASE;
    bool has_new = start || up_down || sw;  /* stop and hold leave no dose to give */
    const char *an = payload_enum_name("action", a);
    if (has_new && blank(m->new_dose))
        return fail(c, "new dose: required to %s a medication (--dose)", an);
    if (!has_new && m->new_dose[0])
        return fail(c, "new dose: not allowed to %s a medication, which leaves no new dose (drop --dose)", an);
    if (!has_new && m->new_frequency[0])
        return fail(c, "new frequency: not allowed to %s a medication, which leaves no new dose (drop --frequency)",
                    an);
    if (!start && blank(m->previous_dose))
        return fail(c, "previous dose: required to %s a medication (--from)", an);
    if (start && m->previous_dose[0])
        return fail(c, "previous dose: not allowed to start a medication, which has none (drop --from; for a"
                       " medication already taken use increase, decrease or switch)");
    if (start && m->previous_frequency[0])
        return fail(c, "previous frequency: not allowed to start a medication, which has none (drop"
                       " --from-frequency)");
    if (sw && blank(m->previous_medication))
        return fail(c, "previous medication: required for a switch (--from-drug)");
    if (!sw && m->previous_medication[0])
        return fail(c, "previous medication: only a switch names a previous medication (drop --from-drug, or use"
                       " --action switch)");
    if (sw && strcasecmp(m->previous_medication, m->medication) == 0)
        return fail(c, "previous medication: a switch goes to another medication, not the same one (--from-drug,"
                       " --drug)");
    if (up_down && strcasecmp(m->previous_dose, m->new_dose) == 0 &&
        strcasecmp(m->previous_frequency, m->new_frequency) == 0)
        return fail(c, "new dose: the same as the previous dose and frequency, so nothing to %s (--dose, --from, --frequency)", an);
    if (up_down && !check_direction(c, m, a == LIAISON__PAYLOAD__MEDICATION_ACTION__ACTION_INCREASE))
        return false;
    info->ack_required = !m->ack_optional;
    info->urgent = m->urgency == LIAISON__PAYLOAD__URGENCY__URGENCY_URGENT;
    return true;
}

static bool v_ack(check_t *c, const Liaison__Payload__Acknowledgement *m, payload_info_t *info)
{
    if (m->acknowledged_id.len != LIAISON_MSGID_BYTES)
        return fail(c, "acknowledged id: must be %u bytes", LIAISON_MSGID_BYTES);
    if (m->acknowledged_hash.len != LIAISON_HASH_BYTES)
        return fail(c, "acknowledged hash: must be %u bytes", LIAISON_HASH_BYTES);
    if (!check_text(c, "comment", m->comment, PAYLOAD_MAX_COMMENT, false, true))
        return false;
    memcpy(info->ref_id, m->acknowledged_id.data, LIAISON_MSGID_BYTES);
    memcpy(info->ref_hash, m->acknowledged_hash.data, LIAISON_HASH_BYTES);
    info->has_ref = true;
    return true;
}

void payload_review_id(const char *opener, const uint8_t salt[static PAYLOAD_REVIEW_SALT_BYTES],
                       uint8_t id[static LIAISON_MSGID_BYTES])
{
    uint8_t h[LIAISON_HASH_BYTES];
    size_t olen = strlen(opener);
    uint8_t len8 = (uint8_t)(olen > 255 ? 255 : olen); /* node ids are at most 64 bytes */
    crypto_generichash_state st;
    if (crypto_generichash_init(&st, NULL, 0, sizeof h) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *)LIAISON_DOMAIN_REVIEW_ID, sizeof LIAISON_DOMAIN_REVIEW_ID) != 0 ||
        crypto_generichash_update(&st, &len8, 1) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *)opener, len8) != 0 ||
        crypto_generichash_update(&st, salt, PAYLOAD_REVIEW_SALT_BYTES) != 0 ||
        crypto_generichash_final(&st, h, sizeof h) != 0)
        memset(h, 0, sizeof h);
    memcpy(id, h, LIAISON_MSGID_BYTES);
}

bool payload_review_id_matches(const uint8_t id[static LIAISON_MSGID_BYTES], const char *opener,
                               const uint8_t salt[static PAYLOAD_REVIEW_SALT_BYTES])
{
    uint8_t want[LIAISON_MSGID_BYTES];
    payload_review_id(opener, salt, want);
    return sodium_memcmp(want, id, LIAISON_MSGID_BYTES) == 0;
}

static bool v_review(check_t *c, const Liaison__Payload__CaseReview *m, payload_info_t *info)
{
    if (m->review_id.len != LIAISON_MSGID_BYTES)
        return fail(c, "review id: must be %u bytes", LIAISON_MSGID_BYTES);
    if (!check_patient(c, m->patient, info))
        return false;
    memcpy(info->ref_id, m->review_id.data, LIAISON_MSGID_BYTES);
    info->has_ref = true;
    switch (m->kind_case) {
    case LIAISON__PAYLOAD__CASE_REVIEW__KIND_OPEN: {
        const Liaison__Payload__ReviewOpen *o = m->open;
        if (!check_text(c, "question", o->question, PAYLOAD_MAX_FIELD, true, true))
            return false;
        if (o->n_participants == 0 || o->n_participants >= LIAISON_MAX_RECIPIENTS)
            return fail(c, "participants: 1 to %u required", LIAISON_MAX_RECIPIENTS - 1);
        for (size_t i = 0; i < o->n_participants; i++) {
            if (!check_node_id(c, "participant", o->participants[i]))
                return false;
            snprintf(info->participants[i], sizeof info->participants[i], "%s", o->participants[i]);
        }
        info->n_participants = o->n_participants;
        if (o->salt.len != PAYLOAD_REVIEW_SALT_BYTES)
            return fail(c, "salt: must be %u bytes", PAYLOAD_REVIEW_SALT_BYTES);
        memcpy(info->review_salt, o->salt.data, PAYLOAD_REVIEW_SALT_BYTES);
        info->has_salt = true;
        info->review_action = PAYLOAD_REVIEW_OPEN;
        return true;
    }
    case LIAISON__PAYLOAD__CASE_REVIEW__KIND_REPLY:
        info->review_action = PAYLOAD_REVIEW_REPLY;
        return check_text(c, "reply", m->reply->text, PAYLOAD_MAX_TEXT, true, true);
    case LIAISON__PAYLOAD__CASE_REVIEW__KIND_ADD:
        if (!check_node_id(c, "participant", m->add->participant) ||
            (m->add->opened_by[0] && !check_node_id(c, "opened by", m->add->opened_by)) ||
            !check_text(c, "question", m->add->question, PAYLOAD_MAX_FIELD, false, true))
            return false;
        if (m->add->n_earlier > PAYLOAD_MAX_EARLIER)
            return fail(c, "earlier replies: at most %u", PAYLOAD_MAX_EARLIER);
        size_t total = 0;
        for (size_t i = 0; i < m->add->n_earlier; i++) {
            const Liaison__Payload__EarlierReply *e = m->add->earlier[i];
            if (!check_node_id(c, "earlier reply author", e->author) ||
                !check_text(c, "earlier reply", e->text, PAYLOAD_MAX_TEXT, true, true))
                return false;
            if (e->sent_ms == 0 || (i > 0 && e->sent_ms < m->add->earlier[i - 1]->sent_ms))
                return fail(c, "earlier reply time: required, oldest first");
            total += strlen(e->text);
        }
        if (total > PAYLOAD_MAX_EARLIER_TEXT)
            return fail(c, "earlier replies: %u bytes of text at most in all", PAYLOAD_MAX_EARLIER_TEXT);
        if (m->add->review_salt.len != 0 && m->add->review_salt.len != PAYLOAD_REVIEW_SALT_BYTES)
            return fail(c, "review salt: must be empty or %u bytes", PAYLOAD_REVIEW_SALT_BYTES);
        if (m->add->review_salt.len) {
            memcpy(info->review_salt, m->add->review_salt.data, PAYLOAD_REVIEW_SALT_BYTES);
            info->has_salt = true;
        }
        snprintf(info->added, sizeof info->added, "%s", m->add->participant);
        snprintf(info->opener, sizeof info->opener, "%s", m->add->opened_by);
        info->review_action = PAYLOAD_REVIEW_ADD;
        return true;
    case LIAISON__PAYLOAD__CASE_REVIEW__KIND_CLOSE: {
        const Liaison__Payload__ReviewClose *cl = m->close;
        if (!check_text(c, "decision", cl->decision, PAYLOAD_MAX_FIELD, true, true))
            return false;
        if (cl->n_actions > PAYLOAD_MAX_ACTIONS)
            return fail(c, "actions: %zu, at most %u", cl->n_actions, PAYLOAD_MAX_ACTIONS);
        for (size_t i = 0; i < cl->n_actions; i++) {
            const Liaison__Payload__ActionItem *a = cl->actions[i];
            if (!check_node_id(c, "action owner", a->owner) ||
                !check_text(c, "action", a->text, 512, true, false) ||
                !check_date(c, "action due date", a->due_date, false))
                return false;
        }
        _Static_assert(PAYLOAD_MAX_ACTIONS <= LIAISON_MAX_RECIPIENTS, "every action owner needs a slot");
        for (size_t i = 0; i < cl->n_actions; i++)
            snprintf(info->participants[i], sizeof info->participants[i], "%s", cl->actions[i]->owner);
        info->n_participants = cl->n_actions;
        info->review_action = PAYLOAD_REVIEW_CLOSE;
        return true;
    }
    default:
        return fail(c, "case review: one of open, reply, add or close is required");
    }
}

#define PAYLOAD_ARENA_BYTES 8192u /* a 4 KB payload unpacks within it; a larger one spills to malloc */

/* Unpacks with protobuf-c into the arena, runs the check, frees (the arena is wiped
 * and released by payload_validate: the payload is clinical content in the clear). */
#define VALIDATE(type, fn, ...)                                                                          \
    do {                                                                                                 \
        Liaison__Payload__##type *m_ = liaison__payload__##fn##__unpack(&arena.alloc, len, data);        \
        if (!m_ && arena.failed) { /* no verdict on the payload */                                       \
            fail(&c, "%s: out of memory", payload_type_name(ct));                                        \
            oom = true;                                                                                  \
            break;                                                                                       \
        }                                                                                                \
        if (!m_) {                                                                                       \
            fail(&c, "%s: not a valid " #type " message", payload_type_name(ct));                        \
            break;                                                                                       \
        }                                                                                                \
        ok = check_##fn(&c, m_, ##__VA_ARGS__);                                                          \
        liaison__payload__##fn##__free_unpacked(m_, &arena.alloc);                                       \
    } while (0)

#define check_text_message(c, m) v_text(c, m)
#define check_progress_note(c, m, i) v_note(c, m, i)
#define check_medication_change(c, m, i) v_med(c, m, i)
#define check_acknowledgement(c, m, i) v_ack(c, m, i)
#define check_case_review(c, m, i) v_review(c, m, i)

/* The patient of an unpacked payload of type `type`: its PatientRef `patient`. */
#define PATIENT_OF(type, fn)                                                                             \
    do {                                                                                                 \
        Liaison__Payload__##type *m_ = liaison__payload__##fn##__unpack(&arena.alloc, len, data);        \
        rc = m_ ? 0 : -1;                                                                                \
        if (m_ && m_->patient && payload_valid_patient_id(m_->patient->id)) {                            \
            snprintf(out, PAYLOAD_MAX_PATIENT_ID + 1, "%s", m_->patient->id);                            \
            rc = 1;                                                                                      \
        }                                                                                                \
        if (m_)                                                                                          \
            liaison__payload__##fn##__free_unpacked(m_, &arena.alloc);                                   \
    } while (0)

int payload_patient(uint32_t ct, const uint8_t *data, size_t len, char out[PAYLOAD_MAX_PATIENT_ID + 1])
{
    out[0] = 0;
    if (len > LIAISON_MAX_PAYLOAD)
        return -1;
    int rc = 0;
    _Alignas(16) uint8_t abuf[PAYLOAD_ARENA_BYTES];
    pb_arena_t arena;
    pb_arena_init(&arena, abuf, sizeof abuf);
    switch (ct) {
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_PROGRESS_NOTE: PATIENT_OF(ProgressNote, progress_note); break;
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_MEDICATION_CHANGE: PATIENT_OF(MedicationChange, medication_change); break;
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW: PATIENT_OF(CaseReview, case_review); break;
    default: break; /* no patient in the others */
    }
    pb_arena_release(&arena);
    return rc;
}

int payload_validate(uint32_t ct, const uint8_t *data, size_t len, payload_info_t *info, char *err, size_t errlen)
{
    payload_info_t scratch;
    if (!info)
        info = &scratch;
    memset(info, 0, sizeof *info);
    check_t c = {err, errlen};
    bool ok = false, oom = false;
    if (len > LIAISON_MAX_PAYLOAD)
        return fail(&c, "payload: %zu bytes, limit is %u", len, LIAISON_MAX_PAYLOAD) ? 0 : -1;
    _Alignas(16) uint8_t abuf[PAYLOAD_ARENA_BYTES];
    pb_arena_t arena;
    pb_arena_init(&arena, abuf, sizeof abuf);
    switch (ct) {
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_TEXT:
        VALIDATE(TextMessage, text_message);
        break;
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_PROGRESS_NOTE:
        VALIDATE(ProgressNote, progress_note, info);
        break;
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_MEDICATION_CHANGE:
        VALIDATE(MedicationChange, medication_change, info);
        break;
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_ACK:
        VALIDATE(Acknowledgement, acknowledgement, info);
        break;
    case LIAISON__WIRE__CONTENT_TYPE__CONTENT_CASE_REVIEW:
        VALIDATE(CaseReview, case_review, info);
        break;
    default:
        fail(&c, "content type %u is not known to this node", ct);
        break;
    }
    pb_arena_release(&arena);
    return ok ? 0 : oom ? -2 : -1;
}

void payload_info_wipe(payload_info_t *info)
{
    sodium_memzero(info->patient, sizeof info->patient);
}
