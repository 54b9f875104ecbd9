/* GPU channels plug into attribution through a family's process_shares(): a fake family reports
 * two processes at 50 % and 25 % of a GPU; the scan gives them 50 J and 25 J of 100 J, a watch on
 * the second gets its 25 J, and 25 J stay unattributed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "attrib.h"

static int fake_calls;

static int fake_shares(struct channel *ch, struct process_share *out, int max)
{
	(void)ch;
	fake_calls++;
	if (max < 3)
		return -1;
	out[0] = (struct process_share){.pid = 10, .share = 0.5};
	out[1] = (struct process_share){.pid = 20, .share = 0.25};
	out[2] = (struct process_share){.pid = 99, .share = 0.0}; /* not in the table */
	return 3;
}

static const struct source_family fake_gpu = {.name = "fakegpu", .process_shares = fake_shares};

static void test_gpu_shares_reach_processes_and_watches(void **state)
{
	(void)state;
	static struct channel_set set;
	static struct sampler s;
	static struct attrib a;
	memset(&set, 0, sizeof(set));
	memset(&s, 0, sizeof(s));
	memset(&a, 0, sizeof(a));
	set.n = 1;
	strcpy(set.ch[0].id, "nvml:gpu-0");
	set.ch[0].kind = CHANNEL_GPU;
	set.ch[0].family = &fake_gpu;
	s.set = &set;
	a.sampler = &s;
	series_store_init(&a.series);
	a.method[0] = split_method_of(&set.ch[0], true);
	assert_int_equal(a.method[0], SPLIT_GPU);
	a.in_coverage[0] = true;
	a.gpu_pending_uj[0] = 100e6;

	struct attrib_proc procs[2];
	memset(procs, 0, sizeof(procs));
	procs[0].pid = 10;
	procs[1].pid = 20;
	static struct attrib_watch w;
	memset(&w, 0, sizeof(w));
	int members[] = {20, 21};
	w.id = 1;
	w.members = members;
	w.n_members = 2;
	a.watches[0] = &w;
	a.n_watches = 1;

	attrib_split_gpus(&a, procs, 2, 1.0, 2.0);
	assert_int_equal(fake_calls, 1);
	assert_true(procs[0].delta_uj == 50e6);
	assert_true(procs[1].delta_uj == 25e6);
	assert_true(w.uj == 25e6);
	assert_true(a.active_uj[0] == 75e6);
	assert_true(a.unattr_uj[0] == 25e6);
	assert_true(a.gpu_pending_uj[0] == 0);
	/* The channel's series say the same, over the scan interval. */
	assert_true(attrib_series_at(&a, "active:nvml:gpu-0", 2.0) -
	                attrib_series_at(&a, "active:nvml:gpu-0", 1.0) ==
	            75e6);
	assert_true(attrib_series_at(&a, "unattributed:nvml:gpu-0", 1.5) == 12.5e6);
	assert_true(attrib_series_at(&a, "kernel:1", 2.0) == 25e6);
	w.members = NULL;
	series_store_free(&a.series);
}

/* A source that cannot tell processes apart (NVML without nvmlDeviceGetProcessUtilization):
 * -EOPNOTSUPP with a reason. */
static int unsupported_shares(struct channel *ch, struct process_share *out, int max)
{
	(void)out, (void)max;
	fake_calls++;
	snprintf(ch->shares_error, sizeof(ch->shares_error), "no per-process utilisation here");
	return -EOPNOTSUPP;
}

static const struct source_family old_gpu = {.name = "oldgpu",
                                             .process_shares = unsupported_shares};

/* The pending 40 J become unattributed, and so does all later energy, sample by sample: the
 * channel's method turns to "unattributed" and the source is not asked again. */
static void test_unsupported_gpu_becomes_unattributed(void **state)
{
	(void)state;
	static struct channel_set set;
	static struct sampler s;
	static struct attrib a;
	memset(&set, 0, sizeof(set));
	memset(&s, 0, sizeof(s));
	memset(&a, 0, sizeof(a));
	set.n = 1;
	strcpy(set.ch[0].id, "nvml:gpu-0");
	set.ch[0].kind = CHANNEL_GPU;
	set.ch[0].family = &old_gpu;
	s.set = &set;
	a.sampler = &s;
	series_store_init(&a.series);
	a.method[0] = split_method_of(&set.ch[0], true);
	a.in_coverage[0] = true;
	a.gpu_pending_uj[0] = 40e6;
	struct attrib_proc proc = {.pid = 10};
	fake_calls = 0;

	attrib_split_gpus(&a, &proc, 1, 1.0, 2.0);
	assert_int_equal(fake_calls, 1);
	assert_int_equal(a.method[0], SPLIT_NONE);
	assert_string_equal(set.ch[0].shares_error, "no per-process utilisation here");
	assert_true(proc.delta_uj == 0);
	assert_true(a.active_uj[0] == 0);
	assert_true(a.unattr_uj[0] == 40e6);
	assert_true(a.gpu_pending_uj[0] == 0);
	attrib_split_gpus(&a, &proc, 1, 2.0, 3.0); /* not a GPU split any more */
	assert_int_equal(fake_calls, 1);
	series_store_free(&a.series);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gpu_shares_reach_processes_and_watches),
	    cmocka_unit_test(test_unsupported_gpu_becomes_unattributed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
