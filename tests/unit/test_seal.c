/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of seal.c: round trips, every single-byte change, wrong keys, and each parse rule. */
#include "unit.h"

#include "seal.h"

enum { ALICE, BOB, CAROL, DAVE, N_NODES };
static const char *const node_id[N_NODES] = {"alice", "bob", "carol", "dave"};
static keys_t *K[N_NODES];

#define MALFORMED LIAISON__WIRE__REJECT_CODE__REJECT_MALFORMED
#define VERSION LIAISON__WIRE__REJECT_CODE__REJECT_VERSION

static int node_index(const char *id)
{
    for (int i = 0; i < N_NODES; i++)
        if (strcmp(node_id[i], id) == 0)
            return i;
    return -1;
}

static void pair(int me, int them, uint8_t out[32])
{
    assert_int_equal(keys_pair_key(K[me], K[them]->enc_pk, out), 0);
}

/* Seals payload from node `from` (as sender id `as`, normally its own id) to the listed
 * recipient ids; recipients that are not test nodes get a random pair key. */
static uint8_t *seal_ids(int from, const char *as, const char *const *ids, size_t n, const void *payload,
                         size_t plen, const uint8_t *thread, uint8_t msgid[16], size_t *len, char *err, size_t errlen)
{
    seal_recipient_t r[40];
    uint8_t pk[40][32];
    assert_true(n <= 40);
    for (size_t i = 0; i < n; i++) {
        int idx = ids[i] ? node_index(ids[i]) : -1;
        if (idx >= 0)
            pair(from, idx, pk[i]);
        else
            randombytes_buf(pk[i], 32);
        r[i] = (seal_recipient_t){ids[i], pk[i]};
    }
    seal_input_t in = {
        .sender = as, .recipients = r, .n_recipients = n, .content_type = 1, .thread_id = thread,
        .created_ms = 1709210096000ull, .payload = payload, .payload_len = plen,
    };
    uint8_t *out = (uint8_t *)1;
    int rc = seal_envelope(K[from], &in, msgid, &out, len, err, errlen);
    if (rc != 0)
        assert_null(out);
    return rc == 0 ? out : NULL;
}

/* Parse, verify with sender's key, open as `who`. Returns 0 only if all three succeed. */
static int receive(const uint8_t *bytes, size_t len, int sender, int who, uint8_t **pt, size_t *pt_len)
{
    envelope_t *e = NULL;
    int code = 0, rc = -1;
    char err[256];
    uint8_t pk[32];
    *pt = NULL;
    if (envelope_parse(bytes, len, &e, &code, err, sizeof err) != 0)
        goto out;
    if (envelope_verify(e, K[sender]->sign_pk) != 0)
        goto out;
    pair(who, sender, pk);
    if (envelope_open(e, node_id[who], pk, pt, pt_len) != 0)
        goto out;
    rc = 0;
out:
    envelope_destroy(&e);
    return rc;
}

static void test_roundtrip(void **state)
{
    (void)state;
    static const char msg[] = "Patient stable; lithium level 0.8 mmol/L. Next review Friday.";
    const char *ids[] = {"alice", "bob", "carol"};
    uint8_t msgid[16], thread[16];
    size_t len = 0;
    char err[256] = "";
    randombytes_buf(thread, sizeof thread);

    uint8_t *env = seal_ids(ALICE, "alice", ids, 3, msg, sizeof msg, thread, msgid, &len, err, sizeof err);
    if (!env)
        fail_msg("seal: %s", err);
    assert_true(len <= LIAISON_MAX_ENVELOPE);

    envelope_t *e = NULL;
    int code = -1;
    assert_int_equal(envelope_parse(env, len, &e, &code, err, sizeof err), 0);
    assert_int_equal(code, 0);
    assert_memory_equal(envelope_msgid(e), msgid, 16);
    assert_string_equal(e->hdr->sender, "alice");
    assert_int_equal(e->hdr->n_recipients, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(e->hdr->recipients[i], ids[i]);
        assert_string_equal(e->hdr->keys[i]->recipient, ids[i]);
        assert_int_equal(envelope_recipient_index(e, ids[i]), (int)i);
    }
    assert_int_equal(envelope_recipient_index(e, "dave"), -1);
    assert_int_equal(e->hdr->content_type, 1);
    assert_int_equal(e->hdr->created_ms, 1709210096000ull);
    /* The id leads with the creation time, u48be(created_ms) (PROTOCOL.md section 5),
     * and is unique: a second seal in the same millisecond gets another id. */
    static const uint8_t time48[6] = {0x01, 0x8d, 0xf4, 0xdc, 0x51, 0x80}; /* 1709210096000 */
    assert_memory_equal(msgid, time48, sizeof time48);
    uint8_t same_ms_id[16];
    size_t same_ms_len = 0;
    uint8_t *same_ms = seal_ids(ALICE, "alice", ids, 3, msg, sizeof msg, thread, same_ms_id, &same_ms_len, err,
                                sizeof err);
    assert_non_null(same_ms);
    assert_memory_equal(same_ms_id, time48, sizeof time48);
    assert_memory_not_equal(same_ms_id + 6, msgid + 6, 10);
    free(same_ms);
    assert_int_equal(e->hdr->thread_id.len, 16);
    assert_memory_equal(e->hdr->thread_id.data, thread, 16);
    assert_int_equal(envelope_verify(e, K[ALICE]->sign_pk), 0);
    envelope_destroy(&e);
    assert_null(e);
    envelope_destroy(&e);

    /* Every recipient, the sender included, opens it. */
    for (int who = ALICE; who <= CAROL; who++) {
        uint8_t *pt = NULL;
        size_t pt_len = 0;
        assert_int_equal(receive(env, len, ALICE, who, &pt, &pt_len), 0);
        assert_int_equal(pt_len, sizeof msg);
        assert_memory_equal(pt, msg, sizeof msg);
        free(pt);
    }
    free(env);

    /* Fresh ids and ciphertexts each time; no thread gives an empty thread id. */
    uint8_t msgid2[16];
    uint8_t *env2 = seal_ids(ALICE, "alice", ids, 3, msg, sizeof msg, NULL, msgid2, &len, err, sizeof err);
    assert_non_null(env2);
    assert_memory_not_equal(msgid, msgid2, 16);
    assert_int_equal(envelope_parse(env2, len, &e, &code, err, sizeof err), 0);
    assert_int_equal(e->hdr->thread_id.len, 0);
    envelope_destroy(&e);
    free(env2);
}

static void test_sender_only_and_empty_payload(void **state)
{
    (void)state;
    const char *ids[] = {"bob"};
    uint8_t msgid[16];
    size_t len = 0, pt_len = 99;
    char err[256];
    uint8_t *env = seal_ids(BOB, "bob", ids, 1, NULL, 0, NULL, msgid, &len, err, sizeof err);
    assert_non_null(env);
    uint8_t *pt = NULL;
    assert_int_equal(receive(env, len, BOB, BOB, &pt, &pt_len), 0);
    assert_int_equal(pt_len, 0);
    free(pt);
    free(env);
}

