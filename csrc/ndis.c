/* SPDX-License-Identifier: MIT */
/*
 * ndis.c - the NDIS.SYS exports an NDIS 5.1 Ethernet miniport imports.
 *
 * Every function here runs on a driver's private stack, at the IRQL of the
 * entry point that called it, and may be abandoned mid-way by the trap or
 * the watchdog.  Hence: memory only from the current context's arena, locks
 * only per object, nothing from glibc that takes a lock (no malloc, no
 * stdio).  Work the driver triggers for the host is queued (adapter.c).
 *
 * The export table at the end is the whole of what the loader binds.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "np.h"
#include "np_winfmt.h"

#define NP_TAG(a, b, c, d) ((ULONG)(a) | (ULONG)(b) << 8 | (ULONG)(c) << 16 | (ULONG)(d) << 24)
#define TAG_NDIS	NP_TAG('N', 'D', 'I', 'S')
#define TAG_CONFIG	NP_TAG('N', 'p', 'C', 'f')
#define TAG_POOL	NP_TAG('N', 'p', 'P', 'l')
#define NP_POOL_MAGIC	0x4e50504cU
#define NP_BUFPOOL_MAGIC 0x4e50424cU
#define NP_PACKET_FREE	((PVOID)(uintptr_t)0x4e504672U)
#define NP_PACKET_USED	((PVOID)(uintptr_t)0x4e505573U)

static struct np_adapter *adapter_or_verify(NDIS_HANDLE h, const char *fn)
{
	struct np_adapter *a = np_adapter_from_handle(h);

	if (!a)
		np_verify(np_current_ctx(), NP_VIOL_BAD_CALL,
			  "%s: handle %p is not an adapter", fn, h);
	return a;
}

static struct np_image *current_image(void)
{
	struct np_ctx *c = np_current_ctx();

	return c ? c->image : NULL;
}

/* ---- registration ------------------------------------------------------- */

NDISAPI VOID NdisMInitializeWrapper(PNDIS_HANDLE wrapper, PVOID system1,
				    PVOID system2, PVOID system3)
{
	struct np_image *img = current_image();

	(void)system2;
	(void)system3;
	if (!img || system1 != &img->driver_object) {
		*wrapper = NULL;
		return;
	}
	img->wrapper_initialised = 1;
	*wrapper = img;
}

NDISAPI NDIS_STATUS NdisMRegisterMiniport(NDIS_HANDLE wrapper,
					  PNDIS_MINIPORT_CHARACTERISTICS chars,
					  UINT len)
{
	struct np_image *img = wrapper;
	UINT need;

	if (!img || img != current_image() || !img->wrapper_initialised)
		return NDIS_STATUS_FAILURE;
	switch (chars->MajorNdisVersion) {
	case 5:
		need = chars->MinorNdisVersion >= 1 ?
			sizeof(NDIS51_MINIPORT_CHARACTERISTICS) :
			offsetof(NDIS51_MINIPORT_CHARACTERISTICS,
				 CancelSendPacketsHandler);
		break;
	case 4:
		need = offsetof(NDIS51_MINIPORT_CHARACTERISTICS,
				CoCreateVcHandler);
		break;
	default:
		return NDIS_STATUS_BAD_VERSION;
	}
	if (len < need)
		return NDIS_STATUS_BAD_CHARACTERISTICS;
	if (!chars->InitializeHandler || !chars->HaltHandler ||
	    !chars->QueryInformationHandler || !chars->SetInformationHandler ||
	    (!chars->SendHandler && !chars->SendPacketsHandler))
		return NDIS_STATUS_BAD_CHARACTERISTICS;
	memset(&img->chars, 0, sizeof(img->chars));
	memcpy(&img->chars, chars, need);
	img->chars_len = need;
	img->registered = 1;
	return NDIS_STATUS_SUCCESS;
}

NDISAPI VOID NdisTerminateWrapper(NDIS_HANDLE wrapper, PVOID system)
{
	struct np_image *img = wrapper;

	(void)system;
	if (img && img == current_image())
		img->wrapper_initialised = 0;
}

NDISAPI VOID NdisMSetAttributesEx(NDIS_HANDLE adapter, NDIS_HANDLE ctx,
				  UINT check_for_hang_secs, ULONG attributes,
				  NDIS_INTERFACE_TYPE bus)
{
	struct np_adapter *a = adapter_or_verify(adapter, __func__);

	(void)bus;
	if (!a)
		return;
	a->adapter_context = ctx;
	a->attributes = attributes;
	a->check_for_hang_secs = check_for_hang_secs ? check_for_hang_secs : 2;
}

NDISAPI VOID NdisMSetAttributes(NDIS_HANDLE adapter, NDIS_HANDLE ctx,
				BOOLEAN bus_master, NDIS_INTERFACE_TYPE bus)
{
	NdisMSetAttributesEx(adapter, ctx, 0,
			     bus_master ? NDIS_ATTRIBUTE_BUS_MASTER : 0, bus);
}

/* ---- configuration ---------------------------------------------------------- */

NDISAPI VOID NdisOpenConfiguration(PNDIS_STATUS status, PNDIS_HANDLE config,
				   NDIS_HANDLE wrapper_config)
{
	struct np_adapter *a = adapter_or_verify(wrapper_config, __func__);

	np_verify_irql(NP_VIOL_IRQL, PASSIVE_LEVEL, __func__);
	*config = a;
	*status = a ? NDIS_STATUS_SUCCESS : NDIS_STATUS_FAILURE;
}

