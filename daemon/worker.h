/* SPDX-License-Identifier: Apache-2.0 */
/* A background thread that does slow work for the event loop. The loop hands it jobs;
 * it runs them one at a time, in order, and hands each back to the loop, which then
 * finishes it (stores, answers) on its own thread. Jobs travel as pointers over a pair
 * of inproc ZeroMQ sockets: a job belongs to one thread at a time, and nothing else is
 * shared between the two threads but what the caller shares itself. The receipt
 * verifier (verifier.h) and the auditor's `audit verify` (auditor.h) each run one. */
#ifndef LIAISON_WORKER_H
#define LIAISON_WORKER_H

#include <stddef.h>

#include "loop.h"

typedef struct worker worker_t;

/* Runs one job, on the worker thread. run_ctx is given to every call and to no other
 * thread: the worker's own state (a cache, a flag it reads). */
typedef void (*worker_run_fn)(void *run_ctx, void *job);

/* Finishes one job, on the loop thread; the job is freed with free() afterwards. */
typedef void (*worker_done_fn)(void *done_ctx, void *job);

/* Starts the thread, named `name` for top -H and ps -L (at most 15 characters), and
 * watches its answers on l. Errors are worded with `what` ("receipt verifier: ...").
 * Returns 0, or -1 with err set. */
int worker_start(worker_t **out, void *zctx, loop_t *l, const char *name, const char *what, worker_run_fn run,
                 void *run_ctx, worker_done_fn done, void *done_ctx, char *err, size_t errlen);

/* Hands a job (one malloc'd block) to the worker: 0, and the worker owns it until done
 * is called; -1 if it could not be queued (the caller still owns it). */
int worker_submit(worker_t *w, void *job);

/* Jobs handed over and not yet finished (0 for NULL). Loop thread only. */
size_t worker_pending(const worker_t *w);

/* Stops the thread once it has run the jobs already handed over; their answers are
 * freed without done being called. A caller that wants that to be quick makes its jobs
 * stop early first. NULL-safe; sets *w to NULL. */
void worker_stop(worker_t **w);

#endif