static void test_max_payload(void **state)
{
    (void)state;
    const char *ids[] = {"alice", "bob"};
    uint8_t msgid[16];
    size_t len = 0, pt_len = 0;
    char err[256] = "";
    uint8_t *big = malloc(LIAISON_MAX_PAYLOAD + 1);
    randombytes_buf(big, LIAISON_MAX_PAYLOAD + 1);

    uint8_t *env = seal_ids(ALICE, "alice", ids, 2, big, LIAISON_MAX_PAYLOAD, NULL, msgid, &len, err, sizeof err);
    if (!env)
        fail_msg("seal at the payload limit: %s", err);
    assert_true(len <= LIAISON_MAX_ENVELOPE);
    uint8_t *pt = NULL;
    assert_int_equal(receive(env, len, ALICE, BOB, &pt, &pt_len), 0);
    assert_int_equal(pt_len, LIAISON_MAX_PAYLOAD);
    assert_memory_equal(pt, big, LIAISON_MAX_PAYLOAD);
    free(pt);
    free(env);

    env = seal_ids(ALICE, "alice", ids, 2, big, LIAISON_MAX_PAYLOAD + 1, NULL, msgid, &len, err, sizeof err);
    assert_null(env);
    assert_non_null(strstr(err, "payload"));
    free(big);
}

/* A large message needs memory to be checked (the signed bytes) and opened (the
 * plaintext). When there is none, the answer is -2, never -1: a receiver refuses a
 * message whose signature does not verify, or that does not decrypt, for good, and a
 * valid message would be lost to a moment without memory. With memory, the same
 * envelope verifies and opens. */
static void test_out_of_memory_is_no_verdict(void **state)
{
    (void)state;
    const char *ids[] = {"alice", "bob"};
    uint8_t msgid[16], pk[32];
    size_t len = 0, pt_len = 0, plen = 400 * 1024;
    char err[256] = "";
    uint8_t *payload = malloc(plen), *pt = NULL;
    assert_non_null(payload);
    randombytes_buf(payload, plen);
    uint8_t *env = seal_ids(ALICE, "alice", ids, 2, payload, plen, NULL, msgid, &len, err, sizeof err);
    assert_non_null(env);
    envelope_t *e = NULL;
    int code = 0;
    assert_int_equal(envelope_parse(env, len, &e, &code, err, sizeof err), 0);
    pair(BOB, ALICE, pk);
    struct rlimit saved;
    if (!unit_memory_tight(&saved, 64 * 1024)) {
        envelope_destroy(&e);
        free(env);
        free(payload);
        skip();
        return;
    }
    int verified = envelope_verify(e, K[ALICE]->sign_pk);
    int opened = envelope_open(e, "bob", pk, &pt, &pt_len);
    int wrong = envelope_verify(e, K[BOB]->sign_pk); /* no memory either: no verdict */
    /* Unpacking the body spills out of the envelope's arena: without memory that is no
     * verdict on the bytes either (TRY_LATER, never a MALFORMED refusal for good). */
    envelope_t again;
    int pcode = 0;
    int parsed = envelope_parse_in(&again, env, len, &pcode, err, sizeof err);
    unit_memory_restore(&saved);
    assert_int_equal(parsed, -1);
    assert_int_equal(pcode, LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER);
    assert_string_equal(err, "envelope: out of memory");
    assert_int_equal(verified, -2);
    assert_int_equal(opened, -2);
    assert_null(pt);
    assert_int_equal(wrong, -2);
    assert_int_equal(envelope_verify(e, K[ALICE]->sign_pk), 0);
    assert_int_equal(envelope_verify(e, K[BOB]->sign_pk), -1);
    assert_int_equal(envelope_open(e, "bob", pk, &pt, &pt_len), 0);
    assert_int_equal(pt_len, plen);
    assert_memory_equal(pt, payload, plen);
    sodium_memzero(pt, pt_len);
    free(pt);
    envelope_destroy(&e);
    free(env);
    free(payload);
}

/* The check that a large envelope is in canonical form re-encodes it into a buffer of its
 * size. Memory enough to unpack the envelope but not for that buffer is no verdict on the
 * bytes either: TRY_LATER, not a MALFORMED refusal for good of a valid message. */
static void test_canonical_check_out_of_memory_is_no_verdict(void **state)
{
    (void)state;
    const char *ids[] = {"alice", "bob"};
    uint8_t msgid[16];
    size_t len = 0, plen = LIAISON_MAX_PAYLOAD;
    char err[256] = "";
    uint8_t *payload = malloc(plen);
    assert_non_null(payload);
    randombytes_buf(payload, plen);
    uint8_t *env = seal_ids(ALICE, "alice", ids, 2, payload, plen, NULL, msgid, &len, err, sizeof err);
    assert_non_null(env);
    /* Blocks this large come from mmap, each counted against RLIMIT_AS as it is made
     * (glibc would otherwise raise its threshold after a free and reuse the heap). */
    (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024); /* under ASan, ignored: the test is skipped below */
    struct rlimit saved;
    if (!unit_memory_tight(&saved, len + len / 2)) {
        free(env);
        free(payload);
        skip();
        return;
    }
    envelope_t e;
    int code = 0;
    int parsed = envelope_parse_in(&e, env, len, &code, err, sizeof err);
    unit_memory_restore(&saved);
    if (parsed == 0)
        envelope_release(&e);
    assert_int_equal(parsed, -1);
    assert_int_equal(code, LIAISON__WIRE__REJECT_CODE__REJECT_TRY_LATER);
    assert_string_equal(err, "envelope: out of memory");
    /* With memory, the same bytes parse. */
    assert_int_equal(envelope_parse_in(&e, env, len, &code, err, sizeof err), 0);
    envelope_release(&e);
    free(env);
    free(payload);
}

/* Seal lays the signed bytes out in a buffer on its stack when they fit and in one of
 * the heap when they do not, and so does the check of the signature: messages of every
 * size across that line, to two recipients and to the most a message may have, open. */
static void test_sizes_across_the_inline_buffer(void **state)
{
    (void)state;
    static char extra[LIAISON_MAX_RECIPIENTS][8];
    const char *ids[LIAISON_MAX_RECIPIENTS] = {"alice", "bob", "carol", "dave"};
    for (unsigned i = N_NODES; i < LIAISON_MAX_RECIPIENTS; i++) {
        snprintf(extra[i], sizeof extra[i], "r%02u", i);
        ids[i] = extra[i];
    }
    static uint8_t payload[9000];
    randombytes_buf(payload, sizeof payload);
    const size_t counts[] = {2, LIAISON_MAX_RECIPIENTS};
    for (size_t c = 0; c < 2; c++)
        for (size_t plen = 4000; plen <= sizeof payload; plen += 97) {
            uint8_t msgid[16], *pt = NULL;
            size_t len = 0, pt_len = 0;
            char err[256] = "";
            uint8_t *env = seal_ids(ALICE, "alice", ids, counts[c], payload, plen, NULL, msgid, &len, err, sizeof err);
            if (!env)
                fail_msg("seal of %zu bytes to %zu: %s", plen, counts[c], err);
            assert_int_equal(receive(env, len, ALICE, BOB, &pt, &pt_len), 0);
            assert_int_equal(pt_len, plen);
            assert_memory_equal(pt, payload, plen);
            free(pt);
            /* A flipped byte of the body, the last one the signature covers, is caught. */
            env[len - crypto_sign_BYTES - 3] ^= 1;
            assert_int_not_equal(receive(env, len, ALICE, BOB, &pt, &pt_len), 0);
            free(pt);
            free(env);
        }
}

