/*
 * The sampler: reads every channel on its own monotonic clock, keeps each channel's cumulative
 * microjoule counter (wraparound corrected, power integrated), the host total, and appends a
 * sample to the history. Clients never trigger a read; they look at samples already taken.
 *
 * Thread safety: sampler_lock() guards the channels' counters and status, the history and the
 * tick count; take it to read them from another thread. sampler_wait_tick() blocks until the
 * next tick (for the event stream), sampler_wait_ticks() until a later one; a tick wakes only
 * the waiters whose tick it is (no system call at all when nobody waits).
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

/* One thread waiting in sampler_wait_ticks: woken by the tick that reaches its target only. */
struct sampler_waiter {
	uint64_t target; /* the tick count it waits for */
	bool kicked;     /* sampler_kick or sampler_stop called while it waits */
	pthread_cond_t cond;
	struct sampler_waiter *next;
};

struct sampler {
	struct channel_set *set;       /* the channels read each tick (not owned) */
	struct host_coverage coverage; /* which channels add up to the host total */
	struct history history;        /* the samples taken, in memory */
	uint64_t interval_ns;          /* the time between ticks of the thread */
	double started_at;             /* Unix seconds of the first tick's clock origin */
	uint64_t start_mono_ns;        /* the same instant on the monotonic clock */

	pthread_mutex_t lock;            /* see "Thread safety" above */
	pthread_mutex_t tick_lock;       /* serialises ticks: the thread's and direct calls */
	struct sampler_waiter *waitlist; /* threads in sampler_wait_ticks (under lock) */
	int waiters;                     /* how many */
	uint64_t wakeups;                /* waiters a tick woke, since sampler_init (tests) */
	uint64_t ticks;                  /* ticks taken since sampler_init */
	uint64_t host_uj;             /* the host total's cumulative counter at the newest tick */
	atomic_bool stop;             /* asks the thread to end; sampler_wait_tick returns 0 */
	struct threads_worker worker; /* the sampling thread */
	/* Called after every tick, outside both locks, when set (before sampler_start): energyd
	 * resumes its waiting event streams from here. It must be cheap and must not block. */
	void (*tick_hook)(void *ctx);
	void *tick_hook_ctx;
};

/* history_s: seconds of full-rate history to keep. */
int sampler_init(struct sampler *s, struct channel_set *set, double interval_s, double history_s);
void sampler_free(struct sampler *s);
/* One tick: read all channels and append a sample. Called by the thread, or directly (also
 * while the thread runs: ticks are serialised). */
void sampler_tick(struct sampler *s);
/* The end of a tick, with the lock held: count it and wake the waiters whose tick it is
 * (sampler_tick calls it after appending the sample; tests call it alone). */
void sampler_count_tick_locked(struct sampler *s);
int sampler_start(struct sampler *s);
void sampler_stop(struct sampler *s);
void sampler_lock(struct sampler *s);
void sampler_unlock(struct sampler *s);
/* Wait (with the lock held) until the tick count passes seen or the sampler stops; returns the
 * tick count, or 0 when stopping. */
uint64_t sampler_wait_tick(struct sampler *s, uint64_t seen);
/* Wait (with the lock held) until the tick count reaches seen + n (n >= 1), sampler_kick is
 * called or the sampler stops; returns the tick count (less than seen + n after a kick), or 0
 * when stopping. Only the tick that reaches a waiter's own target wakes it: a thread that needs
 * every fifth tick is not woken by the four others, whoever else waits. */
uint64_t sampler_wait_ticks(struct sampler *s, uint64_t seen, uint64_t n);
/* Wake every waiter now (takes the lock): one in sampler_wait_ticks returns, one in
 * sampler_wait_tick goes on waiting for its tick. */
void sampler_kick(struct sampler *s);
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
