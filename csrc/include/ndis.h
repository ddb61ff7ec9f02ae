/* SPDX-License-Identifier: MIT */
/*
 * ndis.h - our declarations of the NDIS 5.1 miniport interface.
 *
 * One header serves both sides of the boundary:
 *   - drivers, compiled freestanding by x86_64-w64-mingw32-gcc into PE32+
 *     images (the Microsoft x64 calling convention is the default there);
 *   - the ndisproxy runtime, compiled by the host gcc for Linux, where every
 *     function pointer and export must be marked ms_abi explicitly (NDISAPI).
 *
 * Types are LLP64 on both: ULONG is 32 bits, pointers 64, WCHAR is a 16-bit
 * UTF-16 unit (never wchar_t, which is 32 bits on Linux).  Structures that a
 * real binary reaches into through DDK macros (the miniport block's handler
 * pointers, NDIS_PACKET, MDL) have the DDK's x64 layout; the static
 * assertions at the end pin it, and tests/test_ddk_reference.py checks it
 * against mingw-w64's DDK headers.
 *
 * Where the DDK defines a function as a macro (NdisMSendComplete,
 * NdisMIndicateReceivePacket, NdisMIndicateStatus, ...), so does this
 * header, so that images built against either see the same imports.
 * Where x64 Windows inlines privileged instructions (KeGetCurrentIrql and
 * friends read CR8; KeQuerySystemTime reads KUSER_SHARED_DATA) this header
 * declares real imports instead, which our own drivers use; an MSVC-built
 * image that inlines them has those instructions emulated by the host
 * (csrc/emulate.c).
 */
#ifndef NDIS_H
#define NDIS_H

#include "ndis_constants.h"

#ifdef _WIN32
#define NDISAPI
#else
#define NDISAPI __attribute__((ms_abi))
#endif

#ifdef NDIS_IMPORTS
#define NDIS_IMPORT __declspec(dllimport)
#else
#define NDIS_IMPORT
#endif

#define IN
#define OUT
#define OPTIONAL

#ifndef NULL
#define NULL ((void *)0)
#endif
#ifndef TRUE
#define TRUE 1
#define FALSE 0
#endif

/* ---- basic types (LLP64) ------------------------------------------------ */

typedef void VOID, *PVOID;
typedef char CHAR, *PCHAR, *PSTR;
typedef const char *PCSTR;
typedef unsigned char UCHAR, *PUCHAR, BOOLEAN, *PBOOLEAN, KIRQL, *PKIRQL;
typedef short SHORT, CSHORT;
typedef unsigned short USHORT, *PUSHORT, WCHAR, *PWCHAR, *PWSTR;
typedef const unsigned short *PCWSTR;
typedef int INT, LONG, *PLONG, NDIS_STATUS, *PNDIS_STATUS, NTSTATUS;
typedef unsigned int UINT, *PUINT, ULONG, *PULONG;
typedef long long LONGLONG, LONG64;
typedef unsigned long long ULONGLONG, ULONG64, *PULONG64, ULONG_PTR, SIZE_T,
	KSPIN_LOCK, *PKSPIN_LOCK, KAFFINITY;
typedef PVOID NDIS_HANDLE, *PNDIS_HANDLE;
typedef ULONG NDIS_OID, *PNDIS_OID;
typedef UCHAR KPROCESSOR_MODE;

typedef union _LARGE_INTEGER {
	struct {
		ULONG LowPart;
		LONG HighPart;
	} u;
	LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER, PHYSICAL_ADDRESS, NDIS_PHYSICAL_ADDRESS,
	*PNDIS_PHYSICAL_ADDRESS;

#define NdisGetPhysicalAddressLow(a)	((a).u.LowPart)
#define NdisGetPhysicalAddressHigh(a)	((a).u.HighPart)
#define NdisSetPhysicalAddressLow(a, v)	((a).u.LowPart = (v))
#define NdisSetPhysicalAddressHigh(a, v) ((a).u.HighPart = (v))

/* Length and MaximumLength count bytes; Buffer need not be NUL-terminated. */
typedef struct _UNICODE_STRING {
	USHORT Length;
	USHORT MaximumLength;
	PWSTR Buffer;
} UNICODE_STRING, *PUNICODE_STRING, NDIS_STRING, *PNDIS_STRING;
typedef const UNICODE_STRING *PCUNICODE_STRING;

typedef struct _STRING {
	USHORT Length;
	USHORT MaximumLength;
	PCHAR Buffer;
} STRING, ANSI_STRING, *PANSI_STRING, NDIS_ANSI_STRING, *PNDIS_ANSI_STRING;

#define NDIS_STRING_CONST(x)	{ sizeof(L##x) - 2, sizeof(L##x), (PWSTR)L##x }

typedef struct _LIST_ENTRY {
	struct _LIST_ENTRY *Flink;
	struct _LIST_ENTRY *Blink;
} LIST_ENTRY, *PLIST_ENTRY;

typedef struct _SINGLE_LIST_ENTRY {
	struct _SINGLE_LIST_ENTRY *Next;
} SINGLE_LIST_ENTRY, *PSINGLE_LIST_ENTRY;

/* ---- kernel objects drivers embed (opaque to them, sized as in the DDK) - */

typedef struct _DRIVER_OBJECT {
	CSHORT Type;
	CSHORT Size;
	PVOID DeviceObject;
	ULONG Flags;
	PVOID DriverStart;
	ULONG DriverSize;
	PVOID DriverSection;
	PVOID DriverExtension;
	UNICODE_STRING DriverName;
	PUNICODE_STRING HardwareDatabase;
	PVOID FastIoDispatch;
	PVOID DriverInit;
	PVOID DriverStartIo;
	PVOID DriverUnload;
	PVOID MajorFunction[28];
} DRIVER_OBJECT, *PDRIVER_OBJECT;

typedef struct _KDPC {
	UCHAR Type;
	UCHAR Importance;
	USHORT Number;
	LIST_ENTRY DpcListEntry;
	PVOID DeferredRoutine;
	PVOID DeferredContext;
	PVOID SystemArgument1;
	PVOID SystemArgument2;
	PVOID DpcData;
} KDPC, *PKDPC;

typedef struct _DISPATCHER_HEADER {
	LONG Lock;
	LONG SignalState;
	LIST_ENTRY WaitListHead;
} DISPATCHER_HEADER;

typedef struct _KTIMER {
	DISPATCHER_HEADER Header;
	ULONGLONG DueTime;
	LIST_ENTRY TimerListEntry;
	struct _KDPC *Dpc;
	ULONG Processor;
	ULONG Period;
} KTIMER, *PKTIMER;

typedef struct _KEVENT {
	DISPATCHER_HEADER Header;
} KEVENT, *PKEVENT;

typedef struct _NDIS_SPIN_LOCK {
	KSPIN_LOCK SpinLock;
	KIRQL OldIrql;
} NDIS_SPIN_LOCK, *PNDIS_SPIN_LOCK;

typedef struct _NDIS_EVENT {
	KEVENT Event;
} NDIS_EVENT, *PNDIS_EVENT;

/* ---- MDL == NDIS_BUFFER -------------------------------------------------- */

typedef struct _MDL {
	struct _MDL *Next;
	CSHORT Size;
	CSHORT MdlFlags;
	PVOID Process;
	PVOID MappedSystemVa;
	PVOID StartVa;
	ULONG ByteCount;
	ULONG ByteOffset;
} MDL, *PMDL, NDIS_BUFFER, *PNDIS_BUFFER;

#define MmGetMdlByteCount(m)		((m)->ByteCount)
#define MmGetMdlByteOffset(m)		((m)->ByteOffset)
#define MmGetMdlVirtualAddress(m)	((PVOID)((PCHAR)(m)->StartVa + (m)->ByteOffset))
#define NdisBufferLength(b)		MmGetMdlByteCount(b)
#define NdisBufferVirtualAddress(b)	((b)->MappedSystemVa)
#define NdisGetNextBuffer(cur, next)	(*(next) = (cur)->Next)

/* Every buffer ndisproxy hands out is mapped, so the DDK's Safe variant never
 * needs MmMapLockedPagesSpecifyCache; we still export that for images that
 * inline the full macro. */
#define NdisQueryBuffer(b, va, len) do {				\
	if ((va) != NULL)						\
		*(PVOID *)(va) = (b)->MappedSystemVa;			\
	*(len) = (b)->ByteCount;					\
} while (0)
#define NdisQueryBufferSafe(b, va, len, prio) NdisQueryBuffer(b, va, len)
#define NdisQueryBufferOffset(b, off, len) do {				\
	*(off) = (b)->ByteOffset;					\
	*(len) = (b)->ByteCount;					\
} while (0)

