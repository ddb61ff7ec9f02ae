"""TAP lifecycle on real interfaces: create and mark, attach, carrier, the
vnet header in both directions, deletion rules, namespace moves.

Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for namespaces); skips otherwise
(fails with NDISPROXY_REQUIRE_NET=1).  Nothing runs on the trio thread but
the one test that shows how the daemon calls this module.
"""
import errno
import fcntl
import functools
import os
import select
import shutil
import socket
import struct
import subprocess
import time

import pytest
import trio

from ndisproxy import NdisProxyError, tap
from ndisproxy.netns import NetnsError, configure_in_netns, delete_link_in_netns, move_link

from .netfixtures import (  # noqa: F401 - fixtures are used by name
    HANDED_OUT, delete_link, link_exists, netns, netns_exists, require_net, tap_name,
    unique_name,
)

MAC = "02:4e:50:00:00:2a"
PEER = bytes.fromhex("02aabbccddee")
BROADCAST = b"\xff" * 6
ETH_P_EXPERIMENTAL = 0x88b5     # IEEE 802 local experimental ethertype
ETH_P_ARP = 0x0806


def frame(marker, dst=BROADCAST, src=PEER):
    """A 60-byte Ethernet frame carrying ``marker`` (8 bytes)."""
    body = dst + src + struct.pack(">H", ETH_P_EXPERIMENTAL) + marker
    return body + bytes(60 - len(body))


def sysfs(name, what):
    with open(f"/sys/class/net/{name}/{what}") as f:
        return f.read().strip()


def wait_for(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def read_until(fd, match, *, resend=None, timeout=3.0):
    """Read vnet-header frames from ``fd`` until match(header, frame).

    ``resend()`` is called every 100 ms without a match: Linux drops what
    is sent before its link watcher has activated the TAP's queue, a
    moment after the carrier comes on."""
    deadline = time.monotonic() + timeout
    seen = []
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], min(left, 0.1))[0]:
            if resend is not None:
                resend()
            continue
        data = os.read(fd, 65536)
        header, eth = data[:tap.VNET_HDR_LEN], data[tap.VNET_HDR_LEN:]
        if match(header, eth):
            return header, eth
        seen.append(eth[12:14].hex())
    pytest.fail(f"no matching frame within {timeout}s; saw ethertypes {seen}")


def need_ip():
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's ip")


def carrier_on(name, fd):
    """Carrier on, then wait until Linux calls the link up (operstate)."""
    tap.set_carrier(fd, True)
    assert wait_for(lambda: tap.link_state(name)["operstate"] == "up")


@pytest.fixture
def tap_fds():
    """A list for the fds a test opens; those still in it are closed after
    the test (before its TAP is deleted)."""
    fds = []
    yield fds
    for fd in fds:
        os.close(fd)


# -- validation needs no privileges ----------------------------------------------

@pytest.mark.parametrize("name", ["", "a" * 16, "a/b", "a:b", "a b", "tap%d", ".."])
def test_bad_names_are_refused_early(name):
    with pytest.raises(ValueError, match="interface name"):
        tap.create_tap(name)
    with pytest.raises(ValueError, match="interface name"):
        tap.open_tap(name)


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "00:00:00:00:00:00", "02:4e:50:00:00",
                                 "zz:4e:50:00:00:01"])
def test_bad_macs_are_refused_early(mac):
    with pytest.raises(ValueError, match="MAC"):
        tap.create_tap("npttest", mac=mac)


def test_marks_must_be_ours():
    with pytest.raises(ValueError, match="must start with 'ndisproxy:'"):
        tap.create_tap("npttest", alias_mark="mine")


def test_tap_error_is_one_line_oserror():
    exc = tap.TapError("ndis0: TUNSETIFF failed: Operation not permitted", errno.EPERM)
    assert isinstance(exc, NdisProxyError) and isinstance(exc, OSError)
    assert exc.errno == errno.EPERM
    assert str(exc) == "ndis0: TUNSETIFF failed: Operation not permitted"


