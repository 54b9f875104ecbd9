/*
 * hwmon energy and power sensors (Documentation/hwmon/sysfs-interface.rst):
 *
 *   <sysfs>/class/hwmon/hwmonK/name             driver name, e.g. "amdgpu"
 *   <sysfs>/class/hwmon/hwmonK/energyN_input    cumulative energy in microjoules
 *   <sysfs>/class/hwmon/hwmonK/powerN_average   average power in microwatts
 *   <sysfs>/class/hwmon/hwmonK/powerN_input     instantaneous power in microwatts
 *   <sysfs>/class/hwmon/hwmonK/{energy,power}N_label   optional sensor label
 *
 * A device with energy counters is read through them only (its power files often measure the
 * same rail); otherwise each powerN is integrated, preferring powerN_average, which the driver
 * already averages, to powerN_input. Channels are hwmon:<name>-<k>, k counting the sensors of
 * devices with that name in hwmon order, so the first amdgpu's power is hwmon:amdgpu-0.
 *
 * hwmon channels are of kind "device" and are not added to the host total: an amdgpu sensor may
 * be an APU's integrated GPU, already inside the CPU package, and counting it twice would be
 * worse than leaving it out (the coverage shows what the total is made of).
 */
#define _GNU_SOURCE
#include "source.h"
#include "energy_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HWMON_SENSORS_MAX 32

struct hwmon_priv {
	int fd;
	char path[600]; /* the file read */
};

struct hwmon_sensor {
	int n;       /* N of energyN_input / powerN_input */
	bool energy; /* energyN_input, else power */
	char file[32];
};

static int hwmon_filter(const struct dirent *de)
{
	return strncmp(de->d_name, "hwmon", 5) == 0;
}

static int sensor_compare(const void *a, const void *b)
{
	return ((const struct hwmon_sensor *)a)->n - ((const struct hwmon_sensor *)b)->n;
}

/* The sensors of one hwmon directory that we read, sorted by number. */
static int hwmon_sensors(const char *dir, struct hwmon_sensor *s, int max)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int n_energy = 0, n = 0;
	struct hwmon_sensor power[HWMON_SENSORS_MAX];
	int n_power = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		int num, used = 0;
		if (sscanf(de->d_name, "energy%d_input%n", &num, &used) == 1 &&
		    de->d_name[used] == '\0' && n < max) {
			s[n].n = num;
			s[n].energy = true;
			snprintf(s[n].file, sizeof(s[n].file), "%s", de->d_name);
			n++, n_energy++;
		} else if (((sscanf(de->d_name, "power%d_average%n", &num, &used) == 1 &&
		             de->d_name[used] == '\0') ||
		            (sscanf(de->d_name, "power%d_input%n", &num, &used) == 1 &&
		             de->d_name[used] == '\0')) &&
		           n_power < HWMON_SENSORS_MAX) {
			bool average = strstr(de->d_name, "_average") != NULL;
			int k;
			for (k = 0; k < n_power && power[k].n != num; k++)
				;
			if (k == n_power) {
				n_power++;
			} else if (!average) {
				continue; /* powerN_average seen already: keep it */
			}
			power[k].n = num;
			power[k].energy = false;
			snprintf(power[k].file, sizeof(power[k].file), "%s", de->d_name);
		}
	}
	closedir(d);
	if (n_energy == 0) {
		for (int k = 0; k < n_power && n < max; k++)
			s[n++] = power[k];
	}
	qsort(s, (size_t)n, sizeof(*s), sensor_compare);
	return n;
}

static int hwmon_list(const char *sysfs_root, char *base, size_t len, struct dirent ***list)
{
	snprintf(base, len, "%s/class/hwmon", sysfs_root);
	int n = scandir(base, list, hwmon_filter, versionsort);
	return n < 0 ? -errno : n;
}

/* Walk every sensor: fn(ctx, dir, name, sensor). Returns the number of sensors or -errno. */
static int hwmon_walk(const char *sysfs_root,
                      void (*fn)(void *ctx, const char *dir, const char *name,
                                 const struct hwmon_sensor *s),
                      void *ctx)
{
	char base[520];
	struct dirent **list;
	int n = hwmon_list(sysfs_root, base, sizeof(base), &list);
	if (n < 0)
		return n;
	int total = 0;
	for (int i = 0; i < n; i++) {
		char dir[800], path[850], name[64];
		snprintf(dir, sizeof(dir), "%s/%s", base, list[i]->d_name);
		snprintf(path, sizeof(path), "%s/name", dir);
		if (source_read_text(path, name, sizeof(name)) < 0 || !name[0])
			snprintf(name, sizeof(name), "%s", list[i]->d_name);
		struct hwmon_sensor s[HWMON_SENSORS_MAX];
		int ns = hwmon_sensors(dir, s, HWMON_SENSORS_MAX);
		for (int k = 0; k < ns; k++) {
			if (fn)
				fn(ctx, dir, name, &s[k]);
			total++;
		}
		free(list[i]);
	}
	free(list);
	return total;
}

