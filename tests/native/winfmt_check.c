/* SPDX-License-Identifier: MIT */
/*
 * winfmt_check.c - standalone checks for np_winfmt().
 *
 * The arguments have to arrive the way a Windows driver passes them, so
 * every case goes through an ms_abi varargs function just as DbgPrint()
 * would.  Prints "ok N" or "FAIL N: ..." per case; exits 1 on any failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uchar.h>

#include "np_winfmt.h"

#define BUFSZ	256
#define CANARY	'\x7f'

/* ANSI_STRING / UNICODE_STRING: Buffer lands at offset 8 on x86-64 too. */
struct counted {
	unsigned short Length;
	unsigned short MaximumLength;
	const void *Buffer;
};

static int ncase, nfail;

static void show(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static void verdict(int n, const char *buf, size_t got, size_t outlen,
		    const char *want)
{
	size_t wlen = strlen(want);
	const char *why = NULL;
	size_t i;

	if (got != wlen || memcmp(buf, want, wlen))
		why = "output";
	else if (outlen && buf[got] != '\0')
		why = "missing NUL";
	for (i = outlen; !why && i < BUFSZ; i++)
		if (buf[i] != CANARY)
			why = "wrote past outlen";

	if (!why) {
		printf("ok %d\n", n);
		return;
	}
	nfail++;
	printf("FAIL %d (%s): got \"", n, why);
	show(buf, got < BUFSZ ? got : BUFSZ);
	printf("\" (%zu) want \"", got);
	show(want, wlen);
	printf("\" (%zu)\n", wlen);
}

/* The DbgPrint-like entry point: formats into a buffer of @outlen bytes. */
static __attribute__((ms_abi)) void
check_n(size_t outlen, const char *want, const char *fmt, ...)
{
	__builtin_ms_va_list ap;
	char buf[BUFSZ];
	size_t got;

	memset(buf, CANARY, sizeof(buf));
	__builtin_ms_va_start(ap, fmt);
	got = np_winfmt(buf, outlen, fmt, ap);
	__builtin_ms_va_end(ap);
	verdict(++ncase, buf, got, outlen, want);
}

#define check(want, ...)	check_n(BUFSZ, want, __VA_ARGS__)

static void check_utf16(size_t outlen, const char *want,
			const char16_t *s, size_t units)
{
	char buf[BUFSZ];
	size_t got;

	memset(buf, CANARY, sizeof(buf));
	got = np_winfmt_utf16_to_utf8(buf, outlen, (const unsigned short *)s,
				      units);
	verdict(++ncase, buf, got, outlen, want);
}

/* UTF-8 to UTF-16 into @outunits units; the units past them stay untouched. */
static void check_utf8(size_t outunits, const char16_t *want, size_t wunits,
		       const char *s)
{
	unsigned short buf[BUFSZ];
	const char *why = NULL;
	size_t got, i;

	for (i = 0; i < BUFSZ; i++)
		buf[i] = 0xcccc;
	got = np_winfmt_utf8_to_utf16(buf, outunits, s);
	if (got != wunits || memcmp(buf, want, wunits * 2))
		why = "output";
	else if (outunits && buf[got] != 0)
		why = "missing NUL";
	for (i = outunits; !why && i < BUFSZ; i++)
		if (buf[i] != 0xcccc)
			why = "wrote past outunits";
	ncase++;
	if (!why) {
		printf("ok %d\n", ncase);
		return;
	}
	nfail++;
	printf("FAIL %d (%s): %zu units, want %zu\n", ncase, why, got, wunits);
}

static __attribute__((ms_abi)) size_t fmt_null(const char *fmt, ...)
{
	__builtin_ms_va_list ap;
	size_t got;

	__builtin_ms_va_start(ap, fmt);
	got = np_winfmt(NULL, 0, fmt, ap);
	__builtin_ms_va_end(ap);
	return got;
}

int main(void)
{
	static const char16_t lone_hi[] = { 0xd800, 'a', 0 };
	static const char16_t lone_lo[] = { 'a', 0xdc00, 0 };
	static const char16_t hi_at_end[] = { 'a', 0xd83d, 0 };
	static const char16_t with_nul[] = { 'a', 'b', 0, 'c', 'd' };
	static const char unterminated[3] = { 'x', 'y', 'z' };
	struct counted as = { 5, 12, "hello world" };
	struct counted us = { 10, 24, u"hello world" };
	struct counted us_odd = { 7, 24, u"hello world" };
	struct counted us_pair = { 8, 8, u"a\U0001F600b" };
	struct counted us_nul = { 10, 10, with_nul };
	struct counted as_nobuf = { 4, 4, NULL };
	struct counted us_nobuf = { 4, 4, NULL };
	int canary = 12345;

	/* plain conversions */
	check("hello, world", "hello, world");
	check("-42", "%d", -42);
	check("123", "%i", 123);
	check("4294967295", "%u", 0xffffffffu);
	check("deadbeef", "%x", 0xdeadbeefu);
	check("DEADBEEF", "%X", 0xdeadbeefu);
	check("17", "%o", 15);
	check("A", "%c", 'A');
	check("str", "%s", "str");
	check("100%", "100%%");
	check("-2147483648", "%d", INT32_MIN);

	/* %p is 16 upper-case digits on x64 */
	check("0000000000001234", "%p", (void *)0x1234);
	check("0000000000000000", "%p", (void *)0);
	check("FFFFFFFFFFFFFFFF", "%p", (void *)UINTPTR_MAX);
	check("<    00000000DEADBEEF>", "<%20p>", (void *)0xdeadbeefUL);

	/* LLP64: 'l' is 32 bits, even if the slot's upper half is junk */
	check("4000000000", "%lu", 4000000000u);
	check("-5", "%ld", -5);
	check("12345678", "%lx", 0xaaaaaaaa12345678ULL);
	check("7 next", "%lu %s", 0xffffffff00000007ULL, "next");
	check("1 2 3 4 5 6", "%lu %lu %lu %lu %lu %lu",
	      0xf00000001ULL, 2u, 0xf00000003ULL, 4u, 0xf00000005ULL, 6u);

	/* 64-bit and pointer-sized */
	check("fedcba9876543210", "%I64x", 0xfedcba9876543210ULL);
	check("FEDCBA9876543210", "%I64X", 0xfedcba9876543210ULL);
	check("-9223372036854775808", "%I64d", INT64_MIN);
	check("18446744073709551615", "%I64u", UINT64_MAX);
	check("123456789abcdef", "%llx", 0x123456789abcdefULL);
	check("-1", "%lld", -1LL);
	check("1122334455667788", "%Ix", 0x1122334455667788ULL);
	check("1099511627776", "%Iu", (size_t)1 << 40);
	check("1099511627776", "%zu", (size_t)1 << 40);
	check("12345678", "%I32x", 0xaaaaaaaa12345678ULL);

	/* short and char sized */
	check("9029", "%hu", 0x12345);
	check("1234", "%hx", 0xffff1234u);
	check("-1", "%hd", 0xffff);
	check("-1", "%hhd", 0xff);

	/* narrow vs wide strings and chars */
	check("narrow", "%hs", "narrow");
	check("narrow", "%hS", "narrow");
	check("z", "%hc", 'z');
	check("z", "%hC", 'z');
	check("wide", "%ws", u"wide");
	check("caf\xc3\xa9", "%ls", u"caf\u00e9");
	check("\xe2\x82\xac", "%S", u"\u20ac");
	check("\xc3\xa9", "%wc", 0xe9);
	check("x", "%lc", 'x');
	check("\xe4\xb8\xad", "%C", 0x4e2d);
	check("\xef\xbf\xbd", "%C", 0xd800);
	check("ab", "a%cb", 0);

	/* surrogates */
	check("\xf0\x9f\x98\x80", "%ws", u"\U0001F600");
	check("\xef\xbf\xbd" "a", "%ws", lone_hi);
	check("a\xef\xbf\xbd", "%ws", lone_lo);
	check("a\xef\xbf\xbd", "%ws", hi_at_end);

	/* counted strings */
	check("[hello]", "[%Z]", &as);
	check("[hello]", "[%wZ]", &us);
	check("hel", "%wZ", &us_odd);
	check("a\xf0\x9f\x98\x80" "b", "%wZ", &us_pair);
	check("ab", "%wZ", &us_nul);
	check("  hello|", "%7Z|", &as);
	check("hel", "%.3wZ", &us);
	check("(null)", "%Z", (void *)NULL);
	check("(null)", "%wZ", (void *)NULL);
	check("(null)", "%Z", &as_nobuf);
	check("(null)", "%wZ", &us_nobuf);

	/* NULL plain strings */
	check("(null)", "%s", (char *)NULL);
	check("(null)", "%ws", (void *)NULL);
	check("(nu", "%.3s", (char *)NULL);

	/* width, precision, flags */
	check("   42", "%5d", 42);
	check("42   |", "%-5d|", 42);
	check("-0042", "%05d", -42);
	check("42      |", "%-08d|", 42);
	check("+5 5", "%+d %+u", 5, 5);
	check(" 5", "% d", 5);
	check("0xff 0XFF 0", "%#x %#X %#x", 255, 255, 0);
	check("0x00ff", "%#06x", 255);
	check("010 0", "%#o %#o", 8, 0);
	check("007", "%.3d", 7);
	check("     007", "%8.3d", 7);
	check("     007", "%08.3d", 7);
	check("", "%.0d", 0);
	check("    42", "%*d", 6, 42);
	check("42    |", "%*d|", -6, 42);
	check("42", "%.*d", -1, 42);
	check("00042", "%.*d", 5, 42);
	check("abc", "%.*s", 3, "abcdef");
	check("xyz", "%.*s", 3, unterminated);
	check("ab", "%.2ws", u"abcdef");
	check("       abc|", "%10s|", "abc");
	check("abc   |", "%-6s|", "abc");
	check("000ab", "%05s", "ab");
	check("     \xc3\xa9|", "%6ws|", u"\u00e9");
	check("    x|", "%5c|", 'x');

	/* unknown, incomplete and unsupported conversions */
	check("%y", "%y");
	check("%5y 7", "%5y %d", 7);
	check("%*y 7", "%*y %d", 7);
	check("abc%", "abc%");
	check("%l", "%l");
	check("|7", "%f|%d", 1.5, 7);
	check("3", "%e%g%E%G%a%d", 1.0, 2.0, 3.0, 4.0, 5.0, 3);
	check("ab 9", "a%nb %d", &canary, 9);
	if (canary != 12345) {
		printf("FAIL %%n wrote through its pointer\n");
		nfail++;
	}

	/* many arguments, well past the four register slots */
	check("7 fedcba9876543210 65535 s Q w\xc3\xa9 -3 0000000000ABCDEF 9",
	      "%lu %I64x %hu %s %c %ws %d %p %lu",
	      0xdead00000007ULL, 0xfedcba9876543210ULL, 0xffff, "s", 'Q',
	      u"w\u00e9", -3, (void *)0xabcdef, 9u);

	/* truncation */
	check_n(5, "hell", "hello world");
	check_n(1, "", "hello");
	check_n(3, "a", "a%ws", u"\u00e9");	/* never half a character */
	check_n(4, "a", "a%wsb", u"\U0001F600");
	check_n(8, "12345", "%d%d", 12345, 678);
	check_n(16, "               ", "%999999999d", 1);
	check_n(16, "000000000000000", "%.2147483647d", 1);
	if (fmt_null("%d%s", 1, "x") != 0) {
		printf("FAIL outlen 0 did not return 0\n");
		nfail++;
	}

	/* the helper the NDIS library reuses for registry names */
	check_utf16(BUFSZ, "K\xc3\xa9y\xf0\x9f\x98\x80", u"K\u00e9y\U0001F600", 5);
	check_utf16(BUFSZ, "K\xc3\xa9", u"K\u00e9y", 2);
	check_utf16(BUFSZ, "ab", with_nul, 5);
	check_utf16(7, "K\xc3\xa9y", u"K\u00e9y\U0001F600", 5);
	check_utf16(3, "K", u"K\u00e9y", 3);
	check_utf16(BUFSZ, "\xef\xbf\xbd", lone_hi, 1);
	check_utf16(BUFSZ, "", NULL, 4);

	/* and back: registry values to the UTF-16 drivers read */
	check_utf8(BUFSZ, u"K\u00e9y\U0001F600", 5, "K\xc3\xa9y\xf0\x9f\x98\x80");
	check_utf8(BUFSZ, u"", 0, "");
	check_utf8(BUFSZ, u"", 0, NULL);
	check_utf8(4, u"K\u00e9y", 3, "K\xc3\xa9y\xf0\x9f\x98\x80");	/* no half pair */
	check_utf8(5, u"K\u00e9y", 3, "K\xc3\xa9y\xf0\x9f\x98\x80");
	check_utf8(6, u"K\u00e9y\U0001F600", 5, "K\xc3\xa9y\xf0\x9f\x98\x80");
	check_utf8(1, u"", 0, "abc");
	check_utf8(0, u"", 0, "abc");
	check_utf8(BUFSZ, u"a\ufffdb", 3, "a\xff" "b");			/* not a lead byte */
	check_utf8(BUFSZ, u"\ufffd\ufffd", 2, "\xc0\xaf");		/* overlong '/' */
	check_utf8(BUFSZ, u"\ufffd\ufffd\ufffd", 3, "\xed\xa0\x80");	/* a surrogate */
	check_utf8(BUFSZ, u"\ufffd\ufffd\ufffd\ufffd", 4, "\xf4\x90\x80\x80"); /* > U+10FFFF */
	check_utf8(BUFSZ, u"x\ufffd", 2, "x\xe2\x82");			/* cut short */
	check_utf8(BUFSZ, u"\u20ac", 1, "\xe2\x82\xac");

	printf("%d cases, %d failed\n", ncase, nfail);
	return nfail ? 1 : 0;
}
