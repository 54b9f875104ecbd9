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
#include <stdarg.h>
#include <string.h>

/* ---- ENTSO-E A75 ------------------------------------------------------------------------- */

struct entsoe_point {
	int position; /* 1-based position in the period */
	double quantity_mw;
};

struct entsoe_period {
	double start, end; /* end NAN when the document gives none */
	double resolution_s;
	struct entsoe_point *points;
	int n_points, cap_points;
};

struct entsoe_series {
	bool in_domain, out_domain; /* the series has inBiddingZone / outBiddingZone */
	bool curve_a03;             /* positions left out repeat the previous value */
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
	char text[ENTSOE_TEXT]; /* the text of the element being read */
	size_t text_len;
	bool root_seen, is_ack; /* the root element was read; it is an Acknowledgement */
	/* An acknowledgement's reason code and text. */
	char ack_code[32], ack_text[CARBON_ERROR_MAX];
	struct entsoe_series *series;
	int n_series, cap_series;
	int point_position;    /* the Point being read: its position (0: not yet) */
	double point_quantity; /* and quantity (MW) */
	bool point_has_quantity;
	char err[CARBON_ERROR_MAX]; /* the first error; the parse stops there */
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

/* Room for one more element in arr (n of *cap used, elements of size bytes): arr, grown when it
 * is full, or NULL after failing the parse. */
static void *grow(struct entsoe_parse *p, void *arr, int *cap, int n, size_t size)
{
	if (n < *cap)
		return arr;
	int ncap = *cap ? *cap * 2 : 8;
	void *na = realloc(arr, (size_t)ncap * size);
	if (na)
		*cap = ncap;
	else
		entsoe_fail(p, "out of memory%s", "");
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
		    grow(p, p->series, &p->cap_series, p->n_series, sizeof(*s));
		if (!s)
			return;
		p->series = s;
		memset(&p->series[p->n_series++], 0, sizeof(p->series[0]));
	} else if (strcmp(n, "Period") == 0 && p->n_series &&
	           strcmp(parent_name(p, 1), "TimeSeries") == 0) {
		struct entsoe_series *s = &p->series[p->n_series - 1];
		struct entsoe_period *np =
		    grow(p, s->periods, &s->cap_periods, s->n_periods, sizeof(*np));
		if (!np)
			return;
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
			struct entsoe_point *np =
			    grow(p, per->points, &per->cap_points, per->n_points, sizeof(*np));
			if (!np)
				return;
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

/* One provider answer being read: what names it in the one error message kept. */
struct answer {
	const char *what; /* the answer's name, first in the message */
	char *err;        /* the caller's message buffer */
	size_t errlen;
	bool failed; /* err holds the first error; later ones are dropped */
};

/* Say what is wrong with the answer, unless an earlier error was said: -EINVAL. */
static int answer_fail(struct answer *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int answer_fail(struct answer *a, const char *fmt, ...)
{
	if (!a->failed) {
		int n = snprintf(a->err, a->errlen, "%s: ", a->what);
		va_list ap;
		va_start(ap, fmt);
		if (n >= 0 && (size_t)n < a->errlen)
			vsnprintf(a->err + n, a->errlen - (size_t)n, fmt, ap);
		va_end(ap);
		a->failed = true;
	}
	return -EINVAL;
}

/* body as JSON (decref'ed when the caller's json_auto_t goes out of scope). NULL when it is not
 * JSON, which says so: jansson reads NULL as an empty value, so the reader's first check fails
 * and this first message stands. */
static json_t *answer_load(struct answer *a, const char *body)
{
	json_error_t jerr;
	json_t *root = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		answer_fail(a, "not JSON: %s (line %d)", jerr.text, jerr.line);
	return root;
}

/* The time of the figure from an optional time field (absent: NAN); field names it. */
static int take_time(struct answer *a, json_t *v, const char *field, struct carbon_reading *out)
{
	out->data_time = NAN;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v) && energy_parse_time(json_string_value(v), &out->data_time) == 0)
		return 0;
	return answer_fail(a, "bad %s", field);
}

/* The intensity (g/kWh) from v and the time of the figure from when (see take_time); when v is
 * not a number of at least 0, the error says what was expected. */
static int take_intensity(struct answer *a, json_t *v, json_t *when, const char *time_field,
                          const char *expected, struct carbon_reading *out)
{
	if (!json_is_number(v) || json_number_value(v) < 0)
		return answer_fail(a, "%s", expected);
	out->intensity_g_per_kwh = json_number_value(v);
	return take_time(a, when, time_field, out);
}

/* A provider's name for a kind of generation, and the group it counts in. */
struct fuel_group {
	const char *name;
	enum carbon_group group;
};

/* Add figure (MW, %) to the group of fuel in table; unknown fuels count as other. */
static void add_fuel(double *groups, const struct fuel_group *table, size_t n, const char *fuel,
                     double figure)
{
	enum carbon_group g = CARBON_OTHER;
	for (size_t k = 0; k < n; k++)
		if (strcmp(table[k].name, fuel) == 0)
			g = table[k].group;
	groups[g] += figure;
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

/* The mix of a mix-only answer, or an error when there is none. */
static int take_mix(struct answer *a, const double *groups, struct carbon_reading *out)
{
	if (normalise_mix(out, groups) < 0)
		return answer_fail(a, "figures too large to add up");
	return out->have_mix ? 0 : answer_fail(a, "every figure is 0");
}

int carbon_parse_uk_intensity(const char *body, struct carbon_reading *out, char *err,
                              size_t errlen)
{
	struct answer a = {"carbonintensity.org.uk /intensity", err, errlen, false};
	json_auto_t *root = answer_load(&a, body);
	json_t *data = json_object_get(root, "data"), *entry = NULL;
	if (json_is_array(data) && json_array_size(data) > 0)
		entry = json_array_get(data, json_array_size(data) - 1);
	json_t *intensity = json_object_get(entry, "intensity");
	/* The measured-and-estimated "actual" once the half hour is over, the forecast before. */
	json_t *v = json_object_get(intensity, "actual");
	if (!json_is_number(v))
		v = json_object_get(intensity, "forecast");
	return take_intensity(
	    &a, v, json_object_get(entry, "from"), "\"from\" time",
	    "expected {\"data\": [{\"intensity\": {\"actual\" or \"forecast\": g/kWh}}]}", out);
}

int carbon_parse_uk_generation(const char *body, struct carbon_reading *out, char *err,
                               size_t errlen)
{
	static const struct fuel_group fuels[] = {
	    {"biomass", CARBON_RENEWABLE}, {"coal", CARBON_FOSSIL},     {"imports", CARBON_OTHER},
	    {"gas", CARBON_FOSSIL},        {"nuclear", CARBON_NUCLEAR}, {"other", CARBON_OTHER},
	    {"hydro", CARBON_RENEWABLE},   {"solar", CARBON_RENEWABLE}, {"wind", CARBON_RENEWABLE},
	    {"storage", CARBON_STORAGE}};
	struct answer a = {"carbonintensity.org.uk /generation", err, errlen, false};
	json_auto_t *root = answer_load(&a, body);
	/* /generation answers one object; the ranged form answers a list of them. */
	json_t *data = json_object_get(root, "data");
	if (json_is_array(data))
		data = json_array_get(data, json_array_size(data) - 1);
	json_t *mix = json_object_get(data, "generationmix"), *item;
	if (!json_is_array(mix) || json_array_size(mix) == 0)
		return answer_fail(
		    &a, "expected {\"data\": {\"generationmix\": [{\"fuel\", \"perc\"}]}}");
	double groups[CARBON_GROUPS] = {0};
	size_t i;
	json_array_foreach(mix, i, item)
	{
		const char *fuel = json_string_value(json_object_get(item, "fuel"));
		json_t *perc = json_object_get(item, "perc");
		if (!fuel || !json_is_number(perc) || json_number_value(perc) < 0)
			return answer_fail(&a, "entry %zu lacks a fuel or a percentage", i);
		add_fuel(groups, fuels, sizeof(fuels) / sizeof(fuels[0]), fuel,
		         json_number_value(perc));
	}
	/* Percentages are rounded and may not add up to 100 exactly. */
	return take_mix(&a, groups, out);
}

static double field(json_t *rec, const char *name)
{
	json_t *v = json_object_get(rec, name);
	return json_is_number(v) && json_number_value(v) > 0 ? json_number_value(v) : 0;
}

int carbon_parse_rte(const char *body, struct carbon_reading *out, char *err, size_t errlen)
{
	struct answer a = {"RTE eCO2mix", err, errlen, false};
	json_auto_t *root = answer_load(&a, body);
	json_t *rec = NULL, *item;
	size_t i;
	/* Records come newest first; the newest quarter hour may not have its CO2 rate yet. */
	json_array_foreach(json_object_get(root, "results"), i, item)
	{
		if (json_is_number(json_object_get(item, "taux_co2"))) {
			rec = item;
			break;
		}
	}
	int rc = take_intensity(&a, json_object_get(rec, "taux_co2"),
	                        json_object_get(rec, "date_heure"), "date_heure",
	                        "expected {\"results\": [{\"taux_co2\": g/kWh, \"date_heure\", "
	                        "...}]} with a number of at least 0 in taux_co2",
	                        out);
	if (rc < 0)
		return rc;
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
	/* The intensity stands without the mix: the note says why there is none. */
	if (normalise_mix(out, groups) < 0)
		snprintf(out->note, sizeof(out->note),
		         "mix unavailable: production figures too large to add up");
	else if (!out->have_mix)
		snprintf(out->note, sizeof(out->note),
		         "mix unavailable: no production figures in the record");
	return 0;
}

int carbon_parse_em_intensity(const char *body, struct carbon_reading *out, char *err,
                              size_t errlen)
{
	struct answer a = {"Electricity Maps carbon-intensity", err, errlen, false};
	json_auto_t *root = answer_load(&a, body);
	/* The provider says why there is no figure in "message". */
	json_t *msg = json_object_get(root, "message");
	char expected[CARBON_ERROR_MAX];
	snprintf(expected, sizeof(expected), "no carbonIntensity in the answer%s%s",
	         json_is_string(msg) ? ": " : "",
	         json_is_string(msg) ? json_string_value(msg) : "");
	return take_intensity(&a, json_object_get(root, "carbonIntensity"),
	                      json_object_get(root, "datetime"), "datetime", expected, out);
}

int carbon_parse_em_breakdown(const char *body, struct carbon_reading *out, char *err,
                              size_t errlen)
{
	static const struct fuel_group sources[] = {
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
	struct answer a = {"Electricity Maps power-breakdown", err, errlen, false};
	json_auto_t *root = answer_load(&a, body);
	/* What the zone consumes (imports traced to their origin), matching the consumption-based
	 * carbonIntensity of the same provider. */
	json_t *bd = json_object_get(root, "powerConsumptionBreakdown"), *v;
	if (!json_is_object(bd))
		return answer_fail(&a, "no powerConsumptionBreakdown object in the answer");
	double groups[CARBON_GROUPS] = {0};
	const char *key;
	json_object_foreach(bd, key, v)
	{
		if (json_is_null(v))
			continue;
		if (!json_is_number(v))
			return answer_fail(&a, "'%s' is not a number", key);
		if (json_number_value(v) > 0)
			add_fuel(groups, sources, sizeof(sources) / sizeof(sources[0]), key,
			         json_number_value(v));
	}
	return take_mix(&a, groups, out);
}
