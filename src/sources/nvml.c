/*
 * NVIDIA GPUs through NVML, loaded with dlopen at run time (libnvidia-ml.so.1 ships with the
 * driver, not with us): no NVIDIA headers at build time, no dependency on machines without a
 * GPU. We declare the few types and return codes we use, as nvtop does, take the newest symbol
 * version first (nvmlInit_v2, then nvmlInit) and keep nvmlErrorString's text for the user.
 *
 * Energy: nvmlDeviceGetTotalEnergyConsumption (millijoules since the driver loaded, Volta and
 * newer) is a counter and preferred; where it answers NVML_ERROR_NOT_SUPPORTED the channel
 * integrates nvmlDeviceGetPowerUsage (milliwatts) over time instead. Channels are nvml:gpu-N
 * in NVML's index order, of kind "gpu" (a discrete GPU: part of the host total).
 *
 * Attribution: nvmlDeviceGetProcessUtilization gives, per process that used the GPU, its SM
 * utilisation (percent) in the driver's recent sample periods; process_shares() reads the samples
 * newer than the last call's (a timestamp kept per device) and gives each process the mean of its
 * samples as its share of the GPU's energy. The function is optional (older drivers lack it, some
 * GPUs answer NOT_SUPPORTED): then the GPU's energy is reported unattributed, and `sources` says
 * why.
 *
 * NVML is initialised once (in probe, before energyd drops root: it opens /dev/nvidia*) and shut
 * down when the last channel closes.
 */
#define _GNU_SOURCE
#include "source.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* From nvml.h: the values are part of NVML's ABI. */
typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
#define NVML_SUCCESS                       0
#define NVML_ERROR_NOT_SUPPORTED           3
#define NVML_ERROR_NO_PERMISSION           4
#define NVML_ERROR_NOT_FOUND               6
#define NVML_ERROR_INSUFFICIENT_SIZE       7
#define NVML_ERROR_DRIVER_NOT_LOADED       9
#define NVML_ERROR_LIB_RM_VERSION_MISMATCH 18
#define NVML_DEVICE_NAME_BUFFER_SIZE       96
#define NVML_DEVICE_UUID_BUFFER_SIZE       96

/* nvml.h's nvmlProcessUtilizationSample_t, in its field order. */
typedef struct {
	unsigned int pid;
	unsigned long long timeStamp; /* CPU timestamp of the sample, microseconds */
	unsigned int smUtil;          /* SM (3D/compute) utilisation, percent */
	unsigned int memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

#define NVML_DEFAULT_LIB "libnvidia-ml.so.1"

struct nvml_api {
	void *dl; /* the dlopen handle */
	int refs; /* open channels; NVML is shut down when it drops to 0 */
	nvmlReturn_t (*init)(void);
	nvmlReturn_t (*shutdown)(void);
	nvmlReturn_t (*count)(unsigned int *);
	nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t *);
	nvmlReturn_t (*name)(nvmlDevice_t, char *, unsigned int);
	nvmlReturn_t (*uuid)(nvmlDevice_t, char *, unsigned int);
	nvmlReturn_t (*energy)(nvmlDevice_t, unsigned long long *);
	nvmlReturn_t (*power)(nvmlDevice_t, unsigned int *);
	nvmlReturn_t (*limit)(nvmlDevice_t, unsigned int *);
	nvmlReturn_t (*process_util)(nvmlDevice_t, nvmlProcessUtilizationSample_t *, unsigned int *,
	                             unsigned long long);
	const char *(*error_string)(nvmlReturn_t);
	char path[512]; /* the library opened */
};

static struct nvml_api nvml;

struct nvml_priv {
	nvmlDevice_t dev;
	unsigned index;      /* NVML's device index */
	bool energy_counter; /* has nvmlDeviceGetTotalEnergyConsumption (Volta and later) */
	unsigned limit_mw;   /* 0: unknown */
	char name[NVML_DEVICE_NAME_BUFFER_SIZE];
	char uuid[NVML_DEVICE_UUID_BUFFER_SIZE];

