/* SPDX-License-Identifier: Apache-2.0 */
/* liaison-bench: load between two real daemons.
 *
 * The driver thread submits sends to the sender's daemon through libliaison-client,
 * pipelined (liaison_submit / liaison_collect_wait), either on a schedule (fixed
 * offered load, open loop) or keeping a window of messages in flight (saturation,
 * closed loop on receipts). A message counts as delivered when the sender holds the
 * recipient's verified receipt, committed. By default an observer thread sees it in
 * the sender's database, which adds no work to the daemons: it polls that database
 * through a read-only SQLite connection, one read transaction per poll, looking up the
 * oldest messages still in flight by primary key (their delivery row has state 2 once
 * the receipt is committed); the time of a delivery is that of the first poll that
 * sees it. With --observe wait the driver learns it as a client would: once a send is
 * answered ("stored"), it submits a wait for that message on the same handle
 * (liaison_submit_wait), which the sender's daemon answers after the commit that
 * stores the receipt; the time is when that answer is collected. */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "payload.pb-c.h"

#define CHUNK 65536u
#define MAX_CHUNKS 512u
#define LOOKAHEAD 8        /* undelivered messages the observer looks past per poll */
#define MAX_PENDING 256    /* at fixed load: sends whose "stored" answer is not collected yet */
#define WAIT_MS 60000      /* each wait's own timeout (answered earlier, on the receipt) */

enum { ST_SUBMITTED = 0, ST_STORED, ST_DELIVERED, ST_FAILED };

typedef struct rec {
    uint64_t sched_ns;      /* when it was due: its slot at fixed load, else its submission */
    uint64_t submit_ns;     /* just before liaison_submit */
    uint64_t ack_ns;        /* liaison_collect returned its answer */
    uint64_t dlv_ns;        /* the wait answered (or the first poll that saw the receipt) */
    uint8_t id[16];
    _Atomic int st;
} rec_t;

typedef struct run {
    const load_opts_t *o;
    bnode_t *sender, *recipient;
    rec_t *chunk[MAX_CHUNKS];
    _Atomic size_t n_sub;          /* records published to the observer */
    _Atomic size_t n_done;         /* delivered or failed */
    _Atomic bool stop;
    uint64_t poll_ns;
    char err[256];
    _Atomic bool observer_failed;
    uint64_t observer_cpu_ns;      /* CPU time of the observer thread */
    uint64_t polls;
    uint64_t observer_ns;          /* how long the observer ran, for its mean interval */
    uint64_t observer_rounds;      /* its sleeps (a round polls if anything is in flight) */
    /* Which submission each token of the sender's handle answers: index << 1 | is_wait.
     * Tokens count up by one per submission on a handle. */
    uint64_t *tmap;
    size_t tmap_n, tmap_cap;
    uint64_t tfirst;
    size_t sends_pending;          /* sends whose answer is not collected yet */
    uint64_t waits;                /* waits submitted (more than one per message if one ran out) */
} run_t;

static rec_t *rec_at(run_t *r, size_t i) { return &r->chunk[i / CHUNK][i % CHUNK]; }

uint8_t *make_payload(size_t size, size_t *len)
{
    Liaison__Payload__TextMessage tm = LIAISON__PAYLOAD__TEXT_MESSAGE__INIT;
    tm.subject = (char *)"";
    size_t tl = size;
    char *text = malloc(size + 1);
    if (!text)
        return NULL;
    static const char words[] = "Seen today: PHQ-9 14 to 11, sleeping better, no change to the plan. ";
    for (size_t i = 0; i < size; i++)
        text[i] = words[i % (sizeof words - 1)];
    /* Shrink the text until the serialized TextMessage is exactly size bytes. */
    for (;;) {
        text[tl] = 0;
        tm.text = text;
        size_t n = liaison__payload__text_message__get_packed_size(&tm);
        if (n == size || tl == 0)
            break;
        if (n > size) {
            size_t over = n - size;
            tl = tl > over ? tl - over : tl - 1;
        } else {
            break; /* a varint boundary: cannot hit the size exactly; take the closest below */
        }
    }
    *len = liaison__payload__text_message__get_packed_size(&tm);
    uint8_t *buf = malloc(*len);
    if (buf)
        liaison__payload__text_message__pack(&tm, buf);
    free(text);
    return buf;
}

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10; }

