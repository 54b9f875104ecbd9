/*
 * What one read(2) of a CPU-wide perf counter costs the reader, side by side: the counter of
 * the CPU the reader runs on (the floor: perf_read without leaving the CPU) and the counter of
 * each other CPU (perf_read asks that CPU for the count, an inter-processor interrupt the
 * reader waits for). The hardware-counter model reads the machine's counters of every CPU from
 * the attribution's thread (hwpc.c), so on a machine where an IPI is dear (a VM whose
 * hypervisor traps it) most of a window's cost is these cross-CPU reads (bench/RESULTS.md).
 *
 * The counter is the kernel's cpu-clock software event with the read format energyd gives its
 * counters, because this class of machine (a VM) has no CPU PMU: the read path is the same.
 * The reader is pinned to the first CPU; times are its thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID), a read being a busy wait for the other CPU's answer. Prints a
 * Markdown table: median and range (min to max) over RUNS runs of ITER reads per CPU, the CPUs
 * alternating within every run. Exits 1 when a counter cannot be opened or read.
 *
 * usage: perf-read-cost [RUNS [ITER]]        (default 9 runs of 5000 reads)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CPUS_MAX 64
#define RUNS_MAX 101

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cpu_clock_counter(int cpu)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_SOFTWARE;
	attr.size = sizeof(attr);
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	long fd = syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

/* CPU time per read, in µs, over iter reads of fd. */
static int time_reads(int fd, int iter, double *us)
{
	uint64_t v[3];
	double t0 = cpu_now();
	for (int i = 0; i < iter; i++)
		if (read(fd, v, sizeof(v)) != (ssize_t)sizeof(v))
			return -1;
	*us = (cpu_now() - t0) / iter * 1e6;
	return 0;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

static void print_stat(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("%.2f µs (%.2f–%.2f)", v[n / 2], v[0], v[n - 1]);
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 9;
	int iter = argc > 2 ? atoi(argv[2]) : 5000;
	if (argc > 3 || runs < 1 || runs > RUNS_MAX || iter < 1) {
		fprintf(stderr, "usage: perf-read-cost [RUNS (1-%d) [ITER (>0)]]\n", RUNS_MAX);
		return 2;
	}
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) != 0) {
		perror("sched_getaffinity");
		return 1;
	}
	int cpus[CPUS_MAX], n = 0;
	for (int c = 0; c < CPU_SETSIZE && n < CPUS_MAX; c++)
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	CPU_ZERO(&set);
	CPU_SET(cpus[0], &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0) {
		perror("sched_setaffinity");
		return 1;
	}
	int fd[CPUS_MAX];
	for (int i = 0; i < n; i++) {
		fd[i] = cpu_clock_counter(cpus[i]);
		if (fd[i] < 0) {
			fprintf(stderr, "perf_event_open(cpu-clock, cpu %d): %s\n", cpus[i],
			        strerror(-fd[i]));
			return 1;
		}
	}
	static double us[CPUS_MAX][RUNS_MAX], ratio[CPUS_MAX][RUNS_MAX];
	for (int r = 0; r < runs; r++)
		for (int i = 0; i < n; i++)
			if (time_reads(fd[i], iter, &us[i][r]) != 0) {
				fprintf(stderr, "read(cpu-clock, cpu %d): %s\n", cpus[i],
				        strerror(errno));
				return 1;
			}
	for (int r = 0; r < runs; r++)
		for (int i = 0; i < n; i++)
			ratio[i][r] = us[0][r] > 0 ? us[i][r] / us[0][r] : 0;
	printf("reader pinned to CPU %d, %d runs of %d reads per CPU, median (min–max)\n\n",
	       cpus[0], runs, iter);
	printf("| counter of | CPU time per read | ÷ own CPU |\n| --- | --- | --- |\n");
	for (int i = 0; i < n; i++) {
		printf("| CPU %d%s | ", cpus[i], i == 0 ? " (own)" : "");
		print_stat(us[i], runs);
		printf(" | ");
		qsort(ratio[i], (size_t)runs, sizeof(double), cmp_double);
		printf("%.1f× (%.1f–%.1f) |\n", ratio[i][runs / 2], ratio[i][0],
		       ratio[i][runs - 1]);
	}
	for (int i = 0; i < n; i++)
		close(fd[i]);
	return 0;
}
