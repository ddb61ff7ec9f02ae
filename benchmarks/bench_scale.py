"""Many adapters in one daemon: time to ready and memory, isolated and pooled.

    sudo .venv/bin/python benchmarks/bench_scale.py [--counts 1,16,64] [--runs 3]

For each count, a daemon with that many adapters (mocknic, looped cables)
is started twice - one host process per adapter ("isolated"), and all in
one host ("pooled") - alternating, ``--runs`` times.  Reported, medians:

- ready: seconds from starting the daemon to every adapter running (what
  ``ndisproxy run`` waits for before READY=1);
- PSS per isolated host (each host's proportional set size: pages shared
  with the fork server and its siblings count a share), and per pooled
  adapter (the pooled host's PSS over the count; and its growth per adapter
  past the first, which is what an adapter more costs);
- stop: seconds from cancelling the daemon to every driver halted and every
  TAP gone.

Figures come with their ratio to the issue's targets (64 ready in 3 s, PSS
6 MiB per isolated host, 1 MiB per pooled adapter): < 1.00 meets it.
Interfaces are named npbs<hex> and removed when each daemon stops.
"""
import argparse
import os
import secrets
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


async def one(count, pooled):
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
        nursery.cancel_scope.cancel()
        stopping = time.monotonic()
    return {"ready": ready, "pss": pss, "hosts": len(hosts),
            "stop": time.monotonic() - stopping}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="1,16,64")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root: the daemon creates TAP interfaces")
    counts = [int(c) for c in args.counts.split(",")]
    results = {(c, p): [] for c in counts for p in (False, True)}
    for run in range(args.runs):
        for count in counts:
            for pooled in (False, True):
                results[count, pooled].append(trio.run(one, count, pooled))
                print(f"run {run + 1}/{args.runs}: {count} {'pooled' if pooled else 'isolated'}"
                      " done", flush=True)
    pooled_one = statistics.median(r["pss"] for r in results[min(counts), True])
    print()
    for count in counts:
        for pooled in (False, True):
            runs = results[count, pooled]
            ready = statistics.median(r["ready"] for r in runs)
            stop = statistics.median(r["stop"] for r in runs)
            pss = statistics.median(r["pss"] for r in runs)
            if pooled:
                per = pss / count
                more = (pss - pooled_one) / (count - min(counts)) if count > min(counts) else per
                memory = (f"host PSS {pss:6.1f} MiB = {per:.2f} MiB/adapter "
                          f"(+{more:.2f} MiB per adapter more; target {TARGET_POOLED_MIB:g}: "
                          f"{more / TARGET_POOLED_MIB:.2f})")
            else:
                per = pss / count
                memory = (f"PSS {per:.2f} MiB per host (target {TARGET_HOST_MIB:g}: "
                          f"{per / TARGET_HOST_MIB:.2f})")
            versus = f" (target {TARGET_READY_64:g} s: {ready / TARGET_READY_64:.2f})" \
                if count == 64 else ""
            print(f"{count:3d} {'pooled  ' if pooled else 'isolated'}: ready {ready:5.2f} s"
                  f"{versus}, stop {stop:4.2f} s, {memory}")


if __name__ == "__main__":
    main()
