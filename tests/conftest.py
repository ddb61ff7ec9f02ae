"""Shared fixtures and helpers for the ndisproxy test suite.

Tests import the *installed* package (pytest runs in importlib mode), so
they exercise the compiled runtime and the PE drivers the install built.
"""
import ctypes
import gc
import os

import pytest

from ndisproxy import DriverImage, drivers
from ndisproxy._binding import mappings


def resources():
    """What the runtime holds: (registry mappings, /proc/self/maps lines inside
    them, open fds).  Leak tests compare these across repetitions."""
    gc.collect()
    ours = mappings()
    inside = 0
    with open("/proc/self/maps") as maps:
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if any(lo >= addr and hi <= addr + length for addr, length, _ in ours):
                inside += 1
    return len(ours), inside, len(os.listdir("/proc/self/fd"))


def resident_kib(address, length):
    """KiB of [address, address + length) in memory now (mincore): what a
    mapping of the runtime really costs, page by page."""
    pages = (length + 4095) // 4096
    vector = (ctypes.c_ubyte * pages)()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(pages * 4096), vector):
        raise OSError(ctypes.get_errno(), "mincore")
    return 4 * sum(v & 1 for v in vector)


@pytest.fixture
def load():
    """load(name, **kw): a test driver image, closed after the test."""
    images = []

    def _load(name, **kwargs):
        image = DriverImage.load(drivers.testing_path(name), **kwargs)
        images.append(image)
        return image

    yield _load
    for image in images:
        image.close()


# -- fuzzing: examples and seconds per boundary (tests/fuzzing.py) ------------------


@pytest.fixture(autouse=True)
def _fuzz_tally(request):
    """For a test with a ``fuzz`` marker: its examples, under the marker's
    boundary, for the summary at the end of the run (one, unless the test
    counts them with ``fuzzed``)."""
    marker = request.node.get_closest_marker("fuzz")
    count = [0]
    yield count
    if marker is not None:
        request.node.user_properties.append(("fuzz", (marker.args[0], count[0] or 1)))


@pytest.fixture
def fuzzed(_fuzz_tally):
    """Call it once per example of a fuzz test."""
    def example():
        _fuzz_tally[0] += 1
    return example


def _fuzz_table(terminalreporter):
    """{boundary: [examples, seconds]} of the fuzz tests that ran."""
    seconds, examples = {}, {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) == "call":
                seconds[report.nodeid] = report.duration
            for name, value in getattr(report, "user_properties", ()):
                if name == "fuzz":
                    examples[report.nodeid] = value
    table = {}
    for nodeid, (boundary, count) in examples.items():
        row = table.setdefault(boundary, [0, 0.0])
        row[0] += count
        row[1] += seconds.get(nodeid, 0.0)
    return table


def _fuzz_total(table):
    return sum(seconds for _, seconds in table.values())


def pytest_sessionfinish(session, exitstatus):
    """A CI run whose fuzzing overran FUZZ_BUDGET fails (the summary says why)."""
    from .fuzzing import FUZZ_BUDGET, long_run

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or long_run() is not None or exitstatus != 0:
        return
    if _fuzz_total(_fuzz_table(reporter)) > FUZZ_BUDGET:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    from .fuzzing import FUZZ_BUDGET, long_run

    table = _fuzz_table(terminalreporter)
    if not table:
        return
    write = terminalreporter.write_line
    write("")
    write(f"{'fuzzed boundary':<44} {'examples':>9} {'seconds':>8}")
    for boundary, (count, seconds) in sorted(table.items()):
        write(f"{boundary:<44} {count:>9} {seconds:>8.2f}")
    total = _fuzz_total(table)
    limit = "no limit: NDISPROXY_FUZZ_EXAMPLES" if long_run() else f"budget {FUZZ_BUDGET:.0f} s"
    write(f"{'fuzzing in total':<44} {sum(c for c, _ in table.values()):>9} {total:>8.2f}"
          f"  ({limit})")
    if long_run() is None and total > FUZZ_BUDGET:
        write(f"FAILED: fuzzing took {total:.1f} s, over its {FUZZ_BUDGET:.0f} s budget: "
              "lower max_examples in tests/test_fuzz_*.py", red=True)
