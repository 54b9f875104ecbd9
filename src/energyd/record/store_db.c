#define _GNU_SOURCE
#include "store_db.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const int store_tier_step_s[STORE_TIERS] = {1, 60, 3600};
const char *const store_tier_name[STORE_TIERS] = {"1s", "1m", "1h"};

/* Wait this long for another connection (a reader, `sqlite3` run by the operator) to let go. */
#define STORE_BUSY_TIMEOUT_MS 2000

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;"
    "CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " measured INTEGER NOT NULL, total_uj INTEGER NOT NULL DEFAULT 0) STRICT;"
    "CREATE TABLE IF NOT EXISTS coverage(id INTEGER PRIMARY KEY,"
    " channels TEXT NOT NULL UNIQUE) STRICT;"
    "CREATE TABLE IF NOT EXISTS energy_1s(t INTEGER NOT NULL, series INTEGER NOT NULL,"
    " energy_uj INTEGER NOT NULL, covered_ms INTEGER NOT NULL, coverage INTEGER,"
    " PRIMARY KEY(t, series)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS energy_1m(t INTEGER NOT NULL, series INTEGER NOT NULL,"
    " energy_uj INTEGER NOT NULL, covered_ms INTEGER NOT NULL, coverage INTEGER,"
    " PRIMARY KEY(t, series)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS energy_1h(t INTEGER NOT NULL, series INTEGER NOT NULL,"
    " energy_uj INTEGER NOT NULL, covered_ms INTEGER NOT NULL, coverage INTEGER,"
    " PRIMARY KEY(t, series)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS user_energy_1m(t INTEGER NOT NULL, uid INTEGER NOT NULL,"
    " energy_uj INTEGER NOT NULL, PRIMARY KEY(t, uid)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS user_energy_1h(t INTEGER NOT NULL, uid INTEGER NOT NULL,"
    " energy_uj INTEGER NOT NULL, PRIMARY KEY(t, uid)) STRICT, WITHOUT ROWID;"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema', '" STORE_SCHEMA_VER "');";

/* A bucket written twice (a restart within the same second, a partial second completed by the
 * next batch) adds up; a host bucket that mixes two coverages says so with coverage 0. */
/* The per-user rows add up the same way (t: the bucket's start, a multiple of its step). */
static const char user_upsert_fmt[] =
    "INSERT INTO user_energy_%s(t, uid, energy_uj) VALUES(?1,?2,?3)"
    " ON CONFLICT(t, uid) DO UPDATE SET energy_uj = energy_uj + excluded.energy_uj";

static const char upsert_fmt[] =
    "INSERT INTO energy_%s(t, series, energy_uj, covered_ms, coverage) VALUES(?1,?2,?3,?4,?5)"
    " ON CONFLICT(t, series) DO UPDATE SET energy_uj = energy_uj + excluded.energy_uj,"
    " covered_ms = covered_ms + excluded.covered_ms,"
    " coverage = CASE WHEN coverage IS excluded.coverage THEN coverage ELSE 0 END";

void store_db_explain(int rc, const char *what, const char *path, const char *msg, char *err,
                      size_t errlen)
{
	const char *hint;
	switch (rc & 0xff) {
	case SQLITE_FULL:
		hint = "the disk is full: free space; energyd keeps the data in memory and retries";
		break;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
	case SQLITE_AUTH:
		hint = "check that the file, its directory and the filesystem are writable by "
		       "energyd's user; energyd keeps the data in memory and retries";
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		hint = "the database is damaged: stop energyd, move the file aside (or restore a "
		       "backup); until then energyd keeps the data in memory and retries";
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		hint = "another program holds a write lock on the database; energyd retries";
		break;
	default:
		hint = "energyd keeps the data in memory and retries";
	}
	const char *code = sqlite3_errstr(rc);
	if (!msg || strcmp(msg, code) == 0)
		snprintf(err, errlen, "%s %s: %s; %s", what, path, code, hint);
	else
		snprintf(err, errlen, "%s %s: %s (%s); %s", what, path, msg, code, hint);
}

