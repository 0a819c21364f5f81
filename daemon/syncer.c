/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the durability thread: its descriptor of the WAL file, the requested and durable
 * commit sequence numbers, and the eventfd that tells the loop. */
#include "syncer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

struct syncer {
    char *path;
    int fd;                 /* the WAL, opened by path (thread only) */
    dev_t dev;
    ino_t ino;
    int efd;                /* eventfd: the loop's wake-up */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work, done_cv;
    uint64_t want, done;    /* under mu */
    int failed;             /* errno of a failed sync, under mu; sticky */
    bool stop, started;
    syncer_stats_t stats;   /* under mu */
};

/* The WAL is opened by its path; should the file at the path ever be another one (SQLite
 * deleted and re-created it), the new one is opened. fdatasync on any descriptor of a
 * file flushes that file's data, whoever wrote it. */
static int sync_wal(syncer_t *s)
{
    struct stat st;
    if (stat(s->path, &st) != 0)
        return errno;
    if (s->fd < 0 || st.st_dev != s->dev || st.st_ino != s->ino) {
        int fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return errno;
        if (fstat(fd, &st) != 0) {
            int e = errno;
            close(fd);
            return e;
        }
        if (s->fd >= 0)
            close(s->fd);
        s->fd = fd;
        s->dev = st.st_dev;
        s->ino = st.st_ino;
    }
    return fdatasync(s->fd) == 0 ? 0 : errno;
}

static void *run(void *arg)
{
    syncer_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->failed && s->want <= s->done && !s->stop)
            pthread_cond_wait(&s->work, &s->mu);
        if (s->failed || s->want <= s->done)
            break; /* stopping, with nothing left to do (or nothing possible) */
        uint64_t target = s->want;
        s->stats.syncs++;
        pthread_mutex_unlock(&s->mu);
        int e = sync_wal(s);
        pthread_mutex_lock(&s->mu);
        if (e)
            s->failed = e;
        else
            s->done = target;
        pthread_cond_broadcast(&s->done_cv);
        uint64_t one = 1;
        ssize_t w = write(s->efd, &one, sizeof one);
        (void)w; /* EAGAIN only when the counter is full: the loop is woken anyway */
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int syncer_start(syncer_t **out, const char *wal_path, char *err, size_t errlen)
{
    *out = NULL;
    syncer_t *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(wal_path))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->fd = -1;
    s->efd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    int e = sync_wal(s);
    if (e) {
        snprintf(err, errlen, "cannot open the database's write-ahead log %s: %s", wal_path, strerror(e));
        syncer_stop(&s);
        return -1;
    }
    if ((s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "cannot create an eventfd: %s", strerror(errno));
        syncer_stop(&s);
        return -1;
    }
    if ((e = pthread_create(&s->thread, NULL, run, s)) != 0) {
        snprintf(err, errlen, "cannot start the durability thread: %s", strerror(e));
        syncer_stop(&s);
        return -1;
    }
    s->started = true;
    *out = s;
    return 0;
}

int syncer_fd(const syncer_t *s) { return s->efd; }

void syncer_request(syncer_t *s, uint64_t seq)
{
    pthread_mutex_lock(&s->mu);
    if (seq > s->want) {
        s->want = seq;
        pthread_cond_signal(&s->work);
    }
    pthread_mutex_unlock(&s->mu);
}

int syncer_poll(syncer_t *s, uint64_t *durable)
{
    uint64_t v;
    ssize_t r = read(s->efd, &v, sizeof v);
    (void)r; /* EAGAIN: nothing new since the last read, which is fine */
    pthread_mutex_lock(&s->mu);
    *durable = s->done;
    int e = s->failed;
    pthread_mutex_unlock(&s->mu);
    return e;
}

int syncer_wait(syncer_t *s, uint64_t seq)
{
    pthread_mutex_lock(&s->mu);
    if (seq > s->done && !s->failed)
        s->stats.waits++;
    if (seq > s->want) {
        s->want = seq;
        pthread_cond_signal(&s->work);
    }
    while (seq > s->done && !s->failed)
        pthread_cond_wait(&s->done_cv, &s->mu);
    int e = s->done >= seq ? 0 : s->failed;
    pthread_mutex_unlock(&s->mu);
    return e;
}

void syncer_stats(syncer_t *s, syncer_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

void syncer_stop(syncer_t **sp)
{
    syncer_t *s = sp ? *sp : NULL;
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->work);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    pthread_cond_destroy(&s->done_cv);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    if (s->fd >= 0)
        close(s->fd);
    if (s->efd >= 0)
        close(s->efd);
    free(s->path);
    free(s);
    *sp = NULL;
}
