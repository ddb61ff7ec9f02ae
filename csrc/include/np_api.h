/* SPDX-License-Identifier: MIT */
/*
 * np_api.h - the narrow, batched interface Python sees through cffi.
 *
 * The build script hands this file to cffi's cdef after dropping the
 * preprocessor lines, so it holds only declarations cffi can parse: no
 * macros but integer constants, no Windows types, no ms_abi anywhere.
 */
#ifndef NP_API_H
#define NP_API_H

#include <stddef.h>
#include <stdint.h>

#define NP_API_VERSION 3

#define NP_STACK_DEFAULT 65536
#define NP_STACK_MIN 16384
#define NP_STACK_MAX 67108864
/* Registry parameters per adapter (INF defaults and the config's together). */
#define NP_MAX_PARAMS 64
/* A refusal to call into a context whose driver already faulted. */
#define NP_REFUSED_FAULTED 3758096385
/* A refusal to enter a context another thread is in: a bug of ours. */
#define NP_REFUSED_CONCURRENT 3758096386
/* Fault codes of our own, beside the NTSTATUS ones the trap reports. */
#define NP_FAULT_BUGCHECK 3758099392
#define NP_FAULT_VERIFIER 3221226529

enum np_entry {
	NP_EP_DRIVER_ENTRY,
	NP_EP_INITIALIZE,
	NP_EP_HALT,
	NP_EP_QUERY_INFORMATION,
	NP_EP_SET_INFORMATION,
	NP_EP_SEND_PACKETS,
	NP_EP_ISR,
	NP_EP_HANDLE_INTERRUPT,
	NP_EP_DISABLE_INTERRUPT,
	NP_EP_ENABLE_INTERRUPT,
	NP_EP_RESET,
	NP_EP_CHECK_FOR_HANG,
	NP_EP_RETURN_PACKET,
	NP_EP_TIMER,
	NP_EP_SHUTDOWN,
	NP_EP_COUNT
};

enum np_violation {
	NP_VIOL_IRQL,
	NP_VIOL_DOUBLE_COMPLETE,
	NP_VIOL_INDICATE_HELD,
	NP_VIOL_FREE_UNRETURNED,
	NP_VIOL_LOCK_NOT_HELD,
	NP_VIOL_POOL_LEAK,
	NP_VIOL_BAD_DMA,
	NP_VIOL_BAD_FREE,
	NP_VIOL_BAD_CALL,
	NP_VIOL_COUNT
};

enum np_event_type {
	NP_EV_SEND_COMPLETE,
	NP_EV_RECEIVE,
	NP_EV_STATUS,
	NP_EV_STATUS_COMPLETE,
	NP_EV_RESET_COMPLETE,
	NP_EV_QUERY_COMPLETE,
	NP_EV_SET_COMPLETE,
	NP_EV_SEND_RESOURCES
};

struct np_api_fault {
	uint32_t code;
	int32_t signo;
	uint64_t addr;
	uint64_t pc;
	uint64_t sp;
	uint64_t depth;
	uint32_t entry;
	uint8_t irql;
	uint64_t bugcheck[5];
	char where[160];
	/* the driver's code at pc, for a trapped fault in it: the instruction
	 * when it was decoded (insn_text says what it is), else 8 bytes */
	uint8_t insn[15];
	uint8_t insn_len;
	uint8_t insn_decoded;
	char insn_text[160];
};

struct np_api_event {
	uint32_t type;
	int32_t status;
	uint64_t packet;
	uint32_t len;
	uint32_t offset;
	uint32_t csum_ok;		/* receive: the NIC checked its checksums */
	uint8_t data[32];
};

struct np_api_alloc {
	uint32_t tag;
	uint64_t size;
};

struct np_api_violation {
	uint32_t kind;
	uint32_t entry;
	uint8_t irql;
	uint8_t fatal;
	char text[150];
};

/* Buckets of np_api_adapter_rx_latency: 8 per power of two of ns. */
#define NP_LAT_BUCKETS 496

struct np_api_stack {
	uint64_t size;
	uint64_t lifetime;
	uint64_t entry[15];
	uint64_t calls[15];
};

struct np_api_map {
	uint64_t addr;
	uint64_t len;
	char kind[16];
};

