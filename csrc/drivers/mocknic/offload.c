/* SPDX-License-Identifier: MIT */
/*
 * offload.c - task offload as NDIS 5.1 does it: OID_TCP_TASK_OFFLOAD, and
 * what a packet's per-packet info asks of the TX engine.
 *
 * The query answers what the hardware can do: IPv4 header, TCP and UDP
 * checksums both ways (IPv6 TCP and UDP too, without extension headers),
 * and IPv4 large send.  A set enables exactly the tasks it lists; a set
 * with no tasks turns every offload off, as tcpip.sys does before it
 * re-negotiates.  Until a set enables them nothing is offloaded.
 */
#include <stddef.h>

#include "mocknic.h"

#define MN_TASK_HDR	offsetof(NDIS_TASK_OFFLOAD, TaskBuffer)
#define MN_OFFLOAD_LEN	(sizeof(NDIS_TASK_OFFLOAD_HEADER) +		\
			 MN_TASK_HDR + sizeof(NDIS_TASK_TCP_IP_CHECKSUM) +	\
			 MN_TASK_HDR + sizeof(NDIS_TASK_TCP_LARGE_SEND))

/* What the hardware checks and fills in. */
static void mn_csum_caps(NDIS_TASK_TCP_IP_CHECKSUM *c)
{
	NdisZeroMemory(c, sizeof(*c));
	c->V4Transmit.IpOptionsSupported = 1;
	c->V4Transmit.TcpOptionsSupported = 1;
	c->V4Transmit.TcpChecksum = 1;
	c->V4Transmit.UdpChecksum = 1;
	c->V4Transmit.IpChecksum = 1;
	c->V4Receive = c->V4Transmit;
	c->V6Transmit.TcpOptionsSupported = 1;
	c->V6Transmit.TcpChecksum = 1;
	c->V6Transmit.UdpChecksum = 1;
	c->V6Receive = c->V6Transmit;
}

/*
 * The largest send: a 64000-byte payload, if the TX ring's bounce buffers
 * hold it with its headers (one frame spans up to tx_count - 1 of them).
 */
static ULONG mn_lso_max(const struct mn_adapter *a)
{
	ULONG room = (a->tx_count - 1) * a->tx_buf_len - MN_LSO_HEADERS;

	return room < MN_LSO_MAX_PAYLOAD ? room : MN_LSO_MAX_PAYLOAD;
}

static PNDIS_TASK_OFFLOAD mn_task_put(PUCHAR at, NDIS_TASK task, ULONG size,
				      BOOLEAN last)
{
	PNDIS_TASK_OFFLOAD t = (PNDIS_TASK_OFFLOAD)at;

	t->Version = NDIS_TASK_OFFLOAD_VERSION;
	t->Size = sizeof(NDIS_TASK_OFFLOAD);
	t->Task = task;
	t->TaskBufferLength = size;
	t->OffsetNextTask = last ? 0 : MN_TASK_HDR + size;
	return t;
}

/* An encapsulation other than 802.3 (or none given) is not ours. */
static BOOLEAN mn_header_ok(const NDIS_TASK_OFFLOAD_HEADER *h)
{
	if (h->Version && h->Version != NDIS_TASK_OFFLOAD_VERSION)
		return FALSE;
	return h->EncapsulationFormat.Encapsulation == IEEE_802_3_Encapsulation ||
	       h->EncapsulationFormat.Encapsulation == UNSPECIFIED_Encapsulation;
}

