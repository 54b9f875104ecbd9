/*
 * Cumulative attributed energy over time, one series per key ("pid:42", "user:1000",
 * "cgroup:/user.slice", "kernel:3", "active:rapl:package-0"). A series holds points (t, value)
 * of a counter that only grows; a point is added only when the value changes, preceded by a
 * point at the previous update time holding the old value, so that linear interpolation between
 * points is right (the change happened in the last interval, not spread since the last change).
 * Points older than the horizon are pruned, keeping one before it as the base. Not thread-safe:
 * the attribution lock guards it.
 */
#ifndef ENERGY_SERIES_H
#define ENERGY_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct series {
	char *key;    /* the scope: "pid:N", "user:U", "cgroup:/P", "kernel:N" (a watch) */
	uint64_t tag; /* owner identity (a process's start time): a new owner resets the series */
	size_t n, cap;
	double *t, *v; /* times and cumulative microjoules, t increasing */
};

struct series_store {
	struct series **items; /* in the order created */
	size_t n, cap;
	size_t *index; /* open-addressing hash of items (SIZE_MAX = empty) */
	size_t index_cap;
};

void series_store_init(struct series_store *st);
void series_store_free(struct series_store *st);
/* The series of key, or NULL; with create, a new empty one (NULL only when out of memory). */
struct series *series_get(struct series_store *st, const char *key, bool create);
/*
 * The counter went from value_prev at t_prev (the previous update of whatever feeds it, not
 * necessarily a point of this series) to value at t. Adds points only when it changed.
 * -ENOMEM on allocation failure (the series keeps its old points).
 */
int series_update(struct series *s, double t_prev, double value_prev, double t, double value);
/* Forget the points of a series (a new owner: a reused pid). */
void series_reset(struct series *s, uint64_t tag);
/* Value at t, interpolated linearly; before the first point the first value, after the last
 * the last value. -ENODATA for an empty series. */
int series_value_at(const struct series *s, double t, double *value);
/* Drop points before oldest (keeping the last one before it), and series whose newest point is
 * older than oldest. */
void series_prune(struct series_store *st, double oldest);
/* Number of points held in all series (for the cost report). */
size_t series_points(const struct series_store *st);

#endif
