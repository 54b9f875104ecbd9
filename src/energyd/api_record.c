/*
 * GET /api/v1/longterm?from=T0[&to=T1][&step=S][&tier=1s|1m|1h]: energy per step from the
 * record. Steps are aligned to multiples of step_s in Unix time (hours start on the hour), the
 * range is widened to whole steps, and every step is the sum of the tier's rows inside it, so
 * the steps of any answer add up exactly (in microjoules) to the rows they cover. A step without
 * any row is null: energyd was not recording then. The store reads the rows
 * (store_query_steps); this file turns them into JSON, with the record's status for info and
 * sources.
 */
#define _GNU_SOURCE
#include "api.h"
#include "store.h"
#include "carbon.h"
#include "energy.h"
#include "query.h"
#include "record_carbon.h"
#include "store_db.h"
#include "store_query.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *api_record_total_joules(struct daemon *d, int series, uint64_t run_uj)
{
	uint64_t total;
	if (!d->store || !store_total_uj(d->store, series, run_uj, &total))
		return json_null();
	return json_real((double)total / 1e6);
}

static json_t *store_json(struct daemon *d, bool full)
{
	struct store *st = d->store;
	struct store_info si;
	store_get_info(st, &si);
	json_t *o = json_pack("{s:s, s:o, s:o, s:f, s:f}", "status", store_status_name(si.status),
	                      "error", si.error[0] ? json_string(si.error) : json_null(), "path",
	                      st->opt.path[0] ? json_string(st->opt.path) : json_null(),
	                      "pending_s", si.pending_s, "dropped_s", si.dropped_s);
	if (!full)
		return o;
	json_t *tiers = json_array();
	for (int k = 0; k < STORE_TIERS; k++)
		json_array_append_new(
		    tiers,
		    json_pack("{s:s, s:i, s:o}", "name", store_tier_name[k], "step_s",
		              store_tier_step_s[k], "keep_s",
		              st->opt.keep_s[k] > 0 ? json_real(st->opt.keep_s[k]) : json_null()));
	json_object_set_new(o, "tiers", tiers);
	json_object_set_new(o, "batch_s", json_real(st->opt.batch_s));
	json_object_set_new(o, "memory_s", json_real(st->opt.memory_s));
	json_object_set_new(o, "retry_s", json_real(st->opt.retry_s));
	json_object_set_new(o, "recorded_to",
	                    si.recorded_to > 0 ? json_real(si.recorded_to) : json_null());
	json_object_set_new(o, "record_began_at",
	                    si.record_began_at > 0 ? json_real(si.record_began_at) : json_null());
	json_object_set_new(o, "last_commit_s", json_real(si.last_commit_s));
	json_object_set_new(o, "batches", json_integer((json_int_t)si.batches));
	json_object_set_new(o, "failures", json_integer((json_int_t)si.failures));
	return o;
}

void api_record_info(struct daemon *d, json_t *info)
{
	if (!d->store)
		return;
	/* The record opens relative to the state directory (energyd works inside it). */
	const char *path = d->store->opt.path;
	char full[2 * STORE_PATH_MAX];
	snprintf(full, sizeof(full), "%s%s%s", path[0] == '/' ? "" : d->state_dir,
	         path[0] == '/' ? "" : "/", path);
	json_object_set_new(info, "store_path", path[0] ? json_string(full) : json_null());
	json_object_set_new(info, "store", store_json(d, true));
}

json_t *api_record_status(struct daemon *d)
{
	return d->store ? store_json(d, false) : json_null();
}

/*
 * The steps of a longterm request: the tier (finest that covers from, or the one asked), the
 * step (given, or the tier's own, or a multiple that keeps the answer under
 * API_LONGTERM_POINTS_MAX) and [start, end) widened to whole steps. -1 with the 400 answer set.
 */
