/* SPDX-License-Identifier: MIT */
/*
 * kuser.sys - reads the time the way an MSVC-built x64 driver does: the
 * DDK's KeQueryInterruptTime, KeQuerySystemTime and KeQueryTickCount are
 * macros that load from KUSER_SHARED_DATA at 0xFFFFF78000000000, a kernel
 * address user space cannot map; the host emulates each load.
 *
 * Private OIDs:
 *   query OID_KUSER_SELFCHECK	struct kuser_selfcheck, below: the macros'
 *				values, and the same fields read through
 *				each operand form the host decodes
 *   query OID_KUSER_BENCH	ULONG64[3]: iterations, then nanoseconds for
 *				as many emulated loads and as many plain
 *				loads ("Iterations" parameter, default 10000)
 *   set   OID_KUSER_FORBIDDEN	ULONG 1: store to SystemTime; 2: add from
 *				InterruptTime (not a mov); 3: an 8-byte load
 *				crossing the end of the page
 */
#include "testdrv.h"

#define OID_KUSER_SELFCHECK	0xFF000201U
#define OID_KUSER_BENCH		0xFF000202U
#define OID_KUSER_FORBIDDEN	0xFF000203U

#define KUSER_MAGIC		0x5253554bU	/* "KUSR" */

/* wdm.h for AMD64, verbatim in shape (our ndis.h declares functions). */
#define KI_USER_SHARED_DATA	0xFFFFF78000000000ULL
#define SharedInterruptTime	(KI_USER_SHARED_DATA + 0x8)
#define SharedSystemTime	(KI_USER_SHARED_DATA + 0x14)
#define SharedTickCount		(KI_USER_SHARED_DATA + 0x320)
#define KeQueryInterruptTime()	(*(volatile ULONG64 *)(SharedInterruptTime))
#define KUSER_QUERY_SYSTEM_TIME(t)					\
	(*(PULONG64)(t) = *(volatile ULONG64 *)(SharedSystemTime))
#define KUSER_QUERY_TICK_COUNT(t)					\
	(*(PULONG64)(t) = *(volatile ULONG64 *)(SharedTickCount))

struct kuser_selfcheck {
	ULONG magic;
	ULONG tick_count_multiplier;	/* ULONG at +0x4 */
	ULONG64 interrupt_time[2];	/* KeQueryInterruptTime(), twice */
	ULONG64 system_time;		/* KeQuerySystemTime() */
	ULONG64 tick_count;		/* KeQueryTickCount() */
	ULONG interrupt_parts[3];	/* LowPart, High1Time, High2Time */
	ULONG nt_major, nt_minor;	/* ULONGs at +0x26c, +0x270 */
	ULONG product_type;		/* the byte at +0x264 */
	ULONG image_number;		/* the USHORT at +0x2c */
	ULONG64 high_byte;		/* mov ah, [rcx]: NtMajorVersion into bits 8..15 */
	ULONG64 sib_index;		/* mov r10, [rcx+rdx*8]: InterruptTime */
	ULONG64 disp8_32bit;		/* mov r11d, [rcx+0x14]: SystemTime low, zero-extended */
	ULONG64 r12_disp32;		/* mov rax, [r12+0x320]: TickCount */
	ULONG64 word_load;		/* mov bx, [rcx+0x26c] over all-ones: upper bits kept */
	ULONG64 movzx_byte;		/* movzx r9d, byte [rcx+0x264] over all-ones */
	ULONG64 movzx_word;		/* movzx rsi, word [rcx+0x2c] */
	ULONG64 after[2];		/* KeQueryInterruptTime() after the forms */
};

static ULONG iterations = 10000;

static void operand_forms(struct kuser_selfcheck *c)
{
	ULONG64 out;

	__asm__ volatile("movabs %1, %%rcx\n\t"
			 "xor %%eax, %%eax\n\t"
			 "mov 0x26c(%%rcx), %%ah"
			 : "=a"(out) : "i"(KI_USER_SHARED_DATA) : "rcx");
	c->high_byte = out;
	__asm__ volatile("movabs %1, %%rcx\n\t"
			 "mov $1, %%edx\n\t"
			 "mov (%%rcx,%%rdx,8), %%r10\n\t"
			 "mov %%r10, %0"
			 : "=r"(out) : "i"(KI_USER_SHARED_DATA) : "rcx", "rdx", "r10");
	c->sib_index = out;
	__asm__ volatile("movabs %1, %%rcx\n\t"
			 "mov $-1, %%r11\n\t"
			 "mov 0x14(%%rcx), %%r11d\n\t"
			 "mov %%r11, %0"
			 : "=r"(out) : "i"(KI_USER_SHARED_DATA) : "rcx", "r11");
	c->disp8_32bit = out;
	__asm__ volatile("movabs %1, %%r12\n\t"
			 "mov 0x320(%%r12), %0"
			 : "=a"(out) : "i"(KI_USER_SHARED_DATA) : "r12");
	c->r12_disp32 = out;
	__asm__ volatile("movabs %1, %%rcx\n\t"
			 "mov $-1, %%rbx\n\t"
			 "mov 0x26c(%%rcx), %%bx\n\t"
			 "mov %%rbx, %0"
			 : "=r"(out) : "i"(KI_USER_SHARED_DATA) : "rcx", "rbx");
	c->word_load = out;
	__asm__ volatile("movabs %1, %%rcx\n\t"
			 "mov $-1, %%r9\n\t"
			 "movzbl 0x264(%%rcx), %%r9d\n\t"
			 "mov %%r9, %0"
			 : "=r"(out) : "i"(KI_USER_SHARED_DATA) : "rcx", "r9");
	c->movzx_byte = out;
	__asm__ volatile("movabs %1, %%rcx\n\t"
			 "mov $-1, %%rsi\n\t"
			 "movzwq 0x2c(%%rcx), %%rsi\n\t"
			 "mov %%rsi, %0"
			 : "=r"(out) : "i"(KI_USER_SHARED_DATA) : "rcx", "rsi");
	c->movzx_word = out;
}

