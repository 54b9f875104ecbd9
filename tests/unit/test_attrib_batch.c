/* The attribution thread in batches (attrib.c): it is woken by the tick that ends a batch, not
 * by those between, reads /proc/stat once per batch and splits every sample of the batch by the
 * busy share since the last batch, active + idle being each sample's energy exactly; while a
 * watch is alive it follows every tick. A real thread over a fake proc root and a history
 * filled by hand (ticks are counted by hand, as the sampler's thread ends one). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "attrib.h"
#include "attrib_int.h"
#include "energy_util.h"

static char root[64];

static void write_stat(uint64_t busy, uint64_t idle)
{
	char path[96], text[160];
	snprintf(path, sizeof(path), "%s/stat", root);
	int n = snprintf(text, sizeof(text), "cpu  %llu 0 0 %llu 0 0 0 0 0 0\nprocesses 7\n",
	                 (unsigned long long)busy, (unsigned long long)idle);
	/* In place, as the kernel's file is read by pread on a descriptor kept open. */
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, text, (size_t)n, 0), n);
	assert_int_equal(ftruncate(fd, n), 0);
	close(fd);
}

/* A tick as the sampler's thread ends one: count it and wake whoever waits for it. */
static void fake_tick(struct sampler *s)
{
	sampler_lock(s);
	sampler_count_tick_locked(s);
	sampler_unlock(s);
}

/* Whether the thread handled the sample at t by now. */
static bool handled_now(struct attrib *a, double t)
{
	attrib_lock(a);
	bool done = a->last_t >= t;
	attrib_unlock(a);
	return done;
}

static void append(struct sampler *s, double t, uint64_t uj)
{
	sampler_lock(s);
	history_append(&s->history, t, &uj, uj);
	sampler_unlock(s);
}

/* Wait (at most 20 s: the machine may be loaded) until the thread handled the sample at t. */
static bool handled(struct attrib *a, double t)
{
	for (int i = 0; i < 2000; i++) {
		if (handled_now(a, t))
			return true;
		usleep(10000);
	}
	return false;
}

static void set_up(struct channel_set *set, struct sampler *s, struct attrib *a, double batch_s,
                   double scan_s)
{
	snprintf(root, sizeof(root), "/tmp/energy-attrib-batch.XXXXXX");
	assert_non_null(mkdtemp(root));
	write_stat(1000, 3000);
	memset(set, 0, sizeof(*set));
	set->n = 1;
	strcpy(set->ch[0].id, "rapl:package-0");
	set->ch[0].kind = CHANNEL_PACKAGE;
	set->ch[0].measured = true;
	assert_int_equal(sampler_init(s, set, 0.1, 60), 0);
	assert_int_equal(s->coverage.n, 1);
	struct attrib_config cfg = {.proc_root = root,
	                            .cgroup_root = "",
	                            .scan_interval_s = scan_s,
	                            .batch_s = batch_s,
	                            .history_s = 60};
	char err[128];
	assert_int_equal(attrib_open(a, &cfg, err, sizeof(err)), 0);
	assert_null(attrib_off_reason(a));
	assert_int_equal(attrib_start(a, s), 0);
}

static void tear_down(struct sampler *s, struct attrib *a)
{
	attrib_free(a);
	sampler_free(s);
	char path[96];
	snprintf(path, sizeof(path), "%s/stat", root);
	unlink(path);
	rmdir(root);
}

