/* SPDX-License-Identifier: MIT */
/*
 * oid.c - OID requests: MiniportQueryInformation and MiniportSetInformation,
 * at DISPATCH_LEVEL, one outstanding at a time.
 *
 * The buffer contract NDIS expects: a buffer too short gets
 * NDIS_STATUS_INVALID_LENGTH with *BytesNeeded set and nothing written; an
 * OID we do not know gets NDIS_STATUS_NOT_SUPPORTED; *BytesWritten and
 * *BytesRead count what a successful request used.  Buffers need not be
 * aligned, so values are copied in and out, never dereferenced in place.
 */
#include "mocknic.h"

#define MN_NIC_ID			0x01	/* OID_GEN_VENDOR_ID's high byte */
#define MN_VENDOR_DRIVER_VERSION	0x00010000U	/* 1.0 */
#define MN_NDIS_VERSION			0x0501	/* OID_GEN_DRIVER_VERSION */
#define MN_MAC_OPTIONS	(NDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA |		\
			 NDIS_MAC_OPTION_TRANSFERS_NOT_PEND |		\
			 NDIS_MAC_OPTION_NO_LOOPBACK |			\
			 NDIS_MAC_OPTION_FULL_DUPLEX)

static const CHAR mn_vendor_description[] = "ndisproxy mock NIC";

static const NDIS_OID mn_supported_oids[] = {
	OID_GEN_SUPPORTED_LIST,
	OID_GEN_HARDWARE_STATUS,
	OID_GEN_MEDIA_SUPPORTED,
	OID_GEN_MEDIA_IN_USE,
	OID_GEN_MAXIMUM_LOOKAHEAD,
	OID_GEN_MAXIMUM_FRAME_SIZE,
	OID_GEN_LINK_SPEED,
	OID_GEN_TRANSMIT_BUFFER_SPACE,
	OID_GEN_RECEIVE_BUFFER_SPACE,
	OID_GEN_TRANSMIT_BLOCK_SIZE,
	OID_GEN_RECEIVE_BLOCK_SIZE,
	OID_GEN_VENDOR_ID,
	OID_GEN_VENDOR_DESCRIPTION,
	OID_GEN_CURRENT_PACKET_FILTER,
	OID_GEN_CURRENT_LOOKAHEAD,
	OID_GEN_DRIVER_VERSION,
	OID_GEN_MAXIMUM_TOTAL_SIZE,
	OID_GEN_MAC_OPTIONS,
	OID_GEN_MEDIA_CONNECT_STATUS,
	OID_GEN_MAXIMUM_SEND_PACKETS,
	OID_GEN_VENDOR_DRIVER_VERSION,
	OID_GEN_XMIT_OK,
	OID_GEN_RCV_OK,
	OID_GEN_XMIT_ERROR,
	OID_GEN_RCV_ERROR,
	OID_GEN_RCV_NO_BUFFER,
	OID_802_3_PERMANENT_ADDRESS,
	OID_802_3_CURRENT_ADDRESS,
	OID_802_3_MULTICAST_LIST,
	OID_802_3_MAXIMUM_LIST_SIZE,
	OID_802_3_RCV_ERROR_ALIGNMENT,
	OID_802_3_XMIT_ONE_COLLISION,
	OID_802_3_XMIT_MORE_COLLISIONS,
	OID_TCP_TASK_OFFLOAD,
	OID_MOCKNIC_FAULT,
	OID_MOCKNIC_STACK_HUNGER,
};

static NDIS_STATUS mn_answer(PVOID buf, ULONG len, const void *src, ULONG n,
			     PULONG written, PULONG needed)
{
	if (len < n) {
		*needed = n;
		return NDIS_STATUS_INVALID_LENGTH;
	}
	if (n)
		NdisMoveMemory(buf, src, n);
	*written = n;
	return NDIS_STATUS_SUCCESS;
}

/*
 * Statistics are 64-bit; NDIS 5.1 clients may ask with a ULONG and get
 * the low half.  Aligned 64-bit loads are atomic on x64, so no lock.
 */
static NDIS_STATUS mn_answer_counter(PVOID buf, ULONG len, ULONGLONG value,
				     PULONG written, PULONG needed)
{
	ULONG low = (ULONG)value;

	if (len >= sizeof(value))
		return mn_answer(buf, len, &value, sizeof(value), written, needed);
	if (len >= sizeof(low))
		return mn_answer(buf, len, &low, sizeof(low), written, needed);
	*needed = sizeof(value);
	return NDIS_STATUS_INVALID_LENGTH;
}

static NDIS_STATUS mn_query_multicast(struct mn_adapter *a, PVOID buf,
				      ULONG len, PULONG written, PULONG needed)
{
	NDIS_STATUS status;

	NdisDprAcquireSpinLock(&a->rx_lock);
	status = mn_answer(buf, len, a->mc_list,
			   a->mc_count * ETH_LENGTH_OF_ADDRESS, written, needed);
	NdisDprReleaseSpinLock(&a->rx_lock);
	return status;
}

