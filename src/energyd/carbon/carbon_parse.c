/*
 * Parsers of the carbon providers' answers: pure functions from a response body to a
 * carbon_reading, unit-tested with literal documents in each provider's real format
 * (tests/unit/test_carbon.c) and exercised end to end by tests/integration/test_carbon.py.
 *
 * ENTSO-E answers XML (expat, streamed: the document is never held as a tree); the others
 * answer JSON (jansson). Anything unexpected (a missing field, a number that is not one, a
 * truncated document) is an error with a message naming what was wrong: never a silent zero.
 */
#define _GNU_SOURCE
#include "carbon.h"
#include "energy.h"

#include <errno.h>
#include <expat.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ENTSO-E A75 ------------------------------------------------------------------------- */

struct entsoe_point {
	int position;
	double quantity_mw;
};

struct entsoe_period {
	double start, end; /* end NAN when the document gives none */
	double resolution_s;
	struct entsoe_point *points;
	int n_points, cap_points;
};

struct entsoe_series {
	bool in_domain, out_domain;
	bool curve_a03; /* positions left out repeat the previous value */
	char psr[8];
	struct entsoe_period *periods;
	int n_periods, cap_periods;
};

#define ENTSOE_DEPTH        16
#define ENTSOE_TEXT         512
#define ENTSOE_POSITION_MAX 100000 /* largest Point position accepted */

struct entsoe_parse {
	XML_Parser xp;
	char stack[ENTSOE_DEPTH][64]; /* element names without namespace prefix */
	int depth;
	char text[ENTSOE_TEXT];
	size_t text_len;
	bool root_seen, is_ack;
	char ack_code[32], ack_text[CARBON_ERROR_MAX];
	struct entsoe_series *series;
	int n_series, cap_series;
	int point_position;
	double point_quantity;
	bool point_has_quantity;
	char err[CARBON_ERROR_MAX];
};

static const char *local_name(const char *name)
{
	const char *colon = strrchr(name, ':');
	return colon ? colon + 1 : name;
}

static void entsoe_fail(struct entsoe_parse *p, const char *fmt, const char *arg)
{
	if (p->err[0])
		return;
	snprintf(p->err, sizeof(p->err), fmt, arg);
	snprintf(p->err + strlen(p->err), sizeof(p->err) - strlen(p->err), " (line %lu)",
	         (unsigned long)XML_GetCurrentLineNumber(p->xp));
	XML_StopParser(p->xp, XML_FALSE);
}

static void *grow(void *arr, int *cap, int n, size_t size)
{
	if (n < *cap)
		return arr;
	int ncap = *cap ? *cap * 2 : 8;
	void *na = realloc(arr, (size_t)ncap * size);
	if (na)
		*cap = ncap;
	return na;
}

static const char *parent_name(const struct entsoe_parse *p, int up)
{
	int i = p->depth - 1 - up;
	return i >= 0 ? p->stack[i] : "";
}

static void XMLCALL entsoe_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	(void)attrs;
	struct entsoe_parse *p = ud;
	const char *n = local_name(name);
	if (!p->root_seen) {
		p->root_seen = true;
		if (strcmp(n, "Acknowledgement_MarketDocument") == 0)
			p->is_ack = true;
		else if (strcmp(n, "GL_MarketDocument") != 0) {
			entsoe_fail(p, "not an ENTSO-E generation document: root element <%s>", n);
			return;
		}
	}
	if (p->depth >= ENTSOE_DEPTH) {
		entsoe_fail(p, "elements nested too deep at <%s>", n);
		return;
	}
	snprintf(p->stack[p->depth++], sizeof(p->stack[0]), "%s", n);
	p->text_len = 0;
	p->text[0] = '\0';
	if (p->is_ack)
		return;
	if (strcmp(n, "TimeSeries") == 0 && p->depth == 2) {
		struct entsoe_series *s =
		    grow(p->series, &p->cap_series, p->n_series, sizeof(*p->series));
		if (!s) {
			entsoe_fail(p, "out of memory%s", "");
			return;
		}
		p->series = s;
		memset(&p->series[p->n_series++], 0, sizeof(p->series[0]));
	} else if (strcmp(n, "Period") == 0 && p->n_series &&
	           strcmp(parent_name(p, 1), "TimeSeries") == 0) {
		struct entsoe_series *s = &p->series[p->n_series - 1];
		struct entsoe_period *np =
		    grow(s->periods, &s->cap_periods, s->n_periods, sizeof(*s->periods));
		if (!np) {
			entsoe_fail(p, "out of memory%s", "");
			return;
		}
		s->periods = np;
		struct entsoe_period *per = &s->periods[s->n_periods++];
		memset(per, 0, sizeof(*per));
		per->start = per->end = NAN;
	} else if (strcmp(n, "Point") == 0) {
		p->point_position = 0;
		p->point_has_quantity = false;
	}
}

