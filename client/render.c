/* SPDX-License-Identifier: Apache-2.0 */
/* Owns how messages and payloads are shown: text for people, JSON for scripts. */
#include "render.h"

#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "payload.h"
#include "payload.pb-c.h"
#include "text.h"

static const char *state_name(const char *s)
{
    return s && s[0] ? s : "queued";
}

json_t *render_summary_json(const Liaison__Control__MessageSummary *m)
{
    char id[TEXT_MSGID_HEX];
    if (m->message_id.len == LIAISON_MSGID_BYTES)
        text_msgid_to_hex(m->message_id.data, id);
    else
        id[0] = 0;
    json_t *to = json_array(), *acks = json_array(), *overdue = json_array(), *dl = json_array();
    /* The envelope lists its sender among the recipients (it keeps a copy it can open);
     * "to" is whom it was sent to, as the To line of the text shows it. */
    for (size_t i = 0; i < m->n_recipients; i++)
        if (strcmp(m->recipients[i], m->sender) != 0)
            json_array_append_new(to, json_string(m->recipients[i]));
    for (size_t i = 0; i < m->n_acks; i++) {
        json_t *a = json_pack("{s:s, s:o, s:o}", "by", m->acks[i]->by, "at", cli_json_time(m->acks[i]->at_ms),
                              "ack_id", cli_json_hex(m->acks[i]->ack_message_id.data, m->acks[i]->ack_message_id.len));
        /* Only show fills it: absent elsewhere, rather than a null that reads "no comment". */
        if (m->acks[i]->comment[0])
            json_object_set_new(a, "comment", json_string(m->acks[i]->comment));
        json_array_append_new(acks, a);
    }
    for (size_t i = 0; i < m->n_overdue; i++)
        json_array_append_new(overdue, json_string(m->overdue[i]));
    for (size_t i = 0; i < m->n_deliveries; i++) {
        const Liaison__Control__DeliveryState *d = m->deliveries[i];
        json_array_append_new(dl, json_pack("{s:s, s:s, s:o, s:I, s:s?}", "recipient", d->recipient, "state",
                                            state_name(d->state), "delivered", cli_json_time(d->delivered_ms),
                                            "attempts", (json_int_t)d->attempts, "detail",
                                            d->detail[0] ? d->detail : NULL));
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:o, s:o, s:o, s:o}", "id", id, "direction", m->direction,
                          "from", m->sender, "to", to, "type", payload_type_name(m->content_type), "content_type",
                          (json_int_t)m->content_type, "created", cli_json_time(m->created_ms), "received",
                          cli_json_time(m->received_ms), "read", cli_json_time(m->read_ms), "thread",
                          cli_json_hex(m->thread_id.data, m->thread_id.len));
    if (m->content_type == 3) {
        json_object_set_new(j, "ack_required", json_boolean(m->ack_required));
        json_object_set_new(j, "urgent", json_boolean(m->urgent));
        if (strcmp(m->direction, "in") == 0)
            json_object_set_new(j, "awaiting_my_ack", json_boolean(m->awaiting_ack));
        else if (m->ack_due_ms)
            json_object_set_new(j, "ack_due", cli_json_time(m->ack_due_ms));
    }
    json_object_set_new(j, "acks", acks);
    json_object_set_new(j, "overdue", overdue);
    if (strcmp(m->direction, "out") == 0)
        json_object_set_new(j, "deliveries", dl);
    else
        json_decref(dl);
    if (m->ref_id.len)
        json_object_set_new(j, "acknowledges", cli_json_hex(m->ref_id.data, m->ref_id.len));
    if (m->unopenable)
        json_object_set_new(j, "unopenable", json_true());
    return j;
}

static bool acked_by(const Liaison__Control__MessageSummary *m, const char *who)
{
    for (size_t i = 0; i < m->n_acks; i++)
        if (strcmp(m->acks[i]->by, who) == 0)
            return true;
    return false;
}

