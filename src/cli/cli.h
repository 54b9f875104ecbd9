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
/* A channel or host object of /now: its "watts" into w ("-" when unknown) and its "joules"
 * into j. */
void cli_format_reading(json_t *o, char w[32], char j[32]);
/* "measured" or "estimated", from the object's "measured". */
const char *cli_measured_word(json_t *o);
/* "1.234 g", "12.345 mg" … of CO₂e (printed as "1.234 g CO₂e"). */
void cli_format_grams(double g, char *buf, size_t len);
/* Emissions and cost next to joules (host.emissions_g, host.cost, host.currency and the carbon
 * summary of /now or /energy), one line each, to out; "since" says over what. */
void cli_print_carbon(FILE *out, json_t *answer, const char *since);

int cli_status(struct cli *cli, int argc, char **argv);
int cli_sources(struct cli *cli, int argc, char **argv);
int cli_run(struct cli *cli, int argc, char **argv);
int cli_export(struct cli *cli, int argc, char **argv);
int cli_watch(struct cli *cli, int argc, char **argv);

/* The command's own share for `energy run` (share.c). */
int share_watch(struct cli *cli, int pid);
json_t *share_fetch(struct cli *cli, int watch_id, double t0, double t1);
void share_unwatch(struct cli *cli, int watch_id);
int share_read_cpu(const char *proc_root, uint64_t *busy, uint64_t *total);
/* The command's share estimated in-process, with energyd's attribution arithmetic (split.h):
 * host_joules over the run, the command's CPU seconds, the machine's busy and total jiffies. */
json_t *share_in_process(double host_joules, double own_cpu_s, uint64_t busy_ticks,
                         uint64_t total_ticks);

#endif
