/* SPDX-License-Identifier: MIT */
/*
 * adapter.c - one miniport adapter: its entry points and its queues.
 *
 * Every entry point goes through np_call() on the adapter's private stack.
 * What the driver indicates or completes while it runs (the handlers behind
 * the DDK macros, installed in the miniport block below) is queued, never
 * acted on in place: the host drains the queue after the driver returned
 * (design.md rule 2), so nothing recurses into the driver or into Python.
 *
 * IRQL per entry point is the one NDIS 5.1 guarantees: Initialize, Halt,
 * Reset's caller and OID requests from PASSIVE/DISPATCH as documented, ISR
 * at DIRQL, HandleInterrupt, SendPackets, ReturnPacket, CheckForHang and
 * timers at DISPATCH_LEVEL.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "np.h"
#include "np_winfmt.h"

#define NP_ADAPTER_ARENA	(32UL * 1024 * 1024)
#define NP_ADAPTER_DMA		(64UL * 1024 * 1024)

static const uint64_t default_deadline_ms[NP_EP_COUNT] = {
	[NP_EP_DRIVER_ENTRY] = 5000,
	[NP_EP_INITIALIZE] = 5000,
	[NP_EP_HALT] = 5000,
	[NP_EP_QUERY_INFORMATION] = 1000,
	[NP_EP_SET_INFORMATION] = 1000,
	[NP_EP_SEND_PACKETS] = 250,
	[NP_EP_ISR] = 250,
	[NP_EP_HANDLE_INTERRUPT] = 250,
	[NP_EP_DISABLE_INTERRUPT] = 250,
	[NP_EP_ENABLE_INTERRUPT] = 250,
	[NP_EP_RESET] = 2000,
	[NP_EP_CHECK_FOR_HANG] = 2000,
	[NP_EP_RETURN_PACKET] = 250,
	[NP_EP_TIMER] = 250,
	[NP_EP_SHUTDOWN] = 5000,
};

/* ---- creation and parameters ---------------------------------------------- */

int np_api_adapter_create(struct np_image *img, size_t stack_size,
			  struct np_adapter **out, char *err, size_t errlen)
{
	struct np_adapter *a;
	int i;

	*out = NULL;
	if (img->ctx.faulted) {
		np_set_error(err, errlen, "driver %s faulted: load it again",
			     img->name);
		return -1;
	}
	if (!img->registered) {
		np_set_error(err, errlen,
			     "driver %s registered no miniport in DriverEntry",
			     img->name);
		return -1;
	}
	if (!stack_size)
		stack_size = NP_STACK_DEFAULT;
	if (stack_size < NP_STACK_MIN || stack_size > NP_STACK_MAX) {
		np_set_error(err, errlen, "stack size %zu is outside %u..%u bytes",
			     stack_size, NP_STACK_MIN, NP_STACK_MAX);
		return -1;
	}
	np_trap_ensure();
	a = calloc(1, sizeof(*a));
	if (!a) {
		np_set_error(err, errlen, "out of memory");
		return -1;
	}
	a->magic = NP_ADAPTER_MAGIC;
	a->irq_eventfd = -1;
	if (np_ctx_init(&a->ctx, img, stack_size, NP_ADAPTER_ARENA))
		goto err_free;
	a->ctx.adapter = a;
	if (np_arena_init(&a->dma, NP_ADAPTER_DMA, "dma", 1))
		goto err_ctx;
	a->rx_ring = np_map(NP_RX_RING_BYTES, PROT_READ | PROT_WRITE, "rxring");
	if (!a->rx_ring)
		goto err_dma;
	a->irq_eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->irq_eventfd < 0)
		goto err_ring;
	if (np_tx_init(a))
		goto err_eventfd;
	for (i = 0; i < NP_EP_COUNT; i++)
		a->ctx.deadline_ns[i] = default_deadline_ms[i] * 1000000ULL;
	/* Every call measured until a data path asks for sampling. */
	a->ctx.stack.sample_every = 1;

	np_block_init(a);
	img->adapters++;
	*out = a;
	return 0;

