/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the auditor's commands: log, verify, prove, verify-proof, disclosures and
 * export (JSON lines or FHIR R4 AuditEvent). Every query goes through the audit
 * socket, which never returns clinical content and audits each query. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_codec.h"
#include "audit_verify.h"
#include "card.h"
#include "checkpoint.h"
#include "cli.h"
#include "fhir.h"
#include "merkle.h"
#include "payload.h"
#include "render.h"
#include "term.h"
#include "text.h"

static int audit_query(cli_t *cli, Liaison__Control__AuditQuery *q, Liaison__Control__Response **r)
{
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_AUDIT_LOG;
    rq.audit_log = q;
    return cli_call(cli, true, &rq, LIAISON__CONTROL__RESPONSE__RESULT_AUDIT_ENTRIES, r);
}

/* Entries asked for at a time when the whole log (or all that matches) is read: a page
 * of about 1 MB in the answer, so that neither the daemon nor this client ever holds a
 * log of hundreds of thousands of entries at once (each page is an audited query). */
#define AUDIT_PAGE_ENTRIES 2000u

typedef int (*audit_entry_fn)(void *ctx, const Liaison__Control__AuditEntries *a,
                              const Liaison__Control__AuditEntry *e);

/* Reads every entry matching q, oldest first, page by page, calling fn for each (a
 * non-zero return stops and is returned). *first gets the first answer (the node's
 * names, the case variants, the rollback alarms), to free with
 * liaison__control__response__free_unpacked. A daemon that does not page (an older
 * release) is asked once for all of it, as before. Returns 0, fn's return, or the
 * exit code of a failed call (printed). */
static int audit_pages(cli_t *cli, Liaison__Control__AuditQuery *q, audit_entry_fn fn, void *ctx,
                       Liaison__Control__Response **first)
{
    *first = NULL;
    q->oldest = true;
    q->limit = AUDIT_PAGE_ENTRIES;
    q->after_seq = 0;
    Liaison__Control__Response *r = NULL;
    int rc = audit_query(cli, q, &r);
    if (rc)
        return rc;
    if (!r->audit_entries->paged) {
        liaison__control__response__free_unpacked(r, NULL);
        q->oldest = false;
        q->limit = 0;
        if ((rc = audit_query(cli, q, &r)))
            return rc;
    }
    *first = r;
    for (;;) {
        const Liaison__Control__AuditEntries *a = r->audit_entries;
        for (size_t i = 0; i < a->n_entries; i++) {
            /* Never an entry twice, nor a page that does not move on. */
            if (a->paged && a->entries[i]->seq <= q->after_seq) {
                rc = cli_fail(EXIT_REFUSED, "the daemon answered audit entry %" PRIu64 " again after entry %" PRIu64
                              " (stopped there: what was written is incomplete)", a->entries[i]->seq, q->after_seq);
                break;
            }
            if ((rc = fn(ctx, a, a->entries[i])) != 0)
                break;
            q->after_seq = a->entries[i]->seq;
        }
        bool more = !rc && a->paged && a->n_entries >= q->limit;
        if (r != *first)
            liaison__control__response__free_unpacked(r, NULL);
        if (!more)
            return rc;
        if ((rc = audit_query(cli, q, &r)))
            return rc;
    }
}

/* --since and --until, shared by log, disclosures and export. */
static int query_opts(cli_opt_t *o, Liaison__Control__AuditQuery *q)
{
    int rc;
    const char *s = cli_opt(o, "since")->value, *u = cli_opt(o, "until")->value;
    if (s && (rc = cli_parse_when("since", s, &q->since_ms)))
        return rc;
    if (u && (rc = cli_parse_when("until", u, &q->until_ms)))
        return rc;
    /* "--until 2026-11-30" includes the 30th: a date alone ends at the last millisecond of
     * that day (UTC), or an accounting "from the 1st to the 30th" would miss a day. So
     * does a time include the minute or second it names ("T04:32Z" ends at 04:32:59.999),
     * as the listing shows entries to the second. */
    if (u)
        q->until_ms += cli_until_extent(u);
    if (s && u && q->since_ms > q->until_ms)
        return cli_fail(EXIT_USAGE, "--since %s is after --until %s: nothing could match", s, u);
    return 0;
}

/* One audit entry as JSON (PROTOCOL.md 11.6). It carries every stored value of the entry's
 * canonical encoding E, so that anyone can recompute entry_hash from the export alone:
 * time_ms next to the readable time, and the content type's number next to its name (the
 * name of a type this version does not know is "unknown", which loses the number). */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    /* Not valid UTF-8: only a log written before the daemon cleaned its entries. JSON
     * cannot carry the bytes, so the entry is kept with '?' for them (its entry_hash then
     * cannot be recomputed from the export, which audit verify --db still does). */
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (!c)
        return NULL;
    (void)text_clean_line(c, n, s);
    j = json_string(c);
    free(c);
    return j;
}

