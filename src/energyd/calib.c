/*
 * The CPU model's calibration thread (calib.h). After every sampler tick it may take a reading
 * of /proc/stat, stamped on the sampler's clock; once the history holds a sample at or after
 * that instant, the fitted channels' energy at it is interpolated from the history, so that the
 * busy share and the energy of a window cover the same interval to within the history's
 * interpolation (not the thread's wake-up delay). Consecutive readings at least
 * CPUFIT_WINDOW_MIN_S apart make a window: its busy share and mean watts go to the fit.
 */
#define _GNU_SOURCE
#include "calib.h"
#include "daemon.h"
#include "energy_util.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Which channels measure what model:cpu stands for: the CPU packages (summed), else a wall
 * meter declared for the whole machine. */
static void calib_choose(struct calib *c, const struct channel_set *set)
{
	for (int i = 0; i < set->n && c->n_idx < CALIB_CHANNELS_MAX; i++)
		if (set->ch[i].measured && set->ch[i].kind == CHANNEL_PACKAGE)
			c->idx[c->n_idx++] = i;
	if (c->n_idx) {
		c->against = "rapl";
		return;
	}
	for (int i = 0; i < set->n; i++)
		if (set->ch[i].measured && set->ch[i].kind == CHANNEL_WALL &&
		    set->ch[i].host_meter) {
			c->idx[c->n_idx++] = i;
			c->against = "wall";
			return;
		}
}

/* An open descriptor, or the -errno of opening path. */
static int calib_open_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

void calib_open(struct calib *c, const char *proc_root, const struct channel_set *set,
                const char *fallback)
{
	memset(c, 0, sizeof(*c));
	c->stat_fd = -1;
	c->fallback_fd = -ENOENT;
	threads_mutex_init_checked(&c->lock);
	cpufit_init(&c->cur.sums);
	c->state = "none";
	snprintf(c->detail, sizeof(c->detail),
	         "no calibration: nothing measures the CPU here and no fit is stored");
	calib_choose(c, set);
	if (!c->n_idx) {
		if (fallback)
			c->fallback_fd = calib_open_file(fallback);
		c->fallback = fallback;
		return;
	}
	snprintf(c->stat_path, sizeof(c->stat_path), "%s/stat", proc_root);
	c->stat_fd = open(c->stat_path, O_RDONLY | O_CLOEXEC);
	if (c->stat_fd < 0) {
		snprintf(c->detail, sizeof(c->detail), "cannot fit the CPU model: %s: %s",
		         c->stat_path, strerror(errno));
		c->n_idx = 0;
		return;
	}
	c->state = "fitting";
	snprintf(c->detail, sizeof(c->detail), "learning: no window yet");
	snprintf(c->cur.against, sizeof(c->cur.against), "%s", c->against);
	for (int k = 0; k < c->n_idx; k++)
		snprintf(c->cur.fitted_to[k], CHANNEL_ID_MAX, "%s", set->ch[c->idx[k]].id);
	c->cur.n_fitted_to = c->n_idx;
}

static bool calib_same_channels(const struct calib_fit *a, const struct calib_fit *b)
{
	if (a->n_fitted_to != b->n_fitted_to || strcmp(a->against, b->against) != 0)
		return false;
	for (int i = 0; i < a->n_fitted_to; i++)
		if (strcmp(a->fitted_to[i], b->fitted_to[i]) != 0)
			return false;
	return true;
}

/* "calibrated on this machine on DATE, error X % (...)": what model:cpu says it runs on. */
static void calib_note(const struct calib_fit *f, char *buf, size_t len)
{
	char to[CALIB_CHANNELS_MAX * (CHANNEL_ID_MAX + 3)] = "";
	for (int i = 0; i < f->n_fitted_to; i++)
		snprintf(to + strlen(to), sizeof(to) - strlen(to), "%s%s", i ? " + " : "",
		         f->fitted_to[i]);
	snprintf(buf, len,
	         "calibrated on this machine on %.10s, error %.1f %% (fitted to %s over %.0f "
	         "windows, utilisation %.0f-%.0f %%)",
	         f->fitted_at, f->r.rms_error_pct, to, f->sums.n, f->sums.u_min * 100,
	         f->sums.u_max * 100);
}

