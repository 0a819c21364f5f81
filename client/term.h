/* SPDX-License-Identifier: Apache-2.0 */
/* What the liaison command line writes for people: standard output and standard error
 * with bidirectional controls and control characters shown by name. */
#ifndef LIAISON_TERM_H
#define LIAISON_TERM_H

#include <stdio.h>

/* Puts stdout and stderr behind filters that pass everything written to them through
 * text_visible (text.h): message text from other nodes, and every other string printed,
 * reaches the terminal with its bidirectional controls ("<U+202E>") and control
 * characters shown by name, whichever command prints it. --json output is unchanged
 * (JSON_ENSURE_ASCII escapes every such character). stdout keeps its buffering (line
 * buffered at a terminal), stderr stays unbuffered; a write error sets the stream's error
 * flag with errno as write(2) left it. Call it once, before anything is printed. Returns
 * 0, or -1 if the filters cannot be set up (the streams are then left as they were). */
int term_guard(void);

/* Holds standard input, output and error open if the command was started with one of
 * them closed (liaison send ... >&-): otherwise the first file or socket opened would
 * take its number, and what is printed would go into it. The stand-in refuses what the
 * closed descriptor refused (EBADF: /dev/null opened for the other direction). Call it
 * first thing in main. Returns 0, or -1 if a stand-in cannot be opened. */
int term_hold_std_fds(void);

/* errno of the first write to standard output that failed since term_guard, or 0. */
int term_stdout_error(void);

/* The standard output as it was before term_guard, for output that must be byte for
 * byte what the daemon holds (audit export): what was written to the filtered stdout
 * is flushed first. Never NULL. */
FILE *term_raw_stdout(void);

#endif