/* ---- NDIS_PACKET --------------------------------------------------------- */

typedef struct _NDIS_PACKET_PRIVATE {
	UINT PhysicalCount;
	UINT TotalLength;
	PNDIS_BUFFER Head;
	PNDIS_BUFFER Tail;
	NDIS_HANDLE Pool;
	UINT Count;
	ULONG Flags;
	BOOLEAN ValidCounts;
	UCHAR NdisPacketFlags;
	USHORT NdisPacketOobOffset;
} NDIS_PACKET_PRIVATE, *PNDIS_PACKET_PRIVATE;

typedef struct _NDIS_PACKET {
	NDIS_PACKET_PRIVATE Private;
	union {
		struct {
			UCHAR MiniportReserved[2 * sizeof(PVOID)];
			UCHAR WrapperReserved[2 * sizeof(PVOID)];
		};
		struct {
			UCHAR MiniportReservedEx[3 * sizeof(PVOID)];
			UCHAR WrapperReservedEx[sizeof(PVOID)];
		};
		struct {
			UCHAR MacReserved[4 * sizeof(PVOID)];
		};
	};
	ULONG_PTR Reserved[2];
	UCHAR ProtocolReserved[1];
} NDIS_PACKET, *PNDIS_PACKET, **PPNDIS_PACKET;

/* Out-of-band data lives NdisPacketOobOffset bytes after the packet. */
typedef struct _NDIS_PACKET_OOB_DATA {
	union {
		ULONGLONG TimeToSend;
		ULONGLONG TimeSent;
	};
	ULONGLONG TimeReceived;
	UINT HeaderSize;
	UINT SizeMediaSpecificInfo;
	PVOID MediaSpecificInformation;
	NDIS_STATUS Status;
} NDIS_PACKET_OOB_DATA, *PNDIS_PACKET_OOB_DATA;

/* Per-packet info follows the OOB block. */
typedef struct _NDIS_PACKET_EXTENSION {
	PVOID NdisPacketInfo[MaxPerPacketInfo];
} NDIS_PACKET_EXTENSION, *PNDIS_PACKET_EXTENSION;

/*
 * Task offload (OID_TCP_TASK_OFFLOAD).  The query answers a header and a
 * chain of tasks, each OffsetNextTask bytes after the one before (0 ends
 * it; OffsetFirstTask counts from the header); the set hands back the
 * chain of tasks the protocol wants enabled.
 */
typedef ULONG NDIS_TASK;		/* TcpIpChecksumNdisTask, ... */
typedef ULONG NDIS_ENCAPSULATION;	/* IEEE_802_3_Encapsulation, ... */

typedef struct _NDIS_ENCAPSULATION_FORMAT {
	NDIS_ENCAPSULATION Encapsulation;
	struct {
		ULONG FixedHeaderSize:1;
		ULONG Reserved:31;
	} Flags;
	ULONG EncapsulationHeaderSize;
} NDIS_ENCAPSULATION_FORMAT, *PNDIS_ENCAPSULATION_FORMAT;

typedef struct _NDIS_TASK_OFFLOAD_HEADER {
	ULONG Version;
	ULONG Size;
	ULONG Reserved;
	ULONG OffsetFirstTask;
	NDIS_ENCAPSULATION_FORMAT EncapsulationFormat;
} NDIS_TASK_OFFLOAD_HEADER, *PNDIS_TASK_OFFLOAD_HEADER;

typedef struct _NDIS_TASK_OFFLOAD {
	ULONG Version;
	ULONG Size;
	NDIS_TASK Task;
	ULONG OffsetNextTask;
	ULONG TaskBufferLength;
	UCHAR TaskBuffer[1];
} NDIS_TASK_OFFLOAD, *PNDIS_TASK_OFFLOAD;

typedef struct _NDIS_TASK_TCP_IP_CHECKSUM {
	struct {
		ULONG IpOptionsSupported:1;
		ULONG TcpOptionsSupported:1;
		ULONG TcpChecksum:1;
		ULONG UdpChecksum:1;
		ULONG IpChecksum:1;
	} V4Transmit, V4Receive;
	struct {
		ULONG IpOptionsSupported:1;
		ULONG TcpOptionsSupported:1;
		ULONG TcpChecksum:1;
		ULONG UdpChecksum:1;
	} V6Transmit, V6Receive;
} NDIS_TASK_TCP_IP_CHECKSUM, *PNDIS_TASK_TCP_IP_CHECKSUM;

