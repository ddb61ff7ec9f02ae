"""Every fault-injection knob of the mock driver is caught with a precise report."""
import pytest

from ndisproxy import (
    AccessViolationFault, BugCheckFault, DriverImage, DriverTimeoutFault, StackOverflowFault,
    VerifierFault, drivers,
)
from ndisproxy._binding import lib
from ndisproxy.host import DEFAULT_MAC

OID_MOCKNIC_FAULT = 0xFF010001
FAULTS = {"overflow": 1, "wild": 2, "hang": 3, "leak": 4, "double-complete": 5,
          "bad-unlock": 6, "wrong-irql": 7, "bad-dma": 8, "bugcheck": 9}
FRAME = bytes.fromhex(DEFAULT_MAC.replace(":", "")) + bytes.fromhex("02aabbccddee0800") + bytes(46)


@pytest.fixture
def nic():
    image = DriverImage.load(drivers.path("mocknic"))
    adapter = image.create_adapter()
    adapter.attach_mocknic(DEFAULT_MAC)
    adapter.initialize()
    adapter.set_deadline("MiniportSetInformation", 0.2)
    adapter.set_deadline("MiniportSendPackets", 0.2)
    yield adapter
    image.close()


def inject(adapter, name):
    return adapter.set_raw(OID_MOCKNIC_FAULT, FAULTS[name].to_bytes(4, "little"))


def pump(adapter):
    """One round of what the host does after sending."""
    adapter.send([FRAME])
    for _ in range(4):
        adapter.service_interrupt()
        adapter.events()
        adapter.return_packets()


@pytest.mark.parametrize("name, exc, where", [
    ("overflow", StackOverflowFault, "mocknic.sys+0x"),
    ("wild", AccessViolationFault, "mocknic.sys+0x"),
    ("hang", DriverTimeoutFault, "mocknic.sys+0x"),
])
def test_trapped_faults_name_the_entry_point_and_offset(nic, name, exc, where):
    with pytest.raises(exc) as info:
        inject(nic, name)
    assert info.value.entry_point == "MiniportSetInformation"
    assert info.value.where.startswith(where)
    assert info.value.irql == 2                          # DISPATCH_LEVEL: OID sets run there


def test_bugcheck_names_its_code(nic):
    with pytest.raises(BugCheckFault, match=r"KeBugCheckEx\(0x4D4E4943, 0x1, 0x2, 0x3, 0x4\)"):
        inject(nic, "bugcheck")


@pytest.mark.parametrize("name, kind, text", [
    ("bad-unlock", "lock-not-held", "not held"),
    ("wrong-irql", "irql", "NdisMSleep called at IRQL 2"),
])
def test_verifier_catches_immediate_knobs(nic, name, kind, text):
    inject(nic, name)
    found = [v for v in nic.violations() if v.kind == kind]
    assert found and text in found[0].text, nic.violations()
    nic.set_fatal(kind)
    with pytest.raises(VerifierFault, match=kind):
        inject(nic, name)


def test_double_completion_is_caught(nic):
    inject(nic, "double-complete")
    pump(nic)
    found = [v for v in nic.violations() if v.kind == "double-complete"]
    assert found and "completed twice" in found[0].text
    assert nic.stats()["tx_completed"] == 1


def test_bad_dma_address_faults_the_driver_not_the_host(nic):
    nic.set_fatal("bad-dma")
    inject(nic, "bad-dma")
    with pytest.raises(VerifierFault, match="bad-dma: device: TX descriptor"):
        pump(nic)


def test_bad_dma_as_a_warning_is_counted(nic):
    inject(nic, "bad-dma")
    pump(nic)
    assert nic.device_counters()["dma_errors"] == 1
    assert any(v.kind == "bad-dma" and "0x12345000" in v.text for v in nic.violations())


def test_leak_at_halt_is_reported_by_tag(nic):
    inject(nic, "leak")
    nic.halt()
    leaks = [v for v in nic.violations() if v.kind == "pool-leak"]
    assert leaks and "tag 'Leak'" in leaks[0].text
    assert [tag for tag, _ in nic.allocations()] == ["Leak"]
