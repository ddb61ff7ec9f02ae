"""Fuzzing the host <-> proxy protocol (ndisproxy.hostproc, ndisproxy.supervisor).

Both ends are driven over a SOCK_SEQPACKET socketpair, in this process:

* a driver host (hostproc's serving code, with mocknic.sys on a loopback
  cable) receiving garbage requests answers each with an error reply, or
  ends cleanly (for "stop", or an empty message: the proxy is gone);
* the proxy (supervisor.Host, the daemon following it, its control
  socket) receiving garbage events and replies from a host keeps running:
  what it cannot use is dropped, and a control request whose answer was
  garbage gets an error reply.  A host is driver code's process, so
  nothing it says is trusted.
"""
import json
import select
import socket
import time

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from ndisproxy import config as configuration
from ndisproxy import drivers, hostproc
from ndisproxy.control import ControlServer
from ndisproxy.daemon import Daemon
from ndisproxy.supervisor import Host

from .fuzzing import budget, corpus, one_line
from .netfixtures import unique_name

pytestmark = pytest.mark.fuzz("host <-> proxy messages")

NAME = "fz0"
OTHER = "fz1"                           # an adapter of another host
OID_MOCKNIC_FAULT = 0xFF010001
TIMEOUT = 5

JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                    | st.floats(allow_nan=False) | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
OIDS = st.sampled_from((0x00010107, 0x0001010E, 0x01010103, 0x01010102, "OID_GEN_LINK_SPEED",
                        "GEN_XMIT_OK", "0x00010107", "nonsense", -1, 2**32, 1.5)) | JSON


def _raw(value):
    return json.dumps(value).encode()


# -- the host's end -----------------------------------------------------------------

REQUESTS = st.one_of(
    st.binary(max_size=40),
    JSON.map(_raw),
    st.fixed_dictionaries(
        {"op": st.sampled_from(("query", "set", "stats", "reset", "link", "capture",
                                "stall", "ping", "stop", "explode")) | JSON},
        optional={"id": JSON, "adapter": st.sampled_from((NAME, NAME, "eth0")) | JSON,
                  "oid": OIDS, "length": st.integers(-2, 300) | JSON,
                  "data": st.sampled_from(("00000000", "0b000000", "zz", "0", ""))
                  | st.binary(max_size=12).map(bytes.hex) | JSON,
                  "up": JSON, "on": JSON})
    # The mock's fault knob is for the fault tests: here it would only cost time.
    .filter(lambda r: not (r.get("op") == "set" and r.get("oid") == OID_MOCKNIC_FAULT))
    .map(_raw),
)


def ends_the_host(message):
    """Whether a host may end on ``message`` instead of answering it."""
    if message == b"":
        return True                         # a read of 0 bytes: the proxy is gone
    try:
        request = json.loads(message)
    except ValueError:
        return False
    return isinstance(request, dict) and request.get("op") == "stop"


class HostUnderTest:
    """hostproc's serving code on one end of a socketpair; the test holds
    the other (a plain blocking socket, used from the hypothesis thread)."""

    def __init__(self, nursery):
        self.nursery = nursery
        self.proxy = None
        self.done = None
        self.ended = None                   # [exit code or exception]

    async def start(self):
        spec = {"adapters": [{"name": NAME, "driver": str(drivers.path("mocknic")),
                              "tap": None, "wire": None}]}
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.settimeout(TIMEOUT)
        self.proxy, self.done, self.ended = ours, trio.Event(), []
        done, ended = self.done, self.ended

        async def serve():
            try:
                ended.append(await hostproc._serve(theirs.detach(), spec, []))
            except Exception as exc:        # noqa: BLE001 - the finding, for the test
                ended.append(exc)
            finally:
                done.set()

        self.nursery.start_soon(serve)
        return ours

    async def wait_ended(self):
        with trio.fail_after(TIMEOUT):
            await self.done.wait()
        self.proxy.close()
        return self.ended[0]


