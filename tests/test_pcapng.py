"""pcapng captures of the miniport boundary (ndisproxy.pcapng).

Without tools: round trips through read_pcapng (several interfaces, both
directions, odd frame lengths that need padding, comments, truncation to
snaplen), the exact bytes of one SHB/IDB/EPB, and the errors.  With tshark:
a hand-built ICMP echo request and reply (198.51.100.1 <-> 198.51.100.2)
decode as ICMP types 8 and 0 with good checksums, and Wireshark reads back
the interface names, directions (frame.packet_flags_direction), comments and
nanosecond timestamps.  Without tshark that test skips, or fails with
NDISPROXY_REQUIRE_NET=1.

Imports nothing of ndisproxy but ndisproxy.pcapng.
"""
import io
import os
import shutil
import struct
import subprocess

import pytest

from ndisproxy.pcapng import PcapngWriter, read_pcapng

REQUIRE_ENV = "NDISPROXY_REQUIRE_NET"
T0 = 1_700_000_000_123_456_789      # ns since the epoch; sub-microsecond digits
HOST_MAC, PEER_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
HOST_V4, PEER_V4 = "198.51.100.1", "198.51.100.2"


def packets(blocks):
    return [b for b in blocks if b["block"] == "packet"]


def interfaces(blocks):
    return [b for b in blocks if b["block"] == "interface"]


# -- round trips ---------------------------------------------------------------

def test_round_trip_interfaces_directions_padding_comments():
    out = io.BytesIO()
    writer = PcapngWriter(out)
    ids = [writer.add_interface("np0", "mocknic.sys (Mock NIC)"),
           writer.add_interface("np1"),
           writer.add_interface("np2", "small snaplen", snaplen=96)]
    assert ids == [0, 1, 2]
    sent = []
    lengths = [1, 14, 59, 60, 61, 62, 63, 64, 65, 1514]
    directions = ["in", "out", None]
    comments = [None, "", "indicated by NdisMIndicateReceivePacket", "größe ✓"]
    for n, length in enumerate(lengths):
        frame = bytes((n * 7 + i) % 256 for i in range(length))
        entry = dict(interface_id=ids[n % 3], frame=frame, timestamp_ns=T0 + n * 1001,
                     direction=directions[n % 3], comment=comments[n % 4])
        writer.write(entry["interface_id"], frame, timestamp_ns=entry["timestamp_ns"],
                     direction=entry["direction"], comment=entry["comment"])
        sent.append(entry)
    writer.flush()
    data = out.getvalue()
    assert len(data) % 4 == 0

    blocks = read_pcapng(data)
    assert blocks[0] == {"block": "section", "version": (1, 0), "byte_order": "<",
                         "application": "ndisproxy"}
    assert interfaces(blocks) == [
        {"block": "interface", "id": 0, "linktype": 1, "snaplen": 65535, "name": "np0",
         "description": "mocknic.sys (Mock NIC)", "tsresol": 9},
        {"block": "interface", "id": 1, "linktype": 1, "snaplen": 65535, "name": "np1",
         "description": None, "tsresol": 9},
        {"block": "interface", "id": 2, "linktype": 1, "snaplen": 96, "name": "np2",
         "description": "small snaplen", "tsresol": 9},
    ]
    got = packets(blocks)
    assert len(got) == len(sent)
    for entry, packet in zip(sent, got):
        snaplen = 96 if entry["interface_id"] == 2 else 65535
        assert packet == {"block": "packet", "interface_id": entry["interface_id"],
                          "timestamp_ns": entry["timestamp_ns"],
                          "original_length": len(entry["frame"]),
                          "direction": entry["direction"], "comment": entry["comment"],
                          "frame": entry["frame"][:snaplen]}


def test_frames_longer_than_snaplen_are_truncated_not_rejected():
    out = io.BytesIO()
    writer = PcapngWriter(out)
    iface = writer.add_interface("np0", snaplen=64)
    frame = bytes(range(100))
    writer.write(iface, frame, timestamp_ns=T0, direction="in")
    writer.write(iface, bytearray(frame[:64]), timestamp_ns=T0 + 1)     # exactly snaplen
    writer.write(iface, memoryview(frame)[:3], timestamp_ns=T0 + 2)     # any bytes-like
    first, second, third = packets(read_pcapng(out.getvalue()))
    assert (first["frame"], first["original_length"]) == (frame[:64], 100)
    assert (second["frame"], second["original_length"]) == (frame[:64], 64)
    assert (third["frame"], third["original_length"]) == (frame[:3], 3)


