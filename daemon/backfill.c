/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the backfill thread: its connection, its wake-ups from the writer's WAL hook,
 * and its counters. */
#include "backfill.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct backfill {
    sqlite3 *writer;        /* the loop's connection (its WAL hook is ours) */
    sqlite3 *db;            /* the thread's own connection */
    int frames, hard_frames;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool wanted, stop;
    backfill_stats_t stats; /* under mu */
};

/* Runs on the writer's thread after every commit, with the WAL's size in frames. */
static int on_wal(void *ctx, sqlite3 *db, const char *name, int frames)
{
    backfill_t *b = ctx;
    if (frames >= b->hard_frames) {
        int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&b->mu);
        b->stats.inline_runs++;
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
            b->stats.failed++;
            b->stats.last_rc = rc;
        }
        pthread_mutex_unlock(&b->mu);
        return SQLITE_OK;
    }
    if (frames >= b->frames) {
        pthread_mutex_lock(&b->mu);
        if (!b->wanted) {
            b->wanted = true;
            pthread_cond_signal(&b->cv);
        }
        pthread_mutex_unlock(&b->mu);
    }
    return SQLITE_OK;
}

static void *run(void *arg)
{
    backfill_t *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->wanted && !b->stop)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->stop)
            break;
        b->wanted = false;
        pthread_mutex_unlock(&b->mu);
        int in_wal = 0, copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(b->db, "main", SQLITE_CHECKPOINT_PASSIVE, &in_wal, &copied);
        pthread_mutex_lock(&b->mu);
        b->stats.runs++;
        if (rc == SQLITE_OK && copied > 0)
            b->stats.frames += (uint64_t)copied;
        else if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
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
    sqlite3_close(b->db);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
    *bp = NULL;
}
