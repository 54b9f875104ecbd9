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

/* One series' step sums as JSON numbers divided by scale (null where the step has no row). */
static json_t *sums_json(const struct store_steps *q, const struct store_step_series *s,
                         double scale)
{
	json_t *a = json_array();
	for (int64_t k = 0; k < q->points; k++)
		json_array_append_new(a, s->have[k] ? json_real((double)s->sum[k] / scale)
		                                    : json_null());
	return a;
}

static bool is_mix(const struct store_step_series *s)
{
	return strncmp(s->name, RECORD_CARBON_MIX_PREFIX, strlen(RECORD_CARBON_MIX_PREFIX)) == 0;
}

/* The generation mix per step: each group's share of the energy used while a mix was known
 * (null where none was). */
static json_t *mix_json(const struct store_steps *q)
{
	json_t *mix = json_object();
	for (int m = 0; m < q->n_series; m++) {
		if (!is_mix(&q->series[m]))
			continue;
		json_t *shares = json_array();
		for (int64_t k = 0; k < q->points; k++) {
			int64_t sum = 0;
			bool any = false;
			for (int g = 0; g < q->n_series; g++)
				if (is_mix(&q->series[g]) && q->series[g].have[k]) {
					any = true;
					sum += q->series[g].sum[k];
				}
			json_array_append_new(shares, api_jnum(record_carbon_mix_share(
			                                  q->series[m].sum[k], sum, any)));
		}
		json_object_set_new(mix, q->series[m].name + strlen(RECORD_CARBON_MIX_PREFIX),
		                    shares);
	}
	return mix;
}

/* Emissions and cost per step (estimated: grid factors), and the intensity they imply. */
static void add_carbon_steps(struct daemon *d, const struct store_steps *q, json_t *host_obj,
                             json_t *out)
{
	const struct store_step_series *em = NULL, *cost = NULL;
	for (int i = 0; i < q->n_series; i++) {
		if (strcmp(q->series[i].name, RECORD_CARBON_EMISSIONS) == 0)
			em = &q->series[i];
		if (strcmp(q->series[i].name, RECORD_CARBON_COST) == 0)
			cost = &q->series[i];
	}
	/* Stored as integers: micrograms, billionths of the currency. */
	json_object_set_new(host_obj, "emissions_g", em ? sums_json(q, em, 1e6) : json_null());
	json_object_set_new(host_obj, "cost", cost ? sums_json(q, cost, 1e9) : json_null());
	const char *currency = d->carbon ? carbon_currency(d->carbon) : NULL;
	json_object_set_new(host_obj, "currency", currency ? json_string(currency) : json_null());
	json_t *intensity = json_array();
	const struct store_step_series *host = q->host >= 0 ? &q->series[q->host] : NULL;
	for (int64_t k = 0; k < q->points; k++) {
		bool have = em && host && em->have[k] && host->have[k];
		json_array_append_new(intensity,
		                      api_jnum(record_carbon_intensity(have, have ? em->sum[k] : 0,
		                                                       have ? host->sum[k] : 0)));
	}
	json_object_set_new(out, "intensity_g_per_kwh", intensity);
	json_object_set_new(out, "mix", mix_json(q));
}

/* The host's coverage over the range: every distinct set of channels it was made of. */
static json_t *coverages_json(const struct store_steps *q)
{
	json_t *coverages = json_array();
	for (int j = 0; j < q->n_coverages; j++) {
		json_t *ids = json_array();
		char buf[STORE_COVERAGE_MAX], *save = NULL;
		snprintf(buf, sizeof(buf), "%s", q->coverages[j]);
		for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			json_array_append_new(ids, json_string(tok));
		json_array_append_new(coverages, ids);
	}
	return coverages;
}

static json_t *steps_json(struct daemon *d, const struct store_steps *q)
{
	json_t *t = json_array(), *covered = json_array(), *channels = json_object();
	for (int64_t k = 0; k < q->points; k++) {
		json_array_append_new(t, json_integer((json_int_t)(q->start + k * q->step_s)));
		int64_t ms = -1;
		for (int i = 0; i < q->n_series; i++)
			if (q->series[i].have[k] && q->series[i].covered_ms[k] > ms)
				ms = q->series[i].covered_ms[k];
		json_array_append_new(covered,
		                      ms >= 0 ? json_real((double)ms / 1000.0) : json_null());
	}
	json_t *host_obj = NULL;
	for (int i = 0; i < q->n_series; i++) {
		const struct store_step_series *s = &q->series[i];
		if (is_mix(s) || strcmp(s->name, RECORD_CARBON_EMISSIONS) == 0 ||
		    strcmp(s->name, RECORD_CARBON_COST) == 0)
			continue;
		json_t *o = json_pack("{s:o, s:b}", "joules", sums_json(q, s, 1e6), "measured",
		                      s->measured);
		if (i == q->host)
			host_obj = o;
		else
			json_object_set_new(channels, s->name, o);
	}
	if (!host_obj)
		host_obj = json_pack("{s:[], s:b}", "joules", 0);
	struct store_info si;
	store_get_info(d->store, &si);
	json_t *out = json_pack(
	    "{s:I, s:I, s:I, s:s, s:i, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:f, s:s}}", "from",
	    (json_int_t)q->start, "to", (json_int_t)q->end, "step_s", (json_int_t)q->step_s, "tier",
	    store_tier_name[q->tier], "tier_step_s", store_tier_step_s[q->tier], "t", t,
	    "covered_s", covered, "channels", channels, "host", host_obj, "record", "began_at",
	    si.record_began_at > 0 ? json_real(si.record_began_at) : json_null(), "recorded_to",
	    api_jnum(si.recorded_to > 0 ? si.recorded_to : NAN), "pending_s", si.pending_s,
	    "status", store_status_name(si.status));
	add_carbon_steps(d, q, host_obj, out);
	json_object_set_new(host_obj, "coverage", coverages_json(q));
	json_object_set_new(host_obj, "coverage_mixed", json_boolean(q->coverage_mixed));
	return out;
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
	api_reply(res, 200, steps_json(api->d, &q));
	store_steps_free(&q);
}
