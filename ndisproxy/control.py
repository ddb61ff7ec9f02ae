"""The daemon's control socket: newline-delimited JSON over a Unix stream.

A request is one line, a JSON object with a "verb" and its arguments; the
reply is one line, ``{"ok": true, ...}`` or ``{"ok": false, "error":
"..."}``.  ``capture`` answers ``{"ok": true, "capturing": NAME}`` and then
streams one line per frame until the client closes the connection.
docs/control-protocol.md is the reference.

Bad input never costs more than its own connection: a line over
MAX_LINE bytes, malformed JSON, an unknown verb or adapter gets an error
reply; a client that sends nothing for IDLE_TIMEOUT seconds is dropped.
Who may ask: root always; members of ``[daemon] group`` the read-only
verbs; members of ``[daemon] admin_group`` also the mutating ones (oid set,
reset, inject), checked with the peer's credentials (SO_PEERCRED and
SO_PEERGROUPS).
"""
import contextlib
import json
import logging
import os
import socket
import struct

import trio

from . import errors
from ._binding import oid_name, oid_number, status_name
from .driver import parse_capture

log = logging.getLogger("ndisproxy")

MAX_LINE = 64 * 1024
IDLE_TIMEOUT = 30
MAX_CLIENTS = 64
FAULTS = ("overflow", "crash", "wild", "hang", "leak", "double-complete", "bad-unlock",
          "wrong-irql", "bad-dma", "bugcheck", "hang-send", "overflow-send", "stall")
MUTATING = {"reset", "inject"}


class RequestError(Exception):
    """A request we answer with an error (the connection stays usable)."""


SO_PEERGROUPS = 59


