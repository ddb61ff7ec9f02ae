/* SPDX-License-Identifier: MIT */
/*
 * tap_relay.c - the baselines for bench_tap.py: a minimal TAP <-> TAP relay.
 *
 *     tap_relay [--vnet] TAP_A TAP_B
 *
 * Creates (or attaches to) both TAPs with TUNSETIFF (IFF_TAP | IFF_NO_PI).
 * Without --vnet there is no IFF_VNET_HDR, so no offloads: every frame is at
 * most MTU + 14 bytes, as it is for ndisproxy's mock NIC today.  With --vnet
 * both TAPs carry a 12-byte virtio_net_hdr and take checksum and TSO
 * offloads (TUNSETOFFLOAD): Linux hands over 64 KiB TCP segments with their
 * checksums unfilled and the relay passes them on whole - the ceiling
 * offloads (NDIS large send, a later issue) aim at.  It prints "ready" on
 * stdout and then copies frames both ways, one read() and one write() per
 * frame, driven by poll().
 * The attached fds keep working after the caller moves the TAPs into other
 * namespaces.  TAPs it created go away when it exits.  Ends on SIGTERM/SIGINT
 * or when a TAP disappears; prints its frame counts on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BATCH 64                /* frames moved per direction per wakeup */
#define VNET_HDR 12             /* struct virtio_net_hdr_mrg_rxbuf */
#define BUFFER (65536 + 256)    /* a whole GSO segment and its header */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int open_tap(const char *name, int vnet)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int hdr = VNET_HDR;

	if (fd < 0) {
		perror("/dev/net/tun");
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "TUNSETIFF %s: %s\n", name, strerror(errno));
		close(fd);
		return -1;
	}
	if (vnet && (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
		     ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 |
			   TUN_F_TSO6 | TUN_F_TSO_ECN) < 0)) {
		fprintf(stderr, "%s: vnet header or offloads: %s\n", name,
			strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Moves up to BATCH frames from -> to; -1 if a fd failed for good. */
static int relay(int from, int to, unsigned long *frames)
{
	static unsigned char buf[BUFFER];

	for (int i = 0; i < BATCH; i++) {
		ssize_t n = read(from, buf, sizeof(buf));

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if (n == 0)
			return -1;
		/* A TAP write hands the frame to the stack at once; a failed
		 * one (the other side down) drops the frame, as a cable would. */
		if (write(to, buf, (size_t)n) == n)
			(*frames)++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pollfd pfd[2];
	unsigned long frames[2] = { 0, 0 };
	struct sigaction sa;
	int vnet = argc > 1 && !strcmp(argv[1], "--vnet");

	argv += vnet;
	argc -= vnet;
	if (argc != 3) {
		fprintf(stderr, "usage: tap_relay [--vnet] TAP_A TAP_B\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	pfd[0].fd = open_tap(argv[1], vnet);
	pfd[1].fd = open_tap(argv[2], vnet);
	if (pfd[0].fd < 0 || pfd[1].fd < 0)
		return 1;
	pfd[0].events = pfd[1].events = POLLIN;
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		for (int i = 0; i < 2; i++) {
			if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL))
				stop = 1;
			else if ((pfd[i].revents & POLLIN)
				 && relay(pfd[i].fd, pfd[1 - i].fd, &frames[i]) < 0)
				stop = 1;
		}
	}
	fprintf(stderr, "tap_relay: %lu frames %s -> %s, %lu frames %s -> %s\n",
		frames[0], argv[1], argv[2], frames[1], argv[2], argv[1]);
	return 0;
}
