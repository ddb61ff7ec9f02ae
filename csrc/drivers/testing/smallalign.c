/* SPDX-License-Identifier: MIT */
/*
 * smallalign.sys - linked with SectionAlignment = FileAlignment = 0x200
 * (WDK builds of x64 drivers often used 0x80), so sections share pages:
 * code with the headers and with writable data, read-only data with
 * writable data.  Sized so that its pages need every combination: r-x,
 * rwx, r-- and rw-.  DriverEntry reads a 12 KiB table in .rdata, counts in
 * .data and fills a buffer in .bss, and prints the result.
 */
#include "testdrv.h"

#define TABLE_WORDS	3072

/* 7 KiB of .text ahead of the code, so code fills pages of its own. */
__attribute__((used, section(".text"), aligned(16)))
static const UCHAR code_padding[7 * 1024] = { 0xcc };

static const ULONG table[TABLE_WORDS] = {
	[0] = 1, [1000] = 2, [2000] = 3, [TABLE_WORDS - 1] = 4,
};
static ULONG calls = 100;
static UCHAR scratch[512];

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	if (testdrv_select_medium(selected, media, count, adapter))
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	return NDIS_STATUS_SUCCESS;
}

NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	NDIS51_MINIPORT_CHARACTERISTICS chars = { 0 };
	ULONG sum = 0, i;

	for (i = 0; i < TABLE_WORDS; i++)
		sum += table[i] * (i + 1);
	for (i = 0; i < sizeof(scratch); i++)
		scratch[i] = (UCHAR)(sum + i);
	calls++;
	DbgPrint("smallalign.sys: sum %u calls %u scratch %u\n", sum, calls,
		 scratch[sizeof(scratch) - 1]);
	return testdrv_register(driver, path, &chars);
}
