/*
 * InfluxDB output (influx.h): its own thread builds one batch of line protocol every interval
 * from what the sampler and the attribution already hold, queues it (bounded: the oldest batch
 * goes first) and writes the queue over HTTP with libcurl, backing off while the server fails.
 */
#define _GNU_SOURCE
#include "influx.h"
#include "daemon.h"
#include "attrib.h"
#include "energy.h"
#include "log.h"
#include "metrics.h"
#include "threads.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INFLUX_TIMEOUT_S   10.0
#define INFLUX_BACKOFF_MAX 60.0
#define INFLUX_POST_MAX    (1u << 20) /* bytes per request: several batches at once */
#define INFLUX_QUEUE_MAX   100000     /* batches, whatever memory_s / interval_s says */
#define INFLUX_ANSWER_MAX  4096       /* what we keep of an error answer */

struct influx {
	struct influx_config cfg;
	char token[INFLUX_TOKEN_MAX];       /* read from token_file before the privilege drop */
	char write_url[INFLUX_URL_MAX * 2]; /* the /write or /api/v2/write URL with its query */
	struct daemon *d; /* what is written: the sampler's counters, attribution */
	CURL *curl;
	struct threads_worker worker; /* the writer thread */
	atomic_bool stop;
	atomic_bool abort_transfers; /* set while the thread is being stopped */
	pthread_mutex_t lock;        /* the queue and the stats */
	pthread_cond_t wake;
	char **queue; /* ring of batches, oldest at head */
	size_t head, len, cap;
	struct influx_stats stats;
	/* the thread's own */
	double backoff_s, next_try, prev_t;
	/* The counters at prev_t, for the energy of the next batch. */
	uint64_t prev_host_uj, prev_uj[CHANNELS_MAX];
	bool have_prev; /* prev_* are set */
};

static double mono_s(void)
{
	return (double)energy_monotonic_ns() / 1e9;
}

/* ---- line protocol --------------------------------------------------------------------- */

void influx_put_tag(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strnlen(s, METRICS_LABEL_MAX), i = 0;
	while (i < len) {
		size_t n = metrics_utf8_len(p + i, len - i);
		if (n == 0) {
			fputs("\xEF\xBF\xBD", f);
			i++;
			continue;
		}
		if (n == 1 && (p[i] == ',' || p[i] == '=' || p[i] == ' ' || p[i] == '\\'))
			fputc('\\', f);
		if (n == 1 && (p[i] == '\n' || p[i] == '\r'))
			fputc(' ', f);
		else
			fwrite(p + i, 1, n, f);
		i += n;
	}
}

static void put_tag(FILE *f, const char *key, const char *value)
{
	if (!value || !*value)
		return; /* line protocol has no empty tag values */
	fprintf(f, ",%s=", key);
	influx_put_tag(f, value);
}

static long long ms(double t)
{
	return (long long)llround(t * 1e3);
}

/* One point with joules_total, and joules and watts since the previous batch when known. */
static void put_fields(FILE *f, struct influx *ix, uint64_t uj, uint64_t prev_uj, double t)
{
	fprintf(f, " joules_total=%.6f", (double)uj / 1e6);
	if (ix->have_prev && uj >= prev_uj && t > ix->prev_t) {
		double j = (double)(uj - prev_uj) / 1e6;
		fprintf(f, ",joules=%.6f,watts=%.6f", j, j / (t - ix->prev_t));
	} else if (!ix->have_prev) {
		fprintf(f, ",joules=%.6f", (double)uj / 1e6); /* since energyd started */
	}
	fprintf(f, " %lld\n", ms(t));
}

