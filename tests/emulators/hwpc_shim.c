/*
 * LD_PRELOAD shim that plays the kernel's generic hardware events (PERF_TYPE_HARDWARE: cycles,
 * instructions, cache misses; include/uapi/linux/perf_event.h) so that energyd's
 * hardware-counter attribution runs on machines without a CPU PMU (virtual machines).
 *
 * tests/emulators/hwpc.py writes, under $HWPC_SHIM_ROOT, one file per counter: cpu/N/EVENT for
 * the CPU-wide counters (pid -1, cpu N), pid/P/EVENT for a process's (pid P, cpu -1) and
 * pid/P/cpu/N/EVENT for a process's on one CPU (pid P, cpu N; its time_enabled is the process's
 * time on that CPU, as the kernel's), EVENT being cycles, instructions or cache-misses. Each file
 * is five little-endian uint64: a sequence number, the count, time_enabled and time_running (ns)
 * and the sequence number again (the writer bumps both; a read that sees them differ is retried, as
 * a seqlock). A cgroup's counters (perf_event_open(pid = a cgroup directory's fd, cpu N,
 * PERF_FLAG_PID_CGROUP)) are cgroup/INO/cpu/N/EVENT, INO being the directory's inode number (the
 * shim finds the directory by fstat, which works whoever energyd runs as); their time_enabled
 * is the cgroup's time on that CPU, as the kernel's perf cgroup time. As in the kernel, cgroup
 * mode without a CPU (or with pid -1) is EINVAL and a descriptor that is not a directory EBADF;
 * a directory without files goes to the kernel.
 * When $HWPC_SHIM_ROOT/paranoid exists, it plays kernel.perf_event_paranoid for CPU-wide events
 * (pid -1, or a cgroup): above 0, a caller whose effective uid is not 0 gets EACCES, as
 * perf_allow_cpu() answers an account without CAP_PERFMON.
 * When the test plays the perf msr PMU (arch/x86/events/msr.c), $HWPC_SHIM_ROOT/msr_type holds
 * the PMU type it gave energyd's sysfs, and cpu/N/aperf, cpu/N/mperf and cpu/N/tsc the counts
 * of its events aperf (config 1), mperf (2) and tsc (0), CPU-wide only (pid -1): a pid, or a
 * mode filter (exclude_*), is EINVAL as in the kernel.
 *
 * perf_event_open for those events is checked as the perf core does for what the shim serves:
 * sampling (sample_period), a group (group_fd != -1), neither pid nor cpu given, are EINVAL; a CPU
 * without files is ENODEV. A process without files, and other events, go to the kernel: on a
 * machine without a PMU it refuses them (ENOENT), and energyd's seccomp filter must let the call
 * through to hear it. read() returns, like the kernel's, the counts since the event was opened: the
 * value, then time_enabled and time_running when read_format asks for them (ENOSPC for a shorter
 * buffer). ioctl PERF_EVENT_IOC_RESET restarts the counts; ENABLE and DISABLE are accepted (the
 * counters count from the open). The times let a test play multiplexing (running < enabled, and the
 * value counted only while running).
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
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "shim_real.h"

#define SHIM_FDS 4096

struct shim_counter {
	bool used;
	uint64_t read_format;
	uint64_t base[3]; /* value, enabled, running at the open (or the last reset) */
};

static struct shim_counter shim[SHIM_FDS];

/* value, enabled, running of a counter file, consistent (seqlock). */
static int shim_load(int fd, uint64_t v[3])
{
	for (int tries = 0; tries < 1000; tries++) {
		unsigned char b[40];
		if (real_pread(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b))
			return -1;
		uint64_t w[5];
		for (int k = 0; k < 5; k++) {
			w[k] = 0;
			for (int i = 7; i >= 0; i--)
				w[k] = w[k] << 8 | b[8 * k + i];
		}
		if (w[0] != w[4])
			continue; /* caught a write halfway */
		memcpy(v, &w[1], 3 * sizeof(*v));
		return 0;
	}
	return -1;
}

/* The test's directory, opened at the first call, before energyd drops root: a test's
 * temporary directory need not be searchable by the account it drops to. */
static int shim_root(const char *root)
{
	static int root_fd = -1;
	if (root_fd < 0)
		root_fd = real_open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return root_fd;
}

