/* SPDX-License-Identifier: Apache-2.0 */
/* The liaison command line's shared machinery: option parsing, exit codes, error
 * reporting, calls to the daemon, input files, times and JSON output. */
#ifndef LIAISON_CLI_H
#define LIAISON_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client_internal.h"
#include "config.h"

/* Exit codes (liaison(1)). */
enum {
    EXIT_OK_ = 0,
    EXIT_USAGE = 1,       /* bad usage or invalid input: nothing was done */
    EXIT_HELP_SHOWN = -1, /* cli_parse printed the command's help: main exits 0 (never an exit status) */
    EXIT_UNREACHABLE = 2, /* the daemon could not be reached */
    EXIT_REFUSED = 3,     /* refused or not found by the daemon */
    EXIT_AUDIT = 4,       /* audit verification failed */
    EXIT_PENDING = 5,     /* wait: the time ran out before the message settled */
    EXIT_OUTPUT_LOST = 6, /* the output could not be written; what the command does (send a message, add
                           * a peer...) was done all the same, and stderr says so (cli_done): repeating
                           * it would do it twice */
    EXIT_INTERRUPTED = 130, /* Ctrl-C while waiting for the daemon: main re-raises SIGINT (cli_interrupted) */
};

typedef struct cli {
    const char *home;         /* --home, or NULL ($LIAISON_HOME / systemd layout) */
    bool json;                /* --json */
    const char *cmd;          /* "peer add", for messages */
    const char *top;          /* "peer": the command, for its help */
    int (*help)(FILE *out, const char *top); /* prints the usage of a command (main.c) */
    const char *args_file;    /* --args FILE, or NULL */
    char *const *args_argv;   /* the arguments read from it, in order (main.c) */
    const unsigned *args_line; /* the line of the file each of them is on */
    size_t n_args;
    liaison_client_t *control;
    liaison_client_t *audit;
} cli_t;

#define CLI_MAX_VALUES 32
typedef struct cli_opt {
    const char *name;         /* without the leading "--" */
    bool has_arg;
    bool repeat;              /* may be given more than once */
    int count;
    const char *value;        /* the last value */
    const char *values[CLI_MAX_VALUES];
} cli_opt_t;

/* Parses argv[0..argc) against opts (terminated by a NULL name); --json and --home are
 * accepted anywhere, and --help or -h where an option may stand (not as an option's
 * value, nor after "--"). Positional arguments (including "-") go to pos. An option's
 * value may not be another option ("--to --subject x": --to needs a value; write
 * --subject=--x for a value that starts with "--"). Returns 0; EXIT_HELP_SHOWN after
 * printing the command's help; or prints what is wrong and returns EXIT_USAGE. A value
 * that came from the --args file is named by its line there (cli_args_line), never
 * shown: that file is where a patient's id and clinical values are kept off the screen. */
int cli_parse(cli_t *cli, int argc, char **argv, cli_opt_t *opts, const char **pos, size_t max_pos, size_t *n_pos);

/* The line of the --args file that arg (a pointer from the command's argv, not a copy)
 * was read from, or 0 if it was given on the command line. A command names an argument
 * from the file by its line, never by its value. */
unsigned cli_args_line(const cli_t *cli, const char *arg);

/* The option named name in opts (which must contain it). */
cli_opt_t *cli_opt(cli_opt_t *opts, const char *name);

/* Prints "liaison: MESSAGE" to stderr and returns code. */
__attribute__((format(printf, 2, 3))) int cli_fail(int code, const char *fmt, ...);

/* Records that the command has done what it was asked: a message stored and sent, an
 * acknowledgement, a peer added or removed, a message marked read, a node created. If
 * its output then cannot be written (a full disk, a closed pipe or descriptor), main
 * says on stderr "WHAT, but standard output could not be written: ERROR" and how to
 * check (`check`, a command), and exits EXIT_OUTPUT_LOST rather than the failure a
 * script would repeat. From here on SIGPIPE is ignored, so that a closed pipe is such a
 * write error, not a silent death of the process. A later call replaces the record. */
