/*
 * energyd's options: command-line flags and the same keys in an INI-style config file
 * ([section], key = value, # comments). Every flag --NAME is the key NAME in section [energyd]
 * (NAME_WITH_UNDERSCORES works too). Flags given on the command line win over the file.
 */
#ifndef ENERGY_CONFIG_H
#define ENERGY_CONFIG_H

#include "carbon.h"
#include "hwpc.h"
#include "influx.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CONFIG_LISTEN_MAX 8
#define CONFIG_PATH_MAX   512
#define CONFIG_ERROR_MAX  512
#define CONFIG_MCP_MAX    8

struct energyd_options {
	char sysfs_root[CONFIG_PATH_MAX];
	char proc_root[CONFIG_PATH_MAX];
	char dev_root[CONFIG_PATH_MAX];
	char listen[CONFIG_LISTEN_MAX][CONFIG_PATH_MAX];
	int n_listen;
	double interval_s;     /* sampling interval */
	double min_interval_s; /* the floor; only root may lower it */
	double history_s;
	char state_dir[CONFIG_PATH_MAX];
	char config_path[CONFIG_PATH_MAX]; /* the config file read ("" for none) */
	char user[64];                     /* the account to drop to when started as root */
	double model_idle_watts;           /* 0: default per CPU */
	double model_max_watts;
	char model_fit[CONFIG_PATH_MAX];  /* a stored CPU model fit to fall back on, "off", or "" */
	char store_path[CONFIG_PATH_MAX]; /* "" or "try" = <state_dir>/energy.db, "off" = no store,
	                                   "try:FILE": FILE; try: may start degraded */
	/* batch, memory, retry and retention (store.h; 0 = for ever); main() sets store.path from
	 * store_path. */
	struct store_options store;
	char mcp[CONFIG_MCP_MAX][CONFIG_PATH_MAX]; /* MCP39F511N serial devices (--mcp) */
	int n_mcp;
	char nvml_lib[CONFIG_PATH_MAX];    /* "" = libnvidia-ml.so.1 from the library path */
	char msr_vendor[64];               /* "intel", "amd" or "" (from cpuinfo) */
	double perf_probe_s;               /* source_config.perf_probe_s */
	char host_meter[64];               /* channel id that feeds the whole machine, or "" */
	struct carbon_config carbon;       /* section [carbon] (docs/carbon.md) */
	struct influx_config influxdb;     /* section [influxdb]: the options influxdb-KEY */
	double scan_interval_s;            /* attribution: full process scans at most this often */
	double attrib_batch_s;             /* attribution: the thread's batch period */
	char cgroup_root[CONFIG_PATH_MAX]; /* "" = <sysfs-root>/fs/cgroup (or its unified/) */
	char attribute_dram[64];           /* "cpu-time" or "none" */
	int conns_per_user;                /* docs/security.md: limits against one local user */
	double request_timeout_s;
	int watches_per_user;    /* quota of watches of each user but root */
	struct hwpc_config hwpc; /* the hardware-counter model (hwpc.h) */
	int heavy_queries;       /* heavy answers built at once (api.h heavy_max) */
	int http_threads;        /* libmicrohttpd's thread pool per listener (http.h) */
	bool sandbox;            /* no_new_privs, no capabilities, seccomp after the drop */
	bool help, version;
};

/* Callback for each "key = value" line; returns 0 or -1 with err filled (the parser adds the
 * file and line). */
typedef int (*config_entry_fn)(void *ctx, const char *section, const char *key, const char *value,
                               char *err, size_t errlen);

/* Parse INI text; on error -1 with "LINE: message" in err. */
int config_parse_string(const char *text, config_entry_fn fn, void *ctx, char *err, size_t errlen);
/* Parse a file; on error -1 with "PATH:LINE: message" in err. */
int config_parse_file(const char *path, config_entry_fn fn, void *ctx, char *err, size_t errlen);

void options_defaults(struct energyd_options *o);
/* Parse argv (flags override the config file named by --config). 0, or -1 with err filled. */
int options_parse(struct energyd_options *o, int argc, char **argv, bool is_root, char *err,
                  size_t errlen);
void options_usage(FILE *out);

#endif
