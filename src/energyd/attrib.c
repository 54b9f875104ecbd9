/*
 * The attribution thread. Two rhythms:
 *
 * - every sample: split each channel's new energy into active / idle (or unattributed), and
 *   add to each watch the active energy times its tree's share of the busy CPU time;
 * - every scan interval: read every process and cgroup, and attribute the active energy of the
 *   interval to each process by its CPU time. A process's CPU time here includes what its
 *   reaped children used since the last scan (cutime/cstime grow when it waits for them), minus
 *   what those children had already been charged: short-lived children count to their exit.
 *
 * I/O happens without the lock; results are applied under it.
 */
#define _GNU_SOURCE
#include "attrib.h"
#include "energy.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ATTRIB_TREE_DEPTH_MAX 256
#define ATTRIB_CGROUP_DEPTH   16

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
	a->proc_fd = a->stat_fd = a->cgroup_fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	series_store_init(&a->series);
	a->next_watch_id = 1;
	long hz = sysconf(_SC_CLK_TCK);
	a->hz = hz > 0 ? (double)hz : 100.0;
	a->proc_fd = open(cfg->proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->proc_fd < 0) {
		int e = errno;
		snprintf(err, errlen, "attribution: cannot open %s: %s (set --proc-root)",
		         cfg->proc_root, strerror(e));
		return -e;
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
	return 0;
}

/* ---- lookups ------------------------------------------------------------------------------ */

static struct attrib_proc *proc_find(struct attrib_proc *p, size_t n, int pid)
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

static int ppid_find(const struct attrib_ppid *p, size_t n, int pid)
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

static int cmp_proc(const void *x, const void *y)
{
	const struct attrib_proc *a = x, *b = y;
	return (a->pid > b->pid) - (a->pid < b->pid);
}

static int cmp_ppid(const void *x, const void *y)
{
	const struct attrib_ppid *a = x, *b = y;
	return (a->pid > b->pid) - (a->pid < b->pid);
}

static int cmp_int(const void *x, const void *y)
{
	int a = *(const int *)x, b = *(const int *)y;
	return (a > b) - (a < b);
}

static int cmp_cgroup(const void *x, const void *y)
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

