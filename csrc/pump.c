/* SPDX-License-Identifier: MIT */
/*
 * pump.c - the host's data path between Linux and the adapter, in C.
 *
 * One call moves everything that is ready, in batches, with one crossing
 * into the driver per batch (design.md rule 7):
 *
 *   wire fd  --read-->  device RX (the NIC's cable)
 *   TAP fd   --read-->  MiniportSendPackets  --> device TX --> wire fd
 *   interrupt line up   ISR + DPC            --> indications
 *   received frames     --write--> TAP fd,   MiniportReturnPacket
 *
 * Back-pressure, not queues: the TAP is read only while the host has free
 * send packets, so Linux keeps what the driver cannot take yet (its qdisc
 * and the TAP's queue), and the wire is read only while the device's
 * backlog has room.  What is dropped anyway is counted: frames Linux gave
 * that no Ethernet can carry, and frames the TAP would not take.
 *
 * Both fds carry a virtio_net_hdr of pump->*_vnet_hdr bytes before each
 * frame (0 without IFF_VNET_HDR).  Offloads map onto NDIS 5.1's
 * (docs/tap.md, "Offloads"): a TCP/IPv4 GSO frame from Linux goes to the
 * driver as one large send with its MSS when the driver does large sends;
 * any other GSO frame (IPv6: NDIS 5.1 has no IPv6 large send) is cut into
 * segments here first; NEEDS_CSUM becomes checksum offload info, or the
 * checksum is filled in here.  GSO frames off the wire are cut here too: a
 * NIC's cable carries segments.  A received frame whose checksums the NIC
 * checked goes up with DATA_VALID.
 *
 * A VXLAN wire (the device says so: np_mocknic_vxlan) is a UDP socket
 * instead: each datagram is an 8-byte RFC 7348 header and one frame, no
 * vnet header.  Datagrams that are too short, lack the I flag, carry
 * another VNI or do not fit the frame buffer are dropped and counted by
 * reason in the device's counters; reserved bits and bytes are ignored, as
 * the RFC asks of receivers.
 */
#include <errno.h>
#include <linux/virtio_net.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "np.h"

/*
 * Frames from the TAP per MiniportSendPackets.  Each one in flight holds a
 * send packet's page; 32 keep a burst to 128 KiB of them and cost nothing
 * in throughput against 64 (bench_tap: 1.86 Gbit/s either way).
 */
#define NP_PUMP_BATCH	32
/*
 * Frames off the cable per pass before the driver indicates them: each
 * waits for the reads after it, and a pass costs few crossings.
 */
#define NP_WIRE_BATCH	16
#define NP_FRAME_BUF	(NP_TX_FRAME_MAX + 64)
/* A TAP read: a GSO frame is up to 64 KiB (IPv4 total length) + headers. */
#define NP_GSO_BUF	NP_TX_SLOT_ROOM

/* Per adapter, so adapters pumped from different threads never share. */
struct np_pump_buf {
	uint8_t frame[NP_GSO_BUF];		/* a frame being cut, a datagram */
	uint8_t seg[NP_FRAME_BUF];		/* one segment being cut */
};

/*
 * A batch of frames from the TAP on its way to MiniportSendPackets: frame
 * i is read straight into the send slot it will go in
 * (np_tx_next_buffer(a, i)), so it is never copied on the way.
 */
struct tap_batch {
	struct np_adapter *a;
	struct np_api_pump *p;
	uint32_t lens[NP_PUMP_BATCH];
	struct np_api_tx_offload offload[NP_PUMP_BATCH];
	uint32_t n, room;
	uint32_t fault;
};

static const uint8_t zero_hdr[16];
/* A virtio_net_hdr (and room for the 12-byte kind) saying "checked". */
static const uint8_t data_valid[16] = { VIRTIO_NET_HDR_F_DATA_VALID };

/* NDIS_TCP_IP_CHECKSUM_PACKET_INFO.Transmit bits */
#define CSUM_TX_V4	0x01
#define CSUM_TX_V6	0x02
#define CSUM_TX_TCP	0x04
#define CSUM_TX_UDP	0x08
#define CSUM_TX_IP	0x10

