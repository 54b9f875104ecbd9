/*
 * The attribution model's arithmetic (docs/attribution.md), pure and unit-tested:
 *
 * - a CPU-side channel's energy over an interval is split into an active part, proportional to
 *   the machine's busy share of CPU time (busy / total jiffies of /proc/stat), and an idle part,
 *   the rest: active + idle is the channel's energy, to the microjoule;
 * - a scope (process tree, kernel, cgroup, user) receives the active part times its share of
 *   the busy CPU time: scope CPU seconds / busy CPU seconds, at most 1;
 * - GPU channels are split by per-process utilisation shares from the source (NVML), and what
 *   the shares do not explain is reported as unattributed;
 * - channels the model cannot split (devices; dram when configured so) are unattributed.
 */
#ifndef ENERGY_SPLIT_H
#define ENERGY_SPLIT_H

#include "source.h"

#include <stdbool.h>
#include <stdint.h>

enum split_method {
	SPLIT_CPU_TIME, /* "cpu-time-share" */
	SPLIT_GPU,      /* "gpu-process-utilisation": the family's process_shares() */
	SPLIT_NONE,     /* not attributed: all of it is reported as unattributed */
};

/* How a channel is split; dram_by_cpu is the --attribute-dram setting. */
enum split_method split_method_of(const struct channel *ch, bool dram_by_cpu);
const char *split_method_name(enum split_method m);

/*
 * Split e_uj by busy/total jiffies: *active_uj = floor(e_uj * busy / total), *idle_uj the rest,
 * so that they add up exactly. busy above total counts as total. -EINVAL when total is 0
 * (callers reuse the last ratio they had).
 */
int split_active_idle(uint64_t e_uj, uint64_t busy, uint64_t total, uint64_t *active_uj,
                      uint64_t *idle_uj);

/* A scope's share of the active energy: scope_cpu / busy_cpu, clamped to [0, 1]; 0 when no CPU
 * was busy. */
double split_scope_share(double scope_cpu, double busy_cpu);

/*
 * Split a GPU channel's energy e_uj by per-process shares (each in [0, 1], clamped; their sum
 * capped at 1): out_uj[i] = e_uj * share[i] (scaled down when the sum exceeds 1). Returns the
 * unattributed remainder in microjoules.
 */
double split_gpu(double e_uj, const double *share, int n, double *out_uj);

#endif
