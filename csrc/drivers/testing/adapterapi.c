/* SPDX-License-Identifier: MIT */
/*
 * adapterapi.sys - the NDIS calls made with an adapter that ndisapi.sys, an
 * e1000-class miniport, has no use for: NdisMSetAttributes, configuration
 * writes, map registers, legacy NDIS_TIMERs, work items,
 * NdisMSynchronizeWithInterrupt, packet-to-packet copies and byte and word
 * port I/O.  tests/test_adapterapi.py drives it.
 *
 * MiniportInitialize runs the setup checks and prints one "name=value" line
 * per result; timers and work items print a line each time they run:
 *
 *   previous=N		"Initializations" before this Initialize wrote N + 1
 *			(0 when absent)
 *   written=S/S/S/S/S/S	NdisWriteConfiguration's status for: Integer
 *			"WrittenInteger" 1234567, HexInteger "WrittenHex"
 *			0xbeef, String "WrittenString", a Binary value, a
 *			70-character keyword, a 200-character string
 *   integer=I/H		"WrittenInteger" read as Integer, as HexInteger
 *   hex_integer=I/H	"WrittenHex" read the same two ways
 *   string=TEXT		"WrittenString" read as String
 *   speed=N		"Speed" read after writing it as Integer 100
 *   timer_churn=N	timers in freed pool memory that were set and then
 *			cancelled, of "TimerChurn" (see timers_in_pool)
 *   multi=L/M/T/TEXT	"Multi" read as MultiString, if present: Length,
 *			MaximumLength, "terminated" when both closing NULs
 *			are there and inside MaximumLength, the first string
 *   map_registers=S	NdisMAllocateMapRegisters (8 of 1514 bytes)
 *   sync=R/IN/AFTER/RUNS	NdisMSynchronizeWithInterrupt from Initialize
 *			with a routine answering TRUE: its answer, the IRQL
 *			inside and after, how many times it has run
 *   cancel=C/C		NdisCancelTimer of an armed timer, then again
 *   timer=NAME/IRQL	a timer ran: "late" (set for 40 ms) or "early" (set
 *			for 500 ms, then re-set for 20 ms; it schedules the
 *			work item "timer0"); "cancelled" (30 ms) never does
 *   work=NAME/IRQL/OK	a work item ran; OK: it was handed its own item
 *
 * Registry parameters: "BusMaster" (default 1) is NdisMSetAttributes'
 * BusMaster; "FreeMapRegisters" (default 1) is how many times Halt calls
 * NdisMFreeMapRegisters.  No "CheckForHangTimeInSeconds": NdisMSetAttributes
 * leaves the default.
 *
 * Private OIDs: a set does something, a query of OID_ADAPTERAPI_ANSWER
 * returns what it found (little-endian ULONGs unless stated):
 *
 *   OID_ADAPTERAPI_WORK	ULONG n: schedule work items "oid0" to
 *				"oid<n-1>" (n <= WORK_ITEMS, one more than the
 *				host queues); answer: accepted, the status of
 *				the first refusal (0: none)
 *   OID_ADAPTERAPI_SYNC	ULONG mode: NdisMSynchronizeWithInterrupt from
 *				DISPATCH_LEVEL with a routine answering
 *				mode & 1; mode 2 passes an interrupt object
 *				that was never registered; answer: as "sync="
 *   OID_ADAPTERAPI_PORT	struct port_access; answer: the value read
 *   OID_ADAPTERAPI_COPY	struct copy_request and its bytes; answer:
 *				struct copy_answer and the destination's bytes
 *
 * MiniportSendPackets is serialized (NdisMSetAttributes sets no
 * NDIS_ATTRIBUTE_DESERIALIZE): it finds each frame with
 * NdisGetFirstBufferFromPacketSafe and fails a frame whose last byte is not
 * 0, through the packet's status, which the host must then honour.
 */
#include "testdrv.h"

