/*
 * The limits of the watts windows (history_watts_window, history.h), shared by the one-sample
 * computation in history.c and the many-point one in history_points.c, which must give the same
 * figures bit for bit. Private to src/core.
 */
#ifndef ENERGY_HISTORY_WINDOW_H
#define ENERGY_HISTORY_WINDOW_H

/* How far a window's scan looks back (samples, seconds beyond the window asked for) and ahead,
 * and how many gaps between updates give the update period. */
#define WINDOW_GAPS     8
#define WINDOW_SCAN_MAX 512
#define WINDOW_SCAN_S   4.0
#define WINDOW_FWD_MAX  64
#define WINDOW_FWD_S    2.0
#define WINDOW_N        (WINDOW_SCAN_MAX + WINDOW_FWD_MAX)
/* A gap between updates up to this many periods is the usual cadence. */
#define WINDOW_REGULAR 1.5
/* A window up to this much shorter than asked still counts: sample intervals jitter by a few
 * percent around the nominal one, and one interval is meant when the nominal one is asked. */
#define WINDOW_SLACK 0.9

/* Sorts a, b (no NaN) without a branch to mispredict: x86's minsd and maxsd (the compiler
 * turns the plain comparison into branches); elsewhere the comparison. Equal values go one way
 * or the other: the same pair either way. */
#ifdef __SSE2__
#include <emmintrin.h>
#define WINDOW_SORT2(a, b)                                                                         \
	do {                                                                                       \
		__m128d x_ = _mm_set_sd(a), y_ = _mm_set_sd(b);                                    \
		a = _mm_cvtsd_f64(_mm_min_sd(x_, y_));                                             \
		b = _mm_cvtsd_f64(_mm_max_sd(y_, x_));                                             \
	} while (0)
#else
#define WINDOW_SORT2(a, b)                                                                         \
	do {                                                                                       \
		double lo_ = a < b ? a : b, hi_ = b > a ? b : a;                                   \
		a = lo_;                                                                           \
		b = hi_;                                                                           \
	} while (0)
#endif

_Static_assert(WINDOW_GAPS == 8, "window_median8 takes WINDOW_GAPS gaps");

/* The median of eight gaps (no NaN), v left as it is: a sorting network of 19 comparisons
 * (Knuth, TAOCP vol. 3, 5.3.4) in registers, whose compare-and-swaps cost no mispredicted
 * branches on gaps in random order. The same sorted values as any sort, so the same median. */
static inline double window_median8(const double *v)
{
	double a0 = v[0], a1 = v[1], a2 = v[2], a3 = v[3], a4 = v[4], a5 = v[5], a6 = v[6],
	       a7 = v[7];
	WINDOW_SORT2(a0, a2);
	WINDOW_SORT2(a1, a3);
	WINDOW_SORT2(a4, a6);
	WINDOW_SORT2(a5, a7);
	WINDOW_SORT2(a0, a4);
	WINDOW_SORT2(a1, a5);
	WINDOW_SORT2(a2, a6);
	WINDOW_SORT2(a3, a7);
	WINDOW_SORT2(a0, a1);
	WINDOW_SORT2(a2, a3);
	WINDOW_SORT2(a4, a5);
	WINDOW_SORT2(a6, a7);
	WINDOW_SORT2(a2, a4);
	WINDOW_SORT2(a3, a5);
	WINDOW_SORT2(a1, a4);
	WINDOW_SORT2(a3, a6);
	WINDOW_SORT2(a1, a2);
	WINDOW_SORT2(a3, a4);
	WINDOW_SORT2(a5, a6);
	return (a3 + a4) / 2;
}

/* The median of n gaps (0 < n <= WINDOW_GAPS, no NaN); fewer than eight are sorted in place
 * (insertion: qsort's calls would cost more than the sort). */
static inline double window_median(double *v, int n)
{
	if (n == 8)
		return window_median8(v);
	for (int k = 1; k < n; k++) {
		double x = v[k];
		int j = k;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
