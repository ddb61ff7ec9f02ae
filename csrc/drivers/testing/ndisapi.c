/* SPDX-License-Identifier: MIT */
/*
 * ndisapi.sys - uses the NDIS library the way an e1000-class NDIS 5.1
 * deserialized bus-master miniport does, and reports what it saw, so tests
 * can check that each library facility really works.
 *
 * MiniportInitialize, in the order such a driver does it: adopt an adapter
 * context from NdisAllocateMemoryWithTag, read the registry ("Speed",
 * "Mask" as hex, "Name" as a string, a key that must be missing) and the
 * network address, allocate shared memory for a receive buffer, check that
 * a spin lock raises to DISPATCH_LEVEL, build a receive packet from packet
 * and buffer pools over the shared memory, claim I/O ports and the
 * interrupt, and start a periodic timer.
 *
 * At run time: the ISR claims every interrupt and queues the DPC; the DPC
 * indicates NDIS_STATUS_MEDIA_CONNECT once (the link comes up on the first
 * interrupt) and, whenever the host is not holding it, the receive packet;
 * the timer completes a query pended with OID_NDISAPI_PENDED.
 *
 * Private OIDs:
 *   query OID_NDISAPI_SELFCHECK	struct ndisapi_selfcheck, below
 *   query OID_NDISAPI_PENDED		NDIS_STATUS_PENDING; completed by the
 *					next timer tick, without data
 *   set   OID_NDISAPI_VIOLATE		ULONG mode: break a rule on purpose,
 *					for the verifier (see violate())
 */
#include "testdrv.h"

#define OID_NDISAPI_SELFCHECK	0xFF000001U
#define OID_NDISAPI_PENDED	0xFF000002U
#define OID_NDISAPI_VIOLATE	0xFF000010U

#define NDISAPI_TAG(a, b, c, d)	((ULONG)(a) | (ULONG)(b) << 8 |		\
				 (ULONG)(c) << 16 | (ULONG)(d) << 24)
/* Pool tags as they read in memory (and in Adapter.allocations()). */
#define TAG_ADAPTER		NDISAPI_TAG('N', 'A', 'p', 'i')
#define TAG_SCRATCH		NDISAPI_TAG('N', 'A', 'd', 'f')

#define SELFCHECK_MAGIC		NDISAPI_TAG('N', 'A', 'P', 'I')

#define PAGE_SIZE		4096U
#define TIMER_PERIOD_MS		10
#define IO_PORT_BASE		0xc000U
#define IO_PORT_COUNT		0x40U
#define IRQ_VECTOR		11
#define MAX_FRAME_SIZE		1500U
#define PACKET_DESCRIPTORS	4
#define BUFFER_DESCRIPTORS	4
/* The DDK's PROTOCOL_RESERVED_SIZE_IN_PACKET */
#define PROTOCOL_RESERVED	(4 * sizeof(PVOID))

#define SUPPORTED_FILTERS	(NDIS_PACKET_TYPE_DIRECTED |		\
				 NDIS_PACKET_TYPE_MULTICAST |		\
				 NDIS_PACKET_TYPE_ALL_MULTICAST |	\
				 NDIS_PACKET_TYPE_BROADCAST |		\
				 NDIS_PACKET_TYPE_PROMISCUOUS)

/*
 * The frame the "device" receives on every interrupt, left by its DMA
 * engine in two buffers of shared memory that are not adjacent, so that
 * the host has to walk the packet's buffer chain to get it right:
 *
 *   bytes  0..5	destination: the adapter's current address
 *   bytes  6..11	source 02:4e:50:00:00:fe
 *   bytes 12..13	EtherType 0x88b5 (IEEE 802 local experimental)
 *   byte  14		sequence number of the frame, from 1, modulo 256
 *   bytes 15..59	byte i is i ^ 0x5a
 *
 * Bytes 0..13 are the header buffer at RX_HEADER_OFFSET of the shared
 * memory, bytes 14..59 the payload buffer at RX_PAYLOAD_OFFSET.
 */
#define ETH_HEADER_LEN		14
#define RX_FRAME_LEN		60
#define RX_HEADER_OFFSET	0
#define RX_PAYLOAD_OFFSET	512
#define SHARED_LEN		2048

