/* SPDX-License-Identifier: MIT */
/*
 * device.c - the mock NIC device model: the hardware behind mocknic.sys.
 *
 * Registers, rings and the interrupt line of docs/hardware.md
 * (csrc/include/mocknic_hw.h).  The driver reaches the registers through
 * HAL port I/O (hal.c), so this code runs on the driver's stack, inside its
 * call: the same rules as the exports apply (no allocation, no locks but
 * the arena's, no stdio), and a bad bus address is reported through the
 * verifier, which may end the driver's call - never the host.
 *
 * Doorbells act at once: writing TX_TAIL transmits every ready descriptor
 * onto the wire; writing RX_TAIL lets frames waiting in the backlog into
 * the newly freed descriptors.  The interrupt line is level-triggered,
 * (ICR & IMS) != 0, rate-limited by ITR; rising edges reach the host as
 * eventfd writes (np_adapter_irq).
 */
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "mocknic_hw.h"
#include "np.h"

#define MN_BACKLOG_FRAMES	64
#define MN_FRAME_MAX		16384	/* longest frame the model handles at all */
#define MN_MIN_FRAME		60	/* shorter frames are padded on the wire */

struct mn_frame {
	uint16_t len;
	uint64_t arrived;		/* off the cable, CLOCK_MONOTONIC ns */
	uint8_t data[MN_FRAME_MAX];
};

/* A frame being gathered from TX descriptors, up to its EOP. */
struct mn_tx_frame {
	uint32_t len;
	int poisoned;			/* an error: dropped at EOP */
	uint8_t cmd;			/* MN_TXD_* of its descriptors, ORed */
	uint16_t mss;
	uint8_t data[MN_TSO_MAX_FRAME];
};

_Static_assert(NP_CSUM_IP == MN_RXC_IP && NP_CSUM_TCP == MN_RXC_TCP &&
	       NP_CSUM_UDP == MN_RXC_UDP && NP_CSUM_IP_BAD == MN_RXC_IP_BAD &&
	       NP_CSUM_L4_BAD == MN_RXC_L4_BAD,
	       "the RX descriptor's csum byte is what np_offload_check returns");

struct np_mocknic {
	struct np_device dev;		/* first: hal.c hands us this pointer */
	struct np_adapter *a;
	uint32_t reg[MN_PORT_COUNT / 4];
	uint8_t mc[MN_MC_SLOTS][6];
	uint32_t mc_valid;		/* bitmap of valid slots */
	uint8_t eeprom[6];
	int link;
	int tx_stalled;			/* a wedged TX engine, until reset */
	uint64_t last_irq_ns, irq_due_ns;
	/* Frames that found no free RX descriptor, oldest first. */
	struct mn_frame backlog[MN_BACKLOG_FRAMES];
	uint32_t bl_head, bl_tail;
	struct mn_tx_frame tx;
	uint8_t seg[MN_FRAME_MAX];	/* one TSO segment on its way out */
	uint32_t corrupt_csum;		/* debug: offloaded checksums left to spoil */
	int wire_fd;			/* -1: the loopback wire */
	uint32_t wire_hdr;		/* virtio_net_hdr bytes on wire_fd */
	uint32_t wire_tx_dropped;
	/* wire_fd is a UDP socket carrying VXLAN (np_api_adapter_set_wire_vxlan) */
	int vxlan;
	struct np_vxlan_wire vx;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} remote;
	socklen_t remote_len;		/* 0: the socket is connected */
};

static inline uint32_t *reg(struct np_mocknic *d, uint32_t off)
{
	return &d->reg[off / 4];
}

/* ---- DMA ------------------------------------------------------------------- */

