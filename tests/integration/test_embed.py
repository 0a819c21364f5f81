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

from harness import BUILD, NodeTest, link

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "tools")
CMAKE = shutil.which("cmake")
CC = shutil.which("cc")
CXX = shutil.which("c++")
PKG_CONFIG = shutil.which("pkg-config")
VALGRIND = shutil.which("valgrind")
STRICT = ["-std=c17", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-Wconversion",
          "-Wstrict-prototypes", "-Wmissing-prototypes"]


def _sanitized():
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return re.search(r"^LIAISON_SANITIZE:BOOL=ON$", f.read(), re.M) is not None
    except OSError:
        return False


@unittest.skipUnless(CMAKE and CC and PKG_CONFIG, "cmake, cc or pkg-config is not installed")
@unittest.skipIf(_sanitized(), "the library is built with ASan (./run asan): an outside program cannot link it")
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
