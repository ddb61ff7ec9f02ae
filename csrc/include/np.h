/* SPDX-License-Identifier: MIT */
/*
 * np.h - the ndisproxy driver-host runtime's internal interface.
 *
 * Every internal symbol carries the np_ prefix.  The Windows-facing exports
 * keep their Windows names (NdisMRegisterMiniport, ...) and are hidden from
 * the shared object's dynamic symbol table; only the np_api_* functions in
 * np_api.h are seen by Python.
 */
#ifndef NP_H
#define NP_H

#include <stdatomic.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "ndis.h"
#include "np_api.h"

#define NP_PAGE_SIZE		4096UL
#define NP_ALIGN_UP(x, a)	(((x) + (a) - 1) & ~((uintptr_t)(a) - 1))
#define NP_ALIGN_DOWN(x, a)	((x) & ~((uintptr_t)(a) - 1))
#define NP_ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define np_container_of(ptr, type, member)				\
	((type *)((char *)(ptr) - offsetof(type, member)))

/*
 * Per-object spin locks for code a driver can be aborted in (a process-wide
 * mutex there could deadlock the host later).  Held for a few instructions.
 */
static inline void np_spin_lock(atomic_flag *l)
{
	while (atomic_flag_test_and_set_explicit(l, memory_order_acquire))
		__builtin_ia32_pause();
}

/*
 * For readers outside driver code: a driver aborted while holding the lock
 * never releases it, so after a bounded wait the holder is presumed dead.
 */
static inline void np_spin_lock_or_presume_dead(atomic_flag *l)
{
	long spins = 50 * 1000 * 1000;

	while (atomic_flag_test_and_set_explicit(l, memory_order_acquire))
		if (--spins == 0)
			return;
}

static inline void np_spin_unlock(atomic_flag *l)
{
	atomic_flag_clear_explicit(l, memory_order_release);
}

/* The interrupt's IRQL (DIRQL) as our IRQL tracking reports it. */
#define NP_DIRQL 12

/* ---- mapping registry (maps.c) ------------------------------------------- */

/*
 * Every mapping the runtime makes goes through np_map/np_unmap so that tests
 * can prove nothing leaks.  Callers: setup and teardown paths only, never an
 * export a driver can be aborted inside (the registry takes a mutex).
 */
void *np_map(size_t len, int prot, const char *kind);
void *np_map_at(uintptr_t addr, size_t len, int prot, const char *kind);
void np_unmap(void *addr, size_t len);

/* ---- private stacks (stack.c) ------------------------------------------- */

struct np_stack {
	void *map;			/* whole reservation, guards included */
	size_t map_len;
	uintptr_t guard_lo;		/* lowest byte of the guard below */
	uintptr_t base;			/* lowest usable byte */
	uintptr_t top;			/* one past the highest usable byte */
	/* [painted_lo, top) was painted; below it, pages never written. */
	uintptr_t painted_lo;
	/* Bytes of [painted_lo, top) that may differ from the paint pattern. */
	uintptr_t dirty_lo;
	size_t hw_lifetime;
	size_t hw_entry[NP_EP_COUNT];
	uint64_t calls[NP_EP_COUNT];
	uint32_t sample_every;		/* measure one call in this many */
	/* Per entry point, so the first call of each is always measured. */
	uint32_t sample_countdown[NP_EP_COUNT];
};

int np_stack_init(struct np_stack *s, size_t size);
void np_stack_destroy(struct np_stack *s);
size_t np_stack_scan(struct np_stack *s);
void np_stack_repaint(struct np_stack *s);

/* ---- the trampoline and the trap (trampoline.c, trap.c) ------------------ */

struct np_fault {
	uint32_t code;			/* NTSTATUS; 0 while no fault */
	int signo;
	uintptr_t addr;			/* si_addr, or a bugcheck parameter */
	uintptr_t pc;
	uintptr_t sp;
	uint32_t entry;			/* enum np_entry */
	uint8_t irql;
	uint64_t bugcheck[5];
};

