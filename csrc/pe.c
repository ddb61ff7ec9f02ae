/* SPDX-License-Identifier: MIT */
/*
 * pe.c - loading a PE32+ driver image, and the helper DLLs it imports,
 * into the host.
 *
 * Order matters, and nothing of the driver runs before the last step:
 *   1. validate every header against the file size (each field read through
 *      an unaligned-safe accessor, each RVA checked against SizeOfImage);
 *   2. map SizeOfImage bytes read-write (at the preferred base only when the
 *      relocations were stripped) and copy headers and sections;
 *   3. apply DIR64 base relocations, and give a /GS image a random
 *      __security_cookie, as Windows' loader does;
 *   4. bind every import by name against the module tables (NDIS.SYS,
 *      ntoskrnl.exe, HAL.dll) and, for the driver, the export directories
 *      of its helper DLLs, collecting *all* the unresolved ones into one
 *      error before giving up - ndiswrapper stops at the first;
 *   5. only then set protections, page by page (the import table may sit
 *      in read-only .rdata, so binding comes first).
 * Steps 1-3 run for every module before any is bound.  Ordinal imports of
 * kernel modules, TLS directories, other machines, W+X sections,
 * forwarded exports and __C_specific_handler (structured exception
 * handling) are refused by name.  Errors are one line: the caller shows
 * them as they are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "np.h"

#define IMAGE_FILE_MACHINE_AMD64	0x8664
#define IMAGE_FILE_MACHINE_I386		0x014c
#define IMAGE_FILE_MACHINE_ARM64	0xaa64
#define PE32_MAGIC			0x10b
#define PE32PLUS_MAGIC			0x20b
#define IMAGE_SCN_MEM_EXECUTE		0x20000000U
#define IMAGE_SCN_MEM_READ		0x40000000U
#define IMAGE_SCN_MEM_WRITE		0x80000000U
#define IMAGE_SCN_CNT_UNINITIALIZED	0x00000080U
#define IMAGE_FILE_RELOCS_STRIPPED	0x0001
#define DIR_EXPORT			0
#define DIR_IMPORT			1
#define DIR_BASERELOC			5
#define DIR_TLS				9
#define DIR_LOAD_CONFIG			10
#define LOAD_CONFIG_COOKIE		0x58	/* SecurityCookie in the PE32+ layout */
#define GS_DEFAULT_COOKIE		0x00002B992DDFA232ULL
#define NP_USER_TOP			0x800000000000ULL	/* 47-bit user space */
#define IMAGE_REL_BASED_ABSOLUTE	0
#define IMAGE_REL_BASED_DIR64		10
#define NP_IMAGE_MAX			(256UL * 1024 * 1024)
#define NP_OPT64_FIXED			112	/* PE32+ optional header before the data directories */

/* Offsets inside the PE32+ optional header. */
#define OPT_MAGIC			0
#define OPT_ENTRY			16
#define OPT_IMAGE_BASE			24
#define OPT_SECTION_ALIGN		32
#define OPT_SIZE_OF_IMAGE		56
#define OPT_SIZE_OF_HEADERS		60
#define OPT_NUM_DIRS			108

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static const struct np_module *const kernel_modules[] = {
	&np_ndis_module, &np_ntoskrnl_module, &np_hal_module,
};

struct pe_section {
	char name[9];
	uint32_t vsize, rva, rawsize, rawptr, flags;
};

struct pe_info {
	const uint8_t *file;
	size_t len;
	int helper;			/* a helper DLL: no entry point needed */
	uint16_t characteristics;
	uint32_t section_align;
	uint32_t size_of_image, size_of_headers, entry_rva;
	uint64_t image_base;
	uint32_t ndirs;
	uint32_t dir_rva[16], dir_size[16];
	unsigned nsections;
	struct pe_section sec[96];
};

/* Does [rva, rva+len) lie inside the image? */
static int rva_ok(const struct pe_info *pi, uint64_t rva, uint64_t len)
{
	return rva <= pi->size_of_image && len <= pi->size_of_image - rva;
}

static const char *machine_name(uint16_t m)
{
	switch (m) {
	case IMAGE_FILE_MACHINE_I386:
		return "i386";
	case IMAGE_FILE_MACHINE_ARM64:
		return "arm64";
	case 0x01c4:
		return "arm";
	case 0x0200:
		return "ia64";
	}
	return "unknown";
}

