/* SPDX-License-Identifier: MIT */
/*
 * ntoskrnl.c - the ntoskrnl.exe exports miniports import.
 *
 * Same rules as ndis.c: these run on driver stacks and may be abandoned, so
 * memory comes from the current context's arena and DbgPrint renders with
 * np_winfmt into the image's log ring, never through stdio.
 *
 * The C runtime functions keep glibc's implementations (no locks, no
 * allocation) behind ms_abi wrappers: the names belong to glibc on this side.
 */
#include <string.h>
#include <time.h>

#include "np.h"
#include "np_winfmt.h"

#define NP_EPOCH_DELTA	116444736000000000ULL

static NDISAPI PVOID np_ntos_memcpy(PVOID d, const void *s, SIZE_T n)
{
	return memcpy(d, s, n);
}

static NDISAPI PVOID np_ntos_memmove(PVOID d, const void *s, SIZE_T n)
{
	return memmove(d, s, n);
}

static NDISAPI PVOID np_ntos_memset(PVOID d, int c, SIZE_T n)
{
	return memset(d, c, n);
}

static NDISAPI int np_ntos_memcmp(const void *a, const void *b, SIZE_T n)
{
	return memcmp(a, b, n);
}

static NDISAPI SIZE_T np_ntos_strlen(PCSTR s)
{
	return strlen(s);
}

NDISAPI SIZE_T RtlCompareMemory(const void *a, const void *b, SIZE_T n)
{
	const UCHAR *x = a, *y = b;
	SIZE_T i;

	for (i = 0; i < n && x[i] == y[i]; i++)
		;
	return i;
}

static void log_line(const char *fmt, __builtin_ms_va_list ap)
{
	struct np_ctx *c = np_current_ctx();
	char buf[512];
	size_t n;

	if (!c)
		return;
	n = np_winfmt(buf, sizeof(buf), fmt, ap);
	np_log_append(&c->image->log, buf, n);
}

NDISAPI ULONG DbgPrint(PCSTR format, ...)
{
	__builtin_ms_va_list ap;

	__builtin_ms_va_start(ap, format);
	log_line(format, ap);
	__builtin_ms_va_end(ap);
	return STATUS_SUCCESS;
}

NDISAPI ULONG DbgPrintEx(ULONG component, ULONG level, PCSTR format, ...)
{
	__builtin_ms_va_list ap;

	(void)component;
	(void)level;
	__builtin_ms_va_start(ap, format);
	log_line(format, ap);
	__builtin_ms_va_end(ap);
	return STATUS_SUCCESS;
}

/* Also what KUSER_SHARED_DATA.SystemTime reads (emulate.c): signal-safe. */
uint64_t np_system_time(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return NP_EPOCH_DELTA + (uint64_t)ts.tv_sec * 10000000ULL +
	       (uint64_t)ts.tv_nsec / 100;
}

NDISAPI VOID KeQuerySystemTime(PLARGE_INTEGER time)
{
	time->QuadPart = (LONGLONG)np_system_time();
}

NDISAPI VOID KeQueryTickCount(PLARGE_INTEGER ticks)
{
	ticks->QuadPart = (LONGLONG)(np_now_ns() / 100 / NP_TICK_100NS);
}

NDISAPI ULONG KeQueryTimeIncrement(VOID)
{
	return NP_TICK_100NS;
}

NDISAPI VOID RtlInitUnicodeString(PUNICODE_STRING dst, PCWSTR src)
{
	size_t n = src ? np_utf16_len(src, 32766) : 0;

	dst->Buffer = (PWSTR)src;
	dst->Length = (USHORT)(n * 2);
	dst->MaximumLength = src ? (USHORT)(n * 2 + 2) : 0;
}

NDISAPI VOID RtlInitAnsiString(PANSI_STRING dst, PCSTR src)
{
	size_t n = src ? strnlen(src, 65534) : 0;

	dst->Buffer = (PCHAR)src;
	dst->Length = (USHORT)n;
	dst->MaximumLength = src ? (USHORT)(n + 1) : 0;
}