static const UCHAR permanent_address[6] = { 0x02, 0x4e, 0x50, 0x00, 0x00, 0x01 };
static const UCHAR peer_address[6] = { 0x02, 0x4e, 0x50, 0x00, 0x00, 0xfe };
static const CHAR vendor_description[] = "ndisproxy ndisapi test miniport";

/*
 * What OID_NDISAPI_SELFCHECK answers: 92 bytes, packed, little-endian
 * (tests/test_ndis_library.py unpacks it with "<4I16s15I").
 *
 *  off  field
 *    0  magic		"NAPI" (0x4950414e)
 *    4  speed		"Speed" read as NdisParameterInteger (0: absent)
 *    8  mask		"Mask" read as NdisParameterHexInteger (0: absent)
 *   12  missing_failed	1 if reading "NdisApiNoSuchKey" failed, as it must
 *   16  name[16]		"Name" read as NdisParameterString, in ASCII,
 *			NUL-padded, cut at 15 characters
 *   32  irql_in_lock	KeGetCurrentIrql() holding a spin lock (Initialize)
 *   36  irql_after_lock	KeGetCurrentIrql() after releasing it
 *   40  packet_length	NdisQueryPacket's total length of the rx packet
 *   44  shared_ok		bit 0: shared memory's physical address nonzero;
 *			bit 1: its offset in the page equals the VA's
 *   48  timer_fires	timer function calls
 *   52  isr_count		MiniportISR calls
 *   56  dpc_count		MiniportHandleInterrupt calls
 *   60  return_count	MiniportReturnPacket calls
 *   64  timer_irql		KeGetCurrentIrql() in the last timer call
 *   68  isr_irql		KeGetCurrentIrql() in the last ISR
 *   72  dpc_irql		KeGetCurrentIrql() in the last DPC
 *   76  packet_filter	last OID_GEN_CURRENT_PACKET_FILTER set
 *   80  rx_indicated	frames indicated
 *   84  rx_dropped		DPCs that found the rx packet still with the host
 *   88  foreign_returns	returns of a packet the driver had not indicated
 */
struct ndisapi_selfcheck {
	ULONG magic;
	ULONG speed;
	ULONG mask;
	ULONG missing_failed;
	CHAR name[16];
	ULONG irql_in_lock;
	ULONG irql_after_lock;
	ULONG packet_length;
	ULONG shared_ok;
	ULONG timer_fires;
	ULONG isr_count;
	ULONG dpc_count;
	ULONG return_count;
	ULONG timer_irql;
	ULONG isr_irql;
	ULONG dpc_irql;
	ULONG packet_filter;
	ULONG rx_indicated;
	ULONG rx_dropped;
	ULONG foreign_returns;
} __attribute__((packed));

_Static_assert(sizeof(struct ndisapi_selfcheck) == 92,
	       "the self-check layout is mirrored by the tests");

/* The adapter context: allocated in Initialize, freed in Halt. */
struct ndisapi {
	NDIS_HANDLE handle;		/* the miniport handle NDIS gave us */
	NDIS_HANDLE wrapper_config;	/* Initialize's, kept for mode 7 */
	NDIS_SPIN_LOCK lock;		/* guards check, rx_held, linked, pended */
	NDIS_MINIPORT_INTERRUPT interrupt;
	NDIS_MINIPORT_TIMER timer;
	NDIS_HANDLE packet_pool;
	NDIS_HANDLE buffer_pool;
	PNDIS_PACKET rx_packet;
	PNDIS_BUFFER rx_header;
	PNDIS_BUFFER rx_payload;
	PUCHAR shared_va;
	NDIS_PHYSICAL_ADDRESS shared_pa;
	PVOID port;
	UCHAR current_address[6];
	BOOLEAN lock_allocated;
	BOOLEAN ports_registered;
	BOOLEAN interrupt_registered;
	BOOLEAN timer_initialized;
	BOOLEAN rx_held;		/* indicated, not yet returned */
	BOOLEAN linked;			/* MEDIA_CONNECT indicated */
	BOOLEAN query_pended;		/* OID_NDISAPI_PENDED outstanding */
	struct ndisapi_selfcheck check;
};

