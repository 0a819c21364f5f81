/* SPDX-License-Identifier: Apache-2.0 */
/* The in-memory peer directory: each active peer's card, the cached pairwise wrap
 * key (sodium_malloc'd, wiped on removal) and its transport state. */
#ifndef LIAISON_DIRECTORY_H
#define LIAISON_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "card.h"
#include "keys.h"

typedef struct peer {
    card_t card;
    char *card_text;           /* malloc'd */
    uint64_t added_ms;
    uint8_t *pair_key;         /* sodium_malloc'd LIAISON_KEY_BYTES */
    /* transport state, owned by transport.c */
    void *dealer;              /* outbound CURVE client socket */
    void *monitor;             /* PAIR socket receiving the dealer's monitor events */
    bool connected;            /* handshake with the peer succeeded and not disconnected since */
    char transport_error[160]; /* last problem in plain language, empty if none */
    uint64_t reopen_ms;        /* refused handshake: reopen the dealer at this time (0 = no) */
    uint32_t refusals;         /* consecutive refused handshakes, for the reopen backoff */
    uint64_t witness_held;     /* size of our checkpoint the peer said it holds (witness.c) */
    uint64_t witness_sent;     /* size of the checkpoint last sent to it */
    uint64_t witness_from;     /* old_size (proof start) of the checkpoint last sent to it */
    uint32_t witness_pending;  /* offers sent to it not yet answered, at most WITNESS_PENDING_MAX */
    /* as its witness: offers of a larger checkpoint without the proof asked for, since
     * the last checkpoint of it stored here, and when the first of them came */
    uint32_t witness_unproven;
    uint64_t witness_unproven_ms;
} peer_t;

typedef struct directory {
    peer_t **peers;
    size_t n, cap;
} directory_t;

void directory_init(directory_t *d);
/* Frees every peer (wiping pair keys). Transport sockets must be closed first. */
void directory_clear(directory_t *d);

/* Checks, without changing anything, what a new card must not have: an encryption key
 * with no usable pair key, or a transport key no CurveZMQ handshake can use (either a
 * low-order point; directory_add refuses the first). Call it before storing or auditing
 * a card as accepted. Returns 0, or -1 with err set and *what a short reason for the
 * audit log (static). */
__attribute__((warn_unused_result))
int directory_check_card(const keys_t *me, const card_t *c, const char **what, char *err, size_t errlen);

/* Adds a peer built from a verified card; computes and caches the pair key.
 * Returns the new peer, or NULL with err set (low-order key, out of memory). */
peer_t *directory_add(directory_t *d, const keys_t *me, const card_t *c, const char *card_text, uint64_t added_ms,
                      char *err, size_t errlen);
/* True if card c changes nothing about peer p: the same three keys (card_same_keys) and
 * the same id, name, role, org and endpoint. created_ms, informational (PROTOCOL.md
 * section 3), is not compared: a card that differs only there is not worth storing,
 * auditing and reconnecting for. */
bool directory_card_unchanged(const peer_t *p, const card_t *c);
/* Removes and frees the peer (wiping its pair key). */
void directory_remove(directory_t *d, peer_t *p);

peer_t *directory_find(const directory_t *d, const char *id);
/* The one peer whose id is within 2 edits (text_edit_distance) of id, an id that is not
 * in the directory, and fewer than half of id's length (no "b" for "c"): the peer a
 * typo most likely meant. NULL if none is that close, or if two or more are (a
 * suggestion must not pick between them). */
const peer_t *directory_nearest(const directory_t *d, const char *id);
/* Finds the peer whose transport key equals key (constant-time compare per entry). */
peer_t *directory_find_transport(const directory_t *d, const uint8_t key[static LIAISON_KEY_BYTES]);

#endif
