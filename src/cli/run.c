/*
 * energy run -- CMD: run a command (optionally several times) and report the energy the machine
 * used meanwhile. With a running energyd the figures come from its samples, interpolated to each
 * run's start and end (libenergy's energy_between); without one, energy samples the same sources
 * in-process, reading the counters right at each start and end.
 *
 * Repetitions: --warmup N unmeasured runs, then -r N measured ones; --idle S measures the idle
 * power for S seconds before the runs and reports each run's energy also minus idle power x
 * duration ("active"); --delay-before/--delay-after sleep around each run, unmeasured.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "snapshot.h"
#include "split.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_MAX_REPETITIONS 10000

struct run_options {
	/* Output as JSON or CSV; sample here instead of asking energyd. */
	bool json, csv, in_process;
	int repetitions, warmup; /* measured runs, and runs before them that are not counted */
	/* Idle baseline length (0: none), waits before and after each run, in-process tick (s). */
	double idle_s, delay_before_s, delay_after_s, interval_s;
	/* In-process sensor and proc roots; the file for the results (NULL: stdout). */
	const char *sysfs_root, *proc_root, *output;
	char **argv; /* the command to run */
};

/* Where the energy comes from: a running energyd, or our own sampler. */
struct backend {
	const char *mode; /* "energyd" or "in-process" */
	struct energy_client *client;
	struct cli *cli;
	struct channel_set *set; /* in-process: the sensors opened here */
	struct sampler sampler;  /* in-process: our own sampler over set */
	struct snapshot start;   /* in-process: the counters at the start of the interval */
	double t0;               /* the interval's start (wall clock) */
};

/* One measured interval: a run of the command or the idle baseline. */
struct measurement {
	double duration_s;
	int exit_code;
	/* The interval's energy per channel and host, from the API or src/core. */
	struct energy_snapshot energy;
	json_t *own; /* the command's attributed share (estimated), or NULL */
};

/* Called with the child's pid before it executes (it waits until started() returns) and after
 * it exited but before it is reaped, so that energyd can still read its final CPU time. */
struct run_hooks {
	void (*started)(pid_t pid, void *ctx);
	void (*exited)(pid_t pid, void *ctx);
	void *ctx;
};

static int run_usage(void)
{
	fprintf(stderr,
	        "Usage: energy run [OPTIONS] -- CMD [ARGS...]\n"
	        "  -r, --repetitions N   measured runs (default 1)\n"
	        "  --warmup N            unmeasured runs first (default 0)\n"
	        "  --idle SECONDS        measure idle power first; report energy minus idle too\n"
	        "  --delay-before S, --delay-after S   unmeasured pause around each run\n"
	        "  --json | --csv        machine-readable report (default: text on stderr)\n"
	        "  -o, --output FILE     write the report there instead of stdout/stderr\n"
	        "  --in-process          sample here even if energyd runs\n"
	        "  --interval S, --sysfs-root DIR, --proc-root DIR   for in-process sampling\n");
	return 2;
}

