/* SPDX-License-Identifier: MIT */
/*
 * mocknic_hw.h - the mock NIC's hardware interface: registers, bits and
 * descriptor formats.  Shared by the device model (csrc/device.c, host side)
 * and the mock miniport (csrc/drivers/mocknic/, Windows side); both compile
 * it, so it holds only fixed-width types and constants.  docs/hardware.md is
 * the datasheet.
 *
 * The driver reaches the registers through port I/O (READ_PORT_ULONG /
 * WRITE_PORT_ULONG on the range it registered with
 * NdisMRegisterIoPortRange), which the host intercepts; every register is
 * 32 bits wide, and aligned byte and word accesses reach the bytes they
 * cover (docs/hardware.md, "Register access").
 */
#ifndef MOCKNIC_HW_H
#define MOCKNIC_HW_H

#define MN_PORT_COUNT		0x100	/* bytes of port space */

/* ---- registers (byte offsets) ---------------------------------------- */
#define MN_CTRL			0x00	/* RW control */
#define MN_STATUS		0x04	/* RO device status */
#define MN_ICR			0x08	/* interrupt cause: read; write 1s to clear */
#define MN_IMS			0x0C	/* interrupt mask: 1 = cause raises the line */
#define MN_TX_BASE_LO		0x10	/* TX ring bus address, low 32 bits */
#define MN_TX_BASE_HI		0x14
#define MN_TX_LEN		0x18	/* TX ring length in descriptors */
#define MN_TX_HEAD		0x1C	/* RO: next descriptor the device reads */
#define MN_TX_TAIL		0x20	/* doorbell: one past the last ready descriptor */
#define MN_RX_BASE_LO		0x24
#define MN_RX_BASE_HI		0x28
#define MN_RX_LEN		0x2C
#define MN_RX_HEAD		0x30	/* RO: next descriptor the device fills */
#define MN_RX_TAIL		0x34	/* doorbell: one past the last free descriptor */
#define MN_RX_FILTER		0x38	/* NDIS_PACKET_TYPE_* bits, same values */
#define MN_MC_INDEX		0x3C	/* multicast table slot for MC_ADDR_* */
#define MN_MC_ADDR_LO		0x40	/* bytes 0-3 of the address */
#define MN_MC_ADDR_HI		0x44	/* bytes 4-5; bit 31 = slot valid; write commits */
#define MN_MC_COUNT		0x48	/* RO: valid slots */
#define MN_EEPROM_MAC_LO	0x4C	/* RO permanent address bytes 0-3 */
#define MN_EEPROM_MAC_HI	0x50	/* RO permanent address bytes 4-5 */
#define MN_RAL			0x54	/* current unicast address bytes 0-3 */
#define MN_RAH			0x58	/* bytes 4-5 */
#define MN_ITR			0x5C	/* interrupt moderation: minimum µs between interrupts */
#define MN_MAX_FRAME		0x60	/* largest frame accepted, header included (no FCS) */
#define MN_STAT_TX_FRAMES	0x64	/* RO counters, clear on reset */
#define MN_STAT_RX_FRAMES	0x68
#define MN_STAT_RX_MISSED	0x6C	/* no free RX descriptor */
#define MN_STAT_RX_FILTERED	0x70	/* dropped by RX_FILTER / multicast table */
#define MN_STAT_TX_ERRORS	0x74
#define MN_STAT_DMA_ERRORS	0x78
#define MN_DEVICE_ID		0x7C	/* RO: MN_ID */
#define MN_RX_BUF_LEN		0x80	/* bytes in every RX descriptor's buffer */
#define MN_PHY_LINK		0x84	/* RO for the driver: what the cable says */
#define MN_RXCSUM		0x88	/* receive checksum checking (MN_RXCSUM_*) */
#define MN_STAT_TSO_FRAMES	0x8C	/* RO: frames segmented by the TX engine */
#define MN_STAT_RX_CSUM_BAD	0x90	/* RO: frames that failed a checksum check */

#define MN_ID			0x4e504e31U	/* "NPN1" */
#define MN_MC_SLOTS		32
#define MN_MAX_RING		1024
#define MN_RX_BUF_MIN		256	/* smallest MN_RX_BUF_LEN accepted */

/* MN_CTRL */
#define MN_CTRL_RX_EN		0x00000001U
#define MN_CTRL_TX_EN		0x00000002U
#define MN_CTRL_RESET		0x80000000U	/* self-clearing: rings, counters, causes */

/* MN_STATUS */
#define MN_STATUS_LINK_UP	0x00000001U
#define MN_STATUS_FULL_DUPLEX	0x00000002U
#define MN_STATUS_SPEED_MASK	0x0000FF00U	/* units of 100 Mb/s */
#define MN_STATUS_SPEED_SHIFT	8

