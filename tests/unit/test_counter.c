/* Counter wraparound arithmetic and the strict parsers of energy.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include "energy.h"

static void test_delta_no_wrap(void **state)
{
	(void)state;
	uint64_t d;
	assert_int_equal(energy_counter_delta(100, 250, 1000, &d), 0);
	assert_int_equal(d, 150);
	assert_int_equal(energy_counter_delta(7, 7, 1000, &d), 0);
	assert_int_equal(d, 0);
}

static void test_delta_wrap(void **state)
{
	(void)state;
	uint64_t d;
	/* 900 -> max 1000 -> 0 -> 50: 100 to reach max, 1 to wrap to 0, then 50. */
	assert_int_equal(energy_counter_delta(900, 50, 1000, &d), 0);
	assert_int_equal(d, 151);
	assert_int_equal(energy_counter_delta(1000, 0, 1000, &d), 0);
	assert_int_equal(d, 1);
	/* A real RAPL range: 262143328850 uJ. */
	assert_int_equal(energy_counter_delta(262143328000ull, 1000, 262143328850ull, &d), 0);
	assert_int_equal(d, 850 + 1 + 1000);
}

static void test_delta_garbage(void **state)
{
	(void)state;
	uint64_t d = 42;
	assert_int_equal(energy_counter_delta(10, 1001, 1000, &d), -ERANGE);
	assert_int_equal(energy_counter_delta(1001, 10, 1000, &d), -ERANGE);
	/* A 64-bit counter that goes back was reset: no energy. */
	assert_int_equal(energy_counter_delta(10, 5, 0, &d), -ERANGE);
	assert_int_equal(d, 42);
	assert_int_equal(energy_counter_delta(5, UINT64_MAX, 0, &d), 0);
	assert_true(d == UINT64_MAX - 5);
}

static void test_parse_u64(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(energy_parse_u64("123456\n", &v), 0);
	assert_int_equal(v, 123456);
	assert_int_equal(energy_parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(energy_parse_u64("18446744073709551616", &v), -ERANGE);
	assert_int_equal(energy_parse_u64("-1", &v), -EINVAL);
	assert_int_equal(energy_parse_u64("12abc", &v), -EINVAL);
	assert_int_equal(energy_parse_u64("", &v), -EINVAL);
	assert_int_equal(energy_parse_u64("  \n", &v), -EINVAL);
}

static void test_parse_double(void **state)
{
	(void)state;
	double v;
	assert_int_equal(energy_parse_double("1700000000.25", &v), 0);
	assert_true(v == 1700000000.25);
	assert_int_equal(energy_parse_double("1e3", &v), 0);
	assert_true(v == 1000);
	assert_int_equal(energy_parse_double("nan", &v), -EINVAL);
	assert_int_equal(energy_parse_double("inf", &v), -EINVAL);
	assert_int_equal(energy_parse_double("0x10", &v), -EINVAL);
	assert_int_equal(energy_parse_double("1e999", &v), -ERANGE);
	assert_int_equal(energy_parse_double("1.5 2", &v), -EINVAL);
	assert_int_equal(energy_parse_double("", &v), -EINVAL);
}

static void test_parse_time(void **state)
{
	(void)state;
	double v;
	assert_int_equal(energy_parse_time("2026-11-22T10:00:00Z", &v), 0);
	assert_true(v == 1795341600.0);
	assert_int_equal(energy_parse_time("2026-11-22T11:00:00+01:00", &v), 0);
	assert_true(v == 1795341600.0);
	assert_int_equal(energy_parse_time("2026-11-22 10:00:00.5", &v), 0);
	assert_true(v == 1795341600.5);
	assert_int_equal(energy_parse_time("1970-01-01", &v), 0);
	assert_true(v == 0);
	assert_int_equal(energy_parse_time("2024-02-29T00:00:00Z", &v), 0);
	assert_true(v == 1709164800.0);
	assert_int_equal(energy_parse_time("2026-13-01", &v), -EINVAL);
	assert_int_equal(energy_parse_time("2026-11-22T25:00", &v), -EINVAL);
	assert_int_equal(energy_parse_time("2026-11-22Tgarbage", &v), -EINVAL);
	assert_int_equal(energy_parse_time("1795341600", &v), 0);
	assert_true(v == 1795341600.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_delta_no_wrap), cmocka_unit_test(test_delta_wrap),
	    cmocka_unit_test(test_delta_garbage), cmocka_unit_test(test_parse_u64),
	    cmocka_unit_test(test_parse_double),  cmocka_unit_test(test_parse_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
