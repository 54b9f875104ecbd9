/*
 * The process scan's parser of /proc/PID/stat, before and after it was written by hand, on the
 * same fake tree in the same run: both see the same machine and the same noise.
 *
 *   scan-parse [N_PROCS [ROUNDS]]        defaults 2000 and 9
 *
 * Writes N_PROCS fake processes (PID/stat as fs/proc/array.c prints it, as
 * tests/emulators/procfs.py writes it, one in eight with a command name holding spaces and
 * parentheses) under a temporary directory, then for ROUNDS rounds, alternating which goes
 * first, times with the process's CPU clock:
 *   parse      the N_PROCS lines already in memory, parsed by each parser;
 *   read+parse what the scan does per process: open, read and close PID/stat, then parse.
 * Prints the median and the range (min-max) of each in microseconds per pass over the tree, and
 * the ratio of the medians. The tree is removed at the end.
 */
#define _GNU_SOURCE
#include "energy_util.h"
#include "procfs.h"
#include "scan_old.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef int (*parse_fn)(const char *, struct procfs_stat *);

static double cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

/* One pass: parse every line; returns a checksum so that nothing is optimised away. */
static uint64_t pass_parse(parse_fn parse, char **lines, int n)
{
	uint64_t sum = 0;
	struct procfs_stat st;
	for (int i = 0; i < n; i++)
		if (parse(lines[i], &st) == 0)
			sum += procfs_total_ticks(&st) + (uint64_t)st.pid;
	return sum;
}

static uint64_t pass_read(parse_fn parse, int dirfd, int n)
{
	uint64_t sum = 0;
	char path[32], buf[1024];
	struct procfs_stat st;
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%d/stat", 1000 + i);
		if (energy_read_text_at(dirfd, path, buf, sizeof(buf), false) > 0 &&
		    parse(buf, &st) == 0)
			sum += procfs_total_ticks(&st) + (uint64_t)st.pid;
	}
	return sum;
}

/* The fake tree and its lines, gone (whether the run measured or stopped). */
static void remove_tree(const char *dir, int dirfd, char **lines, int n)
{
	for (int i = 0; i < n; i++) {
		char sub[32];
		snprintf(sub, sizeof(sub), "%d/stat", 1000 + i);
		unlinkat(dirfd, sub, 0);
		snprintf(sub, sizeof(sub), "%d", 1000 + i);
		unlinkat(dirfd, sub, AT_REMOVEDIR);
		free(lines[i]);
	}
	close(dirfd);
	rmdir(dir);
	free(lines);
}

/* The old parser (327eca8's) gives what the scan used then; the new one gives num_threads too
 * (field 20, 1 on every line here), which the schedstat check needs. */
static bool agree(const struct procfs_stat *old, const struct procfs_stat *now)
{
	return old->pid == now->pid && old->ppid == now->ppid && old->state == now->state &&
	       strcmp(old->comm, now->comm) == 0 && old->utime == now->utime &&
	       old->stime == now->stime && old->cutime == now->cutime &&
	       old->cstime == now->cstime && old->starttime == now->starttime && now->threads == 1;
}

static void report(const char *what, const char *name, double *us, int rounds)
{
	qsort(us, (size_t)rounds, sizeof(*us), cmp_double);
	printf("%-11s %-16s median %9.1f us  range %9.1f-%9.1f us  (%d rounds)\n", what, name,
	       us[rounds / 2], us[0], us[rounds - 1], rounds);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	int rounds = argc > 2 ? atoi(argv[2]) : 9;
	if (n <= 0 || n > 100000 || rounds <= 0 || rounds > 1000) {
		fprintf(stderr, "usage: scan-parse [N_PROCS [ROUNDS]]\n");
		return 2;
	}
	char dir[] = "/tmp/energy-scan-parse.XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char **lines = calloc((size_t)n, sizeof(*lines));
	if (dirfd < 0 || !lines)
		return 1;
	for (int i = 0; i < n; i++) {
		int pid = 1000 + i;
		char line[512], sub[32];
		snprintf(line, sizeof(line),
		         "%d (%s) S 1 %d %d 0 -1 4194304 120 0 3 0 %d %d %d %d 20 0 1 0 %d 1000000 "
		         "100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
		         pid, i % 8 ? "python3" : "my (odd) cmd", pid, pid, 100 + i * 7, i * 3, i,
		         i / 2, 5000 + i);
		lines[i] = strdup(line);
		snprintf(sub, sizeof(sub), "%d", pid);
		mkdirat(dirfd, sub, 0755);
		snprintf(sub, sizeof(sub), "%d/stat", pid);
		int fd = openat(dirfd, sub, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || !lines[i] || write(fd, line, strlen(line)) < 0)
			return 1;
		close(fd);
	}
	/* Both parsers must agree on every line before their cost means anything. */
	for (int i = 0; i < n; i++) {
		struct procfs_stat a, b;
		if (old_parse_stat(lines[i], &a) != 0 || procfs_parse_stat(lines[i], &b) != 0 ||
		    !agree(&a, &b)) {
			fprintf(stderr, "scan-parse: the parsers disagree on: %s", lines[i]);
			remove_tree(dir, dirfd, lines, n);
			return 1;
		}
	}
	const parse_fn fn[2] = {old_parse_stat, procfs_parse_stat};
	const char *name[2] = {"old (sscanf)", "new (by hand)"};
	double *us[2][2];
	for (int k = 0; k < 2; k++)
		for (int m = 0; m < 2; m++)
			us[k][m] = calloc((size_t)rounds, sizeof(double));
	uint64_t check = 0;
	const int inner = 20; /* parse-only passes per round: one is too short for the clock */
	for (int r = 0; r < rounds; r++)
		for (int j = 0; j < 2; j++) {
			int k = (r + j) % 2; /* alternate which parser goes first */
			double t0 = cpu_us();
			for (int i = 0; i < inner; i++)
				check += pass_parse(fn[k], lines, n);
			us[k][0][r] = (cpu_us() - t0) / inner;
			t0 = cpu_us();
			check += pass_read(fn[k], dirfd, n);
			us[k][1][r] = cpu_us() - t0;
		}
	printf("scan-parse: %d processes, CPU time per pass over the tree (checksum %llu)\n", n,
	       (unsigned long long)check);
	for (int m = 0; m < 2; m++) {
		for (int k = 0; k < 2; k++)
			report(m ? "read+parse" : "parse", name[k], us[k][m], rounds);
		printf("%-11s new/old median ratio %.2f\n", m ? "read+parse" : "parse",
		       us[1][m][rounds / 2] / us[0][m][rounds / 2]);
	}
	for (int k = 0; k < 2; k++)
		for (int m = 0; m < 2; m++)
			free(us[k][m]);
	remove_tree(dir, dirfd, lines, n);
	return 0;
}