typedef struct _NDIS_TASK_TCP_LARGE_SEND {
	ULONG Version;			/* NDIS_TASK_TCP_LARGE_SEND_V0 */
	ULONG MaxOffLoadSize;
	ULONG MinSegmentCount;
	BOOLEAN TcpOptions;
	BOOLEAN IpOptions;
} NDIS_TASK_TCP_LARGE_SEND, *PNDIS_TASK_TCP_LARGE_SEND;

/*
 * NdisPacketInfo[TcpIpChecksumPacketInfo], cast to and from a PVOID:
 * what to fill in on a send, what the NIC checked on a receive.  On a send,
 * NdisPacketInfo[TcpLargeSendPacketInfo] is the MSS; at completion the
 * miniport writes the TCP payload bytes it sent into the same slot.
 */
typedef struct _NDIS_TCP_IP_CHECKSUM_PACKET_INFO {
	union {
		struct {
			ULONG NdisPacketChecksumV4:1;
			ULONG NdisPacketChecksumV6:1;
			ULONG NdisPacketTcpChecksum:1;
			ULONG NdisPacketUdpChecksum:1;
			ULONG NdisPacketIpChecksum:1;
		} Transmit;
		struct {
			ULONG NdisPacketTcpChecksumFailed:1;
			ULONG NdisPacketUdpChecksumFailed:1;
			ULONG NdisPacketIpChecksumFailed:1;
			ULONG NdisPacketTcpChecksumSucceeded:1;
			ULONG NdisPacketUdpChecksumSucceeded:1;
			ULONG NdisPacketIpChecksumSucceeded:1;
			ULONG NdisPacketLoopback:1;
		} Receive;
		ULONG Value;
	};
} NDIS_TCP_IP_CHECKSUM_PACKET_INFO, *PNDIS_TCP_IP_CHECKSUM_PACKET_INFO;

#define NDIS_OOB_DATA_FROM_PACKET(p)					\
	((PNDIS_PACKET_OOB_DATA)((PUCHAR)(p) + (p)->Private.NdisPacketOobOffset))
#define NDIS_PACKET_EXTENSION_FROM_PACKET(p)				\
	((PNDIS_PACKET_EXTENSION)((PUCHAR)(p) +				\
		(p)->Private.NdisPacketOobOffset + sizeof(NDIS_PACKET_OOB_DATA)))
#define NDIS_PER_PACKET_INFO_FROM_PACKET(p, id)				\
	(NDIS_PACKET_EXTENSION_FROM_PACKET(p)->NdisPacketInfo[(id)])
#define NDIS_GET_PACKET_STATUS(p)	(NDIS_OOB_DATA_FROM_PACKET(p)->Status)
#define NDIS_SET_PACKET_STATUS(p, s)	(NDIS_OOB_DATA_FROM_PACKET(p)->Status = (s))
#define NDIS_GET_PACKET_HEADER_SIZE(p)	(NDIS_OOB_DATA_FROM_PACKET(p)->HeaderSize)
#define NDIS_SET_PACKET_HEADER_SIZE(p, s) (NDIS_OOB_DATA_FROM_PACKET(p)->HeaderSize = (s))

#define NdisGetPacketFlags(p)		((p)->Private.Flags)
#define NdisSetPacketFlags(p, f)	((p)->Private.Flags |= (f))
#define NdisClearPacketFlags(p, f)	((p)->Private.Flags &= ~(f))

#define NdisReinitializePacket(p) do {					\
	(p)->Private.Head = NULL;					\
	(p)->Private.ValidCounts = FALSE;				\
} while (0)

#define NdisChainBufferAtFront(p, b) do {				\
	PNDIS_BUFFER _tail = (b);					\
	while (_tail->Next != NULL)					\
		_tail = _tail->Next;					\
	if ((p)->Private.Head == NULL)					\
		(p)->Private.Tail = _tail;				\
	_tail->Next = (p)->Private.Head;				\
	(p)->Private.Head = (b);					\
	(p)->Private.ValidCounts = FALSE;				\
} while (0)

#define NdisChainBufferAtBack(p, b) do {				\
	PNDIS_BUFFER _tail = (b);					\
	while (_tail->Next != NULL)					\
		_tail = _tail->Next;					\
	if ((p)->Private.Head != NULL)					\
		(p)->Private.Tail->Next = (b);				\
	else								\
		(p)->Private.Head = (b);				\
	(p)->Private.Tail = _tail;					\
	(p)->Private.ValidCounts = FALSE;				\
} while (0)

/* The DDK's NdisQueryPacket recomputes the counts when they are stale. */
static inline void ndis_query_packet(PNDIS_PACKET p, PUINT phys, PUINT count,
				     PNDIS_BUFFER *first, PUINT total)
{
	if (!p->Private.ValidCounts) {
		PNDIS_BUFFER b;
		UINT n = 0, len = 0;

		for (b = p->Private.Head; b != NULL; b = b->Next) {
			n++;
			len += b->ByteCount;
		}
		p->Private.PhysicalCount = n;
		p->Private.Count = n;
		p->Private.TotalLength = len;
		p->Private.ValidCounts = TRUE;
	}
	if (phys)
		*phys = p->Private.PhysicalCount;
	if (count)
		*count = p->Private.Count;
	if (first)
		*first = p->Private.Head;
	if (total)
		*total = p->Private.TotalLength;
}
#define NdisQueryPacket(p, phys, count, first, total)			\
	ndis_query_packet((p), (phys), (count), (first), (total))
#define NdisQueryPacketLength(p, total)					\
	ndis_query_packet((p), NULL, NULL, NULL, (total))

/* ---- configuration ------------------------------------------------------- */

typedef int NDIS_PARAMETER_TYPE, *PNDIS_PARAMETER_TYPE;

typedef struct _BINARY_DATA {
	USHORT Length;
	PVOID Buffer;
} BINARY_DATA;

typedef struct _NDIS_CONFIGURATION_PARAMETER {
	NDIS_PARAMETER_TYPE ParameterType;
	union {
		ULONG IntegerData;
		NDIS_STRING StringData;
		BINARY_DATA BinaryData;
	} ParameterData;
} NDIS_CONFIGURATION_PARAMETER, *PNDIS_CONFIGURATION_PARAMETER;

