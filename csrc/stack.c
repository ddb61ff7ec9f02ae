/* SPDX-License-Identifier: MIT */
/*
 * stack.c - private driver stacks: guarded mappings and high-water marks.
 *
 * Layout of one reservation (addresses grow upwards):
 *
 *   guard_lo                 base                      top
 *   | PROT_NONE, NP_GUARD_BELOW | usable, painted ....... | PROT_NONE page |
 *
 * The large guard below catches overflows even from frames far bigger than
 * a page (drivers are also built with stack probes); the page above catches
 * a driver that walks off the top through its caller's frame.
 *
 * High-water marks: the usable part is painted once with NP_PAINT; a scan
 * from base finds the lowest word that changed, and repainting restores
 * only [dirty_lo, top), the part that scan found changed.
 */
#include <emmintrin.h>
#include <string.h>
#include <sys/mman.h>

#include "np.h"

#define NP_GUARD_BELOW	(1024 * 1024UL)
#define NP_GUARD_ABOVE	NP_PAGE_SIZE
#define NP_PAINT	0x5a17c0de5a17c0deULL

int np_stack_init(struct np_stack *s, size_t size)
{
	uint8_t *p;

	memset(s, 0, sizeof(*s));
	if (size < NP_STACK_MIN || size > NP_STACK_MAX)
		return -1;
	size = NP_ALIGN_UP(size, NP_PAGE_SIZE);
	s->map_len = NP_GUARD_BELOW + size + NP_GUARD_ABOVE;
	p = np_map(s->map_len, PROT_NONE, "stack");
	if (!p)
		return -1;
	if (mprotect(p + NP_GUARD_BELOW, size, PROT_READ | PROT_WRITE)) {
		np_unmap(p, s->map_len);
		return -1;
	}
	s->map = p;
	s->guard_lo = (uintptr_t)p;
	s->base = (uintptr_t)p + NP_GUARD_BELOW;
	s->top = s->base + size;
	s->dirty_lo = s->base;
	s->sample_every = 1;
	np_stack_repaint(s);
	return 0;
}

void np_stack_destroy(struct np_stack *s)
{
	if (s->map)
		np_unmap(s->map, s->map_len);
	s->map = NULL;
}

/* Bytes in use at the deepest point since the last repaint. */
size_t np_stack_scan(struct np_stack *s)
{
	const uint64_t *w = (const uint64_t *)s->base;
	const uint64_t *end = (const uint64_t *)s->top;
	const __m128i paint = _mm_set1_epi64x((long long)NP_PAINT);

	/* 64 bytes a step (the stack is page-aligned), then word by word. */
	while (w + 8 <= end) {
		const __m128i *v = (const __m128i *)w;
		__m128i same = _mm_and_si128(
			_mm_and_si128(_mm_cmpeq_epi8(_mm_load_si128(v), paint),
				      _mm_cmpeq_epi8(_mm_load_si128(v + 1), paint)),
			_mm_and_si128(_mm_cmpeq_epi8(_mm_load_si128(v + 2), paint),
				      _mm_cmpeq_epi8(_mm_load_si128(v + 3), paint)));

		if (_mm_movemask_epi8(same) != 0xffff)
			break;
		w += 8;
	}
	while (w < end && *w == NP_PAINT)
		w++;
	if ((uintptr_t)w < s->dirty_lo)
		s->dirty_lo = (uintptr_t)w;
	return s->top - (uintptr_t)w;
}

void np_stack_repaint(struct np_stack *s)
{
	uint64_t *w = (uint64_t *)s->dirty_lo;
	uint64_t *end = (uint64_t *)s->top;

	while (w < end)
		*w++ = NP_PAINT;
	s->dirty_lo = s->top;
}
