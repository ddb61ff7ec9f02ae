"""The in-process host: a driver adapter serviced by trio.

``open_adapter()`` loads a driver, creates and initialises one adapter with
the mock NIC as its hardware, and runs the service task that a real host
process runs: it waits on the adapter's interrupt eventfd and on the next
NDIS timer, runs ISR and DPC, fires timers, drains what the driver
indicated (frames, status, OID completions) and hands received packets back
to the driver - all in one trio task, so driver code never runs
concurrently with itself.  With a TAP to serve, that steady state runs in
C on a pump thread instead (docs/host.md), serialised with the task's own
driver calls, which supervises it::

    async with ndisproxy.host.open_adapter("mocknic") as nic:
        await nic.send([frame])
        echoed = await nic.receive()

A driver fault ends the service task quietly; every later call raises the
fault (the image is abandoned, like a bugchecked driver).
"""
import contextlib
import math
import os

import trio

from . import drivers, errors, offload, tap
from ._binding import ffi, lib
from .driver import DriverImage, OidResult

DEFAULT_MAC = "02:4e:50:00:00:01"
PUMP_COUNTERS = ("tap_in", "tap_out", "tap_out_dropped", "tap_runts", "wire_in",
                 "wire_runts", "tap_error", "wire_error", "tap_large_sends",
                 "gso_segmented", "gso_dropped", "csum_filled")
# Per-entry-point stack marks on one call in this many (the first of each
# is always measured): a measured call costs ~2 us, an unmeasured one ~10 ns.
STACK_SAMPLING = 64
NDIS_STATUS_PENDING = lib.NDIS_STATUS_PENDING
NDIS_STATUS_SUCCESS = 0