static void sleep_s(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = {.tv_sec = (time_t)s,
	                      .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Fork and exec; returns the exit code as a shell would (128 + signal), 127 when CMD cannot be
 * executed. Our SIGINT/SIGQUIT are ignored meanwhile, as with system(3), so that ^C stops the
 * command and we still report. */
static int run_child(char **argv, const struct run_hooks *hooks)
{
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	int gate[2] = {-1, -1};
	if (hooks && pipe2(gate, O_CLOEXEC) < 0)
		gate[0] = gate[1] = -1;
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "energy run: fork: %s\n", strerror(errno));
		return 127;
	}
	if (pid == 0) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
		if (gate[0] >= 0) {
			char c;
			close(gate[1]);
			while (read(gate[0], &c, 1) < 0 && errno == EINTR)
				;
		}
		execvp(argv[0], argv);
		fprintf(stderr, "energy run: cannot execute %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (hooks) {
		hooks->started(pid, hooks->ctx);
		if (gate[0] >= 0) {
			close(gate[0]);
			close(gate[1]); /* end of file: the child executes */
		}
		siginfo_t info;
		while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
			;
		hooks->exited(pid, hooks->ctx);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

/* ---- backends ------------------------------------------------------------------------------ */

static int backend_open(struct backend *b, struct cli *cli, const struct run_options *o)
{
	memset(b, 0, sizeof(*b));
	b->cli = cli;
	if (!o->in_process && energy_client_open(cli->socket, &b->client) == 0) {
		if (energy_client_ping(b->client)) {
			b->mode = "energyd";
			return 0;
		}
		energy_client_close(b->client);
		b->client = NULL;
		if (cli->socket) {
			fprintf(stderr, "energy run: no energyd answers at %s\n", cli->socket);
			return -1;
		}
	}
	static struct channel_set set;
	static struct family_report reports[16];
	struct source_config cfg = {
	    .sysfs_root = o->sysfs_root,
	    .proc_root = o->proc_root,
	    .dev_root = "/dev",
	    .perf_probe_s = SOURCE_PERF_PROBE_DEFAULT_S,
	};
	sources_open_all(&cfg, &set, reports, 16);
	b->set = &set;
	if (sampler_init(&b->sampler, &set, o->interval_s, 900) < 0) {
		fprintf(stderr, "energy run: out of memory\n");
		return -1;
	}
	/* The thread keeps up with counter wraps between the ticks taken at each start and end. */
	sampler_tick(&b->sampler);
	sampler_start(&b->sampler);
	b->mode = "in-process";
	return 0;
}

static void backend_close(struct backend *b)
{
	if (b->client) {
		energy_client_close(b->client);
	} else if (b->set) {
		sampler_free(&b->sampler);
		sources_close_all(b->set);
	}
}

static void backend_begin(struct backend *b)
{
	if (!b->client)
		snapshot_take(&b->sampler, &b->start); /* the counters right now */
	b->t0 = energy_wall_time();
}

static int backend_end(struct backend *b, double duration_s, struct energy_snapshot *out)
{
	if (b->client) {
		int rc = energy_between(b->client, b->t0, b->t0 + duration_s, out);
		if (rc < 0)
			fprintf(stderr, "energy run: energyd could not report the interval: %s\n",
			        strerror(-rc));
		return rc;
	}
	/* In-process: the sampling engine's interval between two snapshots, in libenergy's
	 * shape. */
	struct snapshot end;
	static struct snapshot_interval iv;
	snapshot_take(&b->sampler, &end);
	snapshot_interval(&b->sampler, &b->start, &end, duration_s, &iv);
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < iv.n && i < ENERGY_CHANNELS_MAX; i++) {
		struct energy_channel_reading *r = &out->channels[out->n_channels++];
		snprintf(r->id, sizeof(r->id), "%s", iv.ch[i].id);
		r->joules = iv.ch[i].joules;
		r->watts = iv.ch[i].watts;
		r->measured = iv.ch[i].measured;
	}
	out->host_joules = iv.host_joules;
	out->host_watts = iv.host_watts;
	out->host_measured = iv.host_measured;
	snprintf(out->host_coverage, sizeof(out->host_coverage), "%s", iv.coverage);
	out->from = b->t0;
	out->time = b->t0 + duration_s;
	/* No provider in-process: emissions and cost are unknown, not zero. */
	out->host_emissions_g = out->host_cost = out->carbon_intensity_g_per_kwh = NAN;
	return 0;
}

/* The command's own share through energyd: a watch on its pid from before it executes until
 * after it exited (share.c). */
struct share_ctx {
	struct cli *cli;
	int watch_id;
	double t_start, t_end; /* the run's start and end (wall clock) */
	uint64_t end_ns;       /* monotonic time of the command's exit */
	json_t *own;
};

static void share_started(pid_t pid, void *ctx)
{
	struct share_ctx *sc = ctx;
	sc->watch_id = share_watch(sc->cli, (int)pid);
}

static void share_exited(pid_t pid, void *ctx)
{
	(void)pid;
	struct share_ctx *sc = ctx;
	sc->t_end = energy_wall_time();
	sc->end_ns = energy_monotonic_ns();
	/* Still a zombie: energyd reads its final CPU time at its next sample. */
	if (sc->watch_id) {
		sc->own = share_fetch(sc->cli, sc->watch_id, sc->t_start, sc->t_end);
		share_unwatch(sc->cli, sc->watch_id);
	}
}

static double children_cpu_s(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_CHILDREN, &ru) < 0)
		return NAN;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Run the command (argv) or, with argv NULL, sleep idle_s; measure it, and the command's own
 * share: from energyd's attribution, or in-process from its CPU time against the machine's. */
