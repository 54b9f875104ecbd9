/*
 * The ENTSO-E A75 parser (expat) on a provider's answer as a hostile provider or proxy could
 * send it. An accepted reading must have a finite, non-negative intensity, a finite time and a
 * mix whose shares are within [0, 1] and add up to 1.
 */
#include "carbon.h"
#include "fuzz.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct carbon_reading r;
	char err[CARBON_ERROR_MAX];
	if (carbon_parse_entsoe((const char *)data, size, &r, err, sizeof(err)) < 0)
		return 0;
	if (!(isfinite(r.intensity_g_per_kwh) && r.intensity_g_per_kwh >= 0) ||
	    !isfinite(r.data_time) || !r.have_mix)
		abort();
	fuzz_check_mix(&r);
	return 0;
}
