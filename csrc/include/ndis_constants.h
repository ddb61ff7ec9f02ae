/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Numeric constants of the NDIS 5.1 miniport interface (x64).
 *
 * Values are those of the public DDK headers (ndis.h, ntddndis.h, wdm.h,
 * ntstatus.h, netevent.h, xfilter.h); tests/test_ddk_reference.py checks
 * every name that mingw-w64's DDK also defines against it.  The names stay
 * exactly as Windows spells them so driver-facing code reads like the DDK.
 *
 * This header must build unchanged with host gcc (LP64) and with
 * x86_64-w64-mingw32-gcc (LLP64), with nothing included before it, so it
 * uses no types and one spelling convention:
 *
 *  - every hex bit pattern carries a U suffix, so it is an unsigned int on
 *    both ABIs whatever its magnitude (a bare 0xC0000001 is unsigned but a
 *    bare 0x40010003 is int; an L suffix would be 64 bits wide on Linux);
 *  - values whose Windows type is a signed 32-bit LONG (NTSTATUS,
 *    NDIS_STATUS) are additionally wrapped in (int), never (long): on LP64 a
 *    (long) of 0xC0000001U stays positive, whereas on Windows the same code
 *    is negative, and drivers test NT_SUCCESS() by sign;
 *  - enumerator values of DDK enums (whose type is int) are plain decimal.
 *
 * Enumerators appear here as macros, so nothing that includes this header
 * may declare an enum, member or variable with one of these names.
 */
#ifndef NDIS_CONSTANTS_H
#define NDIS_CONSTANTS_H

/* NTSTATUS codes (ntstatus.h) */
#define STATUS_SUCCESS				((int)0x00000000U)
#define STATUS_PENDING				((int)0x00000103U)
#define STATUS_DATATYPE_MISALIGNMENT		((int)0x80000002U)
#define STATUS_BREAKPOINT			((int)0x80000003U)
#define STATUS_BUFFER_OVERFLOW			((int)0x80000005U)
#define STATUS_UNSUCCESSFUL			((int)0xC0000001U)
#define STATUS_NOT_IMPLEMENTED			((int)0xC0000002U)
#define STATUS_ACCESS_VIOLATION			((int)0xC0000005U)
#define STATUS_IN_PAGE_ERROR			((int)0xC0000006U)
#define STATUS_INVALID_PARAMETER		((int)0xC000000DU)
#define STATUS_INVALID_DEVICE_REQUEST		((int)0xC0000010U)
#define STATUS_ILLEGAL_INSTRUCTION		((int)0xC000001DU)
#define STATUS_INTEGER_DIVIDE_BY_ZERO		((int)0xC0000094U)
#define STATUS_PRIVILEGED_INSTRUCTION		((int)0xC0000096U)
#define STATUS_INSUFFICIENT_RESOURCES		((int)0xC000009AU)
#define STATUS_IO_TIMEOUT			((int)0xC00000B5U)
#define STATUS_NOT_SUPPORTED			((int)0xC00000BBU)
#define STATUS_STACK_OVERFLOW			((int)0xC00000FDU)
#define STATUS_NETWORK_UNREACHABLE		((int)0xC000023CU)

/*
 * NDIS_STATUS codes.  The DDK defines several as aliases of NTSTATUS codes;
 * keeping the aliases means the two can never drift apart.
 */
#define NDIS_STATUS_SUCCESS			STATUS_SUCCESS
#define NDIS_STATUS_PENDING			STATUS_PENDING
#define NDIS_STATUS_NOT_RECOGNIZED		((int)0x00010001U)
#define NDIS_STATUS_NOT_COPIED			((int)0x00010002U)
#define NDIS_STATUS_NOT_ACCEPTED		((int)0x00010003U)
#define NDIS_STATUS_CALL_ACTIVE			((int)0x00010007U)

