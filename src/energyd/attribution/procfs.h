/*
 * Reading what the kernel says about CPU time: /proc/stat (the whole machine), /proc/PID/stat
 * (one process: its own time and the time of the children it reaped), /proc/PID/status (its
 * owner) and cgroup v2 cpu.stat (usage_usec). Every path is relative to a root that tests point
 * at fake trees. The parsers are pure functions with literal tests; the readers return 0 or a
 * negative errno (-ENOENT when the process is gone, which is normal, not an error).
 */
#ifndef ENERGY_PROCFS_H
#define ENERGY_PROCFS_H

#include <stdbool.h>
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
	uint64_t threads;   /* num_threads */
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

/*
 * The processes of a proc root, kept from one full scan to the next: each pid listed, and on a
 * real procfs its /proc/PID/stat descriptor kept open, so that a scan reads a known process with
 * one pread() instead of openat + read + close. A descriptor belongs to the process it was
 * opened for: once that process is reaped it reads ESRCH, even if the pid was given to another
 * process since; the entry then opens PID/stat again, by path, which is the new process's (or
 * ENOENT: gone). Fake trees (tests) are read by path every time: a kept descriptor of a regular
 * file would go on reading a file that was replaced.
 *
 * A process that has not run is not read again: from its second read on, the entry also keeps
 * PID/schedstat open (opened before that read of stat, through a stat descriptor kept from an
 * earlier one: both are the same process's) and keeps the stat it read with the schedstat text
 * read just before. When the process had one thread then and schedstat reads the same text
 * again (its runtime in nanoseconds, which moves whenever it runs, and its time waiting and
 * number of runs), nothing in stat moved either: its CPU times follow its runtime, its reaped
 * children's times change only when it waits for them, its name and thread count only when it
 * runs. The kept stat is returned (procfs_procs_read gives 1) at the cost of the small file.
 * Only its parent can change meanwhile, when the parent ends: the caller checks that and reads
 * it again (procfs_procs_reread). "0 0 0" (what a kernel without scheduler statistics gives)
 * is never taken as unchanged. A process with several threads is read every time (schedstat
 * covers its first thread only), and so is one that was running (R) at its last read: its
 * runtime in schedstat may lag while it runs on a CPU whose tick is stopped, stat's does not.
 *
 * At most PROCFS_STAT_FDS_MAX descriptors (both kinds), and never more than the open-file soft
 * limit (RLIMIT_NOFILE, read by procfs_procs_init) less PROCFS_STAT_FDS_RESERVE, what the rest of
 * the daemon may hold at most (docs/attribution.md): none under the usual 1,024, all 4,096 from
 * 6,656 (energyd's unit sets 8,192). A process's stat descriptor comes first; processes beyond
 * are read by path. No allocation per process once the arrays have grown to the number of
 * processes.
 */
#define PROCFS_STAT_FDS_MAX     4096
#define PROCFS_STAT_FDS_RESERVE 2560
#define PROCFS_SCHED_MAX        48 /* schedstat: three decimal numbers */

struct procfs_entry {
	int pid;
	int fd;                       /* its PID/stat kept open, or -1 */
	int sfd;                      /* its PID/schedstat kept open, or -1 */
	bool fresh;                   /* listed by the last procfs_procs_list, not read since */
	bool gone;                    /* its last read found no such process */
	uint8_t sched_len;            /* of sched; 0: none to compare with */
	char sched[PROCFS_SCHED_MAX]; /* PID/schedstat read just before last */
	struct procfs_stat last;      /* the last stat read (valid with sched_len) */
};

struct procfs_procs {
	bool ready; /* procfs_procs_init was called */
	int dirfd;  /* the proc root (not owned) */
	bool keep;  /* a real procfs: descriptors are kept */
	size_t fds_max;
	size_t n_fds;                     /* descriptors kept */
	struct procfs_entry *ent, *spare; /* sorted by pid; spare: the next list's */
	size_t n, cap;
	unsigned long lists; /* listings so far */
	int *listed;         /* the last listing's pids */
	size_t listed_cap;
};

/* fds_max 0: as many as the limits above allow. Allocates nothing yet. */
void procfs_procs_init(struct procfs_procs *s, int dirfd, size_t fds_max);
/* List the proc root again: new pids become fresh entries, entries no longer listed go (their
 * descriptors closed). 0 or -errno (the entries then stay as they were). */
int procfs_procs_list(struct procfs_procs *s);
/* Entry i's PID/stat: 0 when read, 1 when the kept one is given (the process has not run since
 * it was read, above), -ENOENT (and gone set) when the process is no longer there. */
int procfs_procs_read(struct procfs_procs *s, size_t i, struct procfs_stat *out);
/* The same, always reading PID/stat: 0 or -errno. */
int procfs_procs_reread(struct procfs_procs *s, size_t i, struct procfs_stat *out);
/* Drop the entries found gone, closing their descriptors. */
void procfs_procs_sweep(struct procfs_procs *s);
void procfs_procs_free(struct procfs_procs *s);

/* usage_usec of the text of a cgroup v2 cpu.stat. */
int procfs_parse_cgroup_usage(const char *text, uint64_t *usage_usec);
/* Read PATH/cpu.stat under the open cgroup root dirfd (PATH relative, "" for the root). */
int procfs_read_cgroup_usage(int dirfd, const char *path, uint64_t *usage_usec);

/* Busy and total jiffies of the machine from an open <proc>/stat (pread at offset 0), and the
 * number of forks since boot ("processes" line; 0 when absent). */
int procfs_read_system(int fd, uint64_t *busy, uint64_t *total, uint64_t *forks);

#endif
