/* The processes kept from scan to scan (procfs_procs_*): fake trees read by path, real procfs
 * with descriptors kept open, at most fds_max of them, and a kept descriptor of a process that
 * was reaped never read as the process that took its pid since. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "procfs.h"

static char tree[64];

static void write_proc(int pid, const char *comm, unsigned long utime)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%d", tree, pid);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%d/stat", tree, pid);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%d (%s) S 1 1 1 0 -1 4194304 0 0 0 0 %lu 0 0 0 20 0 1 0 %d 0 0\n", pid, comm,
	        utime, 1000 + pid);
	fclose(f);
}

static void remove_proc(int pid)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%d/stat", tree, pid);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/%d", tree, pid);
	assert_int_equal(rmdir(path), 0);
}

static size_t find(const struct procfs_procs *s, int pid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ent[i].pid == pid)
			return i;
	return (size_t)-1;
}

/* A fake tree: listed in pid order whatever readdir gives, read by path (no descriptor kept, a
 * rewritten file is read anew), new pids fresh, vanished ones gone. */
static void test_fake_tree(void **state)
{
	(void)state;
	snprintf(tree, sizeof(tree), "/tmp/test-procfs-procs-XXXXXX");
	assert_non_null(mkdtemp(tree));
	write_proc(300, "c", 3);
	write_proc(100, "a) S 9 9 (b", 1);
	write_proc(20, "x", 2);
	int dirfd = open(tree, O_RDONLY | O_DIRECTORY);
	assert_true(dirfd >= 0);
	struct procfs_procs s;
	procfs_procs_init(&s, dirfd, 0);
	assert_false(s.keep);
	assert_int_equal(procfs_procs_list(&s), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ent[0].pid, 20);
	assert_int_equal(s.ent[1].pid, 100);
	assert_int_equal(s.ent[2].pid, 300);
	struct procfs_stat st;
	for (size_t i = 0; i < s.n; i++) {
		assert_true(s.ent[i].fresh);
		assert_int_equal(procfs_procs_read(&s, i, &st), 0);
		assert_int_equal(st.pid, s.ent[i].pid);
		assert_false(s.ent[i].fresh);
		assert_int_equal(s.ent[i].fd, -1);
	}
	assert_string_equal(st.comm, "c");
	assert_int_equal(s.n_fds, 0);
	write_proc(300, "c", 30);
	assert_int_equal(procfs_procs_read(&s, 2, &st), 0);
	assert_int_equal(st.utime, 30);
	/* 100 goes, 200 comes: 20 and 300 are kept as they were (not fresh). */
	remove_proc(100);
	write_proc(200, "new", 0);
	assert_int_equal(procfs_procs_list(&s), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ent[1].pid, 200);
	assert_true(s.ent[1].fresh);
	assert_false(s.ent[0].fresh);
	assert_false(s.ent[2].fresh);
	/* Gone between the listing and the read. */
	remove_proc(20);
	assert_int_equal(procfs_procs_read(&s, 0, &st), -ENOENT);
	assert_true(s.ent[0].gone);
	procfs_procs_sweep(&s);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.ent[0].pid, 200);
	procfs_procs_free(&s);
	remove_proc(200);
	remove_proc(300);
	rmdir(tree);
	close(dirfd);
}

/* A child that names itself, says so on a pipe, and waits to be killed. */
static pid_t child(const char *name)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_NAME, name);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	close(p[1]);
	return pid;
}

