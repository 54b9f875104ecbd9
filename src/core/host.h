/* The host total: which channels add up to the whole machine without counting anything twice. */
#ifndef ENERGY_HOST_H
#define ENERGY_HOST_H

#include "source.h"

struct host_coverage {
	int idx[CHANNELS_MAX]; /* indexes into the channel set */
	int n;                 /* channels in idx */
	bool measured;         /* every channel of the coverage is measured */
	char rule[64];         /* which rule chose it, for `sources` */
};

/*
 * DESIGN.md §2: a wall meter declared as host meter; else psys; else the CPU packages (or, where
 * none is measured, the CPU model) plus dram plus discrete GPUs. Core and uncore are inside
 * their package and never added; the model of the rest of the machine (CHANNEL_REST) is a
 * channel of its own, never in the total. Returns the number of channels in the coverage.
 */
int host_select(const struct channel *ch, int n, struct host_coverage *cov);

/*
 * The measured channels that the last rule adds up (CPU packages, dram, discrete GPUs): what a
 * wall meter for the whole machine holds besides the rest of the machine (docs/model.md,
 * "The rest of the machine"). Fills at most max indexes into ch, in order; returns their
 * number, or -ENOSPC when there are more than max.
 */
int host_measured_parts(const struct channel *ch, int n, int *idx, int max);

#endif
