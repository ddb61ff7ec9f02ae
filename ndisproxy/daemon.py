"""The proxy daemon: Linux's side of every adapter, and the hosts' keeper.

``run(config)`` (what ``ndisproxy run --config FILE`` calls):

1. creates (or re-attaches to, by the mark in its alias, or attaches to an
   administrator's) the TAP Linux sees for each adapter, and its wire: a
   TAP into the link partner's namespace, or the loopback;
2. starts the fork server and, per host (one per adapter, or one per
   ``host = "NAME"`` pool), a driver host process with those fds -
   ``isolation = "inprocess"`` runs the same host code in the daemon;
3. follows each host: the TAP's MAC follows the driver's current address,
   its carrier the driver's media state; a host that faults, exits or
   stops answering its heartbeat is reported (its diagnosis logged as one
   paragraph) and restarted, first at once, then with exponential backoff
   (ndisproxy.backoff), until the adapter's limit leaves it faulted for
   ``ndisproxy reset``; the TAP, its addresses and routes stay;
4. on SIGTERM or SIGINT halts every driver, removes the TAPs it created
   (not pre-created ones, nor those with ``keep_on_stop``) and returns;
   a second signal ends it at once.

The proxy never loads a driver.  Logging goes to the ``ndisproxy`` logger.
"""
import contextlib
import dataclasses
import functools
import logging
import math
import os
import signal
import socket

import trio

from . import config as configuration
from . import errors, netns, offload, peimage, tap
from ._binding import lib, status_name
from .backoff import Backoff
from .host import open_adapter
from .control import ControlServer
from .mirror import Mirror
from .supervisor import HostError, open_fork_server

log = logging.getLogger("ndisproxy")

WIRE_MARK = "ndisproxy:wire:"
VNET_HDR = 10
# The states an adapter goes through (docs/daemon.md draws the machine).
STATES = ("initialising", "running", "resetting", "faulted", "restarting", "halted")
# After a fault the TAP's carrier stays down until Linux has reported it (its
# operstate is no longer "up"), for at most this long: the kernel's link
# watcher handles a carrier loss lazily (up to a second after the previous
# event) and a carrier that is back by then was never lost to whoever follows
# the link - bonding, routing daemons, NetworkManager, a test.
CARRIER_DOWN_MAX = 1.1
DEFAULT_FILTER = (lib.NDIS_PACKET_TYPE_DIRECTED | lib.NDIS_PACKET_TYPE_BROADCAST
                  | lib.NDIS_PACKET_TYPE_MULTICAST)


class DaemonError(errors.NdisProxyError):
    """The daemon could not set up an adapter's links (one line)."""


class AdapterState:
    """What the daemon knows of one adapter (status reports read this)."""

    def __init__(self, config):
        self.config = config
        self.name = config.name
        self.tap_fd = None
        self.wire_fd = None
        self.created_tap = False
        self.created_wire = False
        self.state = "initialising"
        self.pid = None
        self.mac = None
        self.carrier = False
        self.restarts = 0
        self.last_fault = None
        self.sandbox = None
        self.max_frame = None
        # A MAC Linux set: the driver gets it as NetworkAddress when it is
        # re-initialised (NDIS 5.1 has no OID to change it).
        self.network_address = None
        self.reinit_to = None
        self.mirror = None
        self.halt_report = None     # {"leaks": [...], "violations": [...]} from the last halt
        self.wire_peer = None       # our end of a "socket" wire
        self.scope = None           # cancels this adapter's host (remove_adapter)
        self.subscribers = []       # memory channels of events() callers
        self.capture_subscribers = []   # memory channels of capture.c records
        self.running_since = None       # trio.current_time() when it came up
        self.gave_up = False            # faulted past its restart limit
        self.restart_now = trio.Event()     # set by `ndisproxy reset`: stop waiting
        self.resets = 0                 # MiniportReset calls CheckForHang asked for
        self.helpers = {}               # helper DLLs the image imports: {module: path}
        self.fault = None               # this run's diagnosis (last_fault keeps it)
        self.fault_at = None

    def set_state(self, state, **fields):
        self.state = state
        self.publish("state", state=state, **fields)

    def set_carrier(self, up):
        self.carrier = bool(up)
        if self.tap_fd is not None:
            tap.set_carrier(self.tap_fd, up)

    def uptime(self):
        """Seconds since the driver last came up, or None."""
        if self.running_since is None or self.state != "running":
            return None
        return round(trio.current_time() - self.running_since, 3)

    def publish(self, kind, **fields):
        """An event for every events() subscriber; a slow one loses events."""
        event = {"kind": kind, "adapter": self.name, **fields}
        for channel in list(self.subscribers):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                pass
            except trio.ClosedResourceError:
                self.subscribers.remove(channel)