/* Informational codes, mostly passed to NdisMIndicateStatus() */
#define NDIS_STATUS_ONLINE			((int)0x40010003U)
#define NDIS_STATUS_RESET_START			((int)0x40010004U)
#define NDIS_STATUS_RESET_END			((int)0x40010005U)
#define NDIS_STATUS_RING_STATUS			((int)0x40010006U)
#define NDIS_STATUS_CLOSED			((int)0x40010007U)
#define NDIS_STATUS_WAN_LINE_UP			((int)0x40010008U)
#define NDIS_STATUS_WAN_LINE_DOWN		((int)0x40010009U)
#define NDIS_STATUS_WAN_FRAGMENT		((int)0x4001000AU)
#define NDIS_STATUS_MEDIA_CONNECT		((int)0x4001000BU)
#define NDIS_STATUS_MEDIA_DISCONNECT		((int)0x4001000CU)
#define NDIS_STATUS_HARDWARE_LINE_UP		((int)0x4001000DU)
#define NDIS_STATUS_HARDWARE_LINE_DOWN		((int)0x4001000EU)
#define NDIS_STATUS_INTERFACE_UP		((int)0x4001000FU)
#define NDIS_STATUS_INTERFACE_DOWN		((int)0x40010010U)
#define NDIS_STATUS_MEDIA_BUSY			((int)0x40010011U)
#define NDIS_STATUS_MEDIA_SPECIFIC_INDICATION	((int)0x40010012U)
#define NDIS_STATUS_LINK_SPEED_CHANGE		((int)0x40010013U)
#define NDIS_STATUS_WAN_GET_STATS		((int)0x40010014U)
#define NDIS_STATUS_WAN_CO_FRAGMENT		((int)0x40010015U)
#define NDIS_STATUS_WAN_CO_LINKPARAMS		((int)0x40010016U)

/* Warnings */
#define NDIS_STATUS_NOT_RESETTABLE		((int)0x80010001U)
#define NDIS_STATUS_SOFT_ERRORS			((int)0x80010003U)
#define NDIS_STATUS_HARD_ERRORS			((int)0x80010004U)
#define NDIS_STATUS_BUFFER_OVERFLOW		STATUS_BUFFER_OVERFLOW

