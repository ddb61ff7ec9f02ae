"""Driver images and adapters: the in-process driver host.

A DriverImage is one loaded PE32+ .sys with its DriverEntry run on a private
stack; an Adapter is one miniport instance created from it, with its own
stack, arenas, registry parameters and queues.  Every method that enters
the driver does so through the runtime's trampoline; a fault inside the
driver raises a DriverFault subclass and leaves the whole image abandoned
(like a bugchecked driver): load it again to continue.

Objects here are synchronous and not thread-safe; the trio host drives them
from one task per adapter.  An adapter whose data path runs on a C pump
thread (start_pump) serialises every call with that thread.
"""
import collections
import dataclasses
import math
import os
import pathlib
import re
import struct
import typing

from . import errors, vxlan
from ._binding import (
    ENTRY_POINTS, VIOLATIONS, error_text, ffi, irql_name, lib, oid_number, raise_fault,
    stack_report, status_name,
)

KiB = 1024
# The adapter's OID buffer (csrc/include/np.h, struct np_adapter's oid_buf):
# a driver never sees a longer one, whatever length a caller asks for.
OID_BUFFER = 8192
DEFAULT_STACK_SIZE = lib.NP_STACK_DEFAULT
MIN_STACK_SIZE = lib.NP_STACK_MIN
# Entry points grouped by what they do, for deadlines: the data path (send,
# isr, dpc) must be caught hanging within 300 ms, so its defaults are 250 ms
# (the watchdog ticks every 2 ms while a call has a deadline).  The values
# are the runtime's defaults (csrc/adapter.c), in seconds.
DEADLINE_CLASSES = {
    "initialize": ("MiniportInitialize",),
    "halt": ("MiniportHalt", "MiniportShutdown"),
    "oid": ("MiniportQueryInformation", "MiniportSetInformation"),
    "send": ("MiniportSendPackets", "MiniportReturnPacket"),
    "isr": ("MiniportISR", "MiniportDisableInterrupt", "MiniportEnableInterrupt"),
    "dpc": ("MiniportHandleInterrupt", "MiniportTimer"),
    "reset": ("MiniportReset", "MiniportCheckForHang"),
}
DEFAULT_DEADLINES = {"initialize": 5.0, "halt": 5.0, "oid": 1.0, "send": 0.25, "isr": 0.25,
                     "dpc": 0.25, "reset": 2.0}
NDIS_STATUS_SUCCESS = 0
NDIS_STATUS_PENDING = lib.NDIS_STATUS_PENDING


@dataclasses.dataclass(frozen=True)
class OidResult:
    """What a driver answered to one OID request."""
    status: int
    data: bytes
    needed: int

    @property
    def status_name(self):
        return status_name(self.status)

    @property
    def ok(self):
        return self.status == NDIS_STATUS_SUCCESS

    @property
    def value(self):
        """The answer as a little-endian integer (for 1-, 2-, 4- and 8-byte OIDs)."""
        if len(self.data) not in (1, 2, 4, 8):
            raise ValueError(f"{len(self.data)}-byte answer is not an integer")
        return int.from_bytes(self.data, "little")


class Event(typing.NamedTuple):
    """An indication or completion the driver made, drained after it returned.

    ``kind`` is one of receive, status, status-complete, reset-complete,
    query-complete, set-complete, send-resources.  (A NamedTuple: one is
    made per received frame, so it must be cheap.)
    """
    kind: str
    status: int
    packet: int = 0
    frame: bytes = b""
    info: bytes = b""
    length: int = 0


@dataclasses.dataclass(frozen=True)
class Violation:
    kind: str
    entry_point: str
    irql: str
    fatal: bool
    text: str


# Scratch buffers the runtime fills before Python reads them: not zeroed,
# so a page costs memory only once something is written to it.
_scratch = ffi.new_allocator(should_clear_after_alloc=False)

_EVENT_KINDS = ("send-complete", "receive", "status", "status-complete",
                "reset-complete", "query-complete", "set-complete", "send-resources")


def parse_capture(raw):
    """Records of capture.c's ring: [(time_ns, "in"|"out", frame)]."""
    records, at = [], 0
    while at + 16 <= len(raw):
        time_ns, length, direction = struct.unpack_from("<QIB", raw, at)
        records.append((time_ns, "in" if direction else "out",
                        raw[at + 16:at + 16 + length]))
        at += 16 + ((length + 7) & ~7)
    return records


def _parse_mac(mac):
    if isinstance(mac, (bytes, bytearray)):
        raw = bytes(mac)
    else:
        text = str(mac).replace(":", "").replace("-", "")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
    if len(raw) != 6:
        raise ValueError(f"MAC address {mac!r} is not 6 bytes (write it as 02:00:00:00:00:01)")
    return raw


