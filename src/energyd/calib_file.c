/*
 * The CPU model's stored calibration, CALIB_FILE in the state directory: JSON written whole to a
 * temporary file, synced and renamed over the old one, so that a crash leaves the old fit or the
 * new one, never half of either. A file that does not parse, holds a number out of range, or
 * whose fit does not follow from its own sums is not a calibration: it is ignored (the caller
 * logs why) and replaced by the next fit.
 */
#define _GNU_SOURCE
#include "calib.h"
#include "energy_util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static json_t *calib_ids_json(const char (*ids)[CHANNEL_ID_MAX], int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_string(ids[i]));
	return a;
}

json_t *calib_fit_json(const struct calib_fit *f, bool with_sums)
{
	json_t *to = calib_ids_json(f->fitted_to, f->n_fitted_to);
	json_t *o =
	    json_pack("{s:f, s:f, s:f, s:I, s:f, s:f, s:s, s:s, s:o, s:b}", "idle_watts",
	              f->r.idle_watts, "max_watts", f->r.max_watts, "rms_error_percent",
	              f->r.rms_error_pct, "windows", (json_int_t)f->sums.n, "utilisation_min",
	              f->sums.u_min, "utilisation_max", f->sums.u_max, "fitted_at", f->fitted_at,
	              "against", f->against, "fitted_to", to, "measured", 0);
	if (f->n_subtracted)
		json_object_set_new(o, "subtracted",
		                    calib_ids_json(f->subtracted, f->n_subtracted));
	if (with_sums) {
		const struct cpufit_sums *s = &f->sums;
		json_object_set_new(o, "sums",
		                    json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}", "n", s->n, "su",
		                              s->su, "suu", s->suu, "sp", s->sp, "sup", s->sup,
		                              "spp", s->spp));
	}
	return o;
}

