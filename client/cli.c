/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the command line's shared machinery (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "payload.h"
#include "text.h"

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("liaison: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

static char done_what[512], done_check[96];

void cli_done(const char *check, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(done_what, sizeof done_what, fmt, ap);
    va_end(ap);
    snprintf(done_check, sizeof done_check, "%s", check ? check : "");
    /* A reader that went away (liaison send ... | head -c0) would otherwise end the
     * process at the write, silently, after the message went out. */
    signal(SIGPIPE, SIG_IGN);
}

const char *cli_done_what(void)
{
    return done_what;
}

const char *cli_done_check(void)
{
    return done_check;
}

cli_opt_t *cli_opt(cli_opt_t *opts, const char *name)
{
    for (cli_opt_t *o = opts; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    abort(); /* a programming error: the command asked for an option it does not declare */
}

unsigned cli_args_line(const cli_t *cli, const char *arg)
{
    for (size_t i = 0; i < cli->n_args; i++)
        if (cli->args_argv[i] == arg)
            return cli->args_line[i];
    return 0;
}

/* A positional argument beyond those the command takes. Without --to anywhere, the
 * recipients were most likely given bare ("liaison send dr.okafor body.txt"), and the
 * file is not what is wrong: say --to is missing, with the command's usage. */
static int unexpected_argument(cli_t *cli, int argc, char **argv, const cli_opt_t *opts, const char *a)
{
    bool takes_to = false, has_to = false;
    for (const cli_opt_t *p = opts; p && p->name; p++)
        takes_to = takes_to || (strcmp(p->name, "to") == 0 && p->has_arg);
    for (int i = 0; i < argc && takes_to && strcmp(argv[i], "--") != 0; i++)
        has_to = has_to || strcmp(argv[i], "--to") == 0 || strncmp(argv[i], "--to=", 5) == 0;
    if (takes_to && !has_to) {
        cli_fail(EXIT_USAGE, "%s needs --to ID[,ID...] (the recipients go after --to, e.g. --to"
                             " dr.okafor,dr.alvarez)", cli->cmd);
        if (cli->help)
            cli->help(stderr, cli->top ? cli->top : cli->cmd);
        return EXIT_USAGE;
    }
    unsigned line = cli_args_line(cli, a);
    if (line)
        return cli_fail(EXIT_USAGE, "%s: unexpected argument on line %u of %.200s (not shown: it may be a patient's"
                        " id; each value goes on the line after its option) (see: liaison help %s)", cli->cmd, line,
                        cli->args_file, cli->cmd);
    return cli_fail(EXIT_USAGE, "%s: unexpected argument '%.64s' (see: liaison help %s)", cli->cmd, a, cli->cmd);
}

/* An option given twice that takes a list: the second would silently replace the first
 * (--to a --to b sends to b alone), so it is refused, with the one --to that does it.
 * Values from the --args file are not repeated. */
static int given_twice(cli_t *cli, const cli_opt_t *o, const char *val)
{
    bool list = strcmp(o->name, "to") == 0 || strcmp(o->name, "with") == 0;
    if (!list)
        return cli_fail(EXIT_USAGE, "%s: --%s given twice", cli->cmd, o->name);
    const char *who = strcmp(o->name, "to") == 0 ? "recipient" : "participant";
    if (cli_args_line(cli, o->value) || cli_args_line(cli, val))
        return cli_fail(EXIT_USAGE, "%s: --%s given twice: name every %s in one --%s, separated by commas (--%s"
                        " ID,ID)", cli->cmd, o->name, who, o->name, o->name);
    return cli_fail(EXIT_USAGE, "%s: --%s given twice: name every %s in one --%s, separated by commas (--%s"
                    " %.64s,%.64s)", cli->cmd, o->name, who, o->name, o->name, o->value, val);
}

int cli_parse(cli_t *cli, int argc, char **argv, cli_opt_t *opts, const char **pos, size_t max_pos, size_t *n_pos)
{
    *n_pos = 0;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            if (*n_pos == max_pos)
                return unexpected_argument(cli, argc, argv, opts, a);
            pos[(*n_pos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            if (cli->help)
                cli->help(stdout, cli->top ? cli->top : cli->cmd);
            return EXIT_HELP_SHOWN;
        }
        unsigned line = cli_args_line(cli, a);
        if (a[1] != '-' && line)
            return cli_fail(EXIT_USAGE, "%s: unknown option on line %u of %.200s (options are spelt --name)", cli->cmd,
                            line, cli->args_file);
        if (a[1] != '-')
            return cli_fail(EXIT_USAGE, "%s: unknown option '%.64s' (options are spelt --name)", cli->cmd, a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        /* "--patient P-1042" as one argument (a line of the --args file, or quoted): an
         * option and its value. What follows the space is not repeated: it is the value. */
        size_t sp = strcspn(name, " \t");
        if (sp < nlen && line)
            return cli_fail(EXIT_USAGE, "%s: line %u of %.200s holds --%.*s and more after a space: each argument goes"
                            " on its own line (--%.*s on one line, its value on the next)", cli->cmd, line,
                            cli->args_file, (int)(sp < 40 ? sp : 40), name, (int)(sp < 40 ? sp : 40), name);
        if (sp < nlen)
            return cli_fail(EXIT_USAGE, "%s: --%.*s and what follows a space are one argument: give the option and its"
                            " value as two arguments (--%.*s VALUE) or as one with = (--%.*s=VALUE)", cli->cmd,
                            (int)(sp < 40 ? sp : 40), name, (int)(sp < 40 ? sp : 40), name, (int)(sp < 40 ? sp : 40),
                            name);
        if (line && nlen == 4 && strncmp(name, "args", 4) == 0)
            return cli_fail(EXIT_USAGE, "%s: line %u of %.200s is --args: the file holds the command's own arguments"
                            " and cannot name another file", cli->cmd, line, cli->args_file);
        if (nlen == 4 && strncmp(name, "json", 4) == 0) {
            if (eq)
                return cli_fail(EXIT_USAGE, "%s: --json takes no value", cli->cmd);
            cli->json = true;
            continue;
        }
        bool is_home = nlen == 4 && strncmp(name, "home", 4) == 0;
        cli_opt_t *o = NULL;
        for (cli_opt_t *p = opts; p && p->name; p++)
            if (strlen(p->name) == nlen && strncmp(p->name, name, nlen) == 0)
                o = p;
        if (!o && !is_home)
            return cli_fail(EXIT_USAGE, "%s: unknown option --%.*s (see: liaison help %s)", cli->cmd, (int)nlen, name,
                            cli->cmd);
        const char *val = NULL;
        if (is_home || o->has_arg) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc && !(argv[i + 1][0] == '-' && argv[i + 1][1] == '-'))
                val = argv[++i];
            else if (i + 1 < argc) /* "--to --subject x": the value was forgotten */
                return cli_fail(EXIT_USAGE, "%s: --%.*s needs a value, not the option '%.64s' (a value that starts"
                                " with -- is written --%.*s=VALUE)", cli->cmd, (int)nlen, name, argv[i + 1], (int)nlen,
                                name);
            else
                return cli_fail(EXIT_USAGE, "%s: --%.*s needs a value", cli->cmd, (int)nlen, name);
        } else if (eq) {
            return cli_fail(EXIT_USAGE, "%s: --%s takes no value", cli->cmd, o->name);
        }
        if (is_home) {
            /* Two different homes are two different nodes: never pick one silently. */
            if (cli->home && strcmp(cli->home, val) != 0)
                return cli_fail(EXIT_USAGE,
                                "--home given twice ('%.200s' and '%.200s'): give the node's directory once",
                                cli->home, val);
            cli->home = val;
            continue;
        }
        if (o->count > 0 && !o->repeat)
            return given_twice(cli, o, val);
        if (o->count == CLI_MAX_VALUES)
            return cli_fail(EXIT_USAGE, "%s: --%s given too many times", cli->cmd, o->name);
        o->values[o->count++] = val;
        o->value = val;
    }
    return 0;
}

int cli_exit_code(liaison_rc rc)
{
    switch (rc) {
    case LIAISON_OK: return 0;
    case LIAISON_BAD_REQUEST: return EXIT_USAGE;
    case LIAISON_UNREACHABLE:
    case LIAISON_TIMEOUT: return EXIT_UNREACHABLE;
    case LIAISON_INTERRUPTED: return EXIT_INTERRUPTED;
    default: return EXIT_REFUSED;
    }
}

/* Set by the SIGINT handler, read by the client library's wait (liaison_client_set_interrupt). */
static volatile sig_atomic_t interrupt_flag;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupt_flag = 1; /* nothing else: only async-signal-safe work belongs in a handler */
}

