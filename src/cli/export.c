/*
 * energy export --from T0 [--to T1] [--step S] [--tier 1s|1m|1h] [--format csv|json]: the
 * long-term record as CSV (one line per step) or as the API's JSON (GET /api/v1/longterm).
 *
 * CSV columns: start_unix_s, start_utc (ISO 8601), step_s, covered_s (how much of the step
 * energyd was recording), host_joules, then one <channel id>_joules column per channel. An empty
 * cell is a gap: nothing was recorded in that step. Joules are printed to the microjoule, the
 * record's own resolution, so the column sums equal the API's.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int export_usage(void)
{
	fprintf(stderr,
	        "Usage: energy export --from TIME [--to TIME] [--step SECONDS] [--tier 1s|1m|1h] "
	        "[--format csv|json]\n"
	        "TIME: Unix seconds or ISO 8601 (2026-11-22T10:00:00Z; no zone means UTC).\n");
	return 2;
}

static void csv_number(json_t *v)
{
	if (json_is_number(v))
		printf(",%.6f", json_number_value(v));
	else
		printf(",");
}

static void write_csv(json_t *lt)
{
	json_t *t = json_object_get(lt, "t"), *covered = json_object_get(lt, "covered_s");
	json_t *host = json_object_get(json_object_get(lt, "host"), "joules");
	json_t *channels = json_object_get(lt, "channels");
	long long step = (long long)json_integer_value(json_object_get(lt, "step_s"));
	printf("start_unix_s,start_utc,step_s,covered_s,host_joules");
	const char *id;
	json_t *ch;
	json_object_foreach(channels, id, ch)
	{
		printf(",%s_joules", id);
	}
	printf("\n");
	for (size_t k = 0; k < json_array_size(t); k++) {
		time_t start = (time_t)json_integer_value(json_array_get(t, k));
		struct tm tm;
		char iso[32];
		gmtime_r(&start, &tm);
		strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("%lld,%s,%lld", (long long)start, iso, step);
		json_t *c = json_array_get(covered, k);
		if (json_is_number(c))
			printf(",%.3f", json_number_value(c));
		else
			printf(",");
		csv_number(json_array_get(host, k));
		json_object_foreach(channels, id, ch)
		{
			csv_number(json_array_get(json_object_get(ch, "joules"), k));
		}
		printf("\n");
	}
}

int cli_export(struct cli *cli, int argc, char **argv)
{
	const char *from = NULL, *to = NULL, *step = NULL, *tier = NULL, *format = "csv";
	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;
		if (strcmp(argv[i], "--from") == 0)
			slot = &from;
		else if (strcmp(argv[i], "--to") == 0)
			slot = &to;
		else if (strcmp(argv[i], "--step") == 0)
			slot = &step;
		else if (strcmp(argv[i], "--tier") == 0)
			slot = &tier;
		else if (strcmp(argv[i], "--format") == 0)
			slot = &format;
		if (!slot || i + 1 >= argc) {
			fprintf(stderr, "energy export: %s '%s'\n",
			        slot ? "missing value after" : "unknown argument", argv[i]);
			return export_usage();
		}
		*slot = argv[++i];
	}
	double t0, t1 = 0, s = 0;
	if (!from || energy_parse_time(from, &t0) < 0) {
		fprintf(stderr, "energy export: --from %s: %s\n", from ? from : "",
		        from ? "not a time" : "required");
		return export_usage();
	}
	if (to && energy_parse_time(to, &t1) < 0) {
		fprintf(stderr, "energy export: --to %s: not a time\n", to);
		return export_usage();
	}
	if (step && (energy_parse_double(step, &s) < 0 || s <= 0 || s != floor(s))) {
		fprintf(stderr, "energy export: --step %s: give a whole number of seconds\n", step);
		return export_usage();
	}
	if (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
		fprintf(stderr, "energy export: --format %s: csv or json\n", format);
		return export_usage();
	}
	if (tier && strcmp(tier, "1s") != 0 && strcmp(tier, "1m") != 0 && strcmp(tier, "1h") != 0) {
		fprintf(stderr, "energy export: --tier %s: 1s, 1m or 1h\n", tier);
		return export_usage();
	}
	/* Times go to the API as Unix seconds: ISO 8601 would need URL-escaping ('+'). */
	char path[512];
	int n = snprintf(path, sizeof(path), "/api/v1/longterm?from=%.6f", t0);
	if (to)
		n += snprintf(path + n, sizeof(path) - (size_t)n, "&to=%.6f", t1);
	if (step)
		n += snprintf(path + n, sizeof(path) - (size_t)n, "&step=%.0f", s);
	if (tier)
		snprintf(path + n, sizeof(path) - (size_t)n, "&tier=%s", tier);
	json_t *lt = cli_get(cli, path, false);
	if (!lt)
		return 1;
	if (strcmp(format, "json") == 0) {
		json_dumpf(lt, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
		printf("\n");
	} else {
		write_csv(lt);
	}
	json_decref(lt);
	return fflush(stdout) == 0 ? 0 : 1;
}
