/* Internals shared by attrib.c, attrib_watch.c and attrib_scan.c; not an interface. */
#ifndef ENERGY_ATTRIB_INT_H
#define ENERGY_ATTRIB_INT_H

#include "attrib.h"

#define ATTRIB_TREE_DEPTH_MAX 256
#define ATTRIB_CGROUP_DEPTH   16

/* What the thread found for one watch at a tick (I/O done without the lock). */
struct watch_obs {
	int id; /* the watch's */
	bool is_cgroup;
	bool gone; /* the tree or cgroup no longer exists */
	bool ok;   /* ticks was read this time */
	int pid;   /* the tree's root and its start time, copied from the watch */
	uint64_t starttime;
	char cgroup[ATTRIB_CGROUP_MAX]; /* copied from the watch */
	uint64_t ticks;                 /* the tree's clock ticks, or the cgroup's usage_usec */
	int *members;                   /* the tree's pids (for GPU shares) */
	size_t n_members;
};

/* One full scan of /proc and the cgroup tree, read without the lock. */
struct scan_result {
	struct attrib_proc *procs; /* sorted by pid */
	size_t n;
	struct attrib_cgroup *cgroups; /* sorted by path */
	size_t n_cgroups;
	size_t cap_cgroups; /* entries allocated */
	double boot_ticks;  /* clock ticks since boot when the scan began */
	double cost_s;      /* CPU time the scan took */
	/* /proc/stat read right after the processes, so that the busy time a scan divides by
	 * covers the same interval as their times, however late the thread ran (sys_ok: read). In
	 * batches it is also the batch's one reading. */
	bool sys_ok;
	uint64_t sys_busy, sys_total;
	uint64_t sys_ns; /* the middle of that read, on the monotonic clock */
};

struct attrib_proc *attrib_proc_find(struct attrib_proc *p, size_t n, int pid);
int attrib_ppid_find(const struct attrib_ppid *p, size_t n, int pid);
int attrib_cmp_proc(const void *x, const void *y);
int attrib_cmp_ppid(const void *x, const void *y);
int attrib_cmp_int(const void *x, const void *y);
int attrib_cmp_cgroup(const void *x, const void *y);
/* Record that the counter of key went from v_prev at t_prev to v at t (tag: owner identity). */
void attrib_series_set(struct attrib *a, const char *key, uint64_t tag, double t_prev,
                       double v_prev, double t, double v);
/* Is pid in the tree of root, following parents through lookup()? */
bool attrib_in_tree(int pid, int root, int (*lookup)(void *, int), void *ctx);
/* "/a/b" -> "a/b" for openat; "/" -> "". */
const char *attrib_cgroup_rel(const char *p);
void attrib_watch_free(struct attrib_watch *w);
/* Read the trees and cgroups of the watches in obs (no lock held). */
void attrib_observe_watches(struct attrib *a, struct watch_obs *obs, int n_obs);
/* /proc/stat (a->stat_fd): 0, or -errno; *mono_ns is the middle of the read. */
int attrib_read_system(struct attrib *a, uint64_t *busy, uint64_t *total, uint64_t *forks,
                       uint64_t *mono_ns);
/* Read every process and cgroup (no lock held), then apply the interval (lock held). */
int attrib_scan_read(struct attrib *a, struct scan_result *r);
void attrib_scan_apply(struct attrib *a, struct scan_result *r);
/* With the lock held: give each watch its share of the active energy from the last split to
 * until (share_of(ctx, watch, busy CPU seconds, c), or NULL for its CPU time share); hwpc.c
 * uses it. by_channel: each channel's pending active energy is split by its own shares (c the
 * channel), the sum over channels being the pending total; else all of it at once (c -1).
 * until: the newest sample (a->last_t), or an earlier instant (hwpc-model: the time its
 * counters were read), up to which the active series are interpolated; the energy after it
 * waits for the next split. */
typedef double (*attrib_share_fn)(void *ctx, const struct attrib_watch *w, double busy_s, int c);
void attrib_split_watch_energy(struct attrib *a, attrib_share_fn share_of, void *ctx,
                               bool by_channel, double until);

#endif
