/*
 * The long-term store: a thread that takes the energy of every series (channels, then the host
 * total) from the sampler's history ring every batch interval and writes it to the SQLite record
 * (store_db.h) in one transaction per batch, so that sampling never waits on the disk.
 *
 * What a batch takes: everything from the end of the previous batch to the newest sample, split
 * at whole seconds (the last, unfinished second is written in part and completed by the next
 * batch, so a crash loses at most one batch interval). Each series' cumulative counter is
 * interpolated at the second boundaries and rounded to whole microjoules; the energy of a
 * second is the difference of two rounded counters, so the seconds of a run add up exactly to
 * the counter at its last sample.
 *
 * When the database cannot be written (disk full, read-only, corrupt, missing), the seconds
 * wait in memory (at most memory_s of them; older ones are dropped and counted), the status
 * says degraded with the reason, and the store retries every retry_s, then writes everything it
 * still holds. A span it never wrote is a gap in the record, never invented data.
 *
 * Thread safety: store_collect()/store_flush() belong to one thread (the store's own, or a
 * caller that does not start it). store_total_uj() and store_get_info() may be called from any
 * thread; lock order is the sampler's lock, then the store's.
 */
#ifndef ENERGY_STORE_H
#define ENERGY_STORE_H

#include "history.h"
#include "store_db.h"
#include "threads.h"
#include "store_users.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define STORE_PATH_MAX  512
#define STORE_ERROR_MAX 768

#define STORE_DEFAULT_BATCH_S   5.0
#define STORE_DEFAULT_MEMORY_S  86400.0
#define STORE_DEFAULT_RETRY_S   5.0
#define STORE_DEFAULT_KEEP_1S_S 86400.0        /* a day */
#define STORE_DEFAULT_KEEP_1M_S (31 * 86400.0) /* a month */
#define STORE_DEFAULT_KEEP_1H_S 0.0            /* for ever */

struct sampler;

struct store_options {
	char path[STORE_PATH_MAX];  /* "" disables the store */
	double batch_s;             /* write every batch_s seconds */
	double memory_s;            /* seconds of data held while the database is unavailable */
	double retry_s;             /* how often to retry a failing database */
	double keep_s[STORE_TIERS]; /* retention per tier, 0 = for ever */
};

/* Defaults: batch 2 s, memory 1 day, retry 5 s, keep 1 s rows 1 day, 1 min rows 31 days,
 * 1 h rows for ever. The one place they are set: energyd's configuration starts from them. */
static inline void store_options_defaults(struct store_options *o)
{
	*o = (struct store_options){
	    .batch_s = STORE_DEFAULT_BATCH_S,
	    .memory_s = STORE_DEFAULT_MEMORY_S,
	    .retry_s = STORE_DEFAULT_RETRY_S,
	    .keep_s = {STORE_DEFAULT_KEEP_1S_S, STORE_DEFAULT_KEEP_1M_S, STORE_DEFAULT_KEEP_1H_S}};
}

enum store_status {
	STORE_OFF,      /* disabled by configuration */
	STORE_STARTING, /* nothing written yet */
	STORE_OK,
	STORE_DEGRADED, /* the last attempt failed; data waits in memory */
};

struct store_info {
	enum store_status status;
	char error[STORE_ERROR_MAX];
	double recorded_to;     /* end of the newest data in the record */
	double record_began_at; /* start of the oldest data ever recorded (0: nothing yet) */
	double pending_s;       /* seconds sampled but not yet in the record */
	double dropped_s;       /* seconds that never made it to the record (memory full) */
	double last_commit_s;   /* duration of the last successful batch commit */
	unsigned long long batches, failures;
};

/*
 * Derived series, computed from the host's energy of each piece of a second: fill one value per
 * derived series for the host's energy host_uj between t0 and t1, STORE_NO_VALUE where unknown.
 * The carbon module records emissions and cost this way, so that they are rolled up into the
 * tiers with the energy and add up exactly. Called on the store's thread.
 */
