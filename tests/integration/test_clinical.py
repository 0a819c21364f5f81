# SPDX-License-Identifier: Apache-2.0
"""Clinical messages across real daemons (issue 3): progress notes, medication changes
with closed-loop acknowledgement, overdue flags, case reviews, the patient timeline."""
import datetime
import json
import os
import sqlite3
import stat
import time
import unittest

from harness import NodeTest, link, wait_for
from test_hardening import control_raw, field, send_request

SECRET = "Jane Roe P-1042 disclosed abuse"


def note_payload(score_name, value=30, lo=0, hi=27):
    """A progress note (proto/payload.proto) with one custom score."""
    score = field(1, score_name) + field(2, value) + (field(3, lo) if lo else b"") + field(4, hi)
    return field(1, field(1, "P-1042")) + field(2, "2026-11-16") + field(4, "Session went well.") + field(7, score)


def note(node, to, patient, text="Session went well.", *extra):
    p = node.cli("note", "--to", to, "--patient", patient, "--session-date", "2024-11-16", *extra, "-", input=text)
    mid = p.stdout.strip()
    assert len(mid) == 32, p.stdout
    return mid


def med_change(node, to, patient, *extra):
    p = node.cli("med-change", "--to", to, "--patient", patient, "--drug", "sertraline", "--action", "increase",
                 "--from", "50 mg daily", "--dose", "100 mg daily", "--reason", "partial response", *extra)
    mid = p.stdout.strip()
    assert len(mid) == 32, p.stdout
    return mid


def ids(listing):
    msgs = listing["messages"] if isinstance(listing, dict) else listing
    return [m["id"] for m in msgs]


