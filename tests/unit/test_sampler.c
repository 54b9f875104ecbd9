/* The sampler's per-channel update: wraps, failed reads, garbage, power integration. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include "energy_util.h"
#include "sampler.h"
#include "snapshot.h"

#include <math.h>
#include <time.h>

#define MS 1000000ull

static struct channel counter(uint64_t max_uj)
{
	struct channel c;
	memset(&c, 0, sizeof(c));
	c.reading = READING_ENERGY_UJ;
	c.max_uj = max_uj;
	return c;
}

static void test_counter_double_wrap_over_ticks(void **state)
{
	(void)state;
	struct channel c = counter(999999); /* wraps to 0 after 999999 uJ: every 1 J */
	uint64_t t = 0;
	assert_true(sampler_channel_update(&c, 0, 900000, t, 100 * MS));
	assert_int_equal(c.energy_uj, 0);
	assert_true(sampler_channel_update(&c, 0, 300000, t += 100 * MS, 100 * MS)); /* wrap 1 */
	assert_int_equal(c.energy_uj, 400000);
	assert_true(sampler_channel_update(&c, 0, 950000, t += 100 * MS, 100 * MS));
	assert_true(sampler_channel_update(&c, 0, 50000, t += 100 * MS, 100 * MS)); /* wrap 2 */
	assert_int_equal(c.energy_uj, 400000 + 650000 + 100000);
}

static void test_failed_read_holds_counter(void **state)
{
	(void)state;
	struct channel c = counter(999999);
	uint64_t t = 0;
	assert_true(sampler_channel_update(&c, 0, 100, t, 100 * MS));
	assert_true(sampler_channel_update(&c, 0, 600, t += 100 * MS, 100 * MS));
	strcpy(c.read_error, "reading energy_uj: Input/output error");
	assert_false(sampler_channel_update(&c, -EIO, 0, t += 100 * MS, 100 * MS));
	assert_int_equal(c.energy_uj, 500);
	assert_int_equal(c.status, CHANNEL_DEGRADED);
	assert_string_equal(c.error, "reading energy_uj: Input/output error");
	/* Out of range: garbage, not a wrap. */
	c.read_error[0] = '\0';
	assert_false(sampler_channel_update(&c, 0, 5000000, t += 100 * MS, 100 * MS));
	assert_int_equal(c.energy_uj, 500);
	/* Recovers, counting the energy since the last good read. */
	assert_true(sampler_channel_update(&c, 0, 900, t += 100 * MS, 100 * MS));
	assert_int_equal(c.energy_uj, 800);
	assert_int_equal(c.status, CHANNEL_OK);
	assert_string_equal(c.error, "");
}

static void test_backoff_after_repeated_failures(void **state)
{
	(void)state;
	struct channel c = counter(999999);
	uint64_t t = 1000 * MS;
	for (int i = 0; i < 3; i++)
		sampler_channel_update(&c, -EIO, 0, t, 100 * MS);
	assert_int_equal(c.failures, 3);
	assert_true(c.retry_at_ns == t + 200 * MS);
	for (int i = 0; i < 30; i++)
		sampler_channel_update(&c, -EIO, 0, t, 100 * MS);
	assert_true(c.retry_at_ns == t + 30000 * MS); /* capped at 30 s */
}

static void test_implausible_jump_resyncs(void **state)
{
	(void)state;
	struct channel c = counter(262143328850ull);
	uint64_t t = 0;
	assert_true(sampler_channel_update(&c, 0, 1000000000, t, 100 * MS));
	/* 100 kJ in 0.1 s is 1 MW: a reset, not energy. */
	assert_false(sampler_channel_update(&c, 0, 101000000000ull, t += 100 * MS, 100 * MS));
	assert_int_equal(c.energy_uj, 0);
	assert_true(sampler_channel_update(&c, 0, 101002000000ull, t += 100 * MS, 100 * MS));
	assert_int_equal(c.energy_uj, 2000000);
}

static void test_power_trapezoid(void **state)
{
	(void)state;
	struct channel c;
	memset(&c, 0, sizeof(c));
	c.reading = READING_POWER_UW;
	uint64_t t = 0;
	assert_true(sampler_channel_update(&c, 0, 10000000, t, 100 * MS));             /* 10 W */
	assert_true(sampler_channel_update(&c, 0, 30000000, t += 500 * MS, 100 * MS)); /* 30 W */
	assert_int_equal(c.energy_uj, 10000000); /* (10+30)/2 W * 0.5 s = 10 J */
	/* 1 uW for 1 ms is 1 nJ: kept as a remainder until it adds up to a microjoule. */
	memset(&c, 0, sizeof(c));
	c.reading = READING_POWER_UW;
	t = 0;
	sampler_channel_update(&c, 0, 1, t, MS);
	for (int i = 0; i < 999; i++)
		sampler_channel_update(&c, 0, 1, t += MS, MS);
	assert_int_equal(c.energy_uj, 0);
	sampler_channel_update(&c, 0, 1, t += MS, MS);
	assert_int_equal(c.energy_uj, 1);
}

