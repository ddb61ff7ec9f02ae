"""TAP interfaces: the Linux side of an emulated NIC.

Two halves, both synchronous (callers on a trio thread run them with
``trio.to_thread.run_sync``; netlink replies can block):

- ioctls on a TAP fd (``open_tap``, ``set_carrier``, ``set_offload``,
  ``set_owner``, ``set_persist``).  pyroute2 cannot attach to a TAP, set its
  carrier or offloads, or change its owner, so these live here, and only
  here.  They need no pyroute2: driver hosts import this module for
  ``set_carrier`` alone.
- netlink through pyroute2 (``create_tap``, ``find_tap``, ``is_ours``,
  ``delete_tap``, ``set_up``, ``link_state``, ...).  pyroute2 silently
  ignores keywords it does not know, so every change is read back and a
  change that did not stick raises TapError naming it.

Every TAP ndisproxy creates is persistent and carries an interface alias
starting with ``ndisproxy:`` (the mark); only marked TAPs are ever deleted.
TAPs are attached with IFF_VNET_HDR: every read and write on the fd starts
with a 10-byte virtio_net_hdr, all zero for a plain frame (docs/tap.md).

Everything acts in the calling process's network namespace; see
ndisproxy.netns for links in other namespaces.
"""
import errno as _errno
import fcntl
import os
import platform
import re
import socket
import struct
import threading
import typing

from . import errors

TUN_DEVICE = "/dev/net/tun"
IFNAMSIZ = 16
IFALIASZ = 256
MARK_PREFIX = "ndisproxy:"

# TUNSETIFF flags (linux/if_tun.h).
IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_NO_CARRIER = 0x0040     # attach with carrier off (Linux 6.0+; see TUNGETFEATURES)
IFF_PERSIST = 0x0800        # reported by TUNGETIFF
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000

# TUNSETOFFLOAD flags: what the reader of the fd accepts from Linux.
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
TUN_F_UFO = 0x10
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40
_TUN_F_ALL = 0x7f

# struct virtio_net_hdr (no num_buffers): flags u8, gso_type u8, hdr_len,
# gso_size, csum_start, csum_offset (u16 each, little-endian on the hosts we
# run on).  All zero: a complete frame with a valid checksum, no GSO.
VNET_HDR_LEN = 10
VNET_HDR_ZERO = bytes(VNET_HDR_LEN)
VNET_HDR_F_NEEDS_CSUM = 0x01
VNET_HDR_F_DATA_VALID = 0x02    # Linux may set it on reads: checksum already verified
VNET_HDR_GSO_NONE = 0

# Netdevice flags (linux/if.h) as netlink reports them.
_NET_IFF_UP = 0x1
_NET_IFF_PROMISC = 0x100
_NET_IFF_ALLMULTI = 0x200
_NET_IFF_LOWER_UP = 0x10000


def _ioc(direction, number, size):
    # _IOC() from asm-generic/ioctl.h; powerpc, mips, sparc and alpha use
    # 13 size bits and different direction values.
    if platform.machine().startswith(("ppc", "powerpc", "mips", "sparc", "alpha")):
        dirs, size_bits = {"w": 4, "r": 2}, 13
    else:
        dirs, size_bits = {"w": 1, "r": 2}, 14
    return (dirs[direction] << (16 + size_bits)) | (size << 16) | (ord("T") << 8) | number


# x86_64: TUNSETIFF 0x400454ca, TUNSETCARRIER 0x400454e2, TUNGETIFF 0x800454d2.
TUNSETIFF = _ioc("w", 202, 4)
TUNSETPERSIST = _ioc("w", 203, 4)
TUNSETOWNER = _ioc("w", 204, 4)
TUNGETFEATURES = _ioc("r", 207, 4)
TUNSETOFFLOAD = _ioc("w", 208, 4)
TUNGETIFF = _ioc("r", 210, 4)
TUNGETVNETHDRSZ = _ioc("r", 215, 4)
TUNSETVNETHDRSZ = _ioc("w", 216, 4)
TUNSETCARRIER = _ioc("w", 226, 4)

