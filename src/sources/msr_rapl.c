/*
 * RAPL read straight from the model-specific registers through the msr driver, for kernels
 * without powercap RAPL (or where it is disabled): <dev>/cpu/N/msr, pread at the register number.
 *
 *   Intel (SDM vol. 4)          unit 0x606, package 0x611, PP0 0x639, PP1 0x641, DRAM 0x619,
 *                               platform (psys) 0x64D
 *   AMD family 17h+ (PPR)       unit 0xC0010299, core 0xC001029A, package 0xC001029B
 *
 * The unit register's bits 12:8 give the energy status unit: one count is 1/2^ESU joules. Energy
 * registers are 32-bit counters (the upper half reads 0) that wrap after 2^32 counts, about
 * 262 kJ at the usual 61 uJ unit: a few minutes at full load. Package-scope registers are read
 * on the first CPU of each package (topology from sysfs). AMD's core register counts one
 * physical core, so rapl:core-N on AMD is the sum over the package's cores, one CPU per core_id.
 *
 * Each channel keeps its own 64-bit count of units, corrected for the 32-bit wrap at every read,
 * and reports it converted to microjoules: the conversion of the running total (rather than of
 * each delta) loses no fraction of a microjoule, so the counter is exact and monotonic.
 *
 * A register that reads 0 is taken as absent: an unimplemented domain (PP1 on servers, DRAM on
 * clients) never counts, and on real hardware a missing one fails with EIO.
 *
 * The DRAM domain of Intel servers from Haswell-EP on, and of Xeon Phi, counts in a fixed unit of
 * 2^-16 J (15.3 uJ) whatever the unit register says (Intel's Xeon E5 v3 datasheet, vol. 2). Linux
 * applies this per CPU model: rapl_defaults_hsw_server in drivers/powercap/intel_rapl_common.c
 * (dram_domain_energy_unit = 15300 pJ) for Haswell-X, Broadwell-X, Skylake-X, Ice Lake-X/-D and
 * Xeon Phi KNL/KNM; the perf PMU (arch/x86/events/rapl.c, RAPL_UNIT_QUIRK_INTEL_HSW) uses
 * 2^-16 J for the same models. Sapphire Rapids and later read the DRAM unit from the register
 * again. We apply the exact 2^-16 J, as perf does, to the same model list. The powercap and perf
 * families need nothing of the kind: the kernel applies the quirk in energy_uj and in the count.
 */
#define _GNU_SOURCE
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MSR_CPUS_MAX SOURCE_CPUS_MAX

#define MSR_INTEL_UNIT     0x606
#define MSR_INTEL_PKG      0x611
#define MSR_INTEL_PP0      0x639
#define MSR_INTEL_PP1      0x641
#define MSR_INTEL_DRAM     0x619
#define MSR_INTEL_PLATFORM 0x64D
#define MSR_AMD_UNIT       0xC0010299u
#define MSR_AMD_CORE       0xC001029Au
#define MSR_AMD_PKG        0xC001029Bu

struct msr_priv {
	int n_fds;
	int *fds;       /* /dev/cpu/N/msr: one per CPU read (per_core: each core) */
	uint32_t *last; /* last raw 32-bit value per fd */
	uint64_t units; /* total counts since open, wrap corrected */
	unsigned esu;   /* one count is 2^-esu J */
	bool esu_fixed; /* the CPU model's fixed DRAM unit, not the unit register's */
	uint32_t reg;
	char path[600]; /* the first device file, for messages */
};

static const char *msr_hint = "load the msr driver ('modprobe msr') and run energyd as root "
                              "(reading MSRs needs CAP_SYS_RAWIO)";

/* Intel family 6 models whose DRAM domain counts in 2^-16 J (see the comment at the top). */
static const int msr_dram_fixed_unit_models[] = {
    0x3F, /* Haswell-X */
    0x4F, /* Broadwell-X */
    0x55, /* Skylake-X (also Cascade Lake, Cooper Lake) */
    0x6A, /* Ice Lake-X */
    0x6C, /* Ice Lake-D */
    0x57, /* Xeon Phi Knights Landing */
    0x85, /* Xeon Phi Knights Mill */
};

#define MSR_DRAM_FIXED_ESU 16

