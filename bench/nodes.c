/* SPDX-License-Identifier: Apache-2.0 */
/* liaison-bench: real nodes. Each is created with the liaison CLI (liaison init), runs
 * as its own liaisond process, and is driven over its control socket with
 * libliaison-client (peer add, peer list, sends). */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sodium.h>

#include "control.pb-c.h"

#define MAX_CHILDREN 256
static pid_t children[MAX_CHILDREN];

static void child_add(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (!children[i]) {
            children[i] = pid;
            return;
        }
}

/* Environment= lines of the [Service] section of a systemd unit, in the simple form
 * the shipped unit uses: one or more NAME=VALUE separated by spaces, no quotes, escapes
 * or specifiers; an empty Environment= clears what came before, and a later value of a
 * name replaces an earlier one, as in systemd. Anything else is refused rather than
 * half-understood. */
int unit_env_read(bench_env_t *env, const char *path, char *err, size_t errlen)
{
    const size_t max = sizeof env->unit_env / sizeof env->unit_env[0];
    env->n_unit_env = 0;
    env->unit[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the unit %s: %s (pass --unit FILE, or --unit none)", path, strerror(errno));
        return -1;
    }
    char line[2048];
    int lineno = 0, rc = 0;
    bool service = false;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        char *t = line + strspn(line, " \t");
        t[strcspn(t, "\r\n")] = '\0';
        if (t[0] == '[') {
            service = strcmp(t, "[Service]") == 0;
            continue;
        }
        if (!service || strncmp(t, "Environment=", 12) != 0)
            continue;
        char *save = NULL, *w = strtok_r(t + 12, " \t", &save);
        if (!w)
            env->n_unit_env = 0; /* "Environment=" alone: the list so far is cleared */
        for (; w; w = strtok_r(NULL, " \t", &save)) {
            const char *eq = strchr(w, '=');
            if (!eq || eq == w || strpbrk(w, "\"'\\%$") || strlen(w) >= sizeof env->unit_env[0]) {
                snprintf(err, errlen, "%s:%d: cannot use the setting '%.64s' (NAME=VALUE without quotes or specifiers)",
                         path, lineno, w);
                rc = -1;
                break;
            }
            int i = 0;
            while (i < env->n_unit_env && strncmp(env->unit_env[i], w, (size_t)(eq - w) + 1) != 0)
                i++;
            if (i == env->n_unit_env && (size_t)env->n_unit_env == max) {
                snprintf(err, errlen, "%s:%d: more than %zu variables", path, lineno, max);
                rc = -1;
                break;
            }
            snprintf(env->unit_env[i], sizeof env->unit_env[0], "%s", w);
            if (i == env->n_unit_env)
                env->n_unit_env++;
        }
    }
    fclose(f);
    if (rc == 0)
        snprintf(env->unit, sizeof env->unit, "%s", path);
    return rc;
}

/* The environment of a daemon: the bench's own, less what systemd would have set for
 * the bench itself, with the unit's variables in place of any of the same name. Built
 * before fork (the child only calls execve). The strings are environ's and env's. */
static char **daemon_envp(const bench_env_t *env)
{
    static const char *const drop[] = {"JOURNAL_STREAM=", "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID="};
    size_t n = 0;
    while (environ[n])
        n++;
    char **out = calloc(n + (size_t)env->n_unit_env + 1, sizeof *out);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = environ[i], *eq = strchr(e, '=');
        bool keep = eq != NULL;
        for (size_t d = 0; keep && d < sizeof drop / sizeof drop[0]; d++)
            keep = strncmp(e, drop[d], strlen(drop[d])) != 0;
        for (int u = 0; keep && u < env->n_unit_env; u++)
            keep = strncmp(e, env->unit_env[u], (size_t)(eq - e) + 1) != 0;
        if (keep)
            out[k++] = environ[i];
    }
    for (int u = 0; u < env->n_unit_env; u++)
        out[k++] = (char *)env->unit_env[u];
    return out;
}

static int env_checked;
int nodes_env_checked(void) { return env_checked; }

/* Whether the running daemon's environment holds every variable of its unit (read back
 * from /proc, so that the report says what the daemons had, not only what was asked). */
static bool env_holds(const bnode_t *n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)n->pid);
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        char *more = realloc(text, len + got + 1);
        if (!more)
            break;
        text = more;
        memcpy(text + len, buf, got);
        len += got;
    }
    fclose(f);
    bool all = text != NULL || n->env->n_unit_env == 0;
    for (int u = 0; all && u < n->env->n_unit_env; u++) {
        bool found = false;
        for (size_t off = 0; off < len && !found; off += strlen(text + off) + 1)
            found = strcmp(text + off, n->env->unit_env[u]) == 0;
        all = found;
    }
    free(text);
    return all;
}