static int parse_headers(struct pe_info *pi, char *err, size_t errlen)
{
	const uint8_t *f = pi->file;
	size_t len = pi->len;
	uint32_t lfanew, opt_off, sec_off;
	uint16_t machine, nsec, optsize, magic;
	unsigned i;

	if (len < 64)
		goto truncated_dos;
	if (f[0] != 'M' || f[1] != 'Z') {
		np_set_error(err, errlen, "not a PE image: no MZ signature");
		return -1;
	}
	lfanew = rd32(f + 60);
	if (lfanew > len || len - lfanew < 24) {
		np_set_error(err, errlen,
			     "truncated image: PE header at 0x%x is past the end of the %zu-byte file",
			     lfanew, len);
		return -1;
	}
	if (memcmp(f + lfanew, "PE\0\0", 4)) {
		np_set_error(err, errlen, "not a PE image: no PE signature at 0x%x",
			     lfanew);
		return -1;
	}
	machine = rd16(f + lfanew + 4);
	nsec = rd16(f + lfanew + 6);
	optsize = rd16(f + lfanew + 20);
	pi->characteristics = rd16(f + lfanew + 22);
	if (machine != IMAGE_FILE_MACHINE_AMD64) {
		np_set_error(err, errlen,
			     "wrong machine 0x%04x (%s): only x86-64 (0x8664) drivers can run here",
			     machine, machine_name(machine));
		return -1;
	}
	opt_off = lfanew + 24;
	if (len - opt_off < 2 || optsize < 2) {
		np_set_error(err, errlen, "truncated image: optional header missing");
		return -1;
	}
	magic = rd16(f + opt_off);
	if (magic != PE32PLUS_MAGIC) {
		np_set_error(err, errlen,
			     "optional header magic 0x%x is not PE32+ (0x20b)%s",
			     magic, magic == PE32_MAGIC ? ": a 32-bit image" : "");
		return -1;
	}
	if (optsize < NP_OPT64_FIXED || len - opt_off < optsize) {
		np_set_error(err, errlen,
			     "truncated image: optional header needs %u bytes at 0x%x, file has %zu",
			     optsize < NP_OPT64_FIXED ? NP_OPT64_FIXED : optsize,
			     opt_off, len);
		return -1;
	}
	pi->entry_rva = rd32(f + opt_off + OPT_ENTRY);
	pi->image_base = rd64(f + opt_off + OPT_IMAGE_BASE);
	pi->section_align = rd32(f + opt_off + OPT_SECTION_ALIGN);
	pi->size_of_image = rd32(f + opt_off + OPT_SIZE_OF_IMAGE);
	pi->size_of_headers = rd32(f + opt_off + OPT_SIZE_OF_HEADERS);
	pi->ndirs = rd32(f + opt_off + OPT_NUM_DIRS);
	if (pi->ndirs > 16)
		pi->ndirs = 16;
	if (NP_OPT64_FIXED + pi->ndirs * 8UL > optsize) {
		np_set_error(err, errlen,
			     "malformed image: %u data directories do not fit a %u-byte optional header",
			     pi->ndirs, optsize);
		return -1;
	}
	for (i = 0; i < pi->ndirs; i++) {
		pi->dir_rva[i] = rd32(f + opt_off + NP_OPT64_FIXED + i * 8);
		pi->dir_size[i] = rd32(f + opt_off + NP_OPT64_FIXED + i * 8 + 4);
	}
	if (pi->size_of_image == 0 || pi->size_of_image > NP_IMAGE_MAX) {
		np_set_error(err, errlen, "malformed image: SizeOfImage %u is out of range",
			     pi->size_of_image);
		return -1;
	}
	if (pi->size_of_headers > pi->size_of_image ||
	    pi->size_of_headers > len) {
		np_set_error(err, errlen,
			     "malformed image: SizeOfHeaders %u exceeds the image or the file",
			     pi->size_of_headers);
		return -1;
	}

	sec_off = opt_off + optsize;
	if (nsec == 0 || nsec > NP_ARRAY_SIZE(pi->sec)) {
		np_set_error(err, errlen, "malformed image: %u sections", nsec);
		return -1;
	}
	if (len < sec_off || (len - sec_off) / 40 < nsec) {
		np_set_error(err, errlen,
			     "truncated image: section table (%u entries at 0x%x) is past the end of the file",
			     nsec, sec_off);
		return -1;
	}
	pi->nsections = nsec;
	for (i = 0; i < nsec; i++) {
		const uint8_t *s = f + sec_off + i * 40;
		struct pe_section *sec = &pi->sec[i];

		memcpy(sec->name, s, 8);
		sec->name[8] = '\0';
		sec->vsize = rd32(s + 8);
		sec->rva = rd32(s + 12);
		sec->rawsize = rd32(s + 16);
		sec->rawptr = rd32(s + 20);
		sec->flags = rd32(s + 36);
		if (!sec->vsize)
			sec->vsize = sec->rawsize;
		if (!rva_ok(pi, sec->rva, sec->vsize)) {
			np_set_error(err, errlen,
				     "malformed image: section %s (RVA 0x%x, %u bytes) lies outside the image",
				     sec->name, sec->rva, sec->vsize);
			return -1;
		}
		if (sec->rva < pi->size_of_headers && sec->vsize) {
			np_set_error(err, errlen,
				     "malformed image: section %s overlaps the headers",
				     sec->name);
			return -1;
		}
		/* Sections come in ascending address order, as Windows demands:
		 * one that starts inside an earlier one would be copied over it. */
		if (i && sec->vsize && sec->rva < pi->sec[i - 1].rva + pi->sec[i - 1].vsize) {
			np_set_error(err, errlen,
				     "malformed image: section %s (RVA 0x%x) overlaps section %s or precedes it",
				     sec->name, sec->rva, pi->sec[i - 1].name);
			return -1;
		}
		if (sec->rawsize && !(sec->flags & IMAGE_SCN_CNT_UNINITIALIZED) &&
		    (sec->rawptr > len || sec->rawsize > len - sec->rawptr)) {
			np_set_error(err, errlen,
				     "truncated image: section %s data (0x%x bytes at 0x%x) is past the end of the file",
				     sec->name, sec->rawsize, sec->rawptr);
			return -1;
		}
		if ((sec->flags & IMAGE_SCN_MEM_WRITE) &&
		    (sec->flags & IMAGE_SCN_MEM_EXECUTE)) {
			np_set_error(err, errlen,
				     "section %s is both writable and executable (W+X): refused",
				     sec->name);
			return -1;
		}
	}
	if (pi->ndirs > DIR_TLS && pi->dir_size[DIR_TLS]) {
		np_set_error(err, errlen,
			     "image has a TLS directory: thread-local storage in drivers is not supported");
		return -1;
	}
	for (i = 0; i < pi->ndirs; i++) {
		if (pi->dir_size[i] && !rva_ok(pi, pi->dir_rva[i], pi->dir_size[i])) {
			np_set_error(err, errlen,
				     "malformed image: data directory %u (RVA 0x%x, %u bytes) lies outside the image",
				     i, pi->dir_rva[i], pi->dir_size[i]);
			return -1;
		}
	}
	if (pi->helper && pi->entry_rva == 0)
		return 0;	/* DLLs may have none; it is never called anyway */
	if (!rva_ok(pi, pi->entry_rva, 1) || pi->entry_rva == 0) {
		np_set_error(err, errlen,
			     "malformed image: entry point RVA 0x%x lies outside the image",
			     pi->entry_rva);
		return -1;
	}
	return 0;

truncated_dos:
	np_set_error(err, errlen,
		     "truncated image: %zu bytes is shorter than a DOS header", len);
	return -1;
}