/* True when <proc>/cpuinfo names an Intel family 6 model with the fixed DRAM unit. */
static bool msr_dram_unit_fixed(const struct source_config *cfg)
{
	char path[560], line[256];
	snprintf(path, sizeof(path), "%s/cpuinfo", cfg->proc_root);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	int family = -1, model = -1;
	while (fgets(line, sizeof(line), f) && (family < 0 || model < 0)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		if (strncmp(line, "cpu family", 10) == 0)
			family = atoi(colon + 1);
		else if (strncmp(line, "model", 5) == 0 && (line[5] == '\t' || line[5] == ' '))
			model = atoi(colon + 1);
	}
	fclose(f);
	if (family != 6)
		return false;
	for (size_t i = 0; i < sizeof(msr_dram_fixed_unit_models) / sizeof(int); i++)
		if (model == msr_dram_fixed_unit_models[i])
			return true;
	return false;
}

/* "intel", "amd" or NULL from cpuinfo's vendor_id. */
static const char *msr_vendor(const struct source_config *cfg, char *why, size_t len)
{
	if (cfg->msr_vendor)
		return cfg->msr_vendor;
	char path[560], line[256];
	snprintf(path, sizeof(path), "%s/cpuinfo", cfg->proc_root);
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(why, len, "cannot read %s (%s): set --msr-vendor", path, strerror(errno));
		return NULL;
	}
	const char *vendor = NULL;
	char found[64] = "";
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "vendor_id", 9) != 0)
			continue;
		char *colon = strchr(line, ':');
		if (colon && sscanf(colon + 1, "%63s", found) == 1) {
			if (strcmp(found, "GenuineIntel") == 0)
				vendor = "intel";
			else if (strcmp(found, "AuthenticAMD") == 0 ||
			         strcmp(found, "HygonGenuine") == 0)
				vendor = "amd";
		}
		break;
	}
	fclose(f);
	if (!vendor)
		snprintf(why, len, "CPU vendor '%s' in %s has no RAPL MSRs we know",
		         found[0] ? found : "unknown", path);
	return vendor;
}

static int msr_pread(int fd, uint32_t reg, uint64_t *v)
{
	ssize_t n = pread(fd, v, sizeof(*v), (off_t)reg);
	if (n < 0)
		return -errno;
	return n == sizeof(*v) ? 0 : -EIO;
}

static void msr_path(const struct source_config *cfg, int cpu, char *buf, size_t len)
{
	snprintf(buf, len, "%s/cpu/%d/msr", cfg->dev_root, cpu);
}

static int msr_probe(const struct source_config *cfg, struct family_report *r)
{
	char why[400] = "";
	const char *vendor = msr_vendor(cfg, why, sizeof(why));
	if (!vendor) {
		r->status = FAMILY_ABSENT;
		snprintf(r->detail, sizeof(r->detail), "%s", why);
		return 0;
	}
	struct source_cpu *cpus = calloc(MSR_CPUS_MAX, sizeof(*cpus));
	if (!cpus)
		return -ENOMEM;
	int n = topology_cpus(cfg->sysfs_root, cpus, MSR_CPUS_MAX);
	int first = n > 0 ? cpus[0].cpu : -1;
	free(cpus);
	if (n <= 0) {
		r->status = FAMILY_ABSENT;
		snprintf(r->detail, sizeof(r->detail),
		         "no CPU topology under %s/devices/system/cpu", cfg->sysfs_root);
		return 0;
	}
	char path[600];
	msr_path(cfg, first, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		r->status = (e == EACCES || e == EPERM) ? FAMILY_DENIED : FAMILY_ABSENT;
		snprintf(r->detail, sizeof(r->detail), "%s: %s: %s", path, strerror(e), msr_hint);
		return 0;
	}
	uint64_t unit;
	int rc = msr_pread(fd, strcmp(vendor, "amd") == 0 ? MSR_AMD_UNIT : MSR_INTEL_UNIT, &unit);
	close(fd);
	if (rc < 0) {
		r->status = FAMILY_ABSENT;
		snprintf(r->detail, sizeof(r->detail),
		         "%s: the %s RAPL unit register cannot be read (%s): no RAPL on this CPU",
		         path, vendor, strerror(-rc));
		return 0;
	}
	r->status = FAMILY_FOUND;
	snprintf(r->detail, sizeof(r->detail), "%s RAPL registers through %s/cpu/*/msr", vendor,
	         cfg->dev_root);
	return 1;
}

