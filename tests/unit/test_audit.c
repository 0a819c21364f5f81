/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the audit log on a real SQLite file written by daemon/audit.c: its
 * Merkle tree, which keeps only some leaf hashes in memory and reads older ones back
 * (roots and proofs checked against the plain tree functions over every leaf), and the
 * offline verifier (daemon/audit_verify.c): its progress reports on a long log (what
 * liaisond uses to keep systemd's start-up timeout from running out), a changed entry,
 * and reads that SQLite breaks off (an I/O error, a corrupt page, an interrupt): the
 * verification then fails, never passes having checked fewer checkpoints. */
#include "unit.h"

#include "audit.h"
#include "audit_codec.h"
#include "audit_verify.h"
#include "breaker.h"
#include "checkpoint.h"
#include "domains.h"
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
        /* Every seventh entry has details longer than the encoder's inline buffer. */
        static char longd[1500];
        memset(longd, 'd', sizeof longd - 1);
        audit_entry_t e = {.actor = "daemon", .action = "daemon-started", .outcome = "ok",
                           .details = i % 7 == 3 ? longd : "test"};
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

/* Every leaf hash, computed here from the table as PROTOCOL.md defines it. */
static uint8_t (*all_leaves(fixture_t *f))[LIAISON_HASH_BYTES]
{
    uint8_t(*leaves)[LIAISON_HASH_BYTES] = calloc(ENTRIES, sizeof *leaves);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(f->s),
                                        "SELECT seq, time_ms, actor, action, outcome, message_id, peer, content_type,"
                                        " patient_tag, details FROM audit ORDER BY seq",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < ENTRIES; i++) {
        audit_record_t r;
        uint8_t *e = NULL;
        size_t elen = 0;
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(audit_record_from_row(st, 0, &r), 0);
        assert_int_equal(audit_encode(&r, &e, &elen), 0);
        merkle_leaf_hash(e, elen, leaves[i]);
        free(e);
    }
    sqlite3_finalize(st);
    return leaves;
}

/* The encoding without an allocation (audit_encode_in) is audit_encode's, byte for
 * byte, below its inline buffer's size and above it, and the chain hash is BLAKE2b over
 * it as PROTOCOL.md says. */
static void test_encoding_inline_or_spilled(void **state)
{
    (void)state;
    static char details[3000];
    const uint8_t mid[16] = {1, 2, 3}, tag[32] = {9};
    const uint8_t prev[LIAISON_HASH_BYTES] = {7};
    const size_t lens[] = {0, 100, AUDIT_ENCODE_INLINE - 160, AUDIT_ENCODE_INLINE - 100, AUDIT_ENCODE_INLINE,
                           AUDIT_ENCODE_INLINE + 1, sizeof details - 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        memset(details, 'a' + (int)i, lens[i]);
        details[lens[i]] = 0;
        audit_record_t r = {.seq = 42 + i, .time_ms = 1709210096000ull, .actor = "user:alvarez", .action = "send",
                            .outcome = "ok", .message_id = mid, .message_id_len = 16, .peer = "dr.okafor",
                            .content_type = 3, .patient_tag = tag, .patient_tag_len = 32, .details = details};
        uint8_t *e = NULL, *spill = NULL, buf[AUDIT_ENCODE_INLINE];
        size_t elen = 0, ilen = 0;
        assert_int_equal(audit_encode(&r, &e, &elen), 0);
        const uint8_t *in = audit_encode_in(&r, buf, &spill, &ilen);
        assert_non_null(in);
        assert_int_equal(ilen, elen);
        assert_memory_equal(in, e, elen);
        assert_true(elen <= AUDIT_ENCODE_INLINE ? (in == buf && !spill) : (in == spill && spill != NULL));
        uint8_t want[LIAISON_HASH_BYTES], got[LIAISON_HASH_BYTES];
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, sizeof want);
        crypto_generichash_update(&st, (const uint8_t *)LIAISON_DOMAIN_AUDIT_CHAIN, sizeof LIAISON_DOMAIN_AUDIT_CHAIN);
        crypto_generichash_update(&st, prev, sizeof prev);
        crypto_generichash_update(&st, e, elen);
        crypto_generichash_final(&st, want, sizeof want);
        assert_int_equal(audit_chain_hash(&r, prev, got), 0);
        assert_memory_equal(got, want, sizeof want);
        free(spill);
        free(e);
    }
}

