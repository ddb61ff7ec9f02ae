"""The systemd units in systemd/: verified, scored, and run under a real systemd.

(a) ``systemd-analyze verify`` accepts ndisproxy.service and an instance of
    ndisproxy@.service (and both with the netns drop-in docs/systemd.md gives);
(b) ``systemd-analyze security --offline=yes`` scores them, as shipped, at
    MAX_EXPOSURE or lower (the scores are printed);
(c) under a throw-away systemd (tools/run-under-systemd.sh, with a network
    namespace of its own, so every TAP made lives and dies in there), the
    service becomes active and shows its STATUS=, answers a [daemon] group
    member, reloads, stops with Result=success; a daemon frozen with SIGSTOP
    is killed by the watchdog and restarted; a template instance puts its
    socket in /run/ndisproxy/NAME and, with the netns drop-in, wires adapters
    into named namespaces (one made after the start); and the driver hosts'
    own sandbox (capabilities dropped, no_new_privs, Landlock, seccomp) still
    works inside the unit's.

The copies the tests use differ from the shipped units in ExecStart's binary
(this interpreter's ``ndisproxy``) and the config path only.  The runs add a
drop-in: DefaultDependencies=no (the throw-away systemd has no sysinit.target),
a short watchdog, no core files, and what makes the interpreter and the config
visible in the sandbox - ProtectHome=read-only for /root or /home,
BindReadOnlyPaths= for /tmp, which PrivateTmp= hides.  (The rulings: the
shipped unit is scored as shipped; a test may add a drop-in.)

(a) and (b) skip without systemd-analyze or root; (c) also without
/dev/net/tun, systemd, unshare, nsenter and a cgroup2 mount.  With
NDISPROXY_REQUIRE_NET=1 they fail instead.
"""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import ndisproxy
from ndisproxy import privileges, seccomp

from .netfixtures import REQUIRE_ENV, unique_name, why_no_net

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "systemd"
RUNNER = REPO / "tools" / "run-under-systemd.sh"
DOCS = REPO / "docs" / "systemd.md"
INSTALLED_BIN = "/usr/local/bin/ndisproxy"
MAX_EXPOSURE = 2.5
WATCHDOG_SEC = 4            # the test drop-in's; the shipped unit says 30 s
CAP_SETPCAP, CAP_NET_ADMIN = 8, 12
NETNS_DROPIN_HEADER = "# /etc/systemd/system/ndisproxy.service.d/netns.conf"


def _skip_or_fail(reason):
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires the systemd tests to run")
    pytest.skip(reason)


def _analyze():
    path = shutil.which("systemd-analyze")
    if path is None:
        _skip_or_fail("systemd-analyze is not installed")
    if os.geteuid() != 0:
        _skip_or_fail("the systemd tests run as root")
    return path


def _ndisproxy_bin():
    """The ``ndisproxy`` script of the installation under test."""
    beside = Path(sys.executable).parent / "ndisproxy"
    found = beside if beside.exists() else shutil.which("ndisproxy")
    assert found, f"no ndisproxy script next to {sys.executable} or on PATH"
    return Path(found)


def unit_text(name, config_dir=None):
    """A shipped unit with ExecStart pointed at the test's install (and its
    config at ``config_dir``); nothing else changes."""
    text = (SHIPPED / name).read_text()
    assert f"ExecStart={INSTALLED_BIN} run --config /etc/ndisproxy/" in text
    text = text.replace(INSTALLED_BIN, str(_ndisproxy_bin()))
    if config_dir is not None:
        text = text.replace("--config /etc/ndisproxy/", f"--config {config_dir}/")
    return text


def netns_dropin():
    """The netns drop-in exactly as docs/systemd.md gives it."""
    blocks = re.findall(r"```ini\n(.*?)```", DOCS.read_text(), re.S)
    found = [b for b in blocks if b.startswith(NETNS_DROPIN_HEADER)]
    assert len(found) == 1, f"docs/systemd.md: one ```ini block starting {NETNS_DROPIN_HEADER!r}"
    return found[0]


