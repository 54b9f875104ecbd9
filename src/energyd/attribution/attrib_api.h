/* The attribution routes of the API v1: /watch, /processes and energy?scope=… (docs/api.md). */
#ifndef ENERGY_ATTRIB_API_H
#define ENERGY_ATTRIB_API_H

#include "api.h"

#include <jansson.h>
#include <stdbool.h>

/* Handle /api/v1/watch[/ID] and /api/v1/processes; false when the path is not one of them. */
bool attrib_api_handle(struct api *api, const struct http_request *req, struct http_response *res);

/* Check the syntax of scope and clamp [t0, t1] to the attributed samples. -1 with the error
 * answer set in res. */
int attrib_api_scope_clamp(struct api *api, const char *scope, double *t0, double *t1,
                           struct http_response *res);

/* The `scope` object of an energy answer over [from, to]; host_joules is the host total over the
 * same interval. A kernel label resolves among the caller's own watches first. NULL with the error
 * answer set in res. */
json_t *attrib_api_scope(struct api *api, const struct http_request *req, const char *scope,
                         double from, double to, double host_joules, struct http_response *res);

/* The account name of uid (getpwuid_r), or the number when it has none. */
void attrib_user_name(uid_t uid, char *buf, size_t len);

#endif
