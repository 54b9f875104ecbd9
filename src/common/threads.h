/*
 * Small pthread helpers every threaded module uses (internal: not part of libenergy's API).
 */
#ifndef ENERGY_THREADS_H
#define ENERGY_THREADS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* A module's one thread: started once, joined once. */
struct threads_worker {
	pthread_t thread;
	bool running; /* started and not joined yet */
	/* What threads_start was given, for the thread to name itself before it runs fn. */
	void *(*fn)(void *);
	void *arg;
	const char *name;
};

/* Start fn(arg) on a thread named name (at most 15 characters: what ps -L, top -H and
 * /proc/PID/task/TID/comm show): 0, or the -errno of pthread_create. w must outlive the thread. */
int threads_start(struct threads_worker *w, const char *name, void *(*fn)(void *), void *arg);
/* Name the calling thread (truncated to 15 characters); a failure changes nothing else. */
void threads_name_self(const char *name);
/* Join the thread (the caller asked it to end first); false when none was running. */
bool threads_join(struct threads_worker *w);
/* For a thread that polls *stop between steps: set it and join; false when none was running. */
bool threads_stop(struct threads_worker *w, atomic_bool *stop);

/* A condition variable whose timed waits use CLOCK_MONOTONIC (a wall-clock step neither
 * shortens nor stretches them). */
void threads_cond_init_monotonic(pthread_cond_t *cond);
/* A mutex that checks its owner (PTHREAD_MUTEX_ERRORCHECK). */
void threads_mutex_init_checked(pthread_mutex_t *m);
/* Unlock m, stopping at an assert when this thread does not hold it (a bug, not a state). */
void threads_mutex_unlock_checked(pthread_mutex_t *m);

#endif
