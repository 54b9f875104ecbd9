/* The history ring: interpolation of counters between samples, failed reads, wrap of the ring. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include "history.h"

#define INV HISTORY_INVALID

static void test_value_at_interpolates(void **state)
{
	(void)state;
	struct history h;
	assert_int_equal(history_init(&h, 1, 16), 0);
	uint64_t v;
	v = 0, history_append(&h, 100.0, &v, 0);
	v = 1000000, history_append(&h, 101.0, &v, 2000000);
	v = 3000000, history_append(&h, 102.0, &v, 4000000);
	double uj, res;
	assert_int_equal(history_value_at(&h, 0, 101.0, &uj, &res), 0);
	assert_true(uj == 1000000 && res == 0);
	assert_int_equal(history_value_at(&h, 0, 101.25, &uj, &res), 0);
	assert_true(uj == 1500000 && res == 1.0);
	assert_int_equal(history_value_at(&h, HISTORY_HOST, 100.5, &uj, &res), 0);
	assert_true(uj == 1000000);
	assert_int_equal(history_value_at(&h, 0, 99.0, &uj, &res), -ERANGE);
	assert_int_equal(history_value_at(&h, 0, 102.5, &uj, &res), -ERANGE);
	history_free(&h);
}

static void test_energy_between(void **state)
{
	(void)state;
	struct history h;
	assert_int_equal(history_init(&h, 2, 16), 0);
	/* channel 0 at 10 W, channel 1 at 2 W, host = sum, samples every 0.5 s */
	for (int i = 0; i <= 10; i++) {
		uint64_t v[2] = {(uint64_t)i * 5000000, (uint64_t)i * 1000000};
		history_append(&h, 1000.0 + i * 0.5, v, v[0] + v[1]);
	}
	double j[2], host, from, to, res;
	assert_int_equal(history_energy_between(&h, 1001.25, 1003.0, j, &host, &from, &to, &res),
	                 0);
	assert_true(fabs(j[0] - 17.5) < 1e-9);
	assert_true(fabs(j[1] - 3.5) < 1e-9);
	assert_true(fabs(host - 21.0) < 1e-9);
	assert_true(from == 1001.25 && to == 1003.0);
	assert_true(res == 0.5);
	/* Clamped to what is held. */
	assert_int_equal(history_energy_between(&h, 990, 2000, j, &host, &from, &to, &res), 0);
	assert_true(from == 1000.0 && to == 1005.0);
	assert_true(fabs(j[0] - 50.0) < 1e-9);
	assert_int_equal(history_energy_between(&h, 1003, 1001, j, &host, &from, &to, &res),
	                 -EINVAL);
	assert_int_equal(history_energy_between(&h, NAN, 1001, j, &host, &from, &to, &res),
	                 -EINVAL);
	history_free(&h);
}

static void test_invalid_samples_are_skipped(void **state)
{
	(void)state;
	struct history h;
	assert_int_equal(history_init(&h, 1, 16), 0);
	uint64_t v;
	v = 0, history_append(&h, 0.0, &v, 0);
	v = INV, history_append(&h, 1.0, &v, INV);
	v = INV, history_append(&h, 2.0, &v, INV);
	v = 3000000, history_append(&h, 3.0, &v, 3000000);
	double uj, res, j;
	/* Between the valid samples at 0 and 3 s. */
	assert_int_equal(history_value_at(&h, 0, 1.5, &uj, &res), 0);
	assert_true(uj == 1500000 && res == 3.0);
	/* The host series holds the same values: joules across the gap are interpolated. */
	assert_int_equal(history_host_joules_between(&h, 1.5, 3.0, &j), 0);
	assert_true(j == 1.5);
	assert_int_equal(history_host_joules_between(&h, 0.0, 3.5, &j), -ERANGE);
	history_free(&h);
}

static void test_ring_wraps(void **state)
{
	(void)state;
	struct history h;
	assert_int_equal(history_init(&h, 1, 4), 0);
	for (int i = 0; i < 10; i++) {
		uint64_t v = (uint64_t)i * 100;
		history_append(&h, i, &v, v);
	}
	assert_int_equal(h.count, 4);
	assert_true(history_time(&h, 0) == 6.0);
	assert_true(history_value(&h, 3, 0) == 900);
	double j;
	assert_int_equal(history_host_joules_between(&h, 7.0, 9.0, &j), 0);
	assert_true(fabs(j - 200e-6) < 1e-15);
	assert_int_equal(history_host_joules_between(&h, 5.0, 9.0, &j), -ERANGE); /* overwritten */
	history_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_value_at_interpolates),
	    cmocka_unit_test(test_energy_between),
	    cmocka_unit_test(test_invalid_samples_are_skipped),
	    cmocka_unit_test(test_ring_wraps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
