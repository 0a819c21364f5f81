# SPDX-License-Identifier: Apache-2.0
"""Bad-input matrix (issue 6): hostile bytes from a peer that holds a valid transport
key, and malformed requests on the local control socket, against running daemons.

Every case checks the same four things:
  1. it is refused with a clear reason (a Reject with the right code, or a control
     Response with an error);
  2. exactly one audit row records it;
  3. the daemon stays up and keeps delivering other traffic (a normal message sent
     afterwards, or meanwhile, is delivered);
  4. no stored row is lost or changed (messages, deliveries and peers are compared
     before and after).
A daemon that gets one of these wrong must fail here, not be worked around."""
import grp
import hashlib
import os
import pwd
import random
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import NodeTest, link, wait_for

# ---- a tiny protobuf encoder, enough to write liaison.control.Request bytes ----


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, val):
    """An int becomes a varint field; str/bytes a length-delimited one."""
    if isinstance(val, int):
        return varint(num << 3) + varint(val)
    if isinstance(val, str):
        val = val.encode()
    return varint(num << 3 | 2) + varint(len(val)) + val


def request(*parts, rid=7):
    return field(1, rid) + b"".join(parts)


def text_message(text, subject=None):
    return (field(1, subject) if subject is not None else b"") + field(2, text)


def send_request(to=("a",), ct=1, payload=None, thread=None, extra=b""):
    body = b"".join(field(1, t) for t in to)
    if ct is not None:
        body += field(2, ct)
    if payload is not None:
        body += field(3, payload)
    if thread is not None:
        body += field(4, thread)
    return request(field(11, body + extra))


# ---- snapshots and checks shared with test_faults ----

SNAP_TABLES = {
    "messages": "SELECT * FROM messages ORDER BY id",
    "deliveries": "SELECT * FROM deliveries ORDER BY message_id, recipient",
    "peers": "SELECT * FROM peers ORDER BY rowid",
}


def snapshot(node):
    return {t: node.query(sql) for t, sql in SNAP_TABLES.items()}


def audit_max(node):
    return node.query("SELECT coalesce(max(seq), 0) FROM audit")[0][0]


def audit_since(node, seq):
    return node.query("SELECT seq, actor, action, outcome, hex(message_id), peer, details FROM audit"
                      " WHERE seq > ? ORDER BY seq", (seq,))


def control_raw(node, data, name="req", frames=1, timeout_ms=4000, run_as=None, rawpeer=None, socket="control.sock"):
    """Sends bytes as one ZeroMQ frame (or `frames` copies as one multi-frame message)
    to the node's control socket (or its audit socket); returns rawpeer's answer line."""
    path = os.path.join(node.home, "req-%s-%d.bin" % (name, time.monotonic_ns()))
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)
    sock = os.path.join(node.home, "run", socket)
    cmd = [rawpeer or harness.RAWPEER, "--timeout-ms", str(timeout_ms), "control", "ipc://" + sock, path, str(frames)]
    kw = {}
    if run_as:
        kw = dict(user=run_as[0], group=run_as[1], extra_groups=run_as[2])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_ms / 1000 + 20, **kw)
    os.unlink(path)
    if p.returncode != 0:
        raise AssertionError("rawpeer control failed: %s" % p.stderr)
    return p.stdout.strip()


class ClassNodes(unittest.TestCase):
    """Daemons shared by every test of a class (each test still snapshots before and
    after its own input), which keeps the matrix fast; stopped and checked for sanitizer
    reports once at the end, like NodeTest does per test."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="liaison-it-", dir=os.environ.get("TMPDIR", "/tmp"))
        cls.nodes = []

    @classmethod
    def node(cls, ident, role="therapist"):
        n = harness.Node(cls.base, ident, role).init()
        cls.nodes.append(n)
        n.start()
        return n

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            try:
                n.stop()
            except AssertionError:
                n.kill()
        reports = []
        for n in cls.nodes:
            if os.path.exists(n.log):
                with open(n.log, errors="replace") as f:
                    text = f.read()
                if "Sanitizer" in text or "runtime error:" in text:
                    reports.append("liaisond %s reported a sanitizer error:\n%s" % (n.id, text[-4000:]))
        if os.environ.get("LIAISON_KEEP"):
            print("kept", cls.base)
        else:
            shutil.rmtree(cls.base, ignore_errors=True)
        if reports:
            raise AssertionError("\n".join(reports))

    def wait_delivered(self, sender, mid, recipient, timeout=20):
        wait_for(lambda: sender.delivery_state(mid, recipient) == "delivered", timeout,
                 "message %s to be delivered to %s" % (mid, recipient))


class Hardened(ClassNodes):
    """Three linked nodes: `a` (the hostile peer, with a valid transport key), `b` (the
    target) and `c` (an honest third node), with some delivered history on b."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.a = cls.node("a")
            cls.b = cls.node("b")
            cls.c = cls.node("c")
            link(cls.a, cls.b, cls.c)
            history = [(cls.a, "b"), (cls.c, "b"), (cls.b, "a"), (cls.b, "c")]
            for sender, to in history:
                mid = sender.send(to, "history from %s to %s" % (sender.id, to))
                wait_for(lambda: sender.delivery_state(mid, to) == "delivered", 20, "history")
        except BaseException:
            cls.tearDownClass()
            raise

    def assert_still_delivering(self, before):
        """The daemon is up, a normal message from the third node and one from the hostile
        peer's daemon are delivered, and every row of `before` is still there, unchanged."""
        b = self.b
        self.assertIsNone(b.proc.poll(), "liaisond b exited")
        self.assertEqual(b.cli("status", check=False).returncode, 0, "b does not answer status")
        m1 = self.c.send("b", "normal traffic after a bad input")
        m2 = self.a.send("b", "normal traffic from the same peer")
        self.wait_delivered(self.c, m1, "b")
        self.wait_delivered(self.a, m2, "b")
        after = snapshot(b)
        for t, rows in before.items():
            missing = [r for r in rows if r not in after[t]]
            self.assertEqual(missing, [], "%s rows lost or changed on b" % t)
        new = [r for r in after["messages"] if r not in before["messages"]]
        self.assertEqual(sorted(bytes(r[0]).hex() for r in new), sorted([m1, m2]))
        self.assertEqual(after["deliveries"], before["deliveries"])
        self.assertEqual(after["peers"], before["peers"])


