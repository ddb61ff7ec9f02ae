"""A driver host process: adapters of one driver, serviced by trio.

Forked by the fork server (ndisproxy.forkserver) with a SOCK_SEQPACKET
socket to the proxy and the adapters' TAP and wire fds.  Before any driver
code is loaded it sets no_new_privs, gives up writing files (Landlock) and
installs the seccomp allowlist (ndisproxy.seccomp); the fork server already
dropped every capability.  Then it runs each adapter with
ndisproxy.host.open_adapter and talks to the proxy in JSON messages:

    <- {"event": "up", "adapter": NAME, "mac": "02:...", "max_frame": N, "pid": PID,
        "offloads": {what the driver offloads: ndisproxy.offload.Offloads' fields}}
    <- {"event": "carrier", "adapter": NAME, "up": BOOL}
    <- {"event": "log", "adapter": NAME, "lines": [DbgPrint lines]}
    <- {"event": "reset", "adapter": NAME, "reason": "...", "status": N}
                                        (CheckForHang asked for MiniportReset)
    <- {"event": "stopped", "adapters": {NAME: {"leaks": [...], "violations": [...]}}}
    <- {"event": "fault", "adapter": NAME, "kind": "StackOverflowFault",
        "error": "...", "entry_point": ..., "where": ..., "log": [...]}
    -> {"op": "stop"}                          <- {"event": "stopped"}
    -> {"op": "ping", "id": N}                 <- {"reply": N}   (the heartbeat)
    -> {"op": "query"|"set", "id": N, "adapter": NAME, "oid": N, ...}
                                               <- {"reply": N, "status": ..., ...}
    -> {"op": "stats", "id": N}                <- {"reply": N, "adapters": {...}}
    -> {"op": "link", "id": N, "adapter": NAME, "up": BOOL}   (the NIC's PHY)
    -> {"op": "capture", "id": N, "adapter": NAME, "on": BOOL}
    -> {"op": "reset", "id": N, "adapter": NAME}   (MiniportReset)
    -> {"op": "stall", "id": N, "adapter": NAME}   (wedge the NIC's TX engine)
    <- b"\x01" + len(NAME) + NAME + records      (binary: captured frames)

The spec: {"adapters": [{"name", "driver", "stack_size", "parameters",
"mac", "packet_filter", "tap": FD_INDEX, "wire": FD_INDEX or null,
"vnet_hdr", "deadlines": {CLASS: SECONDS}, "verifier_fatal": [KIND],
"hang_check": SECONDS or null, "driver_fd": FD_INDEX, "helpers": {MODULE:
FD_INDEX}}]}; a VXLAN wire is "vxlan": {"fd": FD_INDEX, "vni": N,
"remote": [ADDRESS, PORT]} instead of "wire" (a UDP socket, no vnet
header).  A fault is reported and ends the process with exit code 3: the
proxy restarts the host from a fresh image.  A request that is not a JSON
object, or has a field of the wrong type, is answered with an "error"
(and "reply": null when it has no usable id).

A probe (``ndisproxy driver info``) is a host for one look at a driver:
spec {"probe": {"name": "x.sys", "image": FD_INDEX}}; in the same sandbox
it loads the image, runs DriverEntry, sends one message and exits:

    <- {"event": "probe", "ok": BOOL, "error": "..." or null, "kind": ...,
        "ndis_version": [5, 1] or null, "handlers": {SLOT: "x.sys+0x..." or null},
        "log": [DbgPrint lines], "stack": {...}, "sandbox": {...}}
"""
import dataclasses
import json
import math
import os
import socket
import struct

import trio

from . import errors, privileges, seccomp, tap
from .driver import latency_summary
from .host import open_adapter

EXIT_FAULT = 3
EXIT_BAD_SPEC = 4
SANDBOX = {}        # filled in by run(), before trio starts
LANDLOCKED = None   # set by confine(), in the fork server


def wire_arguments(spec, fds):
    """open_adapter's ``wire_fd`` and ``vxlan`` arguments for an adapter spec."""
    vx = spec.get("vxlan")
    if vx is not None:
        remote = (vx["remote"][0], int(vx["remote"][1]))
        return {"wire_fd": None, "vxlan": (fds[vx["fd"]], int(vx["vni"]), remote)}
    return {"wire_fd": fds[spec["wire"]] if spec.get("wire") is not None else None,
            "vxlan": None, "wire_vnet_hdr": spec.get("wire_vnet_hdr")}