err_eventfd:
	close(a->irq_eventfd);
err_ring:
	np_unmap(a->rx_ring, NP_RX_RING_BYTES);
err_dma:
	np_arena_destroy(&a->dma);
err_ctx:
	np_ctx_destroy(&a->ctx);
err_free:
	free(a);
	np_set_error(err, errlen, "cannot map the adapter's stack and arenas");
	return -1;
}

int np_api_adapter_set_param(struct np_adapter *a, const char *name,
			     const char *value)
{
	struct np_param *p = NULL;
	int i;

	if (strlen(name) >= sizeof(p->name) || strlen(value) >= sizeof(p->value))
		return -E2BIG;
	for (i = 0; i < a->nparams; i++)
		if (!strcasecmp(a->params[i].name, name))
			p = &a->params[i];
	if (!p) {
		if (a->nparams == NP_MAX_PARAMS)
			return -ENOSPC;
		p = &a->params[a->nparams++];
	}
	strcpy(p->name, name);
	strcpy(p->value, value);
	return 0;
}

const struct np_param *np_adapter_param(struct np_adapter *a,
					const char *name)
{
	int i;

	for (i = 0; i < a->nparams; i++)
		if (!strcasecmp(a->params[i].name, name))
			return &a->params[i];
	return NULL;
}

void np_api_adapter_set_deadline(struct np_adapter *a, uint32_t entry,
				 uint64_t ns)
{
	if (entry < NP_EP_COUNT)
		a->ctx.deadline_ns[entry] = ns;
	if (ns)
		np_watchdog_arm();
}

void np_api_adapter_set_sampling(struct np_adapter *a, uint32_t every)
{
	a->ctx.stack.sample_every = every ? every : 1;
	memset(a->ctx.stack.sample_countdown, 0,
	       sizeof(a->ctx.stack.sample_countdown));
}

void np_api_adapter_set_fatal(struct np_adapter *a, uint32_t kind, int fatal)
{
	if (kind < NP_VIOL_COUNT)
		a->fatal_mask[kind] = !!fatal;
}

/* ---- entry points ------------------------------------------------------------ */

struct init_args {
	struct np_adapter *a;
	NDIS_STATUS open_error;
	UINT selected;
	NDIS_MEDIUM media[1];
};

static uint64_t thunk_initialize(void *p)
{
	struct init_args *x = p;
	struct np_adapter *a = x->a;

	return (uint32_t)a->ctx.image->chars.InitializeHandler(&x->open_error,
			&x->selected, x->media, 1, &a->block, a);
}

static uint32_t oid_request(struct np_adapter *a, np_thunk_fn thunk,
			    enum np_entry ep, uint32_t oid, void *buf,
			    uint32_t len, int32_t *status, uint32_t *done,
			    uint32_t *needed);
static uint64_t thunk_query(void *p);

/* What the host must respect when sending: the driver's frame and batch limits. */
static uint32_t learn_limits(struct np_adapter *a)
{
	uint32_t value, done, needed, fault;
	int32_t status;

	a->max_frame = 1514 + 4;
	a->max_send = 1;
	fault = oid_request(a, thunk_query, NP_EP_QUERY_INFORMATION,
			    OID_GEN_MAXIMUM_FRAME_SIZE, &value, 4, &status,
			    &done, &needed);
	if (fault)
		return fault;
	if (status == NDIS_STATUS_SUCCESS && done == 4 && value >= 46 &&
	    value + 18 <= NP_TX_FRAME_MAX)
		a->max_frame = value + 14 + 4;	/* header and an 802.1Q tag */
	fault = oid_request(a, thunk_query, NP_EP_QUERY_INFORMATION,
			    OID_GEN_MAXIMUM_SEND_PACKETS, &value, 4, &status,
			    &done, &needed);
	if (!fault && status == NDIS_STATUS_SUCCESS && done == 4 && value)
		a->max_send = value < NP_TX_SLOTS ? value : NP_TX_SLOTS;
	return fault;
}

