"""Task offload through the real path: OID_TCP_TASK_OFFLOAD on mocknic.sys,
per-packet checksum and large-send info, and the mock NIC's TX engine
filling checksums and cutting TCP segments as hardware does, its RX engine
checking them.  The loopback wire brings every segment back to be checked.
"""
import random
import struct

import pytest

from ndisproxy._binding import lib
from ndisproxy.host import DEFAULT_MAC, open_adapter

MAC = bytes.fromhex(DEFAULT_MAC.replace(":", ""))
PEER = bytes.fromhex("02aabbccddee")
SRC, DST = bytes([198, 51, 100, 1]), bytes([198, 51, 100, 2])
SRC6 = bytes.fromhex("20010db8000000000000000000000001")
DST6 = bytes.fromhex("20010db8000000000000000000000002")

# NDIS_TASK and NDIS_ENCAPSULATION values (ndis_constants.h)
CHECKSUM_TASK, LARGE_SEND_TASK, IEEE_802_3 = 0, 2, 2
# NDIS_TCP_IP_CHECKSUM_PACKET_INFO.Transmit bits
TX_V4, TX_V6, TX_TCP, TX_UDP, TX_IP = 1, 2, 4, 8, 16
# .Receive bits
RX_TCP_FAILED, RX_UDP_FAILED, RX_IP_FAILED = 1, 2, 4
RX_TCP_OK, RX_UDP_OK, RX_IP_OK = 8, 16, 32

TASK_HEADER = struct.Struct("<IIII I I I")       # NDIS_TASK_OFFLOAD_HEADER, 28 bytes
TASK = struct.Struct("<IIIII")                   # NDIS_TASK_OFFLOAD up to TaskBuffer
LSO = struct.Struct("<IIIBBxx")                  # NDIS_TASK_TCP_LARGE_SEND
CSUM_ALL_V4 = 0b11111                            # options, TCP, UDP, IP
CSUM_ALL_V6 = 0b01110                            # TCP options, TCP, UDP


def fold(total):
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def ones_sum(data):
    if len(data) % 2:
        data += b"\0"
    return fold(sum(struct.unpack(f">{len(data) // 2}H", data)))


def ipv4(proto, payload, ident=7, options=b""):
    ihl = 5 + len(options) // 4
    return struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + len(payload), ident, 0x4000,
                       64, proto, 0, SRC, DST) + options + payload


def ipv6(proto, payload):
    return struct.pack(">IHBB16s16s", 6 << 28, len(payload), proto, 64, SRC6, DST6) + payload


def tcp(payload, seq=1000, flags=0x18):               # PSH|ACK
    return struct.pack(">HHIIBBHHH", 40000, 5201, seq, 1, 5 << 4, flags, 65535, 0, 0) + payload


def udp(payload):
    return struct.pack(">HHHH", 40000, 5201, 8 + len(payload), 0) + payload


def ether(packet, v6=False):
    return MAC + PEER + (b"\x86\xdd" if v6 else b"\x08\x00") + packet


def checksums_ok(frame):
    """(ip_ok, l4_ok) of an IPv4 or IPv6 frame carrying TCP or UDP."""
    if frame[12:14] == b"\x08\x00":
        ihl = (frame[14] & 15) * 4
        ip = frame[14:14 + struct.unpack(">H", frame[16:18])[0]]
        l4 = ip[ihl:]
        pseudo = ip[12:20] + struct.pack(">BBH", 0, ip[9], len(l4))
        ip_ok = ones_sum(ip[:ihl]) == 0xFFFF
    else:
        ip = frame[14:14 + 40 + struct.unpack(">H", frame[18:20])[0]]
        l4 = ip[40:]
        pseudo = ip[8:40] + struct.pack(">IxxxB", len(l4), ip[6])
        ip_ok = True
    return ip_ok, ones_sum(pseudo + l4) == 0xFFFF


def offload_set(csum=True, lso_max=None):
    """An OID_TCP_TASK_OFFLOAD set buffer enabling these tasks."""
    tasks = []
    if csum:
        tasks.append((CHECKSUM_TASK,
                      struct.pack("<IIII", CSUM_ALL_V4, CSUM_ALL_V4, CSUM_ALL_V6, CSUM_ALL_V6)))
    if lso_max:
        tasks.append((LARGE_SEND_TASK, LSO.pack(0, lso_max, 2, 1, 1)))
    body = b""
    for i, (task, buf) in enumerate(tasks):
        step = 0 if i == len(tasks) - 1 else TASK.size + len(buf)
        body += TASK.pack(lib.NDIS_TASK_OFFLOAD_VERSION, TASK.size + 4, task, step, len(buf)) + buf
    first = TASK_HEADER.size if tasks else 0
    return TASK_HEADER.pack(lib.NDIS_TASK_OFFLOAD_VERSION, TASK_HEADER.size, 0, first,
                            IEEE_802_3, 1, 14) + body


async def receive_n(nic, n):
    return [await nic.receive() for _ in range(n)]


async def enable(nic, **kw):
    result = await nic.set_oid("OID_TCP_TASK_OFFLOAD", offload_set(**kw))
    assert result.ok, result.status_name


