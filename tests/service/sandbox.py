# SPDX-License-Identifier: Apache-2.0
"""Runs a command under the system-call sandbox of liaisond.service, without systemd:
the unit's SystemCallFilter= lines (read in order, with systemd's meaning: the first
allow list starts from nothing, a ~ line takes its calls out again, a later allow line
puts them back; groups expanded by `systemd-analyze syscall-filter`), denied calls failing
with SystemCallErrorNumber=, RestrictAddressFamilies= for socket(2), and
NoNewPrivileges=. Built with libseccomp, as systemd builds its own filter.

    python3 sandbox.py UNIT COMMAND [ARG...]
"""
import ctypes
import errno
import os
import socket
import subprocess
import sys

# systemd always lets these through (systemd.exec(5), SystemCallFilter=).
ALWAYS = {"execve", "exit", "exit_group", "getrlimit", "rt_sigreturn", "sigreturn"}
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4
SCMP_CMP_GT = 6
PR_SET_NO_NEW_PRIVS = 38


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


def main():
    unit, argv = sys.argv[1], sys.argv[2:]
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
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