void render_summary_line(const Liaison__Control__MessageSummary *m)
{
    char id[TEXT_MSGID_HEX] = "?", t[32];
    if (m->message_id.len == LIAISON_MSGID_BYTES)
        text_msgid_to_hex(m->message_id.data, id);
    cli_time_column(m->created_ms, t, sizeof t);
    bool in = strcmp(m->direction, "in") == 0;
    char party[256] = "";
    if (in) {
        snprintf(party, sizeof party, "from %s", m->sender);
    } else {
        size_t off = (size_t)snprintf(party, sizeof party, "to ");
        for (size_t i = 0, k = 0; i < m->n_recipients && off < sizeof party; i++) {
            if (strcmp(m->recipients[i], m->sender) == 0)
                continue;
            off += (size_t)snprintf(party + off, sizeof party - off, "%s%s", k++ ? "," : "", m->recipients[i]);
        }
    }
    printf("%s  %s  %-28s %-17s", id, t, party, payload_type_name(m->content_type));
    /* An acknowledgement means nothing without the message it closes: name it in full,
     * as show and thread take it. */
    if (m->ref_id.len == LIAISON_MSGID_BYTES) {
        char ref[TEXT_MSGID_HEX];
        text_msgid_to_hex(m->ref_id.data, ref);
        printf(" acknowledges %s", ref);
    }
    if (in && !m->read_ms)
        printf(" [unread]");
    if (m->urgent)
        printf(" [URGENT]");
    if (in && m->awaiting_ack)
        printf(" [needs ack]");
    if (m->n_overdue) {
        /* Since when: a change overdue for two minutes is not one overdue for two days. */
        char due[48] = "";
        if (m->ack_due_ms)
            cli_time(m->ack_due_ms, due, sizeof due);
        printf(" [OVERDUE%s%s:", due[0] ? " since " : "", due);
        for (size_t i = 0; i < m->n_overdue; i++)
            printf(" %s", m->overdue[i]);
        printf("]");
    }
    printf("\n");
}

/* An acknowledgement's comment (show only), under its "acknowledged by" line. */
static void ack_comment(const Liaison__Control__AckInfo *a, const char *indent)
{
    if (!a->comment || !a->comment[0])
        return;
    printf("%s    comment: ", indent);
    for (const char *p = a->comment; *p; p++) {
        putchar(*p);
        if (*p == '\n' && p[1])
            printf("%s             ", indent);
    }
    printf("\n");
}

void render_deliveries(const Liaison__Control__MessageSummary *m, const char *indent)
{
    char t[32];
    for (size_t i = 0; i < m->n_deliveries; i++) {
        const Liaison__Control__DeliveryState *d = m->deliveries[i];
        printf("%s%-20s %s", indent, d->recipient, state_name(d->state));
        if (d->delivered_ms) {
            cli_time(d->delivered_ms, t, sizeof t);
            printf(" %s", t);
        }
        if (d->detail[0] && strcmp(d->state, "delivered") != 0) {
            /* The detail may quote a peer (its Reject reason): never let it reach the
             * terminal raw, whichever daemon stored it. */
            char shown[320];
            text_printable(shown, sizeof shown, d->detail);
            printf(" (%s)", shown);
        }
        printf("\n");
    }
    for (size_t i = 0; i < m->n_acks; i++) {
        cli_time(m->acks[i]->at_ms, t, sizeof t);
        printf("%sacknowledged by %s at %s\n", indent, m->acks[i]->by, t);
        ack_comment(m->acks[i], indent);
    }
    if (m->ack_required) {
        for (size_t i = 0; i < m->n_recipients; i++) {
            const char *r = m->recipients[i];
            if (strcmp(r, m->sender) == 0 || acked_by(m, r))
                continue;
            bool late = false;
            for (size_t k = 0; k < m->n_overdue; k++)
                late = late || strcmp(m->overdue[k], r) == 0;
            char due[48] = "";
            if (m->ack_due_ms)
                cli_time(m->ack_due_ms, due, sizeof due);
            char tail[80] = "";
            if (late && due[0])
                snprintf(tail, sizeof tail, " (OVERDUE since %s)", due);
            else if (late)
                snprintf(tail, sizeof tail, " (OVERDUE)");
            else if (due[0])
                snprintf(tail, sizeof tail, " (due by %s)", due);
            printf("%sawaiting acknowledgement from %s%s\n", indent, r, tail);
        }
    }
}

/* ---- payloads ---- */

