/* Full scans, applied to hand-made scan results (attrib_scan_apply).
 *
 * A child reaped between the reads of its parent and of itself. Its parent (pid 100) is read
 * before the reap, the child (400) after it: the child is gone but the parent's cutime does not
 * hold it yet; it does at the next scan. What the child was charged before must not count again
 * there, or the parent takes the share of everyone else (pid 200) in that interval.
 *
 * 100 clock ticks a second; every interval has 100 busy ticks and 100 J of active energy.
 *   scan 1: the child ran 100 ticks                        -> it gets 100 J
 *   scan 2: the child ran 50 more and exited, 200 ran 50   -> 200 gets 50 J
 *   scan 3: 200 ran 100; the parent's cutime now holds 150
 * Race (scan 2 sees the parent's old cutime): scan 2's processes show 50 of its 100 busy ticks,
 * and 50 J go to no process then. At scan 3 only 50 of the 150 are new; with 200's 100 they
 * exceed the interval's busy ticks by the 50 scan 2 left, which bring their 50 J: the parent
 * gets 50 J, 200 its 100 J, as without the race. (Counted again, the 100 ticks would give 200
 * only 100 / 250 of 100 J; without what scan 2 left, 100 / 150 of it.) No race (scan 2 sees
 * the new cutime): the child's last 50 ticks are its own at scan 2 and 200 has the whole of
 * scan 3.
 *
 * A scan preempted between its reads of the processes and of /proc/stat: the same, without a
 * reap (test_preempted_scan_loses_nothing). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "attrib.h"
#include "attrib_int.h"

#define J 1e6 /* microjoules */

static struct channel_set set;
static struct sampler sampler;
static struct attrib a;

static void set_up(void)
{
	memset(&set, 0, sizeof(set));
	memset(&sampler, 0, sizeof(sampler));
	memset(&a, 0, sizeof(a));
	sampler.set = &set;
	a.sampler = &sampler;
	a.hz = 100;
	a.cfg.history_s = 3600;
	a.cfg.scan_interval_s = 1;
	series_store_init(&a.series);
}

static void tear_down(void)
{
	series_store_free(&a.series);
	free(a.procs);
	free(a.users);
	a.procs = NULL;
	a.users = NULL;
}

struct p {
	int pid, ppid;
	uint64_t own, children; /* utime + stime; cutime + cstime */
};

/* One scan at time t: the processes as read, /proc/stat's busy ticks right after them, and the
 * active energy since the last scan. */
static void scan(double t, const struct p *ps, size_t n, uint64_t busy, double active_uj)
{
	struct scan_result r;
	memset(&r, 0, sizeof(r));
	r.procs = calloc(n, sizeof(*r.procs));
	assert_non_null(r.procs);
	for (size_t i = 0; i < n; i++) {
		struct attrib_proc *q = &r.procs[r.n++];
		q->pid = ps[i].pid;
		q->ppid = ps[i].ppid;
		q->uid = 1000;
		q->starttime = 100; /* all there since before the first scan */
		q->own_ticks = ps[i].own;
		q->total_ticks = ps[i].own + ps[i].children;
	}
	r.boot_ticks = 1e6;
	r.sys_ok = true;
	r.sys_busy = busy;
	r.sys_total = 2 * busy;
	a.work.cpu_active_uj += active_uj;
	a.last_t = t;
	attrib_scan_apply(&a, &r);
	free(r.procs);
	free(r.cgroups);
}

static double at(const char *key, double t)
{
	return attrib_series_at(&a, key, t);
}

static void near(double got, double want)
{
	if (fabs(got - want) > 1e-6 * fabs(want) + 1e-6)
		fail_msg("got %.9g uJ, want %.9g uJ", got, want);
}

static void first_two_scans(void)
{
	struct p s0[] = {{1, 0, 0, 0}, {100, 1, 0, 0}, {200, 1, 0, 0}, {400, 100, 0, 0}};
	scan(0, s0, 4, 0, 0);
	struct p s1[] = {{1, 0, 0, 0}, {100, 1, 0, 0}, {200, 1, 0, 0}, {400, 100, 100, 0}};
	scan(1, s1, 4, 100, 100 * J);
	near(at("pid:400", 1) - at("pid:400", 0), 100 * J);
}

