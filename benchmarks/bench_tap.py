"""TCP throughput, RTT and interrupt delivery through ndisproxy against a veth pair and C TAP relays.

    sudo .venv/bin/python benchmarks/bench_tap.py [--seconds 10] [--runs 3] [--quick]
                                                  [--json FILE]

Six paths between two fresh namespaces, A (iperf3 client, ping) and B
(iperf3 server), each set up, measured and torn down in turn, round-robin
(run 1 of each path, then run 2 of each, ...) so slow drift on a shared
machine hits all of them alike:

  veth        a veth pair A <-> B: the kernel's ceiling
  relay       two TAPs, one in A and one in B, joined by tap_relay.c (compiled
              here with cc -O2): poll(), one read() and one write() per frame,
              no offloads - what a minimal user-space data path costs
  relay-vnet  the same relay with IFF_VNET_HDR and checksum/TSO offloads on
              both TAPs: 64 KiB segments pass whole - the target of offloads
  ndisproxy   ``python -m ndisproxy run`` started in A with a temporary config:
              the adapter's TAP in A, mocknic.sys in a driver host process, its
              wire a TAP in B (frames: A -> TAP -> host -> MiniportSendPackets ->
              mock NIC -> wire TAP -> B, and back); ``offloads = false``
  ndisproxy-offload  the same with the driver's offloads (the default): Linux's
              GSO frames go to mocknic.sys as large sends, the mock NIC fills
              the checksums and puts each on the wire TAP whole, as one GSO
              frame (``[adapter.wire] gso``, the default)
  ndisproxy-segments  the same, with ``gso = false``: the mock NIC cuts every
              large send into MTU-sized segments on the wire, as Ethernet
              would carry them, and B's kernel cuts its own

Per path and run: ``ping -c 100 -i 0.02`` (median RTT), then ``iperf3 -t
SECONDS`` TCP A -> B (receiver's rate).  For ndisproxy also the interrupt
delivery: how long a frame read from the wire waits until the driver's
NdisMIndicateReceivePacket (the host's histogram, `ndisproxy stats`), p50
and p99 during the pings and during iperf3.  Prints the medians and the
ratios to the relays; the targets (issue 9): ndisproxy >= 80% of the relay's
throughput, RTT <= 3x the relay's; ndisproxy-offload >= 70% of relay-vnet.

Needs root (namespaces, TAPs), iperf3, ping and a C compiler.  Everything runs
inside the two namespaces (unique names, 198.51.100.0/24 only), so the root
namespace gets no interface, address or route; both namespaces, and every
process and interface in them, are removed at the end, also on failure or
Ctrl-C.
"""
import argparse
import contextlib
import functools
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
PATHS = ("veth", "relay", "relay-vnet", "ndisproxy", "ndisproxy-offload",
         "ndisproxy-segments")
THROUGHPUT_TARGET = 0.80        # of the relay's
RTT_TARGET = 3.0                # times the relay's
VNET_TARGET = 0.70              # ndisproxy-offload's, of relay-vnet's


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


