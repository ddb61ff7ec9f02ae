"""Named network namespaces, and links moved into them.

The daemon keeps every TAP it serves in its own namespace; tests (and wire
TAPs) put the link partner into a peer namespace.  Nothing here calls setns
on the calling thread: a link moves by IFLA_NET_NS_FD (CAP_NET_ADMIN
alone suffices), and work inside a namespace goes through
``pyroute2.NetNS``, whose netlink socket is opened by a short-lived forked
helper that enters the namespace and hands the socket back.  The calls are
synchronous and block on netlink and on that helper: from trio, run them
with ``trio.to_thread.run_sync``.

Moving a link flushes its addresses: configure it after the move.
"""
import errno as _errno
import ipaddress
import os

from . import errors

IFA_F_NODAD = 0x02
IN6_ADDR_GEN_MODE_NONE = 1
_NET_IFF_UP = 0x1


class NetnsError(errors.NdisProxyError, OSError):
    """A namespace operation failed; the message names the namespace (and
    link) and what was being done; ``errno`` is set when known."""

    def __init__(self, message, errno=None):
        super().__init__(message)
        self.errno = errno


def _check_netns(name):
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name
            or len(name.encode()) > 255):
        raise ValueError(f"namespace name {name!r}: a non-empty file name")
    return name


def _path(name):
    from pyroute2.netns import NETNS_RUN_DIR
    return os.path.join(NETNS_RUN_DIR, _check_netns(name))


def _error(who, what, exc):
    code = getattr(exc, "code", None) or getattr(exc, "errno", None)
    text = os.strerror(code) if isinstance(code, int) and code > 0 else str(exc)
    hint = ""
    if code == _errno.EPERM:
        hint = " (needs CAP_NET_ADMIN; creating a namespace needs CAP_SYS_ADMIN)"
    return NetnsError(f"{who}: {what} failed: {text}{hint}", code)


def list_netns():
    """Names of the namespaces under /run/netns."""
    from pyroute2 import netns
    return sorted(netns.listnetns())


def create_netns(name):
    """Create the named namespace (like ``ip netns add``)."""
    from pyroute2 import netns
    _check_netns(name)
    if name in netns.listnetns():
        raise NetnsError(f"netns {name}: already exists", _errno.EEXIST)
    try:
        netns.create(name)
    except Exception as exc:
        raise _error(f"netns {name}", "creating", exc) from exc
    if name not in netns.listnetns():
        raise NetnsError(f"netns {name}: creating failed: not in {os.path.dirname(_path(name))}")


def remove_netns(name, *, missing_ok=False):
    """Remove the named namespace (like ``ip netns del``).  Links in it that
    belong to a driver with rtnl ops (TAP, veth, dummy) are deleted with
    it once nothing else holds the namespace."""
    from pyroute2 import netns
    _check_netns(name)
    if name not in netns.listnetns():
        if missing_ok:
            return
        raise NetnsError(f"netns {name}: no such namespace", _errno.ENOENT)
    try:
        netns.remove(name)
    except Exception as exc:
        raise _error(f"netns {name}", "removing", exc) from exc