# -- creation and marking ----------------------------------------------------------

def test_create_reads_back(tap_name):
    mark = f"ndisproxy:adapter-{tap_name}"
    info = tap.create_tap(tap_name, mtu=1400, mac=MAC.upper(), alias_mark=mark, owner=4321)
    assert info.name == tap_name and info.mac == MAC and info.index > 0
    assert tap.find_tap(tap_name) == info
    state = tap.link_state(tap_name)
    assert state == {"up": False, "carrier": False, "operstate": "down", "mtu": 1400,
                     "mac": MAC, "promisc": False, "allmulti": False, "alias": mark}
    flags = int(sysfs(tap_name, "tun_flags"), 16)
    want = tap.IFF_TAP | tap.IFF_NO_PI | tap.IFF_VNET_HDR | tap.IFF_PERSIST
    assert flags & want == want
    assert sysfs(tap_name, "owner") == "4321"
    assert tap.is_ours(tap_name)
    assert tap.find_marked(mark) == info
    assert (info, mark) in tap.list_ours()


def test_default_mark_is_the_name(tap_name):
    tap.create_tap(tap_name)
    assert tap.link_state(tap_name)["alias"] == "ndisproxy:" + tap_name


def test_flags_are_set_by_attach_when_pyroute2_ignores_them(tap_name, monkeypatch):
    monkeypatch.setattr(tap, "_CREATE_IFR", None)
    tap.create_tap(tap_name)
    flags = int(sysfs(tap_name, "tun_flags"), 16)
    assert flags & (tap.IFF_NO_PI | tap.IFF_VNET_HDR) == tap.IFF_NO_PI | tap.IFF_VNET_HDR


def test_create_refuses_an_existing_name(tap_name):
    tap.create_tap(tap_name, mtu=1400)
    with pytest.raises(tap.TapError, match="already exists") as caught:
        tap.create_tap(tap_name, mtu=1300)
    assert caught.value.errno == errno.EEXIST
    assert tap.link_state(tap_name)["mtu"] == 1400


def test_a_failed_setting_removes_the_new_tap(tap_name):
    with pytest.raises(tap.TapError, match=f"{tap_name}: setting the MTU to 10 failed"):
        tap.create_tap(tap_name, mtu=10)
    assert not link_exists(tap_name)


def test_a_setting_that_does_not_stick_is_named(tap_name, monkeypatch):
    from pyroute2 import IPRoute

    class IgnoresMtu:
        """IPRoute as if it did not know the keyword: drops it silently."""
        def __init__(self):
            self._ipr = IPRoute()

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self._ipr.close()

        def __getattr__(self, name):
            return getattr(self._ipr, name)

        def link(self, command, **kwargs):
            if command == "set":
                kwargs.pop("mtu", None)
            return self._ipr.link(command, **kwargs)

    monkeypatch.setattr(tap, "_ipr", IgnoresMtu)
    with pytest.raises(tap.TapError, match=f"^{tap_name}: MTU did not stick: "
                                           f"asked 1400, reads 1500$"):
        tap.create_tap(tap_name, mtu=1400)
    assert not link_exists(tap_name)


# -- attach and carrier -------------------------------------------------------------

def test_no_fd_means_no_carrier(tap_name):
    tap.create_tap(tap_name)
    tap.set_up(tap_name, True)
    state = tap.link_state(tap_name)
    assert state["up"] and not state["carrier"]