/* Host address of [bus, bus+len), or NULL (and a verifier report). */
static void *dma(struct np_mocknic *d, uint64_t bus, size_t len,
		 const char *what, uint32_t index)
{
	struct np_arena *arena = &d->a->dma;
	uintptr_t va;

	if (bus >= NP_DMA_BASE && bus - NP_DMA_BASE < arena->end - arena->base) {
		va = arena->base + (bus - NP_DMA_BASE);
		if (np_arena_owns(arena, (void *)va, len))
			return (void *)va;
	}
	(*reg(d, MN_STAT_DMA_ERRORS))++;
	*reg(d, MN_ICR) |= MN_INT_DMA_ERROR;
	np_verify(&d->a->ctx, NP_VIOL_BAD_DMA,
		  "device: %s %u holds bus address 0x%I64x (%u bytes), outside every shared allocation",
		  what, index, bus, (unsigned)len);
	return NULL;
}

static void *ring(struct np_mocknic *d, uint32_t lo, uint32_t hi,
		  uint32_t len_reg, const char *what)
{
	uint64_t bus = (uint64_t)*reg(d, hi) << 32 | *reg(d, lo);
	uint32_t n = *reg(d, len_reg);

	if (n == 0 || n > MN_MAX_RING)
		return NULL;
	return dma(d, bus, (size_t)n * 16, what, n);
}

/* ---- the interrupt line ------------------------------------------------------ */

static void update_line(struct np_mocknic *d)
{
	int level = (*reg(d, MN_ICR) & *reg(d, MN_IMS)) != 0;
	uint64_t itr = (uint64_t)*reg(d, MN_ITR) * 1000, now;

	if (!level) {
		d->irq_due_ns = 0;
		np_adapter_irq(d->a, 0);
		return;
	}
	if (d->a->irq_line)
		return;
	now = np_now_ns();
	if (itr && now < d->last_irq_ns + itr) {
		d->irq_due_ns = d->last_irq_ns + itr;	/* np_mocknic_poll raises it */
		return;
	}
	d->irq_due_ns = 0;
	d->last_irq_ns = now;
	np_adapter_irq(d->a, 1);
}

uint64_t np_mocknic_next_due(struct np_device *dev)
{
	return ((struct np_mocknic *)dev)->irq_due_ns;
}

void np_mocknic_poll(struct np_device *dev, uint64_t now)
{
	struct np_mocknic *d = (struct np_mocknic *)dev;

	if (d->irq_due_ns && now >= d->irq_due_ns) {
		d->irq_due_ns = 0;
		d->last_irq_ns = now;
		np_adapter_irq(d->a, (*reg(d, MN_ICR) & *reg(d, MN_IMS)) != 0);
	}
}

/* ---- receive ----------------------------------------------------------------- */

static int accepted(struct np_mocknic *d, const uint8_t *f)
{
	uint32_t filter = *reg(d, MN_RX_FILTER);
	uint32_t ral = *reg(d, MN_RAL), rah = *reg(d, MN_RAH);
	uint32_t i;

	if (filter & NDIS_PACKET_TYPE_PROMISCUOUS)
		return 1;
	if (!(f[0] & 1))
		return (filter & NDIS_PACKET_TYPE_DIRECTED) &&
		       f[0] == (uint8_t)ral && f[1] == (uint8_t)(ral >> 8) &&
		       f[2] == (uint8_t)(ral >> 16) && f[3] == (uint8_t)(ral >> 24) &&
		       f[4] == (uint8_t)rah && f[5] == (uint8_t)(rah >> 8);
	if (!memcmp(f, "\xff\xff\xff\xff\xff\xff", 6))
		return !!(filter & NDIS_PACKET_TYPE_BROADCAST);
	if (filter & NDIS_PACKET_TYPE_ALL_MULTICAST)
		return 1;
	if (!(filter & NDIS_PACKET_TYPE_MULTICAST))
		return 0;
	for (i = 0; i < MN_MC_SLOTS; i++)
		if ((d->mc_valid & (1U << i)) && !memcmp(d->mc[i], f, 6))
			return 1;
	return 0;
}

/*
 * Write one frame into the next free RX descriptor; 0 if none is free.  A
 * good frame's arrival time waits for its indication (latency.c).
 */