def _find_helpers(path, data, given):
    """{name: bytes} of every helper DLL the image imports that can be found:
    in ``given`` (names compared in any case), else beside ``path``."""
    out = ffi.new("char[]", 4096)
    n = lib.np_api_image_helpers(data, len(data), out, len(out))
    wanted = [name.decode("latin-1") for name in ffi.buffer(out, n)[:].split(b"\0")[:-1]]
    if not wanted:
        return {}
    given = {name.lower(): blob for name, blob in given.items()}
    beside = {}
    # Only for what was not given: a sandboxed host is given every helper,
    # and its filter refuses listing directories (getcwd, getdents64).
    if any(name.lower() not in given for name in wanted):
        try:
            beside = {entry.name.lower(): entry for entry in path.resolve().parent.iterdir()}
        except OSError:
            pass
    found = {}
    for name in wanted:
        if name.lower() in given:
            found[name] = bytes(given[name.lower()])
            continue
        entry = beside.get(name.lower())
        try:
            if entry is not None:
                found[name] = entry.read_bytes()
        except OSError:
            pass                # left unresolved: the load error lists its imports
    return found


def _check_stack_size(stack_size):
    if not MIN_STACK_SIZE <= stack_size <= lib.NP_STACK_MAX:
        raise ValueError(f"stack_size {stack_size} is outside {MIN_STACK_SIZE}.."
                         f"{lib.NP_STACK_MAX} bytes (default {DEFAULT_STACK_SIZE})")


