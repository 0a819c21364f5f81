/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the ZeroMQ sockets between daemons: ZAP handler, CURVE ROUTER, per-peer dealers and monitors. */
#include "transport.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zmq.h>

#include "delivery.h"
#include "log.h"
#include "witness.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "liaison"
#define INBOUND_BATCH 512       /* frames handled per wake-up before committing */
#define PEER_HWM 10000
#define REFUSED_AUDIT_MS 60000  /* one audit row per refused key per minute */
#define REFUSED_AUDIT_MAX 10    /* and at most this many a minute for all keys together */
#define USER_ID_LEN (2 * LIAISON_KEY_BYTES + 1) /* ZAP User-Id: the client's CURVE key in hex */
#define LISTEN_MONITOR "inproc://liaison-listener"
#define PAUSE_MIN_MS 1000u      /* the listener's first pause; doubled while floods go on */
#define PAUSE_MAX_MS 32000u
#define PAUSE_CALM_MS 300000u   /* five minutes without a pause start the doubling again */

static int set_int(void *s, int opt, int v) { return zmq_setsockopt(s, opt, &v, sizeof v); }

/* Options of both peer sockets. ZMTP heartbeats (PING every heartbeat_ms, the connection
 * dropped after three times that without traffic, and that TTL asked of the other end)
 * run only on the DEALERs this node dials: libzmq 4.3.4 aborts in a heartbeat timer
 * that fires on a connection whose input is stalled by the receive high-water mark when
 * the peer has gone (zeromq/libzmq#4364; out_event asserts !_io_error), which is the
 * listening side under load. The ROUTER still answers PINGs, and drops a silent inbound
 * connection after the TTL the dialling peer asks for. */
static int set_common(void *s, const config_t *c, bool heartbeats)
{
    /* libzmq drops a connection that sends more than this, silently: set it above the
     * protocol limit, so that a frame just over the limit reaches delivery_inbound and
     * is refused with a reason and an audit row (PROTOCOL.md 5.2). */
    int64_t max = 2 * (int64_t)LIAISON_MAX_FRAME;
    int rc = 0;
    rc |= zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof max);
    rc |= set_int(s, ZMQ_SNDHWM, PEER_HWM);
    rc |= set_int(s, ZMQ_RCVHWM, PEER_HWM);
    if (heartbeats) {
        rc |= set_int(s, ZMQ_HEARTBEAT_IVL, (int)c->heartbeat_ms);
        rc |= set_int(s, ZMQ_HEARTBEAT_TIMEOUT, (int)c->heartbeat_ms * 3);
        rc |= set_int(s, ZMQ_HEARTBEAT_TTL, (int)c->heartbeat_ms * 3);
    }
    rc |= set_int(s, ZMQ_LINGER, 0);
    /* A connection that has not finished its CURVE handshake holds a descriptor with
     * nothing proved: drop it after 10 s, not libzmq's default 30 s (anyone who can
     * reach the port can open such connections; liaisond(8), SECURITY). */
    rc |= set_int(s, ZMQ_HANDSHAKE_IVL, 10000);
    return rc ? -1 : 0;
}

/* ZMQ_IPV6 only where the endpoint asks for it: an IPv6 literal, or '*' to bind (both
 * families). A host name stays IPv4: with ZMQ_IPV6 libzmq would dial only the first
 * address a name resolves to, often ::1 for localhost, and miss an IPv4 listener. */
static int set_ipv6(void *s, const char *endpoint, bool bind)
{
    const char *host = strncmp(endpoint, "tcp://", 6) == 0 ? endpoint + 6 : "";
    bool v6 = host[0] == '[' || (bind && host[0] == '*' && host[1] == ':');
    return v6 ? set_int(s, ZMQ_IPV6, 1) : 0;
}

/* ---- ZAP (RFC 27) ---- */

static void key_fp(const uint8_t key[32], char out[17])
{
    sodium_bin2hex(out, 17, key, 8);
}

/* The entry of key in a small table of keys seen last, or the oldest entry (to be
 * reused for key). */
static refused_key_t *key_slot(refused_key_t *tab, size_t count, const uint8_t key[32])
{
    refused_key_t *slot = &tab[0];
    for (size_t i = 0; i < count; i++) {
        if (memcmp(tab[i].key, key, 32) == 0)
            return &tab[i];
        if (tab[i].last_ms < slot->last_ms)
            slot = &tab[i];
    }
    return slot;
}

