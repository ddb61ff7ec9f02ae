"""A driver that imports a helper DLL (usehelper.sys + nphelper.dll) passes
every check the daemon and `driver info` make, and runs in a sandboxed
host, which is handed the DLL as an fd like the image itself."""
import json
import shutil
import subprocess
import sys

import pytest
import trio

from ndisproxy import config as configuration
from ndisproxy import drivers, errors, peimage
from ndisproxy.daemon import Daemon

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures


def test_the_checks_bind_imports_to_the_helper_beside_the_driver(tmp_path):
    path = drivers.testing_path("usehelper")
    image = peimage.check_file(path)            # would raise: unresolved imports
    assert set(peimage.helpers_beside(path, image)) == {"nphelper.dll"}
    # Without its helper the same image names exactly the helper's imports.
    alone = tmp_path / "usehelper.sys"
    shutil.copy(path, alone)
    with pytest.raises(errors.UnresolvedImportsError) as info:
        peimage.check_file(alone)
    assert info.value.imports == ["nphelper.dll!NpHelperChecksum", "nphelper.dll!#2"]


def test_missing_exports_of_a_helper_stay_unresolved():
    helper = drivers.testing_path("usehelper").with_name("nphelper.dll")
    exports = peimage.read_exports(helper.read_bytes(), helper.name)
    assert "NpHelperChecksum" in exports.names
    assert 2 in exports.ordinals
    item = peimage.Import("nphelper.dll", "NoSuchFunction")
    assert peimage.status(item, {"nphelper.dll": exports}) == peimage.NO_EXPORT


def test_driver_info_resolves_the_helper_and_runs_its_driver_entry():
    result = subprocess.run([sys.executable, "-m", "ndisproxy", "driver", "info", "--json",
                             str(drivers.testing_path("usehelper"))],
                            capture_output=True, text=True, timeout=60, cwd="/")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["unresolved"] == [] and report["helpers"] == ["nphelper.dll"]
    assert report["driver_entry"]["ok"], report["driver_entry"]


async def test_a_process_host_loads_the_helper_it_was_handed(require_net):  # noqa: F811
    name = unique_name("nph")
    text = f"""
[[adapter]]
name = "{name}"
driver = "{drivers.testing_path("usehelper")}"
[adapter.wire]
kind = "loopback"
"""
    daemon = Daemon(configuration.loads(text, name="<test>"))
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        state = daemon.adapters[name]
        await daemon.wait_until(lambda: state.last_fault is not None, 10)
        assert set(state.helpers) == {"nphelper.dll"}
        # usehelper.sys is no NIC driver: it loads with its helper, runs
        # DllInitialize, DriverEntry and MiniportInitialize in the sandboxed
        # host, then refuses a packet filter - which the host reports as a
        # clear error (not an unresolved import, not a silent exit).
        assert state.last_fault["error"] == \
            "packet filter 0xb refused: NDIS_STATUS_NOT_SUPPORTED", state.last_fault
        nursery.cancel_scope.cancel()
