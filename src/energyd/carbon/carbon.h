/*
 * Carbon intensity, generation mix and cost (docs/carbon.md).
 *
 * A provider (a static per-country table, a constant, or a live grid data service) gives the
 * carbon intensity of electricity in g CO2eq/kWh and, for some, the generation mix. The carbon
 * module fetches live providers in its own thread (libcurl, with timeouts), so that a slow or
 * broken provider never delays sampling; a failure keeps the last good value with its age and
 * reports the error. Every value energyd learns becomes a step of an in-memory time series
 * (t, g/kWh, mix); emissions over an interval are the step-wise integral of the host's energy
 * times the intensity that held at each moment, and cost is the host's energy times the price
 * that held (a flat price per kWh, or a time-of-day table in local time).
 *
 * Thread safety: every carbon_* function may be called from any thread. Lock order: a caller may
 * hold the sampler's lock while calling into the carbon module (api.c does); the carbon thread
 * never calls the energy source while holding its own lock.
 */
#ifndef ENERGY_CARBON_H
#define ENERGY_CARBON_H

#include <stdbool.h>
#include <stddef.h>

#define CARBON_ZONE_MAX    64
#define CARBON_URL_MAX     512
#define CARBON_ERROR_MAX   512
#define CARBON_PRICE_SLOTS 48
#define CARBON_SERIES_MAX  20000 /* steps held in memory; a step is added only on a change */
#define J_PER_KWH          3.6e6

enum carbon_provider {
	CARBON_STATIC,   /* annual average per country (carbon_table.c) */
	CARBON_CONSTANT, /* a value from the config file */
	CARBON_ENTSOE,   /* ENTSO-E Transparency Platform, actual generation per type (A75) */
	CARBON_ELECTRICITYMAPS,
	CARBON_UK,  /* National Grid ESO carbon intensity API */
	CARBON_RTE, /* RTE eCO2mix open data (France) */
};

/* Generation groups of the mix. */
enum carbon_group {
	CARBON_RENEWABLE,
	CARBON_FOSSIL,
	CARBON_NUCLEAR,
	CARBON_STORAGE,
	CARBON_OTHER,
	CARBON_GROUPS,
};

struct carbon_price_slot {
	int minute;   /* minute of the local day the price starts at, 0..1439 */
	double price; /* per kWh, in the configured currency */
};

/* The [carbon] section of the config file (carbon_config.c). */
struct carbon_config {
	enum carbon_provider provider;
	char zone[CARBON_ZONE_MAX];      /* country (static), bidding zone EIC (entsoe), zone */
	char token_file[CARBON_URL_MAX]; /* entsoe, electricitymaps */
	char base_url[CARBON_URL_MAX];   /* empty: the provider's public URL */
	double refresh_s;                /* 0: the provider's default */
	double timeout_s;                /* per HTTP request */
	double intensity_g_per_kwh;      /* constant */
	bool have_intensity;
	double price_per_kwh; /* price_per_kwh of [carbon]; valid when have_price */
	bool have_price;
	char currency[16]; /* the price's currency, as given ("EUR") */
	struct carbon_price_slot schedule[CARBON_PRICE_SLOTS]; /* sorted by minute */
	int n_schedule;
};

/* One answer of a provider. */
struct carbon_reading {
	double intensity_g_per_kwh;
	double data_time; /* Unix seconds the provider's figure is for; NAN when it gives none */
	bool have_mix;
	double mix[CARBON_GROUPS];   /* shares of generation, summing to 1 */
	char note[CARBON_ERROR_MAX]; /* a non-fatal remark, e.g. "mix unavailable: ..." */
};

/* ---- config (carbon_config.c) ------------------------------------------------------------ */

void carbon_config_defaults(struct carbon_config *c);
/* One "key = value" of [carbon]; 0, or -1 with err filled ("unknown key 'x' in [carbon] …"). */
int carbon_config_set(struct carbon_config *c, const char *key, const char *value, char *err,
                      size_t errlen);
/* Checks between keys (zone required by entsoe, value by constant, …); 0 or -1 with err. */
int carbon_config_check(const struct carbon_config *c, char *err, size_t errlen);
const char *carbon_provider_name(enum carbon_provider p);
const char *carbon_group_name(enum carbon_group g);
/* The price per kWh at Unix time t (local time of day when a schedule is set); NAN without a
 * price. *next_change receives the next time the price changes (INFINITY for a flat price). */
double carbon_price_at(const struct carbon_config *c, double t, double *next_change);

/* ---- tables (carbon_table.c) ------------------------------------------------------------- */

struct carbon_country {
	const char *code; /* ISO 3166-1 alpha-2, "EU" or "WORLD" */
	const char *name;
	double g_per_kwh;
	int year; /* the year the figure is for */
};

/* The static table's row for a country code (case-insensitive), or NULL. "" gives WORLD. */
const struct carbon_country *carbon_table_country(const char *code);
extern const char carbon_table_source[];
/* ENTSO-E production type (B01..B20, B25): group and lifecycle factor; -ENOENT if unknown. */
int carbon_psr_type(const char *psr, enum carbon_group *group, double *g_per_kwh);
extern const char carbon_psr_source[];

/* ---- parsers (carbon_parse.c): pure functions of a response body -------------------------- */