static json_t *entry_json(const Liaison__Control__AuditEntry *e)
{
    return json_pack("{s:I, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:o}", "seq", (json_int_t)e->seq,
                     "time", cli_json_time(e->time_ms), "time_ms", (json_int_t)e->time_ms, "actor", json_text(e->actor),
                     "action", json_text(e->action), "outcome", json_text(e->outcome), "message_id",
                     cli_json_hex(e->message_id.data, e->message_id.len), "peer",
                     e->peer[0] ? json_text(e->peer) : json_null(), "content_type",
                     e->content_type ? json_string(payload_type_name(e->content_type)) : json_null(),
                     "content_type_number", (json_int_t)e->content_type, "patient_tag",
                     cli_json_hex(e->patient_tag.data, e->patient_tag.len), "details",
                     e->details[0] ? json_text(e->details) : json_null(), "entry_hash",
                     cli_json_hex(e->entry_hash.data, e->entry_hash.len));
}

/* The text table of audit log, also under a proof that holds. */
static void entry_header(void)
{
    printf("%6s  %-19s  %-20s %-22s %-8s %-16s %s\n", "SEQ", "TIME (UTC)", "ACTOR", "ACTION", "OUTCOME", "PEER",
           "DETAILS");
}

static void entry_row(const Liaison__Control__AuditEntry *e)
{
    char t[32];
    text_time_utc(e->time_ms, t, sizeof t);
    printf("%6" PRIu64 "  %-19.19s  %-20s %-22s %-8s %-16s %s%s%s\n", e->seq, t, e->actor, e->action, e->outcome,
           e->peer[0] ? e->peer : "-", e->content_type ? payload_type_name(e->content_type) : "",
           e->content_type && e->details[0] ? " " : "", e->details);
}

static json_t *node_json(const Liaison__Control__AuditEntries *a)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "id", a->node_id, "name", a->node_name, "role", a->node_role, "org",
                     a->node_org);
}

/* A node that recorded rollback-detected knows its log is missing (or changed) entries
 * its peers witnessed: what it lists, accounts or exports may be incomplete. Said on
 * stderr, and in the JSON answer j when there is one; not an error (the node's log will
 * never be whole again, and its later accounting is still needed). */
static void log_incomplete(cli_t *cli, const Liaison__Control__AuditEntries *a, json_t *j)
{
    if (a->rollbacks_recorded == 0)
        return;
    char when[40];
    cli_time(a->last_rollback_ms, when, sizeof when);
    fprintf(stderr,
            "liaison: warning: %s recorded rollback-detected %" PRIu32 " time%s, the latest at %s: entries its peers"
            " witnessed are missing from its audit log or were changed, so this may be incomplete (liaison status"
            " lists the alarms; ask the peers' nodes what they hold)\n",
            a->node_id, a->rollbacks_recorded, a->rollbacks_recorded == 1 ? "" : "s", when);
    if (j && cli->json)
        json_object_set_new(j, "log_incomplete",
                            json_pack("{s:I, s:o}", "rollbacks_recorded", (json_int_t)a->rollbacks_recorded,
                                      "latest", cli_json_time(a->last_rollback_ms)));
}

/* Where audit log puts each entry: a row of the table, or an element of the JSON array. */
typedef struct log_out {
    bool json;
    json_t *arr;
} log_out_t;

static int log_out_one(void *ctx, const Liaison__Control__AuditEntries *a, const Liaison__Control__AuditEntry *e)
{
    (void)a;
    log_out_t *lo = ctx;
    if (lo->json)
        json_array_append_new(lo->arr, entry_json(e));
    else
        entry_row(e);
    return 0;
}

