/*
 * The JSON providers' parsers (carbonintensity.org.uk intensity and generation, RTE eCO2mix,
 * Electricity Maps intensity and breakdown): every input goes to all five, as a provider or a
 * proxy in between could answer any of them with anything. What an accepted reading holds must
 * be usable: a finite, non-negative intensity from the intensity parsers, and a mix whose
 * shares are finite, within [0, 1] and add up to 1.
 */
#include "carbon.h"
#include "fuzz.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = fuzz_cstring(data, size); /* as the fetcher hands it over */
	static const struct {
		int (*parse)(const char *, struct carbon_reading *, char *, size_t);
		int gives_intensity;
	} parsers[] = {{carbon_parse_uk_intensity, 1},
	               {carbon_parse_uk_generation, 0},
	               {carbon_parse_rte, 1},
	               {carbon_parse_em_intensity, 1},
	               {carbon_parse_em_breakdown, 0}};
	for (size_t i = 0; i < sizeof(parsers) / sizeof(parsers[0]); i++) {
		struct carbon_reading r;
		char err[CARBON_ERROR_MAX];
		memset(&r, 0, sizeof(r));
		if (parsers[i].parse(body, &r, err, sizeof(err)) < 0)
			continue;
		if (parsers[i].gives_intensity &&
		    !(isfinite(r.intensity_g_per_kwh) && r.intensity_g_per_kwh >= 0))
			abort();
		fuzz_check_mix(&r);
	}
	free(body);
	return 0;
}