	/* Per-process utilisation. The lock guards what follows: process_shares() runs in the
	 * attribution thread, describe() in API threads (read() uses none of it). */
	pthread_mutex_t lock;
	bool shares_ok;          /* false: the library or the GPU lacks the function */
	char shares_why[200];    /* why not, for describe() and shares_error */
	unsigned long long seen; /* newest sample timestamp read (us); 0: none yet */
	nvmlProcessUtilizationSample_t *samples;
	unsigned samples_cap; /* room in samples */
};

static void shares_probe(struct nvml_priv *p);

static const char *nvml_error(nvmlReturn_t rc)
{
	static _Thread_local char buf[32]; /* read() and process_shares() run on two threads */
	const char *s = nvml.error_string ? nvml.error_string(rc) : NULL;
	if (s)
		return s;
	snprintf(buf, sizeof(buf), "NVML error %d", rc);
	return buf;
}

static void *sym(const char *newest, const char *older)
{
	void *p = dlsym(nvml.dl, newest);
	if (!p && older)
		p = dlsym(nvml.dl, older);
	return p;
}

static void nvml_unload(void)
{
	if (nvml.dl)
		dlclose(nvml.dl);
	memset(&nvml, 0, sizeof(nvml));
}

static int nvml_probe(const struct source_config *cfg, struct family_report *r)
{
	const char *lib = cfg->nvml_lib ? cfg->nvml_lib : NVML_DEFAULT_LIB;
	if (nvml.dl) /* probed already (a second probe in the same process) */
		nvml_unload();
	dlerror();
	nvml.dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!nvml.dl) {
		const char *e = dlerror();
		r->status = FAMILY_ABSENT;
		snprintf(r->detail, sizeof(r->detail),
		         "cannot load %s (%s): no NVIDIA driver here; install it, or point "
		         "--nvml-lib at libnvidia-ml.so.1",
		         lib, e ? e : "unknown error");
		return 0;
	}
	snprintf(nvml.path, sizeof(nvml.path), "%s", lib);
	*(void **)&nvml.init = sym("nvmlInit_v2", "nvmlInit");
	*(void **)&nvml.shutdown = sym("nvmlShutdown", NULL);
	*(void **)&nvml.count = sym("nvmlDeviceGetCount_v2", "nvmlDeviceGetCount");
	*(void **)&nvml.handle = sym("nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex");
	*(void **)&nvml.name = sym("nvmlDeviceGetName", NULL);
	*(void **)&nvml.uuid = sym("nvmlDeviceGetUUID", NULL);
	*(void **)&nvml.energy = sym("nvmlDeviceGetTotalEnergyConsumption", NULL); /* optional */
	*(void **)&nvml.power = sym("nvmlDeviceGetPowerUsage", NULL);
	*(void **)&nvml.limit = sym("nvmlDeviceGetEnforcedPowerLimit", NULL); /* optional */
	/* optional: per-process utilisation for attribution */
	*(void **)&nvml.process_util = sym("nvmlDeviceGetProcessUtilization", NULL);
	*(void **)&nvml.error_string = sym("nvmlErrorString", NULL);
	if (!nvml.init || !nvml.shutdown || !nvml.count || !nvml.handle || !nvml.power) {
		r->status = FAMILY_ERROR;
		snprintf(r->detail, sizeof(r->detail),
		         "%s lacks nvmlInit/nvmlDeviceGetCount/nvmlDeviceGetHandleByIndex/"
		         "nvmlDeviceGetPowerUsage: not NVML, or far too old a driver",
		         lib);
		nvml_unload();
		return 0;
	}
	nvmlReturn_t rc = nvml.init();
	if (rc != NVML_SUCCESS) {
		r->status = rc == NVML_ERROR_NO_PERMISSION       ? FAMILY_DENIED
		            : rc == NVML_ERROR_DRIVER_NOT_LOADED ? FAMILY_ABSENT
		                                                 : FAMILY_ERROR;
		snprintf(
		    r->detail, sizeof(r->detail), "nvmlInit (%s): %s%s", lib, nvml_error(rc),
		    rc == NVML_ERROR_DRIVER_NOT_LOADED ? ": load the nvidia kernel module"
		    : rc == NVML_ERROR_LIB_RM_VERSION_MISMATCH
		        ? ": the library and the kernel module differ; reboot after a driver update"
		        : "");
		nvml_unload();
		return 0;
	}
	unsigned count = 0;
	rc = nvml.count(&count);
	if (rc != NVML_SUCCESS || count == 0) {
		r->status = rc == NVML_SUCCESS ? FAMILY_ABSENT : FAMILY_ERROR;
		snprintf(r->detail, sizeof(r->detail), "%s: %s", lib,
		         rc == NVML_SUCCESS ? "NVML sees no GPU" : nvml_error(rc));
		nvml.shutdown();
		nvml_unload();
		return 0;
	}
	r->status = FAMILY_FOUND;
	snprintf(r->detail, sizeof(r->detail), "%u GPU(s) through %s%s", count, lib,
	         nvml.process_util ? ""
	                           : "; no nvmlDeviceGetProcessUtilization (an older driver): GPU "
	                             "energy is reported unattributed; update the driver to "
	                             "attribute it to processes");
	return (int)count;
}

