"""Where a driver host's time goes, per frame: ping-pong and bulk through ndisproxy.

    sudo .venv/bin/python benchmarks/profile_host.py [--seconds 5] [--no-perf]

Sets up bench_tap.py's ndisproxy path (namespaces A and B, the daemon in A,
mocknic.sys in a host process, its wire a TAP in B) and runs two workloads
from A to B:

  pingpong  ``ping -f``: one echo request outstanding, the next sent as soon
            as the reply is back - a steady ping-pong, latency-bound
  bulk      ``iperf3`` TCP A -> B - throughput-bound, full batches

Over each run it samples the host process and divides by the frames it
moved (frames read from the TAP plus frames read from the wire):

  CPU          run time of the host's threads (/proc/PID/task/*/schedstat)
  wake-ups     voluntary context switches (a thread slept and was woken)
  syscalls     raw_syscalls:sys_enter (perf), with the commonest ones
  crossings    driver entry points called (the adapter's stack counters)
  where        perf cpu-clock samples by DSO: the interpreter and cffi
               (Python), our C runtime (_native), the driver image
               (anonymous executable memory: perf's "JIT"), the kernel, libc
  Python       with py-spy installed: the functions the samples fall in

and prints one block per workload, per thread.  Needs root, ping and iperf3;
perf for the syscall and DSO lines (--no-perf skips them; counting syscalls
needs tracefs at /sys/kernel/tracing: in a fresh mount namespace, mount it
first), py-spy for the Python line.
"""
import argparse
import collections
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_tap  # noqa: E402

from ndisproxy import client  # noqa: E402

PY_SPY = shutil.which("py-spy") or shutil.which(os.path.join(os.path.dirname(sys.executable),
                                                          "py-spy"))
# x86-64 numbers of the syscalls a host makes on its data path.
SYSCALL_NAMES = {
    0: "read", 1: "write", 7: "poll", 16: "ioctl", 19: "readv", 20: "writev",
    24: "sched_yield", 35: "nanosleep", 44: "sendto", 45: "recvfrom", 46: "sendmsg",
    47: "recvmsg", 202: "futex", 228: "clock_gettime", 230: "clock_nanosleep",
    232: "epoll_wait", 233: "epoll_ctl", 234: "tgkill", 271: "ppoll", 281: "epoll_pwait",
    284: "eventfd", 290: "eventfd2", 299: "recvmmsg", 307: "sendmmsg", 441: "epoll_pwait2",
}


