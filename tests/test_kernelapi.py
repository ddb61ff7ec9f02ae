"""The kernel, HAL and NDIS helpers kernelapi.sys (csrc/drivers/testing/
kernelapi.c) calls in DriverEntry: pool, strings, the C runtime, time (the
KUSER_SHARED_DATA clocks too), events.  It prints "name=value" lines; each
is checked here."""
import time

from ndisproxy import DriverImage, drivers

EPOCH_1601 = 11_644_473_600          # seconds from 1601-01-01 to 1970-01-01
TICK_NS = 156_250 * 100              # KeQueryTimeIncrement(), 100 ns units


def results():
    with DriverImage.load(drivers.testing_path("kernelapi")) as image:
        return dict(line.split("=", 1) for line in image.log())


def test_kernel_helpers_a_driver_calls_in_driver_entry():
    monotonic_before, before = time.monotonic_ns(), time.time()
    seen = results()
    after, monotonic_after = time.time(), time.monotonic_ns()
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

    # KeQuerySystemTime is the same clock as NdisGetCurrentSystemTime and
    # Python's time.time(), in 100 ns units since 1601.
    system_time, ndis_time = (int(t) for t in seen.pop("ke_system_time").split("/"))
    assert system_time <= ndis_time < system_time + 10_000_000
    assert before - 1 <= system_time / 1e7 - EPOCH_1601 <= after + 1
    # KeQueryTickCount counts KeQueryTimeIncrement() (100 ns units) ticks of
    # the monotonic clock KeQueryPerformanceCounter reads in ns.
    ticks = [int(t) for t in seen.pop("tick_count").split("/")]
    counter = [int(c) for c in seen.pop("tick_counter").split("/")]
    for count, ns in zip(ticks, counter):
        assert count * TICK_NS <= ns < (count + 2) * TICK_NS      # read just before it
    assert ticks[1] - ticks[0] >= 2                          # stalled two ticks and more
    assert monotonic_before // TICK_NS <= ticks[0] <= ticks[1] <= monotonic_after // TICK_NS
    assert seen.pop("events") == "0/1/0"                         # unset, set, reset
    assert seen.pop("dbgprintex") == "42"
    assert seen == {}