def _prepare_links(adapter):
    """Blocking (run in a thread): the adapter's TAP and wire, attached."""
    cfg = adapter.config
    if cfg.existing_tap:
        adapter.tap_fd = tap.open_tap(cfg.name, vnet_hdr=True)
    else:
        if tap.find_tap(cfg.name) is None:
            tap.create_tap(cfg.name, mtu=cfg.mtu)
        elif not tap.is_ours(cfg.name):
            raise tap.TapError(f"{cfg.name}: exists and is not ndisproxy's")
        # Created now or by an earlier run (kept, or left by a crash): ours
        # either way, removed at a clean stop unless keep_on_stop.
        adapter.created_tap = True
        adapter.tap_fd = tap.open_tap(cfg.name, vnet_hdr=True)
        tap.set_up(cfg.name, True)
    if cfg.wire.kind == "tap":
        name = cfg.wire.ifname
        if cfg.wire.netns and netns.marked_tap_in_netns(cfg.wire.netns, name):
            # Ours, left in the peer's namespace by an earlier run: keep it
            # (and the peer's addresses on it).
            adapter.wire_fd = netns.open_tap_in_netns(cfg.wire.netns, name,
                                                      vnet_hdr=cfg.wire.gso)
            adapter.created_wire = True
            tap.set_carrier(adapter.wire_fd, True)
            return
        if tap.find_tap(name) is None:
            tap.create_tap(name, alias_mark=WIRE_MARK + cfg.name)
        adapter.created_wire = True
        # Without a vnet header the cable carries what Ethernet would: the
        # NIC cuts its large sends, and the partner's kernel its own.
        adapter.wire_fd = tap.open_tap(name, vnet_hdr=cfg.wire.gso)
        tap.set_carrier(adapter.wire_fd, True)          # the cable is plugged in
        if cfg.wire.netns:
            netns.move_link(name, cfg.wire.netns)
            netns.configure_in_netns(cfg.wire.netns, name, up=True)
        else:
            tap.set_up(name, True)
    elif cfg.wire.kind == "socket":
        # The NIC's cable ends in this process (the library's SocketWire):
        # one frame per message, no vnet header.
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        theirs.setblocking(False)       # the pump never waits on a read
        adapter.wire_fd = theirs.detach()
        adapter.wire_peer = ours
    elif cfg.wire.kind == "vxlan":
        from . import vxlan
        # A UDP socket bound to local; the device sends to remote (an OSError
        # here, say an address no interface has, is the adapter's error).
        adapter.wire_fd = vxlan.open_vxlan_socket(cfg.wire.local, cfg.wire.remote)


def _check_image(adapter):
    """Blocking: refuse, before anything is created for it, a driver the
    loader would refuse (wrong machine, damaged, unresolved imports - all
    of them named).  Reading the file is not loading it: the proxy never
    runs driver code."""
    try:
        image = peimage.check_file(adapter.config.driver)
    except errors.ImageError as exc:
        raise DaemonError(f"{adapter.name}: driver refused: {exc}") from None
    adapter.helpers = peimage.helpers_beside(adapter.config.driver, image)


def _release_links(adapter):
    """Blocking: close fds, remove what we created unless told to keep it."""
    cfg = adapter.config
    for fd in (adapter.tap_fd, adapter.wire_fd):
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
    adapter.tap_fd = adapter.wire_fd = None
    if adapter.wire_peer is not None:
        adapter.wire_peer.close()
        adapter.wire_peer = None
    if adapter.created_tap and not cfg.keep_on_stop:
        with contextlib.suppress(tap.TapError):
            tap.delete_tap(cfg.name, missing_ok=True)
    if adapter.created_wire and cfg.wire.kind == "tap" and not cfg.keep_on_stop:
        name = cfg.wire.ifname
        if cfg.wire.netns:
            with contextlib.suppress(netns.NetnsError):
                netns.delete_link_in_netns(cfg.wire.netns, name)
        else:
            with contextlib.suppress(tap.TapError):
                tap.delete_tap(name, missing_ok=True)