void cli_catch_interrupt(void)
{
    struct sigaction old, sa = {.sa_handler = on_interrupt};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, NULL, &old) != 0 || old.sa_handler == SIG_IGN)
        return;
    sigaction(SIGINT, &sa, NULL);
}

bool cli_interrupted(void)
{
    return interrupt_flag != 0;
}

int cli_fail_interrupted(const char *what, const char *check)
{
    /* The terminal echoed ^C where the cursor was: start on a line of our own. */
    fflush(stdout);
    if (isatty(STDERR_FILENO))
        fputc('\n', stderr);
    return cli_fail(EXIT_INTERRUPTED, "interrupted: %s may already be stored and sent; check with: %s", what, check);
}

static liaison_client_t *open_socket(cli_t *cli, bool audit, int *code)
{
    liaison_client_t **slot = audit ? &cli->audit : &cli->control;
    if (*slot)
        return *slot;
    char err[600];
    liaison_rc rc = liaison_client_connect(cli->home, audit ? LIAISON_SOCKET_AUDIT : LIAISON_SOCKET_CONTROL, slot, err,
                                           sizeof err);
    if (!*slot) /* no daemon, no node, no access: unreachable for this user; out of memory: refused */
        *code = cli_fail(rc == LIAISON_INTERNAL ? EXIT_REFUSED : EXIT_UNREACHABLE, "%s", err);
    else
        liaison_client_set_interrupt(*slot, &interrupt_flag); /* raised only after cli_catch_interrupt */
    const char *t = getenv("LIAISON_TIMEOUT_MS");
    uint64_t ms;
    if (*slot && t && cli_parse_uint(t, 3600000, &ms) == 0)
        liaison_client_set_timeout(*slot, (int)ms);
    return *slot;
}

