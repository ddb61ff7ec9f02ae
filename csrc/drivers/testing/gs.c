/* SPDX-License-Identifier: MIT */
/*
 * gs.sys - a driver built as MSVC's /GS builds one, by hand: mingw-w64 has
 * no /GS.  The image defines __security_cookie with the linker's default
 * value and a load config directory that points at it
 * (_load_config_used; build_support/drivers.py enters it in the data
 * directory after linking, which ld 2.40 does not do).  The entry point is
 * GsDriverEntry, which, like the WDK's for Windows 8 and later, fails with
 * __fastfail(FAST_FAIL_GS_COOKIE_INIT) unless the loader replaced the
 * default cookie, and then calls DriverEntry.  DriverEntry prints the
 * cookie and its complement.
 *
 * MiniportInitialize copies "NameLength" bytes (default 16) into a 16-byte
 * buffer in a frame laid out as /GS lays it out, with the cookie (xor the
 * frame address) above the buffer, and checks the cookie on the way out:
 * more than 16 overwrites it.  The failure is reported as the WDK's
 * libraries do: __fastfail(FAST_FAIL_STACK_COOKIE_CHECK_FAILURE), or with
 * "GsBugCheck" = 1 as the older BufferOverflowK.lib did,
 * KeBugCheckEx(DRIVER_OVERRAN_STACK_BUFFER, ...).
 */
#include "testdrv.h"

#define DEFAULT_SECURITY_COOKIE			0x00002B992DDFA232ULL
#define FAST_FAIL_STACK_COOKIE_CHECK_FAILURE	2
#define FAST_FAIL_GS_COOKIE_INIT		6
#define DRIVER_OVERRAN_STACK_BUFFER		0xF7

ULONG_PTR __security_cookie = DEFAULT_SECURITY_COOKIE;
ULONG_PTR __security_cookie_complement = ~DEFAULT_SECURITY_COOKIE;

/* IMAGE_LOAD_CONFIG_DIRECTORY64, as far as SecurityCookie. */
struct load_config {
	ULONG Size;
	ULONG TimeDateStamp;
	USHORT MajorVersion, MinorVersion;
	ULONG GlobalFlagsClear, GlobalFlagsSet, CriticalSectionDefaultTimeout;
	ULONG64 DeCommitFreeBlockThreshold, DeCommitTotalFreeThreshold;
	ULONG64 LockPrefixTable, MaximumAllocationSize, VirtualMemoryThreshold;
	ULONG64 ProcessAffinityMask;
	ULONG ProcessHeapFlags;
	USHORT CSDVersion, DependentLoadFlags;
	ULONG64 EditList;
	ULONG64 SecurityCookie;
};
_Static_assert(__builtin_offsetof(struct load_config, SecurityCookie) == 0x58,
	       "SecurityCookie sits at 0x58 in the PE32+ load config");

__attribute__((used)) const struct load_config _load_config_used = {
	.Size = sizeof(struct load_config),
	.SecurityCookie = (ULONG64)&__security_cookie,
};

static int report_by_bugcheck;

/* MSVC's __fastfail intrinsic: the code in ecx, int 0x29. */
static __attribute__((noreturn)) void fastfail(ULONG code)
{
	__asm__ volatile("int $0x29" : : "c"(code) : "memory");
	__builtin_unreachable();
}

static __attribute__((noinline)) void report_gsfailure(ULONG_PTR cookie)
{
	if (report_by_bugcheck)
		KeBugCheckEx(DRIVER_OVERRAN_STACK_BUFFER, cookie, __security_cookie,
			     __security_cookie_complement, 0);
	fastfail(FAST_FAIL_STACK_COOKIE_CHECK_FAILURE);
}

void __security_check_cookie(ULONG_PTR cookie)
{
	if (cookie != __security_cookie)
		report_gsfailure(cookie);
}

/* A /GS frame: the cookie, xor the frame, above the buffer it guards. */
static __attribute__((noinline)) ULONG copy_name(const UCHAR *src, ULONG len)
{
	volatile struct {
		UCHAR buf[16];
		ULONG_PTR cookie;
	} frame;
	volatile UCHAR *dst = frame.buf;
	ULONG i, sum = 0;

	frame.cookie = __security_cookie ^ (ULONG_PTR)__builtin_frame_address(0);
	for (i = 0; i < len; i++)
		dst[i] = src[i];
	for (i = 0; i < sizeof(frame.buf); i++)
		sum += frame.buf[i];
	__security_check_cookie(frame.cookie ^ (ULONG_PTR)__builtin_frame_address(0));
	return sum;
}

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config)
{
	static const UCHAR name[32] = "ndisproxy /GS test: 0123456789";
	ULONG len;

	if (testdrv_select_medium(selected, media, count, adapter))
		return NDIS_STATUS_UNSUPPORTED_MEDIA;
	report_by_bugcheck = testdrv_param(config, L"GsBugCheck", 0) != 0;
	len = testdrv_param(config, L"NameLength", 16);
	if (len > sizeof(name))
		len = sizeof(name);
	DbgPrint("gs.sys: name checksum %u\n", copy_name(name, len));
	return NDIS_STATUS_SUCCESS;
}

TESTDRV_DRIVER_ENTRY({ 0 })

/* The WDK's GsDriverEntry and __security_init_cookie, for Windows 8+. */
NTSTATUS NDISAPI GsDriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)
{
	if (__security_cookie == 0 || __security_cookie == DEFAULT_SECURITY_COOKIE)
		fastfail(FAST_FAIL_GS_COOKIE_INIT);
	__security_cookie_complement = ~__security_cookie;
	DbgPrint("gs.sys: cookie %I64x complement %I64x\n",
		 (ULONG64)__security_cookie, (ULONG64)__security_cookie_complement);
	return DriverEntry(driver, path);
}