/* ---- configuration --------------------------------------------------- */

static void copy_ascii(CHAR *dst, ULONG size, const NDIS_STRING *s)
{
	ULONG i, n = s->Length / sizeof(WCHAR);

	if (n > size - 1)
		n = size - 1;
	for (i = 0; i < n; i++)
		dst[i] = s->Buffer[i] < 0x80 ? (CHAR)s->Buffer[i] : '?';
	for (; i < size; i++)
		dst[i] = 0;
}

/*
 * Values NdisReadConfiguration returns live until NdisCloseConfiguration,
 * so everything is copied into the context before closing.
 */
static NDIS_STATUS read_configuration(struct ndisapi *na,
				      NDIS_HANDLE wrapper_config)
{
	NDIS_STRING speed = NDIS_STRING_CONST("Speed");
	NDIS_STRING mask = NDIS_STRING_CONST("Mask");
	NDIS_STRING name = NDIS_STRING_CONST("Name");
	NDIS_STRING missing = NDIS_STRING_CONST("NdisApiNoSuchKey");
	PNDIS_CONFIGURATION_PARAMETER value;
	NDIS_STATUS status;
	NDIS_HANDLE cfg;
	PUCHAR address;
	UINT len;

	NdisOpenConfiguration(&status, &cfg, wrapper_config);
	if (status != NDIS_STATUS_SUCCESS)
		return status;

	NdisReadConfiguration(&status, &value, cfg, &speed,
			      NdisParameterInteger);
	if (status == NDIS_STATUS_SUCCESS)
		na->check.speed = value->ParameterData.IntegerData;

	NdisReadConfiguration(&status, &value, cfg, &mask,
			      NdisParameterHexInteger);
	if (status == NDIS_STATUS_SUCCESS)
		na->check.mask = value->ParameterData.IntegerData;

	NdisReadConfiguration(&status, &value, cfg, &name,
			      NdisParameterString);
	if (status == NDIS_STATUS_SUCCESS &&
	    value->ParameterType == NdisParameterString)
		copy_ascii(na->check.name, sizeof(na->check.name),
			   &value->ParameterData.StringData);

	NdisReadConfiguration(&status, &value, cfg, &missing,
			      NdisParameterInteger);
	na->check.missing_failed = status != NDIS_STATUS_SUCCESS;

	/* An override must be a unicast address, or the card's stays. */
	NdisMoveMemory(na->current_address, permanent_address, 6);
	NdisReadNetworkAddress(&status, (PVOID *)&address, &len, cfg);
	if (status == NDIS_STATUS_SUCCESS && len == 6 && !(address[0] & 1))
		NdisMoveMemory(na->current_address, address, 6);

	NdisCloseConfiguration(cfg);
	return NDIS_STATUS_SUCCESS;
}

/* ---- resources ------------------------------------------------------- */

/*
 * Frees whatever Initialize got as far as allocating; Halt and a failing
 * Initialize share it, so every step checks its own field.
 */
static void release(struct ndisapi *na)
{
	BOOLEAN cancelled;

	if (na->interrupt_registered)
		NdisMDeregisterInterrupt(&na->interrupt);
	if (na->timer_initialized)
		NdisMCancelTimer(&na->timer, &cancelled);
	if (na->ports_registered)
		NdisMDeregisterIoPortRange(na->handle, IO_PORT_BASE,
					   IO_PORT_COUNT, na->port);
	if (na->rx_header)
		NdisFreeBuffer(na->rx_header);
	if (na->rx_payload)
		NdisFreeBuffer(na->rx_payload);
	if (na->rx_packet)
		NdisFreePacket(na->rx_packet);
	if (na->buffer_pool)
		NdisFreeBufferPool(na->buffer_pool);
	if (na->packet_pool)
		NdisFreePacketPool(na->packet_pool);
	if (na->shared_va)
		NdisMFreeSharedMemory(na->handle, SHARED_LEN, TRUE,
				      na->shared_va, na->shared_pa);
	if (na->lock_allocated)
		NdisFreeSpinLock(&na->lock);
	NdisFreeMemory(na, sizeof(*na), 0);
}

