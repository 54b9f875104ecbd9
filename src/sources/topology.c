/*
 * CPU topology from sysfs, for the families that read package-scope registers on one CPU per
 * package (perf's power PMU, MSR RAPL):
 *
 *   <sysfs>/devices/system/cpu/cpuN/topology/physical_package_id
 *   <sysfs>/devices/system/cpu/cpuN/topology/core_id
 */
#define _GNU_SOURCE
#include "source.h"

#include <dirent.h>
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

int topology_cpus(const char *sysfs_root, struct source_cpu *cpus, int max)
{
	char base[560];
	snprintf(base, sizeof(base), "%s/devices/system/cpu", sysfs_root);
	DIR *d = opendir(base);
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		int cpu, used = 0;
		if (sscanf(de->d_name, "cpu%d%n", &cpu, &used) != 1 || de->d_name[used])
			continue;
		struct source_cpu *c = &cpus[n];
		c->cpu = cpu;
		if (topology_read_int(sysfs_root, cpu, "physical_package_id", &c->package) < 0)
			continue; /* offline CPUs have no topology */
		if (topology_read_int(sysfs_root, cpu, "core_id", &c->core) < 0)
			c->core = cpu;
		n++;
	}
	closedir(d);
	qsort(cpus, (size_t)n, sizeof(*cpus), topology_compare);
	return n;
}

bool topology_first_of_package(const struct source_cpu *cpus, int i)
{
	for (int j = 0; j < i; j++)
		if (cpus[j].package == cpus[i].package)
			return false;
	return true;
}
