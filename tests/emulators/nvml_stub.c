/*
 * A stub libnvidia-ml.so.1 for tests: the real NVML function names, signatures and return codes,
 * driven by files a test writes (tests/emulators/nvml.py) in $NVML_STUB_DIR:
 *
 *   count                 number of GPUs
 *   init_error            optional: nvmlInit_v2 returns this code
 *   gpuN/name, gpuN/uuid  strings
 *   gpuN/limit_mw         enforced power limit
 *   gpuN/energy_mj        total energy in millijoules; absent: NVML_ERROR_NOT_SUPPORTED, as on
 *                         GPUs older than Volta
 *   gpuN/power_mw         power usage in milliwatts
 *   gpuN/error            optional: a code every reading call of this GPU returns while it holds
 *                         a non-zero number (fault injection, e.g. 15 = GPU is lost)
 *   gpuN/process_util     the driver's utilisation samples, "TIMESTAMP PID SM%" triples
 *                         (whitespace separated; TIMESTAMP in microseconds of CLOCK_REALTIME,
 *                         the CPU timestamp NVML stamps samples with, 0 for a sample taken at
 *                         the call): what nvmlDeviceGetProcessUtilization reports, newer than
 *                         lastSeenTimeStamp; empty: no process used the GPU
 *                         (NVML_ERROR_NOT_FOUND); absent: NVML_ERROR_NOT_SUPPORTED, as on GPUs
 *                         before Maxwell
 *   calls                 the stub appends "init" and "shutdown" lines here
 *
 * Built twice: libnvidia-ml.so.1, and libnvidia-ml-old.so.1 (NVML_STUB_OLD_DRIVER) without
 * nvmlDeviceGetProcessUtilization, as in drivers that predate it.
 *
 * Like the real library, it opens what it needs in nvmlInit (energyd drops root afterwards) and
 * reads the values with pread on every call, so the test can change them at any time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;

#define NVML_SUCCESS                 0
#define NVML_ERROR_UNINITIALIZED     1
#define NVML_ERROR_INVALID_ARGUMENT  2
#define NVML_ERROR_NOT_SUPPORTED     3
#define NVML_ERROR_NOT_FOUND         6
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_UNKNOWN           999

#define STUB_GPUS_MAX 16

struct nvmlDevice_st {
	int index;
	char name[96], uuid[96];
	int energy_fd, power_fd, error_fd, limit_fd, util_fd;
};

static struct nvmlDevice_st gpus[STUB_GPUS_MAX];
static unsigned n_gpus;
static int inits;
static int calls_fd = -1;

static int read_text(const char *dir, const char *file, char *buf, size_t len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int open_value(const char *dir, const char *file)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static int pread_ull(int fd, unsigned long long *v)
{
	char buf[64];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *end;
	*v = strtoull(buf, &end, 10);
	return end == buf ? -1 : 0;
}

static void log_call(const char *what)
{
	if (calls_fd >= 0 && write(calls_fd, what, strlen(what)) < 0)
		return;
}

static nvmlReturn_t injected(const struct nvmlDevice_st *d)
{
	unsigned long long code;
	if (d->error_fd >= 0 && pread_ull(d->error_fd, &code) == 0 && code != 0)
		return (nvmlReturn_t)code;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void)
{
	const char *dir = getenv("NVML_STUB_DIR");
	char buf[128];
	if (!dir)
		return NVML_ERROR_UNKNOWN;
	if (read_text(dir, "init_error", buf, sizeof(buf)) == 0 && atoi(buf) != 0)
		return atoi(buf);
	if (inits++ > 0)
		return NVML_SUCCESS; /* NVML counts nested inits */
	char path[1024];
	snprintf(path, sizeof(path), "%s/calls", dir);
	calls_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	log_call("init\n");
	n_gpus = read_text(dir, "count", buf, sizeof(buf)) == 0 ? (unsigned)atoi(buf) : 0;
	if (n_gpus > STUB_GPUS_MAX)
		n_gpus = STUB_GPUS_MAX;
	for (unsigned i = 0; i < n_gpus; i++) {
		char gdir[1024];
		struct nvmlDevice_st *d = &gpus[i];
		snprintf(gdir, sizeof(gdir), "%s/gpu%u", dir, i);
		d->index = (int)i;
		if (read_text(gdir, "name", d->name, sizeof(d->name)) < 0)
			snprintf(d->name, sizeof(d->name), "Stub GPU %u", i);
		if (read_text(gdir, "uuid", d->uuid, sizeof(d->uuid)) < 0)
			snprintf(d->uuid, sizeof(d->uuid), "GPU-00000000-0000-0000-0000-%012u", i);
		d->energy_fd = open_value(gdir, "energy_mj");
		d->power_fd = open_value(gdir, "power_mw");
		d->error_fd = open_value(gdir, "error");
		d->limit_fd = open_value(gdir, "limit_mw");
		d->util_fd = open_value(gdir, "process_util");
	}
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit(void)
{
	return nvmlInit_v2();
}