def _peer(sock):
    """(uid, set of gids) of the connected client; SO_PEERCRED carries only
    the primary gid, SO_PEERGROUPS the supplementary ones."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, gid = struct.unpack("3i", creds)
    gids = {gid}
    with contextlib.suppress(OSError):
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * 256)
        gids.update(struct.unpack(f"{len(raw) // 4}I", raw))
    return uid, gids


def _gid(name):
    import grp
    return grp.getgrnam(name).gr_gid if name else None


def _set_data(value):
    """An oid set's data from its "value": a ULONG (a number, or a string
    as "47" or "0x2f") as 4 little-endian bytes, or "hex:0102..." as is."""
    if isinstance(value, str) and value.startswith("hex:"):
        return bytes.fromhex(value[4:])
    if isinstance(value, str):
        number = int(value, 0)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise RequestError(f'oid: "value" is {value!r}: a ULONG ("47", "0x2f") or "hex:..."')
    if not 0 <= number <= 0xFFFFFFFF:
        raise RequestError(f'oid: "value" {value!r} does not fit a ULONG (0..0xffffffff)')
    return number.to_bytes(4, "little")


class ControlServer:
    def __init__(self, daemon, path, *, group=None, admin_group=None):
        self.daemon = daemon
        self.path = str(path)
        self.clients = 0
        self.read_gid = _gid(group)
        self.admin_gid = _gid(admin_group)

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED):
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o755, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)          # a stale socket of an earlier run
        listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await listener.bind(self.path)
            # Without groups: root only, by the file's mode.  With groups:
            # anyone may connect, and every request is checked against the
            # peer's credentials (a stranger gets "permission denied").
            grouped = self.read_gid is not None or self.admin_gid is not None
            os.chmod(self.path, 0o666 if grouped else 0o600)
            listener.listen(128)
            task_status.started()
            async with trio.open_nursery() as nursery:
                while True:
                    client, _ = await listener.accept()
                    if self.clients >= MAX_CLIENTS:
                        with contextlib.suppress(OSError):
                            await client.send(b'{"ok": false, "error": "too many clients"}\n')
                        client.close()
                        continue
                    nursery.start_soon(self._client, client)
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    async def _client(self, sock):
        self.clients += 1
        uid, gids = _peer(sock)
        role = ("admin" if uid == 0 or (self.admin_gid is not None and self.admin_gid in gids)
                else "read" if self.read_gid is not None and self.read_gid in gids else None)
        buffer = b""
        try:
            with sock:
                while True:
                    with trio.move_on_after(IDLE_TIMEOUT) as idle:
                        chunk = await sock.recv(65536)
                    if idle.cancelled_caught or not chunk:
                        return
                    buffer += chunk
                    if len(buffer) > MAX_LINE and b"\n" not in buffer[:MAX_LINE + 1]:
                        await self._reply(sock, {"ok": False, "error":
                                                 f"request longer than {MAX_LINE} bytes"})
                        return
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        if line.strip():
                            if await self._handle(sock, line, role) == "streaming":
                                return
        except (OSError, trio.BrokenResourceError):
            return
        finally:
            self.clients -= 1

    async def _reply(self, sock, message):
        await sock.send(json.dumps(message).encode() + b"\n")

    async def _handle(self, sock, line, role):
        try:
            if role is None:
                raise RequestError("permission denied: not root and not in the configured "
                                   "group or admin_group")
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("verb"), str):
                raise RequestError('a request is a JSON object with a "verb"')
            verb = request["verb"]
            if verb in MUTATING or (verb == "oid" and request.get("action") == "set"):
                if role != "admin":
                    raise RequestError(f"{verb}: permission denied (root or the "
                                       "admin_group only)")
            if verb == "capture":
                return await self._capture(sock, request)
            handler = getattr(self, "_verb_" + verb.replace("-", "_"), None)
            if handler is None:
                raise RequestError(f"unknown verb {verb!r} (status, stats, oid, stack, "
                                   "reset, inject, capture)")
            reply = {"ok": True, **(await handler(request))}
        except json.JSONDecodeError as exc:
            reply = {"ok": False, "error": f"malformed JSON: {exc.msg} at column {exc.colno}"}
        except (RequestError, errors.NdisProxyError, ValueError, trio.TooSlowError) as exc:
            reply = {"ok": False, "error": str(exc) or type(exc).__name__}
        except Exception:               # noqa: BLE001 - a bug costs a request, not the daemon
            log.exception("control: a request failed: %.200r", line)
            reply = {"ok": False, "error": "internal error (the daemon logged it)"}
        await self._reply(sock, reply)
        return None

    def _adapter(self, request):
        name = request.get("adapter")
        if not isinstance(name, str) or name not in self.daemon.adapters:
            known = ", ".join(self.daemon.adapters) or "none"
            raise RequestError(f"unknown adapter {name!r} (adapters: {known})")
        return self.daemon.adapters[name]

    async def _ask(self, adapter, op, **fields):
        """The host's reply to a request about ``adapter``; an error it
        answered with is the request's error."""
        reply = await self.daemon.request(adapter.name, op, **fields)
        if reply.get("error"):
            raise RequestError(reply["error"])
        return reply

    async def _verb_status(self, request):
        adapters = []
        for a in self.daemon.adapters.values():
            adapters.append({
                "name": a.name, "state": a.state, "link": a.carrier, "pid": a.pid,
                "driver": a.config.driver_name, "mac": a.mac, "restarts": a.restarts,
                "stack_size": a.config.stack_size, "uptime": a.uptime(),
                "resets": a.resets, "gave_up": a.gave_up,
                "last_fault": (a.last_fault or {}).get("error"), "sandbox": a.sandbox})
        return {"adapters": adapters}

    async def _verb_stats(self, request):
        adapter = self._adapter(request)
        stats = (await self._ask(adapter, "stats"))["adapters"][adapter.name]
        driver = {}
        for oid in ("OID_GEN_XMIT_OK", "OID_GEN_RCV_OK", "OID_GEN_XMIT_ERROR",
                    "OID_GEN_RCV_ERROR", "OID_GEN_RCV_NO_BUFFER"):
            reply = await self.daemon.request(adapter.name, "query", oid=oid_number(oid),
                                              length=8)
            if reply.get("status") == 0:
                driver[oid] = int.from_bytes(bytes.fromhex(reply["data"]), "little")
        return {"adapter": adapter.name, "driver": driver, "host": stats["host"],
                "pump": stats.get("pump", {}), "device": stats.get("device", {}),
                "rx_latency": stats.get("rx_latency", {}),
                "note": "ip -s link counts the TAP, not the driver"}

    async def _verb_oid(self, request):
        adapter = self._adapter(request)
        oid = oid_number(request.get("oid"))
        action = request.get("action", "get")
        if action not in ("get", "set"):
            # Only "set" is checked for the admin role: anything else must not set.
            raise RequestError(f'oid: "action" is {action!r}, not "get" or "set"')
        if action == "get":
            length = request.get("length", 256)
            if isinstance(length, bool) or not isinstance(length, int):
                raise RequestError(f'oid: "length" is {length!r}, not a number of bytes')
            reply = await self._ask(adapter, "query", oid=oid, length=length)
        else:
            data = _set_data(request.get("value"))
            reply = await self._ask(adapter, "set", oid=oid, data=data.hex())
        data = bytes.fromhex(reply.get("data", ""))
        result = {"adapter": adapter.name, "oid": oid_name(oid), "status": reply["status"],
                  "status_name": status_name(reply["status"]), "needed": reply["needed"],
                  "data": data.hex()}
        if len(data) in (1, 2, 4, 8):
            result["value"] = int.from_bytes(data, "little")
        return result

    async def _verb_stack(self, request):
        adapter = self._adapter(request)
        stats = (await self._ask(adapter, "stats"))["adapters"][adapter.name]
        return {"adapter": adapter.name, "stack": stats["stack"]}

    async def _verb_reset(self, request):
        adapter = self._adapter(request)
        reply = await self.daemon.reset(adapter.name)
        if reply.get("restarted"):
            return {"adapter": adapter.name, "restarted": True}
        if reply.get("error"):
            raise RequestError(reply["error"])
        return {"adapter": adapter.name, "status": reply.get("status"),
                "status_name": status_name(reply.get("status", 0)),
                "addressing_reset": reply.get("addressing_reset")}

    async def _verb_inject(self, request):
        adapter = self._adapter(request)
        fault = request.get("fault")
        if fault not in FAULTS:
            raise RequestError(f"unknown fault {fault!r} (one of {', '.join(FAULTS)})")
        from .api import FAULTS as CODES, OID_MOCKNIC_FAULT
        if fault == "stall":
            # Not the driver: the NIC's TX engine wedges; CheckForHang notices.
            await self.daemon.request(adapter.name, "stall")
            return {"adapter": adapter.name, "fault": fault}
        with trio.move_on_after(5):
            with contextlib.suppress(errors.NdisProxyError, OSError):
                await self.daemon.request(adapter.name, "set", oid=OID_MOCKNIC_FAULT,
                                          data=CODES[fault].to_bytes(4, "little").hex())
        return {"adapter": adapter.name, "fault": fault}

    async def _capture(self, sock, request):
        adapter = self._adapter(request)
        send, receive = trio.open_memory_channel(4096)
        adapter.capture_subscribers.append(send)
        try:
            await self._ask(adapter, "capture", on=True)
            await self._reply(sock, {"ok": True, "capturing": adapter.name})
            async with trio.open_nursery() as nursery:
                async def until_closed():
                    with contextlib.suppress(OSError):
                        while await sock.recv(4096):
                            pass
                    nursery.cancel_scope.cancel()      # the client went away

                nursery.start_soon(until_closed)
                async for records in receive:
                    lines = [json.dumps({"t": t, "dir": d, "frame": f.hex()}).encode() + b"\n"
                             for t, d, f in parse_capture(records)]
                    await sock.send(b"".join(lines))
        except (OSError, trio.BrokenResourceError):
            pass
        finally:
            adapter.capture_subscribers.remove(send)
            if not adapter.capture_subscribers:
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    with contextlib.suppress(errors.NdisProxyError, OSError):
                        await self.daemon.request(adapter.name, "capture", on=False)
        return "streaming"