static void unhex(const char *h, uint8_t out[16])
{
    for (int i = 0; i < 16; i++)
        out[i] = (uint8_t)(hexval(h[2 * i]) << 4 | hexval(h[2 * i + 1]));
}

/* ---- observer ---- */

static void *observer(void *arg)
{
    run_t *r = arg;
    sqlite3 *db = NULL;
    sqlite3_stmt *get = NULL, *begin = NULL, *end = NULL;
    char uri[700];
    snprintf(uri, sizeof uri, "file:%s?mode=ro", r->sender->db);
    if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(db, 2000) != SQLITE_OK ||
        sqlite3_prepare_v3(db, "SELECT state FROM deliveries WHERE message_id = ?1 AND recipient = ?2", -1,
                           SQLITE_PREPARE_PERSISTENT, &get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "BEGIN", -1, &begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "COMMIT", -1, &end, NULL) != SQLITE_OK) {
        snprintf(r->err, sizeof r->err, "observer: %s", db ? sqlite3_errmsg(db) : "out of memory");
        atomic_store(&r->observer_failed, true);
        goto out;
    }
    sqlite3_bind_text(get, 2, r->recipient->id, -1, SQLITE_STATIC);
    /* Linux lets a sleep run up to 50 us late by default (timer slack): a poll every
     * 100 us would really come every 150 us or more, adding to every latency measured. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    size_t head = 0;
    /* Rounds on a fixed schedule (absolute deadlines): a sleep after each poll would add
     * the poll's own time and the wake-up's to every interval. */
    uint64_t start = now_ns(), next = start;
    while (!atomic_load(&r->stop)) {
        size_t n = atomic_load_explicit(&r->n_sub, memory_order_acquire);
        while (head < n && atomic_load(&rec_at(r, head)->st) >= ST_DELIVERED)
            head++;
        if (head < n) {
            sqlite3_step(begin);
            sqlite3_reset(begin);
            uint64_t t_obs = 0;
            int misses = 0;
            for (size_t i = head; i < n && misses < LOOKAHEAD; i++) {
                rec_t *x = rec_at(r, i);
                int st = atomic_load(&x->st);
                if (st >= ST_DELIVERED)
                    continue;
                if (st == ST_SUBMITTED) { /* its id is not known yet */
                    misses++;
                    continue;
                }
                sqlite3_bind_blob(get, 1, x->id, 16, SQLITE_STATIC);
                int rc = sqlite3_step(get);
                if (!t_obs)
                    t_obs = now_ns(); /* the snapshot of this poll was taken before now */
                int state = rc == SQLITE_ROW ? sqlite3_column_int(get, 0) : -1;
                sqlite3_reset(get);
                if (state == 2 || state == 3) {
                    x->dlv_ns = t_obs;
                    atomic_store(&x->st, state == 2 ? ST_DELIVERED : ST_FAILED);
                    atomic_fetch_add(&r->n_done, 1);
                } else {
                    misses++;
                }
            }
            sqlite3_step(end);
            sqlite3_reset(end);
            r->polls++;
        }
        r->observer_rounds++;
        next += r->poll_ns;
        uint64_t now = now_ns();
        if (next < now)
            next = now; /* behind: poll again at once, and keep the schedule from there */
        sleep_until_ns(next);
    }
    r->observer_ns = now_ns() - start;
    r->observer_cpu_ns = cpu_thread_ns();
out:
    sqlite3_finalize(get);
    sqlite3_finalize(begin);
    sqlite3_finalize(end);
    sqlite3_close(db);
    return NULL;
}

/* ---- driver ---- */