# struct ifreq: char ifr_name[16], then a 24-byte union whose first member
# (for these ioctls) is short ifr_flags.  40 bytes on 64-bit; the kernel
# copies its own sizeof, never more than this.
_IFREQ = struct.Struct("16sH22x")


class TapError(errors.NdisProxyError, OSError):
    """A TAP operation failed.  The message is one line naming the
    interface and the operation; ``errno`` is set when the kernel gave one."""

    def __init__(self, message, errno=None):
        super().__init__(message)
        # Only errno, not strerror: str() stays the one-line message.
        self.errno = errno


class TapInfo(typing.NamedTuple):
    """A TAP as netlink reports it."""
    index: int
    name: str
    mac: str


# -- names and values ------------------------------------------------------------

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _check_name(name):
    """Reject what Linux would reject (dev_valid_name) and '%', which the
    kernel would expand into a fresh name instead of finding ours."""
    if not isinstance(name, str):
        raise TypeError(f"interface name must be str, not {type(name).__name__}")
    raw = os.fsencode(name)
    if not raw or len(raw) >= IFNAMSIZ:
        raise ValueError(f"interface name {name!r}: 1 to {IFNAMSIZ - 1} bytes")
    if name in (".", "..") or any(c in name for c in "/:%") or any(c.isspace() for c in name):
        raise ValueError(f"interface name {name!r}: no '/', ':', '%', whitespace, '.' or '..'")
    return raw


def _check_mac(mac):
    mac = mac.lower() if isinstance(mac, str) else mac
    if not isinstance(mac, str) or not _MAC.match(mac):
        raise ValueError(f"MAC {mac!r}: expected six hex octets like 02:4e:50:00:00:01")
    if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
        raise ValueError(f"MAC {mac}: must be a nonzero unicast address")
    return mac


def _check_mark(mark):
    if not isinstance(mark, str) or not mark.startswith(MARK_PREFIX):
        raise ValueError(f"alias mark {mark!r} must start with {MARK_PREFIX!r}")
    if len(mark.encode()) >= IFALIASZ:
        raise ValueError(f"alias mark {mark[:40]!r}...: at most {IFALIASZ - 1} bytes")
    return mark


# -- ioctls on a TAP fd ------------------------------------------------------------

_HINTS = {
    "open": {_errno.ENOENT: "no /dev/net/tun: load the tun module",
             _errno.ENODEV: "no /dev/net/tun: load the tun module",
             _errno.EACCES: "no permission to open /dev/net/tun",
             _errno.EPERM: "no permission to open /dev/net/tun"},
    "TUNSETIFF": {_errno.EPERM: "needs CAP_NET_ADMIN, or to be the TAP's owner",
                  _errno.EBUSY: "already attached to another fd",
                  _errno.EINVAL: "not a TAP: a TUN device or another kind of link of that name"},
    "TUNSETPERSIST": {_errno.EPERM: "needs CAP_NET_ADMIN"},
    "TUNSETOWNER": {_errno.EPERM: "needs CAP_NET_ADMIN",
                    _errno.EINVAL: "not a valid uid"},
    "TUNSETOFFLOAD": {_errno.EINVAL: "offload flags the kernel does not know"},
    "TUNSETCARRIER": {_errno.EBADFD: "fd is not attached to a TAP"},
}


def _ioctl_error(who, what, exc):
    hint = _HINTS.get(what, {}).get(exc.errno)
    if hint is None and exc.errno == _errno.EBADFD:
        hint = "fd is not attached to a TAP"
    text = f"{who}: {what} failed: {os.strerror(exc.errno) if exc.errno else exc}"
    return TapError(f"{text} ({hint})" if hint else text, exc.errno)