def test_timestamp_extremes_and_no_application():
    out = io.BytesIO()
    writer = PcapngWriter(out, application=None)
    iface = writer.add_interface("np0")
    for ts in (0, 1, 2**32 - 1, 2**32, 2**64 - 1):
        writer.write(iface, b"\xff" * 60, timestamp_ns=ts)
    blocks = read_pcapng(out.getvalue())
    assert blocks[0]["application"] is None
    assert [p["timestamp_ns"] for p in packets(blocks)] == [0, 1, 2**32 - 1, 2**32, 2**64 - 1]


def test_interfaces_may_be_added_between_packets():
    out = io.BytesIO()
    writer = PcapngWriter(out)
    a = writer.add_interface("np0")
    writer.write(a, b"a" * 60, timestamp_ns=T0, direction="out")
    b = writer.add_interface("np1")
    writer.write(b, b"b" * 60, timestamp_ns=T0 + 1, direction="in")
    writer.write(a, b"c" * 60, timestamp_ns=T0 + 2)
    blocks = read_pcapng(out.getvalue())
    assert [x["block"] for x in blocks] == [
        "section", "interface", "packet", "interface", "packet", "packet"]
    assert [(p["interface_id"], p["frame"][:1], p["direction"]) for p in packets(blocks)] == [
        (0, b"a", "out"), (1, b"b", "in"), (0, b"c", None)]


# -- exact bytes ---------------------------------------------------------------

def test_block_bytes():
    out = io.BytesIO()
    writer = PcapngWriter(out, application="np")
    shb = out.getvalue()
    assert shb == (
        struct.pack("<II", 0x0A0D0D0A, 40)          # type, total length
        + struct.pack("<I", 0x1A2B3C4D)             # byte-order magic
        + struct.pack("<HH", 1, 0)                  # version 1.0
        + struct.pack("<q", -1)                     # section length: not given
        + struct.pack("<HH", 4, 2) + b"np\0\0"      # shb_userappl, padded
        + struct.pack("<HH", 0, 0)                  # opt_endofopt
        + struct.pack("<I", 40))
    assert shb[:4] == b"\x0a\x0d\x0d\x0a" and shb[8:12] == b"\x4d\x3c\x2b\x1a"
    assert shb[16:24] == b"\xff" * 8

    writer.add_interface("np0", "NIC", snaplen=1518)
    idb = out.getvalue()[len(shb):]
    assert idb == (
        struct.pack("<II", 1, 48)
        + struct.pack("<HHI", 1, 0, 1518)           # LINKTYPE_ETHERNET, reserved, snaplen
        + struct.pack("<HH", 2, 3) + b"np0\0"       # if_name
        + struct.pack("<HH", 3, 3) + b"NIC\0"       # if_description
        + struct.pack("<HH", 9, 1) + b"\x09\0\0\0"  # if_tsresol = 9 (ns)
        + struct.pack("<HH", 0, 0)
        + struct.pack("<I", 48))

    frame = bytes(range(1, 6))                      # 5 bytes: 3 of padding
    ts = 0x0123456789ABCDEF
    writer.write(0, frame, timestamp_ns=ts, direction="out", comment="hi")
    epb = out.getvalue()[len(shb) + len(idb):]
    assert epb == (
        struct.pack("<II", 6, 60)
        + struct.pack("<I", 0)                      # interface id
        + struct.pack("<II", 0x01234567, 0x89ABCDEF)  # timestamp high, low
        + struct.pack("<II", 5, 5)                  # captured, original length
        + frame + b"\0\0\0"
        + struct.pack("<HHI", 2, 4, 0b10)           # epb_flags: outbound
        + struct.pack("<HH", 1, 2) + b"hi\0\0"      # opt_comment
        + struct.pack("<HH", 0, 0)
        + struct.pack("<I", 60))

    writer.write(0, b"\0" * 4, timestamp_ns=0, direction="in")
    inbound = out.getvalue()[len(shb) + len(idb) + len(epb):]
    assert inbound[32:40] == struct.pack("<HHI", 2, 4, 0b01)   # epb_flags: inbound

    writer.write(0, b"\0" * 4, timestamp_ns=0)      # no options at all: no endofopt
    bare = out.getvalue()[len(shb) + len(idb) + len(epb) + len(inbound):]
    assert bare == struct.pack("<IIIIIII", 6, 36, 0, 0, 0, 4, 4) + bytes(4) + \
        struct.pack("<I", 36)


