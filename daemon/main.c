/* SPDX-License-Identifier: Apache-2.0 */
/* liaisond: start-up, signals, the before-sleep batch cycle, and orderly shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>
#include <zmq.h>

#include "audit_verify.h"
#include "backfill.h"
#include "clinical.h"
#include "control.h"
#include "delivery.h"
#include "log.h"
#include "node.h"
#include "notify.h"
#include "patient.h"
#include "payload.h"
#include "text.h"
#include "transport.h"
#include "auditor.h"
#include "verifier.h"
#include "waits.h"
#include "witness.h"

/* Longest time the delivery pump's bookkeeping waits for the next batch's commit. */
#define BOOKKEEPING_COMMIT_MS 20u
/* WAL size (pages) at which the backfill thread copies it into the database file
 * (SQLite's own default), and at which the loop does it itself (backfill.h). */
#define BACKFILL_FRAMES 1000
#define BACKFILL_HARD_FRAMES 20000
/* Seconds without a commit after which the database cache is released. */
#define IDLE_RELEASE_S 30u

typedef struct daemon_state {
    node_t node;
    const char *home;
    char last_status[160];     /* last STATUS= sent to systemd */
    uint64_t ticks;
    uint64_t idle_batches;     /* n->batches when the loop last looked (on_tick) */
    uint64_t backfill_failed;  /* failed backfills already reported */
    uint32_t idle_ticks;       /* seconds without a commit; caches released at IDLE_RELEASE_S */
    int sigfd;
    int lockfd;
    uint64_t next_due_ms;      /* wall-clock time of the earliest pending delivery */
    bool lazy_open;            /* the open transaction holds only the pump's bookkeeping */
    int64_t lazy_changes;      /* sqlite3_total_changes64 when the pump left it */
    uint64_t lazy_until_ms;    /* monotonic time by which it is committed anyway */
    int exit_code;
} daemon_state_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: liaisond [--home DIR] [--check-config]\n"
               "\n"
               "The liaison daemon: keeps this node's messages and audit log, and talks to the\n"
               "peers in its directory over CurveZMQ.\n"
               "\n"
               "  --home DIR       node directory (default: $LIAISON_HOME, else /etc/liaison,\n"
               "                   /var/lib/liaison and /run/liaison)\n"
               "  --check-config   validate liaison.conf and the key files, then exit\n"
               "  --version        print the version\n");
}

/* Tells systemd (or any manager speaking its notification protocol) a state change.
 * A failure is logged once, and again only after a success: the watchdog's keep-alives
 * must not flood the log while the manager's socket is gone. */
static void tell_manager(const char *state)
{
    static bool failing;
    if (notify_send(state) >= 0) {
        failing = false;
        return;
    }
    if (!failing)
        log_warn("could not notify the service manager at NOTIFY_SOCKET=%s: %s", getenv("NOTIFY_SOCKET"),
                 strerror(errno));
    failing = true;
}

