/*
 * The hardware-counter model's frequency layers (docs/attribution.md, "hwpc-model"): one
 * hwpc_model (hwpc_model.h) per step of HWPC_LAYER_MHZ of the packages' effective frequency
 * (APERF/MPERF), as SmartWatts does, each with its own fit, samples, error window and
 * re-learning. Pure arithmetic on the windows it is given (no I/O, no lock); the attribution
 * thread owns it (hwpc.c).
 *
 * - Without a frequency (APERF/MPERF unreadable): one layer for every frequency, as `all`.
 * - A window is learned by the layer whose range holds its frequency; the layer is created at
 *   its first window ([f / 100 MHz x 100 MHz, + 100 MHz)). At most HWPC_LAYERS_MAX layers:
 *   beyond, a window of a new step is learned by the nearest layer, whose range widens to hold
 *   that step (no two ranges overlap: no layer lies between the step and its nearest).
 * - A window is split by its own layer when that layer is usable (hwpc_model_usable); else by
 *   the nearest usable layer (by frequency), and says so; with none usable, by CPU time.
 *   A window without a frequency (the CPUs idle all along: MPERF did not advance) is split by
 *   the usable layer with the most windows and is not learned from.
 */
#ifndef ENERGY_HWPC_LAYERS_H
#define ENERGY_HWPC_LAYERS_H

#include "hwpc_model.h"

#include <stdbool.h>
#include <stddef.h>

#define HWPC_LAYER_MHZ  100
#define HWPC_LAYERS_MAX 64 /* 0 to 6.4 GHz in steps of 100 MHz */

struct hwpc_layer {
	int lo_mhz, hi_mhz; /* the frequencies it learns: [lo, hi); 0, 0 for every frequency */
	struct hwpc_model model;
};

struct hwpc_layers {
	int window;     /* each layer's history and error window */
	double bound_w; /* each layer's intercept bound */
	bool by_freq;   /* false: one layer for every frequency */
	int n;          /* layers, in increasing frequency */
	struct hwpc_layer layer[HWPC_LAYERS_MAX];
};

/* 0 or -ENOMEM. by_freq false: the one layer `all` exists from the start. */
int hwpc_layers_init(struct hwpc_layers *L, int window, double bound_w, bool by_freq);
void hwpc_layers_free(struct hwpc_layers *L);
/* Every layer's intercept bound (known once the power limits are read). */
void hwpc_layers_set_bound(struct hwpc_layers *L, double bound_w);
/* The layer that learns a window at mhz: created, or the nearest widened, when none holds it
 * (see above); -1 for a window without a frequency, or without memory for a new layer. */
int hwpc_layers_select(struct hwpc_layers *L, double mhz);
/* Learn from one window at mhz (NAN: unknown; not learned when by_freq). */
void hwpc_layers_add(struct hwpc_layers *L, double mhz, const struct hwpc_sample *s);
/* The layer that splits a window at mhz: its own when usable, else the nearest usable one
 * (note then says which and why), else -1 with reason (the own layer's, or the one layer's). */
int hwpc_layers_predictor(const struct hwpc_layers *L, double mhz, char *reason, size_t len,
                          char *note, size_t note_len);

#endif
