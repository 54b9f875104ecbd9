/* Per-tick snapshots and the interval between two (snapshot.h). */
#include "snapshot.h"
#include "energy_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void snapshot_take(struct sampler *s, struct snapshot *out)
{
	sampler_tick(s);
	sampler_lock(s);
	const struct history *h = &s->history;
	out->t = h->count ? history_time(h, h->count - 1) : NAN;
	out->n = s->set->n;
	for (int i = 0; i < out->n; i++)
		out->uj[i] = s->set->ch[i].energy_uj;
	out->host_uj = s->host_uj;
	sampler_unlock(s);
}

void snapshot_coverage_text(const struct sampler *s, const char *sep, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (int k = 0; k < s->coverage.n && used < len; k++) {
		int w = snprintf(buf + used, len - used, "%s%s", k ? sep : "",
		                 s->set->ch[s->coverage.idx[k]].id);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

void snapshot_interval(const struct sampler *s, const struct snapshot *a, const struct snapshot *b,
                       double duration_s, struct snapshot_interval *out)
{
	memset(out, 0, sizeof(*out));
	out->duration_s = duration_s;
	out->n = a->n < b->n ? a->n : b->n;
	for (int i = 0; i < out->n; i++) {
		struct snapshot_channel *c = &out->ch[i];
		c->id = s->set->ch[i].id;
		c->joules = (double)(b->uj[i] - a->uj[i]) / 1e6;
		c->watts = energy_mean_watts(c->joules, duration_s);
		c->measured = s->set->ch[i].measured;
	}
	out->host_joules = (double)(b->host_uj - a->host_uj) / 1e6;
	out->host_watts = energy_mean_watts(out->host_joules, duration_s);
	out->host_measured = s->coverage.measured;
	snapshot_coverage_text(s, " + ", out->coverage, sizeof(out->coverage));
}
