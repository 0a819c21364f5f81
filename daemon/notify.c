/* SPDX-License-Identifier: Apache-2.0 */
/* Owns the service manager's notification protocol (see notify.h). */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_send(const char *state)
{
    const char *where = getenv("NOTIFY_SOCKET");
    if (!where || !where[0])
        return 0;
    if (!state || !state[0]) {
        errno = EINVAL;
        return -1;
    }
    if (where[0] != '/' && where[0] != '@') {
        errno = EAFNOSUPPORT;
        return -1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(where);
    /* A path needs its terminating NUL inside sun_path; an abstract name does not. */
    if (len > sizeof sa.sun_path - (where[0] == '/')) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, where, len);
    socklen_t sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (where[0] == '@')
        sa.sun_path[0] = '\0';
    else
        sa_len++;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t n = sendto(fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)&sa, sa_len);
    int saved = errno;
    close(fd);
    if (n < 0) {
        errno = saved;
        return -1;
    }
    return 1;
}

/* A whole decimal number without sign or spaces; 0 or -1. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int notify_watchdog(uint64_t *usec)
{
    const char *u = getenv("WATCHDOG_USEC");
    if (!u)
        return 0;
    uint64_t v = 0;
    if (parse_u64(u, &v) != 0 || v == 0) {
        errno = EINVAL;
        return -1;
    }
    const char *p = getenv("WATCHDOG_PID");
    if (p) {
        uint64_t pid = 0;
        if (parse_u64(p, &pid) != 0 || pid == 0) {
            errno = EINVAL;
            return -1;
        }
        if (pid != (uint64_t)getpid())
            return 0;
    }
    *usec = v;
    return 1;
}