/* envelope_parse_in: the same rules into the caller's storage, released with
 * envelope_release (nothing to release after a failure; ASan checks both). */
static void test_parse_into_callers_storage(void **state)
{
    (void)state;
    const char *ids[] = {"alice", "bob"};
    uint8_t msgid[16];
    size_t len = 0;
    char err[256] = "";
    static uint8_t big[20000];
    for (size_t plen = 0; plen <= sizeof big; plen += 10000) { /* the last one spills out of the arena */
        uint8_t *env = seal_ids(ALICE, "alice", ids, 2, big, plen, NULL, msgid, &len, err, sizeof err);
        assert_non_null(env);
        envelope_t e;
        int code = -1;
        assert_int_equal(envelope_parse_in(&e, env, len, &code, err, sizeof err), 0);
        assert_memory_equal(envelope_msgid(&e), msgid, 16);
        assert_int_equal(envelope_verify(&e, K[ALICE]->sign_pk), 0);
        envelope_release(&e);
        assert_int_not_equal(envelope_parse_in(&e, env, len - 1, &code, err, sizeof err), 0);
        assert_int_equal(code, MALFORMED);
        free(env);
    }
    envelope_release(NULL);
}

/* Byte offset of needle in hay (sections of the serialized envelope). */
static size_t offset_of(const uint8_t *hay, size_t hay_len, const uint8_t *needle, size_t n)
{
    const uint8_t *p = memmem(hay, hay_len, needle, n);
    assert_non_null(p);
    return (size_t)(p - hay);
}

static void test_every_single_byte_change(void **state)
{
    (void)state;
    static const char msg[] = "ok";
    const char *ids[] = {"alice", "bob"};
    uint8_t msgid[16];
    size_t len = 0;
    char err[256];
    uint8_t *env = seal_ids(ALICE, "alice", ids, 2, msg, sizeof msg, NULL, msgid, &len, err, sizeof err);
    assert_non_null(env);

    /* Where the three sections are, to count outcomes per section. */
    envelope_t *e = NULL;
    int code;
    assert_int_equal(envelope_parse(env, len, &e, &code, err, sizeof err), 0);
    size_t h0 = offset_of(env, len, e->env->header.data, e->env->header.len), h1 = h0 + e->env->header.len;
    size_t b0 = offset_of(env, len, e->env->body.data, e->env->body.len), b1 = b0 + e->env->body.len;
    size_t s0 = offset_of(env, len, e->env->signature.data, 64), s1 = s0 + 64;
    envelope_destroy(&e);

    size_t tried = 0, parse_fail = 0, verify_fail = 0, body_open_fail = 0, header_open_fail = 0;
    uint8_t *m = malloc(len);
    for (size_t pos = 0; pos < len; pos++) {
        for (int mask = 0; mask < 9; mask++) {
            memcpy(m, env, len);
            m[pos] = (uint8_t)(m[pos] ^ (mask < 8 ? 1u << mask : 0xffu));
            tried++;
            if (envelope_parse(m, len, &e, &code, err, sizeof err) != 0) {
                assert_null(e);
                assert_int_not_equal(code, 0);
                parse_fail++;
                continue;
            }
            int verified = envelope_verify(e, K[ALICE]->sign_pk) == 0;
            if (verified)
                fail_msg("byte %zu ^ mask %d: changed envelope still verifies", pos, mask);
            verify_fail++;
            /* Even without the signature, opening must never yield other plaintext. */
            for (int who = ALICE; who <= BOB; who++) {
                uint8_t pk[32], *pt = NULL;
                size_t pt_len = 0;
                pair(who, ALICE, pk);
                int opened = envelope_open(e, node_id[who], pk, &pt, &pt_len) == 0;
                if (opened) {
                    assert_int_equal(pt_len, sizeof msg);
                    assert_memory_equal(pt, msg, sizeof msg);
                    /* Only the (unencrypted) signature may change without breaking the AEADs. */
                    assert_true(pos >= s0 && pos < s1);
                    free(pt);
                } else {
                    assert_null(pt);
                    if (pos >= b0 && pos < b1)
                        body_open_fail++;
                    if (pos >= h0 && pos < h1)
                        header_open_fail++;
                }
            }
            envelope_destroy(&e);
        }
    }
    assert_int_equal(tried, 9 * len);
    assert_int_equal(parse_fail + verify_fail, tried);
    /* Every body change is caught by the body AEAD for both recipients. */
    assert_int_equal(body_open_fail, 2 * 9 * (b1 - b0));
    assert_true(header_open_fail > 0);
    free(m);

    /* The three sections specifically: a change in the middle of each. */
    struct { size_t pos; bool parses; } where[] = {{h0 + (h1 - h0) / 2, false}, {b0 + (b1 - b0) / 2, true},
                                                   {s0 + 32, true}, {h0 + 4, false}};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        uint8_t *c = malloc(len);
        memcpy(c, env, len);
        c[where[i].pos] ^= 0x01;
        if (envelope_parse(c, len, &e, &code, err, sizeof err) == 0) {
            assert_int_equal(envelope_verify(e, K[ALICE]->sign_pk), -1);
            envelope_destroy(&e);
        }
        uint8_t *pt = NULL;
        size_t pt_len;
        assert_int_equal(receive(c, len, ALICE, BOB, &pt, &pt_len), -1);
        assert_null(pt);
        free(c);
    }
    /* And the untouched bytes still go through: the loop did not just break everything. */
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    assert_int_equal(receive(env, len, ALICE, BOB, &pt, &pt_len), 0);
    free(pt);
    free(env);
}

