/*
 * The body of GET /api/v1/history (docs/api.md): columnar series for charts, the newest
 * `seconds` of the in-memory history downsampled to at most max_points points. Written with the
 * streaming writer (jsonw.h): at 0.1 s, 900 seconds are 9,000 samples and a tree of jansson
 * values for them cost several times the rest of the request. The watts of all the points of
 * a series come from one pass over its samples (history_watts_points), in a copy of them taken
 * under the sampler's lock: the lock is held for the copy only, not for the answer.
 */
#include "api.h"

#include <errno.h>
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

/* One series' figures at every point, written as a column (null where it has none). */
static void write_column(struct jsonw *w, const double *watts, const bool *ok, size_t count)
{
	jsonw_array_begin(w);
	for (size_t k = 0; k < count; k++) {
		if (ok[k])
			jsonw_real(w, watts[k]);
		else
			jsonw_null(w);
	}
	jsonw_array_end(w);
}

/*
 * Everything but the samples is read under the sampler's lock with them: the coverage may
 * change with a channel's status. The copy (history_copy_recent) holds the points and the
 * samples their windows look at; the watts and the text are made from it after the lock is
 * released, so that a large answer does not hold up the sampler.
 */
struct history_view {
	struct history h;
	struct history_span sp;
	struct host_coverage coverage;
	double interval_s, min_s;
};

static int history_view_take(struct sampler *s, double seconds, double points,
                             struct history_view *v)
{
	int rc = 0;
	*v = (struct history_view){0};
	sampler_lock(s);
	v->sp = history_span(&s->history, seconds, points);
	v->coverage = s->coverage;
	v->interval_s = (double)s->interval_ns / 1e9;
	v->min_s = (double)v->sp.step * (double)s->interval_ns / 1e9;
	if (v->sp.count > 0) {
		size_t shift;
		rc = history_copy_recent(&v->h, &s->history,
		                         v->sp.last - (v->sp.count - 1) * v->sp.step, v->min_s,
		                         &shift);
		v->sp.last -= shift;
	}
	sampler_unlock(s);
	return rc;
}

/* The channels' columns, then the host's: the sum of its parts in their order
 * (history_watts_points), the parts met in that order among the channels added as they are
 * written. -ENOMEM when a column could not be computed. */
static int write_series(struct jsonw *w, const struct daemon *d, const struct history_view *v)
{
	const struct history *h = &v->h;
	const struct history_span *sp = &v->sp;
	size_t n = sp->count ? sp->count : 1;
	double *watts = malloc(2 * n * sizeof(double));
	bool *ok = malloc(2 * n * sizeof(bool));
	if (!watts || !ok) {
		free(watts);
		free(ok);
		return -ENOMEM;
	}
	double *host = watts + n;
	bool *host_ok = ok + n;
	int rc = 0, parts_added = 0;
	for (size_t k = 0; k < n; k++) {
		host[k] = 0;
		host_ok[k] = true;
	}
	jsonw_key(w, "channels");
	jsonw_object_begin(w);
	for (int c = 0; c < d->set->n; c++) {
		rc = history_watts_points(h, c, sp->last, sp->step, sp->count, v->min_s, watts, ok);
		if (rc < 0)
			break;
		jsonw_key(w, d->set->ch[c].id);
		jsonw_object_begin(w);
		jsonw_key(w, "watts");
		write_column(w, watts, ok, sp->count);
		jsonw_key(w, "measured");
		jsonw_bool(w, d->set->ch[c].measured);
		jsonw_object_end(w);
		if (parts_added < h->n_host_parts && h->host_parts[parts_added] == c) {
			history_points_add(host, host_ok, watts, ok, sp->count);
			parts_added++;
		}
	}
	jsonw_object_end(w);
	if (rc == 0 && h->n_host_parts == 0)
		rc = history_watts_points(h, HISTORY_HOST, sp->last, sp->step, sp->count, v->min_s,
		                          host, host_ok);
	for (; parts_added < h->n_host_parts && rc == 0; parts_added++) {
		rc = history_watts_points(h, h->host_parts[parts_added], sp->last, sp->step,
		                          sp->count, v->min_s, watts, ok);
		if (rc == 0)
			history_points_add(host, host_ok, watts, ok, sp->count);
	}
	if (rc == 0) {
		jsonw_key(w, "host");
		jsonw_object_begin(w);
		jsonw_key(w, "watts");
		write_column(w, host, host_ok, sp->count);
	}
	free(watts);
	free(ok);
	return rc;
}

void api_history_write(struct daemon *d, double seconds, double points, struct jsonw *w)
{
	struct history_view v;
	int rc = history_view_take(d->sampler, seconds, points, &v);
	size_t columns = (size_t)d->set->n + 2;
	jsonw_init(w, v.sp.count * columns * 20 + HISTORY_JSON_FIXED,
	           v.sp.count * columns * JSONW_REAL_MAX + columns * (6 * CHANNEL_ID_MAX + 64) +
	               HISTORY_JSON_FIXED);
	jsonw_object_begin(w);
	jsonw_key(w, "t");
	jsonw_array_begin(w);
	for (size_t k = 0; k < v.sp.count && rc == 0; k++)
		jsonw_real(w, history_time(&v.h, v.sp.last - (v.sp.count - 1 - k) * v.sp.step));
	jsonw_array_end(w);
	if (rc == 0)
		rc = write_series(w, d, &v);
	history_free(&v.h);
	/* Out of memory: the document stays open, and jsonw_finish gives NULL (a 503). */
	if (rc < 0)
		return;
	jsonw_key(w, "coverage");
	jsonw_array_begin(w);
	for (int k = 0; k < v.coverage.n; k++)
		jsonw_string(w, d->set->ch[v.coverage.idx[k]].id);
	jsonw_array_end(w);
	jsonw_key(w, "measured");
	jsonw_bool(w, v.coverage.measured);
	jsonw_object_end(w);
	jsonw_key(w, "interval_s");
	jsonw_real(w, v.interval_s);
	jsonw_object_end(w);
}
