# SPDX-License-Identifier: Apache-2.0
"""Service-test helpers: real liaisond processes in temporary homes, driven through the
real `liaison` CLI, optionally under a fake systemd notify socket (NOTIFY_SOCKET)."""
import os
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import free_port  # noqa: E402,F401  (below the ephemeral ports: see there)
SOURCE = os.environ.get("LIAISON_SOURCE", os.path.normpath(os.path.join(HERE, "..", "..")))
BUILD = os.environ.get("LIAISON_BUILD", os.path.join(SOURCE, "build"))
LIAISON = os.path.join(BUILD, "client", "liaison")
LIAISOND = os.path.join(BUILD, "daemon", "liaisond")
UNIT = os.path.join(SOURCE, "systemd", "liaisond.service")


def _cache_says(var, value):
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return any(ln.strip().upper() == ("%s:BOOL=%s" % (var, value)).upper() for ln in f)
    except OSError:
        return False


# Built with -DLIAISON_SANITIZE=ON (./run asan): the library needs the ASan runtime first.
SANITIZED = _cache_says("LIAISON_SANITIZE", "ON")




def wait_for(pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def clean_env(**extra):
    """The test's environment without anything systemd may have set for the test runner."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
                        "JOURNAL_STREAM", "LIAISON_HOME")}
    env.update(extra)
    return env


class NotifySocket:
    """Plays systemd's side of sd_notify(3): an AF_UNIX datagram socket whose path goes
    into NOTIFY_SOCKET. Every datagram is one or more KEY=VALUE lines."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []  # (monotonic time, "KEY=VALUE")

    def poll(self, timeout=0.0):
        r, _, _ = select.select([self.sock], [], [], timeout)
        while r:
            data = self.sock.recv(4096)
            now = time.monotonic()
            for line in data.decode("utf-8", "replace").splitlines():
                if line:
                    self.messages.append((now, line))
            r, _, _ = select.select([self.sock], [], [], 0)

    def lines(self):
        self.poll()
        return [m for _, m in self.messages]

    def wait(self, line, timeout=10.0, after=0.0, count=1):
        """Waits until `line` (exact, or a prefix ending in '=') was received `count` times
        after the monotonic time `after`; returns the time of the last one."""
        deadline = time.monotonic() + timeout
        while True:
            hits = [t for t, m in self.messages
                    if t >= after and (m == line or (line.endswith("=") and m.startswith(line)))]
            if len(hits) >= count:
                return hits[count - 1]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s (x%d) from liaisond within %.1f s; got %r" %
                                     (line, count, timeout, [m for _, m in self.messages]))
            self.poll(min(left, 0.2))

    def close(self):
        self.sock.close()


class Node:
    def __init__(self, base, ident, role="therapist"):
        self.id = ident
        self.role = role
        self.home = os.path.join(base, ident)
        self.port = free_port()
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.proc = None
        self.logf = None
        self.log = os.path.join(base, ident + ".log")
        self.db_path = os.path.join(self.home, "liaison.db")
        self.card_file = os.path.join(self.home, "card.txt")
        self.config_file = os.path.join(self.home, "liaison.conf")

    def init(self):
        self.cli("init", "--id", self.id, "--name", "Node " + self.id, "--role", self.role,
                 "--listen", self.endpoint)
        return self

    def set_config(self, section, key, value):
        """Adds or replaces `key = value` in [section] of liaison.conf."""
        with open(self.config_file) as f:
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
        with open(self.config_file, "w") as f:
            f.write("\n".join(out) + "\n")

    def start(self, env=None, wait=True, watchdog_pid=False, wrap=()):
        """Starts liaisond --home. With watchdog_pid, WATCHDOG_PID is set to the daemon's
        own pid, as systemd does (a shell exports $$ and then execs the daemon). wrap is
        a command that execs the daemon after its own arguments (sandbox.py)."""
        assert self.proc is None or self.proc.poll() is not None
        self.logf = open(self.log, "ab")
        cmd = list(wrap) + [LIAISOND, "--home", self.home]
        if watchdog_pid:
            cmd = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh"] + cmd
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=self.logf, env=env or clean_env())
        if wait:
            wait_for(self._up, 20, "liaisond %s to start" % self.id)
        return self

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError("liaisond %s exited with %s:\n%s" % (self.id, self.proc.returncode, self.log_text()))
        return self.cli("status", check=False).returncode == 0

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("liaisond %s did not exit within %s s" % (self.id, timeout))
        finally:
            if self.logf:
                self.logf.close()
                self.logf = None

    def stop(self, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.wait_exit(timeout)
        return self.proc.returncode if self.proc else None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.logf:
            self.logf.close()
            self.logf = None

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def cli(self, *args, input=None, check=True, timeout=30):
        p = subprocess.run([LIAISON, "--home", self.home] + list(args), input=input, capture_output=True,
                           text=True, timeout=timeout, env=clean_env())
        if check and p.returncode != 0:
            raise AssertionError("liaison %s failed (%d): %s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def send(self, to, text="hello", check=True):
        p = self.cli("send", "--to", to, "-", input=text, check=check)
        if p.returncode != 0:
            return None
        mid = p.stdout.strip()
        assert len(mid) == 32, "send printed %r" % p.stdout
        return mid

    def add_peer(self, other):
        return self.cli("peer", "add", other.card_file)

    def query(self, sql, params=()):
        con = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True, timeout=10)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def delivery_states(self, recipient):
        """{message id (lower hex): state} of the deliveries to recipient."""
        return {mid.lower(): st for mid, st in
                self.query("SELECT hex(message_id), state FROM deliveries WHERE recipient = ?", (recipient,))}


class ServiceTest(unittest.TestCase):
    """Gives each test a temporary directory and stops its daemons afterwards."""

    def setUp(self):
        for path in (LIAISON, LIAISOND):
            if not os.access(path, os.X_OK):
                self.fail("%s is not built (LIAISON_BUILD=%s)" % (path, BUILD))
        # Short: the control socket path must fit in a sockaddr_un.
        self.base = tempfile.mkdtemp(prefix="lsvc-", dir="/tmp")
        self.nodes = []

    def node(self, ident, role="therapist", start=True, **kw):
        n = Node(self.base, ident, role).init()
        self.nodes.append(n)
        if start:
            n.start(**kw)
        return n

    def tearDown(self):
        for n in self.nodes:
            try:
                n.stop()
            except AssertionError:
                n.kill()
        if not os.environ.get("LIAISON_KEEP"):  # LIAISON_KEEP=1 keeps homes and logs
            shutil.rmtree(self.base, ignore_errors=True)
