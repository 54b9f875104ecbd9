/*
 * Hardware performance counters for attribution (docs/attribution.md, "hwpc-model"): unhalted
 * cycles, instructions and last-level-cache misses (the kernel's generic hardware events, on
 * Intel and AMD alike), counted
 *
 * - for the whole machine: one counter per event and online CPU (pid -1), opened before the
 *   privilege drop by hwpc_open; without them (no PMU, as in most virtual machines, or refused)
 *   the hardware-counter model is off with the reason and everything stays cpu-time-share;
 * - per watch: one counter per event on the watch's root process with inherit (its children
 *   born after registration count too), opened by the attribution thread when it first sees
 *   the watch, after the drop (seccomp allows perf_event_open, docs/security.md); on a machine
 *   of several sockets, one per event and online CPU instead (pid, cpu), so that its rates
 *   divide by socket, within HWPC_PID_CPU_FDS_MAX descriptors for all pid watches (a watch
 *   beyond is split by CPU time, and counted once others end);
 * - per cgroup watch (hwpc_cgroup.c): one counter per event and online CPU on the cgroup v2
 *   directory (PERF_FLAG_PID_CGROUP), for at most hwpc_cgroups_max() cgroups, opened by the
 *   attribution thread like a pid watch's; the kernel takes them for CPU-wide events, which an
 *   unprivileged energyd may open only with kernel.perf_event_paranoid <= 0. The cgroups named
 *   by --hwpc-cgroup are opened by hwpc_open before the drop instead, kept in a pool and lent
 *   to the watches of that path (returned when the watch ends: they cannot be opened again).
 *
 * - the packages' effective frequency: APERF and MPERF of every online CPU and the TSC of the
 *   first, from the perf `msr` PMU (its type and event encodings from sysfs), opened with the
 *   machine's counters before the privilege drop; without them the model has one layer for
 *   every frequency, and GET /api/v1/model says why (frequency_error).
 *
 * Open descriptors: at most 3 x HWPC_CPUS_MAX + HWPC_PID_CPU_FDS_MAX + 2 x HWPC_CPUS_MAX + 1
 * + HWPC_CGROUP_FDS_MAX (HWPC_FDS_MAX: 3 per online CPU; 3 per counted pid watch on one socket
 * (at most 3 x HWPC_WATCHES_MAX), 3 per online CPU and counted pid watch on several, within
 * HWPC_PID_CPU_FDS_MAX; 2 per online CPU and 1 for the frequency; 3 per online CPU and counted
 * cgroup within a budget of HWPC_CGROUP_FDS_MAX). Counters are read once per model window (at least
 * 1 s), never per sample; multiplexing is undone with time_enabled / time_running of each window.
 *
 * The state is owned by the attribution thread. The counters (descriptors, readings, rates) are
 * its own and read without any lock, so that no request waits for a counter read; what readers
 * see (on, error, n_cpus, bound, usable, reason, the model and the views) is written under the
 * attribution lock, and readers take it.
 */
#ifndef ENERGY_HWPC_H
#define ENERGY_HWPC_H

#include "hwpc_layers.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define HWPC_CPUS_MAX        128
#define HWPC_WATCHES_MAX     64
#define HWPC_METHOD          "hwpc-model"
#define HWPC_CGROUPS_MAX     64 /* the highest --hwpc-cgroups */
#define HWPC_CGROUPS_DEFAULT 16
#define HWPC_CGROUP_FDS_MAX  384 /* the cgroups' counters: 16 cgroups x 8 CPUs x 3 events */
#define HWPC_CGROUP_PATH_MAX 512
#define HWPC_PREOPEN_MAX     16 /* --hwpc-cgroup paths */
#define HWPC_SOCKETS_MAX     16 /* packages whose CPUs' rates are kept apart */
/* Pid watches' counters on several sockets: one per event and CPU (768: 4 watches on 64 CPUs,
 * 32 on 8); on one socket, one per event (3 x HWPC_WATCHES_MAX, which is less). */
#define HWPC_PID_CPU_FDS_MAX 768
#define HWPC_FDS_MAX                                                                               \
	(3 * HWPC_CPUS_MAX + HWPC_PID_CPU_FDS_MAX + 2 * HWPC_CPUS_MAX + 1 + HWPC_CGROUP_FDS_MAX)

struct attrib;
struct attrib_config;

/* The model's settings: --hwpc, --hwpc-error-window, --hwpc-tdp-watts. */
struct hwpc_config {
	bool on;          /* attribution by hardware counters where available */
	int error_window; /* the model's history and error window, in windows of 1 s */
	double tdp_w;     /* bound of its intercept; 0: the packages' powercap limits */
	int cgroups;      /* cgroup watches counted at most (--hwpc-cgroups) */
	/* Cgroups whose counters are opened before the privilege drop (--hwpc-cgroup). */
	char preopen[HWPC_PREOPEN_MAX][HWPC_CGROUP_PATH_MAX];
	int n_preopen;
};

/* One event's counter as last read: the raw count, time enabled and time running (ns). */
struct hwpc_reading {
	uint64_t value, enabled, running;
};

