/* SPDX-License-Identifier: MIT */
/*
 * ring.c - descriptor rings, their DMA buffers and the receive packets.
 *
 * Shared memory, all from NdisMAllocateSharedMemory at PASSIVE_LEVEL in
 * Initialize, in four blocks: the TX ring, the RX ring, the TX bounce
 * buffers (one per TX descriptor, max_frame bytes each) and the RX buffers
 * (one per RX descriptor, rx_buf_len bytes each).  One block per kind
 * rather than one per buffer keeps the device's bus-address check (a walk
 * over live shared allocations) short on every frame.
 *
 * Receive packets come from a packet pool and a buffer pool sized to the
 * ring; each packet is chained to its buffer once, here, and only its
 * length changes after that.
 */
#include "mocknic.h"

static NDIS_STATUS mn_mem_alloc(PVOID *va, ULONG len)
{
	if (NdisAllocateMemoryWithTag(va, len, MN_TAG_ADAPTER) != NDIS_STATUS_SUCCESS)
		return NDIS_STATUS_RESOURCES;
	NdisZeroMemory(*va, len);
	return NDIS_STATUS_SUCCESS;
}

static NDIS_STATUS mn_dma_alloc(struct mn_adapter *a, struct mn_dma *m,
				ULONG len, const char *what)
{
	NdisMAllocateSharedMemory(a->handle, len, FALSE, &m->va, &m->pa);
	if (!m->va) {
		DbgPrint("mocknic: no shared memory for the %s (%lu bytes)\n",
			 what, len);
		NdisWriteErrorLogEntry(a->handle, NDIS_ERROR_CODE_OUT_OF_RESOURCES,
				       1, len);
		return NDIS_STATUS_RESOURCES;
	}
	m->len = len;
	return NDIS_STATUS_SUCCESS;
}

static void mn_dma_free(struct mn_adapter *a, struct mn_dma *m)
{
	NdisMFreeSharedMemory(a->handle, m->len, FALSE, m->va, m->pa);
	m->va = NULL;
}

static NDIS_PHYSICAL_ADDRESS mn_dma_at(const struct mn_dma *m, ULONG offset)
{
	NDIS_PHYSICAL_ADDRESS pa;

	pa.QuadPart = m->pa.QuadPart + offset;
	return pa;
}

/* Frees the first n receive buffers' packets and NDIS_BUFFERs. */
static void mn_rx_bufs_free(struct mn_adapter *a, ULONG n)
{
	ULONG i;

	for (i = 0; i < n; i++) {
		struct mn_rx_buf *b = &a->rx_bufs[i];

		if (b->buffer)
			NdisFreeBuffer(b->buffer);
		if (b->packet)
			NdisFreePacket(b->packet);
		b->buffer = NULL;
		b->packet = NULL;
	}
}

static NDIS_STATUS mn_rx_bufs_alloc(struct mn_adapter *a)
{
	NDIS_STATUS status;
	ULONG i;

	for (i = 0; i < a->rx_count; i++) {
		struct mn_rx_buf *b = &a->rx_bufs[i];

		b->va = (PUCHAR)a->rx_buf_mem.va + i * a->rx_stride;
		b->pa = mn_dma_at(&a->rx_buf_mem, i * a->rx_stride);
		NdisAllocatePacket(&status, &b->packet, a->rx_packet_pool);
		if (status != NDIS_STATUS_SUCCESS)
			goto err;
		NdisAllocateBuffer(&status, &b->buffer, a->rx_buffer_pool,
				   b->va, a->rx_buf_len);
		if (status != NDIS_STATUS_SUCCESS)
			goto err;
		NdisChainBufferAtFront(b->packet, b->buffer);
		NDIS_SET_PACKET_HEADER_SIZE(b->packet, MN_ETH_HLEN);
		mn_pkt_set(b->packet, b);
		b->state = MN_RXB_FREE;
		b->next = a->rx_free;
		a->rx_free = b;
	}
	return NDIS_STATUS_SUCCESS;

err:
	DbgPrint("mocknic: no receive packet %lu of %lu\n", i, a->rx_count);
	mn_rx_bufs_free(a, i + 1);
	a->rx_free = NULL;
	return NDIS_STATUS_RESOURCES;
}

