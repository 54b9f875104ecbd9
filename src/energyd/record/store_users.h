/*
 * Per-user energy in the long-term record (user_energy_1m / user_energy_1h, store_db.h): at
 * each flush the store asks a hook (given by the daemon: the record does not know attribution)
 * how far attribution has covered and every user's cumulative attributed energy at the times it
 * needs, and writes the energy of each user between the end of what it wrote before and what
 * attribution covers now, cut at minute boundaries, in the same transaction as the energy rows.
 *
 * The cumulative series interpolate, so the value at a minute boundary is exact; each value is
 * rounded to whole microjoules and a piece's energy is the difference of two rounded values,
 * so the pieces of a run add up to the user's counter at the end of the last piece. A user new
 * since the last flush starts from 0 at their first point (attribution's series begin at 0).
 * Without a hook, or while the hook says there is nothing (attribution off, no scan yet), no
 * user row is written and nothing fails.
 *
 * Bounded: at most STORE_USERS_MAX users per flush (the others' energy of that flush is not
 * recorded: counted and logged once), and at most STORE_USERS_PIECES_MAX minute pieces per
 * flush (a longer backlog continues at the next flush). When the store could not write for
 * longer than attribution keeps its series (its history), the part older than that is lost to
 * the record (logged), never invented.
 *
 * Not thread-safe: it belongs to the store's thread; the hook takes attribution's lock itself.
 */
#ifndef ENERGY_STORE_USERS_H
#define ENERGY_STORE_USERS_H

#include "store_db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_USERS_MAX        4096
#define STORE_USERS_PIECES_MAX 16

/*
 * span: attribution's per-user series are exact over [*oldest, *covered_to] (covered_to: the
 * last scan); false while there is nothing (attribution off, not two scans yet).
 * energy_at: for each user known (at most max): uids[u], and cum_uj[u * n_t + k] = the user's
 * cumulative attributed energy at t[k] in microjoules (0 before the user's first point).
 * Returns how many users there are (may exceed max: only max are filled).
 */
typedef bool (*store_users_span_fn)(void *ctx, double *oldest, double *covered_to);
typedef size_t (*store_users_energy_fn)(void *ctx, const double *t, size_t n_t, uint32_t *uids,
                                        double *cum_uj, size_t max);

struct store_users {
	store_users_span_fn span; /* the hooks into attribution, and their ctx */
	store_users_energy_fn energy_at;
	void *ctx;
	bool started;      /* written_to is set */
	double written_to; /* the per-user rows are written up to here */
	/* The rows of the flush in progress, up to take_to (0: none). */
	struct store_user_row *rows;
	size_t n_rows, cap_rows;
	double take_to;                    /* the flush in progress covers up to here */
	uint32_t *uids;                    /* scratch for energy_at: STORE_USERS_MAX uids */
	double *cum_uj;                    /* STORE_USERS_MAX x (STORE_USERS_PIECES_MAX + 1) */
	unsigned long long users_left_out; /* users not written, over all flushes */
	bool warned_many, warned_lost;
};

/* Set the hook (before the store starts). */
void store_users_set(struct store_users *u, store_users_span_fn span,
                     store_users_energy_fn energy_at, void *ctx);
void store_users_free(struct store_users *u);

/*
 * The times that cut [from, to] at minute boundaries: t[0] = from, every multiple of 60 s
 * strictly inside, then to; at most max times (a longer span stops at the last boundary that
 * fits, or at to when it fits). Returns the number of times (0 when to <= from).
 */
size_t store_users_cut(double from, double to, double *t, size_t max);

/*
 * The rows of pieces [t[k], t[k+1]] (k < n_t - 1) for n_users users whose cumulative energy at
 * t[k] is cum_uj[u * n_t + k]: one row per user and piece whose energy (the difference of the
 * rounded values) is positive, at floor(t[k]). rows holds n_users x (n_t - 1). Returns how many.
 */
size_t store_users_rows(const double *t, size_t n_t, const uint32_t *uids, const double *cum_uj,
                        size_t n_users, struct store_user_row *rows);

/*
 * Prepare the rows of this flush: from written_to (at the first call: the oldest time the hook
 * knows, or record_users_to when the record already goes further) to what attribution covers.
 * Returns the end of the rows (their users_recorded_to), or 0 when there is nothing to write.
 */
double store_users_take(struct store_users *u, double record_users_to);
/* The rows prepared were committed. */
void store_users_done(struct store_users *u);

#endif
