/* SPDX-License-Identifier: MIT */
/*
 * send.c - frames from the host to MiniportSendPackets, and back.
 *
 * The host plays NDIS's protocol side: it owns a pool of NDIS_PACKETs, each
 * with one mapped buffer, in memory of its own (never the driver's arena).
 * A batch of frames is copied into free slots - or, from the pump, read
 * straight into them (np_tx_next_buffer) - and handed to the driver in
 * one crossing, MAXIMUM_SEND_PACKETS at a time.  A slot is the driver's
 * from then until NdisMSendComplete (deserialized drivers) or until
 * MiniportSendPackets returns a status other than PENDING in its OOB block
 * (serialized ones).  Completing a slot the driver does not hold is a
 * double completion, reported by the verifier.
 *
 * Slot states:   FREE --send--> DRIVER --complete--> FREE
 */
#include <string.h>
#include <sys/mman.h>

#include "np.h"

enum { SLOT_FREE, SLOT_DRIVER };

struct np_tx_slot {
	union {
		NDIS_PACKET packet;	/* + OOB + extension, as NDIS lays them out */
		uint8_t raw[256];
	};
	MDL mdl;
	uint32_t state;
};

#define PACKET_OOB_OFFSET 112
_Static_assert(PACKET_OOB_OFFSET >= sizeof(NDIS_PACKET), "OOB after the packet");
_Static_assert(PACKET_OOB_OFFSET + sizeof(NDIS_PACKET_OOB_DATA) +
	       sizeof(NDIS_PACKET_EXTENSION) <= 256, "packet block fits its slot");

int np_tx_init(struct np_adapter *a)
{
	size_t headers = NP_ALIGN_UP(sizeof(struct np_tx_slot) * NP_TX_SLOTS,
				     NP_PAGE_SIZE);
	uint32_t i;

	/*
	 * One mapping: the slots' packets side by side, then one page-aligned
	 * NP_TX_SLOT_ROOM buffer per slot (the pump reads TAP frames straight
	 * into them).  Nothing is written now: a slot's
	 * pages are touched when it first carries a frame, a frame of one page
	 * or less touches one page of data, and the free list is LIFO, so an
	 * adapter keeps resident only as many slots as it has had sends in
	 * flight, not all 16 MiB (what lets a pooled adapter cost well under
	 * 1 MiB).
	 */
	a->tx_map_len = headers + (size_t)NP_TX_SLOT_ROOM * NP_TX_SLOTS;
	a->tx = np_map(a->tx_map_len, PROT_READ | PROT_WRITE, "txslots");
	if (!a->tx)
		return -1;
	a->tx_data = (uint8_t *)a->tx + headers;
	for (i = 0; i < NP_TX_SLOTS; i++)
		a->tx_free[i] = NP_TX_SLOTS - 1 - i;
	a->tx_nfree = NP_TX_SLOTS;
	return 0;
}

void np_tx_destroy(struct np_adapter *a)
{
	np_unmap(a->tx, a->tx_map_len);
	a->tx = NULL;
}

static struct np_tx_slot *slot_of(struct np_adapter *a, PNDIS_PACKET p)
{
	uintptr_t off = (uintptr_t)p - (uintptr_t)a->tx;

	if (!a->tx || (uintptr_t)p < (uintptr_t)a->tx ||
	    off >= sizeof(struct np_tx_slot) * NP_TX_SLOTS ||
	    off % sizeof(struct np_tx_slot))
		return NULL;
	return &a->tx[off / sizeof(struct np_tx_slot)];
}

static void slot_release(struct np_adapter *a, struct np_tx_slot *s,
			 NDIS_STATUS status)
{
	s->state = SLOT_FREE;
	a->tx_free[a->tx_nfree++] = (uint32_t)(s - a->tx);
	if (status == NDIS_STATUS_SUCCESS)
		a->stats.tx_completed++;
	else
		a->stats.tx_failed++;
}

