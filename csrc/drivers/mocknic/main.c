/* SPDX-License-Identifier: MIT */
/*
 * main.c - the mock NIC miniport's life cycle: DriverEntry, Initialize,
 * Halt, Reset, CheckForHang, Shutdown, and the watchdog that keeps the link
 * state honest.
 */
#include "mocknic.h"

/* ---- link ------------------------------------------------------------ */

/*
 * DISPATCH_LEVEL.  Reports a link transition to NDIS once, whoever notices
 * it first: the DPC on MN_INT_LINK, the watchdog (a lost interrupt), or
 * Reset.  A flap shorter than that is not reported: the state NDIS last
 * heard of is still the state of the cable.
 */
void mn_link_update(struct mn_adapter *a)
{
	ULONG speed;
	BOOLEAN up = mn_hw_link_up(a, &speed), changed;

	NdisDprAcquireSpinLock(&a->lock);
	changed = up != a->link_up;
	a->link_up = up;
	NdisDprReleaseSpinLock(&a->lock);
	if (!changed)
		return;
	if (up)
		DbgPrint("mocknic: link up, %lu Mb/s\n", speed / 10000);
	else
		DbgPrint("mocknic: link down\n");
	NdisMIndicateStatus(a->handle, up ? NDIS_STATUS_MEDIA_CONNECT :
			    NDIS_STATUS_MEDIA_DISCONNECT, NULL, 0);
	NdisMIndicateStatusComplete(a->handle);
}

/* DISPATCH_LEVEL, every MN_WATCHDOG_MS. */
static VOID NDISAPI mn_watchdog(PVOID system1, PVOID ctx, PVOID system2,
				PVOID system3)
{
	struct mn_adapter *a = ctx;

	mn_link_update(a);
	mn_hw_harvest(a);
	/* Queued sends must not wait for ever on a TX interrupt that got lost. */
	mn_tx_service(a);
}

/* ---- Initialize and Halt --------------------------------------------- */

static VOID NDISAPI mn_shutdown(PVOID ctx);

/*
 * PASSIVE_LEVEL.  Resources are taken in this order and given back in the
 * reverse one, by the error labels here and by mn_halt.
 */
static NDIS_STATUS NDISAPI mn_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE handle, NDIS_HANDLE config)
{
	struct mn_adapter *a;
	struct mn_pkt_list none = { 0 };
	NDIS_STATUS status;
	PVOID port;
	UINT i;

	for (i = 0; i < count; i++)
		if (media[i] == NdisMedium802_3)
			break;
	if (i == count)
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	*selected = i;

	if (NdisAllocateMemoryWithTag((PVOID *)&a, sizeof(*a),
				      MN_TAG_ADAPTER) != NDIS_STATUS_SUCCESS)
		return NDIS_STATUS_RESOURCES;
	NdisZeroMemory(a, sizeof(*a));
	a->handle = handle;
	NdisMSetAttributesEx(handle, a, 2,
			     NDIS_ATTRIBUTE_DESERIALIZE | NDIS_ATTRIBUTE_BUS_MASTER,
			     NdisInterfacePci);

	status = mn_read_params(a, config);
	if (status != NDIS_STATUS_SUCCESS)
		goto err_free;

	NdisAllocateSpinLock(&a->tx_lock);
	NdisAllocateSpinLock(&a->rx_lock);
	NdisAllocateSpinLock(&a->lock);
	NdisAllocateSpinLock(&a->fault_lock);

	status = NdisMRegisterIoPortRange(&port, handle, MN_PORT_BASE,
					  MN_PORT_COUNT);
	if (status != NDIS_STATUS_SUCCESS)
		goto err_locks;
	a->port = port;

	status = mn_hw_probe(a);
	if (status != NDIS_STATUS_SUCCESS)
		goto err_ports;
	status = mn_hw_reset(a);
	if (status != NDIS_STATUS_SUCCESS)
		goto err_ports;
	/* The deepest path of Initialize by design: see nvm.c. */
	status = mn_nvm_init(a);
	if (status != NDIS_STATUS_SUCCESS)
		goto err_ports;

	status = mn_ring_alloc(a);
	if (status != NDIS_STATUS_SUCCESS)
		goto err_ports;
	mn_ring_reset(a, &none);
	/* Everything but the interrupt mask: nothing may fire before we can take it. */
	mn_hw_configure(a);

	status = NdisMRegisterInterrupt(&a->interrupt, handle, MN_IRQ_VECTOR,
					MN_IRQ_VECTOR, TRUE, FALSE,
					NdisInterruptLevelSensitive);
	if (status != NDIS_STATUS_SUCCESS) {
		DbgPrint("mocknic: NdisMRegisterInterrupt failed with 0x%08lx\n",
			 (ULONG)status);
		goto err_stop;
	}

	/* Nothing below can fail. */
	NdisMInitializeTimer(&a->watchdog, handle, mn_watchdog, a);
	NdisMInitializeTimer(&a->mc_timer, handle, mn_mc_timer, a);
	NdisMRegisterAdapterShutdownHandler(handle, a, mn_shutdown);

	a->link_up = mn_hw_link_up(a, NULL);
	mn_hw_enable(a);
	NdisAcquireSpinLock(&a->rx_lock);
	if (mn_rx_refill(a))
		mn_wr(a, MN_RX_TAIL, a->rx_tail);
	NdisReleaseSpinLock(&a->rx_lock);
	NdisMSetPeriodicTimer(&a->watchdog, MN_WATCHDOG_MS);

	DbgPrint("mocknic: MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %lu, rings %lu/%lu\n",
		 a->cur_addr[0], a->cur_addr[1], a->cur_addr[2],
		 a->cur_addr[3], a->cur_addr[4], a->cur_addr[5],
		 a->mtu, a->tx_count, a->rx_count);

	/* FaultInject: fired or armed now that the adapter is whole. */
	if (a->fault_inject != MN_FAULT_NONE)
		mn_fault_request(a, a->fault_inject, "MiniportInitialize");
	return NDIS_STATUS_SUCCESS;

err_stop:
	/* The device must forget the rings before their memory goes. */
	mn_hw_stop(a);
	mn_ring_free(a);
err_ports:
	NdisMDeregisterIoPortRange(handle, MN_PORT_BASE, MN_PORT_COUNT, a->port);
err_locks:
	NdisFreeSpinLock(&a->fault_lock);
	NdisFreeSpinLock(&a->lock);
	NdisFreeSpinLock(&a->rx_lock);
	NdisFreeSpinLock(&a->tx_lock);
err_free:
	NdisFreeMemory(a, sizeof(*a), 0);
	return status;
}