def next_reply(sock, ended):
    """The next reply the host sends (events and captured frames skipped),
    or None when it ended (``ended()``: its socket may outlive it here)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        if not select.select([sock], [], [], 0.01)[0]:
            if ended():
                return None
            assert time.monotonic() < deadline, "the host neither answered nor ended"
            continue
        message = sock.recv(1 << 16)
        if not message:
            return None
        if message[:1] == hostproc.CAPTURE_TAG:
            continue
        event = json.loads(message)
        assert isinstance(event, dict), event
        if "reply" in event:
            return event


def check_reply(message, reply):
    try:
        request = json.loads(message)
    except ValueError:
        request = None
    if isinstance(request, dict) and isinstance(request.get("id"), (int, str, type(None))):
        assert reply["reply"] == request.get("id"), (request, reply)
    if "error" in reply:
        assert isinstance(reply["error"], str) and one_line(reply["error"]), reply
        return
    op = request["op"]
    assert op in ("query", "set", "stats", "reset", "link", "capture", "stall", "ping"), \
        (request, reply)
    if op in ("query", "set"):
        assert isinstance(reply["status"], int) and isinstance(reply["needed"], int)
        bytes.fromhex(reply["data"])
    if op == "stats":
        assert set(reply["adapters"]) == {NAME}


def host_corpus():
    return [data for _, data in corpus("host-requests")]


async def test_a_host_answers_garbage_or_ends_cleanly(fuzzed):
    async with trio.open_nursery() as nursery:
        host = HostUnderTest(nursery)
        token = trio.lowlevel.current_trio_token()

        def live_host():
            """The host's socket, after its "up"; a new host if the last one ended."""
            if host.proxy is None or host.done.is_set():
                sock = trio.from_thread.run(host.start, trio_token=token)
                up = json.loads(sock.recv(1 << 16))
                assert up["event"] == "up", up
            return host.proxy

        def send_all(messages):
            sock = live_host()
            for message in messages:
                sock.send(message)
                reply = next_reply(sock, host.done.is_set)
                if reply is None:
                    assert ends_the_host(message), f"the host ended on {message!r}"
                    ended = trio.from_thread.run(host.wait_ended, trio_token=token)
                    assert ended in (0, hostproc.EXIT_FAULT), \
                        f"the host ended on {message!r} with {ended!r}"
                    return
                assert not ends_the_host(message) or message != b"", reply
                check_reply(message, reply)

        @budget(150)
        @given(messages=st.lists(REQUESTS, min_size=1, max_size=6))
        def fuzz(messages):
            fuzzed()
            send_all(messages)

        def replay_then_fuzz():
            for message in host_corpus():
                send_all([message])
            fuzz()

        await trio.to_thread.run_sync(replay_then_fuzz)
        if host.proxy is not None and not host.done.is_set():
            host.proxy.send(_raw({"op": "stop"}))
            assert await host.wait_ended() == 0
        nursery.cancel_scope.cancel()


# -- the proxy's end ----------------------------------------------------------------

EVENT_KINDS = ("up", "carrier", "log", "reset", "stopped", "fault", "error", "probe")
# b"" too: on a SOCK_SEQPACKET socket an empty message reads like end of
# file, and only the host hanging up may end the proxy's reading.
EVENTS = st.one_of(
    st.binary(max_size=40),
    st.binary(max_size=8).map(lambda b: hostproc.CAPTURE_TAG + b),
    JSON.map(_raw),
    st.fixed_dictionaries(
        {"event": st.sampled_from(EVENT_KINDS) | JSON},
        optional={"adapter": st.sampled_from((NAME, NAME, OTHER, "eth0")) | JSON,
                  "mac": st.sampled_from(("02:4e:50:00:00:09", "ff:ff:ff:ff:ff:ff", "zz",
                                          "02:4e:50:00:00:01:00")) | JSON,
                  "pid": st.integers(-1, 2**40) | JSON, "max_frame": st.integers(-1, 70000)
                  | JSON, "sandbox": JSON, "up": JSON, "lines": st.lists(st.text(max_size=20))
                  | JSON, "error": st.text(max_size=40) | JSON, "log": JSON, "kind": JSON,
                  "adapters": st.dictionaries(st.sampled_from((NAME, "x")), JSON) | JSON,
                  "reason": st.text(max_size=20) | JSON, "status": st.integers() | JSON,
                  "ok": JSON,
                  "reply": JSON}).map(_raw),
)
REPLIES = st.fixed_dictionaries({}, optional={
    "status": st.integers(-(2**31), 2**32) | JSON, "data": st.sampled_from(("80969800", "zz", ""))
    | JSON, "needed": st.integers(0, 8) | JSON, "error": st.text(max_size=20) | JSON,
    "adapters": st.fixed_dictionaries({NAME: st.fixed_dictionaries(
        {}, optional={"host": JSON, "stack": JSON, "pump": JSON, "device": JSON})}) | JSON,
    "addressing_reset": JSON})
VERBS = st.sampled_from((
    {"verb": "oid", "adapter": NAME, "oid": "OID_GEN_LINK_SPEED"},
    {"verb": "oid", "adapter": NAME, "action": "set", "oid": "OID_GEN_CURRENT_PACKET_FILTER",
     "value": "0x0b"},
    {"verb": "stats", "adapter": NAME}, {"verb": "stack", "adapter": NAME},
    {"verb": "reset", "adapter": NAME}))


# Replies that once ended the daemon (a KeyError in a control verb).
REPLY_REGRESSIONS = [
    ({"error": ""}, {"verb": "oid", "oid": "OID_GEN_LINK_SPEED"}),
    ({"error": "no stats today"}, {"verb": "stats"}),
    ({"adapters": {}}, {"verb": "stack"}),
    ({"status": 0, "data": "zz", "needed": 0}, {"verb": "oid", "oid": "OID_GEN_LINK_SPEED"}),
    ({"error": "\r"}, {"verb": "oid", "oid": "OID_GEN_LINK_SPEED"}),    # a two-line error
    ({"status": 0, "needed": 0, "data": 1.5}, {"verb": "oid", "action": "set",
                                               "oid": "OID_GEN_CURRENT_PACKET_FILTER",
                                               "value": "0x0b"}),
]


