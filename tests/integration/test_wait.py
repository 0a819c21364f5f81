# SPDX-License-Identifier: Apache-2.0
"""Waiting for a sent message to settle (WaitRequest; `liaison wait`, liaison_wait):
real daemons, the CLI, and the client library through ctypes."""
import contextlib
import ctypes
import json
import os
import signal
import sqlite3
import subprocess
import time
import unittest

import harness
from harness import LIAISON, NodeTest, catches_sigint, link, wait_for
from test_clinical import med_change, note
from test_faults import Pipelined


@contextlib.contextmanager
def waiting(node, *args):
    """`liaison wait ARGS` in the background while the with block runs; killed at its end
    if it has not finished."""
    w = subprocess.Popen([LIAISON, "--home", node.home, "wait"] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        yield w
    finally:
        if w.poll() is None:
            w.kill()


class Progress(ctypes.Structure):
    _fields_ = [("recipients", ctypes.c_uint), ("delivered", ctypes.c_uint), ("rejected", ctypes.c_uint),
                ("acknowledged", ctypes.c_uint), ("settled", ctypes.c_int)]


def client_lib():
    lib = ctypes.CDLL(os.path.join(harness.BUILD, "client", "libliaison-client.so"))
    lib.liaison_client_open.restype = ctypes.c_void_p
    lib.liaison_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    lib.liaison_client_close.argtypes = [ctypes.c_void_p]
    lib.liaison_client_set_timeout.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.liaison_client_error.argtypes = [ctypes.c_void_p]
    lib.liaison_client_error.restype = ctypes.c_char_p
    lib.liaison_wait.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint,
                                 ctypes.POINTER(Progress)]
    lib.liaison_submit_wait.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint,
                                        ctypes.POINTER(ctypes.c_uint64)]
    lib.liaison_collect_wait.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64), ctypes.c_char_p,
                                         ctypes.POINTER(Progress)]
    return lib