static int rx_store(struct np_mocknic *d, const uint8_t *f, uint32_t len,
		    uint64_t arrived)
{
	struct mn_rx_desc *rx = ring(d, MN_RX_BASE_LO, MN_RX_BASE_HI, MN_RX_LEN,
				     "RX ring of");
	uint32_t n = *reg(d, MN_RX_LEN), head = *reg(d, MN_RX_HEAD);
	struct mn_rx_desc *desc;
	void *buf;

	if (!rx || head == *reg(d, MN_RX_TAIL) % n)
		return 0;
	desc = &rx[head];
	buf = dma(d, desc->addr, *reg(d, MN_RX_BUF_LEN), "RX descriptor", head);
	desc->csum = 0;
	if (buf && len <= *reg(d, MN_RX_BUF_LEN)) {
		memcpy(buf, f, len);
		desc->length = (uint16_t)len;
		desc->errors = 0;
		if (*reg(d, MN_RXCSUM) & MN_RXCSUM_EN) {
			desc->csum = (uint8_t)np_offload_check(f, len);
			if (desc->csum & (MN_RXC_IP_BAD | MN_RXC_L4_BAD))
				(*reg(d, MN_STAT_RX_CSUM_BAD))++;
		}
		(*reg(d, MN_STAT_RX_FRAMES))++;
		np_latency_arrived(&d->a->rx_latency, arrived);
	} else {
		desc->length = 0;
		desc->errors = 1;
	}
	desc->status = MN_RXS_DD | MN_RXS_EOP;
	*reg(d, MN_RX_HEAD) = (head + 1) % n;
	*reg(d, MN_ICR) |= MN_INT_RX_DONE;
	return 1;
}

static void rx_drain_backlog(struct np_mocknic *d)
{
	while (d->bl_head != d->bl_tail) {
		struct mn_frame *fr = &d->backlog[d->bl_head % MN_BACKLOG_FRAMES];

		if (!rx_store(d, fr->data, fr->len, fr->arrived))
			break;
		d->bl_head++;
	}
}

/* A frame arrives from the wire. */
static void rx_frame(struct np_mocknic *d, const uint8_t *f, uint32_t len)
{
	struct mn_frame *fr;
	uint64_t arrived;

	if (!(*reg(d, MN_CTRL) & MN_CTRL_RX_EN) || len < 14 ||
	    len > *reg(d, MN_MAX_FRAME) || !accepted(d, f)) {
		(*reg(d, MN_STAT_RX_FILTERED))++;
		return;
	}
	arrived = np_now_ns();
	/* Keep wire order: nothing overtakes the backlog. */
	if (d->bl_head == d->bl_tail && rx_store(d, f, len, arrived))
		return;
	if (d->bl_tail - d->bl_head == MN_BACKLOG_FRAMES) {
		(*reg(d, MN_STAT_RX_MISSED))++;
		*reg(d, MN_ICR) |= MN_INT_RX_MISSED;
		return;
	}
	fr = &d->backlog[d->bl_tail++ % MN_BACKLOG_FRAMES];
	fr->len = (uint16_t)len;
	fr->arrived = arrived;
	memcpy(fr->data, f, len);
}

static int rx_room(struct np_device *dev)
{
	struct np_mocknic *d = (struct np_mocknic *)dev;

	return d->bl_tail - d->bl_head < MN_BACKLOG_FRAMES;
}

/* ---- transmit ------------------------------------------------------------------ */

