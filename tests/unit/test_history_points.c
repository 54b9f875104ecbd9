/*
 * history_watts_points (many points in one pass) against history_watts_window (one sample at a
 * time), the reference: the same figures to the bit and the same missing points, on histories
 * that hold what a sampler meets (counters that move at every sample, every few samples, that
 * stall and catch up or stand still, failed reads alone and in runs longer than a window's
 * scan, a counter wrapping past 2^64, late samples, equal times, a ring that has wrapped), for
 * the host with and without parts. Then history_copy_recent: the copy gives the same figures,
 * also when taken while another thread appends.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "history.h"

#define NCH 5

/* A fixed pseudo-random sequence (xorshift64). */
static uint64_t next_u64(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static double next_unit(uint64_t *x)
{
	return (double)(next_u64(x) >> 11) / (double)(1ULL << 53);
}

/*
 * The samples of a sampler at interval_s, one after another. Channel 0 moves at every sample
 * and starts 4 J below 2^64 (it wraps after a few samples; the history holds it modulo 2^64);
 * 1 moves every third sample or so; 2 stalls now and then (a few samples up to several
 * seconds) and catches up; 3 fails to read now and then, alone or for runs up to 9 s; 4 stands
 * still for long stretches (the rates of these events per second whatever the interval). The times
 * jitter, a sample comes late now and then, and a few share the time of the one before. The host's
 * own counter is the sample's number (the concurrent test reads it back).
 */
struct gen {
	uint64_t x;
	double interval_s, t;
	uint64_t uj[NCH];
	uint64_t n;
	int stall, invalid_run, still;
};

static void gen_init(struct gen *g, uint64_t seed, double interval_s)
{
	memset(g, 0, sizeof(*g));
	g->x = seed;
	g->interval_s = interval_s;
	g->t = 1764000000.0;
	g->uj[0] = UINT64_MAX - 4000000;
}

static void gen_next(struct gen *g, double *t, uint64_t *v, uint64_t *host)
{
	double r = next_unit(&g->x);
	double dt = g->interval_s * (0.97 + 0.06 * next_unit(&g->x));
	if (r < 0.01)
		dt *= 1.8; /* late */
	else if (r < 0.015)
		dt = 0; /* the same time as the sample before */
	g->t += dt;
	*t = g->t;
	uint64_t add = (uint64_t)(1e6 * dt * (10 + 40 * next_unit(&g->x)));
	g->uj[0] += add;
	if (g->uj[0] == HISTORY_INVALID)
		g->uj[0]++;
	if (next_unit(&g->x) < 0.34)
		g->uj[1] += 3 * add / 2 + 1;
	if (g->stall > 0)
		g->stall--;
	else if (next_unit(&g->x) < 0.2 * g->interval_s)
		g->stall = 1 + (int)(next_u64(&g->x) % (uint64_t)(6.0 / g->interval_s + 2));
	else
		g->uj[2] += add + 7 * (uint64_t)g->stall;
	g->uj[3] += add / 3 + 1;
	if (g->still > 0)
		g->still--;
	else if (next_unit(&g->x) < 0.05 * g->interval_s)
		g->still = (int)(next_u64(&g->x) % (uint64_t)(8.0 / g->interval_s + 2));
	else
		g->uj[4] += add / 5 + 1;
	for (int c = 0; c < NCH; c++)
		v[c] = g->uj[c];
	if (g->invalid_run > 0) {
		g->invalid_run--;
		v[3] = HISTORY_INVALID;
	} else if (next_unit(&g->x) < 0.1 * g->interval_s) {
		v[3] = HISTORY_INVALID;
		if (next_unit(&g->x) < 0.3)
			g->invalid_run =
			    (int)(next_u64(&g->x) % (uint64_t)(9.0 / g->interval_s + 2));
	}
	*host = g->n++;
}

static void fill(struct history *h, struct gen *g, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		double t;
		uint64_t v[NCH], host;
		gen_next(g, &t, v, &host);
		history_append(h, t, v, host);
	}
}

/* A ring of capacity samples filled with n from the generator (seed, interval_s), which g
 * continues. */
static void filled(struct history *h, struct gen *g, size_t capacity, size_t n, uint64_t seed,
                   double interval_s)
{
	assert_int_equal(history_init(h, NCH, capacity), 0);
	gen_init(g, seed, interval_s);
	fill(h, g, n);
}

