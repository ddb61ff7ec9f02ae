/* SPDX-License-Identifier: MIT */
/*
 * hal.c - the HAL.dll exports: port I/O, IRQL, stalls, the counter.
 *
 * Port I/O is the one device access a user-space host can intercept (MMIO
 * through NdisWriteRegisterUlong is an inline store), so it is routed to the
 * adapter's device model when one is attached; an unclaimed port reads as
 * all ones, as an empty ISA/PCI port does.
 *
 * x64 Windows inlines the IRQL functions as CR8 moves; our ndis.h makes
 * them imports, and the IRQL lives in the calling thread's np_thread.
 */
#include <time.h>

#include "np.h"

static struct np_adapter *port_owner(uintptr_t port)
{
	struct np_adapter *a = np_current_adapter();

	if (a && a->port_count && port >= a->port_base &&
	    port < (uintptr_t)a->port_base + a->port_count)
		return a;
	return NULL;
}

static uint32_t port_read(uintptr_t port, unsigned size)
{
	struct np_adapter *a = port_owner(port);

	if (!a) {
		np_verify(np_current_ctx(), NP_VIOL_BAD_CALL,
			  "READ_PORT at 0x%I64x: not a registered port", (uint64_t)port);
		return 0xffffffffU >> (32 - size * 8);
	}
	a->port_reads++;
	if (a->device && a->device->port_read)
		return a->device->port_read(a->device, (uint32_t)(port - a->port_base), size);
	return 0xffffffffU >> (32 - size * 8);
}

static void port_write(uintptr_t port, unsigned size, uint32_t value)
{
	struct np_adapter *a = port_owner(port);

	if (!a) {
		np_verify(np_current_ctx(), NP_VIOL_BAD_CALL,
			  "WRITE_PORT at 0x%I64x: not a registered port", (uint64_t)port);
		return;
	}
	a->port_writes++;
	if (a->device && a->device->port_write)
		a->device->port_write(a->device, (uint32_t)(port - a->port_base), size, value);
}

NDISAPI UCHAR READ_PORT_UCHAR(PUCHAR port)
{
	return (UCHAR)port_read((uintptr_t)port, 1);
}

NDISAPI USHORT READ_PORT_USHORT(PUSHORT port)
{
	return (USHORT)port_read((uintptr_t)port, 2);
}

NDISAPI ULONG READ_PORT_ULONG(PULONG port)
{
	return port_read((uintptr_t)port, 4);
}

NDISAPI VOID WRITE_PORT_UCHAR(PUCHAR port, UCHAR value)
{
	port_write((uintptr_t)port, 1, value);
}

NDISAPI VOID WRITE_PORT_USHORT(PUSHORT port, USHORT value)
{
	port_write((uintptr_t)port, 2, value);
}

NDISAPI VOID WRITE_PORT_ULONG(PULONG port, ULONG value)
{
	port_write((uintptr_t)port, 4, value);
}

NDISAPI VOID KeStallExecutionProcessor(ULONG us)
{
	uint64_t until = np_now_ns() + us * 1000ULL;

	while (np_now_ns() < until)
		__builtin_ia32_pause();
}

NDISAPI LARGE_INTEGER KeQueryPerformanceCounter(PLARGE_INTEGER freq)
{
	LARGE_INTEGER now;

	if (freq)
		freq->QuadPart = 1000000000LL;
	now.QuadPart = (LONGLONG)np_now_ns();
	return now;
}

NDISAPI KIRQL KeGetCurrentIrql(VOID)
{
	struct np_thread *t = np_thread_current();

	return t ? t->irql : PASSIVE_LEVEL;
}

NDISAPI KIRQL KfRaiseIrql(KIRQL irql)
{
	struct np_thread *t = np_thread_current();
	KIRQL old;

	if (!t)
		return PASSIVE_LEVEL;
	old = t->irql;
	if (irql < old)
		np_verify(t->ctx, NP_VIOL_IRQL,
			  "KeRaiseIrql to %u below the current IRQL %u", irql, old);
	t->irql = irql;
	return old;
}

NDISAPI VOID KfLowerIrql(KIRQL irql)
{
	struct np_thread *t = np_thread_current();

	if (!t)
		return;
	if (irql > t->irql)
		np_verify(t->ctx, NP_VIOL_IRQL,
			  "KeLowerIrql to %u above the current IRQL %u", irql,
			  t->irql);
	t->irql = irql;
}

static const struct np_export hal_exports[] = {
	NP_EXPORT(KeGetCurrentIrql),
	NP_EXPORT(KeQueryPerformanceCounter),
	NP_EXPORT(KeStallExecutionProcessor),
	NP_EXPORT(KfLowerIrql),
	NP_EXPORT(KfRaiseIrql),
	NP_EXPORT(READ_PORT_UCHAR),
	NP_EXPORT(READ_PORT_ULONG),
	NP_EXPORT(READ_PORT_USHORT),
	NP_EXPORT(WRITE_PORT_UCHAR),
	NP_EXPORT(WRITE_PORT_ULONG),
	NP_EXPORT(WRITE_PORT_USHORT),
};

const struct np_module np_hal_module = {
	.name = "HAL.dll",
	.exports = hal_exports,
	.count = NP_ARRAY_SIZE(hal_exports),
};