static int parse_ulong(const char *s, int base, ULONG *out)
{
	unsigned long long v = 0;
	int digits = 0;

	if (base == 16 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	else if (base == 10 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		base = 16;
	}
	for (; *s; s++, digits++) {
		int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return -1;
		v = v * base + d;
		if (v > 0xffffffffULL)
			return -1;
	}
	if (!digits)
		return -1;
	*out = (ULONG)v;
	return 0;
}

/* Values NDIS answers itself, as Windows does, unless the registry has one. */
static const struct np_param builtin_params[] = {
	{ "Environment", "1" },			/* NdisEnvironmentWindowsNt */
	{ "NdisVersion", "0x50001" },
	{ "ProcessorType", "0" },
};

NDISAPI VOID NdisReadConfiguration(PNDIS_STATUS status,
				   PNDIS_CONFIGURATION_PARAMETER *value,
				   NDIS_HANDLE config, PNDIS_STRING keyword,
				   NDIS_PARAMETER_TYPE type)
{
	struct np_adapter *a = adapter_or_verify(config, __func__);
	PNDIS_CONFIGURATION_PARAMETER p;
	const struct np_param *param;
	char name[64];
	size_t i;

	np_verify_irql(NP_VIOL_IRQL, PASSIVE_LEVEL, __func__);
	*status = NDIS_STATUS_FAILURE;
	*value = NULL;
	if (!a || !keyword)
		return;
	np_winfmt_utf16_to_utf8(name, sizeof(name), keyword->Buffer,
				keyword->Length / 2);
	param = np_adapter_param(a, name);
	for (i = 0; !param && i < NP_ARRAY_SIZE(builtin_params); i++)
		if (!strcasecmp(builtin_params[i].name, name))
			param = &builtin_params[i];
	if (!param)
		return;
	if (a->ncfg == NP_ARRAY_SIZE(a->cfg_allocs)) {
		/* Values are freed at NdisCloseConfiguration: refuse, never leak. */
		*status = NDIS_STATUS_RESOURCES;
		return;
	}
	/* Room for the value widened, its NUL, and a MultiString's second. */
	p = np_arena_alloc(&a->ctx.arena,
			   sizeof(*p) + (strlen(param->value) + 2) * sizeof(WCHAR),
			   TAG_CONFIG);
	if (!p) {
		*status = NDIS_STATUS_RESOURCES;
		return;
	}
	memset(p, 0, sizeof(*p));
	p->ParameterType = type;
	if (type == NdisParameterInteger || type == NdisParameterHexInteger) {
		if (parse_ulong(param->value,
				type == NdisParameterHexInteger ? 16 : 10,
				&p->ParameterData.IntegerData)) {
			np_arena_free(&a->ctx.arena, p, NULL);
			return;
		}
	} else {
		PWSTR w = (PWSTR)(p + 1);
		/* Values are UTF-8; a unit per byte at most, plus two NULs. */
		size_t n = np_winfmt_utf8_to_utf16((unsigned short *)w,
						   strlen(param->value) + 1,
						   param->value);

		p->ParameterData.StringData.Length = (USHORT)(n * 2);
		if (type == NdisParameterMultiString)
			w[++n] = 0;
		p->ParameterType = type == NdisParameterMultiString ?
			NdisParameterMultiString : NdisParameterString;
		p->ParameterData.StringData.Buffer = w;
		p->ParameterData.StringData.MaximumLength = (USHORT)((n + 1) * 2);
	}
	a->cfg_allocs[a->ncfg++] = p;
	*value = p;
	*status = NDIS_STATUS_SUCCESS;
}

/* "0x" and 1 to 8 hex digits, as NdisReadConfiguration parses either way. */
static void format_hex(char *out, ULONG v)
{
	static const char digits[] = "0123456789abcdef";
	int shift = 28;

	*out++ = '0';
	*out++ = 'x';
	while (shift > 0 && !(v >> shift))
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		*out++ = digits[(v >> shift) & 0xf];
	*out = '\0';
}

/*
 * The "registry" is the adapter's parameter table, in text as the host set
 * it.  Both integer types are stored in hex with a 0x prefix, which
 * NdisReadConfiguration reads back as the same number whichever integer type
 * it is asked for, as with a REG_DWORD on Windows.
 */
NDISAPI VOID NdisWriteConfiguration(PNDIS_STATUS status, NDIS_HANDLE config,
				    PNDIS_STRING keyword,
				    PNDIS_CONFIGURATION_PARAMETER value)
{
	struct np_adapter *a = adapter_or_verify(config, __func__);
	/* One byte over the table's limits, to tell a fit from a cut. */
	char name[sizeof(a->params[0].name) + 1];
	char text[sizeof(a->params[0].value) + 1];
	size_t n;

	np_verify_irql(NP_VIOL_IRQL, PASSIVE_LEVEL, __func__);
	*status = NDIS_STATUS_FAILURE;
	if (!a || !keyword || !value)
		return;
	n = np_winfmt_utf16_to_utf8(name, sizeof(name), keyword->Buffer,
				    keyword->Length / 2);
	if (!n)
		return;
	if (n >= sizeof(name) - 1) {
		*status = NDIS_STATUS_RESOURCES;
		return;
	}
	switch (value->ParameterType) {
	case NdisParameterInteger:
	case NdisParameterHexInteger:
		format_hex(text, value->ParameterData.IntegerData);
		break;
	case NdisParameterString:
		n = np_winfmt_utf16_to_utf8(text, sizeof(text),
					    value->ParameterData.StringData.Buffer,
					    value->ParameterData.StringData.Length / 2);
		if (n >= sizeof(text) - 1) {
			*status = NDIS_STATUS_RESOURCES;
			return;
		}
		break;
	default:
		return;
	}
	*status = np_api_adapter_set_param(a, name, text) ?
		NDIS_STATUS_RESOURCES : NDIS_STATUS_SUCCESS;
}

NDISAPI VOID NdisCloseConfiguration(NDIS_HANDLE config)
{
	struct np_adapter *a = adapter_or_verify(config, __func__);
	size_t i;

	np_verify_irql(NP_VIOL_IRQL, PASSIVE_LEVEL, __func__);
	if (!a)
		return;
	for (i = 0; i < a->ncfg; i++)
		np_arena_free(&a->ctx.arena, a->cfg_allocs[i], NULL);
	a->ncfg = 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

NDISAPI VOID NdisReadNetworkAddress(PNDIS_STATUS status, PVOID *address,
				    PUINT len, NDIS_HANDLE config)
{
	struct np_adapter *a = adapter_or_verify(config, __func__);
	const struct np_param *p;
	const char *s;
	int n = 0;

	np_verify_irql(NP_VIOL_IRQL, PASSIVE_LEVEL, __func__);
	*status = NDIS_STATUS_FAILURE;
	*address = NULL;
	*len = 0;
	if (!a || !(p = np_adapter_param(a, "NetworkAddress")))
		return;
	/* 12 hex digits; ':' and '-' separators are tolerated. */
	for (s = p->value; *s && n < 12; s++) {
		int d = hex_digit(*s);

		if (d < 0) {
			if (*s == ':' || *s == '-')
				continue;
			return;
		}
		if (n % 2 == 0)
			a->network_address[n / 2] = (UCHAR)(d << 4);
		else
			a->network_address[n / 2] |= (UCHAR)d;
		n++;
	}
	if (n != 12 || *s)
		return;
	*address = a->network_address;
	*len = 6;
	*status = NDIS_STATUS_SUCCESS;
}

/* ---- memory -------------------------------------------------------------------- */

NDISAPI NDIS_STATUS NdisAllocateMemoryWithTag(PVOID *va, UINT len, ULONG tag)
{
	struct np_arena *arena = np_current_arena();

	np_verify_irql(NP_VIOL_IRQL, DISPATCH_LEVEL, __func__);
	*va = arena ? np_arena_alloc(arena, len, tag) : NULL;
	return *va ? NDIS_STATUS_SUCCESS : NDIS_STATUS_FAILURE;
}

NDISAPI NDIS_STATUS NdisAllocateMemory(PVOID *va, UINT len, UINT flags,
				       NDIS_PHYSICAL_ADDRESS highest)
{
	(void)flags;
	(void)highest;
	return NdisAllocateMemoryWithTag(va, len, TAG_NDIS);
}

static void timers_freed(struct np_adapter *a, uintptr_t va, size_t len,
			 const char *fn);

/*
 * A driver may free in an adapter's context what it allocated in
 * DriverEntry's, so both arenas are tried before calling the free bad.
 * Timers that lived in the freed memory go with it.
 */
int np_free_pool(PVOID va, const char *fn)
{
	struct np_ctx *c = np_current_ctx();
	struct np_adapter *a = np_current_adapter();
	struct np_arena *arena;
	size_t len;

	if (!c || !va)
		return -1;
	arena = &c->arena;
	len = np_arena_len(arena, va);
	if (!len && c != &c->image->ctx) {
		arena = &c->image->ctx.arena;
		len = np_arena_len(arena, va);
	}
	if (len) {
		if (a)
			timers_freed(a, (uintptr_t)va, len, fn);
		if (np_arena_free(arena, va, NULL) == 0)
			return 0;
	}
	np_verify(c, NP_VIOL_BAD_FREE,
		  "%s(%p): not a live allocation (double free?)", fn, va);
	return -1;
}

NDISAPI VOID NdisFreeMemory(PVOID va, UINT len, UINT flags)
{
	(void)len;
	(void)flags;
	np_free_pool(va, __func__);
}

NDISAPI VOID NdisMAllocateSharedMemory(NDIS_HANDLE adapter, ULONG len,
				       BOOLEAN cached, PVOID *va,
				       PNDIS_PHYSICAL_ADDRESS pa)
{
	struct np_adapter *a = adapter_or_verify(adapter, __func__);
	void *p;

	(void)cached;
	*va = NULL;
	pa->QuadPart = 0;
	np_verify_irql(NP_VIOL_IRQL, PASSIVE_LEVEL, __func__);
	if (!a || !(p = np_arena_zalloc(&a->dma, len, NP_TAG('D', 'M', 'A', ' '))))
		return;
	*va = p;
	pa->QuadPart = (LONGLONG)(NP_DMA_BASE + ((uintptr_t)p - a->dma.base));
}

NDISAPI VOID NdisMFreeSharedMemory(NDIS_HANDLE adapter, ULONG len,
				   BOOLEAN cached, PVOID va,
				   NDIS_PHYSICAL_ADDRESS pa)
{
	struct np_adapter *a = adapter_or_verify(adapter, __func__);

	(void)len;
	(void)cached;
	if (!a)
		return;
	if ((uint64_t)pa.QuadPart != NP_DMA_BASE + ((uintptr_t)va - a->dma.base) ||
	    np_arena_free(&a->dma, va, NULL))
		np_verify(&a->ctx, NP_VIOL_BAD_DMA,
			  "NdisMFreeSharedMemory(%p, 0x%llx): not a live shared allocation",
			  va, (unsigned long long)pa.QuadPart);
}

/*
 * Bus addresses come only from shared memory, so map registers are a count
 * kept for the verifier.  Windows answers NDIS_STATUS_RESOURCES to a
 * miniport that did not declare itself a bus master.
 */
NDISAPI NDIS_STATUS NdisMAllocateMapRegisters(NDIS_HANDLE adapter,
					      UINT dma_channel, UCHAR dma_size,
					      ULONG count, ULONG max_size)
{
	struct np_adapter *a = adapter_or_verify(adapter, __func__);

	(void)dma_channel;
	(void)dma_size;
	(void)max_size;
	if (!a)
		return NDIS_STATUS_FAILURE;
	np_verify_irql(NP_VIOL_IRQL, PASSIVE_LEVEL, __func__);
	if (!(a->attributes & NDIS_ATTRIBUTE_BUS_MASTER) || !count)
		return NDIS_STATUS_RESOURCES;
	a->map_registers = count;
	return NDIS_STATUS_SUCCESS;
}

NDISAPI VOID NdisMFreeMapRegisters(NDIS_HANDLE adapter)
{
	struct np_adapter *a = adapter_or_verify(adapter, __func__);

	if (!a)
		return;
	np_verify_irql(NP_VIOL_IRQL, PASSIVE_LEVEL, __func__);
	if (!a->map_registers) {
		np_verify(&a->ctx, NP_VIOL_BAD_FREE,
			  "NdisMFreeMapRegisters: no map registers allocated (freed twice?)");
		return;
	}
	a->map_registers = 0;
}

NDISAPI ULONG NdisGetSharedDataAlignment(VOID)
{
	return 64;
}

/* ---- spin locks ------------------------------------------------------------------ */

static void set_irql(uint8_t irql)
{
	struct np_thread *t = np_thread_current();

	if (t)
		t->irql = irql;
}

static uint8_t get_irql(void)
{
	struct np_thread *t = np_thread_current();

	return t ? t->irql : PASSIVE_LEVEL;
}

static void lock_acquire(PNDIS_SPIN_LOCK lock)
{
	/* A spin on a lock this thread holds hangs, as on Windows: the
	 * watchdog ends it with a timeout. */
	while (__atomic_exchange_n(&lock->SpinLock, 1, __ATOMIC_ACQUIRE))
		__builtin_ia32_pause();
}

static int lock_release(PNDIS_SPIN_LOCK lock, const char *fn)
{
	if (!__atomic_exchange_n(&lock->SpinLock, 0, __ATOMIC_RELEASE)) {
		np_verify(np_current_ctx(), NP_VIOL_LOCK_NOT_HELD,
			  "%s(%p): the lock is not held", fn, (void *)lock);
		return -1;
	}
	return 0;
}

NDISAPI VOID NdisAllocateSpinLock(PNDIS_SPIN_LOCK lock)
{
	lock->SpinLock = 0;
	lock->OldIrql = PASSIVE_LEVEL;
}

NDISAPI VOID NdisFreeSpinLock(PNDIS_SPIN_LOCK lock)
{
	(void)lock;
}

NDISAPI VOID NdisAcquireSpinLock(PNDIS_SPIN_LOCK lock)
{
	uint8_t old = get_irql();

	np_verify_irql(NP_VIOL_IRQL, DISPATCH_LEVEL, __func__);
	lock_acquire(lock);
	lock->OldIrql = old;
	set_irql(DISPATCH_LEVEL);
}

NDISAPI VOID NdisReleaseSpinLock(PNDIS_SPIN_LOCK lock)
{
	uint8_t old = lock->OldIrql;

	if (lock_release(lock, __func__) == 0)
		set_irql(old);
}

NDISAPI VOID NdisDprAcquireSpinLock(PNDIS_SPIN_LOCK lock)
{
	if (get_irql() != DISPATCH_LEVEL)
		np_verify(np_current_ctx(), NP_VIOL_IRQL,
			  "NdisDprAcquireSpinLock called at IRQL %u (must be DISPATCH_LEVEL)",
			  get_irql());
	lock_acquire(lock);
}

NDISAPI VOID NdisDprReleaseSpinLock(PNDIS_SPIN_LOCK lock)
{
	lock_release(lock, __func__);
}

/* ---- packet and buffer pools -------------------------------------------------- */

struct np_packet_pool {
	uint32_t magic;
	uint32_t count, used;
	uint32_t stride;
	uint16_t oob_offset;
	atomic_flag lock;
	PNDIS_PACKET free;		/* linked through WrapperReserved */
	struct np_arena *arena;
	uint8_t *mem;
};

#define PACKET_NEXT(p)	(((PNDIS_PACKET *)(p)->WrapperReserved)[0])
#define PACKET_STATE(p)	(((PVOID *)(p)->WrapperReserved)[1])

NDISAPI VOID NdisAllocatePacketPoolEx(PNDIS_STATUS status, PNDIS_HANDLE pool,
				      UINT descriptors, UINT overflow,
				      UINT protocol_reserved)
{
	struct np_arena *arena = np_current_arena();
	struct np_packet_pool *pp;
	uint32_t stride, oob, i;

	*pool = NULL;
	*status = NDIS_STATUS_RESOURCES;
	descriptors += overflow;
	if (!arena || !descriptors || descriptors > 65536 ||
	    protocol_reserved > 4096)
		return;
	oob = NP_ALIGN_UP(offsetof(NDIS_PACKET, ProtocolReserved) +
			  protocol_reserved, 16);
	stride = NP_ALIGN_UP(oob + sizeof(NDIS_PACKET_OOB_DATA) +
			     sizeof(NDIS_PACKET_EXTENSION), 16);
	pp = np_arena_alloc(arena, sizeof(*pp) + (size_t)stride * descriptors,
			    TAG_POOL);
	if (!pp)
		return;
	memset(pp, 0, sizeof(*pp));
	pp->magic = NP_POOL_MAGIC;
	pp->count = descriptors;
	pp->stride = stride;
	pp->oob_offset = (uint16_t)oob;
	pp->arena = arena;
	pp->mem = (uint8_t *)(pp + 1);
	atomic_flag_clear(&pp->lock);
	for (i = descriptors; i-- > 0;) {
		PNDIS_PACKET p = (PNDIS_PACKET)(pp->mem + (size_t)i * stride);

		PACKET_STATE(p) = NP_PACKET_FREE;
		PACKET_NEXT(p) = pp->free;
		pp->free = p;
	}
	*pool = pp;
	*status = NDIS_STATUS_SUCCESS;
}

NDISAPI VOID NdisAllocatePacketPool(PNDIS_STATUS status, PNDIS_HANDLE pool,
				    UINT descriptors, UINT protocol_reserved)
{
	NdisAllocatePacketPoolEx(status, pool, descriptors, 0, protocol_reserved);
}

NDISAPI VOID NdisFreePacketPool(NDIS_HANDLE pool)
{
	struct np_packet_pool *pp = pool;

	if (!pp || pp->magic != NP_POOL_MAGIC) {
		np_verify(np_current_ctx(), NP_VIOL_BAD_CALL,
			  "NdisFreePacketPool(%p): not a packet pool", pool);
		return;
	}
	if (pp->used)
		np_verify(np_current_ctx(), NP_VIOL_FREE_UNRETURNED,
			  "NdisFreePacketPool(%p) with %u packets still allocated",
			  pool, pp->used);
	pp->magic = 0;
	np_arena_free(pp->arena, pp, NULL);
}

NDISAPI UINT NdisPacketPoolUsage(NDIS_HANDLE pool)
{
	struct np_packet_pool *pp = pool;

	return pp && pp->magic == NP_POOL_MAGIC ? pp->used : 0;
}

NDISAPI VOID NdisAllocatePacket(PNDIS_STATUS status, PNDIS_PACKET *packet,
				NDIS_HANDLE pool)
{
	struct np_packet_pool *pp = pool;
	PNDIS_PACKET p;

	*packet = NULL;
	*status = NDIS_STATUS_RESOURCES;
	if (!pp || pp->magic != NP_POOL_MAGIC) {
		np_verify(np_current_ctx(), NP_VIOL_BAD_CALL,
			  "NdisAllocatePacket: %p is not a packet pool", pool);
		return;
	}
	np_spin_lock(&pp->lock);
	p = pp->free;
	if (p) {
		pp->free = PACKET_NEXT(p);
		pp->used++;
	}
	np_spin_unlock(&pp->lock);
	if (!p)
		return;
	memset(p, 0, pp->stride);
	p->Private.Pool = pp;
	p->Private.NdisPacketFlags = fPACKET_ALLOCATED_BY_NDIS;
	p->Private.NdisPacketOobOffset = pp->oob_offset;
	PACKET_STATE(p) = NP_PACKET_USED;
	*packet = p;
	*status = NDIS_STATUS_SUCCESS;
}

NDISAPI VOID NdisFreePacket(PNDIS_PACKET p)
{
	struct np_packet_pool *pp = p ? p->Private.Pool : NULL;
	struct np_adapter *a = np_current_adapter();

	if (a && p && np_packet_held(a, p))
		np_verify(&a->ctx, NP_VIOL_FREE_UNRETURNED,
			  "NdisFreePacket(%p): indicated and not yet returned", (void *)p);

	if (!pp || pp->magic != NP_POOL_MAGIC || PACKET_STATE(p) != NP_PACKET_USED) {
		np_verify(np_current_ctx(), NP_VIOL_BAD_FREE,
			  "NdisFreePacket(%p): not an allocated packet (freed twice?)",
			  (void *)p);
		return;
	}
	np_spin_lock(&pp->lock);
	PACKET_STATE(p) = NP_PACKET_FREE;
	PACKET_NEXT(p) = pp->free;
	pp->free = p;
	pp->used--;
	np_spin_unlock(&pp->lock);
}

struct np_buffer_pool {
	uint32_t magic;
	uint32_t count, used;
	atomic_flag lock;
	PNDIS_BUFFER free;
	struct np_arena *arena;
};

NDISAPI VOID NdisAllocateBufferPool(PNDIS_STATUS status, PNDIS_HANDLE pool,
				    UINT descriptors)
{
	struct np_arena *arena = np_current_arena();
	struct np_buffer_pool *bp;
	PNDIS_BUFFER mdls;
	UINT i;

	*pool = NULL;
	*status = NDIS_STATUS_RESOURCES;
	if (!arena || !descriptors || descriptors > 65536)
		return;
	bp = np_arena_alloc(arena, sizeof(*bp) + sizeof(MDL) * descriptors,
			    TAG_POOL);
	if (!bp)
		return;
	memset(bp, 0, sizeof(*bp));
	bp->magic = NP_BUFPOOL_MAGIC;
	bp->count = descriptors;
	bp->arena = arena;
	atomic_flag_clear(&bp->lock);
	mdls = (PNDIS_BUFFER)(bp + 1);
	for (i = descriptors; i-- > 0;) {
		mdls[i].Next = bp->free;
		mdls[i].Process = NULL;
		bp->free = &mdls[i];
	}
	*pool = bp;
	*status = NDIS_STATUS_SUCCESS;
}

NDISAPI VOID NdisFreeBufferPool(NDIS_HANDLE pool)
{
	struct np_buffer_pool *bp = pool;

	if (!bp || bp->magic != NP_BUFPOOL_MAGIC) {
		np_verify(np_current_ctx(), NP_VIOL_BAD_CALL,
			  "NdisFreeBufferPool(%p): not a buffer pool", pool);
		return;
	}
	if (bp->used)
		np_verify(np_current_ctx(), NP_VIOL_FREE_UNRETURNED,
			  "NdisFreeBufferPool(%p) with %u buffers still allocated",
			  pool, bp->used);
	bp->magic = 0;
	np_arena_free(bp->arena, bp, NULL);
}

NDISAPI VOID NdisAllocateBuffer(PNDIS_STATUS status, PNDIS_BUFFER *buffer,
				NDIS_HANDLE pool, PVOID va, UINT len)
{
	struct np_buffer_pool *bp = pool;
	PNDIS_BUFFER b;

	*buffer = NULL;
	*status = NDIS_STATUS_RESOURCES;
	if (!bp || bp->magic != NP_BUFPOOL_MAGIC) {
		np_verify(np_current_ctx(), NP_VIOL_BAD_CALL,
			  "NdisAllocateBuffer: %p is not a buffer pool", pool);
		return;
	}
	np_spin_lock(&bp->lock);
	b = bp->free;
	if (b) {
		bp->free = b->Next;
		bp->used++;
	}
	np_spin_unlock(&bp->lock);
	if (!b)
		return;
	b->Next = NULL;
	b->Size = (CSHORT)sizeof(MDL);
	/* Mapped and nonpaged: the DDK's MmGetSystemAddressForMdlSafe then
	 * reads MappedSystemVa without calling into the kernel. */
	b->MdlFlags = (CSHORT)(MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL);
	b->Process = bp;		/* which pool it goes back to */
	b->MappedSystemVa = va;
	b->StartVa = (PVOID)((uintptr_t)va & ~(NP_PAGE_SIZE - 1));
	b->ByteOffset = (ULONG)((uintptr_t)va & (NP_PAGE_SIZE - 1));
	b->ByteCount = len;
	*buffer = b;
	*status = NDIS_STATUS_SUCCESS;
}

NDISAPI VOID NdisFreeBuffer(PNDIS_BUFFER b)
{
	struct np_buffer_pool *bp = b ? b->Process : NULL;

	if (!bp || bp->magic != NP_BUFPOOL_MAGIC) {
		np_verify(np_current_ctx(), NP_VIOL_BAD_FREE,
			  "NdisFreeBuffer(%p): not an allocated buffer (freed twice?)",
			  (void *)b);
		return;
	}
	np_spin_lock(&bp->lock);
	b->Process = NULL;
	b->Next = bp->free;
	bp->free = b;
	bp->used--;
	np_spin_unlock(&bp->lock);
}

NDISAPI VOID NdisAdjustBufferLength(PNDIS_BUFFER b, UINT len)
{
	b->ByteCount = len;
}

NDISAPI VOID NdisGetFirstBufferFromPacketSafe(PNDIS_PACKET p,
					      PNDIS_BUFFER *first, PVOID *va,
					      PUINT first_len, PUINT total_len,
					      int priority)
{
	PNDIS_BUFFER b = p->Private.Head;
	UINT total = 0;

	(void)priority;
	*first = b;
	*va = b ? b->MappedSystemVa : NULL;
	*first_len = b ? b->ByteCount : 0;
	for (; b; b = b->Next)
		total += b->ByteCount;
	*total_len = total;
}

/* Walks both buffer chains; copies min(len, what both have) bytes. */
NDISAPI VOID NdisCopyFromPacketToPacket(PNDIS_PACKET dst, UINT dst_off,
					UINT len, PNDIS_PACKET src,
					UINT src_off, PUINT copied)
{
	PNDIS_BUFFER d = dst->Private.Head, s = src->Private.Head;
	UINT done = 0;

	while (d && dst_off >= d->ByteCount) {
		dst_off -= d->ByteCount;
		d = d->Next;
	}
	while (s && src_off >= s->ByteCount) {
		src_off -= s->ByteCount;
		s = s->Next;
	}
	while (d && s && done < len) {
		UINT n = d->ByteCount - dst_off;

		if (n > s->ByteCount - src_off)
			n = s->ByteCount - src_off;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)d->MappedSystemVa + dst_off,
		       (uint8_t *)s->MappedSystemVa + src_off, n);
		done += n;
		dst_off += n;
		src_off += n;
		if (dst_off == d->ByteCount) {
			d = d->Next;
			dst_off = 0;
		}
		if (src_off == s->ByteCount) {
			s = s->Next;
			src_off = 0;
		}
	}
	*copied = done;
}

