#define _GNU_SOURCE
#include "procfs.h"
#include "energy_util.h"
#include "source.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <unistd.h>

/* One decimal field at *p: digits, or '-' then digits when negative is allowed (the value is
 * then not needed: 0). Moves *p past it; false on no digits or a value above UINT64_MAX. */
static bool parse_field(const char **p, bool negative_ok, uint64_t *out)
{
	const char *s = *p;
	bool neg = negative_ok && *s == '-';
	if (neg)
		s++;
	if (*s < '0' || *s > '9')
		return false;
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*p = s;
	*out = neg ? 0 : v;
	return true;
}

int procfs_parse_stat(const char *text, struct procfs_stat *out)
{
	memset(out, 0, sizeof(*out));
	struct procfs_stat st = {0}; /* copied to out only when the whole line read */
	const char *p = text;
	uint64_t pid;
	if (!parse_field(&p, false, &pid) || pid == 0 || pid > INT32_MAX || p[0] != ' ' ||
	    p[1] != '(')
		return -EINVAL;
	const char *open = p + 1, *close = strrchr(open, ')');
	if (!close)
		return -EINVAL;
	size_t len = (size_t)(close - open - 1);
	if (len >= sizeof(st.comm))
		len = sizeof(st.comm) - 1;
	memcpy(st.comm, open + 1, len);
	st.comm[len] = '\0';
	p = close + 1;
	if (p[0] != ' ' || !isalpha((unsigned char)p[1]))
		return -EINVAL;
	st.state = p[1];
	p += 2;
	/* Fields from 4 on (proc(5)): ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime; each
	 * after exactly one space. tty_nr, tpgid, priority and nice may be negative (unused). */
	enum { N_FIELDS = 19 };
	static const bool signed_field[N_FIELDS] = {
	    [3] = true, [4] = true, [14] = true, [15] = true};
	uint64_t v[N_FIELDS];
	for (int i = 0; i < N_FIELDS; i++)
		if (*p++ != ' ' || !parse_field(&p, signed_field[i], &v[i]))
			return -EINVAL;
	/* starttime ends the line or is followed by more fields. */
	if (*p != '\0' && *p != ' ' && *p != '\n')
		return -EINVAL;
	if (v[0] > INT32_MAX)
		return -EINVAL;
	st.pid = (int)pid;
	st.ppid = (int)v[0];
	st.utime = v[10];
	st.stime = v[11];
	st.cutime = v[12];
	st.cstime = v[13];
	st.threads = v[16];
	st.starttime = v[18];
	*out = st;
	return 0;
}

/* Read a small file under dirfd into buf (NUL-terminated): 0 or -errno (-EIO when empty). */
static int read_small(int dirfd, const char *path, char *buf, size_t len)
{
	int rc = energy_read_text_at(dirfd, path, buf, len, false);
	return rc < 0 ? rc : 0;
}

int procfs_read_stat(int dirfd, int pid, struct procfs_stat *out)
{
	char path[32], buf[1024];
	snprintf(path, sizeof(path), "%d/stat", pid);
	int rc = read_small(dirfd, path, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	rc = procfs_parse_stat(buf, out);
	if (rc == 0 && out->pid != pid)
		return -EINVAL;
	return rc;
}

int procfs_read_uid(int dirfd, int pid, uid_t *uid)
{
	char path[32], buf[4096];
	snprintf(path, sizeof(path), "%d/status", pid);
	int rc = read_small(dirfd, path, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	const char *p = strstr(buf, "\nUid:");
	uint64_t u;
	if (!p)
		return -EINVAL;
	for (p += 5; *p == '\t' || *p == ' ';)
		p++;
	if (!parse_field(&p, false, &u) || u > UINT32_MAX)
		return -EINVAL;
	*uid = (uid_t)u;
	return 0;
}

/* The numeric names under dirfd into *a (grown as needed, its capacity in *cap): 0 or -errno. */
static int list_pids_into(int dirfd, int **a, size_t *cap, size_t *n)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	size_t len = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *c = e->d_name;
		uint64_t pid;
		if (!parse_field(&c, false, &pid) || *c || pid == 0 || pid > INT32_MAX)
			continue;
		if (len == *cap) {
			size_t ncap = *cap ? *cap * 2 : 256;
			int *na = realloc(*a, ncap * sizeof(*na));
			if (!na) {
				rc = -ENOMEM;
				break;
			}
			*a = na;
			*cap = ncap;
		}
		(*a)[len++] = (int)pid;
	}
	closedir(d);
	*n = len;
	return rc;
}

