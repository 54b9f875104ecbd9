/*
 * The carbon module: the provider's current value, the time series of every value energyd
 * obtained, and the ledger of grams and cost since energyd started.
 *
 * The series is a list of steps (t, g/kWh, mix): a step begins at the provider's data time when
 * it gives one that energyd can still account for (see install), else at the time of the newest
 * sample when energyd learned the new value, and holds until the next step. The first value also
 * covers the time before it (nothing better is known for it). Steps are only added when the value
 * changes, so a provider answering the same figure every refresh costs no memory.
 *
 * The ledger books the host's energy at every step boundary and price change (and at least
 * every minute): grams += joules × the intensity in force, cost += joules × the price in force.
 * `now` adds the part since the last booking, so it is the step-wise integral since start, not
 * "energy so far × today's factor". An interval query (energy?from&to) cuts the interval at the
 * same step boundaries and asks the sampler's history for each piece's joules.
 */
#define _GNU_SOURCE
#include "carbon.h"
#include "sampler.h"
#include "threads.h"
#include "text.h"
#include "energy.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CARBON_BOOK_EVERY_S 60.0
#define CARBON_RETRY_MAX_S  60.0

struct carbon {
	struct carbon_config cfg;
	char token[1024]; /* the provider's token, read before the privilege drop */
	char source[512]; /* where the figure comes from, for the API */
	bool live;        /* the provider is asked over HTTP (not static or constant) */

	pthread_mutex_t lock;         /* guards stop, the steps and the status fields */
	pthread_cond_t cond;          /* wakes the thread to refresh or stop */
	struct threads_worker worker; /* the thread that asks the provider */
	bool stop;                    /* asks it to end (under lock) */
	struct sampler *sampler;      /* the host's energy (sampler_host_*); NULL in unit tests */

	struct carbon_step *steps; /* the intensity series, oldest first (CARBON_SERIES_MAX) */
	size_t n_steps;

	const char *status; /* "pending", "ok", "error" */
	char error[CARBON_ERROR_MAX], note[CARBON_ERROR_MAX];
	/* The last good answer, the time its figure is for, the last try (Unix s; NAN: never). */
	double fetched_at, data_time, attempted_at;
	unsigned failures; /* failed attempts in a row (backoff) */

	double ledger_t, ledger_j; /* energy booked up to this sample */
	double grams, cost;        /* booked so far */
	double unpriced_j;         /* booked before any intensity was known */
};

static const char *const provider_sources[] = {
    [CARBON_STATIC] = "",
    [CARBON_CONSTANT] = "a constant from the [carbon] section of the config file",
    [CARBON_ENTSOE] = "ENTSO-E Transparency Platform, actual generation per production type "
                      "(A75, A16) in the bidding zone, weighted by life-cycle factors per type",
    [CARBON_ELECTRICITYMAPS] = "Electricity Maps API v3, carbon-intensity/latest (life-cycle, "
                               "consumption-based) and power-breakdown/latest",
    [CARBON_UK] = "National Grid ESO carbon intensity API, Great Britain (actual, else "
                  "forecast) and generation mix",
    [CARBON_RTE] = "RTE eCO2mix real-time open data (France): taux_co2 and production per "
                   "source",
};

static double default_refresh(enum carbon_provider p)
{
	return p == CARBON_ELECTRICITYMAPS ? 300 : 900;
}

static double refresh_s(const struct carbon *c)
{
	return c->cfg.refresh_s > 0 ? c->cfg.refresh_s : default_refresh(c->cfg.provider);
}

static int read_token(const char *path, char *token, size_t cap, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(
		    err, errlen,
		    "cannot read token_file %s: %s (it holds the provider's API token; energyd "
		    "reads it before dropping privileges)",
		    path, strerror(errno));
		return -1;
	}
	char *line = fgets(token, (int)cap, f);
	fclose(f);
	if (line)
		line[strcspn(line, "\r\n")] = '\0';
	if (!line || !*line) {
		snprintf(err, errlen, "token_file %s is empty: put the API token on its first line",
		         path);
		return -1;
	}
	return 0;
}