static void child_del(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] == pid)
            children[i] = 0;
}

void nodes_kill_all(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
}

/* Whether nothing is bound to 127.0.0.1:port now. */
static bool port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

int free_tcp_port(void)
{
    /* Below the kernel's range of ephemeral ports: a port the kernel hands out (bind to
     * port 0) can be taken by any daemon's outgoing connection between this choice and
     * the daemon's own bind, which failed one start in fifty of a 50-node mesh. At
     * random in the lower half, so that runs side by side do not walk into each other's
     * ports, and never one this run has handed out already. */
    static int given[4096];
    static size_t n_given;
    int lo = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
    if (f) {
        int a, b;
        if (fscanf(f, "%d %d", &a, &b) == 2 && a > 4096)
            lo = a;
        fclose(f);
    }
    for (int tries = 0; tries < 1000 && n_given < sizeof given / sizeof given[0]; tries++) {
        int port = lo / 2 + (int)randombytes_uniform((uint32_t)(lo - lo / 2));
        bool seen = false;
        for (size_t i = 0; i < n_given && !seen; i++)
            seen = given[i] == port;
        if (!seen && port_free(port)) {
            given[n_given++] = port;
            return port;
        }
    }
    return -1;
}

/* Sets key = value in [section] of liaison.conf (replacing the key if the section has it). */
static int conf_set(const char *conf, const char *section, const char *key, const char *value)
{
    char *s = read_text_file(conf, 65536);
    if (!s)
        return -1;
    FILE *f = fopen(conf, "we");
    if (!f) {
        free(s);
        return -1;
    }
    char cur[64] = "";
    bool done = false;
    for (char *save = NULL, *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '[') {
            if (!done && strcmp(cur, section) == 0) {
                fprintf(f, "%s = %s\n", key, value);
                done = true;
            }
            snprintf(cur, sizeof cur, "%.*s", (int)strcspn(line + 1, "]"), line + 1);
        } else if (strcmp(cur, section) == 0) {
            size_t kl = strcspn(line, " =");
            if (kl == strlen(key) && strncmp(line, key, kl) == 0) {
                if (!done)
                    fprintf(f, "%s = %s\n", key, value);
                done = true;
                continue;
            }
        }
        fprintf(f, "%s\n", line);
    }
    if (!done && strcmp(cur, section) == 0)
        fprintf(f, "%s = %s\n", key, value);
    else if (!done)
        fprintf(f, "[%s]\n%s = %s\n", section, key, value);
    free(s);
    return fclose(f);
}

int node_create(const bench_env_t *env, bnode_t *n, const char *dir, const char *id, int port)
{
    memset(n, 0, sizeof *n);
    snprintf(n->id, sizeof n->id, "%s", id);
    snprintf(n->home, sizeof n->home, "%s/%s", dir, id);
    snprintf(n->db, sizeof n->db, "%s/liaison.db", n->home);
    snprintf(n->log, sizeof n->log, "%s/liaisond.log", n->home);
    snprintf(n->card_file, sizeof n->card_file, "%s/card.txt", n->home);
    n->port = port > 0 ? port : free_tcp_port();
    snprintf(n->endpoint, sizeof n->endpoint, "tcp://127.0.0.1:%d", n->port);
    if (mkdir_p(dir) != 0)
        return -1;
    char cli[600], out[600];
    snprintf(cli, sizeof cli, "%s/client/liaison", env->bin_dir);
    snprintf(out, sizeof out, "%s/%s.init.log", dir, id);
    const char *argv[] = {cli,      "--home", n->home,     "init",   "--id",   id, "--name", id,
                          "--role", "therapist", "--listen", n->endpoint, NULL};
    int rc = run_cmd(argv, out);
    if (rc != 0) {
        note("liaison init for %s failed (exit %d), see %s", id, rc, out);
        return -1;
    }
    char conf[600];
    snprintf(conf, sizeof conf, "%s/liaison.conf", n->home);
    for (int i = 0; i < env->n_conf; i++) {
        char sec[64], key[64];
        const char *dot = strchr(env->conf[i], '.'), *eq = strchr(env->conf[i], '=');
        if (!dot || !eq || dot > eq) {
            note("--conf %s: expected SECTION.KEY=VALUE", env->conf[i]);
            return -1;
        }
        snprintf(sec, sizeof sec, "%.*s", (int)(dot - env->conf[i]), env->conf[i]);
        snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
        if (conf_set(conf, sec, key, eq + 1) != 0)
            return -1;
    }
    return 0;
}