static bool seen_this_minute(const refused_key_t *slot, const uint8_t key[32], uint64_t now)
{
    return memcmp(slot->key, key, 32) == 0 && now - slot->last_ms < REFUSED_AUDIT_MS && now >= slot->last_ms;
}

/* Audits a refused transport key at most once a minute per key, and at most
 * REFUSED_AUDIT_MAX keys a minute in all: keys cost nothing to make, and anyone who can
 * reach the port could otherwise write audit rows and log lines without end. What is
 * left out is counted, and the next row audited says how many. */
static void audit_refused(node_t *n, const uint8_t key[32], const char *address)
{
    uint64_t now = liaison_now_ms();
    refused_key_t *slot = key_slot(n->refused, sizeof n->refused / sizeof n->refused[0], key);
    if (seen_this_minute(slot, key, now))
        return;
    if (now - n->refused_window_ms >= REFUSED_AUDIT_MS || now < n->refused_window_ms) {
        n->refused_window_ms = now;
        n->refused_in_window = 0;
    }
    if (n->refused_in_window >= REFUSED_AUDIT_MAX) {
        n->refused_unrecorded++;
        return;
    }
    n->refused_in_window++;
    memcpy(slot->key, key, 32);
    slot->last_ms = now;
    char fp[17], details[300], more[96] = "";
    key_fp(key, fp);
    if (n->refused_unrecorded)
        snprintf(more, sizeof more, " (and %" PRIu64 " refused handshakes before it not recorded one by one)",
                 n->refused_unrecorded);
    n->refused_unrecorded = 0;
    snprintf(details, sizeof details, "transport key %s... from %s is not in the directory%s", fp, address, more);
    log_warn("refused connection: %s", details);
    if (store_op_begin(n->store) == 0) {
        audit_entry_t e = {.actor = "daemon", .action = "transport-refused", .outcome = "refused", .details = details};
        store_op_end(n->store, node_audit(n, &e) == 0);
    }
}

/* Whether a frame on a connection of this key, no longer in the directory, is to be
 * answered: once a minute per key (a small table of the keys answered last). */
static bool answer_due(node_t *n, const uint8_t key[32])
{
    uint64_t now = liaison_now_ms();
    refused_key_t *slot = key_slot(n->answered, sizeof n->answered / sizeof n->answered[0], key);
    if (seen_this_minute(slot, key, now))
        return false;
    memcpy(slot->key, key, 32);
    slot->last_ms = now;
    return true;
}

/* libzmq does not reliably retry a handshake the server refused (libzmq #3519), so
 * the dealer of a refusing peer is closed and reopened, with backoff, by transport_tick,
 * or at once when that peer dials us (on_zap). */
static void schedule_reopen(peer_t *p)
{
    if (p->reopen_ms)
        return;
    uint64_t delay = 1000u << (p->refusals < 5 ? p->refusals : 5); /* 1 s .. 32 s */
    p->refusals++;
    p->reopen_ms = loop_mono_ms() + delay;
}

/* A new connection to p in place of the refused one (its back-off count stays). */
static void reopen(node_t *n, peer_t *p)
{
    char err[256];
    p->reopen_ms = 0;
    transport_peer_close(n, p);
    if (transport_peer_open(n, p, err, sizeof err) != 0) {
        log_warn("peer %s: %s (trying again later)", p->card.id, err);
        schedule_reopen(p);
    }
}

