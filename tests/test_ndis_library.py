"""The emulated NDIS library, exercised through the real path.

ndisapi.sys (csrc/drivers/testing/ndisapi.c) uses each library facility the
way an e1000-class deserialized miniport does and reports what it saw in a
private OID, so each test here checks one facility from both sides: what the
driver observed through the library, and what the host received from it.
"""
import collections
import struct
import time

import pytest

from ndisproxy import BugCheckFault, DriverFaulted, DriverImage, VerifierFault, drivers
from ndisproxy._binding import VIOLATIONS, lib
from ndisproxy.driver import OID_BUFFER

OID_NDISAPI_SELFCHECK = 0xFF000001
OID_NDISAPI_PENDED = 0xFF000002
OID_NDISAPI_VIOLATE = 0xFF000010

PASSIVE_LEVEL = 0
DISPATCH_LEVEL = 2
TIMER_PERIOD_NS = 10_000_000
FRAME_LEN = 60

PARAMETERS = {
    "Speed": 1000,
    "Mask": "c0ffee",
    "Name": "e1000-test",
    "NetworkAddress": "02-11-22-33-44-55",
}
ADDRESS = bytes.fromhex("021122334455")
PERMANENT_ADDRESS = bytes.fromhex("024e50000001")
PEER_ADDRESS = bytes.fromhex("024e500000fe")

# Mirrors struct ndisapi_selfcheck; the layout is documented in ndisapi.c.
SELFCHECK = struct.Struct("<4I16s15I")
SelfCheck = collections.namedtuple("SelfCheck", [
    "magic", "speed", "mask", "missing_failed", "name",
    "irql_in_lock", "irql_after_lock", "packet_length", "shared_ok",
    "timer_fires", "isr_count", "dpc_count", "return_count",
    "timer_irql", "isr_irql", "dpc_irql", "packet_filter",
    "rx_indicated", "rx_dropped", "foreign_returns",
])
SELFCHECK_MAGIC = int.from_bytes(b"NAPI", "little")


def expected_frame(seq, destination=ADDRESS):
    """The frame ndisapi.sys receives, as documented in ndisapi.c."""
    payload = bytes([seq & 0xFF]) + bytes(i ^ 0x5A for i in range(15, FRAME_LEN))
    return destination + PEER_ADDRESS + b"\x88\xb5" + payload


def selfcheck(adapter):
    result = adapter.query_raw(OID_NDISAPI_SELFCHECK, SELFCHECK.size)
    assert result.status == lib.NDIS_STATUS_SUCCESS, result.status_name
    assert len(result.data) == SELFCHECK.size
    check = SelfCheck._make(SELFCHECK.unpack(result.data))
    assert check.magic == SELFCHECK_MAGIC
    return check._replace(name=check.name.rstrip(b"\0").decode("ascii"))


def interrupt(adapter):
    """Raise the line, service it, lower it: how many ISR+DPC rounds ran."""
    adapter.set_irq_line(1)
    try:
        return adapter.service_interrupt()
    finally:
        adapter.set_irq_line(0)


@pytest.fixture
def image():
    with DriverImage.load(drivers.testing_path("ndisapi")) as image:
        yield image


@pytest.fixture
def adapter(image):
    adapter = image.create_adapter(parameters=PARAMETERS)
    adapter.initialize()
    return adapter


# -- configuration --------------------------------------------------------


def test_configuration_values_as_the_driver_read_them(adapter):
    check = selfcheck(adapter)
    assert check.speed == 1000
    # Read as NdisParameterHexInteger: as decimal "c0ffee" would not parse.
    assert check.mask == 0xC0FFEE
    assert check.name == "e1000-test"
    assert check.missing_failed == 1
    assert adapter.violations() == []


def test_missing_parameters_fail_to_read(image):
    adapter = image.create_adapter(parameters={"Name": "x"})
    adapter.initialize()
    check = selfcheck(adapter)
    assert (check.speed, check.mask, check.name) == (0, 0, "x")
    assert check.missing_failed == 1


def test_network_address_override_is_read(adapter):
    result = adapter.query_raw(lib.OID_802_3_CURRENT_ADDRESS, 6)
    assert result.status == lib.NDIS_STATUS_SUCCESS, result.status_name
    assert result.data == ADDRESS