/* ---- interrupts ------------------------------------------------------------------- */

NDISAPI NDIS_STATUS NdisMRegisterInterrupt(PNDIS_MINIPORT_INTERRUPT intr,
					   NDIS_HANDLE adapter, UINT vector,
					   UINT level, BOOLEAN request_isr,
					   BOOLEAN shared,
					   NDIS_INTERRUPT_MODE mode)
{
	struct np_adapter *a = adapter_or_verify(adapter, __func__);
	const NDIS51_MINIPORT_CHARACTERISTICS *ch;

	(void)vector;
	(void)level;
	(void)mode;
	if (!a)
		return NDIS_STATUS_FAILURE;
	ch = &a->ctx.image->chars;
	if (a->interrupt || !ch->HandleInterruptHandler ||
	    (request_isr && !ch->ISRHandler))
		return NDIS_STATUS_RESOURCE_CONFLICT;
	memset(intr, 0, sizeof(*intr));
	intr->Miniport = &a->block;
	intr->MiniportIsr = ch->ISRHandler;
	intr->MiniportDpc = ch->HandleInterruptHandler;
	intr->SharedInterrupt = shared;
	intr->IsrRequested = request_isr;
	a->interrupt = intr;
	a->request_isr = request_isr;
	return NDIS_STATUS_SUCCESS;
}

