/*
 * Battery discharge (Documentation/ABI/testing/sysfs-class-power):
 *
 *   <sysfs>/class/power_supply/BATn/status        "Discharging", "Charging", "Full", ...
 *   <sysfs>/class/power_supply/BATn/power_now     microwatts, or else
 *   <sysfs>/class/power_supply/BATn/current_now   microamps  x  voltage_now  microvolts
 *
 * While a laptop runs on battery, the battery feeds the whole machine, so its discharge power is
 * a measurement of everything (display, disks, Wi-Fi included) for free. The channel counts
 * energy only while status is "Discharging"; otherwise it reads 0 W, because the power then
 * flows into the battery and says nothing about what the machine uses. Some drivers report
 * current with a sign (negative while discharging): the magnitude is used.
 */
#define _GNU_SOURCE
#include "energy_util.h"
#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct battery_priv {
	int status_fd;  /* "status": Discharging, Charging, Full */
	int power_fd;   /* power_now, or -1 */
	int current_fd; /* current_now and voltage_now when there is no power_now */
	int voltage_fd; /* voltage_now, with current_fd, or -1 */
	char dir[560];  /* the power_supply directory */
};

static int battery_filter(const struct dirent *de)
{
	return strncmp(de->d_name, "BAT", 3) == 0;
}

static int battery_list(const char *sysfs_root, char *base, size_t len, struct dirent ***list)
{
	snprintf(base, len, "%s/class/power_supply", sysfs_root);
	int n = scandir(base, list, battery_filter, versionsort);
	return n < 0 ? -errno : n;
}

static bool battery_has(const char *dir, const char *file)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

/* A battery we can read: a status file and power_now or current_now + voltage_now. */
static bool battery_usable(const char *dir)
{
	return battery_has(dir, "status") &&
	       (battery_has(dir, "power_now") ||
	        (battery_has(dir, "current_now") && battery_has(dir, "voltage_now")));
}

static int battery_probe(const struct source_config *cfg, struct family_report *r)
{
	char base[520];
	struct dirent **list;
	int n = battery_list(cfg->sysfs_root, base, sizeof(base), &list);
	int usable = 0, unusable = 0;
	for (int i = 0; i < n; i++) {
		char dir[800];
		snprintf(dir, sizeof(dir), "%s/%s", base, list[i]->d_name);
		if (battery_usable(dir))
			usable++;
		else
			unusable++;
		free(list[i]);
	}
	if (n >= 0)
		free(list);
	if (usable == 0) {
		r->status = FAMILY_ABSENT;
		if (unusable)
			snprintf(r->detail, sizeof(r->detail),
			         "%d battery(ies) under %s/class/power_supply but none reports "
			         "power_now or current_now and voltage_now",
			         unusable, cfg->sysfs_root);
		else
			snprintf(r->detail, sizeof(r->detail),
			         "no BAT* under %s/class/power_supply: not a laptop (or a virtual "
			         "machine without a battery)",
			         cfg->sysfs_root);
		return 0;
	}
	r->status = FAMILY_FOUND;
	snprintf(r->detail, sizeof(r->detail),
	         "%d battery(ies) under %s/class/power_supply: energy is counted while "
	         "discharging",
	         usable, cfg->sysfs_root);
	return usable;
}

