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
import os
import socket
import sys

import trio

from . import errors

MAX_MESSAGE = 1 << 16
MAX_FDS = 253                   # SCM_MAX_FD, as the fork server receives them
CAPTURE_TAG = b"\x01"          # hostproc's binary capture messages


class HostError(errors.NdisProxyError):
    """A driver host could not be started or did not answer."""


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

    async def events(self):
        """Messages the host sends, until its socket closes."""
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
                return
            if message[:1] == CAPTURE_TAG:
                size = message[1]
                if self.on_capture is not None:
                    self.on_capture(message[2:2 + size].decode(), message[2 + size:])
                continue
            event = json.loads(message)
            if event.get("event") == "stopped":
                self.final = event
            if "reply" in event:
                waiter = self._replies.pop(event["reply"], None)
                if waiter is not None:
                    waiter[1] = event
                    waiter[0].set()
                continue
            yield event

    async def request(self, op, timeout=5, **fields):
        """Send a request and wait for its reply (events() must be running)."""
        self._next_id += 1
        waiter = [trio.Event(), None]
        self._replies[self._next_id] = waiter
        await self.sock.send(json.dumps({"op": op, "id": self._next_id, **fields}).encode())
        with trio.fail_after(timeout):
            await waiter[0].wait()
        if waiter[1] is None:
            raise HostError(f"host pid {self.pid} ended before answering {op!r}")
        return waiter[1]

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
