"""The daemon's config file: parsing, every validation error, check_system(),
and ``ndisproxy check-config``.

Most tests call ndisproxy.config directly; a few run ``python -m ndisproxy``
in a subprocess to check the command's output and exit status.  Tests that
create interfaces need root with CAP_NET_ADMIN: they skip without it, or fail
with NDISPROXY_REQUIRE_NET=1.  Every interface and namespace they make has a
unique ``npcfg<hex>`` name and is removed in a finally.
"""
import dataclasses
import ipaddress
import json
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import textwrap

import pytest

import ndisproxy.cli
import ndisproxy.config
from ndisproxy import drivers
from ndisproxy.config import ConfigError

KiB = 1024
MiB = 1024 * KiB

MINIMAL = """
[[adapter]]
name = "ndis0"
driver = "mocknic"
[adapter.wire]
kind = "loopback"
"""


def write(tmp_path, text, name="ndisproxy.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path, text):
    return ndisproxy.config.load(write(tmp_path, text))


def adapter(extra="", wire='kind = "loopback"', parameters="", name="ndis0",
            driver="mocknic"):
    """One [[adapter]] table; ``extra`` lines go into the adapter table."""
    text = f'[[adapter]]\nname = "{name}"\ndriver = "{driver}"\n{extra}\n[adapter.wire]\n{wire}\n'
    if parameters:
        text += f"[adapter.parameters]\n{parameters}\n"
    return text


def invalid(tmp_path, text):
    """The ConfigError ``text`` raises, checked to be one line naming the file."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        ndisproxy.config.load(path)
    error = info.value
    message = str(error)
    assert "\n" not in message and len(message.splitlines()) == 1, message
    assert message.startswith(f"{path}: "), message
    assert error.path == str(path)
    if error.key:
        assert message == f"{path}: {error.key}: {error.problem}"
    assert isinstance(error, ValueError)
    assert isinstance(error, ndisproxy.NdisProxyError)
    return error


def run_cli(*args, cwd):
    """``python -m ndisproxy ARGS`` -> (exit status, stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "ndisproxy", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


# -- valid configs ------------------------------------------------------------


def test_full_config_round_trip(tmp_path):
    (tmp_path / "sys").mkdir()
    shutil.copy(drivers.path("mocknic"), tmp_path / "sys" / "vendor.sys")
    config = load(tmp_path, """
        [daemon]
        socket = "/run/npcfg/control.sock"
        log_level = "debug"

        [[adapter]]
        name = "ndis0"
        driver = "sys/vendor.sys"
        stack_size = "128KiB"
        mtu = 9000
        isolation = "process"
        host = "pool1"
        existing_tap = true
        keep_on_stop = true
        mac = "02-4E-44-49-53-00"
        [adapter.wire]
        kind = "tap"
        ifname = "ndis0w"
        netns = "peer"
        gso = false
        [adapter.parameters]
        MTU = 9000
        Speed = "auto"
        Jumbo = true

        [[adapter]]
        name = "ndis1"
        driver = "mocknic"
        stack_size = 32768
        isolation = "inprocess"
        [adapter.wire]
        kind = "vxlan"
        local = "192.0.2.1:4789"
        remote = "192.0.2.2:4790"
        vni = 16777215

        [[adapter]]
        name = "ndis2"
        driver = "mocknic"
        [adapter.wire]
        kind = "loopback"
    """)
    assert config.path == tmp_path / "ndisproxy.toml"
    assert config.daemon == ndisproxy.config.DaemonConfig(
        socket=pathlib.Path("/run/npcfg/control.sock"), log_level="debug")
    first, second, third = config.adapters
    assert first == ndisproxy.config.AdapterConfig(
        name="ndis0", driver=(tmp_path / "sys" / "vendor.sys").resolve(),
        driver_name="sys/vendor.sys", stack_size=128 * KiB, mtu=9000, isolation="process",
        host="pool1", existing_tap=True, keep_on_stop=True, mac="02:4e:44:49:53:00",
        wire=ndisproxy.config.WireConfig(kind="tap", ifname="ndis0w", netns="peer", gso=False),
        parameters={"MTU": 9000, "Speed": "auto", "Jumbo": True,
                    "NetworkAddress": "02:4e:44:49:53:00"})
    assert second.driver == drivers.path("mocknic")
    assert second.driver_name == "mocknic"
    assert (second.stack_size, second.isolation, second.host) == (32 * KiB, "inprocess", None)
    assert second.wire == ndisproxy.config.WireConfig(
        kind="vxlan", local=(ipaddress.ip_address("192.0.2.1"), 4789),
        remote=(ipaddress.ip_address("192.0.2.2"), 4790), vni=16777215)
    assert third.wire == ndisproxy.config.WireConfig(kind="loopback")


def test_defaults(tmp_path):
    config = load(tmp_path, MINIMAL)
    assert config.daemon.socket == pathlib.Path("/run/ndisproxy/control.sock")
    assert config.daemon.log_level == "info"
    (only,) = config.adapters
    assert only.name == "ndis0"
    assert only.driver == drivers.path("mocknic")
    assert only.driver_name == "mocknic"
    assert only.stack_size == 64 * KiB
    assert only.mtu is None
    assert only.isolation == "process"
    assert only.host is None
    assert only.existing_tap is False
    assert only.keep_on_stop is False
    assert only.mac is None
    assert only.parameters == {}
    assert only.wire == ndisproxy.config.WireConfig(kind="loopback")


def test_config_is_frozen_and_hashable(tmp_path):
    config = load(tmp_path, MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.adapters[0].name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.daemon.log_level = "debug"
    assert isinstance(config.adapters, tuple)
    hash(config.adapters[0])


def test_loads_uses_name_and_directory(tmp_path):
    shutil.copy(drivers.path("mocknic"), tmp_path / "x.sys")
    config = ndisproxy.config.loads(adapter(driver="x.sys"), name="embedded.toml",
                                    directory=tmp_path)
    assert config.adapters[0].driver == (tmp_path / "x.sys").resolve()
    with pytest.raises(ConfigError, match=r"^embedded\.toml: adapter\[0\]\.mtu: "):
        ndisproxy.config.loads(adapter("mtu = 1"), name="embedded.toml")


def test_relative_socket_is_relative_to_the_config(tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    config = load(tmp_path, '[daemon]\nsocket = "run/ctl.sock"\n' + MINIMAL)
    assert config.daemon.socket == tmp_path / "run" / "ctl.sock"


def test_socket_path_too_long(tmp_path):
    error = invalid(tmp_path, f'[daemon]\nsocket = "/{"s" * 120}"\n' + MINIMAL)
    assert error.key == "daemon.socket"
    assert "121 bytes; a Unix socket path can have at most 107" in error.problem


# -- drivers ------------------------------------------------------------------


def test_relative_driver_path_is_relative_to_the_config_file(tmp_path, monkeypatch):
    conf = tmp_path / "etc"
    (conf / "drv").mkdir(parents=True)
    shutil.copy(drivers.path("mocknic"), conf / "drv" / "nic.sys")
    shutil.copy(drivers.path("mocknic"), tmp_path / "up.sys")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for written, expected in [("drv/nic.sys", conf / "drv" / "nic.sys"),
                              ("./drv/nic.sys", conf / "drv" / "nic.sys"),
                              ("../up.sys", tmp_path / "up.sys"),
                              (str(tmp_path / "up.sys"), tmp_path / "up.sys")]:
        path = write(conf, adapter(driver=written))
        (only,) = ndisproxy.config.load(path).adapters
        assert only.driver == expected.resolve()
        assert only.driver.is_absolute()
        assert only.driver_name == written


def test_bare_sys_name_is_a_path(tmp_path):
    shutil.copy(drivers.path("mocknic"), tmp_path / "Vendor.SYS")
    assert load(tmp_path, adapter(driver="Vendor.SYS")).adapters[0].driver == (
        tmp_path / "Vendor.SYS").resolve()


def test_missing_driver_file(tmp_path):
    error = invalid(tmp_path, adapter(driver="drv/absent.sys"))
    assert error.key == "adapter[0].driver"
    assert error.problem == f"{tmp_path / 'drv' / 'absent.sys'} does not exist"


def test_driver_that_is_a_directory(tmp_path):
    (tmp_path / "dir.sys").mkdir()
    error = invalid(tmp_path, adapter(driver="dir.sys"))
    assert error.key == "adapter[0].driver"
    assert "is not a regular file" in error.problem


def test_unknown_bundled_driver(tmp_path):
    error = invalid(tmp_path, adapter(driver="nosuchnic"))
    assert error.key == "adapter[0].driver"
    assert error.problem.startswith('no driver "nosuchnic" in the driver store ')
    assert "no bundled driver 'nosuchnic' (bundled: mocknic)" in error.problem


# -- stack sizes --------------------------------------------------------------


@pytest.mark.parametrize("written, size", [
    ("65536", 65536), ('"65536"', 65536), ('"64KiB"', 64 * KiB), ('"64K"', 64 * KiB),
    ('"1MiB"', MiB), ('"1M"', MiB), ('"16KiB"', 16 * KiB), ('"64MiB"', 64 * MiB),
    ('"100000"', 100000), ('"64 KiB"', 64 * KiB), ('" 64KiB "', 64 * KiB),
])
def test_stack_sizes(tmp_path, written, size):
    assert load(tmp_path, adapter(f"stack_size = {written}")).adapters[0].stack_size == size


@pytest.mark.parametrize("written, shown", [
    ('"64kb"', '"64kb"'), ('"64KB"', '"64KB"'), ('"64k"', '"64k"'), ('"1.5MiB"', '"1.5MiB"'),
    ('"-1"', '"-1"'), ('""', '""'), ('"0x10000"', '"0x10000"'), ('"64 K iB"', '"64 K iB"'),
    ("1.5", "1.5 (a float)"), ("true", "true (a boolean)"), ("[65536]", "an array"),
    ('"15KiB"', '"15KiB" (15360 bytes)'), ('"65MiB"', '"65MiB" (68157440 bytes)'),
    ("16383", "16383"), ("-65536", "-65536"), ("0", "0"),
])
def test_bad_stack_sizes(tmp_path, written, shown):
    error = invalid(tmp_path, adapter(f"stack_size = {written}"))
    assert error.key == "adapter[0].stack_size"
    assert error.problem.startswith("expected a size in 16KiB..64MiB")
    assert error.problem.endswith(f", got {shown}")


def test_parse_and_format_size():
    assert ndisproxy.config.parse_size("24K") == 24 * KiB
    assert ndisproxy.config.parse_size(12345) == 12345
    for size in (16 * KiB, 24 * KiB, 100000, 3 * MiB, 64 * MiB):
        text = ndisproxy.config.format_size(size)
        assert ndisproxy.config.parse_size(text) == size
    assert ndisproxy.config.format_size(64 * KiB) == "64KiB"
    assert ndisproxy.config.format_size(2 * MiB) == "2MiB"
    with pytest.raises(ValueError):
        ndisproxy.config.parse_size("64 kilobytes")


# -- vxlan --------------------------------------------------------------------


def vxlan(local='"192.0.2.1:4789"', remote='"192.0.2.2:4789"', vni="42"):
    return adapter(wire=f'kind = "vxlan"\nlocal = {local}\nremote = {remote}\nvni = {vni}')


def test_vxlan_ipv4(tmp_path):
    wire = load(tmp_path, vxlan()).adapters[0].wire
    assert wire.local == (ipaddress.IPv4Address("192.0.2.1"), 4789)
    assert wire.remote == (ipaddress.IPv4Address("192.0.2.2"), 4789)
    assert wire.vni == 42
    assert (wire.ifname, wire.netns) == (None, None)


def test_vxlan_ipv6(tmp_path):
    wire = load(tmp_path, vxlan('"[2001:db8::1]:4789"', '"[2001:DB8:0::2]:8472"', "0")
                ).adapters[0].wire
    assert wire.local == (ipaddress.IPv6Address("2001:db8::1"), 4789)
    assert wire.remote == (ipaddress.IPv6Address("2001:db8::2"), 8472)
    assert wire.vni == 0
    assert ndisproxy.config.show_endpoint(wire.remote) == "[2001:db8::2]:8472"


def test_vxlan_unspecified_local(tmp_path):
    wire = load(tmp_path, vxlan(local='"0.0.0.0:4789"')).adapters[0].wire
    assert wire.local[0].is_unspecified


@pytest.mark.parametrize("local, remote, key, fragment", [
    ('"192.0.2.1:4789"', '"[2001:db8::2]:4789"', "remote",
     "is IPv6 but local is IPv4; both ends must be one family"),
    ('"192.0.2.1"', '"192.0.2.2:4789"', "local", "(the port is missing)"),
    ('"2001:db8::1:4789"', '"192.0.2.2:4789"', "local", "write an IPv6 endpoint with brackets"),
    ('"[192.0.2.1]:4789"', '"192.0.2.2:4789"', "local", '"192.0.2.1" is not an IPv6 address'),
    ('"vtep.example:4789"', '"192.0.2.2:4789"', "local",
     '"vtep.example" is not an IPv4 address (names are not looked up'),
    ('"192.0.2.1:0"', '"192.0.2.2:4789"', "local", 'port "0" is not a number in 1..65535'),
    ('"192.0.2.1:65536"', '"192.0.2.2:4789"', "local", 'port "65536" is not a number'),
    ('"192.0.2.1:47a9"', '"192.0.2.2:4789"', "local", 'port "47a9"'),
    ('"[2001:db8::1]4789"', '"192.0.2.2:4789"', "local", 'expected "IPv4:port" or "[IPv6]:port"'),
    ('"192.0.2.256:4789"', '"192.0.2.2:4789"', "local", '"192.0.2.256" is not an IPv4 address'),
    ("4789", '"192.0.2.2:4789"', "local", "got 4789"),
    ('"239.1.1.1:4789"', '"192.0.2.2:4789"', "local", "239.1.1.1 is a multicast address"),
    ('"192.0.2.1:4789"', '"0.0.0.0:4789"', "remote", "0.0.0.0 is the unspecified address"),
    ('"192.0.2.1:4789"', '"192.0.2.1:4789"', "remote", 'is the same endpoint as local'),
])
def test_bad_vxlan_endpoints(tmp_path, local, remote, key, fragment):
    error = invalid(tmp_path, vxlan(local, remote))
    assert error.key == f"adapter[0].wire.{key}"
    assert fragment in error.problem


@pytest.mark.parametrize("vni, shown", [
    ('"42x"', '"42x"'), ("16777216", "16777216"), ("-1", "-1"), ("true", "true (a boolean)"),
    ("4.2", "4.2 (a float)"),
])
def test_bad_vni(tmp_path, vni, shown):
    error = invalid(tmp_path, "\n" + vxlan(vni=vni))
    assert str(error) == (f"{tmp_path / 'ndisproxy.toml'}: adapter[0].wire.vni: "
                          f"expected an integer in 0..16777215, got {shown}")


def test_vxlan_adapters_that_could_not_be_told_apart(tmp_path):
    text = vxlan() + vxlan(local='"0.0.0.0:4789"', remote='"192.0.2.3:4789"').replace(
        "ndis0", "ndis1")
    error = invalid(tmp_path, text)
    assert error.key == "adapter[1].wire"
    assert "same local endpoint and vni as adapter[0].wire" in error.problem
    other_vni = vxlan() + vxlan(vni="43").replace("ndis0", "ndis1")
    assert len(load(tmp_path, other_vni).adapters) == 2


# -- errors, one class at a time ----------------------------------------------


@pytest.mark.parametrize("text, key, problem", [
    # unknown keys, with the allowed ones
    ("colour = 1\n" + MINIMAL, "colour",
     "unknown key (allowed: daemon, adapter)"),
    ("[daemons]\n" + MINIMAL, "daemons",
     'unknown key, did you mean "daemon"? (allowed: daemon, adapter)'),
    ('[daemon]\nsockett = "/x"\n' + MINIMAL, "daemon.sockett",
     'unknown key, did you mean "socket"? (allowed: socket, log_level, group, admin_group, host_user, driver_store, heartbeat)'),
    (adapter('drvier = "x"'), "adapter[0].drvier",
     'unknown key, did you mean "driver"? (allowed: name, driver, stack_size, mtu, isolation, '
     'host, existing_tap, keep_on_stop, mac, wire, parameters, restart, deadlines, verifier_fatal, '
     'hang_check, offloads)'),
    (adapter(wire='kind = "loopback"\nvnii = 3'), "adapter[0].wire.vnii",
     'unknown key, did you mean "vni"? (allowed: kind, ifname, netns, gso, local, remote, vni)'),
    (adapter('"odd key" = 1'), 'adapter[0]."odd key"', "unknown key"),
    # keys that the wire kind does not use
    (adapter(wire='kind = "tap"\nifname = "w0"\nvni = 42'), "adapter[0].wire.vni",
     'not used by kind = "tap" (it takes ifname, netns, gso)'),
    (adapter(wire='kind = "vxlan"\ngso = false'), "adapter[0].wire.gso",
     'not used by kind = "vxlan" (it takes local, remote, vni)'),
    (adapter(wire='kind = "tap"\nifname = "w0"\ngso = 0'), "adapter[0].wire.gso",
     "expected true or false, got 0"),
    (adapter(wire='kind = "loopback"\nifname = "w0"'), "adapter[0].wire.ifname",
     'not used by kind = "loopback" (it takes no other keys)'),
    (adapter(wire='kind = "vxlan"\nnetns = "peer"'), "adapter[0].wire.netns",
     'not used by kind = "vxlan" (it takes local, remote, vni)'),
    # wrong types: booleans are not integers, nor integers booleans
    (adapter("mtu = true"), "adapter[0].mtu",
     "expected an integer in 68..65535, got true (a boolean)"),
    (adapter('mtu = "1500"'), "adapter[0].mtu", 'expected an integer in 68..65535, got "1500"'),
    (adapter("mtu = 67"), "adapter[0].mtu", "expected an integer in 68..65535, got 67"),
    (adapter("mtu = 65536"), "adapter[0].mtu", "expected an integer in 68..65535, got 65536"),
    (adapter("existing_tap = 1"), "adapter[0].existing_tap", "expected true or false, got 1"),
    (adapter('keep_on_stop = "yes"'), "adapter[0].keep_on_stop",
     'expected true or false, got "yes"'),
    (adapter('isolation = "thread"'), "adapter[0].isolation",
     'expected "process" or "inprocess", got "thread"'),
    ('[daemon]\nlog_level = "INFO"\n' + MINIMAL, "daemon.log_level",
     'expected "debug", "info", "warning" or "error", got "INFO"'),
    ("daemon = 5\n" + MINIMAL, "daemon", "expected a table ([daemon]), got 5"),
    ('[daemon]\nsocket = 5\n' + MINIMAL, "daemon.socket", "expected a path (a string), got 5"),
    (adapter("name = 5").replace('name = "ndis0"\n', ""), "adapter[0].name",
     "expected an interface name (a string), got 5"),
    (adapter("driver = 1").replace('driver = "mocknic"\n', ""), "adapter[0].driver",
     "expected a driver name or a path to a .sys, got 1"),
    (adapter("wire = 'tap'").split("[adapter.wire]")[0], "adapter[0].wire",
     'expected a table ([adapter.wire]), got "tap"'),
    (adapter(wire='kind = "token-ring"'), "adapter[0].wire.kind",
     'expected "tap", "loopback" or "vxlan", got "token-ring"'),
    (adapter("parameters = 5"), "adapter[0].parameters",
     "expected a table ([adapter.parameters]), got 5"),
    (adapter("host = 1"), "adapter[0].host", "expected a host pool name (a string), got 1"),
    (adapter('host = "my pool"'), "adapter[0].host",
     '"my pool" is not a valid pool name (1..64 of A-Z, a-z, 0-9, _, ., -, starting with a '
     'letter or digit)'),
    (adapter('created = 2024-01-01'), "adapter[0].created", "unknown key"),
    # missing required keys
    (adapter().replace('name = "ndis0"\n', ""), "adapter[0].name", "missing required key"),
    (adapter().replace('driver = "mocknic"\n', ""), "adapter[0].driver",
     "missing required key"),
    (adapter().split("[adapter.wire]")[0], "adapter[0].wire",
     "missing required table [adapter.wire]"),
    (adapter(wire=""), "adapter[0].wire.kind",
     'missing required key ("tap", "loopback" or "vxlan")'),
    (adapter(wire='kind = "tap"'), "adapter[0].wire.ifname",
     'missing required key (kind = "tap" needs ifname)'),
    (adapter(wire='kind = "vxlan"\nlocal = "192.0.2.1:4789"\nremote = "192.0.2.2:4789"'),
     "adapter[0].wire.vni", 'missing required key (kind = "vxlan" needs local, remote, vni)'),
    # no adapters
    ('[daemon]\nlog_level = "info"\n', "adapter",
     "no adapters configured; add at least one [[adapter]] table"),
    ("adapter = []\n", "adapter", "no adapters configured; add at least one [[adapter]] table"),
    ('[adapter]\nname = "ndis0"\n', "adapter",
     "expected an array of tables ([[adapter]], double brackets), got a single table "
     "([adapter])"),
    ("adapter = [1]\n", "adapter[0]", "expected a table ([[adapter]]), got 1"),
    ("adapter = 1\n", "adapter", "expected an array of tables ([[adapter]]), got 1"),
    # what adapters must not share
    (MINIMAL + MINIMAL, "adapter[1].name", '"ndis0" is already the name of adapter[0]'),
    (adapter(wire='kind = "tap"\nifname = "w0"') +
     adapter(name="ndis1", wire='kind = "tap"\nifname = "w0"\nnetns = "peer"'),
     "adapter[1].wire.ifname", '"w0" is already adapter[0].wire.ifname'),
    (adapter(wire='kind = "tap"\nifname = "ndis1"') + adapter(name="ndis1"),
     "adapter[0].wire.ifname", '"ndis1" is also the name of adapter[1]'),
    (adapter(wire='kind = "tap"\nifname = "ndis0"'),
     "adapter[0].wire.ifname", '"ndis0" is also the name of adapter[0]'),
    # host pools
    (adapter('host = "p"\nisolation = "inprocess"'), "adapter[0].host",
     'a host pool needs isolation = "process" (adapter[0].isolation is "inprocess")'),
])
def test_errors(tmp_path, text, key, problem):
    error = invalid(tmp_path, text)
    assert error.key == key
    assert error.problem.startswith(problem), error.problem


@pytest.mark.parametrize("name, fragment", [
    ("", "interface name is empty"),
    ("sixteen-bytes-xx", 'interface name "sixteen-bytes-xx" is 16 bytes; Linux allows at most 15'),
    ("ñññññññß", "is 16 bytes"),
    (".", '"." is not a valid interface name'),
    ("..", '".." is not a valid interface name'),
    ("a/b", 'contains "/"'),
    ("a:b", 'contains ":"'),
    ("a b", 'contains " "'),
    ("a\\tb", 'contains "\\t"'),
    ("a\\u0001b", 'contains "\\u0001"'),
    ("tap%d", 'contains "%", which would make it a name template'),
])
def test_bad_interface_names(tmp_path, name, fragment):
    tap_wire = f'kind = "tap"\nifname = "{name}"'
    for text, key in [(adapter(name=name), "adapter[0].name"),
                      (adapter(wire=tap_wire), "adapter[0].wire.ifname")]:
        error = invalid(tmp_path, text)
        assert error.key == key
        assert fragment in error.problem


def test_good_interface_names(tmp_path):
    for name in ("a", "fifteen-bytes-x", "eth0.42", "ndis_0-a", "ñ"):
        assert load(tmp_path, adapter(name=name)).adapters[0].name == name


@pytest.mark.parametrize("netns", ["", ".", "..", "a/b"])
def test_bad_netns_names(tmp_path, netns):
    error = invalid(tmp_path, adapter(wire=f'kind = "tap"\nifname = "w0"\nnetns = "{netns}"'))
    assert error.key == "adapter[0].wire.netns"
    assert "is not a valid network namespace name" in error.problem


def test_pool_with_two_drivers(tmp_path):
    shutil.copy(drivers.path("mocknic"), tmp_path / "other.sys")
    text = adapter('host = "pool1"') + adapter('host = "pool1"', name="ndis1") + adapter(
        'host = "pool1"', name="ndis2", driver="other.sys")
    error = invalid(tmp_path, text)
    assert error.key == "adapter[2].host"
    assert error.problem == ('pool "pool1" runs mocknic (adapter[0]), not other.sys: '
                             "a host process loads one driver")
    pooled = load(tmp_path, text.replace('"other.sys"', '"mocknic"'))
    assert {a.host for a in pooled.adapters} == {"pool1"}


# -- mac and parameters -------------------------------------------------------


@pytest.mark.parametrize("written, normal", [
    ("02:4e:44:49:53:00", "02:4e:44:49:53:00"), ("02-4E-44-49-53-0A", "02:4e:44:49:53:0a"),
    ("00:00:00:00:00:01", "00:00:00:00:00:01"),
])
def test_mac_becomes_network_address(tmp_path, written, normal):
    (only,) = load(tmp_path, adapter(f'mac = "{written}"')).adapters
    assert only.mac == normal
    assert only.parameters == {"NetworkAddress": normal}


@pytest.mark.parametrize("mac, fragment", [
    ("01:00:5e:00:00:01", "is a group (multicast) address: the low bit of the first octet is set"),
    ("ff:ff:ff:ff:ff:ff", "is a group (multicast) address"),
    ("00:00:00:00:00:00", "is the all-zero address"),
    ("02:4e:44:49:53", 'expected a MAC address like "02:4e:44:49:53:00"'),
    ("02:4e-44:49:53:00", "expected a MAC address"),
    ("024e44495300", "expected a MAC address"),
    ("02:4e:44:49:53:0g", "expected a MAC address"),
])
def test_bad_mac(tmp_path, mac, fragment):
    error = invalid(tmp_path, adapter(f'mac = "{mac}"'))
    assert error.key == "adapter[0].mac"
    assert fragment in error.problem


@pytest.mark.parametrize("name", ["NetworkAddress", "networkaddress"])
def test_mac_and_network_address_parameter_conflict(tmp_path, name):
    error = invalid(tmp_path, adapter('mac = "02:4e:44:49:53:00"',
                                      parameters=f'{name} = "02:4e:44:49:53:01"'))
    assert error.key == "adapter[0].mac"
    assert error.problem == (f"set twice: here and as adapter[0].parameters.{name}; "
                             "keep one of them")


def test_network_address_parameter_alone(tmp_path):
    (only,) = load(tmp_path, adapter(parameters='NetworkAddress = "02-11-22-33-44-55"')).adapters
    assert only.mac is None
    assert only.parameters == {"NetworkAddress": "02-11-22-33-44-55"}


def test_parameter_values(tmp_path):
    (only,) = load(tmp_path, adapter(parameters=(
        f'Zero = 0\nMax = 4294967295\nOn = true\nOff = false\nText = "{"x" * 191}"\n'
        'A_1 = "ünïcode"'))).adapters
    assert only.parameters == {"Zero": 0, "Max": 2**32 - 1, "On": True, "Off": False,
                               "Text": "x" * 191, "A_1": "ünïcode"}
    assert type(only.parameters["On"]) is bool


def test_ndis_standardized_keywords_start_with_a_star(tmp_path):
    (only,) = load(tmp_path, adapter(parameters=(
        f'"*JumboPacket" = 9014\n"*SpeedDuplex" = "0"\n"*{"N" * 62}" = 1'))).adapters
    assert only.parameters == {"*JumboPacket": 9014, "*SpeedDuplex": "0", "*" + "N" * 62: 1}


@pytest.mark.parametrize("parameters, key, problem", [
    ("Rate = 1.5", "Rate", "expected a string, an integer or a boolean, got 1.5 (a float)"),
    ("Rate = -1", "Rate", "expected an integer in 0..4294967295 (a REG_DWORD), got -1"),
    ("Rate = 4294967296", "Rate", "expected an integer in 0..4294967295"),
    ("Rate = [1, 2]", "Rate", "expected a string, an integer or a boolean, got an array"),
    ("Rate = {a = 1}", "Rate", "expected a string, an integer or a boolean, got a table"),
    ("Rate = 2024-01-01", "Rate", "expected a string, an integer or a boolean, got 2024-01-01"),
    (f'Text = "{"x" * 192}"', "Text",
     "string is 192 bytes; a parameter value can have at most 191"),
    (f'Text = "{"é" * 96}"', "Text", "string is 192 bytes"),
    ('Text = "a\\u0000b"', "Text", "string contains a NUL character"),
    ('"Bad Name" = 1', '"Bad Name"', "a parameter name is 1..63 of A-Z, a-z, 0-9 and _, the "
                                    "first of them may be * (*JumboPacket)"),
    ("Bad-Name = 1", "Bad-Name", "a parameter name is 1..63 of A-Z, a-z, 0-9 and _"),
    ('"Jumbo*" = 1', '"Jumbo*"', "a parameter name is 1..63"),
    ('"**Jumbo" = 1', '"**Jumbo"', "a parameter name is 1..63"),
    ('"*" = 1', '"*"', "a parameter name is 1..63"),
    ('"" = 1', '""', "a parameter name is 1..63"),
    (f'{"N" * 64} = 1', "N" * 64, "a parameter name is 1..63"),
    ("MTU = 1\nmtu = 2", "mtu", "same parameter as adapter[0].parameters.MTU (parameter names "
                                "are case-insensitive, as in the Windows registry)"),
])
def test_bad_parameters(tmp_path, parameters, key, problem):
    error = invalid(tmp_path, adapter(parameters=parameters))
    assert error.key == f"adapter[0].parameters.{key}"
    assert error.problem.startswith(problem)


def test_at_most_max_parameters(tmp_path):
    limit = ndisproxy.config.MAX_PARAMETERS
    many = "\n".join(f"P{i} = {i}" for i in range(limit))
    assert len(load(tmp_path, adapter(parameters=many)).adapters[0].parameters) == limit
    error = invalid(tmp_path, adapter(parameters=many + f"\nP{limit} = {limit}"))
    assert (error.key, error.problem) == ("adapter[0].parameters",
                                          f"{limit + 1} parameters; a driver can have at most "
                                          f"{limit}")
    error = invalid(tmp_path, adapter('mac = "02:00:00:00:00:01"', parameters=many))
    assert error.key == "adapter[0].parameters"
    assert error.problem == (f"{limit + 1} parameters, counting NetworkAddress from "
                             f"adapter[0].mac; a driver can have at most {limit}")


# -- the file itself ----------------------------------------------------------


def test_toml_syntax_error_names_line_and_column(tmp_path):
    path = write(tmp_path, MINIMAL + "mtu = = 3\n")
    with pytest.raises(ConfigError) as info:
        ndisproxy.config.load(path)
    error = info.value
    assert (error.key, error.line, error.column) == (None, 7, 7)
    assert str(error) == f"{path}: line 7, column 7: invalid TOML: invalid value"


def test_toml_duplicate_key_is_a_syntax_error(tmp_path):
    path = write(tmp_path, MINIMAL.replace('name = "ndis0"', 'name = "a"\nname = "b"'))
    with pytest.raises(ConfigError, match=r": line 4, column \d+: invalid TOML: cannot overwrite"):
        ndisproxy.config.load(path)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        ndisproxy.config.load(path)
    assert str(info.value) == f"{path}: cannot read the file: No such file or directory"
    assert info.value.key is None


def test_file_that_is_a_directory(tmp_path):
    with pytest.raises(ConfigError, match=r": cannot read the file: Is a directory$"):
        ndisproxy.config.load(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = write(tmp_path, MINIMAL)
    path.chmod(0)
    with pytest.raises(ConfigError, match=r": cannot read the file: Permission denied$"):
        ndisproxy.config.load(path)


def test_file_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(MINIMAL.encode() + b'# caf\xe9\n')
    with pytest.raises(ConfigError) as info:
        ndisproxy.config.load(path)
    assert str(info.value) == f"{path}: line 7, column 6: not UTF-8 text (byte 0xe9)"


def test_values_with_newlines_stay_on_one_line(tmp_path):
    error = invalid(tmp_path, adapter(name="a\\nb\\u2028c"))
    assert error.problem == r'interface name "a\nb\u2028c" contains "\n" (Linux interface names ' \
                            r'cannot contain "/", ":", whitespace or control characters)'
    error = invalid(tmp_path, '[daemon]\nlog_level = """multi\nline"""\n' + MINIMAL)
    assert error.problem == r'expected "debug", "info", "warning" or "error", got "multi\nline"'


def test_long_values_are_shortened(tmp_path):
    error = invalid(tmp_path, adapter(f'isolation = "{"p" * 500}"'))
    assert len(str(error)) < 300
    assert '..."' in error.problem


def test_config_error_is_one_line_even_when_told_otherwise():
    error = ConfigError("f.toml", "a.b", "first\nsecond")
    assert str(error) == "f.toml: a.b: first second"


# -- docs/config.md -----------------------------------------------------------

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "config.md"


def doc_configs():
    """The ```toml blocks of docs/config.md that are whole config files."""
    blocks = DOC.read_text().split("```toml\n")[1:]
    return [block.split("```")[0] for block in blocks if "[[adapter]]" in block]


def test_doc_examples_are_valid(tmp_path):
    (tmp_path / "drivers").mkdir()
    shutil.copy(drivers.path("mocknic"), tmp_path / "drivers" / "vendor.sys")
    configs = doc_configs()
    assert len(configs) >= 3            # the overview, the full example, the smallest
    for text in configs:
        assert load(tmp_path, text).adapters


def test_doc_describes_every_key():
    text = DOC.read_text()
    for keys in (ndisproxy.config._DAEMON_KEYS, ndisproxy.config._ADAPTER_KEYS,
                 ndisproxy.config._WIRE_KEYS):
        for key in keys:
            assert f"| `{key}` |" in text, key


# -- check-config, the command ------------------------------------------------


def test_cli_ok(tmp_path):
    write(tmp_path, adapter(wire='kind = "tap"\nifname = "npcfgw0"') +
          adapter(name="npcfg1", wire='kind = "vxlan"\nlocal = "[2001:db8::1]:4789"\n'
                  'remote = "[2001:db8::2]:4789"\nvni = 7') + adapter(name="npcfg2"))
    status, out, err = run_cli("check-config", "--no-system", "ndisproxy.toml", cwd=tmp_path)
    assert (status, err) == (0, "")
    assert out == ("ndisproxy.toml: ok (3 adapters: ndis0 mocknic tap→npcfgw0, npcfg1 mocknic "
                   "vxlan [2001:db8::1]:4789→[2001:db8::2]:4789 vni 7, npcfg2 mocknic loopback);"
                   " system not checked (--no-system)\n")


def test_cli_error_is_one_line_on_stderr(tmp_path):
    write(tmp_path, "\n" + vxlan(vni='"42x"'))
    status, out, err = run_cli("check-config", "ndisproxy.toml", cwd=tmp_path)
    assert (status, out) == (2, "")
    assert err == ('ndisproxy.toml: adapter[0].wire.vni: expected an integer in 0..16777215, '
                   'got "42x"\n')


def test_cli_syntax_error(tmp_path):
    write(tmp_path, "[[adapter]\n")
    status, out, err = run_cli("check-config", "--no-system", "ndisproxy.toml", cwd=tmp_path)
    assert status == 2
    assert err.count("\n") == 1
    assert err.startswith("ndisproxy.toml: line 1, column ")


def test_cli_json(tmp_path):
    write(tmp_path, adapter('mac = "02:4e:44:49:53:00"\nmtu = 1500',
                            wire='kind = "tap"\nifname = "npcfgw0"\nnetns = "peer"'))
    status, out, err = run_cli("check-config", "--json", "--no-system", "ndisproxy.toml",
                               cwd=tmp_path)
    assert (status, err) == (0, "")
    report = json.loads(out)
    assert report["ok"] is True
    assert report["system_checked"] is False
    (only,) = report["adapters"]
    assert only["name"] == "ndis0"
    assert only["driver"] == str(drivers.path("mocknic"))
    assert only["stack_size"] == 65536
    assert only["mtu"] == 1500
    assert only["wire"] == {"kind": "tap", "ifname": "npcfgw0", "netns": "peer", "gso": True}
    assert only["parameters"] == {"NetworkAddress": "02:4e:44:49:53:00"}

    write(tmp_path, adapter("mtu = 1"))
    status, out, err = run_cli("check-config", "--json", "ndisproxy.toml", cwd=tmp_path)
    assert (status, err) == (2, "")
    report = json.loads(out)
    assert report == {"ok": False, "file": "ndisproxy.toml",
                      "error": "ndisproxy.toml: adapter[0].mtu: expected an integer in "
                               "68..65535, got 1",
                      "key": "adapter[0].mtu",
                      "problem": "expected an integer in 68..65535, got 1",
                      "line": None, "column": None}


def test_main_returns_the_exit_status(tmp_path, capsys):
    good = write(tmp_path, MINIMAL, "good.toml")
    bad = write(tmp_path, adapter("stack_size = true"), "bad.toml")
    assert ndisproxy.cli.main(["check-config", "--no-system", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: ok (1 adapter: ndis0 mocknic loopback); " \
                                      "system not checked (--no-system)\n"
    assert ndisproxy.cli.main(["check-config", "--no-system", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}: adapter[0].stack_size: expected a size in 16KiB..64MiB")
    assert err.count("\n") == 1
    assert ndisproxy.cli.main(["check-config", str(tmp_path / "absent.toml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


def test_cli_help(tmp_path, capsys):
    assert ndisproxy.cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "check-config" in out and "examples:" in out
    assert ndisproxy.cli.main(["check-config", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("--no-system", "--json", "FILE", "examples:", "Exit status",
                 "ndisproxy check-config /etc/ndisproxy/ndisproxy.toml"):
        assert text in out
    status, out, _ = run_cli("check-config", "--help", cwd=tmp_path)
    assert status == 0 and "examples:" in out


def test_cli_usage_errors(capsys):
    assert ndisproxy.cli.main([]) == 2
    assert "usage: ndisproxy" in capsys.readouterr().err
    assert ndisproxy.cli.main(["no-such-command"]) == 2
    assert ndisproxy.cli.main(["check-config"]) == 2
    assert "FILE" in capsys.readouterr().err


# -- check_system -------------------------------------------------------------
#
# Interface names are checked against the running system; the kernel's
# loopback "lo" is there everywhere, so some checks need no privileges.


def test_check_system_accepts_free_names(tmp_path):
    name = unique_name()
    config = load(tmp_path, adapter(name=name, wire=f'kind = "tap"\nifname = "{unique_name()}"'))
    ndisproxy.config.check_system(config)


def test_check_system_rejects_an_interface_that_is_not_ours(tmp_path):
    error = check_error(load(tmp_path, adapter(name="lo")))
    assert str(error) == (f"{tmp_path / 'ndisproxy.toml'}: adapter[0].name: "
                          'interface "lo" exists and is not managed by ndisproxy')
    error = check_error(load(tmp_path, adapter(wire='kind = "tap"\nifname = "lo"')))
    assert error.key == "adapter[0].wire.ifname"


def test_check_system_missing_netns(tmp_path):
    netns = unique_name()
    config = load(tmp_path, adapter(wire=f'kind = "tap"\nifname = "{unique_name()}"\n'
                                         f'netns = "{netns}"'))
    error = check_error(config)
    assert error.key == "adapter[0].wire.netns"
    assert error.problem == (f'network namespace "{netns}" does not exist '
                             f"(create it with: ip netns add {netns})")
    assert not os.path.exists(f"/run/netns/{netns}")      # looked, did not create


def test_check_system_existing_tap_missing(tmp_path):
    name = unique_name()
    error = check_error(load(tmp_path, adapter("existing_tap = true", name=name)))
    assert error.key == "adapter[0].name"
    assert error.problem == (f'interface "{name}" does not exist; existing_tap = true needs a '
                             f"TAP made beforehand (ip tuntap add dev {name} mode tap)")


def test_check_system_existing_tap_not_a_tap(tmp_path):
    error = check_error(load(tmp_path, adapter("existing_tap = true", name="lo")))
    assert error.problem.startswith('interface "lo" is not a TAP (it is a device without a '
                                    "link kind); existing_tap = true needs one made with: ")


def test_cli_checks_the_system(tmp_path):
    write(tmp_path, adapter(name="lo"))
    status, out, err = run_cli("check-config", "ndisproxy.toml", cwd=tmp_path)
    assert (status, out) == (2, "")
    assert err == ('ndisproxy.toml: adapter[0].name: interface "lo" exists and is not managed '
                   "by ndisproxy\n")
    status, out, err = run_cli("check-config", "--no-system", "ndisproxy.toml", cwd=tmp_path)
    assert status == 0


def check_error(config):
    with pytest.raises(ConfigError) as info:
        ndisproxy.config.check_system(config)
    assert "\n" not in str(info.value)
    return info.value


def unique_name():
    """``npcfg`` + 8 random hex digits: 13 bytes, a valid interface and
    namespace name no other run will pick."""
    return "npcfg" + secrets.token_hex(4)


def require_net():
    """Skip without root (or, with NDISPROXY_REQUIRE_NET=1, fail)."""
    if os.geteuid() != 0:
        if os.environ.get("NDISPROXY_REQUIRE_NET") == "1":
            pytest.fail("needs root with CAP_NET_ADMIN, and NDISPROXY_REQUIRE_NET=1 requires "
                        "network tests to run")
        pytest.skip("needs root with CAP_NET_ADMIN to create interfaces")


def _link_kinds(ipr, name, kinds):
    """Make interface ``name`` of the first of ``kinds`` this kernel has."""
    from pyroute2.netlink.exceptions import NetlinkError

    for kind in kinds:
        try:
            ipr.link("add", ifname=name, kind=kind)
            return kind
        except NetlinkError as exc:
            if exc.code != 95:          # EOPNOTSUPP: no such link kind here
                raise
    pytest.fail(f"this kernel can make none of {', '.join(kinds)}")


@pytest.fixture
def plain_link():
    """A unique, down interface that is not a TAP: a dummy, or a bridge on
    kernels built without dummy.  Deleted afterwards, whatever happens."""
    require_net()
    from pyroute2 import IPRoute

    name = unique_name()
    try:
        with IPRoute() as ipr:
            _link_kinds(ipr, name, ("dummy", "bridge"))
        yield name
    finally:
        delete_link(name)


@pytest.fixture
def tap_link():
    """make(mode): a unique TUN or TAP device, deleted afterwards."""
    require_net()
    from pyroute2 import IPRoute

    made = []

    def make(mode):
        name = unique_name()
        made.append(name)
        with IPRoute() as ipr:
            ipr.link("add", ifname=name, kind="tuntap", mode=mode)
        return name

    try:
        yield make
    finally:
        for name in made:
            delete_link(name)


@pytest.fixture
def netns():
    """A unique network namespace, removed afterwards with what is in it."""
    require_net()
    from pyroute2 import netns as pyroute2_netns

    name = unique_name()
    try:
        pyroute2_netns.create(name)
        yield name
    finally:
        if name in pyroute2_netns.listnetns():
            pyroute2_netns.remove(name)
        assert name not in pyroute2_netns.listnetns()


def delete_link(name, netns=None):
    from pyroute2 import IPRoute

    with IPRoute(netns=netns, flags=0) as ipr:
        for index in ipr.link_lookup(ifname=name):
            ipr.link("del", index=index)
        assert not ipr.link_lookup(ifname=name), f"interface {name} survived its deletion"


def set_alias(name, alias, netns=None):
    from pyroute2 import IPRoute

    with IPRoute(netns=netns, flags=0) as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname=name)[0], ifalias=alias)


def test_check_system_with_a_real_interface(tmp_path, plain_link):
    config = load(tmp_path, adapter(name=plain_link))
    error = check_error(config)
    assert error.key == "adapter[0].name"
    assert error.problem == f'interface "{plain_link}" exists and is not managed by ndisproxy'

    set_alias(plain_link, "ndisproxy:test")
    ndisproxy.config.check_system(config)

    set_alias(plain_link, "someone else's")
    assert check_error(config).key == "adapter[0].name"


def test_check_system_wire_ifname_taken(tmp_path, plain_link):
    config = load(tmp_path, adapter(wire=f'kind = "tap"\nifname = "{plain_link}"',
                                    name=unique_name()))
    error = check_error(config)
    assert error.key == "adapter[0].wire.ifname"
    assert error.problem == f'interface "{plain_link}" exists and is not managed by ndisproxy'
    set_alias(plain_link, "ndisproxy:ndis0")
    ndisproxy.config.check_system(config)


def test_check_system_existing_tap(tmp_path, tap_link, plain_link):
    tap = tap_link("tap")
    ndisproxy.config.check_system(load(tmp_path, adapter("existing_tap = true", name=tap)))

    tun = tap_link("tun")
    error = check_error(load(tmp_path, adapter("existing_tap = true", name=tun)))
    assert error.key == "adapter[0].name"
    assert error.problem == (f'interface "{tun}" is a TUN (layer 3) device, not a TAP; make it '
                             f"with: ip tuntap add dev {tun} mode tap")

    error = check_error(load(tmp_path, adapter("existing_tap = true", name=plain_link)))
    assert error.problem.startswith(f'interface "{plain_link}" is not a TAP (it is a "')

    # Without existing_tap, an administrator's TAP is just a name that is taken.
    error = check_error(load(tmp_path, adapter(name=tap)))
    assert error.problem == f'interface "{tap}" exists and is not managed by ndisproxy'


def test_check_system_wire_in_netns(tmp_path, netns):
    from pyroute2 import IPRoute

    ifname = unique_name()
    config = load(tmp_path, adapter(name=unique_name(), wire=f'kind = "tap"\nifname = '
                                                             f'"{ifname}"\nnetns = "{netns}"'))
    ndisproxy.config.check_system(config)
    with IPRoute(netns=netns, flags=0) as ipr:
        _link_kinds(ipr, ifname, ("dummy", "bridge"))
    try:
        error = check_error(config)
        assert error.key == "adapter[0].wire.ifname"
        assert error.problem == (f'interface "{ifname}" exists in network namespace "{netns}" '
                                 "and is not managed by ndisproxy")
        set_alias(ifname, "ndisproxy:wire", netns=netns)
        ndisproxy.config.check_system(config)
    finally:
        delete_link(ifname, netns=netns)


def test_cli_checks_a_real_interface(tmp_path, plain_link):
    write(tmp_path, adapter(name=plain_link))
    status, out, err = run_cli("check-config", "ndisproxy.toml", cwd=tmp_path)
    assert status == 2
    assert err == (f'ndisproxy.toml: adapter[0].name: interface "{plain_link}" exists and is '
                   "not managed by ndisproxy\n")
