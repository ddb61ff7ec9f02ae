/* SPDX-License-Identifier: MIT */
/*
 * mocknic.h - the mock NIC's NDIS 5.1 miniport: adapter context, limits and
 * what its files share.  docs/hardware.md is the device's datasheet.
 *
 * A deserialized, bus-mastering Ethernet miniport in the mould of an
 * e1000-class driver:
 *
 *   main.c      DriverEntry, Initialize, Halt, Reset, CheckForHang,
 *               Shutdown, the watchdog timer and link reporting
 *   param.c     the registry parameters
 *   nvm.c       EEPROM image and PHY calibration: the stack-hungry part
 *               of bring-up (its budget is described there)
 *   hw.c        registers: reset, programming, enabling, counters
 *   ring.c      descriptor rings, DMA buffers, receive packets
 *   datapath.c  SendPackets, ISR, HandleInterrupt, ReturnPacket
 *   oid.c       QueryInformation, SetInformation
 *   faults.c    StackHunger and the MN_FAULT_* knobs
 *   offload.c   OID_TCP_TASK_OFFLOAD and per-packet offload info
 *
 * IRQL: Initialize and Halt run at PASSIVE_LEVEL; the ISR at DIRQL;
 * HandleInterrupt, timers, OID requests, Reset and CheckForHang at
 * DISPATCH_LEVEL; SendPackets and ReturnPacket at <= DISPATCH_LEVEL (so
 * they take locks with NdisAcquireSpinLock, never the Dpr variant).
 *
 * Locks (NDIS calls a deserialized miniport concurrently):
 *   tx_lock  the TX ring, its slots, the software send queue, TX counters
 *            and the TX fault arms;
 *   rx_lock  the RX ring, receive buffers and their free list, RX
 *            counters, the packet filter and the multicast table;
 *   lock     link state, hardware-counter snapshots, the pended OID.
 * Order: tx_lock, then rx_lock, then lock.  No lock is held across an
 * NdisM* indication or completion: those may call back into the driver.
 */
#ifndef MOCKNIC_H
#define MOCKNIC_H

#include "ndis.h"
#include "mocknic_hw.h"

/* Pool tags as they read in memory (and in the host's allocation report). */
#define MN_TAG(a, b, c, d)	((ULONG)(a) | (ULONG)(b) << 8 |		\
				 (ULONG)(c) << 16 | (ULONG)(d) << 24)
#define MN_TAG_ADAPTER		MN_TAG('M', 'N', 'i', 'c')
#define MN_TAG_LEAK		MN_TAG('L', 'e', 'a', 'k')

/* Where the host's PCI emulation puts the BAR and INTA (both fixed). */
#define MN_PORT_BASE		0xC000U
#define MN_IRQ_VECTOR		11

#define MN_ETH_HLEN		14
#define MN_VLAN_HLEN		4
#define MN_MTU_MIN		576
#define MN_MTU_MAX		9000
#define MN_MTU_DEFAULT		1500
#define MN_RING_MIN		8
#define MN_TX_RING_DEFAULT	64
#define MN_RX_RING_DEFAULT	128
#define MN_ITR_MAX		10000		/* µs: at most 100 interrupts/s */
#define MN_STACK_HUNGER_MAX	(1024 * 1024)	/* KiB: any stack overflows first */

#define MN_LSO_MAX_PAYLOAD	64000		/* NDIS 5.1's usual MaxOffLoadSize */
#define MN_LSO_HEADERS		(MN_ETH_HLEN + MN_VLAN_HLEN + 60 + 60)
#define MN_LSO_MIN_SEGMENTS	2

#define MN_MAX_SEND_PACKETS	32		/* OID_GEN_MAXIMUM_SEND_PACKETS */
#define MN_RX_BATCH		32		/* packets per NdisMIndicateReceivePacket */
#define MN_RX_LOW_WATER		8		/* fewer left for the device: RESOURCES */
#define MN_WATCHDOG_MS		1000
#define MN_MC_COMPLETE_MS	1		/* a pended multicast set completes after */
#define MN_HANG_CHECKS		3		/* CheckForHangs without TX progress */
#define MN_RESET_POLLS		1000		/* x 10 µs for MN_CTRL_RESET to clear */

/* The DDK's PROTOCOL_RESERVED_SIZE_IN_PACKET: what a receive pool needs. */
#define MN_PROTOCOL_RESERVED	(4 * sizeof(PVOID))
/* NormalPagePriority (MM_PAGE_PRIORITY); our ndis.h's macro ignores it. */
#define MN_PAGE_PRIORITY	16

