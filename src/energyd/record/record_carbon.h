/*
 * Emissions and cost in the long-term record: two derived series of the store, computed per
 * piece of a second from the host's energy and the intensity and price that held then
 * (carbon_emissions_between), in micrograms CO2eq and billionths of the currency, and the
 * energy by generation group (microjoules) where the provider gives a mix, so that they roll up
 * into the tiers with the energy and add up exactly. A second with no intensity (price, mix)
 * known gets no row: a gap, never a zero.
 */
#ifndef ENERGY_RECORD_CARBON_H
#define ENERGY_RECORD_CARBON_H

#include "carbon.h"
#include "store.h"

#define RECORD_CARBON_EMISSIONS "carbon:emissions_ug"
#define RECORD_CARBON_COST      "carbon:cost_nano"
/* The host's energy by generation group ("carbon:mix:renewable" ...): energy x the group's
 * share of the grid's generation when it was used. Divided by the energy of the seconds that
 * have a mix, it gives each step's mix, weighted by energy like the intensity. */
#define RECORD_CARBON_MIX_PREFIX "carbon:mix:"
#define RECORD_CARBON_SERIES     (2 + CARBON_GROUPS)

/*
 * What a step of the record implies (GET /api/v1/longterm): the intensity is the step's
 * emissions (ug) over its host energy (uJ) in g CO2eq/kWh, the energy-weighted mean of the
 * intensity that held at each moment; NAN when either sum is missing or the energy is 0.
 */
double record_carbon_intensity(bool have, int64_t emissions_ug, int64_t host_uj);
/* A generation group's share of a step: its energy over the energy of all groups (those with
 * a row); NAN when no group has one or their sum is 0. */
double record_carbon_mix_share(int64_t group_uj, int64_t groups_uj, bool any_group);

/* Add the carbon series to a store that is not started yet. 0 or -errno. */
int record_carbon_attach(struct store *st, struct carbon *c);

#endif