NDIS_STATUS mn_offload_query(struct mn_adapter *a, PVOID buf, ULONG len,
			     PULONG written, PULONG needed)
{
	PNDIS_TASK_OFFLOAD_HEADER h = buf;
	NDIS_TASK_TCP_LARGE_SEND lso;
	PNDIS_TASK_OFFLOAD t;
	PUCHAR at;

	if (len < MN_OFFLOAD_LEN) {
		*needed = MN_OFFLOAD_LEN;
		return NDIS_STATUS_INVALID_LENGTH;
	}
	if (!mn_header_ok(h))
		return NDIS_STATUS_NOT_SUPPORTED;
	h->Version = NDIS_TASK_OFFLOAD_VERSION;
	h->Size = sizeof(*h);
	h->Reserved = 0;
	h->OffsetFirstTask = sizeof(*h);
	h->EncapsulationFormat.Encapsulation = IEEE_802_3_Encapsulation;
	h->EncapsulationFormat.Flags.FixedHeaderSize = 1;
	h->EncapsulationFormat.EncapsulationHeaderSize = MN_ETH_HLEN;

	at = (PUCHAR)buf + sizeof(*h);
	t = mn_task_put(at, TcpIpChecksumNdisTask,
			sizeof(NDIS_TASK_TCP_IP_CHECKSUM), FALSE);
	mn_csum_caps((NDIS_TASK_TCP_IP_CHECKSUM *)t->TaskBuffer);

	at += t->OffsetNextTask;
	t = mn_task_put(at, TcpLargeSendNdisTask,
			sizeof(NDIS_TASK_TCP_LARGE_SEND), TRUE);
	NdisZeroMemory(&lso, sizeof(lso));
	lso.Version = NDIS_TASK_TCP_LARGE_SEND_V0;
	lso.MaxOffLoadSize = mn_lso_max(a);
	lso.MinSegmentCount = MN_LSO_MIN_SEGMENTS;
	lso.TcpOptions = TRUE;
	lso.IpOptions = TRUE;
	NdisMoveMemory(t->TaskBuffer, &lso, sizeof(lso));

	*written = MN_OFFLOAD_LEN;
	return NDIS_STATUS_SUCCESS;
}

/* Asks for more than mn_csum_caps offers? */
static BOOLEAN mn_csum_beyond(const NDIS_TASK_TCP_IP_CHECKSUM *want)
{
	NDIS_TASK_TCP_IP_CHECKSUM caps;
	ULONG w[4], c[4], i;

	mn_csum_caps(&caps);
	NdisMoveMemory(w, want, sizeof(w));
	NdisMoveMemory(c, &caps, sizeof(c));
	for (i = 0; i < 4; i++)
		if (w[i] & ~c[i])
			return TRUE;
	return FALSE;
}

/*
 * DISPATCH_LEVEL.  Takes the whole chain or nothing: a task we do not
 * know, or more than we offer, refuses the set.
 */
NDIS_STATUS mn_offload_set(struct mn_adapter *a, PVOID buf, ULONG len,
			   PULONG read, PULONG needed)
{
	const NDIS_TASK_OFFLOAD_HEADER *h = buf;
	NDIS_TASK_TCP_IP_CHECKSUM csum;
	NDIS_TASK_TCP_LARGE_SEND lso;
	BOOLEAN have_csum = FALSE, have_lso = FALSE;
	ULONG off, lso_max = 0;

	if (len < sizeof(*h)) {
		*needed = sizeof(*h);
		return NDIS_STATUS_INVALID_LENGTH;
	}
	if (!mn_header_ok(h))
		return NDIS_STATUS_NOT_SUPPORTED;
	NdisZeroMemory(&csum, sizeof(csum));
	for (off = h->OffsetFirstTask; off;) {
		const NDIS_TASK_OFFLOAD *t;

		if (off < sizeof(*h) || off > len || len - off < MN_TASK_HDR)
			return NDIS_STATUS_INVALID_DATA;
		t = (const NDIS_TASK_OFFLOAD *)((const UCHAR *)buf + off);
		if (t->TaskBufferLength > len - off - MN_TASK_HDR)
			return NDIS_STATUS_INVALID_DATA;
		if (t->Task == TcpIpChecksumNdisTask &&
		    t->TaskBufferLength >= sizeof(csum)) {
			NdisMoveMemory(&csum, t->TaskBuffer, sizeof(csum));
			if (mn_csum_beyond(&csum))
				return NDIS_STATUS_NOT_SUPPORTED;
			have_csum = TRUE;
		} else if (t->Task == TcpLargeSendNdisTask &&
			   t->TaskBufferLength >= sizeof(lso)) {
			NdisMoveMemory(&lso, t->TaskBuffer, sizeof(lso));
			if (lso.Version != NDIS_TASK_TCP_LARGE_SEND_V0 ||
			    lso.MaxOffLoadSize > mn_lso_max(a) ||
			    lso.MinSegmentCount < MN_LSO_MIN_SEGMENTS)
				return NDIS_STATUS_NOT_SUPPORTED;
			lso_max = lso.MaxOffLoadSize;
			have_lso = TRUE;
		} else {
			return NDIS_STATUS_NOT_SUPPORTED;
		}
		if (!t->OffsetNextTask)
			break;
		off += t->OffsetNextTask;
	}

	NdisDprAcquireSpinLock(&a->tx_lock);
	a->tx_csum = have_csum ? csum : (NDIS_TASK_TCP_IP_CHECKSUM){ 0 };
	a->lso_max = have_lso ? lso_max : 0;
	NdisDprReleaseSpinLock(&a->tx_lock);

	NdisDprAcquireSpinLock(&a->rx_lock);
	a->rx_csum = have_csum && (csum.V4Receive.TcpChecksum ||
				   csum.V4Receive.UdpChecksum ||
				   csum.V4Receive.IpChecksum ||
				   csum.V6Receive.TcpChecksum ||
				   csum.V6Receive.UdpChecksum);
	mn_wr(a, MN_RXCSUM, a->rx_csum ? MN_RXCSUM_EN : 0);
	NdisDprReleaseSpinLock(&a->rx_lock);
	*read = len;
	return NDIS_STATUS_SUCCESS;
}