uint32_t np_api_adapter_max_frame(struct np_adapter *a)
{
	return a->max_frame;
}

void np_api_adapter_stats(struct np_adapter *a, struct np_api_stats *out)
{
	*out = a->stats;
	out->tx_outstanding = np_tx_outstanding(a);
}

uint32_t np_api_adapter_initialize(struct np_adapter *a, int32_t *status)
{
	struct init_args x = { .a = a, .media = { NdisMedium802_3 } };
	uint64_t rv = 0;
	uint32_t fault;

	if (a->initialised || !a->ctx.image->chars.InitializeHandler)
		return STATUS_INVALID_PARAMETER;
	fault = np_call(&a->ctx, NP_EP_INITIALIZE, PASSIVE_LEVEL,
			thunk_initialize, &x, &rv);
	*status = (int32_t)rv;
	if (!fault && (NDIS_STATUS)rv == NDIS_STATUS_SUCCESS) {
		if (x.selected != 0) {
			*status = NDIS_STATUS_UNSUPPORTED_MEDIA;
			return 0;
		}
		a->initialised = 1;
		a->block.MiniportAdapterContext = a->adapter_context;
		fault = learn_limits(a);
	}
	return fault;
}

static uint64_t thunk_halt(void *p)
{
	struct np_adapter *a = p;

	a->ctx.image->chars.HaltHandler(a->adapter_context);
	return 0;
}

uint32_t np_api_adapter_halt(struct np_adapter *a)
{
	uint32_t fault;

	if (!a->initialised)
		return STATUS_INVALID_PARAMETER;
	/* Nothing else may run the driver from here on. */
	np_pump_thread_end(a);
	/* NDIS returns every indicated packet before MiniportHalt. */
	fault = np_api_adapter_return_packets(a);
	if (fault)
		return fault;
	a->in_halt = 1;
	fault = np_call(&a->ctx, NP_EP_HALT, PASSIVE_LEVEL, thunk_halt, a, NULL);
	a->in_halt = 0;
	a->initialised = 0;
	a->oid_pending = 0;
	a->nwork = 0;
	memset(a->timers, 0, sizeof(a->timers));
	np_tx_reclaim(a);
	if (!fault)
		np_verify_leaks(a);
	a->map_registers = 0;
	return fault;
}

struct oid_args {
	struct np_adapter *a;
	uint32_t oid;
	void *buf;
	uint32_t len;
};

static uint64_t thunk_query(void *p)
{
	struct oid_args *x = p;
	struct np_adapter *a = x->a;

	return (uint32_t)a->ctx.image->chars.QueryInformationHandler(
		a->adapter_context, x->oid, x->buf, x->len,
		&a->oid_written, &a->oid_needed);
}

static uint64_t thunk_set(void *p)
{
	struct oid_args *x = p;
	struct np_adapter *a = x->a;

	return (uint32_t)a->ctx.image->chars.SetInformationHandler(
		a->adapter_context, x->oid, x->buf, x->len,
		&a->oid_written, &a->oid_needed);
}

/*
 * One OID request.  A driver that pends keeps the pointers it was given
 * until NdisM{Query,Set}InformationComplete, so buffer and counters live in
 * the adapter, not in this frame; at most one request is outstanding.
 */
static uint32_t oid_request(struct np_adapter *a, np_thunk_fn thunk,
			    enum np_entry ep, uint32_t oid, void *buf,
			    uint32_t len, int32_t *status, uint32_t *done,
			    uint32_t *needed)
{
	struct oid_args x = { .a = a, .oid = oid, .buf = a->oid_buf,
			      .len = len < sizeof(a->oid_buf) ? len : sizeof(a->oid_buf) };
	uint64_t rv = 0;
	uint32_t fault;

	if (!a->initialised)
		return STATUS_INVALID_PARAMETER;
	if (a->oid_pending) {
		*status = NDIS_STATUS_RESOURCES;
		return 0;
	}
	memcpy(a->oid_buf, buf, x.len);
	a->oid_written = a->oid_needed = 0;
	a->oid_written_ptr = &a->oid_written;
	a->oid_needed_ptr = &a->oid_needed;
	a->oid_pending = 1;
	fault = np_call(&a->ctx, ep, DISPATCH_LEVEL, thunk, &x, &rv);
	if (fault) {
		a->oid_pending = 0;
		return fault;
	}
	*status = (int32_t)rv;
	*done = a->oid_written;
	*needed = a->oid_needed;
	if (ep == NP_EP_QUERY_INFORMATION)
		memcpy(buf, a->oid_buf, a->oid_written < x.len ? a->oid_written : x.len);
	if ((NDIS_STATUS)rv != NDIS_STATUS_PENDING)
		a->oid_pending = 0;
	return 0;
}