static void test_reap_between_the_reads(void **state)
{
	(void)state;
	set_up();
	first_two_scans();
	/* The child is gone, the parent's cutime is still 0. */
	struct p s2[] = {{1, 0, 0, 0}, {100, 1, 0, 0}, {200, 1, 50, 0}};
	scan(2, s2, 3, 200, 100 * J);
	near(at("pid:200", 2) - at("pid:200", 1), 50 * J);
	/* Now it holds the child's 150 ticks, 100 of which were charged at scan 1. */
	struct p s3[] = {{1, 0, 0, 0}, {100, 1, 0, 150}, {200, 1, 150, 0}};
	scan(3, s3, 3, 300, 100 * J);
	near(at("pid:200", 3) - at("pid:200", 2), 100 * J);
	near(at("pid:100", 3) - at("pid:100", 2), 50 * J);
	/* The parent's tree: the child's 100 J and the late 50 ticks, not the 100 again. */
	near(at("pid:100", 3), 150 * J);
	near(at("user:1000", 3), 300 * J); /* all the active energy, as without the race */
	/* The shortfall is carried once: a fourth scan owes nothing. */
	struct p s4[] = {{1, 0, 0, 0}, {100, 1, 0, 150}, {200, 1, 250, 0}};
	scan(4, s4, 3, 400, 100 * J);
	near(at("pid:200", 4) - at("pid:200", 3), 100 * J);
	tear_down();
}

static void test_reap_seen_at_once(void **state)
{
	(void)state;
	set_up();
	first_two_scans();
	struct p s2[] = {{1, 0, 0, 0}, {100, 1, 0, 150}, {200, 1, 50, 0}};
	scan(2, s2, 3, 200, 100 * J);
	near(at("pid:200", 2) - at("pid:200", 1), 50 * J);
	near(at("pid:400", 2) - at("pid:400", 1), 50 * J); /* its last stretch, its own */
	struct p s3[] = {{1, 0, 0, 0}, {100, 1, 0, 150}, {200, 1, 150, 0}};
	scan(3, s3, 3, 300, 100 * J);
	near(at("pid:200", 3) - at("pid:200", 2), 100 * J);
	near(at("pid:100", 3), 150 * J);
	tear_down();
}

/* Two processes at 50 ticks a second each, 100 busy ticks and 100 J a second. Scan 1's thread
 * is preempted for 0.2 s between its reads of the processes and of /proc/stat: they show 40
 * ticks each of the interval's 100 busy ones, and 20 J go to no process; at scan 2 they show 60
 * each of its 100, 20 over. What scan 1 left makes that up: 100 J each over the two, all of the
 * 200 J. Divided by max(busy, ticks) alone, 40 + 50 each: 20 J lost for good. */
static void test_preempted_scan_loses_nothing(void **state)
{
	(void)state;
	set_up();
	struct p s0[] = {{100, 1, 0, 0}, {200, 1, 0, 0}};
	scan(0, s0, 2, 0, 0);
	struct p s1[] = {{100, 1, 40, 0}, {200, 1, 40, 0}};
	scan(1, s1, 2, 100, 100 * J);
	near(at("pid:100", 1), 40 * J);
	struct p s2[] = {{100, 1, 100, 0}, {200, 1, 100, 0}};
	scan(2, s2, 2, 200, 100 * J);
	near(at("pid:100", 2), 100 * J);
	near(at("pid:200", 2), 100 * J);
	near(at("user:1000", 2), 200 * J);
	/* The interval's own power in /processes: half of its 100 W by its own ticks, without
	 * the 10 J each carried into it. */
	struct attrib_proc *p100 = attrib_proc_find(a.procs, a.n_procs, 100);
	assert_non_null(p100);
	near(p100->watts * J, 50 * J);
	/* Carried once: scan 3's processes over its busy time again find nothing left, and are
	 * given no more than the interval's active energy. */
	struct p s3[] = {{100, 1, 175, 0}, {200, 1, 175, 0}};
	scan(3, s3, 2, 300, 100 * J);
	near(at("pid:100", 3) - at("pid:100", 2), 50 * J);
	near(at("user:1000", 3), 300 * J);
	tear_down();
}

