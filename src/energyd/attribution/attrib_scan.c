/*
 * Full scans: every process and cgroup, at most every --scan-interval. A process is charged its
 * own CPU time plus what its reaped children used beyond what they were charged before.
 */
#define _GNU_SOURCE
#include "attrib.h"
#include "attrib_int.h"
#include "energy.h"
#include "log.h"
#include "mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the scan rhythm ------------------------------------------------------------------------ */

/* Room for one more cgroup in r: the array doubles as the walk needs it, up to
 * ATTRIB_CGROUPS_MAX (not that many entries allocated and cleared at every scan). */
static bool cgroup_room(struct scan_result *r)
{
	if (r->n_cgroups < r->cap_cgroups)
		return true;
	size_t cap = r->cap_cgroups ? 2 * r->cap_cgroups : 64;
	if (cap > ATTRIB_CGROUPS_MAX)
		cap = ATTRIB_CGROUPS_MAX;
	if (cap <= r->n_cgroups)
		return false;
	struct attrib_cgroup *g = realloc(r->cgroups, cap * sizeof(*g));
	if (!g)
		return false;
	r->cgroups = g;
	r->cap_cgroups = cap;
	return true;
}

static void walk_cgroups(int dirfd, const char *path, int depth, struct scan_result *r)
{
	if (r->n_cgroups >= ATTRIB_CGROUPS_MAX)
		return;
	uint64_t usage;
	const char *rel = *attrib_cgroup_rel(path) ? attrib_cgroup_rel(path) : "";
	if (procfs_read_cgroup_usage(dirfd, rel, &usage) == 0 && cgroup_room(r)) {
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

/* A process given as last read (it has not run since) has the parent it had then, unless that
 * parent ended and it was given to another. The parent is read before it (a lower pid: any
 * other order reads the process again) and must be there as the same process as in the last
 * scan, whose results a->procs holds: then it has been there all along. */
static bool parent_unchanged(struct attrib *a, struct scan_result *r, int ppid)
{
	if (ppid == 0)
		return true;
	const struct attrib_proc *now = attrib_proc_find(r->procs, r->n, ppid);
	const struct attrib_proc *then = attrib_proc_find(a->procs, a->n_procs, ppid);
	return now && then && now->starttime == then->starttime;
}

int attrib_read_system(struct attrib *a, uint64_t *busy, uint64_t *total, uint64_t *forks,
                       uint64_t *mono_ns)
{
	if (a->stat_fd < 0)
		return -EBADF;
	uint64_t before = energy_monotonic_ns();
	int rc = procfs_read_system(a->stat_fd, busy, total, forks);
	*mono_ns = before + (energy_monotonic_ns() - before) / 2;
	return rc;
}

/* The processes (every entry, or the fresh ones only, added to r), then /proc/stat right after
 * them; returns the seconds it took. */
static double read_processes(struct attrib *a, bool fresh_only, struct scan_result *r,
                             uint64_t *forks)
{
	uint64_t t0 = energy_monotonic_ns();
	struct procfs_procs *s = &a->work.procs;
	if (!fresh_only)
		r->n = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (fresh_only && !s->ent[i].fresh)
			continue;
		struct procfs_stat st;
		int rc = procfs_procs_read(s, i, &st);
		if (rc == 1 && !parent_unchanged(a, r, st.ppid))
			rc = procfs_procs_reread(s, i, &st);
		if (rc < 0)
			continue;
		struct attrib_proc *p = &r->procs[r->n++];
		memset(p, 0, sizeof(*p));
		p->pid = st.pid;
		p->ppid = st.ppid;
		p->starttime = st.starttime;
		p->own_ticks = st.utime + st.stime;
		p->total_ticks = procfs_total_ticks(&st);
		memcpy(p->comm, st.comm, sizeof(p->comm));
		/* The owner only for processes not seen before: status is the larger file. */
		struct attrib_proc *old = attrib_proc_find(a->procs, a->n_procs, st.pid);
		if (old && old->starttime == st.starttime)
			p->uid = old->uid;
		else if (procfs_read_uid(a->proc_fd, st.pid, &p->uid) < 0)
			p->uid = (uid_t)-1;
	}
	r->sys_ok = attrib_read_system(a, &r->sys_busy, &r->sys_total, forks, &r->sys_ns) == 0;
	return (double)(energy_monotonic_ns() - t0) / 1e9;
}

/* r->procs with room for what it holds and every entry (the fresh ones are added to what the
 * entries of the last listing gave). */
static int procs_room(struct attrib *a, struct scan_result *r, size_t *room)
{
	size_t n = r->n + a->work.procs.n + 1;
	if (n <= *room)
		return 0;
	struct attrib_proc *p = realloc(r->procs, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	r->procs = p;
	*room = n;
	return 0;
}

/* A read that took this much longer than the last scan was stretched (preempted between the
 * processes and /proc/stat): it is taken again, once. */
#define SCAN_STRETCH_FACTOR 3.0
#define SCAN_STRETCH_MIN_S  0.005

/* The processes of the last listing first. On a real procfs the root is listed again only when
 * /proc/stat's fork count moved since before the last listing (a process that becomes visible
 * counts its fork at the same moment, under the kernel's tasklist lock): then the new pids are
 * read and /proc/stat again after them. A fake tree is listed at every scan. */
static int read_all(struct attrib *a, struct scan_result *r)
{
	struct procfs_procs *s = &a->work.procs;
	if (!s->ready)
		procfs_procs_init(s, a->proc_fd, 0);
	bool listed = !s->keep;
	size_t room = 0;
	int rc = listed ? procfs_procs_list(s) : 0;
	if (rc < 0 || (rc = procs_room(a, r, &room)) < 0)
		return rc;
	uint64_t forks = 0;
	double took = read_processes(a, false, r, &forks);
	if (!listed && !(r->sys_ok && a->work.forks_ok && forks == a->work.scan_forks)) {
		bool ok = r->sys_ok;
		uint64_t before = forks;
		if ((rc = procfs_procs_list(s)) < 0 || (rc = procs_room(a, r, &room)) < 0)
			return rc;
		took += read_processes(a, true, r, &forks);
		a->work.forks_ok = ok;
		a->work.scan_forks = before;
	}
	double usual = a->scan_cost_s * SCAN_STRETCH_FACTOR;
	if (a->have_scan && took > (usual > SCAN_STRETCH_MIN_S ? usual : SCAN_STRETCH_MIN_S))
		read_processes(a, false, r, &forks);
	procfs_procs_sweep(s);
	return 0;
}

int attrib_scan_read(struct attrib *a, struct scan_result *r)
{
	uint64_t t0 = energy_monotonic_ns();
	memset(r, 0, sizeof(*r));
	struct timespec bt;
	clock_gettime(CLOCK_BOOTTIME, &bt);
	r->boot_ticks = ((double)bt.tv_sec + (double)bt.tv_nsec / 1e9) * a->hz;
	int rc = read_all(a, r);
	if (rc < 0) {
		MEM_FREE_NULL(r->procs);
		r->n = 0;
		return rc;
	}
	/* In pid order already but when new pids were read after the known ones. */
	for (size_t i = 1; i < r->n; i++)
		if (r->procs[i - 1].pid > r->procs[i].pid) {
			qsort(r->procs, r->n, sizeof(*r->procs), attrib_cmp_proc);
			break;
		}
	if (a->cgroup_fd >= 0) {
		walk_cgroups(a->cgroup_fd, "/", 0, r);
		if (r->cgroups)
			qsort(r->cgroups, r->n_cgroups, sizeof(*r->cgroups), attrib_cmp_cgroup);
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
		/* The library or the GPU cannot tell processes apart: its energy is unattributed
		 * from now on (the API gives shares_error as the reason). Other failures lose
		 * this interval's split only. */
		if (k == -EOPNOTSUPP)
			a->method[c] = SPLIT_NONE;
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
		attrib_series_set(a, key, 0, t_prev, pa, t, a->active_uj[c]);
		snprintf(key, sizeof(key), "unattributed:%s", ch->id);
		attrib_series_set(a, key, 0, t_prev, pu, t, a->unattr_uj[c]);
		for (int i = 0; i < k; i++) {
			struct attrib_proc *p = attrib_proc_find(procs, n, shares[i].pid);
			if (p && a->in_coverage[c])
				p->delta_uj += out[i];
			for (int j = 0; j < a->n_watches && a->in_coverage[c]; j++) {
				struct attrib_watch *w = a->watches[j];
				if (w->members && bsearch(&shares[i].pid, w->members, w->n_members,
				                          sizeof(int), attrib_cmp_int)) {
					double prev = w->uj;
					w->uj += out[i];
					char wk[32];
					snprintf(wk, sizeof(wk), "kernel:%d", w->id);
					attrib_series_set(a, wk, 0, w->last_t, prev, t, w->uj);
					w->last_t = t;
				}
			}
		}
	}
}

/* The nearest ancestor of a vanished process that is still there, through ancestors that
 * vanished too (as of the last scan's parent links), or NULL. */
static struct attrib_proc *surviving_ancestor(struct attrib *a, struct scan_result *r,
                                              const struct attrib_proc *old)
{
	int ppid = old->ppid;
	for (int depth = 0; ppid > 0 && depth < ATTRIB_TREE_DEPTH_MAX; depth++) {
		struct attrib_proc *p = attrib_proc_find(r->procs, r->n, ppid);
		if (p)
			return p;
		const struct attrib_proc *gone = attrib_proc_find(a->procs, a->n_procs, ppid);
		if (!gone || gone->ppid == ppid)
			return NULL;
		ppid = gone->ppid;
	}
	return NULL;
}

/* Attribute the interval since the last scan to processes, users and cgroups; lock held. */
/* What one scan's apply step shares between its phases. */
struct apply {
	double t;      /* the scan's time (the sampler's clock) */
	double dt;     /* seconds since the previous scan */
	double active; /* active CPU-side energy since the previous scan, uJ */
	double busy;   /* busy CPU ticks since then (/proc/stat) */
	double pool;   /* the energy shared among processes: active, plus what the last left */
	double den;    /* what a tick count is divided by: at least the ticks counted per process */
	double ticks;  /* the ticks counted per process this interval */
	bool first;    /* no previous scan: nothing to charge yet */
};

/* Children that vanished since the last scan were reaped by their parent: what they had been
 * charged is inside the parent's cutime/cstime now and must not count twice. When the parent
 * vanished too, both end up in the nearest ancestor still alive. */
static void note_reaped(struct attrib *a, struct scan_result *r)
{
	for (size_t i = 0; i < a->n_procs; i++) {
		struct attrib_proc *old = &a->procs[i];
		struct attrib_proc *now = attrib_proc_find(r->procs, r->n, old->pid);
		if (now && now->starttime == old->starttime)
			continue;
		struct attrib_proc *parent = surviving_ancestor(a, r, old);
		if (parent) {
			parent->reaped_ticks += (double)old->total_ticks;
			parent->vanished_rate += old->delta_ticks;
			parent->n_vanished++;
		}
	}
}

/* Each process's CPU ticks since the last scan; returns their sum. */
static double count_ticks(struct attrib *a, struct scan_result *r, bool first)
{
	double sum = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct attrib_proc *p = &r->procs[i];
		struct attrib_proc *old = attrib_proc_find(a->procs, a->n_procs, p->pid);
		bool same = old && old->starttime == p->starttime;
		/* Idle since the last scan (own and children's times unchanged), no child reaped,
		 * nothing owed: nothing to count (most processes at most scans). */
		if (same && old->own_ticks == p->own_ticks && old->total_ticks == p->total_ticks &&
		    p->reaped_ticks == 0 && old->reap_debt == 0) {
			p->tree_uj = old->tree_uj;
			continue;
		}
		if (same) {
			double own = (double)p->own_ticks - (double)old->own_ticks;
			double ch = (double)(p->total_ticks - p->own_ticks) -
			            (double)(old->total_ticks - old->own_ticks) - p->reaped_ticks -
			            old->reap_debt;
			p->excess_ticks = ch > 0 ? ch : 0;
			/* A reap between the reads of the parent and of its child: the child is
			 * gone but the parent's cutime does not hold it yet. It will at the next
			 * scan, where that much is not new. Carried once (a child re-parented and
			 * reaped elsewhere never shows in this cutime). */
			p->reap_debt = ch < 0 && p->reaped_ticks > 0
			                   ? (-ch < p->reaped_ticks ? -ch : p->reaped_ticks)
			                   : 0;
			p->delta_ticks = (own > 0 ? own : 0) + p->excess_ticks;
			p->tree_uj = old->tree_uj;
		} else if (!first && (double)p->starttime + 1 >= a->work.scan_boot_ticks) {
			p->delta_ticks = (double)p->total_ticks; /* born since the last scan */
		}
		sum += p->delta_ticks;
	}
	return sum;
}

/* Each process's energy of the interval, added to its ancestors' trees and to its user. */
static void charge_processes(struct attrib *a, struct scan_result *r, const struct apply *x)
{
	for (size_t i = 0; i < r->n; i++) {
		struct attrib_proc *p = &r->procs[i];
		double share = split_scope_share(p->delta_ticks, x->den);
		p->delta_uj = x->pool * share;
		p->cpu_share = share;
		p->cpu_s = p->delta_ticks / a->hz;
	}
	attrib_split_gpus(a, r->procs, r->n, a->scan_t, x->t);
	for (size_t i = 0; i < r->n; i++) {
		struct attrib_proc *p = &r->procs[i];
		/* The interval's own power: without what the last interval left (that is in the
		 * energy, not in this interval's watts), with its GPU part (delta_uj beyond the
		 * CPU part charged above). */
		double own = x->active * split_scope_share(p->delta_ticks,
		                                           x->busy > x->ticks ? x->busy : x->ticks);
		double gpu = p->delta_uj - x->pool * p->cpu_share;
		p->watts = x->dt > 0 ? (own + (gpu > 0 ? gpu : 0)) / 1e6 / x->dt : 0;
		if (p->delta_uj <= 0)
			continue;
		int pid = p->pid;
		for (int depth = 0; pid > 0 && depth < ATTRIB_TREE_DEPTH_MAX; depth++) {
			struct attrib_proc *q = attrib_proc_find(r->procs, r->n, pid);
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
			attrib_series_set(a, key, 0, a->scan_t, u->uj, x->t, u->uj + p->delta_uj);
			u->uj += p->delta_uj;
		}
	}
}

/* A process that exited since the last scan: what its parent reaped beyond what was charged
 * before is its last stretch of work. Shared among the parent's vanished children by their last
 * rate, it completes their own figures (the parent's tree has it already). */
static void charge_vanished(struct attrib *a, struct scan_result *r, const struct apply *x)
{
	for (size_t i = 0; i < a->n_procs; i++) {
		struct attrib_proc *old = &a->procs[i];
		struct attrib_proc *now = attrib_proc_find(r->procs, r->n, old->pid);
		struct attrib_proc *parent = surviving_ancestor(a, r, old);
		if ((now && now->starttime == old->starttime) || !parent ||
		    parent->excess_ticks <= 0)
			continue;
		double w = parent->vanished_rate > 0 ? old->delta_ticks / parent->vanished_rate
		                                     : 1.0 / parent->n_vanished;
		double add = x->pool * split_scope_share(parent->excess_ticks * w, x->den);
		if (add <= 0)
			continue;
		char key[32];
		snprintf(key, sizeof(key), "pid:%d", old->pid);
		struct series *ps = series_get(&a->series, key, false);
		if (ps && ps->tag == old->starttime)
			attrib_series_set(a, key, old->starttime, a->scan_t, old->tree_uj, x->t,
			                  old->tree_uj + add);
	}
}

/* The trees' energy of the interval into their series. */
static void charge_trees(struct attrib *a, struct scan_result *r, const struct apply *x)
{
	for (size_t i = 0; i < r->n; i++) {
		struct attrib_proc *p = &r->procs[i];
		if (p->tree_delta_uj <= 0)
			continue;
		char key[32];
		snprintf(key, sizeof(key), "pid:%d", p->pid);
		attrib_series_set(a, key, p->starttime, a->scan_t, p->tree_uj, x->t,
		                  p->tree_uj + p->tree_delta_uj);
		p->tree_uj += p->tree_delta_uj;
	}
}

/* Each cgroup's share of the active energy, by its CPU usage (cpu.stat). */
static void charge_cgroups(struct attrib *a, struct scan_result *r, const struct apply *x)
{
	for (size_t i = 0; i < r->n_cgroups; i++) {
		struct attrib_cgroup *g = &r->cgroups[i];
		struct attrib_cgroup *old =
		    a->cgroups ? bsearch(g, a->cgroups, a->n_cgroups, sizeof(*g), attrib_cmp_cgroup)
		               : NULL;
		double du = old ? (double)g->usage_usec - (double)old->usage_usec
		                : (x->first ? 0 : (double)g->usage_usec);
		g->uj = old ? old->uj : 0;
		if (x->first || du <= 0)
			continue;
		double add = x->active * split_scope_share(du / 1e6, x->busy / a->hz);
		char key[ATTRIB_CGROUP_MAX + 8];
		snprintf(key, sizeof(key), "cgroup:%s", g->path);
		attrib_series_set(a, key, 0, a->scan_t, g->uj, x->t, g->uj + add);
		g->uj += add;
	}
}

/* Power of the interval for /processes: active, idle, and how busy the CPUs were. */
static void note_interval_power(struct attrib *a, const struct scan_result *r,
                                const struct apply *x)
{
	double idle_now = 0;
	for (int c = 0; c < a->sampler->set->n; c++)
		if (a->in_coverage[c] && a->method[c] == SPLIT_CPU_TIME)
			idle_now += a->idle_uj[c];
	double total =
	    r->sys_total > a->work.scan_total ? (double)(r->sys_total - a->work.scan_total) : 0;
	a->scan_dt = x->first ? 0 : x->dt;
	a->scan_active_w = !x->first && x->dt > 0 ? x->active / 1e6 / x->dt : 0;
	a->scan_idle_w =
	    !x->first && x->dt > 0 ? (idle_now - a->work.scan_idle_uj) / 1e6 / x->dt : 0;
	a->scan_busy_share = !x->first && total > 0 ? x->busy / total : 0;
	a->work.scan_idle_uj = idle_now;
	a->work.scan_total = r->sys_total;
}

/* The scan becomes the state the next one is compared with. */
static void adopt_scan(struct attrib *a, struct scan_result *r, const struct apply *x)
{
	free(a->procs);
	a->procs = r->procs;
	a->n_procs = r->n;
	free(a->cgroups);
	a->cgroups = r->cgroups;
	a->n_cgroups = r->n_cgroups;
	r->procs = NULL;
	r->cgroups = NULL;
	free(a->work.extra); /* the new table knows everyone the extra list knew */
	a->work.extra = NULL;
	a->work.n_extra = 0;
	a->have_scan = true;
	a->scan_t = x->t;
	a->work.scan_cpu_active_uj = a->work.cpu_active_uj;
	a->work.scan_busy = r->sys_busy;
	a->work.scan_boot_ticks = r->boot_ticks;
	a->scan_cost_s = r->cost_s;
}

static void forget_old(struct attrib *a, const struct apply *x)
{
	/* Forget what is older than the history, and watches that ended long ago. */
	series_prune(&a->series, x->t - a->cfg.history_s);
	for (int j = 0; j < a->n_watches; j++) {
		struct attrib_watch *w = a->watches[j];
		if (!w->alive && x->t - w->ended_at > ATTRIB_WATCH_EXPIRE) {
			a->watches[j--] = a->watches[--a->n_watches];
			attrib_watch_free(w);
		}
	}
}

/*
 * What the processes' ticks are divided by, and the energy they share. The kernel counts
 * per-process times and /proc/stat separately, so the processes are never given more than the
 * active energy. They are read first and /proc/stat right after them; a preemption in between
 * (a loaded machine), or a child reaped between the reads of its parent and of itself, leaves
 * one interval's processes short of its busy time and the next one's over it by the same ticks.
 * Divided by max(busy, ticks) each time, that energy would be lost. So what the last interval
 * gave to no process (busy ticks and their energy) makes up, once, for what this interval's
 * processes ran beyond its busy time; what this one leaves is carried to the next.
 */
static void share_leftover(struct attrib *a, struct apply *x, double sum)
{
	x->ticks = sum;
	double over = sum - x->busy, use = 0;
	if (!x->first && over > 0 && a->work.left_busy > 0)
		use = over < a->work.left_busy ? over : a->work.left_busy;
	x->pool = x->active + (use > 0 ? a->work.left_uj * use / a->work.left_busy : 0);
	x->den = x->busy + use > sum ? x->busy + use : sum;
	a->work.left_busy = x->first ? 0 : x->den - sum;
	a->work.left_uj = x->den > 0 ? x->pool * a->work.left_busy / x->den : 0;
}

void attrib_scan_apply(struct attrib *a, struct scan_result *r)
{
	if (!r->sys_ok) { /* the tick's reading, a little older than the processes' */
		r->sys_busy = a->work.sys_busy;
		r->sys_total = a->work.sys_total;
	}
	struct apply x = {.t = a->last_t,
	                  .first = !a->have_scan,
	                  .active = a->work.cpu_active_uj - a->work.scan_cpu_active_uj,
	                  .busy = r->sys_busy > a->work.scan_busy
	                              ? (double)(r->sys_busy - a->work.scan_busy)
	                              : 0};
	x.dt = x.t - a->scan_t;
	note_reaped(a, r);
	share_leftover(a, &x, count_ticks(a, r, x.first));
	if (!x.first) {
		charge_processes(a, r, &x);
		charge_vanished(a, r, &x);
		charge_trees(a, r, &x);
	}
	charge_cgroups(a, r, &x);
	note_interval_power(a, r, &x);
	adopt_scan(a, r, &x);
	forget_old(a, &x);
}
