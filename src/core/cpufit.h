/*
 * The CPU model's calibration: a least-squares fit of measured power against CPU utilisation,
 *
 *   watts = idle_watts + (max_watts - idle_watts) * utilisation
 *
 * over windows of at least CPUFIT_WINDOW_MIN_S seconds (each window: the mean power a measured
 * channel reported and the busy share of /proc/stat over the same interval). Only running sums
 * are kept, so the fit costs the same after a day as after a minute. Pure arithmetic, no
 * locking: the caller guards a cpufit_sums (docs/model.md, "Calibration").
 */
#ifndef ENERGY_CPUFIT_H
#define ENERGY_CPUFIT_H

#include <stddef.h>

#define CPUFIT_WINDOW_MIN_S 1.0   /* never a fit per sample tick: windows this long at least */
#define CPUFIT_WINDOW_MAX_S 60.0  /* a longer gap between points starts over (a stall) */
#define CPUFIT_MIN_WINDOWS  20    /* windows before a fit counts */
#define CPUFIT_MIN_SPREAD   0.2   /* and a range of utilisation at least this wide (0 to 1) */
#define CPUFIT_WINDOWS_MAX  86400 /* at this many windows every sum is halved: old load fades */

struct cpufit_sums {
	double n;            /* windows (weighted: halved with the sums at CPUFIT_WINDOWS_MAX) */
	double su, suu;      /* sum of utilisation, of its square */
	double sp, sup, spp; /* sum of watts, of utilisation x watts, of watts squared */
	double u_min, u_max; /* the utilisation range seen (not halved) */
};

struct cpufit_result {
	double idle_watts, max_watts;
	double rms_error_pct; /* root mean square of the windows' residuals / mean watts x 100 */
};

void cpufit_init(struct cpufit_sums *s);
/* One window: utilisation 0 to 1 and mean watts (finite, >= 0). 0 or -EINVAL (not added). */
int cpufit_add(struct cpufit_sums *s, double utilisation, double watts);
/*
 * The fit with idle >= 0 and max >= idle (non-negative least squares on the two coefficients:
 * when the unconstrained optimum breaks a bound, the better of the two fits with one coefficient
 * held at 0). -EAGAIN with the reason in why while there are fewer than CPUFIT_MIN_WINDOWS
 * windows or their utilisation spans less than CPUFIT_MIN_SPREAD; else 0.
 */
int cpufit_solve(const struct cpufit_sums *s, struct cpufit_result *r, char *why, size_t len);

#endif
