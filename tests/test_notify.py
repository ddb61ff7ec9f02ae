"""sd_notify and SIGHUP reload against a test-owned NOTIFY_SOCKET."""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from ndisproxy import tap
from ndisproxy.notify import Notifier

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures


def adapter_toml(name):
    return textwrap.dedent(f"""
        [[adapter]]
        name = "{name}"
        driver = "mocknic"
        [adapter.wire]
        kind = "loopback"
    """)


class Listener:
    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(20)

    def next(self):
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines())

    def until(self, key):
        seen = []
        while True:
            message = self.next()
            seen.append(message)
            if key in message:
                return message, seen


@pytest.mark.parametrize("abstract", [False, True])
def test_ready_watchdog_reload_and_stopping(require_net, tmp_path, abstract):  # noqa: F811
    a, b = unique_name("npn"), unique_name("npn")
    address = f"\0npnotify{os.getpid()}{abstract}" if abstract else str(tmp_path / "notify")
    listener = Listener(address)
    config = tmp_path / "ndisproxy.toml"
    config.write_text(f'[daemon]\nsocket = "{tmp_path}/c.sock"\n' + adapter_toml(a))
    env = dict(os.environ, NOTIFY_SOCKET="@" + address[1:] if abstract else address,
               WATCHDOG_USEC="400000")
    daemon = subprocess.Popen([sys.executable, "-m", "ndisproxy", "run", "-c", str(config)],
                              env=env, stderr=subprocess.PIPE, text=True)
    try:
        ready, seen = listener.until("READY")
        assert tap.find_tap(a) is not None                      # READY only after the TAP
        assert "running" in ready["STATUS"] and a in ready["STATUS"]
        start = time.monotonic()
        pings = 0
        while pings < 3:
            if "WATCHDOG" in listener.next():
                pings += 1
        print(f"3 watchdog pings in {time.monotonic() - start:.2f} s (period 0.2 s)")
        assert time.monotonic() - start < 2

        # Reload with a second adapter: only it starts.
        config.write_text(config.read_text() + adapter_toml(b))
        index_a = tap.find_tap(a).index
        daemon.send_signal(signal.SIGHUP)
        reloading, _ = listener.until("RELOADING")
        assert int(reloading["MONOTONIC_USEC"]) > 0
        ready, _ = listener.until("READY")
        assert tap.find_tap(b) is not None and tap.find_tap(a).index == index_a

        # A bad config is logged and the running one stays.
        good = config.read_text()
        config.write_text(good + "\nbogus = 1\n")
        daemon.send_signal(signal.SIGHUP)
        ready, _ = listener.until("READY")
        assert "reload failed" in ready["STATUS"] and "bogus" in ready["STATUS"]
        assert tap.find_tap(a) is not None and tap.find_tap(b) is not None

        daemon.send_signal(signal.SIGTERM)
        stopping, _ = listener.until("STOPPING")
        assert daemon.wait(timeout=20) == 0
        assert tap.find_tap(a) is None and tap.find_tap(b) is None
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        for name in (a, b):
            tap.delete_tap(name, missing_ok=True) if tap.find_tap(name) else None


def test_without_notify_socket_nothing_is_sent():
    notifier = Notifier({})
    notifier.ready("x")                                  # a no-op, no error
    assert notifier.address is None and notifier.watchdog_period() is None
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_period() is None
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_period() == 15
