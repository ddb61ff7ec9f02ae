"""The control socket and its CLI verbs against a running `ndisproxy run`."""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from ndisproxy import netns, seccomp, tap

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures


@pytest.fixture
def groups():
    """Extra [daemon] lines for a test; empty by default."""
    return ""


@pytest.fixture
def daemon(require_net, tmp_path, groups):  # noqa: F811
    ns, name, wire = unique_name("npq"), unique_name("npq"), unique_name("npw")
    netns.create_netns(ns)
    # A directory other users can reach (pytest's tmp_path is root's alone).
    rundir = pathlib.Path(tempfile.mkdtemp(prefix="npq", dir="/tmp"))
    os.chmod(rundir, 0o755)
    sock = rundir / "control.sock"
    config = tmp_path / "ndisproxy.toml"
    config.write_text(textwrap.dedent(f"""
        [daemon]
        socket = "{sock}"
        {groups}
        [[adapter]]
        name = "{name}"
        driver = "mocknic"
        [adapter.wire]
        kind = "tap"
        ifname = "{wire}"
        netns = "{ns}"
    """))
    process = subprocess.Popen([sys.executable, "-m", "ndisproxy", "run", "-c", str(config)],
                               stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while "control socket" not in line:
            line = process.stderr.readline()
            assert line, "the daemon ended before its control socket was up"
        deadline = time.monotonic() + 20
        while "running" not in cli(sock, "status").stdout:
            assert time.monotonic() < deadline, "the adapter never came up"
            time.sleep(0.05)
        subprocess.run(["ip", "addr", "add", "198.51.100.1/24", "dev", name], check=True)
        netns.configure_in_netns(ns, wire, addresses=("198.51.100.2/24",))
        yield sock, name, ns
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        netns.remove_netns(ns, missing_ok=True)
        shutil.rmtree(rundir, ignore_errors=True)


def cli(sock, *args, check=False):
    return subprocess.run([sys.executable, "-m", "ndisproxy", *args, "--socket", str(sock)],
                          capture_output=True, text=True, timeout=60, check=check)


def test_status_stats_stack_and_oid_get(daemon):
    sock, name, _ = daemon
    status = json.loads(cli(sock, "status", "--json", check=True).stdout)
    (adapter,) = status["adapters"]
    assert adapter["name"] == name and adapter["state"] == "running" and adapter["link"]
    assert adapter["pid"] and adapter["driver"] == "mocknic" and adapter["uptime"] >= 0
    allowed = len(seccomp.host_filter(0).allowed)
    assert adapter["sandbox"]["seccomp"] == "allowlist"
    assert adapter["sandbox"]["syscalls_allowed"] == allowed
    table = cli(sock, "status", check=True).stdout
    assert table.startswith("ADAPTER") and name in table
    assert "host sandbox: no capabilities, no_new_privs" in table
    assert f"seccomp allowlist of {allowed} system calls" in table
    stats = json.loads(cli(sock, "stats", name, "--json", check=True).stdout)
    assert "OID_GEN_XMIT_OK" in stats["driver"] and "ip -s link" in stats["note"]
    stack = json.loads(cli(sock, "stack", name, "--json", check=True).stdout)["stack"]
    assert 8192 < stack["entry_points"]["MiniportInitialize"]["high_water"] < 24576
    speed = json.loads(cli(sock, "oid", name, "get", "OID_GEN_LINK_SPEED", "--json",
                           check=True).stdout)
    assert speed["value"] == 10_000_000 and speed["status_name"] == "NDIS_STATUS_SUCCESS"
    short = cli(sock, "oid", name, "get", "0x00010107", "--length", "2")
    assert short.returncode == 1 and "NDIS_STATUS_INVALID_LENGTH" in short.stdout


def test_oid_set_of_the_packet_filter_shows_in_behaviour(daemon):
    sock, name, _ = daemon
    ping = ["ping", "-c", "2", "-i", "0.1", "-W", "1", "198.51.100.2"]
    assert subprocess.run(ping, capture_output=True).returncode == 0
    cli(sock, "oid", name, "set", "OID_GEN_CURRENT_PACKET_FILTER", "0", check=True)
    assert subprocess.run(ping, capture_output=True).returncode != 0    # the driver hears nothing


def test_capture_writes_pcapng_that_tshark_decodes(daemon, tmp_path):
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (scripts/install installs it)")
    sock, name, _ = daemon
    path = tmp_path / "c.pcapng"
    capture = subprocess.Popen([sys.executable, "-m", "ndisproxy", "capture", name, "-w",
                                str(path), "--socket", str(sock)],
                               stderr=subprocess.PIPE, text=True)
    started = capture.stderr.readline()     # once the daemon has said yes
    assert started == f"ndisproxy capture: capturing {name} at the miniport boundary\n", started
    subprocess.run(["ping", "-c", "3", "-i", "0.1", "198.51.100.2"], capture_output=True)
    time.sleep(0.3)
    capture.send_signal(signal.SIGINT)            # Ctrl-C ends a capture cleanly
    assert capture.wait(timeout=20) == 0, capture.stderr.read()
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "icmp", "-T", "fields",
                          "-e", "icmp.type"], capture_output=True, text=True).stdout.split()
    assert "8" in out and "0" in out


