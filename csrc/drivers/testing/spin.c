/* SPDX-License-Identifier: MIT */
/*
 * spin.sys - MiniportInitialize never returns: a hung driver, for the
 * watchdog to catch.
 */
#include "testdrv.h"

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	if (testdrv_select_medium(selected, media, count, adapter))
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	for (;;)
		__asm__ volatile("pause");
	return NDIS_STATUS_SUCCESS;
}

TESTDRV_DRIVER_ENTRY({ 0 })
