/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of proto/arena.c: aligned bump allocations from the caller's buffer,
 * spill-over to malloc when it is full, wiping and reuse at release, and protobuf-c
 * unpacking through it giving the same message as with the default allocator. */
#include "unit.h"

#include "arena.h"
#include "wire.pb-c.h"

static void test_bump_then_spill(void **state)
{
    (void)state;
    _Alignas(16) uint8_t buf[256];
    pb_arena_t a;
    pb_arena_init(&a, buf, sizeof buf);
    uint8_t *p = a.alloc.alloc(a.alloc.allocator_data, 3);
    uint8_t *q = a.alloc.alloc(a.alloc.allocator_data, 100);
    assert_ptr_equal(p, buf);
    assert_ptr_equal(q, buf + 16); /* 16-byte aligned */
    memset(p, 0xAA, 3);
    memset(q, 0xBB, 100);
    uint8_t *r = a.alloc.alloc(a.alloc.allocator_data, 200); /* does not fit: malloc */
    assert_non_null(r);
    assert_true(r < buf || r >= buf + sizeof buf);
    assert_int_equal((uintptr_t)r % 16, 0);
    memset(r, 0xCC, 200);
    assert_int_equal(a.big_count, 1);
    a.alloc.free(a.alloc.allocator_data, q); /* no-op until release */
    uint8_t *s = a.alloc.alloc(a.alloc.allocator_data, 16); /* still fits after q */
    assert_ptr_equal(s, buf + 128);
    pb_arena_release(&a);
    for (size_t i = 0; i < 144; i++)
        assert_int_equal(buf[i], 0); /* what was handed out is wiped */
    /* Used again from the start. */
    assert_ptr_equal(a.alloc.alloc(a.alloc.allocator_data, 8), buf);
    pb_arena_release(&a);
}

static void test_no_buffer_and_impossible_sizes(void **state)
{
    (void)state;
    pb_arena_t a;
    pb_arena_init(&a, NULL, 4096);
    void *p = a.alloc.alloc(a.alloc.allocator_data, 10);
    assert_non_null(p);
    assert_int_equal(a.big_count, 1);
    assert_null(a.alloc.alloc(a.alloc.allocator_data, SIZE_MAX));
    assert_null(a.alloc.alloc(a.alloc.allocator_data, SIZE_MAX - 8));
    pb_arena_release(&a);
    _Alignas(16) uint8_t buf[64];
    pb_arena_init(&a, buf, sizeof buf);
    assert_null(a.alloc.alloc(a.alloc.allocator_data, SIZE_MAX - 4)); /* no overflow into the buffer */
    pb_arena_release(&a);
}

/* A Frame carrying an envelope of `n` bytes, unpacked both ways. */
static void unpack_both_ways(size_t n, size_t cap, bool spills)
{
    uint8_t *env = malloc(n);
    assert_non_null(env);
    for (size_t i = 0; i < n; i++)
        env[i] = (uint8_t)(i * 31 + 7);
    Liaison__Wire__Frame f;
    liaison__wire__frame__init(&f);
    f.kind_case = LIAISON__WIRE__FRAME__KIND_ENVELOPE;
    f.envelope = (ProtobufCBinaryData){n, env};
    size_t len = liaison__wire__frame__get_packed_size(&f);
    uint8_t *bytes = malloc(len);
    assert_non_null(bytes);
    liaison__wire__frame__pack(&f, bytes);

    uint8_t *buf = aligned_alloc(16, cap);
    assert_non_null(buf);
    pb_arena_t a;
    pb_arena_init(&a, buf, cap);
    Liaison__Wire__Frame *x = liaison__wire__frame__unpack(&a.alloc, len, bytes);
    Liaison__Wire__Frame *y = liaison__wire__frame__unpack(NULL, len, bytes);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(x->kind_case, LIAISON__WIRE__FRAME__KIND_ENVELOPE);
    assert_int_equal(x->envelope.len, n);
    assert_memory_equal(x->envelope.data, y->envelope.data, n);
    assert_memory_equal(x->envelope.data, env, n);
    assert_int_equal(a.big_count > 0, spills);
    liaison__wire__frame__free_unpacked(x, &a.alloc);
    liaison__wire__frame__free_unpacked(y, NULL);
    pb_arena_release(&a);
    /* A truncated frame fails cleanly through the arena too. */
    assert_null(liaison__wire__frame__unpack(&a.alloc, len - 1, bytes));
    pb_arena_release(&a);
    free(buf);
    free(bytes);
    free(env);
}

static void test_protobuf_unpack_through_the_arena(void **state)
{
    (void)state;
    unpack_both_ways(4096, 8192, false);
    unpack_both_ways(20000, 8192, true);
    unpack_both_ways(0, 64, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bump_then_spill),
        cmocka_unit_test(test_no_buffer_and_impossible_sizes),
        cmocka_unit_test(test_protobuf_unpack_through_the_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
