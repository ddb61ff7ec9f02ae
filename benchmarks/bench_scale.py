"""Many adapters in one daemon: time to ready and memory, isolated and pooled.

    sudo .venv/bin/python benchmarks/bench_scale.py [--counts 1,16,64] [--runs 3]
                                                    [--frames 512]

For each count, a daemon with that many adapters (mocknic, looped cables)
is started twice - one host process per adapter ("isolated"), and all in
one host ("pooled") - alternating, ``--runs`` times.  Reported, medians:

- ready: seconds from starting the daemon to every adapter running (what
  ``ndisproxy run`` waits for before READY=1);
- PSS per isolated host (each host's proportional set size: pages shared
  with the fork server and its siblings count a share), and per pooled
  adapter (the pooled host's PSS over the count; and its growth per adapter
  past the first, which is what an adapter more costs);
- busy: the same PSS figures again after ``--frames`` full-size frames
  (1514 bytes) went through every adapter - out of its TAP, through the
  driver and the mock NIC, round the looped cable and back into Linux - so
  the rings' buffers have all been used, as under real traffic;
- stop: seconds from cancelling the daemon to every driver halted and every
  TAP gone.

Figures come with their ratio to the issue's targets (64 ready in 3 s, PSS
6 MiB per isolated host, 1 MiB per pooled adapter): < 1.00 meets it.
Interfaces are named npbs<hex> and removed when each daemon stops.  The
frames are broadcasts of a local experimental EtherType (0x88B5) sent on
those TAPs only: they loop back into the same TAP and Linux drops them.
"""
import argparse
import os
import secrets
import socket
import statistics
import time

import trio

from ndisproxy import config as configuration
from ndisproxy.daemon import Daemon

TARGET_READY_64 = 3.0
TARGET_HOST_MIB = 6.0
TARGET_POOLED_MIB = 1.0


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def config_text(count, pooled):
    prefix = "npbs" + secrets.token_hex(3)
    return "".join(f"""
[[adapter]]
name = "{prefix}{i:x}"
driver = "mocknic"
{'host = "pool"' if pooled else ''}
[adapter.wire]
kind = "loopback"
""" for i in range(count))


EXPERIMENTAL_ETHERTYPE = b"\x88\xb5"


def push_frames(names, frames):
    """``frames`` full-size broadcasts out of each of these TAPs."""
    frame = b"\xff" * 6 + b"\x02\x4e\x50\xbe\x4c\x00" + EXPERIMENTAL_ETHERTYPE
    frame += bytes(1514 - len(frame))
    for name in names:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
            sock.bind((name, 0))
            for _ in range(frames):
                while True:
                    try:
                        sock.send(frame)
                        break
                    except BlockingIOError:         # the TAP's queue is full
                        time.sleep(0.001)
                    except OSError as exc:
                        if exc.errno != 105:        # ENOBUFS: the same, said otherwise
                            raise
                        time.sleep(0.001)


async def one(count, pooled, frames):
    daemon = Daemon(configuration.loads(config_text(count, pooled), name="<bench>"))
    began = time.monotonic()
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        await daemon.wait_until(lambda: all(a.state == "running"
                                            for a in daemon.adapters.values()), 120)
        ready = time.monotonic() - began
        await trio.sleep(0.5)               # settle: first traffic, timers
        hosts = {a.pid for a in daemon.adapters.values()}
        pss = sum(pss_kib(pid) for pid in hosts) / 1024
        busy = pss
        if frames:
            await trio.to_thread.run_sync(push_frames, list(daemon.adapters), frames)
            await trio.sleep(0.5)
            busy = sum(pss_kib(pid) for pid in hosts) / 1024
        nursery.cancel_scope.cancel()
        stopping = time.monotonic()
    return {"ready": ready, "pss": pss, "busy": busy, "hosts": len(hosts),
            "stop": time.monotonic() - stopping}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="1,16,64",
                        help="adapter counts, comma-separated (default 1,16,64)")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each count, alternated; medians are shown (default 3)")
    parser.add_argument("--frames", type=int, default=512,
                        help="full-size frames through every adapter before the busy "
                             "figures (0: idle only)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root: the daemon creates TAP interfaces")
    counts = [int(c) for c in args.counts.split(",")]
    results = {(c, p): [] for c in counts for p in (False, True)}
    for run in range(args.runs):
        for count in counts:
            for pooled in (False, True):
                results[count, pooled].append(trio.run(one, count, pooled, args.frames))
                print(f"run {run + 1}/{args.runs}: {count} {'pooled' if pooled else 'isolated'}"
                      " done", flush=True)
    print()
    for count in counts:
        for pooled in (False, True):
            runs = results[count, pooled]
            ready = statistics.median(r["ready"] for r in runs)
            stop = statistics.median(r["stop"] for r in runs)
            versus = f" (target {TARGET_READY_64:g} s: {ready / TARGET_READY_64:.2f})" \
                if count == 64 else ""
            print(f"{count:3d} {'pooled  ' if pooled else 'isolated'}: ready {ready:5.2f} s"
                  f"{versus}, stop {stop:4.2f} s")
            for key, when in (("pss", "idle"), ("busy", f"after {args.frames} frames")):
                if key == "busy" and not args.frames:
                    continue
                pss = statistics.median(r[key] for r in runs)
                print(f"      {when:<18} {memory(results, counts, count, pooled, key, pss)}")


def memory(results, counts, count, pooled, key, pss):
    """PSS per isolated host, or per pooled adapter and per adapter more."""
    per = pss / count
    if not pooled:
        return (f"PSS {per:.2f} MiB per host (target {TARGET_HOST_MIB:g}: "
                f"{per / TARGET_HOST_MIB:.2f})")
    first = statistics.median(r[key] for r in results[min(counts), True])
    more = (pss - first) / (count - min(counts)) if count > min(counts) else per
    return (f"host PSS {pss:6.1f} MiB = {per:.2f} MiB/adapter (+{more:.2f} MiB per "
            f"adapter more; target {TARGET_POOLED_MIB:g}: {more / TARGET_POOLED_MIB:.2f})")

if __name__ == "__main__":
    main()
