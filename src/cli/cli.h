/* The energy CLI: subcommands share the connection to energyd. */
#ifndef ENERGY_CLI_H
#define ENERGY_CLI_H

#include "energy.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

struct cli {
	const char *socket; /* --socket, or NULL for the default search */
};

/* GET path from energyd as JSON; on failure prints why to stderr and returns NULL. When quiet,
 * connection failures print nothing. */
json_t *cli_get(struct cli *cli, const char *path, bool quiet);
/* "12.3 kJ", "450 mJ" … */
void cli_format_joules(double j, char *buf, size_t len);
void cli_format_watts(double w, char *buf, size_t len);
/* "1.234 g", "12.345 mg" … of CO2eq. */
void cli_format_grams(double g, char *buf, size_t len);
/* Emissions and cost next to joules (host.emissions_g, host.cost, host.currency and the carbon
 * summary of /now or /energy), one line each, to out; "since" says over what. */
void cli_print_carbon(FILE *out, json_t *answer, const char *since);

int cli_status(struct cli *cli, int argc, char **argv);
int cli_sources(struct cli *cli, int argc, char **argv);
int cli_run(struct cli *cli, int argc, char **argv);
int cli_export(struct cli *cli, int argc, char **argv);

#endif