def test_attach_starts_with_carrier_off(tap_name, tap_fds):
    tap.create_tap(tap_name)
    tap.set_up(tap_name, True)
    fd = tap.open_tap(tap_name)
    tap_fds.append(fd)
    assert os.get_blocking(fd) is False
    assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    size = struct.unpack("i", fcntl.ioctl(fd, tap.TUNGETVNETHDRSZ, bytes(4)))[0]
    assert size == tap.VNET_HDR_LEN
    tap.set_offload(fd, 0)
    assert not tap.link_state(tap_name)["carrier"]

    tap.set_carrier(fd, True)
    assert tap.link_state(tap_name)["carrier"]
    tap.set_carrier(fd, False)
    assert not tap.link_state(tap_name)["carrier"]
    tap.set_carrier(fd, True)
    os.close(fd)
    tap_fds.remove(fd)
    assert not tap.link_state(tap_name)["carrier"]
    assert tap.find_tap(tap_name) is not None        # persistent: outlives its fd


def test_reattach_after_close(tap_name, tap_fds):
    tap.create_tap(tap_name)
    os.close(tap.open_tap(tap_name))
    tap_fds.append(tap.open_tap(tap_name))
    assert not tap.link_state(tap_name)["carrier"]


def test_open_does_not_create(tap_name):
    with pytest.raises(tap.TapError, match=f"{tap_name}: no such TAP") as caught:
        tap.open_tap(tap_name)
    assert caught.value.errno == errno.ENODEV
    assert not link_exists(tap_name)


def test_open_never_leaves_a_transient_tap(tap_name, monkeypatch):
    # As if the TAP vanished between open_tap's lookup and its TUNSETIFF.
    monkeypatch.setattr(tap.socket, "if_nametoindex", lambda name: 1)
    with pytest.raises(tap.TapError, match=f"{tap_name}: no such TAP"):
        tap.open_tap(tap_name)
    assert not link_exists(tap_name)


def test_second_attach_is_busy(tap_name, tap_fds):
    tap.create_tap(tap_name)
    tap_fds.append(tap.open_tap(tap_name))
    with pytest.raises(tap.TapError) as caught:
        tap.open_tap(tap_name)
    assert str(caught.value) == (f"{tap_name}: TUNSETIFF failed: Device or resource busy "
                                 f"(already attached to another fd)")


def test_ioctl_on_an_unattached_fd_names_the_fd(require_net):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        with pytest.raises(tap.TapError, match=rf"^fd {fd}: TUNSETCARRIER failed: .*"
                                               r"\(fd is not attached to a TAP\)$"):
            tap.set_carrier(fd, True)
    finally:
        os.close(fd)


def test_owner_can_be_changed_on_an_attached_fd(tap_name, tap_fds):
    tap.create_tap(tap_name)
    fd = tap.open_tap(tap_name)
    tap_fds.append(fd)
    tap.set_owner(fd, 4242)
    assert sysfs(tap_name, "owner") == "4242"


# -- frames both ways, with the vnet header --------------------------------------------

def test_frames_written_to_the_fd_are_received_by_linux(tap_name, tap_fds):
    tap.create_tap(tap_name)
    tap.set_up(tap_name, True)
    fd = tap.open_tap(tap_name)
    tap_fds.append(fd)
    tap.set_offload(fd, 0)
    carrier_on(tap_name, fd)
    before = int(sysfs(tap_name, "statistics/rx_packets"))
    for i in range(3):
        data = tap.VNET_HDR_ZERO + frame(b"ndisrx%02d" % i)
        assert os.write(fd, data) == len(data)
    assert wait_for(lambda: int(sysfs(tap_name, "statistics/rx_packets")) >= before + 3)


def test_frames_sent_by_linux_are_read_from_the_fd(tap_name, tap_fds):
    tap.create_tap(tap_name)
    tap.set_up(tap_name, True)
    fd = tap.open_tap(tap_name)
    tap_fds.append(fd)
    tap.set_offload(fd, 0)
    carrier_on(tap_name, fd)
    sent = frame(b"ndistx42")
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
        raw.bind((tap_name, ETH_P_EXPERIMENTAL))
        raw.send(sent)
        header, eth = read_until(fd, lambda h, e: e == sent, resend=lambda: raw.send(sent))
    flags, gso_type = header[0], header[1]
    assert flags & tap.VNET_HDR_F_NEEDS_CSUM == 0 and gso_type == tap.VNET_HDR_GSO_NONE
    assert header[2:] == bytes(8)
    assert eth == sent