/* A GPU that gives pid 100 half of its energy (as NVML's per-process utilisation would). */
static int half_to_100(struct channel *ch, struct process_share *out, int max)
{
	(void)ch;
	if (max < 1)
		return -1;
	out[0] = (struct process_share){.pid = 100, .share = 0.5};
	return 1;
}

static const struct source_family half_gpu = {.name = "halfgpu", .process_shares = half_to_100};

/* The interval's own power in /processes holds a process's GPU part as well as its CPU part:
 * 100 J of CPU-side energy shared equally by two processes over 1 s (50 W each) and 40 J of a
 * GPU half of which is pid 100's (20 W): 70 W and 50 W. */
static void test_watts_hold_the_gpu_part(void **state)
{
	(void)state;
	set_up();
	set.n = 1;
	strcpy(set.ch[0].id, "nvml:gpu-0");
	set.ch[0].kind = CHANNEL_GPU;
	set.ch[0].family = &half_gpu;
	a.method[0] = split_method_of(&set.ch[0], true);
	assert_int_equal(a.method[0], SPLIT_GPU);
	a.in_coverage[0] = true;
	struct p s0[] = {{100, 1, 0, 0}, {200, 1, 0, 0}};
	scan(0, s0, 2, 0, 0);
	struct p s1[] = {{100, 1, 50, 0}, {200, 1, 50, 0}};
	a.gpu_pending_uj[0] = 40 * J;
	scan(1, s1, 2, 100, 100 * J);
	near(at("pid:100", 1), 70 * J);
	near(at("pid:200", 1), 50 * J);
	struct attrib_proc *p100 = attrib_proc_find(a.procs, a.n_procs, 100);
	struct attrib_proc *p200 = attrib_proc_find(a.procs, a.n_procs, 200);
	assert_non_null(p100);
	assert_non_null(p200);
	near(p100->watts * J, 70 * J);
	near(p200->watts * J, 50 * J);
	tear_down();
}

/* Processes whose times did not move between scans get nothing and keep their figures; the busy
 * ones share the interval alone, and a tree holds its busy members only. */
static void test_idle_processes_get_nothing(void **state)
{
	(void)state;
	set_up();
	struct p s0[] = {{1, 0, 5, 0}, {100, 1, 7, 3}, {200, 1, 0, 0}, {300, 100, 2, 0}};
	scan(0, s0, 4, 0, 0);
	struct p s1[] = {{1, 0, 5, 0}, {100, 1, 7, 3}, {200, 1, 60, 0}, {300, 100, 42, 0}};
	scan(1, s1, 4, 100, 100 * J);
	near(at("pid:200", 1), 60 * J);
	near(at("pid:300", 1), 40 * J);
	near(at("pid:100", 1), 40 * J); /* its child's, none of its own */
	near(at("pid:1", 1), 100 * J);
	/* 300 stops: 200 takes everything; 300's and 100's figures stay. */
	struct p s2[] = {{1, 0, 5, 0}, {100, 1, 7, 3}, {200, 1, 160, 0}, {300, 100, 42, 0}};
	scan(2, s2, 4, 200, 100 * J);
	near(at("pid:200", 2), 160 * J);
	near(at("pid:300", 2), 40 * J);
	near(at("pid:100", 2), 40 * J);
	near(at("pid:1", 2), 200 * J);
	const struct attrib_proc *procs;
	size_t n = attrib_procs_locked(&a, &procs);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		if (procs[i].pid == 200) {
			near(procs[i].watts, 100);
			continue;
		}
		assert_true(procs[i].watts == 0 && procs[i].cpu_s == 0);
	}
	near(attrib_proc_find(a.procs, a.n_procs, 1)->tree_uj, 200 * J);
	near(attrib_proc_find(a.procs, a.n_procs, 100)->tree_uj, 40 * J);
	near(attrib_proc_find(a.procs, a.n_procs, 300)->tree_uj, 40 * J);
	near(at("user:1000", 2), 200 * J);
	tear_down();
}

static bool scanned(const struct scan_result *r, int pid, struct attrib_proc *out)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->procs[i].pid == pid) {
			*out = r->procs[i];
			return true;
		}
	return false;
}

