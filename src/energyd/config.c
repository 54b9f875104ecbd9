#define _GNU_SOURCE
#include "config.h"
#include "energy.h"
#include "http.h"
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_LINE_MAX 4096

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int config_parse_string(const char *text, config_entry_fn fn, void *ctx, char *err, size_t errlen)
{
	char section[128] = "";
	int lineno = 0;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		lineno++;
		if (len >= CONFIG_LINE_MAX) {
			snprintf(err, errlen, "%d: line longer than %d characters", lineno,
			         CONFIG_LINE_MAX);
			return -1;
		}
		char buf[CONFIG_LINE_MAX];
		memcpy(buf, p, len);
		buf[len] = '\0';
		p = nl ? nl + 1 : p + len;

		char *hash = strchr(buf, '#');
		if (hash)
			*hash = '\0';
		char *line = trim(buf);
		if (*line == '\0')
			continue;
		if (*line == '[') {
			char *close = strchr(line, ']');
			if (!close || *trim(close + 1) != '\0') {
				snprintf(err, errlen, "%d: malformed section header '%s'", lineno,
				         line);
				return -1;
			}
			*close = '\0';
			char *name = trim(line + 1);
			if (!*name || strlen(name) >= sizeof(section)) {
				snprintf(err, errlen, "%d: bad section name", lineno);
				return -1;
			}
			strcpy(section, name);
			continue;
		}
		char *eq = strchr(line, '=');
		if (!eq) {
			snprintf(err, errlen, "%d: expected 'key = value', got '%s'", lineno, line);
			return -1;
		}
		*eq = '\0';
		char *key = trim(line), *value = trim(eq + 1);
		if (!*key) {
			snprintf(err, errlen, "%d: missing key before '='", lineno);
			return -1;
		}
		if (!*section) {
			snprintf(err, errlen, "%d: '%s' outside a [section]", lineno, key);
			return -1;
		}
		char msg[CONFIG_ERROR_MAX] = "";
		if (fn(ctx, section, key, value, msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "%d: %s", lineno, msg);
			return -1;
		}
	}
	return 0;
}

int config_parse_file(const char *path, config_entry_fn fn, void *ctx, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char *text = NULL;
	size_t cap = 0, len = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > (16u << 20)) {
				free(text);
				fclose(f);
				snprintf(err, errlen, "%s: larger than 16 MiB", path);
				return -1;
			}
			char *nt = realloc(text, cap);
			if (!nt) {
				free(text);
				fclose(f);
				snprintf(err, errlen, "%s: out of memory", path);
				return -1;
			}
			text = nt;
		}
		size_t n = fread(text + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	text[len] = '\0';
	if (strlen(text) != len) {
		free(text);
		snprintf(err, errlen, "%s: contains a NUL byte: not a text file", path);
		return -1;
	}
	char msg[CONFIG_ERROR_MAX];
	int rc = config_parse_string(text, fn, ctx, msg, sizeof(msg));
	free(text);
	if (rc < 0)
		snprintf(err, errlen, "%s:%s", path, msg);
	return rc;
}

/* ---- options ---------------------------------------------------------------------------- */

enum opt_type {
	OPT_PATH,
	OPT_LISTEN,
	OPT_SECONDS,
	OPT_SECONDS_OR_0, /* 0 allowed: off */
	OPT_WATTS,
	OPT_NAME,
	OPT_FLAG,
	OPT_RETENTION,
	OPT_DEVICE,
	OPT_COUNT,
	OPT_SWITCH,
	OPT_HWPC_CGROUP
};

struct opt {
	const char *name;
	enum opt_type type;
	size_t offset;   /* of the value in struct energyd_options */
	const char *arg; /* the value's name in --help ("PATH"), NULL for flags */
	const char *help;
};

#define OFF(f) offsetof(struct energyd_options, f)

