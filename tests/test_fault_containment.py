"""Driver faults are contained: restarts with backoff and a limit, hang
detection by deadline, CheckForHang and the proxy's heartbeat, states."""
import os
import re
import signal
import textwrap

import pytest
import trio

from ndisproxy import config as configuration
from ndisproxy import netns, tap
from ndisproxy.backoff import Backoff
from ndisproxy.config import RestartPolicy
from ndisproxy.daemon import Daemon
from ndisproxy.supervisor import HostError

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures
from .test_daemon import address_host_side, peer, ping  # noqa: F401 - fixtures

OID_MOCKNIC_FAULT = 0xFF010001
HOST_V4, PEER_V4 = "198.51.100.1", "198.51.100.2"


# -- the backoff schedule -----------------------------------------------------

def test_first_restart_is_immediate_then_delays_double_up_to_the_cap():
    backoff = Backoff(RestartPolicy(delay=0.25, max_delay=1.0, limit=0))
    assert [backoff.after_fault(0.1) for _ in range(6)] == [0.0, 0.25, 0.5, 1.0, 1.0, 1.0]


def test_the_limit_leaves_it_faulted_and_a_reset_forgets():
    backoff = Backoff(RestartPolicy(delay=0.1, limit=3))
    assert [backoff.after_fault(None) for _ in range(4)] == [0.0, 0.1, 0.2, None]
    backoff.forget()
    assert backoff.after_fault(None) == 0.0


def test_a_stable_run_ends_the_row():
    backoff = Backoff(RestartPolicy(delay=0.1, limit=3, stable_after=5))
    assert [backoff.after_fault(1.0) for _ in range(3)] == [0.0, 0.1, 0.2]
    assert backoff.after_fault(5.0) == 0.0          # ran long enough: a first fault again
    assert backoff.faults == 1


# -- the daemon ---------------------------------------------------------------

def config_text(name, wire=None, ns=None, extra="", daemon=""):
    wire_table = (f'kind = "tap"\nifname = "{wire}"\nnetns = "{ns}"' if wire
                  else 'kind = "loopback"')
    return textwrap.dedent(daemon) + f"""
[[adapter]]
name = "{name}"
driver = "mocknic"
{textwrap.dedent(extra)}
[adapter.wire]
{wire_table}
"""


async def start(nursery, text):
    daemon = Daemon(configuration.loads(text, name="<test>"))
    await nursery.start(daemon.run)
    for name in daemon.adapters:
        await daemon.wait_state(name, "running")
    return daemon


async def fire(daemon, name, code):
    """Set OID_MOCKNIC_FAULT; a fault ends the host before it answers."""
    with trio.move_on_after(3):
        try:
            await daemon.request(name, "set", oid=OID_MOCKNIC_FAULT,
                                 data=code.to_bytes(4, "little").hex())
        except (OSError, trio.TooSlowError, HostError):
            pass


def subscribe(daemon, name):
    send, receive = trio.open_memory_channel(1000)
    daemon.adapters[name].subscribers.append(send)
    return receive


def drain(receive):
    events = []
    while True:
        try:
            events.append(receive.receive_nowait())
        except trio.WouldBlock:
            return events


async def test_past_its_limit_an_adapter_stays_faulted_until_reset(require_net):  # noqa: F811
    name = unique_name("npk")
    text = config_text(name, extra="""
        [adapter.restart]
        delay = 0.05
        limit = 2
    """)
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, text)
        state = daemon.adapters[name]
        events = subscribe(daemon, name)
        for restarts in (1, 2):
            await fire(daemon, name, 1)                 # stack overflow
            await daemon.wait_until(lambda: state.restarts == restarts
                                    and state.state == "running", 10)
        await fire(daemon, name, 1)
        await daemon.wait_until(lambda: state.gave_up, 10)
        await trio.sleep(0.5)                           # and it stays so
        assert (state.state, state.restarts, state.carrier) == ("faulted", 2, False)
        assert "stack overflow in MiniportSetInformation" in state.last_fault["error"]
        states = [e["state"] for e in drain(events) if e["kind"] == "state"]
        assert states == ["faulted", "restarting", "initialising", "running"] * 2 + \
            ["faulted", "faulted"], states
        with pytest.raises(Exception, match="not running"):
            await daemon.request(name, "stats")

        assert await daemon.reset(name) == {"restarted": True}
        await daemon.wait_state(name, "running", 10)
        assert not state.gave_up
        # The row was forgotten: the next fault is restarted at once again.
        await fire(daemon, name, 1)
        await daemon.wait_until(lambda: state.restarts == 3 and state.state == "running", 10)
        nursery.cancel_scope.cancel()


async def test_a_data_path_hang_is_caught_within_300_ms(require_net):  # noqa: F811
    name = unique_name("npk")
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, config_text(name))
        state = daemon.adapters[name]
        await fire(daemon, name, 10)            # armed: the next send spins
        sent = trio.current_time()
        # Linux sends on the TAP by itself soon enough (IPv6 DAD, router
        # solicitations); an address makes sure of it.
        await trio.to_thread.run_sync(address_host_side, name, "198.51.100.1/24",
                                      "2001:db8:7::1/64")
        await daemon.wait_until(lambda: state.fault is not None, 10)
        fault = state.fault
        assert fault["kind"] == "DriverTimeoutFault" and fault["entry_point"] == \
            "MiniportSendPackets", fault
        print(f"send hang caught {(state.fault_at - sent) * 1000:.0f} ms after arming; "
              f"deadline 250 ms")
        await daemon.wait_until(lambda: state.state == "running", 10)
        nursery.cancel_scope.cancel()