def threads(pid):
    """{tid: (name, run_ns, voluntary, involuntary)} of every thread of ``pid``."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            base = f"/proc/{pid}/task/{tid}"
            with open(f"{base}/comm") as f:
                name = f.read().strip()
            with open(f"{base}/schedstat") as f:
                run_ns = int(f.read().split()[0])
            with open(f"{base}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            out[int(tid)] = (name, run_ns, int(fields["voluntary_ctxt_switches"]),
                             int(fields["nonvoluntary_ctxt_switches"]))
    return out


def adapter_counters(daemon):
    with client.Connection(daemon.socket) as conn:
        stats = conn.request("stats", adapter=daemon.adapter)
        stack = conn.request("stack", adapter=daemon.adapter)["stack"]
    pump = stats["pump"]
    calls = {name: e["calls"] for name, e in stack["entry_points"].items()}
    return {"frames": pump["tap_in"] + pump["wire_in"], "tap_in": pump["tap_in"],
            "wire_in": pump["wire_in"], "calls": calls,
            "interrupts": stats["host"]["interrupts"]}


def host_pid(daemon):
    with client.Connection(daemon.socket) as conn:
        status = conn.request("status")
    return next(a["pid"] for a in status["adapters"] if a["name"] == daemon.adapter)


def start_perf(pid, tmp, tag):
    """perf record of cpu-clock (call graphs) and of syscall entries."""
    cpu = os.path.join(tmp, f"{tag}.cpu")
    sys_ = os.path.join(tmp, f"{tag}.sys")
    procs = [
        subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "-p",
                          str(pid), "-o", cpu], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
        subprocess.Popen(["perf", "record", "-q", "-e", "raw_syscalls:sys_enter", "-p",
                          str(pid), "-o", sys_], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
    ]
    return procs, cpu, sys_


def stop_perf(procs):
    for proc in procs:
        proc.send_signal(2)
    for proc in procs:
        proc.wait(timeout=60)


def dso_shares(path):
    """{where: share of samples}, the DSOs folded into a few kinds."""
    out = subprocess.run(["perf", "report", "-i", path, "--no-children", "--sort", "dso",
                          "--stdio", "-q"], capture_output=True, text=True).stdout
    shares = collections.Counter()
    for line in out.splitlines():
        match = re.match(r"\s*([\d.]+)%\s+(\S.*)$", line)
        if not match:
            continue
        share, dso = float(match.group(1)) / 100, match.group(2).strip()
        if dso.startswith("[kernel") or dso == "[vdso]":
            kind = "kernel"
        elif "_native" in dso:
            kind = "C runtime"
        elif "python" in dso or "_cffi_backend" in dso or dso.endswith(".cpython-311-x86_64-linux-gnu.so"):
            kind = "Python"
        elif dso.startswith("libc") or dso.startswith("ld-linux"):
            kind = "libc"
        elif dso in ("[unknown]", "//anon") or dso.startswith(("[anon", "[JIT]")):
            kind = "driver image"
        else:
            kind = dso
        shares[kind] += share
    return shares


def syscall_counts(path):
    """Counter of syscall names, over all threads."""
    if not os.path.exists(path):
        return None         # no tracefs here (mount -t tracefs nodev /sys/kernel/tracing)
    out = subprocess.run(["perf", "script", "-i", path], capture_output=True,
                         text=True).stdout
    counts = collections.Counter()
    for match in re.finditer(r"sys_enter: NR (\d+)", out):
        nr = int(match.group(1))
        counts[SYSCALL_NAMES.get(nr, f"NR{nr}")] += 1
    return counts


def start_py_spy(pid, tmp, tag, seconds):
    path = os.path.join(tmp, f"{tag}.pyspy")
    proc = subprocess.Popen([PY_SPY, "record", "--format", "raw", "--nonblocking", "-r", "499",
                             "-d", str(seconds), "-p", str(pid), "-o", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, path


def python_functions(path, top=8):
    """[(function, share of Python samples)] by self time, from py-spy's collapsed stacks."""
    own = collections.Counter()
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            leaf = stack.rsplit(";", 1)[-1]
            own[re.sub(r" \((\S*/)?", " (", leaf)] += int(count)
    total = sum(own.values())
    return [(name, n / total) for name, n in own.most_common(top)] if total else []


def workload(kind, ns_a, ns_b, seconds):
    if kind == "pingpong":
        out = bench_tap.run("ping", "-f", "-q", "-w", seconds, bench_tap.ADDR_B, ns=ns_a,
                            timeout=seconds + 30, check=False).stdout
        match = re.search(r"= [\d.]+/([\d.]+)/", out)
        return f"ping -f: RTT avg {match.group(1)} ms" if match else "ping -f: no RTT line"
    gbits = bench_tap.iperf3_gbits(ns_a, ns_b, seconds)
    return f"iperf3: {gbits:.2f} Gbit/s"


