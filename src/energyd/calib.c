/*
 * The CPU model's calibration (calib.h). It takes readings of /proc/stat, stamped on the
 * sampler's clock; once the history holds a sample at or after that instant, the fitted
 * channels' energy at it is interpolated from the history, so that the busy share and the
 * energy of a window cover the same interval to within the history's interpolation (not a
 * thread's wake-up delay). Consecutive readings at least CPUFIT_WINDOW_MIN_S apart make a
 * window: its busy share and mean watts go to the fit.
 *
 * The readings are the attribution's when it takes one at least every CPUFIT_WINDOW_MIN_S
 * (calib_feed, on its thread: a window closes at the reading after the next); else a thread of
 * its own reads /proc/stat after a sampler tick and sleeps through the ticks between
 * (sampler_wait_ticks): it wakes twice a window.
 */
#define _GNU_SOURCE
#include "calib.h"
#include "daemon.h"
#include "energy_util.h"
#include "host.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The measured wall meter declared for the whole machine, or -1. */
static int calib_host_wall(const struct channel_set *set)
{
	for (int i = 0; i < set->n; i++)
		if (set->ch[i].measured && set->ch[i].kind == CHANNEL_WALL && set->ch[i].host_meter)
			return i;
	return -1;
}

/* With the packages and a whole-machine wall meter: the rest of the machine is the meter
 * minus what the host total adds up without it (host_measured_parts). */
static void calib_choose_rest(struct calib *c, const struct channel_set *set, int wall)
{
	int n = host_measured_parts(set->ch, set->n, c->rest_idx, CALIB_CHANNELS_MAX);
	if (n < 1) {
		snprintf(c->rest_detail, sizeof(c->rest_detail),
		         "no rest of the machine: more than %d measured channels inside %s",
		         CALIB_CHANNELS_MAX, set->ch[wall].id);
		return;
	}
	c->rest_wall = wall;
	c->n_rest_idx = n;
	struct calib_fit *f = &c->rest;
	snprintf(f->against, sizeof(f->against), "rest");
	snprintf(f->fitted_to[0], CHANNEL_ID_MAX, "%s", set->ch[wall].id);
	f->n_fitted_to = 1;
	for (int k = 0; k < n; k++)
		snprintf(f->subtracted[k], CHANNEL_ID_MAX, "%s", set->ch[c->rest_idx[k]].id);
	f->n_subtracted = n;
}

/* Which channels measure what model:cpu stands for: the CPU packages (summed), else a wall
 * meter declared for the whole machine. */
static void calib_choose(struct calib *c, const struct channel_set *set)
{
	for (int i = 0; i < set->n && c->n_idx < CALIB_CHANNELS_MAX; i++)
		if (set->ch[i].measured && set->ch[i].kind == CHANNEL_PACKAGE)
			c->idx[c->n_idx++] = i;
	int wall = calib_host_wall(set);
	if (c->n_idx) {
		c->against = "rapl";
		if (wall >= 0)
			calib_choose_rest(c, set, wall);
	} else if (wall >= 0) {
		c->idx[c->n_idx++] = wall;
		c->against = "wall";
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
	cpufit_init(&c->rest.sums);
	c->rest_wall = -1;
	c->rest_stat_fd = -1;
	c->state = c->rest_state = "none";
	snprintf(c->detail, sizeof(c->detail),
	         "no calibration: nothing measures the CPU here and no fit is stored");
	snprintf(c->rest_detail, sizeof(c->rest_detail),
	         "no model of the rest of the machine: it needs the CPU packages and a wall meter "
	         "declared with --host-meter, and none is stored");
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
		c->rest_wall = -1;
		memset(&c->rest, 0, sizeof(c->rest));
		return;
	}
	c->state = "fitting";
	snprintf(c->detail, sizeof(c->detail), "learning: no window yet");
	if (c->rest_wall >= 0) {
		c->rest_state = "fitting";
		snprintf(c->rest_detail, sizeof(c->rest_detail), "learning: no window yet");
	} else if (strcmp(c->against, "rapl") == 0) {
		/* A stored rest fit may run as model:rest (calib_use_rest). */
		c->rest_stat_fd = open(c->stat_path, O_RDONLY | O_CLOEXEC);
	}
	snprintf(c->cur.against, sizeof(c->cur.against), "%s", c->against);
	for (int k = 0; k < c->n_idx; k++)
		snprintf(c->cur.fitted_to[k], CHANNEL_ID_MAX, "%s", set->ch[c->idx[k]].id);
	c->cur.n_fitted_to = c->n_idx;
}

