/* The attribution model's arithmetic with literal jiffies and joules, and its parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "procfs.h"
#include "series.h"
#include "split.h"

/* 40 J over an interval where /proc/stat counted 100 busy and 300 idle jiffies (4 CPUs, 1 s):
 * active 10 J, idle 30 J. A process with 50 of the 100 busy jiffies gets half the active part. */
static void test_split_literal(void **state)
{
	(void)state;
	uint64_t act, idle;
	assert_int_equal(split_active_idle(40000000, 100, 400, &act, &idle), 0);
	assert_int_equal(act, 10000000);
	assert_int_equal(idle, 30000000);
	assert_true(split_scope_share(50, 100) == 0.5);
	assert_true((double)act * split_scope_share(50, 100) == 5000000.0);
	/* Not divisible: active is floored, idle takes the rest, they add up exactly. */
	assert_int_equal(split_active_idle(1000001, 1, 3, &act, &idle), 0);
	assert_int_equal(act, 333333);
	assert_int_equal(idle, 666668);
	assert_int_equal(act + idle, 1000001);
	/* All busy; busy above total (counters read a moment apart) counts as total. */
	assert_int_equal(split_active_idle(7, 5, 4, &act, &idle), 0);
	assert_int_equal(act, 7);
	assert_int_equal(idle, 0);
	/* No jiffy passed: no ratio. */
	assert_int_equal(split_active_idle(7, 0, 0, &act, &idle), -EINVAL);
	/* A huge counter does not overflow: 2^60 uJ * 3 / 4. */
	assert_int_equal(split_active_idle(1ull << 60, 3, 4, &act, &idle), 0);
	assert_int_equal(act, (1ull << 60) / 4 * 3);
}

static void test_scope_share_clamped(void **state)
{
	(void)state;
	assert_true(split_scope_share(0, 100) == 0);
	assert_true(split_scope_share(30, 0) == 0);    /* nothing busy: nothing to give */
	assert_true(split_scope_share(120, 100) == 1); /* never more than the active part */
	assert_true(split_scope_share(-5, 100) == 0);
}

static void test_split_gpu(void **state)
{
	(void)state;
	double out[3];
	double shares[] = {0.5, 0.25};
	/* 100 J, two processes using 50 % and 25 %: 50 J, 25 J, 25 J unattributed. */
	double rest = split_gpu(100e6, shares, 2, out);
	assert_true(out[0] == 50e6 && out[1] == 25e6 && rest == 25e6);
	/* Shares above 1 in total are scaled down: nothing unattributed, nothing invented. */
	double over[] = {0.8, 0.6, 0.6};
	rest = split_gpu(100e6, over, 3, out);
	assert_true(rest == 0);
	assert_true(out[0] == 40e6 && out[1] == 30e6 && out[2] == 30e6);
	/* No process reported: all unattributed. */
	assert_true(split_gpu(100e6, NULL, 0, out) == 100e6);
}

static void test_split_method_of(void **state)
{
	(void)state;
	struct channel ch;
	memset(&ch, 0, sizeof(ch));
	ch.kind = CHANNEL_PACKAGE;
	assert_int_equal(split_method_of(&ch, true), SPLIT_CPU_TIME);
	ch.kind = CHANNEL_DRAM;
	assert_int_equal(split_method_of(&ch, true), SPLIT_CPU_TIME);
	assert_int_equal(split_method_of(&ch, false), SPLIT_NONE);
	ch.kind = CHANNEL_GPU; /* no family, no process_shares: unattributed */
	assert_int_equal(split_method_of(&ch, true), SPLIT_NONE);
	assert_string_equal(split_method_name(SPLIT_CPU_TIME), "cpu-time-share");
}

