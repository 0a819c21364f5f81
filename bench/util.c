/* SPDX-License-Identifier: Apache-2.0 */
/* liaison-bench: clocks, processes, files, percentiles and /proc figures. */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void sleep_until_ns(uint64_t mono_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(mono_ns / 1000000000u), .tv_nsec = (long)(mono_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static uint64_t ts_ns(const struct timespec *ts) { return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec; }

uint64_t cpu_self_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts_ns(&ts);
}

uint64_t cpu_thread_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts_ns(&ts);
}

void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("liaison-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

int run_cmd(const char *const argv[], const char *out_file)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(out_file ? out_file : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in >= 0)
            dup2(in, 0);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

char *read_text_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = 0;
    return buf;
}

int mkdir_p(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int rm_rf(const char *path)
{
    const char *argv[] = {"/bin/rm", "-rf", "--", path, NULL};
    return run_cmd(argv, NULL);
}

uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double at(const uint64_t *v, size_t n, double q)
{
    /* nearest rank */
    size_t i = (size_t)(q * (double)n + 0.999999);
    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return (double)v[i - 1] / 1000.0;
}

pct_t percentiles(uint64_t *v, size_t n)
{
    pct_t p = {.n = n};
    if (!n)
        return p;
    qsort(v, n, sizeof *v, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    p.p50_us = at(v, n, 0.50);
    p.p90_us = at(v, n, 0.90);
    p.p99_us = at(v, n, 0.99);
    p.max_us = (double)v[n - 1] / 1000.0;
    p.mean_us = sum / (double)n / 1000.0;
    return p;
}


json_t *num1(double x) { return json_real(round(x * 10.0) / 10.0); }
json_t *num2(double x) { return json_real(round(x * 100.0) / 100.0); }

json_t *pct_json(const pct_t *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "samples", json_integer((json_int_t)p->n));
    json_object_set_new(o, "p50_us", num1(p->p50_us));
    json_object_set_new(o, "p90_us", num1(p->p90_us));
    json_object_set_new(o, "p99_us", num1(p->p99_us));
    json_object_set_new(o, "max_us", num1(p->max_us));
    json_object_set_new(o, "mean_us", num1(p->mean_us));
    return o;
}

/* Context switches of one thread, from /proc/PID/task/TID/status. */
static uint64_t thread_ctxsw(const char *path)
{
    char *s = read_text_file(path, 8192);
    if (!s)
        return 0;
    uint64_t total = 0;
    for (char *save = NULL, *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
            total += strtoull(line + 24, NULL, 10);
        else if (strncmp(line, "nonvoluntary_ctxt_switches:", 27) == 0)
            total += strtoull(line + 27, NULL, 10);
    }
    free(s);
    return total;
}

int proc_read(pid_t pid, proc_stat_t *out)
{
    memset(out, 0, sizeof *out);
    char path[128];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *s = read_text_file(path, 4096);
    if (!s)
        return -1;
    /* Fields after the command name (which may hold spaces) start after the last ')'. */
    char *p = strrchr(s, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        free(s);
        return -1;
    }
    free(s);
    /* The process's CPU clock counts every thread, those that ended too, in ns; /proc's
     * utime + stime only in clock ticks (10 ms: 12.5 us per message over 800 messages). */
    clockid_t cid;
    struct timespec ts;
    if (clock_getcpuclockid(pid, &cid) == 0 && clock_gettime(cid, &ts) == 0) {
        out->cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    } else {
        long hz = sysconf(_SC_CLK_TCK);
        out->cpu_ns = (ut + st) * (1000000000ull / (unsigned long long)(hz > 0 ? hz : 100));
    }
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if ((s = read_text_file(path, 8192))) {
        char *q;
        if ((q = strstr(s, "\nVmRSS:")))
            out->rss_kb = strtoull(q + 7, NULL, 10);
        if ((q = strstr(s, "\nVmHWM:")))
            out->hwm_kb = strtoull(q + 7, NULL, 10);
        free(s);
    }
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char tp[300];
            snprintf(tp, sizeof tp, "/proc/%d/task/%s/status", (int)pid, e->d_name);
            out->ctxsw += thread_ctxsw(tp);
            out->threads++;
        }
        closedir(d);
    }
    return 0;
}

int proc_reset_peak(pid_t pid)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = write(fd, "5", 1) == 1 ? 0 : -1;
    close(fd);
    return rc;
}

/* The machine's CPU time counters of /proc/stat's "cpu" line, in ns: user nice system
 * idle iowait irq softirq steal. Returns 0, or -1 if unreadable. */
static int cpu_times_ns(uint64_t v[8])
{
    char *s = read_text_file("/proc/stat", 4096);
    if (!s)
        return -1;
    unsigned long long t[8] = {0};
    int n = sscanf(s, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6],
                   &t[7]);
    free(s);
    if (n < 8)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    for (int i = 0; i < 8; i++)
        v[i] = t[i] * (1000000000ull / (unsigned long long)(hz > 0 ? hz : 100));
    return 0;
}

uint64_t system_busy_ns(void)
{
    uint64_t v[8];
    /* busy = all but idle, iowait and steal */
    return cpu_times_ns(v) == 0 ? v[0] + v[1] + v[2] + v[5] + v[6] : 0;
}

uint64_t system_steal_ns(void)
{
    uint64_t v[8];
    return cpu_times_ns(v) == 0 ? v[7] : 0;
}
