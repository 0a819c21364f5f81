/* SPDX-License-Identifier: Apache-2.0 */
/* Daemon logging: one line per event to stderr, with sd-daemon "<N>" priority
 * prefixes when stderr goes to the journal. Never clinical content or patient ids. */
#ifndef LIAISON_LOG_H
#define LIAISON_LOG_H

#include <stdbool.h>

enum { LOG_LVL_ERR = 3, LOG_LVL_WARNING = 4, LOG_LVL_NOTICE = 5, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* Sets the threshold; journal prefixes are used when $JOURNAL_STREAM matches stderr. */
void log_init(int level);
/* Parses "error|warning|notice|info|debug". Returns the level or -1. */
int log_level_parse(const char *s);

void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs at LOG_LVL_ERR and exits 1: for broken internal invariants only. */
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
