/*
 * The long-term record in SQLite: energy per second, per minute and per hour for every channel
 * and for the host total, in microjoules (integers, so that every tier sums exactly to the one
 * below it). store.c decides what to write and when; this file only knows the schema.
 *
 * Schema (STRICT tables, WAL, synchronous=NORMAL):
 *   meta(key, value)                   schema version, record_began_at, recorded_to
 *   series(id, name, measured, total_uj)
 *                                      one per channel id, plus "host"; total_uj is the energy
 *                                      recorded since the record began
 *   coverage(id, channels)             the channels a host total was made of ("a,b")
 *   energy_1s / energy_1m / energy_1h(t, series, energy_uj, covered_ms, coverage)
 *                                      t = start of the bucket (Unix seconds, a multiple of the
 *                                      tier's step); covered_ms = how much of the bucket energyd
 *                                      was sampling; coverage = coverage id for the host row,
 *                                      0 when the bucket mixes two coverages, NULL for channels
 * A bucket with no row is a gap: energyd was not running (or lost the data) then.
 *   user_energy_1m / user_energy_1h(t, uid, energy_uj)
 *                                      the energy attributed to each local user (uid) in the
 *                                      bucket (an estimate: attribution's CPU-time share of the
 *                                      host total); t as above. A user with no row used no
 *                                      energy there, or energyd was not attributing (attribution
 *                                      off, or before meta's users_recorded_to). Kept as long as
 *                                      energy_1m and energy_1h
 *
 * Not thread-safe: one struct store_db per thread. Functions return 0 or a negative errno-like
 * code with a message in err ("what failed, on what path, what to do").
 */
#ifndef ENERGY_STORE_DB_H
#define ENERGY_STORE_DB_H

#include "source.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_TIERS       3
#define STORE_SERIES_MAX  (CHANNELS_MAX + 3) /* channels, host, emissions, cost */
#define STORE_HOST_SERIES "host"
/* A derived series' value for a second in which it is unknown (no row is written). */
#define STORE_NO_VALUE     INT64_MIN
#define STORE_SCHEMA_VER   "1"
#define STORE_COVERAGE_MAX 1024
/* Per-user rows have the 1m and 1h tiers only (store tiers 1 and 2). */
#define STORE_USER_TIERS 2

struct sqlite3;
struct sqlite3_stmt;

extern const int store_tier_step_s[STORE_TIERS];       /* 1, 60, 3600 */
extern const char *const store_tier_name[STORE_TIERS]; /* "1s", "1m", "1h" */

/* One second of energy for every series (in the order given to store_db_open). */
struct store_entry {
	int64_t t;          /* start of the second, Unix seconds */
	int32_t covered_ms; /* how much of that second was sampled */
	int64_t *energy_uj; /* n_series values */
};

struct store_db {
	struct sqlite3 *db;
	/* Prepared statements: per tier where they have one. */
	struct sqlite3_stmt *upsert[STORE_TIERS];
	struct sqlite3_stmt *user_upsert[STORE_USER_TIERS];
	struct sqlite3_stmt *add_total;
	struct sqlite3_stmt *set_meta;
	int n_series;
	int64_t series_id[STORE_SERIES_MAX]; /* each series' row id in the record */
	int64_t total_uj[STORE_SERIES_MAX];  /* the record's totals when it was opened */
	int host_series;                     /* index of the host series, -1 if none */
	int64_t coverage_id;
	double recorded_to;       /* end of the newest data in the record (0 for a new record) */
	double record_began_at;   /* start of the oldest data in the record (0 for a new record) */
	double users_recorded_to; /* end of the per-user rows (0: none yet) */
};

/* One piece of a user's attributed energy: added to the minute that holds t and its hour. */
struct store_user_row {
	int64_t t; /* Unix seconds (any second of the minute) */
	uint32_t uid;
	int64_t energy_uj;
};

/* Make relative database paths open relative to the working directory, never through an
 * absolute path (see store_db.c); store_db_open does it, readers opening the record on their
 * own call it first. Idempotent and thread-safe. */
void store_db_vfs_init(void);
/*
 * Open (creating if needed) the database at path for writing the series names[n] (the host
 * series is the one named STORE_HOST_SERIES; measured[] says which series are measurements),
 * with the host coverage text. Fills total_uj, recorded_to and record_began_at.
 */
int store_db_open(struct store_db *d, const char *path, const char *const *names,
                  const bool *measured, int n, const char *coverage, char *err, size_t errlen);
void store_db_close(struct store_db *d);

/* Add the entries (in time order) to every tier and to the series totals, in one transaction.
 * recorded_to is the end of the data written. Either everything is written or nothing. */
int store_db_write(struct store_db *d, const struct store_entry *entries, size_t n,
                   double recorded_to, char *err, size_t errlen);

/* The same, and the user rows (users_to > 0: the end of the per-user data written, kept in meta
 * as users_recorded_to), in the same transaction. */
int store_db_write_users(struct store_db *d, const struct store_entry *entries, size_t n,
                         const struct store_user_row *users, size_t n_users, double users_to,
                         double recorded_to, char *err, size_t errlen);

/* Delete rows older than now - keep_s[tier] (keep_s 0: keep forever); the user rows of a step
 * with the tier of the same step. */
int store_db_prune(struct store_db *d, double now, const double keep_s[STORE_TIERS], char *err,
                   size_t errlen);

/*
 * Which tier answers a query from `from` (Unix seconds) at `step_s` (0: not given) when the
 * wall clock says now: the finest one that still keeps rows that old (keep_s 0: for ever) and
 * whose step divides step_s. forced_tier >= 0 restricts the choice to that tier. Returns the
 * tier, or -1 with a reason in err.
 */
int store_tier_pick(double from, double step_s, double now, const double *keep_s, int forced_tier,
                    char *err, size_t errlen);

/* Describe an SQLite failure for the operator: the message plus what to do about it. */
void store_db_explain(int sqlite_rc, const char *what, const char *path, const char *sqlite_msg,
                      char *err, size_t errlen);

#endif