/* The batch of this interval, or NULL when there is no sample yet. */
static char *build_batch(struct influx *ix)
{
	struct daemon *d = ix->d;
	struct sampler *s = d->sampler;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	bool any = false;
	sampler_lock(s);
	const struct history *h = &s->history;
	double t = h->count ? history_time(h, h->count - 1) : 0;
	if (h->count && !(ix->have_prev && t <= ix->prev_t)) { /* nothing new: no batch */
		any = true;
		fputs("energy_host", f);
		put_tag(f, "host", d->hostname);
		put_tag(f, "measured", s->coverage.measured ? "true" : "false");
		put_tag(f, "rule", s->coverage.rule);
		put_fields(f, ix, s->host_uj, ix->prev_host_uj, t);
		for (int c = 0; c < d->set->n; c++) {
			const struct channel *ch = &d->set->ch[c];
			fputs("energy_channel", f);
			put_tag(f, "host", d->hostname);
			put_tag(f, "channel", ch->id);
			put_tag(f, "kind", channel_kind_name(ch->kind));
			put_tag(f, "measured", ch->measured ? "true" : "false");
			put_fields(f, ix, ch->energy_uj, ix->prev_uj[c], t);
			ix->prev_uj[c] = ch->energy_uj;
		}
		ix->prev_host_uj = s->host_uj;
		ix->prev_t = t;
		ix->have_prev = true;
	}
	sampler_unlock(s);
	/* Users: copied under the attribution's lock, named after it (a lookup may be slow). */
	struct attrib *a = d->attrib;
	struct attrib_user users[METRICS_USERS_MAX];
	size_t n_users = 0;
	double scan_t = 0;
	if (any && a && !attrib_off_reason(a)) {
		struct attrib_status st;
		attrib_lock(a);
		n_users = attrib_users_locked(a, users, METRICS_USERS_MAX);
		attrib_status_locked(a, &st);
		attrib_unlock(a);
		scan_t = st.scan_t;
	}
	for (size_t i = 0; i < n_users; i++) {
		char uid[16], name[64];
		snprintf(uid, sizeof(uid), "%u", (unsigned)users[i].uid);
		attrib_user_name(users[i].uid, name, sizeof(name));
		fputs("energy_user", f);
		put_tag(f, "host", d->hostname);
		put_tag(f, "uid", uid);
		put_tag(f, "user", name);
		fprintf(f, ",measured=false joules_total=%.6f %lld\n", users[i].uj / 1e6,
		        ms(scan_t));
	}
	if (fclose(f) != 0 || !any) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- queue ----------------------------------------------------------------------------- */

static void queue_push(struct influx *ix, char *batch)
{
	pthread_mutex_lock(&ix->lock);
	if (ix->len == ix->cap) {
		free(ix->queue[ix->head]);
		ix->head = (ix->head + 1) % ix->cap;
		ix->len--;
		ix->stats.batches_dropped++;
	}
	ix->queue[(ix->head + ix->len) % ix->cap] = batch;
	ix->len++;
	ix->stats.batches_pending = ix->len;
	pthread_mutex_unlock(&ix->lock);
}

/* The oldest batches, concatenated up to INFLUX_POST_MAX bytes: how many in *n. */
static char *queue_take(struct influx *ix, size_t *n)
{
	pthread_mutex_lock(&ix->lock);
	size_t total = 0, k = 0;
	while (k < ix->len) {
		size_t l = strlen(ix->queue[(ix->head + k) % ix->cap]);
		if (k > 0 && total + l > INFLUX_POST_MAX)
			break;
		total += l;
		k++;
	}
	char *body = k ? malloc(total + 1) : NULL;
	if (body) {
		size_t off = 0;
		for (size_t j = 0; j < k; j++) {
			const char *b = ix->queue[(ix->head + j) % ix->cap];
			size_t l = strlen(b);
			memcpy(body + off, b, l);
			off += l;
		}
		body[off] = '\0';
	}
	*n = body ? k : 0;
	pthread_mutex_unlock(&ix->lock);
	return body;
}

/* Remove the n oldest batches (written, or refused for good). */
static void queue_pop(struct influx *ix, size_t n, bool written)
{
	pthread_mutex_lock(&ix->lock);
	for (size_t j = 0; j < n && ix->len; j++) {
		free(ix->queue[ix->head]);
		ix->head = (ix->head + 1) % ix->cap;
		ix->len--;
	}
	if (written) {
		ix->stats.batches_written += n;
		ix->stats.last_success = energy_wall_time();
		ix->stats.error[0] = '\0';
	} else {
		ix->stats.batches_dropped += n;
	}
	ix->stats.batches_pending = ix->len;
	pthread_mutex_unlock(&ix->lock);
}

/* ---- HTTP ------------------------------------------------------------------------------ */

struct answer {
	char text[INFLUX_ANSWER_MAX];
	size_t len;
};

static size_t on_answer(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct answer *a = ud;
	size_t n = size * nmemb, room = sizeof(a->text) - 1 - a->len;
	memcpy(a->text + a->len, ptr, n < room ? n : room);
	a->len += n < room ? n : room;
	a->text[a->len] = '\0';
	return n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	struct influx *ix = ud;
	return atomic_load(&ix->abort_transfers) ? 1 : 0;
}

/* POST body: 0 written, -EAGAIN to retry later, -EINVAL refused for good (bad data). */
static int post(struct influx *ix, const char *body, double timeout_s, char *err, size_t errlen)
{
	CURL *c = ix->curl;
	struct answer ans = {.len = 0};
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
	if (ix->token[0]) {
		char auth[INFLUX_TOKEN_MAX + 32];
		snprintf(auth, sizeof(auth), "Authorization: Token %s", ix->token);
		hdr = curl_slist_append(hdr, auth);
	}
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, ix->write_url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_s * 1000));
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &ans);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, ix);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", ix->cfg.url, curl_easy_strerror(rc));
		return -EAGAIN;
	}
	if (status >= 200 && status < 300)
		return 0;
	snprintf(err, errlen, "%s answered HTTP %ld: %.200s", ix->cfg.url, status, ans.text);
	/* Bad data or too big will never pass; anything else (auth, no such database yet,
	 * overload) may pass later. */
	return status == 400 || status == 413 ? -EINVAL : -EAGAIN;
}