static int measure(struct backend *b, const struct run_options *o, char **argv, double idle_s,
                   struct measurement *m)
{
	m->own = NULL;
	backend_begin(b);
	uint64_t m0 = energy_monotonic_ns();
	if (!argv) {
		sleep_s(idle_s);
		m->exit_code = 0;
		m->duration_s = (double)(energy_monotonic_ns() - m0) / 1e9;
		return backend_end(b, m->duration_s, &m->energy);
	}
	if (b->client) {
		struct share_ctx sc = {.cli = b->cli, .t_start = b->t0};
		struct run_hooks hooks = {share_started, share_exited, &sc};
		m->exit_code = run_child(argv, &hooks);
		m->duration_s =
		    (double)((sc.end_ns ? sc.end_ns : energy_monotonic_ns()) - m0) / 1e9;
		m->own = sc.own;
		return backend_end(b, m->duration_s, &m->energy);
	}
	uint64_t busy0, total0, busy1, total1;
	bool have_cpu = share_read_cpu(o->proc_root, &busy0, &total0) == 0;
	double cpu0 = children_cpu_s();
	m->exit_code = run_child(argv, NULL);
	m->duration_s = (double)(energy_monotonic_ns() - m0) / 1e9;
	int rc = backend_end(b, m->duration_s, &m->energy);
	have_cpu = have_cpu && share_read_cpu(o->proc_root, &busy1, &total1) == 0 &&
	           total1 > total0 && isfinite(cpu0);
	if (rc == 0 && have_cpu)
		m->own = share_in_process(m->energy.host_joules, children_cpu_s() - cpu0,
		                          busy1 - busy0, total1 - total0);
	return rc;
}

/* ---- statistics ---------------------------------------------------------------------------- */

/* energy_stats (libenergy) over the runs: mean, sd and the 95 % interval of the finite values. */
static struct energy_stats stats_of(const double *v, int n)
{
	struct energy_stats s;
	energy_stats(v, n > 0 ? (size_t)n : 0, &s);
	return s;
}

/* Per-run values of one series: channel index c, or -1 for the host, -2 for the duration, -3
 * for the host's emissions, -4 for its cost, -5 for the command's attributed share; active
 * subtracts idle power x duration. */
static void series(const struct measurement *runs, int n, int c, const struct measurement *idle,
                   bool active, double *out)
{
	for (int i = 0; i < n; i++) {
		const struct measurement *r = &runs[i];
		if (c == -5) { /* the command's own share */
			json_t *j = r->own ? json_object_get(r->own, "joules") : NULL;
			out[i] = json_is_number(j) ? json_number_value(j) : NAN;
			continue;
		}
		if (c <= -2) {
			out[i] = c == -2   ? r->duration_s
			         : c == -3 ? r->energy.host_emissions_g
			                   : r->energy.host_cost;
			continue;
		}
		double j = c < 0 ? r->energy.host_joules : r->energy.channels[c].joules;
		if (active && idle)
			j = energy_above_idle(
			    j, c < 0 ? idle->energy.host_watts : idle->energy.channels[c].watts,
			    r->duration_s);
		out[i] = j;
	}
}

/* ---- reports ------------------------------------------------------------------------------- */

static json_t *jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *stats_json(struct energy_stats s)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o}", "mean", jnum(s.mean), "sd", jnum(s.sd),
	                 "rel_sd", jnum(s.rel_sd), "ci95_low", jnum(s.ci95_low), "ci95_high",
	                 jnum(s.ci95_high));
}