/* True when the service manager expects WATCHDOG=1 keep-alives, with their interval. */
static bool watchdog_interval(uint64_t *usec)
{
    int rc = notify_watchdog(usec);
    if (rc < 0)
        log_warn("WATCHDOG_USEC=%s, WATCHDOG_PID=%s: not a number of microseconds and a process id; no"
                 " watchdog keep-alives are sent",
                 getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID") ? getenv("WATCHDOG_PID") : "(unset)");
    return rc > 0;
}

static int load_peer(void *ctx, const char *id, const char *card_text, uint64_t added_ms)
{
    node_t *n = ctx;
    card_t c;
    char err[256];
    if (card_decode(card_text, &c, err, sizeof err) != 0 || strcmp(c.id, id) != 0) {
        log_warn("peer %s: stored card is unusable (%s); skipped", id, err);
        return 0;
    }
    if (!directory_add(&n->dir, n->keys, &c, card_text, added_ms, err, sizeof err))
        log_warn("peer %s: %s; skipped", id, err);
    return 0;
}

/* True while the open transaction holds nothing but the delivery pump's bookkeeping
 * and no answer waits for its commit: then it may wait for the next batch. */
static bool only_bookkeeping(const daemon_state_t *d, uint64_t mono)
{
    const node_t *n = &d->node;
    return d->lazy_open && store_in_txn(n->store) && n->n_deferred == 0 && mono < d->lazy_until_ms &&
           sqlite3_total_changes64(store_db(n->store)) == d->lazy_changes;
}

static void before_sleep(loop_t *l, void *ctx)
{
    daemon_state_t *d = ctx;
    node_t *n = &d->node;
    /* Waits whose time ran out are answered with this batch. */
    control_waits_expire(n, loop_mono_ms());
    if (!only_bookkeeping(d, loop_mono_ms())) {
        node_commit(n);
        d->lazy_open = false;
        witness_after_commit(n);
    }
    /* Retries of the messages node_commit sent from memory (delivery.h). */
    if (n->due_hint_ms < d->next_due_ms)
        d->next_due_ms = n->due_hint_ms;
    n->due_hint_ms = UINT64_MAX;
    uint64_t now = liaison_now_ms();
    if (n->pump_needed || now >= d->next_due_ms) {
        n->pump_needed = false;
        bool pumped = delivery_pump(n) == 0;
        if (!pumped)
            log_warn("delivery: %s", store_error(n->store));
        if (store_delivery_next_due(n->store, &d->next_due_ms) != 0) {
            /* Not "nothing due": queued messages would wait for the next unrelated wake-up. */
            log_warn("delivery: %s", store_error(n->store));
            d->next_due_ms = now + n->cfg.retry_min_ms;
        }
        /* A pump that failed left what was due due: again after a pause, not at once (a
         * busy loop, sending the same envelopes and logging at every turn). */
        if (!pumped && d->next_due_ms < now + n->cfg.retry_min_ms)
            d->next_due_ms = now + n->cfg.retry_min_ms;
    }
    /* A retry time further ahead than any schedule sets was set before the wall clock
     * jumped back: it is due soon (the pump takes it and reschedules it), not when the
     * clock catches up. Soon, not now: should the pump fail to reschedule it, this must
     * not turn into a busy loop. */
    if (d->next_due_ms != UINT64_MAX && d->next_due_ms > now + delivery_horizon_ms(n))
        d->next_due_ms = now + n->cfg.retry_min_ms;
    /* The pump's bookkeeping (attempt counts, next retry times, "sent") is left in the
     * open transaction and committed with the next batch instead of costing an fsync of
     * its own: losing it in a crash only means an earlier retry, which the recipient
     * answers with its original receipt. Loop iterations that bring nothing else to
     * commit (ZeroMQ's wake-ups after a send, a verifier hand-off still in progress)
     * leave it open; the wake-up below bounds how long it waits. */
    uint64_t mono = loop_mono_ms();
    if (store_in_txn(n->store)) {
        if (!d->lazy_open) {
            d->lazy_open = true;
            d->lazy_until_ms = mono + BOOKKEEPING_COMMIT_MS;
        }
        d->lazy_changes = sqlite3_total_changes64(store_db(n->store));
    } else {
        d->lazy_open = false;
    }
    uint64_t wake = d->next_due_ms == UINT64_MAX ? UINT64_MAX : (d->next_due_ms > now ? d->next_due_ms - now : 0);
    uint64_t wait_end = waits_next_deadline(n->waits);
    if (wait_end != UINT64_MAX && (wait_end > mono ? wait_end - mono : 0) < wake)
        wake = wait_end > mono ? wait_end - mono : 0;
    if (n->pump_needed)
        wake = 0;
    else if (d->lazy_open) {
        uint64_t left = d->lazy_until_ms > mono ? d->lazy_until_ms - mono : 0;
        if (left < wake)
            wake = left;
    }
    if (wake != UINT64_MAX)
        loop_wake_at(l, mono + wake);
}

static void audit_daemon(node_t *n, const char *action, const char *details)
{
    if (store_op_begin(n->store) == 0) {
        audit_entry_t e = {.actor = "daemon", .action = action, .outcome = "ok", .details = details};
        store_op_end(n->store, node_audit(n, &e) == 0);
    }
    node_commit(n);
}

static void reload(daemon_state_t *d);

static void on_signal(loop_t *l, void *sock, int fd, void *ctx)
{
    (void)sock;
    daemon_state_t *d = ctx;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            log_info("stopping (signal %u)", si.ssi_signo);
            tell_manager("STOPPING=1");
            loop_stop(l);
        } else if (si.ssi_signo == SIGHUP) {
            reload(d);
        }
    }
}

/* Once a second: transport housekeeping and the STATUS= line for systemd. */
static void on_tick(loop_t *l, void *ctx)
{
    (void)l;
    daemon_state_t *d = ctx;
    node_t *n = &d->node;
    transport_tick(n);
    control_tick(n);
    if (++d->ticks % 5 == 0)
        clinical_tick(n);
    /* Under load SQLite's page cache grows to its limit (store.c); once the node has
     * been quiet for a while, hand that memory back to the system. */
    if (n->batches != d->idle_batches) {
        d->idle_batches = n->batches;
        d->idle_ticks = 0;
    } else if (++d->idle_ticks == IDLE_RELEASE_S) {
        int rc = sqlite3_db_release_memory(store_db(n->store));
        node_release_idle(n);
        malloc_trim(0);
        log_debug("idle for %u s: database cache released (%s)", IDLE_RELEASE_S, sqlite3_errstr(rc));
    }
    backfill_stats_t bs;
    backfill_stats(n->backfill, &bs);
    if (bs.failed != d->backfill_failed) {
        log_warn("database: copying the WAL into the database file failed %" PRIu64 " time(s): %s",
                 bs.failed - d->backfill_failed, sqlite3_errstr(bs.last_rc));
        d->backfill_failed = bs.failed;
    }
    size_t up = 0;
    for (size_t i = 0; i < n->dir.n; i++)
        up += n->dir.peers[i]->connected;
    int64_t q = store_queue_depth(n->store, NULL);
    char status[160];
    if (q < 0) /* not "0 queued" */
        snprintf(status, sizeof status, "STATUS=%zu of %zu peers connected, queue unreadable: %.80s", up, n->dir.n,
                 store_error(n->store));
    else
        snprintf(status, sizeof status, "STATUS=%zu of %zu peers connected, %" PRId64 " queued", up, n->dir.n, q);
    if (strcmp(status, d->last_status) != 0) {
        tell_manager(status);
        memcpy(d->last_status, status, sizeof status);
    }
}

static void on_watchdog(loop_t *l, void *ctx)
{
    (void)l;
    (void)ctx;
    tell_manager("WATCHDOG=1");
}

/* Collects the stored directory to compare it with the running one. */
typedef struct reload_ctx {
    node_t *n;
    char **ids;
    size_t count, cap;
} reload_ctx_t;