static void selfcheck(struct kuser_selfcheck *c)
{
	volatile ULONG *parts = (volatile ULONG *)SharedInterruptTime;

	c->magic = KUSER_MAGIC;
	c->interrupt_time[0] = KeQueryInterruptTime();
	c->interrupt_time[1] = KeQueryInterruptTime();
	KUSER_QUERY_SYSTEM_TIME(&c->system_time);
	KUSER_QUERY_TICK_COUNT(&c->tick_count);
	c->tick_count_multiplier = *(volatile ULONG *)(KI_USER_SHARED_DATA + 0x4);
	c->interrupt_parts[1] = parts[1];
	c->interrupt_parts[0] = parts[0];
	c->interrupt_parts[2] = parts[2];
	c->nt_major = *(volatile ULONG *)(KI_USER_SHARED_DATA + 0x26c);
	c->nt_minor = *(volatile ULONG *)(KI_USER_SHARED_DATA + 0x270);
	c->product_type = *(volatile UCHAR *)(KI_USER_SHARED_DATA + 0x264);
	c->image_number = *(volatile USHORT *)(KI_USER_SHARED_DATA + 0x2c);
	operand_forms(c);
	c->after[0] = KeQueryInterruptTime();
	c->after[1] = KeQueryInterruptTime();
}

static NDIS_STATUS NDISAPI kuser_query(NDIS_HANDLE ctx, NDIS_OID oid, PVOID buf,
		ULONG len, PULONG written, PULONG needed)
{
	ULONG size = oid == OID_KUSER_SELFCHECK ? sizeof(struct kuser_selfcheck) :
		     oid == OID_KUSER_BENCH ? 3 * sizeof(ULONG64) : 0;
	NDIS_STATUS status = testdrv_fits(size, len, written, needed);

	if (status != NDIS_STATUS_SUCCESS)
		return status;
	if (oid == OID_KUSER_SELFCHECK)
		selfcheck(buf);
	else
		TESTDRV_BENCH((PULONG64)buf, iterations, KeQueryInterruptTime());
	*written = size;
	return NDIS_STATUS_SUCCESS;
}

static NDIS_STATUS NDISAPI kuser_set(NDIS_HANDLE ctx, NDIS_OID oid, PVOID buf,
				     ULONG len, PULONG read, PULONG needed)
{
	ULONG64 v = 0;

	*read = 0;
	*needed = sizeof(ULONG);
	if (oid != OID_KUSER_FORBIDDEN)
		return NDIS_STATUS_NOT_SUPPORTED;
	if (len < sizeof(ULONG))
		return NDIS_STATUS_INVALID_LENGTH;
	switch (*(PULONG)buf) {
	case 1:
		*(volatile ULONG64 *)SharedSystemTime = 0;
		break;
	case 2:
		__asm__ volatile("movabs %1, %%rcx\n\t"
				 "add 0x8(%%rcx), %0"
				 : "+r"(v) : "i"(KI_USER_SHARED_DATA) : "rcx");
		break;
	case 3:
		v = *(volatile ULONG64 *)(KI_USER_SHARED_DATA + 0xffc);
		break;
	}
	testdrv_plain_value = v;
	*read = sizeof(ULONG);
	return NDIS_STATUS_SUCCESS;
}

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	if (testdrv_select_medium(selected, media, count, adapter))
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	iterations = testdrv_param(config, L"Iterations", iterations);
	return NDIS_STATUS_SUCCESS;
}

NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	NDIS51_MINIPORT_CHARACTERISTICS chars = { 0 };

	chars.QueryInformationHandler = kuser_query;
	chars.SetInformationHandler = kuser_set;
	return testdrv_register(driver, path, &chars);
}
