/* SPDX-License-Identifier: MIT */
/*
 * hw.c - the mock NIC's registers: probe, reset, programming, interrupts
 * on and off, link, counters.  The rings themselves are ring.c's.
 *
 * Port I/O reaches the device synchronously (HAL's WRITE_PORT_ULONG), so a
 * register write has taken effect when it returns; no flushing reads.
 */
#include "mocknic.h"

NDIS_STATUS mn_hw_probe(struct mn_adapter *a)
{
	ULONG id = mn_rd(a, MN_DEVICE_ID);

	if (id == MN_ID)
		return NDIS_STATUS_SUCCESS;
	DbgPrint("mocknic: device id 0x%08lx at port 0x%x, expected 0x%08lx\n",
		 id, MN_PORT_BASE, MN_ID);
	NdisWriteErrorLogEntry(a->handle, NDIS_ERROR_CODE_ADAPTER_NOT_FOUND, 1, id);
	return NDIS_STATUS_ADAPTER_NOT_FOUND;
}

/*
 * Any IRQL up to DISPATCH_LEVEL.  Rings, counters and causes go back to
 * their reset values; MN_CTRL_RESET clears itself when the device is done.
 * The counters restart from zero, so their snapshots do too (callers
 * harvest first if they care about the old values).
 */
NDIS_STATUS mn_hw_reset(struct mn_adapter *a)
{
	ULONG i;

	mn_wr(a, MN_IMS, 0);
	mn_wr(a, MN_CTRL, MN_CTRL_RESET);
	for (i = 0; i < MN_RESET_POLLS; i++) {
		if (!(mn_rd(a, MN_CTRL) & MN_CTRL_RESET))
			break;
		NdisStallExecution(10);
	}
	if (i == MN_RESET_POLLS) {
		DbgPrint("mocknic: device reset did not complete in %lu us\n",
			 MN_RESET_POLLS * 10);
		NdisWriteErrorLogEntry(a->handle, NDIS_ERROR_CODE_HARDWARE_FAILURE, 0);
		return NDIS_STATUS_DEVICE_FAILED;
	}
	mn_wr(a, MN_ICR, MN_INT_ALL);
	NdisAcquireSpinLock(&a->lock);
	a->hw_rx_missed = 0;
	a->hw_dma_errors = 0;
	NdisReleaseSpinLock(&a->lock);
	return NDIS_STATUS_SUCCESS;
}

/* Address registers hold the bytes in wire order, least significant first. */
static void mn_hw_split(const UCHAR *mac, PULONG lo, PULONG hi)
{
	*lo = (ULONG)mac[0] | (ULONG)mac[1] << 8 | (ULONG)mac[2] << 16 |
	      (ULONG)mac[3] << 24;
	*hi = (ULONG)mac[4] | (ULONG)mac[5] << 8;
}

/*
 * Rings, addresses, sizes, moderation, filter and multicast table, after a
 * reset and with both rings reset (ring.c).  Interrupts stay masked and
 * RX/TX stay off: mn_hw_enable turns them on.  Callers hold rx_lock or
 * own the adapter outright (Initialize).
 */
void mn_hw_configure(struct mn_adapter *a)
{
	ULONG lo, hi;

	mn_wr(a, MN_TX_BASE_LO, NdisGetPhysicalAddressLow(a->tx_ring_mem.pa));
	mn_wr(a, MN_TX_BASE_HI, NdisGetPhysicalAddressHigh(a->tx_ring_mem.pa));
	mn_wr(a, MN_TX_LEN, a->tx_count);
	mn_wr(a, MN_TX_TAIL, a->tx_use);
	mn_wr(a, MN_RX_BASE_LO, NdisGetPhysicalAddressLow(a->rx_ring_mem.pa));
	mn_wr(a, MN_RX_BASE_HI, NdisGetPhysicalAddressHigh(a->rx_ring_mem.pa));
	mn_wr(a, MN_RX_LEN, a->rx_count);
	/* Nothing for the device until mn_rx_refill moves the tail. */
	mn_wr(a, MN_RX_TAIL, a->rx_tail);

	mn_hw_split(a->cur_addr, &lo, &hi);
	mn_wr(a, MN_RAL, lo);
	mn_wr(a, MN_RAH, hi);
	mn_wr(a, MN_MAX_FRAME, a->max_frame);
	mn_wr(a, MN_RX_BUF_LEN, a->rx_buf_len);
	mn_wr(a, MN_ITR, a->itr_us);
	mn_wr(a, MN_RXCSUM, a->rx_csum ? MN_RXCSUM_EN : 0);
	mn_hw_set_filter(a);
	/* Whatever the table held, every slot is rewritten. */
	a->mc_hw_count = MN_MC_SLOTS;
	mn_hw_set_multicast(a);
}

