/*
 * store-fill: writes synthetic energy data into a long-term record through the store's own code
 * path (history ring -> store_collect -> store_flush -> SQLite), as energyd would have written
 * it had it run then. For tests and the storage benchmark.
 *
 *   store-fill DB START SECONDS [GAP_FROM GAP_TO] [CHANNELS]
 *
 * Samples every second from START for SECONDS seconds. CHANNELS (default 2) channels named
 * rapl:package-N; channel c draws 10 + c + (h % 24) watts during hour h = floor(t / 3600) (whole
 * watts held for whole seconds: every second's energy is an exact number of microjoules). The
 * host total is the sum of the channels. With GAP_FROM GAP_TO, nothing is sampled in
 * [GAP_FROM, GAP_TO): the daemon was down, and a new run (counters from 0) starts at GAP_TO.
 * Prints the energy written per channel and host in microjoules, one "name uj" per line.
 */
#define _GNU_SOURCE
#include "energy.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILL_CHUNK 3600 /* samples per collect and flush, as if the store wrote every hour */

static int fill_run(const char *db, int n, int64_t from, int64_t to, uint64_t *written)
{
	struct store_options o;
	store_options_defaults(&o);
	snprintf(o.path, sizeof(o.path), "%s", db);
	const char *names[STORE_SERIES_MAX];
	bool measured[STORE_SERIES_MAX];
	char ids[STORE_SERIES_MAX][CHANNEL_ID_MAX];
	char coverage[STORE_COVERAGE_MAX] = "";
	for (int c = 0; c < n; c++) {
		snprintf(ids[c], sizeof(ids[c]), "rapl:package-%d", c);
		names[c] = ids[c];
		measured[c] = true;
		snprintf(coverage + strlen(coverage), sizeof(coverage) - strlen(coverage), "%s%s",
		         c ? "," : "", ids[c]);
	}
	names[n] = STORE_HOST_SERIES;
	measured[n] = true;
	static struct store st;
	struct history h;
	if (store_init(&st, &o, names, measured, n + 1, coverage) < 0 ||
	    history_init(&h, n, FILL_CHUNK + 2) < 0)
		return -1;
	uint64_t counter[CHANNELS_MAX] = {0}, host = 0;
	int rc = 0;
	for (int64_t t = from; t <= to; t++) {
		if (t > from) {
			int64_t hour = (t - 1) / 3600; /* the power during the second that ended */
			host = 0;
			for (int c = 0; c < n; c++) {
				counter[c] += (uint64_t)(10 + c + hour % 24) * 1000000u;
				host += counter[c];
			}
		}
		history_append(&h, (double)t, counter, host);
		if ((t - from) % FILL_CHUNK == 0 || t == to) {
			store_collect(&st, &h);
			if ((rc = store_flush(&st, energy_wall_time())) < 0) {
				fprintf(stderr, "store-fill: %s\n", st.info.error);
				break;
			}
		}
	}
	/* Prune as energyd does, relative to the wall clock. */
	char err[STORE_ERROR_MAX];
	if (rc == 0 && st.db_open &&
	    store_db_prune(&st.db, energy_wall_time(), o.keep_s, err, sizeof(err)) < 0) {
		fprintf(stderr, "store-fill: %s\n", err);
		rc = -1;
	}
	for (int c = 0; c < n; c++)
		written[c] += counter[c];
	written[n] += host;
	store_free(&st);
	history_free(&h);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5 && argc != 6 && argc != 7) {
		fprintf(stderr,
		        "usage: store-fill DB START SECONDS [GAP_FROM GAP_TO] [CHANNELS]\n");
		return 2;
	}
	int64_t start = atoll(argv[2]), end = start + atoll(argv[3]);
	int64_t gap_from = end, gap_to = end;
	if (argc >= 6) {
		gap_from = atoll(argv[4]);
		gap_to = atoll(argv[5]);
	}
	int n = argc == 5 ? atoi(argv[4]) : argc == 7 ? atoi(argv[6]) : 2;
	if (n < 1 || n >= CHANNELS_MAX || gap_from < start || gap_to < gap_from || gap_to > end) {
		fprintf(stderr, "store-fill: bad arguments\n");
		return 2;
	}
	uint64_t written[STORE_SERIES_MAX] = {0};
	if (fill_run(argv[1], n, start, gap_from, written) < 0)
		return 1;
	if (gap_to < end && fill_run(argv[1], n, gap_to, end, written) < 0)
		return 1;
	for (int c = 0; c < n; c++)
		printf("rapl:package-%d %llu\n", c, (unsigned long long)written[c]);
	printf("host %llu\n", (unsigned long long)written[n]);
	return 0;
}