/* The data of the last (possibly pended) query, once it completed. */
size_t np_api_adapter_oid_data(struct np_adapter *a, uint8_t *out, size_t max)
{
	size_t n = a->oid_written < sizeof(a->oid_buf) ? a->oid_written : sizeof(a->oid_buf);

	if (a->oid_pending)
		return 0;
	if (n > max)
		n = max;
	memcpy(out, a->oid_buf, n);
	return n;
}

uint32_t np_api_adapter_query(struct np_adapter *a, uint32_t oid,
			      uint8_t *buf, uint32_t len, int32_t *status,
			      uint32_t *written, uint32_t *needed)
{
	return oid_request(a, thunk_query, NP_EP_QUERY_INFORMATION, oid, buf,
			   len, status, written, needed);
}

uint32_t np_api_adapter_set(struct np_adapter *a, uint32_t oid,
			    const uint8_t *buf, uint32_t len, int32_t *status,
			    uint32_t *read, uint32_t *needed)
{
	return oid_request(a, thunk_set, NP_EP_SET_INFORMATION, oid,
			   (void *)buf, len, status, read, needed);
}

struct reset_args {
	struct np_adapter *a;
	BOOLEAN addressing_reset;
};

static uint64_t thunk_reset(void *p)
{
	struct reset_args *x = p;

	return (uint32_t)x->a->ctx.image->chars.ResetHandler(
		&x->addressing_reset, x->a->adapter_context);
}

uint32_t np_api_adapter_reset(struct np_adapter *a, int32_t *status,
			      int *addressing_reset)
{
	struct reset_args x = { .a = a };
	uint64_t rv = 0;
	uint32_t fault;

	if (!a->initialised || !a->ctx.image->chars.ResetHandler)
		return STATUS_INVALID_PARAMETER;
	fault = np_call(&a->ctx, NP_EP_RESET, DISPATCH_LEVEL, thunk_reset, &x,
			&rv);
	*status = (int32_t)rv;
	*addressing_reset = x.addressing_reset;
	return fault;
}

static uint64_t thunk_check_for_hang(void *p)
{
	struct np_adapter *a = p;

	return a->ctx.image->chars.CheckForHangHandler(a->adapter_context);
}

uint32_t np_api_adapter_check_for_hang(struct np_adapter *a, int *hung)
{
	uint64_t rv = 0;
	uint32_t fault;

	*hung = 0;
	if (!a->initialised || !a->ctx.image->chars.CheckForHangHandler)
		return 0;
	fault = np_call(&a->ctx, NP_EP_CHECK_FOR_HANG, DISPATCH_LEVEL,
			thunk_check_for_hang, a, &rv);
	*hung = (BOOLEAN)rv;
	return fault;
}

uint32_t np_api_adapter_hang_check_secs(struct np_adapter *a)
{
	if (!a->ctx.image->chars.CheckForHangHandler)
		return 0;
	return a->check_for_hang_secs ? a->check_for_hang_secs : 2;
}

/* ---- interrupts ------------------------------------------------------------------ */

struct isr_args {
	struct np_adapter *a;
	BOOLEAN recognized, queue_dpc;
};

static uint64_t thunk_isr(void *p)
{
	struct isr_args *x = p;
	struct np_adapter *a = x->a;

	a->ctx.image->chars.ISRHandler(&x->recognized, &x->queue_dpc,
				       a->adapter_context);
	return 0;
}