static bool calib_same_ids(const char (*a)[CHANNEL_ID_MAX], int na, const char (*b)[CHANNEL_ID_MAX],
                           int nb)
{
	if (na != nb)
		return false;
	for (int i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

static bool calib_same_channels(const struct calib_fit *a, const struct calib_fit *b)
{
	return a->n_fitted_to > 0 && strcmp(a->against, b->against) == 0 &&
	       calib_same_ids(a->fitted_to, a->n_fitted_to, b->fitted_to, b->n_fitted_to) &&
	       calib_same_ids(a->subtracted, a->n_subtracted, b->subtracted, b->n_subtracted);
}

/* "calibrated on this machine on DATE, error X % (...)": what model:cpu says it runs on (the
 * rest fit: "fitted to WALL - PACKAGE - ..."). */
static void calib_note(const struct calib_fit *f, char *buf, size_t len)
{
	char to[(2 * CALIB_CHANNELS_MAX) * (CHANNEL_ID_MAX + 3)] = "";
	for (int i = 0; i < f->n_fitted_to; i++)
		snprintf(to + strlen(to), sizeof(to) - strlen(to), "%s%s", i ? " + " : "",
		         f->fitted_to[i]);
	for (int i = 0; i < f->n_subtracted; i++)
		snprintf(to + strlen(to), sizeof(to) - strlen(to), " - %s", f->subtracted[i]);
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
	int rc = calib_read(fd, &c->stored, &c->stored_rest, why, sizeof(why));
	if (rc < 0 && rc != -ENOENT) {
		log_warn("%s ignored: %s; the CPU model uses its defaults until a measured channel "
		         "refits it",
		         shown, why);
		if (c->rest_wall < 0)
			snprintf(c->rest_detail, sizeof(c->rest_detail),
			         "no model of the rest of the machine: %s ignored: %s", shown, why);
		if (!c->n_idx)
			snprintf(c->detail, sizeof(c->detail), "no calibration: %s ignored: %s",
			         shown, why);
	}
	return rc;
}

/* Where the measured packages + dram + GPUs are the channels the stored rest fit subtracted and
 * no channel measures the whole machine (no host meter, no psys), model:rest estimates what
 * they leave out: a channel of its own, never in the host total (DESIGN.md §2). */
static void calib_use_rest(struct calib *c, struct daemon *d)
{
	const struct calib_fit *st = &c->stored_rest;
	struct channel_set *set = d->set;
	int parts[CALIB_CHANNELS_MAX];
	int n = host_measured_parts(set->ch, set->n, parts, CALIB_CHANNELS_MAX);
	bool same = n == st->n_subtracted;
	for (int k = 0; same && k < n; k++)
		same = strcmp(set->ch[parts[k]].id, st->subtracted[k]) == 0;
	const char *why = c->rest_stat_fd < 0 ? "nothing measures the CPU packages now"
	                  : !same             ? "this start measures other channels than it "
	                                        "subtracted"
	                                      : NULL;
	for (int i = 0; !why && i < set->n; i++)
		if (set->ch[i].host_meter || set->ch[i].kind == CHANNEL_PSYS)
			why = "a channel measures the whole machine";
	if (why) {
		snprintf(c->rest_detail + strlen(c->rest_detail),
		         sizeof(c->rest_detail) - strlen(c->rest_detail), "; not used: %s", why);
		return;
	}
	char note[sizeof(c->rest_detail)];
	calib_note(st, note, sizeof(note));
	struct channel *ch = model_rest_add(set, c->rest_stat_fd, c->stat_path, st->r.idle_watts,
	                                    st->r.max_watts, note);
	c->rest_stat_fd = -1; /* the channel's now, or closed */
	if (!ch) {
		log_warn("cannot add model:rest: the channel set is full");
		return;
	}
	c->rest_state = "used";
	for (int i = 0; i < d->n_families; i++)
		if (strcmp(d->families[i].name, "model") == 0)
			family_report_add(
			    &d->families[i],
			    "; model:rest estimates the rest of the machine beside them");
	log_info("source model: model:rest: %.2f W idle to %.2f W at full load, %s",
	         st->r.idle_watts, st->r.max_watts, note);
}

/* The stored rest fit: resumed when fitting to the same channels, else shown as stored. */
static void calib_load_rest(struct calib *c, struct daemon *d)
{
	struct calib_fit *st = &c->stored_rest;
	if (!st->n_fitted_to)
		return;
	if (c->rest_wall < 0) {
		c->rest_state = "stored";
		calib_note(st, c->rest_detail, sizeof(c->rest_detail));
		calib_use_rest(c, d);
	} else if (calib_same_channels(st, &c->rest)) {
		c->rest.sums = st->sums;
		c->rest.r = st->r;
		snprintf(c->rest.fitted_at, sizeof(c->rest.fitted_at), "%s", st->fitted_at);
		c->rest_solved = true;
		calib_note(&c->rest, c->rest_detail, sizeof(c->rest_detail));
		log_info(
		    "rest-of-machine model calibration: resuming the stored fit (%.0f windows)",
		    c->rest.sums.n);
	}
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
	calib_load_rest(c, d);
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

/* One window into fit f, re-solved (solved, detail: its status). Called with the lock held.
 * True when the window counts (cpufit_add). */
static bool calib_fit_add(struct calib_fit *f, bool *solved, char *detail, size_t len, double u,
                          double watts)
{
	if (cpufit_add(&f->sums, u, watts) < 0)
		return false;
	calib_utc_now(f->fitted_at, sizeof(f->fitted_at));
	struct cpufit_result r;
	char why[160];
	if (cpufit_solve(&f->sums, &r, why, sizeof(why)) == 0) {
		f->r = r;
		*solved = true;
		calib_note(f, detail, len);
	} else {
		snprintf(detail, len, "%s", why);
	}
	return true;
}

/* One window from a to b, for the CPU fit and the rest's (the fits' lock is taken here). */
static void calib_window(struct calib *c, const struct calib_point *a, const struct calib_point *b)
{
	double dt = b->t - a->t;
	if (dt < CPUFIT_WINDOW_MIN_S * 0.999 || dt > CPUFIT_WINDOW_MAX_S || b->total <= a->total ||
	    b->busy < a->busy || b->busy - a->busy > b->total - a->total || b->uj < a->uj)
		return;
	double u = (double)(b->busy - a->busy) / (double)(b->total - a->total);
	double watts = (b->uj - a->uj) / 1e6 / dt;
	pthread_mutex_lock(&c->lock);
	if (calib_fit_add(&c->cur, &c->cur_solved, c->detail, sizeof(c->detail), u, watts))
		c->since_save++;
	/* Wall minus the packages may dip below 0 in a window where the meter lags: not added. */
	if (c->rest_wall >= 0)
		calib_fit_add(&c->rest, &c->rest_solved, c->rest_detail, sizeof(c->rest_detail), u,
		              (b->rest_uj - a->rest_uj) / 1e6 / dt);
	threads_mutex_unlock_checked(&c->lock);
}

/* The summed energy of channels idx at t, interpolated: 0, or the history's error; -ENODATA
 * when the samples around t are more than gap_s apart (interpolated across failed reads). */
static int calib_sum_at(const struct history *h, const int *idx, int n, double t, double gap_s,
                        double *sum)
{
	*sum = 0;
	for (int k = 0; k < n; k++) {
		double uj, resolution_s;
		int rc = history_value_at(h, idx[k], t, &uj, &resolution_s);
		if (rc < 0)
			return rc;
		if (resolution_s > gap_s)
			return -ENODATA;
		*sum += uj;
	}
	return 0;
}

/* The fitted channels' summed energy at p->t (and the rest's: rest_uj): 0; -EAGAIN while no sample
 * is that recent; else the history's error (a gap: the windows start over). Called with the
 * sampler's lock held. */
static int calib_energy_at(struct calib *c, struct calib_point *p)
{
	const struct history *h = &c->sampler->history;
	if (!h->count || history_time(h, h->count - 1) < p->t)
		return -EAGAIN;
	/* Samples further apart than a few intervals (and a window) bracket failed reads. */
	double gap_s = 2.5 * (double)c->sampler->interval_ns / 1e9;
	if (gap_s < CPUFIT_WINDOW_MIN_S)
		gap_s = CPUFIT_WINDOW_MIN_S;
	int rc = calib_sum_at(h, c->idx, c->n_idx, p->t, gap_s, &p->uj);
	p->rest_uj = 0;
	if (rc == 0 && c->rest_wall >= 0) {
		double wall, parts;
		rc = calib_sum_at(h, &c->rest_wall, 1, p->t, gap_s, &wall);
		if (rc == 0)
			rc = calib_sum_at(h, c->rest_idx, c->n_rest_idx, p->t, gap_s, &parts);
		p->rest_uj = rc == 0 ? wall - parts : 0;
	}
	return rc;
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
	/* The rest fit of this run once it counts, else the stored one is kept. */
	struct calib_fit rest = c->rest_solved ? c->rest : c->stored_rest;
	threads_mutex_unlock_checked(&c->lock);
	if (!due)
		return;
	char err[256];
	if (calib_write(&f, &rest, err, sizeof(err)) < 0) {
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

/* After a tick (the thread) or a reading (fed, not NULL: the attribution's): close a window when
 * the pending reading's instant is in the history, then take the next reading (or the one fed)
 * when the last one is a window's length old. */
static void calib_step(struct calib *c, int energy_rc, const struct calib_point *fed)
{
	if (c->have_pending && energy_rc != -EAGAIN) {
		if (energy_rc == 0 && c->have_p0)
			calib_window(c, &c->p0, &c->pending);
		c->p0 = c->pending;
		c->have_p0 = energy_rc == 0;
		c->have_pending = false;
	}
	/* A fed reading comes once a batch, give or take the thread's delay: one a hair short of
	 * the window (calib_window's own margin) is taken rather than waiting a whole batch more.
	 */
	double now = fed ? fed->t : sampler_time_of(c->sampler, energy_monotonic_ns());
	double min_s = fed ? CPUFIT_WINDOW_MIN_S * 0.999 : CPUFIT_WINDOW_MIN_S;
	if (!c->have_pending && (!c->have_p0 || now >= c->p0.t + min_s)) {
		int rc = fed ? (c->pending = *fed, 0) : calib_read_stat(c, &c->pending);
		c->have_pending = rc == 0;
		if (rc < 0)
			c->have_p0 = false;
	}
	calib_save(c, false);
}

void calib_feed(void *ctx, uint64_t mono_ns, uint64_t busy, uint64_t total)
{
	struct calib *c = ctx;
	struct sampler *s = c->sampler;
	if (!c->fed)
		return;
	int rc = -EAGAIN;
	if (c->have_pending) {
		sampler_lock(s);
		rc = calib_energy_at(c, &c->pending);
		sampler_unlock(s);
	}
	struct calib_point p = {.t = sampler_time_of(s, mono_ns), .busy = busy, .total = total};
	calib_step(c, rc, &p);
}

/* How many ticks until there is something to do: the next one while a reading waits for the
 * sample after it, else those until the next reading is a window's length after the last (the
 * thread is not woken by the ticks between). */
static uint64_t calib_ticks_to_wait(const struct calib *c)
{
	if (c->have_pending || !c->have_p0)
		return 1;
	double left =
	    c->p0.t + CPUFIT_WINDOW_MIN_S - sampler_time_of(c->sampler, energy_monotonic_ns());
	double ticks = ceil(left / ((double)c->sampler->interval_ns / 1e9));
	return ticks < 1 ? 1 : ticks > 1e6 ? 1000000 : (uint64_t)ticks;
}

static void *calib_thread(void *arg)
{
	struct calib *c = arg;
	struct sampler *s = c->sampler;
	uint64_t seen = 0, n = 1;
	sampler_lock(s);
	for (;;) {
		seen = sampler_wait_ticks(s, seen, n);
		if (atomic_load(&s->stop))
			break;
		int rc = c->have_pending ? calib_energy_at(c, &c->pending) : -EAGAIN;
		sampler_unlock(s);
		calib_step(c, rc, NULL);
		n = calib_ticks_to_wait(c);
		sampler_lock(s);
	}
	sampler_unlock(s);
	return NULL;
}

bool calib_fitting(const struct calib *c)
{
	return c->stat_fd >= 0;
}

int calib_start(struct calib *c, struct sampler *s, bool fed)
{
	c->sampler = s;
	if (c->stat_fd < 0)
		return 0;
	c->fed = fed;
	return fed ? 0 : threads_start(&c->worker, "energy-calib", calib_thread, c);
}

void calib_stop(struct calib *c)
{
	bool fed = c->stat_fd >= 0 && c->fed; /* no thread: the attribution stopped before */
	if (threads_join(&c->worker) || fed)
		calib_save(c, true);
}

void calib_free(struct calib *c)
{
	if (c->stat_fd >= 0)
		close(c->stat_fd);
	if (c->rest_stat_fd >= 0)
		close(c->rest_stat_fd);
	c->rest_stat_fd = -1;
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
	const struct calib_fit *rest = c->rest_wall >= 0 ? (c->rest_solved ? &c->rest : NULL)
	                               : c->stored_rest.n_fitted_to ? &c->stored_rest
	                                                            : NULL;
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s, s:o}}", "state", c->state, "detail",
	              c->detail, "file", file, "fit", f ? calib_fit_json(f, false) : json_null(),
	              "rest", "state", c->rest_state, "detail", c->rest_detail, "fit",
	              rest ? calib_fit_json(rest, false) : json_null());
	threads_mutex_unlock_checked(&c->lock);
	return o;
}
