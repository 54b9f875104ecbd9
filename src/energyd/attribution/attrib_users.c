/*
 * Every user's cumulative attributed energy at given times, for the long-term record: the store
 * calls these through its per-user hook (store_users.h; the record does not include
 * attribution), with ctx the struct attrib. Under the attribution's lock.
 */
#include "attrib.h"

#include <stdio.h>

bool attrib_users_span(void *ctx, double *oldest, double *covered_to)
{
	struct attrib *a = ctx;
	attrib_lock(a);
	/* Users are known up to the last scan once there were two; the series keep exact values
	 * back to the history's horizon of that scan. */
	bool ok = a->proc_fd >= 0 && a->have_scan && a->scan_dt > 0 && a->first_t > 0;
	if (ok) {
		double horizon = a->scan_t - a->cfg.history_s;
		*oldest = a->first_t > horizon ? a->first_t : horizon;
		*covered_to = a->scan_t;
	}
	attrib_unlock(a);
	return ok;
}

size_t attrib_users_energy_at(void *ctx, const double *t, size_t n_t, uint32_t *uids,
                              double *cum_uj, size_t max)
{
	struct attrib *a = ctx;
	attrib_lock(a);
	size_t n = a->n_users;
	for (size_t i = 0; i < n && i < max; i++) {
		const struct attrib_user *u = &a->users[i];
		char key[32];
		snprintf(key, sizeof(key), "user:%u", (unsigned)u->uid);
		/* No series left: nothing changed within the history, the total holds. */
		const struct series *s = series_get(&a->series, key, false);
		uids[i] = (uint32_t)u->uid;
		for (size_t k = 0; k < n_t; k++)
			if (!s || series_value_at(s, t[k], &cum_uj[i * n_t + k]) < 0)
				cum_uj[i * n_t + k] = u->uj;
	}
	attrib_unlock(a);
	return n;
}
