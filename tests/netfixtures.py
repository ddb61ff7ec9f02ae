"""Fixtures for tests that create real interfaces and namespaces.

Import them by name into a test module (``from .netfixtures import netns,
require_net, tap_name``); they are not registered globally.  Every name is
unique (``npt`` + random hex), addresses come from the documentation ranges
only (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32), and
everything made is removed in ``finally``, then checked gone.

Without root and CAP_NET_ADMIN the tests skip, saying why; with
``NDISPROXY_REQUIRE_NET=1`` they fail instead (for CI machines that must
run them).
"""
import os
import secrets

import pytest

from ndisproxy import netns as ndis_netns

REQUIRE_ENV = "NDISPROXY_REQUIRE_NET"
CAP_SYS_ADMIN = 21

# Every name unique_name() handed out in this run: the final cleanup test
# checks that none of them is left.
HANDED_OUT = set()


def why_no_net():
    """None if this process can create TAPs and namespaces; else the reason."""
    from ndisproxy.testing import need_net_admin
    return need_net_admin()


def _skip_or_fail(reason):
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires network tests to run")
    pytest.skip(f"needs root with CAP_NET_ADMIN and /dev/net/tun: {reason}")


@pytest.fixture
def require_net():
    """Skip (or, with NDISPROXY_REQUIRE_NET=1, fail) without CAP_NET_ADMIN."""
    reason = why_no_net()
    if reason is not None:
        _skip_or_fail(reason)


def unique_name(prefix="npt"):
    """``prefix`` + 8 random hex digits: a valid interface (<= 15 bytes)
    and namespace name no other test run will pick."""
    name = prefix + secrets.token_hex(4)
    if len(name.encode()) > 15:
        raise ValueError(f"prefix {prefix!r} too long for a 15-byte interface name")
    HANDED_OUT.add(name)
    return name


def link_exists(name):
    """Whether an interface ``name`` exists in this namespace (sysfs, so
    it does not depend on the code under test)."""
    return os.path.exists(os.path.join("/sys/class/net", name))


def netns_exists(name):
    return name in ndis_netns.list_netns()


def delete_link(name):
    """Delete the interface ``name`` in this namespace, whatever it is."""
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        for index in ipr.link_lookup(ifname=name):
            ipr.link("del", index=index)


@pytest.fixture
def netns(require_net):
    """A fresh named namespace ``npt<hex>``, removed afterwards (with every
    TAP, veth or dummy still in it)."""
    name = unique_name()
    try:
        ndis_netns.create_netns(name)
    except ndis_netns.NetnsError as exc:
        _skip_or_fail(f"cannot create a namespace: {exc}")
    try:
        yield name
    finally:
        ndis_netns.remove_netns(name, missing_ok=True)
        assert not netns_exists(name), f"netns {name} survived its removal"


@pytest.fixture
def tap_name(require_net):
    """A unique interface name; any interface of that name left in this
    namespace afterwards is deleted (and must then be gone)."""
    name = unique_name()
    try:
        yield name
    finally:
        delete_link(name)
        assert not link_exists(name), f"interface {name} survived its deletion"
