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
	uintptr_t base = (uintptr_t)img->base;
	Dl_info info;

	if (f->pc >= base && f->pc < base + img->size) {
		snprintf(out->where, sizeof(out->where), "%s+0x%lx",
			 img->name, (unsigned long)(f->pc - base));
	} else if (dladdr((void *)f->pc, &info) && info.dli_sname) {
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
}

uint32_t np_call(struct np_ctx *c, enum np_entry ep, uint8_t irql,
		 np_thunk_fn fn, void *arg, uint64_t *ret)
{
	struct np_thread *t = np_thread_get();
	struct np_stack *s = &c->stack;
	uint64_t rv, deadline = c->deadline_ns[ep];
	static int watchdog_armed;
	int sample;

	if (!t)
		return STATUS_INSUFFICIENT_RESOURCES;
	if (c->faulted || c->image->ctx.faulted)
		return NP_REFUSED_FAULTED;
	if (atomic_load_explicit(&t->in_driver, memory_order_relaxed))
		return STATUS_INVALID_PARAMETER;	/* our bug: no nesting */

	sample = s->sample_countdown == 0;
	if (sample) {
		s->sample_countdown = s->sample_every - 1;
		measure(s);
	} else {
		s->sample_countdown--;
	}

	/*
	 * Only this thread and its own signal handler read most of this, so
	 * relaxed stores and a signal fence suffice; the watchdog thread reads
	 * in_driver/call_seq/budget_ns and tolerates a stale view by a tick.
	 */
	t->guard_lo = s->guard_lo;
	t->stack_base = s->base;
	t->stack_top = s->top;
	t->entry = ep;
	t->irql = irql;
	t->ctx = c;
	t->fault.code = 0;
	atomic_store_explicit(&t->call_seq,
			      atomic_load_explicit(&t->call_seq, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&t->budget_ns, deadline, memory_order_relaxed);
	if (deadline && !watchdog_armed) {
		np_watchdog_arm();
		watchdog_armed = 1;
	}
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&t->in_driver, 1, memory_order_release);
	atomic_signal_fence(memory_order_seq_cst);

	rv = np_call_on_stack(t, s->top, fn, arg);

	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&t->in_driver, 0, memory_order_release);
	atomic_signal_fence(memory_order_seq_cst);
	t->ctx = NULL;
	s->calls[ep]++;

	if (t->fault.code) {
		size_t used = measure(s);

		if (used > s->hw_entry[ep])
			s->hw_entry[ep] = used;
		c->fault = t->fault;
		c->faulted = 1;
		/* The image's global state may be torn too: drop it whole. */
		c->image->ctx.faulted = 1;
		return t->fault.code;
	}
	if (sample) {
		size_t used = measure(s);

		if (used > s->hw_entry[ep])
			s->hw_entry[ep] = used;
	}
	if (ret)
		*ret = rv;
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
