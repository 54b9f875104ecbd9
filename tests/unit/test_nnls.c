/* Non-negative least squares (src/core/nnls.c) on literal problems with known answers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include "nnls.h"

/* y = 2 x0 + 0.5 x1 exactly: the unconstrained answer is feasible and is found. */
static void test_exact_fit(void **state)
{
	(void)state;
	const double x[] = {1, 0, 0, 1, 1, 1, 2, 3, 5, 1};
	double y[5], b[2], rss;
	for (int i = 0; i < 5; i++)
		y[i] = 2 * x[2 * i] + 0.5 * x[2 * i + 1];
	assert_int_equal(nnls_fit(x, y, 5, 2, b, &rss), 0);
	assert_true(fabs(b[0] - 2) < 1e-6);
	assert_true(fabs(b[1] - 0.5) < 1e-6);
	assert_true(rss < 1e-9);
}

/* y = x0 - x1: least squares wants a negative coefficient; the non-negative answer sets it to
 * 0 and fits x0 alone: b0 = (x0 . y) / (x0 . x0). */
static void test_negative_coefficient_is_clamped(void **state)
{
	(void)state;
	const double x[] = {1, 1, 2, 0, 3, 1, 4, 3};
	double y[4], b[2];
	double xy = 0, xx = 0;
	for (int i = 0; i < 4; i++) {
		y[i] = x[2 * i] - x[2 * i + 1];
		xy += x[2 * i] * y[i];
		xx += x[2 * i] * x[2 * i];
	}
	assert_int_equal(nnls_fit(x, y, 4, 2, b, NULL), 0);
	assert_true(b[1] == 0);
	assert_true(fabs(b[0] - xy / xx) < 1e-9);
}

/* Columns of very different magnitude (a rate in 1e9/s beside an intercept of ones). */
static void test_scaled_columns_and_intercept(void **state)
{
	(void)state;
	double x[3 * 8], y[8], b[3];
	for (int i = 0; i < 8; i++) {
		x[3 * i] = (1.0 + i) * 1e9;
		x[3 * i + 1] = (double)((i * 7) % 5) * 1e6;
		x[3 * i + 2] = 1;
		y[i] = 2e-9 * x[3 * i] + 5e-7 * x[3 * i + 1] + 10;
	}
	assert_int_equal(nnls_fit(x, y, 8, 3, b, NULL), 0);
	assert_true(fabs(b[0] - 2e-9) < 1e-12);
	assert_true(fabs(b[1] - 5e-7) < 1e-10);
	assert_true(fabs(b[2] - 10) < 1e-4);
}

/* y below zero everywhere: b = 0 is the answer; an all-zero column gets 0. */
static void test_all_negative_and_zero_column(void **state)
{
	(void)state;
	const double x[] = {1, 0, 2, 0, 3, 0};
	const double y[] = {-1, -2, -3};
	double b[2] = {7, 7};
	assert_int_equal(nnls_fit(x, y, 3, 2, b, NULL), 0);
	assert_true(b[0] == 0 && b[1] == 0);
}

static void test_bad_input(void **state)
{
	(void)state;
	const double x[] = {1, NAN};
	const double y[] = {1, 2};
	double b[7];
	assert_int_equal(nnls_fit(x, y, 2, 1, b, NULL), -EINVAL);
	assert_int_equal(nnls_fit(x, y, 0, 1, b, NULL), -EINVAL);
	assert_int_equal(nnls_fit(x, y, 1, 7, b, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exact_fit),
	    cmocka_unit_test(test_negative_coefficient_is_clamped),
	    cmocka_unit_test(test_scaled_columns_and_intercept),
	    cmocka_unit_test(test_all_negative_and_zero_column),
	    cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