/* Host-side counters of one adapter (the driver's own are OIDs). */
struct np_api_stats {
	uint64_t tx_sent;		/* frames handed to MiniportSendPackets */
	uint64_t tx_completed;		/* completed with NDIS_STATUS_SUCCESS */
	uint64_t tx_failed;		/* completed with another status */
	uint64_t tx_refused_short;	/* under 14 bytes: never sent */
	uint64_t tx_refused_long;	/* over the maximum frame: never sent */
	uint64_t rx_indicated;		/* frames the driver indicated */
	uint64_t rx_dropped;		/* indicated but no room to keep them */
	uint64_t rx_returned;		/* packets handed back to the driver */
	uint64_t interrupts;
	uint64_t dpcs;
	uint64_t tx_outstanding;
	uint64_t captured;		/* frames copied for capture */
	uint64_t tx_large_sends;	/* frames sent with an MSS (large send) */
	uint64_t rx_csum_good;		/* indicated with TCP/UDP checksum succeeded */
	uint64_t rx_csum_failed;	/* indicated with a checksum failed */
	uint64_t capture_dropped;	/* frames the capture ring had no room for */
};

/* The mock NIC's own counters and state (device.c). */
struct np_api_device_counters {
	uint32_t tx_frames;
	uint32_t rx_frames;
	uint32_t rx_missed;
	uint32_t rx_filtered;
	uint32_t tx_errors;
	uint32_t dma_errors;
	uint32_t rx_filter;
	uint32_t mc_count;
	uint32_t link;
	uint32_t backlog;
	uint32_t wire_tx_dropped;	/* the wire fd would not take a frame */
	/* VXLAN datagrams dropped on receive, by reason (RFC 7348 header) */
	uint32_t vxlan_rx_truncated;	/* under 8 + 14 bytes: no inner frame */
	uint32_t vxlan_rx_bad_flags;	/* the I flag (0x08) clear */
	uint32_t vxlan_rx_bad_vni;	/* a VNI other than the wire's */
	uint32_t vxlan_rx_oversize;	/* over the pump's 9280-byte frame buffer */
	uint32_t tso_frames;		/* frames the TX engine segmented */
	uint32_t rx_csum_bad;		/* received with a wrong checksum */
};

/*
 * What a sent frame asks of the NIC: the per-packet info NDIS 5.1 hands a
 * miniport.  csum is an NDIS_TCP_IP_CHECKSUM_PACKET_INFO's Value; mss, if
 * not 0, makes the frame a large send of up to 64 KiB, cut into segments
 * of mss payload bytes.
 */
struct np_api_tx_offload {
	uint32_t csum;
	uint32_t mss;
};

/* One np_api_adapter_pump() call: fds in, what moved out (accumulating). */
struct np_api_pump {
	int32_t tap_fd;			/* Linux's side; -1 for none */
	int32_t wire_fd;		/* the NIC's cable; -1 for none (a VXLAN
					 * socket when the device says so) */
	uint32_t tap_vnet_hdr;		/* virtio_net_hdr bytes before each frame */
	uint32_t wire_vnet_hdr;		/* ignored on a VXLAN wire */
	uint64_t tap_in;		/* frames Linux sent, handed to the driver */
	uint64_t tap_out;		/* frames indicated, written to the TAP */
	uint64_t tap_out_dropped;	/* the TAP would not take them */
	uint64_t tap_runts;		/* reads shorter than the vnet header */
	uint64_t wire_in;
	uint64_t wire_runts;
	int32_t tap_error;		/* errno of a failed read, else 0 */
	int32_t wire_error;
	uint32_t events_pending;	/* control events wait in events() */
	uint32_t tx_free;		/* host send packets free after the call */
	/*
	 * NP_PUMP_OFFLOAD_*: what the driver was told to offload (by
	 * OID_TCP_TASK_OFFLOAD), so what the TAP's vnet headers map onto.
	 */
	uint32_t offloads;
	uint32_t lso_max;		/* the MaxOffLoadSize the driver took */
	uint64_t tap_large_sends;	/* GSO frames handed over as large sends */
	uint64_t gso_segmented;		/* GSO frames the host cut into segments */
	uint64_t gso_dropped;		/* segments no send packet was free for */
	uint64_t csum_filled;		/* checksums the host filled in */
};

