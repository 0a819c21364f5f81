# SPDX-License-Identifier: Apache-2.0
"""Tamper-evident audit log (issue 4): tamper tests on real database files, done as an
attacker would (dropping the triggers first), checkpoints, witnessing, auditor tools."""
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import struct
import stat
import subprocess
import time
import unittest

import harness
from harness import NodeTest, link, wait_for

CHAIN_DOMAIN = b"liaison-v1/audit-chain\x00"


def varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def lp(b):
    return struct.pack(">I", len(b)) + b


def encode(row):
    """Canonical encoding E of an audit row (PROTOCOL.md 11), written independently."""
    seq, time_ms, actor, action, outcome, mid, peer, ct, tag, details = row
    return (struct.pack(">QQ", seq, time_ms) + lp(actor.encode()) + lp(action.encode()) + lp(outcome.encode())
            + lp(mid) + lp(peer.encode()) + struct.pack(">I", ct) + lp(tag) + lp(details.encode()))


def rechain(path):
    """Recomputes every chain hash of the audit log in the database file at path, as an
    attacker with the file but without the node's identity key would after changing
    entries (the triggers dropped first)."""
    con = sqlite3.connect(path)
    prev = bytes(32)
    rows = con.execute("SELECT seq, time_ms, actor, action, outcome, message_id, peer, content_type, patient_tag,"
                       " details FROM audit ORDER BY seq").fetchall()
    for row in rows:
        h = hashlib.blake2b(CHAIN_DOMAIN + prev + encode(row), digest_size=32).digest()
        con.execute("UPDATE audit SET prev_hash = ?, entry_hash = ? WHERE seq = ?", (prev, h, row[0]))
        prev = h
    con.commit()
    con.close()


class TamperBase(NodeTest):
    """One node with some history and a signed checkpoint; each test attacks a copy."""

    def setUp(self):
        super().setUp()
        self.a = self.node("a", start=False)
        self.b = self.node("b", start=False)
        for n in (self.a, self.b):
            n.write_config("audit", "checkpoint_entries", "5")
            n.start()
        link(self.a, self.b)
        for i in range(6):
            mid = self.a.send("b", "note %d" % i)
        self.wait_delivered(self.a, mid, "b")
        wait_for(lambda: self.a.query("SELECT max(tree_size) FROM checkpoints")[0][0] or 0 >= 10, 20,
                 "a checkpoint")
        self.a.stop()
        self.b.stop()
        self.copy = os.path.join(self.base, "copy.db")
        shutil.copy(self.a.db_path, self.copy)
        self.size = self.q("SELECT max(seq) FROM audit")[0][0]
        self.cp = self.q("SELECT max(tree_size) FROM checkpoints")[0][0]
        self.assertGreaterEqual(self.cp, 5)

    def q(self, sql, params=()):
        con = sqlite3.connect(self.copy)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def attack(self, *sql):
        con = sqlite3.connect(self.copy)
        con.execute("DROP TRIGGER IF EXISTS audit_no_update")
        con.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        con.execute("DROP TRIGGER IF EXISTS audit_next_seq")
        for s in sql:
            if isinstance(s, tuple):
                con.execute(*s)
            else:
                con.execute(s)
        con.commit()
        con.close()

    def verify(self, *extra):
        return self.a.cli("audit", "verify", "--db", self.copy, "--card", self.a.card_file, *extra, check=False)

    def assertCaught(self, r, *words):
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        out = r.stdout + r.stderr
        for w in words:
            self.assertIn(w, out)


