#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Static analysis of liaison's own C (daemon/, proto/, client/, bench/): gcc's
-fanalyzer, cppcheck and clang-tidy (the checks in .clang-tidy), each over every
translation unit of a configured build's compile_commands.json. Generated *.pb-c.c,
tests/ and fuzz/ are left out. A finding is silenced only by a line of
tests/analyze.supp that names its tool, check, file and function and the code on its
line, with a reason; a line there that silences nothing is reported too, so that the list stays
exact. Prints what remains and exits 1 if anything does (2 if a tool cannot run).

usage: analyze.py BUILD_DIR   (./run analyze configures and builds it first)
"""
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
DIRS = ("daemon", "proto", "client", "bench")
SUPP = os.path.join(ROOT, "tests", "analyze.supp")
JOBS = os.cpu_count() or 1
# file:line:col: warning|error: message [check]  (gcc's analyzer adds a [CWE-n] before it)
FINDING = re.compile(r"^([^:\s][^:]*):(\d+):(\d+): (?:warning|error): (.*) \[([^\]\s]+)\]$")


def sources(build):
    """Our translation units, once each, with their compile commands."""
    with open(os.path.join(build, "compile_commands.json")) as f:
        db = json.load(f)
    prefixes = tuple(os.path.join(ROOT, d) + os.sep for d in DIRS)
    out, seen = [], set()
    for e in db:
        path = os.path.realpath(os.path.join(e["directory"], e["file"]))
        if path.startswith(prefixes) and not path.endswith(".pb-c.c") and path not in seen:
            seen.add(path)
            out.append(dict(e, file=path))
    return out


def gcc_analyzer(e, opt):
    """gcc -fanalyzer on one unit: its compile command, object file dropped, warnings kept.
    Run at the build's -O2 and at -O0: inlining changes which paths the analyzer follows."""
    args = e["arguments"] if "arguments" in e else shlex.split(e["command"])
    i = args.index("-o")
    args = args[:i] + args[i + 2:] + opt + ["-fanalyzer", "-Wno-error", "-fdiagnostics-plain-output",
                                            "-o", os.devnull]
    p = subprocess.run(args, cwd=e["directory"], capture_output=True, text=True)
    return "gcc", e["file"], p.returncode, p.stderr


def clang_tidy(e, db_dir):
    """clang-tidy on one unit, with the checks of .clang-tidy (found beside the sources)."""
    p = subprocess.run(["clang-tidy", "-p", db_dir, "--quiet", "--extra-arg=-Wno-unknown-warning-option", e["file"]],
                       capture_output=True, text=True)
    return "clang-tidy", e["file"], p.returncode, p.stdout + p.stderr


def protobuf_c_version():
    """-D options for the version test at the top of every generated *.pb-c.h: cppcheck
    does not read system headers, and without them that test's #error makes it skip,
    silently, every file that includes one (most of ours)."""
    inc = subprocess.run(["pkg-config", "--variable=includedir", "libprotobuf-c"], capture_output=True,
                         text=True).stdout.strip() or "/usr/include"
    with open(os.path.join(inc, "protobuf-c", "protobuf-c.h")) as f:
        text = f.read()
    out = []
    for name in ("PROTOBUF_C_VERSION_NUMBER", "PROTOBUF_C_MIN_COMPILER_VERSION"):
        m = re.search(r"#define " + name + r"\s+(\d+)", text)
        out.append(f"-D{name}={m.group(1)}")
    return out


def cppcheck(db_path, build):
    build = os.path.realpath(build)
    p = subprocess.run(["cppcheck", "--enable=warning,performance,portability", "--inconclusive",
                        "--library=posix", f"--project={db_path}", f"-j{JOBS}", "--quiet",
                        "--template={file}:{line}:{column}: warning: {severity}: {message} [{id}]",
                        # generated protobuf-c headers and system headers are not ours to fix
                        f"--suppress=*:{build}/*", f"--suppress=*:{os.path.relpath(build, ROOT)}/*",
                        "--suppress=*:/usr/*"] + protobuf_c_version(),
                       cwd=ROOT, capture_output=True, text=True)
    return "cppcheck", "", p.returncode, p.stdout + p.stderr


def parse(tool, path, rc, text):
    found = []
    if rc != 0:  # a unit a tool could not analyse is a finding that nothing suppresses
        found.append((tool, "failed", path, 0, 0, f"{tool} exited with status {rc} (see its log)"))
    for line in text.splitlines():
        m = FINDING.match(line)
        if m:
            path, ln, col, msg, check = m.groups()
            found.append((tool, check, os.path.realpath(os.path.join(ROOT, path)), int(ln), int(col), msg))
        elif tool == "cppcheck" and line.strip():  # --quiet: nothing else is expected
            found.append((tool, "cppcheck-output", "", 0, 0, line))  # anything unexpected counts
    return found


