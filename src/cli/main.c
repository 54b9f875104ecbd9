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
	    "Usage: energy [--socket PATH] COMMAND [ARGS]\n\n"
	    "Commands:\n"
	    "  status            channels with power and energy, the host total and its coverage\n"
	    "  sources           every sensor family probed: found, or why not and what to do\n"
	    "  run [--json] -- CMD [ARGS...]\n"
	    "                    run a command and report the energy it took, and its own share\n"
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
