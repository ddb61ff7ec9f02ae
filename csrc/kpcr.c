/* SPDX-License-Identifier: MIT */
/*
 * kpcr.c - the processor control region a driver reaches through gs:.
 *
 * On x64 Windows gs: points at the current processor's KPCR, and the DDK
 * makes KeGetCurrentThread, PsGetCurrentThread, KeGetPcr and
 * KeGetCurrentProcessorNumber inline loads from it (__readgsqword(0x188),
 * __readgsbyte(0x184), ...).  Linux leaves user space's gs base alone
 * (glibc's TLS is fs:), so every thread that calls drivers gets a KPCR of
 * its own and its gs base pointed at it: those loads then run natively, at
 * the cost of a load, where an emulated one costs a signal.
 *
 * Two read-only pages per thread: the KPCR with its KPRCB at +0x180, then
 * a KTHREAD, and PROT_NONE up to 64 KiB after the KPCR, more than Windows'
 * KPCR and KPRCB together.  Only the fields below are filled; the rest
 * reads as zero, and a store, or a load of a KPRCB field past the pages,
 * faults like any access violation.  The
 * processor number is 0 on every thread: a driver sizing per-processor
 * arrays sees one processor, whichever host thread it runs on.
 */
#include <asm/prctl.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "np.h"

/* ntddk.h / the public symbols' x64 layouts, as far as drivers read them. */
#define KPCR_SELF		0x18	/* struct _KPCR *Self */
#define KPCR_CURRENT_PRCB	0x20	/* struct _KPRCB *CurrentPrcb */
#define KPCR_MAJOR_VERSION	0x60	/* USHORT, 1 */
#define KPCR_MINOR_VERSION	0x62	/* USHORT, 1 */
#define KPCR_PRCB		0x180	/* the KPRCB itself */
#define KPRCB_MXCSR		0x00	/* ULONG */
#define KPRCB_LEGACY_NUMBER	0x04	/* UCHAR: KeGetCurrentProcessorNumber */
#define KPRCB_CURRENT_THREAD	0x08	/* struct _KTHREAD * */
#define KPRCB_NUMBER		0x24	/* ULONG (Windows 7 and later) */
#define KTHREAD_TYPE		0x00	/* DISPATCHER_HEADER.Type */
#define THREAD_OBJECT		6

#define KPCR_PAGES		2			/* readable */
#define KPCR_RESERVE		(64 * 1024)		/* mapped, guards included */

static void put64(uint8_t *page, size_t off, uint64_t v)
{
	memcpy(page + off, &v, sizeof(v));
}

static void put32(uint8_t *page, size_t off, uint32_t v)
{
	memcpy(page + off, &v, sizeof(v));
}

static void put16(uint8_t *page, size_t off, uint16_t v)
{
	memcpy(page + off, &v, sizeof(v));
}

/*
 * Give the calling thread its KPCR and point its gs base at it.  Returns
 * 0, or -1 (gs: then stays unmapped, and a driver's gs: load is reported
 * as not emulated).
 */
int np_kpcr_attach(struct np_thread *t)
{
	uint8_t *kpcr = np_map(KPCR_RESERVE, PROT_NONE, "kpcr");
	uint8_t *prcb, *kthread;

	if (!kpcr)
		return -1;
	if (mprotect(kpcr, KPCR_PAGES * NP_PAGE_SIZE, PROT_READ | PROT_WRITE)) {
		np_unmap(kpcr, KPCR_RESERVE);
		return -1;
	}
	prcb = kpcr + KPCR_PRCB;
	kthread = kpcr + NP_PAGE_SIZE;
	put64(kpcr, KPCR_SELF, (uintptr_t)kpcr);
	put64(kpcr, KPCR_CURRENT_PRCB, (uintptr_t)prcb);
	put16(kpcr, KPCR_MAJOR_VERSION, 1);
	put16(kpcr, KPCR_MINOR_VERSION, 1);
	put32(prcb, KPRCB_MXCSR, 0x1f80);
	prcb[KPRCB_LEGACY_NUMBER] = 0;
	put64(prcb, KPRCB_CURRENT_THREAD, (uintptr_t)kthread);
	put32(prcb, KPRCB_NUMBER, 0);
	kthread[KTHREAD_TYPE] = THREAD_OBJECT;
	if (mprotect(kpcr, KPCR_PAGES * NP_PAGE_SIZE, PROT_READ) ||
	    syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)kpcr)) {
		np_unmap(kpcr, KPCR_RESERVE);
		return -1;
	}
	t->kpcr = kpcr;
	return 0;
}

/* At thread exit: the thread never calls a driver again. */
void np_kpcr_detach(struct np_thread *t)
{
	if (t->kpcr)
		np_unmap(t->kpcr, KPCR_RESERVE);
	t->kpcr = NULL;
}