liaison_client_t *cli_control(cli_t *cli, int *code)
{
    return open_socket(cli, false, code);
}

int cli_call(cli_t *cli, bool audit, Liaison__Control__Request *rq, Liaison__Control__Response__ResultCase want,
             Liaison__Control__Response **resp)
{
    *resp = NULL;
    int code = 0;
    liaison_client_t *c = open_socket(cli, audit, &code);
    if (!c)
        return code;
    Liaison__Control__Response *r = NULL;
    liaison_rc rc = liaison_call_pb(c, rq, &r);
    if (rc != LIAISON_OK) {
        if (r)
            liaison__control__response__free_unpacked(r, NULL);
        return cli_fail(cli_exit_code(rc), "%s", liaison_client_error(c));
    }
    if (want != LIAISON__CONTROL__RESPONSE__RESULT__NOT_SET && r->result_case != want) {
        liaison__control__response__free_unpacked(r, NULL);
        return cli_fail(EXIT_REFUSED, "liaisond sent an answer of the wrong kind (are liaison and liaisond the same"
                                      " version?)");
    }
    *resp = r;
    return 0;
}

void cli_close(cli_t *cli)
{
    liaison_client_close(cli->control);
    liaison_client_close(cli->audit);
    cli->control = cli->audit = NULL;
}

FILE *cli_create(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(path);
        errno = e;
    }
    return f;
}

/* cli_read_file, naming `limit` as the limit when the input is over max bytes (a text
 * is read with room for its CRLFs, but its limit is what the user must meet). */