NDISAPI VOID NdisMDeregisterInterrupt(PNDIS_MINIPORT_INTERRUPT intr)
{
	struct np_adapter *a = intr ? np_adapter_from_handle(intr->Miniport) : NULL;

	if (!a || a->interrupt != intr) {
		np_verify(np_current_ctx(), NP_VIOL_BAD_CALL,
			  "NdisMDeregisterInterrupt(%p): not registered",
			  (void *)intr);
		return;
	}
	a->interrupt = NULL;
}

/*
 * Runs the routine inline, on this stack, at the interrupt's IRQL.  No lock
 * is taken: an adapter's ISR never runs while another of its calls does.
 */
NDISAPI BOOLEAN NdisMSynchronizeWithInterrupt(PNDIS_MINIPORT_INTERRUPT intr,
					      PVOID routine, PVOID ctx)
{
	struct np_adapter *a = intr ? np_adapter_from_handle(intr->Miniport) : NULL;
	uint8_t old = get_irql();
	BOOLEAN r;

	if (!a || a->interrupt != intr) {
		np_verify(np_current_ctx(), NP_VIOL_BAD_CALL,
			  "NdisMSynchronizeWithInterrupt(%p): not a registered interrupt",
			  (void *)intr);
		return FALSE;
	}
	set_irql(NP_DIRQL);
	r = ((PKSYNCHRONIZE_ROUTINE)routine)(ctx);
	set_irql(old);
	return r;
}

