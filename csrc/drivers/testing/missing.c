/* SPDX-License-Identifier: MIT */
/*
 * missing.sys - imports functions no NDIS.SYS or ntoskrnl.exe we emulate
 * exports (declared for the linker by missing*.def): loading must fail,
 * naming all of them, before any of its code runs.
 */
#include "testdrv.h"

NDIS_FN(VOID) NdisMIndicateMagicPacket(NDIS_HANDLE adapter);
NDIS_FN(VOID) NdisFrobnicateWidget(ULONG how);
NDIS_FN(ULONG) KeQueryImaginaryCounter(VOID);

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	NdisMIndicateMagicPacket(adapter);
	return NDIS_STATUS_FAILURE;
}

NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	NDIS51_MINIPORT_CHARACTERISTICS chars = { 0 };

	/* If this ever ran, the test would see it in the log. */
	DbgPrint("missing.sys: DriverEntry ran\n");
	NdisFrobnicateWidget(KeQueryImaginaryCounter());
	return testdrv_register(driver, path, &chars);
}
