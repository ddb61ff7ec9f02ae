/* SPDX-License-Identifier: MIT */
/*
 * nphelper.dll - a kernel export driver ("helper DLL") for usehelper.sys,
 * which imports it by name; the host loads it from the driver's directory.
 *
 * DllInitialize prints its registry path and returns the status in
 * nphelper_knob (STATUS_SUCCESS as built; a test patches the file to make
 * it fail).  NpHelperChecksum sums a buffer, so a bad one faults inside
 * this DLL; NpHelperVersion (ordinal 2) says how often DllInitialize ran.
 * NpHelperForwarded is forwarded to NTOSKRNL.RtlCompareMemory (see
 * nphelper.def), which the host refuses by name.
 */
#include "ndis.h"

#define NPHELPER_KNOB_MAGIC	0x4b504e4bU	/* "KNPK" */

volatile struct {
	ULONG magic;
	NTSTATUS dll_initialize_status;
} nphelper_knob = { NPHELPER_KNOB_MAGIC, STATUS_SUCCESS };

static ULONG initialized;

NTSTATUS NDISAPI DllInitialize(PUNICODE_STRING registry_path)
{
	initialized++;
	DbgPrint("nphelper.dll: DllInitialize %wZ\n", registry_path);
	return nphelper_knob.dll_initialize_status;
}

ULONG NDISAPI NpHelperChecksum(const UCHAR *buf, ULONG len)
{
	ULONG sum = 0;

	while (len--)
		sum = sum * 31 + *buf++;
	return sum;
}

ULONG NDISAPI NpHelperVersion(VOID)
{
	return 0x00010000U | initialized;
}

/* Windows requires one of an export driver; it is never called. */
NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	return STATUS_SUCCESS;
}