/* One VXLAN datagram: the 8-byte header (I flag, VNI) and the frame. */
static void vxlan_transmit(struct np_mocknic *d, uint8_t *f, uint32_t len)
{
	uint8_t hdr[NP_VXLAN_HDR] = {
		NP_VXLAN_FLAG_I, 0, 0, 0,
		(uint8_t)(d->vx.vni >> 16), (uint8_t)(d->vx.vni >> 8),
		(uint8_t)d->vx.vni, 0,
	};
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { f, len } };
	struct msghdr msg = {
		.msg_name = d->remote_len ? &d->remote.sa : NULL,
		.msg_namelen = d->remote_len,
		.msg_iov = iov,
		.msg_iovlen = 2,
	};

	/* Never blocks: a full socket buffer (or an ICMP error) loses it. */
	if (sendmsg(d->wire_fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) !=
	    (ssize_t)(sizeof(hdr) + len))
		d->wire_tx_dropped++;
}

static void wire_transmit(struct np_mocknic *d, uint8_t *f, uint32_t len)
{
	if (len < MN_MIN_FRAME) {
		memset(f + len, 0, MN_MIN_FRAME - len);
		len = MN_MIN_FRAME;
	}
	(*reg(d, MN_STAT_TX_FRAMES))++;
	if (d->wire_fd < 0) {
		rx_frame(d, f, len);	/* the loopback wire */
	} else if (d->vxlan) {
		vxlan_transmit(d, f, len);
	} else {
		static const uint8_t zero_hdr[16];
		struct iovec iov[2] = { { (void *)zero_hdr, d->wire_hdr }, { f, len } };

		/* Non-blocking: a cable that cannot take it loses the frame. */
		if (writev(d->wire_fd, iov, 2) != (ssize_t)(d->wire_hdr + len))
			d->wire_tx_dropped++;
	}
}

/*
 * The debug knob (np_api_adapter_corrupt_checksums): a checksum the TX
 * engine filled in goes out wrong, so a receiver can be seen counting it.
 */
static void tx_spoil(struct np_mocknic *d, uint8_t *f, uint32_t len)
{
	struct np_l4 h;

	if (!d->corrupt_csum || !np_offload_parse(f, len, &h) || !h.proto)
		return;
	d->corrupt_csum--;
	f[h.l4 + (h.proto == 6 ? 16 : 6)] ^= 0x5a;
}

static void tx_emit_segment(void *ctx, uint8_t *f, uint32_t len)
{
	struct np_mocknic *d = ctx;

	tx_spoil(d, f, len);
	wire_transmit(d, f, len);
}

/*
 * A TSO frame onto a TAP cable with a vnet header goes whole, as a GSO
 * frame: the link partner's kernel gets the bytes the segments would carry
 * (it cuts the frame, or keeps it whole as its GRO would have made it),
 * for one write instead of one per segment.  Returns 0 if it cannot.
 */
static int tx_gso_to_wire(struct np_mocknic *d, uint8_t *f, uint32_t len,
			  uint16_t mss)
{
	uint8_t hdr[16] = { 0 };
	struct virtio_net_hdr vh = { 0 };
	struct np_l4 h;
	struct iovec iov[2] = { { hdr, d->wire_hdr }, { f, len } };
	uint32_t segs;

	if (d->wire_fd < 0 || d->vxlan || d->wire_hdr < sizeof(vh) ||
	    d->corrupt_csum || !np_offload_partial(f, len, &h))
		return 0;
	vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh.gso_type = h.v4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
	vh.hdr_len = (uint16_t)h.payload;
	vh.gso_size = mss;
	vh.csum_start = (uint16_t)h.l4;
	vh.csum_offset = 16;
	memcpy(hdr, &vh, sizeof(vh));
	segs = (h.end - h.payload + mss - 1) / mss;
	*reg(d, MN_STAT_TX_FRAMES) += segs ? segs : 1;
	if (writev(d->wire_fd, iov, 2) != (ssize_t)(d->wire_hdr + len))
		d->wire_tx_dropped++;
	return 1;
}