static json_t *coverage_json(const char *coverage)
{
	json_t *a = json_array();
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", coverage);
	for (char *save, *tok = strtok_r(buf, " +", &save); tok; tok = strtok_r(NULL, " +", &save))
		json_array_append_new(a, json_string(tok));
	return a;
}

static void report_json(FILE *f, const struct run_options *o, const char *mode,
                        const struct measurement *runs, int n, const struct measurement *idle)
{
	const struct energy_snapshot *first = &runs[0].energy;
	double *v = calloc((size_t)n, sizeof(double));
	json_t *cmd = json_array(), *jruns = json_array();
	for (char **a = o->argv; *a; a++)
		json_array_append_new(cmd, json_string(*a));
	for (int i = 0; i < n; i++) {
		const struct measurement *r = &runs[i];
		json_t *chs = json_object();
		for (int c = 0; c < r->energy.n_channels; c++) {
			json_t *ch = json_pack("{s:o, s:o, s:b}", "joules",
			                       jnum(r->energy.channels[c].joules), "watts",
			                       jnum(r->energy.channels[c].watts), "measured",
			                       r->energy.channels[c].measured);
			if (idle) {
				series(r, 1, c, idle, true, v);
				json_object_set_new(ch, "active_joules", jnum(v[0]));
			}
			json_object_set_new(chs, r->energy.channels[c].id, ch);
		}
		json_t *host = json_pack(
		    "{s:o, s:o, s:o, s:b}", "joules", jnum(r->energy.host_joules), "watts",
		    jnum(r->energy.host_watts), "coverage", coverage_json(r->energy.host_coverage),
		    "measured", r->energy.host_measured);
		if (idle) {
			series(r, 1, -1, idle, true, v);
			json_object_set_new(host, "active_joules", jnum(v[0]));
		}
		json_object_set_new(host, "emissions_g", jnum(r->energy.host_emissions_g));
		json_object_set_new(host, "cost", jnum(r->energy.host_cost));
		json_object_set_new(host, "currency",
		                    r->energy.currency[0] ? json_string(r->energy.currency)
		                                          : json_null());
		json_t *run =
		    json_pack("{s:i, s:f, s:i, s:f, s:o, s:o}", "run", i + 1, "duration_s",
		              r->duration_s, "exit_code", r->exit_code, "resolution_s",
		              r->energy.resolution_s, "channels", chs, "host", host);
		json_object_set(run, "attributed", r->own ? r->own : json_null());
		json_array_append_new(jruns, run);
	}
	json_t *summary_ch = json_object();
	for (int c = 0; c < first->n_channels; c++) {
		series(runs, n, c, idle, false, v);
		json_t *s = json_pack("{s:o, s:b}", "joules", stats_json(stats_of(v, n)),
		                      "measured", first->channels[c].measured);
		if (idle) {
			series(runs, n, c, idle, true, v);
			json_object_set_new(s, "active_joules", stats_json(stats_of(v, n)));
		}
		json_object_set_new(summary_ch, first->channels[c].id, s);
	}
	series(runs, n, -1, idle, false, v);
	json_t *summary_host =
	    json_pack("{s:o, s:o, s:b}", "joules", stats_json(stats_of(v, n)), "coverage",
	              coverage_json(first->host_coverage), "measured", first->host_measured);
	if (idle) {
		series(runs, n, -1, idle, true, v);
		json_object_set_new(summary_host, "active_joules", stats_json(stats_of(v, n)));
	}
	series(runs, n, -3, idle, false, v);
	json_object_set_new(summary_host, "emissions_g", stats_json(stats_of(v, n)));
	series(runs, n, -4, idle, false, v);
	json_object_set_new(summary_host, "cost", stats_json(stats_of(v, n)));
	series(runs, n, -5, idle, false, v);
	json_t *summary_own = json_null();
	if (isfinite(stats_of(v, n).mean))
		summary_own = json_pack(
		    "{s:o, s:s, s:b, s:s}", "joules", stats_json(stats_of(v, n)), "method",
		    json_string_value(json_object_get(runs[0].own, "method")), "measured", false,
		    "share_of", "host.joules (the host total, idle included)");
	series(runs, n, -2, idle, false, v);
	json_t *summary = json_pack("{s:i, s:o, s:o, s:o, s:o}", "runs", n, "duration_s",
	                            stats_json(stats_of(v, n)), "channels", summary_ch, "host",
	                            summary_host, "attributed", summary_own);
	json_t *baseline = json_null();
	if (idle) {
		json_t *chs = json_object();
		for (int c = 0; c < idle->energy.n_channels; c++)
			json_object_set_new(
			    chs, idle->energy.channels[c].id,
			    json_pack("{s:o, s:o}", "joules", jnum(idle->energy.channels[c].joules),
			              "watts", jnum(idle->energy.channels[c].watts)));
		baseline =
		    json_pack("{s:f, s:o, s:{s:o, s:o}}", "duration_s", idle->duration_s,
		              "channels", chs, "host", "joules", jnum(idle->energy.host_joules),
		              "watts", jnum(idle->energy.host_watts));
	}
	/* Where the grams come from (the last run's answer). */
	const struct energy_snapshot *last = &runs[n - 1].energy;
	json_t *carbon = json_null();
	if (last->carbon_provider[0])
		carbon = json_pack("{s:s, s:s, s:o, s:b}", "provider", last->carbon_provider,
		                   "zone", last->carbon_zone, "intensity_g_per_kwh",
		                   jnum(last->carbon_intensity_g_per_kwh), "estimated", true);
	json_t *out = json_pack("{s:o, s:s, s:i, s:o, s:o, s:o, s:o}", "command", cmd, "mode", mode,
	                        "warmup", o->warmup, "runs", jruns, "summary", summary, "baseline",
	                        baseline, "carbon", carbon);
	char *text = json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
	fprintf(f, "%s\n", text);
	free(text);
	json_decref(out);
	free(v);
}

