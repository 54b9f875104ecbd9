/*
 * RAPL through the powercap sysfs interface (drivers/powercap/intel_rapl_*.c; AMD processors
 * appear under the same "intel-rapl" names).
 *
 *   <sysfs>/class/powercap/intel-rapl:N/          name = package-N | psys
 *   <sysfs>/class/powercap/intel-rapl:N:M/        name = core | uncore | dram
 *   <sysfs>/class/powercap/intel-rapl-mmio:N/     the package again, through MMIO: skipped
 *
 * Each zone has energy_uj (a counter that wraps) and max_energy_range_uj. We open energy_uj once
 * and pread it every tick: no path lookups in the hot loop, and reads keep working after energyd
 * drops root. Since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694, "Platypus").
 *
 * What a wrap is worth, from the kernel's definition (drivers/powercap/intel_rapl_common.c):
 * energy_uj is the 32-bit status register times the domain's unit, energy_uj = raw * u / 1000
 * with u = 10^9 / 2^ESU (the unit in nJ, e.g. 61035 for 2^-14 J; 15300 for the fixed DRAM unit
 * of Haswell-EP and later servers), and max_energy_range_uj is the same conversion of 0xFFFFFFFF.
 * The counter wraps after 2^32 units, which is max_energy_range_uj plus one unit (61 uJ), not
 * plus one microjoule. We recover u from max_energy_range_uj (the u with
 * floor((2^32 - 1) * u / 1000) = max) and count a wrap as 2^32 * u nJ. A range that no such u
 * gives is taken as a counter that shows 0..max microjoules, and a wrap as max + 1 uJ.
 *
 * The wraps are undone here (the channel is a 64-bit counter to the sampler): the total is the
 * reading plus the wraps seen converted at once, floor(wraps * 2^32 * u / 1000), so no
 * fraction of a microjoule is lost per wrap.
 */
#define _GNU_SOURCE
#include "source.h"
#include "energy_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POWERCAP_ZONES_MAX 64

struct powercap_zone {
	char dir[512]; /* zone directory */
	char name[64]; /* contents of "name" */
	int top;       /* N of intel-rapl:N */
	int sub;       /* M of intel-rapl:N:M, or -1 */
};

struct powercap_priv {
	int fd;
	char path[600];            /* the zone's energy_uj */
	uint64_t max_uj;           /* max_energy_range_uj */
	unsigned __int128 wrap_nj; /* what one wrap adds, in nJ */
	uint64_t unit_nj;          /* the RAPL unit recovered from the range, 0 if none */
	uint64_t last_uj;          /* last reading */
	uint64_t wraps;            /* wraps seen since open */
	bool have_last;
};

/* The RAPL unit u (nJ) with floor((2^32 - 1) * u / 1000) == max_uj, or 0 when there is none. */
static uint64_t powercap_rapl_unit(uint64_t max_uj)
{
	const unsigned __int128 all_ones = 0xFFFFFFFFu;
	uint64_t u0 = (uint64_t)((unsigned __int128)max_uj * 1000u / all_ones);
	for (uint64_t u = u0; u <= u0 + 1; u++)
		if (u > 0 && all_ones * u / 1000u == max_uj)
			return u;
	return 0;
}

static int zone_compare(const void *a, const void *b)
{
	const struct powercap_zone *za = a, *zb = b;
	if (za->top != zb->top)
		return za->top - zb->top;
	return za->sub - zb->sub;
}

struct powercap_scan {
	const char *base; /* <sysfs>/class/powercap */
	int mmio;         /* intel-rapl-mmio zones skipped */
};

/* A zone from directory entry name when it is an intel-rapl zone with a readable name. */
static bool powercap_take(const char *name, void *slot, void *ctx)
{
	struct powercap_scan *s = ctx;
	struct powercap_zone *z = slot;
	int top, sub, used = 0;
	if (strncmp(name, "intel-rapl-mmio:", 16) == 0) {
		s->mmio++;
		return false;
	}
	if (sscanf(name, "intel-rapl:%d:%d%n", &top, &sub, &used) == 2 && name[used] == '\0') {
		z->top = top;
		z->sub = sub;
	} else if (sscanf(name, "intel-rapl:%d%n", &top, &used) == 1 && name[used] == '\0') {
		z->top = top;
		z->sub = -1;
	} else {
		return false;
	}
	snprintf(z->dir, sizeof(z->dir), "%s/%s", s->base, name);
	char path[600];
	snprintf(path, sizeof(path), "%s/name", z->dir);
	return source_read_text(path, z->name, sizeof(z->name)) == 0;
}

