#define _GNU_SOURCE
#include "series.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

void series_store_init(struct series_store *st)
{
	memset(st, 0, sizeof(*st));
}

static void series_free(struct series *s)
{
	free(s->key);
	free(s->t);
	free(s->v);
	free(s);
}

void series_store_free(struct series_store *st)
{
	for (size_t i = 0; i < st->n; i++)
		series_free(st->items[i]);
	free(st->items);
	free(st->index);
	memset(st, 0, sizeof(*st));
}

static int reindex(struct series_store *st, size_t cap)
{
	size_t *idx = malloc(cap * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	memset(idx, 0xff, cap * sizeof(*idx));
	for (size_t i = 0; i < st->n; i++) {
		size_t h = (size_t)hash_key(st->items[i]->key) & (cap - 1);
		while (idx[h] != SIZE_MAX)
			h = (h + 1) & (cap - 1);
		idx[h] = i;
	}
	free(st->index);
	st->index = idx;
	st->index_cap = cap;
	return 0;
}

struct series *series_get(struct series_store *st, const char *key, bool create)
{
	if (st->index_cap) {
		size_t h = (size_t)hash_key(key) & (st->index_cap - 1);
		while (st->index[h] != SIZE_MAX) {
			struct series *s = st->items[st->index[h]];
			if (strcmp(s->key, key) == 0)
				return s;
			h = (h + 1) & (st->index_cap - 1);
		}
	}
	if (!create)
		return NULL;
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 64;
		struct series **ni = realloc(st->items, cap * sizeof(*ni));
		if (!ni)
			return NULL;
		st->items = ni;
		st->cap = cap;
	}
	struct series *s = calloc(1, sizeof(*s));
	if (!s || !(s->key = strdup(key))) {
		free(s);
		return NULL;
	}
	st->items[st->n++] = s;
	/* Keep the load under one half. */
	if (st->n * 2 > st->index_cap) {
		if (reindex(st, st->index_cap ? st->index_cap * 2 : 128) < 0) {
			st->n--;
			series_free(s);
			return NULL;
		}
	} else {
		size_t h = (size_t)hash_key(key) & (st->index_cap - 1);
		while (st->index[h] != SIZE_MAX)
			h = (h + 1) & (st->index_cap - 1);
		st->index[h] = st->n - 1;
	}
	return s;
}

static int push(struct series *s, double t, double v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		double *nt = realloc(s->t, cap * sizeof(*nt));
		if (!nt)
			return -ENOMEM;
		s->t = nt;
		double *nv = realloc(s->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->t[s->n] = t;
	s->v[s->n] = v;
	s->n++;
	return 0;
}

int series_update(struct series *s, double t_prev, double value_prev, double t, double value)
{
	if (s->n ? value == s->v[s->n - 1] : value == value_prev)
		return 0;
	if (s->n == 0 || s->t[s->n - 1] < t_prev) {
		if (t_prev < t && push(s, t_prev, value_prev) < 0)
			return -ENOMEM;
	}
	if (s->n && s->t[s->n - 1] >= t) {
		/* Same update time (or a clock step back): the newest value replaces the point. */
		s->v[s->n - 1] = value;
		return 0;
	}
	return push(s, t, value);
}

void series_reset(struct series *s, uint64_t tag)
{
	s->n = 0;
	s->tag = tag;
}

int series_value_at(const struct series *s, double t, double *value)
{
	if (s->n == 0)
		return -ENODATA;
	if (t <= s->t[0]) {
		*value = s->v[0];
		return 0;
	}
	if (t >= s->t[s->n - 1]) {
		*value = s->v[s->n - 1];
		return 0;
	}
	size_t lo = 0, hi = s->n - 1; /* t[lo] < t < t[hi] */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->t[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	double ta = s->t[lo], tb = s->t[hi];
	*value = s->v[lo] + (s->v[hi] - s->v[lo]) * (t - ta) / (tb - ta);
	return 0;
}

void series_prune(struct series_store *st, double oldest)
{
	size_t kept = 0;
	for (size_t i = 0; i < st->n; i++) {
		struct series *s = st->items[i];
		if (s->n == 0 || s->t[s->n - 1] < oldest) {
			series_free(s);
			continue;
		}
		size_t first = 0; /* the last point at or before oldest stays as the base */
		while (first + 1 < s->n && s->t[first + 1] <= oldest)
			first++;
		if (first) {
			memmove(s->t, s->t + first, (s->n - first) * sizeof(*s->t));
			memmove(s->v, s->v + first, (s->n - first) * sizeof(*s->v));
			s->n -= first;
		}
		st->items[kept++] = s;
	}
	if (kept != st->n) {
		st->n = kept;
		size_t cap = 128;
		while (cap < st->n * 2)
			cap *= 2;
		if (reindex(st, cap) < 0) {
			/* Out of memory for the index: keep the old size rebuilt in place. */
			reindex(st, st->index_cap);
		}
	}
}

size_t series_points(const struct series_store *st)
{
	size_t n = 0;
	for (size_t i = 0; i < st->n; i++)
		n += st->items[i]->n;
	return n;
}