class PeerBadInput(Hardened):
    """From a peer with a valid transport key (PROTOCOL.md section 6)."""

    CODE_NAMES = {1: "malformed", 2: "version", 3: "signature", 4: "sender", 5: "not-recipient",
                  6: "content", 7: "clock", 8: "conflict"}

    def refused(self, *args, code, reason, cards=(), msgid_known=None):
        """Runs rawpeer from a to b with args and checks the four properties."""
        b = self.b
        before = snapshot(b)
        seq = audit_max(b)
        lines, err = self.a.rawpeer(b, "--timeout-ms", "4000", *args, cards=cards)
        self.assertIsNone(b.proc.poll(), "liaisond b exited after rawpeer %s" % (args,))
        # Nothing stored or changed by the refusal itself.
        self.assertEqual(snapshot(b), before, "the refusal changed stored rows")
        # Refused with a clear reason, the right code.
        self.assertEqual(len(lines), 1, lines)
        parts = lines[0].split(" ", 3)
        self.assertEqual(parts[0], "reject", "expected a Reject, got %r" % lines[0])
        self.assertEqual(int(parts[1]), code, lines[0])
        self.assertIn(reason, parts[3], lines[0])
        if msgid_known:
            sent = err.split("message ")[1].split()[0]
            self.assertEqual(parts[2], sent)
        # Exactly one audit row, naming the peer and the reason.
        rows = audit_since(b, seq)
        self.assertEqual(len(rows), 1, "expected exactly one audit row, got %r" % (rows,))
        _, actor, action, outcome, mid, peer, details = rows[0]
        self.assertEqual((actor, action, outcome, peer), ("peer:a", "message-rejected", "refused", "a"))
        self.assertTrue(details.startswith(self.CODE_NAMES[code] + ": "), details)
        self.assertIn(reason, details)
        if msgid_known:
            self.assertEqual(mid.lower(), parts[2])
        self.assert_still_delivering(before)
        return rows[0]

    def test_empty_frame(self):
        self.refused("empty", code=1, reason="only envelopes and checkpoints are accepted")

    def test_random_bytes(self):
        # Deterministic "random" frames: a bad input found here can be replayed.
        for seed, size in ((1, 1), (2, 17), (3, 300), (4, 4096)):
            data = random.Random(seed).randbytes(size)
            if data[0] == 0x22:  # would be a (garbage) witness request: another path
                continue
            with self.subTest(seed=seed, size=size):
                row = self.refused("raw-hex", data.hex(), code=1, reason="")
                self.assertIn("malformed", row[6])

    def test_truncated_frame(self):
        # A well-formed envelope frame cut in the middle: not a Frame any more.
        self.refused("--truncate-frame", "60", "envelope", code=1, reason="not a liaison frame")

    def test_truncated_envelope(self):
        # A well-formed Frame whose envelope field holds a cut-off Envelope.
        self.refused("--truncate-envelope", "50", "envelope", code=1, reason="envelope: cannot be decoded")

    def test_ten_thousand_recipients(self):
        # Signed by a, so only the limits can stop it.
        self.refused("--pad-recipients", "10000", "envelope", code=1, reason="header is")

    def test_too_many_recipients_under_header_limit(self):
        self.refused("--pad-recipients", "40", "envelope", code=1, reason="recipients, limit is 32", msgid_known=True)

    def test_frame_over_size_limit(self):
        """PROTOCOL.md 5.2: a frame over LIAISON_MAX_FRAME. The issue asks for a clear
        refusal and one audit row like every other bad input."""
        b = self.b
        before = snapshot(b)
        seq = audit_max(b)
        lines, _ = self.a.rawpeer(b, "--timeout-ms", "3000", "oversize")
        time.sleep(0.5)
        rows = audit_since(b, seq)
        # The daemon survives and nothing is lost either way ...
        self.assert_still_delivering(before)
        # ... but the peer must be told and the refusal recorded.
        self.assertTrue(lines and lines[0].startswith("reject 1 "),
                        "an oversize frame got no Reject (rawpeer: %r); libzmq's ZMQ_MAXMSGSIZE on the ROUTER "
                        "(daemon/transport.c set_common) drops the connection before liaisond sees the frame"
                        % lines)
        self.assertEqual(len(rows), 1, "expected exactly one audit row for an oversize frame, got %r" % (rows,))

    def test_unknown_version(self):
        # The header decodes: the refusal names the message, so that its sender can mark it
        # rejected instead of sending it again for ever (PROTOCOL.md 7.2).
        self.refused("--header-version", "2", "envelope", code=2, reason="version 2", msgid_known=True)

    def test_body_from_another_message(self):
        # The original signature, the body of another message: the signature fails.
        self.refused("--swap-body", "envelope", code=3, reason="signature does not verify", msgid_known=True)

    def test_body_from_another_message_validly_signed(self):
        # a signs header + foreign body: the signature is valid, the AEAD (ad = header) is not.
        self.refused("--swap-body", "--resign", "envelope", code=6, reason="cannot decrypt", msgid_known=True)

    def test_replayed_envelope_gets_original_receipt(self):
        b = self.b
        saved = os.path.join(self.base, "env.bin")
        first, _ = self.a.rawpeer(b, "--save", saved, "envelope")
        self.assertTrue(first[0].startswith("receipt "), first)
        receipt = b.query("SELECT receipt FROM receipts_issued WHERE hex(message_id) = upper(?)",
                          (first[0].split()[1],))[0][0]
        before = snapshot(b)
        seq = audit_max(b)
        for _ in range(3):
            again, _ = self.a.rawpeer(b, "replay", saved)
            self.assertEqual(again, first, "a replay must be answered with the original receipt")
        rows = audit_since(b, seq)
        self.assertEqual([r[2] for r in rows], ["message-duplicate"] * 3)
        self.assertEqual(snapshot(b), before)
        self.assertEqual(b.query("SELECT receipt FROM receipts_issued WHERE hex(message_id) = upper(?)",
                                 (first[0].split()[1],))[0][0], receipt)
        self.assert_still_delivering(before)

    def test_retry_past_max_age_of_a_stored_message_gets_its_receipt(self):
        """PROTOCOL.md 6: a retry after a lost receipt is answered with the original receipt
        however old the message is by then; the clock rules are for new messages. Here the
        message is created 3 s short of max_age_s (14 days) and sent again 4 s later."""
        b = self.b
        saved = os.path.join(self.base, "old-env.bin")
        offset = -(14 * 86400 * 1000 - 3000)
        first, _ = self.a.rawpeer(b, "--save", saved, "--created-offset-ms", str(offset), "envelope")
        self.assertTrue(first[0].startswith("receipt "), first)
        time.sleep(4)
        seq = audit_max(b)
        again, _ = self.a.rawpeer(b, "replay", saved)
        self.assertEqual(again, first, "a retry of a stored message must get its receipt, not CLOCK")
        self.assertEqual([r[2] for r in audit_since(b, seq)], ["message-duplicate"])
        # A new message as old is still refused.
        self.refused("--created-offset-ms", str(offset - 4000), "envelope", code=7, reason="older than the accepted",
                     msgid_known=True)

    def test_copies_in_one_burst_get_one_receipt(self):
        # The same envelope four times back to back: the daemon takes them in one batch,
        # stores the message once and answers every copy with the same receipt (PROTOCOL.md
        # 6 step 7: a copy of a message still in the uncommitted batch).
        b = self.b
        seq = audit_max(b)
        lines, _ = self.a.rawpeer(b, "--repeat", "4", "--burst", "envelope")
        self.assertEqual(len(lines), 4, lines)
        self.assertTrue(lines[0].startswith("receipt "), lines)
        self.assertEqual(set(lines), {lines[0]}, "the copies got different answers")
        mid = lines[0].split()[1]
        actions = sorted(r[2] for r in audit_since(b, seq))
        self.assertEqual(actions, ["message-duplicate"] * 3 + ["message-received"])
        stored = b.query("SELECT receipt FROM receipts_issued WHERE hex(message_id) = upper(?)", (mid,))
        self.assertEqual(len(stored), 1)
        self.assertEqual(hashlib.blake2b(stored[0][0], digest_size=16).hexdigest(), lines[0].split()[4])

    def test_created_far_in_future(self):
        self.refused("--created-offset-ms", str(86400 * 1000), "envelope", code=7, reason="in the future",
                     msgid_known=True)

    def test_created_far_in_past(self):
        self.refused("--created-offset-ms", str(-15 * 86400 * 1000), "envelope", code=7, reason="ago, older than",
                     msgid_known=True)

    def test_sender_is_not_the_transport_peer(self):
        self.refused("--sender", "c", "--to", "b", "envelope", code=4, reason="is not the connected peer 'a'",
                     msgid_known=True)

    def test_unknown_content_type(self):
        self.refused("--content-type", "99", "envelope", code=6, reason="content type 99 is not known",
                     msgid_known=True)

    def test_multi_frame_message(self):
        self.refused("frames", "3", code=1, reason="expected one frame per message, got 3")

    def test_traffic_flows_during_a_barrage(self):
        """c keeps sending while a throws every bad input at b: all of c's messages are
        delivered, b audits one row per bad input, and nothing else changes."""
        b, c = self.b, self.c
        before = snapshot(b)
        seq = audit_max(b)
        sent, errors = [], []

        def honest():
            try:
                for i in range(30):
                    sent.append(c.send("b", "meanwhile %d" % i))
                    time.sleep(0.05)
            except Exception as e:  # reported below
                errors.append(e)

        t = threading.Thread(target=honest)
        t.start()
        bad = [("empty",), ("random", "64"), ("frames", "2"), ("--truncate-frame", "40", "envelope"),
               ("--pad-recipients", "10000", "envelope"), ("--header-version", "9", "envelope"),
               ("--swap-body", "envelope"), ("--created-offset-ms", "-2000000000", "envelope"),
               ("--sender", "c", "--to", "b", "envelope"), ("--content-type", "77", "envelope")]
        answers = []
        for _ in range(2):
            for args in bad:
                lines, _ = self.a.rawpeer(b, "--timeout-ms", "4000", *args)
                answers.append(lines[0] if lines else "")
        t.join()
        self.assertEqual(errors, [])
        self.assertTrue(all(x.startswith("reject ") for x in answers), answers)
        for mid in sent:
            self.wait_delivered(c, mid, "b")
        rows = audit_since(b, seq)
        self.assertEqual(len([r for r in rows if r[2] == "message-rejected"]), len(bad) * 2)
        self.assertEqual(len([r for r in rows if r[2] == "message-received"]), len(sent))
        self.assertEqual(len(rows), len(bad) * 2 + len(sent))
        after = snapshot(b)
        self.assertTrue(all(r in after["messages"] for r in before["messages"]))
        self.assertEqual(len(after["messages"]), len(before["messages"]) + len(sent))
        self.assertIsNone(b.proc.poll())


