"""TCP throughput and RTT through ndisproxy's TAP wire against a veth pair and a C TAP relay.

    sudo .venv/bin/python benchmarks/bench_tap.py [--seconds 10] [--runs 3] [--quick]

Three paths between two fresh namespaces, A (iperf3 client, ping) and B
(iperf3 server), each set up, measured and torn down in turn, round-robin
(run 1 of each path, then run 2 of each, ...) so slow drift on a shared
machine hits all of them alike:

  veth       a veth pair A <-> B: the kernel's ceiling
  relay      two TAPs, one in A and one in B, joined by tap_relay.c (compiled
             here with cc -O2): poll(), one read() and one write() per frame,
             no offloads - what a minimal user-space data path costs
  ndisproxy  ``python -m ndisproxy run`` started in A with a temporary config:
             the adapter's TAP in A, mocknic.sys in a driver host process, its
             wire a TAP in B (frames: A -> TAP -> host -> MiniportSendPackets ->
             mock NIC -> wire TAP -> B, and back)

Per path and run: ``ping -c 20 -i 0.05`` (average RTT), then ``iperf3 -t
SECONDS`` TCP A -> B (receiver's rate).  Prints the median Gbit/s, the median
RTT and the ratio to the relay; the target is ndisproxy >= 60% of the relay.

Needs root (namespaces, TAPs), iperf3, ping and a C compiler.  Everything runs
inside the two namespaces (unique names, 198.51.100.0/24 only), so the root
namespace gets no interface, address or route; both namespaces, and every
process and interface in them, are removed at the end, also on failure or
Ctrl-C.
"""
import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import typing

HERE = os.path.dirname(os.path.abspath(__file__))
RELAY_SOURCE = os.path.join(HERE, "tap_relay.c")
ADDR_A, ADDR_B, PREFIX = "198.51.100.1", "198.51.100.2", 24
PATHS = ("veth", "relay", "ndisproxy")
TARGET = 0.60


class BenchError(Exception):
    pass


class Daemon(typing.NamedTuple):
    """The ndisproxy path's daemon, its one adapter and its control socket."""
    process: subprocess.Popen
    adapter: str
    socket: str


def unique(prefix):
    """``prefix`` + 8 hex digits: a fresh interface / namespace name (<= 15 bytes)."""
    return prefix + secrets.token_hex(4)


def run(*cmd, ns=None, timeout=30, check=True):
    argv = (["ip", "netns", "exec", ns] if ns else []) + [str(c) for c in cmd]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise BenchError(f"{' '.join(argv)}: exit {result.returncode}: "
                         f"{(result.stderr or result.stdout).strip()}")
    return result


def ip(*args, ns=None, check=True):
    return run("ip", *(["-n", ns] if ns else []), *args, check=check)


def configure(ns, ifname, address):
    """No IPv6 autoconfiguration (nothing else on the cable), the address, up."""
    ip("link", "set", "dev", ifname, "addrgenmode", "none", ns=ns, check=False)
    ip("addr", "add", f"{address}/{PREFIX}", "dev", ifname, ns=ns)
    ip("link", "set", "dev", ifname, "up", ns=ns)


def stop_process(proc, timeout=20):
    """SIGTERM, then SIGKILL after ``timeout``; only the process we started."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def wait_output(proc, pattern, timeout):
    """Wait until a line ``proc`` (from start()) printed matches ``pattern``."""
    what = " ".join(proc.args[4:])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(re.search(pattern, line) for line in list(proc.lines)):
            return
        if proc.poll() is not None:
            raise BenchError(f"{what}: ended (exit {proc.returncode}) before printing "
                             f"{pattern!r}:\n" + "".join(proc.lines[-20:]))
        time.sleep(0.05)
    raise BenchError(f"{what}: no {pattern!r} within {timeout} s:\n"
                     + "".join(proc.lines[-20:]))


def drain(stream, lines):
    """Reader thread: keep a pipe from filling up, remember what came."""
    for line in stream:
        lines.append(line)


def start(cmd, ns):
    """A long-running process in ``ns``; its stdout+stderr lines collected."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns, *map(str, cmd)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc.lines = []
    threading.Thread(target=drain, args=(proc.stdout, proc.lines), daemon=True).start()
    return proc


