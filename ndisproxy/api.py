"""The public trio API: a programmable NIC with a real driver path.

::

    async with ndisproxy.open_host() as host:
        nic = await host.add_adapter("np0", driver="mocknic",
                                     wire=ndisproxy.TapWire("np0w", netns="peer"))
        await nic.wait_state("running")
        async for event in nic.events():      # state, link, fault
            ...
        await nic.set_link(up=False)          # the NIC's PHY: the driver indicates it
        speed = (await nic.query_oid("OID_GEN_LINK_SPEED", 4)).value
        await nic.inject("overflow")          # the mock driver's fault knobs

Everything a host starts lives in a nursery inside ``open_host``'s block:
leaving the block (or cancelling it) halts every driver, stops every host
process and removes every interface the host created; that clean-up is
shielded and bounded in time.  This is the same code the daemon runs
(``ndisproxy run`` is a Host built from a config file).

With ``wire=SocketWire()`` the NIC's cable ends in your program:
``await nic.wire.send(frame)`` puts a frame on the cable towards the NIC,
``await nic.wire.receive()`` (or ``async for frame in nic.wire``) takes
what the NIC transmitted, with ``loss`` and ``delay`` knobs.
"""
import contextlib
import dataclasses
import functools
import os
import random
import socket
import typing

import trio

from . import config as configuration
from . import errors
from .daemon import Daemon
from .driver import OidResult

__all__ = ["Adapter", "AdapterEvent", "CableEnd", "Host", "LoopbackWire", "SocketWire",
           "TapWire", "VxlanWire", "open_host"]

# The mock driver's fault knobs (OID_MOCKNIC_FAULT codes); "stall" wedges
# the mock NIC's TX engine instead, for MiniportCheckForHang to notice.
FAULTS = {"overflow": 1, "wild": 2, "crash": 2, "hang": 3, "leak": 4, "double-complete": 5,
          "bad-unlock": 6, "wrong-irql": 7, "bad-dma": 8, "bugcheck": 9, "hang-send": 10,
          "overflow-send": 11, "stall": None}
OID_MOCKNIC_FAULT = 0xFF010001


@dataclasses.dataclass(frozen=True)
class TapWire:
    """The NIC's cable is a TAP named ``ifname``, in namespace ``netns``."""
    ifname: str
    netns: str | None = None


@dataclasses.dataclass(frozen=True)
class VxlanWire:
    """The NIC's cable is VXLAN over UDP: ``local``/``remote`` as "addr:port"."""
    local: str
    remote: str
    vni: int


@dataclasses.dataclass(frozen=True)
class LoopbackWire:
    """The NIC hears what it transmits."""


@dataclasses.dataclass(frozen=True)
class SocketWire:
    """The NIC's cable ends in this program: ``adapter.wire`` is its end (a
    CableEnd), starting with these ``loss`` and ``delay`` settings."""
    loss: float = 0.0
    delay: float = 0.0
    seed: int | None = None


@dataclasses.dataclass(frozen=True)
class AdapterEvent:
    """Something that happened to an adapter.

    ``kind`` is ``"state"`` (``fields["state"]``: initialising, running,
    resetting, faulted (``"gave_up"`` past its restart limit), restarting
    (``"delay"``), halted), ``"link"`` (``fields["up"]``), ``"fault"``
    (``fields["error"]``, ``"type"``, ``"entry_point"``, ``"where"``,
    ``"high_water"``, ``"log"``, ...) or ``"reset"`` (CheckForHang asked
    for MiniportReset: ``"reason"``, ``"status"``).
    """
    kind: str
    fields: dict


