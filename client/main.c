/* SPDX-License-Identifier: Apache-2.0 */
/* liaison: the command line of a care-team node. Owns the command table, global
 * options and help; each command family lives in its own cmd_*.c file. */
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "audit.h"
#include "cli.h"
#include "payload.h"
#include "term.h"
#include "text.h"

typedef struct command {
    const char *name;
    int (*run)(cli_t *cli, int argc, char **argv);
    const char *usage;
    const char *subs; /* its subcommands, space-separated, for typo suggestions ("peer-add") */
} command_t;

static const command_t commands[] = {
    {"init", cmd_init,
     "init --id ID [--name NAME] --role ROLE [--org ORG] --listen ENDPOINT [--advertise ENDPOINT]\n"
     "        create this node: keys, configuration, empty database (--listen tcp://IP|[IPv6]|*:PORT\n"
     "        to bind, --advertise tcp://HOST:PORT for peers to dial)", NULL},
    {"card", cmd_card, "card [--fresh]            print this node's signed contact card (one line; --fresh: made\n"
                       "        by the daemon from liaison.conf now, for peers after an endpoint or name changed)", NULL},
    {"fingerprint", cmd_fingerprint, "fingerprint [ID]          fingerprint of this node's (or a peer's) identity key",
     NULL},
    {"status", cmd_status, "status                    the daemon, its peers, queue, overdue acknowledgements, alarms",
     NULL},
    {"peer", cmd_peer,
     "peer add FILE|- [--replace] | peer list | peer remove ID\n"
     "        manage the directory of care-team nodes",
     "add list remove"},
    {"send", cmd_send, "send --to ID[,ID...] [--subject S] [--thread ID] FILE|-   send a free-text message", NULL},
    {"inbox", cmd_inbox,
     "inbox [--patient P] [--type T] [--unread] [--needs-ack] [--since DATE] [--until DATE] [--limit N]\n"
     "        messages received, newest first (overdue acknowledgements above them)", NULL},
    {"outbox", cmd_outbox, "outbox [--patient P] [--type T] [--since DATE] [--until DATE] [--limit N]\n"
                           "        messages sent, with delivery and acknowledgement state", NULL},
    {"show", cmd_show, "show MSG_ID               read one message (marks it read; the read is audited)", NULL},
    {"thread", cmd_thread, "thread ID                 every message of a thread or review, oldest first", NULL},
    {"ack", cmd_ack, "ack MSG_ID [--comment TEXT]   acknowledge a message (closes the loop); the acknowledgement and\n"
                     "        its comment go to the author and to every other recipient of the message", NULL},
    {"wait", cmd_wait,
     "wait MSG_ID [--timeout DURATION] [--ack]   wait until a message you sent is delivered to every\n"
     "        recipient (or rejected), with --ack also acknowledged (DURATION: seconds, or e.g. 90s, 15m, 2h;\n"
     "        default 60s, at most 24h); exit 0 all delivered, 3 some rejected, 5 not settled in time", NULL},
    {"note", cmd_note,
     "note --to ID[,ID...] --patient P [--label L] [--session-date D] [--modality M] [--phq9 N] [--gad7 N]\n"
     "        [--score NAME=N/MIN-MAX]... [--risk LEVEL [--risk-note TEXT]] [--adherence TEXT]\n"
     "        [--side-effects TEXT] [--goals TEXT] [--next-session D] (--file F | -)   send a progress note\n"
     "        (--label L, e.g. initials, is sent encrypted with the patient id and shown to every recipient;\n"
     "        --distinct-patient: the id differs only in letter case from one on this node and is another patient)",
     NULL},
    {"med-change", cmd_med_change,
     "med-change --to ID[,ID...] --patient P [--label L] --drug NAME --action ACTION [--from DOSE] [--dose DOSE]\n"
     "        [--from-frequency F] [--frequency F] [--from-drug NAME] --reason TEXT [--monitor TEXT]\n"
     "        [--urgent] [--effective DATE] [--no-ack] [--distinct-patient]   flag a medication change\n"
     "        (start: --dose, no --from; stop, hold: --from, no --dose; increase, decrease: both;\n"
     "        switch: both and --from-drug; --label L is sent encrypted and shown to every recipient)", NULL},
    {"patient", cmd_patient, "patient P [--since DATE]  timeline of one patient on this node, with PHQ-9/GAD-7 trend",
     NULL},
    {"review", cmd_review,
     "review open --with ID[,ID...] --patient P [--label L] --question TEXT [--distinct-patient]\n"
     "        review reply REVIEW_ID (--file F | -) | review add REVIEW_ID ID\n"
     "        review close REVIEW_ID --decision TEXT [--action \"OWNER: TEXT by DATE\"]...\n"
     "        (OWNER a participant of the review, DATE YYYY-MM-DD)\n"
     "        review show REVIEW_ID | review list [--open|--all]\n"
     "        (--label L is sent encrypted with the patient id and shown to every participant)",
     "open reply add close show list"},
    {"audit", cmd_audit,
     "audit log [--since T] [--until T] [--peer ID] [--patient P] [--action A] [--message MSG_ID]\n"
     "            [--limit N]\n"
     "        audit verify [--db FILE [--card FILE] [--checkpoint FILE]]\n"
     "        audit prove SEQ | audit verify-proof FILE [--card FILE]\n"
     "        audit disclosures --patient P [--since T] [--until T]\n"
     "        audit export [--format jsonl|fhir] [--since T] [--until T] [--output FILE]   (default: jsonl)\n"
     "        audit checkpoint [--peer ID] [--output FILE]   this node's latest signed checkpoint, or the\n"
     "        latest one of peer ID's log this node witnessed (for: audit verify --checkpoint FILE)\n"
     "        audit accept-restore NODE   peer NODE was restored from a backup: witness it again from its\n"
     "        next checkpoint (its alarms stay)",
     "log verify prove verify-proof disclosures export checkpoint accept-restore"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* Copies into buf the first word of subs (space-separated) within `distance` typos of
 * word (0: equal to it). Returns whether there is one. */
static bool near_sub(const char *word, const char *subs, size_t distance, char *buf, size_t len)
{
    for (const char *p = subs; *p;) {
        size_t n = strcspn(p, " ");
        snprintf(buf, len, "%.*s", (int)n, p);
        if (text_edit_distance(word, buf, distance) <= distance)
            return true;
        p += n + strspn(p + n, " ");
    }
    return false;
}

/* The command a mistyped name most likely meant, quoted, into buf (each after prefix):
 * 'peer add' for peer-add, peer_add, peeradd or "peer add" as one word (or one letter
 * off the subcommand); the commands that have the name as a subcommand ('audit verify'
 * for verify; 'peer add' or 'review add' for add); else the nearest command within two
 * typos ('inbox' for inbx). Returns false if none is near. */
static bool near_command(const char *name, const char *prefix, char *buf, size_t len)
{
    char sub[32];
    for (size_t k = 0; k < N_COMMANDS; k++) {
        size_t n = strlen(commands[k].name);
        if (!commands[k].subs || strncmp(name, commands[k].name, n) != 0)
            continue;
        const char *tail = name + n + strspn(name + n, " -_.:/");
        if (tail[0] && near_sub(tail, commands[k].subs, strlen(tail) > 2 ? 1 : 0, sub, sizeof sub)) {
            snprintf(buf, len, "'%s%s %s'", prefix, commands[k].name, sub);
            return true;
        }
    }
    size_t owners = 0, used = 0;
    for (size_t k = 0; k < N_COMMANDS && used < len; k++)
        if (commands[k].subs && near_sub(name, commands[k].subs, 0, sub, sizeof sub))
            used += (size_t)snprintf(buf + used, len - used, "%s'%s%s %s'", owners++ ? " or " : "", prefix,
                                     commands[k].name, sub);
    if (owners)
        return true;
    size_t best = 3;
    for (size_t k = 0; k < N_COMMANDS; k++) {
        size_t d = text_edit_distance(name, commands[k].name, 2);
        if (d < best) {
            best = d;
            snprintf(buf, len, "'%s%s'", prefix, commands[k].name);
        }
    }
    return best < 3;
}

/* Prints "  LABEL: a, b, c" wrapped at 100 columns, continuation lines indented. */
static void values_line(FILE *out, const char *label, const char *list)
{
    size_t col = (size_t)fprintf(out, "  %s:", label), indent = col + 1;
    for (const char *p = list; *p;) {
        p += strspn(p, " ");
        size_t n = strcspn(p, " ");
        if (!n)
            break;
        if (col + 1 + n > 100 && col > indent) {
            fprintf(out, "\n%*s", (int)indent, "");
            col = indent;
        } else {
            fputc(' ', out);
            col++;
        }
        col += (size_t)fprintf(out, "%.*s", (int)n, p);
        p += n;
    }
    fputc('\n', out);
}

/* Says a command (or, for help, a help topic) is unknown, in lines that stay on the
 * screen: the command meant when a typo explains it, else the names of the commands;
 * then where the full help is. Returns EXIT_USAGE. */
static int unknown_command(const char *name, bool help)
{
    char near[128];
    if (near_command(name, help ? "help " : "", near, sizeof near)) {
        cli_fail(EXIT_USAGE, "%sunknown command '%.40s' (did you mean %s?)", help ? "help: " : "", name, near);
    } else {
        char list[256];
        size_t used = 0;
        for (size_t k = 0; k < N_COMMANDS && used < sizeof list; k++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s ", commands[k].name);
        if (used < sizeof list)
            snprintf(list + used, sizeof list - used, "help");
        cli_fail(EXIT_USAGE, "%sunknown command '%.40s'", help ? "help: " : "", name);
        values_line(stderr, "the commands", list);
    }
    fprintf(stderr, "(liaison help lists every command)\n");
    return EXIT_USAGE;
}

/* The values an option of command `name` takes, under its usage (liaison help NAME):
 * the same lists its errors name, from the tables that check them. */
static void usage_values(FILE *out, const char *name)
{
    char list[1024];
    if (strcmp(name, "init") == 0) {
        fprintf(out, "\n");
        values_line(out, "ROLE", text_roles());
    } else if (strcmp(name, "note") == 0) {
        fprintf(out, "\n");
        values_line(out, "--modality M", payload_enum_names("modality"));
        values_line(out, "--risk LEVEL", payload_enum_names("risk"));
        values_line(out, "--phq9 N", "0 to 27");
        values_line(out, "--gad7 N", "0 to 21");
    } else if (strcmp(name, "med-change") == 0) {
        fprintf(out, "\n");
        values_line(out, "--action ACTION", payload_enum_names("action"));
        fprintf(out, "  --urgent shortens the deadline for acknowledging the change: it cannot go with --no-ack\n");
    } else if (strcmp(name, "inbox") == 0) {
        fprintf(out, "\n");
        values_line(out, "--type T", "text, note, med-change, ack, review (or progress-note, medication-change,"
                                     " acknowledgement, case-review)");
    } else if (strcmp(name, "audit") == 0) {
        audit_actions_list(list, sizeof list);
        fprintf(out, "\n");
        values_line(out, "--action A", list);
    }
}

static const char exit_status[] =
    "Exit status: 0 ok, 1 bad usage or input (nothing was done), 2 daemon unreachable, 3 refused or not\n"
    "found, 4 audit verification failed, 5 liaison wait timed out (delivery goes on), 6 the output could\n"
    "not be written (standard error says what was done, if anything: a message sent, a peer added...;\n"
    "do not repeat it), 130 interrupted by Ctrl-C (a message may already be sent). See liaison(1).\n";

/* The most an --args file may hold: far more than any command's options. */
#define ARGS_FILE_MAX 65536

/* --args FILE given after the command ("liaison note --args FILE ..."): taken out of the
 * command's arguments as if given before it, where the file's lines go after them all
 * the same. A bare "--args" there is never a value (cli_parse refuses an option as an
 * option's value, and "--opt=--args" is one argument), and after "--" it is a name.
 * out (room for argc) gets the rest. Returns 0 or EXIT_USAGE, having said why. */
static int take_args_option(int argc, char **argv, char **out, int *n_out, const char **args_file)
{
    int n = 0, i = 0;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--args") != 0 && strncmp(argv[i], "--args=", 7) != 0) {
            out[n++] = argv[i];
            continue;
        }
        const char *f = argv[i][6] == '=' ? argv[i] + 7 : i + 1 < argc ? argv[++i] : "";
        if (!f[0])
            return cli_fail(EXIT_USAGE, "--args needs a file: liaison --args FILE COMMAND ... (one argument per line)");
        if (*args_file)
            return cli_fail(EXIT_USAGE, "--args given twice: give one file");
        *args_file = f;
    }
    for (; i < argc; i++)
        out[n++] = argv[i];
    *n_out = n;
    return 0;
}

/* The command's arguments with those of --args FILE after them: one argument per line
 * of FILE (a trailing CR dropped; empty lines and lines starting with '#' skipped), so
 * that a patient's id and clinical values need not be on the command line, where every
 * local account can read them (/proc/PID/cmdline, ps). FILE must be this user's alone,
 * as key files are (keys_load): one that group or others can read is refused, not read,
 * so that the ids it holds are not left readable. *buf holds the file (the caller wipes
 * and frees it, and frees *out and *line_of); (*line_of)[j] is the line of FILE that
 * argument argc + j is on. Returns 0 or an exit code, having said why. */
static int args_from_file(const char *path, int argc, char **argv, char ***out, int *n_out, char **buf,
                          unsigned **line_of)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--") == 0)
            return cli_fail(EXIT_USAGE, "--args: the command line has '--', after which the file's options would be"
                                        " names: give the file's arguments without '--' on the command line");
    FILE *f = fopen(path, "rb");
    if (!f)
        return cli_fail(EXIT_USAGE, "--args: cannot open '%.200s': %s", path, strerror(errno));
    /* A regular file only: a pipe (--args <(...)) or /dev/stdin is the user's own. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        fclose(f);
        return cli_fail(EXIT_USAGE, "--args: '%.200s' is accessible by group or others (mode %04o), and it is meant"
                        " for a patient's id and clinical values: run chmod 600 %.200s, then the command again"
                        " (nothing was done)", path, (unsigned)(st.st_mode & 07777), path);
    }
    *buf = malloc(ARGS_FILE_MAX + 1);
    size_t len = *buf ? fread(*buf, 1, ARGS_FILE_MAX + 1, f) : 0;
    bool bad = *buf && ferror(f);
    fclose(f);
    if (!*buf)
        return cli_fail(EXIT_REFUSED, "out of memory");
    if (bad || len > ARGS_FILE_MAX)
        return cli_fail(EXIT_USAGE, "--args: '%.200s' %s", path,
                        bad ? "cannot be read" : "is longer than 64 KiB (one argument per line)");
    (*buf)[len] = 0;
    if (memchr(*buf, 0, len))
        return cli_fail(EXIT_USAGE, "--args: '%.200s' holds a NUL byte (one argument per line, text)", path);
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += (*buf)[i] == '\n';
    *out = calloc((size_t)argc + lines + 1, sizeof **out);
    *line_of = calloc(lines, sizeof **line_of);
    if (!*out || !*line_of)
        return cli_fail(EXIT_REFUSED, "out of memory");
    int n = 0;
    for (int i = 0; i < argc; i++)
        (*out)[n++] = argv[i];
    char *p = *buf, *end = *buf + len;
    for (unsigned no = 1; p < end; no++) {
        char *line = p, *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line[l] = 0;
        p = nl ? nl + 1 : end;
        if (l && line[l - 1] == '\r')
            line[--l] = 0;
        if (l && line[0] != '#') {
            (*line_of)[n - argc] = no;
            (*out)[n++] = line;
        }
    }
    *n_out = n;
    return 0;
}

static int usage(FILE *out, const char *only)
{
    fprintf(out, "usage: liaison [--home DIR] [--json] [--args FILE] COMMAND ...\n\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!only || strcmp(only, commands[i].name) == 0)
            fprintf(out, "  %s\n", commands[i].usage);
    if (only)
        usage_values(out, only);
    if (!only)
        fprintf(out,
                "  help [COMMAND]            this list, or the usage of one command (also: COMMAND --help)\n"
                "\nThe node's home is --home DIR, else $LIAISON_HOME, else the system layout (/etc/liaison,\n"
                "/var/lib/liaison, /run/liaison). --json prints machine-readable output. --args FILE adds\n"
                "the lines of FILE (mode 0600), one argument each, after the command's own: a patient's id\n"
                "and clinical values on the command line can be read by every local account (ps).\n%s",
                exit_status);
    return out == stderr ? EXIT_USAGE : 0;
}

/* The usage of one command (cli_t.help, for cli_parse): on stdout for --help, on stderr
 * under an error. */
static int command_help(FILE *out, const char *name)
{
    return usage(out, name);
}

/* liaison help help */
static int usage_help(void)
{
    printf("usage: liaison help [COMMAND]\n\n"
           "  help                      the list of commands, global options and exit statuses\n"
           "  help COMMAND              the usage of one command and the values its options take\n"
           "                            (the same as: liaison COMMAND --help)\n");
    return 0;
}

/* After a command ran: output that did not reach its file (a full disk: "liaison card >
 * alvarez.card", a closed pipe or descriptor) is a failure, not a success with an empty
 * or cut file. What the command did (a message sent) is done all the same: say so, and
 * exit with a status of its own, so that a script does not take it for refused and do it
 * again. */
static int check_output(int rc)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return rc;
    int err = term_stdout_error() ? term_stdout_error() : errno;
    const char *done = cli_done_what();
    if (rc != 0)
        return rc; /* the command failed already, and said why */
    if (done[0])
        return cli_fail(EXIT_OUTPUT_LOST, "%s, but standard output could not be written: %s (it is done: do not"
                        " repeat the command; see: %s)", done, strerror(err), cli_done_check());
    return cli_fail(EXIT_OUTPUT_LOST, "cannot write standard output: %s (the output is incomplete)", strerror(err));
}

