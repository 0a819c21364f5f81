/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the node's file layout and the reading (libinih) and first writing of liaison.conf. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <pwd.h>

#include "keys.h"
#include "log.h"
#include "patient.h"
#include "text.h"

static int join(char *out, const char *dir, const char *name, char *err, size_t errlen)
{
    int n = snprintf(out, CONFIG_PATH_MAX, "%s%s%s", dir, name[0] ? "/" : "", name);
    if (n < 0 || (size_t)n >= CONFIG_PATH_MAX) {
        snprintf(err, errlen, "path too long: %s/%s", dir, name);
        return -1;
    }
    return 0;
}

int paths_resolve(paths_t *p, const char *home, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (!home || !home[0])
        home = getenv("LIAISON_HOME");
    int rc = 0;
    if (home && home[0]) {
        rc |= join(p->home, home, "", err, errlen);
        rc |= join(p->config_dir, home, "", err, errlen);
        rc |= join(p->key_dir, home, "", err, errlen);
        rc |= join(p->state_dir, home, "", err, errlen);
        rc |= join(p->runtime_dir, home, "run", err, errlen);
    } else {
        rc |= join(p->config_dir, "/etc/liaison", "", err, errlen);
        rc |= join(p->key_dir, "/etc/liaison", "", err, errlen);
        rc |= join(p->state_dir, "/var/lib/liaison", "", err, errlen);
        rc |= join(p->runtime_dir, "/run/liaison", "", err, errlen);
    }
    rc |= join(p->config_file, p->config_dir, "liaison.conf", err, errlen);
    rc |= join(p->card_file, p->config_dir, "card.txt", err, errlen);
    rc |= join(p->db_file, p->state_dir, "liaison.db", err, errlen);
    rc |= join(p->control_sock, p->runtime_dir, "control.sock", err, errlen);
    rc |= join(p->audit_sock, p->runtime_dir, "audit.sock", err, errlen);
    rc |= join(p->init_marker, p->config_dir, "init-incomplete", err, errlen);
    /* sockaddr_un.sun_path is 108 bytes */
    if (rc == 0 && strlen(p->control_sock) >= 100) {
        snprintf(err, errlen, "socket path %s is too long for a Unix socket (use a shorter --home)", p->control_sock);
        rc = -1;
    }
    return rc ? -1 : 0;
}

int paths_check_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "cannot use %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", dir);
        return -1;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        /* Root checking or running the node of a system user (sudo liaisond --check-config
         * on the packaged layout): the fix is to run it as that user. */
        struct passwd pw, *res = NULL;
        char buf[1024];
        if (geteuid() == 0 && getpwuid_r(st.st_uid, &pw, buf, sizeof buf, &res) == 0 && res)
            snprintf(err, errlen, "%s belongs to the user %s, not root: a liaisond run as root would use files that"
                     " %s can replace; run it as that user: sudo -u %s liaisond ...", dir, res->pw_name,
                     res->pw_name, res->pw_name);
        else
            snprintf(err, errlen, "%s belongs to another user (uid %u): whoever owns it can replace this node's files;"
                     " use a directory of your own", dir, (unsigned)st.st_uid);
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen, "%s can be changed by other users (mode %04o): they could replace this node's files;"
                 " run: chmod go-w %s (or use another directory)", dir, (unsigned)(st.st_mode & 07777), dir);
        return -1;
    }
    return 0;
}

/* Whether path is there as far as anyone can tell: a file that cannot be looked at
 * (a directory on the way this user may not search) is not said to be missing. */
static bool present(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 || (errno != ENOENT && errno != ENOTDIR);
}

