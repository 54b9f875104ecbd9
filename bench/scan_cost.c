/*
 * A full scan's reads, before and after issue 17, on this machine's real /proc in the same run:
 * both see the same processes and the same noise.
 *
 *   scan-cost [EXTRA_PROCS [ROUNDS [SCANS]]]        defaults 0, 9 and 20
 *
 * Starts EXTRA_PROCS sleeping children (bench/attrib_cost.py's 2,000 `sleep` processes, in
 * process), then for ROUNDS rounds, alternating which goes first, times SCANS scans of each
 * with the thread's CPU clock:
 *   old  scan_old.c: the root listed, every PID/stat opened, read, closed and parsed with
 *        sscanf, /proc/stat, the sort (main at 327eca8);
 *   new  attrib_scan_read() as energyd calls it: descriptors kept from scan to scan, the root
 *        listed again only when /proc/stat's fork count moved.
 * Each scan's result is the next one's last scan (owners of known processes are not read
 * again), as in energyd; both warm up with one scan. No cgroups (--cgroup-root off for both),
 * and no stretched scan taken again (the first of energyd's scans is never). Prints the median
 * and the range over the rounds of the CPU time per scan, the ratio of the medians and the range
 * of the rounds' ratios, how often the new scan listed /proc, and the new scans one by one with
 * and without a listing (median and range over all rounds). Exits 1 when a scan fails or
 * the two disagree on this process.
 */
#define _GNU_SOURCE
#include "attrib.h"
#include "attrib_int.h"
#include "scan_old.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double thread_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

static struct attrib a;
static struct attrib_proc *old_prev;
static size_t old_n;

static size_t scan_old(void)
{
	struct attrib_proc *procs;
	size_t n;
	uint64_t busy, total;
	if (old_scan_read(a.proc_fd, a.stat_fd, old_prev, old_n, &procs, &n, &busy, &total) < 0) {
		fprintf(stderr, "scan-cost: the old scan failed\n");
		exit(1);
	}
	free(old_prev);
	old_prev = procs;
	old_n = n;
	return n;
}

static size_t scan_new(void)
{
	struct scan_result r;
	if (attrib_scan_read(&a, &r) < 0 || !r.sys_ok) {
		fprintf(stderr, "scan-cost: the new scan failed\n");
		exit(1);
	}
	free(a.procs);
	free(r.cgroups);
	a.procs = r.procs;
	a.n_procs = r.n;
	return r.n;
}

static void report(const char *name, double *v, int rounds, const char *unit)
{
	qsort(v, (size_t)rounds, sizeof(*v), cmp_double);
	printf("%-22s median %9.2f  range %9.2f-%9.2f %s\n", name, v[rounds / 2], v[0],
	       v[rounds - 1], unit);
}

int main(int argc, char **argv)
{
	int extra = argc > 1 ? atoi(argv[1]) : 0;
	int rounds = argc > 2 ? atoi(argv[2]) : 9;
	int scans = argc > 3 ? atoi(argv[3]) : 20;
	if (extra < 0 || extra > 20000 || rounds <= 0 || rounds > 1000 || scans <= 0 ||
	    scans > 10000) {
		fprintf(stderr, "usage: scan-cost [EXTRA_PROCS [ROUNDS [SCANS]]]\n");
		return 2;
	}
	pid_t *kids = calloc((size_t)extra + 1, sizeof(*kids));
	pid_t parent = getpid();
	for (int i = 0; i < extra; i++) {
		kids[i] = fork();
		if (kids[i] < 0) {
			perror("fork");
			extra = i;
			break;
		}
		if (kids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			for (;;)
				pause();
		}
	}
	a.hz = 100;
	a.cgroup_fd = -1;
	a.proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	a.stat_fd = a.proc_fd >= 0 ? openat(a.proc_fd, "stat", O_RDONLY | O_CLOEXEC) : -1;
	if (a.stat_fd < 0) {
		perror("/proc/stat");
		return 1;
	}
	size_t n_old = scan_old(), n_new = scan_new(); /* warm up: every owner read once */
	/* Both read this process alike before their cost means anything. */
	struct attrib_proc *po = NULL, *pn = attrib_proc_find(a.procs, a.n_procs, getpid());
	for (size_t i = 0; i < old_n; i++)
		if (old_prev[i].pid == getpid())
			po = &old_prev[i];
	if (!po || !pn || po->ppid != pn->ppid || po->starttime != pn->starttime ||
	    po->uid != pn->uid || strcmp(po->comm, pn->comm) != 0) {
		fprintf(stderr, "scan-cost: the old and the new scan disagree on this process\n");
		return 1;
	}
	double *us[2], *ratio = calloc((size_t)rounds, sizeof(double));
	for (int k = 0; k < 2; k++)
		us[k] = calloc((size_t)rounds, sizeof(double));
	unsigned long lists0 = a.work.procs.lists;
	/* The new scans one by one, by whether they listed /proc (a fork since the last listing).
	 */
	double *one[2] = {calloc((size_t)(rounds * scans), sizeof(double)),
	                  calloc((size_t)(rounds * scans), sizeof(double))};
	int n_one[2] = {0, 0};
	for (int r = 0; r < rounds; r++) {
		for (int j = 0; j < 2; j++) {
			int k = (r + j) % 2; /* alternate which goes first */
			double t0 = thread_us();
			for (int i = 0; i < scans; i++) {
				if (!k) {
					scan_old();
					continue;
				}
				unsigned long l = a.work.procs.lists;
				double t1 = thread_us();
				scan_new();
				int listed = a.work.procs.lists != l;
				one[listed][n_one[listed]++] = thread_us() - t1;
			}
			us[k][r] = (thread_us() - t0) / scans;
		}
		ratio[r] = us[1][r] / us[0][r];
	}
	printf(
	    "scan-cost: %zu processes (old) / %zu (new) after %d extra, %d rounds of %d scans; "
	    "the new one kept %zu descriptors (at most %zu) and listed /proc in %lu of %d scans\n",
	    n_old, n_new, extra, rounds, scans, a.work.procs.n_fds, a.work.procs.fds_max,
	    a.work.procs.lists - lists0, rounds * scans);
	printf("CPU time per scan (thread clock):\n");
	report("old (327eca8)", us[0], rounds, "us");
	report("new", us[1], rounds, "us");
	printf("new/old ratio of medians %.3f\n", us[1][rounds / 2] / us[0][rounds / 2]);
	report("new/old per round", ratio, rounds, "");
	printf("new scans one by one (all rounds):\n");
	const char *what[2] = {"without listing", "with listing"};
	for (int l = 0; l < 2; l++) {
		if (n_one[l] == 0)
			continue;
		char name[64];
		snprintf(name, sizeof(name), "%s (%d)", what[l], n_one[l]);
		report(name, one[l], n_one[l], "us");
	}
	free(one[0]);
	free(one[1]);
	for (int i = 0; i < extra; i++)
		kill(kids[i], SIGKILL);
	for (int i = 0; i < extra; i++)
		waitpid(kids[i], NULL, 0);
	procfs_procs_free(&a.work.procs);
	free(a.procs);
	free(old_prev);
	free(kids);
	free(ratio);
	for (int k = 0; k < 2; k++)
		free(us[k]);
	close(a.stat_fd);
	close(a.proc_fd);
	return 0;
}
