/* SPDX-License-Identifier: MIT */
/*
 * capture.c - frames at the miniport boundary, for pcapng.
 *
 * While capture is on, what the host hands MiniportSendPackets ("out") and
 * what the driver indicates ("in") are copied, with a CLOCK_REALTIME stamp,
 * into a per-adapter ring the host drains (np_api_adapter_capture_read).
 * The indication side runs on the driver's stack inside its call, so this
 * is a plain copy: no allocation, no lock (one thread per adapter).  A full
 * ring drops the frame and counts it; it never blocks the data path.
 *
 * Record: u64 time_ns, u32 length, u8 direction (0 out, 1 in), 3 bytes pad,
 * then the frame, padded to 8 bytes.  Records never wrap: one that does not
 * fit before the end is preceded by a zero-length record meaning "go back
 * to the start".
 */
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "np.h"

#define NP_CAPTURE_BYTES	(1024 * 1024)
#define NP_CAPTURE_HDR		16

struct np_capture {
	uint8_t buf[NP_CAPTURE_BYTES];
	uint64_t head, tail;		/* byte positions; tail - head = used */
};

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void np_capture_frame(struct np_adapter *a, int direction, const uint8_t *frame,
		      uint32_t len)
{
	struct np_capture *c = a->capture;
	uint64_t need = NP_CAPTURE_HDR + NP_ALIGN_UP(len, 8), at, room;
	uint64_t now;

	if (!c)
		return;
	at = c->tail % NP_CAPTURE_BYTES;
	room = NP_CAPTURE_BYTES - at;
	if (room < need) {
		/* Skip to the start: the reader sees a zero-length marker. */
		if (NP_CAPTURE_BYTES - (c->tail - c->head) < room + need) {
			a->stats.capture_dropped++;
			return;
		}
		if (room >= NP_CAPTURE_HDR)
			memset(c->buf + at, 0, NP_CAPTURE_HDR);
		c->tail += room;
		at = 0;
	} else if (NP_CAPTURE_BYTES - (c->tail - c->head) < need) {
		a->stats.capture_dropped++;
		return;
	}
	now = realtime_ns();
	memcpy(c->buf + at, &now, 8);
	memcpy(c->buf + at + 8, &len, 4);
	c->buf[at + 12] = (uint8_t)direction;
	c->buf[at + 13] = c->buf[at + 14] = c->buf[at + 15] = 0;
	memcpy(c->buf + at + NP_CAPTURE_HDR, frame, len);
	c->tail += need;
	a->stats.captured++;
}

int np_api_adapter_capture(struct np_adapter *a, int on)
{
	if (on && !a->capture) {
		a->capture = np_map(sizeof(struct np_capture), PROT_READ | PROT_WRITE,
				    "capture");
		if (!a->capture)
			return -1;
	} else if (!on && a->capture) {
		np_unmap(a->capture, sizeof(struct np_capture));
		a->capture = NULL;
	}
	return 0;
}

/* Whole records, in order, into out; the bytes written. */
size_t np_api_adapter_capture_read(struct np_adapter *a, uint8_t *out, size_t outlen)
{
	struct np_capture *c = a->capture;
	size_t used = 0;

	while (c && c->head != c->tail) {
		uint64_t at = c->head % NP_CAPTURE_BYTES;
		uint32_t len;
		uint64_t size;

		if (NP_CAPTURE_BYTES - at < NP_CAPTURE_HDR) {
			c->head += NP_CAPTURE_BYTES - at;
			continue;
		}
		memcpy(&len, c->buf + at + 8, 4);
		if (len == 0 && !memcmp(c->buf + at, "\0\0\0\0\0\0\0\0", 8)) {
			c->head += NP_CAPTURE_BYTES - at;	/* the wrap marker */
			continue;
		}
		size = NP_CAPTURE_HDR + NP_ALIGN_UP(len, 8);
		if (used + size > outlen)
			break;
		memcpy(out + used, c->buf + at, size);
		used += size;
		c->head += size;
	}
	return used;
}
