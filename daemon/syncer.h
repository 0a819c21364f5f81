/* SPDX-License-Identifier: Apache-2.0 */
/* Making commits durable off the event loop.
 *
 * The daemon's connection commits with synchronous=NORMAL: COMMIT writes the
 * transaction's frames to the WAL and returns without waiting for the disk. This
 * thread then runs fdatasync on the WAL file and reports the highest commit sequence
 * number (store_commits) that is now on disk; the daemon lets nothing that depends on a
 * commit leave the process (a control answer, a receipt, an envelope, a checkpoint
 * offer) before that commit is durable (node.h). Durability of everything anyone is
 * told is therefore exactly that of synchronous=FULL, but the loop goes on sealing,
 * verifying and storing while the disk works, and one fdatasync covers every commit
 * made before it started (group commit across transactions).
 *
 * Why one fdatasync of the WAL is enough: in WAL mode every commit is frames appended
 * to the WAL, and recovery keeps the longest prefix of frames whose checksums chain, up
 * to its last commit frame, so what is on disk after a crash is always a prefix of the
 * commits; frames that backfills copy into the database file are synced by SQLite
 * itself (the WAL before, the database after), and so is a new WAL header. An
 * fdatasync that fails is fatal to the daemon (the pages' state is unknown afterwards,
 * and retrying it can report success for data that never reached the disk). */
#ifndef LIAISON_SYNCER_H
#define LIAISON_SYNCER_H

#include <stddef.h>
#include <stdint.h>

typedef struct syncer syncer_t;

typedef struct syncer_stats {
    uint64_t syncs;         /* fdatasync calls */
    uint64_t waits;         /* syncer_wait calls that had to wait */
} syncer_stats_t;

/* Starts the thread for the WAL at wal_path (the database's path and "-wal"; the file
 * must exist, as it does once the database is open in WAL mode). Start it with the
 * daemon's signals blocked. Returns 0, or -1 with err set. */
int syncer_start(syncer_t **out, const char *wal_path, char *err, size_t errlen);

/* Readable (an eventfd) when the durable sequence number advanced or a sync failed. */
int syncer_fd(const syncer_t *s);

/* Asks that every commit up to seq be made durable. Cheap; never blocks on the disk. */
void syncer_request(syncer_t *s, uint64_t seq);

/* Empties syncer_fd and stores the durable sequence number in *durable. Returns 0, or
 * the errno of a failed sync (then nothing more becomes durable: stop the daemon). */
int syncer_poll(syncer_t *s, uint64_t *durable);

/* Makes commits up to seq durable and waits for it (start-up, shutdown, and the rare
 * control operations that change the running daemon only once durable). Returns 0 or
 * the errno of a failed sync. */
int syncer_wait(syncer_t *s, uint64_t seq);

void syncer_stats(syncer_t *s, syncer_stats_t *out);

/* Finishes what was requested, stops and joins the thread. NULL-safe; sets *sp to NULL. */
void syncer_stop(syncer_t **sp);

#endif
