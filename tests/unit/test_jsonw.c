/* The streaming JSON writer (jsonw.h): the same bytes as jansson's dump for reals, integers,
 * strings and nesting; the buffer's growth and its bound; the history answer equal to the one
 * built as a jansson tree. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "api.h"
#include "history_fixture.h"
#include "jsonw.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What api_reply writes for a lone value. */
static char *jansson_text(json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(16));
	json_decref(v);
	return s;
}

/* got (freed here) is [value] as jansson writes it. */
static void assert_one_as_jansson(char *got, json_t *value)
{
	json_t *a = json_array();
	json_array_append_new(a, value);
	char *want = jansson_text(a);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static void assert_real_as_jansson(double v)
{
	char out[JSONW_REAL_MAX];
	int n = jsonw_format_real(out, v);
	char *want = jansson_text(json_real(v));
	assert_non_null(want);
	if (strcmp(out, want) != 0)
		fail_msg("%.17g: jsonw wrote %s, jansson %s", v, out, want);
	assert_int_equal(n, (int)strlen(want));
	free(want);
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void test_reals_at_extremes(void **state)
{
	(void)state;
	const double v[] = {0.0,
	                    -0.0,
	                    1.0,
	                    -1.0,
	                    0.5,
	                    0.1,
	                    1e-4,
	                    9.99999999999999e-5,
	                    1e-5,
	                    0.00012345678901234567,
	                    1e15,
	                    1e16,
	                    9999999999999998.0,
	                    99999999999999990.0,
	                    9.999999999999999e15,
	                    9.9999999999999995e15,
	                    123456789012345678.0,
	                    1764000000.123456,
	                    1764000123.0,
	                    2.5,
	                    1e21,
	                    1e22,
	                    1e100,
	                    -1e-100,
	                    1e308,
	                    DBL_MAX,
	                    -DBL_MAX,
	                    DBL_MIN,
	                    5e-324,
	                    2.2250738585072009e-308,
	                    0.30000000000000004,
	                    1.0000000000000002,
	                    0.9999999999999999,
	                    33.33333333333333,
	                    12.345678901234565,
	                    4503599627370495.5,
	                    9007199254740993.0};
	for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
		assert_real_as_jansson(v[k]);
	for (int e = -324; e <= 308; e++) {
		char s[16];
		snprintf(s, sizeof(s), "1e%d", e);
		double p = strtod(s, NULL);
		assert_real_as_jansson(p);
		assert_real_as_jansson(nextafter(p, 0));
		assert_real_as_jansson(nextafter(p, INFINITY));
		if (isfinite(-5 * p))
			assert_real_as_jansson(-5 * p);
	}
}

/* Random doubles of every magnitude, and the figures the API writes most (watts, times). */
static void test_reals_random(void **state)
{
	(void)state;
	uint64_t x = 0x9E3779B97F4A7C15ULL;
	for (int k = 0; k < 200000; k++) {
		uint64_t bits = xorshift(&x);
		double v;
		memcpy(&v, &bits, sizeof(v));
		if (isfinite(v))
			assert_real_as_jansson(v);
		double unit = (double)(xorshift(&x) >> 11) / (double)(1ULL << 53);
		assert_real_as_jansson(unit * 300.0);
		assert_real_as_jansson(1764000000.0 + floor(unit * 1e12) / 1e6);
		/* Exact ties at the 17th digit (x.5 between 1e15 and 2^52): half to even. */
		assert_real_as_jansson(floor(1e15 + unit * 3.5e15) + 0.5);
		assert_real_as_jansson(floor(unit * 1e15) + 0.5);
	}
}

static void test_non_finite_is_null(void **state)
{
	(void)state;
	struct jsonw w;
	jsonw_init(&w, 0, 1024);
	jsonw_array_begin(&w);
	jsonw_real(&w, NAN);
	jsonw_real(&w, INFINITY);
	jsonw_real(&w, -INFINITY);
	jsonw_real(&w, 2.0);
	jsonw_array_end(&w);
	char *s = jsonw_finish(&w);
	assert_string_equal(s, "[null,null,null,2.0]");
	free(s);
}

static void test_integers(void **state)
{
	(void)state;
	const int64_t v[] = {0, 1, -1, 9, 10, -10, 1764000000, INT64_MAX, INT64_MIN};
	for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
		struct jsonw w;
		jsonw_init(&w, 0, 64);
		jsonw_array_begin(&w);
		jsonw_int(&w, v[k]);
		jsonw_array_end(&w);
		assert_one_as_jansson(jsonw_finish(&w), json_integer(v[k]));
	}
}

static char *one_string(const char *s)
{
	struct jsonw w;
	jsonw_init(&w, 1, 256);
	jsonw_array_begin(&w);
	jsonw_string(&w, s);
	jsonw_array_end(&w);
	return jsonw_finish(&w);
}

static void test_string_escapes(void **state)
{
	(void)state;
	const char *same[] = {"plain",
	                      "",
	                      "quote \" backslash \\ slash /",
	                      "\b\f\n\r\t",
	                      "\x01\x1f\x7f",
	                      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	                      "rapl:package-0"};
	for (size_t k = 0; k < sizeof(same) / sizeof(same[0]); k++) {
		assert_one_as_jansson(one_string(same[k]), json_string(same[k]));
	}
	char *s = one_string("\x01");
	assert_string_equal(s, "[\"\\u0001\"]");
	free(s);
	/* Not UTF-8 (jansson refuses these): U+FFFD per bad byte, never a broken document. */
	const char *bad[][2] = {{"a\xff"
	                         "b",
	                         "[\"a\xef\xbf\xbd"
	                         "b\"]"},
	                        {"\xc0\xaf", "[\"\xef\xbf\xbd\xef\xbf\xbd\"]"},
	                        {"\xed\xa0\x80", "[\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"]"},
	                        {"\xe2\x82", "[\"\xef\xbf\xbd\xef\xbf\xbd\"]"}};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		char *got = one_string(bad[k][0]);
		assert_string_equal(got, bad[k][1]);
		json_error_t err;
		json_t *parsed = json_loads(got, 0, &err);
		assert_non_null(parsed);
		json_decref(parsed);
		free(got);
	}
	s = one_string(NULL);
	assert_string_equal(s, "[null]");
	free(s);
}

