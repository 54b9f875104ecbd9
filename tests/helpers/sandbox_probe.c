/*
 * Applies energyd's sandbox (src/energyd/sandbox.c) to itself, does what energyd's threads do
 * (a thread, pread, clock_nanosleep, a datagram to an AF_UNIX socket as sd_notify sends), prints
 * "allowed", then makes the system call named by argv[1] (chroot, or none), which the filter
 * must refuse: the process must die with the log line that names it.
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void *thread_main(void *arg)
{
	return arg;
}

int main(int argc, char **argv)
{
	char err[256];
	if (argc < 2) {
		fprintf(stderr, "usage: sandbox-probe chroot|none\n");
		return 2;
	}
	if (sandbox_apply(err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, NULL) != 0)
		return 3;
	char buf[16];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, buf, sizeof(buf), 0) <= 0)
		return 4;
	close(fd);
	struct timespec ts = {0, 1000000};
	clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) < 0)
		return 5;
	struct iovec iov = {.iov_base = "READY=1", .iov_len = 7};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (sendmsg(pair[0], &msg, MSG_NOSIGNAL) != 7)
		return 6;
	printf("allowed\n");
	fflush(stdout);
	if (strcmp(argv[1], "chroot") == 0 && chroot("/") < 0)
		perror("chroot");
	return 0;
}
