/* SPDX-License-Identifier: MIT */
/*
 * testdrv.h - what every tiny test driver shares: registration and the
 * handlers NDIS requires but the test does not care about.
 *
 * Each test driver defines test_initialize() (and may define the others
 * through TESTDRV_* macros before including this header) and does exactly
 * one thing in it.
 */
#ifndef TESTDRV_H
#define TESTDRV_H

#include "ndis.h"

static NDIS_STATUS NDISAPI test_initialize(PNDIS_STATUS open_error,
		PUINT selected, PNDIS_MEDIUM media, UINT count,
		NDIS_HANDLE adapter, NDIS_HANDLE config);

static int testdrv_context;

static VOID NDISAPI testdrv_halt(NDIS_HANDLE ctx)
{
}

static NDIS_STATUS NDISAPI testdrv_query(NDIS_HANDLE ctx, NDIS_OID oid,
		PVOID buf, ULONG len, PULONG written, PULONG needed)
{
	*written = 0;
	*needed = 0;
	return NDIS_STATUS_NOT_SUPPORTED;
}

static NDIS_STATUS NDISAPI testdrv_set(NDIS_HANDLE ctx, NDIS_OID oid,
		PVOID buf, ULONG len, PULONG read, PULONG needed)
{
	*read = 0;
	*needed = 0;
	return NDIS_STATUS_NOT_SUPPORTED;
}

static NDIS_STATUS NDISAPI testdrv_reset(PBOOLEAN addressing_reset,
					 NDIS_HANDLE ctx)
{
	*addressing_reset = FALSE;
	return NDIS_STATUS_SUCCESS;
}

static VOID NDISAPI testdrv_send_packets(NDIS_HANDLE ctx, PPNDIS_PACKET p,
					 UINT n)
{
}

/* Select 802.3, as every miniport's Initialize must: -1 if not offered. */
static __attribute__((unused)) int testdrv_find_medium(PUINT selected, PNDIS_MEDIUM media,
						       UINT count)
{
	UINT i;

	for (i = 0; i < count; i++) {
		if (media[i] == NdisMedium802_3) {
			*selected = i;
			return 0;
		}
	}
	return -1;
}

/* Select 802.3 and adopt a context, as every miniport's Initialize must. */
static __attribute__((unused)) int testdrv_select_medium(PUINT selected, PNDIS_MEDIUM media,
				 UINT count, NDIS_HANDLE adapter)
{
	if (testdrv_find_medium(selected, media, count))
		return -1;
	NdisMSetAttributesEx(adapter, &testdrv_context, 0, NDIS_ATTRIBUTE_DESERIALIZE,
			     NdisInterfaceInternal);
	return 0;
}

/* Reads an integer parameter, or returns def when it is absent. */
static __attribute__((unused)) ULONG testdrv_param(NDIS_HANDLE config, PCWSTR name, ULONG def)
{
	PNDIS_CONFIGURATION_PARAMETER value;
	NDIS_STRING keyword;
	NDIS_STATUS status;
	NDIS_HANDLE cfg;
	ULONG v = def;

	NdisOpenConfiguration(&status, &cfg, config);
	if (status != NDIS_STATUS_SUCCESS)
		return def;
	NdisInitUnicodeString(&keyword, name);
	NdisReadConfiguration(&status, &value, cfg, &keyword,
			      NdisParameterInteger);
	if (status == NDIS_STATUS_SUCCESS)
		v = value->ParameterData.IntegerData;
	NdisCloseConfiguration(cfg);
	return v;
}

/*
 * The length check of a private OID: NDIS_STATUS_SUCCESS when the buffer
 * holds the size bytes the OID answers with (0: an OID it does not know).
 */
static __attribute__((unused)) NDIS_STATUS testdrv_fits(ULONG size, ULONG len,
							PULONG written, PULONG needed)
{
	*written = 0;
	*needed = size;
	if (!size)
		return NDIS_STATUS_NOT_SUPPORTED;
	return len < size ? NDIS_STATUS_INVALID_LENGTH : NDIS_STATUS_SUCCESS;
}

/*
 * What an instruction the host emulates costs: out = { n, nanoseconds for
 * n evaluations of expr (ULONG64), nanoseconds for n plain loads }.
 */
static __attribute__((unused)) volatile ULONG64 testdrv_plain_value;

#define TESTDRV_BENCH(out, n, expr)					\
do {									\
	LARGE_INTEGER t0_, t1_, t2_;					\
	ULONG64 sum_ = 0;						\
	ULONG i_;							\
									\
	t0_ = KeQueryPerformanceCounter(NULL);				\
	for (i_ = 0; i_ < (n); i_++)					\
		sum_ += (expr);						\
	t1_ = KeQueryPerformanceCounter(NULL);				\
	for (i_ = 0; i_ < (n); i_++)					\
		sum_ += testdrv_plain_value;				\
	t2_ = KeQueryPerformanceCounter(NULL);				\
	testdrv_plain_value = sum_;					\
	(out)[0] = (n);							\
	(out)[1] = (ULONG64)(t1_.QuadPart - t0_.QuadPart);		\
	(out)[2] = (ULONG64)(t2_.QuadPart - t1_.QuadPart);		\
} while (0)

static NDIS_STATUS testdrv_register(PDRIVER_OBJECT driver,
				    PUNICODE_STRING path,
				    NDIS51_MINIPORT_CHARACTERISTICS *chars)
{
	NDIS_HANDLE wrapper;

	NdisMInitializeWrapper(&wrapper, driver, path, NULL);
	chars->MajorNdisVersion = 5;
	chars->MinorNdisVersion = 1;
	chars->InitializeHandler = test_initialize;
	if (!chars->HaltHandler)
		chars->HaltHandler = testdrv_halt;
	if (!chars->QueryInformationHandler)
		chars->QueryInformationHandler = testdrv_query;
	if (!chars->SetInformationHandler)
		chars->SetInformationHandler = testdrv_set;
	if (!chars->ResetHandler)
		chars->ResetHandler = testdrv_reset;
	if (!chars->SendPacketsHandler)
		chars->SendPacketsHandler = testdrv_send_packets;
	return NdisMRegisterMiniport(wrapper, chars, sizeof(*chars));
}

/* The usual DriverEntry: register, with whatever the driver filled in. */
#define TESTDRV_DRIVER_ENTRY(chars_init)				\
NTSTATUS NDISAPI DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING path)\
{									\
	NDIS51_MINIPORT_CHARACTERISTICS chars = chars_init;		\
									\
	return testdrv_register(driver, path, &chars);			\
}

#endif /* TESTDRV_H */
