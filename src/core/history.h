/*
 * The short-term history: a ring of samples at the full sample rate. Each sample holds the time
 * (Unix seconds on a clock that never jumps: start wall time + monotonic elapsed) and every
 * channel's cumulative counter in microjoules, plus the host total's. A series that could not be
 * read at a tick holds HISTORY_INVALID there; queries interpolate between the valid samples
 * around it. Not thread-safe: the sampler's lock guards it.
 */
#ifndef ENERGY_HISTORY_H
#define ENERGY_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HISTORY_INVALID UINT64_MAX
#define HISTORY_HOST    (-1) /* series index of the host total */

#define HISTORY_HOST_PARTS_MAX 64

struct history {
	int n_channels;                         /* values per sample, one per channel */
	int host_parts[HISTORY_HOST_PARTS_MAX]; /* channels the host total adds up (for watts) */
	int n_host_parts;
	size_t capacity;   /* samples the ring holds before it overwrites the oldest */
	size_t head;       /* next slot to write */
	size_t count;      /* samples held */
	double *t;         /* each sample's time (the sampler's clock, Unix seconds) */
	uint64_t *host;    /* the host total's counter per sample, or HISTORY_INVALID */
	uint64_t *channel; /* capacity x n_channels counters (uJ), or HISTORY_INVALID */
};

int history_init(struct history *h, int n_channels, size_t capacity);
void history_free(struct history *h);
void history_append(struct history *h, double t, const uint64_t *channel_uj, uint64_t host_uj);

/* Sample i counted from the oldest (0) to the newest (count - 1). */
double history_time(const struct history *h, size_t i);
uint64_t history_value(const struct history *h, size_t i, int series);

/*
 * The cumulative counter of a series at time t, interpolated linearly between the nearest valid
 * samples around t; *resolution_s is their distance (0 when t falls on a sample). -ERANGE when t
 * is outside the samples held, -ENODATA when the series has no valid sample near t.
 */
int history_value_at(const struct history *h, int series, double t, double *uj,
                     double *resolution_s);

/*
 * Energy in joules of every channel (joules[n_channels]) and of the host between t0 and t1.
 * t0 and t1 are clamped to the samples held and the clamped interval is returned in
 * *from / *to. Series without data near an end get NaN. -ENODATA when fewer than two samples
 * are held, -EINVAL when t0 > t1.
 */
int history_energy_between(const struct history *h, double t0, double t1, double *joules,
                           double *host_joules, double *from, double *to, double *resolution_s);

/*
 * The host's joules between t0 and t1, each end interpolated between the samples around it
 * (history_value_at): 0, or its error when an end lies outside the samples or in a gap.
 */
int history_host_joules_between(const struct history *h, double t0, double t1, double *joules);

/* The channels whose sum is the host series: its watts are then the sum of theirs, each over
 * its own sensor's window (history_watts_window). */
void history_set_host_parts(struct history *h, const int *channels, int n);

/*
 * The power shown for sample i (`now`, `history`, `stream`, `/metrics`): the mean power over a
 * window between two counter updates that covers sample i (or, live, ends at the last update
 * before it) and spans at least min_s seconds (10 % less for tick jitter) and at least the
 * sensor's update period.
 *
 * The update period is measured: the median time between the counter's last changes as
 * sampled (a RAPL counter that moves every millisecond changes at every sample, so its period
 * is the sample interval; a sensor that refreshes every 50 ms changes every few samples at a
 * 10 ms interval). A late sample therefore never divides a stretch of energy by a short
 * interval. A counter that did not move during an interval in which it usually moves is "no
 * update yet": when samples after i show the catch-up, i's interval joins it (the window ends
 * at the catch-up); live, the window ends at the last regular update. An update followed by
 * such a pause does not bound a window (it may be partial: a counter written just before its
 * driver stalled). A pause longer than HISTORY_HOLD_PERIODS update periods (and at least
 * HISTORY_HOLD_MIN_S) is a counter that really stands still: its samples bound windows, which
 * read 0 W. Energy figures are unaffected: they come from the counters, not from these watts.
 *
 * Returns 0 or -ENODATA (sample i invalid, too few samples, or a counter that has not updated
 * at its usual cadence since the history began). win, when not NULL, receives the window's
 * bounds and the update period used.
 */
#define HISTORY_HOLD_PERIODS 4
#define HISTORY_HOLD_MIN_S   0.5
struct history_window {
	double from, to;        /* the window's sample times */
	double update_period_s; /* the sensor's measured update period */
};
int history_watts_window(const struct history *h, int series, size_t i, double min_s, double *watts,
                         struct history_window *win);

/*
 * history_watts_window's figure (min_s, no window bounds) for the count samples last - (count - 1
 * - k) * step, k < count, of one series (the host total too: the sum of its parts, in their
 * order), into watts[k], with ok[k] false where history_watts_window returns an error. The
 * same figures to the bit, at a fraction of the cost for many points: each sample is read once.
 * Returns 0, -EINVAL (points outside the history), or -ENOMEM.
 */
int history_watts_points(const struct history *h, int series, size_t last, size_t step,
                         size_t count, double min_s, double *watts, bool *ok);

/* sum[k] += watts[k] and ok[k] &= watts_ok[k] for k < count: a host part's figures added in. */
void history_points_add(double *sum, bool *ok, const double *watts, const bool *watts_ok,
                        size_t count);

/*
 * A private copy (dst, initialised here; history_free it) of src's samples from index first to
 * the newest, with the older ones that history_watts_window looks at for them with a window of
 * at least min_s: on dst, history_watts_window and history_watts_points give for sample i -
 * *shift what they give on src for every sample i >= first. The caller holds src's lock while
 * copying and none after: an answer of many points does not hold up the sampler. Needs the
 * times not to decrease (the sampler's clock). 0, -EINVAL (first not held) or -ENOMEM.
 */
int history_copy_recent(struct history *dst, const struct history *src, size_t first, double min_s,
                        size_t *shift);

#endif