static void test_wrong_recipient_and_keys(void **state)
{
    (void)state;
    static const char msg[] = "for bob and carol";
    const char *ids[] = {"alice", "bob", "carol"};
    uint8_t msgid[16], pk[32], *pt = NULL;
    size_t len = 0, pt_len = 0;
    char err[256];
    int code;
    uint8_t *env = seal_ids(ALICE, "alice", ids, 3, msg, sizeof msg, NULL, msgid, &len, err, sizeof err);
    envelope_t *e = NULL;
    assert_int_equal(envelope_parse(env, len, &e, &code, err, sizeof err), 0);

    /* Dave is not listed: no slot, whatever key he uses. */
    pair(DAVE, ALICE, pk);
    assert_int_equal(envelope_open(e, "dave", pk, &pt, &pt_len), -1);
    assert_null(pt);
    /* Dave claims Bob's slot with his own (correct for him) pair key with Alice. */
    assert_int_equal(envelope_open(e, "bob", pk, &pt, &pt_len), -1);
    /* Carol, a real recipient, cannot use her key in Bob's slot or in Alice's. */
    pair(CAROL, ALICE, pk);
    assert_int_equal(envelope_open(e, "bob", pk, &pt, &pt_len), -1);
    assert_int_equal(envelope_open(e, "alice", pk, &pt, &pt_len), -1);
    /* Bob with the pair key of two other nodes (Carol and Dave). */
    assert_int_equal(keys_pair_key(K[CAROL], K[DAVE]->enc_pk, pk), 0);
    assert_int_equal(envelope_open(e, "bob", pk, &pt, &pt_len), -1);
    /* Bob's own pair key with Alice, but in Carol's slot. */
    pair(BOB, ALICE, pk);
    assert_int_equal(envelope_open(e, "carol", pk, &pt, &pt_len), -1);
    assert_null(pt);
    assert_int_equal(envelope_open(e, "bob", pk, &pt, &pt_len), 0);   /* control */
    free(pt);

    /* Wrong or unknown sender keys do not verify. */
    uint8_t zero[32] = {0}, rnd[32];
    randombytes_buf(rnd, sizeof rnd);
    assert_int_equal(envelope_verify(e, K[BOB]->sign_pk), -1);
    assert_int_equal(envelope_verify(e, K[DAVE]->sign_pk), -1);
    assert_int_equal(envelope_verify(e, rnd), -1);
    assert_int_equal(envelope_verify(e, zero), -1);
    assert_int_equal(envelope_verify(e, K[ALICE]->enc_pk), -1);
    assert_int_equal(envelope_verify(e, K[ALICE]->sign_pk), 0);       /* control */
    envelope_destroy(&e);
    free(env);

    /* Dave seals claiming to be Alice: well-formed, but it does not verify as Alice. */
    env = seal_ids(DAVE, "alice", ids, 3, msg, sizeof msg, NULL, msgid, &len, err, sizeof err);
    assert_non_null(env);
    assert_int_equal(envelope_parse(env, len, &e, &code, err, sizeof err), 0);
    assert_int_equal(envelope_verify(e, K[ALICE]->sign_pk), -1);
    /* ...and Bob's pair key with the real Alice does not unwrap it either. */
    pair(BOB, ALICE, pk);
    assert_int_equal(envelope_open(e, "bob", pk, &pt, &pt_len), -1);
    envelope_destroy(&e);
    free(env);

    /* A signature lifted from another envelope does not verify. */
    uint8_t *e1 = seal_ids(ALICE, "alice", ids, 3, msg, sizeof msg, NULL, msgid, &len, err, sizeof err);
    size_t len2 = 0;
    uint8_t *e2 = seal_ids(ALICE, "alice", ids, 3, msg, sizeof msg, NULL, msgid, &len2, err, sizeof err);
    assert_int_equal(len, len2);
    memcpy(e1 + len - 64, e2 + len2 - 64, 64);   /* signature is the last field */
    assert_int_equal(envelope_parse(e1, len, &e, &code, err, sizeof err), 0);
    assert_int_equal(envelope_verify(e, K[ALICE]->sign_pk), -1);
    envelope_destroy(&e);
    free(e1);
    free(e2);
}

static void expect_seal_refused(const char *as, const char *const *ids, size_t n, size_t plen, const char *needle)
{
    uint8_t msgid[16], *payload = calloc(1, plen + 1);
    size_t len = 0;
    char err[256] = "";
    uint8_t *env = seal_ids(ALICE, as, ids, n, payload, plen, NULL, msgid, &len, err, sizeof err);
    if (env)
        fail_msg("seal accepted bad input (expected '%s')", needle);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    free(payload);
}

static void test_seal_input_limits(void **state)
{
    (void)state;
    char names[40][8];
    const char *ids[40];
    ids[0] = "alice";
    for (int i = 1; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "r%02d", i);
        ids[i] = names[i];
    }
    uint8_t msgid[16];
    size_t len = 0;
    char err[256] = "";

    /* 32 recipients is the limit and works. */
    uint8_t *env = seal_ids(ALICE, "alice", ids, 32, "x", 1, NULL, msgid, &len, err, sizeof err);
    if (!env)
        fail_msg("seal to 32: %s", err);
    envelope_t *e = NULL;
    int code;
    assert_int_equal(envelope_parse(env, len, &e, &code, err, sizeof err), 0);
    assert_int_equal(e->hdr->n_recipients, 32);
    envelope_destroy(&e);
    free(env);

    expect_seal_refused("alice", ids, 33, 1, "33 recipients");
    expect_seal_refused("alice", ids, 0, 1, "0 recipients");
    expect_seal_refused("alice", ids, 2, LIAISON_MAX_PAYLOAD + 1, "payload");
    expect_seal_refused("Alice", ids, 2, 1, "sender");
    const char *bad_id[] = {"alice", "bob!"};
    expect_seal_refused("alice", bad_id, 2, 1, "recipient 2 is not a valid node id");
    const char *null_id[] = {"alice", NULL};
    expect_seal_refused("alice", null_id, 2, 1, "recipient 2");
    const char *dup[] = {"alice", "bob", "bob"};
    expect_seal_refused("alice", dup, 3, 1, "bob is listed twice");
    const char *no_sender[] = {"bob", "carol"};
    expect_seal_refused("alice", no_sender, 2, 1, "sender alice must be among the recipients");

    /* Payload pointer missing, and a recipient without a pair key. */
    seal_recipient_t r[2] = {{"alice", K[ALICE]->enc_pk}, {"bob", NULL}};
    seal_input_t in = {.sender = "alice", .recipients = r, .n_recipients = 2, .payload = NULL, .payload_len = 5};
    uint8_t *out = (uint8_t *)1;
    assert_int_equal(seal_envelope(K[ALICE], &in, msgid, &out, &len, err, sizeof err), -1);
    assert_null(out);
    in.payload = (const uint8_t *)"hello";
    assert_int_equal(seal_envelope(K[ALICE], &in, msgid, &out, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "pair key"));
}

/* ---- Hand-built envelopes: an independent implementation of the format, with knobs. ---- */

typedef struct hspec {
    uint32_t version;
    size_t msgid_len;
    const char *sender;
    const char *rcpts[40];
    size_t n_rcpts;
    size_t n_keys;
    bool swap_keys;           /* keys[0] and keys[1] exchanged */
    size_t nonce_len, ct_len;
    size_t thread_len;
    uint32_t content_type;
    size_t body_len;          /* 0: the real encrypted body; else that many random bytes */
    size_t sig_len;
    size_t header_pad;        /* unknown field of this many bytes appended to the header */
    bool header_nul_in_sender;/* sender "alicex" with the x replaced by 0x00 after packing */
    size_t commit_len;        /* bytes of the key commitment sent */
    bool commit_other_key;    /* the header commits to a key other than the one wrapped */
    const char *msgid_of;     /* the message id as this node would derive it (NULL: the sender) */
    bool msgid_random;        /* 16 random bytes as the message id */
    uint64_t msgid_ms;        /* the time in the id, if not the header's */
} hspec_t;

static const char hb_payload[] = "hand-built";

