/* Per-user energy in the record: cutting at minutes, rows that add up, the store's flushes
 * through a hook, and the query that apportions emissions and cost by bucket. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store.h"
#include "store_test_util.h"
#include "store_query_users.h"
#include "store_users.h"

#define M0 1700000040.0 /* a minute boundary (1700000040 = 28333334 x 60) */

/* A span is cut at every minute boundary strictly inside it; max bounds the times, and a cut
 * short stops at a boundary (the rest continues from there). */
static void test_cut_at_minutes(void **state)
{
	(void)state;
	double t[8];
	assert_int_equal(store_users_cut(M0 + 10.5, M0 + 130.25, t, 8), 4);
	assert_true(t[0] == M0 + 10.5 && t[1] == M0 + 60 && t[2] == M0 + 120 &&
	            t[3] == M0 + 130.25);
	assert_int_equal(store_users_cut(M0, M0 + 60, t, 8), 2); /* boundaries at both ends */
	assert_true(t[0] == M0 && t[1] == M0 + 60);
	assert_int_equal(store_users_cut(M0 + 1, M0 + 2, t, 8), 2);
	assert_int_equal(store_users_cut(M0 + 2, M0 + 2, t, 8), 0);
	assert_int_equal(store_users_cut(M0 + 5, M0 + 600, t, 3), 3);
	assert_true(t[1] == M0 + 60 && t[2] == M0 + 120);
}

/* Rounded counters: the pieces add up to the counter's rounded end; a counter that went back
 * (a series pruned whole) or did not move gives no row. */
static void test_rows_add_up(void **state)
{
	(void)state;
	const double t[3] = {M0 + 10, M0 + 60, M0 + 70};
	const uint32_t uids[3] = {1000, 1001, 1002};
	const double cum[9] = {0.4, 1000.6, 2000.5, 5, 5, 5, 900, 10, 20};
	struct store_user_row rows[6];
	size_t n = store_users_rows(t, 3, uids, cum, 3, rows);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].uid, 1000);
	assert_int_equal(rows[0].t, (int64_t)(M0 + 10));
	assert_int_equal(rows[0].energy_uj, 1001); /* 1001 - 0 */
	assert_int_equal(rows[1].t, (int64_t)(M0 + 60));
	assert_int_equal(rows[1].energy_uj, 1000); /* llround(2000.5) = 2001 */
	assert_int_equal(rows[0].energy_uj + rows[1].energy_uj, 2001);
	assert_int_equal(rows[2].uid, 1002);
	assert_int_equal(rows[2].energy_uj, 10);
}

/* Rows of the same minute add, in the minute and in its hour; users_recorded_to is kept; the
 * minute rows are pruned with the minute tier, the hour rows with the hour tier. */
static void test_upsert_adds_and_prunes(void **state)
{
	(void)state;
	char path[256], err[STORE_ERROR_MAX];
	temp_db(path, sizeof(path));
	const char *names[] = {STORE_HOST_SERIES};
	const bool measured[] = {true};
	struct store_db d;
	assert_int_equal(store_db_open(&d, path, names, measured, 1, "a", err, sizeof(err)), 0);
	struct store_user_row a[] = {
	    {(int64_t)M0 + 5, 7, 100}, {(int64_t)M0 + 30, 7, 50}, {(int64_t)M0 + 61, 8, 1}};
	assert_int_equal(store_db_write_users(&d, NULL, 0, a, 3, M0 + 62, 0, err, sizeof(err)), 0);
	struct store_user_row b[] = {{(int64_t)M0 + 59, 7, 25}};
	assert_int_equal(store_db_write_users(&d, NULL, 0, b, 1, M0 + 63, 0, err, sizeof(err)), 0);
	char sql[160];
	snprintf(sql, sizeof(sql),
	         "SELECT energy_uj FROM user_energy_1m WHERE uid = 7 AND t = %lld", (long long)M0);
	assert_int_equal(query_int(path, sql), 175);
	assert_int_equal(query_int(path, "SELECT COUNT(*) FROM user_energy_1m"), 2);
	assert_int_equal(query_int(path, "SELECT t % 3600 FROM user_energy_1h LIMIT 1"), 0);
	assert_int_equal(query_int(path, "SELECT energy_uj FROM user_energy_1h WHERE uid = 7"),
	                 175);
	assert_int_equal(query_int(path, "SELECT CAST(value AS INTEGER) FROM meta"
	                                 " WHERE key = 'users_recorded_to'"),
	                 (int64_t)M0 + 63);
	store_db_close(&d);
	/* Reopened: the end of the user rows is known. */
	assert_int_equal(store_db_open(&d, path, names, measured, 1, "a", err, sizeof(err)), 0);
	assert_true(d.users_recorded_to == M0 + 63);
	const double keep[STORE_TIERS] = {60, 60, 0};
	assert_int_equal(store_db_prune(&d, M0 + 200, keep, err, sizeof(err)), 0);
	store_db_close(&d);
	assert_int_equal(query_int(path, "SELECT COUNT(*) FROM user_energy_1m"), 0);
	assert_int_equal(query_int(path, "SELECT COUNT(*) FROM user_energy_1h"), 2);
	remove_db(path);
}