nvmlReturn_t nvmlShutdown(void)
{
	if (inits == 0)
		return NVML_ERROR_UNINITIALIZED;
	if (--inits > 0)
		return NVML_SUCCESS;
	log_call("shutdown\n");
	for (unsigned i = 0; i < n_gpus; i++) {
		int *fds[] = {&gpus[i].energy_fd, &gpus[i].power_fd, &gpus[i].error_fd,
		              &gpus[i].limit_fd, &gpus[i].util_fd};
		for (size_t k = 0; k < sizeof(fds) / sizeof(fds[0]); k++)
			if (*fds[k] >= 0)
				close(*fds[k]), *fds[k] = -1;
	}
	if (calls_fd >= 0)
		close(calls_fd);
	calls_fd = -1;
	n_gpus = 0;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
	if (!inits)
		return NVML_ERROR_UNINITIALIZED;
	if (!count)
		return NVML_ERROR_INVALID_ARGUMENT;
	*count = n_gpus;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
	if (!inits)
		return NVML_ERROR_UNINITIALIZED;
	if (index >= n_gpus || !device)
		return NVML_ERROR_INVALID_ARGUMENT;
	*device = &gpus[index];
	return NVML_SUCCESS;
}

static nvmlReturn_t copy_string(const char *s, char *buf, unsigned int len)
{
	if (!buf)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (strlen(s) + 1 > len)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	memcpy(buf, s, strlen(s) + 1);
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
	return device ? copy_string(device->name, name, length) : NVML_ERROR_INVALID_ARGUMENT;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
	return device ? copy_string(device->uuid, uuid, length) : NVML_ERROR_INVALID_ARGUMENT;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy)
{
	if (!inits)
		return NVML_ERROR_UNINITIALIZED;
	if (!device || !energy)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (device->energy_fd < 0)
		return NVML_ERROR_NOT_SUPPORTED;
	nvmlReturn_t rc = injected(device);
	if (rc != NVML_SUCCESS)
		return rc;
	return pread_ull(device->energy_fd, energy) == 0 ? NVML_SUCCESS : NVML_ERROR_UNKNOWN;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
	if (!inits)
		return NVML_ERROR_UNINITIALIZED;
	if (!device || !power)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (device->power_fd < 0)
		return NVML_ERROR_NOT_SUPPORTED;
	nvmlReturn_t rc = injected(device);
	if (rc != NVML_SUCCESS)
		return rc;
	unsigned long long v;
	if (pread_ull(device->power_fd, &v) < 0)
		return NVML_ERROR_UNKNOWN;
	*power = (unsigned int)v;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit)
{
	unsigned long long v;
	if (!device || !limit)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (device->limit_fd < 0 || pread_ull(device->limit_fd, &v) < 0)
		return NVML_ERROR_NOT_SUPPORTED;
	*limit = (unsigned int)v;
	return NVML_SUCCESS;
}

#ifndef NVML_STUB_OLD_DRIVER
typedef struct {
	unsigned int pid;
	unsigned long long timeStamp;
	unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

#define STUB_SAMPLES_MAX 512

/*
 * nvmlDeviceGetProcessUtilization as nvml.h documents it: the driver's samples of the processes
 * that used the GPU, each with the CPU timestamp (microseconds) at which it was taken, and only
 * those newer than lastSeenTimeStamp ("Pass 0 to read all samples"; NVML_ERROR_NOT_FOUND when
 * there are none); several samples of one process when several sample periods passed since
 * lastSeenTimeStamp. With samples NULL or too few entries: NVML_ERROR_INSUFFICIENT_SIZE and
 * *count set to the number needed.
 */
nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                             nvmlProcessUtilizationSample_t *samples,
                                             unsigned int *count,
                                             unsigned long long lastSeenTimeStamp)
{
	if (!inits)
		return NVML_ERROR_UNINITIALIZED;
	if (!device || !count)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (device->util_fd < 0)
		return NVML_ERROR_NOT_SUPPORTED;
	nvmlReturn_t rc = injected(device);
	if (rc != NVML_SUCCESS)
		return rc;
	char buf[32768];
	ssize_t len = pread(device->util_fd, buf, sizeof(buf) - 1, 0);
	if (len < 0)
		return NVML_ERROR_UNKNOWN;
	buf[len] = '\0';
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned long long now =
	    (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u;
	nvmlProcessUtilizationSample_t found[STUB_SAMPLES_MAX];
	unsigned n = 0;
	char *s = buf, *end;
	while (n < STUB_SAMPLES_MAX) {
		unsigned long long v[3];
		int k = 0;
		for (; k < 3; k++, s = end) {
			v[k] = strtoull(s, &end, 10);
			if (end == s)
				break;
		}
		if (k == 0)
			break;
		if (k < 3)
			return NVML_ERROR_UNKNOWN; /* a sample cut short */
		unsigned long long stamp = v[0] ? v[0] : now;
		if (stamp > lastSeenTimeStamp)
			found[n++] =
			    (nvmlProcessUtilizationSample_t){.pid = (unsigned)v[1],
			                                     .timeStamp = stamp,
			                                     .smUtil = (unsigned)v[2],
			                                     .memUtil = (unsigned)v[2] / 2};
	}
	if (n == 0)
		return NVML_ERROR_NOT_FOUND;
	if (!samples || *count < n) {
		*count = n;
		return NVML_ERROR_INSUFFICIENT_SIZE;
	}
	memcpy(samples, found, n * sizeof(*samples));
	*count = n;
	return NVML_SUCCESS;
}
#endif

const char *nvmlErrorString(nvmlReturn_t result)
{
	/* The texts of the real library, for the codes the tests use. */
	switch (result) {
	case 0:
		return "Success";
	case 1:
		return "Uninitialized";
	case 2:
		return "Invalid Argument";
	case 3:
		return "Not Supported";
	case 4:
		return "Insufficient Permissions";
	case 9:
		return "Driver Not Loaded";
	case 15:
		return "GPU is lost";
	case 18:
		return "RM has detected an NVML/RM version mismatch.";
	default:
		return "Unknown Error";
	}
}
