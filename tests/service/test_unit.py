# SPDX-License-Identifier: Apache-2.0
"""The systemd unit: clean in `systemd-analyze verify`, exposure level at most 2.0 in
`systemd-analyze security --offline=yes`, and consistent with the daemon's layout; the
sysusers.d and tmpfiles.d files create what the unit expects."""
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from svc import HERE, LIAISOND, SANITIZED, SOURCE, UNIT, ServiceTest, clean_env, wait_for

ANALYZE = shutil.which("systemd-analyze")
SYSUSERS = os.path.join(SOURCE, "systemd", "liaison.sysusers")
TMPFILES = os.path.join(SOURCE, "systemd", "liaison.tmpfiles")
MAN = os.path.join(SOURCE, "docs", "man")
MAX_EXPOSURE = 2.0


def unit_settings(path):
    """[(section, key, value)] of a unit file, in order (keys may repeat)."""
    out, section = [], None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            out.append((section, key.strip(), value.strip()))
    return out


class UnitFileTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lsvc-unit-")
        self.settings = unit_settings(UNIT)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def get(self, key, section="Service"):
        return [v for s, k, v in self.settings if s == section and k == key]

    def test_required_settings(self):
        want = {"Type": "notify", "User": "liaison", "Group": "liaison", "StateDirectory": "liaison",
                "RuntimeDirectory": "liaison", "ConfigurationDirectory": "liaison", "WatchdogSec": "30",
                "ExecReload": "/bin/kill -HUP $MAINPID", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
                "UMask": "0077", "MemoryDenyWriteExecute": "yes", "LockPersonality": "yes",
                "RestrictNamespaces": "yes", "SystemCallArchitectures": "native",
                "SupplementaryGroups": "liaison-audit"}
        for k, v in want.items():
            self.assertEqual(self.get(k), [v], k)
        # AF_NETLINK for libzmq's bind (getifaddrs); SandboxTest runs the daemon under these.
        self.assertEqual(self.get("RestrictAddressFamilies"), ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"])
        self.assertIn("@system-service", self.get("SystemCallFilter"))
        # chown(2) must stay allowed after ~@privileged: the daemon gives audit.sock to
        # the group liaison-audit (daemon/control.c).
        filters = self.get("SystemCallFilter")
        self.assertIn("@chown", filters)
        self.assertGreater(filters.index("@chown"), filters.index("~@privileged @resources"))
        # ExecStart runs the daemon in the system layout (no --home).
        self.assertEqual(self.get("ExecStart"), ["/usr/sbin/liaisond"])
        self.assertEqual(self.get("WantedBy", "Install"), ["multi-user.target"])

    def test_directories_match_the_daemon_layout(self):
        # The daemon's system layout (daemon/config.c) is /etc/liaison, /var/lib/liaison
        # and /run/liaison: exactly what the three *Directory= settings create.
        with open(os.path.join(SOURCE, "daemon", "config.c")) as f:
            src = f.read()
        for path in ("/etc/liaison", "/var/lib/liaison", "/run/liaison"):
            self.assertIn('"%s"' % path, src)

    def copy_for_verify(self):
        """A copy of the unit whose ExecStart names the built daemon (verify checks that
        the binary exists) and a MANPATH holding our man pages (verify checks
        Documentation=man:... with man(1))."""
        unit = os.path.join(self.tmp, "liaisond.service")
        with open(UNIT) as f:
            text = f.read()
        with open(unit, "w") as f:
            f.write(text.replace("/usr/sbin/liaisond", os.path.abspath(LIAISOND)))
        manroot = os.path.join(self.tmp, "man")
        for page in os.listdir(MAN):
            sect = page.rsplit(".", 1)[1]
            os.makedirs(os.path.join(manroot, "man" + sect), exist_ok=True)
            shutil.copy(os.path.join(MAN, page), os.path.join(manroot, "man" + sect, page))
        return unit, manroot

    @unittest.skipUnless(ANALYZE, "systemd-analyze is not installed")
    def test_verify_is_clean(self):
        self.assertTrue(os.access(LIAISOND, os.X_OK), "build liaisond first")
        unit, manroot = self.copy_for_verify()
        env = dict(os.environ, MANPATH=manroot, SYSTEMD_LOG_LEVEL="info", SYSTEMD_PAGER="")
        p = subprocess.run([ANALYZE, "verify", unit], capture_output=True, text=True, env=env, timeout=120)
        out = p.stdout + p.stderr
        ours = [ln for ln in out.splitlines() if "liaisond" in ln or unit in ln]
        self.assertEqual(p.returncode, 0, out)
        self.assertEqual(ours, [], "systemd-analyze verify complains:\n" + out)

    @unittest.skipUnless(ANALYZE, "systemd-analyze is not installed")
    def test_verify_catches_mistakes(self):
        # The check above would notice a broken unit (guards against a vacuous pass).
        unit, manroot = self.copy_for_verify()
        with open(unit, "a") as f:
            f.write("\n[Service]\nProtectSytem=strict\n")
        env = dict(os.environ, MANPATH=manroot, SYSTEMD_PAGER="")
        p = subprocess.run([ANALYZE, "verify", unit], capture_output=True, text=True, env=env, timeout=120)
        self.assertIn("ProtectSytem", p.stdout + p.stderr)

    @unittest.skipUnless(ANALYZE, "systemd-analyze is not installed")
    def test_security_exposure(self):
        p = subprocess.run([ANALYZE, "security", "--offline=yes", "--no-pager", UNIT], capture_output=True,
                           text=True, timeout=120, env=dict(os.environ, SYSTEMD_PAGER="", SYSTEMD_COLORS="0"))
        out = p.stdout + p.stderr
        m = re.search(r"Overall exposure level for liaisond\.service:\s*([0-9]+(?:\.[0-9]+)?)", out)
        self.assertIsNotNone(m, "no exposure level in:\n" + out)
        level = float(m.group(1))
        self.assertLessEqual(level, MAX_EXPOSURE, out)
        # The settings the issue names are all in effect.
        for item in ("NoNewPrivileges=", "ProtectSystem=", "ProtectHome=", "PrivateTmp=", "PrivateDevices=",
                     "ProtectKernelTunables=", "ProtectKernelModules=", "ProtectKernelLogs=",
                     "ProtectControlGroups=", "RestrictNamespaces=~user", "LockPersonality=",
                     "MemoryDenyWriteExecute=", "SystemCallArchitectures=", "UMask=", "RestrictSUIDSGID="):
            line = [ln for ln in out.splitlines() if item in ln]
            self.assertTrue(line and "✓" in line[0], "%s is not satisfied:\n%s" % (item, out))


def _have_libseccomp():
    try:
        ctypes.CDLL("libseccomp.so.2")
        return True
    except OSError:
        return False


def _can_unshare_mounts():
    """ProtectSystem= needs a mount namespace: root, and a kernel and container that allow it."""
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@unittest.skipUnless(ANALYZE and _have_libseccomp(), "needs systemd-analyze and libseccomp")
@unittest.skipUnless(_can_unshare_mounts(), "needs a mount namespace (root, unshare -m) for ProtectSystem=")
class SandboxTest(ServiceTest):
    """The daemon works under the unit's sandbox, applied by sandbox.py as systemd would
    (system-call filter, address families, ProtectSystem=strict with the node's home as
    its only writable place): two daemons start, exchange a message, reload and stop.
    (systemd-analyze verify and security read the unit; they never run the daemon.)"""

    def wrap(self, *writable):
        w = [sys.executable, os.path.join(HERE, "sandbox.py"), UNIT]
        for p in writable:
            w += ["--writable", p]
        return w

    def test_daemon_runs_under_the_units_sandbox(self):
        a = self.node("dr.sa", start=False)
        b = self.node("dr.sb", start=False)
        # Under ./run asan, LeakSanitizer's exit check needs ptrace, which the unit's filter
        # takes away (as it would under systemd): the leak check runs in every other test.
        opts = ":".join(o for o in (os.environ.get("ASAN_OPTIONS", ""), "detect_leaks=0") if o)
        env = clean_env(ASAN_OPTIONS=opts) if SANITIZED else None
        for n in (a, b):
            n.start(wrap=self.wrap(n.home), env=env)
        # ...with the unit's environment (glibc's malloc tunables, finding 32 of PERFORMANCE.md).
        want = [w for s, k, v in unit_settings(UNIT) if s == "Service" and k == "Environment" for w in v.split()]
        self.assertIn("GLIBC_TUNABLES=glibc.malloc.tcache_count=0", want)
        with open("/proc/%d/environ" % a.proc.pid, "rb") as f:
            have = f.read().decode().split("\0")
        for w in want:
            self.assertIn(w, have)
        a.add_peer(b)
        b.add_peer(a)
        mid = a.send(b.id, "under the filter")
        wait_for(lambda: a.delivery_states(b.id).get(mid) == 2, 20, "a delivery between sandboxed daemons")
        mark = len(a.log_text())
        a.signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in a.log_text()[mark:], 10, "the sandboxed daemon to reload")
        self.assertEqual(a.cli("audit", "verify").returncode, 0)
        for n in (a, b):
            self.assertEqual(n.stop(), 0, n.log_text())
            self.assertNotIn("Operation not permitted", n.log_text())

    def test_sandbox_denies_what_the_unit_leaves_out(self):
        # The emulation is not vacuous: a call the unit takes out fails with EPERM...
        wrap = self.wrap()
        p = subprocess.run(wrap + [sys.executable, "-c", "import os; os.setpriority(os.PRIO_PROCESS, 0, 5)"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Operation not permitted", p.stderr)
        p = subprocess.run(wrap + [sys.executable, "-c", "import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)"],
                           capture_output=True, text=True, timeout=60)
        self.assertIn("Address family not supported", p.stderr)
        # ...and outside the writable paths nothing can be written, though it can be read.
        inside = tempfile.mkdtemp(prefix="lsvc-rw-")
        outside = tempfile.mkdtemp(prefix="lsvc-ro-")
        try:
            script = ("import sys\n"
                      "open(sys.argv[1] + '/ok', 'w').write('x')\n"
                      "open(sys.argv[2] + '/no', 'w').write('x')\n")
            p = subprocess.run(self.wrap(inside) + [sys.executable, "-c", script, inside, outside],
                               capture_output=True, text=True, timeout=60)
            self.assertIn("Read-only file system", p.stderr)
            self.assertTrue(os.path.exists(os.path.join(inside, "ok")))
            self.assertFalse(os.path.exists(os.path.join(outside, "no")))
        finally:
            shutil.rmtree(inside, ignore_errors=True)
            shutil.rmtree(outside, ignore_errors=True)


class UsersAndDirectoriesTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="lsvc-root-")
        os.makedirs(os.path.join(self.root, "etc"))
        os.makedirs(os.path.join(self.root, "var", "lib"))

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def read(self, *path):
        with open(os.path.join(self.root, *path)) as f:
            return f.read()

    @unittest.skipUnless(shutil.which("systemd-sysusers"), "systemd-sysusers is not installed")
    def test_sysusers_creates_users_and_groups(self):
        with open(SYSUSERS) as f:
            p = subprocess.run(["systemd-sysusers", "--root=" + self.root, "-"], stdin=f, capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        passwd = {ln.split(":")[0]: ln.split(":") for ln in self.read("etc", "passwd").splitlines()}
        group = {ln.split(":")[0]: ln.split(":") for ln in self.read("etc", "group").splitlines()}
        self.assertIn("liaison", passwd)
        self.assertIn("liaison", group)
        self.assertIn("liaison-audit", group)
        user = passwd["liaison"]
        self.assertEqual(user[3], group["liaison"][2], "liaison's primary group is liaison")
        self.assertLess(int(user[2]), 1000, "a system user")
        self.assertEqual(user[5], "/var/lib/liaison")
        self.assertTrue(user[6].endswith("nologin"))
        # The daemon is in liaison-audit so that it can give audit.sock to that group.
        self.assertIn("liaison", group["liaison-audit"][3].split(","))
        # Idempotent: running it again (package upgrade) changes nothing.
        with open(SYSUSERS) as f:
            p = subprocess.run(["systemd-sysusers", "--root=" + self.root, "-"], stdin=f, capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len([ln for ln in self.read("etc", "passwd").splitlines() if ln.startswith("liaison:")]), 1)

    @unittest.skipUnless(shutil.which("systemd-sysusers") and shutil.which("systemd-tmpfiles"),
                         "systemd-sysusers/systemd-tmpfiles are not installed")
    @unittest.skipUnless(os.geteuid() == 0, "needs root to give the directories to liaison")
    def test_tmpfiles_creates_private_directories(self):
        with open(SYSUSERS) as f:
            subprocess.run(["systemd-sysusers", "--root=" + self.root, "-"], stdin=f, check=True,
                           capture_output=True, timeout=60)
        with open(TMPFILES) as f:
            p = subprocess.run(["systemd-tmpfiles", "--root=" + self.root, "--create", "-"], stdin=f,
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        uid = int([ln for ln in self.read("etc", "passwd").splitlines() if ln.startswith("liaison:")][0].split(":")[2])
        for path, mode in (("etc/liaison", 0o750), ("var/lib/liaison", 0o700)):
            st = os.stat(os.path.join(self.root, path))
            self.assertEqual(st.st_mode & 0o7777, mode, path)
            self.assertEqual(st.st_uid, uid, path)


if __name__ == "__main__":
    unittest.main()
