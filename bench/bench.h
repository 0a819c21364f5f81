/* SPDX-License-Identifier: Apache-2.0 */
/* liaison-bench: shared declarations of the benchmark driver. */
#ifndef LIAISON_BENCH_H
#define LIAISON_BENCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "liaison_client.h"

/* ---- util.c ---- */
uint64_t now_ns(void);                 /* CLOCK_MONOTONIC */
uint64_t wall_ns(void);                /* CLOCK_REALTIME */
void sleep_ns(uint64_t ns);
void sleep_until_ns(uint64_t mono_ns);
uint64_t cpu_self_ns(void);            /* this process, all threads */
uint64_t cpu_thread_ns(void);          /* calling thread */
__attribute__((format(printf, 1, 2))) void note(const char *fmt, ...);   /* progress line on stderr */
__attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt, ...);
int run_cmd(const char *const argv[], const char *out_file);  /* fork+exec+wait; exit status or -1 */
char *read_text_file(const char *path, size_t max);
int mkdir_p(const char *path);
int rm_rf(const char *path);
uint64_t file_size(const char *path);  /* 0 if missing */

/* Sorted-sample percentiles of n values in ns (sorts v in place). */
typedef struct pct {
    size_t n;
    double p50_us, p90_us, p99_us, max_us, mean_us;
} pct_t;
pct_t percentiles(uint64_t *v, size_t n);
json_t *pct_json(const pct_t *p);

/* A figure for the JSON report, rounded to one or two decimal places. */
json_t *num1(double x);
json_t *num2(double x);

/* /proc figures of a process (all its threads). */
typedef struct proc_stat {
    uint64_t cpu_ns;        /* CPU time of all its threads (the process's CPU clock) */
    uint64_t rss_kb;        /* VmRSS */
    uint64_t hwm_kb;        /* VmHWM (peak RSS) */
    uint64_t ctxsw;         /* voluntary + involuntary context switches, summed over threads */
    unsigned threads;
} proc_stat_t;
int proc_read(pid_t pid, proc_stat_t *out);
/* Starts a new peak RSS (VmHWM) from the current RSS (/proc/PID/clear_refs). 0 or -1. */
int proc_reset_peak(pid_t pid);
/* Busy CPU time of the whole machine (all CPUs, /proc/stat), ns. */
uint64_t system_busy_ns(void);
/* CPU time the hypervisor gave to others while this machine wanted it (steal), ns. */
uint64_t system_steal_ns(void);

/* ---- nodes.c: real liaisond processes ---- */
typedef struct bnode {
    char id[64];
    char home[512];
    char db[600];
    char log[600];
    char card_file[600];
    char endpoint[64];
    int port;
    pid_t pid;
    liaison_client_t *cli;  /* control connection, opened by node_wait_up */
    const struct bench_env *env; /* set by node_start: what its environment must hold */
} bnode_t;

typedef struct bench_env {
    char bin_dir[512];      /* build directory holding client/liaison and daemon/liaisond */
    char work_dir[512];     /* node homes live under it */
    const char *conf[16];   /* "section.key=value" settings written to liaison.conf */
    int n_conf;
    bool keep;              /* keep the work directory */
    /* The daemons run with the environment the shipped systemd unit gives liaisond (its
     * Environment= lines), so that they are measured as installed; --unit none: without. */
    char unit[512];         /* the unit file read, "" for none */
    char unit_env[8][256];  /* NAME=VALUE from it */
    int n_unit_env;
} bench_env_t;

int unit_env_read(bench_env_t *env, const char *path, char *err, size_t errlen);
int nodes_env_checked(void); /* daemons whose /proc/PID/environ was found to hold the unit's */

int node_create(const bench_env_t *env, bnode_t *n, const char *dir, const char *id, int port);
int node_start(const bench_env_t *env, bnode_t *n);
int node_wait_up(bnode_t *n, int timeout_ms);
int node_stop(bnode_t *n);                      /* SIGTERM, wait; 0 if it exited 0 */
void nodes_kill_all(void);                     /* atexit: every node this process started */
int node_add_peer(bnode_t *n, const bnode_t *other);
int node_connected_peers(bnode_t *n, int *connected, int *total);
int free_tcp_port(void);                       /* free on 127.0.0.1, below the ephemeral ports */

