/* text_utf8 / text_json: what reaches JSON is valid UTF-8 (docs/security.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "text.h"

static void check(const char *in, const char *want)
{
	char out[64];
	assert_string_equal(text_utf8(out, sizeof(out), in), want);
}

static void test_valid_text_is_kept(void **state)
{
	(void)state;
	check("python3", "python3");
	check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x8b",
	      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x8b");
	check("", "");
}

static void test_invalid_bytes_become_replacement_characters(void **state)
{
	(void)state;
	check("\xff\xfehidden", "\xef\xbf\xbd\xef\xbf\xbdhidden");
	check("a\x80z", "a\xef\xbf\xbdz");             /* a lone continuation byte */
	check("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"); /* overlong '/' */
	check("\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* overlong, 3 bytes */
	check("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* a surrogate */
	check("\xf4\x90\x80\x80",
	      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* > U+10FFFF */
	check("\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd");             /* cut short at the end */
}

static void test_output_is_cut_on_whole_sequences(void **state)
{
	(void)state;
	char out[6];
	/* "ab" + U+20AC (3 bytes) fits in 6 with the NUL; one more does not. */
	assert_string_equal(text_utf8(out, sizeof(out), "ab\xe2\x82\xac\xe2\x82\xac"),
	                    "ab\xe2\x82\xac");
	assert_string_equal(text_utf8(out, 4, "\xff\xff"), "\xef\xbf\xbd");
}

static void test_json_string_of_any_bytes(void **state)
{
	(void)state;
	json_t *j = text_json("scope '\xff\xfe' is not KIND:VALUE");
	assert_non_null(j);
	assert_string_equal(json_string_value(j),
	                    "scope '\xef\xbf\xbd\xef\xbf\xbd' is not KIND:VALUE");
	json_decref(j);
	j = text_json(NULL);
	assert_true(json_is_null(j));
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_text_is_kept),
	    cmocka_unit_test(test_invalid_bytes_become_replacement_characters),
	    cmocka_unit_test(test_output_is_cut_on_whole_sequences),
	    cmocka_unit_test(test_json_string_of_any_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
