#include "record_carbon.h"

#include <math.h>
#include <stdio.h>

struct piece {
	double t0, t1, joules; /* energy of [t0, t1], spread evenly over it */
};

/* The host's energy over [a, b] inside the piece, assuming constant power within it (the
 * piece is at most one second of one batch, between two samples' interpolated counters). */
static int piece_between(void *ctx, double a, double b, double *joules)
{
	const struct piece *p = ctx;
	double span = p->t1 - p->t0;
	*joules = span > 0 ? p->joules * (b - a) / span : 0;
	return 0;
}

static void derive(void *ctx, double t0, double t1, int64_t host_uj, int64_t *values)
{
	struct carbon *c = ctx;
	struct piece p = {t0, t1, (double)host_uj / 1e6};
	double grams = NAN, cost = NAN;
	if (carbon_emissions_between(c, t0, t1, piece_between, &p, &grams, &cost) < 0)
		grams = cost = NAN;
	values[0] = isfinite(grams) ? llround(grams * 1e6) : STORE_NO_VALUE;
	values[1] = isfinite(cost) ? llround(cost * 1e9) : STORE_NO_VALUE;
	/* The mix at the piece's middle: a piece is a fraction of a second, and grid data
	 * changes every quarter hour at most. Each group's energy is rounded separately. */
	double intensity, mix[CARBON_GROUPS];
	bool have_mix = false;
	if (carbon_intensity_at(c, (t0 + t1) / 2, &intensity, mix, &have_mix) < 0)
		have_mix = false;
	for (int g = 0; g < CARBON_GROUPS; g++)
		values[2 + g] = have_mix ? llround((double)host_uj * mix[g]) : STORE_NO_VALUE;
}

int record_carbon_attach(struct store *st, struct carbon *c)
{
	static char mix_names[CARBON_GROUPS][64];
	const char *names[RECORD_CARBON_SERIES] = {RECORD_CARBON_EMISSIONS, RECORD_CARBON_COST};
	for (int g = 0; g < CARBON_GROUPS; g++) {
		snprintf(mix_names[g], sizeof(mix_names[g]), "%s%s", RECORD_CARBON_MIX_PREFIX,
		         carbon_group_name((enum carbon_group)g));
		names[2 + g] = mix_names[g];
	}
	return store_set_derived(st, names, RECORD_CARBON_SERIES, derive, c);
}

double record_carbon_intensity(bool have, int64_t emissions_ug, int64_t host_uj)
{
	if (!have || host_uj <= 0)
		return NAN;
	return (double)emissions_ug / ((double)host_uj / 3.6e6);
}

double record_carbon_mix_share(int64_t group_uj, int64_t groups_uj, bool any_group)
{
	return any_group && groups_uj > 0 ? (double)group_uj / (double)groups_uj : NAN;
}
