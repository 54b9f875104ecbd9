/*
 * Watches: process trees (and cgroups) followed at every sample. Without
 * /proc/PID/task/TID/children (not every kernel has it), a tree is found through the parents of
 * all processes: those of the last full scan, plus those born since (listed only when the fork
 * counter moved).
 */
#define _GNU_SOURCE
#include "attrib.h"
#include "attrib_int.h"
#include "energy.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- process trees ------------------------------------------------------------------------ */

/* Is pid in the tree of root, following parents through lookup()? */
bool attrib_in_tree(int pid, int root, int (*lookup)(void *, int), void *ctx)
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

static int attrib_full_lookup(void *ctx, int pid)
{
	struct full_map *f = ctx;
	return attrib_ppid_find(f->m, f->n, pid);
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
	qsort(m, k, sizeof(*m), attrib_cmp_ppid);
	struct full_map f = {m, k};
	uint64_t sum = procfs_total_ticks(&root);
	for (size_t i = 0; i < k; i++) {
		if (m[i].pid == pid || !attrib_in_tree(m[i].pid, pid, attrib_full_lookup, &f))
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
const char *attrib_cgroup_rel(const char *p)
{
	return p[0] == '/' ? p + 1 : p;
}

/* The watches uid holds, alive or ended, and the oldest of its ended ones (-1 if none). */
static int count_owned(const struct attrib *a, uid_t uid, int *oldest_ended)
{
	int n = 0;
	*oldest_ended = -1;
	for (int i = 0; i < a->n_watches; i++) {
		const struct attrib_watch *w = a->watches[i];
		if (w->owner != uid)
			continue;
		n++;
		if (!w->alive &&
		    (*oldest_ended < 0 || w->ended_at < a->watches[*oldest_ended]->ended_at))
			*oldest_ended = i;
	}
	return n;
}

/*
 * Room for one more watch of uid, with the lock held. Each user other than root holds at most
 * watches_per_user, and all of them together leave ATTRIB_ROOT_RESERVE slots to root, so that
 * nobody can starve root or another user. A user at the quota gives up its oldest ended watch
 * first. -EDQUOT over the quota, -ENOSPC when the table is full.
 */
static int make_room(struct attrib *a, uid_t uid)
{
	int oldest_ended, owned = count_owned(a, uid, &oldest_ended);
	int others = 0;
	for (int i = 0; i < a->n_watches; i++)
		others += a->watches[i]->owner != 0;
	bool over = uid != 0 && (owned >= a->cfg.watches_per_user ||
	                         others >= ATTRIB_WATCHES_MAX - ATTRIB_ROOT_RESERVE);
	if ((over || a->n_watches >= ATTRIB_WATCHES_MAX) && oldest_ended >= 0) {
		struct attrib_watch *old = a->watches[oldest_ended];
		a->watches[oldest_ended] = a->watches[--a->n_watches];
		attrib_watch_free(old);
		return 0;
	}
	if (over)
		return owned >= a->cfg.watches_per_user ? -EDQUOT : -ENOSPC;
	return a->n_watches >= ATTRIB_WATCHES_MAX ? -ENOSPC : 0;
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
		const char *rel = *attrib_cgroup_rel(cgroup) ? attrib_cgroup_rel(cgroup) : ".";
		if (fstatat(a->cgroup_fd, rel, &st, 0) < 0 || !S_ISDIR(st.st_mode)) {
			free(w);
			return -ENOENT;
		}
		if (peer_uid != 0 && st.st_uid != peer_uid) {
			free(w);
			return -EPERM;
		}
		int rc = procfs_read_cgroup_usage(a->cgroup_fd, attrib_cgroup_rel(cgroup),
		                                  &w->last_ticks);
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
	int rc = make_room(a, peer_uid);
	if (rc < 0) {
		attrib_unlock(a);
		free(w);
		return rc;
	}
	w->id = a->next_watch_id++;
	w->created_at = a->last_t > 0 ? a->last_t : energy_wall_time();
	w->last_t = w->created_at;
	a->watches[a->n_watches++] = w;
	*id = w->id;
	attrib_unlock(a);
	if (a->sampler)
		sampler_kick(a->sampler); /* the thread follows every sample from now on */
	return 0;
}

void attrib_watch_free(struct attrib_watch *w)
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
		attrib_watch_free(w);
		attrib_unlock(a);
		return 0;
	}
	attrib_unlock(a);
	return -ENOENT;
}