/* EOP: the gathered frame goes out, segmented and checksummed as asked. */
static int tx_frame_done(struct np_mocknic *d)
{
	struct mn_tx_frame *t = &d->tx;
	struct np_l4 h;
	uint32_t what = 0;

	if (t->poisoned || t->len < 14)
		return -1;
	if (t->cmd & MN_TXD_TSE) {
		if (!np_offload_parse(t->data, t->len, &h) || h.proto != 6 ||
		    !t->mss || h.payload + t->mss > *reg(d, MN_MAX_FRAME))
			return -1;
		(*reg(d, MN_STAT_TSO_FRAMES))++;
		if (tx_gso_to_wire(d, t->data, t->len, t->mss))
			return 0;
		np_offload_segment(t->data, t->len, t->mss, d->seg,
				   sizeof(d->seg), tx_emit_segment, d);
		return 0;
	}
	if (t->len > *reg(d, MN_MAX_FRAME))
		return -1;
	if (t->cmd & MN_TXD_IPCS)
		what |= NP_CSUM_IP;
	if (t->cmd & MN_TXD_L4CS)
		what |= NP_CSUM_TCP | NP_CSUM_UDP;
	if (what) {
		np_offload_fill(t->data, t->len, what);
		if (what & NP_CSUM_TCP)
			tx_spoil(d, t->data, t->len);
	}
	wire_transmit(d, t->data, t->len);
	return 0;
}

static void tx_process(struct np_mocknic *d)
{
	struct mn_tx_desc *tx;
	uint32_t n = *reg(d, MN_TX_LEN), tail = *reg(d, MN_TX_TAIL);

	if (!(*reg(d, MN_CTRL) & MN_CTRL_TX_EN) || d->tx_stalled)
		return;
	tx = ring(d, MN_TX_BASE_LO, MN_TX_BASE_HI, MN_TX_LEN, "TX ring of");
	if (!tx || tail >= n)
		return;
	while (*reg(d, MN_TX_HEAD) != tail) {
		uint32_t head = *reg(d, MN_TX_HEAD);
		struct mn_tx_desc *desc = &tx[head];
		uint8_t status = MN_TXS_DD;
		void *buf = NULL;

		/* A TSO frame is cut to MAX_FRAME only at EOP. */
		uint32_t limit = desc->cmd & MN_TXD_TSE ? MN_TSO_MAX_FRAME :
				 *reg(d, MN_MAX_FRAME);

		d->tx.cmd |= desc->cmd;
		if (desc->mss)
			d->tx.mss = desc->mss;
		if (desc->length) {
			buf = dma(d, desc->addr, desc->length, "TX descriptor", head);
			if (!buf || d->tx.len + desc->length > limit) {
				status |= MN_TXS_ERR;
				d->tx.poisoned = 1;
			} else if (!d->tx.poisoned) {
				memcpy(d->tx.data + d->tx.len, buf, desc->length);
				d->tx.len += desc->length;
			}
		}
		if (desc->cmd & MN_TXD_EOP) {
			if (tx_frame_done(d)) {
				status |= MN_TXS_ERR;
				(*reg(d, MN_STAT_TX_ERRORS))++;
			}
			d->tx.len = 0;
			d->tx.poisoned = 0;
			d->tx.cmd = 0;
			d->tx.mss = 0;
		}
		if (desc->cmd & MN_TXD_RS) {
			desc->status = status;
			*reg(d, MN_ICR) |= MN_INT_TX_DONE;
		}
		*reg(d, MN_TX_HEAD) = (head + 1) % n;
	}
}

/* ---- registers ------------------------------------------------------------------ */

static void reset(struct np_mocknic *d)
{
	memset(d->reg, 0, sizeof(d->reg));
	memset(d->mc, 0, sizeof(d->mc));
	d->mc_valid = 0;
	d->bl_head = d->bl_tail = 0;
	d->tx.len = 0;
	d->tx.poisoned = 0;
	d->tx.cmd = 0;
	d->tx.mss = 0;
	d->tx_stalled = 0;
	d->irq_due_ns = 0;
	np_latency_forget(&d->a->rx_latency);	/* the RX ring is gone */
	*reg(d, MN_EEPROM_MAC_LO) = d->eeprom[0] | d->eeprom[1] << 8 |
				    d->eeprom[2] << 16 | (uint32_t)d->eeprom[3] << 24;
	*reg(d, MN_EEPROM_MAC_HI) = d->eeprom[4] | d->eeprom[5] << 8;
	*reg(d, MN_DEVICE_ID) = MN_ID;
	*reg(d, MN_MAX_FRAME) = 1518;
	*reg(d, MN_RX_BUF_LEN) = 2048;
}