typedef int NDIS_MEDIUM, *PNDIS_MEDIUM;
typedef int NDIS_INTERFACE_TYPE;
typedef int NDIS_HARDWARE_STATUS;
typedef int NDIS_MEDIA_STATE;
typedef int KINTERRUPT_MODE, NDIS_INTERRUPT_MODE;
typedef int NDIS_INTERRUPT_TYPE;

/* ---- miniport entry points (what the driver implements) ------------------ */

typedef BOOLEAN (NDISAPI *W_CHECK_FOR_HANG_HANDLER)(NDIS_HANDLE ctx);
typedef VOID (NDISAPI *W_DISABLE_INTERRUPT_HANDLER)(NDIS_HANDLE ctx);
typedef VOID (NDISAPI *W_ENABLE_INTERRUPT_HANDLER)(NDIS_HANDLE ctx);
typedef VOID (NDISAPI *W_HALT_HANDLER)(NDIS_HANDLE ctx);
typedef VOID (NDISAPI *W_HANDLE_INTERRUPT_HANDLER)(NDIS_HANDLE ctx);
typedef NDIS_STATUS (NDISAPI *W_INITIALIZE_HANDLER)(PNDIS_STATUS open_error,
		PUINT selected_medium, PNDIS_MEDIUM media, UINT media_count,
		NDIS_HANDLE adapter_handle, NDIS_HANDLE config_handle);
typedef VOID (NDISAPI *W_ISR_HANDLER)(PBOOLEAN recognized,
		PBOOLEAN queue_dpc, NDIS_HANDLE ctx);
typedef NDIS_STATUS (NDISAPI *W_QUERY_INFORMATION_HANDLER)(NDIS_HANDLE ctx,
		NDIS_OID oid, PVOID buf, ULONG len, PULONG written,
		PULONG needed);
typedef NDIS_STATUS (NDISAPI *W_RECONFIGURE_HANDLER)(PNDIS_STATUS open_error,
		NDIS_HANDLE ctx, NDIS_HANDLE config_handle);
typedef NDIS_STATUS (NDISAPI *W_RESET_HANDLER)(PBOOLEAN addressing_reset,
		NDIS_HANDLE ctx);
typedef NDIS_STATUS (NDISAPI *W_SEND_HANDLER)(NDIS_HANDLE ctx,
		PNDIS_PACKET packet, UINT flags);
typedef NDIS_STATUS (NDISAPI *W_SET_INFORMATION_HANDLER)(NDIS_HANDLE ctx,
		NDIS_OID oid, PVOID buf, ULONG len, PULONG read,
		PULONG needed);
typedef NDIS_STATUS (NDISAPI *W_TRANSFER_DATA_HANDLER)(PNDIS_PACKET packet,
		PUINT transferred, NDIS_HANDLE ctx, NDIS_HANDLE rx_ctx,
		UINT offset, UINT len);
typedef VOID (NDISAPI *W_RETURN_PACKET_HANDLER)(NDIS_HANDLE ctx,
		PNDIS_PACKET packet);
typedef VOID (NDISAPI *W_SEND_PACKETS_HANDLER)(NDIS_HANDLE ctx,
		PPNDIS_PACKET packets, UINT count);
typedef VOID (NDISAPI *W_ALLOCATE_COMPLETE_HANDLER)(NDIS_HANDLE ctx,
		PVOID va, PNDIS_PHYSICAL_ADDRESS pa, ULONG len, PVOID context);
typedef VOID (NDISAPI *W_CANCEL_SEND_PACKETS_HANDLER)(NDIS_HANDLE ctx,
		PVOID cancel_id);
typedef VOID (NDISAPI *W_PNP_EVENT_NOTIFY_HANDLER)(NDIS_HANDLE ctx,
		int event, PVOID buf, ULONG len);
typedef VOID (NDISAPI *W_MINIPORT_SHUTDOWN)(PVOID ctx);
typedef VOID (NDISAPI *ADAPTER_SHUTDOWN_HANDLER)(PVOID ctx);

typedef struct _NDIS51_MINIPORT_CHARACTERISTICS {
	UCHAR MajorNdisVersion;
	UCHAR MinorNdisVersion;
	USHORT Filler;
	UINT Reserved;
	W_CHECK_FOR_HANG_HANDLER CheckForHangHandler;
	W_DISABLE_INTERRUPT_HANDLER DisableInterruptHandler;
	W_ENABLE_INTERRUPT_HANDLER EnableInterruptHandler;
	W_HALT_HANDLER HaltHandler;
	W_HANDLE_INTERRUPT_HANDLER HandleInterruptHandler;
	W_INITIALIZE_HANDLER InitializeHandler;
	W_ISR_HANDLER ISRHandler;
	W_QUERY_INFORMATION_HANDLER QueryInformationHandler;
	W_RECONFIGURE_HANDLER ReconfigureHandler;
	W_RESET_HANDLER ResetHandler;
	W_SEND_HANDLER SendHandler;
	W_SET_INFORMATION_HANDLER SetInformationHandler;
	W_TRANSFER_DATA_HANDLER TransferDataHandler;
	/* NDIS 4.0 */
	W_RETURN_PACKET_HANDLER ReturnPacketHandler;
	W_SEND_PACKETS_HANDLER SendPacketsHandler;
	W_ALLOCATE_COMPLETE_HANDLER AllocateCompleteHandler;
	/* NDIS 5.0 (connection-oriented; unused by Ethernet miniports) */
	PVOID CoCreateVcHandler;
	PVOID CoDeleteVcHandler;
	PVOID CoActivateVcHandler;
	PVOID CoDeactivateVcHandler;
	PVOID CoSendPacketsHandler;
	PVOID CoRequestHandler;
	/* NDIS 5.1 */
	W_CANCEL_SEND_PACKETS_HANDLER CancelSendPacketsHandler;
	W_PNP_EVENT_NOTIFY_HANDLER PnPEventNotifyHandler;
	W_MINIPORT_SHUTDOWN AdapterShutdownHandler;
	PVOID Reserved1;
	PVOID Reserved2;
	PVOID Reserved3;
	PVOID Reserved4;
} NDIS51_MINIPORT_CHARACTERISTICS, NDIS_MINIPORT_CHARACTERISTICS,
	*PNDIS_MINIPORT_CHARACTERISTICS;

/* ---- the miniport block: handlers behind the DDK's macros --------------- */

