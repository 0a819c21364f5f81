# SPDX-License-Identifier: Apache-2.0
"""Core delivery across real daemons (issue 2)."""
import hashlib
import os
import signal
import socket
import subprocess
import time
import unittest

from harness import Node, NodeTest, free_port, link, wait_for


def private_hosts_file():
    """True if a process can be given its own /etc/hosts (a mount namespace, as root)."""
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def receipt_batch_size(receipt):
    """Field 3 (batch_size, a varint) of a serialized Receipt (PROTOCOL.md 7.1); 0 if absent."""
    i = 0
    while i < len(receipt):
        key, i = read_varint(receipt, i)
        if key & 7 == 0:
            value, i = read_varint(receipt, i)
            if key >> 3 == 3:
                return value
        elif key & 7 == 2:
            n, i = read_varint(receipt, i)
            i += n
        else:
            raise ValueError("unexpected wire type in a receipt")
    return 0


def held_receipt(node, mid):
    """The receipt node holds for its message mid."""
    return bytes(node.query("SELECT receipt FROM deliveries WHERE hex(message_id) = upper(?)", (mid,))[0][0])


def proto_fields(msg):
    """The fields of a serialized protobuf message: {number: [values]} (bytes for wire type 2)."""
    out, i = {}, 0
    while i < len(msg):
        key, i = read_varint(msg, i)
        if key & 7 == 0:
            value, i = read_varint(msg, i)
        elif key & 7 == 2:
            n, i = read_varint(msg, i)
            value, i = msg[i:i + n], i + n
        else:
            raise ValueError("unexpected wire type")
        out.setdefault(key >> 3, []).append(value)
    return out