int main(int argc, char **argv)
{
    /* No core dump: one would hold what this command reads or writes in the clear (a
     * note being sent, a patient's timeline shown), as the daemon's would (liaisond(8)).
     * The limit is for a dump handler that ignores the flag. */
    struct rlimit no_core = {0, 0};
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &no_core) != 0)
        return cli_fail(EXIT_REFUSED, "cannot turn core dumps off: %s", strerror(errno));
    /* Before anything is opened: a closed standard descriptor would be taken by the first
     * file or socket, and what is printed would go into it. */
    if (term_hold_std_fds() != 0)
        return cli_fail(EXIT_REFUSED, "standard input, output or error is closed and /dev/null cannot be opened"
                                      " in its place: %s", strerror(errno));
    if (sodium_init() < 0)
        return cli_fail(EXIT_REFUSED, "libsodium could not be initialised");
    /* Before anything is printed: text from other nodes must never reach the terminal
     * with bidirectional or terminal controls in effect. */
    if (term_guard() != 0)
        return cli_fail(EXIT_REFUSED, "cannot set up standard output: %s", strerror(errno));
    cli_alloc_init();
    cli_t cli = {0};
    const char *args_file = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            cli.json = true;
        } else if (strcmp(argv[i], "--args") == 0 || strncmp(argv[i], "--args=", 7) == 0) {
            const char *f = argv[i][6] == '=' ? argv[i] + 7 : i + 1 < argc ? argv[++i] : "";
            if (!f[0])
                return cli_fail(EXIT_USAGE, "--args needs a file: liaison --args FILE COMMAND ... (one argument per"
                                            " line)");
            if (args_file)
                return cli_fail(EXIT_USAGE, "--args given twice: give one file");
            args_file = f;
        } else if (strcmp(argv[i], "--home") == 0 || strncmp(argv[i], "--home=", 7) == 0) {
            const char *dir = argv[i][6] == '=' ? argv[i] + 7 : i + 1 < argc ? argv[++i] : "";
            if (!dir[0])
                return cli_fail(EXIT_USAGE, "--home needs a directory: liaison --home DIR COMMAND ...");
            if (cli.home && strcmp(cli.home, dir) != 0)
                return cli_fail(EXIT_USAGE,
                                "--home given twice ('%.200s' and '%.200s'): give the node's directory once",
                                cli.home, dir);
            cli.home = dir;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return check_output(usage(stdout, NULL));
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("liaison %s\n", LIAISON_VERSION);
            return check_output(0);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_fail(EXIT_USAGE, "unknown option '%.40s' (before the command: --home DIR, --json, --args FILE, --help,"
                                 " --version; a command's own options go after it)", argv[i]);
            return usage(stderr, NULL);
        } else {
            break;
        }
    }
    if (i == argc)
        return usage(stderr, NULL);
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        const char *only = i + 1 < argc ? argv[i + 1] : NULL;
        if (only && (strcmp(only, "help") == 0 || strcmp(only, "--help") == 0 || strcmp(only, "-h") == 0))
            return check_output(usage_help());
        bool known = !only;
        for (size_t k = 0; k < N_COMMANDS && !known; k++)
            known = strcmp(only, commands[k].name) == 0;
        if (!known)
            return unknown_command(only, true);
        return check_output(usage(stdout, only));
    }
    for (size_t k = 0; k < N_COMMANDS; k++) {
        if (strcmp(name, commands[k].name) != 0)
            continue;
        cli.cmd = cli.top = name;
        cli.help = command_help;
        /* "liaison review --help" (before a subcommand is read); further on, cli_parse
         * takes --help where an option may stand, and never as a value: "--subject -h"
         * sends the subject "-h", "-- --help" names a file. */
        if (i + 1 < argc && (strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0))
            return check_output(usage(stdout, name));
        char **cargv = calloc((size_t)(argc - i), sizeof *cargv), **joined = NULL, *file_buf = NULL;
        unsigned *line_of = NULL;
        int cargc = 0;
        if (!cargv)
            return cli_fail(EXIT_REFUSED, "out of memory");
        int rc = take_args_option(argc - i - 1, argv + i + 1, cargv, &cargc, &args_file), own = cargc;
        if (rc == 0 && args_file)
            rc = args_from_file(args_file, own, cargv, &joined, &cargc, &file_buf, &line_of);
        if (rc == 0 && joined) { /* so that an error names a line of the file, not its value */
            cli.args_file = args_file;
            cli.args_argv = joined + own;
            cli.args_line = line_of;
            cli.n_args = (size_t)(cargc - own);
        }
        if (rc == 0)
            rc = commands[k].run(&cli, cargc, joined ? joined : cargv);
        if (file_buf) { /* it may hold a patient's id and clinical values */
            sodium_memzero(file_buf, ARGS_FILE_MAX + 1);
            free(file_buf);
        }
        free(joined);
        free(line_of);
        free(cargv);
        if (rc == EXIT_HELP_SHOWN)
            rc = 0;
        cli_close(&cli);
        rc = check_output(cli_json_check(rc));
        /* Ctrl-C during a request was caught to say what may have happened (or, if the
         * answer came first, what did). End as Ctrl-C ends a process, so that a shell
         * loop or script running liaison stops there too (the shell shows status 130). */
        if (cli_interrupted()) {
            signal(SIGINT, SIG_DFL);
            raise(SIGINT);
            rc = EXIT_INTERRUPTED;
        }
        return rc;
    }
    return unknown_command(name, false);
}
