"""Test helpers: network namespaces, and adapters wired into them.

For tests of programs that talk to a network: ndisproxy gives them a NIC
whose link, faults and cable a test controls.  The pytest fixtures built
on these helpers (``ndisproxy.pytest_plugin``; docs/testing-with-ndisproxy.md)
are the usual way in; the helpers work from any trio code::

    async with ndisproxy.open_host() as host, testing.netns() as peer:
        async with testing.open_wired_adapter(host, peer) as wired:
            await testing.run_process_in_netns(peer, ["ping", "-c1", wired.host_address])

Running code in a namespace never changes the namespace of the calling
thread (setns is per thread, and trio's thread must stay where it is):
``run_in_netns`` and ``socket_in_netns`` fork a child that enters the
namespace, does the work and hands the result (or a socket) back;
``run_process_in_netns`` execs through ``ip netns exec``.

Every name made here is unique (``unique_name``); every address is from
the documentation ranges (198.51.100.0/24, 2001:db8::/32).  Everything
needs root with CAP_NET_ADMIN and CAP_SYS_ADMIN (``need_net_admin`` says
what is missing).
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import os
import pickle
import secrets
import signal
import socket
import struct
import traceback
import typing
from collections.abc import AsyncIterator, Callable

import trio

from . import errors
from . import netns as _netns
from . import tap as _tap
from .api import Adapter, CableEnd, Host, SocketWire, TapWire

__all__ = [
    "AdapterPair", "HOST_ADDRESS", "HOST_ADDRESS6", "NetnsCallError", "PEER_ADDRESS",
    "PEER_ADDRESS6", "WiredAdapter", "need_net_admin", "netns", "open_adapter_pair",
    "open_wired_adapter", "run_in_netns", "run_process_in_netns", "socket_in_netns",
    "unique_name",
]

T = typing.TypeVar("T")
PosArgs = typing.TypeVarTuple("PosArgs")

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
CLONE_NEWNET = 0x40000000

# What open_wired_adapter puts on the two ends (documentation ranges).
HOST_ADDRESS, HOST_ADDRESS6 = "198.51.100.1", "2001:db8:100::1"
PEER_ADDRESS, PEER_ADDRESS6 = "198.51.100.2", "2001:db8:100::2"
_PREFIX, _PREFIX6 = 24, 64

# How long clean-up may take before it gives up (it is shielded from
# cancellation, so it must be bounded).
_CLEANUP_TIMEOUT = 15
_LINK_TIMEOUT = 10


class NetnsCallError(errors.NdisProxyError, RuntimeError):
    """A child running in a namespace failed in a way that cannot be
    re-raised as such: it died without answering, or what it raised
    cannot be pickled (the message then names it; the child's traceback
    is attached as a note)."""


# -- names and privileges --------------------------------------------------------


def unique_name(prefix: str = "npt") -> str:
    """``prefix`` + 8 random hex digits: usable as an interface name (at most
    15 bytes) and as a namespace name, and picked by no other test run."""
    if not prefix or not prefix.isascii() or not prefix.replace("-", "").isalnum():
        raise ValueError(f"name prefix {prefix!r}: letters, digits and '-' only")
    if len(prefix) > 7:
        raise ValueError(f"name prefix {prefix!r}: at most 7 characters (names are "
                         f"interface names, at most 15 bytes)")
    return prefix + secrets.token_hex(4)


def _effective_capabilities() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def need_net_admin() -> str | None:
    """Why this process cannot create TAPs and namespaces, or None if it can.

    Checks, in this order: root (euid 0), CAP_NET_ADMIN (TAPs, addresses),
    CAP_SYS_ADMIN (namespaces, setns), and that /dev/net/tun opens."""
    if os.geteuid() != 0:
        return f"not running as root (euid {os.geteuid()})"
    caps = _effective_capabilities()
    if not caps & (1 << CAP_NET_ADMIN):
        return "root without CAP_NET_ADMIN"
    if not caps & (1 << CAP_SYS_ADMIN):
        return "root without CAP_SYS_ADMIN (needed for network namespaces)"
    try:
        os.close(os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC))
    except OSError as exc:
        return f"cannot open /dev/net/tun: {exc.strerror}"
    return None


# -- running code inside a namespace ---------------------------------------------
#
# The protocol between a forked child and its parent, over a stream
# socketpair: one frame, an 8-byte little-endian length and a pickle of
# ("ok", value) or ("error", exception, traceback text).  socket_in_netns's
# child attaches the socket's fd (SCM_RIGHTS) to the frame's first bytes.
# The parent reads exactly one frame, so a copy of the child's end that a
# concurrent fork elsewhere inherited cannot hold the answer up.

_LENGTH = struct.Struct("<Q")


@functools.cache
def _setns_function() -> typing.Any:
    # Resolved in the parent: the child, forked from a process with other
    # threads, must not need the dynamic loader's locks.
    return ctypes.CDLL(None, use_errno=True).setns


def _error_frame(exc: BaseException) -> bytes:
    text = "".join(traceback.format_exception(exc))
    if isinstance(exc, Exception):
        try:
            payload = pickle.dumps(("error", exc, text))
            pickle.loads(payload)           # some exceptions pickle but do not unpickle
            return payload
        except Exception:                   # noqa: BLE001 - replaced by a description
            pass
    stand_in = NetnsCallError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
    return pickle.dumps(("error", stand_in, text))


def _send_frame(sock: socket.socket, payload: bytes, fds: typing.Sequence[int] = ()) -> None:
    frame = _LENGTH.pack(len(payload)) + payload
    if fds:
        sent = socket.send_fds(sock, [frame], list(fds))
        frame = frame[sent:]
    sock.sendall(frame)


def _fork_into(netns: str, work: Callable[[socket.socket], None]) -> tuple[int, socket.socket]:
    """Blocking: fork a child that enters ``netns`` and calls ``work(channel)``,
    which sends its answer frame; returns (pid, our end of the channel).
    A failure to enter, or an exception from ``work``, is the answer."""
    setns = _setns_function()
    ns_fd = _netns._open_netns(netns)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _tap.attach_or_fork:       # no half-made TAP fd for the child to hold
            pid = os.fork()
        if pid == 0:                                    # the child: never returns
            status = 1
            try:
                ours.close()
                # trio's wakeup fd is shared with the parent: a signal here
                # must not wake the parent's run loop.
                with contextlib.suppress(ValueError, OSError):
                    signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                try:
                    if setns(ns_fd, CLONE_NEWNET) != 0:
                        code = ctypes.get_errno()
                        raise _netns.NetnsError(f"netns {netns}: setns failed: "
                                                f"{os.strerror(code)}", code)
                    work(theirs)
                except BaseException as exc:            # noqa: BLE001 - the answer
                    _send_frame(theirs, _error_frame(exc))
                status = 0
            finally:
                os._exit(status)
    except BaseException:
        ours.close()
        raise
    finally:
        os.close(ns_fd)
        theirs.close()
    return pid, ours


def _reap(pid: int) -> int:
    """Blocking: wait for our child ``pid``; its wait status."""
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue


def _kill_and_reap(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _answer(netns: str, payload: bytes | None, status: int | None) -> typing.Any:
    """The child's value, or raise what it raised (its traceback as a note)."""
    if payload is None:
        how = "" if status is None else f" ({_describe_status(status)})"
        raise NetnsCallError(f"the child in netns {netns} ended without an answer{how}")
    kind, *rest = pickle.loads(payload)
    if kind == "ok":
        return rest[0]
    exc, text = rest
    exc.add_note(f"raised in network namespace {netns}; the child's traceback:\n{text}")
    raise exc


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _call_and_send(fn: Callable[..., typing.Any], args: tuple[typing.Any, ...],
                   channel: socket.socket) -> None:
    """In the child: fn(*args), pickled, as the answer frame."""
    _send_frame(channel, pickle.dumps(("ok", fn(*args))))


