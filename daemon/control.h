/* SPDX-License-Identifier: Apache-2.0 */
/* The local control API: the IPC ROUTER socket the CLI and client library talk to,
 * request decoding and limits, the local user behind each request, and each operation. */
#ifndef LIAISON_CONTROL_H
#define LIAISON_CONTROL_H

#include <stddef.h>

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

#endif
