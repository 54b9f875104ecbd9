#define _GNU_SOURCE
#include "sampler.h"
#include "threads.h"
#include "energy_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Failed channels are retried after interval * 2^failures, at most this often. */
#define SAMPLER_BACKOFF_MAX_NS (30ull * 1000000000ull)
#define SAMPLER_BACKOFF_AFTER  3 /* consecutive failures before backing off */

double sampler_time_of(const struct sampler *s, uint64_t mono_ns)
{
	return s->started_at + (double)(int64_t)(mono_ns - s->start_mono_ns) / 1e9;
}

int sampler_init(struct sampler *s, struct channel_set *set, double interval_s, double history_s)
{
	memset(s, 0, sizeof(*s));
	s->set = set;
	s->interval_ns = (uint64_t)(interval_s * 1e9 + 0.5);
	host_select(set->ch, set->n, &s->coverage);
	size_t capacity = (size_t)(history_s / interval_s) + 2;
	int rc = history_init(&s->history, set->n, capacity);
	if (rc < 0)
		return rc;
	history_set_host_parts(&s->history, s->coverage.idx, s->coverage.n);
	/* Both mutexes check their owner: unlocking one this thread does not hold is a bug that
	 * stops the program (assert) instead of undefined behaviour later. */
	threads_mutex_init_checked(&s->lock);
	threads_mutex_init_checked(&s->tick_lock);
	atomic_store(&s->stop, false);
	s->start_mono_ns = energy_monotonic_ns();
	s->started_at = energy_wall_time();
	return 0;
}

void sampler_free(struct sampler *s)
{
	sampler_stop(s);
	history_free(&s->history);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->tick_lock);
}

static void channel_fail(struct channel *ch, uint64_t now_ns, uint64_t interval_ns)
{
	ch->status = CHANNEL_DEGRADED;
	ch->failures++;
	if (ch->failures >= SAMPLER_BACKOFF_AFTER) {
		unsigned shift = ch->failures - SAMPLER_BACKOFF_AFTER + 1;
		uint64_t wait = shift > 20 ? SAMPLER_BACKOFF_MAX_NS : interval_ns << shift;
		ch->retry_at_ns =
		    now_ns + (wait > SAMPLER_BACKOFF_MAX_NS ? SAMPLER_BACKOFF_MAX_NS : wait);
	}
}