async def _receive_frame(sock: trio.socket.SocketType) -> bytes | None:
    """One frame's payload; None if the child closed its end first."""
    data = bytearray()
    need = _LENGTH.size
    while len(data) < need:
        chunk = await sock.recv(max(need - len(data), 65536))
        if not chunk:
            return None
        data += chunk
        if need == _LENGTH.size and len(data) >= _LENGTH.size:
            need += _LENGTH.unpack_from(data)[0]
    return bytes(data[_LENGTH.size:need])


async def run_in_netns(netns: str, fn: Callable[[*PosArgs], T], *args: *PosArgs) -> T:
    """``fn(*args)`` in a child process inside namespace ``netns``.

    Returns its value or raises its exception (the child's traceback is
    attached as a note; an exception that cannot be pickled arrives as a
    NetnsCallError naming it).  ``fn`` is synchronous; the child is
    forked, so closures work, but the value (or exception) must pickle.
    The child changes only its network namespace: sockets, netlink and
    ``socket.if_nameindex()`` see ``netns``; /sys/class/net still shows
    this process's (use ``run_process_in_netns`` for tools that read it).

    Cancelling the call kills the child.  The fork happens in a worker
    thread; the calling (trio) thread never leaves its namespace.  Keep
    ``fn`` short-lived and self-contained: the child is a fork of a
    process with threads, so it must not need locks those threads held.
    """
    pid, ours = await trio.to_thread.run_sync(
        _fork_into, netns, functools.partial(_call_and_send, fn, args))
    reaped = False
    try:
        with trio.socket.from_stdlib_socket(ours) as sock:
            payload = await _receive_frame(sock)
        status = await trio.to_thread.run_sync(_reap, pid)
        reaped = True
    finally:
        if not reaped:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_kill_and_reap, pid)
    return typing.cast(T, _answer(netns, payload, status))