__attribute__((format(printf, 2, 3))) void cli_done(const char *check, const char *fmt, ...);

/* What cli_done recorded ("" if nothing), and its command to check it. */
const char *cli_done_what(void);
const char *cli_done_check(void);

/* Exit code for a client result. */
int cli_exit_code(liaison_rc rc);

/* From here on, Ctrl-C (SIGINT) no longer ends the process at once: it sets a flag that
 * cuts the wait for the daemon's answer short (LIAISON_INTERRUPTED), so that the command
 * can say what may have happened (cli_fail_interrupted). Call it once the request is
 * about to go out: before, while the text is typed, Ctrl-C ends the process and nothing
 * is sent. Does nothing if SIGINT is ignored (a background job). */
void cli_catch_interrupt(void);

/* Whether Ctrl-C was pressed since cli_catch_interrupt. */
bool cli_interrupted(void);

/* Says on stderr, on a line of its own, that the request was interrupted and that
 * `what` ("the message") may already be stored and sent, and how to check (`check`, a
 * command); returns EXIT_INTERRUPTED. */
int cli_fail_interrupted(const char *what, const char *check);

/* Sends rq to the control (audit = false) or audit socket and checks that the answer
 * carries the result `want` (or nothing in particular: RESULT__NOT_SET). Returns 0 with
 * *resp set (free with liaison__control__response__free_unpacked), or prints the error
 * and returns the exit code. */
int cli_call(cli_t *cli, bool audit, Liaison__Control__Request *rq, Liaison__Control__Response__ResultCase want,
             Liaison__Control__Response **resp);

/* The open control connection, or NULL after printing why. */
liaison_client_t *cli_control(cli_t *cli, int *exit_code);

/* Reads a whole file ("-" = stdin) of at most max bytes into a NUL-terminated malloc'd
 * string. Refuses NUL bytes. Returns NULL after printing why. */
char *cli_read_file(const char *path, size_t max);

/* Creates path for writing, mode 0600 whatever the umask, never over an existing file
 * or through a symbolic link (what the audit commands write holds patient tags and the
 * log's details). Returns the stream, or NULL with errno (EEXIST: it exists). */
FILE *cli_create(const char *path);

/* Strips one trailing newline (text read from a file or a pipe). */
void cli_chomp(char *s);

/* Message text from a file ("-" = stdin), as cli_read_file, with Windows line ends
 * (CRLF) turned into LF and one trailing newline stripped. A CR not followed by LF is
 * kept (and refused by the payload rules). Returns NULL after printing why. */
char *cli_read_text(const char *path, size_t max);

/* Local-time display of ms since the epoch, with the zone: "2026-11-23 14:05 EST" (the
 * zone's abbreviation from TZ; "-" for 0). A TZ that names no zone of this system is
 * said once on standard error and replaced by UTC. */
void cli_time(uint64_t ms, char *buf, size_t len);

/* After a listing of `shown` overdue acknowledgements that the daemon cut (status holds
 * at most 64), says how many more of `total` there are and where to see them. */
void cli_overdue_more(uint32_t total, size_t shown);

/* As cli_time, padded with spaces to the width of the zone's longer abbreviation, for
 * the time column of a listing (inbox, outbox, patient). */
void cli_time_column(uint64_t ms, char *buf, size_t len);

/* Prints s to stdout followed by spaces up to width terminal columns
 * (text_display_width): a table column that holds names or labels in any script. */
void cli_pad(const char *s, size_t width);

/* RFC 3339 UTC with milliseconds: "2026-11-23T14:05:09.123Z", for JSON. */
void cli_time_iso(uint64_t ms, char *buf, size_t len);
json_t *cli_json_time(uint64_t ms);  /* null for 0 */

/* The local zone, for messages about "today": TZ as given (after check_zone), or the
 * abbreviation of the system's zone ("UTC", "IST"). Static storage. */
const char *cli_zone_name(void);

/* Today's date as YYYY-MM-DD (local time). */
void cli_today(char buf[11]);