typedef struct _NDIS_MINIPORT_BLOCK NDIS_MINIPORT_BLOCK, *PNDIS_MINIPORT_BLOCK;

typedef VOID (NDISAPI *ETH_RCV_INDICATE_HANDLER)(PVOID filter,
		NDIS_HANDLE rx_ctx, PCHAR address, PVOID header,
		UINT header_len, PVOID lookahead, UINT lookahead_len,
		UINT packet_len);
typedef VOID (NDISAPI *ETH_RCV_COMPLETE_HANDLER)(PVOID filter);
typedef VOID (NDISAPI *PACKET_INDICATE_HANDLER)(NDIS_HANDLE h,
		PPNDIS_PACKET packets, UINT count);
typedef VOID (NDISAPI *NDIS_M_SEND_COMPLETE_HANDLER)(NDIS_HANDLE h,
		PNDIS_PACKET packet, NDIS_STATUS status);
typedef VOID (NDISAPI *NDIS_M_SEND_RESOURCES_HANDLER)(NDIS_HANDLE h);
typedef VOID (NDISAPI *NDIS_M_RESET_COMPLETE_HANDLER)(NDIS_HANDLE h,
		NDIS_STATUS status, BOOLEAN addressing_reset);
typedef VOID (NDISAPI *NDIS_M_STATUS_HANDLER)(NDIS_HANDLE h,
		NDIS_STATUS status, PVOID buf, UINT len);
typedef VOID (NDISAPI *NDIS_M_STS_COMPLETE_HANDLER)(NDIS_HANDLE h);
typedef VOID (NDISAPI *NDIS_M_TD_COMPLETE_HANDLER)(NDIS_HANDLE h,
		PNDIS_PACKET packet, NDIS_STATUS status, UINT transferred);
typedef VOID (NDISAPI *NDIS_M_REQ_COMPLETE_HANDLER)(NDIS_HANDLE h,
		NDIS_STATUS status);

/*
 * Only the fields a driver may touch through DDK macros are named; the rest
 * is NDIS's private state, which ours keeps elsewhere.  Offsets are the
 * DDK's x64 ones.
 */
struct _NDIS_MINIPORT_BLOCK {
	PVOID Signature;
	PNDIS_MINIPORT_BLOCK NextMiniport;
	PVOID DriverHandle;
	NDIS_HANDLE MiniportAdapterContext;
	UCHAR PrivateBeforeFilters[400 - 32];
	PVOID EthDB;
	PVOID TrDB;
	PVOID FddiDB;
	PVOID ArcDB;
	PACKET_INDICATE_HANDLER PacketIndicateHandler;
	NDIS_M_SEND_COMPLETE_HANDLER SendCompleteHandler;
	NDIS_M_SEND_RESOURCES_HANDLER SendResourcesHandler;
	NDIS_M_RESET_COMPLETE_HANDLER ResetCompleteHandler;
	UCHAR PrivateBeforeEth[640 - 464];
	ETH_RCV_INDICATE_HANDLER EthRxIndicateHandler;
	PVOID TrRxIndicateHandler;
	PVOID FddiRxIndicateHandler;
	ETH_RCV_COMPLETE_HANDLER EthRxCompleteHandler;
	PVOID TrRxCompleteHandler;
	PVOID FddiRxCompleteHandler;
	NDIS_M_STATUS_HANDLER StatusHandler;
	NDIS_M_STS_COMPLETE_HANDLER StatusCompleteHandler;
	NDIS_M_TD_COMPLETE_HANDLER TDCompleteHandler;
	NDIS_M_REQ_COMPLETE_HANDLER QueryCompleteHandler;
	NDIS_M_REQ_COMPLETE_HANDLER SetCompleteHandler;
	PVOID WanSendCompleteHandler;
	PVOID WanRcvHandler;
	PVOID WanRcvCompleteHandler;
};

#define NdisMSendComplete(h, p, s)					\
	(*((PNDIS_MINIPORT_BLOCK)(h))->SendCompleteHandler)((h), (p), (s))
#define NdisMSendResourcesAvailable(h)					\
	(*((PNDIS_MINIPORT_BLOCK)(h))->SendResourcesHandler)(h)
#define NdisMResetComplete(h, s, a)					\
	(*((PNDIS_MINIPORT_BLOCK)(h))->ResetCompleteHandler)((h), (s), (a))
#define NdisMIndicateReceivePacket(h, pp, n)				\
	(*((PNDIS_MINIPORT_BLOCK)(h))->PacketIndicateHandler)((h), (pp), (n))
#define NdisMIndicateStatus(h, s, b, l)					\
	(*((PNDIS_MINIPORT_BLOCK)(h))->StatusHandler)((h), (s), (b), (l))
#define NdisMIndicateStatusComplete(h)					\
	(*((PNDIS_MINIPORT_BLOCK)(h))->StatusCompleteHandler)(h)
#define NdisMQueryInformationComplete(h, s)				\
	(*((PNDIS_MINIPORT_BLOCK)(h))->QueryCompleteHandler)((h), (s))
#define NdisMSetInformationComplete(h, s)				\
	(*((PNDIS_MINIPORT_BLOCK)(h))->SetCompleteHandler)((h), (s))
#define NdisMTransferDataComplete(h, p, s, n)				\
	(*((PNDIS_MINIPORT_BLOCK)(h))->TDCompleteHandler)((h), (p), (s), (n))
/* The DDK passes the filter database, not the block, to the Eth handlers. */
#define NdisMEthIndicateReceive(h, ctx, hdr, hlen, la, lalen, plen)	\
	(*((PNDIS_MINIPORT_BLOCK)(h))->EthRxIndicateHandler)(		\
		((PNDIS_MINIPORT_BLOCK)(h))->EthDB, (ctx), (PCHAR)(hdr),\
		(hdr), (hlen), (la), (lalen), (plen))
#define NdisMEthIndicateReceiveComplete(h)				\
	(*((PNDIS_MINIPORT_BLOCK)(h))->EthRxCompleteHandler)(		\
		((PNDIS_MINIPORT_BLOCK)(h))->EthDB)

/* ---- objects the driver allocates and NDIS owns the inside of ----------- */

typedef VOID (NDISAPI *PNDIS_TIMER_FUNCTION)(PVOID system1, PVOID ctx,
		PVOID system2, PVOID system3);

typedef struct _NDIS_TIMER {
	KTIMER Timer;
	KDPC Dpc;
} NDIS_TIMER, *PNDIS_TIMER;

