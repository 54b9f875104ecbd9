/*
 * Reading every user's energy back from the record (GET /api/v1/users): per uid the energy of
 * the user_energy rows of one tier over [start, end), the host's energy, emissions and cost over
 * the same buckets, and each user's emissions and cost as the sum over the buckets of
 * user_uj x (the bucket's emissions / the bucket's host_uj): the intensity and price that held
 * when the user's energy was used, weighted like the host's own. SQL lives here, with the
 * schema (store_db.h).
 *
 * Thread-safe: each query opens its own read-only connection.
 */
#ifndef ENERGY_STORE_QUERY_USERS_H
#define ENERGY_STORE_QUERY_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Users in one answer, the most energy first; the others are counted (users_total). */
#define STORE_QUERY_USERS_MAX 4096

struct store_user_total {
	uint32_t uid;
	int64_t energy_uj;
	double share;        /* energy_uj / the host's energy over the same buckets; NAN if none */
	double emissions_ug; /* NAN when no bucket of the user's has emissions (and host energy) */
	double cost_nano;    /* billionths of the currency; NAN likewise */
};

struct store_users_total {
	int tier;                   /* 1 (1m) or 2 (1h): store_tier_name */
	int64_t start, end, step_s; /* [start, end): whole buckets of the tier */
	double users_recorded_to;   /* end of the per-user rows in the record (0: none yet) */
	bool have_host, have_emissions, have_cost; /* at least one row in the range */
	bool host_measured;                        /* the record's host series is a measurement */
	int64_t host_uj, emissions_ug, cost_nano;
	struct store_user_total *users; /* n_users, sorted by energy, largest first (heap) */
	size_t n_users;
	size_t users_total; /* users with a row in the range (may exceed n_users) */
};

/* The tier that answers from `from` (Unix seconds) when the wall clock says now: 1m while it
 * keeps rows that old (keep_s[1], 0: for ever), else 1h. */
int store_users_tier(double from, double now, const double *keep_s);

/*
 * Sum the rows of tier (1 or 2) in [start, end) (multiples of the tier's step) of the record at
 * path; emissions_series and cost_series name the derived series apportioned to users (NULL or
 * absent from the record: NAN). 0; -ENOENT when the record does not exist yet, -ENOMEM, -EIO,
 * each with a message in err. On success the caller frees out with store_users_total_free.
 */
int store_query_users(const char *path, int tier, int64_t start, int64_t end,
                      const char *emissions_series, const char *cost_series,
                      struct store_users_total *out, char *err, size_t errlen);
void store_users_total_free(struct store_users_total *t);

#endif