/* A number the test wrote in a file of its root, or dflt when there is none. */
static long shim_number(const char *root, const char *name, long dflt)
{
	long v = dflt;
	int fd = shim_root(root) < 0 ? -1 : openat(shim_root(root), name, O_RDONLY | O_CLOEXEC);
	char buf[32] = {0};
	if (fd >= 0 && real_pread(fd, buf, sizeof(buf) - 1, 0) > 0)
		v = strtol(buf, NULL, 10);
	if (fd >= 0)
		real_close(fd);
	return v;
}

/* The msr PMU's type the test plays (its msr_type file), or -1 when it plays none. */
static long shim_msr_type(const char *root)
{
	static long type = -2;
	if (type == -2)
		type = shim_number(root, "msr_type", -1);
	return type;
}

/* The kernel.perf_event_paranoid the test plays (its paranoid file), or -100 when none; read
 * at the first call (before energyd drops root). */
static long shim_paranoid(const char *root)
{
	static long level = -101;
	if (level == -101)
		level = shim_number(root, "paranoid", -100);
	return level;
}

/* The counter file of a cgroup event (pid a directory's fd): 0, or -1 with errno. */
static int cgroup_file(int dir_fd, int cpu, const char *ev, char *path, size_t len)
{
	struct stat st;
	if (fstat(dir_fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		errno = EBADF;
		return -1;
	}
	snprintf(path, len, "cgroup/%llu/cpu/%d/%s", (unsigned long long)st.st_ino, cpu, ev);
	return 0;
}

static const char *event_file(const char *root, const struct perf_event_attr *attr)
{
	if (attr->type == PERF_TYPE_HARDWARE)
		switch (attr->config) {
		case PERF_COUNT_HW_CPU_CYCLES:
			return "cycles";
		case PERF_COUNT_HW_INSTRUCTIONS:
			return "instructions";
		case PERF_COUNT_HW_CACHE_MISSES:
			return "cache-misses";
		}
	/* arch/x86/events/msr.c: PERF_MSR_TSC 0, PERF_MSR_APERF 1, PERF_MSR_MPERF 2 */
	if ((long)attr->type == shim_msr_type(root))
		switch (attr->config) {
		case 0:
			return "tsc";
		case 1:
			return "aperf";
		case 2:
			return "mperf";
		}
	return NULL;
}

/* A scripted counter file opened as a counter: its fd, -1 without the file, -3 with errno. */
static int shim_open_file(const char *root, const struct perf_event_attr *attr, const char *path,
                          unsigned long flags)
{
	int root_fd = shim_root(root);
	int fd = root_fd < 0 ? -1
	                     : openat(root_fd, path,
	                              O_RDONLY | ((flags & PERF_FLAG_FD_CLOEXEC) ? O_CLOEXEC : 0));
	if (fd < 0)
		return -1;
	uint64_t v[3];
	if (fd >= SHIM_FDS || shim_load(fd, v) < 0) {
		real_close(fd);
		errno = EIO;
		return -3;
	}
	shim[fd] = (struct shim_counter){.used = true, .read_format = attr->read_format};
	memcpy(shim[fd].base, v, sizeof(v));
	return fd;
}

/* A cgroup's counter on one CPU: an fd, -1 with errno, or -2 when the directory is not
 * scripted (the kernel answers). */
static long shim_cgroup_open(const char *root, const struct perf_event_attr *attr, int dir_fd,
                             int cpu, const char *ev, unsigned long flags)
{
	char path[512], dir[256];
	if (cgroup_file(dir_fd, cpu, ev, path, sizeof(path)) < 0)
		return -1;
	snprintf(dir, sizeof(dir), "%.*s", (int)(strstr(path, "/cpu/") - path), path);
	struct stat st;
	if (shim_root(root) < 0 || fstatat(shim_root(root), dir, &st, 0) < 0)
		return -2;
	if (shim_paranoid(root) > 0 && geteuid() != 0) {
		errno = EACCES;
		return -1;
	}
	int fd = shim_open_file(root, attr, path, flags);
	if (fd == -1)
		errno = ENODEV; /* no such CPU */
	return fd < 0 ? -1 : fd;
}

/* The fake events' perf_event_open: an fd, -1 with errno, or -2 for "ask the kernel". */
static long shim_perf_open(const char *root, const struct perf_event_attr *attr, pid_t pid, int cpu,
                           int group_fd, unsigned long flags)
{
	const char *ev = event_file(root, attr);
	bool msr = attr->type != PERF_TYPE_HARDWARE;
	bool cgroup = flags & PERF_FLAG_PID_CGROUP;
	if (cgroup && ev && !msr && !attr->sample_period && group_fd == -1 && pid >= 0 && cpu >= 0)
		return shim_cgroup_open(root, attr, pid, cpu, ev, flags);
	if (cgroup) {
		errno = EINVAL;
		return -1;
	}
	if (pid == -1 && cpu >= 0 && shim_paranoid(root) > 0 && geteuid() != 0) {
		errno = EACCES;
		return -1;
	}
	/* The msr PMU counts CPUs only and has no mode filters (PERF_PMU_CAP_NO_EXCLUDE). */
	bool bad_msr = msr && (pid != -1 || attr->exclude_user || attr->exclude_kernel ||
	                       attr->exclude_hv || attr->exclude_idle);
	if (!ev || bad_msr || attr->sample_period || group_fd != -1 || (pid == -1 && cpu < 0) ||
	    pid < -1 || cpu < -1) {
		errno = EINVAL;
		return -1;
	}
	char path[512];
	if (pid == -1)
		snprintf(path, sizeof(path), "cpu/%d/%s", cpu, ev);
	else if (cpu >= 0)
		snprintf(path, sizeof(path), "pid/%d/cpu/%d/%s", (int)pid, cpu, ev);
	else
		snprintf(path, sizeof(path), "pid/%d/%s", (int)pid, ev);
	int fd = shim_open_file(root, attr, path, flags);
	if (fd < 0 && pid != -1)
		return -2; /* not a scripted process */
	if (fd == -1)
		errno = ENODEV;
	return fd < 0 ? -1 : fd;
}

long syscall(long number, ...)
{
	va_list ap;
	va_start(ap, number);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	const char *root = getenv("HWPC_SHIM_ROOT");
	if (number == SYS_perf_event_open && root && a[0]) {
		const struct perf_event_attr *attr = (const struct perf_event_attr *)a[0];
		bool served =
		    attr->type == PERF_TYPE_HARDWARE || (long)attr->type == shim_msr_type(root);
		long fd = served ? shim_perf_open(root, attr, (pid_t)a[1], (int)a[2], (int)a[3],
		                                  (unsigned long)a[4])
		                 : -2;
		if (fd != -2)
			return fd;
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
	if (fd < 0 || fd >= SHIM_FDS || !shim[fd].used)
		return real(fd, buf, n);
	uint64_t v[3], out[3];
	size_t k = 0;
	if (shim_load(fd, v) < 0) {
		errno = EIO;
		return -1;
	}
	out[k++] = v[0] - shim[fd].base[0];
	if (shim[fd].read_format & PERF_FORMAT_TOTAL_TIME_ENABLED)
		out[k++] = v[1] - shim[fd].base[1];
	if (shim[fd].read_format & PERF_FORMAT_TOTAL_TIME_RUNNING)
		out[k++] = v[2] - shim[fd].base[2];
	if (n < k * sizeof(uint64_t)) {
		errno = ENOSPC;
		return -1;
	}
	memcpy(buf, out, k * sizeof(uint64_t));
	return (ssize_t)(k * sizeof(uint64_t));
}

int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (fd >= 0 && fd < SHIM_FDS && shim[fd].used) {
		if (request == PERF_EVENT_IOC_RESET) {
			uint64_t v[3];
			if (shim_load(fd, v) < 0) {
				errno = EIO;
				return -1;
			}
			shim[fd].base[0] = v[0]; /* the times keep running, as in the kernel */
			return 0;
		}
		if (request == PERF_EVENT_IOC_ENABLE || request == PERF_EVENT_IOC_DISABLE)
			return 0;
		errno = ENOTTY;
		return -1;
	}
	static int (*real)(int, unsigned long, ...) = NULL;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "ioctl");
	return real(fd, request, arg);
}

int close(int fd)
{
	if (fd >= 0 && fd < SHIM_FDS)
		shim[fd].used = false;
	return real_close(fd);
}