/*
 * Per-thread state of a thread that enters drivers.  The trap handler reads
 * it through an initial-exec TLS pointer, so it must never need allocation
 * once np_thread_get() has returned for this thread.
 */
struct np_thread {
	uintptr_t saved_rsp;		/* trampoline.c reads this at offset 0 */
	_Atomic int in_driver;
	struct np_stack *stack;		/* the private stack in use */
	uint32_t entry;
	uint8_t irql;
	struct np_ctx *ctx;		/* whose call this is */
	struct np_fault fault;
	_Atomic uint64_t call_seq;
	_Atomic uint64_t abort_seq;	/* watchdog: abort this call */
	_Atomic uint64_t budget_ns;	/* this call's deadline; 0: none */
	uint64_t wd_seq, wd_since;	/* the watchdog's own view */
	void *altstack;
	size_t altstack_len;
	unsigned long tid;		/* pthread_t */
	int slot;
	void *kpcr;			/* kpcr.c: what gs: points at */
};

typedef uint64_t (*np_thunk_fn)(void *arg);

uint64_t np_call_on_stack(struct np_thread *t, uintptr_t top, np_thunk_fn fn,
			  void *arg);
extern const char np_call_abort[];
__attribute__((noreturn)) void np_abort_to(struct np_thread *t, uint64_t code);

struct np_thread *np_thread_setup(void);
int np_kpcr_attach(struct np_thread *t);
void np_kpcr_detach(struct np_thread *t);

/* Initial-exec TLS: the trap handler reads it without ever allocating. */
extern __thread struct np_thread *np_tls
	__attribute__((tls_model("initial-exec")));

/* The calling thread's state, or NULL if it never entered a driver. */
static inline struct np_thread *np_thread_current(void)
{
	return np_tls;
}

/* The calling thread's state, set up on its first driver call. */
static inline struct np_thread *np_thread_get(void)
{
	struct np_thread *t = np_tls;

	return __builtin_expect(t != NULL, 1) ? t : np_thread_setup();
}
int np_trap_ensure(void);
void np_watchdog_arm(void);

/* ---- inlined kernel instructions (emulate.c) ------------------------------ */

struct np_image;
struct ucontext_t;

void np_kuser_init(void);
/*
 * In the trap handler: carry out a CR8 move or KUSER_SHARED_DATA load at the
 * faulting RIP and return 1, or return 0 and leave the fault standing (a
 * __fastfail turns *code into a bug check).
 */
int np_emulate(struct np_thread *t, struct ucontext_t *uc, int sig,
	       const siginfo_t *si, uint32_t *code);
size_t np_insn_fetch(const struct np_image *img, uintptr_t pc, uint8_t *out);
size_t np_insn_describe(const uint8_t *bytes, size_t n, uint64_t fault_addr,
			char *out, size_t outlen);

/* ---- per-context allocation (arena.c) ------------------------------------ */

/*
 * An arena is a private reservation with a segregated-fit allocator.  Exports
 * allocate only from the arena of the context they run for, so an aborted
 * call leaves nothing behind that dropping the context does not free.  The
 * lock is per arena (several adapters of one image may run on different
 * threads); an abort inside it abandons the arena together with its owner.
 */
struct np_alloc;

struct np_arena {
	uintptr_t base, brk, end;
	struct np_alloc *free[40];
	struct np_alloc *live;		/* doubly linked, for reports at halt */
	size_t live_count, live_bytes;
	atomic_flag lock;
	uint32_t dma;			/* 1: hands out bus addresses */
};

int np_arena_init(struct np_arena *a, size_t reserve, const char *kind,
		  int dma);
