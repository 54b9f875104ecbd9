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
	/* Written straight into one buffer (api_history.c): a tree of jansson values for
	 * thousands of points cost more than the rest of the request. */
	struct jsonw w;
	api_history_write(api->d, seconds, points, &w);
	api_reply_writer(res, &w, "ask for fewer points (max_points) or a shorter span (seconds)");
}

/* An idle baseline given with `idle_watts=`: watts for the host and per channel, NAN where none. */
struct idle_baseline {
	double host;
	double channel[CHANNELS_MAX];
};

#define API_IDLE_SPEC_MAX  4096
#define API_IDLE_WATTS_MAX 1e6

/*
 * `idle_watts=W` (the host) or `idle_watts=KEY:W,KEY:W` with KEY `host` or a channel id; a
 * channel id may hold colons, so the watts follow the last one.
 */
static int idle_parse(const struct api *api, const char *spec, struct idle_baseline *b, char *err,
                      size_t errlen)
{
	b->host = NAN;
	for (int c = 0; c < CHANNELS_MAX; c++)
		b->channel[c] = NAN;
	if (!spec)
		return 0;
	char buf[API_IDLE_SPEC_MAX];
	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "'idle_watts' is longer than %d characters",
		         API_IDLE_SPEC_MAX);
		return -EINVAL;
	}
	strcpy(buf, spec);
	char *save = NULL;
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(item, ':');
		const char *value = colon ? colon + 1 : item;
		double w;
		if (energy_parse_double(value, &w) < 0 || w < 0 || w > API_IDLE_WATTS_MAX) {
			snprintf(err, errlen, "'idle_watts': '%.40s' is not a power from 0 to %g W",
			         value, API_IDLE_WATTS_MAX);
			return -EINVAL;
		}
		double *slot = NULL;
		if (colon)
			*colon = '\0';
		if (!colon || strcmp(item, "host") == 0)
			slot = &b->host;
		for (int c = 0; c < api->d->set->n && !slot; c++)
			if (strcmp(item, api->d->set->ch[c].id) == 0)
				slot = &b->channel[c];
		if (!slot) {
			snprintf(err, errlen,
			         "'idle_watts': no channel '%.64s' (give host or a channel id)",
			         item);
			return -EINVAL;
		}
		if (!isnan(*slot)) {
			snprintf(err, errlen, "'idle_watts': '%.64s' is given twice",
			         colon ? item : "host");
			return -EINVAL;
		}
		*slot = w;
	}
	return 0;
}

/* joules and mean watts over `seconds`, and the figures above an idle baseline when one is set. */
static void add_power(json_t *o, double joules, double seconds, double idle_watts)
{
	json_object_set_new(o, "watts", api_jnum(energy_mean_watts(joules, seconds)));
	if (isnan(idle_watts))
		return;
	double above = energy_above_idle(joules, idle_watts, seconds);
	json_object_set_new(o, "idle_baseline_watts", api_jnum(idle_watts));
	json_object_set_new(o, "joules_above_idle", api_jnum(above));
	json_object_set_new(o, "watts_above_idle", api_jnum(energy_mean_watts(above, seconds)));
}

/*
 * The /energy answer for [t0, t1] (docs/api.md): joules and mean watts per channel and for the
 * host, emissions and cost, the scope's attributed share and the idle baseline's remainder.
 * NULL after an error was put in res.
 */
static json_t *energy_answer(struct api *api, const struct http_request *req, double t0, double t1,
                             const struct idle_baseline *idle, struct http_response *res)
{
	/* A scope narrows the interval to what has been attributed, so that the channels' and
	 * the scope's figures cover the same interval. */
	const char *scope = http_query(req, "scope");
	double req0 = t0, req1 = t1;
	if (scope && api_scope_clamp(api->d, scope, &t0, &t1, res) < 0)
		return NULL;
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
		return NULL;
	}
	if (t1 < oldest || t0 > newest) {
		char msg[256];
		snprintf(msg, sizeof(msg),
		         "the interval %.3f to %.3f lies outside the samples held in memory "
		         "(%.3f to %.3f)",
		         t0, t1, oldest, newest);
		http_error(res, 404, msg, "ask for a range within the history held");
		json_decref(carbon);
		return NULL;
	}
	double seconds = to - from;
	json_t *channels = json_object();
	for (int c = 0; c < api->d->set->n; c++) {
		json_t *cj = json_pack("{s:o, s:b}", "joules", api_jnum(joules[c]), "measured",
		                       api->d->set->ch[c].measured);
		add_power(cj, joules[c], seconds, idle->channel[c]);
		json_object_set_new(channels, api->d->set->ch[c].id, cj);
	}
	json_t *o =
	    json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:o, s:{s:o, s:o, s:b}, s:b}", "from", from,
	              "to", to, "seconds", seconds, "requested_from", req0, "requested_to", req1,
	              "resolution_s", resolution, "channels", channels, "host", "joules",
	              api_jnum(host), "coverage", api_coverage_ids(api->d), "measured",
	              s->coverage.measured, "clamped", from != req0 || to != req1);
	json_t *host_o = json_object_get(o, "host");
	add_power(host_o, host, seconds, idle->host);
	json_object_update(host_o, json_object_get(carbon, "host"));
	if (json_object_get(carbon, "carbon"))
		json_object_set(o, "carbon", json_object_get(carbon, "carbon"));
	json_decref(carbon);
	if (scope) {
		json_t *so = api_scope(api->d, req, scope, from, to, host, res);
		if (!so) {
			json_decref(o);
			return NULL;
		}
		add_power(so, json_number_value(json_object_get(so, "joules")), seconds, NAN);
		json_object_set_new(o, "scope", so);
	}
	return o;
}