/*
 * Must hold tx_lock.  The descriptor bits and MSS a packet's per-packet
 * info asks for, limited to what was enabled.  0 bits: a plain frame.
 */
UCHAR mn_offload_tx_cmd(struct mn_adapter *a, PNDIS_PACKET p, USHORT *mss)
{
	NDIS_TCP_IP_CHECKSUM_PACKET_INFO info;
	ULONG want_mss;
	UCHAR cmd = 0;

	*mss = 0;
	info.Value = (ULONG)(ULONG_PTR)NDIS_PER_PACKET_INFO_FROM_PACKET(p,
						TcpIpChecksumPacketInfo);
	want_mss = (ULONG)(ULONG_PTR)NDIS_PER_PACKET_INFO_FROM_PACKET(p,
						TcpLargeSendPacketInfo);
	if (want_mss && a->lso_max) {
		*mss = (USHORT)(want_mss < 0xffff ? want_mss : 0xffff);
		return MN_TXD_TSE;	/* every checksum of every segment */
	}
	if (info.Transmit.NdisPacketChecksumV4) {
		if (info.Transmit.NdisPacketIpChecksum && a->tx_csum.V4Transmit.IpChecksum)
			cmd |= MN_TXD_IPCS;
		if ((info.Transmit.NdisPacketTcpChecksum && a->tx_csum.V4Transmit.TcpChecksum) ||
		    (info.Transmit.NdisPacketUdpChecksum && a->tx_csum.V4Transmit.UdpChecksum))
			cmd |= MN_TXD_L4CS;
	} else if (info.Transmit.NdisPacketChecksumV6) {
		if ((info.Transmit.NdisPacketTcpChecksum && a->tx_csum.V6Transmit.TcpChecksum) ||
		    (info.Transmit.NdisPacketUdpChecksum && a->tx_csum.V6Transmit.UdpChecksum))
			cmd |= MN_TXD_L4CS;
	}
	return cmd;
}

/* The TCP payload bytes of a large send: what its completion reports. */
ULONG mn_offload_tcp_payload(const UCHAR *f, ULONG len)
{
	ULONG l3 = MN_ETH_HLEN, l4;

	if (len >= 18 && f[12] == 0x81 && f[13] == 0x00)
		l3 += MN_VLAN_HLEN;
	if (len < l3 + 20)
		return 0;
	l4 = l3 + (f[l3] & 0xf) * 4;
	if (len < l4 + 20)
		return 0;
	return len - l4 - (f[l4 + 12] >> 4) * 4;
}

/* What the RX descriptor's csum byte becomes in the indicated packet. */
ULONG_PTR mn_offload_rx_info(UCHAR csum)
{
	NDIS_TCP_IP_CHECKSUM_PACKET_INFO info;

	info.Value = 0;
	if (csum & MN_RXC_IP) {
		if (csum & MN_RXC_IP_BAD)
			info.Receive.NdisPacketIpChecksumFailed = 1;
		else
			info.Receive.NdisPacketIpChecksumSucceeded = 1;
	}
	if (csum & MN_RXC_TCP) {
		if (csum & MN_RXC_L4_BAD)
			info.Receive.NdisPacketTcpChecksumFailed = 1;
		else
			info.Receive.NdisPacketTcpChecksumSucceeded = 1;
	}
	if (csum & MN_RXC_UDP) {
		if (csum & MN_RXC_L4_BAD)
			info.Receive.NdisPacketUdpChecksumFailed = 1;
		else
			info.Receive.NdisPacketUdpChecksumSucceeded = 1;
	}
	return info.Value;
}
