/*
 * CPU topology from sysfs, for the families that read package-scope registers on one CPU per
 * package (perf's power PMU, MSR RAPL):
 *
 *   <sysfs>/devices/system/cpu/cpuN/topology/physical_package_id
 *   <sysfs>/devices/system/cpu/cpuN/topology/core_id
 */
#define _GNU_SOURCE
#include "source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int topology_read_int(const char *sysfs_root, int cpu, const char *what, int *out)
{
	char path[600], buf[32];
	snprintf(path, sizeof(path), "%s/devices/system/cpu/cpu%d/topology/%s", sysfs_root, cpu,
	         what);
	int rc = source_read_text(path, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	char *end;
	long v = strtol(buf, &end, 10);
	if (end == buf || *end || v < 0 || v > 1 << 20)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int topology_compare(const void *a, const void *b)
{
	return ((const struct source_cpu *)a)->cpu - ((const struct source_cpu *)b)->cpu;
}

/* A CPU from directory entry name when it is an online "cpuN" (ctx: the sysfs root). */
static bool topology_take(const char *name, void *slot, void *ctx)
{
	const char *sysfs_root = ctx;
	struct source_cpu *c = slot;
	int cpu, used = 0;
	if (sscanf(name, "cpu%d%n", &cpu, &used) != 1 || name[used])
		return false;
	c->cpu = cpu;
	if (topology_read_int(sysfs_root, cpu, "physical_package_id", &c->package) < 0)
		return false; /* offline CPUs have no topology */
	if (topology_read_int(sysfs_root, cpu, "core_id", &c->core) < 0)
		c->core = cpu;
	return true;
}

int topology_cpus(const char *sysfs_root, struct source_cpu *cpus, int max)
{
	char base[560];
	snprintf(base, sizeof(base), "%s/devices/system/cpu", sysfs_root);
	return source_scan_dir(base, cpus, sizeof(*cpus), max, topology_take, topology_compare,
	                       (void *)sysfs_root);
}

bool topology_first_of_package(const struct source_cpu *cpus, int i)
{
	for (int j = 0; j < i; j++)
		if (cpus[j].package == cpus[i].package)
			return false;
	return true;
}