static void report_csv(FILE *f, const struct measurement *runs, int n,
                       const struct measurement *idle)
{
	const struct energy_snapshot *first = &runs[0].energy;
	fprintf(f, "run,duration_s,exit_code,host_joules%s", idle ? ",host_active_joules" : "");
	for (int c = 0; c < first->n_channels; c++)
		fprintf(f, ",%s_joules%s%s%s", first->channels[c].id, idle ? "," : "",
		        idle ? first->channels[c].id : "", idle ? "_active_joules" : "");
	fprintf(f, ",command_joules,host_emissions_g\n");
	for (int i = 0; i < n; i++) {
		double a;
		fprintf(f, "%d,%.6f,%d,%.6f", i + 1, runs[i].duration_s, runs[i].exit_code,
		        runs[i].energy.host_joules);
		if (idle) {
			series(&runs[i], 1, -1, idle, true, &a);
			fprintf(f, ",%.6f", a);
		}
		for (int c = 0; c < first->n_channels; c++) {
			fprintf(f, ",%.6f", runs[i].energy.channels[c].joules);
			if (idle) {
				series(&runs[i], 1, c, idle, true, &a);
				fprintf(f, ",%.6f", a);
			}
		}
		/* Empty where unknown: no attribution, no carbon intensity (an estimate). */
		series(&runs[i], 1, -5, idle, false, &a);
		fprintf(f, isfinite(a) ? ",%.6f" : ",", a);
		series(&runs[i], 1, -3, idle, false, &a);
		fprintf(f, isfinite(a) ? ",%.6f\n" : ",\n", a);
	}
}

static void text_stats_line(FILE *f, const char *name, const double *v, int n, const char *unit,
                            const char *what)
{
	struct energy_stats s = stats_of(v, n);
	char mean[32], sd[32];
	if (strcmp(unit, "J") == 0) {
		cli_format_joules(s.mean, mean, sizeof(mean));
		cli_format_joules(isfinite(s.sd) ? s.sd : 0, sd, sizeof(sd));
	} else {
		snprintf(mean, sizeof(mean), "%.3f s", s.mean);
		snprintf(sd, sizeof(sd), "%.3f s", isfinite(s.sd) ? s.sd : 0);
	}
	if (n > 1)
		fprintf(f, "%-18s %14s ± %-12s %6.1f %%  %s\n", name, mean, sd,
		        isfinite(s.rel_sd) ? s.rel_sd * 100 : 0.0, what);
	else
		fprintf(f, "%-18s %14s %23s %s\n", name, mean, "", what);
}