static void series_set(struct attrib *a, const char *key, uint64_t tag, double t_prev,
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

/* ---- process trees ------------------------------------------------------------------------ */

/* Is pid in the tree of root, following parents through lookup()? */
static bool in_tree(int pid, int root, int (*lookup)(void *, int), void *ctx)
{
	for (int depth = 0; pid > 0 && depth < ATTRIB_TREE_DEPTH_MAX; depth++) {
		if (pid == root)
			return true;
		int ppid = lookup(ctx, pid);
		if (ppid == pid)
			return false;
		pid = ppid;
	}
	return false;
}

struct full_map {
	struct attrib_ppid *m;
	size_t n;
};

static int full_lookup(void *ctx, int pid)
{
	struct full_map *f = ctx;
	return ppid_find(f->m, f->n, pid);
}

int attrib_tree_ticks(int proc_fd, int pid, uint64_t *ticks, uint64_t *starttime)
{
	struct procfs_stat root;
	int rc = procfs_read_stat(proc_fd, pid, &root);
	if (rc < 0)
		return rc == -ENOENT ? -ESRCH : rc;
	int *pids;
	size_t n;
	rc = procfs_list_pids(proc_fd, &pids, &n);
	if (rc < 0)
		return rc;
	struct attrib_ppid *m = calloc(n ? n : 1, sizeof(*m));
	if (!m) {
		free(pids);
		return -ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct procfs_stat st;
		if (procfs_read_stat(proc_fd, pids[i], &st) < 0)
			continue;
		m[k].pid = st.pid;
		m[k].ppid = st.ppid;
		k++;
	}
	qsort(m, k, sizeof(*m), cmp_ppid);
	struct full_map f = {m, k};
	uint64_t sum = procfs_total_ticks(&root);
	for (size_t i = 0; i < k; i++) {
		if (m[i].pid == pid || !in_tree(m[i].pid, pid, full_lookup, &f))
			continue;
		struct procfs_stat st;
		if (procfs_read_stat(proc_fd, m[i].pid, &st) == 0)
			sum += procfs_total_ticks(&st);
	}
	free(pids), free(m);
	*ticks = sum;
	*starttime = root.starttime;
	return 0;
}

/* ---- watches ------------------------------------------------------------------------------ */

static bool cgroup_path_ok(const char *p)
{
	if (p[0] != '/' || strlen(p) >= ATTRIB_CGROUP_MAX || strstr(p, "/../") || strstr(p, "//") ||
	    strcmp(p + strlen(p) - (strlen(p) >= 3 ? 3 : 0), "/..") == 0)
		return false;
	return strcmp(p, "/..") != 0;
}

/* "/a/b" -> "a/b" for openat; "/" -> "". */
static const char *cgroup_rel(const char *p)
{
	return p[0] == '/' ? p + 1 : p;
}

int attrib_watch_add(struct attrib *a, int pid, const char *cgroup, const char *label,
                     uid_t peer_uid, int *id)
{
	struct attrib_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	snprintf(w->label, sizeof(w->label), "%s", label ? label : "");
	w->owner = peer_uid;
	w->alive = true;
	if (cgroup) {
		if (!cgroup_path_ok(cgroup)) {
			free(w);
			return -EINVAL;
		}
		if (a->cgroup_fd < 0) {
			free(w);
			return -EOPNOTSUPP;
		}
		struct stat st;
		const char *rel = *cgroup_rel(cgroup) ? cgroup_rel(cgroup) : ".";
		if (fstatat(a->cgroup_fd, rel, &st, 0) < 0 || !S_ISDIR(st.st_mode)) {
			free(w);
			return -ENOENT;
		}
		if (peer_uid != 0 && st.st_uid != peer_uid) {
			free(w);
			return -EPERM;
		}
		int rc = procfs_read_cgroup_usage(a->cgroup_fd, cgroup_rel(cgroup), &w->last_ticks);
		if (rc < 0) {
			free(w);
			return -ENOENT;
		}
		w->is_cgroup = true;
		snprintf(w->cgroup, sizeof(w->cgroup), "%s", cgroup);
	} else {
		uid_t owner;
		int rc = procfs_read_uid(a->proc_fd, pid, &owner);
		if (rc < 0) {
			free(w);
			return -ESRCH; /* gone, or its /proc entry cannot be read */
		}
		if (peer_uid != 0 && owner != peer_uid) {
			free(w);
			return -EPERM;
		}
		/* The base is the tree's CPU time now, so that nothing before registration
		 * counts and nothing after it is missed. */
		rc = attrib_tree_ticks(a->proc_fd, pid, &w->last_ticks, &w->starttime);
		if (rc < 0) {
			free(w);
			return rc == -ENOMEM ? rc : -ESRCH;
		}
		w->pid = pid;
	}
	attrib_lock(a);
	if (a->n_watches >= ATTRIB_WATCHES_MAX) {
		attrib_unlock(a);
		free(w);
		return -ENOSPC;
	}
	w->id = a->next_watch_id++;
	w->created_at = a->last_t > 0 ? a->last_t : energy_wall_time();
	w->last_t = w->created_at;
	a->watches[a->n_watches++] = w;
	*id = w->id;
	attrib_unlock(a);
	return 0;
}

static void watch_free(struct attrib_watch *w)
{
	free(w->members);
	free(w);
}

int attrib_watch_remove(struct attrib *a, int id, uid_t peer_uid)
{
	attrib_lock(a);
	for (int i = 0; i < a->n_watches; i++) {
		struct attrib_watch *w = a->watches[i];
		if (w->id != id)
			continue;
		if (peer_uid != 0 && peer_uid != w->owner) {
			attrib_unlock(a);
			return -EPERM;
		}
		a->watches[i] = a->watches[--a->n_watches];
		watch_free(w);
		attrib_unlock(a);
		return 0;
	}
	attrib_unlock(a);
	return -ENOENT;
}

struct attrib_watch *attrib_watch_find(struct attrib *a, const char *key)
{
	char *end;
	long id = strtol(key, &end, 10);
	struct attrib_watch *best = NULL;
	for (int i = 0; i < a->n_watches; i++) {
		struct attrib_watch *w = a->watches[i];
		if (*key && !*end && w->id == id)
			return w;
		if (strcmp(w->label, key) == 0 && (!best || w->id > best->id))
			best = w;
	}
	return best;
}

/* What the thread found for one watch at a tick (I/O done without the lock). */
struct watch_obs {
	int id;
	bool is_cgroup, gone, ok;
	int pid;
	uint64_t starttime;
	char cgroup[ATTRIB_CGROUP_MAX];
	uint64_t ticks;
	int *members;
	size_t n_members;
};

struct tick_map {
	struct attrib *a;
};

static int tick_lookup(void *ctx, int pid)
{
	struct attrib *a = ctx;
	struct attrib_proc *p = proc_find(a->procs, a->n_procs, pid);
	if (p)
		return p->ppid;
	return ppid_find(a->extra, a->n_extra, pid);
}

/*
 * Learn the parents of processes born since the last full scan (one readdir of the proc root;
 * stat is read only for pids not seen before), so that watched trees include new children at
 * the sample rate. Returns the pids listed (caller frees) or NULL.
 */
static int *discover(struct attrib *a, size_t *n_out)
{
	int *pids;
	size_t n;
	if (procfs_list_pids(a->proc_fd, &pids, &n) < 0)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (proc_find(a->procs, a->n_procs, pids[i]) ||
		    ppid_find(a->extra, a->n_extra, pids[i]) >= 0)
			continue;
		struct procfs_stat st;
		if (procfs_read_stat(a->proc_fd, pids[i], &st) < 0)
			continue;
		struct attrib_ppid *ne = realloc(a->extra, (a->n_extra + 1) * sizeof(*ne));
		if (!ne)
			break;
		a->extra = ne;
		a->extra[a->n_extra].pid = st.pid;
		a->extra[a->n_extra].ppid = st.ppid;
		a->n_extra++;
		qsort(a->extra, a->n_extra, sizeof(*a->extra), cmp_ppid);
	}
	*n_out = n;
	return pids;
}

