/* Helpers shared by the fuzz harnesses. */
#ifndef ENERGY_FUZZ_H
#define ENERGY_FUZZ_H

#include "carbon.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The input as a NUL-terminated string (malloc'd), as parsers of text receive it. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* A generation mix that a parser accepted: shares within [0, 1] adding up to 1. */
static inline void fuzz_check_mix(const struct carbon_reading *r)
{
	if (!r->have_mix)
		return;
	double sum = 0;
	for (int g = 0; g < CARBON_GROUPS; g++) {
		if (!(r->mix[g] >= 0 && r->mix[g] <= 1))
			abort();
		sum += r->mix[g];
	}
	if (fabs(sum - 1) > 1e-9)
		abort();
}

#endif