/* struct np_api_pump.offloads: TCP/UDP checksums (IPv4, IPv6); TCP/IPv4 large send */
#define NP_PUMP_OFFLOAD_CSUM 1
#define NP_PUMP_OFFLOAD_LSO4 2

/* A helper DLL the driver imports, found by the caller (np_api_image_helpers). */
struct np_api_helper {
	const char *name;		/* as the import table spells it */
	const uint8_t *data;
	size_t len;
};

struct np_image;
struct np_adapter;

int np_api_version(void);
uint64_t np_api_now_ns(void);
int np_api_trap_ensure(void);
size_t np_api_maps(struct np_api_map *out, size_t max);

size_t np_api_image_helpers(const uint8_t *data, size_t len, char *out,
			    size_t outlen);
int np_api_image_load(const uint8_t *data, size_t len, const char *name,
		      const struct np_api_helper *helpers, size_t nhelpers,
		      size_t stack_size, struct np_image **out, char *err,
		      size_t errlen);
int np_api_image_failed_helper(struct np_image *img);
uint32_t np_api_image_wx_pages(struct np_image *img);
uint32_t np_api_image_driver_entry(struct np_image *img, int32_t *status);
int np_api_image_registered(struct np_image *img);
uint64_t np_api_image_base(struct np_image *img);
uint64_t np_api_image_size(struct np_image *img);
size_t np_api_image_log(struct np_image *img, uint64_t since, char *out,
			size_t outlen, uint64_t *next);
void np_api_image_fault(struct np_image *img, struct np_api_fault *out);
void np_api_image_stack(struct np_image *img, struct np_api_stack *out);
void np_api_image_free(struct np_image *img);
/* What DriverEntry registered (driver info): 0 before NdisMRegisterMiniport. */
unsigned np_api_image_ndis_version(struct np_image *img);
int np_api_image_handler(struct np_image *img, unsigned slot, const char **name,
			 uint64_t *address);
/* What binding MODULE!fn would do: 0 bound, 1 no such export, 2 no such module. */
int np_api_import_status(const char *module, const char *fn);

int np_api_adapter_create(struct np_image *img, size_t stack_size,
			  struct np_adapter **out, char *err, size_t errlen);
int np_api_adapter_set_param(struct np_adapter *a, const char *name,
			     const char *value);
void np_api_adapter_set_deadline(struct np_adapter *a, uint32_t entry,
				 uint64_t ns);
void np_api_adapter_set_sampling(struct np_adapter *a, uint32_t every);
uint32_t np_api_adapter_initialize(struct np_adapter *a, int32_t *status);
uint32_t np_api_adapter_halt(struct np_adapter *a);
uint32_t np_api_adapter_query(struct np_adapter *a, uint32_t oid,
			      uint8_t *buf, uint32_t len, int32_t *status,
			      uint32_t *written, uint32_t *needed);
uint32_t np_api_adapter_set(struct np_adapter *a, uint32_t oid,
			    const uint8_t *buf, uint32_t len, int32_t *status,
			    uint32_t *read, uint32_t *needed);
uint32_t np_api_adapter_reset(struct np_adapter *a, int32_t *status,
			      int *addressing_reset);
uint32_t np_api_adapter_check_for_hang(struct np_adapter *a, int *hung);
/* Seconds between CheckForHang calls the driver asked for; 0: no handler. */
uint32_t np_api_adapter_hang_check_secs(struct np_adapter *a);
uint32_t np_api_adapter_service_interrupt(struct np_adapter *a,
					  uint32_t *serviced);
uint32_t np_api_adapter_run_timers(struct np_adapter *a, uint64_t now_ns,
				   uint32_t *ran);
uint64_t np_api_adapter_next_timer(struct np_adapter *a);
uint32_t np_api_adapter_return_packets(struct np_adapter *a);
size_t np_api_adapter_receive(struct np_adapter *a, uint8_t *rx, size_t rxlen,
			      uint32_t *lens, size_t max);
