/* SPDX-License-Identifier: MIT */
/*
 * datapath.c - frames out and in: SendPackets, the ISR, the DPC
 * (HandleInterrupt) and ReturnPacket.
 *
 * TX: each frame is copied into its descriptors' bounce buffers (one
 * descriptor a frame, EOP|RS, unless it is a large send longer than a
 * buffer: then as many as it fills, EOP on the last, the offload bits and
 * MSS on all), the doorbell (TX_TAIL) is written once per
 * call, and each packet is completed exactly once, when its descriptor
 * comes back with DD: normally right after the doorbell, as the device
 * transmits inside that write, else from the DPC or the watchdog.  Packets
 * that find no free descriptor wait in txq, in order, for the next reap.
 *
 * RX: the DPC takes completed descriptors in ring order, indicates their
 * packets MN_RX_BATCH at a time, and refills the ring from the free list
 * with one RX_TAIL write.  The stack returns packets in any order through
 * ReturnPacket (mocknic.h has a receive buffer's life cycle).
 */
#include "mocknic.h"

/* What a reap found: completed once tx_lock is dropped. */
struct mn_tx_done {
	struct mn_pkt_list ok, failed;
	PNDIS_PACKET twice;		/* MN_FAULT_DOUBLE_COMPLETE's victim */
};

/* ---- transmit -------------------------------------------------------- */

/* Descriptors free for filling: one always stays empty (HEAD == TAIL). */
static ULONG mn_tx_free(const struct mn_adapter *a)
{
	return a->tx_count - 1 -
	       (a->tx_use + a->tx_count - a->tx_clean) % a->tx_count;
}

/* Descriptors a frame of len bytes fills. */
static ULONG mn_tx_descs(const struct mn_adapter *a, ULONG len)
{
	return len ? (len + a->tx_buf_len - 1) / a->tx_buf_len : 1;
}

/*
 * Copies the packet's buffer chain into the bounce buffers of the
 * descriptors from tx_use on, tx_buf_len bytes to each.  Returns the
 * frame length, or 0 if a buffer is unmapped or the chain does not add up.
 */
static ULONG mn_tx_gather(struct mn_adapter *a, PNDIS_PACKET p)
{
	PNDIS_BUFFER b;
	UINT total, len;
	PVOID va;
	ULONG done = 0;

	NdisQueryPacket(p, NULL, NULL, &b, &total);
	if (mn_tx_descs(a, total) > a->tx_count - 1)
		return 0;
	while (b) {
		NdisQueryBufferSafe(b, &va, &len, MN_PAGE_PRIORITY);
		if (len && (!va || len > total - done))
			return 0;
		while (len) {
			ULONG in_slot = done % a->tx_buf_len;
			ULONG at = (a->tx_use + done / a->tx_buf_len) % a->tx_count;
			ULONG n = a->tx_buf_len - in_slot < len ?
				  a->tx_buf_len - in_slot : len;

			NdisMoveMemory(a->tx_slots[at].va + in_slot, va, n);
			va = (PUCHAR)va + n;
			len -= n;
			done += n;
		}
		NdisGetNextBuffer(b, &b);
	}
	return done == total ? done : 0;
}

/* Must hold tx_lock.  Moves queued packets onto free descriptors, in order. */
static ULONG mn_tx_fill(struct mn_adapter *a, struct mn_pkt_list *failed)
{
	ULONG filled = 0;

	while (a->txq.head) {
		PNDIS_PACKET p = a->txq.head;
		ULONG len, ndesc, k, first = a->tx_use;
		USHORT mss;
		UCHAR cmd;
		UINT total;

		NdisQueryPacketLength(p, &total);
		ndesc = mn_tx_descs(a, total);
		if (ndesc > mn_tx_free(a) && ndesc <= a->tx_count - 1)
			break;			/* waits for the next reap */
		mn_list_pop(&a->txq);
		len = mn_tx_gather(a, p);
		if (len < MN_ETH_HLEN) {
			a->xmit_error++;
			mn_list_append(failed, p);
			continue;
		}
		cmd = mn_offload_tx_cmd(a, p, &mss);
		for (k = 0; k < ndesc; k++) {
			ULONG at = (first + k) % a->tx_count;
			struct mn_tx_slot *s = &a->tx_slots[at];
			volatile struct mn_tx_desc *d = &a->tx_ring[at];
			BOOLEAN last = k == ndesc - 1;

			d->addr = (ULONGLONG)s->pa.QuadPart;
			if (a->fault_bad_dma) {
				a->fault_bad_dma = FALSE;
				d->addr = MN_BAD_DMA_ADDR;
				DbgPrint("mocknic: fault %lu (bad DMA) fired: TX descriptor %lu gets bus address 0x%I64x\n",
					 MN_FAULT_BAD_DMA, at, (ULONGLONG)MN_BAD_DMA_ADDR);
			}
			d->length = (USHORT)(last ? len - k * a->tx_buf_len :
					     a->tx_buf_len);
			d->cmd = cmd | MN_TXD_RS | (last ? MN_TXD_EOP : 0);
			d->mss = mss;
			d->status = 0;
			s->packet = last ? p : NULL;
			s->part = !last;
			s->lso_payload = 0;
		}
		if (cmd & MN_TXD_TSE)
			a->tx_slots[(first + ndesc - 1) % a->tx_count].lso_payload =
				mn_offload_tcp_payload(a->tx_slots[first].va, len);
		a->tx_use = (first + ndesc) % a->tx_count;
		filled++;
	}
	return filled;
}

