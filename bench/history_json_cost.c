/*
 * CPU time of the history answer (GET /api/v1/history?seconds=900 at 0.1 s) built two ways over
 * the same samples in the same process: the jansson tree dumped to text (energyd before the
 * streaming writer, tests/helpers/history_fixture.c) and the streaming writer (api_history.c).
 * Also the watts alone, no JSON: history_watts_window for every point and series (one window's
 * scan per point), and history_watts_points for each series (one pass over its samples, what
 * the writer now uses). Both give the same figures. And the part of the writer's work done
 * with the sampler's lock held: the copy of the samples (history_copy_recent). Rounds alternate the
 * order; each figure is the median of the rounds with their range. Both texts are compared in every
 * round.
 *
 * usage: history-json-cost [ROUNDS]   (default 21)
 */
#define _GNU_SOURCE
#include "api.h"
#include "history_fixture.h"
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS_MAX 1000

static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The points of the answer as api_history_write takes them: count points from last back by
 * step, each over a window of min_s. */
struct bench_span {
	size_t last, step, count;
	double min_s;
};

static struct bench_span bench_span(struct daemon *d, double seconds, double points)
{
	const struct history *h = &d->sampler->history;
	struct bench_span sp = {.last = h->count - 1};
	size_t first = sp.last;
	while (first > 0 && history_time(h, first - 1) >= history_time(h, sp.last) - seconds)
		first--;
	size_t n = sp.last - first + 1;
	sp.step = (size_t)ceil((double)n / points);
	sp.step = sp.step < 1 ? 1 : sp.step;
	sp.count = (n + sp.step - 1) / sp.step;
	sp.min_s = (double)sp.step * (double)d->sampler->interval_ns / 1e9;
	return sp;
}

/* Every point's watts of every series, one window's scan per point (history_watts_window);
 * returns a checksum so that the work is not optimised away. */
static double watts_only(struct daemon *d, double seconds, double points)
{
	const struct history *h = &d->sampler->history;
	struct bench_span sp = bench_span(d, seconds, points);
	double sum = 0, w;
	for (int c = -1; c < d->set->n; c++)
		for (size_t k = 0; k < sp.count; k++)
			if (history_watts_window(h, c, sp.last - (sp.count - 1 - k) * sp.step,
			                         sp.min_s, &w, NULL) == 0)
				sum += w;
	return sum;
}

/* The same with history_watts_points: one pass per series. */
static double watts_points_only(struct daemon *d, double seconds, double points)
{
	const struct history *h = &d->sampler->history;
	struct bench_span sp = bench_span(d, seconds, points);
	double sum = 0;
	double *w = malloc(sp.count * sizeof(*w));
	bool *ok = malloc(sp.count * sizeof(*ok));
	for (int c = -1; c < d->set->n && w && ok; c++)
		if (history_watts_points(h, c, sp.last, sp.step, sp.count, sp.min_s, w, ok) == 0)
			for (size_t k = 0; k < sp.count; k++)
				sum += ok[k] ? w[k] : 0;
	free(w);
	free(ok);
	return sum;
}

#define WAYS 4
struct figures {
	/* jansson, jsonw, watts by window, watts in one pass; then the writer's copy alone */
	double ms[WAYS + 1][ROUNDS_MAX];
	size_t bytes;
	int mismatches;
};

static void one_round(struct daemon *d, double seconds, double points, int round,
                      struct figures *fig)
{
	char *text[2] = {NULL, NULL};
	double sums[2] = {0, 0};
	for (int k = 0; k < WAYS; k++) {
		int way = round % 2 ? WAYS - 1 - k : k; /* alternate the order */
		double t0 = cpu_ms();
		if (way == 0) {
			text[0] = history_fixture_jansson(d, seconds, points);
		} else if (way == 1) {
			struct jsonw w;
			api_history_write(d, seconds, points, &w);
			text[1] = jsonw_finish(&w);
		} else {
			sums[way - 2] = way == 2 ? watts_only(d, seconds, points)
			                         : watts_points_only(d, seconds, points);
		}
		fig->ms[way][round] = cpu_ms() - t0;
	}
	/* What api_history_write does with the lock held: the samples copied. */
	struct bench_span sp = bench_span(d, seconds, points);
	struct history copy;
	size_t shift;
	double t0 = cpu_ms();
	int rc = history_copy_recent(&copy, &d->sampler->history,
	                             sp.last - (sp.count - 1) * sp.step, sp.min_s, &shift);
	fig->ms[WAYS][round] = cpu_ms() - t0;
	fig->mismatches += rc != 0;
	if (rc == 0)
		history_free(&copy);
	fig->mismatches +=
	    !text[0] || !text[1] || strcmp(text[0], text[1]) != 0 || sums[0] != sums[1];
	fig->bytes = text[1] ? strlen(text[1]) : 0;
	free(text[0]);
	free(text[1]);
}

static void report(const char *what, double *ms, int rounds)
{
	qsort(ms, (size_t)rounds, sizeof(ms[0]), cmp_double);
	printf("| %s | %.2f | %.2f–%.2f |\n", what, ms[rounds / 2], ms[0], ms[rounds - 1]);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 21;
	if (rounds < 1 || rounds > ROUNDS_MAX) {
		fprintf(stderr, "usage: history-json-cost [ROUNDS 1..%d]\n", ROUNDS_MAX);
		return 2;
	}
	/* 900 s at 0.1 s: 9,000 samples, all of the history asked for
	 */
	struct history_fixture *f = history_fixture_new(9000, 0.1);
	if (!f) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	const double points[] = {5000, 9000}; /* the default max_points, and every sample */
	int bad = 0;
	for (size_t p = 0; p < 2; p++) {
		static struct figures fig;
		memset(&fig, 0, sizeof(fig));
		one_round(&f->d, 900, points[p], 0, &fig); /* warm-up: caches, allocator */
		for (int r = 0; r < rounds; r++)
			one_round(&f->d, 900, points[p], r, &fig);
		printf("\nhistory?seconds=900&max_points=%.0f: %zu bytes, %d rounds, texts and "
		       "watts %s\n\n",
		       points[p], fig.bytes, rounds, fig.mismatches ? "DIFFER" : "identical");
		printf("| way | CPU ms (median) | range |\n| --- | --- | --- |\n");
		report("jansson tree + json_dumps (before)", fig.ms[0], rounds);
		report("streaming writer (jsonw)", fig.ms[1], rounds);
		report("watts alone, by window (history_watts_window)", fig.ms[2], rounds);
		report("watts alone, one pass (history_watts_points)", fig.ms[3], rounds);
		report("writer, with the sampler's lock held: the copy (history_copy_recent)",
		       fig.ms[4], rounds);
		bad += fig.mismatches;
	}
	history_fixture_free(f);
	return bad ? 1 : 0;
}