def _open_netns(name):
    try:
        return os.open(_path(name), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetnsError(f"netns {name}: {os.strerror(exc.errno)}", exc.errno) from exc


def _in_netns(name):
    """IPRoute in namespace ``name``; never creates the namespace."""
    from pyroute2 import NetNS

    from . import tap
    _check_netns(name)
    try:
        with tap.attach_or_fork:        # NetNS forks a helper child
            return NetNS(name, flags=0)
    except Exception as exc:
        raise _error(f"netns {name}", "opening netlink", exc) from exc


def _index(ipr, netns, ifname):
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        where = "this namespace" if netns is None else f"netns {netns}"
        raise NetnsError(f"{ifname}: no such interface in {where}", _errno.ENODEV)
    return found[0]


def move_link(ifname, netns):
    """Move ``ifname`` from this namespace into ``netns``.

    Its addresses are flushed; an fd attached to a TAP keeps working (the
    TAP cannot be attached again by name from here, though: TUNSETIFF looks
    names up in the namespace /dev/net/tun was opened in)."""
    from pyroute2 import IPRoute, NetlinkError
    fd = _open_netns(netns)
    try:
        with IPRoute() as ipr:
            index = _index(ipr, None, ifname)
            try:
                ipr.link("set", index=index, net_ns_fd=fd)
            except NetlinkError as exc:
                raise _error(ifname, f"moving to netns {netns}", exc) from exc
            if ipr.link_lookup(ifname=ifname) == [index]:
                raise NetnsError(f"{ifname}: moving to netns {netns} did not stick")
    finally:
        os.close(fd)
    with _in_netns(netns) as ns:
        _index(ns, netns, ifname)


def _interface(address):
    try:
        iface = ipaddress.ip_interface(address)
    except ValueError as exc:
        raise ValueError(f"address {address!r}: expected ADDRESS/PREFIX") from exc
    if "/" not in str(address):
        raise ValueError(f"address {address!r}: give the prefix length (ADDRESS/PREFIX)")
    return iface


def configure_in_netns(netns, ifname, *, addresses=(), up=True, addr_gen_mode_none=True,
                       nodad=True):
    """Configure ``ifname`` inside ``netns``; returns its index there.

    In this order, each read back: IPv6 ``addr_gen_mode none`` (no
    link-local address, so nothing chatters on the cable; must precede
    up), the ``addresses`` ("198.51.100.1/24", "2001:db8::1/64"; IPv6 ones
    without duplicate address detection when ``nodad``), then the link
    up (or down)."""
    from pyroute2 import NetlinkError
    ifaces = [_interface(a) for a in addresses]
    with _in_netns(netns) as ns:
        index = _index(ns, netns, ifname)
        who = f"{ifname} in netns {netns}"
        if addr_gen_mode_none:
            spec = {"attrs": [["AF_INET6", {"attrs": [
                ["IFLA_INET6_ADDR_GEN_MODE", IN6_ADDR_GEN_MODE_NONE]]}]]}
            try:
                ns.link("set", index=index, af_spec=spec)
            except NetlinkError as exc:
                raise _error(who, "setting addr_gen_mode none", exc) from exc
            got = ns.link("get", index=index)[0].get(
                ("af_spec", "AF_INET6", "IFLA_INET6_ADDR_GEN_MODE"))
            if got != IN6_ADDR_GEN_MODE_NONE:
                raise NetnsError(f"{who}: addr_gen_mode none did not stick (reads {got})")
        for iface in ifaces:
            kwargs = {"index": index, "address": str(iface.ip),
                      "prefixlen": iface.network.prefixlen}
            if iface.version == 6 and nodad:
                kwargs["flags"] = IFA_F_NODAD
            try:
                ns.addr("add", **kwargs)
            except NetlinkError as exc:
                raise _error(who, f"adding {iface}", exc) from exc
        present = {(ipaddress.ip_address(a.get("address")), a["prefixlen"])
                   for a in ns.addr("dump", index=index)}
        for iface in ifaces:
            if (iface.ip, iface.network.prefixlen) not in present:
                raise NetnsError(f"{who}: address {iface} did not stick")
        try:
            ns.link("set", index=index, state="up" if up else "down")
        except NetlinkError as exc:
            raise _error(who, "setting the link " + ("up" if up else "down"), exc) from exc
        if bool(ns.link("get", index=index)[0]["flags"] & _NET_IFF_UP) != bool(up):
            raise NetnsError(f"{who}: link state did not stick")
        return index


def delete_link_in_netns(netns, ifname, *, missing_ok=False):
    """Delete the TAP ``ifname`` inside ``netns``; like tap.delete_tap(), it
    must carry ndisproxy's mark (anything else: NetnsError, EPERM)."""
    from pyroute2 import NetlinkError
    from .tap import MARK_PREFIX
    with _in_netns(netns) as ns:
        found = ns.link_lookup(ifname=ifname)
        if not found:
            if missing_ok:
                return
            raise NetnsError(f"{ifname}: no such interface in netns {netns}", _errno.ENODEV)
        msg = ns.link("get", index=found[0])[0]
        alias = msg.get("ifalias")
        tun_type = None
        if msg.get(("linkinfo", "kind")) == "tun":
            tun_type = msg.get(("linkinfo", "data", "IFLA_TUN_TYPE"))
        if tun_type != 2 or not (isinstance(alias, str) and alias.startswith(MARK_PREFIX)):
            raise NetnsError(f"{ifname} in netns {netns}: not deleting: not a TAP "
                             f"marked {MARK_PREFIX!r}", _errno.EPERM)
        try:
            ns.link("del", index=found[0])
        except NetlinkError as exc:
            if exc.code == _errno.ENODEV and missing_ok:
                return
            raise _error(f"{ifname} in netns {netns}", "deleting", exc) from exc


def marked_tap_in_netns(netns, ifname):
    """Is ``ifname`` in ``netns`` a TAP carrying ndisproxy's mark?"""
    from .tap import MARK_PREFIX
    with _in_netns(netns) as ns:
        found = ns.link_lookup(ifname=ifname)
        if not found:
            return False
        msg = ns.link("get", index=found[0])[0]
        alias = msg.get("ifalias")
        return (msg.get(("linkinfo", "kind")) == "tun"
                and isinstance(alias, str) and alias.startswith(MARK_PREFIX))


def open_tap_in_netns(netns, ifname, *, vnet_hdr=True):
    """Attach to the TAP ``ifname`` living in ``netns``: an fd, as tap.open_tap.

    A TAP can only be attached by name from its own namespace, so a child
    process enters it (setns, CAP_SYS_ADMIN), attaches, and hands the fd
    back over a socketpair; the caller's thread never changes namespace.
    This is how a restarted daemon gets back the wire it left in a peer's
    namespace, with the peer's addresses on it."""
    import ctypes
    import socket

    from . import tap
    ns_fd = _open_netns(netns)
    ours, theirs = socket.socketpair()
    try:
        with tap.attach_or_fork:
            pid = os.fork()
        if pid == 0:                                    # the child: never returns
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(ns_fd, 0x40000000) != 0:      # CLONE_NEWNET
                    raise OSError(ctypes.get_errno(), "setns")
                fd = tap.open_tap(ifname, vnet_hdr=vnet_hdr)
                socket.send_fds(theirs, [b"ok"], [fd])
            except BaseException as exc:                # noqa: BLE001 - report, then exit
                theirs.send(f"{exc}".encode()[:1000])
            finally:
                os._exit(0)
        theirs.close()
        message, fds, _, _ = socket.recv_fds(ours, 1024, 1)
        os.waitpid(pid, 0)
    finally:
        os.close(ns_fd)
        ours.close()
    if message != b"ok" or not fds:
        raise NetnsError(f"{ifname} in netns {netns}: attaching failed: "
                         f"{message.decode(errors='replace')}")
    return fds[0]