static void on_zap(loop_t *l, void *sock, int fd, void *ctx)
{
    (void)l;
    (void)fd;
    node_t *n = ctx;
    for (;;) {
        zmq_msg_t part[8];
        int nparts = 0, more = 1;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                if (nparts == 0)
                    return; /* nothing more */
                break;
            }
            more = zmq_msg_more(&m);
            if (nparts < 8)
                part[nparts++] = m;
            else
                zmq_msg_close(&m);
        }
        const char *status = "400", *text = "unknown key";
        peer_t *retry = NULL;
        /* User-Id is the client's key, not its node id: on_router checks every frame
         * against the directory of the moment (PROTOCOL.md section 4). */
        char user[USER_ID_LEN] = "";
        char addr[128] = "";
        if (nparts >= 7 && zmq_msg_size(&part[5]) == 5 && memcmp(zmq_msg_data(&part[5]), "CURVE", 5) == 0 &&
            zmq_msg_size(&part[6]) == 32) {
            const uint8_t *key = zmq_msg_data(&part[6]);
            size_t al = zmq_msg_size(&part[3]);
            snprintf(addr, sizeof addr, "%.*s", (int)(al < 100 ? al : 100), (const char *)zmq_msg_data(&part[3]));
            peer_t *p = directory_find_transport(&n->dir, key);
            if (p) {
                status = "200";
                text = "OK";
                sodium_bin2hex(user, sizeof user, key, LIAISON_KEY_BYTES);
                /* A peer that dials us holds our card, so it has most likely just
                 * added it: our own connection, refused before, is tried again now
                 * rather than after the rest of its back-off. */
                if (p->reopen_ms && !p->connected)
                    retry = p;
            } else {
                audit_refused(n, key, addr);
            }
        } else {
            text = "only CURVE is accepted";
        }
        /* Reply: version, request id, status code, status text, user id, metadata. */
        zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
        if (nparts >= 2)
            zmq_send(sock, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
        else
            zmq_send(sock, "", 0, ZMQ_SNDMORE);
        zmq_send(sock, status, 3, ZMQ_SNDMORE);
        zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
        zmq_send(sock, "", 0, 0);
        for (int i = 0; i < nparts; i++)
            zmq_msg_close(&part[i]);
        if (retry) {
            log_info("peer %s connected to us, so it has our card now: our connection to it, refused before, is"
                     " tried again now", retry->card.id);
            reopen(n, retry);
        }
    }
}

/* ---- inbound (ROUTER) ---- */

/* The directory peer whose transport key is, right now, the key this connection
 * authenticated with (the ZAP User-Id of msg), or NULL. A connection outlives the
 * removal or replacement of its peer: its frames are dropped here, audited as a
 * refused key at most once a minute, and that first frame of the minute is answered
 * with a Reject NOT_IN_DIRECTORY, so that the other side stops counting on the
 * connection (PROTOCOL.md sections 6, 7.2 and 11). */
static peer_t *current_peer(node_t *n, zmq_msg_t *msg, const uint8_t *rid, size_t rid_len)
{
    const char *user = zmq_msg_gets(msg, "User-Id");
    uint8_t key[LIAISON_KEY_BYTES];
    size_t klen = 0;
    if (!user || strlen(user) != USER_ID_LEN - 1 ||
        sodium_hex2bin(key, sizeof key, user, USER_ID_LEN - 1, NULL, &klen, NULL) != 0 || klen != sizeof key) {
        /* Only our own ZAP handler sets User-Id: this cannot come from a peer. */
        log_err("a frame on the peer socket carries no transport key; dropped");
        return NULL;
    }
    peer_t *p = directory_find_transport(&n->dir, key);
    if (!p) {
        const char *addr = zmq_msg_gets(msg, "Peer-Address");
        char shown[128];
        snprintf(shown, sizeof shown, "%.100s", addr ? addr : "?");
        audit_refused(n, key, shown);
        if (answer_due(n, key))
            delivery_refuse_connection(n, rid, rid_len);
    }
    return p;
}

static void on_router(loop_t *l, void *sock, int fd, void *ctx)
{
    (void)l;
    (void)fd;
    node_t *n = ctx;
    for (int i = 0; i < INBOUND_BATCH; i++) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        if (zmq_msg_recv(&rid, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            return;
        }
        zmq_msg_init(&body);
        int nframes = 0;
        bool more = zmq_msg_more(&rid);
        while (more) {
            zmq_msg_t extra;
            zmq_msg_t *into = nframes == 0 ? &body : &extra;
            if (nframes > 0)
                zmq_msg_init(&extra);
            if (zmq_msg_recv(into, sock, 0) < 0)
                break;
            nframes++;
            more = zmq_msg_more(into);
            if (nframes > 1)
                zmq_msg_close(&extra);
        }
        peer_t *from = nframes ? current_peer(n, &body, zmq_msg_data(&rid), zmq_msg_size(&rid)) : NULL;
        if (from)
            delivery_inbound(n, from, zmq_msg_data(&rid), zmq_msg_size(&rid), zmq_msg_data(&body),
                             zmq_msg_size(&body), nframes);
        zmq_msg_close(&body);
        zmq_msg_close(&rid);
    }
    /* More may be waiting: the loop polls again right after this batch commits. */
}

