/* SPDX-License-Identifier: Apache-2.0 */
/* liaison-bench --mesh N: N daemons on this machine, every one a peer of every other.
 *
 * Reports the time to link them (every node adds every other's card over its control
 * socket, until every outbound connection has completed its CURVE handshake; a node
 * whose card is not yet known to the other side is refused and retries with backoff,
 * as in real life), the time to re-establish the whole mesh after all daemons restart
 * at once (the clean set-up figure), memory and idle wake-ups per daemon, and the time
 * for one node to deliver a message to all N-1 others. A message has at most
 * LIAISON_MAX_RECIPIENTS (32) recipients including its sender, so reaching 49 peers
 * takes two messages (31 + 18 recipients), submitted back to back; the time reported
 * runs from the first submission to the last receipt stored at the sender. */
#include "bench.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constants.h"


static int count_connected(bnode_t *nodes, int n, int *connected)
{
    *connected = 0;
    for (int i = 0; i < n; i++) {
        int c, t;
        if (node_connected_peers(&nodes[i], &c, &t) != 0)
            return -1;
        *connected += c;
    }
    return 0;
}

/* Waits until all n*(n-1) links are up; returns seconds since t0 or -1. */
static double wait_mesh(bnode_t *nodes, int n, uint64_t t0, double timeout_s)
{
    int want = n * (n - 1), got = 0;
    while (now_ns() - t0 < (uint64_t)(timeout_s * 1e9)) {
        if (count_connected(nodes, n, &got) != 0)
            return -1;
        if (got == want)
            return (double)(now_ns() - t0) / 1e9;
        sleep_ns(20000000u);
    }
    note("mesh: %d of %d connections up after %.0f s", got, want, timeout_s);
    return -1;
}

static int start_all(const bench_env_t *env, bnode_t *nodes, int n)
{
    for (int i = 0; i < n; i++)
        if (node_start(env, &nodes[i]) != 0)
            return -1;
    for (int i = 0; i < n; i++)
        if (node_wait_up(&nodes[i], 30000) != 0)
            return -1;
    return 0;
}

/* Sends to every other node from nodes[0] in messages of at most 31 recipients and
 * waits for all receipts. Fills first/last receipt times (s after the first submit). */
static int fan_out(bnode_t *nodes, int n, double *stored_s, double *first_s, double *last_s, int *n_msgs)
{
    const int per = (int)LIAISON_MAX_RECIPIENTS - 1;
    size_t plen;
    uint8_t *payload = make_payload(4096, &plen);
    if (!payload)
        return -1;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char uri[700];
    snprintf(uri, sizeof uri, "file:%s?mode=ro", nodes[0].db);
    if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(db, 2000) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT count(*) FROM deliveries WHERE message_id IN (?1, ?2) AND state = 2", -1, &st,
                           NULL) != SQLITE_OK) {
        note("mesh: %s", db ? sqlite3_errmsg(db) : "cannot open the database");
        free(payload);
        sqlite3_close(db);
        return -1;
    }
    char to[2][(LIAISON_MAX_ID + 1) * LIAISON_MAX_RECIPIENTS];
    int nm = 0;
    for (int i = 1; i < n; i += per, nm++) {
        size_t off = 0;
        to[nm][0] = 0;
        for (int j = i; j < n && j < i + per; j++)
            off += (size_t)snprintf(to[nm] + off, sizeof to[nm] - off, "%s%s", j > i ? "," : "", nodes[j].id);
    } /* mesh_run allows at most 63 nodes: two messages reach all 62 others */
    int rc = -1;
    uint64_t t0 = now_ns(), tok;
    uint8_t ids[2][16] = {{0}};
    for (int m = 0; m < nm; m++)
        if (liaison_submit(nodes[0].cli, to[m], 1, payload, plen, &tok) != LIAISON_OK)
            goto out;
    for (int m = 0; m < nm; m++) {
        char hex[LIAISON_ID_HEX];
        if (liaison_collect(nodes[0].cli, &tok, hex) != LIAISON_OK) {
            note("mesh: send failed: %s", liaison_client_error(nodes[0].cli));
            goto out;
        }
        for (int k = 0; k < 16; k++) {
            unsigned v;
            sscanf(hex + 2 * k, "%2x", &v);
            ids[m][k] = (uint8_t)v;
        }
    }
    *stored_s = (double)(now_ns() - t0) / 1e9;
    *first_s = -1;
    int want = n - 1;
    while (now_ns() - t0 < 60ull * 1000000000u) {
        sqlite3_bind_blob(st, 1, ids[0], 16, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, ids[nm > 1 ? 1 : 0], 16, SQLITE_STATIC);
        int got = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
        sqlite3_reset(st);
        double t = (double)(now_ns() - t0) / 1e9;
        if (got > 0 && *first_s < 0)
            *first_s = t;
        if (got >= want) {
            *last_s = t;
            rc = 0;
            break;
        }
        sleep_ns(500000u);
    }
    if (rc != 0)
        note("mesh: not every receipt arrived within 60 s");
out:
    *n_msgs = nm;
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(payload);
    return rc;
}