/* Every point of history_watts_points for (series, last, step, count, min_s) is what
 * history_watts_window gives on ref for sample i + shift; returns how many had a figure. */
static size_t assert_points_exact(const struct history *h, const struct history *ref, size_t shift,
                                  int series, size_t last, size_t step, size_t count, double min_s)
{
	double *watts = malloc(count * sizeof(*watts));
	bool *ok = malloc(count * sizeof(*ok));
	assert_non_null(watts);
	assert_non_null(ok);
	assert_int_equal(history_watts_points(h, series, last, step, count, min_s, watts, ok), 0);
	size_t figures = 0;
	for (size_t k = 0; k < count; k++) {
		size_t i = last - (count - 1 - k) * step;
		double want;
		bool want_ok =
		    history_watts_window(ref, series, i + shift, min_s, &want, NULL) == 0;
		if (ok[k] != want_ok || (ok[k] && memcmp(&watts[k], &want, sizeof(want)) != 0))
			fail_msg(
			    "series %d, sample %zu (step %zu, min_s %g): %s %.17g, want %s %.17g",
			    series, i, step, min_s, ok[k] ? "" : "none", ok[k] ? watts[k] : 0,
			    want_ok ? "" : "none", want_ok ? want : 0);
		figures += ok[k];
	}
	free(watts);
	free(ok);
	return figures;
}

/* Every series, several steps and windows (the step's own, 1 s, and none), the newest samples and
 * the oldest. */
static void assert_history_exact(const struct history *h, double interval_s)
{
	const size_t steps[] = {1, 7, 50};
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		size_t step = steps[s], count = (h->count - 1) / step + 1;
		const double windows[] = {(double)step * interval_s, 1.0, 0};
		for (size_t m = 0; m < (step == 1 ? 3 : 2); m++)
			for (int series = HISTORY_HOST; series < NCH; series++) {
				size_t figures = assert_points_exact(h, h, 0, series, h->count - 1,
				                                     step, count, windows[m]);
				/* Not an answer of nulls: most points have a figure. */
				if (!(figures > count / 2))
					fail_msg("series %d, step %zu, min_s %g: %zu of %zu",
					         series, step, windows[m], figures, count);
				if (m > 0)
					continue;
				/* Points that end before the newest sample, and a short answer. */
				assert_points_exact(h, h, 0, series, h->count / 2, step,
				                    h->count / 2 / step + 1, windows[m]);
				assert_points_exact(h, h, 0, series, h->count - 1, step,
				                    count < 5 ? count : 5, windows[m]);
			}
	}
}

static void test_exact_at_each_interval(void **state)
{
	(void)state;
	const double intervals[] = {0.1, 0.01, 0.001};
	const size_t samples[] = {3000, 4000, 6000};
	for (size_t k = 0; k < 3; k++) {
		struct history h;
		struct gen g;
		/* A ring that has wrapped: the oldest samples overwritten. */
		filled(&h, &g, samples[k], samples[k] + samples[k] / 3, 0x9e3779b97f4a7c15ULL + k,
		       intervals[k]);
		int parts[] = {0, 3};
		history_set_host_parts(&h, parts, 2);
		assert_history_exact(&h, intervals[k]);
		history_free(&h);
	}
}

/* The host: its own counter (no parts), and parts out of channel order or twice. */
static void test_host_parts(void **state)
{
	(void)state;
	struct history h;
	struct gen g;
	filled(&h, &g, 4000, 4000, 12345, 0.1);
	size_t count = h.count / 2;
	assert_true(assert_points_exact(&h, &h, 0, HISTORY_HOST, h.count - 1, 2, count, 0.2) >
	            count / 2);
	const int orders[][3] = {{3, 0, 2}, {1, 1, 4}, {4, 2, 0}};
	for (int o = 0; o < 3; o++) {
		history_set_host_parts(&h, orders[o], 3);
		assert_true(assert_points_exact(&h, &h, 0, HISTORY_HOST, h.count - 1, 2, count,
		                                0.2) > count / 2);
	}
	history_free(&h);
}