static int open_attr(const char *dir, const char *file)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static void battery_free(struct battery_priv *p)
{
	int fds[] = {p->status_fd, p->power_fd, p->current_fd, p->voltage_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(p);
}

static int battery_open(const struct source_config *cfg, struct channel_set *set,
                        struct family_report *r)
{
	char base[520];
	struct dirent **list;
	int n = battery_list(cfg->sysfs_root, base, sizeof(base), &list);
	if (n < 0)
		return n;
	int added = 0;
	for (int i = 0; i < n; i++) {
		char dir[800], id[CHANNEL_ID_MAX], name[48];
		snprintf(name, sizeof(name), "%s", list[i]->d_name);
		snprintf(dir, sizeof(dir), "%s/%s", base, name);
		snprintf(id, sizeof(id), "battery:%s", name);
		free(list[i]);
		if (!battery_usable(dir))
			continue;
		struct battery_priv *p = calloc(1, sizeof(*p));
		if (!p)
			continue;
		snprintf(p->dir, sizeof(p->dir), "%s", dir);
		p->status_fd = open_attr(dir, "status");
		p->power_fd = battery_has(dir, "power_now") ? open_attr(dir, "power_now") : -1;
		p->current_fd = p->power_fd < 0 ? open_attr(dir, "current_now") : -1;
		p->voltage_fd = p->power_fd < 0 ? open_attr(dir, "voltage_now") : -1;
		struct channel *ch = NULL;
		if (p->status_fd >= 0 &&
		    (p->power_fd >= 0 || (p->current_fd >= 0 && p->voltage_fd >= 0)))
			ch = channel_set_add(set, id);
		else
			family_report_add(r, "; %s: cannot open its attributes: %s", dir,
			                  strerror(errno));
		if (!ch) {
			battery_free(p);
			continue;
		}
		ch->priv = p;
		ch->kind = CHANNEL_BATTERY;
		ch->reading = READING_POWER_UW;
		snprintf(ch->label, sizeof(ch->label),
		         "Battery %s discharge (the whole machine while on battery)", name);
		added++;
	}
	free(list);
	return added;
}

/* A signed decimal attribute through an open descriptor; the magnitude is returned. */
static int read_abs(int fd, uint64_t *out)
{
	char buf[64];
	int rc = energy_pread_text(fd, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (end == buf || (*end && *end != '\n' && *end != ' '))
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*out = (uint64_t)(v < 0 ? -v : v);
	return 0;
}

static int battery_read(struct channel *ch, uint64_t *value)
{
	struct battery_priv *p = ch->priv;
	char status[32];
	int n = energy_pread_text(p->status_fd, status, sizeof(status));
	if (n < 0) {
		snprintf(ch->read_error, sizeof(ch->read_error), "reading %s/status: %s", p->dir,
		         n == -EIO ? "empty" : strerror(-n));
		return n;
	}
	status[strcspn(status, "\n")] = '\0';
	if (strcmp(status, "Discharging") != 0) {
		*value = 0; /* charging, full or on AC: nothing drawn from the battery */
		return 0;
	}
	int rc;
	const char *what;
	if (p->power_fd >= 0) {
		what = "power_now";
		rc = read_abs(p->power_fd, value);
	} else {
		uint64_t ua, uv;
		what = "current_now/voltage_now";
		rc = read_abs(p->current_fd, &ua);
		if (rc == 0)
			rc = read_abs(p->voltage_fd, &uv);
		if (rc == 0) /* uA x uV = 1e-12 W; / 1e6 gives uW */
			*value = (uint64_t)((unsigned __int128)ua * uv / 1000000u);
	}
	if (rc < 0)
		snprintf(ch->read_error, sizeof(ch->read_error), "reading %s/%s: %s", p->dir, what,
		         rc == -EINVAL ? "not a number" : strerror(-rc));
	return rc;
}

static void battery_close(struct channel *ch)
{
	if (ch->priv)
		battery_free(ch->priv);
	ch->priv = NULL;
}

static void battery_describe(const struct channel *ch, char *buf, size_t len)
{
	const struct battery_priv *p = ch->priv;
	snprintf(buf, len, "%s/%s while status is Discharging, else 0 W", p ? p->dir : "?",
	         p && p->power_fd >= 0 ? "power_now" : "current_now x voltage_now");
}

const struct source_family battery_family = {
    .name = "battery",
    .probe = battery_probe,
    .open = battery_open,
    .read = battery_read,
    .close = battery_close,
    .describe = battery_describe,
};