static uint64_t thunk_handler(void *p)
{
	struct np_adapter *a = p;

	a->ctx.image->chars.HandleInterruptHandler(a->adapter_context);
	return 0;
}

static uint64_t thunk_disable(void *p)
{
	struct np_adapter *a = p;

	if (a->ctx.image->chars.DisableInterruptHandler)
		a->ctx.image->chars.DisableInterruptHandler(a->adapter_context);
	return 0;
}

static uint64_t thunk_enable(void *p)
{
	struct np_adapter *a = p;

	if (a->ctx.image->chars.EnableInterruptHandler)
		a->ctx.image->chars.EnableInterruptHandler(a->adapter_context);
	return 0;
}

/*
 * The line is level-triggered and the eventfd is not: keep servicing while
 * the line stays up (bounded, so a stuck line cannot starve the host).
 */
uint32_t np_api_adapter_service_interrupt(struct np_adapter *a,
					  uint32_t *serviced)
{
	uint64_t drain;

	while (read(a->irq_eventfd, &drain, sizeof(drain)) == sizeof(drain))
		;
	return np_adapter_service_line(a, serviced);
}

uint32_t np_adapter_service_line(struct np_adapter *a, uint32_t *serviced)
{
	uint32_t fault = 0;
	int rounds = 0;

	*serviced = 0;
	if (!a->interrupt || !a->initialised)
		return 0;
	while (a->irq_line && rounds++ < 16) {
		int dpc = 1;

		a->stats.interrupts++;
		if (a->request_isr) {
			struct isr_args x = { .a = a };

			fault = np_call(&a->ctx, NP_EP_ISR, NP_DIRQL, thunk_isr,
					&x, NULL);
			if (fault)
				return fault;
			dpc = x.queue_dpc;
			if (!x.recognized && !dpc)
				break;
		} else {
			fault = np_call(&a->ctx, NP_EP_DISABLE_INTERRUPT,
					NP_DIRQL, thunk_disable, a, NULL);
			if (fault)
				return fault;
		}
		if (dpc) {
			fault = np_call(&a->ctx, NP_EP_HANDLE_INTERRUPT,
					DISPATCH_LEVEL, thunk_handler, a, NULL);
			if (fault)
				return fault;
			a->stats.dpcs++;
		}
		if (!a->request_isr) {
			fault = np_call(&a->ctx, NP_EP_ENABLE_INTERRUPT,
					NP_DIRQL, thunk_enable, a, NULL);
			if (fault)
				return fault;
		}
		(*serviced)++;
	}
	return 0;
}

/*
 * The device's line changed; a rising edge wakes the host's eventfd, unless
 * this thread is pumping the adapter: the pump looks at the line itself
 * after every pass, so the edge costs no system call.
 */
void np_adapter_irq(struct np_adapter *a, int level)
{
	uint64_t one = 1;
	int rising = level && !a->irq_line;

	a->irq_line = !!level;
	if (rising && a->interrupt && np_pumping != a &&
	    write(a->irq_eventfd, &one, sizeof(one)) < 0)
		a->ev_dropped++;
}

void np_api_adapter_set_irq_line(struct np_adapter *a, int level)
{
	np_adapter_irq(a, level);
}

int np_api_adapter_irq_line(struct np_adapter *a)
{
	return a->irq_line;
}

int np_api_adapter_eventfd(struct np_adapter *a)
{
	return a->irq_eventfd;
}

int np_api_adapter_interrupt_registered(struct np_adapter *a)
{
	return a->interrupt != NULL;
}

/* ---- timers ------------------------------------------------------------------------ */

static uint64_t thunk_timer(void *p)
{
	struct np_timer *t = p;

	t->fn(NULL, t->ctx, NULL, NULL);
	return 0;
}

static uint64_t thunk_work(void *p)
{
	PNDIS_WORK_ITEM w = p;

	w->Routine(w, w->Context);
	return 0;
}

