/* The scan's reads before issue 17: see scan_old.h. Copied from main at 327eca8 (procfs.c's
 * procfs_read_stat and procfs_list_pids, attrib_scan.c's read_processes), unchanged but for
 * names. */
#define _GNU_SOURCE
#include "scan_old.h"
#include "energy_util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int old_parse_stat(const char *text, struct procfs_stat *out)
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
	out->ppid = (int)v[0];
	out->utime = v[10];
	out->stime = v[11];
	out->cutime = v[12];
	out->cstime = v[13];
	out->starttime = v[18];
	return 0;
}

static int old_read_stat(int dirfd, int pid, struct procfs_stat *out)
{
	char path[32], buf[1024];
	snprintf(path, sizeof(path), "%d/stat", pid);
	int rc = energy_read_text_at(dirfd, path, buf, sizeof(buf), false);
	if (rc < 0)
		return rc;
	rc = old_parse_stat(buf, out);
	if (rc == 0 && out->pid != pid)
		return -EINVAL;
	return rc;
}

static int old_read_uid(int dirfd, int pid, uid_t *uid)
{
	char path[32], buf[4096];
	snprintf(path, sizeof(path), "%d/status", pid);
	int rc = energy_read_text_at(dirfd, path, buf, sizeof(buf), false);
	if (rc < 0)
		return rc;
	const char *p = strstr(buf, "\nUid:");
	unsigned long u;
	if (!p || sscanf(p + 5, "%lu", &u) != 1)
		return -EINVAL;
	*uid = (uid_t)u;
	return 0;
}

static int old_list_pids(int dirfd, int **pids, size_t *n)
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

static int cmp_proc(const void *x, const void *y)
{
	int a = ((const struct attrib_proc *)x)->pid, b = ((const struct attrib_proc *)y)->pid;
	return (a > b) - (a < b);
}

int old_scan_read(int dirfd, int stat_fd, const struct attrib_proc *prev, size_t n_prev,
                  struct attrib_proc **procs, size_t *n_out, uint64_t *busy, uint64_t *total)
{
	int *pids = NULL;
	size_t n = 0;
	int rc = old_list_pids(dirfd, &pids, &n);
	if (rc < 0)
		return rc;
	struct attrib_proc *r = calloc(n ? n : 1, sizeof(*r));
	if (!r) {
		free(pids);
		return -ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct procfs_stat st;
		if (old_read_stat(dirfd, pids[i], &st) < 0)
			continue;
		struct attrib_proc *p = &r[k++];
		memset(p, 0, sizeof(*p));
		p->pid = st.pid;
		p->ppid = st.ppid;
		p->starttime = st.starttime;
		p->own_ticks = st.utime + st.stime;
		p->total_ticks = procfs_total_ticks(&st);
		snprintf(p->comm, sizeof(p->comm), "%s", st.comm);
		struct attrib_proc key = {.pid = st.pid};
		const struct attrib_proc *old =
		    prev ? bsearch(&key, prev, n_prev, sizeof(*prev), cmp_proc) : NULL;
		if (old && old->starttime == st.starttime)
			p->uid = old->uid;
		else if (old_read_uid(dirfd, st.pid, &p->uid) < 0)
			p->uid = (uid_t)-1;
	}
	free(pids);
	uint64_t forks;
	rc = procfs_read_system(stat_fd, busy, total, &forks);
	qsort(r, k, sizeof(*r), cmp_proc);
	*procs = r;
	*n_out = k;
	return rc;
}
