/* SPDX-License-Identifier: MIT */
/*
 * offload.c - what checksum and segmentation offload do to a frame:
 * filling in IPv4, TCP and UDP checksums, checking them, and cutting a TCP
 * frame into MSS-sized segments.  The mock NIC's TX and RX engines use it
 * (device.c) as hardware would; so does the host for what NDIS 5.1 cannot
 * offload (IPv6 large sends).
 *
 * Frames are Ethernet II with at most one 802.1Q tag, carrying IPv4 (any
 * header length) or IPv6 (no extension headers) and TCP or UDP; anything
 * else is left as it is.  No allocation, no stdio: the device model calls
 * this on the driver's stack.
 */
#include <string.h>

#include "np.h"

#define ETH_P_IPV4	0x0800
#define ETH_P_IPV6	0x86DD
#define ETH_P_8021Q	0x8100
#define IPPROTO_TCP_	6
#define IPPROTO_UDP_	17
#define TCP_FIN		0x01
#define TCP_PSH		0x08

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* One's-complement sum of [p, p+len), added to sum (not folded). */
static uint64_t sum_bytes(const uint8_t *p, uint32_t len, uint64_t sum)
{
	uint32_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/*
 * Finds the IP and transport headers.  0 if the frame is not TCP or UDP
 * over IPv4 or IPv6 with the whole transport header present.  An IPv4
 * fragment other than the first has no transport header: not parsed.
 */
int np_offload_parse(const uint8_t *f, uint32_t len, struct np_l4 *h)
{
	uint32_t l3 = 14, ip_len;
	uint16_t type;

	memset(h, 0, sizeof(*h));
	if (len < 14)
		return 0;
	type = get16(f + 12);
	if (type == ETH_P_8021Q) {
		if (len < 18)
			return 0;
		type = get16(f + 16);
		l3 = 18;
	}
	h->l3 = l3;
	if (type == ETH_P_IPV4) {
		uint32_t ihl;

		if (len < l3 + 20 || (f[l3] >> 4) != 4)
			return 0;
		ihl = (f[l3] & 0xf) * 4u;
		ip_len = get16(f + l3 + 2);
		if (ihl < 20 || ip_len < ihl || l3 + ip_len > len)
			return 0;
		h->v4 = 1;
		h->l4 = l3 + ihl;
		h->proto = f[l3 + 9];
		if (get16(f + l3 + 6) & 0x3fff) {	/* MF or an offset */
			h->proto = 0;
			h->end = l3 + ip_len;
			return 1;
		}
	} else if (type == ETH_P_IPV6) {
		if (len < l3 + 40 || (f[l3] >> 4) != 6)
			return 0;
		ip_len = 40 + get16(f + l3 + 4);
		if (l3 + ip_len > len)
			return 0;
		h->l4 = l3 + 40;
		h->proto = f[l3 + 6];
	} else {
		return 0;
	}
	h->end = l3 + ip_len;
	if (h->proto == IPPROTO_TCP_) {
		if (h->end < h->l4 + 20 || h->end < h->l4 + (f[h->l4 + 12] >> 4) * 4u)
			return 0;
		h->payload = h->l4 + (f[h->l4 + 12] >> 4) * 4u;
	} else if (h->proto == IPPROTO_UDP_) {
		if (h->end < h->l4 + 8)
			return 0;
		h->payload = h->l4 + 8;
	} else {
		h->proto = 0;
	}
	return 1;
}

/* The transport checksum over the pseudo-header and [l4, end). */
static uint16_t l4_sum(const uint8_t *f, const struct np_l4 *h)
{
	uint32_t l4_len = h->end - h->l4;
	uint64_t sum;

	if (h->v4)
		sum = sum_bytes(f + h->l3 + 12, 8, 0);
	else
		sum = sum_bytes(f + h->l3 + 8, 32, 0);
	sum += h->proto + l4_len;
	return fold(sum_bytes(f + h->l4, l4_len, sum));
}

static uint32_t l4_csum_at(const struct np_l4 *h)
{
	return h->l4 + (h->proto == IPPROTO_TCP_ ? 16 : 6);
}

void np_offload_fill(uint8_t *f, uint32_t len, uint32_t what)
{
	struct np_l4 h;

	if (!np_offload_parse(f, len, &h))
		return;
	if ((what & NP_CSUM_IP) && h.v4) {
		put16(f + h.l3 + 10, 0);
		put16(f + h.l3 + 10,
		      (uint16_t)~fold(sum_bytes(f + h.l3, h.l4 - h.l3, 0)));
	}
	if ((what & (NP_CSUM_TCP | NP_CSUM_UDP)) && h.proto) {
		uint32_t at = l4_csum_at(&h);
		uint16_t c;

		put16(f + at, 0);
		c = (uint16_t)~l4_sum(f, &h);
		/* In UDP, 0 means "no checksum": all ones stands for it. */
		if (h.proto == IPPROTO_UDP_ && c == 0)
			c = 0xffff;
		put16(f + at, c);
	}
}

/*
 * For a TCP frame handed on whole as GSO (a virtio_net_hdr with
 * NEEDS_CSUM): the IPv4 header checksum filled in, the TCP one left as the
 * pseudo-header's sum, which whoever cuts the frame completes per segment.
 * 0 if it is no TCP frame.
 */
int np_offload_partial(uint8_t *f, uint32_t len, struct np_l4 *h)
{
	uint64_t sum;

	if (!np_offload_parse(f, len, h) || h->proto != IPPROTO_TCP_)
		return 0;
	np_offload_fill(f, len, NP_CSUM_IP);
	if (h->v4)
		sum = sum_bytes(f + h->l3 + 12, 8, 0);
	else
		sum = sum_bytes(f + h->l3 + 8, 32, 0);
	put16(f + h->l4 + 16, fold(sum + h->proto + (h->end - h->l4)));
	return 1;
}

uint32_t np_offload_check(const uint8_t *f, uint32_t len)
{
	struct np_l4 h;
	uint32_t r = 0;

	if (!np_offload_parse(f, len, &h))
		return 0;
	if (h.v4) {
		r |= NP_CSUM_IP;
		if (fold(sum_bytes(f + h.l3, h.l4 - h.l3, 0)) != 0xffff)
			r |= NP_CSUM_IP_BAD;
	}
	if (h.proto == IPPROTO_UDP_ && h.v4 && get16(f + h.l4 + 6) == 0)
		return r;			/* sent without a checksum */
	if (h.proto) {
		r |= h.proto == IPPROTO_TCP_ ? NP_CSUM_TCP : NP_CSUM_UDP;
		if (l4_sum(f, &h) != 0xffff)
			r |= NP_CSUM_L4_BAD;
	}
	return r;
}

/*
 * Cuts a TCP frame into segments of at most mss payload bytes, built one at
 * a time in seg (seg_room bytes) and handed to emit:
 * the headers copied, IP lengths set, the IPv4 id + 1 and the sequence
 * number advanced per segment, FIN and PSH kept for the last, checksums
 * filled in.  Returns the segments emitted, 0 if the frame is no TCP frame,
 * mss is 0 or a segment would not fit seg; a frame that needs no cutting
 * goes out whole (1).
 */
uint32_t np_offload_segment(const uint8_t *f, uint32_t len, uint32_t mss,
			    uint8_t *seg, uint32_t seg_room,
			    np_offload_emit emit, void *ctx)
{
	struct np_l4 h;
	uint32_t hdr, data, off, n = 0, seq;
	uint16_t id;
	uint8_t flags;

	if (!mss || !np_offload_parse(f, len, &h) || h.proto != IPPROTO_TCP_ ||
	    h.payload + mss > seg_room)
		return 0;
	hdr = h.payload;
	data = h.end - hdr;
	seq = get32(f + h.l4 + 4);
	id = h.v4 ? get16(f + h.l3 + 4) : 0;
	flags = f[h.l4 + 13];
	for (off = 0; off < data || (data == 0 && n == 0); off += mss) {
		uint32_t chunk = data - off < mss ? data - off : mss;
		int last = off + chunk >= data;

		memcpy(seg, f, hdr);
		memcpy(seg + hdr, f + hdr + off, chunk);
		if (h.v4) {
			put16(seg + h.l3 + 2, (uint16_t)(hdr - h.l3 + chunk));
			put16(seg + h.l3 + 4, (uint16_t)(id + n));
		} else {
			put16(seg + h.l3 + 4, (uint16_t)(hdr - h.l4 + chunk));
		}
		put32(seg + h.l4 + 4, seq + off);
		if (!last)
			seg[h.l4 + 13] = flags & (uint8_t)~(TCP_FIN | TCP_PSH);
		np_offload_fill(seg, hdr + chunk, NP_CSUM_IP | NP_CSUM_TCP);
		emit(ctx, seg, hdr + chunk);
		n++;
		if (data == 0)
			break;
	}
	return n;
}
