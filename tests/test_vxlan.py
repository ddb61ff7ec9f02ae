"""The VXLAN wire: the mock NIC's cable is a UDP socket (RFC 7348).

Without privileges: the socket, the sockaddr layout and the datagram format
against a plain UDP socket on the loopback.  With root: the cable's far end
is a Linux kernel vxlan device in a peer namespace, reached over a veth
pair, and Linux on both ends pings and moves data through
TAP -> host process -> mocknic.sys -> mock NIC -> VXLAN -> vx0 and back.

The underlay is 203.0.113.252/30, not 192.0.2.0/24: on these machines the
root namespace's own uplink is 192.0.2.2/24 with its gateway at 192.0.2.1.
"""
import contextlib
import fcntl
import ipaddress
import os
import socket
import struct
import subprocess
import sys
import textwrap

import pytest
import trio

from ndisproxy import DriverImage, drivers, netns, tap, vxlan
from ndisproxy.host import open_adapter

from .netfixtures import delete_link, link_exists, require_net, unique_name  # noqa: F401
from .test_daemon import address_host_side, ping, start, transfer

VNI = 42
ETHERTYPE = 0x88B5          # IEEE local experimental
PEER_MAC = "02aabbccddee"
HOST_V4, PEER_V4 = "198.51.100.1", "198.51.100.2"
HOST_V6, PEER_V6 = "2001:db8:6::1", "2001:db8:6::2"
# Underlay: (our end, the kernel vxlan's end, prefix length), by IP version.
UNDERLAY = {4: ("203.0.113.253", "203.0.113.254", 30),
            6: ("2001:db8:100::1", "2001:db8:100::2", 64)}
VETH_MTU = 1500


def header(vni=VNI, flags=0x08, reserved=0):
    """An RFC 7348 header; ``reserved`` fills the three reserved bytes."""
    return bytes([flags, reserved, reserved, reserved]) + vni.to_bytes(3, "big") + \
        bytes([reserved])


def frame(marker, dst="ffffffffffff"):
    return bytes.fromhex(dst + PEER_MAC) + ETHERTYPE.to_bytes(2, "big") + \
        marker.encode().ljust(46, b".")


def malformed():
    """(datagram, the counter that must count it) for each way to be wrong."""
    return [
        (b"", "vxlan_rx_truncated"),                                # empty
        (b"\x08\x00\x00\x00", "vxlan_rx_truncated"),                # under 8 bytes
        (header(), "vxlan_rx_truncated"),                           # header only
        (header() + frame("runt")[:13], "vxlan_rx_truncated"),      # no Ethernet header
        (header(flags=0x00) + frame("bad-flags"), "vxlan_rx_bad_flags"),
        (header(flags=0x80) + frame("bad-flags2"), "vxlan_rx_bad_flags"),
        (header(vni=VNI + 1) + frame("bad-vni"), "vxlan_rx_bad_vni"),
        (header(vni=VNI << 8 & 0xFFFFFF) + frame("bad-vni2"), "vxlan_rx_bad_vni"),
        (header() + frame("oversize").ljust(9400, b"."), "vxlan_rx_oversize"),
    ]


# Valid despite odd bits: the RFC says receivers ignore reserved fields.
TOLERATED = [header(flags=0x0C, reserved=0xFF) + frame("reserved-bits"),
             header() + frame("good")]
COUNTERS = ("vxlan_rx_truncated", "vxlan_rx_bad_flags", "vxlan_rx_bad_vni",
            "vxlan_rx_oversize")


def expected_drops():
    counts = dict.fromkeys(COUNTERS, 0)
    for _, counter in malformed():
        counts[counter] += 1
    return counts


# ---- without privileges --------------------------------------------------------------


def test_sockaddr_is_the_kernels_layout():
    v4 = vxlan.sockaddr((ipaddress.ip_address("203.0.113.9"), 4789))
    assert v4 == struct.pack("=H", socket.AF_INET) + b"\x12\xb5" + bytes([203, 0, 113, 9]) \
        + bytes(8)
    v6 = vxlan.sockaddr(("2001:db8::9", 8472))
    assert len(v6) == 28 and v6[:4] == struct.pack("=H", socket.AF_INET6) + b"\x21\x18"
    assert v6[8:24] == ipaddress.ip_address("2001:db8::9").packed and v6[24:] == bytes(4)
    assert vxlan.show(("2001:db8::9", 4789)) == "[2001:db8::9]:4789"