static int plan_steps(struct store *st, const struct http_request *req, struct http_response *res,
                      int *tier_out, int64_t *start_out, int64_t *end_out, int64_t *step_out)
{
	char err[256];
	double t0, t1, step = 0, now = energy_wall_time();
	if (api_query_interval(req, res, &t0, &t1) < 0)
		return -1;
	const char *step_text = http_query(req, "step");
	if (step_text && (query_positive("step", step_text, 0, 1e9, &step, err, sizeof(err)) < 0 ||
	                  step != floor(step))) {
		if (step != floor(step))
			snprintf(err, sizeof(err), "'step' = %s is not a whole number of seconds",
			         step_text);
		http_error(res, 400, err, "step: whole seconds, a multiple of the tier's step");
		return -1;
	}
	int forced = -1;
	const char *tier_text = http_query(req, "tier");
	if (tier_text) {
		for (int k = 0; k < STORE_TIERS; k++)
			if (strcmp(tier_text, store_tier_name[k]) == 0)
				forced = k;
		if (forced < 0) {
			http_error(res, 400, "'tier' must be 1s, 1m or 1h",
			           "leave it out to get the finest tier that covers the range");
			return -1;
		}
	}
	int tier = store_tier_pick(t0, step, now, st->opt.keep_s, forced, err, sizeof(err));
	if (tier < 0) {
		http_error(res, 400, err, "ask for a later 'from', a coarser tier or another step");
		return -1;
	}
	int64_t tier_step = store_tier_step_s[tier];
	if (step == 0) {
		/* The tier's own step, or a multiple of it when that would be too many points. */
		double n = ceil((t1 - t0) / (double)tier_step) + 1;
		int64_t mult = (int64_t)ceil(n / API_LONGTERM_POINTS_MAX);
		step = (double)(tier_step * (mult < 1 ? 1 : mult));
	}
	int64_t step_i = (int64_t)step;
	int64_t start = (int64_t)floor(t0 / step) * step_i;
	int64_t end = (int64_t)ceil(t1 / step) * step_i;
	if (end <= start)
		end = start + step_i;
	int64_t points = (end - start) / step_i;
	if (points > API_LONGTERM_POINTS_MAX) {
		snprintf(err, sizeof(err), "%lld steps of %lld s: more than %d in one answer",
		         (long long)points, (long long)step_i, API_LONGTERM_POINTS_MAX);
		http_error(res, 400, err,
		           "use a coarser step (e.g. 3600 or 86400), a shorter range, or leave "
		           "step out: energyd then picks one that fits");
		return -1;
	}
	*tier_out = tier;
	*start_out = start;
	*end_out = end;
	*step_out = step_i;
	return 0;
}

/* One series' step sums divided by scale (null where the step has no row). */
static void write_sums(struct jsonw *w, const struct store_steps *q,
                       const struct store_step_series *s, double scale)
{
	jsonw_array_begin(w);
	for (int64_t k = 0; k < q->points; k++)
		if (s->have[k])
			jsonw_real(w, (double)s->sum[k] / scale);
		else
			jsonw_null(w);
	jsonw_array_end(w);
}

static bool is_mix(const struct store_step_series *s)
{
	return strncmp(s->name, RECORD_CARBON_MIX_PREFIX, strlen(RECORD_CARBON_MIX_PREFIX)) == 0;
}

/* The generation mix per step: each group's share of the energy used while a mix was known
 * (null where none was). */
static void write_mix(struct jsonw *w, const struct store_steps *q)
{
	jsonw_object_begin(w);
	for (int m = 0; m < q->n_series; m++) {
		if (!is_mix(&q->series[m]))
			continue;
		jsonw_key(w, q->series[m].name + strlen(RECORD_CARBON_MIX_PREFIX));
		jsonw_array_begin(w);
		for (int64_t k = 0; k < q->points; k++) {
			int64_t sum = 0;
			bool any = false;
			for (int g = 0; g < q->n_series; g++)
				if (is_mix(&q->series[g]) && q->series[g].have[k]) {
					any = true;
					sum += q->series[g].sum[k];
				}
			jsonw_real(w, record_carbon_mix_share(q->series[m].sum[k], sum, any));
		}
		jsonw_array_end(w);
	}
	jsonw_object_end(w);
}

