/*
 * GET /metrics: the Prometheus text format (docs/api.md), built from the sampler's state under
 * its lock like every other answer: a scrape never reads a sensor.
 */
#define _GNU_SOURCE
#include "api.h"
#include "energy.h"

#include <math.h>
#include <stdio.h>

#define METRICS_WATTS_WINDOW_S 1.0 /* energy_watts: mean power over the last second */

/* Samples spanning the last `window_s` before the newest one: how many steps back. */
static size_t window_steps(const struct sampler *s, double window_s)
{
	double steps = window_s / ((double)s->interval_ns / 1e9);
	size_t n = (size_t)(steps + 0.5);
	return n < 1 ? 1 : n;
}

void api_metrics_route(struct api *api, struct http_response *res)
{
	struct sampler *s = api->sampler;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		http_error(res, 503, "out of memory", "");
		return;
	}
	size_t step = window_steps(s, METRICS_WATTS_WINDOW_S);
	fprintf(f, "# HELP energy_joules_total Energy since energyd started, per channel.\n"
	           "# TYPE energy_joules_total counter\n");
	sampler_lock(s);
	const struct history *h = &s->history;
	size_t last = h->count ? h->count - 1 : 0;
	for (int c = 0; c < api->set->n; c++) {
		const struct channel *ch = &api->set->ch[c];
		fprintf(f, "energy_joules_total{channel=\"%s\",kind=\"%s\",measured=\"%s\"} %.6f\n",
		        ch->id, channel_kind_name(ch->kind), ch->measured ? "true" : "false",
		        (double)ch->energy_uj / 1e6);
	}
	fprintf(f, "# HELP energy_watts Mean power over the last second, per channel.\n"
	           "# TYPE energy_watts gauge\n");
	for (int c = 0; c < api->set->n; c++) {
		const struct channel *ch = &api->set->ch[c];
		double w;
		if (history_watts(h, c, last, step, &w) == 0)
			fprintf(f,
			        "energy_watts{channel=\"%s\",kind=\"%s\",measured=\"%s\"} %.6f\n",
			        ch->id, channel_kind_name(ch->kind),
			        ch->measured ? "true" : "false", w);
	}
	double hw;
	fprintf(f,
	        "# HELP energy_host_joules_total Energy of the whole machine (host total) since "
	        "energyd started.\n# TYPE energy_host_joules_total counter\n"
	        "energy_host_joules_total{measured=\"%s\"} %.6f\n",
	        s->coverage.measured ? "true" : "false", (double)s->host_uj / 1e6);
	if (history_watts(h, HISTORY_HOST, last, step, &hw) == 0)
		fprintf(f,
		        "# HELP energy_host_watts Power of the whole machine (host total).\n"
		        "# TYPE energy_host_watts gauge\nenergy_host_watts{measured=\"%s\"} %.6f\n",
		        s->coverage.measured ? "true" : "false", hw);
	if (api->carbon && h->count) {
		/* Estimates from the carbon module (docs/carbon.md), labelled with their origin. */
		double grams, cost, g_per_kwh;
		carbon_totals(api->carbon, history_time(h, last), (double)s->host_uj / 1e6, &grams,
		              &cost);
		json_t *b = carbon_json_brief(api->carbon, energy_wall_time());
		const char *prov = json_string_value(json_object_get(b, "provider"));
		const char *zone = json_string_value(json_object_get(b, "zone"));
		if (isfinite(grams))
			fprintf(
			    f,
			    "# HELP energy_host_emissions_grams_total Estimated grams CO2eq of the "
			    "host total since energyd started.\n"
			    "# TYPE energy_host_emissions_grams_total counter\n"
			    "energy_host_emissions_grams_total{provider=\"%s\",zone=\"%s\"} %.9g\n",
			    prov, zone, grams);
		if (carbon_intensity_at(api->carbon, INFINITY, &g_per_kwh, NULL, NULL) == 0)
			fprintf(
			    f,
			    "# HELP energy_carbon_intensity_g_per_kwh Carbon intensity in force.\n"
			    "# TYPE energy_carbon_intensity_g_per_kwh gauge\n"
			    "energy_carbon_intensity_g_per_kwh{provider=\"%s\",zone=\"%s\"} %.9g\n",
			    prov, zone, g_per_kwh);
		json_decref(b);
	}
	sampler_unlock(s);
	fclose(f);
	res->status = 200;
	res->body = buf;
	res->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
