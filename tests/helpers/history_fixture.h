/*
 * A daemon with nothing but channels and a filled history, as the API's history answer sees it,
 * and that answer as energyd built it before the streaming writer (a jansson tree dumped with
 * api_reply's flags). The unit test of the writer compares the two byte for byte; the
 * benchmark bench/history_json_cost measures both over the same samples.
 */
#ifndef ENERGY_HISTORY_FIXTURE_H
#define ENERGY_HISTORY_FIXTURE_H

#include "daemon.h"

#include <stddef.h>

struct history_fixture {
	struct channel_set set;
	struct sampler sampler;
	struct daemon d;
};

/*
 * Four RAPL channels (package-0 with core-0 and uncore-0 inside it, dram-0; the host total is
 * package + dram) sampled every interval_s for n samples, counters advanced by a fixed
 * pseudo-random power profile around 30 W, times in Unix seconds with microsecond jitter. With
 * gaps: a few samples where one channel failed to read. NULL when out of memory.
 */
struct history_fixture *history_fixture_new(size_t n, double interval_s);
void history_fixture_free(struct history_fixture *f);

/* The history answer built the way api_history_route built it before jsonw: malloc'd text. */
char *history_fixture_jansson(struct daemon *d, double seconds, double points);

#endif
