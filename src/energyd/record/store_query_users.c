/* Every user's energy, emissions and cost from the record (store_query_users.h). */
#define _GNU_SOURCE
#include "store_query_users.h"
#include "store_db.h"
#include "store_query.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_users_tier(double from, double now, const double *keep_s)
{
	return keep_s[1] <= 0 || from >= now - keep_s[1] ? 1 : 2;
}

/* The row id of a series by name, -1 when the record has none (or name is NULL); measured
 * (when not NULL) says whether it is a measurement. */
static int64_t series_id(sqlite3 *db, const char *name, bool *measured)
{
	sqlite3_stmt *q = NULL;
	int64_t id = -1;
	if (!name || sqlite3_prepare_v2(db, "SELECT id, measured FROM series WHERE name = ?1", -1,
	                                &q, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW) {
		id = sqlite3_column_int64(q, 0);
		if (measured)
			*measured = sqlite3_column_int(q, 1) != 0;
	}
	sqlite3_finalize(q);
	return id;
}

/* A single value from sql with ?1 = start, ?2 = end, ?3 = arg (those it has); *have false when
 * it is NULL. */
static int scalar(sqlite3 *db, const char *sql, int64_t start, int64_t end, int64_t arg, int64_t *v,
                  bool *have)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	int n = sqlite3_bind_parameter_count(q);
	const int64_t args[3] = {start, end, arg};
	for (int i = 0; i < n && i < 3; i++)
		sqlite3_bind_int64(q, i + 1, args[i]);
	int rc = sqlite3_step(q);
	*have = rc == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL;
	*v = *have ? sqlite3_column_int64(q, 0) : 0;
	sqlite3_finalize(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

/* The host's energy, emissions and cost over the range: the sums of their rows. */
static int read_host(sqlite3 *db, const char *tier, int64_t host, int64_t em, int64_t cost,
                     struct store_users_total *out)
{
	char sql[160];
	snprintf(sql, sizeof(sql),
	         "SELECT SUM(energy_uj) FROM energy_%s WHERE t >= ?1 AND t < ?2 AND series = ?3",
	         tier);
	int rc = scalar(db, sql, out->start, out->end, host, &out->host_uj, &out->have_host);
	if (rc == 0)
		rc = scalar(db, sql, out->start, out->end, em, &out->emissions_ug,
		            &out->have_emissions);
	if (rc == 0)
		rc = scalar(db, sql, out->start, out->end, cost, &out->cost_nano, &out->have_cost);
	return rc;
}

static double column_or_nan(sqlite3_stmt *q, int col)
{
	return sqlite3_column_type(q, col) == SQLITE_NULL ? NAN : sqlite3_column_double(q, col);
}

/*
 * Per uid: the energy, and the emissions and cost of each bucket apportioned by energy (a bucket
 * without host energy or without the derived row adds nothing to them), the largest first.
 */
static int read_users(sqlite3 *db, const char *tier, int64_t host, int64_t em, int64_t cost,
                      struct store_users_total *out)
{
	char sql[1024];
	snprintf(sql, sizeof(sql),
	         "SELECT u.uid, SUM(u.energy_uj),"
	         " SUM(CASE WHEN h.energy_uj > 0 THEN u.energy_uj * CAST(e.energy_uj AS REAL)"
	         " / h.energy_uj END),"
	         " SUM(CASE WHEN h.energy_uj > 0 THEN u.energy_uj * CAST(c.energy_uj AS REAL)"
	         " / h.energy_uj END)"
	         " FROM user_energy_%s u"
	         " LEFT JOIN energy_%s h ON h.t = u.t AND h.series = ?3"
	         " LEFT JOIN energy_%s e ON e.t = u.t AND e.series = ?4"
	         " LEFT JOIN energy_%s c ON c.t = u.t AND c.series = ?5"
	         " WHERE u.t >= ?1 AND u.t < ?2 GROUP BY u.uid ORDER BY 2 DESC, u.uid LIMIT ?6",
	         tier, tier, tier, tier);
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(q, 1, out->start);
	sqlite3_bind_int64(q, 2, out->end);
	sqlite3_bind_int64(q, 3, host);
	sqlite3_bind_int64(q, 4, em);
	sqlite3_bind_int64(q, 5, cost);
	sqlite3_bind_int64(q, 6, STORE_QUERY_USERS_MAX);
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (out->n_users == 0) {
			out->users = calloc(STORE_QUERY_USERS_MAX, sizeof(*out->users));
			if (!out->users) {
				sqlite3_finalize(q);
				return -ENOMEM;
			}
		}
		struct store_user_total *u = &out->users[out->n_users++];
		u->uid = (uint32_t)sqlite3_column_int64(q, 0);
		u->energy_uj = sqlite3_column_int64(q, 1);
		u->share = out->have_host && out->host_uj > 0
		               ? (double)u->energy_uj / (double)out->host_uj
		               : NAN;
		u->emissions_ug = column_or_nan(q, 2);
		u->cost_nano = column_or_nan(q, 3);
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return -EIO;
	snprintf(sql, sizeof(sql),
	         "SELECT COUNT(DISTINCT uid) FROM user_energy_%s WHERE t >= ?1 AND t < ?2", tier);
	int64_t n;
	bool have;
	rc = scalar(db, sql, out->start, out->end, 0, &n, &have);
	out->users_total = rc == 0 && have ? (size_t)n : out->n_users;
	return rc;
}

/* users_recorded_to from meta (a record that never had user rows: 0). */
static double users_recorded_to(sqlite3 *db)
{
	sqlite3_stmt *q = NULL;
	double v = 0;
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'users_recorded_to'", -1, &q,
	                       NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(q) == SQLITE_ROW)
		v = strtod((const char *)sqlite3_column_text(q, 0), NULL);
	sqlite3_finalize(q);
	return isfinite(v) && v > 0 ? v : 0;
}

/* A record written by an energyd older than the per-user tables has none: no user rows. */
static bool has_user_tables(sqlite3 *db)
{
	int64_t n;
	bool have;
	return scalar(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'user_energy_1m'", 0, 0,
	              0, &n, &have) == 0 &&
	       have && n > 0;
}

int store_query_users(const char *path, int tier, int64_t start, int64_t end,
                      const char *emissions_series, const char *cost_series,
                      struct store_users_total *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (tier < 1 || tier >= STORE_TIERS) {
		snprintf(err, errlen, "per-user rows have the 1m and 1h tiers only");
		return -EINVAL;
	}
	out->tier = tier;
	out->start = start;
	out->end = end;
	out->step_s = store_tier_step_s[tier];
	sqlite3 *db = NULL;
	int rc = store_query_open(path, &db, err, errlen);
	if (rc < 0)
		return rc;
	/* One read transaction: the rows and users_recorded_to of the same commit. */
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	const char *name = store_tier_name[tier];
	int64_t host = series_id(db, STORE_HOST_SERIES, &out->host_measured),
	        em = series_id(db, emissions_series, NULL), cost = series_id(db, cost_series, NULL);
	out->users_recorded_to = users_recorded_to(db);
	rc = read_host(db, name, host, em, cost, out);
	if (rc == 0 && has_user_tables(db))
		rc = read_users(db, name, host, em, cost, out);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	else if (rc < 0)
		rc = store_query_fail(db, path, err, errlen);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close_v2(db);
	if (rc < 0)
		store_users_total_free(out);
	return rc;
}

void store_users_total_free(struct store_users_total *t)
{
	free(t->users);
	t->users = NULL;
	t->n_users = 0;
}
