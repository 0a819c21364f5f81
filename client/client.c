/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the client side of the control protocol: the connection to liaisond's IPC
 * socket, request ids, timeouts, pipelining, and turning answers into liaison_rc. */
#include "client_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <sodium.h>
#include <zmq.h>

#include "config.h"
#include "payload.pb-c.h"
#include "constants.h"
#include "text.h"

struct liaison_client {
    void *ctx;
    void *sock;
    char path[CONFIG_PATH_MAX];
    int timeout_ms;
    uint64_t next_id;
    uint64_t live_from;       /* answers to requests below this id were abandoned */
    size_t pending;
    bool changes;             /* a pending request may change something (a send, a read): see changes_state */
    const volatile sig_atomic_t *interrupt; /* the caller's flag (liaison_client_set_interrupt), or NULL */
    char error[512];
};

__attribute__((format(printf, 2, 3))) static void set_error(liaison_client_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
}

const char *liaison_client_error(const liaison_client_t *c)
{
    return c ? c->error : "no client";
}

void liaison_client_set_timeout(liaison_client_t *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
}

void liaison_client_set_interrupt(liaison_client_t *c, const volatile sig_atomic_t *flag)
{
    c->interrupt = flag;
}

static bool interrupted(const liaison_client_t *c)
{
    return c->interrupt && *c->interrupt;
}

size_t liaison_pending(const liaison_client_t *c)
{
    return c->pending;
}

/* The command that starts the daemon owning socket path: the service for the system
 * layout, "liaisond --home HOME" for a node directory (its sockets are HOME/run/...). */
static void start_hint(const char *path, char *out, size_t outlen)
{
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) : 0;
    if (strncmp(path, "/run/liaison/", 13) == 0 && !strchr(path + 13, '/'))
        snprintf(out, outlen, "systemctl start liaisond");
    else if (dir > 4 && strncmp(path + dir - 4, "/run", 4) == 0)
        snprintf(out, outlen, "liaisond --home %.*s", (int)(dir - 4), path);
    else
        snprintf(out, outlen, "systemctl start liaisond, or: liaisond --home DIR");
}

/* Before handing the path to ZeroMQ (which would retry silently forever), find out
 * whether a daemon listens there and whether we may talk to it. */
static liaison_rc probe(const char *path, char *err, size_t errlen)
{
    struct stat st;
    char hint[CONFIG_PATH_MAX + 64];
    start_hint(path, hint, sizeof hint);
    if (stat(path, &st) != 0) {
        if (errno == EACCES) {
            snprintf(err, errlen, "permission denied on %s (ask an administrator to add you to the group that owns it)",
                     path);
            return LIAISON_PERMISSION;
        }
        snprintf(err, errlen, "liaisond is not running: no socket at %s (start it with: %s)", path, hint);
        return LIAISON_UNREACHABLE;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s is not a socket", path);
        return LIAISON_BAD_REQUEST;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "socket path %s is too long", path);
        return LIAISON_BAD_REQUEST;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a socket: %s", strerror(errno));
        return LIAISON_INTERNAL;
    }
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    close(fd);
    if (rc == 0)
        return LIAISON_OK;
    if (e == EACCES || e == EPERM) {
        snprintf(err, errlen,
                 "permission denied on %s (the control socket is for group 'liaison', the audit socket for"
                 " group 'liaison-audit': ask an administrator to add you)",
                 path);
        return LIAISON_PERMISSION;
    }
    if (e == ECONNREFUSED)
        snprintf(err, errlen, "liaisond is not running (stale socket %s; start it with: %s)", path, hint);
    else
        snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(e));
    return LIAISON_UNREACHABLE;
}

const char *liaison_rc_string(liaison_rc rc)
{
    switch (rc) {
    case LIAISON_OK: return "LIAISON_OK";
    case LIAISON_BAD_REQUEST: return "LIAISON_BAD_REQUEST";
    case LIAISON_REFUSED: return "LIAISON_REFUSED";
    case LIAISON_NOT_FOUND: return "LIAISON_NOT_FOUND";
    case LIAISON_INTERNAL: return "LIAISON_INTERNAL";
    case LIAISON_UNREACHABLE: return "LIAISON_UNREACHABLE";
    case LIAISON_TIMEOUT: return "LIAISON_TIMEOUT";
    case LIAISON_PROTOCOL: return "LIAISON_PROTOCOL";
    case LIAISON_PERMISSION: return "LIAISON_PERMISSION";
    case LIAISON_INTERRUPTED: return "LIAISON_INTERRUPTED";
    }
    return "LIAISON_UNKNOWN";
}

liaison_rc liaison_client_connect_path(const char *path, liaison_client_t **out, char *err, size_t errlen)
{
    char scratch[1];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    *out = NULL;
    if (!path || strlen(path) >= CONFIG_PATH_MAX) {
        snprintf(err, errlen, "socket path is missing or too long");
        return LIAISON_BAD_REQUEST;
    }
    liaison_rc rc = probe(path, err, errlen);
    if (rc != LIAISON_OK)
        return rc;
    liaison_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return LIAISON_INTERNAL;
    }
    snprintf(c->path, sizeof c->path, "%s", path);
    c->timeout_ms = 30000;
    c->next_id = 1;
    c->live_from = 1;
    char ep[CONFIG_PATH_MAX + 8];
    snprintf(ep, sizeof ep, "ipc://%s", path);
    int zero = 0;
    c->ctx = zmq_ctx_new();
    c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_DEALER) : NULL;
    /* No receive high-water mark: answers to pipelined requests wait here, never dropped. */
    if (!c->sock || zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_RCVHWM, &zero, sizeof zero) != 0 || zmq_connect(c->sock, ep) != 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", path, zmq_strerror(zmq_errno()));
        liaison_client_close(c);
        return LIAISON_INTERNAL;
    }
    *out = c;
    return LIAISON_OK;
}