#define OID_ADAPTERAPI_ANSWER	0xFF020001U
#define OID_ADAPTERAPI_WORK	0xFF020010U
#define OID_ADAPTERAPI_SYNC	0xFF020011U
#define OID_ADAPTERAPI_PORT	0xFF020012U
#define OID_ADAPTERAPI_COPY	0xFF020013U

#define ADAPTERAPI_TAG		((ULONG)'A' | (ULONG)'A' << 8 |		\
				 (ULONG)'p' << 16 | (ULONG)'i' << 24)

#define IO_PORT_BASE		0xc000U
#define IO_PORT_COUNT		0x100U	/* the mock NIC's port range */
#define IRQ_VECTOR		11
#define WORK_ITEMS		17
#define COPY_BUFFERS		8	/* per packet */
#define COPY_STRIDE		256	/* apart in memory, so never adjacent */
#define COPY_AREA		(2 * COPY_BUFFERS * COPY_STRIDE)
#define ANSWER_MAX		(sizeof(struct copy_answer) + COPY_BUFFERS * 255)

struct port_access {
	ULONG offset;		/* from the start of the registered range */
	ULONG size;		/* 1, 2 or 4 */
	ULONG write;		/* 0: read */
	ULONG value;		/* what to write */
};

/*
 * NdisCopyFromPacketToPacket(dst, dst_offset, length, src, src_offset):
 * each packet is a chain of *_count buffers of *_lengths[i] bytes (0 to
 * 255); the request is followed by the source's bytes, then the
 * destination's bytes before the copy.
 */
struct copy_request {
	ULONG dst_offset;
	ULONG length;
	ULONG src_offset;
	UCHAR src_count;
	UCHAR dst_count;
	UCHAR src_lengths[COPY_BUFFERS];
	UCHAR dst_lengths[COPY_BUFFERS];
} __attribute__((packed));

struct copy_answer {
	ULONG copied;			/* NdisCopyFromPacketToPacket's count */
	ULONG usage[3];			/* NdisPacketPoolUsage: before, with
					   both packets, after freeing them */
	ULONG third;			/* NdisAllocatePacket from the full pool */
	ULONG first_length;		/* NdisGetFirstBufferFromPacketSafe */
	ULONG total_length;		/* on the source */
	ULONG first_ok;			/* bit 0: the first buffer chained;
					   bit 1: its VA */
} __attribute__((packed));

_Static_assert(sizeof(struct copy_request) == 30, "mirrored by the tests");
_Static_assert(sizeof(struct copy_answer) == 32, "mirrored by the tests");

struct adapterapi;

struct named_timer {
	NDIS_TIMER timer;
	const char *name;
	struct adapterapi *aa;
};

struct named_work {
	NDIS_WORK_ITEM item;
	const char *kind;
	ULONG index;
};

struct sync_call {
	struct adapterapi *aa;
	BOOLEAN answer;
};

struct adapterapi {
	NDIS_HANDLE handle;
	NDIS_MINIPORT_INTERRUPT interrupt;
	PVOID port;
	BOOLEAN interrupt_registered;
	BOOLEAN ports_registered;
	BOOLEAN timers_started;
	ULONG free_map_registers;	/* times Halt frees them */
	struct named_timer late, early, cancelled;
	struct named_work work[WORK_ITEMS];
	struct named_work timer_work;
	KIRQL sync_irql;
	ULONG sync_runs;
	NDIS_HANDLE packet_pool;
	NDIS_HANDLE buffer_pool;
	PUCHAR copy_area;
	ULONG answer_length;
	UCHAR answer[ANSWER_MAX];
};

/* ---- configuration ------------------------------------------------------ */

static ULONG read_integer(NDIS_HANDLE cfg, PNDIS_STRING keyword,
			  NDIS_PARAMETER_TYPE type)
{
	PNDIS_CONFIGURATION_PARAMETER value;
	NDIS_STATUS status;

	NdisReadConfiguration(&status, &value, cfg, keyword, type);
	return status == NDIS_STATUS_SUCCESS ? value->ParameterData.IntegerData : 0;
}

