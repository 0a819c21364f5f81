/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the batch discipline of the running daemon: deferred answers, group commit, audit helper. */
#include "node.h"

#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "control.h"
#include "control.pb-c.h"
#include "delivery.h"
#include "log.h"
#include "transport.h"
#include "waits.h"

static void deferred_send(node_t *n, deferred_t *d)
{
    (void)n;
    transport_router_send(d->sock, d->rid, d->rid_len, d->data, d->len);
    if (d->control)
        sodium_memzero(d->data, d->len); /* may hold decrypted content */
    free(d->data);
    d->data = NULL;
}

int node_defer(node_t *n, void *sock, const uint8_t *rid, size_t rid_len, uint8_t *data, size_t len, bool control,
               uint64_t request_id)
{
    deferred_t d = {.sock = sock, .data = data, .len = len, .control = control, .request_id = request_id,
                    .txn = store_txn_id(n->store)};
    if (rid_len > sizeof d.rid) {
        free(data);
        return -1;
    }
    memcpy(d.rid, rid, rid_len);
    d.rid_len = rid_len;
    if (!store_in_txn(n->store)) {
        deferred_send(n, &d);
        return 0;
    }
    if (n->n_deferred == n->cap_deferred) {
        size_t cap = n->cap_deferred ? n->cap_deferred * 2 : 64;
        deferred_t *nd = realloc(n->deferred, cap * sizeof *nd);
        if (!nd) {
            free(data);
            return -1;
        }
        n->deferred = nd;
        n->cap_deferred = cap;
    }
    n->deferred[n->n_deferred++] = d;
    return 0;
}

int node_defer_wait(node_t *n, uint8_t *data, size_t len, const wait_t *w)
{
    bool held = store_in_txn(n->store);
    wait_t *copy = held ? malloc(sizeof *copy) : NULL;
    if (held && !copy) {
        free(data);
        return -1;
    }
    size_t before = n->n_deferred;
    if (node_defer(n, w->sock, w->rid, w->rid_len, data, len, true, w->request_id) != 0) {
        free(copy);
        return -1;
    }
    if (copy && n->n_deferred == before + 1) {
        *copy = *w;
        n->deferred[before].wait = copy;
    } else {
        free(copy);
    }
    return 0;
}

int node_defer_about(node_t *n, const uint8_t *rid, size_t rid_len, uint8_t *data, size_t len,
                     const uint8_t msgid[static LIAISON_MSGID_BYTES])
{
    size_t before = n->n_deferred;
    if (node_defer(n, n->router, rid, rid_len, data, len, false, 0) != 0)
        return -1;
    if (n->n_deferred == before + 1) {
        n->deferred[before].about_message = true;
        memcpy(n->deferred[before].msgid, msgid, LIAISON_MSGID_BYTES);
    }
    return 0;
}

/* Replaces a control answer with an error: its change was not committed (why: the
 * store's error, which names no clinical content). */
static void fail_control(const node_t *n, deferred_t *d, const char *why)
{
    char msg[900];
    snprintf(msg, sizeof msg,
             "the daemon could not commit to its database %s, so nothing was done (reading a message needs it"
             " too: each read is recorded in the audit log first): %s%s",
             n->paths.db_file, why, strstr(why, "disk is full") ? "; free space on the disk that holds it" : "");
    Liaison__Control__Response r = LIAISON__CONTROL__RESPONSE__INIT;
    r.request_id = d->request_id;
    r.code = LIAISON__CONTROL__CODE__INTERNAL;
    r.error = msg;
    size_t len = liaison__control__response__get_packed_size(&r);
    uint8_t *buf = malloc(len ? len : 1);
    sodium_memzero(d->data, d->len);
    free(d->data);
    d->data = buf;
    d->len = buf ? len : 0;
    if (buf)
        liaison__control__response__pack(&r, buf);
}

