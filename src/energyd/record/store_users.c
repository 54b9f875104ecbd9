/* Per-user energy for the record (store_users.h). */
#include "store_users.h"
#include "log.h"
#include "mem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STORE_USERS_MINUTE_S 60.0

void store_users_set(struct store_users *u, store_users_span_fn span,
                     store_users_energy_fn energy_at, void *ctx)
{
	u->span = span;
	u->energy_at = energy_at;
	u->ctx = ctx;
}

void store_users_free(struct store_users *u)
{
	MEM_FREE_NULL(u->rows);
	MEM_FREE_NULL(u->uids);
	MEM_FREE_NULL(u->cum_uj);
	u->n_rows = u->cap_rows = 0;
}

size_t store_users_cut(double from, double to, double *t, size_t max)
{
	if (!(to > from) || max < 2)
		return 0;
	size_t n = 0;
	t[n++] = from;
	for (double b = (floor(from / STORE_USERS_MINUTE_S) + 1) * STORE_USERS_MINUTE_S; b < to;
	     b += STORE_USERS_MINUTE_S) {
		if (n == max)
			return n; /* the rest at the next flush, from this boundary */
		t[n++] = b;
	}
	if (n == max)
		return n;
	t[n++] = to;
	return n;
}

size_t store_users_rows(const double *t, size_t n_t, const uint32_t *uids, const double *cum_uj,
                        size_t n_users, struct store_user_row *rows)
{
	size_t n = 0;
	for (size_t u = 0; u < n_users; u++) {
		const double *c = &cum_uj[u * n_t];
		for (size_t k = 0; k + 1 < n_t; k++) {
			/* A series that went back (it was pruned whole) gives nothing, not less. */
			int64_t uj = llround(c[k + 1]) - llround(c[k]);
			if (uj <= 0)
				continue;
			rows[n++] = (struct store_user_row){
			    .t = (int64_t)floor(t[k]), .uid = uids[u], .energy_uj = uj};
		}
	}
	return n;
}

static bool buffers(struct store_users *u)
{
	if (!u->uids)
		u->uids = malloc(STORE_USERS_MAX * sizeof(*u->uids));
	if (!u->cum_uj)
		u->cum_uj = malloc((size_t)STORE_USERS_MAX * (STORE_USERS_PIECES_MAX + 1) *
		                   sizeof(*u->cum_uj));
	return u->uids && u->cum_uj;
}

double store_users_take(struct store_users *u, double record_users_to)
{
	double oldest, covered;
	u->n_rows = 0;
	u->take_to = 0;
	if (!u->span || !u->span(u->ctx, &oldest, &covered))
		return 0;
	if (!u->started) {
		u->written_to = record_users_to > oldest ? record_users_to : oldest;
		u->started = true;
	}
	if (u->written_to < oldest) {
		if (!u->warned_lost)
			log_warn(
			    "store: the per-user energy from %.3f to %.3f was not written before "
			    "attribution forgot it: lost to the record",
			    u->written_to, oldest);
		u->warned_lost = true;
		u->written_to = oldest;
	}
	double t[STORE_USERS_PIECES_MAX + 1];
	size_t n_t = store_users_cut(u->written_to, covered, t, STORE_USERS_PIECES_MAX + 1);
	if (n_t < 2 || !buffers(u))
		return 0;
	size_t n = u->energy_at(u->ctx, t, n_t, u->uids, u->cum_uj, STORE_USERS_MAX);
	if (n > STORE_USERS_MAX) {
		u->users_left_out += n - STORE_USERS_MAX;
		if (!u->warned_many)
			log_warn(
			    "store: %zu users have attributed energy: the record keeps the first "
			    "%d of them, the others' energy is not written (logged once)",
			    n, STORE_USERS_MAX);
		u->warned_many = true;
		n = STORE_USERS_MAX;
	}
	size_t need = n * (n_t - 1);
	if (need > u->cap_rows) {
		struct store_user_row *r = realloc(u->rows, need * sizeof(*r));
		if (!r)
			return 0; /* tried again at the next flush */
		u->rows = r;
		u->cap_rows = need;
	}
	u->n_rows = store_users_rows(t, n_t, u->uids, u->cum_uj, n, u->rows);
	u->take_to = t[n_t - 1];
	return u->take_to;
}

void store_users_done(struct store_users *u)
{
	if (u->take_to > u->written_to)
		u->written_to = u->take_to;
	u->take_to = 0;
	u->n_rows = 0;
}
