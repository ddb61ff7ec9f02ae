/* SPDX-License-Identifier: MIT */
/*
 * trampoline.c - the one way into driver code: a balanced call on a private
 * stack.
 *
 * np_call_on_stack(t, top, fn, arg) saves every callee-saved register on the
 * caller's stack, records that stack pointer in t->saved_rsp, switches to
 * the private stack at top and calls fn(arg) (a SysV C thunk that in turn
 * calls the ms_abi driver function).  A normal return restores rsp from
 * t->saved_rsp, which rbx still points at because the thunk preserved it.
 *
 * The trap handler (trap.c) and np_abort_to() resume at np_call_abort with
 * rsp already set to t->saved_rsp and the status in rax: from there the
 * epilogue only pops what the prologue pushed, so registers the driver left
 * in any state do not matter.  The floating-point control state is
 * callee-saved in both ABIs too (MXCSR's control bits, the x87 control
 * word), and a driver stopped mid-flight may have changed rounding or
 * exception masks or left values on the x87 stack: the prologue saves MXCSR
 * and the control word beside the registers, and only the abort path, which
 * cannot trust the driver to have put them back, resets the x87 unit and
 * restores both.  A normal return skips that: the callee preserved them.
 *
 * Written as top-level asm in a .c file because setuptools will not build .S
 * sources.  Stack layout on entry: rsp = 8 (mod 16); after six pushes and
 * the 16-byte control save area it is 0 (mod 16), so the saved rsp is
 * aligned, as is the private top.  t->saved_rsp points at the save area:
 * MXCSR at +0, the x87 control word at +4.
 */
#include "np.h"

_Static_assert(offsetof(struct np_thread, saved_rsp) == 0,
	       "trampoline assumes saved_rsp at offset 0");

__asm__(
	"	.text\n"
	"	.globl	np_call_on_stack\n"
	"	.hidden	np_call_on_stack\n"
	"	.type	np_call_on_stack, @function\n"
	"	.p2align 4\n"
	"np_call_on_stack:\n"
	"	.cfi_startproc\n"
	"	pushq	%rbp\n"
	"	pushq	%rbx\n"
	"	pushq	%r12\n"
	"	pushq	%r13\n"
	"	pushq	%r14\n"
	"	pushq	%r15\n"
	"	subq	$16, %rsp\n"
	"	stmxcsr	(%rsp)\n"
	"	fnstcw	4(%rsp)\n"
	"	movq	%rdi, %rbx\n"		/* t, preserved by the thunk */
	"	movq	%rsp, (%rdi)\n"		/* t->saved_rsp */
	"	andq	$-16, %rsi\n"
	"	movq	%rsi, %rsp\n"		/* now on the private stack */
	"	movq	%rcx, %rdi\n"
	"	callq	*%rdx\n"
	"	movq	(%rbx), %rsp\n"		/* back on the caller's stack */
	"	jmp	1f\n"
	"	.globl	np_call_abort\n"
	"	.hidden	np_call_abort\n"
	"np_call_abort:\n"
	"	fninit\n"
	"	fldcw	4(%rsp)\n"
	"	ldmxcsr	(%rsp)\n"
	"1:	addq	$16, %rsp\n"
	"	popq	%r15\n"
	"	popq	%r14\n"
	"	popq	%r13\n"
	"	popq	%r12\n"
	"	popq	%rbx\n"
	"	popq	%rbp\n"
	"	cld\n"
	"	retq\n"
	"	.cfi_endproc\n"
	"	.size	np_call_on_stack, .-np_call_on_stack\n"
	"\n"
	/* np_abort_to(t, code): leave driver code from inside an export
	 * (KeBugCheckEx, a fatal verifier finding) exactly as the trap does. */
	"	.globl	np_abort_to\n"
	"	.hidden	np_abort_to\n"
	"	.type	np_abort_to, @function\n"
	"	.p2align 4\n"
	"np_abort_to:\n"
	"	movq	(%rdi), %rsp\n"
	"	movq	%rsi, %rax\n"
	"	jmp	np_call_abort\n"
	"	.size	np_abort_to, .-np_abort_to\n"
);