static void test_parse_stat(void **state)
{
	(void)state;
	struct procfs_stat st;
	const char *text = "4242 (my (odd) cmd) S 17 4242 4242 0 -1 4194304 100 0 0 0 "
	                   "250 30 12 8 20 0 1 0 98765 1000000 200 18446744073709551615 0 0";
	assert_int_equal(procfs_parse_stat(text, &st), 0);
	assert_int_equal(st.pid, 4242);
	assert_string_equal(st.comm, "my (odd) cmd");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 17);
	assert_int_equal(st.utime, 250);
	assert_int_equal(st.stime, 30);
	assert_int_equal(st.cutime, 12);
	assert_int_equal(st.cstime, 8);
	assert_int_equal(st.starttime, 98765);
	assert_int_equal(procfs_total_ticks(&st), 300);
	assert_int_equal(procfs_parse_stat("garbage", &st), -EINVAL);
	assert_int_equal(procfs_parse_stat("12 (x) S 1 2 3", &st), -EINVAL);
	assert_int_equal(procfs_parse_stat("", &st), -EINVAL);
	assert_int_equal(procfs_parse_stat("-3 (x) S 1 1 1 0 -1 0 0 0 0 0 1 1 1 1 20 0 1 0 5", &st),
	                 -EINVAL);
}

/* The line of test_parse_stat's kind with comm and the fields after it given. */
static int parse_with(const char *comm, const char *rest, struct procfs_stat *st)
{
	char text[512];
	snprintf(text, sizeof(text), "77 (%s) %s", comm, rest);
	return procfs_parse_stat(text, st);
}

#define REST "S 1 77 77 0 -1 4194304 0 0 0 0 5 6 7 8 20 0 1 0 321"

/* A command name is the process's own choice (prctl, exec of any file name): it may hold ')',
 * spaces, digits and newlines, but cannot forge the fields after it. */
static void test_parse_stat_hostile_comm(void **state)
{
	(void)state;
	struct procfs_stat st;
	/* A name that looks like the rest of a line with huge times: the last ')' wins. */
	assert_int_equal(
	    parse_with("x) R 1 1 1 0 0 0 0 0 0 0 999999 999999 9 9 20 0 1 0 1", REST, &st), 0);
	assert_int_equal(st.pid, 77);
	assert_int_equal(st.ppid, 1);
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.utime, 5);
	assert_int_equal(st.stime, 6);
	assert_int_equal(st.cutime, 7);
	assert_int_equal(st.cstime, 8);
	assert_int_equal(st.starttime, 321);
	assert_string_equal(st.comm, "x) R 1 1 1 0 0 0 0 0 0 0 999999 999999 9 9 20 0 1 0 1");
	assert_int_equal(parse_with("))", REST, &st), 0);
	assert_string_equal(st.comm, "))");
	assert_int_equal(parse_with("", REST, &st), 0);
	assert_string_equal(st.comm, "");
	assert_int_equal(parse_with("a\nb (", REST, &st), 0);
	assert_string_equal(st.comm, "a\nb (");
	/* Longer than the buffer: cut, the fields still read. */
	char longname[200];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(parse_with(longname, REST, &st), 0);
	assert_int_equal(strlen(st.comm), PROCFS_COMM_MAX - 1);
	assert_int_equal(st.starttime, 321);
	/* A ')' after the fields (nothing the kernel writes) moves the end of the name there: what
	 * follows it is no stat line. */
	assert_int_equal(parse_with("x", REST " (y)", &st), -EINVAL);
}