def test_set_mac_while_up(tap_name):
    tap.create_tap(tap_name)
    tap.set_up(tap_name, True)
    tap.set_mac(tap_name, "02:4E:50:00:00:77")
    assert tap.link_state(tap_name)["mac"] == "02:4e:50:00:00:77"
    with pytest.raises(ValueError, match="unicast"):
        tap.set_mac(tap_name, "03:00:00:00:00:01")


def test_link_state_reports_promisc_and_allmulti(tap_name):
    need_ip()
    tap.create_tap(tap_name)
    subprocess.run(["ip", "link", "set", tap_name, "promisc", "on", "allmulticast", "on"],
                   check=True)
    state = tap.link_state(tap_name)
    assert state["promisc"] and state["allmulti"]


# -- ownership and deletion ------------------------------------------------------------

def add_non_tap(name):
    """A link that is not a TAP: a dummy, or an ifb where the kernel has no
    dummy driver.  Returns its kind."""
    from pyroute2 import IPRoute, NetlinkError
    with IPRoute() as ipr:
        for kind in ("dummy", "ifb"):
            try:
                ipr.link("add", ifname=name, kind=kind)
            except NetlinkError as exc:
                if exc.code == errno.EOPNOTSUPP:
                    continue
                raise
            ipr.link("set", index=ipr.link_lookup(ifname=name)[0], ifalias="ndisproxy:fake")
            return kind
    pytest.skip("the kernel has neither the dummy nor the ifb driver")


def test_a_non_tap_is_not_ours_and_not_deleted(tap_name):
    kind = add_non_tap(tap_name)
    assert not tap.is_ours(tap_name)        # even with a mark in its alias
    with pytest.raises(tap.TapError, match=rf"{tap_name}: not deleting: not a TAP \({kind}\)"):
        tap.delete_tap(tap_name)
    with pytest.raises(tap.TapError, match="not a TAP"):
        tap.find_tap(tap_name)
    with pytest.raises(tap.TapError, match="TUNSETIFF failed: Invalid argument"):
        tap.open_tap(tap_name)
    assert link_exists(tap_name)


def test_a_precreated_tap_is_usable_but_not_deleted(tap_name, tap_fds):
    from pyroute2 import IPRoute
    with IPRoute() as ipr:          # like 'ip tuntap add mode tap NAME'
        ipr.link("add", ifname=tap_name, kind="tuntap", mode="tap")
    assert not tap.is_ours(tap_name)
    assert tap.find_tap(tap_name) is not None
    tap_fds.append(tap.open_tap(tap_name))
    with pytest.raises(tap.TapError, match="not ndisproxy's") as caught:
        tap.delete_tap(tap_name)
    assert caught.value.errno == errno.EPERM
    assert link_exists(tap_name)


def test_delete_ours_even_while_attached(tap_name, tap_fds):
    tap.create_tap(tap_name)
    fd = tap.open_tap(tap_name)
    tap_fds.append(fd)
    tap.delete_tap(tap_name)
    assert not link_exists(tap_name)
    with pytest.raises(OSError):
        os.write(fd, tap.VNET_HDR_ZERO + frame(b"ndisgone"))
    tap.delete_tap(tap_name, missing_ok=True)
    with pytest.raises(tap.TapError, match="no such interface"):
        tap.delete_tap(tap_name)


def test_missing_interfaces():
    name = unique_name()
    assert tap.find_tap(name) is None
    assert not tap.is_ours(name)
    with pytest.raises(tap.TapError, match=f"{name}: no such interface"):
        tap.link_state(name)


# -- namespaces ------------------------------------------------------------------------

