/* SPDX-License-Identifier: Apache-2.0 */
/* clockshift: an LD_PRELOAD library that moves one process's wall clock, so that a test
 * can make the system clock jump under a real liaisond without touching the machine's
 * clock. CLOCK_REALTIME (and _COARSE), gettimeofday and time are shifted by the number
 * of milliseconds (signed) in the file named by $LIAISON_CLOCK_OFFSET_FILE, read again
 * at most every 20 ms of monotonic time; monotonic clocks are untouched. Not installed. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime(void)
{
    static _Atomic(clock_gettime_fn) fn;
    clock_gettime_fn f = atomic_load(&fn);
    if (!f) {
        f = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
        atomic_store(&fn, f);
    }
    return f;
}

static int64_t offset_ms(void)
{
    static _Atomic int64_t cached;
    static _Atomic int64_t read_at_ms = INT64_MIN;
    struct timespec ts;
    if (real_clock_gettime()(CLOCK_MONOTONIC, &ts) != 0)
        return atomic_load(&cached);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t last = atomic_load(&read_at_ms);
    if (last != INT64_MIN && now - last < 20)
        return atomic_load(&cached);
    atomic_store(&read_at_ms, now);
    const char *path = getenv("LIAISON_CLOCK_OFFSET_FILE");
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return atomic_load(&cached);
    char buf[32];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
        buf[n] = 0;
        atomic_store(&cached, (int64_t)strtoll(buf, NULL, 10));
    }
    return atomic_load(&cached);
}

static void shift(struct timespec *ts)
{
    int64_t off = offset_ms();
    int64_t ns = (int64_t)ts->tv_nsec + (off % 1000) * 1000000;
    ts->tv_sec += (time_t)(off / 1000);
    while (ns < 0) {
        ns += 1000000000;
        ts->tv_sec--;
    }
    while (ns >= 1000000000) {
        ns -= 1000000000;
        ts->tv_sec++;
    }
    ts->tv_nsec = (long)ns;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    int rc = real_clock_gettime()(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        shift(ts);
    return rc;
}

/* glibc declares tv non-null. */
int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    (void)tz;
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return rc;
}

time_t time(time_t *t)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t)
        *t = ts.tv_sec;
    return ts.tv_sec;
}
