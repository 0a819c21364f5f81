# SPDX-License-Identifier: Apache-2.0
"""liaisond speaks systemd's notify protocol (Type=notify, WatchdogSec=): this test plays
systemd's side of NOTIFY_SOCKET and watches READY=1, STATUS=, WATCHDOG=1 and STOPPING=1
from the real daemon."""
import os
import signal
import time
import unittest

from svc import NotifySocket, ServiceTest, clean_env


class NotifyTest(ServiceTest):
    def setUp(self):
        super().setUp()
        self.notify = NotifySocket(self.base)

    def tearDown(self):
        super().tearDown()
        self.notify.close()

    def start(self, n, **env):
        n.start(env=clean_env(NOTIFY_SOCKET=self.notify.path, **env), wait=False, watchdog_pid="WATCHDOG_USEC" in env)

    def test_ready_watchdog_stopping(self):
        n = self.node("dr.notify", start=False)
        t0 = time.monotonic()
        self.start(n, WATCHDOG_USEC="2000000")
        ready = self.notify.wait("READY=1", timeout=20)
        # READY=1 only once the control socket is bound and the database is open:
        # a client must be able to connect right away.
        self.assertTrue(os.path.exists(os.path.join(n.home, "run", "control.sock")))
        self.assertEqual(n.cli("status").returncode, 0)
        # Exactly one READY=1 at start-up.
        self.assertEqual(self.notify.lines().count("READY=1"), 1)
        # STATUS= says how many peers are connected and how deep the queue is.
        self.notify.wait("STATUS=", timeout=5)
        status = [m for m in self.notify.lines() if m.startswith("STATUS=")]
        self.assertIn("peers connected", status[-1])
        self.assertIn("queued", status[-1])
        # WATCHDOG_USEC=2 s: a keep-alive at least every second (half the interval).
        # (systemd ends the service when a gap reaches the interval; half of it leaves
        # room for a loaded machine, and the test's own reading of the socket adds to
        # the gaps it sees, so the check is against the interval itself.)
        first = self.notify.wait("WATCHDOG=1", timeout=10, after=ready)
        self.notify.wait("WATCHDOG=1", timeout=10, after=ready, count=3)
        beats = [t for t, m in self.notify.messages if m == "WATCHDOG=1"]
        gaps = [b - a for a, b in zip(beats, beats[1:])]
        self.assertTrue(all(g < 2.0 for g in gaps), "watchdog gaps %r reach the 2 s interval" % gaps)
        self.assertLess(sum(gaps) / len(gaps), 1.5, "keep-alives come every half interval: gaps %r" % gaps)
        self.assertLess(first - t0, 20)
        # SIGTERM: STOPPING=1, then a clean exit 0 well within 5 s.
        n.signal(signal.SIGTERM)
        t_term = time.monotonic()
        rc = n.wait_exit(5)
        self.assertEqual(rc, 0, n.log_text())
        self.assertLess(time.monotonic() - t_term, 5)
        self.notify.poll(0.2)
        self.assertIn("STOPPING=1", self.notify.lines())
        # No READY=1 or WATCHDOG=1 after STOPPING=1.
        after = self.notify.lines()[self.notify.lines().index("STOPPING=1") + 1:]
        self.assertNotIn("READY=1", after)

    def test_no_watchdog_unless_asked(self):
        n = self.node("dr.nowd", start=False)
        self.start(n)  # NOTIFY_SOCKET but no WATCHDOG_USEC
        ready = self.notify.wait("READY=1", timeout=20)
        time.sleep(2.5)
        self.notify.poll()
        self.assertFalse([m for t, m in self.notify.messages if t >= ready and m == "WATCHDOG=1"])
        self.assertEqual(n.stop(), 0)
        self.assertIn("STOPPING=1", self.notify.lines())

    def test_watchdog_for_another_pid_is_ignored(self):
        # WATCHDOG_PID names the process the watchdog is meant for (sd_watchdog_enabled(3)).
        n = self.node("dr.otherpid", start=False)
        n.start(env=clean_env(NOTIFY_SOCKET=self.notify.path, WATCHDOG_USEC="1000000", WATCHDOG_PID="1"),
                wait=False)
        ready = self.notify.wait("READY=1", timeout=20)
        time.sleep(2)
        self.notify.poll()
        self.assertFalse([m for t, m in self.notify.messages if t >= ready and m == "WATCHDOG=1"])
        self.assertEqual(n.stop(), 0)

    def test_sigint_stops_too(self):
        n = self.node("dr.sigint", start=False)
        self.start(n)
        self.notify.wait("READY=1", timeout=20)
        n.signal(signal.SIGINT)
        self.assertEqual(n.wait_exit(5), 0)
        self.assertIn("STOPPING=1", self.notify.lines())

    def test_reload_reports_ready_again(self):
        # ExecReload=kill -HUP $MAINPID: after the reload the daemon says READY=1 again.
        n = self.node("dr.hup", start=False)
        self.start(n, WATCHDOG_USEC="2000000")
        first = self.notify.wait("READY=1", timeout=20)
        n.signal(signal.SIGHUP)
        try:
            self.notify.wait("READY=1", timeout=10, after=first + 1e-6)
        except AssertionError as e:
            raise AssertionError("%s\nliaisond exit status %r, its log:\n%s" % (e, n.proc.poll(), n.log_text()))
        self.assertEqual(n.cli("status").returncode, 0)
        self.assertEqual(n.stop(), 0)

    def test_without_notify_socket_runs_plainly(self):
        # Outside systemd (no NOTIFY_SOCKET) the daemon runs and stops the same way.
        n = self.node("dr.plain")
        self.assertEqual(n.cli("status").returncode, 0)
        self.assertEqual(n.stop(5), 0)
        self.assertEqual(self.notify.lines(), [])


if __name__ == "__main__":
    unittest.main()