liaison_rc liaison_client_connect(const char *home, liaison_socket which, liaison_client_t **out, char *err,
                                  size_t errlen)
{
    char scratch[1];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    *out = NULL;
    if (which != LIAISON_SOCKET_CONTROL && which != LIAISON_SOCKET_AUDIT) {
        snprintf(err, errlen, "socket %d is neither LIAISON_SOCKET_CONTROL nor LIAISON_SOCKET_AUDIT", (int)which);
        return LIAISON_BAD_REQUEST;
    }
    paths_t p;
    if (paths_resolve(&p, home, err, errlen) != 0)
        return LIAISON_BAD_REQUEST;
    const char *sock = which == LIAISON_SOCKET_AUDIT ? p.audit_sock : p.control_sock;
    struct stat st;
    /* No socket, and an init that did not finish: the daemon would refuse to start, so
     * "start it" is not the fix. */
    if (stat(sock, &st) != 0 && errno == ENOENT && stat(p.init_marker, &st) == 0) {
        const char *where = p.home[0] ? p.home : p.config_dir;
        snprintf(err, errlen, "the node at %s was not set up completely (liaison init was interrupted): run the same"
                 " liaison init again to finish it", where);
        return LIAISON_NOT_FOUND;
    }
    /* No socket and no configuration: there is no node here at all, which "liaisond is
     * not running" would hide. */
    if (stat(sock, &st) != 0 && errno == ENOENT && stat(p.config_file, &st) != 0 && errno == ENOENT) {
        const char *where = p.home[0] ? p.home : p.config_dir;
        snprintf(err, errlen, "no liaison node at %s (create one with: liaison %s%s%sinit --id ID --name NAME --role ROLE"
                 " --listen ENDPOINT)", where, p.home[0] ? "--home " : "", p.home[0] ? p.home : "", p.home[0] ? " " : "");
        return LIAISON_NOT_FOUND;
    }
    return liaison_client_connect_path(sock, out, err, errlen);
}

liaison_client_t *liaison_client_open_path(const char *path, char *err, size_t errlen)
{
    liaison_client_t *c;
    liaison_client_connect_path(path, &c, err, errlen);
    return c;
}

liaison_client_t *liaison_client_open(const char *home, liaison_socket which, char *err, size_t errlen)
{
    liaison_client_t *c;
    liaison_client_connect(home, which, &c, err, errlen);
    return c;
}

void liaison_client_close(liaison_client_t *c)
{
    if (!c)
        return;
    if (c->sock)
        zmq_close(c->sock);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    free(c);
}

/* How long a collect waits between checks that the daemon is still there. */
#define PROBE_EVERY_MS 500

/* ---- framing ---- */

/* Whether a request may change the node's state, so that a lost answer leaves the user
 * to check before repeating it: sends, acknowledgements, peers, and the reads that mark
 * messages read and audit them. Status, listings of metadata, waits and the auditor's
 * queries are safe to ask again. */
static bool changes_state(const Liaison__Control__Request *rq)
{
    switch (rq->op_case) {
    case LIAISON__CONTROL__REQUEST__OP_SEND:
    case LIAISON__CONTROL__REQUEST__OP_SHOW:
    case LIAISON__CONTROL__REQUEST__OP_PEER_ADD:
    case LIAISON__CONTROL__REQUEST__OP_PEER_REMOVE:
    case LIAISON__CONTROL__REQUEST__OP_ACK: return true;
    case LIAISON__CONTROL__REQUEST__OP_LIST: return rq->list && rq->list->with_payloads && !rq->list->keep_unread;
    default: return false;
    }
}

static liaison_rc submit_pb(liaison_client_t *c, Liaison__Control__Request *rq, uint64_t *token)
{
    rq->request_id = c->next_id++;
    size_t n = liaison__control__request__get_packed_size(rq);
    if (n > LIAISON_MAX_CONTROL) {
        set_error(c, "request of %zu bytes is over the limit of %u", n, LIAISON_MAX_CONTROL);
        return LIAISON_BAD_REQUEST;
    }
    zmq_msg_t m;
    if (zmq_msg_init_size(&m, n ? n : 1) != 0) {
        set_error(c, "out of memory");
        return LIAISON_INTERNAL;
    }
    liaison__control__request__pack(rq, zmq_msg_data(&m));
    if (n == 0)
        zmq_msg_init_size(&m, 0);
    int sent = zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &c->timeout_ms, sizeof c->timeout_ms);
    if (sent == 0) {
        /* A signal does not cut the wait for room to send short, unless the caller's
         * flag says so (liaison_client_set_interrupt). */
        while ((sent = zmq_msg_send(&m, c->sock, 0)) < 0 && zmq_errno() == EINTR && !interrupted(c))
            ;
    }
    if (sent < 0) {
        int e = zmq_errno();
        zmq_msg_close(&m);
        if (e == EINTR) {
            set_error(c, "interrupted before the request was sent to liaisond");
            return LIAISON_INTERRUPTED;
        }
        set_error(c, "cannot send to liaisond at %s: %s", c->path, zmq_strerror(e));
        return LIAISON_UNREACHABLE;
    }
    c->pending++;
    c->changes = c->changes || changes_state(rq);
    if (token)
        *token = rq->request_id;
    return LIAISON_OK;
}

