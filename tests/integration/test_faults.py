# SPDX-License-Identifier: Apache-2.0
"""Crash consistency and resource faults (issue 6), against real daemons.

- SIGKILL of the receiver, then of the sender, at random moments while messages flow:
  every message delivered exactly once, every receipt stored, both audit logs verify,
  PRAGMA integrity_check ok. LIAISON_CRASH_ROUNDS (default 15) kills of each side;
  LIAISON_CRASH_SEED replays a run (the seed is printed on failure).
- The receiver's disk full (a small tmpfs, needs root and mount), a locked database,
  a peer unreachable for a long time, clock skew within and beyond the window.

Database checks open the files read-only; the only writes from the test are the fault
injections themselves (a TRUNCATE checkpoint before filling a disk, and a second
connection holding a write lock)."""
import os
import queue
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

import harness
from harness import NodeTest, link, wait_for

FAST_RETRY = (("retry_min_ms", "100"), ("retry_max_ms", "1000"))
CLOCKSHIFT = os.path.join(harness.BUILD, "tests", "tools", "libclockshift.so")


def integrity(node):
    return node.query("PRAGMA integrity_check")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class FaultTest(NodeTest):
    upstream = 0  # daemons restarted after libzmq's assertion (restart_aborted)

    def fast_node(self, ident, **cfg):
        """A node whose retries are fast enough for a test (cap 1 s instead of 60 s)."""
        n = self.node(ident, start=False)
        for k, v in FAST_RETRY + tuple(cfg.items()):
            n.write_config("delivery", k, v)
        n.start()
        return n

    def wait_answered_try_later(self, sender, mids, recipient, reason=""):
        """Each of mids was answered TRY_LATER (whose reason starts with reason) by
        recipient: the sender's delivery detail says so until its next attempt."""
        seen = set()

        def all_seen():
            for mid, detail in sender.query("SELECT lower(hex(message_id)), detail FROM deliveries"
                                            " WHERE recipient = ?", (recipient,)):
                if detail and detail.startswith("try-later: " + reason):
                    seen.add(mid)
            return seen >= set(mids)

        wait_for(all_seen, 20, "%s to answer TRY_LATER for each message" % recipient)

    def send_quiet(self, node, to, text, timeout_ms=3000):
        """`liaison send` that returns None instead of failing (the daemon may be dead)."""
        env = dict(os.environ, LIAISON_TIMEOUT_MS=str(timeout_ms))
        try:
            p = subprocess.run([harness.LIAISON, "--home", node.home, "send", "--to", to, "-"], input=text,
                               capture_output=True, text=True, timeout=timeout_ms / 1000 + 10, env=env)
        except subprocess.TimeoutExpired:
            return None
        mid = p.stdout.strip()
        return mid if p.returncode == 0 and len(mid) == 32 else None

    def audit_verify(self, node):
        r = node.cli("audit", "verify", check=False)
        self.assertEqual(r.returncode, 0, "audit verify on %s: %s%s" % (node.id, r.stdout, r.stderr))

    def assert_exactly_once(self, a, b, acknowledged=()):
        """Every outgoing message of a to b is delivered once, with the receipt b issued."""
        out = {bytes(r[0]).hex(): r for r in a.query(
            "SELECT m.id, d.state, d.receipt FROM messages m JOIN deliveries d ON d.message_id = m.id"
            " WHERE m.outgoing = 1 AND d.recipient = ?", (b.id,))}
        missing = [m for m in acknowledged if m not in out]
        self.assertEqual(missing, [], "sends the CLI reported are not in a's database")
        got = {bytes(r[0]).hex(): r for r in b.query(
            "SELECT m.id, coalesce(m.receipt, r.receipt) FROM messages m"
            " LEFT JOIN receipts_issued r ON r.message_id = m.id WHERE m.outgoing = 0 AND m.sender = ?", (a.id,))}
        self.assertEqual(sorted(got), sorted(out), "b's messages from a differ from what a sent")
        self.assertEqual([m for m, r in out.items() if r[1] != 2], [], "deliveries not in state delivered")
        for mid, r in out.items():
            self.assertIsNotNone(r[2], "no receipt stored for %s" % mid)
            self.assertEqual(bytes(r[2]), bytes(got[mid][1]), "a's receipt for %s is not the one b issued" % mid)
        recv = b.query("SELECT hex(message_id), count(*) FROM audit WHERE action = 'message-received'"
                       " AND peer = ? GROUP BY message_id HAVING count(*) != 1", (a.id,))
        self.assertEqual(recv, [], "message-received audited more than once")
        dlv = a.query("SELECT hex(message_id), count(*) FROM audit WHERE action = 'message-delivered'"
                      " AND peer = ? GROUP BY message_id", (b.id,))
        self.assertEqual(len(dlv), len(out))
        self.assertTrue(all(c == 1 for _, c in dlv), "message-delivered audited more than once")
        return len(out)

    def restart_if_aborted(self, node):
        """liaisond stopped by libzmq 4.3.4's `!_io_error` assertion (zeromq/libzmq#4364,
        a peer vanishing while its connection's input is stalled under load) is started
        again, as systemd's Restart=on-failure does; any other death fails the test."""
        if node.proc.poll() is None:
            return 0
        with open(node.log, errors="replace") as f:
            text = f.read()
        seen = self.__dict__.setdefault("aborts", {})
        count = text.count("Assertion failed: !_io_error")
        self.assertGreater(count, seen.get(node.id, 0), "liaisond %s died:\n%s" % (node.id, text[-3000:]))
        seen[node.id] = count
        node.logf.close()
        node.start()
        return 1

    def crash_run(self, default_rounds):
        """Rounds, a seeded random generator and the note that replays a run of kills
        (LIAISON_CRASH_ROUNDS, LIAISON_CRASH_SEED)."""
        rounds = int(os.environ.get("LIAISON_CRASH_ROUNDS", str(default_rounds)))
        seed = int(os.environ.get("LIAISON_CRASH_SEED", str(random.randrange(1 << 30))))
        self.upstream = 0
        return rounds, random.Random(seed), " (LIAISON_CRASH_SEED=%d LIAISON_CRASH_ROUNDS=%d)" % (seed, rounds)

    def restart_aborted(self, *nodes):
        """restart_if_aborted for each node, counted in self.upstream."""
        for n in nodes:
            self.upstream += self.restart_if_aborted(n)

    def pipelined_bursts(self, a, to, size, pad=0):
        """Starts a thread that drives a through libliaison-client in bursts of `size`
        sends (texts padded with `pad` bytes), 256 in flight, back to back, until the stop
        event returned is set. Returns (acked, failures, stop, thread)."""
        client = Pipelined(a.home)
        acked, failures, stop = [], [], threading.Event()

        def sender():
            while not stop.is_set():
                before = len(failures)
                client.burst(to, size, 256, acked, failures, pad=pad)
                if len(failures) > before:
                    time.sleep(0.05)

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        return acked, failures, stop, t

    def after_kills(self, a, b, acked, failures, t, note):
        """Once the kills are over: the bursts did not hang, the only failed answers are
        "daemon gone" (nothing refused, nothing failed inside a daemon), a's queue drains
        and every message is delivered exactly once."""
        self.assertFalse(t.is_alive(), "a pipelined burst hung" + note)
        self.assertEqual([f for f in failures if f not in (5, 6, "open")], [], note)

        def drained():
            self.restart_aborted(a, b)
            return a.query("SELECT count(*) FROM deliveries WHERE state < 2")[0][0] == 0

        wait_for(drained, 90, "a's queue to drain" + note)
        self.assert_exactly_once(a, b, acked)

    def verify_and_stop(self, a, b, note):
        """Both audit logs verify, and both databases pass integrity_check once stopped."""
        self.audit_verify(a)
        self.audit_verify(b)
        a.stop()
        b.stop()
        for node in (a, b):
            self.assertEqual(integrity(node), [("ok",)], node.id + note)
        if self.upstream:
            print("\n%d restart(s) after libzmq's !_io_error assertion%s" % (self.upstream, note))


