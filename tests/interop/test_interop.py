# SPDX-License-Identifier: Apache-2.0
"""A peer written from docs/PROTOCOL.md in Python (pypeer.py) against real liaisond daemons:
cards both ways, envelopes both ways with verified receipts, clinical payloads, an
acknowledgement closing the loop, retransmission, refusals, and witnessed checkpoints."""
import os
import re
import signal
import sys
import atexit
import base64
import hashlib
import json
import struct
import subprocess
import shutil
import sqlite3
import tempfile
import time
import unittest

import zmq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import LIAISON, NodeTest, free_port, link, wait_for  # noqa: E402

import pypeer  # noqa: E402

GEN = tempfile.mkdtemp(prefix="liaison-interop-pb-")
atexit.register(shutil.rmtree, GEN, True)
WIRE, PAYLOAD = pypeer.load_protos(GEN)
subprocess.run(["protoc", "-I", os.path.join(pypeer.ROOT, "proto"), "--python_out", GEN, "control.proto"], check=True)
import control_pb2 as CONTROL  # noqa: E402


def audit_entry_hash(prev, seq, time_ms, actor, action, outcome, message_id, peer, content_type, patient_tag,
                     details):
    """PROTOCOL.md 11: entry_hash = H32(D("liaison-v1/audit-chain") || prev_hash || E)."""
    def lp(x):
        return struct.pack(">I", len(x)) + x
    e = (struct.pack(">QQ", seq, time_ms) + lp(actor.encode()) + lp(action.encode()) + lp(outcome.encode())
         + lp(message_id) + lp(peer.encode()) + struct.pack(">I", content_type) + lp(patient_tag)
         + lp(details.encode()))
    return pypeer.H32(pypeer.D("liaison-v1/audit-chain") + prev + e)