static void test_power_gap_not_integrated(void **state)
{
	(void)state;
	struct channel c;
	memset(&c, 0, sizeof(c));
	c.reading = READING_POWER_UW;
	uint64_t t = 0;
	assert_true(sampler_channel_update(&c, 0, 100000000, t, 100 * MS)); /* 100 W */
	assert_true(sampler_channel_update(&c, 0, 100000000, t += 100 * MS, 100 * MS));
	assert_int_equal(c.energy_uj, 10000000);
	/* The meter is silent for 5 s: nothing is counted for the gap, and the first good read
	 * after it only restarts the integration. */
	assert_false(sampler_channel_update(&c, -ETIMEDOUT, 0, t += 100 * MS, 100 * MS));
	assert_false(sampler_channel_update(&c, -ETIMEDOUT, 0, t += 4900 * MS, 100 * MS));
	assert_true(sampler_channel_update(&c, 0, 100000000, t += 100 * MS, 100 * MS));
	assert_int_equal(c.energy_uj, 10000000);
	assert_true(sampler_channel_update(&c, 0, 100000000, t += 100 * MS, 100 * MS));
	assert_int_equal(c.energy_uj, 20000000);
}

/* A counter the test sets. */
static uint64_t fake_uj;
static int fake_read(struct channel *ch, uint64_t *value)
{
	(void)ch;
	*value = fake_uj;
	return 0;
}

static const struct source_family fake_family = {.name = "fake", .read = fake_read};

/* One CPU package channel read through fake_read. */
static void fake_set(struct channel_set *set)
{
	memset(set, 0, sizeof(*set));
	struct channel *ch = channel_set_add(set, "rapl:package-0");
	ch->kind = CHANNEL_PACKAGE;
	ch->package = 0;
	ch->reading = READING_ENERGY_UJ;
	ch->family = &fake_family;
}

/* Stopping the thread leaves both mutexes as they were: the sampler's mutexes check their owner
 * (PTHREAD_MUTEX_ERRORCHECK) and an unlock of one not held aborts, as sampler_stop once did
 * with the tick lock it never took. After the stop, ticks and the lock still work. */
static void test_start_stop_keeps_locks_balanced(void **state)
{
	(void)state;
	struct channel_set set;
	fake_set(&set);
	struct sampler s;
	assert_int_equal(sampler_init(&s, &set, 0.01, 1.0), 0);
	assert_int_equal(sampler_start(&s), 0);
	sampler_lock(&s);
	uint64_t seen = s.ticks;
	assert_true(sampler_wait_tick(&s, seen) > seen);
	sampler_unlock(&s);
	sampler_stop(&s);
	sampler_stop(&s); /* twice: a no-op */
	uint64_t ticks = s.ticks;
	sampler_tick(&s); /* takes and releases the tick lock: it must be free */
	assert_int_equal(s.ticks, ticks + 1);
	sampler_free(&s);
}

/* A waiter counts itself while it waits for a tick (ticks broadcast only then), and not after;
 * the tick wakes it (its wait's own time-out is 1 s: a tick that did not broadcast to a waiter
 * would be seen only then). */
static void test_waiters_counted_while_waiting(void **state)
{
	(void)state;
	struct channel_set set;
	fake_set(&set);
	struct sampler s;
	assert_int_equal(sampler_init(&s, &set, 0.01, 1.0), 0);
	assert_int_equal(s.waiters, 0);
	assert_int_equal(sampler_start(&s), 0);
	sampler_lock(&s);
	for (int i = 0; i < 3; i++) {
		uint64_t seen = s.ticks, t0 = energy_monotonic_ns();
		assert_true(sampler_wait_tick(&s, seen) > seen);
		double waited = (double)(energy_monotonic_ns() - t0) / 1e9;
		if (waited > 0.9)
			fail_msg("a 0.01 s tick woke its waiter after %.2f s", waited);
		assert_int_equal(s.waiters, 0); /* counted only while waiting */
	}
	sampler_unlock(&s);
	sampler_stop(&s);
	sampler_free(&s);
}

