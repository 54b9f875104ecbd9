/* The route table of the API v1 and the gate on heavy answers (api.h). */
#include "api.h"

#include <string.h>

/*
 * The answers that cost most (history with many points, longterm over many steps) are built by
 * at most heavy_max requests at once; beyond that 503 with Retry-After, so that many clients
 * asking at once cannot multiply the daemon's memory.
 */
static bool heavy_enter(struct api *api, struct http_response *res)
{
	int max = api->heavy_max > 0 ? api->heavy_max : 2;
	if (atomic_fetch_add(&api->heavy_running, 1) < max)
		return true;
	atomic_fetch_sub(&api->heavy_running, 1);
	http_error(res, 503, "busy: too many history, runs, longterm or users queries at once",
	           "retry after the delay in Retry-After (heavy_queries limits them)");
	res->retry_after_s = 1;
	return false;
}

static void heavy_leave(struct api *api)
{
	atomic_fetch_sub(&api->heavy_running, 1);
}

/* What a route answers, and what the table checks before calling it. */
struct api_route {
	const char *path;
	bool subpaths;     /* also path/ANYTHING (watch/ID) */
	bool any_method;   /* the route checks the method itself; else GET and HEAD only */
	bool needs_attrib; /* 503 while attribution is off */
	bool heavy;        /* counted by the heavy-query gate */
	void (*handle)(struct api *api, const struct http_request *req, struct http_response *res);
};

static const struct api_route routes[] = {
    {"/api/v1/info", .handle = api_info_route},
    {"/api/v1/sources", .handle = api_sources_route},
    {"/api/v1/now", .handle = api_now_route},
    {"/api/v1/history", .heavy = true, .handle = api_history_route},
    {"/api/v1/energy", .handle = api_energy_route},
    {"/api/v1/runs", .heavy = true, .handle = api_runs_route},
    {"/api/v1/stream", .handle = api_stream_route},
    {"/api/v1/longterm", .heavy = true, .handle = api_longterm_route},
    {"/api/v1/users", .heavy = true, .handle = api_users_route},
    {"/api/v1/carbon", .handle = api_carbon_route},
    {"/api/v1/processes", .needs_attrib = true, .handle = api_processes_route},
    {"/api/v1/watch", .subpaths = true, .any_method = true, .needs_attrib = true,
     .handle = api_watch_route},
    {"/api/v1/model", .needs_attrib = true, .handle = api_model_route},
    {"/metrics", .handle = api_metrics_route},
};

static bool route_matches(const struct api_route *r, const char *path)
{
	size_t n = strlen(r->path);
	return strncmp(path, r->path, n) == 0 &&
	       (path[n] == '\0' || (r->subpaths && path[n] == '/'));
}

void api_handle(void *ctx, const struct http_request *req, struct http_response *res)
{
	struct api *api = ctx;
	const struct api_route *r = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]) && !r; i++)
		if (route_matches(&routes[i], req->path))
			r = &routes[i];
	if (!r) {
		http_error(
		    res, 404, "no such endpoint",
		    "see the API table: /api/v1/info, sources, now, history, energy, "
		    "runs, longterm, users, carbon, stream, processes, watch, model, /metrics");
		return;
	}
	if (r->needs_attrib && api_attrib_off(api, res))
		return;
	if (!r->any_method && strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		http_error(res, 405, "method not allowed", "this endpoint answers GET");
		return;
	}
	if (r->heavy && !heavy_enter(api, res))
		return;
	r->handle(api, req, res);
	if (r->heavy)
		heavy_leave(api);
}