void np_arena_destroy(struct np_arena *a);
void *np_arena_alloc(struct np_arena *a, size_t len, uint32_t tag);
void *np_arena_zalloc(struct np_arena *a, size_t len, uint32_t tag);
size_t np_arena_len(struct np_arena *a, const void *va);
/* Returns 0, or -1 when va is not a live allocation of this arena. */
int np_arena_free(struct np_arena *a, void *va, uint32_t *tag);
int np_arena_owns(struct np_arena *a, const void *va, size_t len);
size_t np_arena_report(struct np_arena *a, struct np_api_alloc *out,
		       size_t max);

#define NP_DMA_BASE 0x80000000ULL

/* ---- contexts: an image or an adapter (np_call in call.c) ---------------- */

struct np_image;
struct np_adapter;

/* What a call into a driver runs for: it owns a stack, an arena, a log. */
struct np_ctx {
	struct np_image *image;
	struct np_adapter *adapter;	/* NULL for DriverEntry/unload */
	struct np_stack stack;
	struct np_arena arena;
	struct np_fault fault;		/* the last fault, kept for reports */
	uint64_t deadline_ns[NP_EP_COUNT];
	int faulted;
	/*
	 * The thread in a call for this context, or NULL.  The callers
	 * serialise (one thread, or the pump thread's lock); this only trips
	 * if they did not.
	 */
	struct np_thread *_Atomic caller;
};

int np_ctx_init(struct np_ctx *c, struct np_image *img, size_t stack_size,
		size_t arena_size);
void np_ctx_destroy(struct np_ctx *c);

void np_ctx_fault_report(struct np_ctx *c, struct np_api_fault *out);
void np_ctx_stack_report(struct np_ctx *c, struct np_api_stack *out);

/* The context the calling export runs for; NULL outside driver code. */
static inline struct np_ctx *np_current_ctx(void)
{
	struct np_thread *t = np_thread_current();

	return t ? t->ctx : NULL;
}

/* ---- DbgPrint log ring (image.c) -------------------------------------------- */

#define NP_LOG_LINES	64
#define NP_LOG_LINE	256

struct np_log {
	char line[NP_LOG_LINES][NP_LOG_LINE];
	uint64_t next;			/* lines ever written */
	size_t partial;			/* chars in line[next % N] so far */
	atomic_flag lock;
};

void np_log_append(struct np_log *l, const char *text, size_t len);

/* ---- verifier (verifier.c) ------------------------------------------------ */

/* fmt follows Windows rules (np_winfmt): %u is 32 bits, %I64x 64. */
__attribute__((ms_abi)) void np_verify(struct np_ctx *c, enum np_violation v,
				       const char *fmt, ...);
int np_verify_irql(enum np_violation v, uint8_t max, const char *fn);

/* ---- PE images (pe.c) ----------------------------------------------------- */

struct np_export {
	const char *name;
	void *fn;
};

struct np_module {
	const char *name;
	const struct np_export *exports;
	size_t count;
};

extern const struct np_module np_ndis_module;
extern const struct np_module np_ntoskrnl_module;
extern const struct np_module np_hal_module;

#define NP_EXPORT(fn)		{ #fn, (void *)(fn) }
#define NP_EXPORT_AS(name, fn)	{ name, (void *)(fn) }

#define NP_MAX_ADAPTERS_PER_IMAGE 64
#define NP_MAX_HELPERS		8	/* helper DLLs one driver may import */
#define NP_PE_MAX_SECTIONS	96

/* One mapped PE: the driver itself, or a helper DLL it imports. */
struct np_pe {
	char name[64];
	uint8_t *base;
	size_t size;			/* mapped: SizeOfImage, page-rounded */
	uint32_t entry_rva;
	uint32_t export_rva, export_size;
	uint32_t dll_initialize_rva;	/* a helper's DllInitialize, or 0 */
	uint32_t wx_pages;		/* pages two sections made W+X */
	/* Executable RVA ranges: where emulated instructions may come from. */
	uint32_t nexec;
	struct { uint32_t lo, hi; } exec[NP_PE_MAX_SECTIONS];
};

