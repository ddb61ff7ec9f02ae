"""Frames at the miniport boundary, written as pcapng for Wireshark and tshark.

The format is the IETF's pcapng (draft-ietf-opsawg-pcapng).  A file written
by :class:`PcapngWriter` is one section:

    Section Header Block        (type 0x0A0D0D0A; magic 0x1A2B3C4D, version 1.0,
                                 section length -1 = "not given", shb_userappl)
    Interface Description Block (type 1) per add_interface(): LINKTYPE_ETHERNET,
                                 snaplen, if_name, if_description, if_tsresol = 9
    Enhanced Packet Block       (type 6) per write(): interface id, timestamp in
                                 nanoseconds since the epoch, captured and
                                 original length, the frame padded to 32 bits,
                                 epb_flags (direction) and opt_comment

Every block is ``type, total length, body, total length`` and a multiple of
4 bytes long; every option is ``code, length, value`` padded to 4 bytes, and
every option list ends with opt_endofopt.  The writer always writes
little-endian (readers use the byte-order magic to tell).

Direction is the driver's view at the NDIS boundary: ``"in"`` is a frame the
miniport indicated up to the host (NdisMIndicateReceivePacket and friends),
``"out"`` a frame the host handed to MiniportSendPackets.  It goes into bits
0-1 of epb_flags (01 inbound, 10 outbound), which Wireshark shows as
``frame.packet_flags_direction``.

:func:`read_pcapng` is the inverse, small and strict, for tests: it reads
what this writer writes (and the same layout in either byte order) without
needing tshark.

The module imports nothing from the rest of ndisproxy, and nothing outside
the standard library.
"""
import operator
import struct

__all__ = ["PcapngWriter", "read_pcapng"]

LINKTYPE_ETHERNET = 1
TSRESOL_NS = 9                  # if_tsresol: 10**-9 seconds per tick

_SHB = 0x0A0D0D0A
_IDB = 1
_EPB = 6
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_VERSION = (1, 0)
_SECTION_LENGTH_UNKNOWN = -1

# Option codes.  opt_endofopt and opt_comment are valid in every block; the
# others are per block type.
_OPT_ENDOFOPT = 0
_OPT_COMMENT = 1
_SHB_USERAPPL = 4
_IF_NAME = 2
_IF_DESCRIPTION = 3
_IF_TSRESOL = 9
_EPB_FLAGS = 2

_DIRECTION_BITS = {"in": 0b01, "out": 0b10}
_DIRECTION_NAMES = {0b00: None, 0b01: "in", 0b10: "out"}

_U32_MAX = 0xFFFFFFFF
_U64_MAX = 0xFFFFFFFFFFFFFFFF
_OPTION_MAX = 0xFFFF            # an option's value length is a u16


def _pad(length):
    """Bytes of zero padding that bring ``length`` to a multiple of 4."""
    return -length % 4


def _option(code, value):
    """One option, ``code, length, value, padding``, little-endian."""
    if len(value) > _OPTION_MAX:
        raise ValueError(f"option {code} value is {len(value)} bytes; "
                         f"an option holds at most {_OPTION_MAX}")
    return struct.pack("<HH", code, len(value)) + value + bytes(_pad(len(value)))


