/* The API's view of the long-term record: GET /api/v1/longterm, the store's status for `info`
 * and `sources`, and energy since the record began for `now`. */
#ifndef ENERGY_LONGTERM_H
#define ENERGY_LONGTERM_H

#include "api.h"

#include <jansson.h>

/* At most this many steps in one answer (six hours of seconds, 15 days of minutes, about 2.5
 * years of hours): the answer is built in memory, so its size is bounded (docs/security.md). */
#define LONGTERM_POINTS_MAX 21600

void longterm_route(struct api *api, const struct http_request *req, struct http_response *res);

/* Sets "store_path" and "store" (status, error, tiers, what is pending or was dropped) in info. */
void longterm_info(struct api *api, json_t *info);
/* {status, error, path, pending_s, dropped_s} for `sources`. */
json_t *longterm_store_status(struct api *api);
/* Joules of series i since the record began, or null while that is unknown. */
json_t *longterm_total_joules(struct api *api, int series, uint64_t run_uj);

#endif
