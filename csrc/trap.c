/* SPDX-License-Identifier: MIT */
/*
 * trap.c - turning faults inside driver code into status codes.
 *
 * A thread that enters drivers has an np_thread (reached through an
 * initial-exec TLS pointer, so the handler never allocates) and an
 * alternate signal stack of at least sysconf(_SC_SIGSTKSZ) bytes, without
 * which no handler could run on an overflowed stack.
 *
 * SIGSEGV and SIGILL while t->in_driver first go to np_emulate() (emulate.c):
 * a CR8 move or a KUSER_SHARED_DATA load at a driver address is carried out
 * on the saved context, which then resumes after the instruction.
 *
 * Otherwise, SIGSEGV, SIGBUS, SIGILL and SIGFPE while t->in_driver: the
 * handler records the fault, rewrites the saved context so that sigreturn
 * resumes at the trampoline's np_call_abort with the caller's rsp and the
 * status in rax, and returns.  It never calls malloc or takes a lock.
 *
 * Anything else is not ours: the previous disposition is put back and the
 * handler returns, so the faulting instruction runs again and faults into
 * whoever was there before us (CPython's faulthandler, or the default
 * action).  faulthandler re-raises into the disposition it saved, which may
 * be us; once a foreign fault has been seen we therefore fall back to the
 * default action, so that the process dies after exactly one traceback.
 *
 * np_trap_ensure() re-checks the dispositions: if someone (faulthandler
 * enabled later) has installed over us, we go back on top and chain to them.
 *
 * Hangs: a watchdog thread sends NP_SIGABORT to a thread whose driver call
 * has passed its deadline; the same recovery path ends the call with
 * STATUS_IO_TIMEOUT.  call_seq/abort_seq make a late signal harmless.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "np.h"

#define NP_MAX_THREADS 256	/* a pool's pump threads, the host's, trio's */
#define NP_WATCHDOG_PERIOD_NS (2 * 1000 * 1000)	/* while calls have deadlines */
#define NP_WATCHDOG_IDLE_NS (20 * 1000 * 1000)	/* while none is in a driver */

__thread struct np_thread *np_tls __attribute__((tls_model("initial-exec")));

static const int trapped_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };
#define NP_NSIGNALS NP_ARRAY_SIZE(trapped_signals)

static pthread_mutex_t trap_lock = PTHREAD_MUTEX_INITIALIZER;
/* Guarded by trap_lock; read lock-free by the handler. */
static struct sigaction previous[NP_NSIGNALS];
static int installed;
static volatile sig_atomic_t foreign_fault_seen;

/* Guarded by trap_lock for writers; the watchdog reads slots lock-free. */
static struct np_thread *_Atomic threads[NP_MAX_THREADS];
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static int watchdog_started;

static int np_sigabort(void)
{
	return SIGRTMIN + 3;
}

static int signal_index(int sig)
{
	size_t i;

	for (i = 0; i < NP_NSIGNALS; i++)
		if (trapped_signals[i] == sig)
			return (int)i;
	return -1;
}

static uint32_t fault_code(int sig, const siginfo_t *si, uintptr_t sp,
			   const struct np_thread *t)
{
	uintptr_t addr = (uintptr_t)si->si_addr;

	switch (sig) {
	case SIGSEGV:
		if ((addr >= t->stack->guard_lo && addr < t->stack->base) ||
		    sp < t->stack->base)
			return STATUS_STACK_OVERFLOW;
		return STATUS_ACCESS_VIOLATION;
	case SIGBUS:
		return STATUS_IN_PAGE_ERROR;
	case SIGILL:
		return STATUS_ILLEGAL_INSTRUCTION;
	case SIGFPE:
		return STATUS_INTEGER_DIVIDE_BY_ZERO;
	}
	return STATUS_IO_TIMEOUT;
}