static hspec_t good_hspec(void)
{
    hspec_t s;
    memset(&s, 0, sizeof s);
    s.version = 1;
    s.msgid_len = 16;
    s.sender = "alice";
    s.rcpts[0] = "alice";
    s.rcpts[1] = "bob";
    s.rcpts[2] = "carol";
    s.n_rcpts = 3;
    s.n_keys = 3;
    s.nonce_len = 24;
    s.ct_len = 48;
    s.content_type = 1;
    s.sig_len = 64;
    s.commit_len = 32;
    return s;
}

static size_t test_wrap_ad(uint8_t *ad, const uint8_t *mid, const char *sender, const char *rcpt)
{
    size_t n = 0, sl = strlen(sender), rl = strlen(rcpt);
    memcpy(ad, "liaison-v1/key-wrap", 20);   /* 19 characters and the 0x00 */
    n += 20;
    memcpy(ad + n, mid, 16);
    n += 16;
    ad[n++] = (uint8_t)sl;
    memcpy(ad + n, sender, sl);
    n += sl;
    ad[n++] = (uint8_t)rl;
    memcpy(ad + n, rcpt, rl);
    n += rl;
    return n;
}

static uint8_t *test_signed_message(const uint8_t *h, size_t hl, const uint8_t *b, size_t bl, size_t *len)
{
    uint8_t *m = malloc(20 + 4 + hl + 4 + bl), *p = m;
    memcpy(p, "liaison-v1/envelope", 20);
    p += 20;
    *p++ = (uint8_t)(hl >> 24), *p++ = (uint8_t)(hl >> 16), *p++ = (uint8_t)(hl >> 8), *p++ = (uint8_t)hl;
    memcpy(p, h, hl);
    p += hl;
    *p++ = (uint8_t)(bl >> 24), *p++ = (uint8_t)(bl >> 16), *p++ = (uint8_t)(bl >> 8), *p++ = (uint8_t)bl;
    memcpy(p, b, bl);
    *len = 20 + 4 + hl + 4 + bl;
    return m;
}

static uint8_t *build_envelope(const hspec_t *s, size_t *out_len)
{
    uint8_t mid[16], ck[32], ck2[32], commit[32], thread[LIAISON_MAX_HEADER + 64];
    uint8_t nonces[40][24], cts[40][64];
    Liaison__Wire__WrappedKey wk[40], *wkp[40];
    char *rc[40];
    randombytes_buf(ck, sizeof ck);
    randombytes_buf(ck2, sizeof ck2);
    randombytes_buf(thread, sizeof thread);
    {   /* BLAKE2b-256("liaison-v1/key-commitment" 0x00 || ck) */
        uint8_t in[26 + 32];
        memcpy(in, "liaison-v1/key-commitment", 26);
        memcpy(in + 26, s->commit_other_key ? ck2 : ck, 32);
        assert_int_equal(crypto_generichash(commit, 32, in, sizeof in, NULL, 0), 0);
    }
    const uint64_t created = 1709210096000ull;
    {   /* u48be(ms) || BLAKE2b-256("liaison-v1/message-id" 0x00 || u8 len || sender || commitment)[:10] */
        const char *of = s->msgid_of ? s->msgid_of : s->sender;
        uint64_t ms = s->msgid_ms ? s->msgid_ms : created;
        uint8_t in[22 + 1 + 255 + 32], h[32];
        size_t ol = strlen(of);
        memcpy(in, "liaison-v1/message-id", 22);
        in[22] = (uint8_t)ol;
        memcpy(in + 23, of, ol);
        memcpy(in + 23 + ol, commit, 32);
        assert_int_equal(crypto_generichash(h, 32, in, 23 + ol + 32, NULL, 0), 0);
        for (int i = 0; i < 6; i++)
            mid[i] = (uint8_t)(ms >> (8 * (5 - i)));
        memcpy(mid + 6, h, 10);
        if (s->msgid_random)
            randombytes_buf(mid, sizeof mid);
    }
    int signer = node_index(s->sender);
    if (signer < 0)
        signer = ALICE;

    for (size_t i = 0; i < s->n_keys; i++) {
        size_t j = i;
        if (s->swap_keys && i < 2)
            j = 1 - i;
        const char *rid = s->rcpts[j];
        uint8_t ad[256], pk[32];
        int idx = node_index(rid);
        if (idx >= 0)
            pair(signer, idx, pk);
        else
            randombytes_buf(pk, 32);
        randombytes_buf(nonces[i], 24);
        memset(cts[i], 0, sizeof cts[i]);
        unsigned long long cl = 0;
        size_t adl = test_wrap_ad(ad, mid, s->sender, rid);
        assert_int_equal(crypto_aead_xchacha20poly1305_ietf_encrypt(cts[i], &cl, ck, 32, ad, adl, NULL, nonces[i], pk), 0);
        liaison__wire__wrapped_key__init(&wk[i]);
        wk[i].recipient = (char *)rid;
        wk[i].nonce = (ProtobufCBinaryData){s->nonce_len, nonces[i]};
        wk[i].ciphertext = (ProtobufCBinaryData){s->ct_len, cts[i]};
        wkp[i] = &wk[i];
    }
    for (size_t i = 0; i < s->n_rcpts; i++)
        rc[i] = (char *)s->rcpts[i];

    Liaison__Wire__Header h = LIAISON__WIRE__HEADER__INIT;
    h.version = s->version;
    h.message_id = (ProtobufCBinaryData){s->msgid_len, mid};
    h.sender = s->header_nul_in_sender ? "alicex" : (char *)s->sender;
    h.n_recipients = s->n_rcpts;
    h.recipients = rc;
    h.created_ms = created;
    h.content_type = s->content_type;
    h.thread_id = (ProtobufCBinaryData){s->thread_len, thread};
    h.n_keys = s->n_keys;
    h.keys = wkp;
    h.key_commitment = (ProtobufCBinaryData){s->commit_len, commit};
    size_t hl = liaison__wire__header__get_packed_size(&h);
    uint8_t *hb = malloc(hl + s->header_pad + 8);
    liaison__wire__header__pack(&h, hb);
    if (s->header_nul_in_sender) {
        uint8_t *x = memmem(hb, hl, "alicex", 6);
        assert_non_null(x);
        x[5] = 0;
    }
    if (s->header_pad) {   /* field 15, length-delimited, with a 2-byte varint length */
        assert_true(s->header_pad >= 128 && s->header_pad < 16384);
        hb[hl++] = 0x7a;
        hb[hl++] = (uint8_t)(0x80 | (s->header_pad & 0x7f));
        hb[hl++] = (uint8_t)(s->header_pad >> 7);
        randombytes_buf(hb + hl, s->header_pad);
        hl += s->header_pad;
    }

    size_t bl = s->body_len ? s->body_len : 24 + sizeof hb_payload + 16;
    uint8_t *body = malloc(bl);
    if (s->body_len) {
        randombytes_buf(body, bl);
    } else {
        unsigned long long cl = 0;
        randombytes_buf(body, 24);
        assert_int_equal(crypto_aead_xchacha20poly1305_ietf_encrypt(body + 24, &cl, (const uint8_t *)hb_payload,
                                                                    sizeof hb_payload, hb, hl, NULL, body, ck), 0);
    }
    size_t ml = 0;
    uint8_t *m = test_signed_message(hb, hl, body, bl, &ml);
    uint8_t sig[80] = {0};
    assert_int_equal(crypto_sign_detached(sig, NULL, m, ml, K[signer]->sign_sk), 0);

    Liaison__Wire__Envelope env = LIAISON__WIRE__ENVELOPE__INIT;
    env.header = (ProtobufCBinaryData){hl, hb};
    env.body = (ProtobufCBinaryData){bl, body};
    env.signature = (ProtobufCBinaryData){s->sig_len, sig};
    *out_len = liaison__wire__envelope__get_packed_size(&env);
    uint8_t *out = malloc(*out_len + 16);
    liaison__wire__envelope__pack(&env, out);
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(ck2, sizeof ck2);
    free(m);
    free(body);
    free(hb);
    return out;
}

