/*
 * GET /metrics: the Prometheus text format (docs/api.md#metrics), built from the sampler's and
 * the attribution's state under their locks like every other answer: a scrape never reads a
 * sensor or /proc. Counters count from energyd's start (they reset when it restarts, which
 * Prometheus's rate() and increase() handle; energy_start_time_seconds tells when). Label
 * values pass through metrics_put_label (escaped, valid UTF-8); the series per cgroup and per
 * user are bounded (metrics.h).
 */
#define _GNU_SOURCE
#include "api.h"
#include "attrib.h"
#include "carbon.h"
#include "energy.h"
#include "influx.h"
#include "metrics.h"
#include "store.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* energy_watts: mean power over at least the last second (history_watts_window) */
#define METRICS_WATTS_WINDOW_S 1.0

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric without labels: its header and its value with that many decimals. */
static void put_value(FILE *f, const char *name, const char *type, const char *help, double v,
                      int decimals)
{
	head(f, name, type, help);
	fprintf(f, "%s %.*f\n", name, decimals, v);
}

static const char *tf(bool b)
{
	return b ? "true" : "false";
}

/* energy_info, the sample interval, the channels' status and the record's health. */
static void put_health(FILE *f, struct api *api)
{
	struct sampler *s = api->d->sampler;
	head(f, "energy_info", "gauge",
	     "energyd's version and the host total's rule and coverage (always 1).");
	fputs("energy_info{version=\"", f);
	metrics_put_label(f, ENERGY_VERSION);
	fputs("\",host_rule=\"", f);
	metrics_put_label(f, s->coverage.rule);
	fputs("\",coverage=\"", f);
	for (int k = 0; k < s->coverage.n; k++) {
		if (k)
			fputc(',', f);
		metrics_put_label(f, api->d->set->ch[s->coverage.idx[k]].id);
	}
	fprintf(f, "\",measured=\"%s\"} 1\n", tf(s->coverage.measured));
	head(f, "energy_start_time_seconds", "gauge",
	     "When energyd started (Unix seconds); the counters count from here.");
	fprintf(f, "energy_start_time_seconds %.6f\n", s->started_at);
	head(f, "energy_sample_interval_seconds", "gauge", "The sampler's interval.");
	fprintf(f, "energy_sample_interval_seconds %.6f\n", (double)s->interval_ns / 1e9);
	head(f, "energy_channel_up", "gauge",
	     "1 while the channel's reads succeed, 0 while they fail (status degraded).");
	for (int c = 0; c < api->d->set->n; c++) {
		fputs("energy_channel_up{channel=\"", f);
		metrics_put_label(f, api->d->set->ch[c].id);
		fprintf(f, "\"} %d\n", api->d->set->ch[c].status == CHANNEL_OK);
	}
}

static void put_store(FILE *f, struct api *api)
{
	if (!api->d->store)
		return;
	struct store_info si;
	store_get_info(api->d->store, &si);
	if (si.status == STORE_OFF)
		return; /* no record by configuration: nothing to watch */
	head(f, "energy_store_up", "gauge",
	     "1 while the long-term record is written (status ok or starting), else 0.");
	fprintf(f, "energy_store_up{status=\"%s\"} %d\n", store_status_name(si.status),
	        si.status == STORE_OK || si.status == STORE_STARTING);
	put_value(f, "energy_store_pending_seconds", "gauge",
	          "Seconds sampled but not yet in the record.", si.pending_s, 3);
	put_value(f, "energy_store_dropped_seconds_total", "counter",
	          "Seconds that never reached the record (memory full), since energyd started.",
	          si.dropped_s, 3);
	put_value(f, "energy_store_failures_total", "counter",
	          "Failed batch writes to the record since energyd started.", (double)si.failures,
	          0);
	put_value(f, "energy_store_batches_total", "counter",
	          "Batches written to the record since energyd started.", (double)si.batches, 0);
}

static void put_influx(FILE *f, struct api *api)
{
	if (!api->d->influx)
		return;
	struct influx_stats st;
	influx_get_stats(api->d->influx, &st);
	static const char *const help[4][3] = {
	    {"energy_influxdb_batches_written_total", "counter",
	     "Batches written to InfluxDB since energyd started."},
	    {"energy_influxdb_batches_dropped_total", "counter",
	     "Batches dropped since energyd started: the oldest when the queue was full, or "
	     "refused by the server as bad data."},
	    {"energy_influxdb_write_failures_total", "counter",
	     "Failed writes to InfluxDB (retried with backoff)."},
	    {"energy_influxdb_batches_pending", "gauge", "Batches waiting to be written."}};
	double v[4] = {(double)st.batches_written, (double)st.batches_dropped,
	               (double)st.write_failures, (double)st.batches_pending};
	for (int k = 0; k < 4; k++)
		put_value(f, help[k][0], help[k][1], help[k][2], v[k], 0);
}