typedef void (*store_derive_fn)(void *ctx, double t0, double t1, int64_t host_uj, int64_t *values);

struct store {
	struct store_options opt;
	int n_series;           /* channels, the host total, then derived series */
	int n_sampled;          /* channels and the host total: the series read from the history */
	store_derive_fn derive; /* computes the derived series (record_carbon.c), or NULL */
	void *derive_ctx;
	char names[STORE_SERIES_MAX][CHANNEL_ID_MAX]; /* each series' name in the record */
	bool measured[STORE_SERIES_MAX];              /* each series is a measurement */
	char coverage[STORE_COVERAGE_MAX];            /* the host total's channels ("a,b") */

	/* Owned by the thread that collects and flushes. */
	struct store_db db;
	bool db_open;      /* db is open and ready for writes */
	bool have_origin;  /* written_to and counter_uj have been set from the history */
	double written_to; /* the time up to which the counters have been taken */
	int64_t counter_uj[STORE_SERIES_MAX]; /* rounded counter at written_to */
	/* The queue of seconds not yet written: start (Unix s), covered ms, energy per series. */
	int64_t *q_t;
	int32_t *q_ms;
	int64_t *q_uj;                       /* q_cap x n_series */
	size_t q_len, q_cap, q_max;          /* used, allocated, at most (memory_s seconds) */
	double next_retry_at, next_prune_at; /* wall-clock times of the next open and prune */
	bool warned_full;         /* the memory-full warning was logged since the last good write */
	struct store_users users; /* per-user energy (store_users.h) */

	/* Guarded by lock. */
	pthread_mutex_t lock;
	struct store_info info;               /* what store_get_info copies out */
	bool have_base;                       /* base_uj holds the record's totals */
	int64_t base_uj[STORE_SERIES_MAX];    /* the record's totals when this run began */
	int64_t dropped_uj[STORE_SERIES_MAX]; /* energy of this run that never reached it */

	struct sampler *sampler;      /* whose history the thread collects from */
	struct threads_worker worker; /* the thread that collects and writes */
	atomic_bool stop;             /* asks the thread to write the last samples and end */
	pthread_mutex_t wake_lock;    /* with wake: store_stop interrupts the thread's wait */
	pthread_cond_t wake;
};

/* Series names[n] (the host total last, named STORE_HOST_SERIES), whether each is measured,
 * and the host coverage text. Does not touch the database. 0 or -errno. */
int store_init(struct store *st, const struct store_options *o, const char *const *names,
               const bool *measured, int n, const char *coverage);
/* The same for a sampler's channels and host total. */
int store_init_sampler(struct store *st, const struct store_options *o, const struct sampler *s);
void store_free(struct store *st);
/* Add n derived series (never measurements) after the host total, before the store starts.
 * 0 or -errno. */
int store_set_derived(struct store *st, const char *const *names, int n, store_derive_fn fn,
                      void *ctx);

/* Record every user's attributed energy through this hook (store_users.h), before the store
 * starts. */
void store_set_users(struct store *st, store_users_span_fn span, store_users_energy_fn energy_at,
                     void *ctx);

/* Take everything from the last collection to the newest sample of h (series 0..n-2 are h's
 * channels, n-1 its host total) into the memory queue. The caller holds h's lock. */
void store_collect(struct store *st, const struct history *h);
/* Write the queue to the database (opening it when needed, at most every retry_s after a
 * failure) and prune old rows now and then. now: the wall clock. 0 or -errno. */
int store_flush(struct store *st, double now);

/* The store's thread on a sampler; store_stop() takes and writes the last samples. */
int store_start(struct store *st, struct sampler *s);
void store_stop(struct store *st);

/* Energy of series i since the record began, given its counter since this run began: false
 * while the record's totals are unknown (the database has not been opened yet). */
bool store_total_uj(struct store *st, int series, uint64_t run_uj, uint64_t *total_uj);
void store_get_info(struct store *st, struct store_info *out);
const char *store_status_name(enum store_status s);

#endif