def test_inject_and_reset(daemon):
    sock, name, _ = daemon
    before = json.loads(cli(sock, "status", "--json", check=True).stdout)["adapters"][0]
    cli(sock, "inject", name, "overflow", check=True)
    deadline = time.monotonic() + 15
    while True:
        after = json.loads(cli(sock, "status", "--json", check=True).stdout)["adapters"][0]
        if after["state"] == "running" and after["restarts"] == 1:
            break
        assert time.monotonic() < deadline, after
        time.sleep(0.1)
    assert after["pid"] != before["pid"] and "stack overflow" in after["last_fault"]
    reset = json.loads(cli(sock, "reset", name, "--json", check=True).stdout)
    assert reset["status_name"] == "NDIS_STATUS_SUCCESS" and reset["addressing_reset"]
    ping = subprocess.run(["ping", "-c", "2", "-i", "0.1", "-W", "2", "198.51.100.2"],
                          capture_output=True)
    assert ping.returncode == 0


def test_bad_requests_get_errors_and_the_daemon_keeps_serving(daemon):
    sock, name, _ = daemon
    pid = _daemon_pid(sock)
    time.sleep(0.2)                                # that connection is closed again
    fds = len(os.listdir(f"/proc/{pid}/fd"))

    def ask(raw):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock))
            s.sendall(raw)
            return json.loads(s.makefile().readline())

    assert "malformed JSON" in ask(b"{nope\n")["error"]
    assert "unknown verb" in ask(b'{"verb": "explode"}\n')["error"]
    assert "unknown adapter" in ask(b'{"verb": "stats", "adapter": "eth0"}\n')["error"]
    assert "verb" in ask(b"[1, 2]\n")["error"]
    assert "longer than" in ask(b"x" * 70000)["error"]
    for _ in range(100):
        assert not ask(b"{bad\n")["ok"]
    assert cli(sock, "status", "--json", check=True).returncode == 0
    assert settled_fds(pid, fds) == fds
    unreachable = cli(tmp := sock.with_name("none.sock"), "status")
    assert unreachable.returncode == 3 and str(tmp) in unreachable.stderr


def settled_fds(pid, want, timeout=10):
    """The daemon's fd count once it stops changing towards ``want`` (closing
    50 connections takes the daemon a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        count = len(os.listdir(f"/proc/{pid}/fd"))
        if count == want or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def _daemon_pid(sock):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int.from_bytes(creds[:4], "little")


def as_user(uid, gid, sock, *args):
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                           sys.executable, "-m", "ndisproxy", *args, "--socket", str(sock)],
                          capture_output=True, text=True, timeout=60, cwd="/")


def test_a_user_outside_the_groups_is_refused(daemon):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    sock, _, _ = daemon
    refused = as_user(65534, 65534, sock, "status")
    assert refused.returncode == 3 and "Permission denied" in refused.stderr


@pytest.mark.parametrize("groups", ['group = "nogroup"\nadmin_group = "daemon"'])
def test_read_only_members_cannot_mutate_admins_can(daemon):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    import grp
    sock, name, _ = daemon
    nogroup, admins = grp.getgrnam("nogroup").gr_gid, grp.getgrnam("daemon").gr_gid
    assert as_user(65534, nogroup, sock, "status").returncode == 0
    denied = as_user(65534, nogroup, sock, "oid", name, "set", "OID_GEN_CURRENT_PACKET_FILTER",
                     "0x0b")
    assert denied.returncode == 1 and "permission denied" in denied.stderr
    allowed = as_user(65534, admins, sock, "oid", name, "set", "OID_GEN_CURRENT_PACKET_FILTER",
                      "0x0b")
    assert allowed.returncode == 0, allowed.stderr
    stranger = as_user(65534, 65534 - 1, sock, "status")
    assert stranger.returncode == 1 and "permission denied" in stranger.stderr


def test_1000_bad_requests_and_50_clients_while_traffic_flows(daemon):
    import threading
    sock, name, _ = daemon
    pid = _daemon_pid(sock)
    time.sleep(0.2)
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    flood = subprocess.Popen(["ping", "-i", "0.01", "-c", "300", "198.51.100.2"],
                             stdout=subprocess.PIPE, text=True)
    bad = [b"{nope\n", b'{"verb": 7}\n', b'{"verb": "nope"}\n', b"[]\n",
           b'{"verb": "stats", "adapter": "eth0"}\n', b"\xff\xfe\n"]
    errors = []

    def client(k):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(20)
                s.connect(str(sock))
                reader = s.makefile("rb")
                for i in range(20):
                    s.sendall(bad[(k + i) % len(bad)])
                    if json.loads(reader.readline())["ok"]:
                        errors.append(f"client {k}: a bad request was accepted")
                s.sendall(b'{"verb": "status"}\n')
                if not json.loads(reader.readline())["ok"]:
                    errors.append(f"client {k}: status failed")
        except Exception as exc:          # noqa: BLE001 - collected for the assertion
            errors.append(f"client {k}: {exc!r}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, _ = flood.communicate(timeout=60)
    assert errors == []                                      # 50 x 20 = 1000 bad requests
    assert " 0% packet loss" in out, out[-300:]              # the data path was unaffected
    assert settled_fds(pid, fds) == fds                      # every connection closed again


def test_reset_while_pinging_every_10ms_loses_at_most_50(daemon):
    sock, name, _ = daemon
    flood = subprocess.Popen(["ping", "-i", "0.01", "-c", "400", "-W", "1", "198.51.100.2"],
                             stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    reset = cli(sock, "reset", name, "--json", check=True)
    assert json.loads(reset.stdout)["status_name"] == "NDIS_STATUS_SUCCESS"
    out, _ = flood.communicate(timeout=60)
    line = next(line for line in out.splitlines() if "packets transmitted" in line)
    sent, received = int(line.split()[0]), int(line.split()[3])
    print(f"reset during a 10 ms ping: {sent - received} of {sent} lost")
    assert sent - received <= 50 and received > 0
    after = subprocess.run(["ping", "-c", "2", "-i", "0.1", "-W", "1", "198.51.100.2"],
                           capture_output=True)
    assert after.returncode == 0                             # recovered
