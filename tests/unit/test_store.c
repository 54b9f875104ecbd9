/* The long-term store: seconds taken from the history ring, the record's tiers and totals, a
 * record that cannot be written. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store.h"
#include "store_test_util.h"
#include "store_query.h"

static const char *names[] = {"rapl:package-0", STORE_HOST_SERIES};
static const bool measured[] = {true, true};

static void init(struct store *st, const char *path)
{
	struct store_options o;
	store_options_defaults(&o);
	snprintf(o.path, sizeof(o.path), "%s", path);
	o.retry_s = 0;
	assert_int_equal(store_init(st, &o, names, measured, 2, "rapl:package-0"), 0);
}

static void append(struct history *h, double t, uint64_t uj)
{
	history_append(h, t, &uj, uj);
}

/* Samples at 100.25 (0 uJ), 100.75 (500), 101.25 (1000), 102.5 (3500): 1000 uJ/s then
 * 2000 uJ/s. The counter interpolated at 101.0 is 750 and at 102.0 is 2500. */
static void test_collect_splits_at_seconds(void **state)
{
	(void)state;
	struct store st;
	struct history h;
	init(&st, "");
	st.info.status = STORE_STARTING; /* collect even without a path */
	assert_int_equal(history_init(&h, 1, 16), 0);
	append(&h, 100.25, 0);
	append(&h, 100.75, 500);
	append(&h, 101.25, 1000);
	append(&h, 102.5, 3500);
	store_collect(&st, &h);
	assert_int_equal(st.q_len, 3);
	assert_int_equal(st.q_t[0], 100);
	assert_int_equal(st.q_ms[0], 750);
	assert_int_equal(st.q_uj[0], 750);
	assert_int_equal(st.q_t[1], 101);
	assert_int_equal(st.q_ms[1], 1000);
	assert_int_equal(st.q_uj[2], 1750); /* 2500 - 750 */
	assert_int_equal(st.q_uj[3], 1750); /* host */
	assert_int_equal(st.q_t[2], 102);
	assert_int_equal(st.q_ms[2], 500);
	assert_int_equal(st.q_uj[4], 1000); /* 3500 - 2500: up to the newest sample */
	/* The rest of second 102 comes with the next collection and joins its entry. */
	append(&h, 103.5, 5500);
	store_collect(&st, &h);
	assert_int_equal(st.q_len, 4);
	assert_int_equal(st.q_ms[2], 1000);
	assert_int_equal(st.q_uj[4], 2000);
	assert_int_equal(st.q_t[3], 103);
	assert_int_equal(st.q_uj[6], 1000);
	int64_t sum = 0;
	for (size_t e = 0; e < st.q_len; e++)
		sum += st.q_uj[e * 2];
	assert_int_equal(sum, 5500); /* every microjoule of the run, exactly once */
	store_free(&st);
	history_free(&h);
}

/* 3 hours at 1 W sampled every 0.5 s: every tier sums to 10800 J; a second run continues the
 * record's totals. */
static void test_tiers_and_totals(void **state)
{
	(void)state;
	char path[256];
	temp_db(path, sizeof(path));
	struct store st;
	struct history h;
	double t0 = 1700000000.5;
	for (int run = 0; run < 2; run++) {
		init(&st, path);
		assert_int_equal(history_init(&h, 1, 2 * 3600 + 4), 0);
		for (int k = 0; k <= 6 * 3600; k++) {
			append(&h, t0 + k * 0.5, (uint64_t)k * 500000u);
			if (k % 7200 == 0) {
				store_collect(&st, &h);
				assert_int_equal(store_flush(&st, 1700000000.0), 0);
			}
		}
		assert_int_equal(st.info.status, STORE_OK);
		uint64_t total;
		assert_true(store_total_uj(&st, 0, 10800000000ull, &total));
		assert_int_equal(total, (run + 1) * 10800000000ull);
		store_free(&st);
		history_free(&h);
		t0 += 5 * 3600; /* the next run starts after two hours' gap */
	}
	for (int tier = 0; tier < STORE_TIERS; tier++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT SUM(energy_uj) FROM energy_%s WHERE series = 1",
		         store_tier_name[tier]);
		assert_int_equal(query_int(path, sql), 2 * 10800000000ll);
	}
	assert_int_equal(query_int(path, "SELECT total_uj FROM series WHERE name = 'host'"),
	                 2 * 10800000000ll);
	/* 1700000000 is 22:13:20 UTC: the first hour row covers 2799.5 s (from 22:13:20.5); each
	 * run touches 4 hours; the run stopped at 01:13:20.5 and the next began at 03:13:20.5, so
	 * the hour from 02:00 has no row: a gap. */
	assert_int_equal(query_int(path, "SELECT covered_ms FROM energy_1h WHERE series = 1 "
	                                 "ORDER BY t LIMIT 1"),
	                 2799500);
	assert_int_equal(query_int(path, "SELECT COUNT(*) FROM energy_1h WHERE series = 1"), 8);
	assert_int_equal(query_int(path, "SELECT COUNT(*) FROM energy_1h WHERE t = 1700013600"), 0);
	assert_int_equal(query_int(path, "SELECT COUNT(*) FROM energy_1h WHERE t = 1700010000"), 2);
	assert_int_equal(query_int(path, "SELECT COUNT(*) FROM energy_1s WHERE series = 1"),
	                 2 * 3 * 3600 + 2);
	remove_db(path);
}