static void report_text(FILE *f, const struct run_options *o, const char *mode,
                        const struct measurement *runs, int n, const struct measurement *idle)
{
	const struct energy_snapshot *first = &runs[0].energy;
	double *v = calloc((size_t)n, sizeof(double));
	fprintf(f, "\nCommand:   ");
	for (char **a = o->argv; *a; a++)
		fprintf(f, "%s%s", *a, a[1] ? " " : "\n");
	fprintf(f, "Exit code: %d\n", runs[n - 1].exit_code);
	fprintf(f, "Runs:      %d measured%s", n, o->warmup ? "" : "\n");
	if (o->warmup)
		fprintf(f, " after %d warm-up run(s)\n", o->warmup);
	fprintf(f, "Measured:  %s\n",
	        strcmp(mode, "energyd") == 0 ? "by energyd (interpolated to each start and end)"
	                                     : "in-process (no energyd answered)");
	if (idle) {
		char w[32];
		cli_format_watts(idle->energy.host_watts, w, sizeof(w));
		fprintf(f,
		        "Idle:      %s host power over a %.3f s baseline before the runs; "
		        "\"active\" = energy - idle power x duration\n",
		        w, idle->duration_s);
	}
	if (n > 1) {
		fprintf(f, "\n%-5s %10s %14s\n", "RUN", "DURATION", "HOST ENERGY");
		for (int i = 0; i < n; i++) {
			char j[32];
			cli_format_joules(runs[i].energy.host_joules, j, sizeof(j));
			fprintf(f, "%-5d %8.3f s %14s\n", i + 1, runs[i].duration_s, j);
		}
	}
	fprintf(f, "\n%-18s %14s %s\n", "", n > 1 ? "MEAN" : "",
	        n > 1 ? "  ± SD         REL SD" : "");
	series(runs, n, -2, idle, false, v);
	text_stats_line(f, "duration", v, n, "s", "");
	for (int c = 0; c < first->n_channels; c++) {
		const struct energy_channel_reading *r = &first->channels[c];
		char what[64];
		char w[32];
		for (int i = 0; i < n; i++)
			v[i] = runs[i].energy.channels[c].watts;
		cli_format_watts(stats_of(v, n).mean, w, sizeof(w));
		series(runs, n, c, idle, false, v);
		snprintf(what, sizeof(what), "%s, %s", r->measured ? "measured" : "estimated", w);
		text_stats_line(f, r->id, v, n, "J", what);
		if (idle) {
			char name[80];
			snprintf(name, sizeof(name), "  active");
			series(runs, n, c, idle, true, v);
			text_stats_line(f, name, v, n, "J", "minus idle");
		}
	}
	series(runs, n, -1, idle, false, v);
	char what[600];
	snprintf(what, sizeof(what), "%s (%s)", first->host_measured ? "measured" : "estimated",
	         first->host_coverage[0] ? first->host_coverage : "nothing");
	text_stats_line(f, "host total", v, n, "J", what);
	if (idle) {
		series(runs, n, -1, idle, true, v);
		text_stats_line(f, "  active", v, n, "J", "minus idle");
	}
	series(runs, n, -5, idle, false, v);
	if (isfinite(stats_of(v, n).mean)) {
		/* The command's own part of the host total: an estimate, with its method. */
		for (int i = 0; i < n; i++)
			v[i] = json_number_value(json_object_get(runs[i].own, "share"));
		double share = stats_of(v, n).mean;
		series(runs, n, -5, idle, false, v);
		snprintf(what, sizeof(what), "estimated (%s, %.1f %% of the host total%s)",
		         json_string_value(json_object_get(runs[0].own, "method")), 100 * share,
		         idle ? ", idle included" : "");
		text_stats_line(f, "command's share", v, n, "J", what);
		/* A share of the whole host's energy may exceed the host's energy above idle: say
		 * so rather than print a part larger than its whole. */
		double own_mean = stats_of(v, n).mean;
		series(runs, n, -1, idle, true, v);
		if (idle && own_mean > stats_of(v, n).mean)
			fprintf(
			    f,
			    "%-18s the command's share is of the host total with idle, which is "
			    "larger than the host's energy above idle: compare it with \"host "
			    "total\", not with \"active\"\n",
			    "");
	}
	double total = 0;
	for (int i = 0; i < n; i++)
		total += runs[i].duration_s;
	series(runs, n, -1, idle, false, v);
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += v[i];
	char w[32];
	cli_format_watts(energy_mean_watts(sum, total), w, sizeof(w));
	fprintf(f, "%-18s %14s\n", "host mean power", w);
	/* Grams and cost of the host's energy: the mean over the runs, with the factor's origin. */
	const struct energy_snapshot *last = &runs[n - 1].energy;
	series(runs, n, -3, idle, false, v);
	struct energy_stats g = stats_of(v, n);
	char gs[32], origin[160] = "no energyd: no carbon intensity";
	if (last->carbon_provider[0])
		snprintf(origin, sizeof(origin), "%s%s%s, %.1f g/kWh now", last->carbon_provider,
		         last->carbon_zone[0] ? " " : "", last->carbon_zone,
		         last->carbon_intensity_g_per_kwh);
	if (isfinite(g.mean)) {
		cli_format_grams(g.mean, gs, sizeof(gs));
		fprintf(f, "%-18s %14s CO₂e %s, estimated (%s)\n", "host emissions", gs,
		        n > 1 ? "per run (mean)" : "during the command", origin);
	} else {
		fprintf(f, "%-18s %14s (%s)\n", "host emissions", "unknown", origin);
	}
	series(runs, n, -4, idle, false, v);
	struct energy_stats cost = stats_of(v, n);
	if (isfinite(cost.mean))
		fprintf(f, "%-18s %14.6f %s%s\n", "host cost", cost.mean, last->currency,
		        n > 1 ? " per run (mean)" : "");
	free(v);
}