/*
 * Where the image goes: anywhere mmap likes, except for an image whose
 * relocations were stripped, which only works at its preferred base.
 */
static int map_image(struct np_pe *pe, const struct pe_info *pi, int anywhere,
		     char *err, size_t errlen)
{
	pe->size = NP_ALIGN_UP(pi->size_of_image, NP_PAGE_SIZE);
	if (anywhere || !(pi->characteristics & IMAGE_FILE_RELOCS_STRIPPED)) {
		pe->base = np_map(pe->size, PROT_READ | PROT_WRITE, "image");
		if (!pe->base) {
			np_set_error(err, errlen, "cannot map %zu bytes for the image",
				     pe->size);
			return -1;
		}
		return 0;
	}
	if (pi->image_base & (NP_PAGE_SIZE - 1) ||
	    pi->image_base >= NP_USER_TOP || pe->size > NP_USER_TOP - pi->image_base) {
		np_set_error(err, errlen,
			     "relocations stripped (IMAGE_FILE_RELOCS_STRIPPED) and the preferred base 0x%llx is not user address space: the image cannot be loaded",
			     (unsigned long long)pi->image_base);
		return -1;
	}
	pe->base = np_map_at(pi->image_base, pe->size, PROT_READ | PROT_WRITE,
			     "image");
	if (!pe->base) {
		np_set_error(err, errlen,
			     "relocations stripped (IMAGE_FILE_RELOCS_STRIPPED) and the preferred base 0x%llx is taken: the image cannot be loaded elsewhere",
			     (unsigned long long)pi->image_base);
		return -1;
	}
	return 0;
}

static void copy_sections(struct np_pe *pe, const struct pe_info *pi)
{
	unsigned i;

	memcpy(pe->base, pi->file, pi->size_of_headers);
	for (i = 0; i < pi->nsections; i++) {
		const struct pe_section *s = &pi->sec[i];
		uint32_t n = s->rawsize < s->vsize ? s->rawsize : s->vsize;

		if (n && !(s->flags & IMAGE_SCN_CNT_UNINITIALIZED))
			memcpy(pe->base + s->rva, pi->file + s->rawptr, n);
	}
}