static void test_tree_matches_the_plain_functions(void **state)
{
    fixture_t *f = *state;
    char err[256];
    audit_t *a = audit_open(f->s, err, sizeof err);
    assert_non_null(a);
    uint64_t n = 0;
    assert_int_equal(audit_sync(a, &n), 0);
    assert_int_equal(n, ENTRIES);
    const merkle_oracle_t *o = audit_tree(a);
    uint8_t(*leaves)[LIAISON_HASH_BYTES] = all_leaves(f);
    const uint8_t(*cl)[LIAISON_HASH_BYTES] = (const uint8_t(*)[LIAISON_HASH_BYTES])leaves;
    uint8_t want[LIAISON_HASH_BYTES], got[LIAISON_HASH_BYTES];
    const uint64_t sizes[] = {1, 2, 255, 256, 257, 70000, 131072, ENTRIES - 1, ENTRIES};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_int_equal(merkle_root(cl, sizes[i], want), 0);
        assert_int_equal(merkle_root_o(NULL, o, sizes[i], got), 0);
        assert_memory_equal(got, want, sizeof want);
    }
    uint8_t pw[64][LIAISON_HASH_BYTES], pg[64][LIAISON_HASH_BYTES];
    size_t lw = 0, lg = 0;
    /* Inclusion proofs reach into blocks the tree has to read back, in any order. */
    const uint64_t idx[] = {0, 255, 256, 70000, 3, 131071, ENTRIES - 1, 69999};
    for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++) {
        assert_int_equal(merkle_inclusion_proof(cl, ENTRIES, idx[i], pw, 64, &lw), 0);
        assert_int_equal(merkle_inclusion_proof_o(NULL, o, ENTRIES, idx[i], pg, 64, &lg), 0);
        assert_int_equal(lg, lw);
        assert_memory_equal(pg, pw, lw * sizeof pw[0]);
    }
    const uint64_t cons[][2] = {{1, ENTRIES}, {255, ENTRIES}, {256, ENTRIES}, {70000, ENTRIES},
                                {131072, ENTRIES}, {70000, 131072}, {ENTRIES - 1, ENTRIES}, {3, 700}};
    for (size_t i = 0; i < sizeof cons / sizeof cons[0]; i++) {
        assert_int_equal(merkle_consistency_proof(cl, cons[i][0], cons[i][1], pw, 64, &lw), 0);
        assert_int_equal(merkle_consistency_proof_o(NULL, o, cons[i][0], cons[i][1], pg, 64, &lg), 0);
        assert_int_equal(lg, lw);
        assert_memory_equal(pg, pw, lw * sizeof pw[0]);
    }
    /* Beyond what audit_sync read, the tree knows nothing and says so. */
    assert_int_not_equal(merkle_root_o(NULL, o, ENTRIES + 1, got), 0);
    free(leaves);
    audit_close(&a);
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

/* Sets the cancel flag from within the run, as liaisond's stopping loop does from its
 * own thread. */
static atomic_bool stop_flag;
static void stop_now(void *ctx, uint64_t entries)
{
    (void)ctx;
    (void)entries;
    atomic_store(&stop_flag, true);
}

