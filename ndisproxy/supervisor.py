"""The proxy's side of driver hosts: the fork server and host handles.

    async with open_fork_server() as server:
        host = await server.spawn(spec, [tap_fd, wire_fd])
        async for event in host.events(): ...      # "up", "carrier", "fault", ...
        await host.stop()

The fork server is started once and holds no capabilities; every host is
forked from it and handed its fds over SCM_RIGHTS (ndisproxy.forkserver).
A Host learns that its process ended from the fork server, which reaps it,
so the proxy never holds a child it could forget to wait for.
"""
import array
import contextlib
import json
import logging
import os
import re
import select
import socket
import sys

import trio

from . import errors

log = logging.getLogger("ndisproxy")

MAX_MESSAGE = 1 << 16
MAX_FDS = 253                   # SCM_MAX_FD, as the fork server receives them
CAPTURE_TAG = b"\x01"          # hostproc's binary capture messages

# A host runs driver code, so nothing it says is trusted: each event must
# carry these fields, of these types (hostproc's docstring has the
# protocol), or it is dropped; so must each reply, unless it is an error.
EVENT_FIELDS = {
    "up": {"adapter": str, "mac": str, "max_frame": int, "pid": int},
    "carrier": {"adapter": str, "up": bool},
    "log": {"adapter": str, "lines": list},
    "stopped": {"adapters": dict},
    "reset": {"adapter": str, "reason": str, "status": int},
    "fault": {"error": str},
    "error": {"error": str},
    "probe": {"ok": bool},
}
OPTIONAL_FIELDS = {"adapter": str, "log": list, "sandbox": dict}
REPLY_FIELDS = {
    "query": {"status": int, "data": str, "needed": int},
    "set": {"status": int, "needed": int},
    "stats": {"adapters": dict},
    "reset": {"status": int, "addressing_reset": bool},
    "link": {}, "capture": {}, "stall": {}, "ping": {},
}
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def _hung_up(sock):
    """After a read of 0 bytes: whether the peer closed its end.  On a
    SOCK_SEQPACKET socket an empty message reads the same as end of file;
    only a hang-up is the end."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLRDHUP)
    return any(events & (select.POLLHUP | select.POLLRDHUP | select.POLLERR)
               for _, events in poller.poll(0))


class HostError(errors.NdisProxyError):
    """A driver host could not be started or did not answer."""


def _wrong_fields(message, fields):
    """What is wrong with ``message`` (a dict) for ``fields``, or None."""
    for name, kind in fields.items():
        value = message.get(name)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            return f"{name!r} is {type(value).__name__}, not {kind.__name__}"
    return None


def malformed_event(event):
    """Why a host's event (a JSON value) is not one the proxy can use, or None."""
    if not isinstance(event, dict):
        return "not an object"
    kind = event.get("event")
    if not isinstance(kind, str) or kind not in EVENT_FIELDS:
        return f"unknown event {kind!r}"
    problem = _wrong_fields(event, EVENT_FIELDS[kind]) or _wrong_fields(
        event, {name: t for name, t in OPTIONAL_FIELDS.items() if name in event})
    if problem:
        return f"{kind}: {problem}"
    for name in ("lines", "log"):
        if not all(isinstance(line, str) for line in event.get(name, ())):
            return f"{kind}: {name!r} holds a line that is not a string"
    if kind == "up" and not _MAC.fullmatch(event["mac"]):
        return f"up: 'mac' {event['mac']!r} is not an Ethernet address"
    if kind == "stopped" and not all(isinstance(v, dict) for v in event["adapters"].values()):
        return "stopped: a halt report that is not an object"
    return None


def _printable_words(message):
    """Escape what is not printable in the texts of a well-formed message:
    they end up in control replies and log lines, one line each."""
    for name in ("error", "reason"):
        if isinstance(message.get(name), str):
            message[name] = errors.printable(message[name])
    for name in ("lines", "log"):
        if isinstance(message.get(name), list):
            message[name] = [errors.printable(line) for line in message[name]]
    return message


