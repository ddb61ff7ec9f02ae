"""Shared fixtures and helpers for the ndisproxy test suite.

Tests import the *installed* package (pytest runs in importlib mode), so
they exercise the compiled runtime and the PE drivers the install built.
"""
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
