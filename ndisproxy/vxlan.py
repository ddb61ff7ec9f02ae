"""The VXLAN wire: the mock NIC's cable as a UDP socket (RFC 7348).

``open_vxlan_socket(local, remote)`` opens the socket the daemon hands a
driver host; the device model (csrc/device.c) puts each frame the NIC
transmits behind an 8-byte VXLAN header (flags 0x08, the 24-bit VNI) and
sends it to ``remote``; the C pump (csrc/pump.c) reads datagrams, checks
the header and gives the inner frame to the NIC.

The socket is bound to ``local`` but not connected: a Linux vxlan device
sends from a per-flow source port (so a connected socket would drop its
datagrams), and every reply goes to the configured ``remote`` port.

Endpoints are ``(ipaddress.ip_address, port)`` tuples, as ``WireConfig``
holds them.  Encapsulation costs 50 bytes over IPv4 (outer IPv4 20, UDP 8,
VXLAN 8, inner Ethernet 14) and 70 over IPv6: the Linux side's MTU should
be the underlay's less that.
"""
import errno as _errno
import ipaddress
import socket
import struct

from . import errors

IANA_PORT = 4789
LINUX_PORT = 8472           # Linux's default when no dstport is given
HEADER = 8
OVERHEAD = {4: 50, 6: 70}   # bytes on the underlay per frame, by IP version
SOCKET_BUFFER = 4 << 20     # asked for; the kernel caps it at [rw]mem_max


class VxlanError(errors.NdisProxyError, OSError):
    """The VXLAN socket could not be opened; the message names the endpoint
    and what failed; ``errno`` is set when known."""

    def __init__(self, message, errno=None):
        super().__init__(message)
        self.errno = errno


def _endpoint(endpoint):
    address, port = endpoint
    address = ipaddress.ip_address(address)
    port = int(port)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} of {address} is outside 0..65535")
    return address, port


def show(endpoint):
    """``192.0.2.1:4789`` or ``[2001:db8::1]:4789``."""
    address, port = _endpoint(endpoint)
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _scope_id(address):
    scope = getattr(address, "scope_id", None)
    if not scope:
        return 0
    return int(scope) if scope.isdigit() else socket.if_nametoindex(scope)


def sockaddr(endpoint):
    """The ``struct sockaddr_in`` (16 bytes) or ``sockaddr_in6`` (28 bytes)
    of ``endpoint``, as the C runtime's sendmsg takes it."""
    address, port = _endpoint(endpoint)
    if address.version == 4:
        return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + \
            address.packed + bytes(8)
    return (struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0)
            + address.packed + struct.pack("=I", _scope_id(address)))


def _socket_address(endpoint):
    address, port = _endpoint(endpoint)
    if address.version == 4:
        return str(address), port
    return str(address).split("%")[0], port, 0, _scope_id(address)


def open_vxlan_socket(local, remote):
    """The fd of a UDP socket for a VXLAN wire from ``local`` to ``remote``
    (``sockaddr(remote)`` is where the device sends).

    It is bound to ``local`` (SO_REUSEADDR; an unspecified address
    receives on every address), not connected, O_NONBLOCK and O_CLOEXEC;
    the caller owns it.  Raises VxlanError (an OSError) when it cannot be
    opened or bound, ValueError for endpoints of two families."""
    local, remote = _endpoint(local), _endpoint(remote)
    if local[0].version != remote[0].version:
        raise ValueError(f"local {show(local)} and remote {show(remote)} are of two "
                         "address families")
    family = socket.AF_INET if local[0].version == 4 else socket.AF_INET6
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK
                             | socket.SOCK_CLOEXEC)
    except OSError as exc:
        raise VxlanError(f"vxlan {show(local)}: cannot open a UDP socket: {exc.strerror}",
                         exc.errno) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        try:
            sock.bind(_socket_address(local))
        except OSError as exc:
            hint = ""
            if exc.errno == _errno.EADDRNOTAVAIL:
                hint = " (no interface of this namespace has that address, or it is tentative)"
            raise VxlanError(f"vxlan {show(local)}: cannot bind: {exc.strerror}{hint}",
                             exc.errno) from None
        return sock.detach()
    finally:
        if sock.fileno() >= 0:
            sock.close()