/* Records what token answers. Returns 0 or -1. */
static int map_token(run_t *r, uint64_t token, size_t index, bool is_wait)
{
    if (r->tmap_n == 0)
        r->tfirst = token;
    if (token != r->tfirst + r->tmap_n) {
        snprintf(r->err, sizeof r->err, "unexpected token %llu", (unsigned long long)token);
        return -1;
    }
    if (r->tmap_n == r->tmap_cap) {
        size_t cap = r->tmap_cap ? r->tmap_cap * 2 : 65536;
        uint64_t *nm = realloc(r->tmap, cap * sizeof *nm);
        if (!nm) {
            snprintf(r->err, sizeof r->err, "out of memory");
            return -1;
        }
        r->tmap = nm;
        r->tmap_cap = cap;
    }
    r->tmap[r->tmap_n++] = (uint64_t)index << 1 | (is_wait ? 1u : 0u);
    return 0;
}

static int submit_wait(run_t *r, size_t i, const char *hex)
{
    uint64_t token;
    if (liaison_submit_wait(r->sender->cli, hex, WAIT_MS, 0, &token) != LIAISON_OK) {
        snprintf(r->err, sizeof r->err, "wait: %s", liaison_client_error(r->sender->cli));
        return -1;
    }
    r->waits++;
    return map_token(r, token, i, true);
}

/* Submits one message, due at sched (0: now). */
static int submit_one(run_t *r, const uint8_t *payload, size_t plen, uint64_t sched)
{
    size_t i = atomic_load(&r->n_sub);
    if (i / CHUNK >= MAX_CHUNKS)
        return -1;
    if (!r->chunk[i / CHUNK] && !(r->chunk[i / CHUNK] = calloc(CHUNK, sizeof(rec_t))))
        return -1;
    rec_t *x = rec_at(r, i);
    /* The client's timeout also bounds how long a submission may wait for room in the
     * socket (when the daemon does not keep up): generous, so backpressure shows as slip. */
    liaison_client_set_timeout(r->sender->cli, 60000);
    x->submit_ns = now_ns();
    x->sched_ns = sched ? sched : x->submit_ns;
    uint64_t token;
    liaison_rc rc = liaison_submit(r->sender->cli, r->recipient->id, 1, payload, plen, &token);
    if (rc != LIAISON_OK) {
        snprintf(r->err, sizeof r->err, "submit: %s", liaison_client_error(r->sender->cli));
        return -1;
    }
    if (map_token(r, token, i, false) != 0)
        return -1;
    r->sends_pending++;
    atomic_store_explicit(&r->n_sub, i + 1, memory_order_release);
    return 0;
}

static void finish(run_t *r, rec_t *x, uint64_t now, bool delivered)
{
    x->dlv_ns = now;
    atomic_store(&x->st, delivered ? ST_DELIVERED : ST_FAILED);
    atomic_fetch_add(&r->n_done, 1);
}

/* Collects one answer, of a send or of a wait (waiting up to timeout_ms). Returns 1
 * collected, 0 timeout, -1 error. */
static int collect_one(run_t *r, int timeout_ms, uint64_t *failed)
{
    liaison_client_set_timeout(r->sender->cli, timeout_ms);
    uint64_t token = UINT64_MAX; /* unset if the call fails before an answer: caught below */
    char hex[LIAISON_ID_HEX];
    liaison_progress_t pg;
    liaison_rc rc = liaison_collect_wait(r->sender->cli, &token, hex, &pg);
    if (rc == LIAISON_TIMEOUT)
        return 0;
    uint64_t now = now_ns();
    if (token < r->tfirst || token - r->tfirst >= r->tmap_n) {
        snprintf(r->err, sizeof r->err, "collect: %s", liaison_client_error(r->sender->cli));
        return -1;
    }
    uint64_t m = r->tmap[token - r->tfirst];
    size_t i = (size_t)(m >> 1);
    rec_t *x = rec_at(r, i);
    if (m & 1) { /* a wait */
        if (rc != LIAISON_OK) {
            if (*failed == 0)
                note("a wait failed: %s", liaison_client_error(r->sender->cli));
            (*failed)++;
            finish(r, x, now, false);
        } else if (pg.settled) {
            finish(r, x, now, pg.delivered == pg.recipients);
        } else if (submit_wait(r, i, hex) != 0) { /* its time ran out: wait again */
            return -1;
        }
        return 1;
    }
    r->sends_pending--;
    x->ack_ns = now;
    if (rc != LIAISON_OK) {
        if (*failed == 0)
            note("a send failed: %s", liaison_client_error(r->sender->cli));
        (*failed)++;
        finish(r, x, now, false);
        x->dlv_ns = 0;
        return 1;
    }
    unhex(hex, x->id);
    atomic_store(&x->st, ST_STORED);
    if (!r->o->observe_db && submit_wait(r, i, hex) != 0)
        return -1;
    return 1;
}