static int relocate(struct np_pe *pe, const struct pe_info *pi,
		    char *err, size_t errlen)
{
	uint64_t delta = (uint64_t)(uintptr_t)pe->base - pi->image_base;
	uint32_t off = 0, size = pi->ndirs > DIR_BASERELOC ?
				pi->dir_size[DIR_BASERELOC] : 0;
	const uint8_t *dir = pe->base + pi->dir_rva[DIR_BASERELOC];

	if (!delta)
		return 0;
	while (off + 8 <= size) {
		uint32_t page = rd32(dir + off);
		uint32_t block = rd32(dir + off + 4);
		uint32_t i, n;

		if (block < 8 || block > size - off) {
			np_set_error(err, errlen,
				     "malformed image: relocation block at +0x%x has size %u",
				     off, block);
			return -1;
		}
		n = (block - 8) / 2;
		for (i = 0; i < n; i++) {
			uint16_t e = rd16(dir + off + 8 + i * 2);
			uint32_t type = e >> 12, rva = page + (e & 0xfff);
			uint64_t v;

			if (type == IMAGE_REL_BASED_ABSOLUTE)
				continue;
			if (type != IMAGE_REL_BASED_DIR64) {
				np_set_error(err, errlen,
					     "unsupported relocation type %u at RVA 0x%x (only DIR64)",
					     type, rva);
				return -1;
			}
			if (!rva_ok(pi, rva, 8)) {
				np_set_error(err, errlen,
					     "malformed image: relocation target RVA 0x%x lies outside the image",
					     rva);
				return -1;
			}
			memcpy(&v, pe->base + rva, 8);
			v += delta;
			memcpy(pe->base + rva, &v, 8);
		}
		off += block;
	}
	return 0;
}

/* 64 random bits; the clock and our address if the kernel has none. */
static uint64_t random64(void)
{
	uint64_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == sizeof(v))
		return v;
	v = np_now_ns() ^ (uintptr_t)&v;
	v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ULL;	/* splitmix64's mixer */
	v = (v ^ (v >> 27)) * 0x94d049bb133111ebULL;
	return v ^ (v >> 31);
}

/*
 * /GS: the compiler checks each protected frame against __security_cookie,
 * whose address the load config directory gives.  A kernel driver never
 * sets it itself: the loader must replace the linker's default, and
 * GsDriverEntry fails with __fastfail(FAST_FAIL_GS_COOKIE_INIT) if it
 * still finds that (or 0).  Like Windows' x64 loader we keep the top 16
 * bits clear.  A value that is neither was chosen by the image: left alone.
 */
static int init_security_cookie(struct np_pe *pe, const struct pe_info *pi,
				char *err, size_t errlen)
{
	uint32_t dir = pi->ndirs > DIR_LOAD_CONFIG ? pi->dir_rva[DIR_LOAD_CONFIG] : 0;
	uint64_t va, rva, cookie;
	const uint8_t *lc;

	if (pi->ndirs <= DIR_LOAD_CONFIG || !pi->dir_size[DIR_LOAD_CONFIG])
		return 0;
	if (!rva_ok(pi, dir, 4))
		return 0;
	lc = pe->base + dir;
	if (rd32(lc) < LOAD_CONFIG_COOKIE + 8)
		return 0;		/* too old a layout to have the field */
	if (!rva_ok(pi, dir, LOAD_CONFIG_COOKIE + 8)) {
		np_set_error(err, errlen,
			     "malformed image: load config directory (RVA 0x%x, %u bytes) runs outside the image",
			     dir, rd32(lc));
		return -1;
	}
	va = rd64(lc + LOAD_CONFIG_COOKIE);
	if (!va)
		return 0;
	rva = va - (uintptr_t)pe->base;
	if (va < (uintptr_t)pe->base || !rva_ok(pi, rva, 8)) {
		/* Named as the file has it, before relocation. */
		np_set_error(err, errlen,
			     "malformed image: load config SecurityCookie VA 0x%llx lies outside the image",
			     (unsigned long long)(rva + pi->image_base));
		return -1;
	}
	cookie = rd64(pe->base + rva);
	if (cookie != GS_DEFAULT_COOKIE && cookie != 0)
		return 0;
	do
		cookie = random64() & 0x0000ffffffffffffULL;
	while (cookie == GS_DEFAULT_COOKIE || cookie == 0);
	memcpy(pe->base + rva, &cookie, 8);
	return 0;
}

/* ---- exports of helper DLLs ------------------------------------------------- */