static int nvml_open(const struct source_config *cfg, struct channel_set *set,
                     struct family_report *r)
{
	(void)cfg;
	unsigned count = 0;
	if (!nvml.dl || nvml.count(&count) != NVML_SUCCESS)
		return -ENODEV;
	int added = 0;
	for (unsigned i = 0; i < count; i++) {
		char id[CHANNEL_ID_MAX];
		snprintf(id, sizeof(id), "nvml:gpu-%u", i);
		struct nvml_priv *p = calloc(1, sizeof(*p));
		if (!p)
			break;
		pthread_mutex_init(&p->lock, NULL);
		p->index = i;
		nvmlReturn_t rc = nvml.handle(i, &p->dev);
		if (rc == NVML_SUCCESS) {
			if (!nvml.name ||
			    nvml.name(p->dev, p->name, sizeof(p->name)) != NVML_SUCCESS)
				snprintf(p->name, sizeof(p->name), "GPU %u", i);
			if (!nvml.uuid ||
			    nvml.uuid(p->dev, p->uuid, sizeof(p->uuid)) != NVML_SUCCESS)
				p->uuid[0] = '\0';
			if (!nvml.limit || nvml.limit(p->dev, &p->limit_mw) != NVML_SUCCESS)
				p->limit_mw = 0;
			unsigned long long mj;
			unsigned mw;
			rc = nvml.energy ? nvml.energy(p->dev, &mj) : NVML_ERROR_NOT_SUPPORTED;
			p->energy_counter = rc == NVML_SUCCESS;
			if (!p->energy_counter)
				rc = nvml.power(p->dev, &mw);
			if (rc == NVML_SUCCESS)
				shares_probe(p);
		}
		struct channel *ch = rc == NVML_SUCCESS ? channel_set_add(set, id) : NULL;
		if (!ch) {
			family_report_add(r, "; %s skipped: %s", id,
			                  rc == NVML_SUCCESS ? "no room for more channels"
			                                     : nvml_error(rc));
			pthread_mutex_destroy(&p->lock);
			free(p);
			continue;
		}
		ch->priv = p;
		ch->kind = CHANNEL_GPU;
		ch->reading = p->energy_counter ? READING_ENERGY_UJ : READING_POWER_UW;
		ch->max_uj = 0; /* a 64-bit millijoule counter */
		snprintf(ch->label, sizeof(ch->label), "%s (NVML)", p->name);
		nvml.refs++;
		added++;
	}
	if (added == 0) {
		nvml.shutdown();
		nvml_unload();
	}
	return added;
}

