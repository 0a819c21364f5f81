/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the coding of audit entries as FHIR R4 AuditEvent resources: DICOM event ids,
 * ISO 21089 lifecycle sub-types and the agent and entity roles of the IHE Basic Audit
 * Log Patterns (BALP), entry kind by entry kind (PROTOCOL.md 11.7). */
#include "fhir.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "cli.h"
#include "payload.h"

typedef struct fhir_code {
    const char *system, *code, *display;
} fhir_code_t;

#define DCM "http://dicom.nema.org/resources/ontology/DCM"
#define LIFECYCLE "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
#define PARTICIPATION "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
#define ENTITY_TYPE "http://terminology.hl7.org/CodeSystem/audit-entity-type"
#define OBJECT_ROLE "http://terminology.hl7.org/CodeSystem/object-role"

/* Event ids (AuditEvent.type, DICOM CID 400). */
static const fhir_code_t ev_app = {DCM, "110100", "Application Activity"};
static const fhir_code_t ev_log_used = {DCM, "110101", "Audit Log Used"};
static const fhir_code_t ev_export = {DCM, "110106", "Export"};
static const fhir_code_t ev_import = {DCM, "110107", "Import"};
static const fhir_code_t ev_patient_record = {DCM, "110110", "Patient Record"};
static const fhir_code_t ev_security_alert = {DCM, "110113", "Security Alert"};

/* Sub-types: DICOM event type codes (CID 401, 403) and ISO 21089 lifecycle events. */
static const fhir_code_t st_app_start = {DCM, "110120", "Application Start"};
static const fhir_code_t st_app_stop = {DCM, "110121", "Application Stop"};
static const fhir_code_t st_node_auth = {DCM, "110126", "Node Authentication"};
static const fhir_code_t st_security_config = {DCM, "110129", "Security Configuration"};
static const fhir_code_t st_access = {LIFECYCLE, "access", "Access/View Record Lifecycle Event"};
static const fhir_code_t st_disclose = {LIFECYCLE, "disclose", "Disclose Record Lifecycle Event"};
static const fhir_code_t st_transmit = {LIFECYCLE, "transmit", "Transmit Record Lifecycle Event"};
static const fhir_code_t st_receive = {LIFECYCLE, "receive", "Receive/Retain Record Lifecycle Event"};

/* Agent types (participation role types: DICOM CID 402 and v3 ParticipationType). */
static const fhir_code_t ag_application = {DCM, "110150", "Application"};
static const fhir_code_t ag_destination = {DCM, "110152", "Destination Role ID"};
static const fhir_code_t ag_source = {DCM, "110153", "Source Role ID"};
static const fhir_code_t ag_author = {PARTICIPATION, "AUT", "author (originator)"};
static const fhir_code_t ag_recipient = {PARTICIPATION, "IRCP", "information recipient"};
static const fhir_code_t ag_performer = {PARTICIPATION, "PRF", "performer"};

/* Which way a message goes in the event: out of this node (this node is the 110153
 * source, the peer the 110152 destination), into it (the reverse), or neither. */
typedef enum { FLOW_NONE, FLOW_OUT, FLOW_IN } fhir_flow_t;

/* What the entry's peer is when it is not the actor and no flow types it: the author of
 * the message read, a node taking part (110150), or the subject of the event (an entity,
 * object role 11: the peer's directory record). */
typedef enum { PEER_AGENT, PEER_AUTHOR, PEER_ENTITY } fhir_peer_t;

typedef struct fhir_map {
    const char *action;
    const fhir_code_t *type;
    const fhir_code_t *sub[2]; /* standard sub-types; the liaison action always follows */
    const char *verb;          /* C R U D E */
    fhir_flow_t flow;
    const fhir_code_t *user; /* type of a local user's agent when the user is the actor */
    fhir_peer_t peer;
    bool treat;      /* purposeOfEvent TREAT: every message is care coordination */
    bool log_entity; /* the audit log itself is the object (role 13) */
} fhir_map_t;

