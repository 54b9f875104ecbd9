/*
 * InfluxDB output (docs/energyd.md#influxdb, docs/fleet.md#influxdb): every interval_s, the
 * host total, each channel and each user's attributed energy as line protocol, written by its
 * own thread over HTTP (libcurl) to InfluxDB 1.x (/write?db=) or 2.x (/api/v2/write?bucket=&org=
 * with a token). The thread builds each batch from the sampler's state under its lock (like an
 * API answer) and sends without it, so that a slow or absent server never delays a sample.
 * Batches wait in a bounded queue (memory_s of data); when it is full the oldest batch is
 * dropped and counted. Failed writes are retried with a doubling backoff (up to 60 s).
 */
#ifndef ENERGY_INFLUX_H
#define ENERGY_INFLUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define INFLUX_URL_MAX   512
#define INFLUX_NAME_MAX  64
#define INFLUX_TOKEN_MAX 1024

/* The [influxdb] section; url "" = off. */
struct influx_config {
	char url[INFLUX_URL_MAX]; /* http://127.0.0.1:8086 */
	char database[INFLUX_NAME_MAX];
	char bucket[INFLUX_NAME_MAX];
	char org[INFLUX_NAME_MAX];
	char token_file[INFLUX_URL_MAX];
	double interval_s; /* one batch per interval (default 10) */
	double memory_s;   /* data held while the server is away (default 3600) */
};

/* Defaults for the keys that have one. */
void influx_config_defaults(struct influx_config *c);
/* Checks between keys: a url needs database, or bucket and org; 0 or -1 with err. */
int influx_config_check(const struct influx_config *c, char *err, size_t errlen);

struct daemon;
struct influx;

/* Counters for /metrics, taken under the module's lock. */
struct influx_stats {
	/* Since start; dropped: given up (the queue was full, or the server refused them). */
	uint64_t batches_written, batches_dropped, write_failures;
	size_t batches_pending; /* queued, not yet written */
	double last_success;    /* Unix seconds of the last good write, 0 before */
	char error[256];        /* the last failure, "" after a success */
};

/* Read the token file (before the privilege drop) and set up; *out NULL when url is "".
 * 0, or -1 with err filled. */
int influx_open(const struct influx_config *cfg, struct influx **out, char *err, size_t errlen);
/* Start the thread on the daemon's state (after the sampler and attribution exist). */
int influx_start(struct influx *ix, struct daemon *d);
/* Stop the thread (one last attempt to write what is queued, bounded by the timeout), free. */
void influx_close(struct influx *ix);
void influx_get_stats(struct influx *ix, struct influx_stats *out);

/* Line protocol: write s as a tag value (',', '=', ' ' and '\' escaped, newlines as spaces,
 * bytes that are not UTF-8 as U+FFFD). Exposed for the unit tests. */
void influx_put_tag(FILE *f, const char *s);

#endif
