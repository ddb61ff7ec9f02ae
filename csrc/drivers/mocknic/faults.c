/* SPDX-License-Identifier: MIT */
/*
 * faults.c - stack hunger and the fault-injection knobs (MN_FAULT_*).
 *
 * The mock NIC exists to show what the host does with a misbehaving
 * driver, so it can be one on request: the FaultInject parameter (acted on
 * at the end of MiniportInitialize) or OID_MOCKNIC_FAULT (acted on inside
 * MiniportSetInformation, at DISPATCH_LEVEL).  Two kinds:
 *
 *   fired at once   OVERFLOW, WILD_WRITE, HANG, BUGCHECK (the call never
 *                   returns), BAD_UNLOCK, WRONG_IRQL (verifier findings;
 *                   the call goes on)
 *   armed           LEAK (at Halt), DOUBLE_COMPLETE (the next packet sent),
 *                   BAD_DMA (the next TX descriptor), HANG_SEND and
 *                   OVERFLOW_SEND (the next MiniportSendPackets spins or
 *                   overflows its stack: data-path faults)
 *
 * MN_FAULT_NONE disarms what is armed.  Every fault says so in the log
 * before it acts, so a report can be matched to its cause.
 */
#include "mocknic.h"

#define MN_HUNGER_WORDS	244		/* + shadow space, rbp, return: 1 KiB */
#define MN_LEAK_BYTES	64

/*
 * Burns about kib KiB of stack: one ~1 KiB frame a level, every word of
 * it written (so probes and guard pages see each page) and read back after
 * the recursive call (so it is neither a tail call nor optimised away).
 */
__attribute__((noinline)) ULONG mn_stack_hunger(ULONG kib, ULONG seed)
{
	volatile ULONG frame[MN_HUNGER_WORDS];
	ULONG i, r;

	for (i = 0; i < MN_HUNGER_WORDS; i++)
		frame[i] = seed + i;
	if (kib <= 1)
		return frame[seed % MN_HUNGER_WORDS];
	r = mn_stack_hunger(kib - 1, frame[MN_HUNGER_WORDS - 1]);
	return r ^ frame[r % MN_HUNGER_WORDS];
}

static const char *mn_fault_name(ULONG code)
{
	switch (code) {
	case MN_FAULT_NONE:		return "none";
	case MN_FAULT_OVERFLOW:		return "stack overflow";
	case MN_FAULT_WILD_WRITE:	return "wild write";
	case MN_FAULT_HANG:		return "hang";
	case MN_FAULT_LEAK:		return "leak";
	case MN_FAULT_DOUBLE_COMPLETE:	return "double completion";
	case MN_FAULT_BAD_UNLOCK:	return "bad unlock";
	case MN_FAULT_WRONG_IRQL:	return "wrong IRQL";
	case MN_FAULT_BAD_DMA:		return "bad DMA";
	case MN_FAULT_BUGCHECK:		return "bugcheck";
	case MN_FAULT_HANG_SEND:	return "hang in send";
	case MN_FAULT_OVERFLOW_SEND:	return "overflow in send";
	default:			return "unknown";
	}
}

void mn_fault_fire(struct mn_adapter *a, ULONG code)
{
	KIRQL old;

	switch (code) {
	case MN_FAULT_OVERFLOW:
		/* Looks unbounded; 8 MiB is past any stack the host gives. */
		a->phy_cookie ^= mn_stack_hunger(MN_OVERFLOW_KIB, code);
		break;
	case MN_FAULT_WILD_WRITE:
		*(volatile ULONG *)(ULONG_PTR)MN_WILD_ADDR = MN_BUGCHECK_CODE;
		break;
	case MN_FAULT_HANG:
		for (;;)
			__builtin_ia32_pause();
	case MN_FAULT_BUGCHECK:
		KeBugCheckEx(MN_BUGCHECK_CODE, 1, 2, 3, 4);
		break;
	case MN_FAULT_BAD_UNLOCK:
		/* Never acquired: a release of a lock nobody holds. */
		NdisReleaseSpinLock(&a->fault_lock);
		break;
	case MN_FAULT_WRONG_IRQL:
		/* Sleeping at DISPATCH_LEVEL, whatever level we came in at. */
		KeRaiseIrql(DISPATCH_LEVEL, &old);
		NdisMSleep(1);
		KeLowerIrql(old);
		break;
	}
}

