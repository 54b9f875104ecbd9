/*
 * The watts of many samples at once (history_watts_points, history.h) and the copy of the
 * samples they need (history_copy_recent). history_watts_window scans the samples around each
 * sample asked for; for an answer of thousands of points (GET /api/v1/history) those scans
 * overlap, and their cost was most of the answer's. Here one series' valid samples are read
 * once, with where each update (a change of the counter) lies; each point's window then takes
 * the same decisions as history_watts_window over the same samples, in the same floating-point
 * operations, so that the figures are the same to the bit (tests/unit/test_history_points.c
 * compares them).
 *
 * That rests on the history's times never decreasing (the sampler's clock: start wall time +
 * monotonic time): the samples a window looks back to and ahead to then only move forward from
 * one point to the next. When they do decrease somewhere, the points are computed one by one.
 */
#include "history.h"
#include "history_window.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * One series' valid samples from a little before the first point to a little after the last,
 * by position p (oldest first): history index, time, counter; whether the counter changed
 * since the valid sample before (an update; never at position 0), the number of updates up to
 * p, and the list of update positions (which give the updates before and after p).
 */
struct points_series {
	size_t n, n_updates;
	size_t *idx;
	double *t;
	uint64_t *v;
	size_t *updates_to; /* updates at positions 1..p */
	size_t *update_pos; /* positions of the updates, ascending */
	double *gap;        /* the time from the update before to update u (u > 0) */
	void *mem;
};

static size_t slot_at(const struct history *h, size_t i)
{
	return (h->head + h->capacity - h->count + i) % h->capacity;
}

static void series_free(struct points_series *s)
{
	free(s->mem);
	s->mem = NULL;
}

/* Samples from index from to index to (inclusive) of the series; -ENOMEM, or -EDOM when their
 * times decrease somewhere. */
static int series_read(struct points_series *s, const struct history *h, int series, size_t from,
                       size_t to)
{
	size_t cap = to - from + 1;
	size_t each = sizeof(size_t) * 3 + sizeof(double) * 2 + sizeof(uint64_t);
	s->mem = malloc(cap * each);
	if (!s->mem)
		return -ENOMEM;
	/* Eight-byte members first, all of the same alignment. */
	s->t = s->mem;
	s->v = (uint64_t *)(s->t + cap);
	s->idx = (size_t *)(s->v + cap);
	s->updates_to = s->idx + cap;
	s->update_pos = s->updates_to + cap;
	s->gap = (double *)(s->update_pos + cap);
	const uint64_t *base = series == HISTORY_HOST ? h->host : h->channel + series;
	size_t stride = series == HISTORY_HOST ? 1 : (size_t)h->n_channels;
	size_t slot = slot_at(h, from), n = 0, nu = 0;
	double t_before = h->t[slot];
	for (size_t i = from; i <= to; i++, slot = slot + 1 < h->capacity ? slot + 1 : 0) {
		double t = h->t[slot];
		if (!(t >= t_before))
			return -EDOM;
		t_before = t;
		uint64_t v = base[slot * stride];
		if (v == HISTORY_INVALID)
			continue;
		bool update = n > 0 && v != s->v[n - 1];
		s->idx[n] = i;
		s->t[n] = t;
		s->v[n] = v;
		if (update) {
			if (nu > 0)
				s->gap[nu] = t - s->t[s->update_pos[nu - 1]];
			s->update_pos[nu++] = n;
		}
		s->updates_to[n] = nu;
		n++;
	}
	s->n = n;
	s->n_updates = nu;
	return 0;
}

/* One point's window over positions lo..hi (the samples history_watts_window's scan holds),
 * the point at position at; the same decisions as series_watts_window in history.c. */
struct points_window {
	const struct points_series *s;
	long lo, hi, at;
	double period, hold;
};

static bool pw_update(const struct points_window *w, long k)
{
	return k > w->lo && w->s->updates_to[k] != w->s->updates_to[k - 1];
}

/* The update before k after lo, or -1. */
static long pw_prev(const struct points_window *w, long k)
{
	const struct points_series *s = w->s;
	size_t before = k > 0 ? s->updates_to[k - 1] : 0; /* updates before k */
	long prev = before > 0 ? (long)s->update_pos[before - 1] : -1;
	return prev > w->lo ? prev : -1;
}

/* The update after k up to hi, or -1. */
static long pw_next(const struct points_window *w, long k)
{
	const struct points_series *s = w->s;
	size_t upto = s->updates_to[k]; /* updates up to k: the next is that one */
	long next = upto < s->n_updates ? (long)s->update_pos[upto] : -1;
	return next >= 0 && next <= w->hi ? next : -1;
}