static NDIS_STATUS write_integer(NDIS_HANDLE cfg, PNDIS_STRING keyword,
				 NDIS_PARAMETER_TYPE type, ULONG v)
{
	NDIS_CONFIGURATION_PARAMETER value = { .ParameterType = type };
	NDIS_STATUS status;

	value.ParameterData.IntegerData = v;
	NdisWriteConfiguration(&status, cfg, keyword, &value);
	return status;
}

static NDIS_STATUS write_string(NDIS_HANDLE cfg, PNDIS_STRING keyword,
				PNDIS_STRING text)
{
	NDIS_CONFIGURATION_PARAMETER value = { .ParameterType = NdisParameterString };
	NDIS_STATUS status;

	value.ParameterData.StringData = *text;
	NdisWriteConfiguration(&status, cfg, keyword, &value);
	return status;
}

static void configuration(NDIS_HANDLE wrapper_config)
{
	NDIS_STRING initializations = NDIS_STRING_CONST("Initializations");
	NDIS_STRING integer = NDIS_STRING_CONST("WrittenInteger");
	NDIS_STRING hex = NDIS_STRING_CONST("WrittenHex");
	NDIS_STRING string = NDIS_STRING_CONST("WrittenString");
	NDIS_STRING binary = NDIS_STRING_CONST("WrittenBinary");
	NDIS_STRING speed = NDIS_STRING_CONST("Speed");
	NDIS_STRING multi = NDIS_STRING_CONST("Multi");
	NDIS_STRING text = NDIS_STRING_CONST("written by the driver");
	NDIS_CONFIGURATION_PARAMETER blob = { .ParameterType = NdisParameterBinary };
	PNDIS_CONFIGURATION_PARAMETER value;
	NDIS_STATUS status[6];
	WCHAR long_name[70], long_text[200];
	NDIS_STRING too_long_name = { sizeof(long_name), sizeof(long_name), long_name };
	NDIS_STRING too_long_text = { sizeof(long_text), sizeof(long_text), long_text };
	NDIS_HANDLE cfg;
	NDIS_STATUS st;
	ULONG previous, i;

	NdisOpenConfiguration(&st, &cfg, wrapper_config);
	if (st != NDIS_STATUS_SUCCESS) {
		DbgPrint("adapterapi: NdisOpenConfiguration failed with 0x%08lx\n", st);
		return;
	}
	previous = read_integer(cfg, &initializations, NdisParameterInteger);
	write_integer(cfg, &initializations, NdisParameterInteger, previous + 1);
	DbgPrint("previous=%lu\n", previous);

	for (i = 0; i < 70; i++)
		long_name[i] = L'K';
	for (i = 0; i < 200; i++)
		long_text[i] = L'v';
	blob.ParameterData.BinaryData.Length = sizeof(long_text);
	blob.ParameterData.BinaryData.Buffer = long_text;
	status[0] = write_integer(cfg, &integer, NdisParameterInteger, 1234567);
	status[1] = write_integer(cfg, &hex, NdisParameterHexInteger, 0xbeef);
	status[2] = write_string(cfg, &string, &text);
	NdisWriteConfiguration(&status[3], cfg, &binary, &blob);
	status[4] = write_integer(cfg, &too_long_name, NdisParameterInteger, 1);
	status[5] = write_string(cfg, &string, &too_long_text);
	DbgPrint("written=%08lx/%08lx/%08lx/%08lx/%08lx/%08lx\n", status[0],
		 status[1], status[2], status[3], status[4], status[5]);

	DbgPrint("integer=%lu/%lu\n",
		 read_integer(cfg, &integer, NdisParameterInteger),
		 read_integer(cfg, &integer, NdisParameterHexInteger));
	DbgPrint("hex_integer=%lu/%lu\n",
		 read_integer(cfg, &hex, NdisParameterInteger),
		 read_integer(cfg, &hex, NdisParameterHexInteger));
	NdisReadConfiguration(&st, &value, cfg, &string, NdisParameterString);
	if (st == NDIS_STATUS_SUCCESS)
		DbgPrint("string=%wZ\n", &value->ParameterData.StringData);
	else
		DbgPrint("string=(status 0x%08lx)\n", st);
	write_integer(cfg, &speed, NdisParameterInteger, 100);
	DbgPrint("speed=%lu\n", read_integer(cfg, &speed, NdisParameterInteger));
	NdisReadConfiguration(&st, &value, cfg, &multi, NdisParameterMultiString);
	if (st == NDIS_STATUS_SUCCESS) {
		PNDIS_STRING s = &value->ParameterData.StringData;
		USHORT n = s->Length / sizeof(WCHAR);

		/* Length, room, and the two NULs that end a REG_MULTI_SZ. */
		DbgPrint("multi=%u/%u/%s/%wZ\n", s->Length, s->MaximumLength,
			 s->MaximumLength >= (n + 2) * sizeof(WCHAR) &&
			 !s->Buffer[n] && !s->Buffer[n + 1] ? "terminated" : "open",
			 s);
	}
	NdisCloseConfiguration(cfg);
}