static NDIS_STATUS allocate_shared(struct ndisapi *na)
{
	ULONG_PTR va;
	LONGLONG pa;

	NdisMAllocateSharedMemory(na->handle, SHARED_LEN, TRUE,
				  (PVOID *)&na->shared_va, &na->shared_pa);
	if (!na->shared_va)
		return NDIS_STATUS_RESOURCES;
	/* A DMA engine addresses pages: the offset in one must agree. */
	va = (ULONG_PTR)na->shared_va;
	pa = na->shared_pa.QuadPart;
	if (pa != 0)
		na->check.shared_ok |= 1;
	if (((ULONG_PTR)pa & (PAGE_SIZE - 1)) == (va & (PAGE_SIZE - 1)))
		na->check.shared_ok |= 2;
	return NDIS_STATUS_SUCCESS;
}

static void check_spin_lock(struct ndisapi *na)
{
	NdisAllocateSpinLock(&na->lock);
	na->lock_allocated = TRUE;
	NdisAcquireSpinLock(&na->lock);
	na->check.irql_in_lock = KeGetCurrentIrql();
	NdisReleaseSpinLock(&na->lock);
	na->check.irql_after_lock = KeGetCurrentIrql();
}

/* One receive packet: header and payload buffers over shared memory. */
static NDIS_STATUS allocate_rx_packet(struct ndisapi *na)
{
	NDIS_STATUS status;
	UINT total;

	NdisAllocatePacketPoolEx(&status, &na->packet_pool, PACKET_DESCRIPTORS,
				 0, PROTOCOL_RESERVED);
	if (status != NDIS_STATUS_SUCCESS)
		return status;
	NdisAllocateBufferPool(&status, &na->buffer_pool, BUFFER_DESCRIPTORS);
	if (status != NDIS_STATUS_SUCCESS)
		return status;
	NdisAllocatePacket(&status, &na->rx_packet, na->packet_pool);
	if (status != NDIS_STATUS_SUCCESS)
		return status;
	NdisAllocateBuffer(&status, &na->rx_header, na->buffer_pool,
			   na->shared_va + RX_HEADER_OFFSET, ETH_HEADER_LEN);
	if (status != NDIS_STATUS_SUCCESS)
		return status;
	NdisAllocateBuffer(&status, &na->rx_payload, na->buffer_pool,
			   na->shared_va + RX_PAYLOAD_OFFSET,
			   RX_FRAME_LEN - ETH_HEADER_LEN);
	if (status != NDIS_STATUS_SUCCESS)
		return status;
	NdisChainBufferAtBack(na->rx_packet, na->rx_header);
	NdisChainBufferAtBack(na->rx_packet, na->rx_payload);
	NDIS_SET_PACKET_HEADER_SIZE(na->rx_packet, ETH_HEADER_LEN);
	NdisQueryPacket(na->rx_packet, NULL, NULL, NULL, &total);
	na->check.packet_length = total;
	return NDIS_STATUS_SUCCESS;
}

/* ---- timer ------------------------------------------------------------- */

/* DISPATCH_LEVEL.  Completes a pended query, outside the lock. */
static VOID NDISAPI ndisapi_timer(PVOID system1, PVOID context,
				  PVOID system2, PVOID system3)
{
	struct ndisapi *na = context;
	BOOLEAN complete;

	NdisDprAcquireSpinLock(&na->lock);
	na->check.timer_irql = KeGetCurrentIrql();
	na->check.timer_fires++;
	complete = na->query_pended;
	na->query_pended = FALSE;
	NdisDprReleaseSpinLock(&na->lock);
	if (complete)
		NdisMQueryInformationComplete(na->handle, NDIS_STATUS_SUCCESS);
}

