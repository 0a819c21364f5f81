# SPDX-License-Identifier: Apache-2.0
"""Installation and packaging: `cpack -G DEB` builds a .deb that unpacks into a scratch
root with the expected layout and maintainer scripts that create users and groups but
enable nothing; `cmake --install` into another prefix points the unit at it."""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from svc import BUILD, HERE, SANITIZED, free_port

CPACK = shutil.which("cpack")
CMAKE = shutil.which("cmake")
DPKG_DEB = shutil.which("dpkg-deb")


@unittest.skipUnless(CPACK and DPKG_DEB, "cpack or dpkg-deb is not installed")
class DebTest(unittest.TestCase):
    """Builds the package once, in a scratch directory (not in the build tree)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lsvc-deb-")
        p = subprocess.run([CPACK, "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-G", "DEB",
                            "-B", os.path.join(cls.tmp, "out")], capture_output=True, text=True, timeout=600,
                           cwd=BUILD)
        cls.cpack_output = p.stdout + p.stderr
        debs = glob.glob(os.path.join(cls.tmp, "out", "*.deb"))
        cls.deb = debs[0] if p.returncode == 0 and len(debs) == 1 else None
        cls.root = os.path.join(cls.tmp, "root")
        if cls.deb:
            subprocess.run([DPKG_DEB, "-x", cls.deb, cls.root], check=True, timeout=120)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.assertIsNotNone(self.deb, "cpack -G DEB failed:\n" + self.cpack_output)

    def files(self):
        out = []
        for d, _, names in os.walk(self.root):
            for n in names:
                out.append(os.path.relpath(os.path.join(d, n), self.root))
        return sorted(out)

    def read(self, rel):
        with open(os.path.join(self.root, rel)) as f:
            return f.read()

    def field(self, name):
        return subprocess.run([DPKG_DEB, "-f", self.deb, name], capture_output=True, text=True,
                              check=True).stdout.strip()

    def test_layout(self):
        files = self.files()
        for rel in ("usr/sbin/liaisond", "usr/bin/liaison", "lib/systemd/system/liaisond.service",
                    "usr/lib/sysusers.d/liaison.conf", "usr/lib/tmpfiles.d/liaison.conf",
                    "usr/share/man/man1/liaison.1", "usr/share/man/man5/liaison.conf.5",
                    "usr/share/man/man8/liaisond.8", "usr/include/liaison_client.h",
                    "usr/share/doc/liaison/PROTOCOL.md", "usr/share/doc/liaison/README.md"):
            self.assertIn(rel, files, "\n".join(files))
        for rel in ("usr/sbin/liaisond", "usr/bin/liaison"):
            self.assertTrue(os.access(os.path.join(self.root, rel), os.X_OK), rel)
        libs = [f for f in files if re.search(r"(^|/)libliaison-client\.so", f)]
        self.assertTrue(libs, "no libliaison-client.so* in\n" + "\n".join(files))
        self.assertTrue(any(re.search(r"libliaison-client\.so\.\d+$", f) for f in libs + self.links()), libs)
        pcs = [f for f in files if f.endswith("pkgconfig/liaison-client.pc")]
        self.assertEqual(len(pcs), 1, "\n".join(files))
        # Nothing lands in /etc (no conffiles to clobber a node's configuration) or /usr/local.
        self.assertFalse([f for f in files if f.startswith(("etc/", "usr/local/"))], files)

    def links(self):
        out = []
        for d, dirs, names in os.walk(self.root):
            for n in names + dirs:
                if os.path.islink(os.path.join(d, n)):
                    out.append(os.path.relpath(os.path.join(d, n), self.root))
        return out

    def test_unit_and_pkgconfig_point_into_the_package(self):
        unit = self.read("lib/systemd/system/liaisond.service")
        self.assertIn("ExecStart=/usr/sbin/liaisond\n", unit)
        self.assertIn("Type=notify", unit)
        pc_rel = [f for f in self.files() if f.endswith("pkgconfig/liaison-client.pc")][0]
        pc = self.read(pc_rel)
        self.assertIn("prefix=/usr\n", pc)
        self.assertIn("-lliaison-client", pc)
        # libdir in the .pc is where the library is.
        libdir = re.search(r"^libdir=(.*)$", pc, re.M).group(1).replace("${exec_prefix}", "/usr")
        self.assertTrue(glob.glob(os.path.join(self.root, libdir.lstrip("/"), "libliaison-client.so*")),
                        "libdir=%s in the .pc holds no libliaison-client" % libdir)
        self.assertEqual(os.path.dirname(os.path.join("/", pc_rel)), os.path.join(libdir, "pkgconfig"))

    def test_control(self):
        self.assertEqual(self.field("Package"), "liaison")
        depends = self.field("Depends")
        for lib in ("libzmq5", "libsodium23", "libsqlite3-0", "libprotobuf-c1", "libinih1"):
            self.assertIn(lib, depends)
        # liaisond speaks systemd's notification protocol itself (daemon/notify.h).
        self.assertNotIn("libsystemd", depends)
        # STRICT tables and sqlite3_total_changes64 need SQLite 3.37 (CMakeLists.txt).
        self.assertIn("libsqlite3-0 (>= 3.37)", depends)
        info = subprocess.run([DPKG_DEB, "-I", self.deb], capture_output=True, text=True, check=True).stdout
        self.assertIn("postinst", info)
        self.assertIn("postrm", info)

    def test_daemon_links_no_libsystemd(self):
        # The notification protocol is spoken by daemon/notify.c: libsystemd, and the
        # liblzma, libzstd, liblz4 and libgcrypt it pulls in, stay out of the daemon.
        out = subprocess.run(["readelf", "-d", os.path.join(self.root, "usr/sbin/liaisond")],
                             capture_output=True, text=True, check=True, timeout=60).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
        self.assertIn("libzmq.so.5", needed)  # the list was read
        self.assertEqual([n for n in needed if "systemd" in n], [])

    def control_script(self, name):
        d = os.path.join(self.tmp, "control")
        if not os.path.isdir(d):
            subprocess.run([DPKG_DEB, "-e", self.deb, d], check=True, timeout=60)
        path = os.path.join(d, name)
        self.assertTrue(os.access(path, os.X_OK), "%s is not executable" % name)
        with open(path) as f:
            return f.read()

    def test_maintainer_scripts_enable_nothing(self):
        postinst = self.control_script("postinst")
        self.assertIn("systemd-sysusers", postinst)
        self.assertIn("/usr/lib/sysusers.d/liaison.conf", postinst)
        self.assertIn("liaison-audit", postinst)  # fallback without systemd-sysusers
        code = "\n".join(ln for ln in postinst.splitlines() if not ln.strip().startswith(("#", "echo")))
        self.assertNotRegex(code, r"systemctl\s+(--\S+\s+)*(enable|start|unmask)\b")
        self.assertNotIn("deb-systemd-helper enable", code)
        for name in ("postinst", "postrm", "prerm"):
            script = self.control_script(name)
            p = subprocess.run(["sh", "-n", "-c", script])
            self.assertEqual(p.returncode, 0, name)
        # postrm keeps the clinical records, even on purge.
        postrm = self.control_script("postrm")
        self.assertNotRegex(postrm, r"rm\s+-[a-z]*r[a-z]*\s+[^\n]*(/var/lib/liaison|/etc/liaison)")

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare") and shutil.which("setpriv")
                         and shutil.which("useradd") and shutil.which("systemd-sysusers"),
                         "needs root, unshare, setpriv, useradd and systemd-sysusers")
    def test_install_as_a_service(self):
        """README's "Install as a service", in a private mount namespace (the host's /etc,
        /run and /var/lib are not touched): postinst creates the users, groups and
        directories; `liaison init` as liaison; the daemon as liaison gives the sockets to
        the right groups; a clinician reaches only the control socket, an auditor only
        the audit socket."""
        ctl = os.path.join(self.tmp, "control")
        if not os.path.isdir(ctl):
            subprocess.run([DPKG_DEB, "-e", self.deb, ctl], check=True, timeout=60)
        scratch = tempfile.mkdtemp(prefix="sim-", dir=self.tmp)
        probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
        if probe.returncode != 0:
            self.skipTest("cannot create a mount namespace here: " + probe.stderr.decode(errors="replace"))
        port = free_port()
        p = subprocess.run(["unshare", "-m", "--propagation", "private", os.path.join(HERE, "deb_sim.sh"),
                            self.root, ctl, scratch, str(port)], capture_output=True, text=True, timeout=300)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        checks = dict(ln.split()[1:3] for ln in p.stdout.splitlines() if ln.startswith("CHECK "))
        want = {"postinst": "0", "postinst-again": "0", "init": "0", "check-config": "0",
                "alice-status": "0", "alice-card": "0", "alice-audit": "2", "bob-audit": "0",
                "bob-status": "2", "daemon-exit": "0"}
        self.assertEqual(checks, want, out)
        self.assertRegex(out, r"GROUP liaison-audit:x:\d+:liaison\n")
        self.assertIn("DIR /etc/liaison 750 liaison liaison /var/lib/liaison 700 liaison liaison", out)
        self.assertIn("/run/liaison/control.sock 660 liaison liaison ", out)
        self.assertIn("/run/liaison/audit.sock 660 liaison liaison-audit", out)

    @unittest.skipUnless(shutil.which("pkg-config") and shutil.which("cc"), "pkg-config or cc is not installed")
    @unittest.skipIf(SANITIZED, "the library is built with ASan (./run asan)")
    def test_pkgconfig_builds_a_client(self):
        # An embedder's program compiles and links against the packaged header and
        # library through pkg-config alone.
        pcdir = os.path.dirname(os.path.join(self.root, [f for f in self.files()
                                                         if f.endswith("pkgconfig/liaison-client.pc")][0]))
        env = dict(os.environ, PKG_CONFIG_PATH=pcdir, PKG_CONFIG_SYSROOT_DIR=self.root)
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "liaison-client"], capture_output=True,
                               text=True, env=env, check=True).stdout.split()
        src = os.path.join(self.tmp, "embed.c")
        with open(src, "w") as f:
            f.write("#include <liaison_client.h>\n#include <stdio.h>\n"
                    "int main(void) {\n    char err[256];\n"
                    "    liaison_client_t *c = liaison_client_open_path(\"/nonexistent/control.sock\", err, sizeof err);\n"
                    "    if (c) liaison_client_close(c);\n    puts(c ? \"open\" : \"unreachable\");\n    return 0;\n}\n")
        exe = os.path.join(self.tmp, "embed")
        p = subprocess.run(["cc", "-std=c17", "-Wall", "-Werror", src, "-o", exe] + flags, capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, " ".join(flags) + "\n" + p.stderr)
        libdir = [f[2:] for f in flags if f.startswith("-L")][0]
        p = subprocess.run([exe], capture_output=True, text=True, env=dict(os.environ, LD_LIBRARY_PATH=libdir),
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_packaged_binaries_run(self):
        # The packaged daemon is the built one: it starts with --version.
        p = subprocess.run([os.path.join(self.root, "usr/sbin/liaisond"), "--version"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("liaisond", p.stdout)


@unittest.skipUnless(CMAKE, "cmake is not installed")
class InstallPrefixTest(unittest.TestCase):
    def test_install_elsewhere(self):
        with tempfile.TemporaryDirectory(prefix="lsvc-inst-") as dest:
            env = dict(os.environ, DESTDIR=dest)
            p = subprocess.run([CMAKE, "--install", BUILD, "--prefix", "/opt/liaison"], capture_output=True,
                               text=True, timeout=300, env=env)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            unit = os.path.join(dest, "opt/liaison/lib/systemd/system/liaisond.service")
            with open(unit) as f:
                text = f.read()
            self.assertIn("ExecStart=/opt/liaison/sbin/liaisond\n", text)
            self.assertTrue(os.path.exists(os.path.join(dest, "opt/liaison/sbin/liaisond")))
            self.assertTrue(os.path.exists(os.path.join(dest, "opt/liaison/lib/sysusers.d/liaison.conf")))
            pcs = glob.glob(os.path.join(dest, "opt/liaison/lib*/**/liaison-client.pc"), recursive=True)
            self.assertEqual(len(pcs), 1)
            with open(pcs[0]) as f:
                self.assertIn("prefix=/opt/liaison\n", f.read())


if __name__ == "__main__":
    unittest.main()
