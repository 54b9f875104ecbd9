#include "history.h"
#include "history_window.h"
#include "mem.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

/* How far a query looks for a valid sample around a failed read. */
#define HISTORY_SEARCH_MAX 1000

int history_init(struct history *h, int n_channels, size_t capacity)
{
	h->n_channels = n_channels;
	h->n_host_parts = 0;
	h->capacity = capacity;
	h->head = h->count = 0;
	h->t = calloc(capacity, sizeof(*h->t));
	h->host = calloc(capacity, sizeof(*h->host));
	h->channel = calloc(capacity * (size_t)(n_channels ? n_channels : 1), sizeof(*h->channel));
	if (!h->t || !h->host || !h->channel) {
		history_free(h);
		return -ENOMEM;
	}
	return 0;
}

void history_free(struct history *h)
{
	MEM_FREE_NULL(h->t);
	MEM_FREE_NULL(h->host);
	MEM_FREE_NULL(h->channel);
	h->count = 0;
}

void history_append(struct history *h, double t, const uint64_t *channel_uj, uint64_t host_uj)
{
	size_t slot = h->head;
	h->t[slot] = t;
	h->host[slot] = host_uj;
	for (int c = 0; c < h->n_channels; c++)
		h->channel[slot * (size_t)h->n_channels + (size_t)c] = channel_uj[c];
	h->head = (h->head + 1) % h->capacity;
	if (h->count < h->capacity)
		h->count++;
}

/* The ring's slot of sample i (i < count: one subtraction, no division; the history's queries
 * read thousands of samples per answer). */
static inline size_t slot_of(const struct history *h, size_t i)
{
	size_t s = h->head + h->capacity - h->count + i;
	if (s >= h->capacity)
		s -= h->capacity;
	return s < h->capacity ? s : s % h->capacity;
}

/* history_time and history_value for this file, inlined (the public ones are not: the library
 * is built position-independent). */
static inline double time_of(const struct history *h, size_t i)
{
	return h->t[slot_of(h, i)];
}

static inline uint64_t value_of(const struct history *h, size_t i, int series)
{
	size_t s = slot_of(h, i);
	if (series == HISTORY_HOST)
		return h->host[s];
	return h->channel[s * (size_t)h->n_channels + (size_t)series];
}

double history_time(const struct history *h, size_t i)
{
	return time_of(h, i);
}

uint64_t history_value(const struct history *h, size_t i, int series)
{
	return value_of(h, i, series);
}

/* The last sample at or before t (t must be >= the oldest sample's time). */
static size_t find_at_or_before(const struct history *h, double t)
{
	size_t lo = 0, hi = h->count - 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo + 1) / 2;
		if (time_of(h, mid) <= t)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

int history_value_at(const struct history *h, int series, double t, double *uj,
                     double *resolution_s)
{
	if (h->count == 0 || !(t >= time_of(h, 0)) || !(t <= time_of(h, h->count - 1)))
		return -ERANGE;
	size_t i = find_at_or_before(h, t);
	long a = -1, b = -1;
	for (size_t k = 0; k <= i && k < HISTORY_SEARCH_MAX; k++)
		if (value_of(h, i - k, series) != HISTORY_INVALID) {
			a = (long)(i - k);
			break;
		}
	if (a == (long)i && time_of(h, i) == t) {
		*uj = (double)value_of(h, i, series);
		*resolution_s = 0;
		return 0;
	}
	for (size_t k = i + 1; k < h->count && k <= i + HISTORY_SEARCH_MAX; k++)
		if (value_of(h, k, series) != HISTORY_INVALID) {
			b = (long)k;
			break;
		}
	if (a < 0 && b < 0)
		return -ENODATA;
	if (a < 0 || b < 0) {
		/* Only one side is known: hold its value, and say how far off it may be. */
		long k = a >= 0 ? a : b;
		*uj = (double)value_of(h, (size_t)k, series);
		*resolution_s = fabs(t - time_of(h, (size_t)k));
		return 0;
	}
	double ta = time_of(h, (size_t)a), tb = time_of(h, (size_t)b);
	double va = (double)value_of(h, (size_t)a, series);
	double vb = (double)value_of(h, (size_t)b, series);
	*uj = va + (vb - va) * (t - ta) / (tb - ta);
	*resolution_s = tb - ta;
	return 0;
}

static double series_energy(const struct history *h, int series, double t0, double t1,
                            double *resolution_s)
{
	double v0, v1, r0, r1;
	if (history_value_at(h, series, t0, &v0, &r0) < 0 ||
	    history_value_at(h, series, t1, &v1, &r1) < 0)
		return NAN;
	double r = r0 > r1 ? r0 : r1;
	if (r > *resolution_s)
		*resolution_s = r;
	return (v1 - v0) / 1e6;
}