/* ---- timers in pool memory ----------------------------------------------------- */

static VOID NDISAPI never_fires(PVOID s1, PVOID ctx, PVOID s2, PVOID s3)
{
	DbgPrint("timer=pool/%u\n", KeGetCurrentIrql());
}

/*
 * NDIS has no call that frees a timer: a driver embeds one in memory of
 * its own and frees the memory.  "TimerChurn" times, a timer at a new
 * offset of a fresh block is initialised, set, cancelled and its block
 * freed; "TimerFreedArmed" frees a block whose timer is still set.
 */
static void timers_in_pool(struct adapterapi *aa, ULONG churn, ULONG free_armed)
{
	PNDIS_MINIPORT_TIMER t;
	BOOLEAN cancelled;
	PUCHAR block;
	ULONG i, done = 0;

	for (i = 0; i < churn + !!free_armed; i++) {
		if (NdisAllocateMemoryWithTag((PVOID *)&block, 4096, ADAPTERAPI_TAG) !=
		    NDIS_STATUS_SUCCESS)
			break;
		t = (PNDIS_MINIPORT_TIMER)(block + (i * 64) % (4096 - 2 * sizeof(*t)));
		NdisMInitializeTimer(t, aa->handle, never_fires, aa);
		NdisMSetTimer(t, 60000);
		if (i < churn) {
			NdisMCancelTimer(t, &cancelled);
			done += cancelled;
		}
		NdisFreeMemory(block, 4096, 0);
	}
	if (churn)
		DbgPrint("timer_churn=%lu\n", done);
}

/* ---- interrupts ------------------------------------------------------------ */

static VOID NDISAPI adapterapi_isr(PBOOLEAN recognized, PBOOLEAN queue_dpc,
				   NDIS_HANDLE ctx)
{
	*recognized = FALSE;
	*queue_dpc = FALSE;
}

static VOID NDISAPI adapterapi_handle_interrupt(NDIS_HANDLE ctx)
{
}

static BOOLEAN NDISAPI sync_routine(PVOID ctx)
{
	struct sync_call *call = ctx;

	call->aa->sync_irql = KeGetCurrentIrql();
	call->aa->sync_runs++;
	return call->answer;
}

/* out: answer, IRQL inside, IRQL after, runs so far. */
static void synchronize(struct adapterapi *aa, PNDIS_MINIPORT_INTERRUPT intr,
			BOOLEAN answer, ULONG out[4])
{
	struct sync_call call = { aa, answer };

	aa->sync_irql = 0xff;
	out[0] = NdisMSynchronizeWithInterrupt(intr, sync_routine, &call);
	out[1] = aa->sync_irql;
	out[2] = KeGetCurrentIrql();
	out[3] = aa->sync_runs;
}

/* ---- timers and work items ------------------------------------------------- */

static VOID NDISAPI work_routine(PNDIS_WORK_ITEM item, PVOID ctx)
{
	struct named_work *w = ctx;

	DbgPrint("work=%s%lu/%u/%u\n", w->kind, w->index, KeGetCurrentIrql(),
		 item == &w->item);
}