/* ---- the command ----------------------------------------------------------------------------- */

static int parse_count(const char *s, int max, int *out)
{
	uint64_t v;
	if (energy_parse_u64(s, &v) < 0 || v > (uint64_t)max)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_seconds(const char *s, double max, double *out)
{
	return energy_parse_double(s, out) < 0 || *out < 0 || *out > max ? -1 : 0;
}

/* The options before the command into o (o->argv: the command). 0, or the exit code. */
static int run_parse(int argc, char **argv, struct run_options *o)
{
	*o = (struct run_options){
	    .repetitions = 1, .interval_s = 0.1, .sysfs_root = "/sys", .proc_root = "/proc"};
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		bool has_arg = i + 1 < argc;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if (strcmp(a, "--csv") == 0) {
			o->csv = true;
		} else if (strcmp(a, "--in-process") == 0) {
			o->in_process = true;
		} else if ((strcmp(a, "-r") == 0 || strcmp(a, "--repetitions") == 0) && has_arg) {
			if (parse_count(argv[++i], RUN_MAX_REPETITIONS, &o->repetitions) < 0 ||
			    o->repetitions < 1) {
				fprintf(stderr, "energy run: -r: 1 to %d runs\n",
				        RUN_MAX_REPETITIONS);
				return 2;
			}
		} else if (strcmp(a, "--warmup") == 0 && has_arg) {
			if (parse_count(argv[++i], RUN_MAX_REPETITIONS, &o->warmup) < 0) {
				fprintf(stderr, "energy run: --warmup: 0 to %d runs\n",
				        RUN_MAX_REPETITIONS);
				return 2;
			}
		} else if (strcmp(a, "--idle") == 0 && has_arg) {
			if (parse_seconds(argv[++i], 3600, &o->idle_s) < 0 || o->idle_s <= 0) {
				fprintf(stderr,
				        "energy run: --idle: more than 0, at most 3600 s\n");
				return 2;
			}
		} else if (strcmp(a, "--delay-before") == 0 && has_arg) {
			if (parse_seconds(argv[++i], 3600, &o->delay_before_s) < 0) {
				fprintf(stderr, "energy run: --delay-before: 0 to 3600 s\n");
				return 2;
			}
		} else if (strcmp(a, "--delay-after") == 0 && has_arg) {
			if (parse_seconds(argv[++i], 3600, &o->delay_after_s) < 0) {
				fprintf(stderr, "energy run: --delay-after: 0 to 3600 s\n");
				return 2;
			}
		} else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && has_arg) {
			o->output = argv[++i];
		} else if (strcmp(a, "--interval") == 0 && has_arg) {
			if (energy_parse_double(argv[++i], &o->interval_s) < 0 ||
			    o->interval_s < 0.01 || o->interval_s > 60) {
				fprintf(stderr, "energy run: --interval: 0.01 to 60 seconds\n");
				return 2;
			}
		} else if (strcmp(a, "--sysfs-root") == 0 && has_arg) {
			o->sysfs_root = argv[++i];
		} else if (strcmp(a, "--proc-root") == 0 && has_arg) {
			o->proc_root = argv[++i];
		} else if (a[0] == '-') {
			fprintf(stderr, "energy run: unknown option '%s'\n", a);
			return run_usage();
		} else {
			break; /* the command starts here */
		}
	}
	if (i >= argc)
		return run_usage();
	if (o->json && o->csv) {
		fprintf(stderr, "energy run: choose one of --json and --csv\n");
		return 2;
	}
	o->argv = argv + i;
	return 0;
}

