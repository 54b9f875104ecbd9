#include "hwpc_model.h"
#include "mem.h"
#include "nnls.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hwpc_model_init(struct hwpc_model *m, int window, double bound_w)
{
	memset(m, 0, sizeof(*m));
	m->window = window < HWPC_ERROR_WINDOW_LO   ? HWPC_ERROR_WINDOW_LO
	            : window > HWPC_ERROR_WINDOW_HI ? HWPC_ERROR_WINDOW_HI
	                                            : window;
	m->bound_w = bound_w > 0 && isfinite(bound_w) ? bound_w : 0;
	m->last_error_w = NAN;
	/* Both rings hold one entry per window: one block, the errors after the samples (the
	 * samples are doubles, so the errors are aligned). */
	m->hist = calloc((size_t)m->window, sizeof(*m->hist) + sizeof(*m->err));
	if (!m->hist)
		return -ENOMEM;
	m->err = (double *)(m->hist + m->window);
	return 0;
}

void hwpc_model_free(struct hwpc_model *m)
{
	MEM_FREE_NULL(m->hist);
	m->err = NULL; /* inside the same block */
}

/* The k-th sample of the history, oldest first. */
static const struct hwpc_sample *hist_at(const struct hwpc_model *m, int k)
{
	int start = (m->head_hist - m->n_hist + m->window) % m->window;
	return &m->hist[(start + k) % m->window];
}

double hwpc_model_dynamic(const struct hwpc_model *m, const double *rate)
{
	double w = 0;
	for (int k = 0; k < HWPC_EVENTS; k++)
		w += m->coef[k] * rate[k];
	return w;
}