/* List intel-rapl zones sorted by number; *mmio counts the skipped intel-rapl-mmio zones. */
static int powercap_scan(const char *sysfs_root, struct powercap_zone *zones, int max, int *mmio)
{
	char base[512];
	snprintf(base, sizeof(base), "%s/class/powercap", sysfs_root);
	struct powercap_scan s = {.base = base};
	int n = source_scan_dir(base, zones, sizeof(*zones), max, powercap_take, zone_compare, &s);
	*mmio = s.mmio;
	return n;
}

/* The package number of top-level zone N, from its "package-P" name; -1 for psys and others. */
static int zone_package(const struct powercap_zone *zones, int n, int top)
{
	for (int i = 0; i < n; i++) {
		int p;
		if (zones[i].top == top && zones[i].sub < 0 &&
		    sscanf(zones[i].name, "package-%d", &p) == 1)
			return p;
	}
	return -1;
}

/* Channel id and kind for a zone; false for zones we do not know. */
static bool zone_identify(const struct powercap_zone *zones, int n, const struct powercap_zone *z,
                          char *id, size_t len, enum channel_kind *kind, int *package)
{
	int p;
	*package = -1;
	if (z->sub < 0) {
		if (sscanf(z->name, "package-%d", &p) == 1) {
			snprintf(id, len, "rapl:package-%d", p);
			*kind = CHANNEL_PACKAGE;
			*package = p;
			return true;
		}
		if (strcmp(z->name, "psys") == 0) {
			snprintf(id, len, "rapl:psys");
			*kind = CHANNEL_PSYS;
			return true;
		}
		if (strncmp(z->name, "dram", 4) == 0) { /* a top-level dram zone (some servers) */
			snprintf(id, len, "rapl:dram-%d", z->top);
			*kind = CHANNEL_DRAM;
			*package = z->top;
			return true;
		}
		return false;
	}
	p = zone_package(zones, n, z->top);
	if (p < 0)
		return false;
	*package = p;
	if (strcmp(z->name, "core") == 0)
		*kind = CHANNEL_CORE;
	else if (strcmp(z->name, "uncore") == 0)
		*kind = CHANNEL_UNCORE;
	else if (strcmp(z->name, "dram") == 0)
		*kind = CHANNEL_DRAM;
	else
		return false;
	snprintf(id, len, "rapl:%s-%d", z->name, p);
	return true;
}

static const char *denied_hint =
    "energy_uj is readable by root only since Linux 5.10 (CVE-2020-8694); run energyd as root "
    "(it drops privileges after opening the sensors) or grant read access, e.g. a udev rule "
    "that runs 'chmod o+r' on /sys/class/powercap/intel-rapl:*/energy_uj";

static int powercap_probe(const struct source_config *cfg, struct family_report *r)
{
	struct powercap_zone zones[POWERCAP_ZONES_MAX];
	int mmio;
	int n = powercap_scan(cfg->sysfs_root, zones, POWERCAP_ZONES_MAX, &mmio);
	if (n == -EACCES || n == -EPERM) {
		r->status = FAMILY_DENIED;
		snprintf(r->detail, sizeof(r->detail),
		         "%s/class/powercap is not readable by this account (%s)", cfg->sysfs_root,
		         strerror(-n));
		return 0;
	}
	if (n <= 0) {
		r->status = FAMILY_ABSENT;
		snprintf(r->detail, sizeof(r->detail),
		         "no intel-rapl zones under %s/class/powercap: not an Intel/AMD CPU with "
		         "RAPL, a virtual machine, or the intel_rapl_common/intel_rapl_msr module "
		         "is not loaded (try 'modprobe intel_rapl_msr')",
		         cfg->sysfs_root);
		return 0;
	}
	int readable = 0, denied = 0;
	char first_denied[600] = "";
	for (int i = 0; i < n; i++) {
		char path[600];
		snprintf(path, sizeof(path), "%s/energy_uj", zones[i].dir);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		uint64_t v;
		if (fd >= 0 && energy_pread_u64(fd, &v) == 0) {
			readable++;
		} else if (fd < 0 && (errno == EACCES || errno == EPERM)) {
			if (!denied++)
				snprintf(first_denied, sizeof(first_denied), "%s", path);
		}
		if (fd >= 0)
			close(fd);
	}
	if (readable == 0 && denied > 0) {
		r->status = FAMILY_DENIED;
		snprintf(r->detail, sizeof(r->detail), "%d zone(s), permission denied on %s: %s", n,
		         first_denied, denied_hint);
		return 0;
	}
	r->status = FAMILY_FOUND;
	snprintf(r->detail, sizeof(r->detail), "%d zone(s) under %s/class/powercap%s", n,
	         cfg->sysfs_root, mmio ? "; intel-rapl-mmio skipped (duplicates the package)" : "");
	return readable;
}