static int nvml_read(struct channel *ch, uint64_t *value)
{
	struct nvml_priv *p = ch->priv;
	nvmlReturn_t rc;
	const char *call;
	if (p->energy_counter) {
		unsigned long long mj = 0;
		call = "nvmlDeviceGetTotalEnergyConsumption";
		rc = nvml.energy(p->dev, &mj);
		*value = (uint64_t)mj * 1000u;
	} else {
		unsigned mw = 0;
		call = "nvmlDeviceGetPowerUsage";
		rc = nvml.power(p->dev, &mw);
		*value = (uint64_t)mw * 1000u;
	}
	if (rc != NVML_SUCCESS) {
		snprintf(ch->read_error, sizeof(ch->read_error), "%s (GPU %u, %s): %s", call,
		         p->index, p->name, nvml_error(rc));
		return -EIO;
	}
	return 0;
}

/* The function's absence, or NOT_SUPPORTED, is for good: record why (lock held or not yet
 * shared). */
static void shares_unsupported(struct nvml_priv *p, nvmlReturn_t rc)
{
	p->shares_ok = false;
	if (!nvml.process_util)
		snprintf(p->shares_why, sizeof(p->shares_why),
		         "%s does not export nvmlDeviceGetProcessUtilization (an older driver); "
		         "update the driver to attribute GPU energy to processes",
		         nvml.path);
	else
		snprintf(
		    p->shares_why, sizeof(p->shares_why),
		    "nvmlDeviceGetProcessUtilization (GPU %u, %s): %s; this GPU or driver does "
		    "not report per-process utilisation (Maxwell and newer do)",
		    p->index, p->name, nvml_error(rc));
}

/* At open: does this GPU answer nvmlDeviceGetProcessUtilization at all? A size query (no
 * buffer) reads no samples, so the first real call still sees everything since start. */
static void shares_probe(struct nvml_priv *p)
{
	unsigned n = 0;
	nvmlReturn_t rc =
	    nvml.process_util ? nvml.process_util(p->dev, NULL, &n, 0) : NVML_ERROR_NOT_SUPPORTED;
	if (rc == NVML_ERROR_NOT_SUPPORTED)
		shares_unsupported(p, rc);
	else
		p->shares_ok = true; /* other errors may pass; process_shares() retries */
}

static int cmp_sample_pid(const void *x, const void *y)
{
	const nvmlProcessUtilizationSample_t *a = x, *b = y;
	return (a->pid > b->pid) - (a->pid < b->pid);
}

/* Read the samples newer than p->seen into p->samples; their number, or a negative errno with
 * ch->shares_error filled. Lock held. */
static int shares_fetch(struct channel *ch, struct nvml_priv *p)
{
	unsigned n = 0;
	nvmlReturn_t rc = nvml.process_util(p->dev, NULL, &n, p->seen);
	/* The count can grow between the size query and the read (a process starts): leave
	 * room, and retry a few times if it grew beyond that. */
	for (int attempt = 0;
	     attempt < 4 && (rc == NVML_SUCCESS || rc == NVML_ERROR_INSUFFICIENT_SIZE); attempt++) {
		unsigned want = n + 16;
		if (want > p->samples_cap) {
			nvmlProcessUtilizationSample_t *s = realloc(p->samples, want * sizeof(*s));
			if (!s) {
				snprintf(ch->shares_error, sizeof(ch->shares_error),
				         "out of memory for %u utilisation samples", want);
				return -ENOMEM;
			}
			p->samples = s;
			p->samples_cap = want;
		}
		n = p->samples_cap;
		rc = nvml.process_util(p->dev, p->samples, &n, p->seen);
		if (rc == NVML_SUCCESS)
			return n <= p->samples_cap ? (int)n : (int)p->samples_cap;
	}
	if (rc == NVML_ERROR_NOT_FOUND)
		return 0; /* no process used the GPU since the last call */
	if (rc == NVML_ERROR_NOT_SUPPORTED) {
		shares_unsupported(p, rc);
		snprintf(ch->shares_error, sizeof(ch->shares_error), "%s", p->shares_why);
		return -EOPNOTSUPP;
	}
	snprintf(ch->shares_error, sizeof(ch->shares_error),
	         "nvmlDeviceGetProcessUtilization (GPU %u, %s): %s; this interval's GPU energy is "
	         "reported unattributed",
	         p->index, p->name, nvml_error(rc));
	return -EIO;
}

