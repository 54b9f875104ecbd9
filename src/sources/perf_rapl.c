/*
 * RAPL through the kernel's perf "power" PMU (arch/x86/events/rapl.c):
 *
 *   <sysfs>/bus/event_source/devices/power/type                  the PMU's perf type number
 *   <sysfs>/bus/event_source/devices/power/events/energy-pkg     "event=0x02"
 *   <sysfs>/bus/event_source/devices/power/events/energy-pkg.scale  joules per count
 *   <sysfs>/bus/event_source/devices/power/events/energy-pkg.unit   "Joules"
 *
 * One perf_event_open per package, on the package's first CPU (the events are package-scope),
 * and one for energy-psys. The kernel keeps a 64-bit count and handles the hardware wraparound
 * itself, which is why this family is preferred over powercap: it opens first and takes the
 * rapl:* ids, and powercap then skips those ids, so a domain is never counted twice. Opening
 * needs CAP_PERFMON (or root) unless kernel.perf_event_paranoid is 0 or less; the descriptor keeps
 * working after energyd drops root.
 *
 * Some virtual machines list the PMU and open its events, but the counts never move (0 J
 * however long): a hardware RAPL counter moves about every millisecond. So the probe opens every
 * event and waits up to cfg->perf_probe_s for one of them to move; when none does, the family is
 * not used (its detail says why) and the CPU model stands in, labelled estimated, rather than a
 * "measured" 0 W. One moving event is enough: a domain may stand still for long (an idle
 * integrated GPU).
 */
#define _GNU_SOURCE
#include "source.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct perf_event_def {
	const char *event; /* file under events/ */
	const char *name;  /* channel id part */
	enum channel_kind kind;
	bool system_wide;  /* one event for the machine, not per package */
	const char *label; /* printf pattern with the package number */
};

static const struct perf_event_def perf_events[] = {
    {"energy-pkg", "package", CHANNEL_PACKAGE, false, "CPU package %d (RAPL, perf)"},
    {"energy-cores", "core", CHANNEL_CORE, false, "CPU cores of package %d (RAPL, perf)"},
    {"energy-gpu", "uncore", CHANNEL_UNCORE, false,
     "Uncore / integrated GPU of package %d (RAPL, perf)"},
    {"energy-ram", "dram", CHANNEL_DRAM, false, "Memory of package %d (RAPL, perf)"},
    {"energy-psys", "psys", CHANNEL_PSYS, true, "Platform, whole SoC (RAPL psys, perf)"},
};

#define N_PERF_EVENTS (sizeof(perf_events) / sizeof(perf_events[0]))

struct perf_priv {
	int fd;
	long double uj_per_count; /* the event's scale, in uJ */
	int cpu;                  /* the CPU the event is opened on */
	char event[32];           /* energy-pkg, ... */
};

struct perf_event_info {
	uint64_t config;   /* perf_event_attr.config of the event */
	long double scale; /* joules per count */
};

