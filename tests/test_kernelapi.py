"""The kernel, HAL and NDIS helpers kernelapi.sys (csrc/drivers/testing/
kernelapi.c) calls in DriverEntry: pool, strings, the C runtime, time,
events.  It prints "name=value" lines; each is checked here."""
import time

from ndisproxy import DriverImage, drivers

EPOCH_1601 = 11_644_473_600          # seconds from 1601-01-01 to 1970-01-01


def results():
    with DriverImage.load(drivers.testing_path("kernelapi")) as image:
        return dict(line.split("=", 1) for line in image.log())


def test_kernel_helpers_a_driver_calls_in_driver_entry():
    before = time.time()
    seen = results()
    after = time.time()
    assert seen.pop("pool") == "ok"
    assert seen.pop("ndis_memory") == "00000000"                # NDIS_STATUS_SUCCESS
    assert seen.pop("ansi") == "9/10"
    assert seen.pop("rtl_equal") == seen.pop("ndis_equal") == "1/0"   # case-insensitive only
    assert seen.pop("copy") == "Spee/8"                          # cut to the destination
    assert seen.pop("initialize") == "made/8"
    assert seen.pop("memmove") == "aabcde"                       # overlapping, done right
    assert seen.pop("memcmp") == "-1"
    assert seen.pop("strlen") == "5"
    system_time = int(seen.pop("system_time")) / 1e7 - EPOCH_1601
    assert before - 1 <= system_time <= after + 1
    assert seen.pop("time_increment") == "156250"
    assert seen.pop("frequency") == "1000000000"
    stalled = int(seen.pop("stalled"))
    print(f"KeStallExecutionProcessor(2000) took {stalled / 1e6:.3f} ms")
    assert 2_000_000 <= stalled < 1_000_000_000
    assert seen.pop("spin_lock") == "0"
    assert seen.pop("events") == "0/1/0"                         # unset, set, reset
    assert seen.pop("dbgprintex") == "42"
    assert seen == {}
