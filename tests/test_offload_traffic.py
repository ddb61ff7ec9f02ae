"""Offloads with real traffic: Linux's TCP through a TAP with GSO and partial
checksums, mocknic.sys doing large sends and checksums on the mock NIC, a
wire TAP into a peer namespace.  The data must arrive intact, no receiver
may count a bad checksum, and one spoiled on purpose must be counted.
"""
import json
import os
import shutil
import subprocess

import pytest
import trio

from ndisproxy import netns, offload, tap
from ndisproxy._binding import lib
from ndisproxy.host import DEFAULT_MAC, open_adapter

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures
from .test_daemon import HOST_V4, PEER_V4, address_host_side, config_text, ping, start, transfer

HOST_V6, PEER_V6 = "2001:db8:1::1", "2001:db8:1::2"
CSUM_ERRORS = ("TcpInCsumErrors", "UdpInCsumErrors", "IpExtInCsumErrors", "Udp6InCsumErrors")


def csum_errors(ns=None):
    """Receive checksum errors counted in ``ns`` (None: ours), by nstat name:
    totals since boot (in our namespace earlier tests, fuzzing with bad
    frames, count too), so tests compare before and after."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["nstat", "-asz", *CSUM_ERRORS]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=10).stdout
    counts = dict.fromkeys(CSUM_ERRORS, 0)
    for line in out.splitlines():
        if line.startswith("#"):
            continue
        name, value = line.split()[:2]
        counts[name] = int(value)
    return counts


def counted_since(before, ns=None):
    """Checksum errors counted in ``ns`` since ``before`` (a csum_errors())."""
    after = csum_errors(ns)
    return {name: after[name] - before[name] for name in CSUM_ERRORS}


NONE = dict.fromkeys(CSUM_ERRORS, 0)


def ethtool(*args):
    return subprocess.run(["ethtool", *args], capture_output=True, text=True, check=True,
                          timeout=10).stdout


@pytest.fixture
async def link(require_net):  # noqa: F811
    """(nic, peer namespace): an adapter with offloads between a TAP here
    and a wire TAP in the peer's namespace, both addressed."""
    name, wire, peer = unique_name("npo"), unique_name("npw"), unique_name("npn")
    await trio.to_thread.run_sync(netns.create_netns, peer)
    fds = []
    try:
        tap.create_tap(name, mac=DEFAULT_MAC)
        fds.append(tap.open_tap(name))
        tap.create_tap(wire)
        fds.append(tap.open_tap(wire))
        tap.set_carrier(fds[1], True)
        netns.move_link(wire, peer)
        await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
            peer, wire, addresses=(f"{PEER_V4}/24", f"{PEER_V6}/64")))
        await trio.to_thread.run_sync(address_host_side, name, f"{HOST_V4}/24",
                                      f"{HOST_V6}/64")
        tap.set_up(name, True)
        filter_ = (lib.NDIS_PACKET_TYPE_DIRECTED | lib.NDIS_PACKET_TYPE_BROADCAST
                   | lib.NDIS_PACKET_TYPE_ALL_MULTICAST)
        async with open_adapter("mocknic", tap_fd=fds[0], wire_fd=fds[1], offloads=True,
                                packet_filter=filter_,
                                on_carrier=lambda up: tap.set_carrier(fds[0], up)) as nic:
            tap.set_gso_max_size(fds[0], offload.gso_max_size(nic.offloads))
            with trio.fail_after(10):
                while tap.link_state(name)["operstate"] != "up":
                    await trio.sleep(0.01)
            yield nic, peer, name
    finally:
        for fd in fds:
            os.close(fd)
        tap.delete_tap(name, missing_ok=True)
        await trio.to_thread.run_sync(lambda: netns.remove_netns(peer, missing_ok=True))


async def test_50mb_each_way_v4_and_v6_with_offloads_and_no_checksum_errors(link):
    nic, peer, _ = link
    ours, theirs = csum_errors(), csum_errors(peer)
    for address in (PEER_V4, PEER_V6):
        result = await trio.to_thread.run_sync(ping, address)
        assert result.returncode == 0, result.stdout + result.stderr
    await transfer(None, peer, PEER_V4)                       # host -> peer: large sends
    await transfer(peer, None, HOST_V4)                       # peer -> host: cut by the host
    await transfer(None, peer, PEER_V6, megabytes=20)         # IPv6 GSO: cut by the host
    await transfer(peer, None, HOST_V6, megabytes=20)
    pump, stats = nic.pump_counters(), nic.stats()
    device = nic.adapter.device_counters()
    assert pump["tap_large_sends"] > 100                      # GSO reached the driver as LSO
    assert device["tso_frames"] == pump["tap_large_sends"]    # ... and the NIC cut them
    assert pump["gso_segmented"] > 100                        # IPv6, and GSO off the wire
    assert pump["gso_dropped"] == 0
    assert stats["rx_csum_good"] > 30_000 and stats["rx_csum_failed"] == 0
    assert device["rx_csum_bad"] == 0
    assert counted_since(ours) == NONE
    assert counted_since(theirs, peer) == NONE


