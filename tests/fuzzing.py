"""What the fuzz tests (tests/test_fuzz_*.py) share: budgets, the corpus, mutations.

Each fuzz test is a hypothesis property over one trust boundary (docs/fuzzing.md
lists them).  In CI every test runs a fixed number of examples from a fixed
seed (``derandomize``), with no example database, so a run is repeatable and
the whole fuzz set stays under FUZZ_BUDGET seconds; conftest.py prints the
examples and seconds per boundary and fails the run past the budget.

``NDISPROXY_FUZZ_EXAMPLES=N`` fuzzes longer: N examples per test, from fresh
random seeds, with hypothesis's example database, and no time budget.

The corpus (tests/fuzz_corpus/BOUNDARY/) holds inputs worth keeping: seeds
that mutations start from, and every input that once broke something,
named after what it broke.  Each boundary's tests replay all of its corpus
before fuzzing, so a finding stays a regression test.
"""
import os
import pathlib

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CORPUS = pathlib.Path(__file__).with_name("fuzz_corpus")
FUZZ_BUDGET = 60.0                      # seconds, all fuzz tests of a CI run together
LONG_ENV = "NDISPROXY_FUZZ_EXAMPLES"


def long_run():
    """N from NDISPROXY_FUZZ_EXAMPLES, or None for the CI budget."""
    value = os.environ.get(LONG_ENV)
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{LONG_ENV}={value!r}: expected a number of examples per test")
    return int(value)


def budget(examples):
    """Hypothesis settings for a fuzz test that may run ``examples`` in CI."""
    common = dict(deadline=None, print_blob=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.filter_too_much,
                                         HealthCheck.function_scoped_fixture])
    count = long_run()
    if count is None:
        return settings(max_examples=examples, derandomize=True, database=None, **common)
    return settings(max_examples=count, **common)


def corpus(boundary):
    """[(name, bytes)] of tests/fuzz_corpus/``boundary``/, sorted by name."""
    folder = CORPUS / boundary
    return [(path.name, path.read_bytes()) for path in sorted(folder.iterdir())
            if path.is_file() and not path.name.startswith(".")]


def corpus_ids(boundary):
    """(names, contents) for pytest.mark.parametrize(..., ids=names)."""
    entries = corpus(boundary)
    return [name for name, _ in entries], [data for _, data in entries]