/* PASSIVE_LEVEL.  Everything the rings need, or nothing. */
NDIS_STATUS mn_ring_alloc(struct mn_adapter *a)
{
	ULONG align = NdisGetSharedDataAlignment(), i;
	NDIS_STATUS status;

	/* Cache-line spacing for the buffers; the device needs none. */
	if (align < 16 || (align & (align - 1)))
		align = 64;
	a->tx_stride = MN_ALIGN_UP(a->tx_buf_len, align);
	a->rx_stride = MN_ALIGN_UP(a->rx_buf_len, align);

	status = mn_mem_alloc((PVOID *)&a->tx_slots,
			      a->tx_count * sizeof(*a->tx_slots));
	if (status != NDIS_STATUS_SUCCESS)
		goto err;
	status = mn_mem_alloc((PVOID *)&a->rx_bufs,
			      a->rx_count * sizeof(*a->rx_bufs));
	if (status != NDIS_STATUS_SUCCESS)
		goto err_tx_slots;
	status = mn_mem_alloc((PVOID *)&a->rx_desc_buf,
			      a->rx_count * sizeof(*a->rx_desc_buf));
	if (status != NDIS_STATUS_SUCCESS)
		goto err_rx_bufs;

	status = mn_dma_alloc(a, &a->tx_ring_mem,
			      a->tx_count * sizeof(struct mn_tx_desc), "TX ring");
	if (status != NDIS_STATUS_SUCCESS)
		goto err_rx_desc_buf;
	status = mn_dma_alloc(a, &a->rx_ring_mem,
			      a->rx_count * sizeof(struct mn_rx_desc), "RX ring");
	if (status != NDIS_STATUS_SUCCESS)
		goto err_tx_ring;
	status = mn_dma_alloc(a, &a->tx_buf_mem, a->tx_count * a->tx_stride,
			      "TX buffers");
	if (status != NDIS_STATUS_SUCCESS)
		goto err_rx_ring;
	status = mn_dma_alloc(a, &a->rx_buf_mem, a->rx_count * a->rx_stride,
			      "RX buffers");
	if (status != NDIS_STATUS_SUCCESS)
		goto err_tx_buf;
	a->tx_ring = a->tx_ring_mem.va;
	a->rx_ring = a->rx_ring_mem.va;

	NdisAllocatePacketPool(&status, &a->rx_packet_pool, a->rx_count,
			       MN_PROTOCOL_RESERVED);
	if (status != NDIS_STATUS_SUCCESS)
		goto err_rx_buf;
	NdisAllocateBufferPool(&status, &a->rx_buffer_pool, a->rx_count);
	if (status != NDIS_STATUS_SUCCESS)
		goto err_packet_pool;
	status = mn_rx_bufs_alloc(a);
	if (status != NDIS_STATUS_SUCCESS)
		goto err_buffer_pool;

	for (i = 0; i < a->tx_count; i++) {
		a->tx_slots[i].va = (PUCHAR)a->tx_buf_mem.va + i * a->tx_stride;
		a->tx_slots[i].pa = mn_dma_at(&a->tx_buf_mem, i * a->tx_stride);
	}
	return NDIS_STATUS_SUCCESS;

err_buffer_pool:
	NdisFreeBufferPool(a->rx_buffer_pool);
err_packet_pool:
	NdisFreePacketPool(a->rx_packet_pool);
err_rx_buf:
	mn_dma_free(a, &a->rx_buf_mem);
err_tx_buf:
	mn_dma_free(a, &a->tx_buf_mem);
err_rx_ring:
	mn_dma_free(a, &a->rx_ring_mem);
err_tx_ring:
	mn_dma_free(a, &a->tx_ring_mem);
err_rx_desc_buf:
	NdisFreeMemory(a->rx_desc_buf, a->rx_count * sizeof(*a->rx_desc_buf), 0);
err_rx_bufs:
	NdisFreeMemory(a->rx_bufs, a->rx_count * sizeof(*a->rx_bufs), 0);
err_tx_slots:
	NdisFreeMemory(a->tx_slots, a->tx_count * sizeof(*a->tx_slots), 0);
err:
	if (status == NDIS_STATUS_FAILURE)
		status = NDIS_STATUS_RESOURCES;
	return status;
}

