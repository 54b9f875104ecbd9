/* energy_now() and energy_between(): typed snapshots of GET /api/v1/now and /api/v1/energy. */
#define _GNU_SOURCE
#include "energy.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long energy_between() waits for energyd's newest sample to pass the interval's end. */
#define READINGS_WAIT_S 2.0

static int get_json(struct energy_client *c, const char *path, json_t **out)
{
	int status;
	char *body;
	int rc = energy_client_request(c, "GET", path, NULL, &status, &body);
	if (rc < 0)
		return rc;
	json_t *o = json_loads(body, 0, NULL);
	free(body);
	if (!o)
		return -EPROTO;
	if (status != 200) {
		json_decref(o);
		return status == 404 ? -ERANGE : -EIO;
	}
	*out = o;
	return 0;
}

static double num_or_nan(json_t *v)
{
	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Fill a snapshot from a `now` or `energy` answer. */
static int snapshot_from_json(json_t *o, struct energy_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	json_t *channels = json_object_get(o, "channels"), *host = json_object_get(o, "host");
	if (!json_is_object(channels) || !json_is_object(host))
		return -EPROTO;
	const char *id;
	json_t *ch;
	json_object_foreach(channels, id, ch)
	{
		if (s->n_channels >= ENERGY_CHANNELS_MAX)
			break;
		struct energy_channel_reading *r = &s->channels[s->n_channels++];
		snprintf(r->id, sizeof(r->id), "%s", id);
		r->joules = num_or_nan(json_object_get(ch, "joules"));
		r->watts = num_or_nan(json_object_get(ch, "watts"));
		r->measured = json_is_true(json_object_get(ch, "measured"));
	}
	s->host_joules = num_or_nan(json_object_get(host, "joules"));
	s->host_watts = num_or_nan(json_object_get(host, "watts"));
	s->host_measured = json_is_true(json_object_get(host, "measured"));
	s->host_emissions_g = num_or_nan(json_object_get(host, "emissions_g"));
	s->host_cost = num_or_nan(json_object_get(host, "cost"));
	json_t *carbon = json_object_get(o, "carbon");
	const char *str = json_string_value(json_object_get(host, "currency"));
	snprintf(s->currency, sizeof(s->currency), "%s", str ? str : "");
	str = json_string_value(json_object_get(carbon, "provider"));
	snprintf(s->carbon_provider, sizeof(s->carbon_provider), "%s", str ? str : "");
	str = json_string_value(json_object_get(carbon, "zone"));
	snprintf(s->carbon_zone, sizeof(s->carbon_zone), "%s", str ? str : "");
	s->carbon_intensity_g_per_kwh = num_or_nan(json_object_get(carbon, "intensity_g_per_kwh"));
	size_t i;
	json_t *cid;
	json_array_foreach(json_object_get(host, "coverage"), i, cid)
	{
		size_t len = strlen(s->host_coverage);
		snprintf(s->host_coverage + len, sizeof(s->host_coverage) - len, "%s%s",
		         i ? " + " : "", json_string_value(cid) ? json_string_value(cid) : "?");
	}
	return 0;
}

int energy_now(struct energy_client *c, struct energy_snapshot *out)
{
	json_t *o;
	int rc = get_json(c, "/api/v1/now", &o);
	if (rc < 0)
		return rc;
	rc = snapshot_from_json(o, out);
	out->time = num_or_nan(json_object_get(o, "time"));
	out->from = out->time;
	json_decref(o);
	return rc;
}

int energy_between(struct energy_client *c, double t0, double t1, struct energy_snapshot *out)
{
	if (!(t0 <= t1))
		return -EINVAL;
	/* Wait for a sample at or after t1 (energyd samples on its own clock). */
	double give_up = energy_wall_time() + READINGS_WAIT_S;
	for (;;) {
		json_t *now;
		int rc = get_json(c, "/api/v1/now", &now);
		if (rc < 0)
			return rc;
		double t = num_or_nan(json_object_get(now, "time"));
		json_decref(now);
		if (t >= t1 || energy_wall_time() > give_up)
			break;
		usleep(10000);
	}
	char path[160];
	snprintf(path, sizeof(path), "/api/v1/energy?from=%.6f&to=%.6f", t0, t1);
	json_t *o;
	int rc = get_json(c, path, &o);
	if (rc < 0)
		return rc;
	rc = snapshot_from_json(o, out);
	out->from = num_or_nan(json_object_get(o, "from"));
	out->time = num_or_nan(json_object_get(o, "to"));
	out->resolution_s = num_or_nan(json_object_get(o, "resolution_s"));
	json_decref(o);
	return rc;
}

const struct energy_channel_reading *energy_snapshot_channel(const struct energy_snapshot *s,
                                                             const char *id)
{
	for (int i = 0; i < s->n_channels; i++)
		if (strcmp(s->channels[i].id, id) == 0)
			return &s->channels[i];
	return NULL;
}