bool node_commit(node_t *n)
{
    bool ok = true, had_txn = store_in_txn(n->store);
    uint64_t txn = store_txn_id(n->store);
    if (had_txn) {
        n->batches++;
        if (delivery_before_commit(n) != 0) {
            ok = false;
            n->commits_failed++;
            log_err("the batch's receipts could not be signed or stored: its transaction is rolled back");
            snprintf(n->commit_error, sizeof n->commit_error, "the batch's receipts could not be signed or stored");
            if (!n->commit_error_ms)
                n->commit_error_ms = liaison_now_ms();
            store_rollback(n->store);
        } else if (store_commit(n->store) != 0) {
            ok = false;
            n->commits_failed++;
            log_err("commit failed: %s", store_error(n->store));
            snprintf(n->commit_error, sizeof n->commit_error, "%s", store_error(n->store));
            if (!n->commit_error_ms)
                n->commit_error_ms = liaison_now_ms();
            store_rollback(n->store);
        }
        if (ok)
            n->commit_error_ms = 0;
    }
    n->n_held = 0; /* held by a transaction rolled back earlier: their messages are not stored */
    /* First the envelopes to peers (their delivery is what everyone waits for: the
     * client's answer says only "stored"), then the answers held for this commit. */
    delivery_after_commit(n, ok && had_txn, txn);
    bool lost_logged = false;
    /* The answers held so far are taken out of the node: a transaction may be open again
     * already (delivery_after_commit queues a transmission it could not hand over), and a
     * wait asked again below then holds its new answer for that one, in a fresh array
     * that this loop does not walk. */
    deferred_t *answers = n->deferred;
    size_t n_answers = n->n_deferred, cap_answers = n->cap_deferred;
    n->deferred = NULL;
    n->n_deferred = n->cap_deferred = 0;
    for (size_t i = 0; i < n_answers; i++) {
        deferred_t *d = &answers[i];
        /* Deferred answers exist only while a transaction is open (node_defer); one
         * whose transaction is not the one just committed was rolled back with it. */
        bool committed = ok && had_txn && d->txn == txn;
        if (!committed) {
            const char *why = store_error(n->store);
            if (ok) {
                why = "an earlier step of the same batch failed and its transaction was rolled back (see the"
                      " daemon log)";
                if (!lost_logged)
                    log_err("a transaction was rolled back after an error: its answers are withdrawn");
                lost_logged = true;
            }
            if (!d->control) {
                free(d->data);
                d->data = NULL;
                /* A receipt or refusal not committed: the message is not stored (or its
                 * refusal not audited) here, which the peer learns at once; other
                 * answers (witness replies) are dropped, and the peer asks again. */
                if (d->about_message && (d->data = delivery_try_later_frame(d->msgid, &d->len)) != NULL)
                    deferred_send(n, d);
                continue;
            }
            if (d->wait) {
                free(d->data);
                d->data = NULL;
                control_wait_again(n, d->wait);
                free(d->wait);
                d->wait = NULL;
                continue;
            }
            fail_control(n, d, why);
            if (!d->data) {
                log_err("out of memory: the error answer to request %" PRIu64 " is lost; the client times out",
                        d->request_id);
                continue;
            }
        }
        free(d->wait);
        d->wait = NULL;
        deferred_send(n, d);
    }
    if (!n->deferred) { /* nothing held meanwhile: the array is kept for the next batch */
        n->deferred = answers;
        n->cap_deferred = cap_answers;
    } else {
        free(answers);
    }
    control_waits_after_commit(n, ok);
    return ok;
}

void node_release_idle(node_t *n)
{
    if (store_in_txn(n->store))
        return;
    if (n->n_deferred == 0) {
        free(n->deferred);
        n->deferred = NULL;
        n->cap_deferred = 0;
    }
    if (n->n_held == 0) {
        free(n->held);
        n->held = NULL;
        n->cap_held = 0;
    }
    if (n->n_outgoing == 0) {
        free(n->outgoing);
        n->outgoing = NULL;
        n->cap_outgoing = 0;
    }
}

int node_audit(node_t *n, const audit_entry_t *e)
{
    if (audit_append(n->audit, e) < 0) {
        log_err("audit append failed: %s", store_error(n->store));
        return -1;
    }
    return 0;
}

void node_local_actor(uid_t uid, char *buf, size_t len)
{
    /* The user database is read at most once a second per uid seen last (a pipelined
     * client sends thousands of requests a second; each lookup opens /etc/passwd). */
    static uid_t cached_uid;
    static char cached[LIAISON_MAX_ID + 80];
    static uint64_t cached_at_ms;
    uint64_t now = liaison_now_ms();
    if (cached[0] && cached_uid == uid && now - cached_at_ms < 1000) {
        snprintf(buf, len, "%s", cached);
        return;
    }
    struct passwd pw, *res = NULL;
    char tmp[1024];
    if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &res) == 0 && res)
        snprintf(cached, sizeof cached, "user:%s", res->pw_name);
    else
        snprintf(cached, sizeof cached, "uid:%u", (unsigned)uid);
    cached_uid = uid;
    cached_at_ms = now;
    snprintf(buf, len, "%s", cached);
}
