/*
 * GET /api/v1/users?from=T0[&to=T1]: every local user's attributed energy, share, emissions and
 * cost over the whole minutes (or hours, when `from` is older than the minute rows are kept)
 * that cover [T0, T1], from the long-term record. The store sums the rows and apportions the
 * emissions and cost (store_query_users); this file turns them into JSON.
 */
#define _GNU_SOURCE
#include "api.h"
#include "attrib.h"
#include "carbon.h"
#include "energy.h"
#include "record_carbon.h"
#include "store.h"
#include "store_query_users.h"
#include "text.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

/* Micrograms and billionths of the currency as grams and currency units (null when unknown). */
static json_t *scaled(bool have, double v, double scale)
{
	return have ? api_jnum(v / scale) : json_null();
}

static json_t *users_json(struct daemon *d, const struct store_users_total *q)
{
	json_t *users = json_array();
	for (size_t i = 0; i < q->n_users; i++) {
		const struct store_user_total *u = &q->users[i];
		char name[64];
		attrib_user_name((uid_t)u->uid, name, sizeof(name));
		json_array_append_new(users, json_pack("{s:I, s:o, s:f, s:o, s:o, s:o}", "uid",
		                                       (json_int_t)u->uid, "user", text_json(name),
		                                       "joules", (double)u->energy_uj / 1e6,
		                                       "share", api_jnum(u->share), "emissions_g",
		                                       api_jnum(u->emissions_ug / 1e6), "cost",
		                                       api_jnum(u->cost_nano / 1e9)));
	}
	const char *currency = d->carbon ? carbon_currency(d->carbon) : NULL;
	return json_pack(
	    "{s:I, s:I, s:s, s:I, s:o, s:o, s:I, s:b, s:{s:o, s:o, s:o, s:o, s:b}, s:s, s:b}",
	    "from", (json_int_t)q->start, "to", (json_int_t)q->end, "tier",
	    store_tier_name[q->tier], "step_s", (json_int_t)q->step_s, "recorded_to",
	    q->users_recorded_to > 0 ? json_real(q->users_recorded_to) : json_null(), "users",
	    users, "users_total", (json_int_t)q->users_total, "truncated",
	    q->users_total > q->n_users, "host", "joules",
	    scaled(q->have_host, (double)q->host_uj, 1e6), "emissions_g",
	    scaled(q->have_emissions, (double)q->emissions_ug, 1e6), "cost",
	    scaled(q->have_cost, (double)q->cost_nano, 1e9), "currency",
	    currency ? json_string(currency) : json_null(), "measured", q->host_measured, "method",
	    ATTRIB_METHOD, "measured", false);
}

void api_users_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	struct store *st = api->d->store;
	double t0, t1;
	if (api_query_interval(req, res, &t0, &t1) < 0)
		return;
	if (!st || !st->opt.path[0]) {
		http_error(
		    res, 503,
		    "the long-term store is off: per-user energy over a period comes "
		    "from the record",
		    "start energyd without --store off; /api/v1/energy?scope=user:UID answers "
		    "from the history held in memory");
		return;
	}
	int tier = store_users_tier(t0, energy_wall_time(), st->opt.keep_s);
	int64_t step = store_tier_step_s[tier];
	int64_t start = (int64_t)floor(t0 / (double)step) * step;
	int64_t end = (int64_t)ceil(t1 / (double)step) * step;
	if (end <= start)
		end = start + step;
	struct store_users_total q;
	char err[STORE_ERROR_MAX];
	int rc = store_query_users(st->opt.path, tier, start, end, RECORD_CARBON_EMISSIONS,
	                           RECORD_CARBON_COST, &q, err, sizeof(err));
	if (rc < 0) {
		http_error(res, 503, rc == -ENOMEM ? "out of memory" : err,
		           rc == -ENOENT ? "the record is made at energyd's first write; try again"
		                         : "see info.store for the store's status");
		return;
	}
	api_reply(res, 200, users_json(api->d, &q));
	store_users_total_free(&q);
}
