"""The pytest plugin's fixtures and ndisproxy.testing, used as a test suite would.

The fixtures come from the installed ``pytest11`` entry point: nothing here
imports them.  Tests that need a clean pytest run of their own (a failing
test, a machine without privileges) run one in a subprocess.
"""
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import trio

from ndisproxy import netns as ndis_netns
from ndisproxy import testing
from ndisproxy.testing import run_in_netns, run_process_in_netns, socket_in_netns

ETHERTYPE = 0x88B5          # IEEE local experimental: nothing else on the TAPs uses it


class Refused(Exception):
    pass


class Unpicklable(Exception):
    def __init__(self):
        super().__init__("holds a lock")
        self.lock = threading.Lock()


def refuse(what):
    raise Refused(f"no {what}")


def hold_lock():
    raise Unpicklable()


def loopback_echo():
    """Inside a namespace: a datagram to ourselves over lo."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.bind(("127.0.0.1", 0))
        sock.sendto(b"echo", sock.getsockname())
        return sock.recv(16)


def run_pytest(directory, files, *args, env=None):
    """pytest (trio mode) on ``files`` ({name: text}) written to ``directory``."""
    files = {"pytest.ini": "[pytest]\ntrio_mode = true\n", **files}
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *args,
         str(directory)],
        cwd=directory, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        timeout=300)


def test_the_plugin_is_an_installed_entry_point(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("ndisproxy"), (
        "the ndisproxy pytest11 entry point is not loaded: is ndisproxy installed?")


def test_unique_names_fit_an_interface_name():
    names = {testing.unique_name("npt") for _ in range(100)}
    assert len(names) == 100 and all(len(n) <= 15 for n in names)
    with pytest.raises(ValueError, match="at most 7"):
        testing.unique_name("toolongprefix")
    with pytest.raises(ValueError, match="letters, digits"):
        testing.unique_name("a/b")


# -- the fixtures --------------------------------------------------------------


async def test_ping_through_the_adapter_both_ways(ndisproxy_adapter):
    wired = ndisproxy_adapter
    ping = ["ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "2"]
    # The peer, in its namespace, pings the host side: through the driver.
    for target in (wired.host_address, wired.host_address6):
        result = await run_process_in_netns(wired.netns, [*ping, target],
                                            capture_stdout=True, check=False)
        assert result.returncode == 0, result.stdout.decode()
    # And the host side (this namespace) pings the peer.
    for target in (wired.peer_address, wired.peer_address6):
        result = await trio.run_process([*ping, "-I", wired.ifname, target],
                                        capture_stdout=True, check=False)
        assert result.returncode == 0, result.stdout.decode()
    assert wired.adapter.state == "running" and wired.adapter.restarts == 0


def frame(dst, marker):
    return (bytes.fromhex(dst.replace(":", "")) + bytes.fromhex("02aabbccddee")
            + ETHERTYPE.to_bytes(2, "big") + marker.ljust(46, b"."))


def packet_socket(ifname):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    sock.bind((ifname, ETHERTYPE))
    return trio.socket.from_stdlib_socket(sock)


async def arrives(sock, marker, timeout):
    """Whether a frame carrying ``marker`` arrives on ``sock`` within ``timeout``."""
    with trio.move_on_after(timeout):
        while marker not in await sock.recv(2048):
            pass
        return True
    return False


async def test_pair_carries_frames_both_ways_and_its_knobs_act(ndisproxy_pair):
    a, b = ndisproxy_pair
    with packet_socket(a.name) as tap_a, packet_socket(b.name) as tap_b:
        # Linux sends into TAP a: driver a -> a's cable -> relay -> b's cable -> driver b -> TAP b.
        await tap_a.send(frame(b.mac, b"a-to-b"))
        assert await arrives(tap_b, b"a-to-b", 5)
        await tap_b.send(frame(a.mac, b"b-to-a"))
        assert await arrives(tap_a, b"b-to-a", 5)

        # Loss at either end of the relay stops them.
        for end in (a.wire, b.wire):
            end.loss = 1.0
            dropped = end.dropped
            for i in range(5):
                await tap_a.send(frame(b.mac, b"lost-%d" % i))
            assert not await arrives(tap_b, b"lost-", 0.5)
            assert end.dropped - dropped >= 5       # and whatever else Linux sent
            end.loss = 0.0

        # Delay: one frame now takes at least that long.
        a.wire.delay = 0.2
        start = trio.current_time()
        await tap_a.send(frame(b.mac, b"late"))
        assert await arrives(tap_b, b"late", 5)
        assert trio.current_time() - start >= 0.2
        a.wire.delay = 0.0
        await tap_a.send(frame(b.mac, b"again"))
        assert await arrives(tap_b, b"again", 5)


# -- ndisproxy.testing ---------------------------------------------------------


async def test_run_in_netns_returns_what_it_computed_inside(ndisproxy_adapter):
    wired = ndisproxy_adapter
    names = {name for _, name in await run_in_netns(wired.netns, socket.if_nameindex)}
    assert names == {"lo", wired.peer_ifname}
    here = {name for _, name in socket.if_nameindex()}
    assert wired.ifname in here and wired.peer_ifname not in here
    assert await run_in_netns(wired.netns, loopback_echo) == b"echo"     # lo is up


async def test_run_in_netns_reraises_what_it_raised_inside(ndisproxy_netns):
    with pytest.raises(Refused, match="no entry") as info:
        await run_in_netns(ndisproxy_netns, refuse, "entry")
    note = "\n".join(info.value.__notes__)
    assert f"network namespace {ndisproxy_netns}" in note and "in refuse" in note
    # An OSError from inside: no such interface there.
    with pytest.raises(OSError):
        await run_in_netns(ndisproxy_netns, socket.if_nametoindex, "lo-not-there")
    with pytest.raises(testing.NetnsCallError, match="Unpicklable: holds a lock"):
        await run_in_netns(ndisproxy_netns, hold_lock)
    with pytest.raises(testing.NetnsCallError, match="without an answer .exit status 7"):
        await run_in_netns(ndisproxy_netns, os._exit, 7)


async def test_run_in_netns_is_cancellable(ndisproxy_netns):
    start = time.monotonic()
    with trio.move_on_after(0.2):
        await run_in_netns(ndisproxy_netns, time.sleep, 60)
    assert time.monotonic() - start < 5
    with pytest.raises(ndis_netns.NetnsError, match="no-such-netns"):
        await run_in_netns("no-such-netns", time.time)


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
async def test_socket_in_netns_reaches_across_the_driver(ndisproxy_adapter, family):
    wired = ndisproxy_adapter
    v4 = family == socket.AF_INET
    peer = trio.socket.from_stdlib_socket(socket_in_netns(wired.netns, family, socket.SOCK_DGRAM))
    host = trio.socket.socket(family, socket.SOCK_DGRAM)
    with peer, host:
        # The peer's address exists only in the namespace: binding to it
        # shows the socket lives there.
        await peer.bind((wired.peer_address if v4 else wired.peer_address6, 0))
        await host.bind((wired.host_address if v4 else wired.host_address6, 0))
        await peer.sendto(b"from the peer", host.getsockname())
        with trio.fail_after(5):
            data, source = await host.recvfrom(64)
        assert data == b"from the peer" and source[:2] == peer.getsockname()[:2]
        await host.sendto(b"and back", source)
        with trio.fail_after(5):
            assert await peer.recv(64) == b"and back"


async def test_netns_is_removed_even_when_the_block_fails(ndisproxy_require_net):
    with pytest.raises(RuntimeError, match="on purpose"):
        async with testing.netns("npx") as name:
            assert name.startswith("npx") and name in ndis_netns.list_netns()
            raise RuntimeError("on purpose")
    assert name not in ndis_netns.list_netns()


# -- the fixtures in a pytest run of their own ---------------------------------


def test_fixtures_skip_without_privileges_or_fail_when_required(tmp_path):
    files = {
        "conftest.py": """
            import ndisproxy.testing
            ndisproxy.testing.need_net_admin = lambda: "pretending to lack CAP_NET_ADMIN"
        """,
        "test_inner.py": """
            async def test_needs_net(ndisproxy_netns):
                pass
        """,
    }
    env = {"NDISPROXY_REQUIRE_NET": "0"}
    skipped = run_pytest(tmp_path, files, env=env)
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout, skipped.stdout
    assert "pretending to lack CAP_NET_ADMIN" in skipped.stdout
    failed = run_pytest(tmp_path, files, env={"NDISPROXY_REQUIRE_NET": "1"})
    assert failed.returncode == 1 and "1 error" in failed.stdout, failed.stdout
    assert "NDISPROXY_REQUIRE_NET=1 requires" in failed.stdout


def test_fixtures_refuse_trio_mock_clocks(tmp_path):
    files = {
        "conftest.py": """
            import ndisproxy.testing
            ndisproxy.testing.need_net_admin = lambda: None     # reaches the clock check
        """,
        "test_inner.py": """
            async def test_autojump(autojump_clock, ndisproxy_host):
                pass
        """,
    }
    result = run_pytest(tmp_path, files)
    assert result.returncode == 1 and "1 failed" in result.stdout, result.stdout
    assert "cannot run under trio's MockClock" in result.stdout


def test_fixtures_clean_up_after_a_failing_test(tmp_path, ndisproxy_require_net):
    names = tmp_path / "names.json"
    files = {
        "test_inner.py": """
            import json, os

            async def test_fails(ndisproxy_adapter, ndisproxy_pair):
                w = ndisproxy_adapter
                a, b = ndisproxy_pair
                with open(os.environ["NAMES"], "w") as out:
                    json.dump({"links": [w.ifname, a.name, b.name], "netns": w.netns}, out)
                assert False, "failing on purpose"
        """,
    }
    result = run_pytest(tmp_path, files, env={"NAMES": str(names)})
    assert result.returncode == 1 and "1 failed" in result.stdout, result.stdout
    assert "failing on purpose" in result.stdout
    made = json.loads(names.read_text())
    assert not [n for n in made["links"] if os.path.exists(f"/sys/class/net/{n}")]
    assert made["netns"] not in ndis_netns.list_netns()