/* Times that go back somewhere (not the sampler's clock): the points are still right. */
static void test_decreasing_times(void **state)
{
	(void)state;
	struct history h;
	struct gen g;
	filled(&h, &g, 2000, 1000, 777, 0.1);
	g.t -= 5; /* the clock steps back 5 s */
	fill(&h, &g, 1000);
	for (int series = HISTORY_HOST; series < NCH; series++)
		assert_points_exact(&h, &h, 0, series, h.count - 1, 1, h.count, 0.1);
	history_free(&h);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	struct history h;
	struct gen g;
	double w[4];
	bool ok[4];
	filled(&h, &g, 100, 10, 1, 0.1);
	assert_int_equal(history_watts_points(&h, 0, 10, 1, 1, 0.1, w, ok), -EINVAL);
	assert_int_equal(history_watts_points(&h, 0, 9, 4, 4, 0.1, w, ok), -EINVAL);
	assert_int_equal(history_watts_points(&h, 0, 9, 0, 2, 0.1, w, ok), -EINVAL);
	assert_int_equal(history_watts_points(&h, 0, 9, 3, 4, 0.1, w, ok), 0);
	assert_int_equal(history_watts_points(&h, 0, 9, 1, 0, 0.1, w, ok), 0);
	history_free(&h);
}

/* The copy from sample first gives the figures of the original for every sample from first,
 * with the sample before the copy's margin valid, failed, or the history's oldest. */
static void assert_copy_exact(const struct history *src, size_t first, double min_s)
{
	struct history dst;
	size_t shift;
	assert_int_equal(history_copy_recent(&dst, src, first, min_s, &shift), 0);
	assert_true(shift <= first);
	assert_int_equal(dst.count, src->count - shift);
	/* Far fewer samples than the whole history when first is recent. */
	if (first > src->count / 2 && min_s < 1)
		assert_true(shift > src->count / 4);
	size_t step = min_s > 0.15 ? 2 : 1, count = (dst.count - 1 - (first - shift)) / step + 1;
	for (int series = HISTORY_HOST; series < NCH; series++)
		assert_points_exact(&dst, src, shift, series, dst.count - 1, step, count, min_s);
	history_free(&dst);
}

static void test_copy_recent(void **state)
{
	(void)state;
	struct history h;
	struct gen g;
	filled(&h, &g, 5000, 6500, 4242, 0.1);
	int parts[] = {0, 3};
	history_set_host_parts(&h, parts, 2);
	const size_t firsts[] = {0, 1, 30, 2500, 4000, 4999};
	for (size_t k = 0; k < sizeof(firsts) / sizeof(firsts[0]); k++) {
		assert_copy_exact(&h, firsts[k], 0.1);
		assert_copy_exact(&h, firsts[k], 0.2);
	}
	/* Firsts just after failed reads of channel 3 (the sample before the copy's margin may
	 * have failed too), among the newest samples. */
	size_t tried = 0;
	for (size_t i = h.count - 1500; i < h.count && tried < 8; i++)
		if (history_value(&h, i, 3) == HISTORY_INVALID) {
			for (size_t f = i; f < h.count && f < i + 50; f += 12)
				assert_copy_exact(&h, f, 0.1);
			tried++;
			i += 100;
		}
	assert_true(tried > 3);
	history_free(&h);
}

/*
 * A window that reaches the copy's first sample: the counter moves every 0.5 s (four samples,
 * no bound: neither the usual cadence of the newest updates, every sample, nor a standstill),
 * then at every sample from 143 on. The window of sample 150 over 3.5 s finds no bound 3.15 s
 * back and starts at the oldest sample its scan keeps (7.5 s back), because older samples are
 * held; in a copy that began there it would have none (no update yet). The copy keeps one
 * sample more, and the figure.
 */
static void test_copy_margin(void **state)
{
	(void)state;
	struct history h;
	assert_int_equal(history_init(&h, 1, 256), 0);
	uint64_t uj = 1;
	for (int k = 0; k < 200; k++) {
		if (k >= 143)
			uj += 1250000; /* 10 W over 0.125 s */
		else if (k % 4 == 0)
			uj += 5000000;
		history_append(&h, 1000 + 0.125 * k, &uj, uj);
	}
	double want, got;
	assert_int_equal(history_watts_window(&h, 0, 150, 3.5, &want, NULL), 0);
	struct history copy;
	size_t shift;
	assert_int_equal(history_copy_recent(&copy, &h, 150, 3.5, &shift), 0);
	assert_int_equal(history_watts_window(&copy, 0, 150 - shift, 3.5, &got, NULL), 0);
	assert_memory_equal(&got, &want, sizeof(got));
	assert_points_exact(&copy, &h, shift, 0, copy.count - 1, 1, copy.count - (150 - shift),
	                    3.5);
	history_free(&copy);
	history_free(&h);
}