/* ---- Initialize and Halt ---------------------------------------------- */

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	struct ndisapi *na;
	NDIS_STATUS status;

	if (testdrv_select_medium(selected, media, count, adapter))
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	if (NdisAllocateMemoryWithTag((PVOID *)&na, sizeof(*na),
				      TAG_ADAPTER) != NDIS_STATUS_SUCCESS)
		return NDIS_STATUS_RESOURCES;
	NdisZeroMemory(na, sizeof(*na));
	na->handle = adapter;
	na->check.magic = SELFCHECK_MAGIC;
	/*
	 * testdrv_select_medium adopted a placeholder; NDIS only reads the
	 * context once Initialize has returned, so replacing it is safe.
	 */
	NdisMSetAttributesEx(adapter, na, 0,
			     NDIS_ATTRIBUTE_DESERIALIZE | NDIS_ATTRIBUTE_BUS_MASTER,
			     NdisInterfacePci);

	na->wrapper_config = config;
	status = read_configuration(na, config);
	if (status != NDIS_STATUS_SUCCESS)
		goto fail;
	status = allocate_shared(na);
	if (status != NDIS_STATUS_SUCCESS)
		goto fail;
	check_spin_lock(na);
	status = allocate_rx_packet(na);
	if (status != NDIS_STATUS_SUCCESS)
		goto fail;
	status = NdisMRegisterIoPortRange(&na->port, adapter, IO_PORT_BASE,
					  IO_PORT_COUNT);
	if (status != NDIS_STATUS_SUCCESS)
		goto fail;
	na->ports_registered = TRUE;
	/* The interrupt may fire as soon as it is registered: last but one. */
	status = NdisMRegisterInterrupt(&na->interrupt, adapter, IRQ_VECTOR,
					IRQ_VECTOR, TRUE, TRUE,
					NdisInterruptLevelSensitive);
	if (status != NDIS_STATUS_SUCCESS)
		goto fail;
	na->interrupt_registered = TRUE;
	NdisMInitializeTimer(&na->timer, adapter, ndisapi_timer, na);
	na->timer_initialized = TRUE;
	NdisMSetPeriodicTimer(&na->timer, TIMER_PERIOD_MS);
	return NDIS_STATUS_SUCCESS;

fail:
	DbgPrint("ndisapi: Initialize failed with 0x%08x\n", status);
	release(na);
	return status;
}

static VOID NDISAPI ndisapi_halt(NDIS_HANDLE ctx)
{
	struct ndisapi *na = ctx;

	if (na->rx_held)
		DbgPrint("ndisapi: halted with the rx packet not returned\n");
	release(na);
}

/* ---- OID requests (DISPATCH_LEVEL) --------------------------------------- */

static NDIS_STATUS answer(PVOID buf, ULONG len, const void *src, ULONG n,
			  PULONG written, PULONG needed)
{
	if (len < n) {
		*needed = n;
		return NDIS_STATUS_INVALID_LENGTH;
	}
	NdisMoveMemory(buf, src, n);
	*written = n;
	return NDIS_STATUS_SUCCESS;
}

static NDIS_STATUS NDISAPI ndisapi_query(NDIS_HANDLE ctx, NDIS_OID oid,
		PVOID buf, ULONG len, PULONG written, PULONG needed)
{
	struct ndisapi *na = ctx;
	struct ndisapi_selfcheck check;
	ULONG value;

	*written = 0;
	*needed = 0;
	switch (oid) {
	case OID_GEN_MAXIMUM_FRAME_SIZE:
		value = MAX_FRAME_SIZE;
		return answer(buf, len, &value, sizeof(value), written, needed);
	case OID_802_3_CURRENT_ADDRESS:
		return answer(buf, len, na->current_address, 6, written, needed);
	case OID_GEN_VENDOR_DESCRIPTION:
		/* The DDK's convention: the terminating NUL is included. */
		return answer(buf, len, vendor_description,
			      sizeof(vendor_description), written, needed);
	case OID_NDISAPI_SELFCHECK:
		NdisDprAcquireSpinLock(&na->lock);
		check = na->check;
		NdisDprReleaseSpinLock(&na->lock);
		return answer(buf, len, &check, sizeof(check), written, needed);
	case OID_NDISAPI_PENDED:
		/*
		 * Completed without data: a driver that pends usually keeps
		 * buf, written and needed and fills them in just before
		 * NdisMQueryInformationComplete, but the host's buffer and
		 * counters do not outlive np_api_adapter_query yet, so
		 * writing them from the timer would scribble on the host.
		 */
		NdisDprAcquireSpinLock(&na->lock);
		if (na->query_pended) {
			NdisDprReleaseSpinLock(&na->lock);
			return NDIS_STATUS_RESOURCES;
		}
		na->query_pended = TRUE;
		NdisDprReleaseSpinLock(&na->lock);
		return NDIS_STATUS_PENDING;
	default:
		return NDIS_STATUS_NOT_SUPPORTED;
	}
}