def test_without_network_address_the_permanent_one_stays(image):
    adapter = image.create_adapter(parameters={"Speed": 10})
    adapter.initialize()
    assert adapter.query_raw(lib.OID_802_3_CURRENT_ADDRESS).data == PERMANENT_ADDRESS


# -- OID requests ---------------------------------------------------------


def test_query_maximum_frame_size(adapter):
    result = adapter.query_raw(lib.OID_GEN_MAXIMUM_FRAME_SIZE, 4)
    assert result.status == lib.NDIS_STATUS_SUCCESS, result.status_name
    assert result.data == struct.pack("<I", 1500)


@pytest.mark.parametrize("length", [0, 1, 3])
def test_short_query_buffer_gets_invalid_length_and_bytes_needed(adapter, length):
    result = adapter.query_raw(lib.OID_GEN_MAXIMUM_FRAME_SIZE, length)
    assert result.status == lib.NDIS_STATUS_INVALID_LENGTH, result.status_name
    assert result.needed == 4
    assert result.data == b""


def test_query_vendor_description(adapter):
    description = b"ndisproxy ndisapi test miniport\0"
    result = adapter.query_raw(lib.OID_GEN_VENDOR_DESCRIPTION, 64)
    assert result.status == lib.NDIS_STATUS_SUCCESS, result.status_name
    assert result.data == description

    short = adapter.query_raw(lib.OID_GEN_VENDOR_DESCRIPTION, 8)
    assert short.status == lib.NDIS_STATUS_INVALID_LENGTH, short.status_name
    assert short.needed == len(description)


def test_short_selfcheck_buffer_names_its_size(adapter):
    result = adapter.query_raw(OID_NDISAPI_SELFCHECK, SELFCHECK.size - 1)
    assert result.status == lib.NDIS_STATUS_INVALID_LENGTH, result.status_name
    assert result.needed == SELFCHECK.size


def test_unknown_oid_is_not_supported(adapter):
    result = adapter.query_raw(lib.OID_GEN_MEDIA_CAPABILITIES)
    assert result.status == lib.NDIS_STATUS_NOT_SUPPORTED, result.status_name


def test_set_packet_filter(adapter):
    packet_filter = lib.NDIS_PACKET_TYPE_DIRECTED | lib.NDIS_PACKET_TYPE_BROADCAST
    result = adapter.set_raw(lib.OID_GEN_CURRENT_PACKET_FILTER,
                             struct.pack("<I", packet_filter))
    assert result.status == lib.NDIS_STATUS_SUCCESS, result.status_name
    assert selfcheck(adapter).packet_filter == packet_filter

    short = adapter.set_raw(lib.OID_GEN_CURRENT_PACKET_FILTER, b"\x01\x00")
    assert short.status == lib.NDIS_STATUS_INVALID_LENGTH, short.status_name
    assert short.needed == 4
    assert selfcheck(adapter).packet_filter == packet_filter


def test_a_set_longer_than_the_oid_buffer_is_refused_whole(adapter):
    """Never part of a request: 8 KiB goes to the driver, a byte more is a
    ValueError and the driver is not called."""
    def sets():
        points = adapter.stack_report()["entry_points"]
        return points.get("MiniportSetInformation", {}).get("calls", 0)

    before = sets()
    whole = adapter.set_raw(lib.OID_GEN_CURRENT_PACKET_FILTER, bytes(OID_BUFFER))
    assert whole.status == lib.NDIS_STATUS_SUCCESS, whole.status_name   # it reads 4
    with pytest.raises(ValueError, match="8193 bytes: at most 8192"):
        adapter.set_raw(lib.OID_GEN_CURRENT_PACKET_FILTER, bytes(OID_BUFFER + 1))
    assert sets() == before + 1


def test_pended_query_completes_from_the_timer(adapter):
    result = adapter.query_raw(OID_NDISAPI_PENDED)
    assert result.status == lib.NDIS_STATUS_PENDING, result.status_name
    assert adapter.events() == []

    assert adapter.run_timers(adapter.next_timer()) == 1
    events = adapter.events()
    assert [(e.kind, e.status) for e in events] == [("query-complete", 0)]
    # Completed means the host takes requests again.
    assert adapter.query_raw(lib.OID_GEN_MAXIMUM_FRAME_SIZE, 4).status == 0
    assert adapter.violations() == []


# -- what Initialize set up -------------------------------------------------


