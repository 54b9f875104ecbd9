/* The watts shown for a sample (history_watts_window): mean power over the sensor's window, no
 * spike after a late sample or a stalled counter, no 0 W while a counter waits for an update. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include "history.h"

#define INV HISTORY_INVALID

static void append1(struct history *h, double t, uint64_t uj)
{
	history_append(h, t, &uj, uj);
}

/* A counter at 10 W sampled every 0.1 s: every window gives 10 W, over min_s at least. */
static void test_steady_counter(void **state)
{
	(void)state;
	struct history h;
	assert_int_equal(history_init(&h, 1, 64), 0);
	for (int k = 0; k <= 20; k++)
		append1(&h, 0.1 * k, (uint64_t)k * 1000000);
	double w;
	struct history_window win;
	assert_int_equal(history_watts_window(&h, 0, 20, 0.1, &w, &win), 0);
	assert_true(fabs(w - 10.0) < 1e-9);
	assert_true(fabs(win.to - 2.0) < 1e-12 && fabs(win.from - 1.9) < 1e-12);
	assert_true(fabs(win.update_period_s - 0.1) < 1e-9);
	assert_int_equal(history_watts_window(&h, 0, 20, 1.0, &w, &win), 0);
	assert_true(fabs(w - 10.0) < 1e-9 && fabs(win.to - win.from - 1.0) < 1e-9);
	/* The first sample has nothing before it: its interval joins the next one. */
	assert_int_equal(history_watts_window(&h, 0, 0, 0.1, &w, &win), 0);
	assert_true(fabs(w - 10.0) < 1e-9 && win.from == 0.0);
	history_free(&h);
}

/*
 * A late sample: ticks at 0.1 s, then one 0.18 s late and the next 12 ms after it; the
 * counter (10 W) was written late, so the 12 ms interval holds 0.1 s of energy. The plain
 * ratio would say 10 W * 0.1 / 0.012 = 83 W; the window (at least 0.1 s) does not.
 */
static void test_late_sample_makes_no_spike(void **state)
{
	(void)state;
	struct history h;
	assert_int_equal(history_init(&h, 1, 64), 0);
	double t[] = {0.0, 0.1, 0.2, 0.3, 0.48, 0.492, 0.6};
	uint64_t uj[] = {0, 1000000, 2000000, 3000000, 3800000, 4920000, 6000000};
	for (int k = 0; k < 7; k++)
		append1(&h, t[k], uj[k]);
	double w;
	assert_int_equal(history_watts_window(&h, 0, 5, 0.1, &w, NULL), 0);
	/* 4.92 - 3.0 J over 0.3..0.492 s: 10 W */
	assert_true(fabs(w - 10.0) < 1e-9);
	history_free(&h);
}

/*
 * A counter that stalls for 0.3 s (three samples unchanged) then catches up. While it stalls,
 * the newest sample shows the last mean (no update yet, not 0 W). Once it has caught up, the
 * stalled samples join the catch-up: the mean over the whole stretch, not the stretch divided
 * by one interval; and the update just before the stall (possibly partial: a counter written
 * just before it stalled) is not used as a bound.
 */
static void test_stall_then_catch_up(void **state)
{
	(void)state;
	struct history h;
	assert_int_equal(history_init(&h, 1, 64), 0);
	for (int k = 0; k <= 9; k++) /* 20 W */
		append1(&h, 0.1 * k, (uint64_t)k * 2000000);
	append1(&h, 1.0, 19000000); /* written 50 ms late, then stalled */
	double w;
	struct history_window win;
	for (int k = 11; k <= 13; k++) {
		append1(&h, 0.1 * k, 19000000);
		/* Live (no sample after it yet): the last mean before the stall. */
		assert_int_equal(history_watts_window(&h, 0, (size_t)k, 0.1, &w, &win), 0);
		assert_true(k == 11 ? fabs(w - 10.0) < 1e-9 : fabs(w - 20.0) < 1e-9);
	}
	append1(&h, 1.4, 28000000); /* caught up */
	append1(&h, 1.5, 30000000);
	for (size_t i = 10; i <= 14; i++) {
		assert_int_equal(history_watts_window(&h, 0, i, 0.1, &w, &win), 0);
		/* 10 J over 0.9..1.4 s */
		assert_true(fabs(w - 20.0) < 1e-9);
		assert_true(fabs(win.from - 0.9) < 1e-9 && fabs(win.to - 1.4) < 1e-9);
	}
	assert_int_equal(history_watts_window(&h, 0, 15, 0.1, &w, NULL), 0);
	assert_true(fabs(w - 20.0) < 1e-9);
	history_free(&h);
}

/* A counter still for longer than the hold (4 periods, 0.5 s at least) really stands still.
 * Live, it shows the last mean until the hold expires; once the pause is known to be that
 * long, the samples in it show 0 W. */