def _spec(adapters, fds):
    """The host spec for these adapters; fds gets their fds appended."""
    spec = {"adapters": []}
    for adapter in adapters:
        cfg = adapter.config
        entry = {"name": cfg.name, "driver": str(cfg.driver), "stack_size": cfg.stack_size,
                 "parameters": dict(cfg.parameters), "mac": cfg.mac,
                 "packet_filter": DEFAULT_FILTER, "vnet_hdr": VNET_HDR, "tap": None,
                 "wire": None, "deadlines": dict(cfg.deadlines),
                 "verifier_fatal": list(cfg.verifier_fatal), "hang_check": cfg.hang_check,
                 "offloads": cfg.offloads}
        if cfg.mac and "NetworkAddress" not in cfg.parameters:
            entry["parameters"]["NetworkAddress"] = cfg.mac
        if adapter.network_address:
            entry["parameters"]["NetworkAddress"] = adapter.network_address
        entry["tap"] = len(fds)
        fds.append(adapter.tap_fd)
        if adapter.wire_fd is not None and cfg.wire.kind == "vxlan":
            entry["vxlan"] = {"fd": len(fds), "vni": cfg.wire.vni,
                              "remote": [str(cfg.wire.remote[0]), cfg.wire.remote[1]]}
            fds.append(adapter.wire_fd)
        elif adapter.wire_fd is not None:
            entry["wire"] = len(fds)
            fds.append(adapter.wire_fd)
            if cfg.wire.kind == "socket" or not cfg.wire.gso:
                entry["wire_vnet_hdr"] = 0
        spec["adapters"].append(entry)
    return spec


def _names(adapters):
    return ", ".join(a.name for a in adapters)


async def nursery_done(nursery):
    """Wait until ``nursery``'s tasks (other than the caller) have finished."""
    while nursery.child_tasks:
        await trio.sleep(0.01)


class _InProcessHandle:
    """The host protocol's answers, for an adapter running in the daemon."""

    def __init__(self, nic, name, daemon):
        from .hostproc import _Host, pack_capture
        self._host = _Host(None)
        self._host.nics[name] = nic

        def sink(records):
            daemon._on_capture(name, b"".join(pack_capture(*r) for r in records))
        # Captured frames go straight to the daemon's subscribers.
        self._host.capture_sink = lambda name: sink

    async def answer(self, request):
        return await self._host.answer(request)