static const fhir_map_t fhir_maps[] = {
    {"node-created", &ev_app, {NULL, NULL}, "C", FLOW_NONE, &ag_performer, PEER_AGENT, false, false},
    {"daemon-started", &ev_app, {&st_app_start, NULL}, "E", FLOW_NONE, &ag_performer, PEER_AGENT, false, false},
    {"daemon-stopped", &ev_app, {&st_app_stop, NULL}, "E", FLOW_NONE, &ag_performer, PEER_AGENT, false, false},
    {"peer-added", &ev_security_alert, {&st_security_config, NULL}, "C", FLOW_NONE, &ag_performer, PEER_ENTITY, false,
     false},
    {"peer-updated", &ev_security_alert, {&st_security_config, NULL}, "U", FLOW_NONE, &ag_performer, PEER_ENTITY,
     false, false},
    {"peer-replaced", &ev_security_alert, {&st_security_config, NULL}, "U", FLOW_NONE, &ag_performer, PEER_ENTITY,
     false, false},
    {"peer-removed", &ev_security_alert, {&st_security_config, NULL}, "D", FLOW_NONE, &ag_performer, PEER_ENTITY,
     false, false},
    {"message-queued", &ev_export, {&st_disclose, NULL}, "R", FLOW_OUT, &ag_author, PEER_AGENT, true, false},
    {"message-delivered", &ev_export, {&st_transmit, NULL}, "R", FLOW_OUT, &ag_author, PEER_AGENT, true, false},
    {"delivery-rejected", &ev_export, {&st_transmit, NULL}, "R", FLOW_OUT, &ag_performer, PEER_AGENT, true, false},
    {"message-received", &ev_import, {&st_disclose, &st_receive}, "C", FLOW_IN, &ag_performer, PEER_AGENT, true,
     false},
    {"message-duplicate", &ev_import, {&st_receive, NULL}, "E", FLOW_IN, &ag_performer, PEER_AGENT, true, false},
    {"message-rejected", &ev_import, {&st_receive, NULL}, "C", FLOW_IN, &ag_performer, PEER_AGENT, true, false},
    {"receipt-rejected", &ev_security_alert, {NULL, NULL}, "E", FLOW_NONE, &ag_performer, PEER_AGENT, false, false},
    {"message-read", &ev_patient_record, {&st_access, NULL}, "R", FLOW_NONE, &ag_recipient, PEER_AUTHOR, false,
     false},
    {"transport-refused", &ev_security_alert, {&st_node_auth, NULL}, "E", FLOW_NONE, &ag_performer, PEER_AGENT, false,
     false},
    {"request-refused", &ev_app, {NULL, NULL}, "E", FLOW_NONE, &ag_performer, PEER_AGENT, false, false},
    {"ack-overdue", &ev_app, {NULL, NULL}, "E", FLOW_OUT, &ag_performer, PEER_AGENT, false, false},
    {"audit-query", &ev_log_used, {NULL, NULL}, "R", FLOW_NONE, &ag_recipient, PEER_ENTITY, false, true},
    {"witness-alarm", &ev_security_alert, {NULL, NULL}, "E", FLOW_NONE, &ag_performer, PEER_AGENT, false, false},
    {"rollback-detected", &ev_security_alert, {NULL, NULL}, "E", FLOW_NONE, &ag_performer, PEER_AGENT, false, false},
    {"patient-index-filled", &ev_patient_record, {&st_access, NULL}, "R", FLOW_NONE, &ag_performer, PEER_AGENT, false,
     false},
    {"witness-reset", &ev_security_alert, {&st_security_config, NULL}, "U", FLOW_NONE, &ag_performer, PEER_ENTITY,
     false, false},
};

static const fhir_map_t fhir_unmapped = {NULL, &ev_app, {NULL, NULL}, "E", FLOW_NONE, &ag_performer, PEER_AGENT,
                                         false, false};

static const fhir_map_t *fhir_map(const char *action)
{
    for (size_t i = 0; i < sizeof fhir_maps / sizeof fhir_maps[0]; i++)
        if (strcmp(fhir_maps[i].action, action) == 0)
            return &fhir_maps[i];
    return NULL;
}

static json_t *coding(const fhir_code_t *c)
{
    return json_pack("{s:s, s:s, s:s}", "system", c->system, "code", c->code, "display", c->display);
}

static json_t *coding3(const char *system, const char *code, const char *display)
{
    return json_pack("{s:s, s:s, s:s}", "system", system, "code", code, "display", display);
}

/* A logical reference: {type?, identifier {system, value}}. */
static json_t *ref(const char *type, const char *system, const char *value)
{
    json_t *r = json_pack("{s:{s:s, s:s}}", "identifier", "system", system, "value", value);
    if (r && type)
        json_object_set_new(r, "type", json_string(type));
    return r;
}

static json_t *node_ref(const char *id)
{
    return ref("Device", "urn:liaison:node", id);
}

static json_t *agent(const fhir_code_t *type, json_t *who, bool requestor)
{
    return json_pack("{s:{s:[o]}, s:o, s:b}", "type", "coding", coding(type), "who", who, "requestor", requestor);
}

static json_t *entity(json_t *what, const char *type_code, const char *type_display, const char *role_code,
                      const char *role_display)
{
    return json_pack("{s:o, s:o, s:o}", "what", what, "type", coding3(ENTITY_TYPE, type_code, type_display), "role",
                     coding3(OBJECT_ROLE, role_code, role_display));
}

static const fhir_code_t *node_type(fhir_flow_t f)
{
    return f == FLOW_OUT ? &ag_source : f == FLOW_IN ? &ag_destination : &ag_application;
}

static const fhir_code_t *peer_type(const fhir_map_t *m)
{
    if (m->flow != FLOW_NONE)
        return m->flow == FLOW_OUT ? &ag_destination : &ag_source;
    return m->peer == PEER_AUTHOR ? &ag_author : &ag_application;
}

/* agent[]: the entry's actor first, the only requestor; then the other node of a flow,
 * this node in a flow it did not start, and a peer that took part. */