static VOID NDISAPI timer_function(PVOID system1, PVOID ctx, PVOID system2,
				   PVOID system3)
{
	struct named_timer *t = ctx;

	DbgPrint("timer=%s/%u\n", t->name, KeGetCurrentIrql());
	if (t == &t->aa->early)
		NdisScheduleWorkItem(&t->aa->timer_work.item);
}

static void init_timer(struct adapterapi *aa, struct named_timer *t,
		       const char *name)
{
	t->name = name;
	t->aa = aa;
	NdisInitializeTimer(&t->timer, timer_function, t);
}

static void init_work(struct named_work *w, const char *kind, ULONG index)
{
	w->kind = kind;
	w->index = index;
	NdisInitializeWorkItem(&w->item, work_routine, w);
}

/* Armed in an order their slots do not share: "early" is due first. */
static void start_timers(struct adapterapi *aa)
{
	BOOLEAN first, second;
	ULONG i;

	init_timer(aa, &aa->late, "late");
	init_timer(aa, &aa->early, "early");
	init_timer(aa, &aa->cancelled, "cancelled");
	for (i = 0; i < WORK_ITEMS; i++)
		init_work(&aa->work[i], "oid", i);
	init_work(&aa->timer_work, "timer", 0);

	NdisSetTimer(&aa->late.timer, 40);
	NdisSetTimer(&aa->early.timer, 500);
	NdisSetTimer(&aa->early.timer, 20);	/* re-set, not a second timer */
	NdisSetTimer(&aa->cancelled.timer, 30);
	NdisCancelTimer(&aa->cancelled.timer, &first);
	NdisCancelTimer(&aa->cancelled.timer, &second);
	DbgPrint("cancel=%u/%u\n", first, second);
	aa->timers_started = TRUE;
}

/* ---- Initialize and Halt ------------------------------------------------------ */

static void release(struct adapterapi *aa)
{
	BOOLEAN cancelled;
	ULONG i;

	if (aa->timers_started) {
		NdisCancelTimer(&aa->late.timer, &cancelled);
		NdisCancelTimer(&aa->early.timer, &cancelled);
	}
	for (i = 0; i < aa->free_map_registers; i++)
		NdisMFreeMapRegisters(aa->handle);
	if (aa->interrupt_registered)
		NdisMDeregisterInterrupt(&aa->interrupt);
	if (aa->ports_registered)
		NdisMDeregisterIoPortRange(aa->handle, IO_PORT_BASE,
					   IO_PORT_COUNT, aa->port);
	if (aa->buffer_pool)
		NdisFreeBufferPool(aa->buffer_pool);
	if (aa->packet_pool)
		NdisFreePacketPool(aa->packet_pool);
	if (aa->copy_area)
		NdisFreeMemory(aa->copy_area, COPY_AREA, 0);
	NdisFreeMemory(aa, sizeof(*aa), 0);
}

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	struct adapterapi *aa;
	NDIS_STATUS status;
	ULONG sync[4];

	if (testdrv_find_medium(selected, media, count))
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	if (NdisAllocateMemoryWithTag((PVOID *)&aa, sizeof(*aa),
				      ADAPTERAPI_TAG) != NDIS_STATUS_SUCCESS)
		return NDIS_STATUS_RESOURCES;
	NdisZeroMemory(aa, sizeof(*aa));
	aa->handle = adapter;
	NdisMSetAttributes(adapter, aa,
			   testdrv_param(config, L"BusMaster", 1) != 0,
			   NdisInterfacePci);
	aa->free_map_registers = testdrv_param(config, L"FreeMapRegisters", 1);

	configuration(config);
	timers_in_pool(aa, testdrv_param(config, L"TimerChurn", 0),
		       testdrv_param(config, L"TimerFreedArmed", 0));

	status = NdisMAllocateMapRegisters(adapter, 0, NDIS_DMA_32BITS, 8, 1514);
	DbgPrint("map_registers=%08lx\n", status);
	if (status != NDIS_STATUS_SUCCESS)
		aa->free_map_registers = 0;

	status = NdisMRegisterIoPortRange(&aa->port, adapter, IO_PORT_BASE,
					  IO_PORT_COUNT);
	if (status != NDIS_STATUS_SUCCESS)
		goto fail;
	aa->ports_registered = TRUE;
	status = NdisMRegisterInterrupt(&aa->interrupt, adapter, IRQ_VECTOR,
					IRQ_VECTOR, TRUE, TRUE,
					NdisInterruptLevelSensitive);
	if (status != NDIS_STATUS_SUCCESS)
		goto fail;
	aa->interrupt_registered = TRUE;
	synchronize(aa, &aa->interrupt, TRUE, sync);
	DbgPrint("sync=%lu/%lu/%lu/%lu\n", sync[0], sync[1], sync[2], sync[3]);

	NdisAllocatePacketPool(&status, &aa->packet_pool, 2, 4 * sizeof(PVOID));
	if (status != NDIS_STATUS_SUCCESS)
		goto fail;
	NdisAllocateBufferPool(&status, &aa->buffer_pool, 2 * COPY_BUFFERS);
	if (status != NDIS_STATUS_SUCCESS)
		goto fail;
	status = NdisAllocateMemoryWithTag((PVOID *)&aa->copy_area, COPY_AREA,
					   ADAPTERAPI_TAG);
	if (status != NDIS_STATUS_SUCCESS)
		goto fail;

	start_timers(aa);
	return NDIS_STATUS_SUCCESS;

