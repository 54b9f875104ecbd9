/*
 * Attribution (DESIGN.md §3, docs/attribution.md): which share of the measured energy a process
 * tree, a registered watch (a Jupyter kernel), a cgroup or a user caused. An estimate, always
 * labelled with its method.
 *
 * Its own thread follows the sampler in batches: once per batch period (--attrib-batch, default
 * 0.5 s, between the sample interval and the scan interval) it reads /proc/stat once and splits
 * the energy of every sample taken since into active and idle parts (split.h) by the busy share
 * of CPU time since the last batch; the sampler's tick does not wake it. While a watch is alive
 * it follows every tick instead, and updates the watched pid trees and cgroups at that rate (the
 * sample resolution of kernel: scopes). Full process and cgroup scans, which cost more, happen
 * at most every scan interval (default 1 s), in the batch that reaches it. Results are
 * cumulative series (series.h) queried by time.
 *
 * Thread safety: attrib_lock() guards the series, the process table of the last scan and the
 * watches; the functions below take it themselves unless they say otherwise.
 */
#ifndef ENERGY_ATTRIB_H
#define ENERGY_ATTRIB_H

#include "hwpc.h"
#include "procfs.h"
#include "sampler.h"
#include "series.h"
#include "split.h"
#include "threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

struct hwpc;

#define ATTRIB_WATCHES_MAX              256
#define ATTRIB_LABEL_MAX                128
#define ATTRIB_CGROUP_MAX               512 /* path length */
#define ATTRIB_CGROUPS_MAX              4096
#define ATTRIB_SPAN_MAX                 1024 /* samples handled per batch (older ones: lumped) */
#define ATTRIB_BATCH_DEFAULT_S          0.5  /* the batch period when the config gives none */
#define ATTRIB_METHOD                   "cpu-time-share"
#define ATTRIB_METHOD_GPU               "gpu-process-utilisation"
#define ATTRIB_WATCH_EXPIRE             300.0 /* ended watches are forgotten after this (s) */
#define ATTRIB_ROOT_RESERVE             32    /* watch slots that only root may take */
#define ATTRIB_DEFAULT_WATCHES_PER_USER 32

struct attrib_config {
	const char *proc_root;
	const char *cgroup_root; /* "" when cgroup v2 is not available */
	double scan_interval_s;
	double batch_s;         /* the thread's period (0: default; attrib_start bounds it) */
	bool dram_by_cpu;       /* --attribute-dram cpu-time: DRAM split like the CPU */
	double history_s;       /* series are kept this long (s) */
	int watches_per_user;   /* quota of each user but root (docs/security.md) */
	const char *sysfs_root; /* CPUs and the packages' power limits (hardware counters) */
	struct hwpc_config hwpc;
};

/* One process as of the last full scan. */
struct attrib_proc {
	int pid, ppid;
	uid_t uid;            /* the owner (real uid); (uid_t)-1 when unreadable */
	uint64_t starttime;   /* clock ticks after boot: with pid, identifies the process */
	uint64_t own_ticks;   /* utime + stime */
	uint64_t total_ticks; /* own + reaped children */
	double tree_uj;       /* energy of the process and its descendants since first seen */
	double watts;         /* own attributed power over the last scan interval */
	double cpu_share;     /* share of the busy CPU time over the last scan interval */
	double cpu_s;         /* CPU seconds over the last scan interval */
	char comm[PROCFS_COMM_MAX];
	/* Scratch for one scan: ticks and energy of the interval, own and of the tree, and the
	 * ticks of children that vanished since (now in total_ticks). */
	double delta_ticks, delta_uj, tree_delta_uj, reaped_ticks;
	double excess_ticks; /* reaped children's time not charged to them before */
	/* Ticks of children seen vanished at the last scan that its cutime did not show yet (it
	 * was read before the reap, they after): owed back once, at this scan. */
	double reap_debt;
	double vanished_rate; /* sum of the last deltas of its children that vanished */
	int n_vanished;       /* children that vanished since the last scan */
};

struct attrib_cgroup {
	char path[ATTRIB_CGROUP_MAX]; /* under the cgroup root, starting with / */
	uint64_t usage_usec;          /* cpu.stat's usage_usec at the scan */
	double uj;                    /* energy attributed since energyd saw the cgroup */
};

struct attrib_user {
	uid_t uid;
	double uj; /* energy attributed to the user since energyd started */
};

