/* GET /api/v1/info and /api/v1/sources: who energyd is, what it found, what the record holds. */
#define _GNU_SOURCE
#include "api.h"
#include "calib.h"
#include "store.h"
#include "energy.h"

#include <unistd.h>

void api_info_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	(void)req;
	struct daemon *d = api->d;
	json_t *listen = json_array();
	for (int i = 0; i < d->n_listen; i++)
		json_array_append_new(listen, json_string(d->listen[i]));
	json_t *o = json_pack(
	    "{s:s, s:s, s:o, s:f, s:f, s:f, s:I, s:s, s:I, s:s, s:o, s:s, s:n}", "version",
	    ENERGY_VERSION, "hostname", d->hostname, "started_at",
	    json_real(d->sampler->started_at), "interval_s", (double)d->sampler->interval_ns / 1e9,
	    "min_interval_s", d->min_interval_s, "history_s", d->history_s, "uid",
	    (json_int_t)d->uid, "user", d->user, "pid", (json_int_t)getpid(), "privileges",
	    d->privileges, "listen", listen, "state_dir", d->state_dir, "store_path");
	api_record_info(d, o); /* the record opens relative to the state directory */
	json_object_set_new(o, "model_calibration", calib_json(d->calib));
	api_reply(res, 200, o);
}

void api_sources_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	(void)req;
	struct daemon *d = api->d;
	json_t *channels = json_array();
	sampler_lock(d->sampler);
	for (int c = 0; c < d->set->n; c++) {
		const struct channel *ch = &d->set->ch[c];
		json_t *inc = json_array();
		for (int k = 0; k < ch->n_includes; k++)
			json_array_append_new(inc, json_string(ch->includes[k]));
		char desc[512] = "";
		if (ch->family && ch->family->describe)
			ch->family->describe(ch, desc, sizeof(desc));
		json_array_append_new(
		    channels,
		    json_pack("{s:s, s:s, s:s, s:b, s:s, s:o, s:o, s:s, s:s, s:b}", "id", ch->id,
		              "kind", channel_kind_name(ch->kind), "label", ch->label, "measured",
		              ch->measured, "status", channel_status_name(ch->status), "error",
		              ch->error[0] ? json_string(ch->error) : json_null(), "includes", inc,
		              "family", ch->family ? ch->family->name : "", "description", desc,
		              "host_meter", ch->host_meter));
	}
	sampler_unlock(d->sampler);
	json_t *families = json_array();
	for (int i = 0; i < d->n_families; i++) {
		const struct family_report *f = &d->families[i];
		json_array_append_new(families, json_pack("{s:s, s:s, s:s}", "name", f->name,
		                                          "status", family_status_name(f->status),
		                                          "detail", f->detail));
	}
	json_t *o = json_pack("{s:o, s:o, s:{s:o, s:s, s:b}}", "channels", channels, "families",
	                      families, "host", "coverage", api_coverage_ids(d), "rule",
	                      d->sampler->coverage.rule, "measured", d->sampler->coverage.measured);
	json_object_set_new(o, "store", api_record_status(d));
	json_object_set_new(o, "model_calibration", calib_json(d->calib));
	api_reply(res, 200, o);
}