static void test_nesting(void **state)
{
	(void)state;
	struct jsonw w;
	jsonw_init(&w, 0, 4096);
	jsonw_object_begin(&w);
	jsonw_key(&w, "a");
	jsonw_array_begin(&w);
	jsonw_array_begin(&w);
	jsonw_array_end(&w);
	jsonw_object_begin(&w);
	jsonw_object_end(&w);
	jsonw_int(&w, 1);
	jsonw_null(&w);
	jsonw_bool(&w, true);
	jsonw_bool(&w, false);
	jsonw_array_end(&w);
	jsonw_key(&w, "b\n");
	jsonw_object_begin(&w);
	jsonw_key(&w, "c");
	jsonw_real(&w, 0.25);
	jsonw_key(&w, "d");
	jsonw_string(&w, "e");
	jsonw_object_end(&w);
	jsonw_object_end(&w);
	char *got = jsonw_finish(&w);
	char *want = jansson_text(json_pack("{s:[[], {}, i, n, b, b], s:{s:f, s:s}}", "a", 1, 1, 0,
	                                    "b\n", "c", 0.25, "d", "e"));
	assert_string_equal(got, want);
	free(got);
	free(want);

	/* Misuse fails the writer instead of writing a broken document. */
	jsonw_init(&w, 0, 4096);
	jsonw_object_begin(&w);
	jsonw_key(&w, "open");
	assert_null(jsonw_finish(&w));
	jsonw_init(&w, 0, 4096);
	jsonw_array_end(&w);
	assert_true(w.failed);
	assert_null(jsonw_finish(&w));
	jsonw_init(&w, 0, 4096);
	jsonw_key(&w, "no object");
	assert_true(w.failed);
	jsonw_free(&w);
	jsonw_init(&w, 0, 1 << 20);
	for (int k = 0; k <= JSONW_DEPTH_MAX; k++)
		jsonw_array_begin(&w);
	assert_true(w.failed);
	jsonw_free(&w);
	jsonw_init(&w, 0, 4096);
	assert_null(jsonw_finish(&w)); /* nothing written */
}

