/* SPDX-License-Identifier: MIT */
/*
 * pump_thread.c - the host's data path on a thread of its own.
 *
 * With a TAP to serve, the host runs the steady state in C: the pump thread
 * waits in ppoll() on the TAP, the wire, the interrupt eventfd and its own
 * kick eventfd, and makes np_pump_round() passes until nothing is left to
 * do - frames read, sent, transmitted, interrupts serviced in the same
 * wake-up, indications written to the TAP, packets returned - then sleeps
 * until an fd is ready or the next NDIS timer or moderated interrupt is due.
 * No Python runs on it, and the host's event loop (trio) is not woken per
 * frame: it supervises.
 *
 * Serialisation.  NDIS calls a miniport's entry points one at a time (the
 * mock driver relies on it), so every driver call and every touch of the
 * adapter's state happens under pt->serial.  The thread holds it for one
 * pass at a time; other threads (the host's OID requests, CheckForHang,
 * resets, capture, link changes, reports) take it with np_api_pump_lock()
 * and np_api_pump_unlock().  A waiter gets it at the end of the current
 * pass: the thread does not take it back while `waiters` is non-zero but
 * waits on its kick eventfd, which unlock writes (after something another
 * thread did - an OID set, a timer armed, a packet sent - the thread must
 * look again anyway).
 *
 * What the host must see is announced on notify_fd, an eventfd its event
 * loop waits on: control events at the head of the adapter's event queue
 * (status indications, OID and reset completions: the thread writes no
 * received frame to the TAP past them until the host took them, so their
 * order is kept), new DbgPrint lines, captured frames, and the thread's end.
 * The host then takes them under the lock.
 *
 * Faults.  The thread registers with the trap on its first instruction like
 * every thread that enters drivers (np_thread_get: per-thread state, its own
 * alternate signal stack) and blocks every signal but the trapped ones and
 * the watchdog's, so the process's other signals reach the main thread.  A
 * fault, a missed deadline or a fatal verifier finding ends np_call() with a
 * code, exactly as on any other thread: the context is abandoned, and the
 * thread stops, keeps the code for np_api_pump_join() and says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "np.h"

#define NP_PUMP_ROUNDS		16	/* passes per lock hold */
#define NP_PUMP_STACK		(256 * 1024)

__thread struct np_adapter *np_pumping __attribute__((tls_model("initial-exec")));

struct np_pump_thread {
	struct np_adapter *a;
	struct np_api_pump *p;		/* the caller's: fds in, counters out */
	pthread_t thread;
	pthread_mutex_t serial;		/* held around every use of the adapter */
	_Atomic int waiters;		/* threads waiting for serial */
	_Atomic int stop;
	_Atomic int running;
	int kick_fd;			/* to the thread: look again */
	int notify_fd;			/* to the host: look (see above) */
	uint32_t fault;			/* what ended the thread; 0: stopped */

	/* Guarded by serial, written by the thread at the end of a pass. */
	int poll_tap, poll_wire;	/* worth waiting for: room to take frames */
	uint64_t next_due;		/* next timer or deferred interrupt; 0: none */
	/* What was announced, so that it is announced once. */
	uint32_t told_head;		/* ev_head when control events were */
	int told_events;
	uint64_t told_log, told_capture;
};

static void post(int fd)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: it is readable then. */
	(void)!write(fd, &one, sizeof(one));
}

static void drain(int fd)
{
	uint64_t n;

	(void)!read(fd, &n, sizeof(n));
}

/* Up to NP_PUMP_ROUNDS passes; *left: what was not finished.  Holds serial. */
static uint32_t pump_pass(struct np_pump_thread *pt, unsigned ready,
			  unsigned *left)
{
	uint64_t now = np_now_ns();
	uint32_t fault = 0;
	unsigned more = 0;
	int round, progress;

	for (round = 0; round < NP_PUMP_ROUNDS; round++) {
		fault = np_pump_round(pt->a, pt->p, now, ready, &more, &progress);
		if (fault || !more)
			break;
		ready = more;
	}
	*left = more;
	return fault;
}