int history_energy_between(const struct history *h, double t0, double t1, double *joules,
                           double *host_joules, double *from, double *to, double *resolution_s)
{
	if (!(t0 <= t1))
		return -EINVAL;
	if (h->count < 2)
		return -ENODATA;
	double first = time_of(h, 0), last = time_of(h, h->count - 1);
	t0 = t0 < first ? first : t0 > last ? last : t0;
	t1 = t1 < first ? first : t1 > last ? last : t1;
	*from = t0;
	*to = t1;
	*resolution_s = 0;
	for (int c = 0; c < h->n_channels; c++)
		joules[c] = series_energy(h, c, t0, t1, resolution_s);
	*host_joules = series_energy(h, HISTORY_HOST, t0, t1, resolution_s);
	return 0;
}

int history_host_joules_between(const struct history *h, double t0, double t1, double *joules)
{
	double a, b, res;
	int rc = history_value_at(h, HISTORY_HOST, t0, &a, &res);
	if (rc == 0)
		rc = history_value_at(h, HISTORY_HOST, t1, &b, &res);
	if (rc == 0)
		*joules = (b - a) / 1e6;
	return rc;
}

void history_set_host_parts(struct history *h, const int *channels, int n)
{
	h->n_host_parts = 0;
	for (int k = 0; k < n && k < HISTORY_HOST_PARTS_MAX; k++)
		if (channels[k] >= 0 && channels[k] < h->n_channels)
			h->host_parts[h->n_host_parts++] = channels[k];
}

/* The valid samples around the one asked for, oldest first: index, time, counter, whether
 * the counter moved since the sample before (an update), and the updates before and after each
 * position (-1: none). n: their count, at: the position of the sample asked for. */
struct window_scan {
	size_t idx[WINDOW_N];
	double t[WINDOW_N];
	uint64_t v[WINDOW_N];
	bool update[WINDOW_N];
	int prev[WINDOW_N], next[WINDOW_N];
	int n, at;
};

static void scan_samples(const struct history *h, int series, size_t i, double min_s,
                         struct window_scan *w)
{
	/* Back: far enough for the update period (2 x WINDOW_GAPS changes) and for a window of
	 * min_s past a pause up to the hold, at most min_s + WINDOW_SCAN_S. Ahead: up to the
	 * third change (the next updates and whether they come at the usual cadence), at most
	 * WINDOW_FWD_S. This bounds the work per sample whatever the sample rate. */
	double t_i = time_of(h, i), enough_s = 2 * min_s + HISTORY_HOLD_MIN_S;
	int nb = 0, changes = 0;
	size_t back[WINDOW_SCAN_MAX];
	double back_t[WINDOW_SCAN_MAX];
	uint64_t back_v[WINDOW_SCAN_MAX];
	uint64_t newer = HISTORY_INVALID;
	/* The series' counters: every stride-th value from base, by ring slot. */
	const uint64_t *base = series == HISTORY_HOST ? h->host : h->channel + series;
	size_t stride = series == HISTORY_HOST ? 1 : (size_t)h->n_channels;
	size_t slot = slot_of(h, i);
	for (size_t j = i + 1; j-- > 0 && nb < WINDOW_SCAN_MAX;
	     slot = slot ? slot - 1 : h->capacity - 1) {
		uint64_t v = base[slot * stride];
		if (v == HISTORY_INVALID)
			continue;
		double t_j = h->t[slot], age = t_i - t_j;
		if (age > min_s + WINDOW_SCAN_S ||
		    (changes >= 2 * WINDOW_GAPS + 2 && age > enough_s))
			break;
		changes += newer != HISTORY_INVALID && v != newer;
		newer = v;
		back[nb] = j;
		back_t[nb] = t_j;
		back_v[nb++] = v;
	}
	w->n = 0;
	for (int k = nb; k-- > 0; w->n++) {
		w->idx[w->n] = back[k];
		w->t[w->n] = back_t[k];
		w->v[w->n] = back_v[k];
	}
	w->at = w->n - 1;
	uint64_t older = value_of(h, i, series);
	changes = 0;
	slot = slot_of(h, i);
	for (size_t j = i + 1; j < h->count && w->n < WINDOW_N && changes < 3; j++) {
		slot = slot + 1 < h->capacity ? slot + 1 : 0;
		uint64_t v = base[slot * stride];
		if (v == HISTORY_INVALID)
			continue;
		double t_j = h->t[slot];
		if (t_j - t_i > WINDOW_FWD_S)
			break;
		changes += v != older;
		older = v;
		w->idx[w->n] = j;
		w->t[w->n] = t_j;
		w->v[w->n++] = v;
	}
	for (int k = 0, last = -1; k < w->n; k++) {
		w->update[k] = k > 0 && w->v[k] != w->v[k - 1];
		w->prev[k] = last;
		if (w->update[k])
			last = k;
	}
	for (int k = w->n, last = -1; k-- > 0;) {
		w->next[k] = last;
		if (w->update[k])
			last = k;
	}
}