/* ---- the store's flushes through a hook ------------------------------------------------- */

/* Two users with cumulative energy linear in pieces: uid 1000 at 0.3 W in the first minute,
 * uid 1001 at 0.5 W in the second (the hook knows it only from then on). */
struct fake_attrib {
	double covered_to;
	int spans;
};

static double fake_cum(uint32_t uid, double t)
{
	double a = uid == 1000 ? M0 : M0 + 60, w = uid == 1000 ? 300000 : 500000;
	double x = t < a ? 0 : (t > a + 60 ? 60 : t - a);
	return x * w;
}

static bool fake_span(void *ctx, double *oldest, double *covered_to)
{
	struct fake_attrib *f = ctx;
	f->spans++;
	*oldest = M0;
	*covered_to = f->covered_to;
	return f->covered_to > M0;
}

static size_t fake_energy_at(void *ctx, const double *t, size_t n_t, uint32_t *uids, double *cum_uj,
                             size_t max)
{
	struct fake_attrib *f = ctx;
	size_t n = f->covered_to >= M0 + 60 ? 2 : 1;
	for (size_t u = 0; u < n && u < max; u++) {
		uids[u] = 1000 + (uint32_t)u;
		for (size_t k = 0; k < n_t; k++)
			cum_uj[u * n_t + k] = fake_cum(uids[u], t[k]);
	}
	return n;
}

/* Emissions: 1 ug per 10 mJ in the first minute, 3 in the second; cost: 2 nano per uJ. */
static void fake_derive(void *ctx, double t0, double t1, int64_t host_uj, int64_t *values)
{
	(void)ctx;
	(void)t1;
	values[0] = host_uj / 10000 * (t0 >= M0 + 60 ? 3 : 1);
	values[1] = host_uj * 2;
}

