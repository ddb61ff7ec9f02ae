"""The NDIS calls adapterapi.sys (csrc/drivers/testing/adapterapi.c) makes
with an adapter: NdisMSetAttributes, configuration writes, map registers,
legacy timers, work items, NdisMSynchronizeWithInterrupt, byte and word
port I/O on the mock NIC, packet-to-packet copies and pool usage.

The driver prints "name=value" lines from MiniportInitialize, timers and
work items, and answers private OIDs; the layouts are documented at the top
of adapterapi.c.  Each test checks what an export did, from the driver's
side and, where the host can see it, from the host's.
"""
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ndisproxy import DriverImage, drivers
from ndisproxy._binding import lib

OID_ADAPTERAPI_ANSWER = 0xFF020001
OID_ADAPTERAPI_WORK = 0xFF020010
OID_ADAPTERAPI_SYNC = 0xFF020011
OID_ADAPTERAPI_PORT = 0xFF020012
OID_ADAPTERAPI_COPY = 0xFF020013

SUCCESS = lib.NDIS_STATUS_SUCCESS
RESOURCES = lib.NDIS_STATUS_RESOURCES & 0xFFFFFFFF
FAILURE = lib.NDIS_STATUS_FAILURE & 0xFFFFFFFF
PASSIVE_LEVEL, DISPATCH_LEVEL, DIRQL = 0, 2, 12
MS = 1_000_000                                  # ns

MAC = bytes.fromhex("02005e102030")
# mocknic_hw.h
MN_ICR, MN_RX_FILTER = 0x08, 0x38
MN_TX_LEN, MN_TX_TAIL, MN_RX_LEN, MN_RX_TAIL = 0x18, 0x20, 0x2C, 0x34
MN_EEPROM_MAC_LO, MN_EEPROM_MAC_HI, MN_DEVICE_ID = 0x4C, 0x50, 0x7C
MN_ID = 0x4E504E31
MN_INT_LINK = 0x04

WORK_ITEMS = 17                                 # one more than the host queues
COPY_BUFFERS = 8
COPY_REQUEST = struct.Struct("<3I2B8s8s")
COPY_ANSWER = struct.Struct("<8I")


@pytest.fixture
def image():
    with DriverImage.load(drivers.testing_path("adapterapi")) as image:
        yield image


def lines_since(image, seen):
    """The driver's "name=value" lines after the first ``seen``, as pairs."""
    return [tuple(line.split("=", 1)) for line in image.log()[seen:]]


def start(image, parameters=None, mac=MAC):
    """An initialised adapter, and the lines its MiniportInitialize printed."""
    adapter = image.create_adapter(parameters=parameters)
    if mac is not None:
        adapter.attach_mocknic(mac)
    seen = len(image.log())
    adapter.initialize()
    return adapter, dict(lines_since(image, seen))


def ask(adapter, oid, data):
    """Set a private OID, then query what it found."""
    result = adapter.set_raw(oid, data)
    assert result.status == SUCCESS, result.status_name
    answer = adapter.query_raw(OID_ADAPTERAPI_ANSWER, 4096)
    assert answer.status == SUCCESS, answer.status_name
    return answer.data


def ulongs(data):
    return struct.unpack(f"<{len(data) // 4}I", data)


# -- NdisMSetAttributes ----------------------------------------------------------


def test_set_attributes_makes_a_serialized_bus_master(image):
    adapter, said = start(image)
    # No hang-check interval given: NDIS's default.
    assert adapter.hang_check_interval == 2
    assert int(said["map_registers"], 16) == SUCCESS          # a bus master
    # Serialized: the host completes each packet with the status the driver
    # left in it (a frame ending in a nonzero byte fails).
    assert adapter.send([bytes(59) + b"\0", bytes(59) + b"\1", bytes(14)]) == 3
    stats = adapter.stats()
    assert (stats["tx_completed"], stats["tx_failed"], stats["tx_outstanding"]) == (2, 1, 0)
    assert adapter.violations() == []


def test_not_a_bus_master_gets_no_map_registers(image):
    adapter, said = start(image, {"BusMaster": 0})
    assert int(said["map_registers"], 16) == RESOURCES
    adapter.halt()
    assert adapter.violations() == []


# -- map registers ---------------------------------------------------------------