static json_t *jstr(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

static json_t *patient_json(const Liaison__Payload__PatientRef *p)
{
    if (!p)
        return json_null();
    return json_pack("{s:s, s:o}", "id", p->id, "label", jstr(p->label));
}

static json_t *enum_json(const char *kind, int v)
{
    const char *n = payload_enum_name(kind, v);
    return n ? json_string(n) : json_null();
}

json_t *render_payload_json(uint32_t ct, const uint8_t *data, size_t len)
{
    json_t *j = NULL;
    switch (ct) {
    case 1: {
        Liaison__Payload__TextMessage *m = liaison__payload__text_message__unpack(cli_pb(), len, data);
        if (!m)
            break;
        j = json_pack("{s:o, s:s}", "subject", jstr(m->subject), "text", m->text);
        liaison__payload__text_message__free_unpacked(m, NULL);
        break;
    }
    case 2: {
        Liaison__Payload__ProgressNote *m = liaison__payload__progress_note__unpack(cli_pb(), len, data);
        if (!m)
            break;
        json_t *scores = json_array();
        for (size_t i = 0; i < m->n_other_scores; i++)
            json_array_append_new(scores, json_pack("{s:s, s:I, s:I, s:I}", "name", m->other_scores[i]->name, "value",
                                                    (json_int_t)m->other_scores[i]->value, "min",
                                                    (json_int_t)m->other_scores[i]->min, "max",
                                                    (json_int_t)m->other_scores[i]->max));
        j = json_pack("{s:o, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "patient",
                      patient_json(m->patient), "session_date", m->session_date, "modality",
                      enum_json("modality", (int)m->modality), "narrative", m->narrative, "phq9",
                      m->phq9 ? json_integer(m->phq9->value) : json_null(), "gad7",
                      m->gad7 ? json_integer(m->gad7->value) : json_null(), "other_scores", scores, "risk",
                      m->risk ? json_pack("{s:o, s:o}", "level", enum_json("risk", (int)m->risk->level), "text",
                                          jstr(m->risk->text))
                              : json_null(),
                      "adherence", jstr(m->adherence), "side_effects", jstr(m->side_effects), "goals", jstr(m->goals),
                      "next_session_date", jstr(m->next_session_date));
        liaison__payload__progress_note__free_unpacked(m, NULL);
        break;
    }
    case 3: {
        Liaison__Payload__MedicationChange *m = liaison__payload__medication_change__unpack(cli_pb(), len, data);
        if (!m)
            break;
        j = json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:o, s:b}", "patient",
                      patient_json(m->patient), "medication", m->medication, "action",
                      enum_json("action", (int)m->action), "previous_medication", jstr(m->previous_medication),
                      "previous_dose", jstr(m->previous_dose), "new_dose", jstr(m->new_dose), "previous_frequency",
                      jstr(m->previous_frequency), "new_frequency", jstr(m->new_frequency), "effective_date",
                      m->effective_date, "reason", m->reason, "monitor", jstr(m->monitor), "urgency",
                      enum_json("urgency", (int)m->urgency), "ack_required", !m->ack_optional);
        liaison__payload__medication_change__free_unpacked(m, NULL);
        break;
    }
    case 4: {
        Liaison__Payload__Acknowledgement *m = liaison__payload__acknowledgement__unpack(cli_pb(), len, data);
        if (!m)
            break;
        j = json_pack("{s:o, s:o}", "acknowledges", cli_json_hex(m->acknowledged_id.data, m->acknowledged_id.len),
                      "comment", jstr(m->comment));
        liaison__payload__acknowledgement__free_unpacked(m, NULL);
        break;
    }
    case 5: {
        Liaison__Payload__CaseReview *m = liaison__payload__case_review__unpack(cli_pb(), len, data);
        if (!m)
            break;
        j = json_pack("{s:o, s:o}", "review_id", cli_json_hex(m->review_id.data, m->review_id.len), "patient",
                      patient_json(m->patient));
        if (m->kind_case == LIAISON__PAYLOAD__CASE_REVIEW__KIND_OPEN) {
            json_t *who = json_array();
            for (size_t i = 0; i < m->open->n_participants; i++)
                json_array_append_new(who, json_string(m->open->participants[i]));
            json_object_set_new(j, "kind", json_string("open"));
            json_object_set_new(j, "question", json_string(m->open->question));
            json_object_set_new(j, "participants", who);
        } else if (m->kind_case == LIAISON__PAYLOAD__CASE_REVIEW__KIND_REPLY) {
            json_object_set_new(j, "kind", json_string("reply"));
            json_object_set_new(j, "text", json_string(m->reply->text));
        } else if (m->kind_case == LIAISON__PAYLOAD__CASE_REVIEW__KIND_ADD) {
            json_object_set_new(j, "kind", json_string("add"));
            json_object_set_new(j, "participant", json_string(m->add->participant));
            json_object_set_new(j, "opened_by", jstr(m->add->opened_by));
            json_object_set_new(j, "question", jstr(m->add->question));
            json_t *earlier = json_array();
            for (size_t i = 0; i < m->add->n_earlier; i++)
                json_array_append_new(earlier, json_pack("{s:s, s:o, s:s}", "author", m->add->earlier[i]->author,
                                                         "sent", cli_json_time(m->add->earlier[i]->sent_ms), "text",
                                                         m->add->earlier[i]->text));
            json_object_set_new(j, "earlier", earlier);
            json_object_set_new(j, "earlier_left_out", json_integer(m->add->earlier_left_out));
        } else if (m->kind_case == LIAISON__PAYLOAD__CASE_REVIEW__KIND_CLOSE) {
            json_t *acts = json_array();
            for (size_t i = 0; i < m->close->n_actions; i++)
                json_array_append_new(acts, json_pack("{s:s, s:s, s:o}", "owner", m->close->actions[i]->owner,
                                                      "text", m->close->actions[i]->text, "due",
                                                      jstr(m->close->actions[i]->due_date)));
            json_object_set_new(j, "kind", json_string("close"));
            json_object_set_new(j, "decision", json_string(m->close->decision));
            json_object_set_new(j, "actions", acts);
        }
        liaison__payload__case_review__free_unpacked(m, NULL);
        break;
    }
    default:
        break;
    }
    return j ? j : json_null();
}