static int reload_peer(void *ctx, const char *id, const char *card_text, uint64_t added_ms)
{
    reload_ctx_t *rc = ctx;
    node_t *n = rc->n;
    if (rc->count == rc->cap) {
        size_t cap = rc->cap ? rc->cap * 2 : 16;
        char **ids = realloc(rc->ids, cap * sizeof *ids);
        if (!ids)
            return -1;
        rc->ids = ids;
        rc->cap = cap;
    }
    if (!(rc->ids[rc->count] = strdup(id)))
        return -1;
    rc->count++;
    peer_t *p = directory_find(&n->dir, id);
    if (p && strcmp(p->card_text, card_text) == 0)
        return 0; /* unchanged: keep its connection */
    card_t c;
    char err[256];
    if (card_decode(card_text, &c, err, sizeof err) != 0) {
        log_warn("reload: peer %s: %s; kept as it was", id, err);
        return 0;
    }
    if (p) {
        transport_peer_close(n, p);
        directory_remove(&n->dir, p);
    }
    p = directory_add(&n->dir, n->keys, &c, card_text, added_ms, err, sizeof err);
    if (!p || transport_peer_open(n, p, err, sizeof err) != 0)
        log_warn("reload: peer %s: %s", id, err);
    else
        log_info("reload: peer %s %s", id, "(re)loaded");
    return 0;
}

/* SIGHUP: re-reads liaison.conf (settings that need a restart are reported) and the
 * peer directory; unchanged peers keep their connections, queued messages stay queued. */
static void reload(daemon_state_t *d)
{
    node_t *n = &d->node;
    config_t c;
    char err[CONFIG_PATH_MAX * 3 + 256]; /* a message may name the file, a hook and its directory */
    node_commit(n);
    /* What start-up refuses, a reload refuses too: a configuration (or a hook it names)
     * that someone else could have changed. */
    if (paths_check_dir(n->paths.config_dir, err, sizeof err) != 0 ||
        config_load(n->paths.config_file, &c, err, sizeof err) != 0 ||
        config_check_hook_safe(n->paths.config_file, &c, err, sizeof err) != 0) {
        log_err("reload: %s; keeping the running configuration", err);
    } else {
        if (strcmp(c.id, n->cfg.id) != 0 || strcmp(c.listen, n->cfg.listen) != 0 ||
            strcmp(c.advertise, n->cfg.advertise) != 0 || strcmp(c.name, n->cfg.name) != 0 ||
            strcmp(c.role, n->cfg.role) != 0 || strcmp(c.org, n->cfg.org) != 0 || c.heartbeat_ms != n->cfg.heartbeat_ms)
            log_warn("reload: changes to [node] or heartbeat_ms take effect only after a restart");
        memcpy(c.id, n->cfg.id, sizeof c.id);
        memcpy(c.name, n->cfg.name, sizeof c.name);
        memcpy(c.role, n->cfg.role, sizeof c.role);
        memcpy(c.org, n->cfg.org, sizeof c.org);
        memcpy(c.listen, n->cfg.listen, sizeof c.listen);
        memcpy(c.advertise, n->cfg.advertise, sizeof c.advertise);
        c.heartbeat_ms = n->cfg.heartbeat_ms;
        n->cfg = c;
        log_init(log_level_parse(n->cfg.log_level));
        if (config_check_hook(n->paths.config_file, &n->cfg, err, sizeof err) != 0)
            log_warn("reload: %s", err);
    }
    reload_ctx_t rc = {.n = n};
    if (store_peer_each(n->store, reload_peer, &rc) != 0) {
        log_err("reload: cannot read the peer directory: %s", store_error(n->store));
    } else {
        /* Peers no longer in the database are dropped. */
        for (size_t i = n->dir.n; i-- > 0;) {
            peer_t *p = n->dir.peers[i];
            bool keep = false;
            for (size_t j = 0; j < rc.count && !keep; j++)
                keep = strcmp(rc.ids[j], p->card.id) == 0;
            if (!keep) {
                log_info("reload: peer %s removed", p->card.id);
                transport_peer_close(n, p);
                directory_remove(&n->dir, p);
            }
        }
    }
    for (size_t i = 0; i < rc.count; i++)
        free(rc.ids[i]);
    free(rc.ids);
    n->pump_needed = true;
    log_info("reloaded: %zu peers", n->dir.n);
    tell_manager("READY=1");
}

static int open_lock(const paths_t *p, char *err, size_t errlen)
{
    char path[CONFIG_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/liaisond.lock", p->runtime_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "another liaisond is already running for %s", p->home[0] ? p->home : "this node");
        close(fd);
        return -1;
    }
    return fd;
}

/* The daemon writes its database, and SQLite creates liaison.db-wal and -shm beside it:
 * a file or directory this user cannot write is named before SQLite's "attempt to write
 * a readonly database", at start-up and by --check-config alike. */
