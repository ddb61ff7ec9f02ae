"""Faults inside driver code are trapped, reported precisely, and survived."""
import ctypes
import ctypes.util
import os
import subprocess
import sys
import textwrap
import time

import pytest

from ndisproxy import (
    AccessViolationFault, DriverFaulted, DriverImage, DriverTimeoutFault, StackOverflowFault,
    drivers,
)

from .conftest import resources

KiB = 1024


def overflow_once():
    image = DriverImage.load(drivers.testing_path("recurse"))
    try:
        adapter = image.create_adapter(stack_size=16 * KiB, parameters={"RecurseKiB": 40})
        with pytest.raises(StackOverflowFault) as info:
            adapter.initialize()
        return info.value
    finally:
        image.close()


def fresh_adapter_works():
    with DriverImage.load(drivers.testing_path("recurse")) as image:
        adapter = image.create_adapter(stack_size=16 * KiB, parameters={"RecurseKiB": 4})
        adapter.initialize()
        adapter.halt()
        return image.log()


def test_overflow_of_16k_stack_names_entry_point_and_depth():
    fault = overflow_once()
    assert fault.entry_point == "MiniportInitialize"
    assert fault.where.startswith("recurse.sys+0x")
    # The fault happened at the bottom of the 16 KiB stack.
    assert 16 * KiB - 512 <= fault.depth <= 16 * KiB + 4 * KiB
    assert "stack overflow in MiniportInitialize of recurse.sys" in str(fault)
    assert fresh_adapter_works()[0].startswith("recurse: 4 KiB deep")


def test_faulted_image_refuses_further_calls(load):
    image = load("recurse")
    adapter = image.create_adapter(stack_size=16 * KiB, parameters={"RecurseKiB": 40})
    with pytest.raises(StackOverflowFault):
        adapter.initialize()
    with pytest.raises(DriverFaulted):
        adapter.initialize()
    with pytest.raises(DriverFaulted):
        image.create_adapter()


@pytest.mark.slow
def test_200_overflows_leak_nothing():
    counts = {}
    for rep in range(1, 201):
        overflow_once()
        fresh_adapter_works()
        if rep in (10, 200):
            counts[rep] = resources()
    print(f"(mappings, maps lines, fds) at 10: {counts[10]}, at 200: {counts[200]}")
    assert counts[200] == counts[10]


def test_wild_pointer_is_an_access_violation_with_image_offset(load):
    image = load("wild")
    adapter = image.create_adapter()
    with pytest.raises(AccessViolationFault) as info:
        adapter.initialize()
    fault = info.value
    assert fault.address == 0xDEAD0000
    assert fault.entry_point == "MiniportInitialize"
    name, offset = fault.where.split("+")
    assert name == "wild.sys"
    assert 0x1000 <= int(offset, 16) < image.size       # inside the image's code
    assert f"at wild.sys+{offset}" in str(fault)


def test_wild_pointer_report_shows_the_faulting_code(load):
    adapter = load("wild").create_adapter()
    with pytest.raises(AccessViolationFault) as info:
        adapter.initialize()
    # The store of 0x0badf00d: c7 (mov r/m32, imm32, perhaps after an
    # address-size prefix), then the immediate.
    code = str(info.value).split("(code ", 1)[1].split(")")[0]
    assert code.split()[:2].count("c7") == 1 and "0d f0 ad 0b" in code


def floating_point_state():
    """What the calling thread's control state does to arithmetic: MXCSR
    rounding (SSE doubles) and x87 precision (long double square root)."""
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.sqrtl.restype = ctypes.c_longdouble
    libm.sqrtl.argtypes = [ctypes.c_longdouble]
    a, b = float("0.1"), float("0.2")
    return a + b, libm.sqrtl(2.0)


def test_abort_restores_floating_point_control_state(load):
    before = floating_point_state()
    assert before == (0.30000000000000004, 1.4142135623730951)   # nearest, double-extended
    adapter = load("wild").create_adapter(parameters={"SpoilFloatingPoint": 1})
    with pytest.raises(AccessViolationFault):
        adapter.initialize()
    assert floating_point_state() == before


def test_hang_is_aborted_at_its_deadline(load):
    image = load("spin")
    adapter = image.create_adapter()
    adapter.set_deadline("MiniportInitialize", 0.2)
    start = time.monotonic()
    with pytest.raises(DriverTimeoutFault) as info:
        adapter.initialize()
    elapsed = time.monotonic() - start
    print(f"hang detected after {elapsed * 1000:.0f} ms (deadline 200 ms)")
    assert 0.2 <= elapsed < 1.0
    assert info.value.where.startswith("spin.sys+0x")


FAULTHANDLER_SCRIPT = """
import ctypes, faulthandler, sys
from ndisproxy import DriverImage, AccessViolationFault, drivers
if sys.argv[1] == "before":
    faulthandler.enable()
image = DriverImage.load(drivers.testing_path("wild"))   # installs the trap
if sys.argv[1] == "after":
    faulthandler.enable()                                  # now on top of ours
adapter = image.create_adapter()                           # re-chains ours on top
if sys.argv[1] == "after-create":
    faulthandler.enable()                                  # on top again: initialize re-chains
try:
    adapter.initialize()
except AccessViolationFault as exc:
    print("driver fault trapped:", exc, flush=True)
ctypes.string_at(0)                                        # a real crash, not the driver's
print("survived a real segfault?!", flush=True)
"""


@pytest.mark.parametrize("order", ["before", "after", "after-create"])
def test_real_segfault_still_reaches_faulthandler(order, tmp_path):
    script = tmp_path / "crash.py"
    script.write_text(FAULTHANDLER_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), order], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert "driver fault trapped: access violation in MiniportInitialize" in proc.stdout, proc
    assert "survived" not in proc.stdout
    assert proc.returncode == -11, proc
    assert "Fatal Python error: Segmentation fault" in proc.stderr, proc.stderr
    assert proc.stderr.count("Fatal Python error") == 1, proc.stderr


def test_main_thread_and_worker_threads_both_trap(load):
    import threading

    results = []

    def worker():
        image = DriverImage.load(drivers.testing_path("wild"))
        try:
            image.create_adapter().initialize()
        except AccessViolationFault as exc:
            results.append(exc.where)
        finally:
            image.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(w.startswith("wild.sys+0x") for w in results)
    assert os.getpid()                                     # and we are still here
