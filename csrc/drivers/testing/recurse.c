/* SPDX-License-Identifier: MIT */
/*
 * recurse.sys - MiniportInitialize recurses until it has used RecurseKiB
 * KiB of stack (default 4), measured from its own first frame, so tests can
 * check high-water marks and overflow a small stack on purpose.
 */
#include "testdrv.h"

static ULONG_PTR recurse_top;

static __attribute__((noinline)) ULONG recurse(ULONG_PTR target)
{
	volatile UCHAR frame[512];
	ULONG_PTR here = (ULONG_PTR)frame;

	frame[0] = (UCHAR)here;
	if (recurse_top - here >= target)
		return frame[0];
	return recurse(target) + frame[0];
}

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	volatile UCHAR anchor = 0;
	ULONG kib;

	if (testdrv_select_medium(selected, media, count, adapter))
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	kib = testdrv_param(config, L"RecurseKiB", 4);
	recurse_top = (ULONG_PTR)&anchor;
	DbgPrint("recurse: %lu KiB deep, result %lu\n", kib,
		 recurse((ULONG_PTR)kib * 1024));
	return NDIS_STATUS_SUCCESS;
}

TESTDRV_DRIVER_ENTRY({ 0 })