class Tamper(TamperBase):
    def test_untouched_copy_verifies(self):
        r = self.verify()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("intact", r.stdout + r.stderr)

    def test_one_byte_changed(self):
        self.attack("UPDATE audit SET details = details || 'x' WHERE seq = 3")
        self.assertCaught(self.verify(), "entry 3")

    def test_entry_deleted(self):
        self.attack("DELETE FROM audit WHERE seq = 4")
        self.assertCaught(self.verify(), "entry 4")

    def test_two_entries_reordered(self):
        cols = "time_ms, actor, action, outcome, message_id, peer, content_type, patient_tag, details, prev_hash, entry_hash"
        r4 = self.q("SELECT %s FROM audit WHERE seq = 4" % cols)[0]
        r5 = self.q("SELECT %s FROM audit WHERE seq = 5" % cols)[0]
        sets = ", ".join(c.strip() + " = ?" for c in cols.split(","))
        self.attack(("UPDATE audit SET %s WHERE seq = 4" % sets, r5), ("UPDATE audit SET %s WHERE seq = 5" % sets, r4))
        self.assertCaught(self.verify(), "entry 4")

    def test_tail_truncated(self):
        self.attack("DELETE FROM audit WHERE seq > %d" % (self.cp - 2))
        self.assertCaught(self.verify(), "truncated")

    def test_truncated_with_checkpoints_caught_by_peer_checkpoint(self):
        # The attacker removes the tail and every checkpoint covering it: the file alone
        # cannot tell, but the checkpoint the peer witnessed can. (The tail cut is below
        # what b witnessed: a's last checkpoint, signed as it stopped, may not have
        # reached b before b stopped too.)
        witnessed, note = self.b.query("SELECT tree_size, note FROM witnessed WHERE peer = 'a'")[0]
        self.assertGreaterEqual(witnessed, 5)
        signed = {r[0] for r in self.q("SELECT tree_size FROM checkpoints")}
        keep = witnessed - 1
        while keep in signed:  # leave entries after the last checkpoint kept
            keep -= 1
        self.attack("DELETE FROM audit WHERE seq > %d" % keep, "DELETE FROM checkpoints WHERE tree_size > %d" % keep)
        alone = self.verify()
        self.assertIn("not yet anchored", alone.stdout + alone.stderr)
        path = os.path.join(self.base, "peer-checkpoint.txt")
        open(path, "w").write(note)
        self.assertCaught(self.verify("--checkpoint", path), "truncated")

    def test_forged_checkpoint(self):
        # A checkpoint whose signature is not the node's (here: other signature bytes).
        forged = self.q("SELECT note FROM checkpoints WHERE tree_size = ?", (self.cp,))[0][0]
        lines = forged.split("\n")
        sig = lines[-2].split(" ")
        sig[-1] = ("A" * 4) + sig[-1][4:]
        lines[-2] = " ".join(sig)
        self.attack(("UPDATE checkpoints SET note = ? WHERE tree_size = ?", ("\n".join(lines), self.cp)))
        self.assertCaught(self.verify(), "checkpoint at %d" % self.cp)

    def test_chain_recomputed_without_identity_key(self):
        # Change an entry and recompute every chain hash after it, as an attacker with
        # the file but without the node's identity key would: only the signed
        # checkpoint catches it.
        self.attack("UPDATE audit SET details = 'nothing happened' WHERE seq = 2")
        rechain(self.copy)
        r = self.verify()
        self.assertCaught(r, "checkpoint")
        self.assertNotIn("does not match its hash", r.stdout + r.stderr)

    def witnessed_file(self):
        note, size = self.b.query("SELECT note, tree_size FROM witnessed WHERE peer = 'a'")[0]
        path = os.path.join(self.base, "witnessed.txt")
        open(path, "w").write(note)
        return path, size

    def test_failures_are_named(self):
        # The wrong card: the chain is intact, the signatures do not verify with it, and
        # whose card it is and whose log this is are both said.
        r = self.a.cli("audit", "verify", "--db", self.copy, "--card", self.b.card_file, check=False)
        self.assertCaught(r, "hash chain intact", "does not verify with this card",
                          "the card given is b's, but this database is the log of a")
        self.assertNotIn("BROKEN", r.stdout + r.stderr)
        # A copy behind the checkpoint a peer witnessed (a rollback looks just like this).
        path, size = self.witnessed_file()
        keep = size - 2
        self.attack("DELETE FROM audit WHERE seq > %d" % keep, "DELETE FROM checkpoints WHERE tree_size > %d" % keep)
        r = self.verify("--checkpoint", path)
        self.assertCaught(r, "hash chain intact", "behind the witnessed checkpoint", "rolled back")
        self.assertNotIn("BROKEN", r.stdout + r.stderr)

    def test_what_a_passed_or_failed_check_covered_is_said(self):
        # A witnessed checkpoint that matches is named as checked.
        path, size = self.witnessed_file()
        r = self.verify("--checkpoint", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("the given checkpoint of a's log at %d entries matches entries 1..%d" % (size, size), r.stdout)
        # Entries re-chained under the signed checkpoints: the failure names the entries
        # between the last checkpoint that matched and the first that does not.
        sizes = sorted(x[0] for x in self.q("SELECT tree_size FROM checkpoints"))
        self.assertGreaterEqual(len(sizes), 2, sizes)
        target = sizes[0] + 1
        self.attack("UPDATE audit SET details = 'nothing happened' WHERE seq = %d" % target)
        rechain(self.copy)
        r = self.verify()
        self.assertCaught(r, "entries 1..%d do not match the node's own checkpoint of that size: one or more of"
                          " entries %d..%d were changed" % (sizes[1], target, sizes[1]))

    def test_a_deleted_row_and_a_cut_tail_are_counted_as_they_are(self):
        self.attack("DELETE FROM audit WHERE seq = 4")
        r = self.verify()
        self.assertIn("%d entries, numbered up to %d" % (self.size - 1, self.size), r.stdout + r.stderr)
        shutil.copy(self.a.db_path, self.copy)
        self.attack("DELETE FROM audit WHERE seq > %d" % (self.cp - 2))
        r = self.verify()
        self.assertCaught(r, "truncated")
        self.assertNotIn("the log ends at its last signed checkpoint", r.stdout + r.stderr)

    def test_checkpoint_of_another_nodes_log_is_named(self):
        # b's own checkpoint given to check a's database: say whose log it names, as well
        # as that its signature does not verify (what it names is not vouched for: the
        # same words for a forgery that names another node).
        note = self.b.query("SELECT note FROM checkpoints ORDER BY tree_size DESC LIMIT 1")[0][0]
        self.assertTrue(note.startswith("liaison.audit/b\n"), note)
        path = os.path.join(self.base, "b-checkpoint.txt")
        open(path, "w").write(note)
        want = ("the checkpoint names the log of b, not a's, and its signature does not verify with")
        for r in (self.verify("--checkpoint", path),
                  self.a.cli("audit", "verify", "--db", self.copy, "--checkpoint", path, check=False)):
            self.assertCaught(r, "hash chain intact", want, "another node's checkpoint, or a forgery",
                              "give the checkpoint of the node whose database this is",
                              "the checkpoint given with --checkpoint names the log of b")
        # A's own witnessed checkpoint given with a's card against b's database: that is
        # the wrong database, caught by its signatures, not blamed on the checkpoint.
        witnessed, _ = self.witnessed_file()
        r = self.a.cli("audit", "verify", "--db", self.b.db_path, "--card", self.a.card_file, "--checkpoint",
                       witnessed, check=False)
        self.assertCaught(r, "does not verify with this card")
        self.assertNotIn("names the log of", r.stdout + r.stderr)

    def test_chain_broken_names_the_entry(self):
        self.attack("UPDATE audit SET details = details || 'x' WHERE seq = 3")
        self.assertCaught(self.verify(), "hash chain BROKEN at entry 3", "broken at entry 3")
        # Another failure found first (the wrong card) does not move where the chain breaks.
        r = self.a.cli("audit", "verify", "--db", self.copy, "--card", self.b.card_file, check=False)
        self.assertCaught(r, "hash chain BROKEN at entry 3")

    def test_unreadable_input_exits_1(self):
        bad = os.path.join(self.base, "bad.txt")
        open(bad, "w").write("not a checkpoint\n")
        r = self.verify("--checkpoint", bad)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("checkpoint file is malformed", r.stderr)
        self.assertNotIn("BROKEN", r.stdout + r.stderr)
        r = self.a.cli("audit", "verify", "--db", bad, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("%s is not a liaison database" % bad, r.stderr)
        self.assertNotIn("identity key", r.stderr)
        empty = os.path.join(self.base, "empty.db")
        sqlite3.connect(empty).execute("CREATE TABLE t(x)").connection.close()
        r = self.a.cli("audit", "verify", "--db", empty, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("not a liaison database", r.stderr)

    def test_copy_is_read_without_writing_beside_it(self):
        """An auditor's copy (sqlite3 .backup, in WAL mode like the node's database) is read
        without creating the -wal and -shm files beside the evidence, and so can be
        checked on read-only media."""
        where = os.path.join(self.base, "evidence")
        os.makedirs(where)
        evidence = os.path.join(where, "copy.db")
        src, dst = sqlite3.connect(self.copy), sqlite3.connect(evidence)
        src.backup(dst)
        src.close()
        dst.close()
        with open(evidence, "rb") as f:
            self.assertEqual(f.read(20)[18:20], b"\x02\x02")  # WAL mode
        r = self.a.cli("audit", "verify", "--db", evidence, "--card", self.a.card_file, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(os.listdir(where), ["copy.db"])
        if os.geteuid() != 0:
            return
        ro = os.path.join(self.base, "ro")
        os.makedirs(ro)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", ro], capture_output=True).returncode:
            return
        self.addCleanup(subprocess.run, ["umount", "-l", ro], capture_output=True)
        shutil.copy(evidence, ro)
        subprocess.run(["mount", "-o", "remount,ro", ro], check=True)
        r = self.a.cli("audit", "verify", "--db", os.path.join(ro, "copy.db"), "--card", self.a.card_file,
                       check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_db_path_is_a_file_name_not_a_uri(self):
        # '#', '?' and '%' are ordinary characters of a file name: "copy#2.db" is verified,
        # not a file named "copy" next to it (that used to verify the wrong file and pass).
        tampered = os.path.join(self.base, "evidence#2?.db")
        shutil.copy(self.copy, os.path.join(self.base, "evidence"))  # an intact decoy
        self.attack("UPDATE audit SET details = details || 'x' WHERE seq = 3")
        shutil.copy(self.copy, tampered)
        r = self.a.cli("audit", "verify", "--db", tampered, "--card", self.a.card_file, check=False)
        self.assertCaught(r, "entry 3")
        # A missing file or a directory is named in the file system's words, not SQLite's.
        missing = os.path.join(self.base, "nope.db")
        r = self.a.cli("audit", "verify", "--db", missing, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("cannot read %s: No such file or directory" % missing, r.stderr)
        self.assertFalse(os.path.exists(missing))
        r = self.a.cli("audit", "verify", "--db", self.base, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("%s is not a database file (it is a directory)" % self.base, r.stderr)
        self.assertNotIn("I/O error", r.stderr)

    def test_python_chain_matches(self):
        # The independent encoder above agrees with the daemon on every stored hash.
        prev = bytes(32)
        for row in self.q("SELECT seq, time_ms, actor, action, outcome, message_id, peer, content_type, patient_tag,"
                          " details, prev_hash, entry_hash FROM audit ORDER BY seq"):
            h = hashlib.blake2b(CHAIN_DOMAIN + prev + encode(row[:10]), digest_size=32).digest()
            self.assertEqual(row[10], prev)
            self.assertEqual(row[11], h)
            prev = h

    def test_triggers_refuse_update_and_delete(self):
        con = sqlite3.connect(self.copy)
        with self.assertRaises(sqlite3.DatabaseError):
            con.execute("UPDATE audit SET details = 'x' WHERE seq = 1")
        with self.assertRaises(sqlite3.DatabaseError):
            con.execute("DELETE FROM audit WHERE seq = 1")
        with self.assertRaises(sqlite3.DatabaseError):
            con.execute("INSERT OR REPLACE INTO audit SELECT * FROM audit WHERE seq = 1")
        con.close()


def normal_sql(text):
    """Statements of an SQL text without comments and with white space normalized."""
    text = re.sub(r"--[^\n]*", "", text)
    out = []
    for stmt in re.split(r";\s*(?=CREATE|$)", text):
        stmt = re.sub(r"\s+", " ", stmt).strip()
        stmt = re.sub(r"\( ", "(", re.sub(r" \)", ")", stmt))
        if stmt:
            out.append(stmt.rstrip(";"))
    return sorted(out)


class StopCheckpoint(TamperBase):
    """An orderly stop signs a checkpoint of the whole log: a node at rest has no
    unanchored tail, so removing its last entries shows in the file alone."""

    def test_stopped_node_has_no_unanchored_tail(self):
        self.assertEqual(self.cp, self.size)
        self.assertEqual(self.q("SELECT action FROM audit WHERE seq = ?", (self.size,))[0][0], "daemon-stopped")
        r = self.verify()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("not yet anchored", r.stdout + r.stderr)

    def test_last_entries_removed_while_stopped(self):
        self.attack("DELETE FROM audit WHERE seq > %d" % (self.size - 2))
        self.assertCaught(self.verify(), "truncated", "entries %d..%d were removed" % (self.size - 1, self.size))

    def test_restart_extends_the_final_checkpoint(self):
        # The next run's checkpoints extend the one signed at the stop: the peer accepts
        # them without an alarm.
        self.a.start()
        self.b.start()
        for i in range(4):
            mid = self.a.send("b", "after the restart %d" % i)
        self.wait_delivered(self.a, mid, "b")
        wait_for(lambda: self.b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'")[0][0] > self.size, 20,
                 "b to witness a checkpoint of the new run")
        self.assertEqual(self.b.audit("witness-alarm"), [])
        self.assertEqual(self.a.audit("rollback-detected"), [])


class StartupCheck(TamperBase):
    """liaisond verifies its own log before it appends to it: a log changed while the
    daemon was stopped must not be extended, nor signed over by a new checkpoint."""

    def start_on_copy(self):
        a = self.a
        for suffix in ("-wal", "-shm"):
            if os.path.exists(a.db_path + suffix):
                os.remove(a.db_path + suffix)
        shutil.copy(self.copy, a.db_path)
        with open(a.log, "w"):
            pass
        a.start(wait=False)
        rc = a.proc.wait(20)
        a.logf.close()
        return rc, open(a.log).read()

    def test_restart_of_an_untouched_log(self):
        self.a.start()
        self.a.stop()
        self.a.start()
        self.assertNotIn("ALARM", self.a.cli("status").stdout)
        # Each run after an orderly stop begins with daemon-started: the whole history,
        # three runs, verifies (live and offline).
        self.assertEqual(self.a.cli("audit", "verify").returncode, 0)
        self.a.stop()
        r = self.a.cli("audit", "verify", "--db", self.a.db_path, "--card", self.a.card_file, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.a.query("SELECT count(*) FROM audit WHERE action = 'daemon-stopped'")[0][0], 3)

    def test_entry_added_while_stopped_refused_at_start(self):
        # After the checkpoint signed at the orderly stop, a made-up entry with a valid
        # chain hash (no key needed for that): "who read this message" would list it.
        cols = "time_ms, actor, action, outcome, message_id, peer, content_type, patient_tag, details"
        row = self.q("SELECT %s FROM audit WHERE action = 'message-queued' LIMIT 1" % cols)[0]
        self.attack(("INSERT INTO audit(seq, %s, prev_hash, entry_hash) VALUES(?, ?, 'user:mallory', 'message-read',"
                     " ?, ?, ?, ?, ?, '', zeroblob(32), zeroblob(32))" % cols,
                     (self.size + 1, row[0], row[3], row[4], row[5], row[6], row[7])))
        rechain(self.copy)
        r = self.verify()
        self.assertCaught(r, "entry %d (message-read, user:mallory) follows the checkpoint this node signed as it"
                          " stopped (at %d entries)" % (self.size + 1, self.size), "added while liaisond was not running")
        rc, log = self.start_on_copy()
        self.assertNotEqual(rc, 0, log)
        self.assertIn("fails verification: entry %d" % (self.size + 1), log)
        self.assertEqual(self.q("SELECT max(seq) FROM audit")[0][0], self.size + 1)  # nothing appended

    def test_edited_entry_refused_at_start(self):
        self.attack("UPDATE audit SET details = 'nothing to see' WHERE seq = 3")
        cps = self.q("SELECT count(*) FROM checkpoints")[0][0]
        rc, log = self.start_on_copy()
        self.assertNotEqual(rc, 0, log)
        self.assertIn("fails verification: entry 3", log)
        self.assertIn("changed after it was written", log)
        self.assertIn("Keep a copy of the file as evidence", log)
        # Nothing was appended or signed over the changed log.
        self.assertEqual(self.a.query("SELECT max(seq) FROM audit")[0][0], self.size)
        self.assertEqual(self.a.query("SELECT count(*) FROM checkpoints")[0][0], cps)
        # --check-config says the same before a start is tried.
        p = subprocess.run([harness.LIAISOND, "--home", self.a.home, "--check-config"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("fails verification: entry 3", p.stderr)

    def test_unanchored_tail_rewritten_refused_at_start(self):
        # Entries after the last checkpoint, changed without fixing their hashes: the
        # next checkpoint would otherwise sign the change.
        self.attack("UPDATE audit SET actor = 'user:nobody' WHERE seq = %d" % self.size)
        rc, log = self.start_on_copy()
        self.assertNotEqual(rc, 0, log)
        self.assertIn("fails verification: entry %d" % self.size, log)

    def test_deleted_entry_refused_at_start(self):
        self.attack("DELETE FROM audit WHERE seq = 4")
        rc, log = self.start_on_copy()
        self.assertNotEqual(rc, 0, log)
        self.assertIn("entry 4 is missing", log)

    def test_forged_checkpoint_refused_at_start(self):
        self.attack("UPDATE checkpoints SET note = replace(note, 'time 1', 'time 2') WHERE tree_size = %d" % self.cp)
        rc, log = self.start_on_copy()
        self.assertNotEqual(rc, 0, log)
        self.assertIn("checkpoint at %d entries" % self.cp, log)


class Schema(NodeTest):
    def test_database_schema_is_the_documented_one(self):
        """PROTOCOL.md 10 gives the schema exactly as sqlite_master holds it."""
        a = self.node("a", start=False)
        a.write_config("audit", "checkpoint_entries", "1")
        a.start()
        wait_for(lambda: a.query("SELECT count(*) FROM checkpoints")[0][0] > 0, 20, "a checkpoint")
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "PROTOCOL.md"), encoding="utf-8") as f:
            doc = f.read()
        section = doc[doc.index("## 10. Node database"):doc.index("## 11. Audit log")]
        documented = section[section.index("```sql\n") + 7:section.index("```", section.index("```sql\n") + 7)]
        real = [r[0] for r in a.query("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")]
        self.assertEqual(normal_sql(documented), normal_sql(";\n".join(real)))
        meta = dict(a.query("SELECT key, value FROM meta"))
        self.assertEqual(sorted(meta), ["node_id", "schema_version", "sign_pk"])
        self.assertEqual((meta["schema_version"], meta["node_id"], len(meta["sign_pk"])), (b"2", b"a", 32))


class Witnessing(NodeTest):
    def test_rollback_caught_by_peer(self):
        a = self.node("a", start=False)
        b = self.node("b", start=False)
        for n in (a, b):
            n.write_config("audit", "checkpoint_entries", "4")
            n.start()
        link(a, b)
        a.send("b", "before the snapshot")
        wait_for(lambda: b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'"), 20, "b to witness a")
        a.stop()
        old = os.path.join(self.base, "old.db")
        shutil.copy(a.db_path, old)
        a.start()
        for i in range(8):
            mid = a.send("b", "after the snapshot %d" % i)
        self.wait_delivered(a, mid, "b")
        held = lambda: b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'")[0][0]
        old_size = sqlite3.connect(old).execute("SELECT max(seq) FROM audit").fetchone()[0]
        wait_for(lambda: held() > old_size + 4, 20, "b to witness a's newer checkpoint")
        # The administrator of a's machine restores the older copy.
        a.stop()
        for suffix in ("-wal", "-shm"):
            if os.path.exists(a.db_path + suffix):
                os.remove(a.db_path + suffix)
        shutil.copy(old, a.db_path)
        a.start()
        # a offers its newest stored checkpoint, which b already holds a newer one of:
        # b answers with the size it holds, and a finds out that it was rolled back.
        wait_for(lambda: a.audit("rollback-detected"), 30, "a to notice its rollback")
        # Once a signs a new checkpoint (smaller than, or not an extension of, what b
        # holds), b has the proof and raises the alarm.
        for i in range(4):
            a.send("b", "after the restore %d" % i)
        wait_for(lambda: b.audit("witness-alarm"), 30, "b to raise the alarm")
        alarm = b.audit("witness-alarm")[0]
        self.assertEqual(alarm[5], "a")
        self.assertIn("shrank", alarm[6])
        self.assertIn("shrank", b.cli("status").stdout)
        # b shows a the note a signed at the larger size: a knows it was rolled back, and says so.
        wait_for(lambda: a.audit("rollback-detected"), 30, "a to detect its own rollback")
        self.assertIn("this database was rolled back", a.audit("rollback-detected")[0][6])
        self.assertIn("this database was rolled back", a.cli("status").stdout)
        self.assertTrue(a.query("SELECT held_note FROM witness_alarms")[0][0].startswith("liaison.audit/a\n"))
        # a's later checkpoints still do not extend what b holds: refused and logged, but
        # the alarm stays one entry (it used to be one more at every checkpoint a signed).
        for i in range(8):
            a.send("b", "later still %d" % i)
        wait_for(lambda: "the alarm is already recorded" in open(b.log).read(), 30,
                 "b to refuse a's next checkpoint")
        self.assertEqual(len(b.audit("witness-alarm")), 1)
        self.assertEqual(b.query("SELECT count(*) FROM witness_alarms")[0][0], 1)
        # a's administrator tells b's: a was restored from a backup. b accepts it, and
        # witnesses a again from a's next checkpoint; the alarm stays, as evidence.
        r = b.cli("audit", "accept-restore", "nobody", check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("peer 'nobody' is not in the directory", r.stderr)
        held = b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'")[0][0]
        r = b.cli("audit", "accept-restore", "a")
        self.assertIn("Forgot the checkpoint of a's log held at %d entries" % held, r.stdout)
        reset = b.audit("witness-reset")
        self.assertEqual(len(reset), 1)
        self.assertEqual(reset[0][5], "a")
        self.assertTrue(reset[0][1].startswith("user:"), reset[0])
        for i in range(5):
            a.send("b", "after the restore was accepted %d" % i)
        newest = lambda: a.query("SELECT max(tree_size) FROM checkpoints")[0][0]
        witnessed = lambda: (b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'") or [(0,)])[0][0]
        wait_for(lambda: witnessed() == newest(), 30, "b to witness a again")
        first = witnessed()
        for i in range(5):
            a.send("b", "and later %d" % i)
        wait_for(lambda: witnessed() == newest() and witnessed() > first, 30, "b to follow a's log")
        self.assertEqual(len(b.audit("witness-alarm")), 1)
        self.assertIn("shrank", b.cli("status").stdout)

    def test_rewritten_log_is_told_by_its_witness(self):
        """Entries changed and re-chained, and every checkpoint over them deleted, pass
        the start-up check (no signed checkpoint to compare with). The witness refuses
        the node's next checkpoint and shows it the one it holds; the node finds that its
        own log no longer has that root, and raises rollback-detected itself (the
        witness raises its own alarm once the proof fails), once."""
        a = self.node("a", start=False)
        b = self.node("b", start=False)
        for n in (a, b):
            n.write_config("audit", "checkpoint_entries", "4")
            n.start()
        link(a, b)
        for i in range(6):
            mid = a.send("b", "note %d" % i)
        self.wait_delivered(a, mid, "b")
        wait_for(lambda: (b.query("SELECT max(tree_size) FROM witnessed WHERE peer = 'a'")[0][0] or 0) >= 8, 20,
                 "b to witness a")
        held = b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'")[0][0]
        a.stop()
        for suffix in ("-wal", "-shm"):
            self.assertFalse(os.path.exists(a.db_path + suffix))
        con = sqlite3.connect(a.db_path)
        for t in ("audit_no_update", "audit_no_delete", "audit_next_seq"):
            con.execute("DROP TRIGGER IF EXISTS " + t)
        con.execute("UPDATE audit SET actor = 'user:somebody' WHERE seq = 2")
        con.execute("DELETE FROM checkpoints")
        con.commit()
        con.close()
        rechain(a.db_path)
        a.start()  # the start-up check has nothing signed to compare with
        for i in range(6):
            a.send("b", "after the rewrite %d" % i)
        wait_for(lambda: a.audit("rollback-detected"), 30, "a to find its log rewritten")
        got = a.audit("rollback-detected")
        self.assertEqual(len(got), 1, got)
        shown = re.search(r"holds our signed checkpoint at (\d+) entries", got[0][6])
        self.assertIsNotNone(shown, got[0][6])
        self.assertGreaterEqual(int(shown.group(1)), held)  # or the one a signed as it stopped
        self.assertIn("no longer have its root: this database was rewritten", got[0][6])
        self.assertIn("this database was rewritten", a.cli("status").stdout)
        wait_for(lambda: b.audit("witness-alarm"), 30, "b to raise its alarm")
        self.assertIn("not an extension", b.audit("witness-alarm")[0][6])
        # What a's auditor is told from now on: its log verifies as it stands, but is
        # known to be incomplete; every listing and accounting says so.
        r = a.cli("audit", "verify")
        self.assertIn("warning: this node recorded rollback-detected 1 time, the latest at entry", r.stdout)
        r = a.cli("audit", "log", "--limit", "1")
        self.assertIn("warning: a recorded rollback-detected 1 time", r.stderr)
        j = json.loads(a.cli("--json", "audit", "disclosures", "--patient", "P-1").stdout)
        self.assertEqual(j["log_incomplete"]["rollbacks_recorded"], 1)
        self.assertNotIn("log_incomplete", json.loads(b.cli("--json", "audit", "disclosures", "--patient", "P-1").stdout))
        self.assertNotIn("warning", b.cli("audit", "log", "--limit", "1").stderr)
        a.stop()
        r = a.cli("audit", "verify", "--db", a.db_path, "--card", a.card_file)
        self.assertIn("recorded rollback-detected 1 time", r.stdout)
        a.start()  # counted again from the log at start-up
        self.assertIn("warning: a recorded rollback-detected 1 time", a.cli("audit", "log", "--limit", "1").stderr)
        # More checkpoints, more refusals: still one alarm on each side.
        for i in range(8):
            a.send("b", "later %d" % i)
        wait_for(lambda: "the alarm is already recorded" in open(b.log).read(), 30, "b to refuse again")
        self.assertEqual(len(a.audit("rollback-detected")), 1)
        self.assertEqual(len(b.audit("witness-alarm")), 1)

    def test_late_old_checkpoint_is_not_an_alarm(self):
        """A checkpoint of a's arriving after a newer one (queued on an earlier connection
        when a restarted, as a SIGKILL under load leaves them) is not a rollback."""
        a = self.node("a", start=False)
        b = self.node("b")
        a.write_config("audit", "checkpoint_entries", "4")
        a.start()
        link(a, b)
        for i in range(3):
            a.send("b", "first %d" % i)
        wait_for(lambda: b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'"), 20, "b to witness a")
        old_size, old_note = a.query("SELECT tree_size, note FROM checkpoints ORDER BY tree_size LIMIT 1")[0]
        for i in range(6):
            mid = a.send("b", "later %d" % i)
        self.wait_delivered(a, mid, "b")
        held = lambda: b.query("SELECT tree_size FROM witnessed WHERE peer = 'a'")[0][0]
        wait_for(lambda: held() > old_size, 20, "b to witness a's newer checkpoint")
        size = held()
        # Frame{witness = WitnessRequest{checkpoint = the old note, old_size = 0}}, signed by a.
        note = old_note.encode()
        req = b"\x0a" + varint(len(note)) + note
        frame = b"\x22" + varint(len(req)) + req
        lines, _ = a.rawpeer(b, "raw-hex", frame.hex())
        self.assertEqual(lines[0], "witness-reply %d 0 older than the checkpoint held" % size, lines)
        self.assertEqual(b.audit("witness-alarm"), [])
        self.assertEqual(b.query("SELECT count(*) FROM witness_alarms")[0][0], 0)
        self.assertEqual(held(), size)
        self.assertNotIn("ALARM", b.cli("status").stdout)
        # A new checkpoint still goes through.
        for i in range(6):
            mid = a.send("b", "after %d" % i)
        self.wait_delivered(a, mid, "b")
        wait_for(lambda: held() > size, 20, "b to witness a's next checkpoint")
        self.assertEqual(b.audit("witness-alarm"), [])


class AuditorTools(NodeTest):
    def setUp(self):
        super().setUp()
        self.a = self.node("a", start=False)
        self.b = self.node("b")
        self.a.write_config("audit", "checkpoint_entries", "3")
        self.a.start()
        link(self.a, self.b)
        self.mid = self.a.send("b", "hello")
        self.wait_delivered(self.a, self.mid, "b")
        wait_for(lambda: self.a.query("SELECT count(*) FROM checkpoints")[0][0] > 0, 20, "a checkpoint")

    def test_log_json_and_every_query_audited(self):
        before = len(self.a.audit("audit-query"))
        log = json.loads(self.a.cli("audit", "log", "--json").stdout)
        entries = log["entries"] if isinstance(log, dict) else log
        actions = [e["action"] for e in entries]
        self.assertIn("message-queued", actions)
        self.assertIn("message-delivered", actions)
        self.assertNotIn("hello", json.dumps(log))
        self.assertEqual(len(self.a.audit("audit-query")), before + 1)

    def test_log_filters_are_validated(self):
        for bad in ("bogus", "checkpoint"):
            r = self.a.cli("audit", "log", "--action", bad, check=False)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("'%s' is not an audit action" % bad, r.stderr)
            self.assertIn("message-queued", r.stderr)
        r = self.a.cli("audit", "log", "--patient", "bad id", check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("is not a patient id", r.stderr)
        rows = json.loads(self.a.cli("audit", "log", "--action", "message-queued", "--json").stdout)["entries"]
        self.assertTrue(rows)
        self.assertEqual({e["action"] for e in rows}, {"message-queued"})
        # The list in the error is the one PROTOCOL.md documents, and every action written is in it.
        r = self.a.cli("audit", "log", "--action", "bogus", check=False)
        listed = set(r.stderr.split("one of: ")[1].rstrip(")\n").split(", "))
        proto = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "PROTOCOL.md")).read()
        para = proto[proto.index("\nActions: "):]
        para = para[:para.index("\n\n")]
        self.assertEqual(listed, set(re.findall(r"`([a-z]+(?:-[a-z]+)+)`", para)))
        written = {row[0] for row in self.a.query("SELECT DISTINCT action FROM audit")}
        self.assertLessEqual(written, listed)

    def test_log_by_message(self):
        # Who read message M and when: --message instead of --json and filtering by hand.
        other = self.a.send("b", "second")
        self.b.cli("show", self.mid)
        self.b.cli("show", other)
        self.b.cli("show", self.mid)
        rows = self.b.json("audit", "log", "--message", self.mid, "--action", "message-read")["entries"]
        self.assertEqual(len(rows), 2)
        self.assertTrue(all(r["message_id"] == self.mid and r["actor"].startswith(("user:", "uid:")) for r in rows))
        every = self.b.json("audit", "log", "--message", self.mid.upper())["entries"]
        self.assertEqual({r["message_id"] for r in every}, {self.mid})
        self.assertEqual([r["action"] for r in every], ["message-received", "message-read", "message-read"])
        table = self.b.cli("audit", "log", "--message", self.mid).stdout
        self.assertEqual(table.count("message-read"), 2)
        # The sender's side: queued and delivered, and the query itself is audited with the id.
        sent = self.a.json("audit", "log", "--message", self.mid)["entries"]
        self.assertEqual([r["action"] for r in sent], ["message-queued", "message-delivered"])
        self.assertIn("message=" + self.mid, self.a.audit("audit-query")[-1][6])
        # The acknowledgements of the message are found through an index, not a scan of
        # every message (the sub-query of auditor.c).
        plan = " ".join(r[-1] for r in self.b.query("EXPLAIN QUERY PLAN SELECT id FROM messages WHERE ref_id = ?",
                                                    (bytes(16),)))
        self.assertIn("INDEX messages_ref", plan)
        for bad in ("xyz", self.mid[:-1], self.mid + "0", "g" * 32):
            r = self.a.cli("audit", "log", "--message", bad, check=False)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("is not a message id", r.stderr)

    def test_log_by_message_includes_its_acknowledgements(self):
        # "Everything about one message": on the sender's node, the acknowledgement
        # received for M (its own message id, linked to M by the ack's ref_id) is shown
        # with M's entries; on the acknowledging node, the acknowledgement's queued and
        # delivered entries. Entries of other messages stay out.
        mc = self.a.cli("med-change", "--to", "b", "--patient", "P-1042", "--drug", "sertraline", "--action",
                        "increase", "--from", "50 mg daily", "--dose", "100 mg daily", "--reason", "partial response")
        m = mc.stdout.strip()
        self.wait_delivered(self.a, m, "b")
        self.b.cli("show", m)
        ack = self.b.cli("ack", m, "--comment", "Seen.").stdout.strip()
        self.assertEqual(len(ack), 32, ack)
        self.wait_delivered(self.b, ack, "a")
        wait_for(lambda: self.a.query("SELECT 1 FROM acks WHERE hex(message_id) = upper(?)", (m,)), 20,
                 "the acknowledgement at a")
        sent = self.a.json("audit", "log", "--message", m)["entries"]
        self.assertEqual([(r["action"], r["message_id"]) for r in sent],
                         [("message-queued", m), ("message-delivered", m), ("message-received", ack)])
        self.assertEqual(sent[2]["details"], "acknowledges " + m)
        self.assertEqual(sent, self.a.json("audit", "log", "--message", m.upper())["entries"])
        got = self.b.json("audit", "log", "--message", m)["entries"]
        self.assertEqual([(r["action"], r["message_id"]) for r in got],
                         [("message-received", m), ("message-read", m), ("message-queued", ack),
                          ("message-delivered", ack)])
        # The acknowledgement asked about itself is just itself; M's first text is untouched.
        self.assertEqual({r["message_id"] for r in self.a.json("audit", "log", "--message", ack)["entries"]}, {ack})
        self.assertEqual([r["action"] for r in self.a.json("audit", "log", "--message", self.mid)["entries"]],
                         ["message-queued", "message-delivered"])
        # --action still narrows it.
        self.assertEqual([r["message_id"] for r in self.a.json("audit", "log", "--message", m, "--action",
                                                                "message-received")["entries"]], [ack])

    def test_until_a_date_includes_that_day(self):
        # "--since D --until D" is day D (UTC): it used to end at 00:00 of D and find nothing.
        today = time.strftime("%Y-%m-%d", time.gmtime())
        queued = json.loads(self.a.cli("audit", "log", "--action", "message-queued", "--json").stdout)["entries"]
        self.assertTrue(queued)
        for cmd in (["audit", "log", "--action", "message-queued"], ["audit", "export"]):
            out = self.a.cli(*cmd, "--since", today, "--until", today, "--json" if cmd[1] == "log" else "--format",
                             *([] if cmd[1] == "log" else ["jsonl"])).stdout
            if cmd[1] == "log":
                got = json.loads(out)["entries"]
                self.assertEqual([e["seq"] for e in got], [e["seq"] for e in queued])
            else:
                self.assertGreater(len(out.splitlines()), len(queued))
        # A time after --until includes the minute, or the second, it names (the listing
        # shows seconds): "--since 04:32 --until 04:32" is that minute.
        e = queued[0]
        t = self.a.query("SELECT time_ms FROM audit WHERE seq = ?", (e["seq"],))[0][0]
        if t % 1000:  # an entry at .000 would be found by the old end too
            minute = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(t // 1000))
            second = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t // 1000))
            for s, u in ((minute, minute), (second, second), (minute, second)):
                got = self.a.json("audit", "log", "--since", s, "--until", u, "--action", "message-queued")["entries"]
                self.assertIn(e["seq"], [x["seq"] for x in got], (s, u))
            ms = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1000)) + ".%03dZ" % (t % 1000 - 1)
            got = self.a.json("audit", "log", "--since", minute, "--until", ms, "--action", "message-queued")
            self.assertNotIn(e["seq"], [x["seq"] for x in got["entries"]])
        r = self.a.cli("audit", "log", "--since", "2026-11-24", "--until", "2026-11-23", check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("--since 2026-11-24 is after --until 2026-11-23", r.stderr)

    def test_errors_name_the_real_problem(self):
        size = self.a.query("SELECT max(seq) FROM audit")[0][0]
        r = self.a.cli("audit", "prove", "999999", check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("no audit entry 999999 (the log has ", r.stderr)
        self.assertNotIn("try again", r.stderr)
        self.assertGreaterEqual(int(r.stderr.split("the log has ")[1].split()[0]), size)
        # An entry after the latest checkpoint: when the next one comes is said.
        latest = self.a.query("SELECT max(tree_size) FROM checkpoints")[0][0] or 0
        newest = self.a.query("SELECT max(seq) FROM audit")[0][0]
        self.assertGreater(newest, latest)  # the queries above were logged after it
        r = self.a.cli("audit", "prove", str(newest), check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r"not yet covered by the latest checkpoint \(%d entries\); the next one is"
                                   r" signed within \d+ s, or once \d+ more entries are logged" % latest)
        missing = os.path.join(self.base, "no-such-dir", "x.json")
        r = self.a.cli("audit", "export", "--output", missing, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("its directory does not exist", r.stderr)
        self.assertNotIn("must not exist", r.stderr)
        exists = os.path.join(self.base, "exists.json")
        open(exists, "w").close()
        r = self.a.cli("audit", "export", "--output", exists, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("already exists", r.stderr)

    def test_output_that_cannot_be_written_is_removed(self):
        # A file size limit (RLIMIT_FSIZE, its signal ignored: the write fails with EFBIG)
        # stands for a full disk: the part written is removed, not left looking like the
        # whole log or a whole checkpoint.
        def small_files():
            resource.setrlimit(resource.RLIMIT_FSIZE, (100, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

        for args in (("audit", "export"), ("audit", "export", "--format", "fhir"), ("audit", "checkpoint")):
            path = os.path.join(self.base, "-".join(args[1:]) + ".out")
            r = subprocess.run([harness.LIAISON, "--home", self.a.home] + list(args) + ["--output", path],
                               capture_output=True, text=True, timeout=30, preexec_fn=small_files)
            self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
            self.assertIn("cannot write %s (the part written was removed)" % path, r.stderr)
            self.assertFalse(os.path.exists(path), args)
            # Without the limit the same command writes the whole file, readable by its
            # owner only whatever the umask (it holds patient tags and the log's details).
            r = subprocess.run([harness.LIAISON, "--home", self.a.home] + list(args) + ["--output", path],
                               capture_output=True, text=True, timeout=30, preexec_fn=lambda: os.umask(0))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertGreater(os.path.getsize(path), 100)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, args)
            # Never through a symbolic link, even one to a file that does not exist yet.
            link_path = path + ".link"
            os.symlink(os.path.join(self.base, "elsewhere-" + args[-1]), link_path)
            r = self.a.cli(*args, "--output", link_path, check=False)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("already exists", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.base, "elsewhere-" + args[-1])))

    def test_checkpoint_export_feeds_offline_verify(self):
        own = self.a.cli("audit", "checkpoint").stdout
        self.assertTrue(own.startswith("liaison.audit/a\n"), own)
        self.assertIn(own, [r[0] for r in self.a.query("SELECT note FROM checkpoints")])
        wait_for(lambda: self.b.query("SELECT 1 FROM witnessed WHERE peer = 'a'"), 20, "b to witness a")
        path = os.path.join(self.base, "witnessed.txt")
        r = self.b.cli("audit", "checkpoint", "--peer", "a", "--output", path)
        self.assertIn(path, r.stdout)
        with open(path) as f:
            self.assertEqual(f.read(), self.b.query("SELECT note FROM witnessed WHERE peer = 'a'")[0][0])
        info = self.b.json("audit", "checkpoint", "--peer", "a")
        self.assertEqual(info["origin"], "a")
        self.assertGreater(info["size"], 0)
        # Its time is when a signed it, from the note's own time line.
        signed_ms = int(info["note"].split("\n")[3].split()[1])
        self.assertEqual(info["time"], time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(signed_ms // 1000))
                         + ".%03dZ" % (signed_ms % 1000))
        self.a.stop()
        copy = os.path.join(self.base, "copy.db")
        shutil.copy(self.a.db_path, copy)
        ok = self.b.cli("audit", "verify", "--db", copy, "--card", self.a.card_file, "--checkpoint", path, check=False)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        r = self.b.cli("audit", "checkpoint", "--peer", "nobody", check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("holds no checkpoint of 'nobody'", r.stderr)
        r = self.b.cli("audit", "checkpoint", "--peer", "a", "--output", path, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("already exists", r.stderr)

    def test_verify_through_the_audit_socket(self):
        r = self.a.cli("audit", "verify", check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_prove_and_verify_proof_offline(self):
        proof_path = os.path.join(self.base, "proof.json")

        def write(text):
            with open(proof_path, "w") as f:
                f.write(text)
        r = self.a.cli("audit", "prove", "2")
        write(r.stdout)
        ok = self.a.cli("audit", "verify-proof", proof_path, check=False)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        # It says what the proven entry records, read from the entry's own bytes: the
        # same entry as audit log shows.
        logged = [e for e in json.loads(self.a.cli("audit", "log", "--json").stdout)["entries"] if e["seq"] == 2][0]
        self.assertIn("proof holds: entry 2 is in the audit log of a", ok.stdout)
        row = [l for l in ok.stdout.splitlines() if l.strip().startswith("2 ")]
        self.assertEqual(len(row), 1, ok.stdout)
        for k in ("actor", "action", "outcome"):
            self.assertIn(logged[k], row[0])
        j = json.loads(self.a.cli("audit", "verify-proof", proof_path, "--json").stdout)
        self.assertTrue(j["ok"])
        del logged["entry_hash"]
        self.assertEqual(j["entry_fields"], logged)
        proof = json.loads(r.stdout)
        # Change the entry the proof is about, keeping it well formed (its time): the
        # proof no longer holds.
        changed = dict(proof, entry=proof["entry"][:30] + ("00" if proof["entry"][30:32] != "00" else "01") +
                       proof["entry"][32:])
        write(json.dumps(changed))
        bad = self.a.cli("audit", "verify-proof", proof_path, check=False)
        self.assertEqual(bad.returncode, 4, bad.stdout + bad.stderr)
        self.assertIn("proof does NOT hold: the entry is not in the log the checkpoint signs", bad.stderr)
        # An entry that is not an audit entry's encoding at all (a byte more).
        write(json.dumps(dict(proof, entry=proof["entry"] + "00")))
        bad = self.a.cli("audit", "verify-proof", proof_path, check=False)
        self.assertEqual(bad.returncode, 4, bad.stdout + bad.stderr)
        self.assertIn("proof does NOT hold: the entry is not an audit entry in its canonical encoding", bad.stderr)

    def test_disclosures_by_patient(self):
        # A text message has no patient; a disclosure listing for an unknown patient is empty.
        out = json.loads(self.a.cli("audit", "disclosures", "--patient", "P-0001", "--json").stdout)
        rows = out["disclosures"] if isinstance(out, dict) else out
        self.assertEqual(rows, [])


if __name__ == "__main__":
    unittest.main()
