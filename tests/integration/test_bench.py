# SPDX-License-Identifier: Apache-2.0
"""liaison-bench runs end to end in both of its ways of seeing receipts: every message
sent is delivered and counted, nothing fails. (It measures nothing here: speed is for
./run bench, never asserted in a test.)"""
import json
import os
import subprocess
import tempfile
import unittest

import harness

BENCH = os.path.join(harness.BUILD, "bench", "liaison-bench")
UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "systemd", "liaisond.service")


def unit_environment(path):
    """The NAME=VALUE words of a unit's Environment= lines (the shipped unit's simple form)."""
    with open(path) as f:
        return [w for line in f if line.strip().startswith("Environment=")
                for w in line.strip()[len("Environment="):].split()]


class Bench(unittest.TestCase):
    def run_bench(self, observe, idle=("--idle-seconds", "0")):
        p = subprocess.run([BENCH, "--bin", harness.BUILD, "--sizes", "512", "--no-baseline", *idle,
                            "--rate", "200", "--seconds", "1", "--warmup", "0.5", "--window", "64", "--observe",
                            observe, "--json"], capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.report = json.loads(p.stdout)
        return self.report["runs"][0]

    def check(self, run, observe):
        phases = run["fixed"] + [run["saturation"]]
        for ph in phases:
            self.assertGreater(ph["sent"], 0)
            self.assertEqual((ph["delivered"], ph["failed"]), (ph["sent"], 0), ph)
            self.assertEqual(ph["receipts_observed_by"], observe)
            self.assertGreater(ph["latency_send_to_receipt"]["p50_us"], 0)
        for ph in run["fixed"]:
            # Open loop: latency runs from each message's scheduled time, never shorter
            # than from its actual submission, and the lateness itself is reported.
            self.assertEqual(ph["latency_counted_from"], "scheduled send time")
            self.assertEqual(ph["schedule_slip"]["samples"], ph["latency_send_to_receipt"]["samples"])
            for k in ("p50_us", "p99_us", "max_us"):
                self.assertGreaterEqual(ph["latency_send_to_receipt"][k], ph["latency_from_actual_submission"][k])
        self.assertEqual(run["saturation"]["latency_counted_from"], "submission")
        return phases

    def test_receipts_seen_in_the_database(self):
        run = self.run_bench("db", ("--idle-seconds", "1", "--idle-after", "1"))
        for ph in self.check(run, "db-poll"):
            self.assertGreater(ph["db_polls"], 0)
            self.assertGreater(ph["sender_peak_rss_mb"], 0)
        # Stored bytes grow with the messages, even over a short run (the database's
        # pages, WAL included, before and after: never the stale WAL file's size).
        self.assertGreater(run["sender_db_bytes_per_msg"], 0)
        self.assertGreater(run["recipient_db_bytes_per_msg"], 0)
        # Saturation keeps its window in flight (not only the sends awaiting "stored").
        self.assertLessEqual(run["saturation"]["mean_in_flight"], 64)
        self.assertGreater(run["saturation"]["mean_in_flight"], 32)
        # Idle is measured before any traffic and again after the load runs.
        for key in ("idle", "idle_after_load"):
            self.assertGreater(self.report[key]["sender_rss_mb"], 0, key)
        self.assertEqual(self.report["idle_after_load"]["after_load_settle_s"], 1)
        # The daemons ran as the shipped unit runs them, with its environment.
        denv = self.report["daemon_environment"]
        self.assertEqual(os.path.realpath(denv["unit"]), os.path.realpath(UNIT))
        self.assertEqual(denv["variables"], unit_environment(UNIT))
        self.assertIn("GLIBC_TUNABLES=glibc.malloc.tcache_count=0", denv["variables"])
        # ...read back from each daemon's /proc/PID/environ: the pair, started again for
        # the idle measurement after the load runs or not, at least two.
        self.assertGreaterEqual(denv["daemons_checked"], 2)

    def test_unit_environment_is_read_or_refused(self):
        quick = [BENCH, "--bin", harness.BUILD, "--no-load", "--no-baseline", "--json"]
        p = subprocess.run(quick + ["--unit", "none"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["daemon_environment"], {"unit": None, "variables": [], "daemons_checked": 0})
        with tempfile.TemporaryDirectory() as d:
            unit = os.path.join(d, "x.service")
            # As systemd reads it: [Service] only, indented lines, comments, a later value
            # of a name replacing an earlier one, an empty Environment= clearing the list.
            for text, want in (("[Service]\nEnvironment=A=1 B=2\n", ["A=1", "B=2"]),
                               ("[Unit]\nEnvironment=X=1\n[Service]\n  Environment=A=1\n# Environment=C=3\n"
                                "Environment=B=2 A=4\n", ["A=4", "B=2"]),
                               ("[Service]\nEnvironment=A=1\nEnvironment=\nEnvironment=C=3\n", ["C=3"])):
                with open(unit, "w") as f:
                    f.write(text)
                p = subprocess.run(quick + ["--unit", unit], capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(json.loads(p.stdout)["daemon_environment"]["variables"], want, text)
            with open(unit, "w") as f:
                f.write("[Service]\nEnvironment=A=%s\n" % ("x" * 3000))
            p = subprocess.run(quick + ["--unit", unit], capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn("x.service:2: line too long", p.stderr)
            # A form the bench does not understand is refused, never half-applied.
            with open(unit, "w") as f:
                f.write("[Service]\nEnvironment=\"A=b c\"\n")
            p = subprocess.run(quick + ["--unit", unit], capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn("x.service:2: cannot use the setting", p.stderr)
            p = subprocess.run(quick + ["--unit", os.path.join(d, "missing")], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn("cannot read the unit", p.stderr)

    def test_numeric_options_are_checked(self):
        # A value that is not a number in range stops the bench before it starts anything
        # (atof took "8s" as 8 and "abc" as 0; a 1,000-node mesh was refused and then
        # summed up all the same).
        for opt, val in (("--seconds", "8s"), ("--seconds", "abc"), ("--warmup", "-1"), ("--window", "0"),
                         ("--mesh", "1000"), ("--mesh", "1"), ("--poll-us", "nan"), ("--idle-after", "")):
            p = subprocess.run([BENCH, "--bin", harness.BUILD, opt, val], capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1, (opt, val))
            self.assertIn("liaison-bench: %s: a number from" % opt, p.stderr)
            self.assertIn("not '%s'" % val, p.stderr)
            self.assertEqual(p.stdout, "")

    def test_targets_carry_the_figures_they_score(self):
        # The targets block gives each figure as the table prints it (two decimals), not
        # rounded further: a p50 of 1.06 ms must not read 1.1 ms in the JSON.
        p = subprocess.run([BENCH, "--bin", harness.BUILD, "--sizes", "4096", "--no-baseline", "--no-saturation",
                            "--idle-seconds", "0", "--rate", "1000", "--seconds", "1", "--warmup", "0.2",
                            "--json"], capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        report = json.loads(p.stdout)
        lat = report["runs"][0]["fixed"][0]["latency_send_to_receipt"]
        targets = {t["target"]: t for t in report["targets"]}
        for name, us in (("4 KB at 1000 msg/s: p50 < 1 ms", lat["p50_us"]),
                         ("4 KB at 1000 msg/s: p99 < 5 ms", lat["p99_us"])):
            self.assertAlmostEqual(targets[name]["value"], us / 1000, delta=0.0051, msg=name)
            self.assertEqual(targets[name]["met"], us < (1000 if "p50" in name else 5000), name)

    def test_refused_sends_fail_the_phase(self):
        # Every send refused (a node that allows one recipient, the sender itself): the
        # phase is reported with ok false and the bench exits non-zero, not scored as if
        # the messages that got through were all there was.
        with tempfile.TemporaryDirectory() as work:  # a failed run keeps its work directory
            p = subprocess.run([BENCH, "--bin", harness.BUILD, "--sizes", "512", "--no-baseline", "--no-saturation",
                                "--idle-seconds", "0", "--rate", "100", "--seconds", "0.5", "--warmup", "0.2",
                                "--conf", "delivery.max_recipients=1", "--work", os.path.join(work, "w"), "--json"],
                               capture_output=True, text=True, timeout=300)
        self.assertNotEqual(p.returncode, 0)
        ph = json.loads(p.stdout)["runs"][0]["fixed"][0]
        self.assertFalse(ph["ok"])
        self.assertEqual(ph["failed"], ph["sent"])
        self.assertGreater(ph["sent"], 0)
        self.assertIn("refused or rejected", p.stderr)

    def test_receipts_seen_through_waits(self):
        for ph in self.check(self.run_bench("wait"), "wait"):
            # One wait per message at least (a wait that ran out is submitted again).
            self.assertGreaterEqual(ph["waits"], ph["sent"])


if __name__ == "__main__":
    unittest.main()
