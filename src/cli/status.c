/* energy status, energy sources: human-readable views of /now and /sources. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char *channel_label(json_t *sources, const char *id)
{
	size_t i;
	json_t *ch;
	json_array_foreach(json_object_get(sources, "channels"), i, ch)
	{
		if (strcmp(json_string_value(json_object_get(ch, "id")), id) == 0)
			return json_string_value(json_object_get(ch, "label"));
	}
	return "";
}

static void coverage_text(json_t *coverage, char *buf, size_t len)
{
	size_t i;
	json_t *id;
	buf[0] = '\0';
	json_array_foreach(coverage, i, id)
	{
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? " + " : "",
		         json_string_value(id));
	}
	if (!buf[0])
		snprintf(buf, len, "nothing");
}

/* For the commands that take no arguments: 2 (with a message) when some were given, else 0. */
static int no_arguments(int argc, char **argv)
{
	if (argc <= 1)
		return 0;
	fprintf(stderr, "energy %s: takes no arguments\n", argv[0]);
	return 2;
}

int cli_status(struct cli *cli, int argc, char **argv)
{
	if (no_arguments(argc, argv))
		return 2;
	json_t *now = cli_get(cli, "/api/v1/now", false);
	if (!now)
		return 1;
	json_t *sources = cli_get(cli, "/api/v1/sources", false);
	if (!sources) {
		json_decref(now);
		return 1;
	}
	printf("%-18s %12s %14s  %-9s %s\n", "CHANNEL", "POWER", "ENERGY", "", "WHAT");
	const char *id;
	json_t *ch;
	json_object_foreach(json_object_get(now, "channels"), id, ch)
	{
		char w[32] = "-", j[32];
		json_t *watts = json_object_get(ch, "watts");
		if (json_is_number(watts))
			cli_format_watts(json_number_value(watts), w, sizeof(w));
		cli_format_joules(json_number_value(json_object_get(ch, "joules")), j, sizeof(j));
		printf("%-18s %12s %14s  %-9s %s\n", id, w, j,
		       json_is_true(json_object_get(ch, "measured")) ? "measured" : "estimated",
		       channel_label(sources, id));
	}
	json_t *host = json_object_get(now, "host");
	char w[32] = "-", j[32], cov[512];
	if (json_is_number(json_object_get(host, "watts")))
		cli_format_watts(json_number_value(json_object_get(host, "watts")), w, sizeof(w));
	cli_format_joules(json_number_value(json_object_get(host, "joules")), j, sizeof(j));
	coverage_text(json_object_get(host, "coverage"), cov, sizeof(cov));
	printf("%-18s %12s %14s  %-9s %s\n", "host total", w, j,
	       json_is_true(json_object_get(host, "measured")) ? "measured" : "estimated", cov);
	printf("\n");
	cli_print_carbon(stdout, now, "since energyd started");
	json_t *total = json_object_get(host, "joules_total");
	if (json_is_number(total)) {
		char t[32];
		cli_format_joules(json_number_value(total), t, sizeof(t));
		printf("Host total since the long-term record began: %s (%s)\n", t,
		       json_is_true(json_object_get(host, "measured")) ? "measured" : "estimated");
	}
	printf("\nPower: mean over the last second. Energy: since energyd started.\n");
	json_decref(now);
	json_decref(sources);
	return 0;
}

int cli_sources(struct cli *cli, int argc, char **argv)
{
	if (no_arguments(argc, argv))
		return 2;
	json_t *s = cli_get(cli, "/api/v1/sources", false);
	if (!s)
		return 1;
	size_t i;
	json_t *f, *ch;
	printf("Sensor families:\n");
	json_array_foreach(json_object_get(s, "families"), i, f)
	{
		printf("  %-10s %-8s %s\n", json_string_value(json_object_get(f, "name")),
		       json_string_value(json_object_get(f, "status")),
		       json_string_value(json_object_get(f, "detail")));
	}
	printf("\nChannels:\n");
	json_array_foreach(json_object_get(s, "channels"), i, ch)
	{
		json_t *err = json_object_get(ch, "error");
		printf("  %-18s %-9s %-8s %s\n", json_string_value(json_object_get(ch, "id")),
		       json_is_true(json_object_get(ch, "measured")) ? "measured" : "estimated",
		       json_string_value(json_object_get(ch, "status")),
		       json_string_value(json_object_get(ch, "label")));
		printf("  %-18s %s\n", "", json_string_value(json_object_get(ch, "description")));
		if (json_is_string(err))
			printf("  %-18s error: %s\n", "", json_string_value(err));
	}
	if (json_array_size(json_object_get(s, "channels")) == 0)
		printf("  none\n");
	json_t *host = json_object_get(s, "host");
	char cov[512];
	coverage_text(json_object_get(host, "coverage"), cov, sizeof(cov));
	printf("\nHost total: %s (%s, %s)\n", cov, json_string_value(json_object_get(host, "rule")),
	       json_is_true(json_object_get(host, "measured")) ? "measured" : "estimated");
	json_t *cal = json_object_get(s, "model_calibration");
	if (json_is_object(cal))
		printf("CPU model calibration: %s: %s\n",
		       json_string_value(json_object_get(cal, "state")),
		       json_string_value(json_object_get(cal, "detail")));
	json_decref(s);
	return 0;
}