/* An array of k ones is 2k + 1 bytes and its NUL: from a 1-byte start the buffer grows to
 * that, and one byte less of bound fails it. */
static void test_growth_and_bound(void **state)
{
	(void)state;
	for (size_t k = 1; k < 3000; k += 331) {
		size_t need = 2 * k + 2;
		for (int tight = 0; tight < 2; tight++) {
			struct jsonw w;
			jsonw_init(&w, 1, need - (size_t)tight);
			jsonw_array_begin(&w);
			for (size_t j = 0; j < k; j++)
				jsonw_int(&w, 1);
			jsonw_array_end(&w);
			assert_true(w.cap <= need);
			char *s = jsonw_finish(&w);
			if (tight) {
				assert_null(s);
				continue;
			}
			assert_non_null(s);
			assert_int_equal(strlen(s), 2 * k + 1);
			assert_true(s[0] == '[' && s[2 * k] == ']' && s[2 * k - 1] == '1');
			free(s);
		}
	}
	/* A failed writer writes nothing more and holds no more memory than its bound. */
	struct jsonw w;
	jsonw_init(&w, 0, 100);
	jsonw_array_begin(&w);
	for (int j = 0; j < 1000; j++)
		jsonw_real(&w, 1.5);
	assert_true(w.failed);
	assert_true(w.len < 100 && w.cap <= 100);
	jsonw_free(&w);
}

/* The history answer: the same text as the jansson tree for the same samples, here 9,000
 * samples at 0.1 s with failed reads in one channel. */
static void test_history_same_as_jansson(void **state)
{
	(void)state;
	struct history_fixture *f = history_fixture_new(9000, 0.1);
	assert_non_null(f);
	const double asks[][2] = {{900, 5000}, {900, 9000}, {900, 100000}, {60, 5000},
	                          {10, 7},     {900, 1},    {0.05, 5000},  {1e9, 333}};
	for (size_t k = 0; k < sizeof(asks) / sizeof(asks[0]); k++) {
		struct jsonw w;
		api_history_write(&f->d, asks[k][0], asks[k][1], &w);
		char *got = jsonw_finish(&w);
		char *want = history_fixture_jansson(&f->d, asks[k][0], asks[k][1]);
		assert_non_null(got);
		assert_non_null(want);
		assert_string_equal(got, want);
		free(want);
		if (k == 1) {
			/* Not two empty answers: every sample of 900 s, with the failed reads. */
			json_error_t err;
			json_t *o = json_loads(got, 0, &err);
			assert_int_equal(json_array_size(json_object_get(o, "t")), 9000);
			json_t *core = json_object_get(
			    json_object_get(json_object_get(o, "channels"), "rapl:core-0"),
			    "watts");
			size_t nulls = 0, i;
			json_t *v;
			json_array_foreach(core, i, v) nulls += json_is_null(v);
			assert_true(nulls >= 9);
			json_decref(o);
		}
		free(got);
	}
	history_fixture_free(f);
	/* No samples yet. */
	f = history_fixture_new(0, 0.1);
	assert_non_null(f);
	struct jsonw w;
	api_history_write(&f->d, 60, 5000, &w);
	char *got = jsonw_finish(&w), *want = history_fixture_jansson(&f->d, 60, 5000);
	assert_string_equal(got, want);
	free(got);
	free(want);
	history_fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reals_at_extremes),
	    cmocka_unit_test(test_reals_random),
	    cmocka_unit_test(test_non_finite_is_null),
	    cmocka_unit_test(test_integers),
	    cmocka_unit_test(test_string_escapes),
	    cmocka_unit_test(test_nesting),
	    cmocka_unit_test(test_growth_and_bound),
	    cmocka_unit_test(test_history_same_as_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