def test_the_socket_is_bound_unconnected_nonblocking_and_cloexec():
    fd = vxlan.open_vxlan_socket(("127.0.0.1", 0), ("127.0.0.1", 4789))
    sock = socket.socket(fileno=fd)
    try:
        assert sock.type == socket.SOCK_DGRAM and sock.getsockname()[0] == "127.0.0.1"
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        with pytest.raises(OSError):
            sock.getpeername()                      # replies come from any source port
        assert os.get_blocking(fd) is False
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        sock.close()


def test_a_bind_failure_names_the_endpoint():
    with pytest.raises(vxlan.VxlanError, match=r"203\.0\.113\.77:4789: cannot bind") as info:
        vxlan.open_vxlan_socket(("203.0.113.77", 4789), ("203.0.113.78", 4789))
    assert isinstance(info.value, OSError)
    with pytest.raises(ValueError, match="two address families"):
        vxlan.open_vxlan_socket(("127.0.0.1", 0), ("::1", 4789))


def test_set_wire_vxlan_refuses_what_the_device_cannot_use():
    with DriverImage.load(drivers.path("mocknic")) as image:
        adapter = image.create_adapter()
        with pytest.raises(ValueError, match="no mock NIC"):
            adapter.set_wire_vxlan(5, VNI, ("127.0.0.1", 4789))
        adapter.attach_mocknic("02:4e:50:00:00:01")
        with pytest.raises(ValueError, match="outside 0..16777215"):
            adapter.set_wire_vxlan(5, 1 << 24, ("127.0.0.1", 4789))
        with pytest.raises(ValueError, match="sockaddr"):
            adapter.set_wire_vxlan(5, VNI, b"\x02\x00\x12\xb5")
        with pytest.raises(ValueError, match="negative fd"):
            adapter.set_wire_vxlan(-1, VNI, ("127.0.0.1", 4789))
        adapter.set_wire_vxlan(5, VNI, ("::1", 4789))       # nothing sent yet: fd unused
        adapter.set_wire_vxlan(5, VNI, None)                # a connected socket


@pytest.mark.parametrize("loopback", ["127.0.0.1", "::1"])
async def test_datagrams_on_the_loopback(loopback):
    """Encapsulation, decapsulation, and every malformed datagram dropped
    and counted by reason, against a plain UDP socket as the far end."""
    family = socket.AF_INET6 if ":" in loopback else socket.AF_INET
    far = socket.socket(family, socket.SOCK_DGRAM)
    try:
        far.bind((loopback, 0))
        far.settimeout(5)
        fd = vxlan.open_vxlan_socket((loopback, 0), (loopback, far.getsockname()[1]))
        ours = socket.socket(fileno=os.dup(fd))
        local = ours.getsockname()[:2]
        ours.close()
        try:
            async with open_adapter("mocknic", vxlan=(fd, VNI, (loopback,
                                                                far.getsockname()[1]))) as nic:
                sent = frame("to-the-wire")
                await nic.send([sent])
                datagram, source = await trio.to_thread.run_sync(far.recvfrom, 65536)
                assert source[:2] == local
                assert datagram == header() + sent          # 60 bytes: no padding needed

                await nic.send([frame("short")[:20]])       # padded to 60 on the wire
                datagram, _ = await trio.to_thread.run_sync(far.recvfrom, 65536)
                assert len(datagram) == 8 + 60 and datagram[8 + 20:] == bytes(40)

                before = nic.adapter.device_counters()
                for datagram, _ in malformed():
                    far.sendto(datagram, local)
                for datagram in TOLERATED:
                    far.sendto(datagram, local)
                got = []
                with trio.fail_after(5):
                    while len(got) < len(TOLERATED):
                        got.append(await nic.receive())
                assert got == [d[8:] for d in TOLERATED]    # in order, nothing else
                after = nic.adapter.device_counters()
                for counter, count in expected_drops().items():
                    assert after[counter] - before[counter] == count, counter
                assert after["wire_tx_dropped"] == 0 and after["rx_filtered"] == 0
                assert nic.pump_state.wire_error == 0
            assert nic.violations_at_halt == [] and nic.leaks == []
        finally:
            os.close(fd)
    finally:
        far.close()


