/*
 * The sensor interface: every family of energy sensors (powercap RAPL, the CPU model, and later
 * perf, MSR, the wall meter, NVML, hwmon, battery) fills one struct source_family. The sampler
 * knows nothing about sysfs, serial ports or vendor libraries: it calls read() on each channel and
 * turns what comes back into a cumulative microjoule counter.
 *
 * Lifecycle: probe() looks for the hardware and says what it found (or why not) in a
 * family_report; open() creates channels in a channel_set, opening every file or device the
 * channel will need (so that reads keep working after energyd drops root); read() is called once
 * per tick from the sampler thread; close() releases the channel's resources; describe() writes a
 * human-readable description of a channel for `sources`.
 */
#ifndef ENERGY_SOURCE_H
#define ENERGY_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHANNEL_ID_MAX       64
#define CHANNEL_LABEL_MAX    128
#define CHANNEL_ERROR_MAX    256
#define CHANNEL_INCLUDES_MAX 16
#define CHANNELS_MAX         64
#define FAMILY_DETAIL_MAX    512

/* What part of the machine a channel measures; decides the host total (DESIGN.md §2). */
enum channel_kind {
	CHANNEL_PACKAGE, /* a CPU package (socket); includes its core and uncore domains */
	CHANNEL_CORE,    /* PP0: the cores of one package */
	CHANNEL_UNCORE,  /* PP1: integrated GPU / uncore of one package */
	CHANNEL_DRAM,    /* memory attached to one package; separate from the package */
	CHANNEL_PSYS,    /* the whole platform (SoC, memory, more); includes packages and dram */
	CHANNEL_GPU,     /* a discrete GPU */
	CHANNEL_WALL,    /* an external wall meter */
	CHANNEL_BATTERY, /* battery discharge: the whole machine while on battery */
	CHANNEL_DEVICE,  /* another device sensor (hwmon) */
	CHANNEL_MODEL,   /* an estimate from a model, never a measurement */
	/* The calibrated model of the rest of the machine beside the packages, dram and GPUs
	 * (docs/model.md), never a measurement and never in the host total. */
	CHANNEL_REST,
};

/* How a source reports a reading. */
enum reading_type {
	/* A hardware energy counter in microjoules that wraps to 0 after max_uj (inclusive). */
	READING_ENERGY_UJ,
	/* Instantaneous power in microwatts; the sampler integrates it over monotonic time. */
	READING_POWER_UW,
};

enum channel_status {
	CHANNEL_OK,
	CHANNEL_DEGRADED, /* reads fail; retried with backoff; the counter holds */
};

struct source_family;

struct channel {
	char id[CHANNEL_ID_MAX];
	char label[CHANNEL_LABEL_MAX];
	enum channel_kind kind;
	int package;     /* socket number for package/core/uncore/dram, else -1 */
	bool measured;   /* false only for models */
	bool host_meter; /* declared by configuration to feed the whole machine */
	char includes[CHANNEL_INCLUDES_MAX][CHANNEL_ID_MAX]; /* ids this channel's energy covers */
	int n_includes;

	enum reading_type reading; /* what read() returns */
	uint64_t max_uj; /* READING_ENERGY_UJ: the counter's largest value before it wraps to 0 */

	const struct source_family *family;
	void *priv; /* owned by the family; freed by close() */

	/* read() explains a failure here; the sampler copies it to error under its lock. */
	char read_error[CHANNEL_ERROR_MAX];
	/* process_shares() explains a failure here (attribution thread, under its lock). */
	char shares_error[CHANNEL_ERROR_MAX];

	/* Sampler state, owned by the sampler thread (see sampler.c). */
	enum channel_status status;
	char error[CHANNEL_ERROR_MAX]; /* why the channel is degraded; "" when ok */
	uint64_t energy_uj;            /* cumulative energy since the sampler started */
	bool have_last;                /* last_raw / last_power_uw / last_mono_ns are valid */
	uint64_t last_raw;             /* last raw counter value */
	uint64_t last_power_uw;        /* READING_POWER_UW: the last reading, for the trapezoid */
	uint64_t last_mono_ns;         /* when the last reading was taken (monotonic) */
	uint64_t frac_nuj;    /* sub-microjoule remainder of power integration, in nanojoules */
	unsigned failures;    /* consecutive failed reads */
	uint64_t retry_at_ns; /* degraded channels are not read before this monotonic time */
};

struct channel_set {
	struct channel ch[CHANNELS_MAX];
	int n;
};

/* Everything a family needs to find its hardware: the roots tests point at fake trees. */
struct source_config {
	const char *sysfs_root;         /* default "/sys" */
	const char *proc_root;          /* default "/proc" */
	const char *dev_root;           /* default "/dev" */
	double model_idle_watts;        /* the CPU model's power when idle (0: default) */
	double model_max_watts;         /* the CPU model's power at full load (0: default) */
	const char *const *mcp_devices; /* serial devices given with --mcp; auto-detected if none */
	int n_mcp;
	const char *nvml_lib;   /* NULL: "libnvidia-ml.so.1" from the library path */
	const char *msr_vendor; /* "intel", "amd" or NULL: from <proc>/cpuinfo */
	const char *host_meter; /* channel id declared to feed the whole machine, or NULL */
	/* perf: how long the power PMU's counters may all stand still after opening before it is
	 * taken for a stand-in that counts nothing (some virtual machines); 0: not checked. */
	double perf_probe_s;
};
#define SOURCE_PERF_PROBE_DEFAULT_S 0.05

enum family_status {
	FAMILY_FOUND,   /* channels opened */
	FAMILY_ABSENT,  /* no such hardware or interface here */
	FAMILY_DENIED,  /* present but not readable by us */
	FAMILY_ERROR,   /* present but broken */
	FAMILY_SKIPPED, /* not used: a preferred family covers the same domains, or disabled */
};