/* ENTSO-E A75 GL_MarketDocument: the latest instant covered by every production series; the
 * consumption series (outBiddingZone_Domain) are left out. An Acknowledgement_MarketDocument
 * (e.g. "No matching data found") is an error with its reason text. */
int carbon_parse_entsoe(const char *body, size_t len, struct carbon_reading *out, char *err,
                        size_t errlen);
/* carbonintensity.org.uk /intensity (actual, else forecast) and /generation (mix). */
int carbon_parse_uk_intensity(const char *body, struct carbon_reading *out, char *err,
                              size_t errlen);
int carbon_parse_uk_generation(const char *body, struct carbon_reading *out, char *err,
                               size_t errlen);
/* RTE eCO2mix records (ODRE explore API v2.1): taux_co2 and the production per source. */
int carbon_parse_rte(const char *body, struct carbon_reading *out, char *err, size_t errlen);
/* Electricity Maps v3 carbon-intensity/latest and power-breakdown/latest. */
int carbon_parse_em_intensity(const char *body, struct carbon_reading *out, char *err,
                              size_t errlen);
int carbon_parse_em_breakdown(const char *body, struct carbon_reading *out, char *err,
                              size_t errlen);

/* ---- fetching (carbon_fetch.c) ------------------------------------------------------------ */

/* GET url with an optional extra header ("auth-token: …"); the body is malloc'd and
 * NUL-terminated. 0, or a negative errno with err filled (HTTP status ≥ 400 is -EPROTO). */
int carbon_http_get(const char *url, const char *header, double timeout_s, char **body, size_t *len,
                    long *status, char *err, size_t errlen);
/* Make every transfer in progress (and any later one) fail at once: energyd is stopping. */
void carbon_fetch_abort(void);
/* One provider request: fills out from the provider's answer(s). now is Unix seconds. */
int carbon_fetch(const struct carbon_config *c, const char *token, double now,
                 struct carbon_reading *out, char *err, size_t errlen);

/* ---- the module (carbon.c) ---------------------------------------------------------------- */

struct carbon;
struct sampler;

/* Validate the config, read the token file (before privileges are dropped). 0 or -1 + err. */
int carbon_open(const struct carbon_config *cfg, struct carbon **out, char *err, size_t errlen);
/* Start the fetch thread (after privileges are dropped: it parses network input). */
int carbon_start(struct carbon *c, struct sampler *host_energy);
void carbon_close(struct carbon *c);

/*
 * The intensity that held at Unix time t (the step in force then; the first value energyd
 * obtained also covers the time before it). mix may be NULL; *have_mix says whether it was
 * filled. -ENODATA when no value has been obtained yet. For the long-term store: one call per
 * step it records.
 */
int carbon_intensity_at(struct carbon *c, double t, double *g_per_kwh, double *mix, bool *have_mix);
/*
 * Grams CO2eq and cost of the host's energy between t0 and t1: the interval is cut where the
 * intensity (or the price) changed and each piece's joules (from between()) are multiplied by
 * what held then. *grams is NAN when no intensity is known, *cost NAN without a price.
 */
int carbon_emissions_between(struct carbon *c, double t0, double t1,
                             int (*between)(void *ctx, double t0, double t1, double *joules),
                             void *ctx, double *grams, double *cost);
/* Grams and cost since energyd started, given the newest sample (t, host joules there). */
void carbon_totals(struct carbon *c, double t, double host_joules, double *grams, double *cost);

const char *carbon_currency(struct carbon *c); /* NULL without a price */

/* One intensity held from t on (the steps the module keeps, oldest first). */
struct carbon_step {
	double t; /* -INFINITY for the first value */
	double g_per_kwh;
	bool have_mix;             /* the provider gave the generation mix */
	double mix[CARBON_GROUPS]; /* share of each carbon_group, 0 to 1 */
};

/* At most this many of the newest steps in GET /api/v1/carbon?series=1. */
#define CARBON_SERIES_JSON 500

/* What the API shows of the module at one time: a copy taken under the module's lock. */
struct carbon_view {
	const char *provider, *zone;  /* the zone configured, or the provider's only zone */
	bool have_current;            /* an intensity is known */
	struct carbon_step current;   /* the newest step */
	double data_time;             /* when the provider says the value holds from (NAN) */
	double fetched_at;            /* when energyd received it */
	double attempted_at;          /* the last request to the provider */
	double age_s;                 /* now - data_time (or fetched_at when the time is unknown) */
	bool live;                    /* a provider is asked, not the static table */
	double refresh_s;             /* how often the provider is asked */
	const char *status;           /* "pending", "ok", "error" */
	char error[CARBON_ERROR_MAX]; /* the last failure, or "" */
	char note[CARBON_ERROR_MAX];  /* a non-fatal remark, or "" */
	char source[512];             /* where the figure comes from */
	size_t n_steps;               /* steps held */
	size_t n_series;              /* of those, copied into the caller's series buffer */
	double price_now;             /* price per kWh now, NAN without one */
	const char *currency;         /* NULL without a price */
	const struct carbon_config *cfg; /* the price schedule (read-only after carbon_open) */
};
/* Fill v at time now; with series, also the newest steps (at most max_series) into it. */
void carbon_view(struct carbon *c, double now, struct carbon_view *v, struct carbon_step *series,
                 size_t max_series);

#endif
