#define _GNU_SOURCE
#include "store.h"
#include "energy.h"
#include "log.h"
#include "mem.h"
#include "sampler.h"
#include "threads.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Entries per transaction when catching up: a long backlog is written in several commits so
 * that one commit stays short. */
#define STORE_WRITE_CHUNK 3600
/* Old rows are pruned this often. */
#define STORE_PRUNE_EVERY_S 60.0

const char *store_status_name(enum store_status s)
{
	static const char *const names[] = {[STORE_OFF] = "off",
	                                    [STORE_STARTING] = "starting",
	                                    [STORE_OK] = "ok",
	                                    [STORE_DEGRADED] = "degraded"};
	return (size_t)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

int store_init(struct store *st, const struct store_options *o, const char *const *names,
               const bool *measured, int n, const char *coverage)
{
	memset(st, 0, sizeof(*st));
	st->opt = *o;
	if (n < 1 || n > STORE_SERIES_MAX)
		return -EINVAL;
	st->n_series = st->n_sampled = n;
	for (int i = 0; i < n; i++) {
		snprintf(st->names[i], sizeof(st->names[i]), "%s", names[i]);
		st->measured[i] = measured[i];
	}
	snprintf(st->coverage, sizeof(st->coverage), "%s", coverage);
	st->q_max = (size_t)(o->memory_s > 1 ? o->memory_s : 1);
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->wake_lock, NULL);
	threads_cond_init_monotonic(&st->wake);
	st->info.status = o->path[0] ? STORE_STARTING : STORE_OFF;
	return 0;
}

int store_init_sampler(struct store *st, const struct store_options *o, const struct sampler *s)
{
	const char *names[STORE_SERIES_MAX];
	bool measured[STORE_SERIES_MAX];
	int n = s->set->n;
	for (int i = 0; i < n; i++) {
		names[i] = s->set->ch[i].id;
		measured[i] = s->set->ch[i].measured;
	}
	names[n] = STORE_HOST_SERIES;
	measured[n] = s->coverage.measured;
	char coverage[STORE_COVERAGE_MAX] = "";
	for (int k = 0; k < s->coverage.n; k++)
		snprintf(coverage + strlen(coverage), sizeof(coverage) - strlen(coverage), "%s%s",
		         k ? "," : "", s->set->ch[s->coverage.idx[k]].id);
	return store_init(st, o, names, measured, n + 1, coverage);
}

int store_set_derived(struct store *st, const char *const *names, int n, store_derive_fn fn,
                      void *ctx)
{
	if (n < 0 || st->n_series + n > STORE_SERIES_MAX || st->worker.running)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		snprintf(st->names[st->n_series], sizeof(st->names[0]), "%s", names[i]);
		st->measured[st->n_series++] = false;
	}
	st->derive = fn;
	st->derive_ctx = ctx;
	return 0;
}

void store_set_users(struct store *st, store_users_span_fn span, store_users_energy_fn energy_at,
                     void *ctx)
{
	store_users_set(&st->users, span, energy_at, ctx);
}

void store_free(struct store *st)
{
	store_stop(st);
	store_users_free(&st->users);
	if (st->db_open)
		store_db_close(&st->db);
	st->db_open = false;
	MEM_FREE_NULL(st->q_t);
	MEM_FREE_NULL(st->q_ms);
	MEM_FREE_NULL(st->q_uj);
	pthread_mutex_destroy(&st->lock);
	pthread_mutex_destroy(&st->wake_lock);
	pthread_cond_destroy(&st->wake);
}

/* ---- the memory queue: one entry per second, oldest first ------------------------------- */

/* Forget the oldest k entries; they count as dropped when they never reached the record. */
static void queue_pop(struct store *st, size_t k, bool dropped)
{
	size_t n = (size_t)st->n_series;
	if (dropped) {
		pthread_mutex_lock(&st->lock);
		for (size_t e = 0; e < k; e++) {
			st->info.dropped_s += st->q_ms[e] / 1000.0;
			for (size_t i = 0; i < n; i++)
				if (st->q_uj[e * n + i] != STORE_NO_VALUE)
					st->dropped_uj[i] += st->q_uj[e * n + i];
		}
		pthread_mutex_unlock(&st->lock);
	}
	memmove(st->q_t, st->q_t + k, (st->q_len - k) * sizeof(*st->q_t));
	memmove(st->q_ms, st->q_ms + k, (st->q_len - k) * sizeof(*st->q_ms));
	memmove(st->q_uj, st->q_uj + k * n, (st->q_len - k) * n * sizeof(*st->q_uj));
	st->q_len -= k;
}