static uint32_t status_reg(struct np_mocknic *d)
{
	return (d->link ? MN_STATUS_LINK_UP : 0) | MN_STATUS_FULL_DUPLEX |
	       10U << MN_STATUS_SPEED_SHIFT;	/* 1 Gb/s */
}

/* What a 32-bit read of the register at off (4-byte aligned) returns. */
static uint32_t reg_read(struct np_mocknic *d, uint32_t off)
{
	switch (off) {
	case MN_STATUS:
		return status_reg(d);
	case MN_PHY_LINK:
		return d->link;
	case MN_MC_COUNT:
		return (uint32_t)__builtin_popcount(d->mc_valid);
	}
	return *reg(d, off);
}

/*
 * Byte lanes: an access of 1, 2 or 4 bytes, naturally aligned, inside the
 * range, covers those bytes of one register.  Anything else reads as all
 * ones and is ignored as a write.
 */
static uint32_t lanes(uint32_t off, unsigned size)
{
	if ((size != 1 && size != 2 && size != 4) || off >= MN_PORT_COUNT ||
	    (off & (size - 1)))
		return 0;
	return size == 4 ? 0xffffffffU : (1U << size * 8) - 1;
}

static uint32_t port_read(struct np_device *dev, uint32_t off, unsigned size)
{
	struct np_mocknic *d = (struct np_mocknic *)dev;
	uint32_t mask = lanes(off, size);

	if (!mask)
		return 0xffffffffU;
	return (reg_read(d, off & ~3U) >> (off & 3) * 8) & mask;
}

static void port_write(struct np_device *dev, uint32_t off, unsigned size,
		       uint32_t value)
{
	struct np_mocknic *d = (struct np_mocknic *)dev;
	uint32_t mask = lanes(off, size), shift, slot;

	if (!mask)
		return;
	if (size != 4) {
		/*
		 * As a 32-bit write whose other bytes hold what the register
		 * holds; in the write-1-to-clear cause register they are 0,
		 * so they clear nothing.
		 */
		shift = (off & 3) * 8;
		off &= ~3U;
		value = ((off == MN_ICR ? 0 : *reg(d, off)) & ~(mask << shift)) |
			(value & mask) << shift;
	}
	switch (off) {
	case MN_CTRL:
		if (value & MN_CTRL_RESET) {
			reset(d);
			break;
		}
		*reg(d, off) = value;
		rx_drain_backlog(d);
		break;
	case MN_ICR:
		*reg(d, off) &= ~value;		/* write 1 to clear */
		break;
	case MN_TX_LEN:
	case MN_RX_LEN:
		/* A ring given a length starts over: a head or tail left from
		 * a longer ring would index past the new one. */
		*reg(d, off) = value;
		*reg(d, off == MN_TX_LEN ? MN_TX_HEAD : MN_RX_HEAD) = 0;
		*reg(d, off == MN_TX_LEN ? MN_TX_TAIL : MN_RX_TAIL) = 0;
		break;
	case MN_TX_TAIL:
		*reg(d, off) = value;
		tx_process(d);
		break;
	case MN_RX_TAIL:
		*reg(d, off) = *reg(d, MN_RX_LEN) ? value % *reg(d, MN_RX_LEN) : 0;
		rx_drain_backlog(d);
		break;
	case MN_MC_ADDR_HI:
		slot = *reg(d, MN_MC_INDEX);
		if (slot >= MN_MC_SLOTS)
			break;
		d->mc_valid &= ~(1U << slot);
		if (value & 0x80000000U) {
			uint32_t lo = *reg(d, MN_MC_ADDR_LO);

			d->mc[slot][0] = (uint8_t)lo;
			d->mc[slot][1] = (uint8_t)(lo >> 8);
			d->mc[slot][2] = (uint8_t)(lo >> 16);
			d->mc[slot][3] = (uint8_t)(lo >> 24);
			d->mc[slot][4] = (uint8_t)value;
			d->mc[slot][5] = (uint8_t)(value >> 8);
			d->mc_valid |= 1U << slot;
		}
		break;
	case MN_STATUS: case MN_TX_HEAD: case MN_RX_HEAD: case MN_MC_COUNT:
	case MN_EEPROM_MAC_LO: case MN_EEPROM_MAC_HI: case MN_DEVICE_ID:
	case MN_PHY_LINK: case MN_STAT_TX_FRAMES: case MN_STAT_RX_FRAMES:
	case MN_STAT_RX_MISSED: case MN_STAT_RX_FILTERED:
	case MN_STAT_TX_ERRORS: case MN_STAT_DMA_ERRORS:
	case MN_STAT_TSO_FRAMES: case MN_STAT_RX_CSUM_BAD:
		break;				/* read-only */
	case MN_MAX_FRAME:
		*reg(d, off) = value < MN_FRAME_MAX ? value : MN_FRAME_MAX - 1;
		break;
	default:
		*reg(d, off) = value;
	}
	update_line(d);
}