static void test_batch_splits_every_sample_exactly(void **state)
{
	(void)state;
	static struct channel_set set;
	static struct sampler s;
	static struct attrib a;
	set_up(&set, &s, &a, 0.2, 1.0);
	assert_true(attrib_batch_s(&a) == 0.2);
	assert_int_equal(a.batch_ticks, 2); /* of 0.1 s */
	/* The base sample, at the first tick. */
	append(&s, 1000.0, 0);
	fake_tick(&s);
	assert_true(handled(&a, 1000.0));
	/* 100 busy of 400 jiffies since that batch; three samples come in one batch. */
	write_stat(1100, 3300);
	sampler_lock(&s);
	uint64_t c[3] = {1000001, 3000004, 3000011};
	for (int k = 0; k < 3; k++)
		history_append(&s.history, 1000.1 + 0.1 * k, &c[k], c[k]);
	uint64_t woken = s.wakeups;
	sampler_unlock(&s);
	/* The tick inside the batch wakes nobody: the samples wait for the batch's last tick. */
	fake_tick(&s);
	usleep(300000);
	assert_false(handled_now(&a, 1000.1));
	assert_true(s.wakeups == woken);
	fake_tick(&s);
	assert_true(handled(&a, 1000.3));
	assert_true(s.wakeups == woken + 1);
	attrib_lock(&a);
	/* Each sample by the batch's ratio, floored: 250000 + 500000 + 1. */
	assert_true(a.active_uj[0] == 750001);
	assert_true(a.active_uj[0] + a.idle_uj[0] == 3000011);
	/* The series keep a point per sample. */
	assert_true(attrib_series_at(&a, "active:rapl:package-0", 1000.1) == 250000);
	assert_true(attrib_series_at(&a, "idle:rapl:package-0", 1000.1) == 750001);
	assert_true(attrib_series_at(&a, "active:rapl:package-0", 1000.2) == 750000);
	struct attrib_status st;
	attrib_status_locked(&a, &st);
	assert_true(st.active_uj + st.idle_uj == 3000011);
	attrib_unlock(&a);
	tear_down(&s, &a);
}

static void write_file(const char *rel, const char *text)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void remove_file(const char *rel)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	unlink(path);
}

/* A process 4242 (a kernel) in the fake proc root, for a watch. */
static void add_kernel_proc(void)
{
	char dir[96];
	snprintf(dir, sizeof(dir), "%s/4242", root);
	assert_int_equal(mkdir(dir, 0755), 0);
	write_file("4242/stat",
	           "4242 (kernel) S 1 4242 4242 0 -1 0 0 0 0 0 50 5 0 0 20 0 1 0 777\n");
	write_file("4242/status", "Name:\tkernel\nUid:\t0\t0\t0\t0\n");
}

static void remove_kernel_proc(void)
{
	char dir[96];
	snprintf(dir, sizeof(dir), "%s/4242", root);
	remove_file("4242/stat");
	remove_file("4242/status");
	rmdir(dir);
}

/* While a watch is alive the thread follows the ticks (kernel: scopes keep the sample
 * resolution): samples wait for their tick. Once no watch is left, batches again. */
static void test_watch_follows_ticks(void **state)
{
	(void)state;
	static struct channel_set set;
	static struct sampler s;
	static struct attrib a;
	set_up(&set, &s, &a, 0.2, 1.0);
	append(&s, 1000.0, 0);
	fake_tick(&s);
	assert_true(handled(&a, 1000.0));
	add_kernel_proc();
	int id = 0;
	/* The new watch ends the batch's wait at once (the thread was waiting for two ticks). */
	assert_int_equal(attrib_watch_add(&a, 4242, NULL, "k", 0, &id), 0);
	usleep(200000);
	/* Without a tick the sample waits; one tick is enough. */
	append(&s, 1000.1, 1000);
	usleep(300000);
	assert_false(handled_now(&a, 1000.1));
	fake_tick(&s);
	assert_true(handled(&a, 1000.1));
	/* The watch gone: the tick being waited for, then batches of two ticks again. */
	assert_int_equal(attrib_watch_remove(&a, id, 0), 0);
	fake_tick(&s);
	usleep(200000);
	append(&s, 1000.2, 2000);
	fake_tick(&s);
	usleep(300000);
	assert_false(handled_now(&a, 1000.2));
	fake_tick(&s);
	assert_true(handled(&a, 1000.2));
	remove_kernel_proc();
	tear_down(&s, &a);
}

