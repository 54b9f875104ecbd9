/*
 * GET /api/v1/longterm?from=T0[&to=T1][&step=S][&tier=1s|1m|1h]: energy per step from the
 * record. Steps are aligned to multiples of step_s in Unix time (hours start on the hour), the
 * range is widened to whole steps, and every step is the sum of the tier's rows inside it, so
 * the steps of any answer add up exactly (in microjoules) to the rows they cover. A step without
 * any row is null: energyd was not recording then.
 *
 * Each request opens its own read-only connection: WAL lets it read while the store's thread
 * writes, and a broken database fails this request, not the daemon.
 */
#define _GNU_SOURCE
#include "api.h"
#include "store.h"
#include "carbon.h"
#include "energy.h"
#include "query.h"
#include "record_carbon.h"
#include "store_db.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

struct series_info {
	int64_t id;
	char name[CHANNEL_ID_MAX];
	bool measured;
	int64_t *uj; /* per step */
	bool *have;  /* per step */
	int64_t *ms; /* covered per step */
};

static void db_error(struct http_response *res, sqlite3 *db, const char *path)
{
	char msg[STORE_ERROR_MAX];
	int rc = db ? sqlite3_errcode(db) : SQLITE_CANTOPEN;
	store_db_explain(rc, "cannot read the record", path, db ? sqlite3_errmsg(db) : NULL, msg,
	                 sizeof(msg));
	http_error(res, 503, msg, "see info.store for the store's status");
}

