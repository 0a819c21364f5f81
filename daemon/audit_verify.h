/* SPDX-License-Identifier: Apache-2.0 */
/* Independent verification of a node's audit log from its database file alone:
 * hash chain, Merkle roots at every signed checkpoint, checkpoint signatures, and
 * optionally a checkpoint held by a peer or an auditor (which catches truncation and
 * rollback). Needs no running daemon; opens nothing for writing. */
#ifndef LIAISON_AUDIT_VERIFY_H
#define LIAISON_AUDIT_VERIFY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "constants.h"

typedef struct audit_verify_opts {
    const uint8_t *sign_pk;        /* the node's trusted identity key (32 bytes), or NULL:
                                    * then the key recorded in the database is used, with a warning */
    const char *extra_checkpoint;  /* a checkpoint note of this node held elsewhere, or NULL */
    const char *card_id;           /* the id of the card sign_pk came from, or NULL: named when the
                                    * database records another node */
    /* Called after every AUDIT_VERIFY_PROGRESS entries with the number read so far
     * (liaisond keeps systemd's start-up timeout from running out on a long log), or NULL. */
    void (*progress)(void *ctx, uint64_t entries);
    void *progress_ctx;
    /* Set (by another thread) to stop a verification under way, or NULL: it then returns
     * -1 soon, with a report saying it was interrupted. */
    const atomic_bool *cancel;
} audit_verify_opts_t;

#define AUDIT_VERIFY_PROGRESS 65536

/* What failed first (the report's summary names it). */
typedef enum audit_failure {
    AUDIT_FAIL_NONE = 0,
    AUDIT_FAIL_CHAIN,      /* an entry changed, removed, inserted or reordered: the hash chain is broken */
    AUDIT_FAIL_SIGNATURE,  /* a checkpoint's signature does not verify with the key used */
    AUDIT_FAIL_ROOT,       /* the entries do not match a validly signed checkpoint (log rewritten) */
    AUDIT_FAIL_TRUNCATED,  /* the log is shorter than its own signed checkpoints */
    AUDIT_FAIL_BEHIND,     /* the log is behind the checkpoint given (rolled back, or an older copy) */
    AUDIT_FAIL_STOPPED,    /* entries added after the checkpoint signed at an orderly stop, before the next start */
} audit_failure_t;

typedef struct audit_report {
    bool ok;
    bool chain_ok;                 /* the hash chain itself is intact */
    audit_failure_t failure;       /* the first failure, AUDIT_FAIL_NONE if ok */
    uint64_t entries;
    uint64_t checkpoints;
    uint64_t first_bad_seq;        /* where the first failure is, 0 if none */
    uint64_t chain_bad_seq;        /* where the hash chain first breaks, 0 if it does not */
    uint64_t rollbacks;            /* the daemon's rollback-detected entries: the log is known incomplete */
    uint64_t last_rollback_seq, last_rollback_ms;
    char text[4096];               /* what was checked and, on failure, what is wrong */
} audit_report_t;

/* Verifies the audit log in db. Returns 0 if the check ran (see report->ok: false
 * only for a verification failure), -1 if it could not run: not a liaison database,
 * a malformed extra checkpoint, a read error (report->text says why). */
int audit_verify_db(sqlite3 *db, const audit_verify_opts_t *opts, audit_report_t *report);

/* Opens path read-only and verifies it. */
int audit_verify_file(const char *path, const audit_verify_opts_t *opts, audit_report_t *report);

#endif