static int powercap_open(const struct source_config *cfg, struct channel_set *set,
                         struct family_report *r)
{
	struct powercap_zone zones[POWERCAP_ZONES_MAX];
	int mmio;
	int n = powercap_scan(cfg->sysfs_root, zones, POWERCAP_ZONES_MAX, &mmio);
	if (n < 0)
		return n;
	int added = 0;
	for (int i = 0; i < n; i++) {
		char id[CHANNEL_ID_MAX], path[600];
		enum channel_kind kind;
		int package;
		if (!zone_identify(zones, n, &zones[i], id, sizeof(id), &kind, &package))
			continue;
		if (channel_set_has(set, id))
			continue; /* a preferred family reads this domain already */

		snprintf(path, sizeof(path), "%s/max_energy_range_uj", zones[i].dir);
		uint64_t max_uj = 0;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		int rc = fd < 0 ? -errno : energy_pread_u64(fd, &max_uj);
		if (fd >= 0)
			close(fd);
		if (rc < 0 || max_uj == 0) {
			/* Without the range a wrap cannot be told from a reset. */
			family_report_add(r, "; %s skipped: cannot read %s (%s)", id, path,
			                  rc < 0 ? strerror(-rc) : "zero");
			continue;
		}
		snprintf(path, sizeof(path), "%s/energy_uj", zones[i].dir);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			family_report_add(r, "; %s skipped: %s: %s", id, path, strerror(errno));
			continue;
		}
		struct channel *ch = channel_set_add_fd(set, id, fd, sizeof(struct powercap_priv));
		if (!ch)
			return added ? added : -ENOMEM;
		struct powercap_priv *priv = ch->priv;
		snprintf(priv->path, sizeof(priv->path), "%s", path);
		priv->max_uj = max_uj;
		priv->unit_nj = powercap_rapl_unit(max_uj);
		priv->wrap_nj = priv->unit_nj ? ((unsigned __int128)1 << 32) * priv->unit_nj
		                              : ((unsigned __int128)max_uj + 1) * 1000u;
		ch->kind = kind;
		ch->package = package;
		ch->reading = READING_ENERGY_UJ;
		ch->max_uj = 0; /* wraps are undone in powercap_read */
		switch (kind) {
		case CHANNEL_PACKAGE:
			snprintf(ch->label, sizeof(ch->label), "CPU package %d (RAPL)", package);
			break;
		case CHANNEL_CORE:
			snprintf(ch->label, sizeof(ch->label), "CPU cores of package %d (RAPL)",
			         package);
			break;
		case CHANNEL_UNCORE:
			snprintf(ch->label, sizeof(ch->label),
			         "Uncore / integrated GPU of package %d (RAPL)", package);
			break;
		case CHANNEL_DRAM:
			snprintf(ch->label, sizeof(ch->label), "Memory of package %d (RAPL)",
			         package);
			break;
		default:
			snprintf(ch->label, sizeof(ch->label), "Platform, whole SoC (RAPL psys)");
			break;
		}
		added++;
	}
	return added;
}

static int powercap_read(struct channel *ch, uint64_t *value)
{
	struct powercap_priv *priv = ch->priv;
	uint64_t now;
	int rc = energy_pread_u64(priv->fd, &now);
	if (rc < 0) {
		snprintf(ch->read_error, sizeof(ch->read_error), "reading %s: %s", priv->path,
		         rc == -EINVAL ? "not a number" : strerror(-rc));
		return rc;
	}
	if (now > priv->max_uj) {
		snprintf(ch->read_error, sizeof(ch->read_error),
		         "counter value %llu above max_energy_range_uj %llu: ignored",
		         (unsigned long long)now, (unsigned long long)priv->max_uj);
		return -ERANGE;
	}
	if (priv->have_last && now < priv->last_uj)
		priv->wraps++; /* polled often enough that at most one wrap happens in between */
	priv->have_last = true;
	priv->last_uj = now;
	*value = now + (uint64_t)(priv->wraps * priv->wrap_nj / 1000u);
	return 0;
}

static void powercap_describe(const struct channel *ch, char *buf, size_t len)
{
	const struct powercap_priv *priv = ch->priv;
	if (!priv) {
		snprintf(buf, len, "?");
		return;
	}
	if (priv->unit_nj)
		snprintf(buf, len, "%s (wraps after 2^32 units of %llu nJ, %.3f J)", priv->path,
		         (unsigned long long)priv->unit_nj, (double)priv->wrap_nj / 1e9);
	else
		snprintf(buf, len, "%s (wraps after %.3f J)", priv->path,
		         (double)priv->wrap_nj / 1e9);
}

const struct source_family powercap_family = {
    .name = "powercap",
    .probe = powercap_probe,
    .open = powercap_open,
    .read = powercap_read,
    .close = source_close_fd_priv,
    .describe = powercap_describe,
};