int procfs_list_pids(int dirfd, int **pids, size_t *n)
{
	int *a = NULL;
	size_t cap = 0;
	int rc = list_pids_into(dirfd, &a, &cap, n);
	if (rc < 0) {
		free(a);
		return rc;
	}
	*pids = a ? a : malloc(sizeof(int));
	return *pids ? 0 : -ENOMEM;
}

/* ---- the processes kept from scan to scan ---------------------------------------------------- */

void procfs_procs_init(struct procfs_procs *s, int dirfd, size_t fds_max)
{
	memset(s, 0, sizeof(*s));
	s->dirfd = dirfd;
	struct statfs fs;
	s->keep = fstatfs(dirfd, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC;
	if (fds_max == 0) {
		struct rlimit rl;
		fds_max = PROCFS_STAT_FDS_MAX;
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
			fds_max = 0;
		else if (rl.rlim_cur != RLIM_INFINITY &&
		         rl.rlim_cur < PROCFS_STAT_FDS_MAX + PROCFS_STAT_FDS_RESERVE)
			fds_max = rl.rlim_cur > PROCFS_STAT_FDS_RESERVE
			              ? (size_t)(rl.rlim_cur - PROCFS_STAT_FDS_RESERVE)
			              : 0;
	}
	s->fds_max = fds_max;
	s->ready = true;
}

static void fd_close(struct procfs_procs *s, int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
		s->n_fds--;
	}
}

/* Both descriptors go together: a schedstat kept alone could outlive its pairing with stat. */
static void entry_close(struct procfs_procs *s, struct procfs_entry *e)
{
	fd_close(s, &e->fd);
	fd_close(s, &e->sfd);
	e->sched_len = 0;
}

static int cmp_int(const void *x, const void *y)
{
	int a = *(const int *)x, b = *(const int *)y;
	return (a > b) - (a < b);
}

int procfs_procs_list(struct procfs_procs *s)
{
	size_t n;
	int rc = list_pids_into(s->dirfd, &s->listed, &s->listed_cap, &n);
	if (rc < 0)
		return rc;
	s->lists++;
	/* procfs lists in pid order; other trees may not. */
	for (size_t i = 1; i < n; i++)
		if (s->listed[i - 1] >= s->listed[i]) {
			qsort(s->listed, n, sizeof(int), cmp_int);
			break;
		}
	if (n > s->cap) {
		struct procfs_entry *a = realloc(s->ent, n * sizeof(*a));
		if (a)
			s->ent = a;
		struct procfs_entry *b = a ? realloc(s->spare, n * sizeof(*b)) : NULL;
		if (!b)
			return -ENOMEM;
		s->spare = b;
		s->cap = n;
	}
	/* Merge the old entries (sorted) with the listing (sorted). */
	size_t i = 0, k = 0;
	for (size_t j = 0; j < n; j++) {
		int pid = s->listed[j];
		if (j > 0 && pid == s->listed[j - 1])
			continue;
		while (i < s->n && s->ent[i].pid < pid)
			entry_close(s, &s->ent[i++]);
		if (i < s->n && s->ent[i].pid == pid && !s->ent[i].gone) {
			s->spare[k++] = s->ent[i++];
			continue;
		}
		if (i < s->n && s->ent[i].pid == pid) /* gone, listed again: a new process */
			entry_close(s, &s->ent[i++]);
		s->spare[k++] =
		    (struct procfs_entry){.pid = pid, .fd = -1, .sfd = -1, .fresh = true};
	}
	while (i < s->n)
		entry_close(s, &s->ent[i++]);
	struct procfs_entry *t = s->ent;
	s->ent = s->spare;
	s->spare = t;
	s->n = k;
	return 0;
}

/* Entry i's PID/schedstat into buf (at most PROCFS_SCHED_MAX bytes): its length, or 0 when there
 * is none to compare with. Opened here (by path) when the entry keeps a stat descriptor and
 * there is room: the stat read that follows, through that descriptor, shows that its process
 * was still there, so both name the same one. */
static size_t sched_read(struct procfs_procs *s, struct procfs_entry *e, char *buf)
{
	if (e->sfd < 0) {
		if (e->fd < 0 || s->n_fds >= s->fds_max)
			return 0;
		char path[24];
		snprintf(path, sizeof(path), "%d/schedstat", e->pid);
		e->sfd = openat(s->dirfd, path, O_RDONLY | O_CLOEXEC);
		if (e->sfd < 0)
			return 0;
		s->n_fds++;
	}
	ssize_t k = pread(e->sfd, buf, PROCFS_SCHED_MAX, 0);
	/* Gone (ESRCH), or not what schedstat holds: not kept. */
	if (k <= 0 || k >= PROCFS_SCHED_MAX || buf[0] < '0' || buf[0] > '9') {
		fd_close(s, &e->sfd);
		return 0;
	}
	/* A kernel without scheduler statistics gives every process these: they tell nothing. */
	static const char none[] = "0 0 0\n";
	if ((size_t)k == sizeof(none) - 1 && memcmp(buf, none, sizeof(none) - 1) == 0)
		return 0;
	return (size_t)k;
}