/* scan_boundary in history.c */
static bool pw_boundary(const struct points_window *w, long k)
{
	const double *t = w->s->t;
	long prev = pw_prev(w, k), next = pw_next(w, k);
	double after = (next >= 0 ? t[next] : t[w->hi]) - t[k];
	if (pw_update(w, k))
		return after <= WINDOW_REGULAR * w->period || after > w->hold;
	double from = prev >= 0 ? t[prev] : t[w->lo];
	return t[k] > from && after + (t[k] - from) > w->hold;
}

/* scan_period in history.c: the median of the newest gaps between the updates after lo up to
 * update u (the newest at or before the position asked for), at most WINDOW_GAPS of them; NAN
 * when there are none. */
static double pw_median_gap(const struct points_window *w, long u)
{
	const struct points_series *s = w->s;
	long n = u - (long)s->updates_to[w->lo]; /* from the first update after lo */
	if (n <= 0)
		return NAN;
	if (n >= WINDOW_GAPS)
		return window_median8(s->gap + u - (WINDOW_GAPS - 1));
	double gaps[WINDOW_GAPS];
	memcpy(gaps, s->gap + u - n + 1, (size_t)n * sizeof(*gaps));
	return window_median(gaps, (int)n);
}

static double pw_period(const struct points_window *w)
{
	const struct points_series *s = w->s;
	/* The newest update at or before at, then at or before hi. */
	double m = pw_median_gap(w, (long)s->updates_to[w->at] - 1);
	if (isnan(m))
		m = pw_median_gap(w, (long)s->updates_to[w->hi] - 1);
	if (isnan(m)) {
		long n = w->hi - w->lo + 1;
		return n > 1 ? (s->t[w->hi] - s->t[w->lo]) / (double)(n - 1) : 0;
	}
	return m;
}

/* series_watts_window's decisions once the window's samples are known. */
static int pw_watts(struct points_window *w, double min_s, double *watts)
{
	const struct points_series *s = w->s;
	if (w->hi - w->lo + 1 < 2)
		return -ENODATA;
	w->period = pw_period(w);
	w->hold = HISTORY_HOLD_PERIODS * w->period;
	if (w->hold < HISTORY_HOLD_MIN_S)
		w->hold = HISTORY_HOLD_MIN_S;
	long end = -1;
	if (pw_boundary(w, w->at))
		end = w->at;
	for (long k = w->at + 1; k <= w->hi && end < 0; k++)
		if (pw_boundary(w, k))
			end = k;
	for (long k = w->at - 1; k > w->lo && end < 0; k--)
		if (pw_boundary(w, k))
			end = k;
	if (end <= w->lo)
		return -ENODATA;
	double need = WINDOW_SLACK * (w->period > min_s ? w->period : min_s);
	long start = -1;
	for (long k = end - 1; k >= w->lo && start < 0; k--)
		if (s->t[end] - s->t[k] >= need && pw_boundary(w, k))
			start = k;
	long first_next = pw_next(w, w->lo);
	if (start < 0 && (s->idx[w->lo] > 0 || (first_next >= 0 && s->t[first_next] - s->t[w->lo] <=
	                                                               WINDOW_REGULAR * w->period)))
		start = w->lo;
	if (start < 0 || !(s->t[end] > s->t[start]))
		return -ENODATA;
	*watts = (double)(s->v[end] - s->v[start]) / 1e6 / (s->t[end] - s->t[start]);
	return 0;
}

/* The samples any point's window may look at: back from the first point as far as its scan
 * goes (its limit in seconds; the times do not decrease), ahead of the last as far. */
static void points_range(const struct history *h, size_t first, size_t last, double min_s,
                         size_t *from, size_t *to)
{
	double t_first = history_time(h, first), t_last = history_time(h, last);
	*from = first;
	while (*from > 0 && !(t_first - history_time(h, *from - 1) > min_s + WINDOW_SCAN_S))
		(*from)--;
	*to = last;
	while (*to + 1 < h->count && !(history_time(h, *to + 1) - t_last > WINDOW_FWD_S))
		(*to)++;
}

