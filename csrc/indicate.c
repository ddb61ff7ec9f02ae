/* SPDX-License-Identifier: MIT */
/*
 * indicate.c - the handlers behind the DDK's NdisM* macros.
 *
 * NdisMSendComplete, NdisMIndicateReceivePacket, NdisMIndicateStatus and
 * friends are macros calling through the miniport block (ndis.h), so these
 * run on the driver's stack in the middle of its call.  They only queue
 * (design.md rule 2): the host drains the queue after the driver returned.
 * Same rules as the exports: no allocation, no locks, no stdio.
 */
#include <string.h>

#include "np.h"
#include "np_winfmt.h"

struct np_adapter *np_adapter_from_handle(NDIS_HANDLE h)
{
	struct np_adapter *a = (struct np_adapter *)h;

	if (!a || a->magic != NP_ADAPTER_MAGIC)
		return NULL;
	return a;
}

void np_adapter_queue(struct np_adapter *a, const struct np_api_event *ev)
{
	if (a->ev_tail - a->ev_head >= NP_EVENT_QUEUE) {
		a->ev_dropped++;
		return;
	}
	a->events[a->ev_tail % NP_EVENT_QUEUE] = *ev;
	a->ev_tail++;
}

static NDISAPI VOID h_send_complete(NDIS_HANDLE h, PNDIS_PACKET p,
				    NDIS_STATUS status)
{
	struct np_adapter *a = np_adapter_from_handle(h);

	if (a)
		np_tx_complete(a, p, status);
}

static NDISAPI VOID h_send_resources(NDIS_HANDLE h)
{
	struct np_adapter *a = np_adapter_from_handle(h);
	struct np_api_event ev = { .type = NP_EV_SEND_RESOURCES };

	if (a)
		np_adapter_queue(a, &ev);
}

static NDISAPI VOID h_reset_complete(NDIS_HANDLE h, NDIS_STATUS status,
				     BOOLEAN addressing_reset)
{
	struct np_adapter *a = np_adapter_from_handle(h);
	struct np_api_event ev = { .type = NP_EV_RESET_COMPLETE };

	if (!a)
		return;
	ev.status = status;
	ev.len = addressing_reset;
	np_adapter_queue(a, &ev);
}

/*
 * What the NIC said of the frame's checksums, if it checked them: 1 if
 * its TCP or UDP checksum is known good (and its IPv4 one not bad).
 */
static uint32_t np_rx_count_csum(struct np_adapter *a, PNDIS_PACKET p)
{
	NDIS_TCP_IP_CHECKSUM_PACKET_INFO info;

	if (!p->Private.NdisPacketOobOffset)
		return 0;
	info.Value = (ULONG)(uintptr_t)NDIS_PER_PACKET_INFO_FROM_PACKET(p,
						TcpIpChecksumPacketInfo);
	if (info.Receive.NdisPacketTcpChecksumFailed ||
	    info.Receive.NdisPacketUdpChecksumFailed ||
	    info.Receive.NdisPacketIpChecksumFailed) {
		a->stats.rx_csum_failed++;
		return 0;
	}
	if (info.Receive.NdisPacketTcpChecksumSucceeded ||
	    info.Receive.NdisPacketUdpChecksumSucceeded) {
		a->stats.rx_csum_good++;
		return 1;
	}
	return 0;
}

/*
 * Room left in the rx ring.  A ring with nothing in it, and no event queued
 * that could still name an offset in it, starts again at its beginning:
 * traffic the host keeps up with stays in the ring's first pages instead of
 * walking all of them.
 */
static uint32_t rx_room(struct np_adapter *a)
{
	if (a->rx_head == a->rx_tail && a->ev_head == a->ev_tail)
		a->rx_head = a->rx_tail = 0;
	return NP_RX_RING_BYTES - (a->rx_tail - a->rx_head);
}

/*
 * Copies each indicated frame into the rx ring now: the host hands frames on
 * after the driver returns, and a packet indicated with
 * NDIS_STATUS_RESOURCES is the driver's again as soon as this returns.
 */
