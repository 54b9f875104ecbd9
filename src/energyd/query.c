#include "query.h"
#include "energy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

int query_time(const char *name, const char *value, double now, double *out, char *err,
               size_t errlen)
{
	if (!value)
		return -ENOENT;
	double t;
	if (energy_parse_time(value, &t) < 0) {
		snprintf(err, errlen, "'%s' is not a time: give Unix seconds or ISO 8601", name);
		return -EINVAL;
	}
	if (t < 0 || t > now + QUERY_FUTURE_SLACK_S) {
		snprintf(err, errlen, "'%s' = %.17g is out of range (0 to now + 1 day)", name, t);
		return -ERANGE;
	}
	*out = t;
	return 0;
}

/* A time parameter, or its default (NAN: the parameter is required). */
static int time_or_default(const char *name, const char *text, double now, double default_t,
                           double *out, char *err, size_t errlen)
{
	int rc = query_time(name, text, now, out, err, errlen);
	if (rc != -ENOENT)
		return rc;
	if (isnan(default_t)) {
		snprintf(err, errlen, "'%s' is required", name);
		return -EINVAL;
	}
	*out = default_t;
	return 0;
}

int query_interval(const char *from, const char *to, double now, double default_from,
                   double default_to, double *t0, double *t1, char *err, size_t errlen)
{
	int rc = time_or_default("from", from, now, default_from, t0, err, errlen);
	if (rc == 0)
		rc = time_or_default("to", to, now, default_to, t1, err, errlen);
	if (rc < 0)
		return rc;
	if (*t0 > *t1) {
		snprintf(err, errlen, "'from' (%.6f) is after 'to' (%.6f)", *t0, *t1);
		return -EINVAL;
	}
	return 0;
}

int query_positive(const char *name, const char *value, double def, double max, double *out,
                   char *err, size_t errlen)
{
	if (!value) {
		*out = def;
		return 0;
	}
	double v;
	if (energy_parse_double(value, &v) < 0) {
		snprintf(err, errlen, "'%s' is not a number", name);
		return -EINVAL;
	}
	if (v <= 0 || v > max) {
		snprintf(err, errlen, "'%s' = %.17g is out of range (0 to %g)", name, v, max);
		return -ERANGE;
	}
	*out = v;
	return 0;
}