static json_t *agents(const Liaison__Control__AuditEntries *a, const Liaison__Control__AuditEntry *e,
                      const fhir_map_t *m)
{
    json_t *arr = json_array();
    bool by_daemon = strcmp(e->actor, "daemon") == 0;
    bool by_peer = strncmp(e->actor, "peer:", 5) == 0;
    const char *peer = e->peer[0] ? e->peer : NULL;
    bool peer_is_actor = by_peer && (!peer || strcmp(e->actor + 5, peer) == 0);
    if (by_daemon)
        json_array_append_new(arr, agent(node_type(m->flow), node_ref(a->node_id), true));
    else if (by_peer)
        json_array_append_new(arr, agent(peer_type(m), node_ref(e->actor + 5), true));
    else
        json_array_append_new(arr, agent(m->user, ref(NULL, "urn:liaison:local-user", e->actor), true));
    if (m->flow != FLOW_NONE && !by_daemon)
        json_array_append_new(arr, agent(node_type(m->flow), node_ref(a->node_id), false));
    if (peer && !peer_is_actor && (m->flow != FLOW_NONE || m->peer != PEER_ENTITY))
        json_array_append_new(arr, agent(peer_type(m), node_ref(peer), false));
    return arr;
}

static json_t *hex_ref(const char *type, const char *system, const ProtobufCBinaryData *b)
{
    json_t *hex = cli_json_hex(b->data, b->len);
    json_t *r = json_is_string(hex) ? ref(type, system, json_string_value(hex)) : NULL;
    json_decref(hex);
    return r;
}

/* entity[]: the patient (by tag only), the message, a peer that is the event's subject,
 * the audit log read. */
static json_t *entities(const Liaison__Control__AuditEntries *a, const Liaison__Control__AuditEntry *e,
                        const fhir_map_t *m)
{
    json_t *arr = json_array();
    if (e->patient_tag.len)
        json_array_append_new(arr, entity(hex_ref("Patient", "urn:liaison:patient-tag", &e->patient_tag), "1",
                                          "Person", "1", "Patient"));
    if (e->message_id.len) {
        json_t *ent = entity(hex_ref(NULL, "urn:liaison:message", &e->message_id), "2", "System Object", "4",
                             "Domain Resource");
        if (ent && e->content_type)
            json_object_set_new(ent, "detail",
                                json_pack("[{s:s, s:s}]", "type", "content-type", "valueString",
                                          payload_type_name(e->content_type)));
        json_array_append_new(arr, ent);
    }
    if (e->peer[0] && m->flow == FLOW_NONE && m->peer == PEER_ENTITY)
        json_array_append_new(arr, entity(node_ref(e->peer), "2", "System Object", "11", "Security User Entity"));
    if (m->log_entity)
        json_array_append_new(arr, entity(ref(NULL, "urn:liaison:audit-log", a->node_id), "2", "System Object", "13",
                                          "Security Resource"));
    return arr;
}

json_t *fhir_audit_event(const Liaison__Control__AuditEntries *a, const Liaison__Control__AuditEntry *e)
{
    const fhir_map_t *m = fhir_map(e->action);
    if (!m)
        m = &fhir_unmapped;
    /* Unique across nodes, so that two nodes' exports can be loaded into one server:
     * "audit-" H "-" SEQ, H the node id's BLAKE2b-64 in hex (a FHIR id is at most 64
     * characters of [A-Za-z0-9.-]; a node id may be 64 and hold '_'). */
    uint8_t h[8];
    char hex[sizeof h * 2 + 1], id[64], when[40];
    crypto_generichash(h, sizeof h, (const unsigned char *)a->node_id, strlen(a->node_id), NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(id, sizeof id, "audit-%s-%" PRIu64, hex, e->seq);
    cli_time_iso(e->time_ms, when, sizeof when);
    const char *outcome = strcmp(e->outcome, "ok") == 0 ? "0" : strcmp(e->outcome, "refused") == 0 ? "4" : "8";
    json_t *sub = json_array();
    for (size_t i = 0; i < 2 && m->sub[i]; i++)
        json_array_append_new(sub, coding(m->sub[i]));
    json_array_append_new(sub, coding3("urn:liaison:audit-action", e->action, e->action));
    json_t *ev = json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:o, s:{s:o, s:[o]}}", "resourceType", "AuditEvent", "id",
                           id, "type", coding(m->type), "subtype", sub, "action", m->verb, "recorded", when, "outcome",
                           outcome, "agent", agents(a, e, m), "source", "observer", node_ref(a->node_id), "type",
                           coding3("http://terminology.hl7.org/CodeSystem/security-source-type", "4",
                                   "Application Server"));
    if (!ev)
        return NULL;
    if (e->details[0])
        json_object_set_new(ev, "outcomeDesc", json_string(e->details));
    if (m->treat)
        json_object_set_new(ev, "purposeOfEvent",
                            json_pack("[{s:[o]}]", "coding",
                                      coding3("http://terminology.hl7.org/CodeSystem/v3-ActReason", "TREAT",
                                              "treatment")));
    json_t *ents = entities(a, e, m);
    if (json_array_size(ents))
        json_object_set_new(ev, "entity", ents);
    else
        json_decref(ents);
    return ev;
}
