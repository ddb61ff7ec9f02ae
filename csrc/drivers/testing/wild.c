/* SPDX-License-Identifier: MIT */
/*
 * wild.sys - MiniportInitialize writes through a wild pointer (the
 * WildAddress parameter, default 0xdead0000), as a buggy driver would.
 */
#include "testdrv.h"

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	volatile ULONG *wild;

	if (testdrv_select_medium(selected, media, count, adapter))
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	wild = (volatile ULONG *)(ULONG_PTR)testdrv_param(config, L"WildAddress",
							  0xdead0000);
	*wild = 0x0badf00d;
	return NDIS_STATUS_SUCCESS;
}

TESTDRV_DRIVER_ENTRY({ 0 })
