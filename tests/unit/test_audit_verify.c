/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the offline audit verifier (daemon/audit_verify.c) on a real SQLite
 * file written by daemon/audit.c: its progress reports on a long log (what liaisond
 * uses to keep systemd's start-up timeout from running out), and a changed entry. */
#include "unit.h"

#include "audit.h"
#include "audit_verify.h"
#include "store.h"

#define ENTRIES (2 * AUDIT_VERIFY_PROGRESS + 5)

typedef struct fixture {
    char dir[64];
    char path[96];
    store_t *s;
    uint64_t calls[8];
    size_t ncalls;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/liaison-auditv-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/node.db", f->dir);
    char err[256];
    f->s = store_open(f->path, STORE_CREATE, err, sizeof err);
    assert_non_null(f->s);
    audit_t *a = audit_open(f->s, err, sizeof err);
    assert_non_null(a);
    assert_int_equal(store_begin(f->s), 0);
    for (int i = 0; i < ENTRIES; i++) {
        audit_entry_t e = {.actor = "daemon", .action = "daemon-started", .outcome = "ok", .details = "test"};
        assert_int_equal(audit_append(a, &e), i + 1);
    }
    assert_int_equal(store_commit(f->s), 0);
    audit_close(&a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    store_close(&f->s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void record(void *ctx, uint64_t entries)
{
    fixture_t *f = ctx;
    assert_true(f->ncalls < sizeof f->calls / sizeof f->calls[0]);
    f->calls[f->ncalls++] = entries;
}

static void test_progress_every_block_of_entries(void **state)
{
    fixture_t *f = *state;
    audit_report_t *r = malloc(sizeof *r);
    uint8_t pk[LIAISON_KEY_BYTES] = {1}; /* no checkpoints here: the key is not used */
    audit_verify_opts_t o = {.sign_pk = pk, .progress = record, .progress_ctx = f};
    assert_int_equal(audit_verify_db(store_db(f->s), &o, r), 0);
    assert_true(r->ok);
    assert_int_equal(r->entries, ENTRIES);
    assert_int_equal(f->ncalls, 2);
    assert_int_equal(f->calls[0], AUDIT_VERIFY_PROGRESS);
    assert_int_equal(f->calls[1], 2 * AUDIT_VERIFY_PROGRESS);
    free(r);
}

static void test_changed_entry_is_named(void **state)
{
    fixture_t *f = *state;
    /* As an insider with the file would: the append-only trigger first. */
    assert_int_equal(sqlite3_exec(store_db(f->s),
                                  "DROP TRIGGER audit_no_update; UPDATE audit SET details = 'edited' WHERE seq = 70000",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    uint8_t pk[LIAISON_KEY_BYTES] = {1};
    audit_verify_opts_t o = {.sign_pk = pk};
    audit_report_t *r = malloc(sizeof *r);
    assert_int_equal(audit_verify_db(store_db(f->s), &o, r), 0);
    assert_false(r->ok);
    assert_int_equal(r->failure, AUDIT_FAIL_CHAIN);
    assert_int_equal(r->first_bad_seq, 70000);
    assert_non_null(strstr(r->text, "entry 70000"));
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_progress_every_block_of_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_entry_is_named, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