/* With the lock held. */
static void add_step(struct carbon *c, double t, double g_per_kwh, bool have_mix, const double *mix)
{
	if (c->n_steps) {
		const struct carbon_step *last = &c->steps[c->n_steps - 1];
		bool same = last->g_per_kwh == g_per_kwh && last->have_mix == have_mix;
		for (int g = 0; same && have_mix && g < CARBON_GROUPS; g++)
			same = last->mix[g] == mix[g];
		if (same)
			return;
	}
	if (c->n_steps == CARBON_SERIES_MAX) {
		/* The oldest steps go; the long-term store has recorded them by then. */
		memmove(c->steps, c->steps + 1, (c->n_steps - 1) * sizeof(*c->steps));
		c->n_steps--;
	}
	struct carbon_step *s = &c->steps[c->n_steps++];
	s->t = c->n_steps == 1 ? -INFINITY : t;
	s->g_per_kwh = g_per_kwh;
	s->have_mix = have_mix;
	for (int g = 0; g < CARBON_GROUPS; g++)
		s->mix[g] = have_mix ? mix[g] : 0;
}

int carbon_open(const struct carbon_config *cfg, struct carbon **out, char *err, size_t errlen)
{
	if (carbon_config_check(cfg, err, errlen) < 0)
		return -1;
	struct carbon *c = calloc(1, sizeof(*c));
	if (c)
		c->steps = calloc(CARBON_SERIES_MAX, sizeof(*c->steps));
	if (!c || !c->steps) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->cfg = *cfg;
	c->live = cfg->provider != CARBON_STATIC && cfg->provider != CARBON_CONSTANT;
	if (cfg->token_file[0] &&
	    read_token(cfg->token_file, c->token, sizeof(c->token), err, errlen) < 0) {
		free(c->steps);
		free(c);
		return -1;
	}
	pthread_mutex_init(&c->lock, NULL);
	threads_cond_init_monotonic(&c->cond);
	c->ledger_t = -INFINITY;
	c->fetched_at = c->data_time = c->attempted_at = NAN;
	c->status = "pending";
	snprintf(c->source, sizeof(c->source), "%s", provider_sources[cfg->provider]);
	if (cfg->provider == CARBON_STATIC) {
		const struct carbon_country *k = carbon_table_country(cfg->zone);
		snprintf(c->source, sizeof(c->source), "annual average for %s (%d): %s", k->name,
		         k->year, carbon_table_source);
		add_step(c, -INFINITY, k->g_per_kwh, false, NULL);
		c->status = "ok";
	} else if (cfg->provider == CARBON_CONSTANT) {
		add_step(c, -INFINITY, cfg->intensity_g_per_kwh, false, NULL);
		c->status = "ok";
	}
	if (c->live && curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		snprintf(err, errlen, "cannot initialise libcurl");
		carbon_close(c);
		return -1;
	}
	*out = c;
	return 0;
}

/* Book the host's energy up to sample (t, joules) with what was in force. Lock held. */
static void book(struct carbon *c, double t, double joules)
{
	if (!(t > c->ledger_t))
		return;
	double dj = joules - c->ledger_j;
	if (dj < 0)
		dj = 0;
	if (c->n_steps)
		c->grams += dj * c->steps[c->n_steps - 1].g_per_kwh / J_PER_KWH;
	else
		c->unpriced_j += dj;
	double price = carbon_price_at(&c->cfg, isfinite(c->ledger_t) ? c->ledger_t : t, NULL);
	if (isfinite(price))
		c->cost += dj * price / J_PER_KWH;
	c->ledger_t = t;
	c->ledger_j = joules;
}

static bool latest(struct carbon *c, double *t, double *j)
{
	return c->sampler && sampler_host_latest(c->sampler, t, j) == 0;
}

static void install(struct carbon *c, const struct carbon_reading *r)
{
	double t = NAN, j = 0, since_j = NAN;
	bool have = latest(c, &t, &j); /* outside our lock: it takes the sampler's */
	/* A provider that says when its value holds from (ENTSO-E's period position, the UK's
	 * `from`, Electricity Maps' `datetime`, RTE's `date_heure`) gets its step there rather
	 * than when energyd learned it, if that time lies in the history (the energy since then
	 * is known) and after the previous value's own time (a revision of the same period keeps
	 * the step where it was learned). */
	double d = r->data_time;
	bool at_data_time = have && isfinite(d) && d < t &&
	                    sampler_host_joules_between(c->sampler, d, t, &since_j) == 0 &&
	                    since_j >= 0;
	pthread_mutex_lock(&c->lock);
	if (have)
		book(c, t, j);
	double step_t = have ? t : energy_wall_time();
	if (c->n_steps == 0) {
		/* The first value also covers the energy used before it arrived. */
		c->grams += c->unpriced_j * r->intensity_g_per_kwh / J_PER_KWH;
		c->unpriced_j = 0;
	} else if (at_data_time && d > c->steps[c->n_steps - 1].t &&
	           (!isfinite(c->data_time) || d > c->data_time)) {
		/* The energy since d was booked at the old intensity: book it at the new one. */
		c->grams += since_j *
		            (r->intensity_g_per_kwh - c->steps[c->n_steps - 1].g_per_kwh) /
		            J_PER_KWH;
		step_t = d;
	}
	add_step(c, step_t, r->intensity_g_per_kwh, r->have_mix, r->mix);
	bool recovered = c->failures > 0;
	c->status = "ok";
	c->error[0] = '\0';
	snprintf(c->note, sizeof(c->note), "%s", r->note);
	c->fetched_at = energy_wall_time();
	c->data_time = r->data_time;
	c->failures = 0;
	pthread_mutex_unlock(&c->lock);
	if (recovered)
		log_info("carbon: %s answers again (%.1f g/kWh)",
		         carbon_provider_name(c->cfg.provider), r->intensity_g_per_kwh);
}