static int hwmon_probe(const struct source_config *cfg, struct family_report *r)
{
	int n = hwmon_walk(cfg->sysfs_root, NULL, NULL);
	if (n == -EACCES || n == -EPERM) {
		r->status = FAMILY_DENIED;
		snprintf(r->detail, sizeof(r->detail), "%s/class/hwmon is not readable (%s)",
		         cfg->sysfs_root, strerror(-n));
		return 0;
	}
	if (n <= 0) {
		r->status = FAMILY_ABSENT;
		snprintf(
		    r->detail, sizeof(r->detail),
		    "no hwmon device under %s/class/hwmon with energyN_input or powerN_average/"
		    "powerN_input: such sensors come from GPU drivers (amdgpu) and some "
		    "platform drivers; load the device's driver if it has one",
		    cfg->sysfs_root);
		return 0;
	}
	r->status = FAMILY_FOUND;
	snprintf(r->detail, sizeof(r->detail), "%d sensor(s) under %s/class/hwmon", n,
	         cfg->sysfs_root);
	return n;
}

struct hwmon_open_ctx {
	struct channel_set *set;
	struct family_report *r;
	int added;
	char names[HWMON_SENSORS_MAX][64]; /* chip names seen, and how many of each (ids) */
	int counts[HWMON_SENSORS_MAX];
	int n_names;
};

static int name_index(struct hwmon_open_ctx *c, const char *name)
{
	for (int i = 0; i < c->n_names; i++)
		if (strcmp(c->names[i], name) == 0)
			return c->counts[i]++;
	if (c->n_names < HWMON_SENSORS_MAX) {
		snprintf(c->names[c->n_names], sizeof(c->names[0]), "%s", name);
		c->counts[c->n_names++] = 1;
	}
	return 0;
}

static void hwmon_open_one(void *ctx, const char *dir, const char *name,
                           const struct hwmon_sensor *s)
{
	struct hwmon_open_ctx *c = ctx;
	char id[CHANNEL_ID_MAX], path[850], label[64] = "";
	snprintf(id, sizeof(id), "hwmon:%s-%d", name, name_index(c, name));
	snprintf(path, sizeof(path), "%s/%s%d_label", dir, s->energy ? "energy" : "power", s->n);
	source_read_text(path, label, sizeof(label));
	snprintf(path, sizeof(path), "%s/%s", dir, s->file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		family_report_add(c->r, "; %s: %s", path, strerror(errno));
		return;
	}
	struct channel *ch = channel_set_add_fd(c->set, id, fd, sizeof(struct hwmon_priv));
	if (!ch) {
		family_report_add(c->r, "; %s skipped: %s", id, "no room for more channels");
		return;
	}
	struct hwmon_priv *priv = ch->priv;
	snprintf(priv->path, sizeof(priv->path), "%s", path);
	ch->kind = CHANNEL_DEVICE;
	ch->reading = s->energy ? READING_ENERGY_UJ : READING_POWER_UW;
	ch->max_uj = 0; /* hwmon energy counters are 64-bit and do not wrap in practice */
	snprintf(ch->label, sizeof(ch->label), "%s %s (hwmon)", name,
	         label[0] ? label : (s->energy ? "energy" : "power"));
	c->added++;
}

static int hwmon_open(const struct source_config *cfg, struct channel_set *set,
                      struct family_report *r)
{
	struct hwmon_open_ctx c = {.set = set, .r = r};
	int n = hwmon_walk(cfg->sysfs_root, hwmon_open_one, &c);
	return n < 0 ? n : c.added;
}

static int hwmon_read(struct channel *ch, uint64_t *value)
{
	struct hwmon_priv *priv = ch->priv;
	int rc = energy_pread_u64(priv->fd, value);
	if (rc < 0)
		snprintf(ch->read_error, sizeof(ch->read_error), "reading %s: %s", priv->path,
		         rc == -EINVAL ? "not a number" : strerror(-rc));
	return rc;
}

static void hwmon_describe(const struct channel *ch, char *buf, size_t len)
{
	const struct hwmon_priv *priv = ch->priv;
	snprintf(buf, len, "%s (%s; not part of the host total)", priv ? priv->path : "?",
	         ch->reading == READING_ENERGY_UJ ? "energy counter, uJ"
	                                          : "power in uW, integrated over time");
}

const struct source_family hwmon_family = {
    .name = "hwmon",
    .probe = hwmon_probe,
    .open = hwmon_open,
    .read = hwmon_read,
    .close = source_close_fd_priv,
    .describe = hwmon_describe,
};
