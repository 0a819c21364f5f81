# SPDX-License-Identifier: Apache-2.0
"""The auditor's exports (issue 4): FHIR R4 AuditEvent Bundle and JSON lines, checked
against the R4 element definitions (fhir/auditevent-r4.schema.json) and against the
rules the schema cannot express; no clinical content and no patient id in any export."""
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
        seqs = [int(e["id"].split("-")[1]) for e in events]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        self.assertEqual(len(set(e["fullUrl"] for e in bundle["entry"])), len(events))
        for ev in events:
            # What the R4 JSON schema does not enforce.
            self.assertIn("recorded", ev)
            self.assertTrue(all("requestor" in a for a in ev["agent"]))
            self.assertEqual(sum(1 for a in ev["agent"] if a["requestor"]), 1, ev)
            self.assertEqual(ev["source"]["observer"]["identifier"]["value"], "dr.okafor")
        subtypes = [e["subtype"][0]["code"] for e in events]
        for action in ("message-queued", "message-delivered", "message-received", "message-read", "peer-added",
                       "request-refused", "audit-query"):
            self.assertIn(action, subtypes)
        disclosures = [e for e in events if e["subtype"][0]["code"] in ("message-queued", "message-delivered")]
        for d in disclosures:
            self.assertEqual(d["purposeOfEvent"][0]["coding"][0]["code"], "TREAT")
            roles = [x["role"]["code"] for x in d.get("entity", [])]
            self.assertIn("1", roles, "a disclosure about a patient names the patient (by tag)")
        reads = [e for e in events if e["subtype"][0]["code"] == "message-read"]
        self.assertTrue(all(e["action"] == "R" for e in reads))
        refused = [e for e in events if e["subtype"][0]["code"] in ("peer-added", "request-refused")
                   and e["outcome"] != "0"]
        self.assertTrue(refused)

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
