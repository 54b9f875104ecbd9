/*
 * Reading the long-term record back (store_query.h): the step sums that GET /api/v1/longterm
 * shows. Each query opens its own read-only connection: WAL lets it read while the store's
 * thread writes, and a broken database fails this query, not the daemon.
 */
#define _GNU_SOURCE
#include "store_query.h"
#include "store_db.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int db_fail(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	int rc = db ? sqlite3_errcode(db) : SQLITE_CANTOPEN;
	store_db_explain(rc, "cannot read the record", path, db ? sqlite3_errmsg(db) : NULL, err,
	                 errlen);
	return -EIO;
}

/* Every series of the record, with its per-step arrays allocated (zeroed). */
static int read_series(sqlite3 *db, struct store_steps *out)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(db, "SELECT id, name, measured FROM series ORDER BY id", -1, &q,
	                       NULL) != SQLITE_OK)
		return -EIO;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_step_series *ns =
		    realloc(out->series, (size_t)(out->n_series + 1) * sizeof(*ns));
		if (!ns) {
			sqlite3_finalize(q);
			return -ENOMEM;
		}
		out->series = ns;
		struct store_step_series *s = &out->series[out->n_series++];
		memset(s, 0, sizeof(*s));
		s->id = sqlite3_column_int64(q, 0);
		snprintf(s->name, sizeof(s->name), "%s", (const char *)sqlite3_column_text(q, 1));
		s->measured = sqlite3_column_int(q, 2) != 0;
		s->sum = calloc((size_t)out->points, sizeof(*s->sum));
		s->have = calloc((size_t)out->points, sizeof(*s->have));
		s->covered_ms = calloc((size_t)out->points, sizeof(*s->covered_ms));
		if (!s->sum || !s->have || !s->covered_ms) {
			sqlite3_finalize(q);
			return -ENOMEM;
		}
		if (strcmp(s->name, STORE_HOST_SERIES) == 0)
			out->host = out->n_series - 1;
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static void note_coverage(struct store_steps *out, int64_t c)
{
	if (c == 0) {
		out->coverage_mixed = true;
		return;
	}
	for (int j = 0; j < out->n_coverages; j++)
		if (out->coverage_ids[j] == c)
			return;
	if (out->n_coverages < STORE_QUERY_COVERAGES_MAX)
		out->coverage_ids[out->n_coverages++] = c;
}

/* Sum the tier's rows into their steps. */
static int read_rows(sqlite3 *db, int tier, struct store_steps *out)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT t, series, energy_uj, covered_ms, coverage FROM energy_%s"
	         " WHERE t >= ?1 AND t < ?2",
	         store_tier_name[tier]);
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(q, 1, out->start);
	sqlite3_bind_int64(q, 2, out->end);
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t t = sqlite3_column_int64(q, 0), id = sqlite3_column_int64(q, 1);
		int64_t k = (t - out->start) / out->step_s;
		int i = 0;
		while (i < out->n_series && out->series[i].id != id)
			i++;
		if (i == out->n_series || k < 0 || k >= out->points)
			continue;
		struct store_step_series *s = &out->series[i];
		s->sum[k] += sqlite3_column_int64(q, 2);
		s->covered_ms[k] += sqlite3_column_int64(q, 3);
		s->have[k] = true;
		if (i == out->host && sqlite3_column_type(q, 4) == SQLITE_INTEGER)
			note_coverage(out, sqlite3_column_int64(q, 4));
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* The channel lists of the coverage ids seen. */
static void read_coverages(sqlite3 *db, struct store_steps *out)
{
	sqlite3_stmt *q = NULL;
	out->coverages =
	    out->n_coverages ? calloc((size_t)out->n_coverages, STORE_COVERAGE_MAX) : NULL;
	if (!out->coverages || sqlite3_prepare_v2(db, "SELECT channels FROM coverage WHERE id = ?1",
	                                          -1, &q, NULL) != SQLITE_OK) {
		out->n_coverages = 0;
		return;
	}
	int n = 0;
	for (int j = 0; j < out->n_coverages; j++) {
		sqlite3_reset(q);
		sqlite3_bind_int64(q, 1, out->coverage_ids[j]);
		if (sqlite3_step(q) == SQLITE_ROW)
			snprintf(out->coverages[n++], STORE_COVERAGE_MAX, "%s",
			         (const char *)sqlite3_column_text(q, 0));
	}
	out->n_coverages = n;
	sqlite3_finalize(q);
}

int store_query_open(const char *path, struct sqlite3 **out, char *err, size_t errlen)
{
	struct stat sb;
	*out = NULL;
	if (stat(path, &sb) < 0) {
		snprintf(err, errlen, "the record %s does not exist yet", path);
		return -ENOENT;
	}
	sqlite3 *db = NULL;
	store_db_vfs_init();
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		int rc = db_fail(db, path, err, errlen);
		sqlite3_close_v2(db);
		return rc;
	}
	sqlite3_busy_timeout(db, 2000);
	*out = db;
	return 0;
}

int store_query_fail(struct sqlite3 *db, const char *path, char *err, size_t errlen)
{
	return db_fail(db, path, err, errlen);
}

int store_query_steps(const char *path, int tier, int64_t start, int64_t end, int64_t step_s,
                      struct store_steps *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->host = -1;
	out->tier = tier;
	out->start = start;
	out->end = end;
	out->step_s = step_s;
	out->points = (end - start) / step_s;
	sqlite3 *db = NULL;
	int rc = store_query_open(path, &db, err, errlen);
	if (rc < 0)
		return rc;
	rc = read_series(db, out);
	if (rc == 0)
		rc = read_rows(db, tier, out);
	if (rc == 0)
		read_coverages(db, out);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	else if (rc < 0)
		rc = db_fail(db, path, err, errlen);
	sqlite3_close_v2(db);
	if (rc < 0)
		store_steps_free(out);
	return rc;
}

void store_steps_free(struct store_steps *s)
{
	for (int i = 0; i < s->n_series; i++) {
		free(s->series[i].sum);
		free(s->series[i].have);
		free(s->series[i].covered_ms);
	}
	free(s->series);
	free(s->coverages);
	s->coverages = NULL;
	s->series = NULL;
	s->n_series = 0;
}
