#include "history.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* How far a query looks for a valid sample around a failed read. */
#define HISTORY_SEARCH_MAX 1000

int history_init(struct history *h, int n_channels, size_t capacity)
{
	h->n_channels = n_channels;
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
	free(h->t);
	free(h->host);
	free(h->channel);
	h->t = NULL;
	h->host = h->channel = NULL;
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

static size_t slot_of(const struct history *h, size_t i)
{
	return (h->head + h->capacity - h->count + i) % h->capacity;
}

double history_time(const struct history *h, size_t i)
{
	return h->t[slot_of(h, i)];
}

uint64_t history_value(const struct history *h, size_t i, int series)
{
	size_t s = slot_of(h, i);
	if (series == HISTORY_HOST)
		return h->host[s];
	return h->channel[s * (size_t)h->n_channels + (size_t)series];
}

/* The last sample at or before t (t must be >= the oldest sample's time). */
static size_t find_at_or_before(const struct history *h, double t)
{
	size_t lo = 0, hi = h->count - 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo + 1) / 2;
		if (history_time(h, mid) <= t)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

int history_value_at(const struct history *h, int series, double t, double *uj,
                     double *resolution_s)
{
	if (h->count == 0 || !(t >= history_time(h, 0)) || !(t <= history_time(h, h->count - 1)))
		return -ERANGE;
	size_t i = find_at_or_before(h, t);
	long a = -1, b = -1;
	for (size_t k = 0; k <= i && k < HISTORY_SEARCH_MAX; k++)
		if (history_value(h, i - k, series) != HISTORY_INVALID) {
			a = (long)(i - k);
			break;
		}
	if (a == (long)i && history_time(h, i) == t) {
		*uj = (double)history_value(h, i, series);
		*resolution_s = 0;
		return 0;
	}
	for (size_t k = i + 1; k < h->count && k <= i + HISTORY_SEARCH_MAX; k++)
		if (history_value(h, k, series) != HISTORY_INVALID) {
			b = (long)k;
			break;
		}
	if (a < 0 && b < 0)
		return -ENODATA;
	if (a < 0 || b < 0) {
		/* Only one side is known: hold its value, and say how far off it may be. */
		long k = a >= 0 ? a : b;
		*uj = (double)history_value(h, (size_t)k, series);
		*resolution_s = fabs(t - history_time(h, (size_t)k));
		return 0;
	}
	double ta = history_time(h, (size_t)a), tb = history_time(h, (size_t)b);
	double va = (double)history_value(h, (size_t)a, series);
	double vb = (double)history_value(h, (size_t)b, series);
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
	double first = history_time(h, 0), last = history_time(h, h->count - 1);
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

int history_watts(const struct history *h, int series, size_t i, size_t step, double *watts)
{
	if (i >= h->count || i == 0 || step == 0)
		return -ENODATA;
	uint64_t v = history_value(h, i, series);
	if (v == HISTORY_INVALID)
		return -ENODATA;
	size_t j = i >= step ? i - step : 0;
	for (size_t k = 0; k < HISTORY_SEARCH_MAX; k++, j--) {
		uint64_t u = history_value(h, j, series);
		if (u != HISTORY_INVALID) {
			double dt = history_time(h, i) - history_time(h, j);
			if (dt <= 0)
				return -ENODATA;
			*watts = (double)(v - u) / 1e6 / dt;
			return 0;
		}
		if (j == 0)
			break;
	}
	return -ENODATA;
}
