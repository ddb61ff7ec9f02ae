/* SPDX-License-Identifier: MIT */
/*
 * wild.sys - MiniportInitialize writes through a wild pointer (the
 * WildAddress parameter, default 0xdead0000), as a buggy driver would.
 *
 * With "SpoilFloatingPoint" = 1 it first changes the floating-point control
 * state both ABIs make callee-saved, as a driver stopped mid-computation
 * may leave it: MXCSR rounds toward zero, the x87 unit computes in single
 * precision, and two values stay on the x87 stack.
 */
#include "testdrv.h"

#define MXCSR_ROUND_TOWARD_ZERO	0x7f80	/* exceptions masked, RC = 11 */
#define X87_SINGLE_PRECISION	0x007f	/* exceptions masked, PC = 00 */

static void spoil_floating_point(void)
{
	unsigned int mxcsr = MXCSR_ROUND_TOWARD_ZERO;
	unsigned short cw = X87_SINGLE_PRECISION;

	__asm__ volatile("ldmxcsr %0\n\t"
			 "fldcw %1\n\t"
			 "fld1\n\t"
			 "fld1"
			 : : "m"(mxcsr), "m"(cw));
}

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	volatile ULONG *wild;

	if (testdrv_select_medium(selected, media, count, adapter))
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	wild = (volatile ULONG *)(ULONG_PTR)testdrv_param(config, L"WildAddress",
							  0xdead0000);
	if (testdrv_param(config, L"SpoilFloatingPoint", 0))
		spoil_floating_point();
	*wild = 0x0badf00d;
	return NDIS_STATUS_SUCCESS;
}

TESTDRV_DRIVER_ENTRY({ 0 })