typedef struct _NDIS_MINIPORT_TIMER {
	KTIMER Timer;
	KDPC Dpc;
	PNDIS_TIMER_FUNCTION MiniportTimerFunction;
	PVOID MiniportTimerContext;
	PNDIS_MINIPORT_BLOCK Miniport;
	struct _NDIS_MINIPORT_TIMER *NextTimer;
} NDIS_MINIPORT_TIMER, *PNDIS_MINIPORT_TIMER;

typedef struct _NDIS_MINIPORT_INTERRUPT {
	PVOID InterruptObject;
	KSPIN_LOCK DpcCountLock;
	PVOID Reserved;
	W_ISR_HANDLER MiniportIsr;
	W_HANDLE_INTERRUPT_HANDLER MiniportDpc;
	KDPC InterruptDpc;
	PNDIS_MINIPORT_BLOCK Miniport;
	UCHAR DpcCount;
	BOOLEAN Filler1;
	KEVENT DpcsCompletedEvent;
	BOOLEAN SharedInterrupt;
	BOOLEAN IsrRequested;
} NDIS_MINIPORT_INTERRUPT, *PNDIS_MINIPORT_INTERRUPT;

typedef BOOLEAN (NDISAPI *PKSYNCHRONIZE_ROUTINE)(PVOID ctx);

struct _NDIS_WORK_ITEM;
typedef VOID (NDISAPI *NDIS_PROC)(struct _NDIS_WORK_ITEM *item, PVOID ctx);
typedef struct _NDIS_WORK_ITEM {
	PVOID Context;
	NDIS_PROC Routine;
	UCHAR WrapperReserved[8 * sizeof(PVOID)];
} NDIS_WORK_ITEM, *PNDIS_WORK_ITEM;

#define NdisInitializeWorkItem(item, routine, ctx) do {			\
	(item)->Context = (ctx);					\
	(item)->Routine = (routine);					\
} while (0)

/* ---- NDIS.SYS exports ----------------------------------------------------- */

#define NDIS_FN(ret) NDIS_IMPORT ret NDISAPI

NDIS_FN(VOID) NdisMInitializeWrapper(PNDIS_HANDLE wrapper, PVOID system1,
		PVOID system2, PVOID system3);
NDIS_FN(NDIS_STATUS) NdisMRegisterMiniport(NDIS_HANDLE wrapper,
		PNDIS_MINIPORT_CHARACTERISTICS chars, UINT len);
NDIS_FN(VOID) NdisTerminateWrapper(NDIS_HANDLE wrapper, PVOID system);
NDIS_FN(VOID) NdisMSetAttributesEx(NDIS_HANDLE adapter, NDIS_HANDLE ctx,
		UINT check_for_hang_secs, ULONG attributes,
		NDIS_INTERFACE_TYPE bus);
NDIS_FN(VOID) NdisMSetAttributes(NDIS_HANDLE adapter, NDIS_HANDLE ctx,
		BOOLEAN bus_master, NDIS_INTERFACE_TYPE bus);

NDIS_FN(VOID) NdisOpenConfiguration(PNDIS_STATUS status, PNDIS_HANDLE config,
		NDIS_HANDLE wrapper_config);
NDIS_FN(VOID) NdisReadConfiguration(PNDIS_STATUS status,
		PNDIS_CONFIGURATION_PARAMETER *value, NDIS_HANDLE config,
		PNDIS_STRING keyword, NDIS_PARAMETER_TYPE type);
NDIS_FN(VOID) NdisWriteConfiguration(PNDIS_STATUS status, NDIS_HANDLE config,
		PNDIS_STRING keyword, PNDIS_CONFIGURATION_PARAMETER value);
NDIS_FN(VOID) NdisCloseConfiguration(NDIS_HANDLE config);
NDIS_FN(VOID) NdisReadNetworkAddress(PNDIS_STATUS status, PVOID *address,
		PUINT len, NDIS_HANDLE config);

NDIS_FN(NDIS_STATUS) NdisAllocateMemoryWithTag(PVOID *va, UINT len,
		ULONG tag);
NDIS_FN(NDIS_STATUS) NdisAllocateMemory(PVOID *va, UINT len, UINT flags,
		NDIS_PHYSICAL_ADDRESS highest);
NDIS_FN(VOID) NdisFreeMemory(PVOID va, UINT len, UINT flags);
NDIS_FN(VOID) NdisMAllocateSharedMemory(NDIS_HANDLE adapter, ULONG len,
		BOOLEAN cached, PVOID *va, PNDIS_PHYSICAL_ADDRESS pa);
NDIS_FN(VOID) NdisMFreeSharedMemory(NDIS_HANDLE adapter, ULONG len,
		BOOLEAN cached, PVOID va, NDIS_PHYSICAL_ADDRESS pa);
NDIS_FN(NDIS_STATUS) NdisMAllocateMapRegisters(NDIS_HANDLE adapter,
		UINT dma_channel, UCHAR dma_size, ULONG count, ULONG max_size);
NDIS_FN(VOID) NdisMFreeMapRegisters(NDIS_HANDLE adapter);
NDIS_FN(ULONG) NdisGetSharedDataAlignment(VOID);

NDIS_FN(VOID) NdisAllocateSpinLock(PNDIS_SPIN_LOCK lock);
NDIS_FN(VOID) NdisFreeSpinLock(PNDIS_SPIN_LOCK lock);
NDIS_FN(VOID) NdisAcquireSpinLock(PNDIS_SPIN_LOCK lock);
NDIS_FN(VOID) NdisReleaseSpinLock(PNDIS_SPIN_LOCK lock);
NDIS_FN(VOID) NdisDprAcquireSpinLock(PNDIS_SPIN_LOCK lock);
NDIS_FN(VOID) NdisDprReleaseSpinLock(PNDIS_SPIN_LOCK lock);

NDIS_FN(VOID) NdisAllocatePacketPool(PNDIS_STATUS status, PNDIS_HANDLE pool,
		UINT descriptors, UINT protocol_reserved);
NDIS_FN(VOID) NdisAllocatePacketPoolEx(PNDIS_STATUS status, PNDIS_HANDLE pool,
		UINT descriptors, UINT overflow, UINT protocol_reserved);
NDIS_FN(VOID) NdisFreePacketPool(NDIS_HANDLE pool);
NDIS_FN(UINT) NdisPacketPoolUsage(NDIS_HANDLE pool);
NDIS_FN(VOID) NdisAllocatePacket(PNDIS_STATUS status, PNDIS_PACKET *packet,
		NDIS_HANDLE pool);