struct attrib_watch {
	int id;
	char label[ATTRIB_LABEL_MAX];
	bool is_cgroup;                 /* a cgroup watch, else a pid tree */
	int pid;                        /* pid watches: the root of the tree */
	uint64_t starttime;             /* of the root process: a reused pid is not the same tree */
	char cgroup[ATTRIB_CGROUP_MAX]; /* cgroup watches: path under the cgroup root */
	uid_t owner;                    /* who registered it */
	double created_at,
	    ended_at;         /* the sampler's clock; ended_at once the tree or cgroup is gone */
	bool alive;           /* the tree or cgroup still exists */
	uint64_t last_ticks;  /* tree ticks (pid) or usage_usec (cgroup) at the last update */
	double cpu_s;         /* CPU seconds since registration */
	double pending_cpu_s; /* CPU seconds seen but not yet turned into energy */
	double uj;            /* attributed energy since registration */
	double last_t;        /* the time uj holds the energy up to */
	int *members;         /* pids of the tree at the last tick (for GPU shares) */
	size_t n_members;
};

/* A process found between full scans, with its parent: enough to follow a watched tree. */
struct attrib_ppid {
	int pid, ppid;
};

/*
 * The attribution thread's own working state: what the samples and scans are compared with next
 * time. Only the thread reads or writes it (attrib.c, attrib_scan.c, attrib_watch.c), so it
 * needs no lock; nothing outside attribution/ sees it, not even through a function.
 */
struct attrib_work {
	/* Sample level. */
	bool have_uj[CHANNELS_MAX];     /* last_uj holds a valid counter */
	uint64_t last_uj[CHANNELS_MAX]; /* each channel's counter at chan_t */
	double chan_t[CHANNELS_MAX];    /* the time of last_uj (a channel may lag behind last_t) */
	bool have_sys;                  /* sys_busy and sys_total hold a reading */
	uint64_t sys_busy, sys_total;   /* /proc/stat's busy and total jiffies, newest */
	uint64_t ratio_busy, ratio_total; /* the last busy/total ratio with total > 0 */
	double cpu_active_uj;     /* cumulative CPU-split active energy over the host coverage */
	double pending_active_uj; /* active energy not yet given to the watched trees */
	double pending_chan_uj[CHANNELS_MAX]; /* the same, per channel */
	uint64_t busy_at_split;               /* sys_busy when the watched trees were last split */

	/* What the last full scan is compared with. */
	double scan_cpu_active_uj; /* cpu_active_uj at the last scan */
	double scan_boot_ticks;    /* clock ticks since boot at the last scan (new processes) */
	uint64_t scan_busy;        /* sys_busy at the last scan */
	uint64_t scan_total;       /* sys_total at the last scan */
	double scan_idle_uj;       /* the idle energy over the coverage at the last scan */
	double left_busy;          /* busy ticks of the last scan's interval no process showed */
	double left_uj;            /* the active energy of those ticks, given to no process */
	struct procfs_procs procs; /* the processes the scans read, kept from scan to scan */
	bool forks_ok;             /* scan_forks holds /proc/stat's forks... */
	uint64_t scan_forks;       /* ...read before procs was last listed (real procfs only) */
	struct attrib_ppid *extra; /* pids found between scans (watched trees), sorted by pid */
	size_t n_extra;
	uint64_t forks;        /* /proc/stat's "processes" (forks since boot) at this tick */
	uint64_t forks_listed; /* forks when the proc root was last listed for the watches */
};

/* A reading of /proc/stat: busy and total jiffies, at mono_ns on the monotonic clock (the middle
 * of the read). */
typedef void (*attrib_system_hook)(void *ctx, uint64_t mono_ns, uint64_t busy, uint64_t total);

/*
 * The attribution. Three parts:
 * - set by attrib_open and attrib_start, then fixed (but a GPU channel whose source cannot give
 *   shares turns to SPLIT_NONE, under the lock);
 * - work: the thread's own (above);
 * - what readers see: written by the thread (watches also by attrib_watch_add and _remove), all
 *   under the lock. Code outside attribution/ (the API, /metrics, InfluxDB, the record) never
 *   reads these fields: it calls attrib_off_reason, attrib_status_locked, attrib_users_locked,
 *   attrib_procs_locked, attrib_cgroups_locked, attrib_watches_locked and the other functions
 *   below (the _locked ones with attrib_lock held).
 */