def _getiff(fd):
    """(name, flags) of the TAP ``fd`` is attached to."""
    name, flags = _IFREQ.unpack(fcntl.ioctl(fd, TUNGETIFF, bytes(_IFREQ.size)))
    return os.fsdecode(name.split(b"\0", 1)[0]), flags


def _fd_name(fd):
    """The interface name for an error message about ``fd``."""
    try:
        return _getiff(fd)[0]
    except OSError:
        return f"fd {fd}"


def _fd_ioctl(fd, what, request, arg):
    try:
        fcntl.ioctl(fd, request, arg)
    except OSError as exc:
        raise _ioctl_error(_fd_name(fd), what, exc) from exc


def _int_pointer(value):
    # fcntl passes a bytes argument as a pointer to a copy: what ioctls that
    # take "int *" need (a bare Python int is passed as the value: EFAULT).
    return struct.pack("i", value)


def _features(fd):
    buf = fcntl.ioctl(fd, TUNGETFEATURES, bytes(4))
    return struct.unpack("I", buf)[0]


# A /dev/net/tun fd attached to a TAP is the TAP's one user: a fork in
# another thread while such an fd is open (ours being attached, or the one
# pyroute2 opens to create a TAP) gives the child a copy, and until the
# child exits the TAP is busy (EBUSY) to everyone else.  Attaching and
# creating TAPs, and forking (netns.py), take this lock; a child gets a
# fresh one.
attach_or_fork = threading.Lock()


def _fresh_lock_in_child():
    global attach_or_fork
    attach_or_fork = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock_in_child)


def _attach(name, flags):
    with attach_or_fork:
        return _attach_unguarded(name, flags)


def _attach_unguarded(name, flags):
    """Open /dev/net/tun non-blocking and attach it to ``name`` with
    ``flags``, carrier off from the start where the kernel can do that.
    Returns (fd, kernel's flags for the TAP)."""
    raw = _check_name(name)
    try:
        fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _ioctl_error(name, "open", exc) from exc
    try:
        if _features(fd) & IFF_NO_CARRIER:
            flags |= IFF_NO_CARRIER
        try:
            fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(raw, flags))
        except OSError as exc:
            raise _ioctl_error(name, "TUNSETIFF", exc) from exc
        attached, kflags = _getiff(fd)
        if attached != name:
            raise errors.InternalError(f"{name}: TUNSETIFF attached to {attached!r}")
        return fd, kflags
    except BaseException:
        os.close(fd)
        raise


def _no_such_tap(name):
    return TapError(f"{name}: no such TAP (create it with create_tap() or "
                    f"'ip tuntap add mode tap'; it must be persistent)", _errno.ENODEV)


def open_tap(name, *, vnet_hdr=True):
    """Attach to the existing persistent TAP ``name``; returns the fd.

    The fd is O_NONBLOCK and O_CLOEXEC, carries no packet-information
    prefix (IFF_NO_PI) and, with ``vnet_hdr``, a 10-byte virtio_net_hdr on
    every read and write.  The carrier is off on return: turn it on with
    set_carrier() when the driver indicates media connect.  Call
    set_offload() once next.  Closing the fd detaches (the TAP shows
    NO-CARRIER and stays, being persistent).

    A TAP that does not exist is not created: TUNSETIFF would make an
    unmarked, non-persistent one that vanishes with the fd.
    """
    _check_name(name)
    try:
        # In this namespace, like TUNSETIFF's lookup (sysfs may show another).
        socket.if_nametoindex(name)
    except OSError:
        raise _no_such_tap(name) from None
    flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
    fd, kflags = _attach(name, flags)
    try:
        # Not persistent: the TAP went away after the lookup and TUNSETIFF
        # made a new transient one, which closing the fd removes.
        if not kflags & IFF_PERSIST:
            raise _no_such_tap(name)
        if vnet_hdr:
            _fd_ioctl(fd, "TUNSETVNETHDRSZ", TUNSETVNETHDRSZ, _int_pointer(VNET_HDR_LEN))
            # The size is kept with the TAP across attaches: check ours took.
            size = struct.unpack("i", fcntl.ioctl(fd, TUNGETVNETHDRSZ, bytes(4)))[0]
            if size != VNET_HDR_LEN:
                raise TapError(f"{name}: vnet header size did not stick: "
                               f"asked {VNET_HDR_LEN}, reads {size}")
        # Attaching turns the carrier on (without IFF_NO_CARRIER): off
        # until the driver says connected.
        set_carrier(fd, False)
        return fd
    except BaseException:
        os.close(fd)
        raise