/* Write what is queued, oldest first, until it fails or the queue is empty. */
static void flush(struct influx *ix, double timeout_s)
{
	for (;;) {
		size_t n;
		char *body = queue_take(ix, &n);
		if (!body)
			return;
		char err[512];
		int rc = post(ix, body, timeout_s, err, sizeof(err));
		free(body);
		if (rc == 0) {
			queue_pop(ix, n, true);
			ix->backoff_s = 0;
			continue;
		}
		pthread_mutex_lock(&ix->lock);
		bool new_error = strcmp(ix->stats.error, err) != 0;
		snprintf(ix->stats.error, sizeof(ix->stats.error), "%s", err);
		ix->stats.write_failures++;
		pthread_mutex_unlock(&ix->lock);
		if (rc == -EINVAL) {
			log_warn("influxdb: %s; %zu batch(es) dropped", err, n);
			queue_pop(ix, n, false);
			continue;
		}
		ix->backoff_s = ix->backoff_s > 0 ? fmin(ix->backoff_s * 2, INFLUX_BACKOFF_MAX)
		                                  : fmin(ix->cfg.interval_s, INFLUX_BACKOFF_MAX);
		ix->next_try = mono_s() + ix->backoff_s;
		if (new_error)
			log_warn("influxdb: %s; retrying in %.0f s (data waits in memory, at most "
			         "%.0f s)",
			         err, ix->backoff_s, ix->cfg.memory_s);
		return;
	}
}

static void *influx_thread(void *arg)
{
	struct influx *ix = arg;
	double next_batch = mono_s() + ix->cfg.interval_s;
	while (!atomic_load(&ix->stop)) {
		double now = mono_s();
		if (now >= next_batch) {
			char *b = build_batch(ix);
			if (b)
				queue_push(ix, b);
			next_batch += ix->cfg.interval_s;
			if (next_batch < now)
				next_batch = now + ix->cfg.interval_s;
		}
		if (now >= ix->next_try)
			flush(ix, INFLUX_TIMEOUT_S);
		double until =
		    ix->next_try > now && ix->next_try < next_batch ? ix->next_try : next_batch;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		double wait = until - mono_s();
		if (wait > 0) {
			double at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + wait;
			ts.tv_sec = (time_t)at;
			ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
			pthread_mutex_lock(&ix->lock);
			if (!atomic_load(&ix->stop))
				pthread_cond_timedwait(&ix->wake, &ix->lock, &ts);
			pthread_mutex_unlock(&ix->lock);
		}
	}
	return NULL;
}

/* ---- life cycle ------------------------------------------------------------------------ */

static void url_param(CURL *c, char *out, size_t len, const char *key, const char *value)
{
	char *e = curl_easy_escape(c, value, 0);
	snprintf(out + strlen(out), len - strlen(out), "%s=%s", key, e ? e : "");
	curl_free(e);
}