static char *read_file(const char *path, size_t max, size_t limit)
{
    bool in = strcmp(path, "-") == 0;
    FILE *f = in ? stdin : fopen(path, "rb");
    if (!f) {
        cli_fail(EXIT_USAGE, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    /* At a terminal, silence would look like a hang: say what is expected. */
    if (in && isatty(STDIN_FILENO))
        fprintf(stderr, "liaison: reading from the terminal: type or paste, then press Ctrl-D on a new line"
                        " (Ctrl-C cancels; nothing is sent)\n");
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap - 1) {
            if (cap > max + 1) {
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t want = cap - 1 - n, got = fread(buf + n, 1, want, f);
        n += got;
        /* A short read is end of input or an error: stop there. Reading on would wait for
         * a second Ctrl-D at a terminal, which looks like a hang. */
        if (got < want)
            break;
    }
    int read_errno = errno;
    bool err = ferror(f);
    if (!in)
        fclose(f);
    if (!buf) {
        cli_fail(EXIT_USAGE, "out of memory reading %s", in ? "standard input" : path);
        return NULL;
    }
    if (err) {
        /* e.g. a directory, which fopen accepts and fread refuses with EISDIR */
        cli_fail(EXIT_USAGE, "cannot read %s: %s", in ? "standard input" : path, strerror(read_errno));
        free(buf);
        return NULL;
    }
    if (n > max) {
        cli_fail(EXIT_USAGE, "%s is over the limit of %zu bytes", in ? "standard input" : path, limit);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (strlen(buf) != n) {
        /* Windows editors save "Unicode" text as UTF-16, a NUL byte beside every ASCII
         * letter, and mostly with a byte order mark: say so, and how to convert it. */
        bool utf16 = n >= 2 && (((unsigned char)buf[0] == 0xff && (unsigned char)buf[1] == 0xfe) ||
                                ((unsigned char)buf[0] == 0xfe && (unsigned char)buf[1] == 0xff));
        cli_fail(EXIT_USAGE, "%s contains NUL bytes: not text%s", in ? "standard input" : path,
                 utf16 ? " (it is UTF-16, as Windows saves \"Unicode\" text: convert it with iconv -f UTF-16 -t"
                         " UTF-8)"
                       : "");
        free(buf);
        return NULL;
    }
    return buf;
}

char *cli_read_file(const char *path, size_t max)
{
    return read_file(path, max, max);
}

void cli_chomp(char *s)
{
    size_t n = strlen(s);
    if (n && s[n - 1] == '\n')
        s[--n] = 0;
    if (n && s[n - 1] == '\r')
        s[--n] = 0;
}

char *cli_read_text(const char *path, size_t max)
{
    /* CRLF takes two bytes where the text will take one: read up to twice the limit,
     * then check the limit on the converted text. */
    char *t = read_file(path, max > SIZE_MAX / 2 ? max : 2 * max, max);
    if (!t)
        return NULL;
    size_t o = 0, i = 0;
    /* The byte order mark some editors put first in UTF-8 ("UTF-8 with BOM") is no part
     * of the text: sent, it would be an invisible first character. */
    if (strncmp(t, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    for (; t[i]; i++) {
        if (t[i] == '\r' && t[i + 1] == '\n')
            continue;
        t[o++] = t[i];
    }
    t[o] = 0;
    cli_chomp(t);
    if (strlen(t) > max) {
        cli_fail(EXIT_USAGE, "%s is over the limit of %zu bytes", strcmp(path, "-") == 0 ? "standard input" : path,
                 max);
        free(t);
        return NULL;
    }
    return t;
}

/* A TZ that names no zone this system has ("Asia/Kolkatta", "IST") is taken by the C
 * library for a zone at UTC+0 with that name as its abbreviation: every time would be
 * shown in UTC labelled "Asia" or "IST". One it cannot parse ("<AB>-1") gives UTC with
 * no abbreviation at all. And "UTC+5:30" is a POSIX rule for 5:30 hours *behind* UTC
 * (the sign is the offset to add to reach UTC), labelled "UTC": a doctor in India would
 * read 23:07 UTC for what was 04:37 UTC. POSIX rules ("IST-5:30", "EST5EDT") always carry
 * an offset digit; anything without one must be a file of the zone database. Such a TZ
 * is said once and replaced by UTC, which is then what the times say. */
static void check_zone(void)
{
    static bool checked;
    if (checked)
        return;
    checked = true;
    const char *tz = getenv("TZ");
    if (!tz || !tz[0])
        return;
    const char *name = tz[0] == ':' ? tz + 1 : tz;
    char why[320] = "";
    /* UTC and GMT are UTC with or without the zone database (a minimal system). */
    bool utc = strcmp(name, "UTC") == 0 || strcmp(name, "GMT") == 0;
    if (!utc && !strpbrk(name, "0123456789")) {
        char path[256];
        const char *dir = getenv("TZDIR");
        if (name[0] == '/')
            snprintf(path, sizeof path, "%s", name);
        else
            snprintf(path, sizeof path, "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", name);
        if (!name[0] || access(path, R_OK) != 0)
            snprintf(why, sizeof why, "is not a time zone this system knows (no file %s)", path);
    }
    if (!why[0]) {
        tzset();
        bool utc_named = strncmp(tzname[0], "UTC", 3) == 0 || strncmp(tzname[0], "GMT", 3) == 0;
        if (!tzname[0][0])
            snprintf(why, sizeof why, "is not a time zone this system can read");
        else if (utc_named && timezone != 0)
            snprintf(why, sizeof why, "means %ld:%02ld hours %s UTC (a POSIX rule gives what to add to reach UTC),"
                     " yet labels its times %s", labs(timezone) / 3600, labs(timezone) % 3600 / 60,
                     timezone > 0 ? "behind" : "ahead of", tzname[0]);
    }
    if (!why[0])
        return;
    cli_fail(0, "TZ=%.64s %s: times are shown in UTC; set TZ to a zone such as America/New_York, Europe/Berlin"
                " or Asia/Kolkata (ls /usr/share/zoneinfo)", tz, why);
    setenv("TZ", "UTC", 1);
    tzset();
}

void cli_time(uint64_t ms, char *buf, size_t len)
{
    if (!ms) {
        snprintf(buf, len, "-");
        return;
    }
    check_zone();
    time_t t = (time_t)(ms / 1000u);
    struct tm tm;
    localtime_r(&t, &tm);
    /* The zone goes with the time: the care team spans zones, and the audit commands,
     * errors and JSON print UTC, so a bare 13:50 could be either. */
    strftime(buf, len, "%Y-%m-%d %H:%M %Z", &tm);
}

void cli_overdue_more(uint32_t total, size_t shown)
{
    if (total <= shown)
        return;
    uint32_t more = total - (uint32_t)shown;
    printf("... and %" PRIu32 " more medication change%s with overdue acknowledgements, not listed here (these %zu"
           " are the most urgent, then the oldest): see them marked OVERDUE in liaison outbox --type med-change"
           " --limit 10000\n",
           more, more == 1 ? "" : "s", shown);
}

void cli_time_column(uint64_t ms, char *buf, size_t len)
{
    cli_time(ms, buf, len);
    /* The widest of the zone's two abbreviations (CET and CEST, EST and EDT): the rows of
     * a listing that spans a change of daylight saving time stay in their columns. */
    size_t width = 17 + (strlen(tzname[0]) > strlen(tzname[1]) ? strlen(tzname[0]) : strlen(tzname[1]));
    for (size_t n = strlen(buf); ms && n < width && n + 1 < len; n++) {
        buf[n] = ' ';
        buf[n + 1] = '\0';
    }
}

void cli_pad(const char *s, size_t width)
{
    size_t w = text_display_width(s);
    fputs(s, stdout);
    for (; w < width; w++)
        fputc(' ', stdout);
}

void cli_time_iso(uint64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000u);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", base, (unsigned)(ms % 1000u));
}

json_t *cli_json_time(uint64_t ms)
{
    if (!ms)
        return json_null();
    char buf[40];
    cli_time_iso(ms, buf, sizeof buf);
    return json_string(buf);
}

const char *cli_zone_name(void)
{
    check_zone();
    const char *tz = getenv("TZ");
    if (tz && tz[0])
        return tz[0] == ':' ? tz + 1 : tz;
    /* No TZ: the system's zone, /etc/localtime, by the abbreviation of now. */
    static char abbr[16];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    if (strftime(abbr, sizeof abbr, "%Z", &tm) == 0)
        snprintf(abbr, sizeof abbr, "the local zone");
    return abbr;
}

void cli_today(char buf[11])
{
    check_zone();
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, 11, "%Y-%m-%d", &tm);
}

int cli_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 20)
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10u)
            return -1;
        v = v * 10u + d;
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* Says why s, typed after --opt, is not a time: a date-shaped value by what is wrong
 * with the date (2026-02-29, 2026-13-01), anything else by the forms taken. */
static int not_a_time(const char *opt, const char *s)
{
    char why[96];
    if (strlen(s) == 10 && s[4] == '-' && s[7] == '-' && !payload_date_problem(s, why, sizeof why) &&
        strcmp(why, "give YYYY-MM-DD") != 0)
        return cli_fail(EXIT_USAGE, "--%s: '%s' is not a date (%s)", opt, s, why);
    return cli_fail(EXIT_USAGE, "--%s: '%.40s' is not a time (YYYY-MM-DD, YYYY-MM-DDTHH:MMZ for UTC,"
                    " YYYY-MM-DDTHH:MM+05:30 with the zone's offset, or ms since 1970)", opt, s);
}

/* "YYYY-MM-DDTHH:MM[:SS[.mmm]]" followed by Z (s_zone 'Z'), by an RFC 3339 offset
 * "+05:30" / "-08:00" (s_zone '+' or '-', *offset_s its seconds east of UTC), or by
 * nothing (s_zone 0). Returns 0 with the wall-clock fields read as UTC into *ms, or -1. */
static int split_time(const char *s, uint64_t *ms, char *s_zone, long *offset_s)
{
    size_t n = strlen(s);
    char body[48];
    *s_zone = 0;
    *offset_s = 0;
    if (n < 16 || n > 40 || s[10] != 'T')
        return -1;
    const char *tail = s + n - 6;
    if (s[n - 1] == 'Z') {
        *s_zone = 'Z';
        n--;
    } else if ((tail[0] == '+' || tail[0] == '-') && tail[3] == ':' && strspn(tail + 1, "0123456789") == 2 &&
               strspn(tail + 4, "0123456789") == 2) {
        int hh = atoi(tail + 1), mm = atoi(tail + 4);
        if (hh > 23 || mm > 59)
            return -1;
        *s_zone = tail[0];
        *offset_s = (tail[0] == '+' ? 1 : -1) * (long)(hh * 3600 + mm * 60);
        n -= 6;
    }
    snprintf(body, sizeof body, "%.*sZ", (int)n, s);
    return text_parse_time(body, ms);
}

/* The time s says, if it is a time of day with an offset ("2026-11-25T10:02+05:30"). */
static int parse_offset_time(const char *s, uint64_t *ms)
{
    char zone;
    long off;
    uint64_t wall;
    if (split_time(s, &wall, &zone, &off) != 0 || (zone != '+' && zone != '-'))
        return -1;
    int64_t t = (int64_t)wall - (int64_t)off * 1000;
    if (t < 0)
        return -1;
    *ms = (uint64_t)t;
    return 0;
}

int cli_parse_when_local(const char *opt, const char *s, uint64_t *ms)
{
    char why[96], zone;
    long off;
    uint64_t wall;
    if (split_time(s, &wall, &zone, &off) == 0 && zone == 0) {
        /* A time of day with no zone is the local one, as the listing prints it. */
        check_zone();
        time_t w = (time_t)(wall / 1000u);
        struct tm tm;
        if (!gmtime_r(&w, &tm))
            return not_a_time(opt, s);
        tm.tm_isdst = -1;
        time_t t = mktime(&tm);
        if (t == (time_t)-1 || t < 0)
            return not_a_time(opt, s);
        *ms = (uint64_t)t * 1000u + wall % 1000u;
        return 0;
    }
    if (!payload_date_problem(s, why, sizeof why))
        return cli_parse_when(opt, s, ms);
    /* A date is the day the listing shows it on: from midnight in the local zone, as the
     * times of inbox, outbox and patient are printed (a date read as 00:00 UTC would
     * hide from a doctor at UTC+5:30 what reached her that morning before 05:30). */
    check_zone();
    struct tm tm = {.tm_year = atoi(s) - 1900, .tm_mon = atoi(s + 5) - 1, .tm_mday = atoi(s + 8), .tm_isdst = -1};
    time_t t = mktime(&tm); /* a midnight skipped by a DST change is taken as the hour after */
    if (t == (time_t)-1 || t < 0)
        return not_a_time(opt, s);
    *ms = (uint64_t)t * 1000u;
    return 0;
}

uint64_t cli_until_extent(const char *s)
{
    if (strlen(s) == 10 && s[4] == '-')
        return 86400000u - 1u;
    const char *t = strchr(s, 'T');
    if (!t || strlen(t) < 6 || t[3] != ':')
        return 0;
    if (t[6] != ':')
        return 60000u - 1u;
    return strlen(t) > 9 && t[9] == '.' ? 0 : 1000u - 1u;
}

int cli_parse_until_local(const char *opt, const char *s, uint64_t *ms)
{
    int rc = cli_parse_when_local(opt, s, ms);
    if (rc)
        return rc;
    if (!(strlen(s) == 10 && s[4] == '-')) {
        *ms += cli_until_extent(s);
        return 0;
    }
    /* The next local midnight: mktime normalizes the 32nd of a month, and a midnight a
     * DST change skips is taken as the hour after, as cli_parse_when_local does. */
    struct tm tm = {.tm_year = atoi(s) - 1900, .tm_mon = atoi(s + 5) - 1, .tm_mday = atoi(s + 8) + 1, .tm_isdst = -1};
    time_t t = mktime(&tm);
    if (t == (time_t)-1 || t <= 0)
        return cli_fail(EXIT_USAGE, "--%s: '%.40s' is not a date this system can place", opt, s);
    *ms = (uint64_t)t * 1000u - 1u;
    return 0;
}

int cli_parse_when(const char *opt, const char *s, uint64_t *ms)
{
    if (text_parse_time(s, ms) != 0 && parse_offset_time(s, ms) != 0)
        return not_a_time(opt, s);
    /* Ten or eleven digits are seconds (date +%s), which read as milliseconds would be a
     * day of January 1970 and filter nothing out. */
    if (strspn(s, "0123456789") == strlen(s) && *ms >= 1000000000u && *ms < 100000000000u)
        return cli_fail(EXIT_USAGE, "--%s: %s looks like seconds since 1970; the value is milliseconds (%s000) or a"
                        " date (YYYY-MM-DD)", opt, s, s);
    return 0;
}

/* jansson reports a failed allocation only by returning NULL, and json_object_set_new,
 * json_array_append_new and json_pack's "o" take that NULL in silence; protobuf-c's
 * unpack returns the same NULL for out of memory as for bytes that are not the message.
 * An answer made while memory ran out would come out valid, and short of a recipient,
 * an entry or a message's content. So every allocation of the two libraries goes
 * through cli_alloc, which notes a failure, and an answer made while one failed is not
 * printed (cli_json_out), or is followed by an error (cli_json_check). */
static bool alloc_failed, json_reported;

static void *cli_alloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        alloc_failed = true;
    return p;
}

