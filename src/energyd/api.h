/* The HTTP API v1 routes (DESIGN.md §5): JSON built from the sampler's state. */
#ifndef ENERGY_API_H
#define ENERGY_API_H

#include "carbon.h"
#include "http.h"
#include "sampler.h"
#include "source.h"
#include "store.h"

#include <jansson.h>
#include <stdatomic.h>
#include <sys/types.h>

#define API_FAMILIES_MAX 32

struct attrib;

struct api {
	struct sampler *sampler;
	struct attrib *attrib;
	struct channel_set *set;
	struct family_report families[API_FAMILIES_MAX];
	int n_families;
	char hostname[256];
	uid_t uid;
	char user[64];
	char privileges[256]; /* what happened to root, for info */
	char state_dir[512];
	double min_interval_s;
	double history_s;
	const char *listen[8];
	int n_listen;
	struct store *store;   /* the long-term record */
	struct carbon *carbon; /* intensity, emissions and cost (carbon.h) */
	int heavy_max;         /* history and longterm answers built at once (docs/security.md) */
	atomic_int heavy_running;
	struct influx *influx; /* InfluxDB output, or NULL (influx.h) */
};

void api_handle(void *ctx, const struct http_request *req, struct http_response *res);

/* GET /metrics (api_metrics.c). */
void api_metrics_route(struct api *api, struct http_response *res);

/* from= and to= of a request (to defaults to now): 0, or -EINVAL with a 400 answer set. */
int api_query_interval(const struct http_request *req, struct http_response *res, double *t0,
                       double *t1);

/* The `now` object (also one event of the stream); takes the sampler lock. */
json_t *api_now(struct api *api);

#endif