static int audit_log(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "since", .has_arg = true}, {.name = "until", .has_arg = true},
                     {.name = "peer", .has_arg = true},  {.name = "patient", .has_arg = true},
                     {.name = "action", .has_arg = true}, {.name = "limit", .has_arg = true},
                     {.name = "message", .has_arg = true}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc)
        return rc;
    Liaison__Control__AuditQuery q = LIAISON__CONTROL__AUDIT_QUERY__INIT;
    if ((rc = query_opts(o, &q)))
        return rc;
    q.peer = (char *)(cli_opt(o, "peer")->value ? cli_opt(o, "peer")->value : "");
    q.patient = (char *)(cli_opt(o, "patient")->value ? cli_opt(o, "patient")->value : "");
    q.action = (char *)(cli_opt(o, "action")->value ? cli_opt(o, "action")->value : "");
    if (q.patient[0] && !payload_valid_patient_id(q.patient))
        return cli_fail(EXIT_USAGE, "--patient: '%.64s' is not a patient id (1-64 of A-Z a-z 0-9 . _ : -)", q.patient);
    if (q.action[0] && !audit_action_known(q.action)) {
        char list[600];
        audit_actions_list(list, sizeof list);
        return cli_fail(EXIT_USAGE, "--action: '%.40s' is not an audit action (one of: %s)", q.action, list);
    }
    const char *msg = cli_opt(o, "message")->value;
    uint8_t msgid[LIAISON_MSGID_BYTES];
    if (msg && text_msgid_from_hex(msg, msgid) != 0)
        return cli_fail(EXIT_USAGE, "--message: '%.40s' is not a message id (32 hex digits, as inbox and outbox show)",
                        msg);
    if (msg)
        q.message_id = (ProtobufCBinaryData){sizeof msgid, msgid};
    uint64_t lim = 0;
    if (cli_opt(o, "limit")->value && (cli_parse_uint(cli_opt(o, "limit")->value, UINT32_MAX, &lim) != 0 || lim == 0))
        return cli_fail(EXIT_USAGE, "--limit: '%.24s' is not a number from 1 to %" PRIu32, cli_opt(o, "limit")->value,
                        UINT32_MAX);
    q.limit = (uint32_t)lim;
    Liaison__Control__Response *r;
    /* With --limit, one answer of at most N entries; without, the whole log that matches,
     * read page by page and printed as it comes (JSON: gathered, as one object). */
    log_out_t lo = {.json = cli->json, .arr = cli->json ? json_array() : NULL};
    if (!cli->json)
        entry_header();
    if (lim) {
        if ((rc = audit_query(cli, &q, &r))) {
            json_decref(lo.arr);
            return rc;
        }
        for (size_t i = 0; i < r->audit_entries->n_entries; i++)
            log_out_one(&lo, r->audit_entries, r->audit_entries->entries[i]);
    } else if ((rc = audit_pages(cli, &q, log_out_one, &lo, &r))) {
        json_decref(lo.arr);
        if (r)
            liaison__control__response__free_unpacked(r, NULL);
        return rc;
    }
    const Liaison__Control__AuditEntries *a = r->audit_entries;
    if (cli->json) {
        json_t *j = json_pack("{s:o, s:o}", "node", node_json(a), "entries", lo.arr);
        if (q.patient[0])
            json_object_set_new(j, "patient_case_variants", json_integer(a->patient_case_variants));
        log_incomplete(cli, a, j);
        cli_json_out(j);
    } else {
        if (q.patient[0])
            render_case_variants(a->patient_case_variants, q.patient, "audit entries");
        log_incomplete(cli, a, NULL);
    }
    liaison__control__response__free_unpacked(r, NULL);
    return 0;
}

/* ---- verify ---- */

static int load_card_key(const char *path, uint8_t pk[LIAISON_KEY_BYTES], char id[static LIAISON_MAX_ID + 1])
{
    char *text = cli_read_file(path, LIAISON_MAX_CARD_TEXT * 2);
    if (!text)
        return EXIT_USAGE;
    card_t cd;
    char err[300];
    int rc = card_decode(text, &cd, err, sizeof err);
    free(text);
    if (rc != 0)
        return cli_fail(EXIT_USAGE, "%s is not a valid card: %s", path, err);
    memcpy(pk, cd.sign_pk, LIAISON_KEY_BYTES);
    snprintf(id, LIAISON_MAX_ID + 1, "%s", cd.id);
    return 0;
}

static int report(cli_t *cli, bool ok, const char *text, uint64_t entries, uint64_t checkpoints)
{
    if (cli->json)
        cli_json_out(json_pack("{s:b, s:I, s:I, s:s}", "ok", ok, "entries", (json_int_t)entries, "checkpoints",
                               (json_int_t)checkpoints, "report", text));
    else
        fputs(text, ok ? stdout : stderr);
    return ok ? 0 : EXIT_AUDIT;
}