static void observe_watches(struct attrib *a, struct watch_obs *obs, int n_obs)
{
	bool any_pid = false;
	for (int i = 0; i < n_obs; i++)
		any_pid |= !obs[i].is_cgroup && !obs[i].gone;
	size_t n_pids = 0;
	int *pids = NULL;
	if (any_pid && (a->forks == 0 || a->forks != a->forks_listed)) {
		pids = discover(a, &n_pids);
		a->forks_listed = a->forks;
	} else if (any_pid) {
		/* No process was created since the last listing: the pids known are all there
		 * can be (some may have exited: their stat will not read). Listing /proc costs
		 * more than everything else a tick does. */
		pids = malloc((a->n_procs + a->n_extra + 1) * sizeof(int));
		for (size_t i = 0; pids && i < a->n_procs; i++)
			pids[n_pids++] = a->procs[i].pid;
		for (size_t i = 0; pids && i < a->n_extra; i++)
			pids[n_pids++] = a->extra[i].pid;
	}
	for (int i = 0; i < n_obs; i++) {
		struct watch_obs *o = &obs[i];
		if (o->gone)
			continue;
		if (o->is_cgroup) {
			o->ok = procfs_read_cgroup_usage(a->cgroup_fd, cgroup_rel(o->cgroup),
			                                 &o->ticks) == 0;
			o->gone = !o->ok;
			continue;
		}
		struct procfs_stat root;
		if (procfs_read_stat(a->proc_fd, o->pid, &root) < 0 ||
		    root.starttime != o->starttime) {
			o->gone = true; /* exited and reaped (or the pid was reused) */
			continue;
		}
		uint64_t sum = procfs_total_ticks(&root);
		o->members = malloc((n_pids + 1) * sizeof(int));
		if (o->members)
			o->members[o->n_members++] = o->pid;
		for (size_t k = 0; k < n_pids; k++) {
			if (pids[k] == o->pid || !in_tree(pids[k], o->pid, tick_lookup, a))
				continue;
			struct procfs_stat st;
			if (procfs_read_stat(a->proc_fd, pids[k], &st) < 0)
				continue;
			sum += procfs_total_ticks(&st);
			if (o->members)
				o->members[o->n_members++] = pids[k];
		}
		if (o->members)
			qsort(o->members, o->n_members, sizeof(int), cmp_int);
		o->ticks = sum;
		o->ok = true;
	}
	free(pids);
}

