# SPDX-License-Identifier: Apache-2.0
"""Integration-test harness: real liaisond processes on loopback, each in its own
temporary home and port, driven through the real `liaison` CLI. State is checked
through the CLI and by reading each node's SQLite file read-only."""
import json
import random
import re
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

BUILD = os.environ.get("LIAISON_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
LIAISON = os.path.join(BUILD, "client", "liaison")
LIAISOND = os.path.join(BUILD, "daemon", "liaisond")
RAWPEER = os.path.join(BUILD, "tests", "tools", "rawpeer")


def sanitized():
    """Whether BUILD is a sanitizer build (./run asan): its programs carry ASan's runtime,
    which must come first in a process, so its library cannot be loaded into another
    program (ctypes, an embedder) nor an LD_PRELOAD tool come before it."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return re.search(r"^LIAISON_SANITIZE:BOOL=ON$", f.read(), re.M) is not None
    except OSError:
        return False


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
        return low if low > 4096 else 32768
    except (OSError, ValueError, IndexError):
        return 32768


_given_ports = set()


def free_port():
    """A port nothing listens on at 127.0.0.1, below the kernel's ephemeral range (one the
    kernel hands out by bind to port 0 can be taken by a daemon's outgoing connection
    before the daemon meant to listen on it binds), chosen at random so that test
    processes running side by side do not walk into each other's ports (a stopped node
    keeps its port for its restart), and never the same one twice in a process."""
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(low // 2, low)
        if port in _given_ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given_ports.add(port)
        return port
    raise RuntimeError("no free TCP port below %d" % low)


def catches_sigint(pid):
    """Whether process pid has a SIGINT handler installed (SigCgt of /proc/PID/status):
    liaison installs it once its request is about to go out."""
    with open("/proc/%d/status" % pid) as f:
        cgt = [ln for ln in f if ln.startswith("SigCgt:")][0].split()[1]
    return bool(int(cgt, 16) & (1 << (signal.SIGINT - 1)))


def wait_for(pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Node:
    def __init__(self, base, ident, role="therapist", name=None):
        self.id = ident
        self.role = role
        self.name = name or ident
        self.home = os.path.join(base, ident)
        self.port = free_port()
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.proc = None
        self.prefix = []  # a command the daemon is started through (e.g. unshare), before LIAISOND
        self.log = os.path.join(base, ident + ".log")
        self.db_path = os.path.join(self.home, "liaison.db")
        self.card_file = os.path.join(self.home, "card.txt")

    # --- lifecycle ---
    def init(self, **extra):
        args = ["init", "--id", self.id, "--name", self.name, "--role", self.role, "--listen", self.endpoint]
        for k, v in extra.items():
            args += ["--" + k.replace("_", "-"), v]
        self.cli(*args)
        return self

    def write_config(self, section, key, value):
        """Adds or replaces `key = value` in [section] of liaison.conf."""
        path = os.path.join(self.home, "liaison.conf")
        with open(path) as f:
            lines = f.read().splitlines()
        out, cur, done = [], None, False
        for ln in lines:
            s = ln.strip()
            if s.startswith("["):
                if cur == section and not done:
                    out.append("%s = %s" % (key, value))
                    done = True
                cur = s[1:-1]
            elif cur == section and s.split("=")[0].strip() == key:
                out.append("%s = %s" % (key, value))
                done = True
                continue
            out.append(ln)
        if not done:
            if cur != section:
                out.append("[%s]" % section)
            out.append("%s = %s" % (key, value))
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")

    def reissued_card(self, name):
        """A card of this node with its own keys and another name, as its daemon makes it from
        liaison.conf (liaison card while card.txt is away): what a peer gets when a node's
        details change. Returns the path of a file holding it; card.txt is left as it was,
        and the daemon is left running or stopped as it was."""
        self.write_config("node", "name", name)
        running = self.proc is not None and self.proc.poll() is None
        if running:
            self.stop()
        self.start()
        kept = self.card_file + ".kept"
        os.rename(self.card_file, kept)
        try:
            text = self.cli("card").stdout
        finally:
            os.rename(kept, self.card_file)
        if not running:
            self.stop()
        path = os.path.join(os.path.dirname(self.home), "%s-reissued.card" % self.id)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        self.logf = open(self.log, "ab")
        # LIAISON_DAEMON_WRAPPER runs each daemon under a tool, e.g. "valgrind --leak-check=full"
        # (docs/RELIABILITY.md); its report lands in the node's log and is checked at teardown.
        wrapper = os.environ.get("LIAISON_DAEMON_WRAPPER", "").split()
        self.proc = subprocess.Popen(wrapper + self.prefix + [LIAISOND, "--home", self.home], stdout=self.logf,
                                     stderr=self.logf)
        if wait:
            wait_for(lambda: self._up(), 60 if os.environ.get("LIAISON_DAEMON_WRAPPER") else 20,
                     "liaisond %s to start" % self.id)
        return self

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError("liaisond %s exited with %s:\n%s" % (self.id, self.proc.returncode,
                                                                     open(self.log).read()[-3000:]))
        return self.cli("status", check=False).returncode == 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("liaisond %s did not stop within 10 s" % self.id)
            self.logf.close()
            return rc
        return None

    def edit_stopped(self, *statements):
        """Stops the daemon, runs SQL statements on its database (each a string or a
        (sql, params) pair) as an operator or a failing disk might, and starts it again."""
        self.stop()
        con = sqlite3.connect(self.db_path)
        try:
            for st in statements:
                con.execute(*(st if isinstance(st, tuple) else (st,)))
            con.commit()
        finally:
            con.close()
        self.start()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.logf.close()

    # --- commands ---
    def cli(self, *args, input=None, check=True, timeout=30):
        p = subprocess.run([LIAISON, "--home", self.home] + list(args), input=input, capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("liaison %s failed (%d): %s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def json(self, *args):
        return json.loads(self.cli(*args, "--json").stdout)

    def send(self, to, text="hello", subject=None, extra=()):
        args = ["send", "--to", to]
        if subject:
            args += ["--subject", subject]
        p = self.cli(*args, *extra, "-", input=text)
        mid = p.stdout.strip()
        assert len(mid) == 32, "send printed %r" % p.stdout
        return mid

    def add_peer(self, other, replace=False):
        args = ["peer", "add", other.card_file] + (["--replace"] if replace else [])
        return self.cli(*args)

    def rawpeer(self, target, *args, cards=(), timeout=30):
        cmd = [RAWPEER, "--home", self.home, "--target", target.card_file]
        for c in cards:
            cmd += ["--card", c.card_file]
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError("rawpeer failed: %s" % p.stderr)
        return p.stdout.strip().splitlines(), p.stderr

    # --- database (read-only) ---
    def query(self, sql, params=()):
        con = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True, timeout=10)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def delivery_state(self, mid, recipient):
        rows = self.query("SELECT state FROM deliveries WHERE hex(message_id) = upper(?) AND recipient = ?",
                          (mid, recipient))
        return ["queued", "sent", "delivered", "rejected"][rows[0][0]] if rows else None

    def has_message(self, mid):
        return bool(self.query("SELECT 1 FROM messages WHERE hex(id) = upper(?)", (mid,)))

    def audit(self, action=None):
        if action:
            return self.query("SELECT seq, actor, action, outcome, hex(message_id), peer, details FROM audit"
                              " WHERE action = ? ORDER BY seq", (action,))
        return self.query("SELECT seq, actor, action, outcome, hex(message_id), peer, details FROM audit ORDER BY seq")


def link(*nodes):
    """Every node adds every other node's card."""
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.add_peer(b)


