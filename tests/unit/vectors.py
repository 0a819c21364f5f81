# SPDX-License-Identifier: Apache-2.0
"""The test vectors of docs/PROTOCOL.md appendix A, computed from the text of the protocol
with stock libraries only (PyNaCl, hashlib, Google's protobuf runtime with classes made by
protoc from proto/). test_vectors.c checks the same vectors against the C code.

  vectors.py print            print the vector block
  vectors.py check PROTOCOL   fail unless PROTOCOL's block is exactly this one
"""
import base64
import hashlib
import importlib
import os
import struct
import subprocess
import sys
import tempfile

import nacl.bindings as B

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BEGIN, END = "<!-- test vectors: begin -->", "<!-- test vectors: end -->"


def load_protos():
    out = tempfile.mkdtemp(prefix="liaison-vectors-")
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", out, "wire.proto", "payload.proto"],
                   check=True)
    sys.path.insert(0, out)
    return importlib.import_module("wire_pb2"), importlib.import_module("payload_pb2")


def D(name):
    return name.encode() + b"\x00"


def H32(x):
    return hashlib.blake2b(x, digest_size=32).digest()


def u32be(x):
    return struct.pack(">I", x)


def lp(x):
    return u32be(len(x)) + x


class Node:
    def __init__(self, ident, byte):
        self.id = ident
        self.seed, self.enc_sk, self.tr_sk = bytes([byte]) * 32, bytes([byte + 1]) * 32, bytes([byte + 2]) * 32
        self.sign_pk, self.sign_sk = B.crypto_sign_seed_keypair(self.seed)
        self.enc_pk = B.crypto_scalarmult_base(self.enc_sk)
        self.tr_pk = B.crypto_scalarmult_base(self.tr_sk)

    def sign(self, m):
        return B.crypto_sign(m, self.sign_sk)[:64]


def pair_key(me, them):
    q = B.crypto_scalarmult(me.enc_sk, them.enc_pk)
    lo, hi = sorted([me.enc_pk, them.enc_pk])
    return H32(D("liaison-v1/pair-key") + q + lo + hi)


def fingerprint(pk):
    h = hashlib.blake2b(D("liaison-v1/fingerprint") + pk, digest_size=64).digest()
    return " ".join("%05d" % (int.from_bytes(h[5 * i:5 * i + 5], "big") % 100000) for i in range(8))


def aead(k, n, m, ad):
    return B.crypto_aead_xchacha20poly1305_ietf_encrypt(m, ad, n, k)