/* The bounded cgroup series keep state between scrapes (metrics.h); one energyd, one state. */
static pthread_mutex_t cgroups_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_cgroups cgroups;

static void put_cgroups(FILE *f, struct attrib *a)
{
	pthread_mutex_lock(&cgroups_lock);
	const struct attrib_cgroup *scanned;
	size_t n_scanned = attrib_cgroups_locked(a, &scanned);
	if (metrics_cgroups_update(&cgroups, scanned, n_scanned) == 0) {
		head(
		    f, "energy_cgroup_joules_total", "counter",
		    "Estimated energy of a leaf cgroup (CPU-time share of the active energy) since "
		    "energyd started; at most 32 cgroups, the rest in cgroup=\"other\".");
		for (int k = 0; k < cgroups.n_top; k++) {
			char pod[METRICS_POD_UID_MAX], ctr[METRICS_CONTAINER_MAX];
			metrics_cgroup_ids(cgroups.top[k], pod, ctr);
			fputs("energy_cgroup_joules_total{cgroup=\"", f);
			metrics_put_label(f, cgroups.top[k]);
			fputc('"', f);
			if (pod[0])
				fprintf(f, ",pod_uid=\"%s\"", pod);
			if (ctr[0])
				fprintf(f, ",container_id=\"%s\"", ctr);
			fprintf(f, ",measured=\"false\"} %.6f\n", cgroups.top_uj[k] / 1e6);
		}
		fprintf(f, "energy_cgroup_joules_total{cgroup=\"other\",measured=\"false\"} %.6f\n",
		        cgroups.other_uj / 1e6);
		head(f, "energy_cgroups", "gauge", "Leaf cgroups seen by the last scan.");
		fprintf(f, "energy_cgroups %zu\n", cgroups.n_leaves);
	}
	pthread_mutex_unlock(&cgroups_lock);
}

static void put_users(FILE *f, const struct attrib_user *users, size_t n)
{
	head(f, "energy_user_joules_total", "counter",
	     "Estimated energy of a user's processes (CPU-time share of the active energy) since "
	     "energyd started; at most 256 users, the rest in user=\"other\".");
	double other = 0;
	for (size_t i = 0; i < n; i++) {
		if (i >= METRICS_USERS_MAX) {
			other += users[i].uj;
			continue;
		}
		char name[64];
		attrib_user_name(users[i].uid, name, sizeof(name));
		fprintf(f, "energy_user_joules_total{uid=\"%u\",user=\"", (unsigned)users[i].uid);
		metrics_put_label(f, name);
		fprintf(f, "\",measured=\"false\"} %.6f\n", users[i].uj / 1e6);
	}
	if (n > METRICS_USERS_MAX)
		fprintf(f,
		        "energy_user_joules_total{uid=\"other\",user=\"other\",measured=\"false\"} "
		        "%.6f\n",
		        other / 1e6);
}

/* Energy per user, per watch, per leaf cgroup, and the host's active / idle split. */
static void put_attribution(FILE *f, struct api *api)
{
	struct attrib *a = api->d->attrib;
	if (!a || attrib_off_reason(a))
		return;
	attrib_lock(a);
	struct attrib_status st;
	attrib_status_locked(a, &st);
	double part[3] = {st.active_uj, st.idle_uj, st.unattr_uj};
	static const char *const parts[3][2] = {
	    {"energy_host_active_joules_total",
	     "Estimated part of the host total that ran while CPUs were busy (split by CPU time)."},
	    {"energy_host_idle_joules_total",
	     "Estimated part of the host total that ran while CPUs were idle."},
	    {"energy_host_unattributed_joules_total",
	     "Part of the host total that no process can be given (GPUs without shares)."}};
	for (int k = 0; k < 3; k++) {
		head(f, parts[k][0], "counter", parts[k][1]);
		fprintf(f, "%s{measured=\"false\"} %.6f\n", parts[k][0], part[k] / 1e6);
	}
	head(f, "energy_attribution_scan_time_seconds", "gauge",
	     "When the last full process scan ended (Unix seconds): the per-user and per-cgroup "
	     "counters hold the energy up to it.");
	fprintf(f, "energy_attribution_scan_time_seconds %.6f\n", st.have_scan ? st.scan_t : 0.0);
	/* Users: copied now, named after the lock is released (a name lookup may be slow). */
	struct attrib_user *users = malloc((st.n_users ? st.n_users : 1) * sizeof(*users));
	size_t n_users = users ? attrib_users_locked(a, users, st.n_users) : 0;
	head(f, "energy_watch_joules_total", "counter",
	     "Estimated energy of a watched process tree or cgroup (a Jupyter kernel, energy run) "
	     "since it was registered; at most 256 watches.");
	struct attrib_watch *const *watches;
	int n_watches = attrib_watches_locked(a, &watches);
	for (int j = 0; j < n_watches; j++) {
		const struct attrib_watch *w = watches[j];
		fprintf(f, "energy_watch_joules_total{watch=\"%d\",label=\"", w->id);
		metrics_put_label(f, w->label);
		fprintf(f, "\",measured=\"false\"} %.6f\n", w->uj / 1e6);
	}
	if (st.have_scan)
		put_cgroups(f, a);
	attrib_unlock(a);
	if (users)
		put_users(f, users, n_users);
	free(users);
}

