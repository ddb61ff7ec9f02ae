"""Fault containment under load: hundreds of restarts leak nothing, and every
fault kind injected during a transfer costs that adapter a moment, its
neighbour nothing."""
import ctypes
import gc
import hashlib
import logging
import os
import subprocess
import sys
import textwrap
import time

import trio

from ndisproxy import config as configuration
from ndisproxy import netns
from ndisproxy.daemon import Daemon

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures
from .test_daemon import SERVER, address_host_side
from .test_fault_containment import fire, start

# The leak comes last: it is found when the driver is halted, and a host
# that faults is not halted (it dies), so only the daemon's stop finds it.
FAULT_CODES = {"overflow": 1, "crash": 2, "hang": 3, "bugcheck": 9, "double-complete": 5,
               "leak": 4}


def resources():
    """(open fds, resident bytes) of this process, the proxy.  Garbage is
    collected and the C allocator's free heap returned first: memory the
    allocator keeps for reuse is not memory the proxy holds."""
    gc.collect()
    ctypes.CDLL(None).malloc_trim(0)
    with open("/proc/self/statm") as statm:
        resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return len(os.listdir("/proc/self/fd")), resident


def zombies(parents):
    """Zombie processes whose parent is one of ``parents``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) in parents:
            found.append(int(pid))
    return found


async def test_500_overflows_and_restarts_leak_nothing(require_net):  # noqa: F811
    name = unique_name("npl")
    text = f"""
[[adapter]]
name = "{name}"
driver = "mocknic"
[adapter.restart]
delay = 0
limit = 0
[adapter.wire]
kind = "loopback"
"""
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, text)
        state = daemon.adapters[name]
        parents = {os.getpid(), daemon.fork_server.process.pid}
        began = time.monotonic()
        at = {}
        # The test harness keeps every log record it sees: 500 fault
        # paragraphs would be its memory, not the proxy's.
        logging.getLogger("ndisproxy").disabled = True
        try:
            for fault in range(1, 501):
                await fire(daemon, name, 1)
                await daemon.wait_until(lambda: state.restarts == fault
                                        and state.state == "running", 10)
                assert "stack overflow" in state.last_fault["error"]
                if fault in (50, 500):
                    at[fault] = resources()
        finally:
            logging.getLogger("ndisproxy").disabled = False
        took = time.monotonic() - began
        assert zombies(parents) == []
        (fds50, rss50), (fds500, rss500) = at[50], at[500]
        print(f"500 overflow faults in {took:.1f} s ({took / 500 * 1000:.0f} ms a cycle); "
              f"fds {fds50} -> {fds500}, RSS {rss50 >> 10} -> {rss500 >> 10} KiB")
        assert fds500 <= fds50 * 1.05
        assert rss500 <= rss50 * 1.05
        nursery.cancel_scope.cancel()


PACED_CLIENT = """
import socket, sys, time
block = bytes.fromhex(sys.stdin.readline().strip())
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
megabytes, seconds = int(sys.argv[3]), float(sys.argv[4])
began = time.monotonic()
for i in range(megabytes):
    c.sendall(block)
    # Paced, so that the transfer is still running at the last fault.
    delay = began + seconds * (i + 1) / megabytes - time.monotonic()
    if delay > 0:
        time.sleep(delay)
