"""``ndisproxy demo`` as a user runs it: ``python -m ndisproxy demo`` in a
subprocess, then a look at the system to see that nothing was left.

The end-to-end runs need root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and ping; they
skip otherwise (fail with NDISPROXY_REQUIRE_NET=1).  The refusal without
privileges, the chart and the embedded configuration need neither.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from ndisproxy import config as configuration
from ndisproxy import demo

from .netfixtures import REQUIRE_ENV, require_net  # noqa: F401 - fixtures are used by name

TIMEOUT = 120
RANGE_WAIT = 60
KIB = 1024


def run_demo(cwd, *args, prefix=()):
    """``[prefix...] python -m ndisproxy demo args...`` from ``cwd`` (not the
    source tree, so the installed package is what runs)."""
    return subprocess.run([*prefix, sys.executable, "-m", "ndisproxy", "demo", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)


def ours_present():
    """npdemo* namespaces and TUN/TAP interfaces that exist now."""
    namespaces = {n for n in os.listdir("/run/netns") if n.startswith("npdemo")} \
        if os.path.isdir("/run/netns") else set()
    out = subprocess.run(["ip", "-o", "link", "show", "type", "tun"], capture_output=True,
                         text=True, check=True).stdout
    links = {line.split(":", 2)[1].strip() for line in out.splitlines() if ":" in line}
    return namespaces, {name for name in links if name.startswith("npdemo")}


@pytest.fixture
def demo_can_run(require_net):
    """ping and ip present; a run_demo_when_free() function."""
    if shutil.which("ping") is None or shutil.which("ip") is None:
        reason = "needs ping (iputils-ping) and ip (iproute2)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires network tests to run")
        pytest.skip(reason)
    return run_demo_when_free


def run_demo_when_free(cwd, *args):
    """run_demo(), but while another test run on this machine holds the
    demo's address range (198.51.100.1 on a TAP here), wait and retry: the
    demo refuses to start then, by design."""
    deadline = time.monotonic() + RANGE_WAIT
    while True:
        while demo.range_in_use() is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        done = run_demo(cwd, *args)
        busy = done.returncode == 1 and "already in use here" in done.stdout + done.stderr
        if not busy or time.monotonic() >= deadline:
            return done


def assert_nothing_left(before, report):
    namespaces, links = ours_present()
    assert report["netns"] not in namespaces
    assert not {report["adapter"]["name"], report["wire"]} & links
    # Anything npdemo* that appeared during the run is a leftover (unless a
    # second demo runs at the same time, which the range check refuses).
    assert namespaces <= before[0], f"namespaces left: {namespaces - before[0]}"
    assert links <= before[1], f"TAPs left: {links - before[1]}"


# -- end to end (root) ------------------------------------------------------------


def test_demo_json(demo_can_run, tmp_path):
    before = ours_present()
    done = demo_can_run(tmp_path, "--json", "--megabytes", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(done.stdout.splitlines()) == 1, "--json prints one JSON object only"
    report = json.loads(done.stdout)
    assert report["ok"] is True

    for version in ("ipv4", "ipv6"):
        ping = report["ping"][version]
        assert ping["received"] > 0 and ping["rtt_avg_ms"] > 0, ping
    for direction in ("host_to_peer", "peer_to_host"):
        tcp = report["tcp"][direction]
        assert tcp["bytes"] == 5_000_000 and tcp["match"] is True
        assert tcp["sha256_sent"] == tcp["sha256_received"]
        assert tcp["mbit_s"] > 0
    frames = report["frames"]
    assert frames["host_to_peer"]["tap_in"] > 0 and frames["host_to_peer"]["nic_tx"] > 0
    assert frames["peer_to_host"]["nic_rx"] > 0 and frames["peer_to_host"]["tap_out"] > 0

    initialize = report["stack"]["entry_points"]["MiniportInitialize"]
    assert 8 * KIB < initialize["high_water"] < 24 * KIB
    assert 8 in report["stack"]["overflows"]["MiniportInitialize"]
    assert report["verifier"] == []
    assert report["adapter"]["sandbox"]["cap_eff"] == 0
    assert report["cleanup"] == {"ok": True, "left": []}
    assert report["seconds"] < 60
    assert_nothing_left(before, report)

    # The text report renders from the same data.
    text = demo.format_report(report)
    assert "MiniportInitialize would have overflowed an 8 KiB kernel stack" in text
    assert "verifier  no findings" in text


def test_demo_text(demo_can_run, tmp_path):
    before = ours_present()
    done = demo_can_run(tmp_path, "--megabytes", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    steps = [line for line in lines if line.startswith("[")]
    assert [line[:5] for line in steps] == [f"[{i}/6]" for i in range(1, 7)]
    assert all("... ok" in line for line in steps), steps
    assert any(line.startswith("clean-up:") and line.endswith("ok (nothing left)")
               for line in lines)
    assert "MiniportInitialize" in done.stdout and "|" in done.stdout
    assert len(lines) <= 32
    names = set(re.findall(r"npdemo[0-9a-f]+p?", done.stdout))
    assert len(names) == 3, names           # netns, adapter, wire
    namespaces, links = ours_present()
    assert not names & (namespaces | links)
    assert namespaces <= before[0] and links <= before[1]


def test_demo_quiet_prints_only_the_report(demo_can_run, tmp_path):
    done = demo_can_run(tmp_path, "--quiet", "--megabytes", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not any(line.startswith(("[", "clean-up:")) for line in done.stdout.splitlines())
    assert done.stdout.lstrip().startswith("driver")


# -- without privileges ---------------------------------------------------------


def unprivileged(how):
    """The command prefix that takes privileges away, or skip saying why."""
    if os.geteuid() != 0:
        return ()           # already unprivileged
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to drop root's privileges")
    if how == "capabilities":
        prefix = ("setpriv", "--bounding-set", "-net_admin,-sys_admin", "--")
    else:
        prefix = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--")
    probe = subprocess.run([*prefix, sys.executable, "-c", "import ndisproxy.demo"],
                           capture_output=True, text=True, timeout=TIMEOUT, cwd="/")
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"cannot run the installed package under {' '.join(prefix[:-1])}: {why}")
    return prefix


@pytest.mark.parametrize("how", ["capabilities", "nobody"])
def test_demo_refuses_without_privileges(how, tmp_path):
    prefix = unprivileged(how)
    before = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    done = run_demo("/", prefix=prefix)
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("ndisproxy demo: needs root (CAP_NET_ADMIN")
    after = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    assert not {n for n in after if n.startswith("npdemo")} - set(before)


def test_bad_megabytes_is_a_usage_error(tmp_path):
    done = run_demo(tmp_path, "--megabytes", "0")
    assert done.returncode == 2
    assert "--megabytes" in done.stderr


# -- pieces that need nothing -------------------------------------------------------


def test_embedded_config_is_valid():
    names = demo.Names("npdemo0123abcd", "npdemo0123", "npdemo0123p")
    config = configuration.loads(demo.config_text(names, "/tmp/npdemo-x"), name="<demo>")
    (adapter,) = config.adapters
    assert adapter.name == "npdemo0123" and len(adapter.name) <= 15
    assert adapter.driver_name == "mocknic" and adapter.isolation == "process"
    assert (adapter.wire.kind, adapter.wire.ifname, adapter.wire.netns) == (
        "tap", "npdemo0123p", "npdemo0123abcd")


def test_addresses_are_documentation_ranges():
    import ipaddress
    documentation = [ipaddress.ip_network(n) for n in ("198.51.100.0/24", "2001:db8::/32")]
    for address in demo.HOST_ADDRESSES + demo.PEER_ADDRESSES:
        ip = ipaddress.ip_interface(address).ip
        assert any(ip in network for network in documentation), address


def test_stack_chart_marks_line_up():
    entries = {"MiniportInitialize": {"high_water": 9632, "calls": 1},
               "MiniportISR": {"high_water": 400, "calls": 9},
               "MiniportDeep": {"high_water": 30 * KIB, "calls": 1}}
    ruler, *bars = demo.stack_chart(entries)
    start = bars[0].index("|") + 1
    for kib in (4, 8, 12, 16, 24):
        label = str(kib)
        assert ruler[start + kib - len(label):start + kib] == label
    assert ruler.rstrip().endswith("KiB")
    initialize, isr, deep = (bar[start:start + demo.CHART_KIB + 1] for bar in bars)
    assert initialize == "#" * 10 + ".:...:.......:|"      # 9.4 KiB: into the 10th KiB
    assert isr == "#..:...:...:...:.......:|"
    assert deep == "#" * 23 + ">|"
    assert "9.4 KiB" in bars[0]


def test_stack_sentences():
    fits = {"MiniportISR": {"high_water": 400, "calls": 1}}
    assert demo.stack_sentences(fits) == [
        "Every entry point fits even a 4 KiB kernel stack (Linux, x86 irq stacks)."]
    deep = {"MiniportInitialize": {"high_water": 9632, "calls": 1},
            "MiniportSendPackets": {"high_water": 5 * KIB, "calls": 1},
            "MiniportDeep": {"high_water": 25 * KIB, "calls": 1}}
    assert demo.stack_sentences(deep) == [
        "MiniportDeep would have overflowed even a 24 KiB kernel stack (Windows, x64).",
        "MiniportInitialize would have overflowed an 8 KiB kernel stack (Linux, older kernels).",
        "MiniportSendPackets would have overflowed a 4 KiB kernel stack (Linux, x86 irq stacks).",
    ]