static const struct opt opts[] = {
    {"listen", OPT_LISTEN, OFF(listen), "ADDR",
     "where to serve the API: unix:PATH or 127.0.0.1:PORT (loopback only); repeatable. "
     "Default: unix:" ENERGY_SYSTEM_SOCKET " as root, else $XDG_RUNTIME_DIR/energyd.sock or "
     "/tmp/energyd-UID.sock"},
    {"interval", OPT_SECONDS, OFF(interval_s), "SECONDS", "sample interval (default 0.1)"},
    {"min-interval", OPT_SECONDS, OFF(min_interval_s), "SECONDS",
     "floor of the sample interval (default 0.01; only root may lower it)"},
    {"history", OPT_SECONDS, OFF(history_s), "SECONDS",
     "full-rate history kept in memory (default and minimum 900)"},
    {"state-dir", OPT_PATH, OFF(state_dir), "DIR",
     "state directory (default /var/lib/energyd as root, else ~/.local/state/energyd)"},
    {"config", OPT_PATH, OFF(config_path), "FILE", "read options from this INI file"},
    {"user", OPT_NAME, OFF(user), "NAME",
     "account to drop to when started as root (default energyd when that account exists, "
     "else nobody)"},
    {"sysfs-root", OPT_PATH, OFF(sysfs_root), "DIR", "where sysfs is (default /sys)"},
    {"proc-root", OPT_PATH, OFF(proc_root), "DIR", "where procfs is (default /proc)"},
    {"dev-root", OPT_PATH, OFF(dev_root), "DIR", "where device nodes are (default /dev)"},
    {"model-idle-watts", OPT_WATTS, OFF(model_idle_watts), "W",
     "CPU model: the whole machine's CPU power at idle (default 0.74 W per CPU)"},
    {"model-max-watts", OPT_WATTS, OFF(model_max_watts), "W",
     "CPU model: the CPU power at full load (default 3.5 W per CPU)"},
    {"model-fit", OPT_PATH, OFF(model_fit), "FILE|off",
     "CPU model: a calibration to use when the state directory holds none (absolute path; "
     "default when not root: the system service's, /var/lib/energyd/cpu-model.json)"},
    {"store", OPT_PATH, OFF(store_path), "FILE|off|try[:FILE]",
     "the long-term record (SQLite; default STATE-DIR/energy.db; off: none; try or try:FILE: "
     "start even when it cannot be opened)"},
    {"store-batch", OPT_SECONDS, OFF(store.batch_s), "SECONDS",
     "write to the record this often (default 5; a crash loses at most this much)"},
    {"store-memory", OPT_SECONDS, OFF(store.memory_s), "SECONDS",
     "data held in memory while the record cannot be written (default 86400)"},
    {"store-retry", OPT_SECONDS, OFF(store.retry_s), "SECONDS",
     "retry a failing record this often (default 5)"},
    {"store-keep-1s", OPT_RETENTION, OFF(store.keep_s[0]), "DURATION",
     "keep per-second rows this long (default 1d; s, m, h, d suffixes; forever)"},
    {"store-keep-1m", OPT_RETENTION, OFF(store.keep_s[1]), "DURATION",
     "keep per-minute rows this long (default 31d)"},
    {"store-keep-1h", OPT_RETENTION, OFF(store.keep_s[2]), "DURATION",
     "keep per-hour rows this long (default forever)"},
    {"mcp", OPT_DEVICE, OFF(mcp), "DEVICE",
     "MCP39F511N wall meter on this serial device (e.g. /dev/ttyACM0); repeatable. Default: "
     "every USB device 04d8:00dd found under sysfs"},
    {"nvml-lib", OPT_PATH, OFF(nvml_lib), "PATH",
     "NVIDIA management library to load (default libnvidia-ml.so.1)"},
    {"msr-vendor", OPT_NAME, OFF(msr_vendor), "intel|amd",
     "MSR RAPL register set (default: from /proc/cpuinfo)"},
    {"perf-probe", OPT_SECONDS_OR_0, OFF(perf_probe_s), "SECONDS",
     "perf power PMU: not used when none of its counters moves this long after opening (a "
     "virtual machine's stand-in; default 0.05, 0 to 1; 0: not checked)"},
    {"host-meter", OPT_NAME, OFF(host_meter), "CHANNEL",
     "channel that measures the whole machine (e.g. mcp:ttyACM0:1): the host total"},
    {"scan-interval", OPT_SECONDS, OFF(scan_interval_s), "SECONDS",
     "attribution: full process and cgroup scans at most this often (default 1)"},
    {"attrib-batch", OPT_SECONDS, OFF(attrib_batch_s), "SECONDS",
     "attribution: split the new samples this often while no watch is alive (default 1; "
     "between the sample interval and the scan interval)"},
    {"cgroup-root", OPT_PATH, OFF(cgroup_root), "DIR",
     "cgroup v2 root (default SYSFS/fs/cgroup, or its unified/ on hybrid systems)"},
    {"attribute-dram", OPT_NAME, OFF(attribute_dram), "cpu-time|none",
     "attribution: split dram energy by CPU time (default) or leave it unattributed"},
    {"hwpc", OPT_SWITCH, OFF(hwpc.on), "on|off",
     "attribution: split watches by a model of hardware counters learned against RAPL "
     "(hwpc-model) where the CPU has counters (default on)"},
    {"hwpc-error-window", OPT_COUNT, OFF(hwpc.error_window), "N",
     "attribution: windows of 1 s in the hwpc-model's history and error window (default 60, "
     "8 to 600)"},
    {"hwpc-cgroups", OPT_COUNT, OFF(hwpc.cgroups), "N",
     "attribution: cgroup watches counted by the hwpc-model at most (default 16, 1 to 64; "
     "3 descriptors per online CPU each, at most 384 in all)"},
    {"hwpc-cgroup", OPT_HWPC_CGROUP, OFF(hwpc), "PATH",
     "attribution: open the hardware counters of this cgroup v2 path (under the cgroup root) "
     "as root before the privilege drop, for its cgroup watches; repeatable (at most 16)"},
    {"hwpc-tdp-watts", OPT_WATTS, OFF(hwpc.tdp_w), "W",
     "attribution: bound of the hwpc-model's static power (default: the packages' powercap "
     "power limits)"},
    {"connections-per-user", OPT_COUNT, OFF(conns_per_user), "N",
     "open API connections per local user; TCP clients share one count (default 16)"},
    {"request-timeout", OPT_SECONDS, OFF(request_timeout_s), "SECONDS",
     "close a connection without complete request headers this long after it was "
     "accepted, or idle this long (default 5)"},
    {"watches-per-user", OPT_COUNT, OFF(watches_per_user), "N",
     "watches one user may hold, ended ones included (default 32; root: no quota)"},
    {"heavy-queries", OPT_COUNT, OFF(heavy_queries), "N",
     "history, runs, longterm and users queries answered at once; more get 503 (default 2)"},
    {"http-threads", OPT_COUNT, OFF(http_threads), "N",
     "threads answering API requests on each listener (default 4, 1 to 16); event streams "
     "hold none of them while they wait"},
    {"sandbox", OPT_SWITCH, OFF(sandbox), "on|off",
     "after the privilege drop: no_new_privs, no capabilities and a seccomp filter "
     "(default on)"},
    /* Section [influxdb] of the file: key KEY there is the option influxdb-KEY. */
    {"influxdb-url", OPT_PATH, OFF(influxdb.url), "URL",
     "write to InfluxDB at this URL (e.g. http://127.0.0.1:8086; default: no output)"},
    {"influxdb-database", OPT_NAME, OFF(influxdb.database), "NAME",
     "InfluxDB 1.x: the database (/write?db=)"},
    {"influxdb-bucket", OPT_NAME, OFF(influxdb.bucket), "NAME",
     "InfluxDB 2.x: the bucket (/api/v2/write, with influxdb-org)"},
    {"influxdb-org", OPT_NAME, OFF(influxdb.org), "NAME", "InfluxDB 2.x: the organisation"},
    {"influxdb-token-file", OPT_PATH, OFF(influxdb.token_file), "FILE",
     "file whose first line is the token (Authorization: Token), read before the drop"},
    {"influxdb-interval-s", OPT_SECONDS, OFF(influxdb.interval_s), "SECONDS",
     "one batch of points this often (default 10)"},
    {"influxdb-memory-s", OPT_SECONDS, OFF(influxdb.memory_s), "SECONDS",
     "data held while InfluxDB is away; then the oldest batch is dropped (default 3600)"},
    {"help", OPT_FLAG, OFF(help), NULL, "show this help"},
    {"version", OPT_FLAG, OFF(version), NULL, "show the version"},
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

void options_defaults(struct energyd_options *o)
{
	memset(o, 0, sizeof(*o));
	strcpy(o->sysfs_root, "/sys");
	strcpy(o->proc_root, "/proc");
	strcpy(o->dev_root, "/dev");
	o->interval_s = 0.1;
	o->min_interval_s = 0.01;
	o->perf_probe_s = SOURCE_PERF_PROBE_DEFAULT_S;
	o->history_s = 900;
	store_options_defaults(&o->store);
	carbon_config_defaults(&o->carbon);
	influx_config_defaults(&o->influxdb);
	o->scan_interval_s = 1.0;
	o->attrib_batch_s = 1.0;
	strcpy(o->attribute_dram, "cpu-time");
	o->conns_per_user = 16;
	o->request_timeout_s = 5.0;
	o->watches_per_user = 32;
	o->hwpc.on = true;
	o->hwpc.error_window = 60;
	o->hwpc.cgroups = HWPC_CGROUPS_DEFAULT;
	o->heavy_queries = 2;
	o->http_threads = HTTP_DEFAULT_THREADS;
	o->sandbox = true;
}

/* "forever", or a duration: seconds with an optional s, m, h or d suffix, at least an hour. */
static int parse_retention(const char *value, double *out)
{
	if (strcmp(value, "forever") == 0) {
		*out = 0;
		return 0;
	}
	char num[64];
	size_t len = strlen(value);
	if (len == 0 || len >= sizeof(num))
		return -EINVAL;
	double unit = 1;
	const char *units = "smhd";
	const double scale[] = {1, 60, 3600, 86400};
	const char *u = strchr(units, value[len - 1]);
	memcpy(num, value, len + 1);
	if (u && *u) {
		unit = scale[u - units];
		num[len - 1] = '\0';
	}
	double d;
	if (energy_parse_double(num, &d) < 0 || d * unit < 3600 || d * unit > 100 * 366 * 86400.0)
		return -EINVAL;
	*out = d * unit;
	return 0;
}

static const struct opt *opt_find(const char *name)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		const char *a = opts[i].name, *b = name;
		while (*a && (*a == *b || (*a == '-' && *b == '_')))
			a++, b++;
		if (!*a && !*b)
			return &opts[i];
	}
	return NULL;
}

