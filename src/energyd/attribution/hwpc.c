/*
 * The hardware counters behind "hwpc-model" (hwpc.h) and the window rhythm that reads them,
 * feeds the model (hwpc_model.h) and splits the watches' active energy by it.
 */
#define _GNU_SOURCE
#include "hwpc.h"
#include "attrib.h"
#include "attrib_int.h"
#include "energy.h"
#include "log.h"
#include "mem.h"
#include "source.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(HWPC_CGROUP_PATH_MAX >= ATTRIB_CGROUP_MAX, "a watch's cgroup path fits");
_Static_assert(HWPC_PID_CPU_FDS_MAX >= 3 * HWPC_WATCHES_MAX, "one socket's pid watches fit");

static const uint64_t event_config[HWPC_EVENTS] = {
    PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_HW_INSTRUCTIONS, PERF_COUNT_HW_CACHE_MISSES};
const char *const hwpc_event_name[HWPC_EVENTS] = {"cycles", "instructions", "cache-misses"};

/* One generic hardware event, user space only (what an unprivileged account may count of its
 * own processes), with the times that tell multiplexing: of the whole CPU (pid -1), a process
 * and its children born later (cpu -1), or a cgroup on one CPU (pid a cgroup directory's fd,
 * flags PERF_FLAG_PID_CGROUP). -errno on failure. */