static int audit_verify(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "db", .has_arg = true}, {.name = "card", .has_arg = true},
                     {.name = "checkpoint", .has_arg = true}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc)
        return rc;
    const char *db = cli_opt(o, "db")->value, *card = cli_opt(o, "card")->value, *cp = cli_opt(o, "checkpoint")->value;
    if (!db) {
        if (card || cp)
            return cli_fail(EXIT_USAGE, "--card and --checkpoint go with --db FILE (offline verification of a copy)");
        Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
        rq.op_case = LIAISON__CONTROL__REQUEST__OP_AUDIT_VERIFY;
        rq.audit_verify = true;
        Liaison__Control__Response *r;
        if ((rc = cli_call(cli, true, &rq, LIAISON__CONTROL__RESPONSE__RESULT_AUDIT_VERIFY, &r)))
            return rc;
        const Liaison__Control__AuditVerifyResult *v = r->audit_verify;
        rc = report(cli, v->ok, v->report, v->entries, v->checkpoints);
        liaison__control__response__free_unpacked(r, NULL);
        return rc;
    }
    uint8_t pk[LIAISON_KEY_BYTES];
    char card_id[LIAISON_MAX_ID + 1] = "";
    if (card && (rc = load_card_key(card, pk, card_id)))
        return rc;
    char *note = NULL;
    if (cp && !(note = cli_read_file(cp, CHECKPOINT_MAX_TEXT)))
        return EXIT_USAGE;
    audit_verify_opts_t vo = {.sign_pk = card ? pk : NULL, .extra_checkpoint = note, .card_id = card ? card_id : NULL};
    audit_report_t *rep = calloc(1, sizeof *rep);
    if (!rep) {
        free(note);
        return cli_fail(EXIT_REFUSED, "out of memory");
    }
    if (audit_verify_file(db, &vo, rep) != 0) {
        size_t len = strlen(rep->text);
        while (len && rep->text[len - 1] == '\n')
            rep->text[--len] = 0;
        rc = cli_fail(EXIT_USAGE, "%s", rep->text); /* unreadable input, not a failed verification */
    } else {
        rc = report(cli, rep->ok, rep->text, rep->entries, rep->checkpoints);
    }
    free(rep);
    free(note);
    return rc;
}

/* ---- inclusion proofs ---- */

static int audit_prove(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc)
        return rc;
    uint64_t seq;
    if (npos != 1 || cli_parse_uint(pos[0], UINT64_MAX, &seq) != 0 || seq == 0)
        return cli_fail(EXIT_USAGE, "usage: liaison audit prove SEQ (an entry's sequence number, see: liaison audit log)");
    Liaison__Control__AuditProveRequest pr = LIAISON__CONTROL__AUDIT_PROVE_REQUEST__INIT;
    pr.seq = seq;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_AUDIT_PROVE;
    rq.audit_prove = &pr;
    Liaison__Control__Response *r;
    if ((rc = cli_call(cli, true, &rq, LIAISON__CONTROL__RESPONSE__RESULT_AUDIT_PROOF, &r)))
        return rc;
    const Liaison__Control__AuditProof *p = r->audit_proof;
    json_t *path = json_array();
    for (size_t i = 0; i < p->n_path; i++)
        json_array_append_new(path, cli_json_hex(p->path[i].data, p->path[i].len));
    /* Always JSON: the proof is a file to hand to someone else. */
    cli_json_out(json_pack("{s:s, s:I, s:I, s:o, s:o, s:s, s:o}", "format", "liaison-inclusion-proof-v1", "seq",
                           (json_int_t)p->seq, "leaf_index", (json_int_t)p->leaf_index, "entry",
                           cli_json_hex(p->entry.data, p->entry.len), "path", path, "checkpoint", p->checkpoint,
                           "sign_pk", cli_json_hex(p->sign_pk.data, p->sign_pk.len)));
    liaison__control__response__free_unpacked(r, NULL);
    return 0;
}