/* Parses a decimal unsigned integer in [0, max]. Returns 0 or -1. */
int cli_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* Parses a --since / --until value in UTC (YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS[.mmm]]Z, the
 * same with an RFC 3339 offset such as +05:30 instead of Z, or ms). Returns 0, or prints
 * and returns EXIT_USAGE. */
int cli_parse_when(const char *opt, const char *s, uint64_t *ms);

/* As cli_parse_when, for the commands that print local time (inbox, outbox, patient):
 * a date alone (YYYY-MM-DD) is that day's midnight in the local zone (TZ), and a time of
 * day with neither Z nor an offset is local time; the other forms are as for
 * cli_parse_when. */
int cli_parse_when_local(const char *opt, const char *s, uint64_t *ms);

/* How long the unit a time typed after --until names lasts beyond its first millisecond:
 * a day for a date (UTC), a minute for HH:MM, a second for HH:MM:SS, nothing for
 * milliseconds: "--until 2026-11-30" includes the 30th, "T04:32Z" ends at 04:32:59.999. */
uint64_t cli_until_extent(const char *s);

/* cli_parse_when_local for --until: the end of what s names, a local date's last
 * millisecond (its midnight in TZ, a day later, less 1 ms: DST days are 23 or 25 hours),
 * a time's last millisecond of the minute or second it names. */
int cli_parse_until_local(const char *opt, const char *s, uint64_t *ms);

/* Makes every jansson allocation note its failure (before any JSON is made). */
void cli_alloc_init(void);

/* The protobuf-c allocator for what the command line unpacks (payloads): notes a failure
 * as jansson's do, so that out of memory is not taken for a payload that cannot be
 * read. */
ProtobufCAllocator *cli_pb(void);

/* Whether a jansson or cli_pb allocation failed since the start: whatever was made or
 * printed from them since may be short of an item. */
bool cli_alloc_failed(void);

/* Writes j to stdout (indented) and releases it. Returns 0; or, if j is NULL or any
 * jansson allocation failed, prints nothing, says why (and what was done, see cli_done)
 * and returns EXIT_OUTPUT_LOST. */
int cli_json_out(json_t *j);

/* After a command that returned rc: rc, or EXIT_OUTPUT_LOST (said once) when rc is 0 but
 * an allocation of cli_alloc_failed's failed, so that what it printed may be short. */
int cli_json_check(int rc);

/* Hex of binary data as a JSON string: null for len 0, NULL if out of memory. */
json_t *cli_json_hex(const uint8_t *data, size_t len);

/* Validates a payload where it is entered (the daemon checks it again), then sends it
 * through the control socket (flags: liaison_send_flags); id gets the new message's id,
 * which is recorded with cli_done ("the message was stored and sent as ID"). Returns 0
 * or the exit code after printing why. */
int cli_send(cli_t *cli, const char *to, uint32_t content_type, const ProtobufCMessage *msg, const uint8_t *thread,
             unsigned flags, char id[LIAISON_ID_HEX]);

/* Closes the connections. */
void cli_close(cli_t *cli);

/* Commands (one file per family). argv[0] is the first argument after the command. */
int cmd_init(cli_t *cli, int argc, char **argv);
int cmd_card(cli_t *cli, int argc, char **argv);
int cmd_fingerprint(cli_t *cli, int argc, char **argv);
int cmd_status(cli_t *cli, int argc, char **argv);
int cmd_peer(cli_t *cli, int argc, char **argv);
int cmd_send(cli_t *cli, int argc, char **argv);
int cmd_inbox(cli_t *cli, int argc, char **argv);
int cmd_outbox(cli_t *cli, int argc, char **argv);
int cmd_show(cli_t *cli, int argc, char **argv);
int cmd_thread(cli_t *cli, int argc, char **argv);
int cmd_ack(cli_t *cli, int argc, char **argv);
int cmd_wait(cli_t *cli, int argc, char **argv);
int cmd_note(cli_t *cli, int argc, char **argv);
int cmd_med_change(cli_t *cli, int argc, char **argv);
int cmd_patient(cli_t *cli, int argc, char **argv);
int cmd_review(cli_t *cli, int argc, char **argv);
int cmd_audit(cli_t *cli, int argc, char **argv);

#endif