static liaison_rc code_rc(Liaison__Control__Code code)
{
    switch (code) {
    case LIAISON__CONTROL__CODE__OK: return LIAISON_OK;
    case LIAISON__CONTROL__CODE__BAD_REQUEST: return LIAISON_BAD_REQUEST;
    case LIAISON__CONTROL__CODE__REFUSED: return LIAISON_REFUSED;
    case LIAISON__CONTROL__CODE__NOT_FOUND: return LIAISON_NOT_FOUND;
    case LIAISON__CONTROL__CODE__INTERNAL: return LIAISON_INTERNAL;
    default: return LIAISON_PROTOCOL;
    }
}

/* protobuf-c returns NULL alike for an answer that is not a Response and for one it ran
 * out of memory reading; this allocator tells the two apart (allocator_data: a bool
 * set on a failure). */
static void *noting_alloc(void *failed, size_t n)
{
    void *p = malloc(n);
    if (!p)
        *(bool *)failed = true;
    return p;
}

static void noting_free(void *failed, void *p)
{
    (void)failed;
    free(p);
}

/* Receives the next answer to a pending request, in whatever order the daemon answers
 * (answers to abandoned requests are dropped); *id says which request it answers. */
static liaison_rc collect_pb(liaison_client_t *c, Liaison__Control__Response **out, uint64_t *id)
{
    *out = NULL;
    if (c->pending == 0) {
        set_error(c, "nothing to collect");
        return LIAISON_BAD_REQUEST;
    }
    int waited = 0;
    for (;;) {
        /* Wait in slices; after each full one, make sure the daemon is still there, so
         * that a daemon that stops mid-request is reported at once rather than at the
         * timeout. A short wait (a pipelined caller polling for answers) does not probe:
         * each probe is a connection the daemon has to accept. */
        int slice = c->timeout_ms - waited < PROBE_EVERY_MS ? c->timeout_ms - waited : PROBE_EVERY_MS;
        /* Once the caller's flag is up, only take an answer that is already here. */
        bool stop = interrupted(c);
        if (stop)
            slice = 0;
        zmq_pollitem_t pi = {.socket = c->sock, .events = ZMQ_POLLIN};
        int rc = zmq_poll(&pi, 1, slice);
        if (rc < 0 && zmq_errno() == EINTR)
            continue; /* the flag, if the signal set it, is seen at the top */
        if (rc == 0 && stop) {
            if (c->changes)
                set_error(c, "interrupted while waiting for liaisond's answer: the request may already have been,"
                             " or still be, carried out: check (e.g. with liaison outbox) before sending it again");
            else
                set_error(c, "interrupted while waiting for liaisond's answer");
            return LIAISON_INTERRUPTED;
        }
        if (rc == 0) {
            waited += slice;
            char why[300];
            if (slice == PROBE_EVERY_MS && probe(c->path, why, sizeof why) != LIAISON_OK) {
                if (c->changes)
                    set_error(c, "liaisond stopped before answering (%s); whether the last request took effect is"
                                 " shown by liaison outbox once it is back", why);
                else
                    set_error(c, "liaisond stopped before answering (%s); ask again once it is back", why);
                return LIAISON_UNREACHABLE;
            }
            if (waited < c->timeout_ms)
                continue;
        }
        if (rc <= 0) {
            /* The request is queued at the daemon and may still be carried out: a send
             * repeated now could reach the care team twice. */
            bool whole = c->timeout_ms % 1000 == 0;
            set_error(c,
                      "liaisond at %s did not answer within %d %s (stuck or overloaded: see its log, e.g. journalctl"
                      " -u liaisond)%s",
                      c->path, whole ? c->timeout_ms / 1000 : c->timeout_ms, whole ? "s" : "ms",
                      c->changes ? "; the request may still be carried out: check with liaison outbox before sending"
                                   " it again"
                                 : "");
            return LIAISON_TIMEOUT;
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            continue;
        }
        bool oom = false;
        ProtobufCAllocator noting = {.alloc = noting_alloc, .free = noting_free, .allocator_data = &oom};
        Liaison__Control__Response *r =
            liaison__control__response__unpack(&noting, zmq_msg_size(&m), zmq_msg_data(&m));
        sodium_memzero(zmq_msg_data(&m), zmq_msg_size(&m)); /* an answer may hold clear text */
        zmq_msg_close(&m);
        if (!r && oom) {
            /* The daemon did answer: what was asked is done, or refused, unknown which. */
            set_error(c, "out of memory reading liaisond's answer: the request may have been carried out (check"
                         " before repeating it)");
            return LIAISON_INTERNAL;
        }
        if (!r) {
            set_error(c, "liaisond sent an answer that cannot be decoded (client and daemon versions differ?)");
            return LIAISON_PROTOCOL;
        }
        if (r->request_id < c->live_from) {
            liaison__control__response__free_unpacked(r, NULL);
            continue;
        }
        if (r->request_id >= c->next_id) {
            liaison__control__response__free_unpacked(r, NULL);
            set_error(c, "liaisond answered request %llu, which was never sent", (unsigned long long)r->request_id);
            return LIAISON_PROTOCOL;
        }
        if (--c->pending == 0)
            c->changes = false;
        *id = r->request_id;
        liaison_rc lrc = code_rc(r->code);
        if (lrc != LIAISON_OK)
            set_error(c, "%s", r->error && r->error[0] ? r->error : "the daemon refused the request");
        *out = r;
        return lrc;
    }
}