class NodeTest(unittest.TestCase):
    """Gives each test a temporary directory and stops its daemons afterwards."""

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="liaison-it-", dir=os.environ.get("TMPDIR", "/tmp"))
        self.nodes = []

    def node(self, ident, role="therapist", start=True, **extra):
        n = Node(self.base, ident, role).init(**extra)
        self.nodes.append(n)
        if start:
            n.start()
        return n

    def tearDown(self):
        for n in self.nodes:
            try:
                n.stop()
            except AssertionError:
                n.kill()
        # Under ./run asan, a sanitizer report in any daemon's log fails the test.
        for n in self.nodes:
            if os.path.exists(n.log):
                with open(n.log, errors="replace") as f:
                    text = f.read()
                if "Sanitizer" in text or "runtime error:" in text:
                    self.fail("liaisond %s reported a sanitizer error:\n%s" % (n.id, text[-4000:]))
                errors = re.findall(r"ERROR SUMMARY: ([0-9,]+) errors", text)
                lost = re.findall(r"(?:definitely|indirectly) lost: ([0-9,]+) bytes", text)
                if any(e != "0" for e in errors) or any(x != "0" for x in lost):
                    self.fail("liaisond %s: valgrind found errors or leaks:\n%s" % (n.id, text[-4000:]))
        if os.environ.get("LIAISON_KEEP"):
            print("kept", self.base)
        else:
            shutil.rmtree(self.base, ignore_errors=True)

    def wait_delivered(self, sender, mid, recipient, timeout=20):
        wait_for(lambda: sender.delivery_state(mid, recipient) == "delivered", timeout,
                 "message %s to be delivered to %s" % (mid, recipient))