struct msr_domain {
	uint32_t reg;     /* the energy status MSR */
	const char *name; /* channel id pattern part */
	enum channel_kind kind;
	bool per_core;    /* AMD core: every core of the package */
	bool system_wide; /* platform: once, from package 0 */
	const char *label;
};

static const struct msr_domain intel_domains[] = {
    {MSR_INTEL_PKG, "package", CHANNEL_PACKAGE, false, false, "CPU package %d (MSR RAPL)"},
    {MSR_INTEL_PP0, "core", CHANNEL_CORE, false, false, "CPU cores of package %d (MSR RAPL)"},
    {MSR_INTEL_PP1, "uncore", CHANNEL_UNCORE, false, false,
     "Uncore / integrated GPU of package %d (MSR RAPL)"},
    {MSR_INTEL_DRAM, "dram", CHANNEL_DRAM, false, false, "Memory of package %d (MSR RAPL)"},
    {MSR_INTEL_PLATFORM, "psys", CHANNEL_PSYS, false, true, "Platform, whole SoC (MSR RAPL psys)"},
};

static const struct msr_domain amd_domains[] = {
    {MSR_AMD_PKG, "package", CHANNEL_PACKAGE, false, false, "CPU package %d (MSR RAPL)"},
    {MSR_AMD_CORE, "core", CHANNEL_CORE, true, false,
     "CPU cores of package %d (MSR RAPL, sum over cores)"},
};

static void msr_priv_free(struct msr_priv *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n_fds; i++)
		if (p->fds[i] >= 0)
			close(p->fds[i]);
	free(p->fds);
	free(p->last);
	free(p);
}

/* Open one channel reading reg on the given CPUs; NULL (with *why) when absent. */
static struct msr_priv *msr_open_domain(const struct source_config *cfg, const int *cpu_list, int n,
                                        uint32_t unit_reg, uint32_t reg, int fixed_esu, char *why,
                                        size_t len)
{
	struct msr_priv *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->fds = calloc((size_t)n, sizeof(int));
	p->last = calloc((size_t)n, sizeof(uint32_t));
	if (!p->fds || !p->last) {
		msr_priv_free(p);
		return NULL;
	}
	p->reg = reg;
	bool counting = false;
	for (int i = 0; i < n; i++) {
		char path[600];
		msr_path(cfg, cpu_list[i], path, sizeof(path));
		if (i == 0)
			snprintf(p->path, sizeof(p->path), "%s", path);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		p->fds[p->n_fds++] = fd;
		uint64_t v;
		int rc = fd < 0 ? -errno : msr_pread(fd, reg, &v);
		if (rc == 0 && i == 0) {
			uint64_t unit;
			rc = msr_pread(fd, unit_reg, &unit);
			p->esu =
			    fixed_esu > 0 ? (unsigned)fixed_esu : (unsigned)((unit >> 8) & 0x1f);
			p->esu_fixed = fixed_esu > 0;
		}
		if (rc < 0) {
			snprintf(why, len, "%s at 0x%X: %s", path, reg, strerror(-rc));
			msr_priv_free(p);
			return NULL;
		}
		p->last[i] = (uint32_t)v;
		counting |= (uint32_t)v != 0;
	}
	if (!counting) {
		snprintf(why, len, "register 0x%X reads 0: domain not implemented", reg);
		msr_priv_free(p);
		return NULL;
	}
	return p;
}

static int msr_open(const struct source_config *cfg, struct channel_set *set,
                    struct family_report *r)
{
	char why[400];
	const char *vendor = msr_vendor(cfg, why, sizeof(why));
	if (!vendor)
		return -ENODEV;
	bool amd = strcmp(vendor, "amd") == 0;
	const struct msr_domain *domains = amd ? amd_domains : intel_domains;
	size_t n_domains = amd ? sizeof(amd_domains) / sizeof(amd_domains[0])
	                       : sizeof(intel_domains) / sizeof(intel_domains[0]);
	uint32_t unit_reg = amd ? MSR_AMD_UNIT : MSR_INTEL_UNIT;
	bool dram_fixed = !amd && msr_dram_unit_fixed(cfg);

