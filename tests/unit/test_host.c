/* The host-total rule of DESIGN.md §2. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include "host.h"

static struct channel mk(enum channel_kind kind, bool measured, bool host_meter)
{
	struct channel c;
	memset(&c, 0, sizeof(c));
	c.kind = kind;
	c.measured = measured;
	c.host_meter = host_meter;
	return c;
}

static void test_laptop_psys_alone(void **state)
{
	(void)state;
	struct channel ch[] = {mk(CHANNEL_PACKAGE, true, false), mk(CHANNEL_CORE, true, false),
	                       mk(CHANNEL_UNCORE, true, false), mk(CHANNEL_PSYS, true, false)};
	struct host_coverage cov;
	assert_int_equal(host_select(ch, 4, &cov), 1);
	assert_int_equal(cov.idx[0], 3);
	assert_true(cov.measured);
}

static void test_server_packages_and_dram(void **state)
{
	(void)state;
	struct channel ch[] = {mk(CHANNEL_PACKAGE, true, false), mk(CHANNEL_DRAM, true, false),
	                       mk(CHANNEL_CORE, true, false),    mk(CHANNEL_PACKAGE, true, false),
	                       mk(CHANNEL_DRAM, true, false),    mk(CHANNEL_GPU, true, false)};
	struct host_coverage cov;
	assert_int_equal(host_select(ch, 6, &cov), 5);
	int expect[] = {0, 1, 3, 4, 5};
	for (int i = 0; i < 5; i++)
		assert_int_equal(cov.idx[i], expect[i]);
	assert_true(cov.measured);
}

static void test_wall_meter_wins(void **state)
{
	(void)state;
	struct channel ch[] = {mk(CHANNEL_PSYS, true, false), mk(CHANNEL_WALL, true, false),
	                       mk(CHANNEL_WALL, true, true)};
	struct host_coverage cov;
	assert_int_equal(host_select(ch, 3, &cov), 1);
	assert_int_equal(cov.idx[0], 2);
}

static void test_model_only_when_nothing_measures(void **state)
{
	(void)state;
	struct channel a[] = {mk(CHANNEL_MODEL, false, false), mk(CHANNEL_GPU, true, false)};
	struct host_coverage cov;
	assert_int_equal(host_select(a, 2, &cov), 2);
	assert_false(cov.measured); /* part of it is an estimate */
	struct channel b[] = {mk(CHANNEL_MODEL, false, false), mk(CHANNEL_PACKAGE, true, false)};
	assert_int_equal(host_select(b, 2, &cov), 1);
	assert_int_equal(cov.idx[0], 1);
	assert_true(cov.measured);
	assert_int_equal(host_select(b, 0, &cov), 0);
	assert_false(cov.measured);
}

/* The rest of the machine's model is a channel of its own beside the total (DESIGN.md §2): never
 * in the coverage, whatever the total is made of, and it does not make the total estimated. */
static void test_rest_model_is_never_in_the_total(void **state)
{
	(void)state;
	struct channel ch[] = {mk(CHANNEL_PACKAGE, true, false), mk(CHANNEL_DRAM, true, false),
	                       mk(CHANNEL_REST, false, false)};
	struct host_coverage cov;
	assert_int_equal(host_select(ch, 3, &cov), 2);
	assert_int_equal(cov.idx[0], 0);
	assert_int_equal(cov.idx[1], 1);
	assert_true(cov.measured);
	assert_string_equal(cov.rule, "CPU packages + dram");
	struct channel model[] = {mk(CHANNEL_REST, false, false), mk(CHANNEL_MODEL, false, false)};
	assert_int_equal(host_select(model, 2, &cov), 1);
	assert_int_equal(cov.idx[0], 1);
	assert_string_equal(cov.rule, "CPU model");
	struct channel psys[] = {mk(CHANNEL_PACKAGE, true, false), mk(CHANNEL_REST, false, false),
	                         mk(CHANNEL_PSYS, true, false)};
	assert_int_equal(host_select(psys, 3, &cov), 1);
	assert_int_equal(cov.idx[0], 2);
	assert_true(cov.measured);
}

/* What a whole-machine wall meter holds besides the rest of the machine: the measured packages,
 * dram and GPUs; never core/uncore (inside their package), psys, the meter itself or a model. */
static void test_measured_parts_inside_a_wall_meter(void **state)
{
	(void)state;
	struct channel ch[] = {mk(CHANNEL_PACKAGE, true, false), mk(CHANNEL_CORE, true, false),
	                       mk(CHANNEL_DRAM, true, false),    mk(CHANNEL_WALL, true, true),
	                       mk(CHANNEL_MODEL, false, false),  mk(CHANNEL_GPU, true, false),
	                       mk(CHANNEL_PSYS, true, false),    mk(CHANNEL_PACKAGE, false, false)};
	int idx[4];
	assert_int_equal(host_measured_parts(ch, 8, idx, 4), 3);
	assert_int_equal(idx[0], 0);
	assert_int_equal(idx[1], 2);
	assert_int_equal(idx[2], 5);
	assert_int_equal(host_measured_parts(ch, 8, idx, 2), -ENOSPC);
	assert_int_equal(host_measured_parts(ch + 3, 2, idx, 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_laptop_psys_alone),
	    cmocka_unit_test(test_server_packages_and_dram),
	    cmocka_unit_test(test_wall_meter_wins),
	    cmocka_unit_test(test_model_only_when_nothing_measures),
	    cmocka_unit_test(test_measured_parts_inside_a_wall_meter),
	    cmocka_unit_test(test_rest_model_is_never_in_the_total),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
