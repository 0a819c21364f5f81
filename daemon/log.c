/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the daemon's stderr log format and threshold. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

static int log_level = LOG_LVL_INFO;
static bool log_journal = false;

void log_init(int level)
{
    log_level = level;
    /* systemd sets JOURNAL_STREAM=dev:ino for the stream stderr is connected to. */
    const char *js = getenv("JOURNAL_STREAM");
    struct stat st;
    if (js && fstat(2, &st) == 0) {
        unsigned long long dev = 0, ino = 0;
        if (sscanf(js, "%llu:%llu", &dev, &ino) == 2 && dev == (unsigned long long)st.st_dev &&
            ino == (unsigned long long)st.st_ino)
            log_journal = true;
    }
}

int log_level_parse(const char *s)
{
    static const struct { const char *name; int lvl; } names[] = {
        {"error", LOG_LVL_ERR}, {"warning", LOG_LVL_WARNING}, {"notice", LOG_LVL_NOTICE},
        {"info", LOG_LVL_INFO}, {"debug", LOG_LVL_DEBUG},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0)
            return names[i].lvl;
    return -1;
}

static void log_vemit(int lvl, const char *fmt, va_list ap)
{
    if (lvl > log_level)
        return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    if (log_journal) {
        fprintf(stderr, "<%d>%s\n", lvl, line);
    } else {
        static const char *tags[] = {"", "", "", "error", "warning", "notice", "info", "debug"};
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ liaisond %s: %s\n", when, ts.tv_nsec / 1000000L, tags[lvl], line);
    }
}

#define LOG_FN(name, lvl)                 \
    void name(const char *fmt, ...)       \
    {                                     \
        va_list ap;                       \
        va_start(ap, fmt);                \
        log_vemit(lvl, fmt, ap);          \
        va_end(ap);                       \
    }
LOG_FN(log_err, LOG_LVL_ERR)
LOG_FN(log_warn, LOG_LVL_WARNING)
LOG_FN(log_notice, LOG_LVL_NOTICE)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)

void fatalx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vemit(LOG_LVL_ERR, fmt, ap);
    va_end(ap);
    exit(1);
}