class AuditSocketBadInput(Hardened):
    """From an auditor's side: requests on b's audit socket (PROTOCOL.md 11.5). Every one
    leaves an audit entry, a refused one too, and no request can make an entry of any
    size it likes (entries can never be removed)."""

    def ask(self, data):
        b = self.b
        seq = audit_max(b)
        line = control_raw(b, data, socket="audit.sock")
        self.assertIsNone(b.proc.poll(), "liaisond b exited")
        return line, audit_since(b, seq)

    def test_refused_requests_are_audited(self):
        user = "user:" + pwd.getpwuid(os.getuid()).pw_name
        cases = [
            (request(field(13, field(1, bytes(16)))), "2", "only audit operations"),  # show: content
            (request(field(12, b"")), "2", "only audit operations"),  # a listing of messages
            (request(field(30, field(4, "bad id!"))), "1", "patient: not a patient id"),
            (request(field(30, field(5, "no-such-action"))), "1", "action: not an audit action"),
            (request(field(30, field(8, b"abc"))), "1", "message_id: not a message id"),
        ]
        for data, code, reason in cases:
            with self.subTest(reason=reason):
                line, rows = self.ask(data)
                self.assertTrue(line.startswith("response %s " % code), line)
                self.assertIn(reason, line)
                self.assertEqual([(r[1], r[2]) for r in rows], [(user, "request-refused")], rows)
                self.assertIn(reason, rows[0][6])
                self.assertNotIn("bad id!", rows[0][6])

    def test_a_query_cannot_make_an_entry_of_any_size(self):
        line, rows = self.ask(request(field(30, field(3, "x" * 100000) + field(5, "node-created"))))
        self.assertTrue(line.startswith("response 1 "), line)
        self.assertIn("peer: not a node id", line)
        self.assertEqual(len(rows), 1, rows)
        self.assertLess(len(rows[0][6] or ""), 1100)
        self.assertNotIn("xxxx", rows[0][5] or "")
        self.assertEqual(self.b.cli("audit", "verify").returncode, 0)