static void end_child(pid_t pid)
{
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/* The real /proc: descriptors kept up to fds_max, then one pread per known process; a reaped
 * process is gone, its descriptor closed. */
static void test_real_proc_keeps_descriptors(void **state)
{
	(void)state;
	int dirfd = open("/proc", O_RDONLY | O_DIRECTORY);
	assert_true(dirfd >= 0);
	pid_t a = child("keep-a"), b = child("keep-b");
	struct procfs_procs s;
	procfs_procs_init(&s, dirfd, 2);
	assert_true(s.keep);
	assert_int_equal(procfs_procs_list(&s), 0);
	size_t ia = find(&s, a), ib = find(&s, b), iself = find(&s, getpid());
	assert_true(ia != (size_t)-1 && ib != (size_t)-1 && iself != (size_t)-1);
	struct procfs_stat st;
	assert_int_equal(procfs_procs_read(&s, ia, &st), 0);
	assert_string_equal(st.comm, "keep-a");
	assert_int_equal(procfs_procs_read(&s, ib, &st), 0);
	assert_string_equal(st.comm, "keep-b");
	assert_true(s.ent[ia].fd >= 0 && s.ent[ib].fd >= 0);
	assert_int_equal(s.n_fds, 2);
	/* The limit: a third process is read by path, its descriptor not kept. */
	assert_int_equal(procfs_procs_read(&s, iself, &st), 0);
	assert_int_equal(st.pid, getpid());
	assert_int_equal(s.ent[iself].fd, -1);
	assert_int_equal(s.n_fds, 2);
	/* Read again through the same descriptor. */
	int fd = s.ent[ia].fd;
	assert_int_equal(procfs_procs_read(&s, ia, &st), 0);
	assert_string_equal(st.comm, "keep-a");
	assert_int_equal(s.ent[ia].fd, fd);
	/* a is reaped: its descriptor reads ESRCH, the entry is gone and its descriptor closed. */
	end_child(a);
	char buf[512];
	errno = 0;
	assert_true(pread(fd, buf, sizeof(buf), 0) < 0);
	assert_int_equal(errno, ESRCH);
	int rc = procfs_procs_read(&s, ia, &st);
	if (rc == 0) /* the pid was taken by another process already: never a's */
		assert_string_not_equal(st.comm, "keep-a");
	else
		assert_true(s.ent[ia].gone);
	procfs_procs_sweep(&s);
	if (rc != 0)
		assert_int_equal(find(&s, a), (size_t)-1);
	assert_int_equal(s.n_fds, rc == 0 ? 2 : 1);
	/* b goes unread: the next listing drops it with its descriptor. */
	end_child(b);
	assert_int_equal(procfs_procs_list(&s), 0);
	if (find(&s, b) == (size_t)-1)
		assert_int_equal(s.n_fds, rc == 0 ? 1 : 0);
	procfs_procs_free(&s);
	close(dirfd);
}

/* Make the next process created get pid (as root: /proc/sys/kernel/ns_last_pid). */
static pid_t child_at(pid_t pid, const char *name)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
		if (fd < 0)
			return -1;
		char s[16];
		int len = snprintf(s, sizeof(s), "%d", pid - 1);
		bool ok = write(fd, s, (size_t)len) == len;
		close(fd);
		if (!ok)
			return -1;
		pid_t c = child(name);
		if (c == pid)
			return c;
		end_child(c); /* another process took it first */
	}
	return -1;
}

/* A pid reused between two reads: the kept descriptor (of the reaped process) is not read as the
 * new one; the entry opens the path again and reads the new process. */
static void test_real_proc_pid_reuse(void **state)
{
	(void)state;
	int dirfd = open("/proc", O_RDONLY | O_DIRECTORY);
	assert_true(dirfd >= 0);
	pid_t a = child("reuse-a");
	struct procfs_procs s;
	procfs_procs_init(&s, dirfd, 8);
	assert_int_equal(procfs_procs_list(&s), 0);
	size_t ia = find(&s, a);
	assert_true(ia != (size_t)-1);
	struct procfs_stat st;
	assert_int_equal(procfs_procs_read(&s, ia, &st), 0);
	assert_string_equal(st.comm, "reuse-a");
	int old_fd = s.ent[ia].fd;
	assert_true(old_fd >= 0);
	end_child(a);
	pid_t b = child_at(a, "reuse-b");
	if (b < 0) {
		procfs_procs_free(&s);
		close(dirfd);
		print_message(
		    "# the ended child's pid could not be had again (not root, or taken)\n");
		skip();
	}
	assert_int_equal(procfs_procs_read(&s, ia, &st), 0);
	assert_int_equal(st.pid, a);
	assert_string_equal(st.comm, "reuse-b");
	assert_true(s.ent[ia].fd >= 0);
	assert_false(s.ent[ia].gone);
	assert_int_equal(s.n_fds, 1);
	end_child(b);
	procfs_procs_free(&s);
	close(dirfd);
}

static void read_text(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t k = read(fd, buf, len - 1);
	assert_true(k > 0);
	buf[k] = '\0';
	close(fd);
}

/* Wait until the worker is asleep in its read: it answers just before, so it may still be on
 * its way there. Its schedstat then stays as it is. */
static void settle(pid_t pid)
{
	char a[64], b[64], st[512];
	for (int i = 0; i < 5000; i++) {
		read_text(pid, "schedstat", a, sizeof(a));
		read_text(pid, "stat", st, sizeof(st));
		nanosleep(&(struct timespec){0, 2000000}, NULL);
		read_text(pid, "schedstat", b, sizeof(b));
		const char *close = strrchr(st, ')');
		if (close && close[2] == 'S' && strcmp(a, b) == 0)
			return;
	}
	fail_msg("pid %d never settled", (int)pid);
}