def test_move_into_netns_and_configure(tap_name, netns, tap_fds):
    need_ip()
    tap.create_tap(tap_name, mac=MAC)
    fd = tap.open_tap(tap_name)         # attach here, before the move
    tap_fds.append(fd)
    tap.set_offload(fd, 0)
    move_link(tap_name, netns)
    assert tap.find_tap(tap_name) is None
    configure_in_netns(netns, tap_name, addresses=["198.51.100.1/24", "2001:db8:4e50::1/64"])

    shown = subprocess.run(["ip", "-n", netns, "addr", "show", "dev", tap_name],
                           check=True, capture_output=True, text=True).stdout
    assert "inet 198.51.100.1/24" in shown
    assert "inet6 2001:db8:4e50::1/64" in shown
    assert "fe80:" not in shown                     # addr_gen_mode none
    link = subprocess.run(["ip", "-n", netns, "-d", "link", "show", "dev", tap_name],
                          check=True, capture_output=True, text=True).stdout
    assert f"alias ndisproxy:{tap_name}" in link and "addrgenmode none" in link

    # The fd still works across the move: an IPv4 send in the namespace
    # resolves 198.51.100.2 with an ARP request that comes out of the fd.
    tap.set_carrier(fd, True)
    from pyroute2.netns import create_socket
    arp_for = socket.inet_aton("198.51.100.2")
    with create_socket(netns, socket.AF_INET, socket.SOCK_DGRAM, flags=0) as udp:
        def send():
            udp.sendto(b"ndis", ("198.51.100.2", 9))
        send()
        header, eth = read_until(fd, lambda h, e: e[12:14] == struct.pack(">H", ETH_P_ARP)
                                 and e[14 + 24:14 + 28] == arp_for, resend=send)
    assert eth[:6] == BROADCAST and eth[6:12] == bytes.fromhex(MAC.replace(":", ""))
    assert eth[14 + 14:14 + 18] == socket.inet_aton("198.51.100.1")     # sender IP
    assert header[1] == tap.VNET_HDR_GSO_NONE


def test_delete_in_netns_only_ours(tap_name, netns):
    need_ip()
    other = unique_name()
    try:
        tap.create_tap(tap_name)
        add_non_tap(other)
        move_link(tap_name, netns)
        move_link(other, netns)
        with pytest.raises(NetnsError, match=f"^{other} in netns {netns}: not deleting"):
            delete_link_in_netns(netns, other)
        delete_link_in_netns(netns, tap_name)
        shown = subprocess.run(["ip", "-n", netns, "-o", "link"], check=True,
                               capture_output=True, text=True).stdout
        assert other in shown and tap_name not in shown
        delete_link_in_netns(netns, tap_name, missing_ok=True)
        with pytest.raises(NetnsError, match="no such interface") as caught:
            delete_link_in_netns(netns, tap_name)
        assert caught.value.errno == errno.ENODEV
    finally:
        delete_link(other)              # if it never moved; the netns takes the rest


def test_move_link_missing(netns):
    name = unique_name()
    with pytest.raises(OSError, match=f"{name}: no such interface"):
        move_link(name, netns)


# -- from trio: always through a thread ---------------------------------------------------

async def test_from_trio_through_a_thread(tap_name):
    info = await trio.to_thread.run_sync(functools.partial(tap.create_tap, tap_name, mtu=1300))
    state = await trio.to_thread.run_sync(tap.link_state, tap_name)
    assert state["mtu"] == 1300 and state["alias"] == "ndisproxy:" + tap_name
    await trio.to_thread.run_sync(tap.delete_tap, info.name)


# -- last: nothing of ours is left --------------------------------------------------------

def test_zz_cleanup_left_nothing(require_net):
    assert HANDED_OUT, "run with the other tests of this module"
    left = sorted(n for n in HANDED_OUT if link_exists(n) or netns_exists(n))
    assert left == []
    if shutil.which("ip"):
        shown = subprocess.run(["ip", "-o", "link", "show"], check=True, capture_output=True,
                               text=True).stdout + subprocess.run(
            ["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
        assert not [n for n in HANDED_OUT if n in shown]