static void XMLCALL entsoe_chars(void *ud, const XML_Char *s, int len)
{
	struct entsoe_parse *p = ud;
	size_t room = sizeof(p->text) - 1 - p->text_len;
	size_t n = (size_t)len < room ? (size_t)len : room;
	memcpy(p->text + p->text_len, s, n);
	p->text_len += n;
	p->text[p->text_len] = '\0';
}

/* "PT15M", "PT30M", "PT60M", "PT1H", "P1D": the ISO 8601 durations ENTSO-E uses. */
static int parse_resolution(const char *s, double *seconds)
{
	int n = 0;
	char unit = 0, extra;
	if (sscanf(s, "PT%d%c%c", &n, &unit, &extra) == 2 && n > 0 && (unit == 'M' || unit == 'H'))
		*seconds = n * (unit == 'M' ? 60.0 : 3600.0);
	else if (sscanf(s, "P%dD%c", &n, &extra) == 1 && n > 0)
		*seconds = n * 86400.0;
	else
		return -EINVAL;
	return 0;
}

static char *trim_text(char *s)
{
	while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

static void XMLCALL entsoe_end(void *ud, const XML_Char *name)
{
	struct entsoe_parse *p = ud;
	const char *n = local_name(name);
	char *text = trim_text(p->text);
	const char *parent = parent_name(p, 1);
	if (p->is_ack) {
		if (strcmp(parent, "Reason") == 0 && strcmp(n, "code") == 0)
			snprintf(p->ack_code, sizeof(p->ack_code), "%s", text);
		else if (strcmp(parent, "Reason") == 0 && strcmp(n, "text") == 0)
			snprintf(p->ack_text, sizeof(p->ack_text), "%s", text);
	} else if (p->n_series) {
		struct entsoe_series *s = &p->series[p->n_series - 1];
		struct entsoe_period *per = s->n_periods ? &s->periods[s->n_periods - 1] : NULL;
		double v;
		if (strcmp(n, "inBiddingZone_Domain.mRID") == 0) {
			s->in_domain = true;
		} else if (strcmp(n, "outBiddingZone_Domain.mRID") == 0) {
			s->out_domain = true;
		} else if (strcmp(n, "curveType") == 0) {
			s->curve_a03 = strcmp(text, "A03") == 0;
		} else if (strcmp(n, "psrType") == 0 && strcmp(parent, "MktPSRType") == 0) {
			snprintf(s->psr, sizeof(s->psr), "%s", text);
		} else if (per && strcmp(parent, "timeInterval") == 0 &&
		           strcmp(parent_name(p, 2), "Period") == 0 &&
		           (strcmp(n, "start") == 0 || strcmp(n, "end") == 0)) {
			if (energy_parse_time(text, &v) < 0) {
				entsoe_fail(p, "bad time '%s' in Period/timeInterval", text);
				return;
			}
			if (n[0] == 's')
				per->start = v;
			else
				per->end = v;
		} else if (per && strcmp(n, "resolution") == 0 && strcmp(parent, "Period") == 0) {
			if (parse_resolution(text, &per->resolution_s) < 0) {
				entsoe_fail(p, "unsupported resolution '%s'", text);
				return;
			}
		} else if (strcmp(n, "position") == 0 && strcmp(parent, "Point") == 0) {
			uint64_t pos;
			if (energy_parse_u64(text, &pos) < 0 || pos < 1 ||
			    pos > ENTSOE_POSITION_MAX) {
				entsoe_fail(p, "bad Point position '%s'", text);
				return;
			}
			p->point_position = (int)pos;
		} else if (strcmp(n, "quantity") == 0 && strcmp(parent, "Point") == 0) {
			if (energy_parse_double(text, &v) < 0 || v < 0) {
				entsoe_fail(p, "bad Point quantity '%s' (MW)", text);
				return;
			}
			p->point_quantity = v;
			p->point_has_quantity = true;
		} else if (per && strcmp(n, "Point") == 0) {
			if (!p->point_position || !p->point_has_quantity) {
				entsoe_fail(p, "a Point without %s",
				            p->point_position ? "quantity" : "position");
				return;
			}
			struct entsoe_point *np = grow(per->points, &per->cap_points, per->n_points,
			                               sizeof(*per->points));
			if (!np) {
				entsoe_fail(p, "out of memory%s", "");
				return;
			}
			per->points = np;
			per->points[per->n_points++] =
			    (struct entsoe_point){p->point_position, p->point_quantity};
		}
	}
	if (p->depth > 0)
		p->depth--;
	p->text_len = 0;
	p->text[0] = '\0';
}

static void entsoe_free(struct entsoe_parse *p)
{
	for (int i = 0; i < p->n_series; i++) {
		for (int k = 0; k < p->series[i].n_periods; k++)
			free(p->series[i].periods[k].points);
		free(p->series[i].periods);
	}
	free(p->series);
}

static double period_end(const struct entsoe_period *per)
{
	if (isfinite(per->end))
		return per->end;
	int max = 0;
	for (int i = 0; i < per->n_points; i++)
		if (per->points[i].position > max)
			max = per->points[i].position;
	return per->start + per->resolution_s * max;
}

/* The quantity of a series at instant t, or -ENOENT. A03 curves leave out positions whose
 * value repeats the previous one. */
static int series_value_at(const struct entsoe_series *s, double t, double *mw)
{
	for (int k = 0; k < s->n_periods; k++) {
		const struct entsoe_period *per = &s->periods[k];
		if (!(t >= per->start && t < period_end(per)))
			continue;
		/* A Period may end centuries later (year 9999): past the last possible position
		 * the slot number no longer matters, and it must not overflow an int. */
		double slot = floor((t - per->start) / per->resolution_s) + 1;
		int pos = slot > ENTSOE_POSITION_MAX ? ENTSOE_POSITION_MAX + 1 : (int)slot,
		    best = 0;
		for (int i = 0; i < per->n_points; i++) {
			int ppos = per->points[i].position;
			if (ppos == pos || (s->curve_a03 && ppos < pos && ppos > best)) {
				best = ppos;
				*mw = per->points[i].quantity_mw;
				if (ppos == pos)
					return 0;
			}
		}
		if (best)
			return 0;
	}
	return -ENOENT;
}

int carbon_parse_entsoe(const char *body, size_t len, struct carbon_reading *out, char *err,
                        size_t errlen)
{
	struct entsoe_parse p = {0};
	memset(out, 0, sizeof(*out));
	p.xp = XML_ParserCreate(NULL);
	if (!p.xp) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	XML_SetUserData(p.xp, &p);
	XML_SetElementHandler(p.xp, entsoe_start, entsoe_end);
	XML_SetCharacterDataHandler(p.xp, entsoe_chars);
	int rc = 0;
	if (XML_Parse(p.xp, body, (int)len, XML_TRUE) == XML_STATUS_ERROR && !p.err[0])
		snprintf(p.err, sizeof(p.err), "not well-formed XML: %s at line %lu",
		         XML_ErrorString(XML_GetErrorCode(p.xp)),
		         (unsigned long)XML_GetCurrentLineNumber(p.xp));
	XML_ParserFree(p.xp);
	if (p.err[0]) {
		snprintf(err, errlen, "ENTSO-E answer: %s", p.err);
		rc = -EINVAL;
		goto out;
	}
	if (p.is_ack) {
		/* ENTSO-E's way of saying "no data" (reason 999) or "bad request". */
		snprintf(err, errlen, "ENTSO-E acknowledgement (reason %s): %s",
		         p.ack_code[0] ? p.ack_code : "?",
		         p.ack_text[0] ? p.ack_text : "no reason text given");
		rc = -ENODATA;
		goto out;
	}
	/* The latest instant every production series covers: the end of the shortest one minus
	 * the finest resolution (a PT60M series covers each of the four PT15M slots in its
	 * hour). */
	double covered_until = INFINITY, finest = INFINITY;
	int n_production = 0;
	for (int i = 0; i < p.n_series; i++) {
		const struct entsoe_series *s = &p.series[i];
		if (s->out_domain || !s->psr[0])
			continue; /* consumption (pumping, charging) is not generation */
		double end = -INFINITY;
		for (int k = 0; k < s->n_periods; k++) {
			const struct entsoe_period *per = &s->periods[k];
			if (!isfinite(per->start) || per->resolution_s <= 0) {
				snprintf(
				    err, errlen,
				    "ENTSO-E answer: a Period of %s without start or resolution",
				    s->psr);
				rc = -EINVAL;
				goto out;
			}
			if (per->n_points == 0)
				continue;
			if (period_end(per) > end)
				end = period_end(per);
			if (per->resolution_s < finest)
				finest = per->resolution_s;
		}
		if (end == -INFINITY)
			continue;
		n_production++;
		if (end < covered_until)
			covered_until = end;
	}
	if (n_production == 0) {
		snprintf(err, errlen,
		         "ENTSO-E answer: no generation series (TimeSeries with "
		         "inBiddingZone_Domain and points) in the document");
		rc = -ENODATA;
		goto out;
	}
	double t = covered_until - finest, total = 0, weighted = 0, groups[CARBON_GROUPS] = {0};
	int missing = 0, unknown = 0;
	for (int i = 0; i < p.n_series; i++) {
		const struct entsoe_series *s = &p.series[i];
		double mw, factor;
		enum carbon_group g;
		if (s->out_domain || !s->psr[0])
			continue;
		if (series_value_at(s, t, &mw) < 0) {
			missing++;
			continue;
		}
		if (carbon_psr_type(s->psr, &g, &factor) < 0) {
			unknown++;
			g = CARBON_OTHER;
			factor = 700;
		}
		total += mw;
		weighted += mw * factor;
		groups[g] += mw;
	}
	if (!isfinite(total) || !isfinite(weighted)) {
		snprintf(err, errlen, "ENTSO-E answer: quantities too large to add up (MW)");
		rc = -ERANGE;
		goto out;
	}
	if (total <= 0) {
		snprintf(err, errlen, "ENTSO-E answer: zero generation at the latest instant");
		rc = -ENODATA;
		goto out;
	}
	out->intensity_g_per_kwh = weighted / total;
	out->data_time = t;
	out->have_mix = true;
	for (int g = 0; g < CARBON_GROUPS; g++)
		out->mix[g] = groups[g] / total;
	if (missing || unknown)
		snprintf(out->note, sizeof(out->note),
		         "%d production series had no value at the latest instant, %d had an "
		         "unknown production type (counted as other, 700 g/kWh)",
		         missing, unknown);
out:
	entsoe_free(&p);
	return rc;
}

/* ---- JSON providers ---------------------------------------------------------------------- */

static json_t *load_json(const char *body, const char *what, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		snprintf(err, errlen, "%s: not JSON: %s (line %d)", what, jerr.text, jerr.line);
	return root;
}

/* Optional time field: NAN when absent, error when present but not a time. */
static int json_time(json_t *v, double *t)
{
	*t = NAN;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || energy_parse_time(json_string_value(v), t) < 0)
		return -EINVAL;
	return 0;
}