static int entry_read(struct procfs_procs *s, size_t i, struct procfs_stat *out, bool may_keep)
{
	struct procfs_entry *e = &s->ent[i];
	char buf[1024], sched[PROCFS_SCHED_MAX];
	ssize_t k = -1;
	e->fresh = false;
	size_t sched_len = s->keep ? sched_read(s, e, sched) : 0;
	/* Running at its last read: its runtime in schedstat may lag (on a CPU whose tick is
	 * stopped, until the next remote tick), where stat's is brought up to date. */
	if (may_keep && sched_len && sched_len == e->sched_len && e->last.threads == 1 &&
	    e->last.state != 'R' && memcmp(sched, e->sched, sched_len) == 0) {
		*out = e->last;
		return 1;
	}
	if (e->fd >= 0) {
		k = pread(e->fd, buf, sizeof(buf) - 1, 0);
		/* ESRCH: the process it was opened for is gone (its pid may be another's now). */
		if (k <= 0)
			entry_close(s, e);
	}
	if (k <= 0) {
		/* A schedstat descriptor without the stat one it was paired with is not kept. */
		entry_close(s, e);
		sched_len = 0;
		char path[16];
		snprintf(path, sizeof(path), "%d/stat", e->pid);
		int fd = openat(s->dirfd, path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			int err = errno;
			if (err == ENOENT || err == ESRCH)
				e->gone = true;
			return -err;
		}
		k = pread(fd, buf, sizeof(buf) - 1, 0);
		int err = errno;
		if (k > 0 && s->keep && s->n_fds < s->fds_max) {
			e->fd = fd;
			s->n_fds++;
		} else {
			close(fd);
		}
		if (k < 0 && err == ESRCH)
			e->gone = true;
		if (k <= 0)
			return k < 0 ? -err : -EIO;
	}
	buf[k] = '\0';
	int rc = procfs_parse_stat(buf, out);
	if (rc == 0 && out->pid != e->pid)
		rc = -EINVAL;
	e->sched_len = rc == 0 ? (uint8_t)sched_len : 0;
	if (e->sched_len) {
		memcpy(e->sched, sched, sched_len);
		e->last = *out;
	}
	return rc;
}

int procfs_procs_read(struct procfs_procs *s, size_t i, struct procfs_stat *out)
{
	return entry_read(s, i, out, true);
}

int procfs_procs_reread(struct procfs_procs *s, size_t i, struct procfs_stat *out)
{
	return entry_read(s, i, out, false);
}

void procfs_procs_sweep(struct procfs_procs *s)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (s->ent[i].gone)
			entry_close(s, &s->ent[i]);
		else
			s->ent[k++] = s->ent[i];
	}
	s->n = k;
}

void procfs_procs_free(struct procfs_procs *s)
{
	for (size_t i = 0; i < s->n; i++)
		entry_close(s, &s->ent[i]);
	free(s->ent);
	free(s->spare);
	free(s->listed);
	memset(s, 0, sizeof(*s));
}

int procfs_parse_cgroup_usage(const char *text, uint64_t *usage_usec)
{
	const char *p = text;
	while (p && *p) {
		if (strncmp(p, "usage_usec ", 11) == 0) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(p + 11, &end, 10);
			if (errno || end == p + 11 || (*end && *end != '\n'))
				return -EINVAL;
			*usage_usec = v;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -EINVAL;
}

int procfs_read_cgroup_usage(int dirfd, const char *path, uint64_t *usage_usec)
{
	char file[1024], buf[2048];
	snprintf(file, sizeof(file), "%s%scpu.stat", path, *path ? "/" : "");
	int rc = read_small(dirfd, file, buf, sizeof(buf));
	return rc < 0 ? rc : procfs_parse_cgroup_usage(buf, usage_usec);
}

int procfs_read_system(int fd, uint64_t *busy, uint64_t *total, uint64_t *forks)
{
	char buf[65536];
	int rc = energy_pread_text(fd, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	const char *p = strstr(buf, "\nprocesses ");
	*forks = p ? strtoull(p + 11, NULL, 10) : 0;
	return model_cpu_parse_stat(buf, busy, total, NULL);
}