uint64_t np_api_adapter_next_timer(struct np_adapter *a)
{
	uint64_t next = 0, due;
	int i;

	if (a->nwork)
		return np_now_ns();
	for (i = 0; i < NP_MAX_TIMERS; i++) {
		due = a->timers[i].due_ns;
		if (due && (!next || due < next))
			next = due;
	}
	if (a->device && a->device->next_due) {
		due = a->device->next_due(a->device);
		if (due && (!next || due < next))
			next = due;
	}
	return next;
}

uint32_t np_api_adapter_run_timers(struct np_adapter *a, uint64_t now_ns,
				   uint32_t *ran)
{
	uint64_t due[NP_MAX_TIMERS];
	int order[NP_MAX_TIMERS];
	uint32_t fault, n;
	int i, j, ndue = 0;

	*ran = 0;
	if (!a->initialised)
		return 0;
	if (a->device && a->device->poll)
		a->device->poll(a->device, now_ns);
	/* The timers due by now_ns, earliest first (slot order breaks ties). */
	for (i = 0; i < NP_MAX_TIMERS; i++) {
		struct np_timer *t = &a->timers[i];

		if (!t->due_ns || t->due_ns > now_ns || !t->fn)
			continue;
		due[i] = t->due_ns;
		for (j = ndue++; j > 0 && due[order[j - 1]] > due[i]; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	for (j = 0; j < ndue; j++) {
		struct np_timer *t = &a->timers[order[j]];

		/* An earlier timer's function cancelled or re-set this one. */
		if (t->due_ns != due[order[j]])
			continue;
		/* Re-arm before the call: the function may cancel or reset. */
		t->due_ns = t->period_ms ?
			now_ns + t->period_ms * 1000000ULL : 0;
		fault = np_call(&a->ctx, NP_EP_TIMER, DISPATCH_LEVEL,
				thunk_timer, t, NULL);
		if (fault)
			return fault;
		(*ran)++;
	}
	/*
	 * Work items, oldest first.  Only those queued by now run: one an item
	 * schedules waits for the next call (next_timer answers "now"), so an
	 * item that keeps re-scheduling itself cannot hold this call for ever.
	 */
	for (n = a->nwork; n; n--) {
		PNDIS_WORK_ITEM w = a->work[0];

		a->nwork--;
		memmove(a->work, a->work + 1, a->nwork * sizeof(a->work[0]));
		fault = np_call(&a->ctx, NP_EP_TIMER, PASSIVE_LEVEL,
				thunk_work, w, NULL);
		if (fault)
			return fault;
		(*ran)++;
	}
	return 0;
}

/* ---- draining what the driver queued ------------------------------------------- */

/* Copy a received frame out of the rx ring (it may wrap) and free its space. */
static void take_frame(struct np_adapter *a, const struct np_api_event *ev,
		       uint8_t *out)
{
	uint32_t at = ev->offset % NP_RX_RING_BYTES;
	uint32_t first = NP_RX_RING_BYTES - at;

	if (first > ev->len)
		first = ev->len;
	memcpy(out, a->rx_ring + at, first);
	memcpy(out + first, a->rx_ring, ev->len - first);
	a->rx_head = ev->offset + ev->len;
}

size_t np_api_adapter_events(struct np_adapter *a, struct np_api_event *out,
			     size_t max, uint8_t *rx, size_t rxlen)
{
	size_t n = 0, rxused = 0;

	while (n < max && a->ev_head != a->ev_tail) {
		struct np_api_event *ev = &a->events[a->ev_head % NP_EVENT_QUEUE];

		if (ev->type == NP_EV_RECEIVE) {
			if (rxused + ev->len > rxlen)
				break;
			take_frame(a, ev, rx + rxused);
			out[n] = *ev;
			out[n].offset = (uint32_t)rxused;
			rxused += ev->len;
		} else {
			out[n] = *ev;
		}
		n++;
		a->ev_head++;
	}
	return n;
}

/*
 * The data path's drain: received frames only, packed into rx with their
 * lengths, stopping at the first event that is not a receive (so order with
 * status indications is kept; events() takes those).
 */
size_t np_api_adapter_receive(struct np_adapter *a, uint8_t *rx, size_t rxlen,
			      uint32_t *lens, size_t max)
{
	size_t n = 0, used = 0;

	while (n < max && a->ev_head != a->ev_tail) {
		struct np_api_event *ev = &a->events[a->ev_head % NP_EVENT_QUEUE];

		if (ev->type != NP_EV_RECEIVE || used + ev->len > rxlen)
			break;
		take_frame(a, ev, rx + used);
		lens[n++] = ev->len;
		used += ev->len;
		a->ev_head++;
	}
	return n;
}

/*
 * The control events at the head of the queue, for a host whose pump writes
 * received frames to a TAP itself: stops at the first received frame.
 */
size_t np_api_adapter_control_events(struct np_adapter *a,
				     struct np_api_event *out, size_t max)
{
	size_t n = 0;

	while (n < max && a->ev_head != a->ev_tail) {
		struct np_api_event *ev = &a->events[a->ev_head % NP_EVENT_QUEUE];

		if (ev->type == NP_EV_RECEIVE)
			break;
		out[n++] = *ev;
		a->ev_head++;
	}
	return n;
}

struct return_args {
	struct np_adapter *a;
	uint32_t count;
};

static uint64_t thunk_return(void *p)
{
	struct return_args *x = p;
	struct np_adapter *a = x->a;
	uint32_t i;

	for (i = 0; i < x->count; i++)
		a->ctx.image->chars.ReturnPacketHandler(a->adapter_context,
							a->to_return[i]);
	return 0;
}

/* Hand every indicated packet back in one crossing. */
uint32_t np_api_adapter_return_packets(struct np_adapter *a)
{
	struct return_args x = { .a = a, .count = a->nreturn };
	uint32_t fault;

	if (!x.count || !a->initialised ||
	    !a->ctx.image->chars.ReturnPacketHandler) {
		a->nreturn = 0;
		return 0;
	}
	a->nreturn = 0;
	a->stats.rx_returned += x.count;
	fault = np_call(&a->ctx, NP_EP_RETURN_PACKET, DISPATCH_LEVEL,
			thunk_return, &x, NULL);
	return fault;
}

/* ---- reports and teardown ---------------------------------------------------------- */

void np_api_adapter_fault(struct np_adapter *a, struct np_api_fault *out)
{
	np_ctx_fault_report(&a->ctx, out);
}

void np_api_adapter_stack(struct np_adapter *a, struct np_api_stack *out)
{
	np_ctx_stack_report(&a->ctx, out);
}

size_t np_api_adapter_allocations(struct np_adapter *a,
				  struct np_api_alloc *out, size_t max)
{
	size_t n = np_arena_report(&a->ctx.arena, out, max);

	/* Shared (DMA) memory counts too: a leak there is a leak. */
	return n + np_arena_report(&a->dma, n < max ? out + n : out,
				   n < max ? max - n : 0);
}

size_t np_api_adapter_violations(struct np_adapter *a,
				 struct np_api_violation *out, size_t max,
				 uint64_t *total)
{
	size_t n = a->nviolations, i, keep = NP_ARRAY_SIZE(a->violations);
	size_t first = n > keep ? n - keep : 0, k = 0;

	*total = n;
	for (i = first; i < n && k < max; i++)
		out[k++] = a->violations[i % keep];
	return k;
}

void np_api_adapter_free(struct np_adapter *a)
{
	if (!a)
		return;
	np_pump_thread_end(a);
	a->ctx.image->adapters--;
	a->magic = 0;
	if (a->irq_eventfd >= 0)
		close(a->irq_eventfd);
	if (a->device)
		np_mocknic_free(a->device);
	np_tx_destroy(a);
	np_pump_destroy(a);
	np_api_adapter_capture(a, 0);
	np_unmap(a->rx_ring, NP_RX_RING_BYTES);
	np_arena_destroy(&a->dma);
	np_ctx_destroy(&a->ctx);
	free(a);
}
