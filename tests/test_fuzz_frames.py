"""Fuzzing frames through the mock driver, both ways (docs/fuzzing.md).

Linux -> TAP -> C pump -> MiniportSendPackets -> mock NIC -> cable, and
cable -> mock NIC -> ISR/DPC -> indication -> C pump -> TAP, with garbage
virtio_net_hdrs, runts, oversize frames and odd VLAN tags; and the same
frames through the Python API (Adapter.send, Adapter.wire_receive).  Every
frame either arrives intact (padded to 60 on the wire) or is dropped and
counted by reason; the adapter keeps working and halts clean.
"""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ndisproxy import FrameError

from .fuzzing import (
    MAC, PEER, VNET_HDR, Rig, budget, corpus_ids, ethernet_frames, one_line, padded,
    tap_messages,
)

pytestmark = pytest.mark.fuzz("frames: Linux <-> driver <-> cable")

CANARY = MAC + PEER + b"\x88\xb5" + b"canary".ljust(46, b".")


@pytest.fixture
def rig():
    rig = Rig()
    yield rig
    violations, leaks = rig.close()
    assert violations == [] and leaks == []


def still_works(rig):
    """One good frame each way still gets through."""
    rig.linux.send(bytes(VNET_HDR) + CANARY)
    rig.cable.send(bytes(VNET_HDR) + CANARY)
    rig.pump()
    assert rig.drain(rig.cable) == [bytes(VNET_HDR) + CANARY]
    assert rig.drain(rig.linux) == [bytes(VNET_HDR) + CANARY]


def through(rig, sock, messages, counters):
    """Send ``messages`` on ``sock`` and pump: (the frames they carry, and
    how ``counters()`` changed)."""
    before = counters()
    for message in messages:
        sock.send(message)
    rig.pump()
    after = counters()
    assert rig.state.tap_error == 0 and rig.state.wire_error == 0
    return ([m[VNET_HDR:] for m in messages if len(m) >= VNET_HDR],
            {name: after[name] - before[name] for name in after})


def check_linux_to_cable(rig, messages):
    """TAP reads: each frame reaches the cable whole, or is counted."""
    frames, counted = through(rig, rig.linux, messages, lambda: {
        "runts": rig.state.tap_runts, **{k: v for k, v in rig.adapter.stats().items()
                                         if k.startswith("tx_refused")}})
    sendable = [f for f in frames if 14 <= len(f) <= rig.max_frame]
    assert rig.drain(rig.cable) == [bytes(VNET_HDR) + padded(f) for f in sendable]
    assert rig.drain(rig.linux) == []
    assert counted == {"runts": len(messages) - len(frames),
                       "tx_refused_short": sum(len(f) < 14 for f in frames),
                       "tx_refused_long": sum(len(f) > rig.max_frame for f in frames)}
    still_works(rig)


def check_cable_to_linux(rig, messages):
    """Cable reads: each frame the NIC's filter passes reaches Linux whole;
    the rest are counted as runts or filtered."""
    frames, counted = through(rig, rig.cable, messages, lambda: {
        "runts": rig.state.wire_runts, **{k: v for k, v in rig.adapter.device_counters().items()
                                          if k in ("rx_filtered", "rx_missed")}})
    assert rig.drain(rig.linux) == [bytes(VNET_HDR) + f for f in frames if rig.accepts(f)]
    assert rig.drain(rig.cable) == []
    assert counted == {"runts": len(messages) - len(frames),
                       "rx_filtered": sum(not rig.accepts(f) for f in frames), "rx_missed": 0}
    still_works(rig)


NAMES, MESSAGES = corpus_ids("frames")


@pytest.mark.parametrize("message", MESSAGES, ids=NAMES)
def test_corpus_both_ways(rig, message):
    check_linux_to_cable(rig, [message])
    check_cable_to_linux(rig, [message])


@budget(150)
@given(messages=st.lists(tap_messages(), min_size=1, max_size=12))
def test_frames_from_linux(rig, fuzzed, messages):
    fuzzed()
    check_linux_to_cable(rig, messages)


@budget(150)
@given(messages=st.lists(tap_messages(), min_size=1, max_size=12))
def test_frames_from_the_cable(rig, fuzzed, messages):
    fuzzed()
    check_cable_to_linux(rig, messages)


@budget(100)
@given(frames=st.lists(ethernet_frames(), min_size=1, max_size=12))
def test_send_takes_a_batch_whole_or_refuses_it(rig, fuzzed, frames):
    fuzzed()
    bad = [i for i, f in enumerate(frames) if not 14 <= len(f) <= rig.max_frame]
    if bad:
        with pytest.raises(FrameError) as info:
            rig.adapter.send(frames)
        assert one_line(str(info.value)) and f"frame {bad[0]} of the batch" in str(info.value)
        rig.pump()
        assert rig.drain(rig.cable) == []
    else:
        assert rig.adapter.send(frames) == len(frames)
        rig.pump()
        assert rig.drain(rig.cable) == [bytes(VNET_HDR) + padded(f) for f in frames]
    still_works(rig)


@budget(100)
@given(frames=st.lists(ethernet_frames() | st.binary(max_size=64), max_size=12))
def test_wire_receive_passes_what_the_filter_accepts(rig, fuzzed, frames):
    fuzzed()
    rig.adapter.wire_receive(frames)
    rig.pump()
    assert rig.drain(rig.linux) == [bytes(VNET_HDR) + f for f in frames if rig.accepts(f)]
    still_works(rig)
