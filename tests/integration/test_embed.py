# SPDX-License-Identifier: Apache-2.0
"""libliaison-client as a stranger uses it: installed with `cmake --install` into a
scratch prefix, then compiled against through pkg-config alone (installed header,
shared library, .proto files), with strict warnings, from C and from C++. Checks what
the shared library exports, and runs an EHR bridge (tests/tools/ehr_bridge.c) against
two real daemons, under valgrind when it is installed."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD, NodeTest, link, sanitized, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "tools")
CMAKE = shutil.which("cmake")
CC = shutil.which("cc")
CXX = shutil.which("c++")
PKG_CONFIG = shutil.which("pkg-config")
PROTOC_C = shutil.which("protoc-c") or shutil.which("protoc-gen-c")
VALGRIND = shutil.which("valgrind")
STRICT = ["-std=c17", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-Wconversion",
          "-Wstrict-prototypes", "-Wmissing-prototypes"]


@unittest.skipUnless(CMAKE and CC and PKG_CONFIG, "cmake, cc or pkg-config is not installed")
@unittest.skipIf(sanitized(), "the library is built with ASan (./run asan): an outside program cannot link it")
class Installed(NodeTest):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="liaison-embed-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        subprocess.run([CMAKE, "--install", BUILD, "--prefix", cls.prefix], check=True, capture_output=True,
                       timeout=300)
        pcs = [os.path.join(d, f) for d, _, fs in os.walk(cls.prefix) for f in fs if f == "liaison-client.pc"]
        assert len(pcs) == 1, pcs
        cls.env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]))
        cls.cflags = cls.pkg("--cflags")
        cls.libs = cls.pkg("--libs")
        cls.libdir = cls.pkg("--variable=libdir")[0]
        cls.header = os.path.join(cls.pkg("--variable=includedir")[0], "liaison_client.h")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def pkg(cls, *args):
        return subprocess.run([PKG_CONFIG] + list(args) + ["liaison-client"], capture_output=True, text=True,
                              env=cls.env, check=True).stdout.split()

    def compile(self, cmd):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, " ".join(cmd) + "\n" + p.stderr)

    def test_header_strict_c_and_cxx(self):
        # The installed header alone, with an embedder's strictest flags, from C99 on and
        # from C++ (extern "C": the program links).
        src = os.path.join(self.tmp, "strict.c")
        with open(src, "w") as f:
            f.write("#include <liaison_client.h>\n#include <stdio.h>\n"
                    "int main(void)\n{\n    liaison_client_t *c = NULL;\n    char err[256];\n"
                    "    liaison_rc rc = liaison_client_connect_path(\"/nonexistent/control.sock\", &c, err, sizeof err);\n"
                    "    printf(\"%s %d %s\\n\", liaison_rc_string(rc), c == NULL, err);\n"
                    "    return rc == LIAISON_UNREACHABLE ? 0 : 1;\n}\n")
        for std in ("-std=c99", "-std=c17"):
            exe = os.path.join(self.tmp, "strict" + std[-2:])
            self.compile([CC] + STRICT + [std] + self.cflags + [src, "-o", exe] + self.libs)
            p = subprocess.run([exe], capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, LD_LIBRARY_PATH=self.libdir))
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("LIAISON_UNREACHABLE 1 liaisond is not running", p.stdout)
        if CXX:
            cxx = os.path.join(self.tmp, "strict.cc")
            shutil.copy(src, cxx)
            self.compile([CXX, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic"] + self.cflags +
                         [cxx, "-o", os.path.join(self.tmp, "strictxx")] + self.libs)

    @unittest.skipUnless(PROTOC_C, "protoc-c is not installed")
    def test_ehr_bridge(self):
        # An EHR bridge built from the installed .proto files sends a progress note and
        # a medication change, waits for delivery and acknowledgement, reads the inbox,
        # and gets the documented code on each error path; no leak, success or error.
        protodir = self.pkg("--variable=protodir")[0]
        protos = sorted(os.path.join(protodir, f) for f in os.listdir(protodir) if f.endswith(".proto"))
        self.assertEqual([os.path.basename(p) for p in protos], ["control.proto", "payload.proto", "wire.proto"])
        gen = os.path.join(self.base, "gen")
        os.mkdir(gen)
        self.compile([PROTOC_C, "--c_out=" + gen, "-I" + protodir] + protos)
        objs = []
        for c in sorted(f for f in os.listdir(gen) if f.endswith(".c")):
            objs.append(os.path.join(gen, c[:-2] + ".o"))
            self.compile([CC, "-c", "-I" + gen, os.path.join(gen, c), "-o", objs[-1]])
        exe = os.path.join(self.base, "ehr_bridge")
        self.compile([CC] + STRICT + ["-I" + gen] + self.cflags + [os.path.join(TOOLS, "ehr_bridge.c")] + objs +
                     ["-o", exe] + self.libs + self.pkg_other("libprotobuf-c"))
        a = self.node("a")
        b = self.node("b", role="psychiatrist")
        link(a, b)
        scratch = os.path.join(self.base, "scratch")
        os.mkdir(scratch)
        cmd = [exe, a.home, b.home, "b", scratch, str(a.proc.pid)]
        if VALGRIND:
            cmd = [VALGRIND, "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
                   "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, LD_LIBRARY_PATH=self.libdir))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr[-6000:])
        out = p.stdout
        note = re.search(r"^note ([0-9a-f]{32})$", out, re.M).group(1)
        med = re.search(r"^med ([0-9a-f]{32})$", out, re.M).group(1)
        self.assertIn("delivered\n", out)
        self.assertIn("inbox %s from a to a,b type 3 awaiting_ack 1 payload 0\n" % med, out)
        self.assertIn("inbox %s from a to a,b type 2 awaiting_ack 0 payload 0\n" % note, out)
        self.assertIn("read note: patient P-1042 narrative 'Engaged in CBT; sleep improved.' marked read 1\n", out)
        self.assertIn("unread now 1: %s\n" % med, out)
        self.assertRegex(out, r"read medication change \(\d+ bytes\), read_ms set 1\n")
        self.assertIn("oldest %s\nnewest %s\n" % (note, med), out)
        # Each read is audited on b: the note by liaison_read, the change by the inbox.
        reads = b.query("SELECT hex(message_id) FROM audit WHERE action = 'message-read'")
        self.assertEqual(sorted(r[0].lower() for r in reads), sorted([note, med]))
        self.assertIn("acknowledged by b\n", out)
        self.assertIn("sender read: read_ms 0 awaiting_ack 0 ack id ok by b comment 'Seen; will screen for"
                      " activation.'\n", out)
        self.assertIn("recipient lists: awaiting_ack 0 acks 1 by b comment none\n", out)
        # On a, reading the change back read the acknowledgement's comment too: both audited.
        ack = re.search(r"^ack ([0-9a-f]{32})$", out, re.M).group(1)
        reads = a.query("SELECT hex(message_id) FROM audit WHERE action = 'message-read'")
        self.assertEqual(sorted(r[0].lower() for r in reads), sorted([med, ack]))
        codes = dict(re.findall(r"^([a-z-]+) (LIAISON_[A-Z_]+):", out, re.M))
        self.assertEqual(codes, {
            "connect-no-node": "LIAISON_NOT_FOUND", "connect-not-a-socket": "LIAISON_BAD_REQUEST",
            "connect-stale": "LIAISON_UNREACHABLE", "open-stale": "LIAISON_UNREACHABLE",
            "unknown-peer": "LIAISON_REFUSED", "bad-recipient": "LIAISON_BAD_REQUEST",
            "ack-unknown": "LIAISON_REFUSED", "ack-bad-id": "LIAISON_BAD_REQUEST",
            "bad-payload": "LIAISON_BAD_REQUEST", "bad-raw": "LIAISON_BAD_REQUEST",
            "case-variant": "LIAISON_REFUSED", "bad-flags": "LIAISON_BAD_REQUEST", "distinct-patient": "LIAISON_OK",
            "collect-none": "LIAISON_BAD_REQUEST", "read-unknown": "LIAISON_NOT_FOUND",
            "read-bad-id": "LIAISON_BAD_REQUEST", "inbox-bad-flags": "LIAISON_BAD_REQUEST",
            "inbox-too-many": "LIAISON_BAD_REQUEST", "inbox-null-n": "LIAISON_BAD_REQUEST", "inbox-most": "LIAISON_OK",
            "timeout": "LIAISON_TIMEOUT"}, out)
        self.assertRegex(out, r"timeout LIAISON_TIMEOUT: .*may still be carried out")
        self.assertNotIn("output set!", out)
        self.assertIn("case-variant LIAISON_REFUSED: patient id 'p-1042' differs only in letter case", out)
        self.assertIn("bad-flags LIAISON_BAD_REQUEST: unknown send flags 0x80\n", out)
        # The timed-out synchronous send is abandoned: only the 5 submitted after it are pending.
        self.assertIn("pending 5\n", out)
        self.assertIn("rc-names LIAISON_PERMISSION LIAISON_UNKNOWN\n", out)
        # ...and it was carried out all the same once the daemon ran again.
        wait_for(lambda: a.query("SELECT count(*) FROM messages WHERE content_type = 1")[0][0] >= 1, 20,
                 "the timed-out send to be stored")

    def pkg_other(self, name):
        return subprocess.run([PKG_CONFIG, "--libs", name], capture_output=True, text=True, check=True).stdout.split()

    def test_exports_only_the_api(self):
        # Everything else (the static protocol and node libraries linked in) stays
        # inside: an embedder's own log_info or protobuf-c code generated from our
        # .proto files must not interpose on the library's internal calls.
        with open(self.header) as f:
            api = set(re.findall(r"LIAISON_API\s[^;(]*?\b(liaison_\w+)\s*\(", f.read()))
        self.assertIn("liaison_client_open", api)
        lib = os.path.join(self.libdir, "libliaison-client.so")
        out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True,
                             check=True).stdout
        exported = {ln.split()[-1].split("@")[0] for ln in out.splitlines() if ln.split()[1] in "TDBRVW"}
        self.assertEqual(exported, api)
        soname = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True, check=True).stdout
        self.assertIn("[libliaison-client.so.0]", soname)


if __name__ == "__main__":
    unittest.main()