static void expect_parse_refused(const uint8_t *bytes, size_t len, int want_code, const char *needle)
{
    envelope_t *e = (envelope_t *)1;
    int code = 0;
    char err[256] = "";
    if (envelope_parse(bytes, len, &e, &code, err, sizeof err) == 0)
        fail_msg("envelope accepted (expected '%s')", needle);
    assert_null(e);
    assert_int_equal(code, want_code);
    if (strncmp(err, "envelope: ", 10) != 0 || !strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_hand_built_accepted(void **state)
{
    (void)state;
    /* Control for every malformed case below: the builder makes envelopes the library
     * accepts and opens, which also checks the format against an independent writer. */
    hspec_t s = good_hspec();
    s.thread_len = 16;
    s.content_type = 999;    /* content types are the daemon's business, not parse's */
    size_t len = 0;
    uint8_t *bytes = build_envelope(&s, &len);
    for (int who = ALICE; who <= CAROL; who++) {
        uint8_t *pt = NULL;
        size_t pt_len = 0;
        assert_int_equal(receive(bytes, len, ALICE, who, &pt, &pt_len), 0);
        assert_int_equal(pt_len, sizeof hb_payload);
        assert_memory_equal(pt, hb_payload, sizeof hb_payload);
        free(pt);
    }
    free(bytes);
}

static void test_key_commitment_checked(void **state)
{
    (void)state;
    /* The body decrypts with the key every recipient unwraps, but the signed header
     * commits to another one: nobody may open it (one body, one plaintext for all). */
    hspec_t s = good_hspec();
    s.commit_other_key = true;
    size_t len = 0;
    uint8_t *bytes = build_envelope(&s, &len);
    for (int who = ALICE; who <= CAROL; who++) {
        uint8_t *pt = (uint8_t *)1;
        size_t pt_len = 0;
        assert_int_equal(receive(bytes, len, ALICE, who, &pt, &pt_len), -1);
        assert_null(pt);
    }
    free(bytes);
}

static void test_stored_envelope_without_commitment(void **state)
{
    (void)state;
    /* Stored before key commitments existed: the node still opens what it holds, but
     * the same bytes from the wire are malformed, and a short commitment is never fine. */
    hspec_t s = good_hspec();
    s.commit_len = 0;
    size_t len = 0;
    uint8_t *bytes = build_envelope(&s, &len);
    envelope_t *e = NULL;
    int code = 0;
    char err[256];
    assert_int_equal(envelope_parse(bytes, len, &e, &code, err, sizeof err), -1);
    assert_int_equal(envelope_parse_stored(bytes, len, &e, &code, err, sizeof err), 0);
    assert_int_equal(envelope_verify(e, K[ALICE]->sign_pk), 0);
    uint8_t pk[32], *pt = NULL;
    size_t pt_len = 0;
    pair(BOB, ALICE, pk);
    assert_int_equal(envelope_open(e, "bob", pk, &pt, &pt_len), 0);
    assert_int_equal(pt_len, sizeof hb_payload);
    assert_memory_equal(pt, hb_payload, sizeof hb_payload);
    free(pt);
    envelope_destroy(&e);
    free(bytes);
    s.commit_len = 31;
    bytes = build_envelope(&s, &len);
    assert_int_equal(envelope_parse_stored(bytes, len, &e, &code, err, sizeof err), -1);
    assert_non_null(strstr(err, "key commitment is 31 bytes"));
    free(bytes);
    /* A committed envelope read back from the store is still checked. */
    s = good_hspec();
    s.commit_other_key = true;
    bytes = build_envelope(&s, &len);
    assert_int_equal(envelope_parse_stored(bytes, len, &e, &code, err, sizeof err), 0);
    pt = (uint8_t *)1;
    assert_int_equal(envelope_open(e, "bob", pk, &pt, &pt_len), -1);
    assert_null(pt);
    envelope_destroy(&e);
    free(bytes);
}

static void test_library_envelope_independently_opened(void **state)
{
    (void)state;
    static const char msg[] = "checked against the spec";
    const char *ids[] = {"alice", "bob"};
    uint8_t msgid[16];
    size_t len = 0;
    char err[256];
    uint8_t *bytes = seal_ids(ALICE, "alice", ids, 2, msg, sizeof msg, NULL, msgid, &len, err, sizeof err);

    Liaison__Wire__Envelope *env = liaison__wire__envelope__unpack(NULL, len, bytes);
    assert_non_null(env);
    Liaison__Wire__Header *h = liaison__wire__header__unpack(NULL, env->header.len, env->header.data);
    assert_non_null(h);
    size_t ml = 0;
    uint8_t *m = test_signed_message(env->header.data, env->header.len, env->body.data, env->body.len, &ml);
    assert_int_equal(env->signature.len, 64);
    assert_int_equal(crypto_sign_verify_detached(env->signature.data, m, ml, K[ALICE]->sign_pk), 0);
    assert_int_equal(h->version, 1);
    assert_memory_equal(h->message_id.data, msgid, 16);

    uint8_t ad[256], pk[32], ck[32], pt[sizeof msg];
    unsigned long long n = 0;
    pair(BOB, ALICE, pk);
    size_t adl = test_wrap_ad(ad, msgid, "alice", "bob");
    assert_string_equal(h->keys[1]->recipient, "bob");
    assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(ck, &n, NULL, h->keys[1]->ciphertext.data,
                                                                h->keys[1]->ciphertext.len, ad, adl,
                                                                h->keys[1]->nonce.data, pk), 0);
    assert_int_equal(n, 32);
    assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &n, NULL, env->body.data + 24, env->body.len - 24,
                                                                env->header.data, env->header.len, env->body.data, ck),
                     0);
    assert_int_equal(n, sizeof msg);
    assert_memory_equal(pt, msg, sizeof msg);
    free(m);
    liaison__wire__header__free_unpacked(h, NULL);
    liaison__wire__envelope__free_unpacked(env, NULL);
    free(bytes);
}

/* Every random field of an envelope (the id's 80 random bits, each wrap nonce, the body
 * nonce, and through them the content key) is fresh: no two of 32 nonces in one envelope,
 * nor any nonce or id across two envelopes sealed in the same millisecond, are equal. */
