"""Fuzzing the VXLAN wire: datagrams into the C pump, frames out of the device.

A plain UDP socket on the loopback is the far end of the NIC's cable
(csrc/pump.c reads, csrc/device.c sends).  Every datagram is either
decapsulated and passed up as the NIC's filter says, or dropped and counted
by reason (truncated, flags without I, another VNI, oversize); every frame
Linux sends leaves as one datagram of header and padded frame.  Also the
endpoint handling of ndisproxy.vxlan and set_wire_vxlan()'s checks.
"""
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndisproxy import vxlan

from .fuzzing import (
    FRAME_BUF, MAC, PEER, VNET_HDR, Rig, budget, corpus_ids, ethernet_frames, padded,
    tap_messages,
)

pytestmark = pytest.mark.fuzz("vxlan: datagrams and encapsulation")

VNI = 0x2A2A2A
COUNTERS = ("vxlan_rx_truncated", "vxlan_rx_bad_flags", "vxlan_rx_bad_vni",
            "vxlan_rx_oversize", "rx_filtered")


def header(flags=0x08, vni=VNI, reserved=b"\0\0\0\0"):
    return bytes([flags]) + reserved[:3] + vni.to_bytes(3, "big") + reserved[3:]


@pytest.fixture
def far():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
def rig(far):
    rig = Rig(vxlan=(VNI, far))
    yield rig
    violations, leaks = rig.close()
    assert violations == [] and leaks == []


def fate(rig, datagram):
    """The counter a datagram must land in, or "up" if Linux gets its frame."""
    if len(datagram) < 8 + 14:
        return "vxlan_rx_truncated"
    if not datagram[0] & 0x08:
        return "vxlan_rx_bad_flags"
    if int.from_bytes(datagram[4:7], "big") != VNI:
        return "vxlan_rx_bad_vni"
    if len(datagram) > FRAME_BUF:
        return "vxlan_rx_oversize"
    return "up" if rig.accepts(datagram[8:]) else "rx_filtered"


def check_datagrams(rig, far, datagrams):
    before = rig.adapter.device_counters()
    for datagram in datagrams:
        far.sendto(datagram, rig.address)
    fates = [fate(rig, d) for d in datagrams]
    want = {name: fates.count(name) for name in COUNTERS}
    deadline = time.monotonic() + 5
    while True:
        rig.pump()
        after = rig.adapter.device_counters()
        got = {name: after[name] - before[name] for name in COUNTERS}
        up = rig.drain(rig.linux)
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.001)
    assert got == want
    assert up == [bytes(VNET_HDR) + d[8:] for d, f in zip(datagrams, fates) if f == "up"]
    assert rig.state.wire_error == 0
    still_works(rig, far)


def still_works(rig, far):
    frame = MAC + PEER + b"\x88\xb5" + b"canary".ljust(46, b".")
    far.sendto(header() + frame, rig.address)
    rig.linux.send(bytes(VNET_HDR) + frame)
    deadline = time.monotonic() + 5
    up, out = [], []
    while (not up or not out) and time.monotonic() < deadline:
        rig.pump()
        up += rig.drain(rig.linux)
        out += rig.drain(far)
    assert up == [bytes(VNET_HDR) + frame] and out == [header() + frame]


_FLAGS = st.sampled_from((0x08, 0x08, 0x0C, 0x88, 0x00, 0x80, 0xFF)) | st.integers(0, 255)
_VNIS = st.sampled_from((VNI, VNI, VNI, VNI + 1, VNI << 8 & 0xFFFFFF, 0)) \
    | st.integers(0, 0xFFFFFF)
datagrams = st.one_of(
    st.binary(max_size=8 + 14),                                      # truncated
    st.builds(lambda flags, vni, reserved, frame: header(flags, vni, reserved) + frame,
              _FLAGS, _VNIS, st.binary(min_size=4, max_size=4), ethernet_frames()),
    st.builds(lambda frame: header() + frame, ethernet_frames()),
)

NAMES, DATAGRAMS = corpus_ids("vxlan")


@pytest.mark.parametrize("datagram", DATAGRAMS, ids=NAMES)
def test_corpus(rig, far, datagram):
    check_datagrams(rig, far, [datagram])


@budget(150)
@given(batch=st.lists(datagrams, min_size=1, max_size=10))
def test_datagrams_are_delivered_or_counted(rig, far, fuzzed, batch):
    fuzzed()
    check_datagrams(rig, far, batch)


@budget(80)
@given(messages=st.lists(tap_messages(), min_size=1, max_size=10))
def test_frames_from_linux_leave_as_one_datagram_each(rig, far, fuzzed, messages):
    fuzzed()
    for message in messages:
        rig.linux.send(message)
    frames = [m[VNET_HDR:] for m in messages if len(m) >= VNET_HDR]
    want = [header() + padded(f) for f in frames if 14 <= len(f) <= rig.max_frame]
    out = []
    deadline = time.monotonic() + 5
    while len(out) < len(want) and time.monotonic() < deadline:
        rig.pump()
        out += rig.drain(far)
    assert out == want
    assert rig.adapter.device_counters()["wire_tx_dropped"] == 0
    still_works(rig, far)


_ADDRESSES = st.sampled_from(("192.0.2.1", "2001:db8::1", "::", "0.0.0.0", "fe80::1%1",
                              "fe80::1%nosuch0", "256.0.0.1", "", "::ffff:192.0.2.1")) \
    | st.text(max_size=20) | st.integers(-1, 2**129) | st.binary(max_size=17)


@budget(150)
@given(address=_ADDRESSES, port=st.integers(-2, 70000) | st.text(max_size=6))
def test_endpoints_give_a_sockaddr_or_a_value_error(fuzzed, address, port):
    fuzzed()
    try:
        raw = vxlan.sockaddr((address, port))
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    except OSError as exc:                     # an IPv6 scope naming no interface
        assert "%" in str(address), exc
        return
    assert len(raw) in (16, 28) and int(port) == int.from_bytes(raw[2:4], "big")
    assert vxlan.show((address, port)).endswith(f":{int(port)}")


@budget(100)
@given(vni=st.integers(-1, 2**25), remote=st.binary(max_size=40) | st.none()
       | st.tuples(_ADDRESSES, st.integers(0, 65535)))
def test_set_wire_vxlan_takes_a_sockaddr_or_refuses_it(rig, fuzzed, vni, remote):
    fuzzed()
    try:
        rig.adapter.set_wire_vxlan(rig.state.wire_fd, vni, remote)
    except (ValueError, OSError) as exc:
        assert "\n" not in str(exc)
    finally:
        # Back to the test's remote: no frame ever goes to a fuzzed address.
        rig.adapter.set_wire_vxlan(rig.state.wire_fd, VNI, rig.far_address)
