/* What the store's unit tests share: a temporary record, its removal, one integer by SQL.
 * Include after cmocka.h. */
#ifndef ENERGY_STORE_TEST_UTIL_H
#define ENERGY_STORE_TEST_UTIL_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void temp_db(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/energy-test-store-%d-%d.db", (int)getpid(), rand());
}

/* The record and its -wal and -shm files. */
static inline void remove_db(const char *path)
{
	char p[600];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

/* The first column of the first row of sql on the record at path (-1 when no row). */
static inline int64_t query_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

#endif