/*
 * Breaks one rule on purpose, from MiniportSetInformation, which runs at
 * DISPATCH_LEVEL:
 *   1  NdisMSleep at DISPATCH_LEVEL (PASSIVE_LEVEL only)
 *   2  NdisReleaseSpinLock of a lock that is not held
 *   3  NdisFreeMemory of the same pointer twice
 *   4  KeBugCheckEx(0xDEAD, 1, 2, 3, 4)
 *   5  indicate the receive packet again while the host still holds it
 *   6  NdisFreePacket of the receive packet while the host still holds it
 *      (then allocate a fresh one, so the adapter keeps working)
 *   7  NdisOpenConfiguration at DISPATCH_LEVEL (PASSIVE_LEVEL only)
 * Modes 5 and 6 need a packet indicated and not yet returned.
 */
static NDIS_STATUS violate(struct ndisapi *na, ULONG mode)
{
	PNDIS_PACKET packet = na->rx_packet;
	NDIS_STATUS status;
	NDIS_HANDLE cfg;

	NDIS_SPIN_LOCK lock;
	PVOID scratch;

	switch (mode) {
	case 1:
		NdisMSleep(10);
		return NDIS_STATUS_SUCCESS;
	case 2:
		NdisAllocateSpinLock(&lock);
		NdisReleaseSpinLock(&lock);
		NdisFreeSpinLock(&lock);
		return NDIS_STATUS_SUCCESS;
	case 3:
		if (NdisAllocateMemoryWithTag(&scratch, 32, TAG_SCRATCH) !=
		    NDIS_STATUS_SUCCESS)
			return NDIS_STATUS_RESOURCES;
		NdisFreeMemory(scratch, 32, 0);
		NdisFreeMemory(scratch, 32, 0);
		return NDIS_STATUS_SUCCESS;
	case 4:
		KeBugCheckEx(0xDEAD, 1, 2, 3, 4);
		return NDIS_STATUS_FAILURE;	/* not reached */
	case 5:
		if (!na->rx_held)
			return NDIS_STATUS_NOT_ACCEPTED;
		NDIS_SET_PACKET_STATUS(packet, NDIS_STATUS_SUCCESS);
		NdisMIndicateReceivePacket(na->handle, &packet, 1);
		return NDIS_STATUS_SUCCESS;
	case 6:
		if (!na->rx_held)
			return NDIS_STATUS_NOT_ACCEPTED;
		NdisFreePacket(packet);
		NdisAllocatePacket(&status, &na->rx_packet, na->packet_pool);
		if (status != NDIS_STATUS_SUCCESS)
			return status;
		NdisChainBufferAtBack(na->rx_packet, na->rx_header);
		NDIS_SET_PACKET_HEADER_SIZE(na->rx_packet, ETH_HEADER_LEN);
		na->rx_held = FALSE;
		return NDIS_STATUS_SUCCESS;
	case 7:
		NdisOpenConfiguration(&status, &cfg, na->wrapper_config);
		return status;
	default:
		return NDIS_STATUS_INVALID_DATA;
	}
}

static NDIS_STATUS NDISAPI ndisapi_set(NDIS_HANDLE ctx, NDIS_OID oid,
		PVOID buf, ULONG len, PULONG read, PULONG needed)
{
	struct ndisapi *na = ctx;
	ULONG value;

	*read = 0;
	*needed = 0;
	if (oid != OID_GEN_CURRENT_PACKET_FILTER && oid != OID_NDISAPI_VIOLATE)
		return NDIS_STATUS_NOT_SUPPORTED;
	if (len < sizeof(value)) {
		*needed = sizeof(value);
		return NDIS_STATUS_INVALID_LENGTH;
	}
	/* The buffer need not be aligned. */
	NdisMoveMemory(&value, buf, sizeof(value));
	*read = sizeof(value);
	if (oid == OID_NDISAPI_VIOLATE)
		return violate(na, value);
	if (value & ~SUPPORTED_FILTERS)
		return NDIS_STATUS_NOT_SUPPORTED;
	NdisDprAcquireSpinLock(&na->lock);
	na->check.packet_filter = value;
	NdisDprReleaseSpinLock(&na->lock);
	return NDIS_STATUS_SUCCESS;
}

