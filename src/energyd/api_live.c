/*
 * The live routes of the API v1: now, history, energy and the event stream. Every answer is
 * built from samples the sampler already took, under its lock, so a request never touches a
 * sensor.
 */
#define _GNU_SOURCE
#include "api.h"
#include "carbon.h"
#include "energy.h"
#include "query.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define API_NOW_WINDOW_S       1.0  /* `now` watts: mean power over the last second */
#define API_HISTORY_POINTS     5000 /* default cap on history points (downsampled) */
#define API_HISTORY_POINTS_MAX 100000
#define API_STREAM_BUF         65536

/* carbon_emissions_between's pieces: from the sampler's history, whose lock is held. */
static int history_piece(void *history, double t0, double t1, double *joules)
{
	return history_host_joules_between(history, t0, t1, joules);
}

/*
 * Grams CO2eq and cost next to the host's joules (docs/carbon.md). With t0 = NAN: since energyd
 * started, from the carbon module's ledger, for the sample (t1, host_j); else between t0 and t1,
 * cut where the intensity or the price changed. With the sampler's lock held.
 */
static void add_carbon(struct daemon *d, json_t *o, double t1, double host_j, double t0)
{
	json_t *host = json_object_get(o, "host");
	double grams = NAN, cost = NAN;
	const char *currency = NULL;
	if (d->carbon) {
		if (isnan(t0))
			carbon_totals(d->carbon, t1, host_j, &grams, &cost);
		else if (carbon_emissions_between(d->carbon, t0, t1, history_piece,
		                                  &d->sampler->history, &grams, &cost) < 0)
			grams = cost = NAN;
		currency = carbon_currency(d->carbon);
		json_object_set_new(o, "carbon", api_carbon_brief(d->carbon, energy_wall_time()));
	}
	json_object_set_new(host, "emissions_g", api_jnum(grams));
	json_object_set_new(host, "cost", api_jnum(cost));
	json_object_set_new(host, "currency", currency ? json_string(currency) : json_null());
}

/* With the lock held. */
json_t *api_now_locked(struct daemon *d)
{
	struct sampler *s = d->sampler;
	const struct history *h = &s->history;
	size_t last = h->count ? h->count - 1 : 0;
	json_t *channels = json_object();
	for (int c = 0; c < d->set->n; c++) {
		const struct channel *ch = &d->set->ch[c];
		double w = NAN;
		history_watts_window(h, c, last, API_NOW_WINDOW_S, &w, NULL);
		json_object_set_new(
		    channels, ch->id,
		    json_pack("{s:o, s:o, s:o, s:b, s:s}", "watts", api_jnum(w), "joules",
		              json_real((double)ch->energy_uj / 1e6), "joules_total",
		              api_record_total_joules(d, c, ch->energy_uj), "measured",
		              ch->measured, "status", channel_status_name(ch->status)));
	}
	double hw = NAN;
	history_watts_window(h, HISTORY_HOST, last, API_NOW_WINDOW_S, &hw, NULL);
	json_t *now = json_pack(
	    "{s:o, s:o, s:{s:o, s:o, s:o, s:o, s:b}, s:I}", "time",
	    api_jnum(h->count ? history_time(h, last) : NAN), "channels", channels, "host", "watts",
	    api_jnum(hw), "joules", json_real((double)s->host_uj / 1e6), "joules_total",
	    api_record_total_joules(d, d->set->n, s->host_uj), "coverage", api_coverage_ids(d),
	    "measured", s->coverage.measured, "tick", (json_int_t)s->ticks);
	add_carbon(d, now, h->count ? history_time(h, last) : NAN, (double)s->host_uj / 1e6, NAN);
	return now;
}

void api_now_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	(void)req;
	sampler_lock(api->d->sampler);
	json_t *o = api_now_locked(api->d);
	sampler_unlock(api->d->sampler);
	api_reply(res, 200, o);
}

/* max_points is a count: a fraction (1e-30) would make the step overflow size_t. */
static bool points_valid(double points, char *err, size_t errlen)
{
	if (points >= 1 && points == floor(points))
		return true;
	snprintf(err, errlen, "'max_points' = %.17g is not a whole number of at least 1", points);
	return false;
}

void api_history_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	char err[256];
	double seconds, points;
	if (query_positive("seconds", http_query(req, "seconds"), 60, api->d->history_s, &seconds,
	                   err, sizeof(err)) < 0 ||
	    query_positive("max_points", http_query(req, "max_points"), API_HISTORY_POINTS,
	                   API_HISTORY_POINTS_MAX, &points, err, sizeof(err)) < 0 ||
	    !points_valid(points, err, sizeof(err))) {
		http_error(res, 400, err,
		           "seconds: 0 < N <= the history held (see info.history_s); "
		           "max_points: 1..100000");
		return;
	}
	struct sampler *s = api->d->sampler;
	const struct history *h = &s->history;
	json_t *t = json_array(), *host = json_array(), *channels = json_object();
	json_t *series[CHANNELS_MAX];
	for (int c = 0; c < api->d->set->n; c++) {
		series[c] = json_array();
		json_object_set_new(channels, api->d->set->ch[c].id,
		                    json_pack("{s:o, s:b}", "watts", series[c], "measured",
		                              api->d->set->ch[c].measured));
	}
	sampler_lock(s);
	if (h->count > 0) {
		size_t last = h->count - 1, first = last;
		double t_last = history_time(h, last);
		while (first > 0 && history_time(h, first - 1) >= t_last - seconds)
			first--;
		size_t n = last - first + 1;
		size_t step = (size_t)ceil((double)n / points);
		if (step < 1)
			step = 1;
		/* Walk back from the newest so that the newest sample is always included. */
		size_t count = (n + step - 1) / step;
		for (size_t k = 0; k < count; k++) {
			size_t i = last - (count - 1 - k) * step;
			double w, min_s = (double)step * (double)s->interval_ns / 1e9;
			json_array_append_new(t, json_real(history_time(h, i)));
			for (int c = 0; c < api->d->set->n; c++)
				json_array_append_new(
				    series[c], history_watts_window(h, c, i, min_s, &w, NULL) == 0
				                   ? json_real(w)
				                   : json_null());
			json_array_append_new(
			    host, history_watts_window(h, HISTORY_HOST, i, min_s, &w, NULL) == 0
			              ? json_real(w)
			              : json_null());
		}
	}
	sampler_unlock(s);
	api_reply(res, 200,
	          json_pack("{s:o, s:o, s:{s:o, s:o, s:b}, s:f}", "t", t, "channels", channels,
	                    "host", "watts", host, "coverage", api_coverage_ids(api->d), "measured",
	                    s->coverage.measured, "interval_s", (double)s->interval_ns / 1e9));
}