/* The scan over this machine's /proc (and set_up's state); undone by tear_down_real_proc. */
static void set_up_real_proc(void)
{
	set_up();
	a.proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(a.proc_fd >= 0);
	a.stat_fd = openat(a.proc_fd, "stat", O_RDONLY | O_CLOEXEC);
	assert_true(a.stat_fd >= 0);
	procfs_procs_init(&a.work.procs, a.proc_fd, 64); /* whatever this shell's soft limit */
}

static void tear_down_real_proc(void)
{
	procfs_procs_free(&a.work.procs);
	close(a.stat_fd);
	close(a.proc_fd);
	tear_down();
}

static void scan_free(struct scan_result *r)
{
	free(r->procs);
	free(r->cgroups);
}

/* Full scans of the real /proc: descriptors kept from one to the next, a process created
 * between two scans found by the second (the fork count moved: the root is listed again), with
 * its name and owner, and a reaped one no longer there. */
static void test_real_proc_scans(void **state)
{
	(void)state;
	set_up_real_proc();
	struct scan_result r;
	struct attrib_proc p;
	assert_int_equal(attrib_scan_read(&a, &r), 0);
	assert_true(r.sys_ok);
	assert_true(scanned(&r, getpid(), &p));
	assert_true(a.work.procs.keep);
	assert_true(a.work.procs.n_fds > 0);
	assert_true(a.work.forks_ok);
	for (size_t i = 1; i < r.n; i++)
		assert_true(r.procs[i - 1].pid < r.procs[i].pid);
	scan_free(&r);
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		prctl(PR_SET_NAME, "scan-new");
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char ch;
	assert_int_equal(read(pipefd[0], &ch, 1), 1);
	assert_int_equal(attrib_scan_read(&a, &r), 0);
	assert_true(scanned(&r, c, &p));
	assert_string_equal(p.comm, "scan-new");
	assert_int_equal(p.uid, getuid());
	assert_int_equal(p.ppid, getpid());
	scan_free(&r);
	kill(c, SIGKILL);
	assert_int_equal(waitpid(c, NULL, 0), c);
	assert_int_equal(attrib_scan_read(&a, &r), 0);
	if (scanned(&r, c, &p)) /* the pid was given to another process since */
		assert_string_not_equal(p.comm, "scan-new");
	assert_true(scanned(&r, getpid(), &p));
	scan_free(&r);
	close(pipefd[0]);
	close(pipefd[1]);
	tear_down_real_proc();
}

/* Keep the result as attrib_scan_apply does: the next scan compares with it. */
static void scan_keep(struct scan_result *r)
{
	free(a.procs);
	a.procs = r->procs;
	a.n_procs = r->n;
	free(r->cgroups);
}

/* Wait until pid is asleep (S): it has run, so its schedstat is more than the "0 0 0" of a
 * process that has not run yet, which the scan takes for a kernel without scheduler statistics
 * and so never compares (on a loaded machine a forked child may not run for a while). */
static void wait_asleep(pid_t pid)
{
	char path[32], st[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 5000; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		ssize_t k = read(fd, st, sizeof(st) - 1);
		close(fd);
		assert_true(k > 0);
		st[k] = '\0';
		const char *close_paren = strrchr(st, ')');
		if (close_paren && close_paren[1] == ' ' && close_paren[2] == 'S')
			return;
		nanosleep(&(struct timespec){0, 2000000}, NULL);
	}
	fail_msg("pid %d never fell asleep", (int)pid);
}

/* A process that has not run is given as last read, with the parent it had then, unless that
 * parent ended: then it is read again and shows the parent it was given (this process, a
 * subreaper here). Its CPU time is the same either way. */