/* Shares from the groups' totals; -ERANGE (and no mix) when the figures are too large to add
 * up, which would make every share NaN. */
static int normalise_mix(struct carbon_reading *out, const double *groups)
{
	double total = 0;
	for (int g = 0; g < CARBON_GROUPS; g++)
		total += groups[g];
	bool ok = isfinite(total);
	out->have_mix = ok && total > 0;
	for (int g = 0; g < CARBON_GROUPS; g++)
		out->mix[g] = out->have_mix ? groups[g] / total : 0;
	return ok ? 0 : -ERANGE;
}

int carbon_parse_uk_intensity(const char *body, struct carbon_reading *out, char *err,
                              size_t errlen)
{
	json_t *root = load_json(body, "carbonintensity.org.uk /intensity", err, errlen);
	if (!root)
		return -EINVAL;
	int rc = -EINVAL;
	json_t *data = json_object_get(root, "data"), *entry = NULL, *intensity, *v;
	if (json_is_array(data) && json_array_size(data) > 0)
		entry = json_array_get(data, json_array_size(data) - 1);
	intensity = json_object_get(entry, "intensity");
	/* The measured-and-estimated "actual" once the half hour is over, the forecast before. */
	v = json_object_get(intensity, "actual");
	if (!json_is_number(v))
		v = json_object_get(intensity, "forecast");
	if (!json_is_number(v) || json_number_value(v) < 0) {
		snprintf(err, errlen,
		         "carbonintensity.org.uk /intensity: expected {\"data\": [{\"intensity\": "
		         "{\"actual\" or \"forecast\": g/kWh}}]}");
		goto out;
	}
	out->intensity_g_per_kwh = json_number_value(v);
	if (json_time(json_object_get(entry, "from"), &out->data_time) < 0) {
		snprintf(err, errlen, "carbonintensity.org.uk /intensity: bad \"from\" time");
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int carbon_parse_uk_generation(const char *body, struct carbon_reading *out, char *err,
                               size_t errlen)
{
	static const struct {
		const char *fuel;
		enum carbon_group group;
	} fuels[] = {{"biomass", CARBON_RENEWABLE}, {"coal", CARBON_FOSSIL},
	             {"imports", CARBON_OTHER},     {"gas", CARBON_FOSSIL},
	             {"nuclear", CARBON_NUCLEAR},   {"other", CARBON_OTHER},
	             {"hydro", CARBON_RENEWABLE},   {"solar", CARBON_RENEWABLE},
	             {"wind", CARBON_RENEWABLE},    {"storage", CARBON_STORAGE}};
	json_t *root = load_json(body, "carbonintensity.org.uk /generation", err, errlen);
	if (!root)
		return -EINVAL;
	int rc = -EINVAL;
	/* /generation answers one object; the ranged form answers a list of them. */
	json_t *data = json_object_get(root, "data");
	if (json_is_array(data))
		data = json_array_get(data, json_array_size(data) - 1);
	json_t *mix = json_object_get(data, "generationmix"), *item;
	if (!json_is_array(mix) || json_array_size(mix) == 0) {
		snprintf(err, errlen,
		         "carbonintensity.org.uk /generation: expected {\"data\": "
		         "{\"generationmix\": [{\"fuel\", \"perc\"}]}}");
		goto out;
	}
	double groups[CARBON_GROUPS] = {0};
	size_t i;
	json_array_foreach(mix, i, item)
	{
		const char *fuel = json_string_value(json_object_get(item, "fuel"));
		json_t *perc = json_object_get(item, "perc");
		if (!fuel || !json_is_number(perc) || json_number_value(perc) < 0) {
			snprintf(err, errlen,
			         "carbonintensity.org.uk /generation: entry %zu lacks a fuel or a "
			         "percentage",
			         i);
			goto out;
		}
		enum carbon_group g = CARBON_OTHER;
		for (size_t k = 0; k < sizeof(fuels) / sizeof(fuels[0]); k++)
			if (strcmp(fuels[k].fuel, fuel) == 0)
				g = fuels[k].group;
		groups[g] += json_number_value(perc);
	}
	/* Percentages are rounded and may not add up to 100 exactly. */
	if (normalise_mix(out, groups) < 0)
		snprintf(err, errlen,
		         "carbonintensity.org.uk /generation: shares too large to add up");
	else if (!out->have_mix)
		snprintf(err, errlen, "carbonintensity.org.uk /generation: every share is 0");
	rc = out->have_mix ? 0 : -EINVAL;
out:
	json_decref(root);
	return rc;
}

static double field(json_t *rec, const char *name)
{
	json_t *v = json_object_get(rec, name);
	return json_is_number(v) && json_number_value(v) > 0 ? json_number_value(v) : 0;
}

int carbon_parse_rte(const char *body, struct carbon_reading *out, char *err, size_t errlen)
{
	json_t *root = load_json(body, "RTE eCO2mix", err, errlen);
	if (!root)
		return -EINVAL;
	int rc = -EINVAL;
	json_t *results = json_object_get(root, "results"), *rec = NULL, *item;
	size_t i;
	/* Records come newest first; the newest quarter hour may not have its CO2 rate yet. */
	json_array_foreach(results, i, item)
	{
		if (json_is_number(json_object_get(item, "taux_co2"))) {
			rec = item;
			break;
		}
	}
	if (!rec) {
		snprintf(err, errlen,
		         "RTE eCO2mix: expected {\"results\": [{\"taux_co2\": g/kWh, "
		         "\"date_heure\", ...}]} with a number in taux_co2");
		goto out;
	}
	out->intensity_g_per_kwh = json_number_value(json_object_get(rec, "taux_co2"));
	if (out->intensity_g_per_kwh < 0 ||
	    json_time(json_object_get(rec, "date_heure"), &out->data_time) < 0) {
		snprintf(err, errlen, "RTE eCO2mix: bad taux_co2 or date_heure");
		goto out;
	}
	/* Production in MW per source. Pumping (pompage), battery charging (stockage_batterie)
	 * and exchanges are consumption or trade, not generation. Pumped-storage turbining is in
	 * hydraulique and also given alone (hydraulique_step_turbinage): it is storage. */
	double groups[CARBON_GROUPS] = {0};
	double step = field(rec, "hydraulique_step_turbinage");
	groups[CARBON_NUCLEAR] = field(rec, "nucleaire");
	groups[CARBON_FOSSIL] = field(rec, "gaz") + field(rec, "charbon") + field(rec, "fioul");
	groups[CARBON_RENEWABLE] = field(rec, "eolien") + field(rec, "solaire") +
	                           field(rec, "bioenergies") +
	                           fmax(field(rec, "hydraulique") - step, 0);
	groups[CARBON_STORAGE] = step + field(rec, "destockage_batterie");
	if (normalise_mix(out, groups) < 0)
		snprintf(out->note, sizeof(out->note),
		         "mix unavailable: production figures too large to add up");
	else if (!out->have_mix)
		snprintf(out->note, sizeof(out->note),
		         "mix unavailable: no production figures in "
		         "the record");
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int carbon_parse_em_intensity(const char *body, struct carbon_reading *out, char *err,
                              size_t errlen)
{
	json_t *root = load_json(body, "Electricity Maps carbon-intensity", err, errlen);
	if (!root)
		return -EINVAL;
	int rc = -EINVAL;
	json_t *v = json_object_get(root, "carbonIntensity");
	if (!json_is_number(v) || json_number_value(v) < 0) {
		json_t *msg = json_object_get(root, "message");
		snprintf(err, errlen,
		         "Electricity Maps carbon-intensity: no carbonIntensity in the answer%s%s",
		         json_is_string(msg) ? ": " : "",
		         json_is_string(msg) ? json_string_value(msg) : "");
		goto out;
	}
	out->intensity_g_per_kwh = json_number_value(v);
	if (json_time(json_object_get(root, "datetime"), &out->data_time) < 0) {
		snprintf(err, errlen, "Electricity Maps carbon-intensity: bad datetime");
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int carbon_parse_em_breakdown(const char *body, struct carbon_reading *out, char *err,
                              size_t errlen)
{
	static const struct {
		const char *source;
		enum carbon_group group;
	} sources[] = {
	    {"nuclear", CARBON_NUCLEAR},
	    {"geothermal", CARBON_RENEWABLE},
	    {"biomass", CARBON_RENEWABLE},
	    {"coal", CARBON_FOSSIL},
	    {"wind", CARBON_RENEWABLE},
	    {"solar", CARBON_RENEWABLE},
	    {"hydro", CARBON_RENEWABLE},
	    {"gas", CARBON_FOSSIL},
	    {"oil", CARBON_FOSSIL},
	    {"unknown", CARBON_OTHER},
	    {"hydro discharge", CARBON_STORAGE},
	    {"battery discharge", CARBON_STORAGE},
	};
	json_t *root = load_json(body, "Electricity Maps power-breakdown", err, errlen);
	if (!root)
		return -EINVAL;
	int rc = -EINVAL;
	/* What the zone consumes (imports traced to their origin), matching the consumption-based
	 * carbonIntensity of the same provider. */
	json_t *bd = json_object_get(root, "powerConsumptionBreakdown"), *v;
	if (!json_is_object(bd)) {
		snprintf(err, errlen,
		         "Electricity Maps power-breakdown: no "
		         "powerConsumptionBreakdown object in the answer");
		goto out;
	}
	double groups[CARBON_GROUPS] = {0};
	const char *key;
	json_object_foreach(bd, key, v)
	{
		if (json_is_null(v))
			continue;
		if (!json_is_number(v)) {
			snprintf(err, errlen,
			         "Electricity Maps power-breakdown: '%s' is not a number", key);
			goto out;
		}
		enum carbon_group g = CARBON_OTHER;
		for (size_t k = 0; k < sizeof(sources) / sizeof(sources[0]); k++)
			if (strcmp(sources[k].source, key) == 0)
				g = sources[k].group;
		if (json_number_value(v) > 0)
			groups[g] += json_number_value(v);
	}
	if (normalise_mix(out, groups) < 0)
		snprintf(err, errlen,
		         "Electricity Maps power-breakdown: figures too large to add up");
	else if (!out->have_mix)
		snprintf(err, errlen, "Electricity Maps power-breakdown: every source is 0");
	rc = out->have_mix ? 0 : -ENODATA;
out:
	json_decref(root);
	return rc;
}