NDISAPI VOID RtlCopyUnicodeString(PUNICODE_STRING dst, PCUNICODE_STRING src)
{
	USHORT n;

	if (!src) {
		dst->Length = 0;
		return;
	}
	n = src->Length < dst->MaximumLength ? src->Length : dst->MaximumLength;
	memmove(dst->Buffer, src->Buffer, n);
	dst->Length = n;
	if (n + 2 <= dst->MaximumLength)
		dst->Buffer[n / 2] = 0;
}

NDISAPI BOOLEAN RtlEqualUnicodeString(PCUNICODE_STRING a, PCUNICODE_STRING b,
				      BOOLEAN case_insensitive)
{
	return np_ustr_equal(a, b, case_insensitive);
}

NDISAPI PVOID ExAllocatePoolWithTag(int pool_type, SIZE_T len, ULONG tag)
{
	struct np_arena *arena = np_current_arena();

	(void)pool_type;
	return arena ? np_arena_alloc(arena, len, tag) : NULL;
}

NDISAPI VOID ExFreePoolWithTag(PVOID va, ULONG tag)
{
	(void)tag;
	np_free_pool(va, "ExFreePoolWithTag");
}

NDISAPI VOID ExFreePool(PVOID va)
{
	np_free_pool(va, "ExFreePool");
}

NDISAPI VOID KeInitializeSpinLock(PKSPIN_LOCK lock)
{
	*lock = 0;
}

/* The driver declared itself broken: end the call as a fault would. */
NDISAPI VOID KeBugCheckEx(ULONG code, ULONG_PTR p1, ULONG_PTR p2,
			  ULONG_PTR p3, ULONG_PTR p4)
{
	struct np_thread *t = np_thread_current();

	if (!t || !atomic_load(&t->in_driver))
		return;
	t->fault.code = NP_FAULT_BUGCHECK;
	t->fault.signo = 0;
	t->fault.entry = t->entry;
	t->fault.irql = t->irql;
	t->fault.pc = (uintptr_t)__builtin_return_address(0);
	t->fault.sp = (uintptr_t)__builtin_frame_address(0);
	t->fault.bugcheck[0] = code;
	t->fault.bugcheck[1] = p1;
	t->fault.bugcheck[2] = p2;
	t->fault.bugcheck[3] = p3;
	t->fault.bugcheck[4] = p4;
	np_abort_to(t, NP_FAULT_BUGCHECK);
}

static const struct np_export ntoskrnl_exports[] = {
	NP_EXPORT(DbgPrint),
	NP_EXPORT(DbgPrintEx),
	NP_EXPORT(ExAllocatePoolWithTag),
	NP_EXPORT(ExFreePool),
	NP_EXPORT(ExFreePoolWithTag),
	NP_EXPORT(KeBugCheckEx),
	NP_EXPORT(KeInitializeSpinLock),
	NP_EXPORT(KeQuerySystemTime),
	NP_EXPORT(KeQueryTickCount),
	NP_EXPORT(KeQueryTimeIncrement),
	NP_EXPORT(RtlCompareMemory),
	NP_EXPORT(RtlCopyUnicodeString),
	NP_EXPORT(RtlEqualUnicodeString),
	NP_EXPORT(RtlInitAnsiString),
	NP_EXPORT(RtlInitUnicodeString),
	NP_EXPORT_AS("memcmp", np_ntos_memcmp),
	NP_EXPORT_AS("memcpy", np_ntos_memcpy),
	NP_EXPORT_AS("memmove", np_ntos_memmove),
	NP_EXPORT_AS("memset", np_ntos_memset),
	NP_EXPORT_AS("strlen", np_ntos_strlen),
};

const struct np_module np_ntoskrnl_module = {
	.name = "ntoskrnl.exe",
	.exports = ntoskrnl_exports,
	.count = NP_ARRAY_SIZE(ntoskrnl_exports),
};