async def test_query_advertises_checksums_and_ipv4_large_send():
    async with open_adapter("mocknic") as nic:
        supported = (await nic.query_oid("OID_GEN_SUPPORTED_LIST", 512)).data
        assert lib.OID_TCP_TASK_OFFLOAD in struct.unpack(f"<{len(supported) // 4}I", supported)
        answer = (await nic.query_oid("OID_TCP_TASK_OFFLOAD", 256)).data
        version, size, _, first, encap, flags, hlen = TASK_HEADER.unpack_from(answer)
        assert (version, size, first) == (1, 28, 28)
        assert (encap, flags, hlen) == (IEEE_802_3, 1, 14)
        tasks, at = {}, first
        while True:
            _, _, task, step, length = TASK.unpack_from(answer, at)
            tasks[task] = answer[at + TASK.size:at + TASK.size + length]
            if not step:
                break
            at += step
        v4tx, v4rx, v6tx, v6rx = struct.unpack("<IIII", tasks[CHECKSUM_TASK])
        assert v4tx == v4rx == CSUM_ALL_V4 and v6tx == v6rx == CSUM_ALL_V6
        version, max_size, min_segments, tcp_options, ip_options = LSO.unpack(
            tasks[LARGE_SEND_TASK])
        assert (version, min_segments, tcp_options, ip_options) == (0, 2, 1, 1)
        assert max_size == 64000                       # 63 buffers of 1518 hold it
        too_short = await nic.query_oid("OID_TCP_TASK_OFFLOAD", 64)
        assert too_short.status_name == "NDIS_STATUS_INVALID_LENGTH"


async def test_transmit_checksums_are_filled_in_and_checked_on_receive():
    rng = random.Random(3)
    frames = [ether(ipv4(6, tcp(rng.randbytes(1000)))),
              ether(ipv4(17, udp(rng.randbytes(333)), options=b"\x01\x01\x01\x00")),
              ether(ipv6(6, tcp(rng.randbytes(1200))), v6=True),
              ether(ipv6(17, udp(rng.randbytes(77))), v6=True)]
    infos = [(TX_V4 | TX_TCP | TX_IP, 0), (TX_V4 | TX_UDP | TX_IP, 0),
             (TX_V6 | TX_TCP, 0), (TX_V6 | TX_UDP, 0)]
    async with open_adapter("mocknic") as nic:
        await nic.send(frames, infos)                  # not enabled yet: sent as they are
        assert [checksums_ok(f) for f in await receive_n(nic, 4)] == [
            (False, False), (False, False), (True, False), (True, False)]
        assert nic.stats()["rx_csum_good"] == 0         # nor checked on receive

        await enable(nic)
        await nic.send(frames, infos)
        received = await receive_n(nic, 4)
        assert [checksums_ok(f) for f in received] == [(True, True)] * 4
        for sent, got in zip(frames, received):         # only the checksums differ
            assert len(sent) == len(got)
        stats = nic.stats()
        assert stats["rx_csum_good"] == 4 and stats["rx_csum_failed"] == 0
        assert nic.adapter.device_counters()["rx_csum_bad"] == 0


async def test_a_spoiled_checksum_is_reported_failed_on_receive():
    async with open_adapter("mocknic") as nic:
        await enable(nic)
        frame = ether(ipv4(6, tcp(bytes(500))))
        nic.adapter.corrupt_checksums(1)
        await nic.send([frame, frame], [(TX_V4 | TX_TCP | TX_IP, 0)] * 2)
        first, second = await receive_n(nic, 2)
        assert checksums_ok(first) == (True, False) and checksums_ok(second) == (True, True)
        stats = nic.stats()
        assert stats["rx_csum_failed"] == 1 and stats["rx_csum_good"] == 1
        assert nic.adapter.device_counters()["rx_csum_bad"] == 1


@pytest.mark.parametrize("payload_len, mss, flags", [(20000, 1448, 0x19), (2896, 1448, 0x18),
                                                     (1000, 1448, 0x10)])
async def test_large_send_is_cut_into_segments_as_hardware_does(payload_len, mss, flags):
    rng = random.Random(payload_len)
    payload = rng.randbytes(payload_len)
    big = ether(ipv4(6, tcp(payload, seq=0xFFFFF000, flags=flags), ident=0xFFFE))
    count = -(-payload_len // mss)
    async with open_adapter("mocknic") as nic:
        await enable(nic, lso_max=64000)
        await nic.send([big], [(0, mss)])
        segments = await receive_n(nic, count)
        stats, device = nic.stats(), nic.adapter.device_counters()
    assert stats["tx_completed"] == 1 and stats["tx_large_sends"] == 1
    assert device["tso_frames"] == 1 and device["tx_frames"] == count
    assert stats["rx_csum_good"] == count
    data = b""
    for i, seg in enumerate(segments):
        assert checksums_ok(seg) == (True, True)
        ident, = struct.unpack(">H", seg[18:20])
        seq, = struct.unpack(">I", seg[38:42])
        assert ident == (0xFFFE + i) & 0xFFFF
        assert seq == (0xFFFFF000 + i * mss) & 0xFFFFFFFF
        last = i == count - 1
        assert seg[47] == (flags if last else flags & ~0x09)     # FIN, PSH only at the end
        chunk = seg[54:]
        assert len(chunk) == (payload_len - i * mss if last else mss)
        data += chunk
    assert data == payload


async def test_large_send_refused_unless_enabled_and_within_limits():
    big = ether(ipv4(6, tcp(bytes(8000))))
    async with open_adapter("mocknic") as nic:
        await nic.send([big], [(0, 1448)])             # not enabled: too long a frame
        assert nic.stats()["tx_failed"] == 1
        too_big = await nic.set_oid("OID_TCP_TASK_OFFLOAD", offload_set(lso_max=64001))
        assert too_big.status_name == "NDIS_STATUS_NOT_SUPPORTED"
        await enable(nic, lso_max=64000)
        await nic.send([big], [(0, 1448)])
        assert len(await receive_n(nic, 6)) == 6
        await enable(nic, csum=False)                  # no tasks: everything off
        await nic.send([big], [(0, 1448)])
        assert nic.stats()["tx_failed"] == 2