/* ---- baseline.c: what the machine and the libraries allow ---- */
typedef struct baseline {
    size_t size;
    /* libsodium through the protocol library, per message (µs of one core) */
    double seal_us;          /* seal_envelope (2 recipients) + envelope_hash */
    double rcpt_verify_us;   /* receipt_verify at the sender */
    double open_us;          /* envelope_parse + verify + open + hash at the recipient */
    double rcpt_make_us;     /* receipt_make at the recipient */
    double rcpt_verify_batch_us; /* per receipt of a batch of 64, at the sender (one signature checked) */
    double rcpt_make_batch_us;   /* per receipt of a batch of 64, at the recipient (one signature made) */
    double send_crypto_us;   /* seal + receipt verify (batched) */
    double recv_crypto_us;   /* open + receipt make (batched) */
    /* libzmq CURVE over loopback TCP, envelope out and receipt back, pipelined */
    double zmq_msgs_s;       /* wall-clock rate with both ends in this process */
    double zmq_cpu_us;       /* CPU per message, both ends together (all threads) */
    double zmq_rtt_us;       /* one envelope out and its receipt back, unpipelined */
    /* SQLite, same pragmas as daemon/store.c */
    double sql_commit_s;     /* durable single-row commits per second */
    double sql_row_us;       /* CPU per message's rows inside group commits (one side) */
    double sql_rows_s;       /* rows per second in group commits of 64 */
    double sql_commit_ms;    /* 1 / sql_commit_s */
    /* derived */
    double sender_us, recipient_us; /* per-message cost of each daemon, one core each */
    double bound_msgs_s;            /* 1e6 / max(sender_us, recipient_us) */
    double latency_floor_ms;        /* 3 durable commits + crypto + one CURVE round trip */
    /* bracketing: the bounds measured just before and just after the two-daemon runs of
     * this size (0 when only one measurement was taken) */
    double bound_before, bound_after;
} baseline_t;

int baseline_run(size_t size, const char *tmp_dir, double seconds, baseline_t *b);
/* out = the mean of the measurements in a (taken before the load runs) and b (after),
 * with the derived figures recomputed from the means. */
void baseline_merge(const baseline_t *a, const baseline_t *b, baseline_t *out);
json_t *baseline_json(const baseline_t *b);

/* ---- load.c: two daemons, pipelined sends, receipts seen through waits (or the sender's database) ---- */
typedef struct load_result {
    const char *mode;        /* "fixed" or "saturation" */
    size_t size;
    double offered_s;        /* fixed: offered msg/s; saturation: 0 */
    unsigned window;         /* saturation: messages in flight (submitted, receipt not yet seen) */
    double seconds;          /* measured interval */
    uint64_t sent, delivered, failed;
    double delivered_s;      /* receipts stored at the sender per second */
    pct_t latency;           /* send -> receipt visible in the sender's database; at fixed load
                              * from the message's scheduled send time (so that a late
                              * submission counts its lateness: no coordinated omission) */
    pct_t latency_submitted; /* fixed load: the same from the actual submission */
    pct_t slip;              /* fixed load: submission's lateness against its schedule */
    pct_t commit_latency;    /* submit -> answer "stored" (the send call's own commit) */
    double sender_cpu_us, recipient_cpu_us, bench_cpu_us; /* CPU per delivered message */
    double max_slip_us;      /* fixed load: worst lateness of a submission against its schedule */
    bool observe_db;         /* receipts seen by polling the sender's database, not by waits */
    uint64_t waits;          /* waits submitted */
    double poll_us;          /* interval at which the sender's database is polled */
    double observer_cpu_ms;  /* CPU of the thread polling the sender's database, whole run */
    uint64_t polls;
    double poll_mean_interval_us; /* the observer's rounds, measured */
    double sender_peak_rss_mb, recipient_peak_rss_mb; /* VmHWM over this phase (reset at its start) */
    double mean_in_flight;   /* saturation: messages in flight, time-weighted over the window */
    double other_cores;      /* CPU used meanwhile by processes other than the two daemons and the bench */
    double steal_cores;      /* CPU the hypervisor took away meanwhile (steal time) */
} load_result_t;

typedef struct load_opts {
    size_t size;
    double seconds;          /* measured interval */
    double warmup;           /* seconds before it */
    double rate;             /* > 0: fixed offered load */
    unsigned window;         /* saturation window */
    const char *dump;        /* NULL, or a CSV file for every message's timings */
    double poll_us;          /* observer poll interval (0: 100 us at fixed load, 1 ms at saturation) */
    bool observe_db;         /* poll the sender's database instead of waiting through the client library */
} load_opts_t;

int load_run(bnode_t *sender, bnode_t *recipient, const load_opts_t *o, load_result_t *r);
json_t *load_json(const load_result_t *r);

/* Builds a TextMessage payload whose serialized form is exactly size bytes. */
uint8_t *make_payload(size_t size, size_t *len);

/* ---- mesh.c ---- */
int mesh_run(const bench_env_t *env, int n, json_t *out);

#endif
