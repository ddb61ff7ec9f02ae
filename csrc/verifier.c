/* SPDX-License-Identifier: MIT */
/*
 * verifier.c - what the driver verifier records, and when it stops a driver.
 *
 * Called from exports on driver stacks: no allocation, no locks, no stdio.
 * A violation configured as fatal ends the driver call like a fault
 * (np_abort_to); otherwise it is recorded in the adapter's ring.
 */
#include <string.h>

#include "np.h"
#include "np_winfmt.h"

/*
 * Records a violation; a fatal one ends the driver call like a fault.  Runs
 * inside exports, so the message goes through np_winfmt, not stdio.
 */
__attribute__((ms_abi)) void np_verify(struct np_ctx *c, enum np_violation v,
				       const char *fmt, ...)
{
	struct np_adapter *a = c ? c->adapter : NULL;
	struct np_thread *t = np_thread_current();
	struct np_api_violation *r;
	__builtin_ms_va_list ap;

	if (!a)
		return;
	r = &a->violations[a->nviolations % NP_ARRAY_SIZE(a->violations)];
	r->kind = v;
	r->entry = t ? t->entry : 0;
	r->irql = t ? t->irql : 0;
	r->fatal = a->fatal_mask[v];
	__builtin_ms_va_start(ap, fmt);
	np_winfmt(r->text, sizeof(r->text), fmt, ap);
	__builtin_ms_va_end(ap);
	a->nviolations++;
	if (r->fatal && t && atomic_load(&t->in_driver)) {
		t->fault.code = NP_FAULT_VERIFIER;
		t->fault.signo = 0;
		t->fault.entry = t->entry;
		t->fault.irql = t->irql;
		t->fault.pc = (uintptr_t)__builtin_return_address(0);
		t->fault.sp = (uintptr_t)__builtin_frame_address(0);
		t->fault.addr = v;
		np_abort_to(t, NP_FAULT_VERIFIER);
	}
}

/* Reports (and returns 1) when an export is called above max IRQL. */
int np_verify_irql(enum np_violation v, uint8_t max, const char *fn)
{
	struct np_thread *t = np_thread_current();

	if (!t || t->irql <= max)
		return 0;
	np_verify(t->ctx, v, "%s called at IRQL %u (maximum %u)", fn,
		  t->irql, max);
	return 1;
}


/*
 * After halt: every pool allocation the adapter still has is a leak, and so
 * are map registers.
 */
void np_verify_leaks(struct np_adapter *a)
{
	struct np_api_alloc out[16];
	size_t n = np_api_adapter_allocations(a, out, NP_ARRAY_SIZE(out)), i;

	for (i = 0; i < n && i < NP_ARRAY_SIZE(out); i++) {
		char tag[5];

		memcpy(tag, &out[i].tag, 4);
		tag[4] = '\0';
		np_verify(&a->ctx, NP_VIOL_POOL_LEAK,
			  "pool allocation outstanding at halt: tag '%s', %I64u bytes",
			  tag, out[i].size);
	}
	if (a->map_registers)
		np_verify(&a->ctx, NP_VIOL_POOL_LEAK,
			  "%lu map registers still allocated at halt (no NdisMFreeMapRegisters)",
			  a->map_registers);
}