class ControlBadInput(Hardened):
    """From the local side: raw bytes on b's control socket (PROTOCOL.md section 9)."""

    def refused(self, data, codes, reason, frames=1, action="request-refused", details=None):
        b = self.b
        before = snapshot(b)
        seq = audit_max(b)
        line = control_raw(b, data, frames=frames)
        self.assertIsNone(b.proc.poll(), "liaisond b exited")
        self.assertEqual(snapshot(b), before, "the refusal changed stored rows")
        parts = line.split(" ", 3)
        self.assertEqual(parts[0], "response", "expected a Response, got %r" % line)
        self.assertIn(int(parts[1]), codes, line)
        self.assertIn(reason, parts[3] if len(parts) > 3 else "", line)
        rows = audit_since(b, seq)
        self.assertEqual(len(rows), 1, "expected exactly one audit row, got %r" % (rows,))
        _, actor, act, outcome, _, _, det = rows[0]
        self.assertEqual((actor, act, outcome), ("user:" + pwd.getpwuid(os.getuid()).pw_name, action, "refused"))
        if details:
            self.assertIn(details, det)
        self.assert_still_delivering(before)
        return line, rows[0]

    # -- not a request at all --
    def test_garbage(self):
        self.refused(bytes(range(256)) * 3, {1}, "malformed request")

    def test_multi_frame_request(self):
        self.refused(request(field(10, 1)), {1}, "expected one frame per request, got 3", frames=3)

    def test_no_operation(self):
        self.refused(request(), {1}, "unknown operation")

    def test_empty_frame(self):
        self.refused(b"", {1}, "unknown operation")

    # -- missing fields --
    def test_send_without_anything(self):
        self.refused(request(field(11, b"")), {1}, "content type 0 is not known")

    def test_send_without_recipients(self):
        self.refused(send_request(to=(), payload=text_message("hi")), {1}, "no recipient")

    def test_send_without_payload(self):
        # A text message needs its text: the reason names the field only.
        _, row = self.refused(send_request(payload=None), {1}, "text")
        self.assertEqual(row[6], "send: text")

    def test_show_without_id(self):
        self.refused(request(field(13, b"")), {1}, "a message id is 32 hex characters")

    def test_ack_without_id(self):
        self.refused(request(field(19, b"")), {1}, "a message id is 32 hex characters")

    def test_peer_add_without_card(self):
        # Refused (BAD_REQUEST or REFUSED) with one row, either request-refused or peer-added/refused.
        b = self.b
        seq = audit_max(b)
        line = control_raw(b, request(field(14, b"")))
        self.assertRegex(line, r"^response [12] 7 .*card")
        rows = audit_since(b, seq)
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0][3], "refused")
        self.assert_still_delivering(snapshot(b))

    def test_peer_remove_without_id(self):
        self.refused(request(field(15, b"")), {1, 3}, "is not in the directory")

    # -- wrong-typed fields (protobuf wire types that do not match the schema) --
    def test_show_as_varint(self):
        self.refused(request(field(13, 5)), {1}, "malformed request")

    def test_content_type_as_string(self):
        self.refused(send_request(ct=None, payload=text_message("hi"), extra=field(2, "one")), {1},
                     "malformed request")

    def test_recipient_as_varint(self):
        self.refused(request(field(11, field(1, 5) + field(2, 1) + field(3, text_message("hi")))), {1},
                     "malformed request")

    def test_payload_of_another_type(self):
        # A TextMessage whose text field is a varint.
        self.refused(send_request(payload=field(2, 12345)), {1}, "")

    # -- over-long fields --
    def test_message_id_too_long(self):
        self.refused(request(field(13, field(1, b"\x01" * 1000))), {1}, "a message id is 32 hex characters")

    def test_card_too_long(self):
        self.refused(request(field(14, field(1, "x" * 100000))), {1}, "longer than 2048 bytes")

    def test_recipient_id_too_long(self):
        self.refused(send_request(to=("a" * 5000,), payload=text_message("hi")), {1}, "is not a valid node id")

    def test_typed_value_not_kept_in_the_audit(self):
        # A raw client's mistyped recipient (a patient id here) is quoted back to it, and
        # masked in the audit entry that auditors and exports read.
        line, row = self.refused(send_request(to=("MRN-0042",), payload=text_message("hi")), {1},
                                 "'MRN-0042' is not a valid node id")
        self.assertEqual(row[6], "send: '?' is not a valid node id")

    def test_too_many_recipients(self):
        self.refused(send_request(to=["r%03d" % i for i in range(40)], payload=text_message("hi")), {1},
                     "too many recipients")

    def test_thread_id_too_long(self):
        self.refused(send_request(payload=text_message("hi"), thread=b"\x02" * 17), {1}, "thread id must be 16 bytes")

    def test_text_too_long(self):
        _, row = self.refused(send_request(payload=text_message("t" * 100000)), {1}, "text")
        self.assertEqual(row[6], "send: text", "only the field name may be audited")

    def test_subject_too_long(self):
        _, row = self.refused(send_request(payload=text_message("hi", subject="s" * 1000)), {1}, "subject")
        self.assertEqual(row[6], "send: subject")

    def test_fingerprint_id_too_long(self):
        self.refused(request(field(18, field(1, "z" * 10000))), {1, 3}, "is not in the directory")

    def test_list_thread_id_wrong_length(self):
        self.refused(request(field(12, field(8, b"abc"))), {1}, "a thread id is 32 hex characters")

    def test_audit_operation_on_control_socket(self):
        self.refused(request(field(32, 1)), {2}, "audit socket only")

    def test_request_over_size_limit(self):
        """PROTOCOL.md 9: a request over 589,824 bytes is answered BAD_REQUEST and audited."""
        b = self.b
        before = snapshot(b)
        seq = audit_max(b)
        line = control_raw(b, request(field(14, field(1, "x" * 600000))), timeout_ms=3000)
        time.sleep(0.3)
        rows = audit_since(b, seq)
        self.assert_still_delivering(before)
        self.assertTrue(line.startswith("response 1 "),
                        "an oversize control request got %r: libzmq's ZMQ_MAXMSGSIZE on the control socket "
                        "(daemon/control.c bind_ipc) drops the connection, so the size check in serve() "
                        "never runs" % line)
        self.assertEqual(len(rows), 1, rows)


