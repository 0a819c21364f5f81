/* SPDX-License-Identifier: Apache-2.0 */
/* Copying committed WAL frames back into the database file off the event loop.
 *
 * SQLite calls this a "WAL checkpoint"; it is called backfill here so that nobody
 * confuses it with the audit log's signed checkpoints (witness.c). Left to itself,
 * SQLite backfills inside whichever commit pushes the WAL past 1,000 pages: two more
 * fsyncs and a few hundred page writes on the loop thread, the largest latency spikes
 * of a loaded daemon. Instead, a thread with its own connection to the same file does
 * it (PASSIVE: it never blocks the writer, the writer never waits for it); the loop's
 * connection only wakes it from its WAL hook. SQLite starts the WAL over from its
 * beginning only when a write transaction begins with every frame backfilled, which a
 * thread racing the writer rarely sees, so once the thread has done the bulk the
 * writer copies the last few frames itself (at most 64: a fraction of a millisecond).
 * Should the WAL still reach hard_frames (the thread cannot keep up, or keeps failing),
 * the commit that sees it backfills inline, as SQLite would have. A reader that holds
 * an old snapshot stops any backfill, inline or not, at its frames, so a long reader
 * still makes the WAL grow until it ends. The WAL's restarts are seen by the new salt
 * SQLite writes into its header, and a count of backfilled frames that a restart made
 * stale is discarded. Durability is SQLite's own: the backfilling
 * connection also runs with synchronous=FULL. */
#ifndef LIAISON_BACKFILL_H
#define LIAISON_BACKFILL_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

typedef struct backfill backfill_t;

typedef struct backfill_stats {
    uint64_t runs;          /* backfills the thread ran */
    uint64_t frames;        /* WAL frames it copied into the database file */
    uint64_t failed;        /* runs that returned an error (not SQLITE_BUSY) */
    uint64_t inline_runs;   /* backfills done by the writer at hard_frames */
    int last_rc;            /* SQLite result code of the last failed run */
} backfill_stats_t;

/* Installs the WAL hook on db (the writer's connection, in WAL mode) and starts the
 * thread on its own connection to path. The thread is woken once the WAL holds
 * `frames` frames; at hard_frames (>= frames) the writer backfills itself instead.
 * Returns 0, or -1 with err set (nothing is changed then). */
int backfill_start(backfill_t **out, sqlite3 *db, const char *path, int frames, int hard_frames, char *err,
                   size_t errlen);

/* Copies the counters (any thread). */
void backfill_stats(backfill_t *b, backfill_stats_t *out);

/* Stops and joins the thread, closes its connection and gives the writer back
 * SQLite's own automatic backfill. Call before closing db. NULL-safe. */
void backfill_stop(backfill_t **bp);

#endif
