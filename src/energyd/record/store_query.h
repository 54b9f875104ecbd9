/*
 * Reading the long-term record back: the sum of a tier's rows per step, for every series, as
 * rows the caller turns into JSON (GET /api/v1/longterm). SQL lives here, with the schema
 * (store_db.h); callers never open the database themselves.
 *
 * Thread-safe: each query opens its own read-only connection.
 */
#ifndef ENERGY_STORE_QUERY_H
#define ENERGY_STORE_QUERY_H

#include "source.h"
#include "store_db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Distinct host coverages reported for one range; more are not listed. */
#define STORE_QUERY_COVERAGES_MAX 64

/* One series of the record over the steps of a query. */
struct store_step_series {
	int64_t id;                /* the series' row id in the record */
	char name[CHANNEL_ID_MAX]; /* channel id, STORE_HOST_SERIES, or a derived series' name */
	bool measured;             /* a measurement, not an estimate */
	int64_t *sum;        /* per step: the sum of the rows (the series' unit: uJ, ug, ...) */
	bool *have;          /* per step: at least one row (false: energyd was not recording) */
	int64_t *covered_ms; /* per step: how long energyd was sampling in it */
};

struct store_steps {
	int tier;                   /* the tier read (store_tier_name) */
	int64_t start, end, step_s; /* steps [start + k step_s, + step_s) for k < points */
	int64_t points;
	struct store_step_series *series;
	int n_series;
	int host; /* index of the host series in series, -1 if none */
	/* The distinct sets of channels the host total was made of over the range ("a,b"). */
	int64_t coverage_ids[STORE_QUERY_COVERAGES_MAX];
	char (*coverages)[STORE_COVERAGE_MAX]; /* n_coverages lists (heap) */
	int n_coverages;
	bool coverage_mixed; /* some host row mixed two coverages */
};

/*
 * Sum the rows of tier inside [start, end) into steps of step_s (start and end multiples of it)
 * for every series of the record at path. 0; -ENOENT when the record does not exist yet,
 * -ENOMEM, or -EIO for a database failure, each with a message in err. On success the caller
 * frees out with store_steps_free.
 */
int store_query_steps(const char *path, int tier, int64_t start, int64_t end, int64_t step_s,
                      struct store_steps *out, char *err, size_t errlen);
void store_steps_free(struct store_steps *s);

/* A read-only connection to the record at path (busy timeout 2 s), for the queries of the
 * record: 0, -ENOENT when it does not exist yet, -EIO; with a message in err. */
struct sqlite3;
int store_query_open(const char *path, struct sqlite3 **db, char *err, size_t errlen);
/* Describe db's last failure in err; returns -EIO. */
int store_query_fail(struct sqlite3 *db, const char *path, char *err, size_t errlen);

#endif
