/*
 * The CPU utilisation model, for machines where nothing measures the CPU (virtual machines,
 * RAPL not readable, ARM without sensors). It is an estimate and always says so.
 *
 *   watts = idle_watts + (max_watts - idle_watts) * utilisation
 *
 * utilisation is the busy share of all CPU time in <proc>/stat between two ticks. The defaults
 * scale with the number of logical CPUs: 0.74 W idle and 3.5 W at full load per CPU, the average
 * minimum and maximum watts per vCPU that the Cloud Carbon Footprint methodology derives from
 * SPECpower results for the processors of AWS (docs/model.md). Both are configurable as machine
 * totals (--model-idle-watts, --model-max-watts). energyd replaces the defaults (not configured
 * values) with its own fit to RAPL or a wall meter when one is stored (model_cpu_use_fit,
 * docs/model.md "Calibration").
 *
 * The model produces its own energy counter (no wrap), integrating the modelled power over
 * monotonic time, so the sampler treats it like any other counter.
 */
#define _GNU_SOURCE
#include "source.h"
#include "energy_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODEL_IDLE_WATTS_PER_CPU 0.74
#define MODEL_MAX_WATTS_PER_CPU  3.5

struct model_priv {
	int fd;
	char path[520];                       /* <proc>/stat */
	double idle_watts, max_watts;         /* the model: power at 0 and at 100 % utilisation */
	bool idle_configured, max_configured; /* set by configuration (a stored fit yields) */
	int ncpu;                             /* cpuN lines in /proc/stat */
	char calibration[512];                /* "calibrated on this machine on DATE, ..." or "" */
	bool rest;                            /* model:rest (model_rest_add), not model:cpu */
	bool have_last;                       /* last_* hold a reading */
	/* The last reading's busy and total jiffies, and when it was taken (monotonic ns). */
	uint64_t last_busy, last_total, last_ns;
	double utilisation; /* busy / total over the last interval that moved */
	double energy_uj;   /* the model's own counter */
};

