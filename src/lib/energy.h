/*
 * libenergy: the client side of energyd's HTTP API and helpers shared by energyd and its clients.
 *
 * Units: energy in microjoules (uint64) or joules (double), power in watts, times in Unix
 * seconds (double, wall clock) unless a name says otherwise (`_ns` = nanoseconds on the monotonic
 * clock). Functions return 0 or a negative errno; they never print. Strings returned through
 * `char **` are allocated with malloc and owned by the caller. A struct energy_client is not
 * thread-safe: use one per thread.
 */
#ifndef ENERGY_H
#define ENERGY_H

#include "energy_util.h" /* counters, parsing, time, small files: shared with energyd */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ENERGY_VERSION "0.1.0"

/* Where energyd listens when run by root, and the per-user fallback pattern. */
#define ENERGY_SYSTEM_SOCKET "/run/energyd/energyd.sock"

/* ---- client -------------------------------------------------------------------------------- */

struct energy_client;

/*
 * Connect to energyd. address is "unix:PATH", a plain path, "HOST:PORT" (loopback TCP), or NULL
 * for the default: $ENERGYD_SOCKET, then ENERGY_SYSTEM_SOCKET, then the user's socket
 * (energy_user_socket_path). Each request opens its own connection, so a client outlives daemon
 * restarts.
 */
int energy_client_open(const char *address, struct energy_client **out);
void energy_client_close(struct energy_client *c);
/* The address the client resolved to (valid while the client lives). */
const char *energy_client_address(const struct energy_client *c);

/*
 * One HTTP request. On success *status is the HTTP status and *body the response body
 * (NUL-terminated, caller frees). Transport failures return a negative errno.
 */
int energy_client_request(struct energy_client *c, const char *method, const char *path,
                          const char *body, int *status, char **response);

/* True when a daemon answers GET /api/v1/info with 200. */
bool energy_client_ping(struct energy_client *c);

/* The per-user socket: $XDG_RUNTIME_DIR/energyd.sock, else /tmp/energyd-UID.sock. */
int energy_user_socket_path(char *buf, size_t len);

/* ---- readings ---------------------------------------------------------------------------- */

#define ENERGY_CHANNELS_MAX 64
#define ENERGY_ID_MAX       64

/* One channel's figures. In a snapshot from energy_now(): joules since energyd started and the
 * mean power over the last second. From energy_between() and the meter: joules over the interval
 * and its mean power. watts is NAN when unknown; joules NAN when the channel had no readable
 * sample near an end of the interval. */
struct energy_channel_reading {
	char id[ENERGY_ID_MAX]; /* "rapl:package-0", "model:cpu", ... */
	double joules;
	double watts;
	bool measured; /* false: an estimate (the CPU model) */
};

/* The figures of every channel and of the host total (the whole machine, never counting a
 * channel twice; `host_coverage` lists the channels it is made of). */
struct energy_snapshot {
	double time;         /* energy_now(): the newest sample; energy_between(): `to` */
	double from;         /* energy_between(): the interval answered (may be clamped) */
	double resolution_s; /* how far apart the samples around the interval's ends were */
	int n_channels;
	struct energy_channel_reading channels[ENERGY_CHANNELS_MAX];
	double host_joules;
	double host_watts;
	bool host_measured;      /* every channel of the host total is a measurement */
	char host_coverage[512]; /* channel ids joined with " + " */
	/* Grams CO2eq and cost of host_joules (energyd's docs/carbon.md), always estimates: the
	 * energy times the carbon intensity (and price) that held at each moment. NAN when unknown
	 * (no intensity obtained yet, no price configured, or no energyd). */
	double host_emissions_g;
	double host_cost;
	char currency[16];                 /* of host_cost; "" without a price */
	char carbon_provider[32];          /* where the intensity comes from; "" when unknown */
	char carbon_zone[64];              /* the provider's zone; "" when it has none */
	double carbon_intensity_g_per_kwh; /* the value in force at the answer's time */
};

/* GET /api/v1/now into *out. */
int energy_now(struct energy_client *c, struct energy_snapshot *out);
/* Energy between two Unix times (GET /api/v1/energy). Waits (at most about two seconds) until
 * energyd has a sample at or after t1, so the interval's end is interpolated, not cut short.
 * -EPROTO for an answer that is not what the API documents, -ERANGE when energyd holds no
 * samples of the interval; another HTTP error gives -EIO. */
int energy_between(struct energy_client *c, double t0, double t1, struct energy_snapshot *out);
/* The reading of channel id in a snapshot, or NULL. */
const struct energy_channel_reading *energy_snapshot_channel(const struct energy_snapshot *s,
                                                             const char *id);

/* ---- meter ------------------------------------------------------------------------------- */

/*
 * A meter cuts time into tagged segments: start("load") ... record("train") ... stop(). It only
 * notes times while running, so it costs the measured code nothing; stop() asks energyd for the
 * energy of every segment. After stop() the trace is read with energy_meter_count() and
 * energy_meter_sample(); start() again begins a new trace. A meter uses its client from one
 * thread at a time; it does not own the client.
 */
struct energy_meter;

struct energy_sample {
	char tag[ENERGY_ID_MAX];       /* the name given to start() or record() */
	double timestamp;              /* Unix seconds at the segment's start */
	double duration_s;             /* measured on the monotonic clock */
	struct energy_snapshot energy; /* joules and mean watts per channel and host */
};

int energy_meter_new(struct energy_client *c, struct energy_meter **out);
void energy_meter_free(struct energy_meter *m);
/* Begin a trace with a first segment named tag. -EALREADY when running. */
int energy_meter_start(struct energy_meter *m, const char *tag);
/* End the current segment and begin the next one, named tag. -EINVAL when not running. */
int energy_meter_record(struct energy_meter *m, const char *tag);
/* End the current segment and fetch the energy of every segment of the trace. */
int energy_meter_stop(struct energy_meter *m);
size_t energy_meter_count(const struct energy_meter *m);
/* Sample i of the trace (0 <= i < count), owned by the meter; NULL when out of range. */
const struct energy_sample *energy_meter_sample(const struct energy_meter *m, size_t i);

#ifdef __cplusplus
}
#endif

#endif