static int opt_set(struct energyd_options *o, const struct opt *opt, const char *value, char *err,
                   size_t errlen)
{
	char *field = (char *)o + opt->offset;
	double d;
	switch (opt->type) {
	case OPT_PATH:
	case OPT_NAME: {
		size_t cap = opt->type == OPT_NAME ? sizeof(o->user) : CONFIG_PATH_MAX;
		if (!*value || strlen(value) >= cap) {
			snprintf(err, errlen, "%s: %s", opt->name, *value ? "too long" : "empty");
			return -1;
		}
		strcpy(field, value);
		return 0;
	}
	case OPT_LISTEN:
		if (o->n_listen >= CONFIG_LISTEN_MAX) {
			snprintf(err, errlen, "listen: at most %d addresses", CONFIG_LISTEN_MAX);
			return -1;
		}
		if (!*value || strlen(value) >= CONFIG_PATH_MAX) {
			snprintf(err, errlen, "listen: bad address '%s'", value);
			return -1;
		}
		strcpy(o->listen[o->n_listen++], value);
		return 0;
	case OPT_SECONDS_OR_0:
		if (energy_parse_double(value, &d) == 0 && d == 0) {
			*(double *)field = 0;
			return 0;
		}
		/* fall through */
	case OPT_SECONDS:
	case OPT_WATTS:
		if (energy_parse_double(value, &d) < 0 || d <= 0 ||
		    d > (opt->type == OPT_WATTS ? 100000 : 31536000)) {
			snprintf(err, errlen, "%s: '%s' is not %sa positive number of %s",
			         opt->name, value, opt->type == OPT_SECONDS_OR_0 ? "0 or " : "",
			         opt->type == OPT_WATTS ? "watts" : "seconds");
			return -1;
		}
		*(double *)field = d;
		return 0;
	case OPT_RETENTION:
		if (parse_retention(value, (double *)field) < 0) {
			snprintf(err, errlen,
			         "%s: '%s' is not a duration of at least an hour (e.g. 86400, 36h, "
			         "31d) or 'forever'",
			         opt->name, value);
			return -1;
		}
		return 0;
	case OPT_DEVICE:
		if (o->n_mcp >= CONFIG_MCP_MAX) {
			snprintf(err, errlen, "%s: at most %d devices", opt->name, CONFIG_MCP_MAX);
			return -1;
		}
		if (!*value || strlen(value) >= CONFIG_PATH_MAX) {
			snprintf(err, errlen, "%s: bad device path '%s'", opt->name, value);
			return -1;
		}
		strcpy(o->mcp[o->n_mcp++], value);
		return 0;
	case OPT_HWPC_CGROUP:
		if (o->hwpc.n_preopen >= HWPC_PREOPEN_MAX) {
			snprintf(err, errlen, "%s: at most %d cgroups", opt->name,
			         HWPC_PREOPEN_MAX);
			return -1;
		}
		if (value[0] != '/' || strstr(value, "..") ||
		    strlen(value) >= HWPC_CGROUP_PATH_MAX) {
			snprintf(
			    err, errlen,
			    "%s '%s': expected an absolute path under the cgroup root, without "
			    "'..'",
			    opt->name, value);
			return -1;
		}
		strcpy(o->hwpc.preopen[o->hwpc.n_preopen++], value);
		return 0;
	case OPT_COUNT: {
		uint64_t v;
		if (energy_parse_u64(value, &v) < 0 || v < 1 || v > 4096) {
			snprintf(err, errlen, "%s: '%s' is not a whole number from 1 to 4096",
			         opt->name, value);
			return -1;
		}
		*(int *)field = (int)v;
		return 0;
	}
	case OPT_SWITCH:
		if (strcmp(value, "on") && strcmp(value, "off")) {
			snprintf(err, errlen, "%s: expected on or off", opt->name);
			return -1;
		}
		*(bool *)field = strcmp(value, "on") == 0;
		return 0;
	case OPT_FLAG:
		if (*value && strcmp(value, "true") && strcmp(value, "1")) {
			snprintf(err, errlen, "%s: expected true", opt->name);
			return -1;
		}
		*(bool *)field = true;
		return 0;
	}
	return -1;
}

