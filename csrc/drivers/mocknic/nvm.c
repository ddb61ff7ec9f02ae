/* SPDX-License-Identifier: MIT */
/*
 * nvm.c - EEPROM image and PHY calibration: the deep part of bring-up.
 *
 * Real NICs keep far more than their address in NVM - PHY init scripts,
 * LED and power settings, a checksum over the lot - and vendor drivers
 * often copy the whole image onto the stack to validate it before trusting
 * any of it, then calibrate the PHY from a table of samples.  That is the
 * shape of driver that overflows an 8 KiB kernel stack, and the one this
 * mock NIC exists to show.  Its EEPROM holds only the address
 * (MN_EEPROM_MAC_LO/HI), so the rest of the image is synthesised
 * deterministically from it; the frames are real and really used.
 *
 * Stack budget of MiniportInitialize, by construction:
 *
 *   mn_initialize            ~0.2 KiB
 *     mn_nvm_init            ~6.1 KiB   the image: MN_NVM_WORDS x 4 bytes
 *       mn_phy_calibrate     ~3.1 KiB   the taps:  MN_PHY_TAPS x 4 bytes
 *         mn_stack_hunger    StackHunger x ~1 KiB (faults.c), if set
 *
 * about 9.4 KiB of driver frames plus the host's call frames: more than
 * 8 KiB, far less than Windows x64's 24 KiB.  Everything else Initialize
 * calls (NDIS exports, DbgPrint, the device model behind port I/O) runs
 * from mn_initialize's frame and stays well above this.  Frames over 4 KiB
 * get ___chkstk_ms probes, so an overflow hits the guard page by page.
 */
#include "mocknic.h"

#define MN_NVM_WORDS	1536		/* 6 KiB image */
#define MN_NVM_SUM	0x4e564d21U	/* "NVM!": what all words add up to */
#define MN_PHY_TAPS	768		/* 3 KiB of equaliser taps */
#define MN_PHY_PASSES	3

/* xorshift32: the synthesised part of the image. */
static ULONG mn_nvm_next(ULONG x)
{
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

/*
 * Seeds the equaliser from the whole image (two words a tap), lets it
 * settle with a [1 2 1]/4 filter, and folds it into a cookie.  StackHunger
 * adds its frames here, below the taps, which stay live across the call.
 */
static __attribute__((noinline)) ULONG
mn_phy_calibrate(struct mn_adapter *a, const ULONG *nvm)
{
	ULONG taps[MN_PHY_TAPS];
	ULONG i, pass, cookie = 0;

	for (i = 0; i < MN_PHY_TAPS; i++)
		taps[i] = nvm[2 * i] ^ (nvm[2 * i + 1] >> 1);
	for (pass = 0; pass < MN_PHY_PASSES; pass++)
		for (i = 1; i + 1 < MN_PHY_TAPS; i++)
			taps[i] = (taps[i - 1] >> 2) + (taps[i] >> 1) +
				  (taps[i + 1] >> 2);
	if (a->stack_hunger_kib)
		cookie = mn_stack_hunger(a->stack_hunger_kib, taps[0]);
	for (i = 0; i < MN_PHY_TAPS; i++)
		cookie = (cookie << 1 | cookie >> 31) ^ taps[i];
	return cookie;
}

/*
 * PASSIVE_LEVEL, after the device reset: reads the permanent address out
 * of a checksummed image, calibrates the PHY, and settles the current
 * address (NetworkAddress, or the permanent one).
 */
__attribute__((noinline)) NDIS_STATUS mn_nvm_init(struct mn_adapter *a)
{
	ULONG nvm[MN_NVM_WORDS];
	ULONG i, sum = 0;

	nvm[0] = mn_rd(a, MN_EEPROM_MAC_LO);
	nvm[1] = mn_rd(a, MN_EEPROM_MAC_HI) & 0xffff;
	nvm[2] = mn_rd(a, MN_DEVICE_ID);
	for (i = 3; i < MN_NVM_WORDS - 1; i++)
		nvm[i] = mn_nvm_next(nvm[i - 1] ^ nvm[0] ^ i);
	/* The factory burns the last word so that the image adds up. */
	for (i = 0; i < MN_NVM_WORDS - 1; i++)
		sum += nvm[i];
	nvm[MN_NVM_WORDS - 1] = MN_NVM_SUM - sum;

	/* Validate before trusting any of it, as drivers for real NVM must. */
	for (sum = 0, i = 0; i < MN_NVM_WORDS; i++)
		sum += nvm[i];
	if (sum != MN_NVM_SUM) {
		DbgPrint("mocknic: EEPROM checksum 0x%08lx, expected 0x%08lx\n",
			 sum, MN_NVM_SUM);
		return NDIS_STATUS_FAILURE;
	}

	for (i = 0; i < 4; i++)
		a->perm_addr[i] = (UCHAR)(nvm[0] >> (8 * i));
	a->perm_addr[4] = (UCHAR)nvm[1];
	a->perm_addr[5] = (UCHAR)(nvm[1] >> 8);
	if ((a->perm_addr[0] & 1) ||
	    !(nvm[0] | nvm[1])) {
		DbgPrint("mocknic: EEPROM address %02x:%02x:%02x:%02x:%02x:%02x is not a unicast address\n",
			 a->perm_addr[0], a->perm_addr[1], a->perm_addr[2],
			 a->perm_addr[3], a->perm_addr[4], a->perm_addr[5]);
		NdisWriteErrorLogEntry(a->handle, NDIS_ERROR_CODE_NETWORK_ADDRESS, 0);
		return NDIS_STATUS_FAILURE;
	}

	a->phy_cookie = mn_phy_calibrate(a, nvm);

	NdisMoveMemory(a->cur_addr, a->have_cfg_addr ? a->cfg_addr : a->perm_addr,
		       ETH_LENGTH_OF_ADDRESS);
	return NDIS_STATUS_SUCCESS;
}
