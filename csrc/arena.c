/* SPDX-License-Identifier: MIT */
/*
 * arena.c - per-context memory for what drivers allocate.
 *
 * A driver may be aborted anywhere, including inside NdisAllocateMemory, so
 * exports never touch malloc or a process-wide lock: each context (an image
 * or an adapter) owns an arena, a MAP_NORESERVE reservation carved by a
 * segregated-fit allocator with power-of-two size classes.  Dropping the
 * context unmaps the arena whole, whatever the driver left in it.
 *
 * Each block carries a header with its pool tag and links in the arena's
 * live list, which is how the verifier names allocations outstanding at
 * halt.  DMA arenas hand out bus addresses NP_DMA_BASE + offset; the device
 * model translates them back only inside live blocks.
 */
#include <string.h>
#include <sys/mman.h>

#include "np.h"

#define NP_ALLOC_MAGIC	0x4e50414cU	/* "NPAL" */
#define NP_FREE_MAGIC	0x4e504652U	/* "NPFR" */
#define NP_MIN_CLASS	6		/* 64-byte blocks, header included */

struct np_alloc {
	uint32_t magic;
	uint32_t tag;
	uint64_t len;			/* what the driver asked for */
	struct np_alloc *next, *prev;	/* live list, or free list (next) */
	uint32_t cls;
	uint32_t pad[3];
};

_Static_assert(sizeof(struct np_alloc) % 16 == 0,
	       "payloads must stay 16-byte aligned");

int np_arena_init(struct np_arena *a, size_t reserve, const char *kind,
		  int dma)
{
	void *p;

	memset(a, 0, sizeof(*a));
	atomic_flag_clear(&a->lock);
	reserve = NP_ALIGN_UP(reserve, NP_PAGE_SIZE);
	p = np_map(reserve, PROT_READ | PROT_WRITE, kind);
	if (!p)
		return -1;
	a->base = a->brk = (uintptr_t)p;
	a->end = a->base + reserve;
	a->dma = dma;
	return 0;
}

void np_arena_destroy(struct np_arena *a)
{
	if (a->base)
		np_unmap((void *)a->base, a->end - a->base);
	a->base = a->brk = a->end = 0;
}

static uint32_t size_class(size_t total)
{
	uint32_t cls = NP_MIN_CLASS;

	while (((size_t)1 << cls) < total)
		cls++;
	return cls;
}

static void *arena_alloc(struct np_arena *a, size_t len, uint32_t tag,
			 int *recycled)
{
	struct np_alloc *b;
	uint32_t cls;
	size_t total = len + sizeof(struct np_alloc);

	if (len == 0 || total < len || total > (a->end - a->base))
		return NULL;
	cls = size_class(total);
	if (cls >= NP_ARRAY_SIZE(a->free))
		return NULL;

	np_spin_lock(&a->lock);
	b = a->free[cls];
	*recycled = b != NULL;
	if (b) {
		a->free[cls] = b->next;
	} else {
		/* Blocks are aligned to their size up to a page, so a DMA
		 * buffer never straddles more pages than it must. */
		size_t align = (size_t)1 << cls;
		uintptr_t at;

		if (align > NP_PAGE_SIZE)
			align = NP_PAGE_SIZE;
		at = NP_ALIGN_UP(a->brk + sizeof(struct np_alloc), align) -
		     sizeof(struct np_alloc);
		if (at + ((size_t)1 << cls) > a->end) {
			np_spin_unlock(&a->lock);
			return NULL;
		}
		b = (struct np_alloc *)at;
		a->brk = at + ((size_t)1 << cls);
	}
	b->magic = NP_ALLOC_MAGIC;
	b->tag = tag;
	b->len = len;
	b->cls = cls;
	b->prev = NULL;
	b->next = a->live;
	if (a->live)
		a->live->prev = b;
	a->live = b;
	a->live_count++;
	a->live_bytes += len;
	np_spin_unlock(&a->lock);
	return b + 1;
}

void *np_arena_alloc(struct np_arena *a, size_t len, uint32_t tag)
{
	int recycled;

	return arena_alloc(a, len, tag, &recycled);
}

/*
 * Zeroed memory.  A block carved fresh from brk has never been written (brk
 * only grows over an anonymous mapping), so only a recycled block is
 * cleared: a large DMA block costs memory page by page as it is used, not
 * all at once when the driver allocates it.
 */
void *np_arena_zalloc(struct np_arena *a, size_t len, uint32_t tag)
{
	int recycled;
	void *p = arena_alloc(a, len, tag, &recycled);

	if (p && recycled)
		memset(p, 0, len);
	return p;
}

static struct np_alloc *header_of(struct np_arena *a, const void *va)
{
	uintptr_t p = (uintptr_t)va;

	if (p < a->base + sizeof(struct np_alloc) || p >= a->brk ||
	    (p & 15))
		return NULL;
	return (struct np_alloc *)p - 1;
}

int np_arena_free(struct np_arena *a, void *va, uint32_t *tag)
{
	struct np_alloc *b = header_of(a, va);

	if (!b)
		return -1;
	np_spin_lock(&a->lock);
	if (b->magic != NP_ALLOC_MAGIC) {
		np_spin_unlock(&a->lock);
		return -1;
	}
	if (tag)
		*tag = b->tag;
	if (b->prev)
		b->prev->next = b->next;
	else
		a->live = b->next;
	if (b->next)
		b->next->prev = b->prev;
	a->live_count--;
	a->live_bytes -= b->len;
	b->magic = NP_FREE_MAGIC;
	b->next = a->free[b->cls];
	a->free[b->cls] = b;
	np_spin_unlock(&a->lock);
	return 0;
}

/* Bytes of the live allocation at va, or 0 if va is not one. */
size_t np_arena_len(struct np_arena *a, const void *va)
{
	struct np_alloc *b = header_of(a, va);

	return b && b->magic == NP_ALLOC_MAGIC ? b->len : 0;
}

/* Is [va, va+len) inside one live block of this arena? */
int np_arena_owns(struct np_arena *a, const void *va, size_t len)
{
	uintptr_t p = (uintptr_t)va;
	struct np_alloc *b;
	int found = 0;

	if (p < a->base || p >= a->brk || len > a->brk - p)
		return 0;
	np_spin_lock(&a->lock);
	for (b = a->live; b; b = b->next) {
		uintptr_t lo = (uintptr_t)(b + 1);

		if (p >= lo && p + len <= lo + b->len) {
			found = 1;
			break;
		}
	}
	np_spin_unlock(&a->lock);
	return found;
}

size_t np_arena_report(struct np_arena *a, struct np_api_alloc *out,
		       size_t max)
{
	struct np_alloc *b;
	size_t n = 0;

	np_spin_lock_or_presume_dead(&a->lock);
	for (b = a->live; b; b = b->next) {
		if (n < max) {
			out[n].tag = b->tag;
			out[n].size = b->len;
		}
		n++;
	}
	np_spin_unlock(&a->lock);
	return n;
}