struct np_image {
	char name[64];
	uint8_t *base;			/* pe[0]'s, the driver's */
	size_t size;
	uintptr_t entry_rva;
	/* pe[0] is the driver; helper DLLs follow.  Fixed after loading. */
	struct np_pe pe[1 + NP_MAX_HELPERS];
	unsigned npe;
	int failed_helper;		/* DllInitialize that failed, or -1 */
	struct np_ctx ctx;		/* DriverEntry and driver-wide pools */
	struct np_log log;
	DRIVER_OBJECT driver_object;
	UNICODE_STRING registry_path;
	WCHAR registry_path_buf[128];
	NDIS51_MINIPORT_CHARACTERISTICS chars;
	uint32_t chars_len;
	int wrapper_initialised;
	int registered;
	int entry_ran;
	int adapters;
};

int np_pe_load(struct np_image *img, const uint8_t *data, size_t len,
	       const struct np_api_helper *helpers, size_t nhelpers,
	       char *err, size_t errlen);
void np_pe_unload(struct np_image *img);
const void *np_module_lookup(const char *module, const char *fn,
			     int *module_known);

/* ---- entering driver code (call.c) ------------------------------------------ */

uint32_t np_call_measured(struct np_ctx *c, enum np_entry ep, uint8_t irql,
			  np_thunk_fn fn, void *arg, uint64_t *ret);
uint32_t np_call_faulted(struct np_ctx *c, struct np_thread *t,
			 enum np_entry ep);

/*
 * Enter driver code: run fn(arg) on c's private stack.  Returns 0, or the
 * NTSTATUS of a fault (the context and its image are then abandoned), or
 * NP_REFUSED_FAULTED for a context that faulted before.
 *
 * Invariants: a thread is in at most one driver call (exports that call back
 * into the driver, like NdisMSynchronizeWithInterrupt, do so directly on the
 * stack already in use); a context is in at most one call, as NDIS
 * serialises a miniport; no Python runs while t->in_driver is set.
 *
 * Only this thread and its own signal handler read most of np_thread, so
 * plain stores and signal fences suffice; the watchdog thread reads
 * in_driver, call_seq and budget_ns and tolerates a view one tick old.
 */
static inline uint32_t np_call_enter(struct np_ctx *c, enum np_entry ep,
				     uint8_t irql, np_thunk_fn fn, void *arg,
				     uint64_t *ret)
{
	struct np_thread *t = np_thread_get();
	struct np_stack *s = &c->stack;
	uint64_t rv;

	if (__builtin_expect(!t, 0))
		return STATUS_INSUFFICIENT_RESOURCES;
	if (__builtin_expect(c->faulted || c->image->ctx.faulted, 0))
		return NP_REFUSED_FAULTED;
	if (__builtin_expect(atomic_load_explicit(&t->in_driver,
						  memory_order_relaxed), 0))
		return STATUS_INVALID_PARAMETER;	/* our bug: no nesting */
	if (__builtin_expect(atomic_load_explicit(&c->caller,
						  memory_order_relaxed) != NULL, 0))
		return NP_REFUSED_CONCURRENT;		/* our bug: not serialised */
	atomic_store_explicit(&c->caller, t, memory_order_relaxed);

	t->stack = s;
	t->entry = ep;
	t->irql = irql;
	t->ctx = c;
	t->fault.code = 0;
	atomic_store_explicit(&t->call_seq,
		atomic_load_explicit(&t->call_seq, memory_order_relaxed) + 1,
		memory_order_relaxed);
	atomic_store_explicit(&t->budget_ns, c->deadline_ns[ep],
			      memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&t->in_driver, 1, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);

	rv = np_call_on_stack(t, s->top, fn, arg);

	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&t->in_driver, 0, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&c->caller, NULL, memory_order_relaxed);
	s->calls[ep]++;
	if (__builtin_expect(t->fault.code != 0, 0))
		return np_call_faulted(c, t, ep);
	if (ret)
		*ret = rv;
	return 0;
}