static int queue_grow(struct store *st)
{
	size_t cap = st->q_cap ? st->q_cap * 2 : 64;
	if (cap > st->q_max)
		cap = st->q_max;
	int64_t *t = realloc(st->q_t, cap * sizeof(*t));
	if (t)
		st->q_t = t;
	int32_t *ms = realloc(st->q_ms, cap * sizeof(*ms));
	if (ms)
		st->q_ms = ms;
	int64_t *uj = realloc(st->q_uj, cap * (size_t)st->n_series * sizeof(*uj));
	if (uj)
		st->q_uj = uj;
	if (!t || !ms || !uj)
		return -ENOMEM;
	st->q_cap = cap;
	return 0;
}

static void queue_add(struct store *st, int64_t t, int32_t ms, const int64_t *uj)
{
	size_t n = (size_t)st->n_series;
	if (st->q_len > 0 && st->q_t[st->q_len - 1] == t) {
		/* The rest of a second whose first part is already queued. */
		st->q_ms[st->q_len - 1] += ms;
		for (size_t i = 0; i < n; i++) {
			int64_t *q = &st->q_uj[(st->q_len - 1) * n + i];
			if (uj[i] == STORE_NO_VALUE)
				continue;
			*q = *q == STORE_NO_VALUE ? uj[i] : *q + uj[i];
		}
		return;
	}
	if (st->q_len == st->q_cap && (st->q_cap >= st->q_max || queue_grow(st) < 0)) {
		/* Memory is full: drop the oldest tenth at once rather than one per second. */
		size_t k = st->q_len / 10 + 1;
		if (!st->warned_full)
			log_warn(
			    "store: %zu s of energy waiting for %s exceed --store-memory: dropping "
			    "the oldest seconds until it can be written (see info.store.dropped_s)",
			    st->q_len, st->opt.path);
		st->warned_full = true;
		queue_pop(st, k, true);
	}
	st->q_t[st->q_len] = t;
	st->q_ms[st->q_len] = ms;
	memcpy(&st->q_uj[st->q_len * n], uj, n * sizeof(*uj));
	st->q_len++;
}

/* ---- collecting from the history ring ---------------------------------------------------- */

static int history_series(const struct store *st, int i)
{
	return i == st->n_sampled - 1 ? HISTORY_HOST : i;
}

/* The energy from written_to to b goes to the second that contains written_to. */
static void take_until(struct store *st, const struct history *h, double b)
{
	int64_t uj[STORE_SERIES_MAX];
	for (int i = 0; i < st->n_sampled; i++) {
		double v, res;
		uj[i] = 0;
		if (history_value_at(h, history_series(st, i), b, &v, &res) < 0)
			continue; /* no reading near b: its energy lands in a later second */
		int64_t r = llround(v);
		if (r > st->counter_uj[i]) {
			uj[i] = r - st->counter_uj[i];
			st->counter_uj[i] = r;
		}
	}
	for (int i = st->n_sampled; i < st->n_series; i++)
		uj[i] = STORE_NO_VALUE;
	if (st->derive && st->n_series > st->n_sampled && b > st->written_to)
		st->derive(st->derive_ctx, st->written_to, b, uj[st->n_sampled - 1],
		           &uj[st->n_sampled]);
	int64_t sec = (int64_t)floor(st->written_to);
	int32_t ms = (int32_t)(llround(b * 1000.0) - llround(st->written_to * 1000.0));
	queue_add(st, sec, ms, uj);
	st->written_to = b;
}

/* How much sampled data waits for the record, for info (under the store's lock). */
static void publish_pending(struct store *st)
{
	double pending = 0;
	for (size_t e = 0; e < st->q_len; e++)
		pending += st->q_ms[e] / 1000.0;
	pthread_mutex_lock(&st->lock);
	st->info.pending_s = pending;
	pthread_mutex_unlock(&st->lock);
}