/* The stored fit on the model:cpu channel, when the model runs. */
static void calib_apply(struct calib *c, struct daemon *d)
{
	struct channel *model = NULL;
	for (int i = 0; i < d->set->n; i++)
		if (strcmp(d->set->ch[i].id, "model:cpu") == 0)
			model = &d->set->ch[i];
	struct family_report *rep = NULL;
	for (int i = 0; i < d->n_families; i++)
		if (strcmp(d->families[i].name, "model") == 0)
			rep = &d->families[i];
	if (!model || !rep)
		return;
	char note[256 + CALIB_PATH_MAX];
	calib_note(&c->stored, note, sizeof(note));
	if (c->from)
		snprintf(note + strlen(note), sizeof(note) - strlen(note), ", read from %s",
		         c->from);
	int rc = model_cpu_use_fit(model, c->stored.r.idle_watts, c->stored.r.max_watts, note,
	                           rep->detail, sizeof(rep->detail));
	if (rc < 0)
		return;
	c->state = rc ? "used" : "overridden";
	snprintf(c->detail, sizeof(c->detail), "%s", rep->detail);
	log_info("source model: %s", rep->detail);
}

/* A stored fit from fd (calib_read; named shown): 0, or -errno after saying why a file was
 * ignored. */
static int calib_load_from(struct calib *c, int fd, const char *shown)
{
	char why[256];
	int rc = calib_read(fd, &c->stored, why, sizeof(why));
	if (rc < 0 && rc != -ENOENT) {
		log_warn("%s ignored: %s; the CPU model uses its defaults until a measured channel "
		         "refits it",
		         shown, why);
		if (!c->n_idx)
			snprintf(c->detail, sizeof(c->detail), "no calibration: %s ignored: %s",
			         shown, why);
	}
	return rc;
}

void calib_load(struct calib *c, struct daemon *d)
{
	char shown[600];
	c->state_dir = d->state_dir;
	snprintf(shown, sizeof(shown), "%s/%s", d->state_dir, CALIB_FILE);
	int fd = calib_open_file(CALIB_FILE);
	int rc = calib_load_from(c, fd, shown);
	if (fd >= 0)
		close(fd);
	if (rc == -ENOENT && !c->n_idx && c->fallback) {
		rc = calib_load_from(c, c->fallback_fd, c->fallback);
		c->from = rc == 0 ? c->fallback : NULL;
	}
	if (rc < 0)
		return;
	c->have_stored = true;
	if (!c->n_idx) {
		c->state = "stored";
		calib_note(&c->stored, c->detail, sizeof(c->detail));
		calib_apply(c, d);
		return;
	}
	if (calib_same_channels(&c->stored, &c->cur)) {
		c->cur.sums = c->stored.sums; /* resume: the windows add up across restarts */
		c->cur.r = c->stored.r;
		snprintf(c->cur.fitted_at, sizeof(c->cur.fitted_at), "%s", c->stored.fitted_at);
		c->cur_solved = true;
		calib_note(&c->cur, c->detail, sizeof(c->detail));
		log_info("CPU model calibration: resuming the stored fit (%.0f windows)",
		         c->cur.sums.n);
	}
}