static int config_entry(void *ctx, const char *section, const char *key, const char *value,
                        char *err, size_t errlen)
{
	struct energyd_options *o = ctx;
	if (strcmp(section, "carbon") == 0)
		return carbon_config_set(&o->carbon, key, value, err, errlen);
	char prefixed[96];
	if (strcmp(section, "influxdb") == 0) {
		snprintf(prefixed, sizeof(prefixed), "influxdb-%s", key);
		const struct opt *opt = opt_find(prefixed);
		if (!opt) {
			snprintf(err, errlen,
			         "unknown key '%s' in [influxdb] (url, database, bucket, org, "
			         "token_file, interval_s, memory_s)",
			         key);
			return -1;
		}
		return opt_set(o, opt, value, err, errlen);
	}
	if (strcmp(section, "energyd") != 0) {
		snprintf(err, errlen,
		         "unknown section [%s] (options go in [energyd], [carbon] or [influxdb])",
		         section);
		return -1;
	}
	const struct opt *opt = opt_find(key);
	if (!opt || opt->type == OPT_FLAG || strcmp(opt->name, "config") == 0) {
		snprintf(err, errlen, "unknown key '%s' in [energyd] (see energyd --help)", key);
		return -1;
	}
	return opt_set(o, opt, value, err, errlen);
}