def test_spin_lock_raises_to_dispatch_and_restores(adapter):
    check = selfcheck(adapter)
    assert check.irql_in_lock == DISPATCH_LEVEL
    assert check.irql_after_lock == PASSIVE_LEVEL


def test_shared_memory_and_packet_chain(adapter):
    check = selfcheck(adapter)
    assert check.shared_ok == 0b11, "physical address zero or page offsets differ"
    # Two chained buffers, 14 + 46 bytes.
    assert check.packet_length == FRAME_LEN


def test_pool_allocations_carry_the_driver_tag(adapter):
    tags = [tag for tag, _ in adapter.allocations()]
    assert "NApi" in tags


# -- timers -------------------------------------------------------------------


def test_periodic_timer_fires_when_due(adapter):
    due = adapter.next_timer()
    assert due is not None
    assert adapter.run_timers(due - 1) == 0
    assert selfcheck(adapter).timer_fires == 0

    assert adapter.run_timers(due) == 1
    check = selfcheck(adapter)
    assert check.timer_fires == 1
    assert check.timer_irql == DISPATCH_LEVEL
    # Periodic, so armed again; and on the real clock this time.
    due = adapter.next_timer()
    assert due is not None
    time.sleep(max(0, due - time.monotonic_ns()) / 1e9)
    assert adapter.run_timers() == 1
    assert selfcheck(adapter).timer_fires == 2
    assert adapter.violations() == []


def test_periodic_timer_rearms_one_period_later(adapter):
    due = adapter.next_timer()
    adapter.run_timers(due)
    assert adapter.next_timer() == due + TIMER_PERIOD_NS


# -- interrupts, indications and returns -----------------------------------------


def test_interrupt_runs_isr_then_dpc_while_the_line_is_up(adapter):
    assert adapter.interrupt_registered
    assert adapter.service_interrupt() == 0, "serviced with the line down"

    rounds = interrupt(adapter)
    assert rounds >= 1
    check = selfcheck(adapter)
    assert check.isr_count == rounds
    assert check.dpc_count == rounds
    assert check.isr_irql > DISPATCH_LEVEL
    assert check.dpc_irql == DISPATCH_LEVEL

    assert adapter.service_interrupt() == 0
    assert selfcheck(adapter).isr_count == rounds
    assert adapter.violations() == []


def test_status_and_received_frame_reach_the_host(adapter):
    interrupt(adapter)
    events = adapter.events()
    assert [e.kind for e in events] == ["status", "status-complete", "receive"]
    status, _, receive = events
    assert status.status == lib.NDIS_STATUS_MEDIA_CONNECT
    assert status.length == 0
    assert receive.frame == expected_frame(1)
    assert receive.length == FRAME_LEN
    # SUCCESS: the host owns the packet until it returns it.
    assert receive.status == lib.NDIS_STATUS_SUCCESS
    assert adapter.events() == []


def test_returned_packet_goes_back_to_the_driver(adapter):
    rounds = interrupt(adapter)
    adapter.events()
    check = selfcheck(adapter)
    assert (check.rx_indicated, check.return_count) == (1, 0)
    # The driver's one packet stays with the host until returned.
    assert check.rx_dropped == rounds - 1

    adapter.return_packets()
    check = selfcheck(adapter)
    assert check.return_count == 1
    assert check.foreign_returns == 0
    adapter.return_packets()
    assert selfcheck(adapter).return_count == 1, "returned twice"

    # Back with the driver, so the next interrupt indicates it again; the
    # link is already up, so no second status.
    interrupt(adapter)
    events = adapter.events()
    assert [e.kind for e in events] == ["receive"]
    assert events[0].frame == expected_frame(2)
    adapter.return_packets()
    assert selfcheck(adapter).return_count == 2
    assert adapter.violations() == []


# -- halt -----------------------------------------------------------------------


def test_halt_frees_every_allocation(adapter):
    interrupt(adapter)
    adapter.events()
    adapter.return_packets()
    adapter.query_raw(OID_NDISAPI_PENDED)
    adapter.run_timers(adapter.next_timer())
    adapter.events()
    assert adapter.allocations()

    adapter.halt()
    assert adapter.allocations() == []
    assert not adapter.interrupt_registered
    assert adapter.next_timer() is None
    assert adapter.violations() == []


# -- the verifier -----------------------------------------------------------------