/* ---- the sample rhythm ---------------------------------------------------------------------- */

static void add_channel_energy(struct attrib *a, int c, uint64_t e_uj, double t)
{
	const char *id = a->sampler->set->ch[c].id;
	char key[CHANNEL_ID_MAX + 32];
	double t_prev = a->chan_t[c];
	switch (a->method[c]) {
	case SPLIT_CPU_TIME: {
		uint64_t act = 0, idle = e_uj;
		if (a->ratio_total)
			split_active_idle(e_uj, a->ratio_busy, a->ratio_total, &act, &idle);
		double pa = a->active_uj[c], pi = a->idle_uj[c];
		a->active_uj[c] += (double)act;
		a->idle_uj[c] += (double)idle;
		if (a->in_coverage[c]) {
			a->cpu_active_uj += (double)act;
			a->pending_active_uj += (double)act;
		}
		snprintf(key, sizeof(key), "active:%s", id);
		series_set(a, key, 0, t_prev, pa, t, a->active_uj[c]);
		snprintf(key, sizeof(key), "idle:%s", id);
		series_set(a, key, 0, t_prev, pi, t, a->idle_uj[c]);
		break;
	}
	case SPLIT_GPU:
		a->gpu_pending_uj[c] += (double)e_uj; /* split at the next scan */
		break;
	case SPLIT_NONE: {
		double pu = a->unattr_uj[c];
		a->unattr_uj[c] += (double)e_uj;
		snprintf(key, sizeof(key), "unattributed:%s", id);
		series_set(a, key, 0, t_prev, pu, t, a->unattr_uj[c]);
		break;
	}
	}
	a->chan_t[c] = t;
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
			if (!a->have_uj[c]) {
				a->have_uj[c] = true;
				a->last_uj[c] = x;
				a->chan_t[c] = t[k];
				continue;
			}
			uint64_t e = x >= a->last_uj[c] ? x - a->last_uj[c] : 0;
			a->last_uj[c] = x;
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
	if (!a->have_sys || a->sys_busy <= a->busy_at_split)
		return;
	double busy_s = (double)(a->sys_busy - a->busy_at_split) / a->hz;
	for (int j = 0; j < a->n_watches; j++) {
		struct attrib_watch *w = a->watches[j];
		double share = split_scope_share(w->pending_cpu_s, busy_s);
		double prev = w->uj;
		w->uj += a->pending_active_uj * share;
		w->cpu_s += w->pending_cpu_s;
		w->pending_cpu_s = 0;
		char key[32];
		snprintf(key, sizeof(key), "kernel:%d", w->id);
		series_set(a, key, 0, w->last_t, prev, a->last_t, w->uj);
		w->last_t = a->last_t;
	}
	a->pending_active_uj = 0;
	a->busy_at_split = a->sys_busy;
	a->split_t = a->last_t;
}

/* ---- the scan rhythm ------------------------------------------------------------------------ */

struct scan_result {
	struct attrib_proc *procs;
	size_t n;
	struct attrib_cgroup *cgroups;
	size_t n_cgroups;
	double boot_ticks;
	double cost_s;
};

static void walk_cgroups(int dirfd, const char *path, int depth, struct scan_result *r)
{
	if (r->n_cgroups >= ATTRIB_CGROUPS_MAX)
		return;
	uint64_t usage;
	const char *rel = *cgroup_rel(path) ? cgroup_rel(path) : "";
	if (procfs_read_cgroup_usage(dirfd, rel, &usage) == 0) {
		struct attrib_cgroup *g = &r->cgroups[r->n_cgroups++];
		snprintf(g->path, sizeof(g->path), "%s", path);
		g->usage_usec = usage;
		g->uj = 0;
	}
	if (depth >= ATTRIB_CGROUP_DEPTH)
		return;
	int fd = openat(dirfd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) && r->n_cgroups < ATTRIB_CGROUPS_MAX) {
		if (e->d_name[0] == '.' || e->d_type != DT_DIR)
			continue;
		char child[ATTRIB_CGROUP_MAX];
		int len = snprintf(child, sizeof(child), "%s%s%s", path,
		                   strcmp(path, "/") == 0 ? "" : "/", e->d_name);
		if (len < 0 || (size_t)len >= sizeof(child))
			continue;
		walk_cgroups(dirfd, child, depth + 1, r);
	}
	closedir(d);
}

