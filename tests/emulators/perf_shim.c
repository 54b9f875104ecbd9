/*
 * LD_PRELOAD shim that plays the kernel's RAPL perf PMU (arch/x86/events/rapl.c) for one fake
 * PMU type, so that energyd's perf family runs on machines without the PMU (virtual machines).
 *
 * tests/emulators/perf.py writes the PMU's sysfs files (type, events/energy-*, .scale, .unit)
 * under a fake sysfs root and, under $PERF_SHIM_ROOT, one file per CPU and event config,
 * cpu/N/0xCC, holding the event's 64-bit count as the kernel keeps it: in units of 2^-32 J
 * (the PMU's scale, 2.3283064365386962890625e-10), little-endian, the same file for every CPU of a
 * package. perf_event_open for the type in $PERF_SHIM_ROOT/type is checked as rapl_pmu_event_init
 * and the perf core check it, and any other type goes to the kernel:
 *
 *   - config outside the event mask (0xff) or an event the CPU lacks (no file): EINVAL;
 *   - sampling (sample_period), or a task (pid != -1) or no CPU (cpu < 0): EINVAL, the events
 *     count system-wide per package only.
 *
 * read() of such a descriptor returns, like the kernel's, the count accumulated since the event
 * was opened (8 bytes; ENOSPC for a shorter buffer). Nothing else changes.
 */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "shim_real.h"

#define SHIM_FDS      4096
#define RAPL_EVT_MASK 0xffULL

static bool shim_fd[SHIM_FDS];
static uint64_t shim_base[SHIM_FDS]; /* count at open: read() returns the count since */

/* A small number from a file under the root; def when absent or malformed. */
static long shim_number(const char *root, const char *name, long def)
{
	char path[4200], buf[32];
	snprintf(path, sizeof(path), "%s/%s", root, name);
	int fd = real_open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return def;
	ssize_t n = real_pread(fd, buf, sizeof(buf) - 1, 0);
	real_close(fd);
	if (n <= 0)
		return def;
	buf[n] = '\0';
	char *end;
	long v = strtol(buf, &end, 10);
	return end == buf ? def : v;
}

static int shim_count(int fd, uint64_t *count)
{
	unsigned char b[8];
	if (real_pread(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -1;
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	*count = v;
	return 0;
}

/* The fake PMU's perf_event_open; returns an fd or -1 with errno. */
static long shim_perf_open(const char *root, const struct perf_event_attr *attr, pid_t pid, int cpu,
                           unsigned long flags)
{
	if (attr->config & ~RAPL_EVT_MASK || attr->config == 0 || attr->sample_period ||
	    pid != -1 || cpu < 0) {
		errno = EINVAL;
		return -1;
	}
	char path[4200];
	snprintf(path, sizeof(path), "%s/cpu/%d/0x%02llx", root, cpu,
	         (unsigned long long)attr->config);
	int fd = real_open(path, O_RDONLY | ((flags & PERF_FLAG_FD_CLOEXEC) ? O_CLOEXEC : 0));
	if (fd < 0) {
		errno = errno == ENOENT ? EINVAL : errno; /* the CPU lacks the event */
		return -1;
	}
	uint64_t base;
	if (fd >= SHIM_FDS || shim_count(fd, &base) < 0) {
		real_close(fd);
		errno = EIO;
		return -1;
	}
	shim_fd[fd] = true;
	shim_base[fd] = base;
	return fd;
}

long syscall(long number, ...)
{
	va_list ap;
	va_start(ap, number);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	const char *root = getenv("PERF_SHIM_ROOT");
	if (number == SYS_perf_event_open && root && a[0]) {
		const struct perf_event_attr *attr = (const struct perf_event_attr *)a[0];
		if ((long)attr->type == shim_number(root, "type", -1))
			return shim_perf_open(root, attr, (pid_t)a[1], (int)a[2],
			                      (unsigned long)a[4]);
	}
	static long (*real)(long, ...) = NULL;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "syscall");
	return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

ssize_t read(int fd, void *buf, size_t n)
{
	static ssize_t (*real)(int, void *, size_t) = NULL;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "read");
	if (fd < 0 || fd >= SHIM_FDS || !shim_fd[fd])
		return real(fd, buf, n);
	uint64_t count;
	if (n < sizeof(count)) {
		errno = ENOSPC;
		return -1;
	}
	if (shim_count(fd, &count) < 0) {
		errno = EIO;
		return -1;
	}
	count -= shim_base[fd];
	memcpy(buf, &count, sizeof(count));
	return (ssize_t)sizeof(count);
}

int close(int fd)
{
	if (fd >= 0 && fd < SHIM_FDS)
		shim_fd[fd] = false;
	return real_close(fd);
}
