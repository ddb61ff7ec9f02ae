"""What entering a driver costs: trampoline vs direct call vs swapcontext.

    .venv/bin/python benchmarks/bench_trampoline.py [--iterations N]

In C (csrc/bench.c), in one run: a direct call of an ms_abi function
through a pointer, the same function entered through np_call() (the real
trampoline with its trap bookkeeping and 1-in-64 stack sampling), and a
swapcontext round trip.  From Python: a cffi call into C that makes the
direct call, against a cffi call that enters a real driver entry point
(MiniportQueryInformation of recurse.sys) through the trampoline.  Ratios
are against the direct call measured in the same run; the target is the
trampoline within 5 ns of a direct call in C.
"""
import argparse
import statistics
import time

from ndisproxy import DriverImage, drivers
from ndisproxy._binding import ffi, lib


def best(fn, n, rounds=7):
    return min(fn(n) for _ in range(rounds))


def python_per_call(call, n):
    start = time.perf_counter_ns()
    for _ in range(n):
        call()
    return (time.perf_counter_ns() - start) / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2_000_000,
                        help="calls per C measurement (default %(default)s)")
    args = parser.parse_args()
    n = args.iterations

    direct = best(lib.np_api_bench_direct, n)
    tramp = best(lambda k: lib.np_api_bench_trampoline(k, 0), n)
    sampled = best(lambda k: lib.np_api_bench_trampoline(k, 64), n)
    swap = best(lib.np_api_bench_swapcontext, n // 4)
    print(f"C loop, {n} calls each (best of 7):")
    print(f"  direct ms_abi call      {direct:7.2f} ns   1.00x")
    print(f"  trampoline (np_call)    {tramp:7.2f} ns   {tramp / direct:5.2f}x   "
          f"(+{tramp - direct:.2f} ns; target <= +5 ns: "
          f"{'met' if tramp - direct <= 5 else 'NOT met'})")
    print(f"  trampoline + 1/64 stack high-water sampling"
          f" {sampled:7.2f} ns   {sampled / direct:5.2f}x")
    print(f"  swapcontext round trip  {swap:7.2f} ns   {swap / direct:5.2f}x")

    with DriverImage.load(drivers.testing_path("recurse")) as image:
        adapter = image.create_adapter(parameters={"RecurseKiB": 1})
        adapter.initialize()
        adapter.set_stack_sampling(64)
        handle = adapter._handle
        buf = ffi.new("uint8_t[]", 64)
        status, done, needed = (ffi.new("int32_t *"), ffi.new("uint32_t *"),
                                ffi.new("uint32_t *"))
        m = max(n // 10, 1000)
        py_direct = statistics.median(
            python_per_call(lib.np_api_bench_noop, m) for _ in range(5))
        py_driver = statistics.median(
            python_per_call(lambda: lib.np_api_adapter_query(
                handle, 0x00010101, buf, 64, status, done, needed), m) for _ in range(5))
        adapter.halt()
    print(f"From Python, {m} calls each (median of 5):")
    print(f"  cffi call, direct in C  {py_direct:7.1f} ns   1.00x")
    print(f"  cffi call into driver   {py_driver:7.1f} ns   {py_driver / py_direct:5.2f}x   "
          f"(MiniportQueryInformation via the trampoline)")


if __name__ == "__main__":
    main()