static void test_store_writes_users_and_query_apportions(void **state)
{
	(void)state;
	char path[256], err[STORE_ERROR_MAX];
	temp_db(path, sizeof(path));
	const char *names[] = {"rapl:package-0", STORE_HOST_SERIES};
	const bool measured[] = {true, true};
	const char *derived[] = {"carbon:emissions_ug", "carbon:cost_nano"};
	struct store_options o;
	store_options_defaults(&o);
	snprintf(o.path, sizeof(o.path), "%s", path);
	struct store st;
	assert_int_equal(store_init(&st, &o, names, measured, 2, "rapl:package-0"), 0);
	assert_int_equal(store_set_derived(&st, derived, 2, fake_derive, NULL), 0);
	struct fake_attrib f = {0};
	store_set_users(&st, fake_span, fake_energy_at, &f);
	struct history h;
	assert_int_equal(history_init(&h, 1, 1024), 0);
	/* The host at 1 W, sampled every 0.5 s for two minutes; attribution 1 s behind. */
	for (int k = 0; k <= 240; k++) {
		uint64_t uj = (uint64_t)k * 500000u;
		history_append(&h, M0 + k * 0.5, &uj, uj);
		if (k % 14 == 0 || k == 240) {
			f.covered_to = k == 240 ? M0 + 120 : M0 + k * 0.5 - 1;
			store_collect(&st, &h);
			assert_int_equal(store_flush(&st, M0 + k * 0.5), 0);
		}
	}
	assert_true(f.spans > 10);
	store_free(&st);
	history_free(&h);
	char sql[160];
	snprintf(sql, sizeof(sql),
	         "SELECT energy_uj FROM user_energy_1m WHERE uid = 1000 AND t = %lld",
	         (long long)M0);
	assert_int_equal(query_int(path, sql), 18000000);
	assert_int_equal(query_int(path, "SELECT COUNT(*) FROM user_energy_1m WHERE uid = 1000"),
	                 1);
	snprintf(sql, sizeof(sql),
	         "SELECT energy_uj FROM user_energy_1m WHERE uid = 1001 AND t = %lld",
	         (long long)M0 + 60);
	assert_int_equal(query_int(path, sql), 30000000);
	assert_int_equal(query_int(path, "SELECT SUM(energy_uj) FROM user_energy_1h"), 48000000);

	struct store_users_total q;
	assert_int_equal(store_query_users(path, 1, (int64_t)M0 - 60, (int64_t)M0 + 180,
	                                   "carbon:emissions_ug", "carbon:cost_nano", &q, err,
	                                   sizeof(err)),
	                 0);
	assert_true(q.have_host && q.host_uj == 120000000);
	assert_true(q.have_emissions && q.emissions_ug == 6000 + 18000);
	assert_true(q.have_cost && q.cost_nano == 240000000);
	assert_true(q.users_recorded_to == M0 + 120);
	assert_int_equal(q.n_users, 2);
	assert_int_equal(q.users_total, 2);
	/* Largest first; each user's emissions at the intensity of the minute they used energy in
	 * (an average over the range would give 3600 and 6000). */
	assert_int_equal(q.users[0].uid, 1001);
	assert_int_equal(q.users[0].energy_uj, 30000000);
	assert_true(fabs(q.users[0].share - 0.25) < 1e-12);
	assert_true(fabs(q.users[0].emissions_ug - 9000) < 1e-6);
	assert_true(fabs(q.users[0].cost_nano - 60000000) < 1e-3);
	assert_int_equal(q.users[1].uid, 1000);
	assert_true(fabs(q.users[1].emissions_ug - 1800) < 1e-6);
	assert_true(fabs(q.users[1].share - 0.15) < 1e-12);
	store_users_total_free(&q);
	/* The hour tier answers the same sums. */
	assert_int_equal(store_query_users(path, 2, 1699999200, 1699999200 + 3600,
	                                   "carbon:emissions_ug", "carbon:cost_nano", &q, err,
	                                   sizeof(err)),
	                 0);
	assert_int_equal(q.step_s, 3600);
	assert_int_equal(q.n_users, 2);
	assert_int_equal(q.users[0].energy_uj + q.users[1].energy_uj, 48000000);
	/* One hour bucket: emissions apportioned at its mean intensity. */
	assert_true(fabs(q.users[0].emissions_ug - 30000000 * 24000.0 / 120000000) < 1e-6);
	store_users_total_free(&q);
	remove_db(path);
	assert_int_equal(store_query_users(path, 1, 0, 60, NULL, NULL, &q, err, sizeof(err)),
	                 -ENOENT);
	assert_int_equal(store_users_tier(M0 - 86400, M0, o.keep_s), 1);
	assert_int_equal(store_users_tier(M0 - 40 * 86400, M0, o.keep_s), 2);
}

/* Without a hook (attribution off): the energy is written, no user row, no error. */
static void test_no_hook_no_rows(void **state)
{
	(void)state;
	char path[256];
	temp_db(path, sizeof(path));
	const char *names[] = {"rapl:package-0", STORE_HOST_SERIES};
	const bool measured[] = {true, true};
	struct store_options o;
	store_options_defaults(&o);
	snprintf(o.path, sizeof(o.path), "%s", path);
	struct store st;
	assert_int_equal(store_init(&st, &o, names, measured, 2, "rapl:package-0"), 0);
	struct history h;
	assert_int_equal(history_init(&h, 1, 64), 0);
	for (int k = 0; k <= 20; k++) {
		uint64_t uj = (uint64_t)k * 500000u;
		history_append(&h, M0 + k * 0.5, &uj, uj);
	}
	store_collect(&st, &h);
	assert_int_equal(store_flush(&st, M0 + 10), 0);
	store_free(&st);
	history_free(&h);
	assert_int_equal(query_int(path, "SELECT SUM(energy_uj) FROM energy_1s WHERE series = 2"),
	                 10000000);
	assert_int_equal(query_int(path, "SELECT COUNT(*) FROM user_energy_1m"), 0);
	remove_db(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cut_at_minutes),
	    cmocka_unit_test(test_rows_add_up),
	    cmocka_unit_test(test_upsert_adds_and_prunes),
	    cmocka_unit_test(test_store_writes_users_and_query_apportions),
	    cmocka_unit_test(test_no_hook_no_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