struct family_report {
	const char *name;
	enum family_status status;
	char detail[FAMILY_DETAIL_MAX]; /* what was found, or why not and what to do */
};

/* A process's share of a channel's activity over an interval, for attribution. */
struct process_share {
	int pid;
	double share; /* 0 to 1 of the channel's energy in the interval */
};

struct source_family {
	const char *name;
	/* Look for the hardware; fill report; return the number of channels open() would create,
	 * 0 when there are none, or a negative errno. */
	int (*probe)(const struct source_config *cfg, struct family_report *report);
	/* Create and open the family's channels in set (skipping ids already there: an earlier
	 * family was preferred for them). Returns the number added or a negative errno. */
	int (*open)(const struct source_config *cfg, struct channel_set *set,
	            struct family_report *report);
	/* Read one value; 0 on success, a negative errno with ch->read_error filled on failure.
	 * Called from the sampler thread without its lock: touch nothing but priv and read_error.
	 */
	int (*read)(struct channel *ch, uint64_t *value);
	void (*close)(struct channel *ch);
	/* A sentence for `sources`: where the value comes from. */
	void (*describe)(const struct channel *ch, char *buf, size_t len);
	/* Optional, NULL when not supported: each process's share of this channel's activity
	 * since the previous call (NVML: SM utilisation per process), for attribution. Fills at
	 * most max entries; returns their number or a negative errno. Called about once a second
	 * from the attribution thread, possibly while read() runs in the sampler thread: guard
	 * what it shares with read() in priv. On failure it says why in ch->shares_error and
	 * returns -EOPNOTSUPP when this channel can never report shares (the library or the
	 * device lacks the function: attribution then reports all its energy as unattributed
	 * from now on), or another negative errno for this interval only. */
	int (*process_shares)(struct channel *ch, struct process_share *out, int max);
	/* With process_shares: what it reads, for the attribution method ("NVML
	 * nvmlDeviceGetProcessUtilization: SM utilisation per process"). */
	const char *shares_source;
};

/* All families in order of preference (registry.c). */
extern const struct source_family *const source_families[];

/* Probe and open every family; reports[] receives one entry per family (at most max_reports).
 * Returns the number of reports written. */
int sources_open_all(const struct source_config *cfg, struct channel_set *set,
                     struct family_report *reports, int max_reports);
void sources_close_all(struct channel_set *set);

/* Helpers for families. */
struct channel *channel_set_add(struct channel_set *set, const char *id);
bool channel_set_has(const struct channel_set *set, const char *id);
void channel_add_include(struct channel *ch, const char *id);
const char *channel_kind_name(enum channel_kind kind);
const char *channel_status_name(enum channel_status status);
const char *family_status_name(enum family_status status);
/* Read a small text file (sysfs attribute) whole, without its trailing newline: 0 or -errno. */
int source_read_text(const char *path, char *buf, size_t len);
/* Offer each entry of directory dir to take(name, slot, ctx), which returns true when it filled
 * slot (the next of table's max entries of size bytes) from it; then sort the entries taken by
 * cmp. Returns how many were taken, or -errno when dir cannot be opened. */
int source_scan_dir(const char *dir, void *table, size_t size, int max,
                    bool (*take)(const char *name, void *slot, void *ctx),
                    int (*cmp)(const void *, const void *), void *ctx);
/* Append printf-style text to r->detail, cut at its size. */
void family_report_add(struct family_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Add channel id to set owning fd: its priv is a zeroed struct of size bytes that starts with
 * the descriptor (int fd), set to fd, and close() may be source_close_fd_priv. NULL, with fd
 * closed, when the set is full, already has id, or memory runs out. */
struct channel *channel_set_add_fd(struct channel_set *set, const char *id, int fd, size_t size);
/* close() for the families whose priv is one malloc'ed struct that starts with the descriptor
 * read every tick (int fd): closes it and frees priv. */
void source_close_fd_priv(struct channel *ch);

/* CPU topology (topology.c): online CPUs sorted by number, with package and core ids. */
struct source_cpu {
	int cpu, package, core;
};
#define SOURCE_CPUS_MAX 1024
int topology_cpus(const char *sysfs_root, struct source_cpu *cpus, int max);
/* True when cpus[i] is the lowest-numbered CPU of its package. */
bool topology_first_of_package(const struct source_cpu *cpus, int i);

/* The CPU model's /proc/stat parser: busy and total jiffies of the "cpu" line, number of CPUs. */
int model_cpu_parse_stat(const char *text, uint64_t *busy, uint64_t *total, int *ncpu);
/*
 * Put a calibration (docs/model.md) on the open model:cpu channel ch before the sampler starts:
 * idle and max watts replace the defaults, not values set by configuration. note ("calibrated
 * on this machine on DATE, error X %") joins the channel's description; detail receives the
 * family's new report line. 1 when the fit is used, 0 when configuration overrides it all,
 * -EINVAL when ch is not the model's channel.
 */
int model_cpu_use_fit(struct channel *ch, double idle_watts, double max_watts, const char *note,
                      char *detail, size_t len);
/*
 * Add model:rest to set (before the sampler starts): the rest of the machine estimated from
 * the same utilisation, idle_watts + (max_watts - idle_watts) x utilisation, with note (its
 * calibration) in its description. stat_fd (<proc>/stat, opened before the privilege drop;
 * stat_path names it) is owned by the channel from then on, closed on failure. The channel,
 * or NULL when the set is full or memory runs out.
 */
struct channel *model_rest_add(struct channel_set *set, int stat_fd, const char *stat_path,
                               double idle_watts, double max_watts, const char *note);
extern const struct source_family model_cpu_family;

#endif
