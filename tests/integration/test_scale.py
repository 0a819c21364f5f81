# SPDX-License-Identifier: Apache-2.0
"""A node after a long time in use: what an auditor and a clinician read from it must not
grow with the whole history at once (an export read page by page, never held whole), must
find what it asks for by index, not by reading every entry, and must list the overdue
acknowledgements of each change without rereading every flag."""
import json
import os
import unittest

from harness import NodeTest, link, wait_for

PAGE = 2000  # AUDIT_PAGE_ENTRIES in client/cmd_audit.c


def note(node, to, patient, text="Session went well."):
    p = node.cli("note", "--to", to, "--patient", patient, "--session-date", "2026-11-16", "-", input=text)
    mid = p.stdout.strip()
    assert len(mid) == 32, p.stdout
    return mid


def med_change(node, to, patient):
    p = node.cli("med-change", "--to", to, "--patient", patient, "--drug", "sertraline", "--action", "increase",
                 "--from", "50 mg daily", "--dose", "100 mg daily", "--reason", "partial response", "--urgent")
    mid = p.stdout.strip()
    assert len(mid) == 32, p.stdout
    return mid


class Scale(NodeTest):
    def long_log(self):
        """A node whose audit log holds more than one page of entries: 50 notes about one
        patient, each read by 41 timelines (one audited read per note and timeline)."""
        t = self.node("dr.alvarez", "therapist")
        p = self.node("dr.okafor", "psychiatrist")
        link(t, p)
        ids = [note(t, "dr.okafor", "P-1042", "week %d" % i) for i in range(50)]
        wait_for(lambda: len(p.query("SELECT 1 FROM messages WHERE outgoing = 0")) == len(ids), 30,
                 "the notes to arrive")
        while p.query("SELECT count(*) FROM audit")[0][0] <= PAGE + 10:
            p.cli("patient", "P-1042")
        return t, p

    def test_export_and_log_are_read_page_by_page(self):
        """audit export (JSON lines and FHIR) and audit log without --limit read the log in
        pages of at most PAGE entries, each an audited query, and still give every entry
        once, in order; the FHIR Bundle is written as it comes and is one valid JSON document."""
        _, p = self.long_log()
        size = p.query("SELECT count(*) FROM audit")[0][0]
        self.assertGreater(size, PAGE)
        out = os.path.join(self.base, "log.jsonl")
        p.cli("audit", "export", "--output", out)
        with open(out) as f:
            seqs = [json.loads(line)["seq"] for line in f]
        # Every entry from the first on, once, in order: those the export's own pages added too.
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        self.assertGreater(len(seqs), size)
        pages = [d for (d,) in p.query("SELECT details FROM audit WHERE action = 'audit-query' AND details LIKE"
                                       " 'log since=0 until=0 page after=%' ORDER BY seq")]
        self.assertGreaterEqual(len(pages), 2, "the export was asked for in one piece")
        self.assertEqual(pages[0], "log since=0 until=0 page after=0 limit=%d" % PAGE)
        self.assertEqual(pages[1], "log since=0 until=0 page after=%d limit=%d" % (PAGE, PAGE))

        fhir = os.path.join(self.base, "bundle.json")
        p.cli("audit", "export", "--format", "fhir", "--output", fhir)
        with open(fhir) as f:
            bundle = json.load(f)
        self.assertEqual(bundle["resourceType"], "Bundle")
        self.assertEqual(bundle["type"], "collection")
        urls = [e["fullUrl"] for e in bundle["entry"]]
        self.assertEqual(urls, ["urn:liaison:audit:dr.okafor:%d" % i for i in range(1, len(urls) + 1)])
        self.assertGreater(len(urls), len(seqs))
        self.assertEqual(bundle["entry"][0]["resource"]["resourceType"], "AuditEvent")

        rows = p.json("audit", "log")["entries"]
        self.assertEqual([e["seq"] for e in rows], list(range(1, len(rows) + 1)))
        text = p.cli("audit", "log").stdout.splitlines()
        self.assertGreater(len(text) - 1, len(rows))  # after the header, those and the JSON listing's queries
        # --limit N is still one answer of the newest N.
        self.assertEqual(len(p.json("audit", "log", "--limit", "5")["entries"]), 5)

    def test_audit_lookups_use_an_index(self):
        """What audit disclosures --patient and audit log --message ask is found by index,
        not by reading every entry of a log of hundreds of thousands."""
        t = self.node("dr.alvarez", "therapist")
        p = self.node("dr.okafor", "psychiatrist")
        link(t, p)
        mid = note(t, "dr.okafor", "P-1042")
        self.wait_delivered(t, mid, "dr.okafor")
        t.cli("audit", "disclosures", "--patient", "P-1042")
        for node in (t, p):
            plan = " ".join(r[-1] for r in node.query(
                "EXPLAIN QUERY PLAN SELECT seq FROM audit WHERE time_ms >= ?1 AND time_ms <= ?2 AND patient_tag = ?3"
                " AND action IN ('message-queued', 'message-delivered', 'delivery-rejected') ORDER BY seq DESC",
                (0, 2**62, b"\x00" * 32)))
            self.assertIn("audit_patient", plan)
            plan = " ".join(r[-1] for r in node.query(
                "EXPLAIN QUERY PLAN SELECT seq FROM audit WHERE time_ms >= ?1 AND time_ms <= ?2 AND (message_id = ?3"
                " OR message_id IN (SELECT id FROM messages WHERE ref_id = ?3)) ORDER BY seq DESC",
                (0, 2**62, b"\x00" * 16)))
            self.assertIn("audit_message", plan)
        # And the answers are those of a full reading.
        rows = t.json("audit", "disclosures", "--patient", "P-1042")["disclosures"]
        self.assertEqual([(r["message_id"], r["status"]) for r in rows], [(mid, "disclosed")])
        got = [e["action"] for e in p.json("audit", "log", "--message", mid)["entries"]]
        self.assertIn("message-received", got)

    def test_overdue_recipients_of_each_change(self):
        """Each change in outbox and status names its own overdue recipients, read by
        the change's key: not those of another change, and not one who acknowledged."""
        t = self.node("dr.alvarez", "therapist")
        rx = self.node("rx.chen", "pharmacist")
        p = self.node("dr.okafor", "psychiatrist", start=False)
        p.write_config("ack", "urgent_deadline_s", "1")
        p.start()
        link(t, rx, p)
        a = med_change(p, "dr.alvarez,rx.chen", "P-1042")
        b = med_change(p, "dr.alvarez", "P-2000")
        t.cli("show", a)
        t.cli("ack", a)
        wait_for(lambda: len(p.audit("ack-overdue")) >= 2, 30, "the overdue flags")
        out = {m["id"]: sorted(m["overdue"]) for m in p.json("outbox")["messages"]}
        wait_for(lambda: {m["id"]: sorted(m["overdue"]) for m in p.json("outbox")["messages"]}[a] == ["rx.chen"],
                 20, "dr.alvarez's acknowledgement to clear her flag")
        out = {m["id"]: sorted(m["overdue"]) for m in p.json("outbox")["messages"]}
        self.assertEqual(out, {a: ["rx.chen"], b: ["dr.alvarez"]})
        st = {m["id"]: sorted(m["overdue"]) for m in p.json("status")["overdue"]}
        self.assertEqual(st, {a: ["rx.chen"], b: ["dr.alvarez"]})

    def test_status_and_inbox_say_how_many_overdue_are_not_listed(self):
        """status lists at most 64 overdue acknowledgements (the top of inbox takes them
        from it); with more, both say how many more there are, and the JSON counts all."""
        t = self.node("dr.alvarez", "therapist")
        p = self.node("dr.okafor", "psychiatrist", start=False)
        p.write_config("ack", "urgent_deadline_s", "1")
        p.start()
        link(t, p)
        for i in range(65):
            med_change(p, "dr.alvarez", "P-%04d" % i)
        wait_for(lambda: len(p.audit("ack-overdue")) >= 65, 60, "65 overdue flags")
        st = p.json("status")
        self.assertEqual((st["overdue_total"], len(st["overdue"])), (65, 64))
        more = "... and 1 more medication change with overdue acknowledgements, not listed here (these 64"
        self.assertIn(more, p.cli("status").stdout)
        self.assertIn(more, p.cli("inbox").stdout)
        box = p.json("inbox")
        self.assertEqual((box["overdue_total"], len(box["overdue"]), box["overdue_scope"]), (65, 64, "all"))


if __name__ == "__main__":
    unittest.main()
