/* SPDX-License-Identifier: Apache-2.0 */
/* Owns what the command line's standard output and standard error let through to a
 * terminal (see term.h). One filter on the streams, rather than a call at each place
 * that prints: text from a peer reaches the screen through many formats (show, inbox,
 * thread, patient, review, outbox, error messages quoting a value), and a place that
 * forgot the call would be the one a sender aims at. */
#include "term.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "text.h"

typedef struct guard {
    int fd;
    int err;            /* errno of the first failed write, 0 if none */
    size_t held;        /* bytes of a UTF-8 sequence cut by the end of the last write */
    char in[4096];
    size_t out_n;
    char out[8192];
} guard_t;

static guard_t out_guard = {.fd = STDOUT_FILENO}, err_guard = {.fd = STDERR_FILENO};
static FILE *raw_stdout;

static void drain(guard_t *g)
{
    size_t off = 0;
    while (off < g->out_n && !g->err) {
        ssize_t w = write(g->fd, g->out + off, g->out_n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            g->err = w < 0 ? errno : EIO;
        else
            off += (size_t)w;
    }
    g->out_n = 0;
}

static void put(void *ctx, const char *p, size_t len)
{
    guard_t *g = ctx;
    while (len && !g->err) {
        if (g->out_n == sizeof g->out)
            drain(g);
        size_t take = sizeof g->out - g->out_n < len ? sizeof g->out - g->out_n : len;
        memcpy(g->out + g->out_n, p, take);
        g->out_n += take;
        p += take;
        len -= take;
    }
}

/* fopencookie's write: returns size, or 0 with errno set if the descriptor failed. */
static ssize_t guard_write(void *cookie, const char *buf, size_t size)
{
    guard_t *g = cookie;
    size_t done = 0;
    while (done < size && !g->err) {
        size_t take = sizeof g->in - g->held < size - done ? sizeof g->in - g->held : size - done;
        memcpy(g->in + g->held, buf + done, take);
        done += take;
        size_t n = g->held + take;
        size_t used = text_visible(g->in, n, false, put, g);
        /* At most 3 bytes are held: the buffer always has room for more. */
        memmove(g->in, g->in + used, n - used);
        g->held = n - used;
    }
    drain(g);
    if (g->err) {
        errno = g->err;
        return 0;
    }
    return (ssize_t)size;
}

static FILE *guarded(guard_t *g, const char *mode, int buffering)
{
    FILE *f = fopencookie(g, mode, (cookie_io_functions_t){.write = guard_write});
    if (f && setvbuf(f, NULL, buffering, BUFSIZ) != 0) {
        fclose(f);
        f = NULL;
    }
    return f;
}

int term_guard(void)
{
    fflush(stdout);
    fflush(stderr);
    FILE *o = guarded(&out_guard, "w", isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF);
    FILE *e = o ? guarded(&err_guard, "w", _IONBF) : NULL;
    if (!o || !e) {
        if (o)
            fclose(o);
        return -1;
    }
    raw_stdout = stdout;
    /* glibc's stdout and stderr are variables that a program may set. */
    stdout = o;
    stderr = e;
    return 0;
}

int term_hold_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        /* open returns the lowest free number: fd itself, since the lower ones are open. */
        int h = open("/dev/null", (fd == 0 ? O_WRONLY : O_RDONLY) | O_NOCTTY);
        if (h < 0)
            h = open("/", O_RDONLY | O_DIRECTORY);
        if (h != fd) {
            if (h >= 0)
                close(h);
            return -1;
        }
    }
    return 0;
}

int term_stdout_error(void)
{
    return out_guard.err;
}

FILE *term_raw_stdout(void)
{
    if (!raw_stdout)
        return stdout;
    fflush(stdout);
    return raw_stdout;
}