/* ---- the host's side: attach, link, inject, counters -------------------------- */

int np_api_adapter_attach_mocknic(struct np_adapter *a, const uint8_t *mac)
{
	struct np_mocknic *d;

	if (a->device)
		return -1;
	d = np_map(sizeof(*d), PROT_READ | PROT_WRITE, "device");
	if (!d)
		return -1;
	d->dev.port_read = port_read;
	d->dev.port_write = port_write;
	d->dev.next_due = np_mocknic_next_due;
	d->dev.poll = np_mocknic_poll;
	d->dev.rx_room = rx_room;
	d->wire_fd = -1;
	d->a = a;
	d->link = 1;
	memcpy(d->eeprom, mac, 6);
	reset(d);
	a->device = &d->dev;
	return 0;
}

void np_mocknic_free(struct np_device *dev)
{
	np_unmap(dev, sizeof(struct np_mocknic));
}

/* The PHY: cable in or out.  Raises MN_INT_LINK when it changes. */
void np_api_adapter_set_link(struct np_adapter *a, int up)
{
	struct np_mocknic *d = (struct np_mocknic *)a->device;

	if (!d || d->link == !!up)
		return;
	d->link = !!up;
	*reg(d, MN_ICR) |= MN_INT_LINK;
	update_line(d);
}

/*
 * What a TX engine that lost its way looks like to the driver: doorbells
 * are taken, descriptors are never done.  A device reset (MN_CTRL_RESET,
 * from MiniportReset) clears it, as it would on real hardware.
 */
void np_api_adapter_stall_tx(struct np_adapter *a, int stalled)
{
	struct np_mocknic *d = (struct np_mocknic *)a->device;

	if (d)
		d->tx_stalled = !!stalled;
}

/* Debug: the next n checksums the TX engine fills in go out wrong. */
void np_api_adapter_corrupt_checksums(struct np_adapter *a, uint32_t n)
{
	struct np_mocknic *d = (struct np_mocknic *)a->device;

	if (d)
		d->corrupt_csum = n;
}

/* Frames arriving from the wire side (tests, and the pump for fd wires). */
uint32_t np_api_adapter_wire_receive(struct np_adapter *a, const uint8_t *data,
				     const uint32_t *lens, uint32_t count)
{
	struct np_mocknic *d = (struct np_mocknic *)a->device;
	uint32_t i, off = 0;

	if (!d)
		return 0;
	for (i = 0; i < count; i++) {
		if (lens[i] <= MN_FRAME_MAX - MN_MIN_FRAME)
			rx_frame(d, data + off, lens[i]);
		off += lens[i];
	}
	update_line(d);
	return count;
}

