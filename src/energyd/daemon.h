/*
 * The daemon's parts, filled once by main() before any thread starts and read-only after: the
 * modules that serve requests (the API routes, the InfluxDB writer, /metrics) reach the sampler,
 * the record, attribution and carbon through it. Each part has its own lock (docs/architecture.md
 * lists them and their order); this struct has none.
 */
#ifndef ENERGY_DAEMON_H
#define ENERGY_DAEMON_H

#include "sampler.h"
#include "source.h"

#include <sys/types.h>

#define DAEMON_FAMILIES_MAX 32
#define DAEMON_LISTEN_MAX   8

struct attrib;
struct calib;
struct carbon;
struct influx;
struct store;

struct daemon {
	struct sampler *sampler; /* channels' counters and the in-memory history (core) */
	struct channel_set *set; /* the channels, in the sampler's order */
	struct attrib *attrib;   /* energy per process, cgroup, user and watch (attrib.h) */
	struct store *store;     /* the long-term record (store.h), or NULL */
	struct carbon *carbon;   /* intensity, emissions and cost (carbon.h), or NULL */
	struct influx *influx;   /* InfluxDB output (influx.h), or NULL */
	struct calib *calib;     /* the CPU model's calibration (calib.h), or NULL */
	struct family_report families[DAEMON_FAMILIES_MAX]; /* what each sensor family found */
	int n_families;
	char hostname[256];    /* for /info and the exports */
	uid_t uid;             /* the user energyd runs as after the drop */
	char user[64];         /* that user's name */
	char privileges[256];  /* what happened to root, for info */
	char state_dir[512];   /* where the record and the watches live */
	double min_interval_s; /* the shortest sampling interval a client may ask for */
	double history_s;      /* seconds of full-rate history held in memory */
	const char *listen[DAEMON_LISTEN_MAX]; /* the sockets energyd listens on, for info */
	int n_listen;
};

#endif