class CrashConsistency(FaultTest):
    def test_sigkill_receiver_then_sender(self):
        rounds = int(os.environ.get("LIAISON_CRASH_ROUNDS", "15"))
        seed = int(os.environ.get("LIAISON_CRASH_SEED", str(random.randrange(1 << 30))))
        rng = random.Random(seed)
        note = " (LIAISON_CRASH_SEED=%d LIAISON_CRASH_ROUNDS=%d)" % (seed, rounds)
        a = self.fast_node("a")
        b = self.fast_node("b")
        link(a, b)
        acknowledged, stop = [], threading.Event()

        def sender():
            i = 0
            while not stop.is_set():
                mid = self.send_quiet(a, "b", "crash test message %d" % i)
                i += 1
                if mid:
                    acknowledged.append(mid)
                else:
                    time.sleep(0.05)

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        try:
            for victim in (b, a):
                for _ in range(rounds):
                    time.sleep(rng.uniform(0.05, 0.6))
                    victim.kill()
                    time.sleep(rng.uniform(0.0, 0.3))
                    victim.start()
        finally:
            stop.set()
            t.join(30)
        self.assertGreater(len(acknowledged), rounds, "too few messages were sent" + note)
        wait_for(lambda: a.query("SELECT count(*) FROM deliveries WHERE state < 2")[0][0] == 0, 90,
                 "a's queue to drain" + note)
        n = self.assert_exactly_once(a, b, acknowledged)
        self.assertGreaterEqual(n, len(acknowledged))
        rejected = a.query("SELECT count(*) FROM deliveries WHERE state = 3")[0][0]
        self.assertEqual(rejected, 0, "deliveries rejected" + note)
        self.verify_and_stop(a, b, note)
        # The kills really hit: both logs show several starts.
        self.assertGreaterEqual(len(a.audit("daemon-started")), rounds + 1)
        self.assertGreaterEqual(len(b.audit("daemon-started")), rounds + 1)


class Pipelined:
    """libliaison-client's pipelined sends (liaison_submit / liaison_collect), through ctypes:
    many requests in flight, each answer meaning "committed"."""

    @staticmethod
    def loadable():
        """False in a sanitizer build: an ASan-instrumented library cannot be loaded into
        an uninstrumented Python (ASan's runtime must come first in the process)."""
        return not harness.sanitized()

    def __init__(self, home, timeout_ms=3000):
        import ctypes
        self.ct = ctypes
        lib = ctypes.CDLL(os.path.join(harness.BUILD, "client", "libliaison-client.so"))
        lib.liaison_client_open.restype = ctypes.c_void_p
        lib.liaison_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
        lib.liaison_client_close.argtypes = [ctypes.c_void_p]
        lib.liaison_client_set_timeout.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.liaison_submit_text.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                            ctypes.POINTER(ctypes.c_uint64)]
        lib.liaison_collect.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64), ctypes.c_char_p]
        lib.liaison_pending.argtypes = [ctypes.c_void_p]
        lib.liaison_pending.restype = ctypes.c_size_t
        lib.liaison_client_error.argtypes = [ctypes.c_void_p]
        lib.liaison_client_error.restype = ctypes.c_char_p
        self.lib, self.home, self.timeout_ms = lib, home, timeout_ms

    def burst(self, to, n, window, acked, failures, pad=0):
        """Submits n texts to `to` (each padded with `pad` bytes), at most `window` in
        flight; appends every confirmed id to acked and every other answer's code to
        failures. Stops at the first lost connection."""
        ct, lib = self.ct, self.lib
        err = ct.create_string_buffer(512)
        c = lib.liaison_client_open(self.home.encode(), 0, err, len(err))
        if not c:
            failures.append("open")
            return
        lib.liaison_client_set_timeout(c, self.timeout_ms)
        sent = 0
        try:
            while sent < n or lib.liaison_pending(c) > 0:
                while sent < n and lib.liaison_pending(c) < window:
                    tok = ct.c_uint64()
                    if lib.liaison_submit_text(c, to.encode(), b"", b"burst %d " % sent + b"x" * pad,
                                               ct.byref(tok)) != 0:
                        failures.append("submit")
                        return
                    sent += 1
                tok, mid = ct.c_uint64(), ct.create_string_buffer(33)
                rc = lib.liaison_collect(c, ct.byref(tok), mid)
                if rc == 0:
                    acked.append(mid.value.decode())
                else:
                    failures.append(rc)
                    if rc in (5, 6, 7):  # unreachable, timeout, protocol: the daemon went away
                        return
        finally:
            lib.liaison_client_close(c)


