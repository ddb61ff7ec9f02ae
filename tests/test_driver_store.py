"""The driver store: install from an INF, list, use by name, remove.

Stores live in tmp_path; the daemon test runs the installed driver in a
host process behind a real TAP and reads what the INF's defaults (and the
config's overrides) did to the driver through an OID.
"""
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest
import trio

from ndisproxy import config as configuration
from ndisproxy import drivers
from ndisproxy.daemon import Daemon
from ndisproxy.inf import InfError
from ndisproxy.store import DriverStore, StoreError

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures


def ndisproxy(*args):
    return subprocess.run([sys.executable, "-m", "ndisproxy", *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def vendor_package(tmp_path, mtu_default="1400", name="vendor"):
    """A copy of mocknic's package as a vendor would ship it: the INF and
    the image side by side, with MTU's default changed."""
    folder = tmp_path / f"{name}-package"
    folder.mkdir(parents=True)
    text = drivers.inf_path("mocknic").read_text()
    assert 'default,   0, "1500"' in text
    (folder / f"{name}.inf").write_text(text.replace('default,   0, "1500"',
                                                     f'default,   0, "{mtu_default}"'))
    shutil.copy(drivers.path("mocknic"), folder / "mocknic.sys")
    return folder / f"{name}.inf"


# -- the store --------------------------------------------------------------------


def test_install_list_get_remove(tmp_path):
    store = DriverStore(tmp_path / "store")
    assert store.names() == []                      # not created until the first install
    stored = store.install(drivers.inf_path("mocknic"))
    assert stored.name == "mocknic"
    assert stored.directory == tmp_path / "store" / "mocknic"
    assert stored.image.read_bytes() == drivers.path("mocknic").read_bytes()
    assert stored.inf.read_bytes() == drivers.inf_path("mocknic").read_bytes()
    assert stored.parameters == {"MTU": "1500", "TxRing": "64", "RxRing": "128",
                                 "InterruptModeration": "0"}
    manifest = json.loads((stored.directory / "manifest.json").read_text())
    assert manifest["image"] == "mocknic.sys" and manifest["service"] == "mocknic"
    assert manifest["files"] == [{"name": "mocknic.sys", "sha256": hashlib.sha256(
        drivers.path("mocknic").read_bytes()).hexdigest()}]
    assert manifest["parameters"]["MTU"]["minimum"] == "576"
    assert manifest["parameters"]["NetworkAddress"]["value"] is None
    for path in stored.directory.iterdir():         # hosts may run as another user
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert store.names() == ["mocknic"]
    assert [d.name for d in store.drivers()] == ["mocknic"]

    with pytest.raises(StoreError) as info:
        store.install(drivers.inf_path("mocknic"))
    assert str(info.value) == (f"a driver 'mocknic' is already installed in {store.directory}; "
                               "remove it first (ndisproxy driver remove mocknic)")
    store.remove("mocknic")
    assert store.names() == []
    assert list(store.directory.iterdir()) == []    # nothing hidden left behind either
    with pytest.raises(KeyError):
        store.remove("mocknic")
    with pytest.raises(KeyError):
        store.get("mocknic")


def test_install_under_another_name(tmp_path):
    store = DriverStore(tmp_path)
    assert store.install(vendor_package(tmp_path), name="nic2").name == "nic2"
    assert store.get("nic2").parameters["MTU"] == "1400"
    for bad in ("Upper", "-x", "a/b", "x.sys", ""):
        with pytest.raises(StoreError, match="is not a driver name"):
            store.install(vendor_package(tmp_path, name=f"v{len(bad)}{bad[:1]}"), name=bad)


def test_a_refused_inf_leaves_the_store_untouched(tmp_path):
    inf = vendor_package(tmp_path)
    (inf.parent / "mocknic.sys").unlink()
    store = DriverStore(tmp_path / "store")
    with pytest.raises(InfError, match=r"mocknic\.sys \(copied by \[MockNic\.ndi\.NTamd64\]\)"):
        store.install(inf)
    assert not store.directory.exists()


def test_a_value_the_registry_cannot_hold_is_refused_at_install(tmp_path):
    inf = vendor_package(tmp_path, mtu_default="1" * 200)
    with pytest.raises(InfError) as info:
        DriverStore(tmp_path / "store").install(inf)
    line = next(i for i, text in enumerate(inf.read_text().splitlines(), 1) if "1" * 200 in text)
    assert str(info.value) == (f"{inf}:{line}: MTU's value is 200 bytes; a parameter value can "
                               "have at most 191")


def test_a_damaged_record_is_one_line(tmp_path):
    store = DriverStore(tmp_path)
    stored = store.install(drivers.inf_path("mocknic"))
    (stored.directory / "manifest.json").write_text("{")
    with pytest.raises(StoreError) as info:
        store.get("mocknic")
    assert str(info.value).startswith(f"{stored.directory / 'manifest.json'}: cannot read the "
                                      "driver's record: ")
    assert store.drivers() == []


# -- the command line --------------------------------------------------------------


def test_cli_install_list_remove(tmp_path):
    store = tmp_path / "store"
    result = ndisproxy("driver", "install", "--store", store, vendor_package(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"installed vendor (ndisproxy, 01/01/2025,0.1.0.0) in "
                             f"{store / 'vendor'}: mocknic.sys, 4 parameter defaults\n"
                             "model: ndisproxy mock NIC (NDIS 5.1) (PCI\\VEN_4E50&DEV_4E31); "
                             "1 other in the INF (--model)\n")
    listed = ndisproxy("driver", "list", "--store", store)
    assert listed.returncode == 0
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "IMAGE", "VERSION", "PROVIDER", "PARAMETERS",
                              "INSTALLED", "(UTC)"]
    assert row.split()[:5] == ["vendor", "mocknic.sys", "01/01/2025,0.1.0.0", "ndisproxy", "4"]
    as_json = json.loads(ndisproxy("driver", "list", "--json", "--store", store).stdout)
    assert [d["name"] for d in as_json["drivers"]] == ["vendor"]
    assert as_json["drivers"][0]["parameters"]["MTU"]["value"] == "1400"

    again = ndisproxy("driver", "install", "--store", store, vendor_package(tmp_path / "again"))
    assert again.returncode == 1
    assert again.stderr.startswith("ndisproxy driver install: a driver 'vendor' is already")
    removed = ndisproxy("driver", "remove", "--json", "--store", store, "vendor")
    assert (removed.returncode, json.loads(removed.stdout)) == (
        0, {"ok": True, "store": str(store), "removed": "vendor"})
    gone = ndisproxy("driver", "remove", "--store", store, "vendor")
    assert (gone.returncode, gone.stderr) == (
        2, f"ndisproxy driver remove: no driver 'vendor' in {store} (installed: none)\n")
    assert ndisproxy("driver", "list", "--store", store).stdout == \
        f"no drivers installed in {store}\n"


def test_cli_install_another_model(tmp_path):
    """mocknic.inf has a second model, the server board, whose install
    section sets deeper rings; --model picks it by hardware id."""
    store = tmp_path / "store"
    first = ndisproxy("driver", "install", "--store", store, "--name", "desk", "mocknic")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[1] == (
        "model: ndisproxy mock NIC (NDIS 5.1) (PCI\\VEN_4E50&DEV_4E31); 1 other in the INF "
        "(--model)")
    server = ndisproxy("driver", "install", "--json", "--store", store, "--name", "server",
                       "--model", "pci\\ven_4e50&dev_4e32", "mocknic")
    assert server.returncode == 0, server.stderr
    manifest = json.loads(server.stdout)["driver"]
    assert manifest["model"] == {"description": "ndisproxy mock NIC, server rings (NDIS 5.1)",
                                 "hardware_ids": ["PCI\\VEN_4E50&DEV_4E32"]}
    assert manifest["install_section"] == "MockNicServer.ndi.NTamd64"
    assert DriverStore(store).get("server").parameters["RxRing"] == "512"
    assert DriverStore(store).get("desk").parameters["RxRing"] == "128"
    missing = ndisproxy("driver", "install", "--store", store, "--model", "PCI\\VEN_8086",
                        "mocknic")
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1
    assert 'no model with hardware id or description "PCI\\VEN_8086"' in missing.stderr


def test_cli_malformed_inf_is_one_line_with_file_and_line(tmp_path):
    inf = vendor_package(tmp_path)
    inf.write_text(inf.read_text().replace("Class       = Net", "Class       = Display"))
    result = ndisproxy("driver", "install", "--store", tmp_path / "store", inf)
    assert result.returncode == 2
    assert result.stderr == (f"ndisproxy driver install: {inf}:12: Class=Display: not a network "
                             "adapter driver; ndisproxy runs NDIS miniports (Class=Net)\n")
    as_json = ndisproxy("driver", "install", "--json", "--store", tmp_path / "store", inf)
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["error"].startswith(f"{inf}:12: Class=Display")


# -- the configuration --------------------------------------------------------------


def adapter_text(driver, parameters="", name="ndis0", store="store"):
    return textwrap.dedent(f"""
        [daemon]
        driver_store = "{store}"
        [[adapter]]
        name = "{name}"
        driver = "{driver}"
        [adapter.wire]
        kind = "loopback"
        [adapter.parameters]
    """) + parameters


def test_config_driver_name_is_the_stored_image_with_its_inf_defaults(tmp_path):
    stored = DriverStore(tmp_path / "store").install(vendor_package(tmp_path))
    config = configuration.loads(adapter_text("vendor"), directory=tmp_path)
    assert config.daemon.driver_store == tmp_path / "store"
    adapter = config.adapters[0]
    assert (adapter.driver, adapter.driver_name) == (stored.image, "vendor")
    assert adapter.parameters == {"MTU": "1400", "TxRing": "64", "RxRing": "128",
                                  "InterruptModeration": "0"}
    # The config wins, whatever the case it writes a name in.
    config = configuration.loads(adapter_text("vendor", "mtu = 1280\nExtra = \"x\"\n"),
                                 directory=tmp_path)
    assert config.adapters[0].parameters == {"TxRing": "64", "RxRing": "128",
                                             "InterruptModeration": "0", "mtu": 1280,
                                             "Extra": "x"}


def test_a_bundled_name_still_works_when_the_store_lacks_it(tmp_path):
    config = configuration.loads(adapter_text("mocknic"), directory=tmp_path)
    assert config.adapters[0].driver == drivers.path("mocknic")
    assert config.adapters[0].parameters == {}


def test_unknown_driver_name_is_one_line(tmp_path):
    DriverStore(tmp_path / "store").install(vendor_package(tmp_path))
    path = tmp_path / "ndisproxy.toml"
    path.write_text(adapter_text("nosuch"))
    with pytest.raises(configuration.ConfigError) as info:
        configuration.load(path)
    assert str(info.value) == (
        f'{path}: adapter[0].driver: no driver "nosuch" in the driver store {tmp_path / "store"}'
        " (installed: vendor) and no bundled driver 'nosuch' (bundled: mocknic); install one "
        'with ndisproxy driver install FILE.inf, or give a path to a .sys (with a "/" or ending '
        'in ".sys")')
    result = ndisproxy("check-config", "--no-system", path)
    assert result.returncode == 2
    assert result.stderr == str(info.value) + "\n"


def test_too_many_parameters_counting_the_inf_defaults(tmp_path):
    DriverStore(tmp_path / "store").install(vendor_package(tmp_path))
    many = "".join(f"P{i} = {i}\n" for i in range(configuration.MAX_PARAMETERS - 3))
    path = tmp_path / "ndisproxy.toml"
    path.write_text(adapter_text("vendor", many))
    with pytest.raises(configuration.ConfigError) as info:
        configuration.load(path)
    assert info.value.problem == (f"{configuration.MAX_PARAMETERS + 1} parameters, counting 4 "
                                  "defaults from the INF of vendor; a driver can have at most "
                                  f"{configuration.MAX_PARAMETERS}")


def test_check_config_json_shows_what_the_driver_gets(tmp_path):
    DriverStore(tmp_path / "store").install(vendor_package(tmp_path))
    path = tmp_path / "ndisproxy.toml"
    path.write_text(adapter_text("vendor", "TxRing = 256\n"))
    result = ndisproxy("check-config", "--json", "--no-system", path)
    assert result.returncode == 0, result.stderr
    adapter = json.loads(result.stdout)["adapters"][0]
    assert adapter["driver"] == str(tmp_path / "store" / "vendor" / "mocknic.sys")
    assert adapter["parameters"] == {"MTU": "1400", "RxRing": "128",
                                     "InterruptModeration": "0", "TxRing": 256}


# -- in a running daemon --------------------------------------------------------------


async def frame_size(daemon, name):
    reply = await daemon.request(name, "query", oid="OID_GEN_MAXIMUM_FRAME_SIZE", length=4)
    assert reply["status"] == 0, reply
    return int.from_bytes(bytes.fromhex(reply["data"]), "little")


async def run_and_ask(tmp_path, text):
    config = await trio.to_thread.run_sync(
        lambda: configuration.loads(text, name="<test>", directory=tmp_path))
    async with trio.open_nursery() as nursery:
        daemon = Daemon(config)
        await nursery.start(daemon.run)
        name = config.adapters[0].name
        await daemon.wait_state(name, "running")
        size = await frame_size(daemon, name)
        assert daemon.adapters[name].pid != os.getpid()         # in a host process
        nursery.cancel_scope.cancel()
    return size


async def test_install_use_in_a_daemon_override_and_remove(require_net, tmp_path):  # noqa: F811
    inf = vendor_package(tmp_path, mtu_default="1400")
    installed = await trio.to_thread.run_sync(
        ndisproxy, "driver", "install", "--store", tmp_path / "store", inf)
    assert installed.returncode == 0, installed.stderr
    name = unique_name("nps")
    # The INF's default reached the driver: its MTU is what it reports.
    assert await run_and_ask(tmp_path, adapter_text("vendor", name=name)) == 1400
    # A config parameter overrides the INF's default.
    assert await run_and_ask(tmp_path, adapter_text("vendor", "MTU = 1280\n", name=name)) == 1280
    removed = await trio.to_thread.run_sync(
        ndisproxy, "driver", "remove", "--store", tmp_path / "store", "vendor")
    assert removed.returncode == 0, removed.stderr
    with pytest.raises(configuration.ConfigError, match='no driver "vendor" in the driver store'):
        configuration.loads(adapter_text("vendor", name=name), directory=tmp_path)


async def test_a_removed_driver_is_retried_until_installed_again(require_net, tmp_path):  # noqa: F811
    store = DriverStore(tmp_path / "store")
    await trio.to_thread.run_sync(store.install, vendor_package(tmp_path))
    name = unique_name("npr")
    config = configuration.loads(adapter_text("vendor", name=name), name="<test>",
                                 directory=tmp_path)
    async with trio.open_nursery() as nursery:
        daemon = Daemon(config)
        await nursery.start(daemon.run)
        await daemon.wait_state(name, "running")
        await trio.to_thread.run_sync(store.remove, "vendor")
        with trio.move_on_after(5):        # the host dies answering: no reply comes
            await daemon.request(name, "set", oid=0xFF010001,            # a wild write
                                 data=(2).to_bytes(4, "little").hex())
        state = daemon.adapters[name]
        # The fault restarts the host; the image is gone, so that start fails
        # too, and is retried rather than ending the daemon.
        await daemon.wait_until(lambda: "No such file" in (state.last_fault or {}).get(
            "error", ""), 10)
        assert state.state in ("faulted", "restarting")
        await trio.to_thread.run_sync(store.install, vendor_package(tmp_path / "again"))
        await daemon.wait_state(name, "running", 40)
        assert await frame_size(daemon, name) == 1400
        nursery.cancel_scope.cancel()


def test_cli_refuses_a_name_it_cannot_store(tmp_path):
    inf = vendor_package(tmp_path)
    spaced = inf.with_name("Vendor NIC.inf")
    inf.rename(spaced)
    result = ndisproxy("driver", "install", "--store", tmp_path / "store", spaced)
    assert result.returncode == 2
    assert result.stderr == ("ndisproxy driver install: 'vendor nic' is not a driver name: "
                             "1..64 of a-z, 0-9, _ . + -, starting with a letter or digit, not "
                             "ending in .sys (choose one with --name)\n")
    assert ndisproxy("driver", "install", "--store", tmp_path / "store", "--name", "nic",
                     spaced).returncode == 0
