/* SPDX-License-Identifier: MIT */
/*
 * emulate.c - the kernel-mode instructions an MSVC-built x64 driver inlines,
 * carried out on the faulting context.
 *
 * The DDK makes KeGetCurrentIrql, KeRaiseIrql and KeLowerIrql inline moves
 * from and to CR8, and KeQueryInterruptTime, KeQuerySystemTime and
 * KeQueryTickCount inline loads from KUSER_SHARED_DATA at
 * 0xFFFFF78000000000.  In user space a CR move raises #GP (SIGSEGV,
 * SI_KERNEL) and a load from that kernel address #PF (SIGSEGV, si_addr the
 * address), so the trap handler hands such faults here, as Wine's
 * ntoskrnl.exe does with its exceptions.  Exactly these forms are decoded
 * and emulated:
 *
 *   [REX] 0F 20 /r             mov r64, cr8       (ModRM.reg + REX.R = 8)
 *   [REX] 0F 22 /r             mov cr8, r64       (value 0..15)
 *   [66] [REX] 8A /r           mov r8, [mem]
 *   [66] [REX] 8B /r           mov r16/32/64, [mem]
 *   [66] [REX] 0F B6/B7 /r     movzx r16/32/64, byte/word [mem]
 *   [66] [REX] A0/A1 moffs64   mov al/ax/eax/rax, [moffs64]
 *
 * where [mem] is any ModRM/SIB memory form but RIP-relative, and the bytes
 * read lie wholly in the 4 KiB page at 0xFFFFF78000000000.  An IRQL lives
 * in np_thread.irql, where the HAL exports and the verifier see it; the
 * page is rebuilt from our clocks on every read.  Anything else stays the
 * driver's fault; np_insn_describe() then names the instruction for the
 * report.  int 0x29 (__fastfail) is no emulation but a bug check 0x139
 * (KERNEL_SECURITY_CHECK_FAILURE), as in Windows' kernel.
 *
 * Everything here but np_insn_describe() and np_kuser_init() runs in the
 * signal handler, so none of it allocates, locks or uses stdio (checked by
 * tests/test_export_objects.py).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <ucontext.h>

#include "np.h"
#include "np_winfmt.h"

#define KUSER_SHARED_DATA		0xFFFFF78000000000ULL
#define KUSER_PAGE			4096U

/* KUSER_SHARED_DATA fields (ntddk.h offsets, unchanged since XP x64). */
#define KUSER_TICK_COUNT_LOW		0x000	/* ULONG, deprecated */
#define KUSER_TICK_COUNT_MULTIPLIER	0x004	/* ULONG */
#define KUSER_INTERRUPT_TIME		0x008	/* KSYSTEM_TIME */
#define KUSER_SYSTEM_TIME		0x014	/* KSYSTEM_TIME */
#define KUSER_TIME_ZONE_BIAS		0x020	/* KSYSTEM_TIME: 0, UTC */
#define KUSER_IMAGE_NUMBER_LOW		0x02c	/* USHORT */
#define KUSER_IMAGE_NUMBER_HIGH		0x02e	/* USHORT */
#define KUSER_NT_SYSTEM_ROOT		0x030	/* WCHAR[260] */
#define KUSER_NT_PRODUCT_TYPE		0x264	/* ULONG */
#define KUSER_PRODUCT_TYPE_IS_VALID	0x268	/* BOOLEAN */
#define KUSER_NT_MAJOR_VERSION		0x26c	/* ULONG */
#define KUSER_NT_MINOR_VERSION		0x270	/* ULONG */
#define KUSER_TICK_COUNT		0x320	/* KSYSTEM_TIME */

#define NT_PRODUCT_WIN_NT		1
#define FAST_FAIL_VECTOR		0x29
#define KERNEL_SECURITY_CHECK_FAILURE	0x139

/* ucontext's slot for each x86 register number (rax, rcx, ... r15). */
static const int greg_slot[16] = {
	REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
	REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
};

/*
 * The constant part of the page: what a driver of the NDIS 5.1 x64 era
 * (Windows XP x64 / Server 2003, NT 5.2) may look at.  Filled once by
 * np_kuser_init() before any driver runs; read-only afterwards.
 */
static uint8_t kuser_static[KUSER_PAGE];

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

