/*
 * The floor of energyd's sampling: the least a program can do to take the same samples. It
 * wakes on the clock energyd's sampler uses (CLOCK_MONOTONIC, absolute deadlines one interval
 * apart, missed ticks skipped after a stall: src/core/sampler.c's sampler_thread), preads the
 * same counter files (kept open, as src/sources/powercap.c does), parses them with energyd's own
 * energy_pread_u64 and adds each counter's difference with energyd's own energy_counter_delta
 * (wraps undone with max_energy_range_uj). Nothing else: no history, no locks, no threads, no
 * attribution. bench/floor_ratio.py runs it beside energyd on the same files at the same
 * interval: energyd's CPU time per sample over this program's is the headline of
 * bench/RESULTS.md.
 *
 * It reports on its standard output, one line each time: "ready FILES" once the files are
 * open, and "samples=N failed=F energy_uj=E t_ns=T cpu_ns=C" on SIGUSR1 (then it goes on), when
 * SIGTERM or SIGINT stop it and after -n samples. N counts the ticks taken, F the reads that
 * failed (bad text, a counter outside its range), E the energy added over all counters since
 * each one's first reading, T the CLOCK_MONOTONIC time of the last sample (a sample has a time,
 * as energyd's have) and C the process's CPU time (CLOCK_PROCESS_CPUTIME_ID).
 *
 * usage: floor [-i INTERVAL_S] [-n SAMPLES] ENERGY_UJ_FILE...    (default 0.1 s, no end)
 */
#define _GNU_SOURCE
#include "energy_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FLOOR_FILES_MAX 64

struct counter {
	int fd;
	uint64_t max_uj; /* max_energy_range_uj beside the file, 0 when absent */
	uint64_t last;
	bool have_last;
};

static volatile sig_atomic_t report_wanted, stop_wanted;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		report_wanted = 1;
	else
		stop_wanted = 1;
}

/* max_energy_range_uj of the zone whose energy_uj is at path; 0 (no wrap) when it has none. */
static uint64_t counter_range(const char *path)
{
	char range[4096];
	const char *slash = strrchr(path, '/');
	int dirlen = slash ? (int)(slash - path + 1) : 0;
	snprintf(range, sizeof(range), "%.*smax_energy_range_uj", dirlen, path);
	int fd = open(range, O_RDONLY | O_CLOEXEC);
	uint64_t max = 0;
	if (fd >= 0 && energy_pread_u64(fd, &max) < 0)
		max = 0;
	if (fd >= 0)
		close(fd);
	return max;
}

/* One sample: every counter read and added, as energyd's sampler tick does for powercap. */
static void floor_tick(struct counter *c, int n, uint64_t *energy_uj, uint64_t *failed)
{
	for (int i = 0; i < n; i++) {
		uint64_t now, delta;
		if (energy_pread_u64(c[i].fd, &now) < 0) {
			(*failed)++;
			continue;
		}
		if (!c[i].have_last) {
			c[i].have_last = true;
		} else if (energy_counter_delta(c[i].last, now, c[i].max_uj, &delta) < 0) {
			(*failed)++;
		} else {
			*energy_uj += delta;
		}
		c[i].last = now;
	}
}

static void floor_report(uint64_t samples, uint64_t failed, uint64_t energy_uj, uint64_t t_ns)
{
	struct timespec cpu;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	printf("samples=%" PRIu64 " failed=%" PRIu64 " energy_uj=%" PRIu64 " t_ns=%" PRIu64
	       " cpu_ns=%" PRIu64 "\n",
	       samples, failed, energy_uj, t_ns,
	       (uint64_t)cpu.tv_sec * 1000000000u + (uint64_t)cpu.tv_nsec);
	fflush(stdout);
}

static int usage(void)
{
	fprintf(stderr, "usage: floor [-i INTERVAL_S] [-n SAMPLES] ENERGY_UJ_FILE...\n");
	return 2;
}

int main(int argc, char **argv)
{
	double interval_s = 0.1;
	uint64_t limit = 0;
	int opt;
	while ((opt = getopt(argc, argv, "i:n:")) != -1) {
		if (opt == 'i' && energy_parse_double(optarg, &interval_s) == 0 &&
		    interval_s >= 1e-4 && interval_s <= 3600)
			continue;
		if (opt == 'n' && energy_parse_u64(optarg, &limit) == 0)
			continue;
		return usage();
	}
	int n = argc - optind;
	if (n < 1 || n > FLOOR_FILES_MAX)
		return usage();
	struct counter c[FLOOR_FILES_MAX];
	memset(c, 0, sizeof(c));
	for (int i = 0; i < n; i++) {
		const char *path = argv[optind + i];
		c[i].fd = open(path, O_RDONLY | O_CLOEXEC);
		if (c[i].fd < 0) {
			fprintf(stderr, "floor: %s: %s\n", path, strerror(errno));
			return 1;
		}
		c[i].max_uj = counter_range(path);
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("ready %d\n", n);
	fflush(stdout);

	uint64_t interval_ns = (uint64_t)(interval_s * 1e9 + 0.5);
	uint64_t samples = 0, failed = 0, energy_uj = 0, t_ns = 0;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stop_wanted && (limit == 0 || samples < limit)) {
		floor_tick(c, n, &energy_uj, &failed);
		t_ns = energy_monotonic_ns();
		samples++;
		/* sampler_thread's deadlines line for line, on purpose: the floor wakes as energyd
		 * does, so the difference is only what energyd does besides. */
		uint64_t ns = (uint64_t)next.tv_nsec + interval_ns;
		next.tv_sec += (time_t)(ns / 1000000000u);
		next.tv_nsec = (long)(ns % 1000000000u);
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > next.tv_sec + 1)
			next = now;
		while (!stop_wanted && (limit == 0 || samples < limit)) {
			if (report_wanted) {
				report_wanted = 0;
				floor_report(samples, failed, energy_uj, t_ns);
			}
			if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) != EINTR)
				break;
		}
	}
	floor_report(samples, failed, energy_uj, t_ns);
	for (int i = 0; i < n; i++)
		close(c[i].fd);
	return 0;
}