class Clinical(NodeTest):
    def team(self):
        t = self.node("dr.alvarez", "therapist")
        p = self.node("dr.okafor", "psychiatrist")
        rx = self.node("rx.chen", "pharmacist")
        link(t, p, rx)
        return t, p, rx

    def test_progress_note_with_scores(self):
        t, p, _ = self.team()
        mid = note(t, "dr.okafor", "P-1042", "Engaged in CBT; sleep improved.", "--phq9", "14", "--gad7", "11",
                   "--risk", "low", "--modality", "cbt")
        self.wait_delivered(t, mid, "dr.okafor")
        out = p.cli("show", mid).stdout
        self.assertIn("14", out)
        self.assertIn("11", out)
        self.assertIn("Engaged in CBT", out)
        self.assertIn(mid, ids(p.json("inbox", "--patient", "P-1042")))
        self.assertEqual(ids(p.json("inbox", "--patient", "P-9999")), [])

    def test_clinical_values_from_a_file_not_the_command_line(self):
        """liaison --args FILE: the patient's id and the scores come from the file, one
        argument per line, not from the command line that every local account can read."""
        t, p, _ = self.team()
        path = os.path.join(self.base, "note-args")
        with open(path, "w") as f:
            f.write("# the note's clinical values\n--patient\nP-7731\n--phq9\n19\r\n\n--risk\nmoderate\n")
        os.chmod(path, 0o600)  # this user's alone, or it is refused
        r = t.cli("--args", path, "note", "--to", "dr.okafor", "--session-date", "2024-11-16", "-",
                  input="Low mood; safety plan reviewed.")
        mid = r.stdout.strip()
        self.wait_delivered(t, mid, "dr.okafor")
        self.assertEqual(ids(p.json("inbox", "--patient", "P-7731")), [mid])
        shown = p.json("show", mid)
        self.assertIn("19", json.dumps(shown))
        self.assertIn("moderate", json.dumps(shown))
        # What the file cannot be used with, and a file that is not there.
        r = t.cli("--args", path, "send", "--to", "dr.okafor", "--", "-", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--args: the command line has '--'", r.stderr)
        r = t.cli("--args", path + ".missing", "status", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--args: cannot open", r.stderr)

    def test_out_of_range_phq9_refused_at_the_cli(self):
        t, _, _ = self.team()
        r = t.cli("note", "--to", "dr.okafor", "--patient", "P-1042", "--phq9", "28", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("phq9", r.stderr.lower().replace("-", ""))
        self.assertEqual(t.query("SELECT count(*) FROM messages")[0][0], 0)
        r = t.cli("note", "--to", "dr.okafor", "--patient", "P-1042", "--gad7", "22", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1)
        # A month typed as 13 is not a date, not a date "after today".
        r = t.cli("note", "--to", "dr.okafor", "--patient", "P-1042", "--session-date", "2026-13-01", "-", input="x",
                  check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("'2026-13-01' is not a date", r.stderr)
        self.assertNotIn("after today", r.stderr)
        r = t.cli("note", "--to", "dr.okafor", "--patient", "P-1042", "--risk", "extreme", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(t.query("SELECT count(*) FROM messages")[0][0], 0)
        # A medication change more than a year away is a typo the pharmacist would act on.
        today = datetime.date.today()
        for when in ("2099-01-01", "1999-01-01", (today + datetime.timedelta(days=400)).isoformat(),
                     (today - datetime.timedelta(days=400)).isoformat()):
            r = t.cli("med-change", "--to", "dr.okafor", "--patient", "P-1042", "--drug", "sertraline", "--action",
                      "start", "--dose", "50 mg daily", "--reason", "r", "--effective", when, check=False)
            self.assertEqual(r.returncode, 1, (when, r.stderr))
            self.assertIn("--effective: %s is more than a year from today (%s): a typo? (nothing was sent)"
                          % (when, today.isoformat()), r.stderr)
        self.assertEqual(t.query("SELECT count(*) FROM messages")[0][0], 0)
        for when in ((today + datetime.timedelta(days=300)).isoformat(),
                     (today - datetime.timedelta(days=300)).isoformat()):
            med_change(t, "dr.okafor", "P-1042", "--effective", when)

    def test_medication_change_closed_loop(self):
        t, p, rx = self.team()
        mid = med_change(p, "dr.alvarez,rx.chen", "P-1042", "--urgent", "--monitor", "activation")
        self.wait_delivered(p, mid, "dr.alvarez")
        self.wait_delivered(p, mid, "rx.chen")
        self.assertIn(mid, ids(t.json("inbox", "--needs-ack")))
        # liaison status says what this node owes, so a change is not missed outside the inbox.
        self.assertEqual(t.json("status")["awaiting_my_ack"], 1)
        self.assertIn("To acknowledge: 1 medication change (list: liaison inbox --needs-ack", t.cli("status").stdout)
        self.assertEqual(p.json("status")["awaiting_my_ack"], 0)
        # ...and what the others owe the sender, until each has acknowledged.
        self.assertEqual(p.json("status")["awaiting_their_ack"], 1)
        self.assertIn("Awaiting acknowledgement, not yet overdue: 1 medication change you sent", p.cli("status").stdout)
        self.assertEqual(t.json("status")["awaiting_their_ack"], 0)
        t.cli("show", mid)
        t.cli("ack", mid, "--comment", "Seen; will watch for activation.")
        wait_for(lambda: p.query("SELECT by FROM acks WHERE hex(message_id) = upper(?)", (mid,)), 20,
                 "the acknowledgement at the psychiatrist")
        # The pharmacist, also a recipient of the change, sees it too.
        wait_for(lambda: rx.query("SELECT by FROM acks WHERE hex(message_id) = upper(?)", (mid,)), 20,
                 "the acknowledgement at the pharmacist")
        self.assertNotIn(mid, ids(t.json("inbox", "--needs-ack")))
        self.assertEqual(t.json("status")["awaiting_my_ack"], 0)
        self.assertNotIn("To acknowledge", t.cli("status").stdout)
        self.assertEqual(rx.json("status")["awaiting_my_ack"], 1)
        self.assertIn("acknowledged by dr.alvarez", p.cli("outbox").stdout)
        self.assertEqual(p.json("status")["awaiting_their_ack"], 1)  # rx.chen has not yet
        # The therapist's acknowledgement does not close the pharmacist's: rx.chen's inbox
        # still marks the change [needs ack] (it used to drop the tag once anyone had acked),
        # and show ends with the command to run.
        self.assertIn(mid, ids(rx.json("inbox", "--needs-ack")))
        line = [l for l in rx.cli("inbox").stdout.splitlines() if l.startswith(mid)][0]
        self.assertIn("[needs ack]", line)
        self.assertTrue(rx.cli("show", mid).stdout.rstrip().endswith("Acknowledge it with: liaison ack %s" % mid))
        # With its sender removed from the directory, show says what acknowledging needs
        # first (the acknowledgement is a message to them), and the command after it.
        rx.cli("peer", "remove", "dr.okafor")
        self.assertTrue(rx.cli("show", mid).stdout.rstrip().endswith(
            "It waits for an acknowledgement, but dr.okafor is no longer in this node's directory: add their card"
            " again (liaison peer add CARD), then: liaison ack %s" % mid))
        rx.add_peer(p)
        wait_for(lambda: all(x["connected"] for x in rx.json("peer", "list")["peers"]), 20,
                 "rx.chen connected to dr.okafor again")
        self.assertIn("needs your acknowledgement", rx.cli("patient", "P-1042").stdout)
        self.assertTrue(rx.json("show", mid)["awaiting_my_ack"])
        line = [l for l in t.cli("inbox").stdout.splitlines() if l.startswith(mid)][0]
        self.assertNotIn("[needs ack]", line)
        self.assertFalse(t.json("show", mid)["awaiting_my_ack"])
        self.assertNotIn("liaison ack", t.cli("show", mid).stdout)
        rx.cli("ack", mid)
        line = [l for l in rx.cli("inbox").stdout.splitlines() if l.startswith(mid)][0]
        self.assertNotIn("[needs ack]", line)
        self.assertEqual(rx.json("status")["awaiting_my_ack"], 0)
        # Both have acknowledged: nothing waits at the sender any more.
        wait_for(lambda: p.query("SELECT count(*) FROM acks WHERE hex(message_id) = upper(?)", (mid,))[0][0] == 2, 20,
                 "both acknowledgements at the psychiatrist")
        self.assertEqual(p.json("status")["awaiting_their_ack"], 0)
        self.assertNotIn("Awaiting acknowledgement", p.cli("status").stdout)

    def test_ack_of_unknown_or_own_message_refused(self):
        t, p, _ = self.team()
        r = t.cli("ack", "00" * 16, check=False)
        self.assertEqual(r.returncode, 3)
        mid = med_change(p, "dr.alvarez", "P-1042")
        r = p.cli("ack", mid, check=False)
        self.assertEqual(r.returncode, 3)
        self.assertEqual(p.query("SELECT count(*) FROM messages WHERE content_type = 4")[0][0], 0)

    def test_ack_of_an_unread_message_refused(self):
        # "acknowledged by rx.chen" tells the psychiatrist the change was seen: an ack sent
        # straight from `inbox --needs-ack`, the change never opened, closed the loop anyway.
        t, p, _ = self.team()
        mid = med_change(p, "dr.alvarez", "P-1042", "--urgent")
        self.wait_delivered(p, mid, "dr.alvarez")
        before = len(t.audit())
        r = t.cli("ack", mid, "--comment", "ok", check=False)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("has not been read on this node: read it first with liaison show %s" % mid, r.stderr)
        self.assertIn("nothing was sent", r.stderr)
        self.assertEqual(t.query("SELECT count(*) FROM messages WHERE content_type = 4")[0][0], 0)
        rows = t.audit()[before:]
        self.assertEqual([(x[2], x[3]) for x in rows], [("request-refused", "refused")])
        # The timeline shows the gist and leaves the change unread: still not enough.
        t.cli("patient", "P-1042")
        self.assertEqual(t.cli("ack", mid, check=False).returncode, 3)
        self.assertIn(mid, ids(t.json("inbox", "--needs-ack")))
        t.cli("show", mid)
        t.cli("ack", mid, "--comment", "Seen.")
        wait_for(lambda: p.query("SELECT by FROM acks WHERE hex(message_id) = upper(?)", (mid,)), 20,
                 "the acknowledgement at the psychiatrist")

    def test_ack_comment_shown_with_the_change(self):
        # A comment is often the point of an acknowledgement ("already on 150 mg"): show of
        # the change printed only "acknowledged by rx.chen at ...", the comment sat in a
        # separate inbox line that just said "acknowledgement".
        t, p, rx = self.team()
        mid = med_change(p, "dr.alvarez,rx.chen", "P-1042")
        self.wait_delivered(p, mid, "dr.alvarez")
        self.wait_delivered(p, mid, "rx.chen")
        rx.cli("show", mid)
        comment = "Seen. But she is already on 150 mg per our fill history.\nPlease confirm."
        ack = rx.cli("ack", mid, "--comment", comment).stdout.strip()
        t.cli("show", mid)
        t.cli("ack", mid)  # no comment
        wait_for(lambda: len(p.query("SELECT by FROM acks WHERE hex(message_id) = upper(?)", (mid,))) == 2, 20,
                 "both acknowledgements at the psychiatrist")
        before = len(p.audit("message-read"))
        out = p.cli("show", mid).stdout
        self.assertIn("acknowledged by rx.chen at ", out)
        self.assertIn("    comment: Seen. But she is already on 150 mg per our fill history.\n"
                      + " " * 15 + "Please confirm.\n", out)
        self.assertEqual(out.count("comment:"), 1)
        # The comment shown is a read of the acknowledgement: audited, and no longer unread.
        reads = p.audit("message-read")[before:]
        self.assertEqual(sorted(r[4].lower() for r in reads), sorted([mid, ack]))
        self.assertNotIn(ack, ids(p.json("inbox", "--unread")))
        # ...and found under the patient, as the comment is about them (PROTOCOL.md 11).
        by_patient = p.json("audit", "log", "--patient", "P-1042", "--action", "message-read")
        self.assertIn(ack, [e.get("message_id") for e in by_patient["entries"]], by_patient)
        acks = {a["by"]: a for a in p.json("show", mid)["acks"]}
        self.assertEqual(acks["rx.chen"]["comment"], comment)
        self.assertNotIn("comment", acks["dr.alvarez"])
        # The other recipient sees it too.
        wait_for(lambda: len(t.query("SELECT by FROM acks WHERE hex(message_id) = upper(?)", (mid,))) == 2, 20,
                 "rx.chen's acknowledgement at the therapist")
        self.assertIn("comment: Seen. But she is already on 150 mg", t.cli("show", mid).stdout)

    def test_overdue_flag_raised_once_and_cleared(self):
        t = self.node("dr.alvarez", "therapist")
        p = self.node("dr.okafor", "psychiatrist", start=False)
        hook_out = os.path.join(self.base, "hook.out")
        hook = os.path.join(self.base, "page.sh")
        open(hook, "w").write("#!/bin/sh\necho \"$LIAISON_EVENT $LIAISON_RECIPIENT $LIAISON_URGENCY\" >> %s\n" % hook_out)
        os.chmod(hook, stat.S_IRWXU)
        p.write_config("ack", "urgent_deadline_s", "1")
        p.write_config("ack", "hook", hook)
        p.start()
        link(t, p)
        mid = med_change(p, "dr.alvarez", "P-1042", "--urgent")
        wait_for(lambda: p.audit("ack-overdue"), 30, "the overdue flag")
        time.sleep(7)  # more scans happen: still flagged once
        self.assertEqual(len(p.audit("ack-overdue")), 1)
        self.assertEqual(p.audit("ack-overdue")[0][6], "urgent medication change not acknowledged within 1 s")
        wait_for(lambda: os.path.exists(hook_out), 10, "the hook to run")
        self.assertEqual(open(hook_out).read().split(), ["ack-overdue", "dr.alvarez", "urgent"])
        self.assertIn(mid, p.cli("status").stdout + p.cli("inbox").stdout)
        # The overdue line identifies the change without decrypting it (no audited read at
        # every status), and says how to see its patient.
        for cmd, scope in (("status", " "), ("inbox", ", all patients ")):
            out = p.cli(cmd).stdout
            self.assertIn("OVERDUE acknowledgements of your medication changes%s(liaison show MSG_ID for the"
                          " patient):" % scope, out)
            line = [ln for ln in out.splitlines() if ln.startswith(mid)][0]
            for part in ("to dr.alvarez", "medication-change", "[URGENT]", ": dr.alvarez]"):
                self.assertIn(part, line)
            # Since when it is overdue: the time sent plus the 1 s deadline, as listed.
            self.assertRegex(line, r"\[OVERDUE since \d{4}-\d\d-\d\d \d\d:\d\d \S+: dr\.alvarez\]")
        sent = [m for m in p.json("outbox")["messages"] if m["id"] == mid][0]
        created = p.query("SELECT created_ms FROM messages WHERE hex(id) = upper(?)", (mid,))[0][0]
        due = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((created + 1000) // 1000))
        self.assertTrue(sent["ack_due"].startswith(due), (sent["ack_due"], due))
        self.assertEqual(p.audit("message-read"), [])
        self.assertRegex(p.cli("show", mid).stdout, r"awaiting acknowledgement from dr\.alvarez \(OVERDUE since \d")
        self.assertIn(mid, json.dumps(p.json("status")))
        # Listed as overdue, so no longer counted as merely awaited.
        self.assertEqual(p.json("status")["awaiting_their_ack"], 0)
        t.cli("show", mid)
        t.cli("ack", mid)
        wait_for(lambda: mid not in json.dumps(p.json("status")), 20, "the flag to clear")
        self.assertEqual(len(p.audit("ack-overdue")), 1)

    def test_inbox_overdue_block_follows_the_patient_filter(self):
        """inbox --patient P heads the listing with the overdue acknowledgements about P
        only (another patient's urgent change there would be read as about P), says that
        others exist elsewhere, and the other filters, which select the messages received,
        do not hide them: the block says so."""
        t = self.node("dr.alvarez", "therapist")
        p = self.node("dr.okafor", "psychiatrist", start=False)
        p.write_config("ack", "urgent_deadline_s", "1")
        p.start()
        link(t, p)
        mine = med_change(p, "dr.alvarez", "P-1042", "--urgent")
        other = med_change(p, "dr.alvarez", "P-2000", "--urgent")
        wait_for(lambda: len(p.audit("ack-overdue")) == 2, 30, "both overdue flags")
        received = note(t, "dr.okafor", "P-1042", "week 1", "--phq9", "12")
        self.wait_delivered(t, received, "dr.okafor")
        out = p.cli("inbox", "--patient", "P-1042").stdout
        self.assertIn("OVERDUE acknowledgements of your medication changes about patient P-1042:\n" + mine, out)
        self.assertNotIn(other, out)
        self.assertIn("(1 more of your changes, about other patients, has overdue acknowledgements: see liaison"
                      " inbox)", out)
        self.assertIn(received, out)
        j = p.json("inbox", "--patient", "P-1042")
        self.assertEqual((ids(j["overdue"]), j["overdue_scope"], j["overdue_other_patients"]), ([mine], "patient", 1))
        # A patient with none overdue: none listed, and the others are not forgotten.
        out = p.cli("inbox", "--patient", "P-3000").stdout
        self.assertNotIn(mine, out)
        self.assertNotIn(other, out)
        self.assertIn("No overdue acknowledgements of your medication changes about patient P-3000 (2 of your"
                      " changes about other patients have some: see liaison inbox).", out)
        self.assertEqual(p.json("inbox", "--patient", "P-3000")["overdue"], [])
        # Without --patient: all of them, and the heading says so.
        out = p.cli("inbox").stdout
        self.assertIn("OVERDUE acknowledgements of your medication changes, all patients (liaison show MSG_ID for the"
                      " patient):", out)
        self.assertIn(mine, out)
        self.assertIn(other, out)
        j = p.json("inbox")
        self.assertEqual((sorted(ids(j["overdue"])), j["overdue_scope"]), (sorted([mine, other]), "all"))
        self.assertNotIn("overdue_other_patients", j)
        # The other filters select the messages received: the overdue ones are shown
        # whatever they say, and the block says so.
        out = p.cli("inbox", "--type", "text").stdout
        self.assertIn(mine, out)
        self.assertIn(other, out)
        self.assertIn("(Shown whatever --type says: it selects the messages received, below.)", out)
        self.assertIn("No messages match.", out)
        out = p.cli("inbox", "--patient", "P-1042", "--type", "note", "--unread").stdout
        self.assertIn(mine, out)
        self.assertNotIn(other, out)
        self.assertIn("(Shown whatever --type and --unread say: they select the messages received, below.)", out)
        # Matching them to the patient reads no content.
        self.assertEqual(p.audit("message-read"), [])

    def test_case_review(self):
        t, p, rx = self.team()
        pcp = self.node("dr.park", "pcp")
        outsider = self.node("dr.x", "therapist")
        link(p, pcp)
        link(outsider, p)
        link(t, pcp)
        link(rx, pcp)
        rid = p.cli("review", "open", "--with", "dr.alvarez,rx.chen", "--patient", "P-1042",
                    "--question", "Nausea on 100 mg: switch or split dose?").stdout.strip()
        self.assertEqual(len(rid), 32)
        wait_for(lambda: rx.query("SELECT 1 FROM reviews WHERE hex(review_id) = upper(?)", (rid,)), 20, "review at rx")
        rx.cli("review", "reply", rid, "-", input="Suggest taking it with food first.")
        # A non-participant cannot write in the review.
        r = outsider.cli("review", "reply", rid, "-", input="let me in", check=False)
        self.assertEqual(r.returncode, 3)
        # Add the PCP: from then on they see the review, and the replies before they came in
        # as the adding node holds them.
        wait_for(lambda: p.query("SELECT count(*) FROM messages WHERE hex(thread_id) = upper(?)", (rid,))[0][0] == 2,
                 20, "rx.chen's reply at the psychiatrist")
        p.cli("review", "add", rid, "dr.park")
        wait_for(lambda: pcp.query("SELECT 1 FROM reviews WHERE hex(review_id) = upper(?)", (rid,)), 20,
                 "review at the pcp")
        # The added participant learns who opened the review and what it asks.
        self.assertEqual(pcp.json("review", "list")["reviews"][0]["opened_by"], "dr.okafor")
        shown = pcp.cli("review", "show", rid).stdout
        self.assertIn("Opened by dr.okafor", shown)
        self.assertIn("Nausea on 100 mg: switch or split dose?", shown)
        self.assertIn("1 reply from before the add, as the adding node holds it", shown)
        self.assertIn("rx.chen:", shown.split("Earlier:")[1])
        self.assertIn("Suggest taking it with food first.", shown)
        shown_json = pcp.json("review", "show", rid)
        self.assertEqual(shown_json["patient"]["id"], "P-1042")  # as the text names it
        add = [m["payload"] for m in shown_json["messages"] if m["payload"]["kind"] == "add"][0]
        self.assertEqual([(e["author"], e["text"]) for e in add["earlier"]],
                         [("rx.chen", "Suggest taking it with food first.")])
        self.assertEqual(add["earlier_left_out"], 0)
        # Only review messages go into a review's thread.
        r = t.cli("send", "--to", "dr.okafor", "--thread", rid, "-", input="off the record", check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("is a case review", r.stderr)
        p.cli("review", "close", rid, "--decision", "Continue 100 mg with food; reassess in 2 weeks.",
              "--action", "dr.alvarez: screen GI symptoms by 2026-12-07")
        for n in (t, rx, pcp):
            wait_for(lambda n=n: n.query("SELECT closed_ms FROM reviews WHERE hex(review_id) = upper(?)", (rid,))[0][0],
                     20, "the review to close at " + n.id)
        shown = t.cli("review", "show", rid).stdout
        self.assertIn("Continue 100 mg with food", shown)
        self.assertIn("dr.alvarez", shown)
        self.assertIn(rid, json.dumps(pcp.json("review", "list")))
        self.assertNotIn(rid, json.dumps(t.json("review", "list", "--open")))
        # Writing after the close is refused.
        r = t.cli("review", "reply", rid, "-", input="late", check=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("review %s is closed and takes no more messages" % rid, r.stderr)
        self.assertIn("liaison review open", r.stderr)

    def test_review_list_names_the_patient(self):
        """Which patient a review is about, without opening it: each review listed costs one
        audited read of its first message ("listed; left unread"), which stays unread."""
        t, p, rx = self.team()
        r1 = p.cli("review", "open", "--with", "dr.alvarez", "--patient", "P-1042", "--label", "J.R.",
                   "--question", "Switch?").stdout.strip()
        r2 = p.cli("review", "open", "--with", "dr.alvarez,rx.chen", "--patient", "P-2000", "--question",
                   "Taper?").stdout.strip()
        wait_for(lambda: len(t.query("SELECT 1 FROM reviews")) == 2, 20, "both reviews at the therapist")
        before = len(t.audit("message-read"))
        lines = t.cli("review", "list").stdout.splitlines()
        self.assertEqual(len(lines), 2, lines)
        line = {ln.split()[0]: ln for ln in lines}
        self.assertIn("patient P-1042 (J.R.)", line[r1])
        self.assertIn("patient P-2000", line[r2])
        listed = {e["id"]: e["patient"] for e in t.json("review", "list")["reviews"]}
        self.assertEqual(listed[r1], {"id": "P-1042", "label": "J.R."})
        self.assertEqual(listed[r2], {"id": "P-2000", "label": None})
        reads = t.audit("message-read")[before:]
        self.assertEqual(len(reads), 4, reads)  # two listings of two reviews
        self.assertTrue(all(r[6] == "listed; left unread" for r in reads), reads)
        self.assertEqual(len(t.json("inbox", "--unread")["messages"]), 2)
        # A review closed more than 30 days ago is left out (its listing would be one more
        # audited read at every look) unless --all asks; a recent one stays.
        p.cli("review", "close", r1, "--decision", "Switched.")
        p.cli("review", "close", r2, "--decision", "Tapered.")
        wait_for(lambda: len(t.query("SELECT 1 FROM reviews WHERE closed_ms IS NOT NULL")) == 2, 20,
                 "both closed at the therapist")
        t.edit_stopped(("UPDATE reviews SET closed_ms = closed_ms - 31 * 86400000 WHERE hex(review_id) = upper(?)",
                        (r1,)))
        before = len(t.audit("message-read"))
        out = t.cli("review", "list").stdout
        self.assertNotIn(r1, out)
        self.assertIn(r2, out)
        self.assertIn("(1 review closed more than 30 days ago not listed", out)
        self.assertIn("liaison review list --all)", out)
        self.assertEqual(len(t.audit("message-read")) - before, 1)
        j = t.json("review", "list")
        self.assertEqual(([e["id"] for e in j["reviews"]], j["closed_not_listed"]), ([r2], 1))
        self.assertEqual(sorted(e["id"] for e in t.json("review", "list", "--all")["reviews"]), sorted([r1, r2]))
        self.assertEqual(t.json("review", "list", "--all")["closed_not_listed"], 0)
        r = t.cli("review", "list", "--all", "--open", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--open and --all ask for different lists", r.stderr)

    def test_review_added_by_an_added_participant(self):
        """A participant who was added (not the opener) adds another: the newcomer still
        learns the original opener and question, carried on from the first ReviewAdd."""
        t, p, rx = self.team()
        pcp = self.node("dr.park", "pcp")
        nurse = self.node("rn.diaz", "nurse")
        for n in (t, p, rx):
            link(n, pcp)
            link(n, nurse)
        link(pcp, nurse)
        rid = p.cli("review", "open", "--with", "dr.alvarez", "--patient", "P-1042",
                    "--question", "Nausea on 100 mg: switch or split dose?").stdout.strip()
        wait_for(lambda: t.query("SELECT 1 FROM reviews WHERE hex(review_id) = upper(?)", (rid,)), 20, "review at t")
        t.cli("review", "add", rid, "dr.park")
        wait_for(lambda: pcp.query("SELECT 1 FROM reviews WHERE hex(review_id) = upper(?)", (rid,)), 20,
                 "review at the pcp")
        # The pcp's first message of the review is the ReviewAdd, not the opening.
        first = pcp.json("review", "show", rid)["messages"][0]
        self.assertEqual((first["from"], first["payload"]["kind"]), ("dr.alvarez", "add"))
        pcp.cli("review", "add", rid, "rn.diaz")
        wait_for(lambda: nurse.query("SELECT 1 FROM reviews WHERE hex(review_id) = upper(?)", (rid,)), 20,
                 "review at the nurse")
        listed = nurse.json("review", "list")["reviews"]
        self.assertEqual([(r["opened_by"]) for r in listed], ["dr.okafor"])
        shown = nurse.cli("review", "show", rid).stdout
        self.assertIn("Opened by dr.okafor", shown)
        self.assertIn("Nausea on 100 mg: switch or split dose?", shown)
        # Everyone who took part before now counts the nurse among the participants.
        for n in (p, t, pcp):
            wait_for(lambda n=n: n.query("SELECT 1 FROM review_participants rp JOIN reviews r USING (review_id) "
                                         "WHERE hex(r.review_id) = upper(?) AND rp.participant = 'rn.diaz'", (rid,)),
                     20, "the nurse among the participants at " + n.id)
        # And the nurse can write in it.
        nurse.cli("review", "reply", rid, "-", input="I can check on her on Tuesday.")

    def test_review_added_participant_is_not_shown_a_false_opening_time(self):
        """A node that learns of a review from an add holds no open, and the add does not
        carry when the review was opened: it is not shown the add's time as the opening,
        but when it was added, and that the opening time is not known there."""
        t, p, rx = self.team()
        rid = p.cli("review", "open", "--with", "dr.alvarez", "--patient", "P-1042",
                    "--question", "Taper?").stdout.strip()
        wait_for(lambda: t.query("SELECT 1 FROM reviews WHERE hex(review_id) = upper(?)", (rid,)), 20, "review at t")
        time.sleep(1.1)  # an add comes later than the open
        p.cli("review", "add", rid, "rx.chen")
        wait_for(lambda: rx.query("SELECT 1 FROM reviews WHERE hex(review_id) = upper(?)", (rid,)), 20,
                 "review at rx")
        at_opener = p.json("review", "show", rid)
        open_msg, add_msg = at_opener["messages"][0], at_opener["messages"][1]
        self.assertEqual((open_msg["payload"]["kind"], add_msg["payload"]["kind"]), ("open", "add"))
        self.assertEqual(at_opener["opened"], open_msg["created"])
        self.assertNotIn("added", at_opener)
        # A participant from the open knows the opening time, as the opener does.
        self.assertEqual(t.json("review", "list")["reviews"][0]["opened"], open_msg["created"])
        self.assertIn("Opened by dr.okafor on ", t.cli("review", "show", rid).stdout)
        # The added participant: who opened it, not when; when it was added, and by whom.
        for got in (rx.json("review", "list")["reviews"][0], rx.json("review", "show", rid)):
            self.assertEqual((got["opened_by"], got["opened"]), ("dr.okafor", None))
            self.assertEqual((got["added_by"], got["added"]), ("dr.okafor", add_msg["created"]))
        shown = rx.cli("review", "show", rid).stdout
        self.assertIn("Opened by dr.okafor, when: not known here (the add that brought this node in does not say)\n"
                      "This node was added to it by dr.okafor on ", shown)
        self.assertNotIn("Opened by dr.okafor on", shown)
        line = rx.cli("review", "list").stdout
        self.assertTrue(line.startswith(rid + "  added "), line)
        self.assertIn("opened by dr.okafor (when: not known here)", line)

    def assert_secret_kept(self, *nodes):
        for n in nodes:
            for row in n.audit():
                self.assertNotIn("Jane", repr(row))
            with open(n.log, errors="replace") as f:
                self.assertNotIn("Jane", f.read())

    def test_score_name_stays_out_of_audit_and_logs(self):
        t, p, _ = self.team()
        # The CLI tells its user which score, by position and name, and sends nothing.
        r = t.cli("note", "--to", "dr.okafor", "--patient", "P-1042", "--score", SECRET + "=30/0-27", "-",
                  input="x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("score 1: '%s' 30 is out of range (0-27)" % SECRET, r.stderr)
        # A client that skips the CLI's checks: the daemon refuses, audits the field only.
        line = control_raw(t, send_request(to=("dr.okafor",), ct=2, payload=note_payload(SECRET)))
        self.assertTrue(line.startswith("response 1 "), line)
        self.assertEqual([row[6] for row in t.audit("request-refused")], ["send: score 1"])
        # A peer that skips them: the receiver rejects with the field only, to the peer too.
        path = os.path.join(self.base, "note.bin")
        with open(path, "wb") as f:
            f.write(note_payload(SECRET, value=3, lo=5, hi=4))
        lines, _ = t.rawpeer(p, "--content-type", "2", "--payload-file", path, "envelope")
        self.assertEqual(lines[0].split(" ", 3)[0::3], ["reject", "score 1: invalid"])
        self.assertEqual([row[6] for row in p.audit("message-rejected")][-1:], ["content: score 1: invalid"])
        self.assertEqual(p.query("SELECT count(*) FROM messages")[0][0], 0)
        self.assert_secret_kept(t, p)

    def test_review_action_items_checked(self):
        t, p, rx = self.team()
        rid = p.cli("review", "open", "--with", "dr.alvarez", "--patient", "P-1042",
                    "--question", "Nausea: switch or split?").stdout.strip()
        wait_for(lambda: t.query("SELECT 1 FROM reviews WHERE hex(review_id) = upper(?)", (rid,)), 20, "review at t")
        bad = [
            ("dr.alvarez: screen GI by 2026-02-30", "the due date '2026-02-30' is not a date"),
            ("dr.alvarez: screen GI by 12/07/2026", "the due date '12/07/2026' is not a date"),
            ("nobody: screen GI by 2026-12-07", "the owner 'nobody' does not take part in review"),
            ("rx.chen: counsel on timing", "liaison review add %s rx.chen" % rid),
        ]
        for action, why in bad:
            r = p.cli("review", "close", rid, "--decision", "Continue", "--action", action, check=False)
            self.assertEqual(r.returncode, 1, action)
            self.assertIn(why, r.stderr, action)
        self.assertEqual(p.query("SELECT closed_ms FROM reviews WHERE hex(review_id) = upper(?)", (rid,))[0][0], None)
        # Owners may be this node or any participant; "by" followed by words stays text.
        p.cli("review", "close", rid, "--decision", "Continue", "--action", "dr.alvarez: screen GI by 2026-12-07",
              "--action", "dr.okafor: call the pharmacy by Friday")
        closed = p.json("review", "show", rid)
        items = closed["messages"][-1]["payload"]["actions"]
        self.assertEqual([(i["owner"], i["text"], i["due"]) for i in items],
                         [("dr.alvarez", "screen GI", "2026-12-07"), ("dr.okafor", "call the pharmacy by Friday", None)])

    def test_tampered_payload_fails_at_the_receiver(self):
        t, p, _ = self.team()
        # A validly signed envelope whose payload is not a valid progress note
        # (required fields missing): the receiver refuses it and stores nothing.
        lines, _ = t.rawpeer(p, "--content-type", "2", "envelope")
        self.assertTrue(lines[0].startswith("reject 6 "), lines)
        self.assertEqual(p.query("SELECT count(*) FROM messages")[0][0], 0)
        self.assertEqual(len(p.audit("message-rejected")), 1)

    def test_patient_timeline_in_order(self):
        t, p, _ = self.team()
        first = note(t, "dr.okafor", "P-1042", "week 1", "--phq9", "18")
        other = note(t, "dr.okafor", "P-2000", "someone else", "--phq9", "5")
        second = note(t, "dr.okafor", "P-1042", "week 2", "--phq9", "12")
        change = med_change(p, "dr.alvarez", "P-1042")
        self.wait_delivered(t, second, "dr.okafor")
        timeline = p.json("patient", "P-1042")
        got = ids(timeline)
        self.assertEqual(got, [first, second, change])
        self.assertNotIn(other, got)
        text = p.cli("patient", "P-1042").stdout
        self.assertIn("18", text)
        self.assertIn("12", text)
        # The timeline is an audited access, but the notes stay unread until shown.
        unread = ids(p.json("inbox", "--unread"))
        self.assertIn(first, unread)
        self.assertIn(second, unread)
        left = [r for r in p.audit("message-read") if r[4].lower() == first]
        self.assertTrue(left and all(r[6] == "listed; left unread" for r in left), left)
        p.cli("show", first)
        self.assertNotIn(first, ids(p.json("inbox", "--unread")))

    def test_score_trend_in_session_order(self):
        """The PHQ-9 / GAD-7 trend follows the session dates, not the order the notes were
        sent: a note written up late for an earlier session does not end the trend as if
        it were the latest score. The timeline stays in the order sent, and says so."""
        t, p, _ = self.team()
        later = t.cli("note", "--to", "dr.okafor", "--patient", "P-1042", "--session-date", "2024-11-25", "--phq9",
                      "9", "--gad7", "7", "-", input="later session").stdout.strip()
        earlier = t.cli("note", "--to", "dr.okafor", "--patient", "P-1042", "--session-date", "2024-11-24",
                        "--phq9", "20", "--gad7", "15", "-", input="written up late").stdout.strip()
        self.wait_delivered(t, earlier, "dr.okafor")
        for n in (t, p):
            text = n.cli("patient", "P-1042").stdout
            for title, want in (("PHQ-9 trend (0-27)", [["2024-11-24", "20"], ["2024-11-25", "9"]]),
                                ("GAD-7 trend (0-21)", [["2024-11-24", "15"], ["2024-11-25", "7"]])):
                chart = text.split(title)[1].split("\n\n")[0].split("\n", 1)[1]
                self.assertEqual([ln.split()[:2] for ln in chart.splitlines() if ln.strip()], want, text)
                self.assertIn(title + ", by session date\n", text)
            self.assertIn(": 2 messages on this node, in the order sent\n", text)
            late = [ln for ln in text.splitlines() if "session 2024-11-24" in ln]
            self.assertEqual(len(late), 1, text)
            self.assertIn("(sent after the note of a later session, 2024-11-25)", late[0])
            j = n.json("patient", "P-1042")
            self.assertEqual(ids(j), [later, earlier])
            self.assertEqual([(s["session_date"], s["phq9"], s["gad7"], s["message"]) for s in j["scores"]],
                             [("2024-11-24", 20, 15, earlier), ("2024-11-25", 9, 7, later)])

    def test_patient_ids_differing_only_in_case(self):
        t, p, _ = self.team()
        first = note(t, "dr.okafor", "P-1042", "week 1", "--phq9", "18")
        # A new spelling of a known id is refused at the sender: it would open a second
        # record at every recipient. Nothing is sent; the refusal is audited by tag only.
        for cmd in (["note", "--to", "dr.okafor", "--patient", "p-1042", "--session-date", "2024-11-16", "-"],
                    ["med-change", "--to", "dr.okafor", "--patient", "p-1042", "--drug", "sertraline", "--action",
                     "stop", "--from", "50 mg", "--reason", "nausea"],
                    ["review", "open", "--with", "dr.okafor", "--patient", "p-1042", "--question", "Plan?"]):
            r = t.cli(*cmd, input="week 2", check=False)
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn("patient id 'p-1042' differs only in letter case from a patient id on this node"
                          " (1 message(s))", r.stderr)
            self.assertIn("--distinct-patient; nothing was sent", r.stderr)
        self.assertEqual(t.query("SELECT count(*) FROM messages")[0][0], 1)
        refused = t.query("SELECT details, length(patient_tag) FROM audit WHERE action = 'request-refused'")
        self.assertEqual(refused, [("send: the patient id differs only in letter case from one on this node", 32)] * 3)
        for n in (t, p):
            self.assertNotIn("p-1042", repr(n.audit()))
            with open(n.log, errors="replace") as f:
                self.assertNotIn("p-1042", f.read())
        # The sender's word that it is another patient sends it, and is remembered.
        second = note(t, "dr.okafor", "p-1042", "another patient", "--distinct-patient")
        third = note(t, "dr.okafor", "p-1042", "again")
        fourth = note(t, "dr.okafor", "P-1042", "week 2", "--phq9", "12")
        self.wait_delivered(t, fourth, "dr.okafor")
        self.wait_delivered(t, third, "dr.okafor")
        timeline = t.json("patient", "P-1042")
        self.assertEqual((ids(timeline), timeline["patient_case_variants"]), ([first, fourth], 0))
        # The recipient was told nothing of that: it points the other spelling out, in the
        # timeline, the inbox and the audit log, without listing it.
        timeline = p.json("patient", "P-1042")
        self.assertEqual((ids(timeline), timeline["patient_case_variants"]), ([first, fourth], 2))
        self.assertIn("Note: 2 messages on this node are about a patient id that differs from 'P-1042' only in"
                      " letter case.", p.cli("patient", "P-1042").stdout)
        inbox = p.json("inbox", "--patient", "p-1042")
        self.assertEqual((sorted(ids(inbox)), inbox["patient_case_variants"]), (sorted([second, third]), 2))
        self.assertNotIn("patient_case_variants", p.json("inbox"))  # only when asked by patient
        received = p.json("audit", "log", "--patient", "P-1042", "--action", "message-received")
        self.assertEqual((len(received["entries"]), received["patient_case_variants"]), (2, 2))
        # The recipient holds p-1042 now, so it may write about it; its accounting of
        # disclosures for P-1042 points at the records under the other spelling.
        change = med_change(p, "dr.alvarez", "p-1042")
        self.wait_delivered(p, change, "dr.alvarez")
        disclosed = p.json("audit", "disclosures", "--patient", "P-1042")
        self.assertEqual((disclosed["disclosures"], disclosed["patient_case_variants"]), ([], 2))
        self.assertIn("Note: 2 disclosure records on this node are about a patient id that differs from 'P-1042'",
                      p.cli("audit", "disclosures", "--patient", "P-1042").stdout)
        self.assertEqual(p.json("audit", "disclosures", "--patient", "p-1042")["patient_case_variants"], 0)

    def test_patient_index_filled_in_for_messages_from_before_it(self):
        t, p, _ = self.team()
        first = note(t, "dr.okafor", "P-1042", "week 1")
        review = p.cli("review", "open", "--with", "dr.alvarez", "--patient", "MRN-7", "--question", "Plan?").stdout
        self.wait_delivered(t, first, "dr.okafor")
        wait_for(lambda: t.query("SELECT count(*) FROM messages WHERE content_type = 5")[0][0] == 1, 20,
                 "the review to arrive")
        # A database from before patient_folds: the messages are there, their fold tags not.
        for n in (t, p):
            n.stop()
            con = sqlite3.connect(n.db_path, isolation_level=None)
            con.execute("DELETE FROM patient_folds")
            con.close()
            self.assertEqual(n.query("SELECT count(*) FROM patient_folds")[0][0], 0)
            n.start()
        # Filled in at start-up from the messages themselves, sent and received alike.
        for n in (t, p):
            self.assertEqual(n.query("SELECT count(*) FROM patient_folds")[0][0], 2)
            filled = n.audit("patient-index-filled")
            self.assertEqual(len(filled), 1)
            self.assertIn("fold tags filled in for 2 of 2 patients", filled[0][6])
            self.assertNotIn("-1042", repr(n.audit()))  # P-1042 or p-1042 (a fingerprint may hold 1042)
            with open(n.log, errors="replace") as f:
                log = f.read()
            self.assertIn("patient index: fold tags filled in for 2 of 2 patients", log)
            self.assertNotIn("P-1042", log)
            self.assertNotIn("MRN-7", log)
        # ...so a new spelling of an old patient's id is caught again.
        r = t.cli("note", "--to", "dr.okafor", "--patient", "p-1042", "--session-date", "2024-11-16", "-",
                  input="week 2", check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("differs only in letter case", r.stderr)
        r = t.cli("note", "--to", "dr.okafor", "--patient", "mrn-7", "--session-date", "2024-11-16", "-",
                  input="x", check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        fhir = json.loads(t.cli("audit", "export", "--format", "fhir").stdout)
        filled = [e["resource"] for e in fhir["entry"]
                  if any(c.get("code") == "patient-index-filled" for c in e["resource"].get("subtype", []))]
        self.assertEqual(len(filled), 1)
        self.assertEqual(filled[0]["type"]["code"], "110110")
        # Once done, a restart reads nothing again.
        t.stop()
        t.start()
        self.assertEqual(len(t.audit("patient-index-filled")), 1)
        self.assertTrue(review)


if __name__ == "__main__":
    unittest.main()


class AckAudit(NodeTest):
    """An acknowledgement is about the patient of the message it acknowledges: its audit
    entries carry that patient's tag and name the acknowledged message, on every node,
    so an auditor can tell from the audit tools alone whether, by whom and when a
    medication change was acknowledged, and the comment counts as a disclosure."""

    def test_ack_is_audited_with_patient_and_acknowledged_message(self):
        psy = self.node("psy", role="psychiatrist")
        ther = self.node("ther", role="therapist")
        rx = self.node("rx", role="pharmacist")
        link(psy, ther, rx)
        mid = med_change(psy, "ther,rx", "P-1042")
        wait_for(lambda: ther.has_message(mid) and rx.has_message(mid), 20, "the medication change")
        ther.cli("show", mid)
        ther.cli("ack", mid, "--comment", "Seen; will watch for activation.")
        wait_for(lambda: psy.audit("message-received")
                 and any(r[6] == "acknowledges " + mid for r in psy.audit("message-received")), 20,
                 "the acknowledgement at the psychiatrist")
        # At the author: the log by patient shows who acknowledged which change, and when.
        log = json.loads(psy.cli("audit", "log", "--patient", "P-1042", "--action", "message-received",
                                 "--json").stdout)["entries"]
        acks = [e for e in log if e["content_type"] == "acknowledgement"]
        self.assertEqual([(e["actor"], e["details"]) for e in acks], [("peer:ther", "acknowledges " + mid)])
        # At the acknowledging node: the acknowledgement went to the author and to the
        # other recipient, and is in the patient's accounting of disclosures.
        wait_for(lambda: len(ther.audit("message-delivered")) >= 2, 20, "the acknowledgement's deliveries")
        out = json.loads(ther.cli("audit", "disclosures", "--patient", "P-1042", "--json").stdout)
        rows = [(d["recipient"], d["kind"], d["status"]) for d in out["disclosures"]]
        self.assertIn(("psy", "acknowledgement", "disclosed"), rows)
        self.assertIn(("rx", "acknowledgement", "disclosed"), rows)
        queued = ther.audit("message-queued")
        self.assertTrue(queued and all(r[6] == "acknowledges " + mid for r in queued), queued)
        # At the other recipient, too.
        wait_for(lambda: any(r[6] == "acknowledges " + mid for r in rx.audit("message-received")), 20,
                 "the acknowledgement at the pharmacist")