def malformed_reply(op, reply, adapter=None):
    """Why a host's reply to ``op`` (about ``adapter``) is not one the
    proxy can use, or None."""
    if "error" in reply:
        error = reply["error"]
        return None if isinstance(error, str) and error else "'error' is not a message"
    problem = _wrong_fields(reply, REPLY_FIELDS.get(op, {}))
    if problem is None and "data" in reply:
        try:
            bytes.fromhex(reply["data"])
        except (TypeError, ValueError):
            problem = "'data' is not hex"
    if problem is None and op == "stats":
        if adapter is not None and adapter not in reply["adapters"]:
            return f"no stats for {adapter}"
        for stats in reply["adapters"].values():
            if not isinstance(stats, dict) or _wrong_fields(stats, {"host": dict,
                                                                    "stack": dict}):
                problem = "an adapter's stats lack 'host' or 'stack'"
    return problem


class Host:
    """One driver host process, as the proxy sees it."""

    def __init__(self, server, pid, sock):
        self.server = server
        self.pid = pid
        self.sock = sock
        self.exited = trio.Event()
        self.exit_status = None
        self.final = None           # the host's "stopped" message, if it sent one
        # Called with (adapter name, capture.c records) for captured frames.
        self.on_capture = None
        self._next_id = 0
        self._replies = {}
        self.dropped = 0            # malformed messages ignored

    def _drop(self, message, problem):
        """Ignore a message that is not the protocol: count it, log the first."""
        self.dropped += 1
        if self.dropped == 1:
            log.warning("host pid %s: dropped a malformed message (%s): %.100r; later ones "
                        "are only counted", self.pid, problem, message)

    async def events(self):
        """Well-formed events the host sends, until its socket closes
        (replies go to request(), captured frames to on_capture)."""
        try:
            async for event in self._read_events():
                yield event
        finally:
            # No reply will come now: requests waiting for one fail.
            for waiter in self._replies.values():
                waiter[0].set()
            self._replies.clear()

    async def _read_events(self):
        while True:
            try:
                message = await self.sock.recv(MAX_MESSAGE)
            except OSError:
                return
            if not message:
                if _hung_up(self.sock):
                    return
                self._drop(message, "an empty message")
                continue
            if message[:1] == CAPTURE_TAG:
                size = message[1] if len(message) > 1 else 0
                try:
                    name = message[2:2 + size].decode()
                except UnicodeDecodeError:
                    name = ""
                if len(message) < 2 + size or not name:
                    self._drop(message, "a capture message without an adapter name")
                elif self.on_capture is not None:
                    self.on_capture(name, message[2 + size:])
                continue
            try:
                event = json.loads(message)
            except ValueError as exc:
                self._drop(message, f"not JSON: {exc}")
                continue
            if isinstance(event, dict) and "reply" in event:
                if type(event["reply"]) is not int:
                    self._drop(message, "a reply whose id is not a number")
                    continue
                waiter = self._replies.pop(event["reply"], None)
                if waiter is not None:          # else late: its request timed out
                    waiter[1] = event
                    waiter[0].set()
                continue
            problem = malformed_event(event)
            if problem:
                self._drop(message, problem)
                continue
            if event["event"] == "stopped":
                self.final = event
            yield _printable_words(event)

    async def request(self, op, timeout=5, **fields):
        """Send a request and wait for its reply (events() must be running)."""
        self._next_id += 1
        number = self._next_id
        waiter = [trio.Event(), None]
        self._replies[number] = waiter
        try:
            await self.sock.send(json.dumps({"op": op, "id": number, **fields}).encode())
            with trio.fail_after(timeout):
                await waiter[0].wait()
        finally:
            self._replies.pop(number, None)     # unanswered: a late reply is dropped
        if waiter[1] is None:
            raise HostError(f"host pid {self.pid} ended before answering {op!r}")
        problem = malformed_reply(op, waiter[1], fields.get("adapter"))
        if problem:
            raise HostError(f"host pid {self.pid} answered {op} with a malformed reply: "
                            f"{problem}")
        return _printable_words(waiter[1])

    async def stop(self, timeout=5):
        """Ask the host to halt its drivers and exit; kill it if it does not.

        The socket stays open: what the host said last ("stopped", with its
        halt report) is still there for events() to read until EOF."""
        with contextlib.suppress(OSError):
            await self.sock.send(json.dumps({"op": "stop"}).encode())
        with trio.move_on_after(timeout):
            await self.exited.wait()
        if not self.exited.is_set():
            self.kill()
            with trio.move_on_after(timeout):
                await self.exited.wait()

    def close(self):
        self.sock.close()

    def kill(self):
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, 9)