class _Host:
    def __init__(self, sock):
        self.sock = sock
        self.nics = {}
        # Requests other than pings are answered one at a time, in order; a
        # ping is answered at once, even while an OID is pending.
        self._turn = trio.Lock()
        # Events raised in synchronous callbacks (carrier), sent in order by
        # flush_events; unbounded, but one per media change.
        self._events_in, self._events_out = trio.open_memory_channel(math.inf)

    async def send(self, message):
        await self.sock.send(json.dumps(message).encode())

    def fault_report(self, name, nic):
        exc = nic.fault
        report = {"event": "fault", "adapter": name, "kind": type(exc).__name__,
                  "error": str(exc), "log": nic.image.log()[-8:] if nic.image else []}
        for attr in ("entry_point", "where", "depth", "irql", "code", "address"):
            if hasattr(exc, attr):
                report[attr] = getattr(exc, attr)
        try:
            report["high_water"] = nic.adapter.stack_report()["lifetime"]
        except errors.NdisProxyError:
            pass
        return report

    async def run_adapter(self, spec, fds, task_status=trio.TASK_STATUS_IGNORED):
        name = spec["name"]
        tap_fd = fds[spec["tap"]] if spec.get("tap") is not None else None
        wire = wire_arguments(spec, fds)

        def carrier(up):
            if tap_fd is not None:
                tap.set_carrier(tap_fd, up)
            self._events_in.send_nowait({"event": "carrier", "adapter": name, "up": bool(up)})

        image_data = None
        if spec.get("driver_fd") is not None:
            # The daemon opened the image: the host needs no access to its path.
            image_data = read_file(fds[spec["driver_fd"]])
        helpers = {module: read_file(fds[index])
                   for module, index in (spec.get("helpers") or {}).items()}
        async with open_adapter(spec["driver"], parameters=spec.get("parameters") or {},
                                image_data=image_data, helpers=helpers,
                                stack_size=spec.get("stack_size", 65536),
                                mac=spec.get("mac") or "02:4e:50:00:00:01",
                                packet_filter=spec.get("packet_filter"), tap_fd=tap_fd,
                                **wire, vnet_hdr=spec.get("vnet_hdr", 10),
                                on_carrier=carrier, deadlines=spec.get("deadlines"),
                                verifier_fatal=spec.get("verifier_fatal") or (),
                                hang_check=spec.get("hang_check"),
                                offloads=spec.get("offloads", True),
                                offloads_tell_linux=False) as nic:
            self.nics[name] = nic
            nic.on_log = lambda lines: self._events_in.send_nowait(
                {"event": "log", "adapter": name, "lines": lines})
            nic.on_reset = lambda reason, status: self._events_in.send_nowait(
                {"event": "reset", "adapter": name, "reason": reason, "status": status})
            nic.forward_log()                   # what Initialize printed
            address = (await nic.query_oid("OID_802_3_CURRENT_ADDRESS", 6)).data
            await self.send({"event": "up", "adapter": name, "pid": os.getpid(),
                             "mac": address.hex(":"), "max_frame": nic.adapter.max_frame,
                             "offloads": dataclasses.asdict(nic.offloads),
                             "sandbox": SANDBOX})
            task_status.started()
            await nic.faulted.wait()
            await self.send(self.fault_report(name, nic))
            raise _Faulted(name)

    def capture_sink(self, name):
        """Captured frames of adapter ``name`` to the proxy: binary messages,
        CAPTURE_TAG, the name's length and bytes, then capture.c records."""
        head = CAPTURE_TAG + bytes([len(name)]) + name.encode()

        def sink(records):
            body = b"".join(pack_capture(time_ns, direction, frame)
                            for time_ns, direction, frame in records)
            # Whole records, each message well under the socket's 64 KiB.
            start = 0
            while start < len(body):
                end = _record_boundary(body, start, start + 32768)
                self._events_in.send_nowait(head + body[start:end])
                start = end
        return sink

    async def flush_events(self):
        async for event in self._events_out:
            if isinstance(event, bytes):
                await self.sock.send(event)
            else:
                await self.send(event)

    def pending_events(self):
        events = []
        while True:
            try:
                events.append(self._events_out.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return events

    async def requests(self, cancel_scope):
        async with trio.open_nursery() as nursery:
            while True:
                message = await self.sock.recv(1 << 16)
                if not message:
                    cancel_scope.cancel()          # the proxy is gone
                    return
                try:
                    request = json.loads(message)
                except ValueError as exc:          # not JSON, or not UTF-8
                    await self.send({"reply": None, "error": f"malformed request: {exc}"})
                    continue
                if not isinstance(request, dict):
                    await self.send({"reply": None,
                                     "error": "malformed request: not an object"})
                    continue
                op = request.get("op")
                if op == "stop":
                    cancel_scope.cancel()
                    return
                if op == "ping":
                    await self.send({"reply": request.get("id")})
                    continue
                nursery.start_soon(self._answer_in_turn, request)

    async def _answer_in_turn(self, request):
        async with self._turn:          # trio's Lock is fair: requests keep their order
            await self.send(await self.answer(request))

    async def answer(self, request):
        reply = {"reply": request.get("id")}
        try:
            op = request.get("op")
            if op == "stats":
                reply["adapters"] = {name: _adapter_stats(nic) for name, nic in self.nics.items()}
                return reply
            if op not in ("query", "set", "reset", "capture", "stall", "link"):
                raise ValueError(f"unknown op {op!r}")
            name = _field(request, "adapter", str)
            nic = self.nics.get(name)
            if nic is None:
                raise ValueError(f"{op}: no adapter {name!r} in this host")
            if op == "query":
                result = await nic.query_oid(_field(request, "oid", (int, str)),
                                             _field(request, "length", int, 256))
            elif op == "set":
                result = await nic.set_oid(_field(request, "oid", (int, str)),
                                           bytes.fromhex(_field(request, "data", str)))
            elif op == "reset":
                status, addressing = nic.reset()
                reply.update(status=status, addressing_reset=addressing)
                return reply
            elif op == "capture":
                on = _field(request, "on", bool)
                nic.set_capture(self.capture_sink(name) if on else None)
                return reply
            elif op == "stall":
                nic.adapter.stall_tx()
                return reply
            else:
                nic.set_link(_field(request, "up", bool))   # the NIC's PHY: cable in or out
                return reply
            reply.update(status=result.status, data=result.data.hex(), needed=result.needed)
        except (ValueError, errors.NdisProxyError) as exc:
            reply["error"] = str(exc)
        return reply


_MISSING = object()


def _field(request, name, kind, default=_MISSING):
    """``request[name]``, checked to be a ``kind``: the proxy's requests are
    read as carefully as anything else that crosses a process boundary."""
    value = request.get(name, default)
    if value is _MISSING:
        raise ValueError(f"{request.get('op')}: {name!r} is missing")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"{request.get('op')}: {name!r} is {type(value).__name__}, "
                         f"not {getattr(kind, '__name__', 'int or str')}")
    return value


