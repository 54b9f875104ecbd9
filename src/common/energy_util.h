/*
 * Helpers shared by energyd, the CLI and libenergy's clients (src/common/util.c and stats.c,
 * exported by libenergy and included by energy.h): counter arithmetic, strict number and time
 * parsing, the statistics of repeated measurements, clocks, and the one reader of small files
 * (sysfs attributes, /proc entries).
 *
 * Same conventions as energy.h: functions return 0 (or a length) or a negative errno and never
 * print. They keep no state and are thread-safe.
 */
#ifndef ENERGY_UTIL_H
#define ENERGY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

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

/* ---- statistics ---------------------------------------------------------------------------- */

/* Mean power of `joules` over `seconds`; NAN when either is not finite or seconds <= 0. */
double energy_mean_watts(double joules, double seconds);
/* The energy above an idle baseline: joules - idle_watts x seconds (negative when the interval
 * drew less than the baseline). */
double energy_above_idle(double joules, double idle_watts, double seconds);

/* Mean, sample standard deviation (n - 1) and the 95 % confidence interval of the mean
 * (mean +- t(0.975, n - 1) x sd / sqrt(n)) of the finite values among v[0..n-1]; n counts those.
 * sd, rel_sd (sd / |mean|) and the interval are NAN for fewer than two values, mean for none. */
struct energy_stats {
	size_t n;
	double mean, sd, rel_sd, ci95_low, ci95_high;
};
int energy_stats(const double *v, size_t n, struct energy_stats *out);

/* ---- time ---------------------------------------------------------------------------------- */

uint64_t energy_monotonic_ns(void);
double energy_wall_time(void);

/* ---- small files ------------------------------------------------------------------------- */

/*
 * Read a small file through an open descriptor with pread at offset 0 (a sysfs attribute or a
 * /proc entry read again every tick) into buf, NUL-terminated: the number of bytes read, -EIO
 * when the file is empty, or the read's -errno. A file longer than len - 1 is cut there.
 */
int energy_pread_text(int fd, char *buf, size_t len);
/*
 * Open path (relative to dirfd, or AT_FDCWD), read it like energy_pread_text and close it. An
 * empty file is -EIO unless allow_empty, when it reads as "" (length 0).
 */
int energy_read_text_at(int dirfd, const char *path, char *buf, size_t len, bool allow_empty);

#ifdef __cplusplus
}
#endif

#endif
