/* SPDX-License-Identifier: MIT */
/*
 * maps.c - the registry of every mapping the runtime makes.
 *
 * Tests prove "nothing leaks" by comparing this registry, and the
 * /proc/self/maps entries inside its ranges, across many load/fault/unload
 * cycles.  Only setup and teardown paths call in here (never an export that
 * a fault or watchdog can abort), so a plain mutex is fine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "np.h"

#define NP_MAX_MAPS 4096

struct np_map_entry {
	uintptr_t addr;
	size_t len;
	char kind[16];
};

static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
/* Invariant: entries [0, nmaps) are live mappings made by np_map(). */
static struct np_map_entry maps[NP_MAX_MAPS];
static size_t nmaps;

static void *record(void *p, size_t len, const char *kind)
{
	pthread_mutex_lock(&maps_lock);
	if (nmaps == NP_MAX_MAPS) {
		pthread_mutex_unlock(&maps_lock);
		munmap(p, len);
		return NULL;
	}
	maps[nmaps].addr = (uintptr_t)p;
	maps[nmaps].len = len;
	strncpy(maps[nmaps].kind, kind, sizeof(maps[nmaps].kind) - 1);
	maps[nmaps].kind[sizeof(maps[nmaps].kind) - 1] = '\0';
	nmaps++;
	pthread_mutex_unlock(&maps_lock);
	return p;
}

void *np_map(size_t len, int prot, const char *kind)
{
	void *p;

	p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	return p == MAP_FAILED ? NULL : record(p, len, kind);
}

/*
 * Exactly at addr, or NULL (errno EEXIST when something is there already).
 * Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and may place the mapping
 * elsewhere: that counts as taken too.
 */
void *np_map_at(uintptr_t addr, size_t len, int prot, const char *kind)
{
	void *p;

	p = mmap((void *)addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS |
		 MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if ((uintptr_t)p != addr) {
		munmap(p, len);
		errno = EEXIST;
		return NULL;
	}
	return record(p, len, kind);
}

void np_unmap(void *addr, size_t len)
{
	size_t i;

	if (!addr)
		return;
	pthread_mutex_lock(&maps_lock);
	for (i = 0; i < nmaps; i++) {
		if (maps[i].addr == (uintptr_t)addr) {
			maps[i] = maps[--nmaps];
			break;
		}
	}
	pthread_mutex_unlock(&maps_lock);
	munmap(addr, len);
}

size_t np_api_maps(struct np_api_map *out, size_t max)
{
	size_t i, n;

	pthread_mutex_lock(&maps_lock);
	n = nmaps;
	for (i = 0; i < n && i < max; i++) {
		out[i].addr = maps[i].addr;
		out[i].len = maps[i].len;
		memcpy(out[i].kind, maps[i].kind, sizeof(out[i].kind));
	}
	pthread_mutex_unlock(&maps_lock);
	return n;
}