def _make_socket_and_send(family: int, type: int, proto: int, channel: socket.socket) -> None:
    """In the child: the socket, its fd attached to an "ok" frame."""
    with socket.socket(family, type, proto) as sock:
        _send_frame(channel, pickle.dumps(("ok", None)), [sock.fileno()])


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    """Blocking: ``size`` bytes, or None if the peer closed first."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def socket_in_netns(netns: str, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
                    proto: int = 0) -> socket.socket:
    """A new socket that lives in namespace ``netns``: it binds, connects
    and routes there, wherever it is used from.

    A forked child creates it and passes the fd back; the calling thread
    never changes namespace.  Blocking, briefly (a fork); from trio, wrap
    the result with ``trio.socket.from_stdlib_socket``.  An open socket
    keeps its namespace alive even after the name is removed."""
    pid, ours = _fork_into(netns, functools.partial(_make_socket_and_send, family, type, proto))
    fds: list[int] = []
    try:
        payload = None
        try:
            with ours:
                header, fds, _, _ = socket.recv_fds(ours, _LENGTH.size, 1)
                if 0 < len(header) < _LENGTH.size:
                    header += _recv_exactly(ours, _LENGTH.size - len(header)) or b""
                if len(header) == _LENGTH.size:
                    payload = _recv_exactly(ours, _LENGTH.unpack(header)[0])
        finally:
            status = _reap(pid)
        _answer(netns, payload, status)
        if len(fds) != 1:
            raise NetnsCallError(f"netns {netns}: the child sent {len(fds)} fds, not one socket")
        sock = socket.socket(fileno=fds[0])
        fds.clear()
        return sock
    finally:
        for fd in fds:
            os.close(fd)


async def run_process_in_netns(netns: str, argv: typing.Sequence[str],
                               **kwargs: typing.Any) -> typing.Any:
    """``trio.run_process`` of ``argv`` inside ``netns`` (via ``ip netns exec``,
    which also gives the process the namespace's view of /sys); keyword
    arguments as for trio.run_process (``capture_stdout=True``,
    ``check=False``, ...).  Returns its CompletedProcess."""
    _netns._check_netns(netns)
    return await trio.run_process(["ip", "netns", "exec", netns, *argv], **kwargs)


@contextlib.asynccontextmanager
async def netns(prefix: str = "npt") -> AsyncIterator[str]:
    """A new network namespace, its name ``prefix`` + 8 hex digits, with
    ``lo`` up; removed when the block ends, however it ends (TAPs, veths
    and dummies still in it go with it)."""
    name = unique_name(prefix)
    await trio.to_thread.run_sync(_netns.create_netns, name)
    try:
        await trio.to_thread.run_sync(functools.partial(
            _netns.configure_in_netns, name, "lo", addr_gen_mode_none=False, nodad=False))
        yield name
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(_CLEANUP_TIMEOUT):
            await trio.to_thread.run_sync(functools.partial(
                _netns.remove_netns, name, missing_ok=True))


# -- adapters for tests ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WiredAdapter:
    """An adapter whose cable leads into a namespace, both ends addressed.

    ``adapter`` (ndisproxy.HostAdapter) is the NIC: ``set_link``,
    ``inject``, ``events()``, ... .  ``ifname`` is its TAP in this
    namespace, addressed ``host_address``/24 and ``host_address6``/64;
    ``peer_ifname`` is the far end of its cable, in namespace ``netns``,
    addressed ``peer_address``/24 and ``peer_address6``/64.  Addresses are
    plain strings, without the prefix length."""
    adapter: Adapter
    ifname: str
    netns: str
    peer_ifname: str
    host_address: str = HOST_ADDRESS
    host_address6: str = HOST_ADDRESS6
    peer_address: str = PEER_ADDRESS
    peer_address6: str = PEER_ADDRESS6


class AdapterPair(typing.NamedTuple):
    """Two adapters back to back: what ``a`` transmits, ``b`` receives, and
    the other way round, through a relay between their cable ends
    (``a.wire``, ``b.wire``: the ``loss`` and ``delay`` of both apply)."""
    a: Adapter
    b: Adapter


def _address_here(ifname: str, addresses: typing.Sequence[tuple[str, int]]) -> None:
    """Blocking: add ``addresses`` to ``ifname`` in this namespace (IPv6
    without duplicate address detection), read back."""
    import ipaddress

    from pyroute2 import IPRoute, NetlinkError
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise _netns.NetnsError(f"{ifname}: no such interface in this namespace")
        index = found[0]
        for address, prefixlen in addresses:
            kwargs = {"index": index, "address": address, "prefixlen": prefixlen}
            if ipaddress.ip_address(address).version == 6:
                kwargs["flags"] = _netns.IFA_F_NODAD
            try:
                ipr.addr("add", **kwargs)
            except NetlinkError as exc:
                raise _netns.NetnsError(f"{ifname}: adding {address}/{prefixlen} failed: "
                                        f"{os.strerror(exc.code)}", exc.code) from exc
        present = {(ipaddress.ip_address(a.get("address")), a["prefixlen"])
                   for a in ipr.addr("dump", index=index)}
        for address, prefixlen in addresses:
            if (ipaddress.ip_address(address), prefixlen) not in present:
                raise _netns.NetnsError(f"{ifname}: address {address}/{prefixlen} did not stick")


async def _wait_carrier(adapter: Adapter) -> None:
    with trio.fail_after(_LINK_TIMEOUT):
        while not adapter.carrier:
            await trio.sleep(0.01)


async def _remove(host: Host, name: str) -> None:
    """Remove adapter ``name`` if it is still there; shielded, bounded."""
    with trio.CancelScope(shield=True), trio.move_on_after(_CLEANUP_TIMEOUT):
        if name in host.adapters:
            await host.remove_adapter(name)


@contextlib.asynccontextmanager
async def open_wired_adapter(host: Host, netns: str, *, driver: str = "mocknic",
                             parameters: dict[str, typing.Any] | None = None,
                             isolation: str | None = None) -> AsyncIterator[WiredAdapter]:
    """An adapter of ``host`` whose cable (a TAP wire) ends in ``netns``.

    Its TAP here gets 198.51.100.1/24 and 2001:db8:100::1/64, the cable's
    far end in ``netns`` 198.51.100.2/24 and 2001:db8:100::2/64 (IPv6
    without DAD, no link-local address), both up; yields once the driver
    runs and the link is up.  The adapter is removed when the block ends.
    Only one such adapter can be addressed in a namespace at a time."""
    name, wire = unique_name("npa"), unique_name("npw")
    try:
        adapter = await host.add_adapter(name, driver, wire=TapWire(wire, netns),
                                         parameters=parameters, isolation=isolation)
        await trio.to_thread.run_sync(
            _address_here, name, [(HOST_ADDRESS, _PREFIX), (HOST_ADDRESS6, _PREFIX6)])
        await trio.to_thread.run_sync(functools.partial(
            _netns.configure_in_netns, netns, wire,
            addresses=(f"{PEER_ADDRESS}/{_PREFIX}", f"{PEER_ADDRESS6}/{_PREFIX6}")))
        await _wait_carrier(adapter)
        yield WiredAdapter(adapter, name, netns, wire)
    finally:
        await _remove(host, name)


async def _relay(source: CableEnd, sink: CableEnd) -> None:
    """Every frame ``source``'s NIC transmits, onto ``sink``'s cable."""
    try:
        async for frame in source:
            await sink.send(frame)
    except (trio.ClosedResourceError, trio.BrokenResourceError, BrokenPipeError,
            ConnectionResetError):
        pass        # an adapter of the pair was removed: the cable is cut


@contextlib.asynccontextmanager
async def open_adapter_pair(host: Host, *, driver: str = "mocknic",
                            parameters: dict[str, typing.Any] | None = None,
                            isolation: str | None = None,
                            loss: float = 0.0, delay: float = 0.0,
                            seed: int | None = None) -> AsyncIterator[AdapterPair]:
    """Two adapters of ``host`` whose cables (SocketWires) are joined by a
    relay task, both directions; their TAPs are up, unaddressed.

    A frame crosses ``a.wire`` (its ``loss``, then its ``delay``) and then
    ``b.wire`` (the same), so either end's knobs affect it; ``loss``,
    ``delay`` and ``seed`` here are both ends' initial settings.  The
    relay carries one frame at a time per direction: a delay also limits
    the rate to one frame per delay.  Both adapters are removed when the
    block ends."""
    names = unique_name("npa"), unique_name("npb")
    adapters: list[Adapter] = []
    try:
        for name in names:
            adapters.append(await host.add_adapter(
                name, driver, wire=SocketWire(loss=loss, delay=delay, seed=seed),
                parameters=parameters, isolation=isolation))
        for adapter in adapters:
            await _wait_carrier(adapter)
        a, b = adapters
        assert a.wire is not None and b.wire is not None       # SocketWire adapters
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_relay, a.wire, b.wire)
            nursery.start_soon(_relay, b.wire, a.wire)
            try:
                yield AdapterPair(a, b)
            finally:
                nursery.cancel_scope.cancel()
    finally:
        for name in names:
            await _remove(host, name)