VERIFIER_MODES = [
    # mode, violation kind, words its text must contain
    (1, "irql", ["NdisMSleep", "IRQL 2", "maximum 0"]),
    (2, "lock-not-held", ["NdisReleaseSpinLock", "not held"]),
    (3, "bad-free", ["NdisFreeMemory", "double free"]),
    (7, "irql", ["NdisOpenConfiguration", "IRQL 2", "maximum 0"]),
]


def violate(adapter, mode):
    return adapter.set_raw(OID_NDISAPI_VIOLATE, struct.pack("<I", mode))


@pytest.mark.parametrize("mode, kind, words", VERIFIER_MODES)
def test_violation_is_recorded(adapter, mode, kind, words):
    # Fatality is per kind: every other kind stopping the driver must not
    # stop this one.
    for other in VIOLATIONS:
        if other != kind:
            adapter.set_fatal(other)

    result = violate(adapter, mode)
    assert result.status == lib.NDIS_STATUS_SUCCESS, result.status_name
    [violation] = adapter.violations()
    assert violation.kind == kind
    assert violation.entry_point == "MiniportSetInformation"
    assert violation.irql == "DISPATCH_LEVEL"
    assert not violation.fatal
    for word in words:
        assert word in violation.text

    # Not fatal: the driver carries on and still halts cleanly.
    assert selfcheck(adapter).magic == SELFCHECK_MAGIC
    adapter.halt()
    assert adapter.allocations() == []


@pytest.mark.parametrize("mode, kind, words", VERIFIER_MODES)
def test_fatal_violation_stops_the_driver(adapter, mode, kind, words):
    adapter.set_fatal(kind)
    with pytest.raises(VerifierFault) as info:
        violate(adapter, mode)
    assert info.value.entry_point == "MiniportSetInformation"
    assert "MiniportSetInformation" in str(info.value)
    assert info.value.irql == DISPATCH_LEVEL
    [violation] = adapter.violations()
    assert violation.kind == kind
    assert violation.fatal
    for word in words:
        assert word in violation.text
    assert_refuses_calls(adapter)
    assert_host_survives()


def test_bugcheck_names_the_code(adapter):
    with pytest.raises(BugCheckFault) as info:
        violate(adapter, 4)
    assert "KeBugCheckEx(0xDEAD, 0x1, 0x2, 0x3, 0x4)" in str(info.value)
    assert info.value.entry_point == "MiniportSetInformation"
    assert adapter.violations() == []
    assert_refuses_calls(adapter)
    assert_host_survives()


def test_oid_request_after_a_fault_is_refused(adapter):
    adapter.set_fatal("bad-free")
    with pytest.raises(VerifierFault):
        violate(adapter, 3)
    with pytest.raises(DriverFaulted):
        adapter.query_raw(lib.OID_GEN_MAXIMUM_FRAME_SIZE, 4)


def test_unknown_violation_mode_is_refused(adapter):
    result = violate(adapter, 99)
    assert result.status == lib.NDIS_STATUS_INVALID_DATA, result.status_name
    assert adapter.violations() == []


def assert_refuses_calls(adapter):
    """A faulted driver is never entered again (its timer is still armed)."""
    with pytest.raises(DriverFaulted):
        adapter.run_timers(adapter.next_timer())


def assert_host_survives():
    """A fresh image of the same driver works in this same process."""
    with DriverImage.load(drivers.testing_path("ndisapi")) as image:
        adapter = image.create_adapter(parameters=PARAMETERS)
        adapter.initialize()
        assert selfcheck(adapter).speed == 1000
        adapter.halt()
        assert adapter.allocations() == []
        assert adapter.violations() == []


@pytest.mark.parametrize("mode, kind, words", [
    (5, "indicate-held", "the host still holds it"),
    (6, "free-unreturned", "indicated and not yet returned"),
])
def test_packets_the_host_holds_are_guarded(adapter, mode, kind, words):
    assert violate(adapter, mode).status == lib.NDIS_STATUS_NOT_ACCEPTED   # nothing held yet
    interrupt(adapter)
    assert [e.kind for e in adapter.events()][-1] == "receive"            # now the host holds it
    assert violate(adapter, mode).ok
    found = [v for v in adapter.violations() if v.kind == kind]
    assert len(found) == 1 and words in found[0].text, adapter.violations()
    assert found[0].entry_point == "MiniportSetInformation"
    assert [e.kind for e in adapter.events()] == []                        # not indicated twice
