/* SPDX-License-Identifier: MIT */
/*
 * param.c - the adapter's registry parameters, read once in Initialize.
 *
 * A value outside its range fails Initialize with a line naming it: a
 * clamped MTU or ring would silently differ from what the user configured.
 * A value that is absent (or unparsable, which NDIS reports the same way)
 * takes its default.
 */
#include "mocknic.h"

struct mn_param {
	NDIS_STRING name;
	ULONG def, min, max;
	ULONG offset;			/* of the ULONG in struct mn_adapter */
};

#define MN_PARAM(key, field, d, lo, hi)					\
	{ NDIS_STRING_CONST(key), (d), (lo), (hi),			\
	  __builtin_offsetof(struct mn_adapter, field) }

static const struct mn_param mn_params[] = {
	MN_PARAM("MTU", mtu, MN_MTU_DEFAULT, MN_MTU_MIN, MN_MTU_MAX),
	MN_PARAM("TxRing", tx_count, MN_TX_RING_DEFAULT, MN_RING_MIN, MN_MAX_RING),
	MN_PARAM("RxRing", rx_count, MN_RX_RING_DEFAULT, MN_RING_MIN, MN_MAX_RING),
	MN_PARAM("InterruptModeration", itr_us, 0, 0, MN_ITR_MAX),
	MN_PARAM("StackHunger", stack_hunger_kib, 0, 0, MN_STACK_HUNGER_MAX),
	MN_PARAM("FaultInject", fault_inject, MN_FAULT_NONE, MN_FAULT_NONE,
		 MN_FAULT_OVERFLOW_SEND),
};

/* NetworkAddress overrides the EEPROM's only with a usable unicast address. */
static void mn_read_address(struct mn_adapter *a, NDIS_HANDLE cfg)
{
	static const UCHAR zero[ETH_LENGTH_OF_ADDRESS];
	NDIS_STATUS status;
	PUCHAR addr;
	UINT len;

	NdisReadNetworkAddress(&status, (PVOID *)&addr, &len, cfg);
	if (status != NDIS_STATUS_SUCCESS)
		return;			/* absent: the EEPROM's address */
	if (len != ETH_LENGTH_OF_ADDRESS || (addr[0] & 1) ||
	    NdisEqualMemory(addr, zero, ETH_LENGTH_OF_ADDRESS)) {
		DbgPrint("mocknic: NetworkAddress is not a unicast address; keeping the EEPROM's\n");
		NdisWriteErrorLogEntry(a->handle, NDIS_ERROR_CODE_NETWORK_ADDRESS, 0);
		return;
	}
	/* The value lives only until NdisCloseConfiguration. */
	NdisMoveMemory(a->cfg_addr, addr, ETH_LENGTH_OF_ADDRESS);
	a->have_cfg_addr = TRUE;
}

NDIS_STATUS mn_read_params(struct mn_adapter *a, NDIS_HANDLE wrapper_config)
{
	PNDIS_CONFIGURATION_PARAMETER value;
	NDIS_STATUS status;
	NDIS_HANDLE cfg;
	ULONG i;

	NdisOpenConfiguration(&status, &cfg, wrapper_config);
	if (status != NDIS_STATUS_SUCCESS) {
		DbgPrint("mocknic: cannot open the adapter's configuration\n");
		return status;
	}
	for (i = 0; i < sizeof(mn_params) / sizeof(mn_params[0]); i++) {
		const struct mn_param *p = &mn_params[i];
		ULONG v = p->def;

		NdisReadConfiguration(&status, &value, cfg,
				      (PNDIS_STRING)&p->name, NdisParameterInteger);
		if (status == NDIS_STATUS_SUCCESS)
			v = value->ParameterData.IntegerData;
		if (v < p->min || v > p->max) {
			DbgPrint("mocknic: parameter %wZ = %lu is outside %lu..%lu\n",
				 &p->name, v, p->min, p->max);
			NdisWriteErrorLogEntry(a->handle,
					       NDIS_ERROR_CODE_UNSUPPORTED_CONFIGURATION,
					       2, i, v);
			NdisCloseConfiguration(cfg);
			return NDIS_STATUS_FAILURE;
		}
		*(PULONG)((PUCHAR)a + p->offset) = v;
	}
	mn_read_address(a, cfg);
	NdisCloseConfiguration(cfg);

	a->max_frame = a->mtu + MN_ETH_HLEN + MN_VLAN_HLEN;
	a->tx_buf_len = a->max_frame;
	/* The device takes RX buffer sizes in 256-byte steps. */
	a->rx_buf_len = MN_ALIGN_UP(a->max_frame, MN_RX_BUF_MIN);
	a->lookahead = a->mtu;
	return NDIS_STATUS_SUCCESS;
}