@pytest.mark.parametrize("frees, kind, words", [
    (1, None, None),
    (2, "bad-free", "NdisMFreeMapRegisters: no map registers allocated (freed twice?)"),
    (0, "pool-leak", "8 map registers still allocated at halt"),
])
def test_map_registers_are_freed_once(image, frees, kind, words):
    adapter, said = start(image, {"FreeMapRegisters": frees})
    assert int(said["map_registers"], 16) == SUCCESS
    adapter.halt()
    found = [(v.kind, v.entry_point) for v in adapter.violations()]
    if kind is None:
        assert found == []
    else:
        assert found == [(kind, "MiniportHalt")]
        assert words in adapter.violations()[0].text


# -- NdisWriteConfiguration -----------------------------------------------------------


def test_written_configuration_reads_back(image):
    adapter, said = start(image, {"Speed": 10})
    assert said["written"].split("/") == [
        f"{SUCCESS:08x}", f"{SUCCESS:08x}", f"{SUCCESS:08x}",
        f"{FAILURE:08x}",                       # Binary is not supported
        f"{RESOURCES:08x}", f"{RESOURCES:08x}",  # keyword, string too long
    ]
    # Either integer type reads back the number written as either.
    assert said["integer"] == "1234567/1234567"
    assert said["hex_integer"] == f"{0xBEEF}/{0xBEEF}"
    # The string that was too long did not replace the one written before.
    assert said["string"] == "written by the driver"
    assert said["speed"] == "100"                # over the host's 10
    assert said["previous"] == "0"
    assert adapter.violations() == []


@pytest.mark.parametrize("length", [0, 1, 190, 191])
def test_a_multistring_read_ends_in_two_nuls_inside_its_room(image, length):
    """REG_MULTI_SZ: the value, a NUL, and the list's closing NUL, all in
    MaximumLength - also for the longest value a parameter can hold."""
    said = start(image, {"Multi": "m" * length})[1]
    assert said["multi"] == f"{2 * length}/{2 * length + 4}/terminated/{'m' * length}"


@pytest.mark.parametrize("text, units", [("ünïcode", 7), ("€ 5", 3), ("a😀b", 4),
                                         ("😀" * 47, 94)])
def test_a_string_value_reaches_the_driver_as_utf16(image, text, units):
    """Values are UTF-8 on our side and UTF-16 on the driver's: one unit per
    character, two for one beyond U+FFFF, and the driver's %wZ gives the
    text back."""
    said = start(image, {"Multi": text})[1]
    assert said["multi"] == f"{2 * units}/{2 * units + 4}/terminated/{text}"
    assert "multi" not in start(image)[1]      # no such parameter: not read


def test_written_configuration_lasts_for_the_adapter(image):
    adapter, said = start(image)
    assert said["previous"] == "0"
    adapter.halt()
    seen = len(image.log())
    adapter.initialize()
    assert dict(lines_since(image, seen))["previous"] == "1"
    # Another adapter has a registry of its own.
    assert start(image)[1]["previous"] == "0"


# -- NdisInitializeTimer, NdisSetTimer, NdisCancelTimer -------------------------------------


def test_a_timer_goes_with_the_memory_that_held_it(image):
    """Forty timers, each in a block of its own that is freed after use:
    freeing the block frees the timer, so no adapter runs out of them
    (16 at a time) and none is left to fire."""
    adapter, said = start(image, {"TimerChurn": 40})
    assert said["timer_churn"] == "40"
    assert adapter.violations() == []
    adapter.run_timers(lib.np_api_now_ns() + 120_000 * MS)     # past every due time
    assert not any(line.startswith("timer=pool") for line in image.log())


def test_freeing_an_armed_timer_is_a_bad_free_and_it_never_fires(image):
    adapter, _ = start(image, {"TimerFreedArmed": 1})
    [violation] = adapter.violations()
    assert violation.kind == "bad-free"
    assert violation.entry_point == "MiniportInitialize"
    assert "NdisFreeMemory" in violation.text and "while it is armed" in violation.text
    adapter.run_timers(lib.np_api_now_ns() + 120_000 * MS)
    assert not any(line.startswith("timer=pool") for line in image.log())


def test_timers_fire_once_in_due_order_and_a_cancelled_one_never(image):
    before = time.monotonic_ns()
    adapter, said = start(image)
    after = time.monotonic_ns()
    assert said["cancel"] == "1/0"             # armed, then no longer
    seen = len(image.log())

    # "early" was set for 500 ms, then re-set for 20 ms: due once, at 20.
    due = adapter.next_timer()
    assert before + 20 * MS <= due <= after + 20 * MS
    assert adapter.run_timers(due - 1) == 0
    assert lines_since(image, seen) == []

    # Run late enough for both: earliest due first, although "late" was
    # initialised (and took its slot) first; then the work item "early"
    # scheduled, at PASSIVE_LEVEL; "cancelled" (30 ms) never.
    assert adapter.run_timers(due + 1000 * MS) == 3
    assert lines_since(image, seen) == [
        ("timer", f"early/{DISPATCH_LEVEL}"),
        ("timer", f"late/{DISPATCH_LEVEL}"),
        ("work", f"timer0/{PASSIVE_LEVEL}/1"),
    ]
    # One-shot: nothing is armed any more.
    assert adapter.next_timer() is None
    assert adapter.run_timers(due + 10_000 * MS) == 0
    assert len(image.log()) == seen + 3
    assert adapter.violations() == []