class ForkServer:
    def __init__(self, process, sock):
        self.process = process
        self.sock = sock
        self.hosts = {}
        self._spawns = {}
        self._next_id = 0
        self._exited_early = {}

    async def _read(self):
        while True:
            message = await self.sock.recv(MAX_MESSAGE)
            if not message:
                return
            event = json.loads(message)
            if event["op"] == "spawned":
                waiter = self._spawns.pop(event["id"])
                waiter[1] = event["pid"]
                waiter[0].set()
            elif event["op"] == "exited":
                host = self.hosts.pop(event["pid"], None)
                if host is None:
                    self._exited_early[event["pid"]] = event["status"]
                    continue
                host.exit_status = event["status"]
                host.exited.set()
            elif event["op"] == "error":
                for waiter in self._spawns.values():
                    waiter[1] = HostError(event["error"])
                    waiter[0].set()
                self._spawns.clear()

    async def spawn(self, spec, fds):
        """Fork a host running ``spec`` with ``fds`` (not closed here)."""
        if len(fds) + 1 > MAX_FDS:
            raise HostError(f"a host with {len(fds)} fds: one spawn carries at most "
                            f"{MAX_FDS - 1} (split the pool)")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._next_id += 1
        waiter = [trio.Event(), None]
        self._spawns[self._next_id] = waiter
        try:
            request = json.dumps({"op": "spawn", "id": self._next_id, "spec": spec}).encode()
            rights = array.array("i", [theirs.fileno(), *fds])
            await self.sock.sendmsg([request],
                                    [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
        finally:
            theirs.close()
        with trio.fail_after(10):
            await waiter[0].wait()
        if isinstance(waiter[1], Exception):
            ours.close()
            raise waiter[1]
        pid = waiter[1]
        host = Host(self, pid, trio.socket.from_stdlib_socket(ours))
        if pid in self._exited_early:
            host.exit_status = self._exited_early.pop(pid)
            host.exited.set()
        else:
            self.hosts[pid] = host
        return host


@contextlib.asynccontextmanager
async def open_fork_server(user=None):
    """Start the fork server (its hosts run as ``user`` if given); on exit,
    kill what is left of its hosts and it."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        # -I and cwd "/": the fork server imports the installed package, never
        # an ndisproxy source tree that happens to be the current directory.
        argv = [sys.executable, "-I", "-m", "ndisproxy.forkserver", str(theirs.fileno())]
        if user:
            argv.append(user)
        process = await trio.lowlevel.open_process(argv, pass_fds=(theirs.fileno(),),
                                                   cwd="/")
    finally:
        theirs.close()
    server = ForkServer(process, trio.socket.from_stdlib_socket(ours))
    try:
        with trio.fail_after(30):
            ready = json.loads(await server.sock.recv(MAX_MESSAGE) or b"{}")
        if ready.get("op") != "ready":
            raise HostError("the fork server did not start (see its stderr)")
    except BaseException:
        with trio.CancelScope(shield=True):
            server.sock.close()
            process.kill()
            await process.wait()
        raise
    # The reader outlives a cancellation of the caller: stopping hosts during
    # clean-up needs the fork server's word that they exited.
    reader = trio.CancelScope(shield=True)

    async def read():
        with reader:
            await server._read()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            try:
                yield server
            finally:
                reader.cancel()
    finally:
        with trio.CancelScope(shield=True):
            for host in list(server.hosts.values()):
                host.kill()
            server.sock.close()
            with trio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