/* A synchronous call abandons whatever was submitted and not collected, before it
 * starts and again when it returns without its answer (timeout, daemon gone): that
 * answer, if it ever comes, belongs to no token a pipelining caller holds. */
static void abandon_pending(liaison_client_t *c)
{
    c->live_from = c->next_id;
    c->pending = 0;
    c->changes = false;
}

/* Waits for the answer to the one request a synchronous call has just submitted. */
static liaison_rc collect_sync(liaison_client_t *c, Liaison__Control__Response **resp)
{
    uint64_t id;
    liaison_rc rc = collect_pb(c, resp, &id);
    if (!*resp)
        abandon_pending(c);
    return rc;
}

liaison_rc liaison_call_pb(liaison_client_t *c, Liaison__Control__Request *rq, Liaison__Control__Response **resp)
{
    *resp = NULL;
    abandon_pending(c);
    liaison_rc rc = submit_pb(c, rq, NULL);
    if (rc != LIAISON_OK)
        return rc;
    rc = collect_sync(c, resp);
    if (*resp && rc == LIAISON_PROTOCOL) {
        liaison_response_free(*resp);
        *resp = NULL;
    }
    return rc;
}

static void wipe_summary(Liaison__Control__MessageSummary *s)
{
    if (!s)
        return;
    if (s->payload.data)
        sodium_memzero(s->payload.data, s->payload.len);
    for (size_t i = 0; i < s->n_acks; i++)
        if (s->acks[i] && s->acks[i]->comment)
            sodium_memzero(s->acks[i]->comment, strlen(s->acks[i]->comment));
}

void liaison_response_free(Liaison__Control__Response *r)
{
    if (!r)
        return;
    if (r->result_case == LIAISON__CONTROL__RESPONSE__RESULT_LIST && r->list)
        for (size_t i = 0; i < r->list->n_messages; i++)
            wipe_summary(r->list->messages[i]);
    if (r->result_case == LIAISON__CONTROL__RESPONSE__RESULT_SHOW && r->show) {
        wipe_summary(r->show->summary);
        if (r->show->payload.data)
            sodium_memzero(r->show->payload.data, r->show->payload.len);
    }
    liaison__control__response__free_unpacked(r, NULL);
}

liaison_rc liaison_call(liaison_client_t *c, const void *req, size_t req_len, void **resp, size_t *resp_len)
{
    *resp = NULL;
    *resp_len = 0;
    Liaison__Control__Request *rq = liaison__control__request__unpack(NULL, req_len, req);
    if (!rq) {
        set_error(c, "the request is not a valid liaison.control.Request");
        return LIAISON_BAD_REQUEST;
    }
    Liaison__Control__Response *r = NULL;
    liaison_rc rc = liaison_call_pb(c, rq, &r);
    liaison__control__request__free_unpacked(rq, NULL);
    if (!r)
        return rc;
    size_t n = liaison__control__response__get_packed_size(r);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf) {
        liaison__control__response__pack(r, buf);
        if (rc == LIAISON_OK) {
            *resp = buf;
            *resp_len = n;
            buf = NULL;
        }
    } else {
        rc = LIAISON_INTERNAL;
        set_error(c, "out of memory");
    }
    free(buf);
    liaison__control__response__free_unpacked(r, NULL);
    return rc;
}

/* ---- sending ---- */

#define MAX_TO LIAISON_MAX_RECIPIENTS

/* Splits a comma-separated list in place into at most MAX_TO node ids. One that is not
 * a node id is refused here, before the daemon (which audits what it refuses) sees it:
 * a mistyped recipient may be a patient's id or name. */
static int split_to(liaison_client_t *c, char *list, char **ids, size_t *n)
{
    *n = 0;
    for (char *save = NULL, *id = strtok_r(list, ", ", &save); id; id = strtok_r(NULL, ", ", &save)) {
        if (*n == MAX_TO) {
            set_error(c, "too many recipients (limit %u)", MAX_TO - 1);
            return -1;
        }
        if (!text_valid_id(id)) {
            /* Node ids are lower case: "Dr.Tanaka" is most likely dr.tanaka. */
            char lower[LIAISON_MAX_ID + 1];
            size_t len = strlen(id);
            for (size_t i = 0; i < len && i < LIAISON_MAX_ID; i++) {
                char ch = id[i];
                if (ch >= 'A' && ch <= 'Z')
                    ch = (char)(ch | 0x20); /* ASCII: the lower-case letter */
                lower[i] = ch;
            }
            lower[len < LIAISON_MAX_ID ? len : LIAISON_MAX_ID] = 0;
            if (len <= LIAISON_MAX_ID && text_valid_id(lower))
                set_error(c, "'%s' is not a node id: ids are lower case (did you mean %s? see: liaison peer list)",
                          id, lower);
            else
                set_error(c, "'%.64s' is not a node id (1-64 of a-z 0-9 . _ -, starting with a letter or digit;"
                             " see: liaison peer list)", id);
            return -1;
        }
        ids[(*n)++] = id;
    }
    return 0;
}