void np_kuser_init(void)
{
	static const char root[] = "C:\\WINDOWS";
	uint16_t amd64 = 0x8664;
	size_t i;

	put32(kuser_static + KUSER_TICK_COUNT_MULTIPLIER,
	      (uint32_t)(((uint64_t)NP_TICK_100NS << 24) / 10000));
	memcpy(kuser_static + KUSER_IMAGE_NUMBER_LOW, &amd64, 2);
	memcpy(kuser_static + KUSER_IMAGE_NUMBER_HIGH, &amd64, 2);
	for (i = 0; root[i]; i++)
		kuser_static[KUSER_NT_SYSTEM_ROOT + 2 * i] = (uint8_t)root[i];
	put32(kuser_static + KUSER_NT_PRODUCT_TYPE, NT_PRODUCT_WIN_NT);
	kuser_static[KUSER_PRODUCT_TYPE_IS_VALID] = 1;
	put32(kuser_static + KUSER_NT_MAJOR_VERSION, 5);
	put32(kuser_static + KUSER_NT_MINOR_VERSION, 2);
}

/* A KSYSTEM_TIME: LowPart, High1Time, High2Time (equal: never torn). */
static void ksystem_time(uint8_t out[12], uint64_t v)
{
	put32(out, (uint32_t)v);
	put32(out + 4, (uint32_t)(v >> 32));
	put32(out + 8, (uint32_t)(v >> 32));
}

/* Bytes [off, off + len) of the page as a driver would see them now. */
static void kuser_read(uint32_t off, unsigned len, uint8_t *out)
{
	uint64_t now = np_now_ns() / 100, ticks = now / NP_TICK_100NS;
	struct { uint32_t at, len; uint8_t bytes[12]; } live[4] = {
		{ KUSER_TICK_COUNT_LOW, 4, { 0 } },
		{ KUSER_INTERRUPT_TIME, 12, { 0 } },
		{ KUSER_SYSTEM_TIME, 12, { 0 } },
		{ KUSER_TICK_COUNT, 12, { 0 } },
	};
	unsigned i, b;

	put32(live[0].bytes, (uint32_t)ticks);
	ksystem_time(live[1].bytes, now);
	ksystem_time(live[2].bytes, np_system_time());
	ksystem_time(live[3].bytes, ticks);
	memcpy(out, kuser_static + off, len);
	for (i = 0; i < NP_ARRAY_SIZE(live); i++)
		for (b = 0; b < len; b++)
			if (off + b >= live[i].at && off + b < live[i].at + live[i].len)
				out[b] = live[i].bytes[off + b - live[i].at];
}

/* ---- decoding ------------------------------------------------------------- */

enum insn_kind {
	INSN_UNKNOWN,
	INSN_MOV_FROM_CR,		/* cr: source, reg: destination */
	INSN_MOV_TO_CR,			/* cr: destination, reg: source */
	INSN_MOV_FROM_DR,
	INSN_MOV_TO_DR,
	INSN_LOAD,			/* mov/movzx reg, [mem] */
	INSN_STORE,			/* mov [mem], reg/imm: described only */
	INSN_FASTFAIL,			/* int 0x29 */
	INSN_NAMED,			/* recognised, never emulated: see name */
};

struct insn {
	enum insn_kind kind;
	unsigned len;
	const char *name;		/* INSN_NAMED, or the load's mnemonic */
	unsigned cr, reg;
	unsigned size;			/* bytes read */
	unsigned width;			/* bytes of the register written */
	int high_byte;			/* ah, ch, dh, bh */
	int zero_extend;		/* movzx */
	/* memory operand */
	int mem, rip_relative, gs;
	int base, index;		/* -1: none */
	unsigned scale;
	int64_t disp;
	uint64_t moffs;
	int has_moffs;
};

#define REX_W	8
#define REX_R	4
#define REX_X	2
#define REX_B	1

/* The ModRM memory operand at p; returns its length, or 0 if out of bytes. */
static unsigned decode_modrm_mem(const uint8_t *p, size_t n, int rex,
				 struct insn *in)
{
	unsigned mod = p[0] >> 6, rm = p[0] & 7, used = 1;
	unsigned disp_len = mod == 1 ? 1 : mod == 2 ? 4 : 0;
	int32_t disp32;

	in->base = in->index = -1;
	in->scale = 1;
	in->disp = 0;
	if (mod == 3)
		return 1;		/* register operand: no memory */
	in->mem = 1;
	if (rm == 4) {
		unsigned sib, idx;

		if (n < 2)
			return 0;
		sib = p[1];
		used = 2;
		idx = ((sib >> 3) & 7) | (rex & REX_X ? 8 : 0);
		in->scale = 1U << (sib >> 6);
		if (idx != 4)
			in->index = (int)idx;
		if ((sib & 7) == 5 && mod == 0)
			disp_len = 4;	/* no base, disp32 */
		else
			in->base = (int)((sib & 7) | (rex & REX_B ? 8 : 0));
	} else if (rm == 5 && mod == 0) {
		in->rip_relative = 1;
		disp_len = 4;
	} else {
		in->base = (int)(rm | (rex & REX_B ? 8 : 0));
	}
	if (n < used + disp_len)
		return 0;
	if (disp_len == 1) {
		in->disp = (int8_t)p[used];
	} else if (disp_len == 4) {
		memcpy(&disp32, p + used, 4);
		in->disp = disp32;
	}
	return used + disp_len;
}

