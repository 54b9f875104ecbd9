/*
 * Emissions and cost in the long-term record: two derived series of the store, computed per
 * piece of a second from the host's energy and the intensity and price that held then
 * (carbon_emissions_between), in micrograms CO2eq and billionths of the currency, so that they
 * roll up into the tiers with the energy and add up exactly. A second with no intensity (or no
 * price) known gets no row: a gap, never a zero.
 */
#ifndef ENERGY_RECORD_CARBON_H
#define ENERGY_RECORD_CARBON_H

#include "carbon.h"
#include "store.h"

#define RECORD_CARBON_EMISSIONS "carbon:emissions_ug"
#define RECORD_CARBON_COST      "carbon:cost_nano"

/* Add the two series to a store that is not started yet. 0 or -errno. */
int record_carbon_attach(struct store *st, struct carbon *c);

#endif