struct attrib_watch *attrib_watch_find(struct attrib *a, const char *key, bool caller_known,
                                       uid_t caller)
{
	char *end;
	long id = strtol(key, &end, 10);
	struct attrib_watch *own = NULL, *any = NULL;
	for (int i = 0; i < a->n_watches; i++) {
		struct attrib_watch *w = a->watches[i];
		if (*key && !*end && w->id == id)
			return w;
		if (strcmp(w->label, key) != 0)
			continue;
		if (caller_known && w->owner == caller && (!own || w->id > own->id))
			own = w;
		if (!any || w->id > any->id)
			any = w;
	}
	return own ? own : any;
}

static int attrib_tick_lookup(void *ctx, int pid)
{
	struct attrib *a = ctx;
	struct attrib_proc *p = attrib_proc_find(a->procs, a->n_procs, pid);
	if (p)
		return p->ppid;
	return attrib_ppid_find(a->work.extra, a->work.n_extra, pid);
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
		if (attrib_proc_find(a->procs, a->n_procs, pids[i]) ||
		    attrib_ppid_find(a->work.extra, a->work.n_extra, pids[i]) >= 0)
			continue;
		struct procfs_stat st;
		if (procfs_read_stat(a->proc_fd, pids[i], &st) < 0)
			continue;
		struct attrib_ppid *ne =
		    realloc(a->work.extra, (a->work.n_extra + 1) * sizeof(*ne));
		if (!ne)
			break;
		a->work.extra = ne;
		a->work.extra[a->work.n_extra].pid = st.pid;
		a->work.extra[a->work.n_extra].ppid = st.ppid;
		a->work.n_extra++;
		qsort(a->work.extra, a->work.n_extra, sizeof(*a->work.extra), attrib_cmp_ppid);
	}
	*n_out = n;
	return pids;
}

void attrib_observe_watches(struct attrib *a, struct watch_obs *obs, int n_obs)
{
	bool any_pid = false;
	for (int i = 0; i < n_obs; i++)
		any_pid |= !obs[i].is_cgroup && !obs[i].gone;
	size_t n_pids = 0;
	int *pids = NULL;
	if (any_pid && (a->work.forks == 0 || a->work.forks != a->work.forks_listed)) {
		pids = discover(a, &n_pids);
		a->work.forks_listed = a->work.forks;
	} else if (any_pid) {
		/* No process was created since the last listing: the pids known are all there
		 * can be (some may have exited: their stat will not read). Listing /proc costs
		 * more than everything else a tick does. */
		pids = malloc((a->n_procs + a->work.n_extra + 1) * sizeof(int));
		for (size_t i = 0; pids && i < a->n_procs; i++)
			pids[n_pids++] = a->procs[i].pid;
		for (size_t i = 0; pids && i < a->work.n_extra; i++)
			pids[n_pids++] = a->work.extra[i].pid;
	}
	for (int i = 0; i < n_obs; i++) {
		struct watch_obs *o = &obs[i];
		if (o->gone)
			continue;
		if (o->is_cgroup) {
			o->ok = procfs_read_cgroup_usage(a->cgroup_fd, attrib_cgroup_rel(o->cgroup),
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
			if (pids[k] == o->pid ||
			    !attrib_in_tree(pids[k], o->pid, attrib_tick_lookup, a))
				continue;
			struct procfs_stat st;
			if (procfs_read_stat(a->proc_fd, pids[k], &st) < 0)
				continue;
			sum += procfs_total_ticks(&st);
			if (o->members)
				o->members[o->n_members++] = pids[k];
		}
		if (o->members)
			qsort(o->members, o->n_members, sizeof(int), attrib_cmp_int);
		o->ticks = sum;
		o->ok = true;
	}
	free(pids);
}