static double half(void *ctx, const struct attrib_watch *w, double busy_s, int c)
{
	(void)ctx, (void)w, (void)busy_s, (void)c;
	return 0.5;
}

/* A split up to an instant between two samples (hwpc-model: when the counters were read) gives
 * the watches the active energy up to that instant, interpolated, and carries the rest to the
 * next split: nothing lost, nothing counted twice. */
static void test_split_until_instant_carries_rest(void **state)
{
	(void)state;
	static struct channel_set set;
	static struct sampler s;
	static struct attrib a;
	set_up(&set, &s, &a, 0.2, 1.0);
	attrib_stop(&a); /* the state below is set by hand */
	add_kernel_proc();
	int id = 0;
	assert_int_equal(attrib_watch_add(&a, 4242, NULL, "k", 0, &id), 0);
	attrib_lock(&a);
	a.watches[0]->last_t = 1000.0;
	/* Active energy 0 at 1000.0, 1000 uJ at 1000.125, 3000 uJ at 1000.25, none split yet (times
	 * exact in binary: the interpolation is exact). */
	attrib_series_set(&a, "active:rapl:package-0", 0, 1000.0, 0, 1000.125, 1000);
	attrib_series_set(&a, "active:rapl:package-0", 0, 1000.125, 1000, 1000.25, 3000);
	a.active_uj[0] = 3000;
	a.work.chan_t[0] = a.last_t = 1000.25;
	a.split_t = 1000.0;
	a.work.pending_chan_uj[0] = a.work.pending_active_uj = 3000;
	a.work.have_sys = true;
	a.work.busy_at_split = 0;
	a.work.sys_busy = 10;
	/* Up to 1000.1875: 2000 uJ, half of it the watch's; its series gets a point there. */
	attrib_split_watch_energy(&a, half, NULL, false, 1000.1875);
	assert_true(a.watches[0]->uj == 1000);
	assert_true(a.work.pending_chan_uj[0] == 1000 && a.work.pending_active_uj == 1000);
	assert_true(a.split_t == 1000.1875);
	assert_true(attrib_series_at(&a, "kernel:1", 1000.1875) == 1000);
	/* The rest at the next split, up to the newest sample. */
	a.work.sys_busy = 20;
	attrib_split_watch_energy(&a, half, NULL, false, a.last_t);
	assert_true(a.watches[0]->uj == 1500);
	assert_true(a.work.pending_chan_uj[0] == 0 && a.work.pending_active_uj == 0);
	assert_true(a.split_t == 1000.25);
	/* An instant already split gives nothing again. */
	a.work.sys_busy = 30;
	attrib_split_watch_energy(&a, half, NULL, false, 1000.125);
	assert_true(a.watches[0]->uj == 1500 && a.split_t == 1000.25);
	attrib_unlock(&a);
	remove_kernel_proc();
	tear_down(&s, &a);
}

/* The batch period stays between the sample interval and the scan interval; stopping does not
 * wait for the end of a long batch. */
static void test_batch_bounds_and_prompt_stop(void **state)
{
	(void)state;
	static struct channel_set set;
	static struct sampler s;
	static struct attrib a;
	set_up(&set, &s, &a, 0.01, 1.0);
	assert_true(attrib_batch_s(&a) == 0.1);
	tear_down(&s, &a);
	set_up(&set, &s, &a, 8.0, 5.0);
	assert_true(attrib_batch_s(&a) == 5.0);
	usleep(50000);
	uint64_t t0 = energy_monotonic_ns();
	attrib_stop(&a);
	double took = (double)(energy_monotonic_ns() - t0) / 1e9;
	if (took > 2.5)
		fail_msg("attrib_stop took %.2f s with a 5 s batch", took);
	tear_down(&s, &a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batch_splits_every_sample_exactly),
	    cmocka_unit_test(test_batch_bounds_and_prompt_stop),
	    cmocka_unit_test(test_watch_follows_ticks),
	    cmocka_unit_test(test_split_until_instant_carries_rest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
