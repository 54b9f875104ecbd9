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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ENERGY_VERSION "0.1.0"

/* Where energyd listens when run by root, and the per-user fallback pattern. */
#define ENERGY_SYSTEM_SOCKET "/run/energyd/energyd.sock"

/* ---- counters ---------------------------------------------------------------------------- */

/*
 * The energy a wrapping hardware counter gained between two readings. max_uj is the largest
 * value the counter shows before it wraps to 0 (powercap's max_energy_range_uj); 0 means a
 * 64-bit counter that does not wrap in practice. A reading above max_uj is garbage: -ERANGE.
 * When now < prev the counter wrapped once (callers poll fast enough that two wraps cannot
 * happen between readings): delta = (max_uj - prev) + now + 1.
 */
int energy_counter_delta(uint64_t prev, uint64_t now, uint64_t max_uj, uint64_t *delta);

/* ---- parsing ------------------------------------------------------------------------------- */

/* Whole string (optional surrounding whitespace) as a decimal uint64; -EINVAL or -ERANGE. */
int energy_parse_u64(const char *s, uint64_t *out);
/* Whole string as a finite double; -EINVAL for garbage, NaN or infinity, -ERANGE on overflow. */
int energy_parse_double(const char *s, double *out);
/* Unix seconds ("1700000000.5") or ISO 8601 ("2026-11-22T10:00:00Z", "2026-11-22 10:00:00+01:00",
 * "2026-11-22"; no zone means UTC). */
int energy_parse_time(const char *s, double *out);
/* Read a small sysfs-style file through an open descriptor with pread at offset 0 and parse it as
 * a uint64. -EIO when empty, -EINVAL/-ERANGE for garbage, or the read's -errno. */
int energy_pread_u64(int fd, uint64_t *out);

/* ---- time ---------------------------------------------------------------------------------- */

uint64_t energy_monotonic_ns(void);
double energy_wall_time(void);

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

#ifdef __cplusplus
}
#endif

#endif