def test_a_timer_fires_after_its_own_delay(image):
    adapter, _ = start(image)
    seen = len(image.log())
    early = adapter.next_timer()
    assert adapter.run_timers(early) == 2      # "early" and its work item
    late = adapter.next_timer()
    # "late" was set for 40 ms just before "early" was set for 20.
    print(f"late due {(late - early) / MS:.3f} ms after early")
    assert 15 * MS < late - early <= 20 * MS
    # On the real clock this time.
    time.sleep(max(0, late - time.monotonic_ns()) / 1e9)
    assert adapter.run_timers() == 1
    assert [value for name, value in lines_since(image, seen) if name == "timer"] == [
        f"early/{DISPATCH_LEVEL}", f"late/{DISPATCH_LEVEL}"]


def test_halt_disarms_the_timers(image):
    adapter, _ = start(image)
    seen = len(image.log())
    adapter.halt()
    assert adapter.next_timer() is None
    assert lines_since(image, seen) == []
    assert adapter.violations() == []


# -- NdisScheduleWorkItem -----------------------------------------------------------------


def schedule(adapter, n):
    return ulongs(ask(adapter, OID_ADAPTERAPI_WORK, struct.pack("<I", n)))


def test_work_items_run_first_in_first_out_at_passive_level(image):
    adapter, _ = start(image)
    now = time.monotonic_ns()                  # before any timer is due
    seen = len(image.log())
    assert schedule(adapter, 3) == (3, 0)
    # Queued, not run: they wait for the host, which is told "now".
    assert lines_since(image, seen) == []
    assert adapter.next_timer() <= time.monotonic_ns()
    assert adapter.run_timers(now) == 3
    assert lines_since(image, seen) == [("work", f"oid{i}/{PASSIVE_LEVEL}/1") for i in range(3)]
    assert adapter.run_timers(now) == 0
    assert adapter.violations() == []


def test_a_full_work_queue_refuses_with_a_status(image):
    adapter, _ = start(image)
    now = time.monotonic_ns()
    seen = len(image.log())
    assert schedule(adapter, WORK_ITEMS) == (16, RESOURCES)
    [violation] = adapter.violations()
    assert violation.kind == "bad-call"
    assert violation.entry_point == "MiniportSetInformation"
    assert "NdisScheduleWorkItem" in violation.text and "queue full" in violation.text
    assert adapter.run_timers(now) == 16
    assert lines_since(image, seen) == [("work", f"oid{i}/{PASSIVE_LEVEL}/1") for i in range(16)]


def test_work_items_queued_at_halt_are_dropped(image):
    adapter, _ = start(image)
    seen = len(image.log())
    assert schedule(adapter, 2) == (2, 0)
    adapter.halt()
    assert adapter.next_timer() is None
    assert lines_since(image, seen) == []


# -- NdisMSynchronizeWithInterrupt ----------------------------------------------------------


def synchronize(adapter, mode):
    return ulongs(ask(adapter, OID_ADAPTERAPI_SYNC, struct.pack("<I", mode)))


def test_synchronize_runs_the_routine_at_dirql_and_returns_its_answer(image):
    adapter, said = start(image)
    # answer / IRQL inside / IRQL after / runs so far: from Initialize ...
    assert said["sync"] == f"1/{DIRQL}/{PASSIVE_LEVEL}/1"
    # ... and from MiniportSetInformation, which runs at DISPATCH_LEVEL.
    assert synchronize(adapter, 0) == (0, DIRQL, DISPATCH_LEVEL, 2)
    assert synchronize(adapter, 1) == (1, DIRQL, DISPATCH_LEVEL, 3)
    assert adapter.violations() == []


