/*
 * The [carbon] section of energyd's config file, and the price schedule. Pure functions, so that
 * config.c (and its unit test) can parse the section without the fetching machinery.
 */
#define _GNU_SOURCE
#include "carbon.h"
#include "energy.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const provider_names[] = {
    [CARBON_STATIC] = "static", [CARBON_CONSTANT] = "constant",
    [CARBON_ENTSOE] = "entsoe", [CARBON_ELECTRICITYMAPS] = "electricitymaps",
    [CARBON_UK] = "uk",         [CARBON_RTE] = "rte",
};

static const char *const group_names[] = {
    [CARBON_RENEWABLE] = "renewable", [CARBON_FOSSIL] = "fossil", [CARBON_NUCLEAR] = "nuclear",
    [CARBON_STORAGE] = "storage",     [CARBON_OTHER] = "other",
};

const char *carbon_provider_name(enum carbon_provider p)
{
	return provider_names[p];
}

const char *carbon_group_name(enum carbon_group g)
{
	return group_names[g];
}

void carbon_config_defaults(struct carbon_config *c)
{
	memset(c, 0, sizeof(*c));
	c->provider = CARBON_STATIC;
	c->timeout_s = 10;
}

/* "07:00=0.30, 23:00=0.15": prices from a local time of day until the next entry (wrapping
 * past midnight). */
static int parse_schedule(struct carbon_config *c, const char *value, char *err, size_t errlen)
{
	c->n_schedule = 0;
	const char *p = value;
	while (*p) {
		int h, m, n = 0;
		char num[64];
		while (isspace((unsigned char)*p) || *p == ',')
			p++;
		if (!*p)
			break;
		if (sscanf(p, "%2d:%2d=%63[^,]%n", &h, &m, num, &n) != 3 || h < 0 || h > 23 ||
		    m < 0 || m > 59) {
			snprintf(err, errlen,
			         "price_schedule: expected 'HH:MM=PRICE, HH:MM=PRICE, ...' at '%s'",
			         p);
			return -1;
		}
		double price;
		char *t = num + strlen(num);
		while (t > num && isspace((unsigned char)t[-1]))
			*--t = '\0';
		if (energy_parse_double(num, &price) < 0 || price < 0) {
			snprintf(err, errlen, "price_schedule: '%s' is not a price (a number >= 0)",
			         num);
			return -1;
		}
		if (c->n_schedule >= CARBON_PRICE_SLOTS) {
			snprintf(err, errlen, "price_schedule: at most %d entries",
			         CARBON_PRICE_SLOTS);
			return -1;
		}
		int minute = h * 60 + m;
		for (int i = 0; i < c->n_schedule; i++)
			if (c->schedule[i].minute == minute) {
				snprintf(err, errlen, "price_schedule: %02d:%02d given twice", h,
				         m);
				return -1;
			}
		/* Insertion keeps the table sorted by minute. */
		int i = c->n_schedule++;
		while (i > 0 && c->schedule[i - 1].minute > minute) {
			c->schedule[i] = c->schedule[i - 1];
			i--;
		}
		c->schedule[i] = (struct carbon_price_slot){minute, price};
		p += n;
	}
	if (c->n_schedule == 0) {
		snprintf(err, errlen, "price_schedule: empty");
		return -1;
	}
	return 0;
}

static int set_string(char *dst, size_t cap, const char *key, const char *value, char *err,
                      size_t errlen)
{
	if (!*value || strlen(value) >= cap) {
		snprintf(err, errlen, "%s: %s", key, *value ? "too long" : "empty");
		return -1;
	}
	strcpy(dst, value);
	return 0;
}

static int set_number(double *dst, const char *key, const char *value, double min, double max,
                      const char *unit, char *err, size_t errlen)
{
	double d;
	if (energy_parse_double(value, &d) < 0 || d < min || d > max) {
		snprintf(err, errlen, "%s: '%s' is not a number of %s between %g and %g", key,
		         value, unit, min, max);
		return -1;
	}
	*dst = d;
	return 0;
}