void api_energy_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	double t0, t1;
	if (api_query_interval(req, res, &t0, &t1) < 0)
		return;
	struct idle_baseline idle;
	char err[200];
	if (idle_parse(api, http_query(req, "idle_watts"), &idle, err, sizeof(err)) < 0) {
		http_error(res, 400, err,
		           "idle_watts=W for the host, or idle_watts=host:W,rapl:package-0:W");
		return;
	}
	json_t *o = energy_answer(api, req, t0, t1, &idle, res);
	if (o)
		api_reply(res, 200, o);
}

/* ---- runs: the energy of repeated runs and its statistics ---------------------------------- */

#define API_RUNS_MAX 300 /* and the request line stays under 16 KiB (http.c) */

/* `runs=T0/T1,T0/T1,...`: each a `from`/`to` pair as /energy takes them. */
static int runs_parse(const char *spec, double (*runs)[2], size_t *n, char *err, size_t errlen)
{
	*n = 0;
	if (!spec || !*spec) {
		snprintf(err, errlen, "'runs' is required");
		return -EINVAL;
	}
	double now = energy_wall_time();
	const char *p = spec;
	while (*p) {
		if (*n == API_RUNS_MAX) {
			snprintf(err, errlen, "more than %d runs", API_RUNS_MAX);
			return -E2BIG;
		}
		size_t len = strcspn(p, ",");
		char item[128], name[32];
		if (len >= sizeof(item)) {
			snprintf(err, errlen, "run %zu is not T0/T1", *n + 1);
			return -EINVAL;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		char *slash = strchr(item, '/');
		if (slash)
			*slash = '\0';
		snprintf(name, sizeof(name), "run %zu", *n + 1);
		double *r = runs[*n];
		if (!slash || query_time(name, item, now, &r[0], err, errlen) < 0 ||
		    query_time(name, slash + 1, now, &r[1], err, errlen) < 0) {
			if (!slash)
				snprintf(err, errlen, "run %zu is not T0/T1", *n + 1);
			return -EINVAL;
		}
		if (r[0] > r[1]) {
			snprintf(err, errlen, "run %zu starts after it ends", *n + 1);
			return -EINVAL;
		}
		(*n)++;
		p += len;
		if (*p == ',' && *++p == '\0') {
			snprintf(err, errlen, "'runs' ends with a comma");
			return -EINVAL;
		}
	}
	return 0;
}

static json_t *stats_json(const double *v, size_t n)
{
	struct energy_stats st;
	energy_stats(v, n, &st);
	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "n", (json_int_t)st.n, "mean",
	                 api_jnum(st.mean), "sd", api_jnum(st.sd), "rel_sd", api_jnum(st.rel_sd),
	                 "ci95_low", api_jnum(st.ci95_low), "ci95_high", api_jnum(st.ci95_high));
}

/* Statistics of one member of every run's object (path: up to three keys, NULL-ended). */
static json_t *stats_of_runs(json_t *runs, double *buf, const char *k0, const char *k1,
                             const char *k2)
{
	size_t i, n = json_array_size(runs);
	json_t *r;
	json_array_foreach(runs, i, r)
	{
		json_t *v = json_object_get(r, k0);
		if (k1)
			v = json_object_get(v, k1);
		if (k2)
			v = json_object_get(v, k2);
		buf[i] = json_is_number(v) ? json_number_value(v) : NAN;
	}
	return stats_json(buf, n);
}