/* Errors */
#define NDIS_STATUS_FAILURE			STATUS_UNSUCCESSFUL
#define NDIS_STATUS_RESOURCES			STATUS_INSUFFICIENT_RESOURCES
#define NDIS_STATUS_CLOSING			((int)0xC0010002U)
#define NDIS_STATUS_BAD_VERSION			((int)0xC0010004U)
#define NDIS_STATUS_BAD_CHARACTERISTICS		((int)0xC0010005U)
#define NDIS_STATUS_ADAPTER_NOT_FOUND		((int)0xC0010006U)
#define NDIS_STATUS_OPEN_FAILED			((int)0xC0010007U)
#define NDIS_STATUS_DEVICE_FAILED		((int)0xC0010008U)
#define NDIS_STATUS_MULTICAST_FULL		((int)0xC0010009U)
#define NDIS_STATUS_MULTICAST_EXISTS		((int)0xC001000AU)
#define NDIS_STATUS_MULTICAST_NOT_FOUND		((int)0xC001000BU)
#define NDIS_STATUS_REQUEST_ABORTED		((int)0xC001000CU)
#define NDIS_STATUS_RESET_IN_PROGRESS		((int)0xC001000DU)
#define NDIS_STATUS_CLOSING_INDICATING		((int)0xC001000EU)
#define NDIS_STATUS_NOT_SUPPORTED		STATUS_NOT_SUPPORTED
#define NDIS_STATUS_INVALID_PACKET		((int)0xC001000FU)
#define NDIS_STATUS_OPEN_LIST_FULL		((int)0xC0010010U)
#define NDIS_STATUS_ADAPTER_NOT_READY		((int)0xC0010011U)
#define NDIS_STATUS_ADAPTER_NOT_OPEN		((int)0xC0010012U)
#define NDIS_STATUS_NOT_INDICATING		((int)0xC0010013U)
#define NDIS_STATUS_INVALID_LENGTH		((int)0xC0010014U)
#define NDIS_STATUS_INVALID_DATA		((int)0xC0010015U)
#define NDIS_STATUS_BUFFER_TOO_SHORT		((int)0xC0010016U)
#define NDIS_STATUS_INVALID_OID			((int)0xC0010017U)
#define NDIS_STATUS_ADAPTER_REMOVED		((int)0xC0010018U)
#define NDIS_STATUS_UNSUPPORTED_MEDIA		((int)0xC0010019U)
#define NDIS_STATUS_GROUP_ADDRESS_IN_USE	((int)0xC001001AU)
#define NDIS_STATUS_FILE_NOT_FOUND		((int)0xC001001BU)
#define NDIS_STATUS_ERROR_READING_FILE		((int)0xC001001CU)
#define NDIS_STATUS_ALREADY_MAPPED		((int)0xC001001DU)
#define NDIS_STATUS_RESOURCE_CONFLICT		((int)0xC001001EU)
#define NDIS_STATUS_NO_CABLE			((int)0xC001001FU)
#define NDIS_STATUS_INVALID_SAP			((int)0xC0010020U)
#define NDIS_STATUS_SAP_IN_USE			((int)0xC0010021U)
#define NDIS_STATUS_INVALID_ADDRESS		((int)0xC0010022U)
#define NDIS_STATUS_VC_NOT_ACTIVATED		((int)0xC0010023U)
#define NDIS_STATUS_DEST_OUT_OF_ORDER		((int)0xC0010024U)
#define NDIS_STATUS_VC_NOT_AVAILABLE		((int)0xC0010025U)
#define NDIS_STATUS_CELLRATE_NOT_AVAILABLE	((int)0xC0010026U)
/* sic: the DDK misspells COMPATIBLE */
#define NDIS_STATUS_INCOMPATABLE_QOS		((int)0xC0010027U)
#define NDIS_STATUS_AAL_PARAMS_UNSUPPORTED	((int)0xC0010028U)
#define NDIS_STATUS_NO_ROUTE_TO_DESTINATION	((int)0xC0010029U)
#define NDIS_STATUS_TOKEN_RING_OPEN_ERROR	((int)0xC0011000U)
#define NDIS_STATUS_INVALID_DEVICE_REQUEST	STATUS_INVALID_DEVICE_REQUEST
#define NDIS_STATUS_NETWORK_UNREACHABLE		STATUS_NETWORK_UNREACHABLE
/*
 * NDIS_STATUS_UNSUPPORTED_REVISION is deliberately absent: it first
 * appears in NDIS 6.0, so no 5.1 miniport can expect it.
 */

/*
 * NDIS_ERROR_CODE_* for NdisWriteErrorLogEntry().  NDIS_ERROR_CODE is a
 * ULONG, and these are the EVENT_NDIS_* message ids of netevent.h.
 */
#define NDIS_ERROR_CODE_RESOURCE_CONFLICT		0xC0001388U
#define NDIS_ERROR_CODE_OUT_OF_RESOURCES		0xC0001389U
#define NDIS_ERROR_CODE_HARDWARE_FAILURE		0xC000138AU
#define NDIS_ERROR_CODE_ADAPTER_NOT_FOUND		0xC000138BU
#define NDIS_ERROR_CODE_INTERRUPT_CONNECT		0xC000138CU
#define NDIS_ERROR_CODE_DRIVER_FAILURE			0xC000138DU
#define NDIS_ERROR_CODE_BAD_VERSION			0xC000138EU
#define NDIS_ERROR_CODE_TIMEOUT				0x8000138FU
#define NDIS_ERROR_CODE_NETWORK_ADDRESS			0xC0001390U
#define NDIS_ERROR_CODE_UNSUPPORTED_CONFIGURATION	0xC0001391U
#define NDIS_ERROR_CODE_INVALID_VALUE_FROM_ADAPTER	0xC0001392U
#define NDIS_ERROR_CODE_MISSING_CONFIGURATION_PARAMETER	0xC0001393U
#define NDIS_ERROR_CODE_BAD_IO_BASE_ADDRESS		0xC0001394U
#define NDIS_ERROR_CODE_RECEIVE_SPACE_SMALL		0x40001395U
#define NDIS_ERROR_CODE_ADAPTER_DISABLED		0x80001396U