static int to_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
	case SQLITE_CANTOPEN:
		return -EACCES;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EILSEQ;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static int fail(struct store_db *d, int rc, const char *what, const char *path, char *err,
                size_t errlen)
{
	store_db_explain(rc, what, path ? path : "", d->db ? sqlite3_errmsg(d->db) : NULL, err,
	                 errlen);
	return to_errno(rc);
}

static int exec(struct store_db *d, const char *sql)
{
	return sqlite3_exec(d->db, sql, NULL, NULL, NULL);
}

/* The id of a row with a unique text column, inserting it when missing. */
static int lookup_id(struct store_db *d, const char *insert_sql, const char *select_sql,
                     const char *text, int extra, int64_t *id)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(d->db, insert_sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int(st, 2, extra);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return rc;
	rc = sqlite3_prepare_v2(d->db, select_sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? SQLITE_OK : (rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
}

static double meta_double(struct store_db *d, const char *key)
{
	sqlite3_stmt *st;
	double v = 0;
	if (sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = strtod((const char *)sqlite3_column_text(st, 0), NULL);
	sqlite3_finalize(st);
	return isfinite(v) ? v : 0;
}

/*
 * SQLite makes every database path absolute (getcwd + name, symlinks resolved) before it opens
 * the file and its -wal/-shm. energyd works inside its state directory and names the record
 * relative to it, so that an account that owns the state directory can open it whatever the
 * directory's parents allow (a state directory under a 0700 root-only parent): an absolute path
 * would need search rights on every parent. This VFS is the default unix one except that a
 * relative name stays relative (every file SQLite derives from it then is relative to the
 * working directory too); absolute names go through the unix VFS's own resolution.
 */
static sqlite3_vfs relative_vfs;
static sqlite3_vfs *unix_vfs;
static pthread_once_t relative_vfs_once = PTHREAD_ONCE_INIT;

static int relative_full_pathname(sqlite3_vfs *vfs, const char *name, int n_out, char *out)
{
	(void)vfs;
	if (name[0] == '/')
		return unix_vfs->xFullPathname(unix_vfs, name, n_out, out);
	if ((int)strlen(name) >= n_out)
		return SQLITE_CANTOPEN;
	sqlite3_snprintf(n_out, out, "%s", name);
	return SQLITE_OK;
}

static void relative_vfs_register(void)
{
	unix_vfs = sqlite3_vfs_find(NULL);
	if (!unix_vfs)
		return;
	relative_vfs = *unix_vfs;
	relative_vfs.pNext = NULL;
	relative_vfs.zName = "energyd-relative";
	relative_vfs.xFullPathname = relative_full_pathname;
	sqlite3_vfs_register(&relative_vfs, 1); /* the default: the API's readers use it too */
}

void store_db_vfs_init(void)
{
	pthread_once(&relative_vfs_once, relative_vfs_register);
}

int store_db_open(struct store_db *d, const char *path, const char *const *names,
                  const bool *measured, int n, const char *coverage, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	d->host_series = -1;
	if (n > STORE_SERIES_MAX) {
		snprintf(err, errlen, "%d series: more than the store handles (%d)", n,
		         STORE_SERIES_MAX);
		return -EINVAL;
	}
	store_db_vfs_init();
	int rc = sqlite3_open_v2(
	    path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = fail(d, rc, "cannot open", path, err, errlen);
		store_db_close(d);
		return rc;
	}
	sqlite3_busy_timeout(d->db, STORE_BUSY_TIMEOUT_MS);
	/* A file we may not write is opened read-only by SQLite without an error: say so now
	 * rather than at the first commit. */
	if (sqlite3_db_readonly(d->db, "main") == 1) {
		store_db_explain(SQLITE_READONLY, "cannot write", path,
		                 "the database file is read-only", err, errlen);
		store_db_close(d);
		return -EROFS;
	}
	/* WAL: readers (the API) never block the writer; synchronous=NORMAL: a commit is not
	 * fsync'ed, but a process crash loses nothing committed and the file stays consistent
	 * (only a power loss may drop the last commits). */
	if ((rc = exec(d, "PRAGMA journal_mode=WAL")) != SQLITE_OK ||
	    (rc = exec(d, "PRAGMA synchronous=NORMAL")) != SQLITE_OK ||
	    (rc = exec(d, "BEGIN IMMEDIATE")) != SQLITE_OK) {
		rc = fail(d, rc, "cannot open", path, err, errlen);
		store_db_close(d);
		return rc;
	}
	if ((rc = exec(d, schema)) != SQLITE_OK)
		goto fail_txn;
	for (int i = 0; i < n; i++) {
		rc = lookup_id(d, "INSERT OR IGNORE INTO series(name, measured) VALUES(?1, ?2)",
		               "SELECT id FROM series WHERE name = ?1", names[i],
		               measured[i] ? 1 : 0, &d->series_id[i]);
		if (rc != SQLITE_OK)
			goto fail_txn;
		if (strcmp(names[i], STORE_HOST_SERIES) == 0)
			d->host_series = i;
	}
	rc = lookup_id(d, "INSERT OR IGNORE INTO coverage(channels) VALUES(?1)",
	               "SELECT id FROM coverage WHERE channels = ?1", coverage, 0, &d->coverage_id);
	if (rc != SQLITE_OK)
		goto fail_txn;
	sqlite3_stmt *st;
	rc = sqlite3_prepare_v2(d->db, "SELECT total_uj FROM series WHERE id = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto fail_txn;
	for (int i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, d->series_id[i]);
		rc = sqlite3_step(st);
		d->total_uj[i] = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	}
	sqlite3_finalize(st);
	if ((rc = exec(d, "COMMIT")) != SQLITE_OK)
		goto fail_txn;
	d->n_series = n;
	d->recorded_to = meta_double(d, "recorded_to");
	d->record_began_at = meta_double(d, "record_began_at");
	d->users_recorded_to = meta_double(d, "users_recorded_to");

	for (int k = 0; k < STORE_TIERS; k++) {
		char sql[sizeof(upsert_fmt) + 8];
		snprintf(sql, sizeof(sql), upsert_fmt, store_tier_name[k]);
		if ((rc = sqlite3_prepare_v2(d->db, sql, -1, &d->upsert[k], NULL)) != SQLITE_OK)
			goto fail;
	}
	for (int k = 0; k < STORE_USER_TIERS; k++) {
		char sql[sizeof(user_upsert_fmt) + 8];
		snprintf(sql, sizeof(sql), user_upsert_fmt, store_tier_name[k + 1]);
		if ((rc = sqlite3_prepare_v2(d->db, sql, -1, &d->user_upsert[k], NULL)) !=
		    SQLITE_OK)
			goto fail;
	}
	if ((rc = sqlite3_prepare_v2(d->db,
	                             "UPDATE series SET total_uj = total_uj + ?2 WHERE id = ?1", -1,
	                             &d->add_total, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(d->db,
	                             "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key)"
	                             " DO UPDATE SET value = excluded.value",
	                             -1, &d->set_meta, NULL)) != SQLITE_OK)
		goto fail;
	return 0;
fail_txn:
	rc = fail(d, rc, "cannot set up the record in", path, err, errlen);
	exec(d, "ROLLBACK");
	store_db_close(d);
	return rc;
fail:
	rc = fail(d, rc, "cannot set up the record in", path, err, errlen);
	store_db_close(d);
	return rc;
}

void store_db_close(struct store_db *d)
{
	for (int k = 0; k < STORE_TIERS; k++)
		sqlite3_finalize(d->upsert[k]);
	for (int k = 0; k < STORE_USER_TIERS; k++)
		sqlite3_finalize(d->user_upsert[k]);
	sqlite3_finalize(d->add_total);
	sqlite3_finalize(d->set_meta);
	if (d->db)
		sqlite3_close_v2(d->db);
	memset(d->upsert, 0, sizeof(d->upsert));
	memset(d->user_upsert, 0, sizeof(d->user_upsert));
	d->add_total = d->set_meta = NULL;
	d->db = NULL;
}

static int upsert(struct store_db *d, int tier, int64_t t, int series, int64_t uj, int64_t ms)
{
	sqlite3_stmt *st = d->upsert[tier];
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, t);
	sqlite3_bind_int64(st, 2, d->series_id[series]);
	sqlite3_bind_int64(st, 3, uj);
	sqlite3_bind_int64(st, 4, ms);
	if (series == d->host_series)
		sqlite3_bind_int64(st, 5, d->coverage_id);
	else
		sqlite3_bind_null(st, 5);
	int rc = sqlite3_step(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int set_meta(struct store_db *d, const char *key, double v)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%.6f", v);
	sqlite3_reset(d->set_meta);
	sqlite3_bind_text(d->set_meta, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(d->set_meta, 2, buf, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(d->set_meta);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Minute and hour buckets are summed in memory first: one upsert per bucket and series rather
 * than one per second. */
struct bucket {
	int64_t t;
	int64_t ms;
	int64_t uj[STORE_SERIES_MAX];
	bool have[STORE_SERIES_MAX]; /* a derived series may have no value in some seconds */
	bool used;
};

static int flush_bucket(struct store_db *d, int tier, struct bucket *b)
{
	if (!b->used)
		return SQLITE_OK;
	for (int i = 0; i < d->n_series; i++) {
		if (!b->have[i])
			continue;
		int rc = upsert(d, tier, b->t, i, b->uj[i], b->ms);
		if (rc != SQLITE_OK)
			return rc;
	}
	b->used = false;
	return SQLITE_OK;
}

static int add_to_bucket(struct store_db *d, int tier, struct bucket *b,
                         const struct store_entry *e)
{
	int64_t step = store_tier_step_s[tier];
	int64_t t = e->t - ((e->t % step) + step) % step;
	if (b->used && b->t != t) {
		int rc = flush_bucket(d, tier, b);
		if (rc != SQLITE_OK)
			return rc;
	}
	if (!b->used) {
		memset(b, 0, sizeof(*b));
		b->used = true;
		b->t = t;
	}
	b->ms += e->covered_ms;
	for (int i = 0; i < d->n_series; i++) {
		if (e->energy_uj[i] == STORE_NO_VALUE)
			continue;
		b->uj[i] += e->energy_uj[i];
		b->have[i] = true;
	}
	return SQLITE_OK;
}

int store_db_write(struct store_db *d, const struct store_entry *entries, size_t n,
                   double recorded_to, char *err, size_t errlen)
{
	return store_db_write_users(d, entries, n, NULL, 0, 0, recorded_to, err, errlen);
}

/* Each user row goes to its minute and to the hour that holds it. */
static int upsert_users(struct store_db *d, const struct store_user_row *rows, size_t n)
{
	for (size_t j = 0; j < n; j++) {
		for (int k = 0; k < STORE_USER_TIERS; k++) {
			int64_t step = store_tier_step_s[k + 1];
			sqlite3_stmt *st = d->user_upsert[k];
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, rows[j].t - ((rows[j].t % step) + step) % step);
			sqlite3_bind_int64(st, 2, rows[j].uid);
			sqlite3_bind_int64(st, 3, rows[j].energy_uj);
			int rc = sqlite3_step(st);
			if (rc != SQLITE_DONE)
				return rc;
		}
	}
	return SQLITE_OK;
}

int store_db_write_users(struct store_db *d, const struct store_entry *entries, size_t n,
                         const struct store_user_row *users, size_t n_users, double users_to,
                         double recorded_to, char *err, size_t errlen)
{
	if (!d->db) {
		snprintf(err, errlen, "the database is not open");
		return -EBADF;
	}
	int rc = exec(d, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		return fail(d, rc, "cannot write to", sqlite3_db_filename(d->db, "main"), err,
		            errlen);
	struct bucket b[STORE_TIERS];
	memset(b, 0, sizeof(b));
	int64_t total[STORE_SERIES_MAX] = {0};
	for (size_t k = 0; k < n; k++) {
		const struct store_entry *e = &entries[k];
		for (int i = 0; i < d->n_series; i++) {
			if (e->energy_uj[i] == STORE_NO_VALUE)
				continue; /* unknown, not zero: no row */
			rc = upsert(d, 0, e->t, i, e->energy_uj[i], e->covered_ms);
			if (rc != SQLITE_OK)
				goto fail;
			total[i] += e->energy_uj[i];
		}
		for (int tier = 1; tier < STORE_TIERS; tier++)
			if ((rc = add_to_bucket(d, tier, &b[tier], e)) != SQLITE_OK)
				goto fail;
	}
	for (int tier = 1; tier < STORE_TIERS; tier++)
		if ((rc = flush_bucket(d, tier, &b[tier])) != SQLITE_OK)
			goto fail;
	for (int i = 0; i < d->n_series; i++) {
		sqlite3_reset(d->add_total);
		sqlite3_bind_int64(d->add_total, 1, d->series_id[i]);
		sqlite3_bind_int64(d->add_total, 2, total[i]);
		if ((rc = sqlite3_step(d->add_total)) != SQLITE_DONE)
			goto fail;
	}
	if (n > 0 && d->record_began_at == 0) {
		if ((rc = set_meta(d, "record_began_at", (double)entries[0].t)) != SQLITE_OK)
			goto fail;
	}
	if ((rc = set_meta(d, "recorded_to", recorded_to)) != SQLITE_OK)
		goto fail;
	if (users_to > 0 && ((rc = upsert_users(d, users, n_users)) != SQLITE_OK ||
	                     (rc = set_meta(d, "users_recorded_to", users_to)) != SQLITE_OK))
		goto fail;
	if ((rc = exec(d, "COMMIT")) != SQLITE_OK)
		goto fail;
	if (users_to > 0)
		d->users_recorded_to = users_to;
	if (n > 0 && d->record_began_at == 0)
		d->record_began_at = (double)entries[0].t;
	d->recorded_to = recorded_to;
	return 0;
fail:
	rc = fail(d, rc, "cannot write to", sqlite3_db_filename(d->db, "main"), err, errlen);
	exec(d, "ROLLBACK");
	return rc;
}

int store_db_prune(struct store_db *d, double now, const double keep_s[STORE_TIERS], char *err,
                   size_t errlen)
{
	for (int k = 0; k < STORE_TIERS; k++) {
		if (keep_s[k] <= 0)
			continue;
		char sql[128];
		snprintf(sql, sizeof(sql), "DELETE FROM energy_%s WHERE t < %lld",
		         store_tier_name[k], (long long)floor(now - keep_s[k]));
		int rc = exec(d, sql);
		if (rc == SQLITE_OK && k > 0) {
			/* The users' rows are kept as long as the tier of the same step. */
			snprintf(sql, sizeof(sql), "DELETE FROM user_energy_%s WHERE t < %lld",
			         store_tier_name[k], (long long)floor(now - keep_s[k]));
			rc = exec(d, sql);
		}
		if (rc != SQLITE_OK)
			return fail(d, rc, "cannot prune", sqlite3_db_filename(d->db, "main"), err,
			            errlen);
	}
	return 0;
}

int store_tier_pick(double from, double step_s, double now, const double *keep_s, int forced_tier,
                    char *err, size_t errlen)
{
	bool any_keeps = false;
	for (int k = 0; k < STORE_TIERS; k++) {
		if (forced_tier >= 0 && k != forced_tier)
			continue;
		bool keeps = keep_s[k] <= 0 || from >= now - keep_s[k];
		any_keeps |= keeps;
		if (keeps && (step_s == 0 || fmod(step_s, store_tier_step_s[k]) == 0))
			return k;
	}
	if (!any_keeps)
		snprintf(err, errlen,
		         "no tier%s keeps rows back to 'from' (%.0f s ago); see info.store.tiers",
		         forced_tier >= 0 ? " of that name" : "", now - from);
	else
		snprintf(err, errlen,
		         "'step' = %.17g is not a multiple of the step of the tier that keeps rows "
		         "back to 'from' (see info.store.tiers)",
		         step_s);
	return -1;
}