fail:
	DbgPrint("adapterapi: Initialize failed with 0x%08lx\n", status);
	release(aa);
	return status;
}

static VOID NDISAPI adapterapi_halt(NDIS_HANDLE ctx)
{
	release(ctx);
}

static BOOLEAN NDISAPI adapterapi_check_for_hang(NDIS_HANDLE ctx)
{
	return FALSE;
}

/* ---- sending (serialized) ------------------------------------------------------ */

static VOID NDISAPI adapterapi_send_packets(NDIS_HANDLE ctx, PPNDIS_PACKET packets,
					   UINT n)
{
	UINT i, first_length, total_length;
	PNDIS_BUFFER first;
	PUCHAR va;

	for (i = 0; i < n; i++) {
		NdisGetFirstBufferFromPacketSafe(packets[i], &first, (PVOID *)&va,
						 &first_length, &total_length,
						 NormalPagePriority);
		NDIS_SET_PACKET_STATUS(packets[i],
			first_length == total_length && total_length &&
			va[total_length - 1] == 0 ?
			NDIS_STATUS_SUCCESS : NDIS_STATUS_FAILURE);
	}
}

/* ---- private OIDs ------------------------------------------------------------ */

static void answer_ulongs(struct adapterapi *aa, const ULONG *v, ULONG n)
{
	NdisMoveMemory(aa->answer, v, n * sizeof(ULONG));
	aa->answer_length = n * sizeof(ULONG);
}

static NDIS_STATUS schedule_work(struct adapterapi *aa, ULONG n)
{
	ULONG out[2] = { 0, 0 }, i;
	NDIS_STATUS status;

	if (n > WORK_ITEMS)
		return NDIS_STATUS_INVALID_DATA;
	for (i = 0; i < n; i++) {
		status = NdisScheduleWorkItem(&aa->work[i].item);
		if (status == NDIS_STATUS_SUCCESS)
			out[0]++;
		else if (!out[1])
			out[1] = status;
	}
	answer_ulongs(aa, out, 2);
	return NDIS_STATUS_SUCCESS;
}

static NDIS_STATUS synchronize_mode(struct adapterapi *aa, ULONG mode)
{
	NDIS_MINIPORT_INTERRUPT stray;
	ULONG out[4];

	switch (mode) {
	case 0:
	case 1:
		synchronize(aa, &aa->interrupt, (BOOLEAN)mode, out);
		break;
	case 2:
		NdisZeroMemory(&stray, sizeof(stray));
		synchronize(aa, &stray, TRUE, out);
		break;
	default:
		return NDIS_STATUS_INVALID_DATA;
	}
	answer_ulongs(aa, out, 4);
	return NDIS_STATUS_SUCCESS;
}