/*
 * Copies taken under a lock while another thread appends under it (the sampler and a history
 * request): each copy is one moment of the history (every sample is what the generator wrote
 * for its number, held in the host's counter, and the numbers follow each other), and its
 * figures are those of a history replayed up to the same sample.
 */
struct appender {
	pthread_mutex_t lock;
	struct history h;
	struct gen g;
	bool stop;
	size_t appended;
};

static void *append_loop(void *arg)
{
	struct appender *a = arg;
	for (;;) {
		double t;
		uint64_t v[NCH], host;
		pthread_mutex_lock(&a->lock);
		if (a->stop) {
			pthread_mutex_unlock(&a->lock);
			return NULL;
		}
		gen_next(&a->g, &t, v, &host);
		history_append(&a->h, t, v, host);
		a->appended++;
		pthread_mutex_unlock(&a->lock);
		/* About a sampler's pace at 0.1 ms: the replays below stay short. */
		nanosleep(&(struct timespec){0, 100000}, NULL);
	}
}

#define CONC_CAPACITY 1500
#define CONC_SEED     2718281828ULL

static void test_copy_under_concurrent_appends(void **state)
{
	(void)state;
	struct appender a = {.stop = false};
	pthread_mutex_init(&a.lock, NULL);
	assert_int_equal(history_init(&a.h, NCH, CONC_CAPACITY), 0);
	gen_init(&a.g, CONC_SEED, 0.01);
	fill(&a.h, &a.g, 600);
	a.appended = 600;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, append_loop, &a), 0);
	size_t copies = 0, wrapped = 0;
	uint64_t last_newest = 0;
	while ((copies < 30 || wrapped < 5) && copies < 1000) {
		struct history copy;
		size_t shift;
		pthread_mutex_lock(&a.lock);
		size_t first = a.h.count > 400 ? a.h.count - 400 : 0;
		int rc = history_copy_recent(&copy, &a.h, first, 0.02, &shift);
		size_t appended = a.appended;
		pthread_mutex_unlock(&a.lock);
		assert_int_equal(rc, 0);
		/* The newest sample is the appended-th; the copy holds consecutive numbers. */
		uint64_t newest = history_value(&copy, copy.count - 1, HISTORY_HOST);
		assert_int_equal(newest, appended - 1);
		assert_true(newest >= last_newest);
		last_newest = newest;
		/* The same samples replayed, into a ring of the same size. */
		struct history ref;
		struct gen g;
		assert_int_equal(history_init(&ref, NCH, CONC_CAPACITY), 0);
		gen_init(&g, CONC_SEED, 0.01);
		fill(&ref, &g, appended);
		wrapped += appended > CONC_CAPACITY;
		size_t ref_shift = ref.count - copy.count;
		for (size_t i = 0; i < copy.count; i++) {
			assert_int_equal(history_value(&copy, i, HISTORY_HOST),
			                 newest - copy.count + 1 + i);
			assert_true(history_time(&copy, i) == history_time(&ref, i + ref_shift));
			for (int c = 0; c < NCH; c++)
				assert_int_equal(history_value(&copy, i, c),
				                 history_value(&ref, i + ref_shift, c));
		}
		size_t count = copy.count - (first - shift);
		for (int series = HISTORY_HOST; series < NCH; series++)
			assert_points_exact(&copy, &ref, ref_shift, series, copy.count - 1, 1,
			                    count, 0.02);
		history_free(&ref);
		history_free(&copy);
		copies++;
	}
	pthread_mutex_lock(&a.lock);
	a.stop = true;
	pthread_mutex_unlock(&a.lock);
	pthread_join(th, NULL);
	/* The appender ran meanwhile, past the ring's size. */
	assert_true(wrapped > 0);
	history_free(&a.h);
	pthread_mutex_destroy(&a.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exact_at_each_interval),
	    cmocka_unit_test(test_host_parts),
	    cmocka_unit_test(test_decreasing_times),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_copy_recent),
	    cmocka_unit_test(test_copy_margin),
	    cmocka_unit_test(test_copy_under_concurrent_appends),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
