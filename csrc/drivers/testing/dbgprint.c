/* SPDX-License-Identifier: MIT */
/*
 * dbgprint.sys - DriverEntry prints one line per Windows format the host
 * must render by Windows rules, each a known value, then registers.
 */
#include "testdrv.h"

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	return testdrv_select_medium(selected, media, count, adapter) ?
		NDIS_STATUS_UNSUPPORTED_MEDIA : NDIS_STATUS_SUCCESS;
}

NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	NDIS51_MINIPORT_CHARACTERISTICS chars = { 0 };
	static const WCHAR wide[] = L"wide \x00e9\x20ac";
	UNICODE_STRING counted;

	RtlInitUnicodeString(&counted, L"counted string");
	counted.Length = 14;	/* "counted" only: %wZ must honour Length */
	DbgPrint("lu=%lu then=%s\n", (ULONG)4000000000U, "next");
	DbgPrint("ld=%ld\n", (LONG)-5);
	DbgPrint("I64x=%I64x\n", 0xfedcba9876543210ULL);
	DbgPrint("I64u=%I64u\n", 18446744073709551615ULL);
	DbgPrint("ws=%ws\n", wide);
	DbgPrint("wZ=%wZ\n", &counted);
	DbgPrint("p=%p\n", (PVOID)(ULONG_PTR)0x1234);
	DbgPrint("s=%s c=%c x=%08x\n", "narrow", 'Z', 0xbeefU);
	DbgPrint("path=%wZ\n", path);
	return testdrv_register(driver, path, &chars);
}
