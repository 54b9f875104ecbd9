#define _GNU_SOURCE
#include "procfs.h"
#include "energy_util.h"
#include "source.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int procfs_parse_stat(const char *text, struct procfs_stat *out)
{
	memset(out, 0, sizeof(*out));
	const char *open = strchr(text, '('), *close = strrchr(text, ')');
	if (!open || !close || close < open || sscanf(text, "%d", &out->pid) != 1 || out->pid <= 0)
		return -EINVAL;
	size_t len = (size_t)(close - open - 1);
	if (len >= sizeof(out->comm))
		len = sizeof(out->comm) - 1;
	memcpy(out->comm, open + 1, len);
	out->comm[len] = '\0';
	/* Fields from 3 on: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime. */
	unsigned long long v[19];
	char state;
	int n = sscanf(close + 1,
	               " %c %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
	               "%llu %llu %llu %llu %llu",
	               &state, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9],
	               &v[10], &v[11], &v[12], &v[13], &v[14], &v[15], &v[16], &v[17], &v[18]);
	if (n != 20 || !isalpha((unsigned char)state))
		return -EINVAL;
	out->state = state;
	/* tty_nr, tpgid, priority and nice may be negative: sscanf %llu wraps them, harmlessly,
	 * since only ppid and the times are used. */
	out->ppid = (int)v[0];
	out->utime = v[10];
	out->stime = v[11];
	out->cutime = v[12];
	out->cstime = v[13];
	out->starttime = v[18];
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
	unsigned long u;
	if (!p || sscanf(p + 5, "%lu", &u) != 1)
		return -EINVAL;
	*uid = (uid_t)u;
	return 0;
}

int procfs_list_pids(int dirfd, int **pids, size_t *n)
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
	size_t cap = 256, len = 0;
	int *a = malloc(cap * sizeof(*a));
	struct dirent *e;
	while (a && (e = readdir(d))) {
		char *end;
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || pid > INT32_MAX)
			continue;
		if (len == cap) {
			int *na = realloc(a, cap * 2 * sizeof(*a));
			if (!na) {
				free(a);
				a = NULL;
				break;
			}
			a = na;
			cap *= 2;
		}
		a[len++] = (int)pid;
	}
	closedir(d);
	if (!a)
		return -ENOMEM;
	*pids = a;
	*n = len;
	return 0;
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