/* General operational OIDs: class 0x0001xxxx */
#define OID_GEN_SUPPORTED_LIST			0x00010101U
#define OID_GEN_HARDWARE_STATUS			0x00010102U
#define OID_GEN_MEDIA_SUPPORTED			0x00010103U
#define OID_GEN_MEDIA_IN_USE			0x00010104U
#define OID_GEN_MAXIMUM_LOOKAHEAD		0x00010105U
#define OID_GEN_MAXIMUM_FRAME_SIZE		0x00010106U
#define OID_GEN_LINK_SPEED			0x00010107U
#define OID_GEN_TRANSMIT_BUFFER_SPACE		0x00010108U
#define OID_GEN_RECEIVE_BUFFER_SPACE		0x00010109U
#define OID_GEN_TRANSMIT_BLOCK_SIZE		0x0001010AU
#define OID_GEN_RECEIVE_BLOCK_SIZE		0x0001010BU
#define OID_GEN_VENDOR_ID			0x0001010CU
#define OID_GEN_VENDOR_DESCRIPTION		0x0001010DU
#define OID_GEN_CURRENT_PACKET_FILTER		0x0001010EU
#define OID_GEN_CURRENT_LOOKAHEAD		0x0001010FU
#define OID_GEN_DRIVER_VERSION			0x00010110U
#define OID_GEN_MAXIMUM_TOTAL_SIZE		0x00010111U
#define OID_GEN_PROTOCOL_OPTIONS		0x00010112U
#define OID_GEN_MAC_OPTIONS			0x00010113U
#define OID_GEN_MEDIA_CONNECT_STATUS		0x00010114U
#define OID_GEN_MAXIMUM_SEND_PACKETS		0x00010115U
#define OID_GEN_VENDOR_DRIVER_VERSION		0x00010116U
#define OID_GEN_SUPPORTED_GUIDS			0x00010117U
#define OID_GEN_NETWORK_LAYER_ADDRESSES		0x00010118U
#define OID_GEN_TRANSPORT_HEADER_OFFSET		0x00010119U
#define OID_GEN_MEDIA_CAPABILITIES		0x00010201U
#define OID_GEN_PHYSICAL_MEDIUM			0x00010202U
#define OID_GEN_MACHINE_NAME			0x0001021AU
#define OID_GEN_RNDIS_CONFIG_PARAMETER		0x0001021BU
#define OID_GEN_VLAN_ID				0x0001021CU