NDIS_FN(VOID) NdisFreePacket(PNDIS_PACKET packet);
NDIS_FN(VOID) NdisAllocateBufferPool(PNDIS_STATUS status, PNDIS_HANDLE pool,
		UINT descriptors);
NDIS_FN(VOID) NdisFreeBufferPool(NDIS_HANDLE pool);
NDIS_FN(VOID) NdisAllocateBuffer(PNDIS_STATUS status, PNDIS_BUFFER *buffer,
		NDIS_HANDLE pool, PVOID va, UINT len);
NDIS_FN(VOID) NdisFreeBuffer(PNDIS_BUFFER buffer);
NDIS_FN(VOID) NdisAdjustBufferLength(PNDIS_BUFFER buffer, UINT len);
NDIS_FN(VOID) NdisGetFirstBufferFromPacketSafe(PNDIS_PACKET packet,
		PNDIS_BUFFER *first, PVOID *va, PUINT first_len,
		PUINT total_len, int priority);
NDIS_FN(VOID) NdisCopyFromPacketToPacket(PNDIS_PACKET dst, UINT dst_off,
		UINT len, PNDIS_PACKET src, UINT src_off, PUINT copied);

NDIS_FN(NDIS_STATUS) NdisMRegisterInterrupt(PNDIS_MINIPORT_INTERRUPT intr,
		NDIS_HANDLE adapter, UINT vector, UINT level,
		BOOLEAN request_isr, BOOLEAN shared, NDIS_INTERRUPT_MODE mode);
NDIS_FN(VOID) NdisMDeregisterInterrupt(PNDIS_MINIPORT_INTERRUPT intr);
NDIS_FN(BOOLEAN) NdisMSynchronizeWithInterrupt(PNDIS_MINIPORT_INTERRUPT intr,
		PVOID routine, PVOID ctx);

NDIS_FN(VOID) NdisMInitializeTimer(PNDIS_MINIPORT_TIMER timer,
		NDIS_HANDLE adapter, PNDIS_TIMER_FUNCTION fn, PVOID ctx);
NDIS_FN(VOID) NdisMSetTimer(PNDIS_MINIPORT_TIMER timer, UINT ms);
NDIS_FN(VOID) NdisMSetPeriodicTimer(PNDIS_MINIPORT_TIMER timer, UINT ms);
NDIS_FN(VOID) NdisMCancelTimer(PNDIS_MINIPORT_TIMER timer,
		PBOOLEAN cancelled);
NDIS_FN(VOID) NdisInitializeTimer(PNDIS_TIMER timer, PNDIS_TIMER_FUNCTION fn,
		PVOID ctx);
NDIS_FN(VOID) NdisSetTimer(PNDIS_TIMER timer, UINT ms);
NDIS_FN(VOID) NdisCancelTimer(PNDIS_TIMER timer, PBOOLEAN cancelled);

NDIS_FN(VOID) NdisStallExecution(UINT us);
NDIS_FN(VOID) NdisMSleep(ULONG us);
NDIS_FN(VOID) NdisGetCurrentSystemTime(PLARGE_INTEGER time);
NDIS_FN(VOID) NdisWriteErrorLogEntry(NDIS_HANDLE adapter, ULONG code,
		ULONG count, ...);
NDIS_FN(VOID) NdisMRegisterAdapterShutdownHandler(NDIS_HANDLE adapter,
		PVOID ctx, ADAPTER_SHUTDOWN_HANDLER fn);
NDIS_FN(VOID) NdisMDeregisterAdapterShutdownHandler(NDIS_HANDLE adapter);
NDIS_FN(NDIS_STATUS) NdisMRegisterIoPortRange(PVOID *port_offset,
		NDIS_HANDLE adapter, UINT port, UINT count);
NDIS_FN(VOID) NdisMDeregisterIoPortRange(NDIS_HANDLE adapter, UINT port,
		UINT count, PVOID port_offset);
NDIS_FN(VOID) NdisInitializeEvent(PNDIS_EVENT event);
NDIS_FN(VOID) NdisSetEvent(PNDIS_EVENT event);
NDIS_FN(VOID) NdisResetEvent(PNDIS_EVENT event);
NDIS_FN(BOOLEAN) NdisWaitEvent(PNDIS_EVENT event, UINT ms);
NDIS_FN(VOID) NdisInitializeString(PNDIS_STRING dst, PUCHAR src);
NDIS_FN(VOID) NdisInitUnicodeString(PNDIS_STRING dst, PCWSTR src);
NDIS_FN(BOOLEAN) NdisEqualString(PNDIS_STRING a, PNDIS_STRING b,
		BOOLEAN case_insensitive);
NDIS_FN(NDIS_STATUS) NdisScheduleWorkItem(PNDIS_WORK_ITEM item);

#define NdisMoveMemory(d, s, n)		memcpy((d), (s), (n))
#define NdisZeroMemory(d, n)		memset((d), 0, (n))
#define NdisFillMemory(d, n, v)		memset((d), (v), (n))
#define NdisEqualMemory(a, b, n)	(RtlCompareMemory((a), (b), (n)) == (n))
#define NdisMInitializeWrapperCompat	NdisMInitializeWrapper
#define NdisRawReadPortUlong(p, d)	(*(d) = READ_PORT_ULONG((PULONG)(p)))
#define NdisRawWritePortUlong(p, d)	WRITE_PORT_ULONG((PULONG)(p), (d))
#define NdisRawReadPortUshort(p, d)	(*(d) = READ_PORT_USHORT((PUSHORT)(p)))
#define NdisRawWritePortUshort(p, d)	WRITE_PORT_USHORT((PUSHORT)(p), (d))
#define NdisRawReadPortUchar(p, d)	(*(d) = READ_PORT_UCHAR((PUCHAR)(p)))
#define NdisRawWritePortUchar(p, d)	WRITE_PORT_UCHAR((PUCHAR)(p), (d))

/* ---- ntoskrnl.exe exports ------------------------------------------------- */