int carbon_config_set(struct carbon_config *c, const char *key, const char *value, char *err,
                      size_t errlen)
{
	if (strcmp(key, "provider") == 0) {
		for (size_t i = 0; i < sizeof(provider_names) / sizeof(provider_names[0]); i++)
			if (strcmp(value, provider_names[i]) == 0) {
				c->provider = (enum carbon_provider)i;
				return 0;
			}
		snprintf(err, errlen,
		         "provider: '%s' is not one of static, constant, entsoe, electricitymaps, "
		         "uk, rte",
		         value);
		return -1;
	}
	if (strcmp(key, "zone") == 0 || strcmp(key, "country") == 0)
		return set_string(c->zone, sizeof(c->zone), key, value, err, errlen);
	if (strcmp(key, "token_file") == 0)
		return set_string(c->token_file, sizeof(c->token_file), key, value, err, errlen);
	if (strcmp(key, "base_url") == 0) {
		if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0) {
			snprintf(err, errlen, "base_url: '%s' is not an http:// or https:// URL",
			         value);
			return -1;
		}
		return set_string(c->base_url, sizeof(c->base_url), key, value, err, errlen);
	}
	if (strcmp(key, "refresh_s") == 0)
		return set_number(&c->refresh_s, key, value, 1, 86400, "seconds", err, errlen);
	if (strcmp(key, "timeout_s") == 0)
		return set_number(&c->timeout_s, key, value, 0.1, 120, "seconds", err, errlen);
	if (strcmp(key, "intensity_g_per_kwh") == 0) {
		c->have_intensity = true;
		return set_number(&c->intensity_g_per_kwh, key, value, 0, 5000, "g CO2eq/kWh", err,
		                  errlen);
	}
	if (strcmp(key, "price_per_kwh") == 0) {
		c->have_price = true;
		return set_number(&c->price_per_kwh, key, value, 0, 1e6, "currency units", err,
		                  errlen);
	}
	if (strcmp(key, "currency") == 0)
		return set_string(c->currency, sizeof(c->currency), key, value, err, errlen);
	if (strcmp(key, "price_schedule") == 0)
		return parse_schedule(c, value, err, errlen);
	snprintf(err, errlen,
	         "unknown key '%s' in [carbon] (provider, zone, token_file, base_url, refresh_s, "
	         "timeout_s, intensity_g_per_kwh, price_per_kwh, price_schedule, currency; see "
	         "docs/carbon.md)",
	         key);
	return -1;
}

int carbon_config_check(const struct carbon_config *c, char *err, size_t errlen)
{
	switch (c->provider) {
	case CARBON_STATIC:
		if (!carbon_table_country(c->zone)) {
			snprintf(err, errlen,
			         "[carbon] zone '%s' is not in the static table (ISO 3166 country "
			         "codes such as DE, FR, GB; see docs/carbon.md), or use provider = "
			         "constant",
			         c->zone);
			return -1;
		}
		break;
	case CARBON_CONSTANT:
		if (!c->have_intensity) {
			snprintf(err, errlen,
			         "[carbon] provider = constant needs intensity_g_per_kwh = VALUE");
			return -1;
		}
		break;
	case CARBON_ENTSOE:
	case CARBON_ELECTRICITYMAPS:
		if (!c->zone[0] || !c->token_file[0]) {
			snprintf(err, errlen,
			         "[carbon] provider = %s needs zone = %s and token_file = FILE",
			         carbon_provider_name(c->provider),
			         c->provider == CARBON_ENTSOE ? "EIC code (e.g. 10Y1001A1001A82H)"
			                                      : "ZONE (e.g. DE)");
			return -1;
		}
		break;
	case CARBON_UK:
	case CARBON_RTE:
		break;
	}
	if (c->have_price && c->n_schedule) {
		snprintf(err, errlen, "[carbon] give price_per_kwh or price_schedule, not both");
		return -1;
	}
	if ((c->have_price || c->n_schedule) && !c->currency[0]) {
		snprintf(err, errlen, "[carbon] a price needs currency = CODE (e.g. EUR)");
		return -1;
	}
	return 0;
}

/* Local midnight of the day holding t, plus minute m of that day (mktime handles DST). */
static double local_minute(time_t day, int day_offset, int minute)
{
	struct tm tm;
	localtime_r(&day, &tm);
	tm.tm_mday += day_offset;
	tm.tm_hour = minute / 60;
	tm.tm_min = minute % 60;
	tm.tm_sec = 0;
	tm.tm_isdst = -1;
	return (double)mktime(&tm);
}

double carbon_price_at(const struct carbon_config *c, double t, double *next_change)
{
	if (next_change)
		*next_change = INFINITY;
	if (c->n_schedule == 0)
		return c->have_price ? c->price_per_kwh : NAN;
	time_t tt = (time_t)floor(t);
	struct tm tm;
	localtime_r(&tt, &tm);
	int minute = tm.tm_hour * 60 + tm.tm_min;
	/* The last entry at or before this minute, else the day's last entry (from yesterday). */
	int cur = c->n_schedule - 1;
	for (int i = 0; i < c->n_schedule; i++)
		if (c->schedule[i].minute <= minute)
			cur = i;
	if (next_change && c->n_schedule > 1) {
		int nxt = (cur + 1) % c->n_schedule;
		bool tomorrow = c->schedule[nxt].minute <= minute;
		*next_change = local_minute(tt, tomorrow ? 1 : 0, c->schedule[nxt].minute);
	}
	return c->schedule[cur].price;
}