def _adapter_stats(nic):
    latency = nic.rx_latency()
    stats = {"host": nic.stats(), "stack": nic.stack_report(),
             "violations": [dataclasses.asdict(v) for v in nic.violations()],
             "device": nic.adapter.device_counters(), "log": nic.image.log()[-8:],
             "resets": nic.resets,
             "rx_latency": {**latency_summary(latency),
                            "buckets": {i: n for i, n in enumerate(latency) if n}}}
    pump = nic.pump_counters()
    if pump is not None:
        stats["pump"] = pump
    return stats


CAPTURE_TAG = b"\x01"          # JSON messages start with "{"


def pack_capture(time_ns, direction, frame):
    pad = (-len(frame)) % 8
    return struct.pack("<QIB3x", time_ns, len(frame), direction == "in") + frame + bytes(pad)


def _record_boundary(body, start, limit):
    """The end of the last whole record from ``start`` before ``limit``
    (at least one record)."""
    at = start
    while at < len(body):
        length = struct.unpack_from("<I", body, at + 8)[0]
        size = 16 + ((length + 7) & ~7)
        if at + size > limit and at > start:
            return at
        at += size
    return at


class _Faulted(Exception):
    pass


def read_file(fd):
    """All of the file open as ``fd``, from its start: a pool's adapters
    share one fd of their image, so its offset is no guide."""
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _first_leaf(group):
    """The first exception in a (nested) exception group."""
    while isinstance(group, BaseExceptionGroup):
        group = group.exceptions[0]
    return group


async def _serve(sock_fd, spec, fds):
    sock = trio.socket.from_stdlib_socket(socket.socket(fileno=sock_fd))
    host = _Host(sock)
    code, error = 0, None
    try:
        async with trio.open_nursery() as nursery:
            for adapter in spec["adapters"]:
                await nursery.start(host.run_adapter, adapter, fds)
            nursery.start_soon(host.flush_events)
            nursery.start_soon(host.requests, nursery.cancel_scope)
    except* _Faulted:
        code = EXIT_FAULT
    except* errors.NdisProxyError as group:
        # Bringing an adapter up failed (load error, Initialize failed, ...).
        error, code = str(_first_leaf(group)), EXIT_FAULT
    except* Exception as group:
        # A bug of ours: still a diagnosis for the proxy, not a silent exit.
        exc = _first_leaf(group)
        error, code = f"driver host error: {type(exc).__name__}: {exc}", EXIT_FAULT
    if error is not None:
        await host.send({"event": "error", "error": error})
    for message in host.pending_events():
        await host.send(message)
    if code == 0:
        # What halt found (pool leaks by tag, late violations), for reports.
        await host.send({"event": "stopped", "adapters": {
            name: {"leaks": nic.leaks or [],
                   "violations": [dataclasses.asdict(v) for v in nic.violations_at_halt or []]}
            for name, nic in host.nics.items()}})
    return code


