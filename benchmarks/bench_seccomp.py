"""What the hosts' seccomp filter costs: round trips through a host with and without it.

    .venv/bin/python benchmarks/bench_seccomp.py [--round-trips N] [--runs R] [--window W]

Each run forks a driver host from this process: the bundled mocknic.sys
behind the C pump, serviced by the same trio code a host process runs
(ndisproxy.host.open_adapter), its "TAP" and its wire the ends of two
SOCK_SEQPACKET socketpairs (no vnet header; no root needed).  Both hosts set
no_new_privs; the filtered one then installs the host filter exactly as
hostproc does (ndisproxy.seccomp.install_host_filter).

From this process, per run:
  ping-pong  a frame written to the TAP end comes out of the wire end; it is
             written back into the wire and comes out of the TAP end: one
             round trip, twice through the driver, one frame in flight
  window     W frames in flight the same way: frames through the host per
             second (each round trip counts two)
  calls      in a forked child, ns per getpid() (allowed whatever its
             arguments: the kernel caches that verdict and skips the filter)
             and per fcntl(F_GETFL) (its arguments are checked: the filter runs)

Runs alternate (unfiltered, filtered, unfiltered, ...) so drift on a shared
machine hits both alike; the medians and their ratio are printed, with the
filter's size.  A ratio near 1.00 is the goal: the calls the data path makes
are all of the first kind.
"""
import argparse
import fcntl
import os
import signal
import socket
import statistics
import struct
import time

import trio

from ndisproxy import privileges, seccomp
from ndisproxy.host import DEFAULT_MAC, open_adapter

NIC_MAC = bytes.fromhex(DEFAULT_MAC.replace(":", ""))
PEER_MAC = bytes.fromhex("02aabbccddee")
ETHERTYPE = bytes.fromhex("88b5")
DIRECTED = 1


def serve_host(tap_fd, wire_fd, ready_fd, filtered):
    """The child: a host on these fds until it is killed."""
    privileges.set_no_new_privs()
    if filtered:
        seccomp.install_host_filter()

    async def main():
        async with open_adapter("mocknic", tap_fd=tap_fd, wire_fd=wire_fd, vnet_hdr=0,
                                wire_vnet_hdr=0, packet_filter=DIRECTED):
            os.write(ready_fd, b"1")
            await trio.sleep_forever()

    trio.run(main)


def start_host(filtered):
    linux, tap_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    cable, wire_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for theirs in (tap_end, wire_end):
        theirs.setblocking(False)       # as a host's TAP and wire are: the pump polls
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for ours in (linux, cable):
                ours.close()
            os.close(ready_r)
            serve_host(tap_end.fileno(), wire_end.fileno(), ready_w, filtered)
            code = 0
        finally:
            os._exit(code)
    for theirs in (tap_end, wire_end):
        theirs.close()
    os.close(ready_w)
    if os.read(ready_r, 1) != b"1":
        raise SystemExit("bench_seccomp: the host did not come up (see its stderr)")
    os.close(ready_r)
    return pid, linux, cable


def round_trips(linux, cable, count, window):
    """Seconds for ``count`` round trips, ``window`` frames in flight."""
    out = PEER_MAC + NIC_MAC + ETHERTYPE + b"to-the-wire".ljust(46, b".")
    back = NIC_MAC + PEER_MAC + ETHERTYPE + b"to-linux".ljust(46, b".")
    start = time.perf_counter()
    for _ in range(count // window):
        for _ in range(window):
            linux.send(out)
        for _ in range(window):
            cable.recv(2048)
            cable.send(back)
        for _ in range(window):
            linux.recv(2048)
    return time.perf_counter() - start


def run(filtered, count, window):
    pid, linux, cable = start_host(filtered)
    try:
        round_trips(linux, cable, 200, 1)                   # warm up
        single = round_trips(linux, cable, count, 1) / count
        batched = round_trips(linux, cable, count, window)
        return single * 1e6, 2 * (count // window * window) / batched
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        linux.close()
        cable.close()


def call_costs(filtered, count=200_000):
    """ns per getpid() and per fcntl(F_GETFL), in a child with or without the filter."""
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            privileges.set_no_new_privs()
            if filtered:
                seccomp.install_host_filter()
            costs = []
            for call in (os.getpid, lambda: fcntl.fcntl(result_w, fcntl.F_GETFL)):
                start = time.perf_counter_ns()
                for _ in range(count):
                    call()
                costs.append((time.perf_counter_ns() - start) / count)
            os.write(result_w, struct.pack("=2d", *costs))
            code = 0
        finally:
            os._exit(code)
    os.close(result_w)
    with os.fdopen(result_r, "rb") as result:
        costs = struct.unpack("=2d", result.read())
    os.waitpid(pid, 0)
    return costs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--window", type=int, default=32)
    args = parser.parse_args()
    results = {False: [], True: []}
    calls = {False: [], True: []}
    for _ in range(args.runs):
        for filtered in (False, True):
            results[filtered].append(run(filtered, args.round_trips, args.window))
            calls[filtered].append(call_costs(filtered))
    host = seccomp.host_filter(os.getpid())
    print(f"mocknic.sys in a forked host, socketpair TAP and wire, {args.runs} runs each, "
          f"{args.round_trips} round trips per run")
    print(f"filter: {len(host.allowed)} system calls allowed, "
          f"{host.instructions} BPF instructions")
    medians = {}
    for filtered, label in ((False, "no_new_privs only"), (True, "with the filter")):
        rtt = statistics.median(r[0] for r in results[filtered])
        rate = statistics.median(r[1] for r in results[filtered])
        medians[filtered] = rtt, rate
        getpid = statistics.median(c[0] for c in calls[filtered])
        getfl = statistics.median(c[1] for c in calls[filtered])
        print(f"  {label:<18} ping-pong {rtt:7.1f} µs/round trip   "
              f"window {args.window}: {rate:10,.0f} frames/s   "
              f"getpid {getpid:4.0f} ns   fcntl {getfl:4.0f} ns")
    print(f"  filtered/unfiltered: round trip {medians[True][0] / medians[False][0]:.3f}x, "
          f"frames/s {medians[True][1] / medians[False][1]:.3f}x")


if __name__ == "__main__":
    main()