/* ---- timers ---------------------------------------------------------------------- */

static struct np_timer *timer_slot(struct np_adapter *a, PVOID obj, int create)
{
	struct np_timer *free_slot = NULL;
	int i;

	for (i = 0; i < NP_MAX_TIMERS; i++) {
		if (a->timers[i].obj == obj)
			return &a->timers[i];
		if (!a->timers[i].obj && !free_slot)
			free_slot = &a->timers[i];
	}
	if (!create)
		np_verify(&a->ctx, NP_VIOL_BAD_CALL,
			  "timer %p was never initialised", obj);
	else if (!free_slot)
		np_verify(&a->ctx, NP_VIOL_BAD_CALL,
			  "timer %p: more than %d timers per adapter", obj,
			  NP_MAX_TIMERS);
	if (!create || !free_slot)
		return NULL;
	free_slot->obj = obj;
	return free_slot;
}

/*
 * NDIS has no call that frees a timer: its memory going away is the end of
 * it.  Freeing memory that holds an armed timer is a bug Windows' Driver
 * Verifier stops on; here it is reported, and the timer never fires.
 */
static void timers_freed(struct np_adapter *a, uintptr_t va, size_t len,
			 const char *fn)
{
	int i;

	for (i = 0; i < NP_MAX_TIMERS; i++) {
		struct np_timer *t = &a->timers[i];
		uintptr_t at = (uintptr_t)t->obj;

		if (!t->obj || at < va || at - va >= len)
			continue;
		if (t->due_ns)
			np_verify(&a->ctx, NP_VIOL_BAD_FREE,
				  "%s(%p): frees timer %p while it is armed (cancel it first)",
				  fn, (void *)va, t->obj);
		memset(t, 0, sizeof(*t));
	}
}