async def test_deadlines_are_configurable_per_class(require_net):  # noqa: F811
    name = unique_name("npk")
    text = config_text(name, extra="""
        [adapter.deadlines]
        oid = 0.1
    """)
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, text)
        state = daemon.adapters[name]
        start_time = trio.current_time()
        await fire(daemon, name, 3)             # spins in MiniportSetInformation
        await daemon.wait_until(lambda: state.fault is not None, 10)
        elapsed = state.fault_at - start_time
        print(f"OID hang caught after {elapsed * 1000:.0f} ms (deadline 100 ms)")
        assert state.fault["entry_point"] == "MiniportSetInformation"
        assert 0.1 <= elapsed < 0.5, elapsed     # not the 1 s default
        nursery.cancel_scope.cancel()


async def test_a_host_that_stops_answering_is_killed_and_restarted(require_net):  # noqa: F811
    name = unique_name("npk")
    text = config_text(name, daemon="[daemon]\nheartbeat = 0.5\n")
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, text)
        state = daemon.adapters[name]
        stopped = state.pid
        os.kill(stopped, signal.SIGSTOP)
        frozen = trio.current_time()
        await daemon.wait_until(lambda: state.fault is not None, 10)
        print(f"frozen host killed after {(state.fault_at - frozen) * 1000:.0f} ms "
              "(heartbeat 0.5 s)")
        assert state.fault["kind"] == "HostUnresponsive"
        assert f"host pid {stopped} did not answer for 0.5 s" in state.fault["error"]
        await daemon.wait_until(lambda: state.state == "running" and state.restarts == 1, 10)
        assert state.pid != stopped
        assert not os.path.exists(f"/proc/{stopped}"), "the frozen host was not reaped"
        nursery.cancel_scope.cancel()


async def test_check_for_hang_resets_a_wedged_nic_without_a_restart(peer):
    name, wire = unique_name("npk"), unique_name("npw")
    text = config_text(name, wire, peer, extra="hang_check = 0.1")
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, text)
        state = daemon.adapters[name]
        events = subscribe(daemon, name)
        await trio.to_thread.run_sync(address_host_side, name, f"{HOST_V4}/24",
                                      "2001:db8:8::1/64")
        await trio.to_thread.run_sync(lambda: netns.configure_in_netns(
            peer, wire, addresses=(f"{PEER_V4}/24",)))
        assert (await trio.to_thread.run_sync(ping, PEER_V4)).returncode == 0
        pid = state.pid
        await daemon.request(name, "stall")
        # Pings queue on the wedged TX ring; three checks without progress
        # make the driver ask for a reset, which clears the wedge.
        result = await trio.to_thread.run_sync(lambda: ping(PEER_V4, count=20))
        await daemon.wait_until(lambda: state.resets >= 1, 10)
        resets = [e for e in drain(events) if e["kind"] == "reset"]
        assert resets and resets[0]["reason"] == "MiniportCheckForHang reported a hang"
        after = await trio.to_thread.run_sync(ping, PEER_V4)
        assert after.returncode == 0, after.stdout
        assert (state.pid, state.restarts, state.state) == (pid, 0, "running")
        stats = (await daemon.request(name, "stats"))["adapters"][name]
        assert stats["resets"] == state.resets
        print(f"wedged TX reset by CheckForHang; {result.stdout.splitlines()[-2]}")
        nursery.cancel_scope.cancel()


async def test_status_and_events_name_the_states(require_net):  # noqa: F811
    name = unique_name("npk")
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, config_text(name))
        state = daemon.adapters[name]
        events = subscribe(daemon, name)
        reply = await daemon.reset(name)            # MiniportReset on a running adapter
        assert reply["status"] == 0 and reply["addressing_reset"] is True
        states = [e["state"] for e in drain(events) if e["kind"] == "state"]
        assert states == ["resetting", "running"]
        assert state.state == "running"
        nursery.cancel_scope.cancel()
    assert state.state == "halted"


def test_restart_keys_are_validated(tmp_path):
    for extra, problem in (
            ("[adapter.restart]\nlimit = -1", "adapter[0].restart.limit: expected an integer"),
            ("[adapter.restart]\ndelay = 2\nmax_delay = 1", "adapter[0].restart.max_delay: 1.0 "
                                                            "is less than"),
            ("[adapter.deadlines]\nsend = 0", "adapter[0].deadlines.send: expected a number of "
                                              "seconds in 0.01..60"),
            ("[adapter.deadlines]\nsned = 1", 'did you mean "send"'),
            ('verifier_fatal = ["double-completion"]', "adapter[0].verifier_fatal: expected"),
            ("hang_check = true", "adapter[0].hang_check: expected a number of seconds")):
        with pytest.raises(configuration.ConfigError, match=re.escape(problem)):
            configuration.loads(config_text("ndis0", extra=extra))
    with pytest.raises(configuration.ConfigError, match="daemon.heartbeat"):
        configuration.loads(config_text("ndis0", daemon="[daemon]\nheartbeat = 0.01\n"))
    config = configuration.loads(config_text("ndis0", extra="""
        verifier_fatal = ["double-complete"]
        [adapter.deadlines]
        send = 0.1
    """))
    adapter = config.adapters[0]
    assert adapter.deadlines["send"] == 0.1 and adapter.deadlines["oid"] == 1.0
    assert adapter.verifier_fatal == ("double-complete",)
    assert adapter.restart == RestartPolicy()