class Daemon:
    def __init__(self, config):
        self.config = config            # what it runs now (replaced by reload)
        self.adapters = {a.name: AdapterState(a) for a in config.adapters}
        self.fork_server = None
        self.stopping = False
        self.hosts = {}         # adapter name -> Host (process) or InProcessAdapter
        self.changed = trio.Event()

    def groups(self):
        """Adapters per host: a named pool shares one host, else one each."""
        groups = {}
        for adapter in self.adapters.values():
            key = adapter.config.host or f"adapter:{adapter.name}"
            groups.setdefault(key, []).append(adapter)
        return list(groups.values())

    def _notify(self):
        """Wake everyone waiting for a state change (wait_state)."""
        self.changed.set()
        self.changed = trio.Event()

    async def wait_state(self, name, state, timeout=30):
        """Wait until adapter ``name`` is in ``state`` (e.g. "running")."""
        await self.wait_until(lambda: self.adapters[name].state == state, timeout)

    async def wait_until(self, predicate, timeout=30):
        """Wait until ``predicate()`` holds, re-checking at every state change."""
        with trio.fail_after(timeout):
            while not predicate():
                await self.changed.wait()

    async def request(self, name, op, *, states=("running",), **fields):
        """A request to the host running adapter ``name``: "query", "set",
        "stats" (the reply dict, as hostproc documents it), if the adapter
        is in one of ``states``."""
        host = self.hosts.get(name)
        if host is None or self.adapters[name].state not in states:
            raise DaemonError(f"{name}: not running ({self.adapters[name].state})")
        if isinstance(host, _InProcessHandle):
            return await host.answer({"op": op, "adapter": name, **fields})
        return await host.request(op, adapter=name, **fields)

    async def reinitialise(self, adapter, mac):
        """Restart ``adapter``'s host so its driver starts with address ``mac``."""
        host = self.hosts.get(adapter.name)
        if isinstance(host, _InProcessHandle) or host is None:
            log.warning("%s: cannot re-initialise an in-process adapter; "
                        "MAC %s not applied", adapter.name, mac)
            adapter.mac = mac
            return
        adapter.network_address = adapter.reinit_to = mac
        adapter.set_state("resetting")
        self._notify()
        await host.stop()

    def _on_capture(self, name, records):
        adapter = self.adapters.get(name)
        for channel in list(adapter.capture_subscribers if adapter else ()):
            try:
                channel.send_nowait(records)
            except (trio.WouldBlock, trio.ClosedResourceError):
                pass

    async def _configure_offloads(self, adapter, offered):
        """Tell Linux what the driver offloads: the host negotiated them, but
        may not reconfigure the TAPs itself (its seccomp filter)."""
        wire = adapter.wire_fd if adapter.config.wire.kind == "tap" \
            and adapter.config.wire.gso else None
        try:
            await trio.to_thread.run_sync(functools.partial(
                offload.configure_taps, offered, adapter.tap_fd,
                -1 if wire is None else wire))
        except OSError as exc:                  # TapError is an OSError
            log.warning("%s: offloads not enabled on the TAP: %s", adapter.name, exc)

    async def _on_up(self, adapter, event):
        # The TAP takes the driver's address before the adapter counts as
        # running: the mirror reads any other address as the admin's change.
        mac = event.get("mac")
        if mac and mac != adapter.mac and not adapter.config.existing_tap:
            try:
                await trio.to_thread.run_sync(tap.set_mac, adapter.name, mac)
            except (OSError, ValueError) as exc:     # TapError is an OSError
                # A driver may report an address Linux refuses (a group
                # address, say): the TAP keeps its own.
                log.warning("%s: the driver's address %s is not the TAP's: %s",
                            adapter.name, mac, exc)
        adapter.mac = mac
        adapter.reinit_to = None
        adapter.pid = event.get("pid")
        adapter.sandbox = event.get("sandbox")
        adapter.max_frame = event.get("max_frame")
        if event.get("offloads") is not None and adapter.tap_fd is not None:
            await self._configure_offloads(adapter, offload.Offloads(**event["offloads"]))
        if adapter.mirror is not None:
            adapter.mirror.reset(adapter.max_frame)
        # Back from a fault or a daemon restart (or up for the first time):
        # what Linux tried to resolve while the carrier was down is asked
        # again now, not after its 1 s retransmit time.
        with contextlib.suppress(tap.TapError):
            await trio.to_thread.run_sync(tap.forget_unresolved_neighbours, adapter.name)
        adapter.running_since = trio.current_time()
        log.info("%s: running (%s, host pid %s, MAC %s)", adapter.name,
                 adapter.config.driver_name, adapter.pid, mac)
        adapter.set_state("running", pid=adapter.pid, mac=mac)
        self._notify()

    def _on_fault(self, adapters, event):
        """The host's diagnosis (or ours): carrier down now; _keep_host logs
        it with what happens next, once the host is gone."""
        adapter = next((a for a in adapters if a.name == event.get("adapter")), adapters[0])
        if adapter.fault is not None:
            return                      # the first diagnosis is the one that counts
        adapter.last_fault = adapter.fault = event
        adapter.fault_at = trio.current_time()
        for a in adapters:
            a.set_carrier(False)
            a.set_state("faulted")
        adapter.publish("fault", **{("type" if k == "kind" else k): v for k, v in event.items()
                                    if k not in ("event", "adapter")})
        self._notify()

    def _on_reset(self, adapter, event):
        adapter.resets += 1
        log.warning("%s: %s: MiniportReset returned %s", adapter.name, event.get("reason"),
                    status_name(event.get("status") or 0))
        adapter.publish("reset", reason=event.get("reason"), status=event.get("status"))
        if adapter.mirror is not None:
            adapter.mirror.applied = None      # NDIS re-applies filter and multicast list

    async def _follow(self, adapters, events):
        """Act on a host's events (well-formed: supervisor.Host checked them)
        for the adapters it runs, and no others."""
        ours = {adapter.name: adapter for adapter in adapters}
        async for event in events:
            kind = event.get("event")
            adapter = ours.get(event.get("adapter"))
            if kind == "up" and adapter:
                await self._on_up(adapter, event)
            elif kind == "log" and adapter:
                for line in event.get("lines", []):
                    log.info("%s: driver: %s", adapter.name, line)
            elif kind == "carrier" and adapter:
                adapter.carrier = bool(event["up"])
                adapter.publish("link", up=adapter.carrier)
            elif kind == "reset" and adapter:
                self._on_reset(adapter, event)
            elif kind in ("fault", "error"):
                self._on_fault(adapters, event)
            elif kind == "stopped":
                for name, found in (event.get("adapters") or {}).items():
                    if name in ours:
                        ours[name].halt_report = found

    async def _run_process_host(self, adapters):
        fds = []
        spec = _spec(adapters, fds)
        # The images and their helper DLLs, opened here: a host (perhaps
        # another user) reads them from these fds, whatever the permissions
        # on their paths.
        images = []
        opened = {}             # a pool's adapters share one image: one fd

        def open_for_host(path, name):
            if path not in opened:
                try:
                    images.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
                except OSError as exc:
                    raise DaemonError(f"{name}: driver {path}: {exc.strerror}") from None
                fds.append(images[-1])
                opened[path] = len(fds) - 1
            return opened[path]

        try:
            for adapter, entry in zip(adapters, spec["adapters"]):
                entry["driver_fd"] = open_for_host(entry["driver"], entry["name"])
                entry["helpers"] = {module: open_for_host(path, entry["name"])
                                    for module, path in adapter.helpers.items()}
            host = await self.fork_server.spawn(spec, fds)
        finally:
            for fd in images:
                os.close(fd)
        host.on_capture = self._on_capture
        for adapter in adapters:
            adapter.pid = host.pid
            self.hosts[adapter.name] = host
        # Following the host outlives a cancellation of the daemon: its
        # last words (the halt report) come after we asked it to stop, and
        # events() ends by itself at EOF, when the host is gone.
        following = trio.CancelScope(shield=True)

        async def follow():
            with following:
                await self._follow(adapters, host.events())

        heartbeat = trio.CancelScope()

        async def keep_heartbeat():
            with heartbeat:
                await self._heartbeat(adapters, host)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow)
                nursery.start_soon(keep_heartbeat)
                try:
                    await host.exited.wait()
                finally:
                    heartbeat.cancel()
                    with trio.CancelScope(shield=True):
                        if not host.exited.is_set():
                            await host.stop()
                        with trio.move_on_after(2):
                            await nursery_done(nursery)
                    following.cancel()
        finally:
            host.close()
        for name, found in ((host.final or {}).get("adapters") or {}).items():
            if name in (adapter.name for adapter in adapters):
                self.adapters[name].halt_report = found
        return host.exit_status

    async def _heartbeat(self, adapters, host):
        """Kill a host that stops answering: a driver hang the host's own
        watchdog cannot end, a host stopped or wedged outside driver code."""
        limit = self.config.daemon.heartbeat
        if not limit:
            return
        # A host answers nothing until its adapters are up; their
        # Initialize deadlines bound that, and then this does.
        bringing_up = sum(a.config.deadlines["initialize"] for a in adapters) + limit + 5
        with trio.move_on_after(bringing_up) as waiting:
            await self.wait_until(lambda: all(a.state == "running" for a in adapters),
                                  timeout=math.inf)
        silent = bringing_up
        if not waiting.cancelled_caught:
            period = max(limit / 4, 0.02)
            while True:
                try:
                    await host.request("ping", timeout=limit)
                except trio.TooSlowError:
                    silent = limit
                    break
                except (OSError, HostError):
                    return              # the host is gone: its exit says why
                await trio.sleep(period)
        if host.exited.is_set():
            return
        self._on_fault(adapters, {
            "adapter": adapters[0].name, "kind": "HostUnresponsive",
            "error": f"host pid {host.pid} did not answer for {silent:g} s: killed"})
        host.kill()

    async def _run_inprocess_host(self, adapters):
        """The same host code, in the daemon (isolation = "inprocess")."""
        async with trio.open_nursery() as nursery:
            for adapter in adapters:
                nursery.start_soon(self._inprocess_adapter, adapter)
        return 0

    async def _inprocess_adapter(self, adapter):
        cfg = adapter.config
        fds = []
        entry = _spec([adapter], fds)["adapters"][0]
        from .hostproc import wire_arguments
        try:
            async with open_adapter(cfg.driver, parameters=entry["parameters"],
                                    stack_size=cfg.stack_size, packet_filter=DEFAULT_FILTER,
                                    tap_fd=adapter.tap_fd, **wire_arguments(entry, fds),
                                    vnet_hdr=VNET_HDR, on_carrier=adapter.set_carrier,
                                    deadlines=cfg.deadlines, verifier_fatal=cfg.verifier_fatal,
                                    hang_check=cfg.hang_check, offloads=cfg.offloads,
                                    offloads_tell_linux=False) as nic:
                nic.on_reset = lambda reason, status: self._on_reset(
                    adapter, {"reason": reason, "status": status})
                address = (await nic.query_oid("OID_802_3_CURRENT_ADDRESS", 6)).data
                self.hosts[adapter.name] = _InProcessHandle(nic, adapter.name, self)
                await self._on_up(adapter, {"pid": os.getpid(), "mac": address.hex(":"),
                                            "max_frame": nic.adapter.max_frame,
                                            "offloads": dataclasses.asdict(nic.offloads)})
                await nic.faulted.wait()
                raise nic.fault
        except Exception as exc:   # noqa: BLE001 - every driver failure restarts it
            self._on_fault([adapter], {"adapter": adapter.name, "error": str(exc)})

    async def _keep_host(self, adapters):
        """Run a host; restart it after a fault or exit, with backoff (a
        pool follows its first adapter's policy), or leave it faulted."""
        backoff = Backoff(adapters[0].config.restart)
        while not self.stopping:
            started = trio.current_time()
            for adapter in adapters:
                adapter.fault = adapter.running_since = None
                adapter.restart_now = trio.Event()
                adapter.set_state("initialising")
            self._notify()
            if adapters[0].config.isolation == "inprocess":
                status = await self._run_inprocess_host(adapters)
            else:
                try:
                    status = await self._run_process_host(adapters)
                except (DaemonError, HostError) as exc:
                    # The image went away (ndisproxy driver remove, say), or
                    # the host could not be forked: like a fault, retried
                    # with backoff.
                    self._on_fault(adapters, {"adapter": adapters[0].name, "error": str(exc)})
                    status = None
            if self.stopping:
                return
            for adapter in adapters:
                self.hosts.pop(adapter.name, None)
            if any(a.reinit_to for a in adapters):
                continue            # asked for (a MAC change), not a fault: no count
            up = [a.running_since for a in adapters if a.running_since is not None]
            delay = backoff.after_fault(trio.current_time() - min(up) if up else None)
            for adapter in adapters:
                adapter.set_carrier(False)
                if delay is not None:
                    adapter.restarts += 1
                    adapter.set_state("restarting", restarts=adapter.restarts, delay=delay)
                else:
                    adapter.gave_up = True
                    adapter.set_state("faulted", gave_up=True)
            self._notify()
            self._log_fault(adapters, status, backoff, delay)
            if delay is None:
                await adapters[0].restart_now.wait()
                backoff.forget()
                for adapter in adapters:
                    adapter.gave_up = False
                log.info("%s: reset by the administrator: restarting", _names(adapters))
            else:
                with trio.move_on_after(delay):
                    await adapters[0].restart_now.wait()
                await self._until_carrier_loss_seen(adapters)

    async def _until_carrier_loss_seen(self, adapters):
        def seen():
            for adapter in adapters:
                with contextlib.suppress(tap.TapError):
                    if tap.link_state(adapter.name)["operstate"] == "up":
                        return False
            return True

        with trio.move_on_after(CARRIER_DOWN_MAX):
            while not await trio.to_thread.run_sync(seen):
                await trio.sleep(0.01)

    def _log_fault(self, adapters, status, backoff, delay):
        """One paragraph: what failed, where, and what happens next."""
        faulted = next((a for a in adapters if a.fault), adapters[0])
        fault = faulted.fault or {"error": f"host ended with status {status} "
                                           "without a diagnosis"}
        parts = [f"{_names(adapters)}: driver fault: {fault.get('error')}"]
        if fault.get("high_water"):
            parts.append(f"stack high-water {fault['high_water']} of "
                         f"{faulted.config.stack_size} bytes")
        lines = fault.get("log") or []
        if lines:
            parts.append("last DbgPrint: " + " | ".join(line.strip() for line in lines[-3:]))
        limit = backoff.policy.limit
        row = f"fault {backoff.faults} in a row" + (f" of at most {limit}" if limit else "")
        if delay is None:
            parts.append(f"{row}: staying faulted until `ndisproxy reset {faulted.name}`")
        elif delay == 0:
            parts.append(f"restarting now ({row})")
        else:
            parts.append(f"restarting in {delay:g} s ({row})")
        log.error("; ".join(parts))

    async def reset(self, name):
        """``ndisproxy reset``: MiniportReset on a running adapter (the host's
        reply); a faulted adapter, or one waiting out its backoff, has its
        host restarted now and its faults forgotten (a pool's as one):
        ``{"restarted": True}``."""
        adapter = self.adapters[name]
        if adapter.state in ("faulted", "restarting"):
            pool = adapter.config.host or adapter.name
            for other in self.adapters.values():
                if (other.config.host or other.name) == pool:
                    other.restart_now.set()
            return {"restarted": True}
        adapter.set_state("resetting")
        self._notify()
        try:
            reply = await self.request(name, "reset", states=("resetting",))
        finally:
            if adapter.state == "resetting":
                adapter.set_state("running")
                self._notify()
        if reply.get("addressing_reset") and adapter.mirror is not None:
            adapter.mirror.applied = None     # NDIS re-applies filter and multicast list
        return reply

    async def _serve_group(self, group, task_status=trio.TASK_STATUS_IGNORED):
        """One host group: its links, its host; until cancelled, then the
        links are released (also when preparing one of them failed)."""
        scope = trio.CancelScope()
        for adapter in group:
            adapter.scope = scope
        try:
            failures = {}

            async def prepare(adapter):
                try:
                    await trio.to_thread.run_sync(_check_image, adapter)
                    await trio.to_thread.run_sync(_prepare_links, adapter)
                except DaemonError as exc:
                    failures[adapter.name] = exc
                except (OSError, NotImplementedError) as exc:
                    failures[adapter.name] = DaemonError(f"{adapter.name}: {exc}")

            async with trio.open_nursery() as preparing:
                for adapter in group:
                    preparing.start_soon(prepare, adapter)
            for adapter in group:           # the first in the file's order, plainly
                if adapter.name in failures:
                    raise failures[adapter.name]
            with scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._keep_host, group)
                    for adapter in group:
                        adapter.mirror = Mirror(self, adapter)
                        nursery.start_soon(adapter.mirror.run)
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                for adapter in group:
                    adapter.state = "halted"
                    adapter.publish("state", state="halted")
                    self.hosts.pop(adapter.name, None)
                    await trio.to_thread.run_sync(_release_links, adapter)
                    for channel in adapter.subscribers:
                        channel.close()
                self._notify()

    async def add_adapter(self, adapter_config):
        """Bring up one more adapter (an AdapterConfig) in the running daemon."""
        # A caller whose scope was cancelled while it last waited on a
        # thread (which returns regardless) hears of it here, before asking
        # a daemon that may have stopped meanwhile.
        await trio.lowlevel.checkpoint()
        if adapter_config.name in self.adapters:
            raise DaemonError(f"{adapter_config.name}: an adapter of that name exists")
        if adapter_config.isolation == "process" and self.fork_server is None:
            raise DaemonError("this daemon has no fork server (all adapters in-process)")
        if self.stopping:
            raise DaemonError(f"{adapter_config.name}: the daemon is stopping")
        adapter = AdapterState(adapter_config)
        self.adapters[adapter.name] = adapter
        try:
            await self._nursery.start(self._serve_group, [adapter])
        except RuntimeError:            # its nursery closed: run() has ended
            del self.adapters[adapter.name]
            raise DaemonError(f"{adapter_config.name}: the daemon has stopped") from None
        except BaseException:
            del self.adapters[adapter.name]
            raise
        return adapter

    async def remove_adapter(self, name):
        """Halt adapter ``name`` and remove what was created for it."""
        adapter = self.adapters[name]
        adapter.scope.cancel()
        await self.wait_until(lambda: adapter.state == "halted")
        del self.adapters[name]

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED, fork_server=None):
        """Until cancelled.  ``fork_server``: True/False to force starting one
        (library use adds adapters later); None: only if the config needs it."""
        if fork_server is None:
            fork_server = any(a.config.isolation == "process" for a in self.adapters.values())
        async with contextlib.AsyncExitStack() as stack:
            if fork_server:
                self.fork_server = await stack.enter_async_context(
                    open_fork_server(self.config.daemon.host_user))
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    # Every group's links at once (netlink round trips and
                    # image checks overlap); the first failure cancels the rest.
                    async with trio.open_nursery() as starting:
                        for group in self.groups():
                            starting.start_soon(nursery.start, self._serve_group, group)
                    task_status.started(self)
                    log.info("ready: %d adapter(s)", len(self.adapters))
                    await trio.sleep_forever()
            finally:
                self.stopping = True