static void calib_utc_now(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One window from a to b (the fit's lock is taken here). */
static void calib_window(struct calib *c, const struct calib_point *a, const struct calib_point *b)
{
	double dt = b->t - a->t;
	if (dt < CPUFIT_WINDOW_MIN_S * 0.999 || dt > CPUFIT_WINDOW_MAX_S || b->total <= a->total ||
	    b->busy < a->busy || b->busy - a->busy > b->total - a->total || b->uj < a->uj)
		return;
	double u = (double)(b->busy - a->busy) / (double)(b->total - a->total);
	double watts = (b->uj - a->uj) / 1e6 / dt;
	pthread_mutex_lock(&c->lock);
	if (cpufit_add(&c->cur.sums, u, watts) == 0) {
		calib_utc_now(c->cur.fitted_at, sizeof(c->cur.fitted_at));
		c->since_save++;
		struct cpufit_result r;
		char why[160];
		if (cpufit_solve(&c->cur.sums, &r, why, sizeof(why)) == 0) {
			c->cur.r = r;
			c->cur_solved = true;
			calib_note(&c->cur, c->detail, sizeof(c->detail));
		} else {
			snprintf(c->detail, sizeof(c->detail), "%s", why);
		}
	}
	threads_mutex_unlock_checked(&c->lock);
}

/* The fitted channels' summed energy at p->t: 0; -EAGAIN while no sample is that recent; else
 * the history's error (a gap: the windows start over). Called with the sampler's lock held. */
static int calib_energy_at(struct calib *c, struct calib_point *p)
{
	const struct history *h = &c->sampler->history;
	if (!h->count || history_time(h, h->count - 1) < p->t)
		return -EAGAIN;
	/* Samples further apart than a few intervals (and a window) bracket failed reads. */
	double gap_s = 2.5 * (double)c->sampler->interval_ns / 1e9;
	if (gap_s < CPUFIT_WINDOW_MIN_S)
		gap_s = CPUFIT_WINDOW_MIN_S;
	double sum = 0;
	for (int k = 0; k < c->n_idx; k++) {
		double uj, resolution_s;
		int rc = history_value_at(h, c->idx[k], p->t, &uj, &resolution_s);
		if (rc < 0)
			return rc;
		if (resolution_s > gap_s) /* interpolated across failed reads */
			return -ENODATA;
		sum += uj;
	}
	p->uj = sum;
	return 0;
}

static int calib_read_stat(struct calib *c, struct calib_point *p)
{
	char buf[16384];
	uint64_t before = energy_monotonic_ns();
	int rc = energy_pread_text(c->stat_fd, buf, sizeof(buf));
	uint64_t after = energy_monotonic_ns();
	if (rc >= 0)
		rc = model_cpu_parse_stat(buf, &p->busy, &p->total, NULL);
	p->t = sampler_time_of(c->sampler, before + (after - before) / 2);
	return rc;
}

/* Write the fit when it counts and has new windows: at once the first time, then every
 * CALIB_SAVE_EVERY windows, and at the end (final). */
static void calib_save(struct calib *c, bool final)
{
	pthread_mutex_lock(&c->lock);
	bool due = c->cur_solved && c->since_save > 0 &&
	           (final || !c->saved || c->since_save >= CALIB_SAVE_EVERY);
	struct calib_fit f = c->cur;
	threads_mutex_unlock_checked(&c->lock);
	if (!due)
		return;
	char err[256];
	if (calib_write(&f, err, sizeof(err)) < 0) {
		log_warn("CPU model calibration: %s/%s", c->state_dir ? c->state_dir : ".", err);
	} else if (!c->saved) {
		log_info("CPU model calibration: %.2f W idle, %.2f W at full load, error %.1f %% "
		         "(written to %s/%s)",
		         f.r.idle_watts, f.r.max_watts, f.r.rms_error_pct,
		         c->state_dir ? c->state_dir : ".", CALIB_FILE);
	}
	pthread_mutex_lock(&c->lock);
	c->saved = true;
	c->since_save = 0;
	threads_mutex_unlock_checked(&c->lock);
}

/* After a tick: close a window when the pending reading's instant is in the history, then take
 * the next reading when the last one is a window's length old. */
static void calib_step(struct calib *c, int energy_rc)
{
	if (c->have_pending && energy_rc != -EAGAIN) {
		if (energy_rc == 0 && c->have_p0)
			calib_window(c, &c->p0, &c->pending);
		c->p0 = c->pending;
		c->have_p0 = energy_rc == 0;
		c->have_pending = false;
	}
	double now = sampler_time_of(c->sampler, energy_monotonic_ns());
	if (!c->have_pending && (!c->have_p0 || now >= c->p0.t + CPUFIT_WINDOW_MIN_S)) {
		int rc = calib_read_stat(c, &c->pending);
		c->have_pending = rc == 0;
		if (rc < 0)
			c->have_p0 = false;
	}
	calib_save(c, false);
}

static void *calib_thread(void *arg)
{
	struct calib *c = arg;
	struct sampler *s = c->sampler;
	uint64_t seen = 0;
	sampler_lock(s);
	while ((seen = sampler_wait_tick(s, seen)) != 0) {
		int rc = c->have_pending ? calib_energy_at(c, &c->pending) : -EAGAIN;
		sampler_unlock(s);
		calib_step(c, rc);
		sampler_lock(s);
	}
	sampler_unlock(s);
	return NULL;
}

int calib_start(struct calib *c, struct sampler *s)
{
	c->sampler = s;
	if (c->stat_fd < 0)
		return 0;
	return threads_start(&c->worker, calib_thread, c);
}

void calib_stop(struct calib *c)
{
	if (threads_join(&c->worker))
		calib_save(c, true);
}

void calib_free(struct calib *c)
{
	if (c->stat_fd >= 0)
		close(c->stat_fd);
	if (c->fallback_fd >= 0)
		close(c->fallback_fd);
	c->stat_fd = -1;
	c->fallback_fd = -ENOENT;
	pthread_mutex_destroy(&c->lock);
}

json_t *calib_json(struct calib *c)
{
	if (!c)
		return json_null();
	pthread_mutex_lock(&c->lock);
	const struct calib_fit *f =
	    c->n_idx ? (c->cur_solved ? &c->cur : NULL) : (c->have_stored ? &c->stored : NULL);
	char file[600];
	if (c->from)
		snprintf(file, sizeof(file), "%s", c->from);
	else
		snprintf(file, sizeof(file), "%s/%s", c->state_dir ? c->state_dir : ".",
		         CALIB_FILE);
	json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "state", c->state, "detail", c->detail,
	                      "file", file, "fit", f ? calib_fit_json(f, false) : json_null());
	threads_mutex_unlock_checked(&c->lock);
	return o;
}
