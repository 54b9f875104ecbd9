/*
 * The per-tick snapshot of the sampling engine and the interval between two of them: what
 * `energy run` reports when it samples in-process. A snapshot is the channels' cumulative
 * counters and the host total's at one tick; an interval is their difference, in joules and
 * mean watts over the interval's duration, with whether each figure is measured and which
 * channels the host total covers.
 *
 * Thread safety: snapshot_take() takes a tick and the sampler's lock itself; the rest is pure.
 */
#ifndef ENERGY_SNAPSHOT_H
#define ENERGY_SNAPSHOT_H

#include "sampler.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snapshot {
	double t;                  /* the tick's time (the sampler's clock, Unix seconds) */
	int n;                     /* channels copied */
	uint64_t uj[CHANNELS_MAX]; /* each channel's cumulative counter (energy_uj) */
	uint64_t host_uj;          /* the host total's */
};

/* Read every channel now (a tick) and copy the counters. */
void snapshot_take(struct sampler *s, struct snapshot *out);

struct snapshot_channel {
	const char *id; /* the channel's id (owned by the channel set) */
	double joules;  /* energy over the interval */
	double watts;   /* joules / duration, NAN for an empty interval */
	bool measured;  /* false for a model's estimate */
};

struct snapshot_interval {
	double duration_s; /* as given: the caller's own clock of the interval */
	int n;
	struct snapshot_channel ch[CHANNELS_MAX];
	double host_joules, host_watts; /* the host total over the interval, and its mean power */
	bool host_measured;             /* every channel of the host total is a measurement */
	char coverage[512];             /* the host total's channel ids joined with " + " */
};

/* The energy between snapshots a and b of sampler s, and its mean power over duration_s. */
void snapshot_interval(const struct sampler *s, const struct snapshot *a, const struct snapshot *b,
                       double duration_s, struct snapshot_interval *out);

/* The ids of the channels the host total covers, joined with sep ("" when none). */
void snapshot_coverage_text(const struct sampler *s, const char *sep, char *buf, size_t len);

#endif