static NDIS_STATUS port_access(struct adapterapi *aa, const struct port_access *r)
{
	ULONG_PTR port = (ULONG_PTR)aa->port + r->offset;
	ULONG value = 0;

	switch (r->size | (r->write ? 0x100 : 0)) {
	case 1:
		value = READ_PORT_UCHAR((PUCHAR)port);
		break;
	case 2:
		value = READ_PORT_USHORT((PUSHORT)port);
		break;
	case 4:
		value = READ_PORT_ULONG((PULONG)port);
		break;
	case 0x101:
		WRITE_PORT_UCHAR((PUCHAR)port, (UCHAR)r->value);
		break;
	case 0x102:
		WRITE_PORT_USHORT((PUSHORT)port, (USHORT)r->value);
		break;
	case 0x104:
		WRITE_PORT_ULONG((PULONG)port, r->value);
		break;
	default:
		return NDIS_STATUS_INVALID_DATA;
	}
	answer_ulongs(aa, &value, 1);
	return NDIS_STATUS_SUCCESS;
}

/*
 * Chains count buffers of lengths[] over area, COPY_STRIDE bytes apart,
 * filled from *bytes (advanced past them).
 */
static NDIS_STATUS build_packet(struct adapterapi *aa, PNDIS_PACKET packet,
				PUCHAR area, UCHAR count, const UCHAR *lengths,
				const UCHAR **bytes)
{
	PNDIS_BUFFER buffer;
	NDIS_STATUS status;
	UCHAR i;

	for (i = 0; i < count; i++) {
		NdisMoveMemory(area + i * COPY_STRIDE, *bytes, lengths[i]);
		*bytes += lengths[i];
		NdisAllocateBuffer(&status, &buffer, aa->buffer_pool,
				   area + i * COPY_STRIDE, lengths[i]);
		if (status != NDIS_STATUS_SUCCESS)
			return status;
		NdisChainBufferAtBack(packet, buffer);
	}
	return NDIS_STATUS_SUCCESS;
}

static void free_packet(PNDIS_PACKET packet)
{
	PNDIS_BUFFER buffer = packet->Private.Head, next;

	for (; buffer; buffer = next) {
		next = buffer->Next;
		NdisFreeBuffer(buffer);
	}
	NdisFreePacket(packet);
}

static NDIS_STATUS copy_packets(struct adapterapi *aa, const UCHAR *buf, ULONG len)
{
	struct copy_request r;
	struct copy_answer *out = (struct copy_answer *)aa->answer;
	PNDIS_PACKET src = NULL, dst = NULL, third;
	PUCHAR src_area = aa->copy_area, dst_area = src_area + COPY_AREA / 2;
	const UCHAR *bytes = buf + sizeof(r);
	PNDIS_BUFFER first;
	NDIS_STATUS status, third_status;
	ULONG need = sizeof(r), dst_total = 0, i;
	UINT copied, first_length, total_length;
	PVOID va;

	if (len < sizeof(r))
		return NDIS_STATUS_INVALID_LENGTH;
	NdisMoveMemory(&r, buf, sizeof(r));
	if (r.src_count > COPY_BUFFERS || r.dst_count > COPY_BUFFERS)
		return NDIS_STATUS_INVALID_DATA;
	for (i = 0; i < r.src_count; i++)
		need += r.src_lengths[i];
	for (i = 0; i < r.dst_count; i++)
		dst_total += r.dst_lengths[i];
	if (len < need + dst_total)
		return NDIS_STATUS_INVALID_LENGTH;

	NdisZeroMemory(out, sizeof(*out));
	out->usage[0] = NdisPacketPoolUsage(aa->packet_pool);
	NdisAllocatePacket(&status, &src, aa->packet_pool);
	if (status == NDIS_STATUS_SUCCESS)
		NdisAllocatePacket(&status, &dst, aa->packet_pool);
	if (status == NDIS_STATUS_SUCCESS)
		status = build_packet(aa, src, src_area, r.src_count,
				      r.src_lengths, &bytes);
	if (status == NDIS_STATUS_SUCCESS)
		status = build_packet(aa, dst, dst_area, r.dst_count,
				      r.dst_lengths, &bytes);
	if (status == NDIS_STATUS_SUCCESS) {
		out->usage[1] = NdisPacketPoolUsage(aa->packet_pool);
		NdisAllocatePacket(&third_status, &third, aa->packet_pool);
		out->third = third_status;
		NdisGetFirstBufferFromPacketSafe(src, &first, &va, &first_length,
						 &total_length, NormalPagePriority);
		out->first_length = first_length;
		out->total_length = total_length;
		out->first_ok = (first == src->Private.Head) |
				(va == (r.src_count ? src_area : NULL)) << 1;
		NdisCopyFromPacketToPacket(dst, r.dst_offset, r.length, src,
					   r.src_offset, &copied);
		out->copied = copied;
		/* The destination's bytes, buffer by buffer. */
		for (i = 0, need = sizeof(*out); i < r.dst_count; i++) {
			NdisMoveMemory(aa->answer + need,
				       dst_area + i * COPY_STRIDE,
				       r.dst_lengths[i]);
			need += r.dst_lengths[i];
		}
		aa->answer_length = need;
	}
	if (dst)
		free_packet(dst);
	if (src)
		free_packet(src);
	out->usage[2] = NdisPacketPoolUsage(aa->packet_pool);
	return status;
}