static void test_cancelled_run_stops_and_leaves_the_connection_as_it_was(void **state)
{
    fixture_t *f = *state;
    audit_report_t *r = malloc(sizeof *r);
    uint8_t pk[LIAISON_KEY_BYTES] = {1};
    atomic_store(&stop_flag, false);
    audit_verify_opts_t o = {.sign_pk = pk, .progress = stop_now, .cancel = &stop_flag};
    assert_int_equal(audit_verify_db(store_db(f->s), &o, r), -1);
    assert_non_null(strstr(r->text, "interrupted"));
    /* Its read transaction is over and its progress handler gone: the next run is whole. */
    assert_true(sqlite3_get_autocommit(store_db(f->s)));
    atomic_store(&stop_flag, false);
    o.progress = NULL;
    assert_int_equal(audit_verify_db(store_db(f->s), &o, r), 0);
    assert_true(r->ok);
    assert_int_equal(r->entries, ENTRIES);
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

static void test_newer_schema_is_not_verified(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(sqlite3_exec(store_db(f->s), "UPDATE meta SET value = CAST('3' AS BLOB) WHERE key = 'schema_version'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    uint8_t pk[LIAISON_KEY_BYTES] = {1};
    audit_verify_opts_t o = {.sign_pk = pk};
    audit_report_t *r = malloc(sizeof *r);
    assert_int_equal(audit_verify_db(store_db(f->s), &o, r), -1);
    assert_non_null(strstr(r->text, "schema version 3"));
    free(r);
}

/* This node's signed checkpoints at 1000 and 70000 entries and at the log's end, and one
 * beyond it (its log was truncated after it was signed): as witness.c stores them. */
static void sign_checkpoints(fixture_t *f, keys_t *k)
{
    char err[256];
    audit_t *a = audit_open(f->s, err, sizeof err);
    assert_non_null(a);
    uint64_t n = 0;
    assert_int_equal(audit_sync(a, &n), 0);
    assert_int_equal(sqlite3_exec(store_db(f->s),
                                  "CREATE TABLE checkpoints(tree_size INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,"
                                  " root BLOB NOT NULL, note TEXT NOT NULL) STRICT",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    const uint64_t sizes[] = {1000, 70000, ENTRIES, ENTRIES + 10};
    for (size_t i = 0; i < 4; i++) {
        checkpoint_t cp = {.node_id = "alice", .size = sizes[i], .time_ms = 1000 + i};
        if (sizes[i] <= ENTRIES)
            assert_int_equal(merkle_root_o(NULL, audit_tree(a), sizes[i], cp.root), 0);
        char *note = checkpoint_sign(&cp, k);
        assert_non_null(note);
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(store_db(f->s),
                                            "INSERT INTO checkpoints(tree_size, time_ms, root, note) VALUES(?1, 0, ?2, ?3)",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)sizes[i]);
        sqlite3_bind_blob(st, 2, cp.root, sizeof cp.root, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, note, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        free(note);
    }
    audit_close(&a);
}

/* The signed checkpoints are read whole or the verification fails: a read broken off
 * part way would check fewer signatures and lose the newest checkpoint, the one that
 * shows the log was truncated. */
static void test_checkpoints_read_broken_off_fails(void **state)
{
    fixture_t *f = *state;
    keys_t *k = unit_fixed_keys(3);
    sign_checkpoints(f, k);
    audit_verify_opts_t o = {.sign_pk = k->sign_pk};
    audit_report_t *r = malloc(sizeof *r);
    assert_int_equal(audit_verify_db(store_db(f->s), &o, r), 0);
    assert_false(r->ok);
    assert_int_equal(r->failure, AUDIT_FAIL_TRUNCATED);
    assert_int_equal(r->checkpoints, 3);
    breaker_t b = {.db = store_db(f->s), .sql = "SELECT tree_size, note FROM checkpoints"};
    breaker_set(b.db, &b);
    assert_int_equal(audit_verify_db(store_db(f->s), &o, r), -1);
    breaker_set(b.db, NULL);
    assert_true(b.broke > 0);
    assert_non_null(strstr(r->text, "cannot read the checkpoints: interrupted"));
    /* A checkpoints table that cannot be read is not "nothing signed yet" either. */
    assert_int_equal(sqlite3_exec(store_db(f->s), "ALTER TABLE checkpoints RENAME COLUMN note TO n", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(audit_verify_db(store_db(f->s), &o, r), -1);
    assert_non_null(strstr(r->text, "cannot read the checkpoints: no such column: note"));
    /* Only a database without the table has none (no checkpoint was ever signed). */
    assert_int_equal(sqlite3_exec(store_db(f->s), "DROP TABLE checkpoints", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(audit_verify_db(store_db(f->s), &o, r), 0);
    assert_true(r->ok);
    assert_int_equal(r->checkpoints, 0);
    free(r);
    keys_destroy(&k);
}

/* A card vouches for its own node's log only: checkpoints that name alice's log, signed
 * with the key of the card given as bob's, do not verify (the key signs whatever origin
 * its holder writes); given as alice's, they do (here up to the one past the end). */
static void test_checkpoints_of_another_node_than_the_card_fail(void **state)
{
    fixture_t *f = *state;
    keys_t *k = unit_fixed_keys(3);
    sign_checkpoints(f, k);
    audit_report_t *r = malloc(sizeof *r);
    audit_verify_opts_t o = {.sign_pk = k->sign_pk, .card_id = "bob"};
    assert_int_equal(audit_verify_db(store_db(f->s), &o, r), 0);
    assert_false(r->ok);
    assert_int_equal(r->failure, AUDIT_FAIL_SIGNATURE);
    assert_non_null(strstr(r->text, "checkpoint at 1000 entries is of the log of alice, but the card given is bob's"));
    o.card_id = "alice";
    assert_int_equal(audit_verify_db(store_db(f->s), &o, r), 0);
    assert_int_equal(r->failure, AUDIT_FAIL_TRUNCATED);
    assert_int_equal(r->checkpoints, 3);
    free(r);
    keys_destroy(&k);
}

/* A stored checkpoint row with a size no checkpoint has (here -1, which read as an
 * unsigned size sorted first and left every checkpoint after it unchecked) fails the
 * verification; so does one whose size is not an integer. */
static void test_checkpoint_row_of_no_size_fails(void **state)
{
    fixture_t *f = *state;
    keys_t *k = unit_fixed_keys(3);
    sign_checkpoints(f, k);
    sqlite3 *db = store_db(f->s);
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM checkpoints WHERE tree_size = %d", ENTRIES + 10);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    audit_verify_opts_t o = {.sign_pk = k->sign_pk};
    audit_report_t *r = malloc(sizeof *r);
    assert_int_equal(audit_verify_db(db, &o, r), 0);
    assert_true(r->ok);
    assert_int_equal(r->checkpoints, 3);
    assert_non_null(strstr(r->text, "note: the log ends at its last signed checkpoint"));
    assert_int_equal(sqlite3_exec(db, "INSERT INTO checkpoints VALUES(-1, 0, x'', ' ')", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(audit_verify_db(db, &o, r), 0);
    assert_false(r->ok);
    assert_int_equal(r->failure, AUDIT_FAIL_SIGNATURE);
    assert_int_equal(r->checkpoints, 3); /* the genuine ones are all still checked */
    assert_non_null(strstr(r->text, "claims the size '-1'"));
    free(r);
    keys_destroy(&k);
}

/* Every entry is as liaisond writes it: a text with a NUL byte in it (the chain hash
 * stops at the NUL, where SQLite and the auditor's queries see the whole value, so the
 * entry vanished from `audit log --action`), a content type beyond 32 bits (hashed as its
 * low 32), a NULL, or a message id of the wrong length fails at that entry. */
static void test_entry_not_as_written_fails(void **state)
{
    fixture_t *f = *state;
    sqlite3 *db = store_db(f->s);
    assert_int_equal(sqlite3_exec(db, "DROP TRIGGER audit_no_update", NULL, NULL, NULL), SQLITE_OK);
    uint8_t pk[LIAISON_KEY_BYTES] = {1};
    audit_verify_opts_t o = {.sign_pk = pk};
    audit_report_t *r = malloc(sizeof *r);
    const struct {
        const char *change, *undo, *says;
    } cases[] = {
        {"UPDATE audit SET action = CAST(action || x'00' AS TEXT) WHERE seq = 5",
         "UPDATE audit SET action = 'daemon-started' WHERE seq = 5", "a text field holds a NUL byte"},
        {"UPDATE audit SET content_type = content_type + 4294967296 WHERE seq = 5",
         "UPDATE audit SET content_type = 0 WHERE seq = 5", "its content type is not an integer"},
        {"UPDATE audit SET message_id = x'0102' WHERE seq = 5", "UPDATE audit SET message_id = x'' WHERE seq = 5",
         "its message id is not a blob of 0 or 16 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(sqlite3_exec(db, cases[i].change, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(audit_verify_db(db, &o, r), 0);
        assert_false(r->ok);
        assert_int_equal(r->failure, AUDIT_FAIL_CHAIN);
        assert_int_equal(r->first_bad_seq, 5);
        assert_non_null(strstr(r->text, cases[i].says));
        assert_int_equal(sqlite3_exec(db, cases[i].undo, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(audit_verify_db(db, &o, r), 0);
        assert_true(r->ok);
    }
    /* The daemon reads entries through the same check (its Merkle tree, proofs). */
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_exec(db, cases[0].change, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT seq, time_ms, actor, action, outcome, message_id, peer, content_type,"
                                        " patient_tag, details FROM audit WHERE seq = 5",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    audit_record_t rec;
    assert_int_equal(audit_record_from_row(st, 0, &rec), -1);
    sqlite3_finalize(st);
    free(r);
}

/* A log with no entry at all had them all removed (every log begins with node-created). */
static void test_empty_log_fails(void **state)
{
    fixture_t *f = *state;
    sqlite3 *db = store_db(f->s);
    assert_int_equal(sqlite3_exec(db, "DROP TRIGGER audit_no_delete; DELETE FROM audit", NULL, NULL, NULL), SQLITE_OK);
    uint8_t pk[LIAISON_KEY_BYTES] = {1};
    audit_verify_opts_t o = {.sign_pk = pk};
    audit_report_t *r = malloc(sizeof *r);
    assert_int_equal(audit_verify_db(db, &o, r), 0);
    assert_false(r->ok);
    assert_int_equal(r->failure, AUDIT_FAIL_TRUNCATED);
    assert_non_null(strstr(r->text, "the log is empty"));
    free(r);
}

/* Without a card, the key recorded in the database: a read of it that fails says so, not
 * that none is recorded. */
static void test_recorded_key_read_broken_off_is_said(void **state)
{
    fixture_t *f = *state;
    uint8_t pk[LIAISON_KEY_BYTES] = {1};
    assert_int_equal(store_meta_set(f->s, "sign_pk", pk, sizeof pk), 0);
    audit_report_t *r = malloc(sizeof *r);
    breaker_t b = {.db = store_db(f->s), .sql = "SELECT value FROM meta WHERE key = 'sign_pk'"};
    breaker_set(b.db, &b);
    assert_int_equal(audit_verify_db(store_db(f->s), NULL, r), -1);
    breaker_set(b.db, NULL);
    assert_true(b.broke > 0);
    assert_non_null(strstr(r->text, "cannot read the identity key recorded in the database: interrupted"));
    assert_null(strstr(r->text, "none recorded"));
    free(r);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoding_inline_or_spilled),
        cmocka_unit_test_setup_teardown(test_tree_matches_the_plain_functions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_every_block_of_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_run_stops_and_leaves_the_connection_as_it_was, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_entry_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_is_not_verified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_read_broken_off_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_of_another_node_than_the_card_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recorded_key_read_broken_off_is_said, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_row_of_no_size_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_not_as_written_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_log_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
