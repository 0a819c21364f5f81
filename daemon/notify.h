/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the service manager's notification protocol (systemd's $NOTIFY_SOCKET): one
 * datagram per state change (READY=1, STATUS=..., WATCHDOG=1, STOPPING=1, ...), and
 * the watchdog's interval from $WATCHDOG_USEC and $WATCHDOG_PID.
 *
 * systemd declares this protocol stable and independently implementable (sd_notify(3),
 * "Standalone Implementations"); liaisond speaks it itself rather than link libsystemd,
 * which would map it and the compression and crypto libraries it pulls in (liblzma,
 * libzstd, liblz4, libgcrypt) into every daemon: about 1 MB of each daemon's resident
 * memory (docs/PERFORMANCE.md, finding 22) and code the daemon never runs. */
#ifndef LIAISON_NOTIFY_H
#define LIAISON_NOTIFY_H

#include <stdint.h>

/* Sends `state` (one or more NAME=VALUE lines) to the socket named by $NOTIFY_SOCKET: an
 * absolute path, or "@name" for an abstract socket. Never blocks: a manager whose queue
 * is full loses the datagram and the call fails with EAGAIN.
 * Returns 1 sent, 0 not run by a service manager ($NOTIFY_SOCKET unset or empty), -1
 * with errno set: EAFNOSUPPORT an address of another form, ENAMETOOLONG one longer than
 * a socket address holds, EINVAL an empty state, or the error of socket(2)/sendto(2). */
int notify_send(const char *state);

/* Whether the service manager expects keep-alives (WATCHDOG=1), as sd_watchdog_enabled(3)
 * reads it: $WATCHDOG_USEC a positive number of microseconds and $WATCHDOG_PID, when set,
 * this process's id. Returns 1 with *usec set, 0 not expected (unset, or meant for
 * another process), -1 with errno EINVAL a value that is not a number. */
int notify_watchdog(uint64_t *usec);

#endif