/* What the host should look at now; holds serial. */
static int worth_telling(struct np_pump_thread *pt)
{
	struct np_adapter *a = pt->a;
	uint64_t log = __atomic_load_n(&a->ctx.image->log.next, __ATOMIC_RELAXED);
	uint64_t captured = a->stats.captured;
	int tell = 0;

	if (a->ev_head != a->ev_tail) {
		if (!pt->told_events || pt->told_head != a->ev_head)
			tell = 1;
		pt->told_events = 1;
		pt->told_head = a->ev_head;
	} else {
		pt->told_events = 0;
	}
	if (log != pt->told_log || captured != pt->told_capture)
		tell = 1;
	pt->told_log = log;
	pt->told_capture = captured;
	return tell;
}

/* After a pass, still holding serial: what the wait should wait for. */
static void plan_wait(struct np_pump_thread *pt)
{
	struct np_adapter *a = pt->a;
	struct np_api_pump *p = pt->p;

	pt->poll_tap = p->tap_fd >= 0 && a->initialised && a->tx_nfree &&
		       !p->tap_error;
	pt->poll_wire = p->wire_fd >= 0 && np_device_rx_room(a->device) &&
			!p->wire_error;
	pt->next_due = np_api_adapter_next_timer(a);
}

/* Sleep until something is ready; returns the fds to read. */
static unsigned pump_wait(struct np_pump_thread *pt, unsigned left)
{
	struct np_api_pump *p = pt->p;
	struct pollfd fds[4];
	struct timespec ts, *timeout = NULL;
	nfds_t n = 0, tap = 0, wire = 0;
	unsigned ready = 0;
	int someone_waits = atomic_load(&pt->waiters) != 0;

	if (left && !someone_waits)
		return left;			/* more to do: no sleep */
	fds[n++] = (struct pollfd){ .fd = pt->kick_fd, .events = POLLIN };
	if (!someone_waits) {
		fds[n++] = (struct pollfd){ .fd = pt->a->irq_eventfd, .events = POLLIN };
		if (pt->poll_tap) {
			tap = n;
			fds[n++] = (struct pollfd){ .fd = p->tap_fd, .events = POLLIN };
		}
		if (pt->poll_wire) {
			wire = n;
			fds[n++] = (struct pollfd){ .fd = p->wire_fd, .events = POLLIN };
		}
		if (pt->next_due) {
			uint64_t now = np_now_ns();
			uint64_t wait = pt->next_due > now ? pt->next_due - now : 0;

			ts.tv_sec = (time_t)(wait / 1000000000ULL);
			ts.tv_nsec = (long)(wait % 1000000000ULL);
			timeout = &ts;
		}
	}
	if (ppoll(fds, n, timeout, NULL) <= 0)
		return left;			/* a timer is due, or EINTR */
	if (fds[0].revents)
		drain(pt->kick_fd);
	if (n > 1 && fds[1].revents)
		drain(pt->a->irq_eventfd);	/* the line itself is looked at */
	if (tap && fds[tap].revents)
		ready |= NP_PUMP_TAP;
	if (wire && fds[wire].revents)
		ready |= NP_PUMP_WIRE;
	return ready | left;
}

static void *pump_main(void *arg)
{
	struct np_pump_thread *pt = arg;
	unsigned ready = NP_PUMP_TAP | NP_PUMP_WIRE, left;
	uint32_t fault = 0;
	sigset_t trapped;

	pthread_setname_np(pthread_self(), "ndisproxy-pump");
	sigemptyset(&trapped);
	sigaddset(&trapped, SIGSEGV);
	sigaddset(&trapped, SIGBUS);
	sigaddset(&trapped, SIGILL);
	sigaddset(&trapped, SIGFPE);
	sigaddset(&trapped, SIGRTMIN + 3);	/* the watchdog's (trap.c) */
	pthread_sigmask(SIG_UNBLOCK, &trapped, NULL);
	if (!np_thread_get()) {
		fault = STATUS_INSUFFICIENT_RESOURCES;
		goto out;
	}
	np_pumping = pt->a;
	while (!atomic_load(&pt->stop)) {
		int tell;

		pthread_mutex_lock(&pt->serial);
		fault = pump_pass(pt, ready, &left);
		/* Faulted on another thread's call: nothing left to pump. */
		if (!fault && (pt->a->ctx.faulted || pt->a->ctx.image->ctx.faulted))
			fault = NP_REFUSED_FAULTED;
		tell = worth_telling(pt);
		plan_wait(pt);
		pthread_mutex_unlock(&pt->serial);
		if (fault)
			break;
		if (tell)
			post(pt->notify_fd);
		ready = pump_wait(pt, left);
	}
	np_pumping = NULL;
out:
	pt->fault = fault;
	atomic_store(&pt->running, 0);
	post(pt->notify_fd);
	return NULL;
}