static NDISAPI VOID h_indicate_packets(NDIS_HANDLE h, PPNDIS_PACKET pp,
				       UINT count)
{
	struct np_adapter *a = np_adapter_from_handle(h);
	uint64_t now;
	UINT i;

	if (!a || !pp)
		return;
	now = np_now_ns();
	for (i = 0; i < count; i++) {
		PNDIS_PACKET p = pp[i];
		struct np_api_event ev = { .type = NP_EV_RECEIVE };
		PNDIS_BUFFER b;
		uint32_t len = 0, room;

		if (!p)
			continue;
		if (np_packet_held(a, p)) {
			np_verify(&a->ctx, NP_VIOL_INDICATE_HELD,
				  "NdisMIndicateReceivePacket(%p): the host still holds it (not yet returned)",
				  (void *)p);
			continue;
		}
		a->stats.rx_indicated++;
		np_latency_indicated(&a->rx_latency, now);
		ev.csum_ok = np_rx_count_csum(a, p);
		room = rx_room(a);
		ev.status = NDIS_GET_PACKET_STATUS(p);
		ev.packet = (uintptr_t)p;
		ev.offset = a->rx_tail;
		for (b = p->Private.Head; b; b = b->Next)
			len += b->ByteCount;
		if (len > room || a->ev_tail - a->ev_head >= NP_EVENT_QUEUE) {
			/* No room: dropped whole, never delivered truncated. */
			a->stats.rx_dropped++;
			if (NDIS_GET_PACKET_STATUS(p) != NDIS_STATUS_RESOURCES &&
			    a->nreturn < NP_ARRAY_SIZE(a->to_return))
				a->to_return[a->nreturn++] = p;
			continue;
		}
		len = 0;
		for (b = p->Private.Head; b; b = b->Next) {
			uint32_t n = b->ByteCount, k;

			for (k = 0; k < n;) {
				uint32_t at = (a->rx_tail + len) % NP_RX_RING_BYTES;
				uint32_t chunk = NP_RX_RING_BYTES - at;

				if (chunk > n - k)
					chunk = n - k;
				memcpy(a->rx_ring + at,
				       (uint8_t *)b->MappedSystemVa + k, chunk);
				k += chunk;
				len += chunk;
			}
		}
		ev.len = len;
		if (a->capture) {
			uint32_t at = ev.offset % NP_RX_RING_BYTES;

			/* The frame may wrap in the rx ring; capture whole ones. */
			if (at + len <= NP_RX_RING_BYTES)
				np_capture_frame(a, 1, a->rx_ring + at, len);
			else
				a->stats.capture_dropped++;
		}
		a->rx_tail += len;
		np_adapter_queue(a, &ev);
		/* RESOURCES: the driver keeps it, so it is never returned. */
		if (NDIS_GET_PACKET_STATUS(p) != NDIS_STATUS_RESOURCES &&
		    a->nreturn < NP_ARRAY_SIZE(a->to_return))
			a->to_return[a->nreturn++] = p;
	}
}

static NDISAPI VOID h_indicate_status(NDIS_HANDLE h, NDIS_STATUS status,
				      PVOID buf, UINT len)
{
	struct np_adapter *a = np_adapter_from_handle(h);
	struct np_api_event ev = { .type = NP_EV_STATUS };

	if (!a)
		return;
	ev.status = status;
	ev.len = len;
	if (buf && len)
		memcpy(ev.data, buf, len < sizeof(ev.data) ? len : sizeof(ev.data));
	np_adapter_queue(a, &ev);
}

static NDISAPI VOID h_status_complete(NDIS_HANDLE h)
{
	struct np_adapter *a = np_adapter_from_handle(h);
	struct np_api_event ev = { .type = NP_EV_STATUS_COMPLETE };

	if (a)
		np_adapter_queue(a, &ev);
}

