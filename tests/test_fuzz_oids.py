"""Fuzzing OID requests: any OID, any buffer length and content, query and set.

Through the Python Adapter API (ndisproxy.driver) into mocknic.sys: every
request gets an OidResult that keeps the buffer contract (no more data
than the buffer held), a pended one completes, a bad length is a
ValueError or TypeError; the adapter still answers and passes frames
afterwards, with no verifier finding, and halts without a leak.
OID_MOCKNIC_FAULT is the mock's fault knob: a fault it fires must come
back as a DriverFault (the image abandoned, as designed), never as a crash.
"""
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ndisproxy import DriverError
from ndisproxy._binding import OID_NAMES, lib
from ndisproxy.driver import OID_BUFFER

from .fuzzing import MAC, PEER, VNET_HDR, Rig, budget, corpus

pytestmark = pytest.mark.fuzz("OID requests and buffers")

OID_MOCKNIC_FAULT = 0xFF010001
FAULT_CODES = range(1, 10)
NDIS_STATUS_PENDING = lib.NDIS_STATUS_PENDING & 0xFFFFFFFF


class Rigs:
    """The current rig; a fault abandons it and renew() brings a fresh one."""

    def __init__(self):
        self.rig = None
        self.renew()

    def renew(self):
        if self.rig is not None:
            self.rig.image.close()
            for sock in self.rig._sockets:
                sock.close()
        self.rig = Rig()
        # A hang costs this much, not the default second.
        self.rig.adapter.set_deadline("MiniportSetInformation", 0.2)
        self.rig.adapter.set_deadline("MiniportQueryInformation", 0.2)


@pytest.fixture
def rigs():
    rigs = Rigs()
    yield rigs
    violations, leaks = rigs.rig.close()
    assert violations == [] and leaks == []


def settle(rig, result):
    """A pended request completes (the mock's multicast list does, from a
    1 ms timer): the status it completed with."""
    if result.status & 0xFFFFFFFF != NDIS_STATUS_PENDING:
        return result.status
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        rig.adapter.run_timers()
        for event in rig.pump() + rig.adapter.events():
            if event.kind in ("query-complete", "set-complete"):
                return event.status
        time.sleep(0.001)
    raise AssertionError(f"a pended request never completed: {result}")


def run(rigs, requests):
    """Make the requests; True if one was the mock's fault knob with a
    code that fired or armed a fault (the rig is then renewed)."""
    rig, knob = rigs.rig, False
    for op, oid, arg in requests:
        faulty = oid == OID_MOCKNIC_FAULT and op == "set" and len(arg) >= 4 \
            and int.from_bytes(arg[:4], "little") in FAULT_CODES
        knob = knob or faulty
        try:
            if op == "query":
                result = rig.adapter.query_raw(oid, arg)
            else:
                result = rig.adapter.set_raw(oid, arg)
        except DriverError:
            assert faulty, f"{op} of OID 0x{oid:08x} faulted the driver"
            rigs.renew()
            return True
        except (ValueError, TypeError) as exc:
            if op == "set":                 # more than the driver may be given
                assert len(arg) > OID_BUFFER, exc
            else:
                assert not (isinstance(arg, int) and 0 <= arg < 2**32), exc
            assert "\n" not in str(exc)
            continue
        assert op == "query" or result.data == b""
        if op == "query":
            assert len(result.data) <= min(arg, OID_BUFFER)
        settle(rig, result)
    if knob:
        rigs.renew()
    return knob


def still_works(rig):
    """It answers, it passes a frame each way, and nobody broke a rule."""
    rig.set_filter(rig.filter)
    assert rig.adapter.query_raw("OID_802_3_CURRENT_ADDRESS", 6).data == MAC
    canary = MAC + PEER + b"\x88\xb5" + b"canary".ljust(46, b".")
    rig.linux.send(bytes(VNET_HDR) + canary)
    rig.cable.send(bytes(VNET_HDR) + canary)
    rig.pump()
    assert rig.drain(rig.cable) == [bytes(VNET_HDR) + canary]
    assert rig.drain(rig.linux) == [bytes(VNET_HDR) + canary]
    assert rig.adapter.violations() == []


KNOWN = sorted(OID_NAMES) + [OID_MOCKNIC_FAULT]
SETTABLE = (lib.OID_GEN_CURRENT_PACKET_FILTER, lib.OID_GEN_CURRENT_LOOKAHEAD,
            lib.OID_802_3_MULTICAST_LIST, OID_MOCKNIC_FAULT)
oids = st.sampled_from(SETTABLE) | st.sampled_from(KNOWN) | st.integers(0, 2**32 - 1)
lengths = st.integers(0, 16) | st.sampled_from((0, 1, 2, 3, 4, 5, 6, 7, 8, 255, 256, OID_BUFFER,
                                               OID_BUFFER + 1)) \
    | st.integers(0, 3 * OID_BUFFER) | st.sampled_from((-1, 2**32, 10**12, 2**64, "4", None, 1.5))
# Multicast lists (multiples of 6), ULONGs (filters, lookahead, fault codes), anything.
data = st.binary(max_size=16) | st.lists(st.binary(min_size=6, max_size=6), max_size=40).map(
    b"".join) | st.integers(0, 2**32 - 1).map(lambda v: v.to_bytes(4, "little")) \
    | st.integers(0, 12).map(lambda v: v.to_bytes(4, "little")) \
    | st.binary(min_size=OID_BUFFER - 2, max_size=OID_BUFFER + 2)
requests = st.lists(st.one_of(st.tuples(st.just("query"), oids, lengths),
                              st.tuples(st.just("set"), oids, data)), min_size=1, max_size=6)


def corpus_requests():
    """tests/fuzz_corpus/oids/*: one request a line, "query OID LENGTH" or
    "set OID HEXDATA"."""
    for name, text in corpus("oids"):
        batch = []
        for line in text.decode().splitlines():
            op, oid, arg = line.split()
            batch.append((op, int(oid, 0), int(arg, 0) if op == "query" else bytes.fromhex(arg)))
        yield name, batch


@pytest.mark.parametrize("batch", [b for _, b in corpus_requests()],
                         ids=[n for n, _ in corpus_requests()])
def test_corpus(rigs, batch):
    run(rigs, batch)
    still_works(rigs.rig)


@budget(200)
@given(batch=requests)
@example(batch=[("query", 0x00010107, -1)])            # OverflowError, once
@example(batch=[("query", 0x00010107, 10**12)])        # MemoryError, once
def test_any_oid_any_buffer(rigs, fuzzed, batch):
    fuzzed()
    if not run(rigs, batch):
        still_works(rigs.rig)
