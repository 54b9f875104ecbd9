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
 * NVML is initialised once (in probe, before energyd drops root: it opens /dev/nvidia*) and shut
 * down when the last channel closes.
 */
#define _GNU_SOURCE
#include "source.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* From nvml.h: the values are part of NVML's ABI. */
typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
#define NVML_SUCCESS                       0
#define NVML_ERROR_NOT_SUPPORTED           3
#define NVML_ERROR_NO_PERMISSION           4
#define NVML_ERROR_DRIVER_NOT_LOADED       9
#define NVML_ERROR_LIB_RM_VERSION_MISMATCH 18
#define NVML_DEVICE_NAME_BUFFER_SIZE       96
#define NVML_DEVICE_UUID_BUFFER_SIZE       96

#define NVML_DEFAULT_LIB "libnvidia-ml.so.1"

struct nvml_api {
	void *dl;
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
	const char *(*error_string)(nvmlReturn_t);
	char path[512];
};

static struct nvml_api nvml;

struct nvml_priv {
	nvmlDevice_t dev;
	unsigned index;
	bool energy_counter;
	unsigned limit_mw; /* 0: unknown */
	char name[NVML_DEVICE_NAME_BUFFER_SIZE];
	char uuid[NVML_DEVICE_UUID_BUFFER_SIZE];
};

static const char *nvml_error(nvmlReturn_t rc)
{
	static char buf[32];
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
	snprintf(r->detail, sizeof(r->detail), "%u GPU(s) through %s", count, lib);
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
		}
		struct channel *ch = rc == NVML_SUCCESS ? channel_set_add(set, id) : NULL;
		if (!ch) {
			snprintf(r->detail + strlen(r->detail),
			         sizeof(r->detail) - strlen(r->detail), "; %s skipped: %s", id,
			         rc == NVML_SUCCESS ? "no room for more channels" : nvml_error(rc));
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

static void nvml_close(struct channel *ch)
{
	free(ch->priv);
	ch->priv = NULL;
	if (nvml.refs > 0 && --nvml.refs == 0) {
		nvml.shutdown();
		nvml_unload();
	}
}

static void nvml_describe(const struct channel *ch, char *buf, size_t len)
{
	const struct nvml_priv *p = ch->priv;
	char limit[48] = "";
	if (p->limit_mw)
		snprintf(limit, sizeof(limit), ", enforced power limit %.1f W",
		         p->limit_mw / 1000.0);
	snprintf(buf, len, "GPU %u %s%s%s: %s%s", p->index, p->name, p->uuid[0] ? " " : "", p->uuid,
	         p->energy_counter ? "nvmlDeviceGetTotalEnergyConsumption (energy counter, mJ)"
	                           : "nvmlDeviceGetPowerUsage (mW) integrated over time; this GPU "
	                             "has no energy counter (before Volta)",
	         limit);
}

const struct source_family nvml_family = {
    .name = "nvml",
    .probe = nvml_probe,
    .open = nvml_open,
    .read = nvml_read,
    .close = nvml_close,
    .describe = nvml_describe,
};