def test_reads_big_endian():
    """A big-endian file (as written on a big-endian machine) reads the same."""
    def block(block_type, body):
        return struct.pack(">II", block_type, 12 + len(body)) + body + \
            struct.pack(">I", 12 + len(body))

    data = (block(0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1))
            + block(1, struct.pack(">HHI", 1, 0, 65535)
                    + struct.pack(">HH", 2, 3) + b"be0\0"
                    + struct.pack(">HH", 9, 1) + b"\x09\0\0\0" + struct.pack(">HH", 0, 0))
            + block(6, struct.pack(">IIIII", 0, T0 >> 32, T0 & 0xFFFFFFFF, 2, 2)
                    + b"\xab\xcd\0\0" + struct.pack(">HHI", 2, 4, 1)
                    + struct.pack(">HH", 0, 0)))
    blocks = read_pcapng(data)
    assert blocks[0]["byte_order"] == ">"
    assert interfaces(blocks)[0]["name"] == "be0"
    (packet,) = packets(blocks)
    assert (packet["timestamp_ns"], packet["direction"], packet["frame"]) == (
        T0, "in", b"\xab\xcd")


def test_reader_converts_microsecond_default_resolution():
    """An IDB without if_tsresol counts microseconds."""
    out = io.BytesIO()
    PcapngWriter(out, application=None)
    body = struct.pack("<HHI", 1, 0, 65535)
    out.write(struct.pack("<II", 1, 20) + body + struct.pack("<I", 20))
    out.write(struct.pack("<IIIIIII", 6, 36, 0, 0, 1_500_000, 4, 4) + bytes(4)
              + struct.pack("<I", 36))
    blocks = read_pcapng(out.getvalue())
    assert interfaces(blocks)[0]["tsresol"] == 6
    assert packets(blocks)[0]["timestamp_ns"] == 1_500_000_000


# -- errors --------------------------------------------------------------------

@pytest.fixture
def writer_and_stream():
    out = io.BytesIO()
    writer = PcapngWriter(out)
    writer.add_interface("np0", snaplen=128)
    return writer, out


@pytest.mark.parametrize("call, error, message", [
    (lambda w: w.write(1, b"x", timestamp_ns=0), ValueError,
     r"unknown interface id 1 \(interfaces: 0\.\.0\)"),
    (lambda w: w.write(-1, b"x", timestamp_ns=0), ValueError, "unknown interface id -1"),
    (lambda w: w.write(0, b"x", timestamp_ns=0, direction="up"), ValueError,
     "direction must be 'in', 'out' or None, not 'up'"),
    (lambda w: w.write(0, b"x", timestamp_ns=-1), ValueError, "timestamp_ns -1 is outside"),
    (lambda w: w.write(0, b"x", timestamp_ns=2**64), ValueError, "is outside 0..2"),
    (lambda w: w.write(0, b"x", timestamp_ns=1.5), TypeError, "float"),
    (lambda w: w.write(0, 60, timestamp_ns=0), TypeError, "frame must be bytes-like"),
    (lambda w: w.write(0, "text", timestamp_ns=0), TypeError, "frame must be bytes-like"),
    (lambda w: w.write(0, b"x", timestamp_ns=0, comment=b"bytes"), TypeError,
     "comment must be a str"),
    (lambda w: w.write(0, b"x", timestamp_ns=0, comment="x" * 65536), ValueError,
     "comment is 65536 bytes"),
    (lambda w: w.add_interface(""), ValueError, "interface name must not be empty"),
    (lambda w: w.add_interface("np1", snaplen=0), ValueError, "snaplen 0 of interface 'np1'"),
    (lambda w: w.add_interface("np1", snaplen=2**32), ValueError, "is outside 1..4294967295"),
    (lambda w: w.add_interface("np1", description=None), TypeError,
     "interface description must be a str"),
])
def test_bad_arguments_raise_and_write_nothing(writer_and_stream, call, error, message):
    writer, out = writer_and_stream
    before = out.getvalue()
    with pytest.raises(error, match=message):
        call(writer)
    assert out.getvalue() == before
    writer.write(0, b"ok" * 30, timestamp_ns=T0)    # the writer still works
    assert len(packets(read_pcapng(out.getvalue()))) == 1


def test_write_before_any_interface():
    writer = PcapngWriter(io.BytesIO())
    with pytest.raises(ValueError, match=r"unknown interface id 0 \(interfaces: none: "
                                         r"call add_interface\(\) first\)"):
        writer.write(0, b"x", timestamp_ns=0)


