/*
 * The JSON providers' parsers (carbonintensity.org.uk intensity and generation, RTE eCO2mix,
 * Electricity Maps intensity and breakdown): every input goes to all five, as a provider or a
 * proxy in between could answer any of them with anything. What an accepted reading holds must
 * be usable: a finite, non-negative intensity from the intensity parsers, and a mix whose
 * shares are finite, within [0, 1] and add up to 1.
 */
#include "carbon.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_mix(const struct carbon_reading *r)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The fetcher hands the parsers a NUL-terminated body. */
	char *body = malloc(size + 1);
	if (!body)
		return 0;
	memcpy(body, data, size);
	body[size] = '\0';
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
		check_mix(&r);
	}
	free(body);
	return 0;
}
