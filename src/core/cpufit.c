#include "cpufit.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void cpufit_init(struct cpufit_sums *s)
{
	memset(s, 0, sizeof(*s));
	s->u_min = 1.0;
	s->u_max = 0.0;
}

int cpufit_add(struct cpufit_sums *s, double utilisation, double watts)
{
	if (!isfinite(utilisation) || utilisation < 0 || utilisation > 1 || !isfinite(watts) ||
	    watts < 0)
		return -EINVAL;
	if (s->n >= CPUFIT_WINDOWS_MAX) {
		s->n /= 2, s->su /= 2, s->suu /= 2;
		s->sp /= 2, s->sup /= 2, s->spp /= 2;
	}
	s->n += 1;
	s->su += utilisation;
	s->suu += utilisation * utilisation;
	s->sp += watts;
	s->sup += utilisation * watts;
	s->spp += watts * watts;
	if (utilisation < s->u_min)
		s->u_min = utilisation;
	if (utilisation > s->u_max)
		s->u_max = utilisation;
	return 0;
}

/* Sum of squared residuals of watts = a + b u, from the sums alone. */
static double cpufit_sse(const struct cpufit_sums *s, double a, double b)
{
	double sse = s->spp - 2 * a * s->sp - 2 * b * s->sup + s->n * a * a + 2 * a * b * s->su +
	             b * b * s->suu;
	return sse > 0 ? sse : 0; /* rounding can leave a tiny negative for an exact fit */
}

int cpufit_solve(const struct cpufit_sums *s, struct cpufit_result *r, char *why, size_t len)
{
	double spread = s->u_max - s->u_min;
	if (s->n < CPUFIT_MIN_WINDOWS || spread < CPUFIT_MIN_SPREAD) {
		snprintf(why, len,
		         "learning: %.0f of %d windows, utilisation range %.0f %% of the %.0f %% "
		         "needed",
		         s->n, CPUFIT_MIN_WINDOWS, spread > 0 ? spread * 100 : 0,
		         CPUFIT_MIN_SPREAD * 100);
		return -EAGAIN;
	}
	double det = s->n * s->suu - s->su * s->su;
	double b = det > 0 ? (s->n * s->sup - s->su * s->sp) / det : -1;
	double a = (s->sp - b * s->su) / s->n;
	if (!(a >= 0 && b >= 0)) {
		/* The optimum under a >= 0, b >= 0 lies on a bound: a = 0 or b = 0. */
		double b0 = s->suu > 0 && s->sup > 0 ? s->sup / s->suu : 0;
		double a0 = s->sp > 0 ? s->sp / s->n : 0;
		if (cpufit_sse(s, 0, b0) <= cpufit_sse(s, a0, 0))
			a = 0, b = b0;
		else
			a = a0, b = 0;
	}
	r->idle_watts = a;
	r->max_watts = a + b;
	double mean = s->sp / s->n;
	double rms = sqrt(cpufit_sse(s, a, b) / s->n);
	r->rms_error_pct = mean > 0 ? rms / mean * 100 : 0;
	if (why && len)
		why[0] = '\0';
	return 0;
}