struct attrib {
	/* Fixed. */
	struct sampler *sampler; /* whose samples are split (set by attrib_start) */
	struct attrib_config cfg;
	int proc_fd, stat_fd, cgroup_fd; /* the proc root, its stat file, the cgroup root (-1) */
	char error[320];                 /* why attribution is off (proc_fd < 0) */
	double hz;                       /* clock ticks per second */
	enum split_method method[CHANNELS_MAX]; /* how each channel is split (split.h) */
	bool in_coverage[CHANNELS_MAX];         /* the channel is part of the host total */
	struct threads_worker worker;           /* the attribution thread */
	attrib_system_hook system_hook;         /* see attrib_set_system_hook, or NULL */
	void *system_hook_ctx;
	atomic_bool stop;     /* asks the thread to end */
	pthread_mutex_t lock; /* guards what readers see */
	double batch_s;       /* the batch period in use (attrib_start) */
	uint64_t batch_ticks; /* the same in sampler ticks */

	struct attrib_work work; /* the thread's own */

	/* What readers see: energy. */
	struct series_store series; /* cumulative energy per scope key ("pid:N", "user:U", ...) */
	/* Each channel's energy since the first sample: active, idle, not attributable, and GPU
	 * energy waiting for the next process shares (the thread's alone, kept with the ledger it
	 * completes); together, all of the channel's. */
	double active_uj[CHANNELS_MAX], idle_uj[CHANNELS_MAX], unattr_uj[CHANNELS_MAX];
	double gpu_pending_uj[CHANNELS_MAX];
	double first_t; /* time of the first sample split; 0 before */
	double last_t;  /* time of the newest sample handled; 0 before the first */
	double split_t; /* the newest sample split for the watches: they are known up to it */

	/* What readers see: the last full scan. */
	bool have_scan;                    /* a scan was applied */
	double scan_t;                     /* the time of the sample the last scan was applied at */
	double scan_dt;                    /* seconds between the last two scans */
	double scan_cost_s;                /* CPU time the last scan took */
	double scan_active_w, scan_idle_w; /* the host's active and idle power between scans */
	double scan_busy_share;            /* busy / total CPU time between scans */
	struct attrib_proc *procs;         /* sorted by pid */
	size_t n_procs;
	struct attrib_cgroup *cgroups; /* sorted by path */
	size_t n_cgroups;
	struct attrib_user *users; /* in the order first seen */
	size_t n_users;

	/* What readers see: the watches, in no order. */
	struct attrib_watch *watches[ATTRIB_WATCHES_MAX];
	int n_watches;
	int next_watch_id; /* the id attrib_watch_add gives next */

	struct hwpc *hwpc; /* hardware counters and their model (hwpc.h); NULL when off */
};

/* What readers see of attribution: copied under its lock by attrib_status_locked(). */
struct attrib_status {
	bool have_scan;     /* a full scan was applied: the scan figures below are known */
	double scan_t;      /* when the last scan's interval ended (the sampler's clock) */
	double scan_dt;     /* that interval's length in seconds */
	double scan_cost_s; /* CPU time the scan itself took */
	double active_w;    /* the host's power in that interval while CPUs were busy */
	double idle_w;      /* and while they were idle */
	double busy_share;  /* busy / total CPU time in that interval */
	size_t n_procs;     /* processes the scan found */
	size_t n_users;     /* users with attributed energy */
	double first_t;     /* the first sample split; 0 before */
	double split_t;     /* the newest sample split: watches are known up to it */
	double active_uj;   /* cumulative over the host's coverage since energyd started */
	double idle_uj;
	double unattr_uj; /* energy no process can be given (GPUs without shares) */
};

/* NULL while attribution works; else why it is off (no readable proc root). Set by attrib_open
 * and unchanged after: no lock needed. */