def merkle_root(leaves):
    """RFC 9162 MTH over the given leaf hashes (PROTOCOL.md section 11)."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:k]) + merkle_root(leaves[k:])).digest()


def inclusion_root(leaf, index, size, path):
    """The root an RFC 9162 inclusion path leads to (section 2.1.3.2), or None."""
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def read_varint(b, i):
    value = shift = 0
    while True:
        value |= (b[i] & 0x7F) << shift
        shift += 7
        i += 1
        if not b[i - 1] & 0x80:
            return value, i


class CoreDelivery(NodeTest):
    def test_send_and_read(self):
        a = self.node("dr.alvarez", "therapist")
        b = self.node("dr.okafor", "psychiatrist")
        link(a, b)
        mid = a.send("dr.okafor", "PHQ-9 down to 11, sleeping better.", subject="weekly update")
        self.wait_delivered(a, mid, "dr.okafor")
        self.assertTrue(b.has_message(mid))
        out = b.cli("show", mid).stdout
        self.assertIn("PHQ-9 down to 11, sleeping better.", out)
        self.assertIn("weekly update", out)
        # The read is marked and audited with the local user.
        self.assertTrue(b.query("SELECT read_ms FROM messages WHERE hex(id) = upper(?)", (mid,))[0][0])
        reads = b.audit("message-read")
        self.assertEqual(len(reads), 1)
        self.assertTrue(reads[0][1].startswith(("user:", "uid:")))
        # The sender can read what it sent.
        self.assertIn("PHQ-9 down to 11", a.cli("show", mid).stdout)
        # Audit trail on both sides.
        self.assertEqual(len(a.audit("message-queued")), 1)
        self.assertEqual(len(a.audit("message-delivered")), 1)
        self.assertEqual(len(b.audit("message-received")), 1)

    @unittest.skipUnless(ipv6_loopback(), "this machine has no IPv6 loopback")
    def test_port_taken_is_named_with_the_fix_and_the_card_that_names_it(self):
        # Another node holds the port: the start fails, its error is the last line of the
        # log (no run statistics after it) and says to change listen and advertise and
        # to give peers a new card; set to a free port but with the card still naming
        # the old one, the daemon starts and warns about the card.
        a = self.node("a")
        b = self.node("b", start=False)
        b.write_config("node", "listen", a.endpoint)
        b.write_config("node", "advertise", a.endpoint)
        open(b.log, "w").close()
        b.start(wait=False)
        self.assertNotEqual(b.proc.wait(20), 0)
        b.logf.close()
        with open(b.log) as f:
            lines = f.read().strip().splitlines()
        self.assertIn("cannot listen on %s" % a.endpoint, lines[-1])
        self.assertIn("change [node] listen in", lines[-1])
        self.assertIn("and advertise if your card names this port", lines[-1])
        self.assertIn("liaison card --fresh", lines[-1])
        port = free_port()
        b.write_config("node", "listen", "tcp://127.0.0.1:%d" % port)
        b.write_config("node", "advertise", "tcp://127.0.0.1:%d" % port)
        b.start()
        with open(b.log) as f:
            log = f.read()
        self.assertIn("the card your peers hold, has another endpoint than", log)
        self.assertIn("tcp://127.0.0.1:%d (peers dial the card's endpoint %s)" % (port, b.endpoint), log)
        # The way out it names: a card made by the daemon from liaison.conf now, which a
        # peer adds over the old one (the same keys) and then reaches b at its new port.
        stale = b.cli("card").stdout
        r = b.cli("card", "--fresh")
        self.assertNotEqual(r.stdout, stale)
        self.assertIn("made by the running daemon", r.stderr)
        a.cli("peer", "add", "-", input=stale)
        b.add_peer(a)
        a.cli("peer", "add", "-", input=r.stdout)
        self.assertEqual(a.json("peer", "list")["peers"][0]["endpoint"], "tcp://127.0.0.1:%d" % port)
        self.wait_delivered(a, a.send("b", "at the new port"), "b")
        b.stop()
        r = b.cli("card", "--fresh", check=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("card --fresh asks the running daemon", r.stderr)

    def test_daemon_dumps_no_core(self):
        """A core dump would hold the transport key and decrypted messages: the daemon
        turns them off for itself (RLIMIT_CORE 0, and not dumpable)."""
        a = self.node("a")
        with open("/proc/%d/limits" % a.proc.pid) as f:
            core = [ln for ln in f if ln.startswith("Max core file size")][0].split()
        self.assertEqual(core[4:6], ["0", "0"], core)

    def test_cli_dumps_no_core(self):
        """Nor does the command line: one reading a note to send, from a pipe, holds its
        text (and a timeline shown holds many) in the clear."""
        import harness
        import resource
        a = self.node("a")

        def allow_cores():  # a limit the command must lower itself, not one it inherits
            soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
            want = 1 << 20 if hard == resource.RLIM_INFINITY or hard >= 1 << 20 else hard
            try:
                resource.setrlimit(resource.RLIMIT_CORE, (want, max(want, hard) if hard != resource.RLIM_INFINITY
                                                          else hard))
            except (ValueError, OSError):
                pass
        p = subprocess.Popen([harness.LIAISON, "--home", a.home, "send", "--to", "b", "-"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=allow_cores)
        try:
            def limits():
                with open("/proc/%d/limits" % p.pid) as f:
                    return [ln for ln in f if ln.startswith("Max core file size")][0].split()[4:6]
            wait_for(lambda: limits() == ["0", "0"], 10, "the command line's core limit")
        finally:
            p.communicate(b"", timeout=30)

    def test_ipv6_endpoints(self):
        nodes = []
        for ident in ("dr.alvarez", "dr.okafor"):
            n = Node(self.base, ident)
            n.endpoint = "tcp://[::1]:%d" % n.port
            self.nodes.append(n.init())
            n.start()
            nodes.append(n)
        a, b = nodes
        link(a, b)
        mid = a.send("dr.okafor", "over IPv6")
        self.wait_delivered(a, mid, "dr.okafor")
        self.assertIn("over IPv6", b.cli("show", mid).stdout)

    @unittest.skipUnless(private_hosts_file(), "cannot give a daemon its own /etc/hosts here")
    def test_host_name_resolving_to_ipv6_first_reaches_an_ipv4_listener(self):
        # localhost resolves to ::1 first for the sender; the recipient listens on 127.0.0.1.
        hosts = os.path.join(self.base, "hosts")
        with open(hosts, "w") as f:
            f.write("::1 localhost\n127.0.0.1 localhost\n")
        a = Node(self.base, "dr.alvarez")
        a.prefix = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', hosts]
        b = Node(self.base, "dr.okafor")
        self.nodes += [a.init(), b.init(advertise="tcp://localhost:%d" % b.port)]
        a.start()
        b.start()
        link(a, b)
        mid = a.send("dr.okafor", "by name")
        self.wait_delivered(a, mid, "dr.okafor")

    def test_bodies_encrypted_at_rest(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        secret = "Patient reports passive ideation, no plan; safety plan reviewed " + os.urandom(6).hex()
        mid = a.send("b", secret)
        self.wait_delivered(a, mid, "b")
        a.stop()
        b.stop()
        for n in (a, b):
            for suffix in ("", "-wal", "-shm"):
                p = n.db_path + suffix
                if os.path.exists(p):
                    data = open(p, "rb").read()
                    self.assertNotIn(secret.encode(), data, p)
                    self.assertNotIn(b"passive ideation", data, p)

    def test_offline_recipient_gets_it_later(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        b.stop()
        mid = a.send("b", "sent while you were offline")
        time.sleep(1.0)
        self.assertIn(a.delivery_state(mid, "b"), ("queued", "sent"))
        # The sender restarts too: the queue is durable.
        a.stop()
        a.start()
        b.start()
        self.wait_delivered(a, mid, "b", timeout=30)
        self.assertTrue(b.has_message(mid))

    def test_queued_messages_get_one_batch_of_receipts(self):
        # Twenty messages queued while b is down go out together when it is back; b signs
        # the receipts of each commit as one batch (PROTOCOL.md 7.1) and a checks them.
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        b.stop()
        mids = [a.send("b", "while you were away %d" % i) for i in range(20)]
        b.start()
        for mid in mids:
            self.wait_delivered(a, mid, "b", timeout=30)
        held = {bytes(r[0]).hex(): bytes(r[1]) for r in a.query(
            "SELECT message_id, receipt FROM deliveries WHERE recipient = 'b'")}
        issued = {bytes(r[0]).hex(): bytes(r[1]) for r in b.query("SELECT message_id, receipt FROM receipts_issued")}
        self.assertEqual(held, issued)
        self.assertEqual(sorted(held), sorted(mids))
        sizes = [receipt_batch_size(r) for r in held.values()]
        self.assertGreaterEqual(max(sizes), 2, "no receipt came in a batch: %s" % sizes)
        self.assertEqual(len(a.audit("receipt-rejected")), 0)
        self.assertEqual(len(a.audit("message-delivered")), 20)

    def test_batches_of_receipts_are_per_sender(self):
        # Two senders' queues flushed into b at once: b signs one tree per sender per
        # commit, never a tree that mixes senders (a receipt must not show one sender the
        # hashes of another's receipts). Each group of receipts under one signature has
        # exactly batch_size members, one per leaf, all to the same sender, and its
        # leaves hash to one root.
        a = self.node("a")
        c = self.node("c")
        b = self.node("b")
        link(a, b, c)
        wait_for(lambda: all(p["connected"] for p in b.json("status")["peers"]), 20, "b connected to a and c")
        # b is frozen while both send, so that their envelopes wait together in b's
        # sockets and reach its loop interleaved, in the same commits.
        b.proc.send_signal(signal.SIGSTOP)
        try:
            mids = {"a": [a.send("b", "from a %d" % i) for i in range(30)],
                    "c": [c.send("b", "from c %d" % i) for i in range(30)]}
            time.sleep(0.5)
        finally:
            b.proc.send_signal(signal.SIGCONT)
        for sender, node in (("a", a), ("c", c)):
            for mid in mids[sender]:
                self.wait_delivered(node, mid, "b", timeout=30)
        groups = {}
        for mid, receipt in b.query("SELECT message_id, receipt FROM receipts_issued"):
            f = proto_fields(bytes(receipt))
            body = proto_fields(f[1][0])
            groups.setdefault(f[2][0], []).append(
                (f.get(3, [0])[0], f.get(4, [0])[0], body[5][0].decode(), f[1][0], bytes(mid).hex(), f.get(5, [])))
        batched = [g for g in groups.values() if g[0][0] >= 2]
        self.assertTrue(batched, "no receipt came in a batch")
        for g in batched:
            size = g[0][0]
            self.assertEqual(len({r[2] for r in g}), 1, "a batch mixes senders: %s" % sorted({r[2] for r in g}))
            self.assertEqual(sorted(r[1] for r in g), list(range(size)))
            self.assertEqual({r[0] for r in g}, {size})
            leaves = [hashlib.sha256(b"\x00" + r[3]).digest() for r in sorted(g, key=lambda r: r[1])]
            root = merkle_root(leaves)
            for r in g:
                self.assertEqual(inclusion_root(leaves[r[1]], r[1], size, r[5]), root)
            self.assertTrue(set(r[4] for r in g) <= set(mids[g[0][2]]))
        for sender, node in (("a", a), ("c", c)):
            self.assertEqual(len(node.audit("receipt-rejected")), 0)
            self.assertEqual(len(node.audit("message-delivered")), 30)

    def receipt_after_resending(self, a, mid):
        """a sends mid to b again, as after a lost receipt; the receipt it then holds."""
        a.edit_stopped(("UPDATE deliveries SET state = 0, receipt = NULL, delivered_ms = NULL, next_attempt_ms = 0"
                        " WHERE hex(message_id) = upper(?)", (mid,)))
        self.wait_delivered(a, mid, "b")
        return held_receipt(a, mid)

    def test_retransmission_after_upgrade_from_schema_1_gets_the_original_receipt(self):
        # A message received under schema 1 keeps its receipt in messages.receipt (there
        # was no receipts_issued table). After the upgrade, a retransmission of it must be
        # answered with that receipt, not refused as a CONFLICT.
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        mid = a.send("b", "received before the upgrade")
        self.wait_delivered(a, mid, "b")
        original = held_receipt(a, mid)
        b.edit_stopped("UPDATE messages SET receipt = (SELECT r.receipt FROM receipts_issued r"
                       " WHERE r.message_id = messages.id)",
                       "DROP TABLE receipts_issued",
                       "UPDATE meta SET value = CAST('1' AS BLOB) WHERE key = 'schema_version'")
        self.assertEqual(b.query("SELECT count(*) FROM receipts_issued")[0][0], 0)
        self.assertEqual(self.receipt_after_resending(a, mid), original)
        self.assertEqual(len(a.audit("delivery-rejected")), 0)
        self.assertEqual(b.query("SELECT count(*) FROM messages WHERE outgoing = 0")[0][0], 1)

    def test_retransmission_of_a_message_stored_without_receipt_is_receipted_again(self):
        # A database restored in part may hold a message but not its receipt: a
        # retransmission then gets a receipt signed again from what is stored (for a
        # receipt alone, byte for byte the first, Ed25519 being deterministic), not a
        # CONFLICT that would refuse the sender's own envelope for good.
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        mid = a.send("b", "its receipt will be lost")
        self.wait_delivered(a, mid, "b")
        original = held_receipt(a, mid)
        self.assertEqual(receipt_batch_size(original), 0)
        b.edit_stopped("DELETE FROM receipts_issued", "UPDATE messages SET receipt = NULL")
        self.assertEqual(self.receipt_after_resending(a, mid), original)
        self.assertEqual(len(a.audit("delivery-rejected")), 0)
        self.assertEqual([r[6] for r in b.audit("message-duplicate")],
                         ["already stored, its receipt missing: receipt issued again"])
        self.assertEqual(bytes(b.query("SELECT receipt FROM receipts_issued")[0][0]), original)
        self.assertEqual(b.query("SELECT count(*) FROM messages WHERE outgoing = 0")[0][0], 1)

    def test_recipient_killed_no_loss_no_duplicate(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        mids = [a.send("b", "message %d" % i) for i in range(20)]
        # Kill B as soon as it has stored the first message, before all receipts flowed.
        wait_for(lambda: b.has_message(mids[0]), 20, "first message at b")
        b.kill()
        b.start()
        for mid in mids:
            self.wait_delivered(a, mid, "b", timeout=40)
        rows = b.query("SELECT hex(id) FROM messages WHERE outgoing = 0")
        self.assertEqual(sorted(r[0].lower() for r in rows), sorted(mids))
        self.assertEqual(len(b.audit("message-received")), 20)

    def test_unknown_node_is_refused(self):
        a = self.node("a")
        b = self.node("b")
        stranger = self.node("stranger")
        link(a, b)
        stranger.add_peer(b)  # the stranger knows b, b does not know the stranger
        mid = stranger.send("b", "let me in")
        wait_for(lambda: b.audit("transport-refused"), 20, "b to audit the refused key")
        time.sleep(1.0)
        self.assertFalse(b.has_message(mid))
        self.assertNotEqual(stranger.delivery_state(mid, "b"), "delivered")
        status = stranger.cli("status").stdout
        self.assertIn("refused our key", status)

    def test_card_added_late_connects_at_once(self):
        # a adds b's card first, and b refuses a's key until b adds a's card too; a backs
        # off its refused connection (1, 2, 4 ... 32 s between attempts). Once b has a's
        # card, b dials a, and a tries its own connection again at once instead of after
        # the rest of its back-off: it says so in its log.
        a = self.node("a")
        b = self.node("b")
        a.add_peer(b)
        wait_for(lambda: "refused our key" in a.cli("status").stdout, 20, "a to see its key refused")
        time.sleep(3)  # refused at about 0, 1 and 3 s: a's own next attempt is 4 s away
        b.add_peer(a)
        wait_for(lambda: a.json("peer", "list")["peers"][0]["connected"], 20, "a connected to b")
        with open(a.log) as f:
            log = f.read()
        self.assertIn("peer b connected to us, so it has our card now", log)
        # A refusal during the exchange is expected: said, but not as a warning.
        self.assertIn("info: peer b refused our transport key (expected until they add our card)", log)
        self.assertNotIn("warning: peer b refused our transport key", log)
        mid = a.send("b", "now we are both in")
        self.wait_delivered(a, mid, "b")

    def test_envelope_for_someone_else_is_refused(self):
        a = self.node("a")
        b = self.node("b")
        c = self.node("c")
        link(a, b, c)
        lines, err = a.rawpeer(b, "--to", "c", "envelope", cards=[c])
        self.assertTrue(lines[0].startswith("reject 5 "), lines)
        self.assertEqual(b.query("SELECT count(*) FROM messages")[0][0], 0)
        rej = b.audit("message-rejected")
        self.assertEqual(len(rej), 1)
        self.assertIn("not-recipient", rej[0][6])

    def test_two_recipients_two_receipts(self):
        a = self.node("a")
        b = self.node("b")
        c = self.node("c")
        link(a, b, c)
        mid = a.send("b,c", "case review tomorrow at 9")
        self.wait_delivered(a, mid, "b")
        self.wait_delivered(a, mid, "c")
        receipts = a.query("SELECT recipient, length(receipt) FROM deliveries WHERE hex(message_id) = upper(?)"
                           " ORDER BY recipient", (mid,))
        self.assertEqual([r[0] for r in receipts], ["b", "c"])
        self.assertTrue(all(r[1] > 64 for r in receipts))
        self.assertTrue(b.has_message(mid) and c.has_message(mid))
        outbox = a.json("outbox")
        self.assertIn(mid, str(outbox))

    def test_removed_peer_can_no_longer_send(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        first = a.send("b", "before removal")
        self.wait_delivered(a, first, "b")
        b.cli("peer", "remove", "a")
        self.assertNotIn('"a"', b.cli("peer", "list", "--json").stdout)
        mid = a.send("b", "after removal")
        # b answers on the connection that is still up that it no longer holds a's key:
        # a drops the connection, b's handshake check refuses the new one, and a shows
        # the delivery queued with the reason (before, it stayed "sent" while the
        # connection lasted).
        def shown():
            out = a.json("outbox")["messages"]
            return out[0]["deliveries"][0] if out else None
        wait_for(lambda: (shown() or {}).get("state") == "queued" and a.delivery_state(mid, "b") == "queued", 20,
                 "a's delivery to b to be queued")
        self.assertEqual(shown()["detail"], "b refused our key: ask them to add our card (liaison card) with:"
                         " liaison peer add")
        self.assertFalse(b.has_message(mid))
        self.assertTrue(b.audit("peer-removed"))
        with open(a.log) as f:
            self.assertIn("no longer holds our transport key", f.read())
        # b can no longer send to a either.
        r = b.cli("send", "--to", "a", "-", input="hi", check=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("not in the directory", r.stderr)
        # Once b adds a's card again, the queued message goes out.
        b.add_peer(a)
        self.wait_delivered(a, mid, "b")
        self.assertTrue(b.has_message(mid))

    def test_queued_for_a_removed_peer_is_shown_held(self):
        # A message queued for a peer that is then removed is not retried: the outbox
        # says it is held (not the stale "retrying"), and it goes out if the card comes back.
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        self.wait_delivered(a, a.send("b", "first"), "b")
        b.stop()
        mid = a.send("b", "queued while b is down")
        wait_for(lambda: "retrying" in a.cli("outbox").stdout, 20, "a transport error")
        out = a.cli("peer", "remove", "b").stdout
        self.assertIn("Messages still queued for them,\nif any, are held", out)
        dl = a.json("outbox")["messages"][0]["deliveries"][0]
        self.assertEqual(dl["state"], "queued")
        self.assertEqual(dl["detail"], "b is no longer in the directory: held, and sent if their card is added again")
        self.assertNotIn("retrying", a.cli("outbox").stdout)
        # status counts it in the queue, and says where it is, as no peer row shows it.
        st = a.json("status")
        self.assertEqual((st["queue_depth"], st["held_for_removed_peers"]), (1, 1))
        self.assertIn("Of them, 1 is held for peers no longer in the directory", a.cli("status").stdout)
        b.start()
        a.add_peer(b)
        self.wait_delivered(a, mid, "b")
        self.assertTrue(b.has_message(mid))

    def test_replay_answered_with_original_receipt(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        saved = os.path.join(self.base, "env.bin")
        lines, _ = a.rawpeer(b, "--save", saved, "envelope")
        self.assertTrue(lines[0].startswith("receipt "), lines)
        again, _ = a.rawpeer(b, "replay", saved)
        self.assertEqual(again[0], lines[0])
        self.assertEqual(b.query("SELECT count(*) FROM messages")[0][0], 1)
        self.assertEqual(len(b.audit("message-duplicate")), 1)

    def test_card_with_changed_keys_needs_replace(self):
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        # A different node claiming the id "b".
        import harness
        other = harness.Node(os.path.join(self.base, "other"), "b")
        os.makedirs(os.path.join(self.base, "other"))
        other.init()
        r = a.cli("peer", "add", other.card_file, check=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("--replace", r.stderr)
        a.cli("peer", "add", "--replace", other.card_file)
        self.assertTrue(a.audit("peer-replaced"))

    def test_card_claiming_this_nodes_id_with_other_keys_is_not_called_our_own(self):
        # Another node made with the same --id (new keys): it is not this node's own card,
        # and says so, with or without --replace, and the refusal is audited as peer-added.
        a = self.node("dr.alvarez")
        os.makedirs(os.path.join(self.base, "other"))
        other = Node(os.path.join(self.base, "other"), "dr.alvarez").init()
        own_fp = a.json("fingerprint")["fingerprint"]
        for extra in ((), ("--replace",)):
            r = a.cli("peer", "add", *extra, other.card_file, check=False)
            self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
            self.assertIn("a card for this node's own id 'dr.alvarez' with other keys (fingerprint ", r.stderr)
            self.assertIn("): not this node; refused", r.stderr)
            self.assertNotIn("own card", r.stderr)
            fp = r.stderr.split("(fingerprint ")[1].split(")")[0]
            self.assertNotEqual(fp, own_fp)
        refused = [row for row in a.audit("peer-added") if row[3] == "refused"]
        self.assertEqual(len(refused), 2)
        self.assertTrue(all(row[5] == "dr.alvarez" and "own id with other keys" in row[6] and fp in row[6]
                            for row in refused))
        self.assertEqual(a.json("peer", "list")["peers"], [])
        # This node's own card is still called that.
        r = a.cli("peer", "add", a.card_file, check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("that is this node's own card ('dr.alvarez')", r.stderr)
        self.assertNotIn("other keys", r.stderr)
        self.assertEqual(len([row for row in a.audit("peer-added") if row[3] == "refused"]), 2)

    def test_identical_card_added_again_changes_nothing(self):
        # The card already held, added again (as it is, or wrapped by e-mail, or with
        # --replace): no store, no audit entry, no reconnection, and the answer says so
        # with the peer's real connection state.
        a = self.node("a")
        b = self.node("b")
        link(a, b)
        wait_for(lambda: a.json("peer", "list")["peers"][0]["connected"], 20, "a connected to b")
        rows = a.query("SELECT rowid, added_ms, retired_ms FROM peers WHERE id = 'b'")
        entries = a.query("SELECT count(*) FROM audit WHERE action LIKE 'peer-%'")[0][0]
        with open(b.card_file) as f:
            card = f.read().strip()
        wrapped = os.path.join(self.base, "wrapped.card")
        with open(wrapped, "w") as f:
            f.write("\n".join(card[i:i + 60] for i in range(0, len(card), 60)) + "\n")
        with open(a.log) as f:
            connects = f.read().count("peer b: connected")
        for args in ((b.card_file,), (wrapped,), ("--replace", b.card_file)):
            out = a.json("peer", "add", *args)
            self.assertEqual(out["change"], "unchanged", args)
            self.assertTrue(out["connected"], args)
            self.assertEqual(out["id"], "b")
        self.assertEqual(a.query("SELECT rowid, added_ms, retired_ms FROM peers WHERE id = 'b'"), rows)
        self.assertEqual(a.query("SELECT count(*) FROM audit WHERE action LIKE 'peer-%'")[0][0], entries)
        self.assertEqual(a.audit("peer-updated"), [])
        time.sleep(1.0)
        with open(a.log) as f:
            self.assertEqual(f.read().count("peer b: connected"), connects)
        self.assertTrue(a.json("peer", "list")["peers"][0]["connected"])
        self.wait_delivered(a, a.send("b", "still connected"), "b")

    def test_outbox_says_queued_when_the_peer_refuses_our_key(self):
        # b removes a while connected: what a sends then is handed to the old connection
        # (sent) and dropped by b. Once b's restart ends that connection, b refuses a's
        # key: the outbox must say the message is queued, and why, not "sent".
        a = self.node("dr.alvarez")
        b = self.node("dr.okafor")
        link(a, b)
        self.wait_delivered(a, a.send("dr.okafor", "first"), "dr.okafor")
        b.cli("peer", "remove", "dr.alvarez")
        mid = a.send("dr.okafor", "after removal")
        wait_for(lambda: a.delivery_state(mid, "dr.okafor") == "sent", 20, "the message handed to the connection")
        b.stop()
        b.start()
        wait_for(lambda: "refused our key" in a.cli("peer", "list").stdout, 20, "a to see its key refused")

        def delivery():
            m = [m for m in a.json("outbox")["messages"] if m["id"] == mid][0]
            return m["deliveries"][0]
        d = delivery()
        self.assertEqual(d["state"], "queued", d)
        self.assertIn("dr.okafor refused our key", d["detail"])
        line = [l for l in a.cli("outbox").stdout.splitlines() if "dr.okafor" in l and "refused" in l]
        self.assertTrue(line and all("queued (dr.okafor refused our key" in l for l in line), line)
        self.assertNotIn(" sent ", a.cli("show", mid).stdout)
        # The stored state follows once the retry comes due and finds no connection.
        wait_for(lambda: a.delivery_state(mid, "dr.okafor") == "queued", 40, "the delivery stored as queued")
        self.assertIn("refused our key", a.query("SELECT detail FROM deliveries WHERE hex(message_id) = upper(?)",
                                                 (mid,))[0][0])
        # Once b takes a back, the queued message goes.
        b.add_peer(a)
        self.wait_delivered(a, mid, "dr.okafor", timeout=40)
        self.assertTrue(b.has_message(mid))


if __name__ == "__main__":
    unittest.main()
