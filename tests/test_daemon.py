"""The proxy daemon end to end: real TAPs, a peer namespace, driver hosts.

Frames travel Linux -> TAP -> host process -> mocknic.sys -> mock NIC ->
wire TAP -> peer namespace and back.  Addresses are documentation ranges.
"""
import hashlib
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import trio

from ndisproxy import config as configuration
from ndisproxy import netns, privileges, tap
from ndisproxy.daemon import Daemon

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures

OID_MOCKNIC_FAULT = 0xFF010001
HOST_V4, PEER_V4 = "198.51.100.1", "198.51.100.2"


def config_text(adapters, isolation="process"):
    parts = []
    for name, wire, ns in adapters:
        parts.append(textwrap.dedent(f"""
            [[adapter]]
            name = "{name}"
            driver = "mocknic"
            isolation = "{isolation}"
            [adapter.wire]
            kind = "tap"
            ifname = "{wire}"
            netns = "{ns}"
        """))
    return "\n".join(parts)


def address_host_side(ifname, v4, v6):
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        ipr.addr("add", index=index, address=v4.split("/")[0], prefixlen=int(v4.split("/")[1]))
        ipr.addr("add", index=index, address=v6.split("/")[0], prefixlen=int(v6.split("/")[1]),
                 flags=0x02)


def ping(address, count=3, ns=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + \
        ["ping", "-c", str(count), "-i", "0.05", "-W", "2", address]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


SERVER = """
import hashlib, socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("listening", flush=True)
c, _ = s.accept(); h = hashlib.sha256(); n = 0
while (b := c.recv(1 << 16)):
    h.update(b); n += len(b)
print(n, h.hexdigest(), flush=True)
"""

CLIENT = """
import os, socket, sys
data = bytes.fromhex(sys.stdin.readline().strip()) * int(sys.argv[3])
c = socket.create_connection((sys.argv[1], int(sys.argv[2]))); c.sendall(data); c.close()
"""


async def transfer(src_ns, dst_ns, dst_addr, megabytes=50):
    """Send ``megabytes`` of data src -> dst over TCP; (bytes, sha256) seen by dst."""
    block = os.urandom(1 << 20)
    prefix = lambda ns: ["ip", "netns", "exec", ns] if ns else []  # noqa: E731
    server = await trio.lowlevel.open_process(
        prefix(dst_ns) + [sys.executable, "-c", SERVER, dst_addr, "5201"],
        stdout=subprocess.PIPE)
    try:
        line = b""
        with trio.fail_after(10):
            while not line.endswith(b"\n"):
                line += await server.stdout.receive_some(100)
        assert line.startswith(b"listening")
        client = await trio.run_process(
            prefix(src_ns) + [sys.executable, "-c", CLIENT, dst_addr, "5201", str(megabytes)],
            stdin=block.hex().encode() + b"\n")
        assert client.returncode == 0
        out = b""
        with trio.fail_after(60):
            while chunk := await server.stdout.receive_some(200):
                out += chunk
        count, digest = out.split()
    finally:
        server.kill()
        await server.wait()
    assert int(count) == megabytes << 20
    assert digest.decode() == hashlib.sha256(block * megabytes).hexdigest()


@pytest.fixture
async def peer(require_net):  # noqa: F811
    name = unique_name("npd")
    await trio.to_thread.run_sync(netns.create_netns, name)
    try:
        yield name
    finally:
        await trio.to_thread.run_sync(lambda: netns.remove_netns(name, missing_ok=True))


async def start(nursery, text):
    config = configuration.loads(text, name="<test>")
    daemon = Daemon(config)
    await nursery.start(daemon.run)
    for name in daemon.adapters:
        await daemon.wait_state(name, "running")
    return daemon


async def test_ping_v4_v6_and_50mb_each_way_through_a_host_process(peer):
    name, wire = unique_name("nph"), unique_name("npw")
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, config_text([(name, wire, peer)]))
        await trio.to_thread.run_sync(address_host_side, name, f"{HOST_V4}/24",
                                      "2001:db8:1::1/64")
        await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
            peer, wire, addresses=(f"{PEER_V4}/24", "2001:db8:1::2/64")))
        v4 = await trio.to_thread.run_sync(ping, PEER_V4)
        assert v4.returncode == 0, v4.stdout + v4.stderr
        v6 = await trio.to_thread.run_sync(ping, "2001:db8:1::2")   # neighbour discovery too
        assert v6.returncode == 0, v6.stdout + v6.stderr
        await transfer(None, peer, PEER_V4)                          # host -> peer
        await transfer(peer, None, HOST_V4)                          # peer -> host
        stats = (await daemon.request(name, "stats"))["adapters"][name]
        # host -> peer goes as large sends (about 64 KB each), back as segments
        assert stats["pump"]["tap_large_sends"] > 500 and stats["pump"]["tap_out"] > 30_000
        assert stats["violations"] == []
        state = daemon.adapters[name]
        assert state.sandbox["cap_eff"] == 0 and state.sandbox["no_new_privs"]
        assert state.sandbox["dev_net_tun"].startswith("denied")
        assert state.sandbox["seccomp"] == "allowlist"
        assert state.sandbox["new_sockets"].startswith("denied")
        with open(f"/proc/{state.pid}/status") as status:     # the kernel's word for it
            assert "\nSeccomp:\t2\n" in status.read()
        assert privileges.capability_sets(state.pid)["CapEff"] == 0
        assert privileges.capability_sets(daemon.fork_server.process.pid)["CapEff"] == 0
        nursery.cancel_scope.cancel()
    assert tap.find_tap(name) is None                                # removed at stop
    assert daemon.adapters[name].halt_report == {"leaks": [], "violations": []}