/* Must hold tx_lock.  Takes back every descriptor the device is done with. */
static void mn_tx_clean(struct mn_adapter *a, struct mn_tx_done *done)
{
	while (a->tx_clean != a->tx_use) {
		ULONG at = a->tx_clean;
		volatile struct mn_tx_desc *d = &a->tx_ring[at];
		struct mn_tx_slot *s = &a->tx_slots[at];
		UCHAR status = d->status;
		PNDIS_PACKET p = s->packet;

		if (!(status & MN_TXS_DD))
			break;
		d->status = 0;
		s->packet = NULL;
		a->tx_clean = (at + 1) % a->tx_count;
		if (s->part) {
			s->part = FALSE;
			continue;		/* its frame ends further on */
		}
		if (!p) {
			DbgPrint("mocknic: TX descriptor %lu completed without a packet\n", at);
			continue;
		}
		if (status & MN_TXS_ERR) {
			a->xmit_error++;
			mn_list_append(&done->failed, p);
			continue;
		}
		a->xmit_ok++;
		/* A large send's completion says how much TCP payload went. */
		if (s->lso_payload)
			NDIS_PER_PACKET_INFO_FROM_PACKET(p, TcpLargeSendPacketInfo) =
				(PVOID)(ULONG_PTR)s->lso_payload;
		mn_list_append(&done->ok, p);
		if (a->fault_double_complete && !done->twice) {
			a->fault_double_complete = FALSE;
			done->twice = p;
		}
	}
}

/* Must hold tx_lock: reap, fill from txq, one doorbell, reap what it sent. */
static void mn_tx_kick(struct mn_adapter *a, struct mn_tx_done *done)
{
	mn_tx_clean(a, done);
	if (mn_tx_fill(a, &done->failed)) {
		mn_wr(a, MN_TX_TAIL, a->tx_use);
		mn_tx_clean(a, done);
	}
}

/* Fails or completes every packet of l, in order; l ends up empty. */
void mn_complete_sends(struct mn_adapter *a, struct mn_pkt_list *l,
		       NDIS_STATUS status)
{
	PNDIS_PACKET p;

	/* mn_list_pop reads the link before the packet stops being ours. */
	while ((p = mn_list_pop(l)))
		NdisMSendComplete(a->handle, p, status);
}

/* No lock held: the completions may send again, right into us. */
static void mn_tx_finish(struct mn_adapter *a, struct mn_tx_done *done)
{
	mn_complete_sends(a, &done->ok, NDIS_STATUS_SUCCESS);
	mn_complete_sends(a, &done->failed, NDIS_STATUS_FAILURE);
	if (done->twice) {
		DbgPrint("mocknic: fault %lu (double completion) fired: completing packet %p again\n",
			 MN_FAULT_DOUBLE_COMPLETE, done->twice);
		NdisMSendComplete(a->handle, done->twice, NDIS_STATUS_SUCCESS);
	}
}

/* <= DISPATCH_LEVEL: reap and refill the TX ring from the software queue. */
void mn_tx_service(struct mn_adapter *a)
{
	struct mn_tx_done done = { 0 };

	NdisAcquireSpinLock(&a->tx_lock);
	mn_tx_kick(a, &done);
	NdisReleaseSpinLock(&a->tx_lock);
	mn_tx_finish(a, &done);
}

