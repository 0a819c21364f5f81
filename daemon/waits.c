/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the waits in progress and the messages touched by the open batch (waits.h). */
#include "waits.h"

#include <stdlib.h>
#include <string.h>

struct waits {
    wait_t *v;
    size_t n, cap;
    uint8_t (*touched)[LIAISON_MSGID_BYTES];
    size_t n_touched, cap_touched;
    bool overflow;               /* more touched than WAITS_TOUCH_MAX: look at every wait */
    uint64_t next_deadline;      /* valid unless deadline_stale */
    bool deadline_stale;
};

waits_t *waits_new(void)
{
    waits_t *w = calloc(1, sizeof *w);
    if (w)
        w->next_deadline = UINT64_MAX;
    return w;
}

void waits_free(waits_t *w)
{
    if (!w)
        return;
    free(w->v);
    free(w->touched);
    free(w);
}

size_t waits_count(const waits_t *w) { return w ? w->n : 0; }

int waits_add(waits_t *w, const wait_t *x)
{
    if (x->rid_len > sizeof x->rid)
        return -1;
    if (w->n >= WAITS_MAX)
        return WAITS_FULL;
    if (w->n >= WAITS_PER_UID_MAX) { /* below that, nobody can hold that many: no count */
        size_t mine = 0;
        for (size_t i = 0; i < w->n; i++)
            mine += w->v[i].uid == x->uid;
        if (mine >= WAITS_PER_UID_MAX)
            return WAITS_USER_FULL;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        wait_t *nv = realloc(w->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        w->v = nv;
        w->cap = cap;
    }
    w->v[w->n++] = *x;
    if (!w->deadline_stale && x->deadline_ms < w->next_deadline)
        w->next_deadline = x->deadline_ms;
    return 0;
}

void waits_touch(waits_t *w, const uint8_t id[static LIAISON_MSGID_BYTES])
{
    if (!w || w->n == 0 || w->overflow)
        return;
    if (w->n_touched == WAITS_TOUCH_MAX) {
        w->overflow = true;
        return;
    }
    if (w->n_touched == w->cap_touched) {
        size_t cap = w->cap_touched ? w->cap_touched * 2 : 64;
        void *nt = realloc(w->touched, cap * sizeof *w->touched);
        if (!nt) {
            w->overflow = true; /* still correct: every wait is looked at */
            return;
        }
        w->touched = nt;
        w->cap_touched = cap;
    }
    memcpy(w->touched[w->n_touched++], id, LIAISON_MSGID_BYTES);
}

static int cmp_id(const void *a, const void *b) { return memcmp(a, b, LIAISON_MSGID_BYTES); }

/* Removes v[i] (the last one takes its place). */
static void remove_at(waits_t *w, size_t i)
{
    if (w->v[i].deadline_ms == w->next_deadline)
        w->deadline_stale = true;
    w->v[i] = w->v[--w->n];
}

void waits_after_commit(waits_t *w, bool committed, waits_fn fn, void *ctx)
{
    if (!w)
        return;
    size_t nt = w->n_touched;
    bool all = w->overflow;
    w->n_touched = 0;
    w->overflow = false;
    if (!committed || (nt == 0 && !all))
        return;
    if (!all)
        qsort(w->touched, nt, sizeof *w->touched, cmp_id);
    for (size_t i = 0; i < w->n;) {
        bool hit = all || bsearch(w->v[i].msgid, w->touched, nt, sizeof *w->touched, cmp_id) != NULL;
        /* fn sees a copy: it may not add or remove waits, but the copy keeps it safe. */
        wait_t x = w->v[i];
        if (hit && fn(ctx, &x))
            remove_at(w, i);
        else
            i++;
    }
}

void waits_expire(waits_t *w, uint64_t now_ms, waits_fn fn, void *ctx)
{
    if (!w || waits_next_deadline(w) > now_ms)
        return;
    for (size_t i = 0; i < w->n;) {
        if (w->v[i].deadline_ms <= now_ms) {
            wait_t x = w->v[i];
            remove_at(w, i);
            fn(ctx, &x);
        } else {
            i++;
        }
    }
}

uint64_t waits_next_deadline(waits_t *w)
{
    if (!w)
        return UINT64_MAX;
    if (w->deadline_stale) {
        uint64_t d = UINT64_MAX;
        for (size_t i = 0; i < w->n; i++)
            if (w->v[i].deadline_ms < d)
                d = w->v[i].deadline_ms;
        w->next_deadline = d;
        w->deadline_stale = false;
    }
    return w->n ? w->next_deadline : UINT64_MAX;
}

void waits_drop_socket(waits_t *w, const void *sock, waits_fn fn, void *ctx)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n;) {
        if (w->v[i].sock == sock) {
            wait_t x = w->v[i];
            remove_at(w, i);
            if (fn)
                fn(ctx, &x);
        } else {
            i++;
        }
    }
}
