# SPDX-License-Identifier: Apache-2.0
"""liaison.conf errors name the file, the line and the key, both from
`liaisond --check-config` and when the daemon starts; a good file passes."""
import os
import signal
import sqlite3
import subprocess
import unittest

from svc import LIAISOND, ServiceTest, clean_env, wait_for


class ConfigTest(ServiceTest):
    def check(self, n):
        return subprocess.run([LIAISOND, "--check-config", "--home", n.home], capture_output=True, text=True,
                              timeout=30, env=clean_env())

    def start_fails(self, n):
        p = subprocess.run([LIAISOND, "--home", n.home], capture_output=True, text=True, timeout=30, env=clean_env())
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        # It failed before binding anything.
        self.assertFalse(os.path.exists(os.path.join(n.home, "run", "control.sock")))
        return p.stderr

    def append(self, n, text):
        with open(n.config_file, "a") as f:
            f.write(text)
        with open(n.config_file) as f:
            return len(f.read().splitlines())  # line number of the last appended line

    def test_good_config_passes(self):
        n = self.node("dr.good", start=False)
        p = self.check(n)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("valid", p.stdout)
        self.assertIn("dr.good", p.stdout)
        # --check-config does not start anything or touch the database.
        self.assertFalse(os.path.exists(os.path.join(n.home, "run", "control.sock")))

    def page_script(self, n, mode=0o700):
        path = os.path.join(n.home, "page-on-call")
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, mode)
        return path

    def test_every_documented_key_is_accepted(self):
        n = self.node("dr.keys", start=False)
        hook = self.page_script(n)
        for sec, key, val in [("delivery", "retry_min_ms", "500"), ("delivery", "retry_max_ms", "30000"),
                              ("delivery", "clock_window_s", "300"), ("delivery", "max_age_s", "86400"),
                              ("delivery", "max_recipients", "8"), ("delivery", "heartbeat_ms", "2000"),
                              ("ack", "routine_deadline_s", "3600"), ("ack", "urgent_deadline_s", "600"),
                              ("ack", "hook", hook),
                              ("audit", "checkpoint_entries", "100"), ("audit", "checkpoint_seconds", "60"),
                              ("log", "level", "debug"), ("node", "org", "Eastside Counseling"),
                              ("node", "advertise", "tcp://clinic.example:7701")]:
            n.set_config(sec, key, val)
        p = self.check(n)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_hook_that_cannot_run_is_found_before_it_is_needed(self):
        # A pager that is missing or not executable fails the check (it used to pass, and
        # the first overdue acknowledgement then paged nobody); the daemon still starts,
        # since it must deliver, and says why in its log, as it does on reload.
        n = self.node("dr.hook", start=False)
        missing = os.path.join(n.home, "no-such-pager")
        for hook, why in ((missing, "No such file or directory"),
                          (self.page_script(n, 0o600), "not executable (chmod +x it)"),
                          (n.home, "not a regular file")):
            n.set_config("ack", "hook", hook)
            p = self.check(n)
            self.assertEqual(p.returncode, 1, hook)
            self.assertIn("%s: [ack] hook: %s: %s (overdue acknowledgements would page nobody)"
                          % (n.config_file, hook, why), p.stderr)
        n.set_config("ack", "hook", missing)
        n.start()
        self.assertEqual(n.cli("status").returncode, 0)
        self.assertIn("[ack] hook: %s: No such file or directory" % missing, n.log_text())
        n.set_config("ack", "hook", n.home)
        n.signal(signal.SIGHUP)
        wait_for(lambda: "reload: %s: [ack] hook: %s: not a regular file" % (n.config_file, n.home) in n.log_text(),
                 10, "the reload warning")
        self.assertEqual(n.stop(), 0)
        n.set_config("ack", "hook", self.page_script(n))
        self.assertEqual(self.check(n).returncode, 0)

    def test_key_given_twice_is_an_error(self):
        # The second value used to win silently, so editing the first did nothing.
        n = self.node("dr.twice", start=False)
        line = self.append(n, "\n[ack]\nurgent_deadline_s = 600\n")
        p = self.check(n)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("%s:%d: [ack] urgent_deadline_s is given twice: keep one of the two lines"
                      % (n.config_file, line), p.stderr)
        err = self.start_fails(n)
        self.assertIn("urgent_deadline_s is given twice", err)

    def test_damaged_database_says_to_restore_it(self):
        n = self.node("dr.damaged", start=False)
        with open(n.db_path, "wb") as f:
            f.write(b"not a database at all" * 100)
        err = self.start_fails(n)
        self.assertIn("cannot set up database %s: file is not a database" % n.db_path, err)
        self.assertIn("restore liaison.db from a backup of this node", err)

    def test_database_of_a_newer_release_is_refused_unchanged(self):
        # A node downgraded after a newer release has used its database: the old binary
        # must not open (and write into) tables it does not know.
        n = self.node("dr.newer", start=False)
        db = sqlite3.connect(n.db_path)
        db.execute("UPDATE meta SET value = CAST('3' AS BLOB) WHERE key = 'schema_version'")
        db.commit()
        db.close()
        with open(n.db_path, "rb") as f:
            before = f.read()
        want = "database %s has schema version 3, newer than this release of liaison reads (2)" % n.db_path
        p = self.check(n)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(want, p.stderr)
        self.assertIn("Install that release again", p.stderr)
        err = self.start_fails(n)
        self.assertIn(want, err)
        with open(n.db_path, "rb") as f:
            self.assertEqual(f.read(), before, "the refused database was written to")
        # A version that is not a number is a damaged database.
        db = sqlite3.connect(n.db_path)
        db.execute("UPDATE meta SET value = CAST('one' AS BLOB) WHERE key = 'schema_version'")
        db.commit()
        db.close()
        self.assertIn("has no valid schema version", self.start_fails(n))
        # The version before (1: no receipts_issued table) opens, and the daemon upgrades it.
        db = sqlite3.connect(n.db_path)
        db.execute("UPDATE meta SET value = CAST('1' AS BLOB) WHERE key = 'schema_version'")
        db.execute("DROP TABLE receipts_issued")
        db.commit()
        db.close()
        p = self.check(n)
        self.assertEqual(p.returncode, 0, p.stderr)
        n.start()
        n.stop()
        db = sqlite3.connect(n.db_path)
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        table = db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'receipts_issued'").fetchone()[0]
        db.close()
        self.assertEqual((bytes(version), table), (b"2", 1))

    def test_bad_value_names_file_line_and_key(self):
        n = self.node("dr.badval", start=False)
        line = self.append(n, "\n[delivery]\nretry_max_ms = soon\n")
        p = self.check(n)
        self.assertEqual(p.returncode, 1)
        where = "%s:%d:" % (n.config_file, line)
        self.assertIn(where, p.stderr)
        self.assertIn("retry_max_ms", p.stderr)
        err = self.start_fails(n)
        self.assertIn(where, err)
        self.assertIn("retry_max_ms", err)

    def test_wildcard_listen_needs_advertise(self):
        n = self.node("dr.wild", start=False)
        n.set_config("node", "listen", "tcp://*:7790")
        n.set_config("node", "advertise", "")
        p = self.check(n)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("binds every interface: set [node] advertise", p.stderr)
        self.assertIn("[node] advertise", self.start_fails(n))
        n.set_config("node", "advertise", "tcp://clinic.example:7790")
        self.assertEqual(self.check(n).returncode, 0)

    def test_unknown_key_names_file_line_and_key(self):
        n = self.node("dr.unknown", start=False)
        line = self.append(n, "\n[log]\nverbosity = 3\n")
        p = self.check(n)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:%d:" % (n.config_file, line), p.stderr)
        self.assertIn("verbosity", p.stderr)
        self.assertIn("%s:%d:" % (n.config_file, line), self.start_fails(n))

    def test_unknown_section_and_syntax_error(self):
        n = self.node("dr.syntax", start=False)
        with open(n.config_file) as f:
            good = f.read()
        line = self.append(n, "\n[mail]\nrelay = smtp.example\n")
        p = self.check(n)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:%d:" % (n.config_file, line), p.stderr)
        self.assertIn("relay", p.stderr)
        with open(n.config_file, "w") as f:
            f.write(good)
        line = self.append(n, "this is not ini\n")
        p = self.check(n)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:%d:" % (n.config_file, line), p.stderr)

    def test_out_of_range_number(self):
        n = self.node("dr.range", start=False)
        line = self.append(n, "\n[audit]\ncheckpoint_entries = 0\n")
        p = self.check(n)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:%d:" % (n.config_file, line), p.stderr)
        self.assertIn("checkpoint_entries", p.stderr)

    def test_missing_config(self):
        n = self.node("dr.missing", start=False)
        os.unlink(n.config_file)
        p = self.check(n)
        self.assertEqual(p.returncode, 1)
        self.assertIn(n.config_file, p.stderr)
        self.assertIn("liaison init", p.stderr)

    def test_bad_config_on_reload_keeps_running(self):
        n = self.node("dr.reloadbad")
        line = self.append(n, "\n[delivery]\nheartbeat_ms = -5\n")
        n.signal(signal.SIGHUP)
        where = "%s:%d:" % (n.config_file, line)
        wait_for(lambda: where in n.log_text(), 10, "the reload error in the log")
        self.assertIn("heartbeat_ms", n.log_text())
        self.assertEqual(n.cli("status").returncode, 0)
        self.assertEqual(n.stop(), 0)

    def test_missing_patient_key_is_never_replaced_once_used(self):
        a = self.node("dr.pkey")
        b = self.node("dr.pkeypeer", start=False)
        a.add_peer(b)
        a.cli("note", "--to", b.id, "--patient", "P-4242", "-", input="Seen today.")
        self.assertIn("dr.pkeypeer", a.cli("audit", "disclosures", "--patient", "P-4242").stdout)
        self.assertEqual(a.stop(), 0)
        key = os.path.join(a.home, "patient.key")
        with open(key, "rb") as f:
            saved = f.read()
        os.unlink(key)
        p = self.check(a)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(key, p.stderr)
        self.assertIn("backup", p.stderr)
        err = self.start_fails(a)
        self.assertIn(key, err)
        self.assertIn("backup", err)
        self.assertFalse(os.path.exists(key), "a new patient.key was made")
        # Restored from the backup, the node finds the patient's disclosures again.
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, saved)
        os.close(fd)
        self.assertEqual(self.check(a).returncode, 0)
        a.start()
        self.assertIn("dr.pkeypeer", a.cli("audit", "disclosures", "--patient", "P-4242").stdout)

    def test_config_id_must_be_the_nodes(self):
        n = self.node("dr.ident", start=False)
        n.set_config("node", "id", "dr.other")
        p = self.check(n)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("'dr.other'", p.stderr)
        self.assertIn("set id = dr.ident", p.stderr)
        err = self.start_fails(n)
        self.assertIn("set id = dr.ident", err)
        # Without the card file the database still knows the node's id.
        os.unlink(n.card_file)
        p = self.check(n)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("belongs to node 'dr.ident'", p.stderr)
        err = self.start_fails(n)
        self.assertIn("belongs to node 'dr.ident'", err)
        n.set_config("node", "id", "dr.ident")
        n.start()
        self.assertEqual(n.cli("status").returncode, 0)

    def test_patient_key_checked_by_check_config(self):
        n = self.node("dr.pkeymode", start=False)
        key = os.path.join(n.home, "patient.key")
        os.chmod(key, 0o640)
        p = self.check(n)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("chmod 600 " + key, p.stderr)
        os.chmod(key, 0o600)
        with open(key, "ab") as f:
            f.write(b"x")
        p = self.check(n)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(key, p.stderr)
        self.assertIn("expected 32", p.stderr)

    def test_patient_key_made_for_a_node_without_patient_data(self):
        n = self.node("dr.pkeynew", start=False)
        key = os.path.join(n.home, "patient.key")
        os.unlink(key)
        self.assertEqual(self.check(n).returncode, 0)
        self.assertFalse(os.path.exists(key), "--check-config created a file")
        n.start()
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertEqual(os.path.getsize(key), 32)
        self.assertIn(key, n.log_text())


if __name__ == "__main__":
    unittest.main()