/*
 * <= DISPATCH_LEVEL (deserialized).  Every packet is ours until
 * NdisMSendComplete; frames no Ethernet can carry fail at once.
 */
VOID NDISAPI mn_send_packets(NDIS_HANDLE ctx, PPNDIS_PACKET packets, UINT count)
{
	struct mn_adapter *a = ctx;
	struct mn_tx_done done = { 0 };
	UINT i;

	NdisAcquireSpinLock(&a->tx_lock);
	if (a->fault_hang_send) {
		DbgPrint("mocknic: fault %lu (hang in send) fired in MiniportSendPackets\n",
			 MN_FAULT_HANG_SEND);
		for (;;)
			__builtin_ia32_pause();
	}
	if (a->fault_overflow_send) {
		DbgPrint("mocknic: fault %lu (overflow in send) fired in MiniportSendPackets\n",
			 MN_FAULT_OVERFLOW_SEND);
		mn_fault_fire(a, MN_FAULT_OVERFLOW);
	}
	for (i = 0; i < count; i++) {
		PNDIS_PACKET p = packets[i];
		UINT len;

		NDIS_SET_PACKET_STATUS(p, NDIS_STATUS_PENDING);
		NdisQueryPacketLength(p, &len);
		if (len < MN_ETH_HLEN ||
		    (len > a->max_frame &&
		     !(a->lso_max && NDIS_PER_PACKET_INFO_FROM_PACKET(p,
						TcpLargeSendPacketInfo) &&
		       len <= a->lso_max + MN_LSO_HEADERS))) {
			a->xmit_error++;
			mn_list_append(&done.failed, p);
		} else {
			mn_list_append(&a->txq, p);
		}
	}
	mn_tx_kick(a, &done);
	NdisReleaseSpinLock(&a->tx_lock);
	mn_tx_finish(a, &done);
}

/* ---- interrupt ------------------------------------------------------- */

/*
 * DIRQL: port I/O and atomics only.  The line is (ICR & IMS) != 0, so
 * clearing the causes we saw drops it; the DPC gets them through ->causes.
 */
VOID NDISAPI mn_isr(PBOOLEAN recognized, PBOOLEAN queue_dpc, NDIS_HANDLE ctx)
{
	struct mn_adapter *a = ctx;
	ULONG icr = mn_rd(a, MN_ICR);

	/* All ones is a device that is gone, not one that interrupts. */
	if (icr == 0 || icr == 0xFFFFFFFFU) {
		*recognized = FALSE;
		*queue_dpc = FALSE;
		return;
	}
	__atomic_fetch_or(&a->causes, icr, __ATOMIC_RELEASE);
	mn_wr(a, MN_ICR, icr);
	*recognized = TRUE;
	*queue_dpc = TRUE;
}

/* ---- receive --------------------------------------------------------- */

/*
 * Takes up to MN_RX_BATCH completed descriptors off the ring, in order,
 * and makes their packets ready to indicate.  A packet goes up with
 * NDIS_STATUS_RESOURCES (copy it now, it stays ours) when handing it to
 * the stack would leave fewer than MN_RX_LOW_WATER buffers to the device.
 */
static ULONG mn_rx_collect(struct mn_adapter *a, PNDIS_PACKET *batch)
{
	ULONG n = 0;

	NdisDprAcquireSpinLock(&a->rx_lock);
	while (n < MN_RX_BATCH && a->rx_clean != a->rx_tail) {
		ULONG at = a->rx_clean;
		volatile struct mn_rx_desc *d = &a->rx_ring[at];
		struct mn_rx_buf *b = a->rx_desc_buf[at];
		UCHAR status = d->status, errors, csum;
		ULONG len;

		/* DD first: the rest of the descriptor is only valid after it. */
		if (!(status & MN_RXS_DD))
			break;
		len = d->length;
		errors = d->errors;
		csum = d->csum;
		a->rx_desc_buf[at] = NULL;
		d->status = 0;
		a->rx_clean = (at + 1) % a->rx_count;
		if (!b) {
			DbgPrint("mocknic: RX descriptor %lu completed without a buffer\n", at);
			a->rcv_error++;
			continue;
		}
		if (errors || !(status & MN_RXS_EOP) || len < MN_ETH_HLEN ||
		    len > a->rx_buf_len) {
			a->rcv_error++;
			mn_rx_buf_put(a, b);
			continue;
		}
		NdisAdjustBufferLength(b->buffer, len);
		/* The DDK's NdisRecalculatePacketCounts: the length changed. */
		b->packet->Private.ValidCounts = FALSE;
		NDIS_SET_PACKET_HEADER_SIZE(b->packet, MN_ETH_HLEN);
		NDIS_PER_PACKET_INFO_FROM_PACKET(b->packet, TcpIpChecksumPacketInfo) =
			(PVOID)(a->rx_csum ? mn_offload_rx_info(csum) : 0);
		if (a->rx_with_stack + 1 + MN_RX_LOW_WATER > a->rx_count) {
			b->state = MN_RXB_LENT;
			NDIS_SET_PACKET_STATUS(b->packet, NDIS_STATUS_RESOURCES);
		} else {
			b->state = MN_RXB_STACK;
			a->rx_with_stack++;
			NDIS_SET_PACKET_STATUS(b->packet, NDIS_STATUS_SUCCESS);
		}
		a->rcv_ok++;
		batch[n++] = b->packet;
	}
	NdisDprReleaseSpinLock(&a->rx_lock);
	return n;
}