/* NdisMSendComplete, on the driver's stack (indicate.c). */
void np_tx_complete(struct np_adapter *a, PNDIS_PACKET p, NDIS_STATUS status)
{
	struct np_tx_slot *s = slot_of(a, p);

	if (!s || s->state != SLOT_DRIVER) {
		np_verify(&a->ctx, NP_VIOL_DOUBLE_COMPLETE,
			  "NdisMSendComplete(%p): not a packet the driver holds (completed twice?)",
			  (void *)p);
		return;
	}
	slot_release(a, s, status);
}

static uint8_t *slot_data(struct np_adapter *a, struct np_tx_slot *s)
{
	return a->tx_data + (size_t)(s - a->tx) * NP_TX_SLOT_ROOM;
}

/*
 * The data buffer of the slot the k-th frame of the next send will take
 * (the free list is a stack), or NULL if fewer than k + 1 are free.  A
 * frame read into it is sent by np_tx_send_in_place without a copy.
 */
uint8_t *np_tx_next_buffer(struct np_adapter *a, uint32_t k)
{
	if (k >= a->tx_nfree)
		return NULL;
	return slot_data(a, &a->tx[a->tx_free[a->tx_nfree - 1 - k]]);
}

static void slot_fill(struct np_adapter *a, struct np_tx_slot *s,
		      const uint8_t *frame, uint32_t len,
		      const struct np_api_tx_offload *offload)
{
	PNDIS_PACKET p = &s->packet;
	uint8_t *data = slot_data(a, s);

	memset(s->raw, 0, sizeof(s->raw));
	if (frame != data)
		memcpy(data, frame, len);
	memset(&s->mdl, 0, sizeof(s->mdl));
	s->mdl.Size = (CSHORT)sizeof(MDL);
	s->mdl.MdlFlags = (CSHORT)(MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL);
	s->mdl.MappedSystemVa = data;
	s->mdl.StartVa = (PVOID)((uintptr_t)data & ~(NP_PAGE_SIZE - 1));
	s->mdl.ByteOffset = (ULONG)((uintptr_t)data & (NP_PAGE_SIZE - 1));
	s->mdl.ByteCount = len;
	p->Private.Head = p->Private.Tail = &s->mdl;
	p->Private.PhysicalCount = p->Private.Count = 1;
	p->Private.TotalLength = len;
	p->Private.ValidCounts = TRUE;
	p->Private.NdisPacketFlags = fPACKET_ALLOCATED_BY_NDIS;
	p->Private.NdisPacketOobOffset = PACKET_OOB_OFFSET;
	NDIS_SET_PACKET_HEADER_SIZE(p, 14);
	if (offload) {
		NDIS_PER_PACKET_INFO_FROM_PACKET(p, TcpIpChecksumPacketInfo) =
			(PVOID)(uintptr_t)offload->csum;
		NDIS_PER_PACKET_INFO_FROM_PACKET(p, TcpLargeSendPacketInfo) =
			(PVOID)(uintptr_t)offload->mss;
	}
	s->state = SLOT_DRIVER;
}

struct send_args {
	struct np_adapter *a;
	PNDIS_PACKET *packets;
	uint32_t count;
};

/* On the driver's stack: the whole batch, MAXIMUM_SEND_PACKETS per call. */
static uint64_t thunk_send(void *p)
{
	struct send_args *x = p;
	struct np_adapter *a = x->a;
	uint32_t done = 0, chunk = a->max_send ? a->max_send : 1;

	while (done < x->count) {
		uint32_t n = x->count - done < chunk ? x->count - done : chunk;

		a->ctx.image->chars.SendPacketsHandler(a->adapter_context,
						       x->packets + done, n);
		done += n;
	}
	return 0;
}

uint32_t np_api_adapter_send(struct np_adapter *a, const uint8_t *data,
			     const uint32_t *lens, uint32_t count,
			     uint32_t *accepted, int32_t *bad_index)
{
	return np_api_adapter_send_offload(a, data, lens, NULL, count, accepted,
					   bad_index);
}