def vectors():
    W, P = load_protos()
    alice, bob = Node("alice", 0x01), Node("bob", 0x11)
    v = []

    def put(name, value):
        v.append((name, value.hex() if isinstance(value, bytes) else str(value)))

    for n in (alice, bob):
        put(n.id + ".identity_key", n.seed)
        put(n.id + ".encryption_key", n.enc_sk)
        put(n.id + ".transport_key", n.tr_sk)
        put(n.id + ".sign_pk", n.sign_pk)
        put(n.id + ".enc_pk", n.enc_pk)
        put(n.id + ".transport_pk", n.tr_pk)
    put("alice.fingerprint", fingerprint(alice.sign_pk))
    put("pair_key.alice_bob", pair_key(alice, bob))
    put("pair_key.alice_alice", pair_key(alice, alice))

    body = W.CardBody(version=1, id="alice", name="Dr. Alice Example", role="psychiatrist", org="Example Clinic",
                      endpoint="tcp://192.0.2.10:7701", sign_pk=alice.sign_pk, enc_pk=alice.enc_pk,
                      transport_pk=alice.tr_pk, created_ms=1700000000000).SerializeToString()
    card = W.Card(body=body, signature=alice.sign(D("liaison-v1/card") + body)).SerializeToString()
    put("card.body", body)
    put("card.alice", "liaison-card-v1:" + base64.urlsafe_b64encode(card).rstrip(b"=").decode())

    created = 1700000000000
    ck = bytes(range(0x40, 0x60))
    commitment = H32(D("liaison-v1/key-commitment") + ck)
    mid = created.to_bytes(6, "big") + H32(D("liaison-v1/message-id") + bytes([5]) + b"alice" + commitment)[:10]
    payload = P.TextMessage(subject="vector", text="Hello, Bob.\nSee you Tuesday.").SerializeToString()
    h = W.Header(version=1, message_id=mid, sender="alice", created_ms=created, content_type=1,
                 key_commitment=commitment)
    h.recipients.extend(["alice", "bob"])
    put("envelope.created_ms", created)
    put("envelope.message_id", mid)
    put("envelope.content_key", ck)
    put("envelope.payload", payload)
    put("envelope.key_commitment", h.key_commitment)
    keys = {"alice": pair_key(alice, alice), "bob": pair_key(alice, bob)}
    for i, r in enumerate(["alice", "bob"]):
        nonce = bytes([0x60 + i]) * 24
        ad = D("liaison-v1/key-wrap") + mid + bytes([5]) + b"alice" + bytes([len(r)]) + r.encode()
        h.keys.add(recipient=r, nonce=nonce, ciphertext=aead(keys[r], nonce, ck, ad))
        put("envelope.wrap_ad_" + r, ad)
        put("envelope.wrap_nonce_" + r, nonce)
    hb = h.SerializeToString()
    body_nonce = bytes([0x70]) * 24
    eb = body_nonce + aead(ck, body_nonce, payload, hb)
    sig = alice.sign(D("liaison-v1/envelope") + u32be(len(hb)) + hb + u32be(len(eb)) + eb)
    env = W.Envelope(header=hb, body=eb, signature=sig).SerializeToString()
    ehash = H32(D("liaison-v1/envelope-hash") + env)
    put("envelope.header", hb)
    put("envelope.body_nonce", body_nonce)
    put("envelope.body", eb)
    put("envelope.signature", sig)
    put("envelope", env)
    put("envelope.hash", ehash)

    rb = W.ReceiptBody(version=1, message_id=mid, envelope_hash=ehash, recipient="bob", sender="alice",
                       stored_ms=created + 1500).SerializeToString()
    put("receipt.body", rb)
    put("receipt", W.Receipt(body=rb, signature=bob.sign(D("liaison-v1/receipt") + rb)).SerializeToString())

    # Section 7.1: the envelope's receipt body and two more in one batch of three. The tree
    # is node(node(leaf 0, leaf 1), leaf 2); a proof lists the leaf's sibling first.
    bodies = [rb] + [W.ReceiptBody(version=1, message_id=bytes([m]) * 16, envelope_hash=bytes([h]) * 32,
                                   recipient="bob", sender="alice", stored_ms=created + 1500).SerializeToString()
                     for m, h in ((0xb1, 0xc1), (0xb2, 0xc2))]
    leaf = [hashlib.sha256(b"\x00" + x).digest() for x in bodies]
    n01 = hashlib.sha256(b"\x01" + leaf[0] + leaf[1]).digest()
    broot = hashlib.sha256(b"\x01" + n01 + leaf[2]).digest()
    bsig = bob.sign(D("liaison-v1/receipt-batch") + u32be(3) + broot)
    put("receipt_batch.root", broot)
    put("receipt_batch.0", W.Receipt(body=bodies[0], signature=bsig, batch_size=3, leaf_index=0,
                                     path=[leaf[1], leaf[2]]).SerializeToString())
    put("receipt_batch.2", W.Receipt(body=bodies[2], signature=bsig, batch_size=3, leaf_index=2,
                                     path=[n01]).SerializeToString())

    review_salt = bytes(range(0x80, 0x90))
    put("review.salt", review_salt)
    put("review.id", H32(D("liaison-v1/review-id") + bytes([5]) + b"alice" + review_salt)[:16])

    tag = hashlib.blake2b(D("liaison-v1/patient") + b"P-1042", digest_size=32, key=bytes([0x77]) * 32).digest()
    e = (struct.pack(">QQ", 1, created) + lp(b"user:alice") + lp(b"message-queued") + lp(b"ok") + lp(mid)
         + lp(b"bob") + u32be(1) + lp(tag) + lp(b""))
    put("audit.patient_key", bytes([0x77]) * 32)
    put("audit.patient_tag", tag)
    put("audit.entry", e)
    put("audit.entry_hash", H32(D("liaison-v1/audit-chain") + bytes(32) + e))
    root = hashlib.sha256(b"\x00" + e).digest()
    put("audit.leaf", root)
    note = "liaison.audit/alice\n1\n%s\ntime %d\n" % (base64.b64encode(root).decode(), created + 60000)
    keyid = hashlib.sha256(b"alice\x0a\x01" + alice.sign_pk).digest()[:4]
    note += "\n\u2014 alice %s\n" % base64.b64encode(keyid + alice.sign(note.encode())).decode()
    put("checkpoint", note.encode())
    return v, note


def block():
    v, note = vectors()
    lines = []
    for name, value in v:
        first, rest = value[:64], value[64:]
        lines.append("%s = %s" % (name, first))
        while rest:
            lines.append("    " + rest[:64])
            rest = rest[64:]
    return "\n".join(lines) + "\n", note


def doc_block(text):
    a = text.index(BEGIN)
    b = text.index(END)
    inner = text[a + len(BEGIN):b].strip("\n")
    if not inner.startswith("```\n") or not inner.endswith("\n```"):
        raise SystemExit("the vector block must be a plain ``` code block between the markers")
    return inner[4:-3]


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "print":
        b, note = block()
        sys.stdout.write(b + "\n" + note)
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        with open(sys.argv[2], encoding="utf-8") as f:
            doc = f.read()
        want, note = block()
        got = doc_block(doc)
        if got != want:
            import difflib
            sys.stdout.writelines(difflib.unified_diff(got.splitlines(True), want.splitlines(True), "PROTOCOL.md",
                                                       "computed"))
            print("PROTOCOL.md appendix A differs from the vectors computed from the protocol's text")
            return 1
        if "```\n" + note + "```" not in doc:
            print("PROTOCOL.md appendix A does not show the checkpoint note as text")
            return 1
        print("PROTOCOL.md appendix A: %d vectors match" % sum(" = " in x for x in want.splitlines()))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
