/*
 * energyd: opens every energy sensor it can (as root if started so), drops privileges, samples on
 * its own clock and serves the readings over HTTP until SIGTERM or SIGINT.
 */
#define _GNU_SOURCE
#include "api.h"
#include "snapshot.h"
#include "carbon.h"
#include "attrib.h"
#include "calib.h"
#include "config.h"
#include "energy.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "privileges.h"
#include "sampler.h"
#include "sandbox.h"
#include "source.h"
#include "record_carbon.h"
#include "store.h"

#include <errno.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENERGYD_ACCOUNT "energyd" /* the dedicated system account, when installed */

/* mkdir -p; created directories are chowned to owner when owner != -1. Returns 0 or -errno. */
static int make_dirs(const char *path, mode_t mode, uid_t owner, gid_t group, bool *created)
{
	char buf[CONFIG_PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	if (created)
		*created = false;
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, mode) == 0) {
			if (created)
				*created = true;
			if (owner != (uid_t)-1 && chown(buf, owner, group) < 0)
				return -errno;
		} else if (errno != EEXIST) {
			return -errno;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

static void default_state_dir(struct energyd_options *o, bool is_root)
{
	if (o->state_dir[0])
		return;
	if (is_root) {
		strcpy(o->state_dir, "/var/lib/energyd");
		return;
	}
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	if (xdg && *xdg)
		snprintf(o->state_dir, sizeof(o->state_dir), "%s/energyd", xdg);
	else if (home && *home)
		snprintf(o->state_dir, sizeof(o->state_dir), "%s/.local/state/energyd", home);
	else
		snprintf(o->state_dir, sizeof(o->state_dir), "/tmp/energyd-state-%u",
		         (unsigned)getuid());
}

static void default_listen(struct energyd_options *o, bool is_root)
{
	if (o->n_listen)
		return;
	if (is_root) {
		snprintf(o->listen[0], sizeof(o->listen[0]), "unix:%s", ENERGY_SYSTEM_SOCKET);
	} else {
		char path[CONFIG_PATH_MAX - 8];
		energy_user_socket_path(path, sizeof(path));
		snprintf(o->listen[0], sizeof(o->listen[0]), "unix:%s", path);
	}
	o->n_listen = 1;
}

/* cgroup v2: --cgroup-root, else SYSFS/fs/cgroup when it is a v2 mount, else its unified/
 * (hybrid systems); "" when neither has cgroup.controllers. */
static void default_cgroup_root(const struct energyd_options *o, char *buf, size_t len)
{
	if (o->cgroup_root[0]) {
		snprintf(buf, len, "%s", o->cgroup_root);
		return;
	}
	const char *cands[] = {"fs/cgroup", "fs/cgroup/unified"};
	for (size_t i = 0; i < 2; i++) {
		char probe[CONFIG_PATH_MAX + 64];
		snprintf(probe, sizeof(probe), "%s/%s/cgroup.controllers", o->sysfs_root, cands[i]);
		if (access(probe, F_OK) == 0) {
			snprintf(buf, len, "%s/%s", o->sysfs_root, cands[i]);
			return;
		}
	}
	buf[0] = '\0';
}

/* The account to drop to: --user, else the dedicated system account, else nobody (shared with
 * other daemons, so a warning). */
static const char *drop_user(const struct energyd_options *o)
{
	if (o->user[0])
		return o->user;
	if (getpwnam(ENERGYD_ACCOUNT))
		return ENERGYD_ACCOUNT;
	log_warn("no '" ENERGYD_ACCOUNT "' system account: dropping to nobody, which other daemons "
	         "may share; create the account (docs/security.md) or set --user");
	return "nobody";
}

/* Root keeps nothing after the drop: no capability in the bounding set, no way to gain
 * privileges through exec, and a syscall filter. */
static int harden_after_drop(const struct energyd_options *o, char *err, size_t errlen)
{
	if (!o->sandbox) {
		log_warn("--sandbox off: no seccomp filter");
		return 0;
	}
	return sandbox_apply(err, errlen);
}

/* Until SIGTERM or SIGINT; SIGHUP (a closed terminal, a reload by habit) only logs. */
static int wait_for_stop(const sigset_t *sigs)
{
	for (;;) {
		int sig = 0;
		if (sigwait(sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			return sig;
		log_info("SIGHUP: energyd does not reload its configuration; restart it to apply "
		         "changes. Still running.");
	}
}

/*
 * Work inside the state directory from now on, so that the record opens by a path relative to
 * it ("energy.db" and its -wal/-shm): after the privilege drop the account then needs rights
 * on the state directory only, not on every parent (a state directory under /root or a 0700
 * mktemp directory works as long as the account owns the directory itself). A relative --store
 * FILE is made absolute first: it was meant relative to where energyd started.
 */
static int state_dir_enter(struct energyd_options *o)
{
	if (o->store_path[0] && o->store_path[0] != '/' && strcmp(o->store_path, "off") != 0 &&
	    strcmp(o->store_path, "try") != 0) {
		bool try_ = strncmp(o->store_path, "try:", 4) == 0;
		const char *rel = o->store_path + (try_ ? 4 : 0);
		char cwd[CONFIG_PATH_MAX], abs[2 * CONFIG_PATH_MAX + 8];
		if (rel[0] != '/' && getcwd(cwd, sizeof(cwd))) {
			snprintf(abs, sizeof(abs), "%s%s/%s", try_ ? "try:" : "", cwd, rel);
			snprintf(o->store_path, sizeof(o->store_path), "%s", abs);
		}
	}
	if (chdir(o->state_dir) < 0) {
		int e = errno;
		log_err("cannot enter the state directory %s: %s", o->state_dir, strerror(e));
		return -e;
	}
	return 0;
}

/*
 * The record's path from --store: "" or "try" the state directory's energy.db (relative: see
 * state_dir_enter), "off" none, "try:FILE" or FILE that file. *may_degrade is true for the
 * "try" forms: energyd then starts even when the record cannot be opened (it keeps the data in
 * memory and retries, as it does when the record fails later).
 */
static void store_path_choose(const char *opt_path, char *path, size_t len, bool *may_degrade)
{
	*may_degrade = strcmp(opt_path, "try") == 0 || strncmp(opt_path, "try:", 4) == 0;
	if (!opt_path[0] || strcmp(opt_path, "try") == 0)
		snprintf(path, len, "energy.db");
	else if (strcmp(opt_path, "off") != 0)
		snprintf(path, len, "%s", opt_path + (strncmp(opt_path, "try:", 4) == 0 ? 4 : 0));
}

/*
 * Open the record now, as the account energyd runs as: a record that cannot open at start is a
 * configuration error (it would lose every restart's continuity), unless --store try said to
 * carry on. Returns false when energyd must not start.
 */
static bool store_open_at_start(struct store *store, const char *state_dir, bool may_degrade)
{
	if (store_flush(store, energy_wall_time()) == 0 || may_degrade)
		return true;
	struct store_info si;
	store_get_info(store, &si);
	if (si.status == STORE_OFF)
		return true;
	log_err("cannot open the long-term record %s%s%s: %s. energyd does not start without its "
	        "record: fix the cause (the state directory %s must be writable by the account "
	        "energyd runs as: chown it to that user, or choose another with --state-dir), or "
	        "start anyway with --store try (the record is retried; data waits in memory) or "
	        "--store off",
	        store->opt.path[0] == '/' ? "" : state_dir, store->opt.path[0] == '/' ? "" : "/",
	        store->opt.path, si.error[0] ? si.error : "unknown error", state_dir);
	return false;
}

/* Everything main() opens, in the order it opens it (static: the sensors' set and the
 * history are large). */
struct energyd {
	struct energyd_options opt;
	bool is_root;  /* started as root (then drops) */
	uid_t run_uid; /* the account energyd runs as after the drop */
	gid_t run_gid;
	char run_user[64]; /* its name */
	struct channel_set set;
	struct daemon d;
	struct api api;
	struct attrib attrib;
	struct calib calib;
	struct http_server http;
	struct sampler sampler;
	struct store store;
};

/* Who energyd will run as: the --user account when started as root, else the caller. An exit
 * code, or 0 to go on. */
static int choose_identity(struct energyd *e)
{
	char err[1024];
	e->run_uid = getuid();
	e->run_gid = getgid();
	if (e->is_root) {
		const char *user = drop_user(&e->opt);
		if (privileges_lookup(user, &e->run_uid, &e->run_gid, err, sizeof(err)) < 0)
			return log_fail(1, "%s", err);
		snprintf(e->run_user, sizeof(e->run_user), "%s", user);
	} else {
		struct passwd *pw = getpwuid(e->run_uid);
		snprintf(e->run_user, sizeof(e->run_user), "%s", pw ? pw->pw_name : "?");
		if (e->opt.user[0] && strcmp(e->opt.user, e->run_user) != 0)
			log_warn("--user %s ignored: not started as root", e->opt.user);
	}
	return 0;
}

/* The sensors, with what each family found in the log. */
static void open_sensors(struct energyd *e)
{
	const struct energyd_options *opt = &e->opt;
	const char *mcp_devices[CONFIG_MCP_MAX];
	for (int i = 0; i < opt->n_mcp; i++)
		mcp_devices[i] = opt->mcp[i];
	struct source_config scfg = {
	    .sysfs_root = opt->sysfs_root,
	    .proc_root = opt->proc_root,
	    .dev_root = opt->dev_root,
	    .model_idle_watts = opt->model_idle_watts,
	    .model_max_watts = opt->model_max_watts,
	    .mcp_devices = mcp_devices,
	    .n_mcp = opt->n_mcp,
	    .nvml_lib = opt->nvml_lib[0] ? opt->nvml_lib : NULL,
	    .msr_vendor = opt->msr_vendor[0] ? opt->msr_vendor : NULL,
	    .host_meter = opt->host_meter[0] ? opt->host_meter : NULL,
	    .perf_probe_s = opt->perf_probe_s,
	};
	struct daemon *d = &e->d;
	d->n_families = sources_open_all(&scfg, &e->set, d->families, DAEMON_FAMILIES_MAX);
	for (int i = 0; i < d->n_families; i++)
		log_info("source %s: %s%s%s", d->families[i].name,
		         family_status_name(d->families[i].status),
		         d->families[i].detail[0] ? ": " : "", d->families[i].detail);
	if (opt->host_meter[0] && !channel_set_has(&e->set, opt->host_meter))
		log_warn("--host-meter %s: no such channel; the host total uses the next rule",
		         opt->host_meter);
}

/* Everything that needs root, before the drop: sensors, token files, /proc and the cgroup
 * tree, the service manager's notification socket. An exit code, or 0 to go on. */
static int open_as_root(struct energyd *e)
{
	struct energyd_options *opt = &e->opt;
	char err[1024];
	int nrc = notify_open();
	if (nrc < 0)
		log_warn("cannot connect to the service manager at $NOTIFY_SOCKET: %s",
		         strerror(-nrc));
	open_sensors(e);
	/* A stored fit for model:cpu besides the state directory's: --model-fit, else, started
	 * as a user, the system service's. Opened now: its directory may be closed to the
	 * account energyd drops to. */
	const char *fit = strcmp(opt->model_fit, "off") == 0 ? NULL
	                  : opt->model_fit[0]                ? opt->model_fit
	                  : e->is_root                       ? NULL
	                                                     : CALIB_SYSTEM_FILE;
	calib_open(&e->calib, opt->proc_root, &e->set, fit);
	/* The carbon provider's token file may be readable by root only: read it now. */
	if (carbon_open(&opt->carbon, &e->d.carbon, err, sizeof(err)) < 0)
		return log_fail(2, "%s", err);
	/* The same for InfluxDB's token; the output thread starts after the drop. */
	if (influx_open(&opt->influxdb, &e->d.influx, err, sizeof(err)) < 0)
		return log_fail(2, "%s", err);
	/* Attribution reads /proc and the cgroup tree through descriptors opened now, so that
	 * fake trees under root-only directories keep working after the drop. */
	char cgroup_root[CONFIG_PATH_MAX + 32];
	default_cgroup_root(opt, cgroup_root, sizeof(cgroup_root));
	struct attrib_config acfg = {
	    .proc_root = opt->proc_root,
	    .cgroup_root = cgroup_root,
	    .scan_interval_s = opt->scan_interval_s,
	    .batch_s = opt->attrib_batch_s,
	    .dram_by_cpu = strcmp(opt->attribute_dram, "none") != 0,
	    .history_s = opt->history_s,
	    .watches_per_user = opt->watches_per_user,
	    .sysfs_root = opt->sysfs_root,
	    .hwpc = opt->hwpc,
	};
	if (attrib_open(&e->attrib, &acfg, err, sizeof(err)) < 0)
		return log_fail(1, "%s", err);
	return 0;
}

/* The state directory, the sockets' directories and the sockets. An exit code, or 0. */
static int open_sockets(struct energyd *e)
{
	const struct energyd_options *opt = &e->opt;
	char err[1024];
	int rc =
	    make_dirs(opt->state_dir, 0755, e->is_root ? e->run_uid : (uid_t)-1, e->run_gid, NULL);
	if (rc < 0)
		return log_fail(1, "cannot create state directory %s: %s", opt->state_dir,
		                strerror(-rc));
	const char *addrs[CONFIG_LISTEN_MAX];
	for (int i = 0; i < opt->n_listen; i++) {
		addrs[i] = opt->listen[i];
		const char *path = strncmp(addrs[i], "unix:", 5) == 0 ? addrs[i] + 5 : NULL;
		if (path) {
			char dir[CONFIG_PATH_MAX];
			snprintf(dir, sizeof(dir), "%s", path);
			bool created;
			/* A socket directory stays root's: the account energyd drops to must not
			 * be able to replace the socket (http.c refuses a directory others can
			 * write). The socket is left at exit and removed at the next start. */
			rc = make_dirs(dirname(dir), 0755, (uid_t)-1, (gid_t)-1, &created);
			if (rc < 0)
				return log_fail(1, "cannot create the directory of %s: %s", path,
				                strerror(-rc));
		}
	}
	if (http_listen(&e->http, addrs, opt->n_listen, err, sizeof(err)) < 0)
		return log_fail(1, "%s", err);
	/* The sockets' directories are made: from now on files are for energyd's group at most
	 * (the record: 0640). */
	umask(027);
	return 0;
}

/* Drop root (and, with the sandbox, the capability bounding set and most system calls). */
static int drop_root(struct energyd *e)
{
	char err[1024];
	struct energyd_options *opt = &e->opt;
	if (e->is_root && opt->sandbox && sandbox_drop_bounding_set(err, sizeof(err)) < 0)
		return log_fail(1, "%s", err);
	/* Last before the drop: relative paths given on the command line (sockets, devices)
	 * have been used from where energyd started. */
	if (state_dir_enter(opt) < 0)
		return 1;
	if (e->is_root) {
		if (privileges_drop(e->run_uid, e->run_gid, err, sizeof(err)) < 0)
			return log_fail(1, "%s", err);
		snprintf(e->d.privileges, sizeof(e->d.privileges),
		         "started as root, opened the sensors, then dropped to %s (uid %u)",
		         e->run_user, (unsigned)e->run_uid);
		log_info("dropped privileges to %s (uid %u, gid %u)", e->run_user,
		         (unsigned)e->run_uid, (unsigned)e->run_gid);
	} else {
		snprintf(e->d.privileges, sizeof(e->d.privileges),
		         "running as %s (uid %u): reads what this account may read", e->run_user,
		         (unsigned)e->run_uid);
	}
	if (harden_after_drop(opt, err, sizeof(err)) < 0)
		return log_fail(1, "%s", err);
	return 0;
}

/* The sampler and the record, and the daemon's parts for the routes. */
static int set_up_sampling(struct energyd *e)
{
	const struct energyd_options *opt = &e->opt;
	struct daemon *d = &e->d;
	d->set = &e->set;
	snprintf(d->state_dir, sizeof(d->state_dir), "%s", opt->state_dir);
	/* In the state directory, as the account energyd runs as: a stored fit for model:cpu,
	 * and model:rest added to the set, before the sampler sizes its history on the set. */
	calib_load(&e->calib, d);
	if (sampler_init(&e->sampler, &e->set, opt->interval_s, opt->history_s) < 0)
		return log_fail(1, "out of memory for %.0f s of history", opt->history_s);
	d->sampler = &e->sampler;
	d->attrib = &e->attrib;
	d->calib = &e->calib;
	gethostname(d->hostname, sizeof(d->hostname) - 1);
	d->uid = getuid();
	snprintf(d->user, sizeof(d->user), "%s", e->run_user);
	d->min_interval_s = opt->min_interval_s;
	d->history_s = opt->history_s;
	for (int i = 0; i < opt->n_listen; i++)
		d->listen[d->n_listen++] = opt->listen[i];
	e->api.d = d;
	e->api.heavy_max = opt->heavy_queries;

	struct store_options sopt = opt->store;
	bool store_may_degrade;
	store_path_choose(opt->store_path, sopt.path, sizeof(sopt.path), &store_may_degrade);
	if (store_init_sampler(&e->store, &sopt, &e->sampler) < 0)
		return log_fail(1, "cannot set up the long-term store");
	if (d->carbon && record_carbon_attach(&e->store, d->carbon) < 0)
		log_warn("store: too many channels to also record emissions and cost");
	/* Every user's attributed energy too (no rows while attribution is off). */
	store_set_users(&e->store, attrib_users_span, attrib_users_energy_at, &e->attrib);
	d->store = &e->store;
	return store_open_at_start(&e->store, opt->state_dir, store_may_degrade) ? 0 : 1;
}

/* A first sample, then the threads, then the sockets answer. */
static int start_threads(struct energyd *e)
{
	char err[1024];
	sampler_tick(&e->sampler); /* a first sample before anyone can ask */
	if (store_start(&e->store, &e->sampler) < 0)
		return log_fail(1, "cannot start the store thread");
	/* Each tick resumes the event streams waiting for it (none waits: one atomic add). */
	e->sampler.tick_hook = http_wake_streams;
	e->sampler.tick_hook_ctx = &e->http;
	if (sampler_start(&e->sampler) < 0)
		return log_fail(1, "cannot start the sampler thread");
	/* The calibration takes the attribution's /proc/stat readings when they come at least once
	 * a window: no thread and no reading of its own. */
	bool fed = calib_fitting(&e->calib) && e->opt.attrib_batch_s <= CPUFIT_WINDOW_MIN_S &&
	           attrib_set_system_hook(&e->attrib, calib_feed, &e->calib);
	if (calib_start(&e->calib, &e->sampler, fed) < 0)
		return log_fail(1, "cannot start the CPU model's calibration thread");
	if (fed)
		log_info("CPU model calibration: on the attribution's readings of /proc/stat (at "
		         "least one every %.3g s)",
		         e->opt.attrib_batch_s);
	else if (calib_fitting(&e->calib))
		log_info("CPU model calibration: reading /proc/stat on its own (attribution %s)",
		         e->opt.attrib_batch_s > CPUFIT_WINDOW_MIN_S
		             ? "batches are longer than a window of 1 s"
		             : "is off or cannot read /proc/stat");
	/* After the privilege drop: the carbon thread parses what providers answer. */
	if (carbon_start(e->d.carbon, &e->sampler) < 0)
		return log_fail(1, "cannot start the carbon thread");
	log_info("carbon: provider %s%s%s", carbon_provider_name(e->opt.carbon.provider),
	         e->opt.carbon.zone[0] ? ", zone " : "", e->opt.carbon.zone);
	if (attrib_start(&e->attrib, &e->sampler) < 0)
		return log_fail(1, "cannot start the attribution thread");
	if (influx_start(e->d.influx, &e->d) < 0)
		return log_fail(1, "cannot start the InfluxDB thread");
	struct http_limits limits = {.conns_per_user = e->opt.conns_per_user,
	                             .timeout_s = e->opt.request_timeout_s,
	                             .threads = e->opt.http_threads};
	if (http_start(&e->http, api_handle, &e->api, &limits, err, sizeof(err)) < 0)
		return log_fail(1, "%s", err);
	return 0;
}

static void log_ready(struct energyd *e)
{
	const struct sampler *s = &e->sampler;
	char cov[512];
	snapshot_coverage_text(s, " + ", cov, sizeof(cov));
	log_info("sampling %d channel(s) every %.3f s; host total = %s (%s, %s)", e->set.n,
	         e->opt.interval_s, cov[0] ? cov : "nothing", s->coverage.rule,
	         s->coverage.measured ? "measured" : "estimated");
	for (int i = 0; i < e->opt.n_listen; i++)
		log_info("listening on %s", e->opt.listen[i]);
	/* Type=notify: ready once the first sample is taken and the sockets answer. */
	int rc = notify_send("READY=1\nSTATUS=sampling");
	if (rc < 0)
		log_warn("cannot notify the service manager: %s", strerror(-rc));
}

static void stop_all(struct energyd *e)
{
	notify_send("STOPPING=1");
	notify_close();
	sampler_stop(&e->sampler);
	attrib_stop(&e->attrib);
	calib_stop(&e->calib); /* writes the fit (after the attribution, which may feed it) */
	store_stop(&e->store); /* writes the last samples */
	http_stop(&e->http);
	influx_close(e->d.influx); /* writes the last batch */
	attrib_free(&e->attrib);
	store_free(&e->store);
	carbon_close(e->d.carbon);
	sampler_free(&e->sampler);
	calib_free(&e->calib);
	sources_close_all(&e->set);
}

int main(int argc, char **argv)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* threads inherit it; main sigwaits */
	signal(SIGPIPE, SIG_IGN);

	static struct energyd e;
	e.is_root = geteuid() == 0;
	char err[1024];
	options_defaults(&e.opt);
	if (options_parse(&e.opt, argc, argv, e.is_root, err, sizeof(err)) < 0) {
		fprintf(stderr, "energyd: %s\n", err);
		return 2;
	}
	if (e.opt.help) {
		options_usage(stdout);
		return 0;
	}
	if (e.opt.version) {
		printf("energyd %s\n", ENERGY_VERSION);
		return 0;
	}
	default_state_dir(&e.opt, e.is_root);
	default_listen(&e.opt, e.is_root);
	int rc = choose_identity(&e);
	/* Everything that needs root happens first; then the drop; then the threads. */
	if (!rc)
		rc = open_as_root(&e);
	if (!rc)
		rc = open_sockets(&e);
	if (!rc)
		rc = drop_root(&e);
	if (!rc)
		rc = set_up_sampling(&e);
	if (!rc)
		rc = start_threads(&e);
	if (rc)
		return rc;
	log_ready(&e);
	int sig = wait_for_stop(&sigs);
	log_info("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
	stop_all(&e);
	return 0;
}
