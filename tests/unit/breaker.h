/* SPDX-License-Identifier: Apache-2.0 */
/* Breaks off one named SQLite statement part way, as SQLite does on its own for an I/O
 * error, a corrupt page, SQLITE_NOMEM or an interrupt: a read so broken must come back
 * as an error, never as a shorter (or empty) answer given as the whole one. */
#ifndef LIAISON_TEST_BREAKER_H
#define LIAISON_TEST_BREAKER_H

#include <string.h>
#include <sqlite3.h>

/* Breaks off the statement whose SQL starts with `sql` during its run-th run (counted
 * from 1: a statement reset and stepped again runs again; 0: every run). */
typedef struct breaker {
    sqlite3 *db;
    const char *sql;
    int run;
    int broke;
} breaker_t;

/* A progress handler: sqlite3_progress_handler(b.db, 1, break_statement, &b). */
static inline int break_statement(void *ctx)
{
    breaker_t *b = ctx;
    for (sqlite3_stmt *st = sqlite3_next_stmt(b->db, NULL); st; st = sqlite3_next_stmt(b->db, st))
        if (sqlite3_stmt_busy(st) && strncmp(sqlite3_sql(st), b->sql, strlen(b->sql)) == 0 &&
            (b->run == 0 || sqlite3_stmt_status(st, SQLITE_STMTSTATUS_RUN, 0) == b->run)) {
            b->broke++;
            return 1;
        }
    return 0;
}

/* Installs b on b->db (every SQLite step of every statement calls it) or, with NULL,
 * removes it. */
static inline void breaker_set(sqlite3 *db, breaker_t *b)
{
    sqlite3_progress_handler(db, b ? 1 : 0, b ? break_statement : NULL, b);
}

#endif