/* Prints "label: value" with continuation lines indented, when value is set. */
static void field(const char *indent, const char *label, const char *value)
{
    if (!value || !value[0])
        return;
    printf("%s%-14s ", indent, label);
    for (const char *p = value; *p; p++) {
        putchar(*p);
        if (*p == '\n' && p[1])
            printf("%s%-14s ", indent, "");
    }
    printf("\n");
}

static void patient_line(const char *indent, const Liaison__Payload__PatientRef *p)
{
    if (!p)
        return;
    char buf[256];
    snprintf(buf, sizeof buf, "%s%s%s%s", p->id, p->label[0] ? " (" : "", p->label, p->label[0] ? ")" : "");
    field(indent, "Patient:", buf);
}

static void note_text(const Liaison__Payload__ProgressNote *m, const char *in)
{
    char buf[256];
    patient_line(in, m->patient);
    field(in, "Session:", m->session_date);
    field(in, "Modality:", payload_enum_name("modality", (int)m->modality));
    if (m->phq9) {
        snprintf(buf, sizeof buf, "%u / 27", m->phq9->value);
        field(in, "PHQ-9:", buf);
    }
    if (m->gad7) {
        snprintf(buf, sizeof buf, "%u / 21", m->gad7->value);
        field(in, "GAD-7:", buf);
    }
    for (size_t i = 0; i < m->n_other_scores; i++) {
        const Liaison__Payload__NamedScore *s = m->other_scores[i];
        snprintf(buf, sizeof buf, "%u (range %u-%u)", s->value, s->min, s->max);
        char label[80];
        snprintf(label, sizeof label, "%s:", s->name);
        field(in, label, buf);
    }
    if (m->risk) {
        snprintf(buf, sizeof buf, "%s%s%s", payload_enum_name("risk", (int)m->risk->level) ?: "?",
                 m->risk->text[0] ? ": " : "", m->risk->text);
        field(in, "Risk:", buf);
    }
    field(in, "Adherence:", m->adherence);
    field(in, "Side effects:", m->side_effects);
    field(in, "Goals:", m->goals);
    field(in, "Next session:", m->next_session_date);
    printf("\n");
    field(in, "Narrative:", m->narrative);
}