/* The sensor's update period: the median gap between its newest updates up to position at
 * (all of them when fewer than two), else the typical sample spacing. */
static double scan_period(const struct window_scan *w)
{
	double gaps[WINDOW_GAPS];
	int n = 0;
	for (int pass = 0; pass < 2 && n == 0; pass++) {
		int last = -1;
		for (int k = pass ? w->n - 1 : w->at; k >= 0 && n < WINDOW_GAPS; k--) {
			if (!w->update[k])
				continue;
			if (last >= 0)
				gaps[n++] = w->t[last] - w->t[k];
			last = k;
		}
	}
	if (n == 0)
		return w->n > 1 ? (w->t[w->n - 1] - w->t[0]) / (w->n - 1) : 0;
	return window_median(gaps, n);
}

/*
 * Whether position k bounds a window: an update followed by the next one at the usual cadence
 * (an update followed by a pause may be partial: a counter written just before it stalled),
 * or a sample inside a pause longer than the hold (the counter really stands still). The
 * newest update counts while the time since it is still usual.
 */
static bool scan_boundary(const struct window_scan *w, int k, double period, double hold)
{
	int prev = w->prev[k], next = w->next[k];
	double after = (next >= 0 ? w->t[next] : w->t[w->n - 1]) - w->t[k];
	if (w->update[k])
		return after <= WINDOW_REGULAR * period || after > hold;
	/* Not an update: a boundary inside a standstill only (a pause between updates, or since
	 * the last one so far, longer than the hold). */
	double from = prev >= 0 ? w->t[prev] : w->t[0];
	return w->t[k] > from && after + (w->t[k] - from) > hold;
}

static int series_watts_window(const struct history *h, int series, size_t i, double min_s,
                               double *watts, struct history_window *win)
{
	if (i >= h->count || value_of(h, i, series) == HISTORY_INVALID)
		return -ENODATA;
	static _Thread_local struct window_scan w;
	scan_samples(h, series, i, min_s, &w);
	if (w.n < 2)
		return -ENODATA;
	double period = scan_period(&w);
	double hold = HISTORY_HOLD_PERIODS * period;
	if (hold < HISTORY_HOLD_MIN_S)
		hold = HISTORY_HOLD_MIN_S;
	/* The window ends at sample i when it bounds one; else at the next boundary (the interval
	 * joins the next one), or, with none yet, at the last one (no update yet). */
	int end = -1;
	if (scan_boundary(&w, w.at, period, hold))
		end = w.at;
	for (int k = w.at + 1; k < w.n && end < 0; k++)
		if (scan_boundary(&w, k, period, hold))
			end = k;
	for (int k = w.at - 1; k > 0 && end < 0; k--)
		if (scan_boundary(&w, k, period, hold))
			end = k;
	if (end <= 0)
		return -ENODATA;
	/* It starts at the newest boundary at least max(period, min_s) before its end. */
	double need = WINDOW_SLACK * (period > min_s ? period : min_s);
	int start = -1;
	for (int k = end - 1; k >= 0 && start < 0; k--)
		if (w.t[end] - w.t[k] >= need && scan_boundary(&w, k, period, hold))
			start = k;
	/* Failing that, the oldest sample looked at: when the scan stopped at its limit, or at
	 * the first sample if the counter moved at its usual cadence after it (one that sat still
	 * after energyd started may have been stalled: "no update yet" then). */
	if (start < 0 && (w.idx[0] > 0 ||
	                  (w.next[0] >= 0 && w.t[w.next[0]] - w.t[0] <= WINDOW_REGULAR * period)))
		start = 0;
	if (start < 0 || !(w.t[end] > w.t[start]))
		return -ENODATA;
	*watts = (double)(w.v[end] - w.v[start]) / 1e6 / (w.t[end] - w.t[start]);
	if (win)
		*win = (struct history_window){w.t[start], w.t[end], period};
	return 0;
}

int history_watts_window(const struct history *h, int series, size_t i, double min_s, double *watts,
                         struct history_window *win)
{
	if (series != HISTORY_HOST || h->n_host_parts == 0)
		return series_watts_window(h, series, i, min_s, watts, win);
	/* The host total: the sum of its parts, each over its own sensor's window. */
	double sum = 0;
	struct history_window w = {INFINITY, -INFINITY, 0}, part;
	for (int k = 0; k < h->n_host_parts; k++) {
		double pw;
		int rc = series_watts_window(h, h->host_parts[k], i, min_s, &pw, &part);
		if (rc < 0)
			return rc;
		sum += pw;
		w.from = part.from < w.from ? part.from : w.from;
		w.to = part.to > w.to ? part.to : w.to;
		w.update_period_s = part.update_period_s > w.update_period_s ? part.update_period_s
		                                                             : w.update_period_s;
	}
	*watts = sum;
	if (win)
		*win = w;
	return 0;
}
