/* SPDX-License-Identifier: Apache-2.0 */
/* A test tool, loaded with LD_PRELOAD: makes one allocation of a process fail, to show
 * what the process does when memory runs out at that point.
 *
 *   FAILMALLOC_AT=N      the Nth call to malloc, calloc or realloc (counted from 1 in
 *                        the process, any thread) returns NULL with errno ENOMEM; all
 *                        others are served by glibc as usual
 *   FAILMALLOC_COUNT=1   at exit, write "failmalloc: N calls" to standard error
 *
 * It replaces the three functions and serves them with glibc's own __libc_ entry
 * points, so it needs no dlsym (which allocates) to find the real ones. */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);

static atomic_ulong calls;
static unsigned long fail_at;
static int report;

__attribute__((constructor)) static void failmalloc_init(void)
{
    const char *at = getenv("FAILMALLOC_AT"), *count = getenv("FAILMALLOC_COUNT");
    fail_at = at ? strtoul(at, NULL, 10) : 0;
    report = count && strcmp(count, "1") == 0;
}

__attribute__((destructor)) static void failmalloc_fini(void)
{
    if (!report)
        return;
    char line[64];
    int n = snprintf(line, sizeof line, "failmalloc: %lu calls\n", (unsigned long)atomic_load(&calls));
    if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}

/* Whether this call is the one to fail. Calls made before the constructor ran count too
 * (fail_at is 0 then, so none fails). */
static int fails(void)
{
    unsigned long k = atomic_fetch_add(&calls, 1) + 1;
    if (fail_at && k == fail_at) {
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

void *malloc(size_t n)
{
    return fails() ? NULL : __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    return fails() ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    return fails() ? NULL : __libc_realloc(p, n);
}
