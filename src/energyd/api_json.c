/* The helpers every group of routes shares (api.h): JSON numbers and replies, the host's
 * coverage, the from/to interval of a request. */
#define _GNU_SOURCE
#include "api.h"
#include "energy.h"
#include "query.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

json_t *api_jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

void api_reply(struct http_response *res, int status, json_t *o)
{
	res->status = status;
	res->body = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(16));
	res->content_type = "application/json";
	json_decref(o);
}

void api_reply_writer(struct http_response *res, struct jsonw *w, const char *hint)
{
	char *body = jsonw_finish(w);
	if (!body) {
		http_error(res, 503, "out of memory for this answer", hint);
		return;
	}
	res->status = 200;
	res->body = body;
	res->content_type = "application/json";
}

json_t *api_coverage_ids(const struct daemon *d)
{
	json_t *a = json_array();
	const struct host_coverage *cov = &d->sampler->coverage;
	for (int k = 0; k < cov->n; k++)
		json_array_append_new(a, json_string(d->set->ch[cov->idx[k]].id));
	return a;
}

int api_query_interval(const struct http_request *req, struct http_response *res, double *t0,
                       double *t1)
{
	char err[256];
	double now = energy_wall_time();
	if (query_interval(http_query(req, "from"), http_query(req, "to"), now, NAN, now, t0, t1,
	                   err, sizeof(err)) < 0) {
		http_error(res, 400, err,
		           "give from=T0 and optionally to=T1 as Unix seconds or ISO 8601, "
		           "with from <= to");
		return -EINVAL;
	}
	return 0;
}