/* What the fault knobs do (faults.c, datapath.c). */
#define MN_BAD_DMA_ADDR		0x12345000ULL	/* MN_FAULT_BAD_DMA's bus address */
#define MN_WILD_ADDR		0x00000000dead0000ULL
#define MN_BUGCHECK_CODE	0x4D4E4943U	/* "MNIC" */
#define MN_OVERFLOW_KIB		(8 * 1024)	/* MN_FAULT_OVERFLOW's recursion */

#define MN_SUPPORTED_FILTERS	(NDIS_PACKET_TYPE_DIRECTED |		\
				 NDIS_PACKET_TYPE_MULTICAST |		\
				 NDIS_PACKET_TYPE_ALL_MULTICAST |	\
				 NDIS_PACKET_TYPE_BROADCAST |		\
				 NDIS_PACKET_TYPE_PROMISCUOUS)

#define MN_ALIGN_UP(x, a)	(((x) + (a) - 1) & ~((a) - 1))

/*
 * A receive buffer: one NDIS_PACKET + NDIS_BUFFER over its slice of shared
 * memory.  Buffers are not tied to descriptors, because the stack returns
 * packets in any order while the ring can only be refilled at its tail:
 *
 *   FREE --refill--> DEVICE --DD, DPC--> STACK --ReturnPacket--> FREE
 *                              |  \----> LENT (indicated with RESOURCES)
 *                              |          '--indication returns--> FREE
 *                              '--bad descriptor, Reset--> FREE
 */
enum mn_rxb_state {
	MN_RXB_FREE,
	MN_RXB_DEVICE,
	MN_RXB_STACK,
	MN_RXB_LENT,
};

struct mn_rx_buf {
	struct mn_rx_buf *next;		/* free list, while FREE */
	PUCHAR va;
	NDIS_PHYSICAL_ADDRESS pa;
	PNDIS_PACKET packet;		/* MiniportReserved points back here */
	PNDIS_BUFFER buffer;
	enum mn_rxb_state state;
};

/* One TX descriptor's software side: its bounce buffer and its packet. */
struct mn_tx_slot {
	PNDIS_PACKET packet;		/* in flight, on its frame's last descriptor */
	BOOLEAN part;			/* a frame's descriptor before its last */
	ULONG lso_payload;		/* a large send's TCP payload bytes */
	PUCHAR va;
	NDIS_PHYSICAL_ADDRESS pa;
};

/* One NdisMAllocateSharedMemory block. */
struct mn_dma {
	PVOID va;
	NDIS_PHYSICAL_ADDRESS pa;
	ULONG len;
};

/* Packets chained through MiniportReserved, first in first out. */
struct mn_pkt_list {
	PNDIS_PACKET head, tail;
	ULONG count;
};

struct mn_adapter {
	NDIS_HANDLE handle;		/* the MiniportAdapterHandle */
	PUCHAR port;			/* base of our registered port range */

	/* Configuration: fixed once Initialize returns. */
	ULONG mtu;
	ULONG max_frame;		/* mtu + header + one 802.1Q tag */
	ULONG tx_count, rx_count;	/* descriptors per ring */
	ULONG tx_buf_len, rx_buf_len;	/* usable bytes per buffer */
	ULONG tx_stride, rx_stride;	/* buffer spacing in their blocks */
	ULONG itr_us;
	ULONG stack_hunger_kib;
	ULONG fault_inject;
	UCHAR perm_addr[ETH_LENGTH_OF_ADDRESS];
	UCHAR cur_addr[ETH_LENGTH_OF_ADDRESS];
	UCHAR cfg_addr[ETH_LENGTH_OF_ADDRESS];	/* NetworkAddress, if valid */
	BOOLEAN have_cfg_addr;
	ULONG phy_cookie;		/* what PHY calibration settled on */

	/* TX, under tx_lock.  The device owns [tx_clean, tx_use). */
	NDIS_SPIN_LOCK tx_lock;
	struct mn_dma tx_ring_mem, tx_buf_mem;
	volatile struct mn_tx_desc *tx_ring;
	struct mn_tx_slot *tx_slots;
	ULONG tx_use;			/* next descriptor to fill == TX_TAIL */
	ULONG tx_clean;			/* next descriptor to reap */
	struct mn_pkt_list txq;		/* waiting for a free descriptor */
	ULONG hang_mark, hang_checks;	/* CheckForHang's view of tx_clean */
	BOOLEAN fault_double_complete;
	BOOLEAN fault_bad_dma;
	BOOLEAN fault_hang_send;
	BOOLEAN fault_overflow_send;
	ULONGLONG xmit_ok, xmit_error;
	NDIS_TASK_TCP_IP_CHECKSUM tx_csum;	/* enabled by OID_TCP_TASK_OFFLOAD */
	ULONG lso_max;			/* enabled MaxOffLoadSize; 0: no large send */