static liaison_rc submit_send(liaison_client_t *c, const char *to, uint32_t ct, const void *payload, size_t len,
                              const uint8_t *thread_id, unsigned flags, uint64_t *token)
{
    char list[MAX_TO * (LIAISON_MAX_ID + 2)];
    if (!to || strlen(to) >= sizeof list) {
        set_error(c, "the recipient list is missing or too long");
        return LIAISON_BAD_REQUEST;
    }
    snprintf(list, sizeof list, "%s", to);
    char *ids[MAX_TO];
    size_t n;
    if (split_to(c, list, ids, &n) != 0)
        return LIAISON_BAD_REQUEST;
    Liaison__Control__SendRequest s = LIAISON__CONTROL__SEND_REQUEST__INIT;
    s.to = ids;
    s.n_to = n;
    s.content_type = ct;
    s.payload = (ProtobufCBinaryData){len, (uint8_t *)payload};
    if (thread_id)
        s.thread_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, (uint8_t *)thread_id};
    s.distinct_patient = (flags & LIAISON_SEND_DISTINCT_PATIENT) != 0;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_SEND;
    rq.send = &s;
    return submit_pb(c, &rq, token);
}

static liaison_rc take_id(liaison_client_t *c, liaison_rc rc, Liaison__Control__Response *r, char id_hex[LIAISON_ID_HEX])
{
    if (rc == LIAISON_OK) {
        if (r->result_case != LIAISON__CONTROL__RESPONSE__RESULT_SEND || !r->send ||
            r->send->message_id.len != LIAISON_MSGID_BYTES) {
            set_error(c, "liaisond answered without a message id");
            rc = LIAISON_PROTOCOL;
        } else if (id_hex) {
            text_msgid_to_hex(r->send->message_id.data, id_hex);
        }
    }
    if (r)
        liaison__control__response__free_unpacked(r, NULL);
    return rc;
}

liaison_rc liaison_send(liaison_client_t *c, const char *to, uint32_t ct, const void *payload, size_t len,
                        const uint8_t *thread_id, char id_hex[LIAISON_ID_HEX])
{
    return liaison_send_flags(c, to, ct, payload, len, thread_id, 0, id_hex);
}

liaison_rc liaison_send_flags(liaison_client_t *c, const char *to, uint32_t ct, const void *payload, size_t len,
                              const uint8_t *thread_id, unsigned flags, char id_hex[LIAISON_ID_HEX])
{
    if (flags & ~LIAISON_SEND_DISTINCT_PATIENT) {
        set_error(c, "unknown send flags 0x%x", flags & ~LIAISON_SEND_DISTINCT_PATIENT);
        return LIAISON_BAD_REQUEST;
    }
    abandon_pending(c);
    liaison_rc rc = submit_send(c, to, ct, payload, len, thread_id, flags, NULL);
    if (rc != LIAISON_OK)
        return rc;
    Liaison__Control__Response *r = NULL;
    rc = collect_sync(c, &r);
    return take_id(c, rc, r, id_hex);
}

/* Serializes a TextMessage into a malloc'd buffer. */
static uint8_t *pack_text(liaison_client_t *c, const char *subject, const char *text, size_t *n)
{
    Liaison__Payload__TextMessage tm = LIAISON__PAYLOAD__TEXT_MESSAGE__INIT;
    tm.subject = (char *)(subject ? subject : "");
    tm.text = (char *)(text ? text : "");
    *n = liaison__payload__text_message__get_packed_size(&tm);
    uint8_t *buf = malloc(*n ? *n : 1);
    if (!buf)
        set_error(c, "out of memory");
    else
        liaison__payload__text_message__pack(&tm, buf);
    return buf;
}

liaison_rc liaison_send_text(liaison_client_t *c, const char *to, const char *subject, const char *text,
                             char id_hex[LIAISON_ID_HEX])
{
    size_t n;
    uint8_t *buf = pack_text(c, subject, text, &n);
    if (!buf)
        return LIAISON_INTERNAL;
    liaison_rc rc = liaison_send(c, to, 1, buf, n, NULL, id_hex);
    free(buf);
    return rc;
}

liaison_rc liaison_submit_text(liaison_client_t *c, const char *to, const char *subject, const char *text,
                               uint64_t *token)
{
    size_t n;
    uint8_t *buf = pack_text(c, subject, text, &n);
    if (!buf)
        return LIAISON_INTERNAL;
    liaison_rc rc = submit_send(c, to, 1, buf, n, NULL, 0, token);
    free(buf);
    return rc;
}

liaison_rc liaison_ack(liaison_client_t *c, const char *msg_id_hex, const char *comment,
                       char ack_id_hex[LIAISON_ID_HEX])
{
    uint8_t id[LIAISON_MSGID_BYTES];
    if (!msg_id_hex || text_msgid_from_hex(msg_id_hex, id) != 0) {
        set_error(c, "'%.40s' is not a message id (32 hex characters; see: liaison inbox)",
                  msg_id_hex ? msg_id_hex : "");
        return LIAISON_BAD_REQUEST;
    }
    Liaison__Control__AckRequest a = LIAISON__CONTROL__ACK_REQUEST__INIT;
    a.message_id = (ProtobufCBinaryData){sizeof id, id};
    a.comment = (char *)(comment ? comment : "");
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_ACK;
    rq.ack = &a;
    Liaison__Control__Response *r = NULL;
    liaison_rc rc = liaison_call_pb(c, &rq, &r);
    return take_id(c, rc, r, ack_id_hex);
}

