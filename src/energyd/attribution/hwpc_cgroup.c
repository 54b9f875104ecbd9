/*
 * Hardware counters of cgroup watches (hwpc.h, docs/attribution.md "Cgroups"): the kernel counts
 * a cgroup v2 directory's tasks with perf_event_open(pid = the directory's fd,
 * PERF_FLAG_PID_CGROUP), one event on one CPU: a cgroup needs one counter per event and online
 * CPU, summed. Its time_enabled is the cgroup's time on that CPU (perf's cgroup time advances
 * only while one of its tasks runs there), so a CPU the cgroup did not run on counts 0, where a
 * counter of a process that did not run at all teaches nothing.
 *
 * The kernel treats these as CPU-wide events: an account without CAP_PERFMON may open them only
 * with kernel.perf_event_paranoid <= 0. They are opened when the attribution thread first sees
 * the watch, after the privilege drop; a refusal leaves the cgroup on CPU time with the reason.
 */
#define _GNU_SOURCE
#include "hwpc.h"
#include "log.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int hwpc_cgroups_max(int configured, int n_cpus)
{
	int by_fds = n_cpus > 0 ? HWPC_CGROUP_FDS_MAX / (HWPC_EVENTS * n_cpus) : 0;
	int n = configured < by_fds ? configured : by_fds;
	return n < 0 ? 0 : n > HWPC_CGROUPS_MAX ? HWPC_CGROUPS_MAX : n;
}

int hwpc_cgroups_per_user(int cgroups_max)
{
	return cgroups_max / 4 > 1 ? cgroups_max / 4 : 1;
}

double hwpc_cgroup_delta(const struct hwpc_reading *a, const struct hwpc_reading *b)
{
	if (b->enabled == a->enabled && b->running == a->running)
		return b->value == a->value ? 0.0 : NAN;
	return hwpc_counter_delta(a, b);
}

void hwpc_cgroup_close(struct hwpc *h, struct hwpc_watch *w)
{
	for (int i = 0; w->cfd && i < h->n_cpus * HWPC_EVENTS; i++)
		if (w->cfd[i] >= 0) {
			close(w->cfd[i]);
			h->fds--;
		}
	if (w->open)
		h->n_cgroups--;
	MEM_FREE_NULL(w->cfd);
	MEM_FREE_NULL(w->clast);
	w->open = false;
	w->have = false;
}

/* Why the kernel refused a cgroup counter, for the watch's method_reason. */
static const char *refusal_hint(int err)
{
	switch (err) {
	case EACCES:
	case EPERM:
		return " (cgroup counters are CPU-wide events: after its privilege drop energyd "
		       "may "
		       "open them only with kernel.perf_event_paranoid <= 0)";
	case EMFILE:
	case ENFILE:
		return " (out of file descriptors: raise energyd's RLIMIT_NOFILE or lower "
		       "--hwpc-cgroups)";
	case EBADF:
		return " (not a cgroup v2 directory)";
	default:
		return "";
	}
}

bool hwpc_cpu_counters_alloc(const struct hwpc *h, struct hwpc_watch *w)
{
	int n = h->n_cpus * HWPC_EVENTS;
	w->cfd = malloc((size_t)n * sizeof(*w->cfd));
	w->clast = calloc((size_t)n, sizeof(*w->clast));
	for (int i = 0; w->cfd && i < n; i++)
		w->cfd[i] = -1;
	return w->cfd && w->clast;
}

void hwpc_cgroup_open(struct hwpc *h, struct hwpc_watch *w, int cgroup_fd)
{
	if (!hwpc_cpu_counters_alloc(h, w)) {
		snprintf(w->reason, sizeof(w->reason),
		         "out of memory: this cgroup is split by CPU time");
		hwpc_cgroup_close(h, w);
		return;
	}
	/* The directory's descriptor is needed only for the call: the kernel keeps the cgroup. */
	const char *rel = w->cgroup[0] == '/' ? w->cgroup + 1 : w->cgroup;
	int dir = cgroup_fd < 0
	              ? -EBADF
	              : openat(cgroup_fd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		int err = cgroup_fd < 0 ? EBADF : errno;
		snprintf(
		    w->reason, sizeof(w->reason),
		    "cannot open the cgroup directory %s: %s: this cgroup is split by CPU time",
		    w->cgroup, strerror(err));
		hwpc_cgroup_close(h, w);
		return;
	}
	for (int i = 0; i < h->n_cpus; i++)
		for (int e = 0; e < HWPC_EVENTS; e++) {
			int fd = hwpc_counter_open(e, dir, h->cpu[i], PERF_FLAG_PID_CGROUP);
			if (fd < 0) {
				snprintf(
				    w->reason, sizeof(w->reason),
				    "perf_event_open(%s, cgroup %s, cpu %d): %s%s: this cgroup "
				    "is split by CPU time",
				    hwpc_event_name[e], w->cgroup, h->cpu[i], strerror(-fd),
				    refusal_hint(-fd));
				close(dir);
				hwpc_cgroup_close(h, w);
				return;
			}
			w->cfd[i * HWPC_EVENTS + e] = fd;
			h->fds++;
		}
	close(dir);
	w->open = true;
	h->n_cgroups++;
	snprintf(w->reason, sizeof(w->reason), "counters opened: no full window counted yet");
}