/*
 * PASSIVE_LEVEL.  NDIS has returned every indicated packet and sends no
 * more; whatever is still queued for transmission is failed, not dropped.
 */
static VOID NDISAPI mn_halt(NDIS_HANDLE ctx)
{
	struct mn_adapter *a = ctx;
	struct mn_pkt_list aborted = { 0 };
	BOOLEAN cancelled;

	mn_hw_disable(a);
	NdisMDeregisterInterrupt(&a->interrupt);
	NdisMCancelTimer(&a->watchdog, &cancelled);
	NdisMCancelTimer(&a->mc_timer, &cancelled);
	NdisMDeregisterAdapterShutdownHandler(a->handle);

	/* Reset, so the device cannot touch the rings once they are freed. */
	mn_hw_stop(a);
	NdisAcquireSpinLock(&a->tx_lock);
	NdisAcquireSpinLock(&a->rx_lock);
	mn_ring_reset(a, &aborted);
	NdisReleaseSpinLock(&a->rx_lock);
	NdisReleaseSpinLock(&a->tx_lock);
	if (aborted.count)
		DbgPrint("mocknic: halt failed %lu queued sends\n", aborted.count);
	mn_complete_sends(a, &aborted, NDIS_STATUS_FAILURE);
	if (a->rx_with_stack)
		DbgPrint("mocknic: halt with %lu receive packets not returned\n",
			 a->rx_with_stack);

	NdisMDeregisterIoPortRange(a->handle, MN_PORT_BASE, MN_PORT_COUNT,
				   a->port);
	mn_ring_free(a);
	mn_fault_release(a);
	NdisFreeSpinLock(&a->fault_lock);
	NdisFreeSpinLock(&a->lock);
	NdisFreeSpinLock(&a->rx_lock);
	NdisFreeSpinLock(&a->tx_lock);
	NdisFreeMemory(a, sizeof(*a), 0);
}

/* ---- Reset and CheckForHang ------------------------------------------ */

/*
 * DISPATCH_LEVEL.  Completes synchronously: the device resets in
 * microseconds.  Sends in flight or queued are failed; receive packets
 * the stack holds stay valid and come back through ReturnPacket.  The
 * filter and multicast list are reprogrammed here and, as addressing was
 * reset, NDIS re-applies them too.
 */