/* Instructions a kernel driver may inline that user space cannot run. */
static const char *privileged_name(const uint8_t *p, size_t n)
{
	switch (p[0]) {
	case 0xfa:
		return "cli";
	case 0xfb:
		return "sti";
	case 0xf4:
		return "hlt";
	case 0xe4: case 0xe5: case 0xec: case 0xed:
		return "in (port I/O: use READ_PORT_*)";
	case 0xe6: case 0xe7: case 0xee: case 0xef:
		return "out (port I/O: use WRITE_PORT_*)";
	case 0x6c: case 0x6d:
		return "ins (port I/O: use READ_PORT_BUFFER_*)";
	case 0x6e: case 0x6f:
		return "outs (port I/O: use WRITE_PORT_BUFFER_*)";
	case 0xcf:
		return "iretq";
	case 0x0f:
		if (n < 2)
			return NULL;
		switch (p[1]) {
		case 0x30:
			return "wrmsr";
		case 0x32:
			return "rdmsr";
		case 0x0b:
			return "ud2";
		case 0x06:
			return "clts";
		case 0x08:
			return "invd";
		case 0x09:
			return "wbinvd";
		case 0x01:
			return n >= 3 && (p[2] >> 6) != 3 &&
			       ((p[2] >> 3) & 7) == 7 ? "invlpg" :
			       "a system instruction (0f 01: lgdt/lidt/swapgs/...)";
		}
	}
	return NULL;
}

/*
 * Decode the instruction at p (n bytes readable).  Returns 0 when it is
 * none of the forms above (in->kind INSN_UNKNOWN), else its length.
 */
static unsigned insn_decode(const uint8_t *p, size_t n, struct insn *in)
{
	unsigned i = 0, used;
	int opsize16 = 0, rex = 0;
	const char *named;

	memset(in, 0, sizeof(*in));
	in->base = in->index = -1;
	for (; i < n && i < 4; i++) {
		if (p[i] == 0x66)
			opsize16 = 1;
		else if (p[i] == 0x65)
			in->gs = 1;
		else
			break;
	}
	if (i < n && (p[i] & 0xf0) == 0x40)
		rex = p[i++];
	if (i >= n)
		return 0;
	p += i;
	n -= i;

	if (n >= 2 && p[0] == 0xcd && p[1] == FAST_FAIL_VECTOR && !rex && !opsize16) {
		in->kind = INSN_FASTFAIL;
		return in->len = i + 2;
	}
	if (n >= 3 && p[0] == 0x0f && (p[1] & 0xfc) == 0x20 && !opsize16) {
		/* mov to/from CRn/DRn: the mod bits are ignored (register form) */
		static const enum insn_kind kinds[4] = {
			INSN_MOV_FROM_CR, INSN_MOV_FROM_DR, INSN_MOV_TO_CR, INSN_MOV_TO_DR,
		};

		in->kind = kinds[p[1] & 3];
		in->cr = ((p[2] >> 3) & 7) | (rex & REX_R ? 8 : 0);
		in->reg = (p[2] & 7) | (rex & REX_B ? 8 : 0);
		return in->len = i + 3;
	}
	if (p[0] == 0xa0 || p[0] == 0xa1) {
		if (n < 9)
			return 0;
		in->kind = INSN_LOAD;
		in->name = "mov";
		in->mem = in->has_moffs = 1;
		memcpy(&in->moffs, p + 1, 8);
		in->reg = 0;
		in->size = p[0] == 0xa0 ? 1 : rex & REX_W ? 8 : opsize16 ? 2 : 4;
		in->width = in->size;
		return in->len = i + 9;
	}
	if (p[0] == 0x8a || p[0] == 0x8b ||
	    (n >= 2 && p[0] == 0x0f && (p[1] == 0xb6 || p[1] == 0xb7))) {
		unsigned op = p[0] == 0x0f ? 2 : 1;
		unsigned width = rex & REX_W ? 8 : opsize16 ? 2 : 4;

		if (n < op + 1)
			return 0;
		used = decode_modrm_mem(p + op, n - op, rex, in);
		if (!used || !in->mem)
			return 0;
		in->kind = INSN_LOAD;
		in->reg = ((p[op] >> 3) & 7) | (rex & REX_R ? 8 : 0);
		if (p[0] == 0x8a) {
			in->name = "mov";
			in->size = in->width = 1;
			in->high_byte = !rex && in->reg >= 4;
		} else if (p[0] == 0x8b) {
			in->name = "mov";
			in->size = in->width = width;
		} else {
			in->name = "movzx";
			in->size = p[1] == 0xb6 ? 1 : 2;
			in->width = width;
			in->zero_extend = 1;
		}
		return in->len = i + op + used;
	}
	if (n >= 2 && (p[0] == 0x88 || p[0] == 0x89 ||
		       ((p[0] == 0xc6 || p[0] == 0xc7) && !(p[1] & 0x38)))) {
		used = decode_modrm_mem(p + 1, n - 1, rex, in);
		if (!used || !in->mem)
			return 0;
		in->kind = INSN_STORE;
		in->len = i + 1 + used;
		if (p[0] == 0xc6)
			in->len += 1;
		else if (p[0] == 0xc7)
			in->len += opsize16 ? 2 : 4;
		return in->len;
	}
	named = privileged_name(p, n);
	if (named) {
		in->kind = INSN_NAMED;
		in->name = named;
		return in->len = i + 1;
	}
	return 0;
}

