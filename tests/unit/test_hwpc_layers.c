/* The hardware-counter model's frequency layers (src/energyd/attribution/hwpc_layers.c): which
 * layer a window goes to, the bound on their number, per-layer fits and the fallback. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>
#include "hwpc_layers.h"
#include "hwpc_test_util.h"

static const double coef_lo[HWPC_EVENTS] = {1e-9, 0.5e-9, 8e-8};
static const double coef_hi[HWPC_EVENTS] = {2.5e-9, 2e-9, 8e-8};

static void test_one_layer_without_frequency(void **state)
{
	(void)state;
	struct hwpc_layers L;
	assert_int_equal(hwpc_layers_init(&L, 8, 0, false), 0);
	assert_int_equal(L.n, 1);
	assert_int_equal(L.layer[0].hi_mhz, 0); /* "all" */
	assert_int_equal(hwpc_layers_select(&L, NAN), 0);
	assert_int_equal(hwpc_layers_select(&L, 1650), 0);
	assert_int_equal(hwpc_layers_select(&L, 3250), 0);
	assert_int_equal(L.n, 1);
	hwpc_layers_free(&L);
}

static void test_select_creates_sorted_steps(void **state)
{
	(void)state;
	struct hwpc_layers L;
	assert_int_equal(hwpc_layers_init(&L, 8, 0, true), 0);
	assert_int_equal(L.n, 0);
	assert_int_equal(hwpc_layers_select(&L, 1650), 0);
	assert_int_equal(L.layer[0].lo_mhz, 1600);
	assert_int_equal(L.layer[0].hi_mhz, 1700);
	assert_int_equal(hwpc_layers_select(&L, 1699.9), 0);
	assert_int_equal(hwpc_layers_select(&L, 1600.0), 0);
	assert_int_equal(hwpc_layers_select(&L, 3250), 1);
	assert_int_equal(hwpc_layers_select(&L, 1000), 0); /* inserted first: sorted */
	assert_int_equal(L.layer[1].lo_mhz, 1600);
	assert_int_equal(L.layer[2].lo_mhz, 3200);
	assert_int_equal(hwpc_layers_select(&L, 1700), 2); /* a new step above 1600-1700 */
	assert_int_equal(L.layer[2].lo_mhz, 1700);
	assert_int_equal(L.n, 4);
	/* No frequency, or not one: no layer, nothing created. */
	assert_int_equal(hwpc_layers_select(&L, NAN), -1);
	assert_int_equal(hwpc_layers_select(&L, 0), -1);
	assert_int_equal(hwpc_layers_select(&L, -5), -1);
	assert_int_equal(hwpc_layers_select(&L, 1e12), -1);
	assert_int_equal(L.n, 4);
	hwpc_layers_free(&L);
}

/* At most HWPC_LAYERS_MAX layers: a new step then goes to the nearest, whose range widens. */
static void test_bound_on_layers(void **state)
{
	(void)state;
	struct hwpc_layers L;
	assert_int_equal(hwpc_layers_init(&L, 8, 0, true), 0);
	for (int i = 0; i < HWPC_LAYERS_MAX; i++)
		assert_int_equal(hwpc_layers_select(&L, 1000 + 200 * i + 50), i);
	assert_int_equal(L.n, HWPC_LAYERS_MAX);
	/* 1140 lies between 1000-1100 and 1200-1300, nearer the first (40 against 60). */
	assert_int_equal(hwpc_layers_select(&L, 1140), 0);
	assert_int_equal(L.layer[0].lo_mhz, 1000);
	assert_int_equal(L.layer[0].hi_mhz, 1200);
	assert_int_equal(hwpc_layers_select(&L, 1180), 0); /* now inside it */
	/* 1270 is inside the second; far above the last, the last widens up to the step. */
	assert_int_equal(hwpc_layers_select(&L, 1270), 1);
	int last = HWPC_LAYERS_MAX - 1;
	assert_int_equal(hwpc_layers_select(&L, 50000), last);
	assert_int_equal(L.layer[last].hi_mhz, 50100);
	assert_int_equal(L.n, HWPC_LAYERS_MAX);
	for (int i = 1; i < L.n; i++) /* the ranges never overlap */
		assert_true(L.layer[i - 1].hi_mhz <= L.layer[i].lo_mhz);
	hwpc_layers_free(&L);
}

/* Two frequencies with their own coefficients, interleaved: each layer learns its own. */
static void test_each_layer_fits_its_frequency(void **state)
{
	(void)state;
	struct hwpc_layers L;
	char why[256], note[256];
	assert_int_equal(hwpc_layers_init(&L, 10, 0, true), 0);
	assert_int_equal(hwpc_layers_predictor(&L, 1650, why, sizeof(why), note, sizeof(note)), -1);
	assert_non_null(strstr(why, "no layer for 1650 MHz"));
	for (int i = 0; i < 20; i++) {
		struct hwpc_sample s = window(i, i % 2 ? coef_hi : coef_lo, i % 2 ? 12.0 : 6.0);
		hwpc_layers_add(&L, i % 2 ? 3250 : 1650, &s);
	}
	assert_int_equal(L.n, 2);
	for (int j = 0; j < 2; j++) {
		const struct hwpc_model *m = &L.layer[j].model;
		const double *c = j ? coef_hi : coef_lo;
		assert_true(hwpc_model_usable(m, why, sizeof(why)));
		assert_true(fabs(m->intercept - (j ? 12.0 : 6.0)) < 1e-3);
		for (int k = 0; k < HWPC_EVENTS; k++)
			assert_true(fabs(m->coef[k] - c[k]) < 1e-6 * c[k]);
	}
	assert_int_equal(hwpc_layers_predictor(&L, 1620, why, sizeof(why), note, sizeof(note)), 0);
	assert_string_equal(note, "");
	assert_int_equal(hwpc_layers_predictor(&L, 3299, why, sizeof(why), note, sizeof(note)), 1);
	/* A frequency without its own layer: the nearest usable one, and the note says so. */
	assert_int_equal(hwpc_layers_predictor(&L, 2900, why, sizeof(why), note, sizeof(note)), 1);
	assert_non_null(strstr(note, "3200-3300 MHz"));
	/* A layer still learning: the nearest usable one splits, and says why. */
	struct hwpc_sample s = window(3, coef_lo, 6.0);
	hwpc_layers_add(&L, 2050, &s);
	assert_int_equal(L.n, 3);
	assert_int_equal(hwpc_layers_predictor(&L, 2050, why, sizeof(why), note, sizeof(note)), 0);
	assert_non_null(strstr(note, "the 2000-2100 MHz layer is not usable"));
	assert_non_null(strstr(note, "learning"));
	assert_non_null(strstr(note, "1600-1700 MHz"));
	/* No frequency: the usable layer with the most windows (both have 10: the first). */
	assert_int_equal(hwpc_layers_predictor(&L, NAN, why, sizeof(why), note, sizeof(note)), 0);
	assert_non_null(strstr(note, "unknown"));
	/* A window without a frequency is not learned. */
	long before = L.layer[0].model.samples + L.layer[1].model.samples;
	hwpc_layers_add(&L, NAN, &s);
	assert_int_equal(L.layer[0].model.samples + L.layer[1].model.samples, before);
	hwpc_layers_free(&L);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_layer_without_frequency),
	    cmocka_unit_test(test_select_creates_sorted_steps),
	    cmocka_unit_test(test_bound_on_layers),
	    cmocka_unit_test(test_each_layer_fits_its_frequency),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