NDIS_STATUS NDISAPI mn_query_information(NDIS_HANDLE ctx, NDIS_OID oid,
		PVOID buf, ULONG len, PULONG written, PULONG needed)
{
	struct mn_adapter *a = ctx;
	union {
		ULONG ul;
		USHORT us;
	} v;
	const void *src = &v;
	ULONG n = sizeof(ULONG);

	*written = 0;
	*needed = 0;
	switch (oid) {
	case OID_GEN_SUPPORTED_LIST:
		src = mn_supported_oids;
		n = sizeof(mn_supported_oids);
		break;
	case OID_GEN_HARDWARE_STATUS:
		v.ul = NdisHardwareStatusReady;
		break;
	case OID_GEN_MEDIA_SUPPORTED:
	case OID_GEN_MEDIA_IN_USE:
		v.ul = NdisMedium802_3;
		break;
	case OID_GEN_MAXIMUM_FRAME_SIZE:
	case OID_GEN_MAXIMUM_LOOKAHEAD:
		/* Whole frames are indicated: the lookahead is the payload. */
		v.ul = a->mtu;
		break;
	case OID_GEN_MAXIMUM_TOTAL_SIZE:
		v.ul = a->mtu + MN_ETH_HLEN;
		break;
	case OID_GEN_CURRENT_LOOKAHEAD:
		v.ul = a->lookahead;
		break;
	case OID_GEN_LINK_SPEED:
		mn_hw_link_up(a, &v.ul);
		break;
	case OID_GEN_TRANSMIT_BUFFER_SPACE:
		v.ul = a->tx_count * a->tx_buf_len;
		break;
	case OID_GEN_RECEIVE_BUFFER_SPACE:
		v.ul = a->rx_count * a->rx_buf_len;
		break;
	case OID_GEN_TRANSMIT_BLOCK_SIZE:
		v.ul = a->tx_buf_len;
		break;
	case OID_GEN_RECEIVE_BLOCK_SIZE:
		v.ul = a->rx_buf_len;
		break;
	case OID_GEN_VENDOR_ID:
		/* The address's OUI, then our NIC id: bytes in that order. */
		v.ul = (ULONG)a->perm_addr[0] | (ULONG)a->perm_addr[1] << 8 |
		       (ULONG)a->perm_addr[2] << 16 | (ULONG)MN_NIC_ID << 24;
		break;
	case OID_GEN_VENDOR_DESCRIPTION:
		src = mn_vendor_description;
		n = sizeof(mn_vendor_description);	/* NUL included */
		break;
	case OID_GEN_VENDOR_DRIVER_VERSION:
		v.ul = MN_VENDOR_DRIVER_VERSION;
		break;
	case OID_GEN_DRIVER_VERSION:
		v.us = MN_NDIS_VERSION;
		n = sizeof(USHORT);
		break;
	case OID_GEN_CURRENT_PACKET_FILTER:
		v.ul = a->packet_filter;
		break;
	case OID_GEN_MAC_OPTIONS:
		v.ul = MN_MAC_OPTIONS;
		break;
	case OID_GEN_MEDIA_CONNECT_STATUS:
		v.ul = mn_hw_link_up(a, NULL) ? NdisMediaStateConnected :
			NdisMediaStateDisconnected;
		break;
	case OID_GEN_MAXIMUM_SEND_PACKETS:
		v.ul = MN_MAX_SEND_PACKETS;
		break;
	case OID_GEN_XMIT_OK:
		return mn_answer_counter(buf, len, a->xmit_ok, written, needed);
	case OID_GEN_RCV_OK:
		return mn_answer_counter(buf, len, a->rcv_ok, written, needed);
	case OID_GEN_XMIT_ERROR:
		return mn_answer_counter(buf, len, a->xmit_error, written, needed);
	case OID_GEN_RCV_ERROR:
		return mn_answer_counter(buf, len, a->rcv_error, written, needed);
	case OID_GEN_RCV_NO_BUFFER:
		return mn_answer_counter(buf, len, a->rcv_no_buffer, written,
					 needed);
	case OID_802_3_PERMANENT_ADDRESS:
		src = a->perm_addr;
		n = ETH_LENGTH_OF_ADDRESS;
		break;
	case OID_802_3_CURRENT_ADDRESS:
		src = a->cur_addr;
		n = ETH_LENGTH_OF_ADDRESS;
		break;
	case OID_802_3_MULTICAST_LIST:
		return mn_query_multicast(a, buf, len, written, needed);
	case OID_802_3_MAXIMUM_LIST_SIZE:
		v.ul = MN_MC_SLOTS;
		break;
	case OID_802_3_RCV_ERROR_ALIGNMENT:
	case OID_802_3_XMIT_ONE_COLLISION:
	case OID_802_3_XMIT_MORE_COLLISIONS:
		/* Full duplex and no FCS on the wire: none of these happen. */
		v.ul = 0;
		break;
	case OID_MOCKNIC_STACK_HUNGER:
		v.ul = a->stack_hunger_kib;
		break;
	case OID_TCP_TASK_OFFLOAD:
		return mn_offload_query(a, buf, len, written, needed);
	default:
		return NDIS_STATUS_NOT_SUPPORTED;
	}
	return mn_answer(buf, len, src, n, written, needed);
}

