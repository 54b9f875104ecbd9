/*
 * Statistics over repeated measurements and the few energy formulas that clients would otherwise
 * write themselves: mean power, energy above an idle baseline, mean ± sd and a 95 % interval.
 * energyd's /api/v1/energy and /api/v1/runs use the same functions, so the CLI, the Python
 * package and the front end show one arithmetic (docs/api.md, "Statistics").
 */
#include "energy.h"

#include <errno.h>
#include <math.h>

double energy_mean_watts(double joules, double seconds)
{
	return isfinite(joules) && isfinite(seconds) && seconds > 0 ? joules / seconds : NAN;
}

double energy_above_idle(double joules, double idle_watts, double seconds)
{
	return joules - idle_watts * seconds;
}

/*
 * Student's t at 0.975 for df degrees of freedom: the table below for df <= 30, above it the
 * Cornish-Fisher expansion around the normal quantile (off by less than 2e-4 at df = 31).
 */
static double t975(size_t df)
{
	static const double table[31] = {NAN,   12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365,
	                                 2.306, 2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
	                                 2.120, 2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069,
	                                 2.064, 2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
	if (df <= 30)
		return table[df];
	const double z = 1.959964, n = (double)df;
	const double z3 = z * z * z, z5 = z3 * z * z;
	return z + (z3 + z) / (4 * n) + (5 * z5 + 16 * z3 + 3 * z) / (96 * n * n);
}

int energy_stats(const double *v, size_t n, struct energy_stats *out)
{
	*out = (struct energy_stats){0, NAN, NAN, NAN, NAN, NAN};
	if (!v && n)
		return -EINVAL;
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		if (isfinite(v[i])) {
			sum += v[i];
			out->n++;
		}
	if (out->n == 0)
		return 0;
	out->mean = sum / (double)out->n;
	if (out->n < 2)
		return 0;
	double sq = 0;
	for (size_t i = 0; i < n; i++)
		if (isfinite(v[i]))
			sq += (v[i] - out->mean) * (v[i] - out->mean);
	out->sd = sqrt(sq / (double)(out->n - 1));
	out->rel_sd = out->mean != 0 ? out->sd / fabs(out->mean) : NAN;
	double half = t975(out->n - 1) * out->sd / sqrt((double)out->n);
	out->ci95_low = out->mean - half;
	out->ci95_high = out->mean + half;
	return 0;
}
