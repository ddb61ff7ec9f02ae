"""Which system calls driver hosts make: the census behind the seccomp allowlist.

    sudo .venv/bin/python tools/syscall_census.py [--keep DIR] [--json FILE] -- COMMAND [ARG...]
    sudo .venv/bin/python tools/syscall_census.py --suite [--tests DIR] [--keep DIR] [--json FILE]

Runs COMMAND (or, with ``--suite``, each scenario in turn: every test module
but test_systemd.py, then ``ndisproxy demo``) under
``strace -f -ff -n -e raw=all``, so every thread of every process gets a trace
file with syscall numbers and undecoded arguments.  A **driver host** is a
process whose trace shows the host filter being installed (``seccomp`` or
``prctl(PR_SET_SECCOMP)``); what it does after that line, and everything the
threads it creates later do, is what the filter sees.  Hosts are forked from
the fork server and never exec: a program that installs the filter itself
(tests/test_seccomp.py's children) is not counted.  Each of those calls is
run through the real filter program (ndisproxy.seccomp, evaluated here by a
small classic-BPF interpreter with the host's own pid), so the census says not
only what was called but what the filter answers.

Prints, per scenario, the number of hosts and distinct system calls (many
test modules start no host), then one table: system call, calls, hosts that
made it, the filter's verdict.  Exits 1 if a host made a call the filter
refuses or kills - beyond the few every host meets (EXPECTED_REFUSALS) and
clone3's ENOSYS, which glibc answers by falling back to clone - so the
census doubles as a check that the allowlist still fits what the hosts do.

Needs root (the tests and the demo create TAPs and namespaces, with unique
names, as when the suite runs), strace, and the project and pytest installed
in the running interpreter's environment.  Tracing slows hosts down; a
scenario whose timing assertions fail under strace still counts what its
hosts did.  docs/security.md has the figures this gave.
"""
import argparse
import ast
import collections
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

from ndisproxy import seccomp

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE_TESTS = os.path.join(os.path.dirname(HERE), "tests")
# Not traced by --suite: it boots a throw-away systemd as PID 1 of its own
# namespaces, and the hosts it starts run the same code as everywhere else.
SUITE_SKIPS = {"test_systemd.py"}

_LINE = re.compile(r"\[\s*(\d+)\] (\w+)\((.*?)(?:\) +=\s*(.*)| <unfinished \.\.\.>)$")
_X86_64_PRCTL_SET_SECCOMP = (157, 22)


def trace(argv, trace_dir, quiet=False):
    """Run ``argv`` under strace; its exit status (``quiet``: and its output's
    last line, which is all that is shown of it)."""
    strace = shutil.which("strace")
    if strace is None:
        raise SystemExit("syscall_census: strace not found (apt-get install strace)")
    command = [strace, "-f", "-ff", "-qq", "-n", "-e", "raw=all", "-s", "0",
               "-o", os.path.join(trace_dir, "trace"), *argv]
    if not quiet:
        return subprocess.run(command).returncode, ""
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace")
    return done.returncode, (done.stdout.strip().splitlines() or [""])[-1]


def _calls(path):
    """(number, name, args, result) for each system call in one trace file."""
    with open(path, errors="replace") as lines:
        for line in lines:
            match = _LINE.match(line.rstrip("\n"))
            if match is None:
                continue            # signals, exits, "<... resumed>" halves
            number, name, args, result = match.groups()
            values = []
            for arg in args.split(", ") if args else ():
                try:
                    values.append(int(arg, 0) & 0xFFFF_FFFF_FFFF_FFFF)
                except ValueError:
                    values.append(0)
            yield int(number), name, (values + [0] * 6)[:6], result


def _installs_filter(number, args, result):
    if result is None or not result.startswith("0"):
        return False
    return ((number, args[0]) == _X86_64_PRCTL_SET_SECCOMP or
            (number == seccomp.SYS_seccomp
             and args[0] == seccomp.SECCOMP_SET_MODE_FILTER))


def _new_task(number, result):
    if number not in seccomp.TASK_CREATING_SYSCALLS or result is None:
        return None
    try:
        tid = int(result.split()[0], 0)
    except ValueError:
        return None
    return tid if tid > 0 else None