static void test_counter_that_stops_reads_zero(void **state)
{
	(void)state;
	struct history h;
	assert_int_equal(history_init(&h, 1, 128), 0);
	for (int k = 0; k <= 10; k++)
		append1(&h, 0.1 * k, (uint64_t)k * 500000); /* 5 W */
	for (int k = 11; k <= 14; k++)
		append1(&h, 0.1 * k, 5000000);
	double w;
	assert_int_equal(history_watts_window(&h, 0, 14, 0.1, &w, NULL), 0);
	assert_true(fabs(w - 5.0) < 1e-9); /* 0.4 s: no update yet */
	for (int k = 15; k <= 30; k++)
		append1(&h, 0.1 * k, 5000000);
	for (size_t i = 12; i <= 30; i++) {
		assert_int_equal(history_watts_window(&h, 0, i, 0.1, &w, NULL), 0);
		assert_true(w == 0.0);
	}
	/* Live at 1.6 s, with the pause 0.6 s long: 0 W too. */
	history_free(&h);
	assert_int_equal(history_init(&h, 1, 128), 0);
	for (int k = 0; k <= 10; k++)
		append1(&h, 0.1 * k, (uint64_t)k * 500000);
	for (int k = 11; k <= 16; k++)
		append1(&h, 0.1 * k, 5000000);
	assert_int_equal(history_watts_window(&h, 0, 16, 0.1, &w, NULL), 0);
	assert_true(w == 0.0);
	history_free(&h);
}

/* A sensor that refreshes every 0.3 s sampled every 0.1 s: its period is measured, and the
 * window spans it, so the shown power is steady instead of 0, 0, 30 W. */
static void test_slow_sensor_period_is_measured(void **state)
{
	(void)state;
	struct history h;
	assert_int_equal(history_init(&h, 1, 128), 0);
	for (int k = 0; k <= 40; k++)
		append1(&h, 0.1 * k, (uint64_t)(k / 3) * 3000000); /* 10 W, updated every 0.3 s */
	struct history_window win;
	for (size_t i = 20; i <= 40; i++) {
		double w;
		assert_int_equal(history_watts_window(&h, 0, i, 0.1, &w, &win), 0);
		assert_true(fabs(w - 10.0) < 1e-6);
		assert_true(fabs(win.update_period_s - 0.3) < 1e-9);
	}
	history_free(&h);
}

/* The host: the sum of its parts, each over its own window (one part stalls, one moves). */
static void test_host_sums_its_parts(void **state)
{
	(void)state;
	struct history h;
	assert_int_equal(history_init(&h, 2, 64), 0);
	int parts[] = {0, 1};
	history_set_host_parts(&h, parts, 2);
	for (int k = 0; k <= 14; k++) {
		uint64_t a =
		    k <= 10 ? (uint64_t)k * 3000000 : 30000000; /* 30 W, stalls after 1 s */
		uint64_t v[2] = {a, (uint64_t)k * 1000000};     /* 10 W */
		history_append(&h, 0.1 * k, v, v[0] + v[1]);
	}
	double w;
	assert_int_equal(history_watts_window(&h, HISTORY_HOST, 13, 0.1, &w, NULL), 0);
	assert_true(fabs(w - 40.0) < 1e-9);
	/* An invalid part makes the host unknown at that sample. */
	uint64_t v[2] = {INV, 15000000};
	history_append(&h, 1.5, v, INV);
	assert_int_equal(history_watts_window(&h, HISTORY_HOST, 15, 0.1, &w, NULL), -ENODATA);
	history_free(&h);
}

/* A counter stalled when energyd started: its first catch-up has no known start (the energy
 * may span more than the samples show), so "no update yet"; from the next update on, means. */
static void test_stall_at_start_is_no_update_yet(void **state)
{
	(void)state;
	struct history h;
	assert_int_equal(history_init(&h, 1, 64), 0);
	for (int k = 0; k <= 3; k++)
		append1(&h, 0.1 * k, 0);
	append1(&h, 0.4, 4000000);
	double w;
	assert_int_equal(history_watts_window(&h, 0, 4, 0.1, &w, NULL), -ENODATA);
	for (int k = 5; k <= 8; k++)
		append1(&h, 0.1 * k, (uint64_t)(k - 1) * 1000000);
	assert_int_equal(history_watts_window(&h, 0, 8, 0.1, &w, NULL), 0);
	assert_true(fabs(w - 10.0) < 1e-9);
	history_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_steady_counter),
	    cmocka_unit_test(test_late_sample_makes_no_spike),
	    cmocka_unit_test(test_stall_then_catch_up),
	    cmocka_unit_test(test_counter_that_stops_reads_zero),
	    cmocka_unit_test(test_slow_sensor_period_is_measured),
	    cmocka_unit_test(test_host_sums_its_parts),
	    cmocka_unit_test(test_stall_at_start_is_no_update_yet),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