int load_run(bnode_t *sender, bnode_t *recipient, const load_opts_t *o, load_result_t *res)
{
    memset(res, 0, sizeof *res);
    res->mode = o->rate > 0 ? "fixed" : "saturation";
    res->size = o->size;
    res->offered_s = o->rate;
    res->window = o->rate > 0 ? 0 : o->window;
    run_t *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->o = o;
    r->sender = sender;
    r->recipient = recipient;
    /* Poll often when few messages are in flight (latency), less under saturation (the
     * observer must not steal the daemons' CPU). */
    r->poll_ns = o->poll_us > 0 ? (uint64_t)(o->poll_us * 1000) : o->rate > 0 ? 100000u : 1000000u;
    res->poll_us = (double)r->poll_ns / 1000.0;
    size_t plen;
    uint8_t *payload = make_payload(o->size, &plen);
    pthread_t th;
    if (!payload || (o->observe_db && pthread_create(&th, NULL, observer, r) != 0)) {
        free(payload);
        free(r);
        return -1;
    }
    int rc = 0;
    uint64_t failed = 0;
    /* This phase's own peak RSS (else every phase would show the pair's peak so far). */
    proc_reset_peak(sender->pid);
    proc_reset_peak(recipient->pid);
    /* The driver's sleeps too: with the default timer slack of 50 us every submission
     * would be late by up to that much, and the lateness is counted in latency. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    uint64_t t0 = now_ns() + 2000000u;
    uint64_t w0 = t0 + (uint64_t)(o->warmup * 1e9), w1 = w0 + (uint64_t)(o->seconds * 1e9);
    proc_stat_t ps0 = {0}, ps1 = {0}, pr0 = {0}, pr1 = {0};
    uint64_t bc0 = 0, bc1 = 0, sys0 = 0, sys1 = 0, st0 = 0, st1 = 0;
    bool in_window = false, window_done = false;
    double max_slip = 0;
    sleep_until_ns(t0);
    if (o->rate > 0) {
        double period = 1e9 / o->rate;
        size_t total = (size_t)llround(o->rate * (o->warmup + o->seconds));
        size_t i = 0;
        for (;;) {
            uint64_t now = now_ns();
            if (!in_window && now >= w0) {
                in_window = true;
                proc_read(sender->pid, &ps0);
                proc_read(recipient->pid, &pr0);
                bc0 = cpu_self_ns();
                sys0 = system_busy_ns();
                st0 = system_steal_ns();
            }
            if (in_window && !window_done && now >= w1) {
                window_done = true;
                proc_read(sender->pid, &ps1);
                proc_read(recipient->pid, &pr1);
                bc1 = cpu_self_ns();
                sys1 = system_busy_ns();
                st1 = system_steal_ns();
            }
            if (atomic_load(&r->observer_failed)) {
                rc = -1;
                break;
            }
            uint64_t next = t0 + (uint64_t)((double)i * period);
            /* Keep the bench's own queue of uncollected answers short (the daemon keeps
             * every answer, finding 12): past MAX_PENDING collect before sending. */
            if (r->sends_pending >= MAX_PENDING) {
                if (collect_one(r, 1000, &failed) < 0) {
                    rc = -1;
                    break;
                }
                continue;
            }
            if (i < total && now >= next) {
                double slip = (double)(now - next) / 1000.0;
                if (slip > max_slip)
                    max_slip = slip;
                if (submit_one(r, payload, plen, next) != 0) {
                    rc = -1;
                    break;
                }
                i++;
                continue;
            }
            if (i >= total && window_done)
                break;
            uint64_t until = i < total ? next : w1;
            /* liaison_collect waits in whole milliseconds (and returns as soon as an
             * answer comes, which is within a few hundred microseconds of its send): wait
             * for one when the next submission is at least half of one away. The driver
             * may then be late for it; that lateness is measured (slip) and counted in
             * the latency, which runs from the scheduled time. */
            if (liaison_pending(sender->cli) > 0 && until >= now + 500000u) {
                int ms = (int)((until - now + 500000u) / 1000000u);
                int c = collect_one(r, ms > 0 ? ms : 1, &failed);
                if (c < 0) {
                    rc = -1;
                    break;
                }
            } else if (until > now) {
                sleep_until_ns(until < now + 200000u ? until : now + 200000u);
            }
        }
    } else {
        uint64_t end = w1;
        /* Up to the whole window may wait for its "stored" answer: the window is what is
         * in flight, submitted and not yet delivered, whatever stage each message is at. */
        size_t cap = o->window > MAX_PENDING ? o->window : MAX_PENDING;
        uint64_t last = 0;
        double inflight_ns = 0; /* in flight x time, over the measured window */
        for (;;) {
            uint64_t now = now_ns();
            if (in_window && last) {
                size_t k = atomic_load(&r->n_sub) - atomic_load(&r->n_done);
                inflight_ns += (double)k * (double)((now < end ? now : end) - last);
            }
            last = now;
            if (!in_window && now >= w0) {
                in_window = true;
                proc_read(sender->pid, &ps0);
                proc_read(recipient->pid, &pr0);
                bc0 = cpu_self_ns();
                sys0 = system_busy_ns();
                st0 = system_steal_ns();
            }
            if (now >= end) {
                res->mean_in_flight = inflight_ns / (o->seconds * 1e9);
                proc_read(sender->pid, &ps1);
                proc_read(recipient->pid, &pr1);
                bc1 = cpu_self_ns();
                sys1 = system_busy_ns();
                st1 = system_steal_ns();
                window_done = true;
                break;
            }
            if (atomic_load(&r->observer_failed)) {
                rc = -1;
                break;
            }
            size_t inflight = atomic_load(&r->n_sub) - atomic_load(&r->n_done);
            if (inflight < o->window && r->sends_pending < cap) {
                if (submit_one(r, payload, plen, 0) != 0) {
                    rc = -1;
                    break;
                }
                continue;
            }
            if (liaison_pending(sender->cli) > 0) {
                if (collect_one(r, r->sends_pending >= cap ? 1000 : 1, &failed) < 0) {
                    rc = -1;
                    break;
                }
            } else {
                sleep_ns(200000u);
            }
        }
    }
    /* Drain: every answer collected, every receipt seen (or 120 s). */
    uint64_t deadline = now_ns() + 120ull * 1000000000u;
    while (rc == 0 && liaison_pending(sender->cli) > 0 && now_ns() < deadline)
        if (collect_one(r, 1000, &failed) < 0)
            rc = -1;
    while (rc == 0 && atomic_load(&r->n_done) < atomic_load(&r->n_sub) && now_ns() < deadline &&
           !atomic_load(&r->observer_failed))
        sleep_ns(5000000u);
    atomic_store(&r->stop, true);
    if (o->observe_db)
        pthread_join(th, NULL);
    if (r->err[0])
        note("%s", r->err);
    size_t n = atomic_load(&r->n_sub);
    if (rc == 0 && atomic_load(&r->n_done) < n) {
        note("%zu of %zu messages were not delivered within 120 s of the end", n - atomic_load(&r->n_done), n);
        rc = -1;
    }
    if (o->dump) {
        /* Every message, delivered or not (-1: never), in ms: when it was due and when it
         * was submitted (from the phase's start), then its "stored" answer from the
         * submission and its receipt from the time it was due, as the percentiles count. */
        FILE *f = fopen(o->dump, "we");
        if (f) {
            fprintf(f, "due_ms,submit_ms,stored_ms,receipt_ms,state\n");
            for (size_t i = 0; i < n; i++) {
                rec_t *x = rec_at(r, i);
                int st = atomic_load(&x->st);
                fprintf(f, "%.3f,%.3f,%.3f,%.3f,%s\n", (double)(x->sched_ns - t0) / 1e6,
                        (double)(x->submit_ns - t0) / 1e6, x->ack_ns ? (double)(x->ack_ns - x->submit_ns) / 1e6 : -1.0,
                        st == ST_DELIVERED ? (double)(x->dlv_ns - x->sched_ns) / 1e6 : -1.0,
                        st == ST_DELIVERED ? "delivered" : st == ST_FAILED ? "failed" : "in flight");
            }
            if (fclose(f) != 0)
                note("cannot write %s", o->dump);
        } else {
            note("cannot write %s: %s", o->dump, strerror(errno));
        }
    }
    /* Figures over the measured window. */
    uint64_t *lat = malloc((n ? n : 1) * sizeof *lat), *clat = malloc((n ? n : 1) * sizeof *clat);
    uint64_t *slat = malloc((n ? n : 1) * sizeof *slat), *slip = malloc((n ? n : 1) * sizeof *slip);
    size_t nl = 0, nc = 0, ns = 0;
    uint64_t delivered_in = 0;
    for (size_t i = 0; i < n; i++) {
        rec_t *x = rec_at(r, i);
        int st = atomic_load(&x->st);
        res->sent++;
        if (st == ST_DELIVERED)
            res->delivered++;
        else if (st == ST_FAILED)
            res->failed++;
        if (st == ST_DELIVERED && x->dlv_ns >= w0 && x->dlv_ns < w1)
            delivered_in++;
        if (x->sched_ns >= w0 && x->sched_ns < w1 && lat && clat && slat && slip) {
            if (st == ST_DELIVERED) {
                slat[nl] = x->dlv_ns - x->submit_ns;
                lat[nl++] = x->dlv_ns - x->sched_ns;
            }
            if (x->ack_ns)
                clat[nc++] = x->ack_ns - x->submit_ns;
            slip[ns++] = x->submit_ns - x->sched_ns;
        }
    }
    res->seconds = o->seconds;
    res->delivered_s = (double)delivered_in / o->seconds;
    if (lat)
        res->latency = percentiles(lat, nl);
    if (clat)
        res->commit_latency = percentiles(clat, nc);
    if (o->rate > 0 && slat && slip) {
        res->latency_submitted = percentiles(slat, nl);
        res->slip = percentiles(slip, ns);
    }
    free(lat);
    free(clat);
    free(slat);
    free(slip);
    if (window_done && delivered_in) {
        res->sender_cpu_us = (double)(ps1.cpu_ns - ps0.cpu_ns) / 1000.0 / (double)delivered_in;
        res->recipient_cpu_us = (double)(pr1.cpu_ns - pr0.cpu_ns) / 1000.0 / (double)delivered_in;
        res->bench_cpu_us = (double)(bc1 - bc0) / 1000.0 / (double)delivered_in;
    }
    /* A refused send or a rejected delivery: the figures are of fewer messages than the
     * phase names, so it is reported and not scored. */
    if (rc == 0 && (failed || res->failed)) {
        note("%llu of %zu messages were refused or rejected: the phase is reported, not scored",
             (unsigned long long)(res->failed > failed ? res->failed : failed), n);
        rc = -1;
    }
    proc_stat_t pk;
    if (proc_read(sender->pid, &pk) == 0)
        res->sender_peak_rss_mb = (double)pk.hwm_kb / 1024.0;
    if (proc_read(recipient->pid, &pk) == 0)
        res->recipient_peak_rss_mb = (double)pk.hwm_kb / 1024.0;
    if (r->observer_rounds)
        res->poll_mean_interval_us = (double)r->observer_ns / 1000.0 / (double)r->observer_rounds;
    res->max_slip_us = max_slip;
    res->observer_cpu_ms = (double)r->observer_cpu_ns / 1e6;
    res->polls = r->polls;
    res->observe_db = o->observe_db;
    res->waits = r->waits;
    if (window_done && sys1 > sys0) {
        double ours = (double)(ps1.cpu_ns - ps0.cpu_ns) + (double)(pr1.cpu_ns - pr0.cpu_ns) + (double)(bc1 - bc0);
        double other = (double)(sys1 - sys0) - ours;
        res->other_cores = other > 0 ? other / (o->seconds * 1e9) : 0;
        res->steal_cores = st1 > st0 ? (double)(st1 - st0) / (o->seconds * 1e9) : 0;
    }
    for (size_t c = 0; c < MAX_CHUNKS; c++)
        free(r->chunk[c]);
    free(r->tmap);
    free(r);
    free(payload);
    return rc;
}