bool sampler_channel_update(struct channel *ch, int rc, uint64_t value, uint64_t now_ns,
                            uint64_t interval_ns)
{
	if (rc < 0) {
		if (ch->read_error[0])
			memcpy(ch->error, ch->read_error, sizeof(ch->error));
		else
			snprintf(ch->error, sizeof(ch->error), "read failed: %s", strerror(-rc));
		channel_fail(ch, now_ns, interval_ns);
		return false;
	}
	if (!ch->have_last) {
		if (ch->reading == READING_ENERGY_UJ && ch->max_uj && value > ch->max_uj) {
			snprintf(ch->error, sizeof(ch->error),
			         "counter value %llu above its range %llu: ignored",
			         (unsigned long long)value, (unsigned long long)ch->max_uj);
			channel_fail(ch, now_ns, interval_ns);
			return false;
		}
		ch->have_last = true;
		ch->last_raw = value;
		ch->last_power_uw = value;
		ch->last_mono_ns = now_ns;
		goto ok;
	}
	double dt = (double)(now_ns - ch->last_mono_ns) / 1e9;
	if (ch->reading == READING_ENERGY_UJ) {
		uint64_t delta;
		if (energy_counter_delta(ch->last_raw, value, ch->max_uj, &delta) < 0) {
			snprintf(ch->error, sizeof(ch->error),
			         "counter value %llu outside its range (max %llu): ignored",
			         (unsigned long long)value, (unsigned long long)ch->max_uj);
			if (ch->max_uj == 0) /* a 64-bit counter restarted: follow it */
				ch->last_raw = value, ch->last_mono_ns = now_ns;
			channel_fail(ch, now_ns, interval_ns);
			return false;
		}
		if ((double)delta > SAMPLER_MAX_PLAUSIBLE_WATTS * 1e6 * (dt > 0 ? dt : 1e-9)) {
			snprintf(
			    ch->error, sizeof(ch->error),
			    "counter jumped by %.3f J in %.3f s: treated as a reset, not energy",
			    (double)delta / 1e6, dt);
			ch->last_raw = value; /* resynchronise on the new value */
			ch->last_mono_ns = now_ns;
			channel_fail(ch, now_ns, interval_ns);
			return false;
		}
		ch->energy_uj += delta;
		ch->last_raw = value;
	} else {
		if ((double)value > SAMPLER_MAX_PLAUSIBLE_WATTS * 1e6) {
			snprintf(ch->error, sizeof(ch->error), "implausible power %.3f W: ignored",
			         (double)value / 1e6);
			channel_fail(ch, now_ns, interval_ns);
			return false;
		}
		/* After failed reads the power in between is unknown: integration restarts at this
		 * reading rather than guessing across the gap (the counter never jumps). */
		uint64_t dt_ns = ch->failures ? 0 : now_ns - ch->last_mono_ns;
		/* Trapezoid over monotonic time, keeping the sub-microjoule remainder: uW * ns
		 * is 1e-15 J, so accumulate in nanojoules (uW * ns / 1e6). */
		unsigned __int128 nj =
		    (unsigned __int128)(ch->last_power_uw + value) * dt_ns / 2000000u;
		nj += ch->frac_nuj;
		ch->energy_uj += (uint64_t)(nj / 1000u);
		ch->frac_nuj = (uint64_t)(nj % 1000u);
		ch->last_power_uw = value;
	}
	ch->last_mono_ns = now_ns;
ok:
	ch->status = CHANNEL_OK;
	ch->error[0] = '\0';
	ch->failures = 0;
	ch->retry_at_ns = 0;
	return true;
}

void sampler_count_tick_locked(struct sampler *s)
{
	s->ticks++;
	/* Only the waiters whose tick this is; no system call when nobody waits. */
	for (struct sampler_waiter *w = s->waitlist; w; w = w->next)
		if (s->ticks == w->target) {
			pthread_cond_signal(&w->cond);
			s->wakeups++;
		}
}

void sampler_tick(struct sampler *s)
{
	int n = s->set->n;
	uint64_t raw[CHANNELS_MAX];
	int rcs[CHANNELS_MAX];
	uint64_t read_ns[CHANNELS_MAX];
	bool attempted[CHANNELS_MAX];
	pthread_mutex_lock(&s->tick_lock);
	uint64_t now = energy_monotonic_ns();

	/* Read outside the lock: a slow device must not block the API. Only this thread
	 * writes channel state (ticks are serialised), so reading retry_at_ns is safe. */
	for (int i = 0; i < n; i++) {
		struct channel *ch = &s->set->ch[i];
		attempted[i] = !(ch->retry_at_ns && now < ch->retry_at_ns);
		if (!attempted[i])
			continue;
		ch->read_error[0] = '\0';
		rcs[i] = ch->family->read(ch, &raw[i]);
		read_ns[i] = energy_monotonic_ns();
	}
	uint64_t t_ns = energy_monotonic_ns();

	sampler_lock(s);
	uint64_t values[CHANNELS_MAX];
	for (int i = 0; i < n; i++) {
		struct channel *ch = &s->set->ch[i];
		bool valid = attempted[i] &&
		             sampler_channel_update(ch, rcs[i], raw[i], read_ns[i], s->interval_ns);
		values[i] = valid ? ch->energy_uj : HISTORY_INVALID;
	}
	bool host_valid = s->coverage.n > 0;
	uint64_t host = 0;
	for (int k = 0; k < s->coverage.n; k++) {
		int i = s->coverage.idx[k];
		host += s->set->ch[i].energy_uj;
		host_valid &= values[i] != HISTORY_INVALID;
	}
	s->host_uj = host;
	history_append(&s->history, sampler_time_of(s, t_ns), values,
	               host_valid ? host : HISTORY_INVALID);
	sampler_count_tick_locked(s);
	sampler_unlock(s);
	threads_mutex_unlock_checked(&s->tick_lock);
	if (s->tick_hook)
		s->tick_hook(s->tick_hook_ctx);
}

