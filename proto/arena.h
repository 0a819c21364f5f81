/* SPDX-License-Identifier: Apache-2.0 */
/* A bump allocator for protobuf-c's unpacking on the hot paths: the message, its
 * strings, arrays and copied bytes are carved out of one buffer the caller provides
 * (on its stack, or inside the object that keeps the message), and released at once.
 * What does not fit goes to malloc and is freed at release. Released memory is wiped:
 * unpacked requests and payloads can hold clinical content. */
#ifndef LIAISON_ARENA_H
#define LIAISON_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

typedef struct pb_arena {
    ProtobufCAllocator alloc; /* pass &arena.alloc to __unpack and __free_unpacked */
    uint8_t *buf;
    size_t cap, used;
    struct pb_big *big;       /* allocations that did not fit, newest first */
    size_t big_count;         /* how many there were since init (tests, tuning) */
    bool failed;              /* an allocation failed (out of memory) since init or release:
                               * an unpack that then returned NULL says nothing of its input */
} pb_arena_t;

/* Uses buf[0..cap) (any alignment; may be NULL with cap 0: every allocation then goes
 * to malloc). */
void pb_arena_init(pb_arena_t *a, void *buf, size_t cap);

/* Wipes what was handed out and frees what went to malloc; the arena can be used again. */
void pb_arena_release(pb_arena_t *a);

#endif