class DriverImage:
    """A loaded driver image.  Use ``DriverImage.load(path)``."""

    def __init__(self, handle, name, stack_size, helpers=()):
        self._handle = handle
        self.name = name
        self.stack_size = stack_size
        self.helpers = tuple(helpers)   # helper DLL names, in load order
        self._adapters = []
        self._log_next = 0
        self._log = collections.deque(maxlen=64)
        self.log_count = 0        # lines ever printed
        self._entry_ran = False

    @classmethod
    def load(cls, path, *, stack_size=DEFAULT_STACK_SIZE, run_driver_entry=True, data=None,
             helpers=None):
        """Load, relocate and bind ``path`` (or ``data``, the image's bytes,
        named by ``path``) with the helper DLLs it imports; then run their
        DllInitialize and its DriverEntry.

        A helper DLL is a module the image imports that is not one of the
        kernel modules ndisproxy emulates.  It comes from ``helpers``
        (``{name: bytes}``) if given there, else from the file of that name
        (in any case) in the directory of ``path``; one found nowhere leaves
        its imports unresolved.

        Raises ImageError (UnresolvedImportsError lists every missing
        import) before any driver code runs, and DriverError if DriverEntry
        fails or faults.
        """
        _check_stack_size(stack_size)
        path = pathlib.Path(path)
        if data is None:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise errors.ImageError(
                    f"{errors.printable(str(path))}: {exc.strerror or exc}") from None
        name = path.name
        found = _find_helpers(path, data, helpers or {})
        c_helpers = ffi.new("struct np_api_helper[]", max(len(found), 1))
        keep = []
        for slot, (helper_name, helper_data) in zip(c_helpers, found.items()):
            keep.append(ffi.new("char[]", helper_name.encode()))
            slot.name = keep[-1]
            keep.append(ffi.from_buffer(helper_data))
            slot.data = keep[-1]
            slot.len = len(helper_data)
        handle = ffi.new("struct np_image **")
        err = ffi.new("char[]", 1024)
        if lib.np_api_image_load(data, len(data), name.encode()[:63], c_helpers, len(found),
                                 stack_size, handle, err, len(err)):
            text = errors.printable(error_text(err))
            message = f"{errors.printable(name)}: {text}"
            unresolved = re.search(r"\d+ unresolved imports?: (.*)$", text)
            if unresolved:
                imports = unresolved.group(1).removesuffix(", ...").split(", ")
                raise errors.UnresolvedImportsError(message, imports)
            raise errors.ImageError(message)
        image = cls(handle[0], name, stack_size, found)
        if run_driver_entry:
            try:
                image.run_driver_entry()
            except BaseException:
                image.close()
                raise
        return image

    def _require_open(self):
        if self._handle is None:
            raise ValueError(f"driver image {self.name} is closed")

    def _check_fault(self, code):
        if code:
            report = ffi.new("struct np_api_fault *")
            lib.np_api_image_fault(self._handle, report)
            raise_fault(code, report, self.name, self.stack_size)

    def run_driver_entry(self):
        """Run DriverEntry (``load`` does this unless told not to); once only."""
        self._require_open()
        if self._entry_ran:
            raise ValueError(f"DriverEntry of {self.name} already ran")
        self._entry_ran = True
        lib.np_api_trap_ensure()
        status = ffi.new("int32_t *")
        self._check_fault(lib.np_api_image_driver_entry(self._handle, status))
        if status[0] != 0:
            helper = lib.np_api_image_failed_helper(self._handle)
            routine = (f"DllInitialize of {self.helpers[helper]} (imported by {self.name})"
                       if helper >= 0 else f"DriverEntry of {self.name}")
            raise errors.DriverStatusError(
                f"{routine} returned {status_name(status[0])}", status[0])
        if not lib.np_api_image_registered(self._handle):
            raise errors.DriverError(f"DriverEntry of {self.name} registered no miniport")

    def miniport(self):
        """What DriverEntry registered: ``(major, minor)`` NDIS version and
        {handler slot name: address or None}, or None before registration."""
        self._require_open()
        version = lib.np_api_image_ndis_version(self._handle)
        if not version:
            return None
        handlers = {}
        name = ffi.new("char **")
        address = ffi.new("uint64_t *")
        slot = 0
        while lib.np_api_image_handler(self._handle, slot, name, address) == 0:
            handlers[ffi.string(name[0]).decode()] = address[0] or None
            slot += 1
        return (version >> 8, version & 0xFF), handlers

    def where(self, address):
        """``address`` as ``image.sys+0xOFFSET`` when it lies in the image."""
        self._require_open()
        if self.base <= address < self.base + self.size:
            return f"{self.name}+0x{address - self.base:x}"
        return f"0x{address:x}"

    @property
    def base(self):
        self._require_open()
        return lib.np_api_image_base(self._handle)

    @property
    def size(self):
        self._require_open()
        return lib.np_api_image_size(self._handle)

    @property
    def wx_pages(self):
        """Pages mapped writable and executable because a code and a data
        section share them (only in images whose SectionAlignment is below
        the 4 KiB page size)."""
        self._require_open()
        return lib.np_api_image_wx_pages(self._handle)

    def log(self):
        """Every DbgPrint line the driver printed (the last 64 are kept)."""
        self._require_open()
        buf = ffi.new("char[]", 64 * 260)
        nxt = ffi.new("uint64_t *")
        n = lib.np_api_image_log(self._handle, self._log_next, buf, len(buf), nxt)
        self._log_next = nxt[0]
        if n:
            raw = ffi.buffer(buf, n)[:]
            lines = [line.decode("utf-8", "replace") for line in raw.split(b"\0")[:-1]]
            self._log.extend(lines)
            self.log_count += len(lines)
        return list(self._log)

    def stack_report(self):
        """High-water marks of DriverEntry's private stack."""
        self._require_open()
        out = ffi.new("struct np_api_stack *")
        lib.np_api_image_stack(self._handle, out)
        return stack_report(out)

    def create_adapter(self, *, stack_size=DEFAULT_STACK_SIZE, parameters=None):
        """A new, not yet initialised adapter with these registry parameters."""
        self._require_open()
        _check_stack_size(stack_size)
        handle = ffi.new("struct np_adapter **")
        err = ffi.new("char[]", 512)
        if lib.np_api_adapter_create(self._handle, stack_size, handle, err, len(err)):
            if "faulted" in error_text(err):
                raise errors.DriverFaulted(error_text(err))
            raise errors.DriverError(error_text(err))
        adapter = Adapter(self, handle[0], stack_size)
        self._adapters.append(adapter)
        for key, value in (parameters or {}).items():
            adapter.set_parameter(key, value)
        return adapter

    def close(self):
        """Free the image and every adapter created from it."""
        if self._handle is None:
            return
        for adapter in list(self._adapters):
            adapter.close()
        lib.np_api_image_free(self._handle)
        self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        state = "closed" if self._handle is None else f"at 0x{self.base:x}"
        return f"<DriverImage {self.name} {state}>"