void store_collect(struct store *st, const struct history *h)
{
	if (h->count == 0 || st->info.status == STORE_OFF)
		return;
	double first = history_time(h, 0), newest = history_time(h, h->count - 1);
	if (!st->have_origin || st->written_to < first) {
		/* The start of the run, or the ring has moved past what was taken (the store
		 * thread was held up longer than the history lasts): start from the oldest
		 * sample; whatever came before it is lost to the record. */
		pthread_mutex_lock(&st->lock);
		if (st->have_origin)
			st->info.dropped_s += first - st->written_to;
		for (int i = 0; i < st->n_sampled; i++) {
			double v, res;
			if (history_value_at(h, history_series(st, i), first, &v, &res) < 0)
				continue;
			int64_t r = llround(v);
			if (r > st->counter_uj[i]) {
				st->dropped_uj[i] += r - st->counter_uj[i];
				st->counter_uj[i] = r;
			}
		}
		pthread_mutex_unlock(&st->lock);
		if (st->have_origin)
			log_warn("store: the history moved past %.3f before it was written: %.3f s "
			         "lost to the record",
			         st->written_to, first - st->written_to);
		st->written_to = first;
		st->have_origin = true;
	}
	for (double b = floor(st->written_to) + 1; b < newest; b += 1)
		take_until(st, h, b);
	if (newest > st->written_to)
		take_until(st, h, newest);
	publish_pending(st);
}

/* ---- writing ----------------------------------------------------------------------------- */

static void set_error(struct store *st, const char *err)
{
	pthread_mutex_lock(&st->lock);
	bool changed = strcmp(st->info.error, err) != 0;
	st->info.status = STORE_DEGRADED;
	snprintf(st->info.error, sizeof(st->info.error), "%s", err);
	st->info.failures++;
	pthread_mutex_unlock(&st->lock);
	if (changed)
		log_err("store: %s", err);
}

