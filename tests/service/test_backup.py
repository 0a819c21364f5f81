# SPDX-License-Identifier: Apache-2.0
"""Backing up a running node and restoring it, as liaisond(8) BACKUP AND RESTORE tells
the administrator: `sqlite3 liaison.db ".backup COPY"` while the daemon runs and takes
messages, then (daemon stopped) the copy put back in place of the database and its
-wal and -shm files. The copy is consistent, the daemon keeps working during the backup,
and the restored node starts, sends again what was queued when the copy was made (the
recipient keeps one of each) and goes on."""
import os
import shutil
import sqlite3
import stat
import subprocess
import threading
import unittest

from svc import LIAISON, LIAISOND, ServiceTest, clean_env, wait_for

SQLITE3 = shutil.which("sqlite3")
QUEUED, SENT, DELIVERED = 0, 1, 2


def link(a, b):
    a.add_peer(b)
    b.add_peer(a)


@unittest.skipUnless(SQLITE3, "the sqlite3 command is not installed")
class BackupRestoreTest(ServiceTest):
    def test_online_backup_and_restore(self):
        a = self.node("dr.a")
        b = self.node("dr.b")
        link(a, b)
        first = a.send(b.id, "before the backup")
        wait_for(lambda: a.delivery_states(b.id).get(first) == DELIVERED, 20, "the first delivery")
        # b is away: two messages wait in a's queue when the copy is made.
        self.assertEqual(b.stop(), 0)
        queued = [a.send(b.id, "queued %d" % i) for i in range(2)]

        # Sends keep coming while the backup runs; none of them may fail.
        failures, sent = [], []

        def sender():
            for i in range(30):
                p = a.cli("send", "--to", b.id, "-", input="during the backup %d" % i, check=False)
                (sent if p.returncode == 0 else failures).append(p.stdout + p.stderr)

        t = threading.Thread(target=sender)
        t.start()
        copy = os.path.join(self.base, "backup", "liaison.db")
        os.makedirs(os.path.dirname(copy), mode=0o700)
        for _ in range(3):  # the documented command, more than once while the sends run
            if os.path.exists(copy):
                os.unlink(copy)
            p = subprocess.run([SQLITE3, a.db_path, ".backup %s" % copy], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
        t.join(120)
        self.assertEqual(failures, [], "sends failed during the backup")
        self.assertEqual(len(sent), 30)

        # The copy is one consistent database, with the WAL's transactions in it.
        con = sqlite3.connect("file:%s?mode=ro" % copy, uri=True)
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        held = {r[0].lower() for r in con.execute("SELECT hex(id) FROM messages")}
        con.close()
        self.assertTrue({first} | set(queued) <= held)
        p = subprocess.run([LIAISON, "audit", "verify", "--db", copy, "--card", a.card_file], capture_output=True,
                           text=True, timeout=60, env=clean_env())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        # Restore: stop, put the copy in place of the database, its -wal and -shm, start.
        b.start()
        wait_for(lambda: all(a.delivery_states(b.id).get(m) == DELIVERED for m in queued), 60,
                 "the queued messages to be delivered before the restore")
        self.assertEqual(a.stop(), 0)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(a.db_path + suffix):
                os.unlink(a.db_path + suffix)
        shutil.copyfile(copy, a.db_path)
        os.chmod(a.db_path, 0o600)
        p = subprocess.run([LIAISOND, "--check-config", "--home", a.home], capture_output=True, text=True, timeout=30, env=clean_env())
        self.assertEqual(p.returncode, 0, p.stderr)
        a.start()
        self.assertEqual(stat.S_IMODE(os.stat(a.db_path).st_mode), 0o600)
        # What was still queued in the copy is sent again; b keeps one of each.
        in_copy_undelivered = [m for m in queued if m in held]
        wait_for(lambda: all(a.delivery_states(b.id).get(m) == DELIVERED for m in in_copy_undelivered), 60,
                 "the restored node to deliver its queue again")
        for m in queued:
            self.assertEqual(b.query("SELECT count(*) FROM messages WHERE hex(id) = upper(?)", (m,))[0][0], 1, m)
        # And the node goes on.
        after = a.send(b.id, "after the restore")
        wait_for(lambda: a.delivery_states(b.id).get(after) == DELIVERED, 20, "a delivery after the restore")
        self.assertEqual(a.cli("audit", "verify").returncode, 0)


if __name__ == "__main__":
    unittest.main()