static void *pb_alloc(void *data, size_t n)
{
    (void)data;
    return cli_alloc(n);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static ProtobufCAllocator pb_allocator = {.alloc = pb_alloc, .free = pb_free};

ProtobufCAllocator *cli_pb(void)
{
    return &pb_allocator;
}

void cli_alloc_init(void)
{
    json_set_alloc_funcs(cli_alloc, free);
}

bool cli_alloc_failed(void)
{
    return alloc_failed;
}

static int json_lost(bool printed)
{
    if (json_reported)
        return EXIT_OUTPUT_LOST;
    json_reported = true;
    const char *shown = printed ? "what was printed may be short of items" : "it was not printed";
    const char *done = cli_done_what();
    if (done[0])
        return cli_fail(EXIT_OUTPUT_LOST, "%s, but out of memory: its answer could not be made whole and %s (it is"
                        " done: do not repeat the command; see: %s)", done, shown, cli_done_check());
    return cli_fail(EXIT_OUTPUT_LOST, "out of memory: the answer could not be made whole and %s (try again)", shown);
}

int cli_json_out(json_t *j)
{
    /* Made whole first, then written: a document cut by a failure half-way through
     * json_dumpf would be left on standard output. */
    char *text = j && !alloc_failed ? json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    if (!text || alloc_failed) {
        free(text);
        alloc_failed = true; /* j itself was NULL: its making failed */
        return json_lost(false);
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
    return 0;
}

int cli_json_check(int rc)
{
    return rc == 0 && alloc_failed ? json_lost(true) : rc;
}

json_t *cli_json_hex(const uint8_t *data, size_t len)
{
    if (!len)
        return json_null();
    char *hex = cli_alloc(len * 2 + 1);
    if (!hex)
        return NULL;
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[data[i] >> 4];
        hex[2 * i + 1] = digits[data[i] & 15];
    }
    hex[2 * len] = 0;
    json_t *j = json_string(hex);
    free(hex);
    return j;
}

/* Whether the comma-separated list names id (spaces around a name ignored, as the
 * daemon does). */
static bool names(const char *list, const char *id)
{
    size_t n = strlen(id);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *end = e;
        while (end > p && end[-1] == ' ')
            end--;
        if ((size_t)(end - p) == n && strncmp(p, id, n) == 0)
            return true;
        p = e;
    }
    return false;
}