# -- the three paths: each a context manager, set up in A and B, torn down -------


@contextlib.contextmanager
def veth_path(ns_a, ns_b, _tmp):
    va, vb = unique("nbva"), unique("nbvb")
    ip("link", "add", va, "netns", ns_a, "type", "veth", "peer", "name", vb, "netns", ns_b)
    try:
        configure(ns_a, va, ADDR_A)
        configure(ns_b, vb, ADDR_B)
        yield
    finally:
        ip("link", "del", va, ns=ns_a, check=False)


@contextlib.contextmanager
def relay_path(ns_a, ns_b, tmp):
    ta, tb = unique("nbta"), unique("nbtb")
    relay = start([os.path.join(tmp, "tap_relay"), ta, tb], ns_a)
    try:
        wait_output(relay, r"^ready", 10)
        # Both TAPs are attached in A; the relay's fd on tb keeps working
        # after the move (TUNSETIFF could not find it by name from A later).
        ip("link", "set", "dev", tb, "netns", ns_b, ns=ns_a)
        configure(ns_a, ta, ADDR_A)
        configure(ns_b, tb, ADDR_B)
        yield
    finally:
        stop_process(relay, 5)      # its TAPs are not persistent: they go with it


@contextlib.contextmanager
def ndisproxy_path(ns_a, ns_b, tmp):
    from ndisproxy import config as configuration
    name, wire = unique("nbnd"), unique("nbnw")
    text = textwrap.dedent(f"""
        [daemon]
        socket = "{tmp}/{name}.sock"
        log_level = "info"

        [[adapter]]
        name = "{name}"
        driver = "mocknic"
        [adapter.wire]
        kind = "tap"
        ifname = "{wire}"
        netns = "{ns_b}"
    """)
    configuration.loads(text, name="<bench_tap>")          # a bad config fails here
    path = os.path.join(tmp, f"{name}.toml")
    with open(path, "w") as file:
        file.write(text)
    # Started inside A, the daemon creates the adapter's TAP there and moves
    # the wire TAP from A into B by the namespace's file.
    daemon = start([sys.executable, "-m", "ndisproxy", "run", "-c", path], ns_a)
    try:
        wait_output(daemon, rf"{name}: running", 60)
        ip("addr", "add", f"{ADDR_A}/{PREFIX}", "dev", name, ns=ns_a)
        ip("addr", "add", f"{ADDR_B}/{PREFIX}", "dev", wire, ns=ns_b)
        yield Daemon(daemon, name, f"{tmp}/{name}.sock")
    finally:
        stop_process(daemon)
        if daemon.returncode not in (0, None):
            print(f"  ndisproxy exited {daemon.returncode}:\n    "
                  + "    ".join(daemon.lines[-10:]), file=sys.stderr)


SETUPS = {"veth": veth_path, "relay": relay_path, "ndisproxy": ndisproxy_path}


# -- measuring ----------------------------------------------------------------------