async def test_two_adapters_in_two_hosts_carry_traffic_at_once(peer):
    a, b = unique_name("npa"), unique_name("npb")
    wa, wb = unique_name("npx"), unique_name("npy")
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, config_text([(a, wa, peer), (b, wb, peer)]))
        assert daemon.adapters[a].pid != daemon.adapters[b].pid
        await trio.to_thread.run_sync(address_host_side, a, "198.51.100.1/25", "2001:db8:2::1/64")
        await trio.to_thread.run_sync(address_host_side, b, "203.0.113.1/24", "2001:db8:3::1/64")
        await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
            peer, wa, addresses=("198.51.100.2/25",)))
        await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
            peer, wb, addresses=("203.0.113.2/24",)))
        results = {}

        async def one(key, address):
            results[key] = await trio.to_thread.run_sync(ping, address, 20)

        async with trio.open_nursery() as both:
            both.start_soon(one, a, "198.51.100.2")
            both.start_soon(one, b, "203.0.113.2")
        assert all(r.returncode == 0 for r in results.values()), results
        nursery.cancel_scope.cancel()


async def test_a_driver_fault_restarts_the_host_and_the_link_survives(peer):
    name, wire = unique_name("npf"), unique_name("npw")
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, config_text([(name, wire, peer)]))
        index = tap.find_tap(name).index
        await trio.to_thread.run_sync(address_host_side, name, f"{HOST_V4}/24",
                                      "2001:db8:4::1/64")
        await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
            peer, wire, addresses=(f"{PEER_V4}/24",)))
        old_pid = daemon.adapters[name].pid
        with trio.move_on_after(5):        # the host dies answering: no reply comes
            await daemon.request(name, "set", oid=OID_MOCKNIC_FAULT,
                                 data=(2).to_bytes(4, "little").hex())     # wild write
        state = daemon.adapters[name]
        await daemon.wait_until(lambda: state.restarts == 1 and state.state == "running", 10)
        assert state.restarts == 1 and state.pid != old_pid
        assert "access violation in MiniportSetInformation" in state.last_fault["error"]
        assert state.last_fault["where"].startswith("mocknic.sys+0x")
        assert tap.find_tap(name).index == index                     # the same interface
        result = await trio.to_thread.run_sync(ping, PEER_V4)        # address kept, traffic back
        assert result.returncode == 0, result.stdout
        nursery.cancel_scope.cancel()