static void timer_init(struct np_adapter *a, PVOID obj,
		       PNDIS_TIMER_FUNCTION fn, PVOID ctx)
{
	struct np_timer *t = timer_slot(a, obj, 1);

	if (!t)
		return;
	t->fn = fn;
	t->ctx = ctx;
	t->due_ns = 0;
	t->period_ms = 0;
}

static void timer_set(struct np_adapter *a, PVOID obj, UINT ms, UINT period)
{
	struct np_timer *t = a ? timer_slot(a, obj, 0) : NULL;

	if (!t)
		return;
	t->due_ns = np_now_ns() + ms * 1000000ULL;
	t->period_ms = period;
}

static BOOLEAN timer_cancel(struct np_adapter *a, PVOID obj)
{
	struct np_timer *t = a ? timer_slot(a, obj, 0) : NULL;
	BOOLEAN was;

	if (!t)
		return FALSE;
	was = t->due_ns != 0;
	t->due_ns = 0;
	t->period_ms = 0;
	return was;
}

NDISAPI VOID NdisMInitializeTimer(PNDIS_MINIPORT_TIMER timer,
				  NDIS_HANDLE adapter,
				  PNDIS_TIMER_FUNCTION fn, PVOID ctx)
{
	struct np_adapter *a = adapter_or_verify(adapter, __func__);

	if (!a)
		return;
	memset(timer, 0, sizeof(*timer));
	timer->MiniportTimerFunction = fn;
	timer->MiniportTimerContext = ctx;
	timer->Miniport = &a->block;
	timer_init(a, timer, fn, ctx);
}