/* The series of the record's carbon accounting (emissions, cost) by name, or NULL. */
static const struct store_step_series *series_named(const struct store_steps *q, const char *name)
{
	const struct store_step_series *found = NULL;
	for (int i = 0; i < q->n_series; i++)
		if (strcmp(q->series[i].name, name) == 0)
			found = &q->series[i];
	return found;
}

/* The host's emissions and cost per step (estimated: grid factors; stored as integers:
 * micrograms, billionths of the currency) and the currency: members of `host`. */
static void write_carbon_host(struct jsonw *w, struct daemon *d, const struct store_steps *q)
{
	const struct store_step_series *em = series_named(q, RECORD_CARBON_EMISSIONS);
	const struct store_step_series *cost = series_named(q, RECORD_CARBON_COST);
	jsonw_key(w, "emissions_g");
	if (em)
		write_sums(w, q, em, 1e6);
	else
		jsonw_null(w);
	jsonw_key(w, "cost");
	if (cost)
		write_sums(w, q, cost, 1e9);
	else
		jsonw_null(w);
	jsonw_key(w, "currency");
	jsonw_string(w, d->carbon ? carbon_currency(d->carbon) : NULL);
}

/* The intensity the steps' emissions and energy imply (null where either is missing). */
static void write_intensity(struct jsonw *w, const struct store_steps *q)
{
	const struct store_step_series *em = series_named(q, RECORD_CARBON_EMISSIONS);
	const struct store_step_series *host = q->host >= 0 ? &q->series[q->host] : NULL;
	jsonw_array_begin(w);
	for (int64_t k = 0; k < q->points; k++) {
		bool have = em && host && em->have[k] && host->have[k];
		jsonw_real(w, record_carbon_intensity(have, have ? em->sum[k] : 0,
		                                      have ? host->sum[k] : 0));
	}
	jsonw_array_end(w);
}

/* The host's coverage over the range: every distinct set of channels it was made of. */
static void write_coverages(struct jsonw *w, const struct store_steps *q)
{
	jsonw_array_begin(w);
	for (int j = 0; j < q->n_coverages; j++) {
		char buf[STORE_COVERAGE_MAX], *save = NULL;
		snprintf(buf, sizeof(buf), "%s", q->coverages[j]);
		jsonw_array_begin(w);
		for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			jsonw_string(w, tok);
		jsonw_array_end(w);
	}
	jsonw_array_end(w);
}

/* A channel's (or the host's) energy per step: {joules, measured}, open for more members. */
static void write_joules(struct jsonw *w, const struct store_steps *q,
                         const struct store_step_series *s)
{
	jsonw_object_begin(w);
	jsonw_key(w, "joules");
	if (s)
		write_sums(w, q, s, 1e6);
	else {
		jsonw_array_begin(w);
		jsonw_array_end(w);
	}
	jsonw_key(w, "measured");
	jsonw_bool(w, s && s->measured);
}

/* The series that are a channel's energy, not a carbon figure or a mix group. */
static bool is_channel(const struct store_steps *q, int i)
{
	const struct store_step_series *s = &q->series[i];
	return i != q->host && !is_mix(s) && strcmp(s->name, RECORD_CARBON_EMISSIONS) != 0 &&
	       strcmp(s->name, RECORD_CARBON_COST) != 0;
}

/* Step starts, and how long energyd sampled in each step (the most of any series). */
static void write_times(struct jsonw *w, const struct store_steps *q)
{
	jsonw_key(w, "t");
	jsonw_array_begin(w);
	for (int64_t k = 0; k < q->points; k++)
		jsonw_int(w, q->start + k * q->step_s);
	jsonw_array_end(w);
	jsonw_key(w, "covered_s");
	jsonw_array_begin(w);
	for (int64_t k = 0; k < q->points; k++) {
		int64_t ms = -1;
		for (int i = 0; i < q->n_series; i++)
			if (q->series[i].have[k] && q->series[i].covered_ms[k] > ms)
				ms = q->series[i].covered_ms[k];
		if (ms >= 0)
			jsonw_real(w, (double)ms / 1000.0);
		else
			jsonw_null(w);
	}
	jsonw_array_end(w);
}