int paths_check_node(const paths_t *p, bool need_db, char *err, size_t errlen)
{
    const char *missing = NULL;
    if (!present(p->config_file))
        missing = p->config_file;
    else if (need_db && !present(p->db_file))
        missing = p->db_file;
    if (!missing)
        return 0;
    /* The files liaison init writes: any of them there means a node was made here. */
    char keyfile[4][CONFIG_PATH_MAX + 32];
    const char *names[] = {KEYS_IDENTITY_FILE, KEYS_ENCRYPTION_FILE, KEYS_TRANSPORT_FILE, PATIENT_KEY_FILE};
    for (size_t i = 0; i < 4; i++)
        snprintf(keyfile[i], sizeof keyfile[i], "%s/%s", p->key_dir, names[i]);
    const char *files[] = {keyfile[0], keyfile[1], keyfile[2], keyfile[3], p->card_file, p->config_file, p->db_file};
    const char *found = NULL;
    for (size_t i = 0; i < sizeof files / sizeof files[0] && !found; i++)
        if (files[i] != missing && present(files[i]))
            found = files[i];
    if (found)
        snprintf(err, errlen,
                 "%s is missing, but the rest of this node is here (%s exists): restore %s from this node's"
                 " backup (see BACKUP AND RESTORE in liaisond(8)); liaison init does not overwrite a node, and a"
                 " new node would have keys its peers do not know",
                 missing, found, strrchr(missing, '/') ? strrchr(missing, '/') + 1 : missing);
    else if (p->home[0])
        snprintf(err, errlen,
                 "no liaison node in %s (%s does not exist): create the node with: liaison --home %s init --id ID"
                 " --role ROLE --listen tcp://HOST:PORT",
                 p->home, missing, p->home);
    else
        snprintf(err, errlen,
                 "no liaison node in %s (%s does not exist): create the node with: liaison init --id ID --role ROLE"
                 " --listen tcp://HOST:PORT, run as the daemon's user (sudo -u liaison)",
                 p->config_dir, missing);
    return -1;
}

static bool owner_trusted(const struct stat *st) { return st->st_uid == geteuid() || st->st_uid == 0; }

/* Checks liaison.conf, open as f: see config_load. */
static int config_check_file(const char *path, FILE *f, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file (liaison.conf must be one)", path);
        return -1;
    }
    if (!owner_trusted(&st)) {
        snprintf(err, errlen,
                 "%s belongs to another user (uid %u), who could make liaisond bind, trust or run what they"
                 " choose; run: chown %u %s (the daemon's user; root may own it too)",
                 path, (unsigned)st.st_uid, (unsigned)geteuid(), path);
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen,
                 "%s can be changed by other users (mode %04o), who could make liaisond bind, trust or run what"
                 " they choose; run: chmod go-w %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        return -1;
    }
    /* The caller checks the directory of path; a symbolic link's file is elsewhere. */
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char *real = realpath(path, NULL);
        char *slash = real ? strrchr(real, '/') : NULL;
        if (!slash) {
            snprintf(err, errlen, "cannot resolve the symbolic link %s: %s", path, strerror(errno));
            free(real);
            return -1;
        }
        slash[slash == real] = 0; /* its directory, "/" for a file in / */
        int rc = paths_check_dir(real, err, errlen);
        free(real);
        return rc;
    }
    return 0;
}

void config_defaults(config_t *c)
{
    memset(c, 0, sizeof *c);
    c->retry_min_ms = 1000;
    c->retry_max_ms = 60000;
    c->clock_window_s = 600;
    c->max_age_s = 14u * 86400u;
    c->max_recipients = LIAISON_MAX_RECIPIENTS;
    c->heartbeat_ms = 5000;
    c->ack_routine_s = 86400;
    c->ack_urgent_s = 7200;
    c->checkpoint_entries = 256;
    c->checkpoint_seconds = 300;
    c->witness_proof_wait_s = 600;
    snprintf(c->log_level, sizeof c->log_level, "info");
}

typedef struct parse_ctx {
    config_t *c;
    const char *path;
    char err[256];
    bool failed;
    bool seen[32]; /* per entry of keys[]: a key given twice is an error */
} parse_ctx_t;

enum kind { K_STR, K_U32 };
typedef struct key_def {
    const char *section;
    const char *name;
    enum kind kind;
    size_t off;
    size_t cap;         /* string capacity */
    uint32_t min, max;  /* number range */
    bool (*valid)(const char *);
    const char *what;   /* what a valid value looks like */
} key_def_t;