static int scan_read(struct attrib *a, struct scan_result *r)
{
	uint64_t t0 = energy_monotonic_ns();
	memset(r, 0, sizeof(*r));
	struct timespec bt;
	clock_gettime(CLOCK_BOOTTIME, &bt);
	r->boot_ticks = ((double)bt.tv_sec + (double)bt.tv_nsec / 1e9) * a->hz;
	int *pids;
	size_t n;
	int rc = procfs_list_pids(a->proc_fd, &pids, &n);
	if (rc < 0)
		return rc;
	r->procs = calloc(n ? n : 1, sizeof(*r->procs));
	if (!r->procs) {
		free(pids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct procfs_stat st;
		if (procfs_read_stat(a->proc_fd, pids[i], &st) < 0)
			continue;
		struct attrib_proc *p = &r->procs[r->n++];
		p->pid = st.pid;
		p->ppid = st.ppid;
		p->starttime = st.starttime;
		p->own_ticks = st.utime + st.stime;
		p->total_ticks = procfs_total_ticks(&st);
		snprintf(p->comm, sizeof(p->comm), "%s", st.comm);
		/* The owner only for processes not seen before: status is the larger file. */
		struct attrib_proc *old = proc_find(a->procs, a->n_procs, st.pid);
		if (old && old->starttime == st.starttime)
			p->uid = old->uid;
		else if (procfs_read_uid(a->proc_fd, st.pid, &p->uid) < 0)
			p->uid = (uid_t)-1;
	}
	free(pids);
	qsort(r->procs, r->n, sizeof(*r->procs), cmp_proc);
	if (a->cgroup_fd >= 0) {
		r->cgroups = calloc(ATTRIB_CGROUPS_MAX, sizeof(*r->cgroups));
		if (r->cgroups) {
			walk_cgroups(a->cgroup_fd, "/", 0, r);
			qsort(r->cgroups, r->n_cgroups, sizeof(*r->cgroups), cmp_cgroup);
		}
	}
	r->cost_s = (double)(energy_monotonic_ns() - t0) / 1e9;
	return 0;
}

static struct attrib_user *user_get(struct attrib *a, uid_t uid)
{
	for (size_t i = 0; i < a->n_users; i++)
		if (a->users[i].uid == uid)
			return &a->users[i];
	struct attrib_user *nu = realloc(a->users, (a->n_users + 1) * sizeof(*nu));
	if (!nu)
		return NULL;
	a->users = nu;
	a->users[a->n_users] = (struct attrib_user){.uid = uid, .uj = 0};
	return &a->users[a->n_users++];
}

void attrib_split_gpus(struct attrib *a, struct attrib_proc *procs, size_t n, double t_prev,
                       double t)
{
	struct channel_set *set = a->sampler->set;
	for (int c = 0; c < set->n; c++) {
		if (a->method[c] != SPLIT_GPU)
			continue;
		struct channel *ch = &set->ch[c];
		struct process_share shares[256];
		double share[256], out[256];
		int k = ch->family->process_shares(ch, shares, 256);
		if (k < 0)
			k = 0;
		for (int i = 0; i < k; i++)
			share[i] = shares[i].share;
		double e = a->gpu_pending_uj[c];
		a->gpu_pending_uj[c] = 0;
		double rest = split_gpu(e, share, k, out);
		double pa = a->active_uj[c], pu = a->unattr_uj[c];
		a->active_uj[c] += e - rest;
		a->unattr_uj[c] += rest;
		char key[CHANNEL_ID_MAX + 32];
		snprintf(key, sizeof(key), "active:%s", ch->id);
		series_set(a, key, 0, t_prev, pa, t, a->active_uj[c]);
		snprintf(key, sizeof(key), "unattributed:%s", ch->id);
		series_set(a, key, 0, t_prev, pu, t, a->unattr_uj[c]);
		for (int i = 0; i < k; i++) {
			struct attrib_proc *p = proc_find(procs, n, shares[i].pid);
			if (p && a->in_coverage[c])
				p->delta_uj += out[i];
			for (int j = 0; j < a->n_watches && a->in_coverage[c]; j++) {
				struct attrib_watch *w = a->watches[j];
				if (w->members && bsearch(&shares[i].pid, w->members, w->n_members,
				                          sizeof(int), cmp_int)) {
					double prev = w->uj;
					w->uj += out[i];
					char wk[32];
					snprintf(wk, sizeof(wk), "kernel:%d", w->id);
					series_set(a, wk, 0, w->last_t, prev, t, w->uj);
					w->last_t = t;
				}
			}
		}
	}
}

/* Attribute the interval since the last scan to processes, users and cgroups; lock held. */
static void scan_apply(struct attrib *a, struct scan_result *r)
{
	double t = a->last_t;
	bool first = !a->have_scan;
	double active = a->cpu_active_uj - a->scan_cpu_active_uj;
	double busy = (double)(a->sys_busy - a->scan_busy);
	double dt = t - a->scan_t;

	/* Children that vanished since the last scan were reaped by their parent: what they
	 * had been charged is inside the parent's cutime/cstime now and must not count twice. */
	for (size_t i = 0; i < a->n_procs; i++) {
		struct attrib_proc *old = &a->procs[i];
		struct attrib_proc *now = proc_find(r->procs, r->n, old->pid);
		if (now && now->starttime == old->starttime)
			continue;
		struct attrib_proc *parent = proc_find(r->procs, r->n, old->ppid);
		if (parent) {
			parent->reaped_ticks += (double)old->total_ticks;
			parent->vanished_rate += old->delta_ticks;
			parent->n_vanished++;
		}
	}
	double sum = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct attrib_proc *p = &r->procs[i];
		struct attrib_proc *old = proc_find(a->procs, a->n_procs, p->pid);
		if (old && old->starttime == p->starttime) {
			double own = (double)p->own_ticks - (double)old->own_ticks;
			double ch = (double)(p->total_ticks - p->own_ticks) -
			            (double)(old->total_ticks - old->own_ticks) - p->reaped_ticks;
			p->excess_ticks = ch > 0 ? ch : 0;
			p->delta_ticks = (own > 0 ? own : 0) + p->excess_ticks;
			p->tree_uj = old->tree_uj;
		} else if (!first && (double)p->starttime + 1 >= a->scan_boot_ticks) {
			p->delta_ticks = (double)p->total_ticks; /* born since the last scan */
		}
		sum += p->delta_ticks;
	}
	/* Per-process times and /proc/stat are counted separately by the kernel: never give
	 * out more than the active energy. */
	double den = busy > sum ? busy : sum;
	if (!first) {
		for (size_t i = 0; i < r->n; i++) {
			struct attrib_proc *p = &r->procs[i];
			double share = split_scope_share(p->delta_ticks, den);
			p->delta_uj = active * share;
			p->cpu_share = share;
			p->cpu_s = p->delta_ticks / a->hz;
		}
		attrib_split_gpus(a, r->procs, r->n, a->scan_t, t);
		for (size_t i = 0; i < r->n; i++) {
			struct attrib_proc *p = &r->procs[i];
			p->watts = dt > 0 ? p->delta_uj / 1e6 / dt : 0;
			if (p->delta_uj <= 0)
				continue;
			int pid = p->pid;
			for (int depth = 0; pid > 0 && depth < ATTRIB_TREE_DEPTH_MAX; depth++) {
				struct attrib_proc *q = proc_find(r->procs, r->n, pid);
				if (!q)
					break;
				q->tree_delta_uj += p->delta_uj;
				if (q->ppid == pid)
					break;
				pid = q->ppid;
			}
			struct attrib_user *u = user_get(a, p->uid);
			if (u) {
				char key[48];
				snprintf(key, sizeof(key), "user:%u", (unsigned)p->uid);
				series_set(a, key, 0, a->scan_t, u->uj, t, u->uj + p->delta_uj);
				u->uj += p->delta_uj;
			}
		}
		/* A process that exited since the last scan: what its parent reaped beyond what
		 * was charged before is its last stretch of work. Shared among the parent's
		 * vanished children by their last rate, it completes their own figures (the
		 * parent's tree has it already). */
		for (size_t i = 0; i < a->n_procs; i++) {
			struct attrib_proc *old = &a->procs[i];
			struct attrib_proc *now = proc_find(r->procs, r->n, old->pid);
			struct attrib_proc *parent = proc_find(r->procs, r->n, old->ppid);
			if ((now && now->starttime == old->starttime) || !parent ||
			    parent->excess_ticks <= 0)
				continue;
			double w = parent->vanished_rate > 0
			               ? old->delta_ticks / parent->vanished_rate
			               : 1.0 / parent->n_vanished;
			double add = active * split_scope_share(parent->excess_ticks * w, den);
			if (add <= 0)
				continue;
			char key[32];
			snprintf(key, sizeof(key), "pid:%d", old->pid);
			struct series *ps = series_get(&a->series, key, false);
			if (ps && ps->tag == old->starttime)
				series_set(a, key, old->starttime, a->scan_t, old->tree_uj, t,
				           old->tree_uj + add);
		}
		for (size_t i = 0; i < r->n; i++) {
			struct attrib_proc *p = &r->procs[i];
			if (p->tree_delta_uj <= 0)
				continue;
			char key[32];
			snprintf(key, sizeof(key), "pid:%d", p->pid);
			series_set(a, key, p->starttime, a->scan_t, p->tree_uj, t,
			           p->tree_uj + p->tree_delta_uj);
			p->tree_uj += p->tree_delta_uj;
		}
	}
	for (size_t i = 0; i < r->n_cgroups; i++) {
		struct attrib_cgroup *g = &r->cgroups[i];
		struct attrib_cgroup *old =
		    a->cgroups ? bsearch(g, a->cgroups, a->n_cgroups, sizeof(*g), cmp_cgroup)
		               : NULL;
		double du = old ? (double)g->usage_usec - (double)old->usage_usec
		                : (first ? 0 : (double)g->usage_usec);
		g->uj = old ? old->uj : 0;
		if (first || du <= 0)
			continue;
		double add = active * split_scope_share(du / 1e6, busy / a->hz);
		char key[ATTRIB_CGROUP_MAX + 8];
		snprintf(key, sizeof(key), "cgroup:%s", g->path);
		series_set(a, key, 0, a->scan_t, g->uj, t, g->uj + add);
		g->uj += add;
	}
	/* Power of the interval for /processes: active, idle, and how busy the CPUs were. */
	double idle_now = 0;
	for (int c = 0; c < a->sampler->set->n; c++)
		if (a->in_coverage[c] && a->method[c] == SPLIT_CPU_TIME)
			idle_now += a->idle_uj[c];
	double total = (double)(a->sys_total - a->scan_total);
	a->scan_dt = first ? 0 : dt;
	a->scan_active_w = !first && dt > 0 ? active / 1e6 / dt : 0;
	a->scan_idle_w = !first && dt > 0 ? (idle_now - a->scan_idle_uj) / 1e6 / dt : 0;
	a->scan_busy_share = !first && total > 0 ? busy / total : 0;
	a->scan_idle_uj = idle_now;
	a->scan_total = a->sys_total;
	free(a->procs);
	a->procs = r->procs;
	a->n_procs = r->n;
	free(a->cgroups);
	a->cgroups = r->cgroups;
	a->n_cgroups = r->n_cgroups;
	r->procs = NULL;
	r->cgroups = NULL;
	free(a->extra); /* the new table knows everyone the extra list knew */
	a->extra = NULL;
	a->n_extra = 0;
	a->have_scan = true;
	a->scan_t = t;
	a->scan_cpu_active_uj = a->cpu_active_uj;
	a->scan_busy = a->sys_busy;
	a->scan_boot_ticks = r->boot_ticks;
	a->scan_cost_s = r->cost_s;
	/* Forget what is older than the history, and watches that ended long ago. */
	series_prune(&a->series, t - a->cfg.history_s);
	for (int j = 0; j < a->n_watches; j++) {
		struct attrib_watch *w = a->watches[j];
		if (!w->alive && t - w->ended_at > ATTRIB_WATCH_EXPIRE) {
			a->watches[j--] = a->watches[--a->n_watches];
			watch_free(w);
		}
	}
}

