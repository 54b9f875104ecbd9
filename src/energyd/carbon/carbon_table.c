/*
 * The tables shipped with energyd: annual average carbon intensity per country (the `static`
 * provider) and the lifecycle factor and group of each ENTSO-E production type (the `entsoe`
 * provider). Sources and years are in docs/carbon.md; keep the two in step.
 */
#include "carbon.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

const char carbon_table_source[] =
    "Ember, yearly electricity data (country overview, emissions intensity of generation, "
    "life-cycle g CO2eq/kWh), latest year per country: 2023 for Europe, 2022 elsewhere";

/* Ember country_overview_yearly, emissions_intensity_gco2_per_kwh (life-cycle emissions of
 * generation, g CO2eq/kWh), as republished in The Green Web Foundation's co2.js
 * (data/output/average-intensities.json). */
static const struct carbon_country countries[] = {
    {"WORLD", "World", 485.99, 2022},      {"EU", "European Union", 243.83, 2023},
    {"AT", "Austria", 110.81, 2023},       {"BA", "Bosnia and Herzegovina", 600.00, 2023},
    {"BE", "Belgium", 138.11, 2023},       {"BG", "Bulgaria", 335.33, 2023},
    {"CH", "Switzerland", 34.84, 2023},    {"CY", "Cyprus", 534.32, 2023},
    {"CZ", "Czechia", 449.72, 2023},       {"DE", "Germany", 380.95, 2023},
    {"DK", "Denmark", 151.65, 2023},       {"EE", "Estonia", 416.67, 2023},
    {"ES", "Spain", 174.05, 2023},         {"FI", "Finland", 79.16, 2023},
    {"FR", "France", 56.04, 2023},         {"GB", "United Kingdom", 237.59, 2023},
    {"GR", "Greece", 336.57, 2023},        {"HR", "Croatia", 204.96, 2023},
    {"HU", "Hungary", 204.19, 2023},       {"IE", "Ireland", 290.81, 2023},
    {"IT", "Italy", 330.72, 2023},         {"LT", "Lithuania", 160.07, 2023},
    {"LU", "Luxembourg", 105.26, 2023},    {"LV", "Latvia", 123.20, 2023},
    {"ME", "Montenegro", 417.07, 2023},    {"MK", "North Macedonia", 565.35, 2023},
    {"MT", "Malta", 459.14, 2023},         {"NL", "Netherlands", 267.62, 2023},
    {"NO", "Norway", 30.08, 2023},         {"PL", "Poland", 661.93, 2023},
    {"PT", "Portugal", 165.55, 2023},      {"RO", "Romania", 240.58, 2023},
    {"RS", "Serbia", 636.06, 2023},        {"SE", "Sweden", 40.70, 2023},
    {"SI", "Slovenia", 231.28, 2023},      {"SK", "Slovakia", 116.77, 2023},
    {"TR", "Türkiye", 464.59, 2023},       {"XK", "Kosovo", 894.65, 2023},
    {"AR", "Argentina", 394.62, 2022},     {"AU", "Australia", 570.35, 2022},
    {"BR", "Brazil", 105.51, 2022},        {"CA", "Canada", 161.43, 2022},
    {"CL", "Chile", 353.52, 2022},         {"CN", "China", 585.82, 2022},
    {"EG", "Egypt", 570.13, 2022},         {"ID", "Indonesia", 675.93, 2022},
    {"IL", "Israel", 582.93, 2022},        {"IN", "India", 705.13, 2022},
    {"IS", "Iceland", 27.68, 2022},        {"JP", "Japan", 512.81, 2022},
    {"KE", "Kenya", 83.33, 2022},          {"KR", "South Korea", 441.65, 2022},
    {"MA", "Morocco", 662.64, 2022},       {"MX", "Mexico", 475.36, 2022},
    {"MY", "Malaysia", 605.83, 2022},      {"NG", "Nigeria", 516.23, 2022},
    {"NZ", "New Zealand", 110.89, 2022},   {"PK", "Pakistan", 463.66, 2022},
    {"RU", "Russia", 436.28, 2022},        {"SA", "Saudi Arabia", 706.79, 2022},
    {"SG", "Singapore", 474.00, 2022},     {"TH", "Thailand", 560.74, 2022},
    {"TW", "Taiwan", 639.53, 2022},        {"UA", "Ukraine", 259.69, 2022},
    {"US", "United States", 385.98, 2022}, {"VN", "Viet Nam", 409.80, 2022},
    {"ZA", "South Africa", 729.67, 2022},
};