# ---- a kernel vxlan device in a peer namespace ----------------------------------------


def ip(*args, ns=None):
    cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"{' '.join(cmd)}: {result.stderr.strip()}"
    return result.stdout


# ethtool -K IFNAME tx off, without ethtool: the legacy ETHTOOL_STXCSUM ioctl.
TX_CSUM_OFF = """
import array, fcntl, socket, struct, sys
value = array.array("B", struct.pack("II", 0x17, 0))            # ETHTOOL_STXCSUM, off
ifreq = struct.pack("16sP", sys.argv[1].encode(), value.buffer_info()[0]).ljust(40, b"\\0")
sock = socket.socket()
fcntl.ioctl(sock.fileno(), 0x8946, ifreq)                         # SIOCETHTOOL
"""


def build_underlay(version, port, peer, veth, veth_peer):
    """veth between here and ``peer``; vx0 in ``peer``; the overlay's far end."""
    ours, theirs, prefix = UNDERLAY[version]
    nodad = ["nodad"] if version == 6 else []
    overlay_mtu = VETH_MTU - vxlan.OVERHEAD[version]
    ip("link", "add", veth, "mtu", str(VETH_MTU), "type", "veth", "peer", "name", veth_peer,
       "netns", peer)
    ip("addr", "add", f"{ours}/{prefix}", "dev", veth, *nodad)
    ip("link", "set", veth, "up")
    ip("link", "set", "lo", "up", ns=peer)
    ip("addr", "add", f"{theirs}/{prefix}", "dev", veth_peer, *nodad, ns=peer)
    ip("link", "set", veth_peer, "up", ns=peer)
    ip("link", "add", "vx0", "type", "vxlan", "id", str(VNI), "local", theirs, "remote", ours,
       "dstport", str(port), ns=peer)
    ip("link", "set", "vx0", "mtu", str(overlay_mtu), ns=peer)
    # Over a veth the kernel leaves the inner TCP/UDP checksum to an offload
    # that never happens: a user-space endpoint (ours) would get it partial.
    subprocess.run(["ip", "netns", "exec", peer, sys.executable, "-c", TX_CSUM_OFF, "vx0"],
                   check=True, timeout=30)
    ip("addr", "add", f"{PEER_V4}/24", "dev", "vx0", ns=peer)
    ip("addr", "add", f"{PEER_V6}/64", "dev", "vx0", "nodad", ns=peer)
    ip("link", "set", "vx0", "up", ns=peer)
    return overlay_mtu


def endpoint(address, port):
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def config_text(name, version, port, mtu, isolation):
    ours, theirs, _ = UNDERLAY[version]
    return textwrap.dedent(f"""
        [[adapter]]
        name = "{name}"
        driver = "mocknic"
        isolation = "{isolation}"
        mtu = {mtu}
        [adapter.wire]
        kind = "vxlan"
        local = "{endpoint(ours, port)}"
        remote = "{endpoint(theirs, port)}"
        vni = {VNI}
    """)


SEND = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
for data in sys.argv[3:]:
    s.sendto(bytes.fromhex(data), (sys.argv[1], int(sys.argv[2])))