liaison_rc liaison_submit(liaison_client_t *c, const char *to, uint32_t ct, const void *payload, size_t len,
                          uint64_t *token)
{
    return submit_send(c, to, ct, payload, len, NULL, 0, token);
}

liaison_rc liaison_collect(liaison_client_t *c, uint64_t *token, char id_hex[LIAISON_ID_HEX])
{
    return liaison_collect_wait(c, token, id_hex, NULL);
}

/* ---- waiting for a sent message to settle ---- */

#define WAIT_GRACE_MS 10000 /* the daemon answers when the wait ends: room for a busy one */

static liaison_rc wait_check(liaison_client_t *c, int timeout_ms, unsigned flags)
{
    if (timeout_ms < 0 || timeout_ms > LIAISON_WAIT_MAX_MS) {
        set_error(c, "a wait lasts 0 to %d ms (24 hours), not %d ms", LIAISON_WAIT_MAX_MS, timeout_ms);
        return LIAISON_BAD_REQUEST;
    }
    if (flags & ~LIAISON_WAIT_ACKS) {
        set_error(c, "unknown wait flags %#x", flags & ~LIAISON_WAIT_ACKS);
        return LIAISON_BAD_REQUEST;
    }
    return LIAISON_OK;
}

/* Parses a message id; box names where the user finds ids ("outbox" for a wait). */
static liaison_rc msg_id(liaison_client_t *c, const char *id_hex, const char *box, uint8_t id[LIAISON_MSGID_BYTES])
{
    if (!id_hex || text_msgid_from_hex(id_hex, id) != 0) {
        set_error(c, "'%.40s' is not a message id (32 hex characters; see: liaison %s)", id_hex ? id_hex : "", box);
        return LIAISON_BAD_REQUEST;
    }
    return LIAISON_OK;
}

static liaison_rc submit_wait_pb(liaison_client_t *c, const uint8_t *id, int timeout_ms, unsigned flags,
                                 uint64_t *token)
{
    liaison_rc rc = wait_check(c, timeout_ms, flags);
    if (rc != LIAISON_OK)
        return rc;
    Liaison__Control__WaitRequest w = LIAISON__CONTROL__WAIT_REQUEST__INIT;
    w.message_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, (uint8_t *)id};
    w.timeout_ms = (uint32_t)timeout_ms;
    w.acks = (flags & LIAISON_WAIT_ACKS) != 0;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_WAIT;
    rq.wait = &w;
    return submit_pb(c, &rq, token);
}

liaison_rc liaison_wait_pb(liaison_client_t *c, const uint8_t *id, int timeout_ms, unsigned flags,
                           Liaison__Control__Response **resp)
{
    *resp = NULL;
    abandon_pending(c);
    liaison_rc rc = submit_wait_pb(c, id, timeout_ms, flags, NULL);
    if (rc != LIAISON_OK)
        return rc;
    /* The answer may come only when the wait ends. */
    int saved = c->timeout_ms;
    if (c->timeout_ms < timeout_ms + WAIT_GRACE_MS)
        c->timeout_ms = timeout_ms + WAIT_GRACE_MS;
    rc = collect_sync(c, resp);
    c->timeout_ms = saved;
    if (*resp && rc == LIAISON_OK && (*resp)->result_case != LIAISON__CONTROL__RESPONSE__RESULT_WAIT) {
        set_error(c, "liaisond answered a wait with something else (client and daemon versions differ?)");
        rc = LIAISON_PROTOCOL;
    }
    if (*resp && rc == LIAISON_PROTOCOL) {
        liaison__control__response__free_unpacked(*resp, NULL);
        *resp = NULL;
    }
    return rc;
}

/* What a wait's answer says, counted for liaison_progress_t. */
static void progress_of(const Liaison__Control__WaitResult *w, liaison_progress_t *p)
{
    memset(p, 0, sizeof *p);
    if (!w || !w->summary)
        return;
    const Liaison__Control__MessageSummary *s = w->summary;
    p->recipients = (unsigned)s->n_deliveries;
    for (size_t i = 0; i < s->n_deliveries; i++) {
        const Liaison__Control__DeliveryState *d = s->deliveries[i];
        if (d->state && strcmp(d->state, "delivered") == 0)
            p->delivered++;
        else if (d->state && strcmp(d->state, "rejected") == 0)
            p->rejected++;
        for (size_t k = 0; k < s->n_acks; k++)
            if (d->recipient && s->acks[k]->by && strcmp(s->acks[k]->by, d->recipient) == 0) {
                p->acknowledged++;
                break;
            }
    }
    p->settled = w->settled ? 1 : 0;
}

liaison_rc liaison_wait(liaison_client_t *c, const char *id_hex, int timeout_ms, unsigned flags,
                        liaison_progress_t *progress)
{
    if (progress)
        memset(progress, 0, sizeof *progress);
    uint8_t id[LIAISON_MSGID_BYTES];
    liaison_rc rc = msg_id(c, id_hex, "outbox", id);
    if (rc != LIAISON_OK)
        return rc;
    Liaison__Control__Response *r = NULL;
    rc = liaison_wait_pb(c, id, timeout_ms, flags, &r);
    if (r && rc == LIAISON_OK && progress)
        progress_of(r->wait, progress);
    if (r)
        liaison__control__response__free_unpacked(r, NULL);
    return rc;
}

