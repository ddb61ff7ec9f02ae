"""Instructions an MSVC-built x64 driver inlines: CR8 moves (the IRQL) and
KUSER_SHARED_DATA loads (the time) are emulated in the trap handler, and gs:
loads from the KPCR (the thread, the processor) run natively against a KPCR
each host thread has; anything else at such an address stays the driver's
fault, named."""
import struct
import threading
import time

import pytest

from ndisproxy import AccessViolationFault
from ndisproxy._binding import lib

CR8_SELFCHECK, CR8_BENCH, CR8_FORBIDDEN = 0xFF000101, 0xFF000102, 0xFF000103
KUSER_SELFCHECK, KUSER_BENCH, KUSER_FORBIDDEN = 0xFF000201, 0xFF000202, 0xFF000203
KPCR_SELFCHECK, KPCR_BENCH, KPCR_FORBIDDEN = 0xFF000301, 0xFF000302, 0xFF000303
KPCR_LAYOUT = "<3I2H4QII"                 # struct kpcr_selfcheck
KPCR_FIELDS = ("magic", "legacy_number", "number", "major", "minor", "self", "prcb", "thread",
               "entry_thread", "thread_type", "mxcsr")
PAGE = 4096

DISPATCH_LEVEL = 2
DEVICE_IRQL = 12
TICK_100NS = 156_250                    # 15.625 ms, Windows' default clock tick
EPOCH_1601 = 116_444_736_000_000_000    # 1970-01-01 in 100 ns units since 1601

CR8_FIELDS = ("magic", "at_entry", "raised_from", "after_raise", "hal_after_raise",
              "via_r13", "after_lower", "hal_after_lower", "init_irql", "init_raised")
KUSER_LAYOUT = "<2I4Q7I4x9Q"            # struct kuser_selfcheck, natural alignment
KUSER_FIELDS = ("magic", "tick_count_multiplier", "interrupt_time_0", "interrupt_time_1",
                "system_time", "tick_count", "interrupt_low", "interrupt_high1",
                "interrupt_high2", "nt_major", "nt_minor", "product_type", "image_number",
                "high_byte", "sib_index", "disp8_32bit", "r12_disp32", "word_load",
                "movzx_byte", "movzx_word", "after_0", "after_1")


def started(load, name, **parameters):
    adapter = load(name).create_adapter(parameters=parameters)
    adapter.initialize()
    return adapter


def query(adapter, oid, layout, fields):
    result = adapter.query_raw(oid, struct.calcsize(layout))
    assert result.ok, result.status_name
    return dict(zip(fields, struct.unpack(layout, result.data)))


def forbidden(load, name, oid, mode):
    adapter = started(load, name)
    with pytest.raises(AccessViolationFault) as info:
        adapter.set_raw(oid, struct.pack("<I", mode))
    message = str(info.value)
    print(message)
    assert "\n" not in message
    return message


def test_inline_irql_moves_read_and_set_the_tracked_irql(load):
    adapter = started(load, "cr8")
    check = query(adapter, CR8_SELFCHECK, "<10I", CR8_FIELDS)
    assert check == {
        "magic": 0x38524331,
        "at_entry": DISPATCH_LEVEL,             # MiniportQueryInformation's IRQL
        "raised_from": DISPATCH_LEVEL,          # what inline KeRaiseIrql returned
        "after_raise": DEVICE_IRQL,
        "hal_after_raise": DEVICE_IRQL,         # HAL's KeGetCurrentIrql agrees
        "via_r13": DEVICE_IRQL,                 # mov r13, cr8
        "after_lower": DISPATCH_LEVEL,
        "hal_after_lower": DISPATCH_LEVEL,
        "init_irql": 0,                         # MiniportInitialize: PASSIVE_LEVEL
        "init_raised": DISPATCH_LEVEL,
    }