	struct source_cpu *cpus = calloc(MSR_CPUS_MAX, sizeof(*cpus));
	int *list = calloc(MSR_CPUS_MAX, sizeof(int));
	if (!cpus || !list) {
		free(cpus);
		free(list);
		return -ENOMEM;
	}
	int n = topology_cpus(cfg->sysfs_root, cpus, MSR_CPUS_MAX);
	int added = 0, skipped = 0;
	for (int i = 0; i < n; i++) {
		int pkg = cpus[i].package;
		if (!topology_first_of_package(cpus, i))
			continue;
		for (size_t d = 0; d < n_domains; d++) {
			const struct msr_domain *dom = &domains[d];
			char id[CHANNEL_ID_MAX];
			if (dom->system_wide) {
				if (i > 0)
					continue; /* read once, from the first package */
				snprintf(id, sizeof(id), "rapl:%s", dom->name);
			} else {
				snprintf(id, sizeof(id), "rapl:%s-%d", dom->name, pkg);
			}
			if (channel_set_has(set, id)) {
				skipped++;
				continue;
			}
			/* The CPUs to read: the package's first, or one per core for AMD cores. */
			int nl = 0;
			for (int j = i; j < n && nl < MSR_CPUS_MAX; j++) {
				if (cpus[j].package != pkg)
					continue;
				bool new_core = true;
				for (int k = i; k < j && dom->per_core; k++)
					new_core &= !(cpus[k].package == pkg &&
					              cpus[k].core == cpus[j].core);
				if (nl == 0 || (dom->per_core && new_core))
					list[nl++] = cpus[j].cpu;
			}
			why[0] = '\0';
			int fixed_esu =
			    dram_fixed && dom->reg == MSR_INTEL_DRAM ? MSR_DRAM_FIXED_ESU : 0;
			struct msr_priv *p = msr_open_domain(cfg, list, nl, unit_reg, dom->reg,
			                                     fixed_esu, why, sizeof(why));
			struct channel *ch = p ? channel_set_add(set, id) : NULL;
			if (!ch) {
				msr_priv_free(p);
				if (why[0] && strstr(why, "reads 0") == NULL)
					family_report_add(r, "; %s: %s", id, why);
				continue;
			}
			ch->priv = p;
			ch->kind = dom->kind;
			ch->package = dom->system_wide ? -1 : pkg;
			ch->reading = READING_ENERGY_UJ;
			ch->max_uj = 0; /* wraps are corrected in msr_read, in counts */
			snprintf(ch->label, sizeof(ch->label), dom->label, pkg);
			added++;
		}
	}
	free(cpus);
	free(list);
	if (added == 0 && skipped > 0) {
		r->status = FAMILY_SKIPPED;
		snprintf(r->detail, sizeof(r->detail),
		         "not needed: perf or powercap reads the same RAPL domains");
	}
	return added;
}

static int msr_read(struct channel *ch, uint64_t *value)
{
	struct msr_priv *p = ch->priv;
	uint32_t now[MSR_CPUS_MAX];
	for (int i = 0; i < p->n_fds; i++) {
		uint64_t v;
		int rc = msr_pread(p->fds[i], p->reg, &v);
		if (rc < 0) {
			snprintf(ch->read_error, sizeof(ch->read_error),
			         "reading MSR 0x%X of %s: %s", p->reg, p->path, strerror(-rc));
			return rc;
		}
		now[i] = (uint32_t)v;
	}
	/* All reads succeeded: account them (unsigned 32-bit subtraction undoes one wrap). */
	for (int i = 0; i < p->n_fds; i++) {
		p->units += (uint32_t)(now[i] - p->last[i]);
		p->last[i] = now[i];
	}
	*value = (uint64_t)(((unsigned __int128)p->units * 1000000u) >> p->esu);
	return 0;
}

static void msr_close(struct channel *ch)
{
	msr_priv_free(ch->priv);
	ch->priv = NULL;
}

static void msr_describe(const struct channel *ch, char *buf, size_t len)
{
	const struct msr_priv *p = ch->priv;
	if (!p) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf, len, "MSR 0x%X of %s%s (unit %.3f uJ%s, 32-bit counter)", p->reg, p->path,
	         p->n_fds > 1 ? " and the package's other cores" : "", 1e6 / (double)(1u << p->esu),
	         p->esu_fixed ? " fixed for this CPU model's DRAM" : "");
}

const struct source_family msr_rapl_family = {
    .name = "msr",
    .probe = msr_probe,
    .open = msr_open,
    .read = msr_read,
    .close = msr_close,
    .describe = msr_describe,
};