static NDIS_STATUS NDISAPI mn_reset(PBOOLEAN addressing_reset, NDIS_HANDLE ctx)
{
	struct mn_adapter *a = ctx;
	struct mn_pkt_list aborted = { 0 };
	NDIS_STATUS status;

	*addressing_reset = TRUE;
	/* The device's counters clear on reset: count what they hold first. */
	mn_hw_harvest(a);

	NdisDprAcquireSpinLock(&a->tx_lock);
	NdisDprAcquireSpinLock(&a->rx_lock);
	status = mn_hw_reset(a);
	mn_ring_reset(a, &aborted);
	__atomic_store_n(&a->causes, 0, __ATOMIC_RELEASE);
	a->hang_checks = 0;
	if (status == NDIS_STATUS_SUCCESS) {
		mn_hw_configure(a);
		mn_hw_enable(a);
		if (mn_rx_refill(a))
			mn_wr(a, MN_RX_TAIL, a->rx_tail);
	}
	NdisDprReleaseSpinLock(&a->rx_lock);
	NdisDprReleaseSpinLock(&a->tx_lock);

	DbgPrint("mocknic: reset, %lu sends aborted\n", aborted.count);
	mn_complete_sends(a, &aborted, NDIS_STATUS_FAILURE);
	mn_link_update(a);
	return status == NDIS_STATUS_SUCCESS ? NDIS_STATUS_SUCCESS :
		NDIS_STATUS_HARD_ERRORS;
}

/*
 * DISPATCH_LEVEL, every 2 s.  The device completes transmissions inside the
 * doorbell write, so descriptors in flight that make no progress over
 * MN_HANG_CHECKS checks, with the link up, mean a wedged TX engine: ask
 * NDIS for a reset.  Normally there is nothing in flight and this says no.
 */
static BOOLEAN NDISAPI mn_check_for_hang(NDIS_HANDLE ctx)
{
	struct mn_adapter *a = ctx;
	BOOLEAN hung = FALSE;
	ULONG at = 0;

	NdisDprAcquireSpinLock(&a->tx_lock);
	if (a->tx_use == a->tx_clean || a->tx_clean != a->hang_mark) {
		a->hang_mark = a->tx_clean;
		a->hang_checks = 0;
	} else if (a->link_up && ++a->hang_checks >= MN_HANG_CHECKS) {
		hung = TRUE;
		at = a->tx_clean;
		a->hang_checks = 0;
	}
	NdisDprReleaseSpinLock(&a->tx_lock);
	if (hung)
		DbgPrint("mocknic: TX stalled at descriptor %lu (TX_HEAD %lu): asking for a reset\n",
			 at, mn_rd(a, MN_TX_HEAD));
	return hung;
}

/*
 * Any IRQL, possibly at bugcheck time: no locks, no NDIS calls.  Quiesce
 * the device so it does no DMA into memory the next OS may own.
 */
static VOID NDISAPI mn_shutdown(PVOID ctx)
{
	mn_hw_stop(ctx);
}

/* ---- DriverEntry ----------------------------------------------------- */

NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	NDIS51_MINIPORT_CHARACTERISTICS chars = {
		.MajorNdisVersion = 5,
		.MinorNdisVersion = 1,
		.InitializeHandler = mn_initialize,
		.HaltHandler = mn_halt,
		.QueryInformationHandler = mn_query_information,
		.SetInformationHandler = mn_set_information,
		.ResetHandler = mn_reset,
		.CheckForHangHandler = mn_check_for_hang,
		.SendPacketsHandler = mn_send_packets,
		.ISRHandler = mn_isr,
		.HandleInterruptHandler = mn_handle_interrupt,
		.ReturnPacketHandler = mn_return_packet,
		.AdapterShutdownHandler = mn_shutdown,
	};
	NDIS_HANDLE wrapper;
	NDIS_STATUS status;

	NdisMInitializeWrapper(&wrapper, driver, path, NULL);
	if (!wrapper)
		return NDIS_STATUS_FAILURE;
	status = NdisMRegisterMiniport(wrapper, &chars, sizeof(chars));
	if (status != NDIS_STATUS_SUCCESS) {
		DbgPrint("mocknic: NdisMRegisterMiniport failed with 0x%08lx\n",
			 (ULONG)status);
		NdisTerminateWrapper(wrapper, NULL);
	}
	return status;
}