def test_irql_raised_inline_is_what_the_verifier_sees(load):
    adapter = started(load, "cr8")
    texts = [v.text for v in adapter.violations()]
    assert texts == ["NdisMSleep called at IRQL 2 (maximum 0)"]


def test_kuser_shared_data_reads_give_our_clocks(load):
    adapter = started(load, "kuser")
    before, wall_before = lib.np_api_now_ns() // 100, time.time_ns() // 100 + EPOCH_1601
    check = query(adapter, KUSER_SELFCHECK, KUSER_LAYOUT, KUSER_FIELDS)
    after, wall_after = -(-lib.np_api_now_ns() // 100), -(-time.time_ns() // 100) + EPOCH_1601
    print(check)
    assert check["magic"] == 0x5253554B
    # InterruptTime: CLOCK_MONOTONIC in 100 ns units, monotonic across reads.
    reads = [check["interrupt_time_0"], check["interrupt_time_1"], check["after_0"],
             check["after_1"]]
    assert before <= reads[0] <= reads[1] <= reads[2] <= reads[3] <= after
    assert reads[1] <= check["sib_index"] <= reads[2]
    # Read as KSYSTEM_TIME parts: High1Time == High2Time, the same time.
    assert check["interrupt_high1"] == check["interrupt_high2"]
    parts = check["interrupt_high1"] << 32 | check["interrupt_low"]
    assert reads[1] <= parts <= reads[2]
    # SystemTime: CLOCK_REALTIME in 100 ns units since 1601 (what
    # KeQuerySystemTime returns).
    assert wall_before <= check["system_time"] <= wall_after
    low = check["disp8_32bit"]
    assert low >> 32 == 0                       # a 32-bit load zero-extends
    assert (low - check["system_time"]) % 2**32 < 10_000_000
    # TickCount: InterruptTime / 15.625 ms; TickCountMultiplier turns it into ms.
    assert reads[1] // TICK_100NS <= check["tick_count"] <= reads[2] // TICK_100NS
    assert check["tick_count"] <= check["r12_disp32"] <= reads[2] // TICK_100NS
    assert check["tick_count_multiplier"] == 0x0FA00000
    assert (check["tick_count"] * check["tick_count_multiplier"]) >> 24 == \
        check["tick_count"] * 15625 // 1000


def test_kuser_shared_data_constants_and_operand_forms(load):
    adapter = started(load, "kuser")
    check = query(adapter, KUSER_SELFCHECK, KUSER_LAYOUT, KUSER_FIELDS)
    assert (check["nt_major"], check["nt_minor"]) == (5, 2)       # XP x64 / 2003
    assert check["product_type"] == 1                              # NtProductWinNt
    assert check["image_number"] == 0x8664
    assert check["high_byte"] == 5 << 8                           # mov ah, [rcx+0x26c]
    assert check["word_load"] == 0xFFFF_FFFF_FFFF_0005             # mov bx: upper bits kept
    assert check["movzx_byte"] == 1                                # movzx r9d: zero-extended
    assert check["movzx_word"] == 0x8664


def test_unemulated_control_register_is_a_named_access_violation(load):
    message = forbidden(load, "cr8", CR8_FORBIDDEN, 1)
    assert "access violation in MiniportSetInformation of cr8.sys at cr8.sys+0x" in message
    assert "(instruction 0f 20 d" in message
    assert ", cr3: only cr8 (the IRQL) is emulated)" in message


def test_irql_above_15_is_not_emulated(load):
    message = forbidden(load, "cr8", CR8_FORBIDDEN, 2)
    assert "(instruction 44 0f 22 " in message and ": IRQL above 15)" in message


@pytest.mark.parametrize("mode, text", [
    (1, "write to KUSER_SHARED_DATA+0x14, which is read-only"),
    (2, "access to KUSER_SHARED_DATA+0x8 by an instruction that is not emulated"),
    (3, "mov from KUSER_SHARED_DATA+0xffc crossing the end of the page"),
])
def test_unemulated_kuser_shared_data_access_is_named(load, mode, text):
    message = forbidden(load, "kuser", KUSER_FORBIDDEN, mode)
    assert text in message
    assert "touching 0xfffff78000000" in message


@pytest.mark.parametrize("name, oid", [("cr8", CR8_BENCH), ("kuser", KUSER_BENCH)])
def test_cost_of_one_emulated_access(load, name, oid):
    adapter = started(load, name, Iterations=20_000)
    best = min((struct.unpack("<3Q", adapter.query_raw(oid, 24).data) for _ in range(3)),
               key=lambda r: r[1])
    iterations, emulated, plain = best
    per_access, per_load = emulated / iterations, plain / iterations
    print(f"{name}: emulated access {per_access:.0f} ns, plain load {per_load:.2f} ns")
    # A signal round trip: microseconds, against a nanosecond load (generous bounds).
    assert per_load < per_access < 100_000


# -- the KPCR through gs: -----------------------------------------------------------


def test_gs_loads_find_this_threads_kpcr_prcb_and_kthread(load):
    adapter = started(load, "kpcr")
    found = query(adapter, KPCR_SELFCHECK, KPCR_LAYOUT, KPCR_FIELDS)
    assert found["magic"] == 0x5243504B
    assert found["self"] != 0 and found["self"] % PAGE == 0         # KeGetPcr()
    assert found["prcb"] == found["self"] + 0x180                    # KPCR.CurrentPrcb
    assert found["thread"] == found["self"] + PAGE                   # KeGetCurrentThread()
    assert found["thread_type"] == 6                                  # a ThreadObject
    assert (found["major"], found["minor"]) == (1, 1)
    assert found["legacy_number"] == found["number"] == 0             # one processor
    assert found["mxcsr"] == 0x1F80
    # DriverEntry ran on this thread too: the same KTHREAD.
    assert found["entry_thread"] == found["thread"]


def test_every_thread_that_calls_drivers_has_a_kpcr_of_its_own(load):
    adapter = started(load, "kpcr")
    here = query(adapter, KPCR_SELFCHECK, KPCR_LAYOUT, KPCR_FIELDS)
    there = {}
    thread = threading.Thread(target=lambda: there.update(
        query(adapter, KPCR_SELFCHECK, KPCR_LAYOUT, KPCR_FIELDS)))
    thread.start()
    thread.join()
    assert there["thread"] not in (0, here["thread"])
    assert there["prcb"] == there["self"] + 0x180
    assert query(adapter, KPCR_SELFCHECK, KPCR_LAYOUT, KPCR_FIELDS)["thread"] == here["thread"]


@pytest.mark.parametrize("mode, text", [
    (1, "(instruction 65 48 8b 14 25 00 30 00 00: gs-relative mov outside the KPCR, KPRCB "
        "and KTHREAD ndisproxy provides (kpcr.c))"),
    (2, "(instruction 65 48 89 14 25 88 01 00 00: gs-relative write: the KPCR is read-only)"),
])
def test_a_gs_access_past_the_kpcr_or_a_store_to_it_is_named(load, mode, text):
    message = forbidden(load, "kpcr", KPCR_FORBIDDEN, mode)
    assert "access violation in MiniportSetInformation of kpcr.sys at kpcr.sys+0x" in message
    assert text in message


def test_inline_current_thread_costs_a_load(load):
    adapter = started(load, "kpcr", Iterations=200_000)
    best = min((struct.unpack("<3Q", adapter.query_raw(KPCR_BENCH, 24).data) for _ in range(3)),
               key=lambda r: r[1])
    iterations, gs_loads, plain = best
    per_gs, per_load = gs_loads / iterations, plain / iterations
    print(f"kpcr: KeGetCurrentThread inline {per_gs:.2f} ns, plain load {per_load:.2f} ns")
    assert per_gs < 100                     # native: no signal (that is microseconds)