static int check_db_writable(const node_t *n, char *err, size_t errlen)
{
    char wal[CONFIG_PATH_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", n->paths.db_file);
    const char *files[] = {n->paths.db_file, wal};
    for (size_t i = 0; i < 2; i++) {
        if (access(files[i], F_OK) == 0 && access(files[i], R_OK | W_OK) != 0) {
            snprintf(err, errlen,
                     "%s cannot be written by this user (uid %u): liaisond writes it (make it the daemon user's own,"
                     " mode 0600: chown USER %s; chmod 0600 %s)",
                     files[i], (unsigned)geteuid(), files[i], files[i]);
            return -1;
        }
    }
    if (access(n->paths.state_dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen,
                 "%s cannot be written by this user (uid %u): SQLite makes liaison.db-wal and liaison.db-shm there"
                 " (make it the daemon user's own: chown USER %s)",
                 n->paths.state_dir, (unsigned)geteuid(), n->paths.state_dir);
        return -1;
    }
    return 0;
}

/* The card given to peers says where to dial this node and who it is; liaison.conf
 * can change since. Peers keep dialling what the card says, so say which field differs
 * and how to give them a card made from the configuration (same keys: their peer add
 * updates it). A warning, not an error: the node still works for peers that hold the
 * newer card, and for what it sends. */
static void card_differs(const node_t *n, const card_t *c)
{
    const char *field = strcmp(c->endpoint, n->cfg.advertise) != 0 ? "endpoint"
                        : strcmp(c->name, n->cfg.name) != 0        ? "name"
                        : strcmp(c->role, n->cfg.role) != 0        ? "role"
                        : strcmp(c->org, n->cfg.org) != 0          ? "org"
                                                                   : NULL;
    if (!field)
        return;
    log_warn("%s, the card your peers hold, has another %s than %s%s%s (peers dial the card's endpoint %s); once"
             " the daemon runs, give them a card made from the configuration: liaison card --fresh > CARD, and"
             " each peer runs: liaison peer add CARD (the same keys: it updates their entry)",
             n->paths.card_file, field, n->paths.config_file, strcmp(field, "endpoint") == 0 ? " says: " : "",
             strcmp(field, "endpoint") == 0 ? n->cfg.advertise : "", c->endpoint);
}

/* The node's id is fixed when it is created: its card (signed, given to every peer)
 * and its database carry it. A liaison.conf naming another id would make the daemon
 * speak as a node its peers do not know, so start-up and --check-config refuse it.
 * s may be NULL (the card file only). */
static int check_identity(node_t *n, store_t *s, char *err, size_t errlen)
{
    char text[LIAISON_MAX_CARD_TEXT + 2];
    size_t len = 0;
    FILE *f = fopen(n->paths.card_file, "rb");
    /* No card is allowed (liaison card then asks the daemon for one); a card that is
     * there but cannot be read is not "no card", which would skip the checks below. */
    if (!f && errno != ENOENT) {
        snprintf(err, errlen, "cannot read %s: %s", n->paths.card_file, strerror(errno));
        return -1;
    }
    if (f) {
        len = fread(text, 1, sizeof text - 1, f);
        int read_errno = errno;
        bool unread = ferror(f);
        fclose(f);
        if (unread) {
            snprintf(err, errlen, "cannot read %s: %s", n->paths.card_file, strerror(read_errno));
            return -1;
        }
        text[len] = 0;
        card_t c;
        char cerr[256];
        if (len > LIAISON_MAX_CARD_TEXT || card_decode(text, &c, cerr, sizeof cerr) != 0) {
            snprintf(err, errlen, "%s is not a valid card (restore it from a backup of this node)",
                     n->paths.card_file);
            return -1;
        }
        if (sodium_memcmp(c.sign_pk, n->keys->sign_pk, LIAISON_KEY_BYTES) != 0) {
            snprintf(err, errlen, "%s belongs to another node's keys than those in %s (restore the matching files)",
                     n->paths.card_file, n->paths.key_dir);
            return -1;
        }
        if (strcmp(c.id, n->cfg.id) != 0) {
            snprintf(err, errlen,
                     "%s: [node] id is '%s' but this node is '%s' (its card %s and its keys say so); a node's id"
                     " cannot change: set id = %s",
                     n->paths.config_file, n->cfg.id, c.id, n->paths.card_file, c.id);
            return -1;
        }
        card_differs(n, &c);
    }
    if (s) {
        char id[LIAISON_MAX_ID + 1];
        size_t idlen = 0;
        int rc = store_meta_get(s, "node_id", (uint8_t *)id, sizeof id - 1, &idlen);
        if (rc < 0) { /* not "no id recorded", which would skip the check */
            snprintf(err, errlen, "cannot read the node id recorded in %s: %s", n->paths.db_file, store_error(s));
            return -1;
        }
        if (rc == 0) {
            id[idlen] = 0;
            if (strcmp(id, n->cfg.id) != 0) {
                snprintf(err, errlen,
                         "%s: [node] id is '%s' but the database %s belongs to node '%s'; a node's id cannot"
                         " change: set id = %s",
                         n->paths.config_file, n->cfg.id, n->paths.db_file, id, id);
                return -1;
            }
        }
    }
    return 0;
}

/* patient.key does not exist. A new key is made only for a node whose database holds
 * no patient tag at all (create); otherwise the old tags would silently stop matching,
 * and the node would say it never disclosed anything about those patients. */
static int patient_key_missing(node_t *n, store_t *s, bool create, char *err, size_t errlen)
{
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", n->paths.key_dir, PATIENT_KEY_FILE);
    int tagged = store_has_patient_tags(s);
    if (tagged < 0) {
        snprintf(err, errlen, "cannot read %s: %s", n->paths.db_file, store_error(s));
        return -1;
    }
    if (tagged) {
        snprintf(err, errlen,
                 "%s is missing, but %s already holds messages or audit entries tagged with it: without that key"
                 " they can no longer be found by patient. Restore %s from a backup of this node (mode 0600,"
                 " owned by the daemon's user); liaisond will not make a new one",
                 path, n->paths.db_file, path);
        return -1;
    }
    if (!create)
        return 0;
    if (patient_key_create(n->paths.key_dir, n->patient_key, err, errlen) != 0)
        return -1;
    log_warn("%s did not exist; created a new one (the database holds no patient tags yet)", path);
    return 0;
}

/* A database made by an earlier liaison init took the umask's mode (often 0644): take
 * away what group and others could read (SQLite gives -wal and -shm the same mode). */
static void private_db_files(const paths_t *p)
{
    static const char *const suffix[] = {"", "-wal", "-shm"};
    char path[CONFIG_PATH_MAX + 8];
    struct stat st;
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(path, sizeof path, "%s%s", p->db_file, suffix[i]);
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) {
            if (fchmod(fd, st.st_mode & 0700) == 0)
                log_warn("%s was readable by group or others (mode %04o): made it 0%o", path,
                         (unsigned)(st.st_mode & 07777), (unsigned)(st.st_mode & 0700));
            else
                log_warn("%s is readable by group or others and cannot be changed: %s", path, strerror(errno));
        }
        close(fd);
    }
}