static json_t *runs_stats(struct api *api, json_t *runs, bool scope,
                          const struct idle_baseline *idle)
{
	double *buf = malloc(sizeof(double) * (json_array_size(runs) + 1));
	if (!buf)
		return NULL;
	json_t *host = json_object();
	static const char *const host_keys[] = {"joules", "watts", "emissions_g", "cost"};
	for (size_t k = 0; k < sizeof(host_keys) / sizeof(host_keys[0]); k++)
		json_object_set_new(host, host_keys[k],
		                    stats_of_runs(runs, buf, "host", host_keys[k], NULL));
	if (!isnan(idle->host))
		json_object_set_new(host, "joules_above_idle",
		                    stats_of_runs(runs, buf, "host", "joules_above_idle", NULL));
	json_t *channels = json_object();
	for (int c = 0; c < api->d->set->n; c++) {
		const char *id = api->d->set->ch[c].id;
		json_t *cj = json_object();
		json_object_set_new(cj, "joules",
		                    stats_of_runs(runs, buf, "channels", id, "joules"));
		json_object_set_new(cj, "watts", stats_of_runs(runs, buf, "channels", id, "watts"));
		if (!isnan(idle->channel[c]))
			json_object_set_new(
			    cj, "joules_above_idle",
			    stats_of_runs(runs, buf, "channels", id, "joules_above_idle"));
		json_object_set_new(channels, id, cj);
	}
	json_t *o =
	    json_pack("{s:o, s:o, s:o}", "seconds", stats_of_runs(runs, buf, "seconds", NULL, NULL),
	              "host", host, "channels", channels);
	if (scope)
		json_object_set_new(o, "scope",
		                    json_pack("{s:o, s:o}", "joules",
		                              stats_of_runs(runs, buf, "scope", "joules", NULL),
		                              "watts",
		                              stats_of_runs(runs, buf, "scope", "watts", NULL)));
	free(buf);
	return o;
}

/*
 * GET /api/v1/runs?runs=T0/T1,...: the /energy figures of each run and their statistics (mean,
 * sd, 95 % interval; energy_stats), so that no client computes them. Every run must lie in the
 * history held; at most API_RUNS_MAX runs.
 */
void api_runs_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	static const char *hint = "runs=T0/T1,T0/T1,... (Unix seconds or ISO 8601, at most 300 "
	                          "runs), optionally scope= and idle_watts= as for /energy";
	char err[200];
	struct idle_baseline idle;
	if (idle_parse(api, http_query(req, "idle_watts"), &idle, err, sizeof(err)) < 0) {
		http_error(res, 400, err, hint);
		return;
	}
	double(*spans)[2] = malloc(sizeof(*spans) * API_RUNS_MAX);
	size_t n;
	if (!spans) {
		http_error(res, 503, "out of memory", "try again");
		return;
	}
	if (runs_parse(http_query(req, "runs"), spans, &n, err, sizeof(err)) < 0) {
		free(spans);
		http_error(res, 400, err, hint);
		return;
	}
	json_t *runs = json_array();
	json_t *common = NULL; /* the host's coverage and measured, and carbon: as in each run */
	for (size_t i = 0; i < n; i++) {
		json_t *o = energy_answer(api, req, spans[i][0], spans[i][1], &idle, res);
		if (!o) {
			json_decref(runs);
			json_decref(common);
			free(spans);
			return;
		}
		if (!common) {
			common = json_object();
			json_t *host = json_object_get(o, "host");
			json_object_set(common, "coverage", json_object_get(host, "coverage"));
			json_object_set(common, "measured", json_object_get(host, "measured"));
			if (json_object_get(o, "carbon"))
				json_object_set(common, "carbon", json_object_get(o, "carbon"));
		}
		json_object_del(o, "carbon");
		json_array_append_new(runs, o);
	}
	free(spans);
	json_t *stats = runs_stats(api, runs, http_query(req, "scope") != NULL, &idle);
	if (!stats) {
		json_decref(runs);
		json_decref(common);
		http_error(res, 503, "out of memory", "try again with fewer runs");
		return;
	}
	json_object_set_new(common, "runs", runs);
	json_object_set_new(common, "stats", stats);
	api_reply(res, 200, common);
}

/* ---- event stream --------------------------------------------------------------------- */

struct stream_ctx {
	struct api *api;
	uint64_t seen;   /* the last tick sent */
	char *pending;   /* the event being written, "data: ...\n\n" */
	size_t len, off; /* its length and how much was sent */
};

/*
 * The next bytes of the stream: the rest of the event being written, else the newest `now` once
 * a tick newer than the last one sent is in the history, else 0: http.c then parks the connection
 * until the sampler's next tick (http_wake_streams). Never waits, so a stream holds no thread of
 * the pool; a client that reads slowly skips ticks and gets the newest sample when it is ready.
 */
static long stream_next(void *ctx, char *buf, size_t max)
{
	struct stream_ctx *sc = ctx;
	if (sc->off >= sc->len) {
		free(sc->pending);
		sc->pending = NULL;
		struct sampler *s = sc->api->d->sampler;
		if (atomic_load(&s->stop))
			return -1;
		sampler_lock(s);
		uint64_t tick = s->ticks;
		json_t *now = tick > sc->seen ? api_now_locked(sc->api->d) : NULL;
		sampler_unlock(s);
		if (tick <= sc->seen)
			return 0;
		sc->seen = tick;
		char *json = now ? json_dumps(now, JSON_COMPACT | JSON_REAL_PRECISION(16)) : NULL;
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