def wait_reachable(ns_a, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run("ping", "-c", "1", "-W", "1", ADDR_B, ns=ns_a, check=False).returncode == 0:
            return
    raise BenchError(f"{ADDR_B} not reachable from {ADDR_A} within {timeout} s")


def rtt_ms(ns_a):
    out = run("ping", "-q", "-c", "20", "-i", "0.05", "-W", "2", ADDR_B, ns=ns_a).stdout
    match = re.search(r"= [\d.]+/([\d.]+)/", out)
    if not match:
        raise BenchError(f"ping: no rtt line in {out!r}")
    return float(match.group(1))


def iperf3_gbits(ns_a, ns_b, seconds):
    server = start(["iperf3", "-s", "-1", "-B", ADDR_B, "--forceflush"], ns_b)
    try:
        wait_output(server, r"listening", 10)
        result = run("iperf3", "-c", ADDR_B, "-t", seconds, "-J", ns=ns_a,
                     timeout=seconds + 60, check=False)
        try:
            report = json.loads(result.stdout)
        except ValueError:
            raise BenchError(f"iperf3: no JSON report: {result.stderr.strip()}") from None
        if "error" in report:
            raise BenchError(f"iperf3: {report['error']}")
        return report["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        stop_process(server, 5)


def measure(path, ns_a, ns_b, tmp, seconds):
    with SETUPS[path](ns_a, ns_b, tmp):
        wait_reachable(ns_a)
        rtt = rtt_ms(ns_a)
        gbits = iperf3_gbits(ns_a, ns_b, seconds)
    return gbits, rtt


# -- namespaces, cleanup ------------------------------------------------------------


def remove_netns(ns):
    """Kill what still runs in our own namespace, then delete it (and its links)."""
    pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    ip("netns", "del", ns, check=False)


def compile_relay(tmp):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise BenchError("no C compiler (cc) to build tap_relay.c")
    binary = os.path.join(tmp, "tap_relay")
    run(cc, "-O2", "-Wall", "-o", binary, RELAY_SOURCE, timeout=120)
    return binary


def interrupted(signum, frame):
    raise KeyboardInterrupt


def missing_tools():
    if shutil.which("iperf3") is None:
        return "iperf3 is missing: apt-get install -y iperf3"
    if shutil.which("ping") is None:
        return "ping is missing: apt-get install -y iputils-ping"
    if os.geteuid() != 0:
        return "needs root (network namespaces and TAPs)"
    return None


def report(results, seconds, runs):
    gbits = {p: statistics.median(g for g, _ in r) for p, r in results.items()}
    rtts = {p: statistics.median(t for _, t in r) for p, r in results.items()}
    relay = gbits.get("relay")
    print()
    print(f"iperf3 TCP A -> B, median of {runs} x {seconds} s; ping RTT median of averages")
    print(f"{'path':<11} {'Gbit/s':>7}  {'runs (Gbit/s)':<24} {'RTT ms':>7}  {'/ relay':>7}")
    for path in results:
        each = " ".join(f"{g:.2f}" for g, _ in results[path])
        versus = f"{gbits[path] / relay:6.0%}" if relay else "     -"
        print(f"{path:<11} {gbits[path]:7.2f}  {each:<24} {rtts[path]:7.3f}  {versus}")
    if set(results) != set(PATHS):
        return
    ratio = gbits["ndisproxy"] / relay
    print(f"ndisproxy / relay = {ratio:.0%} (target >= {TARGET:.0%})"
          f"{'' if ratio >= TARGET else '  -- below target'}")
    print(f"ndisproxy / veth = {gbits['ndisproxy'] / gbits['veth']:.0%}; "
          f"RTT ndisproxy / relay = {rtts['ndisproxy'] / rtts['relay']:.1f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="iperf3 -t (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per path (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke check: 1 run of 3 s")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"comma-separated subset of {','.join(PATHS)} (the ratios "
                             "need all three)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.runs = 3, 1
    paths = [p for p in args.paths.split(",") if p]
    if unknown := set(paths) - set(PATHS):
        parser.error(f"unknown path(s): {', '.join(sorted(unknown))}")
    if problem := missing_tools():
        print(problem)
        return 1

    signal.signal(signal.SIGTERM, interrupted)     # like Ctrl-C: through every finally
    results = {p: [] for p in PATHS if p in paths}
    ns_a, ns_b = unique("nbA"), unique("nbB")
    with tempfile.TemporaryDirectory(prefix="bench_tap.") as tmp:
        compile_relay(tmp)
        print(f"namespaces {ns_a} (client) and {ns_b} (server); {args.runs} run(s) x "
              f"{args.seconds} s per path; load average {os.getloadavg()[0]:.2f}, "
              f"{os.cpu_count()} CPUs")
        try:
            for ns in (ns_a, ns_b):
                ip("netns", "add", ns)
                ip("link", "set", "dev", "lo", "up", ns=ns)
            for index in range(args.runs):
                for path in paths:
                    gbits, rtt = measure(path, ns_a, ns_b, tmp, args.seconds)
                    results[path].append((gbits, rtt))
                    print(f"  run {index + 1}/{args.runs} {path:<10} {gbits:6.2f} Gbit/s  "
                          f"RTT {rtt:.3f} ms", flush=True)
        except BenchError as exc:
            print(f"bench_tap: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("bench_tap: interrupted; namespaces removed", file=sys.stderr)
            return 130
        finally:
            for ns in (ns_a, ns_b):
                remove_netns(ns)
    report(results, args.seconds, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