liaison_rc liaison_submit_wait(liaison_client_t *c, const char *id_hex, int timeout_ms, unsigned flags,
                               uint64_t *token)
{
    uint8_t id[LIAISON_MSGID_BYTES];
    liaison_rc rc = msg_id(c, id_hex, "outbox", id);
    return rc != LIAISON_OK ? rc : submit_wait_pb(c, id, timeout_ms, flags, token);
}

liaison_rc liaison_collect_wait(liaison_client_t *c, uint64_t *token, char id_hex[LIAISON_ID_HEX],
                                liaison_progress_t *progress)
{
    if (progress)
        memset(progress, 0, sizeof *progress);
    Liaison__Control__Response *r = NULL;
    uint64_t id = 0;
    liaison_rc rc = collect_pb(c, &r, &id);
    if (token)
        *token = id;
    if (!r)
        return rc;
    if (r->result_case != LIAISON__CONTROL__RESPONSE__RESULT_WAIT)
        return take_id(c, rc, r, id_hex); /* a send's answer; frees r */
    const Liaison__Control__MessageSummary *s = r->wait ? r->wait->summary : NULL;
    if (rc == LIAISON_OK && (!s || s->message_id.len != LIAISON_MSGID_BYTES)) {
        set_error(c, "liaisond answered a wait without the message (client and daemon versions differ?)");
        rc = LIAISON_PROTOCOL;
    } else if (rc == LIAISON_OK) {
        if (id_hex)
            text_msgid_to_hex(s->message_id.data, id_hex);
        if (progress)
            progress_of(r->wait, progress);
    }
    liaison__control__response__free_unpacked(r, NULL);
    return rc;
}

/* ---- reading messages ---- */

#define INBOX_MAX 1000u
#define INBOX_FLAGS (LIAISON_INBOX_UNREAD | LIAISON_INBOX_NEEDS_ACK | LIAISON_INBOX_READ | LIAISON_INBOX_OLDEST)

static void id_or_empty(const ProtobufCBinaryData *b, char out[LIAISON_ID_HEX])
{
    out[0] = 0;
    if (b->len == LIAISON_MSGID_BYTES)
        text_msgid_to_hex(b->data, out);
}

/* Fills m->acks from s: the array and its strings in one block. Returns 0, or -1 out
 * of memory. */
static int acks_of(const Liaison__Control__MessageSummary *s, liaison_message_t *m)
{
    if (s->n_acks == 0)
        return 0;
    size_t strings = 0;
    for (size_t i = 0; i < s->n_acks; i++) {
        const Liaison__Control__AckInfo *a = s->acks[i];
        strings += strlen(a->by ? a->by : "") + 1 + (a->comment && a->comment[0] ? strlen(a->comment) + 1 : 0);
    }
    liaison_ack_info_t *acks = malloc(s->n_acks * sizeof *acks + strings);
    if (!acks)
        return -1;
    char *str = (char *)(acks + s->n_acks);
    for (size_t i = 0; i < s->n_acks; i++) {
        const Liaison__Control__AckInfo *a = s->acks[i];
        memset(&acks[i], 0, sizeof acks[i]);
        id_or_empty(&a->ack_message_id, acks[i].ack_id);
        acks[i].at_ms = a->at_ms;
        size_t lb = strlen(a->by ? a->by : "") + 1;
        memcpy(str, a->by ? a->by : "", lb);
        acks[i].by = str;
        str += lb;
        if (a->comment && a->comment[0]) {
            size_t lc = strlen(a->comment) + 1;
            memcpy(str, a->comment, lc);
            acks[i].comment = str;
            str += lc;
        }
    }
    m->acks = acks;
    m->n_acks = s->n_acks;
    return 0;
}

/* Fills m from s (and the payload p, which may be empty). The strings and the payload
 * share one block that starts at m->sender; the acknowledgements have their own.
 * Returns 0, or -1 out of memory. */
static int message_of(const Liaison__Control__MessageSummary *s, const ProtobufCBinaryData *p, liaison_message_t *m)
{
    memset(m, 0, sizeof *m);
    const char *sender = s->sender ? s->sender : "";
    size_t ls = strlen(sender) + 1, lr = 1;
    for (size_t i = 0; i < s->n_recipients; i++)
        lr += strlen(s->recipients[i]) + 1;
    char *block = malloc(ls + lr + p->len);
    if (!block)
        return -1;
    memcpy(block, sender, ls);
    char *r = block + ls;
    r[0] = 0;
    for (size_t i = 0, off = 0; i < s->n_recipients; i++)
        off += (size_t)snprintf(r + off, lr - off, "%s%s", i ? "," : "", s->recipients[i]);
    if (p->len) {
        memcpy(r + lr, p->data, p->len);
        m->payload = r + lr;
        m->payload_len = p->len;
    }
    m->sender = block;
    m->recipients = r;
    id_or_empty(&s->message_id, m->id);
    id_or_empty(&s->thread_id, m->thread_id);
    id_or_empty(&s->ref_id, m->ref_id);
    m->content_type = s->content_type;
    m->created_ms = s->created_ms;
    m->received_ms = s->received_ms;
    m->read_ms = s->read_ms;
    m->ack_required = s->ack_required;
    m->awaiting_ack = s->awaiting_ack;
    m->urgent = s->urgent;
    m->unopenable = s->unopenable;
    if (acks_of(s, m) != 0) {
        if (m->payload)
            sodium_memzero((void *)m->payload, m->payload_len);
        free(block);
        memset(m, 0, sizeof *m);
        return -1;
    }
    return 0;
}