/* General statistics OIDs: class 0x0002xxxx */
#define OID_GEN_XMIT_OK				0x00020101U
#define OID_GEN_RCV_OK				0x00020102U
#define OID_GEN_XMIT_ERROR			0x00020103U
#define OID_GEN_RCV_ERROR			0x00020104U
#define OID_GEN_RCV_NO_BUFFER			0x00020105U
#define OID_GEN_DIRECTED_BYTES_XMIT		0x00020201U
#define OID_GEN_DIRECTED_FRAMES_XMIT		0x00020202U
#define OID_GEN_MULTICAST_BYTES_XMIT		0x00020203U
#define OID_GEN_MULTICAST_FRAMES_XMIT		0x00020204U
#define OID_GEN_BROADCAST_BYTES_XMIT		0x00020205U
#define OID_GEN_BROADCAST_FRAMES_XMIT		0x00020206U
#define OID_GEN_DIRECTED_BYTES_RCV		0x00020207U
#define OID_GEN_DIRECTED_FRAMES_RCV		0x00020208U
#define OID_GEN_MULTICAST_BYTES_RCV		0x00020209U
#define OID_GEN_MULTICAST_FRAMES_RCV		0x0002020AU
#define OID_GEN_BROADCAST_BYTES_RCV		0x0002020BU
#define OID_GEN_BROADCAST_FRAMES_RCV		0x0002020CU
#define OID_GEN_RCV_CRC_ERROR			0x0002020DU
#define OID_GEN_TRANSMIT_QUEUE_LENGTH		0x0002020EU
#define OID_GEN_GET_TIME_CAPS			0x0002020FU
#define OID_GEN_GET_NETCARD_TIME		0x00020210U
#define OID_GEN_NETCARD_LOAD			0x00020211U
#define OID_GEN_DEVICE_PROFILE			0x00020212U
/* Answered by NDIS itself, never passed down to the miniport */
#define OID_GEN_INIT_TIME_MS			0x00020213U
#define OID_GEN_RESET_COUNTS			0x00020214U
#define OID_GEN_MEDIA_SENSE_COUNTS		0x00020215U
#define OID_GEN_FRIENDLY_NAME			0x00020216U
/* Renamed OID_GEN_NDIS_RESERVED_1 and _2 by the NDIS 6 headers */
#define OID_GEN_MINIPORT_INFO			0x00020217U
#define OID_GEN_RESET_VERIFY_PARAMETERS		0x00020218U

/* 802.3 OIDs */
#define OID_802_3_PERMANENT_ADDRESS		0x01010101U
#define OID_802_3_CURRENT_ADDRESS		0x01010102U
#define OID_802_3_MULTICAST_LIST		0x01010103U
#define OID_802_3_MAXIMUM_LIST_SIZE		0x01010104U
#define OID_802_3_MAC_OPTIONS			0x01010105U
#define OID_802_3_RCV_ERROR_ALIGNMENT		0x01020101U
#define OID_802_3_XMIT_ONE_COLLISION		0x01020102U
#define OID_802_3_XMIT_MORE_COLLISIONS		0x01020103U
#define OID_802_3_XMIT_DEFERRED			0x01020201U
#define OID_802_3_XMIT_MAX_COLLISIONS		0x01020202U
#define OID_802_3_RCV_OVERRUN			0x01020203U
#define OID_802_3_XMIT_UNDERRUN			0x01020204U
#define OID_802_3_XMIT_HEARTBEAT_FAILURE	0x01020205U
#define OID_802_3_XMIT_TIMES_CRS_LOST		0x01020206U
#define OID_802_3_XMIT_LATE_COLLISIONS		0x01020207U

/* Power management OIDs */
/* Task offload (NDIS 5.1, ntddndis.h): the query answers an NDIS_TASK_OFFLOAD_HEADER */
#define OID_TCP_TASK_OFFLOAD			0xFC010201U
#define NDIS_TASK_OFFLOAD_VERSION		1
#define NDIS_TASK_TCP_LARGE_SEND_V0		0

/* NDIS_TASK */
#define TcpIpChecksumNdisTask			0
#define IpSecNdisTask				1
#define TcpLargeSendNdisTask			2
#define MaxNdisTask				3

/* NDIS_ENCAPSULATION */
#define UNSPECIFIED_Encapsulation		0
#define NULL_Encapsulation			1
#define IEEE_802_3_Encapsulation		2

#define OID_PNP_CAPABILITIES			0xFD010100U
#define OID_PNP_SET_POWER			0xFD010101U
#define OID_PNP_QUERY_POWER			0xFD010102U
#define OID_PNP_ADD_WAKE_UP_PATTERN		0xFD010103U
#define OID_PNP_REMOVE_WAKE_UP_PATTERN		0xFD010104U
#define OID_PNP_WAKE_UP_PATTERN_LIST		0xFD010105U
#define OID_PNP_ENABLE_WAKE_UP			0xFD010106U
#define OID_PNP_WAKE_UP_OK			0xFD020200U
#define OID_PNP_WAKE_UP_ERROR			0xFD020201U

