/*
 * The sampler: reads every channel on its own monotonic clock, keeps each channel's cumulative
 * microjoule counter (wraparound corrected, power integrated), the host total, and appends a
 * sample to the history. Clients never trigger a read; they look at samples already taken.
 *
 * Thread safety: sampler_lock() guards the channels' counters and status, the history and the
 * tick count; take it to read them from another thread. sampler_wait_tick() blocks until the
 * next tick (for the event stream); a tick broadcasts only when a thread waits there.
 */
#ifndef ENERGY_SAMPLER_H
#define ENERGY_SAMPLER_H

#include "history.h"
#include "host.h"
#include "source.h"
#include "threads.h"

#include <pthread.h>
#include <stdatomic.h>

/* A delta implying more than this per channel is a reset or garbage, not energy. */
#define SAMPLER_MAX_PLAUSIBLE_WATTS 20000.0

struct sampler {
	struct channel_set *set;       /* the channels read each tick (not owned) */
	struct host_coverage coverage; /* which channels add up to the host total */
	struct history history;        /* the samples taken, in memory */
	uint64_t interval_ns;          /* the time between ticks of the thread */
	double started_at;             /* Unix seconds of the first tick's clock origin */
	uint64_t start_mono_ns;        /* the same instant on the monotonic clock */

	pthread_mutex_t lock;         /* see "Thread safety" above */
	pthread_mutex_t tick_lock;    /* serialises ticks: the thread's and direct calls */
	pthread_cond_t tick_cond;     /* broadcast after a tick when someone waits on it */
	int waiters;                  /* threads in sampler_wait_tick (under lock) */
	uint64_t ticks;               /* ticks taken since sampler_init */
	uint64_t host_uj;             /* the host total's cumulative counter at the newest tick */
	atomic_bool stop;             /* asks the thread to end; sampler_wait_tick returns 0 */
	struct threads_worker worker; /* the sampling thread */
};

/* history_s: seconds of full-rate history to keep. */
int sampler_init(struct sampler *s, struct channel_set *set, double interval_s, double history_s);
void sampler_free(struct sampler *s);
/* One tick: read all channels and append a sample. Called by the thread, or directly (also
 * while the thread runs: ticks are serialised). */
void sampler_tick(struct sampler *s);
int sampler_start(struct sampler *s);
void sampler_stop(struct sampler *s);
void sampler_lock(struct sampler *s);
void sampler_unlock(struct sampler *s);
/* Wait (with the lock held) until the tick count passes seen or the sampler stops; returns the
 * tick count, or 0 when stopping. */
uint64_t sampler_wait_tick(struct sampler *s, uint64_t seen);
/* The host's cumulative joules at the newest sample and that sample's time: 0 or -ENODATA
 * before the first tick. Takes the lock. */
int sampler_host_latest(struct sampler *s, double *t, double *joules);
/* history_host_joules_between() on the sampler's history, taking the lock. */
int sampler_host_joules_between(struct sampler *s, double t0, double t1, double *joules);
/* The clock the history uses: started_at + monotonic time elapsed. */
double sampler_time_of(const struct sampler *s, uint64_t mono_ns);

/*
 * Turn one read (rc, raw value) at now_ns into energy on ch's counter. Returns true when the
 * channel has a valid value for this tick. A failed read, a value above the counter's range or a
 * jump above SAMPLER_MAX_PLAUSIBLE_WATTS leaves the counter as it was (it never goes back, never
 * jumps) and marks the channel degraded with the reason; repeated failures back off.
 */
bool sampler_channel_update(struct channel *ch, int rc, uint64_t value, uint64_t now_ns,
                            uint64_t interval_ns);

#endif
