/* SPDX-License-Identifier: MIT */
/*
 * call.c - np_call(): every entry into driver code, with its bookkeeping.
 *
 * Invariants:
 *   - a thread is in at most one driver call at a time: exports that call
 *     back into the driver (NdisMSynchronizeWithInterrupt) do so directly on
 *     the private stack already in use, never through np_call;
 *   - no Python runs while t->in_driver is set;
 *   - a context whose driver faulted is never entered again: its state was
 *     abandoned mid-flight, like a bugchecked driver instance.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "np.h"

uint64_t np_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t np_api_now_ns(void)
{
	return np_now_ns();
}

int np_api_version(void)
{
	return NP_API_VERSION;
}

void np_set_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int np_ctx_init(struct np_ctx *c, struct np_image *img, size_t stack_size,
		size_t arena_size)
{
	memset(c, 0, sizeof(*c));
	c->image = img;
	if (np_stack_init(&c->stack, stack_size))
		return -1;
	if (np_arena_init(&c->arena, arena_size, "arena", 0)) {
		np_stack_destroy(&c->stack);
		return -1;
	}
	return 0;
}

void np_ctx_destroy(struct np_ctx *c)
{
	np_arena_destroy(&c->arena);
	np_stack_destroy(&c->stack);
}

/* Fold the stack used since the last repaint into the lifetime mark. */
static size_t measure(struct np_stack *s)
{
	size_t used = np_stack_scan(s);

	if (used > s->hw_lifetime)
		s->hw_lifetime = used;
	np_stack_repaint(s);
	return used;
}

static void describe(struct np_ctx *c, struct np_api_fault *out)
{
	const struct np_fault *f = &c->fault;
	struct np_image *img = c->image;
	Dl_info info;
	unsigned m;

	for (m = 0; m < img->npe; m++) {
		uintptr_t base = (uintptr_t)img->pe[m].base;

		if (f->pc >= base && f->pc < base + img->pe[m].size) {
			snprintf(out->where, sizeof(out->where), "%s+0x%lx",
				 img->pe[m].name, (unsigned long)(f->pc - base));
			return;
		}
	}
	if (dladdr((void *)f->pc, &info) && info.dli_sname) {
		/* Inside one of our exports, on the driver's behalf. */
		snprintf(out->where, sizeof(out->where), "%s+0x%lx (called by %s)",
			 info.dli_sname,
			 (unsigned long)(f->pc - (uintptr_t)info.dli_saddr),
			 img->name);
	} else {
		snprintf(out->where, sizeof(out->where), "0x%lx",
			 (unsigned long)f->pc);
	}
}

void np_ctx_fault_report(struct np_ctx *c, struct np_api_fault *out)
{
	memset(out, 0, sizeof(*out));
	if (!c->fault.code)
		return;
	out->code = c->fault.code;
	out->signo = c->fault.signo;
	out->addr = c->fault.addr;
	out->pc = c->fault.pc;
	out->sp = c->fault.sp;
	out->entry = c->fault.entry;
	out->irql = c->fault.irql;
	memcpy(out->bugcheck, c->fault.bugcheck, sizeof(out->bugcheck));
	if (c->fault.sp && c->fault.sp <= c->stack.top)
		out->depth = c->stack.top - c->fault.sp;
	describe(c, out);
	/* A trapped fault in driver code: which instruction, and what it is. */
	if (c->fault.signo) {
		size_t n = np_insn_fetch(c->image, c->fault.pc, out->insn), len;

		len = np_insn_describe(out->insn, n, c->fault.addr,
				       out->insn_text, sizeof(out->insn_text));
		out->insn_decoded = len != 0;
		out->insn_len = (uint8_t)(len ? len : n < 8 ? n : 8);
	}
}

/* The driver faulted in this call: keep the report, abandon the image. */
uint32_t np_call_faulted(struct np_ctx *c, struct np_thread *t,
			 enum np_entry ep)
{
	size_t used = measure(&c->stack);

	if (used > c->stack.hw_entry[ep])
		c->stack.hw_entry[ep] = used;
	c->fault = t->fault;
	c->faulted = 1;
	/* The image's global state may be torn too: drop it whole. */
	c->image->ctx.faulted = 1;
	return t->fault.code;
}

/*
 * A call whose stack use is measured: start from a freshly painted stack so
 * that what the scan finds afterwards is this entry point's alone.
 */
uint32_t np_call_measured(struct np_ctx *c, enum np_entry ep, uint8_t irql,
			  np_thunk_fn fn, void *arg, uint64_t *ret)
{
	struct np_stack *s = &c->stack;
	uint32_t rc;
	size_t used;

	s->sample_countdown[ep] = s->sample_every - 1;
	if (c->deadline_ns[ep])
		np_watchdog_arm();
	measure(s);
	rc = np_call_enter(c, ep, irql, fn, arg, ret);
	if (rc)
		return rc;
	used = measure(s);
	if (used > s->hw_entry[ep])
		s->hw_entry[ep] = used;
	return 0;
}

void np_ctx_stack_report(struct np_ctx *c, struct np_api_stack *out)
{
	struct np_stack *s = &c->stack;
	int i;

	_Static_assert(NP_EP_COUNT == NP_ARRAY_SIZE(out->entry),
		       "np_api_stack must have a slot per entry point");
	memset(out, 0, sizeof(*out));
	if (!c->faulted)
		measure(s);
	out->size = s->top - s->base;
	out->lifetime = s->hw_lifetime;
	for (i = 0; i < NP_EP_COUNT; i++) {
		out->entry[i] = s->hw_entry[i];
		out->calls[i] = s->calls[i];
	}
}