static void recover(struct np_thread *t, ucontext_t *uc, int sig,
		    const siginfo_t *si, uint32_t code)
{
	greg_t *g = uc->uc_mcontext.gregs;

	t->fault.code = code;
	t->fault.signo = sig;
	t->fault.addr = si ? (uintptr_t)si->si_addr : 0;
	t->fault.pc = (uintptr_t)g[REG_RIP];
	t->fault.sp = (uintptr_t)g[REG_RSP];
	t->fault.entry = t->entry;
	t->fault.irql = t->irql;

	g[REG_RSP] = (greg_t)t->saved_rsp;
	g[REG_RIP] = (greg_t)(uintptr_t)np_call_abort;
	g[REG_RAX] = (greg_t)code;
	g[REG_EFL] &= ~(greg_t)0x400;	/* DF: the ABI wants it clear */
}

static void chain(int sig)
{
	int i = signal_index(sig);
	struct sigaction dfl;

	if (i < 0)
		return;
	if (foreign_fault_seen || !installed) {
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(sig, &dfl, NULL);
		return;
	}
	foreign_fault_seen = 1;
	/* Re-fault into the previous owner with the real context. */
	sigaction(sig, &previous[i], NULL);
}

static void trap_handler(int sig, siginfo_t *si, void *ucv)
{
	struct np_thread *t = np_tls;
	ucontext_t *uc = ucv;
	int saved_errno = errno;

	if (t && atomic_load_explicit(&t->in_driver, memory_order_relaxed)) {
		uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
		uint32_t code = fault_code(sig, si, sp, t);

		if (np_emulate(t, uc, sig, si, &code)) {
			errno = saved_errno;
			return;
		}
		recover(t, uc, sig, si, code);
		errno = saved_errno;
		return;
	}
	chain(sig);
	errno = saved_errno;
}

static void abort_handler(int sig, siginfo_t *si, void *ucv)
{
	struct np_thread *t = np_tls;
	int saved_errno = errno;
	uint64_t seq;

	(void)si;
	if (!t || !atomic_load(&t->in_driver))
		return;
	seq = atomic_load(&t->call_seq);
	if (atomic_load(&t->abort_seq) != seq)
		return;
	recover(t, ucv, sig, NULL, STATUS_IO_TIMEOUT);
	errno = saved_errno;
}

static int our_action(const struct sigaction *sa)
{
	return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == trap_handler;
}

/* Put our handler on top of every trapped signal; chain to whoever was there. */
int np_trap_ensure(void)
{
	struct sigaction sa, cur;
	size_t i;
	int rc = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = trap_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);

	pthread_mutex_lock(&trap_lock);
	for (i = 0; i < NP_NSIGNALS; i++) {
		if (sigaction(trapped_signals[i], NULL, &cur)) {
			rc = -1;
			continue;
		}
		if (our_action(&cur))
			continue;
		previous[i] = cur;
		if (sigaction(trapped_signals[i], &sa, NULL))
			rc = -1;
	}
	if (!installed) {
		struct sigaction ab;

		np_kuser_init();
		memset(&ab, 0, sizeof(ab));
		ab.sa_sigaction = abort_handler;
		ab.sa_flags = SA_SIGINFO | SA_ONSTACK;
		sigemptyset(&ab.sa_mask);
		if (sigaction(np_sigabort(), &ab, NULL))
			rc = -1;
	}
	installed = 1;
	pthread_mutex_unlock(&trap_lock);
	return rc;
}

int np_api_trap_ensure(void)
{
	return np_trap_ensure();
}

/* ---- per-thread state ---------------------------------------------------- */

static void thread_exit(void *p)
{
	struct np_thread *t = p;
	stack_t off = { .ss_flags = SS_DISABLE };

	pthread_mutex_lock(&trap_lock);
	atomic_store(&threads[t->slot], NULL);
	pthread_mutex_unlock(&trap_lock);
	sigaltstack(&off, NULL);
	np_tls = NULL;
	np_kpcr_detach(t);
	np_unmap(t->altstack, t->altstack_len);
	np_unmap(t, NP_PAGE_SIZE);
}

static void make_thread_key(void)
{
	pthread_key_create(&thread_key, thread_exit);
}