def _text(what, value):
    """``value`` (a str) as UTF-8, checked to fit in one option."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    data = value.encode("utf-8")
    if len(data) > _OPTION_MAX:
        raise ValueError(f"{what} is {len(data)} bytes of UTF-8; "
                         f"at most {_OPTION_MAX} fit in a pcapng option")
    return data


def _options(options):
    """An option list with its opt_endofopt, or nothing when it is empty."""
    if not options:
        return b""
    return b"".join(options) + _option(_OPT_ENDOFOPT, b"")


def _block(block_type, body):
    """A whole block: type, total length, ``body`` (already 32-bit aligned),
    total length again."""
    assert len(body) % 4 == 0, "block bodies are built 32-bit aligned"
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


class PcapngWriter:
    """Writes one pcapng section to ``stream``, a binary file object.

    The Section Header Block is written at construction; the Interface
    Description Blocks and Enhanced Packet Blocks follow in call order.

    Invariants:

    * The stream only ever holds whole blocks: every argument is checked
      before anything is written, and each block goes to ``stream.write``
      as one bytes object (a short write from an unbuffered stream is
      continued until the block is complete).  A call that raises has
      written nothing.
    * Interface ids are 0, 1, 2, ... in the order of add_interface() calls:
      that is how pcapng numbers the IDBs of a section.  write() accepts only
      ids already returned.
    * Timestamps are nanoseconds since 1970-01-01 UTC (every IDB carries
      if_tsresol = 9).

    The writer does not own the stream: it neither closes it nor flushes it
    except in flush().  It is not thread-safe and does blocking I/O; callers
    on the trio thread give it an in-memory stream or run it in a thread.
    """

    def __init__(self, stream, *, application="ndisproxy"):
        """Write the Section Header Block to ``stream``.

        ``application`` goes into shb_userappl (Wireshark's "Capture
        application"); None or "" leaves the option out.
        """
        options = []
        if application:
            options.append(_option(_SHB_USERAPPL, _text("application", application)))
        body = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, *_VERSION,
                           _SECTION_LENGTH_UNKNOWN) + _options(options)
        self._stream = stream
        self._snaplens = []     # index = interface id
        self._write_block(_block(_SHB, body))

    def add_interface(self, name, description="", snaplen=65535):
        """Describe an Ethernet interface; return its interface id.

        ``name`` (if_name) must be non-empty; ``description``
        (if_description) is left out when empty.  ``snaplen`` is the most
        bytes of a frame kept (1 .. 2**32 - 1): write() truncates longer
        frames to it.
        """
        name_bytes = _text("interface name", name)
        if not name_bytes:
            raise ValueError("interface name must not be empty")
        description_bytes = _text("interface description", description)
        snaplen = operator.index(snaplen)
        if not 1 <= snaplen <= _U32_MAX:
            raise ValueError(f"snaplen {snaplen} of interface {name!r} is outside "
                             f"1..{_U32_MAX}")
        options = [_option(_IF_NAME, name_bytes)]
        if description_bytes:
            options.append(_option(_IF_DESCRIPTION, description_bytes))
        options.append(_option(_IF_TSRESOL, bytes([TSRESOL_NS])))
        body = struct.pack("<HHI", LINKTYPE_ETHERNET, 0, snaplen) + _options(options)
        self._write_block(_block(_IDB, body))
        self._snaplens.append(snaplen)
        return len(self._snaplens) - 1

    def write(self, interface_id, frame, *, timestamp_ns, direction=None, comment=None):
        """Write one Ethernet frame seen on ``interface_id``.

        ``frame`` is any bytes-like object (it is copied).  A frame longer
        than the interface's snaplen is kept truncated to snaplen, with its
        original length recorded; it is not an error.

        ``timestamp_ns`` is nanoseconds since the epoch (0 .. 2**64 - 1).
        ``direction`` is ``"in"`` (the driver indicated it up to the host),
        ``"out"`` (the host handed it to MiniportSendPackets) or None (not
        recorded: no epb_flags option).  ``comment``, if not None, becomes
        the packet's opt_comment.
        """
        interface_id = operator.index(interface_id)
        if not 0 <= interface_id < len(self._snaplens):
            known = (f"0..{len(self._snaplens) - 1}" if self._snaplens
                     else "none: call add_interface() first")
            raise ValueError(f"unknown interface id {interface_id} (interfaces: {known})")
        snaplen = self._snaplens[interface_id]
        try:
            view = memoryview(frame).cast("B")
        except TypeError:
            raise TypeError(f"frame must be bytes-like, not {type(frame).__name__}") from None
        original = view.nbytes
        if original > _U32_MAX:
            raise ValueError(f"frame of {original} bytes does not fit pcapng's 32-bit length")
        data = bytes(view[:snaplen])
        timestamp_ns = operator.index(timestamp_ns)
        if not 0 <= timestamp_ns <= _U64_MAX:
            raise ValueError(f"timestamp_ns {timestamp_ns} is outside 0..2**64-1")
        options = []
        if direction is not None:
            if direction not in _DIRECTION_BITS:
                raise ValueError(f"direction must be 'in', 'out' or None, not {direction!r}")
            options.append(_option(_EPB_FLAGS,
                                   struct.pack("<I", _DIRECTION_BITS[direction])))
        if comment is not None:
            options.append(_option(_OPT_COMMENT, _text("comment", comment)))
        body = (struct.pack("<IIIII", interface_id, timestamp_ns >> 32,
                            timestamp_ns & _U32_MAX, len(data), original)
                + data + bytes(_pad(len(data))) + _options(options))
        self._write_block(_block(_EPB, body))

    def flush(self):
        """Flush the stream, so a reader of the file sees every block so far."""
        self._stream.flush()

    def _write_block(self, block):
        view = memoryview(block)
        while view:
            written = self._stream.write(view)
            if written is None:     # a non-blocking raw stream that took nothing
                raise BlockingIOError("stream took no bytes; pcapng needs a blocking stream")
            view = view[written:]


# -- reading -----------------------------------------------------------------

def _read_options(data, order):
    """``{code: [value, ...]}`` of an option list (to opt_endofopt or the end)."""
    options = {}
    offset = 0
    while offset + 4 <= len(data):
        code, length = struct.unpack_from(order + "HH", data, offset)
        offset += 4
        if code == _OPT_ENDOFOPT:
            break
        if offset + length > len(data):
            raise ValueError(f"option {code} of {length} bytes runs past its block")
        options.setdefault(code, []).append(bytes(data[offset:offset + length]))
        offset += length + _pad(length)
    return options


def _one_text(options, code):
    values = options.get(code)
    return values[0].decode("utf-8") if values else None


def _ticks_to_ns(ticks, tsresol):
    """Timestamp ticks to nanoseconds for an if_tsresol byte (high bit set: a
    power of 2, else of 10)."""
    exponent = tsresol & 0x7F
    if tsresol & 0x80:
        return (ticks * 10**9) >> exponent
    if exponent <= 9:
        return ticks * 10**(9 - exponent)
    return ticks // 10**(exponent - 9)


def read_pcapng(data):
    """Parse a pcapng capture into a list of dicts, one per block, in order.

    Sections, interfaces and packets are returned; other block types are
    skipped.  Each dict has ``"block"`` set to:

    * ``"section"``: ``version`` (major, minor), ``byte_order`` ("<" or
      ">"), ``application`` (shb_userappl or None).
    * ``"interface"``: ``id`` (per section, from 0), ``linktype``,
      ``snaplen``, ``name``, ``description`` (None when absent),
      ``tsresol`` (the if_tsresol byte; 6 when absent).
    * ``"packet"``: ``interface_id``, ``timestamp_ns``, ``original_length``,
      ``direction`` ("in", "out" or None), ``comment`` (None when absent),
      ``frame`` (the captured bytes).

    Raises ValueError, naming the offset, on anything malformed: no leading
    Section Header Block, an unknown byte-order magic, a truncated block, a
    trailing length that differs from the leading one, a packet on an
    undeclared interface, or direction bits 11.
    """
    data = memoryview(data).cast("B")
    blocks = []
    order = None
    interfaces = []             # tsresol of each interface in this section
    offset = 0
    while offset < len(data):
        if len(data) - offset < 12:
            raise ValueError(f"{len(data) - offset} stray bytes at offset {offset}")
        if order is None or struct.unpack_from(order + "I", data, offset)[0] == _SHB:
            # The SHB's type reads the same in both orders; its magic decides.
            (block_type,) = struct.unpack_from("<I", data, offset)
            if block_type != _SHB:
                raise ValueError(f"not pcapng: block at offset {offset} is type "
                                 f"{block_type:#x}, not a Section Header Block")
            magic = bytes(data[offset + 8:offset + 12])
            if magic == struct.pack("<I", _BYTE_ORDER_MAGIC):
                order = "<"
            elif magic == struct.pack(">I", _BYTE_ORDER_MAGIC):
                order = ">"
            else:
                raise ValueError(f"bad byte-order magic {magic.hex()} at offset {offset}")
        block_type, total = struct.unpack_from(order + "II", data, offset)
        if total < 12 or total % 4:
            raise ValueError(f"block at offset {offset} has bad total length {total}")
        if offset + total > len(data):
            raise ValueError(f"block at offset {offset} ({total} bytes) is truncated "
                             f"at {len(data)}")
        (trailer,) = struct.unpack_from(order + "I", data, offset + total - 4)
        if trailer != total:
            raise ValueError(f"block at offset {offset}: total length {total} at the "
                             f"start but {trailer} at the end")
        body = data[offset + 8:offset + total - 4]
        if block_type == _SHB:
            if len(body) < 16:
                raise ValueError(f"Section Header Block at offset {offset} is too short")
            _, major, minor, _ = struct.unpack_from(order + "IHHq", body)
            options = _read_options(body[16:], order)
            interfaces = []
            blocks.append({"block": "section", "version": (major, minor),
                           "byte_order": order,
                           "application": _one_text(options, _SHB_USERAPPL)})
        elif block_type == _IDB:
            if len(body) < 8:
                raise ValueError(f"Interface Description Block at offset {offset} is too short")
            linktype, _, snaplen = struct.unpack_from(order + "HHI", body)
            options = _read_options(body[8:], order)
            tsresol = options.get(_IF_TSRESOL, [bytes([6])])[0]
            if len(tsresol) != 1:
                raise ValueError(f"if_tsresol at offset {offset} is {len(tsresol)} bytes, not 1")
            interfaces.append(tsresol[0])
            blocks.append({"block": "interface", "id": len(interfaces) - 1,
                           "linktype": linktype, "snaplen": snaplen,
                           "name": _one_text(options, _IF_NAME),
                           "description": _one_text(options, _IF_DESCRIPTION),
                           "tsresol": tsresol[0]})
        elif block_type == _EPB:
            if len(body) < 20:
                raise ValueError(f"Enhanced Packet Block at offset {offset} is too short")
            interface_id, high, low, captured, original = struct.unpack_from(
                order + "IIIII", body)
            if interface_id >= len(interfaces):
                raise ValueError(f"packet at offset {offset} is on interface {interface_id}, "
                                 f"but its section declares {len(interfaces)}")
            end = 20 + captured
            if end > len(body):
                raise ValueError(f"packet at offset {offset}: {captured} captured bytes "
                                 f"run past its block")
            options = _read_options(body[end + _pad(captured):], order)
            direction = None
            if _EPB_FLAGS in options:
                flags = options[_EPB_FLAGS][0]
                if len(flags) != 4:
                    raise ValueError(f"epb_flags at offset {offset} is {len(flags)} bytes, not 4")
                bits = struct.unpack(order + "I", flags)[0] & 0b11
                if bits not in _DIRECTION_NAMES:
                    raise ValueError(f"packet at offset {offset} has invalid direction bits 11")
                direction = _DIRECTION_NAMES[bits]
            blocks.append({"block": "packet", "interface_id": interface_id,
                           "timestamp_ns": _ticks_to_ns((high << 32) | low,
                                                        interfaces[interface_id]),
                           "original_length": original, "direction": direction,
                           "comment": _one_text(options, _OPT_COMMENT),
                           "frame": bytes(body[20:end])})
        offset += total
    return blocks