/*
 * The table is programmed now, but - like drivers whose hardware applies a
 * new table in the background - the request completes later, from a 1 ms
 * one-shot timer.  More groups than slots is NDIS_STATUS_MULTICAST_FULL:
 * NDIS then falls back to ALL_MULTICAST.
 */
static NDIS_STATUS mn_set_multicast(struct mn_adapter *a, PVOID buf,
				    ULONG len, PULONG read, PULONG needed)
{
	ULONG count = len / ETH_LENGTH_OF_ADDRESS;

	if (len % ETH_LENGTH_OF_ADDRESS) {
		*needed = (count + 1) * ETH_LENGTH_OF_ADDRESS;
		return NDIS_STATUS_INVALID_LENGTH;
	}
	if (count > MN_MC_SLOTS)
		return NDIS_STATUS_MULTICAST_FULL;

	NdisDprAcquireSpinLock(&a->rx_lock);
	if (len)
		NdisMoveMemory(a->mc_list, buf, len);
	a->mc_count = count;
	mn_hw_set_multicast(a);
	NdisDprReleaseSpinLock(&a->rx_lock);

	NdisDprAcquireSpinLock(&a->lock);
	a->mc_pending = TRUE;
	NdisDprReleaseSpinLock(&a->lock);
	*read = len;
	NdisMSetTimer(&a->mc_timer, MN_MC_COMPLETE_MS);
	return NDIS_STATUS_PENDING;
}

/* DISPATCH_LEVEL: completes the pended OID_802_3_MULTICAST_LIST. */
VOID NDISAPI mn_mc_timer(PVOID system1, PVOID ctx, PVOID system2,
			 PVOID system3)
{
	struct mn_adapter *a = ctx;
	BOOLEAN pending;

	NdisDprAcquireSpinLock(&a->lock);
	pending = a->mc_pending;
	a->mc_pending = FALSE;
	NdisDprReleaseSpinLock(&a->lock);
	if (pending)
		NdisMSetInformationComplete(a->handle, NDIS_STATUS_SUCCESS);
}

NDIS_STATUS NDISAPI mn_set_information(NDIS_HANDLE ctx, NDIS_OID oid,
		PVOID buf, ULONG len, PULONG read, PULONG needed)
{
	struct mn_adapter *a = ctx;
	NDIS_STATUS status;
	ULONG v;

	*read = 0;
	*needed = 0;
	switch (oid) {
	case OID_802_3_MULTICAST_LIST:
		return mn_set_multicast(a, buf, len, read, needed);
	case OID_TCP_TASK_OFFLOAD:
		return mn_offload_set(a, buf, len, read, needed);
	case OID_GEN_CURRENT_PACKET_FILTER:
	case OID_GEN_CURRENT_LOOKAHEAD:
	case OID_MOCKNIC_FAULT:
		break;
	default:
		return NDIS_STATUS_NOT_SUPPORTED;
	}

	if (len < sizeof(v)) {
		*needed = sizeof(v);
		return NDIS_STATUS_INVALID_LENGTH;
	}
	NdisMoveMemory(&v, buf, sizeof(v));

	switch (oid) {
	case OID_GEN_CURRENT_PACKET_FILTER:
		if (v & ~MN_SUPPORTED_FILTERS)
			return NDIS_STATUS_NOT_SUPPORTED;
		NdisDprAcquireSpinLock(&a->rx_lock);
		a->packet_filter = v;
		mn_hw_set_filter(a);
		NdisDprReleaseSpinLock(&a->rx_lock);
		status = NDIS_STATUS_SUCCESS;
		break;
	case OID_GEN_CURRENT_LOOKAHEAD:
		if (v > a->mtu)
			return NDIS_STATUS_INVALID_DATA;
		a->lookahead = v;
		status = NDIS_STATUS_SUCCESS;
		break;
	default:
		/* OID_MOCKNIC_FAULT: some codes do not return. */
		status = mn_fault_request(a, v, "MiniportSetInformation");
		break;
	}
	if (status == NDIS_STATUS_SUCCESS)
		*read = sizeof(v);
	return status;
}
