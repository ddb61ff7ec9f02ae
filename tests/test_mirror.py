"""Linux <-> NDIS mirroring: behaviour, not just OID values.

A frame is injected on the NIC's cable from the peer namespace with an
AF_PACKET socket and looked for on the TAP Linux sees, with another one.
"""
import logging
import socket
import subprocess
import sys

import pytest
import trio

from ndisproxy import netns, tap
from ndisproxy._binding import lib

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures
from .test_daemon import config_text, peer, start  # noqa: F401 - fixtures

ETHERTYPE = 0x88B5          # IEEE local experimental
PEER_MAC = "02aabbccddee"

INJECT = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
s.send(bytes.fromhex(sys.argv[2]))
"""


def frame(dst, marker):
    return bytes.fromhex(dst.replace(":", "") + PEER_MAC) + ETHERTYPE.to_bytes(2, "big") + \
        marker.encode().ljust(46, b".")


async def inject(ns, wire, data):
    await trio.run_process(["ip", "netns", "exec", ns, sys.executable, "-c", INJECT, wire,
                            data.hex()])


class Listener:
    """Frames of our ethertype arriving on ``ifname`` (in this namespace)."""

    def __init__(self, ifname):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
        self.sock.bind((ifname, ETHERTYPE))
        self.sock.setblocking(False)

    async def saw(self, marker, timeout=1.0):
        tsock = trio.socket.from_stdlib_socket(self.sock)
        with trio.move_on_after(timeout):
            while True:
                data = await tsock.recv(2048)
                if marker.encode() in data:
                    return True
        return False


@pytest.fixture
async def running(peer):  # noqa: F811
    name, wire = unique_name("npm"), unique_name("npw")
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, config_text([(name, wire, peer)]))
        await trio.to_thread.run_sync(lambda: netns.configure_in_netns(peer, wire))
        yield daemon, name, wire, peer
        nursery.cancel_scope.cancel()


async def device(daemon, name):
    return (await daemon.request(name, "stats"))["adapters"][name]["device"]


async def wait_for_device(daemon, name, predicate, timeout=5):
    with trio.fail_after(timeout):
        while not predicate(await device(daemon, name)):
            await trio.sleep(0.05)


async def test_promisc_on_delivers_frames_to_a_foreign_mac(running):
    daemon, name, wire, ns = running
    listener = Listener(name)
    await wait_for_device(daemon, name, lambda d: d["rx_filter"] & lib.NDIS_PACKET_TYPE_DIRECTED)
    before = (await device(daemon, name))["rx_filtered"]
    await inject(ns, wire, frame("02:99:99:99:99:99", "foreign-1"))
    assert not await listener.saw("foreign-1")
    assert (await device(daemon, name))["rx_filtered"] == before + 1
    subprocess.run(["ip", "link", "set", name, "promisc", "on"], check=True)
    await wait_for_device(daemon, name,
                          lambda d: d["rx_filter"] & lib.NDIS_PACKET_TYPE_PROMISCUOUS)
    await inject(ns, wire, frame("02:99:99:99:99:99", "foreign-2"))
    assert await listener.saw("foreign-2")


async def test_multicast_join_delivers_that_group_only(running):
    daemon, name, wire, ns = running
    listener = Listener(name)
    subprocess.run(["ip", "maddr", "add", "01:00:5e:11:22:33", "dev", name], check=True)
    await wait_for_device(daemon, name, lambda d: d["mc_count"] >= 1
                          and d["rx_filter"] & lib.NDIS_PACKET_TYPE_MULTICAST)
    await inject(ns, wire, frame("01:00:5e:11:22:33", "joined"))
    await inject(ns, wire, frame("01:00:5e:44:55:66", "other"))
    assert await listener.saw("joined")
    assert not await listener.saw("other", timeout=0.5)


async def test_mtu_beyond_the_driver_maximum_is_set_back_and_logged(running, caplog):
    daemon, name, _, _ = running
    caplog.set_level(logging.WARNING, logger="ndisproxy")
    subprocess.run(["ip", "link", "set", name, "mtu", "9000"], check=True)
    with trio.fail_after(5):
        while tap.link_state(name)["mtu"] != 1500:
            await trio.sleep(0.05)
    assert "MTU 9000 refused: the driver's maximum frame size is 1500" in caplog.text


async def test_mac_change_reinitialises_the_driver_with_it(running):
    daemon, name, _, _ = running
    state = daemon.adapters[name]
    old_pid = state.pid
    subprocess.run(["ip", "link", "set", name, "address", "02:11:22:33:44:55"], check=True)
    await daemon.wait_until(lambda: state.mac == "02:11:22:33:44:55"
                            and state.state == "running", 10)
    assert state.pid != old_pid and state.restarts == 0          # asked for, not a fault
    reply = await daemon.request(name, "query", oid=lib.OID_802_3_CURRENT_ADDRESS, length=6)
    assert reply["data"] == "021122334455"
    assert tap.link_state(name)["mac"] == "02:11:22:33:44:55"


async def test_link_down_in_the_device_shows_no_carrier(running):
    daemon, name, _, _ = running
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    assert tap.link_state(name)["carrier"]
    await daemon.request(name, "link", up=False)
    with trio.fail_after(5):
        while tap.link_state(name)["carrier"]:
            await trio.sleep(0.05)
    out = subprocess.run(["ip", "link", "show", name], capture_output=True, text=True).stdout
    assert "NO-CARRIER" in out
    await daemon.request(name, "link", up=True)
    with trio.fail_after(5):
        while not tap.link_state(name)["carrier"]:
            await trio.sleep(0.05)