def write_units(directory, config_dir=None, netns=False):
    """Copies of both units (and the docs' netns drop-in) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("ndisproxy.service", "ndisproxy@.service"):
        (directory / name).write_text(unit_text(name, config_dir))
        if netns:
            (directory / f"{name}.d").mkdir(exist_ok=True)
            (directory / f"{name}.d" / "netns.conf").write_text(netns_dropin())
    return directory


# -- (a) verify ----------------------------------------------------------------


@pytest.mark.parametrize("netns", [False, True], ids=["shipped", "with-netns-dropin"])
def test_units_verify(tmp_path, netns):
    analyze = _analyze()
    units = write_units(tmp_path / "units", netns=netns)
    # An instance, not the bare template: only then is the template's every
    # line checked (the template is found beside the instance name).
    for unit in (units / "ndisproxy.service", units / "ndisproxy@verify.service"):
        result = subprocess.run([analyze, "verify", "--recursive-errors=one", "--man=no",
                                 str(unit)], capture_output=True, text=True, timeout=120)
        complaints = [line for line in result.stderr.splitlines() if "ndisproxy" in line]
        assert result.returncode == 0 and not complaints, \
            f"{unit.name}: exit {result.returncode}\n{result.stderr}"


def test_template_differs_from_the_main_unit_only_where_it_must():
    main = (SHIPPED / "ndisproxy.service").read_text()
    template = (SHIPPED / "ndisproxy@.service").read_text()

    def body(text):
        return [line for line in text[text.index("[Unit]"):].splitlines()
                if line and not line.startswith("#")]
    expected = [line.replace("ndisproxy.toml", "%i.toml")
                .replace("Description=ndisproxy NDIS driver host",
                         "Description=ndisproxy NDIS driver host (%i)")
                .replace("RuntimeDirectory=ndisproxy", "RuntimeDirectory=ndisproxy/%i")
                .replace("RuntimeDirectoryPreserve=yes", "RuntimeDirectoryPreserve=restart")
                for line in body(main)]
    assert body(template) == expected


def test_docs_instance_example_puts_its_socket_in_its_runtime_directory(tmp_path):
    from ndisproxy import config as configuration
    text = DOCS.read_text()
    found = re.search(r"```toml\n# /etc/ndisproxy/(\w+)\.toml, for ndisproxy@\1\.service\n"
                      r"(.*?)```", text, re.S)
    assert found, "docs/systemd.md: the instance example"
    instance = found.group(1)
    path = tmp_path / f"{instance}.toml"
    path.write_text(found.group(2))
    loaded = configuration.load(path)
    assert str(loaded.daemon.socket) == f"/run/ndisproxy/{instance}/control.sock"


# -- (b) exposure -----------------------------------------------------------------


def exposure(analyze, unit):
    result = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=120)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert result.returncode == 0 and found, f"exit {result.returncode}\n{result.stdout}" \
                                             f"{result.stderr}"
    return float(found.group(1)), result.stdout


def test_exposure_as_shipped(tmp_path):
    analyze = _analyze()
    units = write_units(tmp_path / "units")
    for unit in (units / "ndisproxy.service", units / "ndisproxy@score.service"):
        score, table = exposure(analyze, unit)
        print(f"{unit.name}: exposure {score}")
        assert score <= MAX_EXPOSURE, f"{unit.name}: exposure {score} > {MAX_EXPOSURE}\n{table}"
    # For the record (not a bound): what the netns drop-in costs.
    with_netns = write_units(tmp_path / "netns", netns=True)
    score, _ = exposure(analyze, with_netns / "ndisproxy.service")
    print(f"ndisproxy.service + netns.conf: exposure {score}")


# -- (c) a throw-away systemd -----------------------------------------------------


def _under(path, roots):
    path = os.path.realpath(path)
    return any(path == root or path.startswith(root + "/") for root in roots)


def visibility_lines(paths):
    """Drop-in lines that let the service see ``paths`` (its interpreter,
    package and config) through ProtectHome= and PrivateTmp=."""
    lines = []
    if any(_under(p, ("/root", "/home", "/run/user")) for p in paths):
        lines.append("ProtectHome=read-only")
    binds = sorted({os.path.realpath(p) for p in paths if _under(p, ("/tmp", "/var/tmp"))})
    if binds:
        lines.append("BindReadOnlyPaths=" + " ".join(binds))
    return lines


class Throwaway:
    """A systemd booted by tools/run-under-systemd.sh; commands run inside
    its mount, pid, network and cgroup namespaces."""

    def __init__(self, pid, state):
        self.pid = pid
        self.state = state          # the test's directory (units, configs)

    def run(self, *cmd, timeout=90):
        return subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-p", "-n", "-C", "--",
                               *map(str, cmd)], capture_output=True, text=True,
                              timeout=timeout)

    def systemctl(self, *args, timeout=90):
        result = self.run("systemctl", *args, timeout=timeout)
        assert result.returncode == 0, (f"systemctl {' '.join(args)}: exit "
                                        f"{result.returncode}\n{result.stderr}\n"
                                        f"{self.journal(args[-1])}")
        return result

    def show(self, unit, *props):
        out = self.run("systemctl", "show", "-p", ",".join(props), unit).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_for(self, unit, predicate, what, timeout=45):
        props = ("ActiveState", "SubState", "Result", "StatusText", "MainPID", "NRestarts")
        deadline = time.monotonic() + timeout
        while True:
            shown = self.show(unit, *props)
            if predicate(shown):
                return shown
            if time.monotonic() > deadline:
                pytest.fail(f"{unit}: not {what} after {timeout} s: {shown}\n"
                            f"{self.journal(unit)}")
            time.sleep(0.2)

    def journal(self, unit):
        return self.run("journalctl", "--no-pager", "-o", "short-monotonic", "-u", unit,
                        timeout=30).stdout

    def link_exists(self, name, netns=None):
        cmd = (["ip", "netns", "exec", netns] if netns else []) + ["ip", "link", "show", name]
        return self.run(*cmd).returncode == 0

    def path_exists(self, path):
        return self.run("test", "-e", path).returncode == 0

    def status(self, socket_path):
        result = self.run(_ndisproxy_bin(), "status", "--json", "--socket", socket_path)
        assert result.returncode == 0, f"ndisproxy status: {result.stdout}{result.stderr}"
        return {a["name"]: a for a in json.loads(result.stdout)["adapters"]}

    def proc_status(self, pid):
        text = self.run("cat", f"/proc/{pid}/status").stdout
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def adapter_toml(name, wire=None):
    wire = wire or 'kind = "loopback"'
    return textwrap.dedent(f"""
        [[adapter]]
        name = "{name}"
        driver = "mocknic"
        [adapter.wire]
        """) + wire + "\n"


def _throwaway_requirements():
    if os.geteuid() != 0:
        return "not running as root"
    reason = why_no_net()
    if reason:
        return reason
    for tool in ("unshare", "nsenter", "systemctl", "journalctl", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.access("/lib/systemd/systemd", os.X_OK):
        return "no /lib/systemd/systemd"
    if not any(os.path.ismount(m) and _is_cgroup2(m)
               for m in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")):
        return "no cgroup2 hierarchy mounted"
    return None


def _is_cgroup2(mount):
    return subprocess.run(["stat", "-f", "-c", "%T", mount], capture_output=True,
                          text=True).stdout.strip() == "cgroup2fs"


PROBE = r'''
"""What the unit lets the daemon and (after the hosts' own steps) a host do."""
import json, os, socket, sys
from ndisproxy import privileges, seccomp

def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as exc:
        return exc.strerror or str(exc)

def sock(family, kind, proto=0):
    return lambda: socket.socket(family, kind, proto).close()

report = {"daemon": privileges.capability_sets()}
report["daemon_tun"] = attempt(lambda: os.close(os.open("/dev/net/tun", os.O_RDWR)))
report["families"] = {
    "unix": attempt(sock(socket.AF_UNIX, socket.SOCK_DGRAM)),
    "netlink": attempt(sock(socket.AF_NETLINK, socket.SOCK_RAW, 0)),
    "inet": attempt(sock(socket.AF_INET, socket.SOCK_DGRAM)),
    "inet6": attempt(sock(socket.AF_INET6, socket.SOCK_DGRAM)),
    "packet": attempt(sock(socket.AF_PACKET, socket.SOCK_RAW)),
}
# What the fork server and a driver host do to themselves (forkserver.py,
# hostproc.py), in the same order, under the unit's system call filter.
privileges.drop_capabilities()
privileges.set_no_new_privs()
report["landlock"] = privileges.restrict_filesystem_to_reading()
report["seccomp"] = len(seccomp.install_host_filter().allowed)
report["host"] = privileges.capability_sets()
report["host_tun"] = attempt(lambda: os.close(os.open("/dev/net/tun", os.O_RDWR)))
report["host_write"] = attempt(lambda: open(sys.argv[1], "w").close())
print(json.dumps(report))
'''


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    """One throw-away systemd for this module's run tests, with copies of
    both units (config dir: ``sd.state / "etc"``) and the test drop-ins."""
    reason = _throwaway_requirements()
    if reason:
        _skip_or_fail(f"cannot boot a throw-away systemd: {reason}")
    state = tmp_path_factory.mktemp("systemd")
    etc = state / "etc"
    etc.mkdir()
    units = write_units(state / "units", config_dir=etc)
    seen = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)),
            os.path.dirname(ndisproxy.__file__), str(state)]
    test_dropin = "\n".join(["[Unit]", "DefaultDependencies=no", "[Service]",
                             f"WatchdogSec={WATCHDOG_SEC}s", "LimitCORE=0",
                             *visibility_lines(seen)]) + "\n"
    for name in ("ndisproxy.service", "ndisproxy@.service"):
        (units / f"{name}.d").mkdir()
        (units / f"{name}.d" / "test.conf").write_text(test_dropin)
    # The probe: the shipped [Service] sandbox, another program.
    (state / "probe.py").write_text(PROBE)
    (units / "ndisproxy-probe.service").write_text(unit_text("ndisproxy.service", etc))
    probe_dropins = units / "ndisproxy-probe.service.d"
    probe_dropins.mkdir()
    (probe_dropins / "test.conf").write_text(test_dropin + textwrap.dedent(f"""
        Type=oneshot
        ExecStart=
        ExecStart={sys.executable} -I {state}/probe.py /run/ndisproxy/probe-wrote-this
        ExecReload=
        WatchdogSec=0
        Restart=no
        StandardOutput=file:{state}/probe.json
        """))

    pidfile = state / "systemd.pid"
    log = open(state / "runner.log", "w+")
    runner = subprocess.Popen(
        ["bash", str(RUNNER), "--net", "-u", str(units), "--",
         "sh", "-c", f'echo "$SDPROBE_PID" > {pidfile}; exec cat >/dev/null'],
        stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (pidfile.exists() and pidfile.read_text().strip()):
            if runner.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"the throw-away systemd did not come up:\n{log.read()}")
            time.sleep(0.1)
        yield Throwaway(int(pidfile.read_text()), state)
    finally:
        runner.stdin.close()            # CMD ends; the runner tears systemd down
        try:
            runner.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGTERM)
            runner.wait(timeout=30)
        log.seek(0)
        print(log.read())
        log.close()


def main_config(sd, *adapters, group=None):
    (sd.state / "etc" / "ndisproxy.toml").write_text(
        '[daemon]\nsocket = "/run/ndisproxy/control.sock"\n'
        + (f'group = "{group}"\n' if group else "")
        + "".join(adapter_toml(a) for a in adapters))


STATUS_CLIENT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"verb": "status"}\\n')
print(s.makefile().readline())
"""


def nobody():
    """(uid, gid, group name) of the user nobody, or None."""
    import grp
    import pwd
    try:
        user = pwd.getpwnam("nobody")
        return user.pw_uid, user.pw_gid, grp.getgrgid(user.pw_gid).gr_name
    except KeyError:
        return None


def test_service_starts_reports_reloads_and_stops(sd):
    unit, sock = "ndisproxy.service", "/run/ndisproxy/control.sock"
    first, second = unique_name("npsd"), unique_name("npsd")
    user = nobody()
    main_config(sd, first, group=user[2] if user else None)

    sd.systemctl("start", unit)
    shown = sd.show(unit, "ActiveState", "SubState", "StatusText", "MainPID")
    print(f"after start: {shown}")
    assert (shown["ActiveState"], shown["SubState"]) == ("active", "running")
    assert f"{first} running" in shown["StatusText"]             # READY=1 came with STATUS=
    main_pid = shown["MainPID"]
    adapters = sd.status(sock)
    assert adapters[first]["state"] == "running"
    assert sd.link_exists(first)
    # The daemon keeps only the unit's capabilities; its host drops them all.
    daemon = sd.proc_status(main_pid)
    host = sd.proc_status(adapters[first]["pid"])
    assert int(daemon["CapBnd"], 16) == (1 << CAP_NET_ADMIN) | (1 << CAP_SETPCAP)
    assert int(daemon["CapEff"], 16) == (1 << CAP_NET_ADMIN) | (1 << CAP_SETPCAP)
    assert int(host["CapEff"], 16) == int(host["CapBnd"], 16) == 0
    assert host["NoNewPrivs"].strip() == "1" and host["Seccomp"].strip() == "2"
    # [daemon] group: a member who is not root reaches the socket through
    # /run/ndisproxy (RuntimeDirectoryMode=0755) and may ask for the status.
    client = "/usr/bin/python3"         # an interpreter nobody may run
    if user and os.access(client, os.X_OK) and shutil.which("setpriv"):
        uid, gid, _ = user
        asked = sd.run("setpriv", f"--reuid={uid}", f"--regid={gid}", f"--groups={gid}",
                       client, "-I", "-c", STATUS_CLIENT, sock)
        assert asked.returncode == 0, asked.stderr
        reply = json.loads(asked.stdout)
        assert reply["ok"] and reply["adapters"][0]["name"] == first, reply
    else:
        print("note: group access not checked (no nobody, /usr/bin/python3 or setpriv)")

    # Reload: the daemon re-reads the file (RELOADING=1 ... READY=1).
    main_config(sd, first, second)
    sd.systemctl("reload", unit)
    shown = sd.wait_for(unit, lambda p: p["ActiveState"] == "active"
                        and p["SubState"] == "running"
                        and f"{second} running" in p["StatusText"], "reloaded")
    print(f"after reload: {shown}")
    assert shown["MainPID"] == main_pid                       # reloaded, not restarted
    assert sd.link_exists(second)
    assert set(sd.status(sock)) == {first, second}

    # Stop: SIGTERM, STOPPING=1, the TAPs removed, exit 0.
    sd.systemctl("stop", unit)
    shown = sd.show(unit, "ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
    print(f"after stop: {shown}")
    assert shown["ActiveState"] == "inactive"
    assert shown["Result"] == "success" and shown["ExecMainStatus"] == "0"
    assert not sd.link_exists(first) and not sd.link_exists(second)
    assert not sd.path_exists(sock)


def test_watchdog_kills_and_restarts_a_frozen_daemon(sd):
    unit = "ndisproxy.service"
    name = unique_name("npsd")
    main_config(sd, name)
    sd.systemctl("start", unit)
    before = sd.show(unit, "MainPID", "NRestarts")
    assert before["NRestarts"] == "0"
    frozen = time.monotonic()
    assert sd.run("kill", "-STOP", before["MainPID"]).returncode == 0
    shown = sd.wait_for(unit, lambda p: p["NRestarts"] == "1" and p["ActiveState"] == "active"
                        and p["SubState"] == "running" and p["MainPID"] != before["MainPID"],
                        "restarted by the watchdog", timeout=20 * WATCHDOG_SEC)
    print(f"frozen -> running again in {time.monotonic() - frozen:.1f} s "
          f"(WatchdogSec={WATCHDOG_SEC}s): {shown}")
    journal = sd.journal(unit)
    assert "Watchdog timeout" in journal, journal
    assert f"{name} running" in shown["StatusText"]
    sd.systemctl("stop", unit)
    assert sd.show(unit, "Result")["Result"] == "success"
    # (The TAP may survive this stop: the restarted daemon re-attached it,
    # and does not count it as created by itself.)
    if sd.link_exists(name):
        print(f"note: {name} was left after the stop that followed the watchdog restart")


def test_kill_9_of_the_daemon_keeps_the_link_and_traffic_resumes(sd):
    """The TAP is persistent while the daemon runs: a SIGKILLed daemon leaves
    it, with its addresses; systemd restarts the daemon, which re-attaches
    it (and its wire) by their marks, and pings flow again."""
    unit, sock = "ndisproxy.service", "/run/ndisproxy/control.sock"
    peer, name, wire = unique_name("npsd"), unique_name("npsd"), unique_name("npsd")
    dropin_dir = sd.state / "units" / "ndisproxy.service.d"
    dropin_dir.mkdir(exist_ok=True)
    (dropin_dir / "netns.conf").write_text(netns_dropin())
    sd.systemctl("daemon-reload")
    assert sd.run("ip", "netns", "add", peer).returncode == 0
    try:
        (sd.state / "etc" / "ndisproxy.toml").write_text(
            f'[daemon]\nsocket = "{sock}"\n'
            + adapter_toml(name, f'kind = "tap"\nifname = "{wire}"\nnetns = "{peer}"'))
        sd.systemctl("start", unit)
        assert sd.status(sock)[name]["state"] == "running"
        for cmd in (("ip", "addr", "add", "198.51.100.1/24", "dev", name),
                    ("ip", "netns", "exec", peer, "ip", "addr", "add", "198.51.100.2/24",
                     "dev", wire)):
            assert sd.run(*cmd).returncode == 0
        ping = ("ping", "-c", "3", "-i", "0.05", "-W", "2", "198.51.100.2")
        assert sd.run(*ping).returncode == 0
        index = sd.run("cat", f"/sys/class/net/{name}/ifindex").stdout
        before = sd.show(unit, "MainPID", "NRestarts")
        killed = time.monotonic()
        assert sd.run("kill", "-9", before["MainPID"]).returncode == 0
        shown = sd.wait_for(unit, lambda p: p["NRestarts"] == "1" and p["SubState"] == "running"
                            and p["MainPID"] != before["MainPID"]
                            and f"{name} running" in p["StatusText"], "restarted")
        # The same interface, its address kept; traffic through the new host.
        assert sd.run("cat", f"/sys/class/net/{name}/ifindex").stdout == index
        assert "198.51.100.1/24" in sd.run("ip", "-o", "addr", "show", "dev", name).stdout
        resumed = sd.run("ping", "-c", "3", "-i", "0.05", "-w", "10", "198.51.100.2")
        print(f"kill -9 -> running and pinging again in {time.monotonic() - killed:.1f} s "
              f"(RestartSec=2s): {resumed.stdout.splitlines()[-2]}")
        assert resumed.returncode == 0, resumed.stdout + sd.journal(unit)
        sd.systemctl("stop", unit)
        assert sd.show(unit, "Result")["Result"] == "success"
    finally:
        (dropin_dir / "netns.conf").unlink()
        sd.run("systemctl", "stop", unit)
        sd.run("systemctl", "daemon-reload")
        sd.run("ip", "link", "del", name)
        sd.run("ip", "netns", "del", peer)


def test_template_instance_and_netns_dropin(sd):
    instance = "t" + secrets.token_hex(4)
    early, late = unique_name("npsd"), unique_name("npsd")        # namespaces
    name, wire, name2, wire2 = (unique_name("npsd") for _ in range(4))
    unit, sock = f"ndisproxy@{instance}.service", f"/run/ndisproxy/{instance}/control.sock"
    config = sd.state / "etc" / f"{instance}.toml"
    # Tap wires into a named namespace need the docs' netns drop-in.
    dropin_dir = sd.state / "units" / "ndisproxy@.service.d"
    (dropin_dir / "netns.conf").write_text(netns_dropin())
    sd.systemctl("daemon-reload")
    assert sd.run("ip", "netns", "add", early).returncode == 0
    try:
        config.write_text(f'[daemon]\nsocket = "{sock}"\n'
                          + adapter_toml(name, f'kind = "tap"\nifname = "{wire}"\n'
                                               f'netns = "{early}"'))
        main_config(sd, unique_name("npsd"))
        sd.systemctl("start", unit)
        sd.systemctl("start", "ndisproxy.service")
        shown = sd.show(unit, "ActiveState", "StatusText")
        print(f"{unit}: {shown}")
        assert shown["ActiveState"] == "active" and f"{name} running" in shown["StatusText"]
        assert sd.status(sock)[name]["state"] == "running"
        assert sd.link_exists(wire, netns=early)
        # A namespace made after the start reaches the service by mount
        # propagation; a reload brings up an adapter wired into it.
        assert sd.run("ip", "netns", "add", late).returncode == 0
        config.write_text(config.read_text()
                          + adapter_toml(name2, f'kind = "tap"\nifname = "{wire2}"\n'
                                                f'netns = "{late}"'))
        sd.systemctl("reload", unit)
        sd.wait_for(unit, lambda p: p["SubState"] == "running"
                    and f"{name2} running" in p["StatusText"], "reloaded")
        assert sd.link_exists(wire2, netns=late)
        # Stopping ndisproxy.service leaves the instance's /run/ndisproxy/NAME.
        sd.systemctl("stop", "ndisproxy.service")
        assert sd.path_exists(sock) and sd.status(sock)[name]["state"] == "running"
        sd.systemctl("stop", unit)
        shown = sd.show(unit, "ActiveState", "Result")
        assert (shown["ActiveState"], shown["Result"]) == ("inactive", "success")
        assert not sd.path_exists(f"/run/ndisproxy/{instance}")
        assert not sd.link_exists(name) and not sd.link_exists(wire, netns=early)
        assert not sd.link_exists(name2) and not sd.link_exists(wire2, netns=late)
    finally:
        (dropin_dir / "netns.conf").unlink()
        sd.run("systemctl", "stop", unit, "ndisproxy.service")
        sd.run("systemctl", "daemon-reload")
        for ns in (early, late):
            sd.run("ip", "netns", "del", ns)


def test_hosts_sandbox_works_inside_the_units_sandbox(sd):
    """The hosts are children of the service: its system call filter and
    address families apply to them.  A oneshot copy of the unit runs the
    hosts' privilege-dropping steps and reports."""
    out = sd.state / "probe.json"
    out.unlink(missing_ok=True)
    sd.systemctl("start", "ndisproxy-probe.service")
    report = json.loads(out.read_text())
    print(json.dumps(report, indent=1))
    granted = (1 << CAP_NET_ADMIN) | (1 << CAP_SETPCAP)
    assert report["daemon"]["CapEff"] == report["daemon"]["CapBnd"] == granted
    assert report["daemon_tun"] == "ok"
    families = report["families"]
    assert families["unix"] == families["netlink"] == families["inet"] == "ok", families
    if socket_family_works("AF_INET6"):
        assert families["inet6"] == "ok", families
    assert families["packet"] == os.strerror(97), families      # EAFNOSUPPORT
    assert report["host"]["CapEff"] == report["host"]["CapPrm"] == 0
    assert report["host"]["CapBnd"] == 0
    # Landlock wherever the kernel has it: the filter must not hide it.
    assert report["landlock"] == (privileges.landlock_abi() > 0)
    if report["landlock"]:
        assert report["host_tun"] != "ok" and report["host_write"] != "ok", report
    # The hosts' allowlist stacks on the unit's filter; it refuses writes
    # and /dev/net/tun by itself, Landlock or not.
    assert report["seccomp"] == len(seccomp.host_filter(0).allowed)
    assert report["host_tun"] == report["host_write"] == os.strerror(1), report


def socket_family_works(family):
    import socket
    try:
        socket.socket(getattr(socket, family), socket.SOCK_DGRAM).close()
        return True
    except OSError:
        return False