/* ---- outbound (per-peer DEALER) ---- */

static void on_dealer(loop_t *l, void *sock, int fd, void *ctx)
{
    (void)l;
    (void)fd;
    node_t *n = ctx;
    /* Find the peer by socket: ctx is the node so that a removed peer is never touched. */
    peer_t *p = NULL;
    for (size_t i = 0; i < n->dir.n; i++)
        if (n->dir.peers[i]->dealer == sock)
            p = n->dir.peers[i];
    if (!p)
        return;
    for (int i = 0; i < INBOUND_BATCH; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        int nframes = 1;
        bool more = zmq_msg_more(&m);
        while (more) {
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            if (zmq_msg_recv(&extra, sock, 0) < 0) {
                zmq_msg_close(&extra);
                break;
            }
            nframes++;
            more = zmq_msg_more(&extra);
            zmq_msg_close(&extra);
        }
        int events = 0;
        size_t events_len = sizeof events;
        bool behind = zmq_getsockopt(sock, ZMQ_EVENTS, &events, &events_len) == 0 && (events & ZMQ_POLLIN);
        delivery_reply(n, p, zmq_msg_data(&m), zmq_msg_size(&m), nframes, behind);
        zmq_msg_close(&m);
    }
}

/* Reads one event of a socket monitor (its two frames), without blocking: false when
 * none is waiting. */
static bool monitor_event(void *sock, uint16_t *event, uint32_t *value)
{
    zmq_msg_t ev, ep;
    zmq_msg_init(&ev);
    if (zmq_msg_recv(&ev, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&ev);
        return false;
    }
    zmq_msg_init(&ep);
    if (zmq_msg_more(&ev))
        zmq_msg_recv(&ep, sock, 0);
    *event = 0;
    *value = 0;
    if (zmq_msg_size(&ev) >= 6) {
        memcpy(event, zmq_msg_data(&ev), 2);
        memcpy(value, (uint8_t *)zmq_msg_data(&ev) + 2, 4);
    }
    zmq_msg_close(&ev);
    zmq_msg_close(&ep);
    return true;
}

static void on_monitor(loop_t *l, void *sock, int fd, void *ctx)
{
    (void)l;
    (void)fd;
    node_t *n = ctx;
    peer_t *p = NULL;
    for (size_t i = 0; i < n->dir.n; i++)
        if (n->dir.peers[i]->monitor == sock)
            p = n->dir.peers[i];
    bool refused = false;
    uint16_t event;
    uint32_t value;
    while (monitor_event(sock, &event, &value)) {
        if (!p)
            continue;
        switch (event) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            if (!p->connected)
                log_info("peer %s: connected", p->card.id);
            p->connected = true;
            p->transport_error[0] = 0;
            p->refusals = 0;
            p->reopen_ms = 0;
            delivery_peer_up(n, p);
            witness_peer_up(n, p);
            break;
        case ZMQ_EVENT_DISCONNECTED:
        case ZMQ_EVENT_CLOSED:
            if (p->connected)
                log_info("peer %s: disconnected", p->card.id);
            p->connected = false;
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            p->connected = false;
            /* Expected while they have not added our card yet: a card exchange takes
             * minutes (read the fingerprint aloud, then add it), so a refusal in the
             * first hour after we added theirs is no cause for a warning. */
            if (!p->transport_error[0]) {
                if (liaison_now_ms() - p->added_ms < 3600u * 1000u)
                    log_info("peer %s refused our transport key (expected until they add our card)", p->card.id);
                else
                    log_warn("peer %s refused our transport key", p->card.id);
            }
            snprintf(p->transport_error, sizeof p->transport_error,
                     "%s refused our key: ask them to add our card (liaison card) with: liaison peer add",
                     p->card.id);
            schedule_reopen(p);
            refused = true;
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            p->connected = false;
            snprintf(p->transport_error, sizeof p->transport_error,
                     "secure handshake with %s failed: the server key in their card does not match the daemon "
                     "at %s (ask for a fresh card)",
                     p->card.id, p->card.endpoint);
            schedule_reopen(p);
            refused = true;
            break;
        case ZMQ_EVENT_CONNECT_RETRIED:
            if (!p->transport_error[0])
                snprintf(p->transport_error, sizeof p->transport_error, "cannot reach %s at %s (retrying)",
                         p->card.id, p->card.endpoint);
            break;
        default:
            break;
        }
    }
    /* A refused connection is closed, not left to libzmq's own reconnection: it is
     * opened again on the back-off above, or at once when the peer dials us (on_zap). */
    if (refused && !p->connected)
        transport_peer_close(n, p);
}

