"""The mock NIC and its miniport, through the real path, driven by trio.

Frames go host -> MiniportSendPackets -> TX ring -> device -> loopback wire
-> RX ring -> interrupt -> ISR -> DPC -> NdisMIndicateReceivePacket -> host,
and packets go back through MiniportReturnPacket.
"""
import random
import struct

import pytest
import trio

from ndisproxy import DriverImage, FrameError, StackOverflowFault, drivers
from ndisproxy._binding import lib
from ndisproxy.host import DEFAULT_MAC, open_adapter

KiB = 1024
MAC = bytes.fromhex(DEFAULT_MAC.replace(":", ""))
PEER = bytes.fromhex("02aabbccddee")
DIRECTED = lib.NDIS_PACKET_TYPE_DIRECTED
MULTICAST = lib.NDIS_PACKET_TYPE_MULTICAST
BROADCAST = lib.NDIS_PACKET_TYPE_BROADCAST
ALL_MULTICAST = lib.NDIS_PACKET_TYPE_ALL_MULTICAST


def frame(length, rng, dst=MAC, vlan=False):
    """An Ethernet frame of ``length`` bytes (header included) to ``dst``."""
    header = dst + PEER + (b"\x81\x00" + struct.pack(">H", 42) + b"\x08\x00" if vlan
                           else b"\x08\x00")
    payload = rng.randbytes(max(length - len(header), 0))
    return (header + payload)[:length]


def padded(f):
    return f if len(f) >= 60 else f + bytes(60 - len(f))


async def receive_n(nic, n, timeout=30):
    frames = []
    with trio.fail_after(timeout):
        while len(frames) < n:
            frames.append(await nic.receive())
    return frames


async def test_loopback_10000_frames_in_order_byte_identical():
    rng = random.Random(1)
    sent = []
    for i in range(10_000):
        if i % 50 == 0:
            sent.append(frame(rng.randint(18, 1518), rng, vlan=True))   # up to MTU + 18
        else:
            sent.append(frame(rng.randint(14, 1514), rng))
    async with open_adapter("mocknic") as nic:
        received = []
        for start in range(0, len(sent), 64):
            await nic.send(sent[start:start + 64])
            received += await receive_n(nic, len(sent[start:start + 64]))
        assert [len(f) for f in received] == [len(padded(f)) for f in sent]
        assert received == [padded(f) for f in sent]
        stats = nic.stats()
        assert stats["tx_completed"] == 10_000 and stats["tx_failed"] == 0
        assert stats["rx_indicated"] == 10_000
        assert stats["rx_returned"] == stats["rx_indicated"]        # every packet returned
        assert (await nic.query_oid("OID_GEN_XMIT_OK", 8)).value == 10_000
        assert (await nic.query_oid("OID_GEN_RCV_OK", 8)).value == 10_000
        assert (await nic.query_oid("OID_GEN_XMIT_ERROR", 8)).value == 0
    assert nic.leaks == []                                          # nothing left at halt
    assert nic.violations_at_halt == []


async def test_frames_too_short_or_too_long_are_refused_and_counted():
    async with open_adapter("mocknic") as nic:
        with pytest.raises(FrameError, match="frame 1 of the batch is 13 bytes: shorter"):
            await nic.send([bytes(60), bytes(13)])
        with pytest.raises(FrameError, match="1519 bytes: longer than the maximum frame"):
            await nic.send([bytes(1519)])
        stats = nic.stats()
        assert stats["tx_refused_short"] == 1 and stats["tx_refused_long"] == 1
        assert stats["tx_sent"] == 0                                 # the batch was refused whole


ULONG_OIDS = {
    "OID_GEN_HARDWARE_STATUS": 4, "OID_GEN_MEDIA_SUPPORTED": 4, "OID_GEN_MEDIA_IN_USE": 4,
    "OID_GEN_MAXIMUM_FRAME_SIZE": 4, "OID_GEN_MAXIMUM_TOTAL_SIZE": 4, "OID_GEN_LINK_SPEED": 4,
    "OID_GEN_TRANSMIT_BUFFER_SPACE": 4, "OID_GEN_RECEIVE_BUFFER_SPACE": 4,
    "OID_GEN_TRANSMIT_BLOCK_SIZE": 4, "OID_GEN_RECEIVE_BLOCK_SIZE": 4, "OID_GEN_VENDOR_ID": 4,
    "OID_GEN_VENDOR_DRIVER_VERSION": 4, "OID_GEN_DRIVER_VERSION": 2,
    "OID_GEN_CURRENT_PACKET_FILTER": 4, "OID_GEN_CURRENT_LOOKAHEAD": 4,
    "OID_GEN_MAXIMUM_LOOKAHEAD": 4, "OID_GEN_MAC_OPTIONS": 4, "OID_GEN_MEDIA_CONNECT_STATUS": 4,
    "OID_GEN_MAXIMUM_SEND_PACKETS": 4, "OID_802_3_PERMANENT_ADDRESS": 6,
    "OID_802_3_CURRENT_ADDRESS": 6, "OID_802_3_MAXIMUM_LIST_SIZE": 4,
    "OID_802_3_RCV_ERROR_ALIGNMENT": 4, "OID_802_3_XMIT_ONE_COLLISION": 4,
    "OID_802_3_XMIT_MORE_COLLISIONS": 4,
}
COUNTER_OIDS = ["OID_GEN_XMIT_OK", "OID_GEN_RCV_OK", "OID_GEN_XMIT_ERROR", "OID_GEN_RCV_ERROR",
                "OID_GEN_RCV_NO_BUFFER"]