/* The id printed for a message to a peer this node cannot reach now looks like any
 * other, and an urgent change would wait unseen: says on stderr, per such recipient,
 * that it is queued. Says nothing if the status cannot be had (the send succeeded). */
static void say_queued(liaison_client_t *c, const char *to)
{
    if (!to || !to[0])
        return;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_STATUS;
    rq.status = true;
    Liaison__Control__Response *r = NULL;
    if (liaison_call_pb(c, &rq, &r) == LIAISON_OK && r->result_case == LIAISON__CONTROL__RESPONSE__RESULT_STATUS) {
        for (size_t i = 0; i < r->status->n_peers; i++) {
            const Liaison__Control__PeerInfo *p = r->status->peers[i];
            if (p->connected || !names(to, p->id))
                continue;
            char why[320] = "";
            if (p->transport_error[0])
                text_printable(why, sizeof why, p->transport_error);
            fprintf(stderr,
                    "liaison: %s is not connected now%s%s%s: the message is stored and queued for %s and goes out"
                    " when %s can be reached (see: liaison outbox)\n",
                    p->id, why[0] ? " (" : "", why, why[0] ? ")" : "", p->id, p->id);
        }
    }
    if (r)
        liaison__control__response__free_unpacked(r, NULL);
}

/* What a message of content type ct is called in what the command says about it. */
static const char *sent_what(uint32_t ct)
{
    return ct == 2 ? "the progress note" : ct == 3 ? "the medication change" : ct == 5 ? "the review message"
                                                                                        : "the message";
}

