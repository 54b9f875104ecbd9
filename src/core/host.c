#include "host.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void cover(struct host_coverage *cov, int i)
{
	cov->idx[cov->n++] = i;
}

int host_select(const struct channel *ch, int n, struct host_coverage *cov)
{
	cov->n = 0;
	snprintf(cov->rule, sizeof(cov->rule), "none");
	for (int i = 0; i < n; i++) {
		if (ch[i].host_meter) {
			cover(cov, i);
			snprintf(cov->rule, sizeof(cov->rule), "host meter");
			goto done;
		}
	}
	for (int i = 0; i < n; i++) {
		if (ch[i].kind == CHANNEL_PSYS) {
			cover(cov, i);
			snprintf(cov->rule, sizeof(cov->rule), "psys");
			goto done;
		}
	}
	bool have_package = false;
	for (int i = 0; i < n; i++)
		have_package |= ch[i].kind == CHANNEL_PACKAGE;
	bool have_dram = false, have_gpu = false;
	for (int i = 0; i < n; i++) {
		enum channel_kind k = ch[i].kind;
		if ((k == CHANNEL_PACKAGE) || (k == CHANNEL_MODEL && !have_package) ||
		    k == CHANNEL_DRAM || k == CHANNEL_GPU)
			cover(cov, i);
		have_dram |= k == CHANNEL_DRAM;
		have_gpu |= k == CHANNEL_GPU;
	}
	snprintf(cov->rule, sizeof(cov->rule), "%s%s%s",
	         have_package ? "CPU packages" : "CPU model", have_dram ? " + dram" : "",
	         have_gpu ? " + GPUs" : "");
done:
	cov->measured = cov->n > 0;
	for (int i = 0; i < cov->n; i++)
		cov->measured &= ch[cov->idx[i]].measured;
	return cov->n;
}

int host_measured_parts(const struct channel *ch, int n, int *idx, int max)
{
	int count = 0;
	for (int i = 0; i < n; i++) {
		enum channel_kind k = ch[i].kind;
		if (!ch[i].measured ||
		    (k != CHANNEL_PACKAGE && k != CHANNEL_DRAM && k != CHANNEL_GPU))
			continue;
		if (count == max)
			return -ENOSPC;
		idx[count++] = i;
	}
	return count;
}
