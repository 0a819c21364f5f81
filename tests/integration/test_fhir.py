# SPDX-License-Identifier: Apache-2.0
"""The auditor's exports (issue 4): FHIR R4 AuditEvent Bundle and JSON lines, checked
against the R4 element definitions (fhir/auditevent-r4.schema.json), against the
rules the schema cannot express and against the coding table of PROTOCOL.md 11.7, entry
kind by entry kind; no clinical content and no patient id in any export."""
import hashlib
import json
import os
import re

from harness import NodeTest, link, wait_for

SCHEMA = json.load(open(os.path.join(os.path.dirname(__file__), "fhir", "auditevent-r4.schema.json")))


def validate(value, schema, path="$"):
    """A small JSON Schema validator for the keywords the schema file uses."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return validate(value, SCHEMA["definitions"][name], path)
    errors = []
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        return ["%s: not an integer" % path]
    if t in types and not isinstance(value, types[t]):
        return ["%s: not a %s" % (path, t)]
    if "enum" in schema and value not in schema["enum"]:
        errors.append("%s: %r not in %s" % (path, value, schema["enum"]))
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append("%s: %r does not match %s" % (path, value, schema["pattern"]))
    if "minimum" in schema and value < schema["minimum"]:
        errors.append("%s: below minimum" % path)
    if isinstance(value, dict):
        for r in schema.get("required", []):
            if r not in value:
                errors.append("%s: missing %s" % (path, r))
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                errors += validate(v, props[k], path + "." + k)
            elif schema.get("additionalProperties") is False:
                errors.append("%s: unknown element %s" % (path, k))
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append("%s: too few items" % path)
        for i, v in enumerate(value):
            errors += validate(v, schema.get("items", {}), "%s[%d]" % (path, i))
    return errors


PROTOCOL_MD = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "PROTOCOL.md")
DCM = "http://dicom.nema.org/resources/ontology/DCM"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
ACTION_SYSTEM = "urn:liaison:audit-action"


def documented_mapping():
    """The table of PROTOCOL.md 11.7, action -> expected coding: the code must say what
    the document says (and the pins in test_mapping_per_kind keep the document honest)."""
    with open(PROTOCOL_MD) as f:
        text = f.read()
    text = text[text.index("### 11.7 "):]
    text = text[:text.index("\n## ")]
    table = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not cells[0].startswith("`"):
            continue
        action, etype, sub, act, agents, ents, purpose = cells
        split = lambda c: [x.strip() for x in c.split(",") if x.strip()]
        table[action.strip("`")] = {
            "type": etype.split()[0], "subtype": split(sub), "action": act,
            "agents": {tuple(x.split()) for x in split(agents)},
            "entities": {tuple(x.split()) for x in split(ents)}, "purpose": purpose or None}
    return table


def action_of(ev):
    return [c["code"] for c in ev["subtype"] if c["system"] == ACTION_SYSTEM][0]


def agent_kind(agent, node_id):
    ident = agent["who"]["identifier"]
    if ident["system"] == "urn:liaison:local-user":
        return "user"
    assert ident["system"] == "urn:liaison:node", agent
    return "node" if ident["value"] == node_id else "peer"


ENTITY_KINDS = {"urn:liaison:patient-tag": "patient", "urn:liaison:message": "message", "urn:liaison:node": "peer",
                "urn:liaison:audit-log": "log"}


class Export(NodeTest):
    def setUp(self):
        super().setUp()
        self.t = self.node("dr.alvarez", "therapist")
        self.p = self.node("dr.okafor", "psychiatrist")
        link(self.t, self.p)
        self.secret = "Reports passive ideation " + os.urandom(4).hex()
        self.text = self.t.send("dr.okafor", self.secret)
        self.note = self.t.cli("note", "--to", "dr.okafor", "--patient", "P-7731", "--phq9", "12", "-",
                               input=self.secret).stdout.strip()
        self.med = self.p.cli("med-change", "--to", "dr.alvarez", "--patient", "P-7731", "--drug", "sertraline",
                              "--action", "start", "--dose", "25 mg daily", "--reason", self.secret).stdout.strip()
        self.wait_delivered(self.p, self.med, "dr.alvarez")
        self.wait_delivered(self.t, self.note, "dr.okafor")
        self.t.cli("show", self.med)
        self.t.cli("ack", self.med)
        self.p.cli("show", self.note)
        bogus = os.path.join(self.base, "bogus.card")
        with open(bogus, "w") as f:
            f.write("liaison-card-v1:AAAA\n")
        self.p.cli("peer", "add", bogus, check=False)
        self.p.cli("send", "--to", "nobody", "-", input="x", check=False)
        wait_for(lambda: self.p.query("SELECT 1 FROM acks"), 20, "the acknowledgement")
        self.p.cli("audit", "log")

    def test_fhir_bundle_valid_and_complete(self):
        out = self.p.cli("audit", "export", "--format", "fhir").stdout
        bundle = json.loads(out)
        errors = validate(bundle, SCHEMA)
        self.assertEqual(errors, [], "\n".join(errors[:20]))
        self.assertEqual(bundle["type"], "collection")
        events = [e["resource"] for e in bundle["entry"]]
        seqs = [int(e["id"].split("-")[-1]) for e in events]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        self.assertEqual(len(set(e["fullUrl"] for e in bundle["entry"])), len(events))
        # Ids unique across nodes too (PROTOCOL.md 11.7): the node id's BLAKE2b-64 in them.
        mine = "audit-%s-" % hashlib.blake2b(b"dr.okafor", digest_size=8).hexdigest()
        self.assertTrue(all(e["id"].startswith(mine) for e in events), events[0]["id"])
        theirs = json.loads(self.t.cli("audit", "export", "--format", "fhir").stdout)
        self.assertEqual({e["resource"]["id"] for e in theirs["entry"]} & {e["id"] for e in events}, set())
        for ev in events:
            # What the R4 JSON schema does not enforce.
            self.assertIn("recorded", ev)
            self.assertTrue(all("requestor" in a for a in ev["agent"]))
            self.assertEqual(sum(1 for a in ev["agent"] if a["requestor"]), 1, ev)
            self.assertEqual(ev["source"]["observer"]["identifier"]["value"], "dr.okafor")
        subtypes = [action_of(e) for e in events]
        for action in ("message-queued", "message-delivered", "message-received", "message-read", "peer-added",
                       "request-refused", "audit-query"):
            self.assertIn(action, subtypes)
        disclosures = [e for e in events if action_of(e) in ("message-queued", "message-delivered")]
        for d in disclosures:
            self.assertEqual(d["purposeOfEvent"][0]["coding"][0]["code"], "TREAT")
            roles = [x["role"]["code"] for x in d.get("entity", [])]
            self.assertIn("1", roles, "a disclosure about a patient names the patient (by tag)")
        reads = [e for e in events if action_of(e) == "message-read"]
        self.assertTrue(all(e["action"] == "R" for e in reads))
        refused = [e for e in events if action_of(e) in ("peer-added", "request-refused")
                   and e["outcome"] != "0"]
        self.assertTrue(refused)

    def exported(self, node):
        """(node id, FHIR events, the JSON-lines rows of the same entries by seq)."""
        bundle = json.loads(node.cli("audit", "export", "--format", "fhir").stdout)
        errors = validate(bundle, SCHEMA)
        self.assertEqual(errors, [], "\n".join(errors[:20]))
        rows = {r["seq"]: r for r in map(json.loads, node.cli("audit", "export").stdout.splitlines())}
        return node.id, [e["resource"] for e in bundle["entry"]], rows

    def test_mapping_per_kind(self):
        # More kinds: a restart, a peer's card updated (same keys, a new name), removed, a
        # witnessed checkpoint query.
        self.p.stop()
        self.p.start()
        self.p.cli("peer", "add", self.t.reissued_card("Dr Ana Alvarez"))
        self.p.cli("audit", "checkpoint", "--peer", "dr.alvarez", check=False)
        self.p.cli("peer", "remove", "dr.alvarez")
        table = documented_mapping()
        known = self.p.cli("audit", "log", "--action", "no-such-action", check=False).stderr
        known = re.search(r"one of: (.*)\)", known).group(1).split(", ")
        self.assertEqual(sorted(table), sorted(known), "PROTOCOL.md 11.7 maps every audit action, and no other")
        seen = set()
        for node in (self.p, self.t):
            node_id, events, rows = self.exported(node)
            for ev in events:
                row = rows[int(ev["id"].split("-")[-1])]
                what = "%s %s: %s" % (node_id, row["action"], json.dumps(ev))
                m = table[row["action"]]
                seen.add(row["action"])
                self.assertEqual(action_of(ev), row["action"])
                self.assertEqual(ev["type"]["system"], DCM, what)
                self.assertEqual(ev["type"]["code"], m["type"], what)
                self.assertEqual([c["code"] for c in ev["subtype"]], m["subtype"] + [row["action"]], what)
                for c in ev["subtype"][:-1]:
                    self.assertEqual(c["system"], DCM if c["code"].isdigit() else LIFECYCLE, what)
                self.assertEqual(ev["action"], m["action"], what)
                self.assertEqual(ev["outcome"], {"ok": "0", "refused": "4", "failed": "8"}[row["outcome"]], what)
                purpose = [c["code"] for p in ev.get("purposeOfEvent", []) for c in p["coding"]]
                self.assertEqual(purpose, [m["purpose"]] if m["purpose"] else [], what)
                # Agents: the actor first and the only requestor; each participant once, typed as documented.
                agents = [(agent_kind(a, node_id), a["type"]["coding"][0]["code"]) for a in ev["agent"]]
                self.assertEqual([a["requestor"] for a in ev["agent"]], [True] + [False] * (len(agents) - 1), what)
                actor = ev["agent"][0]["who"]["identifier"]["value"]
                if row["actor"] == "daemon":
                    self.assertEqual((agents[0][0], actor), ("node", node_id), what)
                elif row["actor"].startswith("peer:"):
                    self.assertEqual((agents[0][0], actor), ("peer", row["actor"][5:]), what)
                else:
                    self.assertEqual((agents[0][0], actor), ("user", row["actor"]), what)
                self.assertEqual(len({k for k, _ in agents}), len(agents), what)
                self.assertLessEqual(set(agents), m["agents"], what)
                # Entities: the patient (by tag) and the message whenever the entry has them.
                ents = {(ENTITY_KINDS[x["what"]["identifier"]["system"]], x["role"]["code"]): x
                        for x in ev.get("entity", [])}
                self.assertLessEqual(set(ents), m["entities"], what)
                self.assertEqual(("patient", "1") in ents, bool(row["patient_tag"]), what)
                self.assertEqual(("message", "4") in ents, bool(row["message_id"]), what)
                if row["patient_tag"]:
                    pat = ents[("patient", "1")]
                    self.assertEqual(pat["what"], {"type": "Patient", "identifier": {
                        "system": "urn:liaison:patient-tag", "value": row["patient_tag"]}}, what)
                    self.assertEqual(pat["type"]["code"], "1", what)
        self.assertLessEqual({"node-created", "daemon-started", "daemon-stopped", "peer-added", "peer-updated",
                              "peer-removed", "message-queued", "message-delivered", "message-received",
                              "message-read", "request-refused", "audit-query", "transport-refused"}, seen)

        # Pinned here as well as in the document: BALP's disclosure at the source and at the
        # recipient, and the read (the audit review found sends typed Export with action C,
        # no lifecycle sub-types, and AUT/IRCP where DICOM 110153/110152 belong).
        _, events, rows = self.exported(self.p)
        by = {}
        for ev in events:
            by.setdefault(action_of(ev), []).append(ev)
        for ev in by["message-queued"]:
            self.assertEqual((ev["type"]["code"], ev["action"]), ("110106", "R"))
            self.assertIn({"system": LIFECYCLE, "code": "disclose", "display": "Disclose Record Lifecycle Event"},
                          ev["subtype"])
            types = [(a["type"]["coding"][0]["code"], a["who"]["identifier"]["value"], a["requestor"])
                     for a in ev["agent"]]
            self.assertEqual(types[1:], [("110153", "dr.okafor", False), ("110152", "dr.alvarez", False)])
            self.assertEqual((types[0][0], types[0][2]), ("AUT", True))
        for ev in by["message-received"]:
            self.assertEqual((ev["type"]["code"], ev["action"]), ("110107", "C"))
            self.assertEqual([c["code"] for c in ev["subtype"][:2]], ["disclose", "receive"])
            self.assertEqual([(a["type"]["coding"][0]["code"], a["who"]["identifier"]["value"], a["requestor"])
                              for a in ev["agent"]], [("110153", "dr.alvarez", True), ("110152", "dr.okafor", False)])
        for ev in by["message-read"]:
            self.assertEqual((ev["type"]["code"], ev["action"], ev["subtype"][0]["code"]), ("110110", "R", "access"))
            self.assertEqual(ev["agent"][0]["type"]["coding"][0]["code"], "IRCP")
        for ev in events:
            if action_of(ev) not in ("message-read", "audit-query"):
                self.assertNotIn("IRCP", [a["type"]["coding"][0]["code"] for a in ev["agent"]], ev)

        # Deterministic: the same entry exports to the same resource.
        _, again, _ = self.exported(self.p)
        first = {ev["id"]: ev for ev in events}
        self.assertTrue(all(first[ev["id"]] == ev for ev in again if ev["id"] in first))

    def test_no_clinical_content_or_patient_id(self):
        exports = [self.p.cli("audit", "export", "--format", "fhir").stdout,
                   self.p.cli("audit", "export", "--format", "jsonl").stdout,
                   self.p.cli("audit", "log", "--json").stdout,
                   self.p.cli("audit", "disclosures", "--patient", "P-7731", "--json").stdout]
        for text in exports:
            self.assertNotIn(self.secret, text)
            self.assertNotIn("passive ideation", text)
            self.assertNotIn("P-7731", text.replace('"patient": "P-7731"', ""))
            self.assertNotIn("sertraline", text)
        disc = json.loads(exports[3])
        self.assertEqual([d["recipient"] for d in disc["disclosures"]], ["dr.alvarez"])
        self.assertEqual(disc["disclosures"][0]["kind"], "medication-change")
        self.assertEqual(disc["disclosures"][0]["status"], "disclosed")
        # The therapist's node accounts for the note it disclosed, and for its
        # acknowledgement of the medication change (about the same patient).
        mine = self.t.json("audit", "disclosures", "--patient", "P-7731")
        self.assertEqual([(d["recipient"], d["kind"]) for d in mine["disclosures"]],
                         [("dr.okafor", "progress-note"), ("dr.okafor", "acknowledgement")])

    def test_jsonl_since_output_and_errors(self):
        lines = self.p.cli("audit", "export", "--format", "jsonl").stdout.splitlines()
        rows = [json.loads(x) for x in lines]
        self.assertEqual([r["seq"] for r in rows], list(range(1, len(rows) + 1)))
        self.assertTrue(all(r["node"] == "dr.okafor" for r in rows))
        cut = rows[len(rows) // 2]["time"]
        later = [json.loads(x) for x in
                 self.p.cli("audit", "export", "--format", "jsonl", "--since", cut).stdout.splitlines()]
        self.assertTrue(later and len(later) < len(rows) + 3)
        self.assertTrue(all(r["time"] >= cut for r in later))
        out = os.path.join(self.base, "bundle.json")
        self.p.cli("audit", "export", "--format", "fhir", "--output", out)
        self.assertEqual(json.load(open(out))["resourceType"], "Bundle")
        again = self.p.cli("audit", "export", "--format", "fhir", "--output", out, check=False)
        self.assertEqual(again.returncode, 1)
        bad = self.p.cli("audit", "export", "--format", "xml", check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("jsonl or fhir", bad.stderr)

    def test_schema_catches_mistakes(self):
        # The validator and schema are not vacuous.
        ev = json.loads(self.p.cli("audit", "export", "--format", "fhir").stdout)["entry"][0]["resource"]
        broken = dict(ev, outcome="1")
        self.assertTrue(validate(broken, SCHEMA["definitions"]["AuditEvent"]))
        broken = dict(ev, recordedAt=ev["recorded"])
        self.assertTrue(validate(broken, SCHEMA["definitions"]["AuditEvent"]))
        broken = {k: v for k, v in ev.items() if k != "source"}
        self.assertTrue(validate(broken, SCHEMA["definitions"]["AuditEvent"]))
        broken = dict(ev, recorded="2026-11-23 10:00")
        self.assertTrue(validate(broken, SCHEMA["definitions"]["AuditEvent"]))


if __name__ == "__main__":
    import unittest
    unittest.main()