class StaleConnections(NodeTest):
    """A connection authenticated before its peer was removed, or before the peer's card
    was replaced by one with another transport key, stays open (ZeroMQ keeps it), but its
    frames are dropped, audited as `transport-refused` at most once a minute per key, and
    only the first of a minute is answered, with a Reject NOT_IN_DIRECTORY (PROTOCOL.md
    sections 4, 6 and 11): a removed peer cannot flood the audit log, is told once, and an
    old (perhaps stolen) key is never taken for the new card."""

    def setUp(self):
        super().setUp()
        self.a = self.node("a", start=False)  # rawpeer speaks with a's keys; no daemon of a's interferes
        self.b = self.node("b")
        self.b.add_peer(self.a)
        cmd = [harness.RAWPEER, "--home", self.a.home, "--target", self.b.card_file, "--timeout-ms", "20000",
               "--hold", "envelope"]
        self.held = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.addCleanup(self.close_held)
        first = self.held.stdout.readline().strip()
        self.assertTrue(first.startswith("receipt "), first)

    def close_held(self):
        if self.held.poll() is None:
            self.held.stdin.close()
            try:
                self.held.wait(30)
            except subprocess.TimeoutExpired:
                self.held.kill()
                self.held.wait()
        self.held.stdout.close()
        self.held.stderr.close()

    def command(self, line):
        self.held.stdin.write(line + "\n")
        self.held.stdin.flush()
        answer = self.held.stdout.readline().strip()
        if not answer:
            self.fail("rawpeer ended: %s" % self.held.stderr.read())
        return answer

    def dropped_while_stale(self, make_stale, make_current, frames):
        """Sends `frames` frames on the held connection while a's key is not current, then
        makes it current again and sends one more: its answer (the original receipt of the
        replayed envelope) comes after everything sent before it on that connection was
        handled. Of the stale frames only the first is answered, with a Reject
        NOT_IN_DIRECTORY about the connection (PROTOCOL.md 7.2). Returns the audit rows
        written meanwhile."""
        b = self.b
        seq = audit_max(b)
        make_stale()
        start = time.monotonic()
        self.assertEqual(self.command("blast %d" % frames), "sent %d" % frames)
        wait_for(lambda: audit_since(b, seq) and [r for r in audit_since(b, seq) if r[2] == "transport-refused"],
                 20, "the dropped frames to be audited")
        # The first stale frame is answered, about the connection (no message id), and
        # nothing else is: one answer per key a minute, however many frames.
        self.assertEqual(self.command("answer"), "reject 11 - your transport key is not in this node's directory")
        self.assertEqual(self.command("answer 300"), "timeout")
        make_current()
        # The next answer is this exchange's.
        answer = self.command("exchange")
        elapsed = time.monotonic() - start
        self.assertTrue(answer.startswith("receipt "), "a frame of the stale key was answered: %r" % answer)
        rows = audit_since(b, seq)
        refused = [r for r in rows if r[2] == "transport-refused"]
        # At most one row per key per minute, however many frames (the bound allows for a
        # machine slow enough to take more than a minute over this).
        self.assertGreaterEqual(len(refused), 1)
        self.assertLessEqual(len(refused), 1 + int(elapsed // 60), "%d rows for one key: %r" % (len(refused), refused[:3]))
        for r in refused:
            self.assertEqual((r[1], r[3]), ("daemon", "refused"), r)
            self.assertIn("is not in the directory", r[6])
        self.assertEqual([r for r in rows if r[2] in ("message-rejected", "message-received")], [], rows)
        self.assertEqual([r[2] for r in rows if r[2] == "message-duplicate"], ["message-duplicate"])
        self.assertIsNone(b.proc.poll())
        return rows

    def test_removed_peer_connection_is_dropped(self):
        b = self.b
        self.dropped_while_stale(lambda: b.cli("peer", "remove", "a"), lambda: b.add_peer(self.a), frames=100)

    def test_removed_again_within_the_minute_is_told_again(self):
        # The once-a-minute answer is per key while it stays stale: a card added back and
        # removed again is answered at once, not after the rest of the minute.
        b = self.b
        self.dropped_while_stale(lambda: b.cli("peer", "remove", "a"), lambda: b.add_peer(self.a), frames=5)
        b.cli("peer", "remove", "a")
        self.assertEqual(self.command("blast 1"), "sent 1")
        self.assertEqual(self.command("answer"), "reject 11 - your transport key is not in this node's directory")

    def test_replaced_key_connection_is_dropped(self):
        b = self.b
        other = tempfile.mkdtemp(prefix="liaison-it-", dir=self.base)
        a2 = harness.Node(other, "a").init()  # the same id with new keys (not started)
        rows = self.dropped_while_stale(lambda: b.add_peer(a2, replace=True),
                                        lambda: b.add_peer(self.a, replace=True), frames=20)
        self.assertEqual([r[2] for r in rows if r[2] == "peer-replaced"], ["peer-replaced"] * 2)


class HostileRejectReason(NodeTest):
    """A peer's Reject.reason is its own text: a newline in it must not forge a log line,
    escape sequences must not reach a terminal through `liaison outbox`/`show`, and its
    length is bounded, in the log, the delivery's detail and the audit alike."""

    FORGED = "2026-11-23T00:00:00.000Z liaisond info: forged"
    REASON = ("refused\n" + FORGED + "\r\x1b[2J\x1b]0;owned\x07\x7f\u00e9" + "A" * 1000)

    def test_reject_reason_is_made_printable_and_bounded(self):
        a = self.node("a")
        x = self.node("x", start=False)  # rawpeer answers as x
        a.add_peer(x)
        cmd = [harness.RAWPEER, "--home", x.home, "--target", a.card_file, "--timeout-ms", "30000",
               "serve-reject", "6", self.REASON.encode().hex()]
        server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        try:
            self.assertEqual(server.stdout.readline().strip(), "listening")
            mid = a.send("x", "hello")
            self.assertEqual(server.stdout.readline().strip(), "rejected " + mid)
            # The server keeps its connection until stdin closes, so the Reject is not lost.
            wait_for(lambda: a.delivery_state(mid, "x") == "rejected", 20, "the rejection to be recorded")
        finally:
            server.communicate(timeout=30)
        detail = a.query("SELECT detail FROM deliveries WHERE hex(message_id) = upper(?)", (mid,))[0][0]
        audited = [r[6] for r in a.audit("delivery-rejected")]
        self.assertEqual(len(audited), 1, audited)
        for where, text in (("delivery detail", detail), ("audit details", audited[0])):
            with self.subTest(where=where):
                self.assertTrue(text.startswith("content: refused?" + self.FORGED + "?"), text[:120])
                self.assertTrue(all(0x20 <= ord(ch) < 0x7f for ch in text), repr(text[:120]))
                self.assertLessEqual(len(text), len("content: ") + 200)
        with open(a.log, errors="replace") as f:
            log = f.read()
        self.assertNotIn("\n" + self.FORGED, log)
        self.assertNotIn("\x1b", log)
        self.assertIn("refused?" + self.FORGED, log)
        for args in (("outbox",), ("show", mid)):
            with self.subTest(command=args[0]):
                out = a.cli(*args).stdout
                self.assertNotIn("\x1b", out)
                self.assertNotIn("\x07", out)
                self.assertNotIn("\n" + self.FORGED, out)
        # A detail stored raw (by a daemon from before this check) is still shown printable.
        a.stop()
        con = sqlite3.connect(a.db_path)
        with con:
            con.execute("UPDATE deliveries SET detail = ? WHERE hex(message_id) = upper(?)",
                        ("content: " + self.REASON[:200], mid))
        con.close()
        a.start()
        for args in (("outbox",), ("show", mid)):
            with self.subTest(command=args[0], stored="raw"):
                out = a.cli(*args).stdout
                self.assertIn("refused?" + self.FORGED, out)
                self.assertNotIn("\x1b", out)
                self.assertNotIn("\n" + self.FORGED, out)


class UnusableCards(NodeTest):
    """A validly signed card whose X25519 encryption key is a low-order point (no usable
    pair key) is refused before anything is stored or audited as accepted, and with
    --replace the working card stays active."""

    def low_order_card(self, node):
        lines, _ = node.rawpeer(node, "card-loworder")
        self.assertEqual(len(lines), 1, lines)
        return lines[0]

    def test_low_order_card_is_refused_before_it_is_stored(self):
        a = self.node("a")
        b = self.node("b")
        c = self.node("c")
        link(a, b)
        bad = self.low_order_card(b)
        for node, args in ((a, ("--replace",)), (c, ())):
            with self.subTest(node=node.id, args=args):
                before = snapshot(node)
                seq = audit_max(node)
                p = node.cli("peer", "add", *args, "-", input=bad, check=False)
                self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
                self.assertIn("unusable encryption key", p.stderr)
                self.assertEqual(snapshot(node), before, "a refused card changed stored rows")
                rows = audit_since(node, seq)
                self.assertEqual([(r[2], r[3], r[5]) for r in rows], [("peer-added", "refused", "b")], rows)
        # a still talks to b with the card it had: both ways.
        self.assertIn("b", a.cli("peer", "list").stdout)
        self.assertNotIn("b", [ln.split()[0] for ln in c.cli("peer", "list").stdout.splitlines() if ln.split()])
        m1 = a.send("b", "still using the working card")
        m2 = b.send("a", "and back")
        self.wait_delivered(a, m1, "b")
        self.wait_delivered(b, m2, "a")


class ControlSocketAccess(NodeTest):
    """The control socket is mode 0660 in a 0750 runtime directory, group 'liaison' when
    that group exists (daemon/control.c bind_ipc), otherwise the daemon's own group."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root to create a temporary user outside the socket's group")
        if not shutil.which("useradd") or not shutil.which("groupadd"):
            self.skipTest("useradd/groupadd not available")
        suffix = os.urandom(3).hex()
        self.user = "lzt" + suffix
        self.group = "lztg" + suffix
        subprocess.run(["groupadd", self.group], check=True, capture_output=True)
        self.addCleanup(subprocess.run, ["groupdel", self.group], capture_output=True)
        subprocess.run(["useradd", "-M", "-N", "-g", "nogroup" if _group_exists("nogroup") else "users",
                        "-s", "/usr/sbin/nologin", self.user], check=True, capture_output=True)
        self.addCleanup(subprocess.run, ["userdel", self.user], capture_output=True)
        pw = pwd.getpwnam(self.user)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.extra_gid = grp.getgrnam(self.group).gr_gid
        # The build tree may sit in a directory other users cannot enter (a mktemp -d clone):
        # run the outsider's programs from a world-readable copy, with the client library.
        self.bin = tempfile.mkdtemp(prefix="liaison-bin-")
        self.addCleanup(shutil.rmtree, self.bin, True)
        os.chmod(self.bin, 0o755)
        libdir = os.path.dirname(harness.LIAISON)
        for f in [harness.LIAISON, harness.RAWPEER] + [os.path.join(libdir, x) for x in os.listdir(libdir)
                                                       if x.startswith("libliaison-client.so")]:
            shutil.copy(f, self.bin)
        self.liaison = os.path.join(self.bin, "liaison")
        self.rawpeer = os.path.join(self.bin, "rawpeer")
        self.env = dict(os.environ, LD_LIBRARY_PATH=self.bin)

    def test_user_outside_the_group(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        # Let anyone reach the home (the runtime directory and socket keep their own modes).
        for d in (self.base, b.home):
            os.chmod(d, 0o755)
        os.chmod(os.path.join(b.home, "liaison.conf"), 0o644)
        sock = os.path.join(b.home, "run", "control.sock")
        st = os.stat(sock)
        self.assertEqual(st.st_mode & 0o777, 0o660, "control socket mode")
        self.assertEqual(os.stat(os.path.dirname(sock)).st_mode & 0o007, 0, "runtime directory open to others")
        sock_group = grp.getgrgid(st.st_gid).gr_name
        if _group_exists("liaison"):
            self.assertEqual(sock_group, "liaison")
        before = snapshot(b)
        seq = audit_max(b)
        # The CLI as an outsider: a clear refusal naming the fix, exit non-zero.
        p = subprocess.run([self.liaison, "--home", b.home, "status"], capture_output=True, text=True,
                           env=self.env, timeout=30, user=self.uid, group=self.gid, extra_groups=[])
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("permission denied", p.stderr)
        # Raw bytes as an outsider never reach the daemon.
        line = control_raw(b, request(field(10, 1)), timeout_ms=1500, run_as=(self.uid, self.gid, []), rawpeer=self.rawpeer)
        self.assertEqual(line, "timeout")
        # The kernel refused the connection: the daemon never saw it, so there is nothing it
        # could audit; it stays up and serves its group.
        self.assertEqual(audit_since(b, seq), [])
        self.assertEqual(snapshot(b), before)
        mid = a.send("b", "still delivering")
        self.wait_delivered(a, mid, "b")
        # Control: the same user in the socket's group gets through, and is audited by name.
        os.chown(os.path.dirname(sock), -1, self.extra_gid)
        os.chown(sock, -1, self.extra_gid)
        seq = audit_max(b)
        line = control_raw(b, request(field(13, b"")), run_as=(self.uid, self.gid, [self.extra_gid]), rawpeer=self.rawpeer)
        self.assertTrue(line.startswith("response 1 7 "), line)
        rows = audit_since(b, seq)
        self.assertEqual([(r[1], r[2], r[3]) for r in rows], [("user:" + self.user, "request-refused", "refused")])
        p = subprocess.run([self.liaison, "--home", b.home, "status"], capture_output=True, text=True,
                           env=self.env, timeout=30, user=self.uid, group=self.gid, extra_groups=[self.extra_gid])
        self.assertEqual(p.returncode, 0, p.stderr)


def _group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


if __name__ == "__main__":
    unittest.main()


class ReviewIdTakesOverThread(NodeTest):
    """A peer told of a conversation must not turn it into a case review: a review id is
    derived from its opener and the open's salt (PROTOCOL.md 8.5), so an open (or an add
    naming the recipient) whose review id is the id of a message, here one the recipient
    holds, is refused (REJECT_POLICY) whatever opener and salt it names, and ordinary
    replies in that thread keep arriving."""

    def review_payload(self, review_id, action):
        patient = field(2, field(1, "P-1042"))
        salt = os.urandom(16)
        if action == "open":
            kind = field(3, field(1, "Hijack?") + field(2, "b") + field(3, salt))
        else:
            kind = field(5, field(1, "b") + field(2, "c") + field(3, "Hijack?") + field(6, salt))
        return field(1, review_id) + patient + kind

    def test_review_id_of_a_held_thread_is_refused(self):
        a = self.node("a")  # the hostile peer: rawpeer speaks with a's keys
        b = self.node("b")
        c = self.node("c")
        link(a, b, c)
        # c starts a conversation with a and b: its id is the thread a now knows.
        thread = c.send("a,b", "first message of a conversation")
        self.wait_delivered(c, thread, "b")
        self.wait_delivered(c, thread, "a")
        for action in ("open", "add"):
            with self.subTest(action=action):
                path = os.path.join(self.base, "review-%s.bin" % action)
                with open(path, "wb") as f:
                    f.write(self.review_payload(bytes.fromhex(thread), action))
                lines, _ = a.rawpeer(b, "--timeout-ms", "8000", "envelope", "--content-type", "5", "--thread",
                                     thread, "--payload-file", path, "--to", "b")
                self.assertEqual(len(lines), 1, lines)
                self.assertTrue(lines[0].startswith("reject 10 "), lines[0])
                self.assertIn("is not the one the opener 'a' and the open's salt give" if action == "open"
                              else "the add does not name an opener and salt that give this review id", lines[0])
                self.assertEqual(b.query("SELECT count(*) FROM reviews"), [(0,)])
        # The conversation goes on: c's reply in the thread reaches b.
        reply = c.send("b", "a reply in the same conversation", extra=("--thread", thread))
        self.wait_delivered(c, reply, "b")


class PrivateFiles(NodeTest):
    """Another local user must not read the database (who wrote to whom, when, about
    which patient tag, and the audit log), nor slip files into a node's directories:
    liaison init refuses a directory others can change or that belongs to someone else,
    the database and its -wal and -shm files are 0600 whatever the umask, and liaisond
    refuses to start in such a directory."""

    def init(self, home):
        old = os.umask(0o022)
        try:
            return subprocess.run([harness.LIAISON, "--home", home, "init", "--id", "x", "--role", "nurse",
                                   "--listen", "tcp://127.0.0.1:%d" % harness.free_port()],
                                  capture_output=True, text=True, timeout=30)
        finally:
            os.umask(old)

    def test_init_refuses_a_directory_others_can_change(self):
        home = os.path.join(self.base, "shared")
        os.mkdir(home)
        os.chmod(home, 0o777)
        r = self.init(home)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("can be changed by other users", r.stderr)
        self.assertIn("chmod go-w", r.stderr)
        self.assertEqual(sorted(os.listdir(home)), [])

    def test_database_files_are_private_and_daemon_checks_its_directories(self):
        old = os.umask(0o022)
        try:
            a = self.node("a")
            b = self.node("b")
        finally:
            os.umask(old)
        link(a, b)
        mid = a.send("b", "a note for b")
        self.wait_delivered(a, mid, "b")
        for node in (a, b):
            for suffix in ("", "-wal", "-shm"):
                path = node.db_path + suffix
                if os.path.exists(path):
                    with self.subTest(node=node.id, file=os.path.basename(path)):
                        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        # A database left readable by an earlier init is made private at start-up.
        a.stop()
        os.chmod(a.db_path, 0o644)
        a.start()
        self.assertEqual(stat.S_IMODE(os.stat(a.db_path).st_mode), 0o600)
        # A runtime directory others can change: liaisond does not start.
        b.stop()
        os.chmod(os.path.join(b.home, "run"), 0o777)
        p = subprocess.run([harness.LIAISOND, "--home", b.home], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("can be changed by other users", p.stderr)


class Witnessing(NodeTest):
    """Witnessing must hold up when a write fails and when a clock steps back: an alarm
    that could not be written is raised again, and an honest node is never accused
    (PROTOCOL.md 11.2, 11.3)."""

    def test_rollback_alarm_not_written_is_raised_at_the_next_claim(self):
        """A node restored from an older copy learns it from its witness (a note it signed
        at a larger size). If the rollback-detected entry cannot be written then (a full
        disk; here a trigger refuses the alarm's row), the node must record it when the
        witness shows the same note again, not take the claim as already reported."""
        a = self.node("a", start=False)
        b = self.node("b", start=False)
        for n in (a, b):
            n.write_config("audit", "checkpoint_entries", "4")
            n.start()
        link(a, b)
        mid = a.send("b", "before the snapshot")
        self.wait_delivered(a, mid, "b")
        wait_for(lambda: b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'"), 20, "b to witness a")
        a.stop()
        old = os.path.join(self.base, "old.db")
        shutil.copy(a.db_path, old)
        old_size = sqlite3.connect(old).execute("SELECT max(seq) FROM audit").fetchone()[0]
        a.start()
        for i in range(12):
            mid = a.send("b", "after the snapshot %d" % i)
        self.wait_delivered(a, mid, "b")
        held = lambda: b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'")[0][0]
        wait_for(lambda: held() > old_size + 16, 20, "b to witness a's newer checkpoint")
        a.stop()
        for suffix in ("-wal", "-shm"):
            if os.path.exists(a.db_path + suffix):
                os.remove(a.db_path + suffix)
        shutil.copy(old, a.db_path)
        con = sqlite3.connect(a.db_path)
        con.execute("CREATE TRIGGER refuse_alarms BEFORE INSERT ON witness_alarms"
                    " BEGIN SELECT RAISE(ABORT, 'alarm refused by the test'); END")
        con.commit()
        con.close()
        a.start()
        wait_for(lambda: "this database was rolled back" in open(a.log).read(), 30,
                 "a to learn of its rollback from b")
        self.assertEqual(a.audit("rollback-detected"), [])
        # The disk has room again; a's next checkpoint (still below what b holds) is
        # answered with the same note: this time the alarm is written.
        con = sqlite3.connect(a.db_path, timeout=10)
        con.execute("DROP TRIGGER refuse_alarms")
        con.commit()
        con.close()
        for i in range(2):
            a.send("b", "after the restore %d" % i)
        wait_for(lambda: a.audit("rollback-detected"), 30, "a to record its rollback")
        self.assertIn("this database was rolled back", a.audit("rollback-detected")[0][6])
        self.assertEqual(a.query("SELECT count(*) FROM witness_alarms")[0][0], 1)
        self.assertEqual(len(a.audit("rollback-detected")), 1)

    def test_checkpoint_times_never_go_back_with_the_clock(self):
        """A node's clock steps back an hour (an NTP correction) between two checkpoints.
        The witness tells a late old checkpoint from a rollback by the signing times in the
        notes (PROTOCOL.md 11.3): the node must never sign a checkpoint with an earlier time
        than its previous one, or its own older checkpoint, arriving late, is taken for a
        log that shrank, and an honest node is accused for good."""
        offset = os.path.join(self.base, "clock-offset")
        with open(offset, "w") as f:
            f.write("0")
        a = self.node("a", start=False)
        b = self.node("b")
        a.write_config("audit", "checkpoint_entries", "4")
        a.prefix = ["env", "LD_PRELOAD=" + os.path.join(harness.BUILD, "tests", "tools", "libclockshift.so"),
                    "LIAISON_CLOCK_OFFSET_FILE=" + offset,
                    "ASAN_OPTIONS=%s:verify_asan_link_order=0" % os.environ.get("ASAN_OPTIONS", "")]
        a.start()
        link(a, b)
        for i in range(3):
            mid = a.send("b", "first %d" % i)
        self.wait_delivered(a, mid, "b")
        held = lambda: (b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'") or [(0,)])[0][0]
        wait_for(lambda: held() > 0, 20, "b to witness a")
        old_size, old_note = a.query("SELECT tree_size, note FROM checkpoints ORDER BY tree_size DESC LIMIT 1")[0]
        wait_for(lambda: held() == old_size, 20, "b to hold a's checkpoint")
        with open(offset, "w") as f:
            f.write("-3600000")
        time.sleep(0.3)
        for i in range(4):
            mid = a.send("b", "after the clock went back %d" % i)
        self.wait_delivered(a, mid, "b")
        wait_for(lambda: held() > old_size, 20, "b to witness a's checkpoint signed after the step")
        size = held()
        # a's older checkpoint arrives late (queued on an earlier connection).
        note = old_note.encode()
        req = b"\x0a" + varint(len(note)) + note
        frame = b"\x22" + varint(len(req)) + req
        lines, _ = a.rawpeer(b, "raw-hex", frame.hex())
        self.assertEqual(lines[0], "witness-reply %d 0 older than the checkpoint held" % size, lines)
        self.assertEqual(b.audit("witness-alarm"), [])
        self.assertEqual(b.query("SELECT count(*) FROM witness_alarms")[0][0], 0)
        times = [int(n.split("\n")[3][len("time "):]) for (n,) in
                 a.query("SELECT note FROM checkpoints ORDER BY tree_size")]
        self.assertEqual(times, sorted(times), "checkpoint times went back")
        self.assertEqual(len(set(times)), len(times))
        # Later traffic on the slow clock: checkpoints keep their pace, none per commit.
        cps = a.query("SELECT count(*) FROM checkpoints")[0][0]
        for i in range(4):
            self.wait_delivered(a, a.send("b", "later %d" % i), "b")
        self.assertLessEqual(a.query("SELECT count(*) FROM checkpoints")[0][0] - cps, 3)
        a.stop()
        r = a.cli("audit", "verify", "--db", a.db_path, "--card", a.card_file, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
