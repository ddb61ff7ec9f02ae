/* SPDX-License-Identifier: MIT */
/*
 * kernelapi.sys - DriverEntry uses the kernel, HAL and NDIS helpers that
 * no other bundled driver imports (pool, strings, the C runtime, time,
 * events) and prints one "name=value" line per result, each a value the
 * test knows; then it registers.  adapterapi.sys is its counterpart for the
 * calls that need an adapter.
 */
#include "testdrv.h"

#define KERNELAPI_TAG	((ULONG)'K' | (ULONG)'a' << 8 | (ULONG)'p' << 16 | (ULONG)'i' << 24)

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	return testdrv_select_medium(selected, media, count, adapter) ?
		NDIS_STATUS_UNSUPPORTED_MEDIA : NDIS_STATUS_SUCCESS;
}

static VOID pool(VOID)
{
	NDIS_PHYSICAL_ADDRESS highest = { .QuadPart = -1 };
	PUCHAR a = ExAllocatePoolWithTag(0, 100, KERNELAPI_TAG);
	PUCHAR b = ExAllocatePoolWithTag(0, 50, KERNELAPI_TAG);
	PVOID c = NULL;
	NDIS_STATUS status = NdisAllocateMemory(&c, 64, 0, highest);

	if (a && b) {
		/* Distinct blocks, each wholly writable. */
		NdisFillMemory(a, 100, 0xa5);
		NdisFillMemory(b, 50, 0x5a);
	}
	DbgPrint("pool=%s\n", a && b && a != b && a[99] == 0xa5 ? "ok" : "failed");
	DbgPrint("ndis_memory=%08lx\n", (ULONG)status);
	if (a)
		ExFreePoolWithTag(a, KERNELAPI_TAG);
	if (b)
		ExFreePool(b);
	if (c)
		NdisFreeMemory(c, 64, 0);
}

static VOID strings(VOID)
{
	WCHAR buffer[4];
	UNICODE_STRING lower, upper, copy = { 0, sizeof(buffer), buffer };
	NDIS_STRING made;
	ANSI_STRING ansi;

	RtlInitAnsiString(&ansi, "ansi text");
	DbgPrint("ansi=%u/%u\n", ansi.Length, ansi.MaximumLength);
	RtlInitUnicodeString(&lower, L"Speed");
	RtlInitUnicodeString(&upper, L"SPEED");
	DbgPrint("rtl_equal=%u/%u\n", RtlEqualUnicodeString(&lower, &upper, TRUE),
		 RtlEqualUnicodeString(&lower, &upper, FALSE));
	DbgPrint("ndis_equal=%u/%u\n", NdisEqualString(&lower, &upper, TRUE),
		 NdisEqualString(&lower, &upper, FALSE));
	/* Cut to the destination's 8 bytes: "Spee". */
	RtlCopyUnicodeString(&copy, &lower);
	DbgPrint("copy=%wZ/%u\n", &copy, copy.Length);
	NdisInitializeString(&made, (PUCHAR)"made");
	DbgPrint("initialize=%wZ/%u\n", &made, made.Length);
	if (made.Buffer)
		NdisFreeMemory(made.Buffer, made.MaximumLength, 0);
}

static VOID c_runtime(VOID)
{
	CHAR text[8] = "abcdef";
	int order = memcmp("abc", "abd", 3);

	memmove(text + 1, text, 5);		/* overlapping: "aabcde" */
	DbgPrint("memmove=%s\n", text);
	DbgPrint("memcmp=%d\n", order < 0 ? -1 : order > 0 ? 1 : 0);
	DbgPrint("strlen=%lu\n", (ULONG)strlen("12345"));
}

static VOID clocks(VOID)
{
	LARGE_INTEGER now, frequency, before, after;
	KSPIN_LOCK lock = 5;

	NdisGetCurrentSystemTime(&now);
	DbgPrint("system_time=%I64u\n", (ULONGLONG)now.QuadPart);
	DbgPrint("time_increment=%lu\n", KeQueryTimeIncrement());
	before = KeQueryPerformanceCounter(&frequency);
	KeStallExecutionProcessor(2000);
	after = KeQueryPerformanceCounter(NULL);
	DbgPrint("frequency=%I64u\n", (ULONGLONG)frequency.QuadPart);
	DbgPrint("stalled=%I64u\n", (ULONGLONG)(after.QuadPart - before.QuadPart));
	KeInitializeSpinLock(&lock);
	DbgPrint("spin_lock=%lu\n", (ULONG)lock);
}

/*
 * The two clocks x64 Windows inlines from KUSER_SHARED_DATA: the system
 * time, and the tick count across a stall of at least two ticks, each read
 * with the performance counter (CLOCK_MONOTONIC in ns) right after it.
 */
static VOID kuser_clocks(VOID)
{
	LARGE_INTEGER system, system_ndis, ticks[2], counter[2];

	KeQuerySystemTime(&system);
	NdisGetCurrentSystemTime(&system_ndis);
	DbgPrint("ke_system_time=%I64u/%I64u\n", (ULONGLONG)system.QuadPart,
		 (ULONGLONG)system_ndis.QuadPart);
	KeQueryTickCount(&ticks[0]);
	counter[0] = KeQueryPerformanceCounter(NULL);
	KeStallExecutionProcessor(2 * KeQueryTimeIncrement() / 10 + 1000);
	KeQueryTickCount(&ticks[1]);
	counter[1] = KeQueryPerformanceCounter(NULL);
	DbgPrint("tick_count=%I64u/%I64u\n", (ULONGLONG)ticks[0].QuadPart,
		 (ULONGLONG)ticks[1].QuadPart);
	DbgPrint("tick_counter=%I64u/%I64u\n", (ULONGLONG)counter[0].QuadPart,
		 (ULONGLONG)counter[1].QuadPart);
}

static VOID events(VOID)
{
	NDIS_EVENT event;
	BOOLEAN unset, set, reset;

	NdisInitializeEvent(&event);
	unset = NdisWaitEvent(&event, 1);
	NdisSetEvent(&event);
	set = NdisWaitEvent(&event, 1);
	NdisResetEvent(&event);
	reset = NdisWaitEvent(&event, 1);
	DbgPrint("events=%u/%u/%u\n", unset, set, reset);
}

NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	NDIS51_MINIPORT_CHARACTERISTICS chars = { 0 };

	pool();
	strings();
	c_runtime();
	clocks();
	kuser_clocks();
	events();
	DbgPrintEx(0, 0, "dbgprintex=%lu\n", 42UL);
	return testdrv_register(driver, path, &chars);
}
