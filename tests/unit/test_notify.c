/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of daemon/notify.c against real AF_UNIX datagram sockets standing in for
 * systemd's side: path and abstract addresses, the exact bytes and the sender's
 * credentials received, the limits of a socket address, a manager that is not listening
 * or does not read (the call fails at once, it never blocks), and the watchdog's
 * variables as sd_watchdog_enabled(3) reads them. */
#include "unit.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "notify.h"

/* A bound datagram socket that records the sender's credentials; `name` is a path or
 * "@abstract". */
static int listener(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    assert_true(len <= sizeof sa.sun_path);
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    else
        len++;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
    return fd;
}

/* Receives one datagram without waiting: its bytes (NUL-terminated) and sender pid. */
static ssize_t receive(int fd, char *buf, size_t cap, pid_t *pid)
{
    struct iovec iov = {buf, cap - 1};
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(struct ucred))];
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof ctl};
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0)
        return n;
    buf[n] = '\0';
    *pid = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred uc;
            memcpy(&uc, CMSG_DATA(c), sizeof uc);
            *pid = uc.pid;
        }
    return n;
}

static void expect_received(int fd, const char *want)
{
    char buf[512];
    pid_t pid = 0;
    ssize_t n = receive(fd, buf, sizeof buf, &pid);
    assert_int_equal(n, (ssize_t)strlen(want)); /* no terminating NUL on the wire */
    assert_string_equal(buf, want);
    assert_int_equal(pid, getpid()); /* how systemd knows which service spoke */
}

static void expect_failure(const char *state, int err)
{
    errno = 0;
    assert_int_equal(notify_send(state), -1);
    assert_int_equal(errno, err);
}

static void test_not_run_by_a_manager(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(notify_send("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(notify_send("READY=1"), 0);
}

static void test_path_socket(void **state)
{
    (void)state;
    char *dir = unit_tempdir();
    char path[256];
    snprintf(path, sizeof path, "%s/notify", dir);
    int fd = listener(path);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(notify_send("READY=1"), 1);
    expect_received(fd, "READY=1");
    assert_int_equal(notify_send("STATUS=2 of 3 peers connected, 0 queued\nEXTEND_TIMEOUT_USEC=30000000"), 1);
    expect_received(fd, "STATUS=2 of 3 peers connected, 0 queued\nEXTEND_TIMEOUT_USEC=30000000");
    close(fd);
    /* Nobody listens there any more: the socket file is stale. */
    expect_failure("WATCHDOG=1", ECONNREFUSED);
    unlink(path);
    expect_failure("WATCHDOG=1", ENOENT);
    unsetenv("NOTIFY_SOCKET");
    rmdir(dir);
    free(dir);
}

static void test_abstract_socket(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "@liaison-unit-notify-%ld", (long)getpid());
    int fd = listener(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(notify_send("STOPPING=1"), 1);
    expect_received(fd, "STOPPING=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void test_address_limits(void **state)
{
    (void)state;
    struct sockaddr_un sa;
    size_t cap = sizeof sa.sun_path; /* 108 on Linux */
    char name[256];

    /* An abstract name may fill sun_path (the '@' becomes its leading NUL)... */
    memset(name, 'a', cap);
    name[0] = '@';
    snprintf(name + 1, 24, "liaison-%ld-", (long)getpid());
    name[strlen(name)] = 'a';
    name[cap] = '\0';
    int fd = listener(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(notify_send("READY=1"), 1);
    expect_received(fd, "READY=1");
    close(fd);
    /* ...one byte more does not fit. */
    name[cap] = 'a';
    name[cap + 1] = '\0';
    setenv("NOTIFY_SOCKET", name, 1);
    expect_failure("READY=1", ENAMETOOLONG);

    /* A path needs room for its NUL: sun_path's size in characters is one too many. */
    memset(name, 'p', cap);
    name[0] = '/';
    name[cap] = '\0';
    setenv("NOTIFY_SOCKET", name, 1);
    expect_failure("READY=1", ENAMETOOLONG);

    /* Only paths and abstract names: not relative paths, nor systemd's vsock: form. */
    setenv("NOTIFY_SOCKET", "run/notify", 1);
    expect_failure("READY=1", EAFNOSUPPORT);
    setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
    expect_failure("READY=1", EAFNOSUPPORT);

    setenv("NOTIFY_SOCKET", "/nonexistent", 1);
    expect_failure("", EINVAL);
    expect_failure(NULL, EINVAL);
    unsetenv("NOTIFY_SOCKET");
}

/* A manager that stops reading: the queue fills and the call fails at once with EAGAIN
 * instead of stalling the daemon's event loop (this test would hang otherwise). */
static void test_full_queue_does_not_block(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "@liaison-unit-full-%ld", (long)getpid());
    int fd = listener(name);
    setenv("NOTIFY_SOCKET", name, 1);
    int rc = 1, sent = 0;
    while (sent < 1000000 && (rc = notify_send("WATCHDOG=1")) == 1)
        sent++;
    assert_int_equal(rc, -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(sent > 0);
    /* Once the manager reads again, notifications go through. */
    char buf[64];
    pid_t pid;
    while (receive(fd, buf, sizeof buf, &pid) > 0)
        ;
    assert_int_equal(notify_send("READY=1"), 1);
    expect_received(fd, "READY=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog(void **state)
{
    (void)state;
    uint64_t usec = 7;
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    assert_int_equal(notify_watchdog(&usec), 0);
    assert_int_equal(usec, 7); /* untouched */

    setenv("WATCHDOG_USEC", "2000000", 1);
    assert_int_equal(notify_watchdog(&usec), 1);
    assert_int_equal(usec, 2000000);

    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    usec = 0;
    assert_int_equal(notify_watchdog(&usec), 1);
    assert_int_equal(usec, 2000000);

    /* Meant for another process (the manager set it for a parent that forked us). */
    snprintf(pid, sizeof pid, "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    usec = 0;
    assert_int_equal(notify_watchdog(&usec), 0);
    assert_int_equal(usec, 0);

    static const char *const bad_pid[] = {"", "x", "-1", "0", "12 "};
    for (size_t i = 0; i < sizeof bad_pid / sizeof *bad_pid; i++) {
        setenv("WATCHDOG_PID", bad_pid[i], 1);
        errno = 0;
        assert_int_equal(notify_watchdog(&usec), -1);
        assert_int_equal(errno, EINVAL);
    }
    unsetenv("WATCHDOG_PID");

    static const char *const bad_usec[] = {"", "0", "-5", "+5", " 5", "12x", "2.5", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad_usec / sizeof *bad_usec; i++) {
        setenv("WATCHDOG_USEC", bad_usec[i], 1);
        errno = 0;
        assert_int_equal(notify_watchdog(&usec), -1);
        assert_int_equal(errno, EINVAL);
    }
    unsetenv("WATCHDOG_USEC");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_run_by_a_manager), cmocka_unit_test(test_path_socket),
        cmocka_unit_test(test_abstract_socket),      cmocka_unit_test(test_address_limits),
        cmocka_unit_test(test_full_queue_does_not_block), cmocka_unit_test(test_watchdog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
