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
 * none is measured, the CPU model) plus dram plus discrete GPUs. Core and uncore are inside their
 * package and never added. Returns the number of channels in the coverage.
 */
int host_select(const struct channel *ch, int n, struct host_coverage *cov);

#endif