def profile(kind, daemon, pid, namespaces, seconds, tmp, use_perf):
    before_t, before_a = threads(pid), adapter_counters(daemon)
    perf = start_perf(pid, tmp, kind) if use_perf else None
    spy = start_py_spy(pid, tmp, kind, seconds) if PY_SPY else None
    started = time.monotonic()
    summary = workload(kind, *namespaces, seconds)
    elapsed = time.monotonic() - started
    if perf:
        stop_perf(perf[0])
    if spy:
        spy[0].wait(timeout=60)
    after_t, after_a = threads(pid), adapter_counters(daemon)
    frames = after_a["frames"] - before_a["frames"]
    print(f"\n== {kind}: {summary}; {frames} frames in {elapsed:.1f} s "
          f"({frames / elapsed / 1000:.1f} k frames/s: {after_a['tap_in'] - before_a['tap_in']} "
          f"from the TAP, {after_a['wire_in'] - before_a['wire_in']} from the wire)")
    if not frames:
        return
    total_ns = total_wake = 0
    print(f"  {'thread':<16} {'CPU µs/frame':>12} {'wake-ups/frame':>15} {'involuntary':>12}")
    for tid, (name, run_ns, vol, invol) in sorted(after_t.items()):
        b = before_t.get(tid, (name, 0, 0, 0))
        d_ns, d_vol, d_inv = run_ns - b[1], vol - b[2], invol - b[3]
        total_ns += d_ns
        total_wake += d_vol
        if d_ns or d_vol:
            print(f"  {name + ' ' + str(tid):<16} {d_ns / 1000 / frames:12.2f} "
                  f"{d_vol / frames:15.3f} {d_inv / frames:12.3f}")
    print(f"  {'all threads':<16} {total_ns / 1000 / frames:12.2f} {total_wake / frames:15.3f}"
          f"   (CPU {total_ns / 1e9 / elapsed:.0%} of one core)")
    calls = {name: n - before_a["calls"].get(name, 0) for name, n in after_a["calls"].items()}
    calls = {name: n for name, n in calls.items() if n}
    crossings = sum(calls.values())
    print(f"  crossings into the driver: {crossings / frames:.2f}/frame ("
          + ", ".join(f"{name.removeprefix('Miniport')} {n / frames:.2f}"
                      for name, n in sorted(calls.items(), key=lambda kv: -kv[1])) + ")")
    interrupts = after_a["interrupts"] - before_a["interrupts"]
    print(f"  interrupts serviced: {interrupts / frames:.2f}/frame")
    if perf:
        counts = syscall_counts(perf[2])
        if counts is None:
            print("  syscalls: not counted (perf found no tracefs at /sys/kernel/tracing)")
        else:
            print(f"  syscalls: {sum(counts.values()) / frames:.2f}/frame ("
                  + ", ".join(f"{name} {n / frames:.2f}" for name, n in counts.most_common(8))
                  + ")")
        shares = dso_shares(perf[1])
        cpu_us = total_ns / 1000 / frames
        print("  CPU by where (µs/frame): " + ", ".join(
            f"{kind} {share * cpu_us:.2f} ({share:.0%})"
            for kind, share in shares.most_common(6)))
    if spy:
        print("  Python by function (self, of Python samples): " + ", ".join(
            f"{name} {share:.0%}" for name, share in python_functions(spy[1])))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="per workload (default 5)")
    parser.add_argument("--no-perf", action="store_true", help="no syscall or DSO breakdown")
    parser.add_argument("--workloads", default="pingpong,bulk")
    args = parser.parse_args()
    if problem := bench_tap.missing_tools():
        print(problem)
        return 1
    use_perf = not args.no_perf and shutil.which("perf") is not None
    ns_a, ns_b = bench_tap.unique("npA"), bench_tap.unique("npB")
    with tempfile.TemporaryDirectory(prefix="profile_host.") as tmp:
        try:
            for ns in (ns_a, ns_b):
                bench_tap.ip("netns", "add", ns)
                bench_tap.ip("link", "set", "dev", "lo", "up", ns=ns)
            with bench_tap.ndisproxy_path(ns_a, ns_b, tmp) as daemon:
                bench_tap.wait_reachable(ns_a)
                pid = host_pid(daemon)
                print(f"host pid {pid}; {os.cpu_count()} CPUs, load average "
                      f"{os.getloadavg()[0]:.2f}")
                for kind in args.workloads.split(","):
                    profile(kind, daemon, pid, (ns_a, ns_b), args.seconds, tmp, use_perf)
        except bench_tap.BenchError as exc:
            print(f"profile_host: {exc}", file=sys.stderr)
            return 1
        finally:
            for ns in (ns_a, ns_b):
                bench_tap.remove_netns(ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
