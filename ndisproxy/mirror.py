"""Linux -> NDIS: what the administrator does to a TAP reaches its driver.

Design rule 8.  For each adapter the daemon watches the TAP Linux sees and
turns its state into NDIS requests:

    admin up / down, promisc, allmulti  -> OID_GEN_CURRENT_PACKET_FILTER
    multicast groups (ip maddr, joins)  -> OID_802_3_MULTICAST_LIST, or
                                           NDIS_PACKET_TYPE_ALL_MULTICAST past
                                           OID_802_3_MAXIMUM_LIST_SIZE
    MTU beyond the driver's maximum     -> set back to the maximum, logged
    a new MAC address                   -> NetworkAddress + re-initialise
                                           (NDIS 5.1 cannot set it by OID)

The other direction (media connect/disconnect -> TAP carrier) is the host's.

State is polled: ``ip maddr add`` raises no netlink event, so
/proc/net/dev_mcast must be read anyway, and one read of the link every
POLL_PERIOD keeps both in one place.  Reads run in a thread (pyroute2
blocks).
"""
import dataclasses
import logging

import trio

from . import tap
from ._binding import lib

log = logging.getLogger("ndisproxy")

POLL_PERIOD = 0.1
DIRECTED = lib.NDIS_PACKET_TYPE_DIRECTED
MULTICAST = lib.NDIS_PACKET_TYPE_MULTICAST
ALL_MULTICAST = lib.NDIS_PACKET_TYPE_ALL_MULTICAST
BROADCAST = lib.NDIS_PACKET_TYPE_BROADCAST
PROMISCUOUS = lib.NDIS_PACKET_TYPE_PROMISCUOUS


@dataclasses.dataclass(frozen=True)
class LinuxView:
    """What Linux says about one TAP, as far as the driver cares."""
    up: bool
    promisc: bool
    allmulti: bool
    mtu: int
    mac: str
    groups: tuple


def multicast_groups(ifname, path="/proc/net/dev_mcast"):
    """The link-layer groups joined on ``ifname``, sorted, as "01:00:5e:..."."""
    groups = []
    with open(path) as table:
        for line in table:
            fields = line.split()
            if len(fields) == 5 and fields[1] == ifname:
                raw = fields[4]
                groups.append(":".join(raw[i:i + 2] for i in range(0, 12, 2)))
    return tuple(sorted(groups))


def read_view(ifname):
    """Blocking: the TAP's state now."""
    state = tap.link_state(ifname)
    return LinuxView(up=state["up"], promisc=state["promisc"], allmulti=state["allmulti"],
                     mtu=state["mtu"], mac=state["mac"].lower(),
                     groups=multicast_groups(ifname))


def packet_filter(view, max_list):
    """The NDIS packet filter Linux's state asks for."""
    if not view.up:
        return 0
    bits = DIRECTED | BROADCAST
    if view.promisc:
        bits |= PROMISCUOUS
    if view.allmulti or len(view.groups) > max_list:
        bits |= ALL_MULTICAST
    elif view.groups:
        bits |= MULTICAST
    return bits


class Mirror:
    """Keeps one adapter's driver in step with its TAP (one task)."""

    def __init__(self, daemon, adapter):
        self.daemon = daemon
        self.adapter = adapter
        self.applied = None          # (filter, groups) the driver has now
        self.max_list = None
        self.max_mtu = None

    def reset(self, max_frame):
        """A (re)initialised driver: nothing of ours is applied yet."""
        self.applied = None
        self.max_list = None
        self.max_mtu = max_frame - 18 if max_frame else None

    async def _set(self, oid, data):
        reply = await self.daemon.request(self.adapter.name, "set", oid=oid, data=data.hex())
        if reply.get("error") or reply.get("status"):
            raise RuntimeError(reply.get("error") or f"status 0x{reply['status'] & 0xFFFFFFFF:08X}")

    async def apply(self, view):
        name = self.adapter.name
        if self.max_list is None:
            reply = await self.daemon.request(name, "query",
                                              oid=lib.OID_802_3_MAXIMUM_LIST_SIZE, length=4)
            self.max_list = int.from_bytes(bytes.fromhex(reply.get("data") or "00000000"),
                                           "little")
        bits = packet_filter(view, self.max_list)
        groups = view.groups if len(view.groups) <= self.max_list else ()
        if self.applied == (bits, groups):
            return
        if self.applied is None or self.applied[1] != groups:
            await self._set(lib.OID_802_3_MULTICAST_LIST,
                            b"".join(bytes.fromhex(g.replace(":", "")) for g in groups))
        await self._set(lib.OID_GEN_CURRENT_PACKET_FILTER, bits.to_bytes(4, "little"))
        log.info("%s: packet filter 0x%x, %d multicast group(s)%s", name, bits, len(groups),
                 " (over the driver's list size: all-multicast)"
                 if len(view.groups) > self.max_list else "")
        self.applied = (bits, groups)

    async def check_mtu(self, view):
        if self.max_mtu and view.mtu > self.max_mtu:
            log.warning("%s: MTU %d refused: the driver's maximum frame size is %d; "
                        "set back to %d", self.adapter.name, view.mtu, self.max_mtu,
                        self.max_mtu)
            await trio.to_thread.run_sync(tap.set_mtu, self.adapter.name, self.max_mtu)

    async def run(self):
        adapter = self.adapter
        while True:
            await trio.sleep(POLL_PERIOD)
            if adapter.state != "running":
                continue
            try:
                view = await trio.to_thread.run_sync(read_view, adapter.name)
            except tap.TapError:
                continue                     # the TAP is being replaced or removed
            try:
                await self.check_mtu(view)
                if adapter.mac and view.mac != adapter.mac and not adapter.reinit_to:
                    log.info("%s: MAC changed to %s in Linux: NetworkAddress and "
                             "re-initialise", adapter.name, view.mac)
                    await self.daemon.reinitialise(adapter, view.mac)
                    continue
                await self.apply(view)
            except (RuntimeError, trio.TooSlowError) as exc:
                log.warning("%s: could not update the driver: %s", adapter.name, exc)
            except Exception as exc:     # noqa: BLE001 - the host went away mid-request
                if adapter.state == "running":
                    log.warning("%s: could not update the driver: %s", adapter.name, exc)
