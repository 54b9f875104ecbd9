/*
 * The packages' effective frequency for the hardware-counter model's layers (hwpc.h,
 * hwpc_layers.h): APERF and MPERF of every counted CPU and the TSC of the first, from the perf
 * `msr` PMU (arch/x86/events/msr.c: the events tsc, aperf and mperf, counting only, one CPU
 * each). Over a window, MPERF advances at the TSC's rate and APERF at the core's actual clock,
 * both only while the CPU is not halted; so
 *
 *     MHz = TSC per second x sum of APERF deltas / sum of MPERF deltas / 1e6,
 *
 * the mean clock of the CPUs while they ran, weighted by how long each ran.
 */
#define _GNU_SOURCE
#include "hwpc.h"
#include "energy.h"
#include "source.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { F_APERF, F_MPERF, F_TSC, F_EVENTS };
static const char *const msr_event[F_EVENTS] = {"aperf", "mperf", "tsc"};
/* The kernel's encodings (enum perf_msr_id), when sysfs does not give them. */
static const unsigned msr_config[F_EVENTS] = {0x01, 0x02, 0x00};

/* The PMU's type and the events' encodings from sysfs; -errno, with the reason. */
static int msr_pmu(const char *sysfs_root, uint32_t *type, uint64_t *config, char *err, size_t len)
{
	char path[600], buf[64];
	uint64_t v;
	snprintf(path, sizeof(path), "%s/bus/event_source/devices/msr/type", sysfs_root);
	int rc = source_read_text(path, buf, sizeof(buf));
	if (rc < 0 || energy_parse_u64(buf, &v) < 0 || v > UINT32_MAX) {
		snprintf(err, len, "no perf msr PMU (%s: %s)", path,
		         rc < 0 ? strerror(-rc) : "not a number");
		return rc < 0 ? rc : -EINVAL;
	}
	*type = (uint32_t)v;
	for (int e = 0; e < F_EVENTS; e++) {
		unsigned enc = msr_config[e];
		snprintf(path, sizeof(path), "%s/bus/event_source/devices/msr/events/%s",
		         sysfs_root, msr_event[e]);
		rc = source_read_text(path, buf, sizeof(buf));
		if (rc < 0 || sscanf(buf, "event=%x", &enc) != 1) {
			snprintf(err, len, "the perf msr PMU has no %s event (%s: %s)",
			         msr_event[e], path, rc < 0 ? strerror(-rc) : "unexpected");
			return rc < 0 ? rc : -EINVAL;
		}
		config[e] = enc;
	}
	return 0;
}

static int msr_open(uint32_t type, uint64_t config, int cpu)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.type = type;
	attr.size = sizeof(attr);
	attr.config = config;
	attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	long fd = syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

void hwpc_freq_close(struct hwpc *h)
{
	for (int i = 0; i < HWPC_CPUS_MAX; i++)
		for (int e = 0; e < 2; e++)
			if (h->mfd[i][e] >= 0) {
				close(h->mfd[i][e]);
				h->mfd[i][e] = -1;
				h->fds--;
			}
	if (h->tsc_fd >= 0) {
		close(h->tsc_fd);
		h->tsc_fd = -1;
		h->fds--;
	}
	h->freq_on = false;
}

void hwpc_freq_open(struct hwpc *h, const char *sysfs_root)
{
	uint32_t type;
	uint64_t config[F_EVENTS];
	if (msr_pmu(sysfs_root ? sysfs_root : "/sys", &type, config, h->freq_error,
	            sizeof(h->freq_error)) < 0)
		return;
	for (int i = 0; i < h->n_cpus; i++)
		for (int e = 0; e < F_EVENTS; e++) {
			if (e == F_TSC && i > 0)
				continue; /* one TSC: it ticks at the same rate on every CPU */
			int fd = msr_open(type, config[e], h->cpu[i]);
			if (fd < 0) {
				snprintf(h->freq_error, sizeof(h->freq_error),
				         "perf_event_open(msr/%s/, cpu %d): %s", msr_event[e],
				         h->cpu[i], strerror(-fd));
				hwpc_freq_close(h);
				return;
			}
			if (e == F_TSC)
				h->tsc_fd = fd;
			else
				h->mfd[i][e] = fd;
			h->fds++;
		}
	h->freq_on = true;
}

double hwpc_freq_read(struct hwpc *h)
{
	if (!h->freq_on)
		return NAN;
	bool had = h->mhave;
	double a = 0, m = 0, tsc = NAN, tsc_s = 0;
	struct hwpc_reading r;
	for (int i = 0; i < h->n_cpus; i++)
		for (int e = 0; e < 2; e++) {
			if (hwpc_counter_read(h->mfd[i][e], &r) < 0) {
				had = false;
				continue;
			}
			double d = had ? hwpc_counter_delta(&h->mlast[i][e], &r) : NAN;
			*(e == F_APERF ? &a : &m) += isfinite(d) ? d : 0;
			had &= isfinite(d) != 0;
			h->mlast[i][e] = r;
		}
	if (hwpc_counter_read(h->tsc_fd, &r) == 0) {
		tsc = had ? hwpc_counter_delta(&h->tsc_last, &r) : NAN;
		tsc_s = had ? (double)(r.enabled - h->tsc_last.enabled) / 1e9 : 0;
		h->tsc_last = r;
	} else {
		had = false;
	}
	h->mhave = true;
	if (!had || !isfinite(tsc) || tsc_s <= 0 || !(m > 0))
		return NAN;
	return tsc / tsc_s * a / m / 1e6;
}
