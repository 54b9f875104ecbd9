/*
 * The time and number parsers behind every query parameter: the input is up to three values
 * separated by newlines (from, to, a positive number such as max_points), each given to what the
 * API routes call. An accepted time must lie in the documented range, an accepted interval must
 * be ordered, an accepted number must be within (0, max].
 */
#include "energy.h"
#include "fuzz.h"
#include "query.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1.8e9 /* fixed, so that a failing input fails again */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstring(data, size);
	const char *field[3] = {NULL, NULL, NULL};
	char *p = text;
	for (int i = 0; i < 3 && p; i++) {
		field[i] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = '\0';
	}
	char err[256];
	double t, t0, t1, v;
	for (int i = 0; i < 3; i++) {
		if (!field[i])
			continue;
		(void)energy_parse_time(field[i], &t);
		(void)energy_parse_double(field[i], &v);
		if (query_time("from", field[i], NOW, &t, err, sizeof(err)) == 0 &&
		    !(t >= 0 && t <= NOW + QUERY_FUTURE_SLACK_S))
			abort();
	}
	if (query_interval(field[0], field[1], NOW, NAN, NOW, &t0, &t1, err, sizeof(err)) == 0 &&
	    !(t0 <= t1 && t0 >= 0 && t1 <= NOW + QUERY_FUTURE_SLACK_S))
		abort();
	if (query_interval(field[0], field[1], NOW, NOW - 3600, NOW, &t0, &t1, err, sizeof(err)) ==
	        0 &&
	    !(t0 <= t1))
		abort();
	if (query_positive("max_points", field[2], 1000, 100000, &v, err, sizeof(err)) == 0 &&
	    !(v > 0 && v <= 100000))
		abort();
	free(text);
	return 0;
}