"""


class Listener:
    """Frames of our ethertype that the pump writes to ``ifname``."""

    def __init__(self, ifname):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
        self.sock.bind((ifname, ETHERTYPE))
        self.sock.setblocking(False)

    async def frames(self, until, timeout=5.0):
        """Every frame seen until one holds ``until`` (then a little longer)."""
        seen = []
        tsock = trio.socket.from_stdlib_socket(self.sock)
        with trio.move_on_after(timeout):
            while not any(until.encode() in f for f in seen):
                seen.append(await tsock.recv(65536))
        with trio.move_on_after(0.2):
            while True:
                seen.append(await tsock.recv(65536))
        return seen

    def close(self):
        self.sock.close()


async def device_counters(daemon, name):
    return (await daemon.request(name, "stats"))["adapters"][name]["device"]


CASES = [pytest.param(4, 4789, "process", id="ipv4-4789"),
         pytest.param(4, 8472, "inprocess", id="ipv4-8472-inprocess"),
         pytest.param(6, 4789, "process", id="ipv6-4789")]


@pytest.mark.parametrize("version, port, isolation", CASES)
async def test_a_kernel_vxlan_peer(require_net, version, port, isolation):  # noqa: F811
    peer, name = unique_name("npz"), unique_name("npv")
    veth, veth_peer = unique_name("npu"), unique_name("npq")
    await trio.to_thread.run_sync(netns.create_netns, peer)
    try:
        mtu = await trio.to_thread.run_sync(build_underlay, version, port, peer, veth, veth_peer)
        async with trio.open_nursery() as nursery:
            daemon = await start(nursery, config_text(name, version, port, mtu, isolation))
            await trio.to_thread.run_sync(address_host_side, name, f"{HOST_V4}/24",
                                          f"{HOST_V6}/64")
            with open(f"/sys/class/net/{name}/mtu") as shown:
                assert int(shown.read()) == mtu

            v4 = await trio.to_thread.run_sync(ping, PEER_V4)
            assert v4.returncode == 0, v4.stdout + v4.stderr
            v6 = await trio.to_thread.run_sync(ping, PEER_V6)      # neighbour discovery too
            assert v6.returncode == 0, v6.stdout + v6.stderr
            # Full-size frames, unfragmented inside: the overhead is as documented.
            full = await trio.to_thread.run_sync(lambda: subprocess.run(
                ["ping", "-c", "3", "-i", "0.05", "-W", "2", "-M", "do", "-s", str(mtu - 28),
                 PEER_V4], capture_output=True, text=True, timeout=30))
            assert full.returncode == 0, full.stdout + full.stderr
            await transfer(None, peer, PEER_V4)                            # host -> peer
            await transfer(peer, None, HOST_V6)                            # peer -> host

            # Malformed datagrams from the peer's namespace: counted, dropped.
            before = await device_counters(daemon, name)
            listener = Listener(name)
            try:
                ours = UNDERLAY[version][0]
                await trio.run_process(
                    ["ip", "netns", "exec", peer, sys.executable, "-c", SEND, ours, str(port)]
                    + [d.hex() for d, _ in malformed()] + [d.hex() for d in TOLERATED])
                seen = await listener.frames(until="good")
            finally:
                listener.close()
            markers = [f[14:].split(b".")[0].decode() for f in seen]
            assert markers == ["reserved-bits", "good"], markers
            after = await device_counters(daemon, name)
            for counter, count in expected_drops().items():
                assert after[counter] - before[counter] == count, (counter, before, after)

            again = await trio.to_thread.run_sync(ping, PEER_V4)       # still carrying traffic
            assert again.returncode == 0, again.stdout + again.stderr
            stats = (await daemon.request(name, "stats"))["adapters"][name]
            assert stats["violations"] == []
            # what went out left as large sends (about 64 KB each), cut by the NIC
            assert stats["pump"]["wire_in"] > 10_000 and stats["pump"]["tap_in"] > 500
            nursery.cancel_scope.cancel()
        assert tap.find_tap(name) is None                              # removed at stop
    finally:
        with contextlib.suppress(Exception):
            await trio.to_thread.run_sync(lambda: netns.remove_netns(peer, missing_ok=True))
        await trio.to_thread.run_sync(delete_link, veth)
        if tap.find_tap(name) is not None:
            await trio.to_thread.run_sync(lambda: tap.delete_tap(name, missing_ok=True))
        assert peer not in netns.list_netns(), f"netns {peer} survived"
        assert not link_exists(veth), f"veth {veth} survived"
        assert not link_exists(name), f"TAP {name} survived"