static void med_text(const Liaison__Payload__MedicationChange *m, const char *in)
{
    char buf[512];
    patient_line(in, m->patient);
    const char *act = payload_enum_name("action", (int)m->action);
    if (m->previous_medication[0])
        snprintf(buf, sizeof buf, "%s %s -> %s", act ? act : "?", m->previous_medication, m->medication);
    else
        snprintf(buf, sizeof buf, "%s %s", act ? act : "?", m->medication);
    field(in, "Change:", buf);
    if (m->previous_dose[0] || m->previous_frequency[0]) {
        snprintf(buf, sizeof buf, "%s%s%s", m->previous_dose, m->previous_frequency[0] ? ", " : "",
                 m->previous_frequency);
        field(in, "From:", buf);
    }
    if (m->new_dose[0] || m->new_frequency[0]) {
        snprintf(buf, sizeof buf, "%s%s%s", m->new_dose, m->new_frequency[0] ? ", " : "", m->new_frequency);
        field(in, "To:", buf);
    }
    field(in, "Effective:", m->effective_date);
    field(in, "Urgency:", payload_enum_name("urgency", (int)m->urgency));
    field(in, "Reason:", m->reason);
    field(in, "Watch for:", m->monitor);
    field(in, "Acknowledge:", m->ack_optional ? "not required" : "required");
}

static void review_text(const Liaison__Payload__CaseReview *m, const char *in)
{
    char rid[TEXT_MSGID_HEX] = "?";
    if (m->review_id.len == LIAISON_MSGID_BYTES)
        text_msgid_to_hex(m->review_id.data, rid);
    /* Indented: shown inside `review show`, whose heading already names both. */
    if (!in[0]) {
        field(in, "Review:", rid);
        patient_line(in, m->patient);
    }
    switch (m->kind_case) {
    case LIAISON__PAYLOAD__CASE_REVIEW__KIND_OPEN: {
        char who[LIAISON_MAX_RECIPIENTS * (LIAISON_MAX_ID + 2)] = "";
        size_t off = 0;
        for (size_t i = 0; i < m->open->n_participants && off < sizeof who; i++)
            off += (size_t)snprintf(who + off, sizeof who - off, "%s%s", i ? ", " : "", m->open->participants[i]);
        field(in, "Opened with:", who);
        field(in, "Question:", m->open->question);
        break;
    }
    case LIAISON__PAYLOAD__CASE_REVIEW__KIND_REPLY:
        field(in, "Reply:", m->reply->text);
        break;
    case LIAISON__PAYLOAD__CASE_REVIEW__KIND_ADD:
        field(in, "Added:", m->add->participant);
        field(in, "Opened by:", m->add->opened_by);
        field(in, "Question:", m->add->question);
        if (m->add->n_earlier || m->add->earlier_left_out) {
            char line[160];
            snprintf(line, sizeof line, "%zu repl%s from before the add, as the adding node holds %s",
                     m->add->n_earlier, m->add->n_earlier == 1 ? "y" : "ies", m->add->n_earlier == 1 ? "it" : "them");
            field(in, "Earlier:", line);
            if (m->add->earlier_left_out) {
                snprintf(line, sizeof line, "(%" PRIu32 " older repl%s not forwarded: too long for one message)",
                         m->add->earlier_left_out, m->add->earlier_left_out == 1 ? "y" : "ies");
                field(in, "", line);
            }
            for (size_t i = 0; i < m->add->n_earlier; i++) {
                const Liaison__Payload__EarlierReply *e = m->add->earlier[i];
                char t[32];
                cli_time(e->sent_ms, t, sizeof t);
                snprintf(line, sizeof line, "%s  %s:", t, e->author);
                field(in, "", line);
                field(in, "", e->text);
            }
        }
        break;
    case LIAISON__PAYLOAD__CASE_REVIEW__KIND_CLOSE:
        field(in, "DECISION:", m->close->decision);
        for (size_t i = 0; i < m->close->n_actions; i++) {
            const Liaison__Payload__ActionItem *a = m->close->actions[i];
            char buf[700];
            snprintf(buf, sizeof buf, "%s: %s%s%s", a->owner, a->text, a->due_date[0] ? " by " : "", a->due_date);
            field(in, "Action:", buf);
        }
        break;
    default:
        break;
    }
}

