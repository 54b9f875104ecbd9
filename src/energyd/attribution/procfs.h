/*
 * Reading what the kernel says about CPU time: /proc/stat (the whole machine), /proc/PID/stat
 * (one process: its own time and the time of the children it reaped), /proc/PID/status (its
 * owner) and cgroup v2 cpu.stat (usage_usec). Every path is relative to a root that tests point
 * at fake trees. The parsers are pure functions with literal tests; the readers return 0 or a
 * negative errno (-ENOENT when the process is gone, which is normal, not an error).
 */
#ifndef ENERGY_PROCFS_H
#define ENERGY_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCFS_COMM_MAX 64

struct procfs_stat {
	int pid;
	int ppid;
	char state; /* R, S, D, Z, ... as in proc(5) */
	char comm[PROCFS_COMM_MAX];
	/* Clock ticks (USER_HZ). cutime/cstime: children this process has waited for, with
	 * their own reaped children, so a tree's time survives its members' exits. */
	uint64_t utime, stime, cutime, cstime;
	uint64_t starttime; /* clock ticks after boot: with pid, identifies the process */
};

/* Own time plus reaped children's time, in clock ticks. */
static inline uint64_t procfs_total_ticks(const struct procfs_stat *st)
{
	return st->utime + st->stime + st->cutime + st->cstime;
}

/* Parse the text of /proc/PID/stat by hand (no sscanf: it is the scan's inner loop). The command
 * name may hold spaces and parentheses: it ends at the last ')' (a name cannot forge the fields
 * after it). Strict: fields one space apart, digits only (a '-' only where proc(5) allows a
 * negative value), no overflow, at least the fields up to starttime; -EINVAL for anything else,
 * and the caller skips that process. */
int procfs_parse_stat(const char *text, struct procfs_stat *out);
/* Read PID/stat under the directory dirfd (an open proc root). */
int procfs_read_stat(int dirfd, int pid, struct procfs_stat *out);
/* The real uid of PID from PID/status ("Uid:" line). */
int procfs_read_uid(int dirfd, int pid, uid_t *uid);
/* The pids under an open proc root (numeric directory names), in a malloc'd array. */
int procfs_list_pids(int dirfd, int **pids, size_t *n);

/* usage_usec of the text of a cgroup v2 cpu.stat. */
int procfs_parse_cgroup_usage(const char *text, uint64_t *usage_usec);
/* Read PATH/cpu.stat under the open cgroup root dirfd (PATH relative, "" for the root). */
int procfs_read_cgroup_usage(int dirfd, const char *path, uint64_t *usage_usec);

/* Busy and total jiffies of the machine from an open <proc>/stat (pread at offset 0), and the
 * number of forks since boot ("processes" line; 0 when absent). */
int procfs_read_system(int fd, uint64_t *busy, uint64_t *total, uint64_t *forks);

#endif