/* Task offload OIDs */
#define OID_TCP_TASK_OFFLOAD			0xFC010201U
#define OID_TCP_TASK_IPSEC_ADD_SA		0xFC010202U
#define OID_TCP_TASK_IPSEC_DELETE_SA		0xFC010203U
#define OID_FFP_SUPPORT				0xFC010210U

/* Packet filter bits for OID_GEN_CURRENT_PACKET_FILTER */
#define NDIS_PACKET_TYPE_DIRECTED		0x00000001U
#define NDIS_PACKET_TYPE_MULTICAST		0x00000002U
#define NDIS_PACKET_TYPE_ALL_MULTICAST		0x00000004U
#define NDIS_PACKET_TYPE_BROADCAST		0x00000008U
#define NDIS_PACKET_TYPE_SOURCE_ROUTING		0x00000010U
#define NDIS_PACKET_TYPE_PROMISCUOUS		0x00000020U
#define NDIS_PACKET_TYPE_SMT			0x00000040U
#define NDIS_PACKET_TYPE_ALL_LOCAL		0x00000080U
#define NDIS_PACKET_TYPE_GROUP			0x00001000U
#define NDIS_PACKET_TYPE_ALL_FUNCTIONAL		0x00002000U
#define NDIS_PACKET_TYPE_FUNCTIONAL		0x00004000U
#define NDIS_PACKET_TYPE_MAC_FRAME		0x00008000U

/* Bits answered for OID_GEN_MAC_OPTIONS */
#define NDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA		0x00000001U
#define NDIS_MAC_OPTION_RECEIVE_SERIALIZED		0x00000002U
#define NDIS_MAC_OPTION_TRANSFERS_NOT_PEND		0x00000004U
#define NDIS_MAC_OPTION_NO_LOOPBACK			0x00000008U
#define NDIS_MAC_OPTION_FULL_DUPLEX			0x00000010U
#define NDIS_MAC_OPTION_EOTX_INDICATION			0x00000020U
#define NDIS_MAC_OPTION_8021P_PRIORITY			0x00000040U
#define NDIS_MAC_OPTION_SUPPORTS_MAC_ADDRESS_OVERWRITE	0x00000080U
#define NDIS_MAC_OPTION_RECEIVE_AT_DPC			0x00000100U
#define NDIS_MAC_OPTION_8021Q_VLAN			0x00000200U
#define NDIS_MAC_OPTION_RESERVED			0x80000000U

/* AttributeFlags of NdisMSetAttributesEx() */
#define NDIS_ATTRIBUTE_IGNORE_PACKET_TIMEOUT	0x00000001U
#define NDIS_ATTRIBUTE_IGNORE_REQUEST_TIMEOUT	0x00000002U
#define NDIS_ATTRIBUTE_IGNORE_TOKEN_RING_ERRORS	0x00000004U
#define NDIS_ATTRIBUTE_BUS_MASTER		0x00000008U
#define NDIS_ATTRIBUTE_INTERMEDIATE_DRIVER	0x00000010U
#define NDIS_ATTRIBUTE_DESERIALIZE		0x00000020U
#define NDIS_ATTRIBUTE_NO_HALT_ON_SUSPEND	0x00000040U
#define NDIS_ATTRIBUTE_SURPRISE_REMOVE_OK	0x00000080U
#define NDIS_ATTRIBUTE_NOT_CO_NDIS		0x00000100U
#define NDIS_ATTRIBUTE_USES_SAFE_BUFFER_APIS	0x00000200U

/* NDIS_PACKET_PRIVATE.Flags */
#define fPACKET_WRAPPER_RESERVED		0x3FU
#define fPACKET_CONTAINS_MEDIA_SPECIFIC_INFO	0x40U
#define fPACKET_ALLOCATED_BY_NDIS		0x80U

