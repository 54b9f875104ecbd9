/* Small pthread helpers (threads.h). */
#define _GNU_SOURCE
#include "threads.h"

#include <assert.h>
#include <time.h>

void threads_cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

void threads_mutex_init_checked(pthread_mutex_t *m)
{
	/* glibc's initializer for a PTHREAD_MUTEX_ERRORCHECK mutex: no attribute object needed. */
	const pthread_mutex_t checked = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
	*m = checked;
}

void threads_mutex_unlock_checked(pthread_mutex_t *m)
{
	int rc = pthread_mutex_unlock(m);
	assert(rc == 0 && "unlocking a mutex this thread does not hold");
	(void)rc;
}

int threads_start(struct threads_worker *w, void *(*fn)(void *), void *arg)
{
	int rc = pthread_create(&w->thread, NULL, fn, arg);
	if (rc != 0)
		return -rc;
	w->running = true;
	return 0;
}

bool threads_join(struct threads_worker *w)
{
	if (!w->running)
		return false;
	pthread_join(w->thread, NULL);
	w->running = false;
	return true;
}

bool threads_stop(struct threads_worker *w, atomic_bool *stop)
{
	if (!w->running)
		return false;
	atomic_store(stop, true);
	return threads_join(w);
}
