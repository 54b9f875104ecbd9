/*
 * The hardware-counter power model (docs/attribution.md, "hwpc-model"): a non-negative linear
 * model of the packages' power on the machine's counter rates,
 *
 *     watts = intercept + sum_k coef[k] x rate[k]     (coef >= 0, 0 <= intercept <= bound)
 *
 * learned online from windows of at least HWPC_WINDOW_MIN_S (never per sample: short windows
 * make linear fits explode) against the measured package energy. Pure arithmetic on the
 * samples it is given (no I/O, no lock); the attribution thread owns it (hwpc.c).
 *
 * - History: the newest `window` samples (the error window, default 60).
 * - The intercept is fitted only once the history is full; before, the model is fitted without
 *   one and not used. It is bounded: >= 0, at most the power limit (powercap's
 *   constraint_0_power_limit_uw or --hwpc-tdp-watts, when known) and at most the lowest
 *   window's measured power.
 * - Once fitted with its intercept, the model is kept as it is: each new window's
 *   |predicted - measured| watts is its error, and the error window holds the newest `window`
 *   of them (starting from the fit's own residuals). When the median of the error window
 *   exceeds HWPC_ERROR_MAX_W, the model re-learns: it keeps the newest windows it got wrong in
 *   a row but the oldest, which may straddle the change (at least HWPC_REFIT_MIN, at most
 *   window / 2), carries its intercept (static power
 *   does not change with the load) and fits the coefficients on them, then again on every new
 *   window until the history is full, when the intercept is fitted again.
 */
#ifndef ENERGY_HWPC_MODEL_H
#define ENERGY_HWPC_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#define HWPC_EVENTS          3 /* unhalted cycles, instructions, LLC misses */
#define HWPC_ERROR_MAX_W     2.0
#define HWPC_WINDOW_MIN_S    1.0
#define HWPC_ERROR_WINDOW    60 /* default error window and history, in windows */
#define HWPC_ERROR_WINDOW_LO 8
#define HWPC_ERROR_WINDOW_HI 600
#define HWPC_REFIT_MIN       4 /* samples needed to fit the coefficients after a re-learn */

struct hwpc_sample {
	double t;                 /* end of the window (the sampler's clock) */
	double seconds;           /* its length */
	double rate[HWPC_EVENTS]; /* counts per second over the window, multiplexing scaled */
	double watts;             /* measured package power over the window */
};

struct hwpc_model {
	int window;               /* history and error window, in samples */
	double bound_w;           /* the intercept's configured bound (power limit), 0 unknown */
	struct hwpc_sample *hist; /* ring of window samples */
	int n_hist, head_hist;
	double *err; /* ring of window errors (W) */
	int n_err, head_err;
	bool fitted;              /* coef holds a fit */
	bool with_intercept;      /* the intercept was fitted (history full) or carried */
	bool carried;             /* the intercept is carried over a re-learn */
	double coef[HWPC_EVENTS]; /* W per (count/s) */
	double intercept;         /* W */
	long samples;             /* windows learned from since energyd started */
	int relearns;
	double last_relearn_t; /* 0: never */
	double last_fit_t;
	double last_error_w; /* the newest window's error; NAN before one */
};

/* 0, or -ENOMEM; window is clamped to [HWPC_ERROR_WINDOW_LO, HWPC_ERROR_WINDOW_HI]. */
int hwpc_model_init(struct hwpc_model *m, int window, double bound_w);
void hwpc_model_free(struct hwpc_model *m);
/* Learn from one window: its error under the current model, then a refit (and a re-learn when
 * the median error is too high). Samples with a non-finite or negative value are ignored. */
void hwpc_model_add(struct hwpc_model *m, const struct hwpc_sample *s);
/* The dynamic power the model gives these rates: sum coef[k] x rate[k] (no intercept). */
double hwpc_model_dynamic(const struct hwpc_model *m, const double *rate);
/* Median of the error window (W); NAN when empty. */
double hwpc_model_median_error(const struct hwpc_model *m);
/* Whether the model may split energy: fitted with its intercept and a median error below
 * HWPC_ERROR_MAX_W. When not, reason says why (for method_reason). */
bool hwpc_model_usable(const struct hwpc_model *m, char *reason, size_t len);

#endif