class Interop(NodeTest):
    def setUp(self):
        super().setUp()
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            p.close()
        super().tearDown()

    def pypeer(self, ident="py.peer", role="pharmacist"):
        p = pypeer.PyPeer(WIRE, PAYLOAD, ident, "Py Peer", role, "tcp://127.0.0.1:%d" % free_port())
        self.peers.append(p)
        return p

    def meet(self, node, peer, serve=False):
        """The daemon adds the Python peer's card and the peer adds the daemon's."""
        node.cli("peer", "add", "-", input=peer.card_text)
        peer.add_peer(node.cli("card").stdout)
        if serve:
            peer.serve()

    def sender_and_two_recipients(self):
        """dr.alvarez, rx.chen and the Python peer mal.lory, who knows both; rx.chen does
        not know dr.alvarez yet, so what dr.alvarez sends it waits (c.add_peer(a) lets it go)."""
        a = self.node("dr.alvarez", "psychiatrist")
        c = self.node("rx.chen", "pharmacist")
        py = self.pypeer("mal.lory", "therapist")
        a.add_peer(c)
        self.meet(a, py, serve=True)
        c.cli("peer", "add", "-", input=py.card_text)
        py.add_peer(c.cli("card").stdout)
        return a, c, py

    def test_cards_and_fingerprints_agree(self):
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer()
        card = py.add_peer(b.cli("card").stdout)
        self.assertEqual((card.id, card.role, card.endpoint), ("dr.okafor", "psychiatrist", b.endpoint))
        # Both sides compute the same fingerprint of each key.
        self.assertEqual(b.cli("fingerprint").stdout.strip().split("\n")[-1].strip()[-47:],
                         pypeer.fingerprint(card.sign_pk))
        b.cli("peer", "add", "-", input=py.card_text)
        self.assertIn(pypeer.fingerprint(py.sign_pk), b.cli("fingerprint", "py.peer").stdout)
        listed = b.json("peer", "list")
        self.assertIn("py.peer", str(listed))
        # A card whose signature is broken by one bit is refused by liaisond.
        raw = pypeer.b64url_decode(py.card_text[len(pypeer.CARD_PREFIX):])
        bad = bytearray(raw)
        bad[-1] ^= 1
        text = pypeer.CARD_PREFIX + base64.urlsafe_b64encode(bytes(bad)).rstrip(b"=").decode()
        other = self.node("dr.lee", "pcp")
        p = other.cli("peer", "add", "-", input=text, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("signature does not verify", p.stderr)
        self.assertEqual(other.json("peer", "list")["peers"], [])

    def test_python_sends_daemon_reads(self):
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer()
        self.meet(b, py)
        ct, payload = py.text("Refill of sertraline 100 mg picked up today.", subject="pharmacy")
        mid, env = py.seal(["dr.okafor"], ct, payload)
        answer = py.deliver("dr.okafor", env)
        self.assertEqual(answer[0], "receipt", answer)
        rb = py.check_receipt("dr.okafor", env, answer[1])
        self.assertEqual(rb.message_id, mid)
        shown = b.cli("show", mid.hex()).stdout
        self.assertIn("Refill of sertraline 100 mg picked up today.", shown)
        self.assertIn("py.peer", shown)
        self.assertEqual(len(b.audit("message-received")), 1)
        # The envelope is stored exactly as received (section 6 step 10).
        stored = b.query("SELECT envelope FROM messages WHERE id = ?", (mid,))
        self.assertEqual(stored[0][0], env)
        # A retransmission of the same bytes gets the very same receipt and stores nothing.
        again = py.deliver("dr.okafor", env)
        self.assertEqual(again, answer)
        self.assertEqual(len(b.audit("message-received")), 1)
        self.assertEqual(len(b.audit("message-duplicate")), 1)

    def test_daemon_told_by_a_python_peer_that_removed_it(self):
        # The other direction, against an independent implementation of section 4: the
        # Python peer forgets the daemon while the daemon's connection to it is up.
        a = self.node("dr.alvarez", "therapist")
        py = self.pypeer()
        self.meet(a, py, serve=True)
        first = a.send("py.peer", "first")
        self.wait_delivered(a, first, "py.peer")
        py.forget("dr.alvarez")
        mid = a.send("py.peer", "second")
        wait_for(lambda: a.delivery_state(mid, "py.peer") == "queued", 20, "the delivery to show queued")
        with open(a.log) as f:
            self.assertIn("peer py.peer no longer holds our transport key", f.read())
        self.assertEqual(py.rejects, [(WIRE.REJECT_NOT_IN_DIRECTORY, "your transport key is not in this node's"
                                       " directory")])
        py.add_peer(a.cli("card").stdout)
        self.wait_delivered(a, mid, "py.peer", timeout=60)
        self.assertEqual([o.payload.text for o in py.received], ["first", "second"])

    def test_list_counts_what_its_limit_leaves_out(self):
        # Section 9: with ListRequest.count, ListResult.matched counts every matching
        # message, the limit aside, with the listing (a client no longer lists again to count).
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer()
        self.meet(b, py)
        for i in range(3):
            ct, payload = py.text("note %d" % i)
            self.assertEqual(py.deliver("dr.okafor", py.seal(["dr.okafor"], ct, payload)[1])[0], "receipt")
        ctx = zmq.Context.instance()
        control = ctx.socket(zmq.DEALER)
        control.setsockopt(zmq.LINGER, 0)
        control.connect("ipc://" + os.path.join(b.home, "run", "control.sock"))
        try:
            for rid, lr, want in ((1, CONTROL.ListRequest(limit=1, count=True), (1, 3)),
                                  (2, CONTROL.ListRequest(limit=1, unread_only=True, with_payloads=True, count=True),
                                   (1, 3)),
                                  (3, CONTROL.ListRequest(unread_only=True, count=True), (2, 2)),
                                  (4, CONTROL.ListRequest(box=CONTROL.ListRequest.OUTBOX, count=True), (0, 0)),
                                  (5, CONTROL.ListRequest(limit=1), (1, 0))):  # not asked: not counted
                control.send(CONTROL.Request(request_id=rid, list=lr).SerializeToString())
                self.assertTrue(control.poll(10000))
                answer = CONTROL.Response.FromString(control.recv())
                self.assertEqual((len(answer.list.messages), answer.list.matched), want, lr)
        finally:
            control.close()

    def test_removed_peer_is_told_on_its_open_connection(self):
        # Section 4 and 7.2: a connection that outlives the removal of its key is answered
        # once a minute with a Reject NOT_IN_DIRECTORY that names no message.
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer()
        self.meet(b, py)
        ct, payload = py.text("Refill picked up.", subject="pharmacy")
        _, env = py.seal(["dr.okafor"], ct, payload)
        self.assertEqual(py.deliver("dr.okafor", env)[0], "receipt")
        b.cli("peer", "remove", "py.peer")
        ct, payload = py.text("Picked up again?", subject="pharmacy")
        _, env = py.seal(["dr.okafor"], ct, payload)
        answer = py.deliver("dr.okafor", env)
        self.assertEqual(answer, ("reject", WIRE.REJECT_NOT_IN_DIRECTORY,
                                  "your transport key is not in this node's directory"))
        with self.assertRaises(pypeer.ProtocolError):  # the second of the minute: no answer
            py.deliver("dr.okafor", env, timeout=1.5)
        self.assertEqual(len(b.audit("message-received")), 1)
        self.assertEqual(len(b.audit("transport-refused")), 1)

    def test_batched_receipts_both_ways(self):
        # Python to daemon: a burst of envelopes; the daemon signs the receipts each commit
        # stores as one batch (section 7.1), and the peer checks every one of them itself.
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer("ms.reyes", "therapist")
        self.meet(b, py)
        sealed = [py.seal(["dr.okafor"], *py.text("note %d" % i)) for i in range(40)]
        answers = py.deliver_many("dr.okafor", [env for _, env in sealed])
        self.assertTrue(all(isinstance(a, bytes) for a in answers), answers)
        by_id = {}
        envs = {mid: env for mid, env in sealed}
        for a in answers:
            body = WIRE.ReceiptBody()
            body.ParseFromString(WIRE.Receipt.FromString(a).body)
            py.check_receipt("dr.okafor", envs[body.message_id], a)
            by_id[body.message_id] = a
        self.assertEqual(sorted(by_id), sorted(envs))
        self.assertGreater(py.batched_receipts_seen, 0, "no receipt of the burst came in a batch")
        stored = dict(b.query("SELECT message_id, receipt FROM receipts_issued"))
        self.assertEqual({bytes(k): bytes(v) for k, v in stored.items()}, by_id)
        # A retransmission of a batched message is answered with its receipt, proof included.
        batched = [mid for mid, r in by_id.items() if WIRE.Receipt.FromString(r).batch_size >= 2]
        self.assertEqual(py.deliver("dr.okafor", envs[batched[-1]]), ("receipt", by_id[batched[-1]]))

        # Daemon to Python: twenty messages queued while the peer is away, sent together
        # when it comes up; the peer answers them as one batch, which the daemon verifies.
        c = self.node("dr.adams", "pcp")
        px = self.pypeer("rx.lee", "pharmacist")
        self.meet(c, px)
        px.batch_receipts = True
        mids = [c.cli("send", "--to", "rx.lee", "-", input="refill %d" % i).stdout.strip() for i in range(20)]
        px.serve()
        for mid in mids:
            self.wait_delivered(c, mid, "rx.lee")
        stored = {bytes(r[0]).hex(): bytes(r[1]) for r in c.query(
            "SELECT message_id, receipt FROM deliveries WHERE recipient = 'rx.lee'")}
        issued = {o.header.message_id.hex(): o.receipt for o in px.received}
        self.assertEqual(stored, issued)
        self.assertTrue(any(WIRE.Receipt.FromString(r).batch_size >= 2 for r in stored.values()),
                        "the peer's burst was not answered as a batch")
        self.assertEqual(len(c.audit("receipt-rejected")), 0)

        # The Python peer follows section 6 step 7 and 7.1 itself, checked by a second one:
        # copies of an envelope in one burst are answered with the first copy's receipt,
        # and one burst from two senders gives each sender its own tree.
        py2 = self.pypeer("ms.diaz", "therapist")
        py2.add_peer(px.card_text)
        px.add_peer(py2.card_text)
        sealed = [py2.seal(["rx.lee"], *py2.text("question %d" % i)) for i in range(6)]
        envs = [env for _, env in sealed]
        answers = py2.deliver_many("rx.lee", envs + [envs[1], envs[4]])
        self.assertTrue(all(isinstance(a, bytes) for a in answers), answers)
        # Answers come in the order they were made, not always in the envelopes' order (a
        # copy of an envelope receipted in an earlier burst is answered at once): each is
        # matched to its envelope by its message id, and every copy gets the first receipt.
        by_id = {mid: env for mid, env in sealed}
        first = {}
        for a in answers:
            mid = WIRE.ReceiptBody.FromString(WIRE.Receipt.FromString(a).body).message_id
            py2.check_receipt("rx.lee", by_id[mid], a)
            self.assertEqual(a, first.setdefault(mid, a))
        self.assertEqual(set(first), set(by_id))
        # Interleaved senders, as one burst may hold them: one tree per sender.
        bodies = [WIRE.ReceiptBody(version=1, message_id=os.urandom(16), envelope_hash=os.urandom(32),
                                   recipient="rx.lee", sender=s, stored_ms=1).SerializeToString()
                  for s in ("ms.diaz", "dr.adams", "ms.diaz", "dr.adams", "dr.adams")]
        groups = {}
        for body, receipt in px.sign_bodies(bodies):
            r = WIRE.Receipt.FromString(receipt)
            groups.setdefault(bytes(r.signature), []).append((WIRE.ReceiptBody.FromString(body).sender,
                                                              r.batch_size, r.leaf_index))
        self.assertEqual(sorted(groups.values()), [[("dr.adams", 3, 0), ("dr.adams", 3, 1), ("dr.adams", 3, 2)],
                                                   [("ms.diaz", 2, 0), ("ms.diaz", 2, 1)]])

    def test_receipts_that_arrive_together_are_checked_on_the_verifier_thread(self):
        """Receipts waiting behind one another on a peer's connection are handed to the
        verifier thread (a second core checks their signatures while the loop reads on);
        the stop line of the daemon's log counts where each was checked. The peer holds
        the receipts of 30 messages, then answers them all while the daemon is stopped
        (SIGSTOP), so that they wait together when it goes on."""
        b = self.node("dr.okafor", "psychiatrist", start=False)
        b.write_config("delivery", "retry_min_ms", "60000")  # no retransmission meanwhile
        b.start()
        py = self.pypeer()
        py.hold_receipts = True
        self.meet(b, py, serve=True)
        mids = [b.send("py.peer", "note %d" % i) for i in range(30)]
        wait_for(lambda: len(py.held) == 30, 30, "the 30 envelopes at the Python peer")
        b.proc.send_signal(signal.SIGSTOP)
        try:
            py.hold_receipts = False
            wait_for(lambda: len(py.received) == 30, 30, "the Python peer to answer")
            time.sleep(0.5)
        finally:
            b.proc.send_signal(signal.SIGCONT)
        for mid in mids:
            self.wait_delivered(b, mid, "py.peer")
        self.assertEqual(len(b.audit("receipt-rejected")), 0)
        b.stop()
        with open(b.log) as f:
            line = [x for x in f if "signatures checked on the verifier thread" in x][-1]
        m = re.search(r"receipts: (\d+) signatures checked on the verifier thread, (\d+) on the loop", line)
        self.assertIsNotNone(m, line)
        on_thread, on_loop = int(m.group(1)), int(m.group(2))
        self.assertEqual(on_thread + on_loop, 30, line)
        self.assertGreater(on_thread, 0, line)

    def test_python_progress_note_in_patient_timeline(self):
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer("ms.reyes", "therapist")
        self.meet(b, py)
        note = PAYLOAD.ProgressNote(patient=PAYLOAD.PatientRef(id="MRN-4471", label="J.D."),
                                    session_date="2026-11-20", modality=PAYLOAD.MODALITY_CBT,
                                    narrative="Sleeping better; practising behavioural activation.",
                                    phq9=PAYLOAD.Score(value=11), gad7=PAYLOAD.Score(value=8))
        mid, env = py.seal(["dr.okafor"], 2, note.SerializeToString())
        answer = py.deliver("dr.okafor", env)
        self.assertEqual(answer[0], "receipt", answer)
        timeline = b.cli("patient", "MRN-4471").stdout
        self.assertIn("PHQ-9", timeline)
        self.assertIn("11", timeline)
        self.assertIn(mid.hex(), timeline)

    def test_daemon_sends_python_reads_and_acknowledges(self):
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer("ms.reyes", "therapist")
        self.meet(b, py, serve=True)
        out = b.cli("med-change", "--to", "ms.reyes", "--patient", "MRN-4471", "--drug", "sertraline",
                    "--action", "increase", "--from", "50 mg", "--dose", "100 mg",
                    "--reason", "partial response at 6 weeks", "--monitor", "activation, GI upset")
        mid = out.stdout.strip().split()[-1]
        self.assertEqual(len(mid), 32, out.stdout)
        self.wait_delivered(b, mid, "ms.reyes")
        wait_for(lambda: py.received, 10, "the Python peer to hold the message")
        got = py.received[0]
        self.assertEqual(got.header.message_id.hex(), mid)
        self.assertEqual(got.header.sender, "dr.okafor")
        self.assertEqual(list(got.header.recipients), ["dr.okafor", "ms.reyes"])
        self.assertEqual(got.header.content_type, 3)
        self.assertEqual(got.payload.medication, "sertraline")
        self.assertEqual((got.payload.previous_dose, got.payload.new_dose), ("50 mg", "100 mg"))
        self.assertFalse(got.payload.ack_optional)
        self.assertEqual(got.payload.patient.id, "MRN-4471")
        # The receipt the Python peer issued is the one the daemon verified and stored.
        stored = b.query("SELECT receipt FROM deliveries WHERE message_id = ? AND recipient = 'ms.reyes'",
                         (bytes.fromhex(mid),))
        self.assertEqual(stored[0][0], got.receipt)
        self.assertEqual(len(b.audit("message-delivered")), 1)
        # The Python peer acknowledges; the daemon shows the loop closed.
        ack = PAYLOAD.Acknowledgement(acknowledged_id=bytes.fromhex(mid), comment="Will watch for activation.",
                                     acknowledged_hash=pypeer.envelope_hash(got.envelope))
        aid, env = py.seal(["dr.okafor"], 4, ack.SerializeToString(), thread_id=bytes.fromhex(mid))
        answer = py.deliver("dr.okafor", env)
        self.assertEqual(answer[0], "receipt", answer)
        shown = b.cli("show", mid).stdout
        self.assertIn("acknowledged by ms.reyes", shown)

    def test_co_recipient_cannot_take_a_message_id_first(self):
        """A co-recipient who learns a message id before another recipient has the message
        cannot send that recipient its own envelope under the id first: the id is derived
        from its sender and key commitment (PROTOCOL.md 5, 6 step 2), so the impostor is
        refused as MALFORMED, naming the id, and the genuine message is delivered and
        acknowledged as usual."""
        a, c, py = self.sender_and_two_recipients()
        mid = a.cli("med-change", "--to", "mal.lory,rx.chen", "--patient", "P-1", "--drug", "lithium",
                    "--action", "increase", "--from", "300 mg", "--dose", "600 mg", "--reason", "mania",
                    "--urgent").stdout.split()[-1]
        wait_for(lambda: py.received, 20, "the Python peer to receive the medication change")
        x = py.received[0].header.message_id
        self.assertEqual(x.hex(), mid)
        ct, pl = py.text("an unrelated note")
        _, fake = py.seal(["rx.chen", "dr.alvarez"], ct, pl, message_id=x)
        answer = py.deliver("rx.chen", fake)
        self.assertEqual(answer[:2], ("reject", WIRE.REJECT_MALFORMED), answer)
        self.assertIn("message id", answer[2])
        self.assertFalse(c.has_message(mid))
        refused = [r for r in c.audit("message-rejected") if r[5] == "mal.lory"]
        self.assertEqual([r[4] for r in refused], [mid.upper()])
        # rx.chen now takes dr.alvarez's connection: the genuine message arrives.
        c.add_peer(a)
        wait_for(lambda: a.delivery_state(mid, "rx.chen") == "delivered", 60, "the genuine message to arrive")
        c.cli("show", mid)
        c.cli("ack", mid, "--comment", "ok")
        wait_for(lambda: "acknowledged by rx.chen" in a.cli("show", mid).stdout, 30,
                 "dr.alvarez to count rx.chen's acknowledgement")

    def test_acknowledgement_of_another_envelope_under_the_same_id_does_not_count(self):
        """A sender can reuse its own id (same content key and time) for another envelope to
        other nodes; an acknowledgement of the one never counts for the other: it names the
        envelope's hash (PROTOCOL.md 8.4)."""
        a = self.node("dr.alvarez", "psychiatrist")
        c = self.node("rx.chen", "pharmacist")
        py = self.pypeer("mal.lory", "therapist")
        link(a, c)
        self.meet(a, py, serve=True)
        self.meet(c, py)
        ck, t = os.urandom(32), pypeer.now_ms()
        ct, pl = py.text("for rx.chen")
        x, m1 = py.seal(["rx.chen"], ct, pl, created_ms=t, content_key=ck)
        ct, pl = py.text("for both")
        x2, m2 = py.seal(["dr.alvarez", "rx.chen"], ct, pl, created_ms=t, content_key=ck)
        self.assertEqual(x, x2)
        self.assertEqual(py.deliver("rx.chen", m1)[0], "receipt")
        self.assertEqual(py.deliver("dr.alvarez", m2)[0], "receipt")
        # The same id again with other bytes, at the node that holds the first: CONFLICT.
        self.assertEqual(py.deliver("rx.chen", m2)[:2], ("reject", WIRE.REJECT_CONFLICT))
        a.cli("show", x.hex())
        a.cli("ack", x.hex(), "--comment", "seen")
        wait_for(lambda: [r for r in c.audit("message-rejected") if r[5] == "dr.alvarez"], 30,
                 "rx.chen to refuse dr.alvarez's acknowledgement of the other envelope")
        self.assertEqual(c.query("SELECT by FROM acks WHERE message_id = ?", (x,)), [])

    def test_daemon_refuses_other_messages_in_a_review_thread(self):
        a = self.node("dr.alvarez", "therapist")
        py = self.pypeer("rx.kim", "pharmacist")
        self.meet(a, py, serve=True)
        rid = a.cli("review", "open", "--with", "rx.kim", "--patient", "P-7", "--question", "Q?").stdout.strip()
        wait_for(lambda: py.received, 20, "the Python peer to receive the review")
        ct, pl = py.text("a note slipped into the review")
        _, env = py.seal(["dr.alvarez"], ct, pl, thread_id=bytes.fromhex(rid))
        answer = py.deliver("dr.alvarez", env)
        self.assertEqual(answer[:2], ("reject", WIRE.REJECT_POLICY), answer)
        self.assertIn("is a case review", answer[2])

    def test_daemon_keeps_reviews_within_their_participants(self):
        a = self.node("dr.alvarez", "therapist")
        py = self.pypeer("rx.kim", "pharmacist")
        self.meet(a, py, serve=True)
        salt = os.urandom(16)
        rid = pypeer.review_id("rx.kim", salt)
        others = ["dr.alvarez"] + ["dr.f%02d" % i for i in range(30)]
        for ident in others[1:] + ["dr.extra"]:  # nodes the daemon does not know: their wraps are never opened
            py.pair_keys[ident] = os.urandom(32)
        pr = PAYLOAD.PatientRef(id="P-9")

        def review(recipients, **kind):
            msg = PAYLOAD.CaseReview(review_id=rid, patient=pr, **kind)
            return py.deliver("dr.alvarez", py.seal(recipients, 5, msg.SerializeToString(), thread_id=rid)[1])

        opened = review(["rx.kim"] + others, open=PAYLOAD.ReviewOpen(question="Q?", participants=others, salt=salt))
        self.assertEqual(opened[0], "receipt", opened)
        answer = review(["rx.kim", "dr.alvarez", "dr.extra"], add=PAYLOAD.ReviewAdd(participant="dr.extra"))
        self.assertEqual(answer[:2], ("reject", WIRE.REJECT_POLICY), answer)
        self.assertIn("would have more than 32 participants", answer[2])
        # Nor may a closing give an action item to someone outside the review.
        item = PAYLOAD.ActionItem(owner="dr.extra", text="call the patient")
        answer = review(["rx.kim", "dr.alvarez"], close=PAYLOAD.ReviewClose(decision="done", actions=[item]))
        self.assertEqual(answer[:2], ("reject", WIRE.REJECT_POLICY), answer)
        self.assertIn("action owner 'dr.extra' does not take part", answer[2])
        item.owner = "dr.f07"
        answer = review(["rx.kim", "dr.alvarez"], close=PAYLOAD.ReviewClose(decision="done", actions=[item]))
        self.assertEqual(answer[0], "receipt", answer)

    def test_review_open_names_the_same_nodes_as_its_header(self):
        """The participants of a review are the open's header recipients (PROTOCOL.md 8.5);
        the ReviewOpen.participants every node shows must name the same nodes, or the
        open is refused (REJECT_POLICY): one node cannot be shown as invited while it
        never receives the review."""
        a = self.node("dr.alvarez", "therapist")
        py = self.pypeer("rx.kim", "pharmacist")
        self.meet(a, py, serve=True)
        py.pair_keys["dr.lee"] = os.urandom(32)  # a node the daemon does not know
        pr = PAYLOAD.PatientRef(id="P-9")

        def open_review(recipients, participants):
            salt = os.urandom(16)
            rid = pypeer.review_id("rx.kim", salt)
            msg = PAYLOAD.CaseReview(review_id=rid, patient=pr,
                                     open=PAYLOAD.ReviewOpen(question="Q?", participants=participants, salt=salt))
            return rid, py.deliver("dr.alvarez", py.seal(recipients, 5, msg.SerializeToString(), thread_id=rid)[1])

        rid, answer = open_review(["dr.alvarez"], ["dr.alvarez", "dr.lee"])
        self.assertEqual(answer[:2], ("reject", WIRE.REJECT_POLICY), answer)
        self.assertIn("participant 'dr.lee' is not a recipient of the open", answer[2])
        rid, answer = open_review(["dr.alvarez", "dr.lee"], ["dr.alvarez"])
        self.assertEqual(answer[:2], ("reject", WIRE.REJECT_POLICY), answer)
        self.assertIn("recipient 'dr.lee' is not among the open's participants", answer[2])
        self.assertEqual(a.json("review", "list")["reviews"], [])
        # The opener may list itself, and a name twice, as liaisond's own sending allows.
        rid, answer = open_review(["dr.alvarez", "dr.lee"], ["rx.kim", "dr.lee", "dr.alvarez", "dr.lee"])
        self.assertEqual(answer[0], "receipt", answer)
        self.assertEqual(sorted(a.json("review", "list")["reviews"][0]["participants"]),
                         ["dr.alvarez", "dr.lee", "rx.kim"])

    def test_co_participant_cannot_take_a_review_id_first(self):
        """A review id is its opener's (PROTOCOL.md 8.5). A participant invited to a review
        cannot open one of its own under that id at another participant not reached yet,
        nor make a message's id a review there (which would turn the conversation into a
        review's thread); an add by a participant that arrives before the open names the
        opener and salt, and the open is then welcome."""
        a, c, py = self.sender_and_two_recipients()
        pr = PAYLOAD.PatientRef(id="P-3")
        rid = a.json("review", "open", "--with", "mal.lory,rx.chen", "--patient", "P-3",
                     "--question", "Taper?")["review_id"]
        wait_for(lambda: py.received, 20, "the Python peer to receive the open")
        got = py.received[0].payload
        self.assertEqual(got.review_id.hex(), rid)
        self.assertEqual(pypeer.review_id("dr.alvarez", got.open.salt).hex(), rid)
        # An open of mal.lory's own under dr.alvarez's review id, whatever the salt.
        mine = PAYLOAD.CaseReview(review_id=bytes.fromhex(rid), patient=pr,
                                  open=PAYLOAD.ReviewOpen(question="Mine?", participants=["rx.chen"],
                                                          salt=got.open.salt))
        answer = py.deliver("rx.chen", py.seal(["rx.chen"], 5, mine.SerializeToString(),
                                               thread_id=bytes.fromhex(rid))[1])
        self.assertEqual(answer[:2], ("reject", WIRE.REJECT_POLICY), answer)
        self.assertIn("is not the one the opener 'mal.lory' and the open's salt give", answer[2])
        # An add that claims a message's id for a review, naming an opener and salt that do not give it.
        note = a.send("mal.lory,rx.chen", "a conversation")
        wait_for(lambda: len(py.received) == 2, 20, "the Python peer to receive the note")
        fake = PAYLOAD.CaseReview(review_id=bytes.fromhex(note), patient=pr,
                                  add=PAYLOAD.ReviewAdd(participant="rx.chen", opened_by="dr.alvarez",
                                                        review_salt=got.open.salt))
        answer = py.deliver("rx.chen", py.seal(["rx.chen"], 5, fake.SerializeToString(),
                                               thread_id=bytes.fromhex(note))[1])
        self.assertEqual(answer[:2], ("reject", WIRE.REJECT_POLICY), answer)
        self.assertIn("the add does not name an opener and salt that give this review id", answer[2])
        # A genuine add (the opener and salt as mal.lory holds them) reaches rx.chen before
        # the open: rx.chen learns the review, and the open, once it comes, is welcome.
        add = PAYLOAD.CaseReview(review_id=bytes.fromhex(rid), patient=pr,
                                 add=PAYLOAD.ReviewAdd(participant="rx.chen", opened_by="dr.alvarez",
                                                       question="Taper?", review_salt=got.open.salt))
        answer = py.deliver("rx.chen", py.seal(["rx.chen", "dr.alvarez"], 5, add.SerializeToString(),
                                               thread_id=bytes.fromhex(rid))[1])
        self.assertEqual(answer[0], "receipt", answer)
        c.add_peer(a)
        wait_for(lambda: a.delivery_state(note, "rx.chen") == "delivered", 60, "the note to reach rx.chen")
        self.wait_delivered(a, a.query("SELECT lower(hex(id)) FROM messages WHERE hex(thread_id) = upper(?)"
                                       " AND content_type = 5", (rid,))[0][0], "rx.chen")
        reviews = c.json("review", "list")["reviews"]
        self.assertEqual([(r["id"], r["opened_by"]) for r in reviews], [(rid, "dr.alvarez")])
        reply = a.send("rx.chen", "a reply in the conversation", extra=("--thread", note))
        self.wait_delivered(a, reply, "rx.chen")

    def test_review_messages_that_overtake_the_open_wait_and_a_thread_cannot_shut_it_out(self):
        """PROTOCOL.md 8.5. A participant that puts an ordinary message in a review's thread
        at another participant before the open reaches it does not lock that participant
        out of the review (the open is welcome; review show lists only the review's own
        messages); a review message that overtakes the open is answered TRY_LATER and
        delivered once the open is there, not refused for good."""
        a, c, py = self.sender_and_two_recipients()
        rid = a.json("review", "open", "--with", "mal.lory,rx.chen", "--patient", "P-3",
                     "--question", "Taper?")["review_id"]
        wait_for(lambda: py.received, 20, "the Python peer to receive the open")
        ct, body = py.text("copied into the review's thread")
        answer = py.deliver("rx.chen", py.seal(["rx.chen"], ct, body, thread_id=bytes.fromhex(rid))[1])
        self.assertEqual(answer[0], "receipt", answer)
        reply = PAYLOAD.CaseReview(review_id=bytes.fromhex(rid), patient=PAYLOAD.PatientRef(id="P-3"),
                                   reply=PAYLOAD.ReviewReply(text="Agree with the taper."))
        _, early = py.seal(["rx.chen", "dr.alvarez"], 5, reply.SerializeToString(), thread_id=bytes.fromhex(rid))
        answer = py.deliver("rx.chen", early)
        self.assertEqual(answer[:2], ("reject", WIRE.REJECT_TRY_LATER), answer)
        self.assertIn("is not known here yet", answer[2])
        c.add_peer(a)
        open_mid = a.query("SELECT lower(hex(id)) FROM messages WHERE hex(thread_id) = upper(?)"
                           " AND content_type = 5", (rid,))[0][0]
        self.wait_delivered(a, open_mid, "rx.chen")
        self.assertEqual([r["id"] for r in c.json("review", "list")["reviews"]], [rid])
        self.assertEqual(py.deliver("rx.chen", early)[0], "receipt")  # the retry, once the open is there
        later = a.cli("review", "reply", rid, "-", input="Starting Monday.")
        self.assertEqual(later.returncode, 0, later.stderr)
        mine = a.query("SELECT lower(hex(id)) FROM messages WHERE hex(thread_id) = upper(?) AND content_type = 5"
                       " ORDER BY created_ms DESC LIMIT 1", (rid,))[0][0]
        self.wait_delivered(a, mine, "rx.chen")
        shown = c.cli("review", "show", rid).stdout
        self.assertIn("Agree with the taper.", shown)
        self.assertIn("Starting Monday.", shown)
        self.assertNotIn("copied into the review's thread", shown)
        # ...and the thread takes no more ordinary messages.
        answer = py.deliver("rx.chen", py.seal(["rx.chen"], ct, body, thread_id=bytes.fromhex(rid))[1])
        self.assertEqual(answer[:2], ("reject", WIRE.REJECT_POLICY), answer)

    def test_an_add_keeps_the_review_whole_and_within_32(self):
        """PROTOCOL.md 8.5: an add to a review a node knows must be addressed to the
        participant it adds; its other recipients join as participants (another add may
        have brought them in meanwhile), recorded at the receiving node's own time, and no
        add may take the review past 32 participants: the list is never cut short, so no
        add, back-dated or not, pushes a participant off it."""
        a, c, py = self.sender_and_two_recipients()
        c.add_peer(a)
        rid = a.json("review", "open", "--with", "mal.lory,rx.chen", "--patient", "P-3",
                     "--question", "Taper?")["review_id"]
        open_mid = a.query("SELECT lower(hex(id)) FROM messages WHERE hex(thread_id) = upper(?)"
                           " AND content_type = 5", (rid,))[0][0]
        self.wait_delivered(a, open_mid, "rx.chen")
        before = sorted(c.json("review", "list")["reviews"][0]["participants"])
        self.assertEqual(before, ["dr.alvarez", "mal.lory", "rx.chen"])
        pr = PAYLOAD.PatientRef(id="P-3")

        def add(participant, others, days_ago=0):
            for j in others:
                py.pair_keys.setdefault(j, os.urandom(32))
            msg = PAYLOAD.CaseReview(review_id=bytes.fromhex(rid), patient=pr,
                                     add=PAYLOAD.ReviewAdd(participant=participant))
            _, env = py.seal(["rx.chen", "dr.alvarez"] + others, 5, msg.SerializeToString(),
                             thread_id=bytes.fromhex(rid), created_ms=pypeer.now_ms() - days_ago * 86400_000)
            return py.deliver("rx.chen", env)

        stray = add("dr.new", [])
        self.assertEqual(stray[:2], ("reject", WIRE.REJECT_POLICY), stray)
        self.assertIn("the add is not addressed to 'dr.new'", stray[2])
        first = ["aa.%02d" % i for i in range(20)]
        self.assertEqual(add("aa.00", first, days_ago=2)[0], "receipt")  # 23 participants
        listed = c.json("review", "list")["reviews"][0]["participants"]
        self.assertEqual(sorted(listed), sorted(before + first))
        self.assertEqual(listed[:3], before, "back-dated, the add's participants still come after the others")
        more = ["bb.%02d" % i for i in range(10)]
        answer = add("bb.00", more)  # 33
        self.assertEqual(answer[:2], ("reject", WIRE.REJECT_POLICY), answer)
        self.assertIn("would have more than 32 participants", answer[2])
        self.assertEqual(sorted(c.json("review", "list")["reviews"][0]["participants"]), sorted(before + first))
        # A participant not in rx.chen's directory is named when rx.chen replies, nothing sent.
        reply = c.cli("review", "reply", rid, "-", input="Noted.", check=False)
        self.assertEqual(reply.returncode, 3, reply.stderr)
        self.assertIn("aa.", reply.stderr)

    def test_card_endpoints_strict_when_added_lenient_when_stored(self):
        a = self.node("dr.alvarez", "therapist")
        old = pypeer.PyPeer(WIRE, PAYLOAD, "rx.old", "Old Card", "pharmacist", "tcp://127.0.0.1:0%d" % free_port())
        self.peers.append(old)
        r = a.cli("peer", "add", "-", input=old.card_text, check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("the port must be written without leading zeros (ask them for a new card)", r.stderr)
        # A card stored by an earlier version, before the rule, is still loaded and listed.
        a.stop()
        con = sqlite3.connect(a.db_path)
        con.execute("INSERT INTO peers(id, card, added_ms) VALUES ('rx.old', ?, 1)", (old.card_text,))
        con.commit()
        con.close()
        a.start()
        self.assertIn("rx.old", a.cli("peer", "list").stdout)

    def test_card_with_a_direction_control_in_its_name_is_refused(self):
        """U+202E in a card's name makes "Dr. <RLO>rotkafO" read "Dr. Ofak tor" backwards:
        such a card is not added (nor made by liaison init); one stored before the rule
        is still loaded."""
        a = self.node("dr.alvarez", "therapist")
        odd = pypeer.PyPeer(WIRE, PAYLOAD, "rx.odd", "Dr. \u202erotkafO", "pharmacist",
                            "tcp://127.0.0.1:%d" % free_port())
        self.peers.append(odd)
        r = a.cli("peer", "add", "-", input=odd.card_text, check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("the card of 'rx.odd': its name holds the invisible direction control U+202E", r.stderr)
        self.assertNotIn("rx.odd", a.cli("peer", "list").stdout)
        self.assertEqual(a.audit("peer-added")[-1][3], "refused")
        r = subprocess.run([LIAISON, "--home", os.path.join(self.base, "odd"), "init", "--id", "dr.odd", "--name",
                            "Dr. \u202erotkafO", "--role", "pcp", "--listen", "tcp://127.0.0.1:%d" % free_port()],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("name holds the invisible direction control U+202E", r.stderr)
        a.stop()
        con = sqlite3.connect(a.db_path)
        con.execute("INSERT INTO peers(id, card, added_ms) VALUES ('rx.odd', ?, 1)", (odd.card_text,))
        con.commit()
        con.close()
        a.start()
        self.assertIn("rx.odd", a.cli("peer", "list").stdout)

    def test_message_to_daemon_and_python_peer(self):
        a = self.node("dr.alvarez", "therapist")
        b = self.node("dr.okafor", "psychiatrist")
        link(a, b)
        py = self.pypeer("rx.kim", "pharmacist")
        self.meet(a, py, serve=True)
        mid = a.send("dr.okafor,rx.kim", "Case review Thursday 14:00.")
        self.wait_delivered(a, mid, "dr.okafor")
        self.wait_delivered(a, mid, "rx.kim")
        wait_for(lambda: py.received, 10, "the Python peer to hold the message")
        self.assertEqual(py.received[0].payload.text, "Case review Thursday 14:00.")
        self.assertIn("Case review Thursday 14:00.", b.cli("show", mid).stdout)

    def test_daemon_refuses_what_the_spec_refuses(self):
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer()
        self.meet(b, py)
        ct, payload = py.text("hello")
        # Signature over other bytes.
        mid, env = py.seal(["dr.okafor"], ct, payload)
        e = WIRE.Envelope()
        e.ParseFromString(env)
        e.signature = bytes(64)
        self.assertEqual(py.deliver("dr.okafor", e.SerializeToString())[:2], ("reject", WIRE.REJECT_SIGNATURE))
        # Not addressed to the daemon.
        mid, env = py.seal([], ct, payload)
        self.assertEqual(py.deliver("dr.okafor", env)[:2], ("reject", WIRE.REJECT_NOT_RECIPIENT))
        # Too far in the future.
        mid, env = py.seal(["dr.okafor"], ct, payload, created_ms=pypeer.now_ms() + 3600_000)
        self.assertEqual(py.deliver("dr.okafor", env)[:2], ("reject", WIRE.REJECT_CLOCK))
        # Unknown content type.
        mid, env = py.seal(["dr.okafor"], 99, payload)
        self.assertEqual(py.deliver("dr.okafor", env)[:2], ("reject", WIRE.REJECT_CONTENT))
        # Same id (same content key and time), other bytes.
        ck, t = os.urandom(32), pypeer.now_ms()
        mid, env = py.seal(["dr.okafor"], ct, payload, created_ms=t, content_key=ck)
        self.assertEqual(py.deliver("dr.okafor", env)[0], "receipt")
        mid2, env2 = py.seal(["dr.okafor"], ct, py.text("other")[1], created_ms=t, content_key=ck)
        self.assertEqual(mid2, mid)
        self.assertEqual(py.deliver("dr.okafor", env2)[:2], ("reject", WIRE.REJECT_CONFLICT))
        # An id that is not the one the header gives (section 5).
        _, env3 = py.seal(["dr.okafor"], ct, payload, message_id=os.urandom(16))
        self.assertEqual(py.deliver("dr.okafor", env3)[:2], ("reject", WIRE.REJECT_MALFORMED))
        self.assertEqual(len(b.audit("message-rejected")), 6)

    def test_auditor_recomputes_every_entry_from_the_log_and_the_export(self):
        """An auditor with stock protobuf (strict proto3: a string field must be UTF-8) reads
        the log over the audit socket, and the JSON lines export, and recomputes every entry
        hash from either (PROTOCOL.md 11, 11.6): including an entry of a content type the node
        does not know, and entries of local requests that quoted bytes which are not UTF-8
        (the quoted value masked, as every value a refused request typed is)."""
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer()
        self.meet(b, py)
        mid, env = py.seal(["dr.okafor"], 99, py.text("hello")[1])
        self.assertEqual(py.deliver("dr.okafor", env)[:2], ("reject", WIRE.REJECT_CONTENT))
        ctx = zmq.Context.instance()
        control = ctx.socket(zmq.DEALER)
        control.setsockopt(zmq.LINGER, 0)
        control.connect("ipc://" + os.path.join(b.home, "run", "control.sock"))
        # Request{request_id 1, peer_remove {id "b\xffb"}}: Python cannot even build it.
        control.send(b"\x08\x01\x7a\x05\x0a\x03b\xffb")
        self.assertTrue(control.poll(10000))
        answer = CONTROL.Response.FromString(control.recv())
        self.assertEqual(answer.code, CONTROL.NOT_FOUND)
        self.assertIn("peer 'b?b' is not in the directory", answer.error)
        control.close()
        # The CLI passes an id that is not UTF-8 on to the daemon, which refuses it.
        r = subprocess.run([os.fsencode(LIAISON), b"--home", os.fsencode(b.home), b"fingerprint", b"caf\xc3"],
                           capture_output=True)
        self.assertNotEqual(r.returncode, 0)

        audit = ctx.socket(zmq.DEALER)
        audit.setsockopt(zmq.LINGER, 0)
        audit.connect("ipc://" + os.path.join(b.home, "run", "audit.sock"))
        audit.send(CONTROL.Request(request_id=2, audit_log=CONTROL.AuditQuery()).SerializeToString())
        self.assertTrue(audit.poll(10000))
        entries = CONTROL.Response.FromString(audit.recv()).audit_entries.entries
        # A message id that is not 16 bytes is refused by the daemon itself (the CLI
        # refuses it before asking).
        audit.send(CONTROL.Request(request_id=3, audit_log=CONTROL.AuditQuery(message_id=b"\x01" * 5))
                   .SerializeToString())
        self.assertTrue(audit.poll(10000))
        answer = CONTROL.Response.FromString(audit.recv())
        self.assertEqual(answer.code, CONTROL.BAD_REQUEST)
        self.assertIn("not a message id", answer.error)
        audit.close()
        prev = bytes(32)
        for e in entries:
            h = audit_entry_hash(prev, e.seq, e.time_ms, e.actor, e.action, e.outcome, e.message_id, e.peer,
                                 e.content_type, e.patient_tag, e.details)
            self.assertEqual(h, e.entry_hash, "entry %d" % e.seq)
            prev = h
        self.assertIn(99, [e.content_type for e in entries])
        # The value the request quoted is masked in the log (a typed value may be a patient's).
        self.assertTrue([e for e in entries if e.details == "peer-remove: peer '?' is not in the directory (see:"
                         " liaison peer list)"], [e.details for e in entries])
        self.assertFalse([e for e in entries if "b?b" in e.details or "caf" in e.details])

        rows = [json.loads(x) for x in b.cli("audit", "export").stdout.splitlines()]
        self.assertEqual([r["seq"] for r in rows], list(range(1, len(rows) + 1)))
        self.assertGreater(len(rows), len(entries))
        prev = bytes(32)
        for r in rows:
            h = audit_entry_hash(prev, r["seq"], r["time_ms"], r["actor"], r["action"], r["outcome"],
                                 bytes.fromhex(r["message_id"] or ""), r["peer"] or "", r["content_type_number"],
                                 bytes.fromhex(r["patient_tag"] or ""), r["details"] or "")
            self.assertEqual(h.hex(), r["entry_hash"], r)
            prev = h
        unknown = [r for r in rows if r["content_type_number"] == 99]
        self.assertEqual([r["content_type"] for r in unknown], ["unknown"])

    def test_card_with_an_unusable_transport_key_is_refused(self):
        """A validly signed card whose transport key is a low-order point (no CurveZMQ
        handshake with it can complete) is refused at peer add and audited, like one whose
        encryption key is (PROTOCOL.md 3); it used to be stored as a peer never reachable."""
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer()
        for low in (bytes(32), b"\x01" + bytes(31)):
            body = WIRE.CardBody(version=1, id="py.peer", name="Py Peer", role="pharmacist", endpoint=py.endpoint,
                                 sign_pk=py.sign_pk, enc_pk=py.enc_pk, transport_pk=low,
                                 created_ms=pypeer.now_ms()).SerializeToString()
            sig = py.signer.sign(pypeer.D("liaison-v1/card") + body).signature
            text = pypeer.CARD_PREFIX + base64.urlsafe_b64encode(
                WIRE.Card(body=body, signature=sig).SerializeToString()).rstrip(b"=").decode()
            p = b.cli("peer", "add", "-", input=text, check=False)
            self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
            self.assertIn("unusable transport key", p.stderr)
        self.assertEqual(b.json("peer", "list")["peers"], [])
        self.assertEqual([(r[3], r[5], r[6]) for r in b.audit("peer-added")],
                         [("refused", "py.peer", "unusable transport key (low-order point)")] * 2)
        b.cli("peer", "add", "-", input=py.card_text)
        self.assertEqual([p["id"] for p in b.json("peer", "list")["peers"]], ["py.peer"])

    def test_python_peer_refuses_daemon_not_in_its_directory(self):
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer()
        b.cli("peer", "add", "-", input=py.card_text)  # the daemon knows the peer, not the other way round
        py.serve()
        mid = b.send("py.peer", "hello?")
        time.sleep(3)
        self.assertEqual(b.delivery_state(mid, "py.peer"), "queued")
        self.assertEqual(py.received, [])
        # Once the Python peer adds the card, the queued message goes through.
        py.add_peer(b.cli("card").stdout)
        self.wait_delivered(b, mid, "py.peer", timeout=90)
        self.assertEqual(py.received[0].payload.text, "hello?")

    def test_python_witnesses_daemon_checkpoints(self):
        b = self.node("dr.okafor", "psychiatrist", start=False)
        b.write_config("audit", "checkpoint_entries", "4")
        b.start()
        py = self.pypeer()
        self.meet(b, py, serve=True)

        def latest():
            return b.query("SELECT max(tree_size) FROM checkpoints")[0][0] or 0

        def witnessed_latest():
            return latest() > 0 and py.witnessed.get("dr.okafor", (0,))[0] == latest()

        for rnd in range(3):
            for i in range(6):
                b.send("py.peer", "round %d message %d" % (rnd, i))
            wait_for(lambda: len(py.received) == 6 * (rnd + 1), 30, "the messages at the Python peer")
            wait_for(witnessed_latest, 30, "the Python peer to witness the daemon's latest checkpoint")

        accepted = [size for (_, size, ok, _) in py.witness_log if ok]
        self.assertGreater(len(set(accepted)), 1, py.witness_log)  # it grew through consistency proofs
        self.assertEqual([w for w in py.witness_log if not w[2] and w[3] != "proof from wrong size"], [])
        self.assertEqual(b.json("status")["alarms"], [])
        self.assertEqual(b.audit("rollback-detected"), [])


    def test_python_auditor_checks_an_inclusion_proof(self):
        """A third party given `liaison audit prove`'s file and the node's card checks it
        with PROTOCOL.md 11.6 alone (the entry read strictly as E, the note's signature under
        the card's key, the RFC 9162 path), and reads what the entry records: the same as
        the node's audit log and as `verify-proof`. A changed entry fails both."""
        b = self.node("dr.okafor", "psychiatrist", start=False)
        b.write_config("audit", "checkpoint_entries", "4")
        b.start()
        py = self.pypeer()
        self.meet(b, py, serve=True)
        for i in range(5):
            b.send("py.peer", "message %d" % i)
        wait_for(lambda: len(py.received) == 5, 30, "the messages at the Python peer")
        wait_for(lambda: (b.query("SELECT max(tree_size) FROM checkpoints")[0][0] or 0) >= 8, 30, "a checkpoint")
        card = pypeer.Card(WIRE, b.cli("card").stdout)
        logged = {e["seq"]: e for e in b.json("audit", "log")["entries"]}

        def decode(e):
            """E (PROTOCOL.md 11), every length checked, nothing left over."""
            at = [0]

            def take(n):
                if at[0] + n > len(e):
                    raise ValueError("E ends early")
                at[0] += n
                return e[at[0] - n:at[0]]

            def u32():
                return struct.unpack(">I", take(4))[0]

            def lp():
                return take(u32())

            seq, time_ms = struct.unpack(">QQ", take(16))
            f = dict(seq=seq, time_ms=time_ms, actor=lp().decode(), action=lp().decode(), outcome=lp().decode(),
                     message_id=lp().hex() or None, peer=lp().decode() or None, content_type_number=u32(),
                     patient_tag=lp().hex() or None, details=lp().decode() or None)
            if at[0] != len(e) or (f["message_id"] and len(f["message_id"]) != 32):
                raise ValueError("not E")
            return f

        def check(proof):
            size, root, _ = pypeer.parse_checkpoint(proof["checkpoint"], card.id, card.sign_pk)
            e = bytes.fromhex(proof["entry"])
            fields = decode(e)
            leaf = hashlib.sha256(b"\x00" + e).digest()
            path = [bytes.fromhex(h) for h in proof["path"]]
            ok = (fields["seq"] == proof["seq"] == proof["leaf_index"] + 1 and proof["seq"] <= size
                  and pypeer.inclusion_root(leaf, proof["seq"] - 1, size, path) == root)
            return ok, fields

        path = os.path.join(self.base, "proof.json")
        for seq in (1, 3, 6):
            proof = json.loads(b.cli("audit", "prove", str(seq)).stdout)
            self.assertEqual(proof["format"], "liaison-inclusion-proof-v1")
            ok, fields = check(proof)
            self.assertTrue(ok, seq)
            want = {k: logged[seq][k] for k in fields}
            self.assertEqual(fields, want)
            with open(path, "w") as f:
                json.dump(proof, f)
            shown = b.json("audit", "verify-proof", path, "--card", b.card_file)
            self.assertEqual({k: shown["entry_fields"][k] for k in fields}, want)
            # The same entry with another time: both verifiers refuse it.
            e = bytearray(bytes.fromhex(proof["entry"]))
            e[15] ^= 1
            changed = dict(proof, entry=e.hex())
            self.assertFalse(check(changed)[0])
            with open(path, "w") as f:
                json.dump(changed, f)
            r = b.cli("audit", "verify-proof", path, check=False)
            self.assertEqual(r.returncode, 4, r.stdout + r.stderr)

    def test_verify_proof_holds_a_card_to_its_own_log(self):
        """A card vouches for the log of its own node only: a proof whose checkpoint names
        dr.okafor's log but is signed with py.peer's key, checked with py.peer's card, does
        not hold (the key signs whatever origin its holder writes); the same proof of
        py.peer's own log does."""
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer()
        card = os.path.join(self.base, "py.card")
        with open(card, "w") as f:
            f.write(py.card_text + "\n")

        def lp(x):
            return struct.pack(">I", len(x)) + x
        e = (struct.pack(">QQ", 1, 1700000000000) + lp(b"daemon") + lp(b"node-created") + lp(b"ok") + lp(b"")
             + lp(b"") + struct.pack(">I", 0) + lp(b"") + lp(b""))
        root = hashlib.sha256(b"\x00" + e).digest()
        path = os.path.join(self.base, "proof.json")
        for origin, holds in (("dr.okafor", False), ("py.peer", True)):
            note = pypeer.sign_checkpoint(origin, py.signer, 1, root, 1700000000001)
            with open(path, "w") as f:
                json.dump({"format": "liaison-inclusion-proof-v1", "entry": e.hex(), "seq": 1, "leaf_index": 0,
                           "path": [], "checkpoint": note, "sign_pk": py.sign_pk.hex()}, f)
            r = b.cli("audit", "verify-proof", path, "--card", card, check=False)
            if holds:
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("entry 1 is in the audit log of py.peer", r.stdout)
            else:
                self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
                self.assertIn("the checkpoint is of the log of dr.okafor, but the card given is py.peer's",
                              r.stdout + r.stderr)

    def test_witness_claim_without_a_signed_note_is_no_rollback(self):
        """A witness that says it holds a larger checkpoint of ours than our log, without
        showing a note this node signed at that size, makes no rollback alarm (11.3)."""
        b = self.node("dr.okafor", "psychiatrist", start=False)
        b.write_config("audit", "checkpoint_entries", "4")
        b.start()
        py = self.pypeer()
        py.witness_overclaim = 1000
        self.meet(b, py, serve=True)
        for i in range(6):
            b.send("py.peer", "message %d" % i)
        wait_for(lambda: len(py.received) == 6, 30, "the messages at the Python peer")
        wait_for(lambda: py.witness_log, 30, "a witness request at the Python peer")
        wait_for(lambda: "does not show a note this node signed" in open(b.log).read(), 30,
                 "the daemon to ignore the claim")
        self.assertEqual(b.audit("rollback-detected"), [])
        self.assertEqual(b.json("status")["alarms"], [])

    def test_daemon_witnesses_a_python_log_from_nothing_held(self):
        """11.3, as the daemon's witness: with nothing held it stores the first checkpoint
        it is offered, whatever old_size says, an empty log's (size 0) too; and raises no
        alarm. Then it holds the peer to that checkpoint."""
        b = self.node("dr.okafor", "psychiatrist")
        py = self.pypeer()
        self.meet(b, py)
        empty = hashlib.sha256(b"").digest()
        leaves = [hashlib.sha256(b"\x00" + bytes([i])).digest() for i in range(2)]
        two = hashlib.sha256(b"\x01" + leaves[0] + leaves[1]).digest()
        t = int(time.time() * 1000)
        note0 = pypeer.sign_checkpoint("py.peer", py.signer, 0, empty, t)
        for _ in range(2):  # again: the same checkpoint, still no alarm
            r = py.ask_witness("dr.okafor", note0, 0)
            self.assertTrue(r.accepted, r)
            self.assertEqual((r.held_size, r.held_checkpoint), (0, ""))
        # Any log extends the empty one: no proof needed.
        note2 = pypeer.sign_checkpoint("py.peer", py.signer, 2, two, t + 1)
        r = py.ask_witness("dr.okafor", note2, 0)
        self.assertTrue(r.accepted, r)
        self.assertEqual((r.held_size, r.held_checkpoint), (2, note2))
        # Now it holds 2: another log of 2 entries is a fork.
        forked = pypeer.sign_checkpoint("py.peer", py.signer, 2, hashlib.sha256(b"other").digest(), t + 2)
        r = py.ask_witness("dr.okafor", forked, 2)
        self.assertFalse(r.accepted, r)
        self.assertIn("forked or rewritten", r.reason)
        self.assertEqual(len(b.query("SELECT * FROM witness_alarms WHERE peer = 'py.peer'")), 1)
        # An offer that names an old size the peer thinks is held, to a witness that holds
        # nothing (its state lost, say): stored as a first checkpoint.
        b.edit_stopped("DELETE FROM witnessed")
        r = py.ask_witness("dr.okafor", note2, 1, proof=[leaves[1]])
        self.assertTrue(r.accepted, r)
        self.assertEqual(r.held_size, 2)
        self.assertEqual(len(b.query("SELECT * FROM witness_alarms WHERE peer = 'py.peer'")), 1)


    def test_a_peer_that_never_proves_its_log_extends_the_held_checkpoint_is_an_alarm(self):
        """11.3: a witness asked for a proof from the size it holds, and offered larger
        checkpoints without it (at least 3, over witness_proof_wait_s), raises an alarm
        once per checkpoint held; a proof that comes in time restarts the count."""
        b = self.node("dr.okafor", "psychiatrist", start=False)
        b.write_config("audit", "witness_proof_wait_s", "2")
        b.start()
        py = self.pypeer()
        self.meet(b, py)
        leaves = [hashlib.sha256(b"\x00" + bytes([i])).digest() for i in range(3)]
        two = hashlib.sha256(b"\x01" + leaves[0] + leaves[1]).digest()
        three = hashlib.sha256(b"\x01" + two + leaves[2]).digest()
        t = int(time.time() * 1000)

        def note(size, root, at):
            return pypeer.sign_checkpoint("py.peer", py.signer, size, root, at)

        def alarms():
            return b.query("SELECT what FROM witness_alarms WHERE peer = 'py.peer'")

        self.assertTrue(py.ask_witness("dr.okafor", note(2, two, t), 0).accepted)
        # Larger checkpoints (made up: nothing can check them without a proof), none
        # with the proof from 2: refused, and not yet an alarm, however long it takes.
        for i in range(2):
            r = py.ask_witness("dr.okafor", note(10 + i, hashlib.sha256(b"x%d" % i).digest(), t + 1 + i), 0)
            self.assertFalse(r.accepted, r)
            self.assertEqual(r.held_size, 2)
        time.sleep(2.5)
        # The proof, late but before a third unproven offer: stored, the count restarts.
        r = py.ask_witness("dr.okafor", note(3, three, t + 3), 2, proof=[leaves[2]])
        self.assertTrue(r.accepted, r)
        self.assertEqual(r.held_size, 3)
        for i in range(3):
            r = py.ask_witness("dr.okafor", note(20 + i, hashlib.sha256(b"y%d" % i).digest(), t + 4 + i), 0)
            self.assertFalse(r.accepted, r)
        self.assertEqual(alarms(), [])  # three, but all within 2 s of the first
        time.sleep(2.5)
        r = py.ask_witness("dr.okafor", note(30, hashlib.sha256(b"z").digest(), t + 10), 1)
        self.assertFalse(r.accepted, r)
        self.assertEqual(r.held_size, 3)
        got = alarms()
        self.assertEqual(len(got), 1, got)
        self.assertIn("never the proof that they extend the one at 3 entries", got[0][0])
        self.assertIn("offered 4 checkpoints", got[0][0])
        self.assertEqual(len(b.audit("witness-alarm")), 1)
        self.assertIn("never the proof", json.dumps(b.json("status")["alarms"]))
        # Recorded once per checkpoint held: more of the same add nothing.
        py.ask_witness("dr.okafor", note(31, hashlib.sha256(b"w").digest(), t + 11), 0)
        self.assertEqual(len(alarms()), 1)
        self.assertEqual(len(b.audit("witness-alarm")), 1)

    def test_witness_replies_nobody_asked_for_are_ignored(self):
        """11.3: a node acts on a WitnessReply only as the answer to an offer it sent. A
        witness that adds replies of its own, each asking for a proof from another size,
        does not make the node build and send proofs without end."""
        b = self.node("dr.okafor", "psychiatrist", start=False)
        b.write_config("audit", "checkpoint_entries", "4")
        b.start()
        py = self.pypeer()
        py.witness_extra_replies = 3
        self.meet(b, py, serve=True)
        for i in range(6):
            b.send("py.peer", "message %d" % i)
        wait_for(lambda: len(py.received) == 6, 30, "the messages at the Python peer")
        wait_for(lambda: py.witness_log, 30, "a witness request at the Python peer")
        time.sleep(2)
        offers = len(py.witness_log)
        checkpoints = b.query("SELECT count(*) FROM checkpoints")[0][0]
        # One offer per checkpoint signed, per connection, and one more per refusal that
        # named another size: a handful, not a storm.
        self.assertLessEqual(offers, 2 * checkpoints + 2, py.witness_log[:20])
        time.sleep(2)
        self.assertEqual(len(py.witness_log), offers, py.witness_log[offers:offers + 20])
        with open(b.log) as f:
            self.assertIn("sent a witness reply to no checkpoint offered; ignored", f.read())
        self.assertEqual(b.json("status")["alarms"], [])


    def test_a_witness_showing_a_checkpoint_the_log_no_longer_has_is_heard_inside_a_batch(self):
        """11.3: a witness that refuses the node's checkpoint and shows a note the node
        signed at a size its log has makes the node compare that note's root with its own
        first entries, even when the reply is read while the node's batch transaction is
        open (here the witness sends a TRY_LATER before each reply, which the node
        records in the same turn). A log restored from an older copy and grown past the
        note's size no longer has its root: rollback-detected."""
        b = self.node("dr.okafor", "psychiatrist", start=False)
        b.write_config("audit", "checkpoint_entries", "4")
        b.start()
        py = self.pypeer()
        self.meet(b, py, serve=True)
        mid = b.send("py.peer", "before the copy")
        wait_for(lambda: py.witnessed.get("dr.okafor"), 30, "the Python witness to hold a checkpoint")
        b.stop()
        old = os.path.join(self.base, "old.db")
        shutil.copy(b.db_path, old)
        b.start()
        for i in range(6):
            b.send("py.peer", "after the copy %d" % i)
        copy_size = sqlite3.connect(old).execute("SELECT max(seq) FROM audit").fetchone()[0]
        wait_for(lambda: py.witnessed["dr.okafor"][0] > copy_size + 4, 30, "the witness to hold a later checkpoint")
        shown = py.witnessed["dr.okafor"][0]
        # b is restored from the older copy; the witness answers nothing until b's log
        # has grown past the checkpoint it holds (so that b learns of it by the root).
        py.witness_silent = True
        b.stop()
        for suffix in ("-wal", "-shm"):
            if os.path.exists(b.db_path + suffix):
                os.remove(b.db_path + suffix)
        shutil.copy(old, b.db_path)
        b.start()
        i = 0
        while (b.query("SELECT max(tree_size) FROM checkpoints")[0][0] or 0) <= shown + 4:
            b.send("py.peer", "after the restore %d" % i)
            i += 1
            self.assertLess(i, 200)
        self.assertEqual(b.audit("rollback-detected"), [])
        # The witness's refusals are held, then sent while b is stopped, so that b reads
        # each right after a Reject that opened its batch.
        py.witness_reject_first = True
        py.witness_hold = True
        py.witness_silent = False
        j = 0
        while not py.witness_held_answers:
            b.send("py.peer", "later %d" % j)
            j += 1
            self.assertLess(j, 50)
            time.sleep(0.05)
        py.witness_silent = True  # what b offers after this is not answered
        b.proc.send_signal(signal.SIGSTOP)
        try:
            py.witness_hold = False
            wait_for(lambda: not py.witness_held_answers, 10, "the witness to send its answers")
            time.sleep(0.3)
        finally:
            b.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: b.audit("rollback-detected"), 30, "b to find that its log lost the witnessed root")
        got = b.audit("rollback-detected")
        self.assertEqual(len(got), 1, got)
        self.assertIn("no longer have its root: this database was rewritten or replaced", got[0][6])


class RefusedKeyFlood(NodeTest):
    """A network attacker not in the directory (section 4): handshakes with ever new
    transport keys, which cost nothing to make, must not write an audit row and a log
    line each before authentication. At most 10 refused keys a minute are recorded one
    by one (section 11); the next row recorded says how many were not."""

    KEYS = 40

    def test_many_fresh_keys_are_audited_a_bounded_number_of_times(self):
        b = self.node("b")
        with open(b.card_file) as f:
            server = pypeer.z85.encode(pypeer.Card(WIRE, f.read()).transport_pk)
        seq = b.query("SELECT coalesce(max(seq), 0) FROM audit")[0][0]
        ctx = zmq.Context()
        socks = []
        try:
            for _ in range(self.KEYS):
                pub, sec = zmq.curve_keypair()
                s = ctx.socket(zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                s.curve_serverkey, s.curve_publickey, s.curve_secretkey = server, pub, sec
                s.connect(b.endpoint)
                socks.append(s)
            # libzmq retries a refused handshake: every key is refused at least once.
            time.sleep(3)
            self.assertEqual(b.cli("status", check=False).returncode, 0)
        finally:
            for s in socks:
                s.close(0)
            ctx.term()
        rows = [r for r in b.audit("transport-refused") if r[0] > seq]
        self.assertGreaterEqual(len(rows), 1)
        self.assertLessEqual(len(rows), 10, "one audit row per fresh key: %d rows" % len(rows))
        with open(b.log, errors="replace") as f:
            logged = f.read().count("refused connection:")
        self.assertLessEqual(logged, 10, "one log line per fresh key")
        self.assertIsNone(b.proc.poll(), "liaisond b exited")



class AuditVerifyOffTheLoop(NodeTest):
    """`audit verify` reads the whole log, seconds for millions of entries: it runs on a
    thread of its own with its own connection (auditor.h), so the daemon answers other
    requests meanwhile. Spoken in control.proto by a stock protobuf client, as an
    auditor's tool would."""

    ENTRIES = 200000

    def grow_log(self, node):
        """Appends ENTRIES well-chained entries (PROTOCOL.md 11) to a stopped node's log,
        as a long-lived node would have: a run that starts (its daemon-started follows
        the checkpoint signed at the stop, 11.4), then an auditor's queries."""
        node.stop()
        con = sqlite3.connect(node.db_path)
        try:
            seq, prev = con.execute("SELECT seq, entry_hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            t = int(time.time() * 1000)
            rows = []
            for i in range(self.ENTRIES + 1):
                seq += 1
                who, what, details = ("daemon", "daemon-started", "version 0, 0 peers") if i == 0 else \
                    ("user:auditor", "audit-query", "log")
                h = audit_entry_hash(prev, seq, t, who, what, "ok", b"", "", 0, b"", details)
                rows.append((seq, t, who, what, "ok", b"", "", 0, b"", details, prev, h))
                prev = h
            con.executemany("INSERT INTO audit(seq, time_ms, actor, action, outcome, message_id, peer, content_type,"
                            " patient_tag, details, prev_hash, entry_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            con.commit()
        finally:
            con.close()
        node.start()
        return seq

    def auditor(self, node):
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect("ipc://" + os.path.join(node.home, "run", "audit.sock"))
        self.addCleanup(s.close)
        return s

    @staticmethod
    def answer(sock):
        if not sock.poll(120000):
            raise AssertionError("no answer from liaisond within 120 s")
        return CONTROL.Response.FromString(sock.recv())

    def test_a_long_verification_does_not_hold_up_other_requests(self):
        b = self.node("dr.okafor", "psychiatrist")
        size = self.grow_log(b)
        audit = self.auditor(b)
        # Pipelined on one connection, so they reach the daemon in this order: the
        # verification, then the newest entry of the log. The second is answered first.
        audit.send(CONTROL.Request(request_id=1, audit_verify=True).SerializeToString())
        audit.send(CONTROL.Request(request_id=2, audit_log=CONTROL.AuditQuery(limit=1)).SerializeToString())
        first, second = self.answer(audit), self.answer(audit)
        self.assertEqual((first.request_id, second.request_id), (2, 1))
        self.assertEqual(first.code, CONTROL.OK, first.error)
        # The verification covers the log up to its own request (audited and committed first).
        self.assertEqual(second.code, CONTROL.OK, second.error)
        self.assertTrue(second.audit_verify.ok, second.audit_verify.report)
        self.assertGreater(second.audit_verify.entries, size)
        verified = [e for e in b.audit("audit-query") if e[6] == "verify"]
        self.assertEqual(len(verified), 1)
        self.assertLessEqual(verified[0][0], second.audit_verify.entries)

    def test_at_most_eight_verifications_wait_and_a_stop_ends_them(self):
        b = self.node("dr.okafor", "psychiatrist")
        self.grow_log(b)
        audit = self.auditor(b)
        for i in range(10):
            audit.send(CONTROL.Request(request_id=10 + i, audit_verify=True).SerializeToString())
        answers = [self.answer(audit) for _ in range(10)]
        refused = [a for a in answers if a.code == CONTROL.REFUSED]
        self.assertEqual(sorted(a.request_id for a in refused), [18, 19], [(a.request_id, a.code) for a in answers])
        self.assertIn("8 verifications of the audit log are already under way", refused[0].error)
        self.assertEqual([a.request_id for a in answers if a.code == CONTROL.OK], list(range(10, 18)))
        self.assertTrue(all(a.audit_verify.ok for a in answers if a.code == CONTROL.OK))
        # Verifications still waiting when the daemon stops are dropped, not awaited; it
        # stops as usual, and a daemon started again answers the next one.
        for i in range(8):
            audit.send(CONTROL.Request(request_id=30 + i, audit_verify=True).SerializeToString())
        wait_for(lambda: len([e for e in b.audit("audit-query") if e[6] == "verify"]) == 16, 20,
                 "the eight verifications to be handed over")
        self.assertEqual(b.stop(), 0)
        # Those that ended before the stop were answered; none is answered with its
        # interruption.
        while audit.poll(500):
            a = CONTROL.Response.FromString(audit.recv())
            self.assertEqual(a.code, CONTROL.OK, (a.request_id, a.error))
            self.assertTrue(a.audit_verify.ok, a.audit_verify.report)
        b.start()
        audit2 = self.auditor(b)
        audit2.send(CONTROL.Request(request_id=40, audit_verify=True).SerializeToString())
        last = self.answer(audit2)
        self.assertEqual((last.request_id, last.code), (40, CONTROL.OK), last.error)
        self.assertTrue(last.audit_verify.ok, last.audit_verify.report)

    def test_an_answer_for_a_socket_made_again_is_dropped(self):
        """The audit socket deleted while verifications are queued is made again within a
        second (control_tick); the answers due to connections of the old one have nowhere to
        go and are dropped, each with a warning, and the new socket serves as before."""
        b = self.node("dr.okafor", "psychiatrist")
        self.grow_log(b)
        audit = self.auditor(b)
        for i in range(8):
            audit.send(CONTROL.Request(request_id=50 + i, audit_verify=True).SerializeToString())
        wait_for(lambda: len([e for e in b.audit("audit-query") if e[6] == "verify"]) == 8, 20,
                 "the eight verifications to be handed over")
        os.unlink(os.path.join(b.home, "run", "audit.sock"))

        def log():
            with open(b.log, errors="replace") as f:
                return f.read()
        wait_for(lambda: "audit.sock was deleted while liaisond was running: made it again" in log(), 10,
                 "the audit socket to be made again")
        wait_for(lambda: "(audit verify) is dropped: the audit socket it came on was deleted" in log(), 120,
                 "an answer for the old socket to be dropped")
        audit2 = self.auditor(b)
        audit2.send(CONTROL.Request(request_id=70, audit_verify=True).SerializeToString())
        last = self.answer(audit2)
        self.assertEqual((last.request_id, last.code), (70, CONTROL.OK), last.error)
        self.assertTrue(last.audit_verify.ok, last.audit_verify.report)


if __name__ == "__main__":
    unittest.main()