bool hwpc_cgroup_read(struct hwpc *h, struct hwpc_watch *w)
{
	bool ok = w->open && w->have;
	for (int e = 0; e < HWPC_EVENTS; e++)
		w->rate[e] = 0;
	memset(w->srate, 0, sizeof(w->srate));
	w->by_socket = h->n_sockets > 1;
	for (int i = 0; i < h->n_cpus && w->open; i++)
		for (int e = 0; e < HWPC_EVENTS; e++) {
			struct hwpc_reading r, *last = &w->clast[i * HWPC_EVENTS + e];
			int rc = hwpc_counter_read(w->cfd[i * HWPC_EVENTS + e], &r);
			double d = rc == 0 && w->have ? hwpc_cgroup_delta(last, &r) : NAN;
			ok &= isfinite(d);
			w->rate[e] += isfinite(d) ? d : 0;
			if (h->sock[i] >= 0)
				w->srate[h->sock[i]][e] += isfinite(d) ? d : 0;
			if (rc == 0)
				*last = r;
		}
	w->have = w->open;
	return ok;
}

/* ---- counters opened before the privilege drop (--hwpc-cgroup) ---------------------------- */

void hwpc_pool_open(struct hwpc *h, const struct hwpc_config *cfg, int cgroup_fd)
{
	for (int k = 0; k < cfg->n_preopen && h->n_pool < HWPC_PREOPEN_MAX; k++) {
		struct hwpc_watch *p = &h->pool[h->n_pool++];
		memset(p, 0, sizeof(*p));
		p->is_cgroup = true;
		for (int e = 0; e < HWPC_EVENTS; e++)
			p->fd[e] = -1;
		snprintf(p->cgroup, sizeof(p->cgroup), "%s", cfg->preopen[k]);
		if (h->n_cgroups >= h->cgroups_max)
			snprintf(p->reason, sizeof(p->reason),
			         "hardware counters follow at most %d cgroups (--hwpc-cgroups)",
			         h->cgroups_max);
		else
			hwpc_cgroup_open(h, p, cgroup_fd);
		if (p->open)
			h->n_pool_open++;
		else
			log_warn("attribution: --hwpc-cgroup %s: %s", p->cgroup, p->reason);
	}
}

bool hwpc_pool_lend(struct hwpc *h, struct hwpc_watch *w)
{
	for (int i = 0; i < h->n_pool; i++) {
		struct hwpc_watch *p = &h->pool[i];
		if (!p->open || p->lent || strcmp(p->cgroup, w->cgroup) != 0)
			continue;
		w->cfd = p->cfd;
		w->clast = p->clast;
		p->cfd = NULL;
		p->clast = NULL;
		p->lent = true;
		p->id = w->id;
		w->open = w->lent = true;
		w->have = w->over_bound = false;
		snprintf(
		    w->reason, sizeof(w->reason),
		    "counters opened before the privilege drop (--hwpc-cgroup): no full window "
		    "counted yet");
		return true;
	}
	return false;
}

bool hwpc_pool_return(struct hwpc *h, struct hwpc_watch *w)
{
	for (int i = 0; w->lent && i < h->n_pool; i++) {
		struct hwpc_watch *p = &h->pool[i];
		if (!p->lent || p->id != w->id)
			continue;
		p->cfd = w->cfd;
		p->clast = w->clast;
		p->lent = false;
		p->id = 0;
		w->cfd = NULL;
		w->clast = NULL;
		w->open = w->lent = w->have = false;
		return true;
	}
	return false;
}
