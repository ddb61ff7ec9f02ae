/* SPDX-License-Identifier: MIT */
/*
 * image.c - a loaded driver image: its DriverEntry, log and lifetime.
 *
 * DriverEntry runs on the image's own private stack with the same guards as
 * an adapter's (notes/rulings.md), at PASSIVE_LEVEL, and must register a
 * miniport through NdisMInitializeWrapper + NdisMRegisterMiniport.
 */
#include <stdlib.h>
#include <string.h>

#include "np.h"

#define NP_IMAGE_ARENA (16UL * 1024 * 1024)

static const char registry_root[] =
	"\\Registry\\Machine\\System\\CurrentControlSet\\Services\\";

/* \Registry\...\Services\<name without its extension>, as Windows passes it. */
static void registry_path(UNICODE_STRING *path, WCHAR *buf, size_t cap,
			  const char *name)
{
	size_t i, n = 0;

	for (i = 0; registry_root[i] && n < cap - 1; i++)
		buf[n++] = (WCHAR)registry_root[i];
	for (i = 0; name[i] && name[i] != '.' && n < cap - 1; i++)
		buf[n++] = (WCHAR)name[i];
	buf[n] = 0;
	path->Buffer = buf;
	path->Length = (USHORT)(n * 2);
	path->MaximumLength = (USHORT)(n * 2 + 2);
}

int np_api_image_load(const uint8_t *data, size_t len, const char *name,
		      const struct np_api_helper *helpers, size_t nhelpers,
		      size_t stack_size, struct np_image **out, char *err,
		      size_t errlen)
{
	struct np_image *img;

	*out = NULL;
	if (!stack_size)
		stack_size = NP_STACK_DEFAULT;
	if (stack_size < NP_STACK_MIN || stack_size > NP_STACK_MAX) {
		np_set_error(err, errlen,
			     "stack size %zu is outside %u..%u bytes",
			     stack_size, NP_STACK_MIN, NP_STACK_MAX);
		return -1;
	}
	np_trap_ensure();
	img = calloc(1, sizeof(*img));
	if (!img) {
		np_set_error(err, errlen, "out of memory");
		return -1;
	}
	strncpy(img->name, name, sizeof(img->name) - 1);
	atomic_flag_clear(&img->log.lock);
	if (np_pe_load(img, data, len, helpers, nhelpers, err, errlen))
		goto err_free;
	if (np_ctx_init(&img->ctx, img, stack_size, NP_IMAGE_ARENA)) {
		np_set_error(err, errlen, "cannot map the image's stack and arena");
		goto err_unload;
	}
	img->ctx.deadline_ns[NP_EP_DRIVER_ENTRY] = 5000ULL * 1000 * 1000;

	registry_path(&img->registry_path, img->registry_path_buf,
		      NP_ARRAY_SIZE(img->registry_path_buf), img->name);
	img->driver_object.Type = 4;
	img->driver_object.Size = sizeof(DRIVER_OBJECT);
	img->driver_object.DriverStart = img->base;
	img->driver_object.DriverSize = (ULONG)img->size;
	*out = img;
	return 0;

err_unload:
	np_pe_unload(img);
err_free:
	free(img);
	return -1;
}

typedef NTSTATUS (NDISAPI *driver_entry_fn)(PDRIVER_OBJECT, PUNICODE_STRING);
typedef NTSTATUS (NDISAPI *dll_initialize_fn)(PUNICODE_STRING);

/*
 * As Windows loads an export driver for the driver that imports it: each
 * helper's DllInitialize with its own registry path, in the order the
 * helpers were given, and DriverEntry only when they all succeeded.
 */
static uint64_t thunk_driver_entry(void *arg)
{
	struct np_image *img = arg;
	driver_entry_fn entry = (driver_entry_fn)(img->base + img->entry_rva);
	unsigned m;

	for (m = 1; m < img->npe; m++) {
		struct np_pe *pe = &img->pe[m];
		dll_initialize_fn init;
		UNICODE_STRING path;
		WCHAR buf[128];
		NTSTATUS status;

		if (!pe->dll_initialize_rva)
			continue;
		init = (dll_initialize_fn)(pe->base + pe->dll_initialize_rva);
		registry_path(&path, buf, NP_ARRAY_SIZE(buf), pe->name);
		status = init(&path);
		if (status) {
			img->failed_helper = (int)m - 1;
			return (uint32_t)status;
		}
	}
	return (uint32_t)entry(&img->driver_object, &img->registry_path);
}

uint32_t np_api_image_driver_entry(struct np_image *img, int32_t *status)
{
	uint64_t rv = 0;
	uint32_t fault;

	if (img->entry_ran)
		return STATUS_INVALID_PARAMETER;
	img->entry_ran = 1;
	fault = np_call(&img->ctx, NP_EP_DRIVER_ENTRY, PASSIVE_LEVEL,
			thunk_driver_entry, img, &rv);
	*status = (int32_t)rv;
	return fault;
}

/* The helper (by index) whose DllInitialize failed, or -1. */
int np_api_image_failed_helper(struct np_image *img)
{
	return img->failed_helper;
}

/* Pages that had to be writable and executable (SectionAlignment < 4 KiB). */
uint32_t np_api_image_wx_pages(struct np_image *img)
{
	uint32_t n = 0;
	unsigned m;

	for (m = 0; m < img->npe; m++)
		n += img->pe[m].wx_pages;
	return n;
}