@st.composite
def mutated(draw, seed, max_edits=8):
    """``seed`` (bytes) after a few edits: bit flips, byte overwrites, inserts,
    deletions, a truncation, a duplicated chunk - what a fuzzer's mutator does."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_edits))):
        edit = draw(st.sampled_from(("flip", "set", "insert", "delete", "truncate",
                                     "duplicate")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if edit == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "set" and data:
            data[at] = draw(st.sampled_from((0, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255)))))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete" and data:
            del data[at:at + draw(st.integers(1, 16))]
        elif edit == "truncate":
            del data[at:]
        elif edit == "duplicate" and data:
            data[at:at] = data[at:at + draw(st.integers(1, 64))]
    return bytes(data)


def one_line(text):
    """Whether ``text`` is one non-empty line, as every error here must be."""
    return bool(text) and "\n" not in text and "\r" not in text


# -- frames and the mock NIC --------------------------------------------------------

MAC = bytes.fromhex("024e50000001")
PEER = bytes.fromhex("02aabbccddee")
BROADCAST = b"\xff" * 6
VNET_HDR = 10
# csrc/pump.c's NP_FRAME_BUF (NP_TX_SLOT_DATA + 64): the most one read takes;
# a longer message is cut to this (and then refused as too long).
FRAME_BUF = 9216 + 64
ETHERTYPES = (0x0800, 0x86DD, 0x0806, 0x88B5, 0x8100, 0x88A8, 0x9100, 0x0000, 0xFFFF)


def padded(frame):
    """What the wire carries for ``frame``: at least 60 bytes (rulings.md)."""
    return frame + bytes(max(60 - len(frame), 0))


def filler(seed, length):
    """``length`` cheap, seed-dependent bytes (hypothesis draws the seed, not
    every byte of a 9 KiB payload)."""
    block = bytes((seed + i * 131) & 0xFF for i in range(256))
    return (block * (length // 256 + 1))[:length]


# Strategies are built once: building one per draw costs more than the draw.
_DESTINATIONS = st.sampled_from((MAC, BROADCAST, PEER, bytes.fromhex("01005e000001"))) \
    | st.binary(min_size=6, max_size=6)
_SOURCES = st.sampled_from((PEER, MAC, BROADCAST)) | st.binary(min_size=6, max_size=6)
_TPIDS = st.sampled_from((0x8100, 0x88A8, 0x9100)) | st.integers(0, 0xFFFF)
_TAGS = st.lists(st.tuples(_TPIDS, st.integers(0, 0xFFFF)), max_size=2)
_ETHERTYPES = st.sampled_from(ETHERTYPES) | st.integers(0, 0xFFFF)
_BYTE = st.integers(0, 255)


def _lengths(max_frame):
    return st.integers(0, 70) | st.integers(max_frame - 6, max_frame + 6) \
        | st.integers(0, FRAME_BUF + 80)


@st.composite
def _frame(draw, lengths):
    tags = b"".join(tpid.to_bytes(2, "big") + tci.to_bytes(2, "big")
                    for tpid, tci in draw(_TAGS))
    header = draw(_DESTINATIONS) + draw(_SOURCES) + tags + draw(_ETHERTYPES).to_bytes(2, "big")
    length = draw(lengths)
    return (header + filler(draw(_BYTE), max(length - len(header), 0)))[:length]


def ethernet_frames(max_frame=1518):
    """Frames of every shape a cable or Linux may hand over: runts cut inside
    the header, lengths around the minimum and the maximum, oversize and
    over-the-read-buffer ones; addressed to us, broadcast, multicast or
    anyone; untagged, 802.1Q/802.1ad tagged, double tagged, or with a tag
    cut short."""
    return _frame(_lengths(max_frame))


def tap_messages(hdr=VNET_HDR, max_frame=1518):
    """What one read of a TAP (or a cable with a vnet header) returns: a
    garbage virtio_net_hdr and a frame, or a message shorter than the header."""
    whole = st.builds(lambda vnet, frame: vnet + frame,
                      st.binary(min_size=hdr, max_size=hdr), ethernet_frames(max_frame))
    if not hdr:
        return whole
    return st.one_of(st.binary(max_size=hdr - 1), *[whole] * 9)


class Rig:
    """mocknic.sys on the mock NIC, pumped as a driver host pumps it, without trio.

    Linux's TAP and the NIC's cable are SOCK_SEQPACKET socketpairs (one
    message per frame, like a TAP), each with a ``vnet_hdr``-byte
    virtio_net_hdr; ``self.linux`` and ``self.cable`` are the far ends.
    ``vxlan=(vni, far_socket)`` makes the cable a UDP socket on the loopback
    instead.  The packet filter is directed and broadcast.
    """

    def __init__(self, *, vnet_hdr=VNET_HDR, vxlan=None, parameters=None):
        import socket

        from ndisproxy import DriverImage, drivers
        from ndisproxy._binding import ffi, lib

        self.image = DriverImage.load(drivers.path("mocknic"))
        self._sockets = []
        try:
            self.adapter = self.image.create_adapter(parameters=parameters)
            self.adapter.attach_mocknic(MAC)
            self.adapter.initialize()
            self.max_frame = self.adapter.max_frame
            self.linux, tap = self._pair()
            self.state = ffi.new("struct np_api_pump *")
            self.state.tap_fd = tap.fileno()
            self.state.tap_vnet_hdr = vnet_hdr
            self.state.tx_free = 1
            if vxlan is None:
                self.cable, wire = self._pair()
                self.adapter.set_wire(wire.fileno(), vnet_hdr)
                self.state.wire_vnet_hdr = vnet_hdr
            else:
                vni, far = vxlan
                wire = socket.socket(far.family, socket.SOCK_DGRAM)
                wire.bind((far.getsockname()[0], 0))
                wire.setblocking(False)
                self._sockets.append(wire)
                self.adapter.set_wire_vxlan(wire.fileno(), vni, far.getsockname()[:2])
                self.cable = None
                self.address = wire.getsockname()
                self.far_address = far.getsockname()[:2]
            self.state.wire_fd = wire.fileno()
            self.filter = lib.NDIS_PACKET_TYPE_DIRECTED | lib.NDIS_PACKET_TYPE_BROADCAST
            self.set_filter(self.filter)
        except BaseException:
            self.close()
            raise

    def _pair(self):
        import socket
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for sock in (ours, theirs):
            sock.setblocking(False)
            self._sockets.append(sock)
        return ours, theirs

    def set_filter(self, bits):
        result = self.adapter.set_raw("OID_GEN_CURRENT_PACKET_FILTER", bits.to_bytes(4, "little"))
        assert result.ok, result

    def accepts(self, frame):
        """Whether the NIC passes a frame from the cable up (filter: directed,
        broadcast; the driver's maximum frame)."""
        return 14 <= len(frame) <= self.max_frame and frame[:6] in (MAC, BROADCAST)

    def pump(self, rounds=200):
        """Move what is ready until nothing moves; returns the events drained."""
        events = []
        last = None
        for _ in range(rounds):
            if self.adapter.pump(self.state):
                events += self.adapter.events()
            now = self.counters()
            if now == last:
                break
            last = now
        return events

    def counters(self):
        p = self.state
        return (p.tap_in, p.tap_out, p.tap_out_dropped, p.tap_runts, p.wire_in, p.wire_runts,
                tuple(sorted(self.adapter.device_counters().items())),
                tuple(sorted(self.adapter.stats().items())))

    @staticmethod
    def drain(sock):
        """Every message waiting on ``sock``."""
        messages = []
        while True:
            try:
                messages.append(sock.recv(1 << 17))
            except BlockingIOError:
                return messages

    def close(self):
        """Halt (when initialised) and free everything; the halt's verifier
        findings and leaks as (violations, leaks)."""
        found = ([], [])
        adapter = getattr(self, "adapter", None)
        if adapter is not None and adapter._handle is not None and adapter.initialized:
            adapter.halt()
            found = (adapter.violations(), adapter.allocations())
        self.image.close()
        for sock in self._sockets:
            sock.close()
        return found
