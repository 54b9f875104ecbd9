#include "hwpc_layers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define HWPC_MHZ_MAX 100000.0 /* beyond: not a frequency (a counter gone wrong) */

int hwpc_layers_init(struct hwpc_layers *L, int window, double bound_w, bool by_freq)
{
	memset(L, 0, sizeof(*L));
	L->window = window;
	L->bound_w = bound_w;
	L->by_freq = by_freq;
	if (by_freq)
		return 0;
	if (hwpc_model_init(&L->layer[0].model, window, bound_w) < 0)
		return -ENOMEM;
	L->n = 1;
	return 0;
}

void hwpc_layers_free(struct hwpc_layers *L)
{
	for (int i = 0; i < L->n; i++)
		hwpc_model_free(&L->layer[i].model);
	L->n = 0;
}

void hwpc_layers_set_bound(struct hwpc_layers *L, double bound_w)
{
	L->bound_w = bound_w;
	for (int i = 0; i < L->n; i++)
		L->layer[i].model.bound_w = bound_w;
}

static bool known(double mhz)
{
	return isfinite(mhz) && mhz > 0 && mhz < HWPC_MHZ_MAX;
}

/* How far mhz is from a layer's range (0 inside). */
static double distance(const struct hwpc_layer *l, double mhz)
{
	return mhz < l->lo_mhz ? l->lo_mhz - mhz : mhz >= l->hi_mhz ? mhz - l->hi_mhz + 1e-9 : 0;
}

/* The layer whose range holds mhz, or -1 (by_freq only). */
static int holding(const struct hwpc_layers *L, double mhz)
{
	for (int i = 0; i < L->n; i++)
		if (distance(&L->layer[i], mhz) == 0)
			return i;
	return -1;
}

int hwpc_layers_select(struct hwpc_layers *L, double mhz)
{
	if (!L->by_freq)
		return L->n > 0 ? 0 : -1;
	if (!known(mhz))
		return -1;
	int i = holding(L, mhz);
	if (i >= 0)
		return i;
	int lo = (int)(mhz / HWPC_LAYER_MHZ) * HWPC_LAYER_MHZ, hi = lo + HWPC_LAYER_MHZ;
	if (L->n < HWPC_LAYERS_MAX) {
		int p = 0;
		while (p < L->n && L->layer[p].lo_mhz < lo)
			p++;
		struct hwpc_layer l = {.lo_mhz = lo, .hi_mhz = hi};
		if (hwpc_model_init(&l.model, L->window, L->bound_w) < 0)
			return -1;
		memmove(&L->layer[p + 1], &L->layer[p], (size_t)(L->n - p) * sizeof(L->layer[0]));
		L->layer[p] = l;
		L->n++;
		return p;
	}
	/* All layers exist: the nearest one takes the step (none lies between them). */
	int best = 0;
	for (i = 1; i < L->n; i++)
		if (distance(&L->layer[i], mhz) < distance(&L->layer[best], mhz))
			best = i;
	struct hwpc_layer *l = &L->layer[best];
	l->lo_mhz = lo < l->lo_mhz ? lo : l->lo_mhz;
	l->hi_mhz = hi > l->hi_mhz ? hi : l->hi_mhz;
	return best;
}

void hwpc_layers_add(struct hwpc_layers *L, double mhz, const struct hwpc_sample *s)
{
	int i = hwpc_layers_select(L, mhz);
	if (i >= 0)
		hwpc_model_add(&L->layer[i].model, s);
}

static void label(const struct hwpc_layer *l, char *buf, size_t len)
{
	if (l->hi_mhz == 0)
		snprintf(buf, len, "all");
	else
		snprintf(buf, len, "%d-%d MHz", l->lo_mhz, l->hi_mhz);
}

/* The usable layer nearest mhz (the one with the most windows when mhz is unknown), or -1. */
static int nearest_usable(const struct hwpc_layers *L, double mhz, int except)
{
	int best = -1;
	char why[256];
	for (int i = 0; i < L->n; i++) {
		if (i == except || !hwpc_model_usable(&L->layer[i].model, why, sizeof(why)))
			continue;
		const struct hwpc_layer *l = &L->layer[i], *b = best >= 0 ? &L->layer[best] : NULL;
		bool better = !b || (known(mhz) ? distance(l, mhz) < distance(b, mhz)
		                                : l->model.samples > b->model.samples);
		if (better)
			best = i;
	}
	return best;
}

int hwpc_layers_predictor(const struct hwpc_layers *L, double mhz, char *reason, size_t len,
                          char *note, size_t note_len)
{
	if (note_len)
		note[0] = '\0';
	int own = !L->by_freq ? (L->n > 0 ? 0 : -1) : known(mhz) ? holding(L, mhz) : -1;
	if (own >= 0 && hwpc_model_usable(&L->layer[own].model, reason, len))
		return own;
	if (own < 0 && L->by_freq && known(mhz))
		snprintf(reason, len,
		         "hwpc-model is learning: no layer for %.0f MHz has learned yet", mhz);
	else if (own < 0 && L->by_freq)
		snprintf(reason, len,
		         "hwpc-model: the window's frequency is unknown (APERF/MPERF did "
		         "not advance) and no layer has learned yet");
	int best = L->by_freq ? nearest_usable(L, mhz, own) : -1;
	if (best < 0)
		return -1;
	char a[48], b[48];
	label(&L->layer[best], b, sizeof(b));
	if (own >= 0) {
		label(&L->layer[own], a, sizeof(a));
		snprintf(note, note_len,
		         "the %s layer is not usable (%s): split by the nearest "
		         "usable layer, %s",
		         a, reason, b);
	} else {
		snprintf(note, note_len, "%s: split by the layer %s", reason, b);
	}
	if (len)
		reason[0] = '\0';
	return best;
}