class Wait(NodeTest):
    def pair(self):
        t = self.node("dr.alvarez", "therapist")
        p = self.node("dr.okafor", "psychiatrist")
        link(t, p)
        return t, p

    def test_returns_once_delivered(self):
        t, p = self.pair()
        mid = t.send("dr.okafor", "weekly update")
        r = t.cli("wait", mid, "--timeout", "30")
        entries = len(t.audit())
        self.assertIn("Delivered to its recipient.", r.stdout)
        self.assertIn("dr.okafor", r.stdout)
        # Answered only once the receipt was committed: it is in the database.
        self.assertEqual(t.delivery_state(mid, "dr.okafor"), "delivered")
        self.assertTrue(p.has_message(mid))
        j = t.json("wait", mid)
        self.assertEqual((j["id"], j["settled"], j["recipients"], j["delivered"], j["rejected"]),
                         (mid, True, 1, 1, 0))
        self.assertEqual(j["message"]["id"], mid)
        # Waiting reads no content and changes nothing: it adds nothing to the audit log.
        self.assertEqual(len(t.audit()), entries)

    def test_blocks_until_the_recipient_is_back(self):
        t, p = self.pair()
        p.stop()
        mid = t.send("dr.okafor", "while you were away")
        with waiting(t, mid, "--timeout", "120") as w:
            time.sleep(1.5)
            self.assertIsNone(w.poll(), "wait returned before the message could be delivered")
            p.start()
            out, err = w.communicate(timeout=60)
        self.assertEqual(w.returncode, 0, err)
        self.assertIn("Delivered to its recipient.", out)
        self.assertEqual(t.delivery_state(mid, "dr.okafor"), "delivered")

    def test_time_runs_out(self):
        t, p = self.pair()
        p.stop()
        mid = t.send("dr.okafor", "nobody home")
        r = t.cli("wait", mid, "--timeout", "1", check=False)
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertIn("Not settled yet: delivered to 0 of 1 recipient.", r.stdout)
        self.assertIn("has not settled within 1 s", r.stderr)
        self.assertIn("liaison show " + mid, r.stderr)
        r = t.cli("wait", mid, "--timeout", "0", "--json", check=False)
        self.assertEqual(r.returncode, 5)
        j = json.loads(r.stdout)
        self.assertEqual((j["settled"], j["delivered"]), (False, 0))
        self.assertEqual(j["message"]["deliveries"][0]["state"], "queued")
        # Ctrl-C ends the wait, not the delivery, and says it is not delivered yet.
        with waiting(t, mid, "--timeout", "60") as w:
            wait_for(lambda: catches_sigint(w.pid), 10, "liaison wait to start waiting")
            time.sleep(0.3)
            w.send_signal(signal.SIGINT)
            out, err = w.communicate(timeout=10)
        self.assertEqual(w.returncode, -signal.SIGINT, err)
        self.assertEqual(err, "liaison: stopped waiting; the delivery of message %s goes on all the same (where it"
                              " stands: liaison show %s)\n" % (mid, mid))
        self.assertEqual(t.delivery_state(mid, "dr.okafor"), "queued")

    def test_message_gone_beneath_the_wait(self):
        """The message a wait follows disappears from the database before the wait ends
        (removed behind the daemon's back; liaisond itself deletes no message): the wait
        is told NOT_FOUND, as a new wait would be, not an internal error."""
        t, p = self.pair()
        p.stop()
        mid = t.send("dr.okafor", "about to vanish")
        with waiting(t, mid, "--timeout", "3") as w:
            time.sleep(1.0)
            con = sqlite3.connect(t.db_path, timeout=10)
            con.execute("DELETE FROM deliveries WHERE message_id = ?", (bytes.fromhex(mid),))
            con.execute("DELETE FROM messages WHERE id = ?", (bytes.fromhex(mid),))
            con.commit()
            con.close()
            out, err = w.communicate(timeout=30)
        self.assertIn("no message %s on this node" % mid, err)
        self.assertNotIn("internal", err.lower())
        r = t.cli("wait", mid, "--timeout", "0", check=False)
        self.assertEqual(w.returncode, r.returncode, r.stderr)

    def test_answer_in_a_batch_that_rolls_back_is_worked_out_again(self):
        """A wait answered inside a batch whose commit then fails (a send in the same batch
        makes it fail: a deferred foreign key that a trigger breaks, as a failing disk
        would fail a commit) is not withdrawn with an internal error: its answer is worked
        out again from the state after the rollback. The send is refused INTERNAL, and
        nothing of it is stored."""
        if not Pipelined.loadable():
            self.skipTest("drives libliaison-client through ctypes, which a sanitizer build cannot be loaded by;"
                          " the ordinary build runs it")
        t, p = self.pair()
        settled = t.send("dr.okafor", "settled before")
        self.wait_delivered(t, settled, "dr.okafor")
        p.stop()
        open_ = t.send("dr.okafor", "queued, not settled")
        t.edit_stopped("CREATE TABLE fail_commits (x BLOB REFERENCES messages(id) DEFERRABLE INITIALLY DEFERRED)",
                       "CREATE TRIGGER fail_commits AFTER INSERT ON messages"
                       " BEGIN INSERT INTO fail_commits VALUES (randomblob(16)); END")
        before = t.query("SELECT count(*) FROM messages")[0][0]
        lib = client_lib()
        lib.liaison_submit_text.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                            ctypes.POINTER(ctypes.c_uint64)]
        err = ctypes.create_string_buffer(512)
        c = lib.liaison_client_open(t.home.encode(), 0, err, len(err))
        self.assertTrue(c, err.value)
        try:
            lib.liaison_client_set_timeout(c, 20000)
            prog = Progress()
            self.assertEqual(lib.liaison_wait(c, settled.encode(), 0, 0, ctypes.byref(prog)), 0)  # connected
            # Frozen while the requests arrive, so that the loop takes them in one batch: the
            # send opens it, the waits are answered inside it.
            t.proc.send_signal(signal.SIGSTOP)
            try:
                toks = {}
                for what, call in (("send", lambda tok: lib.liaison_submit_text(c, b"dr.okafor", b"", b"doomed",
                                                                                 tok)),
                                   ("now", lambda tok: lib.liaison_submit_wait(c, settled.encode(), 0, 0, tok)),
                                   ("later", lambda tok: lib.liaison_submit_wait(c, settled.encode(), 30000, 0, tok)),
                                   ("open", lambda tok: lib.liaison_submit_wait(c, open_.encode(), 0, 0, tok))):
                    tok = ctypes.c_uint64()
                    self.assertEqual(call(ctypes.byref(tok)), 0, lib.liaison_client_error(c))
                    toks[tok.value] = what
                time.sleep(0.3)
            finally:
                t.proc.send_signal(signal.SIGCONT)
            got = {}
            for _ in toks:
                tok, mid = ctypes.c_uint64(), ctypes.create_string_buffer(33)
                rc = lib.liaison_collect_wait(c, ctypes.byref(tok), mid, ctypes.byref(prog))
                got[toks[tok.value]] = (rc, mid.value.decode(), prog.recipients, prog.delivered, prog.settled,
                                        lib.liaison_client_error(c).decode() if rc else "")
        finally:
            lib.liaison_client_close(c)
        self.assertEqual(got["send"][0], 4, got)  # LIAISON_INTERNAL: the commit failed
        self.assertEqual(got["now"][:5], (0, settled, 1, 1, 1), got)
        self.assertEqual(got["later"][:5], (0, settled, 1, 1, 1), got)
        self.assertEqual(got["open"][:5], (0, open_, 1, 0, 0), got)
        with open(t.log) as f:
            self.assertIn("commit failed", f.read())
        self.assertEqual(t.query("SELECT count(*) FROM messages")[0][0], before)

    def test_acknowledgement(self):
        t, p = self.pair()
        mid = med_change(t, "dr.okafor", "P-1042")
        with waiting(t, mid, "--ack", "--timeout", "120") as w:
            self.wait_delivered(t, mid, "dr.okafor")
            time.sleep(1.0)
            self.assertIsNone(w.poll(), "wait --ack returned before the acknowledgement")
            # Delivered, not acknowledged: the wait that runs out says which is missing.
            r = t.cli("wait", mid, "--ack", "--timeout", "1", check=False)
            self.assertEqual(r.returncode, 5, r.stderr)
            self.assertIn("message %s is delivered but not acknowledged by every recipient within 1 s" % mid,
                          r.stderr)
            p.cli("show", mid)
            p.cli("ack", mid, "--comment", "will watch for activation")
            out, err = w.communicate(timeout=60)
        self.assertEqual(w.returncode, 0, err)
        self.assertIn("Delivered to its recipient, acknowledged by 1.", out)
        self.assertIn("acknowledged by dr.okafor", out)
        # A note asks for no acknowledgement.
        nid = note(t, "dr.okafor", "P-1042")
        r = t.cli("wait", nid, "--ack", check=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("does not ask for acknowledgement", r.stderr)

    def test_rejected_when_the_recipient_keys_are_replaced(self):
        t, p = self.pair()
        p.stop()
        mid = t.send("dr.okafor", "sealed to the old keys")
        with waiting(t, mid, "--timeout", "120") as w:
            other = harness.Node(os.path.join(self.base, "other"), "dr.okafor")
            os.makedirs(os.path.join(self.base, "other"))
            other.init()
            t.cli("peer", "add", "--replace", other.card_file)
            out, err = w.communicate(timeout=60)
        self.assertEqual(w.returncode, 3, err)
        self.assertIn("Settled: delivered to 0 of 1 recipient, rejected by 1", out)
        self.assertIn("previous keys", out)

    def test_bad_requests(self):
        t, p = self.pair()
        mid = t.send("dr.okafor", "hello")
        cases = [
            (("wait",), 1, "needs the id"),
            (("wait", "xyz"), 1, "is not a message id"),
            (("wait", mid, "--timeout", "25h"), 1, "at most 24 hours"),
            (("wait", mid, "--timeout", "soon"), 1, "is not a duration"),
            (("wait", "00" * 16), 3, "no message"),
        ]
        for args, code, text in cases:
            r = t.cli(*args, check=False)
            self.assertEqual(r.returncode, code, (args, r.stderr))
            self.assertIn(text, r.stderr)
        # The recipient did not send it.
        self.wait_delivered(t, mid, "dr.okafor")
        r = p.cli("wait", mid, check=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("came to this node from dr.alvarez", r.stderr)

    def test_daemon_stopping_ends_the_wait(self):
        t, p = self.pair()
        p.stop()
        mid = t.send("dr.okafor", "pending")
        with waiting(t, mid, "--timeout", "120") as w:
            time.sleep(1.0)
            t.stop()
            out, err = w.communicate(timeout=30)
        self.assertEqual(w.returncode, 2, err)
        self.assertIn("liaisond stopped", err)

    @unittest.skipUnless(Pipelined.loadable(), "an ASan-instrumented library cannot be loaded into Python")
    def test_library_pipelined(self):
        t, p = self.pair()
        p.stop()
        mids = [t.send("dr.okafor", "batch %d" % i) for i in range(20)]
        lib = client_lib()
        err = ctypes.create_string_buffer(512)
        c = lib.liaison_client_open(t.home.encode(), 0, err, len(err))
        self.assertTrue(c, err.value)
        try:
            lib.liaison_client_set_timeout(c, 90000)
            prog = Progress()
            # Timeout 0: the state now, at once.
            self.assertEqual(lib.liaison_wait(c, mids[0].encode(), 0, 0, ctypes.byref(prog)), 0)
            self.assertEqual((prog.recipients, prog.delivered, prog.settled), (1, 0, 0))
            self.assertEqual(lib.liaison_wait(c, b"nonsense", 0, 0, ctypes.byref(prog)), 1)  # BAD_REQUEST
            self.assertEqual(lib.liaison_wait(c, mids[0].encode(), 0, 4, ctypes.byref(prog)), 1)  # unknown flag
            tokens = {}
            for m in mids:
                tok = ctypes.c_uint64()
                self.assertEqual(lib.liaison_submit_wait(c, m.encode(), 60000, 0, ctypes.byref(tok)), 0,
                                 lib.liaison_client_error(c))
                tokens[tok.value] = m
            p.start()
            seen = {}
            for _ in mids:
                tok, mid = ctypes.c_uint64(), ctypes.create_string_buffer(33)
                rc = lib.liaison_collect_wait(c, ctypes.byref(tok), mid, ctypes.byref(prog))
                self.assertEqual(rc, 0, lib.liaison_client_error(c))
                self.assertEqual(tokens[tok.value], mid.value.decode())
                seen[mid.value.decode()] = (prog.recipients, prog.delivered, prog.rejected, prog.settled)
            self.assertEqual(seen, {m: (1, 1, 0, 1) for m in mids})
            for m in mids:
                self.assertEqual(t.delivery_state(m, "dr.okafor"), "delivered")
        finally:
            lib.liaison_client_close(c)


if __name__ == "__main__":
    unittest.main()
