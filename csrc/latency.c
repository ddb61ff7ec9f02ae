/* SPDX-License-Identifier: MIT */
/*
 * latency.c - how long a frame from the wire waits for its indication.
 *
 * The device model stamps each good frame as it lands in an RX descriptor
 * with the time it came off the cable (device.c: when the pump handed it
 * over, or when it entered the backlog); NdisMIndicateReceivePacket takes
 * the oldest stamp per packet it indicates (indicate.c).  Descriptors are
 * filled and indicated in order, so the stamps are a FIFO.  A device reset
 * forgets the stamps of the frames it dropped.  A driver that drops good
 * frames instead of indicating them skews the figures; mocknic.sys does
 * not.
 *
 * The histogram is log-linear: 8 buckets per power of two of nanoseconds
 * (12.5 % resolution), values under 8 ns exact.  Bucket i covers
 * [np_latency_floor(i), np_latency_floor(i + 1)).
 *
 * Both halves run on the driver's stack, inside its call: plain stores, no
 * allocation, no lock (the adapter is serialised).
 */
#include <string.h>

#include "np.h"

static unsigned bucket_of(uint64_t ns)
{
	unsigned shift;

	if (ns < 8)
		return (unsigned)ns;
	shift = 63 - (unsigned)__builtin_clzll(ns) - 3;
	return 8 * (shift + 1) + (unsigned)((ns >> shift) - 8);
}

void np_latency_arrived(struct np_latency *l, uint64_t ns)
{
	if (l->tail - l->head == NP_LAT_FIFO)
		l->head++;		/* never indicated: forget the oldest */
	l->arrived[l->tail++ % NP_LAT_FIFO] = ns;
}

void np_latency_indicated(struct np_latency *l, uint64_t now)
{
	uint64_t then;

	if (l->head == l->tail)
		return;
	then = l->arrived[l->head++ % NP_LAT_FIFO];
	l->bucket[bucket_of(now > then ? now - then : 0)]++;
}

void np_latency_forget(struct np_latency *l)
{
	l->head = l->tail;
}

size_t np_api_adapter_rx_latency(struct np_adapter *a, uint64_t *buckets,
				 size_t max)
{
	size_t n = max < NP_LAT_BUCKETS ? max : NP_LAT_BUCKETS;

	memcpy(buckets, a->rx_latency.bucket, n * sizeof(*buckets));
	return n;
}
