"""``ndisproxy demo``: the main job on an embedded default, in one command.

Run as root, it shows the whole path on this machine and leaves nothing
behind (docs/demo.md has a real run and explains its numbers):

1. checks, before touching anything, that it can: CAP_NET_ADMIN and
   CAP_SYS_ADMIN, /dev/net/tun, ``ip`` and ``ping``, and no interface here
   holding an address in the demo's ranges;
2. creates a peer namespace ``npdemo<hex8>`` and runs the proxy daemon in
   this trio program (not a subprocess) on an embedded configuration: one
   adapter ``npdemo<hex4>``, the bundled mocknic.sys in a sandboxed host
   process, its cable a TAP ``npdemo<hex4>p`` in the peer namespace;
3. addresses both ends from the documentation ranges: 198.51.100.1/24 and
   2001:db8:d0::1/64 on the adapter's TAP, .2 and ::2 on the wire;
4. pings the peer (IPv4, IPv6) and moves N MB over TCP each way, checked
   by SHA-256: every frame crosses the driver;
5. reads the host's counters, stack report and verifier findings;
6. always - after a failure or Ctrl-C too - stops the daemon (which halts
   the driver and removes the TAPs it created), removes the namespace,
   and checks that neither is left.

The module imports only the standard library at the top: trio, pyroute2
and the daemon are loaded when the demo runs, so building the command
line (``ndisproxy --help``) does not pay for them.
"""
import contextlib
import functools
import hashlib
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing

from . import errors, privileges

HOST_ADDRESSES = ("198.51.100.1/24", "2001:db8:d0::1/64")
PEER_ADDRESSES = ("198.51.100.2/24", "2001:db8:d0::2/64")
HOST_V4, HOST_V6 = (a.split("/")[0] for a in HOST_ADDRESSES)
PEER_V4, PEER_V6 = (a.split("/")[0] for a in PEER_ADDRESSES)
RANGES = tuple(ipaddress.ip_interface(a).network for a in HOST_ADDRESSES)

PINGS = 10
PING_INTERVAL = "0.05"
DEFAULT_MEGABYTES = 20
MAX_MEGABYTES = 1000
STEPS = 6
UP_TIMEOUT = 20             # s: the host process loads the driver and initialises it
LINK_TIMEOUT = 5            # s: from "running" to the TAP's operstate "up"
CHUNK = 1 << 20

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21

# The kernel stacks an entry point is drawn against: (KiB, system, which).
KERNEL_STACKS = ((4, "Linux", "x86 irq stacks"), (8, "Linux", "older kernels"),
                 (12, "Windows", "x86"), (16, "Linux", "x86-64"), (24, "Windows", "x64"))
CHART_KIB = 24              # the bar chart's width: one cell per KiB

# Run in the peer namespace (python -I -c): accept one connection on
# argv[1], count and hash what arrives, print "PORT" when listening and
# "BYTES SHA256" at the end of the stream.  argv[2]: timeout in seconds.
_SINK = """\
import hashlib, socket, sys
with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
    server.bind((sys.argv[1], 0))
    server.listen(1)
    server.settimeout(float(sys.argv[2]))
    print(server.getsockname()[1], flush=True)
    conn, _ = server.accept()
    conn.settimeout(float(sys.argv[2]))
    digest, count = hashlib.sha256(), 0
    with conn:
        while chunk := conn.recv(1 << 20):
            digest.update(chunk)
            count += len(chunk)
print(count, digest.hexdigest(), flush=True)
"""

# Run in the peer namespace: send argv[3] random bytes to argv[1]:argv[2],
# wait until the receiver closes, print "BYTES SHA256".  argv[4]: timeout.
_SOURCE = """\
import hashlib, os, socket, sys
size = int(sys.argv[3])
data = os.urandom(size)
with socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[4])) as conn:
    conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
    conn.recv(1)
print(size, hashlib.sha256(data).hexdigest(), flush=True)
"""