# -- the paths: each a context manager, set up in A and B, torn down --------------


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
def relay_path(ns_a, ns_b, tmp, *, vnet=False):
    ta, tb = unique("nbta"), unique("nbtb")
    relay = start([os.path.join(tmp, "tap_relay"), *(["--vnet"] if vnet else []), ta, tb],
                  ns_a)
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
def ndisproxy_path(ns_a, ns_b, tmp, *, offloads=False, gso=True):
    from ndisproxy import config as configuration
    name, wire = unique("nbnd"), unique("nbnw")
    text = textwrap.dedent(f"""
        [daemon]
        socket = "{tmp}/{name}.sock"
        log_level = "info"

        [[adapter]]
        name = "{name}"
        driver = "mocknic"
        offloads = {"true" if offloads else "false"}
        [adapter.wire]
        kind = "tap"
        ifname = "{wire}"
        netns = "{ns_b}"
        gso = {"true" if gso else "false"}
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


SETUPS = {"veth": veth_path, "relay": relay_path,
          "relay-vnet": functools.partial(relay_path, vnet=True),
          "ndisproxy": ndisproxy_path,
          "ndisproxy-offload": functools.partial(ndisproxy_path, offloads=True),
          "ndisproxy-segments": functools.partial(ndisproxy_path, offloads=True, gso=False)}


# -- measuring ----------------------------------------------------------------------


def wait_reachable(ns_a, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run("ping", "-c", "1", "-W", "1", ADDR_B, ns=ns_a, check=False).returncode == 0:
            return
    raise BenchError(f"{ADDR_B} not reachable from {ADDR_A} within {timeout} s")


def rtt_ms(ns_a):
    """The median round trip of 100 pings, 20 ms apart (the median: on a
    shared machine a few pings meet a busy CPU and wait for it)."""
    out = run("ping", "-c", "100", "-i", "0.02", "-W", "2", ADDR_B, ns=ns_a).stdout
    times = [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]
    if not times:
        raise BenchError(f"ping: no replies in {out!r}")
    return statistics.median(times)


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


def latency_buckets(daemon):
    """The host's wire-to-indication histogram so far ([] if it has none)."""
    from ndisproxy import client
    with client.Connection(daemon.socket) as conn:
        stats = conn.request("stats", adapter=daemon.adapter)
    buckets = (stats.get("rx_latency") or {}).get("buckets") or {}
    histogram = [0] * 496
    for index, count in buckets.items():
        histogram[int(index)] = count
    return histogram


def since(before, after):
    return [b - a for a, b in zip(before, after)]


class Result(typing.NamedTuple):
    gbits: float
    rtt: float
    latency: dict       # phase ("ping", "iperf3") -> histogram, ndisproxy only


def measure(path, ns_a, ns_b, tmp, seconds):
    with SETUPS[path](ns_a, ns_b, tmp) as daemon:
        wait_reachable(ns_a)
        latency, marks = {}, []
        if daemon:
            marks.append(latency_buckets(daemon))
        rtt = rtt_ms(ns_a)
        if daemon:
            marks.append(latency_buckets(daemon))
        gbits = iperf3_gbits(ns_a, ns_b, seconds)
        if daemon:
            marks.append(latency_buckets(daemon))
            latency = {"ping": since(marks[0], marks[1]), "iperf3": since(marks[1], marks[2])}
    return Result(gbits, rtt, latency)


def summed(histograms):
    return [sum(column) for column in zip(*histograms)] if histograms else []


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
    gbits = {p: statistics.median(r.gbits for r in rs) for p, rs in results.items()}
    rtts = {p: statistics.median(r.rtt for r in rs) for p, rs in results.items()}
    relay = gbits.get("relay")
    print()
    print(f"iperf3 TCP A -> B, median of {runs} x {seconds} s; RTT median of the runs' "
          "medians of 100 pings")
    print(f"{'path':<17} {'Gbit/s':>7}  {'runs (Gbit/s)':<24} {'RTT ms':>7}  {'/ relay':>7}")
    for path, rs in results.items():
        each = " ".join(f"{r.gbits:.2f}" for r in rs)
        versus = f"{gbits[path] / relay:6.0%}" if relay else "     -"
        print(f"{path:<17} {gbits[path]:7.2f}  {each:<24} {rtts[path]:7.3f}  {versus}")
    try:
        from ndisproxy.driver import latency_summary
    except ImportError:             # an ndisproxy from before the histogram
        latency_summary = None
    for ndis_path in ("ndisproxy", "ndisproxy-offload", "ndisproxy-segments"):
        if ndis_path not in results or not latency_summary:
            continue
        print(f"{ndis_path} interrupt delivery (wire frame read -> "
              "NdisMIndicateReceivePacket), all runs:")
        for phase in ("ping", "iperf3"):
            histograms = [r.latency[phase] for r in results[ndis_path] if r.latency.get(phase)]
            summary = latency_summary(summed(histograms))
            if summary["count"]:
                print(f"  during {phase:<7} p50 {summary['p50_us']:7.1f} us   "
                      f"p99 {summary['p99_us']:7.1f} us   ({summary['count']} frames)")
            else:
                print(f"  during {phase:<7} not measured (this host keeps no histogram)")
    if "ndisproxy" in results and relay:
        ratio, rtt_ratio = gbits["ndisproxy"] / relay, rtts["ndisproxy"] / rtts["relay"]
        print(f"ndisproxy / relay = {ratio:.0%} (target >= {THROUGHPUT_TARGET:.0%})"
              f"{'' if ratio >= THROUGHPUT_TARGET else '  -- below target'}")
        print(f"RTT ndisproxy / relay = {rtt_ratio:.1f}x (target <= {RTT_TARGET:.0f}x)"
              f"{'' if rtt_ratio <= RTT_TARGET else '  -- above target'}")
    if "ndisproxy-offload" in results and "relay-vnet" in results:
        ratio = gbits["ndisproxy-offload"] / gbits["relay-vnet"]
        print(f"ndisproxy-offload / relay-vnet = {ratio:.0%} (target >= {VNET_TARGET:.0%})"
              f"{'' if ratio >= VNET_TARGET else '  -- below target'}")
    if "ndisproxy-segments" in results and "ndisproxy-offload" in results:
        print(f"ndisproxy-segments / ndisproxy-offload = "
              f"{gbits['ndisproxy-segments'] / gbits['ndisproxy-offload']:.0%} "
              "(what cutting large sends on the wire costs)")
    if "ndisproxy" in results and "veth" in results:
        print(f"ndisproxy / veth = {gbits['ndisproxy'] / gbits['veth']:.0%}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="iperf3 -t (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per path (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke check: 1 run of 3 s")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"comma-separated subset of {','.join(PATHS)} (the ratios "
                             "need relay and ndisproxy)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the medians, with the date and machine, to FILE "
                             "(benchmarks/chart_paths.py draws them)")
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
                    result = measure(path, ns_a, ns_b, tmp, args.seconds)
                    results[path].append(result)
                    print(f"  run {index + 1}/{args.runs} {path:<10} {result.gbits:6.2f} Gbit/s  "
                          f"RTT {result.rtt:.3f} ms", flush=True)
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
    if args.json:
        write_json(args.json, results, args.seconds, args.runs)
    return 0


def write_json(path, results, seconds, runs):
    machine = os.uname()
    with open(path, "w") as out:
        json.dump({
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{machine.nodename} ({machine.machine}, {os.cpu_count()} CPUs, "
                       f"Linux {machine.release})",
            "seconds": seconds, "runs": runs,
            "paths": {path: {"gbits": statistics.median(r.gbits for r in rs),
                             "rtt_ms": statistics.median(r.rtt for r in rs),
                             "runs_gbits": [r.gbits for r in rs]}
                      for path, rs in results.items()},
        }, out, indent=1)
        out.write("\n")


if __name__ == "__main__":
    sys.exit(main())