	/*
	 * RX, under rx_lock.  Descriptors [rx_clean, rx_tail) hold buffers
	 * (the device's, or done and not yet processed); [rx_tail, rx_clean)
	 * are empty.  At most rx_count - 1 hold buffers: HEAD == TAIL means
	 * the device has none.
	 */
	NDIS_SPIN_LOCK rx_lock;
	struct mn_dma rx_ring_mem, rx_buf_mem;
	volatile struct mn_rx_desc *rx_ring;
	struct mn_rx_buf *rx_bufs;	/* rx_count of them */
	struct mn_rx_buf **rx_desc_buf;	/* the buffer at each descriptor */
	struct mn_rx_buf *rx_free;
	ULONG rx_clean;			/* next descriptor the device completes */
	ULONG rx_tail;			/* what RX_TAIL was last given */
	ULONG rx_with_stack;		/* buffers in STACK state */
	NDIS_HANDLE rx_packet_pool, rx_buffer_pool;
	ULONG packet_filter;
	ULONG lookahead;
	UCHAR mc_list[MN_MC_SLOTS][ETH_LENGTH_OF_ADDRESS];
	ULONG mc_count;
	ULONG mc_hw_count;		/* slots valid in the device's table */
	ULONGLONG rcv_ok, rcv_error;
	BOOLEAN rx_csum;		/* MN_RXCSUM_EN: checksum info on receives */

	/* Under lock. */
	NDIS_SPIN_LOCK lock;
	BOOLEAN link_up;		/* as last indicated to NDIS */
	BOOLEAN mc_pending;		/* OID_802_3_MULTICAST_LIST pended */
	ULONG hw_rx_missed, hw_dma_errors;	/* counter values already counted */
	ULONGLONG rcv_no_buffer, dma_errors;

	/* ISR -> DPC: causes read from ICR, consumed atomically. */
	NDIS_MINIPORT_INTERRUPT interrupt;
	ULONG causes;

	NDIS_MINIPORT_TIMER watchdog;
	NDIS_MINIPORT_TIMER mc_timer;

	/* Fault injection (faults.c). */
	PVOID leak;			/* MN_FAULT_LEAK: left behind at Halt */
	NDIS_SPIN_LOCK fault_lock;	/* only ever released, never acquired */
};

/* ---- register access ------------------------------------------------- */

/* Every register is 32 bits of port I/O at base + offset (HAL: READ_PORT_ULONG). */
static inline ULONG mn_rd(const struct mn_adapter *a, ULONG reg)
{
	ULONG v;

	NdisRawReadPortUlong(a->port + reg, &v);
	return v;
}

static inline void mn_wr(const struct mn_adapter *a, ULONG reg, ULONG v)
{
	NdisRawWritePortUlong(a->port + reg, v);
}

/* ---- packet links in MiniportReserved -------------------------------- */

/*
 * MiniportReserved is ours while we own a packet: TX packets keep their
 * queue link there, RX packets a pointer to their mn_rx_buf.  Byte copies,
 * not casts, so the compiler sees no aliasing of the UCHAR array.
 */
static inline PVOID mn_pkt_get(PNDIS_PACKET p)
{
	PVOID v;

	__builtin_memcpy(&v, p->MiniportReserved, sizeof(v));
	return v;
}

static inline void mn_pkt_set(PNDIS_PACKET p, PVOID v)
{
	__builtin_memcpy(p->MiniportReserved, &v, sizeof(v));
}

static inline void mn_list_append(struct mn_pkt_list *l, PNDIS_PACKET p)
{
	mn_pkt_set(p, NULL);
	if (l->tail)
		mn_pkt_set(l->tail, p);
	else
		l->head = p;
	l->tail = p;
	l->count++;
}

static inline PNDIS_PACKET mn_list_pop(struct mn_pkt_list *l)
{
	PNDIS_PACKET p = l->head;

	if (!p)
		return NULL;
	l->head = mn_pkt_get(p);
	if (!l->head)
		l->tail = NULL;
	l->count--;
	return p;
}