async def test_a_checksum_spoiled_on_purpose_is_counted_by_the_receiver(link):
    nic, peer, _ = link
    ours, theirs = csum_errors(), csum_errors(peer)
    await transfer(None, peer, PEER_V4, megabytes=1)
    assert counted_since(theirs, peer)["TcpInCsumErrors"] == 0
    nic.adapter.corrupt_checksums(3)
    await transfer(None, peer, PEER_V4, megabytes=1)          # TCP resends them
    assert counted_since(theirs, peer)["TcpInCsumErrors"] == 3
    assert counted_since(ours)["TcpInCsumErrors"] == 0


@pytest.mark.skipif(shutil.which("ethtool") is None, reason="ethtool is not installed")
async def test_ethtool_turns_large_sends_off_and_on(link):
    nic, peer, name = link
    theirs = csum_errors(peer)
    features = ethtool("-k", name)
    assert "tcp-segmentation-offload: on" in features
    assert "tx-checksumming: on" in features
    await transfer(None, peer, PEER_V4, megabytes=5)
    sent = nic.pump_counters()["tap_large_sends"]
    assert sent > 0
    ethtool("-K", name, "tso", "off")
    await transfer(None, peer, PEER_V4, megabytes=5)
    assert nic.pump_counters()["tap_large_sends"] == sent          # Linux cut them itself
    ethtool("-K", name, "tso", "on")
    await transfer(None, peer, PEER_V4, megabytes=5)
    assert nic.pump_counters()["tap_large_sends"] > sent
    assert counted_since(theirs, peer) == NONE


def wire_rx(ns, ifname):
    """(packets, bytes) the wire TAP has taken from the NIC, as the link
    partner's kernel counts them."""
    out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", ifname],
                         capture_output=True, text=True, check=True, timeout=10).stdout
    rx = json.loads(out)[0]["stats64"]["rx"]
    return rx["packets"], rx["bytes"]


@pytest.mark.parametrize("gso", [True, False])
async def test_the_wire_carries_large_sends_whole_or_as_ethernet_would(require_net,  # noqa: F811
                                                                       gso):
    """``[adapter.wire] gso``: a large send crosses a TAP wire as one GSO
    frame, or (false) cut into segments no longer than the MTU; either
    way the data and every checksum arrive right."""
    name, wire, peer = unique_name("npg"), unique_name("npw"), unique_name("npn")
    await trio.to_thread.run_sync(netns.create_netns, peer)
    try:
        async with trio.open_nursery() as nursery:
            daemon = await start(nursery, config_text([(name, wire, peer)])
                                 + f"gso = {str(gso).lower()}\n")
            await trio.to_thread.run_sync(address_host_side, name, f"{HOST_V4}/24",
                                          f"{HOST_V6}/64")
            await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
                peer, wire, addresses=(f"{PEER_V4}/24", f"{PEER_V6}/64")))
            theirs = csum_errors(peer)
            before = wire_rx(peer, wire)
            await transfer(None, peer, PEER_V4, megabytes=20)
            packets, octets = (after - was for after, was in zip(wire_rx(peer, wire), before))
            await transfer(peer, None, HOST_V4, megabytes=5)
            stats = (await daemon.request(name, "stats"))["adapters"][name]
            nursery.cancel_scope.cancel()
        per_frame = octets / packets
        print(f"gso = {gso}: {packets} frames onto the wire, {per_frame:.0f} bytes each")
        assert stats["pump"]["tap_large_sends"] > 100          # Linux -> driver: LSO either way
        if gso:
            assert per_frame > 10_000
            assert stats["pump"]["gso_segmented"] > 0         # the partner's GSO, cut here
        else:
            assert per_frame <= 1514
            assert stats["pump"]["gso_segmented"] == 0        # the partner's kernel cut it
        assert counted_since(theirs, peer) == NONE
    finally:
        await trio.to_thread.run_sync(lambda: netns.remove_netns(peer, missing_ok=True))