/*
 * A helper's export by name (or, with name NULL, by ordinal): 1 and its
 * RVA, 0 when it has none, -1 with err set for a forwarder or a malformed
 * export directory.
 */
static int helper_export(const struct np_pe *pe, const char *name,
			 uint32_t ordinal, uint32_t *rva_out,
			 char *err, size_t errlen)
{
	const uint8_t *dir = pe->base + pe->export_rva;
	uint32_t base, nfuncs, nnames, funcs, names, ords, index, rva, i;
	const char *fwd;

	if (pe->export_size < 40)
		return 0;
	base = rd32(dir + 16);
	nfuncs = rd32(dir + 20);
	nnames = rd32(dir + 24);
	funcs = rd32(dir + 28);
	names = rd32(dir + 32);
	ords = rd32(dir + 36);
	if (nfuncs > 65536 || nnames > nfuncs ||
	    (uint64_t)funcs + nfuncs * 4ULL > pe->size ||
	    (uint64_t)names + nnames * 4ULL > pe->size ||
	    (uint64_t)ords + nnames * 2ULL > pe->size) {
		np_set_error(err, errlen,
			     "malformed image: the export directory of %s runs outside it",
			     pe->name);
		return -1;
	}
	if (name) {
		for (i = 0; i < nnames; i++) {
			uint32_t at = rd32(pe->base + names + i * 4);
			const char *n = (const char *)pe->base + at;

			if (at < pe->size && !strncmp(n, name, pe->size - at) &&
			    memchr(n, '\0', pe->size - at))
				break;
		}
		if (i == nnames)
			return 0;
		index = rd16(pe->base + ords + i * 2);
	} else {
		index = ordinal - base;
	}
	if (index >= nfuncs)
		return 0;
	rva = rd32(pe->base + funcs + index * 4);
	if (!rva)
		return 0;
	if (rva >= pe->export_rva && rva - pe->export_rva < pe->export_size) {
		fwd = (const char *)pe->base + rva;
		if (!memchr(fwd, '\0', pe->size - rva))
			fwd = "?";
		if (name)
			np_set_error(err, errlen,
				     "%s!%s is forwarded to %.80s: forwarded exports are not supported",
				     pe->name, name, fwd);
		else
			np_set_error(err, errlen,
				     "%s!#%u is forwarded to %.80s: forwarded exports are not supported",
				     pe->name, ordinal, fwd);
		return -1;
	}
	if (rva >= pe->size) {
		np_set_error(err, errlen,
			     "malformed image: export %s of %s lies outside it",
			     name ? name : "by ordinal", pe->name);
		return -1;
	}
	*rva_out = rva;
	return 1;
}

/* ---- imports ------------------------------------------------------------------ */

const void *np_module_lookup(const char *module, const char *fn,
			     int *module_known)
{
	size_t m, i;

	*module_known = 0;
	for (m = 0; m < NP_ARRAY_SIZE(kernel_modules); m++) {
		if (strcasecmp(kernel_modules[m]->name, module))
			continue;
		*module_known = 1;
		for (i = 0; i < kernel_modules[m]->count; i++)
			if (!strcmp(kernel_modules[m]->exports[i].name, fn))
				return kernel_modules[m]->exports[i].fn;
		return NULL;
	}
	return NULL;
}

static int kernel_module(const char *name)
{
	size_t m;

	for (m = 0; m < NP_ARRAY_SIZE(kernel_modules); m++)
		if (!strcasecmp(kernel_modules[m]->name, name))
			return 1;
	return 0;
}

/* A NUL-terminated string at rva, wholly inside the image, or NULL. */
static const char *image_string(const struct np_pe *pe, uint32_t rva)
{
	const char *s;
	size_t max;

	if (rva >= pe->size)
		return NULL;
	s = (const char *)pe->base + rva;
	max = pe->size - rva;
	if (!memchr(s, '\0', max > 256 ? 256 : max))
		return NULL;
	return s;
}

/*
 * The import descriptor at byte d of the directory, with its module name:
 * 1, 0 at the end of the table, -1 with err set for a bad name.
 */
static int import_descriptor(const struct np_pe *pe, const struct pe_info *pi,
			     uint32_t d, uint32_t *lookup, uint32_t *iat,
			     const char **module, char *err, size_t errlen)
{
	uint32_t dir_rva = pi->dir_rva[DIR_IMPORT];
	uint32_t dir_size = pi->ndirs > DIR_IMPORT ? pi->dir_size[DIR_IMPORT] : 0;
	const uint8_t *desc;
	uint32_t name_rva;

	if (d + 20 > dir_size)
		return 0;
	desc = pe->base + dir_rva + d;
	*lookup = rd32(desc);
	name_rva = rd32(desc + 12);
	*iat = rd32(desc + 16);
	if (!*lookup && !name_rva && !*iat)
		return 0;
	*module = image_string(pe, name_rva);
	if (!*module) {
		np_set_error(err, errlen,
			     "malformed image: import module name RVA 0x%x lies outside the image",
			     name_rva);
		return -1;
	}
	if (!*lookup)
		*lookup = *iat;
	return 1;
}