class InProcessAdapter:
    """One initialised adapter and the trio task that services it."""

    def __init__(self, image, adapter, *, receive_buffer=4096, tap_fd=None, tap_vnet_hdr=10,
                 wire_fd=None, wire_vnet_hdr=10, vxlan=None, on_carrier=None):
        self.image = image
        self.adapter = adapter
        self.on_carrier = on_carrier
        self.pump_state = None
        if wire_fd is not None and vxlan is not None:
            raise ValueError("give wire_fd or vxlan, not both: the NIC has one cable")
        if vxlan is not None:
            wire_fd, wire_vnet_hdr = vxlan[0], 0     # a UDP socket: no vnet header
        if tap_fd is not None or wire_fd is not None:
            # The C pump moves frames between these fds and the driver.
            self.pump_state = ffi.new("struct np_api_pump *")
            self.pump_state.tap_fd = -1 if tap_fd is None else tap_fd
            self.pump_state.wire_fd = -1 if wire_fd is None else wire_fd
            self.pump_state.tap_vnet_hdr = tap_vnet_hdr
            self.pump_state.wire_vnet_hdr = wire_vnet_hdr
            self.pump_state.tx_free = 1
            if vxlan is not None:
                adapter.set_wire_vxlan(*vxlan)
            elif wire_fd is not None:
                adapter.set_wire(wire_fd, wire_vnet_hdr)
        self.fault = None
        self._frames_send, self._frames = trio.open_memory_channel(receive_buffer)
        self._status_send, self._status = trio.open_memory_channel(256)
        self._oid_done = None
        self._oid_kind = None
        self._oid_status = None
        self._wakeup = trio.Event()
        self.rx_overflow = 0
        self.leaks = None
        self.violations_at_halt = None
        self.faulted = trio.Event()
        self.offloads = offload.Offloads()      # what negotiate_offloads enabled
        # Called with [(time_ns, direction, frame)] after each service round
        # while capturing (set_capture).
        self.capture_sink = None
        # Called with the driver's new DbgPrint lines after a service round.
        self.on_log = None
        self._log_seen = 0
        # MiniportCheckForHang on NDIS's timer; a hang it reports (or an OID
        # left pending for two periods, as NDIS counts it) calls
        # MiniportReset.  on_reset(reason, status) hears of each.
        self.on_reset = None
        self.resets = 0
        self.hang_check_ns = None
        self._next_hang_check = None
        self._oid_since = None

    def set_hang_check(self, seconds):
        """CheckForHang every ``seconds`` (None: the driver's own interval;
        0: never)."""
        if seconds is None:
            seconds = self.adapter.hang_check_interval or 0
        self.hang_check_ns = int(seconds * 1e9) or None
        self._next_hang_check = (lib.np_api_now_ns() + self.hang_check_ns
                                 if self.hang_check_ns else None)
        self._kick()

    # -- the service task -----------------------------------------------------

    async def _service(self, task_status=trio.TASK_STATUS_IGNORED):
        try:
            if self.pump_state is not None and self.pump_state.tap_fd >= 0:
                await self._supervise_pump(task_status)
            else:
                await self._serve(task_status)
        except errors.DriverError as exc:
            self._record_fault(exc)
        finally:
            self._frames_send.close()
            self._status_send.close()
            if self._oid_done is not None:
                self._oid_done.set()

    async def _serve(self, task_status):
        """Python services the adapter: Linux's side is this program."""
        fd = self.adapter.interrupt_fd
        task_status.started()
        while True:
            self._service_once()
            await self._wait(fd)

    async def _supervise_pump(self, task_status):
        """A C thread services the adapter between the TAP and the wire;
        this task hears what it announces, runs CheckForHang, and stops
        it.  Woken by the thread, not per frame."""
        pump = self.adapter.start_pump(self.pump_state)
        task_status.started()
        try:
            while pump.notice():
                self._service_once()
                deadline = math.inf
                if self._next_hang_check is not None:
                    deadline = trio.current_time() + max(
                        self._next_hang_check - lib.np_api_now_ns(), 0) / 1e9
                with trio.move_on_at(deadline):
                    await trio.lowlevel.wait_readable(pump.notify_fd)
        finally:
            # Stopped, or it ended by itself on a fault; then join() raises
            # it, also over a refusal this task met meanwhile.
            pump.stop()
            with trio.CancelScope(shield=True):
                while pump.notice():
                    await trio.lowlevel.wait_readable(pump.notify_fd)
            pump.join()

    def _ready_fds(self, interrupt_fd):
        fds = [interrupt_fd]
        p = self.pump_state
        if p is not None:
            if p.wire_fd >= 0:
                fds.append(p.wire_fd)
            # Back-pressure: Linux keeps its frames while the driver holds
            # every host packet; completions arrive as interrupts.
            if p.tap_fd >= 0 and p.tx_free:
                fds.append(p.tap_fd)
        return fds

    async def _wait(self, fd):
        due = self.adapter.next_timer()
        if self._next_hang_check is not None:
            due = min(due or self._next_hang_check, self._next_hang_check)
        deadline = math.inf
        if due is not None:
            deadline = trio.current_time() + max(due - lib.np_api_now_ns(), 0) / 1e9
        self._wakeup = trio.Event()
        with trio.move_on_at(deadline):
            async with trio.open_nursery() as nursery:
                async def readable(one):
                    await trio.lowlevel.wait_readable(one)
                    nursery.cancel_scope.cancel()

                async def on_wakeup():
                    await self._wakeup.wait()
                    nursery.cancel_scope.cancel()

                for one in self._ready_fds(fd):
                    nursery.start_soon(readable, one)
                nursery.start_soon(on_wakeup)

    def _service_once(self):
        """Interrupts, timers, then drain: until the driver has nothing new."""
        try:
            self._service_round()
            if self._next_hang_check is not None \
                    and lib.np_api_now_ns() >= self._next_hang_check:
                self._check_for_hang()
        finally:
            if self.capture_sink is not None:
                records = self.adapter.capture_read()
                if records:
                    self.capture_sink(records)
            if self.on_log is not None:
                self.forward_log()

    def forward_log(self):
        """Hand the DbgPrint lines printed since the last call to on_log."""
        lines = self.image.log()
        new = min(self.image.log_count - self._log_seen, len(lines))
        self._log_seen = self.image.log_count
        if new > 0:
            self.on_log(lines[len(lines) - new:])

    def _service_round(self):
        if self.adapter.pump_thread is not None:
            # The thread did the rest; what it leaves us is control events.
            for _ in range(64):
                events = self.adapter.control_events(64)
                for event in events:
                    self._dispatch(event)
                if len(events) < 64:
                    return
            return
        if self.pump_state is not None:
            for _ in range(64):
                if not self.adapter.pump(self.pump_state):
                    return
                for event in self.adapter.events(64):
                    self._dispatch(event)
            return
        for _ in range(64):
            worked = self.adapter.service_interrupt()
            worked += self.adapter.run_timers()
            frames = self.adapter.receive_frames()
            for frame in frames:
                self._deliver(frame)
            events = self.adapter.events(64) if not frames else []
            for event in events:
                self._dispatch(event)
            self.adapter.return_packets()
            if not worked and not frames and not events:
                return

    def _check_for_hang(self):
        now = lib.np_api_now_ns()
        self._next_hang_check = now + self.hang_check_ns
        reason = None
        if self.adapter.check_for_hang():
            reason = "MiniportCheckForHang reported a hang"
        elif self._oid_since is not None and now - self._oid_since > 2 * self.hang_check_ns:
            reason = "an OID request stayed pending for two hang-check periods"
        if reason is None:
            return
        status, _ = self.adapter.reset()
        self.resets += 1
        if self._oid_done is not None and self._oid_since is not None:
            # NDIS fails the request a reset abandoned.
            self._oid_status = lib.NDIS_STATUS_REQUEST_ABORTED
            self._oid_done.set()
        if self.on_reset is not None:
            self.on_reset(reason, status)
        self._service_round()

    def _deliver(self, frame):
        try:
            self._frames_send.send_nowait(frame)
        except trio.WouldBlock:
            self.rx_overflow += 1

    def _dispatch(self, event):
        if event.kind == "receive":
            self._deliver(event.frame)
        elif event.kind in ("status", "status-complete", "reset-complete"):
            if self.on_carrier is not None and event.kind == "status":
                if event.status == lib.NDIS_STATUS_MEDIA_CONNECT:
                    self.on_carrier(True)
                elif event.status == lib.NDIS_STATUS_MEDIA_DISCONNECT:
                    self.on_carrier(False)
            with contextlib.suppress(trio.WouldBlock):
                self._status_send.send_nowait(event)
        elif event.kind in ("query-complete", "set-complete"):
            self._oid_status = event.status
            if self._oid_done is not None:
                self._oid_done.set()

    def _record_fault(self, exc):
        """Keep the first fault: later calls only see the image refuse them."""
        if self.fault is None or (isinstance(self.fault, errors.DriverFaulted)
                                  and not isinstance(exc, errors.DriverFaulted)):
            self.fault = exc
        # A refusal while the pump thread runs: the fault itself is the
        # thread's, which ends on it and hands it over (join) in a moment.
        if not (isinstance(self.fault, errors.DriverFaulted)
                and self.adapter.pump_thread is not None):
            self.faulted.set()
        self._kick()

    def _kick(self):
        """Something the driver did may need servicing: wake the task."""
        self._wakeup.set()
        if self.adapter.pump_thread is not None:
            self.adapter.pump_thread.announce()

    def _check(self):
        if self.fault is not None:
            raise errors.DriverFaulted(f"{self.image.name} faulted: {self.fault}") from self.fault

    # -- frames ------------------------------------------------------------------

    async def send(self, frames, offloads=None):
        """Send a batch; waits (servicing completions) until all are accepted.
        ``offloads`` as for Adapter.send."""
        frames = list(frames)
        offloads = None if offloads is None else list(offloads)
        while frames:
            self._check()
            try:
                accepted = self.adapter.send(frames, offloads)
            except errors.DriverError as exc:
                self._record_fault(exc)
                raise
            self._kick()
            frames = frames[accepted:]
            if offloads is not None:
                offloads = offloads[accepted:]
            if frames:
                await trio.sleep(0)
            else:
                await trio.lowlevel.checkpoint()

    async def receive(self):
        """The next frame the driver indicated."""
        self._check()
        try:
            return await self._frames.receive()
        except trio.EndOfChannel:
            self._check()
            raise

    def receive_nowait(self):
        return self._frames.receive_nowait()

    async def status_event(self):
        """The next status indication (an Event with kind 'status', ...)."""
        self._check()
        return await self._status.receive()

    def wire_receive(self, frames):
        """Frames arriving at the NIC from its wire."""
        self.adapter.wire_receive(frames)
        self._kick()

    # -- OIDs ------------------------------------------------------------------------

    async def _oid(self, call, kind):
        self._check()
        try:
            result = call()
        except errors.DriverError as exc:
            self._record_fault(exc)
            raise
        if result.status != NDIS_STATUS_PENDING:
            return result
        self._oid_done = trio.Event()
        self._oid_since = lib.np_api_now_ns()
        self._kick()
        try:
            with trio.fail_after(10):
                await self._oid_done.wait()
        finally:
            self._oid_done = self._oid_since = None
        self._check()
        data = self.adapter.oid_data() if kind == "query" else b""
        return OidResult(self._oid_status, data, result.needed)

    async def query_oid(self, oid, length=256):
        """MiniportQueryInformation; a pended request is awaited."""
        return await self._oid(lambda: self.adapter.query_raw(oid, length), "query")

    async def set_oid(self, oid, data):
        """MiniportSetInformation; a pended request is awaited."""
        return await self._oid(lambda: self.adapter.set_raw(oid, data), "set")

    async def set_packet_filter(self, bits):
        result = await self.set_oid("OID_GEN_CURRENT_PACKET_FILTER", bits.to_bytes(4, "little"))
        if not result.ok:
            raise errors.DriverStatusError(
                f"packet filter 0x{bits:x} refused: {result.status_name}", result.status)
        self._filter = bits

    async def set_multicast_list(self, addresses, *, base_filter=None):
        """Program the multicast list; more groups than the driver's
        OID_802_3_MAXIMUM_LIST_SIZE fall back to all-multicast, as NDIS does."""
        from .driver import _parse_mac
        raw = [_parse_mac(a) for a in addresses]
        limit = (await self.query_oid("OID_802_3_MAXIMUM_LIST_SIZE", 4)).value
        bits = getattr(self, "_filter", 0) if base_filter is None else base_filter
        if len(raw) > limit:
            await self.set_packet_filter(bits | lib.NDIS_PACKET_TYPE_ALL_MULTICAST)
            return False
        result = await self.set_oid("OID_802_3_MULTICAST_LIST", b"".join(raw))
        if not result.ok:
            raise errors.DriverStatusError(
                f"multicast list refused: {result.status_name}", result.status)
        await self.set_packet_filter((bits | lib.NDIS_PACKET_TYPE_MULTICAST)
                                     & ~lib.NDIS_PACKET_TYPE_ALL_MULTICAST)
        return True

    # -- device and reports -------------------------------------------------------------

    def reset(self):
        """MiniportReset: (status, addressing_reset)."""
        self._check()
        try:
            result = self.adapter.reset()
        except errors.DriverError as exc:
            self._record_fault(exc)
            raise
        self.resets += 1
        self._kick()
        return result

    def set_link(self, up):
        """Cable in or out: the PHY raises a link-change interrupt."""
        self._check()
        self.adapter.set_link(up)
        self._kick()

    def set_capture(self, sink):
        """Capture frames at the miniport boundary into ``sink(records)``;
        ``None`` stops."""
        self.adapter.set_capture(sink is not None)
        self.capture_sink = sink
        self._kick()

    def stats(self):
        return self.adapter.stats()

    async def negotiate_offloads(self, *, wire_tap=False, tell_linux=True):
        """Enable what the driver offloads that the TAP maps (ndisproxy.offload)
        and tell Linux, so GSO frames and partial checksums reach the pump.
        With ``wire_tap`` the cable's TAP takes GSO frames too (the pump cuts
        them: a cable carries segments).  Returns the Offloads in effect.

        Without ``tell_linux`` the TAPs are left alone: a sandboxed host may
        not reconfigure them, and whoever may calls ``offload.configure_taps``.
        Linux's GSO frames should fit the driver's large sends: that too sets
        the TAP's GSO maximum; until then the pump cuts bigger ones."""
        none = offload.Offloads()
        p = self.pump_state
        if p is None or p.tap_fd < 0 or p.tap_vnet_hdr < tap.VNET_HDR_LEN:
            return none
        answer = await self.query_oid("OID_TCP_TASK_OFFLOAD", offload.QUERY_LENGTH)
        if not answer.ok:
            return none
        try:
            offered = offload.parse(answer.data)
        except ValueError:
            return none
        result = await self.set_oid("OID_TCP_TASK_OFFLOAD", offload.set_buffer(offered))
        if not result.ok:
            return none
        p.lso_max = offered.large_send_max
        p.offloads = offered.pump_flags()
        self.offloads = offered
        if tell_linux:
            wire = p.wire_fd if wire_tap and p.wire_vnet_hdr >= tap.VNET_HDR_LEN else -1
            offload.configure_taps(offered, p.tap_fd, wire, link=False)
        return offered

    def pump_counters(self):
        """What the C pump moved (``PUMP_COUNTERS``), or None without one."""
        if self.pump_state is None:
            return None
        thread = self.adapter.pump_thread
        state = thread.counters() if thread is not None else self.pump_state
        return {name: getattr(state, name) for name in PUMP_COUNTERS}

    def rx_latency(self):
        """Wire-to-indication latency histogram (Adapter.rx_latency)."""
        return self.adapter.rx_latency()

    def stack_report(self):
        return self.adapter.stack_report()

    def violations(self):
        return self.adapter.violations()