/* One series (a channel, or the host's own counter) at every point. */
static int series_points(const struct history *h, int series, size_t last, size_t step,
                         size_t count, double min_s, double *watts, bool *ok)
{
	size_t first = last - (count - 1) * step, from, to;
	points_range(h, first, last, min_s, &from, &to);
	struct points_series s = {0};
	int rc = series_read(&s, h, series, from, to);
	if (rc < 0) {
		series_free(&s);
		return rc;
	}
	/* The window's ends only move forward from point to point: lo, the oldest sample the
	 * scan back keeps; fwd_end, the first sample too far ahead in time. */
	double enough_s = 2 * min_s + HISTORY_HOLD_MIN_S;
	long n = (long)s.n, p = 0, lo = 0, fwd_end = 0;
	for (size_t k = 0; k < count; k++) {
		size_t i = last - (count - 1 - k) * step;
		while (p < n && s.idx[p] < i)
			p++;
		ok[k] = false;
		if (p >= n || s.idx[p] != i)
			continue;
		/* scan_samples in history.c: back while fewer than WINDOW_SCAN_MAX samples, within
		 * min_s + WINDOW_SCAN_S, and not both past 2 x WINDOW_GAPS + 2 changes and
		 * enough_s; sample lo breaks off when it is over a limit. */
		double t_i = s.t[p];
		for (; lo < p; lo++) {
			double age = t_i - s.t[lo];
			size_t changes = s.updates_to[p] - s.updates_to[lo + 1];
			if (!(p - lo >= WINDOW_SCAN_MAX || age > min_s + WINDOW_SCAN_S ||
			      (changes >= 2 * WINDOW_GAPS + 2 && age > enough_s)))
				break;
		}
		/* Ahead: up to the third update, within WINDOW_FWD_S, WINDOW_N samples in all. */
		if (fwd_end <= p)
			fwd_end = p + 1;
		while (fwd_end < n && !(s.t[fwd_end] - t_i > WINDOW_FWD_S))
			fwd_end++;
		long hi = fwd_end - 1;
		size_t third = s.updates_to[p] + 2;
		if (third < s.n_updates && (long)s.update_pos[third] < hi)
			hi = (long)s.update_pos[third];
		if (lo + WINDOW_N - 1 < hi)
			hi = lo + WINDOW_N - 1;
		struct points_window w = {&s, lo, hi, p, 0, 0};
		ok[k] = pw_watts(&w, min_s, &watts[k]) == 0;
	}
	series_free(&s);
	return 0;
}

int history_watts_points(const struct history *h, int series, size_t last, size_t step,
                         size_t count, double min_s, double *watts, bool *ok)
{
	if (count == 0)
		return 0;
	if (step == 0 || last >= h->count || (count - 1) > last / step)
		return -EINVAL;
	if (series != HISTORY_HOST || h->n_host_parts == 0) {
		int rc = series_points(h, series, last, step, count, min_s, watts, ok);
		if (rc != -EDOM)
			return rc;
		/* Times that decrease: one by one. */
		for (size_t k = 0; k < count; k++)
			ok[k] = history_watts_window(h, series, last - (count - 1 - k) * step,
			                             min_s, &watts[k], NULL) == 0;
		return 0;
	}
	/* The host total: the sum of its parts in their order, as history_watts_window adds
	 * them. */
	double *part = malloc(count * (sizeof(double) + sizeof(bool)));
	if (!part)
		return -ENOMEM;
	bool *part_ok = (bool *)(part + count);
	for (size_t k = 0; k < count; k++) {
		watts[k] = 0;
		ok[k] = true;
	}
	for (int j = 0; j < h->n_host_parts; j++) {
		int rc = history_watts_points(h, h->host_parts[j], last, step, count, min_s, part,
		                              part_ok);
		if (rc < 0) {
			free(part);
			return rc;
		}
		history_points_add(watts, ok, part, part_ok, count);
	}
	free(part);
	return 0;
}

void history_points_add(double *sum, bool *ok, const double *watts, const bool *watts_ok,
                        size_t count)
{
	for (size_t k = 0; k < count; k++) {
		sum[k] += watts[k];
		ok[k] = ok[k] && watts_ok[k];
	}
}

int history_copy_recent(struct history *dst, const struct history *src, size_t first, double min_s,
                        size_t *shift)
{
	if (first >= src->count)
		return -EINVAL;
	size_t from, to;
	points_range(src, first, src->count - 1, min_s, &from, &to);
	/* And the sample before: a scan that reaches it stops there as it does in src (when it
	 * is valid, it is over the limit in seconds; when not, older ones are), not at the start
	 * of the history (which changes what a window may start with). */
	if (from > 0)
		from--;
	size_t n = src->count - from;
	size_t nc = (size_t)(src->n_channels ? src->n_channels : 1);
	/* history_init's arrays, not zeroed (calloc would clear them): every value is copied. */
	*dst = (struct history){.n_channels = src->n_channels, .capacity = n};
	dst->t = malloc(n * sizeof(*dst->t));
	dst->host = malloc(n * sizeof(*dst->host));
	dst->channel = malloc(n * nc * sizeof(*dst->channel));
	if (!dst->t || !dst->host || !dst->channel) {
		history_free(dst);
		return -ENOMEM;
	}
	/* The ring from slot_at(from), in at most two pieces. */
	for (size_t done = 0; done < n;) {
		size_t slot = slot_at(src, from + done);
		size_t piece = src->capacity - slot < n - done ? src->capacity - slot : n - done;
		memcpy(dst->t + done, src->t + slot, piece * sizeof(*dst->t));
		memcpy(dst->host + done, src->host + slot, piece * sizeof(*dst->host));
		memcpy(dst->channel + done * nc, src->channel + slot * nc,
		       piece * nc * sizeof(*dst->channel));
		done += piece;
	}
	dst->count = n;
	dst->head = 0;
	history_set_host_parts(dst, src->host_parts, src->n_host_parts);
	*shift = from;
	return 0;
}
