"""``ndisproxy driver info`` and the pre-flight check the daemon makes.

The report is read from the file (ndisproxy.peimage) and, for an image
that can load, completed by DriverEntry run in a throwaway sandboxed host;
an image that cannot run here is one line per problem and exit status 1.
A damaged file never costs more than that line.
"""
import json
import struct
import subprocess
import sys

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from ndisproxy import DriverImage, UnresolvedImportsError, drivers, peimage
from ndisproxy import config as configuration
from ndisproxy.daemon import Daemon, DaemonError
from ndisproxy.store import DriverStore


def ndisproxy(*args):
    return subprocess.run([sys.executable, "-m", "ndisproxy", *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def info_json(*args):
    result = ndisproxy("driver", "info", "--json", *args)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def loader_message(path):
    """What the C loader itself says about an image that does not load."""
    with pytest.raises(UnresolvedImportsError) as info:
        DriverImage.load(path)
    return info.value


# -- a good image ------------------------------------------------------------------


def test_mocknic(tmp_path):
    code, report = info_json("mocknic", "--store", tmp_path)
    assert code == 0 and report["ok"] and report["problems"] == []
    assert report["file"] == str(drivers.path("mocknic")) and report["driver"] is None
    assert (report["machine"], report["format"], report["subsystem"]) == (
        "x86-64", "PE32+", "native")
    sections = {s["name"]: s for s in report["sections"]}
    assert sections[".text"]["protection"] == "r-x" and "code" in sections[".text"]["kinds"]
    assert sections[".rdata"]["protection"] == "r--"
    assert report["entry_point"]["section"] == ".text"
    modules = {m["module"]: m for m in report["imports"]}
    assert set(modules) == {"NDIS.SYS", "ntoskrnl.exe", "HAL.dll"}
    assert all(m["resolved"] == len(m["functions"]) for m in modules.values())
    assert {"name": "NdisMRegisterMiniport", "status": "resolved"} in \
        modules["NDIS.SYS"]["functions"]
    assert report["unresolved"] == []

    probe = report["driver_entry"]
    assert probe["ok"] and probe["ndis_version"] == [5, 1]
    handlers = {k: v for k, v in probe["handlers"].items() if v}
    assert {"InitializeHandler", "HaltHandler", "QueryInformationHandler",
            "SetInformationHandler", "SendPacketsHandler", "ISRHandler",
            "HandleInterruptHandler", "ReturnPacketHandler"} <= set(handlers)
    assert all(where.startswith("mocknic.sys+0x") for where in handlers.values())
    assert probe["handlers"]["SendHandler"] is None        # a deserialized SendPackets driver
    # DriverEntry ran in a host with the daemon's sandbox, not in the CLI.
    assert probe["sandbox"]["no_new_privs"] and probe["sandbox"]["seccomp"]
    assert probe["sandbox"]["cap_eff"] == 0
    assert probe["stack"]["entry_points"]["DriverEntry"]["calls"] == 1


def test_mocknic_text(tmp_path):
    result = ndisproxy("driver", "info", "mocknic", "--store", tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("mocknic.sys: x86-64 PE32+, native subsystem (1), entry point "
                               "RVA 0x")
    assert any(line.startswith("imports    ") and line.endswith("from 3 modules, all resolved")
               for line in lines)
    assert any(line.startswith("DriverEntry registered an NDIS 5.1 miniport (in a sandboxed "
                               "driver host, ") for line in lines)
    assert any(line.split()[0] == "InitializeHandler" for line in lines if line.strip())


def test_an_installed_driver_by_name(tmp_path):
    DriverStore(tmp_path).install(drivers.inf_path("mocknic"), name="mock2")
    code, report = info_json("mock2", "--store", tmp_path)
    assert code == 0
    assert report["driver"] == "mock2" and report["file"] == str(tmp_path / "mock2" /
                                                                  "mocknic.sys")
    assert report["store"]["parameters"]["MTU"] == "1500"


def test_reading_only(tmp_path):
    code, report = info_json(drivers.path("mocknic"), "--no-driver-entry")
    assert code == 0 and report["driver_entry"] is None
    text = ndisproxy("driver", "info", "--no-driver-entry", drivers.path("mocknic"))
    assert "DriverEntry not run (--no-driver-entry)" in text.stdout


# -- an image that cannot run ----------------------------------------------------------


def test_missing_imports_are_listed_in_full():
    path = drivers.testing_path("missing")
    loader = loader_message(path)
    code, report = info_json(path)
    assert code == 1 and not report["ok"]
    assert report["unresolved"] == loader.imports == [
        "NDIS.SYS!NdisFrobnicateWidget", "NDIS.SYS!NdisMIndicateMagicPacket",
        "ntoskrnl.exe!KeQueryImaginaryCounter"]
    assert report["problems"] == [str(loader)]         # the loader's words, whole
    assert report["driver_entry"] is None               # nothing of it ran
    modules = {m["module"]: m for m in report["imports"]}
    assert modules["NDIS.SYS"]["resolved"] == 2
    assert {"name": "NdisFrobnicateWidget", "status": "no-export"} in \
        modules["NDIS.SYS"]["functions"]

    text = ndisproxy("driver", "info", path)
    assert text.returncode == 1
    assert text.stderr == str(loader) + "\n"
    assert "  NDIS.SYS      4        2         NdisFrobnicateWidget, NdisMIndicateMagicPacket" \
        in text.stdout
    assert "DriverEntry not run (the image cannot load)" in text.stdout


def test_the_daemon_refuses_it_with_the_same_list(tmp_path):
    path = drivers.testing_path("missing")
    loader = loader_message(path)
    table = {"name": "npmiss0", "driver": str(path), "isolation": "inprocess",
             "wire": {"kind": "loopback"}}

    async def main():
        daemon = Daemon(configuration.Config(daemon=configuration.DaemonConfig(), adapters=()))
        async with trio.open_nursery() as nursery:
            await nursery.start(daemon.run)
            with pytest.raises(DaemonError) as info:
                await daemon.add_adapter(configuration.adapter_config(table))
            nursery.cancel_scope.cancel()
        return info.value

    refusal = trio.run(main)
    assert str(refusal) == f"npmiss0: driver refused: {loader}"
    # check-config (and so `ndisproxy run`) says it before anything is made.
    config_path = tmp_path / "ndisproxy.toml"
    config_path.write_text(f'[[adapter]]\nname = "npmiss0"\ndriver = "{path}"\n'
                           '[adapter.wire]\nkind = "loopback"\n')
    with pytest.raises(configuration.ConfigError) as info:
        configuration.check_system(configuration.load(config_path))
    assert (info.value.key, info.value.problem) == ("adapter[0].driver", str(loader))


def test_a_32_bit_machine(tmp_path):
    data = bytearray(drivers.path("mocknic").read_bytes())
    lfanew = struct.unpack_from("<I", data, 60)[0]
    struct.pack_into("<H", data, lfanew + 4, 0x014c)
    path = tmp_path / "old.sys"
    path.write_bytes(data)
    code, report = info_json(path)
    assert code == 1 and report["machine"] == "i386"
    assert report["problems"] == ["old.sys: i386 (0x14c) PE32+ image: only x86-64 (0x8664) "
                                  "PE32+ drivers can run here"]


def test_usage_errors_exit_2(tmp_path):
    result = ndisproxy("driver", "info", tmp_path / "absent.sys")
    assert (result.returncode, result.stderr) == (
        2, f"ndisproxy driver info: {tmp_path / 'absent.sys'}: No such file or directory\n")
    result = ndisproxy("driver", "info", "--store", tmp_path, "nosuch")
    assert result.returncode == 2
    assert result.stderr == (f"ndisproxy driver info: no driver 'nosuch' in {tmp_path} "
                             "(installed: none) and no bundled driver 'nosuch'\n")
    assert ndisproxy("driver").returncode == 2
    assert ndisproxy("driver", "info").returncode == 2


# -- damaged images ------------------------------------------------------------------


def header_boundaries(data):
    """Offsets where a PE32+ file's structures begin and end."""
    lfanew = struct.unpack_from("<I", data, 60)[0]
    opt_size = struct.unpack_from("<H", data, lfanew + 20)[0]
    nsections = struct.unpack_from("<H", data, lfanew + 6)[0]
    table = lfanew + 24 + opt_size
    cuts = {0, 2, 63, 64, lfanew, lfanew + 4, lfanew + 24, lfanew + 26, lfanew + 24 + 112,
            table, table + 40 * nsections}
    for i in range(nsections):
        raw_size, raw_offset = struct.unpack_from("<II", data, table + 40 * i + 16)
        if raw_size:            # .bss has no bytes in the file
            cuts |= {raw_offset, raw_offset + raw_size // 2, raw_offset + raw_size - 1}
    return sorted(c for c in cuts if 0 <= c < len(data))


@pytest.mark.parametrize("name", ["mocknic", "missing"])
def test_every_truncation_is_one_line(name):
    path = drivers.path(name) if name == "mocknic" else drivers.testing_path(name)
    data = path.read_bytes()
    for cut in header_boundaries(data):
        with pytest.raises(peimage.ImageFormatError) as info:
            peimage.read(data[:cut], "cut.sys")
        assert "\n" not in str(info.value) and str(info.value).startswith("cut.sys: ")


def test_a_truncated_file_through_the_command(tmp_path):
    data = drivers.path("mocknic").read_bytes()
    path = tmp_path / "cut.sys"
    path.write_bytes(data[:300])
    result = ndisproxy("driver", "info", path)
    assert result.returncode == 1
    assert result.stderr == ("cut.sys: truncated image: optional header needs 240 bytes at "
                             "0x98, file has 300\n")
    code, report = info_json(path)
    assert code == 1 and report["problems"] == [result.stderr.strip()]


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_corrupted_headers_are_one_line_or_read(data):
    image = bytearray(drivers.testing_path("missing").read_bytes())
    head = min(len(image), 1024)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, head - 1))
        image[at] = data.draw(st.integers(0, 255))
    try:
        read = peimage.read(bytes(image), "fuzz.sys")
    except peimage.ImageFormatError as exc:
        assert "\n" not in str(exc)
        return
    for item in read.imports:
        peimage.status(item)
