/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the backfill thread: its connection, its wake-ups from the writer's WAL hook,
 * and its counters. */
#include "backfill.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct backfill {
    sqlite3 *writer;        /* the loop's connection (its WAL hook is ours) */
    sqlite3 *db;            /* the thread's own connection */
    int frames, hard_frames;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool wanted, stop;
    int copied_in_wal;      /* frames of the current WAL already backfilled (under mu) */
    int last_frames;        /* the WAL's size at the previous commit (writer's thread) */
    uint64_t generation;    /* WALs begun since the start (under mu): a backfill that
                             * ran across a restart must not report the old WAL's count */
    int wal_fd;             /* the WAL file, read for its salt (writer's thread; -1: not open) */
    char wal_path[4200];
    uint8_t salt[8];        /* salt-1 and salt-2 of the WAL header: new at every restart */
    bool salt_known;
    backfill_stats_t stats; /* under mu */
};

/* Whether the WAL started over since the previous commit. SQLite writes a new salt into
 * the WAL header (bytes 16 to 23) each time it starts the WAL from its beginning; the
 * WAL's size alone misses a restart whose first transaction is at least as large as the
 * WAL was. Writer's thread. */
static bool wal_restarted(backfill_t *b, int frames)
{
    if (b->wal_fd < 0)
        b->wal_fd = open(b->wal_path, O_RDONLY | O_CLOEXEC);
    uint8_t salt[8];
    if (b->wal_fd >= 0 && pread(b->wal_fd, salt, sizeof salt, 16) == (ssize_t)sizeof salt) {
        bool changed = b->salt_known && memcmp(salt, b->salt, sizeof salt) != 0;
        memcpy(b->salt, salt, sizeof salt);
        b->salt_known = true;
        return changed;
    }
    return frames < b->last_frames; /* the header cannot be read: the size, as a fallback */
}

/* Once the WAL has reached `frames`, the writer copies the last few frames itself
 * (at most this many, or a quarter of `frames`): SQLite starts the WAL over from its
 * beginning only when a write transaction begins with every frame backfilled, which a
 * thread racing the writer rarely achieves on its own. */
#define FINISH_FRAMES 64

static void backfill_inline(backfill_t *b, sqlite3 *db, const char *name)
{
    int in_wal = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &in_wal, &copied);
    pthread_mutex_lock(&b->mu);
    b->stats.inline_runs++;
    if (rc == SQLITE_OK)
        b->copied_in_wal = copied; /* the writer's own thread: no restart in between */
    else if (rc != SQLITE_BUSY) {
        b->stats.failed++;
        b->stats.last_rc = rc;
    }
    pthread_mutex_unlock(&b->mu);
}

/* Runs on the writer's thread after every commit, with the WAL's size in frames. */
static int on_wal(void *ctx, sqlite3 *db, const char *name, int frames)
{
    backfill_t *b = ctx;
    bool restarted = wal_restarted(b, frames);
    pthread_mutex_lock(&b->mu);
    if (restarted) {
        b->copied_in_wal = 0;
        b->generation++;
    }
    b->last_frames = frames;
    int pending = frames > b->copied_in_wal ? frames - b->copied_in_wal : 0;
    int finish = b->frames / 4 < FINISH_FRAMES ? b->frames / 4 : FINISH_FRAMES;
    bool big = frames >= b->frames;
    bool inline_now = frames >= b->hard_frames || (big && pending > 0 && pending <= finish);
    /* Woken by frames not yet backfilled, not by the WAL's size alone: a WAL already
     * backfilled but not yet started over must not keep the thread busy. */
    if (!inline_now && (pending >= b->frames || (big && pending > finish)) && !b->wanted) {
        b->wanted = true;
        pthread_cond_signal(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    if (inline_now)
        backfill_inline(b, db, name);
    return SQLITE_OK;
}

static void *run(void *arg)
{
    backfill_t *b = arg;
    /* Named for top -H, ps -L and /proc/PID/task/TID/comm (at most 15 characters). */
    pthread_setname_np(pthread_self(), "liaisond-bf");
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->wanted && !b->stop)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->stop)
            break;
        b->wanted = false;
        int before = b->copied_in_wal;
        uint64_t generation = b->generation;
        pthread_mutex_unlock(&b->mu);
        int in_wal = 0, copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(b->db, "main", SQLITE_CHECKPOINT_PASSIVE, &in_wal, &copied);
        pthread_mutex_lock(&b->mu);
        b->stats.runs++;
        if (rc == SQLITE_OK) {
            /* copied counts every backfilled frame of this WAL, earlier runs' included. */
            if (copied > before)
                b->stats.frames += (uint64_t)(copied - before);
            /* If the writer started a new WAL meanwhile, this count is the old one's. */
            if (b->generation == generation)
                b->copied_in_wal = copied;
        } else if (rc != SQLITE_BUSY) {
            b->stats.failed++;
            b->stats.last_rc = rc;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int backfill_start(backfill_t **out, sqlite3 *db, const char *path, int frames, int hard_frames, char *err,
                   size_t errlen)
{
    *out = NULL;
    if (frames < 1 || hard_frames < frames) {
        snprintf(err, errlen, "backfill: thresholds %d and %d: need 1 <= frames <= hard_frames", frames, hard_frames);
        return -1;
    }
    backfill_t *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    b->writer = db;
    b->frames = frames;
    b->hard_frames = hard_frames;
    b->wal_fd = -1;
    if ((size_t)snprintf(b->wal_path, sizeof b->wal_path, "%s-wal", path) >= sizeof b->wal_path) {
        snprintf(err, errlen, "backfill: the path %.64s... is too long", path);
        free(b);
        return -1;
    }
    if (sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        sqlite3_exec(b->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s for backfill: %s", path, b->db ? sqlite3_errmsg(b->db) : "out of memory");
        sqlite3_close(b->db);
        free(b);
        return -1;
    }
    sqlite3_db_config(b->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    /* Its own backfills are the only thing this connection does: no hook of its own. */
    sqlite3_wal_autocheckpoint(b->db, 0);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    /* The thread takes no signals: they are the loop's (signalfd). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&b->thread, NULL, run, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the backfill thread");
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        sqlite3_close(b->db);
        free(b);
        return -1;
    }
    sqlite3_wal_hook(db, on_wal, b); /* replaces SQLite's automatic backfill */
    *out = b;
    return 0;
}

void backfill_stats(backfill_t *b, backfill_stats_t *out)
{
    pthread_mutex_lock(&b->mu);
    *out = b->stats;
    pthread_mutex_unlock(&b->mu);
}

void backfill_stop(backfill_t **bp)
{
    backfill_t *b = bp ? *bp : NULL;
    if (!b)
        return;
    sqlite3_wal_autocheckpoint(b->writer, 1000); /* SQLite's default, and its hook */
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    if (b->wal_fd >= 0)
        close(b->wal_fd);
    sqlite3_close(b->db);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
    *bp = NULL;
}