/* Causes from before now are stale: clear them, then unmask and start. */
void mn_hw_enable(struct mn_adapter *a)
{
	mn_wr(a, MN_ICR, MN_INT_ALL);
	mn_wr(a, MN_IMS, MN_INT_ALL);
	mn_wr(a, MN_CTRL, MN_CTRL_RX_EN | MN_CTRL_TX_EN);
}

/* Masked, stopped, and the line dropped. */
void mn_hw_disable(struct mn_adapter *a)
{
	mn_wr(a, MN_IMS, 0);
	mn_wr(a, MN_CTRL, 0);
	mn_wr(a, MN_ICR, MN_INT_ALL);
}

/*
 * Any IRQL (AdapterShutdownHandler): no locks.  Stopped and reset, so the
 * device no longer holds the rings' bus addresses.
 */
void mn_hw_stop(struct mn_adapter *a)
{
	ULONG i;

	mn_hw_disable(a);
	mn_wr(a, MN_CTRL, MN_CTRL_RESET);
	for (i = 0; i < MN_RESET_POLLS && (mn_rd(a, MN_CTRL) & MN_CTRL_RESET); i++)
		NdisStallExecution(10);
}

/* Must hold rx_lock (or own the adapter). */
void mn_hw_set_filter(struct mn_adapter *a)
{
	mn_wr(a, MN_RX_FILTER, a->packet_filter);
}

/*
 * Must hold rx_lock (or own the adapter).  Slot i gets mc_list[i]; slots
 * that were valid beyond the new count are invalidated.  MC_ADDR_HI
 * commits a slot, so LO goes first.
 */
void mn_hw_set_multicast(struct mn_adapter *a)
{
	ULONG i, lo, hi, valid;

	for (i = 0; i < a->mc_count; i++) {
		mn_hw_split(a->mc_list[i], &lo, &hi);
		mn_wr(a, MN_MC_INDEX, i);
		mn_wr(a, MN_MC_ADDR_LO, lo);
		mn_wr(a, MN_MC_ADDR_HI, hi | 0x80000000U);
	}
	for (; i < a->mc_hw_count; i++) {
		mn_wr(a, MN_MC_INDEX, i);
		mn_wr(a, MN_MC_ADDR_LO, 0);
		mn_wr(a, MN_MC_ADDR_HI, 0);
	}
	a->mc_hw_count = a->mc_count;
	valid = mn_rd(a, MN_MC_COUNT);
	if (valid != a->mc_count)
		DbgPrint("mocknic: multicast table holds %lu addresses after programming %lu\n",
			 valid, a->mc_count);
}

/* Link from MN_STATUS; the speed, if asked, in OID_GEN_LINK_SPEED's 100 b/s. */
BOOLEAN mn_hw_link_up(struct mn_adapter *a, PULONG speed_100bps)
{
	ULONG status = mn_rd(a, MN_STATUS);
	ULONG units = (status & MN_STATUS_SPEED_MASK) >> MN_STATUS_SPEED_SHIFT;

	if (speed_100bps)
		/* MN_STATUS counts 100 Mb/s; a device that says 0 is a 1 Gb/s part. */
		*speed_100bps = (units ? units : 10) * 1000000;
	return (status & MN_STATUS_LINK_UP) != 0;
}

/*
 * DISPATCH_LEVEL or below.  Folds what the device's clear-on-reset counters
 * gained since the last look into the 64-bit statistics.  Returns the new
 * DMA errors, which are always a driver bug worth a line in the log.
 */
ULONG mn_hw_harvest(struct mn_adapter *a)
{
	ULONG missed = mn_rd(a, MN_STAT_RX_MISSED);
	ULONG dma = mn_rd(a, MN_STAT_DMA_ERRORS);
	ULONG new_dma;

	NdisAcquireSpinLock(&a->lock);
	/* Unsigned differences: right across a 32-bit wrap too. */
	a->rcv_no_buffer += missed - a->hw_rx_missed;
	a->hw_rx_missed = missed;
	new_dma = dma - a->hw_dma_errors;
	a->dma_errors += new_dma;
	a->hw_dma_errors = dma;
	NdisReleaseSpinLock(&a->lock);
	return new_dma;
}