/* A record that cannot be opened: degraded with the path and a hint; the data waits in memory,
 * bounded, and what is dropped is counted. */
static void test_unwritable_keeps_memory_bounded(void **state)
{
	(void)state;
	struct store st;
	struct history h;
	struct store_options o;
	store_options_defaults(&o);
	snprintf(o.path, sizeof(o.path), "/nonexistent-energy-test/dir/energy.db");
	o.memory_s = 100;
	o.retry_s = 0;
	assert_int_equal(store_init(&st, &o, names, measured, 2, "rapl:package-0"), 0);
	assert_int_equal(history_init(&h, 1, 1000), 0);
	for (int k = 0; k <= 300; k++) {
		append(&h, 1000.0 + k, (uint64_t)k * 1000000u);
		if (k % 10 == 0) {
			store_collect(&st, &h);
			assert_true(store_flush(&st, 1000.0 + k) < 0);
		}
	}
	struct store_info si;
	store_get_info(&st, &si);
	assert_int_equal(si.status, STORE_DEGRADED);
	assert_non_null(strstr(si.error, "/nonexistent-energy-test/dir/energy.db"));
	assert_non_null(strstr(si.error, "retries"));
	assert_true(st.q_len <= 100);
	assert_true(si.dropped_s >= 200 && si.dropped_s <= 300);
	assert_true(si.dropped_s + si.pending_s == 300);
	uint64_t total;
	assert_false(store_total_uj(&st, 0, 0, &total)); /* the record's totals are unknown */
	store_free(&st);
	history_free(&h);
}

/* The finest tier that keeps rows back to `from` and whose step divides the step asked for. */
static void test_tier_pick(void **state)
{
	(void)state;
	const double keep[STORE_TIERS] = {86400, 31 * 86400, 0};
	const double now = 1700000000;
	char err[256];
	assert_int_equal(store_tier_pick(now - 3600, 0, now, keep, -1, err, sizeof(err)), 0);
	assert_int_equal(store_tier_pick(now - 3600, 90, now, keep, -1, err, sizeof(err)), 0);
	assert_int_equal(store_tier_pick(now - 3600, 3600, now, keep, -1, err, sizeof(err)), 0);
	assert_int_equal(store_tier_pick(now - 2 * 86400, 0, now, keep, -1, err, sizeof(err)), 1);
	assert_int_equal(store_tier_pick(now - 2 * 86400, 3600, now, keep, -1, err, sizeof(err)),
	                 1);
	assert_int_equal(store_tier_pick(now - 40 * 86400, 60, now, keep, -1, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "not a multiple"));
	assert_int_equal(store_tier_pick(now - 40 * 86400, 7200, now, keep, -1, err, sizeof(err)),
	                 2);
	assert_int_equal(store_tier_pick(now - 3600, 3600, now, keep, 2, err, sizeof(err)), 2);
	assert_int_equal(store_tier_pick(now - 3600, 90, now, keep, 1, err, sizeof(err)), -1);
	assert_int_equal(store_tier_pick(now - 2 * 86400, 0, now, keep, 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "keeps rows"));
}

/* Three hours at 1 W from 22:13:20.5 UTC read back in hour steps from the minute tier: each
 * step is the sum of its rows, a step before the record is a gap, a missing record is -ENOENT. */
static void test_query_steps(void **state)
{
	(void)state;
	char path[256], err[STORE_ERROR_MAX];
	temp_db(path, sizeof(path));
	struct store st;
	struct history h;
	init(&st, path);
	assert_int_equal(history_init(&h, 1, 2 * 3600 + 4), 0);
	for (int k = 0; k <= 6 * 3600; k++) {
		append(&h, 1700000000.5 + k * 0.5, (uint64_t)k * 500000u);
		if (k % 7200 == 0) {
			store_collect(&st, &h);
			assert_int_equal(store_flush(&st, 1700000000.0), 0);
		}
	}
	store_free(&st);
	history_free(&h);
	struct store_steps q;
	const int64_t start = 1699995600, hour = 3600; /* 21:00 UTC */
	assert_int_equal(
	    store_query_steps(path, 1, start, start + 5 * hour, hour, &q, err, sizeof(err)), 0);
	assert_int_equal(q.points, 5);
	assert_int_equal(q.n_series, 2);
	assert_true(q.host >= 0);
	assert_string_equal(q.series[q.host].name, STORE_HOST_SERIES);
	const struct store_step_series *host = &q.series[q.host];
	assert_false(host->have[0]); /* 21:00: before the record began */
	const int64_t expect_uj[] = {0, 2799500000, 3600000000, 3600000000, 800500000};
	int64_t total = 0;
	for (int k = 1; k < 5; k++) {
		assert_true(host->have[k]);
		assert_int_equal(host->sum[k], expect_uj[k]);
		total += host->sum[k];
	}
	assert_int_equal(total, 10800000000ll);
	assert_int_equal(host->covered_ms[1], 2799500);
	assert_int_equal(q.n_coverages, 1);
	assert_string_equal(q.coverages[0], "rapl:package-0");
	assert_false(q.coverage_mixed);
	store_steps_free(&q);
	remove_db(path);
	assert_int_equal(
	    store_query_steps(path, 1, start, start + hour, hour, &q, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "does not exist yet"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_collect_splits_at_seconds),
	    cmocka_unit_test(test_tiers_and_totals),
	    cmocka_unit_test(test_unwritable_keeps_memory_bounded),
	    cmocka_unit_test(test_tier_pick),
	    cmocka_unit_test(test_query_steps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
