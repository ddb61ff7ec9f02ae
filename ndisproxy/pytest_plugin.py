"""pytest fixtures: a NIC under the test's control, for testing network programs.

Installed as a pytest plugin (the ``pytest11`` entry point ``ndisproxy``):
any test in an environment where ndisproxy is installed can ask for these
fixtures by name.  They are trio fixtures: use them from pytest-trio tests
(``trio_mode = true`` in the pytest configuration, or ``@pytest.mark.trio``);
they run in the test's trio run.

``ndisproxy_netns``
    the name of a fresh network namespace, ``lo`` up.
``ndisproxy_host``
    an ``ndisproxy.open_host()`` Host (drivers in host processes).
``ndisproxy_adapter``
    a ``testing.WiredAdapter``: a mocknic adapter of ``ndisproxy_host``
    whose TAP here is 198.51.100.1/24 and 2001:db8:100::1/64 and whose
    cable's far end, in ``ndisproxy_netns``, is 198.51.100.2/24 and
    2001:db8:100::2/64; running, link up.
``ndisproxy_pair``
    a ``testing.AdapterPair`` ``(a, b)``: two mocknic adapters whose cables
    are joined (socket wires and a relay), so ``a.wire.loss`` and the like
    act on the frames between them.
``ndisproxy_require_net``
    skips the test without the privileges the others need.

Everything is removed at teardown, also when the test fails; names are
unique, addresses from the documentation ranges.  Without root, or without
CAP_NET_ADMIN / CAP_SYS_ADMIN / /dev/net/tun, the tests using them skip and
say why; with NDISPROXY_REQUIRE_NET=1 in the environment they fail instead
(for CI machines that must run them).  Tests using ``ndisproxy_adapter``
share 198.51.100.0/24 in this namespace: run them one at a time, not in
parallel processes.  Drivers and the kernel keep real time, so the
fixtures refuse to run under trio's MockClock (``autojump_clock``).
"""
from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from . import testing
from .api import Host, open_host

REQUIRE_ENV = "NDISPROXY_REQUIRE_NET"


@pytest.fixture
def ndisproxy_require_net() -> None:
    """Skip (or, with NDISPROXY_REQUIRE_NET=1, fail) without the privileges
    for TAPs and namespaces (``testing.need_net_admin``)."""
    reason = testing.need_net_admin()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"ndisproxy fixtures: {reason}, and {REQUIRE_ENV}=1 requires "
                    f"network tests to run", pytrace=False)
    pytest.skip(f"ndisproxy fixtures need root with CAP_NET_ADMIN, CAP_SYS_ADMIN and "
                f"/dev/net/tun: {reason}")


@pytest.fixture
async def ndisproxy_netns(ndisproxy_require_net: None) -> AsyncIterator[str]:
    """A fresh network namespace (its name), removed afterwards with
    everything still in it."""
    async with testing.netns() as name:
        yield name


@pytest.fixture
async def ndisproxy_host(ndisproxy_require_net: None) -> AsyncIterator[Host]:
    """An ``open_host()`` Host; closing it halts every driver and removes
    every interface it made."""
    if isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock):
        # Driver hosts, their NDIS timers and the kernel run on the real
        # clock; a mock clock would time out (autojump) or never advance.
        pytest.fail("ndisproxy fixtures cannot run under trio's MockClock "
                    "(autojump_clock, mock_clock): drivers and the kernel keep real time",
                    pytrace=False)
    async with open_host() as host:
        yield host


@pytest.fixture
async def ndisproxy_adapter(ndisproxy_host: Host,
                            ndisproxy_netns: str) -> AsyncIterator[testing.WiredAdapter]:
    """A running adapter whose cable ends in ``ndisproxy_netns``, both ends
    addressed (``testing.open_wired_adapter``)."""
    async with testing.open_wired_adapter(ndisproxy_host, ndisproxy_netns) as wired:
        yield wired


@pytest.fixture
async def ndisproxy_pair(ndisproxy_host: Host) -> AsyncIterator[testing.AdapterPair]:
    """Two running adapters back to back (``testing.open_adapter_pair``)."""
    async with testing.open_adapter_pair(ndisproxy_host) as pair:
        yield pair