static int unhex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = s ? strlen(s) : 0;
    if (!s || n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
            return -1;
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

static int proof_fail(cli_t *cli, const char *what)
{
    if (cli->json)
        cli_json_out(json_pack("{s:b, s:s}", "ok", 0, "report", what));
    fprintf(stderr, "liaison: proof does NOT hold: %s\n", what);
    return EXIT_AUDIT;
}

static int audit_verify_proof(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "card", .has_arg = true}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1)
        return cli_fail(EXIT_USAGE, "usage: liaison audit verify-proof FILE [--card CARD_FILE]");
    char *text = cli_read_file(pos[0], 1u << 20);
    if (!text)
        return EXIT_USAGE;
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    free(text);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return cli_fail(EXIT_USAGE, "%s is not a proof (JSON from liaison audit prove): %s", pos[0], je.text);
    }
    const char *entry_hex = json_string_value(json_object_get(j, "entry"));
    const char *note = json_string_value(json_object_get(j, "checkpoint"));
    const char *pk_hex = json_string_value(json_object_get(j, "sign_pk"));
    json_t *seq_j = json_object_get(j, "seq"), *path_j = json_object_get(j, "path");
    static uint8_t entry[1u << 16];
    uint8_t pk[LIAISON_KEY_BYTES], card_pk[LIAISON_KEY_BYTES];
    size_t elen = 0, pklen = 0;
    if (!entry_hex || !note || !pk_hex || !json_is_integer(seq_j) || !json_is_array(path_j) ||
        json_array_size(path_j) > 64 || unhex(entry_hex, entry, sizeof entry, &elen) != 0 || elen < 8 ||
        unhex(pk_hex, pk, sizeof pk, &pklen) != 0 || pklen != LIAISON_KEY_BYTES) {
        json_decref(j);
        return cli_fail(EXIT_USAGE, "%s is not a complete proof (entry, seq, path, checkpoint, sign_pk)", pos[0]);
    }
    const char *card = cli_opt(o, "card")->value;
    char card_id[LIAISON_MAX_ID + 1] = "";
    if (card) {
        if ((rc = load_card_key(card, card_pk, card_id))) {
            json_decref(j);
            return rc;
        }
        if (sodium_memcmp(card_pk, pk, LIAISON_KEY_BYTES) != 0) {
            json_decref(j);
            return proof_fail(cli, "the proof's key is not the identity key on the card");
        }
    }
    uint8_t path[64][MERKLE_HASH_BYTES];
    size_t plen = json_array_size(path_j);
    for (size_t i = 0; i < plen; i++) {
        size_t hl = 0;
        if (unhex(json_string_value(json_array_get(path_j, i)), path[i], MERKLE_HASH_BYTES, &hl) != 0 ||
            hl != MERKLE_HASH_BYTES) {
            json_decref(j);
            return cli_fail(EXIT_USAGE, "%s: path element %zu is not a 32-byte hash", pos[0], i);
        }
    }
    uint64_t seq = (uint64_t)json_integer_value(seq_j);
    /* What the entry says, read from its canonical encoding E (PROTOCOL.md 11): the
     * proof is about these bytes, so they are shown only from E itself. */
    static char strings[sizeof entry];
    audit_record_t d;
    checkpoint_t cp;
    char err[300];
    uint8_t leaf[MERKLE_HASH_BYTES];
    merkle_leaf_hash(entry, elen, leaf);
    if (checkpoint_verify(note, strlen(note), pk, &cp, err, sizeof err) != 0) {
        rc = proof_fail(cli, err);
    } else if (card && strcmp(cp.node_id, card_id) != 0) {
        /* The key signs for whatever origin it writes: the card vouches for its own id's
         * log only. */
        snprintf(err, sizeof err, "the checkpoint is of the log of %s, but the card given is %s's", cp.node_id,
                 card_id);
        rc = proof_fail(cli, err);
    } else if (audit_decode(entry, elen, &d, strings, sizeof strings) != 0) {
        rc = proof_fail(cli, "the entry is not an audit entry in its canonical encoding");
    } else if (d.seq != seq || seq == 0) {
        rc = proof_fail(cli, "the entry's sequence number is not the one the proof claims");
    } else if (merkle_verify_inclusion(leaf, seq - 1, cp.size, (const uint8_t(*)[MERKLE_HASH_BYTES])path, plen,
                                       cp.root) != 0) {
        rc = proof_fail(cli, "the entry is not in the log the checkpoint signs (inclusion proof fails)");
    } else {
        Liaison__Control__AuditEntry ae = LIAISON__CONTROL__AUDIT_ENTRY__INIT;
        ae.seq = d.seq;
        ae.time_ms = d.time_ms;
        ae.actor = (char *)d.actor;
        ae.action = (char *)d.action;
        ae.outcome = (char *)d.outcome;
        ae.message_id = (ProtobufCBinaryData){d.message_id_len, (uint8_t *)d.message_id};
        ae.peer = (char *)d.peer;
        ae.content_type = d.content_type;
        ae.patient_tag = (ProtobufCBinaryData){d.patient_tag_len, (uint8_t *)d.patient_tag};
        ae.details = (char *)d.details;
        char t[32];
        text_time_utc(cp.time_ms, t, sizeof t);
        if (cli->json) {
            json_t *ej = entry_json(&ae);
            json_object_del(ej, "entry_hash"); /* the chain hash needs the entry before it: not in a proof */
            cli_json_out(json_pack("{s:b, s:I, s:s, s:I, s:b, s:o}", "ok", 1, "seq", (json_int_t)seq, "node",
                                   cp.node_id, "tree_size", (json_int_t)cp.size, "key_from_card", card != NULL,
                                   "entry_fields", ej));
        } else {
            printf("proof holds: entry %" PRIu64 " is in the audit log of %s as signed at %s (%" PRIu64
                   " entries):\n",
                   seq, cp.node_id, t, cp.size);
            entry_header();
            entry_row(&ae);
            if (!card)
                printf("note: the signing key came from the proof itself; pass --card CARD_FILE to check it"
                       " against the node's card\n");
        }
        rc = 0;
    }
    json_decref(j);
    return rc;
}

