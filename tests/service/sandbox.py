# SPDX-License-Identifier: Apache-2.0
"""Runs a command under the sandbox of liaisond.service, without systemd: the unit's
SystemCallFilter= lines (read in order, with systemd's meaning: the first allow list
starts from nothing, a ~ line takes its calls out again, a later allow line puts them
back; groups expanded by `systemd-analyze syscall-filter`), denied calls failing with
SystemCallErrorNumber=, RestrictAddressFamilies= for socket(2), NoNewPrivileges=, and
ProtectSystem=strict: in a mount namespace of its own, every file system read-only but
/dev, /proc and /sys (which other settings cover) and the paths given with --writable,
which stand in for the unit's ConfigurationDirectory=, StateDirectory= and
RuntimeDirectory= (systemd bind-mounts each of them read-write into the namespace,
ConfigurationDirectory= included: compile_bind_mounts in its src/core/execute.c; unlike
the others it does not chown that one to User=, which is why the package's tmpfiles.d
entry makes /etc/liaison liaison's). Built with libseccomp, as systemd builds its own
filter.

    python3 sandbox.py UNIT [--writable PATH]... COMMAND [ARG...]
"""
import ctypes
import errno
import os
import re
import socket
import subprocess
import sys

# systemd always lets these through (systemd.exec(5), SystemCallFilter=).
ALWAYS = {"execve", "exit", "exit_group", "getrlimit", "rt_sigreturn", "sigreturn"}
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4
SCMP_CMP_GT = 6
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
# statvfs flags a read-only remount keeps (the same bits as the MS_ flags): nosuid,
# nodev, noexec, noatime, nodiratime, relatime.
KEEP_FLAGS = 2 | 4 | 8 | 1024 | 2048 | 4096


def unit_values(path, key):
    out = []
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if line.startswith(key + "="):
                out.append(line[len(key) + 1:].strip())
    return out


def expand(name, cache={}):
    """The system calls of a name: itself, or a @group's members, recursively."""
    if not name.startswith("@"):
        return {name}
    if name not in cache:
        text = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True,
                              check=True, timeout=60).stdout
        calls = set()
        for ln in text.splitlines()[1:]:
            w = ln.strip()
            if w and not w.startswith("#"):
                calls |= expand(w)
        cache[name] = calls
    return cache[name]


def allowed_calls(unit):
    allowed = None
    for value in unit_values(unit, "SystemCallFilter"):
        deny = value.startswith("~")
        names = set()
        for w in value.lstrip("~").split():
            names |= expand(w)
        if allowed is None:
            if deny:
                raise SystemExit("sandbox.py: a deny-list filter is not emulated")
            allowed = set()
        allowed = allowed - names if deny else allowed | names
    return (allowed or set()) | ALWAYS


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def mount_points():
    """Mount points of this namespace, parents before children (/proc/self/mountinfo)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for ln in f:
            mp = ln.split()[4]
            out.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), mp))
    return out


def under(path, top):
    return path == top or path.startswith(top.rstrip("/") + "/")


def protect_system(libc, writable):
    """ProtectSystem=strict, as systemd sets it up before it starts the service."""
    def mount(src, target, flags):
        if libc.mount(src, target.encode(), None, flags, None) != 0:
            e = ctypes.get_errno()
            raise SystemExit("sandbox.py: mount %s: %s" % (target, os.strerror(e)))
    if libc.unshare(CLONE_NEWNS) != 0:
        raise SystemExit("sandbox.py: unshare(CLONE_NEWNS): " + os.strerror(ctypes.get_errno()))
    mount(None, "/", MS_REC | MS_PRIVATE)
    for p in writable:  # their own mounts, which stay writable
        mount(p.encode(), p, MS_BIND | MS_REC)
    for mp in mount_points():
        if any(under(mp, top) for top in ("/proc", "/sys", "/dev")) or any(under(mp, w) for w in writable):
            continue
        try:
            keep = os.statvfs(mp).f_flag & KEEP_FLAGS
        except OSError:
            continue  # hidden under a later mount: not reachable anyway
        mount(None, mp, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)


def main():
    unit, argv = sys.argv[1], sys.argv[2:]
    writable = []
    while len(argv) >= 2 and argv[0] == "--writable":
        writable.append(os.path.realpath(argv[1]))
        argv = argv[2:]
    calls = allowed_calls(unit)
    err = unit_values(unit, "SystemCallErrorNumber")
    errnum = getattr(errno, err[-1]) if err else errno.EPERM
    families = [getattr(socket, f) for v in unit_values(unit, "RestrictAddressFamilies") for f in v.split()]

    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(ArgCmp)]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    if "strict" in unit_values(unit, "ProtectSystem"):
        protect_system(libc, writable)
    # NoNewPrivileges=yes in the unit; loading a filter without CAP_SYS_ADMIN needs it anyway.
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SystemExit("sandbox.py: prctl(PR_SET_NO_NEW_PRIVS) failed")
    ctx = lib.seccomp_init(0x00050000 | errnum)  # SCMP_ACT_ERRNO(errnum)
    if not ctx:
        raise SystemExit("sandbox.py: seccomp_init failed")
    for name in sorted(calls):
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:
            continue  # not on this architecture
        if name == "socket" and families:
            # Listed families allowed, every other failing with EAFNOSUPPORT, as systemd does.
            refuse = 0x00050000 | errno.EAFNOSUPPORT
            rules = [(SCMP_ACT_ALLOW, SCMP_CMP_EQ, f) for f in families]
            rules += [(refuse, SCMP_CMP_EQ, f) for f in range(max(families)) if f not in families]
            rules.append((refuse, SCMP_CMP_GT, max(families)))
            for action, op, value in rules:
                cmp = ArgCmp(0, op, value, 0)
                if lib.seccomp_rule_add_array(ctx, action, nr, 1, ctypes.byref(cmp)) != 0:
                    raise SystemExit("sandbox.py: cannot add the socket rules")
            continue
        if lib.seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 0, None) != 0:
            raise SystemExit("sandbox.py: cannot allow " + name)
    if lib.seccomp_load(ctx) != 0:
        raise SystemExit("sandbox.py: seccomp_load failed")
    # Environment=: the variables the unit sets (NAME=VALUE words, as the shipped unit has).
    for value in unit_values(unit, "Environment"):
        for word in value.split():
            name, _, val = word.partition("=")
            os.environ[name] = val
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