/*
 * Each process's share of the GPU since the last call: the mean SM utilisation of its samples
 * newer than the last one seen. NVML returns a sample per process that was busy in a driver
 * sample period, so a process idle for part of the interval may be credited with its busy
 * periods' mean: the shares are an estimate, and what they leave is reported unattributed.
 */
static int nvml_process_shares(struct channel *ch, struct process_share *out, int max)
{
	struct nvml_priv *p = ch->priv;
	pthread_mutex_lock(&p->lock);
	if (!p->shares_ok) {
		snprintf(ch->shares_error, sizeof(ch->shares_error), "%s", p->shares_why);
		pthread_mutex_unlock(&p->lock);
		return -EOPNOTSUPP;
	}
	int n = shares_fetch(ch, p);
	int k = 0;
	if (n > 0) {
		unsigned long long newest = p->seen;
		for (int i = 0; i < n; i++)
			if (p->samples[i].timeStamp > newest)
				newest = p->samples[i].timeStamp;
		qsort(p->samples, (size_t)n, sizeof(*p->samples), cmp_sample_pid);
		for (int i = 0; i < n && k < max;) {
			unsigned pid = p->samples[i].pid;
			double sum = 0;
			int m = 0;
			for (; i < n && p->samples[i].pid == pid; i++) {
				if (p->samples[i].timeStamp <= p->seen)
					continue; /* older than asked for: counted last time */
				sum += p->samples[i].smUtil;
				m++;
			}
			if (m > 0 && pid > 0 && pid <= (unsigned)INT32_MAX)
				out[k++] = (struct process_share){
				    .pid = (int)pid,
				    .share = sum / m / 100.0 > 1 ? 1 : sum / m / 100.0};
		}
		p->seen = newest;
	}
	pthread_mutex_unlock(&p->lock);
	return n < 0 ? n : k;
}

static void nvml_close(struct channel *ch)
{
	struct nvml_priv *p = ch->priv;
	if (p) {
		pthread_mutex_destroy(&p->lock);
		free(p->samples);
	}
	free(ch->priv);
	ch->priv = NULL;
	if (nvml.refs > 0 && --nvml.refs == 0) {
		nvml.shutdown();
		nvml_unload();
	}
}

static void nvml_describe(const struct channel *ch, char *buf, size_t len)
{
	struct nvml_priv *p = ch->priv;
	char limit[48] = "", shares[240];
	if (p->limit_mw)
		snprintf(limit, sizeof(limit), ", enforced power limit %.1f W",
		         p->limit_mw / 1000.0);
	pthread_mutex_lock(&p->lock);
	if (p->shares_ok)
		snprintf(shares, sizeof(shares),
		         "; attributed to processes by nvmlDeviceGetProcessUtilization (SM %%)");
	else
		snprintf(shares, sizeof(shares), "; not attributed: %s", p->shares_why);
	pthread_mutex_unlock(&p->lock);
	snprintf(buf, len, "GPU %u %s%s%s: %s%s%s", p->index, p->name, p->uuid[0] ? " " : "",
	         p->uuid,
	         p->energy_counter ? "nvmlDeviceGetTotalEnergyConsumption (energy counter, mJ)"
	                           : "nvmlDeviceGetPowerUsage (mW) integrated over time; this GPU "
	                             "has no energy counter (before Volta)",
	         limit, shares);
}

const struct source_family nvml_family = {
    .name = "nvml",
    .probe = nvml_probe,
    .open = nvml_open,
    .read = nvml_read,
    .close = nvml_close,
    .describe = nvml_describe,
    .process_shares = nvml_process_shares,
    .shares_source = "NVML nvmlDeviceGetProcessUtilization: SM utilisation per process",
};