/* The runtime implements these under other names: glibc owns them there. */
#ifdef _WIN32
NDIS_FN(PVOID) memcpy(PVOID d, const void *s, SIZE_T n);
NDIS_FN(PVOID) memmove(PVOID d, const void *s, SIZE_T n);
NDIS_FN(PVOID) memset(PVOID d, int c, SIZE_T n);
NDIS_FN(int) memcmp(const void *a, const void *b, SIZE_T n);
NDIS_FN(SIZE_T) strlen(PCSTR s);
#endif
NDIS_FN(SIZE_T) RtlCompareMemory(const void *a, const void *b, SIZE_T n);
NDIS_FN(ULONG) DbgPrint(PCSTR format, ...);
NDIS_FN(ULONG) DbgPrintEx(ULONG component, ULONG level, PCSTR format, ...);
NDIS_FN(VOID) KeQuerySystemTime(PLARGE_INTEGER time);
NDIS_FN(VOID) KeQueryTickCount(PLARGE_INTEGER ticks);
NDIS_FN(ULONG) KeQueryTimeIncrement(VOID);
NDIS_FN(VOID) RtlInitUnicodeString(PUNICODE_STRING dst, PCWSTR src);
NDIS_FN(VOID) RtlInitAnsiString(PANSI_STRING dst, PCSTR src);
NDIS_FN(VOID) RtlCopyUnicodeString(PUNICODE_STRING dst, PCUNICODE_STRING src);
NDIS_FN(BOOLEAN) RtlEqualUnicodeString(PCUNICODE_STRING a,
		PCUNICODE_STRING b, BOOLEAN case_insensitive);
NDIS_FN(PVOID) ExAllocatePoolWithTag(int pool_type, SIZE_T len, ULONG tag);
NDIS_FN(VOID) ExFreePoolWithTag(PVOID va, ULONG tag);
NDIS_FN(VOID) ExFreePool(PVOID va);
NDIS_FN(VOID) KeInitializeSpinLock(PKSPIN_LOCK lock);
NDIS_FN(VOID) KeBugCheckEx(ULONG code, ULONG_PTR p1, ULONG_PTR p2,
		ULONG_PTR p3, ULONG_PTR p4);

/* ---- HAL.dll exports ------------------------------------------------------ */

NDIS_FN(UCHAR) READ_PORT_UCHAR(PUCHAR port);
NDIS_FN(USHORT) READ_PORT_USHORT(PUSHORT port);
NDIS_FN(ULONG) READ_PORT_ULONG(PULONG port);
NDIS_FN(VOID) WRITE_PORT_UCHAR(PUCHAR port, UCHAR value);
NDIS_FN(VOID) WRITE_PORT_USHORT(PUSHORT port, USHORT value);
NDIS_FN(VOID) WRITE_PORT_ULONG(PULONG port, ULONG value);
NDIS_FN(VOID) KeStallExecutionProcessor(ULONG us);
NDIS_FN(LARGE_INTEGER) KeQueryPerformanceCounter(PLARGE_INTEGER freq);
NDIS_FN(KIRQL) KeGetCurrentIrql(VOID);
NDIS_FN(KIRQL) KfRaiseIrql(KIRQL irql);
NDIS_FN(VOID) KfLowerIrql(KIRQL irql);

#define KeRaiseIrql(new, old)	(*(old) = KfRaiseIrql(new))
#define KeLowerIrql(irql)	KfLowerIrql(irql)

/* ---- the DDK's x64 layout ------------------------------------------------ */

#define NDIS_LAYOUT(type, field, off)					\
	_Static_assert(__builtin_offsetof(type, field) == (off),	\
		       #type "." #field " must sit at the DDK's x64 offset")
#define NDIS_SIZE(type, size)						\
	_Static_assert(sizeof(type) == (size), #type " must have the DDK's x64 size")

NDIS_SIZE(UNICODE_STRING, 16);
NDIS_SIZE(NDIS_PHYSICAL_ADDRESS, 8);
NDIS_SIZE(NDIS_SPIN_LOCK, 16);
NDIS_SIZE(MDL, 48);
NDIS_LAYOUT(MDL, MappedSystemVa, 24);
NDIS_LAYOUT(MDL, ByteOffset, 44);
NDIS_SIZE(NDIS_PACKET_PRIVATE, 48);
NDIS_LAYOUT(NDIS_PACKET_PRIVATE, NdisPacketOobOffset, 42);
NDIS_SIZE(NDIS_PACKET, 104);
NDIS_LAYOUT(NDIS_PACKET, MiniportReserved, 48);
NDIS_LAYOUT(NDIS_PACKET, ProtocolReserved, 96);
NDIS_SIZE(NDIS_PACKET_OOB_DATA, 40);
NDIS_SIZE(NDIS_TASK_OFFLOAD_HEADER, 28);
NDIS_SIZE(NDIS_TASK_OFFLOAD, 24);
NDIS_SIZE(NDIS_TASK_TCP_IP_CHECKSUM, 16);
NDIS_SIZE(NDIS_TASK_TCP_LARGE_SEND, 16);
NDIS_SIZE(NDIS_TCP_IP_CHECKSUM_PACKET_INFO, 4);
NDIS_SIZE(NDIS_CONFIGURATION_PARAMETER, 24);
NDIS_SIZE(NDIS51_MINIPORT_CHARACTERISTICS, 240);
NDIS_LAYOUT(NDIS_MINIPORT_BLOCK, MiniportAdapterContext, 24);
NDIS_LAYOUT(NDIS_MINIPORT_BLOCK, EthDB, 400);
NDIS_LAYOUT(NDIS_MINIPORT_BLOCK, PacketIndicateHandler, 432);
NDIS_LAYOUT(NDIS_MINIPORT_BLOCK, SendCompleteHandler, 440);
NDIS_LAYOUT(NDIS_MINIPORT_BLOCK, ResetCompleteHandler, 456);
NDIS_LAYOUT(NDIS_MINIPORT_BLOCK, EthRxIndicateHandler, 640);
NDIS_LAYOUT(NDIS_MINIPORT_BLOCK, EthRxCompleteHandler, 664);
NDIS_LAYOUT(NDIS_MINIPORT_BLOCK, StatusHandler, 688);
NDIS_LAYOUT(NDIS_MINIPORT_BLOCK, StatusCompleteHandler, 696);
NDIS_LAYOUT(NDIS_MINIPORT_BLOCK, QueryCompleteHandler, 712);
NDIS_LAYOUT(NDIS_MINIPORT_BLOCK, SetCompleteHandler, 720);
NDIS_SIZE(NDIS_MINIPORT_BLOCK, 752);
NDIS_SIZE(NDIS_MINIPORT_TIMER, 160);
NDIS_SIZE(NDIS_MINIPORT_INTERRUPT, 152);
NDIS_SIZE(KDPC, 64);
NDIS_SIZE(KTIMER, 64);

#endif /* NDIS_H */