/* ---- interrupt and receive ------------------------------------------------ */

/* DIRQL: no locks, no NDIS calls but the IRQL. */
static VOID NDISAPI ndisapi_isr(PBOOLEAN recognized, PBOOLEAN queue_dpc,
				NDIS_HANDLE ctx)
{
	struct ndisapi *na = ctx;

	na->check.isr_irql = KeGetCurrentIrql();
	na->check.isr_count++;
	*recognized = TRUE;
	*queue_dpc = TRUE;
}

/* What the device would have DMA'd; the layout is at the top of the file. */
static void receive_frame(struct ndisapi *na, UCHAR seq)
{
	PUCHAR header = na->shared_va + RX_HEADER_OFFSET;
	PUCHAR payload = na->shared_va + RX_PAYLOAD_OFFSET;
	ULONG i;

	NdisMoveMemory(header, na->current_address, 6);
	NdisMoveMemory(header + 6, peer_address, 6);
	header[12] = 0x88;
	header[13] = 0xb5;
	payload[0] = seq;
	for (i = ETH_HEADER_LEN + 1; i < RX_FRAME_LEN; i++)
		payload[i - ETH_HEADER_LEN] = (UCHAR)(i ^ 0x5a);
}

/*
 * DISPATCH_LEVEL.  A deserialized miniport must not hold its locks while
 * indicating, so decide under the lock and indicate after.
 */
static VOID NDISAPI ndisapi_handle_interrupt(NDIS_HANDLE ctx)
{
	struct ndisapi *na = ctx;
	PNDIS_PACKET packet = na->rx_packet;
	BOOLEAN link_up, indicate;
	UCHAR seq = 0;

	NdisDprAcquireSpinLock(&na->lock);
	na->check.dpc_irql = KeGetCurrentIrql();
	na->check.dpc_count++;
	link_up = !na->linked;
	na->linked = TRUE;
	indicate = !na->rx_held;
	if (indicate) {
		na->rx_held = TRUE;
		seq = (UCHAR)++na->check.rx_indicated;
	} else {
		na->check.rx_dropped++;
	}
	NdisDprReleaseSpinLock(&na->lock);

	if (link_up) {
		NdisMIndicateStatus(na->handle, NDIS_STATUS_MEDIA_CONNECT,
				    NULL, 0);
		NdisMIndicateStatusComplete(na->handle);
	}
	if (indicate) {
		receive_frame(na, seq);
		/* SUCCESS, not RESOURCES: the host owns it until it returns it. */
		NDIS_SET_PACKET_STATUS(packet, NDIS_STATUS_SUCCESS);
		NdisMIndicateReceivePacket(na->handle, &packet, 1);
	}
}

static VOID NDISAPI ndisapi_return_packet(NDIS_HANDLE ctx,
					  PNDIS_PACKET packet)
{
	struct ndisapi *na = ctx;

	NdisDprAcquireSpinLock(&na->lock);
	na->check.return_count++;
	if (packet == na->rx_packet && na->rx_held)
		na->rx_held = FALSE;
	else
		na->check.foreign_returns++;
	NdisDprReleaseSpinLock(&na->lock);
}

NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	NDIS51_MINIPORT_CHARACTERISTICS chars = {
		.HaltHandler = ndisapi_halt,
		.QueryInformationHandler = ndisapi_query,
		.SetInformationHandler = ndisapi_set,
		.ISRHandler = ndisapi_isr,
		.HandleInterruptHandler = ndisapi_handle_interrupt,
		.ReturnPacketHandler = ndisapi_return_packet,
	};

	return testdrv_register(driver, path, &chars);
}