NDISAPI VOID NdisMSetTimer(PNDIS_MINIPORT_TIMER timer, UINT ms)
{
	timer_set(np_adapter_from_handle(timer->Miniport), timer, ms, 0);
}

NDISAPI VOID NdisMSetPeriodicTimer(PNDIS_MINIPORT_TIMER timer, UINT ms)
{
	timer_set(np_adapter_from_handle(timer->Miniport), timer, ms, ms);
}

NDISAPI VOID NdisMCancelTimer(PNDIS_MINIPORT_TIMER timer, PBOOLEAN cancelled)
{
	*cancelled = timer_cancel(np_adapter_from_handle(timer->Miniport), timer);
}

/* NDIS_TIMER carries no adapter: it belongs to the adapter that set it up. */
NDISAPI VOID NdisInitializeTimer(PNDIS_TIMER timer, PNDIS_TIMER_FUNCTION fn,
				 PVOID ctx)
{
	struct np_adapter *a = np_current_adapter();

	memset(timer, 0, sizeof(*timer));
	timer->Dpc.DeferredRoutine = (PVOID)fn;
	timer->Dpc.DeferredContext = ctx;
	timer->Dpc.SystemArgument1 = a;
	if (a)
		timer_init(a, timer, fn, ctx);
	else
		np_verify(np_current_ctx(), NP_VIOL_BAD_CALL,
			  "NdisInitializeTimer outside an adapter's context");
}

NDISAPI VOID NdisSetTimer(PNDIS_TIMER timer, UINT ms)
{
	timer_set(np_adapter_from_handle(timer->Dpc.SystemArgument1), timer, ms, 0);
}

NDISAPI VOID NdisCancelTimer(PNDIS_TIMER timer, PBOOLEAN cancelled)
{
	*cancelled = timer_cancel(np_adapter_from_handle(timer->Dpc.SystemArgument1),
				  timer);
}

/* ---- time, events, logging, misc ------------------------------------------------ */

NDISAPI VOID NdisStallExecution(UINT us)
{
	KeStallExecutionProcessor(us);
}

NDISAPI VOID NdisMSleep(ULONG us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	np_verify_irql(NP_VIOL_IRQL, PASSIVE_LEVEL, __func__);
	while (nanosleep(&ts, &ts))
		;
}

NDISAPI VOID NdisGetCurrentSystemTime(PLARGE_INTEGER time)
{
	KeQuerySystemTime(time);
}

NDISAPI VOID NdisWriteErrorLogEntry(NDIS_HANDLE adapter, ULONG code,
				    ULONG count, ...)
{
	struct np_image *img = current_image();
	__builtin_ms_va_list ap;
	char line[NP_LOG_LINE];
	size_t n;
	ULONG i;

	(void)adapter;
	if (!img)
		return;
	n = 0;
	/* Fixed text, numbers only: rendered without stdio. */
	{
		static const char hex[] = "0123456789abcdef";
		const char *prefix = "NdisWriteErrorLogEntry: code 0x";
		int shift;

		while (*prefix && n < sizeof(line) - 1)
			line[n++] = *prefix++;
		for (shift = 28; shift >= 0; shift -= 4)
			line[n++] = hex[(code >> shift) & 0xf];
		__builtin_ms_va_start(ap, count);
		for (i = 0; i < count && i < 8; i++) {
			ULONG v = __builtin_va_arg(ap, ULONG);

			line[n++] = ' ';
			line[n++] = '0';
			line[n++] = 'x';
			for (shift = 28; shift >= 0; shift -= 4)
				line[n++] = hex[(v >> shift) & 0xf];
		}
		__builtin_ms_va_end(ap);
	}
	line[n++] = '\n';
	np_log_append(&img->log, line, n);
}

NDISAPI VOID NdisMRegisterAdapterShutdownHandler(NDIS_HANDLE adapter,
						 PVOID ctx,
						 ADAPTER_SHUTDOWN_HANDLER fn)
{
	struct np_adapter *a = adapter_or_verify(adapter, __func__);

	if (!a)
		return;
	a->shutdown_ctx = ctx;
	a->shutdown_fn = fn;
}

NDISAPI VOID NdisMDeregisterAdapterShutdownHandler(NDIS_HANDLE adapter)
{
	struct np_adapter *a = adapter_or_verify(adapter, __func__);

	if (a)
		a->shutdown_fn = NULL;
}

/* Ports are addresses the driver hands to READ/WRITE_PORT_*; see hal.c. */
NDISAPI NDIS_STATUS NdisMRegisterIoPortRange(PVOID *port_offset,
					     NDIS_HANDLE adapter, UINT port,
					     UINT count)
{
	struct np_adapter *a = adapter_or_verify(adapter, __func__);

	if (!a || !count || port + count < port)
		return NDIS_STATUS_FAILURE;
	a->port_base = port;
	a->port_count = count;
	*port_offset = (PVOID)(uintptr_t)port;
	return NDIS_STATUS_SUCCESS;
}

NDISAPI VOID NdisMDeregisterIoPortRange(NDIS_HANDLE adapter, UINT port,
					UINT count, PVOID port_offset)
{
	struct np_adapter *a = adapter_or_verify(adapter, __func__);

	(void)port;
	(void)count;
	(void)port_offset;
	if (a)
		a->port_count = 0;
}

NDISAPI VOID NdisInitializeEvent(PNDIS_EVENT event)
{
	memset(event, 0, sizeof(*event));
}

NDISAPI VOID NdisSetEvent(PNDIS_EVENT event)
{
	__atomic_store_n(&event->Event.Header.SignalState, 1, __ATOMIC_RELEASE);
}

NDISAPI VOID NdisResetEvent(PNDIS_EVENT event)
{
	__atomic_store_n(&event->Event.Header.SignalState, 0, __ATOMIC_RELEASE);
}

/* ms == 0 waits for ever; the watchdog bounds that like any other hang. */
NDISAPI BOOLEAN NdisWaitEvent(PNDIS_EVENT event, UINT ms)
{
	const struct timespec tick = { 0, 1000000 };
	uint64_t until = np_now_ns() + ms * 1000000ULL;

	np_verify_irql(NP_VIOL_IRQL, PASSIVE_LEVEL, __func__);
	while (!__atomic_load_n(&event->Event.Header.SignalState, __ATOMIC_ACQUIRE)) {
		if (ms && np_now_ns() >= until)
			return FALSE;
		nanosleep(&tick, NULL);
	}
	return TRUE;
}