def test_synchronize_with_an_unregistered_interrupt_is_refused(image):
    adapter, _ = start(image)
    # FALSE, the routine never ran (its IRQL mark 0xff stays), no IRQL change.
    assert synchronize(adapter, 2) == (0, 0xFF, DISPATCH_LEVEL, 1)
    [violation] = adapter.violations()
    assert violation.kind == "bad-call"
    assert "NdisMSynchronizeWithInterrupt" in violation.text
    assert "not a registered interrupt" in violation.text


# -- READ_PORT_* and WRITE_PORT_* ------------------------------------------------------------


def port_read(adapter, offset, size):
    [value] = ulongs(ask(adapter, OID_ADAPTERAPI_PORT, struct.pack("<4I", offset, size, 0, 0)))
    return value


def port_write(adapter, offset, size, value):
    assert ask(adapter, OID_ADAPTERAPI_PORT, struct.pack("<4I", offset, size, 1, value)) == \
        bytes(4)


def test_byte_and_word_reads_return_the_register_bytes(image):
    adapter, _ = start(image)
    eeprom = [port_read(adapter, MN_EEPROM_MAC_LO + i, 1) for i in range(4)] + \
             [port_read(adapter, MN_EEPROM_MAC_HI + i, 1) for i in range(2)]
    assert bytes(eeprom) == MAC
    words = [port_read(adapter, MN_EEPROM_MAC_LO + i, 2) for i in (0, 2)] + \
            [port_read(adapter, MN_EEPROM_MAC_HI, 2)]
    assert words == list(struct.unpack("<3H", MAC))
    device_id = MN_ID.to_bytes(4, "little")
    assert bytes(port_read(adapter, MN_DEVICE_ID + i, 1) for i in range(4)) == device_id
    assert [port_read(adapter, MN_DEVICE_ID + i, 2) for i in (0, 2)] == \
        list(struct.unpack("<2H", device_id))
    assert port_read(adapter, MN_DEVICE_ID, 4) == MN_ID
    # Misaligned accesses read as all ones (docs/hardware.md).
    assert port_read(adapter, MN_DEVICE_ID + 1, 2) == 0xFFFF
    assert port_read(adapter, MN_DEVICE_ID + 2, 4) == 0xFFFFFFFF
    assert adapter.violations() == []


def test_byte_and_word_writes_change_only_their_bytes(image):
    adapter, _ = start(image)

    def rx_filter():
        """MN_RX_FILTER as the device model holds it, not through HAL."""
        return adapter.device_counters()["rx_filter"]

    port_write(adapter, MN_RX_FILTER, 4, 0)
    port_write(adapter, MN_RX_FILTER + 1, 1, 0xAB)
    assert rx_filter() == 0x0000AB00
    port_write(adapter, MN_RX_FILTER + 2, 2, 0x1234)
    assert rx_filter() == 0x1234AB00
    port_write(adapter, MN_RX_FILTER, 1, 0x01)
    assert rx_filter() == 0x1234AB01
    assert port_read(adapter, MN_RX_FILTER, 4) == 0x1234AB01
    # Read-only stays so, byte by byte too.
    port_write(adapter, MN_DEVICE_ID, 1, 0)
    assert port_read(adapter, MN_DEVICE_ID, 4) == MN_ID
    # Write-1-to-clear: a byte write clears bits of that byte only.
    adapter.set_link(False)
    assert port_read(adapter, MN_ICR, 4) & MN_INT_LINK
    port_write(adapter, MN_ICR + 1, 1, 0xFF)
    assert port_read(adapter, MN_ICR, 4) & MN_INT_LINK
    port_write(adapter, MN_ICR, 1, MN_INT_LINK)
    assert not port_read(adapter, MN_ICR, 4) & MN_INT_LINK
    assert adapter.violations() == []


def test_ports_without_a_device_read_all_ones(image):
    adapter, _ = start(image, mac=None)
    assert [port_read(adapter, MN_DEVICE_ID, size) for size in (1, 2, 4)] == \
        [0xFF, 0xFFFF, 0xFFFFFFFF]
    port_write(adapter, MN_RX_FILTER, 2, 0x1234)
    assert adapter.violations() == []


@pytest.mark.parametrize("length, tail", [(MN_TX_LEN, MN_TX_TAIL), (MN_RX_LEN, MN_RX_TAIL)])
def test_giving_a_ring_a_length_starts_it_over(image, length, tail):
    """A head or tail left from a longer ring would index past a shorter
    one: writing the length clears both, as programming a ring does."""
    adapter, _ = start(image)
    port_write(adapter, length, 4, 8)
    port_write(adapter, tail, 4, 5)
    assert port_read(adapter, tail, 4) == 5
    port_write(adapter, length, 4, 4)
    assert port_read(adapter, length, 4) == 4
    assert port_read(adapter, tail, 4) == 0
    assert port_read(adapter, tail - 4, 4) == 0          # the head
    assert adapter.violations() == []