def host_calls(trace_dir):
    """{host pid: [(tid, number, name, args, result), ...]} for every driver host."""
    files = {int(name.rsplit(".", 1)[1]): os.path.join(trace_dir, name)
             for name in os.listdir(trace_dir) if name.startswith("trace.")}
    hosts = {}
    for pid, path in files.items():
        calls, sandboxed, execed, tasks = [], False, False, []
        for number, name, args, result in _calls(path):
            if not sandboxed:
                execed |= name == "execve" and (result or "").startswith("0")
                sandboxed = _installs_filter(number, args, result)
                continue
            calls.append((pid, number, name, args, result))
            if (tid := _new_task(number, result)) is not None:
                tasks.append(tid)
        if not sandboxed or execed:
            continue            # a program that filters itself (a test), not a host
        # Threads inherit the filter: all they do counts, and so do theirs.
        while tasks:
            tid = tasks.pop()
            if tid not in files:
                continue
            for number, name, args, result in _calls(files[tid]):
                calls.append((tid, number, name, args, result))
                if (child := _new_task(number, result)) is not None:
                    tasks.append(child)
        hosts[pid] = calls
    return hosts


def run_bpf(program, number, args, arch=seccomp.AUDIT_ARCH_X86_64):
    """Evaluate a classic-BPF seccomp program (the instructions the kernel
    accepts for one) on one call: its 32-bit return value."""
    data = struct.pack("=iI Q 6Q", number, arch, 0, *args)
    accumulator, pc = 0, 0
    while True:
        code, jt, jf, k = struct.unpack_from("=HBBI", program, pc * 8)
        pc += 1
        if code == 0x20:                                    # ld [k]
            accumulator = struct.unpack_from("=I", data, k)[0]
        elif code == 0x54:                                  # and #k
            accumulator &= k
        elif code == 0x05:                                  # ja k
            pc += k
        elif code in (0x15, 0x35, 0x25, 0x45):              # jeq jge jgt jset #k
            taken = {0x15: accumulator == k, 0x35: accumulator >= k,
                     0x25: accumulator > k, 0x45: bool(accumulator & k)}[code]
            pc += jt if taken else jf
        elif code == 0x06:                                  # ret #k
            return k
        else:
            raise ValueError(f"BPF opcode {code:#x} at {pc - 1} is not one the filter uses")


def verdict(program, number, args):
    action = run_bpf(program, number, args)
    if action == seccomp.SECCOMP_RET_ALLOW:
        return "allowed"
    if action & 0xFFFF0000 == seccomp.SECCOMP_RET_ERRNO:
        return f"refused ({os.strerror(action & 0xFFFF)})"
    return f"killed ({action:#x})"


def census(trace_dir):
    """{"hosts": N, "calls": {name: {"count", "hosts", "verdicts": {v: n}}}}."""
    table = {}
    hosts = host_calls(trace_dir)
    for pid, calls in hosts.items():
        program = seccomp.host_filter(pid).program
        for _, number, name, args, _ in calls:
            entry = table.setdefault(name, {"number": number, "count": 0, "hosts": set(),
                                            "verdicts": collections.Counter()})
            entry["count"] += 1
            entry["hosts"].add(pid)
            entry["verdicts"][verdict(program, number, args)] += 1
    for entry in table.values():
        entry["hosts"] = len(entry["hosts"])
        entry["verdicts"] = dict(entry["verdicts"])
    return {"hosts": len(hosts), "calls": table}


def merge(results):
    total = {}
    for result in results:
        for name, entry in result["calls"].items():
            into = total.setdefault(name, {"number": entry["number"], "count": 0, "hosts": 0,
                                           "verdicts": collections.Counter()})
            into["count"] += entry["count"]
            into["hosts"] += entry["hosts"]
            into["verdicts"].update(entry["verdicts"])
    return {"hosts": sum(r["hosts"] for r in results), "calls": total}


# Refusals every host meets, and how many: hostproc's sandbox report checks
# that it can neither create a socket nor open /dev/net/tun, and trio asks
# for TCP_NODELAY on both ends of its AF_UNIX wake-up socketpair (refused
# without the filter too, with EOPNOTSUPP; trio ignores the error).
EXPECTED_REFUSALS = {"socket": 1, "openat": 1, "setsockopt": 2}