static int open_db(struct store *st, double now)
{
	char err[STORE_ERROR_MAX];
	const char *names[STORE_SERIES_MAX];
	for (int i = 0; i < st->n_series; i++)
		names[i] = st->names[i];
	int rc = store_db_open(&st->db, st->opt.path, names, st->measured, st->n_series,
	                       st->coverage, err, sizeof(err));
	if (rc < 0) {
		set_error(st, err);
		st->next_retry_at = now + st->opt.retry_s;
		return rc;
	}
	st->db_open = true;
	pthread_mutex_lock(&st->lock);
	if (st->info.status == STORE_STARTING)
		st->info.status = STORE_OK;
	if (!st->have_base) {
		/* The record's totals before this run wrote anything: energy since the record
		 * began = these + this run's counters. */
		memcpy(st->base_uj, st->db.total_uj, sizeof(st->base_uj));
		st->have_base = true;
	}
	st->info.recorded_to = st->db.recorded_to;
	st->info.record_began_at = st->db.record_began_at;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

int store_flush(struct store *st, double now)
{
	if (st->info.status == STORE_OFF)
		return 0;
	if (!st->db_open) {
		if (now < st->next_retry_at)
			return -EAGAIN;
		int rc = open_db(st, now);
		if (rc < 0)
			return rc;
		log_info("store: writing the long-term record to %s", st->opt.path);
	}
	/* A record that ends after our first second (the wall clock was set back since it was
	 * written) keeps what it has: adding ours would count those seconds twice. */
	size_t stale = 0;
	while (stale < st->q_len && st->q_t[stale] < (int64_t)floor(st->db.recorded_to))
		stale++;
	if (stale) {
		log_warn("store: %zu s of energy lie before the end of the record (%.3f): the wall "
		         "clock is behind it; not recorded",
		         stale, st->db.recorded_to);
		queue_pop(st, stale, true);
	}
	char err[STORE_ERROR_MAX];
	/* The users' energy goes with the last chunk, or alone when no second is waiting. */
	double users_to = store_users_take(&st->users, st->db.users_recorded_to);
	while (st->q_len > 0 || users_to > 0) {
		size_t k = st->q_len < STORE_WRITE_CHUNK ? st->q_len : STORE_WRITE_CHUNK;
		bool last = k == st->q_len;
		struct store_entry *e = malloc(k ? k * sizeof(*e) : 1);
		if (!e)
			return -ENOMEM;
		for (size_t j = 0; j < k; j++) {
			e[j].t = st->q_t[j];
			e[j].covered_ms = st->q_ms[j];
			e[j].energy_uj = &st->q_uj[j * (size_t)st->n_series];
		}
		/* The record ends where the last entry written ends. */
		double end = k == 0           ? st->db.recorded_to
		             : k == st->q_len ? st->written_to
		                              : (double)st->q_t[k - 1] + st->q_ms[k - 1] / 1000.0;
		uint64_t t0 = energy_monotonic_ns();
		int rc = store_db_write_users(&st->db, e, k, last ? st->users.rows : NULL,
		                              last ? st->users.n_rows : 0, last ? users_to : 0, end,
		                              err, sizeof(err));
		double took = (double)(energy_monotonic_ns() - t0) / 1e9;
		free(e);
		if (rc < 0) {
			set_error(st, err);
			store_db_close(&st->db);
			st->db_open = false;
			st->next_retry_at = now + st->opt.retry_s;
			return rc;
		}
		queue_pop(st, k, false);
		if (last && users_to > 0) {
			store_users_done(&st->users);
			users_to = 0;
		}
		st->warned_full = false;
		pthread_mutex_lock(&st->lock);
		bool recovered = st->info.status == STORE_DEGRADED;
		st->info.status = STORE_OK;
		st->info.error[0] = '\0';
		st->info.recorded_to = end;
		st->info.record_began_at = st->db.record_began_at;
		st->info.last_commit_s = took;
		st->info.batches++;
		pthread_mutex_unlock(&st->lock);
		if (recovered)
			log_info("store: %s is writable again; caught up", st->opt.path);
	}
	publish_pending(st);
	if (now >= st->next_prune_at) {
		st->next_prune_at = now + STORE_PRUNE_EVERY_S;
		if (store_db_prune(&st->db, now, st->opt.keep_s, err, sizeof(err)) < 0)
			log_warn("store: %s", err);
	}
	return 0;
}

/* ---- the thread ---------------------------------------------------------------------------- */

static void collect_from_sampler(struct store *st)
{
	sampler_lock(st->sampler);
	store_collect(st, &st->sampler->history);
	sampler_unlock(st->sampler);
}

static void *store_thread(void *arg)
{
	struct store *st = arg;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	uint64_t step_ns = (uint64_t)(st->opt.batch_s * 1e9);
	while (!atomic_load(&st->stop)) {
		uint64_t ns = (uint64_t)next.tv_nsec + step_ns;
		next.tv_sec += (time_t)(ns / 1000000000u);
		next.tv_nsec = (long)(ns % 1000000000u);
		pthread_mutex_lock(&st->wake_lock);
		while (!atomic_load(&st->stop) &&
		       pthread_cond_timedwait(&st->wake, &st->wake_lock, &next) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&st->wake_lock);
		if (atomic_load(&st->stop))
			break;
		collect_from_sampler(st);
		store_flush(st, energy_wall_time());
	}
	return NULL;
}

int store_start(struct store *st, struct sampler *s)
{
	st->sampler = s;
	if (st->info.status == STORE_OFF)
		return 0;
	/* Open (or fail to open) right away, so that `info` and the totals are known early. */
	collect_from_sampler(st);
	store_flush(st, energy_wall_time());
	atomic_store(&st->stop, false);
	return threads_start(&st->worker, "energy-store", store_thread, st);
}

void store_stop(struct store *st)
{
	if (!st->worker.running)
		return;
	pthread_mutex_lock(&st->wake_lock);
	atomic_store(&st->stop, true);
	pthread_cond_broadcast(&st->wake);
	pthread_mutex_unlock(&st->wake_lock);
	threads_join(&st->worker);
	/* The last samples: one more attempt, ignoring the retry delay. */
	collect_from_sampler(st);
	st->next_retry_at = 0;
	if (store_flush(st, energy_wall_time()) < 0 || st->q_len > 0) {
		double pending = 0;
		for (size_t e = 0; e < st->q_len; e++)
			pending += st->q_ms[e] / 1000.0;
		log_err("store: %.3f s of energy could not be written to %s and are lost", pending,
		        st->opt.path);
	}
	if (st->db_open)
		store_db_close(&st->db);
	st->db_open = false;
}

bool store_total_uj(struct store *st, int series, uint64_t run_uj, uint64_t *total_uj)
{
	if (!st || series < 0 || series >= st->n_series)
		return false;
	pthread_mutex_lock(&st->lock);
	bool ok = st->have_base;
	if (ok)
		*total_uj = (uint64_t)(st->base_uj[series] - st->dropped_uj[series]) + run_uj;
	pthread_mutex_unlock(&st->lock);
	return ok;
}

void store_get_info(struct store *st, struct store_info *out)
{
	pthread_mutex_lock(&st->lock);
	*out = st->info;
	pthread_mutex_unlock(&st->lock);
}