void api_longterm_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	struct store *st = api->d->store;
	if (!st || !st->opt.path[0]) {
		http_error(res, 404, "the long-term store is off",
		           "start energyd without --store off to keep a record");
		return;
	}
	char err[256];
	double t0, t1, step = 0, now = energy_wall_time();
	if (api_query_interval(req, res, &t0, &t1) < 0)
		return;
	const char *step_text = http_query(req, "step");
	if (step_text && (query_positive("step", step_text, 0, 1e9, &step, err, sizeof(err)) < 0 ||
	                  step != floor(step))) {
		if (step != floor(step))
			snprintf(err, sizeof(err), "'step' = %s is not a whole number of seconds",
			         step_text);
		http_error(res, 400, err, "step: whole seconds, a multiple of the tier's step");
		return;
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
			return;
		}
	}
	int tier = store_tier_pick(t0, step, now, st->opt.keep_s, forced, err, sizeof(err));
	if (tier < 0) {
		http_error(res, 400, err, "ask for a later 'from', a coarser tier or another step");
		return;
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
		return;
	}

	struct stat sb;
	if (stat(st->opt.path, &sb) < 0) {
		snprintf(err, sizeof(err), "the record %s does not exist yet", st->opt.path);
		http_error(res, 503, err, "see info.store for the store's status");
		return;
	}
	sqlite3 *db = NULL;
	store_db_vfs_init();
	if (sqlite3_open_v2(st->opt.path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		db_error(res, db, st->opt.path);
		sqlite3_close_v2(db);
		return;
	}
	sqlite3_busy_timeout(db, 2000);

	struct series_info *ser = NULL;
	int n_ser = 0, host = -1;
	sqlite3_stmt *q = NULL;
	json_t *out = NULL;
	if (sqlite3_prepare_v2(db, "SELECT id, name, measured FROM series ORDER BY id", -1, &q,
	                       NULL) != SQLITE_OK)
		goto db_fail;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct series_info *ns = realloc(ser, (size_t)(n_ser + 1) * sizeof(*ser));
		if (!ns)
			goto oom;
		ser = ns;
		struct series_info *s = &ser[n_ser++];
		memset(s, 0, sizeof(*s));
		s->id = sqlite3_column_int64(q, 0);
		snprintf(s->name, sizeof(s->name), "%s", (const char *)sqlite3_column_text(q, 1));
		s->measured = sqlite3_column_int(q, 2) != 0;
		s->uj = calloc((size_t)points, sizeof(*s->uj));
		s->have = calloc((size_t)points, sizeof(*s->have));
		s->ms = calloc((size_t)points, sizeof(*s->ms));
		if (!s->uj || !s->have || !s->ms)
			goto oom;
		if (strcmp(s->name, STORE_HOST_SERIES) == 0)
			host = n_ser - 1;
	}
	if (rc != SQLITE_DONE)
		goto db_fail;
	sqlite3_finalize(q);
	q = NULL;

	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT t, series, energy_uj, covered_ms, coverage FROM energy_%s"
	         " WHERE t >= ?1 AND t < ?2",
	         store_tier_name[tier]);
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
		goto db_fail;
	sqlite3_bind_int64(q, 1, start);
	sqlite3_bind_int64(q, 2, end);
	int64_t cov_ids[64];
	int n_cov = 0;
	bool mixed = false;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t t = sqlite3_column_int64(q, 0), id = sqlite3_column_int64(q, 1);
		int64_t k = (t - start) / step_i;
		int i = 0;
		while (i < n_ser && ser[i].id != id)
			i++;
		if (i == n_ser || k < 0 || k >= points)
			continue;
		ser[i].uj[k] += sqlite3_column_int64(q, 2);
		ser[i].ms[k] += sqlite3_column_int64(q, 3);
		ser[i].have[k] = true;
		if (i == host && sqlite3_column_type(q, 4) == SQLITE_INTEGER) {
			int64_t c = sqlite3_column_int64(q, 4);
			bool known = false;
			for (int j = 0; j < n_cov; j++)
				known |= cov_ids[j] == c;
			if (c == 0)
				mixed = true;
			else if (!known && n_cov < 64)
				cov_ids[n_cov++] = c;
		}
	}
	if (rc != SQLITE_DONE)
		goto db_fail;
	sqlite3_finalize(q);
	q = NULL;

	/* The host's coverage over the range: every distinct set of channels it was made of. */
	json_t *coverages = json_array();
	if (sqlite3_prepare_v2(db, "SELECT channels FROM coverage WHERE id = ?1", -1, &q, NULL) ==
	    SQLITE_OK) {
		for (int j = 0; j < n_cov; j++) {
			sqlite3_reset(q);
			sqlite3_bind_int64(q, 1, cov_ids[j]);
			if (sqlite3_step(q) != SQLITE_ROW)
				continue;
			json_t *ids = json_array();
			char buf[STORE_COVERAGE_MAX], *save = NULL;
			snprintf(buf, sizeof(buf), "%s", (const char *)sqlite3_column_text(q, 0));
			for (char *tok = strtok_r(buf, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save))
				json_array_append_new(ids, json_string(tok));
			json_array_append_new(coverages, ids);
		}
		sqlite3_finalize(q);
		q = NULL;
	}

	json_t *t = json_array(), *covered = json_array(), *channels = json_object();
	for (int64_t k = 0; k < points; k++) {
		json_array_append_new(t, json_integer((json_int_t)(start + k * step_i)));
		int64_t ms = -1;
		for (int i = 0; i < n_ser; i++)
			if (ser[i].have[k] && ser[i].ms[k] > ms)
				ms = ser[i].ms[k];
		json_array_append_new(covered,
		                      ms >= 0 ? json_real((double)ms / 1000.0) : json_null());
	}
	json_t *host_obj = NULL, *emissions = NULL, *cost = NULL;
	int emissions_i = -1, mix_i[CARBON_GROUPS], n_mix = 0;
	for (int i = 0; i < n_ser; i++) {
		/* Stored as integers: microjoules, micrograms, billionths of the currency. */
		json_t *j = json_array();
		for (int64_t k = 0; k < points; k++)
			json_array_append_new(j, ser[i].have[k]
			                             ? json_real((double)ser[i].uj[k] / 1e6)
			                             : json_null());
		if (strncmp(ser[i].name, RECORD_CARBON_MIX_PREFIX,
		            strlen(RECORD_CARBON_MIX_PREFIX)) == 0) {
			json_decref(j);
			if (n_mix < CARBON_GROUPS)
				mix_i[n_mix++] = i;
			continue;
		}
		if (strcmp(ser[i].name, RECORD_CARBON_EMISSIONS) == 0) {
			emissions = j;
			emissions_i = i;
			continue;
		}
		if (strcmp(ser[i].name, RECORD_CARBON_COST) == 0) {
			json_decref(j);
			cost = json_array();
			for (int64_t k = 0; k < points; k++)
				json_array_append_new(
				    cost, ser[i].have[k] ? json_real((double)ser[i].uj[k] / 1e9)
				                         : json_null());
			continue;
		}
		json_t *o = json_pack("{s:o, s:b}", "joules", j, "measured", ser[i].measured);
		if (i == host)
			host_obj = o;
		else
			json_object_set_new(channels, ser[i].name, o);
	}
	if (!host_obj)
		host_obj = json_pack("{s:[], s:b}", "joules", 0);
	/* Emissions and cost per step (estimated: grid factors), and the intensity they imply:
	 * the energy-weighted mean over the step of the intensity that held at each moment. */
	json_t *intensity = json_array();
	for (int64_t k = 0; k < points; k++) {
		bool ok = emissions_i >= 0 && host >= 0 && ser[emissions_i].have[k] &&
		          ser[host].have[k] && ser[host].uj[k] > 0;
		json_array_append_new(intensity, ok ? json_real((double)ser[emissions_i].uj[k] /
		                                                ((double)ser[host].uj[k] / 3.6e6))
		                                    : json_null());
	}
	json_object_set_new(host_obj, "emissions_g", emissions ? emissions : json_null());
	json_object_set_new(host_obj, "cost", cost ? cost : json_null());
	const char *currency = api->d->carbon ? carbon_currency(api->d->carbon) : NULL;
	json_object_set_new(host_obj, "currency", currency ? json_string(currency) : json_null());
	json_object_set_new(host_obj, "coverage", coverages);
	json_object_set_new(host_obj, "coverage_mixed", json_boolean(mixed));
	struct store_info si;
	store_get_info(st, &si);
	out = json_pack("{s:I, s:I, s:I, s:s, s:i, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:f, s:s}}",
	                "from", (json_int_t)start, "to", (json_int_t)end, "step_s",
	                (json_int_t)step_i, "tier", store_tier_name[tier], "tier_step_s",
	                store_tier_step_s[tier], "t", t, "covered_s", covered, "channels", channels,
	                "host", host_obj, "record", "began_at",
	                si.record_began_at > 0 ? json_real(si.record_began_at) : json_null(),
	                "recorded_to", api_jnum(si.recorded_to > 0 ? si.recorded_to : NAN),
	                "pending_s", si.pending_s, "status", store_status_name(si.status));
	json_object_set_new(out, "intensity_g_per_kwh", intensity);
	/* The generation mix per step: each group's share of the energy used while a mix was
	 * known (null where none was). */
	json_t *mix = json_object();
	for (int m = 0; m < n_mix; m++) {
		json_t *shares = json_array();
		for (int64_t k = 0; k < points; k++) {
			int64_t sum = 0;
			bool have = false;
			for (int q = 0; q < n_mix; q++) {
				have |= ser[mix_i[q]].have[k];
				sum += ser[mix_i[q]].have[k] ? ser[mix_i[q]].uj[k] : 0;
			}
			json_array_append_new(
			    shares, have && sum > 0
			                ? json_real((double)ser[mix_i[m]].uj[k] / (double)sum)
			                : json_null());
		}
		json_object_set_new(mix, ser[mix_i[m]].name + strlen(RECORD_CARBON_MIX_PREFIX),
		                    shares);
	}
	json_object_set_new(out, "mix", mix);
	api_reply(res, 200, out);
	goto done;
oom:
	http_error(res, 503, "out of memory", "ask for fewer steps");
	goto done;
db_fail:
	db_error(res, db, st->opt.path);
done:
	sqlite3_finalize(q);
	for (int i = 0; i < n_ser; i++) {
		free(ser[i].uj);
		free(ser[i].have);
		free(ser[i].ms);
	}
	free(ser);
	sqlite3_close_v2(db);
}
