/* SPDX-License-Identifier: MIT */
/*
 * winfmt.c - Windows kernel DbgPrint formatting.
 *
 * Drivers print through DbgPrint() with format strings written for the
 * Microsoft CRT under LLP64.  glibc would read "%lx" as 64 bits, has no
 * "%I64x", "%ws" or "%wZ", and a driver-controlled format must never reach
 * libc anyway, so the format is interpreted here.
 *
 * This can run on a path that a signal handler abandons half way (a driver
 * faulting while we log for it), so the code only touches the caller's
 * buffer: no allocation, no locks, no stdio, no global mutable state.
 *
 * Where the CRT and ISO C disagree we follow the CRT, since that is what
 * the driver author saw in WinDbg:
 *  - "%p" is "%.16IX": 16 upper-case hex digits, no "0x";
 *  - the '0' flag pads strings and characters with zeros too;
 *  - "%.3s" of NULL prints "(nu", the precision applies to "(null)".
 * Where the CRT's behaviour cannot be reproduced or would be harmful:
 *  - floating point ("%e %E %f %F %g %G %a %A") is not supported by kernel
 *    DbgPrint, so the 64-bit argument slot is skipped and nothing printed;
 *  - "%n" skips its pointer and writes nothing through it;
 *  - a NUL character ("%c" of 0, or a NUL inside a counted "%Z"/"%wZ")
 *    ends that argument's output instead of cutting the whole line short;
 *  - unknown conversions are copied literally and give back any argument
 *    a '*' took, so the rest of the line still lines up.
 */

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "np_winfmt.h"

/*
 * gcc has no __builtin_ms_va_arg: the generic builtin picks the ms_abi
 * layout (one 8-byte slot per argument) from the type of the list.
 *
 * Nor is __builtin_ms_va_copy usable here: gcc 12 expands it in a SysV
 * function as a copy of the 24-byte SysV va_list and reads through the
 * list as if it were a pointer to one.  An ms_abi list is just a char *
 * cursor, so plain assignment saves and restores it.
 */
#define ms_va_arg(ap, type)	__builtin_va_arg(ap, type)
_Static_assert(sizeof(__builtin_ms_va_list) == sizeof(char *),
	       "saving an ms_abi va_list by assignment needs a plain cursor");

/* ANSI_STRING and UNICODE_STRING as laid out by a Windows x64 driver. */
struct win_counted_string {
	uint16_t length;		/* bytes, excluding any NUL */
	uint16_t maximum_length;
	uint32_t pad;
	uint64_t buffer;
};
_Static_assert(__builtin_offsetof(struct win_counted_string, buffer) == 8,
	       "Buffer must sit at offset 8 as in the Windows x64 layout");

#define FL_LEFT		0x01	/* '-' */
#define FL_PLUS		0x02	/* '+' */
#define FL_SPACE	0x04	/* ' ' */
#define FL_ALT		0x08	/* '#' */
#define FL_ZERO		0x10	/* '0' */

enum str_kind {
	STR_DEFAULT,	/* as the conversion letter implies */
	STR_NARROW,	/* 'h' */
	STR_WIDE,	/* 'l' or 'w' */
};

struct spec {
	unsigned int flags;
	int width;
	int prec;		/* -1 when not given */
	unsigned int bits;	/* integer argument size: 8, 16, 32 or 64 */
	enum str_kind kind;
};

struct sink {
	char *buf;
	size_t cap;		/* bytes usable, the NUL slot excluded */
	size_t len;
	bool full;		/* something was dropped; stop producing */
};

static const char null_str[] = "(null)";

/*
 * All or nothing, so that a multi-byte sequence is never half written.
 * Once anything is dropped everything after it is too, or a short
 * character could land after a dropped long one and leave a hole.
 */
static void emit(struct sink *s, const char *p, size_t n)
{
	size_t i;

	if (s->full)
		return;
	if (n > s->cap - s->len) {
		s->full = true;
		return;
	}
	for (i = 0; i < n; i++)
		s->buf[s->len++] = p[i];
}