/* np_call_enter, measuring stack use on one call in stack.sample_every. */
static inline uint32_t np_call(struct np_ctx *c, enum np_entry ep,
			       uint8_t irql, np_thunk_fn fn, void *arg,
			       uint64_t *ret)
{
	if (__builtin_expect(c->stack.sample_countdown[ep] == 0, 0))
		return np_call_measured(c, ep, irql, fn, arg, ret);
	c->stack.sample_countdown[ep]--;
	return np_call_enter(c, ep, irql, fn, arg, ret);
}

/* ---- adapters (adapter.c) ------------------------------------------------- */

#define NP_MAX_TIMERS		16
#define NP_EVENT_QUEUE		1024
#define NP_RX_RING_BYTES	(256 * 1024)

struct np_param {
	char name[64];
	char value[192];
};

/* An NDIS_MINIPORT_TIMER or NDIS_TIMER, by the address the driver gave. */
struct np_timer {
	PVOID obj;
	PNDIS_TIMER_FUNCTION fn;
	PVOID ctx;
	uint64_t due_ns;		/* 0: not armed */
	uint32_t period_ms;
};

/* A device model attached to an adapter (device.c); may be NULL. */
struct np_device {
	uint32_t (*port_read)(struct np_device *d, uint32_t off, unsigned size);
	void (*port_write)(struct np_device *d, uint32_t off, unsigned size,
			   uint32_t value);
	uint64_t (*next_due)(struct np_device *d);	/* deferred interrupt, ns */
	void (*poll)(struct np_device *d, uint64_t now_ns);
	int (*rx_room)(struct np_device *d);		/* can take a wire frame */
};

static inline int np_device_rx_room(struct np_device *d)
{
	return d && d->rx_room ? d->rx_room(d) : 0;
}

/*
 * A VXLAN wire (RFC 7348): the mock NIC's cable is a UDP socket.  device.c
 * encapsulates what the NIC transmits (np_api_adapter_set_wire_vxlan);
 * pump.c reads the datagrams, checks their header against this and hands
 * the inner frames on.  The drops, by reason, are device counters.
 */
#define NP_VXLAN_HDR		8
#define NP_VXLAN_FLAG_I		0x08	/* "VNI valid": the one flag defined */

struct np_vxlan_wire {
	uint32_t vni;
	uint32_t rx_truncated;		/* shorter than header + Ethernet header */
	uint32_t rx_bad_flags;		/* the I flag clear */
	uint32_t rx_bad_vni;		/* another segment's frames */
	uint32_t rx_oversize;		/* longer than any frame the host reads */
};

/* The adapter's VXLAN wire, or NULL when its cable is something else. */
struct np_vxlan_wire *np_mocknic_vxlan(struct np_adapter *a);

struct np_pump_buf;
void np_pump_destroy(struct np_adapter *a);
struct np_capture;
/* direction: 0 = handed to MiniportSendPackets, 1 = indicated by the driver */
void np_capture_frame(struct np_adapter *a, int direction, const uint8_t *frame,
		      uint32_t len);

void np_mocknic_free(struct np_device *dev);

/* ---- checksum and segmentation offload (offload.c) --------------------------- */

/* What to fill in (np_offload_fill) and what was checked (np_offload_check). */
#define NP_CSUM_IP		0x01	/* the IPv4 header checksum */
#define NP_CSUM_TCP		0x02
#define NP_CSUM_UDP		0x04
#define NP_CSUM_IP_BAD		0x10	/* checked, and wrong */
#define NP_CSUM_L4_BAD		0x20

/* Offsets into a frame: network header, transport header, payload, end of IP. */
struct np_l4 {
	uint32_t l3, l4, payload, end;
	uint8_t proto;			/* 6 or 17; 0: neither, or a later fragment */
	uint8_t v4;
};

typedef void (*np_offload_emit)(void *ctx, uint8_t *frame, uint32_t len);

