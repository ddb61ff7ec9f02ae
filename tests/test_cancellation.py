"""Cancelling a host's scope anywhere leaves nothing behind.

The block of ``open_host`` is cancelled after a random delay, 50 times, at
whatever point it has reached (creating a TAP, forking a host, initialising
the driver, passing traffic...).  Afterwards: no interface or namespace we
made, no process of ours, and the same fds as before (trio's worker-thread
cache aside, which holds no fds).
"""
import gc
import os
import random
import subprocess

import trio

import ndisproxy
from ndisproxy import netns

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures


def our_links(prefix):
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()
            if line.split(":")[1].strip().startswith(prefix)]


def children():
    out = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True)
    return set(out.stdout.split())


def fds():
    gc.collect()
    return set(os.listdir("/proc/self/fd"))


async def test_cancelling_at_50_random_points_leaves_nothing(require_net):  # noqa: F811
    rng = random.Random(5)
    prefix = unique_name("npz")[:8]
    ns = unique_name("npz")
    await trio.to_thread.run_sync(netns.create_netns, ns)
    try:
        before_fds, before_children = fds(), children()
        delays = []
        for i in range(50):
            delay = rng.uniform(0, 0.6)
            delays.append(delay)
            with trio.move_on_after(delay):
                async with ndisproxy.open_host() as host:
                    nic = await host.add_adapter(
                        f"{prefix}{i:02d}", wire=ndisproxy.TapWire(f"{prefix}w{i:02d}", ns))
                    await nic.wait_state("running")
                    await nic.set_link(False)
                    await trio.sleep_forever()
        print(f"cancelled after {min(delays):.3f}..{max(delays):.3f} s")
        with trio.fail_after(5):              # the fork server's last exit report
            while children() - before_children:
                await trio.sleep(0.05)
        assert our_links(prefix) == []
        leftover = subprocess.run(["ip", "-n", ns, "-o", "link", "show"], capture_output=True,
                                  text=True).stdout
        assert prefix not in leftover
        assert fds() == before_fds
    finally:
        await trio.to_thread.run_sync(lambda: netns.remove_netns(ns, missing_ok=True))
