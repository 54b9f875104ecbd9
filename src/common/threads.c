/* Small pthread helpers (threads.h). */
#define _GNU_SOURCE
#include "threads.h"

#include <assert.h>
#include <stdio.h>
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

void threads_name_self(const char *name)
{
	char comm[16];
	snprintf(comm, sizeof(comm), "%s", name);
	pthread_setname_np(pthread_self(), comm); /* prctl(PR_SET_NAME) on this thread */
}

/* The thread names itself, so no other thread writes /proc/self/task/TID/comm for it. */
static void *named_thread(void *arg)
{
	struct threads_worker *w = arg;
	threads_name_self(w->name);
	return w->fn(w->arg);
}

int threads_start(struct threads_worker *w, const char *name, void *(*fn)(void *), void *arg)
{
	w->fn = fn;
	w->arg = arg;
	w->name = name;
	int rc = pthread_create(&w->thread, NULL, named_thread, w);
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
