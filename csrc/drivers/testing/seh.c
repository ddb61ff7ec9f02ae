/* SPDX-License-Identifier: MIT */
/*
 * seh.sys - imports ntoskrnl.exe!__C_specific_handler, as every MSVC-built
 * driver with a __try block does (the unwind data in .pdata/.xdata names it
 * as the language handler; only the exception dispatcher calls it).
 * Loading must fail by name before any of its code runs.
 */
#include "testdrv.h"

NDIS_FN(int) __C_specific_handler(PVOID record, PVOID frame, PVOID context,
				  PVOID dispatcher);

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	return NDIS_STATUS_FAILURE;
}

NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	NDIS51_MINIPORT_CHARACTERISTICS chars = { 0 };

	/* If this ever ran, the test would see it in the log. */
	DbgPrint("seh.sys: DriverEntry ran\n");
	if (!path)
		__C_specific_handler(NULL, NULL, NULL, NULL);
	return testdrv_register(driver, path, &chars);
}