/* A waiter for the fifth tick from now is woken by that tick only (one wake-up, not five); a
 * second waiter for every tick does not wake it either. */
static void test_wait_ticks_woken_by_its_tick_only(void **state)
{
	(void)state;
	struct channel_set set;
	fake_set(&set);
	struct sampler s;
	assert_int_equal(sampler_init(&s, &set, 0.01, 1.0), 0);
	assert_int_equal(sampler_start(&s), 0);
	sampler_lock(&s);
	uint64_t seen = s.ticks, woken = s.wakeups;
	uint64_t got = sampler_wait_ticks(&s, seen, 5);
	assert_true(got >= seen + 5);
	assert_true(s.wakeups - woken <= 1); /* 0 when the ticks were already there */
	assert_int_equal(s.waiters, 0);
	sampler_unlock(&s);
	sampler_stop(&s);
	sampler_free(&s);
}

static void *kick_later(void *arg)
{
	struct timespec pause = {0, 100000000};
	nanosleep(&pause, NULL);
	sampler_kick(arg);
	return NULL;
}

/* Without a sampler thread no tick comes: a kick ends a sampler_wait_ticks early, with the tick
 * count as it is. */
static void test_kick_ends_wait(void **state)
{
	(void)state;
	struct channel_set set;
	fake_set(&set);
	struct sampler s;
	assert_int_equal(sampler_init(&s, &set, 0.01, 1.0), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, kick_later, &s), 0);
	sampler_lock(&s);
	uint64_t t0 = energy_monotonic_ns();
	assert_int_equal(sampler_wait_ticks(&s, 0, 1000), 0); /* no tick was taken */
	double waited = (double)(energy_monotonic_ns() - t0) / 1e9;
	sampler_unlock(&s);
	pthread_join(th, NULL);
	if (waited < 0.05 || waited > 5)
		fail_msg("a kick 0.1 s on ended the wait after %.2f s", waited);
	/* A tick counted by hand wakes its waiter: one wake-up recorded. */
	sampler_lock(&s);
	sampler_count_tick_locked(&s);
	assert_int_equal(s.ticks, 1);
	assert_int_equal(s.wakeups, 0); /* nobody waited */
	sampler_unlock(&s);
	sampler_free(&s);
}

/* Two snapshots one read apart while the fake counter gained 1 J: over 0.5 s that is 2 W, for the
 * channel and for the host total it alone covers. */
static void test_snapshot_interval(void **state)
{
	(void)state;
	struct channel_set set;
	fake_set(&set);
	struct sampler s;
	assert_int_equal(sampler_init(&s, &set, 0.1, 10.0), 0);
	struct snapshot a, b;
	snapshot_take(&s, &a); /* the first read only sets the counter's base */
	snapshot_take(&s, &b);
	assert_true(b.t >= a.t);
	struct snapshot_interval iv;
	snapshot_interval(&s, &a, &b, 0.5, &iv);
	assert_int_equal(iv.n, 1);
	assert_string_equal(iv.ch[0].id, "rapl:package-0");
	assert_true(iv.ch[0].joules == 0.0); /* a was the first read: no energy before it */
	fake_uj += 1000000; /* 1 J, over at least 20 ms: a plausible 50 W at most */
	struct timespec pause = {0, 20000000};
	nanosleep(&pause, NULL);
	snapshot_take(&s, &a);
	snapshot_interval(&s, &b, &a, 0.5, &iv);
	assert_true(iv.ch[0].joules == 1.0 && iv.ch[0].watts == 2.0 && iv.ch[0].measured);
	assert_true(iv.host_joules == 1.0 && iv.host_watts == 2.0 && iv.host_measured);
	assert_string_equal(iv.coverage, "rapl:package-0");
	snapshot_interval(&s, &b, &a, 0, &iv);
	assert_true(isnan(iv.ch[0].watts) && isnan(iv.host_watts));
	sampler_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counter_double_wrap_over_ticks),
	    cmocka_unit_test(test_failed_read_holds_counter),
	    cmocka_unit_test(test_backoff_after_repeated_failures),
	    cmocka_unit_test(test_implausible_jump_resyncs),
	    cmocka_unit_test(test_power_trapezoid),
	    cmocka_unit_test(test_power_gap_not_integrated),
	    cmocka_unit_test(test_start_stop_keeps_locks_balanced),
	    cmocka_unit_test(test_waiters_counted_while_waiting),
	    cmocka_unit_test(test_wait_ticks_woken_by_its_tick_only),
	    cmocka_unit_test(test_kick_ends_wait),
	    cmocka_unit_test(test_snapshot_interval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
