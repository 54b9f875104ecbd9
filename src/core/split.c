#include "split.h"

#include <errno.h>

enum split_method split_method_of(const struct channel *ch, bool dram_by_cpu)
{
	switch (ch->kind) {
	case CHANNEL_PACKAGE:
	case CHANNEL_CORE:
	case CHANNEL_UNCORE:
	case CHANNEL_PSYS:
	case CHANNEL_MODEL:
	case CHANNEL_REST:
	case CHANNEL_WALL:
	case CHANNEL_BATTERY:
		/* Whole-machine meters are split by CPU time too: CPU time is the only activity
		 * measure every process has. The idle part holds the rest of the machine. */
		return SPLIT_CPU_TIME;
	case CHANNEL_DRAM:
		return dram_by_cpu ? SPLIT_CPU_TIME : SPLIT_NONE;
	case CHANNEL_GPU:
		return ch->family && ch->family->process_shares ? SPLIT_GPU : SPLIT_NONE;
	case CHANNEL_DEVICE:
		return SPLIT_NONE;
	}
	return SPLIT_NONE;
}

const char *split_method_name(enum split_method m)
{
	static const char *const names[] = {[SPLIT_CPU_TIME] = "cpu-time-share",
	                                    [SPLIT_GPU] = "gpu-process-utilisation",
	                                    [SPLIT_NONE] = "unattributed"};
	return (size_t)m < sizeof(names) / sizeof(names[0]) ? names[m] : "unattributed";
}

int split_active_idle(uint64_t e_uj, uint64_t busy, uint64_t total, uint64_t *active_uj,
                      uint64_t *idle_uj)
{
	if (total == 0)
		return -EINVAL;
	if (busy > total)
		busy = total;
	*active_uj = (uint64_t)((unsigned __int128)e_uj * busy / total);
	*idle_uj = e_uj - *active_uj;
	return 0;
}

double split_scope_share(double scope_cpu, double busy_cpu)
{
	if (!(busy_cpu > 0) || !(scope_cpu > 0))
		return 0;
	double s = scope_cpu / busy_cpu;
	return s > 1 ? 1 : s;
}

double split_gpu(double e_uj, const double *share, int n, double *out_uj)
{
	double sum = 0;
	for (int i = 0; i < n; i++) {
		double s = share[i] < 0 ? 0 : share[i] > 1 ? 1 : share[i];
		sum += s;
	}
	double scale = sum > 1 ? 1 / sum : 1;
	double given = 0;
	for (int i = 0; i < n; i++) {
		double s = share[i] < 0 ? 0 : share[i] > 1 ? 1 : share[i];
		out_uj[i] = e_uj * s * scale;
		given += out_uj[i];
	}
	double rest = e_uj - given;
	return rest > 0 ? rest : 0;
}