/* Busy and total jiffies of the "cpu" line, and the number of "cpuN" lines. */
int model_cpu_parse_stat(const char *text, uint64_t *busy, uint64_t *total, int *ncpu)
{
	uint64_t v[10] = {0};
	int n = sscanf(text,
	               "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
	               " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
	               &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
	if (n < 4)
		return -EINVAL;
	/* user nice system idle iowait irq softirq steal; guest time is inside user already. */
	uint64_t idle = v[3] + v[4];
	*busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
	*total = *busy + idle;
	if (ncpu) {
		int cpus = 0;
		for (const char *p = strstr(text, "\ncpu"); p; p = strstr(p + 1, "\ncpu"))
			if (p[4] >= '0' && p[4] <= '9')
				cpus++;
		*ncpu = cpus;
	}
	return 0;
}

static int model_read_stat(int fd, uint64_t *busy, uint64_t *total, int *ncpu)
{
	char buf[16384];
	int rc = energy_pread_text(fd, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	return model_cpu_parse_stat(buf, busy, total, ncpu);
}

static int model_probe(const struct source_config *cfg, struct family_report *r)
{
	char path[520];
	snprintf(path, sizeof(path), "%s/stat", cfg->proc_root);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t busy, total;
	int rc = fd < 0 ? -errno : model_read_stat(fd, &busy, &total, NULL);
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		r->status = FAMILY_ERROR;
		snprintf(r->detail, sizeof(r->detail), "cannot use %s: %s", path, strerror(-rc));
		return 0;
	}
	r->status = FAMILY_FOUND;
	return 1;
}

static int model_open(const struct source_config *cfg, struct channel_set *set,
                      struct family_report *r)
{
	/* The model stands in for the CPU only where no measured channel covers it. */
	for (int i = 0; i < set->n; i++) {
		enum channel_kind k = set->ch[i].kind;
		/* A wall meter or battery counts only when it feeds this machine (--host-meter). */
		bool whole = (k == CHANNEL_WALL || k == CHANNEL_BATTERY) && set->ch[i].host_meter;
		if (set->ch[i].measured &&
		    (k == CHANNEL_PACKAGE || k == CHANNEL_PSYS || k == CHANNEL_CORE || whole)) {
			r->status = FAMILY_SKIPPED;
			snprintf(r->detail, sizeof(r->detail),
			         "not needed: %s measures the CPU (the model is used only where "
			         "nothing does)",
			         set->ch[i].id);
			return 0;
		}
	}
	struct model_priv *priv = calloc(1, sizeof(*priv));
	if (!priv)
		return -ENOMEM;
	snprintf(priv->path, sizeof(priv->path), "%s/stat", cfg->proc_root);
	priv->fd = open(priv->path, O_RDONLY | O_CLOEXEC);
	uint64_t busy, total;
	int ncpu = 0;
	int rc = priv->fd < 0 ? -errno : model_read_stat(priv->fd, &busy, &total, &ncpu);
	if (rc < 0) {
		if (priv->fd >= 0)
			close(priv->fd);
		free(priv);
		r->status = FAMILY_ERROR;
		return rc;
	}
	if (ncpu < 1)
		ncpu = 1;
	priv->ncpu = ncpu;
	priv->idle_configured = cfg->model_idle_watts > 0;
	priv->max_configured = cfg->model_max_watts > 0;
	priv->idle_watts =
	    cfg->model_idle_watts > 0 ? cfg->model_idle_watts : MODEL_IDLE_WATTS_PER_CPU * ncpu;
	priv->max_watts =
	    cfg->model_max_watts > 0 ? cfg->model_max_watts : MODEL_MAX_WATTS_PER_CPU * ncpu;
	if (priv->max_watts < priv->idle_watts)
		priv->max_watts = priv->idle_watts;
	struct channel *ch = channel_set_add(set, "model:cpu");
	if (!ch) {
		close(priv->fd);
		free(priv);
		return -ENOSPC;
	}
	ch->priv = priv;
	ch->kind = CHANNEL_MODEL;
	ch->measured = false;
	ch->reading = READING_ENERGY_UJ;
	ch->max_uj = 0;
	snprintf(ch->label, sizeof(ch->label), "CPU (estimated from utilisation, %.1f-%.1f W)",
	         priv->idle_watts, priv->max_watts);
	snprintf(r->detail, sizeof(r->detail),
	         "estimated: %.2f W idle to %.2f W at full load over %d CPU(s) from %s%s",
	         priv->idle_watts, priv->max_watts, ncpu, priv->path,
	         cfg->model_idle_watts > 0 || cfg->model_max_watts > 0
	             ? " (configured)"
	             : " (defaults: 0.74 W and 3.5 W per CPU, Cloud Carbon Footprint)");
	return 1;
}

static int model_read(struct channel *ch, uint64_t *value)
{
	struct model_priv *p = ch->priv;
	uint64_t busy, total, now = energy_monotonic_ns();
	int rc = model_read_stat(p->fd, &busy, &total, NULL);
	if (rc < 0) {
		snprintf(ch->read_error, sizeof(ch->read_error), "reading %s: %s", p->path,
		         strerror(-rc));
		return rc;
	}
	if (p->have_last) {
		if (busy < p->last_busy || total < p->last_total) {
			snprintf(ch->read_error, sizeof(ch->read_error), "%s went backwards",
			         p->path);
			p->last_busy = busy;
			p->last_total = total;
			p->last_ns = now;
			return -ERANGE;
		}
		/* Below one jiffy apart nothing changed: keep the last utilisation. */
		if (total > p->last_total)
			p->utilisation =
			    (double)(busy - p->last_busy) / (double)(total - p->last_total);
		double watts = p->idle_watts + (p->max_watts - p->idle_watts) * p->utilisation;
		p->energy_uj += watts * (double)(now - p->last_ns) / 1e3;
	}
	p->have_last = true;
	p->last_busy = busy;
	p->last_total = total;
	p->last_ns = now;
	*value = (uint64_t)p->energy_uj;
	return 0;
}

static void model_describe(const struct channel *ch, char *buf, size_t len)
{
	const struct model_priv *p = ch->priv;
	snprintf(buf, len, "estimated%s: %.2f W + (%.2f W - %.2f W) x CPU utilisation from %s%s%s",
	         p->rest ? " (the rest of the machine beside the measured CPU packages, dram and "
	                   "GPUs; not part of the host total)"
	                 : "",
	         p->idle_watts, p->max_watts, p->idle_watts, p->path, p->calibration[0] ? "; " : "",
	         p->calibration);
}

struct channel *model_rest_add(struct channel_set *set, int stat_fd, const char *stat_path,
                               double idle_watts, double max_watts, const char *note)
{
	struct channel *ch =
	    channel_set_add_fd(set, "model:rest", stat_fd, sizeof(struct model_priv));
	if (!ch)
		return NULL;
	struct model_priv *p = ch->priv;
	snprintf(p->path, sizeof(p->path), "%s", stat_path);
	p->idle_watts = idle_watts;
	p->max_watts = max_watts > idle_watts ? max_watts : idle_watts;
	p->idle_configured = p->max_configured = true; /* a fit of its own, not model:cpu's */
	p->rest = true;
	snprintf(p->calibration, sizeof(p->calibration), "%s", note);
	ch->kind = CHANNEL_REST;
	ch->measured = false;
	ch->reading = READING_ENERGY_UJ;
	ch->max_uj = 0;
	ch->family = &model_cpu_family;
	snprintf(ch->label, sizeof(ch->label),
	         "Rest of the machine (estimated from utilisation, calibrated here: %.1f-%.1f W)",
	         p->idle_watts, p->max_watts);
	return ch;
}

int model_cpu_use_fit(struct channel *ch, double idle_watts, double max_watts, const char *note,
                      char *detail, size_t len)
{
	if (!ch || ch->family != &model_cpu_family || !ch->priv)
		return -EINVAL;
	struct model_priv *p = ch->priv;
	if (p->idle_configured && p->max_configured) {
		snprintf(detail, len,
		         "estimated: %.2f W idle to %.2f W at full load over %d CPU(s) from %s "
		         "(configured; overrides the calibration: %s)",
		         p->idle_watts, p->max_watts, p->ncpu, p->path, note);
		return 0;
	}
	if (!p->idle_configured)
		p->idle_watts = idle_watts;
	if (!p->max_configured)
		p->max_watts = max_watts;
	if (p->max_watts < p->idle_watts)
		p->max_watts = p->idle_watts;
	snprintf(p->calibration, sizeof(p->calibration), "%s", note);
	snprintf(ch->label, sizeof(ch->label),
	         "CPU (estimated from utilisation, calibrated here: %.1f-%.1f W)", p->idle_watts,
	         p->max_watts);
	snprintf(detail, len,
	         "estimated: %.2f W idle to %.2f W at full load over %d CPU(s) from %s; %s%s",
	         p->idle_watts, p->max_watts, p->ncpu, p->path, note,
	         p->idle_configured  ? " (idle watts configured: overrides the fitted value)"
	         : p->max_configured ? " (max watts configured: overrides the fitted value)"
	                             : "");
	return 1;
}

const struct source_family model_cpu_family = {
    .name = "model",
    .probe = model_probe,
    .open = model_open,
    .read = model_read,
    .close = source_close_fd_priv,
    .describe = model_describe,
};