/*
 * PASSIVE_LEVEL, the device stopped and reset, every receive packet back
 * from the stack.  The reverse of mn_ring_alloc.
 */
void mn_ring_free(struct mn_adapter *a)
{
	mn_rx_bufs_free(a, a->rx_count);
	NdisFreeBufferPool(a->rx_buffer_pool);
	NdisFreePacketPool(a->rx_packet_pool);
	a->tx_ring = NULL;
	a->rx_ring = NULL;
	mn_dma_free(a, &a->rx_buf_mem);
	mn_dma_free(a, &a->tx_buf_mem);
	mn_dma_free(a, &a->rx_ring_mem);
	mn_dma_free(a, &a->tx_ring_mem);
	NdisFreeMemory(a->rx_desc_buf, a->rx_count * sizeof(*a->rx_desc_buf), 0);
	NdisFreeMemory(a->rx_bufs, a->rx_count * sizeof(*a->rx_bufs), 0);
	NdisFreeMemory(a->tx_slots, a->tx_count * sizeof(*a->tx_slots), 0);
}

/* Must hold rx_lock.  The buffer is the driver's again. */
void mn_rx_buf_put(struct mn_adapter *a, struct mn_rx_buf *b)
{
	NdisAdjustBufferLength(b->buffer, a->rx_buf_len);
	b->state = MN_RXB_FREE;
	b->next = a->rx_free;
	a->rx_free = b;
}

/*
 * Must hold tx_lock and rx_lock, with the device reset (its HEADs are 0).
 * Puts both rings back to empty: sends in flight or queued move to
 * *aborted, in order, for the caller to fail outside the locks (counted as
 * XMIT_ERROR); receive
 * buffers the device held go back to the free list; those the stack holds
 * stay with it.
 */
void mn_ring_reset(struct mn_adapter *a, struct mn_pkt_list *aborted)
{
	ULONG i, at, before = aborted->count;

	for (i = 0, at = a->tx_clean; i < a->tx_count; i++) {
		struct mn_tx_slot *s = &a->tx_slots[at];

		if (s->packet)
			mn_list_append(aborted, s->packet);
		s->packet = NULL;
		s->part = FALSE;
		at = (at + 1) % a->tx_count;
	}
	mn_list_splice(aborted, &a->txq);
	/* Every send fails or succeeds exactly once in the statistics too. */
	a->xmit_error += aborted->count - before;
	NdisZeroMemory(a->tx_ring_mem.va, a->tx_ring_mem.len);
	a->tx_use = a->tx_clean = 0;

	for (i = 0; i < a->rx_count; i++) {
		struct mn_rx_buf *b = a->rx_desc_buf[i];

		a->rx_desc_buf[i] = NULL;
		if (b)
			mn_rx_buf_put(a, b);
	}
	NdisZeroMemory(a->rx_ring_mem.va, a->rx_ring_mem.len);
	a->rx_clean = a->rx_tail = 0;
}

/*
 * Must hold rx_lock.  Gives free buffers to empty descriptors at the tail,
 * leaving one descriptor empty (HEAD == TAIL means none for the device).
 * Returns TRUE if rx_tail moved: the caller then writes MN_RX_TAIL once.
 */
BOOLEAN mn_rx_refill(struct mn_adapter *a)
{
	BOOLEAN moved = FALSE;

	while (a->rx_free && (a->rx_tail + 1) % a->rx_count != a->rx_clean) {
		struct mn_rx_buf *b = a->rx_free;
		volatile struct mn_rx_desc *d = &a->rx_ring[a->rx_tail];

		a->rx_free = b->next;
		b->next = NULL;
		b->state = MN_RXB_DEVICE;
		a->rx_desc_buf[a->rx_tail] = b;
		d->addr = (ULONGLONG)b->pa.QuadPart;
		d->length = 0;
		d->errors = 0;
		d->status = 0;
		a->rx_tail = (a->rx_tail + 1) % a->rx_count;
		moved = TRUE;
	}
	return moved;
}