/* Moves all of src to the end of dst. */
static inline void mn_list_splice(struct mn_pkt_list *dst,
				  struct mn_pkt_list *src)
{
	if (!src->head)
		return;
	if (dst->tail)
		mn_pkt_set(dst->tail, src->head);
	else
		dst->head = src->head;
	dst->tail = src->tail;
	dst->count += src->count;
	src->head = src->tail = NULL;
	src->count = 0;
}

/* ---- main.c ---------------------------------------------------------- */

void mn_link_update(struct mn_adapter *a);

/* ---- param.c --------------------------------------------------------- */

NDIS_STATUS mn_read_params(struct mn_adapter *a, NDIS_HANDLE wrapper_config);

/* ---- nvm.c ----------------------------------------------------------- */

NDIS_STATUS mn_nvm_init(struct mn_adapter *a);

/* ---- hw.c ------------------------------------------------------------ */

NDIS_STATUS mn_hw_probe(struct mn_adapter *a);
NDIS_STATUS mn_hw_reset(struct mn_adapter *a);
void mn_hw_configure(struct mn_adapter *a);
void mn_hw_enable(struct mn_adapter *a);
void mn_hw_disable(struct mn_adapter *a);
void mn_hw_stop(struct mn_adapter *a);
void mn_hw_set_filter(struct mn_adapter *a);
void mn_hw_set_multicast(struct mn_adapter *a);
BOOLEAN mn_hw_link_up(struct mn_adapter *a, PULONG speed_100bps);
ULONG mn_hw_harvest(struct mn_adapter *a);

/* ---- ring.c ---------------------------------------------------------- */

NDIS_STATUS mn_ring_alloc(struct mn_adapter *a);
void mn_ring_free(struct mn_adapter *a);
void mn_ring_reset(struct mn_adapter *a, struct mn_pkt_list *aborted);
BOOLEAN mn_rx_refill(struct mn_adapter *a);
void mn_rx_buf_put(struct mn_adapter *a, struct mn_rx_buf *b);

/* ---- datapath.c ------------------------------------------------------ */

VOID NDISAPI mn_send_packets(NDIS_HANDLE ctx, PPNDIS_PACKET packets,
			     UINT count);
VOID NDISAPI mn_isr(PBOOLEAN recognized, PBOOLEAN queue_dpc, NDIS_HANDLE ctx);
VOID NDISAPI mn_handle_interrupt(NDIS_HANDLE ctx);
VOID NDISAPI mn_return_packet(NDIS_HANDLE ctx, PNDIS_PACKET packet);
void mn_tx_service(struct mn_adapter *a);
void mn_complete_sends(struct mn_adapter *a, struct mn_pkt_list *l,
		       NDIS_STATUS status);

/* ---- oid.c ----------------------------------------------------------- */

NDIS_STATUS NDISAPI mn_query_information(NDIS_HANDLE ctx, NDIS_OID oid,
		PVOID buf, ULONG len, PULONG written, PULONG needed);
NDIS_STATUS NDISAPI mn_set_information(NDIS_HANDLE ctx, NDIS_OID oid,
		PVOID buf, ULONG len, PULONG read, PULONG needed);
VOID NDISAPI mn_mc_timer(PVOID system1, PVOID ctx, PVOID system2,
			 PVOID system3);

/* ---- faults.c -------------------------------------------------------- */

ULONG mn_stack_hunger(ULONG kib, ULONG seed);
NDIS_STATUS mn_fault_request(struct mn_adapter *a, ULONG code,
			     const char *where);
void mn_fault_release(struct mn_adapter *a);
/* An at-once fault (OVERFLOW, WILD_WRITE, ...) here, from a data path. */
void mn_fault_fire(struct mn_adapter *a, ULONG code);

/* offload.c */
NDIS_STATUS mn_offload_query(struct mn_adapter *a, PVOID buf, ULONG len,
			     PULONG written, PULONG needed);
NDIS_STATUS mn_offload_set(struct mn_adapter *a, PVOID buf, ULONG len,
			   PULONG read, PULONG needed);
UCHAR mn_offload_tx_cmd(struct mn_adapter *a, PNDIS_PACKET p, USHORT *mss);
ULONG mn_offload_tcp_payload(const UCHAR *f, ULONG len);
ULONG_PTR mn_offload_rx_info(UCHAR csum);

#endif /* MOCKNIC_H */
