/* SPDX-License-Identifier: MIT */
/*
 * np_winfmt.h - render Windows kernel DbgPrint format strings on the host.
 *
 * Driver format strings follow the Microsoft CRT under LLP64, not glibc:
 * "%lx" is 32 bits, "%I64x" and "%ws" exist, "%Z"/"%wZ" take counted
 * strings.  Handing them to libc printf would misread the va_list, so they
 * are interpreted here instead.
 *
 * Both functions are safe to call from a context that a signal handler may
 * abandon: no allocation, no locks, no stdio, no global state.
 */
#ifndef NP_WINFMT_H
#define NP_WINFMT_H

#include <stddef.h>

/*
 * Format @fmt with the arguments of a Windows x64 (ms_abi) varargs call.
 *
 * Writes at most @outlen - 1 bytes plus a NUL (nothing at all when @outlen
 * is 0, in which case @out may be NULL).  Output that does not fit is
 * dropped silently, never splitting a UTF-8 sequence produced from a wide
 * string.  Returns the number of bytes written, excluding the NUL; unlike
 * snprintf this is never the untruncated length.
 */
size_t np_winfmt(char *out, size_t outlen, const char *fmt,
		 __builtin_ms_va_list ap);

/*
 * Convert @units UTF-16LE code units at @s to UTF-8.
 *
 * Stops early at a U+0000 unit, because the result is a C string and
 * counted Windows strings sometimes include their terminator in the
 * count.  Unpaired surrogates become U+FFFD.  @s need not be 2-byte
 * aligned and may be NULL (empty result).  Truncates like np_winfmt(),
 * only ever at a character boundary, and returns the bytes written
 * excluding the NUL.
 */
size_t np_winfmt_utf16_to_utf8(char *out, size_t outlen,
			       const unsigned short *s, size_t units);

/*
 * Convert the UTF-8 C string @s to UTF-16 at @out, which has room for
 * @outunits units including the terminating U+0000 it always gets (if
 * @outunits is not 0).  Each maximal subpart of a bad sequence becomes one
 * U+FFFD (as Python's "replace" decodes); code points above U+FFFF become
 * surrogate pairs.  Never more
 * units than @s has bytes.  Truncates only at a character boundary and
 * returns the units written, excluding the terminator.
 */
size_t np_winfmt_utf8_to_utf16(unsigned short *out, size_t outunits,
			       const char *s);

#endif /* NP_WINFMT_H */