int np_offload_parse(const uint8_t *f, uint32_t len, struct np_l4 *h);
void np_offload_fill(uint8_t *f, uint32_t len, uint32_t what);
uint32_t np_offload_check(const uint8_t *f, uint32_t len);
int np_offload_partial(uint8_t *f, uint32_t len, struct np_l4 *h);
uint32_t np_offload_segment(const uint8_t *f, uint32_t len, uint32_t mss,
			    uint8_t *seg, uint32_t seg_room,
			    np_offload_emit emit, void *ctx);

/* ---- wire-to-indication latency (latency.c) --------------------------------- */

#define NP_LAT_FIFO		2048	/* > RX descriptors + device backlog */

struct np_latency {
	uint64_t arrived[NP_LAT_FIFO];	/* frames in RX descriptors, oldest first */
	uint32_t head, tail;
	uint64_t bucket[NP_LAT_BUCKETS];
};

void np_latency_arrived(struct np_latency *l, uint64_t ns);
void np_latency_indicated(struct np_latency *l, uint64_t now);
void np_latency_forget(struct np_latency *l);

/* ---- the pump thread (pump_thread.c) ------------------------------------------ */

struct np_pump_thread;

/* Stop and join the adapter's pump thread, if one runs (halt, free). */
void np_pump_thread_end(struct np_adapter *a);

/* The adapter whose line the calling thread services after each pass of
 * its pump (so a rising edge needs no eventfd write), or NULL. */
extern __thread struct np_adapter *np_pumping
	__attribute__((tls_model("initial-exec")));

/*
 * One pass of the data path (pump.c), for the thread and for
 * np_api_adapter_pump: the fds in `ready` (NP_PUMP_TAP, NP_PUMP_WIRE) are
 * read until they would block or a batch is full.
 */
#define NP_PUMP_TAP		1u
#define NP_PUMP_WIRE		2u
#define NP_PUMP_LINE		4u	/* *more only: the line wants service */
uint32_t np_pump_round(struct np_adapter *a, struct np_api_pump *p,
		       uint64_t now_ns, unsigned ready, unsigned *more,
		       int *progress);

#define NP_TX_SLOTS		256
#define NP_TX_FRAME_MAX		9216	/* MTU 9000 + header + VLAN tag, rounded */
#define NP_TX_SLOT_DATA		65536	/* a large send: NP_TX_FRAME_MAX without one */
/* What a TAP read may fill in a slot: any GSO frame Linux hands over. */
#define NP_TX_SLOT_ROOM		(NP_TX_SLOT_DATA + NP_PAGE_SIZE)

struct np_tx_slot;

struct np_adapter {
	/*
	 * The handle drivers get is &block: DDK macros call through its
	 * handler pointers, and np_adapter_from_handle() goes back.
	 */
	NDIS_MINIPORT_BLOCK block;
	uint32_t magic;
	struct np_ctx ctx;
	struct np_arena dma;
	struct np_param params[NP_MAX_PARAMS];
	int nparams;
	NDIS_HANDLE adapter_context;
	PNDIS_CONFIGURATION_PARAMETER cfg_allocs[128];	/* freed at close */
	uint32_t ncfg;
	UCHAR network_address[6];
	UINT port_base, port_count;
	struct np_device *device;
	ULONG attributes;
	ULONG map_registers;		/* NdisMAllocateMapRegisters; 0: none */
	UINT check_for_hang_secs;
	int initialised;
	int in_halt;

	/* interrupts: level-triggered line, mirrored onto an eventfd */
	PNDIS_MINIPORT_INTERRUPT interrupt;
	int request_isr;
	int irq_line;
	int irq_eventfd;

	struct np_timer timers[NP_MAX_TIMERS];
	PNDIS_WORK_ITEM work[16];
	uint32_t nwork;
	PVOID shutdown_ctx;
	ADAPTER_SHUTDOWN_HANDLER shutdown_fn;

	/* indications and completions, queued while the driver runs */
	struct np_api_event events[NP_EVENT_QUEUE];
	uint32_t ev_head, ev_tail;
	uint64_t ev_dropped;
	uint8_t *rx_ring;
	uint32_t rx_head, rx_tail;
	PNDIS_PACKET to_return[NP_EVENT_QUEUE];
	uint32_t nreturn;

