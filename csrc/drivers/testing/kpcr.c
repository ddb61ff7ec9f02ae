/* SPDX-License-Identifier: MIT */
/*
 * kpcr.sys - finds its thread and processor the way an MSVC-built x64
 * driver does: the DDK's KeGetCurrentThread (and PsGetCurrentThread),
 * KeGetPcr and KeGetCurrentProcessorNumber are inline gs: loads from the
 * KPCR (<intrin.h>'s __readgsqword and friends, written out here as the
 * instructions MSVC emits for them: mingw's versions trip GCC's bounds
 * check on a constant address).  The host gives every
 * thread that calls drivers a KPCR of its own; the loads run natively.
 *
 * Private OIDs:
 *   query OID_KPCR_SELFCHECK	struct kpcr_selfcheck, below
 *   query OID_KPCR_BENCH	ULONG64[3]: iterations, then nanoseconds for as
 *				many inline KeGetCurrentThread and as many
 *				plain loads ("Iterations" parameter, default
 *				10000)
 *   set   OID_KPCR_FORBIDDEN	ULONG 1: a gs: load past the pages the host
 *				provides; 2: a store to the KPCR
 */
#include "testdrv.h"

#define OID_KPCR_SELFCHECK	0xFF000301U
#define OID_KPCR_BENCH		0xFF000302U
#define OID_KPCR_FORBIDDEN	0xFF000303U

#define KPCR_MAGIC		0x5243504bU	/* "KPCR" */

struct kpcr_selfcheck {
	ULONG magic;
	ULONG legacy_number;		/* __readgsbyte(0x184) */
	ULONG number;			/* __readgsdword(0x1a4) */
	USHORT major, minor;		/* __readgsword(0x60), (0x62) */
	ULONG64 self;			/* __readgsqword(0x18): KeGetPcr() */
	ULONG64 prcb;			/* __readgsqword(0x20) */
	ULONG64 thread;			/* __readgsqword(0x188): KeGetCurrentThread() */
	ULONG64 entry_thread;		/* the same, read in DriverEntry */
	ULONG thread_type;		/* the KTHREAD's DISPATCHER_HEADER.Type */
	ULONG mxcsr;			/* __readgsdword(0x180): KPRCB.MxCsr */
};

static ULONG64 entry_thread;
static ULONG iterations = 10000;

/* A load from gs:off into a 64-bit (q) or 32-bit (k, zero-extending) register. */
#define GS_LOAD(insn, width, off)					\
({									\
	ULONG64 v_;							\
	__asm__ volatile(insn " %%gs:%c1, %" width "0" : "=r"(v_) : "i"(off));	\
	v_;								\
})
#define readgsqword(off)	GS_LOAD("movq", "q", off)
#define readgsdword(off)	((ULONG)GS_LOAD("movl", "k", off))
#define readgsword(off)		((USHORT)GS_LOAD("movzwl", "k", off))
#define readgsbyte(off)		((UCHAR)GS_LOAD("movzbl", "k", off))

/* wdm.h's x64 inlines, as MSVC compiles them. */
static inline PVOID inline_current_thread(VOID)
{
	return (PVOID)readgsqword(0x188);
}

static inline ULONG inline_processor_number(VOID)
{
	return readgsbyte(0x184);
}

static void selfcheck(struct kpcr_selfcheck *c)
{
	c->magic = KPCR_MAGIC;
	c->legacy_number = inline_processor_number();
	c->number = readgsdword(0x1a4);
	c->major = readgsword(0x60);
	c->minor = readgsword(0x62);
	c->self = readgsqword(0x18);
	c->prcb = readgsqword(0x20);
	c->thread = (ULONG64)inline_current_thread();
	c->entry_thread = entry_thread;
	c->thread_type = *(volatile UCHAR *)c->thread;
	c->mxcsr = readgsdword(0x180);
}

static NDIS_STATUS NDISAPI kpcr_query(NDIS_HANDLE ctx, NDIS_OID oid, PVOID buf,
		ULONG len, PULONG written, PULONG needed)
{
	ULONG size = oid == OID_KPCR_SELFCHECK ? sizeof(struct kpcr_selfcheck) :
		     oid == OID_KPCR_BENCH ? 3 * sizeof(ULONG64) : 0;
	NDIS_STATUS status = testdrv_fits(size, len, written, needed);

	if (status != NDIS_STATUS_SUCCESS)
		return status;
	if (oid == OID_KPCR_SELFCHECK)
		selfcheck(buf);
	else
		TESTDRV_BENCH((PULONG64)buf, iterations, readgsqword(0x188));
	*written = size;
	return NDIS_STATUS_SUCCESS;
}

static NDIS_STATUS NDISAPI kpcr_set(NDIS_HANDLE ctx, NDIS_OID oid, PVOID buf,
				    ULONG len, PULONG read, PULONG needed)
{
	*read = 0;
	*needed = sizeof(ULONG);
	if (oid != OID_KPCR_FORBIDDEN)
		return NDIS_STATUS_NOT_SUPPORTED;
	if (len < sizeof(ULONG))
		return NDIS_STATUS_INVALID_LENGTH;
	if (*(PULONG)buf == 1)
		testdrv_plain_value = readgsqword(0x3000);
	else if (*(PULONG)buf == 2)
		__asm__ volatile("movq %0, %%gs:0x188" : : "r"(0ULL));
	*read = sizeof(ULONG);
	return NDIS_STATUS_SUCCESS;
}

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	if (testdrv_select_medium(selected, media, count, adapter))
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	iterations = testdrv_param(config, L"Iterations", iterations);
	return NDIS_STATUS_SUCCESS;
}

NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	NDIS51_MINIPORT_CHARACTERISTICS chars = { 0 };

	entry_thread = (ULONG64)inline_current_thread();
	chars.QueryInformationHandler = kpcr_query;
	chars.SetInformationHandler = kpcr_set;
	return testdrv_register(driver, path, &chars);
}
