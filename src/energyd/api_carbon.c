/* GET /api/v1/carbon and the `carbon` object of now and energy answers (docs/carbon.md): the
 * carbon module's view turned into JSON. */
#include "api.h"
#include "carbon.h"
#include "energy.h"
#include "text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *mix_json(const struct carbon_step *s)
{
	if (!s->have_mix)
		return json_null();
	json_t *o = json_object();
	for (int g = 0; g < CARBON_GROUPS; g++)
		json_object_set_new(o, carbon_group_name((enum carbon_group)g),
		                    json_real(s->mix[g]));
	return o;
}

static json_t *brief_json(const struct carbon_view *v)
{
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:b}", "provider", v->provider,
	                 "zone", v->zone, "intensity_g_per_kwh",
	                 v->have_current ? json_real(v->current.g_per_kwh) : json_null(),
	                 "updated_at", api_jnum(v->data_time), "fetched_at",
	                 api_jnum(v->fetched_at), "age_s",
	                 v->live ? api_jnum(v->age_s) : json_null(), "status", v->status, "error",
	                 v->error[0] ? text_json(v->error) : json_null(), "estimated", true);
}

json_t *api_carbon_brief(struct carbon *c, double now)
{
	struct carbon_view v;
	carbon_view(c, now, &v, NULL, 0);
	return brief_json(&v);
}

static json_t *price_schedule_json(const struct carbon_config *cfg)
{
	if (!cfg->n_schedule)
		return json_null();
	json_t *price = json_array();
	for (int i = 0; i < cfg->n_schedule; i++) {
		char hm[8];
		snprintf(hm, sizeof(hm), "%02d:%02d", cfg->schedule[i].minute / 60,
		         cfg->schedule[i].minute % 60);
		json_array_append_new(
		    price, json_pack("{s:s, s:f}", "from", hm, "price", cfg->schedule[i].price));
	}
	return price;
}

static json_t *carbon_full_json(struct carbon *c, double now, bool with_series)
{
	struct carbon_view v;
	struct carbon_step *series = NULL;
	if (with_series)
		series = malloc(CARBON_SERIES_JSON * sizeof(*series));
	carbon_view(c, now, &v, series, series ? CARBON_SERIES_JSON : 0);
	json_t *o = brief_json(&v);
	json_object_set_new(o, "mix", v.have_current ? mix_json(&v.current) : json_null());
	json_object_set_new(o, "source", text_json(v.source));
	json_object_set_new(o, "note", v.note[0] ? text_json(v.note) : json_null());
	json_object_set_new(o, "refresh_s", v.live ? json_real(v.refresh_s) : json_null());
	json_object_set_new(o, "attempted_at", api_jnum(v.attempted_at));
	if (with_series) {
		json_t *a = json_array();
		for (size_t i = 0; i < v.n_series; i++)
			json_array_append_new(
			    a, json_pack("{s:o, s:f, s:o}", "t", api_jnum(series[i].t),
			                 "intensity_g_per_kwh", series[i].g_per_kwh, "mix",
			                 mix_json(&series[i])));
		json_object_set_new(o, "series", a);
		json_object_set_new(o, "series_steps", json_integer((json_int_t)v.n_steps));
	}
	free(series);
	json_object_set_new(o, "price_per_kwh", api_jnum(v.price_now));
	json_object_set_new(o, "price_schedule", price_schedule_json(v.cfg));
	json_object_set_new(o, "currency", v.currency ? json_string(v.currency) : json_null());
	return o;
}

void api_carbon_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	const char *series = http_query(req, "series");
	if (series && strcmp(series, "0") != 0 && strcmp(series, "1") != 0) {
		http_error(res, 400, "series: expected 0 or 1", "series=1 adds the steps held");
		return;
	}
	if (!api->d->carbon) {
		http_error(res, 503, "no carbon provider configured", "see docs/carbon.md");
		return;
	}
	api_reply(res, 200,
	          carbon_full_json(api->d->carbon, energy_wall_time(),
	                           !series || strcmp(series, "1") == 0));
}