void np_pump_destroy(struct np_adapter *a)
{
	np_unmap(a->pump_buf, sizeof(struct np_pump_buf));
	a->pump_buf = NULL;
}

enum { READ_NONE = -1, READ_ERROR = -2, READ_RUNT = -3 };

/*
 * Reads one message: the frame's length without the header (0 for a
 * message that is only a header), or READ_NONE when nothing waits,
 * READ_ERROR (errno says why), READ_RUNT for one shorter than the header.
 * A socket wire may carry empty messages, so a read of 0 bytes is one of
 * them, never an end of file: the far ends of our fds outlive the pump.
 */
static ssize_t read_frame(int fd, uint32_t hdr, uint8_t *buf, size_t len,
			  struct virtio_net_hdr *vh)
{
	uint8_t head[16] = { 0 };
	struct iovec iov[2] = { { head, hdr }, { buf, len } };
	ssize_t n = readv(fd, iov, 2);

	memcpy(vh, head, sizeof(*vh));
	if (hdr < sizeof(*vh))
		memset(vh, 0, sizeof(*vh));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? READ_NONE : READ_ERROR;
	return n < (ssize_t)hdr ? READ_RUNT : n - (ssize_t)hdr;
}

static int is_gso(const struct virtio_net_hdr *vh)
{
	return (vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_NONE;
}

/*
 * NEEDS_CSUM that points at the TCP or UDP checksum of a frame we parsed:
 * a vnet header that says anything else is not Linux's, and is ignored.
 */
static int wants_csum(const struct virtio_net_hdr *vh, const struct np_l4 *h,
		      int parsed)
{
	return (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && parsed && h->proto &&
	       vh->csum_start == h->l4 &&
	       vh->csum_offset == (h->proto == 6 ? 16 : 6);
}

/* Fills in what Linux left for the NIC: a partial checksum. */
static void fill_csum(uint8_t *f, uint32_t len, struct np_api_pump *p)
{
	np_offload_fill(f, len, NP_CSUM_TCP | NP_CSUM_UDP);
	p->csum_filled++;
}

static void wire_segment(void *ctx, uint8_t *f, uint32_t len)
{
	np_api_adapter_wire_receive(ctx, f, &len, 1);
}

/* Wire -> device: what arrives on the NIC's cable.  1 once the fd is drained. */
static int pump_wire_in(struct np_adapter *a, struct np_api_pump *p)
{
	uint8_t *frame = a->pump_buf->frame;
	struct virtio_net_hdr vh;
	struct np_l4 h;
	uint32_t i, len;
	int parsed;

	for (i = 0; i < NP_WIRE_BATCH; i++) {
		ssize_t n;

		if (!np_device_rx_room(a->device))
			return 0;
		n = read_frame(p->wire_fd, p->wire_vnet_hdr, frame, NP_GSO_BUF, &vh);
		if (n == READ_NONE)
			return 1;
		if (n == READ_ERROR) {
			p->wire_error = errno;
			return 1;
		}
		if (n == READ_RUNT) {
			p->wire_runts++;
			continue;
		}
		len = (uint32_t)n;
		p->wire_in++;
		parsed = np_offload_parse(frame, len, &h);
		if (is_gso(&vh) &&
		    np_offload_segment(frame, len, vh.gso_size, a->pump_buf->seg,
				       sizeof(a->pump_buf->seg), wire_segment, a)) {
			p->gso_segmented++;
			continue;
		}
		/* What a 9280-byte read took before GSO: the device filters it. */
		if (len > NP_FRAME_BUF)
			len = NP_FRAME_BUF;
		if (wants_csum(&vh, &h, parsed))
			fill_csum(frame, len, p);
		np_api_adapter_wire_receive(a, frame, &len, 1);
	}
	return 0;
}

/* VXLAN socket -> device: one datagram, one frame.  1 once drained. */
static int pump_wire_in_vxlan(struct np_adapter *a, struct np_api_pump *p,
			      struct np_vxlan_wire *vx)
{
	uint8_t *dgram = a->pump_buf->frame;
	uint32_t i, len, vni;

	for (i = 0; i < NP_WIRE_BATCH; i++) {
		ssize_t n;

		if (!np_device_rx_room(a->device))
			return 0;
		/* MSG_TRUNC: the datagram's real length, even if it did not fit. */
		n = recvfrom(p->wire_fd, dgram, NP_FRAME_BUF,
			     MSG_DONTWAIT | MSG_TRUNC, NULL, NULL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				p->wire_error = errno;
			return 1;
		}
		if (n < NP_VXLAN_HDR + 14) {
			vx->rx_truncated++;
			continue;
		}
		if (!(dgram[0] & NP_VXLAN_FLAG_I)) {
			vx->rx_bad_flags++;
			continue;
		}
		vni = (uint32_t)dgram[4] << 16 | (uint32_t)dgram[5] << 8 | dgram[6];
		if (vni != vx->vni) {
			vx->rx_bad_vni++;
			continue;
		}
		if (n > NP_FRAME_BUF) {
			vx->rx_oversize++;
			continue;
		}
		len = (uint32_t)n - NP_VXLAN_HDR;
		np_api_adapter_wire_receive(a, dgram + NP_VXLAN_HDR, &len, 1);
		p->wire_in++;
	}
	return 0;
}

/* One crossing for what the batch holds; it starts over, empty. */
static void batch_send(struct tap_batch *b)
{
	struct np_adapter *a = b->a;
	uint32_t accepted;
	int32_t bad;

	if (b->n && !b->fault) {
		b->fault = np_tx_send_in_place(a, b->lens, b->offload, b->n,
					       &accepted, &bad);
		b->p->tap_in += accepted;
	}
	b->n = 0;
	b->room = a->tx_nfree < NP_PUMP_BATCH ? a->tx_nfree : NP_PUMP_BATCH;
}

/* A segment the host cut: into the batch, which goes when full. */
static void batch_segment(void *ctx, uint8_t *f, uint32_t len)
{
	struct tap_batch *b = ctx;

	if (b->n == b->room)
		batch_send(b);
	if (b->n == b->room || b->fault) {
		b->p->gso_dropped++;	/* no send packet free: TCP resends */
		return;
	}
	memcpy(np_tx_next_buffer(b->a, b->n), f, len);
	b->lens[b->n] = len;
	b->offload[b->n++] = (struct np_api_tx_offload){ 0 };
}

/*
 * A frame read into the batch's free end: sent as it is (with offload
 * info), cut into segments first, or dropped (counted) if no Ethernet
 * carries it.  GSO is honoured only for a TCP frame with an MSS.
 */
static void tap_frame(struct tap_batch *b, uint32_t len,
		      const struct virtio_net_hdr *vh)
{
	struct np_adapter *a = b->a;
	struct np_api_pump *p = b->p;
	uint8_t *f = np_tx_next_buffer(a, b->n);
	struct np_api_tx_offload o = { 0 };
	struct np_l4 h;
	int parsed = np_offload_parse(f, len, &h);

	if (len < 14) {
		a->stats.tx_refused_short++;
		return;
	}
	if (is_gso(vh) && vh->gso_size && parsed && h.proto == 6) {
		if ((p->offloads & NP_PUMP_OFFLOAD_LSO4) && h.v4 &&
		    (vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV4 &&
		    len <= NP_TX_SLOT_DATA && h.end - h.payload <= p->lso_max) {
			o.csum = CSUM_TX_V4 | CSUM_TX_TCP | CSUM_TX_IP;
			o.mss = vh->gso_size;
			p->tap_large_sends++;
			goto add;
		}
		/* NDIS 5.1 has no IPv6 large send: the host cuts it (out of
		 * the slot, whose buffer takes the first segment). */
		memcpy(a->pump_buf->frame, f, len);
		if (np_offload_segment(a->pump_buf->frame, len, vh->gso_size,
				       a->pump_buf->seg, sizeof(a->pump_buf->seg),
				       batch_segment, b)) {
			p->gso_segmented++;
			return;
		}
	}
	/* Linux may hand a TAP frames no Ethernet carries: count, drop. */
	if (len > a->max_frame) {
		a->stats.tx_refused_long++;
		return;
	}
	if (wants_csum(vh, &h, parsed)) {
		if (p->offloads & NP_PUMP_OFFLOAD_CSUM)
			o.csum = (h.v4 ? CSUM_TX_V4 : CSUM_TX_V6) |
				 (h.proto == 6 ? CSUM_TX_TCP : CSUM_TX_UDP);
		else
			fill_csum(f, len, p);
	}
add:
	b->offload[b->n] = o;
	b->lens[b->n++] = len;
}

/*
 * TAP -> MiniportSendPackets, one crossing per batch of what Linux sent.
 * *drained: the TAP would block (not: the batch or the free packets ran out).
 */
static uint32_t pump_tap_in(struct np_adapter *a, struct np_api_pump *p,
			    int *drained)
{
	struct tap_batch b = { .a = a, .p = p };
	struct virtio_net_hdr vh;

	b.room = a->tx_nfree < NP_PUMP_BATCH ? a->tx_nfree : NP_PUMP_BATCH;
	*drained = 0;
	while (b.n < b.room && !b.fault) {
		ssize_t len = read_frame(p->tap_fd, p->tap_vnet_hdr,
					 np_tx_next_buffer(a, b.n), NP_TX_SLOT_ROOM, &vh);

		if (len == READ_NONE) {
			*drained = 1;
			break;
		}
		if (len == READ_ERROR) {
			p->tap_error = errno;
			*drained = 1;
			break;
		}
		if (len == READ_RUNT) {
			p->tap_runts++;
			continue;
		}
		tap_frame(&b, (uint32_t)len, &vh);
	}
	batch_send(&b);
	return b.fault;
}

/*
 * Received frames -> TAP, written straight from the adapter's rx ring (a
 * frame may wrap there: two pieces); stops at the first control event,
 * which the host takes (events() or control_events()).
 */
static void pump_tap_out(struct np_adapter *a, struct np_api_pump *p)
{
	while (a->ev_head != a->ev_tail) {
		struct np_api_event *ev = &a->events[a->ev_head % NP_EVENT_QUEUE];
		uint32_t at = ev->offset % NP_RX_RING_BYTES;
		uint32_t first = NP_RX_RING_BYTES - at;
		struct iovec iov[3];

		if (ev->type != NP_EV_RECEIVE)
			return;
		if (first > ev->len)
			first = ev->len;
		/* No header shorter than virtio_net_hdr carries DATA_VALID. */
		iov[0].iov_base = ev->csum_ok && p->tap_vnet_hdr >= sizeof(struct virtio_net_hdr) ?
				  (void *)&data_valid : (void *)zero_hdr;
		iov[0].iov_len = p->tap_vnet_hdr;
		iov[1].iov_base = a->rx_ring + at;
		iov[1].iov_len = first;
		iov[2].iov_base = a->rx_ring;
		iov[2].iov_len = ev->len - first;
		if (writev(p->tap_fd, iov, ev->len > first ? 3 : 2) ==
		    (ssize_t)(p->tap_vnet_hdr + ev->len))
			p->tap_out++;
		else
			p->tap_out_dropped++;
		a->rx_head = ev->offset + ev->len;
		a->ev_head++;
	}
}

/* The interrupt, what it indicated up to Linux, the packets back. */
static uint32_t pump_deliver(struct np_adapter *a, struct np_api_pump *p,
			     uint32_t *serviced)
{
	uint32_t fault = np_adapter_service_line(a, serviced);

	if (fault)
		return fault;
	if (p->tap_fd >= 0)
		pump_tap_out(a, p);
	return np_api_adapter_return_packets(a);
}

/*
 * One pass over the data path: what `ready` says to read, what the driver
 * has to do about it, what it indicated.  Frames off the cable go up to
 * Linux before its next batch goes out: a batch of sends takes a while (a
 * wire write runs the peer's receive path), and a frame that came in
 * should not wait behind it.  *more gets the fds that were not drained and
 * NP_PUMP_LINE if the interrupt line rose after this pass serviced it (a
 * timer, a returned packet); *progress whether anything moved at all.
 * Returns 0 or a fault code.
 */
uint32_t np_pump_round(struct np_adapter *a, struct np_api_pump *p,
		       uint64_t now_ns, unsigned ready, unsigned *more,
		       int *progress)
{
	uint64_t before = p->wire_in + p->tap_in + p->tap_out + p->tap_out_dropped;
	uint32_t fault, first, serviced, ran;
	int drained;

	*more = 0;
	*progress = 0;
	if (!a->pump_buf) {
		a->pump_buf = np_map(sizeof(struct np_pump_buf),
				     PROT_READ | PROT_WRITE, "pump");
		if (!a->pump_buf)
			return STATUS_INSUFFICIENT_RESOURCES;
	}
	if ((ready & NP_PUMP_WIRE) && p->wire_fd >= 0 && a->device) {
		struct np_vxlan_wire *vx = np_mocknic_vxlan(a);

		drained = vx ? pump_wire_in_vxlan(a, p, vx) : pump_wire_in(a, p);
		/* Out of room, it waits: the driver's next refill makes some. */
		if (!drained && np_device_rx_room(a->device))
			*more |= NP_PUMP_WIRE;
	}
	fault = pump_deliver(a, p, &first);
	if (fault)
		return fault;
	if ((ready & NP_PUMP_TAP) && p->tap_fd >= 0 && a->initialised) {
		fault = pump_tap_in(a, p, &drained);
		if (fault)
			return fault;
		if (!drained && a->tx_nfree)
			*more |= NP_PUMP_TAP;
	}
	fault = np_api_adapter_run_timers(a, now_ns, &ran);
	if (fault)
		return fault;
	fault = pump_deliver(a, p, &serviced);
	if (fault)
		return fault;
	/* Left for the host: control events, or every event without a TAP. */
	p->events_pending = a->ev_head != a->ev_tail;
	/* Raised after the service above, or left up by a line that stays
	 * up whatever the driver does (then it waits for the next edge). */
	if (a->irq_line && !serviced && a->interrupt && a->initialised)
		*more |= NP_PUMP_LINE;
	serviced += first;
	p->tx_free = a->tx_nfree;
	*progress = p->wire_in + p->tap_in + p->tap_out + p->tap_out_dropped != before ||
		    ran || (serviced && !a->irq_line) || (*more & NP_PUMP_LINE);
	return 0;
}

/*
 * Everything that is ready, until nothing moves (bounded); for a host that
 * runs the data path on its own thread between waits.  Returns 0 or a
 * fault code; p->events_pending tells the caller to drain control events.
 */
uint32_t np_api_adapter_pump(struct np_adapter *a, struct np_api_pump *p,
			     uint64_t now_ns)
{
	struct np_adapter *outer = np_pumping;
	uint64_t drain;
	uint32_t fault = 0, round;
	unsigned more;
	int progress;

	p->events_pending = 0;
	if (a->pump_thread)
		return STATUS_INVALID_PARAMETER;	/* it pumps: not two at once */
	/* Edges the line makes from here on are serviced by the rounds. */
	while (read(a->irq_eventfd, &drain, sizeof(drain)) == sizeof(drain))
		;
	np_pumping = a;
	for (round = 0; round < 16; round++) {
		fault = np_pump_round(a, p, now_ns, NP_PUMP_TAP | NP_PUMP_WIRE,
				      &more, &progress);
		if (fault || p->events_pending || !progress)
			break;
	}
	np_pumping = outer;
	/* The line rose at the end: the eventfd brings the caller back. */
	if (!fault && (more & NP_PUMP_LINE)) {
		uint64_t one = 1;

		(void)!write(a->irq_eventfd, &one, sizeof(one));
	}
	return fault;
}