void liaison_messages_free(liaison_message_t *msgs, size_t n)
{
    if (!msgs)
        return;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].payload)
            sodium_memzero((void *)msgs[i].payload, msgs[i].payload_len);
        for (size_t k = 0; k < msgs[i].n_acks; k++)
            if (msgs[i].acks[k].comment)
                sodium_memzero((void *)msgs[i].acks[k].comment, strlen(msgs[i].acks[k].comment));
        free((void *)msgs[i].acks);
        free((void *)msgs[i].sender);
    }
    free(msgs);
}

/* The messages of a list or show answer (one summary and its payload for show). */
static liaison_rc messages_of(liaison_client_t *c, Liaison__Control__MessageSummary *const *sums, size_t count,
                              const ProtobufCBinaryData *show_payload, liaison_message_t **msgs, size_t *n)
{
    if (count == 0)
        return LIAISON_OK;
    for (size_t i = 0; i < count; i++)
        if (!sums[i] || sums[i]->message_id.len != LIAISON_MSGID_BYTES) {
            set_error(c, "liaisond sent a message without its id (client and daemon versions differ?)");
            return LIAISON_PROTOCOL;
        }
    liaison_message_t *out = calloc(count, sizeof *out);
    if (!out) {
        set_error(c, "out of memory");
        return LIAISON_INTERNAL;
    }
    for (size_t i = 0; i < count; i++)
        if (message_of(sums[i], show_payload ? show_payload : &sums[i]->payload, &out[i]) != 0) {
            liaison_messages_free(out, i);
            set_error(c, "out of memory");
            return LIAISON_INTERNAL;
        }
    *msgs = out;
    *n = count;
    return LIAISON_OK;
}

liaison_rc liaison_inbox(liaison_client_t *c, unsigned flags, unsigned limit, liaison_message_t **msgs, size_t *n)
{
    if (msgs)
        *msgs = NULL;
    if (n)
        *n = 0;
    if (!msgs || !n) {
        set_error(c, "no place for the messages (%s is NULL)", msgs ? "n" : "msgs");
        return LIAISON_BAD_REQUEST;
    }
    if (flags & ~INBOX_FLAGS) {
        set_error(c, "unknown inbox flags %#x", flags & ~INBOX_FLAGS);
        return LIAISON_BAD_REQUEST;
    }
    if (limit > INBOX_MAX) {
        set_error(c, "at most %u messages at a time, not %u", INBOX_MAX, limit);
        return LIAISON_BAD_REQUEST;
    }
    Liaison__Control__ListRequest l = LIAISON__CONTROL__LIST_REQUEST__INIT;
    l.box = LIAISON__CONTROL__LIST_REQUEST__BOX__INBOX;
    l.limit = limit;
    l.unread_only = (flags & LIAISON_INBOX_UNREAD) != 0;
    l.needs_ack = (flags & LIAISON_INBOX_NEEDS_ACK) != 0;
    l.with_payloads = (flags & LIAISON_INBOX_READ) != 0;
    l.oldest = (flags & LIAISON_INBOX_OLDEST) != 0;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_LIST;
    rq.list = &l;
    Liaison__Control__Response *r = NULL;
    liaison_rc rc = liaison_call_pb(c, &rq, &r);
    if (rc == LIAISON_OK && (!r || r->result_case != LIAISON__CONTROL__RESPONSE__RESULT_LIST || !r->list)) {
        set_error(c, "liaisond answered a list with something else (client and daemon versions differ?)");
        rc = LIAISON_PROTOCOL;
    }
    if (rc == LIAISON_OK)
        rc = messages_of(c, r->list->messages, r->list->n_messages, NULL, msgs, n);
    liaison_response_free(r); /* the clear text was in the answer too */
    return rc;
}

liaison_rc liaison_read(liaison_client_t *c, const char *id_hex, liaison_message_t **msg)
{
    if (msg)
        *msg = NULL;
    if (!msg) {
        set_error(c, "no place for the message (msg is NULL)");
        return LIAISON_BAD_REQUEST;
    }
    uint8_t id[LIAISON_MSGID_BYTES];
    liaison_rc rc = msg_id(c, id_hex, "inbox", id);
    if (rc != LIAISON_OK)
        return rc;
    Liaison__Control__ShowRequest s = LIAISON__CONTROL__SHOW_REQUEST__INIT;
    s.message_id = (ProtobufCBinaryData){LIAISON_MSGID_BYTES, id};
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_SHOW;
    rq.show = &s;
    Liaison__Control__Response *r = NULL;
    rc = liaison_call_pb(c, &rq, &r);
    if (rc == LIAISON_OK &&
        (!r || r->result_case != LIAISON__CONTROL__RESPONSE__RESULT_SHOW || !r->show || !r->show->summary)) {
        set_error(c, "liaisond answered a show with something else (client and daemon versions differ?)");
        rc = LIAISON_PROTOCOL;
    }
    size_t one = 0;
    if (rc == LIAISON_OK)
        rc = messages_of(c, &r->show->summary, 1, &r->show->payload, msg, &one);
    liaison_response_free(r); /* the clear text was in the answer too */
    return rc;
}