struct hwpc_watch {
	int id;  /* the watch's */
	int pid; /* its root process; 0 for a cgroup */
	int fd[HWPC_EVENTS];
	struct hwpc_reading last[HWPC_EVENTS];
	/* A cgroup watch: its path under the cgroup root, and one counter per online CPU and
	 * event (cfd[i * HWPC_EVENTS + e], allocated when opened), with their last readings; a
	 * pid watch on several sockets has its per-CPU counters there too (fd unused). */
	bool is_cgroup;
	uid_t owner;     /* who registered it */
	bool over_bound; /* not counted: more cgroups than hwpc_cgroups_max() (tried again) */
	bool lent;       /* its counters are the pool's (a watch's), or lent out (the pool's) */
	char cgroup[HWPC_CGROUP_PATH_MAX];
	int *cfd;
	struct hwpc_reading *clast;
	bool have;                /* last holds a reading */
	bool open;                /* the counters are open */
	double rate[HWPC_EVENTS]; /* over the last window, when rate_ok */
	bool rate_ok;
	/* The same per socket (h->sock), from the per-CPU counters (cfd), when by_socket. */
	double srate[HWPC_SOCKETS_MAX][HWPC_EVENTS];
	bool by_socket;
	bool fd_wait;     /* a pid watch beyond HWPC_PID_CPU_FDS_MAX: opened once there is room */
	bool by_model;    /* its last window was split by the model */
	char reason[256]; /* why not, when not */
};

/* What readers see of a watch: its method in the last window, and why not the model. */
struct hwpc_watch_view {
	int id;
	bool by_model;
	char reason[256];
};

struct hwpc {
	bool on;         /* the machine's counters are open */
	char error[256]; /* why they are not */
	int n_cpus;
	int cpu[HWPC_CPUS_MAX];
	/* The sockets (physical_package_id of the CPUs' sysfs topology), in increasing package
	 * id: socket_pkg[s] is socket s's package (-1: no topology, one socket of every CPU);
	 * sock[i] is CPU i's socket, -1 for CPUs of packages beyond HWPC_SOCKETS_MAX (counted in
	 * the machine's rates only). scount: the window's counts per socket (the thread's own);
	 * srate: the last window's rates per socket (written with the lock held, as rate). */
	int n_sockets;
	int socket_pkg[HWPC_SOCKETS_MAX];
	int socket_cpus[HWPC_SOCKETS_MAX];
	int sock[HWPC_CPUS_MAX];
	double scount[HWPC_SOCKETS_MAX][HWPC_EVENTS];
	double srate[HWPC_SOCKETS_MAX][HWPC_EVENTS];
	/* With several sockets of a known topology: one set of layers per socket, learned from
	 * the socket's rates on its own package's power, and the pending window's rates per
	 * socket; NULL otherwise. Each package's active energy is split by its socket's layer
	 * spred[s] (-1: not usable, sreason says why, and that package's part goes by CPU time);
	 * channels of no socket by the machine's (h->layers). pid_cpu_fds: the pid watches'
	 * per-CPU descriptors (HWPC_PID_CPU_FDS_MAX). */
	struct hwpc_layers *slayers;
	double pending_srate[HWPC_SOCKETS_MAX][HWPC_EVENTS];
	int spred[HWPC_SOCKETS_MAX];
	char sreason[HWPC_SOCKETS_MAX][256];
	int pid_cpu_fds;
	int gfd[HWPC_CPUS_MAX][HWPC_EVENTS];
	struct hwpc_reading glast[HWPC_CPUS_MAX][HWPC_EVENTS];
	bool ghave;
	/* The effective frequency: APERF, MPERF per CPU (perf msr PMU), the TSC of the first. */
	bool freq_on;
	char freq_error[256]; /* why not */
	int mfd[HWPC_CPUS_MAX][2];
	struct hwpc_reading mlast[HWPC_CPUS_MAX][2];
	int tsc_fd;
	struct hwpc_reading tsc_last;
	bool mhave;
	double mhz;     /* the last window's effective frequency (MHz); NAN unknown */
	int pred;       /* the layer that split the last window; -1: CPU time */
	char note[256]; /* when another layer than the window's own split it, which and why */
	double bound_w; /* the intercept's bound: power limit or --hwpc-tdp-watts; 0 unknown */
	char bound_source[96];
	double win_t;  /* start of the current window (the sampler's clock); 0 before */
	double read_t; /* when the machine's counters were last read (wall clock); 0 before */
	/* The last window's rates, learned from once the samples around its two reads exist:
	 * the packages' energy is interpolated at the very times the counters were read. */
	bool pending;
	double pending_t0;
	struct hwpc_sample pending_sample;
	double pending_mhz;
	bool deferring; /* the model splits the watches at the end of the current window */
	/* The window just read is split up to split_until (when its counters were read, wall
	 * clock) once a sample at or after it is handled (hwpc.c, split_window). */
	bool split_pending;
	double split_until;
	bool usable;               /* as of the last window */
	char reason[256];          /* why not usable */
	double rate[HWPC_EVENTS];  /* the machine's rates over the last window */
	struct hwpc_layers layers; /* the model: one layer per frequency step, or one */
	struct hwpc_watch watches[HWPC_WATCHES_MAX];
	int n_watches;
	int fds;         /* descriptors open */
	int cgroups_max; /* cgroup watches counted at most: hwpc_cgroups_max() */
	int n_cgroups;   /* cgroups with counters open now, the pool's included */
	/* Counters opened before the drop (--hwpc-cgroup), lent to the watches of their path;
	 * id: the watch they are lent to. */
	struct hwpc_watch pool[HWPC_PREOPEN_MAX];
	int n_pool, n_pool_open;
	/* Copied from the above at the end of every window, under the lock, for readers. */
	struct hwpc_watch_view view[HWPC_WATCHES_MAX];
	int n_view, view_fds, view_cgroups;
};