static int perf_read_type(const char *sysfs_root, int *type)
{
	char path[600], buf[32];
	snprintf(path, sizeof(path), "%s/bus/event_source/devices/power/type", sysfs_root);
	int rc = source_read_text(path, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	char *end;
	long v = strtol(buf, &end, 10);
	if (end == buf || *end || v < 0 || v > 0x7fffffff)
		return -EINVAL;
	*type = (int)v;
	return 0;
}

/* The event's config and scale; -ENOENT when the CPU lacks it, -EINVAL for a unit other than
 * joules or malformed files. */
static int perf_event_info(const char *sysfs_root, const char *event, struct perf_event_info *e)
{
	char path[700], buf[128];
	snprintf(path, sizeof(path), "%s/bus/event_source/devices/power/events/%s", sysfs_root,
	         event);
	int rc = source_read_text(path, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	unsigned long long config;
	if (sscanf(buf, "event=%llx", &config) != 1)
		return -EINVAL;
	e->config = config;
	snprintf(path, sizeof(path), "%s/bus/event_source/devices/power/events/%s.scale",
	         sysfs_root, event);
	if (source_read_text(path, buf, sizeof(buf)) < 0)
		return -EINVAL;
	char *end;
	e->scale = strtold(buf, &end);
	if (end == buf || !(e->scale > 0))
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/bus/event_source/devices/power/events/%s.unit", sysfs_root,
	         event);
	if (source_read_text(path, buf, sizeof(buf)) == 0 && strcmp(buf, "Joules") != 0)
		return -EINVAL;
	return 0;
}

static int perf_open_event(int type, uint64_t config, int cpu)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.type = (uint32_t)type;
	attr.size = sizeof(attr);
	attr.config = config;
	long fd = syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

static void perf_explain(struct family_report *r, int rc, const char *event, int cpu)
{
	char paranoid[16] = "?";
	source_read_text("/proc/sys/kernel/perf_event_paranoid", paranoid, sizeof(paranoid));
	if (rc == -EACCES || rc == -EPERM) {
		r->status = FAMILY_DENIED;
		snprintf(
		    r->detail, sizeof(r->detail),
		    "perf_event_open(power/%s, cpu %d): %s (kernel.perf_event_paranoid = %s): "
		    "run energyd as root or with CAP_PERFMON, or set "
		    "kernel.perf_event_paranoid to 0; a container may also block perf_event_open",
		    event, cpu, strerror(-rc), paranoid);
	} else {
		r->status = FAMILY_ERROR;
		snprintf(r->detail, sizeof(r->detail),
		         "perf_event_open(power/%s, cpu %d): %s: the kernel refused the event",
		         event, cpu, strerror(-rc));
	}
}

/* Does any of the n events (fds) move within probe_s? The first counts read, then every 2 ms. */
static bool perf_counting(const int *fds, int n, double probe_s)
{
	uint64_t first[N_PERF_EVENTS];
	if (n > (int)N_PERF_EVENTS)
		n = (int)N_PERF_EVENTS;
	for (int i = 0; i < n; i++)
		if (read(fds[i], &first[i], sizeof(first[i])) != (ssize_t)sizeof(first[i]))
			first[i] = UINT64_MAX; /* unreadable: not counting */
	for (double waited = 0;; waited += 0.002) {
		for (int i = 0; i < n; i++) {
			uint64_t v;
			if (first[i] != UINT64_MAX &&
			    read(fds[i], &v, sizeof(v)) == (ssize_t)sizeof(v) && v != first[i])
				return true;
		}
		if (waited >= probe_s)
			return false;
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
}

static int perf_probe(const struct source_config *cfg, struct family_report *r)
{
	int type;
	int rc = perf_read_type(cfg->sysfs_root, &type);
	if (rc < 0) {
		r->status = FAMILY_ABSENT;
		snprintf(r->detail, sizeof(r->detail),
		         "no perf power PMU (%s/bus/event_source/devices/power/type: %s): a CPU "
		         "without RAPL, a virtual machine, or a kernel built without "
		         "CONFIG_PERF_EVENTS_INTEL_RAPL",
		         cfg->sysfs_root, strerror(-rc));
		return 0;
	}
	struct source_cpu *cpus = calloc(SOURCE_CPUS_MAX, sizeof(*cpus));
	if (!cpus)
		return -ENOMEM;
	int n = topology_cpus(cfg->sysfs_root, cpus, SOURCE_CPUS_MAX);
	int cpu = n > 0 ? cpus[0].cpu : 0;
	free(cpus);
	/* Every event the CPU has: the first that does not open says why; then, do they count? */
	int fds[N_PERF_EVENTS], n_fds = 0;
	char names[160] = "";
	for (size_t i = 0; i < N_PERF_EVENTS; i++) {
		struct perf_event_info e;
		if (perf_event_info(cfg->sysfs_root, perf_events[i].event, &e) < 0)
			continue;
		int fd = perf_open_event(type, e.config, cpu);
		if (fd < 0) {
			perf_explain(r, fd, perf_events[i].event, cpu);
			while (n_fds > 0)
				close(fds[--n_fds]);
			return 0;
		}
		fds[n_fds++] = fd;
		size_t len = strlen(names);
		snprintf(names + len, sizeof(names) - len, "%spower/%s", len ? ", " : "",
		         perf_events[i].event);
	}
	if (!n_fds) {
		r->status = FAMILY_ABSENT;
		snprintf(r->detail, sizeof(r->detail), "the perf power PMU has no energy-* events");
		return 0;
	}
	bool counting = cfg->perf_probe_s <= 0 || perf_counting(fds, n_fds, cfg->perf_probe_s);
	for (int i = 0; i < n_fds; i++)
		close(fds[i]);
	if (!counting) {
		r->status = FAMILY_ABSENT;
		snprintf(
		    r->detail, sizeof(r->detail),
		    "the perf power PMU (type %d) does not count: %s stood still for %.3g s after "
		    "opening, where RAPL moves every millisecond (a virtual machine's stand-in); "
		    "not used",
		    type, names, cfg->perf_probe_s);
		return 0;
	}
	r->status = FAMILY_FOUND;
	snprintf(r->detail, sizeof(r->detail), "perf power PMU (type %d)", type);
	return 1;
}

static int perf_open(const struct source_config *cfg, struct channel_set *set,
                     struct family_report *r)
{
	int type;
	int rc = perf_read_type(cfg->sysfs_root, &type);
	if (rc < 0)
		return rc;
	struct source_cpu *cpus = calloc(SOURCE_CPUS_MAX, sizeof(*cpus));
	if (!cpus)
		return -ENOMEM;
	int n = topology_cpus(cfg->sysfs_root, cpus, SOURCE_CPUS_MAX);
	if (n <= 0) { /* no topology: one package on CPU 0 */
		cpus[0] = (struct source_cpu){0, 0, 0};
		n = 1;
	}
	int added = 0;
	for (size_t k = 0; k < N_PERF_EVENTS; k++) {
		const struct perf_event_def *def = &perf_events[k];
		struct perf_event_info e;
		if (perf_event_info(cfg->sysfs_root, def->event, &e) < 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (!topology_first_of_package(cpus, i) || (def->system_wide && i > 0))
				continue;
			char id[CHANNEL_ID_MAX];
			if (def->system_wide)
				snprintf(id, sizeof(id), "rapl:%s", def->name);
			else
				snprintf(id, sizeof(id), "rapl:%s-%d", def->name, cpus[i].package);
			if (channel_set_has(set, id))
				continue;
			int fd = perf_open_event(type, e.config, cpus[i].cpu);
			if (fd < 0) {
				family_report_add(r, "; %s: %s", id, strerror(-fd));
				continue;
			}
			struct channel *ch =
			    channel_set_add_fd(set, id, fd, sizeof(struct perf_priv));
			if (!ch)
				continue;
			struct perf_priv *p = ch->priv;
			p->uj_per_count = e.scale * 1e6L;
			p->cpu = cpus[i].cpu;
			snprintf(p->event, sizeof(p->event), "%s", def->event);
			ch->kind = def->kind;
			ch->package = def->system_wide ? -1 : cpus[i].package;
			ch->reading = READING_ENERGY_UJ;
			ch->max_uj = 0; /* the kernel accumulates into 64 bits */
			snprintf(ch->label, sizeof(ch->label), def->label, cpus[i].package);
			added++;
		}
	}
	free(cpus);
	return added;
}

static int perf_read(struct channel *ch, uint64_t *value)
{
	struct perf_priv *p = ch->priv;
	uint64_t count;
	ssize_t n = read(p->fd, &count, sizeof(count));
	if (n != sizeof(count)) {
		int e = n < 0 ? errno : EIO;
		snprintf(ch->read_error, sizeof(ch->read_error),
		         "reading perf power/%s on cpu %d: %s", p->event, p->cpu, strerror(e));
		return -e;
	}
	/* The whole count converted at once: monotonic in count, no accumulated rounding. */
	*value = (uint64_t)((long double)count * p->uj_per_count);
	return 0;
}

static void perf_describe(const struct channel *ch, char *buf, size_t len)
{
	const struct perf_priv *p = ch->priv;
	snprintf(buf, len, "perf event power/%s on cpu %d (%.3Lg uJ per count, 64-bit)",
	         p ? p->event : "?", p ? p->cpu : -1, p ? p->uj_per_count : 0.0L);
}

const struct source_family perf_rapl_family = {
    .name = "perf",
    .probe = perf_probe,
    .open = perf_open,
    .read = perf_read,
    .close = source_close_fd_priv,
    .describe = perf_describe,
};