/*
 * The longterm answer (docs/api.md), written with the streaming writer into a buffer bounded
 * by the steps' count: every series, the step times, the intensity, and the coverages' text.
 */
static void steps_write(struct daemon *d, const struct store_steps *q, struct jsonw *w)
{
	size_t columns = (size_t)q->n_series + 3, points = (size_t)q->points;
	jsonw_init(w, points * columns * 12 + 4096,
	           points * columns * JSONW_REAL_MAX +
	               (size_t)q->n_series * (6 * CHANNEL_ID_MAX + 64) +
	               (size_t)q->n_coverages * (6 * STORE_COVERAGE_MAX + 16) + 4096);
	jsonw_object_begin(w);
	jsonw_key(w, "from");
	jsonw_int(w, q->start);
	jsonw_key(w, "to");
	jsonw_int(w, q->end);
	jsonw_key(w, "step_s");
	jsonw_int(w, q->step_s);
	jsonw_key(w, "tier");
	jsonw_string(w, store_tier_name[q->tier]);
	jsonw_key(w, "tier_step_s");
	jsonw_int(w, store_tier_step_s[q->tier]);
	write_times(w, q);
	jsonw_key(w, "channels");
	jsonw_object_begin(w);
	for (int i = 0; i < q->n_series; i++) {
		if (!is_channel(q, i))
			continue;
		jsonw_key(w, q->series[i].name);
		write_joules(w, q, &q->series[i]);
		jsonw_object_end(w);
	}
	jsonw_object_end(w);
	jsonw_key(w, "host");
	write_joules(w, q, q->host >= 0 ? &q->series[q->host] : NULL);
	write_carbon_host(w, d, q);
	jsonw_key(w, "coverage");
	write_coverages(w, q);
	jsonw_key(w, "coverage_mixed");
	jsonw_bool(w, q->coverage_mixed);
	jsonw_object_end(w);
	struct store_info si;
	store_get_info(d->store, &si);
	jsonw_key(w, "record");
	jsonw_object_begin(w);
	jsonw_key(w, "began_at");
	jsonw_real(w, si.record_began_at > 0 ? si.record_began_at : NAN);
	jsonw_key(w, "recorded_to");
	jsonw_real(w, si.recorded_to > 0 ? si.recorded_to : NAN);
	jsonw_key(w, "pending_s");
	jsonw_real(w, si.pending_s);
	jsonw_key(w, "status");
	jsonw_string(w, store_status_name(si.status));
	jsonw_object_end(w);
	jsonw_key(w, "intensity_g_per_kwh");
	write_intensity(w, q);
	jsonw_key(w, "mix");
	write_mix(w, q);
	jsonw_object_end(w);
}

void api_longterm_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	struct store *st = api->d->store;
	if (!st || !st->opt.path[0]) {
		http_error(res, 404, "the long-term store is off",
		           "start energyd without --store off to keep a record");
		return;
	}
	int tier;
	int64_t start, end, step;
	if (plan_steps(st, req, res, &tier, &start, &end, &step) < 0)
		return;
	struct store_steps q;
	char err[STORE_ERROR_MAX];
	int rc = store_query_steps(st->opt.path, tier, start, end, step, &q, err, sizeof(err));
	if (rc == -ENOMEM) {
		http_error(res, 503, "out of memory", "ask for fewer steps");
		return;
	}
	if (rc < 0) {
		http_error(res, 503, err, "see info.store for the store's status");
		return;
	}
	struct jsonw w;
	steps_write(api->d, &q, &w);
	store_steps_free(&q);
	char *body = jsonw_finish(&w);
	if (!body) {
		http_error(res, 503, "out of memory for the longterm answer",
		           "ask for fewer steps");
		return;
	}
	res->status = 200;
	res->body = body;
	res->content_type = "application/json";
}
