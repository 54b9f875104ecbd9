/* /metrics pieces: label escaping and UTF-8, cgroup ids, the bounded cgroup series. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics.h"

static char *label(const char *s)
{
	static char out[4096];
	FILE *f = fmemopen(out, sizeof(out), "w");
	metrics_put_label(f, s);
	fclose(f);
	return out;
}

static void test_label_escapes(void **state)
{
	(void)state;
	assert_string_equal(label("plain"), "plain");
	assert_string_equal(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
	/* valid UTF-8 passes: é (2 bytes), € (3), 𝄞 (4) */
	assert_string_equal(label("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9D\x84\x9E"),
	                    "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9D\x84\x9E");
	/* a stray continuation byte, a lone lead byte, an overlong '/', a surrogate, > U+10FFFF */
	assert_string_equal(label("a\x80z"), "a\xEF\xBF\xBDz");
	assert_string_equal(label("a\xC3"), "a\xEF\xBF\xBD");
	assert_string_equal(label("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
	assert_string_equal(label("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	assert_string_equal(label("\xF4\x90\x80\x80"),
	                    "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	/* long values are cut at METRICS_LABEL_MAX bytes of input */
	char big[METRICS_LABEL_MAX + 50];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(strlen(label(big)), METRICS_LABEL_MAX);
}

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define UID   "1f2e3d4c-5b6a-4789-8abc-def012345678"
#define UID_  "1f2e3d4c_5b6a_4789_8abc_def012345678"

static void ids(const char *path, const char *pod, const char *ctr)
{
	char p[METRICS_POD_UID_MAX], c[METRICS_CONTAINER_MAX];
	metrics_cgroup_ids(path, p, c);
	assert_string_equal(p, pod);
	assert_string_equal(c, ctr);
}

static void test_cgroup_ids(void **state)
{
	(void)state;
	ids("/kubepods/burstable/pod" UID "/" HEX64, UID, HEX64);
	ids("/kubepods/pod" UID, UID, "");
	ids("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
	    ".slice/cri-containerd-" HEX64 ".scope",
	    UID, HEX64);
	ids("/kubepods.slice/kubepods-pod" UID_ ".slice", UID, "");
	ids("/system.slice/docker-" HEX64 ".scope", "", HEX64);
	ids("/machine.slice/libpod-" HEX64 ".scope", "", HEX64);
	ids("/kubepods.slice/x/crio-" HEX64 ".scope", "", HEX64);
	/* nothing invented */
	ids("/user.slice/user-1000.slice/session-3.scope", "", "");
	ids("/podcast/" HEX64 "0", "", "");
	ids("/kubepods/pod" UID "x/docker-" HEX64 ".scope", "", HEX64);
	ids("/a/pod1f2e3d4c-5b6a-4789-8abc-def01234567g", "", "");
	ids("/", "", "");
	ids("", "", "");
}

static struct attrib_cgroup cg(const char *path, double uj)
{
	struct attrib_cgroup g = {.uj = uj};
	snprintf(g.path, sizeof(g.path), "%s", path);
	return g;
}

static int cmp(const void *x, const void *y)
{
	return strcmp(((const struct attrib_cgroup *)x)->path,
	              ((const struct attrib_cgroup *)y)->path);
}

static double series_sum(const struct metrics_cgroups *m)
{
	double s = m->other_uj;
	for (int k = 0; k < m->n_top; k++)
		s += m->top_uj[k];
	return s;
}

static void test_cgroups_leaves_and_bound(void **state)
{
	(void)state;
	struct metrics_cgroups m = {0};
	/* A parent includes its children: only leaves count ("/a" and "/" are not leaves;
	 * "/a-b" sorts between "/a" and "/a/c" and is one). */
	struct attrib_cgroup g[3 + METRICS_CGROUPS_TOP + 8];
	size_t n = 0;
	g[n++] = cg("/", 1e9);
	g[n++] = cg("/a", 500);
	g[n++] = cg("/a-b", 7);
	g[n++] = cg("/a/c", 300);
	g[n++] = cg("/a/d", 200);
	for (int i = 0; i < METRICS_CGROUPS_TOP + 4; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/z/%02d", i);
		g[n++] = cg(p, 10 + i);
	}
	qsort(g, n, sizeof(g[0]), cmp);
	assert_int_equal(metrics_cgroups_update(&m, g, n), 0);
	assert_int_equal(m.n_leaves, 3 + METRICS_CGROUPS_TOP + 4);
	assert_int_equal(m.n_top, METRICS_CGROUPS_TOP);
	/* every leaf counted once: the series add up to the leaves' energy */
	double leaves = 7 + 300 + 200;
	for (int i = 0; i < METRICS_CGROUPS_TOP + 4; i++)
		leaves += 10 + i;
	assert_float_equal(series_sum(&m), leaves, 1e-9);
	/* the biggest got the slots: /a/c, /a/d and the 30 biggest /z; "/a-b" (7) and the
	 * smallest /z (10..15) are in other */
	assert_float_equal(m.other_uj, 7 + 10 + 11 + 12 + 13 + 14 + 15, 1e-9);

	/* Energy grows; a slotted cgroup goes away; a new one comes: the slot is taken by the
	 * biggest other, and no series goes down. */
	double other_before = m.other_uj;
	for (size_t i = 0; i < n; i++)
		g[i].uj += 100;
	size_t gone = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(g[i].path, "/a/c") == 0)
			gone = i;
	memmove(&g[gone], &g[gone + 1], (n - gone - 1) * sizeof(g[0]));
	n--;
	g[n++] = cg("/new", 1000);
	qsort(g, n, sizeof(g[0]), cmp);
	assert_int_equal(metrics_cgroups_update(&m, g, n), 0);
	assert_int_equal(m.n_top, METRICS_CGROUPS_TOP);
	assert_true(m.other_uj >= other_before);
	/* /new took the free slot; other gained 100 per leaf it holds */
	assert_float_equal(m.other_uj, other_before + 7 * 100, 1e-9);
	bool has_new = false;
	for (int k = 0; k < m.n_top; k++)
		has_new |= strcmp(m.top[k], "/new") == 0;
	assert_true(has_new);
	/* the same tree again: nothing moves */
	double again = m.other_uj;
	assert_int_equal(metrics_cgroups_update(&m, g, n), 0);
	assert_float_equal(m.other_uj, again, 1e-9);
	metrics_cgroups_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_label_escapes),
	    cmocka_unit_test(test_cgroup_ids),
	    cmocka_unit_test(test_cgroups_leaves_and_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