/* Verifies this node's own audit log (hash chain, Merkle roots, the signatures of its
 * checkpoints) before anything is appended to it. A log that fails was changed outside
 * liaisond: appending to it, and above all signing a new checkpoint over it, would
 * anchor the change under this node's signature, so the daemon does not start. */
/* Keeps systemd's start-up timeout from running out while a long log is verified
 * (about 4 µs an entry on the machine of docs/PERFORMANCE.md): each call gives 30 s more. */
static void verify_progress(void *ctx, uint64_t entries)
{
    (void)ctx;
    char msg[128];
    snprintf(msg, sizeof msg, "EXTEND_TIMEOUT_USEC=30000000\nSTATUS=Verifying the audit log: %" PRIu64 " entries so far",
             entries);
    tell_manager(msg);
}

static int check_audit_log(node_t *n, store_t *s, char *err, size_t errlen)
{
    audit_verify_opts_t o = {.sign_pk = n->keys->sign_pk, .progress = verify_progress};
    audit_report_t *r = malloc(sizeof *r);
    int rc = -1;
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uint64_t t0 = loop_mono_ms();
    if (audit_verify_db(store_db(s), &o, r) != 0) {
        snprintf(err, errlen, "cannot verify the audit log in %s: %.*s", n->paths.db_file,
                 (int)strcspn(r->text, "\n"), r->text);
    } else if (!r->ok) {
        /* The report's first FAIL line names the entry or checkpoint. */
        const char *what = strstr(r->text, "FAIL: ");
        what = what ? what + 6 : r->text;
        snprintf(err, errlen,
                 "the audit log in %s fails verification: %.*s. It was changed outside liaisond; liaisond will"
                 " not append to it or sign a checkpoint over it. Keep a copy of the file as evidence and tell"
                 " the care team's auditor (the full report: liaison audit verify --db COPY --card %s), then"
                 " restore this node's newest backup that verifies",
                 n->paths.db_file, (int)strcspn(what, "\n"), what, n->paths.card_file);
    } else {
        rc = 0;
        n->rollbacks = r->rollbacks;
        n->last_rollback_ms = r->last_rollback_ms;
        log_info("audit log verified: %" PRIu64 " entr%s, %" PRIu64 " signed checkpoint%s, in %" PRIu64 " ms",
                 r->entries, r->entries == 1 ? "y" : "ies", r->checkpoints, r->checkpoints == 1 ? "" : "s",
                 loop_mono_ms() - t0);
        if (r->rollbacks)
            log_warn("audit log: this node recorded rollback-detected %" PRIu64 " time(s): entries its peers witnessed"
                     " are missing from its log or were changed (liaison status)",
                     r->rollbacks);
    }
    free(r);
    return rc;
}

/* Messages stored before the patient_folds table existed (PROTOCOL.md 10) carry
 * patient tags without fold tags, so a new spelling of such a patient's id that differs
 * only in letter case would not be caught. At start-up, before anything is served, the
 * fold tag of each such patient tag is filled in from one of its messages that opens:
 * one per patient, not per message, and nothing at all once done. The daemon reads
 * those payloads for this alone; the audit log records how many, never which. */
typedef struct unfolded {
    uint8_t (*tag)[LIAISON_HASH_BYTES];
    uint8_t (*id)[LIAISON_MSGID_BYTES];
    size_t n, cap;
} unfolded_t;

static int collect_unfolded(void *ctx, const uint8_t *tag, const uint8_t *id)
{
    unfolded_t *u = ctx;
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 256;
        void *t = realloc(u->tag, cap * sizeof *u->tag);
        if (t)
            u->tag = t;
        void *i = realloc(u->id, cap * sizeof *u->id);
        if (i)
            u->id = i;
        if (!t || !i)
            return -1;
        u->cap = cap;
    }
    memcpy(u->tag[u->n], tag, LIAISON_HASH_BYTES);
    memcpy(u->id[u->n++], id, LIAISON_MSGID_BYTES);
    return 0;
}

/* Whether message id yields the fold tag of `tag` (1, *fold set), opened but did not
 * (0), or could not be opened (-1). */