def test_reader_rejects_malformed_input():
    out = io.BytesIO()
    writer = PcapngWriter(out)
    writer.add_interface("np0")
    writer.write(0, b"x" * 61, timestamp_ns=T0, direction="in")
    good = out.getvalue()
    shb_len = struct.unpack_from("<I", good, 4)[0]
    with pytest.raises(ValueError, match="not pcapng"):
        read_pcapng(good[shb_len:])
    with pytest.raises(ValueError, match="is truncated"):
        read_pcapng(good[:-4])
    with pytest.raises(ValueError, match="stray bytes"):
        read_pcapng(good + b"\0" * 8)
    bad_trailer = good[:-4] + struct.pack("<I", 1234)
    with pytest.raises(ValueError, match="but 1234 at the end"):
        read_pcapng(bad_trailer)
    bad_magic = good[:8] + b"\0\0\0\0" + good[12:]
    with pytest.raises(ValueError, match="bad byte-order magic 00000000"):
        read_pcapng(bad_magic)
    # The packet on an interface its section never declared.
    epb_at = len(good) - struct.unpack_from("<I", good, len(good) - 4)[0]
    orphan = good[:epb_at + 8] + struct.pack("<I", 5) + good[epb_at + 12:]
    with pytest.raises(ValueError, match="on interface 5, but its section declares 1"):
        read_pcapng(orphan)
    # Direction bits 11 are invalid.
    flags_at = good.index(struct.pack("<HHI", 2, 4, 1), epb_at)
    both = good[:flags_at + 4] + struct.pack("<I", 3) + good[flags_at + 8:]
    with pytest.raises(ValueError, match="invalid direction bits 11"):
        read_pcapng(both)


# -- the stream ----------------------------------------------------------------

class Trickle(io.RawIOBase):
    """An unbuffered stream that takes at most 3 bytes per write."""

    def __init__(self):
        self.data = bytearray()
        self.flushes = 0

    def writable(self):
        return True

    def write(self, b):
        chunk = bytes(b[:3])
        self.data += chunk
        return len(chunk)

    def flush(self):
        self.flushes += 1


def test_short_writes_are_completed_and_flush_reaches_the_stream():
    def capture(stream):
        writer = PcapngWriter(stream)
        writer.add_interface("np0", "with a description")
        writer.write(0, b"\x01" * 61, timestamp_ns=T0, direction="out", comment="c")
        writer.flush()

    whole, trickle = io.BytesIO(), Trickle()
    capture(whole)
    capture(trickle)
    assert bytes(trickle.data) == whole.getvalue()
    assert trickle.flushes >= 1


def test_writes_to_a_real_file(tmp_path):
    path = tmp_path / "capture.pcapng"
    with open(path, "wb") as stream:
        writer = PcapngWriter(stream)
        writer.add_interface("np0")
        writer.write(0, b"\x02" * 60, timestamp_ns=T0, direction="in")
        writer.flush()
        assert len(packets(read_pcapng(path.read_bytes()))) == 1


# -- tshark --------------------------------------------------------------------

def checksum(data):
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmp_echo(src_mac, dst_mac, src, dst, icmp_type, ident=0x1234, seq=1):
    """An Ethernet/IPv4/ICMP echo request (type 8) or reply (type 0) frame
    with correct IPv4 header and ICMP checksums."""
    payload = b"ndisproxy pcapng " + bytes(range(39))          # 56 bytes, as ping's
    icmp = struct.pack("!BBHHH", icmp_type, 0, 0, ident, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0x4242, 0x4000, 64, 1, 0,
                     bytes(int(x) for x in src.split(".")),
                     bytes(int(x) for x in dst.split(".")))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    assert checksum(ip) == 0 and checksum(icmp) == 0
    return dst_mac + src_mac + b"\x08\x00" + ip + icmp


def test_checksum_helper():
    # RFC 1071's worked example: 0001 f203 f4f5 f6f7 sums (one's complement) to ddf2.
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == ~0xDDF2 & 0xFFFF


def tshark_or_skip():
    """tshark's path; skip without it (fail with NDISPROXY_REQUIRE_NET=1)."""
    tshark = shutil.which("tshark")
    if tshark is None:
        reason = "tshark is not installed (Debian: apt-get install tshark)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires this test to run")
        pytest.skip(reason)
    return tshark


def tshark_fields(tshark, path, fields, *options):
    """One dict per frame of ``tshark -T fields`` over ``path``."""
    command = [tshark, "-n", "-r", str(path), *options, "-T", "fields", "-E", "separator=/t"]
    for field in fields:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr}"
    return [dict(zip(fields, line.split("\t"))) for line in result.stdout.splitlines()]


def tshark_direction(text):
    """frame.packet_flags_direction as "in", "out" or None.  tshark 4.0
    prints the epb_flags bits in hex (0x00000001 inbound, 0x00000002
    outbound) and nothing without epb_flags; a version printing the value's
    name would say Inbound/Outbound."""
    if not text:
        return None
    try:
        return {1: "in", 2: "out"}[int(text, 0)]
    except ValueError:
        return {"inbound": "in", "outbound": "out"}[text.lower()]


