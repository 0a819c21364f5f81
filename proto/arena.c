/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the bump allocator for protobuf-c's unpacking (see arena.h). */
#include "arena.h"

#include <stdlib.h>
#include <sodium.h>

#define ALIGN 16u

struct pb_big {
    struct pb_big *next;
    size_t size;
    _Alignas(16) uint8_t data[];
};

static void *arena_alloc(void *ctx, size_t size)
{
    pb_arena_t *a = ctx;
    uintptr_t base = (uintptr_t)a->buf;
    size_t start = (size_t)(((base + a->used + (ALIGN - 1)) & ~(uintptr_t)(ALIGN - 1)) - base);
    if (a->buf && start <= a->cap && size <= a->cap - start) {
        a->used = start + size;
        return a->buf + start;
    }
    struct pb_big *b = size > SIZE_MAX - sizeof(struct pb_big) ? NULL : malloc(sizeof *b + size);
    if (!b) {
        a->failed = true;
        return NULL;
    }
    b->next = a->big;
    b->size = size;
    a->big = b;
    a->big_count++;
    return b->data;
}

/* Everything is given back at release. */
static void arena_free(void *ctx, void *p)
{
    (void)ctx;
    (void)p;
}

void pb_arena_init(pb_arena_t *a, void *buf, size_t cap)
{
    a->alloc = (ProtobufCAllocator){.alloc = arena_alloc, .free = arena_free, .allocator_data = a};
    a->buf = buf;
    a->cap = buf ? cap : 0;
    a->used = 0;
    a->big = NULL;
    a->big_count = 0;
    a->failed = false;
}

void pb_arena_release(pb_arena_t *a)
{
    if (a->used)
        sodium_memzero(a->buf, a->used);
    a->used = 0;
    a->failed = false;
    while (a->big) {
        struct pb_big *b = a->big;
        a->big = b->next;
        sodium_memzero(b->data, b->size);
        free(b);
    }
}