/* ---- the thread ----------------------------------------------------------------------------- */

static void *attrib_thread(void *arg)
{
	struct attrib *a = arg;
	struct sampler *s = a->sampler;
	int n_ch = s->set->n;
	double *t = malloc(ATTRIB_SPAN_MAX * sizeof(*t));
	uint64_t *v = malloc((size_t)ATTRIB_SPAN_MAX * (size_t)(n_ch ? n_ch : 1) * sizeof(*v));
	struct watch_obs *obs = calloc(ATTRIB_WATCHES_MAX, sizeof(*obs));
	if (!t || !v || !obs) {
		log_err("attribution: out of memory; attribution is off");
		free(t), free(v), free(obs);
		return NULL;
	}
	uint64_t seen = 0;
	while (!atomic_load(&a->stop)) {
		/* The samples taken since the last wake-up, newest last. */
		sampler_lock(s);
		uint64_t tick = sampler_wait_tick(s, seen);
		int n = 0;
		if (tick) {
			seen = tick;
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
					v[(size_t)n * (size_t)n_ch + (size_t)c] =
					    history_value(h, i, c);
			}
		}
		sampler_unlock(s);
		if (!tick || atomic_load(&a->stop))
			break;
		if (n == 0)
			continue;

		uint64_t busy = 0, total = 0, forks = 0;
		bool sys_ok =
		    a->stat_fd >= 0 && procfs_read_system(a->stat_fd, &busy, &total, &forks) == 0;
		a->forks = sys_ok ? forks : 0;

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
		observe_watches(a, obs, n_obs);

		attrib_lock(a);
		if (sys_ok && a->have_sys && busy >= a->sys_busy && total > a->sys_total) {
			a->ratio_busy = busy - a->sys_busy;
			a->ratio_total = total - a->sys_total;
		}
		if (sys_ok) {
			if (!a->have_sys)
				a->busy_at_split = busy;
			a->have_sys = true;
			a->sys_busy = busy;
			a->sys_total = total;
		}
		handle_samples(a, n, t, v, n_ch);
		split_watches(a, obs, n_obs);
		bool scan_due =
		    !a->have_scan || a->last_t - a->scan_t >= a->cfg.scan_interval_s - 1e-6;
		attrib_unlock(a);
		for (int i = 0; i < n_obs; i++)
			free(obs[i].members);

		if (scan_due) {
			struct scan_result r;
			if (scan_read(a, &r) == 0) {
				attrib_lock(a);
				scan_apply(a, &r);
				attrib_unlock(a);
			}
			free(r.procs);
			free(r.cgroups);
		}
	}
	free(t), free(v), free(obs);
	return NULL;
}