int mesh_run(const bench_env_t *env, int n, json_t *out)
{
    if (n < 2 || n > 63) {
        note("--mesh takes 2 to 63 nodes");
        return -1;
    }
    bnode_t *nodes = calloc((size_t)n, sizeof *nodes);
    if (!nodes)
        return -1;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/mesh", env->work_dir);
    int rc = -1;
    note("mesh: creating %d nodes", n);
    uint64_t t = now_ns();
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "m%02d", i);
        if (node_create(env, &nodes[i], dir, id, 0) != 0)
            goto out;
    }
    double create_s = (double)(now_ns() - t) / 1e9;
    t = now_ns();
    if (start_all(env, nodes, n) != 0)
        goto out;
    double start_s = (double)(now_ns() - t) / 1e9;
    note("mesh: %d daemons up in %.1f s; linking all %d pairs", n, start_s, n * (n - 1) / 2);
    t = now_ns();
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && node_add_peer(&nodes[i], &nodes[j]) != 0)
                goto out;
    double add_s = (double)(now_ns() - t) / 1e9;
    double link_s = wait_mesh(nodes, n, t, 120);
    if (link_s < 0)
        goto out;
    note("mesh: all %d connections up %.1f s after the first peer add; restarting every daemon", n * (n - 1), link_s);
    for (int i = 0; i < n; i++)
        node_stop(&nodes[i]);
    t = now_ns();
    if (start_all(env, nodes, n) != 0)
        goto out;
    double restart_up_s = (double)(now_ns() - t) / 1e9;
    double remesh_s = wait_mesh(nodes, n, t, 120);
    if (remesh_s < 0)
        goto out;
    note("mesh: full mesh again %.2f s after starting %d daemons; measuring idle for 10 s", remesh_s, n);
    sleep_ns(2000000000u);
    proc_stat_t *p0 = calloc((size_t)n, sizeof *p0), *p1 = calloc((size_t)n, sizeof *p1);
    if (!p0 || !p1) {
        free(p0);
        free(p1);
        goto out;
    }
    for (int i = 0; i < n; i++)
        proc_read(nodes[i].pid, &p0[i]);
    sleep_ns(10000000000u);
    for (int i = 0; i < n; i++)
        proc_read(nodes[i].pid, &p1[i]);
    double rss_sum = 0, rss_max = 0, wake_sum = 0, wake_max = 0, cpu_sum = 0;
    for (int i = 0; i < n; i++) {
        double rss = (double)p1[i].rss_kb / 1024.0, w = (double)(p1[i].ctxsw - p0[i].ctxsw) / 10.0;
        rss_sum += rss;
        wake_sum += w;
        cpu_sum += (double)(p1[i].cpu_ns - p0[i].cpu_ns) / 1e6 / 10.0;
        if (rss > rss_max)
            rss_max = rss;
        if (w > wake_max)
            wake_max = w;
    }
    note("mesh: fan-out from %s to the %d others", nodes[0].id, n - 1);
    json_t *fan = json_array();
    double lasts[5];
    int runs = 0, nmsg = 0;
    for (int k = 0; k < 5; k++) {
        double stored, first, last;
        if (fan_out(nodes, n, &stored, &first, &last, &nmsg) != 0)
            break;
        json_t *f = json_object();
        json_object_set_new(f, "stored_ms", num1(stored * 1e3));
        json_object_set_new(f, "first_receipt_ms", num1(first * 1e3));
        json_object_set_new(f, "last_receipt_ms", num1(last * 1e3));
        json_array_append_new(fan, f);
        lasts[runs++] = last;
        sleep_ns(500000000u);
    }
    proc_stat_t hw;
    double hwm_max = 0, hwm_sum = 0;
    for (int i = 0; i < n; i++)
        if (proc_read(nodes[i].pid, &hw) == 0) {
            hwm_sum += (double)hw.hwm_kb / 1024.0;
            if ((double)hw.hwm_kb / 1024.0 > hwm_max)
                hwm_max = (double)hw.hwm_kb / 1024.0;
        }
    for (int i = 1; i < runs; i++) /* sort for the median */
        for (int j = i; j > 0 && lasts[j] < lasts[j - 1]; j--) {
            double x = lasts[j];
            lasts[j] = lasts[j - 1];
            lasts[j - 1] = x;
        }
    json_object_set_new(out, "nodes", json_integer(n));
    json_object_set_new(out, "connections", json_integer(n * (n - 1)));
    json_object_set_new(out, "create_s", num1(create_s));
    json_object_set_new(out, "first_start_s", num1(start_s));
    json_object_set_new(out, "peer_add_calls_s", num1(add_s));
    json_object_set_new(out, "link_to_full_mesh_s", num1(link_s));
    json_object_set_new(out, "restart_daemons_up_s", num1(restart_up_s));
    json_object_set_new(out, "restart_to_full_mesh_s", json_real(round(remesh_s * 100.0) / 100.0));
    json_object_set_new(out, "idle_rss_mb_mean", num1(rss_sum / n));
    json_object_set_new(out, "idle_rss_mb_max", num1(rss_max));
    json_object_set_new(out, "peak_rss_mb_mean", num1(hwm_sum / n));
    json_object_set_new(out, "peak_rss_mb_max", num1(hwm_max));
    json_object_set_new(out, "idle_wakeups_per_s_mean", num1(wake_sum / n));
    json_object_set_new(out, "idle_wakeups_per_s_max", num1(wake_max));
    json_object_set_new(out, "idle_cpu_ms_per_s_mean", json_real(round(cpu_sum / n * 100.0) / 100.0));
    json_object_set_new(out, "fanout_messages", json_integer(nmsg));
    json_object_set_new(out, "fanout_recipients", json_integer(n - 1));
    json_object_set_new(out, "fanout_payload_bytes", json_integer(4096));
    json_object_set_new(out, "fanout_runs", fan);
    if (runs)
        json_object_set_new(out, "fanout_all_receipts_ms_median", num1(lasts[runs / 2] * 1e3));
    free(p0);
    free(p1);
    rc = runs == 5 ? 0 : -1;
out:
    for (int i = 0; i < n; i++)
        node_stop(&nodes[i]);
    free(nodes);
    return rc;
}
