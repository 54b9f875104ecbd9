/* The hardware-counter model (src/energyd/attribution/hwpc_model.c): learning, the intercept
 * rule, its bound, the error window and re-learning, on literal windows. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>
#include "hwpc_model.h"
#include "hwpc_test_util.h"

static const double coef_a[HWPC_EVENTS] = {2e-9, 1e-9, 5e-8};

static void test_learns_then_usable_with_intercept(void **state)
{
	(void)state;
	struct hwpc_model m;
	char why[256];
	assert_int_equal(hwpc_model_init(&m, 10, 0), 0);
	for (int i = 0; i < 9; i++) {
		struct hwpc_sample s = window(i, coef_a, 10.0);
		hwpc_model_add(&m, &s);
		/* No intercept before the history is full: not usable, and says so. */
		assert_false(hwpc_model_usable(&m, why, sizeof(why)));
		assert_non_null(strstr(why, "learning"));
	}
	struct hwpc_sample s = window(9, coef_a, 10.0);
	hwpc_model_add(&m, &s);
	assert_true(hwpc_model_usable(&m, why, sizeof(why)));
	assert_true(fabs(m.intercept - 10.0) < 1e-3);
	for (int k = 0; k < HWPC_EVENTS; k++)
		assert_true(fabs(m.coef[k] - coef_a[k]) < 1e-6 * coef_a[k] + 1e-15);
	assert_true(hwpc_model_median_error(&m) < 1e-3);
	hwpc_model_free(&m);
}

/* The intercept never exceeds its bound: with a bound of 4 W for a true 10 W, it is 4. */
static void test_intercept_bound(void **state)
{
	(void)state;
	struct hwpc_model m;
	assert_int_equal(hwpc_model_init(&m, 8, 4.0), 0);
	for (int i = 0; i < 8; i++) {
		struct hwpc_sample s = window(i, coef_a, 10.0);
		hwpc_model_add(&m, &s);
	}
	assert_true(m.with_intercept);
	assert_true(fabs(m.intercept - 4.0) < 1e-9);
	for (int k = 0; k < HWPC_EVENTS; k++)
		assert_true(m.coef[k] >= 0);
	hwpc_model_free(&m);
}

/* Windows shorter than 1 s, negative or non-finite values teach nothing. */
static void test_short_and_bad_windows_ignored(void **state)
{
	(void)state;
	struct hwpc_model m;
	assert_int_equal(hwpc_model_init(&m, 8, 0), 0);
	struct hwpc_sample s = window(0, coef_a, 10.0);
	s.seconds = 0.1;
	hwpc_model_add(&m, &s);
	s = window(1, coef_a, 10.0);
	s.watts = NAN;
	hwpc_model_add(&m, &s);
	s = window(2, coef_a, 10.0);
	s.rate[1] = -1;
	hwpc_model_add(&m, &s);
	assert_int_equal(m.samples, 0);
	assert_false(m.fitted);
	hwpc_model_free(&m);
}

/* After a change of the true coefficients (instructions cost three times as much) each new
 * window's error exceeds 2 W; once they are the median of the error window, the model re-learns
 * on the windows it got wrong, with its intercept carried, and its error is back under 2 W with
 * the new coefficients within the error window. */
static void test_relearns_after_a_change(void **state)
{
	(void)state;
	const int win = 12;
	struct hwpc_model m;
	char why[256];
	assert_int_equal(hwpc_model_init(&m, win, 0), 0);
	for (int i = 0; i < win + 3; i++) {
		struct hwpc_sample s = window(i, coef_a, 10.0);
		hwpc_model_add(&m, &s);
	}
	assert_true(hwpc_model_usable(&m, why, sizeof(why)));
	const double coef_b[HWPC_EVENTS] = {2e-9, 3e-9, 5e-8};
	int relearned_at = -1;
	double worst = 0;
	for (int i = 0; i < win; i++) {
		struct hwpc_sample s = window(100 + i, coef_b, 10.0);
		hwpc_model_add(&m, &s);
		if (m.relearns == 0)
			worst = m.last_error_w > worst ? m.last_error_w : worst;
		if (m.relearns == 1 && relearned_at < 0)
			relearned_at = i;
	}
	assert_true(worst > HWPC_ERROR_MAX_W);
	assert_int_equal(m.relearns, 1);
	/* The median crosses 2 W once more than half the error window is bad. */
	assert_true(relearned_at >= win / 2 - 1 && relearned_at < win);
	assert_true(hwpc_model_usable(&m, why, sizeof(why)));
	assert_true(m.last_error_w < 1e-6);
	assert_true(fabs(m.coef[1] - 3e-9) < 1e-12);
	assert_true(fabs(m.intercept - 10.0) < 1e-3);
	hwpc_model_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_learns_then_usable_with_intercept),
	    cmocka_unit_test(test_intercept_bound),
	    cmocka_unit_test(test_short_and_bad_windows_ignored),
	    cmocka_unit_test(test_relearns_after_a_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