int cli_run(struct cli *cli, int argc, char **argv)
{
	struct run_options o;
	int prc = run_parse(argc, argv, &o);
	if (prc)
		return prc;

	FILE *out = NULL;
	if (o.output) {
		out = fopen(o.output, "we");
		if (!out) {
			fprintf(stderr, "energy run: %s: %s\n", o.output, strerror(errno));
			return 2;
		}
	}
	struct backend b;
	if (backend_open(&b, cli, &o) < 0) {
		if (out)
			fclose(out);
		return 1;
	}
	struct measurement idle, *runs = calloc((size_t)o.repetitions, sizeof(*runs));
	int n = 0, rc = 0, exit_code = 0;
	if (!runs) {
		rc = -ENOMEM;
		goto done;
	}
	if (o.idle_s > 0 && (rc = measure(&b, &o, NULL, o.idle_s, &idle)) < 0)
		goto done;
	for (int w = 0; w < o.warmup; w++) {
		sleep_s(o.delay_before_s);
		exit_code = run_child(o.argv, NULL);
		sleep_s(o.delay_after_s);
		if (exit_code != 0) {
			fprintf(stderr, "energy run: warm-up run %d exited %d: stopping\n", w + 1,
			        exit_code);
			goto done;
		}
	}
	for (; n < o.repetitions; n++) {
		sleep_s(o.delay_before_s);
		rc = measure(&b, &o, o.argv, 0, &runs[n]);
		sleep_s(o.delay_after_s);
		if (rc < 0)
			goto done;
		exit_code = runs[n].exit_code;
		if (exit_code != 0) {
			n++;
			if (n < o.repetitions)
				fprintf(stderr, "energy run: run %d exited %d: stopping\n", n,
				        exit_code);
			break;
		}
	}
	if (n > 0) {
		FILE *f = out ? out : (o.json || o.csv ? stdout : stderr);
		const struct measurement *base = o.idle_s > 0 ? &idle : NULL;
		if (o.json)
			report_json(f, &o, b.mode, runs, n, base);
		else if (o.csv)
			report_csv(f, runs, n, base);
		else
			report_text(f, &o, b.mode, runs, n, base);
	}
done:
	backend_close(&b);
	for (int i = 0; runs && i < o.repetitions; i++)
		json_decref(runs[i].own);
	free(runs);
	if (out)
		fclose(out);
	if (rc < 0)
		return exit_code ? exit_code : 1;
	return exit_code;
}