/* A child that waits for a byte on `go`, then uses about `burn_ms` of CPU, answers on `done`
 * and waits again; with a second thread (sleeping) when `threaded`. */
struct worker {
	pid_t pid;
	int go, done;
};

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static double own_cpu_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static struct worker worker(const char *name, bool threaded, double burn_ms)
{
	int go[2], done[2];
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(done), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_NAME, name);
		pthread_t t;
		if (threaded && pthread_create(&t, NULL, sleeper, NULL) != 0)
			_exit(1);
		char c = 'r';
		for (;;) {
			if (write(done[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
				_exit(1);
			for (double t0 = own_cpu_ms(); own_cpu_ms() - t0 < burn_ms;)
				;
		}
	}
	close(go[0]);
	close(done[1]);
	struct worker w = {pid, go[1], done[0]};
	char c;
	assert_int_equal(read(w.done, &c, 1), 1);
	settle(pid);
	return w;
}

/* Let the worker run once and wait until it is back to waiting. */
static void work(struct worker *w)
{
	char c = 'g';
	assert_int_equal(write(w->go, &c, 1), 1);
	assert_int_equal(read(w->done, &c, 1), 1);
	settle(w->pid);
}

static void worker_end(struct worker *w)
{
	close(w->go);
	close(w->done);
	end_child(w->pid);
}

/* A process that has not run is not read again: from the third read on, the stat read before is
 * given (1), the same to the byte, as long as its schedstat does not move; once it has run it is
 * read (0, its CPU time moved by what it used), then given again. procfs_procs_reread reads it
 * whatever. A process with two threads is read every time. */
static void test_real_proc_unchanged_not_read_again(void **state)
{
	(void)state;
	int dirfd = open("/proc", O_RDONLY | O_DIRECTORY);
	assert_true(dirfd >= 0);
	struct worker one = worker("gate-one", false, 30), two = worker("gate-two", true, 30);
	struct procfs_procs s;
	procfs_procs_init(&s, dirfd, 8);
	assert_int_equal(procfs_procs_list(&s), 0);
	size_t i1 = find(&s, one.pid), i2 = find(&s, two.pid);
	assert_true(i1 != (size_t)-1 && i2 != (size_t)-1);
	struct procfs_stat st, first;
	assert_int_equal(procfs_procs_read(&s, i1, &first), 0); /* stat descriptor kept */
	assert_int_equal(s.ent[i1].sfd, -1);
	assert_int_equal(procfs_procs_read(&s, i1, &st), 0); /* schedstat kept with it */
	assert_true(s.ent[i1].sfd >= 0);
	assert_int_equal(s.n_fds, 2);
	assert_int_equal(st.threads, 1);
	assert_int_equal(procfs_procs_read(&s, i1, &st), 1);
	assert_memory_equal(&st, &s.ent[i1].last, sizeof(st));
	assert_string_equal(st.comm, "gate-one");
	assert_int_equal(st.utime + st.stime, first.utime + first.stime);
	assert_int_equal(procfs_procs_reread(&s, i1, &st), 0);
	assert_int_equal(procfs_procs_read(&s, i1, &st), 1);
	/* It runs for 30 ms of CPU: utime and stime, each rounded down to clock ticks of at most
	 * 10 ms (USER_HZ 100), move by at least one tick between them. */
	work(&one);
	struct procfs_stat ran;
	assert_int_equal(procfs_procs_read(&s, i1, &ran), 0);
	assert_true(ran.utime + ran.stime > st.utime + st.stime);
	assert_int_equal(procfs_procs_read(&s, i1, &st), 1);
	assert_int_equal(st.utime + st.stime, ran.utime + ran.stime);
	/* Two threads: schedstat tells only of the first, so stat is read every time. */
	for (int k = 0; k < 4; k++) {
		assert_int_equal(procfs_procs_read(&s, i2, &st), 0);
		assert_int_equal(st.threads, 2);
	}
	assert_int_equal(s.n_fds, 4);
	/* Reaped: both descriptors read ESRCH, the entry is gone with them. */
	worker_end(&one);
	int rc = procfs_procs_read(&s, i1, &st);
	if (rc >= 0) /* the pid was taken by another process already: never gate-one's */
		assert_string_not_equal(st.comm, "gate-one");
	else
		assert_true(s.ent[i1].gone);
	worker_end(&two);
	procfs_procs_free(&s);
	close(dirfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fake_tree),
	    cmocka_unit_test(test_real_proc_keeps_descriptors),
	    cmocka_unit_test(test_real_proc_pid_reuse),
	    cmocka_unit_test(test_real_proc_unchanged_not_read_again),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