static bool valid_nonempty_line(const char *s) { return s[0] && text_valid_utf8(s, LIAISON_MAX_NAME, false); }
static bool valid_line(const char *s) { return text_valid_utf8(s, LIAISON_MAX_NAME, false); }
static bool valid_level(const char *s) { return log_level_parse(s) >= 0; }
static bool valid_hook(const char *s) { return !s[0] || (s[0] == '/' && !strpbrk(s, " \t\n")); }
static bool valid_endpoint_or_empty(const char *s) { return !s[0] || text_valid_endpoint(s); }

#define S(sec, key, field, valid, what) \
    {sec, key, K_STR, offsetof(config_t, field), sizeof(((config_t *)0)->field), 0, 0, valid, what}
#define N(sec, key, field, lo, hi) {sec, key, K_U32, offsetof(config_t, field), 0, lo, hi, NULL, NULL}

static const key_def_t keys[] = {
    S("node", "id", id, text_valid_id, "1-64 characters of a-z 0-9 . _ - starting with a letter or digit"),
    S("node", "name", name, valid_nonempty_line, "a non-empty single line of at most 128 bytes"),
    S("node", "role", role, text_valid_role, "therapist, psychiatrist, pcp, pharmacist, nurse, case-manager or auditor"),
    S("node", "org", org, valid_line, "a single line of at most 128 bytes"),
    S("node", "listen", listen, text_valid_bind_endpoint,
      "tcp://ADDRESS:PORT to bind, ADDRESS an IPv4 address, [IPv6 address] or *, PORT 1-65535, such as"
      " tcp://0.0.0.0:7701"),
    S("node", "advertise", advertise, valid_endpoint_or_empty,
      "tcp://HOST:PORT peers can dial, PORT 1-65535, such as tcp://host.example:7701"),
    N("delivery", "retry_min_ms", retry_min_ms, 10, 3600000),
    N("delivery", "retry_max_ms", retry_max_ms, 100, 86400000),
    N("delivery", "clock_window_s", clock_window_s, 1, 7 * 86400),
    N("delivery", "max_age_s", max_age_s, 60, 365u * 86400u),
    N("delivery", "max_recipients", max_recipients, 1, LIAISON_MAX_RECIPIENTS),
    N("delivery", "heartbeat_ms", heartbeat_ms, 100, 600000),
    N("ack", "routine_deadline_s", ack_routine_s, 1, 30u * 86400u),
    N("ack", "urgent_deadline_s", ack_urgent_s, 1, 30u * 86400u),
    S("ack", "hook", ack_hook, valid_hook, "an absolute path to a program, or empty"),
    N("audit", "checkpoint_entries", checkpoint_entries, 1, 1000000),
    N("audit", "checkpoint_seconds", checkpoint_seconds, 1, 86400),
    N("audit", "witness_proof_wait_s", witness_proof_wait_s, 1, 7 * 86400),
    S("log", "level", log_level, valid_level, "error, warning, notice, info or debug"),
};

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx_t *ctx = user;
    if (ctx->failed)
        return 1; /* keep the first error only; inih reports its line */
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const key_def_t *k = &keys[i];
        if (strcmp(k->section, section) != 0 || strcmp(k->name, name) != 0)
            continue;
        char *field = (char *)ctx->c + k->off;
        if (k->kind == K_STR) {
            if (strlen(value) >= k->cap || !k->valid(value)) {
                snprintf(ctx->err, sizeof ctx->err, "[%s] %s: invalid value (expected %s)", section, name, k->what);
                goto bad;
            }
            memcpy(field, value, strlen(value) + 1);
        } else {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(value, &end, 10);
            if (errno || end == value || *end || value[0] == '-' || v < k->min || v > k->max) {
                snprintf(ctx->err, sizeof ctx->err, "[%s] %s: '%s' is not a number from %" PRIu32 " to %" PRIu32,
                         section, name, value, k->min, k->max);
                goto bad;
            }
            uint32_t v32 = (uint32_t)v;
            memcpy(field, &v32, sizeof v32);
        }
        /* The last of two values would win silently, and an edit of the first would do
         * nothing: say so instead. */
        if (ctx->seen[i]) {
            snprintf(ctx->err, sizeof ctx->err, "[%s] %s is given twice: keep one of the two lines", section, name);
            goto bad;
        }
        ctx->seen[i] = true;
        return 1;
    }
    snprintf(ctx->err, sizeof ctx->err, "unknown key '%s' in section [%s]", name, section);