class CableEnd:
    """The far end of an adapter's cable, in this program (a SocketWire).

    ``loss`` (0..1) drops frames in both directions with that probability;
    ``delay`` (seconds) holds each frame that long before delivery.  Both
    may be changed at any time; a ``seed`` makes the losses repeatable.
    ``sent``, ``received`` and ``dropped`` count frames.
    """

    def __init__(self, sock: socket.socket, *, loss: float = 0.0, delay: float = 0.0,
                 seed: int | None = None) -> None:
        self._sock = trio.socket.from_stdlib_socket(sock)
        self.loss = loss
        self.delay = delay
        self._random = random.Random(seed)
        self.sent = self.received = self.dropped = 0

    def _lost(self) -> bool:
        if self.loss and self._random.random() < self.loss:
            self.dropped += 1
            return True
        return False

    async def send(self, frame: bytes) -> None:
        """Put ``frame`` on the cable towards the NIC."""
        if self._lost():
            return
        if self.delay:
            await trio.sleep(self.delay)
        await self._sock.send(bytes(frame))
        self.sent += 1

    async def receive(self) -> bytes:
        """The next frame the NIC put on the cable."""
        while True:
            frame = await self._sock.recv(1 << 16)
            if not frame:
                raise trio.EndOfChannel("the adapter is gone")
            if self._lost():
                continue
            if self.delay:
                await trio.sleep(self.delay)
            self.received += 1
            return frame

    def __aiter__(self) -> "CableEnd":
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class Adapter:
    """One adapter of a Host: its state, its driver, its cable."""

    def __init__(self, host: "Host", name: str) -> None:
        self._host = host
        self.name = name
        self.wire: CableEnd | None = None

    @property
    def _state(self):
        return self._host._daemon.adapters[self.name]

    @property
    def state(self) -> str:
        """initialising, running, resetting, faulted, restarting, halted."""
        return self._state.state

    @property
    def pid(self) -> int | None:
        return self._state.pid

    @property
    def mac(self) -> str | None:
        return self._state.mac

    @property
    def restarts(self) -> int:
        return self._state.restarts

    @property
    def last_fault(self) -> dict | None:
        return self._state.last_fault

    @property
    def carrier(self) -> bool:
        return self._state.carrier

    async def wait_state(self, state: str, timeout: float = 30) -> None:
        """Wait until the adapter is in ``state`` (trio.TooSlowError after ``timeout``)."""
        await self._host._daemon.wait_state(self.name, state, timeout)

    def events(self) -> "_EventStream":
        """Events from the moment of this call (not of the first iteration)
        until the adapter is removed: ``async for event in adapter.events()``."""
        return _EventStream(self._state)

    def __repr__(self) -> str:
        return f"<Adapter {self.name} {self.state} pid={self.pid} mac={self.mac}>"

    async def _request(self, op, **fields):
        reply = await self._host._daemon.request(self.name, op, **fields)
        if reply.get("error"):
            raise errors.DriverError(f"{self.name}: {reply['error']}")
        return reply

    async def query_oid(self, oid: int | str, length: int = 256) -> OidResult:
        """MiniportQueryInformation; ``oid`` by number or name."""
        from ._binding import oid_number
        reply = await self._request("query", oid=oid_number(oid), length=length)
        return OidResult(reply["status"], bytes.fromhex(reply["data"]), reply["needed"])

    async def set_oid(self, oid: int | str, data: bytes) -> OidResult:
        """MiniportSetInformation; ``oid`` by number or name."""
        from ._binding import oid_number
        reply = await self._request("set", oid=oid_number(oid), data=bytes(data).hex())
        return OidResult(reply["status"], b"", reply["needed"])

    async def reset(self) -> None:
        """What ``ndisproxy reset`` does: MiniportReset on a running adapter;
        a faulted one (or one waiting out its backoff) is restarted now,
        its earlier faults forgotten."""
        reply = await self._host._daemon.reset(self.name)
        if reply.get("error"):
            raise errors.DriverError(f"{self.name}: {reply['error']}")

    async def set_link(self, up: bool) -> None:
        """Plug or unplug the NIC's cable: its PHY raises a link interrupt and
        the driver indicates media connect/disconnect (the TAP's carrier)."""
        await self._request("link", up=bool(up))

    async def stats(self) -> dict:
        """Host counters, pump counters, device counters, verifier findings."""
        return (await self._request("stats"))["adapters"][self.name]

    async def stack_report(self) -> dict:
        """Private-stack size, lifetime and per-entry-point high-water marks."""
        return (await self.stats())["stack"]

    @contextlib.asynccontextmanager
    async def capture(self, file: "str | os.PathLike[str] | typing.BinaryIO"
                      ) -> typing.AsyncIterator[None]:
        """Write frames at the miniport boundary as pcapng to ``file`` (a path
        or a binary stream) while the block runs: "out" = what the host
        handed MiniportSendPackets, "in" = what the driver indicated.
        Wireshark and tshark read it (frame.packet_flags_direction)."""
        from .driver import parse_capture
        from .pcapng import PcapngWriter
        stream = open(file, "wb") if isinstance(file, (str, bytes)) or hasattr(
            file, "__fspath__") else file
        try:
            writer = PcapngWriter(stream)
            iface = writer.add_interface(
                self.name, f"{self._state.config.driver_name} miniport boundary")
            send, receive = trio.open_memory_channel(4096)
            self._state.capture_subscribers.append(send)

            async def write_all():
                async for records in receive:
                    for time_ns, direction, frame in parse_capture(records):
                        writer.write(iface, frame, timestamp_ns=time_ns, direction=direction)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(write_all)
                await self._request("capture", on=True)
                try:
                    yield
                finally:
                    with trio.CancelScope(shield=True), trio.move_on_after(5):
                        with contextlib.suppress(errors.NdisProxyError, OSError):
                            await self._request("capture", on=False)
                        await trio.sleep(0.05)     # the last records in flight
                    self._state.capture_subscribers.remove(send)
                    send.close()
            writer.flush()
        finally:
            if stream is not file:
                stream.close()

    async def inject(self, fault: str) -> None:
        """Fire one of the mock driver's fault knobs: overflow, crash (a wild
        write), hang, leak, double-complete, bad-unlock, wrong-irql,
        bad-dma, bugcheck, hang-send and overflow-send (a hang or a stack
        overflow in MiniportSendPackets: on the host's pump thread); or
        stall the NIC's TX engine (stall), for MiniportCheckForHang.  A fault
        ends the host; it is restarted."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (one of {', '.join(FAULTS)})")
        code = FAULTS[fault]
        if code is None:
            await self._host._daemon.request(self.name, "stall")
            return
        with trio.move_on_after(5):       # a fault ends the host before it answers
            with contextlib.suppress(errors.NdisProxyError, trio.TooSlowError, OSError):
                await self._host._daemon.request(
                    self.name, "set", oid=OID_MOCKNIC_FAULT,
                    data=code.to_bytes(4, "little").hex())


class _EventStream:
    """An adapter's events, subscribed when created; an async iterator."""

    def __init__(self, state) -> None:
        self._state = state
        self._send, self._receive = trio.open_memory_channel(256)
        state.subscribers.append(self._send)

    def __aiter__(self) -> "_EventStream":
        return self

    async def __anext__(self) -> AdapterEvent:
        try:
            event = await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            self.close()
            raise StopAsyncIteration from None
        fields = {k: v for k, v in event.items() if k not in ("kind", "adapter")}
        return AdapterEvent(event["kind"], fields)

    def close(self) -> None:
        """Stop receiving (also done when the adapter is removed)."""
        with contextlib.suppress(ValueError):
            self._state.subscribers.remove(self._send)
        self._send.close()


