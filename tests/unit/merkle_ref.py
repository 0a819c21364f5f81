#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A second, independent implementation of the RFC 9162 (RFC 6962) Merkle tree, standard
library only, to cross-check proto/merkle.c.

It follows the RFC's definitions literally (recursive MTH, PATH and SUBPROOF over lists,
section 2.1.1-2.1.4.1) and its verification algorithms step by step (sections 2.1.3.2 and
2.1.4.2); it shares no code or structure with the C implementation, which walks the tree
iteratively with a stack of subtree roots.

  merkle_ref.py selftest               the CT reference vectors
  merkle_ref.py crosscheck HELPER [N]  runs HELPER [N] (tests/unit/merkle_dump.c) and checks
                                       every line: Python's leaf hashes, roots and proofs
                                       must equal C's byte for byte, Python must accept C's
                                       proofs, and must refuse them once tampered with.
Exit status 0 on success, 1 on any mismatch.
"""

import hashlib
import json
import subprocess
import sys


def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(data):
    return sha256(b"\x00" + data)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def split(n):
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes):
    """MTH over a list of leaf hashes (RFC 9162 2.1.1)."""
    n = len(hashes)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return hashes[0]
    k = split(n)
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def path(m, hashes):
    """PATH(m, D[n]) (RFC 9162 2.1.3.1)."""
    n = len(hashes)
    if n <= 1:
        return []
    k = split(n)
    if m < k:
        return path(m, hashes[:k]) + [mth(hashes[k:])]
    return path(m - k, hashes[k:]) + [mth(hashes[:k])]


def subproof(m, hashes, b):
    """SUBPROOF(m, D[n], b) (RFC 9162 2.1.4.1)."""
    n = len(hashes)
    if m == n:
        return [] if b else [mth(hashes)]
    k = split(n)
    if m <= k:
        return subproof(m, hashes[:k], b) + [mth(hashes[k:])]
    return subproof(m - k, hashes[k:], False) + [mth(hashes[:k])]


def consistency_proof(m, hashes):
    """PROOF(m, D[n]); empty for m == 0 and m == n, which the RFC leaves undefined."""
    if m == 0 or m == len(hashes):
        return []
    return subproof(m, hashes, True)


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 2.1.3.2, step by step."""
    if index >= size:  # 1.
        return False
    fn, sn = index, size - 1  # 2.
    r = leaf  # 3.
    for p in proof:  # 4.
        if sn == 0:  # a.
            return False
        if fn & 1 or fn == sn:  # b.
            r = node_hash(p, r)  # i.
            if not fn & 1:  # ii.
                while not (fn & 1) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)  # i.
        fn >>= 1  # c.
        sn >>= 1
    return sn == 0 and r == root  # 5.


def verify_consistency(first, second, first_hash, second_hash, proof):
    """RFC 9162 2.1.4.2 for 0 < first < second; liaison's documented rules otherwise."""
    if first > second:
        return False
    if first == second:
        return not proof and first_hash == second_hash and (first > 0 or first_hash == sha256(b""))
    if first == 0:
        return not proof and first_hash == sha256(b"")
    path_ = list(proof)
    if not path_:  # 1.
        return False
    if first & (first - 1) == 0:  # 2.
        path_.insert(0, first_hash)
    fn, sn = first - 1, second - 1  # 3.
    while fn & 1:  # 4.
        fn >>= 1
        sn >>= 1
    fr = sr = path_[0]  # 5.
    for c in path_[1:]:  # 6.
        if sn == 0:  # a.
            return False
        if fn & 1 or fn == sn:  # b.
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # c.
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0  # 7.


CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# transparency-dev/merkle proof/verify_test.go (old size, new size, proof).
CT_CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


class Checker:
    def __init__(self):
        self.failures = 0

    def check(self, ok, what):
        if not ok:
            self.failures += 1
            if self.failures <= 20:
                print("MISMATCH: " + what, file=sys.stderr)