static void fail(struct carbon *c, const char *msg)
{
	pthread_mutex_lock(&c->lock);
	bool first = c->failures++ == 0 && !c->stop; /* an aborted fetch at exit is no news */
	c->status = "error";
	snprintf(c->error, sizeof(c->error), "%s", msg);
	pthread_mutex_unlock(&c->lock);
	if (first)
		log_warn("carbon: %s: %s (keeping the last good value; retrying)",
		         carbon_provider_name(c->cfg.provider), msg);
}

static void *carbon_thread(void *arg)
{
	struct carbon *c = arg;
	double next_fetch = 0; /* monotonic seconds */
	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		double mono = (double)energy_monotonic_ns() / 1e9;
		if (c->live && mono >= next_fetch) {
			double wall = energy_wall_time();
			c->attempted_at = wall;
			pthread_mutex_unlock(&c->lock);
			struct carbon_reading r;
			char err[CARBON_ERROR_MAX];
			if (carbon_fetch(&c->cfg, c->token, wall, &r, err, sizeof(err)) == 0)
				install(c, &r);
			else
				fail(c, err);
			pthread_mutex_lock(&c->lock);
			double wait = refresh_s(c);
			if (c->failures && wait > CARBON_RETRY_MAX_S)
				wait = CARBON_RETRY_MAX_S;
			next_fetch = (double)energy_monotonic_ns() / 1e9 + wait;
			continue;
		}
		/* Book now, then sleep until the next fetch, the next price change or a minute. */
		pthread_mutex_unlock(&c->lock);
		double t, j, next_price = INFINITY;
		bool have = latest(c, &t, &j);
		pthread_mutex_lock(&c->lock);
		if (have)
			book(c, t, j);
		if (c->stop)
			break;
		double wall = energy_wall_time(), sleep_s = CARBON_BOOK_EVERY_S;
		carbon_price_at(&c->cfg, wall, &next_price);
		if (next_price - wall < sleep_s)
			sleep_s = next_price - wall + 0.001;
		if (c->live && next_fetch - mono < sleep_s)
			sleep_s = next_fetch - mono;
		if (sleep_s < 0.001)
			sleep_s = 0.001;
		uint64_t until = energy_monotonic_ns() + (uint64_t)(sleep_s * 1e9);
		struct timespec ts = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int carbon_start(struct carbon *c, struct sampler *host_energy)
{
	c->sampler = host_energy;
	return threads_start(&c->worker, "energy-carbon", carbon_thread, c);
}

void carbon_close(struct carbon *c)
{
	if (!c)
		return;
	if (c->worker.running) {
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		carbon_fetch_abort(); /* a fetch in progress ends now, not after timeout_s */
		threads_join(&c->worker);
	}
	if (c->live)
		curl_global_cleanup();
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c->steps);
	free(c);
}