def test_sigterm_while_traffic_flows_exits_0_and_leaves_nothing(require_net, tmp_path):  # noqa: F811
    ns, name, wire = unique_name("npd"), unique_name("nps"), unique_name("npw")
    netns.create_netns(ns)
    try:
        path = tmp_path / "ndisproxy.toml"
        path.write_text(config_text([(name, wire, ns)]))
        daemon = subprocess.Popen([sys.executable, "-m", "ndisproxy", "run", "-c", str(path)],
                                  stderr=subprocess.PIPE, text=True)
        line = ""
        while "running" not in line:
            line = daemon.stderr.readline()
            assert line, "the daemon ended before running"
        address_host_side(name, f"{HOST_V4}/24", "2001:db8:5::1/64")
        netns.configure_in_netns(ns, wire, addresses=(f"{PEER_V4}/24",))
        flood = subprocess.Popen(["ping", "-f", "-c", "100000", PEER_V4],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            children = subprocess.run(["pgrep", "-P", str(daemon.pid)], capture_output=True,
                                      text=True).stdout.split()
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=20) == 0, daemon.stderr.read()
        finally:
            flood.kill()
            flood.wait()
        for pid in children:
            assert not os.path.exists(f"/proc/{pid}"), f"process {pid} outlived the daemon"
        assert tap.find_tap(name) is None
        assert subprocess.run(["ip", "-n", ns, "link", "show", wire],
                              capture_output=True).returncode != 0
    finally:
        netns.remove_netns(ns, missing_ok=True)
        tap.delete_tap(name, missing_ok=True) if tap.find_tap(name) else None


async def test_inprocess_isolation_runs_the_same_host_code_in_the_daemon(peer):
    name, wire = unique_name("npi"), unique_name("npw")
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, config_text([(name, wire, peer)], isolation="inprocess"))
        assert daemon.fork_server is None and daemon.adapters[name].pid == os.getpid()
        await trio.to_thread.run_sync(address_host_side, name, f"{HOST_V4}/24",
                                      "2001:db8:7::1/64")
        await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
            peer, wire, addresses=(f"{PEER_V4}/24",)))
        result = await trio.to_thread.run_sync(ping, PEER_V4)
        assert result.returncode == 0, result.stdout
        stats = (await daemon.request(name, "stats"))["adapters"][name]
        assert stats["pump"]["tap_in"] >= 3
        nursery.cancel_scope.cancel()


async def test_oversize_frames_from_the_peer_are_counted_and_dropped(peer):
    name, wire = unique_name("npo"), unique_name("npw")
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, config_text([(name, wire, peer)]))
        await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
            peer, wire, addresses=(f"{PEER_V4}/24",)))
        await trio.to_thread.run_sync(address_host_side, name, f"{HOST_V4}/24",
                                      "2001:db8:8::1/64")
        subprocess.run(["ip", "-n", peer, "link", "set", wire, "mtu", "9000"], check=True)
        big = bytes.fromhex("024e50000001" "02aabbccddee" "88b5") + bytes(3000)
        script = ("import socket,sys; s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); "
                  "s.bind((sys.argv[1],0)); [s.send(bytes.fromhex(sys.argv[2])) for _ in range(5)]")
        before = (await daemon.request(name, "stats"))["adapters"][name]["device"]
        await trio.run_process(["ip", "netns", "exec", peer, sys.executable, "-c", script,
                                wire, big.hex()])
        with trio.fail_after(5):
            while True:
                after = (await daemon.request(name, "stats"))["adapters"][name]["device"]
                if after["rx_filtered"] >= before["rx_filtered"] + 5:
                    break
                await trio.sleep(0.05)
        assert after["rx_frames"] == before["rx_frames"]              # none delivered
        result = await trio.to_thread.run_sync(ping, PEER_V4)          # still working
        assert result.returncode == 0, result.stdout
        assert daemon.adapters[name].state == "running"
        nursery.cancel_scope.cancel()