static NDIS_STATUS NDISAPI adapterapi_set(NDIS_HANDLE ctx, NDIS_OID oid,
		PVOID buf, ULONG len, PULONG read, PULONG needed)
{
	struct adapterapi *aa = ctx;
	struct port_access access;
	ULONG value;

	ULONG size;

	*read = 0;
	*needed = 0;
	aa->answer_length = 0;
	switch (oid) {
	case OID_ADAPTERAPI_COPY:
		size = sizeof(struct copy_request);
		break;
	case OID_ADAPTERAPI_PORT:
		size = sizeof(access);
		break;
	case OID_ADAPTERAPI_WORK:
	case OID_ADAPTERAPI_SYNC:
		size = sizeof(value);
		break;
	default:
		return NDIS_STATUS_NOT_SUPPORTED;
	}
	if (len < size) {
		*needed = size;
		return NDIS_STATUS_INVALID_LENGTH;
	}
	*read = len;
	switch (oid) {
	case OID_ADAPTERAPI_COPY:
		return copy_packets(aa, buf, len);
	case OID_ADAPTERAPI_PORT:
		NdisMoveMemory(&access, buf, sizeof(access));
		return port_access(aa, &access);
	}
	NdisMoveMemory(&value, buf, sizeof(value));
	return oid == OID_ADAPTERAPI_WORK ? schedule_work(aa, value) :
					    synchronize_mode(aa, value);
}

static NDIS_STATUS NDISAPI adapterapi_query(NDIS_HANDLE ctx, NDIS_OID oid,
		PVOID buf, ULONG len, PULONG written, PULONG needed)
{
	struct adapterapi *aa = ctx;

	*written = 0;
	*needed = aa->answer_length;
	if (oid != OID_ADAPTERAPI_ANSWER)
		return NDIS_STATUS_NOT_SUPPORTED;
	if (len < aa->answer_length)
		return NDIS_STATUS_INVALID_LENGTH;
	NdisMoveMemory(buf, aa->answer, aa->answer_length);
	*written = aa->answer_length;
	return NDIS_STATUS_SUCCESS;
}

NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	NDIS51_MINIPORT_CHARACTERISTICS chars = {
		.HaltHandler = adapterapi_halt,
		.CheckForHangHandler = adapterapi_check_for_hang,
		.QueryInformationHandler = adapterapi_query,
		.SetInformationHandler = adapterapi_set,
		.ISRHandler = adapterapi_isr,
		.HandleInterruptHandler = adapterapi_handle_interrupt,
		.SendPacketsHandler = adapterapi_send_packets,
	};

	return testdrv_register(driver, path, &chars);
}