def unexpected(result):
    """Calls the filter refused or killed beyond EXPECTED_REFUSALS (and
    clone3's ENOSYS, which glibc answers by falling back to clone)."""
    bad = {}
    for name, entry in result["calls"].items():
        for what, count in entry["verdicts"].items():
            if what == "allowed" or (name == "clone3" and "not implemented" in what):
                continue
            if what.startswith("refused"):
                count -= EXPECTED_REFUSALS.get(name, 0) * result["hosts"]
            if count > 0:
                bad[f"{name}: {what}"] = count
    return bad


def print_table(result):
    purposes = {name: purpose for purpose, rules in seccomp.HOST_ALLOWLIST.items()
                for name in (rule.name for rule in rules)}
    rows = sorted(result["calls"].items(), key=lambda item: (purposes.get(item[0], "~"),
                                                              -item[1]["count"]))
    print(f"{'SYSCALL':<18} {'NR':>4} {'CALLS':>9} {'HOSTS':>6}  {'GROUP':<14} VERDICT")
    for name, entry in rows:
        verdicts = ", ".join(f"{v} {n}" if len(entry["verdicts"]) > 1 else v
                             for v, n in sorted(entry["verdicts"].items()))
        print(f"{name:<18} {entry['number']:>4} {entry['count']:>9,} {entry['hosts']:>6}  "
              f"{purposes.get(name, '-'):<14} {verdicts}")


def run_scenario(argv, keep=None, quiet=False):
    trace_dir = keep or tempfile.mkdtemp(prefix="ndisproxy-census-")
    os.makedirs(trace_dir, exist_ok=True)
    try:
        status, said = trace(argv, trace_dir, quiet)
        return status, said, census(trace_dir)
    finally:
        if keep is None:
            shutil.rmtree(trace_dir, ignore_errors=True)


def suite(tests):
    """(name, what it covers, argv): each test module, then the demo."""
    scenarios = []
    for module in sorted(os.listdir(tests)):
        if not (module.startswith("test_") and module.endswith(".py")) or module in SUITE_SKIPS:
            continue
        path = os.path.join(tests, module)
        with open(path) as source:
            doc = ast.get_docstring(ast.parse(source.read())) or ""
        scenarios.append((module[5:-3], doc.split("\n")[0],
                          [sys.executable, "-m", "pytest", path, "-q", "-p", "no:cacheprovider",
                           "--import-mode=importlib"]))
    scenarios.append(("ndisproxy-demo", "ndisproxy demo: ping, TCP, report",
                      [sys.executable, "-m", "ndisproxy", "demo", "--quiet"]))
    return scenarios


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="store_true", help="run the standard scenarios")
    parser.add_argument("--tests", default=SUITE_TESTS, help="the tests/ directory for --suite")
    parser.add_argument("--keep", metavar="DIR", help="keep the strace files in DIR")
    parser.add_argument("--json", metavar="FILE", help="also write the census as JSON")
    parser.add_argument("command", nargs="*", help="the command to trace (after --)")
    args = parser.parse_args()
    if args.suite == bool(args.command):
        parser.error("give either --suite or a command after --")
    scenarios = (suite(args.tests) if args.suite
                 else [("command", " ".join(args.command), args.command)])
    os.chdir("/")               # never import a source tree from the current directory
    results = {}
    for name, what, argv in scenarios:
        keep = os.path.join(args.keep, name) if args.keep else None
        status, said, result = run_scenario(argv, keep, quiet=args.suite)
        results[name] = result
        print(f"== {name}: {result['hosts']} hosts, {len(result['calls'])} distinct system "
              f"calls; exit {status} {said}\n   ({what})", flush=True)
    total = merge(results.values())
    filter_ = seccomp.host_filter(os.getpid())
    print(f"\nall scenarios: {total['hosts']} hosts, {len(total['calls'])} distinct system calls; "
          f"the filter allows {len(filter_.allowed)} in {filter_.instructions} BPF instructions")
    print_table(total)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"scenarios": {name: {"hosts": r["hosts"],
                                            "distinct": sorted(r["calls"])}
                                     for name, r in results.items()},
                       "total": total}, out, indent=1, default=dict)
    bad = unexpected(total)
    for what, count in sorted(bad.items()):
        print(f"syscall_census: the filter answers {what} ({count} calls)", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