def set_carrier(fd, up):
    """Set the TAP's carrier (LOWER_UP) from the driver's media state.
    Needs no capability on an attached fd."""
    _fd_ioctl(fd, "TUNSETCARRIER", TUNSETCARRIER, _int_pointer(1 if up else 0))


def set_offload(fd, flags):
    """Tell Linux which offloads (TUN_F_*) the fd's reader handles.

    Call it once per attach, right after open_tap(), and not again while
    attached: it overwrites what ``ethtool -K`` set.  0 means none: Linux
    checksums and segments every frame before it reaches the fd, so the
    vnet header it writes carries no GSO and no NEEDS_CSUM."""
    if not isinstance(flags, int) or flags & ~_TUN_F_ALL or flags < 0:
        raise ValueError(f"offload flags {flags!r}: an OR of TUN_F_* constants")
    _fd_ioctl(fd, "TUNSETOFFLOAD", TUNSETOFFLOAD, flags)


def set_owner(fd, uid):
    """Let ``uid`` attach to the TAP without CAP_NET_ADMIN."""
    if not isinstance(uid, int) or not 0 <= uid < 2**32 - 1:
        raise ValueError(f"owner {uid!r}: a uid")
    _fd_ioctl(fd, "TUNSETOWNER", TUNSETOWNER, uid)


def set_persist(fd, on):
    """Keep the TAP when the last fd closes (on), or let it go with the fd."""
    _fd_ioctl(fd, "TUNSETPERSIST", TUNSETPERSIST, 1 if on else 0)


# -- netlink (pyroute2) ------------------------------------------------------------

def _ipr():
    # Imported here: driver hosts use only the ioctl half.
    from pyroute2 import IPRoute
    return IPRoute()


def _netlink_error(who, what, exc):
    code = getattr(exc, "code", None) or getattr(exc, "errno", None)
    text = os.strerror(code) if isinstance(code, int) and code > 0 else str(exc)
    hint = " (needs CAP_NET_ADMIN)" if code == _errno.EPERM else ""
    return TapError(f"{who}: {what} failed: {text}{hint}", code)


def _get(ipr, name):
    """The RTM_NEWLINK message for ``name``, or None if there is no such link."""
    from pyroute2 import NetlinkError
    try:
        return ipr.link("get", ifname=name)[0]
    except NetlinkError as exc:
        if exc.code == _errno.ENODEV:
            return None
        raise _netlink_error(name, "reading the link", exc) from exc


def _require_link(ipr, name):
    """The RTM_NEWLINK message for ``name``; TapError if there is none."""
    msg = _get(ipr, name)
    if msg is None:
        raise TapError(f"{name}: no such interface", _errno.ENODEV)
    return msg


def _tun_info(msg):
    """IFLA_TUN_* attributes of a tun link as a dict; None for other kinds."""
    if msg.get(("linkinfo", "kind")) != "tun":
        return None
    data = msg.get(("linkinfo", "data"))
    return {} if data is None else {key: value for key, value in data["attrs"]}


def _is_tap(msg):
    info = _tun_info(msg)
    return info is not None and info.get("IFLA_TUN_TYPE") == 2


def _info(msg):
    return TapInfo(msg["index"], msg.get("ifname"), msg.get("address"))


