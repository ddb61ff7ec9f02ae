"""The host's C pump thread (csrc/pump_thread.c) behind a real TAP.

Linux sends frames into the adapter's TAP; the pump thread hands them to
MiniportSendPackets, the mock NIC's loopback cable brings them back, the
driver indicates them and the thread writes them to the TAP again - all
while trio calls into the same adapter.  Faults in the thread are trapped
like any other; a clean stop halts the driver and leaves nothing behind.
"""
import os
import socket

import pytest
import trio

from ndisproxy import DriverFaulted, DriverTimeoutFault, StackOverflowFault, tap
from ndisproxy._binding import mappings
from ndisproxy.driver import latency_floor, latency_summary
from ndisproxy.host import DEFAULT_MAC, open_adapter

from .conftest import resident_kib, resources
from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures

ETHERTYPE = 0x88B5
MAC = bytes.fromhex(DEFAULT_MAC.replace(":", ""))
PACKET_OUTGOING = 4
OID_MOCKNIC_FAULT = 0xFF010001
THREAD_NAME = "ndisproxy-pump"


def frame(seq):
    return MAC + bytes.fromhex("02aabbccddee") + ETHERTYPE.to_bytes(2, "big") + \
        b"pump%06d" % seq + bytes(36)


def pump_threads():
    """Threads of this process named like the pump thread."""
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return names.count(THREAD_NAME)


class Tap:
    """A TAP of our own, up, with a packet socket for our ethertype on it."""

    def __init__(self):
        self.name = unique_name("npp")
        tap.create_tap(self.name)
        tap.set_up(self.name, True)
        self.fd = tap.open_tap(self.name)
        tap.set_offload(self.fd, 0)
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
        raw.bind((self.name, ETHERTYPE))
        self.sock = trio.socket.from_stdlib_socket(raw)

    def carrier(self, up):
        tap.set_carrier(self.fd, up)

    async def ready(self):
        """Carrier on takes effect later (linkwatch): until then Linux drops
        what is sent."""
        with trio.fail_after(10):
            while tap.link_state(self.name)["operstate"] != "up":
                await trio.sleep(0.01)

    async def received(self):
        """The next frame that came in from the driver (not one Linux sent)."""
        while True:
            data, address = await self.sock.recvfrom(2048)
            if address[2] != PACKET_OUTGOING:
                return data

    def close(self):
        self.sock.close()
        os.close(self.fd)
        tap.delete_tap(self.name, missing_ok=True)


@pytest.fixture
async def linux(require_net):  # noqa: F811
    side = Tap()
    try:
        yield side
    finally:
        side.close()


async def test_frames_loop_through_the_thread_while_trio_calls_the_driver(linux):
    """Linux's frames come back whole and in order while OID requests,
    CheckForHang, stack and latency reports and capture toggles run on the
    trio thread; a context entered by two threads at once would refuse the
    call (np_call_enter) and end the test with an error."""
    async with open_adapter("mocknic", tap_fd=linux.fd, on_carrier=linux.carrier,
                            hang_check=0.05) as nic:
        assert nic.adapter.pump_thread is not None
        await linux.ready()
        done = trio.Event()
        oids, captured = 0, []

        async def meddle():
            nonlocal oids
            while not done.is_set():
                assert (await nic.query_oid("OID_GEN_CURRENT_PACKET_FILTER", 4)).ok
                await nic.set_packet_filter(nic._filter)
                nic.stack_report()
                nic.rx_latency()
                nic.pump_counters()
                nic.set_capture(None if oids % 2 else captured.extend)
                oids += 1
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(meddle)
            with trio.fail_after(60):
                for burst in range(100):
                    sent = [frame(burst * 32 + i) for i in range(32)]
                    for f in sent:
                        await linux.sock.send(f)
                    for f in sent:
                        assert await linux.received() == f
            done.set()
        assert pump_threads() == 1
        counters = nic.pump_counters()
        assert counters["tap_in"] >= 3200 and counters["tap_out"] >= 3200
        assert counters["tap_out_dropped"] == 0 and counters["tap_error"] == 0
        assert nic.violations() == [] and nic.fault is None
        assert nic.adapter.stack_report()["entry_points"]["MiniportCheckForHang"]["calls"] > 0
        print(f"{counters['tap_in']} frames each way, {oids} rounds of OID requests beside them")
    assert nic.violations_at_halt == [] and nic.leaks == []
    assert pump_threads() == 0


async def test_a_caller_that_waited_for_the_lock_never_stalls_the_thread(linux):
    """The thread lets a waiting caller go first and sleeps until its
    unlock; every way of unlocking must wake it (here: reading counters
    while a frame is on its way, with nothing else to wake the thread)."""
    async with open_adapter("mocknic", tap_fd=linux.fd, on_carrier=linux.carrier,
                            hang_check=0) as nic:
        await linux.ready()
        for seq in range(300):
            await linux.sock.send(frame(seq))
            nic.pump_counters()
            with trio.fail_after(2):
                assert await linux.received() == frame(seq)


async def test_a_clean_stop_halts_the_driver_and_leaves_nothing(linux):
    async with open_adapter("mocknic", tap_fd=linux.fd, on_carrier=linux.carrier):
        pass
    before = resources()
    for _ in range(3):
        async with open_adapter("mocknic", tap_fd=linux.fd, on_carrier=linux.carrier) as nic:
            await linux.ready()
            await linux.sock.send(frame(1))
            with trio.fail_after(10):
                assert await linux.received() == frame(1)
        assert nic.violations_at_halt == [] and nic.leaks == []
    assert resources() == before
    assert pump_threads() == 0


