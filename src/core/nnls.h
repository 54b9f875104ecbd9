/*
 * Non-negative least squares for the small problems of the hardware-counter model
 * (docs/attribution.md): minimise |y - X b|^2 over b >= 0, with X of n rows and p <= NNLS_P_MAX
 * columns. Pure arithmetic, no allocation, unit-tested (tests/unit/test_nnls.c).
 *
 * With so few columns the exact answer is found by trying every active set: for each subset of
 * the columns, the unconstrained least-squares fit on that subset (normal equations, columns
 * scaled to unit root mean square, a ridge of 1e-9 of the diagonal against collinear columns);
 * the feasible fit (every coefficient >= 0) with the smallest residual wins. The optimum of a
 * non-negative least-squares problem is such a fit (the Karush-Kuhn-Tucker conditions), so
 * this is the Lawson-Hanson answer without its iterations. 2^p solves of p x p systems: for
 * p = 4, 16 solves of at most 4 x 4.
 */
#ifndef ENERGY_NNLS_H
#define ENERGY_NNLS_H

#include <stddef.h>

#define NNLS_P_MAX 6

/*
 * x: n rows of p values (row-major), y: n values, b: p coefficients out. Columns that are all
 * zero get 0. Returns 0, -EINVAL for p outside 1..NNLS_P_MAX, n == 0 or a value that is not
 * finite. *rss (may be NULL) is the residual sum of squares of b.
 */
int nnls_fit(const double *x, const double *y, size_t n, int p, double *b, double *rss);

#endif