class CrashDuringBurst(FaultTest):
    def test_sigkill_at_many_moments_of_a_pipelined_burst(self):
        if not Pipelined.loadable():
            self.skipTest("drives libliaison-client through ctypes, which a sanitizer build cannot be loaded by;"
                          " the ordinary build runs it")
        rounds, rng, note = self.crash_run(8)
        a = self.node("a", start=False)
        b = self.node("b", start=False)
        for n in (a, b):
            for k, v in FAST_RETRY + (("checkpoint_entries", "64"),):
                n.write_config("audit" if k.startswith("checkpoint") else "delivery", k, v)
            n.start()
        link(a, b)
        # Bursts of 1,000 back to back, 256 in flight: the receiver falls behind, so each
        # kill leaves frames (envelopes, checkpoints) queued on dead connections.
        acked, failures, stop, t = self.pipelined_bursts(a, "b", 1000)
        try:
            for victim in (b, a):
                for _ in range(rounds):
                    time.sleep(rng.uniform(0.05, 0.8))
                    self.restart_aborted(a, b)
                    victim.kill()
                    time.sleep(rng.uniform(0.0, 0.3))
                    victim.start()
        finally:
            stop.set()
            t.join(30)
        self.assertGreater(len(acked), 300, "too few messages were sent" + note)
        self.after_kills(a, b, acked, failures, t, note)
        self.assertEqual(a.query("SELECT count(*) FROM deliveries WHERE state = 3")[0][0], 0, note)
        # Kills under load leave old checkpoints queued on dead connections; none of
        # them may read as a rolled-back log.
        for n in (a, b):
            self.assertEqual(n.audit("witness-alarm"), [], n.id + note)
            self.assertEqual(n.audit("rollback-detected"), [], n.id + note)
        self.assertGreater(b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'")[0][0], 64)
        self.verify_and_stop(a, b, note)


def thread_named(pid, name):
    """The id of the thread of process pid called name (pthread_setname_np), or None."""
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() == name:
                    return int(tid)
    except OSError:
        pass
    return None


def thread_state(pid, tid):
    """The scheduler state letter of a thread (R running, D in I/O, S asleep), '' if gone."""
    try:
        with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


class CrashDuringBackfill(FaultTest):
    def test_sigkill_while_the_backfill_thread_copies(self):
        """SIGKILL of a daemon at the moment its backfill thread is seen copying the WAL
        into the database file (thread liaisond-bf running or in I/O, never waiting for
        work), each side in turn, while a pipelined burst of 4 KB messages keeps both WALs
        growing: nothing lost, nothing twice, both audit logs verify, integrity_check ok.
        The thread is seen at work in every round, or the test fails (a kill at a random
        moment, as in CrashDuringBurst, rarely lands inside a backfill)."""
        if not Pipelined.loadable():
            self.skipTest("drives libliaison-client through ctypes, which a sanitizer build cannot be loaded by;"
                          " the ordinary build runs it")
        rounds, rng, note = self.crash_run(4)
        a = self.fast_node("a")
        b = self.fast_node("b")
        link(a, b)
        acked, failures, stop, t = self.pipelined_bursts(a, "b", 500, pad=4000)
        caught = {a.id: 0, b.id: 0}
        try:
            for victim in (b, a):
                for _ in range(rounds):
                    self.restart_aborted(a, b)
                    pid = victim.proc.pid
                    wait_for(lambda: thread_named(pid, "liaisond-bf"), 10, "the backfill thread of " + victim.id)
                    tid = thread_named(pid, "liaisond-bf")
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and victim.proc.poll() is None:
                        if thread_state(pid, tid) in ("R", "D"):
                            victim.kill()
                            caught[victim.id] += 1
                            break
                        time.sleep(0.0002)
                    else:
                        self.restart_aborted(victim)
                        self.fail("the backfill thread of %s was not seen at work in 60 s%s" % (victim.id, note))
                    time.sleep(rng.uniform(0.0, 0.3))
                    victim.start()
                    time.sleep(rng.uniform(0.2, 0.6))  # traffic again, a new WAL to grow
        finally:
            stop.set()
            t.join(30)
        self.assertEqual(caught, {a.id: rounds, b.id: rounds}, note)
        self.assertGreater(len(acked), 500, "too few messages were sent" + note)
        self.after_kills(a, b, acked, failures, t, note)
        self.verify_and_stop(a, b, note)


class DiskFull(FaultTest):
    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a size-capped tmpfs")
        self.mnt = os.path.join(self.base, "small")
        os.makedirs(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs here: %s" % r.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt], capture_output=True)
        self.filler = os.path.join(self.mnt, "filler")

    def fill(self):
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 16, 4096, 512, 1):
                try:
                    while os.write(fd, b"\0" * chunk) > 0:
                        pass
                except OSError:
                    pass
        finally:
            os.close(fd)
        st = os.statvfs(self.mnt)
        self.assertEqual(st.f_bavail, 0, "the filesystem is not full")

    def small_disk_node(self, ident):
        n = harness.Node(self.mnt, ident)
        n.log = os.path.join(self.base, ident + ".log")  # the log stays writable
        n.init()
        self.nodes.append(n)
        n.start()
        return n

    def fill_after_checkpoint(self, b):
        """An empty WAL, then no free block: the next commit on b must grow a file."""
        time.sleep(0.5)

        def truncated():
            con = sqlite3.connect(b.db_path, timeout=10)
            try:
                busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                con.close()
            return busy == 0 and os.path.getsize(b.db_path + "-wal") == 0

        wait_for(truncated, 20, "an empty WAL on b")
        self.fill()

    def test_receiver_disk_full(self):
        a = self.fast_node("a")
        b = self.small_disk_node("b")
        link(a, b)
        first = a.send("b", "before the disk fills")
        self.wait_delivered(a, first, "b")
        self.fill_after_checkpoint(b)
        before = b.query("SELECT * FROM messages ORDER BY id")
        mids = [a.send("b", "while the disk is full %d " % i + "x" * 20000) for i in range(3)]
        # Answered TRY_LATER, whether the store or the commit failed (PROTOCOL.md 6 step 10).
        self.wait_answered_try_later(a, mids, "b")
        time.sleep(4.0)
        # Refused without a receipt, kept queued by the sender, receiver alive and answering.
        self.assertIsNone(b.proc.poll(), "liaisond b exited on a full disk")
        self.assertEqual(b.cli("status", check=False).returncode, 0)
        failing = b.json("status")["database_failing"]
        self.assertIn("disk is full", failing["error"])
        self.assertIn("every commit has failed since", b.cli("status").stdout)
        # Reading needs the database too (each read is audited first): the error says
        # which database and what to do.
        r = b.cli("show", first, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("could not commit to its database %s" % b.db_path, r.stderr)
        self.assertIn("free space on the disk that holds it", r.stderr)
        for mid in mids:
            self.assertIn(a.delivery_state(mid, "b"), ("queued", "sent"), mid)
            self.assertFalse(b.has_message(mid))
        self.assertEqual(b.query("SELECT * FROM messages ORDER BY id"), before)
        attempts = a.query("SELECT min(attempts) FROM deliveries WHERE state < 2")[0][0]
        self.assertGreaterEqual(attempts, 2, "the sender did not retry")
        self.assertEqual(a.json("status")["queue_depth"], 3)
        # Space returns: delivery resumes, exactly once.
        os.unlink(self.filler)
        for mid in mids:
            self.wait_delivered(a, mid, "b", timeout=30)
        self.assert_exactly_once(a, b, [first] + mids)
        self.assertIsNone(b.json("status")["database_failing"])
        self.audit_verify(b)
        self.audit_verify(a)
        self.assertEqual(integrity(b), [("ok",)])


    def test_sender_clock_jumps_back(self):
        """The sender's wall clock jumps back an hour while a message waits for its next
        retry (the receiver's disk is full): the retry must not wait for the clock to
        catch up (tests/tools/clockshift moves only a's clock)."""
        offset = os.path.join(self.base, "clock-offset")
        with open(offset, "w") as f:
            f.write("0")
        a = self.node("a", start=False)
        for k, v in FAST_RETRY:
            a.write_config("delivery", k, v)
        a.prefix = ["env", "LD_PRELOAD=" + CLOCKSHIFT, "LIAISON_CLOCK_OFFSET_FILE=" + offset,
                    "ASAN_OPTIONS=%s:verify_asan_link_order=0" % os.environ.get("ASAN_OPTIONS", "")]
        a.start()
        b = self.small_disk_node("b")
        link(a, b)
        first = a.send("b", "before the disk fills")
        self.wait_delivered(a, first, "b")
        self.fill_after_checkpoint(b)
        mid = a.send("b", "while the disk is full")
        attempts = lambda: a.query("SELECT attempts FROM deliveries WHERE hex(message_id) = upper(?)", (mid,))[0][0]
        wait_for(lambda: attempts() >= 3, 20, "a to retry")
        with open(offset, "w") as f:
            f.write("-3600000")
        time.sleep(0.5)
        os.unlink(self.filler)
        self.wait_delivered(a, mid, "b", timeout=15)
        # Later traffic on the slow clock: delivered, and checkpoints keep their pace
        # (one right after the jump, none per commit).
        cps = a.query("SELECT count(*) FROM checkpoints")[0][0]
        for i in range(8):
            self.wait_delivered(a, a.send("b", "after the jump %d" % i), "b")
        self.assertLessEqual(a.query("SELECT count(*) FROM checkpoints")[0][0] - cps, 2,
                             "a checkpoint per commit after the clock went back")
        # The jump really happened: a's latest audit entries are an hour behind b's.
        a_t = a.query("SELECT max(time_ms) FROM audit WHERE seq > (SELECT max(seq) - 3 FROM audit)")[0][0]
        b_t = b.query("SELECT max(time_ms) FROM audit")[0][0]
        self.assertGreater(b_t - a_t, 3_000_000)
        self.assert_exactly_once(a, b)
        self.audit_verify(a)
        self.audit_verify(b)


class SilentPeer(FaultTest):
    def test_unanswered_first_transmission_is_retried(self):
        """A new message goes to a connected peer from memory as soon as it is committed,
        its delivery stored as sent with its retry time; when no receipt comes back, that
        retry sends it again although nothing else happens on the node."""
        a = self.fast_node("a")
        x = self.node("x", start=False)  # rawpeer listens as x and never answers
        a.add_peer(x)
        cmd = [harness.RAWPEER, "--home", x.home, "--target", a.card_file, "--timeout-ms", "30000",
               "serve-silent", "3"]
        server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        try:
            self.assertEqual(server.stdout.readline().strip(), "listening")
            wait_for(lambda: [p for p in a.json("status")["peers"] if p["id"] == "x" and p["connected"]], 20,
                     "a to connect to x")
            lines = queue.Queue()
            threading.Thread(target=lambda: [lines.put(ln.strip()) for ln in server.stdout], daemon=True).start()
            mid = a.send("x", "hello")
            got = []
            try:
                while len(got) < 3:  # the retries come 0.1, then 0.2 s after: 10 s is ample
                    got.append(lines.get(timeout=10))
            except queue.Empty:
                pass
        finally:
            server.communicate(timeout=30)
        self.assertEqual(got, ["received " + mid] * 3)
        # The attempts are bookkeeping, committed with the next batch or within a second.
        row = lambda: a.query("SELECT state, attempts FROM deliveries WHERE hex(message_id) = upper(?)", (mid,))[0]
        wait_for(lambda: row()[1] >= 3, 10, "the third attempt to be recorded")
        self.assertEqual(row()[0], 1)  # sent, never delivered
        self.assertEqual(len(a.audit("message-queued")), 1)

class LockedDatabase(FaultTest):
    LOCKER = ("import sqlite3, sys, time\n"
              "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
              "c.execute('BEGIN EXCLUSIVE')\n"
              "print('locked', flush=True)\n"
              "time.sleep(float(sys.argv[2]))\n"
              "c.execute('COMMIT')\n")

    def lock(self, node, seconds):
        p = subprocess.Popen([sys.executable, "-c", self.LOCKER, node.db_path, str(seconds)],
                             stdout=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline().strip(), "locked")
        return p

    def test_locked_database_loses_nothing(self):
        a = self.fast_node("a")
        b = self.fast_node("b")
        link(a, b)
        warm = a.send("b", "warm up")
        self.wait_delivered(a, warm, "b")
        # Shorter than the daemon's busy timeout (5 s): b waits, then stores.
        p = self.lock(b, 2.5)
        short = [a.send("b", "during a short lock %d" % i) for i in range(3)]
        p.wait(30)
        p.stdout.close()
        for mid in short:
            self.wait_delivered(a, mid, "b", timeout=30)
        # Longer than the busy timeout: b cannot store, answers TRY_LATER (or nothing),
        # a keeps the messages, and they go through once the lock is gone.
        p = self.lock(b, 9)
        long_ = [self.send_quiet(a, "b", "during a long lock %d" % i, timeout_ms=20000) for i in range(3)]
        self.assertTrue(all(long_), long_)
        time.sleep(1.0)
        if p.poll() is None:
            for mid in long_:
                self.assertNotEqual(a.delivery_state(mid, "b"), "delivered")
                self.assertNotEqual(a.delivery_state(mid, "b"), "rejected")
        p.wait(30)
        p.stdout.close()
        for mid in long_:
            self.wait_delivered(a, mid, "b", timeout=40)
        self.assertIsNone(b.proc.poll())
        self.assert_exactly_once(a, b, [warm] + short + long_)
        self.audit_verify(a)
        self.audit_verify(b)
        self.assertEqual(integrity(b), [("ok",)])


class ReceiptsNotStored(FaultTest):
    def test_batch_without_its_receipts_is_not_committed(self):
        """The recipient stores its messages but cannot store their receipts (a trigger
        refuses them, as a failing disk would): the whole batch is rolled back, each message
        is answered TRY_LATER instead of its receipt, and once receipts can be stored again
        every message is delivered once (PROTOCOL.md 6 step 10: a message is never
        committed without its receipt)."""
        a = self.fast_node("a")
        b = self.fast_node("b")
        link(a, b)
        first = a.send("b", "before")
        self.wait_delivered(a, first, "b")
        b.stop()
        con = sqlite3.connect(b.db_path)
        con.execute("CREATE TRIGGER refuse_receipts BEFORE INSERT ON receipts_issued"
                    " BEGIN SELECT RAISE(ABORT, 'receipts refused by the test'); END")
        con.commit()
        con.close()
        mids = [a.send("b", "while receipts cannot be stored %d" % i) for i in range(5)]
        b.start()
        def failed():
            with open(b.log) as f:
                return "could not be signed or stored" in f.read()
        wait_for(failed, 20, "b to fail a batch's receipts")
        self.wait_answered_try_later(a, mids, "b", "the recipient could not commit")
        time.sleep(1.5)  # a retries meanwhile (fast retries): every attempt fails the same way
        for mid in mids:
            self.assertIn(a.delivery_state(mid, "b"), ("queued", "sent"), mid)
            self.assertFalse(b.has_message(mid), "a message was committed without its receipt")
        self.assertEqual(b.query("SELECT count(*) FROM audit WHERE action = 'message-received'")[0][0], 1)
        self.assertEqual(len(a.audit("receipt-rejected")), 0)
        b.edit_stopped("DROP TRIGGER refuse_receipts")
        for mid in mids:
            self.wait_delivered(a, mid, "b", timeout=30)
        self.assert_exactly_once(a, b, [first] + mids)
        self.audit_verify(a)
        self.audit_verify(b)


class OneMessageOfABatchNotStored(FaultTest):
    def test_the_others_are_delivered_and_it_gets_no_receipt(self):
        """One message of a burst fails to be stored after its receipt was set aside for the
        batch (a trigger refuses the patient index that a progress note writes, as a failing
        disk would): its operation is rolled back, its receipt is dropped from the batch and
        it is answered TRY_LATER, while the messages around it in the same commit are
        stored and receipted. Once the index can be written again it is delivered once."""
        a = self.fast_node("a")
        b = self.fast_node("b")
        link(a, b)
        first = a.send("b", "before")
        self.wait_delivered(a, first, "b")
        b.edit_stopped("CREATE TRIGGER refuse_patients BEFORE INSERT ON patient_folds"
                       " BEGIN SELECT RAISE(ABORT, 'patient index refused by the test'); END")
        wait_for(lambda: all(p["connected"] for p in b.json("status")["peers"]), 20, "b connected to a")
        # b is frozen while a sends, so that the four envelopes reach its loop together.
        b.proc.send_signal(signal.SIGSTOP)
        try:
            texts = [a.send("b", "around the note %d" % i) for i in range(2)]
            note = a.cli("note", "--to", "b", "--patient", "P-77", "--phq9", "6", "-",
                         input="Sleeping better.").stdout.strip()
            texts.append(a.send("b", "after the note"))
            time.sleep(0.5)
        finally:
            b.proc.send_signal(signal.SIGCONT)
        for mid in texts:
            self.wait_delivered(a, mid, "b", timeout=20)
        time.sleep(1.0)  # a retries the note meanwhile (fast retries): it fails the same way
        self.assertFalse(b.has_message(note))
        self.assertIn(a.delivery_state(note, "b"), ("queued", "sent"))
        issued = {bytes(r[0]).hex() for r in b.query("SELECT message_id FROM receipts_issued")}
        self.assertNotIn(note, issued)
        self.assertEqual(len(a.audit("receipt-rejected")), 0)
        b.edit_stopped("DROP TRIGGER refuse_patients")
        self.wait_delivered(a, note, "b", timeout=30)
        self.assert_exactly_once(a, b, [first] + texts + [note])
        self.audit_verify(a)
        self.audit_verify(b)


class UnreachablePeer(FaultTest):
    def test_backoff_capped_queue_kept(self):
        a = self.fast_node("a")
        b = self.fast_node("b")
        link(a, b)
        b.stop()
        mids = [a.send("b", "to an unreachable peer %d" % i) for i in range(5)]
        cap_ms = 1000
        window = 6.0
        cpu0 = cpu_seconds(a.proc.pid)
        t0 = time.monotonic()
        start_attempts = None
        while time.monotonic() - t0 < window:
            rows = a.query("SELECT state, attempts, next_attempt_ms FROM deliveries WHERE recipient = 'b'"
                           " AND state < 2")
            now = int(time.time() * 1000)
            self.assertEqual(len(rows), 5, "queued deliveries lost")
            for state, attempts, nxt in rows:
                self.assertLessEqual(nxt - now, cap_ms + 500, "next attempt beyond retry_max_ms")
            if start_attempts is None:
                start_attempts = {r[1] for r in rows}
            time.sleep(0.5)
        end = a.query("SELECT attempts FROM deliveries WHERE recipient = 'b'")
        grown = max(r[0] for r in end) - min(start_attempts)
        self.assertLessEqual(grown, window * 1000 / cap_ms + 3, "attempts grow faster than the cap allows")
        self.assertGreaterEqual(grown, 1, "no attempt at all while the peer was away")
        self.assertLess(cpu_seconds(a.proc.pid) - cpu0, 1.0, "the sender spins while its peer is away")
        st = a.json("status")
        self.assertEqual(st["queue_depth"], 5, st)
        # The peer comes back after a long absence: delivered promptly, once.
        b.start()
        t1 = time.monotonic()
        for mid in mids:
            self.wait_delivered(a, mid, "b", timeout=30)
        self.assertLess(time.monotonic() - t1, cap_ms / 1000 + 8)
        self.assert_exactly_once(a, b, mids)


class DatabaseMoved(FaultTest):
    def test_database_file_moved_while_running(self):
        """A database file deleted, moved or replaced under a running daemon: the daemon
        would write on into the orphaned file and lose it all when it stops. Nothing is
        reported saved (sender) or receipted (receiver) until the file is back."""
        a = self.fast_node("a")
        b = self.fast_node("b")
        link(a, b)
        first = a.send("b", "before")
        self.wait_delivered(a, first, "b")
        # The sender's database moves away: the send is refused, with the reason.
        os.rename(a.db_path, a.db_path + ".moved")
        r = a.cli("send", "--to", "b", "-", input="while moved", check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("nothing was done", r.stderr)
        self.assertIn("liaison.db was deleted, moved or replaced while liaisond was running", r.stderr)
        with open(a.log) as f:
            self.assertIn("was deleted, moved or replaced", f.read())
        self.assertIsNone(a.proc.poll())
        os.rename(a.db_path + ".moved", a.db_path)
        second = a.send("b", "after it is back")
        self.wait_delivered(a, second, "b")
        # The receiver's: no receipt (so the sender keeps the message), delivered once back.
        os.rename(b.db_path, b.db_path + ".moved")
        third = a.send("b", "while the receiver's database is away")
        time.sleep(2.0)
        self.assertIn(a.delivery_state(third, "b"), ("queued", "sent"))
        self.assertGreaterEqual(a.query("SELECT attempts FROM deliveries WHERE hex(message_id) = upper(?)",
                                        (third,))[0][0], 2, "the sender did not retry")
        os.rename(b.db_path + ".moved", b.db_path)
        self.wait_delivered(a, third, "b")
        self.assert_exactly_once(a, b, [first, second, third])
        self.audit_verify(a)
        self.audit_verify(b)
        # Deleted outright: refused the same way.
        os.unlink(a.db_path)
        r = a.cli("send", "--to", "b", "-", input="after the delete", check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("was deleted, moved or replaced", r.stderr)


class SocketDeleted(FaultTest):
    def test_control_sockets_deleted_while_running(self):
        """A cleanup script deletes run/*.sock under a running daemon: the CLI would say
        'liaisond is not running' while a second liaisond refuses to start. The daemon
        makes them again within a second or two."""
        a = self.fast_node("a")
        b = self.fast_node("b")
        link(a, b)
        for name in ("control.sock", "audit.sock"):
            os.unlink(os.path.join(a.home, "run", name))
        wait_for(lambda: a.cli("status", check=False).returncode == 0, 5, "the control socket to come back")
        mid = a.send("b", "after the sockets were deleted")
        self.wait_delivered(a, mid, "b")
        self.audit_verify(a)  # the auditor socket
        st = os.stat(os.path.join(a.home, "run", "control.sock"))
        self.assertEqual(st.st_mode & 0o777, 0o660)
        with open(a.log) as f:
            self.assertEqual(f.read().count("was deleted while liaisond was running: made it again"), 2)
        self.assertEqual(len(a.audit("daemon-started")), 1)


class StalledDaemon(FaultTest):
    def test_send_timing_out_says_it_may_still_go_out(self):
        """liaisond busy past the CLI's timeout (here: waiting on a database lock another
        process holds): the send is queued on its socket and carried out once the daemon
        gets to it, so the clinician must be told to check before sending again (else
        the care team gets it twice)."""
        a = self.fast_node("a")
        b = self.fast_node("b")
        link(a, b)
        locker = subprocess.Popen([sys.executable, "-c", LockedDatabase.LOCKER, a.db_path, "4"],
                                  stdout=subprocess.PIPE, text=True)
        self.addCleanup(locker.wait, 30)
        self.addCleanup(locker.stdout.close)
        self.assertEqual(locker.stdout.readline().strip(), "locked")
        env = dict(os.environ, LIAISON_TIMEOUT_MS="1500")
        r = subprocess.run([harness.LIAISON, "--home", a.home, "send", "--to", "b", "-"], input="while locked",
                           capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("did not answer within 1500 ms", r.stderr)
        self.assertIn("may still be carried out: check with liaison outbox before sending it again", r.stderr)
        # And it was: the daemon took the request once the lock was gone.
        wait_for(lambda: a.query("SELECT count(*) FROM deliveries WHERE state = 2")[0][0] == 1, 20,
                 "the timed-out send to be delivered")
        self.assertEqual(b.query("SELECT count(*) FROM messages WHERE outgoing = 0")[0][0], 1)
        self.assertIn("delivered", a.cli("outbox").stdout)


class FullPeerQueue(FaultTest):
    def test_first_transmissions_the_transport_refuses_are_queued(self):
        """A new message goes to a connected peer from memory once it is committed; when
        ZeroMQ's queue to that peer is full (the peer is stopped and its connection
        stays up), the delivery becomes queued ("peer queue full") and the pump sends it
        once there is room: all are delivered, each exactly once."""
        if not Pipelined.loadable():
            self.skipTest("drives libliaison-client through ctypes, which a sanitizer build cannot be loaded by;"
                          " the ordinary build runs it")
        a = self.fast_node("a")
        b = self.fast_node("b")
        link(a, b)
        full = lambda: a.query("SELECT count(*) FROM deliveries WHERE state = 0 AND detail = 'peer queue full'")[0][0]
        wait_for(lambda: [p for p in a.json("status")["peers"] if p["id"] == "b" and p["connected"]], 20,
                 "a to connect to b")
        b.proc.send_signal(signal.SIGSTOP)
        try:
            acked, failures = [], []
            # 10,000 frames fill the socket's queue (PEER_HWM); the kernel's socket
            # buffers hold a few thousand 4 KB frames more.
            Pipelined(a.home, timeout_ms=60000).burst("b", 16000, 512, acked, failures, pad=4000)
            self.assertEqual(failures, [])
            wait_for(lambda: full() > 0, 30, "a delivery queued because the peer's queue is full")
        finally:
            b.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: a.query("SELECT count(*) FROM deliveries WHERE state < 2")[0][0] == 0, 180,
                 "every message to be delivered")
        self.assert_exactly_once(a, b, acked)


class RekeyedPeer(FaultTest):
    def test_peer_rekeyed_while_messages_are_queued(self):
        """b is set up again with new keys (same id and address) while a holds messages
        for it: once a takes the new card, those messages, sealed to b's old key, are
        reported undeliverable with the cause, not sent for a refusal naming none."""
        a = self.fast_node("a")
        b = self.fast_node("b")
        link(a, b)
        first = a.send("b", "before")
        self.wait_delivered(a, first, "b")
        b.stop()  # its last checkpoint, signed at the stop, is witnessed by a
        wait_for(lambda: a.query("SELECT tree_size FROM witnessed WHERE peer = 'b'"), 20, "a to witness b's log")
        old_size = a.query("SELECT tree_size FROM witnessed WHERE peer = 'b'")[0][0]
        queued = [a.send("b", "queued %d" % i) for i in range(3)]
        # b's machine is reinstalled: a new node with the same id and endpoint.
        old_home = b.home + ".old"
        os.rename(b.home, old_home)
        b2 = harness.Node(self.base, "b")
        b2.port, b2.endpoint = b.port, b.endpoint
        b2.log = os.path.join(self.base, "b2.log")
        b2.init()
        self.nodes.append(b2)
        b2.start()
        b2.add_peer(a)
        a.add_peer(b2, replace=True)
        # New keys, new log: the checkpoint witnessed for the old keys is set aside (it
        # would make the new node's short log look rolled back, for good).
        replaced = a.audit("peer-replaced")[-1]
        self.assertIn("the checkpoint of its log witnessed for its previous keys (%d entries) set aside" % old_size,
                      replaced[6])
        for mid in queued:
            self.assertEqual(a.delivery_state(mid, "b"), "rejected", mid)
            detail = a.query("SELECT detail FROM deliveries WHERE hex(message_id) = upper(?)", (mid,))[0][0]
            self.assertIn("sealed to b's previous keys", detail)
            self.assertIn("send it again", detail)
        rows = a.audit("delivery-rejected")
        self.assertEqual(sorted(r[4].lower() for r in rows), sorted(queued))
        self.assertIn("sealed to b's previous keys", a.cli("outbox").stdout)
        # New messages go to the new b; nothing of the old ones reaches it.
        after = a.send("b", "after the new card")
        self.wait_delivered(a, after, "b")
        time.sleep(1.0)
        self.assertEqual(b2.audit("message-rejected"), [])
        self.assertEqual(b2.query("SELECT count(*) FROM messages WHERE outgoing = 0")[0][0], 1)
        self.assertEqual(a.delivery_state(first, "b"), "delivered")
        b2.stop()  # the new node's checkpoint, of a short log: witnessed, no alarm
        wait_for(lambda: a.query("SELECT tree_size FROM witnessed WHERE peer = 'b'"), 20, "a to witness the new b")
        self.assertEqual(a.query("SELECT count(*) FROM witness_alarms")[0][0], 0)
        self.assertEqual(a.json("status")["alarms"], [])
        b2.start()
        self.audit_verify(a)
        self.audit_verify(b2)


class InterruptedInit(FaultTest):
    def test_init_killed_at_random_moments(self):
        """`liaison init` killed at any moment: the half-made node cannot be started
        (it would run without its card, or without its first audit entry), and running
        the same init again finishes the node."""
        seed = int(os.environ.get("LIAISON_CRASH_SEED", str(random.randrange(1 << 30))))
        rng = random.Random(seed)
        note = " (LIAISON_CRASH_SEED=%d)" % seed
        port = harness.free_port()
        # The kills are spread over the time a whole init takes here, measured first:
        # under ASan or on a loaded machine it is many times what it is otherwise.
        t0 = time.monotonic()
        subprocess.run([harness.LIAISON, "--home", os.path.join(self.base, "timing"), "init", "--id", "timing",
                        "--role", "therapist", "--listen", "tcp://127.0.0.1:%d" % port],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        whole = time.monotonic() - t0
        note += " (a whole init took %.3f s)" % whole
        outcomes = {}
        for i in range(30):
            home = os.path.join(self.base, "n%d" % i)
            args = [harness.LIAISON, "--home", home, "init", "--id", "n%d" % i, "--role", "therapist",
                    "--listen", "tcp://127.0.0.1:%d" % port]
            p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.0, whole * 1.1))
            p.kill()
            p.wait()
            left = sorted(os.listdir(home)) if os.path.isdir(home) else []
            check = [harness.LIAISOND, "--home", home, "--check-config"]
            if p.returncode == 0:
                outcomes["finished"] = outcomes.get("finished", 0) + 1
            elif "init-incomplete" not in left and "card.txt" in left:
                # Killed after its last step (the marker, made before any other file, is
                # removed last): a finished node, which must pass.
                outcomes["finished, killed before exiting"] = outcomes.get("finished, killed before exiting", 0) + 1
            else:
                outcomes[" ".join(left) or "nothing"] = outcomes.get(" ".join(left) or "nothing", 0) + 1
                c = subprocess.run(check, capture_output=True, text=True, timeout=30)
                self.assertEqual(c.returncode, 1, "a half-made node passes --check-config: %s%s" % (left, note))
                if "init-incomplete" in left:
                    self.assertIn("liaison init did not finish", c.stderr)
                    self.assertIn("run the same liaison init again", c.stderr)
                    # The client says the same, not "start the daemon" (which would refuse).
                    st = subprocess.run([harness.LIAISON, "--home", home, "status"], capture_output=True, text=True,
                                        timeout=30)
                    self.assertIn("was not set up completely (liaison init was interrupted): run the same liaison"
                                  " init again", st.stderr)
                r = subprocess.run(args, capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 0, "init again after %s: %s%s" % (left, r.stderr, note))
            c = subprocess.run(check, capture_output=True, text=True, timeout=30)
            self.assertEqual(c.returncode, 0, c.stderr + note)
            self.assertTrue(os.path.exists(os.path.join(home, "card.txt")), note)
            self.assertFalse(os.path.exists(os.path.join(home, "init-incomplete")), note)
            con = sqlite3.connect("file:%s?mode=ro" % os.path.join(home, "liaison.db"), uri=True)
            try:
                self.assertEqual(con.execute("SELECT action FROM audit").fetchall(), [("node-created",)], note)
            finally:
                con.close()
        # The kills landed at different moments (seen: before anything, after the keys,
        # with the database half made, finished).
        self.assertGreaterEqual(len(outcomes), 3, "%s%s" % (outcomes, note))
        # One of them runs and verifies.
        n = harness.Node(self.base, "n0")
        n.home = os.path.join(self.base, "n0")
        n.db_path = os.path.join(n.home, "liaison.db")
        n.port = port
        self.nodes.append(n)
        n.start()
        self.audit_verify(n)


class ClockSkew(FaultTest):
    def test_within_and_beyond_the_window(self):
        a = self.node("a")
        b = self.node("b", start=False)
        b.write_config("delivery", "clock_window_s", "60")
        b.write_config("delivery", "max_age_s", "3600")
        b.start()
        link(a, b)
        cases = [(30_000, "receipt"), (-1_800_000, "receipt"), (0, "receipt"),
                 (90_000, "reject 7"), (-7_200_000, "reject 7"),
                 (59_000, "receipt"), (61_500, "reject 7"), (-3_590_000, "receipt"), (-3_610_000, "reject 7")]
        for offset, expect in cases:
            with self.subTest(offset_ms=offset):
                seq = b.query("SELECT max(seq) FROM audit")[0][0]
                lines, err = a.rawpeer(b, "--created-offset-ms", str(offset), "envelope")
                mid = err.split("message ")[1].split()[0]
                self.assertTrue(lines[0].startswith(expect), "%d ms: %r" % (offset, lines))
                rows = b.query("SELECT action, details FROM audit WHERE seq > ?", (seq,))
                self.assertEqual(len(rows), 1, rows)
                if expect == "receipt":
                    self.assertEqual(rows[0][0], "message-received")
                    self.assertTrue(b.has_message(mid))
                    created = b.query("SELECT created_ms, stored_ms FROM messages WHERE hex(id) = upper(?)", (mid,))
                    self.assertAlmostEqual(created[0][1] - created[0][0], -offset, delta=5000)
                else:
                    self.assertEqual(rows[0][0], "message-rejected")
                    self.assertTrue(rows[0][1].startswith("clock: "), rows[0][1])
                    self.assertFalse(b.has_message(mid))
        self.assertIsNone(b.proc.poll())
        mid = a.send("b", "after the skewed ones")
        self.wait_delivered(a, mid, "b")


class ConnectionFlood(FaultTest):
    def test_connections_without_a_handshake_do_not_use_up_descriptors(self):
        """Anyone who can reach the port opens more connections than the daemon has
        descriptors and never starts the handshake. libzmq 4.3.4 would spin on accept
        and abort the daemon at its next local connection (EMFILE is an assertion in its
        IPC listener). The daemon stops listening for a second instead, which closes
        them all; local clients are served throughout and peers deliver after it."""
        a = self.fast_node("a")
        b = self.node("b", start=False)
        b.prefix = ["prlimit", "--nofile=256:256", "--"]
        for k, v in FAST_RETRY:
            b.write_config("delivery", k, v)
        b.start()
        link(a, b)
        mid = a.send("b", "before the flood")
        self.wait_delivered(a, mid, "b")
        flood, refused = [], False
        try:
            for i in range(400):
                try:
                    flood.append(socket.create_connection(("127.0.0.1", b.port), timeout=2))
                except OSError:  # refused or reset: the listener has paused
                    refused = True
                    break
                if i % 8 == 7:
                    time.sleep(0.02)  # the daemon sees the accepts a moment after libzmq makes them
            wait_for(lambda: "stopped listening" in open(b.log).read(), 10, "the listener to pause")
            self.assertTrue(refused or len(flood) == 400)
            for _ in range(20):  # local connections, each a descriptor for a moment
                self.assertEqual(b.cli("status").returncode, 0)
            self.assertIsNone(b.proc.poll())
        finally:
            for s in flood:
                s.close()
        wait_for(lambda: "listening on %s again" % b.endpoint in open(b.log).read(), 40, "the listener to resume")
        mid = a.send("b", "after the flood")
        self.wait_delivered(a, mid, "b", timeout=60)
        with open(b.log) as f:
            log = f.read()
        self.assertRegex(log, r"that have not finished the secure handshake \(descriptor 19\d in use, of a limit"
                              r" of 256\): stopped listening for 1 s")
        self.assertEqual(b.stop(), 0)
        with open(b.log) as f:
            self.assertRegex(f.read(), r"listener: paused \d+ times? for connections without a handshake")


if __name__ == "__main__":
    unittest.main()