async def test_every_oid_answers_with_the_right_size_and_buffer_contract():
    async with open_adapter("mocknic", parameters={"MTU": 1500}) as nic:
        supported = await nic.query_oid("OID_GEN_SUPPORTED_LIST", 1024)
        assert supported.ok and len(supported.data) % 4 == 0
        listed = set(struct.unpack(f"<{len(supported.data) // 4}I", supported.data))
        for name, size in ULONG_OIDS.items():
            oid = getattr(lib, name)
            assert oid in listed, name
            full = await nic.query_oid(name, 64)
            assert full.ok and len(full.data) == size, (name, full)
            short = await nic.query_oid(name, size - 1)
            assert short.status == lib.NDIS_STATUS_INVALID_LENGTH, (name, short.status_name)
            assert short.needed == size and short.data == b"", name
        for name in COUNTER_OIDS:
            assert getattr(lib, name) in listed
            assert len((await nic.query_oid(name, 8)).data) == 8
            assert len((await nic.query_oid(name, 4)).data) == 4
            short = await nic.query_oid(name, 3)
            assert short.status == lib.NDIS_STATUS_INVALID_LENGTH and short.needed == 8
        description = await nic.query_oid("OID_GEN_VENDOR_DESCRIPTION", 128)
        assert description.data.rstrip(b"\0") == b"ndisproxy mock NIC"
        assert (await nic.query_oid("OID_GEN_MAXIMUM_FRAME_SIZE", 4)).value == 1500
        assert (await nic.query_oid("OID_802_3_CURRENT_ADDRESS", 6)).data == MAC
        assert (await nic.query_oid("OID_GEN_MEDIA_CONNECT_STATUS", 4)).value == 0  # connected
        assert (await nic.query_oid(0x00FFFFFF, 64)).status == lib.NDIS_STATUS_NOT_SUPPORTED


async def test_network_address_and_mtu_parameters():
    params = {"NetworkAddress": "02-11-22-33-44-55", "MTU": 9000}
    async with open_adapter("mocknic", parameters=params) as nic:
        assert (await nic.query_oid("OID_802_3_CURRENT_ADDRESS", 6)).data.hex() == "021122334455"
        assert (await nic.query_oid("OID_802_3_PERMANENT_ADDRESS", 6)).data == MAC
        assert nic.adapter.max_frame == 9018
        big = bytes.fromhex("021122334455") + PEER + b"\x08\x00" + bytes(9000)
        await nic.send([big])
        assert await receive_n(nic, 1) == [big]


async def test_packet_filter_and_multicast_list_take_effect_in_the_device():
    group_in, group_out = bytes.fromhex("01005e000001"), bytes.fromhex("01005e000002")
    rng = random.Random(2)
    async with open_adapter("mocknic") as nic:
        await nic.set_multicast_list([group_in], base_filter=DIRECTED | BROADCAST)
        assert (await nic.query_oid("OID_802_3_MULTICAST_LIST", 64)).data == group_in
        before = nic.adapter.device_counters()["rx_filtered"]
        f_out, f_in = frame(100, rng, dst=group_out), frame(100, rng, dst=group_in)
        await nic.send([f_out, f_in])
        assert await receive_n(nic, 1) == [f_in]                     # f_out was dropped
        assert nic.adapter.device_counters()["rx_filtered"] == before + 1

        # More groups than OID_802_3_MAXIMUM_LIST_SIZE: all-multicast instead.
        limit = (await nic.query_oid("OID_802_3_MAXIMUM_LIST_SIZE", 4)).value
        many = [bytes([1, 0, 0x5e, 1, 0, i]) for i in range(limit + 1)]
        assert await nic.set_multicast_list(many) is False
        assert nic.adapter.device_counters()["rx_filter"] & ALL_MULTICAST
        await nic.send([f_out])
        assert await receive_n(nic, 1) == [f_out]

        # Without DIRECTED in the filter, unicast to us is dropped too.
        await nic.set_packet_filter(BROADCAST)
        await nic.send([frame(80, rng), frame(80, rng, dst=b"\xff" * 6)])
        assert [f[:6] for f in await receive_n(nic, 1)] == [b"\xff" * 6]