bad:
    ctx->failed = true;
    return 0;
}

_Static_assert(sizeof keys / sizeof keys[0] <= 32, "parse_ctx_t.seen must cover every key");

int config_load(const char *path, config_t *c, char *err, size_t errlen)
{
    config_defaults(c);
    parse_ctx_t ctx = {.c = c, .path = path};
    FILE *f = fopen(path, "re");
    if (!f) {
        /* liaisond asks paths_check_node first, which tells a lost file from no node. */
        snprintf(err, errlen, "cannot read %s: %s%s", path, strerror(errno),
                 errno == ENOENT ? " (restore it from this node's backup: see BACKUP AND RESTORE in liaisond(8))"
                                 : "");
        return -1;
    }
    if (config_check_file(path, f, err, errlen) != 0) {
        fclose(f);
        return -1;
    }
    int line = ini_parse_file(f, on_key, &ctx);
    /* inih takes a read error for the end of the file: what was not read would be left
     * at its default, silently (a hook, a deadline). */
    int read_errno = errno;
    bool unread = ferror(f);
    fclose(f);
    if (unread) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(read_errno));
        return -1;
    }
    if (line != 0) {
        if (ctx.failed)
            snprintf(err, errlen, "%s:%d: %s", path, line, ctx.err);
        else
            snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", path, line);
        return -1;
    }
    static const char *required[] = {"id", "name", "role", "listen"};
    const char *vals[] = {c->id, c->name, c->role, c->listen};
    for (size_t i = 0; i < 4; i++) {
        if (!vals[i][0]) {
            snprintf(err, errlen, "%s: [node] %s is missing", path, required[i]);
            return -1;
        }
    }
    if (c->retry_min_ms > c->retry_max_ms) {
        snprintf(err, errlen, "%s: [delivery] retry_min_ms is larger than retry_max_ms", path);
        return -1;
    }
    if (!c->advertise[0]) {
        if (text_endpoint_wildcard(c->listen)) {
            snprintf(err, errlen, "%s: [node] listen = %s binds every interface: set [node] advertise ="
                                  " tcp://HOST:PORT, the address peers dial", path, c->listen);
            return -1;
        }
        memcpy(c->advertise, c->listen, sizeof c->advertise);
    }
    return 0;
}