/* ---- disclosures ---- */

static int audit_disclosures(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "patient", .has_arg = true}, {.name = "since", .has_arg = true},
                     {.name = "until", .has_arg = true}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc)
        return rc;
    const char *patient = cli_opt(o, "patient")->value;
    if (!patient)
        return cli_fail(EXIT_USAGE, "disclosures needs --patient P");
    if (!payload_valid_patient_id(patient))
        return cli_fail(EXIT_USAGE, "--patient: '%.64s' is not a patient id", patient);
    Liaison__Control__AuditQuery q = LIAISON__CONTROL__AUDIT_QUERY__INIT;
    if ((rc = query_opts(o, &q)))
        return rc;
    q.patient = (char *)patient;
    q.disclosures = true;
    Liaison__Control__Response *r;
    if ((rc = audit_query(cli, &q, &r)))
        return rc;
    const Liaison__Control__AuditEntries *a = r->audit_entries;
    /* One disclosure per (message, recipient): its delivery, or its queuing while it
     * has not been delivered yet. */
    json_t *rows = json_array();
    for (size_t i = 0; i < a->n_entries; i++) {
        const Liaison__Control__AuditEntry *e = a->entries[i];
        bool queued = strcmp(e->action, "message-queued") == 0;
        if (queued) {
            bool later = false;
            for (size_t k = i + 1; k < a->n_entries && !later; k++) {
                const Liaison__Control__AuditEntry *f = a->entries[k];
                later = strcmp(f->action, "message-queued") != 0 && strcmp(f->peer, e->peer) == 0 &&
                        f->message_id.len == e->message_id.len &&
                        memcmp(f->message_id.data, e->message_id.data, e->message_id.len) == 0;
            }
            if (later)
                continue;
        }
        const char *status = queued ? "pending (queued, not yet delivered)"
                             : strcmp(e->action, "message-delivered") == 0 ? "disclosed"
                                                                          : "not disclosed (refused by recipient)";
        json_array_append_new(rows, json_pack("{s:o, s:s, s:s, s:s, s:s, s:o, s:I}", "date", cli_json_time(e->time_ms),
                                              "recipient", e->peer, "kind", payload_type_name(e->content_type),
                                              "purpose", "treatment (care coordination)", "status", status,
                                              "message_id", cli_json_hex(e->message_id.data, e->message_id.len),
                                              "audit_seq", (json_int_t)e->seq));
    }
    if (cli->json) {
        json_t *j = json_pack("{s:s, s:o, s:o, s:I}", "patient", patient, "node", node_json(a), "disclosures", rows,
                              "patient_case_variants", (json_int_t)a->patient_case_variants);
        log_incomplete(cli, a, j);
        cli_json_out(j);
    } else {
        printf("Accounting of disclosures for patient %s by %s (%s, %s)\n", patient, a->node_id, a->node_name,
               a->node_role);
        if (json_array_size(rows) == 0)
            printf("No disclosures recorded.\n");
        else
            printf("%-24s  %-16s %-18s %-30s %s\n", "DATE (UTC)", "RECIPIENT", "INFORMATION", "PURPOSE", "STATUS");
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            printf("%-24s  %-16s %-18s %-30s %s\n", json_string_value(json_object_get(row, "date")),
                   json_string_value(json_object_get(row, "recipient")), json_string_value(json_object_get(row, "kind")),
                   json_string_value(json_object_get(row, "purpose")), json_string_value(json_object_get(row, "status")));
        }
        json_decref(rows);
        render_case_variants(a->patient_case_variants, patient, "disclosure records");
        log_incomplete(cli, a, NULL);
    }
    liaison__control__response__free_unpacked(r, NULL);
    return 0;
}

/* ---- export ---- */

typedef struct export {
    FILE *out;
    bool fhir;
    bool bad;      /* an event or line could not be made (out of memory) */
    size_t count;
} export_t;

/* Writes text with every line after the first indented by `indent` more spaces. */
static void put_indented(FILE *out, const char *text, int indent)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        fwrite(p, 1, n, out);
        p += n;
        if (*p == '\n') {
            fprintf(out, "\n%*s", indent, "");
            p++;
        }
    }
}

/* One entry of the export: a JSON line, or an element of the Bundle's entry array,
 * laid out as json_dumpf(JSON_INDENT(2)) lays out the whole Bundle. */