def status_line(daemon):
    """STATUS= text: what every adapter is doing."""
    parts = []
    for a in daemon.adapters.values():
        part = f"{a.name} {a.state}"
        if a.state in ("faulted", "restarting") and a.last_fault:
            part += f" ({a.last_fault.get('error', '')[:80]})"
        parts.append(part)
    count = len(parts)
    return f"{count} adapter{'s' if count != 1 else ''}: " + ", ".join(parts) if parts \
        else "no adapters"


async def reload(daemon, path, notifier):
    """SIGHUP: re-read ``path``; add, remove or restart only what changed."""
    notifier.reloading()
    try:
        new = await trio.to_thread.run_sync(configuration.load, path)
        await trio.to_thread.run_sync(configuration.check_system, new)
    except (configuration.ConfigError, OSError) as exc:
        log.error("reload: %s; keeping the running configuration", exc)
        notifier.ready(f"reload failed: {exc}; {status_line(daemon)}")
        return False
    wanted = {a.name: a for a in new.adapters}
    running = {name: a.config for name, a in daemon.adapters.items()}
    for name, old in running.items():
        if name not in wanted or wanted[name] != old:
            log.info("reload: %s: %s", name, "removed" if name not in wanted else "changed")
            await daemon.remove_adapter(name)
    for name, cfg in wanted.items():
        if name not in daemon.adapters:
            log.info("reload: %s: starting", name)
            try:
                await daemon.add_adapter(cfg)
            except errors.NdisProxyError as exc:
                log.error("reload: %s", exc)
    daemon.config = new
    notifier.ready(status_line(daemon))
    return True