const char *attrib_off_reason(const struct attrib *a);
/* With the lock held. */
void attrib_status_locked(const struct attrib *a, struct attrib_status *out);
/* The last scan's tables (read-only, valid while the lock is held): their length. */
size_t attrib_procs_locked(const struct attrib *a, const struct attrib_proc **procs);
size_t attrib_cgroups_locked(const struct attrib *a, const struct attrib_cgroup **cgroups);
/* The watches (read-only, valid while the lock is held): their number. */
int attrib_watches_locked(const struct attrib *a, struct attrib_watch *const **watches);
/* A scope's series (key "pid:N", "cgroup:/P", ...) holds energy; with the lock held. */
bool attrib_has_series_locked(struct attrib *a, const char *key);
/* The batch period in use (while no watch is alive). Fixed by attrib_start. */
double attrib_batch_s(const struct attrib *a);
/* How channel c is split and whether it is part of the host total: fixed by attrib_start. */
enum split_method attrib_channel_method(const struct attrib *a, int c);
bool attrib_channel_in_coverage(const struct attrib *a, int c);
/* The hardware counters and their model (hwpc.h; read with the lock held), or NULL. */
const struct hwpc *attrib_hwpc(const struct attrib *a);
/* The configuration given to attrib_open; whether a cgroup root could be opened. */
const struct attrib_config *attrib_config_of(const struct attrib *a);
bool attrib_has_cgroups(const struct attrib *a);
/* The users' energy (the first max seen) into out, once a scan was applied; with the lock
 * held. Returns how many. */
size_t attrib_users_locked(const struct attrib *a, struct attrib_user *out, size_t max);

/* Open the proc root, its stat file and the cgroup root (before privileges are dropped).
 * Without a proc root attribution is off (error says why) and the daemon runs on. */
int attrib_open(struct attrib *a, const struct attrib_config *cfg, char *err, size_t errlen);
/* Before attrib_start: hand every /proc/stat reading the thread takes (at least one a batch; one
 * a tick while a watch is alive) to hook, called on that thread with no lock held, so that
 * another part needs no reading of its own. False, and no hook, when attribution is off or
 * cannot read /proc/stat. */
bool attrib_set_system_hook(struct attrib *a, attrib_system_hook hook, void *ctx);
/* Start following the sampler (after sampler_init). */
int attrib_start(struct attrib *a, struct sampler *s);
void attrib_stop(struct attrib *a);
void attrib_free(struct attrib *a);
void attrib_lock(struct attrib *a);
void attrib_unlock(struct attrib *a);

/*
 * Register a watch on a pid tree (cgroup NULL) or a cgroup. The caller is peer_uid; only root
 * or the owner of the pid (its real uid) or of the cgroup directory may register it: -EPERM.
 * -ESRCH no such process, -ENOENT no such cgroup, -EDQUOT the caller holds its quota of
 * watches, -ENOSPC too many watches, -EINVAL bad path.
 * On success *id is the new watch's id.
 */
int attrib_watch_add(struct attrib *a, int pid, const char *cgroup, const char *label,
                     uid_t peer_uid, int *id);
/* -ENOENT no such watch, -EPERM not root nor the watch's owner. */
int attrib_watch_remove(struct attrib *a, int id, uid_t peer_uid);
/* With the lock held: the watch with this id, or with this label: the caller's newest one, else
 * anyone's newest (a label is not a claim: other users may use the same one). NULL if none. */
struct attrib_watch *attrib_watch_find(struct attrib *a, const char *id_or_label, bool caller_known,
                                       uid_t caller);

/* One step of the model for tests and the in-process fallback: the process tree's clock ticks
 * of pid (own and reaped children of every descendant), by a full scan of the proc root. */
int attrib_tree_ticks(int proc_fd, int pid, uint64_t *ticks, uint64_t *starttime);

/*
 * With the lock held: split the energy the GPU channels gathered since the last scan by their
 * family's process_shares(): each listed process in procs (sorted by pid) gets E x share added
 * to delta_uj, so do the watches whose tree holds it; the rest is the channel's unattributed
 * energy. Called by the full scan; exposed for tests.
 */
void attrib_split_gpus(struct attrib *a, struct attrib_proc *procs, size_t n, double t_prev,
                       double t);

/* With the lock held: cumulative value of a series key at t (0 when the key has no series). */
double attrib_series_at(struct attrib *a, const char *key, double t);

/*
 * For the long-term record's per-user rows (ctx: the struct attrib; they take the lock).
 * attrib_users_span: the per-user series are exact over [*oldest, *covered_to] (the last scan);
 * false while attribution is off or has not scanned twice. attrib_users_energy_at: uids[u] and
 * cum_uj[u * n_t + k], every user's cumulative energy at t[k] (uJ), for at most max users;
 * returns how many users there are.
 */
bool attrib_users_span(void *ctx, double *oldest, double *covered_to);
size_t attrib_users_energy_at(void *ctx, const double *t, size_t n_t, uint32_t *uids,
                              double *cum_uj, size_t max);

/* The account name of uid (getpwuid_r), or the number when it has none. */
void attrib_user_name(uid_t uid, char *buf, size_t len);

#endif
