# SPDX-License-Identifier: Apache-2.0
"""liaison.conf errors name the file, the line and the key, both from
`liaisond --check-config` and when the daemon starts; a good file passes. A
configuration, a hook or a node directory that someone else could change is refused
(start-up, reload and --check-config alike), and a file missing from a node is named
with the fix that works."""
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

from svc import LIAISON, LIAISOND, ServiceTest, clean_env, wait_for
from svc import free_port as svc_free_port


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
                              ("audit", "witness_proof_wait_s", "3600"),
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
        # Nothing of a node there: create one. (A node that lost its liaison.conf is
        # test_missing_file_of_a_node_says_restore_from_backup.)
        for home in (os.path.join(self.base, "no-such-dir"), tempfile.mkdtemp(dir=self.base)):
            p = subprocess.run([LIAISOND, "--check-config", "--home", home], capture_output=True, text=True,
                               timeout=30, env=clean_env())
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("no liaison node in %s (%s/liaison.conf does not exist): create the node with: liaison"
                          " --home %s init" % (home, home, home), p.stderr)

    def test_missing_file_of_a_node_says_restore_from_backup(self):
        # liaison init refuses a directory holding a node, so "create the node with:
        # liaison init" was a dead end for a node that lost one file.
        n = self.node("dr.lost", start=False)
        saved = os.path.join(self.base, "saved")
        for path, name in ((n.db_path, "liaison.db"), (n.config_file, "liaison.conf")):
            os.rename(path, saved)
            want = ("%s is missing, but the rest of this node is here (%s/identity.key exists): restore %s from this"
                    " node's backup (see BACKUP AND RESTORE in liaisond(8))" % (path, n.home, name))
            err = self.start_fails(n)
            self.assertIn(want, err)
            self.assertNotIn("create the node", err)
            p = self.check(n)
            self.assertIn(want, p.stderr)
            self.assertNotIn("create the node", p.stderr)
            if name == "liaison.db":
                # Documented: the database is checked only if there is one (the
                # configuration may be checked before it is put back), with a warning.
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn("liaisond will not start without it", p.stderr)
            else:
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            # The advice is the one that works: init refuses this directory.
            r = n.cli("init", "--id", n.id, "--role", n.role, "--listen", n.endpoint, check=False)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            os.rename(saved, path)
        self.assertEqual(self.check(n).returncode, 0)
        n.start()

    @staticmethod
    def error_line(text):
        """The message of the one error line of liaisond's log output."""
        lines = [ln.split(" error: ", 1)[1] for ln in text.splitlines() if " error: " in ln]
        assert len(lines) == 1, text
        return lines[0]

    def test_check_config_checks_the_directories_as_start_up_does(self):
        # --check-config used to pass a node directory others could write, which the
        # daemon then refused.
        n = self.node("dr.dirmode", start=False)
        run = os.path.join(n.home, "run")
        for path, mode in ((n.home, 0o777), (n.home, 0o770)):
            os.chmod(path, mode)
            p = self.check(n)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            want = "%s can be changed by other users (mode %04o)" % (path, mode)
            self.assertIn(want, p.stderr)
            self.assertEqual(self.error_line(p.stderr), self.error_line(self.start_fails(n)))
            os.chmod(path, 0o750)
        # The runtime directory, if there is one (start-up makes it otherwise).
        self.assertEqual(self.check(n).returncode, 0)
        os.mkdir(run)
        os.chmod(run, 0o777)
        p = self.check(n)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("%s can be changed by other users (mode 0777)" % run, p.stderr)
        self.assertEqual(self.error_line(p.stderr), self.error_line(self.start_fails(n)))
        os.rmdir(run)
        self.assertEqual(self.check(n).returncode, 0)

    def test_root_checking_a_node_of_another_user_is_told_to_run_as_that_user(self):
        # sudo liaisond --check-config on the packaged layout (a node of the system user
        # liaison): root must not use files another user can replace, and the message
        # says how to check it instead.
        if os.geteuid() != 0:
            self.skipTest("needs root")
        import pwd
        n = self.node("dr.rootcheck", start=False)
        owner = pwd.getpwuid(65534).pw_name
        os.chown(n.home, 65534, -1)
        try:
            p = self.check(n)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("%s belongs to the user %s, not root: a liaisond run as root would use files that %s can"
                          " replace; run it as that user: sudo -u %s liaisond" % (n.home, owner, owner, owner),
                          p.stderr)
        finally:
            os.chown(n.home, 0, -1)
        self.assertEqual(self.check(n).returncode, 0)

    def test_config_others_can_change_is_refused(self):
        n = self.node("dr.confmode", start=False)
        for mode in (0o666, 0o664, 0o646, 0o620):
            os.chmod(n.config_file, mode)
            want = ("%s can be changed by other users (mode %04o), who could make liaisond bind, trust or run what"
                    " they choose; run: chmod go-w %s" % (n.config_file, mode, n.config_file))
            p = self.check(n)
            self.assertEqual(p.returncode, 1, "mode %o: %s" % (mode, p.stdout))
            self.assertIn(want, p.stderr)
            self.assertIn(want, self.start_fails(n))
        os.chmod(n.config_file, 0o644)
        self.assertEqual(self.check(n).returncode, 0)
        # Through a symbolic link, the file's own directory counts too.
        elsewhere = tempfile.mkdtemp(dir=self.base)
        real = os.path.join(elsewhere, "liaison.conf")
        shutil.move(n.config_file, real)
        os.symlink(real, n.config_file)
        self.assertEqual(self.check(n).returncode, 0)
        os.chmod(elsewhere, 0o777)
        p = self.check(n)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("%s can be changed by other users (mode 0777)" % elsewhere, p.stderr)
        os.chmod(elsewhere, 0o700)
        if os.geteuid() == 0:
            os.chown(real, 65534, -1)
            p = self.check(n)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("%s belongs to another user (uid 65534)" % n.config_file, p.stderr)
            self.assertIn("belongs to another user (uid 65534)", self.start_fails(n))
            # root may own it, and a group may read it (root:liaison 0640 as packaged).
            os.chown(real, 0, 65534)
            os.chmod(real, 0o640)
            self.assertEqual(self.check(n).returncode, 0)

    def test_config_others_can_change_is_refused_on_reload(self):
        n = self.node("dr.confreload")
        os.chmod(n.config_file, 0o666)
        n.signal(signal.SIGHUP)
        want = ("reload: %s can be changed by other users (mode 0666), who could make liaisond bind, trust or run"
                " what they choose; run: chmod go-w %s; keeping the running configuration"
                % (n.config_file, n.config_file))
        wait_for(lambda: want in n.log_text(), 10, "the refused reload in the log")
        self.assertEqual(n.cli("status").returncode, 0)
        # The node's directory is checked again too: liaison.conf is read from it.
        os.chmod(n.config_file, 0o644)
        os.chmod(n.home, 0o777)
        n.signal(signal.SIGHUP)
        wait_for(lambda: "reload: %s can be changed by other users (mode 0777)" % n.home in n.log_text(), 10,
                 "the refused reload in the log")
        os.chmod(n.home, 0o750)
        self.assertEqual(n.stop(), 0)

    def node_of_nobody(self, name):
        """A node made by uid/gid 65534 in base/NAME, with copies of the binaries it can
        run: (liaisond, home, the setpriv prefix that runs a command as that user)."""
        uid = gid = 65534
        os.chmod(self.base, 0o711)
        bindir = tempfile.mkdtemp(dir=self.base)
        os.chmod(bindir, 0o755)
        for b in (LIAISON, LIAISOND):
            shutil.copy(b, bindir)
        liaison, liaisond = os.path.join(bindir, "liaison"), os.path.join(bindir, "liaisond")
        home = os.path.join(self.base, name)
        os.mkdir(home, 0o750)
        os.chown(home, uid, gid)
        as_daemon = ["setpriv", "--reuid", str(uid), "--regid", str(gid), "--clear-groups"]
        subprocess.run(as_daemon + [liaison, "--home", home, "init", "--id", "dr." + name, "--role", "therapist",
                                    "--listen", "tcp://127.0.0.1:%d" % svc_free_port()],
                       check=True, capture_output=True, timeout=60, env=clean_env())
        return liaisond, home, as_daemon

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv")
    def test_packaged_config_of_root_readable_by_the_daemons_group(self):
        # The packaged layout: the daemon runs as its own user; liaison.conf may be
        # root's, readable by the daemon's group (0640), and start, reload and
        # --check-config accept it; made writable by that group, it is refused.
        uid = gid = 65534
        liaisond, home, as_daemon = self.node_of_nobody("pkg")
        conf = os.path.join(home, "liaison.conf")
        os.chown(conf, 0, gid)
        os.chmod(conf, 0o640)
        p = subprocess.run(as_daemon + [liaisond, "--home", home, "--check-config"], capture_output=True, text=True,
                           timeout=30, env=clean_env())
        self.assertEqual(p.returncode, 0, p.stderr)
        log = os.path.join(self.base, "pkg.log")
        with open(log, "wb") as logf:
            d = subprocess.Popen(as_daemon + [liaisond, "--home", home], stdout=logf, stderr=logf, env=clean_env())
        try:
            text = lambda: self.read(log)  # noqa: E731
            wait_for(lambda: "listening on" in text() or d.poll() is not None, 20, "the daemon to start")
            self.assertIsNone(d.poll(), text())
            d.send_signal(signal.SIGHUP)
            wait_for(lambda: "reloaded:" in text(), 10, "the reload")
            self.assertNotIn("keeping the running configuration", text())
            os.chmod(conf, 0o660)
            d.send_signal(signal.SIGHUP)
            wait_for(lambda: "keeping the running configuration" in text(), 10, "the refused reload")
            self.assertIn("%s can be changed by other users (mode 0660)" % conf, text())
        finally:
            d.send_signal(signal.SIGTERM)
            d.wait(10)
        self.assertEqual(d.returncode, 0, text())

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv")
    def test_database_the_daemon_cannot_write_is_named_by_the_check(self):
        # --check-config opens the database read-only; it used to pass a database (or
        # its directory) the daemon's user cannot write, which the daemon then refused
        # with SQLite's "attempt to write a readonly database".
        uid = 65534
        liaisond, home, as_daemon = self.node_of_nobody("ro")
        db = os.path.join(home, "liaison.db")
        check = lambda: subprocess.run(as_daemon + [liaisond, "--home", home, "--check-config"],  # noqa: E731
                                       capture_output=True, text=True, timeout=30, env=clean_env())
        self.assertEqual(check().returncode, 0, check().stderr)
        os.chmod(db, 0o400)
        for run in (check, lambda: subprocess.run(as_daemon + [liaisond, "--home", home], capture_output=True,
                                                  text=True, timeout=30, env=clean_env())):
            p = run()
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("%s cannot be written by this user (uid %d)" % (db, uid), p.stderr)
        os.chmod(db, 0o600)
        os.chmod(home, 0o550)
        p = check()
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("%s cannot be written by this user (uid %d): SQLite makes liaison.db-wal" % (home, uid),
                      p.stderr)
        os.chmod(home, 0o750)
        self.assertEqual(check().returncode, 0, check().stderr)

    @staticmethod
    def read(path):
        with open(path, errors="replace") as f:
            return f.read()

    def hook_script(self, path, out, mode):
        with open(path, "w") as f:
            f.write('#!/bin/sh\necho "$LIAISON_MESSAGE_ID" >> %s\n' % out)
        os.chmod(path, mode)
        return path

    def test_hook_others_can_change_is_refused_and_never_run(self):
        # The reviewer's case: a hook of mode 0777 used to pass --check-config, be taken
        # on start and on reload, and be run (as the daemon's user, root here) when an
        # urgent medication change went unacknowledged.
        a = self.node("dr.hookmode", role="psychiatrist", start=False)
        b = self.node("dr.hookpeer", start=False)
        out = os.path.join(self.base, "paged")
        hook = self.hook_script(os.path.join(self.base, "page.sh"), out, 0o777)
        a.set_config("ack", "urgent_deadline_s", "1")
        a.set_config("ack", "hook", hook)
        want = ("%s: [ack] hook: %s can be changed by other users (mode 0777), who could make liaisond run anything:"
                " run: chmod go-w %s" % (a.config_file, hook, hook))
        p = self.check(a)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(want, p.stderr)
        self.assertIn(want, self.start_fails(a))
        # Started without a hook, then reloaded with it: refused, the running one kept.
        a.set_config("ack", "hook", "")
        a.start()
        b.start()
        a.add_peer(b)
        b.add_peer(a)
        a.set_config("ack", "hook", hook)
        a.signal(signal.SIGHUP)
        wait_for(lambda: "reload: %s; keeping the running configuration" % want in a.log_text(), 10,
                 "the refused reload in the log")
        overdue = lambda: a.query(  # noqa: E731
            "SELECT count(*) FROM audit WHERE action = 'ack-overdue'")[0][0]
        first = self.med_change(a, b.id)
        wait_for(lambda: overdue() == 1, 30, "the first change to be overdue")
        time.sleep(1)
        self.assertFalse(os.path.exists(out), "a hook others can change was run")
        # Made safe, the same hook is taken on reload and run.
        os.chmod(hook, 0o755)
        a.signal(signal.SIGHUP)
        wait_for(lambda: a.log_text().count("reloaded:") == 2, 10, "the second reload")
        second = self.med_change(a, b.id)
        wait_for(lambda: os.path.exists(out) and second.lower() in self.read(out).lower(), 30,
                 "the hook to run for the second change")
        self.assertNotIn(first.lower(), self.read(out).lower())
        self.assertEqual(self.check(a).returncode, 0)
        # Changed after it was taken (no reload): the check before each run refuses it.
        os.chmod(hook, 0o777)
        third = self.med_change(a, b.id)
        wait_for(lambda: overdue() == 3, 30, "the third change to be overdue")
        wait_for(lambda: "ack hook not run: %s" % want in a.log_text(), 10, "the refused run in the log")
        self.assertNotIn(third.lower(), self.read(out).lower())

    @staticmethod
    def med_change(node, to):
        p = node.cli("med-change", "--to", to, "--patient", "P-1042", "--drug", "sertraline", "--action", "increase",
                     "--from", "50 mg daily", "--dose", "100 mg daily", "--reason", "partial response", "--urgent")
        mid = p.stdout.strip()
        assert len(mid) == 32, p.stdout
        return mid

    def test_hook_in_a_directory_others_can_change_is_refused(self):
        n = self.node("dr.hookdir", start=False)
        d = os.path.join(self.base, "hooks")
        os.mkdir(d)
        hook = self.hook_script(os.path.join(d, "page.sh"), os.devnull, 0o755)
        n.set_config("ack", "hook", hook)
        for mode, ok in ((0o777, False), (0o775, False), (0o1777, True), (0o1775, True), (0o755, True)):
            os.chmod(d, mode)
            p = self.check(n)
            if ok:
                self.assertEqual(p.returncode, 0, "mode %o: %s" % (mode, p.stderr))
                continue
            self.assertEqual(p.returncode, 1, "mode %o: %s" % (mode, p.stdout))
            self.assertIn("%s: [ack] hook: %s is in %s, which other users can change (mode %04o) to replace it"
                          % (n.config_file, hook, d, mode), p.stderr)
            self.assertIn("run: chmod go-w %s" % d, p.stderr)
        # A symbolic link anywhere on the way is refused, even one of root's to a safe
        # program: its owner, or whoever can change a directory on the way to what it
        # names, could point it elsewhere later. The message gives the real path.
        os.chmod(d, 0o755)
        link = os.path.join(n.home, "pager")
        os.symlink(hook, link)
        dlink = os.path.join(self.base, "hooks-link")
        os.symlink(d, dlink)
        for named, through in ((link, link), (os.path.join(dlink, "page.sh"), dlink)):
            n.set_config("ack", "hook", named)
            p = self.check(n)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("%s: [ack] hook: %s goes through the symbolic link %s: give the program's real path, %s"
                          % (n.config_file, named, through, hook), p.stderr)
        # A hook not there yet is reported as such (it cannot run); where it would be
        # must still be safe, or someone else could put one there later: a sticky
        # directory (as /tmp) lets anyone create a name that is not taken yet.
        missing = os.path.join(d, "not-yet")
        n.set_config("ack", "hook", missing)
        self.assertIn("No such file or directory", self.check(n).stderr)
        os.chmod(d, 0o777)
        self.assertIn("which other users can change (mode 0777)", self.check(n).stderr)
        self.assertIn("which other users can change (mode 0777)", self.start_fails(n))
        os.chmod(d, 0o1777)
        self.assertIn("which other users can change (mode 1777) to put something there before it exists",
                      self.check(n).stderr)
        os.chmod(d, 0o755)
        n.set_config("ack", "hook", hook)
        if os.geteuid() == 0:
            os.chown(hook, 65534, -1)
            p = self.check(n)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("%s: [ack] hook: %s belongs to another user (uid 65534)" % (n.config_file, hook), p.stderr)
            os.chown(hook, 0, -1)
            os.chown(d, 65534, -1)
            p = self.check(n)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("%s is in %s, which belongs to another user (uid 65534)" % (hook, d), p.stderr)
            os.chown(d, 0, -1)
        self.assertEqual(self.check(n).returncode, 0)

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