class DemoError(errors.NdisProxyError):
    """A demo step failed (one line, without the "ndisproxy demo: " prefix)."""


class Names(typing.NamedTuple):
    """Everything the demo creates is named from one random token."""
    netns: str          # npdemo<hex8>
    adapter: str        # npdemo<hex4>: the TAP Linux sees
    wire: str           # npdemo<hex4>p: the cable's far end, in netns

    @classmethod
    def fresh(cls):
        """Names in use by nothing here (interfaces, namespaces)."""
        taken = set(_run_netns_names())
        for _ in range(16):
            token = secrets.token_hex(4)
            names = cls("npdemo" + token, "npdemo" + token[:4], "npdemo" + token[:4] + "p")
            if (names.netns not in taken and not os.path.exists(f"/sys/class/net/{names.adapter}")
                    and not os.path.exists(f"/sys/class/net/{names.wire}")):
                return names
        raise DemoError("could not find free npdemo* names")


def _run_netns_names():
    try:
        return os.listdir("/run/netns")
    except OSError:
        return []


def config_text(names, rundir):
    """The embedded configuration (TOML): docs/config.md describes the keys."""
    return f"""\
# ndisproxy demo: the bundled mock driver, its cable in a peer namespace.
[daemon]
socket = "{rundir}/control.sock"

[[adapter]]
name = "{names.adapter}"
driver = "mocknic"
isolation = "process"

[adapter.wire]
kind = "tap"
ifname = "{names.wire}"
netns = "{names.netns}"
"""


# -- before touching anything -------------------------------------------------


def check_can_run():
    """Raise DemoError (one line) unless the demo can run here.  Reads only."""
    from . import privileges
    caps = privileges.capability_sets().get("CapEff", 0)
    missing = [name for bit, name in ((CAP_NET_ADMIN, "CAP_NET_ADMIN"),
                                      (CAP_SYS_ADMIN, "CAP_SYS_ADMIN")) if not caps >> bit & 1]
    if missing:
        who = (f"this root lacks {' and '.join(missing)}" if os.geteuid() == 0
               else f"running as uid {os.geteuid()}")
        raise DemoError("needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create TAP interfaces and "
                        f"a network namespace; {who}")
    try:
        os.close(os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC))
    except OSError as exc:
        raise DemoError(f"cannot open /dev/net/tun: {exc.strerror} (load the tun module: "
                        "modprobe tun)") from None
    for tool, package in (("ip", "iproute2"), ("ping", "iputils-ping")):
        if shutil.which(tool) is None:
            raise DemoError(f"needs {tool} (apt-get install {package})")
    busy = range_in_use()
    if busy is not None:
        raise DemoError(f"{busy}: is another demo (or a test) running?")


def range_in_use():
    """None if no interface here has an address in the demo's ranges, else
    which one does ("198.51.100.0/24 is in use here (eth9 has ...)")."""
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for addr in ipr.get_addr():
            text = addr.get_attr("IFA_ADDRESS")
            address = ipaddress.ip_address(text) if text else None
            network = next((n for n in RANGES if address in n), None) if address else None
            if network is not None:
                return (f"{network} is already in use here ({names.get(addr['index'])} "
                        f"has {address})")
    return None


# -- progress -----------------------------------------------------------------