/* NDIS_PACKET_PRIVATE.NdisPacketFlags, via NdisSetPacketFlags() */
#define NDIS_FLAGS_PROTOCOL_ID_MASK		0x0000000FU
#define NDIS_FLAGS_MULTICAST_PACKET		0x00000010U
#define NDIS_FLAGS_RESERVED2			0x00000020U
#define NDIS_FLAGS_RESERVED3			0x00000040U
#define NDIS_FLAGS_DONT_LOOPBACK		0x00000080U
#define NDIS_FLAGS_IS_LOOPBACK_PACKET		0x00000100U
#define NDIS_FLAGS_LOOPBACK_ONLY		0x00000200U
#define NDIS_FLAGS_RESERVED4			0x00000400U
#define NDIS_FLAGS_DOUBLE_BUFFERED		0x00000800U
#define NDIS_FLAGS_SENT_AT_DPC			0x00001000U
#define NDIS_FLAGS_USES_SG_BUFFER_LIST		0x00002000U
#define NDIS_FLAGS_USES_ORIGINAL_PACKET		0x00004000U
#define NDIS_FLAGS_PADDED			0x00010000U
#define NDIS_FLAGS_XLATE_AT_TOP			0x00020000U

/* MDL.MdlFlags (wdm.h) */
#define MDL_MAPPED_TO_SYSTEM_VA			0x0001U
#define MDL_PAGES_LOCKED			0x0002U
#define MDL_SOURCE_IS_NONPAGED_POOL		0x0004U
#define MDL_ALLOCATED_FIXED_SIZE		0x0008U
#define MDL_PARTIAL				0x0010U
#define MDL_PARTIAL_HAS_BEEN_MAPPED		0x0020U
#define MDL_IO_PAGE_READ			0x0040U
#define MDL_WRITE_OPERATION			0x0080U
#define MDL_PARENT_MAPPED_SYSTEM_VA		0x0100U
#define MDL_NETWORK_HEADER			0x1000U

/* NDIS_MEDIA_STATE */
#define NdisMediaStateConnected			0
#define NdisMediaStateDisconnected		1

/* NDIS_HARDWARE_STATUS */
#define NdisHardwareStatusReady			0
#define NdisHardwareStatusInitializing		1
#define NdisHardwareStatusReset			2
#define NdisHardwareStatusClosing		3
#define NdisHardwareStatusNotReady		4

/*
 * NDIS_MEDIUM.  NdisMediumMax is left out: later DDKs append media, so its
 * value depends on which headers a driver was built with.
 */
#define NdisMedium802_3				0
#define NdisMedium802_5				1
#define NdisMediumFddi				2
#define NdisMediumWan				3
#define NdisMediumLocalTalk			4
#define NdisMediumDix				5
#define NdisMediumArcnetRaw			6
#define NdisMediumArcnet878_2			7
#define NdisMediumAtm				8
#define NdisMediumWirelessWan			9
#define NdisMediumIrda				10
#define NdisMediumBpc				11
#define NdisMediumCoWan				12
#define NdisMedium1394				13
#define NdisMediumInfiniBand			14

/*
 * NDIS_PHYSICAL_MEDIUM.  Values from NdisPhysicalMediumNative802_11 on were
 * added after NDIS 5.1, but they only ever append, so a 5.1 driver cannot
 * mean anything else by them.  NdisPhysicalMediumMax moves and is omitted.
 */
#define NdisPhysicalMediumUnspecified		0
#define NdisPhysicalMediumWirelessLan		1
#define NdisPhysicalMediumCableModem		2
#define NdisPhysicalMediumPhoneLine		3
#define NdisPhysicalMediumPowerLine		4
#define NdisPhysicalMediumDSL			5
#define NdisPhysicalMediumFibreChannel		6
#define NdisPhysicalMedium1394			7
#define NdisPhysicalMediumWirelessWan		8
#define NdisPhysicalMediumNative802_11		9
#define NdisPhysicalMediumBluetooth		10
#define NdisPhysicalMediumInfiniband		11
#define NdisPhysicalMediumWiMax			12
#define NdisPhysicalMediumUWB			13
#define NdisPhysicalMedium802_3			14
#define NdisPhysicalMedium802_5			15
#define NdisPhysicalMediumIrda			16
#define NdisPhysicalMediumWiredWAN		17
#define NdisPhysicalMediumWiredCoWan		18
#define NdisPhysicalMediumOther			19