static int export_one(void *ctx, const Liaison__Control__AuditEntries *a, const Liaison__Control__AuditEntry *e)
{
    export_t *ex = ctx;
    json_t *j;
    if (ex->fhir) {
        char url[160];
        snprintf(url, sizeof url, "urn:liaison:audit:%s:%" PRIu64, a->node_id, e->seq);
        json_t *ev = fhir_audit_event(a, e);
        j = ev ? json_pack("{s:s, s:o}", "fullUrl", url, "resource", ev) : NULL;
    } else {
        j = entry_json(e);
        if (j && json_object_set_new(j, "node", json_string(a->node_id)) != 0) {
            json_decref(j);
            j = NULL;
        }
    }
    char *text = j ? json_dumps(j, ex->fhir ? JSON_INDENT(2) : JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        ex->bad = true; /* out of memory: never a silently missing event or line */
        return 1;
    }
    if (ex->fhir) {
        fputs(ex->count ? ",\n    " : "\n    ", ex->out);
        put_indented(ex->out, text, 4);
    } else {
        fputs(text, ex->out);
        fputc('\n', ex->out);
    }
    free(text);
    ex->count++;
    return 0;
}

static int audit_export(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "format", .has_arg = true}, {.name = "since", .has_arg = true},
                     {.name = "until", .has_arg = true}, {.name = "output", .has_arg = true}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc)
        return rc;
    const char *fmt = cli_opt(o, "format")->value ? cli_opt(o, "format")->value : "jsonl";
    bool fhir = strcmp(fmt, "fhir") == 0;
    if (!fhir && strcmp(fmt, "jsonl") != 0)
        return cli_fail(EXIT_USAGE, "--format: '%.16s' is not a format (jsonl or fhir)", fmt);
    Liaison__Control__AuditQuery q = LIAISON__CONTROL__AUDIT_QUERY__INIT;
    if ((rc = query_opts(o, &q)))
        return rc;
    const char *outp = cli_opt(o, "output")->value;
    Liaison__Control__Response *r = NULL;
    /* The export is data: its text goes out exactly as logged, not as shown to people. */
    FILE *out = outp ? cli_create(outp) : term_raw_stdout();
    if (!out) {
        int e = errno;
        if (e == EEXIST)
            return cli_fail(EXIT_USAGE, "%s already exists (export never overwrites a file: choose a new name)", outp);
        if (e == ENOENT)
            return cli_fail(EXIT_USAGE, "cannot create %s: its directory does not exist", outp);
        return cli_fail(EXIT_USAGE, "cannot create %s: %s", outp, strerror(e));
    }
    /* Written page by page as the entries come: a FHIR Bundle of a year's log is
     * gigabytes as one JSON tree in memory. */
    export_t ex = {.out = out, .fhir = fhir};
    if (fhir) {
        char now[40];
        cli_time_iso(liaison_now_ms(), now, sizeof now);
        fprintf(out, "{\n  \"resourceType\": \"Bundle\",\n  \"type\": \"collection\",\n  \"timestamp\": \"%s\",\n"
                     "  \"entry\": [",
                now);
    }
    rc = audit_pages(cli, &q, export_one, &ex, &r);
    bool bad = ex.bad;
    if (rc && !bad) { /* the daemon failed (or went away) part way: said by audit_pages */
        if (outp) {
            fclose(out);
            unlink(outp);
        } else {
            fflush(out);
        }
        if (r)
            liaison__control__response__free_unpacked(r, NULL);
        return rc;
    }
    size_t count = ex.count;
    if (fhir && !bad)
        fputs(ex.count ? "\n  ]\n}\n" : "]\n}\n", out);
    /* A line or event made while memory ran out may be short of a field. */
    bool oom = cli_alloc_failed();
    bool unwritten = ferror(out);
    int werr = errno;
    int ended; /* the file closed, or standard output flushed */
    if (outp)
        ended = fclose(out);
    else
        ended = fflush(out);
    if (ended != 0) {
        unwritten = true;
        werr = errno;
    }
    bad = bad || oom || unwritten;
    if (r)
        liaison__control__response__free_unpacked(r, NULL);
    /* The file is ours (cli_create): a part of the log must not stay behind looking
     * like the whole export of it. */
    if (bad && outp)
        unlink(outp);
    if (bad && !outp && unwritten) /* as any other command's output that cannot be written */
        return cli_fail(EXIT_OUTPUT_LOST, "cannot write standard output: %s (the export written is incomplete)",
                        strerror(werr));
    if (bad)
        return cli_fail(EXIT_REFUSED, "%s %s%s", oom ? "out of memory while exporting to" : "cannot write",
                        outp ? outp : "standard output",
                        outp ? " (the part written was removed)" : " (the export written is incomplete)");
    if (outp)
        fprintf(stderr, "wrote %zu audit events to %s\n", count, outp);
    return 0;
}

/* ---- checkpoint ---- */