/*
 * <= DISPATCH_LEVEL.  The TX arms live under tx_lock, which the path they
 * hit holds.  The leak is touched only by Initialize, OID requests (one at
 * a time) and Halt, which never overlap.
 */
static NDIS_STATUS mn_fault_arm(struct mn_adapter *a, ULONG code)
{
	switch (code) {
	case MN_FAULT_LEAK:
		if (a->leak)
			return NDIS_STATUS_SUCCESS;
		if (NdisAllocateMemoryWithTag(&a->leak, MN_LEAK_BYTES,
					      MN_TAG_LEAK) != NDIS_STATUS_SUCCESS) {
			a->leak = NULL;
			return NDIS_STATUS_RESOURCES;
		}
		NdisFillMemory(a->leak, MN_LEAK_BYTES, 'L');
		return NDIS_STATUS_SUCCESS;
	case MN_FAULT_DOUBLE_COMPLETE:
	case MN_FAULT_BAD_DMA:
	case MN_FAULT_HANG_SEND:
	case MN_FAULT_OVERFLOW_SEND:
	case MN_FAULT_NONE:
		NdisAcquireSpinLock(&a->tx_lock);
		if (code == MN_FAULT_DOUBLE_COMPLETE)
			a->fault_double_complete = TRUE;
		else if (code == MN_FAULT_BAD_DMA)
			a->fault_bad_dma = TRUE;
		else if (code == MN_FAULT_HANG_SEND)
			a->fault_hang_send = TRUE;
		else if (code == MN_FAULT_OVERFLOW_SEND)
			a->fault_overflow_send = TRUE;
		else
			a->fault_double_complete = a->fault_bad_dma =
				a->fault_hang_send = a->fault_overflow_send = FALSE;
		NdisReleaseSpinLock(&a->tx_lock);
		if (code == MN_FAULT_NONE && a->leak) {
			NdisFreeMemory(a->leak, MN_LEAK_BYTES, 0);
			a->leak = NULL;
		}
		return NDIS_STATUS_SUCCESS;
	default:
		return NDIS_STATUS_INVALID_DATA;
	}
}

/*
 * Acts on one MN_FAULT_* code from where (an entry point's name, for the
 * log).  Returns NDIS_STATUS_INVALID_DATA for a code we do not know.
 */
NDIS_STATUS mn_fault_request(struct mn_adapter *a, ULONG code,
			     const char *where)
{
	switch (code) {
	case MN_FAULT_OVERFLOW:
	case MN_FAULT_WILD_WRITE:
	case MN_FAULT_HANG:
	case MN_FAULT_BUGCHECK:
	case MN_FAULT_BAD_UNLOCK:
	case MN_FAULT_WRONG_IRQL:
		DbgPrint("mocknic: fault %lu (%s) fired in %s\n", code,
			 mn_fault_name(code), where);
		mn_fault_fire(a, code);
		return NDIS_STATUS_SUCCESS;
	case MN_FAULT_NONE:
		DbgPrint("mocknic: faults disarmed in %s\n", where);
		return mn_fault_arm(a, code);
	case MN_FAULT_LEAK:
	case MN_FAULT_DOUBLE_COMPLETE:
	case MN_FAULT_BAD_DMA:
	case MN_FAULT_HANG_SEND:
	case MN_FAULT_OVERFLOW_SEND:
		DbgPrint("mocknic: fault %lu (%s) armed in %s\n", code,
			 mn_fault_name(code), where);
		return mn_fault_arm(a, code);
	default:
		DbgPrint("mocknic: unknown fault code %lu in %s\n", code, where);
		return NDIS_STATUS_INVALID_DATA;
	}
}

/*
 * Halt: what MN_FAULT_LEAK armed stays allocated - on purpose, for the
 * host's leak report.
 */
void mn_fault_release(struct mn_adapter *a)
{
	if (a->leak)
		DbgPrint("mocknic: fault %lu (%s): leaving %lu bytes tagged 'Leak' at halt\n",
			 MN_FAULT_LEAK, mn_fault_name(MN_FAULT_LEAK), MN_LEAK_BYTES);
	a->leak = NULL;
}