/* Index of the step in force at t, or -1. Lock held. */
static long step_at(const struct carbon *c, double t)
{
	long lo = 0, hi = (long)c->n_steps - 1, found = -1;
	while (lo <= hi) {
		long mid = (lo + hi) / 2;
		if (c->steps[mid].t <= t) {
			found = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return found;
}

int carbon_intensity_at(struct carbon *c, double t, double *g_per_kwh, double *mix, bool *have_mix)
{
	pthread_mutex_lock(&c->lock);
	long i = step_at(c, t);
	if (i >= 0) {
		*g_per_kwh = c->steps[i].g_per_kwh;
		if (have_mix)
			*have_mix = c->steps[i].have_mix;
		if (mix)
			memcpy(mix, c->steps[i].mix, sizeof(c->steps[i].mix));
	}
	pthread_mutex_unlock(&c->lock);
	return i >= 0 ? 0 : -ENODATA;
}

int carbon_emissions_between(struct carbon *c, double t0, double t1,
                             int (*between)(void *ctx, double t0, double t1, double *joules),
                             void *ctx, double *grams, double *cost)
{
	*grams = 0;
	*cost = 0;
	if (t1 < t0)
		return -EINVAL;
	/* Copy the steps in force during [t0, t1]: the pieces are computed without our lock. */
	pthread_mutex_lock(&c->lock);
	long first = step_at(c, t0), last = step_at(c, t1);
	size_t n = last < 0 ? 0 : (size_t)(last - (first < 0 ? 0 : first) + 1);
	struct carbon_step *steps = n ? malloc(n * sizeof(*steps)) : NULL;
	if (steps)
		memcpy(steps, c->steps + (first < 0 ? 0 : first), n * sizeof(*steps));
	pthread_mutex_unlock(&c->lock);
	if (n && !steps)
		return -ENOMEM;
	bool have_price = c->cfg.have_price || c->cfg.n_schedule;
	size_t k = 0;
	double a = t0;
	int rc = 0;
	do {
		while (k + 1 < n && steps[k + 1].t <= a)
			k++;
		double next_price, b = t1;
		double price = carbon_price_at(&c->cfg, a, &next_price);
		if (k + 1 < n && steps[k + 1].t < b)
			b = steps[k + 1].t;
		if (next_price < b)
			b = next_price;
		double j = 0;
		if (b > a && (rc = between(ctx, a, b, &j)) < 0)
			break;
		/* Before the first step nothing is known: the result is unknown, not zero. */
		bool known = n && steps[k].t <= a;
		*grams = known ? *grams + j * steps[k].g_per_kwh / J_PER_KWH : NAN;
		*cost += have_price ? j * price / J_PER_KWH : 0;
		a = b;
	} while (a < t1);
	if (!have_price)
		*cost = NAN;
	if (n == 0)
		*grams = NAN;
	free(steps);
	return rc;
}

void carbon_totals(struct carbon *c, double t, double host_joules, double *grams, double *cost)
{
	pthread_mutex_lock(&c->lock);
	double dj = host_joules - c->ledger_j;
	if (dj < 0 || !(t >= c->ledger_t))
		dj = 0;
	*grams = c->n_steps ? c->grams + dj * c->steps[c->n_steps - 1].g_per_kwh / J_PER_KWH : NAN;
	double price = carbon_price_at(&c->cfg, isfinite(c->ledger_t) ? c->ledger_t : t, NULL);
	*cost = isfinite(price) ? c->cost + dj * price / J_PER_KWH : NAN;
	pthread_mutex_unlock(&c->lock);
}

const char *carbon_currency(struct carbon *c)
{
	return (c->cfg.have_price || c->cfg.n_schedule) ? c->cfg.currency : NULL;
}

static const char *zone_of(const struct carbon_config *cfg)
{
	if (cfg->zone[0])
		return cfg->zone;
	return cfg->provider == CARBON_UK ? "GB" : cfg->provider == CARBON_RTE ? "FR" : "";
}

void carbon_view(struct carbon *c, double now, struct carbon_view *v, struct carbon_step *series,
                 size_t max_series)
{
	memset(v, 0, sizeof(*v));
	v->provider = carbon_provider_name(c->cfg.provider);
	v->zone = zone_of(&c->cfg);
	v->cfg = &c->cfg;
	pthread_mutex_lock(&c->lock);
	v->have_current = c->n_steps > 0;
	if (v->have_current)
		v->current = c->steps[c->n_steps - 1];
	v->data_time = c->data_time;
	v->fetched_at = c->fetched_at;
	v->attempted_at = c->attempted_at;
	v->age_s = isfinite(c->data_time) ? now - c->data_time : now - c->fetched_at;
	v->live = c->live;
	v->refresh_s = refresh_s(c);
	v->status = c->status;
	memcpy(v->error, c->error, sizeof(v->error));
	memcpy(v->note, c->note, sizeof(v->note));
	snprintf(v->source, sizeof(v->source), "%s", c->source);
	v->n_steps = c->n_steps;
	size_t from = c->n_steps > max_series ? c->n_steps - max_series : 0;
	for (size_t i = from; series && i < c->n_steps; i++)
		series[v->n_series++] = c->steps[i];
	pthread_mutex_unlock(&c->lock);
	v->price_now = carbon_price_at(&c->cfg, now, NULL);
	v->currency = carbon_currency(c);
}