/* MN_ICR / MN_IMS */
#define MN_INT_TX_DONE		0x00000001U	/* a descriptor with MN_TXD_RS completed */
#define MN_INT_RX_DONE		0x00000002U	/* a frame was written to the RX ring */
#define MN_INT_LINK		0x00000004U	/* MN_STATUS_LINK_UP changed */
#define MN_INT_RX_MISSED	0x00000008U	/* a frame found no free descriptor */
#define MN_INT_DMA_ERROR	0x00000010U	/* a descriptor held a bad bus address */
#define MN_INT_ALL		0x0000001FU

/*
 * Descriptors are 16 bytes, little-endian, in the ring the driver allocated
 * with NdisMAllocateSharedMemory; the device owns [HEAD, TAIL).
 */
struct mn_tx_desc {
	unsigned long long addr;	/* bus address of the buffer */
	unsigned short length;		/* bytes in this buffer */
	unsigned char cmd;		/* MN_TXD_* */
	unsigned char status;		/* MN_TXS_*, written by the device */
	unsigned short mss;		/* with MN_TXD_TSE: TCP payload per segment */
	unsigned short reserved;
};

#define MN_TXD_EOP		0x01	/* last buffer of a frame */
#define MN_TXD_IPCS		0x02	/* fill in the IPv4 header checksum */
#define MN_TXD_L4CS		0x04	/* fill in the TCP or UDP checksum */
#define MN_TXD_RS		0x08	/* report status: set DD and raise TX_DONE */
#define MN_TXD_TSE		0x10	/* TCP segmentation: cut into mss-byte segments */
#define MN_TXS_DD		0x01	/* descriptor done */
#define MN_TXS_ERR		0x02	/* frame dropped (bad length or address) */

struct mn_rx_desc {
	unsigned long long addr;	/* bus address of an MN_RX_BUF_LEN buffer */
	unsigned short length;		/* written by the device */
	unsigned char status;		/* MN_RXS_* */
	unsigned char errors;
	unsigned char csum;		/* MN_RXC_*: what MN_RXCSUM had checked */
	unsigned char reserved[3];
};

#define MN_RXS_DD		0x01
#define MN_RXS_EOP		0x02	/* always set: a frame fits one buffer */

/* MN_RXCSUM, and the RX descriptor's csum byte */
#define MN_RXCSUM_EN		0x00000001U	/* check IPv4, TCP and UDP checksums */
#define MN_RXC_IP		0x01	/* IPv4 header checksum checked */
#define MN_RXC_TCP		0x02	/* TCP checksum checked */
#define MN_RXC_UDP		0x04	/* UDP checksum checked */
#define MN_RXC_IP_BAD		0x10	/* ... and the IPv4 one was wrong */
#define MN_RXC_L4_BAD		0x20	/* ... and the TCP or UDP one was wrong */

/*
 * TCP segmentation (MN_TXD_TSE): a frame of up to MN_TSO_MAX_FRAME bytes
 * goes out as segments of at most mss payload bytes, each with its own
 * copy of the headers, IPv4 id + 1 per segment, sequence numbers advanced,
 * FIN and PSH only on the last, and every checksum filled in.
 */
#define MN_TSO_MAX_FRAME	65536

/*
 * Frames longer than MN_MAX_FRAME are dropped at transmit (TX_ERRORS, the
 * descriptor gets MN_TXS_ERR) and at receive (RX_FILTERED); the driver must
 * set MN_RX_BUF_LEN >= MN_MAX_FRAME, so a received frame never spans two
 * buffers.  Frames shorter than 60 bytes are padded with zeros on the wire.
 */

/* Fault-injection codes of the mock driver (FaultInject parameter, OID_MOCKNIC_FAULT). */
#define MN_FAULT_NONE		0
#define MN_FAULT_OVERFLOW	1	/* recurse far past any stack */
#define MN_FAULT_WILD_WRITE	2	/* write through a wild pointer */
#define MN_FAULT_HANG		3	/* spin for ever */
#define MN_FAULT_LEAK		4	/* keep one pool allocation at halt */
#define MN_FAULT_DOUBLE_COMPLETE 5	/* complete the next sent packet twice */
#define MN_FAULT_BAD_UNLOCK	6	/* release a spin lock it does not hold */
#define MN_FAULT_WRONG_IRQL	7	/* NdisMSleep at DISPATCH_LEVEL */
#define MN_FAULT_BAD_DMA	8	/* hand the device a bad bus address */
#define MN_FAULT_BUGCHECK	9	/* KeBugCheckEx */
#define MN_FAULT_HANG_SEND	10	/* spin in the next MiniportSendPackets */
#define MN_FAULT_OVERFLOW_SEND	11	/* overflow in the next MiniportSendPackets */

/* Private OIDs of the mock driver. */
#define OID_MOCKNIC_FAULT	0xFF010001U	/* set: ULONG MN_FAULT_* */
#define OID_MOCKNIC_STACK_HUNGER 0xFF010002U	/* query: ULONG KiB StackHunger added */

_Static_assert(sizeof(struct mn_tx_desc) == 16, "TX descriptors are 16 bytes");
_Static_assert(sizeof(struct mn_rx_desc) == 16, "RX descriptors are 16 bytes");

#endif /* MOCKNIC_HW_H */