void render_payload_text(uint32_t ct, const uint8_t *data, size_t len, const char *in)
{
    switch (ct) {
    case 1: {
        Liaison__Payload__TextMessage *m = liaison__payload__text_message__unpack(cli_pb(), len, data);
        if (!m)
            break;
        field(in, "Subject:", m->subject);
        printf("\n");
        field(in, "", m->text);
        liaison__payload__text_message__free_unpacked(m, NULL);
        return;
    }
    case 2: {
        Liaison__Payload__ProgressNote *m = liaison__payload__progress_note__unpack(cli_pb(), len, data);
        if (!m)
            break;
        note_text(m, in);
        liaison__payload__progress_note__free_unpacked(m, NULL);
        return;
    }
    case 3: {
        Liaison__Payload__MedicationChange *m = liaison__payload__medication_change__unpack(cli_pb(), len, data);
        if (!m)
            break;
        med_text(m, in);
        liaison__payload__medication_change__free_unpacked(m, NULL);
        return;
    }
    case 4: {
        Liaison__Payload__Acknowledgement *m = liaison__payload__acknowledgement__unpack(cli_pb(), len, data);
        if (!m)
            break;
        char hex[TEXT_MSGID_HEX] = "?";
        if (m->acknowledged_id.len == LIAISON_MSGID_BYTES)
            text_msgid_to_hex(m->acknowledged_id.data, hex);
        field(in, "Acknowledges:", hex);
        field(in, "Comment:", m->comment);
        liaison__payload__acknowledgement__free_unpacked(m, NULL);
        return;
    }
    case 5: {
        Liaison__Payload__CaseReview *m = liaison__payload__case_review__unpack(cli_pb(), len, data);
        if (!m)
            break;
        review_text(m, in);
        liaison__payload__case_review__free_unpacked(m, NULL);
        return;
    }
    default:
        break;
    }
    if (cli_alloc_failed()) /* the command ends with the error, after what it prints */
        printf("%s(out of memory: the content cannot be shown)\n", in);
    else
        printf("%s(content of type %u cannot be shown)\n", in, ct);
}

void render_message_text(const Liaison__Control__MessageSummary *m, const uint8_t *payload, size_t len)
{
    char id[TEXT_MSGID_HEX] = "?", t[32];
    if (m->message_id.len == LIAISON_MSGID_BYTES)
        text_msgid_to_hex(m->message_id.data, id);
    cli_time(m->created_ms, t, sizeof t);
    printf("Message        %s (%s%s)\n", id, payload_type_name(m->content_type), m->urgent ? ", URGENT" : "");
    printf("From           %s\n", m->sender);
    printf("To            ");
    for (size_t i = 0; i < m->n_recipients; i++)
        if (strcmp(m->recipients[i], m->sender) != 0)
            printf(" %s", m->recipients[i]);
    printf("\nSent           %s\n", t);
    if (m->thread_id.len == LIAISON_MSGID_BYTES) {
        text_msgid_to_hex(m->thread_id.data, id);
        printf("Thread         %s\n", id);
    }
    if (strcmp(m->direction, "out") == 0) {
        render_deliveries(m, "  ");
    } else {
        char t2[32];
        for (size_t i = 0; i < m->n_acks; i++) {
            cli_time(m->acks[i]->at_ms, t2, sizeof t2);
            printf("Acknowledged   by %s at %s\n", m->acks[i]->by, t2);
            ack_comment(m->acks[i], "  ");
        }
    }
    printf("\n");
    if (m->unopenable)
        printf("(This message cannot be opened with the keys this node has for %s: their card was removed or\n"
               " replaced since. The attempt is in the audit log.)\n", m->sender);
    else
        render_payload_text(m->content_type, payload, len, "");
}

void render_ack_hint(const Liaison__Control__MessageSummary *m, bool sender_in_directory)
{
    if (strcmp(m->direction, "in") != 0 || !m->awaiting_ack || m->message_id.len != LIAISON_MSGID_BYTES)
        return;
    char id[TEXT_MSGID_HEX];
    text_msgid_to_hex(m->message_id.data, id);
    if (sender_in_directory)
        printf("\nAcknowledge it with: liaison ack %s\n", id);
    else
        printf("\nIt waits for an acknowledgement, but %s is no longer in this node's directory: add their card"
               " again (liaison peer add CARD), then: liaison ack %s\n", m->sender, id);
}