def test_tshark_reads_every_block(tmp_path):
    """Padding, several interfaces, truncation and options as Wireshark sees them."""
    tshark = tshark_or_skip()
    path = tmp_path / "mixed.pcapng"
    lengths = [14, 59, 60, 61, 62, 63, 97, 1514]
    directions = ["in", "out", None, "out", "in", None, None, "in"]
    with open(path, "wb") as stream:
        writer = PcapngWriter(stream)
        writer.add_interface("np0", "first")
        writer.add_interface("np1")
        writer.add_interface("np2", "snaplen 64", snaplen=64)
        for n, (length, direction) in enumerate(zip(lengths, directions)):
            writer.write(n % 3, bytes([n]) * length, timestamp_ns=T0 + n,
                         direction=direction, comment=f"frame {n}" if n % 2 else None)
    fields = ["frame.interface_id", "frame.interface_name", "frame.len", "frame.cap_len",
              "frame.packet_flags_direction", "frame.comment"]
    rows = tshark_fields(tshark, path, fields)
    assert len(rows) == len(lengths)
    for n, row in enumerate(rows):
        iface, length = n % 3, lengths[n]
        assert tshark_direction(row.pop("frame.packet_flags_direction")) == directions[n], n
        assert row == {"frame.interface_id": str(iface), "frame.interface_name": f"np{iface}",
                       "frame.len": str(length),
                       "frame.cap_len": str(min(length, 64) if iface == 2 else length),
                       "frame.comment": f"frame {n}" if n % 2 else ""}, n


def test_tshark_decodes_an_echo_exchange(tmp_path):
    """An echo request the host sent and the reply the driver indicated up."""
    tshark = tshark_or_skip()
    request = icmp_echo(HOST_MAC, PEER_MAC, HOST_V4, PEER_V4, 8)
    reply = icmp_echo(PEER_MAC, HOST_MAC, PEER_V4, HOST_V4, 0)
    path = tmp_path / "echo.pcapng"
    with open(path, "wb") as stream:
        writer = PcapngWriter(stream)
        iface = writer.add_interface("np0", "mocknic.sys")
        writer.write(iface, request, timestamp_ns=T0, direction="out",
                     comment="MiniportSendPackets")
        writer.write(iface, reply, timestamp_ns=T0 + 250_000, direction="in",
                     comment="NdisMIndicateReceivePacket")
        writer.flush()

    fields = ["frame.interface_name", "frame.packet_flags_direction", "frame.p2p_dir",
              "frame.time_epoch", "frame.len", "ip.src", "ip.dst", "ip.checksum.status",
              "icmp.type", "icmp.checksum.status", "frame.comment"]
    rows = tshark_fields(tshark, path, fields, "-o", "ip.check_checksum:TRUE")
    assert len(rows) == 2, rows
    expected = [
        ("out", HOST_V4, PEER_V4, "8", "MiniportSendPackets", T0),
        ("in", PEER_V4, HOST_V4, "0", "NdisMIndicateReceivePacket", T0 + 250_000),
    ]
    for row, (way, src, dst, icmp_type, comment, ts) in zip(rows, expected):
        assert row["frame.interface_name"] == "np0"
        assert tshark_direction(row["frame.packet_flags_direction"]) == way, row
        # Wireshark also derives its point-to-point direction: 0 sent, 1 received.
        assert row["frame.p2p_dir"] == {"out": "0", "in": "1"}[way], row
        assert (row["ip.src"], row["ip.dst"]) == (src, dst)
        assert row["icmp.type"] == icmp_type
        assert row["frame.comment"] == comment
        assert row["frame.len"] == str(len(request))
        # 1 is Wireshark's PROTO_CHECKSUM_E_GOOD (0 bad, 2 unverified).
        assert (row["ip.checksum.status"], row["icmp.checksum.status"]) == ("1", "1"), row
        seconds, _, fraction = row["frame.time_epoch"].partition(".")
        assert int(seconds) * 10**9 + int(fraction.ljust(9, "0")[:9]) == ts, row

    # Two passes: tshark pairs the request (answered in frame 2) with the reply.
    paired = subprocess.run([tshark, "-2", "-n", "-r", str(path), "-T", "fields",
                             "-e", "icmp.resp_in", "-e", "icmp.resp_to"],
                            capture_output=True, text=True, timeout=120)
    assert paired.returncode == 0, paired.stderr
    assert paired.stdout.splitlines() == ["2\t", "\t1"], paired.stdout
