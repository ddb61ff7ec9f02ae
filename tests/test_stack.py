"""Private stacks: sizes, and high-water marks that match the real depth."""
import pytest

from ndisproxy import DriverImage, drivers
from ndisproxy._binding import mappings

from .conftest import resident_kib

KiB = 1024


@pytest.mark.parametrize("depth_kib", [4, 8, 11, 16, 24, 40])
def test_high_water_mark_matches_recursion_depth(load, depth_kib):
    image = load("recurse")
    adapter = image.create_adapter(parameters={"RecurseKiB": depth_kib})
    adapter.initialize()
    report = adapter.stack_report()
    used = report["entry_points"]["MiniportInitialize"]["high_water"]
    print(f"asked {depth_kib} KiB, measured {used} bytes")
    assert abs(used - depth_kib * KiB) < 4096
    assert report["lifetime"] >= used
    adapter.halt()


def test_a_stack_costs_only_the_pages_its_driver_reached(load):
    """Painting is lazy: a 1 MiB stack whose driver went 20 KiB deep holds
    about 20 KiB, and the mark is still exact."""
    image = load("recurse")
    before = {addr for addr, _, kind in mappings() if kind == "stack"}
    adapter = image.create_adapter(stack_size=1024 * KiB, parameters={"RecurseKiB": 20})
    (stack,) = [(addr, length) for addr, length, kind in mappings()
                if kind == "stack" and addr not in before]
    assert resident_kib(*stack) == 0
    adapter.initialize()
    used = adapter.stack_report()["entry_points"]["MiniportInitialize"]["high_water"]
    resident = resident_kib(*stack)
    print(f"20 KiB deep: measured {used} bytes, {resident} KiB resident of 1024")
    assert abs(used - 20 * KiB) < 4096
    assert 20 <= resident <= 32
    adapter.halt()
    # Repainting after the halt touched nothing new.
    assert resident_kib(*stack) == resident


def test_lifetime_mark_keeps_the_deepest_call(load):
    image = load("recurse")
    deep = image.create_adapter(parameters={"RecurseKiB": 20})
    deep.initialize()
    deep.halt()
    report = deep.stack_report()
    assert report["lifetime"] >= 20 * KiB
    assert report["entry_points"]["MiniportHalt"]["high_water"] < 4 * KiB


def test_driver_entry_has_its_own_guarded_stack(load):
    image = load("dbgprint")
    report = image.stack_report()
    assert report["size"] == 64 * KiB
    assert 0 < report["entry_points"]["DriverEntry"]["high_water"] < 8 * KiB


@pytest.mark.parametrize("size", [0, 8 * KiB, 16 * KiB - 1, 1 << 40])
def test_stack_size_out_of_range_is_refused(size):
    with pytest.raises(ValueError, match="stack_size"):
        DriverImage.load(drivers.testing_path("recurse"), stack_size=size)


def test_configurable_stack_size(load):
    image = load("recurse")
    adapter = image.create_adapter(stack_size=256 * KiB, parameters={"RecurseKiB": 100})
    adapter.initialize()
    assert adapter.stack_report()["size"] == 256 * KiB
    adapter.halt()


def test_sampling_still_measures_the_first_call_of_every_entry_point():
    """One call in ``every`` is measured, per entry point: one that runs
    rarely (or once) still gets its high-water mark."""
    from ndisproxy.host import DEFAULT_MAC
    frame = bytes.fromhex(DEFAULT_MAC.replace(":", "")) + bytes.fromhex("02aabbccddee0800") + \
        bytes(46)
    with DriverImage.load(drivers.path("mocknic")) as image:
        adapter = image.create_adapter()
        adapter.attach_mocknic(DEFAULT_MAC)
        adapter.initialize()
        adapter.set_stack_sampling(1000)
        adapter.set_raw("OID_GEN_CURRENT_PACKET_FILTER", (1).to_bytes(4, "little"))
        for _ in range(20):
            adapter.send([frame])
            adapter.service_interrupt()
            adapter.events()
            adapter.return_packets()
        marks = adapter.stack_report()["entry_points"]
        for name in ("MiniportSetInformation", "MiniportSendPackets", "MiniportISR",
                     "MiniportHandleInterrupt", "MiniportReturnPacket"):
            assert marks[name]["high_water"] > 0, name
        assert marks["MiniportSendPackets"]["calls"] == 20
        adapter.halt()