/* ---- emulation (in the signal handler) ------------------------------------ */

/* The module and executable span RIP lies in, or NULL. */
static const struct np_pe *code_at(const struct np_image *img, uintptr_t pc,
				   uintptr_t *end)
{
	unsigned m, s;

	for (m = 0; m < img->npe; m++) {
		const struct np_pe *pe = &img->pe[m];
		uintptr_t base = (uintptr_t)pe->base;

		if (pc < base || pc >= base + pe->size)
			continue;
		for (s = 0; s < pe->nexec; s++) {
			if (pc >= base + pe->exec[s].lo && pc < base + pe->exec[s].hi) {
				*end = base + pe->exec[s].hi;
				return pe;
			}
		}
	}
	return NULL;
}

/* Up to 15 bytes of driver code at pc, never past its executable span. */
size_t np_insn_fetch(const struct np_image *img, uintptr_t pc, uint8_t *out)
{
	uintptr_t end;
	size_t n;

	if (!img || !code_at(img, pc, &end))
		return 0;
	n = end - pc < 15 ? end - pc : 15;
	memcpy(out, (const void *)pc, n);
	return n;
}

static uint64_t effective_address(const struct insn *in, const greg_t *g)
{
	uint64_t ea = (uint64_t)in->disp;

	if (in->has_moffs)
		return in->moffs;
	if (in->base >= 0)
		ea += (uint64_t)g[greg_slot[in->base]];
	if (in->index >= 0)
		ea += (uint64_t)g[greg_slot[in->index]] * in->scale;
	return ea;
}

static void write_reg(greg_t *g, const struct insn *in, uint64_t v)
{
	greg_t *r;
	uint64_t old;

	if (in->high_byte) {
		r = &g[greg_slot[in->reg - 4]];
		old = (uint64_t)*r;
		*r = (greg_t)((old & ~0xff00ULL) | (v & 0xff) << 8);
		return;
	}
	r = &g[greg_slot[in->reg]];
	old = (uint64_t)*r;
	switch (in->width) {
	case 1:
		*r = (greg_t)((old & ~0xffULL) | (v & 0xff));
		break;
	case 2:
		*r = (greg_t)((old & ~0xffffULL) | (v & 0xffff));
		break;
	default:		/* a 32-bit write zero-extends, as the CPU does */
		*r = (greg_t)(in->width == 4 ? (uint32_t)v : v);
	}
}

static int emulate_load(const struct insn *in, greg_t *g, const siginfo_t *si)
{
	uint64_t ea, off, v = 0;

	if (in->rip_relative || in->gs || si->si_code == SI_KERNEL)
		return 0;
	ea = effective_address(in, g);
	off = ea - KUSER_SHARED_DATA;
	if (off >= KUSER_PAGE || in->size > KUSER_PAGE - off)
		return 0;
	/* The kernel's view must agree: a read that faulted inside this page. */
	if ((uint64_t)(uintptr_t)si->si_addr - KUSER_SHARED_DATA >= KUSER_PAGE ||
	    (g[REG_ERR] & 2))
		return 0;
	kuser_read((uint32_t)off, in->size, (uint8_t *)&v);
	write_reg(g, in, v);
	return 1;
}