static int fold_of(node_t *n, const uint8_t *id, const uint8_t *tag, uint8_t fold[LIAISON_HASH_BYTES])
{
    store_msg_t m;
    uint8_t *pt = NULL, check[LIAISON_HASH_BYTES];
    size_t pt_len = 0;
    char patient[PAYLOAD_MAX_PATIENT_ID + 1];
    if (control_open_stored(n, id, &m, &pt, &pt_len) != 0)
        return -1;
    bool ok = payload_patient(m.content_type, pt, pt_len, patient) == 1;
    sodium_memzero(pt, pt_len);
    free(pt);
    if (ok) {
        patient_tag(n->patient_key, patient, check);
        ok = sodium_memcmp(check, tag, LIAISON_HASH_BYTES) == 0;
        if (ok)
            patient_fold_tag(n->patient_key, patient, fold);
    }
    sodium_memzero(patient, sizeof patient);
    return ok ? 1 : 0;
}

static int fill_patient_folds(node_t *n, char *err, size_t errlen)
{
    unfolded_t u = {0};
    if (store_patient_unfolded(n->store, collect_unfolded, &u) != 0) {
        snprintf(err, errlen, "cannot read the patient index of %s: %s", n->paths.db_file,
                 u.n == u.cap ? "out of memory" : store_error(n->store));
        free(u.tag);
        free(u.id);
        return -1;
    }
    if (u.n == 0)
        return 0;
    size_t patients = 0, filled = 0, opened = 0;
    bool ok = store_op_begin(n->store) == 0;
    for (size_t i = 0, j; ok && i < u.n; i = j) {
        for (j = i + 1; j < u.n && memcmp(u.tag[j], u.tag[i], LIAISON_HASH_BYTES) == 0; j++)
            ;
        patients++;
        uint8_t fold[LIAISON_HASH_BYTES];
        for (size_t k = i; k < j; k++) {
            int f = fold_of(n, u.id[k], u.tag[i], fold);
            opened += f >= 0;
            if (f == 1) {
                ok = store_patient_seen(n->store, u.tag[i], fold, false) == 0;
                filled++;
                break;
            }
        }
    }
    char details[200];
    snprintf(details, sizeof details,
             "patient index: fold tags filled in for %zu of %zu patients with messages from before it (%zu"
             " messages read)",
             filled, patients, opened);
    if (ok && opened) { /* the daemon read clinical content: accounted for, by count only */
        audit_entry_t e = {.actor = "daemon", .action = "patient-index-filled", .outcome = "ok", .details = details};
        ok = node_audit(n, &e) == 0;
    }
    free(u.tag);
    free(u.id);
    if (store_op_end(n->store, ok) != 0 || !ok || !node_commit(n)) {
        snprintf(err, errlen, "cannot fill in the patient index of %s: %s", n->paths.db_file, store_error(n->store));
        return -1;
    }
    log_info("%s", details);
    if (filled < patients)
        log_warn("patient index: %zu patients have no message this node can open (their senders' keys are gone): a"
                 " new spelling of their ids that differs only in letter case is not caught",
                 patients - filled);
    return 0;
}