int calib_write(const struct calib_fit *f, const struct calib_fit *rest, char *err, size_t len)
{
	json_t *o = calib_fit_json(f, true);
	json_object_set_new(o, "version", json_integer(CALIB_FILE_VERSION));
	if (rest && rest->n_fitted_to)
		json_object_set_new(o, "rest", calib_fit_json(rest, true));
	char *text = json_dumps(o, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
	json_decref(o);
	if (!text) {
		snprintf(err, len, "out of memory");
		return -ENOMEM;
	}
	const char *tmp = CALIB_FILE ".tmp";
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	int rc = 0;
	/* Readable by all (it is no secret): energyd started by a user falls back on it. */
	if (fd < 0 || fchmod(fd, 0644) < 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
	} else {
		size_t n = strlen(text), done = 0;
		while (done < n && rc == 0) {
			ssize_t w = write(fd, text + done, n - done);
			if (w < 0 && errno != EINTR)
				rc = -errno;
			else if (w > 0)
				done += (size_t)w;
		}
		if (rc == 0 && fsync(fd) < 0)
			rc = -errno;
		if (close(fd) < 0 && rc == 0)
			rc = -errno;
		if (rc == 0 && rename(tmp, CALIB_FILE) < 0)
			rc = -errno;
		if (rc < 0)
			unlink(tmp);
	}
	free(text);
	if (rc < 0)
		snprintf(err, len, "writing %s: %s", CALIB_FILE, strerror(-rc));
	return rc;
}

/* The sums' own consistency: utilisation in [0, 1] and watts >= 0 bound each sum by others. */
static bool calib_sums_ok(const struct cpufit_sums *s)
{
	const double v[] = {s->n, s->su, s->suu, s->sp, s->sup, s->spp};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (!isfinite(v[i]) || v[i] < 0)
			return false;
	double slack = 1e-9 * (1 + s->n + s->sp);
	return s->n <= CPUFIT_WINDOWS_MAX && s->su <= s->n + slack && s->suu <= s->su + slack &&
	       s->sup <= s->sp + slack && s->sp <= s->n * SAMPLER_MAX_PLAUSIBLE_WATTS &&
	       s->u_min >= 0 && s->u_max <= 1 && s->u_min <= s->u_max;
}

/* A list of 1 to CALIB_CHANNELS_MAX channel ids into ids: their number, or -EINVAL. */
static int calib_parse_channels(json_t *to, char (*ids)[CHANNEL_ID_MAX])
{
	size_t i;
	json_t *v;
	if (!json_is_array(to) || json_array_size(to) < 1 ||
	    json_array_size(to) > CALIB_CHANNELS_MAX)
		return -EINVAL;
	json_array_foreach(to, i, v)
	{
		const char *id = json_string_value(v);
		if (!id || !id[0] || strlen(id) >= CHANNEL_ID_MAX)
			return -EINVAL;
		snprintf(ids[i], CHANNEL_ID_MAX, "%s", id);
	}
	return (int)json_array_size(to);
}

static bool calib_near(double a, double b)
{
	return fabs(a - b) <= 1e-6 * (1 + fabs(a) + fabs(b));
}

/* What against may say: the CPU fit is to "rapl" or "wall", the rest fit to "rest". */
static bool calib_against_ok(const char *against, bool rest)
{
	return rest ? strcmp(against, "rest") == 0
	            : strcmp(against, "rapl") == 0 || strcmp(against, "wall") == 0;
}

/* One fit object of the file (the CPU fit, or rest: its rest fit): 0, or -1 with why. */
static int calib_parse_fit(json_t *o, bool rest, struct calib_fit *f, char *why, size_t len)
{
	json_error_t jerr;
	double idle, max, rms, t;
	const char *at, *against;
	json_t *to, *minus = NULL;
	struct cpufit_sums *s = &f->sums;
	int rc = json_unpack_ex(
	    o, &jerr, 0,
	    "{s:F, s:F, s:F, s:F, s:F, s:s, s:s, s:o, s?o, s:{s:F, s:F, s:F, s:F, s:F, s:F}}",
	    "idle_watts", &idle, "max_watts", &max, "rms_error_percent", &rms, "utilisation_min",
	    &s->u_min, "utilisation_max", &s->u_max, "fitted_at", &at, "against", &against,
	    "fitted_to", &to, "subtracted", &minus, "sums", "n", &s->n, "su", &s->su, "suu",
	    &s->suu, "sp", &s->sp, "sup", &s->sup, "spp", &s->spp);
	if (rc < 0)
		snprintf(why, len, "%s", jerr.text);
	else if (!calib_sums_ok(s))
		snprintf(why, len, "sums out of range"), rc = -1;
	else if (strlen(at) >= sizeof(f->fitted_at) || energy_parse_time(at, &t) < 0 ||
	         strlen(at) < 10)
		snprintf(why, len, "fitted_at is not a date"), rc = -1;
	else if (!calib_against_ok(against, rest))
		snprintf(why, len, "against is not %s", rest ? "rest" : "rapl or wall"), rc = -1;
	else if ((f->n_fitted_to = calib_parse_channels(to, f->fitted_to)) < 0 ||
	         (rest && f->n_fitted_to != 1))
		snprintf(why, len, "fitted_to is not a list of 1 to %d channel ids",
		         rest ? 1 : CALIB_CHANNELS_MAX),
		    rc = -1;
	else if (rest != (minus != NULL) ||
	         (minus && (f->n_subtracted = calib_parse_channels(minus, f->subtracted)) < 0))
		snprintf(why, len, "subtracted is %s",
		         rest ? "not a list of channel ids" : "for the rest fit only"),
		    rc = -1;
	else if (cpufit_solve(s, &f->r, why, len) < 0)
		rc = -1; /* why says what is missing */
	else if (!calib_near(f->r.idle_watts, idle) || !calib_near(f->r.max_watts, max))
		snprintf(why, len,
		         "idle_watts %g and max_watts %g do not follow from its sums (%g, %g)",
		         idle, max, f->r.idle_watts, f->r.max_watts),
		    rc = -1;
	if (rc == 0) {
		snprintf(f->fitted_at, sizeof(f->fitted_at), "%s", at);
		snprintf(f->against, sizeof(f->against), "%s", against);
	}
	return rc < 0 ? -1 : 0;
}

int calib_parse(const char *text, struct calib_fit *f, struct calib_fit *rest, char *why,
                size_t len)
{
	memset(f, 0, sizeof(*f));
	memset(rest, 0, sizeof(*rest));
	json_error_t jerr;
	json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		snprintf(why, len, "not JSON: %s (line %d)", jerr.text, jerr.line);
		return -EINVAL;
	}
	json_t *version = json_object_get(o, "version");
	json_t *r = json_object_get(o, "rest");
	char rwhy[200];
	int rc = -1;
	if (!json_is_integer(version) || json_integer_value(version) < 1 ||
	    json_integer_value(version) > CALIB_FILE_VERSION)
		snprintf(why, len, "version is not 1 to %d", CALIB_FILE_VERSION);
	else if (r && json_integer_value(version) < 2)
		snprintf(why, len, "a rest fit in a version 1 file");
	else if (calib_parse_fit(o, false, f, why, len) < 0)
		;
	else if (r && !json_is_null(r) && calib_parse_fit(r, true, rest, rwhy, sizeof(rwhy)) < 0)
		snprintf(why, len, "rest: %s", rwhy), memset(rest, 0, sizeof(*rest));
	else
		rc = 0;
	json_decref(o);
	return rc < 0 ? -EINVAL : 0;
}

int calib_read(int fd, struct calib_fit *f, struct calib_fit *rest, char *why, size_t len)
{
	char *text = malloc(CALIB_FILE_MAX + 1);
	if (!text) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	int n = fd < 0 ? fd : energy_pread_text(fd, text, CALIB_FILE_MAX + 1);
	int rc = n;
	if (n == -ENOENT)
		snprintf(why, len, "none yet");
	else if (n == -EIO)
		snprintf(why, len, "empty"), rc = -EINVAL;
	else if (n < 0)
		snprintf(why, len, "cannot read it: %s", strerror(-n));
	else if (n >= CALIB_FILE_MAX)
		snprintf(why, len, "longer than %d bytes", CALIB_FILE_MAX), rc = -EINVAL;
	else
		rc = calib_parse(text, f, rest, why, len);
	free(text);
	return rc < 0 ? rc : 0;
}