/* Anything else than the kernel's format is refused, never half read. */
static void test_parse_stat_strict(void **state)
{
	(void)state;
	struct procfs_stat st;
	const char *ok = "77 (x) " REST;
	assert_int_equal(procfs_parse_stat(ok, &st), 0);
	/* Every cut before starttime's first digit is refused; a cut inside it is a valid line
	 * with a smaller starttime ("3", "32"). */
	size_t n = strlen(ok);
	char cut[256];
	for (size_t len = 0; len < n; len++) {
		memcpy(cut, ok, len);
		cut[len] = '\0';
		int rc = procfs_parse_stat(cut, &st);
		if (len >= n - 2)
			assert_int_equal(rc, 0);
		else if (rc != -EINVAL)
			fail_msg("a line cut to %zu bytes parsed: \"%s\"", len, cut);
	}
	/* The line as the kernel ends it, and with more fields after starttime. */
	assert_int_equal(parse_with("x", REST "\n", &st), 0);
	assert_int_equal(parse_with("x", REST " 1000000 200 18446744073709551615", &st), 0);
	assert_int_equal(st.starttime, 321);
	/* Negative where proc(5) allows it (tty_nr, tpgid, priority, nice), not elsewhere. */
	assert_int_equal(parse_with("x", "S 1 77 77 -5 -1 0 0 0 0 0 5 6 7 8 -2 -20 1 0 321", &st),
	                 0);
	assert_int_equal(st.utime, 5);
	assert_int_equal(parse_with("x", "S 1 77 77 0 -1 0 0 0 0 0 -5 6 7 8 20 0 1 0 321", &st),
	                 -EINVAL);
	assert_int_equal(parse_with("x", "S -1 77 77 0 -1 0 0 0 0 0 5 6 7 8 20 0 1 0 321", &st),
	                 -EINVAL);
	/* Overflow: UINT64_MAX reads, one more does not; a ppid above int does not. */
	assert_int_equal(
	    parse_with("x", "S 1 77 77 0 -1 0 0 0 0 0 18446744073709551615 6 7 8 20 0 1 0 321",
	               &st),
	    0);
	assert_true(st.utime == UINT64_MAX);
	assert_int_equal(
	    parse_with("x", "S 1 77 77 0 -1 0 0 0 0 0 18446744073709551616 6 7 8 20 0 1 0 321",
	               &st),
	    -EINVAL);
	assert_int_equal(
	    parse_with("x", "S 2147483648 77 77 0 -1 0 0 0 0 0 5 6 7 8 20 0 1 0 321", &st),
	    -EINVAL);
	assert_int_equal(procfs_parse_stat("2147483648 (x) " REST, &st), -EINVAL);
	/* Separators, signs and stray characters. */
	assert_int_equal(parse_with("x", "S  1 77 77 0 -1 0 0 0 0 0 5 6 7 8 20 0 1 0 321", &st),
	                 -EINVAL);
	assert_int_equal(parse_with("x", "S 1 77 77 0 -1 0 0 0 0 0 +5 6 7 8 20 0 1 0 321", &st),
	                 -EINVAL);
	assert_int_equal(parse_with("x", "S 1 77 77 0 -1 0 0 0 0 0 5x 6 7 8 20 0 1 0 321", &st),
	                 -EINVAL);
	assert_int_equal(parse_with("x", "S 1 77 77 0 - 0 0 0 0 0 5 6 7 8 20 0 1 0 321", &st),
	                 -EINVAL);
	assert_int_equal(parse_with("x", "S 1 77 77 0 -1 0 0 0 0 0 5 6 7 8 20 0 1 0 321x", &st),
	                 -EINVAL);
	assert_int_equal(parse_with("x", "1 1 77 77 0 -1 0 0 0 0 0 5 6 7 8 20 0 1 0 321", &st),
	                 -EINVAL);
	assert_int_equal(procfs_parse_stat("77(x) " REST, &st), -EINVAL);
	assert_int_equal(procfs_parse_stat(" 77 (x) " REST, &st), -EINVAL);
	assert_int_equal(procfs_parse_stat("77 x) " REST, &st), -EINVAL);
	assert_int_equal(procfs_parse_stat("77 (x " REST, &st), -EINVAL);
	assert_int_equal(procfs_parse_stat("77 (x)" REST, &st), -EINVAL);
	assert_int_equal(procfs_parse_stat("0 (x) " REST, &st), -EINVAL);
	/* A failed parse leaves nothing of the line behind. */
	assert_int_equal(procfs_parse_stat("77 (x) S 1 2 3", &st), -EINVAL);
	assert_int_equal(st.pid, 0);
	assert_int_equal(st.ppid, 0);
	assert_string_equal(st.comm, "");
}

