/*
 * The body of GET /api/v1/history (docs/api.md): columnar series for charts, the newest
 * `seconds` of the in-memory history downsampled to at most max_points points. Written with the
 * streaming writer (jsonw.h): at 0.1 s, 900 seconds are 9,000 samples and a tree of jansson
 * values for them cost several times the rest of the request.
 */
#include "api.h"

#include <math.h>
#include <stdlib.h>

/* A real per point, each at most JSONW_REAL_MAX - 1 bytes and a comma; room for the keys. */
#define HISTORY_JSON_FIXED 4096

/* The points of the answer: sample indexes last - (count - 1 - k) * step for k < count. */
struct history_span {
	size_t last, step, count;
};

static struct history_span history_span(const struct history *h, double seconds, double points)
{
	struct history_span sp = {0, 1, 0};
	if (h->count == 0)
		return sp;
	size_t last = h->count - 1, first = last;
	double t_last = history_time(h, last);
	while (first > 0 && history_time(h, first - 1) >= t_last - seconds)
		first--;
	size_t n = last - first + 1;
	sp.last = last;
	sp.step = (size_t)ceil((double)n / points);
	if (sp.step < 1)
		sp.step = 1;
	/* Walk back from the newest so that the newest sample is always included. */
	sp.count = (n + sp.step - 1) / sp.step;
	return sp;
}

/*
 * The host's watts as the sum of its parts (history_watts_window adds each part's own window in
 * the order of host_parts, from 0): when the parts come in channel order, the channel columns
 * written before the host's add up the same figures in the same order, and the host costs no
 * second look at the samples.
 */
struct host_sum {
	double *watts; /* per point; NULL: the host is asked to history_watts_window */
	bool *ok;      /* every part so far had a figure at the point */
	bool part[CHANNELS_MAX];
};

static void host_sum_init(struct host_sum *hs, const struct history *h, size_t count)
{
	*hs = (struct host_sum){0};
	if (h->n_host_parts == 0 || count == 0)
		return;
	for (int k = 0; k < h->n_host_parts; k++) {
		if (k > 0 && h->host_parts[k] <= h->host_parts[k - 1])
			return;
		hs->part[h->host_parts[k]] = true;
	}
	hs->watts = calloc(count, sizeof(*hs->watts));
	hs->ok = malloc(count * sizeof(*hs->ok));
	if (!hs->watts || !hs->ok) {
		free(hs->watts);
		free(hs->ok);
		hs->watts = NULL;
		hs->ok = NULL;
		return;
	}
	for (size_t k = 0; k < count; k++)
		hs->ok[k] = true;
}

/* One series' watts at every point, each over a window of at least the step (null where the
 * series has none); a host part's figures also go into hs. */
static void write_watts(struct jsonw *w, const struct history *h, int series,
                        const struct history_span *sp, double min_s, struct host_sum *hs)
{
	bool from_parts = series == HISTORY_HOST && hs->watts;
	bool part = series >= 0 && hs->watts && hs->part[series];
	jsonw_array_begin(w);
	for (size_t k = 0; k < sp->count; k++) {
		double watts;
		size_t i = sp->last - (sp->count - 1 - k) * sp->step;
		bool ok = from_parts ? hs->ok[k]
		                     : history_watts_window(h, series, i, min_s, &watts, NULL) == 0;
		if (from_parts)
			watts = hs->watts[k];
		else if (part && ok)
			hs->watts[k] += watts;
		else if (part)
			hs->ok[k] = false;
		if (ok)
			jsonw_real(w, watts);
		else
			jsonw_null(w);
	}
	jsonw_array_end(w);
}

void api_history_write(struct daemon *d, double seconds, double points, struct jsonw *w)
{
	const struct sampler *s = d->sampler;
	const struct history *h = &s->history;
	struct history_span sp = history_span(h, seconds, points);
	size_t columns = (size_t)d->set->n + 2;
	jsonw_init(w, sp.count * columns * 20 + HISTORY_JSON_FIXED,
	           sp.count * columns * JSONW_REAL_MAX + columns * (6 * CHANNEL_ID_MAX + 64) +
	               HISTORY_JSON_FIXED);
	double min_s = (double)sp.step * (double)s->interval_ns / 1e9;
	struct host_sum hs;
	host_sum_init(&hs, h, sp.count);
	jsonw_object_begin(w);
	jsonw_key(w, "t");
	jsonw_array_begin(w);
	for (size_t k = 0; k < sp.count; k++)
		jsonw_real(w, history_time(h, sp.last - (sp.count - 1 - k) * sp.step));
	jsonw_array_end(w);
	jsonw_key(w, "channels");
	jsonw_object_begin(w);
	for (int c = 0; c < d->set->n; c++) {
		jsonw_key(w, d->set->ch[c].id);
		jsonw_object_begin(w);
		jsonw_key(w, "watts");
		write_watts(w, h, c, &sp, min_s, &hs);
		jsonw_key(w, "measured");
		jsonw_bool(w, d->set->ch[c].measured);
		jsonw_object_end(w);
	}
	jsonw_object_end(w);
	jsonw_key(w, "host");
	jsonw_object_begin(w);
	jsonw_key(w, "watts");
	write_watts(w, h, HISTORY_HOST, &sp, min_s, &hs);
	free(hs.watts);
	free(hs.ok);
	jsonw_key(w, "coverage");
	jsonw_array_begin(w);
	for (int k = 0; k < s->coverage.n; k++)
		jsonw_string(w, d->set->ch[s->coverage.idx[k]].id);
	jsonw_array_end(w);
	jsonw_key(w, "measured");
	jsonw_bool(w, s->coverage.measured);
	jsonw_object_end(w);
	jsonw_key(w, "interval_s");
	jsonw_real(w, (double)s->interval_ns / 1e9);
	jsonw_object_end(w);
}