/* ---- the listener's descriptors ----
 *
 * Anyone who can reach the port can open connections that never finish the CURVE
 * handshake; each holds a descriptor for up to 10 s (ZMQ_HANDSHAKE_IVL). Were they to
 * use the last descriptors, libzmq 4.3.4 would spin on the listener and abort the
 * daemon at its next IPC connection (EMFILE is an assertion there). So the ROUTER's
 * accepts are watched: Linux gives a new descriptor the lowest number free, so an
 * accepted descriptor numbered fd_high or more means that at least that many are open.
 * Then the ROUTER is unbound for a while, which closes every inbound connection (libzmq
 * makes them children of the listener), the flood's and the peers' alike, and frees
 * their descriptors. Peers' messages wait, queued at the sender, which dials again;
 * our own dealers, local clients and the database keep working. liaisond(8), SECURITY. */

/* The soft descriptor limit (RLIMIT_NOFILE), at most INT32_MAX. */
static uint32_t fd_limit(void)
{
    struct rlimit rl;
    rlim_t cur = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
    return cur == RLIM_INFINITY || cur > (rlim_t)INT32_MAX ? (uint32_t)INT32_MAX : (uint32_t)cur;
}

/* Three quarters of the limit: the rest is kept for the database, the dealers,
 * libzmq's own descriptors and local clients. */
static uint32_t fd_high_mark(void)
{
    uint32_t cur = fd_limit(), reserve = cur / 4 > 64 ? cur / 4 : 64;
    return cur > reserve ? cur - reserve : 0;
}

static void listener_pause(node_t *n, uint32_t fd_seen, int accept_errno)
{
    if (n->listen_resume_ms)
        return;
    uint64_t now = loop_mono_ms();
    if (n->listen_pauses_in_row && now - n->listen_paused_ms >= PAUSE_CALM_MS)
        n->listen_pauses_in_row = 0;
    uint64_t pause = (uint64_t)PAUSE_MIN_MS << (n->listen_pauses_in_row < 5 ? n->listen_pauses_in_row : 5);
    if (zmq_unbind(n->router, n->router_endpoint) != 0) {
        log_err("too many connections to %s, and it cannot stop listening: %s", n->router_endpoint,
                zmq_strerror(errno));
        return;
    }
    n->listen_pauses_in_row++;
    n->listen_pauses++;
    n->listen_paused_ms = now;
    n->listen_resume_ms = now + pause;
    char why[96];
    if (accept_errno)
        snprintf(why, sizeof why, "a connection could not be accepted: %s", strerror(accept_errno));
    else
        snprintf(why, sizeof why, "descriptor %" PRIu32 " in use, of a limit of %" PRIu32, fd_seen, fd_limit());
    log_warn("too many connections to %s that have not finished the secure handshake (%s): stopped listening for"
             " %" PRIu64 " s, which closes every connection peers made to us (they dial again; what they send"
             " waits, queued, meanwhile). Let only the care team's addresses reach the port: liaisond(8), SECURITY",
             n->cfg.listen, why, pause / 1000);
}

static void on_listener(loop_t *l, void *sock, int fd, void *ctx)
{
    (void)l;
    (void)fd;
    node_t *n = ctx;
    uint16_t event;
    uint32_t value, worst = 0;
    int failed = 0;
    bool pause = false;
    while (monitor_event(sock, &event, &value)) {
        if (event == ZMQ_EVENT_ACCEPTED && value >= n->fd_high) {
            pause = true;
            worst = value > worst ? value : worst;
        } else if (event == ZMQ_EVENT_ACCEPT_FAILED && (value == EMFILE || value == ENFILE)) {
            pause = true;
            failed = (int)value;
        }
    }
    if (pause)
        listener_pause(n, worst, failed);
}

