/*
 * The [influxdb] section's defaults and checks: pure functions, so that config.c (and its unit
 * test) can use them without the output thread.
 */
#include "influx.h"

#include <stdio.h>
#include <string.h>

void influx_config_defaults(struct influx_config *c)
{
	memset(c, 0, sizeof(*c));
	c->interval_s = 10;
	c->memory_s = 3600;
}

int influx_config_check(const struct influx_config *c, char *err, size_t errlen)
{
	bool any = c->database[0] || c->bucket[0] || c->org[0] || c->token_file[0];
	if (!c->url[0]) {
		if (any)
			snprintf(err, errlen,
			         "[influxdb]: url is missing (e.g. http://127.0.0.1:8086)");
		return any ? -1 : 0;
	}
	if (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0) {
		snprintf(err, errlen, "[influxdb] url '%s': expected http://HOST:PORT or https://…",
		         c->url);
		return -1;
	}
	bool v1 = c->database[0], v2 = c->bucket[0] || c->org[0];
	if (v1 == v2 || (v2 && (!c->bucket[0] || !c->org[0]))) {
		snprintf(
		    err, errlen,
		    "[influxdb]: give database (InfluxDB 1.x) or bucket and org (2.x), not both");
		return -1;
	}
	if (c->memory_s < c->interval_s) {
		snprintf(err, errlen, "[influxdb] memory_s %.4g is below interval_s %.4g",
		         c->memory_s, c->interval_s);
		return -1;
	}
	return 0;
}