int node_start(const bench_env_t *env, bnode_t *n)
{
    char bin[600];
    snprintf(bin, sizeof bin, "%s/daemon/liaisond", env->bin_dir);
    char **envp = daemon_envp(env);
    if (!envp)
        return -1;
    n->env = env;
    pid_t pid = fork();
    if (pid < 0) {
        free(envp);
        return -1;
    }
    if (pid == 0) {
        int fd = open(n->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in >= 0)
            dup2(in, 0);
        char *const argv[] = {bin, "--home", n->home, NULL};
        execve(bin, argv, envp);
        _exit(127);
    }
    free(envp);
    n->pid = pid;
    child_add(pid);
    return 0;
}

int node_wait_up(bnode_t *n, int timeout_ms)
{
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;
    char err[512] = "";
    while (now_ns() < end) {
        int st;
        if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
            child_del(n->pid);
            n->pid = 0;
            note("liaisond %s exited during start-up; see %s", n->id, n->log);
            return -1;
        }
        if ((n->cli = liaison_client_open(n->home, LIAISON_SOCKET_CONTROL, err, sizeof err))) {
            liaison_client_set_timeout(n->cli, 60000);
            if (n->env && !env_holds(n)) {
                note("liaisond %s does not have the environment of %s (/proc/%d/environ)", n->id, n->env->unit,
                     (int)n->pid);
                return -1;
            }
            env_checked += n->env != NULL;
            return 0;
        }
        sleep_ns(20 * 1000000u);
    }
    note("liaisond %s did not answer within %d ms: %s", n->id, timeout_ms, err);
    return -1;
}

int node_stop(bnode_t *n)
{
    liaison_client_close(n->cli);
    n->cli = NULL;
    if (n->pid <= 0)
        return 0;
    kill(n->pid, SIGTERM);
    uint64_t end = now_ns() + 20ull * 1000000000u;
    int st = 0;
    pid_t r;
    while ((r = waitpid(n->pid, &st, WNOHANG)) == 0 && now_ns() < end)
        sleep_ns(5 * 1000000u);
    if (r == 0) {
        note("liaisond %s did not stop within 20 s; killed", n->id);
        kill(n->pid, SIGKILL);
        waitpid(n->pid, &st, 0);
    }
    child_del(n->pid);
    n->pid = 0;
    return r > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* One control call; on success *out is the unpacked response (free with
 * liaison__control__response__free_unpacked). */
static int call(bnode_t *n, Liaison__Control__Request *rq, Liaison__Control__Response **out)
{
    *out = NULL;
    size_t len = liaison__control__request__get_packed_size(rq);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    liaison__control__request__pack(rq, buf);
    void *resp = NULL;
    size_t rlen = 0;
    liaison_rc rc = liaison_call(n->cli, buf, len, &resp, &rlen);
    free(buf);
    if (rc != LIAISON_OK) {
        note("%s: control call failed: %s", n->id, liaison_client_error(n->cli));
        free(resp);
        return -1;
    }
    *out = liaison__control__response__unpack(NULL, rlen, resp);
    free(resp);
    return *out ? 0 : -1;
}

int node_add_peer(bnode_t *n, const bnode_t *other)
{
    char *card = read_text_file(other->card_file, 4096);
    if (!card)
        return -1;
    card[strcspn(card, "\r\n")] = 0;
    Liaison__Control__PeerAddRequest pa = LIAISON__CONTROL__PEER_ADD_REQUEST__INIT;
    pa.card = card;
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_PEER_ADD;
    rq.peer_add = &pa;
    Liaison__Control__Response *r;
    int rc = call(n, &rq, &r);
    free(card);
    if (r)
        liaison__control__response__free_unpacked(r, NULL);
    return rc;
}

int node_connected_peers(bnode_t *n, int *connected, int *total)
{
    Liaison__Control__Request rq = LIAISON__CONTROL__REQUEST__INIT;
    rq.op_case = LIAISON__CONTROL__REQUEST__OP_PEER_LIST;
    rq.peer_list = 1;
    Liaison__Control__Response *r;
    if (call(n, &rq, &r) != 0)
        return -1;
    *connected = 0;
    *total = 0;
    if (r->result_case == LIAISON__CONTROL__RESPONSE__RESULT_PEERS && r->peers) {
        *total = (int)r->peers->n_peers;
        for (size_t i = 0; i < r->peers->n_peers; i++)
            *connected += r->peers->peers[i]->connected;
    }
    liaison__control__response__free_unpacked(r, NULL);
    return 0;
}
