/*
 * The list of sensor families and the helpers they share. Families are probed in order of
 * preference: when two families see the same domain (perf and powercap both read package 0), the
 * first one to open a channel id owns it and later ones skip that id, so nothing is counted twice.
 */
#define _GNU_SOURCE
#include "energy_util.h"
#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const struct source_family perf_rapl_family;
extern const struct source_family powercap_family;
extern const struct source_family msr_rapl_family;
extern const struct source_family mcp_family;
extern const struct source_family nvml_family;
extern const struct source_family hwmon_family;
extern const struct source_family battery_family;
extern const struct source_family model_cpu_family;

const struct source_family *const source_families[] = {
    &perf_rapl_family, /* before powercap: the same RAPL domains, read by the kernel's PMU */
    &powercap_family,
    &msr_rapl_family, /* RAPL domains neither perf nor powercap could open */
    &mcp_family,
    &nvml_family,
    &hwmon_family,
    &battery_family,
    &model_cpu_family, /* last: only where nothing measures the CPU */
    NULL,
};

struct channel *channel_set_add(struct channel_set *set, const char *id)
{
	if (set->n >= CHANNELS_MAX || channel_set_has(set, id))
		return NULL;
	struct channel *ch = &set->ch[set->n++];
	memset(ch, 0, sizeof(*ch));
	snprintf(ch->id, sizeof(ch->id), "%s", id);
	ch->package = -1;
	ch->measured = true;
	return ch;
}

bool channel_set_has(const struct channel_set *set, const char *id)
{
	for (int i = 0; i < set->n; i++)
		if (strcmp(set->ch[i].id, id) == 0)
			return true;
	return false;
}

void channel_add_include(struct channel *ch, const char *id)
{
	if (ch->n_includes < CHANNEL_INCLUDES_MAX)
		snprintf(ch->includes[ch->n_includes++], CHANNEL_ID_MAX, "%s", id);
}

static void channels_derive_includes(struct channel_set *set);

int sources_open_all(const struct source_config *cfg, struct channel_set *set,
                     struct family_report *reports, int max_reports)
{
	int n = 0;
	for (int i = 0; source_families[i] && n < max_reports; i++) {
		const struct source_family *f = source_families[i];
		struct family_report *r = &reports[n++];
		memset(r, 0, sizeof(*r));
		r->name = f->name;
		int found = f->probe(cfg, r);
		if (found <= 0)
			continue;
		int before = set->n;
		int rc = f->open(cfg, set, r);
		if (rc < 0 && set->n == before && r->status == FAMILY_FOUND)
			r->status = FAMILY_ERROR;
		for (int c = before; c < set->n; c++) {
			set->ch[c].family = f;
			/* The configured host meter (a wall meter feeding this machine) is marked
			 * at once: later families (the CPU model) and the includes depend on it. */
			if (cfg->host_meter && strcmp(set->ch[c].id, cfg->host_meter) == 0)
				set->ch[c].host_meter = true;
		}
	}
	channels_derive_includes(set);
	return n;
}

/*
 * What each channel's energy covers, from the RAPL domain hierarchy (core and uncore inside their
 * package, everything CPU-side inside psys) and from the wall meter (everything). Families that
 * know better fill includes themselves; those channels are left alone.
 */
static void channels_derive_includes(struct channel_set *set)
{
	for (int i = 0; i < set->n; i++) {
		struct channel *ch = &set->ch[i];
		if (ch->n_includes > 0)
			continue;
		for (int j = 0; j < set->n; j++) {
			const struct channel *o = &set->ch[j];
			bool inc = false;
			if (i == j)
				continue;
			switch (ch->kind) {
			case CHANNEL_PACKAGE:
				inc = (o->kind == CHANNEL_CORE || o->kind == CHANNEL_UNCORE) &&
				      o->package == ch->package;
				break;
			case CHANNEL_PSYS:
				inc = o->kind == CHANNEL_PACKAGE || o->kind == CHANNEL_CORE ||
				      o->kind == CHANNEL_UNCORE || o->kind == CHANNEL_DRAM;
				break;
			case CHANNEL_WALL:
			case CHANNEL_BATTERY:
				inc = ch->host_meter && o->measured && !o->host_meter;
				break;
			default:
				break;
			}
			if (inc)
				channel_add_include(ch, o->id);
		}
	}
}

void sources_close_all(struct channel_set *set)
{
	for (int i = 0; i < set->n; i++)
		if (set->ch[i].family && set->ch[i].family->close)
			set->ch[i].family->close(&set->ch[i]);
	set->n = 0;
}

const char *channel_kind_name(enum channel_kind kind)
{
	static const char *const names[] = {
	    [CHANNEL_PACKAGE] = "package", [CHANNEL_CORE] = "core",
	    [CHANNEL_UNCORE] = "uncore",   [CHANNEL_DRAM] = "dram",
	    [CHANNEL_PSYS] = "psys",       [CHANNEL_GPU] = "gpu",
	    [CHANNEL_WALL] = "wall",       [CHANNEL_BATTERY] = "battery",
	    [CHANNEL_DEVICE] = "device",   [CHANNEL_MODEL] = "model",
	    [CHANNEL_REST] = "rest"};
	return (size_t)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "unknown";
}

const char *channel_status_name(enum channel_status status)
{
	return status == CHANNEL_OK ? "ok" : "degraded";
}

const char *family_status_name(enum family_status status)
{
	static const char *const names[] = {[FAMILY_FOUND] = "found",
	                                    [FAMILY_ABSENT] = "absent",
	                                    [FAMILY_DENIED] = "denied",
	                                    [FAMILY_ERROR] = "error",
	                                    [FAMILY_SKIPPED] = "skipped"};
	return (size_t)status < sizeof(names) / sizeof(names[0]) ? names[status] : "unknown";
}

int source_read_text(const char *path, char *buf, size_t len)
{
	int rc = energy_read_text_at(AT_FDCWD, path, buf, len, true);
	if (rc < 0)
		return rc;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int source_scan_dir(const char *dir, void *table, size_t size, int max,
                    bool (*take)(const char *name, void *slot, void *ctx),
                    int (*cmp)(const void *, const void *), void *ctx)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *de;
	while (n < max && (de = readdir(d)))
		n += take(de->d_name, (char *)table + (size_t)n * size, ctx);
	closedir(d);
	qsort(table, (size_t)n, size, cmp);
	return n;
}

struct channel *channel_set_add_fd(struct channel_set *set, const char *id, int fd, size_t size)
{
	int *priv = size >= sizeof(int) ? calloc(1, size) : NULL;
	struct channel *ch = priv ? channel_set_add(set, id) : NULL;
	if (!ch) {
		free(priv);
		close(fd);
		return NULL;
	}
	*priv = fd; /* the first member of the family's priv */
	ch->priv = priv;
	return ch;
}

void source_close_fd_priv(struct channel *ch)
{
	int *fd = ch->priv; /* the first member of the family's priv */
	if (!fd)
		return;
	close(*fd);
	free(ch->priv);
	ch->priv = NULL;
}

void family_report_add(struct family_report *r, const char *fmt, ...)
{
	size_t used = strlen(r->detail);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->detail + used, sizeof(r->detail) - used, fmt, ap);
	va_end(ap);
}