def _require_tap(ipr, name):
    msg = _require_link(ipr, name)
    if not _is_tap(msg):
        kind = msg.get(("linkinfo", "kind")) or "no kind"
        raise TapError(f"{name}: not a TAP ({kind})", _errno.EINVAL)
    return msg


# The flags create_tap asks pyroute2 for; the persistent TAP keeps them
# until an attach replaces them.  (A module global so tests can take them
# away and exercise the fallback.)
_CREATE_IFR = {"no_pi": 1, "vnet_hdr": 1}


def _settle(ipr, name, owner):
    """Make the new TAP's flags and owner what create_tap promises.

    pyroute2 0.9 passes no_pi/vnet_hdr and uid through; a version that
    ignores them leaves a TAP with a PI header and no vnet header.  A short
    attach with our flags fixes that (the TAP keeps an attach's flags)."""
    msg = _require_tap(ipr, name)
    info = _tun_info(msg)
    wrong_flags = info.get("IFLA_TUN_PI") != 0 or info.get("IFLA_TUN_VNET_HDR") != 1
    wrong_owner = owner is not None and info.get("IFLA_TUN_OWNER") != owner
    if wrong_flags or wrong_owner:
        fd, _ = _attach(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
        try:
            if wrong_owner:
                set_owner(fd, owner)
        finally:
            os.close(fd)
        info = _tun_info(_require_tap(ipr, name))
    checks = [("persistence", info.get("IFLA_TUN_PERSIST"), 1),
              ("IFF_NO_PI", 1 - (info.get("IFLA_TUN_PI") or 0), 1),
              ("IFF_VNET_HDR", info.get("IFLA_TUN_VNET_HDR"), 1)]
    if owner is not None:
        checks.append(("owner", info.get("IFLA_TUN_OWNER"), owner))
    for what, got, want in checks:
        if got != want:
            raise TapError(f"{name}: {what} did not stick: asked {want}, reads {got}")


def _set_and_check(ipr, name, index, what, kwargs, read, want):
    from pyroute2 import NetlinkError
    try:
        ipr.link("set", index=index, **kwargs)
    except NetlinkError as exc:
        raise _netlink_error(name, f"setting the {what} to {want}", exc) from exc
    got = read(ipr.link("get", index=index)[0])
    if got != want:
        raise TapError(f"{name}: {what} did not stick: asked {want}, reads {got}")


def create_tap(name, *, mtu=None, mac=None, alias_mark=None, owner=None):
    """Create the persistent TAP ``name``, marked as ndisproxy's.

    ``alias_mark`` (default ``"ndisproxy:" + name``) goes into the
    interface alias; it must start with ``ndisproxy:``.  ``owner`` (a uid)
    may attach without CAP_NET_ADMIN.  ``mtu`` and ``mac`` default to the
    kernel's (1500, random).  Each setting is read back; on any failure the
    new TAP is deleted and TapError names what went wrong.  The link is
    left down with no fd attached (NO-CARRIER).
    """
    from pyroute2 import NetlinkError
    _check_name(name)
    mark = _check_mark(MARK_PREFIX + name if alias_mark is None else alias_mark)
    mac = None if mac is None else _check_mac(mac)
    if owner is not None and (not isinstance(owner, int) or not 0 <= owner < 2**32 - 1):
        raise ValueError(f"owner {owner!r}: a uid")
    with _ipr() as ipr:
        # pyroute2 would attach to an existing TAP of this name and make it
        # ours; refuse instead.  (A TAP appearing between this check and the
        # add would be adopted: names under ndisproxy's control are created
        # only by the daemon.)
        if _get(ipr, name) is not None:
            raise TapError(f"{name}: already exists (find_tap()/open_tap() to reuse it, "
                           f"delete_tap() if it is a stale one of ours)", _errno.EEXIST)
        request = {"ifname": name, "kind": "tuntap", "mode": "tap"}
        if _CREATE_IFR:
            request["ifr"] = dict(_CREATE_IFR)
        if owner is not None:
            request["uid"] = owner
        try:
            with attach_or_fork:
                ipr.link("add", **request)
        except NetlinkError as exc:
            raise _netlink_error(name, "creating the TAP", exc) from exc
        try:
            _settle(ipr, name, owner)
            index = _require_tap(ipr, name)["index"]
            _set_and_check(ipr, name, index, "alias", {"ifalias": mark},
                           lambda m: m.get("ifalias"), mark)
            if mtu is not None:
                _set_and_check(ipr, name, index, "MTU", {"mtu": mtu},
                               lambda m: m.get("mtu"), mtu)
            if mac is not None:
                _set_and_check(ipr, name, index, "MAC", {"address": mac},
                               lambda m: m.get("address"), mac)
            return _info(_require_tap(ipr, name))
        except BaseException:
            try:
                ipr.link("del", ifname=name)
            except NetlinkError:
                pass
            raise


def find_tap(name):
    """TapInfo for the TAP ``name``; None if there is no interface of that
    name.  TapError if there is one and it is not a TAP."""
    _check_name(name)
    with _ipr() as ipr:
        if _get(ipr, name) is None:
            return None
        return _info(_require_tap(ipr, name))


def _alias_is_ours(alias):
    return isinstance(alias, str) and alias.startswith(MARK_PREFIX)


def is_ours(name):
    """True if ``name`` is a TAP carrying ndisproxy's mark."""
    _check_name(name)
    with _ipr() as ipr:
        msg = _get(ipr, name)
    return msg is not None and _is_tap(msg) and _alias_is_ours(msg.get("ifalias"))


def list_ours():
    """Every marked TAP in this namespace: [(TapInfo, mark)]."""
    with _ipr() as ipr:
        return [(_info(m), m.get("ifalias")) for m in ipr.link("dump")
                if _is_tap(m) and _alias_is_ours(m.get("ifalias"))]


def find_marked(mark):
    """The TAP carrying exactly ``mark``, whatever it is named now; None if
    there is none.  How the daemon finds its TAPs again after a restart."""
    _check_mark(mark)
    found = [info for info, alias in list_ours() if alias == mark]
    if len(found) > 1:
        names = ", ".join(info.name for info in found)
        raise TapError(f"{mark}: carried by more than one TAP ({names})")
    return found[0] if found else None


def delete_tap(name, *, missing_ok=False):
    """Delete the TAP ``name``, which must carry ndisproxy's mark.

    A pre-created TAP (no mark) or any other link raises TapError and is
    left alone.  An attached fd does not prevent deletion; its reads and
    writes fail afterwards."""
    from pyroute2 import NetlinkError
    _check_name(name)
    with _ipr() as ipr:
        msg = _get(ipr, name)
        if msg is None:
            if missing_ok:
                return
            raise TapError(f"{name}: no such interface", _errno.ENODEV)
        if not _is_tap(msg):
            kind = msg.get(("linkinfo", "kind")) or "no kind"
            raise TapError(f"{name}: not deleting: not a TAP ({kind})", _errno.EPERM)
        if not _alias_is_ours(msg.get("ifalias")):
            raise TapError(f"{name}: not deleting: not ndisproxy's (alias "
                           f"{msg.get('ifalias')!r} lacks the {MARK_PREFIX!r} mark)",
                           _errno.EPERM)
        try:
            ipr.link("del", index=msg["index"])
        except NetlinkError as exc:
            if exc.code == _errno.ENODEV and missing_ok:
                return
            raise _netlink_error(name, "deleting the TAP", exc) from exc


def set_up(name, up):
    """Set the link administratively up or down (IFF_UP), read back."""
    _check_name(name)
    with _ipr() as ipr:
        msg = _require_link(ipr, name)
        _set_and_check(ipr, name, msg["index"], "state", {"state": "up" if up else "down"},
                       lambda m: bool(m["flags"] & _NET_IFF_UP), bool(up))


def set_gso_max_size(fd, size):
    """Tell Linux the largest GSO frame to hand the TAP ``fd`` is attached
    to (IFLA_GSO_MAX_SIZE, bytes of IP packet): what the NIC behind it takes
    as one large send.  Read back."""
    if not isinstance(size, int) or not 0 < size <= 65536:
        raise ValueError(f"GSO size {size!r}: 1..65536 bytes")
    name = _getiff(fd)[0]
    with _ipr() as ipr:
        msg = _require_link(ipr, name)
        _set_and_check(ipr, name, msg["index"], "GSO maximum size", {"gso_max_size": size},
                       lambda m: m.get_attr("IFLA_GSO_MAX_SIZE"), size)


def set_mac(name, mac):
    """Set the link's MAC (e.g. to the driver's permanent address), read
    back.  A TAP takes it while up."""
    _check_name(name)
    mac = _check_mac(mac)
    with _ipr() as ipr:
        msg = _require_link(ipr, name)
        _set_and_check(ipr, name, msg["index"], "MAC", {"address": mac},
                       lambda m: m.get("address"), mac)


def set_mtu(name, mtu):
    """Set the link's MTU, read back (the mirror clamps it to the driver's)."""
    _check_name(name)
    if not isinstance(mtu, int) or not 68 <= mtu <= 65535:
        raise ValueError(f"MTU {mtu!r}: an integer in 68..65535")
    with _ipr() as ipr:
        msg = _require_link(ipr, name)
        _set_and_check(ipr, name, msg["index"], "MTU", {"mtu": mtu},
                       lambda m: m.get("mtu"), mtu)


def link_state(name):
    """What Linux says of the link: a dict with ``up`` (IFF_UP), ``carrier``
    (IFF_LOWER_UP, reported only while up), ``operstate`` ("up" once Linux's
    link watcher has seen the carrier and will transmit; "down", ...),
    ``mtu``, ``mac``, ``promisc``, ``allmulti`` and ``alias`` (None if unset).

    ``promisc`` and ``allmulti`` count every user (a bridge port is
    promiscuous without IFF_PROMISC showing): they are what the emulated
    NIC's packet filter must honour."""
    _check_name(name)
    with _ipr() as ipr:
        msg = _require_link(ipr, name)
    flags = msg["flags"]
    return {
        "up": bool(flags & _NET_IFF_UP),
        "carrier": bool(flags & _NET_IFF_LOWER_UP),
        "operstate": str(msg.get("operstate") or "unknown").lower(),
        "mtu": msg.get("mtu"),
        "mac": msg.get("address"),
        "promisc": bool(flags & _NET_IFF_PROMISC or msg.get("promiscuity")),
        "allmulti": bool(flags & _NET_IFF_ALLMULTI or msg.get("IFLA_ALLMULTI")),
        "alias": msg.get("ifalias") or None,
    }


_NUD_INCOMPLETE, _NUD_FAILED = 0x01, 0x20


def forget_unresolved_neighbours(name):
    """Delete the link's neighbour entries still being resolved or failed.

    While the carrier was down, ARP and neighbour solicitations went
    nowhere; Linux would retry them only after its retransmit time (1 s).
    Forgotten, the next packet asks again at once.  Returns how many."""
    _check_name(name)
    from pyroute2 import NetlinkError
    with _ipr() as ipr:
        msg = _require_link(ipr, name)
        forgotten = 0
        for entry in ipr.get_neighbours(ifindex=msg["index"]):
            if entry["state"] & (_NUD_INCOMPLETE | _NUD_FAILED):
                try:
                    ipr.neigh("del", ifindex=msg["index"], family=entry["family"],
                              dst=entry.get_attr("NDA_DST"))
                    forgotten += 1
                except NetlinkError:
                    pass        # resolved or gone meanwhile
        return forgotten