void np_api_adapter_device_counters(struct np_adapter *a,
				    struct np_api_device_counters *out)
{
	struct np_mocknic *d = (struct np_mocknic *)a->device;

	memset(out, 0, sizeof(*out));
	if (!d)
		return;
	out->tx_frames = *reg(d, MN_STAT_TX_FRAMES);
	out->rx_frames = *reg(d, MN_STAT_RX_FRAMES);
	out->rx_missed = *reg(d, MN_STAT_RX_MISSED);
	out->rx_filtered = *reg(d, MN_STAT_RX_FILTERED);
	out->tx_errors = *reg(d, MN_STAT_TX_ERRORS);
	out->dma_errors = *reg(d, MN_STAT_DMA_ERRORS);
	out->tso_frames = *reg(d, MN_STAT_TSO_FRAMES);
	out->rx_csum_bad = *reg(d, MN_STAT_RX_CSUM_BAD);
	out->rx_filter = *reg(d, MN_RX_FILTER);
	out->mc_count = (uint32_t)__builtin_popcount(d->mc_valid);
	out->link = d->link;
	out->backlog = d->bl_tail - d->bl_head;
	out->wire_tx_dropped = d->wire_tx_dropped;
	out->vxlan_rx_truncated = d->vx.rx_truncated;
	out->vxlan_rx_bad_flags = d->vx.rx_bad_flags;
	out->vxlan_rx_bad_vni = d->vx.rx_bad_vni;
	out->vxlan_rx_oversize = d->vx.rx_oversize;
}

/* Connect the NIC's cable to an fd (a TAP in the peer's namespace, ...). */
int np_api_adapter_set_wire(struct np_adapter *a, int fd, uint32_t vnet_hdr)
{
	struct np_mocknic *d = (struct np_mocknic *)a->device;

	if (!d || vnet_hdr > 16)
		return -1;
	d->wire_fd = fd;
	d->wire_hdr = vnet_hdr;
	d->vxlan = 0;
	return 0;
}

/*
 * Connect the NIC's cable to a UDP socket carrying VXLAN with this VNI:
 * transmitted frames go to remote (a sockaddr_in or sockaddr_in6), or, with
 * remote_len 0, to the address the socket is connected to.  The socket
 * carries no vnet header.  -1 without a mock NIC or with bad arguments.
 */
int np_api_adapter_set_wire_vxlan(struct np_adapter *a, int fd, uint32_t vni,
				  const uint8_t *remote_sockaddr,
				  uint32_t remote_len)
{
	struct np_mocknic *d = (struct np_mocknic *)a->device;
	sa_family_t family;

	if (!d || fd < 0 || vni > 0xffffff)
		return -1;
	if (remote_len) {
		if (!remote_sockaddr || remote_len < sizeof(family))
			return -1;
		memcpy(&family, remote_sockaddr, sizeof(family));
		if (!(family == AF_INET && remote_len == sizeof(struct sockaddr_in)) &&
		    !(family == AF_INET6 && remote_len == sizeof(struct sockaddr_in6)))
			return -1;
	}
	memset(&d->remote, 0, sizeof(d->remote));
	if (remote_len)
		memcpy(&d->remote, remote_sockaddr, remote_len);
	d->remote_len = remote_len;
	memset(&d->vx, 0, sizeof(d->vx));
	d->vx.vni = vni;
	d->wire_hdr = 0;
	d->wire_fd = fd;
	d->vxlan = 1;
	return 0;
}

struct np_vxlan_wire *np_mocknic_vxlan(struct np_adapter *a)
{
	struct np_mocknic *d = (struct np_mocknic *)a->device;

	return d && d->vxlan && d->wire_fd >= 0 ? &d->vx : NULL;
}