@pytest.mark.parametrize("knob, fault, deadlines", [
    (11, StackOverflowFault, {}),                       # on the thread's alternate stack
    (10, DriverTimeoutFault, {"send": 0.1}),            # the watchdog signals the thread
])
async def test_a_fault_on_the_pump_thread_is_the_hosts_fault(linux, knob, fault, deadlines):
    """The thread is registered with the trap: an overflow or a hang in
    MiniportSendPackets on it is reported like one on the trio thread, and
    the process lives on."""
    async with open_adapter("mocknic", tap_fd=linux.fd, on_carrier=linux.carrier,
                            deadlines=deadlines) as nic:
        await nic.set_oid(OID_MOCKNIC_FAULT, knob.to_bytes(4, "little"))
        await linux.ready()
        await linux.sock.send(frame(7))
        with trio.fail_after(10):
            await nic.faulted.wait()
        assert isinstance(nic.fault, fault), nic.fault
        assert nic.fault.entry_point == "MiniportSendPackets"
        assert nic.fault.where.startswith("mocknic.sys+0x")
        assert nic.adapter.pump_thread is None and pump_threads() == 0
        with pytest.raises(DriverFaulted):
            await nic.query_oid("OID_GEN_XMIT_OK", 8)
        print(f"pump thread: {nic.fault}")


async def test_link_changes_logs_and_captures_reach_trio(linux):
    """What the thread announces: the driver's status indications (and the
    TAP's carrier with them), its DbgPrint lines, and captured frames."""
    carrier, lines, records = [], [], []

    def on_carrier(up):
        carrier.append(up)
        linux.carrier(up)

    async with open_adapter("mocknic", tap_fd=linux.fd, on_carrier=on_carrier) as nic:
        nic.on_log = lines.extend
        nic.set_capture(records.extend)
        nic.set_link(False)
        with trio.fail_after(10):
            while (await nic.status_event()).kind != "status":
                pass
            while "mocknic: link down" not in lines or carrier[-1] is not False:
                await trio.sleep(0.01)
        nic.set_link(True)
        with trio.fail_after(10):
            while not carrier[-1]:
                await trio.sleep(0.01)
            await linux.ready()
            await linux.sock.send(frame(3))
            assert await linux.received() == frame(3)
            ours = []
            while len(ours) < 2:                # Linux's own chatter is captured too
                await trio.sleep(0.01)
                ours = [(d, f) for _, d, f in records if f == frame(3)]
        assert ours == [("out", frame(3)), ("in", frame(3))]


async def test_interrupt_delivery_is_measured_per_frame(linux):
    async with open_adapter("mocknic", tap_fd=linux.fd, on_carrier=linux.carrier) as nic:
        await linux.ready()
        before = nic.rx_latency()
        started = trio.current_time()
        for seq in range(100):
            await linux.sock.send(frame(seq))
            with trio.fail_after(10):
                await linux.received()
        elapsed_us = (trio.current_time() - started) * 1e6
        after = nic.rx_latency()
    summary = latency_summary([b - a for a, b in zip(before, after)])
    print(f"loopback wire to indication: {summary}")
    assert summary["count"] == 100
    assert 0 < summary["p50_us"] <= summary["p99_us"] <= elapsed_us / 100 * 5


def test_latency_buckets_are_eight_per_power_of_two():
    assert [latency_floor(i) for i in range(10)] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert [latency_floor(i) for i in (16, 23, 24, 495)] == [16, 30, 32, 15 << 60]
    buckets = [0] * 496
    buckets[56] = 99                # [512, 576) ns
    buckets[92] = 1                 # [12288, 13312) ns
    assert latency_summary(buckets) == {"count": 100, "p50_us": 0.54, "p99_us": 0.54,
                                        "max_us": 12.8}
    assert latency_summary([0] * 496)["p50_us"] is None


def resident_in(kind):
    """Resident KiB of the runtime's mappings of this kind."""
    return sum(resident_kib(address, length) for address, length, what in mappings()
               if what == kind)


async def test_traffic_in_small_bursts_keeps_the_host_rings_to_a_few_pages(linux):
    """1,600 full-size frames in bursts of 16: the host's TX slots hold one
    page per frame in flight and its rx ring starts again at its beginning
    whenever it is empty, so neither walks all its pages (the 256 KiB rx
    ring, 16 MiB of slots)."""
    full = MAC + bytes.fromhex("02aabbccddee") + ETHERTYPE.to_bytes(2, "big")
    async with open_adapter("mocknic", tap_fd=linux.fd, on_carrier=linux.carrier) as nic:
        await linux.ready()
        with trio.fail_after(60):
            for burst in range(100):
                sent = [full + b"%06d" % (burst * 16 + i) + bytes(1494) for i in range(16)]
                for f in sent:
                    await linux.sock.send(f)
                for f in sent:
                    assert await linux.received() == f
        rx_ring, tx_slots = resident_in("rxring"), resident_in("txslots")
        print(f"1600 frames of 1514 bytes: rx ring {rx_ring} KiB, TX slots {tx_slots} KiB resident")
        assert rx_ring <= 16 * 1514 // 1024 + 8
        assert tx_slots <= 16 * 4 + 8