/* Bails out as soon as the buffer fills, so a huge width costs nothing. */
static void emit_rep(struct sink *s, char c, size_t n)
{
	while (n-- && !s->full)
		emit(s, &c, 1);
}

static size_t pad_len(const struct spec *sp, size_t len)
{
	return (size_t)sp->width > len ? (size_t)sp->width - len : 0;
}

static void pad_before(struct sink *s, const struct spec *sp, size_t len)
{
	if (!(sp->flags & FL_LEFT))
		emit_rep(s, sp->flags & FL_ZERO ? '0' : ' ', pad_len(sp, len));
}

static void pad_after(struct sink *s, const struct spec *sp, size_t len)
{
	if (sp->flags & FL_LEFT)
		emit_rep(s, ' ', pad_len(sp, len));
}

/* Byte-wise so that unaligned driver buffers are fine and LE is explicit. */
static uint16_t u16_at(const unsigned char *p, size_t i)
{
	return (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
}

/*
 * Decode the code point at unit @i of an @n-unit string and return the
 * units it used.  A lone surrogate becomes U+FFFD rather than being
 * encoded as is, which would make the output invalid UTF-8.
 */
static size_t u16_decode(const unsigned char *p, size_t n, size_t i,
			 uint32_t *cp)
{
	uint32_t hi = u16_at(p, i), lo;

	if (hi < 0xd800 || hi > 0xdfff) {
		*cp = hi;
		return 1;
	}
	if (hi <= 0xdbff && i + 1 < n) {
		lo = u16_at(p, i + 1);
		if (lo >= 0xdc00 && lo <= 0xdfff) {
			*cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
			return 2;
		}
	}
	*cp = 0xfffd;
	return 1;
}

static size_t utf8_encode(uint32_t cp, char *b)
{
	if (cp < 0x80) {
		b[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (char)(0xf0 | cp >> 18);
	b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	b[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Units before the first NUL, looking at no more than @max of them. */
static size_t u16_len(const unsigned char *p, size_t max)
{
	size_t n = 0;

	while (n < max && u16_at(p, n))
		n++;
	return n;
}

static size_t narrow_len(const char *p, size_t max)
{
	size_t n = 0;

	while (n < max && p[n])
		n++;
	return n;
}

/*
 * Emit @n units (already cut at any NUL) as UTF-8, or with @s NULL just
 * count the code points, which is what a field width is measured in.
 */
static size_t u16_emit(struct sink *s, const unsigned char *p, size_t n)
{
	size_t i = 0, chars = 0;
	uint32_t cp;
	char b[4];

	while (i < n) {
		i += u16_decode(p, n, i, &cp);
		chars++;
		if (s)
			emit(s, b, utf8_encode(cp, b));
	}
	return chars;
}

static size_t prec_limit(const struct spec *sp)
{
	return sp->prec < 0 ? SIZE_MAX : (size_t)sp->prec;
}

static void fmt_narrow(struct sink *s, const struct spec *sp, const char *p,
		       size_t max)
{
	size_t n;

	if (!p) {
		p = null_str;
		max = sizeof(null_str) - 1;
	}
	if (max > prec_limit(sp))
		max = prec_limit(sp);
	n = narrow_len(p, max);
	pad_before(s, sp, n);
	emit(s, p, n);
	pad_after(s, sp, n);
}

/* The precision counts UTF-16 units, as in the CRT; the width characters. */
static void fmt_wide(struct sink *s, const struct spec *sp, const void *p,
		     size_t max)
{
	size_t n, chars;

	if (!p) {
		fmt_narrow(s, sp, NULL, 0);
		return;
	}
	if (max > prec_limit(sp))
		max = prec_limit(sp);
	n = u16_len(p, max);
	chars = u16_emit(NULL, p, n);
	pad_before(s, sp, chars);
	u16_emit(s, p, n);
	pad_after(s, sp, chars);
}

static void fmt_counted(struct sink *s, const struct spec *sp,
			const struct win_counted_string *cs, bool wide)
{
	const void *buf = cs ? (const void *)(uintptr_t)cs->buffer : NULL;

	/* Length is all we trust; the buffer need not be NUL-terminated. */
	if (!buf)
		fmt_narrow(s, sp, NULL, 0);
	else if (wide)
		fmt_wide(s, sp, buf, cs->length / 2);
	else
		fmt_narrow(s, sp, buf, cs->length);
}

static void fmt_char(struct sink *s, const struct spec *sp, unsigned int c,
		     bool wide)
{
	uint32_t cp = wide ? (uint16_t)c : (unsigned char)c;
	size_t n = 0;
	char b[4];

	/* A single UTF-16 unit cannot complete a surrogate pair. */
	if (wide && cp >= 0xd800 && cp <= 0xdfff)
		cp = 0xfffd;
	if (cp)
		n = utf8_encode(cp, b);
	pad_before(s, sp, n ? 1 : 0);
	emit(s, b, n);
	pad_after(s, sp, n ? 1 : 0);
}

static void fmt_int(struct sink *s, const struct spec *sp, uint64_t v,
		    bool neg, bool is_signed, unsigned int base, bool upper)
{
	const char *xdigits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char digits[24];	/* 22 octal digits cover 64 bits */
	char prefix[2];
	size_t nd = 0, np = 0, zeros = 0, total, pad;
	size_t prec = sp->prec < 0 ? 1 : (size_t)sp->prec;
	bool nonzero = v != 0;

	while (v) {
		digits[sizeof(digits) - ++nd] = xdigits[v % base];
		v /= base;
	}
	if (!nonzero && prec)
		digits[sizeof(digits) - ++nd] = '0';

	if (neg)
		prefix[np++] = '-';
	else if (is_signed && (sp->flags & FL_PLUS))
		prefix[np++] = '+';
	else if (is_signed && (sp->flags & FL_SPACE))
		prefix[np++] = ' ';

	if (sp->flags & FL_ALT) {
		if (base == 16 && nonzero) {
			prefix[np++] = '0';
			prefix[np++] = upper ? 'X' : 'x';
		} else if (base == 8 && prec <= nd &&
			   (nd == 0 || digits[sizeof(digits) - nd] != '0')) {
			/* '#' guarantees a leading zero, not an extra one */
			prec = nd + 1;
		}
	}

	if (prec > nd)
		zeros = prec - nd;
	total = np + zeros + nd;
	pad = pad_len(sp, total);

	/* '0' is ignored once a precision says how many digits to show */
	if (!(sp->flags & FL_LEFT) && (sp->flags & FL_ZERO) && sp->prec < 0) {
		zeros += pad;
		pad = 0;
	}
	if (!(sp->flags & FL_LEFT))
		emit_rep(s, ' ', pad);
	emit(s, prefix, np);
	emit_rep(s, '0', zeros);
	emit(s, digits + sizeof(digits) - nd, nd);
	if (sp->flags & FL_LEFT)
		emit_rep(s, ' ', pad);
}

/*
 * Every ms_abi vararg occupies an 8-byte slot, so reading 32 bits for
 * "%lu" still advances past the whole slot and the upper half, which the
 * caller may have left as garbage, is ignored as it is on Windows.
 */
static uint64_t arg_int(__builtin_ms_va_list *ap, unsigned int bits,
			bool is_signed)
{
	uint64_t v;

	if (bits == 64)
		return ms_va_arg(*ap, unsigned long long);
	v = ms_va_arg(*ap, unsigned int);
	switch (bits) {
	case 8:
		return is_signed ? (uint64_t)(int64_t)(int8_t)v : (uint8_t)v;
	case 16:
		return is_signed ? (uint64_t)(int64_t)(int16_t)v : (uint16_t)v;
	default:
		return is_signed ? (uint64_t)(int64_t)(int32_t)v : (uint32_t)v;
	}
}

/* Saturating, so an absurd width in a driver string cannot overflow. */
static int parse_num(const char **pp)
{
	const char *p = *pp;
	int n = 0;

	while (*p >= '0' && *p <= '9') {
		n = n > (INT_MAX - 9) / 10 ? INT_MAX : n * 10 + (*p - '0');
		p++;
	}
	*pp = p;
	return n;
}

/* Flags, width and precision; returns the first character after them. */
static const char *parse_spec(const char *p, struct spec *sp,
			      __builtin_ms_va_list *ap)
{
	int w;

	for (;; p++) {
		if (*p == '-')
			sp->flags |= FL_LEFT;
		else if (*p == '+')
			sp->flags |= FL_PLUS;
		else if (*p == ' ')
			sp->flags |= FL_SPACE;
		else if (*p == '#')
			sp->flags |= FL_ALT;
		else if (*p == '0')
			sp->flags |= FL_ZERO;
		else
			break;
	}

	if (*p == '*') {
		w = ms_va_arg(*ap, int);
		if (w < 0) {
			sp->flags |= FL_LEFT;
			w = w == INT_MIN ? INT_MAX : -w;
		}
		sp->width = w;
		p++;
	} else {
		sp->width = parse_num(&p);
	}

	if (*p == '.') {
		p++;
		if (*p == '*') {
			w = ms_va_arg(*ap, int);
			sp->prec = w < 0 ? -1 : w;	/* as if omitted */
			p++;
		} else {
			sp->prec = parse_num(&p);
		}
	}
	return p;
}

/* Length modifiers, LLP64 style; returns the conversion character. */
static const char *parse_size(const char *p, struct spec *sp)
{
	for (;;) {
		switch (*p) {
		case 'h':
			if (p[1] == 'h') {
				sp->bits = 8;
				p++;
			} else {
				sp->bits = 16;
			}
			sp->kind = STR_NARROW;
			p++;
			break;
		case 'l':
			if (p[1] == 'l') {
				sp->bits = 64;
				p += 2;
				break;
			}
			/* LLP64: long stays 32 bits; on strings 'l' means wide */
			sp->bits = 32;
			sp->kind = STR_WIDE;
			p++;
			break;
		case 'w':
			sp->kind = STR_WIDE;
			p++;
			break;
		case 'I':
			if (p[1] == '6' && p[2] == '4') {
				sp->bits = 64;
				p += 3;
			} else if (p[1] == '3' && p[2] == '2') {
				sp->bits = 32;
				p += 3;
			} else {
				sp->bits = 64;	/* pointer-sized */
				p++;
			}
			break;
		case 'z':
		case 'j':
		case 't':
		case 'L':
			sp->bits = 64;
			p++;
			break;
		default:
			return p;
		}
	}
}

size_t np_winfmt(char *out, size_t outlen, const char *fmt,
		 __builtin_ms_va_list ap)
{
	struct sink s = {
		.buf = out,
		.cap = outlen ? outlen - 1 : 0,
	};
	__builtin_ms_va_list saved;
	const char *p = fmt, *start;
	struct spec sp;
	uint64_t v;
	bool neg;

	while (p && *p && !s.full) {
		if (*p != '%') {
			emit(&s, p++, 1);
			continue;
		}

		start = p;
		sp = (struct spec){ .prec = -1, .bits = 32 };
		saved = ap;
		p = parse_spec(p + 1, &sp, &ap);
		p = parse_size(p, &sp);

		switch (*p) {
		case 'd':
		case 'i':
			v = arg_int(&ap, sp.bits, true);
			neg = (int64_t)v < 0;
			fmt_int(&s, &sp, neg ? -v : v, neg, true, 10, false);
			break;
		case 'u':
			fmt_int(&s, &sp, arg_int(&ap, sp.bits, false), false,
				false, 10, false);
			break;
		case 'o':
			fmt_int(&s, &sp, arg_int(&ap, sp.bits, false), false,
				false, 8, false);
			break;
		case 'x':
		case 'X':
			fmt_int(&s, &sp, arg_int(&ap, sp.bits, false), false,
				false, 16, *p == 'X');
			break;
		case 'p':
			/* x64 CRT: "%p" is "%.16IX" whatever was asked for */
			sp.prec = 16;
			fmt_int(&s, &sp, ms_va_arg(ap, unsigned long long),
				false, false, 16, true);
			break;
		case 'c':
		case 'C':
			fmt_char(&s, &sp, ms_va_arg(ap, unsigned int),
				 sp.kind == STR_WIDE ||
				 (*p == 'C' && sp.kind != STR_NARROW));
			break;
		case 's':
		case 'S':
			if (sp.kind == STR_WIDE ||
			    (*p == 'S' && sp.kind != STR_NARROW))
				fmt_wide(&s, &sp, ms_va_arg(ap, const void *),
					 SIZE_MAX);
			else
				fmt_narrow(&s, &sp, ms_va_arg(ap, const char *),
					   SIZE_MAX);
			break;
		case 'Z':
			fmt_counted(&s, &sp,
				    ms_va_arg(ap, const struct win_counted_string *),
				    sp.kind == STR_WIDE);
			break;
		case 'n':
			/* never write through a pointer the driver gave us */
			(void)ms_va_arg(ap, void *);
			break;
		case 'e':
		case 'E':
		case 'f':
		case 'F':
		case 'g':
		case 'G':
		case 'a':
		case 'A':
			/*
			 * Kernel DbgPrint has no floating point support.  The
			 * double still fills one 8-byte slot (ms_abi varargs
			 * mirror it into the integer registers), so skip it
			 * to keep later arguments lined up, and print nothing.
			 */
			(void)ms_va_arg(ap, unsigned long long);
			break;
		case '%':
			emit(&s, "%", 1);
			break;
		case '\0':
			/* truncated specification: show what there was */
			ap = saved;
			emit(&s, start, (size_t)(p - start));
			continue;
		default:
			ap = saved;
			emit(&s, start, (size_t)(p - start) + 1);
			break;
		}
		p++;
	}

	if (outlen)
		out[s.len] = '\0';
	return s.len;
}

size_t np_winfmt_utf16_to_utf8(char *out, size_t outlen,
			       const unsigned short *s, size_t units)
{
	struct sink sk = {
		.buf = out,
		.cap = outlen ? outlen - 1 : 0,
	};

	if (s)
		u16_emit(&sk, (const unsigned char *)s,
			 u16_len((const unsigned char *)s, units));
	if (outlen)
		out[sk.len] = '\0';
	return sk.len;
}

/*
 * One code point from UTF-8 at @p (@n bytes left).  A bad sequence is one
 * U+FFFD per maximal subpart, as Unicode recommends (and Python's
 * "replace" does): a lead byte and the continuation bytes that could still
 * have completed it.
 */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
	uint32_t c = p[0];
	unsigned char lo = 0x80, hi = 0xbf;	/* the second byte's range */
	size_t len, i;

	*cp = 0xfffd;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, c &= 0x0f;
		if (c == 0x0)
			lo = 0xa0;		/* not overlong */
		else if (c == 0xd)
			hi = 0x9f;		/* not a surrogate */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, c &= 0x07;
		if (c == 0x0)
			lo = 0x90;		/* not overlong */
		else if (c == 0x4)
			hi = 0x8f;		/* not above U+10FFFF */
	} else {
		return 1;
	}
	for (i = 1; i < len; i++) {
		if (i >= n || p[i] < lo || p[i] > hi)
			return i;		/* the subpart so far */
		c = c << 6 | (p[i] & 0x3f);
		lo = 0x80, hi = 0xbf;
	}
	*cp = c;
	return len;
}

size_t np_winfmt_utf8_to_utf16(unsigned short *out, size_t outunits,
			       const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = s ? strlen(s) : 0, at = 0, units = 0;
	uint32_t cp;

	if (!outunits)
		return 0;
	while (at < n) {
		size_t used = utf8_decode(p + at, n - at, &cp);
		size_t need = cp >= 0x10000 ? 2 : 1;

		if (units + need > outunits - 1)
			break;			/* whole characters only */
		if (need == 2) {
			out[units++] = (unsigned short)(0xd800 + ((cp - 0x10000) >> 10));
			out[units++] = (unsigned short)(0xdc00 + ((cp - 0x10000) & 0x3ff));
		} else {
			out[units++] = (unsigned short)cp;
		}
		at += used;
	}
	out[units] = 0;
	return units;
}