/* {channel="…",kind="…",measured="…"} of channel c. */
static void put_channel_labels(FILE *f, const struct channel *ch)
{
	fputs("{channel=\"", f);
	metrics_put_label(f, ch->id);
	fprintf(f, "\",kind=\"%s\",measured=\"%s\"}", channel_kind_name(ch->kind),
	        tf(ch->measured));
}

/* Emissions and the intensity in force, estimates from the carbon module (docs/carbon.md),
 * labelled with their origin. With the sampler's lock held. */
static void put_carbon(FILE *f, struct api *api)
{
	struct sampler *s = api->d->sampler;
	const struct history *h = &s->history;
	double grams, cost, g_per_kwh;
	carbon_totals(api->d->carbon, history_time(h, h->count - 1), (double)s->host_uj / 1e6,
	              &grams, &cost);
	struct carbon_view view;
	carbon_view(api->d->carbon, energy_wall_time(), &view, NULL, 0);
	const char *prov = view.provider, *zone = view.zone;
	static const char *const names[2][2] = {
	    {"energy_host_emissions_grams_total",
	     "Estimated grams CO2eq of the host total since energyd started."},
	    {"energy_carbon_intensity_g_per_kwh", "Carbon intensity in force."}};
	double v[2] = {grams, NAN};
	if (carbon_intensity_at(api->d->carbon, INFINITY, &g_per_kwh, NULL, NULL) == 0)
		v[1] = g_per_kwh;
	for (int k = 0; k < 2; k++) {
		if (!isfinite(v[k]))
			continue;
		head(f, names[k][0], k ? "gauge" : "counter", names[k][1]);
		fprintf(f, "%s{provider=\"", names[k][0]);
		metrics_put_label(f, prov ? prov : "");
		fputs("\",zone=\"", f);
		metrics_put_label(f, zone ? zone : "");
		fprintf(f, "\"} %.9g\n", v[k]);
	}
	const char *currency = carbon_currency(api->d->carbon);
	if (currency && isfinite(cost)) {
		head(f, "energy_host_cost_total", "counter",
		     "Estimated cost of the host total since energyd started, in the currency.");
		fputs("energy_host_cost_total{currency=\"", f);
		metrics_put_label(f, currency);
		fprintf(f, "\"} %.9g\n", cost);
	}
}

void api_metrics_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	(void)req;
	struct sampler *s = api->d->sampler;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		http_error(res, 503, "out of memory", "");
		return;
	}
	sampler_lock(s);
	const struct history *h = &s->history;
	size_t last = h->count ? h->count - 1 : 0;
	head(f, "energy_joules_total", "counter", "Energy since energyd started, per channel.");
	for (int c = 0; c < api->d->set->n; c++) {
		fputs("energy_joules_total", f);
		put_channel_labels(f, &api->d->set->ch[c]);
		fprintf(f, " %.6f\n", (double)api->d->set->ch[c].energy_uj / 1e6);
	}
	head(f, "energy_watts", "gauge", "Mean power over the last second, per channel.");
	for (int c = 0; c < api->d->set->n; c++) {
		double w;
		if (history_watts_window(h, c, last, METRICS_WATTS_WINDOW_S, &w, NULL) < 0)
			continue;
		fputs("energy_watts", f);
		put_channel_labels(f, &api->d->set->ch[c]);
		fprintf(f, " %.6f\n", w);
	}
	const char *measured = tf(s->coverage.measured);
	head(f, "energy_host_joules_total", "counter",
	     "Energy of the whole machine (host total) since energyd started.");
	fprintf(f, "energy_host_joules_total{measured=\"%s\"} %.6f\n", measured,
	        (double)s->host_uj / 1e6);
	double hw;
	if (history_watts_window(h, HISTORY_HOST, last, METRICS_WATTS_WINDOW_S, &hw, NULL) == 0) {
		head(f, "energy_host_watts", "gauge", "Power of the whole machine (host total).");
		fprintf(f, "energy_host_watts{measured=\"%s\"} %.6f\n", measured, hw);
	}
	if (api->d->carbon && h->count)
		put_carbon(f, api);
	put_health(f, api);
	sampler_unlock(s);
	put_store(f, api);
	put_influx(f, api);
	put_attribution(f, api);
	if (fclose(f) != 0) {
		free(buf);
		http_error(res, 503, "out of memory", "");
		return;
	}
	res->status = 200;
	res->body = buf;
	res->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
