/*
 * Fetching the live providers over HTTP(S) with libcurl. Called from the carbon thread only, so a
 * slow provider delays nothing but the next fetch; every transfer has a total timeout, a size
 * cap and no redirects to other protocols.
 */
#define _GNU_SOURCE
#include "carbon.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FETCH_MAX_BYTES (8u << 20) /* a day of ENTSO-E A75 for a big zone is ~1 MiB */

static const char *const default_urls[] = {
    [CARBON_STATIC] = "",
    [CARBON_CONSTANT] = "",
    [CARBON_ENTSOE] = "https://web-api.tp.entsoe.eu/api",
    [CARBON_ELECTRICITYMAPS] = "https://api.electricitymap.org/v3",
    [CARBON_UK] = "https://api.carbonintensity.org.uk",
    [CARBON_RTE] = "https://odre.opendatasoft.com/api/explore/v2.1/catalog/datasets/"
                   "eco2mix-national-tr/records",
};

/* Set when energyd stops: a transfer in progress ends at once instead of after timeout_s. */
static atomic_bool abort_all;

void carbon_fetch_abort(void)
{
	atomic_store(&abort_all, true);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	(void)ud, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return atomic_load(&abort_all) ? 1 : 0;
}

struct buffer {
	char *data;
	size_t len, cap;
	bool too_big; /* the answer passed the size limit: dropped */
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buffer *b = ud;
	size_t n = size * nmemb;
	if (b->len + n + 1 > FETCH_MAX_BYTES) {
		b->too_big = true;
		return 0; /* aborts the transfer */
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *nd = realloc(b->data, cap);
		if (!nd)
			return 0;
		b->data = nd;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

int carbon_http_get(const char *url, const char *header, double timeout_s, char **body, size_t *len,
                    long *status, char *err, size_t errlen)
{
	*body = NULL;
	*len = 0;
	*status = 0;
	CURL *curl = curl_easy_init();
	if (!curl) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -ENOMEM;
	}
	struct buffer b = {0};
	struct curl_slist *headers = NULL;
	if (header)
		headers = curl_slist_append(headers, header);
	char curl_err[CURL_ERROR_SIZE] = "";
	long timeout_ms = (long)ceil(timeout_s * 1000);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT,
	                 "energyd/"
	                 "0.1.0");
	curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, ""); /* gzip when offered */
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	CURLcode cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	if (cc != CURLE_OK) {
		free(b.data);
		if (b.too_big)
			snprintf(err, errlen, "answer larger than %u MiB", FETCH_MAX_BYTES >> 20);
		else if (cc == CURLE_OPERATION_TIMEDOUT)
			snprintf(err, errlen, "no answer within %.3g s (timeout_s)", timeout_s);
		else
			snprintf(err, errlen, "%s",
			         curl_err[0] ? curl_err : curl_easy_strerror(cc));
		return cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	if (!b.data) {
		b.data = strdup("");
		if (!b.data) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	*body = b.data;
	*len = b.len;
	return 0;
}

/* Replace every occurrence of secret (when it is long enough to be one) in buf by "***". */
static void redact(char *buf, const char *secret, size_t secret_len)
{
	if (secret_len < 4)
		return;
	for (char *p = buf; (p = memmem(p, strlen(p), secret, secret_len));) {
		memcpy(p, "***", 3);
		memmove(p + 3, p + secret_len, strlen(p + secret_len) + 1);
		p += 3;
	}
}

/*
 * A short, printable excerpt of a provider's error body for the log, never for an answer: a
 * provider (or a proxy in between) may echo the request, and the request carries the token.
 * The query values of the URL and the value of the extra header (the token) are cut out before
 * the excerpt is shortened, then anything after a '?' (a URL's query) is cut too.
 */
static void excerpt(const char *body, const char *url, const char *header, char *out, size_t cap)
{
	char buf[4096];
	size_t n = 0;
	for (const char *p = body; *p && n + 1 < sizeof(buf); p++)
		buf[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : ' ';
	buf[n] = '\0';
	const char *q = strchr(url, '?');
	while (q && *q) {
		const char *v = strchr(q, '=');
		if (!v)
			break;
		v++;
		size_t len = strcspn(v, "&#");
		redact(buf, v, len);
		q = v + len;
	}
	const char *colon = header ? strchr(header, ':') : NULL;
	if (colon) {
		colon += strspn(colon + 1, " ") + 1;
		redact(buf, colon, strlen(colon));
	}
	for (char *p = buf; (p = strchr(p, '?'));) {
		size_t len = strcspn(p + 1, " \"'<>");
		memmove(p + 1, p + 1 + len, strlen(p + 1 + len) + 1);
		p++;
	}
	snprintf(out, cap, "%.120s", buf);
}

/* GET and check the status. ENTSO-E answers errors as 200 or 4xx with an acknowledgement
 * document, which its parser explains better than the status: those are handed over. Other
 * error bodies go to the log only (sanitized), never into the error that answers show. */
static int get(const struct carbon_config *c, const char *what, const char *url, const char *header,
               bool keep_error_body, char **body, size_t *len, char *err, size_t errlen)
{
	long status;
	char msg[CARBON_ERROR_MAX];
	int rc = carbon_http_get(url, header, c->timeout_s, body, len, &status, msg, sizeof(msg));
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", what, msg);
		return rc;
	}
	if (status >= 200 && status < 300)
		return 0;
	if (keep_error_body && status != 401 && status != 403 &&
	    strstr(*body, "Acknowledgement_MarketDocument"))
		return 0;
	char ex[128];
	excerpt(*body, url, header, ex, sizeof(ex));
	log_warn("carbon: %s: HTTP %ld%s%s", what, status, ex[0] ? ": " : "", ex);
	snprintf(err, errlen, "%s: HTTP %ld (the provider's answer is in energyd's log)", what,
	         status);
	if (status == 401 || status == 403)
		snprintf(err + strlen(err), errlen - strlen(err),
		         "; check the token in token_file");
	free(*body);
	*body = NULL;
	return -EPROTO;
}

static const char *base(const struct carbon_config *c)
{
	return c->base_url[0] ? c->base_url : default_urls[c->provider];
}

static void utc_stamp(double t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y%m%d%H%M", &tm);
}

static int fetch_entsoe(const struct carbon_config *c, const char *token, double now,
                        struct carbon_reading *out, char *err, size_t errlen)
{
	/* Actual generation per production type over the last six hours: data are published with
	 * a delay of up to an hour or two, so a shorter window may hold nothing yet. */
	char start[16], end[16], url[CARBON_URL_MAX + 512];
	double hour = floor(now / 3600) * 3600;
	utc_stamp(hour - 6 * 3600, start, sizeof(start));
	utc_stamp(hour + 3600, end, sizeof(end));
	CURL *curl = curl_easy_init();
	char *tok = curl ? curl_easy_escape(curl, token, 0) : NULL;
	char *zone = curl ? curl_easy_escape(curl, c->zone, 0) : NULL;
	if (!tok || !zone) {
		curl_free(tok);
		curl_free(zone);
		curl_easy_cleanup(curl);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(url, sizeof(url),
	         "%s?securityToken=%s&documentType=A75&processType=A16&in_Domain=%s&periodStart=%s"
	         "&periodEnd=%s",
	         base(c), tok, zone, start, end);
	curl_free(tok);
	curl_free(zone);
	curl_easy_cleanup(curl);
	char *body;
	size_t len;
	int rc = get(c, "ENTSO-E", url, NULL, true, &body, &len, err, errlen);
	if (rc < 0)
		return rc;
	rc = carbon_parse_entsoe(body, len, out, err, errlen);
	free(body);
	return rc;
}

/* The generation mix is a second request: when it fails, the intensity still stands and the
 * reading's note says why there is no mix. */
static void
fetch_mix(const struct carbon_config *c, const char *what, const char *url, const char *header,
          int (*parse)(const char *body, struct carbon_reading *out, char *err, size_t errlen),
          struct carbon_reading *out)
{
	char msg[CARBON_ERROR_MAX], *body;
	size_t len;
	if (get(c, what, url, header, false, &body, &len, msg, sizeof(msg)) == 0) {
		int rc = parse(body, out, msg, sizeof(msg));
		free(body);
		if (rc == 0)
			return;
	}
	snprintf(out->note, sizeof(out->note), "mix unavailable: %s", msg);
}

static int fetch_uk(const struct carbon_config *c, struct carbon_reading *out, char *err,
                    size_t errlen)
{
	char url[CARBON_URL_MAX + 32], *body;
	size_t len;
	snprintf(url, sizeof(url), "%s/intensity", base(c));
	int rc =
	    get(c, "carbonintensity.org.uk /intensity", url, NULL, false, &body, &len, err, errlen);
	if (rc < 0)
		return rc;
	rc = carbon_parse_uk_intensity(body, out, err, errlen);
	free(body);
	if (rc < 0)
		return rc;
	snprintf(url, sizeof(url), "%s/generation", base(c));
	fetch_mix(c, "carbonintensity.org.uk /generation", url, NULL, carbon_parse_uk_generation,
	          out);
	return 0;
}

static int fetch_rte(const struct carbon_config *c, struct carbon_reading *out, char *err,
                     size_t errlen)
{
	char url[CARBON_URL_MAX + 128], *body;
	size_t len;
	snprintf(url, sizeof(url),
	         "%s?order_by=date_heure%%20desc&limit=8&where=taux_co2%%20is%%20not%%20null",
	         base(c));
	int rc = get(c, "RTE eCO2mix", url, NULL, false, &body, &len, err, errlen);
	if (rc < 0)
		return rc;
	rc = carbon_parse_rte(body, out, err, errlen);
	free(body);
	return rc;
}

static int fetch_em(const struct carbon_config *c, const char *token, struct carbon_reading *out,
                    char *err, size_t errlen)
{
	char url[CARBON_URL_MAX + 128], header[512], *body;
	size_t len;
	CURL *curl = curl_easy_init();
	char *zone = curl ? curl_easy_escape(curl, c->zone, 0) : NULL;
	curl_easy_cleanup(curl);
	if (!zone) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(header, sizeof(header), "auth-token: %s", token);
	snprintf(url, sizeof(url), "%s/carbon-intensity/latest?zone=%s", base(c), zone);
	int rc = get(c, "Electricity Maps carbon-intensity", url, header, false, &body, &len, err,
	             errlen);
	if (rc == 0) {
		rc = carbon_parse_em_intensity(body, out, err, errlen);
		free(body);
	}
	if (rc == 0) {
		snprintf(url, sizeof(url), "%s/power-breakdown/latest?zone=%s", base(c), zone);
		fetch_mix(c, "Electricity Maps power-breakdown", url, header,
		          carbon_parse_em_breakdown, out);
	}
	curl_free(zone);
	return rc;
}

int carbon_fetch(const struct carbon_config *c, const char *token, double now,
                 struct carbon_reading *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->data_time = NAN;
	switch (c->provider) {
	case CARBON_ENTSOE:
		return fetch_entsoe(c, token, now, out, err, errlen);
	case CARBON_ELECTRICITYMAPS:
		return fetch_em(c, token, out, err, errlen);
	case CARBON_UK:
		return fetch_uk(c, out, err, errlen);
	case CARBON_RTE:
		return fetch_rte(c, out, err, errlen);
	case CARBON_STATIC:
	case CARBON_CONSTANT:
		break;
	}
	snprintf(err, errlen, "%s is not a live provider", carbon_provider_name(c->provider));
	return -EINVAL;
}