static void oid_complete(NDIS_HANDLE h, NDIS_STATUS status, uint32_t type)
{
	struct np_adapter *a = np_adapter_from_handle(h);
	struct np_api_event ev = { .type = type };

	if (!a)
		return;
	if (!a->oid_pending) {
		np_verify(&a->ctx, NP_VIOL_BAD_CALL,
			  "%s with no OID request pending",
			  type == NP_EV_QUERY_COMPLETE ?
			  "NdisMQueryInformationComplete" :
			  "NdisMSetInformationComplete");
		return;
	}
	a->oid_pending = 0;
	ev.status = status;
	ev.len = a->oid_written_ptr ? *a->oid_written_ptr : 0;
	ev.offset = a->oid_needed_ptr ? *a->oid_needed_ptr : 0;
	np_adapter_queue(a, &ev);
}

static NDISAPI VOID h_query_complete(NDIS_HANDLE h, NDIS_STATUS status)
{
	oid_complete(h, status, NP_EV_QUERY_COMPLETE);
}

static NDISAPI VOID h_set_complete(NDIS_HANDLE h, NDIS_STATUS status)
{
	oid_complete(h, status, NP_EV_SET_COMPLETE);
}

static NDISAPI VOID h_eth_indicate(PVOID filter, NDIS_HANDLE rx_ctx,
				   PCHAR addr, PVOID header, UINT header_len,
				   PVOID lookahead, UINT lookahead_len,
				   UINT packet_len)
{
	struct np_adapter *a = np_adapter_from_handle(filter);
	struct np_api_event ev = { .type = NP_EV_RECEIVE };
	uint32_t len = header_len + lookahead_len;

	(void)rx_ctx;
	(void)addr;
	(void)packet_len;
	if (!a || len > rx_room(a)) {
		if (a)
			a->ev_dropped++;
		return;
	}
	np_latency_indicated(&a->rx_latency, np_now_ns());
	ev.status = NDIS_STATUS_RESOURCES;	/* copied: never returned */
	ev.offset = a->rx_tail;
	ev.len = len;
	for (uint32_t k = 0; k < len; k++) {
		const uint8_t *src = k < header_len ?
			(const uint8_t *)header + k :
			(const uint8_t *)lookahead + (k - header_len);
		a->rx_ring[(a->rx_tail + k) % NP_RX_RING_BYTES] = *src;
	}
	a->rx_tail += len;
	np_adapter_queue(a, &ev);
}

/* MiniportTransferData is not supported: say so instead of crashing. */
static NDISAPI VOID h_transfer_data_complete(NDIS_HANDLE h, PNDIS_PACKET p,
					     NDIS_STATUS status, UINT n)
{
	struct np_adapter *a = np_adapter_from_handle(h);

	if (a)
		np_verify(&a->ctx, NP_VIOL_BAD_CALL,
			  "NdisMTransferDataComplete(%p): MiniportTransferData is not supported",
			  (void *)p);
}

static NDISAPI VOID h_eth_complete(PVOID filter)
{
	(void)filter;
}


/* Is p indicated and not yet handed back through MiniportReturnPacket? */
int np_packet_held(struct np_adapter *a, PNDIS_PACKET p)
{
	uint32_t i;

	for (i = 0; i < a->nreturn; i++)
		if (a->to_return[i] == p)
			return 1;
	return 0;
}

/* Fill in the miniport block a driver gets as its MiniportAdapterHandle. */
void np_block_init(struct np_adapter *a)
{
	a->block.Signature = (PVOID)(uintptr_t)0x504d494e;	/* "NIMP" */
	a->block.DriverHandle = a->ctx.image;
	a->block.EthDB = &a->block;	/* the Eth handlers get it back */
	a->block.PacketIndicateHandler = h_indicate_packets;
	a->block.SendCompleteHandler = h_send_complete;
	a->block.SendResourcesHandler = h_send_resources;
	a->block.ResetCompleteHandler = h_reset_complete;
	a->block.EthRxIndicateHandler = h_eth_indicate;
	a->block.EthRxCompleteHandler = h_eth_complete;
	a->block.StatusHandler = h_indicate_status;
	a->block.StatusCompleteHandler = h_status_complete;
	a->block.QueryCompleteHandler = h_query_complete;
	a->block.SetCompleteHandler = h_set_complete;
	a->block.TDCompleteHandler = h_transfer_data_complete;
}