def rehearse():
    """Do once, in the fork server, what every host does before its driver
    is loaded - build the seccomp program, and serve a ping and a stop with
    no adapters (trio's first run, the JSON codecs, the request loop) - so
    that what that creates and caches is shared by every host forked
    afterwards instead of copied into each.  No driver code runs."""
    seccomp.host_filter(0)
    ours, proxy = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with proxy:
        proxy.send(json.dumps({"op": "ping", "id": 0}).encode())
        proxy.send(json.dumps({"op": "stop"}).encode())
        code = trio.run(_serve, ours.detach(), {"adapters": []}, [])
        replies = [json.loads(proxy.recv(1 << 16)) for _ in range(2)]
    if code != 0 or replies != [{"reply": 0}, {"event": "stopped", "adapters": {}}]:
        raise RuntimeError(f"host rehearsal failed: exit {code}, replies {replies}")


def _sandbox_report(landlocked, host_filter):
    """What this process can still do, as the proxy's status shows it.
    The probes are refused calls, made on purpose: the census
    (tools/syscall_census.py) expects them, once per host."""
    try:
        os.close(os.open("/dev/net/tun", os.O_RDWR))
        tun = "openable"
    except OSError as exc:
        tun = f"denied ({exc.strerror})"
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
        sockets = "allowed"
    except OSError as exc:
        sockets = f"denied ({exc.strerror})"
    caps = privileges.capability_sets()
    with open("/proc/self/status") as status:
        nnp = next((line.split()[1] for line in status if line.startswith("NoNewPrivs")), "?")
    return {"cap_eff": caps.get("CapEff"), "cap_prm": caps.get("CapPrm"),
            "cap_bnd": caps.get("CapBnd"), "no_new_privs": nnp == "1",
            "landlock": landlocked, "seccomp": "allowlist",
            "syscalls_allowed": len(host_filter.allowed), "dev_net_tun": tun,
            "new_sockets": sockets}


def confine():
    """no_new_privs, and no writing files (Landlock): what every host needs
    and nothing in the fork server does, so the fork server does it once
    and every host inherits it.  Whether Landlock is in force; OSError if
    a step fails."""
    global LANDLOCKED
    privileges.set_no_new_privs()
    LANDLOCKED = privileges.restrict_filesystem_to_reading()
    return LANDLOCKED


def enter_sandbox():
    """Give up what the fork server left: only the system calls a host
    needs (seccomp), after confine() if the fork server did not.  Returns
    (Landlock in force, the seccomp Filter); OSError if any step fails."""
    landlocked = confine() if LANDLOCKED is None else LANDLOCKED
    return landlocked, seccomp.install_host_filter()


def run(sock_fd, spec, fds):
    """The host process's main: give up what is left, then serve."""
    global SANDBOX
    try:
        landlocked, host_filter = enter_sandbox()
    except OSError as exc:
        os.write(2, f"ndisproxy host: cannot drop privileges: {exc}\n".encode())
        return EXIT_BAD_SPEC
    SANDBOX = _sandbox_report(landlocked, host_filter)
    if "probe" in spec:
        return _probe(socket.socket(fileno=sock_fd), spec["probe"], fds)
    return trio.run(_serve, sock_fd, spec, fds)


def _probe(sock, spec, fds):
    """Load one image, run its DriverEntry, say what it registered.  The
    image is not freed: the process ends here, and after a fault an image
    is abandoned, never touched again."""
    from .driver import DriverImage

    report = {"event": "probe", "ok": False, "error": None, "kind": None,
              "ndis_version": None, "handlers": {}, "log": [], "stack": None,
              "sandbox": SANDBOX}
    data = read_file(fds[spec["image"]])
    helpers = {module: read_file(fds[index])
               for module, index in (spec.get("helpers") or {}).items()}
    image = None
    try:
        image = DriverImage.load(spec["name"], data=data, run_driver_entry=False,
                                 helpers=helpers)
        image.run_driver_entry()
        report["ok"] = True
    except errors.NdisProxyError as exc:
        report["error"], report["kind"] = str(exc), type(exc).__name__
    if image is not None:
        report["log"] = image.log()
        report["stack"] = image.stack_report()
        registered = image.miniport()
        if registered is not None:
            report["ndis_version"] = list(registered[0])
            report["handlers"] = {slot: image.where(address) if address else None
                                  for slot, address in registered[1].items()}
    sock.send(json.dumps(report).encode())
    sock.close()
    return 0 if report["ok"] else EXIT_FAULT
