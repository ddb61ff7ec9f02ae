/* SPDX-License-Identifier: MIT */
/*
 * cr8.sys - keeps its IRQL the way an MSVC-built x64 driver does.  The DDK
 * makes KeGetCurrentIrql, KeRaiseIrql and KeLowerIrql inline moves from and
 * to CR8 (wdm.h, through __readcr8/__writecr8 of <intrin.h>); in user space
 * each one faults, and the host emulates it against its own IRQL tracking.
 *
 * MiniportInitialize (PASSIVE_LEVEL) raises to DISPATCH_LEVEL inline and,
 * there, calls NdisMSleep, which is PASSIVE_LEVEL only: the verifier must
 * see the raised IRQL.  It lowers again before returning.
 *
 * Private OIDs:
 *   query OID_CR8_SELFCHECK	struct cr8_selfcheck, below, at DISPATCH_LEVEL
 *   query OID_CR8_BENCH	ULONG64[3]: iterations, then nanoseconds for as
 *				many emulated CR8 reads and as many plain
 *				loads ("Iterations" parameter, default 10000)
 *   set   OID_CR8_FORBIDDEN	ULONG 1: mov rax, cr3 (never emulated);
 *				2: mov cr8 of 16 (no such IRQL)
 */
#include <intrin.h>

#include "testdrv.h"

#define OID_CR8_SELFCHECK	0xFF000101U
#define OID_CR8_BENCH		0xFF000102U
#define OID_CR8_FORBIDDEN	0xFF000103U

#define CR8_MAGIC		0x38524331U	/* "1CR8" */
#define DEVICE_IRQL		12	/* a DIRQL, as the host gives interrupts */

struct cr8_selfcheck {
	ULONG magic;
	ULONG at_entry;			/* KeGetCurrentIrql, inline */
	ULONG raised_from;		/* what inline KeRaiseIrql(12) returned */
	ULONG after_raise;		/* inline KeGetCurrentIrql then */
	ULONG hal_after_raise;		/* HAL's KeGetCurrentIrql export then */
	ULONG via_r13;			/* mov r13, cr8: a REX.B destination */
	ULONG after_lower;		/* after inline KeLowerIrql */
	ULONG hal_after_lower;
	ULONG init_irql;		/* in MiniportInitialize */
	ULONG init_raised;		/* there after raising to DISPATCH_LEVEL */
};

static ULONG init_irql, init_raised, iterations = 10000;

/* wdm.h's x64 inlines, as MSVC compiles them. */
static inline KIRQL inline_get_irql(VOID)
{
	return (KIRQL)__readcr8();
}

static inline KIRQL inline_raise_irql(KIRQL irql)
{
	KIRQL old = (KIRQL)__readcr8();

	__writecr8(irql);
	return old;
}

static inline VOID inline_lower_irql(KIRQL irql)
{
	__writecr8(irql);
}

static void selfcheck(struct cr8_selfcheck *c)
{
	register ULONG64 r13 __asm__("r13");
	KIRQL old;

	c->magic = CR8_MAGIC;
	c->at_entry = inline_get_irql();
	old = inline_raise_irql(DEVICE_IRQL);
	c->raised_from = old;
	c->after_raise = inline_get_irql();
	c->hal_after_raise = KeGetCurrentIrql();
	__asm__ volatile("mov %%cr8, %0" : "=r"(r13));
	c->via_r13 = (ULONG)r13;
	inline_lower_irql(old);
	c->after_lower = inline_get_irql();
	c->hal_after_lower = KeGetCurrentIrql();
	c->init_irql = init_irql;
	c->init_raised = init_raised;
}

static NDIS_STATUS NDISAPI cr8_query(NDIS_HANDLE ctx, NDIS_OID oid, PVOID buf,
		ULONG len, PULONG written, PULONG needed)
{
	ULONG size = oid == OID_CR8_SELFCHECK ? sizeof(struct cr8_selfcheck) :
		     oid == OID_CR8_BENCH ? 3 * sizeof(ULONG64) : 0;
	NDIS_STATUS status = testdrv_fits(size, len, written, needed);

	if (status != NDIS_STATUS_SUCCESS)
		return status;
	if (oid == OID_CR8_SELFCHECK)
		selfcheck(buf);
	else
		TESTDRV_BENCH((PULONG64)buf, iterations, __readcr8());
	*written = size;
	return NDIS_STATUS_SUCCESS;
}

static NDIS_STATUS NDISAPI cr8_set(NDIS_HANDLE ctx, NDIS_OID oid, PVOID buf,
				   ULONG len, PULONG read, PULONG needed)
{
	ULONG64 v;

	*read = 0;
	*needed = sizeof(ULONG);
	if (oid != OID_CR8_FORBIDDEN)
		return NDIS_STATUS_NOT_SUPPORTED;
	if (len < sizeof(ULONG))
		return NDIS_STATUS_INVALID_LENGTH;
	if (*(PULONG)buf == 1) {
		__asm__ volatile("mov %%cr3, %0" : "=r"(v));
		testdrv_plain_value = v;
	} else if (*(PULONG)buf == 2) {
		__writecr8(16);
	}
	*read = sizeof(ULONG);
	return NDIS_STATUS_SUCCESS;
}

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	KIRQL old;

	if (testdrv_select_medium(selected, media, count, adapter))
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	iterations = testdrv_param(config, L"Iterations", iterations);
	init_irql = inline_get_irql();
	old = inline_raise_irql(DISPATCH_LEVEL);
	init_raised = inline_get_irql();
	NdisMSleep(1);			/* too high an IRQL: the verifier says so */
	inline_lower_irql(old);
	return NDIS_STATUS_SUCCESS;
}

NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	NDIS51_MINIPORT_CHARACTERISTICS chars = { 0 };

	chars.QueryInformationHandler = cr8_query;
	chars.SetInformationHandler = cr8_set;
	return testdrv_register(driver, path, &chars);
}
