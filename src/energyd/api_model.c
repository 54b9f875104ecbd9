/*
 * GET /api/v1/model: the hardware-counter model behind "hwpc-model" attribution (hwpc.h,
 * docs/attribution.md): whether the counters work, the sockets (their CPUs, rates and own
 * layers, at most HWPC_SOCKETS_MAX), and for each layer (one per 100 MHz of effective frequency,
 * at most HWPC_LAYERS_MAX, or one for every frequency) its coefficients, intercept and bound,
 * samples, error window and last re-learn. A bounded number of fields: the answer's size does
 * not grow with anything a client controls.
 */
#include "api.h"
#include "attrib.h"
#include "hwpc.h"

#include <math.h>
#include <string.h>

static const char *const event_names[HWPC_EVENTS] = {"cycles", "instructions", "cache_misses"};

/* Layer i of L: the machine's (h->layers, socket "all") or a socket's (socket: its package);
 * splits: whether it split the last window. */
static json_t *layer_json(const struct hwpc *h, const struct hwpc_layers *L, int i,
                          const char *socket, bool splits)
{
	const struct hwpc_layer *l = &L->layer[i];
	const struct hwpc_model *m = &l->model;
	char why[256], range[48];
	bool usable = hwpc_model_usable(m, why, sizeof(why));
	json_t *coef = json_object();
	for (int k = 0; k < HWPC_EVENTS; k++)
		json_object_set_new(coef, event_names[k], json_real(m->coef[k]));
	json_t *errw = json_pack("{s:i, s:i, s:o, s:o, s:f}", "size", m->window, "n", m->n_err,
	                         "median_watts", api_jnum(hwpc_model_median_error(m)), "last_watts",
	                         api_jnum(m->last_error_w), "threshold_watts", HWPC_ERROR_MAX_W);
	snprintf(range, sizeof(range), "%d-%d MHz", l->lo_mhz, l->hi_mhz);
	json_t *o = json_pack(
	    "{s:s, s:s, s:o, s:b, s:b, s:o, s:s, s:f, s:o, s:s, s:i, s:I, s:o, s:i, s:o, "
	    "s:o, s:b, s:o}",
	    "socket", socket, "frequency", l->hi_mhz ? range : "all", "frequency_mhz",
	    l->hi_mhz ? json_pack("{s:i, s:i}", "from", l->lo_mhz, "to", l->hi_mhz) : json_null(),
	    "fitted", m->fitted, "with_intercept", m->with_intercept, "coefficients", coef,
	    "coefficients_unit", "watts per (count per second)", "intercept_watts",
	    m->with_intercept ? m->intercept : 0.0, "intercept_bound_watts",
	    h->bound_w > 0 ? json_real(h->bound_w) : json_null(), "intercept_bound_source",
	    h->bound_source, "samples", m->n_hist, "samples_total", (json_int_t)m->samples,
	    "error_window", errw, "relearns", m->relearns, "last_relearn",
	    m->last_relearn_t > 0 ? json_real(m->last_relearn_t) : json_null(), "last_fit",
	    m->last_fit_t > 0 ? json_real(m->last_fit_t) : json_null(), "usable", usable, "reason",
	    usable ? json_null() : json_string(why));
	json_object_set_new(o, "splits_last_window", json_boolean(splits));
	return o;
}

/* The effective frequency behind the layers, and how the last window was split. */
static json_t *frequency_json(const struct hwpc *h)
{
	return json_pack("{s:b, s:o, s:s, s:i, s:i, s:o, s:o}", "available", h->freq_on, "error",
	                 h->freq_on ? json_null() : json_string(h->freq_error), "source",
	                 "perf msr PMU: APERF and MPERF per CPU, TSC", "layer_step_mhz",
	                 HWPC_LAYER_MHZ, "layers_max", h->freq_on ? HWPC_LAYERS_MAX : 1,
	                 "last_window_mhz", h->freq_on ? api_jnum(h->mhz) : json_null(),
	                 "last_window_note", h->note[0] ? json_string(h->note) : json_null());
}

/* The sockets whose CPUs' counters are summed apart, and their rates in the last window. */
static json_t *sockets_json(const struct hwpc *h)
{
	json_t *arr = json_array();
	for (int s = 0; s < h->n_sockets; s++) {
		json_t *cpus = json_array(), *rates = json_object();
		for (int i = 0; i < h->n_cpus; i++)
			if (h->sock[i] == s)
				json_array_append_new(cpus, json_integer(h->cpu[i]));
		for (int k = 0; k < HWPC_EVENTS; k++)
			json_object_set_new(rates, event_names[k], json_real(h->srate[s][k]));
		json_t *layers = json_array();
		char pkg[16];
		snprintf(pkg, sizeof(pkg), "%d", h->socket_pkg[s]);
		for (int i = 0; h->slayers && i < h->slayers[s].n; i++)
			json_array_append_new(
			    layers, layer_json(h, &h->slayers[s], i, pkg, h->spred[s] == i));
		json_array_append_new(
		    arr,
		    json_pack("{s:o, s:o, s:o, s:s, s:o}", "package",
		              h->socket_pkg[s] >= 0 ? json_integer(h->socket_pkg[s]) : json_null(),
		              "cpus", cpus, "rates_last_window", rates, "rates_unit",
		              "counts per second, user space", "layers", layers));
	}
	return arr;
}

void api_model_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	(void)req;
	struct attrib *a = api->d->attrib;
	attrib_lock(a);
	const struct hwpc *h = attrib_hwpc(a);
	if (!h) {
		attrib_unlock(a);
		http_error(res, 503, "the hardware-counter model is not available (out of memory)",
		           "attribution uses CPU time shares");
		return;
	}
	json_t *events = json_array();
	for (int k = 0; k < HWPC_EVENTS; k++)
		json_array_append_new(events, json_string(event_names[k]));
	/* With several sockets, the sockets' layers split (the machine's only channels of none). */
	bool in_use = h->on && h->usable, any_socket = false;
	for (int k = 0; h->slayers && k < h->n_sockets; k++)
		any_socket |= h->spred[k] >= 0;
	in_use |= h->on && any_socket;
	json_t *o = json_pack(
	    "{s:s, s:o, s:{s:b, s:o, s:i, s:o, s:i, s:i, s:i, s:i, s:i, s:i}, s:f, s:o, "
	    "s:b}",
	    "method", in_use ? HWPC_METHOD : ATTRIB_METHOD, "method_reason",
	    in_use ? json_null() : json_string(h->on ? h->reason : h->error), "counters",
	    "available", h->on, "error", h->on ? json_null() : json_string(h->error), "cpus",
	    h->n_cpus, "events", events, "watches_counted", h->n_view, "cgroups_counted",
	    h->view_cgroups, "cgroups_max", h->cgroups_max, "cgroups_opened_before_drop",
	    h->n_pool_open, "descriptors", h->view_fds, "descriptors_max", HWPC_FDS_MAX, "window_s",
	    HWPC_WINDOW_MIN_S, "layers", json_array(), "measured", false);
	for (int i = 0; o && h->on && i < h->layers.n; i++)
		json_array_append_new(
		    json_object_get(o, "layers"),
		    layer_json(h, &h->layers, i, "all", !h->slayers && h->usable && h->pred == i));
	if (o) {
		json_object_set_new(json_object_get(o, "counters"), "frequency", frequency_json(h));
		json_object_set_new(json_object_get(o, "counters"), "sockets", sockets_json(h));
	}
	attrib_unlock(a);
	api_reply(res, 200, o);
}