async def test_link_change_reaches_the_driver_as_a_status_indication():
    async with open_adapter("mocknic") as nic:
        nic.set_link(False)
        with trio.fail_after(5):
            event = await nic.status_event()
        assert event.status == lib.NDIS_STATUS_MEDIA_DISCONNECT
        assert (await nic.query_oid("OID_GEN_MEDIA_CONNECT_STATUS", 4)).value == 1
        nic.set_link(True)
        with trio.fail_after(5):
            while (event := await nic.status_event()).kind != "status":
                pass
        assert event.status == lib.NDIS_STATUS_MEDIA_CONNECT


def test_initialize_needs_more_than_8k_and_less_than_24k_of_stack():
    with DriverImage.load(drivers.path("mocknic")) as image:
        adapter = image.create_adapter()
        adapter.attach_mocknic(DEFAULT_MAC)
        adapter.initialize()
        used = adapter.stack_report()["entry_points"]["MiniportInitialize"]["high_water"]
        print(f"MiniportInitialize used {used} bytes of stack")
        assert 8 * KiB < used < 24 * KiB
        adapter.halt()


def test_stack_hunger_over_the_stack_size_overflows_in_initialize():
    with DriverImage.load(drivers.path("mocknic")) as image:
        adapter = image.create_adapter(stack_size=32 * KiB, parameters={"StackHunger": 40})
        adapter.attach_mocknic(DEFAULT_MAC)
        with pytest.raises(StackOverflowFault) as info:
            adapter.initialize()
        assert info.value.entry_point == "MiniportInitialize"
        assert info.value.where.startswith("mocknic.sys+0x")


def pe_imports(path):
    """{module: [function, ...]} from a PE32+ file's import directory."""
    from .test_loader import Pe

    data = bytearray(path.read_bytes())
    pe = Pe(data)
    rva, _ = struct.unpack_from("<II", data, pe.directory(1))
    imports, at = {}, pe.rva_to_offset(rva)
    while True:
        lookup, _, _, name_rva, iat = struct.unpack_from("<IIIII", data, at)
        if not (lookup or name_rva or iat):
            return imports
        name_at = pe.rva_to_offset(name_rva)
        module = bytes(data[name_at:data.index(0, name_at)]).decode()
        thunk_at, names = pe.rva_to_offset(lookup or iat), []
        while (thunk := struct.unpack_from("<Q", data, thunk_at)[0]):
            assert not thunk >> 63, "ordinal import"
            fn_at = pe.rva_to_offset(thunk) + 2
            names.append(bytes(data[fn_at:data.index(0, fn_at)]).decode())
            thunk_at += 8
        imports[module] = names
        at += 20


def test_mock_driver_imports_only_ndis_ntoskrnl_and_hal():
    imports = pe_imports(drivers.path("mocknic"))
    assert set(imports) <= {"NDIS.SYS", "ntoskrnl.exe", "HAL.dll"}, imports
    assert "NdisMRegisterMiniport" in imports["NDIS.SYS"]
    assert "WRITE_PORT_ULONG" in imports["HAL.dll"]
    assert struct.unpack_from("<H", drivers.path("mocknic").read_bytes(), 0)[0] == 0x5A4D


def test_interrupt_moderation_defers_the_line_until_the_interval_passed():
    frame_ = MAC + PEER + b"\x08\x00" + bytes(46)
    with DriverImage.load(drivers.path("mocknic")) as image:
        adapter = image.create_adapter(parameters={"InterruptModeration": 10_000})   # 10 ms
        adapter.attach_mocknic(DEFAULT_MAC)
        adapter.initialize()
        adapter.set_raw("OID_GEN_CURRENT_PACKET_FILTER", DIRECTED.to_bytes(4, "little"))
        adapter.send([frame_])
        assert adapter.service_interrupt() >= 1                   # first one: at once
        assert len(adapter.receive_frames()) == 1
        adapter.return_packets()
        adapter.send([frame_])
        assert adapter.service_interrupt() == 0                   # held off by ITR
        due = adapter.next_timer()
        now = lib.np_api_now_ns()
        assert due is not None and now < due <= now + 10_000_000
        adapter.run_timers(due)                                   # the interval passed
        assert adapter.service_interrupt() >= 1
        assert len(adapter.receive_frames()) == 1
        adapter.halt()


def test_bad_parameter_fails_initialize_with_the_drivers_reason():
    with DriverImage.load(drivers.path("mocknic")) as image:
        adapter = image.create_adapter(parameters={"MTU": 575})
        adapter.attach_mocknic(DEFAULT_MAC)
        with pytest.raises(Exception, match=r"NDIS_STATUS_FAILURE \(driver: .*MTU = 575") as info:
            adapter.initialize()
        assert "\n" not in str(info.value)