/* Append "module!name" to the unresolved list, keeping the error one line. */
static void note_unresolved(char *list, size_t cap, size_t *used,
			    unsigned *count, const char *module, const char *fn)
{
	int n;

	(*count)++;
	if (*used >= cap)
		return;
	n = snprintf(list + *used, cap - *used, "%s%s!%s",
		     *count > 1 ? ", " : "", module, fn);
	if (n > 0)
		*used += (size_t)n < cap - *used ? (size_t)n : cap - *used - 1;
}

static const struct np_pe *find_helper(const struct np_image *img,
				       const char *module)
{
	unsigned m;

	for (m = 1; m < img->npe; m++)
		if (!strcasecmp(img->pe[m].name, module))
			return &img->pe[m];
	return NULL;
}

/*
 * Bind pe's imports: the kernel modules for everyone, the helper DLLs for
 * the driver (pe[0]) alone.  Unresolved imports are all collected first.
 */
static int bind_imports(const struct np_image *img, struct np_pe *pe,
			const struct pe_info *pi, char *err, size_t errlen)
{
	const char *seh_module = NULL;
	char missing[768];
	size_t used = 0;
	unsigned nmissing = 0;
	uint32_t d, lookup, iat;
	const char *module;
	int rc;

	missing[0] = '\0';
	for (d = 0; (rc = import_descriptor(pe, pi, d, &lookup, &iat, &module,
					    err, errlen)) > 0; d += 20) {
		const struct np_pe *helper = NULL;
		uint32_t i;

		if (!kernel_module(module)) {
			helper = pe == &img->pe[0] ? find_helper(img, module) : NULL;
			if (pe != &img->pe[0]) {
				np_set_error(err, errlen,
					     "imports %s, but a helper DLL may import only NDIS.SYS, ntoskrnl.exe and HAL.dll",
					     module);
				return -1;
			}
		}
		for (i = 0;; i++) {
			uint64_t thunk, slot_rva = (uint64_t)iat + i * 8ULL;
			const char *fn = NULL;
			const void *addr = NULL;
			uint32_t rva;
			int known;

			if (!rva_ok(pi, (uint64_t)lookup + i * 8ULL, 8) ||
			    !rva_ok(pi, slot_rva, 8)) {
				np_set_error(err, errlen,
					     "malformed image: import table of %s runs outside the image",
					     module);
				return -1;
			}
			thunk = rd64(pe->base + lookup + i * 8ULL);
			if (!thunk)
				break;
			/* Kernel ordinals differ between Windows builds. */
			if (thunk >> 63 && kernel_module(module)) {
				np_set_error(err, errlen,
					     "ordinal import %s!#%u is not supported: import by name",
					     module, (unsigned)(thunk & 0xffff));
				return -1;
			}
			if (!(thunk >> 63) &&
			    (thunk > UINT32_MAX ||
			     !(fn = image_string(pe, (uint32_t)thunk + 2)))) {
				np_set_error(err, errlen,
					     "malformed image: import name RVA 0x%llx of %s lies outside the image",
					     (unsigned long long)thunk, module);
				return -1;
			}
			if (fn && !strcmp(fn, "__C_specific_handler")) {
				seh_module = module;
				continue;
			}
			if (helper) {
				int found = helper_export(helper, fn,
							  (uint32_t)(thunk & 0xffff),
							  &rva, err, errlen);

				if (found < 0)
					return -1;
				if (found)
					addr = helper->base + rva;
			} else if (fn) {
				addr = np_module_lookup(module, fn, &known);
			}
			if (!addr) {
				char ord[16];

				snprintf(ord, sizeof(ord), "#%u", (unsigned)(thunk & 0xffff));
				note_unresolved(missing, sizeof(missing), &used,
						&nmissing, module, fn ? fn : ord);
				continue;
			}
			memcpy(pe->base + slot_rva, &addr, 8);
		}
	}
	if (rc < 0)
		return -1;
	if (seh_module) {
		np_set_error(err, errlen,
			     "structured exception handling (__try/__except) is not supported: the image imports %s!__C_specific_handler",
			     seh_module);
		return -1;
	}
	if (nmissing) {
		np_set_error(err, errlen, "%u unresolved import%s: %s%s",
			     nmissing, nmissing > 1 ? "s" : "", missing,
			     used >= sizeof(missing) - 1 ? ", ..." : "");
		return -1;
	}
	return 0;
}