json_t *render_message_json(const Liaison__Control__MessageSummary *m, const uint8_t *payload, size_t len)
{
    json_t *j = render_summary_json(m);
    json_object_set_new(j, "payload", m->unopenable ? json_null() : render_payload_json(m->content_type, payload, len));
    return j;
}

int render_note_scores(uint32_t ct, const uint8_t *data, size_t len, int *phq9, int *gad7, char date[11])
{
    *phq9 = *gad7 = -1;
    date[0] = 0;
    if (ct != 2)
        return -1;
    Liaison__Payload__ProgressNote *m = liaison__payload__progress_note__unpack(cli_pb(), len, data);
    if (!m)
        return -1;
    if (m->phq9)
        *phq9 = (int)m->phq9->value;
    if (m->gad7)
        *gad7 = (int)m->gad7->value;
    snprintf(date, 11, "%s", m->session_date);
    liaison__payload__progress_note__free_unpacked(m, NULL);
    return 0;
}

int render_patient(uint32_t ct, const uint8_t *data, size_t len, char *id, size_t idlen, char *label, size_t labellen)
{
    const Liaison__Payload__PatientRef *p = NULL;
    ProtobufCMessage *msg = NULL;
    if (ct == 2) {
        Liaison__Payload__ProgressNote *m = liaison__payload__progress_note__unpack(cli_pb(), len, data);
        msg = (ProtobufCMessage *)m;
        p = m ? m->patient : NULL;
    } else if (ct == 3) {
        Liaison__Payload__MedicationChange *m = liaison__payload__medication_change__unpack(cli_pb(), len, data);
        msg = (ProtobufCMessage *)m;
        p = m ? m->patient : NULL;
    } else if (ct == 5) {
        Liaison__Payload__CaseReview *m = liaison__payload__case_review__unpack(cli_pb(), len, data);
        msg = (ProtobufCMessage *)m;
        p = m ? m->patient : NULL;
    }
    int rc = -1;
    if (p) {
        snprintf(id, idlen, "%s", p->id);
        snprintf(label, labellen, "%s", p->label);
        rc = 0;
    }
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

void render_case_variants(uint32_t n, const char *patient, const char *what)
{
    if (n == 0)
        return;
    printf("\nNote: %" PRIu32 " %s on this node %s about a patient id that differs from '%s' only in letter case.\n"
           "Patient ids are case-sensitive, so %s not shown here: ask with the id spelled as it was sent.\n"
           "If it is the same patient, spell the id one way from now on.\n",
           n, what, n == 1 ? "is" : "are", patient, n == 1 ? "it is" : "they are");
}

void render_left_out(uint64_t left, bool exact, size_t shown, const char *cmd, uint32_t max_limit,
                     uint64_t oldest_ms)
{
    if (!left)
        return;
    const char *narrow = strcmp(cmd, "inbox") == 0
                             ? "--since DATE, --until DATE, --unread, --needs-ack, --patient P or --type T"
                             : "--since DATE, --until DATE, --patient P or --type T";
    printf("\nNote: %s%" PRIu64 " more message%s match%s but %s not shown (%s %zu %s the newest).\n",
           exact ? "" : "more than ", left, left == 1 && exact ? "" : "s", left == 1 && exact ? "es" : "",
           left == 1 && exact ? "is" : "are", shown == 1 ? "this" : "these", shown, shown == 1 ? "is" : "are");
    uint64_t all = (uint64_t)shown + left;
    if (exact && all <= max_limit)
        printf("See them all with: liaison %s ... --limit %" PRIu64 "\n", cmd, all);
    else
        printf("See more with: liaison %s ... --limit N (at most %" PRIu32 ")\n", cmd, max_limit);
    printf("or narrow the list with %s.\n", narrow);
    /* The next page: the same filters, ending just before the oldest shown. */
    if (oldest_ms > 1) {
        char t[40];
        cli_time_iso(oldest_ms - 1, t, sizeof t);
        printf("Older ones: liaison %s ... --until %s\n", cmd, t);
    }
}

void render_truncated(bool truncated, size_t shown, const char *hint)
{
    if (!truncated)
        return;
    printf("\nNote: more messages match than the %zu shown: their contents reached the 16 MiB one answer\n"
           "carries. %s\n",
           shown, hint);
}
