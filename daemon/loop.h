/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's event loop on zmq_poll: ZeroMQ sockets and plain fds with a context
 * pointer, a few periodic timers, a wake-up deadline, and a before-sleep hook
 * (where the daemon commits its batch and answers). Shaped after redis ae.h. */
#ifndef LIAISON_LOOP_H
#define LIAISON_LOOP_H

#include <stdint.h>

typedef struct loop loop_t;

/* Called when sock (a ZeroMQ socket) or fd (when sock is NULL) is readable. */
typedef void (*loop_io_fn)(loop_t *l, void *sock, int fd, void *ctx);
typedef void (*loop_fn)(loop_t *l, void *ctx);

loop_t *loop_new(void);
/* NULL-safe; sets *l to NULL. Does not close the sockets. */
void loop_destroy(loop_t **l);

/* Watches a ZeroMQ socket (sock != NULL) or a file descriptor for input.
 * Returns 0 or -1 (out of memory). */
int loop_add(loop_t *l, void *sock, int fd, loop_io_fn fn, void *ctx);
/* Stops watching sock (or fd when sock is NULL); safe from inside a callback. */
void loop_remove(loop_t *l, void *sock, int fd);

/* A periodic timer; the loop has a handful (watchdog, checkpoints), so they are a
 * small array scanned per iteration. Returns 0 or -1. */
int loop_add_timer(loop_t *l, uint32_t period_ms, loop_fn fn, void *ctx);

/* Asks to wake no later than at_ms (CLOCK_MONOTONIC ms); cleared each iteration,
 * so the before-sleep hook sets it again when it still needs it. */
void loop_wake_at(loop_t *l, uint64_t at_ms);

/* Called once per iteration before the loop blocks. */
void loop_set_before_sleep(loop_t *l, loop_fn fn, void *ctx);

/* Runs until loop_stop. Returns 0, or -1 if zmq_poll fails for a reason other than EINTR. */
int loop_run(loop_t *l);
void loop_stop(loop_t *l);

/* CLOCK_MONOTONIC in ms. */
uint64_t loop_mono_ms(void);

#endif
