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
 * frame (0 without IFF_VNET_HDR); with no offloads negotiated it is zero.
 *
 * A VXLAN wire (the device says so: np_mocknic_vxlan) is a UDP socket
 * instead: each datagram is an 8-byte RFC 7348 header and one frame, no
 * vnet header.  Datagrams that are too short, lack the I flag, carry
 * another VNI or do not fit the frame buffer are dropped and counted by
 * reason in the device's counters; reserved bits and bytes are ignored, as
 * the RFC asks of receivers.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "np.h"

#define NP_PUMP_BATCH	64	/* frames from the TAP per MiniportSendPackets */
/*
 * Frames off the cable per pass before the driver indicates them: each
 * waits for the reads after it, and a pass costs few crossings.
 */
#define NP_WIRE_BATCH	16
#define NP_FRAME_BUF	(NP_TX_SLOT_DATA + 64)

/* Per adapter, so adapters pumped from different threads never share. */
struct np_pump_buf {
	uint8_t frame[NP_FRAME_BUF];
	uint8_t frames[NP_PUMP_BATCH * NP_FRAME_BUF];
};

static const uint8_t zero_hdr[16];

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
static ssize_t read_frame(int fd, uint32_t hdr, uint8_t *buf, size_t len)
{
	uint8_t skip[16];
	struct iovec iov[2] = { { skip, hdr }, { buf, len } };
	ssize_t n = readv(fd, iov, 2);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? READ_NONE : READ_ERROR;
	return n < (ssize_t)hdr ? READ_RUNT : n - (ssize_t)hdr;
}

/* Wire -> device: what arrives on the NIC's cable.  1 once the fd is drained. */
static int pump_wire_in(struct np_adapter *a, struct np_api_pump *p)
{
	uint8_t *frame = a->pump_buf->frame;
	uint32_t i, len;

	for (i = 0; i < NP_WIRE_BATCH; i++) {
		ssize_t n;

		if (!np_device_rx_room(a->device))
			return 0;
		n = read_frame(p->wire_fd, p->wire_vnet_hdr, frame, NP_FRAME_BUF);
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
		np_api_adapter_wire_receive(a, frame, &len, 1);
		p->wire_in++;
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

/*
 * TAP -> MiniportSendPackets, one crossing per batch of what Linux sent.
 * *drained: the TAP would block (not: the batch or the free packets ran out).
 */
static uint32_t pump_tap_in(struct np_adapter *a, struct np_api_pump *p,
			    int *drained)
{
	uint8_t *frames = a->pump_buf->frames;
	uint32_t lens[NP_PUMP_BATCH], n = 0, used = 0, fault = 0;
	uint32_t room = a->tx_nfree < NP_PUMP_BATCH ? a->tx_nfree : NP_PUMP_BATCH;

	*drained = 0;
	while (n < room) {
		ssize_t len = read_frame(p->tap_fd, p->tap_vnet_hdr,
					 frames + used, NP_FRAME_BUF);

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
		/* Linux may hand a TAP frames no Ethernet carries: count, drop. */
		if (len < 14 || (uint32_t)len > a->max_frame) {
			if (len < 14)
				a->stats.tx_refused_short++;
			else
				a->stats.tx_refused_long++;
			continue;
		}
		lens[n++] = (uint32_t)len;
		used += (uint32_t)len;
	}
	if (n) {
		uint32_t accepted;
		int32_t bad;

		fault = np_api_adapter_send(a, frames, lens, n, &accepted, &bad);
		p->tap_in += accepted;
	}
	return fault;
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
		iov[0].iov_base = (void *)zero_hdr;
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