/* Before the privilege drop: the machine's counters and the model. Never fails the daemon:
 * NULL only without memory; otherwise h->on says whether counters work (h->error why not). */
struct hwpc *hwpc_open(const struct attrib_config *cfg, int cgroup_fd);
void hwpc_free(struct hwpc *h);
/* The model splits the watches at the end of the window (the sample rhythm must not). */
bool hwpc_defers(const struct hwpc *h);
/* Called by the attribution thread after every batch of samples (no lock held): at the end of
 * a window, reads the counters, learns, and splits the watches' energy when deferring. */
void hwpc_window(struct attrib *a);
/* With the attribution lock held: the method of a watch's latest figures and, for
 * cpu-time-share, why not hwpc-model (reason is "" for hwpc-model). */
/* The effective frequency (hwpc_freq.c): opened before the privilege drop after the machine's
 * counters (h->freq_on, else h->freq_error); read once per window: the MHz since the last
 * read, NAN when unknown (not open, a read failed, the first read, or the CPUs were idle). */
void hwpc_freq_open(struct hwpc *h, const char *sysfs_root);
void hwpc_freq_close(struct hwpc *h);
double hwpc_freq_read(struct hwpc *h);
/* The socket of each of n CPUs (their packages, pkg[i]; pkg NULL: no topology, one socket):
 * fills h->n_sockets, socket_pkg, socket_cpus and sock. Pure (hwpc.c). */
void hwpc_sockets_map(struct hwpc *h, const int *pkg, int n);
/* A counter's reading, and its count over a window scaled for multiplexing (hwpc.c). */
extern const char *const hwpc_event_name[HWPC_EVENTS];
int hwpc_counter_open(int e, int pid, int cpu, unsigned long flags);
int hwpc_counter_read(int fd, struct hwpc_reading *r);
double hwpc_counter_delta(const struct hwpc_reading *a, const struct hwpc_reading *b);
/* Cgroup watches' counters (hwpc_cgroup.c). How many cgroups may be counted: --hwpc-cgroups,
 * within HWPC_CGROUP_FDS_MAX descriptors (3 per online CPU each). */
int hwpc_cgroups_max(int configured, int n_cpus);
/* Of those, how many one user other than root may have counted: a quarter, at least 1, so that
 * no user takes every counter. */
int hwpc_cgroups_per_user(int cgroups_max);
/* A per-CPU cgroup counter's count over a window: 0 when the cgroup did not run on that CPU
 * (its time_enabled, the cgroup's time there, did not move), else as hwpc_counter_delta. */
double hwpc_cgroup_delta(const struct hwpc_reading *a, const struct hwpc_reading *b);
/* Open w's counters on every online CPU, on the cgroup directory w->cgroup under cgroup_fd;
 * on failure none stays open and w->reason says why. */
void hwpc_cgroup_open(struct hwpc *h, struct hwpc_watch *w, int cgroup_fd);
/* w's per-CPU counter slots (cfd, all -1, and clast); false without memory (the caller
 * closes, which frees what was allocated). */
bool hwpc_cpu_counters_alloc(const struct hwpc *h, struct hwpc_watch *w);
void hwpc_cgroup_close(struct hwpc *h, struct hwpc_watch *w);
/* Before the drop: the counters of the --hwpc-cgroup paths, into h->pool (within the bound).
 * For a cgroup watch: borrow the pool's open counters of its path (true), and give them back
 * when it ends (true when they were the pool's; else the caller closes them). */
void hwpc_pool_open(struct hwpc *h, const struct hwpc_config *cfg, int cgroup_fd);
bool hwpc_pool_lend(struct hwpc *h, struct hwpc_watch *w);
bool hwpc_pool_return(struct hwpc *h, struct hwpc_watch *w);
/* Read w's per-CPU counters (a cgroup's, or a pid watch's on several sockets): w->rate gets
 * the window's counts summed over the CPUs, w->srate per socket; false when one could not be
 * read or the window has no base yet. */
bool hwpc_cgroup_read(struct hwpc *h, struct hwpc_watch *w);
const char *hwpc_watch_method(const struct hwpc *h, int watch_id, const char **reason);

#endif