class Host:
    """Adapters and their driver hosts, in one trio nursery (``open_host``)."""

    def __init__(self, daemon: Daemon, isolation: str) -> None:
        self._daemon = daemon
        self._isolation = isolation
        self.adapters: dict[str, Adapter] = {}

    async def add_adapter(self, name: str, driver: str = "mocknic", *,
                          wire: "TapWire | VxlanWire | LoopbackWire | SocketWire" = LoopbackWire(),
                          parameters: dict | None = None,
                          isolation: str | None = None, stack_size: int | str = "64KiB",
                          mac: str | None = None, mtu: int | None = None,
                          wait: bool = True) -> Adapter:
        """Create the TAP ``name``, its wire, and a host running ``driver``.

        Arguments are validated like a config file's (ConfigError names
        the key).  With ``wait`` (the default) returns once it is running."""
        table: dict[str, typing.Any] = {"name": name, "driver": str(driver),
                                        "stack_size": stack_size,
                 "isolation": isolation or self._isolation,
                 "parameters": dict(parameters or {})}
        if mac is not None:
            table["mac"] = mac
        if mtu is not None:
            table["mtu"] = mtu
        socket_wire = isinstance(wire, SocketWire)
        if isinstance(wire, TapWire):
            table["wire"] = {"kind": "tap", "ifname": wire.ifname}
            if wire.netns:
                table["wire"]["netns"] = wire.netns
        elif isinstance(wire, VxlanWire):
            table["wire"] = {"kind": "vxlan", "local": wire.local, "remote": wire.remote,
                             "vni": wire.vni}
        elif isinstance(wire, LoopbackWire) or socket_wire:
            table["wire"] = {"kind": "loopback"}
        else:
            raise TypeError(f"wire {wire!r}: TapWire, VxlanWire, LoopbackWire or SocketWire()")
        others = [a.config for a in self._daemon.adapters.values()]
        config = configuration.adapter_config(table, others=others, name=f"adapter {name}",
                                              store=self._daemon.config.daemon.driver_store)
        if socket_wire:
            config = dataclasses.replace(config, wire=configuration.WireConfig(kind="socket"))
        state = await self._daemon.add_adapter(config)
        adapter = Adapter(self, name)
        if isinstance(wire, SocketWire):
            adapter.wire = CableEnd(state.wire_peer, loss=wire.loss, delay=wire.delay,
                                    seed=wire.seed)
        self.adapters[name] = adapter
        if wait:
            await adapter.wait_state("running")
        return adapter

    async def remove_adapter(self, name: str) -> None:
        """Halt the adapter's driver and remove its interfaces."""
        await self._daemon.remove_adapter(name)
        self.adapters.pop(name, None)


@contextlib.asynccontextmanager
async def open_host(*, isolation: str = "process") -> typing.AsyncIterator[Host]:
    """A Host whose adapters live as long as the ``async with`` block.

    ``isolation``: "process" (each adapter's driver in an unprivileged host
    process; the default) or "inprocess" (in this process, for debugging).
    Needs CAP_NET_ADMIN (TAP interfaces)."""
    if isolation not in ("process", "inprocess"):
        raise ValueError(f"isolation {isolation!r}: process or inprocess")
    daemon = Daemon(configuration.Config(daemon=configuration.DaemonConfig(), adapters=()))
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(daemon.run, fork_server=isolation == "process"))
        try:
            yield Host(daemon, isolation)
        finally:
            nursery.cancel_scope.cancel()
