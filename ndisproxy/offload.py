"""Task offload negotiation: what the driver offers (OID_TCP_TASK_OFFLOAD),
what the host enables, and what Linux is told the TAP takes.

NDIS 5.1 offloads TCP/UDP checksums (IPv4 and IPv6) and TCP/IPv4 large
sends; a TAP's virtio_net_hdr carries partial checksums and GSO frames.  The
C pump maps one onto the other (docs/tap.md, "Offloads"): a TCP/IPv4 GSO
frame becomes a large send with its MSS, other GSO frames are segmented by
the host, NEEDS_CSUM becomes checksum offload info, and checksums the NIC
checked on receive become DATA_VALID.  The host can always segment and fill
checksums itself, but offers Linux only what the driver offloads: with a
driver that offloads nothing, Linux does it all, as it would for a NIC
without offloads.
"""
import dataclasses
import struct

from ._binding import lib
from . import tap

_HEADER = struct.Struct("<IIIIIII")          # NDIS_TASK_OFFLOAD_HEADER, 28 bytes
_TASK = struct.Struct("<IIIII")              # NDIS_TASK_OFFLOAD up to TaskBuffer
_CHECKSUM = struct.Struct("<IIII")           # NDIS_TASK_TCP_IP_CHECKSUM bitfields
_LARGE_SEND = struct.Struct("<IIIBBxx")      # NDIS_TASK_TCP_LARGE_SEND

CHECKSUM_TASK = 0                            # TcpIpChecksumNdisTask
LARGE_SEND_TASK = 2                          # TcpLargeSendNdisTask
IEEE_802_3 = 2                               # IEEE_802_3_Encapsulation
_TCP, _UDP, _IP = 0x4, 0x8, 0x10             # bits of each checksum direction
QUERY_LENGTH = 512
# IPv4 and TCP headers without options: a GSO packet of MaxOffLoadSize
# payload bytes is this much longer.
IP_TCP_HEADERS = 40


@dataclasses.dataclass(frozen=True)
class Offloads:
    """What a driver does for us: the checksum bitfields (V4Transmit,
    V4Receive, V6Transmit, V6Receive) and the largest send, 0 for none."""
    v4_transmit: int = 0
    v4_receive: int = 0
    v6_transmit: int = 0
    v6_receive: int = 0
    large_send_max: int = 0
    large_send_min_segments: int = 0

    @property
    def checksums(self):
        """TCP and UDP checksums, both ways, IPv4 and IPv6: what TUN_F_CSUM asks."""
        both = _TCP | _UDP
        return all(bits & both == both for bits in
                   (self.v4_transmit, self.v6_transmit))

    def tun_flags(self):
        """TUNSETOFFLOAD flags for a TAP in front of this driver."""
        if not self.checksums:
            return 0
        flags = tap.TUN_F_CSUM
        if self.large_send_max:
            # IPv6 GSO is cut by the host: NDIS 5.1 has no IPv6 large send.
            flags |= tap.TUN_F_TSO4 | tap.TUN_F_TSO6
        return flags

    def pump_flags(self):
        flags = lib.NP_PUMP_OFFLOAD_CSUM if self.checksums else 0
        if self.large_send_max:
            flags |= lib.NP_PUMP_OFFLOAD_LSO4
        return flags


def gso_max_size(offloads):
    """The TAP's IFLA_GSO_MAX_SIZE for these offloads, or None to leave it."""
    return offloads.large_send_max + IP_TCP_HEADERS if offloads.large_send_max else None


def configure_taps(offloads, tap_fd, wire_fd=-1, *, link=True):
    """Tell Linux what the adapter's TAP (and the cable's, ``wire_fd`` >= 0,
    whose GSO frames the pump cuts) may carry: TUNSETOFFLOAD, and with
    ``link`` the TAP's GSO maximum (netlink: not from a sandboxed host).
    Raises TapError."""
    flags = offloads.tun_flags()
    tap.set_offload(tap_fd, flags)
    if wire_fd >= 0:
        tap.set_offload(wire_fd, tap.TUN_F_CSUM | tap.TUN_F_TSO4 | tap.TUN_F_TSO6
                        if flags else 0)
    size = gso_max_size(offloads)
    if link and size:
        tap.set_gso_max_size(tap_fd, size)


def parse(answer):
    """Offloads from an OID_TCP_TASK_OFFLOAD query answer; ValueError if it
    is not one."""
    if len(answer) < _HEADER.size:
        raise ValueError(f"{len(answer)}-byte task offload answer: no header")
    version, _, _, first, encapsulation, _, _ = _HEADER.unpack_from(answer)
    if version != lib.NDIS_TASK_OFFLOAD_VERSION or encapsulation != IEEE_802_3:
        raise ValueError(f"task offload answer version {version}, "
                         f"encapsulation {encapsulation}: not 802.3 version 1")
    found, at, seen = {}, first, set()
    while at and at not in seen:
        seen.add(at)
        if at + _TASK.size > len(answer):
            raise ValueError(f"task at offset {at} runs past the {len(answer)}-byte answer")
        _, _, task, step, length = _TASK.unpack_from(answer, at)
        found[task] = answer[at + _TASK.size:at + _TASK.size + length]
        at = at + step if step else 0
    fields = {}
    if len(found.get(CHECKSUM_TASK, b"")) >= _CHECKSUM.size:
        v4tx, v4rx, v6tx, v6rx = _CHECKSUM.unpack_from(found[CHECKSUM_TASK])
        fields.update(v4_transmit=v4tx, v4_receive=v4rx, v6_transmit=v6tx, v6_receive=v6rx)
    if len(found.get(LARGE_SEND_TASK, b"")) >= _LARGE_SEND.size:
        version, max_size, min_segments, _, _ = _LARGE_SEND.unpack_from(found[LARGE_SEND_TASK])
        if version == lib.NDIS_TASK_TCP_LARGE_SEND_V0:
            fields.update(large_send_max=max_size, large_send_min_segments=min_segments)
    return Offloads(**fields)


def set_buffer(offloads):
    """An OID_TCP_TASK_OFFLOAD set enabling ``offloads`` (no tasks: all off)."""
    tasks = []
    if offloads.checksums:
        tasks.append((CHECKSUM_TASK, _CHECKSUM.pack(
            offloads.v4_transmit, offloads.v4_receive,
            offloads.v6_transmit, offloads.v6_receive)))
    if offloads.large_send_max:
        tasks.append((LARGE_SEND_TASK, _LARGE_SEND.pack(
            lib.NDIS_TASK_TCP_LARGE_SEND_V0, offloads.large_send_max,
            offloads.large_send_min_segments, 1, 1)))
    body = b""
    for i, (task, data) in enumerate(tasks):
        step = 0 if i == len(tasks) - 1 else _TASK.size + len(data)
        body += _TASK.pack(lib.NDIS_TASK_OFFLOAD_VERSION, _TASK.size + 4, task, step,
                           len(data)) + data
    return _HEADER.pack(lib.NDIS_TASK_OFFLOAD_VERSION, _HEADER.size, 0,
                        _HEADER.size if tasks else 0, IEEE_802_3, 1, 14) + body