async def test_a_restarted_daemon_reattaches_to_its_kept_tap(peer):
    name, wire = unique_name("npk"), unique_name("npw")
    text = config_text([(name, wire, peer)]).replace(
        'isolation = "process"', 'isolation = "process"\nkeep_on_stop = true')
    try:
        async with trio.open_nursery() as nursery:
            await start(nursery, text)
            index = tap.find_tap(name).index
            await trio.to_thread.run_sync(address_host_side, name, f"{HOST_V4}/24",
                                          "2001:db8:9::1/64")
            nursery.cancel_scope.cancel()
        assert tap.find_tap(name).index == index                    # kept, with its address
        async with trio.open_nursery() as nursery:
            await start(nursery, text)
            assert tap.find_tap(name).index == index                # re-attached, not new
            await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
                peer, wire, addresses=(f"{PEER_V4}/24",)))
            result = await trio.to_thread.run_sync(ping, PEER_V4)   # the old address works
            assert result.returncode == 0, result.stdout
            nursery.cancel_scope.cancel()
    finally:
        tap.delete_tap(name, missing_ok=True)


async def test_a_precreated_tap_is_used_and_never_deleted(peer):
    name, wire = unique_name("npe"), unique_name("npw")
    subprocess.run(["ip", "tuntap", "add", name, "mode", "tap", "vnet_hdr"], check=True)
    try:
        text = config_text([(name, wire, peer)]).replace(
            'isolation = "process"', 'isolation = "process"\nexisting_tap = true')
        async with trio.open_nursery() as nursery:
            daemon = await start(nursery, text)
            assert daemon.adapters[name].state == "running"
            nursery.cancel_scope.cancel()
        assert subprocess.run(["ip", "link", "show", name]).returncode == 0    # still there
    finally:
        subprocess.run(["ip", "link", "del", name])


async def test_hosts_run_as_the_configured_host_user(peer, tmp_path):
    import pwd
    import shutil

    from ndisproxy import drivers
    name, wire = unique_name("npu"), unique_name("npw")
    # A driver in a directory only root may enter: the daemon hands the host
    # the image as an fd, so the host's user needs no access to its path.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    shutil.copy(drivers.path("mocknic"), private / "mocknic.sys")
    text = "[daemon]\nhost_user = \"nobody\"\n" + config_text([(name, wire, peer)]).replace(
        'driver = "mocknic"', f'driver = "{private / "mocknic.sys"}"')
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, text)
        pid = daemon.adapters[name].pid
        with open(f"/proc/{pid}/status") as status:
            uid = next(line.split()[1] for line in status if line.startswith("Uid:"))
        assert int(uid) == pwd.getpwnam("nobody").pw_uid
        assert daemon.adapters[name].sandbox["cap_eff"] == 0
        await trio.to_thread.run_sync(address_host_side, name, f"{HOST_V4}/24",
                                      "2001:db8:a::1/64")
        await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
            peer, wire, addresses=(f"{PEER_V4}/24",)))
        result = await trio.to_thread.run_sync(ping, PEER_V4)
        assert result.returncode == 0, result.stdout
        nursery.cancel_scope.cancel()


def test_the_fork_server_imports_only_what_hosts_run():
    """Every module the fork server imports is in every host's pages: the
    daemon's side (its supervisor, config, control socket, the trio API)
    stays out, and so does pyroute2."""
    script = ("import sys\n"
              "from ndisproxy import driver, host, hostproc, privileges, tap\n"
              "print(' '.join(sorted(sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-I", "-c", script], capture_output=True,
                                text=True, check=True, timeout=60).stdout.split())
    assert "ndisproxy.hostproc" in loaded
    for daemon_side in ("ndisproxy.api", "ndisproxy.daemon", "ndisproxy.config",
                        "ndisproxy.control", "ndisproxy.supervisor", "ndisproxy.store",
                        "pyroute2"):
        assert daemon_side not in loaded