const struct carbon_country *carbon_table_country(const char *code)
{
	if (!code || !*code)
		code = "WORLD";
	/* "UK" is what people write; the table follows ISO 3166 (GB). */
	if (strcasecmp(code, "UK") == 0)
		code = "GB";
	for (size_t i = 0; i < sizeof(countries) / sizeof(countries[0]); i++)
		if (strcasecmp(countries[i].code, code) == 0)
			return &countries[i];
	return NULL;
}

const char carbon_psr_source[] =
    "IPCC AR5 WG3 Annex III (2014), Table A.III.2, median life-cycle emissions; oil, waste "
    "and other: our assumptions (see docs/carbon.md)";

/* ENTSO-E production types (code list "PsrType"). Factors in g CO2eq/kWh, life-cycle:
 * IPCC AR5 medians (coal 820, gas combined cycle 490, biomass dedicated 230, geothermal 38,
 * hydropower 24, ocean 17, nuclear 12, solar PV utility 48, wind onshore 11, offshore 12). Coal
 * 820 stands for lignite, coal-derived gas, oil shale and peat too (AR5 gives no separate
 * medians). AR5 has no median for oil, waste or "other": 650 for oil lies between its gas and
 * coal figures, 700 for waste and other assumes mostly fossil-fired plants; both are our
 * assumptions and docs/carbon.md says so. Stored energy (pumped storage, batteries) is counted with
 * hydropower's 24: its charging was counted when the energy was generated. */
static const struct {
	const char *code;
	enum carbon_group group;
	double g_per_kwh;
} psr_types[] = {
    {"B01", CARBON_RENEWABLE, 230}, /* Biomass */
    {"B02", CARBON_FOSSIL, 820},    /* Fossil Brown coal/Lignite */
    {"B03", CARBON_FOSSIL, 820},    /* Fossil Coal-derived gas */
    {"B04", CARBON_FOSSIL, 490},    /* Fossil Gas */
    {"B05", CARBON_FOSSIL, 820},    /* Fossil Hard coal */
    {"B06", CARBON_FOSSIL, 650},    /* Fossil Oil */
    {"B07", CARBON_FOSSIL, 820},    /* Fossil Oil shale */
    {"B08", CARBON_FOSSIL, 820},    /* Fossil Peat */
    {"B09", CARBON_RENEWABLE, 38},  /* Geothermal */
    {"B10", CARBON_STORAGE, 24},    /* Hydro Pumped Storage */
    {"B11", CARBON_RENEWABLE, 24},  /* Hydro Run-of-river and poundage */
    {"B12", CARBON_RENEWABLE, 24},  /* Hydro Water Reservoir */
    {"B13", CARBON_RENEWABLE, 17},  /* Marine */
    {"B14", CARBON_NUCLEAR, 12},    /* Nuclear */
    {"B15", CARBON_RENEWABLE, 38},  /* Other renewable */
    {"B16", CARBON_RENEWABLE, 48},  /* Solar */
    {"B17", CARBON_OTHER, 700},     /* Waste */
    {"B18", CARBON_RENEWABLE, 12},  /* Wind Offshore */
    {"B19", CARBON_RENEWABLE, 11},  /* Wind Onshore */
    {"B20", CARBON_OTHER, 700},     /* Other */
    {"B25", CARBON_STORAGE, 24},    /* Energy storage */
};

int carbon_psr_type(const char *psr, enum carbon_group *group, double *g_per_kwh)
{
	for (size_t i = 0; i < sizeof(psr_types) / sizeof(psr_types[0]); i++)
		if (strcmp(psr_types[i].code, psr) == 0) {
			*group = psr_types[i].group;
			*g_per_kwh = psr_types[i].g_per_kwh;
			return 0;
		}
	return -ENOENT;
}