static void *sampler_thread(void *arg)
{
	struct sampler *s = arg;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load(&s->stop)) {
		sampler_tick(s);
		uint64_t ns = (uint64_t)next.tv_nsec + s->interval_ns;
		next.tv_sec += (time_t)(ns / 1000000000u);
		next.tv_nsec = (long)(ns % 1000000000u);
		/* After a stall (suspend, debugger) skip the missed ticks instead of bursting. */
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > next.tv_sec + 1)
			next = now;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
	return NULL;
}

int sampler_start(struct sampler *s)
{
	return threads_start(&s->worker, "energy-sampler", sampler_thread, s);
}

void sampler_stop(struct sampler *s)
{
	if (!threads_stop(&s->worker, &s->stop))
		return;
	sampler_kick(s);
}

void sampler_kick(struct sampler *s)
{
	sampler_lock(s);
	for (struct sampler_waiter *w = s->waitlist; w; w = w->next) {
		w->kicked = true;
		pthread_cond_signal(&w->cond);
	}
	sampler_unlock(s);
}

void sampler_lock(struct sampler *s)
{
	pthread_mutex_lock(&s->lock);
}

void sampler_unlock(struct sampler *s)
{
	threads_mutex_unlock_checked(&s->lock);
}

int sampler_host_latest(struct sampler *s, double *t, double *joules)
{
	sampler_lock(s);
	const struct history *h = &s->history;
	int rc = h->count ? 0 : -ENODATA;
	if (rc == 0) {
		*t = history_time(h, h->count - 1);
		*joules = (double)s->host_uj / 1e6;
	}
	sampler_unlock(s);
	return rc;
}

int sampler_host_joules_between(struct sampler *s, double t0, double t1, double *joules)
{
	sampler_lock(s);
	int rc = history_host_joules_between(&s->history, t0, t1, joules);
	sampler_unlock(s);
	return rc;
}

/* Wait for the tick count target; a kick ends the wait when kickable. */
static uint64_t wait_for(struct sampler *s, uint64_t target, bool kickable)
{
	struct sampler_waiter w = {.target = target, .next = s->waitlist};
	threads_cond_init_monotonic(&w.cond);
	s->waitlist = &w;
	s->waiters++;
	while (s->ticks < target && !atomic_load(&s->stop) && !(kickable && w.kicked)) {
		/* A time-out too, against a lost wake-up: the tick count is checked again a second
		 * after the target tick's time. */
		struct timespec deadline;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		uint64_t ns = (uint64_t)deadline.tv_nsec + (target - s->ticks) * s->interval_ns;
		deadline.tv_sec += 1 + (time_t)(ns / 1000000000u);
		deadline.tv_nsec = (long)(ns % 1000000000u);
		pthread_cond_timedwait(&w.cond, &s->lock, &deadline);
	}
	struct sampler_waiter **p = &s->waitlist;
	while (*p != &w)
		p = &(*p)->next;
	*p = w.next;
	s->waiters--;
	pthread_cond_destroy(&w.cond);
	return atomic_load(&s->stop) ? 0 : s->ticks;
}

uint64_t sampler_wait_tick(struct sampler *s, uint64_t seen)
{
	if (s->ticks > seen || atomic_load(&s->stop))
		return atomic_load(&s->stop) ? 0 : s->ticks;
	return wait_for(s, seen + 1, false);
}

uint64_t sampler_wait_ticks(struct sampler *s, uint64_t seen, uint64_t n)
{
	uint64_t target = seen + (n ? n : 1);
	if (s->ticks >= target || atomic_load(&s->stop))
		return atomic_load(&s->stop) ? 0 : s->ticks;
	return wait_for(s, target, true);
}