int np_api_image_registered(struct np_image *img)
{
	return img->registered;
}

uint64_t np_api_image_base(struct np_image *img)
{
	return (uintptr_t)img->base;
}

uint64_t np_api_image_size(struct np_image *img)
{
	return img->size;
}

void np_api_image_fault(struct np_image *img, struct np_api_fault *out)
{
	np_ctx_fault_report(&img->ctx, out);
}

void np_api_image_stack(struct np_image *img, struct np_api_stack *out)
{
	np_ctx_stack_report(&img->ctx, out);
}

/* ---- what DriverEntry registered, for `ndisproxy driver info` --------------- */

#define NP_HANDLER(field) { #field, offsetof(NDIS51_MINIPORT_CHARACTERISTICS, field) }

/* The handler slots of the characteristics, in the DDK's order. */
static const struct {
	const char *name;
	size_t offset;
} handler_slots[] = {
	NP_HANDLER(CheckForHangHandler),
	NP_HANDLER(DisableInterruptHandler),
	NP_HANDLER(EnableInterruptHandler),
	NP_HANDLER(HaltHandler),
	NP_HANDLER(HandleInterruptHandler),
	NP_HANDLER(InitializeHandler),
	NP_HANDLER(ISRHandler),
	NP_HANDLER(QueryInformationHandler),
	NP_HANDLER(ReconfigureHandler),
	NP_HANDLER(ResetHandler),
	NP_HANDLER(SendHandler),
	NP_HANDLER(SetInformationHandler),
	NP_HANDLER(TransferDataHandler),
	NP_HANDLER(ReturnPacketHandler),
	NP_HANDLER(SendPacketsHandler),
	NP_HANDLER(AllocateCompleteHandler),
	NP_HANDLER(CoCreateVcHandler),
	NP_HANDLER(CoDeleteVcHandler),
	NP_HANDLER(CoActivateVcHandler),
	NP_HANDLER(CoDeactivateVcHandler),
	NP_HANDLER(CoSendPacketsHandler),
	NP_HANDLER(CoRequestHandler),
	NP_HANDLER(CancelSendPacketsHandler),
	NP_HANDLER(PnPEventNotifyHandler),
	NP_HANDLER(AdapterShutdownHandler),
};

/* major << 8 | minor of the registered characteristics; 0 if none were. */
unsigned np_api_image_ndis_version(struct np_image *img)
{
	if (!img->registered)
		return 0;
	return (unsigned)img->chars.MajorNdisVersion << 8 | img->chars.MinorNdisVersion;
}

/*
 * Handler slot `slot`: its name, and the address the driver put there (0 if
 * it left it NULL).  -1 past the last slot of the version it registered.
 */
int np_api_image_handler(struct np_image *img, unsigned slot, const char **name,
			 uint64_t *address)
{
	PVOID fn;

	if (!img->registered || slot >= NP_ARRAY_SIZE(handler_slots) ||
	    handler_slots[slot].offset + sizeof(PVOID) > img->chars_len)
		return -1;
	memcpy(&fn, (const char *)&img->chars + handler_slots[slot].offset, sizeof(fn));
	*name = handler_slots[slot].name;
	*address = (uintptr_t)fn;
	return 0;
}

int np_api_import_status(const char *module, const char *fn)
{
	int known;

	if (np_module_lookup(module, fn, &known))
		return 0;
	return known ? 1 : 2;
}

/* Adapters hold a pointer to their image: they must all be gone first. */
void np_api_image_free(struct np_image *img)
{
	if (!img)
		return;
	np_ctx_destroy(&img->ctx);
	np_pe_unload(img);
	free(img);
}

/* ---- DbgPrint lines -------------------------------------------------------- */

/*
 * Appends text, splitting on newlines; a line longer than NP_LOG_LINE is cut.
 * Runs inside DbgPrint, on a driver stack: no allocation, per-image lock.
 */
void np_log_append(struct np_log *l, const char *text, size_t len)
{
	size_t i;

	np_spin_lock(&l->lock);
	for (i = 0; i < len; i++) {
		char *line = l->line[l->next % NP_LOG_LINES];

		if (text[i] == '\n') {
			line[l->partial] = '\0';
			l->next++;
			l->partial = 0;
			continue;
		}
		if (l->partial < NP_LOG_LINE - 1)
			line[l->partial++] = text[i];
		line[l->partial] = '\0';
	}
	np_spin_unlock(&l->lock);
}

/*
 * Complete lines numbered since.. into out, NUL-separated; *next is the
 * number to ask for next time.  Lines that fell out of the ring are skipped.
 */
size_t np_api_image_log(struct np_image *img, uint64_t since, char *out,
			size_t outlen, uint64_t *next)
{
	struct np_log *l = &img->log;
	size_t used = 0;
	uint64_t i;

	/* Outside driver code: a driver aborted in DbgPrint holds it for ever. */
	np_spin_lock_or_presume_dead(&l->lock);
	if (l->next > NP_LOG_LINES && since < l->next - NP_LOG_LINES)
		since = l->next - NP_LOG_LINES;
	for (i = since; i < l->next; i++) {
		const char *line = l->line[i % NP_LOG_LINES];
		size_t n = strlen(line) + 1;

		if (used + n > outlen)
			break;
		memcpy(out + used, line, n);
		used += n;
	}
	*next = i;
	np_spin_unlock(&l->lock);
	return used;
}