int attrib_start(struct attrib *a, struct sampler *s)
{
	a->sampler = s;
	for (int c = 0; c < s->set->n; c++)
		a->method[c] = split_method_of(&s->set->ch[c], a->cfg.dram_by_cpu);
	for (int k = 0; k < s->coverage.n; k++)
		a->in_coverage[s->coverage.idx[k]] = true;
	atomic_store(&a->stop, false);
	int rc = pthread_create(&a->thread, NULL, attrib_thread, a);
	if (rc != 0)
		return -rc;
	a->running = true;
	return 0;
}

void attrib_stop(struct attrib *a)
{
	if (!a->running)
		return;
	atomic_store(&a->stop, true);
	pthread_join(a->thread, NULL);
	a->running = false;
}

void attrib_free(struct attrib *a)
{
	attrib_stop(a);
	for (int j = 0; j < a->n_watches; j++)
		watch_free(a->watches[j]);
	a->n_watches = 0;
	series_store_free(&a->series);
	free(a->procs);
	free(a->cgroups);
	free(a->users);
	free(a->extra);
	a->procs = NULL;
	a->cgroups = NULL;
	a->users = NULL;
	a->extra = NULL;
	if (a->proc_fd >= 0)
		close(a->proc_fd);
	if (a->stat_fd >= 0)
		close(a->stat_fd);
	if (a->cgroup_fd >= 0)
		close(a->cgroup_fd);
	a->proc_fd = a->stat_fd = a->cgroup_fd = -1;
	pthread_mutex_destroy(&a->lock);
}