class FakeHost:
    """The test's end of a proxy <-> host socketpair: it says what hypothesis
    draws, and answers the proxy's requests with drawn replies."""

    def __init__(self, sock):
        self.sock = sock

    def answer_until(self, reply, done, failed):
        """Answer every request the proxy sends with ``reply`` (its id put
        in) until ``done()``: a control verb may ask several times, or not
        at all (when the adapter is not running)."""
        deadline = time.monotonic() + TIMEOUT
        while not done():
            assert not failed(), failed()
            assert time.monotonic() < deadline, "the control request was never answered"
            if select.select([self.sock], [], [], 0.01)[0]:
                request = json.loads(self.sock.recv(1 << 16))
                self.sock.send(_raw({**reply, "reply": request["id"]}))


def control(path, request):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(str(path))
        sock.sendall(_raw(request) + b"\n")
        return json.loads(sock.makefile("rb").readline())


async def test_the_proxy_survives_garbage_from_a_host(fuzzed, tmp_path):
    # The TAPs do not exist: an "up" whose MAC the proxy would give one fails.
    configs = [configuration.adapter_config({"name": unique_name("npz"), "driver": "mocknic",
                                             "wire": {"kind": "loopback"}}) for _ in range(2)]
    name, other = (config.name for config in configs)
    daemon = Daemon(configuration.Config(daemon=configuration.DaemonConfig(),
                                         adapters=tuple(configs)))
    state = daemon.adapters[name]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    theirs.settimeout(TIMEOUT)
    host = Host(None, 0, trio.socket.from_stdlib_socket(ours))
    daemon.hosts[name] = host
    fake = FakeHost(theirs)
    path = tmp_path / "control.sock"
    failures, followed = [], trio.Event()

    async def follow():
        try:
            await daemon._follow([state], host.events())
        except Exception as exc:            # noqa: BLE001 - the finding, for the test
            failures.append(exc)
        finally:
            followed.set()

    def running():
        state.state = "running"

    async def serve(task_status):
        try:
            await ControlServer(daemon, path).serve(task_status=task_status)
        except Exception as exc:            # noqa: BLE001 - the finding, for the test
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await nursery.start(serve)

        async def ask(request):
            """Start a control request; its reply is the box's value when set."""
            box = Box()

            async def run():
                box.value = await trio.to_thread.run_sync(control, path, request)
                box.done = True

            nursery.start_soon(run)
            return box

        def garbage(events, reply, verb):
            trio.from_thread.run_sync(running)
            for event in events:
                # Drawn for NAME and OTHER; meant for these adapters.
                theirs.send(event.replace(_raw(NAME), _raw(name)).replace(_raw(OTHER),
                                                                          _raw(other)))
            box = trio.from_thread.run(ask, {**verb, "adapter": name})
            fake.answer_until(reply, lambda: box.done, lambda: failures)
            result = box.value
            assert isinstance(result.get("ok"), bool), result
            if not result["ok"]:
                assert isinstance(result["error"], str) and one_line(result["error"]), result
                assert "internal error" not in result["error"], result
            assert not failures, failures
            status = control(path, {"verb": "status"})
            assert status["ok"], status
            fault = status["adapters"][0]["last_fault"]
            assert fault is None or "\n" not in fault and "\r" not in fault, status
            untouched = status["adapters"][1]
            assert untouched["name"] == other and untouched["state"] == "initialising"
            assert untouched["mac"] is None and untouched["last_fault"] is None

        @budget(150)
        @given(events=st.lists(EVENTS, max_size=6), reply=REPLIES, verb=VERBS)
        def fuzz(events, reply, verb):
            fuzzed()
            garbage(events, reply, verb)

        def replay_then_fuzz():
            for message in [data for _, data in corpus("proxy-events")]:
                garbage([message], {}, {"verb": "stats"})
            for reply, verb in REPLY_REGRESSIONS:
                garbage([], reply, verb)
            fuzz()

        await trio.to_thread.run_sync(replay_then_fuzz)
        theirs.close()                      # the host is gone: events() ends
        with trio.fail_after(TIMEOUT):
            await followed.wait()
        assert not failures, failures
        nursery.cancel_scope.cancel()


class Box:
    """A value set by a trio task, read by the hypothesis thread."""

    def __init__(self):
        self.value = None
        self.done = False


async def test_an_empty_message_from_a_host_is_dropped_not_taken_for_its_end():
    """SOCK_SEQPACKET reads an empty message like end of file: the proxy
    drops it and reads on, and stops only when the host hangs up."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    host = Host(None, 0, trio.socket.from_stdlib_socket(ours))
    events = host.events()
    with theirs:
        theirs.send(b"")
        theirs.send(_raw({"event": "log", "adapter": NAME, "lines": ["still here"]}))
        with trio.fail_after(TIMEOUT):
            event = await events.__anext__()
        assert event["lines"] == ["still here"]
        assert host.dropped == 1
    with trio.fail_after(TIMEOUT):
        assert [event async for event in events] == []      # the hang-up ends it
