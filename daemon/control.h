/* SPDX-License-Identifier: Apache-2.0 */
/* The local control API: the IPC ROUTER socket the CLI and client library talk to,
 * request decoding and limits, the local user behind each request, and each operation. */
#ifndef LIAISON_CONTROL_H
#define LIAISON_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node.h"

/* Binds the control socket (mode 0660) in the runtime directory. Returns 0 or -1 with err. */
int control_start(node_t *n, char *err, size_t errlen);
void control_stop(node_t *n);

/* Once a second: a socket file deleted under the running daemon (a cleanup script, a
 * mistaken rm) leaves it unreachable to new clients, which would be told that liaisond
 * is not running while a second one refuses to start. Binds a new socket at the path
 * of any that is gone (after committing the batch, whose answers go out on the old
 * one), and logs it. */
void control_tick(node_t *n);

/* Opens stored message id: *m its row, *pt (len *pt_len) its payload in the clear, to
 * be wiped and freed by the caller. Our own messages open with our key; a received one
 * with its sender's current keys, or those of a card the sender had before. Returns 0,
 * 1 no such message, -1 no key this node has opens it, -2 it could not be tried (a
 * database error, store_error says which; or out of memory). Audits nothing. */
int control_open_stored(node_t *n, const uint8_t *id, store_msg_t *m, uint8_t **pt, size_t *pt_len);

/* Waits (WaitRequest, waits.h): after each batch, answers those whose message settled
 * in it, if it committed (node_commit calls it); on its deadline, answers a wait with
 * the state of the day (main.c calls it before each sleep, with loop_mono_ms()). */
void control_waits_after_commit(node_t *n, bool committed);
void control_waits_expire(node_t *n, uint64_t now_mono_ms);

/* A wait whose answer was withdrawn with a batch rolled back (node_commit): answers it
 * from the state now if it settled or its time is up, else keeps it waiting, or refuses
 * it (audited) if the waits in progress are at their limit. */
struct wait;
void control_wait_again(node_t *n, const struct wait *w);

#endif