static int audit_checkpoint(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{.name = "peer", .has_arg = true}, {.name = "output", .has_arg = true}, {0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 0, &npos);
    if (rc)
        return rc;
    const char *peer = cli_opt(o, "peer")->value, *outp = cli_opt(o, "output")->value;
    if (peer && !text_valid_id(peer))
        return cli_fail(EXIT_USAGE, "--peer: '%.64s' is not a node id", peer);
    Liaison__Control__AuditCheckpointRequest cr = LIAISON__CONTROL__AUDIT_CHECKPOINT_REQUEST__INIT;
    cr.peer = (char *)(peer ? peer : "");
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_AUDIT_CHECKPOINT;
    rq.audit_checkpoint = &cr;
    Liaison__Control__Response *r;
    if ((rc = cli_call(cli, true, &rq, LIAISON__CONTROL__RESPONSE__RESULT_AUDIT_CHECKPOINT, &r)))
        return rc;
    const Liaison__Control__AuditCheckpoint *cp = r->audit_checkpoint;
    if (outp) {
        FILE *f = cli_create(outp);
        if (!f) {
            int e = errno;
            liaison__control__response__free_unpacked(r, NULL);
            return cli_fail(EXIT_USAGE, "cannot create %s: %s", outp,
                            e == EEXIST ? "it already exists (choose a new name)" : strerror(e));
        }
        bool ok = fputs(cp->note, f) >= 0;
        if (fclose(f) != 0 || !ok) {
            unlink(outp); /* ours (created here), and a note cut short is no checkpoint */
            liaison__control__response__free_unpacked(r, NULL);
            return cli_fail(EXIT_REFUSED, "cannot write %s (the part written was removed)", outp);
        }
    }
    if (cli->json)
        cli_json_out(json_pack("{s:s, s:I, s:o, s:s}", "origin", cp->origin, "size", (json_int_t)cp->size, "time",
                               cli_json_time(cp->time_ms), "note", cp->note));
    else if (outp)
        printf("Wrote the checkpoint of %s at %" PRIu64 " entries to %s\n", cp->origin, cp->size, outp);
    else
        fputs(cp->note, stdout);
    liaison__control__response__free_unpacked(r, NULL);
    return 0;
}

/* ---- accept-restore ---- */

/* Over the control socket: it changes this node's witness state (and is audited), which
 * the read-only audit socket never does. */
static int audit_accept_restore(cli_t *cli, int argc, char **argv)
{
    cli_opt_t o[] = {{0}};
    const char *pos[1];
    size_t npos;
    int rc = cli_parse(cli, argc, argv, o, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1)
        return cli_fail(EXIT_USAGE, "accept-restore needs the node id of the peer that was restored");
    if (!text_valid_id(pos[0]))
        return cli_fail(EXIT_USAGE, "'%.64s' is not a node id", pos[0]);
    Liaison__Control__AcceptRestoreRequest ar = LIAISON__CONTROL__ACCEPT_RESTORE_REQUEST__INIT;
    ar.id = (char *)pos[0];
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_ACCEPT_RESTORE;
    rq.accept_restore = &ar;
    Liaison__Control__Response *r;
    if ((rc = cli_call(cli, false, &rq, LIAISON__CONTROL__RESPONSE__RESULT_ACCEPT_RESTORE, &r)))
        return rc;
    uint64_t size = r->accept_restore->forgotten_size;
    if (cli->json)
        cli_json_out(json_pack("{s:s, s:I}", "peer", pos[0], "forgotten_size", (json_int_t)size));
    else
        printf("Forgot the checkpoint of %s's log held at %" PRIu64 " entries; its next checkpoint is taken as a"
               " first one (its alarms stay in liaison status and the audit log).\n",
               pos[0], size);
    liaison__control__response__free_unpacked(r, NULL);
    return 0;
}

int cmd_audit(cli_t *cli, int argc, char **argv)
{
    static const struct {
        const char *name, *full;
        int (*run)(cli_t *, int, char **);
    } subs[] = {{"log", "audit log", audit_log},
                {"verify", "audit verify", audit_verify},
                {"prove", "audit prove", audit_prove},
                {"verify-proof", "audit verify-proof", audit_verify_proof},
                {"disclosures", "audit disclosures", audit_disclosures},
                {"export", "audit export", audit_export},
                {"checkpoint", "audit checkpoint", audit_checkpoint},
                {"accept-restore", "audit accept-restore", audit_accept_restore}};
    if (argc < 1)
        return cli_fail(EXIT_USAGE, "audit needs a subcommand: log, verify, prove, verify-proof, disclosures, export,"
                                    " checkpoint, accept-restore");
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[0], subs[i].name) == 0) {
            cli->cmd = subs[i].full;
            return subs[i].run(cli, argc - 1, argv + 1);
        }
    return cli_fail(EXIT_USAGE, "unknown audit subcommand '%.32s'", argv[0]);
}