class Adapter:
    """One miniport adapter of a DriverImage."""

    def __init__(self, image, handle, stack_size):
        self.image = image
        self._handle = handle
        self.stack_size = stack_size
        self.initialized = False
        self._event_buf = None
        self._rx_lens = None
        self._capture_buf = None
        self._rx_buf = None
        # The runtime, or while a pump thread runs the adapter, the runtime
        # with every call made holding the adapter's lock (_Serialized).
        self._c = lib
        self.pump_thread = None

    # -- plumbing ---------------------------------------------------------

    def _require_open(self):
        if self._handle is None:
            raise ValueError("adapter is closed")

    def _check_fault(self, code):
        if code == 0:
            return
        if code == lib.STATUS_INVALID_PARAMETER & 0xFFFFFFFF:
            raise ValueError("adapter is not in a state for that call "
                             "(initialise it first, once)")
        if code == lib.NP_REFUSED_CONCURRENT:
            raise errors.InternalError(f"two threads entered the driver of one {self.image.name} "
                                       "adapter at once: a bug in ndisproxy")
        report = ffi.new("struct np_api_fault *")
        self._c.np_api_adapter_fault(self._handle, report)
        self.initialized = False
        fatal = [v for v in self.violations() if v.fatal]
        raise_fault(code, report, self.image.name, self.stack_size,
                    fatal[-1] if code == lib.NP_FAULT_VERIFIER and fatal else None)

    def set_parameter(self, name, value):
        """Set a registry parameter read through NdisReadConfiguration."""
        self._require_open()
        if isinstance(value, bool):
            value = int(value)
        text = str(value)
        if "\0" in f"{name}{text}":
            # C strings: the driver would read a shorter name or value.
            raise ValueError(f"parameter {name!r}={text!r}: contains a NUL character")
        rc = self._c.np_api_adapter_set_param(self._handle, str(name).encode(), text.encode())
        if rc:
            raise ValueError(f"parameter {name!r}={text!r}: "
                             f"{os.strerror(-rc) if rc < 0 else rc} (names < 64 bytes, "
                             f"values < 192, at most {lib.NP_MAX_PARAMS} parameters)")

    def set_deadline(self, entry_point, seconds):
        """Deadline for one entry point; ``None`` or 0 disables it."""
        self._require_open()
        index = ENTRY_POINTS.index(entry_point)
        self._c.np_api_adapter_set_deadline(self._handle, index, int((seconds or 0) * 1e9))

    def set_deadlines(self, classes):
        """Deadlines by entry-point class (``DEADLINE_CLASSES``): a mapping
        like ``{"send": 0.25, "oid": 1.0}``; classes not named keep theirs."""
        for name, seconds in classes.items():
            for entry_point in DEADLINE_CLASSES[name]:
                self.set_deadline(entry_point, seconds)

    def set_fatal(self, violation, fatal=True):
        """Make a verifier violation kind stop the driver (or only warn)."""
        self._require_open()
        self._c.np_api_adapter_set_fatal(self._handle, VIOLATIONS.index(violation), int(fatal))

    def set_stack_sampling(self, every):
        """Measure per-entry-point stack use on one call in ``every``."""
        self._require_open()
        self._c.np_api_adapter_set_sampling(self._handle, every)

    # -- entry points -----------------------------------------------------

    def initialize(self):
        """Run MiniportInitialize; raise if it fails or faults."""
        self._require_open()
        # Someone (faulthandler, say) may have installed over our trap since.
        lib.np_api_trap_ensure()
        status = ffi.new("int32_t *")
        self.image.log()
        seen = self.image.log_count
        self._check_fault(self._c.np_api_adapter_initialize(self._handle, status))
        if status[0] != 0:
            # The driver's own words, preferring DbgPrint over error-log codes.
            lines = self.image.log()
            new = min(self.image.log_count - seen, len(lines))
            said = lines[len(lines) - new:] if new else []
            words = [line for line in said if not line.startswith("NdisWriteErrorLogEntry")]
            said = words or said
            reason = f" (driver: {said[-1].strip()})" if said else ""
            raise errors.DriverStatusError(
                f"MiniportInitialize of {self.image.name} returned "
                f"{status_name(status[0])}{reason}", status[0])
        self.initialized = True

    def halt(self):
        """Run MiniportHalt (after ending a pump thread that still runs)."""
        self._require_open()
        if self.pump_thread is not None:
            self.pump_thread.stop()
            self.pump_thread.join(check=False)
        self.initialized = False
        self._check_fault(self._c.np_api_adapter_halt(self._handle))

    def oid_data(self):
        """The data a pended query answered once it completed."""
        self._require_open()
        buf = ffi.new("uint8_t[]", 8192)
        n = self._c.np_api_adapter_oid_data(self._handle, buf, 8192)
        return bytes(buf[0:n])

    def query_raw(self, oid, length=256):
        """MiniportQueryInformation with a ``length``-byte buffer: an OidResult.

        ``oid`` is a number or a name (``"OID_GEN_LINK_SPEED"``); the driver
        gets at most OID_BUFFER bytes, however long ``length`` is."""
        self._require_open()
        oid = oid_number(oid)
        if isinstance(length, bool) or not isinstance(length, int):
            raise TypeError(f"OID buffer length {length!r} is not an integer")
        if not 0 <= length <= 0xFFFFFFFF:
            raise ValueError(f"OID buffer length {length} is outside 0..4294967295")
        length = min(length, OID_BUFFER)
        buf = ffi.new("uint8_t[]", max(length, 1))
        status = ffi.new("int32_t *")
        done = ffi.new("uint32_t *")
        needed = ffi.new("uint32_t *")
        self._check_fault(self._c.np_api_adapter_query(self._handle, oid, buf, length, status,
                                                   done, needed))
        return OidResult(status[0], bytes(buf[0:min(done[0], length)]), needed[0])

    def set_raw(self, oid, data):
        """MiniportSetInformation with ``data``: an OidResult (data empty).

        ValueError for more than OID_BUFFER bytes: the driver is never
        handed part of a request."""
        self._require_open()
        oid = oid_number(oid)
        data = bytes(data)
        if len(data) > OID_BUFFER:
            raise ValueError(f"OID set data of {len(data)} bytes: at most {OID_BUFFER} "
                             "can be given to a driver")
        status = ffi.new("int32_t *")
        done = ffi.new("uint32_t *")
        needed = ffi.new("uint32_t *")
        self._check_fault(self._c.np_api_adapter_set(self._handle, oid, data, len(data), status,
                                                 done, needed))
        return OidResult(status[0], b"", needed[0])

    def reset(self):
        """Run MiniportReset: (status, addressing_reset)."""
        self._require_open()
        status = ffi.new("int32_t *")
        addressing = ffi.new("int *")
        self._check_fault(self._c.np_api_adapter_reset(self._handle, status, addressing))
        return status[0], bool(addressing[0])

    def check_for_hang(self):
        self._require_open()
        hung = ffi.new("int *")
        self._check_fault(self._c.np_api_adapter_check_for_hang(self._handle, hung))
        return bool(hung[0])

    # -- interrupts, timers, queues ---------------------------------------

    @property
    def interrupt_fd(self):
        """An eventfd that becomes readable when the interrupt line rises."""
        self._require_open()
        return self._c.np_api_adapter_eventfd(self._handle)

    @property
    def interrupt_registered(self):
        self._require_open()
        return bool(self._c.np_api_adapter_interrupt_registered(self._handle))

    def set_irq_line(self, level):
        """Drive the (level-triggered) interrupt line, as a device would."""
        self._require_open()
        self._c.np_api_adapter_set_irq_line(self._handle, int(bool(level)))

    def service_interrupt(self):
        """ISR and DPC while the line is up; returns how many rounds ran."""
        self._require_open()
        serviced = ffi.new("uint32_t *")
        self._check_fault(self._c.np_api_adapter_service_interrupt(self._handle, serviced))
        return serviced[0]

    def next_timer(self):
        """Monotonic ns of the next armed timer, or None."""
        self._require_open()
        return self._c.np_api_adapter_next_timer(self._handle) or None

    def run_timers(self, now_ns=None):
        """Run every timer due by ``now_ns`` (default: now); returns the count."""
        self._require_open()
        ran = ffi.new("uint32_t *")
        now = lib.np_api_now_ns() if now_ns is None else now_ns
        self._check_fault(self._c.np_api_adapter_run_timers(self._handle, now, ran))
        return ran[0]

    def events(self, max_events=256):
        """Drain the indications and completions the driver queued."""
        self._require_open()
        if self._event_buf is None or len(self._event_buf) < max_events:
            self._event_buf = _scratch("struct np_api_event[]", max_events)
        out, rx = self._event_buf, self._frame_buf()
        n = self._c.np_api_adapter_events(self._handle, out, max_events, rx, len(rx))
        frames = ffi.buffer(rx)
        result = []
        for ev in out[0:n]:
            kind = _EVENT_KINDS[ev.type]
            frame = frames[ev.offset:ev.offset + ev.len] if kind == "receive" else b""
            info = bytes(ev.data[0:min(ev.len, 32)]) if kind == "status" else b""
            result.append(Event(kind, ev.status, ev.packet, frame, info, ev.len))
        return result

    def _frame_buf(self):
        # Only adapters pumped from Python receive frames through here; one
        # pumped by its C thread never touches (so never pays for) this.
        if self._rx_buf is None:
            self._rx_buf = _scratch("uint8_t[]", 256 * 1024)
        return self._rx_buf

    def receive_frames(self, max_frames=512):
        """Drain received frames (in order) up to the next non-receive event."""
        self._require_open()
        if self._rx_lens is None:
            self._rx_lens = _scratch("uint32_t[]", 512)
        n = self._c.np_api_adapter_receive(self._handle, self._frame_buf(), len(self._rx_buf),
                                       self._rx_lens, min(max_frames, 512))
        if not n:
            return []
        data = ffi.buffer(self._rx_buf)
        frames, at = [], 0
        for length in ffi.unpack(self._rx_lens, n):
            frames.append(data[at:at + length])
            at += length
        return frames

    # -- frames ---------------------------------------------------------------

    @property
    def max_frame(self):
        """Longest frame send() accepts: header, 802.1Q tag and the driver's
        OID_GEN_MAXIMUM_FRAME_SIZE payload."""
        self._require_open()
        return self._c.np_api_adapter_max_frame(self._handle)

    def send(self, frames, offloads=None):
        """Hand a batch of frames to MiniportSendPackets in one crossing.

        Returns how many were accepted (fewer than given when the host's 256
        packets are all with the driver).  A batch holding a frame under 14
        bytes or over ``max_frame`` is refused whole with FrameError.

        ``offloads``, if given, holds one ``(csum, mss)`` per frame: the
        NDIS_TCP_IP_CHECKSUM_PACKET_INFO value and the large-send MSS its
        packet carries as per-packet info (0, 0: none).  A frame with an MSS
        may be up to 64 KiB.
        """
        self._require_open()
        frames = [bytes(f) for f in frames]
        if not frames:
            return 0
        data = b"".join(frames)
        lens = ffi.new("uint32_t[]", [len(f) for f in frames])
        accepted = ffi.new("uint32_t *")
        bad = ffi.new("int32_t *")
        info = ffi.NULL
        if offloads is not None:
            if len(offloads) != len(frames):
                raise ValueError(f"{len(offloads)} offloads for {len(frames)} frames")
            info = ffi.new("struct np_api_tx_offload[]", [list(o) for o in offloads])
        self._check_fault(self._c.np_api_adapter_send_offload(
            self._handle, data, lens, info, len(frames), accepted, bad))
        if bad[0] >= 0:
            length = len(frames[bad[0]])
            why = ("shorter than an Ethernet header (14 bytes)" if length < 14 else
                   f"longer than the maximum frame ({self.max_frame} bytes)")
            raise errors.FrameError(f"frame {bad[0]} of the batch is {length} bytes: {why}; "
                                    "nothing of the batch was sent")
        return accepted[0]

    def stats(self):
        """Host-side counters (a dict); the driver's own are OIDs."""
        self._require_open()
        out = ffi.new("struct np_api_stats *")
        self._c.np_api_adapter_stats(self._handle, out)
        return {name: getattr(out, name) for name in dir(out)}

    # -- the mock NIC device model ----------------------------------------------

    def attach_mocknic(self, mac):
        """Give this adapter the mock NIC (docs/hardware.md) with EEPROM ``mac``."""
        self._require_open()
        mac = _parse_mac(mac)
        if self._c.np_api_adapter_attach_mocknic(self._handle, mac):
            raise ValueError("adapter already has a device")

    def set_link(self, up):
        """Plug or unplug the cable: the PHY raises a link-change interrupt."""
        self._require_open()
        self._c.np_api_adapter_set_link(self._handle, int(bool(up)))

    def corrupt_checksums(self, count=1):
        """Debug: the next ``count`` checksums the mock NIC fills in go out
        wrong (a receiver's negative control)."""
        self._require_open()
        self._c.np_api_adapter_corrupt_checksums(self._handle, count)

    def stall_tx(self, stalled=True):
        """Wedge the mock NIC's TX engine (until a reset): what
        MiniportCheckForHang exists to notice."""
        self._require_open()
        self._c.np_api_adapter_stall_tx(self._handle, int(bool(stalled)))

    @property
    def hang_check_interval(self):
        """Seconds between CheckForHang calls the driver asked for
        (NdisMSetAttributesEx; 2 by default); None without the handler."""
        self._require_open()
        return self._c.np_api_adapter_hang_check_secs(self._handle) or None

    def wire_receive(self, frames):
        """Frames arriving at the NIC from the wire."""
        self._require_open()
        frames = [bytes(f) for f in frames]
        if frames:
            lens = ffi.new("uint32_t[]", [len(f) for f in frames])
            self._c.np_api_adapter_wire_receive(self._handle, b"".join(frames), lens, len(frames))

    def set_wire(self, fd, vnet_hdr=10):
        """Connect the mock NIC's cable to ``fd`` (a TAP, ...) instead of loopback."""
        self._require_open()
        if self._c.np_api_adapter_set_wire(self._handle, fd, vnet_hdr):
            raise ValueError("no mock NIC attached, or a vnet header over 16 bytes")

    def set_wire_vxlan(self, fd, vni, remote):
        """Connect the mock NIC's cable to ``fd``, a UDP socket carrying VXLAN
        (RFC 7348) with network identifier ``vni``: each transmitted frame is
        sent to ``remote`` (an ``(address, port)`` tuple or sockaddr bytes;
        ``None`` for a connected socket) behind an 8-byte VXLAN header.
        The pump reads the socket's datagrams (``ndisproxy.vxlan``)."""
        self._require_open()
        if remote is None:
            raw = b""
        elif isinstance(remote, (bytes, bytearray)):
            raw = bytes(remote)
        else:
            raw = vxlan.sockaddr(remote)
        if not 0 <= vni <= 0xFFFFFF:
            raise ValueError(f"vni {vni} is outside 0..16777215")
        if self._c.np_api_adapter_set_wire_vxlan(self._handle, fd, vni, raw or ffi.NULL, len(raw)):
            raise ValueError("no mock NIC attached, a negative fd, or a remote address that is "
                             "not a sockaddr_in or sockaddr_in6")

    def pump(self, state):
        """Move everything that is ready between ``state``'s fds and the driver.

        ``state`` is a ``ffi.new("struct np_api_pump *")`` whose counters
        accumulate across calls.  Returns True if control events wait in
        events()."""
        self._require_open()
        self._check_fault(self._c.np_api_adapter_pump(self._handle, state, lib.np_api_now_ns()))
        return bool(state.events_pending)

    def start_pump(self, state):
        """Run the data path between ``state``'s fds on a C thread of its own
        (csrc/pump_thread.c) and return its PumpThread.  Until it is joined,
        every call on this adapter holds the adapter's lock, so it never
        enters the driver while the pump thread does."""
        self._require_open()
        if self.pump_thread is not None:
            raise ValueError("a pump thread already runs this adapter")
        out = ffi.new("struct np_pump_thread **")
        rc = lib.np_api_pump_start(self._handle, state, out)
        if rc:
            raise OSError(-rc, f"cannot start the pump thread: {os.strerror(-rc)}")
        self.pump_thread = PumpThread(self, out[0], state)
        self._c = _Serialized(out[0])
        return self.pump_thread

    def control_events(self, max_events=64):
        """Status indications and completions at the head of the queue (a
        pump thread writes the received frames behind them to the TAP)."""
        self._require_open()
        if self._event_buf is None or len(self._event_buf) < max_events:
            self._event_buf = _scratch("struct np_api_event[]", max_events)
        n = self._c.np_api_adapter_control_events(self._handle, self._event_buf, max_events)
        return [Event(_EVENT_KINDS[ev.type], ev.status, ev.packet, b"",
                      bytes(ev.data[0:min(ev.len, 32)]) if ev.type == lib.NP_EV_STATUS else b"",
                      ev.len)
                for ev in self._event_buf[0:n]]

    def rx_latency(self):
        """Wire-to-indication latency so far: counts per histogram bucket
        (``latency_summary`` reads them)."""
        self._require_open()
        out = ffi.new("uint64_t[]", lib.NP_LAT_BUCKETS)
        n = self._c.np_api_adapter_rx_latency(self._handle, out, lib.NP_LAT_BUCKETS)
        return list(out[0:n])

    def set_capture(self, on):
        """Start or stop copying frames at the miniport boundary (capture.c)."""
        self._require_open()
        if self._c.np_api_adapter_capture(self._handle, int(bool(on))):
            raise MemoryError("cannot map the capture ring")

    def capture_read(self):
        """Captured frames so far: [(time_ns, "in"|"out", frame)]."""
        self._require_open()
        if self._capture_buf is None:
            self._capture_buf = _scratch("uint8_t[]", 1 << 20)
        n = self._c.np_api_adapter_capture_read(self._handle, self._capture_buf, 1 << 20)
        return parse_capture(ffi.buffer(self._capture_buf, n)[:])

    def device_counters(self):
        """The mock NIC's own counters and state (a dict)."""
        self._require_open()
        out = ffi.new("struct np_api_device_counters *")
        self._c.np_api_adapter_device_counters(self._handle, out)
        return {name: getattr(out, name) for name in dir(out)}

    def return_packets(self):
        """Hand indicated packets back to the driver (one crossing)."""
        self._require_open()
        self._check_fault(self._c.np_api_adapter_return_packets(self._handle))

    # -- reports ----------------------------------------------------------

    def stack_report(self):
        """Lifetime and per-entry-point high-water marks, in bytes."""
        self._require_open()
        out = ffi.new("struct np_api_stack *")
        self._c.np_api_adapter_stack(self._handle, out)
        return stack_report(out)

    def allocations(self):
        """Pool allocations outstanding: [(tag, size)], tag as 4 characters."""
        self._require_open()
        n = self._c.np_api_adapter_allocations(self._handle, ffi.NULL, 0)
        out = ffi.new("struct np_api_alloc[]", n + 1)
        n = self._c.np_api_adapter_allocations(self._handle, out, n + 1)
        return [(a.tag.to_bytes(4, "little").decode("latin-1"), a.size) for a in out[0:n]]

    def violations(self):
        """Verifier findings so far (the last 64 are kept)."""
        self._require_open()
        out = ffi.new("struct np_api_violation[]", 64)
        total = ffi.new("uint64_t *")
        n = self._c.np_api_adapter_violations(self._handle, out, 64, total)
        return [Violation(VIOLATIONS[v.kind], ENTRY_POINTS[v.entry], irql_name(v.irql),
                          bool(v.fatal), ffi.string(v.text).decode("utf-8", "replace"))
                for v in out[0:n]]

    def close(self):
        """Free the adapter (it is not halted: call halt() first if it should be)."""
        if self._handle is None:
            return
        self._c.np_api_adapter_free(self._handle)
        self._handle = None
        if self in self.image._adapters:
            self.image._adapters.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._handle is not None and self.initialized:
            try:
                self.halt()
            finally:
                self.close()
        self.close()