async def run_until_signalled(config, notifier=None):
    """``ndisproxy run``: the daemon until SIGTERM/SIGINT (a second one is
    fatal), reloading on SIGHUP, telling systemd what it does."""
    from .notify import Notifier
    notifier = notifier or Notifier()
    daemon = Daemon(config)
    scope = trio.CancelScope()

    async def watch(signals, nursery):
        async for signum in signals:
            if signum == signal.SIGHUP:
                nursery.start_soon(reload, daemon, config.path, notifier)
                continue
            if scope.cancel_called:
                log.error("%s again: exiting at once", signal.Signals(signum).name)
                os._exit(1)
            log.info("%s: halting drivers and cleaning up", signal.Signals(signum).name)
            notifier.stopping("halting drivers and removing interfaces")
            scope.cancel()

    async def keep_status():
        last = None
        while True:
            await daemon.changed.wait()
            line = status_line(daemon)
            if line != last:
                notifier.status(line)
                last = line

    async def keep_watchdog(period):
        # Pinged from the event loop: if it stalls, systemd stops hearing it.
        while True:
            notifier.send(WATCHDOG=1)
            await trio.sleep(period)

    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch, signals, nursery)
            if notifier.watchdog_period():
                nursery.start_soon(keep_watchdog, notifier.watchdog_period())
            with scope:
                # Returns only when cancelled; its clean-up is shielded, and
                # watch() still answers a second signal while it runs.
                async with trio.open_nursery() as inner:
                    notifier.status("creating interfaces and starting driver hosts")
                    await inner.start(functools.partial(daemon.run, fork_server=True))
                    await inner.start(ControlServer(
                        daemon, config.daemon.socket, group=config.daemon.group,
                        admin_group=config.daemon.admin_group).serve)
                    log.info("control socket %s", config.daemon.socket)
                    # READY once every adapter was tried: running, or failed
                    # and left to its restarts.
                    with trio.move_on_after(60):
                        await daemon.wait_until(lambda: all(
                            a.state != "initialising" for a in daemon.adapters.values()))
                    notifier.ready(status_line(daemon))
                    inner.start_soon(keep_status)
            nursery.cancel_scope.cancel()
    notifier.close()
    return 0