/*
 * Start pumping `a` between p's fds on a new thread.  From now on every
 * other use of the adapter must hold np_api_pump_lock().
 */
int np_api_pump_start(struct np_adapter *a, struct np_api_pump *p,
		      struct np_pump_thread **out)
{
	struct np_pump_thread *pt;
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	*out = NULL;
	if (a->pump_thread || !a->initialised)
		return -EBUSY;
	pt = calloc(1, sizeof(*pt));
	if (!pt)
		return -ENOMEM;
	pt->a = a;
	pt->p = p;
	pt->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pt->kick_fd < 0)
		goto err_free;
	pt->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pt->notify_fd < 0)
		goto err_kick;
	pthread_mutex_init(&pt->serial, NULL);
	pt->told_log = a->ctx.image->log.next;
	pt->told_capture = a->stats.captured;
	atomic_store(&pt->running, 1);
	a->pump_thread = pt;

	/* Born with every signal blocked; it unblocks the trapped ones. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, NP_PUMP_STACK);
	rc = pthread_create(&pt->thread, &attr, pump_main, pt);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		a->pump_thread = NULL;
		pthread_mutex_destroy(&pt->serial);
		errno = rc;
		goto err_notify;
	}
	*out = pt;
	return 0;

err_notify:
	close(pt->notify_fd);
err_kick:
	close(pt->kick_fd);
err_free:
	rc = -errno;
	free(pt);
	return rc;
}

void np_api_pump_lock(struct np_pump_thread *pt)
{
	atomic_fetch_add(&pt->waiters, 1);
	pthread_mutex_lock(&pt->serial);
	atomic_fetch_sub(&pt->waiters, 1);
}

/* Every unlock of another thread kicks: the pump waits for it (see above). */
void np_api_pump_unlock(struct np_pump_thread *pt)
{
	pthread_mutex_unlock(&pt->serial);
	post(pt->kick_fd);
}

int np_api_pump_notify_fd(struct np_pump_thread *pt)
{
	return pt->notify_fd;
}

/* Take the announcement; 1 while the thread runs, 0 once it ended. */
int np_api_pump_notice(struct np_pump_thread *pt)
{
	drain(pt->notify_fd);
	return atomic_load(&pt->running);
}

/* Ask the thread to end after its current pass; returns at once. */
void np_api_pump_stop(struct np_pump_thread *pt)
{
	atomic_store(&pt->stop, 1);
	post(pt->kick_fd);
}

/* The counters, consistent with each other (a copy under the lock). */
void np_api_pump_counters(struct np_pump_thread *pt, struct np_api_pump *out)
{
	np_api_pump_lock(pt);
	*out = *pt->p;
	np_api_pump_unlock(pt);		/* the thread waits for the kick */
}

/*
 * Wait for the thread to end (stop it first, or let a fault end it) and
 * free it; the adapter is the caller's again.  Returns the fault code that
 * ended it, or 0.
 */
uint32_t np_api_pump_join(struct np_pump_thread *pt)
{
	uint32_t fault;

	pthread_join(pt->thread, NULL);
	fault = pt->fault;
	pt->a->pump_thread = NULL;
	pthread_mutex_destroy(&pt->serial);
	close(pt->kick_fd);
	close(pt->notify_fd);
	free(pt);
	return fault;
}

/* The pump thread of `a`, stopped and joined (before halt or free). */
void np_pump_thread_end(struct np_adapter *a)
{
	if (!a->pump_thread)
		return;
	np_api_pump_stop(a->pump_thread);
	np_api_pump_join(a->pump_thread);
}
