/*
 * The HTTP API v1 (DESIGN.md §5, docs/api.md): a route table (api_routes.c) and one file per
 * group of routes: api_info.c (info, sources), api_live.c (now, history, energy, stream;
 * the history body in api_history.c, written by the streaming writer jsonw.c),
 * api_record.c (longterm), api_attrib.c (processes, watch, energy?scope=), api_carbon.c
 * (carbon), api_metrics.c (/metrics); the helpers they share are in api_json.c. A route parses
 * and checks its parameters, asks the module that owns the data, and turns the answer into JSON.
 * Bad input gets 400 with {"error", "hint"}.
 */
#ifndef ENERGY_API_H
#define ENERGY_API_H

#include "daemon.h"
#include "http.h"
#include "jsonw.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

/* The API's own state: the daemon's parts it answers from, and the heavy-query gate. */
struct api {
	struct daemon *d; /* the daemon's parts the routes read (daemon.h) */
	int heavy_max; /* history, runs, longterm and users answers built at once (docs/security.md)
	                */
	atomic_int heavy_running; /* how many are being built now */
};

/* The http_handler of energyd: dispatch on the route table. ctx is a struct api. */
void api_handle(void *ctx, const struct http_request *req, struct http_response *res);

/* ---- shared helpers (api_json.c) -------------------------------------------------------- */

/* A JSON number, or null for NaN and infinities (jansson refuses non-finite reals). */
json_t *api_jnum(double v);
/* Set res to status with o as its compact JSON body (16 significant digits); takes o. */
void api_reply(struct http_response *res, int status, json_t *o);
/* Finish w into res: 200 with its text, or 503 with hint when the writer failed (its bound, or
 * memory). */
void api_reply_writer(struct http_response *res, struct jsonw *w, const char *hint);
/* The ids of the channels whose sum is the host total. */
json_t *api_coverage_ids(const struct daemon *d);
/* from= and to= of a request (to defaults to now): 0, or -EINVAL with a 400 answer set. */
int api_query_interval(const struct http_request *req, struct http_response *res, double *t0,
                       double *t1);

/* ---- routes: a route answers GET (and HEAD) unless the table says otherwise -------------- */

void api_info_route(struct api *api, const struct http_request *req, struct http_response *res);
void api_sources_route(struct api *api, const struct http_request *req, struct http_response *res);
void api_now_route(struct api *api, const struct http_request *req, struct http_response *res);
void api_history_route(struct api *api, const struct http_request *req, struct http_response *res);
void api_energy_route(struct api *api, const struct http_request *req, struct http_response *res);
/* GET /api/v1/runs?runs=T0/T1,...: each run's energy answer and their statistics. */
void api_runs_route(struct api *api, const struct http_request *req, struct http_response *res);
void api_stream_route(struct api *api, const struct http_request *req, struct http_response *res);
void api_carbon_route(struct api *api, const struct http_request *req, struct http_response *res);
void api_metrics_route(struct api *api, const struct http_request *req, struct http_response *res);
void api_longterm_route(struct api *api, const struct http_request *req, struct http_response *res);
/* /api/v1/users: every user's energy over a period from the record (api_record_users.c). */
void api_users_route(struct api *api, const struct http_request *req, struct http_response *res);
/* /api/v1/processes (GET) and /api/v1/watch[/ID] (GET, POST, DELETE: checks the method). */
void api_processes_route(struct api *api, const struct http_request *req,
                         struct http_response *res);
void api_watch_route(struct api *api, const struct http_request *req, struct http_response *res);
void api_model_route(struct api *api, const struct http_request *req, struct http_response *res);
/* 503 with the reason while attribution is off (no readable --proc-root): true then. */
bool api_attrib_off(struct api *api, struct http_response *res);

/* The `carbon` object of now and energy answers: provider, zone, intensity, age, status. */
struct carbon;
json_t *api_carbon_brief(struct carbon *c, double now);

/* The history answer (docs/api.md): the newest `seconds` of the history in at most max_points
 * points, written into w (initialised here, bounded by the points' count; the caller finishes
 * it). Takes the sampler's lock to copy the samples it needs, and makes the answer from the copy
 * after releasing it (api_history.c). */
void api_history_write(struct daemon *d, double seconds, double max_points, struct jsonw *w);

/* The `now` object (also one event of the stream); with the sampler's lock held. */
json_t *api_now_locked(struct daemon *d);

/* ---- the long-term record's part of other answers (api_record.c) ------------------------- */

/* At most this many steps in one longterm answer (six hours of seconds, 15 days of minutes,
 * about 2.5 years of hours): the answer is built in memory, so its size is bounded. */
#define API_LONGTERM_POINTS_MAX 21600

/* Sets "store_path" and "store" (status, error, tiers, what is pending or was dropped) in info. */
void api_record_info(struct daemon *d, json_t *info);
/* {status, error, path, pending_s, dropped_s} for `sources`. */
json_t *api_record_status(struct daemon *d);
/* Joules of series i since the record began, or null while that is unknown. */
json_t *api_record_total_joules(struct daemon *d, int series, uint64_t run_uj);

/* ---- the attribution's part of energy answers (api_attrib.c) ----------------------------- */

/* Check the syntax of scope and clamp [t0, t1] to the attributed samples. -1 with the error
 * answer set in res. */
int api_scope_clamp(struct daemon *d, const char *scope, double *t0, double *t1,
                    struct http_response *res);
/* The `scope` object of an energy answer over [from, to]; host_joules is the host total over the
 * same interval. A kernel label resolves among the caller's own watches first. NULL with the error
 * answer set in res. */
json_t *api_scope(struct daemon *d, const struct http_request *req, const char *scope, double from,
                  double to, double host_joules, struct http_response *res);

#endif
