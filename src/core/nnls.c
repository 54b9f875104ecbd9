#include "nnls.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>

/* Solve a k x k system in place (Gaussian elimination, partial pivoting): 0, or -1 singular. */
static int solve(double a[NNLS_P_MAX][NNLS_P_MAX], double *r, int k)
{
	for (int c = 0; c < k; c++) {
		int piv = c;
		for (int i = c + 1; i < k; i++)
			if (fabs(a[i][c]) > fabs(a[piv][c]))
				piv = i;
		if (!(fabs(a[piv][c]) > 1e-300))
			return -1;
		for (int j = 0; j < k && piv != c; j++) {
			double t = a[c][j];
			a[c][j] = a[piv][j];
			a[piv][j] = t;
		}
		double tr = r[c];
		r[c] = r[piv];
		r[piv] = tr;
		for (int i = c + 1; i < k; i++) {
			double f = a[i][c] / a[c][c];
			for (int j = c; j < k; j++)
				a[i][j] -= f * a[c][j];
			r[i] -= f * r[c];
		}
	}
	for (int c = k - 1; c >= 0; c--) {
		double s = r[c];
		for (int j = c + 1; j < k; j++)
			s -= a[c][j] * r[j];
		r[c] = s / a[c][c];
	}
	return 0;
}

/* Residual sum of squares of the scaled coefficients bs (over scaled columns). */
static double residual(const double *x, const double *y, size_t n, int p, const double *scale,
                       const double *bs)
{
	double rss = 0;
	for (size_t i = 0; i < n; i++) {
		double f = 0;
		for (int j = 0; j < p; j++)
			f += x[i * (size_t)p + (size_t)j] / scale[j] * bs[j];
		rss += (y[i] - f) * (y[i] - f);
	}
	return rss;
}

int nnls_fit(const double *x, const double *y, size_t n, int p, double *b, double *rss)
{
	if (p < 1 || p > NNLS_P_MAX || n == 0)
		return -EINVAL;
	double scale[NNLS_P_MAX], g[NNLS_P_MAX][NNLS_P_MAX] = {{0}}, xty[NNLS_P_MAX] = {0};
	for (int j = 0; j < p; j++) {
		double ss = 0;
		for (size_t i = 0; i < n; i++)
			ss += x[i * (size_t)p + (size_t)j] * x[i * (size_t)p + (size_t)j];
		if (!isfinite(ss))
			return -EINVAL;
		scale[j] = ss > 0 ? sqrt(ss / (double)n) : 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(y[i]))
			return -EINVAL;
		for (int j = 0; j < p; j++) {
			double xj = scale[j] > 0 ? x[i * (size_t)p + (size_t)j] / scale[j] : 0;
			xty[j] += xj * y[i];
			for (int k = 0; k < p; k++)
				g[j][k] +=
				    xj *
				    (scale[k] > 0 ? x[i * (size_t)p + (size_t)k] / scale[k] : 0);
		}
	}
	double best[NNLS_P_MAX] = {0};
	for (int j = 0; j < p; j++)
		scale[j] = scale[j] > 0 ? scale[j] : 1;
	double best_rss = residual(x, y, n, p, scale, best); /* the empty set: b = 0 */
	for (unsigned set = 1; set < (1u << p); set++) {
		int idx[NNLS_P_MAX], k = 0;
		for (int j = 0; j < p; j++)
			if (set & (1u << j))
				idx[k++] = j;
		double a[NNLS_P_MAX][NNLS_P_MAX], r[NNLS_P_MAX];
		for (int u = 0; u < k; u++) {
			for (int v = 0; v < k; v++)
				a[u][v] = g[idx[u]][idx[v]];
			a[u][u] += 1e-9 * (g[idx[u]][idx[u]] > 0 ? g[idx[u]][idx[u]] : 1);
			r[u] = xty[idx[u]];
		}
		if (solve(a, r, k) < 0)
			continue;
		double bs[NNLS_P_MAX] = {0};
		bool feasible = true;
		for (int u = 0; u < k; u++) {
			feasible &= r[u] >= 0 && isfinite(r[u]);
			bs[idx[u]] = r[u];
		}
		if (!feasible)
			continue;
		double s = residual(x, y, n, p, scale, bs);
		if (s < best_rss) {
			best_rss = s;
			for (int j = 0; j < p; j++)
				best[j] = bs[j];
		}
	}
	for (int j = 0; j < p; j++)
		b[j] = best[j] / scale[j];
	if (rss)
		*rss = best_rss;
	return 0;
}
