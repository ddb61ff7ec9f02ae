/* SPDX-License-Identifier: MIT */
/*
 * usehelper.sys - imports from nphelper.dll, a helper DLL that must be
 * found beside it: NpHelperChecksum by name, NpHelperVersion by ordinal 2
 * (usehelper.nphelper.def).  DriverEntry prints what they return;
 * MiniportInitialize checksums the buffer at "ChecksumAddress" (default: a
 * good one) through the helper, so a bad address faults inside the DLL.
 */
#include "testdrv.h"

NDIS_FN(ULONG) NpHelperChecksum(const UCHAR *buf, ULONG len);
NDIS_FN(ULONG) NpHelperVersion(VOID);

static const UCHAR sample[] = "ndisproxy";

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	const UCHAR *at;

	if (testdrv_select_medium(selected, media, count, adapter))
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	at = (const UCHAR *)(ULONG_PTR)testdrv_param(config, L"ChecksumAddress", 0);
	DbgPrint("usehelper.sys: checksum %u\n",
		 NpHelperChecksum(at ? at : sample, sizeof(sample) - 1));
	return NDIS_STATUS_SUCCESS;
}

NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	NDIS51_MINIPORT_CHARACTERISTICS chars = { 0 };

	DbgPrint("usehelper.sys: version %x checksum %u\n", NpHelperVersion(),
		 NpHelperChecksum(sample, sizeof(sample) - 1));
	return testdrv_register(driver, path, &chars);
}