	/* frames the host sent: slots owned by send.c */
	struct np_tx_slot *tx;
	uint8_t *tx_data;		/* NP_TX_SLOT_ROOM bytes per slot */
	size_t tx_map_len;
	uint32_t tx_free[NP_TX_SLOTS];
	uint32_t tx_nfree;
	uint32_t max_frame;		/* header, VLAN tag and payload */
	uint32_t max_send;		/* OID_GEN_MAXIMUM_SEND_PACKETS */
	struct np_api_stats stats;
	struct np_pump_buf *pump_buf;	/* pump.c's batches, mapped on first use */
	struct np_pump_thread *pump_thread;	/* while one runs this adapter */
	struct np_latency rx_latency;	/* wire to NdisMIndicateReceivePacket */
	struct np_capture *capture;	/* capture.c's ring while capturing */

	/* the one outstanding OID request; the driver may keep these pointers */
	uint8_t oid_buf[8192];
	int oid_pending;
	NDIS_STATUS oid_status;
	ULONG oid_written, oid_needed;
	ULONG *oid_written_ptr, *oid_needed_ptr;

	/* bookkeeping the verifier and reports read */
	struct np_api_violation violations[64];
	uint64_t nviolations;
	uint8_t fatal_mask[NP_VIOL_COUNT];
	uint64_t port_reads, port_writes;
};

#define NP_ADAPTER_MAGIC 0x4e504144	/* "NPAD" */

struct np_adapter *np_adapter_from_handle(NDIS_HANDLE h);
void np_adapter_queue(struct np_adapter *a, const struct np_api_event *ev);
void np_block_init(struct np_adapter *a);
void np_adapter_irq(struct np_adapter *a, int level);
/* ISR and DPC while the line is up (bounded); the eventfd is not read. */
uint32_t np_adapter_service_line(struct np_adapter *a, uint32_t *serviced);
int np_packet_held(struct np_adapter *a, PNDIS_PACKET p);
int np_tx_init(struct np_adapter *a);
void np_tx_destroy(struct np_adapter *a);
void np_tx_complete(struct np_adapter *a, PNDIS_PACKET p, NDIS_STATUS status);
uint8_t *np_tx_next_buffer(struct np_adapter *a, uint32_t k);
uint32_t np_tx_send_in_place(struct np_adapter *a, const uint32_t *lens,
			     const struct np_api_tx_offload *offload,
			     uint32_t count, uint32_t *accepted,
			     int32_t *bad_index);
uint32_t np_tx_outstanding(struct np_adapter *a);
void np_tx_reclaim(struct np_adapter *a);
void np_verify_leaks(struct np_adapter *a);
const struct np_param *np_adapter_param(struct np_adapter *a,
					const char *name);

/* The adapter the current call runs for, or NULL (DriverEntry). */
static inline struct np_adapter *np_current_adapter(void)
{
	struct np_ctx *c = np_current_ctx();

	return c ? c->adapter : NULL;
}

/* Arena of whatever context the current export runs for. */
static inline struct np_arena *np_current_arena(void)
{
	struct np_ctx *c = np_current_ctx();

	return c ? &c->arena : NULL;
}

/* ---- shared helpers ------------------------------------------------------- */

uint64_t np_now_ns(void);
/* Windows' clocks from ours: 100 ns units (ntoskrnl.c). */
#define NP_TICK_100NS	156250U	/* 15.625 ms, Windows' default clock tick */
uint64_t np_system_time(void);	/* since 1601-01-01 UTC */
int np_free_pool(PVOID va, const char *fn);
BOOLEAN np_ustr_equal(PCUNICODE_STRING a, PCUNICODE_STRING b, BOOLEAN ci);
size_t np_utf16_len(PCWSTR s, size_t max);
void np_set_error(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* NP_H */