@contextlib.asynccontextmanager
async def open_adapter(driver="mocknic", *, parameters=None, stack_size=64 * 1024,
                       mac=DEFAULT_MAC, packet_filter=None, tap_fd=None, wire_fd=None,
                       vxlan=None, vnet_hdr=10, wire_vnet_hdr=None, on_carrier=None,
                       image_data=None, deadlines=None, verifier_fatal=(), hang_check=None,
                       helpers=None, offloads=False, offloads_tell_linux=True):
    """Load ``driver`` (a bundled name or a path), bring up one adapter on the
    mock NIC, and service it until the block exits; then halt it (reporting
    leaks to the verifier) and unload the image.

    The NIC's cable is a loopback unless ``wire_fd`` is given (a TAP in the
    link partner's namespace); with ``tap_fd`` (the TAP Linux sees) frames
    move between Linux and the driver in C, and ``on_carrier(bool)`` follows
    the driver's media connect/disconnect indications.  Both fds carry
    ``vnet_hdr`` bytes of virtio_net_hdr per frame.

    ``vxlan=(fd, vni, remote)`` instead of ``wire_fd`` makes the cable a
    VXLAN segment: ``fd`` is a UDP socket (``ndisproxy.vxlan.open_vxlan_socket``),
    frames travel in datagrams with ``vni`` and go to ``remote`` (an
    ``(address, port)`` tuple); the socket carries no vnet header.

    ``deadlines`` maps entry-point classes (``ndisproxy.driver.DEADLINE_CLASSES``)
    to seconds; ``verifier_fatal`` names verifier findings that stop the
    driver; ``hang_check`` is the CheckForHang period in seconds (default:
    the driver's, as NDIS does; 0: never).  ``helpers`` ({name: bytes})
    are helper DLLs the image imports (else they are read from beside it).
    With ``offloads`` the TAPs take GSO frames and partial checksums, mapped
    onto what the driver offloads (InProcessAdapter.negotiate_offloads; the
    TAPs are left to the caller without ``offloads_tell_linux``)."""
    path = driver if os.sep in str(driver) or str(driver).endswith(".sys") \
        else drivers.path(driver)
    image = DriverImage.load(path, stack_size=stack_size, data=image_data, helpers=helpers)
    try:
        adapter = image.create_adapter(stack_size=stack_size, parameters=parameters or {})
        adapter.attach_mocknic(mac)
        adapter.set_deadlines(deadlines or {})
        for kind in verifier_fatal:
            adapter.set_fatal(kind)
        adapter.initialize()
        adapter.set_stack_sampling(STACK_SAMPLING)
        nic = InProcessAdapter(image, adapter, tap_fd=tap_fd, tap_vnet_hdr=vnet_hdr,
                               wire_fd=wire_fd,
                               wire_vnet_hdr=vnet_hdr if wire_vnet_hdr is None else wire_vnet_hdr,
                               vxlan=vxlan,
                               on_carrier=on_carrier)
        nic.set_hang_check(hang_check)
        if on_carrier is not None:
            # A driver without media sense (failing the query, or answering
            # it with the wrong size) is taken to be connected, as NDIS does.
            media = await nic.query_oid("OID_GEN_MEDIA_CONNECT_STATUS", 4)
            on_carrier(not media.ok or len(media.data) != 4 or media.value == 0)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(nic._service)
                if packet_filter is None:
                    packet_filter = (lib.NDIS_PACKET_TYPE_DIRECTED
                                     | lib.NDIS_PACKET_TYPE_BROADCAST)
                await nic.set_packet_filter(packet_filter)
                if offloads:
                    await nic.negotiate_offloads(wire_tap=True,
                                                 tell_linux=offloads_tell_linux)
                try:
                    yield nic
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            # Also when the block was cancelled (a host told to stop): a
            # driver that did not fault is halted, and what it left behind
            # is kept for the caller to check after the block.
            if nic.fault is None and adapter.initialized:
                adapter.halt()
                nic.leaks = adapter.allocations()
                nic.violations_at_halt = adapter.violations()
    finally:
        image.close()
