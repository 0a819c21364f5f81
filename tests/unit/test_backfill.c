/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of daemon/backfill.c on real SQLite files: once the hook is installed the
 * writer's own commits never copy the WAL into the database file below hard_frames;
 * the thread does, once the WAL reaches `frames`, and the writer finishes so that the
 * WAL starts over; at hard_frames the writer does it all itself; writes racing the thread lose nothing and leave an
 * intact database; stopping hands SQLite's automatic backfill back; bad arguments are
 * refused with a message. */
#include "unit.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backfill.h"

typedef struct fixture {
    char dir[64];
    char path[96];
    sqlite3 *db;
} fixture_t;

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static off_t wal_size(const fixture_t *f)
{
    char wal[128];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    return file_size(wal);
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/liaison-backfill-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
    assert_int_equal(sqlite3_open_v2(f->path, &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                     NULL),
                     SQLITE_OK);
    /* As the daemon's own connection (store.c): a backfill that reads the WAL-index
     * header while the writer is changing it takes the write lock for an instant to
     * read it again, and a writer without a busy timeout would fail with SQLITE_BUSY. */
    sqlite3_busy_timeout(f->db, 5000);
    exec(f->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                " CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB NOT NULL);");
    /* Start from an empty WAL, with the schema in the database file. */
    assert_int_equal(sqlite3_wal_checkpoint_v2(f->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL), SQLITE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->db)
        sqlite3_close(f->db);
    char p[128];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* n commits of one 4 KB row each (two to three WAL frames per commit). */
static void write_rows(sqlite3 *db, int n)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t(body) VALUES(?1)", -1, &st, NULL), SQLITE_OK);
    uint8_t body[4096];
    for (int i = 0; i < n; i++) {
        randombytes_buf(body, sizeof body);
        sqlite3_bind_blob(st, 1, body, (int)sizeof body, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

static void wait_for_runs(backfill_t *b, uint64_t runs, backfill_stats_t *out)
{
    for (int i = 0; i < 1000; i++) {
        backfill_stats(b, out);
        if (out->runs >= runs && !out->failed)
            return;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
}

static void test_writer_never_backfills_below_hard(void **state)
{
    fixture_t *f = *state;
    off_t before = file_size(f->path);
    backfill_t *b = NULL;
    char err[128];
    assert_int_equal(backfill_start(&b, f->db, f->path, 100000, 200000, err, sizeof err), 0);
    /* About 1,500 frames: SQLite alone would have backfilled at 1,000. */
    write_rows(f->db, 600);
    backfill_stats_t s;
    backfill_stats(b, &s);
    assert_int_equal(s.runs, 0);
    assert_int_equal(s.inline_runs, 0);
    assert_int_equal(file_size(f->path), before);
    assert_true(wal_size(f) > 1000 * 4096);
    backfill_stop(&b);
    assert_null(b);
}

static void test_thread_backfills(void **state)
{
    fixture_t *f = *state;
    off_t before = file_size(f->path);
    backfill_t *b = NULL;
    char err[128];
    assert_int_equal(backfill_start(&b, f->db, f->path, 50, 100000, err, sizeof err), 0);
    write_rows(f->db, 100);
    backfill_stats_t s;
    wait_for_runs(b, 1, &s);
    assert_true(s.runs >= 1);
    assert_true(s.frames >= 50);
    assert_int_equal(s.failed, 0);
    /* The rows' pages are now in the database file itself. */
    assert_true(file_size(f->path) >= before + 50 * 4096);
    backfill_stop(&b);
}

static void test_hard_limit_bounds_the_wal(void **state)
{
    fixture_t *f = *state;
    off_t before = file_size(f->path);
    backfill_t *b = NULL;
    char err[128];
    /* Both thresholds equal: the writer's inline backfill comes first, the thread is
     * never woken. */
    assert_int_equal(backfill_start(&b, f->db, f->path, 100, 100, err, sizeof err), 0);
    write_rows(f->db, 1000); /* about 2,500 frames */
    backfill_stats_t s;
    backfill_stats(b, &s);
    assert_int_equal(s.runs, 0);
    assert_true(s.inline_runs >= 20);
    assert_int_equal(s.failed, 0);
    assert_true(file_size(f->path) >= before + 900 * 4096);
    /* The WAL restarts from its beginning after each complete backfill. */
    assert_true(wal_size(f) <= 110 * (4096 + 24) + 32);
    backfill_stop(&b);
}

static void test_wal_starts_over_below_hard(void **state)
{
    fixture_t *f = *state;
    backfill_t *b = NULL;
    char err[128];
    assert_int_equal(backfill_start(&b, f->db, f->path, 100, 1000000, err, sizeof err), 0);
    write_rows(f->db, 3000); /* about 7,500 frames */
    backfill_stats_t s;
    backfill_stats(b, &s);
    assert_true(s.runs >= 1);        /* the thread did the bulk */
    assert_true(s.inline_runs >= 1); /* the writer finished */
    assert_int_equal(s.failed, 0);
    /* Without starting over the WAL would hold every frame written. */
    assert_true(wal_size(f) < 2000 * (4096 + 24));
    backfill_stop(&b);
}

/* One transaction of n 4 KB rows. */
static void write_txn(sqlite3 *db, int n)
{
    exec(db, "BEGIN");
    write_rows(db, n);
    exec(db, "COMMIT");
}

static void test_restart_by_a_large_transaction_is_seen(void **state)
{
    /* SQLite starts the WAL over when a write transaction begins with every frame
     * backfilled. If that transaction is at least as large as the WAL was, the WAL's
     * size does not shrink: the restart must still be seen (by the header's new salt),
     * or the writer takes the new frames for backfilled ones but a few and copies them
     * all inline, the latency spike the thread is there to avoid. */
    fixture_t *f = *state;
    backfill_t *b = NULL;
    char err[128];
    assert_int_equal(backfill_start(&b, f->db, f->path, 100, 1000000, err, sizeof err), 0);
    backfill_stats_t s;
    write_txn(f->db, 120); /* well over 100 frames: the thread is woken and copies them all */
    wait_for_runs(b, 1, &s);
    if (s.runs != 1)
        fail_msg("runs %llu inline %llu failed %llu rc %d wal %lld", (unsigned long long)s.runs,
                 (unsigned long long)s.inline_runs, (unsigned long long)s.failed, s.last_rc, (long long)wal_size(f));
    off_t first = wal_size(f);
    /* Begins with everything backfilled: a new WAL, a little larger than the old one
     * (within the few frames the writer would copy itself if it took them for the
     * old WAL's last ones). */
    write_txn(f->db, 130);
    assert_true(wal_size(f) >= first);
    wait_for_runs(b, 2, &s);
    assert_int_equal(s.runs, 2);        /* the thread copied the new WAL... */
    assert_int_equal(s.inline_runs, 0); /* ...not the writer, inside its commit */
    assert_int_equal(s.failed, 0);
    backfill_stop(&b);
}

static void test_racing_writes_lose_nothing(void **state)
{
    fixture_t *f = *state;
    backfill_t *b = NULL;
    char err[128];
    assert_int_equal(backfill_start(&b, f->db, f->path, 20, 100000, err, sizeof err), 0);
    write_rows(f->db, 2000);
    backfill_stats_t s;
    wait_for_runs(b, 2, &s);
    assert_true(s.runs >= 2);
    assert_int_equal(s.failed, 0);
    backfill_stop(&b);
    assert_int_equal(sqlite3_close(f->db), SQLITE_OK);
    f->db = NULL;
    /* Closing the last connection backfilled and removed the WAL. */
    assert_int_equal(wal_size(f), -1);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), count(DISTINCT body) FROM t", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2000);
    assert_int_equal(sqlite3_column_int(st, 1), 2000);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_stop_restores_sqlite_backfill(void **state)
{
    fixture_t *f = *state;
    backfill_t *b = NULL;
    char err[128];
    assert_int_equal(backfill_start(&b, f->db, f->path, 100000, 200000, err, sizeof err), 0);
    backfill_stop(&b);
    off_t before = file_size(f->path);
    write_rows(f->db, 600); /* past SQLite's 1,000 frames */
    assert_true(file_size(f->path) > before);
    backfill_stop(&b); /* NULL-safe */
}

static void test_bad_arguments(void **state)
{
    fixture_t *f = *state;
    backfill_t *b = (backfill_t *)1;
    char err[128] = "";
    assert_int_equal(backfill_start(&b, f->db, f->path, 0, 10, err, sizeof err), -1);
    assert_null(b);
    assert_non_null(strstr(err, "thresholds"));
    assert_int_equal(backfill_start(&b, f->db, f->path, 20, 10, err, sizeof err), -1);
    assert_null(b);
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none/x.db", f->dir);
    assert_int_equal(backfill_start(&b, f->db, missing, 10, 20, err, sizeof err), -1);
    assert_null(b);
    assert_non_null(strstr(err, "cannot open"));
    assert_non_null(strstr(err, missing));
    /* Refusals leave SQLite's own backfill in place. */
    off_t before = file_size(f->path);
    write_rows(f->db, 600);
    assert_true(file_size(f->path) > before);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writer_never_backfills_below_hard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_backfills, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hard_limit_bounds_the_wal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_starts_over_below_hard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_by_a_large_transaction_is_seen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_racing_writes_lose_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_restores_sqlite_backfill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