static void test_parse_cgroup_usage(void **state)
{
	(void)state;
	uint64_t u;
	assert_int_equal(
	    procfs_parse_cgroup_usage("usage_usec 532767397\nuser_usec 424670510\n", &u), 0);
	assert_int_equal(u, 532767397);
	assert_int_equal(procfs_parse_cgroup_usage("user_usec 1\nusage_usec 7", &u), 0);
	assert_int_equal(u, 7);
	assert_int_equal(procfs_parse_cgroup_usage("usage_usec x\n", &u), -EINVAL);
	assert_int_equal(procfs_parse_cgroup_usage("nr_periods 0\n", &u), -EINVAL);
}

/* A counter that stays at 5 from t=0 to 3, then is 9 at t=4: the change happened between 3
 * and 4, so the value at 3.5 is 7, not an interpolation from 0. */
static void test_series_step_then_change(void **state)
{
	(void)state;
	struct series_store st;
	series_store_init(&st);
	struct series *s = series_get(&st, "pid:1", true);
	assert_non_null(s);
	assert_int_equal(series_update(s, 0, 0, 1, 5), 0);
	assert_int_equal(series_update(s, 1, 5, 2, 5), 0); /* unchanged: no point */
	assert_int_equal(series_update(s, 2, 5, 3, 5), 0);
	assert_int_equal(series_update(s, 3, 5, 4, 9), 0);
	double v;
	assert_int_equal(series_value_at(s, 0.5, &v), 0);
	assert_true(v == 2.5);
	assert_int_equal(series_value_at(s, 2.5, &v), 0);
	assert_true(v == 5);
	assert_int_equal(series_value_at(s, 3.5, &v), 0);
	assert_true(v == 7);
	assert_int_equal(series_value_at(s, 10, &v), 0);
	assert_true(v == 9);
	/* Found again by key; other keys absent. */
	assert_ptr_equal(series_get(&st, "pid:1", false), s);
	assert_null(series_get(&st, "pid:2", false));
	/* Pruning keeps a base before the horizon; values inside it are unchanged. */
	series_prune(&st, 3.2);
	s = series_get(&st, "pid:1", false);
	assert_non_null(s);
	assert_int_equal(series_value_at(s, 3.5, &v), 0);
	assert_true(v == 7);
	/* A series that stopped changing before the horizon is dropped. */
	series_prune(&st, 100);
	assert_null(series_get(&st, "pid:1", false));
	series_store_free(&st);
}

static void test_series_many_keys(void **state)
{
	(void)state;
	struct series_store st;
	series_store_init(&st);
	char key[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "pid:%d", i);
		struct series *s = series_get(&st, key, true);
		assert_non_null(s);
		series_update(s, 0, 0, 1, i + 1);
	}
	for (int i = 0; i < 5000; i += 7) {
		snprintf(key, sizeof(key), "pid:%d", i);
		struct series *s = series_get(&st, key, false);
		double v;
		assert_non_null(s);
		assert_int_equal(series_value_at(s, 1, &v), 0);
		assert_true(v == i + 1);
	}
	series_store_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_literal),
	    cmocka_unit_test(test_scope_share_clamped),
	    cmocka_unit_test(test_split_gpu),
	    cmocka_unit_test(test_split_method_of),
	    cmocka_unit_test(test_parse_stat),
	    cmocka_unit_test(test_parse_stat_hostile_comm),
	    cmocka_unit_test(test_parse_stat_strict),
	    cmocka_unit_test(test_parse_cgroup_usage),
	    cmocka_unit_test(test_series_step_then_change),
	    cmocka_unit_test(test_series_many_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
