/*
 * The attribution thread. Two rhythms:
 *
 * - every batch (a->batch_ticks ticks: woken by the tick that ends it, not by those between), or
 *   at every tick while a watch is alive (kernel: scopes have the sample resolution): read
 * /proc/stat once, split the energy of each sample taken since the last wake-up into active / idle
 * (or unattributed) by the busy share of CPU time between the two reads, and add to each watch the
 * active energy times its tree's share of the busy CPU time;
 * - every scan interval (in the batch or after the tick that reaches it, /proc/stat read right
 *   after the processes): read every process and cgroup, and attribute the active energy of the
 *   interval to each process by its CPU time. A process's CPU time here includes what its
 *   reaped children used since the last scan (cutime/cstime grow when it waits for them), minus
 *   what those children had already been charged: short-lived children count to their exit.
 *
 * I/O happens without the lock; results are applied under it.
 */
#define _GNU_SOURCE
#include "attrib.h"
#include "attrib_int.h"
#include "energy.h"
#include "hwpc.h"
#include "log.h"
#include "mem.h"

#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void attrib_lock(struct attrib *a)
{
	pthread_mutex_lock(&a->lock);
}

void attrib_unlock(struct attrib *a)
{
	pthread_mutex_unlock(&a->lock);
}

int attrib_open(struct attrib *a, const struct attrib_config *cfg, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	a->cfg = *cfg;
	if (a->cfg.watches_per_user <= 0)
		a->cfg.watches_per_user = ATTRIB_DEFAULT_WATCHES_PER_USER;
	a->proc_fd = a->stat_fd = a->cgroup_fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	series_store_init(&a->series);
	a->next_watch_id = 1;
	long hz = sysconf(_SC_CLK_TCK);
	a->hz = hz > 0 ? (double)hz : 100.0;
	a->proc_fd = open(cfg->proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	(void)err, (void)errlen;
	if (a->proc_fd < 0) {
		/* Energy is still measured; only attribution is off, and the API says why. */
		snprintf(a->error, sizeof(a->error), "attribution is off: cannot open %s: %s",
		         cfg->proc_root, strerror(errno));
		log_warn("%s (set --proc-root)", a->error);
		return 0;
	}
	a->stat_fd = openat(a->proc_fd, "stat", O_RDONLY | O_CLOEXEC);
	if (a->stat_fd < 0)
		log_warn("attribution: cannot open %s/stat: %s; energy will not be split",
		         cfg->proc_root, strerror(errno));
	if (cfg->cgroup_root && *cfg->cgroup_root) {
		a->cgroup_fd = open(cfg->cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (a->cgroup_fd < 0)
			log_warn("attribution: cannot open cgroup root %s: %s; cgroup scopes are "
			         "off (set --cgroup-root)",
			         cfg->cgroup_root, strerror(errno));
	}
	a->hwpc = hwpc_open(&a->cfg, a->cgroup_fd); /* before the privilege drop (hwpc.h) */
	return 0;
}

/* ---- lookups ------------------------------------------------------------------------------ */

struct attrib_proc *attrib_proc_find(struct attrib_proc *p, size_t n, int pid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p[mid].pid == pid)
			return &p[mid];
		if (p[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int attrib_ppid_find(const struct attrib_ppid *p, size_t n, int pid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p[mid].pid == pid)
			return p[mid].ppid;
		if (p[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int attrib_cmp_proc(const void *x, const void *y)
{
	const struct attrib_proc *a = x, *b = y;
	return (a->pid > b->pid) - (a->pid < b->pid);
}

int attrib_cmp_ppid(const void *x, const void *y)
{
	const struct attrib_ppid *a = x, *b = y;
	return (a->pid > b->pid) - (a->pid < b->pid);
}

int attrib_cmp_int(const void *x, const void *y)
{
	int a = *(const int *)x, b = *(const int *)y;
	return (a > b) - (a < b);
}

int attrib_cmp_cgroup(const void *x, const void *y)
{
	return strcmp(((const struct attrib_cgroup *)x)->path,
	              ((const struct attrib_cgroup *)y)->path);
}

double attrib_series_at(struct attrib *a, const char *key, double t)
{
	struct series *s = series_get(&a->series, key, false);
	double v = 0;
	if (s)
		series_value_at(s, t, &v);
	return v;
}

void attrib_series_set(struct attrib *a, const char *key, uint64_t tag, double t_prev,
                       double v_prev, double t, double v)
{
	struct series *s = series_get(&a->series, key, true);
	if (!s)
		return; /* out of memory: this scope loses a point, the daemon goes on */
	if (s->n && s->tag != tag)
		series_reset(s, tag);
	s->tag = tag;
	series_update(s, t_prev, v_prev, t, v);
}

/* ---- the sample rhythm ---------------------------------------------------------------------- */

static void add_channel_energy(struct attrib *a, int c, uint64_t e_uj, double t)
{
	const char *id = a->sampler->set->ch[c].id;
	char key[CHANNEL_ID_MAX + 32];
	double t_prev = a->work.chan_t[c];
	switch (a->method[c]) {
	case SPLIT_CPU_TIME: {
		uint64_t act = 0, idle = e_uj;
		if (a->work.ratio_total)
			split_active_idle(e_uj, a->work.ratio_busy, a->work.ratio_total, &act,
			                  &idle);
		double pa = a->active_uj[c], pi = a->idle_uj[c];
		a->active_uj[c] += (double)act;
		a->idle_uj[c] += (double)idle;
		if (a->in_coverage[c]) {
			a->work.cpu_active_uj += (double)act;
			a->work.pending_active_uj += (double)act;
			a->work.pending_chan_uj[c] += (double)act;
		}
		snprintf(key, sizeof(key), "active:%s", id);
		attrib_series_set(a, key, 0, t_prev, pa, t, a->active_uj[c]);
		snprintf(key, sizeof(key), "idle:%s", id);
		attrib_series_set(a, key, 0, t_prev, pi, t, a->idle_uj[c]);
		break;
	}
	case SPLIT_GPU:
		a->gpu_pending_uj[c] += (double)e_uj; /* split at the next scan */
		break;
	case SPLIT_NONE: {
		double pu = a->unattr_uj[c];
		a->unattr_uj[c] += (double)e_uj;
		snprintf(key, sizeof(key), "unattributed:%s", id);
		attrib_series_set(a, key, 0, t_prev, pu, t, a->unattr_uj[c]);
		break;
	}
	}
	a->work.chan_t[c] = t;
}

/* Energy of the new samples, split; with the lock held. */
static void handle_samples(struct attrib *a, int n_samples, const double *t, const uint64_t *v,
                           int n_ch)
{
	for (int k = 0; k < n_samples; k++) {
		for (int c = 0; c < n_ch; c++) {
			uint64_t x = v[(size_t)k * (size_t)n_ch + (size_t)c];
			if (x == HISTORY_INVALID)
				continue;
			if (!a->work.have_uj[c]) {
				a->work.have_uj[c] = true;
				a->work.last_uj[c] = x;
				a->work.chan_t[c] = t[k];
				continue;
			}
			uint64_t e = x >= a->work.last_uj[c] ? x - a->work.last_uj[c] : 0;
			a->work.last_uj[c] = x;
			add_channel_energy(a, c, e, t[k]);
		}
		if (a->first_t == 0)
			a->first_t = t[k];
		a->last_t = t[k];
	}
}

/* Give each watch its share of the active energy since the last split; with the lock held.
 * Splits wait until the busy jiffies moved: below one jiffy nothing can be said. */
static void split_watches(struct attrib *a, struct watch_obs *obs, int n_obs)
{
	for (int i = 0; i < n_obs; i++) {
		struct attrib_watch *w = NULL;
		for (int j = 0; j < a->n_watches; j++)
			if (a->watches[j]->id == obs[i].id)
				w = a->watches[j];
		if (!w)
			continue; /* deleted meanwhile */
		if (obs[i].gone) {
			if (w->alive) {
				w->alive = false;
				w->ended_at = a->last_t;
			}
			continue;
		}
		if (!obs[i].ok)
			continue;
		double per_s = w->is_cgroup ? 1e6 : a->hz;
		if (obs[i].ticks > w->last_ticks)
			w->pending_cpu_s += (double)(obs[i].ticks - w->last_ticks) / per_s;
		/* A member left the tree (re-parented away): rebase, nothing is negative. */
		w->last_ticks = obs[i].ticks;
		free(w->members);
		w->members = obs[i].members;
		w->n_members = obs[i].n_members;
		obs[i].members = NULL;
	}
	if (hwpc_defers(a->hwpc))
		return; /* the hardware-counter model splits at the end of its window */
	attrib_split_watch_energy(a, NULL, NULL, false, a->last_t);
}

/* Of the active energy of channel c not yet given to the watches (pending since a->split_t),
 * the part up to until (at most the newest sample): the rest is carried to the next split. */
static double pending_until(struct attrib *a, int c, double until)
{
	double pending = a->work.pending_chan_uj[c];
	if (until >= a->work.chan_t[c] || pending <= 0)
		return pending;
	char key[CHANNEL_ID_MAX + 16];
	snprintf(key, sizeof(key), "active:%s", a->sampler->set->ch[c].id);
	double after = a->active_uj[c] - attrib_series_at(a, key, until);
	double part = pending - (after > 0 ? after : 0);
	return part > 0 ? part : 0;
}

void attrib_split_watch_energy(struct attrib *a, attrib_share_fn share_of, void *ctx,
                               bool by_channel, double until)
{
	int n_ch = a->sampler->set->n;
	if (!a->work.have_sys || a->work.sys_busy <= a->work.busy_at_split || until <= a->split_t)
		return;
	if (until > a->last_t)
		until = a->last_t;
	double part[CHANNELS_MAX], all = 0;
	for (int c = 0; c < n_ch; c++)
		all += part[c] = pending_until(a, c, until);
	double busy_s = (double)(a->work.sys_busy - a->work.busy_at_split) / a->hz;
	for (int j = 0; j < a->n_watches; j++) {
		struct attrib_watch *w = a->watches[j];
		double prev = w->uj;
		if (until <= w->last_t)
			continue; /* registered after until: nothing of this split is its */
		if (share_of && by_channel) {
			for (int c = 0; c < n_ch; c++)
				if (part[c] > 0)
					w->uj += part[c] * share_of(ctx, w, busy_s, c);
		} else {
			double share = share_of ? share_of(ctx, w, busy_s, -1)
			                        : split_scope_share(w->pending_cpu_s, busy_s);
			w->uj += all * share;
		}
		w->cpu_s += w->pending_cpu_s;
		w->pending_cpu_s = 0;
		char key[32];
		snprintf(key, sizeof(key), "kernel:%d", w->id);
		attrib_series_set(a, key, 0, w->last_t, prev, until, w->uj);
		w->last_t = until;
	}
	for (int c = 0; c < n_ch; c++)
		a->work.pending_chan_uj[c] -= part[c];
	a->work.pending_active_uj =
	    all < a->work.pending_active_uj ? a->work.pending_active_uj - all : 0;
	a->work.busy_at_split = a->work.sys_busy;
	a->split_t = until;
}

/* ---- the thread ----------------------------------------------------------------------------- */

/* A watch is alive: its kernel: scope is promised the sample resolution; with the lock held. */
static bool watching(const struct attrib *a)
{
	for (int j = 0; j < a->n_watches; j++)
		if (a->watches[j]->alive)
			return true;
	return false;
}

/* Wait for the tick that ends the batch (batch_ticks after *seen, the last tick handled) or,
 * while a watch is alive or before the first, for the next one. Sets *per_tick to which it was;
 * false: asked to stop. A new watch and attrib_stop end the wait early (sampler_kick). */
static bool wait_next(struct attrib *a, uint64_t *seen, bool *per_tick)
{
	attrib_lock(a);
	*per_tick = watching(a);
	attrib_unlock(a);
	struct sampler *s = a->sampler;
	sampler_lock(s);
	if (!atomic_load(&a->stop))
		*seen = sampler_wait_ticks(s, *seen, *per_tick || !*seen ? 1 : a->batch_ticks);
	sampler_unlock(s);
	return !atomic_load(&a->stop) && !atomic_load(&s->stop);
}

/* Copy the samples newer than the last one handled (at most ATTRIB_SPAN_MAX, newest last; the
 * energy of older ones is in the first one's counter delta). Returns how many. */
static int copy_samples(struct attrib *a, double *t, uint64_t *v, int n_ch)
{
	struct sampler *s = a->sampler;
	int n = 0;
	sampler_lock(s);
	const struct history *h = &s->history;
	size_t first = h->count;
	if (a->last_t == 0 && first > 0)
		first--; /* start from the newest sample: it is the base */
	while (first > 0 && h->count - first < ATTRIB_SPAN_MAX &&
	       history_time(h, first - 1) > a->last_t)
		first--;
	for (size_t i = first; i < h->count; i++, n++) {
		t[n] = history_time(h, i);
		for (int c = 0; c < n_ch; c++)
			v[(size_t)n * (size_t)n_ch + (size_t)c] = history_value(h, i, c);
	}
	sampler_unlock(s);
	return n;
}

/* What the watches are, copied under the lock for reading their trees without it. */
static int copy_watches(struct attrib *a, struct watch_obs *obs)
{
	attrib_lock(a);
	int n_obs = 0;
	for (int j = 0; j < a->n_watches; j++) {
		struct attrib_watch *w = a->watches[j];
		struct watch_obs *o = &obs[n_obs++];
		memset(o, 0, sizeof(*o));
		o->id = w->id;
		o->is_cgroup = w->is_cgroup;
		o->pid = w->pid;
		o->starttime = w->starttime;
		o->gone = !w->alive;
		snprintf(o->cgroup, sizeof(o->cgroup), "%s", w->cgroup);
	}
	attrib_unlock(a);
	return n_obs;
}

/* /proc/stat as read once in this batch: the busy share since the last batch (the ratio every
 * new sample is split by); with the lock held. */
static void note_system(struct attrib *a, bool sys_ok, uint64_t busy, uint64_t total)
{
	if (sys_ok && a->work.have_sys && busy >= a->work.sys_busy && total > a->work.sys_total) {
		a->work.ratio_busy = busy - a->work.sys_busy;
		a->work.ratio_total = total - a->work.sys_total;
	}
	if (sys_ok) {
		if (!a->work.have_sys)
			a->work.busy_at_split = busy;
		a->work.have_sys = true;
		a->work.sys_busy = busy;
		a->work.sys_total = total;
	}
}

/* A full scan on its own: every process, /proc/stat right after them, then applied. */
static void full_scan(struct attrib *a)
{
	struct scan_result r;
	if (attrib_scan_read(a, &r) == 0) {
		attrib_lock(a);
		attrib_scan_apply(a, &r);
		attrib_unlock(a);
	}
	free(r.procs);
	free(r.cgroups);
}

/* One batch: the samples t[0..n), the watches, a full scan when one is due. */
static void run_batch(struct attrib *a, int n, const double *t, const uint64_t *v, int n_ch,
                      struct watch_obs *obs, bool per_tick)
{
	int n_obs = copy_watches(a, obs);
	/* Only this thread writes have_scan and scan_t: no lock needed to read them. */
	bool scan_due = !a->have_scan || t[n - 1] - a->scan_t >= a->cfg.scan_interval_s - 1e-6;
	/* In batches, a due scan's /proc/stat, read right after its processes, is the batch's one
	 * reading: the busy time the scan divides by covers the same interval as their times. At
	 * every tick (a watch is alive), the watched processes then /proc/stat, right after them,
	 * for the watches; the scan, when due, comes after the split with a reading of its own. (A
	 * process forked since the last tick is listed at the next one, from the fork count read
	 * here.) */
	attrib_observe_watches(a, obs, n_obs);
	struct scan_result r;
	bool scanned = scan_due && !per_tick && attrib_scan_read(a, &r) == 0;
	uint64_t busy = 0, total = 0, forks = 0, sys_ns = 0;
	bool sys_ok;
	if (scanned) {
		sys_ok = r.sys_ok, busy = r.sys_busy, total = r.sys_total, sys_ns = r.sys_ns;
	} else {
		sys_ok = attrib_read_system(a, &busy, &total, &forks, &sys_ns) == 0;
		a->work.forks = sys_ok ? forks : 0;
	}
	if (sys_ok && a->system_hook)
		a->system_hook(a->system_hook_ctx, sys_ns, busy, total);

	attrib_lock(a);
	note_system(a, sys_ok, busy, total);
	handle_samples(a, n, t, v, n_ch);
	split_watches(a, obs, n_obs);
	if (scanned)
		attrib_scan_apply(a, &r);
	attrib_unlock(a);
	if (scanned) {
		free(r.procs);
		free(r.cgroups);
	}
	for (int i = 0; i < n_obs; i++)
		free(obs[i].members);
	hwpc_window(a);
	if (scan_due && per_tick)
		full_scan(a);
}

static void *attrib_thread(void *arg)
{
	struct attrib *a = arg;
	int n_ch = a->sampler->set->n;
	double *t = malloc(ATTRIB_SPAN_MAX * sizeof(*t));
	uint64_t *v = malloc((size_t)ATTRIB_SPAN_MAX * (size_t)(n_ch ? n_ch : 1) * sizeof(*v));
	struct watch_obs *obs = calloc(ATTRIB_WATCHES_MAX, sizeof(*obs));
	if (!t || !v || !obs) {
		log_err("attribution: out of memory; attribution is off");
		free(t), free(v), free(obs);
		return NULL;
	}
	uint64_t seen = 0;
	bool per_tick = false;
	while (wait_next(a, &seen, &per_tick)) {
		int n = copy_samples(a, t, v, n_ch);
		if (n > 0)
			run_batch(a, n, t, v, n_ch, obs, per_tick);
	}
	free(t), free(v), free(obs);
	return NULL;
}

bool attrib_set_system_hook(struct attrib *a, attrib_system_hook hook, void *ctx)
{
	if (a->proc_fd < 0 || a->stat_fd < 0)
		return false;
	a->system_hook = hook;
	a->system_hook_ctx = ctx;
	return true;
}

int attrib_start(struct attrib *a, struct sampler *s)
{
	a->sampler = s;
	double interval = (double)s->interval_ns / 1e9;
	a->batch_s = a->cfg.batch_s > 0 ? a->cfg.batch_s : ATTRIB_BATCH_DEFAULT_S;
	if (a->batch_s > a->cfg.scan_interval_s && a->cfg.scan_interval_s > 0)
		a->batch_s = a->cfg.scan_interval_s;
	if (a->batch_s < interval)
		a->batch_s = interval;
	a->batch_ticks = (uint64_t)(a->batch_s / interval + 0.5);
	if (a->batch_ticks < 1)
		a->batch_ticks = 1;
	if (a->proc_fd < 0)
		return 0;
	for (int c = 0; c < s->set->n; c++)
		a->method[c] = split_method_of(&s->set->ch[c], a->cfg.dram_by_cpu);
	for (int k = 0; k < s->coverage.n; k++)
		a->in_coverage[s->coverage.idx[k]] = true;
	atomic_store(&a->stop, false);
	return threads_start(&a->worker, "energy-attrib", attrib_thread, a);
}

void attrib_stop(struct attrib *a)
{
	if (!a->worker.running)
		return;
	atomic_store(&a->stop, true);
	sampler_kick(a->sampler); /* the thread checks stop under its lock before it waits */
	threads_join(&a->worker);
}

void attrib_free(struct attrib *a)
{
	attrib_stop(a);
	for (int j = 0; j < a->n_watches; j++)
		attrib_watch_free(a->watches[j]);
	a->n_watches = 0;
	series_store_free(&a->series);
	hwpc_free(a->hwpc);
	a->hwpc = NULL;
	MEM_FREE_NULL(a->procs);
	MEM_FREE_NULL(a->cgroups);
	MEM_FREE_NULL(a->users);
	MEM_FREE_NULL(a->work.extra);
	procfs_procs_free(&a->work.procs);
	if (a->proc_fd >= 0)
		close(a->proc_fd);
	if (a->stat_fd >= 0)
		close(a->stat_fd);
	if (a->cgroup_fd >= 0)
		close(a->cgroup_fd);
	a->proc_fd = a->stat_fd = a->cgroup_fd = -1;
	pthread_mutex_destroy(&a->lock);
}

void attrib_user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *r = NULL;
	char tmp[1024];
	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &r) == 0 && r)
		snprintf(buf, len, "%s", r->pw_name);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
}

const char *attrib_off_reason(const struct attrib *a)
{
	return a->proc_fd >= 0 ? NULL : a->error;
}

void attrib_status_locked(const struct attrib *a, struct attrib_status *out)
{
	*out = (struct attrib_status){.have_scan = a->have_scan,
	                              .scan_t = a->scan_t,
	                              .scan_dt = a->scan_dt,
	                              .scan_cost_s = a->scan_cost_s,
	                              .active_w = a->scan_active_w,
	                              .idle_w = a->scan_idle_w,
	                              .busy_share = a->scan_busy_share,
	                              .n_procs = a->n_procs,
	                              .n_users = a->n_users,
	                              .first_t = a->first_t,
	                              .split_t = a->split_t};
	const struct channel_set *set = a->sampler ? a->sampler->set : NULL;
	for (int c = 0; set && c < set->n; c++)
		if (a->in_coverage[c]) {
			out->active_uj += a->active_uj[c];
			out->idle_uj += a->idle_uj[c];
			out->unattr_uj += a->unattr_uj[c];
		}
}

size_t attrib_users_locked(const struct attrib *a, struct attrib_user *out, size_t max)
{
	size_t n = a->have_scan ? a->n_users : 0;
	n = n < max ? n : max;
	if (n)
		memcpy(out, a->users, n * sizeof(*out));
	return n;
}

size_t attrib_procs_locked(const struct attrib *a, const struct attrib_proc **procs)
{
	*procs = a->procs;
	return a->n_procs;
}

size_t attrib_cgroups_locked(const struct attrib *a, const struct attrib_cgroup **cgroups)
{
	*cgroups = a->cgroups;
	return a->n_cgroups;
}

int attrib_watches_locked(const struct attrib *a, struct attrib_watch *const **watches)
{
	*watches = a->watches;
	return a->n_watches;
}

bool attrib_has_series_locked(struct attrib *a, const char *key)
{
	return series_get(&a->series, key, false) != NULL;
}

enum split_method attrib_channel_method(const struct attrib *a, int c)
{
	return a->method[c];
}

bool attrib_channel_in_coverage(const struct attrib *a, int c)
{
	return a->in_coverage[c];
}

double attrib_batch_s(const struct attrib *a)
{
	return a->batch_s;
}

const struct attrib_config *attrib_config_of(const struct attrib *a)
{
	return &a->cfg;
}

bool attrib_has_cgroups(const struct attrib *a)
{
	return a->cgroup_fd >= 0;
}

const struct hwpc *attrib_hwpc(const struct attrib *a)
{
	return a->hwpc;
}