/* The option a payload field is typed with, for "FIELD: problem" errors of the payload
 * check: the clinician typed --effective, not "effective date". NULL if none. */
static const char *field_option(const char *field, size_t len)
{
    static const char *const map[][2] = {
        {"patient label", "--label"},       {"subject", "--subject"},
        {"session date", "--session-date"}, {"next session date", "--next-session"},
        {"risk text", "--risk-note"},       {"adherence", "--adherence"},
        {"side effects", "--side-effects"}, {"goals", "--goals"},
        {"medication", "--drug"},           {"previous dose", "--from"},
        {"new dose", "--dose"},             {"previous frequency", "--from-frequency"},
        {"new frequency", "--frequency"},   {"previous medication", "--from-drug"},
        {"effective date", "--effective"},  {"reason", "--reason"},
        {"monitor", "--monitor"},           {"comment", "--comment"},
        {"question", "--question"},         {"decision", "--decision"},
        {"patient", "--patient"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i][0]) == len && strncmp(field, map[i][0], len) == 0)
            return map[i][1];
    return NULL;
}

/* Reports what the payload check refused (err is "FIELD: problem"), naming the option the
 * field was typed with and, for a problem of encoding or length, what to do about it. */
static int payload_refused(const char *err)
{
    const char *colon = strstr(err, ": ");
    const char *opt = colon ? field_option(err, (size_t)(colon - err)) : NULL;
    size_t field = opt ? (size_t)(colon - err) : 0;
    const char *hint = "";
    /* Non-ASCII text typed in a terminal or file that is not UTF-8 (Latin-1 "ü" is the
     * byte 0xfc), and limits in bytes that letters outside ASCII fill 2 to 4 at a time. */
    if (strstr(err, "is not valid UTF-8"))
        hint = "; liaison takes UTF-8 text: set the terminal to UTF-8 (LANG=C.UTF-8) or convert the text"
               " (iconv -t UTF-8)";
    else if (strncmp(err, "patient: the id", 15) == 0)
        hint = " (the team's chart id, e.g. P-1042, not the patient's name)";
    else if (strstr(err, "is longer than") && strstr(err, "bytes"))
        hint = "; a letter outside A-Z (é, ü, Ω, 田) takes 2 to 4 of those bytes";
    if (opt) /* "effective date (--effective): ..." */
        return cli_fail(EXIT_USAGE, "%.*s (%s)%s%s (nothing was sent)", (int)field, err, opt, colon, hint);
    return cli_fail(EXIT_USAGE, "%s%s (nothing was sent)", err, hint);
}

int cli_send(cli_t *cli, const char *to, uint32_t ct, const ProtobufCMessage *msg, const uint8_t *thread,
             unsigned flags, char id[LIAISON_ID_HEX])
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return cli_fail(EXIT_REFUSED, "out of memory");
    protobuf_c_message_pack(msg, buf);
    char err[300];
    if (payload_validate(ct, buf, len, NULL, err, sizeof err) != 0) {
        free(buf);
        return payload_refused(err);
    }
    int code = 0;
    liaison_client_t *c = cli_control(cli, &code);
    if (!c) {
        free(buf);
        return code;
    }
    cli_catch_interrupt();
    liaison_rc rc = liaison_send_flags(c, to, ct, buf, len, thread, flags, id);
    free(buf);
    if (rc == LIAISON_INTERRUPTED)
        return cli_fail_interrupted(sent_what(ct), "liaison outbox");
    if (rc != LIAISON_OK)
        return cli_fail(cli_exit_code(rc), "%s", liaison_client_error(c));
    cli_done("liaison outbox", "%s was stored and sent as %s", sent_what(ct), id);
    say_queued(c, to);
    return 0;
}
