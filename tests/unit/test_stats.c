/* energy_stats and the energy formulas of libenergy (src/common/stats.c), with literal inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <errno.h>
#include <math.h>

#include "energy.h"

static void four_values(void **state)
{
	(void)state;
	const double v[] = {1, 2, 3, 4};
	struct energy_stats s;
	assert_int_equal(energy_stats(v, 4, &s), 0);
	assert_int_equal(s.n, 4);
	assert_float_equal(s.mean, 2.5, 1e-12);
	/* sum of squares 5, n - 1 = 3 */
	assert_float_equal(s.sd, sqrt(5.0 / 3.0), 1e-12);
	assert_float_equal(s.rel_sd, sqrt(5.0 / 3.0) / 2.5, 1e-12);
	/* t(0.975, 3) = 3.182 */
	assert_float_equal(s.ci95_low, 2.5 - 3.182 * sqrt(5.0 / 3.0) / 2, 1e-12);
	assert_float_equal(s.ci95_high, 2.5 + 3.182 * sqrt(5.0 / 3.0) / 2, 1e-12);
}

static void non_finite_values_are_left_out(void **state)
{
	(void)state;
	const double v[] = {NAN, 10, INFINITY, 14};
	struct energy_stats s;
	assert_int_equal(energy_stats(v, 4, &s), 0);
	assert_int_equal(s.n, 2);
	assert_float_equal(s.mean, 12, 1e-12);
	assert_float_equal(s.sd, sqrt(8.0), 1e-12);
	/* t(0.975, 1) = 12.706 */
	assert_float_equal(s.ci95_high - s.mean, 12.706 * sqrt(8.0) / sqrt(2.0), 1e-9);
}

static void one_value_and_none(void **state)
{
	(void)state;
	const double v[] = {7};
	struct energy_stats s;
	assert_int_equal(energy_stats(v, 1, &s), 0);
	assert_int_equal(s.n, 1);
	assert_float_equal(s.mean, 7, 0);
	assert_true(isnan(s.sd) && isnan(s.rel_sd) && isnan(s.ci95_low) && isnan(s.ci95_high));
	assert_int_equal(energy_stats(NULL, 0, &s), 0);
	assert_int_equal(s.n, 0);
	assert_true(isnan(s.mean));
	assert_int_equal(energy_stats(NULL, 3, &s), -EINVAL);
}

/* Above 30 degrees of freedom the quantile comes from the Cornish-Fisher expansion: against
 * the tabulated t(0.975, 40) = 2.0211 and t(0.975, 120) = 1.9799. */
static void large_samples(void **state)
{
	(void)state;
	const size_t ns[] = {41, 121};
	const double t[] = {2.0211, 1.9799};
	for (int k = 0; k < 2; k++) {
		double v[121];
		for (size_t i = 0; i < ns[k]; i++)
			v[i] = i % 2 ? 1.0 : -1.0;
		struct energy_stats s;
		assert_int_equal(energy_stats(v, ns[k], &s), 0);
		double half = (s.ci95_high - s.ci95_low) / 2;
		assert_float_equal(half / (s.sd / sqrt((double)ns[k])), t[k], 2e-4);
	}
}

static void mean_watts_and_idle(void **state)
{
	(void)state;
	assert_float_equal(energy_mean_watts(30, 2), 15, 0);
	assert_true(isnan(energy_mean_watts(30, 0)));
	assert_true(isnan(energy_mean_watts(NAN, 2)));
	assert_float_equal(energy_above_idle(30, 10, 2), 10, 0);
	assert_float_equal(energy_above_idle(10, 10, 2), -10, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(four_values),         cmocka_unit_test(non_finite_values_are_left_out),
	    cmocka_unit_test(one_value_and_none),  cmocka_unit_test(large_samples),
	    cmocka_unit_test(mean_watts_and_idle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