def test_a_port_past_the_range_is_refused(image):
    adapter, _ = start(image)
    assert port_read(adapter, 0x100, 1) == 0xFF
    assert port_read(adapter, 0x100, 2) == 0xFFFF
    port_write(adapter, 0x100, 1, 0)
    texts = [(v.kind, v.text) for v in adapter.violations()]
    assert texts == [
        ("bad-call", "READ_PORT at 0xc100: not a registered port"),
        ("bad-call", "READ_PORT at 0xc100: not a registered port"),
        ("bad-call", "WRITE_PORT at 0xc100: not a registered port"),
    ]


# -- NdisCopyFromPacketToPacket, NdisGetFirstBufferFromPacketSafe, NdisPacketPoolUsage -------


def copy(adapter, src_lengths, dst_lengths, src_offset, dst_offset, length, src, dst):
    request = COPY_REQUEST.pack(dst_offset, length, src_offset, len(src_lengths),
                                len(dst_lengths), bytes(src_lengths), bytes(dst_lengths))
    answer = ask(adapter, OID_ADAPTERAPI_COPY, request + src + dst)
    return COPY_ANSWER.unpack(answer[:COPY_ANSWER.size]), answer[COPY_ANSWER.size:]


def expected_copy(src, dst, src_offset, dst_offset, length):
    n = max(0, min(length, len(src) - src_offset, len(dst) - dst_offset))
    return n, dst[:dst_offset] + src[src_offset:src_offset + n] + dst[dst_offset + n:]


def check_copy(adapter, src_lengths, dst_lengths, src_offset, dst_offset, length, seed=0):
    src = bytes((i * 7 + seed) & 0xFF for i in range(sum(src_lengths)))
    dst = bytes((0xA5 ^ i) & 0xFF for i in range(sum(dst_lengths)))
    answer, after = copy(adapter, src_lengths, dst_lengths, src_offset, dst_offset, length,
                         src, dst)
    copied, *usage, third, first_length, total_length, first_ok = answer
    assert (copied, after) == expected_copy(src, dst, src_offset, dst_offset, length)
    # Two packets of a pool of two: then none left, and none after freeing.
    assert usage == [0, 2, 0]
    assert third == RESOURCES
    assert first_length == (src_lengths[0] if src_lengths else 0)
    assert total_length == len(src)
    assert first_ok == 0b11


@pytest.fixture(scope="module")
def copier():
    with DriverImage.load(drivers.testing_path("adapterapi")) as image:
        adapter = image.create_adapter()
        adapter.initialize()
        yield adapter
        assert adapter.violations() == []


@pytest.mark.parametrize("src_lengths, dst_lengths, src_offset, dst_offset, length", [
    ([3, 5, 0, 7], [4, 4, 4, 4], 0, 0, 100),   # everything, across every boundary
    ([3, 5, 0, 7], [4, 4, 4, 4], 2, 5, 9),     # starting and ending inside buffers
    ([3, 5, 0, 7], [4, 4, 4, 4], 3, 4, 5),     # starting exactly on boundaries
    ([15], [1] * 8, 1, 0, 15),                 # one into many
    ([1] * 8, [255], 0, 200, 8),               # many into one
    ([10], [10], 10, 0, 5),                    # source offset at the end
    ([10], [10], 0, 12, 5),                    # destination offset past the end
    ([], [10], 0, 0, 5),                       # no source buffers
    ([10], [10], 0, 0, 0),                     # nothing asked
])
def test_copy_from_packet_to_packet(copier, src_lengths, dst_lengths, src_offset, dst_offset,
                                    length):
    check_copy(copier, src_lengths, dst_lengths, src_offset, dst_offset, length)


chains = st.lists(st.integers(0, 40), max_size=COPY_BUFFERS)


@settings(max_examples=300, deadline=None)
@given(src_lengths=chains, dst_lengths=chains, data=st.data())
def test_copy_from_packet_to_packet_matches_slicing(copier, src_lengths, dst_lengths, data):
    src_offset = data.draw(st.integers(0, sum(src_lengths) + 2))
    dst_offset = data.draw(st.integers(0, sum(dst_lengths) + 2))
    length = data.draw(st.integers(0, max(sum(src_lengths), sum(dst_lengths)) + 2))
    check_copy(copier, src_lengths, dst_lengths, src_offset, dst_offset, length,
               seed=len(src_lengths))
