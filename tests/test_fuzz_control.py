"""Fuzzing the control socket (ndisproxy.control) of a running daemon.

The daemon runs in this process (``open_host(isolation="inprocess")``)
with one mock NIC on a loopback cable; the test is a client sending random
lines and random JSON requests.  Every non-blank line is answered with one
JSON object carrying "ok", an error is one line (never "internal error"),
and afterwards the daemon still answers and its adapter still runs.
Corpus files named *.refused.* must get only errors.
"""
import json
import socket

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import ndisproxy
from ndisproxy.control import FAULTS, MAX_LINE, ControlServer

from .fuzzing import budget, corpus_ids, one_line
from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures

pytestmark = pytest.mark.fuzz("control requests")

NAME = "fz0"                        # replaced by the adapter's unique name
OID_MOCKNIC_FAULT = 0xFF010001
TIMEOUT = 10

JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                    | st.floats() | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
VERBS = st.sampled_from(("status", "stats", "oid", "stack", "reset", "inject", "capture",
                         "check-config", "explode", "", "STATUS", "_adapter", "__init__"))
# The mock's fault knob ends the adapter (tested elsewhere), so no request
# here names it: not a real fault to inject, not its OID to set.
OIDS = st.sampled_from(("OID_GEN_LINK_SPEED", "gen_xmit_ok", "0x00010107", "0x", "0xzz",
                        "OID_NOPE", 65806, -1, 2**32, 2**70)) | JSON
FIELDS = {"oid": OIDS, "action": st.sampled_from(("get", "set", "frob")) | JSON,
          "length": st.integers(-2, 2**33) | JSON,
          "value": st.sampled_from(("0x0b", "11", "hex:0b000000", "hex:zz", "0xzz", "hex:",
                                    "-1", "4294967296")) | st.integers(-1, 2**40) | JSON,
          "fault": st.text(max_size=10).filter(lambda f: f not in FAULTS) | JSON}
# Half aimed (a real verb for the adapter), half anything.
REQUESTS = st.one_of(
    st.fixed_dictionaries({"verb": st.sampled_from(("stats", "oid", "oid", "oid", "stack",
                                                    "reset", "inject", "capture")),
                           "adapter": st.just(NAME)}, optional=FIELDS),
    st.fixed_dictionaries({"verb": VERBS | JSON}, optional={
        "adapter": st.sampled_from((NAME, NAME, "eth0", "")) | JSON, **FIELDS}),
).filter(lambda r: not (r.get("action") == "set"
                           and str(r.get("oid")).lower() in (str(OID_MOCKNIC_FAULT),
                                                             hex(OID_MOCKNIC_FAULT))))
LINES = st.one_of(
    REQUESTS.map(lambda r: json.dumps(r).encode() + b"\n"),
    JSON.map(lambda v: json.dumps(v).encode() + b"\n"),
    st.binary(max_size=60).map(lambda b: b + b"\n"),
    st.text(max_size=40).map(lambda t: t.encode() + b"\n"),
)


def expected_replies(data):
    """How many replies ``data`` must get: one per complete non-blank line,
    or one refusal of a line over MAX_LINE bytes."""
    if len(data) > MAX_LINE and b"\n" not in data[:MAX_LINE + 1]:
        return 1
    return sum(1 for line in data.split(b"\n")[:-1] if line.strip())


def ask(path, data):
    """Send ``data`` on one connection: the replies, parsed (a capture
    stream ends the conversation after its first line)."""
    replies = []
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(str(path))
        sock.sendall(data)
        reader = sock.makefile("rb")
        for _ in range(expected_replies(data)):
            line = reader.readline()
            assert line.endswith(b"\n"), f"no reply to {data[:200]!r}"
            reply = json.loads(line)
            replies.append(reply)
            if reply.get("capturing"):
                break
    return replies


def check(path, name, data, refused=False):
    """Every reply to ``data`` is well-formed (each an error if ``refused``),
    and the daemon still runs the adapter."""
    data = data.replace(json.dumps(NAME).encode(), json.dumps(name).encode())
    for reply in ask(path, data):
        assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), reply
        assert not (refused and reply["ok"]), (data[:300], reply)
        if not reply["ok"]:
            assert isinstance(reply["error"], str) and one_line(reply["error"]), reply
            assert "internal error" not in reply["error"], (data[:300], reply)
    status = ask(path, b'{"verb": "status"}\n')[0]
    assert status["ok"] and status["adapters"][0]["state"] == "running", status


NAMES, LINES_CORPUS = corpus_ids("control")


async def test_garbage_requests_get_errors_and_the_daemon_keeps_serving(
        require_net, fuzzed, tmp_path):  # noqa: F811
    name = unique_name("npf")
    path = tmp_path / "control.sock"
    async with ndisproxy.open_host(isolation="inprocess") as host:
        await host.add_adapter(name, wire=ndisproxy.LoopbackWire())
        async with trio.open_nursery() as nursery:
            await nursery.start(ControlServer(host._daemon, path).serve)

            @budget(200)
            @given(lines=st.lists(LINES, min_size=1, max_size=5))
            def fuzz(lines):
                fuzzed()
                check(path, name, b"".join(lines))

            def replay_then_fuzz():
                for case, data in zip(NAMES, LINES_CORPUS):
                    try:
                        check(path, name, data, refused=".refused." in case)
                    except AssertionError as exc:
                        raise AssertionError(f"tests/fuzz_corpus/control/{case}: {exc}") from None
                fuzz()

            await trio.to_thread.run_sync(replay_then_fuzz)
            nursery.cancel_scope.cancel()
