/* SPDX-License-Identifier: Apache-2.0 */
#include "verifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

struct verifier {
    worker_t *w;
    receipt_cache_t cache;      /* the worker thread's own (receipt.h): the receipts of a batch arrive together */
    verifier_done_fn done;
    void *ctx;
};

static void run(void *ctx, void *job)
{
    verifier_t *v = ctx;
    verify_job_t *j = job;
    j->ok = receipt_verify_cached(j->bytes, j->len, j->sign_pk, &v->cache, &j->r, j->err, sizeof j->err) == 0;
}

static void finished(void *ctx, void *job)
{
    verifier_t *v = ctx;
    v->done(v->ctx, job);
}

int verifier_start(verifier_t **out, void *zctx, loop_t *l, verifier_done_fn done, void *ctx, char *err,
                   size_t errlen)
{
    *out = NULL;
    verifier_t *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "receipt verifier: out of memory");
        return -1;
    }
    v->done = done;
    v->ctx = ctx;
    if (worker_start(&v->w, zctx, l, "liaisond-verify", "receipt verifier", run, v, finished, v, err, errlen) != 0) {
        free(v);
        return -1;
    }
    *out = v;
    return 0;
}

int verifier_submit(verifier_t *v, const char *peer, const uint8_t sign_pk[static LIAISON_KEY_BYTES],
                    const uint8_t *bytes, size_t len)
{
    if (!v || strlen(peer) > LIAISON_MAX_ID || len < 1 || len > LIAISON_MAX_RECEIPT ||
        worker_pending(v->w) >= VERIFIER_MAX_PENDING)
        return -1;
    verify_job_t *j = malloc(sizeof *j + len);
    if (!j)
        return -1;
    memset(j, 0, sizeof *j);
    memcpy(j->peer, peer, strlen(peer) + 1);
    memcpy(j->sign_pk, sign_pk, LIAISON_KEY_BYTES);
    j->len = len;
    memcpy(j->bytes, bytes, len);
    if (worker_submit(v->w, j) != 0) {
        free(j);
        return -1;
    }
    return 0;
}

size_t verifier_pending(const verifier_t *v) { return v ? worker_pending(v->w) : 0; }

void verifier_stop(verifier_t **vp)
{
    verifier_t *v = *vp;
    if (!v)
        return;
    worker_stop(&v->w);
    free(v);
    *vp = NULL;
}