class _Progress:
    """One line per step on stdout: ``[2/6] what... ok (detail)``."""

    def __init__(self, enabled, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.number = 0
        self.open = False

    def _write(self, text):
        if self.enabled:
            self.stream.write(text)
            self.stream.flush()

    def begin(self, text, numbered=True):
        if numbered:
            self.number += 1
            text = f"[{self.number}/{STEPS}] {text}"
        self._write(f"{text}... ")
        self.open = True

    def end(self, result, detail=None):
        if self.open:
            self._write(result + (f" ({detail})" if detail else "") + "\n")
            self.open = False

    @contextlib.contextmanager
    def step(self, what, text=None, numbered=True):
        """A step: errors in it become DemoError("WHAT failed: why")."""
        detail = {}
        self.begin(text or what, numbered)
        try:
            yield detail
        except Exception as exc:
            self.end("failed")
            raise DemoError(f"{what} failed: {describe(exc)}") from exc
        except BaseException:
            self.end("stopped")
            raise
        self.end("ok", detail.get("detail"))


def describe(exc):
    """The one line that says what went wrong, from inside exception groups."""
    import trio
    while isinstance(exc, BaseExceptionGroup):
        rest = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        exc = (rest or exc.exceptions)[0]
    if isinstance(exc, trio.TooSlowError):
        return "timed out"
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


class _Recorder(logging.Handler):
    """The daemon's warnings and errors, kept instead of printed: the demo
    prints one line when something fails, and names the daemon's last error."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def last_error(self):
        errors_ = [r for r in self.records if r.levelno >= logging.ERROR]
        return errors_[-1].getMessage() if errors_ else None


# -- the steps ----------------------------------------------------------------


async def _wait_running(daemon, name):
    """Until the driver is up (not merely its host started); a fault fails."""
    import trio
    adapter = daemon.adapters[name]
    with trio.move_on_after(UP_TIMEOUT):
        while adapter.state != "running":
            if adapter.last_fault is not None:
                raise DemoError(f"the driver faulted: {adapter.last_fault.get('error')}")
            await daemon.changed.wait()
        return adapter
    raise DemoError(f"the driver was not running after {UP_TIMEOUT} s (state "
                    f"{adapter.state})")


async def _wait_link_up(ifname):
    """Until Linux's link watcher has the TAP up: frames sent before that
    (the carrier follows the driver's media connect) are dropped."""
    import trio
    path = f"/sys/class/net/{ifname}/operstate"
    with trio.move_on_after(LINK_TIMEOUT):
        while True:
            with open(path) as f:
                if f.read().strip() == "up":
                    return
            await trio.sleep(0.01)
    raise DemoError(f"{ifname}: no link {LINK_TIMEOUT} s after the driver came up")


def _address_host_tap(ifname):
    """Blocking: the host side's addresses on the adapter's TAP, read back."""
    from pyroute2 import IPRoute

    from .netns import IFA_F_NODAD
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        for address in HOST_ADDRESSES:
            iface = ipaddress.ip_interface(address)
            kwargs = {"index": index, "address": str(iface.ip),
                      "prefixlen": iface.network.prefixlen}
            if iface.version == 6:
                kwargs["flags"] = IFA_F_NODAD
            ipr.addr("add", **kwargs)
        present = {(ipaddress.ip_address(a.get_attr("IFA_ADDRESS")), a["prefixlen"])
                   for a in ipr.get_addr(index=index)}
        for address in HOST_ADDRESSES:
            iface = ipaddress.ip_interface(address)
            if (iface.ip, iface.network.prefixlen) not in present:
                raise DemoError(f"{ifname}: address {address} did not stick")


_PING_COUNTS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_PING_RTT = re.compile(r"= [\d.]+/([\d.]+)/[\d.]+/[\d.]+ ms")


async def _ping(version, target, ifname):
    """``ping`` through the adapter's TAP: {"sent", "received", "rtt_avg_ms"}."""
    import trio
    command = ["ping", f"-{version}", "-n", "-q", "-c", str(PINGS), "-i", PING_INTERVAL,
               "-W", "1", "-I", ifname, target]
    done = await trio.run_process(command, capture_stdout=True, capture_stderr=True,
                                  check=False)
    out = done.stdout.decode(errors="replace")
    counts, rtt = _PING_COUNTS.search(out), _PING_RTT.search(out)
    if counts is None:
        lines = (done.stderr.decode(errors="replace") or out).strip().splitlines()
        raise DemoError(lines[-1] if lines else f"ping exited with status {done.returncode}")
    sent, received = int(counts[1]), int(counts[2])
    if received == 0 or rtt is None:
        raise DemoError(f"{received} of {sent} replies")
    return {"target": target, "sent": sent, "received": received,
            "rtt_avg_ms": float(rtt[1])}


class _Lines:
    """Lines from a trio receive stream (a child's stdout)."""

    def __init__(self, stream):
        self.stream = stream
        self.buffer = b""

    async def next(self):
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(4096)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


def _transfer_timeout(size):
    """Generous: at least 1 MB/s, plus process start-up."""
    return 15 + size / 1e6


@contextlib.asynccontextmanager
async def _in_peer(netns, script, *argv):
    """``python -I -c script argv...`` in the peer namespace: (process,
    stdout lines, stderr file).  Killed on exit if it has not ended."""
    import trio
    with tempfile.TemporaryFile() as stderr:
        command = ["ip", "netns", "exec", netns, sys.executable, "-I", "-c", script,
                   *map(str, argv)]
        process = await trio.lowlevel.open_process(command, stdin=subprocess.DEVNULL,
                                                   stdout=subprocess.PIPE, stderr=stderr)
        try:
            yield process, _Lines(process.stdout), stderr
        finally:
            if process.poll() is None:
                process.kill()
            with trio.CancelScope(shield=True):
                await process.stdout.aclose()
                await process.wait()


def _peer_failure(what, process, stderr):
    """DemoError from what a peer-side program said on stderr."""
    stderr.seek(0)
    lines = stderr.read().decode(errors="replace").strip().splitlines()
    status = process.poll()
    why = lines[-1] if lines else (f"exited with status {status}" if status is not None
                                   else "no answer")
    return DemoError(f"the {what} in the peer namespace: {why}")


def _random(size):
    data = os.urandom(size)
    return data, hashlib.sha256(data).hexdigest()


def _bind_to_device(sock, ifname):
    """Through the adapter's TAP whatever the routes say: a test elsewhere
    on this machine may put 198.51.100.0/24 on another interface meanwhile."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())


async def _tcp_to_peer(names, size):
    """``size`` random bytes from the host side to a sink in the peer
    namespace; timed from connect() until the sink reports."""
    import trio
    timeout = _transfer_timeout(size)
    data, sent_hash = await trio.to_thread.run_sync(_random, size)
    async with _in_peer(names.netns, _SINK, PEER_V4, timeout) as (process, lines, stderr):
        try:
            port = int(await lines.next())
        except (EOFError, ValueError):
            raise _peer_failure("receiver", process, stderr) from None
        with trio.move_on_after(timeout) as deadline, trio.socket.socket() as sock:
            _bind_to_device(sock, names.adapter)
            await sock.bind((HOST_V4, 0))
            start = time.perf_counter()
            await sock.connect((PEER_V4, port))
            stream = trio.SocketStream(sock)
            await stream.send_all(data)
            await stream.send_eof()
            try:
                count, got_hash = (await lines.next()).split()
            except (EOFError, ValueError):
                raise _peer_failure("receiver", process, stderr) from None
            elapsed = time.perf_counter() - start
        if deadline.cancelled_caught:
            raise DemoError(f"not through after {timeout:.0f} s")
    return _transfer_result(size, int(count), elapsed, sent_hash, got_hash)


async def _accept_unless_exited(listener, process):
    """The connection, or None if ``process`` ended before connecting."""
    import trio
    accepted = []
    async with trio.open_nursery() as nursery:
        async def accept():
            accepted.append((await listener.accept())[0])
            nursery.cancel_scope.cancel()

        async def exited():
            await process.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(accept)
        nursery.start_soon(exited)
    return accepted[0] if accepted else None


async def _tcp_from_peer(names, size):
    """``size`` random bytes from a source in the peer namespace to the host
    side; timed from accept() until the end of the stream."""
    import trio
    timeout = _transfer_timeout(size)
    with trio.socket.socket() as listener:
        _bind_to_device(listener, names.adapter)        # and what it accepts
        await listener.bind((HOST_V4, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        async with _in_peer(names.netns, _SOURCE, HOST_V4, port, size, timeout) as (
                process, lines, stderr):
            with trio.move_on_after(timeout) as deadline:
                conn = await _accept_unless_exited(listener, process)
                if conn is None:
                    raise _peer_failure("sender", process, stderr)
                with conn:
                    start = time.perf_counter()
                    digest, count = hashlib.sha256(), 0
                    while chunk := await conn.recv(CHUNK):
                        digest.update(chunk)
                        count += len(chunk)
                    elapsed = time.perf_counter() - start
                # Closed: the sender learns that the stream arrived, and reports.
                try:
                    sent, sent_hash = (await lines.next()).split()
                except (EOFError, ValueError):
                    raise _peer_failure("sender", process, stderr) from None
            if deadline.cancelled_caught:
                raise DemoError(f"not through after {timeout:.0f} s")
    return _transfer_result(int(sent), count, elapsed, sent_hash, digest.hexdigest())


def _transfer_result(sent, received, elapsed, sent_hash, received_hash):
    if received != sent:
        raise DemoError(f"{received} of {sent} bytes arrived")
    if received_hash != sent_hash:
        raise DemoError(f"SHA-256 mismatch: sent {sent_hash[:16]}..., "
                        f"received {received_hash[:16]}...")
    return {"bytes": sent, "seconds": round(elapsed, 4),
            "mbit_s": round(sent * 8 / elapsed / 1e6, 1), "sha256_sent": sent_hash,
            "sha256_received": received_hash, "match": True}


# -- clean-up -----------------------------------------------------------------


def _tun_links():
    """Names of the TUN/TAP interfaces here (``ip -o link show type tun``)."""
    out = subprocess.run(["ip", "-o", "link", "show", "type", "tun"], capture_output=True,
                         text=True, check=False).stdout
    return {line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def _remove_and_check(names, created_netns):
    """Blocking, after the daemon stopped: remove the namespace (if this
    demo created it), then look for what is left of ours.  A list of what
    was left ("TAP npdemo1a2b (removed now)", "netns npdemo1a2b3c4d");
    empty is success."""
    from . import netns, tap
    left = []
    if created_netns:
        with contextlib.suppress(netns.NetnsError):
            netns.remove_netns(names.netns, missing_ok=True)
    for name in sorted(_tun_links() & {names.adapter, names.wire}):
        try:
            tap.delete_tap(name, missing_ok=True)       # only if marked ndisproxy's
            left.append(f"TAP {name} (removed now)")
        except (tap.TapError, ValueError):
            left.append(f"TAP {name}")
    if created_netns and names.netns in netns.list_netns():
        left.append(f"netns {names.netns}")
    return left


# -- the demo -----------------------------------------------------------------


async def _demo(names, size, progress, report):
    """Steps 1-6 and the clean-up; fills ``report``."""
    import trio

    from . import config as configuration
    from . import netns
    from .daemon import Daemon
    arrow = report["arrow"]
    megabytes = f"{size / 1e6:g} MB"
    created_netns = False
    try:
        with tempfile.TemporaryDirectory(prefix="npdemo") as rundir:
            async with trio.open_nursery() as nursery:
                try:
                    with progress.step("starting the daemon",
                                       "starting the daemon (mocknic.sys in a host process)"
                                       ) as step:
                        await trio.to_thread.run_sync(netns.create_netns, names.netns)
                        created_netns = True
                        config = configuration.loads(config_text(names, rundir), name="<demo>")
                        await trio.to_thread.run_sync(configuration.check_system, config)
                        daemon = Daemon(config)
                        await nursery.start(daemon.run)
                        adapter = await _wait_running(daemon, names.adapter)
                        await _wait_link_up(names.adapter)
                        report["adapter"] = {"name": names.adapter, "driver": "mocknic",
                                             "host_pid": adapter.pid, "mac": adapter.mac,
                                             "sandbox": adapter.sandbox}
                        step["detail"] = f"pid {adapter.pid}, MAC {adapter.mac}"

                    with progress.step("addressing",
                                       f"addressing {names.adapter} {HOST_V4} {HOST_V6}, its "
                                       f"peer .2 ::2 in netns {names.netns}"):
                        await trio.to_thread.run_sync(_address_host_tap, names.adapter)
                        await trio.to_thread.run_sync(functools.partial(
                            netns.configure_in_netns, names.netns, names.wire,
                            addresses=PEER_ADDRESSES))

                    for version, target in ((4, PEER_V4), (6, PEER_V6)):
                        with progress.step(f"IPv{version} ping",
                                           f"IPv{version} ping {target} through the driver"
                                           ) as step:
                            ping = await _ping(version, target, names.adapter)
                            report["ping"][f"ipv{version}"] = ping
                            step["detail"] = (f"{ping['received']}/{ping['sent']} replies, avg "
                                              f"{ping['rtt_avg_ms']:.3f} ms")

                    for key, where, transfer in (
                            ("host_to_peer", f"host {arrow} peer", _tcp_to_peer),
                            ("peer_to_host", f"peer {arrow} host", _tcp_from_peer)):
                        with progress.step(f"TCP {where}", f"TCP {megabytes} {where}") as step:
                            result = await transfer(names, size)
                            report["tcp"][key] = result
                            step["detail"] = f"{result['mbit_s']:.0f} Mbit/s, SHA-256 matches"

                    try:
                        reply = await daemon.request(names.adapter, "stats")
                        report["stats"] = reply["adapters"][names.adapter]
                    except (errors.NdisProxyError, KeyError) as exc:
                        raise DemoError(f"reading the driver's counters failed: "
                                        f"{describe(exc)}") from exc
                    if adapter.restarts:
                        raise DemoError(f"the driver host restarted {adapter.restarts} time(s): "
                                        f"{(adapter.last_fault or {}).get('error')}")
                finally:
                    progress.begin(f"clean-up: halting the driver, removing {names.adapter}, "
                                   f"{names.wire} and netns {names.netns}", numbered=False)
                    nursery.cancel_scope.cancel()    # the daemon halts, removes its TAPs
            # What MiniportHalt left: pool leaks by tag, late violations.
            if "adapter" in report:
                report["halt"] = daemon.adapters[names.adapter].halt_report
    finally:
        with trio.CancelScope(shield=True):
            if not progress.open:
                progress.begin(f"clean-up: removing netns {names.netns}", numbered=False)
            left = await trio.to_thread.run_sync(_remove_and_check, names, created_netns)
            report["cleanup"] = {"ok": not left, "left": left}
            progress.end("ok" if not left else "failed",
                         "nothing left" if not left else "left " + ", ".join(left))
    if left:
        raise DemoError(f"clean-up failed: {', '.join(left)} left behind")


async def _main(size, progress):
    """The demo under a signal watch: SIGINT/SIGTERM cancel it, and the
    clean-up (shielded) still runs.  The report dict, or DemoError."""
    import trio
    names = Names.fresh()
    arrow = "->"
    with contextlib.suppress(LookupError, UnicodeEncodeError):
        "→".encode(sys.stdout.encoding or "ascii")
        arrow = "→"
    report = {"ok": False, "arrow": arrow, "netns": names.netns, "wire": names.wire,
              "ping": {}, "tcp": {}, "cleanup": {"ok": False, "left": []}}
    started = time.perf_counter()
    interrupted = []
    work = trio.CancelScope()

    async def watch(signals):
        async for signum in signals:
            interrupted.append(signal.Signals(signum).name)
            work.cancel()          # later signals: the clean-up is shielded and short

    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, signals)
                try:
                    with work:
                        await _demo(names, size, progress, report)
                finally:
                    nursery.cancel_scope.cancel()
    except Exception as exc:        # DemoError, perhaps inside exception groups
        raise DemoError(describe(exc)) from exc
    if interrupted:
        left = report["cleanup"]["left"]
        raise DemoError(f"interrupted ({interrupted[0]}); " + (
            "everything it created was removed" if report["cleanup"]["ok"]
            else f"clean-up left {', '.join(left) or 'something'} behind"))
    report["ok"] = True
    report["seconds"] = round(time.perf_counter() - started, 2)
    return _finish(report)


def _finish(report):
    """The JSON report from what the steps gathered."""
    stats = report.pop("stats")
    pump, device = stats.get("pump", {}), stats.get("device", {})
    report["frames"] = {
        "host_to_peer": {"tap_in": pump.get("tap_in", 0), "nic_tx": device.get("tx_frames", 0)},
        "peer_to_host": {"nic_rx": device.get("rx_frames", 0),
                         "tap_out": pump.get("tap_out", 0)},
    }
    stack = stats["stack"]
    report["stack"] = {**stack, "kernel_stacks": [{"kib": kib, "system": system, "which": which}
                                                  for kib, system, which in KERNEL_STACKS],
                       "overflows": {name: [kib for kib, _, _ in KERNEL_STACKS
                                            if entry["high_water"] > kib * 1024]
                                     for name, entry in stack["entry_points"].items()}}
    halt = report.pop("halt", None) or {}
    report["verifier"] = stats["violations"] + halt.get("violations", [])
    report["halt_leaks"] = halt.get("leaks", [])
    report["counters"] = {"pump": pump, "device": device, "host": stats["host"]}
    report["driver_log"] = stats.get("log", [])
    return report


# -- the report ---------------------------------------------------------------


def _kib(size):
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size / 1024:.1f} KiB"


def stack_chart(entry_points, indent="    "):
    """Lines: a ruler with the KERNEL_STACKS marks, then one bar per entry
    point (one cell per KiB, ``:`` where a mark falls, ``>`` past the end)."""
    marks = [kib for kib, _, _ in KERNEL_STACKS]
    width = max((len(name) for name in entry_points), default=0)
    prefix = f"{indent}{'':<{width}}  {'':>8} |"
    ruler = [" "] * CHART_KIB
    for kib in marks:
        ruler[kib - len(str(kib)):kib] = str(kib)
    lines = [f"{prefix[:-1]} {''.join(ruler).rstrip()} KiB"]
    for name, entry in entry_points.items():
        used = entry["high_water"]
        filled = min(CHART_KIB, math.ceil(used / 1024))
        cells = ["#" if i < filled else ":" if i + 1 in marks else "." for i in range(CHART_KIB)]
        if used > CHART_KIB * 1024:
            cells[-1] = ">"
        lines.append(f"{indent}{name:<{width}}  {_kib(used):>8} |{''.join(cells)}|")
    return lines


def stack_legend(indent="    "):
    """What the chart's marks are, one line per system."""
    systems = {}
    for kib, system, which in KERNEL_STACKS:
        systems.setdefault(system, []).append(f"{kib} KiB {which}")
    return [f"{indent}{system}: {', '.join(stacks)}" for system, stacks in systems.items()]


def _an(kib):
    return "an" if str(kib).startswith("8") or kib in (11, 18) else "a"


def stack_sentences(entry_points, limit=3):
    """What the deepest entry points would have overflowed, one sentence each."""
    deep = sorted(entry_points.items(), key=lambda item: -item[1]["high_water"])
    sentences = []
    for name, entry in deep[:limit]:
        over = [stack for stack in KERNEL_STACKS if entry["high_water"] > stack[0] * 1024]
        if not over:
            break
        kib, system, which = over[-1]
        even = "even " if len(over) == len(KERNEL_STACKS) else ""
        sentences.append(f"{name} would have overflowed {even}{_an(kib)} {kib} KiB kernel "
                         f"stack ({system}, {which}).")
    if not sentences:
        kib, system, which = KERNEL_STACKS[0]
        sentences.append(f"Every entry point fits even {_an(kib)} {kib} KiB kernel stack "
                         f"({system}, {which}).")
    return sentences


def format_report(report):
    """The report as text (about 22 lines, under 90 columns)."""
    arrow = report.get("arrow", "->")
    adapter, frames = report["adapter"], report["frames"]
    to_peer, to_host = frames["host_to_peer"], frames["peer_to_host"]
    ping, tcp, stack = report["ping"], report["tcp"], report["stack"]
    jail = privileges.describe_sandbox(adapter.get("sandbox"))
    lines = [
        f"  driver    mocknic.sys behind {adapter['name']} (MAC {adapter['mac']}) in host "
        f"process {adapter['host_pid']}" + (":" if jail else ""),
    ]
    if jail:
        lines.append(f"            {jail}")
    lines += [
        f"  frames    host {arrow} peer  {to_peer['tap_in']:>7,} into the driver, "
        f"{to_peer['nic_tx']:,} sent on the wire",
        f"            peer {arrow} host  {to_host['nic_rx']:>7,} off the wire, "
        f"{to_host['tap_out']:,} indicated up to Linux",
        "  ping      " + "   ".join(
            f"IPv{v} {p['received']}/{p['sent']}, avg {p['rtt_avg_ms']:.3f} ms"
            for v, p in ((4, ping["ipv4"]), (6, ping["ipv6"]))),
    ]
    for key, where in (("host_to_peer", f"host {arrow} peer"),
                       ("peer_to_host", f"peer {arrow} host")):
        t = tcp[key]
        lead = "  TCP       " if key == "host_to_peer" else "            "
        lines.append(f"{lead}{where}  {t['bytes'] / 1e6:g} MB in {t['seconds']:.2f} s, "
                     f"{t['mbit_s']:.0f} Mbit/s, SHA-256 {t['sha256_sent'][:8]}... matches")
    lines.append(f"  stack     deepest {_kib(stack['lifetime'])} of a {_kib(stack['size'])} "
                 "private stack; high-water per entry point:")
    lines.extend(stack_chart(stack["entry_points"]))
    lines.extend(stack_legend())
    lines.extend("  " + sentence for sentence in stack_sentences(stack["entry_points"]))
    findings = report["verifier"]
    if findings:
        lines.append(f"  verifier  {len(findings)} finding(s):")
        lines.extend(f"    {v['kind']} in {v['entry_point']} at {v['irql']}: {v['text']}"
                     for v in findings[:5])
    else:
        lines.append("  verifier  no findings")
    left = report["cleanup"]["left"]
    lines.append(f"  clean-up  {'nothing left' if not left else 'left ' + ', '.join(left)}; "
                 f"done in {report['seconds']:.1f} s")
    return "\n".join(lines)


# -- the command --------------------------------------------------------------


def _megabytes(text):
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_MEGABYTES:
        raise argparse.ArgumentTypeError(f"expected 1..{MAX_MEGABYTES}, got {value}")
    return value


def arguments(parser):
    parser.add_argument("--megabytes", "-m", type=_megabytes, default=DEFAULT_MEGABYTES,
                        metavar="N", help=f"megabytes (10^6 bytes) to send over TCP each way "
                                          f"(default {DEFAULT_MEGABYTES})")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress lines, only the report")


def run(args):
    """``ndisproxy demo``: 0, or 1 with one line saying which step failed."""
    from .cli import EXIT_FAILED, EXIT_OK
    recorder = _Recorder()
    logger = logging.getLogger("ndisproxy")
    try:
        check_can_run()
        import trio
        progress = _Progress(enabled=not (args.quiet or args.json))
        logger.addHandler(recorder)
        try:
            report = trio.run(_main, args.megabytes * 1_000_000, progress)
        finally:
            logger.removeHandler(recorder)
    except DemoError as exc:
        message = str(exc)
        daemon_error = recorder.last_error()
        if daemon_error and daemon_error not in message:
            message += f" (daemon: {daemon_error})"
        if args.json:
            print(json.dumps({"ok": False, "error": message}, ensure_ascii=False))
        else:
            print(f"ndisproxy demo: {message}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "arrow"}, ensure_ascii=False))
    else:
        print(format_report(report))
    return EXIT_OK