/* Make sure this thread's alternate stack is one we trust. */
static int ensure_altstack(struct np_thread *t)
{
	stack_t cur, ss;

	if (sigaltstack(NULL, &cur))
		return -1;
	if (!(cur.ss_flags & SS_DISABLE) && cur.ss_size >= t->altstack_len)
		return 0;
	ss.ss_sp = t->altstack;
	ss.ss_size = t->altstack_len;
	ss.ss_flags = 0;
	return sigaltstack(&ss, NULL);
}

struct np_thread *np_thread_setup(void)
{
	struct np_thread *t;
	long min;
	int i;

	pthread_once(&thread_key_once, make_thread_key);
	t = np_map(NP_PAGE_SIZE, PROT_READ | PROT_WRITE, "thread");
	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	min = sysconf(_SC_SIGSTKSZ);
	if (min < 65536)
		min = 65536;
	t->altstack_len = NP_ALIGN_UP((size_t)min * 2, NP_PAGE_SIZE);
	t->altstack = np_map(t->altstack_len, PROT_READ | PROT_WRITE,
			     "altstack");
	if (!t->altstack || ensure_altstack(t))
		goto err_altstack;
	t->tid = (unsigned long)pthread_self();

	pthread_mutex_lock(&trap_lock);
	for (i = 0; i < NP_MAX_THREADS; i++)
		if (!atomic_load(&threads[i]))
			break;
	if (i == NP_MAX_THREADS) {
		pthread_mutex_unlock(&trap_lock);
		goto err_altstack;
	}
	t->slot = i;
	atomic_store(&threads[i], t);
	pthread_mutex_unlock(&trap_lock);

	/* Without it a driver's gs: load is only reported, not run. */
	np_kpcr_attach(t);
	np_tls = t;
	pthread_setspecific(thread_key, t);
	return t;

err_altstack:
	np_unmap(t->altstack, t->altstack_len);
	np_unmap(t, NP_PAGE_SIZE);
	return NULL;
}

/* ---- the watchdog ---------------------------------------------------------- */

/*
 * The watchdog times calls with its own clock: the first time it sees a call
 * (by call_seq) it notes the time, and once that same call has run past its
 * budget it asks the thread to abort it.  The calling thread thus never
 * reads the clock.  The watchdog ticks every 2 ms while some call has a
 * deadline and every 20 ms otherwise, so a hang is caught at most ~24 ms
 * after its budget ran out.
 */
static void *watchdog(void *unused)
{
	const struct timespec busy = { 0, NP_WATCHDOG_PERIOD_NS };
	const struct timespec idle = { 0, NP_WATCHDOG_IDLE_NS };
	sigset_t all;
	int i;

	(void)unused;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		uint64_t now = np_now_ns();
		int watching = 0;

		pthread_mutex_lock(&trap_lock);
		for (i = 0; i < NP_MAX_THREADS; i++) {
			struct np_thread *t = atomic_load(&threads[i]);
			uint64_t budget, seq;

			if (!t || !atomic_load(&t->in_driver))
				continue;
			seq = atomic_load(&t->call_seq);
			budget = atomic_load(&t->budget_ns);
			watching |= budget != 0;
			if (t->wd_seq != seq) {
				t->wd_seq = seq;
				t->wd_since = now;
				continue;
			}
			if (!budget || now - t->wd_since < budget)
				continue;
			if (atomic_load(&t->abort_seq) == seq)
				continue;
			atomic_store(&t->abort_seq, seq);
			pthread_kill((pthread_t)t->tid, np_sigabort());
		}
		pthread_mutex_unlock(&trap_lock);
		/* Idle, a call that starts now is first seen up to one idle
		 * period late: deadlines are met within budget + 22 ms. */
		nanosleep(watching ? &busy : &idle, NULL);
	}
	return NULL;
}

void np_watchdog_arm(void)
{
	pthread_t th;
	pthread_attr_t attr;

	pthread_mutex_lock(&trap_lock);
	if (!watchdog_started) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		if (pthread_create(&th, &attr, watchdog, NULL) == 0)
			watchdog_started = 1;
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_unlock(&trap_lock);
}
