# SPDX-License-Identifier: Apache-2.0
"""Time, dates and text for a care team across zones and languages: dates typed on the
command line, the zone times are shown in, and what is said about text that is refused."""
import datetime
import json
import os
import unittest

from harness import NodeTest, LIAISON


class TimeTest(NodeTest):
    def pair(self):
        a = self.node("dr.muller", "therapist")
        b = self.node("dr.tanaka", "psychiatrist")
        a.add_peer(b)
        b.add_peer(a)
        return a, b

    def cli_tz(self, node, tz, *args, input=None):
        import subprocess
        env = dict(os.environ, TZ=tz)
        return subprocess.run([LIAISON, "--home", node.home] + list(args), input=input, capture_output=True,
                              text=True, env=env, timeout=30)

    def test_since_date_is_the_local_day(self):
        """outbox and inbox print local times, so a date after --since is the local day:
        at UTC+14 a message sent this morning is listed by --since today (read as 00:00
        UTC, the date began at 14:00 there and hid it); at UTC-12 one sent yesterday
        evening is not listed by --since today (read as 00:00 UTC, it was)."""
        a, b = self.pair()
        mid = a.send("dr.tanaka", "Seen today.")
        created = a.json("outbox")["messages"][0]["created"]
        self.assertEqual(a.json("outbox")["messages"][0]["id"], mid)
        t = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        # Pick the zone in which the UTC reading and the local reading of the date differ.
        if t.hour >= 10:
            tz, off, listed = "Pacific/Kiritimati", 14, True     # local morning, before 14:00
            day = (t + datetime.timedelta(hours=off)).date()
        else:
            tz, off, listed = "Etc/GMT+12", -12, False           # local evening of the day before
            day = (t + datetime.timedelta(hours=off)).date() + datetime.timedelta(days=1)
        r = self.cli_tz(a, tz, "outbox", "--since", day.isoformat(), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        ids = [m["id"] for m in json.loads(r.stdout)["messages"]]
        self.assertEqual(mid in ids, listed, (tz, day, created))
        self.wait_delivered(a, mid, "dr.tanaka")
        r = self.cli_tz(b, tz, "inbox", "--since", day.isoformat(), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(mid in [m["id"] for m in json.loads(r.stdout)["messages"]], listed, (tz, day, created))

    def test_unknown_zone_is_said_not_shown_as_local(self):
        """A mistyped TZ made the C library show UTC labelled with the typo ("04:32 Asia");
        now it is said, and the times say UTC."""
        a, _ = self.pair()
        a.send("dr.tanaka", "x")
        for tz in ("Asia/Kolkatta", "IST"):
            r = self.cli_tz(a, tz, "outbox")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("TZ=%s is not a time zone this system knows" % tz, r.stderr)
            self.assertRegex(r.stdout.splitlines()[0], r"^[0-9a-f]{32}  \d{4}-\d\d-\d\d \d\d:\d\d UTC  ")
        r = self.cli_tz(a, "Asia/Kolkata", "outbox")
        self.assertEqual(r.stderr, "")
        self.assertRegex(r.stdout.splitlines()[0], r" IST  to ")
        r = self.cli_tz(a, "IST-5:30", "outbox")
        self.assertEqual(r.stderr, "")

    def test_impossible_dates_name_the_option_and_why(self):
        a, _ = self.pair()
        med = ["med-change", "--to", "dr.tanaka", "--patient", "P-1", "--drug", "sertraline", "--action", "start",
               "--dose", "50 mg", "--reason", "r"]
        note = ["note", "--to", "dr.tanaka", "--patient", "P-1"]
        cases = [
            (med + ["--effective", "2026-02-29"],
             "effective date (--effective): '2026-02-29' is not a date (2026 is not a leap year: February 2026 has 28"
             " days)"),
            (med + ["--effective", "2026-13-01"], "(--effective): '2026-13-01' is not a date (there is no month 13"),
            (note + ["--session-date", "2026-11-31", "-"],
             "session date (--session-date): '2026-11-31' is not a date (November 2026 has 30 days)"),
            (note + ["--session-date", "2026-11-01", "--next-session", "2026-11-00", "-"],
             "(--next-session): '2026-11-00' is not a date (there is no day 00"),
            (["inbox", "--since", "2026-02-29"], "--since: '2026-02-29' is not a date (2026 is not a leap year"),
            (["audit", "log", "--until", "2026-04-31"], "--until: '2026-04-31' is not a date (April 2026 has 30 days)"),
        ]
        for args, want in cases:
            r = a.cli(*args, input="x", check=False)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(want, r.stderr, args)
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], 0)
        # A leap day is a date.
        a.cli("inbox", "--since", "2024-02-29")

    def test_review_due_date_says_why(self):
        a, b = self.pair()
        rid = a.cli("review", "open", "--with", "dr.tanaka", "--patient", "P-1", "--question", "Q?").stdout.strip()
        r = a.cli("review", "close", rid, "--decision", "d", "--action", "dr.tanaka: labs by 2026-02-29", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("the due date '2026-02-29' is not a date (2026 is not a leap year", r.stderr)

    def test_text_errors_name_the_option(self):
        """A Latin-1 "ü" (byte 0xfc) in --subject: the error names --subject, not the
        payload's field, and says what to do; a limit in bytes says what non-ASCII costs."""
        a, _ = self.pair()
        r = a.cli("send", "--to", "dr.tanaka", "--subject", "M\udcfcller", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("subject (--subject): is not valid UTF-8 (byte 0xfc)", r.stderr)
        self.assertIn("UTF-8 (LANG=C.UTF-8)", r.stderr)
        r = a.cli("send", "--to", "dr.tanaka", "--subject", "Ü" * 120, "-", input="x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("subject (--subject): is longer than 200 bytes; a letter outside A-Z", r.stderr)
        r = a.cli("med-change", "--to", "dr.tanaka", "--patient", "P-1", "--drug", "Sertralin\udcc3", "--action",
                  "start", "--dose", "50 mg", "--reason", "r", check=False)
        self.assertIn("medication (--drug): is not valid UTF-8", r.stderr)
        # A patient's name where the chart id goes: named, and said what goes there.
        r = a.cli("note", "--to", "dr.tanaka", "--patient", "Zoë Müller", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("patient (--patient): the id must be", r.stderr)
        self.assertIn("(the team's chart id, e.g. P-1042, not the patient's name)", r.stderr)
        # 66 CJK characters are 198 bytes: within the limit of 200.
        a.cli("send", "--to", "dr.tanaka", "--subject", "田中" * 33, "-", input="x")
        # A name of 50 Japanese characters is 150 bytes, over the 128 of --name: said so.
        import subprocess
        r = subprocess.run([LIAISON, "--home", os.path.join(self.base, "x"), "init", "--id", "dr.x", "--name",
                            "田" * 50, "--role", "pcp", "--listen", "tcp://127.0.0.1:1"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--name: is longer than 128 bytes (a single line of UTF-8 text of at most 128 bytes; a letter"
                      " outside A-Z", r.stderr)

    def test_utc_offset_with_posix_sign_is_said(self):
        """TZ=UTC+5:30 is, in POSIX, 5:30 hours *behind* UTC, and labels its times "UTC": a
        doctor in India read 23:02 UTC for what was 04:32 UTC. Now it is said, and the
        times are UTC."""
        a, _ = self.pair()
        a.send("dr.tanaka", "x")
        created = a.json("outbox")["messages"][0]["created"]
        r = self.cli_tz(a, "UTC+5:30", "outbox")
        self.assertIn("TZ=UTC+5:30 means 5:30 hours behind UTC", r.stderr)
        self.assertIn("%s %s UTC" % (created[:10], created[11:16]), r.stdout)

    def test_columns_stay_aligned_across_a_dst_change(self):
        """A listing in a zone whose abbreviations differ in length (CET, CEST) kept the
        rows of summer time one column to the right of winter's. A zone whose summer
        time ends between two messages (a POSIX rule, at the second) shows both."""
        a, _ = self.pair()
        first = a.send("dr.tanaka", "one")
        created = a.json("outbox")["messages"][0]["created"]
        t = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ")
        end = t.replace(microsecond=0) + datetime.timedelta(seconds=1)
        import time
        while datetime.datetime.utcnow() < end + datetime.timedelta(milliseconds=50):
            time.sleep(0.05)
        second = a.send("dr.tanaka", "two")
        # Winter "ABC" at UTC, summer "ABCDE" at UTC+1 from 1 January until `end`, given
        # in summer time; Jn counts days without 29 February.
        local = end + datetime.timedelta(hours=1)
        day = local.timetuple().tm_yday
        if local.year % 4 == 0 and (local.year % 100 or local.year % 400 == 0) and local.month > 2:
            day -= 1
        if day > 365 or local.year != end.year:
            self.skipTest("summer time would end on the last day of the year")
        tz = "<ABC>0<ABCDE>,J1/0,J%d/%s" % (day, local.strftime("%H:%M:%S"))
        r = self.cli_tz(a, tz, "outbox")
        self.assertEqual(r.stderr, "")
        lines = [ln for ln in r.stdout.splitlines() if not ln.startswith(" ")]
        self.assertTrue(lines[0].startswith(second) and lines[1].startswith(first), r.stdout)
        self.assertRegex(lines[0], r" ABC  ")
        self.assertRegex(lines[1], r" ABCDE  ")
        self.assertEqual(lines[0].index(" to dr.tanaka"), lines[1].index(" to dr.tanaka"), r.stdout)

    def test_times_with_an_offset_or_local(self):
        """A clinician at UTC+5:30 can give a time as she reads it: with its offset
        (2026-11-25T10:02+05:30), or, for the commands that print local times, with no
        zone at all. Both were refused ("is not a time")."""
        a, _ = self.pair()
        mid = a.send("dr.tanaka", "x")
        created = a.json("outbox")["messages"][0]["created"]
        t = datetime.datetime.strptime(created[:16], "%Y-%m-%dT%H:%M")   # the minute it was sent, UTC
        ist = t + datetime.timedelta(hours=5, minutes=30)
        later = ist + datetime.timedelta(minutes=1)

        def listed(tz, since):
            r = self.cli_tz(a, tz, "outbox", "--since", since, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            return mid in [m["id"] for m in json.loads(r.stdout)["messages"]]
        self.assertTrue(listed("America/New_York", ist.strftime("%Y-%m-%dT%H:%M+05:30")))
        self.assertFalse(listed("America/New_York", later.strftime("%Y-%m-%dT%H:%M+05:30")))
        self.assertTrue(listed("Asia/Kolkata", ist.strftime("%Y-%m-%dT%H:%M")))
        self.assertFalse(listed("Asia/Kolkata", later.strftime("%Y-%m-%dT%H:%M")))
        r = a.cli("audit", "log", "--since", ist.strftime("%Y-%m-%dT%H:%M+05:30"), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        # The audit commands print UTC: a time there needs Z or an offset, and says so.
        r = a.cli("audit", "log", "--since", ist.strftime("%Y-%m-%dT%H:%M"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("YYYY-MM-DDTHH:MM+05:30 with the zone's offset", r.stderr)

    def test_review_list_columns_hold_any_script(self):
        """review list padded its patient column by bytes: a label in Japanese (3 bytes,
        2 columns a character) or with combining marks (Zoe\u0308: 4 characters, 3
        columns) pushed "opened by" out of line. Now each column is as wide as its widest
        value, counted in terminal columns."""
        import unicodedata

        def width(text):
            return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
                       for c in text)
        a, _ = self.pair()
        for pid, label in (("P-7", "田中 花子"), ("P-8", "Zoe"), ("P-10", "Zoe\u0308 Mu\u0308ller"),
                           ("P-11", "Ελένη")):
            a.cli("review", "open", "--with", "dr.tanaka", "--patient", pid, "--label", label, "--question", "Q?")
        lines = a.cli("review", "list").stdout.splitlines()
        self.assertEqual(len(lines), 4, lines)
        cols = {width(ln[:ln.index(" opened by ")]) for ln in lines}
        self.assertEqual(len(cols), 1, "\n".join(lines))
        cols = {width(ln[:ln.index(" msg")]) for ln in lines}
        self.assertEqual(len(cols), 1, "\n".join(lines))

    def test_windows_text_files(self):
        """A body saved by a Windows editor: "UTF-8 with BOM" sent the byte order mark as an
        invisible first character; "Unicode" (UTF-16) was refused as "contains NUL bytes:
        not text", with no word of what it is or how to convert it."""
        a, _ = self.pair()
        bom = os.path.join(self.base, "bom.txt")
        with open(bom, "wb") as f:
            f.write("\ufeffGrüße, Ελένη: 田中さん seen today.\r\n".encode("utf-8"))
        mid = a.cli("send", "--to", "dr.tanaka", bom).stdout.strip()
        self.assertEqual(a.json("show", mid)["payload"]["text"], "Grüße, Ελένη: 田中さん seen today.")
        u16 = os.path.join(self.base, "u16.txt")
        with open(u16, "wb") as f:
            f.write("Grüße, seen today.\r\n".encode("utf-16"))
        r = a.cli("send", "--to", "dr.tanaka", u16, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("it is UTF-16, as Windows saves \"Unicode\" text: convert it with iconv -f UTF-16 -t UTF-8",
                      r.stderr)

    def test_session_today_in_one_zone_is_tomorrow_in_another(self):
        """The session of this morning at UTC+14 is "after today" at UTC-12 (a node whose
        zone is not the clinician's): the refusal now names the zone it took today in, so
        that the clinician sees to set TZ; in her zone the note goes."""
        a, _ = self.pair()
        now = datetime.datetime.now(datetime.timezone.utc)
        kiritimati = (now + datetime.timedelta(hours=14)).date().isoformat()
        args = ("note", "--to", "dr.tanaka", "--patient", "P-1", "--session-date", kiritimati, "--phq9", "9", "-")
        r = self.cli_tz(a, "Etc/GMT+12", *args, input="x")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--session-date: %s is after today (" % kiritimati, r.stderr)
        self.assertIn(", the date in Etc/GMT+12 here; set TZ to your zone if it differs)", r.stderr)
        r = self.cli_tz(a, "Pacific/Kiritimati", *args, input="x")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_next_session_years_away_is_a_typo(self):
        """--next-session 2062-11-30 (for 2026) was sent, a session the team would plan
        around; as for --effective, more than a year away is now taken for a typo."""
        a, _ = self.pair()
        note = ("note", "--to", "dr.tanaka", "--patient", "P-1", "--session-date", "2026-11-20")
        r = a.cli(*note, "--next-session", "2062-11-30", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--next-session: 2062-11-30 is more than a year after the session it follows (--session-date"
                      " 2026-11-20): a typo? (nothing was sent)", r.stderr)
        r = a.cli(*note, "--next-session", "2027-11-21", "-", input="x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], 0)
        a.cli(*note, "--next-session", "2027-11-20", "-", input="x")

    def test_score_names_differing_only_in_case_in_any_script(self):
        """"names must differ, ignoring case": the rule folded only ASCII letters, so
        SCHLAFQUALITÄT=3 and Schlafqualität=4 (or ΥΠΝΟΣ and Υπνος, СОН and сон) went as two
        scores of one note. The command line now refuses them as it does PCL-5 and pcl5."""
        a, _ = self.pair()
        note = ("note", "--to", "dr.tanaka", "--patient", "P-1")
        for first, second in (("SCHLAFQUALITÄT", "Schlafqualität"), ("ΥΠΝΟΣ", "Υπνος"), ("СОН", "сон")):
            r = a.cli(*note, "--score", first + "=3/0-10", "--score", second + "=4/0-10", "-", input="x", check=False)
            self.assertEqual(r.returncode, 1, (first, r.stderr))
            self.assertIn("--score: '%s' is the same name as score 1, '%s' (names must differ, ignoring case" %
                          (second, first), r.stderr)
        self.assertEqual(a.query("SELECT count(*) FROM messages")[0][0], 0)
        a.cli(*note, "--score", "Schlafqualität=3/0-10", "--score", "Schlafdauer=4/0-10", "--score", "田中=1/0-5", "-",
              input="x")


if __name__ == "__main__":
    unittest.main()
