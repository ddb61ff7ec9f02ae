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
 * High-water marks: the usable part is painted with NP_PAINT; a scan finds
 * the lowest word that changed, and repainting restores only [dirty_lo,
 * top), the part that scan found changed.
 *
 * Painting is lazy, page by page, so a stack costs only the memory its
 * driver uses: [painted_lo, top) is painted, and below it lie pages never
 * written since the mapping was made.  A driver that goes deeper touches
 * them for the first time; mincore() says which are resident, and the
 * lowest word it left non-zero there is its mark.  Drivers probe every page
 * of a large frame on the way down, so the touched pages are contiguous.
 */
#include <emmintrin.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#include "np.h"

#define NP_GUARD_BELOW	(1024 * 1024UL)
#define NP_GUARD_ABOVE	NP_PAGE_SIZE
#define NP_PAINT	0x5a17c0de5a17c0deULL
#define NP_MINCORE_CHUNK	256	/* pages per mincore() call */

/*
 * Lowest page of [from, to) that is resident, or to.  false if mincore()
 * cannot say (a sandbox refusing it): the scan then reads the words.
 */
static bool lowest_resident(uintptr_t from, uintptr_t to, uintptr_t *found)
{
	unsigned char vec[NP_MINCORE_CHUNK];
	uintptr_t at;
	size_t i, pages;

	for (at = from; at < to; at += pages * NP_PAGE_SIZE) {
		pages = (to - at) / NP_PAGE_SIZE;
		if (pages > NP_MINCORE_CHUNK)
			pages = NP_MINCORE_CHUNK;
		if (mincore((void *)at, pages * NP_PAGE_SIZE, vec))
			return false;
		for (i = 0; i < pages; i++) {
			if (vec[i] & 1) {
				*found = at + i * NP_PAGE_SIZE;
				return true;
			}
		}
	}
	*found = to;
	return true;
}

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
	s->painted_lo = s->top;
	s->dirty_lo = s->top;
	s->sample_every = 1;
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
	const uint64_t *w = (const uint64_t *)s->painted_lo;
	const uint64_t *end = (const uint64_t *)s->top;
	const __m128i paint = _mm_set1_epi64x((long long)NP_PAINT);
	uintptr_t touched;

	if (s->painted_lo > s->base) {
		/* Without mincore(), every unpainted word is looked at: pages
		 * never written read as zero. */
		bool exact = lowest_resident(s->base, s->painted_lo, &touched);

		if (!exact)
			touched = s->base;
		w = (const uint64_t *)touched;
		while ((uintptr_t)w < s->painted_lo && *w == 0)
			w++;
		if ((uintptr_t)w >= s->painted_lo && exact &&
		    touched < s->painted_lo)
			w = (const uint64_t *)touched;	/* only zeros written */
		if ((uintptr_t)w < s->painted_lo) {
			touched = NP_ALIGN_DOWN((uintptr_t)w, NP_PAGE_SIZE);
			if (touched < s->dirty_lo)
				s->dirty_lo = touched;
			return s->top - (uintptr_t)w;
		}
		w = (const uint64_t *)s->painted_lo;
	}

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
	if (s->dirty_lo < s->painted_lo)
		s->painted_lo = s->dirty_lo;
	s->dirty_lo = s->top;
}