/* Binds the ROUTER to cfg.listen and keeps what it is bound to, for zmq_unbind. */
static int listener_bind(node_t *n)
{
    if (zmq_bind(n->router, n->cfg.listen) != 0)
        return -1;
    size_t len = sizeof n->router_endpoint;
    if (zmq_getsockopt(n->router, ZMQ_LAST_ENDPOINT, n->router_endpoint, &len) != 0)
        snprintf(n->router_endpoint, sizeof n->router_endpoint, "%s", n->cfg.listen);
    return 0;
}

static void listener_tick(node_t *n)
{
    if (!n->listen_resume_ms || loop_mono_ms() < n->listen_resume_ms)
        return;
    if (listener_bind(n) != 0) {
        log_warn("cannot listen on %s again: %s (trying again in a second)", n->cfg.listen, zmq_strerror(errno));
        return;
    }
    n->listen_resume_ms = 0;
    log_info("listening on %s again", n->cfg.listen);
}

int transport_peer_open(node_t *n, peer_t *p, char *err, size_t errlen)
{
    /* p's key is current (again): should it go stale later (removed a second time within
     * the minute), the first frame of its connection is answered at once. */
    refused_key_t *answered = key_slot(n->answered, sizeof n->answered / sizeof n->answered[0], p->card.transport_pk);
    if (memcmp(answered->key, p->card.transport_pk, LIAISON_KEY_BYTES) == 0)
        memset(answered, 0, sizeof *answered);
    void *d = zmq_socket(n->zctx, ZMQ_DEALER);
    void *mon = NULL;
    char mon_ep[128];
    static unsigned mon_seq;
    snprintf(mon_ep, sizeof mon_ep, "inproc://monitor-%u", ++mon_seq);
    if (!d || set_common(d, &n->cfg, true) != 0 || set_ipv6(d, p->card.endpoint, false) != 0 ||
        set_int(d, ZMQ_IMMEDIATE, 1) != 0 ||
        set_int(d, ZMQ_RECONNECT_IVL, 200) != 0 || set_int(d, ZMQ_RECONNECT_IVL_MAX, 5000) != 0 ||
        zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, p->card.transport_pk, 32) != 0 ||
        zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, n->keys->transport_pk, 32) != 0 ||
        zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, n->keys->transport_sk, 32) != 0 ||
        zmq_socket_monitor(d, mon_ep,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_CONNECT_RETRIED) != 0 ||
        !(mon = zmq_socket(n->zctx, ZMQ_PAIR)) || zmq_connect(mon, mon_ep) != 0 ||
        zmq_connect(d, p->card.endpoint) != 0) {
        snprintf(err, errlen, "cannot open a connection to %s at %s: %s", p->card.id, p->card.endpoint,
                 zmq_strerror(errno));
        if (mon)
            zmq_close(mon);
        if (d)
            zmq_close(d);
        return -1;
    }
    p->dealer = d;
    p->monitor = mon;
    if (loop_add(n->loop, d, 0, on_dealer, n) != 0 || loop_add(n->loop, mon, 0, on_monitor, n) != 0) {
        snprintf(err, errlen, "out of memory");
        transport_peer_close(n, p);
        return -1;
    }
    return 0;
}

void transport_peer_close(node_t *n, peer_t *p)
{
    if (p->dealer) {
        loop_remove(n->loop, p->dealer, 0);
        zmq_socket_monitor(p->dealer, NULL, 0);
        zmq_close(p->dealer);
        p->dealer = NULL;
    }
    if (p->monitor) {
        loop_remove(n->loop, p->monitor, 0);
        zmq_close(p->monitor);
        p->monitor = NULL;
    }
    p->connected = false;
}

void transport_peer_refused(node_t *n, peer_t *p, const char *said)
{
    (void)n;
    if (!p->dealer || p->reopen_ms)
        return; /* already being dialled again */
    log_warn("peer %s no longer holds our transport key (it said: %s): connecting again; what we send it waits,"
             " queued, until it adds our card",
             p->card.id, said);
    snprintf(p->transport_error, sizeof p->transport_error,
             "%s refused our key: ask them to add our card (liaison card) with: liaison peer add", p->card.id);
    p->connected = false;
    p->reopen_ms = loop_mono_ms(); /* transport_tick: not from inside this dealer's own handler */
}