int influx_open(const struct influx_config *cfg, struct influx **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!cfg->url[0])
		return 0;
	if (influx_config_check(cfg, err, errlen) < 0)
		return -1;
	struct influx *ix = calloc(1, sizeof(*ix));
	if (!ix) {
		snprintf(err, errlen, "influxdb: out of memory");
		return -1;
	}
	ix->cfg = *cfg;
	if (cfg->token_file[0]) {
		/* Read now, before the privilege drop: the file may be root's only. */
		if (source_read_text(cfg->token_file, ix->token, sizeof(ix->token)) < 0 ||
		    !ix->token[0]) {
			snprintf(
			    err, errlen,
			    "[influxdb] token_file %s: cannot read it, or it is empty (energyd "
			    "reads it before dropping privileges; put the token on its first line)",
			    cfg->token_file);
			free(ix);
			return -1;
		}
		ix->token[strcspn(ix->token, "\r\n")] = '\0';
	}
	size_t cap = (size_t)ceil(cfg->memory_s / cfg->interval_s);
	ix->cap = cap < 1 ? 1 : cap > INFLUX_QUEUE_MAX ? INFLUX_QUEUE_MAX : cap;
	ix->queue = calloc(ix->cap, sizeof(*ix->queue));
	if (!ix->queue || curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
	    !(ix->curl = curl_easy_init())) {
		snprintf(err, errlen, "influxdb: cannot set up libcurl");
		free(ix->queue);
		free(ix);
		return -1;
	}
	char *u = ix->write_url;
	size_t ul = sizeof(ix->write_url);
	size_t base = strlen(cfg->url);
	while (base > 0 && cfg->url[base - 1] == '/')
		base--;
	if (cfg->database[0]) {
		snprintf(u, ul, "%.*s/write?precision=ms&", (int)base, cfg->url);
		url_param(ix->curl, u, ul, "db", cfg->database);
	} else {
		snprintf(u, ul, "%.*s/api/v2/write?precision=ms&", (int)base, cfg->url);
		url_param(ix->curl, u, ul, "bucket", cfg->bucket);
		snprintf(u + strlen(u), ul - strlen(u), "&");
		url_param(ix->curl, u, ul, "org", cfg->org);
	}
	pthread_mutex_init(&ix->lock, NULL);
	threads_cond_init_monotonic(&ix->wake);
	*out = ix;
	return 0;
}

int influx_start(struct influx *ix, struct daemon *d)
{
	if (!ix)
		return 0;
	ix->d = d;
	if (threads_start(&ix->worker, "energy-influx", influx_thread, ix) < 0)
		return -1;
	log_info("influxdb: writing every %.3g s to %s (%s %s)", ix->cfg.interval_s, ix->cfg.url,
	         ix->cfg.database[0] ? "database" : "bucket",
	         ix->cfg.database[0] ? ix->cfg.database : ix->cfg.bucket);
	return 0;
}

void influx_close(struct influx *ix)
{
	if (!ix)
		return;
	if (ix->worker.running) {
		pthread_mutex_lock(&ix->lock);
		atomic_store(&ix->abort_transfers, true);
		atomic_store(&ix->stop, true);
		pthread_cond_signal(&ix->wake);
		pthread_mutex_unlock(&ix->lock);
		threads_join(&ix->worker);
		atomic_store(&ix->abort_transfers, false);
		/* One last short attempt for what is queued (the transfer the stop interrupted,
		 * and the newest sample). */
		char *b = build_batch(ix);
		if (b)
			queue_push(ix, b);
		flush(ix, 2.0);
		if (ix->len)
			log_warn("influxdb: %zu batch(es) not written at exit: %s", ix->len,
			         ix->stats.error);
	}
	for (size_t j = 0; j < ix->len; j++)
		free(ix->queue[(ix->head + j) % ix->cap]);
	free(ix->queue);
	curl_easy_cleanup(ix->curl);
	pthread_mutex_destroy(&ix->lock);
	pthread_cond_destroy(&ix->wake);
	free(ix);
}

void influx_get_stats(struct influx *ix, struct influx_stats *out)
{
	pthread_mutex_lock(&ix->lock);
	*out = ix->stats;
	pthread_mutex_unlock(&ix->lock);
}