def load_suppressions():
    """tool | check | file:function | code on the flagged line | reason"""
    supp = []
    with open(SUPP) as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = [p.strip() for p in line.rstrip("\n").split(" | ")]
            if len(parts) != 5 or not all(parts):
                sys.exit(f"{SUPP}:{n}: expected 'tool | check | file:function | code | reason'")
            supp.append({"line": n, "tool": parts[0], "check": parts[1], "where": parts[2], "code": parts[3],
                         "used": 0})
    return supp


def source_lines(path, cache={}):
    if path not in cache:
        try:
            with open(path, errors="replace") as f:
                cache[path] = f.read().splitlines()
        except OSError:
            cache[path] = []
    return cache[path]


def where(path, ln):
    """'file:function' of a line (a function's body opens with '{' alone at column 0, as
    clang-format lays ours out), or 'file:-' outside any function."""
    lines = source_lines(path)
    rel = os.path.relpath(path, ROOT) if path else "-"
    i = min(ln, len(lines)) - 1
    while i >= 0 and lines[i] != "{":
        if lines[i] == "}" and i != ln - 1:
            return rel + ":-"
        i -= 1
    j = i - 1
    while j >= 0 and lines[j][:1] in (" ", "\t"):  # continuation lines of the parameters
        j -= 1
    m = re.search(r"(\w+)\s*\(", lines[j]) if i > 0 and j >= 0 else None
    return rel + ":" + (m.group(1) if m else "-")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build = sys.argv[1]
    for tool in ("gcc", "cppcheck", "clang-tidy"):
        if not shutil.which(tool):
            print(f"analyze: {tool} is not installed", file=sys.stderr)
            return 2
    units = sources(build)
    db_dir = os.path.join(build, "analyze")
    os.makedirs(db_dir, exist_ok=True)
    db_path = os.path.join(db_dir, "compile_commands.json")
    with open(db_path, "w") as f:
        json.dump(units, f, indent=1)
    for tool in ("gcc", "cppcheck", "clang-tidy"):
        out = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.splitlines()
        print(f"analyze: {tool}:", next((l.strip() for l in out if re.search(r"\d+\.\d+", l)), "?"))
    print(f"analyze: {len(units)} translation units in {', '.join(d + '/' for d in DIRS)}; {JOBS} jobs")

    logs = {"gcc": [], "cppcheck": [], "clang-tidy": []}
    with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
        jobs = [pool.submit(gcc_analyzer, e, opt) for e in units for opt in ([], ["-O0", "-U_FORTIFY_SOURCE"])]
        jobs += [pool.submit(clang_tidy, e, db_dir) for e in units]
        for j in concurrent.futures.as_completed(jobs):
            r = j.result()
            logs[r[0]].append(r)
    r = cppcheck(db_path, build)
    logs[r[0]].append(r)
    for tool, runs in logs.items():  # the whole output, analyzer event paths included
        with open(os.path.join(db_dir, f"{tool}.log"), "w") as f:
            f.write("".join(r[3] for r in sorted(runs, key=lambda r: r[1])))

    # One finding per tool, check and line (gcc at -O2 and -O0 may point at different columns).
    findings = sorted({f[:4] if f[3] else f: f for runs in logs.values() for r in runs for f in parse(*r)}.values())
    supp = load_suppressions()
    left, counts = [], {}
    for f in findings:
        tool, check, path, ln, col, msg = f
        lines = source_lines(path)
        code = lines[ln - 1] if 0 < ln <= len(lines) else ""
        at = where(path, ln)
        s = next((s for s in supp if s["tool"] == tool and s["check"] == check and s["where"] == at
                  and s["code"] in code), None)
        if s:
            s["used"] += 1
            counts[tool] = counts.get(tool, 0) + 1
        else:
            left.append(f)
    stale = [s for s in supp if not s["used"]]
    for tool, check, path, ln, col, msg in left:
        print(f"{os.path.relpath(path, ROOT) if path else '-'}:{ln}:{col}: {tool}: {msg} [{check}] "
              f"(in {where(path, ln) if path else '-'})")
    for s in stale:
        print(f"tests/analyze.supp:{s['line']}: suppresses nothing now ({s['tool']} {s['check']} in "
              f"{s['where']}): remove it")
    print(f"analyze: {len(left)} finding(s) left, {sum(counts.values())} suppressed "
          f"({', '.join(f'{t} {n}' for t, n in sorted(counts.items())) or 'none'}; tests/analyze.supp), "
          f"{len(stale)} stale suppression(s); full logs in {db_dir}/")
    return 1 if left or stale else 0


if __name__ == "__main__":
    sys.exit(main())
