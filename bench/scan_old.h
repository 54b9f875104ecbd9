/*
 * The process scan's reads as they were before issue 17 (main at 327eca8), kept for the
 * benchmarks that time them side by side with the current ones: the sscanf parser of
 * /proc/PID/stat, and the whole read of a full scan (the root listed, every PID/stat opened,
 * read and closed, the owner from PID/status for processes not seen before, /proc/stat, the
 * sort).
 */
#ifndef ENERGY_BENCH_SCAN_OLD_H
#define ENERGY_BENCH_SCAN_OLD_H

#include "attrib.h"
#include "procfs.h"

int old_parse_stat(const char *text, struct procfs_stat *out);

/* The processes under dirfd into *procs (malloc'd, sorted by pid), the owners of those in prev
 * (sorted by pid, as the last scan left them) taken from there; then stat_fd's busy and total. */
int old_scan_read(int dirfd, int stat_fd, const struct attrib_proc *prev, size_t n_prev,
                  struct attrib_proc **procs, size_t *n, uint64_t *busy, uint64_t *total);

#endif
