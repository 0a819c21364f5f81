/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the in-memory peer directory and the lifetime of cached pairwise keys. */
#include "directory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "text.h"

void directory_init(directory_t *d) { memset(d, 0, sizeof *d); }

static void peer_free(peer_t *p)
{
    if (!p)
        return;
    sodium_free(p->pair_key);
    free(p->card_text);
    sodium_memzero(p, sizeof *p);
    free(p);
}

void directory_clear(directory_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        peer_free(d->peers[i]);
    free(d->peers);
    memset(d, 0, sizeof *d);
}

int directory_check_card(const keys_t *me, const card_t *c, const char **what, char *err, size_t errlen)
{
    uint8_t pair[LIAISON_KEY_BYTES];
    int rc = keys_pair_key(me, c->enc_pk, pair);
    sodium_memzero(pair, sizeof pair);
    if (rc != 0) {
        *what = "unusable encryption key (low-order point)";
        snprintf(err, errlen,
                 "peer '%s' has an unusable encryption key (a low-order X25519 point): this card cannot be used "
                 "(ask them for a fresh card)",
                 c->id);
        return -1;
    }
    /* CurveZMQ boxes to and from the transport key: with a low-order point every shared
     * secret is zero, libsodium refuses it and no handshake with that peer ever completes.
     * Say so now rather than leave a peer that is "unreachable" forever. */
    uint8_t q[crypto_scalarmult_BYTES];
    rc = crypto_scalarmult(q, me->transport_sk, c->transport_pk);
    sodium_memzero(q, sizeof q);
    if (rc != 0) {
        *what = "unusable transport key (low-order point)";
        snprintf(err, errlen,
                 "peer '%s' has an unusable transport key (a low-order Curve25519 point): no connection with it "
                 "could ever be made (ask them for a fresh card)",
                 c->id);
        return -1;
    }
    return 0;
}

peer_t *directory_add(directory_t *d, const keys_t *me, const card_t *c, const char *card_text, uint64_t added_ms,
                      char *err, size_t errlen)
{
    peer_t *p = calloc(1, sizeof *p);
    if (!p || !(p->card_text = strdup(card_text)) || !(p->pair_key = sodium_malloc(LIAISON_KEY_BYTES))) {
        snprintf(err, errlen, "out of memory");
        goto bad;
    }
    if (keys_pair_key(me, c->enc_pk, p->pair_key) != 0) {
        snprintf(err, errlen, "peer '%s' has an unusable encryption key (a low-order X25519 point)", c->id);
        goto bad;
    }
    p->card = *c;
    p->added_ms = added_ms;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        peer_t **np = realloc(d->peers, cap * sizeof *np);
        if (!np) {
            snprintf(err, errlen, "out of memory");
            goto bad;
        }
        d->peers = np;
        d->cap = cap;
    }
    d->peers[d->n++] = p;
    return p;
bad:
    peer_free(p);
    return NULL;
}

bool directory_card_unchanged(const peer_t *p, const card_t *c)
{
    const card_t *h = &p->card;
    return card_same_keys(h, c) && strcmp(h->id, c->id) == 0 && strcmp(h->name, c->name) == 0 &&
           strcmp(h->role, c->role) == 0 && strcmp(h->org, c->org) == 0 && strcmp(h->endpoint, c->endpoint) == 0;
}

void directory_remove(directory_t *d, peer_t *p)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->peers[i] == p) {
            d->peers[i] = d->peers[--d->n];
            peer_free(p);
            return;
        }
    }
}

peer_t *directory_find(const directory_t *d, const char *id)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->peers[i]->card.id, id) == 0)
            return d->peers[i];
    return NULL;
}

const peer_t *directory_nearest(const directory_t *d, const char *id)
{
    const peer_t *found = NULL;
    size_t len = strlen(id);
    for (size_t i = 0; i < d->n; i++) {
        size_t dist = text_edit_distance(id, d->peers[i]->card.id, 2);
        if (dist == 0 || dist > 2 || 2 * dist >= len)
            continue;
        if (found)
            return NULL;
        found = d->peers[i];
    }
    return found;
}

peer_t *directory_find_transport(const directory_t *d, const uint8_t key[static LIAISON_KEY_BYTES])
{
    peer_t *found = NULL;
    for (size_t i = 0; i < d->n; i++)
        if (sodium_memcmp(d->peers[i]->card.transport_pk, key, LIAISON_KEY_BYTES) == 0)
            found = d->peers[i];
    return found;
}