/*
 * NDIS_INTERFACE_TYPE mirrors the kernel's INTERFACE_TYPE up to PNPBus, so
 * the gaps (VMEBus 6, NuBus 7) are intentional; the last three are NDIS's own.
 */
#define NdisInterfaceInternal			0
#define NdisInterfaceIsa			1
#define NdisInterfaceEisa			2
#define NdisInterfaceMca			3
#define NdisInterfaceTurboChannel		4
#define NdisInterfacePci			5
#define NdisInterfacePcMcia			8
#define NdisInterfaceCBus			9
#define NdisInterfaceMPIBus			10
#define NdisInterfaceMPSABus			11
#define NdisInterfaceProcessorInternal		12
#define NdisInterfaceInternalPowerBus		13
#define NdisInterfacePNPISABus			14
#define NdisInterfacePNPBus			15
#define NdisInterfaceUSB			16
#define NdisInterfaceIrda			17
#define NdisInterface1394			18
#define NdisMaximumInterfaceType		19

/* KINTERRUPT_MODE, and NDIS's names for it (NDIS_INTERRUPT_MODE) */
#define LevelSensitive				0
#define Latched					1
#define NdisInterruptLevelSensitive		LevelSensitive
#define NdisInterruptLatched			Latched

/* KIRQL levels as the x64 kernel numbers them */
#define PASSIVE_LEVEL				0
#define APC_LEVEL				1
#define DISPATCH_LEVEL				2
#define CLOCK_LEVEL				13
#define HIGH_LEVEL				15

/* NDIS_DMA_SIZE, for NdisMAllocateMapRegisters() */
#define NDIS_DMA_24BITS				0
#define NDIS_DMA_32BITS				1
#define NDIS_DMA_64BITS				2

/* MM_PAGE_PRIORITY (wdm.h), for NdisGetFirstBufferFromPacketSafe() */
#define LowPagePriority				0
#define NormalPagePriority			16
#define HighPagePriority			32

/* NDIS_PARAMETER_TYPE, for NdisReadConfiguration() */
#define NdisParameterInteger			0
#define NdisParameterHexInteger			1
#define NdisParameterString			2
#define NdisParameterMultiString		3
#define NdisParameterBinary			4

/*
 * NDIS_PER_PACKET_INFO: indices into NDIS_PACKET_EXTENSION.NdisPacketInfo[].
 * Index 4 is NdisReserved in the DDK; it has no macro here because
 * NDIS_REQUEST, NET_PNP_EVENT and NDIS_PACKET_STACK have members of that
 * name, which a macro would rewrite.
 */
#define TcpIpChecksumPacketInfo			0
#define IpSecPacketInfo				1
#define TcpLargeSendPacketInfo			2
#define ClassificationHandlePacketInfo		3
#define ScatterGatherListPacketInfo		5
#define Ieee8021QInfo				6
#define OriginalPacketInfo			7
#define PacketCancelId				8
#define OriginalNetBufferList			9
#define CachedNetBufferList			10
#define ShortPacketPaddingInfo			11
#define MaxPerPacketInfo			12

/* Ethernet (xfilter.h) */
#define ETH_LENGTH_OF_ADDRESS			6
/* Not a DDK name: our own spelling, kept equal to the DDK's */
#define NDIS_ETH_LENGTH_OF_ADDRESS		ETH_LENGTH_OF_ADDRESS

#endif /* NDIS_CONSTANTS_H */
