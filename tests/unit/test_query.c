/* Query parameter checks of the API. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include "query.h"

#define NOW 1795341600.0

static void test_interval(void **state)
{
	(void)state;
	double t0, t1;
	char err[256];
	assert_int_equal(
	    query_interval("1795341500", "1795341550.5", NOW, NAN, NOW, &t0, &t1, err, sizeof(err)),
	    0);
	assert_true(t0 == 1795341500.0 && t1 == 1795341550.5);
	/* to defaults to now */
	assert_int_equal(
	    query_interval("1795341500", NULL, NOW, NAN, NOW, &t0, &t1, err, sizeof(err)), 0);
	assert_true(t1 == NOW);
	assert_int_equal(
	    query_interval("2026-11-22T09:59:00Z", NULL, NOW, NAN, NOW, &t0, &t1, err, sizeof(err)),
	    0);
	assert_true(t0 == NOW - 60);
}

static void test_interval_rejects(void **state)
{
	(void)state;
	double t0, t1;
	char err[256];
	assert_int_equal(query_interval(NULL, NULL, NOW, NAN, NOW, &t0, &t1, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(query_interval("10", "5", NOW, NAN, NOW, &t0, &t1, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(query_interval("nan", NULL, NOW, NAN, NOW, &t0, &t1, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(query_interval("abc", NULL, NOW, NAN, NOW, &t0, &t1, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(query_interval("1e300", NULL, NOW, NAN, NOW, &t0, &t1, err, sizeof(err)),
	                 -ERANGE);
	assert_int_equal(query_interval("-5", NULL, NOW, NAN, NOW, &t0, &t1, err, sizeof(err)),
	                 -ERANGE);
	assert_int_equal(query_interval("1", "1e999", NOW, NAN, NOW, &t0, &t1, err, sizeof(err)),
	                 -EINVAL);
}

static void test_positive(void **state)
{
	(void)state;
	double v;
	char err[256];
	assert_int_equal(query_positive("seconds", NULL, 60, 900, &v, err, sizeof(err)), 0);
	assert_true(v == 60);
	assert_int_equal(query_positive("seconds", "120", 60, 900, &v, err, sizeof(err)), 0);
	assert_true(v == 120);
	assert_int_equal(query_positive("seconds", "0", 60, 900, &v, err, sizeof(err)), -ERANGE);
	assert_int_equal(query_positive("seconds", "901", 60, 900, &v, err, sizeof(err)), -ERANGE);
	assert_int_equal(query_positive("seconds", "ten", 60, 900, &v, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_interval),
	    cmocka_unit_test(test_interval_rejects),
	    cmocka_unit_test(test_positive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