static void test_real_proc_unchanged_child_of_ended_parent(void **state)
{
	(void)state;
	set_up_real_proc();
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	procfs_procs_free(&a.work.procs); /* room for both descriptors of every process here */
	procfs_procs_init(&a.work.procs, a.proc_fd, rl.rlim_cur > 256 ? rl.rlim_cur - 64 : 0);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	/* The child waits on hold, whose writing end only this process keeps: it ends with this
	 * test even when an assertion ends it first. */
	int pipefd[2], hold[2];
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(pipe(hold), 0);
	pid_t parent = fork();
	assert_true(parent >= 0);
	if (parent == 0) {
		close(hold[1]);
		pid_t c = fork();
		if (c == 0) {
			prctl(PR_SET_NAME, "gate-child");
			char ch;
			_exit(read(hold[0], &ch, 1) < 0);
		}
		if (c < 0 || write(pipefd[1], &c, sizeof(c)) != sizeof(c))
			_exit(1);
		for (;;)
			pause();
	}
	pid_t c;
	assert_int_equal(read(pipefd[0], &c, sizeof(c)), sizeof(c));
	wait_asleep(c); /* in its read of hold */
	struct scan_result r;
	struct attrib_proc p, before;
	/* Read, read with its schedstat, then given as read (when its descriptors fit). */
	for (int k = 0; k < 3; k++) {
		assert_int_equal(attrib_scan_read(&a, &r), 0);
		assert_true(scanned(&r, c, &before));
		assert_int_equal(before.ppid, parent);
		scan_keep(&r);
	}
	size_t i = 0;
	while (i < a.work.procs.n && a.work.procs.ent[i].pid != c)
		i++;
	if (i == a.work.procs.n || a.work.procs.ent[i].sched_len == 0) {
		kill(parent, SIGKILL);
		waitpid(parent, NULL, 0);
		kill(c, SIGKILL);
		waitpid(c, NULL, 0);
		close(hold[1]);
		tear_down_real_proc();
		print_message("# the scan kept no schedstat of the child to compare with (too many "
		              "processes here for the descriptors)\n");
		skip();
	}
	kill(parent, SIGKILL);
	assert_int_equal(waitpid(parent, NULL, 0), parent);
	assert_int_equal(attrib_scan_read(&a, &r), 0);
	assert_true(scanned(&r, c, &p));
	assert_int_equal(p.ppid, getpid());
	assert_int_equal(p.starttime, before.starttime);
	assert_string_equal(p.comm, "gate-child");
	assert_false(scanned(&r, parent, &p) && p.starttime == before.starttime);
	scan_keep(&r);
	/* Given as read from now on, with its new parent. */
	assert_int_equal(attrib_scan_read(&a, &r), 0);
	assert_true(scanned(&r, c, &p));
	assert_int_equal(p.ppid, getpid());
	assert_int_equal(p.own_ticks, before.own_ticks);
	scan_free(&r);
	kill(c, SIGKILL);
	assert_int_equal(waitpid(c, NULL, 0), c);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
	close(pipefd[0]);
	close(pipefd[1]);
	close(hold[0]);
	close(hold[1]);
	tear_down_real_proc();
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The owner is read from PID/status only for a pid not seen before, or seen with another start
 * time (a new process with that pid): a status that changes under a known process is not read. */
static void test_status_read_for_new_pids_only(void **state)
{
	(void)state;
	set_up();
	char dir[] = "/tmp/test-attrib-scan-XXXXXX", sub[64];
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/42", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	put(dir, "stat", "cpu  10 0 10 100 0 0 0 0 0 0\nprocesses 7\n");
	put(sub, "stat", "42 (p) S 1 1 1 0 -1 0 0 0 0 0 5 5 0 0 20 0 1 0 500 0 0\n");
	put(sub, "status", "Name:\tp\nUid:\t1000\t1000\t1000\t1000\n");
	a.proc_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	a.stat_fd = openat(a.proc_fd, "stat", O_RDONLY | O_CLOEXEC);
	assert_true(a.proc_fd >= 0 && a.stat_fd >= 0);
	struct scan_result r;
	struct attrib_proc p;
	assert_int_equal(attrib_scan_read(&a, &r), 0);
	assert_false(a.work.procs.keep);
	assert_true(scanned(&r, 42, &p));
	assert_int_equal(p.uid, 1000);
	a.procs = r.procs; /* as attrib_scan_apply leaves it */
	a.n_procs = r.n;
	free(r.cgroups);
	put(sub, "status", "Name:\tp\nUid:\t2000\t2000\t2000\t2000\n");
	assert_int_equal(attrib_scan_read(&a, &r), 0);
	assert_true(scanned(&r, 42, &p));
	assert_int_equal(p.uid, 1000); /* known: status not read again */
	free(a.procs);
	a.procs = r.procs;
	a.n_procs = r.n;
	free(r.cgroups);
	/* Another process with pid 42 (another start time): its owner is read. */
	put(sub, "stat", "42 (q) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 900 0 0\n");
	assert_int_equal(attrib_scan_read(&a, &r), 0);
	assert_true(scanned(&r, 42, &p));
	assert_int_equal(p.uid, 2000);
	assert_string_equal(p.comm, "q");
	scan_free(&r);
	procfs_procs_free(&a.work.procs);
	close(a.stat_fd);
	close(a.proc_fd);
	snprintf(sub, sizeof(sub), "%s/42/stat", dir);
	unlink(sub);
	snprintf(sub, sizeof(sub), "%s/42/status", dir);
	unlink(sub);
	snprintf(sub, sizeof(sub), "%s/42", dir);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/stat", dir);
	unlink(sub);
	rmdir(dir);
	tear_down();
}

static void write_cpu_stat(const char *dir, uint64_t usage)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/cpu.stat", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "usage_usec %llu\nuser_usec 0\nsystem_usec 0\n", (unsigned long long)usage);
	assert_int_equal(fclose(f), 0);
}

