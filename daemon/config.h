/* SPDX-License-Identifier: Apache-2.0 */
/* A node's configuration: where its files live (home or systemd layout) and what
 * liaison.conf says, read with libinih; also writes the first liaison.conf. */
#ifndef LIAISON_CONFIG_H
#define LIAISON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constants.h"

#define CONFIG_PATH_MAX 512

/* Where a node's files are. With a home directory H: config, keys and database in H,
 * sockets in H/run. Without: /etc/liaison (config, keys), /var/lib/liaison
 * (database), /run/liaison (sockets). */
typedef struct paths {
    char home[CONFIG_PATH_MAX];       /* empty in the systemd layout */
    char config_dir[CONFIG_PATH_MAX];
    char key_dir[CONFIG_PATH_MAX];
    char state_dir[CONFIG_PATH_MAX];
    char runtime_dir[CONFIG_PATH_MAX];
    char config_file[CONFIG_PATH_MAX];  /* config_dir/liaison.conf */
    char db_file[CONFIG_PATH_MAX];      /* state_dir/liaison.db */
    char card_file[CONFIG_PATH_MAX];    /* config_dir/card.txt (public) */
    char control_sock[CONFIG_PATH_MAX]; /* runtime_dir/control.sock */
    char audit_sock[CONFIG_PATH_MAX];   /* runtime_dir/audit.sock */
    char init_marker[CONFIG_PATH_MAX];  /* config_dir/init-incomplete: liaison init has not finished */
} paths_t;

/* Resolves the layout: home if non-NULL and non-empty, else $LIAISON_HOME, else the
 * systemd layout. Returns 0, or -1 with err set (path too long). */
int paths_resolve(paths_t *p, const char *home, char *err, size_t errlen);

/* Checks that dir (symbolic links followed) is a directory that only its owner can
 * change, and that the owner is this process's user or root: anyone else who could
 * add, rename or replace files there could swap the node's keys, configuration or
 * sockets, or read what is created there before its mode is set. Returns 0, or -1 with
 * err set (naming dir and the fix). */
int paths_check_dir(const char *dir, char *err, size_t errlen);

/* Checks that the files a node cannot run without are there: liaison.conf, and with
 * need_db liaison.db. A missing one is named with the fix that works: when the rest of
 * a node is there (its keys, card, configuration or database), restore the file from
 * this node's backup, since liaison init refuses to overwrite a node (and a new node
 * would have keys its peers do not know); only when nothing of a node is there, create
 * it with liaison init. Only the absence of a file is judged here (errors other than
 * ENOENT and ENOTDIR are left to whoever opens the file). Returns 0, or -1 with err set. */
int paths_check_node(const paths_t *p, bool need_db, char *err, size_t errlen);

typedef struct config {
    /* [node] */
    char id[LIAISON_MAX_ID + 1];
    char name[LIAISON_MAX_NAME + 1];
    char role[32];
    char org[LIAISON_MAX_NAME + 1];
    char listen[LIAISON_MAX_ENDPOINT + 1];
    char advertise[LIAISON_MAX_ENDPOINT + 1];  /* endpoint in our card; defaults to listen */
    /* [delivery] */
    uint32_t retry_min_ms;        /* first retry delay, default 1000 */
    uint32_t retry_max_ms;        /* backoff cap, default 60000 */
    uint32_t clock_window_s;      /* accepted created - now (clock skew), default 600 */
    uint32_t max_age_s;           /* accepted now - created (offline peers), default 14 days */
    uint32_t max_recipients;      /* default LIAISON_MAX_RECIPIENTS */
    uint32_t heartbeat_ms;        /* ZMQ heartbeat interval, default 5000 */
    /* [audit] */
    uint32_t checkpoint_entries;  /* sign a checkpoint every N entries, default 256 */
    uint32_t checkpoint_seconds;  /* or every T seconds if there are new entries, default 300 */
    uint32_t witness_proof_wait_s; /* a peer's checkpoints offered without the proof asked for,
                                    * this long: witness alarm (witness.c), default 600 */
    /* [ack] */
    uint32_t ack_routine_s;       /* deadline for routine medication changes, default 86400 */
    uint32_t ack_urgent_s;        /* deadline for urgent ones, default 7200 */
    char ack_hook[CONFIG_PATH_MAX]; /* program run once per overdue acknowledgement, default none */
    /* [log] */
    char log_level[16];           /* error|warning|info|debug, default info */
} config_t;

/* Fills c with defaults (empty identity fields). */
void config_defaults(config_t *c);

/* Reads and validates path into c (defaults first). Unknown sections/keys and bad
 * values are errors naming file, line and key. The file (after symbolic links) must be
 * a regular file that only this process's user or root can change: owned by one of
 * them, not writable by group or others (root:liaison 0640, as packaged, is fine), and
 * when path is a symbolic link, the directory of the file it names must pass
 * paths_check_dir (path's own directory is the caller's to check): whoever could change
 * it could name the program liaisond runs as an [ack] hook, or the address it binds.
 * A read error is an error, never the end of the file. Returns 0, or -1 with err set. */
int config_load(const char *path, config_t *c, char *err, size_t errlen);

/* Checks that c's [ack] hook, if set, is a regular file this process may execute (the
 * syntax is config_load's). Returns 0, or -1 with err naming the file, the key and why:
 * an overdue acknowledgement would then page nobody. */
int config_check_hook(const char *path, const config_t *c, char *err, size_t errlen);

/* Checks that c's [ack] hook, if set, is a program only this process's user or root can
 * change or replace, since liaisond runs it with its own rights. Its path, walked with
 * lstat, must hold no symbolic link (whoever owns a link, or a directory on the way to
 * what it names, could point it elsewhere later: give the real path); the program and
 * every directory on the way must be owned by this user or root and not writable by
 * group or others, except the program's own directory when it has the sticky bit (as
 * /tmp) and the program is there: then nobody else may rename or remove it. A hook that
 * does not exist passes if no one else could create it (config_check_hook reports that
 * it is missing). Unlike config_check_hook, a failure here must refuse the
 * configuration; clinical.c checks again before every run. Returns 0, or -1 with err
 * naming the file, the key, the path and the fix. */
int config_check_hook_safe(const char *path, const config_t *c, char *err, size_t errlen);

/* Writes a new liaison.conf with c's values, mode 0644, O_EXCL (never overwrites).
 * Returns 0, or -1 with err set. */
int config_write_new(const char *path, const config_t *c, char *err, size_t errlen);

#endif