class _Serialized:
    """The runtime for an adapter a pump thread runs: every call holds the
    adapter's lock (np_api_pump_lock), so this thread's driver calls and the
    pump's never overlap, as NDIS serialises a miniport's entry points."""

    def __init__(self, pump):
        self._pump = pump

    def __getattr__(self, name):
        function, pump = getattr(lib, name), self._pump

        def serialized(*args):
            lib.np_api_pump_lock(pump)
            try:
                return function(*args)
            finally:
                lib.np_api_pump_unlock(pump)
        setattr(self, name, serialized)
        return serialized


class PumpThread:
    """An adapter's data path on a C thread (Adapter.start_pump).

    The thread owns the steady state; its owner waits until ``notify_fd``
    is readable, then calls ``notice()`` and takes what was announced:
    ``Adapter.control_events()``, captured frames, DbgPrint lines.  A
    driver fault ends the thread: ``notice()`` says it ended, ``join()``
    raises the fault as any driver call would."""

    def __init__(self, adapter, handle, state):
        self.adapter = adapter
        self._handle = handle
        self._state = state             # the thread writes its counters
        self.notify_fd = lib.np_api_pump_notify_fd(handle)

    def notice(self):
        """Take the announcement; True while the thread runs."""
        return self._handle is not None and bool(lib.np_api_pump_notice(self._handle))

    def announce(self):
        """Make ``notify_fd`` readable, as the thread does (wakes its owner)."""
        os.eventfd_write(self.notify_fd, 1)

    def counters(self):
        """The pump's counters (np_api_pump), copied under the lock."""
        out = ffi.new("struct np_api_pump *")
        lib.np_api_pump_counters(self._handle, out)
        return out

    def stop(self):
        """Ask the thread to end after its current pass; returns at once."""
        if self._handle is not None:
            lib.np_api_pump_stop(self._handle)

    def join(self, check=True):
        """Wait for the thread to end (stop() it first unless a fault ended
        it); with ``check``, raise the DriverFault that ended it."""
        if self._handle is None:
            return
        code = lib.np_api_pump_join(self._handle)
        self._handle = None
        self.adapter._c = lib
        self.adapter.pump_thread = None
        if check:
            self.adapter._check_fault(code)


def latency_floor(bucket):
    """Lower bound in ns of an rx_latency() bucket (8 per power of two)."""
    if bucket < 8:
        return bucket
    return (bucket % 8 + 8) << (bucket // 8 - 1)


def latency_summary(buckets):
    """{count, p50_us, p99_us, max_us} of rx_latency() counts (or of the
    difference of two); each figure is its bucket's midpoint (±6 %)."""
    count = sum(buckets)
    summary = {"count": count}
    for name, share in (("p50_us", 0.50), ("p99_us", 0.99), ("max_us", 1.0)):
        if not count:
            summary[name] = None
            continue
        rank, seen = max(1, math.ceil(share * count)), 0
        for index, n in enumerate(buckets):
            seen += n
            if seen >= rank:
                mid = (latency_floor(index) + latency_floor(index + 1)) / 2
                summary[name] = round(mid / 1000, 2)
                break
    return summary
