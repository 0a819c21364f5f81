/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of daemon/syncer.c and of the store's side of it, on real SQLite files:
 * a store opened with STORE_SYNC_BY_CALLER commits with synchronous=NORMAL (others
 * with FULL) and counts every commit, autocommit included, rollbacks not; the thread
 * reports a requested sequence number through its eventfd once it has synced, does not
 * sync again for what is already durable, and waits on request; a WAL that cannot be
 * opened is refused at start with its path, and a sync that fails (the WAL is gone) is
 * reported, sticks, and makes nothing more durable. */
#include "unit.h"

#include <errno.h>
#include <poll.h>
#include <sqlite3.h>
#include <time.h>

#include "store.h"
#include "syncer.h"

typedef struct fixture {
    char *dir;
    char path[256];
    char wal[272];
    store_t *s;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = unit_tempdir();
    snprintf(f->path, sizeof f->path, "%s/node.db", f->dir);
    snprintf(f->wal, sizeof f->wal, "%s-wal", f->path);
    char err[256];
    f->s = store_open(f->path, STORE_CREATE | STORE_SYNC_BY_CALLER, err, sizeof err);
    if (!f->s)
        fail_msg("store_open: %s", err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    store_close(&f->s);
    char p[300];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static int pragma_synchronous(store_t *s)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(s), "PRAGMA synchronous", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void put(store_t *s, const char *key)
{
    assert_int_equal(store_meta_set(s, key, (const uint8_t *)"v", 1), 0);
}

/* Waits up to 5 s for the syncer's eventfd; true if it became readable. */
static bool fd_ready(syncer_t *y)
{
    struct pollfd p = {.fd = syncer_fd(y), .events = POLLIN};
    return poll(&p, 1, 5000) == 1;
}

static void test_store_counts_commits(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(pragma_synchronous(f->s), 1); /* NORMAL */
    uint64_t c0 = store_commits(f->s);
    assert_int_equal(store_begin(f->s), 0);
    put(f->s, "a");
    put(f->s, "b");
    assert_int_equal(store_commits(f->s), c0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_commits(f->s), c0 + 1);
    put(f->s, "c"); /* autocommit */
    assert_int_equal(store_commits(f->s), c0 + 2);
    assert_int_equal(store_begin(f->s), 0);
    put(f->s, "d");
    store_rollback(f->s);
    assert_int_equal(store_commits(f->s), c0 + 2);
    uint8_t v[8];
    size_t len = 0;
    assert_int_equal(store_meta_get(f->s, "c", v, sizeof v, &len), 0); /* a read commits nothing */
    assert_int_equal(store_commits(f->s), c0 + 2);
}

static void test_default_store_is_full(void **state)
{
    fixture_t *f = *state;
    char err[256];
    store_t *other = store_open(f->path, 0, err, sizeof err);
    assert_non_null(other);
    assert_int_equal(pragma_synchronous(other), 2); /* FULL */
    store_close(&other);
}

static void test_request_reports_durable(void **state)
{
    fixture_t *f = *state;
    syncer_t *y = NULL;
    char err[256];
    assert_int_equal(syncer_start(&y, f->wal, err, sizeof err), 0);
    put(f->s, "a");
    uint64_t c = store_commits(f->s);
    uint64_t durable = 99;
    assert_int_equal(syncer_poll(y, &durable), 0);
    assert_int_equal(durable, 0);
    syncer_request(y, c);
    assert_true(fd_ready(y));
    assert_int_equal(syncer_poll(y, &durable), 0);
    assert_int_equal(durable, c);
    syncer_stats_t st;
    syncer_stats(y, &st);
    assert_int_equal(st.syncs, 1);
    syncer_stop(&y);
    assert_null(y);
}

static void test_durable_is_not_synced_again(void **state)
{
    fixture_t *f = *state;
    syncer_t *y = NULL;
    char err[256];
    assert_int_equal(syncer_start(&y, f->wal, err, sizeof err), 0);
    for (int i = 0; i < 5; i++)
        put(f->s, "k");
    uint64_t c = store_commits(f->s);
    assert_int_equal(syncer_wait(y, c), 0);
    syncer_stats_t st;
    syncer_stats(y, &st);
    assert_int_equal(st.waits, 1);
    uint64_t syncs = st.syncs;
    assert_true(syncs >= 1);
    /* Already durable: neither a request nor a wait syncs again. */
    syncer_request(y, c);
    syncer_request(y, c - 1);
    assert_int_equal(syncer_wait(y, c), 0);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    syncer_stats(y, &st);
    assert_int_equal(st.syncs, syncs);
    assert_int_equal(st.waits, 1);
    uint64_t durable = 0;
    assert_int_equal(syncer_poll(y, &durable), 0);
    assert_int_equal(durable, c);
    syncer_stop(&y);
}

static void test_missing_wal_is_refused(void **state)
{
    fixture_t *f = *state;
    syncer_t *y = NULL;
    char err[256] = "", path[300];
    snprintf(path, sizeof path, "%s/nothing-wal", f->dir);
    assert_int_equal(syncer_start(&y, path, err, sizeof err), -1);
    assert_null(y);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOENT)));
    syncer_stop(&y); /* NULL-safe */
}

static void test_failed_sync_sticks(void **state)
{
    fixture_t *f = *state;
    syncer_t *y = NULL;
    char err[256];
    assert_int_equal(syncer_start(&y, f->wal, err, sizeof err), 0);
    put(f->s, "a");
    uint64_t c = store_commits(f->s);
    assert_int_equal(syncer_wait(y, c), 0);
    /* The last connection to close removes the WAL: a sync can no longer succeed. */
    store_close(&f->s);
    assert_int_equal(access(f->wal, F_OK), -1);
    uint64_t durable = 0;
    assert_int_equal(syncer_poll(y, &durable), 0); /* empties the eventfd */
    assert_int_equal(durable, c);
    syncer_request(y, c + 1);
    assert_true(fd_ready(y));
    assert_int_equal(syncer_poll(y, &durable), ENOENT);
    assert_int_equal(durable, c);
    assert_int_equal(syncer_wait(y, c + 1), ENOENT);
    assert_int_equal(syncer_wait(y, c + 2), ENOENT);
    assert_int_equal(syncer_wait(y, c), 0); /* what was durable stays so */
    syncer_stop(&y);
}

static void test_follows_a_new_wal(void **state)
{
    fixture_t *f = *state;
    syncer_t *y = NULL;
    char err[256];
    assert_int_equal(syncer_start(&y, f->wal, err, sizeof err), 0);
    put(f->s, "a");
    assert_int_equal(syncer_wait(y, store_commits(f->s)), 0);
    store_close(&f->s); /* WAL removed */
    f->s = store_open(f->path, STORE_SYNC_BY_CALLER, err, sizeof err);
    assert_non_null(f->s); /* a new WAL */
    put(f->s, "b");
    assert_int_equal(syncer_wait(y, 2), 0);
    syncer_stop(&y);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_counts_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_store_is_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_reports_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_is_not_synced_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_wal_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_sync_sticks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follows_a_new_wal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
