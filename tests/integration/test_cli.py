# SPDX-License-Identifier: Apache-2.0
"""The command line and the client library as users meet them: exit codes, error
messages that name the fix, --help and --json everywhere, and an embedder of
libliaison-client using pipelined sends."""
import calendar
import json
import os
import pty
import shlex
import stat
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import BUILD, LIAISON, LIAISOND, NodeTest, catches_sigint, link, sanitized, wait_for

CLIENT_SMOKE = os.path.join(BUILD, "tests", "tools", "client_smoke")
FAILMALLOC = os.path.join(BUILD, "tests", "tools", "libfailmalloc.so")

COMMANDS = ["init", "card", "fingerprint", "status", "peer", "send", "inbox", "outbox", "show", "thread", "ack",
            "note", "med-change", "patient", "review", "audit"]


def run(*args, input=None):
    return subprocess.run([LIAISON] + list(args), input=input, capture_output=True, text=True, timeout=30)


class Cli(NodeTest):
    def test_help_everywhere(self):
        self.assertEqual(run("--help").returncode, 0)
        for c in COMMANDS:
            for h in ("--help", "-h"):  # -h works after a command as it does before one
                r = run(c, h)
                self.assertEqual(r.returncode, 0, (c, h, r.stderr))
                self.assertIn(c, r.stdout)
        r = run("frobnicate")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown command", r.stderr)
        self.assertNotIn("did you mean", r.stderr)
        # A typo is answered with the command meant.
        for typo, meant in (("sned", "send"), ("medchange", "med-change"), ("reveiw", "review")):
            r = run(typo)
            self.assertEqual(r.returncode, 1)
            self.assertTrue(r.stderr.startswith("liaison: unknown command '%s' (did you mean '%s'?" % (typo, meant)),
                            r.stderr)

    def test_bad_usage_exits_1_and_names_the_problem(self):
        d = subprocess.run([LIAISOND, "--bogus"], capture_output=True, text=True, timeout=30)
        self.assertEqual(d.returncode, 1, d.stdout + d.stderr)
        self.assertIn("--bogus", d.stderr)
        self.assertIn("usage: liaisond", d.stderr)
        self.assertEqual(d.stdout, "")
        d = subprocess.run([LIAISOND, "/etc/liaison"], capture_output=True, text=True, timeout=30)
        self.assertEqual(d.returncode, 1, d.stdout + d.stderr)
        self.assertIn("unexpected argument '/etc/liaison' (the node directory goes after --home)", d.stderr)
        d = subprocess.run([LIAISOND, "--home", "/tmp/x", "--home", "/tmp/y", "--check-config"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(d.returncode, 1, d.stdout + d.stderr)
        self.assertIn("--home given twice ('/tmp/x' and '/tmp/y')", d.stderr)
        d = subprocess.run([LIAISOND, "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(d.returncode, 0)
        self.assertIn("usage: liaisond", d.stdout)
        r = run("help", "bogus")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown command 'bogus'", r.stderr)
        r = run("help", "inbox")
        self.assertEqual(r.returncode, 0)
        self.assertIn("inbox", r.stdout)
        for args in (["--home"], ["--home=", "status"]):
            r = run(*args)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn("--home needs a directory", r.stderr)
            self.assertNotIn("unknown command", r.stderr)
        a = self.node("a")
        # Two different homes are two nodes: refused, wherever the second one is given.
        other = os.path.join(self.base, "other")
        for args in (["--home", a.home, "--home", other, "status"], ["--home", a.home, "status", "--home", other]):
            r = run(*args)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn("--home given twice ('%s' and '%s')" % (a.home, other), r.stderr)
            self.assertEqual(r.stdout, "")
        self.assertEqual(run("--home", a.home, "status", "--home", a.home).returncode, 0)
        for cmd in (["inbox"], ["outbox"], ["audit", "log"]):
            r = a.cli(*cmd, "--limit", "0", check=False)
            self.assertEqual(r.returncode, 1, cmd)
            self.assertIn("--limit: '0' is not a number from 1 to", r.stderr)
        self.assertEqual(a.cli("inbox", "--limit", "1").returncode, 0)

    def test_help_only_where_an_option_may_stand(self):
        """--help and -h ask for help in an option's place, never as an option's value or
        after "--": a subject or comment "-h" is sent, not taken for help (which exits 0
        having done nothing, and a script would go on as if it had)."""
        a = self.node("dr.alvarez")
        b = self.node("dr.okafor", role="psychiatrist")
        link(a, b)
        for args in (["send", "--to", "dr.okafor", "--help"], ["send", "--to", "dr.okafor", "-", "-h"],
                     ["review", "open", "--help"], ["peer", "--help"]):
            r = a.cli(*args, check=False, input="x")
            self.assertEqual(r.returncode, 0, args)
            self.assertTrue(r.stdout.startswith("usage: liaison"), (args, r.stdout))
        self.assertEqual(a.json("outbox")["messages"], [])
        r = a.cli("send", "--to", "dr.okafor", "--subject", "-h", "-", input="the subject is -h")
        mid = r.stdout.strip()
        self.assertRegex(mid, "^[0-9a-f]{32}$")
        self.wait_delivered(a, mid, "dr.okafor")
        self.assertEqual(b.json("show", mid)["payload"]["subject"], "-h")
        b.cli("ack", mid, "--comment", "-h")
        wait_for(lambda: a.json("show", mid)["acks"], 20, "the acknowledgement at dr.alvarez")
        self.assertEqual(a.json("show", mid)["acks"][0]["comment"], "-h")
        # After "--", --help is a file name.
        r = a.cli("send", "--to", "dr.okafor", "--", "--help", check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("cannot read --help", r.stderr)
        # A forgotten value is named, not filled with the next option.
        r = a.cli("send", "--to", "--subject", "x", "-", check=False, input="x")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("send: --to needs a value, not the option '--subject'", r.stderr)
        r = a.cli("send", "--to", "dr.okafor", "--subject", "--json", "-", check=False, input="x")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("(a value that starts with -- is written --subject=VALUE)", r.stderr)
        self.assertEqual(len(a.json("outbox")["messages"]), 1)
        r = a.cli("send", "--to", "dr.okafor", "--subject=--json", "-", input="x")
        self.assertRegex(r.stdout.strip(), "^[0-9a-f]{32}$")

    def test_daemon_not_running_exit_2(self):
        a = self.node("a", start=False)
        r = a.cli("status", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not running", r.stderr)
        # The fix names this node's directory, not a placeholder or the system service.
        self.assertIn("start it with: liaisond --home %s)" % a.home, r.stderr)
        r = a.cli("audit", "log", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("start it with: liaisond --home %s)" % a.home, r.stderr)
        # A stale socket left by a killed daemon is recognised as such.
        a.start()
        a.kill()
        r = a.cli("send", "--to", "b", "-", input="x", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not running", r.stderr)
        self.assertIn("start it with: liaisond --home %s)" % a.home, r.stderr)
        self.assertNotIn("systemctl", r.stderr)

    def test_card_without_access_is_not_a_missing_node(self):
        # Someone who may not read the node's directory is told so, not to create a node.
        if os.geteuid() != 0:
            self.skipTest("needs root to run the client as another user")
        a = self.node("a", start=False)
        os.chmod(a.home, 0o700)
        # The other user runs a copy of the client from a directory anyone may enter (the
        # build tree may sit in a private one, as in a fresh clone under mktemp -d).
        bindir = tempfile.mkdtemp(prefix="liaison-bin-")
        self.addCleanup(shutil.rmtree, bindir, True)
        os.chmod(bindir, 0o755)
        client = os.path.join(bindir, "liaison")
        shutil.copy(LIAISON, client)
        os.chmod(client, 0o755)
        r = subprocess.run([client, "--home", a.home, "card"], capture_output=True, text=True, timeout=30,
                           preexec_fn=lambda: (os.setgroups([]), os.setgid(65534), os.setuid(65534)))
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("cannot read %s: Permission denied" % a.card_file, r.stderr)
        self.assertNotIn("liaison init", r.stderr)

    def test_no_node_at_home_is_named(self):
        where = os.path.join(self.base, "no", "node")
        r = run("--home", where, "status")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("no liaison node at %s" % where, r.stderr)
        self.assertIn("liaison --home %s init" % where, r.stderr)
        self.assertNotIn("not running", r.stderr)

    def test_daemon_not_answering_says_to_check_before_resending(self):
        # A stopped (not dead) daemon is waited for 30 s; the message then says how to find
        # out whether a send took effect, so that a medication change is not sent twice.
        a = self.node("a")
        a.proc.send_signal(signal.SIGSTOP)
        try:
            r = subprocess.run([LIAISON, "--home", a.home, "send", "--to", "b", "-"], input="x", capture_output=True,
                               text=True, timeout=60)
        finally:
            a.proc.send_signal(signal.SIGCONT)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("did not answer within 30 s", r.stderr)
        self.assertIn("liaison outbox", r.stderr)
        # A request that changes nothing is not followed by that advice.
        a.proc.send_signal(signal.SIGSTOP)
        try:
            r = subprocess.run([LIAISON, "--home", a.home, "status"], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, LIAISON_TIMEOUT_MS="1500"))
        finally:
            a.proc.send_signal(signal.SIGCONT)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("did not answer within 1500 ms (stuck or overloaded", r.stderr)
        self.assertNotIn("outbox", r.stderr)

    def test_daemon_dying_mid_request_is_reported(self):
        # The client waits in 500 ms slices and checks between them that the daemon is
        # still there: a daemon that dies before answering is reported then, not after
        # the 30 s timeout.
        a = self.node("a")
        a.proc.send_signal(signal.SIGSTOP)
        try:
            p = subprocess.Popen([LIAISON, "--home", a.home, "status"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            time.sleep(0.3)
        finally:
            a.kill()
        out, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 2, err)
        self.assertIn("stopped before answering", err)
        # status changes nothing: asking again is the advice, not checking the outbox.
        self.assertIn("ask again once it is back", err)
        self.assertNotIn("outbox", err)

    def test_ctrl_c_while_waiting_says_the_request_may_have_gone(self):
        # Ctrl-C while the CLI waits for the daemon's answer used to end it in silence,
        # although the message may already be stored and queued: it now says so, names
        # how to check, and still ends as Ctrl-C does (shell status 130).
        a = self.node("dr.okafor", "psychiatrist")
        b = self.node("dr.alvarez")
        link(a, b)
        mid = a.cli("med-change", "--to", "dr.alvarez", "--patient", "P-1042", "--drug", "sertraline", "--action",
                    "increase", "--from", "50 mg daily", "--dose", "100 mg daily", "--reason", "partial response"
                    ).stdout.strip()
        self.wait_delivered(a, mid, "dr.alvarez")
        b.cli("show", mid)

        def interrupted(node, args, stdin=None):
            node.proc.send_signal(signal.SIGSTOP)
            try:
                p = subprocess.Popen([LIAISON, "--home", node.home] + args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                p.stdin.write(stdin or "")
                p.stdin.close()
                p.stdin = None  # communicate() would flush it
                wait_for(lambda: catches_sigint(p.pid), 10, "liaison to send its request")
                time.sleep(0.2)
                p.send_signal(signal.SIGINT)
                out, err = p.communicate(timeout=10)
            finally:
                node.proc.send_signal(signal.SIGCONT)
            self.assertEqual(p.returncode, -signal.SIGINT, err)
            self.assertEqual(out, "")
            return err

        err = interrupted(a, ["send", "--to", "dr.alvarez", "-"], stdin="about tomorrow")
        self.assertEqual(err, "liaison: interrupted: the message may already be stored and sent; check with:"
                              " liaison outbox\n")
        err = interrupted(a, ["note", "--to", "dr.alvarez", "--patient", "P-1042", "-"], stdin="session")
        self.assertIn("interrupted: the progress note may already be stored and sent; check with: liaison outbox",
                      err)
        err = interrupted(b, ["ack", mid, "--comment", "seen"])
        self.assertEqual(err, "liaison: interrupted: the acknowledgement may already be stored and sent; check"
                              " with: liaison show %s\n" % mid)
        # (Whether it was stored depends on how far the request got: here, with the daemon
        # stopped before the connection was made, it never left the client.)
        self.assertEqual(b.cli("ack", mid).returncode, 0)
        # Read-only commands are unchanged: Ctrl-C ends them at once, as it does while the
        # text is typed (nothing is sent then).
        a.proc.send_signal(signal.SIGSTOP)
        try:
            p = subprocess.Popen([LIAISON, "--home", a.home, "status"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=10)
        finally:
            a.proc.send_signal(signal.SIGCONT)
        self.assertEqual(p.returncode, -signal.SIGINT)
        self.assertEqual(err, "")

    def test_init_validates_and_never_overwrites(self):
        base = self.base
        home = os.path.join(base, "n")
        bad = [
            (["--id", "Dr Who", "--role", "therapist", "--listen", "tcp://127.0.0.1:1"], "--id"),
            (["--id", "x", "--role", "wizard", "--listen", "tcp://127.0.0.1:1"], "--role"),
            (["--id", "x", "--role", "therapist", "--listen", "http://x"], "--listen"),
            (["--id", "x", "--role", "therapist", "--listen", "tcp://0.0.0.0:7400"], "--advertise"),
            (["--id", "x", "--role", "therapist"], "--listen"),
        ]
        for args, word in bad:
            r = run("--home", home, "init", *args)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(word, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(home, "liaison.conf")))
        old_umask = os.umask(0o022)  # an administrator's usual umask: the files are private anyway
        try:
            ok = run("--home", home, "init", "--id", "x", "--role", "nurse", "--listen", "tcp://127.0.0.1:1")
        finally:
            os.umask(old_umask)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        for f in ("identity.key", "encryption.key", "transport.key", "patient.key", "liaison.db"):
            mode = stat.S_IMODE(os.stat(os.path.join(home, f)).st_mode)
            self.assertEqual(mode, 0o600, f)
        card = open(os.path.join(home, "card.txt")).read()
        # Secret material is never printed.
        self.assertNotIn(open(os.path.join(home, "identity.key"), "rb").read().hex(), ok.stdout)
        again = run("--home", home, "init", "--id", "x", "--role", "nurse", "--listen", "tcp://127.0.0.1:1")
        self.assertEqual(again.returncode, 3)
        self.assertIn("already", again.stderr)
        self.assertEqual(open(os.path.join(home, "card.txt")).read(), card)
        # Keys left behind without their configuration are never overwritten, nor removed.
        os.unlink(os.path.join(home, "liaison.conf"))
        os.unlink(os.path.join(home, "liaison.db"))
        patient_key = open(os.path.join(home, "patient.key"), "rb").read()
        r = run("--home", home, "init", "--id", "x", "--role", "nurse", "--listen", "tcp://127.0.0.1:1")
        self.assertEqual(r.returncode, 3)
        self.assertIn("refusing to overwrite a node's keys", r.stderr)
        self.assertEqual(open(os.path.join(home, "patient.key"), "rb").read(), patient_key)
        self.assertEqual(open(os.path.join(home, "card.txt")).read(), card)
        # LIAISON_HOME works like --home.
        env = dict(os.environ, LIAISON_HOME=home)
        r = subprocess.run([LIAISON, "card"], capture_output=True, text=True, env=env)
        self.assertEqual(r.stdout, card)

    def test_init_missing_options_are_named_and_the_example_works(self):
        home = os.path.join(self.base, "m")
        r = run("--home", home, "init", "--id", "x")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("init needs --role ROLE --listen ENDPOINT (", r.stderr)
        # The example in the message is a command that works as written (it used to suggest
        # tcp://0.0.0.0:7400, which init itself refuses without --advertise).
        example = r.stderr.split("e.g. liaison ", 1)[1].rsplit(")", 1)[0]
        ok = run("--home", home, *shlex.split(example))
        self.assertEqual(ok.returncode, 0, example + ": " + ok.stderr)
        self.assertIn("Dr. Chidi Okafor", open(os.path.join(home, "liaison.conf")).read())

    def test_init_endpoints_need_host_and_port(self):
        home = os.path.join(self.base, "n")
        base = ["--home", home, "init", "--id", "x", "--role", "nurse"]
        bad = [
            (["--listen", "tcp://127.0.0.1:99999"], "port must be a number from 1 to 65535"),
            (["--listen", "tcp://127.0.0.1:0"], "port must be a number from 1 to 65535"),
            (["--listen", "tcp://127.0.0.1:79o1"], "port must be a number from 1 to 65535"),
            (["--listen", "tcp://127.0.0.1"], "port is missing"),
            (["--listen", "tcp://localhost:7912"], "not a host name"),
            (["--listen", "tcp://127.0.0.1:7912", "--advertise", "tcp://clinic.example"], "port is missing"),
            (["--listen", "tcp://127.0.0.1:7912", "--advertise", "tcp://*:7912"], "'*' is not an address"),
        ]
        for args, why in bad:
            r = run(*base, *args)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(why, r.stderr, args)
            self.assertIn("'tcp://", r.stderr, args)     # names the endpoint
            self.assertIn("e.g. tcp://", r.stderr, args) # and shows the fix
            self.assertFalse(os.path.exists(os.path.join(home, "liaison.conf")))
        ok = run(*base, "--listen", "tcp://127.0.0.1:7912", "--advertise", "tcp://nurse.clinic.example:7912")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        # The daemon holds its configuration file to the same rule.
        conf = os.path.join(home, "liaison.conf")
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("tcp://127.0.0.1:7912", "tcp://127.0.0.1:99999"))
        r = subprocess.run([os.path.join(BUILD, "daemon", "liaisond"), "--home", home, "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("listen", r.stderr)
        self.assertIn("1-65535", r.stderr)

    def test_windows_line_ends_and_text_errors(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        crlf = os.path.join(self.base, "crlf.txt")
        with open(crlf, "wb") as f:
            f.write(b"Seen.\r\nBetter.\r\n")
        mid = a.cli("send", "--to", "b", crlf).stdout.strip()
        self.wait_delivered(a, mid, "b")
        self.assertEqual(b.json("show", mid)["payload"]["text"], "Seen.\nBetter.")
        mid = a.cli("send", "--to", "b", "-", input="one\r\ntwo\r\n").stdout.strip()
        self.wait_delivered(a, mid, "b")
        self.assertEqual(b.json("show", mid)["payload"]["text"], "one\ntwo")
        # Other refusals say what is wrong and where, without quoting the text.
        r = a.cli("send", "--to", "b", "-", input="Seen.\nBetter.\nsecret \x1b[31m", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("text: contains a control character (0x1b) at line 3", r.stderr)
        self.assertNotIn("secret", r.stderr)
        self.assertNotIn("  ", r.stderr)
        r = a.cli("send", "--to", "b", "-", input="lone\rcarriage return", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("carriage return", r.stderr)
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], 2)

    def test_text_inputs_name_the_limit_and_the_reason(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        # The limit named is the one that applies, however far over it the text is (a
        # large file used to be told "over 131072 bytes" while the limit is 65536).
        for size in (70000, 2000000):
            path = os.path.join(self.base, "big%d.txt" % size)
            open(path, "w").write("x" * size)
            r = a.cli("send", "--to", "b", path, check=False)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("%s is over the limit of 65536 bytes" % path, r.stderr)
        # A directory is named as such (fopen accepts it; the read fails with EISDIR).
        for cmd in (["send", "--to", "b", self.base], ["peer", "add", self.base]):
            r = a.cli(*cmd, check=False)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("cannot read %s: Is a directory" % self.base, r.stderr)
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], 0)

    def test_text_from_a_terminal_says_how_to_end_it(self):
        # "-" at a terminal used to wait in silence, which looks like a hang.
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        master, slave = pty.openpty()
        p = subprocess.Popen([LIAISON, "--home", a.home, "send", "--to", "b", "-"], stdin=slave,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.close(slave)
        try:
            time.sleep(0.3)
            os.write(master, b"typed at the terminal\n")
            time.sleep(0.2)
            os.write(master, b"\x04")  # one Ctrl-D ends it (stdio used to wait for a second one)
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("one Ctrl-D did not end the text")
        finally:
            os.close(master)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("press Ctrl-D on a new line", err)
        mid = out.strip()
        self.wait_delivered(a, mid, "b")
        self.assertEqual(b.json("show", mid)["payload"]["text"], "typed at the terminal")
        # From a pipe, nothing is said.
        r = a.cli("send", "--to", "b", "-", input="piped")
        self.assertEqual(r.stderr, "")

    def test_peer_add_says_what_it_did(self):
        # The first line says what happened to the directory, not which option was given:
        # --replace of a new peer adds it; the card held, added again, changes nothing; the
        # same keys with another name update the card held.
        a = self.node("a")
        b = self.node("b")
        self.assertTrue(a.cli("peer", "add", b.card_file, "--replace").stdout.startswith("Added peer b "))
        out = a.cli("peer", "add", b.card_file).stdout
        self.assertTrue(out.startswith("Peer b (b, therapist) is already in the directory with this card: nothing"
                                       " changed\n"), out)
        self.assertEqual(a.json("peer", "add", b.card_file)["change"], "unchanged")
        self.assertEqual(a.audit("peer-updated"), [])
        out = a.cli("peer", "add", b.reissued_card("Dr B")).stdout
        self.assertTrue(out.startswith("Updated peer b (Dr B, therapist): same keys, card refreshed\n"), out)
        self.assertEqual(a.audit("peer-updated")[0][5], "b")
        # New keys under the same id (b made a new node) need --replace and say so loudly.
        b.stop()
        shutil.rmtree(b.home)
        b.init()
        out = a.cli("peer", "add", b.card_file, "--replace").stdout
        self.assertTrue(out.startswith("Replaced peer b (b, therapist): NEW KEYS\n"), out)
        self.assertEqual(a.audit("peer-replaced")[0][5], "b")

    def test_output_that_cannot_be_written_is_a_failure(self):
        # "liaison card > alvarez.card" on a full disk used to exit 0 with an empty file.
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full")
        a = self.node("a")
        for cmd in (["card"], ["status"], ["audit", "log"], ["inbox", "--json"]):
            with open("/dev/full", "w") as full:
                r = subprocess.run([LIAISON, "--home", a.home] + cmd, stdout=full, stderr=subprocess.PIPE, text=True,
                                   timeout=30)
            self.assertEqual(r.returncode, 6, (cmd, r.stderr))
            self.assertEqual(r.stderr, "liaison: cannot write standard output: No space left on device (the output is"
                                       " incomplete)\n")

    def test_done_but_output_lost_says_what_was_done(self):
        # "echo x | liaison send ... >/dev/full" (or >&-, or into a closed pipe) stored and
        # sent the message, then exited 3, "refused", without its id: a script sending it
        # again gave the team the message twice. Now stderr names what was done, and the
        # exit status (6) is not the one of a refusal.
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full")
        a = self.node("dr.okafor", "psychiatrist")
        b = self.node("dr.alvarez")
        link(a, b)
        # (connected first: a send to a peer not yet connected says so on stderr as well)
        wait_for(lambda: all(p["connected"] for p in a.json("peer", "list")["peers"]), 20, "dr.alvarez connected")

        def lost(node, args, where, stdin=None):
            cmd = [LIAISON, "--home", node.home] + args
            if where == "full":
                with open("/dev/full", "w") as full:
                    return subprocess.run(cmd, input=stdin, stdout=full, stderr=subprocess.PIPE, text=True,
                                          timeout=30)
            if where == "closed":  # as the shell's >&-
                return subprocess.run(cmd, input=stdin, stdout=None, stderr=subprocess.PIPE, text=True, timeout=30,
                                      preexec_fn=lambda: os.close(1))
            rd, wr = os.pipe()  # a reader that went away: SIGPIPE used to end liaison silently
            os.close(rd)
            try:
                return subprocess.run(cmd, input=stdin, stdout=wr, stderr=subprocess.PIPE, text=True, timeout=30)
            finally:
                os.close(wr)

        why = {"full": "No space left on device", "closed": "Bad file descriptor", "pipe": "Broken pipe"}
        sent = []
        for where in ("full", "closed", "pipe"):
            with self.subTest(where=where):
                before = a.query("SELECT count(*) FROM messages")[0][0]
                r = lost(a, ["send", "--to", "dr.alvarez", "-"], where, stdin="sent once")
                self.assertEqual(r.returncode, 6, r.stderr)
                self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], before + 1)
                mid = [m["id"] for m in a.json("outbox")["messages"]][0]
                self.assertEqual(r.stderr, "liaison: the message was stored and sent as %s, but standard output could"
                                           " not be written: %s (it is done: do not repeat the command; see: liaison"
                                           " outbox)\n" % (mid, why[where]))
                sent.append(mid)
        r = lost(a, ["med-change", "--to", "dr.alvarez", "--patient", "P-1042", "--drug", "sertraline", "--action",
                     "increase", "--from", "50 mg daily", "--dose", "100 mg daily", "--reason", "partial response"],
                 "full")
        self.assertEqual(r.returncode, 6, r.stderr)
        change = r.stderr.split("the medication change was stored and sent as ")[1][:32]
        self.assertTrue(a.has_message(change), r.stderr)
        self.wait_delivered(a, change, "dr.alvarez")
        # Reading a message marks it read: said too, as the reader did not see it.
        r = lost(b, ["show", change], "full")
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("message %s is marked read on this node (the read is audited), but standard output" % change,
                      r.stderr)
        r = lost(b, ["ack", change, "--comment", "seen"], "closed")
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("the acknowledgement of %s was stored and sent as " % change, r.stderr)
        self.assertEqual(b.query("SELECT count(*) FROM messages WHERE content_type = 4")[0][0], 1)
        r = lost(a, ["review", "open", "--with", "dr.alvarez", "--patient", "P-1042", "--question", "q?"], "pipe")
        self.assertEqual(r.returncode, 6, r.stderr)
        rid = r.stderr.split("review ")[1][:32]
        self.assertEqual([v["id"] for v in a.json("review", "list")["reviews"]], [rid])
        wait_for(lambda: b.json("review", "list")["reviews"], 20, "the review at dr.alvarez")
        r = lost(b, ["review", "show", rid], "full")
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("the 1 message received in review %s is marked read on this node (each read is audited), but"
                      " standard output could not be written" % rid, r.stderr)
        r = lost(a, ["peer", "remove", "dr.alvarez"], "full")
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("peer dr.alvarez was removed, but standard output could not be written", r.stderr)
        r = lost(a, ["peer", "add", b.card_file], "full")
        self.assertEqual(r.returncode, 6, r.stderr)
        fp = b.cli("fingerprint").stdout.strip()
        self.assertIn("peer dr.alvarez was added (fingerprint %s), but standard output" % fp, r.stderr)
        self.assertIn("see: liaison peer list)", r.stderr)
        # A refusal is still a refusal, whatever happens to the output.
        r = lost(a, ["send", "--to", "nobody", "-"], "full", stdin="x")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertNotIn("standard output", r.stderr)

    @unittest.skipIf(sanitized(), "ASan's allocator cannot be replaced by an LD_PRELOAD tool (./run asan)")
    def test_out_of_memory_never_prints_a_short_answer(self):
        """Memory runs out at each allocation of the command line in turn (tests/tools/
        failmalloc): an answer is printed whole, as it is with memory, or not at all, with
        an error; never valid and short of a recipient, a score or a message's text."""
        a = self.node("dr.alvarez")
        b = self.node("dr.okafor", role="psychiatrist")
        link(a, b)
        note = a.cli("note", "--to", "dr.okafor", "--patient", "P-1042", "--label", "J.D.", "--session-date",
                     "2026-11-20", "--phq9", "14", "--gad7", "9", "--risk", "low", "--adherence", "most doses",
                     "-", input="Slept better this week.").stdout.split()[-1]
        sent = a.send("dr.okafor", "Could we talk about the dose on Friday?")
        rid = a.json("review", "open", "--with", "dr.okafor", "--patient", "P-1042", "--question",
                     "Hold the increase?")["review_id"]
        for mid in (note, sent):
            self.wait_delivered(a, mid, "dr.okafor")
        wait_for(lambda: b.json("review", "list")["reviews"], 20, "the review at dr.okafor")
        b.cli("show", note)
        b.cli("ack", note, "--comment", "seen")
        commands = [["--json", "show", note], ["show", note], ["--json", "inbox"], ["--json", "outbox"],
                    ["--json", "thread", sent], ["--json", "patient", "P-1042"], ["patient", "P-1042"],
                    ["--json", "peer", "list"], ["--json", "review", "show", rid], ["--json", "review", "list"],
                    ["--json", "audit", "disclosures", "--patient", "P-1042"]]

        def run(args, at=0, count=False):
            env = dict(os.environ, LD_PRELOAD=FAILMALLOC, FAILMALLOC_AT=str(at), FAILMALLOC_COUNT="1" if count else "")
            return subprocess.run([LIAISON, "--home", b.home] + args, capture_output=True, text=True, env=env,
                                  timeout=30)

        for args in commands:
            run(args)  # a message's first read changes what show prints after it (read at)
            whole = run(args, count=True)
            self.assertEqual(whole.returncode, 0, whole.stderr)
            calls = int(whole.stderr.split("failmalloc: ")[1].split()[0])
            self.assertGreater(calls, 50, args)
            outcomes = set()
            for at in range(1, calls + 10):
                r = run(args, at)
                what = "%s, allocation %d: %s %r" % (" ".join(args), at, r.returncode, r.stdout[-300:] + r.stderr)
                if r.returncode == 0:
                    self.assertEqual(r.stdout, whole.stdout, what)
                elif r.returncode > 0:
                    if args[0] == "--json":  # text may be printed before the error that follows it
                        self.assertEqual(r.stdout, "", what)
                    self.assertRegex(r.stderr, r"^liaison: .*(out of|allocate) memory", what)
                else:  # libzmq, libstdc++ and glibc's NSS end the process on some failures
                    self.assertNotIn("{", r.stdout, what)
                outcomes.add(r.returncode)
            # The sweep did reach the answer: some runs failed for want of memory and said so.
            self.assertIn(0, outcomes, args)
            self.assertTrue(outcomes & {3, 6}, (args, outcomes))

    def test_errors_name_the_value_and_the_fix(self):
        a = self.node("dr.alvarez")
        b = self.node("dr.okafor", role="psychiatrist")
        link(a, b)
        cases = [
            (["inbox", "--limit", "1x"], "--limit: '1x' is not a number from 1 to"),
            (["audit", "log", "--limit", "-1"], "--limit: '-1' is not a number from 1 to"),
            (["status", "--json=1"], "status: --json takes no value"),
            (["inbox", "--since", "1795539043"], "--since: 1795539043 looks like seconds since 1970; the value is"
                                                 " milliseconds (1795539043000) or a date (YYYY-MM-DD)"),
            (["peer", "remove", "BAD ID"], "peer remove: 'BAD ID' is not a node id"),
            (["outbox", "--unread"], "outbox: --unread is about messages received: use it with liaison inbox"),
        ]
        for args, want in cases:
            r = a.cli(*args, check=False)
            self.assertEqual(r.returncode, 1, (args, r.stderr))
            self.assertIn(want, r.stderr, args)
        empty = os.path.join(self.base, "empty.txt")
        open(empty, "w").close()
        r = a.cli("send", "--to", "dr.okafor", empty, check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("send: the text in %s is empty (nothing was sent)" % empty, r.stderr)
        r = a.cli("note", "--to", "dr.okafor", "--patient", "P-1", "-", input="", check=False)
        self.assertIn("note: the narrative in standard input is empty (nothing was sent)", r.stderr)
        self.assertEqual(a.json("outbox")["messages"], [])
        # A case review's id given to show is pointed at review show.
        rid = a.json("review", "open", "--with", "dr.okafor", "--patient", "P-1", "--question", "q?")["review_id"]
        r = a.cli("show", rid, check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("%s is a case review, not a message (read it with: liaison review show %s)" % (rid, rid),
                      r.stderr)

    def test_full_disk_is_exit_6_for_every_output(self):
        """Help, --version and an export to standard output that cannot be written (a full
        disk) fail with exit 6 and the reason, as every other command's output does."""
        a = self.node("a")
        for args in (["--version"], ["help"], ["help", "send"], ["send", "--help"], ["audit", "export"],
                     ["--json", "inbox"]):
            with open("/dev/full", "w") as full:
                r = subprocess.run([LIAISON, "--home", a.home] + args, stdout=full, stderr=subprocess.PIPE,
                                   text=True, timeout=30)
            self.assertEqual(r.returncode, 6, (args, r.stderr))
            self.assertIn("cannot write standard output: No space left on device", r.stderr)

    def test_card_and_fingerprint(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        card = a.cli("card").stdout.strip()
        self.assertTrue(card.startswith("liaison-card-v1:"))
        self.assertEqual("\n" in card, False)
        fp = a.cli("fingerprint").stdout.strip()
        self.assertRegex(fp, r"^(\d{5} ){7}\d{5}$")
        self.assertEqual(b.cli("fingerprint", "a").stdout.strip(), fp)
        self.assertEqual(b.json("fingerprint", "a")["fingerprint"], fp)
        r = b.cli("fingerprint", "nobody", check=False)
        self.assertEqual(r.returncode, 3)
        # This node's own fingerprint, like its card, needs no daemon (read out on the
        # phone while it is stopped); a peer's still comes from the daemon's directory.
        a.stop()
        self.assertEqual(a.cli("fingerprint").stdout.strip(), fp)
        self.assertEqual(a.json("fingerprint"), {"id": "a", "fingerprint": fp})
        r = a.cli("fingerprint", "b", check=False)
        self.assertEqual(r.returncode, 2, r.stderr)
        # A damaged card with the daemon down: both reasons are given, not only the daemon.
        with open(a.card_file) as f:
            kept = f.read()
        with open(a.card_file, "w") as f:
            f.write("garbage\n")
        r = a.cli("fingerprint", check=False)
        with open(a.card_file, "w") as f:
            f.write(kept)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("liaisond is not running", r.stderr)
        self.assertIn("nor could this node's card be used: %s: card: " % a.card_file, r.stderr)
        self.assertIn("(restore it from a backup)", r.stderr)

    def test_bad_inputs_name_the_problem(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        cases = [
            (["send", "--to", "b"], 1, "standard input"),
            (["send", "-"], 1, "--to"),
            (["send", "--to", "b", "--thread", "xyz", "-"], 1, "thread"),
            (["send", "--to", "c", "-"], 3, "liaison peer add"),
            (["show", "1234"], 1, "32 hex"),
            (["show", "00" * 16], 3, ""),
            (["ack"], 1, "message id"),
            (["inbox", "--type", "fax"], 1, "--type"),
            (["inbox", "--since", "yesterday"], 1, "--since"),
            (["note", "--to", "b", "--patient", "P 1", "-"], 1, "patient"),
            (["note", "--to", "b", "--patient", "P1", "--session-date", "2026-02-30", "-"], 1, "session date"),
            (["med-change", "--to", "b", "--patient", "P1", "--drug", "x", "--action", "start", "--reason", "r"], 1,
             "new dose"),
            (["med-change", "--to", "b", "--patient", "P1", "--drug", "x", "--action", "boost", "--dose", "1",
              "--reason", "r"], 1, "--action"),
            # Orders that contradict their action name the option to drop.
            (["med-change", "--to", "b", "--patient", "P1", "--drug", "sertraline", "--action", "stop", "--from",
              "50mg", "--dose", "100mg", "--reason", "r"], 1, "--dose"),
            (["med-change", "--to", "b", "--patient", "P1", "--drug", "sertraline", "--action", "start", "--from",
              "50mg", "--dose", "25mg", "--reason", "r"], 1, "--from"),
            (["med-change", "--to", "b", "--patient", "P1", "--drug", "sertraline", "--action", "increase", "--from",
              "50mg", "--dose", "100mg", "--from-drug", "fluox", "--reason", "r"], 1, "--from-drug"),
            # An increase that lowers the dose is refused with the action that fits.
            (["med-change", "--to", "b", "--patient", "P1", "--drug", "sertraline", "--action", "increase", "--from",
              "100 mg daily", "--dose", "50 mg daily", "--reason", "r"], 1, "use --action decrease"),
            # Custom scores cannot stand in for the PHQ-9 or GAD-7, nor repeat a name.
            (["note", "--to", "b", "--patient", "P1", "--score", "PHQ9=30/0-40", "-"], 1, "--phq9"),
            (["note", "--to", "b", "--patient", "P1", "--score", "gad-7=25/0-30", "-"], 1, "--gad7"),
            (["note", "--to", "b", "--patient", "P1", "--score", "PCL-5=41/0-80", "--score", "pcl5=40/0-80", "-"], 1,
             "score 2: 'pcl5' is the same name as score 1"),
            # Wrong input is quoted whole.
            (["note", "--to", "b", "--patient", "P1", "--session-date", "2026-11-16T10:00Z", "-"], 1,
             "'2026-11-16T10:00Z' is not a date"),
            # A session that has not taken place yet is a typo (it would end the score trend).
            (["note", "--to", "b", "--patient", "P1", "--session-date", "2999-01-01", "--phq9", "3", "-"], 1,
             "--session-date: 2999-01-01 is after today"),
            (["peer", "add", "/nonexistent"], 1, "cannot read"),
            (["peer", "frob"], 1, "subcommand"),
            (["review", "reply", "00" * 16, "-"], 3, "no review"),
            (["audit", "prove", "zero"], 1, "SEQ"),
            (["status", "--bogus"], 1, "unknown option"),
            # The help to read is the command's own.
            (["review", "open", "--wiht", "b"], 1, "review open: unknown option --wiht (see: liaison help review open)"),
            (["send", "--to", "b", "a", "b"], 1, "send: unexpected argument 'b' (see: liaison help send)"),
        ]
        for args, code, word in cases:
            r = a.cli(*args, input="text", check=False)
            self.assertEqual(r.returncode, code, "%s: %s" % (args, r.stderr))
            self.assertTrue(r.stderr.startswith("liaison: "), r.stderr)
            self.assertIn(word, r.stderr, args)
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], 0)
        # A card that does not verify is refused before the daemon is asked.
        card = open(b.card_file).read().strip()
        bad = os.path.join(self.base, "bad.card")
        open(bad, "w").write(card[:-4] + ("AAAA" if card[-4:] != "AAAA" else "BBBB"))
        r = a.cli("peer", "add", bad, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a valid card", r.stderr)

    def test_next_session_before_the_session_is_refused(self):
        # --next-session was not compared with the session: 2025-11-23 for 2026-11-23
        # went out, and the team would plan around a date already past.
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        note = ["note", "--to", "b", "--patient", "P1", "--session-date", "2026-01-15"]
        r = a.cli(*note, "--next-session", "2025-01-22", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stderr, "liaison: --next-session: 2025-01-22 is before the session it follows"
                                   " (--session-date 2026-01-15); nothing was sent\n")
        # Without --session-date the session is today's.
        r = a.cli("note", "--to", "b", "--patient", "P1", "--next-session", "2000-01-01", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"2000-01-01 is before the session it follows \(today, \d{4}-\d\d-\d\d\)")
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], 0)
        # The same day or later is a next session; a date that is no date is named as such.
        for day in ("2026-01-15", "2026-01-22"):
            a.cli(*note, "--next-session", day, "-", input="x")
        r = a.cli(*note, "--next-session", "2026-01-32", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("next session date", r.stderr)
        self.assertNotIn("before the session", r.stderr)

    def test_recipient_typo_suggests_the_peer_meant(self):
        # "dr.okafr" was refused without a word about dr.okafor.
        a = self.node("dr.alvarez")
        b = self.node("dr.okafor", "psychiatrist")
        c = self.node("rx.chen", "pharmacist")
        link(a, b, c)
        for typo, meant in (("dr.okafr", "dr.okafor"), ("dr.okafro", "dr.okafor"), ("rx.chne", "rx.chen")):
            r = a.cli("send", "--to", "rx.chen," + typo, "-", input="x", check=False)
            self.assertEqual(r.returncode, 3, r.stderr)  # refused, as before
            self.assertEqual(r.stderr, "liaison: peer '%s' is not in the directory (did you mean %s? if not, add"
                                       " their card with: liaison peer add CARD)\n" % (typo, meant))
        r = a.cli("review", "open", "--with", "dr.okafr", "--patient", "P1", "--question", "q", check=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("(did you mean dr.okafor?", r.stderr)
        # The library's code is unchanged (REFUSED), and so is the message of an id near no peer.
        r = a.cli("send", "--to", "nobody.here", "-", input="x", check=False)
        self.assertEqual(r.returncode, 3)
        self.assertEqual(r.stderr, "liaison: peer 'nobody.here' is not in the directory (add their card with:"
                                   " liaison peer add CARD)\n")
        # Two peers near the typo: no guess between them.
        d = self.node("dr.okafer")
        link(a, d)
        r = a.cli("send", "--to", "dr.okafr", "-", input="x", check=False)
        self.assertEqual(r.returncode, 3)
        self.assertNotIn("did you mean", r.stderr)
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], 0)

    def test_thread_holds_its_first_message_and_replies_to_replies(self):
        # "liaison thread ID" with the id of the message that started a thread shows that
        # message too, and "--thread ID" of a reply stays in the same conversation.
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        first = a.send("b", "original question")
        self.wait_delivered(a, first, "b")
        reply = b.cli("send", "--to", "a", "--thread", first, "-", input="the reply").stdout.strip()
        self.wait_delivered(b, reply, "a")
        again = a.cli("send", "--to", "b", "--thread", reply, "-", input="reply to the reply").stdout.strip()
        self.wait_delivered(a, again, "b")
        for node in (a, b):
            for tid in (first, reply, again):
                msgs = node.json("thread", tid)["messages"]
                self.assertEqual([m["id"] for m in msgs], [first, reply, again], (node.id, tid))
        # An unknown thread is "not found" with --json too, as in text (a mistyped id).
        for args in (["thread", "0" * 32], ["--json", "thread", "0" * 32]):
            r = a.cli(*args, check=False)
            self.assertEqual((r.returncode, r.stdout), (3, ""), args)
            self.assertIn("no messages in thread %s on this node" % ("0" * 32), r.stderr)
        self.assertEqual(a.json("show", again)["thread"], first)
        out = b.cli("thread", first).stdout
        self.assertLess(out.index("original question"), out.index("the reply"))
        # A thread id this node has never seen (a typo) is refused; nothing is stored.
        before = a.query("SELECT count(*) FROM messages")[0][0]
        r = a.cli("send", "--to", "b", "--thread", "0f" * 16, "-", input="lost reply", check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("no message or thread %s on this node" % ("0f" * 16), r.stderr)
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], before)

    def test_listing_with_contents_reads_and_names_what_cannot_be_opened(self):
        # A listing with contents (liaison thread) is a read: the answer carries the read
        # time it just recorded. A message no card of its sender opens (removed and
        # replaced cards stay for this; here the cards were deleted from the database
        # while the daemon was stopped) is named as such instead of shown empty, the
        # attempt is audited as by show, and the message stays unread.
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        first = a.send("b", "first words")
        self.wait_delivered(a, first, "b")
        msgs = b.json("thread", first)["messages"]
        self.assertEqual([m["id"] for m in msgs], [first])
        self.assertIsNotNone(msgs[0]["read"], msgs[0])
        self.assertNotIn("unopenable", msgs[0])
        self.assertEqual(b.json("inbox", "--unread")["messages"], [])
        second = a.cli("send", "--to", "b", "--thread", first, "-", input="second words").stdout.strip()
        self.wait_delivered(a, second, "b")
        b.edit_stopped("DELETE FROM peers WHERE id = 'a'")
        before = len(b.audit("message-read"))
        msgs = b.json("thread", first)["messages"]
        self.assertEqual([m["id"] for m in msgs], [first, second])
        for m in msgs:
            self.assertIs(m["unopenable"], True, m)
            self.assertIsNone(m["payload"], m)
        self.assertIsNone(msgs[1]["read"])
        failed = b.audit("message-read")[before:]
        self.assertEqual(sorted((r[3], r[4].lower(), r[5], r[6]) for r in failed),
                         sorted(("failed", mid, "a", "cannot open: no matching key") for mid in (first, second)))
        self.assertEqual([m["id"] for m in b.json("inbox", "--unread")["messages"]], [second])
        out = b.cli("thread", first).stdout
        self.assertEqual(out.count("cannot be opened with the keys this node has for a"), 2, out)
        self.assertNotIn("second words", out)

    def test_listing_with_contents_stops_at_16_mib(self):
        # 1,000 messages of 512 KiB listed with their contents would be half a gigabyte in
        # one answer: the daemon stops once the contents reach 16 MiB and says so.
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        text = "x" * 65000  # a TextMessage payload of 1 + 3 + 65,000 bytes
        per = 65004
        fit = -(-16 * 1024 * 1024 // per)  # messages until the contents reach 16 MiB: 259
        first = a.send("b", text)
        ids = [first]
        for _ in range(fit):
            ids.append(a.cli("send", "--to", "b", "--thread", first, "-", input=text).stdout.strip())
        wait_for(lambda: a.query("SELECT count(*) FROM deliveries WHERE state = 2")[0][0] == len(ids), 120,
                 "every message to be delivered")
        j = b.json("thread", first)
        self.assertIs(j["truncated"], True)
        self.assertEqual([m["id"] for m in j["messages"]], ids[:fit])
        out = b.cli("thread", first).stdout
        self.assertIn("Note: more messages match than the %d shown" % fit, out)
        # The message left out was not read, and a listing without contents is not cut.
        self.assertEqual([m["id"] for m in b.json("inbox", "--unread")["messages"]], [ids[-1]])
        self.assertEqual(len(b.json("inbox", "--limit", "1000")["messages"]), len(ids))

    def test_refused_request_audited_once(self):
        a = self.node("a")
        before = len(a.audit())
        r = a.cli("send", "--to", "nobody", "-", input="x", check=False)
        self.assertEqual(r.returncode, 3)
        rows = a.audit()[before:]
        self.assertEqual([(x[2], x[3]) for x in rows], [("request-refused", "refused")])
        self.assertTrue(rows[0][1].startswith(("user:", "uid:")))
        # What the requester typed is said to them, not kept in the log (it may have been a
        # patient's id or name, typed in the wrong place).
        self.assertIn("send: peer '?' is not in the directory", rows[0][6])
        self.assertNotIn("nobody", rows[0][6])
        self.assertIn("peer 'nobody' is not in the directory", r.stderr)
        # One that is not a node id at all never reaches the daemon.
        before = len(a.audit())
        r = a.cli("send", "--to", "dr.okafor,MRN-0042", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("'MRN-0042' is not a node id", r.stderr)
        # A peer's id typed with capitals, as the name is written, is given back in
        # lower case.
        r = a.cli("send", "--to", "Dr.Okafor", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("'Dr.Okafor' is not a node id: ids are lower case (did you mean dr.okafor?", r.stderr)
        self.assertEqual(a.audit()[before:], [])
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], 0)

    def test_displayed_times_name_their_zone(self):
        # inbox, outbox, show and status print local time; errors, audit and JSON print
        # UTC. Without the zone, a pharmacist in another zone (or anyone comparing with an
        # error message) could not tell 13:50 from 18:50.
        a = self.node("dr.alvarez")
        b = self.node("dr.okafor", "psychiatrist")
        link(a, b)
        mid = a.send("dr.okafor", "zone check")
        self.wait_delivered(a, mid, "dr.okafor")
        created = b.json("inbox")["messages"][0]["created"]
        ts = calendar.timegm(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S"))
        old = os.environ.get("TZ")
        try:
            for tz in ("America/New_York", "Asia/Kolkata", "UTC"):
                os.environ["TZ"] = tz
                time.tzset()
                want = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(ts))
                self.assertNotEqual(want.split()[-1], "")
                line = [ln for ln in b.cli("inbox").stdout.splitlines() if ln.startswith(mid)][0]
                self.assertIn("  %s  " % want, line)
                self.assertIn("Sent           %s\n" % want, b.cli("show", mid).stdout)
                line = [ln for ln in a.cli("outbox").stdout.splitlines() if ln.startswith(mid)][0]
                self.assertIn("  %s  to dr.okafor" % want, line)
                self.assertRegex(b.cli("status").stdout, r"up since \S+ \S+ %s," % time.strftime("%Z"))
        finally:
            if old is None:
                del os.environ["TZ"]
            else:
                os.environ["TZ"] = old
            time.tzset()

    def test_send_to_an_unreachable_peer_says_it_is_queued(self):
        # The id printed for a message that waits in the queue looked like any other: an
        # urgent change to a pharmacist whose node is down could wait unnoticed.
        a = self.node("dr.okafor", "psychiatrist")
        b = self.node("rx.chen", "pharmacist")
        c = self.node("dr.alvarez")
        link(a, b, c)
        wait_for(lambda: all(p["connected"] for p in a.json("peer", "list")["peers"]), 20, "both peers connected")
        b.stop()
        wait_for(lambda: not [p for p in a.json("peer", "list")["peers"] if p["id"] == "rx.chen"][0]["connected"],
                 30, "rx.chen to be seen down")
        r = a.cli("med-change", "--to", "rx.chen, dr.alvarez", "--patient", "P-1042", "--drug", "lithium", "--action",
                  "stop", "--from", "300 mg bid", "--reason", "level 1.4", "--urgent")
        mid = r.stdout.strip()
        self.assertEqual(len(mid), 32)
        self.assertIn("liaison: rx.chen is not connected now", r.stderr)
        self.assertIn("queued for rx.chen and goes out when rx.chen can be reached (see: liaison outbox)", r.stderr)
        self.assertNotIn("dr.alvarez", r.stderr)
        self.assertEqual(a.delivery_state(mid, "rx.chen"), "queued")
        # A peer that is connected: nothing is said.
        self.assertEqual(a.cli("send", "--to", "dr.alvarez", "-", input="x").stderr, "")
        b.start()
        self.wait_delivered(a, mid, "rx.chen", timeout=90)

    def test_second_ack_refused_before_anything_is_sent(self):
        t = self.node("dr.alvarez")
        p = self.node("dr.okafor", "psychiatrist")
        link(t, p)
        mid = p.cli("med-change", "--to", "dr.alvarez", "--patient", "P-1042", "--drug", "sertraline", "--action",
                    "increase", "--from", "50 mg daily", "--dose", "100 mg daily", "--reason", "partial response"
                    ).stdout.strip()
        self.wait_delivered(p, mid, "dr.alvarez")
        t.cli("show", mid)
        ack = t.cli("ack", mid, "--comment", "x").stdout.strip()
        # Its receipt is audited as it arrives: wait for it, so that only the second
        # attempt's entries come after `before`.
        self.wait_delivered(t, ack, "dr.okafor")
        acks = "SELECT count(*) FROM messages WHERE content_type = 4"
        self.assertEqual(t.query(acks)[0][0], 1)
        before = len(t.audit())
        r = t.cli("ack", mid, "--comment", "x", check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("already acknowledged at", r.stderr)
        self.assertIn(mid, r.stderr)
        self.assertEqual(t.query(acks)[0][0], 1)
        rows = t.audit()[before:]
        self.assertEqual([(x[2], x[3]) for x in rows], [("request-refused", "refused")])
        self.assertIn("ack: message %s was already acknowledged" % mid, rows[0][6])

    def test_inbox_names_the_message_an_acknowledgement_acknowledges(self):
        # "ack" alone in the inbox did not say which medication change was seen.
        t = self.node("dr.alvarez")
        p = self.node("dr.okafor", "psychiatrist")
        link(t, p)
        mids = []
        for drug in ("sertraline", "lithium"):
            mid = p.cli("med-change", "--to", "dr.alvarez", "--patient", "P-1042", "--drug", drug, "--action", "start",
                        "--dose", "50 mg daily", "--reason", "r").stdout.strip()
            self.wait_delivered(p, mid, "dr.alvarez")
            mids.append(mid)
        t.cli("show", mids[1])
        ack = t.cli("ack", mids[1]).stdout.strip()
        self.wait_delivered(t, ack, "dr.okafor")
        line = [ln for ln in p.cli("inbox").stdout.splitlines() if ln.startswith(ack)][0]
        self.assertIn(" acknowledges %s" % mids[1], line)
        self.assertNotIn(mids[0], line)
        j = [m for m in p.json("inbox")["messages"] if m["id"] == ack][0]
        self.assertEqual(j["acknowledges"], mids[1])
        # The sender's outbox says it too; other messages' lines do not.
        out = t.cli("outbox").stdout
        self.assertIn("acknowledges %s" % mids[1], [ln for ln in out.splitlines() if ln.startswith(ack)][0])
        self.assertEqual(p.cli("inbox").stdout.count("acknowledges"), 1)

    def test_limit_keeps_the_newest_in_every_listing(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        sent = []
        for i in range(4):
            p = a.cli("note", "--to", "b", "--patient", "P-77", "-", input="note %d" % i)
            sent.append(p.stdout.strip())
        for mid in sent:
            self.wait_delivered(a, mid, "b")
        newest_first = list(reversed(sent))

        def ids(*args):
            return [m["id"] for m in b.json("inbox", *args)["messages"]]
        self.assertEqual(ids("--limit", "2"), newest_first[:2])
        self.assertEqual(ids("--patient", "P-77", "--limit", "2"), newest_first[:2])
        self.assertEqual(ids("--patient", "P-77"), newest_first)
        self.assertEqual(ids("--type", "note", "--limit", "3"), newest_first[:3])
        # The text listing is in the same order.
        out = b.cli("inbox", "--patient", "P-77", "--limit", "2").stdout
        self.assertLess(out.index(sent[3]), out.index(sent[2]))
        self.assertNotIn(sent[0], out)
        # The audit log too keeps the newest entries (it kept the node's first ones), shown
        # oldest first.
        full = [e["seq"] for e in b.json("audit", "log")["entries"]]
        self.assertGreater(len(full), 6)
        last = [e["seq"] for e in b.json("audit", "log", "--limit", "3")["entries"]]
        self.assertEqual(len(last), 3)
        self.assertEqual(last, list(range(last[0], last[0] + 3)))
        self.assertGreaterEqual(last[-1], full[-1])
        out = b.cli("audit", "log", "--limit", "2").stdout.splitlines()
        self.assertEqual(len(out), 3)
        self.assertNotEqual(out[1].split()[0], "1")

    def test_listing_cut_at_its_limit_says_how_many_are_left_out(self):
        # With 111 messages, inbox (and --unread) printed exactly 100 and nothing said the
        # other 11 existed, in text or in --json.
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        sent = [a.send("b", "m%d" % i) for i in range(111)]
        wait_for(lambda: b.query("SELECT count(*) FROM messages")[0][0] == 111, 60, "the 111 messages at b")
        mid_re = r"^[0-9a-f]{32}  "
        for args in ((), ("--unread",)):
            with self.subTest(args=args):
                out = b.cli("inbox", *args).stdout
                self.assertEqual(len([ln for ln in out.splitlines() if len(ln) > 34 and ln[32:34] == "  "]), 100)
                self.assertEqual(out.splitlines()[-5:-2],
                                 ["", "Note: 11 more messages match but are not shown (these 100 are the newest).",
                                  "See them all with: liaison inbox ... --limit 111"])
                self.assertNotIn(sent[0], out)
                j = b.json("inbox", *args)
                self.assertEqual(len(j["messages"]), 100)
                self.assertEqual((j["truncated"], j["not_shown"], j["not_shown_exact"]), (True, 11, True))
                self.assertEqual(j["messages"][0]["id"], sent[-1])
        self.assertRegex(b.cli("inbox").stdout.splitlines()[0], mid_re)
        # The limit the note names shows them all, and then nothing is left out.
        j = b.json("inbox", "--limit", "111")
        self.assertEqual([m["id"] for m in j["messages"]], list(reversed(sent)))
        self.assertEqual((j["truncated"], j["not_shown"]), (False, 0))
        self.assertNotIn("Note:", b.cli("inbox", "--limit", "111").stdout)
        out = b.cli("inbox", "--limit", "3").stdout
        self.assertIn("Note: 108 more messages match but are not shown (these 3 are the newest).", out)
        self.assertIn("1 more message matches but is not shown", b.cli("inbox", "--limit", "110").stdout)
        # Nothing read: listing is not reading, the count included.
        self.assertEqual(len(b.json("inbox", "--unread", "--limit", "1000")["messages"]), 111)
        # Older ones, a page at a time: --until just before the oldest shown, as the note says.
        seen, until = [], None
        while True:
            args = ("--limit", "50") + (("--until", until) if until else ())
            page = b.json("inbox", *args)["messages"]
            seen += [m["id"] for m in page]
            out = b.cli("inbox", *args).stdout
            more = [ln for ln in out.splitlines() if ln.startswith("Older ones: liaison inbox ... --until ")]
            if not more:
                break
            until = more[0].split("--until ")[1]
            self.assertEqual(until, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((b.query(
                "SELECT created_ms FROM messages WHERE hex(id) = upper(?)", (page[-1]["id"],))[0][0] - 1) // 1000))
                + until[19:])
        self.assertEqual(seen, list(reversed(sent)))
        # A date after --until includes that day; one before the messages finds none.
        today = time.strftime("%Y-%m-%d")
        self.assertEqual(len(b.json("inbox", "--until", today, "--limit", "1000")["messages"]), 111)
        self.assertIn("No messages match.", b.cli("inbox", "--until", "2020-01-01").stdout)
        r = b.cli("inbox", "--since", today, "--until", "2020-01-01", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is after --until 2020-01-01: nothing could match", r.stderr)
        # The outbox too.
        out = a.cli("outbox").stdout
        self.assertEqual(out.splitlines()[-4:-1], ["Note: 11 more messages match but are not shown (these 100 are the"
                                                   " newest).", "See them all with: liaison outbox ... --limit 111",
                                                   "or narrow the list with --since DATE, --until DATE, --patient P or"
                                                   " --type T."])
        self.assertTrue(out.splitlines()[-1].startswith("Older ones: liaison outbox ... --until 20"))
        j = a.json("outbox")
        self.assertEqual((len(j["messages"]), j["truncated"], j["not_shown"]), (100, True, 11))

    def test_card_missing_from_a_node_that_exists(self):
        # "no card at .../card.txt (create the node first with: liaison init)", and init
        # then refuses: a node is already set up there.
        a = self.node("a")
        fp = a.cli("fingerprint").stdout.strip()
        os.unlink(a.card_file)
        # The daemon makes the node's card from its keys: printed, with what to do.
        r = a.cli("card")
        self.assertTrue(r.stdout.startswith("liaison-card-v1:"), r.stdout)
        self.assertIn("card.txt is missing: this card was made by the running daemon", r.stderr)
        self.assertIn("restore card.txt from the node's backup", r.stderr)
        j = a.json("card")
        self.assertEqual((j["fingerprint"], j["source"]), (fp, "daemon"))
        b = self.node("b")
        saved = os.path.join(self.base, "a.card")
        with open(saved, "w") as f:
            f.write(r.stdout)
        self.assertTrue(b.cli("peer", "add", saved).stdout.startswith("Added peer a "))
        # Without the daemon: restore it, or start the daemon; never "liaison init".
        a.stop()
        r = a.cli("card", check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("no card at %s, although a node is set up here" % a.card_file, r.stderr)
        self.assertIn("restore card.txt from the node's backup, or start its daemon (liaisond --home %s)" % a.home,
                      r.stderr)
        self.assertNotIn("liaison init", r.stderr)
        # Where there is no node at all, init is the advice still, with the --home given:
        # without it, init would make a node in the system layout instead.
        none = os.path.join(self.base, "none")
        r = run("--home", none, "card")
        self.assertEqual(r.returncode, 3)
        self.assertIn("(create the node first with: liaison --home %s init --id ID --role ROLE --listen ENDPOINT)"
                      % none, r.stderr)
        r = run("--home", none, "init", "--id", "dr.okafor")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("init needs --role ROLE --listen ENDPOINT (e.g. liaison --home %s init --id dr.okafor" % none,
                      r.stderr)

    def test_unknown_command_hint_stays_on_the_screen(self):
        """A typo is answered with the command meant and where the full help is, not with
        the whole help under it, which scrolled the hint off the screen."""
        for args, hint in ((["inbx"], "unknown command 'inbx' (did you mean 'inbox'?)"),
                           (["peer-add"], "unknown command 'peer-add' (did you mean 'peer add'?)"),
                           (["auditverify"], "unknown command 'auditverify' (did you mean 'audit verify'?)"),
                           (["verify"], "unknown command 'verify' (did you mean 'audit verify'?)"),
                           (["add"], "unknown command 'add' (did you mean 'peer add' or 'review add'?)"),
                           (["help", "peer-add"], "help: unknown command 'peer-add' (did you mean 'help peer add'?)"),
                           (["help", "review_opne"],
                            "help: unknown command 'review_opne' (did you mean 'help review open'?)")):
            r = run(*args)
            self.assertEqual(r.returncode, 1, args)
            self.assertEqual(r.stdout, "", args)
            self.assertEqual(r.stderr, "liaison: %s\n(liaison help lists every command)\n" % hint, args)
        # Nothing near: the names of the commands, in a few lines, not the full help.
        r = run("frobnicate")
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.splitlines()
        self.assertEqual(lines[0], "liaison: unknown command 'frobnicate'")
        self.assertTrue(lines[1].startswith("  the commands: init card fingerprint status peer send"), lines)
        self.assertEqual(lines[-1], "(liaison help lists every command)")
        self.assertLessEqual(len(lines), 4, lines)
        self.assertNotIn("usage:", r.stderr)

    def test_send_without_to_and_list_options_given_twice(self):
        """Recipients given bare are a missing --to, not an unexpected file; a second --to
        would have replaced the first: both are named with the form that works."""
        body = os.path.join(self.base, "body.txt")
        with open(body, "w") as f:
            f.write("hello")
        r = run("send", "dr.okafor", body)
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.splitlines()
        self.assertEqual(lines[0], "liaison: send needs --to ID[,ID...] (the recipients go after --to, e.g. --to"
                                   " dr.okafor,dr.alvarez)")
        self.assertIn("usage: liaison", r.stderr)
        self.assertIn("  send --to ID[,ID...] [--subject S] [--thread ID] FILE|-", r.stderr)
        self.assertNotIn("unexpected argument", r.stderr)
        self.assertEqual(r.stdout, "")
        r = run("note", "dr.okafor", "--patient", "P-1", "-", input="x")
        self.assertTrue(r.stderr.startswith("liaison: note needs --to ID[,ID...]"), r.stderr)
        # With --to anywhere, an extra argument is what is wrong.
        r = run("send", "dr.okafor", body, "--to", "dr.alvarez")
        self.assertIn("send: unexpected argument '%s'" % body, r.stderr)
        r = run("send", "--to", "dr.okafor", "--to", "dr.alvarez", body)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "liaison: send: --to given twice: name every recipient in one --to, separated by"
                                   " commas (--to dr.okafor,dr.alvarez)\n")
        r = run("review", "open", "--with", "dr.okafor", "--with=rx.chen", "--patient", "P-1", "--question", "q")
        self.assertIn("review open: --with given twice: name every participant in one --with, separated by commas"
                      " (--with dr.okafor,rx.chen)", r.stderr)
        r = run("send", "--subject", "a", "--subject", "b", "--to", "dr.okafor", body)
        self.assertIn("send: --subject given twice\n", r.stderr)

    def test_args_file_is_private_and_one_argument_a_line(self):
        """liaison --args FILE: a file group or others can read is refused, not used, as key
        files are; an option and its value on one line, or a line too many, is named by its
        line, never by what it holds (a patient's id); --args may follow the command."""
        a = self.node("dr.alvarez")
        b = self.node("dr.okafor", role="psychiatrist")
        link(a, b)
        path = os.path.join(self.base, "note.args")
        with open(path, "w") as f:
            f.write("--patient\nP-7731\n--phq9\n19\n")
        os.chmod(path, 0o644)
        r = a.cli("--args", path, "note", "--to", "dr.okafor", "-", input="Low mood.", check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stderr, "liaison: --args: '%s' is accessible by group or others (mode 0644), and it is"
                                   " meant for a patient's id and clinical values: run chmod 600 %s, then the command"
                                   " again (nothing was done)\n" % (path, path))
        self.assertEqual(a.json("outbox")["messages"], [])
        os.chmod(path, 0o640)
        r = a.cli("--args", path, "note", "--to", "dr.okafor", "-", input="Low mood.", check=False)
        self.assertIn("(mode 0640)", r.stderr)
        os.chmod(path, 0o600)
        # After the command, --args is taken as before it.
        mid = a.cli("note", "--to", "dr.okafor", "--args", path, "-", input="Low mood.").stdout.strip()
        self.assertRegex(mid, "^[0-9a-f]{32}$")
        self.wait_delivered(a, mid, "dr.okafor")
        self.assertEqual([m["id"] for m in b.json("inbox", "--patient", "P-7731")["messages"]], [mid])
        for args in (["--args", path, "note", "--args", path], ["note", "--args=%s" % path, "--args", path]):
            r = a.cli(*args, check=False)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn("--args given twice: give one file", r.stderr)
        r = a.cli("note", "--to", "dr.okafor", "--args", check=False)
        self.assertIn("--args needs a file", r.stderr)
        # One line, one argument: the value is never repeated.
        cases = [("# note\n\n--patient P-7731\r\n-\n",
                  "note: line 3 of %s holds --patient and more after a space: each argument goes on its own line"
                  " (--patient on one line, its value on the next)"),
                 ("--patient\nP-7731\nP-7731\n",
                  "note: unexpected argument on line 3 of %s (not shown: it may be a patient's id; each value goes on"
                  " the line after its option) (see: liaison help note)"),
                 ("--to\nP-7731\n",
                  "note: --to given twice: name every recipient in one --to, separated by commas (--to ID,ID)"),
                 ("--args\nP-7731\n", "note: line 1 of %s is --args: the file holds the command's own arguments and"
                                       " cannot name another file")]
        for text, want in cases:
            with open(path, "w") as f:
                f.write(text)
            r = a.cli("--args", path, "note", "--to", "dr.okafor", "-", input="x", check=False)
            self.assertEqual(r.returncode, 1, (text, r.stderr))
            self.assertEqual(r.stderr, "liaison: %s\n" % (want % path if "%s" in want else want), text)
            self.assertNotIn("7731", r.stderr)
        # Typed as one argument on the command line, the value is not repeated either.
        r = a.cli("note", "--to", "dr.okafor", "--patient P-7731", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("note: --patient and what follows a space are one argument: give the option and its value as"
                      " two arguments (--patient VALUE) or as one with = (--patient=VALUE)", r.stderr)
        self.assertNotIn("7731", r.stderr)
        self.assertEqual(len(a.json("outbox")["messages"]), 1)

    def test_unreadable_card_or_configuration_is_not_taken_for_none(self):
        # Real read errors: a symbolic link loop cannot be opened (ELOOP), and the
        # daemon's own /proc/self/mem opens as a regular file of its user whose read at
        # offset 0 fails (EIO). A card that cannot be read is not "no card" (which would
        # skip the check that it is this node's), nor "not a valid card"; a configuration
        # whose read fails is not one read to its end (the rest left at its defaults).
        a = self.node("a", start=False)
        check = [LIAISOND, "--home", a.home, "--check-config"]
        conf = os.path.join(a.home, "liaison.conf")
        kept = a.card_file + ".kept"
        os.rename(a.card_file, kept)
        for target, why in ((a.card_file, "Too many levels of symbolic links"), ("/proc/self/mem", "Input/output error")):
            os.symlink(target, a.card_file)
            r = subprocess.run(check, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("cannot read %s: %s" % (a.card_file, why), r.stderr)
            os.unlink(a.card_file)
        os.rename(kept, a.card_file)
        os.rename(conf, conf + ".kept")
        os.symlink("/proc/self/mem", conf)
        r = subprocess.run(check, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("cannot read %s: Input/output error" % conf, r.stderr)
        os.unlink(conf)
        os.rename(conf + ".kept", conf)
        r = subprocess.run(check, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_wording_and_help(self):
        home = os.path.join(self.base, "n")
        init = ["--home", home, "init", "--id", "x", "--role", "nurse"]
        # A name that is not UTF-8 is named as such, not as too long or multi-line.
        r = subprocess.run([LIAISON] + init + ["--listen", "tcp://127.0.0.1:7860", "--name"] + [b"\xff"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"--name: is not valid UTF-8 (byte 0xff)", r.stderr)
        self.assertNotIn(b"single line of at most", r.stderr)
        # A port with a leading zero: the endpoint to give instead.
        for opt, ep, fixed in (("--listen", "tcp://127.0.0.1:07860", "tcp://127.0.0.1:7860"),
                               ("--advertise", "tcp://clinic.example:007860", "tcp://clinic.example:7860")):
            args = ["--listen", "tcp://127.0.0.1:7860", "--advertise", ep] if opt == "--advertise" else [opt, ep]
            r = run(*init, *args)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(r.stderr, "liaison: %s '%s': the port has a leading zero: write it as %s\n"
                             % (opt, ep, fixed))
        self.assertFalse(os.path.exists(os.path.join(home, "liaison.conf")))
        # Every exit status is in --help.
        out = run("--help").stdout
        for code in ("5 liaison wait timed out", "6 the output could\nnot be written", "130 interrupted"):
            self.assertIn(code, out)
        # help help
        r = run("help", "help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("usage: liaison help [COMMAND]\n"), r.stdout)
        self.assertEqual(r.stderr, "")
        self.assertIn("help [COMMAND]", run("help").stdout)
        # An option before the command is an option.
        r = run("--home", home, "--bogus")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("liaison: unknown option '--bogus' (before the command: --home DIR,"),
                        r.stderr)
        self.assertNotIn("unknown command", r.stderr)
        # Each command's help lists the values its options take.
        for cmd, want in (("init", "ROLE: therapist, psychiatrist, pcp, pharmacist, nurse, case-manager, auditor"),
                          ("note", "--modality M: cbt, dbt, psychodynamic, trauma-focused, family, group, other"),
                          ("note", "--risk LEVEL: none, low, moderate, high"),
                          ("med-change", "--action ACTION: start, stop, increase, decrease, switch, hold"),
                          ("inbox", "--type T: text, note, med-change, ack, review"),
                          ("audit", "message-read")):
            for how in (("help", cmd), (cmd, "--help")):
                self.assertIn(want, run(*how).stdout, how)
        a = self.node("dr.okafor", "psychiatrist")
        b = self.node("dr.alvarez")
        link(a, b)
        # --urgent shortens an acknowledgement deadline: with --no-ack there is none.
        r = a.cli("med-change", "--to", "dr.alvarez", "--patient", "P-1042", "--drug", "lithium", "--action", "stop",
                  "--from", "300 mg bid", "--reason", "level 1.4", "--urgent", "--no-ack", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--urgent shortens the deadline for acknowledging the change, and --no-ack asks for no"
                      " acknowledgement", r.stderr)
        self.assertIn("nothing was sent", r.stderr)
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], 0)
        # The daemon's control API refuses it too, for any client (the same change,
        # serialized here by hand: patient, medication, action stop, previous dose, date,
        # reason, urgency urgent, ack_optional), and sends it without ack_optional.
        def field(num, value):
            if isinstance(value, int):
                return bytes([num << 3, value])
            raw = value if isinstance(value, bytes) else value.encode()
            return bytes([num << 3 | 2, len(raw)]) + raw
        change = (field(1, field(1, "P-1042")) + field(2, "lithium") + field(3, 2) + field(4, "300 mg bid")
                  + field(9, "2026-11-24") + field(10, "level 1.4") + field(12, 1))
        r = subprocess.run([CLIENT_SMOKE, a.home, "raw", "dr.alvarez", "3", (change + field(13, 1)).hex()],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("rc=1: an urgent medication change must ask for acknowledgement", r.stderr)
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], 0)
        r = subprocess.run([CLIENT_SMOKE, a.home, "raw", "dr.alvarez", "3", change.hex()], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(a.query("SELECT count(*) FROM messages WHERE urgent = 1 AND ack_required = 1")[0][0], 1)
        # wait --timeout 0 gives the state now: no error about a wait that ran out.
        b.stop()
        mid = a.send("dr.alvarez", "while b is down")
        r = a.cli("wait", mid, "--timeout", "0", check=False)
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertEqual(r.stdout.splitlines()[0], "Not settled yet: delivered to 0 of 1 recipient.")
        self.assertEqual(r.stderr, "")
        r = a.cli("wait", mid, "--timeout", "0", "--json", check=False)
        self.assertEqual((r.returncode, json.loads(r.stdout)["settled"], r.stderr), (5, False, ""))
        r = a.cli("wait", mid, "--timeout", "1", check=False)  # a wait that runs out still says so
        self.assertEqual(r.returncode, 5)
        self.assertIn("has not settled within 1 s", r.stderr)
        b.start()
        self.assertEqual(a.cli("wait", mid, "--timeout", "30").returncode, 0)
        self.assertEqual(a.cli("wait", mid, "--timeout", "0").stdout.splitlines()[0], "Delivered to its recipient.")

    def test_json_to_is_the_recipients_as_the_text_shows_them(self):
        # "to" held the sender too (["dr.alvarez", "rx.chen", "dr.okafor"]), while the To
        # line, and wait's "recipients" count, leave the sender out.
        a = self.node("dr.okafor", "psychiatrist")
        b = self.node("dr.alvarez")
        c = self.node("rx.chen", "pharmacist")
        link(a, b, c)
        mid = a.send("dr.alvarez,rx.chen", "to both")
        self.wait_delivered(a, mid, "dr.alvarez")
        self.wait_delivered(a, mid, "rx.chen")
        want = ["dr.alvarez", "rx.chen"]
        self.assertEqual(sorted(a.json("outbox")["messages"][0]["to"]), want)
        self.assertEqual(sorted(a.json("show", mid)["to"]), want)
        self.assertEqual(sorted(b.json("inbox")["messages"][0]["to"]), want)
        shown = b.json("show", mid)
        self.assertEqual((sorted(shown["to"]), shown["from"]), (want, "dr.okafor"))
        self.assertEqual(sorted(b.cli("show", mid).stdout.split("\nTo")[1].split("\n")[0].split()), want)
        self.assertEqual(a.json("wait", mid)["recipients"], len(a.json("show", mid)["to"]))

    def test_documented_outputs(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        out = a.cli("peer", "list").stdout
        self.assertIn(b.endpoint, out)
        fp = [p["fingerprint"] for p in a.json("peer", "list")["peers"] if p["id"] == "b"][0]
        self.assertGreater(len(fp), 20)
        self.assertIn(fp, out)
        # audit export without --format: JSON lines, as the usage now says.
        lines = a.cli("audit", "export").stdout.strip().splitlines()
        self.assertTrue(lines)
        for ln in lines:
            json.loads(ln)
        self.assertIn("[--format jsonl|fhir]", run("help", "audit").stdout)
        self.assertIn("default: jsonl", run("help", "audit").stdout)
        # Counts read as English: one delivery, one entry.
        b.stop()
        a.send("b", "while b is down")
        self.assertIn("Queue: 1 delivery waiting for a receipt.", a.cli("status").stdout)
        fresh = self.node("c", start=False)
        out = fresh.cli("audit", "verify", "--db", fresh.db_path).stdout
        self.assertIn("1 entry, hash chain intact; 0 signed checkpoints checked", out)
        self.assertIn("note: 1 entry after the last checkpoint (0) is not yet anchored", out)

    def test_json_everywhere(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        mid = a.send("b", "json please")
        self.wait_delivered(a, mid, "b")
        for args in (["status"], ["peer", "list"], ["inbox"], ["outbox"], ["show", mid], ["thread", mid],
                     ["review", "list"], ["audit", "log"], ["fingerprint"], ["card"], ["patient", "P1"]):
            node = b if args[0] in ("show",) else a
            out = node.cli(*args, "--json").stdout
            json.loads(out)
        shown = b.json("show", mid)
        self.assertEqual(shown["payload"]["text"], "json please")
        self.assertEqual(shown["from"], "a")
        out = a.json("outbox")["messages"][0]
        self.assertEqual(out["deliveries"][0]["state"], "delivered")

    def test_bidi_controls_are_shown_by_name(self):
        """A sender's invisible bidirectional controls (Trojan Source) would make a terminal
        show a dose or an id reordered: every human-readable output names them, --json
        and the audit export keep the exact text."""
        rlo, pdf, lri, pdi = "\u202e", "\u202c", "\u2066", "\u2069"
        a = self.node("a", "psychiatrist")
        b = self.node("b", "pharmacist")
        link(a, b)
        dose = "1" + rlo + "05" + pdf + " mg"
        text = "Give " + lri + "10 mg" + pdi + " daily\u200f\u061c"
        mid = a.send("b", text, subject="dose " + rlo + "x")
        change = a.cli("med-change", "--to", "b", "--patient", "P-1", "--label", "J" + rlo + "R", "--drug",
                       "lithium", "--action", "increase", "--from", "300 mg", "--dose", dose, "--reason",
                       "level " + rlo + "low").stdout.strip()
        rid = a.cli("review", "open", "--with", "b", "--patient", "P-1", "--question",
                    "Raise to " + dose + "?").stdout.strip()
        self.wait_delivered(a, change, "b")
        wait_for(lambda: b.has_message(mid) and b.query("SELECT 1 FROM reviews"), 20, "the messages at b")
        outs = {
            "show": b.cli("show", mid).stdout,
            "show change": b.cli("show", change).stdout,
            "thread": b.cli("thread", mid).stdout,
            "patient": b.cli("patient", "P-1").stdout,
            "review show": b.cli("review", "show", rid).stdout,
            "outbox": a.cli("outbox").stdout,
        }
        for name, out in outs.items():
            with self.subTest(output=name):
                for ch in (rlo, pdf, lri, pdi, "\u200f", "\u061c"):
                    self.assertNotIn(ch, out)
        self.assertIn("Give <U+2066>10 mg<U+2069> daily<U+200F><U+061C>", outs["show"])
        self.assertIn("dose <U+202E>x", outs["show"])
        self.assertIn("To:            1<U+202E>05<U+202C> mg", outs["show change"])
        self.assertIn("J<U+202E>R", outs["show change"])
        self.assertIn("J<U+202E>R", outs["patient"])
        self.assertIn("Raise to 1<U+202E>05<U+202C> mg?", outs["review show"])
        # An error message quoting the user's own text names them too.
        r = a.cli("note", "--to", "b", "--patient", "P-1", "--score", "PCL" + rlo + "=90/0-80", "-", input="x",
                  check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("PCL<U+202E>", r.stderr)
        self.assertNotIn(rlo, r.stderr)
        # --json keeps the exact text (JSON-escaped).
        self.assertEqual(b.json("show", mid)["payload"]["text"], text)
        self.assertEqual(b.json("show", change)["payload"]["new_dose"], dose)
        self.assertIn("\\u202E", b.cli("show", change, "--json").stdout)

    def test_controls_from_a_peer_never_reach_the_terminal(self):
        """Escape sequences and other controls in a peer's text are refused by the receiving
        daemon (PROTOCOL.md section 8), so no output can show them."""
        a = self.node("a")
        x = self.node("x")
        link(a, x)
        path = os.path.join(self.base, "esc.bin")
        for text in ("clear \x1b[2J\x1b]0;owned\x07", "csi \u009b31m"):
            with open(path, "wb") as f:
                enc = text.encode()
                f.write(b"\x12" + bytes([len(enc)]) + enc)  # TextMessage.text (field 2)
            lines, _ = x.rawpeer(a, "--content-type", "1", "--payload-file", path, "envelope")
            self.assertEqual(lines[0].split(" ", 3)[0::3], ["reject", "text: invalid"], lines)
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], 0)
        self.assertEqual(a.json("inbox")["messages"], [])

    def test_client_library_pipelined(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        r = subprocess.run([CLIENT_SMOKE, a.home, "b", "200"], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        ids = r.stdout.split()
        self.assertEqual(len(ids), 201)
        self.assertEqual(len(set(ids)), 201)
        for mid in (ids[0], ids[-1]):
            self.wait_delivered(a, mid, "b", timeout=60)
        wait_for(lambda: b.query("SELECT count(*) FROM messages")[0][0] == 201, 60, "all 201 messages at b")
        self.assertIn("pipelined 199", b.cli("show", ids[-1]).stdout)
        # A client that submits far ahead of reading its answers loses none of them.
        flood = subprocess.run([CLIENT_SMOKE, a.home, "flood", "b", "3000"], capture_output=True, text=True,
                               timeout=300)
        self.assertEqual(flood.returncode, 0, flood.stderr)
        self.assertEqual(flood.stdout.strip(), "3000")
        # Thousands of audit entries: checkpoints signed from the cached subtree hashes
        # must match an independent recomputation, and the peer's consistency checks.
        wait_for(lambda: b.query("SELECT count(*) FROM messages")[0][0] == 3201, 120, "all messages at b")
        wait_for(lambda: (b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'") or [[0]])[0][0] > 3000, 60,
                 "b to witness a's log past 3000 entries")
        for n in (a, b):
            r = n.cli("audit", "verify", check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(b.audit("witness-alarm"), [])
        bad = subprocess.run([CLIENT_SMOKE, a.home, "bad"], capture_output=True, text=True, timeout=30)
        lines = bad.stdout.splitlines()
        self.assertTrue(lines[0].startswith("unknown-peer 2 "), lines)
        self.assertIn("liaison peer add", lines[0])
        self.assertTrue(lines[1].startswith("bad-id 1 "), lines)
        self.assertTrue(lines[2].startswith("empty 1 "), lines)


if __name__ == "__main__":
    import unittest
    unittest.main()