/* ---- protections ---------------------------------------------------------------- */

#define PAGE_CLAIMED	0x80	/* some section (or the headers) covers it */
#define NO_SECTION	0xff

/*
 * Each page gets the union of what the sections on it need.  Sections
 * aligned to pages never share one; with a SectionAlignment below the page
 * size (WDK drivers often have 0x80) they do, and a page holding both code
 * and writable data must be W+X, as it is on Windows: counted in wx_pages.
 * With page-aligned sections such a page can only come from overlapping
 * sections: refused, since no section may be W+X itself.  Pages of no
 * section stay read-write, never executable.
 */
static int protect(struct np_pe *pe, const struct pe_info *pi,
		   char *err, size_t errlen)
{
	size_t npages = pe->size / NP_PAGE_SIZE, p, run;
	uint8_t *prot, *wsec, *xsec;
	unsigned i;
	int rc = -1;

	prot = calloc(npages, 3);
	if (!prot) {
		np_set_error(err, errlen, "out of memory");
		return -1;
	}
	wsec = prot + npages;
	xsec = wsec + npages;
	memset(wsec, NO_SECTION, 2 * npages);
	for (p = 0; p < NP_ALIGN_UP(pi->size_of_headers, NP_PAGE_SIZE) / NP_PAGE_SIZE; p++)
		prot[p] = PAGE_CLAIMED | PROT_READ;
	pe->nexec = 0;
	for (i = 0; i < pi->nsections; i++) {
		const struct pe_section *s = &pi->sec[i];
		size_t lo = s->rva / NP_PAGE_SIZE;
		size_t hi = NP_ALIGN_UP((size_t)s->rva + s->vsize, NP_PAGE_SIZE) / NP_PAGE_SIZE;
		int sp = 0;

		if (!s->vsize)
			continue;
		if (s->flags & IMAGE_SCN_MEM_READ)
			sp |= PROT_READ;
		if (s->flags & IMAGE_SCN_MEM_WRITE)
			sp |= PROT_READ | PROT_WRITE;
		if (s->flags & IMAGE_SCN_MEM_EXECUTE) {
			sp |= PROT_READ | PROT_EXEC;
			pe->exec[pe->nexec].lo = s->rva;
			pe->exec[pe->nexec].hi = s->rva + s->vsize;
			pe->nexec++;
		}
		for (p = lo; p < hi; p++) {
			prot[p] |= PAGE_CLAIMED | sp;
			if (sp & PROT_WRITE && wsec[p] == NO_SECTION)
				wsec[p] = (uint8_t)i;
			if (sp & PROT_EXEC && xsec[p] == NO_SECTION)
				xsec[p] = (uint8_t)i;
		}
	}
	pe->wx_pages = 0;
	for (p = 0; p < npages; p++) {
		if (!(prot[p] & PAGE_CLAIMED))
			prot[p] = PROT_READ | PROT_WRITE;
		if ((prot[p] & (PROT_WRITE | PROT_EXEC)) != (PROT_WRITE | PROT_EXEC))
			continue;
		if (pi->section_align >= NP_PAGE_SIZE) {
			np_set_error(err, errlen,
				     "malformed image: sections %s and %s overlap on the page at RVA 0x%zx, which would be writable and executable",
				     pi->sec[xsec[p]].name, pi->sec[wsec[p]].name,
				     p * NP_PAGE_SIZE);
			goto out;
		}
		pe->wx_pages++;
	}
	for (p = 0; p < npages; p = run) {
		int pp = prot[p] & ~PAGE_CLAIMED;

		for (run = p + 1; run < npages && (prot[run] & ~PAGE_CLAIMED) == pp; run++)
			;
		if (mprotect(pe->base + p * NP_PAGE_SIZE, (run - p) * NP_PAGE_SIZE, pp)) {
			np_set_error(err, errlen, "cannot set section protections");
			goto out;
		}
	}
	rc = 0;
out:
	free(prot);
	return rc;
}

/* ---- putting a driver and its helpers together ------------------------------ */

/* Steps 1-3 for one module. */
static int load_module(struct np_pe *pe, struct pe_info *pi, const char *name,
		       const uint8_t *data, size_t len, int helper,
		       char *err, size_t errlen)
{
	memset(pi, 0, sizeof(*pi));
	pi->file = data;
	pi->len = len;
	pi->helper = helper;
	snprintf(pe->name, sizeof(pe->name), "%s", name);
	if (parse_headers(pi, err, errlen) ||
	    map_image(pe, pi, 0, err, errlen))
		return -1;
	copy_sections(pe, pi);
	pe->entry_rva = pi->entry_rva;
	if (pi->ndirs > DIR_EXPORT) {
		pe->export_rva = pi->dir_rva[DIR_EXPORT];
		pe->export_size = pi->dir_size[DIR_EXPORT];
	}
	return relocate(pe, pi, err, errlen) ||
	       init_security_cookie(pe, pi, err, errlen) ? -1 : 0;
}