static int start(daemon_state_t *d, const char *home, bool check_only, char *err, size_t errlen)
{
    node_t *n = &d->node;
    if (paths_resolve(&n->paths, home, err, errlen) != 0)
        return -1;
    if (access(n->paths.init_marker, F_OK) == 0) {
        snprintf(err, errlen,
                 "liaison init did not finish here (%s exists): nothing was ever started with this node; run the"
                 " same liaison init again, it starts over",
                 n->paths.init_marker);
        return -1;
    }
    /* A file of the node that is missing, then the directories, before anything is read
     * from them; --check-config does the same and so says what start-up would (it only
     * lets a missing database pass, below). */
    if (paths_check_node(&n->paths, !check_only, err, errlen) != 0)
        return -1;
    const char *dirs[] = {n->paths.config_dir, n->paths.key_dir, n->paths.state_dir};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (paths_check_dir(dirs[i], err, errlen) != 0)
            return -1;
    if (config_load(n->paths.config_file, &n->cfg, err, errlen) != 0)
        return -1;
    log_init(log_level_parse(n->cfg.log_level));
    /* liaisond runs the hook with its own rights: one that someone else could change is
     * refused, at start-up as by --check-config and on reload. */
    if (config_check_hook_safe(n->paths.config_file, &n->cfg, err, errlen) != 0)
        return -1;
    if (!(n->keys = keys_load(n->paths.key_dir, err, errlen)))
        return -1;
    /* Locked, guarded memory, as the identity keys: with a copy of the database this
     * key lets anyone try every patient id (a small space) against the tags. */
    if (!(n->patient_key = sodium_malloc(LIAISON_KEY_BYTES))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int pk = patient_key_load(n->paths.key_dir, n->patient_key, err, errlen);
    if (pk < 0)
        return -1;
    if (check_identity(n, NULL, err, errlen) != 0)
        return -1;
    /* A hook that cannot run is found now, not when an acknowledgement is overdue: the
     * configuration check fails; the daemon still starts (it must deliver) and says so. */
    char hook_err[CONFIG_PATH_MAX * 2 + 128];
    if (config_check_hook(n->paths.config_file, &n->cfg, hook_err, sizeof hook_err) != 0) {
        if (check_only) {
            snprintf(err, errlen, "%s", hook_err);
            return -1;
        }
        log_warn("%s", hook_err);
    }
    /* Start-up makes the runtime directory if it is missing (systemd makes it for the
     * unit); --check-config checks one that is there. */
    if (!check_only && mkdir(n->paths.runtime_dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", n->paths.runtime_dir, strerror(errno));
        return -1;
    }
    if ((!check_only || access(n->paths.runtime_dir, F_OK) == 0) &&
        paths_check_dir(n->paths.runtime_dir, err, errlen) != 0)
        return -1;
    if (check_only) {
        /* What start-up checks against the database, read-only, and nothing if there is
         * none: the configuration and keys may be checked before the database is put back.
         * Start-up refuses to run without it: say so. */
        if (access(n->paths.db_file, F_OK) != 0) {
            char note[CONFIG_PATH_MAX * 3 + 256];
            if (paths_check_node(&n->paths, true, note, sizeof note) != 0)
                log_warn("%s; liaisond will not start without it", note);
            return 0;
        }
        if (check_db_writable(n, err, errlen) != 0)
            return -1;
        store_t *s = store_open(n->paths.db_file, STORE_READONLY, err, errlen);
        int rc = s && check_identity(n, s, err, errlen) == 0 &&
                         (pk != PATIENT_KEY_MISSING || patient_key_missing(n, s, false, err, errlen) == 0) &&
                         check_audit_log(n, s, err, errlen) == 0
                     ? 0
                     : -1;
        store_close(&s);
        return rc;
    }
    if ((d->lockfd = open_lock(&n->paths, err, errlen)) < 0)
        return -1;
    private_db_files(&n->paths);
    if (access(n->paths.db_file, F_OK) == 0 && check_db_writable(n, err, errlen) != 0)
        return -1;
    if (!(n->store = store_open(n->paths.db_file, 0, err, errlen)) || !(n->audit = audit_open(n->store, err, errlen)) ||
        witness_open(n, err, errlen) != 0)
        return -1;
    if (check_identity(n, n->store, err, errlen) != 0 ||
        (pk == PATIENT_KEY_MISSING && patient_key_missing(n, n->store, true, err, errlen) != 0) ||
        check_audit_log(n, n->store, err, errlen) != 0)
        return -1;
    if (backfill_start(&n->backfill, store_db(n->store), n->paths.db_file, BACKFILL_FRAMES, BACKFILL_HARD_FRAMES, err,
                       errlen) != 0)
        return -1;
    card_t *c = &n->card;
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", n->cfg.id);
    snprintf(c->name, sizeof c->name, "%s", n->cfg.name);
    snprintf(c->role, sizeof c->role, "%s", n->cfg.role);
    snprintf(c->org, sizeof c->org, "%s", n->cfg.org);
    snprintf(c->endpoint, sizeof c->endpoint, "%s", n->cfg.advertise);
    memcpy(c->sign_pk, n->keys->sign_pk, LIAISON_KEY_BYTES);
    memcpy(c->enc_pk, n->keys->enc_pk, LIAISON_KEY_BYTES);
    memcpy(c->transport_pk, n->keys->transport_pk, LIAISON_KEY_BYTES);
    c->created_ms = liaison_now_ms();
    if (!(n->card_text = card_encode(c, n->keys, err, errlen)))
        return -1;
    if (!(n->self_pair_key = sodium_malloc(LIAISON_KEY_BYTES)) ||
        keys_pair_key(n->keys, n->keys->enc_pk, n->self_pair_key) != 0) {
        snprintf(err, errlen, "cannot derive the local key");
        return -1;
    }
    /* Recorded for offline verifiers of a copy of this database (a trusted card is better). */
    size_t mlen = 0;
    uint8_t mval[LIAISON_KEY_BYTES];
    if (store_meta_get(n->store, "sign_pk", mval, sizeof mval, &mlen) == 1) {
        store_meta_set(n->store, "sign_pk", n->keys->sign_pk, LIAISON_KEY_BYTES);
        store_meta_set(n->store, "node_id", (const uint8_t *)n->cfg.id, strlen(n->cfg.id));
    }
    directory_init(&n->dir);
    if (store_peer_each(n->store, load_peer, n) != 0) {
        snprintf(err, errlen, "cannot load the peer directory: %s", store_error(n->store));
        return -1;
    }
    if (fill_patient_folds(n, err, errlen) != 0)
        return -1;
    if (!(n->loop = loop_new())) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* Blocked before the first socket starts libzmq's threads, which inherit the mask:
     * a signal sent to the process goes to a thread that does not block it, and a
     * libzmq thread blocks signals itself only once it first runs (on a loaded machine,
     * after READY=1, so a reload's SIGHUP took its default action and ended the daemon). */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((d->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
        loop_add(n->loop, NULL, d->sigfd, on_signal, d) != 0) {
        snprintf(err, errlen, "cannot watch signals: %s", strerror(errno));
        return -1;
    }
    if (!(n->zctx = zmq_ctx_new())) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    zmq_ctx_set(n->zctx, ZMQ_BLOCKY, 0);
    if (transport_start(n, err, errlen) != 0 || control_start(n, err, errlen) != 0)
        return -1;
    loop_set_before_sleep(n->loop, before_sleep, d);
    /* Started once the signals are blocked, so that its thread inherits the mask. */
    if (verifier_start(&n->verifier, n->zctx, n->loop, delivery_receipt_verified, n, err, errlen) != 0)
        return -1;
    uint64_t wd_usec = 0;
    if (loop_add_timer(n->loop, 1000, on_tick, d) != 0 ||
        (watchdog_interval(&wd_usec) && wd_usec >= 2000 &&
         loop_add_timer(n->loop, (uint32_t)(wd_usec / 2000u), on_watchdog, d) != 0)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    n->started_ms = liaison_now_ms();
    d->next_due_ms = 0;
    n->due_hint_ms = UINT64_MAX;
    char details[128];
    snprintf(details, sizeof details, "version %s, %zu peers", LIAISON_VERSION, n->dir.n);
    audit_daemon(n, "daemon-started", details);
    return 0;
}

static void stop(daemon_state_t *d)
{
    node_t *n = &d->node;
    /* Only a daemon that started says it stopped: a start refused half-way (a log that
     * fails verification, above all) appends nothing. */
    if (n->store && n->audit && n->started_ms) {
        audit_daemon(n, "daemon-stopped", NULL);
        if (witness_final_checkpoint(n) != 0)
            log_warn("checkpoint: the last entries of this run are not signed (a checkpoint at the next start will"
                     " cover them)");
    }
    verifier_stop(&n->verifier);
    /* Statistics of a run, not of a start that was refused: its error stays the last line. */
    if (n->started_ms)
        log_info("receipts: %" PRIu64 " signatures checked on the verifier thread, %" PRIu64 " on the loop",
                 n->receipts_on_thread, n->receipts_on_loop);
    auditor_stop(n);
    control_stop(n);
    transport_stop(n);
    if (n->zctx)
        zmq_ctx_term(n->zctx);
    directory_clear(&n->dir);
    witness_close(n);
    for (size_t i = 0; i < n->n_deferred; i++) { /* answers of a batch that never committed */
        if (n->deferred[i].data && n->deferred[i].control)
            sodium_memzero(n->deferred[i].data, n->deferred[i].len);
        free(n->deferred[i].data);
        free(n->deferred[i].wait);
    }
    free(n->deferred);
    delivery_direct_cancel(n, 0);
    free(n->outgoing);
    free(n->held);
    audit_close(&n->audit);
    if (n->backfill && n->started_ms) {
        backfill_stats_t bs;
        backfill_stats(n->backfill, &bs);
        log_info("database: the WAL was copied into the database file %" PRIu64 " times on the backfill thread (%" PRIu64
                 " pages) and %" PRIu64 " times by commits",
                 bs.runs, bs.frames, bs.inline_runs);
    }
    backfill_stop(&n->backfill);
    store_close(&n->store);
    keys_destroy(&n->keys);
    sodium_free(n->self_pair_key);
    sodium_free(n->patient_key); /* wiped as it is freed */
    n->patient_key = NULL;
    free(n->card_text);
    loop_destroy(&n->loop);
    if (d->sigfd >= 0)
        close(d->sigfd);
    if (d->lockfd >= 0)
        close(d->lockfd);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'h'},   {"check-config", no_argument, NULL, 'c'},
        {"version", no_argument, NULL, 'V'},      {"help", no_argument, NULL, 'H'},
        {"foreground", no_argument, NULL, 'f'},   {NULL, 0, NULL, 0},
    };
    const char *home = NULL;
    bool check = false;
    int o;
    /* SQLite's memory statistics take a global mutex on every allocation; nothing here
     * reads them. Must precede the first connection. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    /* No bulk page allocation per connection: by default each connection's cache takes
     * 20 pages (87 KB) in one block that it keeps until it closes, through any release
     * (the backfill connection never uses them). Pages are then allocated one by one and
     * the idle release (on_tick) can hand them all back. PERFORMANCE.md finding 32. */
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'h':
            /* Two different homes are two nodes: never pick one silently (as liaison). */
            if (home && strcmp(home, optarg) != 0) {
                fprintf(stderr, "liaisond: --home given twice ('%.200s' and '%.200s'): give the node's directory"
                                " once\n", home, optarg);
                return 1;
            }
            home = optarg;
            break;
        case 'c': check = true; break;
        case 'f': break;
        case 'V': printf("liaisond %s\n", LIAISON_VERSION); return 0;
        case 'H': usage(stdout); return 0;
        default: usage(stderr); return 1; /* getopt_long named the bad option */
        }
    }
    if (optind != argc) {
        fprintf(stderr, "liaisond: unexpected argument '%.64s' (the node directory goes after --home)\n",
                argv[optind]);
        usage(stderr);
        return 1;
    }
    /* No core dump: one would hold the transport key (libzmq keeps its own copies),
     * patient.key and recently read messages in the clear, and leave the node's
     * protection with a crash report. Also refuses ptrace by other processes of the
     * same user. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        fprintf(stderr, "liaisond: cannot turn core dumps off: %s\n", strerror(errno));
        return 1;
    }
    log_init(LOG_LVL_INFO);
    /* Also for a dump handler that ignores the flag above. The unit's system call filter
     * may refuse setrlimit (@resources); it sets LimitCORE=0 itself. */
    struct rlimit no_core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &no_core) != 0)
        log_info("core file size limit left as it is (%s); core dumps are off all the same", strerror(errno));
    if (sodium_init() < 0)
        fatalx("libsodium could not be initialized");
    daemon_state_t d = {.sigfd = -1, .lockfd = -1};
    char err[1024] = "";
    if (start(&d, home, check, err, sizeof err) != 0) {
        log_err("%s", err);
        stop(&d);
        return 1;
    }
    if (check) {
        printf("liaisond: configuration %s is valid (node %s, %s)\n", d.node.paths.config_file, d.node.cfg.id,
               d.node.cfg.role);
        stop(&d);
        return 0;
    }
    log_info("node %s (%s) listening on %s, %zu peers", d.node.cfg.id, d.node.cfg.role, d.node.cfg.listen,
             d.node.dir.n);
    tell_manager("READY=1");
    int rc = loop_run(d.node.loop);
    if (rc != 0)
        log_err("event loop failed: %s", zmq_strerror(errno));
    stop(&d);
    log_info("stopped");
    return rc == 0 ? 0 : 1;
}