void transport_tick(node_t *n)
{
    listener_tick(n);
    uint64_t now = loop_mono_ms();
    for (size_t i = 0; i < n->dir.n; i++) {
        peer_t *p = n->dir.peers[i];
        if (p->reopen_ms && now >= p->reopen_ms && !p->connected)
            reopen(n, p);
    }
}

int transport_send(node_t *n, peer_t *p, const uint8_t *frame, size_t len)
{
    (void)n;
    if (!p->dealer)
        return 1;
    if (zmq_send(p->dealer, frame, len, ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? 1 : -1;
    return 0;
}

int transport_router_send(void *router, const uint8_t *rid, size_t rid_len, const uint8_t *frame, size_t len)
{
    if (zmq_send(router, rid, rid_len, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
        return -1;
    return zmq_send(router, frame, len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

int transport_start(node_t *n, char *err, size_t errlen)
{
    /* The ZAP handler must exist before any CURVE server socket is bound: without
     * one, libzmq admits every client that knows our server key. */
    n->zap = zmq_socket(n->zctx, ZMQ_REP);
    if (!n->zap || set_int(n->zap, ZMQ_LINGER, 0) != 0 || zmq_bind(n->zap, ZAP_ENDPOINT) != 0) {
        snprintf(err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(errno));
        return -1;
    }
    if (loop_add(n->loop, n->zap, 0, on_zap, n) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    n->router = zmq_socket(n->zctx, ZMQ_ROUTER);
    if (!n->router || set_common(n->router, &n->cfg, false) != 0 || set_ipv6(n->router, n->cfg.listen, true) != 0 ||
        set_int(n->router, ZMQ_ROUTER_MANDATORY, 1) != 0 ||
        set_int(n->router, ZMQ_CURVE_SERVER, 1) != 0 ||
        zmq_setsockopt(n->router, ZMQ_CURVE_SECRETKEY, n->keys->transport_sk, 32) != 0 ||
        zmq_setsockopt(n->router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) != 0) {
        snprintf(err, errlen, "cannot set up the peer socket: %s", zmq_strerror(errno));
        return -1;
    }
    n->fd_high = fd_high_mark();
    if (zmq_socket_monitor(n->router, LISTEN_MONITOR, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_ACCEPT_FAILED) != 0 ||
        !(n->router_monitor = zmq_socket(n->zctx, ZMQ_PAIR)) || zmq_connect(n->router_monitor, LISTEN_MONITOR) != 0 ||
        loop_add(n->loop, n->router_monitor, 0, on_listener, n) != 0) {
        snprintf(err, errlen, "cannot watch the peer socket: %s", zmq_strerror(errno));
        return -1;
    }
    if (listener_bind(n) != 0) {
        snprintf(err, errlen,
                 "cannot listen on %s: %s (is another liaisond using it? change [node] listen in %s, and advertise"
                 " if your card names this port: peers dial what your card says, so then give them a new one with"
                 " liaison card --fresh once the daemon runs)",
                 n->cfg.listen, zmq_strerror(errno), n->paths.config_file);
        return -1;
    }
    if (loop_add(n->loop, n->router, 0, on_router, n) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n->dir.n; i++)
        if (transport_peer_open(n, n->dir.peers[i], err, errlen) != 0)
            return -1;
    return 0;
}

void transport_stop(node_t *n)
{
    for (size_t i = 0; i < n->dir.n; i++)
        transport_peer_close(n, n->dir.peers[i]);
    if (n->listen_pauses)
        log_info("listener: paused %" PRIu32 " time%s for connections without a handshake", n->listen_pauses,
                 n->listen_pauses == 1 ? "" : "s");
    if (n->router_monitor) {
        loop_remove(n->loop, n->router_monitor, 0);
        zmq_socket_monitor(n->router, NULL, 0);
        zmq_close(n->router_monitor);
        n->router_monitor = NULL;
    }
    if (n->router) {
        loop_remove(n->loop, n->router, 0);
        zmq_close(n->router);
        n->router = NULL;
    }
    if (n->zap) {
        loop_remove(n->loop, n->zap, 0);
        zmq_close(n->zap);
        n->zap = NULL;
    }
}