void api_energy_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	double t0, t1;
	if (api_query_interval(req, res, &t0, &t1) < 0)
		return;
	/* A scope narrows the interval to what has been attributed, so that the channels' and
	 * the scope's figures cover the same interval. */
	const char *scope = http_query(req, "scope");
	double req0 = t0, req1 = t1;
	if (scope && api_scope_clamp(api->d, scope, &t0, &t1, res) < 0)
		return;
	struct sampler *s = api->d->sampler;
	double joules[CHANNELS_MAX], host, from, to, resolution;
	sampler_lock(s);
	const struct history *h = &s->history;
	double oldest = h->count ? history_time(h, 0) : NAN;
	double newest = h->count ? history_time(h, h->count - 1) : NAN;
	int rc = history_energy_between(h, t0, t1, joules, &host, &from, &to, &resolution);
	json_t *carbon = json_pack("{s:{}}", "host");
	if (rc == 0)
		add_carbon(api->d, carbon, to, NAN, from);
	sampler_unlock(s);
	if (rc == -ENODATA) {
		json_decref(carbon);
		http_error(res, 503, "no samples yet", "energyd has just started; try again");
		return;
	}
	if (t1 < oldest || t0 > newest) {
		char msg[256];
		snprintf(msg, sizeof(msg),
		         "the interval lies outside the samples held in memory (%.3f to %.3f)",
		         oldest, newest);
		http_error(res, 404, msg, "ask for a range within the history held");
		json_decref(carbon);
		return;
	}
	json_t *channels = json_object();
	for (int c = 0; c < api->d->set->n; c++)
		json_object_set_new(channels, api->d->set->ch[c].id,
		                    json_pack("{s:o, s:b}", "joules", api_jnum(joules[c]),
		                              "measured", api->d->set->ch[c].measured));
	json_t *o = json_pack("{s:f, s:f, s:f, s:f, s:f, s:o, s:{s:o, s:o, s:b}, s:b}", "from",
	                      from, "to", to, "requested_from", req0, "requested_to", req1,
	                      "resolution_s", resolution, "channels", channels, "host", "joules",
	                      api_jnum(host), "coverage", api_coverage_ids(api->d), "measured",
	                      s->coverage.measured, "clamped", from != req0 || to != req1);
	json_object_update(json_object_get(o, "host"), json_object_get(carbon, "host"));
	if (json_object_get(carbon, "carbon"))
		json_object_set(o, "carbon", json_object_get(carbon, "carbon"));
	json_decref(carbon);
	if (scope) {
		json_t *so = api_scope(api->d, req, scope, from, to, host, res);
		if (!so) {
			json_decref(o);
			return;
		}
		json_object_set_new(o, "scope", so);
	}
	api_reply(res, 200, o);
}

/* ---- event stream --------------------------------------------------------------------- */

struct stream_ctx {
	struct api *api;
	uint64_t seen;
	char *pending;
	size_t len, off;
};

static long stream_next(void *ctx, char *buf, size_t max)
{
	struct stream_ctx *sc = ctx;
	if (sc->off >= sc->len) {
		free(sc->pending);
		sc->pending = NULL;
		struct sampler *s = sc->api->d->sampler;
		sampler_lock(s);
		uint64_t tick = sampler_wait_tick(s, sc->seen);
		json_t *now = tick ? api_now_locked(sc->api->d) : NULL;
		sampler_unlock(s);
		if (!tick)
			return -1;
		sc->seen = tick;
		char *json = json_dumps(now, JSON_COMPACT | JSON_REAL_PRECISION(16));
		json_decref(now);
		if (!json)
			return -1;
		if (asprintf(&sc->pending, "data: %s\n\n", json) < 0) {
			free(json);
			sc->pending = NULL;
			return -1;
		}
		free(json);
		sc->len = strlen(sc->pending);
		sc->off = 0;
	}
	size_t n = sc->len - sc->off < max ? sc->len - sc->off : max;
	memcpy(buf, sc->pending + sc->off, n);
	sc->off += n;
	return (long)n;
}

static void stream_free_ctx(void *ctx)
{
	struct stream_ctx *sc = ctx;
	free(sc->pending);
	free(sc);
}

void api_stream_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	(void)req;
	struct stream_ctx *sc = calloc(1, sizeof(*sc));
	if (!sc) {
		http_error(res, 503, "out of memory", "");
		return;
	}
	sc->api = api;
	sampler_lock(api->d->sampler);
	sc->seen = api->d->sampler->ticks;
	sampler_unlock(api->d->sampler);
	res->status = 200;
	res->content_type = "text/event-stream";
	res->stream.read = stream_next;
	res->stream.free = stream_free_ctx;
	res->stream.ctx = sc;
}