/*
 * The frames are packed one after another in data, or (data NULL) already
 * in the buffers np_tx_next_buffer(a, 0..count-1) gave.  A large send (an
 * MSS in offload) may be as long as a slot holds: whether the driver takes
 * it is the driver's business, as it is in NDIS.
 */
static uint32_t send_frames(struct np_adapter *a, const uint8_t *data,
			    const uint32_t *lens,
			    const struct np_api_tx_offload *offload,
			    uint32_t count, uint32_t *accepted,
			    int32_t *bad_index)
{
	PNDIS_PACKET packets[NP_TX_SLOTS];
	struct send_args x = { .a = a, .packets = packets };
	uint32_t i, off = 0, fault;

	*accepted = 0;
	*bad_index = -1;
	if (!a->initialised || !a->ctx.image->chars.SendPacketsHandler)
		return STATUS_INVALID_PARAMETER;
	/* All or nothing: a batch with a bad frame is refused whole. */
	for (i = 0; i < count; i++) {
		uint32_t max = offload && offload[i].mss ? NP_TX_SLOT_DATA :
			       a->max_frame;

		if (lens[i] < 14 || lens[i] > max) {
			*bad_index = (int32_t)i;
			if (lens[i] < 14)
				a->stats.tx_refused_short++;
			else
				a->stats.tx_refused_long++;
			return 0;
		}
	}
	for (i = 0; i < count && a->tx_nfree; i++) {
		struct np_tx_slot *s = &a->tx[a->tx_free[--a->tx_nfree]];
		const uint8_t *frame = data ? data + off : slot_data(a, s);

		slot_fill(a, s, frame, lens[i], offload ? &offload[i] : NULL);
		if (offload && offload[i].mss)
			a->stats.tx_large_sends++;
		if (a->capture)
			np_capture_frame(a, 0, frame, lens[i]);
		packets[i] = &s->packet;
		off += lens[i];
	}
	x.count = i;
	if (!x.count)
		return 0;
	a->stats.tx_sent += x.count;
	*accepted = x.count;
	fault = np_call(&a->ctx, NP_EP_SEND_PACKETS, DISPATCH_LEVEL, thunk_send,
			&x, NULL);
	if (fault)
		return fault;
	/* Serialized miniports report per-packet status in the OOB block. */
	if (!(a->attributes & NDIS_ATTRIBUTE_DESERIALIZE)) {
		for (i = 0; i < x.count; i++) {
			NDIS_STATUS st = NDIS_GET_PACKET_STATUS(packets[i]);
			struct np_tx_slot *s = slot_of(a, packets[i]);

			if (st != NDIS_STATUS_PENDING && s->state == SLOT_DRIVER)
				slot_release(a, s, st);
		}
	}
	return 0;
}

uint32_t np_api_adapter_send_offload(struct np_adapter *a, const uint8_t *data,
				     const uint32_t *lens,
				     const struct np_api_tx_offload *offload,
				     uint32_t count, uint32_t *accepted,
				     int32_t *bad_index)
{
	return send_frames(a, data, lens, offload, count, accepted, bad_index);
}

/* The pump's frames, read straight into the slots: no copy. */
uint32_t np_tx_send_in_place(struct np_adapter *a, const uint32_t *lens,
			     const struct np_api_tx_offload *offload,
			     uint32_t count, uint32_t *accepted,
			     int32_t *bad_index)
{
	if (count > a->tx_nfree)
		count = a->tx_nfree;
	return send_frames(a, NULL, lens, offload, count, accepted, bad_index);
}

uint32_t np_tx_outstanding(struct np_adapter *a)
{
	return NP_TX_SLOTS - a->tx_nfree;
}

/* After halt nothing will complete: the host takes its packets back. */
void np_tx_reclaim(struct np_adapter *a)
{
	uint32_t i;

	for (i = 0; a->tx && i < NP_TX_SLOTS; i++)
		if (a->tx[i].state == SLOT_DRIVER)
			slot_release(a, &a->tx[i], NDIS_STATUS_FAILURE);
}
