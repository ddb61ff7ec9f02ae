/* SPDX-License-Identifier: MIT */
/*
 * bench.c - what entering a driver costs, measured in C loops.
 *
 * Three ways to run an ms_abi function: a direct call through a pointer the
 * compiler cannot see through, np_call() (trampoline, trap bookkeeping,
 * sampled high-water marks, exactly as for a driver), and a swapcontext
 * round trip to a coroutine on its own stack, the approach rule 4 rejects.
 * benchmarks/bench_trampoline.py prints the ratios.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "np.h"

static NDISAPI ULONG bench_target(ULONG x)
{
	return x + 1;
}

/* volatile: keep the compiler from inlining the call away */
static NDISAPI ULONG (*volatile bench_fn)(ULONG) = bench_target;
static volatile ULONG sink;

uint64_t np_api_bench_noop(void)
{
	return bench_fn(41);
}

static double elapsed_per(uint64_t t0, uint64_t n)
{
	return (double)(np_now_ns() - t0) / (double)n;
}

double np_api_bench_direct(uint64_t iterations)
{
	uint64_t i, t0 = np_now_ns();
	ULONG acc = 0;

	for (i = 0; i < iterations; i++)
		acc = bench_fn(acc);
	sink = acc;
	return elapsed_per(t0, iterations);
}

static uint64_t bench_thunk(void *arg)
{
	ULONG *acc = arg;

	*acc = bench_fn(*acc);
	return 0;
}

double np_api_bench_trampoline(uint64_t iterations, uint32_t sample_every)
{
	static struct np_image img;
	uint64_t i, t0;
	ULONG acc = 0;
	double r;

	if (np_ctx_init(&img.ctx, &img, NP_STACK_DEFAULT, 1 << 20))
		return -1;
	strcpy(img.name, "bench");
	/* 0: never measure; else one call in sample_every pays for a scan. */
	img.ctx.stack.sample_every = sample_every ? sample_every : UINT32_MAX;
	img.ctx.stack.sample_countdown[NP_EP_SEND_PACKETS] =
		img.ctx.stack.sample_every - 1;
	np_trap_ensure();
	t0 = np_now_ns();
	for (i = 0; i < iterations; i++)
		np_call(&img.ctx, NP_EP_SEND_PACKETS, DISPATCH_LEVEL,
			bench_thunk, &acc, NULL);
	r = elapsed_per(t0, iterations);
	sink = acc;
	np_ctx_destroy(&img.ctx);
	memset(&img, 0, sizeof(img));
	return r;
}

static ucontext_t bench_main, bench_co;
static volatile int bench_done;

static void bench_coroutine(void)
{
	ULONG acc = 0;

	while (!bench_done) {
		acc = bench_fn(acc);
		swapcontext(&bench_co, &bench_main);
	}
	sink = acc;
}

double np_api_bench_swapcontext(uint64_t iterations)
{
	size_t size = NP_STACK_DEFAULT;
	void *stack = np_map(size, PROT_READ | PROT_WRITE, "bench");
	uint64_t i, t0;
	double r;

	if (!stack)
		return -1;
	bench_done = 0;
	getcontext(&bench_co);
	bench_co.uc_stack.ss_sp = stack;
	bench_co.uc_stack.ss_size = size;
	bench_co.uc_link = &bench_main;
	makecontext(&bench_co, bench_coroutine, 0);
	t0 = np_now_ns();
	for (i = 0; i < iterations; i++)
		swapcontext(&bench_main, &bench_co);
	r = elapsed_per(t0, iterations);
	bench_done = 1;
	swapcontext(&bench_main, &bench_co);
	np_unmap(stack, size);
	return r;
}