int np_api_adapter_capture(struct np_adapter *a, int on);
size_t np_api_adapter_capture_read(struct np_adapter *a, uint8_t *out, size_t outlen);
size_t np_api_adapter_oid_data(struct np_adapter *a, uint8_t *out, size_t max);
void np_api_adapter_set_irq_line(struct np_adapter *a, int level);
uint32_t np_api_adapter_send(struct np_adapter *a, const uint8_t *data,
			     const uint32_t *lens, uint32_t count,
			     uint32_t *accepted, int32_t *bad_index);
uint32_t np_api_adapter_send_offload(struct np_adapter *a, const uint8_t *data,
				     const uint32_t *lens,
				     const struct np_api_tx_offload *offload,
				     uint32_t count, uint32_t *accepted,
				     int32_t *bad_index);
uint32_t np_api_adapter_max_frame(struct np_adapter *a);
/* Debug: the next n checksums the mock NIC fills in go out wrong. */
void np_api_adapter_corrupt_checksums(struct np_adapter *a, uint32_t n);
void np_api_adapter_stats(struct np_adapter *a, struct np_api_stats *out);
int np_api_adapter_attach_mocknic(struct np_adapter *a, const uint8_t *mac);
void np_api_adapter_set_link(struct np_adapter *a, int up);
/* A wedged TX engine: descriptors stay pending until a device reset. */
void np_api_adapter_stall_tx(struct np_adapter *a, int stalled);
uint32_t np_api_adapter_wire_receive(struct np_adapter *a, const uint8_t *data,
				     const uint32_t *lens, uint32_t count);
void np_api_adapter_device_counters(struct np_adapter *a,
				    struct np_api_device_counters *out);
int np_api_adapter_set_wire(struct np_adapter *a, int fd, uint32_t vnet_hdr);
int np_api_adapter_set_wire_vxlan(struct np_adapter *a, int fd, uint32_t vni,
				  const uint8_t *remote_sockaddr,
				  uint32_t remote_len);
uint32_t np_api_adapter_pump(struct np_adapter *a, struct np_api_pump *p,
			     uint64_t now_ns);
/* Control events (not received frames) at the head of the queue. */
size_t np_api_adapter_control_events(struct np_adapter *a,
				     struct np_api_event *out, size_t max);
/* Wire-to-indication latency histogram (latency.c): bucket counts. */
size_t np_api_adapter_rx_latency(struct np_adapter *a, uint64_t *buckets,
				 size_t max);

/* The data path on a C thread of its own (pump_thread.c). */
struct np_pump_thread;
int np_api_pump_start(struct np_adapter *a, struct np_api_pump *p,
		      struct np_pump_thread **out);
void np_api_pump_lock(struct np_pump_thread *pt);
void np_api_pump_unlock(struct np_pump_thread *pt);
int np_api_pump_notify_fd(struct np_pump_thread *pt);
int np_api_pump_notice(struct np_pump_thread *pt);
void np_api_pump_stop(struct np_pump_thread *pt);
void np_api_pump_counters(struct np_pump_thread *pt, struct np_api_pump *out);
uint32_t np_api_pump_join(struct np_pump_thread *pt);
int np_api_adapter_irq_line(struct np_adapter *a);
int np_api_adapter_eventfd(struct np_adapter *a);
int np_api_adapter_interrupt_registered(struct np_adapter *a);
size_t np_api_adapter_events(struct np_adapter *a, struct np_api_event *out,
			     size_t max, uint8_t *rx, size_t rxlen);
void np_api_adapter_fault(struct np_adapter *a, struct np_api_fault *out);
void np_api_adapter_stack(struct np_adapter *a, struct np_api_stack *out);
size_t np_api_adapter_allocations(struct np_adapter *a,
				  struct np_api_alloc *out, size_t max);
size_t np_api_adapter_violations(struct np_adapter *a,
				 struct np_api_violation *out, size_t max,
				 uint64_t *total);
void np_api_adapter_set_fatal(struct np_adapter *a, uint32_t kind, int fatal);
void np_api_adapter_free(struct np_adapter *a);

/* Benchmarks: the trampoline against a direct call and swapcontext. */
double np_api_bench_direct(uint64_t iterations);
double np_api_bench_trampoline(uint64_t iterations, uint32_t sample_every);
double np_api_bench_swapcontext(uint64_t iterations);
uint64_t np_api_bench_noop(void);

#endif /* NP_API_H */