c.close()
"""

async def read_line(stream):
    line = b""
    while not line.endswith(b"\n"):
        chunk = await stream.receive_some(1)
        if not chunk:
            break
        line += chunk
    return line.decode()


def reply_times(output):
    """Wall-clock times of the replies in ``ping -D`` output."""
    times = []
    for line in output.splitlines():
        if line.startswith("[") and "bytes from" in line:
            times.append(float(line[1:line.index("]")]))
    return times


async def test_every_fault_kind_during_a_transfer(require_net):  # noqa: F811
    """Adapter A carries a paced 100 MB TCP transfer while each fault kind is
    injected into it in turn; adapter B is pinged every 10 ms throughout."""
    a, b = unique_name("npa"), unique_name("npb")
    wa, wb = unique_name("npw"), unique_name("npw")
    na, nb = unique_name("npn"), unique_name("npn")
    for ns in (na, nb):
        await trio.to_thread.run_sync(netns.create_netns, ns)
    text = textwrap.dedent(f"""
        [[adapter]]
        name = "{a}"
        driver = "mocknic"
        verifier_fatal = ["double-complete"]
        [adapter.restart]
        limit = 0
        stable_after = 1        # faults 1.5 s apart are each a first one: no backoff
        [adapter.wire]
        kind = "tap"
        ifname = "{wa}"
        netns = "{na}"

        [[adapter]]
        name = "{b}"
        driver = "mocknic"
        [adapter.wire]
        kind = "tap"
        ifname = "{wb}"
        netns = "{nb}"
    """)
    try:
        async with trio.open_nursery() as nursery:
            daemon = await start(nursery, text)
            for ifname, wire, ns, net in ((a, wa, na, "198.51.100"), (b, wb, nb, "203.0.113")):
                await trio.to_thread.run_sync(address_host_side, ifname, f"{net}.1/24",
                                              f"2001:db8:{net[-3:]}::1/64")
                await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
                    ns, wire, addresses=(f"{net}.2/24",)))
            state = daemon.adapters[a]
            neighbour = daemon.adapters[b]
            block = os.urandom(1 << 20)
            megabytes, seconds = 100, 2.0 * len(FAULT_CODES) + 2
            server = await trio.lowlevel.open_process(
                ["ip", "netns", "exec", na, sys.executable, "-c", SERVER, "198.51.100.2",
                 "5201"], stdout=subprocess.PIPE)
            assert (await read_line(server.stdout)).startswith("listening")
            pings = {}

            async def ping(key, address, count):
                pings[key] = await trio.run_process(
                    ["ping", "-D", "-n", "-i", "0.01", "-c", str(count), "-W", "2", address],
                    capture_stdout=True, check=False)

            async def client():
                await trio.run_process(
                    [sys.executable, "-c", PACED_CLIENT, "198.51.100.2", "5201",
                     str(megabytes), str(seconds)], stdin=block.hex().encode() + b"\n")

            count = int((seconds + 2) * 100)
            nursery.start_soon(ping, "b", "203.0.113.2", count)
            nursery.start_soon(ping, "a", "198.51.100.2", count)
            nursery.start_soon(client)
            detected = {}
            await trio.sleep(1)
            for kind, code in FAULT_CODES.items():
                restarts = state.restarts
                # double-complete fires at the next send, which traffic makes.
                await fire(daemon, a, code)
                if kind == "leak":
                    await trio.sleep(1)     # armed; the data path must not notice
                    break
                await daemon.wait_until(lambda: state.restarts == restarts + 1
                                        and state.state == "running", 10)
                # The detection, on the wall clock ping -D uses.
                detected[kind] = state.fault_at + time.time() - trio.current_time()
                assert state.last_fault["kind"] in ("StackOverflowFault", "AccessViolationFault",
                                                    "DriverTimeoutFault", "BugCheckFault",
                                                    "VerifierFault"), state.last_fault
                await trio.sleep(1.5)
            out = await read_line(server.stdout)
            await server.wait()
            with trio.fail_after(seconds + 10):
                while "a" not in pings or "b" not in pings:
                    await trio.sleep(0.1)
            count_bytes, digest = out.split()
            assert int(count_bytes) == megabytes << 20
            assert digest == hashlib.sha256(block * megabytes).hexdigest()
            lost_b = pings["b"].stdout.decode()
            assert " 0% packet loss" in lost_b, lost_b.splitlines()[-2:]
            assert neighbour.restarts == 0
            replies = reply_times(pings["a"].stdout.decode())
            back = {kind: min(t for t in replies if t > at) - at for kind, at in detected.items()}
            print(f"100 MB through {a} with {len(detected)} faults: sha256 ok; "
                  f"{b} pinged every 10 ms: {lost_b.splitlines()[-2]}")
            print("traffic back after detection: " + ", ".join(
                f"{kind} {delay * 1000:.0f} ms" for kind, delay in back.items()))
            assert all(delay < 3.0 for delay in back.values()), back     # goal: 1 s
            nursery.cancel_scope.cancel()
        leaks = state.halt_report["leaks"]
        assert [tag for tag, _ in leaks] == ["Leak"], state.halt_report
    finally:
        for ns in (na, nb):
            await trio.to_thread.run_sync(lambda: netns.remove_netns(ns, missing_ok=True))
