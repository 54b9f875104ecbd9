/* A filled history and the history answer as a jansson tree (history_fixture.h). */
#include "history_fixture.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* A fixed sequence (xorshift64): the same history on every run. */
static double noise(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (double)(*x >> 11) / (double)(1ULL << 53);
}

struct history_fixture *history_fixture_new(size_t n, double interval_s)
{
	struct history_fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	const char *ids[] = {"rapl:package-0", "rapl:core-0", "rapl:uncore-0", "rapl:dram-0"};
	const double base_w[] = {30.0, 20.0, 2.0, 5.0};
	for (int c = 0; c < 4; c++) {
		snprintf(f->set.ch[c].id, sizeof(f->set.ch[c].id), "%s", ids[c]);
		f->set.ch[c].measured = true;
	}
	f->set.n = 4;
	struct sampler *s = &f->sampler;
	s->set = &f->set;
	pthread_mutex_init(&s->lock, NULL); /* api_history_write takes it */
	s->interval_ns = (uint64_t)llround(interval_s * 1e9);
	s->coverage = (struct host_coverage){.idx = {0, 3}, .n = 2, .measured = true};
	if (history_init(&s->history, 4, n ? n : 1) < 0) {
		free(f);
		return NULL;
	}
	history_set_host_parts(&s->history, s->coverage.idx, s->coverage.n);
	uint64_t x = 88172645463325252ULL, uj[4] = {0};
	for (size_t k = 0; k < n; k++) {
		double t = 1764000000.0 + (double)k * interval_s + 1e-6 * floor(300 * noise(&x));
		uint64_t v[4];
		for (int c = 0; c < 4; c++) {
			uj[c] += (uint64_t)llround(base_w[c] * (0.8 + 0.4 * noise(&x)) *
			                           interval_s * 1e6);
			/* A failed read now and then (every 997th sample of core-0). */
			v[c] = c == 1 && k % 997 == 500 ? HISTORY_INVALID : uj[c];
		}
		history_append(&s->history, t, v, uj[0] + uj[3]);
	}
	f->d = (struct daemon){.sampler = s, .set = &f->set, .history_s = (double)n * interval_s};
	return f;
}

void history_fixture_free(struct history_fixture *f)
{
	if (!f)
		return;
	history_free(&f->sampler.history);
	pthread_mutex_destroy(&f->sampler.lock);
	free(f);
}

/* api_history_route's body before the streaming writer, unchanged but for the lock. */
char *history_fixture_jansson(struct daemon *d, double seconds, double points)
{
	struct sampler *s = d->sampler;
	const struct history *h = &s->history;
	json_t *t = json_array(), *host = json_array(), *channels = json_object();
	json_t *series[CHANNELS_MAX];
	for (int c = 0; c < d->set->n; c++) {
		series[c] = json_array();
		json_object_set_new(channels, d->set->ch[c].id,
		                    json_pack("{s:o, s:b}", "watts", series[c], "measured",
		                              d->set->ch[c].measured));
	}
	if (h->count > 0) {
		size_t last = h->count - 1, first = last;
		double t_last = history_time(h, last);
		while (first > 0 && history_time(h, first - 1) >= t_last - seconds)
			first--;
		size_t n = last - first + 1;
		size_t step = (size_t)ceil((double)n / points);
		if (step < 1)
			step = 1;
		size_t count = (n + step - 1) / step;
		for (size_t k = 0; k < count; k++) {
			size_t i = last - (count - 1 - k) * step;
			double w, min_s = (double)step * (double)s->interval_ns / 1e9;
			json_array_append_new(t, json_real(history_time(h, i)));
			for (int c = 0; c < d->set->n; c++)
				json_array_append_new(
				    series[c], history_watts_window(h, c, i, min_s, &w, NULL) == 0
				                   ? json_real(w)
				                   : json_null());
			json_array_append_new(
			    host, history_watts_window(h, HISTORY_HOST, i, min_s, &w, NULL) == 0
			              ? json_real(w)
			              : json_null());
		}
	}
	json_t *coverage = json_array(); /* api_coverage_ids */
	for (int k = 0; k < s->coverage.n; k++)
		json_array_append_new(coverage, json_string(d->set->ch[s->coverage.idx[k]].id));
	json_t *o = json_pack("{s:o, s:o, s:{s:o, s:o, s:b}, s:f}", "t", t, "channels", channels,
	                      "host", "watts", host, "coverage", coverage, "measured",
	                      s->coverage.measured, "interval_s", (double)s->interval_ns / 1e9);
	char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(16));
	json_decref(o);
	return text;
}
