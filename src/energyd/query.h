/* Query parameter checks shared by the API routes: strict numbers, sane ranges, a message that
 * says what was wrong. Pure functions, unit-tested. */
#ifndef ENERGY_QUERY_H
#define ENERGY_QUERY_H

#include <stddef.h>

/* Latest time a query may name: this far past now (clients' clocks drift a little). */
#define QUERY_FUTURE_SLACK_S 86400.0

/* A time parameter (Unix seconds or ISO 8601) between 0 and now + slack. NULL value: -ENOENT. */
int query_time(const char *name, const char *value, double now, double *out, char *err,
               size_t errlen);
/* from/to of an interval; each may default (NAN default = required); from <= to. */
int query_interval(const char *from, const char *to, double now, double default_from,
                   double default_to, double *t0, double *t1, char *err, size_t errlen);
/* A positive number no larger than max; NULL value gives def. */
int query_positive(const char *name, const char *value, double def, double max, double *out,
                   char *err, size_t errlen);

#endif
