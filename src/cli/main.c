/* energy: the command-line client of energyd. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: energy [--socket PATH] COMMAND [ARGS]\n"
	    "       energy --help | --version\n\n"
	    "Commands:\n"
	    "  status            channels with power and energy, the host total and its coverage\n"
	    "  sources           every sensor family probed: found, or why not and what to do\n"
	    "  run [--json] -- CMD [ARGS...]\n"
	    "                    run a command and report the energy it took, and its own share\n"
	    "  export --from T [--to T] [--step S] [--tier 1s|1m|1h] [--format csv|json]\n"
	    "                    the long-term record per step (T: Unix seconds or ISO 8601)\n"
	    "  watch [--interval S] [--top N]\n"
	    "                    live view: channels, host total, top processes; q quits\n\n"
	    "energyd is found at --socket PATH (unix:PATH or HOST:PORT), $ENERGYD_SOCKET,\n"
	    "%s, then $XDG_RUNTIME_DIR/energyd.sock or /tmp/energyd-UID.sock.\n",
	    ENERGY_SYSTEM_SOCKET);
}

void cli_format_joules(double j, char *buf, size_t len)
{
	double a = j < 0 ? -j : j;
	if (a >= 1e6)
		snprintf(buf, len, "%.3f MJ", j / 1e6);
	else if (a >= 1e3)
		snprintf(buf, len, "%.3f kJ", j / 1e3);
	else if (a >= 1 || a == 0)
		snprintf(buf, len, "%.3f J", j);
	else
		snprintf(buf, len, "%.3f mJ", j * 1e3);
}

void cli_format_watts(double w, char *buf, size_t len)
{
	if (w >= 1e3)
		snprintf(buf, len, "%.3f kW", w / 1e3);
	else
		snprintf(buf, len, "%.2f W", w);
}

void cli_format_reading(json_t *o, char w[32], char j[32])
{
	json_t *watts = json_object_get(o, "watts");
	snprintf(w, 32, "-");
	if (json_is_number(watts))
		cli_format_watts(json_number_value(watts), w, 32);
	cli_format_joules(json_number_value(json_object_get(o, "joules")), j, 32);
}

const char *cli_measured_word(json_t *o)
{
	return json_is_true(json_object_get(o, "measured")) ? "measured" : "estimated";
}

void cli_format_grams(double g, char *buf, size_t len)
{
	if (g >= 1e3)
		snprintf(buf, len, "%.3f kg", g / 1e3);
	else if (g >= 1 || g == 0)
		snprintf(buf, len, "%.3f g", g);
	else if (g >= 1e-3)
		snprintf(buf, len, "%.3f mg", g * 1e3);
	else
		snprintf(buf, len, "%.3f µg", g * 1e6);
}

void cli_print_carbon(FILE *out, json_t *answer, const char *since)
{
	json_t *host = json_object_get(answer, "host"), *carbon = json_object_get(answer, "carbon");
	json_t *grams = json_object_get(host, "emissions_g"), *cost = json_object_get(host, "cost");
	char g[32], what[256] = "no carbon intensity known";
	if (json_is_object(carbon)) {
		json_t *i = json_object_get(carbon, "intensity_g_per_kwh");
		json_t *age = json_object_get(carbon, "age_s");
		char agebuf[64] = "";
		if (json_is_number(age))
			snprintf(agebuf, sizeof(agebuf), ", %.0f min old",
			         json_number_value(age) / 60);
		const char *provider = json_string_value(json_object_get(carbon, "provider"));
		const char *zone = json_string_value(json_object_get(carbon, "zone"));
		char ibuf[64] = "no value yet";
		if (json_is_number(i))
			snprintf(ibuf, sizeof(ibuf), "now %.1f g/kWh", json_number_value(i));
		snprintf(what, sizeof(what), "%s%s%s: %s%s, estimated", provider ? provider : "?",
		         zone && *zone ? " " : "", zone ? zone : "", ibuf, agebuf);
	}
	if (json_is_number(grams)) {
		cli_format_grams(json_number_value(grams), g, sizeof(g));
		fprintf(out, "Emissions: %s CO₂e %s (%s)\n", g, since, what);
	} else {
		fprintf(out, "Emissions: unknown (%s)\n", what);
	}
	if (json_is_number(cost))
		fprintf(out, "Cost:      %.6f %s %s\n", json_number_value(cost),
		        json_string_value(json_object_get(host, "currency")), since);
	json_t *err = json_object_get(carbon, "error");
	if (json_is_string(err))
		fprintf(out, "Carbon provider error: %s (keeping the last good value)\n",
		        json_string_value(err));
}

json_t *cli_get(struct cli *cli, const char *path, bool quiet)
{
	struct energy_client *c;
	int rc = energy_client_open(cli->socket, &c);
	if (rc < 0) {
		if (!quiet)
			fprintf(stderr, "energy: bad address '%s': %s\n", cli->socket,
			        strerror(-rc));
		return NULL;
	}
	int status;
	char *body;
	rc = energy_client_request(c, "GET", path, NULL, &status, &body);
	if (rc < 0) {
		if (!quiet)
			fprintf(
			    stderr,
			    "energy: cannot reach energyd at %s: %s\n"
			    "Start it (energyd, or as root for RAPL access) or point --socket / "
			    "ENERGYD_SOCKET at it.\n",
			    energy_client_address(c), strerror(-rc));
		energy_client_close(c);
		return NULL;
	}
	energy_client_close(c);
	json_error_t jerr;
	json_t *o = json_loads(body, 0, &jerr);
	if (!o || status != 200) {
		const char *msg = o ? json_string_value(json_object_get(o, "error")) : NULL;
		fprintf(stderr, "energy: %s answered %d: %s\n", path, status,
		        msg ? msg : (o ? body : jerr.text));
		json_decref(o);
		o = NULL;
	}
	free(body);
	return o;
}

int main(int argc, char **argv)
{
	struct cli cli = {0};
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			cli.socket = argv[++i];
		} else if (strncmp(argv[i], "--socket=", 9) == 0) {
			cli.socket = argv[i] + 9;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("energy %s\n", ENERGY_VERSION);
			return 0;
		} else {
			fprintf(stderr, "energy: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i];
	if (strcmp(cmd, "status") == 0)
		return cli_status(&cli, argc - i, argv + i);
	if (strcmp(cmd, "sources") == 0)
		return cli_sources(&cli, argc - i, argv + i);
	if (strcmp(cmd, "run") == 0)
		return cli_run(&cli, argc - i, argv + i);
	if (strcmp(cmd, "export") == 0)
		return cli_export(&cli, argc - i, argv + i);
	if (strcmp(cmd, "watch") == 0)
		return cli_watch(&cli, argc - i, argv + i);
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "energy: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
