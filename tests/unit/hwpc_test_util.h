/* Literal windows for the hardware-counter model's unit tests (test_hwpc_model.c,
 * test_hwpc_layers.c). */
#ifndef HWPC_TEST_UTIL_H
#define HWPC_TEST_UTIL_H

#include "hwpc_model.h"

/* Window i: rates that vary independently (cycles ~2-3 GHz, instructions, LLC misses), and
 * the power intercept + coef . rates. */
static inline struct hwpc_sample window(int i, const double *coef, double intercept)
{
	struct hwpc_sample s = {.t = 100.0 + i, .seconds = 1.0};
	s.rate[0] = (2.0 + 0.1 * ((i * 7) % 11)) * 1e9;
	s.rate[1] = (1.0 + 0.3 * ((i * 5) % 7)) * 1e9;
	s.rate[2] = (10.0 + 7.0 * ((i * 3) % 5)) * 1e6;
	s.watts = intercept;
	for (int k = 0; k < HWPC_EVENTS; k++)
		s.watts += coef[k] * s.rate[k];
	return s;
}

#endif