/* The cgroup tree: every cgroup read with its usage, in path order, the array growing as the
 * walk needs it; a tree over ATTRIB_CGROUPS_MAX stops at that many. */
static void test_cgroup_tree_read_whole_and_bounded(void **state)
{
	(void)state;
	set_up_real_proc();
	char root[] = "/tmp/energy-cgroups.XXXXXX";
	assert_non_null(mkdtemp(root));
	write_cpu_stat(root, 7);
	const int n = ATTRIB_CGROUPS_MAX + 4;
	char dir[512];
	for (int i = 0; i < n; i++) {
		snprintf(dir, sizeof(dir), "%s/g%05d", root, i);
		assert_int_equal(mkdir(dir, 0755), 0);
		write_cpu_stat(dir, 1000 + (uint64_t)i);
	}
	a.cgroup_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(a.cgroup_fd >= 0);
	struct scan_result r;
	assert_int_equal(attrib_scan_read(&a, &r), 0);
	assert_int_equal(r.n_cgroups, ATTRIB_CGROUPS_MAX);
	assert_string_equal(r.cgroups[0].path, "/");
	assert_int_equal(r.cgroups[0].usage_usec, 7);
	for (size_t i = 1; i < r.n_cgroups; i++) {
		assert_true(strcmp(r.cgroups[i - 1].path, r.cgroups[i].path) < 0);
		int k = atoi(r.cgroups[i].path + 2); /* "/gNNNNN" */
		assert_int_equal(r.cgroups[i].usage_usec, 1000 + (uint64_t)k);
	}
	scan_free(&r);
	/* Fewer than the bound: every one of them. */
	for (int i = 200; i < n; i++) {
		snprintf(dir, sizeof(dir), "%s/g%05d/cpu.stat", root, i);
		assert_int_equal(unlink(dir), 0);
		snprintf(dir, sizeof(dir), "%s/g%05d", root, i);
		assert_int_equal(rmdir(dir), 0);
	}
	assert_int_equal(attrib_scan_read(&a, &r), 0);
	assert_int_equal(r.n_cgroups, 201);
	assert_int_equal(r.cgroups[200].usage_usec, 1199);
	scan_free(&r);
	for (int i = 0; i < 200; i++) {
		snprintf(dir, sizeof(dir), "%s/g%05d/cpu.stat", root, i);
		assert_int_equal(unlink(dir), 0);
		snprintf(dir, sizeof(dir), "%s/g%05d", root, i);
		assert_int_equal(rmdir(dir), 0);
	}
	snprintf(dir, sizeof(dir), "%s/cpu.stat", root);
	assert_int_equal(unlink(dir), 0);
	assert_int_equal(rmdir(root), 0);
	close(a.cgroup_fd);
	tear_down_real_proc();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reap_between_the_reads),
	    cmocka_unit_test(test_reap_seen_at_once),
	    cmocka_unit_test(test_preempted_scan_loses_nothing),
	    cmocka_unit_test(test_watts_hold_the_gpu_part),
	    cmocka_unit_test(test_idle_processes_get_nothing),
	    cmocka_unit_test(test_real_proc_scans),
	    cmocka_unit_test(test_real_proc_unchanged_child_of_ended_parent),
	    cmocka_unit_test(test_status_read_for_new_pids_only),
	    cmocka_unit_test(test_cgroup_tree_read_whole_and_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
