#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Soak test (issue 6; not in the default suite): runs N liaisond daemons on loopback,
sends messages between them at a steady rate for a given time, and samples each
daemon's resident memory (VmRSS), open file descriptors (/proc/PID/fd) and queue
depth (deliveries waiting for a receipt) every few seconds. Prints a table and a
verdict: "flat" when nothing grows after the warm-up, "growing" otherwise (exit 1).
The warm-up must outlast the filling of each daemon's SQLite page cache, which grows
by design up to its 16 MiB cap (docs/PERFORMANCE.md, finding 9): about two minutes at
the default 40 msg/s, about seven at 10 msg/s.

    LIAISON_BUILD=build python3 tests/soak.py
    python3 tests/soak.py --build build --nodes 4 --rate 40 --seconds 3600 --interval 30

Each message goes to one or two other nodes (round robin); every tenth send is
followed by a `liaison list` on its recipient, so reads are exercised too, and another
tenth by a `liaison wait` on its sender. At the end
the queues must drain, every message must be delivered exactly once and every audit
log must verify."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "integration"))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def queue_depth(node):
    return node.query("SELECT count(*) FROM deliveries WHERE state < 2")[0][0]


def mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def slope_per_min(points):
    """Least-squares slope of (t, v) points, per minute."""
    if len(points) < 2:
        return 0.0
    mt, mv = mean([p[0] for p in points]), mean([p[1] for p in points])
    den = sum((p[0] - mt) ** 2 for p in points)
    return 60.0 * sum((p[0] - mt) * (p[1] - mv) for p in points) / den if den else 0.0


def verdict(series, warmup):
    """Compares the first and last thirds of the samples after the warm-up."""
    after = [s for s in series if s[0] >= warmup] or series
    third = max(1, len(after) // 3)
    problems = []
    for name, pid_key in (("rss", 1), ("fds", 2), ("queue", 3)):
        first = mean([s[pid_key] for s in after[:third]])
        last = mean([s[pid_key] for s in after[-third:]])
        if name == "rss" and last > first * 1.10 and last - first > 2048:
            problems.append("RSS %.0f -> %.0f kB" % (first, last))
        if name == "fds" and last > first + 2:
            problems.append("fds %.1f -> %.1f" % (first, last))
        if name == "queue" and last > max(first * 2, first + 20):
            problems.append("queue %.1f -> %.1f" % (first, last))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--rate", type=float, default=40.0, help="messages per second, all nodes together")
    ap.add_argument("--interval", type=float, default=20.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds ignored by the verdict (default: half the run, at least 30 s; SQLite's page"
                         " cache fills to its 16 MiB cap during the first two minutes at 40 msg/s)")
    ap.add_argument("--size", type=int, default=2000, help="bytes of text per message")
    ap.add_argument("--build", default=os.environ.get("LIAISON_BUILD", os.path.join(HERE, "..", "build")))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.nodes < 2:
        ap.error("--nodes must be at least 2")
    os.environ["LIAISON_BUILD"] = os.path.abspath(args.build)
    import harness  # reads LIAISON_BUILD
    warmup = args.warmup if args.warmup is not None else min(args.seconds * 0.8, max(30.0, args.seconds / 2))

    base = tempfile.mkdtemp(prefix="liaison-soak-")
    nodes = []
    try:
        for i in range(args.nodes):
            n = harness.Node(base, "node%d" % i).init()
            n.start()
            nodes.append(n)
        harness.link(*nodes)
        print("soak: %d daemons, %.1f msg/s, %d-byte texts, %.0f s, sample every %.0f s, in %s"
              % (args.nodes, args.rate, args.size, args.seconds, args.interval, base))
        head = "%7s %6s" % ("t(s)", "sent")
        for n in nodes:
            head += " | %-8s %8s %4s %5s" % (n.id, "rss(kB)", "fds", "queue")
        print(head)
        print("-" * len(head))
        samples = {n.id: [] for n in nodes}
        sent = []
        failures = 0
        t0 = time.monotonic()
        next_send = t0
        next_sample = t0
        i = 0
        text = ("steady-state message " * (args.size // 21 + 1))[:args.size]
        while True:
            now = time.monotonic()
            if now >= next_sample:
                t = now - t0
                row = "%7.1f %6d" % (t, len(sent))
                for n in nodes:
                    if n.proc.poll() is not None:
                        raise SystemExit("soak: liaisond %s exited with %s" % (n.id, n.proc.returncode))
                    r, f, q = rss_kb(n.proc.pid), fds(n.proc.pid), queue_depth(n)
                    samples[n.id].append((t, r, f, q))
                    row += " | %-8s %8d %4d %5d" % ("", r, f, q)
                print(row, flush=True)
                next_sample += args.interval
                if t >= args.seconds:
                    break
            if now >= next_send and now - t0 < args.seconds:
                src = nodes[i % len(nodes)]
                others = [n for n in nodes if n is not src]
                to = [others[i % len(others)]]
                if i % 3 == 0 and len(others) > 1:
                    to.append(others[(i + 1) % len(others)])
                r = src.cli("send", "--to", ",".join(n.id for n in to), "-", input="%d %s" % (i, text),
                            check=False)
                mid = r.stdout.strip()
                if r.returncode == 0 and len(mid) == 32:
                    sent.append((src, mid, to))
                else:
                    failures += 1
                if i % 10 == 9:
                    to[0].cli("list", "--json", check=False)
                if i % 10 == 4 and r.returncode == 0 and len(mid) == 32:
                    # A wait on the sender, answered when the message settles (or after 5 s).
                    if src.cli("wait", mid, "--timeout", "5", check=False).returncode not in (0, 5):
                        failures += 1
                i += 1
                next_send += 1.0 / args.rate
            time.sleep(max(0.0, min(next_send, next_sample) - time.monotonic()))

        # Drain, then exactly-once and audit checks.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(queue_depth(n) for n in nodes):
            time.sleep(0.5)
        undelivered = sum(queue_depth(n) for n in nodes)
        received = {n.id: n.query("SELECT count(*) FROM messages WHERE outgoing = 0")[0][0] for n in nodes}
        expected = {n.id: 0 for n in nodes}
        for _, _, to in sent:
            for n in to:
                expected[n.id] += 1
        audit_ok = all(n.cli("audit", "verify", check=False).returncode == 0 for n in nodes)

        print()
        print("sent %d messages (%d send failures), %d deliveries still queued after the drain"
              % (len(sent), failures, undelivered))
        print("received per node: %s (expected %s)" % (received, expected))
        print("audit logs verify: %s" % ("yes" if audit_ok else "NO"))
        problems = []
        for n in nodes:
            s = samples[n.id]
            after = [x for x in s if x[0] >= warmup] or s
            print("%-8s after %.0f s warm-up: rss %d -> %d kB (%+.0f kB/min), fds %d -> %d, queue max %d"
                  % (n.id, warmup, after[0][1], after[-1][1], slope_per_min([(x[0], x[1]) for x in after]),
                     after[0][2], after[-1][2], max(x[3] for x in s)))
            problems += ["%s: %s" % (n.id, p) for p in verdict(s, warmup)]
        if undelivered or received != expected or failures or not audit_ok:
            problems.append("delivery: %d queued, received %s, expected %s, %d send failures, audit %s"
                            % (undelivered, received, expected, failures, "ok" if audit_ok else "FAILED"))
        print("verdict: %s" % ("flat" if not problems else "growing: " + "; ".join(problems)))
        return 0 if not problems else 1
    finally:
        for n in nodes:
            try:
                n.stop()
            except AssertionError:
                n.kill()
        if args.keep:
            print("kept", base)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