static void test_random_fields_fresh(void **state)
{
    (void)state;
    const char *ids[32];
    char names[32][8];
    for (int i = 0; i < 32; i++) {
        snprintf(names[i], sizeof names[i], "n%02d", i);
        ids[i] = i == 0 ? "alice" : names[i];
    }
    uint8_t nonces[2 * 33][24], mid[2][16], wrapped[2][48];
    size_t k = 0;
    for (int e = 0; e < 2; e++) {
        size_t len = 0;
        char err[256];
        uint8_t *bytes = seal_ids(ALICE, "alice", ids, 32, "x", 1, NULL, mid[e], &len, err, sizeof err);
        assert_non_null(bytes);
        Liaison__Wire__Envelope *env = liaison__wire__envelope__unpack(NULL, len, bytes);
        assert_non_null(env);
        Liaison__Wire__Header *h = liaison__wire__header__unpack(NULL, env->header.len, env->header.data);
        assert_non_null(h);
        assert_int_equal(h->n_keys, 32);
        for (size_t i = 0; i < h->n_keys; i++) {
            assert_int_equal(h->keys[i]->nonce.len, 24);
            memcpy(nonces[k++], h->keys[i]->nonce.data, 24);
        }
        assert_true(env->body.len >= 24);
        memcpy(nonces[k++], env->body.data, 24);
        assert_int_equal(h->keys[0]->ciphertext.len, 48);
        memcpy(wrapped[e], h->keys[0]->ciphertext.data, 48);
        /* Same sender, same creation time: only the random part can differ. */
        assert_memory_equal(mid[e], mid[0], 6);
        liaison__wire__header__free_unpacked(h, NULL);
        liaison__wire__envelope__free_unpacked(env, NULL);
        free(bytes);
    }
    for (size_t i = 0; i < k; i++)
        for (size_t j = i + 1; j < k; j++)
            assert_memory_not_equal(nonces[i], nonces[j], 24);
    assert_memory_not_equal(mid[0] + 6, mid[1] + 6, 10);
    /* The key the two wraps for alice carry (her own copy) differs, nonce aside. */
    uint8_t pk[32], ck[2][32];
    unsigned long long n = 0;
    pair(ALICE, ALICE, pk);
    uint8_t ad[256];
    for (int e = 0; e < 2; e++) {
        size_t adl = test_wrap_ad(ad, mid[e], "alice", "alice");
        assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(ck[e], &n, NULL, wrapped[e], 48, ad, adl,
                                                                    nonces[e * 33], pk), 0);
        assert_int_equal(n, 32);
    }
    assert_memory_not_equal(ck[0], ck[1], 32);
}

static void test_parse_rules(void **state)
{
    (void)state;
    char names[40][8];
    typedef struct { hspec_t s; int code; const char *needle; } pcase_t;
    pcase_t c[32];
    size_t n = 0;

    c[n] = (pcase_t){good_hspec(), MALFORMED, "33 recipients, limit is 32"};
    c[n].s.rcpts[0] = "alice";
    for (int i = 1; i < 33; i++) {
        snprintf(names[i], sizeof names[i], "r%02d", i);
        c[n].s.rcpts[i] = names[i];
    }
    c[n].s.n_rcpts = c[n].s.n_keys = 33;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "0 recipients"};
    c[n].s.n_rcpts = c[n].s.n_keys = 0;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "recipient bob is listed twice"};
    c[n].s.rcpts[2] = "bob";
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "sender alice is not among the recipients"};
    c[n].s.rcpts[0] = "dave";
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "2 wrapped keys for 3 recipients"};
    c[n].s.n_keys = 2;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "4 wrapped keys for 3 recipients"};
    c[n].s.rcpts[3] = "dave";   /* a key for a node not in the recipient list */
    c[n].s.n_keys = 4;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "wrapped key 1 is not for recipient 1"};
    c[n].s.swap_keys = true;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "23-byte nonce"};
    c[n].s.nonce_len = 23;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "47-byte ciphertext"};
    c[n].s.ct_len = 47;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "49-byte ciphertext"};
    c[n].s.ct_len = 49;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "message id is 15 bytes"};
    c[n].s.msgid_len = 15;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "message id is 0 bytes"};
    c[n].s.msgid_len = 0;
    n++;
    /* An id is its sender's: a co-recipient who saw it cannot use it (PROTOCOL.md 5). */
    c[n] = (pcase_t){good_hspec(), MALFORMED, "message id is not the one its time, sender and key commitment give"};
    c[n].s.msgid_of = "bob";
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "message id is not the one its time, sender and key commitment give"};
    c[n].s.msgid_random = true;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "message id is not the one its time, sender and key commitment give"};
    c[n].s.msgid_ms = 1709210096001ull;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "thread id is 8 bytes"};
    c[n].s.thread_len = 8;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "key commitment is 0 bytes, expected 32"};
    c[n].s.commit_len = 0;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "key commitment is 31 bytes, expected 32"};
    c[n].s.commit_len = 31;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "sender is not a valid node id"};
    c[n].s.sender = "Alice";
    c[n].s.rcpts[0] = "Alice";
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "recipient 2 is not a valid node id"};
    c[n].s.rcpts[1] = "x y";
    n++;
    c[n] = (pcase_t){good_hspec(), VERSION, "version 2"};
    c[n].s.version = 2;
    n++;
    c[n] = (pcase_t){good_hspec(), VERSION, "version 0"};
    c[n].s.version = 0;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "body is 39 bytes"};
    c[n].s.body_len = 39;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "signature is 63 bytes"};
    c[n].s.sig_len = 63;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "signature is 65 bytes"};
    c[n].s.sig_len = 65;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "header is 8"};   /* 8xxx bytes, limit 8192 */
    c[n].s.header_pad = LIAISON_MAX_HEADER;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "canonical"};
    c[n].s.header_pad = 200;
    n++;
    c[n] = (pcase_t){good_hspec(), MALFORMED, "canonical"};
    c[n].s.header_nul_in_sender = true;
    n++;

    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        uint8_t *bytes = build_envelope(&c[i].s, &len);
        expect_parse_refused(bytes, len, c[i].code, c[i].needle);
        /* The refusal names the message whenever the header decodes with a 16-byte id
         * (not for a header over its limit, which is not decoded). */
        uint8_t id[LIAISON_MSGID_BYTES];
        bool named = envelope_refused_msgid(bytes, len, id);
        assert_int_equal(named, c[i].s.msgid_len == 16 && c[i].s.header_pad != LIAISON_MAX_HEADER);
        if (named) {
            Liaison__Wire__Envelope *env = liaison__wire__envelope__unpack(NULL, len, bytes);
            assert_non_null(env);
            Liaison__Wire__Header *h = liaison__wire__header__unpack(NULL, env->header.len, env->header.data);
            assert_non_null(h);
            assert_memory_equal(id, h->message_id.data, LIAISON_MSGID_BYTES);
            liaison__wire__header__free_unpacked(h, NULL);
            liaison__wire__envelope__free_unpacked(env, NULL);
        }
        free(bytes);
    }
}