NDISAPI VOID NdisInitializeString(PNDIS_STRING dst, PUCHAR src)
{
	struct np_arena *arena = np_current_arena();
	size_t n = strlen((const char *)src), i;

	dst->Length = dst->MaximumLength = 0;
	dst->Buffer = NULL;
	if (!arena || n > 32766)
		return;
	dst->Buffer = np_arena_alloc(arena, (n + 1) * 2, TAG_NDIS);
	if (!dst->Buffer)
		return;
	for (i = 0; i < n; i++)
		dst->Buffer[i] = src[i];
	dst->Buffer[n] = 0;
	dst->Length = (USHORT)(n * 2);
	dst->MaximumLength = (USHORT)(n * 2 + 2);
}

NDISAPI VOID NdisInitUnicodeString(PNDIS_STRING dst, PCWSTR src)
{
	RtlInitUnicodeString(dst, src);
}

static WCHAR fold(WCHAR c)
{
	return c >= 'a' && c <= 'z' ? (WCHAR)(c - 32) : c;
}

BOOLEAN np_ustr_equal(PCUNICODE_STRING a, PCUNICODE_STRING b, BOOLEAN ci)
{
	size_t i;

	if (a->Length != b->Length)
		return FALSE;
	for (i = 0; i < a->Length / 2u; i++) {
		WCHAR x = a->Buffer[i], y = b->Buffer[i];

		if (ci ? fold(x) != fold(y) : x != y)
			return FALSE;
	}
	return TRUE;
}

NDISAPI BOOLEAN NdisEqualString(PNDIS_STRING a, PNDIS_STRING b,
				BOOLEAN case_insensitive)
{
	return np_ustr_equal(a, b, case_insensitive);
}

/*
 * Work items run at PASSIVE_LEVEL after the current call, like timers, in
 * the order they were scheduled: Windows hands them to ExQueueWorkItem,
 * whose queue is first in, first out.
 */
NDISAPI NDIS_STATUS NdisScheduleWorkItem(PNDIS_WORK_ITEM item)
{
	struct np_adapter *a = np_current_adapter();

	if (!a || a->nwork >= NP_ARRAY_SIZE(a->work)) {
		np_verify(np_current_ctx(), NP_VIOL_BAD_CALL,
			  "NdisScheduleWorkItem(%p): no adapter context or queue full",
			  (void *)item);
		return NDIS_STATUS_RESOURCES;
	}
	a->work[a->nwork++] = item;
	return NDIS_STATUS_SUCCESS;
}

size_t np_utf16_len(PCWSTR s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

static const struct np_export ndis_exports[] = {
	NP_EXPORT(NdisAcquireSpinLock),
	NP_EXPORT(NdisAdjustBufferLength),
	NP_EXPORT(NdisAllocateBuffer),
	NP_EXPORT(NdisAllocateBufferPool),
	NP_EXPORT(NdisAllocateMemory),
	NP_EXPORT(NdisAllocateMemoryWithTag),
	NP_EXPORT(NdisAllocatePacket),
	NP_EXPORT(NdisAllocatePacketPool),
	NP_EXPORT(NdisAllocatePacketPoolEx),
	NP_EXPORT(NdisAllocateSpinLock),
	NP_EXPORT(NdisCancelTimer),
	NP_EXPORT(NdisCloseConfiguration),
	NP_EXPORT(NdisCopyFromPacketToPacket),
	NP_EXPORT(NdisDprAcquireSpinLock),
	NP_EXPORT(NdisDprReleaseSpinLock),
	NP_EXPORT(NdisEqualString),
	NP_EXPORT(NdisFreeBuffer),
	NP_EXPORT(NdisFreeBufferPool),
	NP_EXPORT(NdisFreeMemory),
	NP_EXPORT(NdisFreePacket),
	NP_EXPORT(NdisFreePacketPool),
	NP_EXPORT(NdisFreeSpinLock),
	NP_EXPORT(NdisGetCurrentSystemTime),
	NP_EXPORT(NdisGetFirstBufferFromPacketSafe),
	NP_EXPORT(NdisGetSharedDataAlignment),
	NP_EXPORT(NdisInitUnicodeString),
	NP_EXPORT(NdisInitializeEvent),
	NP_EXPORT(NdisInitializeString),
	NP_EXPORT(NdisInitializeTimer),
	NP_EXPORT(NdisMAllocateMapRegisters),
	NP_EXPORT(NdisMAllocateSharedMemory),
	NP_EXPORT(NdisMCancelTimer),
	NP_EXPORT(NdisMDeregisterAdapterShutdownHandler),
	NP_EXPORT(NdisMDeregisterInterrupt),
	NP_EXPORT(NdisMDeregisterIoPortRange),
	NP_EXPORT(NdisMFreeMapRegisters),
	NP_EXPORT(NdisMFreeSharedMemory),
	NP_EXPORT(NdisMInitializeTimer),
	NP_EXPORT(NdisMInitializeWrapper),
	NP_EXPORT(NdisMRegisterAdapterShutdownHandler),
	NP_EXPORT(NdisMRegisterInterrupt),
	NP_EXPORT(NdisMRegisterIoPortRange),
	NP_EXPORT(NdisMRegisterMiniport),
	NP_EXPORT(NdisMSetAttributes),
	NP_EXPORT(NdisMSetAttributesEx),
	NP_EXPORT(NdisMSetPeriodicTimer),
	NP_EXPORT(NdisMSetTimer),
	NP_EXPORT(NdisMSleep),
	NP_EXPORT(NdisMSynchronizeWithInterrupt),
	NP_EXPORT(NdisOpenConfiguration),
	NP_EXPORT(NdisPacketPoolUsage),
	NP_EXPORT(NdisReadConfiguration),
	NP_EXPORT(NdisReadNetworkAddress),
	NP_EXPORT(NdisReleaseSpinLock),
	NP_EXPORT(NdisResetEvent),
	NP_EXPORT(NdisScheduleWorkItem),
	NP_EXPORT(NdisSetEvent),
	NP_EXPORT(NdisSetTimer),
	NP_EXPORT(NdisStallExecution),
	NP_EXPORT(NdisTerminateWrapper),
	NP_EXPORT(NdisWaitEvent),
	NP_EXPORT(NdisWriteConfiguration),
	NP_EXPORT(NdisWriteErrorLogEntry),
};

const struct np_module np_ndis_module = {
	.name = "NDIS.SYS",
	.exports = ndis_exports,
	.count = NP_ARRAY_SIZE(ndis_exports),
};