/* A helper's error names the helper: the caller prefixes the driver's. */
static void blame_helper(const char *name, char *err, size_t errlen)
{
	char inner[512];

	snprintf(inner, sizeof(inner), "%s", err);
	np_set_error(err, errlen, "helper DLL %s: %s", name, inner);
}

int np_pe_load(struct np_image *img, const uint8_t *data, size_t len,
	       const struct np_api_helper *helpers, size_t nhelpers,
	       char *err, size_t errlen)
{
	struct pe_info *pi;
	unsigned m;

	if (nhelpers > NP_MAX_HELPERS) {
		np_set_error(err, errlen,
			     "the image imports %zu helper DLLs: at most %u are supported",
			     nhelpers, NP_MAX_HELPERS);
		return -1;
	}
	pi = calloc(1 + nhelpers, sizeof(*pi));
	if (!pi) {
		np_set_error(err, errlen, "out of memory");
		return -1;
	}
	img->failed_helper = -1;
	for (img->npe = 0; img->npe < 1 + nhelpers; img->npe++) {
		struct np_pe *pe = &img->pe[img->npe];
		int helper = img->npe > 0;
		const struct np_api_helper *h = helper ? &helpers[img->npe - 1] : NULL;

		memset(pe, 0, sizeof(*pe));
		if (load_module(pe, &pi[img->npe], helper ? h->name : img->name,
				helper ? h->data : data, helper ? h->len : len,
				helper, err, errlen)) {
			if (helper)
				blame_helper(h->name, err, errlen);
			img->npe++;	/* so that its mapping, if any, goes too */
			goto err_unmap;
		}
	}
	for (m = 1; m < img->npe; m++) {
		uint32_t rva;
		int rc = helper_export(&img->pe[m], "DllInitialize", 0, &rva,
				       err, errlen);

		if (rc < 0)
			goto err_unmap;
		img->pe[m].dll_initialize_rva = rc ? rva : 0;
	}
	for (m = 0; m < img->npe; m++) {
		if (bind_imports(img, &img->pe[m], &pi[m], err, errlen) ||
		    protect(&img->pe[m], &pi[m], err, errlen)) {
			if (m)
				blame_helper(img->pe[m].name, err, errlen);
			goto err_unmap;
		}
	}
	img->base = img->pe[0].base;
	img->size = img->pe[0].size;
	img->entry_rva = img->pe[0].entry_rva;
	free(pi);
	return 0;

err_unmap:
	np_pe_unload(img);
	free(pi);
	return -1;
}

void np_pe_unload(struct np_image *img)
{
	unsigned m;

	for (m = 0; m < img->npe; m++) {
		if (img->pe[m].base)
			np_unmap(img->pe[m].base, img->pe[m].size);
		img->pe[m].base = NULL;
	}
	img->npe = 0;
	img->base = NULL;
}

/*
 * The modules the image imports that are not kernel modules we emulate:
 * helper DLLs the caller should find beside the driver.  NUL-separated
 * names, each once, in import-table order; 0 bytes when there are none or
 * the image does not parse (np_api_image_load will say why).
 */
size_t np_api_image_helpers(const uint8_t *data, size_t len, char *out,
			    size_t outlen)
{
	struct pe_info pi;
	struct np_pe pe;
	uint32_t d, lookup, iat;
	const char *module;
	size_t used = 0, n, at;
	char err[8];

	memset(&pi, 0, sizeof(pi));
	memset(&pe, 0, sizeof(pe));
	pi.file = data;
	pi.len = len;
	if (parse_headers(&pi, err, sizeof(err)) ||
	    map_image(&pe, &pi, 1, err, sizeof(err)))
		return 0;
	copy_sections(&pe, &pi);
	for (d = 0; import_descriptor(&pe, &pi, d, &lookup, &iat, &module,
				      err, sizeof(err)) > 0; d += 20) {
		if (kernel_module(module))
			continue;
		for (at = 0; at < used; at += strlen(out + at) + 1)
			if (!strcasecmp(out + at, module))
				break;
		n = strlen(module) + 1;
		if (at < used || used + n > outlen)
			continue;
		memcpy(out + used, module, n);
		used += n;
	}
	np_unmap(pe.base, pe.size);
	return used;
}
