/* The CPU model's calibration fit (src/core/cpufit.c) on exact synthetic windows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "cpufit.h"

/* The fit counts and is idle, max watts and error (%) to 1e-9 W and 1e-6 %. */
static void assert_fit(const struct cpufit_sums *s, double idle, double max, double rms_pct)
{
	struct cpufit_result r;
	char why[200] = "x";
	assert_int_equal(cpufit_solve(s, &r, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_float_equal(r.idle_watts, idle, 1e-9);
	assert_float_equal(r.max_watts, max, 1e-9);
	assert_float_equal(r.rms_error_pct, rms_pct, 1e-6);
}

/* 8 W + 30 W x u at u = 0.05, 0.10, ..., 1.00: the fit is the line exactly, error 0. */
static void exact_line(void **state)
{
	(void)state;
	struct cpufit_sums s;
	cpufit_init(&s);
	for (int k = 1; k <= 20; k++)
		assert_int_equal(cpufit_add(&s, k * 0.05, 8 + 30 * k * 0.05), 0);
	assert_fit(&s, 8, 38, 0);
	assert_float_equal(s.u_min, 0.05, 1e-12);
	assert_float_equal(s.u_max, 1.0, 1e-12);
}

/* Residuals +1 W and -1 W alternating around 10 + 20 u at u = 0.2 and 0.6 (each twice per
 * ten windows): least squares returns the line; the RMS residual is 1 W on a mean of 18 W. */
static void noisy_line_and_error(void **state)
{
	(void)state;
	struct cpufit_sums s;
	cpufit_init(&s);
	for (int k = 0; k < 10; k++) {
		cpufit_add(&s, 0.2, 14 + 1);
		cpufit_add(&s, 0.2, 14 - 1);
		cpufit_add(&s, 0.6, 22 + 1);
		cpufit_add(&s, 0.6, 22 - 1);
	}
	assert_fit(&s, 10, 30, 1.0 / 18 * 100);
}

/* Too few windows, or all at nearly the same load: no fit, and the reason says which. */
static void needs_windows_and_spread(void **state)
{
	(void)state;
	struct cpufit_sums s;
	cpufit_init(&s);
	for (int k = 0; k < CPUFIT_MIN_WINDOWS - 1; k++)
		cpufit_add(&s, k % 2 ? 0.1 : 0.9, 10);
	struct cpufit_result r;
	char why[200];
	assert_int_equal(cpufit_solve(&s, &r, why, sizeof(why)), -EAGAIN);
	assert_non_null(strstr(why, "19 of 20 windows"));
	cpufit_add(&s, 0.5, 10);
	assert_int_equal(cpufit_solve(&s, &r, why, sizeof(why)), 0);

	cpufit_init(&s);
	for (int k = 0; k < 100; k++) /* 40 % to 59 %: a range of 19 %, below 20 % */
		cpufit_add(&s, 0.40 + (k % 20) * 0.01, 20 + 10 * k % 3);
	assert_int_equal(cpufit_solve(&s, &r, why, sizeof(why)), -EAGAIN);
	assert_non_null(strstr(why, "range 19 %"));
}

/* Power that falls as load rises has a negative slope: the bound max >= idle holds it at a
 * constant, the mean (least squares with the slope held at 0). */
static void slope_bound(void **state)
{
	(void)state;
	struct cpufit_sums s;
	cpufit_init(&s);
	for (int k = 0; k < 20; k++)
		cpufit_add(&s, k < 10 ? 0.1 : 0.9, k < 10 ? 12 : 10);
	assert_fit(&s, 11, 11, 1.0 / 11 * 100);
}

/* Windows on -5 W + 50 W x u (u from 0.2 to 1) would give a negative idle: held at 0, the slope
 * is then the least squares through the origin, sum(u p) / sum(u^2). */
static void intercept_bound(void **state)
{
	(void)state;
	struct cpufit_sums s;
	cpufit_init(&s);
	double sup = 0, suu = 0;
	for (int k = 0; k < 20; k++) {
		double u = 0.2 + 0.8 * k / 19.0, p = -5 + 50 * u;
		cpufit_add(&s, u, p);
		sup += u * p, suu += u * u;
	}
	struct cpufit_result r;
	char why[200];
	assert_int_equal(cpufit_solve(&s, &r, why, sizeof(why)), 0);
	assert_float_equal(r.idle_watts, 0, 0);
	assert_float_equal(r.max_watts, sup / suu, 1e-9);
	assert_true(r.rms_error_pct > 0);
}

/* Bad windows are refused and leave the sums as they were. */
static void rejects_bad_windows(void **state)
{
	(void)state;
	struct cpufit_sums s;
	cpufit_init(&s);
	assert_int_equal(cpufit_add(&s, -0.1, 10), -EINVAL);
	assert_int_equal(cpufit_add(&s, 1.1, 10), -EINVAL);
	assert_int_equal(cpufit_add(&s, 0.5, -1), -EINVAL);
	assert_int_equal(cpufit_add(&s, NAN, 10), -EINVAL);
	assert_int_equal(cpufit_add(&s, 0.5, INFINITY), -EINVAL);
	assert_float_equal(s.n, 0, 0);
	assert_float_equal(s.sp, 0, 0);
}

/* At CPUFIT_WINDOWS_MAX the sums halve: the fit stays, and newer windows weigh twice as much. */
static void sums_halve(void **state)
{
	(void)state;
	struct cpufit_sums s;
	cpufit_init(&s);
	for (int k = 0; k < CPUFIT_WINDOWS_MAX; k++)
		cpufit_add(&s, (k % 11) / 10.0, 5 + 10 * (k % 11) / 10.0);
	assert_float_equal(s.n, CPUFIT_WINDOWS_MAX, 0);
	cpufit_add(&s, 0.5, 10);
	assert_float_equal(s.n, CPUFIT_WINDOWS_MAX / 2 + 1, 0);
	struct cpufit_result r;
	assert_int_equal(cpufit_solve(&s, &r, NULL, 0), 0);
	assert_float_equal(r.idle_watts, 5, 1e-6);
	assert_float_equal(r.max_watts, 15, 1e-6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(exact_line),
	    cmocka_unit_test(noisy_line_and_error),
	    cmocka_unit_test(needs_windows_and_spread),
	    cmocka_unit_test(slope_bound),
	    cmocka_unit_test(intercept_bound),
	    cmocka_unit_test(rejects_bad_windows),
	    cmocka_unit_test(sums_halve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
