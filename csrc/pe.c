/* SPDX-License-Identifier: MIT */
/*
 * pe.c - loading a PE32+ driver image into the host.
 *
 * Order matters, and nothing of the driver runs before the last step:
 *   1. validate every header against the file size (each field read through
 *      an unaligned-safe accessor, each RVA checked against SizeOfImage);
 *   2. map SizeOfImage bytes read-write and copy headers and sections;
 *   3. apply DIR64 base relocations;
 *   4. bind every import by name against the module tables (NDIS.SYS,
 *      ntoskrnl.exe, HAL.dll), collecting *all* the unresolved ones into one
 *      error before giving up - ndiswrapper stops at the first;
 *   5. only then set per-section protections (the import table may sit in
 *      read-only .rdata, so binding comes first).
 * Ordinal imports, TLS directories, other machines and W+X sections are
 * refused by name.  Errors are one line: the caller shows them as they are.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

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
#define DIR_IMPORT			1
#define DIR_BASERELOC			5
#define DIR_TLS				9
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

struct pe_section {
	char name[9];
	uint32_t vsize, rva, rawsize, rawptr, flags;
};

struct pe_info {
	const uint8_t *file;
	size_t len;
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

static int relocate(struct np_image *img, const struct pe_info *pi,
		    char *err, size_t errlen)
{
	uint64_t delta = (uint64_t)(uintptr_t)img->base - pi->image_base;
	uint32_t off = 0, size = pi->ndirs > DIR_BASERELOC ?
				pi->dir_size[DIR_BASERELOC] : 0;
	const uint8_t *dir = img->base + pi->dir_rva[DIR_BASERELOC];

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
			memcpy(&v, img->base + rva, 8);
			v += delta;
			memcpy(img->base + rva, &v, 8);
		}
		off += block;
	}
	return 0;
}

const void *np_module_lookup(const char *module, const char *fn,
			     int *module_known)
{
	static const struct np_module *const modules[] = {
		&np_ndis_module, &np_ntoskrnl_module, &np_hal_module,
	};
	size_t m, i;

	*module_known = 0;
	for (m = 0; m < NP_ARRAY_SIZE(modules); m++) {
		if (strcasecmp(modules[m]->name, module))
			continue;
		*module_known = 1;
		for (i = 0; i < modules[m]->count; i++)
			if (!strcmp(modules[m]->exports[i].name, fn))
				return modules[m]->exports[i].fn;
		return NULL;
	}
	return NULL;
}

/* A NUL-terminated string at rva, wholly inside the image, or NULL. */
static const char *image_string(struct np_image *img, uint32_t rva)
{
	const char *s;
	size_t max;

	if (rva >= img->size)
		return NULL;
	s = (const char *)img->base + rva;
	max = img->size - rva;
	if (!memchr(s, '\0', max > 256 ? 256 : max))
		return NULL;
	return s;
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

static int bind_imports(struct np_image *img, const struct pe_info *pi,
			char *err, size_t errlen)
{
	uint32_t dir_rva = pi->ndirs > DIR_IMPORT ? pi->dir_rva[DIR_IMPORT] : 0;
	uint32_t dir_size = pi->ndirs > DIR_IMPORT ? pi->dir_size[DIR_IMPORT] : 0;
	char missing[768];
	size_t used = 0;
	unsigned nmissing = 0;
	uint32_t d;

	missing[0] = '\0';
	if (!dir_size)
		return 0;
	for (d = 0; d + 20 <= dir_size; d += 20) {
		const uint8_t *desc = img->base + dir_rva + d;
		uint32_t lookup = rd32(desc), name_rva = rd32(desc + 12);
		uint32_t iat = rd32(desc + 16), i;
		const char *module;

		if (!lookup && !name_rva && !iat)
			break;
		module = image_string(img, name_rva);
		if (!module) {
			np_set_error(err, errlen,
				     "malformed image: import module name RVA 0x%x lies outside the image",
				     name_rva);
			return -1;
		}
		if (!lookup)
			lookup = iat;
		for (i = 0;; i++) {
			uint64_t thunk, slot_rva = (uint64_t)iat + i * 8ULL;
			const char *fn;
			const void *addr;
			int known;

			if (!rva_ok(pi, (uint64_t)lookup + i * 8ULL, 8) ||
			    !rva_ok(pi, slot_rva, 8)) {
				np_set_error(err, errlen,
					     "malformed image: import table of %s runs outside the image",
					     module);
				return -1;
			}
			thunk = rd64(img->base + lookup + i * 8ULL);
			if (!thunk)
				break;
			if (thunk >> 63) {
				np_set_error(err, errlen,
					     "ordinal import %s!#%u is not supported: import by name",
					     module, (unsigned)(thunk & 0xffff));
				return -1;
			}
			if (thunk > UINT32_MAX ||
			    !(fn = image_string(img, (uint32_t)thunk + 2))) {
				np_set_error(err, errlen,
					     "malformed image: import name RVA 0x%llx of %s lies outside the image",
					     (unsigned long long)thunk, module);
				return -1;
			}
			addr = np_module_lookup(module, fn, &known);
			if (!addr) {
				note_unresolved(missing, sizeof(missing), &used,
						&nmissing, module, fn);
				continue;
			}
			memcpy(img->base + slot_rva, &addr, 8);
		}
	}
	if (nmissing) {
		np_set_error(err, errlen, "%u unresolved import%s: %s%s",
			     nmissing, nmissing > 1 ? "s" : "", missing,
			     used >= sizeof(missing) - 1 ? ", ..." : "");
		return -1;
	}
	return 0;
}

static int protect(struct np_image *img, const struct pe_info *pi)
{
	unsigned i;

	if (mprotect(img->base, NP_ALIGN_UP(pi->size_of_headers, NP_PAGE_SIZE),
		     PROT_READ))
		return -1;
	for (i = 0; i < pi->nsections; i++) {
		const struct pe_section *s = &pi->sec[i];
		uintptr_t lo = (uintptr_t)img->base + s->rva;
		uintptr_t hi = NP_ALIGN_UP(lo + s->vsize, NP_PAGE_SIZE);
		int prot = 0;

		if (!s->vsize)
			continue;
		if (s->flags & IMAGE_SCN_MEM_READ)
			prot |= PROT_READ;
		if (s->flags & IMAGE_SCN_MEM_WRITE)
			prot |= PROT_READ | PROT_WRITE;
		if (s->flags & IMAGE_SCN_MEM_EXECUTE)
			prot |= PROT_READ | PROT_EXEC;
		lo &= ~(NP_PAGE_SIZE - 1);
		if (mprotect((void *)lo, hi - lo, prot))
			return -1;
	}
	return 0;
}

int np_pe_load(struct np_image *img, const uint8_t *data, size_t len,
	       char *err, size_t errlen)
{
	struct pe_info pi;
	unsigned i;

	memset(&pi, 0, sizeof(pi));
	pi.file = data;
	pi.len = len;
	if (parse_headers(&pi, err, errlen))
		return -1;

	img->size = NP_ALIGN_UP(pi.size_of_image, NP_PAGE_SIZE);
	img->base = np_map(img->size, PROT_READ | PROT_WRITE, "image");
	if (!img->base) {
		np_set_error(err, errlen, "cannot map %zu bytes for the image",
			     img->size);
		return -1;
	}
	memcpy(img->base, data, pi.size_of_headers);
	for (i = 0; i < pi.nsections; i++) {
		const struct pe_section *s = &pi.sec[i];
		uint32_t n = s->rawsize < s->vsize ? s->rawsize : s->vsize;

		if (n && !(s->flags & IMAGE_SCN_CNT_UNINITIALIZED))
			memcpy(img->base + s->rva, data + s->rawptr, n);
	}
	if (relocate(img, &pi, err, errlen) ||
	    bind_imports(img, &pi, err, errlen))
		goto err_unmap;
	if (protect(img, &pi)) {
		np_set_error(err, errlen, "cannot set section protections");
		goto err_unmap;
	}
	img->entry_rva = pi.entry_rva;
	return 0;

err_unmap:
	np_unmap(img->base, img->size);
	img->base = NULL;
	return -1;
}

void np_pe_unload(struct np_image *img)
{
	if (img->base)
		np_unmap(img->base, img->size);
	img->base = NULL;
}