int np_emulate(struct np_thread *t, ucontext_t *uc, int sig,
	       const siginfo_t *si, uint32_t *code)
{
	greg_t *g = uc->uc_mcontext.gregs;
	uintptr_t pc = (uintptr_t)g[REG_RIP];
	uint8_t bytes[15];
	struct insn in;
	size_t n;

	if (sig != SIGSEGV && sig != SIGILL)
		return 0;
	n = np_insn_fetch(t->ctx ? t->ctx->image : NULL, pc, bytes);
	if (!n || !insn_decode(bytes, n, &in))
		return 0;
	switch (in.kind) {
	case INSN_MOV_FROM_CR:
		if (in.cr != 8)
			return 0;
		g[greg_slot[in.reg]] = (greg_t)t->irql;
		break;
	case INSN_MOV_TO_CR:
		if (in.cr != 8 || (uint64_t)g[greg_slot[in.reg]] > 15)
			return 0;
		t->irql = (uint8_t)g[greg_slot[in.reg]];
		break;
	case INSN_LOAD:
		if (sig != SIGSEGV || !emulate_load(&in, g, si))
			return 0;
		break;
	case INSN_FASTFAIL:
		/* Windows' kernel turns __fastfail(code) into this bug check. */
		t->fault.bugcheck[0] = KERNEL_SECURITY_CHECK_FAILURE;
		t->fault.bugcheck[1] = (uint32_t)g[REG_RCX];
		t->fault.bugcheck[2] = t->fault.bugcheck[3] = 0;
		t->fault.bugcheck[4] = 0;
		*code = NP_FAULT_BUGCHECK;
		return 0;
	default:
		return 0;
	}
	g[REG_RIP] = (greg_t)(pc + in.len);
	return 1;
}

/* ---- describing what was not emulated (outside driver code) --------------- */

static const char *const reg64[16] = {
	"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
};

/* Formats by Windows rules (%u and %x are 32 bits): no stdio here. */
static __attribute__((ms_abi)) void say(char *out, size_t outlen,
					const char *fmt, ...)
					{
					__builtin_ms_va_list ap;

	__builtin_ms_va_start(ap, fmt);
	np_winfmt(out, outlen, fmt, ap);
	__builtin_ms_va_end(ap);
}

/*
 * What the faulting instruction was, in words, for the fault report: empty
 * when it is nothing we recognise.  fault_addr is si_addr of the fault.
 * Returns the instruction's length, or 0 when it was not decoded.
 */
size_t np_insn_describe(const uint8_t *bytes, size_t n, uint64_t fault_addr,
			char *out, size_t outlen)
{
	uint64_t kuser_off = fault_addr - KUSER_SHARED_DATA;
	struct insn in;

	out[0] = '\0';
	if (!insn_decode(bytes, n, &in)) {
		if (kuser_off < KUSER_PAGE)
			say(out, outlen,
			    "access to KUSER_SHARED_DATA+0x%x by an instruction that is not emulated (only mov/movzx loads are)",
			    (unsigned)kuser_off);
		return 0;
	}
	switch (in.kind) {
	case INSN_MOV_FROM_CR:
		say(out, outlen, "mov %s, cr%u%s", reg64[in.reg], in.cr,
		    in.cr == 8 ? "" : ": only cr8 (the IRQL) is emulated");
		break;
	case INSN_MOV_TO_CR:
		say(out, outlen, "mov cr%u, %s%s", in.cr, reg64[in.reg],
		    in.cr == 8 ? ": IRQL above 15" :
		    ": only cr8 (the IRQL) is emulated");
		break;
	case INSN_MOV_FROM_DR:
	case INSN_MOV_TO_DR:
		say(out, outlen,
		    "mov to or from debug register dr%u: not emulated", in.cr);
		break;
	case INSN_LOAD:
		if (in.gs)
			say(out, outlen,
			    "gs-relative %s outside the KPCR, KPRCB and KTHREAD ndisproxy provides (kpcr.c)",
			    in.name);
		else if (kuser_off < KUSER_PAGE)
			say(out, outlen,
			    "%s from KUSER_SHARED_DATA+0x%x crossing the end of the page",
			    in.name, (unsigned)kuser_off);
		break;
	case INSN_STORE:
		if (in.gs)
			say(out, outlen, "gs-relative write: the KPCR is read-only");
		else if (kuser_off < KUSER_PAGE)
			say(out, outlen,
			    "write to KUSER_SHARED_DATA+0x%x, which is read-only",
			    (unsigned)kuser_off);
		break;
	case INSN_FASTFAIL:
		say(out, outlen, "int 0x29: __fastfail");
		break;
	case INSN_NAMED:
		say(out, outlen, "%s: a privileged instruction, not emulated",
		    in.name);
		break;
	default:
		break;
	}
	return in.len;
}