def selftest(ck):
    hashes = [leaf_hash(bytes.fromhex(x)) for x in CT_LEAVES]
    ck.check(mth([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
             "empty root")
    for n in range(1, 9):
        ck.check(mth(hashes[:n]).hex() == CT_ROOTS[n - 1], "CT root %d" % n)
        for i in range(n):
            ck.check(verify_inclusion(hashes[i], i, n, path(i, hashes[:n]), mth(hashes[:n])),
                     "CT inclusion %d/%d" % (i, n))
    for m, n, proof in CT_CONSISTENCY:
        proof = [bytes.fromhex(p) for p in proof]
        ck.check(consistency_proof(m, hashes[:n]) == proof, "CT consistency proof %d->%d" % (m, n))
        ck.check(verify_consistency(m, n, mth(hashes[:m]), mth(hashes[:n]), proof),
                 "CT consistency verify %d->%d" % (m, n))


def tampered(proof):
    """Each way of breaking a non-empty proof: one bit of each node, one node less or more."""
    for i in range(len(proof)):
        for byte in (0, 17, 31):
            p = [bytearray(x) for x in proof]
            p[i][byte] ^= 1 << (i % 8)
            yield [bytes(x) for x in p]
    if proof:
        yield proof[:-1]
        yield proof[1:]
        yield proof + [proof[0]]
        yield [proof[-1]] + proof


def crosscheck(ck, helper, n_arg):
    cmd = [helper] + ([str(n_arg)] if n_arg is not None else [])
    res = subprocess.run(cmd, stdout=subprocess.PIPE, check=False)
    ck.check(res.returncode == 0, "%s exited with %d" % (helper, res.returncode))
    hashes, roots = [], {}
    counts = {"leaf": 0, "root": 0, "inclusion": 0, "consistency": 0}
    end = None
    for line in res.stdout.decode("ascii").splitlines():
        rec = json.loads(line)
        kind = rec["kind"]
        if kind == "end":
            end = rec["n"]
            continue
        counts[kind] += 1
        if kind == "leaf":
            ck.check(rec["index"] == len(hashes) and rec["data"] == "entry-%d" % rec["index"],
                     "leaf order at %d" % rec["index"])
            h = leaf_hash(rec["data"].encode("ascii"))
            ck.check(h.hex() == rec["hash"], "leaf hash %d" % rec["index"])
            hashes.append(h)
        elif kind == "root":
            size = rec["size"]
            roots[size] = mth(hashes[:size])
            ck.check(roots[size].hex() == rec["root"], "root of size %d" % size)
        elif kind == "inclusion":
            size, index = rec["size"], rec["index"]
            proof = [bytes.fromhex(p) for p in rec["proof"]]
            root = bytes.fromhex(rec["root"])
            ck.check(root == roots[size], "inclusion root of size %d" % size)
            ck.check(path(index, hashes[:size]) == proof, "inclusion proof %d/%d" % (index, size))
            ck.check(verify_inclusion(hashes[index], index, size, proof, root),
                     "Python refuses C's inclusion proof %d/%d" % (index, size))
            for bad in tampered(proof):
                ck.check(not verify_inclusion(hashes[index], index, size, bad, root),
                         "tampered inclusion proof %d/%d accepted" % (index, size))
            if size > 1:
                other = (index + 1) % size
                ck.check(not verify_inclusion(hashes[index], other, size, proof, root),
                         "inclusion proof %d/%d accepted at index %d" % (index, size, other))
        elif kind == "consistency":
            old, new = rec["old"], rec["new"]
            proof = [bytes.fromhex(p) for p in rec["proof"]]
            r1, r2 = bytes.fromhex(rec["old_root"]), bytes.fromhex(rec["new_root"])
            ck.check(r1 == roots[old] and r2 == roots[new], "consistency roots %d->%d" % (old, new))
            ck.check(consistency_proof(old, hashes[:new]) == proof, "consistency proof %d->%d" % (old, new))
            ck.check(verify_consistency(old, new, r1, r2, proof),
                     "Python refuses C's consistency proof %d->%d" % (old, new))
            for bad in tampered(proof):
                ck.check(not verify_consistency(old, new, r1, r2, bad),
                         "tampered consistency proof %d->%d accepted" % (old, new))
            if 0 < old < new:
                ck.check(not verify_consistency(old, new, r2, r1, proof),
                         "consistency proof %d->%d accepted with swapped roots" % (old, new))
                ck.check(not verify_consistency(new, old, r2, r1, proof),
                         "consistency proof %d->%d accepted backwards" % (old, new))
    # Every expected line is present: a truncated dump must not pass.
    n = len(hashes)
    ck.check(end == n and (n_arg is None or n == n_arg), "dump ended early or has a wrong leaf count")
    ck.check(counts == {"leaf": n, "root": n + 1, "inclusion": n * (n + 1) // 2,
                        "consistency": (n + 1) * (n + 2) // 2}, "line counts %r" % counts)
    return counts


def main(argv):
    ck = Checker()
    if len(argv) == 2 and argv[1] == "selftest":
        selftest(ck)
        summary = "CT vectors"
    elif len(argv) in (3, 4) and argv[1] == "crosscheck":
        selftest(ck)
        counts = crosscheck(ck, argv[2], int(argv[3]) if len(argv) == 4 else None)
        summary = "CT vectors and %(leaf)d leaves, %(root)d roots, %(inclusion)d inclusion and " \
                  "%(consistency)d consistency proofs" % counts
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if ck.failures:
        print("%d mismatches" % ck.failures, file=sys.stderr)
        return 1
    print("merkle_ref: agree on " + summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