/* A scan per sample at most; an attribution batch per sample at most, and one per scan at least. */
static void clamp_intervals(struct energyd_options *o)
{
	if (o->scan_interval_s < o->interval_s)
		o->scan_interval_s = o->interval_s;
	if (o->attrib_batch_s > o->scan_interval_s)
		o->attrib_batch_s = o->scan_interval_s;
	if (o->attrib_batch_s < o->interval_s)
		o->attrib_batch_s = o->interval_s;
}

int options_parse(struct energyd_options *o, int argc, char **argv, bool is_root, char *err,
                  size_t errlen)
{
	/* First the config file, so that flags override it. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--config") == 0 && i + 1 < argc)
			snprintf(o->config_path, sizeof(o->config_path), "%s", argv[i + 1]);
		else if (strncmp(a, "--config=", 9) == 0)
			snprintf(o->config_path, sizeof(o->config_path), "%s", a + 9);
	}
	if (o->config_path[0]) {
		if (config_parse_file(o->config_path, config_entry, o, err, errlen) < 0)
			return -1;
	}
	bool flag_listen = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
			return -1;
		}
		char name[64];
		const char *value = NULL, *eq = strchr(a, '=');
		size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (nlen >= sizeof(name)) {
			snprintf(err, errlen, "unknown option '%s'", a);
			return -1;
		}
		memcpy(name, a + 2, nlen);
		name[nlen] = '\0';
		const struct opt *opt = opt_find(name);
		if (!opt) {
			snprintf(err, errlen, "unknown option '--%s' (see --help)", name);
			return -1;
		}
		if (opt->type == OPT_FLAG) {
			value = eq ? eq + 1 : "";
		} else if (eq) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			snprintf(err, errlen, "--%s needs a value", opt->name);
			return -1;
		}
		if (opt->type == OPT_LISTEN && !flag_listen) {
			/* Listen flags replace the file's addresses rather than add to them. */
			flag_listen = true;
			o->n_listen = 0;
		}
		char msg[CONFIG_ERROR_MAX];
		if (opt_set(o, opt, value, msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "--%s", msg);
			return -1;
		}
	}
	if (o->min_interval_s < 0.01 && !is_root) {
		snprintf(err, errlen,
		         "--min-interval %.4g: only root may lower the floor below 0.01 s "
		         "(fast RAPL readings can leak secrets, CVE-2020-8694)",
		         o->min_interval_s);
		return -1;
	}
	if (o->interval_s < o->min_interval_s) {
		snprintf(err, errlen, "--interval %.4g is below the floor of %.4g s", o->interval_s,
		         o->min_interval_s);
		return -1;
	}
	if (o->history_s < 900)
		o->history_s = 900;
	if (o->msr_vendor[0] && strcmp(o->msr_vendor, "intel") && strcmp(o->msr_vendor, "amd")) {
		snprintf(err, errlen, "--msr-vendor '%s': expected intel or amd", o->msr_vendor);
		return -1;
	}
	if (o->perf_probe_s < 0 || o->perf_probe_s > 1) {
		snprintf(err, errlen, "--perf-probe %.4g: give 0 to 1 seconds", o->perf_probe_s);
		return -1;
	}
	if (o->store.batch_s < 0.1 || o->store.batch_s > 300) {
		snprintf(err, errlen, "--store-batch %.4g: give 0.1 to 300 seconds",
		         o->store.batch_s);
		return -1;
	}
	if (strcmp(o->attribute_dram, "cpu-time") != 0 && strcmp(o->attribute_dram, "none") != 0) {
		snprintf(err, errlen, "--attribute-dram '%s': expected cpu-time or none",
		         o->attribute_dram);
		return -1;
	}
	if (o->hwpc.error_window < 8 || o->hwpc.error_window > 600) {
		snprintf(err, errlen, "--hwpc-error-window %d: give 8 to 600 windows",
		         o->hwpc.error_window);
		return -1;
	}
	if (o->hwpc.cgroups > HWPC_CGROUPS_MAX) {
		snprintf(err, errlen, "--hwpc-cgroups %d: give 1 to %d cgroups", o->hwpc.cgroups,
		         HWPC_CGROUPS_MAX);
		return -1;
	}
	if (o->http_threads < HTTP_THREADS_MIN || o->http_threads > HTTP_THREADS_MAX) {
		snprintf(err, errlen, "--http-threads %d: give %d to %d threads", o->http_threads,
		         HTTP_THREADS_MIN, HTTP_THREADS_MAX);
		return -1;
	}
	if (influx_config_check(&o->influxdb, err, errlen) < 0)
		return -1;
	clamp_intervals(o);
	if (o->model_fit[0] && o->model_fit[0] != '/' && strcmp(o->model_fit, "off") != 0) {
		snprintf(err, errlen, "--model-fit '%s': expected an absolute path or off",
		         o->model_fit);
		return -1;
	}
	if (o->model_idle_watts > 0 && o->model_max_watts > 0 &&
	    o->model_max_watts < o->model_idle_watts) {
		snprintf(err, errlen, "--model-max-watts %.4g is below --model-idle-watts %.4g",
		         o->model_max_watts, o->model_idle_watts);
		return -1;
	}
	return 0;
}

void options_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: energyd [OPTIONS]\n\n"
	    "Samples the machine's energy sensors and serves the readings over HTTP.\n"
	    "Runs in the foreground, logs to stderr; SIGTERM or SIGINT stop it; SIGHUP does not.\n"
	    "Every option can also be set in the --config file, section [energyd].\n\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
		         opts[i].arg ? opts[i].arg : "");
		fprintf(out, "  %-26s %s\n", left, opts[i].help);
	}
}
