"""The public trio API, against real TAPs and driver host processes."""
import socket

import pytest
import trio

import ndisproxy
from ndisproxy import tap

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures

ETHERTYPE = 0x88B5


def frame(dst, src, marker):
    return bytes.fromhex(dst + src) + ETHERTYPE.to_bytes(2, "big") + marker.ljust(46, b".")


def packet_socket(ifname):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    sock.bind((ifname, ETHERTYPE))
    return trio.socket.from_stdlib_socket(sock)


async def test_socket_wire_carries_frames_both_ways_with_loss(require_net):  # noqa: F811
    name = unique_name("npa")
    async with ndisproxy.open_host() as host:
        nic = await host.add_adapter(name, wire=ndisproxy.SocketWire())
        assert nic.state == "running" and nic.pid
        await trio.to_thread.run_sync(tap.set_up, name, True)
        linux = packet_socket(name)
        mac = nic.mac.replace(":", "")
        # cable -> NIC -> driver -> TAP
        await nic.wire.send(frame(mac, "02aabbccddee", b"to-linux"))
        with trio.fail_after(5):
            while b"to-linux" not in await linux.recv(2048):
                pass
        # Linux -> TAP -> driver -> NIC -> cable
        await linux.send(frame("02aabbccddee", mac, b"to-cable"))
        with trio.fail_after(5):
            while b"to-cable" not in await nic.wire.receive():
                pass
        # The knob: everything is lost.
        nic.wire.loss = 1.0
        await nic.wire.send(frame(mac, "02aabbccddee", b"lost"))
        assert nic.wire.dropped == 1
        stats = await nic.stats()
        assert stats["pump"]["tap_in"] >= 1 and stats["pump"]["wire_in"] >= 1
    assert tap.find_tap(name) is None                 # the block removed it


async def test_link_flap_and_fault_arrive_as_events(require_net):  # noqa: F811
    name = unique_name("npe")
    async with ndisproxy.open_host() as host:
        nic = await host.add_adapter(name, wire=ndisproxy.SocketWire())
        seen = []

        async def watch(task_status=trio.TASK_STATUS_IGNORED):
            events = nic.events()
            task_status.started()
            async for event in events:
                seen.append(event)

        async with trio.open_nursery() as nursery:
            await nursery.start(watch)
            async def seen_link(up):
                with trio.fail_after(5):
                    while ("link", up) not in [(e.kind, e.fields.get("up")) for e in seen]:
                        await trio.sleep(0.01)

            await nic.set_link(False)
            await seen_link(False)
            await nic.set_link(True)
            await seen_link(True)
            await nic.inject("crash")
            with trio.fail_after(10):
                while not any(e.kind == "state" and e.fields["state"] == "running"
                              and nic.restarts for e in seen):
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
        kinds = [(e.kind, e.fields.get("up", e.fields.get("state"))) for e in seen]
        assert ("link", False) in kinds and ("link", True) in kinds
        fault = next(e for e in seen if e.kind == "fault")
        assert fault.fields["type"] == "AccessViolationFault"
        assert fault.fields["where"].startswith("mocknic.sys+0x")
        assert kinds.index(("state", "faulted")) < kinds.index(("state", "restarting"))
        assert nic.restarts == 1 and nic.state == "running"


async def test_oids_and_stack_report(require_net):  # noqa: F811
    async with ndisproxy.open_host(isolation="inprocess") as host:
        nic = await host.add_adapter(unique_name("npo"), parameters={"MTU": 9000})
        assert (await nic.query_oid("OID_GEN_MAXIMUM_FRAME_SIZE", 4)).value == 9000
        stack = await nic.stack_report()
        assert 8 * 1024 < stack["entry_points"]["MiniportInitialize"]["high_water"] < 24 * 1024


async def test_bad_arguments_name_the_key(require_net):  # noqa: F811
    async with ndisproxy.open_host() as host:
        with pytest.raises(ndisproxy.config.ConfigError, match="adapter.stack_size"):
            await host.add_adapter(unique_name("npb"), stack_size="8KiB")
        with pytest.raises(ValueError, match="unknown fault"):
            nic = await host.add_adapter(unique_name("npb"))
            await nic.inject("meltdown")


async def test_a_captured_ping_decodes_in_tshark(require_net, tmp_path):  # noqa: F811
    import shutil
    import subprocess

    from ndisproxy import netns
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (scripts/install installs it)")
    ns, name, wire = unique_name("npc"), unique_name("npc"), unique_name("npw")
    await trio.to_thread.run_sync(netns.create_netns, ns)
    try:
        async with ndisproxy.open_host() as host:
            nic = await host.add_adapter(name, wire=ndisproxy.TapWire(wire, netns=ns))
            await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
                ns, wire, addresses=("198.51.100.2/24",)))
            await trio.run_process(["ip", "addr", "add", "198.51.100.1/24", "dev", name])
            path = tmp_path / "ping.pcapng"
            async with nic.capture(path):
                result = await trio.run_process(
                    ["ping", "-c", "3", "-i", "0.1", "-W", "2", "198.51.100.2"],
                    capture_stdout=True, check=False)
            assert result.returncode == 0, result.stdout
            assert (await nic.stats())["host"]["captured"] >= 6
    finally:
        await trio.to_thread.run_sync(lambda: netns.remove_netns(ns, missing_ok=True))
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "icmp", "-T", "fields",
                          "-e", "icmp.type", "-e", "frame.p2p_dir", "-e", "ip.src"],
                         capture_output=True, text=True, check=True).stdout
    lines = [line.split("\t") for line in out.splitlines()]
    print(out)
    assert ["8", "0", "198.51.100.1"] in lines          # echo request, sent by the host
    assert ["0", "1", "198.51.100.2"] in lines          # echo reply, indicated by the driver
