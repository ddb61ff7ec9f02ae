"""64 adapters in one daemon - one host each, and pooled in one host - all
carry a frame through their driver, and all stop cleanly."""
import os
import socket
import time

import pytest
import trio

from ndisproxy import config as configuration
from ndisproxy.daemon import Daemon

from .netfixtures import link_exists, require_net, unique_name  # noqa: F401 - fixtures

COUNT = 64
ETH_P_EXPERIMENTAL = 0x88B5
PACKET_OUTGOING = 4


def config_text(names, pooled):
    return "".join(f"""
[[adapter]]
name = "{name}"
driver = "mocknic"
{'host = "pool"' if pooled else ''}
[adapter.wire]
kind = "loopback"
""" for name in names)


def pss_mib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no Pss in /proc/{pid}/smaps_rollup")


def round_trip(name, mac):
    """A broadcast frame sent on the TAP comes back from the looped cable:
    through MiniportSendPackets, the device, the RX ring and an indication."""
    marker = os.urandom(8)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                       socket.htons(ETH_P_EXPERIMENTAL)) as sock:
        sock.bind((name, 0))
        sock.settimeout(5)
        frame = b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) + \
            ETH_P_EXPERIMENTAL.to_bytes(2, "big") + marker + bytes(38)
        sock.send(frame)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            data, address = sock.recvfrom(2048)
            if address[2] != PACKET_OUTGOING and marker in data:
                return True
    return False


@pytest.mark.parametrize("pooled", [False, True], ids=["isolated", "pooled"])
async def test_64_adapters_pass_traffic_and_stop_cleanly(require_net, pooled):  # noqa: F811
    names = [unique_name("npm") for _ in range(COUNT)]
    daemon = Daemon(configuration.loads(config_text(names, pooled), name="<test>"))
    began = time.monotonic()
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        await daemon.wait_until(lambda: all(a.state == "running"
                                            for a in daemon.adapters.values()), 60)
        ready = time.monotonic() - began
        hosts = {a.pid for a in daemon.adapters.values()}
        assert len(hosts) == (1 if pooled else COUNT)
        memory = sum(pss_mib(pid) for pid in hosts) / COUNT
        passed = [await trio.to_thread.run_sync(round_trip, a.name, a.mac)
                  for a in daemon.adapters.values()]
        assert all(passed), [n for n, ok in zip(names, passed) if not ok]
        assert all(a.restarts == 0 for a in daemon.adapters.values())
        nursery.cancel_scope.cancel()
    print(f"{COUNT} adapters, {len(hosts)} host(s): all running {ready:.2f} s after start; "
          f"every one looped a frame back; {memory:.2f} MiB PSS per adapter")
    # Generous bounds (3x the targets: 6 MiB per host, 1 MiB per pooled
    # adapter past the pool's first); benchmarks/bench_scale.py measures.
    assert memory < (18 if not pooled else 3 + 12 / COUNT)
    assert all(a.state == "halted" for a in daemon.adapters.values())
    assert all(a.halt_report == {"leaks": [], "violations": []}
               for a in daemon.adapters.values())
    assert not any(link_exists(name) for name in names)
    for pid in hosts:
        assert not os.path.exists(f"/proc/{pid}"), f"host {pid} outlived the daemon"
