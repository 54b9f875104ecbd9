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

/* For the commands that take no arguments: GET path, or NULL with *rc the exit code (2 with a
 * message when arguments were given, 1 when the request failed). */
static json_t *get_alone(struct cli *cli, int argc, char **argv, const char *path, int *rc)
{
	if (argc > 1) {
		fprintf(stderr, "energy %s: takes no arguments\n", argv[0]);
		*rc = 2;
		return NULL;
	}
	json_t *answer = cli_get(cli, path, false);
	*rc = answer ? 0 : 1;
	return answer;
}

/* One row of the table: power, energy, measured or not, and what it is. */
static void print_row(const char *name, json_t *o, const char *what)
{
	char w[32], j[32];
	cli_format_reading(o, w, j);
	printf("%-18s %12s %14s  %-9s %s\n", name, w, j, cli_measured_word(o), what);
}

int cli_status(struct cli *cli, int argc, char **argv)
{
	int rc;
	json_t *now = get_alone(cli, argc, argv, "/api/v1/now", &rc);
	if (!now)
		return rc;
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
		print_row(id, ch, channel_label(sources, id));
	}
	json_t *host = json_object_get(now, "host");
	char cov[512];
	coverage_text(json_object_get(host, "coverage"), cov, sizeof(cov));
	print_row("host total", host, cov);
	printf("\n");
	cli_print_carbon(stdout, now, "since energyd started");
	json_t *total = json_object_get(host, "joules_total");
	if (json_is_number(total)) {
		char t[32];
		cli_format_joules(json_number_value(total), t, sizeof(t));
		printf("Host total since the long-term record began: %s (%s)\n", t,
		       cli_measured_word(host));
	}
	printf("\nPower: mean over the last second. Energy: since energyd started.\n");
	json_decref(now);
	json_decref(sources);
	return 0;
}

int cli_sources(struct cli *cli, int argc, char **argv)
{
	int rc;
	json_t *s = get_alone(cli, argc, argv, "/api/v1/sources", &rc);
	if (!s)
		return rc;
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
		       cli_measured_word(ch), json_string_value(json_object_get(ch, "status")),
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
	       cli_measured_word(host));
	json_t *cal = json_object_get(s, "model_calibration");
	if (json_is_object(cal))
		printf("CPU model calibration: %s: %s\n",
		       json_string_value(json_object_get(cal, "state")),
		       json_string_value(json_object_get(cal, "detail")));
	json_t *rest = json_object_get(cal, "rest");
	if (json_is_object(rest) && json_is_object(json_object_get(rest, "fit")))
		printf("Rest-of-machine model (estimated): %s: %s\n",
		       json_string_value(json_object_get(rest, "state")),
		       json_string_value(json_object_get(rest, "detail")));
	json_decref(s);
	return 0;
}
