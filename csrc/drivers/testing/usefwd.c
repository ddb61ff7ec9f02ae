/* SPDX-License-Identifier: MIT */
/*
 * usefwd.sys - imports nphelper.dll!NpHelperForwarded, an export forwarded
 * to NTOSKRNL.RtlCompareMemory: loading must fail naming the forwarder.
 */
#include "testdrv.h"

NDIS_FN(SIZE_T) NpHelperForwarded(const VOID *a, const VOID *b, SIZE_T n);

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	return NpHelperForwarded(media, media, 1) == 1 ? NDIS_STATUS_FAILURE :
							 NDIS_STATUS_SUCCESS;
}

TESTDRV_DRIVER_ENTRY({ 0 })