json_t *load_json(const load_result_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "mode", json_string(r->mode));
    json_object_set_new(o, "size", json_integer((json_int_t)r->size));
    if (r->offered_s > 0)
        json_object_set_new(o, "offered_msgs_per_s", num1(r->offered_s));
    else
        json_object_set_new(o, "window", json_integer(r->window));
    json_object_set_new(o, "measured_s", num1(r->seconds));
    json_object_set_new(o, "sent", json_integer((json_int_t)r->sent));
    json_object_set_new(o, "delivered", json_integer((json_int_t)r->delivered));
    json_object_set_new(o, "failed", json_integer((json_int_t)r->failed));
    json_object_set_new(o, "delivered_msgs_per_s", num1(r->delivered_s));
    json_object_set_new(o, "latency_send_to_receipt", pct_json(&r->latency));
    json_object_set_new(o, "latency_send_to_stored", pct_json(&r->commit_latency));
    json_object_set_new(o, "sender_cpu_us_per_msg", num1(r->sender_cpu_us));
    json_object_set_new(o, "recipient_cpu_us_per_msg", num1(r->recipient_cpu_us));
    json_object_set_new(o, "bench_cpu_us_per_msg", num1(r->bench_cpu_us));
    json_object_set_new(o, "sender_peak_rss_mb", num1(r->sender_peak_rss_mb));
    json_object_set_new(o, "recipient_peak_rss_mb", num1(r->recipient_peak_rss_mb));
    if (r->offered_s <= 0)
        json_object_set_new(o, "mean_in_flight", num1(r->mean_in_flight));
    json_object_set_new(o, "receipts_observed_by", json_string(r->observe_db ? "db-poll" : "wait"));
    if (r->observe_db) {
        json_object_set_new(o, "db_poll_interval_us", num1(r->poll_us));
        json_object_set_new(o, "db_poll_mean_interval_us", num1(r->poll_mean_interval_us));
        json_object_set_new(o, "db_polls", json_integer((json_int_t)r->polls));
        json_object_set_new(o, "observer_cpu_ms_total", num1(r->observer_cpu_ms));
    } else {
        json_object_set_new(o, "waits", json_integer((json_int_t)r->waits));
    }
    json_object_set_new(o, "other_processes_cpu_cores", json_real(round(r->other_cores * 100.0) / 100.0));
    json_object_set_new(o, "hypervisor_steal_cpu_cores", json_real(round(r->steal_cores * 100.0) / 100.0));
    if (r->offered_s > 0) {
        json_object_set_new(o, "latency_counted_from", json_string("scheduled send time"));
        json_object_set_new(o, "latency_from_actual_submission", pct_json(&r->latency_submitted));
        json_object_set_new(o, "schedule_slip", pct_json(&r->slip));
        json_object_set_new(o, "max_schedule_slip_us", num1(r->max_slip_us));
    } else {
        json_object_set_new(o, "latency_counted_from", json_string("submission"));
    }
    return o;
}