int hwpc_counter_open(int e, int pid, int cpu, unsigned long flags)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_HARDWARE;
	attr.size = sizeof(attr);
	attr.config = event_config[e];
	attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	attr.exclude_kernel = 1;
	attr.exclude_hv = 1;
	attr.inherit = pid > 0 && !(flags & PERF_FLAG_PID_CGROUP);
	long fd = syscall(SYS_perf_event_open, &attr, pid, cpu, -1, flags | PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

int hwpc_counter_read(int fd, struct hwpc_reading *r)
{
	uint64_t v[3];
	ssize_t n = read(fd, v, sizeof(v));
	if (n != (ssize_t)sizeof(v))
		return n < 0 ? -errno : -EIO;
	r->value = v[0];
	r->enabled = v[1];
	r->running = v[2];
	return 0;
}

/* The count of a window, scaled by enabled / running when the kernel multiplexed the counter;
 * NAN when it did not run at all in the window or went backwards. */
double hwpc_counter_delta(const struct hwpc_reading *a, const struct hwpc_reading *b)
{
	if (b->value < a->value || b->enabled < a->enabled || b->running <= a->running)
		return NAN;
	double run = (double)(b->running - a->running), en = (double)(b->enabled - a->enabled);
	return (double)(b->value - a->value) * (en > run ? en / run : 1.0);
}

/* The intercept's bound: the packages' long-term power limits, else the configured TDP. */
static void read_bound(struct hwpc *h, const struct attrib_config *cfg)
{
	double sum = 0;
	for (int p = 0; p < 16 && cfg->sysfs_root; p++) {
		char path[600], buf[64];
		uint64_t uw;
		snprintf(path, sizeof(path),
		         "%s/class/powercap/intel-rapl:%d/constraint_0_power_limit_uw",
		         cfg->sysfs_root, p);
		if (source_read_text(path, buf, sizeof(buf)) < 0 || energy_parse_u64(buf, &uw) < 0)
			break;
		sum += (double)uw / 1e6;
	}
	if (cfg->hwpc.tdp_w > 0) {
		h->bound_w = cfg->hwpc.tdp_w;
		snprintf(h->bound_source, sizeof(h->bound_source), "--hwpc-tdp-watts");
	} else if (sum > 0) {
		h->bound_w = sum;
		snprintf(h->bound_source, sizeof(h->bound_source),
		         "powercap constraint_0_power_limit_uw");
	} else {
		snprintf(h->bound_source, sizeof(h->bound_source), "the lowest window's power");
	}
}

static void close_global(struct hwpc *h)
{
	for (int i = 0; i < h->n_cpus; i++)
		for (int e = 0; e < HWPC_EVENTS; e++)
			if (h->gfd[i][e] >= 0) {
				close(h->gfd[i][e]);
				h->gfd[i][e] = -1;
				h->fds--;
			}
}

void hwpc_sockets_map(struct hwpc *h, const int *pkg, int n)
{
	h->n_sockets = 0;
	for (int i = 0; i < n; i++) {
		int p = pkg ? pkg[i] : -1, s = 0;
		while (s < h->n_sockets && h->socket_pkg[s] < p)
			s++;
		if (s < h->n_sockets && h->socket_pkg[s] == p)
			continue;
		if (h->n_sockets == HWPC_SOCKETS_MAX) {
			if (s == HWPC_SOCKETS_MAX)
				continue; /* beyond the highest kept */
			h->n_sockets--;   /* the highest gives way to a lower package */
		}
		memmove(&h->socket_pkg[s + 1], &h->socket_pkg[s],
		        sizeof(h->socket_pkg[0]) * (size_t)(h->n_sockets - s));
		h->socket_pkg[s] = p;
		h->n_sockets++;
	}
	memset(h->socket_cpus, 0, sizeof(h->socket_cpus));
	for (int i = 0; i < n; i++) {
		h->sock[i] = -1;
		for (int s = 0; s < h->n_sockets; s++)
			if (h->socket_pkg[s] == (pkg ? pkg[i] : -1)) {
				h->sock[i] = s;
				h->socket_cpus[s]++;
			}
	}
}

/* Every online CPU's counters, or none (h->error says why). */
static void open_global(struct hwpc *h, const struct attrib_config *cfg)
{
	struct source_cpu cpus[SOURCE_CPUS_MAX];
	int n = cfg->sysfs_root ? topology_cpus(cfg->sysfs_root, cpus, SOURCE_CPUS_MAX) : 0;
	bool topology = n > 0;
	if (n <= 0) {
		long k = sysconf(_SC_NPROCESSORS_ONLN);
		n = k > 0 && k <= SOURCE_CPUS_MAX ? (int)k : 1;
		for (int i = 0; i < n; i++)
			cpus[i].cpu = i;
	}
	if (n > HWPC_CPUS_MAX) {
		snprintf(h->error, sizeof(h->error),
		         "%d CPUs: hardware counters are read on at most %d (descriptor budget)", n,
		         HWPC_CPUS_MAX);
		return;
	}
	h->n_cpus = n;
	int pkg[HWPC_CPUS_MAX];
	for (int i = 0; i < n; i++) {
		h->cpu[i] = cpus[i].cpu;
		pkg[i] = cpus[i].package;
		for (int e = 0; e < HWPC_EVENTS; e++)
			h->gfd[i][e] = -1;
	}
	hwpc_sockets_map(h, topology ? pkg : NULL, n);
	for (int i = 0; i < n; i++)
		for (int e = 0; e < HWPC_EVENTS; e++) {
			int fd = hwpc_counter_open(e, -1, h->cpu[i], 0);
			if (fd < 0) {
				snprintf(h->error, sizeof(h->error),
				         "no hardware counters: perf_event_open(%s, cpu %d): %s%s",
				         hwpc_event_name[e], h->cpu[i], strerror(-fd),
				         fd == -ENOENT || fd == -EOPNOTSUPP
				             ? " (no CPU PMU, as in most virtual machines)"
				             : " (run energyd as root or with CAP_PERFMON)");
				close_global(h);
				return;
			}
			h->gfd[i][e] = fd;
			h->fds++;
		}
	h->on = true;
}

struct hwpc *hwpc_open(const struct attrib_config *cfg, int cgroup_fd)
{
	struct hwpc *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	for (int i = 0; i < HWPC_CPUS_MAX; i++)
		h->mfd[i][0] = h->mfd[i][1] = -1;
	h->tsc_fd = -1;
	h->mhz = NAN;
	h->pred = -1;
	for (int k = 0; k < HWPC_SOCKETS_MAX; k++) {
		h->spred[k] = -1;
		snprintf(h->sreason[k], sizeof(h->sreason[k]), "hwpc-model is learning");
	}
	read_bound(h, cfg);
	snprintf(h->freq_error, sizeof(h->freq_error), "hardware counters are off");
	if (!cfg->hwpc.on)
		snprintf(h->error, sizeof(h->error), "hardware counters are off (--hwpc off)");
	else
		open_global(h, cfg);
	if (h->on)
		hwpc_freq_open(h, cfg->sysfs_root);
	h->cgroups_max = h->on ? hwpc_cgroups_max(cfg->hwpc.cgroups, h->n_cpus) : 0;
	if (h->on)
		hwpc_pool_open(h, &cfg->hwpc, cgroup_fd);
	if (hwpc_layers_init(&h->layers, cfg->hwpc.error_window, h->bound_w, h->freq_on) < 0) {
		hwpc_free(h);
		return NULL;
	}
	if (h->on && h->n_sockets > 1 && h->socket_pkg[0] >= 0) {
		h->slayers = calloc((size_t)h->n_sockets, sizeof(*h->slayers));
		for (int k = 0; h->slayers && k < h->n_sockets; k++)
			if (hwpc_layers_init(&h->slayers[k], cfg->hwpc.error_window, h->bound_w,
			                     h->freq_on) < 0) {
				for (int j = 0; j < k; j++)
					hwpc_layers_free(&h->slayers[j]);
				free(h->slayers);
				h->slayers = NULL;
			}
		if (!h->slayers) {
			hwpc_free(h);
			return NULL;
		}
	}
	if (h->on)
		log_info("attribution: hardware counters on %d CPUs (%d descriptors), of at most "
		         "%d cgroup watches; %s%s",
		         h->n_cpus, h->fds, h->cgroups_max,
		         h->freq_on ? "one model layer per 100 MHz" : "one model layer: ",
		         h->freq_on ? "" : h->freq_error);
	else if (cfg->hwpc.on)
		log_info("attribution: %s; attribution by CPU time only", h->error);
	snprintf(h->reason, sizeof(h->reason), "%s", h->on ? "hwpc-model is learning" : h->error);
	return h;
}

static void watch_close(struct hwpc *h, struct hwpc_watch *w)
{
	if (w->is_cgroup) {
		if (!hwpc_pool_return(h, w))
			hwpc_cgroup_close(h, w);
		return;
	}
	for (int e = 0; e < HWPC_EVENTS; e++)
		if (w->fd[e] >= 0) {
			close(w->fd[e]);
			w->fd[e] = -1;
			h->fds--;
		}
	for (int i = 0; w->cfd && i < h->n_cpus * HWPC_EVENTS; i++)
		if (w->cfd[i] >= 0) {
			close(w->cfd[i]);
			h->fds--;
			h->pid_cpu_fds--;
		}
	MEM_FREE_NULL(w->cfd);
	MEM_FREE_NULL(w->clast);
	w->open = w->have = false;
}

void hwpc_free(struct hwpc *h)
{
	if (!h)
		return;
	close_global(h);
	hwpc_freq_close(h);
	for (int i = 0; i < h->n_watches; i++)
		watch_close(h, &h->watches[i]);
	for (int i = 0; i < h->n_pool; i++)
		hwpc_cgroup_close(h, &h->pool[i]);
	hwpc_layers_free(&h->layers);
	for (int k = 0; h->slayers && k < h->n_sockets; k++)
		hwpc_layers_free(&h->slayers[k]);
	free(h->slayers);
	free(h);
}

bool hwpc_defers(const struct hwpc *h)
{
	return h && h->on && (h->deferring || h->split_pending);
}

const char *hwpc_watch_method(const struct hwpc *h, int watch_id, const char **reason)
{
	*reason = !h                              ? "hardware counters are off"
	          : !h->on                        ? h->error
	          : h->n_view >= HWPC_WATCHES_MAX ? "hardware counters follow at most 64 watches"
	                                          : h->reason;
	for (int i = 0; h && i < h->n_view; i++)
		if (h->view[i].id == watch_id) {
			*reason = h->view[i].by_model ? "" : h->view[i].reason;
			return h->view[i].by_model ? HWPC_METHOD : ATTRIB_METHOD;
		}
	return ATTRIB_METHOD;
}

/* ---- the window rhythm ------------------------------------------------------------------- */

/* A watch as the window sees it, copied under the lock. */
struct watch_ref {
	int id, pid;
	uid_t owner;
	bool alive, is_cgroup;
	char cgroup[HWPC_CGROUP_PATH_MAX];
};

/* On several sockets: a pid watch's counters per event and online CPU (pid, cpu), so that its
 * rates divide by socket, within HWPC_PID_CPU_FDS_MAX descriptors for all pid watches. */
static void watch_open_per_cpu(struct hwpc *h, struct hwpc_watch *w)
{
	int n = h->n_cpus * HWPC_EVENTS;
	w->fd_wait = h->pid_cpu_fds + n > HWPC_PID_CPU_FDS_MAX;
	if (w->fd_wait) {
		snprintf(w->reason, sizeof(w->reason),
		         "on %d sockets a process is counted on each of its %d CPUs (%d "
		         "descriptors), and processes' counters have at most %d: this watch is "
		         "split by CPU time until others end",
		         h->n_sockets, h->n_cpus, n, HWPC_PID_CPU_FDS_MAX);
		return;
	}
	if (!hwpc_cpu_counters_alloc(h, w)) {
		snprintf(w->reason, sizeof(w->reason),
		         "out of memory: this watch is split by CPU time");
		watch_close(h, w);
		return;
	}
	for (int i = 0; i < h->n_cpus; i++)
		for (int e = 0; e < HWPC_EVENTS; e++) {
			int fd = hwpc_counter_open(e, w->pid, h->cpu[i], 0);
			if (fd < 0) {
				snprintf(
				    w->reason, sizeof(w->reason),
				    "perf_event_open(%s, pid %d, cpu %d): %s: this watch is split "
				    "by CPU time",
				    hwpc_event_name[e], w->pid, h->cpu[i], strerror(-fd));
				watch_close(h, w);
				return;
			}
			w->cfd[i * HWPC_EVENTS + e] = fd;
			h->fds++;
			h->pid_cpu_fds++;
		}
	w->open = true;
	snprintf(w->reason, sizeof(w->reason), "counters opened: no full window counted yet");
}

static void watch_open(struct hwpc *h, struct hwpc_watch *w)
{
	if (h->slayers) {
		watch_open_per_cpu(h, w);
		return;
	}
	for (int e = 0; e < HWPC_EVENTS; e++) {
		int fd = hwpc_counter_open(e, w->pid, -1, 0);
		if (fd < 0) {
			snprintf(w->reason, sizeof(w->reason),
			         "perf_event_open(%s, pid %d): %s: this watch is split by CPU time",
			         hwpc_event_name[e], w->pid, strerror(-fd));
			watch_close(h, w);
			return;
		}
		w->fd[e] = fd;
		h->fds++;
	}
	w->open = true;
	snprintf(w->reason, sizeof(w->reason), "counters opened: no full window counted yet");
}

/* A cgroup watch's counters, within the bound of cgroups counted. */
static void cgroup_watch_open(struct hwpc *h, struct hwpc_watch *w, int cgroup_fd)
{
	if (hwpc_pool_lend(h, w))
		return;
	int mine = 0, per_user = hwpc_cgroups_per_user(h->cgroups_max);
	for (int i = 0; i < h->n_watches; i++)
		mine += h->watches[i].is_cgroup && h->watches[i].open &&
		        h->watches[i].owner == w->owner && &h->watches[i] != w;
	bool user_full = w->owner != 0 && mine >= per_user;
	w->over_bound = user_full || h->n_cgroups >= h->cgroups_max;
	if (!w->over_bound) {
		hwpc_cgroup_open(h, w, cgroup_fd);
		return;
	}
	if (user_full) {
		snprintf(
		    w->reason, sizeof(w->reason),
		    "hardware counters follow at most %d cgroups of each user but root (a quarter "
		    "of --hwpc-cgroups' %d): this cgroup is split by CPU time",
		    per_user, h->cgroups_max);
		return;
	}
	snprintf(w->reason, sizeof(w->reason),
	         "hardware counters follow at most %d cgroups (--hwpc-cgroups, within %d "
	         "descriptors: %d per cgroup on %d CPUs): this cgroup is split by CPU time",
	         h->cgroups_max, HWPC_CGROUP_FDS_MAX, HWPC_EVENTS * h->n_cpus, h->n_cpus);
}

/* Close the counters of watches that ended or were deleted, open those of new ones (and of
 * cgroups left out by the bound, once there is room). */
static void sync_watches(struct hwpc *h, const struct watch_ref *ref, int n, int cgroup_fd)
{
	for (int i = 0; i < h->n_watches; i++) {
		int k = 0;
		while (k < n && ref[k].id != h->watches[i].id)
			k++;
		if (k < n && ref[k].alive)
			continue;
		watch_close(h, &h->watches[i]);
		h->watches[i--] = h->watches[--h->n_watches];
	}
	for (int i = 0; i < h->n_watches; i++)
		if (h->watches[i].over_bound && h->n_cgroups < h->cgroups_max)
			cgroup_watch_open(h, &h->watches[i], cgroup_fd);
		else if (h->watches[i].fd_wait)
			watch_open(h, &h->watches[i]);
	for (int k = 0; k < n; k++) {
		bool known = false;
		for (int i = 0; i < h->n_watches && !known; i++)
			known = h->watches[i].id == ref[k].id;
		if (known || !ref[k].alive || (!ref[k].is_cgroup && ref[k].pid <= 0) ||
		    h->n_watches >= HWPC_WATCHES_MAX)
			continue;
		struct hwpc_watch *w = &h->watches[h->n_watches++];
		memset(w, 0, sizeof(*w));
		w->id = ref[k].id;
		w->pid = ref[k].pid;
		for (int e = 0; e < HWPC_EVENTS; e++)
			w->fd[e] = -1;
		w->is_cgroup = ref[k].is_cgroup;
		w->owner = ref[k].owner;
		snprintf(w->cgroup, sizeof(w->cgroup), "%s", ref[k].cgroup);
		if (w->is_cgroup)
			cgroup_watch_open(h, w, cgroup_fd);
		else
			watch_open(h, w);
	}
}

/* Read every counter; the machine's counts of the window into h->rate (still counts) and the
 * window's length by the counters' own clock into *seconds. False when a machine counter
 * failed (the window teaches nothing). */
static bool read_counters(struct hwpc *h, double *seconds)
{
	bool ok = true, had = h->ghave;
	double enabled = 0;
	memset(h->rate, 0, sizeof(h->rate));
	memset(h->scount, 0, sizeof(h->scount));
	for (int i = 0; i < h->n_cpus; i++)
		for (int e = 0; e < HWPC_EVENTS; e++) {
			struct hwpc_reading r;
			if (hwpc_counter_read(h->gfd[i][e], &r) < 0) {
				ok = false;
				continue;
			}
			double d = had ? hwpc_counter_delta(&h->glast[i][e], &r) : NAN;
			ok &= isfinite(d);
			h->rate[e] += isfinite(d) ? d : 0;
			if (h->sock[i] >= 0)
				h->scount[h->sock[i]][e] += isfinite(d) ? d : 0;
			if (e == 0 && had)
				enabled += (double)(r.enabled - h->glast[i][e].enabled);
			h->glast[i][e] = r;
		}
	h->ghave = true;
	*seconds = enabled / 1e9 / (h->n_cpus ? h->n_cpus : 1);
	for (int i = 0; i < h->n_watches; i++) {
		struct hwpc_watch *w = &h->watches[i];
		if (w->is_cgroup || w->cfd) {
			w->rate_ok = hwpc_cgroup_read(h, w);
			continue;
		}
		bool wok = w->open && w->have;
		for (int e = 0; e < HWPC_EVENTS && w->open; e++) {
			struct hwpc_reading r;
			int rc = hwpc_counter_read(w->fd[e], &r);
			double d = rc == 0 && w->have ? hwpc_counter_delta(&w->last[e], &r) : NAN;
			wok &= isfinite(d);
			w->rate[e] = d;
			if (rc == 0)
				w->last[e] = r;
		}
		w->rate_ok = wok;
		w->have = w->open;
	}
	return ok && had;
}

/* The packages' cumulative energy (uJ) at wall-clock time t, interpolated between the samples
 * around it (the attribution's active and idle series): package pkg's, every package's when
 * pkg < 0; false without such a package channel. */
static bool package_uj_at(struct attrib *a, double t, int pkg, double *uj)
{
	const struct channel_set *set = a->sampler->set;
	bool any = false;
	*uj = 0;
	for (int c = 0; c < set->n; c++)
		if (set->ch[c].kind == CHANNEL_PACKAGE && set->ch[c].measured &&
		    (pkg < 0 || set->ch[c].package == pkg)) {
			char key[CHANNEL_ID_MAX + 16];
			snprintf(key, sizeof(key), "active:%s", set->ch[c].id);
			*uj += attrib_series_at(a, key, t);
			snprintf(key, sizeof(key), "idle:%s", set->ch[c].id);
			*uj += attrib_series_at(a, key, t);
			any = true;
		}
	return any;
}

/* Why a counted watch is not split by the model (a watch without counters keeps the reason
 * it has none). */
static void not_by_model(struct hwpc_watch *w, bool usable, const char *why)
{
	w->by_model = false;
	if (w->open && !usable)
		snprintf(w->reason, sizeof(w->reason), "%s", why);
	else if (w->open && !w->rate_ok)
		snprintf(w->reason, sizeof(w->reason),
		         "its counters did not cover the last window");
}

/* The socket whose package channel c belongs to, or -1 (one socket, no per-socket layers, or a
 * channel of no socket: split by the machine's layer). */
static int channel_socket(const struct hwpc *h, const struct attrib *a, int c)
{
	int pkg = c >= 0 && h->slayers ? a->sampler->set->ch[c].package : -1;
	for (int k = 0; pkg >= 0 && k < h->n_sockets; k++)
		if (h->socket_pkg[k] == pkg)
			return k;
	return -1;
}

struct share_ctx {
	struct hwpc *h;
	struct attrib *a;
};

/* A watch's share of the active energy of the window (of channel c, -1 all of it): its
 * predicted dynamic power over the machine's, or on the channel's socket its predicted dynamic
 * power there over the socket's by the socket's own layer, when that model may be used and its
 * counters covered the window; else its CPU time share (and why). */
static double model_share(void *ctx, const struct attrib_watch *aw, double busy_s, int c)
{
	struct share_ctx *x = ctx;
	struct hwpc *h = x->h;
	struct hwpc_watch *w = NULL;
	for (int i = 0; i < h->n_watches && !w; i++)
		if (h->watches[i].id == aw->id)
			w = &h->watches[i];
	int k = channel_socket(h, x->a, c);
	const struct hwpc_layers *L = k >= 0 ? &h->slayers[k] : &h->layers;
	int pred = k >= 0 ? h->spred[k] : h->pred;
	bool usable = k >= 0 ? pred >= 0 : h->usable;
	const struct hwpc_model *m = pred >= 0 ? &L->layer[pred].model : NULL;
	const double *all_rate = k >= 0 ? h->srate[k] : h->rate;
	double all = m ? hwpc_model_dynamic(m, all_rate) : 0;
	bool rates = w && w->rate_ok && (k < 0 || w->by_socket);
	if (w && usable && rates && all > 0) {
		if (c < 0)
			w->by_model = true;
		double s = hwpc_model_dynamic(m, k >= 0 ? w->srate[k] : w->rate) / all;
		return s < 0 ? 0 : s > 1 ? 1 : s;
	}
	if (w && k >= 0) {
		char why[sizeof(w->reason)];
		snprintf(why, sizeof(why), "package %d: %.200s", h->socket_pkg[k],
		         !usable ? h->sreason[k]
		                 : "no dynamic power predicted on its socket in the last window");
		not_by_model(w, usable && all > 0, why);
	} else if (w) {
		not_by_model(w, usable, h->reason);
	}
	return split_scope_share(aw->pending_cpu_s, busy_s);
}

/* Learn from the pending window once samples cover its end; then the window just read (rates
 * over [read_t, now], counted) becomes the pending one. */
static void learn(struct attrib *a, struct hwpc *h, double now, bool counted, double mhz)
{
	double e0 = 0, e1 = 0;
	bool have_pkg = package_uj_at(a, now, -1, &e0);
	if (h->pending && have_pkg && a->last_t >= h->pending_sample.t) {
		struct hwpc_sample *s = &h->pending_sample;
		package_uj_at(a, h->pending_t0, -1, &e0);
		package_uj_at(a, s->t, -1, &e1);
		s->watts = (e1 - e0) / 1e6 / s->seconds;
		hwpc_layers_add(&h->layers, h->pending_mhz, s);
		/* Each socket's layers, on its own package's power (when it has a channel). */
		for (int k = 0; h->slayers && k < h->n_sockets; k++) {
			struct hwpc_sample ss = *s;
			if (!package_uj_at(a, h->pending_t0, h->socket_pkg[k], &e0) ||
			    !package_uj_at(a, s->t, h->socket_pkg[k], &e1))
				continue;
			ss.watts = (e1 - e0) / 1e6 / s->seconds;
			memcpy(ss.rate, h->pending_srate[k], sizeof(ss.rate));
			hwpc_layers_add(&h->slayers[k], h->pending_mhz, &ss);
		}
		h->pending = false;
	}
	double per_s = now - h->read_t; /* the wall clock, as the packages' energy */
	bool window = counted && h->read_t > 0 && per_s > 0;
	for (int e = 0; e < HWPC_EVENTS; e++) {
		h->rate[e] = window ? h->rate[e] / per_s : 0;
		for (int k = 0; k < h->n_sockets; k++)
			h->srate[k][e] = window ? h->scount[k][e] / per_s : 0;
		for (int i = 0; i < h->n_watches; i++) {
			h->watches[i].rate[e] /= per_s > 0 ? per_s : 1;
			for (int k = 0; k < h->n_sockets; k++)
				h->watches[i].srate[k][e] /= per_s > 0 ? per_s : 1;
		}
	}
	if (window) {
		h->pending = true;
		h->pending_t0 = h->read_t;
		h->pending_sample = (struct hwpc_sample){.t = now, .seconds = now - h->read_t};
		memcpy(h->pending_sample.rate, h->rate, sizeof(h->rate));
		memcpy(h->pending_srate, h->srate, sizeof(h->srate));
		h->pending_mhz = mhz;
	}
	/* The window just read is split by the layer of its frequency (hwpc_layers.h). */
	h->mhz = mhz;
	h->pred = hwpc_layers_predictor(&h->layers, mhz, h->reason, sizeof(h->reason), h->note,
	                                sizeof(h->note));
	h->usable = h->pred >= 0;
	if (!have_pkg) {
		h->usable = false;
		snprintf(h->reason, sizeof(h->reason),
		         "hwpc-model needs a measured package channel (RAPL) to learn from");
	} else if (!counted && h->read_t > 0) {
		h->usable = false;
		snprintf(h->reason, sizeof(h->reason),
		         "a hardware counter of the machine could not be read in the last window");
	}
	/* Each socket's own layer splits its package's part. */
	for (int k = 0; h->slayers && k < h->n_sockets; k++) {
		char note[256];
		h->spred[k] = hwpc_layers_predictor(&h->slayers[k], mhz, h->sreason[k],
		                                    sizeof(h->sreason[k]), note, sizeof(note));
		double uj;
		if (!package_uj_at(a, now, h->socket_pkg[k], &uj)) {
			h->spred[k] = -1;
			snprintf(h->sreason[k], sizeof(h->sreason[k]),
			         "no measured package channel (RAPL) of this socket to learn from");
		} else if (!have_pkg || (!counted && h->read_t > 0)) {
			h->spred[k] = -1;
			snprintf(h->sreason[k], sizeof(h->sreason[k]), "%s", h->reason);
		}
	}
	h->read_t = now;
}

/* Whether a model may split the next window: the machine's, or a socket's. */
static bool model_usable(const struct hwpc *h)
{
	bool any = h->usable;
	for (int k = 0; h->slayers && k < h->n_sockets; k++)
		any |= h->spred[k] >= 0;
	return any;
}

/* The watches' methods and the descriptor count, for readers; with the lock held. */
static void publish(struct hwpc *h)
{
	for (int i = 0; i < h->n_watches; i++) {
		h->view[i].id = h->watches[i].id;
		h->view[i].by_model = h->watches[i].by_model;
		memcpy(h->view[i].reason, h->watches[i].reason, sizeof(h->view[i].reason));
	}
	h->n_view = h->n_watches;
	h->view_fds = h->fds;
	h->view_cgroups = h->n_cgroups;
}

/* Split the watches' energy up to the instant the last window's counters were read, by that
 * window's rates: the energy and the counts cover the same interval, however late the thread
 * ran after the sample before the read. Once a sample at or after that instant is handled (the
 * active series are interpolated there), or at the next window's read at the latest; with the
 * lock held. */
static void split_window(struct attrib *a, struct hwpc *h, bool late)
{
	if (!h->split_pending || (!late && a->last_t < h->split_until))
		return;
	struct share_ctx ctx = {h, a};
	/* Per package: a counted watch is by the model unless one part falls back. */
	for (int i = 0; h->slayers && i < h->n_watches; i++)
		h->watches[i].by_model = h->watches[i].open && h->watches[i].rate_ok;
	attrib_split_watch_energy(a, model_share, &ctx, h->slayers != NULL, h->split_until);
	h->split_pending = false;
	publish(h);
}

void hwpc_window(struct attrib *a)
{
	struct hwpc *h = a->hwpc;
	if (!h || !h->on)
		return;
	struct watch_ref ref[ATTRIB_WATCHES_MAX];
	int n = 0;
	attrib_lock(a);
	split_window(a, h, false);
	double t = a->last_t;
	if (h->win_t > 0 && (t - h->win_t < HWPC_WINDOW_MIN_S - 1e-6 ||
	                     energy_wall_time() - h->read_t < HWPC_WINDOW_MIN_S)) {
		attrib_unlock(a);
		return;
	}
	for (int j = 0; j < a->n_watches; j++) {
		const struct attrib_watch *w = a->watches[j];
		ref[n] = (struct watch_ref){
		    w->id, w->is_cgroup ? 0 : w->pid, w->owner, w->alive, w->is_cgroup, ""};
		snprintf(ref[n++].cgroup, sizeof(ref[0].cgroup), "%s", w->cgroup);
	}
	attrib_unlock(a);
	/* The counters are the thread's own: opened, closed and read without the lock. */
	sync_watches(h, ref, n, a->cgroup_fd);
	double counted_s = 0, now = energy_wall_time();
	bool counted = read_counters(h, &counted_s);
	double mhz = hwpc_freq_read(h);
	attrib_lock(a);
	split_window(a, h, true); /* the last window's, if no sample came since its read */
	learn(a, h, now, counted, mhz);
	h->win_t = t;
	if (h->deferring) {
		/* Split once the samples cover the read (split_window). */
		h->split_pending = true;
		h->split_until = now;
	} else {
		for (int i = 0; i < h->n_watches; i++) {
			struct hwpc_watch *w = &h->watches[i];
			w->by_model = false;
			if (w->open)
				snprintf(w->reason, sizeof(w->reason), "%s",
				         model_usable(h) ? "hwpc-model applies from the next window"
				                         : h->reason);
		}
	}
	h->deferring = model_usable(h);
	publish(h);
	attrib_unlock(a);
}