static double predict(const struct hwpc_model *m, const struct hwpc_sample *s)
{
	return (m->with_intercept ? m->intercept : 0) + hwpc_model_dynamic(m, s->rate);
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

double hwpc_model_median_error(const struct hwpc_model *m)
{
	if (m->n_err == 0)
		return NAN;
	double v[HWPC_ERROR_WINDOW_HI];
	memcpy(v, m->err, (size_t)m->n_err * sizeof(*v));
	qsort(v, (size_t)m->n_err, sizeof(*v), cmp_double);
	int h = m->n_err / 2;
	return m->n_err % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

static void push_error(struct hwpc_model *m, double e)
{
	m->err[m->head_err] = e;
	m->head_err = (m->head_err + 1) % m->window;
	if (m->n_err < m->window)
		m->n_err++;
}

/*
 * Fit over the history. free_intercept: the intercept is a non-negative unknown, capped at the
 * bound (then fixed there); else it is fixed at `intercept` (0 while learning, or carried). The
 * coefficients are non-negative (nnls.h).
 */
static int fit(struct hwpc_model *m, bool free_intercept, double intercept)
{
	int n = m->n_hist, p = HWPC_EVENTS + (free_intercept ? 1 : 0);
	double *x = malloc((size_t)n * (size_t)p * sizeof(*x)), *y = malloc((size_t)n * sizeof(*y));
	double b[NNLS_P_MAX], low = INFINITY;
	int rc = x && y ? 0 : -ENOMEM;
	for (int i = 0; rc == 0 && i < n; i++) {
		const struct hwpc_sample *s = hist_at(m, i);
		double *row = &x[(size_t)i * (size_t)p];
		for (int k = 0; k < HWPC_EVENTS; k++)
			row[k] = s->rate[k];
		if (free_intercept)
			row[HWPC_EVENTS] = 1;
		y[i] = s->watts - (free_intercept ? 0 : intercept);
		low = s->watts < low ? s->watts : low;
	}
	double cap = m->bound_w > 0 && m->bound_w < low ? m->bound_w : low;
	if (rc == 0)
		rc = nnls_fit(x, y, (size_t)n, p, b, NULL);
	if (rc == 0 && free_intercept && b[HWPC_EVENTS] > cap) {
		/* Beyond its bound: fixed at the bound, the coefficients fitted again. */
		free(x), free(y);
		return fit(m, false, cap);
	}
	if (rc == 0) {
		memcpy(m->coef, b, sizeof(m->coef));
		m->intercept = free_intercept ? b[HWPC_EVENTS] : intercept;
		m->fitted = true;
	}
	free(x), free(y);
	return rc;
}

/* The error window restarts from the residuals of the fit just made. */
static void restart_errors(struct hwpc_model *m)
{
	m->n_err = m->head_err = 0;
	for (int i = 0; i < m->n_hist; i++) {
		const struct hwpc_sample *s = hist_at(m, i);
		push_error(m, fabs(predict(m, s) - s->watts));
	}
}

/* How many of the newest errors exceed the threshold in a row: the windows since a change. */
static int bad_run(const struct hwpc_model *m)
{
	int run = 0;
	for (int k = 1; k <= m->n_err; k++) {
		if (!(m->err[(m->head_err - k + m->window) % m->window] > HWPC_ERROR_MAX_W))
			break;
		run++;
	}
	return run;
}

/* Keep the windows the model got wrong in a row but the oldest, which may straddle the change
 * (at least HWPC_REFIT_MIN, at most half the history), carry the intercept, fit the
 * coefficients on them. */
static void relearn(struct hwpc_model *m, double t)
{
	int keep = bad_run(m) - 1;
	keep = keep < HWPC_REFIT_MIN ? HWPC_REFIT_MIN : keep > m->window / 2 ? m->window / 2 : keep;
	if (m->n_hist > keep)
		m->n_hist = keep; /* the ring's head stays: the newest samples remain */
	m->relearns++;
	m->last_relearn_t = t;
	m->carried = true;
	if (fit(m, false, m->intercept) == 0)
		m->last_fit_t = t;
	restart_errors(m);
}

/* After a window is in the history: fit while learning (without intercept, then with it once
 * the history is full), refit the coefficients while the intercept is carried, and re-learn a
 * model whose median error is too high. A model with its intercept is otherwise kept as it is:
 * its errors on new windows are what the error window judges. */
static void update(struct hwpc_model *m, double t)
{
	bool too_high = m->n_err >= m->window / 2 && hwpc_model_median_error(m) > HWPC_ERROR_MAX_W;
	if (m->with_intercept && too_high) {
		relearn(m, t);
		return;
	}
	if (m->with_intercept && !m->carried)
		return;
	bool full = m->n_hist == m->window;
	int rc = fit(m, full, m->carried ? m->intercept : 0);
	if (rc < 0)
		return;
	m->last_fit_t = t;
	if (full) {
		m->with_intercept = true;
		m->carried = false;
		restart_errors(m);
	}
}

void hwpc_model_add(struct hwpc_model *m, const struct hwpc_sample *s)
{
	bool ok = isfinite(s->watts) && s->watts >= 0 && s->seconds >= HWPC_WINDOW_MIN_S - 1e-6;
	for (int k = 0; k < HWPC_EVENTS; k++)
		ok &= isfinite(s->rate[k]) && s->rate[k] >= 0;
	if (!ok)
		return;
	if (m->fitted) {
		m->last_error_w = fabs(predict(m, s) - s->watts);
		push_error(m, m->last_error_w);
	}
	m->hist[m->head_hist] = *s;
	m->head_hist = (m->head_hist + 1) % m->window;
	if (m->n_hist < m->window)
		m->n_hist++;
	m->samples++;
	update(m, s->t);
}

bool hwpc_model_usable(const struct hwpc_model *m, char *reason, size_t len)
{
	double med = hwpc_model_median_error(m);
	if (!m->fitted || !m->with_intercept) {
		snprintf(reason, len,
		         "hwpc-model is learning: %d of %d windows of at least %.0f s; until then "
		         "CPU time shares",
		         m->n_hist, m->window, HWPC_WINDOW_MIN_S);
		return false;
	}
	if (!(med < HWPC_ERROR_MAX_W)) {
		snprintf(reason, len,
		         "hwpc-model error too high: median %.2f W over the last %d windows (at "
		         "most %.1f W); it re-learns",
		         med, m->n_err, HWPC_ERROR_MAX_W);
		return false;
	}
	if (len)
		reason[0] = '\0';
	return true;
}