int config_check_hook(const char *path, const config_t *c, char *err, size_t errlen)
{
    struct stat st;
    const char *why = NULL;
    if (!c->ack_hook[0])
        return 0;
    if (stat(c->ack_hook, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (access(c->ack_hook, X_OK) != 0)
        why = errno == EACCES ? "not executable (chmod +x it)" : strerror(errno);
    if (!why)
        return 0;
    snprintf(err, errlen, "%s: [ack] hook: %s: %s (overdue acknowledgements would page nobody)", path, c->ack_hook,
             why);
    return -1;
}

/* The rule for the [ack] hook (see config_check_hook_safe): hook is an absolute path
 * (valid_hook). Walks it component by component with lstat, never following a link. */
int config_check_hook_safe(const char *path, const config_t *c, char *err, size_t errlen)
{
    const char *hook = c->ack_hook;
    if (!hook[0])
        return 0;
    char part[CONFIG_PATH_MAX];
    size_t len = strlen(hook);
    if (len >= sizeof part) {
        snprintf(err, errlen, "%s: [ack] hook: %s is too long a path to check: use a shorter one", path, hook);
        return -1;
    }
    /* Every directory on the way, "/" first, then the program itself. */
    for (size_t i = 0; i <= len; i++) {
        if (i < len && hook[i] != '/')
            continue;
        size_t plen = i ? i : 1;
        memcpy(part, hook, plen);
        part[plen] = 0;
        struct stat st;
        if (lstat(part, &st) != 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                break; /* config_check_hook says it is not there; the last directory decided who may create it */
            snprintf(err, errlen, "%s: [ack] hook: cannot check %s: %s", path, part, strerror(errno));
            return -1;
        }
        /* A link could be pointed elsewhere later by whoever owns it (or any link on its
         * way), and liaisond would run what it then names. */
        if (S_ISLNK(st.st_mode)) {
            char *real = realpath(hook, NULL);
            snprintf(err, errlen,
                     "%s: [ack] hook: %s goes through the symbolic link %s: give the program's real path%s%s (liaisond"
                     " runs the hook with its own rights and follows no link to it)",
                     path, hook, part, real ? ", " : "", real ? real : "");
            free(real);
            return -1;
        }
        bool last = i == len;
        if (!owner_trusted(&st)) {
            if (last)
                snprintf(err, errlen,
                         "%s: [ack] hook: %s belongs to another user (uid %u), who could make liaisond run anything:"
                         " run: chown root %s (or use a program of root's or of the daemon's user)",
                         path, hook, (unsigned)st.st_uid, hook);
            else
                snprintf(err, errlen,
                         "%s: [ack] hook: %s is in %s, which belongs to another user (uid %u), who could replace it:"
                         " move the hook to a directory of root's (such as /usr/local/libexec)",
                         path, hook, part, (unsigned)st.st_uid);
            return -1;
        }
        if (!(st.st_mode & (S_IWGRP | S_IWOTH)))
            continue;
        if (last) {
            snprintf(err, errlen,
                     "%s: [ack] hook: %s can be changed by other users (mode %04o), who could make liaisond run"
                     " anything: run: chmod go-w %s",
                     path, hook, (unsigned)(st.st_mode & 07777), hook);
            return -1;
        }
        /* A directory others may write to: with the sticky bit (as /tmp) they cannot
         * rename or remove what root or this user own in it (the next component, whose
         * owner the next round checks), but they can put something there if it is not
         * there yet. */
        const char *next_end = strchr(hook + i + 1, '/');
        size_t nlen = next_end ? (size_t)(next_end - hook) : len;
        memcpy(part, hook, nlen);
        part[nlen] = 0;
        struct stat nst;
        bool protects = (st.st_mode & S_ISVTX) && lstat(part, &nst) == 0;
        part[plen] = 0;
        if (!protects) {
            snprintf(err, errlen,
                     "%s: [ack] hook: %s is in %s, which other users can change (mode %04o)%s, and liaisond runs it:"
                     " run: chmod go-w %s, or move the hook to a directory of root's (such as /usr/local/libexec)",
                     path, hook, part, (unsigned)(st.st_mode & 07777),
                     st.st_mode & S_ISVTX ? " to put something there before it exists" : " to replace it",
                     part);
            return -1;
        }
    }
    return 0;
}

int config_write_new(const char *path, const config_t *c, char *err, size_t errlen)
{
    int rc = -1;
    FILE *f = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    fprintf(f,
            "# liaison node configuration; see liaison.conf(5).\n"
            "[node]\nid = %s\nname = %s\nrole = %s\norg = %s\nlisten = %s\nadvertise = %s\n\n"
            "[delivery]\nretry_min_ms = %" PRIu32 "\nretry_max_ms = %" PRIu32 "\nclock_window_s = %" PRIu32
            "\nmax_age_s = %" PRIu32 "\nheartbeat_ms = %" PRIu32 "\nmax_recipients = %" PRIu32 "\n\n"
            "[ack]\nroutine_deadline_s = %" PRIu32 "\nurgent_deadline_s = %" PRIu32 "\nhook =\n\n"
            "[audit]\ncheckpoint_entries = %" PRIu32 "\ncheckpoint_seconds = %" PRIu32
            "\nwitness_proof_wait_s = %" PRIu32 "\n\n"
            "[log]\nlevel = %s\n",
            c->id, c->name, c->role, c->org, c->listen, c->advertise[0] ? c->advertise : c->listen,
            c->retry_min_ms, c->retry_max_ms, c->clock_window_s, c->max_age_s, c->heartbeat_ms, (uint32_t)c->max_recipients, c->ack_routine_s, c->ack_urgent_s, c->checkpoint_entries,
            c->checkpoint_seconds, c->witness_proof_wait_s, c->log_level);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (f && fclose(f) != 0 && rc == 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc != 0 && fd >= 0)
        unlink(path);
    return rc;
}