static void test_parse_outer(void **state)
{
    (void)state;
    hspec_t s = good_hspec();
    size_t len = 0;
    uint8_t *good = build_envelope(&s, &len);
    uint8_t garbage[64];
    memset(garbage, 0xff, sizeof garbage);

    expect_parse_refused(good, 0, MALFORMED, "0 bytes");
    expect_parse_refused(NULL, 10, MALFORMED, "bytes");
    expect_parse_refused(garbage, sizeof garbage, MALFORMED, "cannot be decoded");
    uint8_t *huge = calloc(1, LIAISON_MAX_ENVELOPE + 1);
    expect_parse_refused(huge, LIAISON_MAX_ENVELOPE + 1, MALFORMED, "must be 1 to");
    free(huge);
    expect_parse_refused(good, len - 1, MALFORMED, "cannot be decoded");   /* truncated */
    uint8_t id[LIAISON_MSGID_BYTES];
    assert_false(envelope_refused_msgid(garbage, sizeof garbage, id));
    assert_false(envelope_refused_msgid(good, len - 1, id));
    assert_false(envelope_refused_msgid(NULL, 10, id));
    assert_true(envelope_refused_msgid(good, len, id));

    /* An unknown field appended to the outer envelope: same signature, other bytes. */
    uint8_t *ext = malloc(len + 2);
    memcpy(ext, good, len);
    ext[len] = 0x78;   /* field 15, varint */
    ext[len + 1] = 0x01;
    expect_parse_refused(ext, len + 2, MALFORMED, "canonical");
    free(ext);

    /* The same three fields in another order. */
    Liaison__Wire__Envelope *env = liaison__wire__envelope__unpack(NULL, len, good);
    assert_non_null(env);
    Liaison__Wire__Envelope only_sig = LIAISON__WIRE__ENVELOPE__INIT, no_sig = LIAISON__WIRE__ENVELOPE__INIT;
    only_sig.signature = env->signature;
    no_sig.header = env->header;
    no_sig.body = env->body;
    size_t l1 = liaison__wire__envelope__get_packed_size(&only_sig);
    size_t l2 = liaison__wire__envelope__get_packed_size(&no_sig);
    uint8_t *reord = malloc(l1 + l2);
    liaison__wire__envelope__pack(&only_sig, reord);
    liaison__wire__envelope__pack(&no_sig, reord + l1);
    assert_int_equal(l1 + l2, len);
    expect_parse_refused(reord, len, MALFORMED, "canonical");

    /* A header field sent twice (protobuf keeps the last). */
    uint8_t *twice = malloc(len + l2);
    liaison__wire__envelope__pack(&no_sig, twice);
    memcpy(twice + l2, good, len);
    expect_parse_refused(twice, len + l2, MALFORMED, "canonical");
    free(twice);
    free(reord);
    liaison__wire__envelope__free_unpacked(env, NULL);

    /* Missing header (empty bytes field is omitted by proto3). */
    Liaison__Wire__Envelope e2 = LIAISON__WIRE__ENVELOPE__INIT;
    uint8_t body[40] = {0}, sig[64] = {0};
    e2.body = (ProtobufCBinaryData){sizeof body, body};
    e2.signature = (ProtobufCBinaryData){sizeof sig, sig};
    uint8_t buf[200];
    size_t l3 = liaison__wire__envelope__pack(&e2, buf);
    expect_parse_refused(buf, l3, MALFORMED, "header is 0 bytes");

    /* The good one, to show the cases above were refused for their own reason. */
    envelope_t *e = NULL;
    int code = -1;
    char err[256];
    assert_int_equal(envelope_parse(good, len, &e, &code, err, sizeof err), 0);
    envelope_destroy(&e);
    free(good);
}

static void test_envelope_hash(void **state)
{
    (void)state;
    uint8_t h[32], want[32];
    /* Known answers from Python hashlib.blake2b(digest_size=32). */
    envelope_hash((const uint8_t *)"abc", 3, h);
    unit_hex("43f304976328734050acd6fe65ce06f24eebd131b138da7e1a97173487e8b9c3", want, 32);
    assert_memory_equal(h, want, 32);
    envelope_hash(NULL, 0, h);
    unit_hex("20e37b325aaa26236231bfbdd1c0e5b2aab0027dd87fd98e07038350b1789699", want, 32);
    assert_memory_equal(h, want, 32);

    /* Equals the documented construction over a real envelope. */
    const char *ids[] = {"alice", "bob"};
    uint8_t msgid[16];
    size_t len;
    char err[256];
    uint8_t *env = seal_ids(ALICE, "alice", ids, 2, "x", 1, NULL, msgid, &len, err, sizeof err);
    uint8_t *m = malloc(sizeof "liaison-v1/envelope-hash" + len);
    memcpy(m, "liaison-v1/envelope-hash", sizeof "liaison-v1/envelope-hash");
    memcpy(m + sizeof "liaison-v1/envelope-hash", env, len);
    assert_int_equal(crypto_generichash(want, 32, m, sizeof "liaison-v1/envelope-hash" + len, NULL, 0), 0);
    envelope_hash(env, len, h);
    assert_memory_equal(h, want, 32);
    env[len - 1] ^= 1;
    envelope_hash(env, len, h);
    assert_memory_not_equal(h, want, 32);
    free(m);
    free(env);
}

static void test_null_safety(void **state)
{
    (void)state;
    uint8_t pk[32] = {0}, *pt = (uint8_t *)1;
    size_t pt_len;
    assert_int_equal(envelope_verify(NULL, pk), -1);
    assert_int_equal(envelope_recipient_index(NULL, "a"), -1);
    assert_int_equal(envelope_open(NULL, "a", pk, &pt, &pt_len), -1);
    assert_null(pt);
    assert_null(envelope_msgid(NULL));
    envelope_destroy(NULL);
}

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < N_NODES; i++)
        if (!(K[i] = keys_generate()))
            return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N_NODES; i++)
        keys_destroy(&K[i]);
    return 0;
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    unit_memory_pin();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_sender_only_and_empty_payload),
        cmocka_unit_test(test_max_payload),
        cmocka_unit_test(test_sizes_across_the_inline_buffer),
        cmocka_unit_test(test_out_of_memory_is_no_verdict),
        cmocka_unit_test(test_canonical_check_out_of_memory_is_no_verdict),
        cmocka_unit_test(test_parse_into_callers_storage),
        cmocka_unit_test(test_every_single_byte_change),
        cmocka_unit_test(test_wrong_recipient_and_keys),
        cmocka_unit_test(test_seal_input_limits),
        cmocka_unit_test(test_hand_built_accepted),
        cmocka_unit_test(test_key_commitment_checked),
        cmocka_unit_test(test_stored_envelope_without_commitment),
        cmocka_unit_test(test_library_envelope_independently_opened),
        cmocka_unit_test(test_random_fields_fresh),
        cmocka_unit_test(test_parse_rules),
        cmocka_unit_test(test_parse_outer),
        cmocka_unit_test(test_envelope_hash),
        cmocka_unit_test(test_null_safety),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