/* After the indication: packets lent with RESOURCES are ours again. */
static void mn_rx_reclaim(struct mn_adapter *a, PNDIS_PACKET *batch, ULONG n)
{
	ULONG i;

	NdisDprAcquireSpinLock(&a->rx_lock);
	for (i = 0; i < n; i++) {
		struct mn_rx_buf *b = mn_pkt_get(batch[i]);

		if (b->state == MN_RXB_LENT)
			mn_rx_buf_put(a, b);
	}
	NdisDprReleaseSpinLock(&a->rx_lock);
}

/* DISPATCH_LEVEL.  Indicates without holding rx_lock: ReturnPacket takes it. */
static void mn_rx_process(struct mn_adapter *a)
{
	PNDIS_PACKET batch[MN_RX_BATCH];
	ULONG n;

	do {
		n = mn_rx_collect(a, batch);
		if (!n)
			break;
		NdisMIndicateReceivePacket(a->handle, batch, n);
		mn_rx_reclaim(a, batch, n);
	} while (n == MN_RX_BATCH);

	/* The device receives nothing while we run: one doorbell suffices. */
	NdisDprAcquireSpinLock(&a->rx_lock);
	if (mn_rx_refill(a))
		mn_wr(a, MN_RX_TAIL, a->rx_tail);
	NdisDprReleaseSpinLock(&a->rx_lock);
}

/*
 * DISPATCH_LEVEL.  Both rings are polled whatever the causes say: DD bits
 * are the truth, and a cause cleared by a Reset between ISR and DPC must
 * not strand a frame.
 */
VOID NDISAPI mn_handle_interrupt(NDIS_HANDLE ctx)
{
	struct mn_adapter *a = ctx;
	ULONG causes = __atomic_exchange_n(&a->causes, 0, __ATOMIC_ACQUIRE);

	mn_tx_service(a);
	mn_rx_process(a);
	if (causes & MN_INT_LINK)
		mn_link_update(a);
	if (causes & (MN_INT_RX_MISSED | MN_INT_DMA_ERROR)) {
		ULONG dma = mn_hw_harvest(a);

		if (dma)
			DbgPrint("mocknic: the device reported %lu DMA error(s): a descriptor held a bad bus address\n",
				 dma);
	}
}

/*
 * <= DISPATCH_LEVEL.  The stack is done with a packet indicated with
 * NDIS_STATUS_SUCCESS: its buffer goes back to the ring's tail.
 */
VOID NDISAPI mn_return_packet(NDIS_HANDLE ctx, PNDIS_PACKET packet)
{
	struct mn_adapter *a = ctx;
	struct mn_rx_buf *b = mn_pkt_get(packet);
	ULONG_PTR off = (ULONG_PTR)b - (ULONG_PTR)a->rx_bufs;

	NdisAcquireSpinLock(&a->rx_lock);
	/* Only a pointer into rx_bufs is dereferenced. */
	if (off >= a->rx_count * sizeof(*b) || off % sizeof(*b) ||
	    b->packet != packet || b->state != MN_RXB_STACK) {
		NdisReleaseSpinLock(&a->rx_lock);
		DbgPrint("mocknic: MiniportReturnPacket(%p): not a packet the stack holds\n",
			 packet);
		return;
	}
	a->rx_with_stack--;
	mn_rx_buf_put(a, b);
	if (mn_rx_refill(a))
		mn_wr(a, MN_RX_TAIL, a->rx_tail);
	NdisReleaseSpinLock(&a->rx_lock);
}
