/*
 * energy run -- CMD: run a command and report the energy the machine used meanwhile. With a
 * running energyd the figures come from its samples (interpolated to the command's start and
 * end); without one, energy samples the same sources in-process for the command's duration.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "sampler.h"
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct run_result {
	double duration_s;
	double resolution_s;
	int exit_code;
	const char *mode; /* "energyd" or "in-process" */
	json_t *channels; /* id -> {joules, measured, label} */
	json_t *host;     /* {joules, coverage, measured} */
	json_t *own;      /* the command's attributed share, or NULL */
};

/* Called with the child's pid before it executes (it waits until started() returns) and after
 * it exited but before it is reaped (so that its CPU time stays readable). */
struct run_hooks {
	void (*started)(pid_t pid, void *ctx);
	void (*exited)(pid_t pid, void *ctx);
	void *ctx;
};

struct run_options {
	bool json, in_process;
	double interval_s;
	const char *sysfs_root, *proc_root;
	char **argv;
};

static int run_usage(void)
{
	fprintf(stderr, "Usage: energy run [--json] [--in-process] [--interval S] "
	                "[--sysfs-root DIR] [--proc-root DIR] -- CMD [ARGS...]\n");
	return 2;
}

/* Fork and exec; returns the exit code as a shell would (128 + signal), 127 when CMD cannot be
 * executed. The caller's SIGINT/SIGQUIT go to the child only, as with system(3). */
static int run_child(char **argv, pid_t *pid_out, const struct run_hooks *hooks)
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
	*pid_out = pid;
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

struct share_ctx {
	struct cli *cli;
	int watch_id;
	double t_start, t_end;
	uint64_t end_ns; /* monotonic time of the command's exit */
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

static int run_with_daemon(struct cli *cli, const struct run_options *o, struct run_result *r)
{
	json_t *info = cli_get(cli, "/api/v1/info", false);
	if (!info)
		return -1;
	double interval = json_number_value(json_object_get(info, "interval_s"));
	json_decref(info);

	pid_t pid;
	struct share_ctx sc = {.cli = cli};
	struct run_hooks hooks = {share_started, share_exited, &sc};
	uint64_t m0 = energy_monotonic_ns();
	double t0 = sc.t_start = energy_wall_time();
	r->exit_code = run_child(o->argv, &pid, &hooks);
	double t1 = sc.t_end > 0 ? sc.t_end : energy_wall_time();
	r->duration_s = (double)((sc.end_ns ? sc.end_ns : energy_monotonic_ns()) - m0) / 1e9;
	r->own = sc.own;

	/* Wait for a sample at or after the end, so the interval is interpolated, not clamped. */
	for (int i = 0; i < 100; i++) {
		json_t *now = cli_get(cli, "/api/v1/now", false);
		if (!now)
			return -1;
		double t = json_number_value(json_object_get(now, "time"));
		json_decref(now);
		if (t >= t1)
			break;
		usleep((useconds_t)(interval * 1e6 / 2 + 1000));
	}
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/energy?from=%.6f&to=%.6f", t0, t1);
	json_t *e = cli_get(cli, path, false);
	if (!e)
		return -1;
	r->mode = "energyd";
	r->resolution_s = json_number_value(json_object_get(e, "resolution_s"));
	r->channels = json_incref(json_object_get(e, "channels"));
	r->host = json_incref(json_object_get(e, "host"));
	json_decref(e);
	return 0;
}

static int run_in_process(const struct run_options *o, struct run_result *r)
{
	static struct channel_set set;
	struct family_report reports[16];
	struct source_config cfg = {
	    .sysfs_root = o->sysfs_root,
	    .proc_root = o->proc_root,
	    .dev_root = "/dev",
	};
	sources_open_all(&cfg, &set, reports, 16);
	struct sampler s;
	if (sampler_init(&s, &set, o->interval_s, 900) < 0) {
		fprintf(stderr, "energy run: out of memory\n");
		return -1;
	}
	/* Counters at the start and the end come from ticks taken right there; the thread in
	 * between keeps up with counter wraps. */
	sampler_tick(&s);
	uint64_t start_uj[CHANNELS_MAX], host0 = s.host_uj;
	for (int i = 0; i < set.n; i++)
		start_uj[i] = set.ch[i].energy_uj;
	sampler_start(&s);
	pid_t pid;
	uint64_t busy0 = 0, total0 = 0, busy1 = 0, total1 = 0;
	bool have_cpu = share_read_cpu(o->proc_root, &busy0, &total0) == 0;
	uint64_t m0 = energy_monotonic_ns();
	r->exit_code = run_child(o->argv, &pid, NULL);
	sampler_tick(&s); /* right at the end, not when the thread next wakes */
	have_cpu =
	    have_cpu && share_read_cpu(o->proc_root, &busy1, &total1) == 0 && total1 > total0;
	r->duration_s = (double)(energy_monotonic_ns() - m0) / 1e9;
	uint64_t end_uj[CHANNELS_MAX], host1;
	sampler_lock(&s);
	for (int i = 0; i < set.n; i++)
		end_uj[i] = set.ch[i].energy_uj;
	host1 = s.host_uj;
	sampler_unlock(&s);
	sampler_stop(&s);

	r->mode = "in-process";
	r->resolution_s = 0;
	r->channels = json_object();
	for (int i = 0; i < set.n; i++)
		json_object_set_new(r->channels, set.ch[i].id,
		                    json_pack("{s:f, s:b}", "joules",
		                              (double)(end_uj[i] - start_uj[i]) / 1e6, "measured",
		                              set.ch[i].measured));
	json_t *cov = json_array();
	for (int k = 0; k < s.coverage.n; k++)
		json_array_append_new(cov, json_string(set.ch[s.coverage.idx[k]].id));
	r->host = json_pack("{s:f, s:o, s:b}", "joules", (double)(host1 - host0) / 1e6, "coverage",
	                    cov, "measured", s.coverage.measured);
	struct rusage ru;
	if (have_cpu && getrusage(RUSAGE_CHILDREN, &ru) == 0) {
		double own = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
		r->own = share_in_process((double)(host1 - host0) / 1e6, own, total1 - total0);
	}
	sampler_free(&s);
	sources_close_all(&set);
	return 0;
}

static void print_text(const struct run_options *o, const struct run_result *r)
{
	fprintf(stderr, "\n");
	fprintf(stderr, "Command:   ");
	for (char **a = o->argv; *a; a++)
		fprintf(stderr, "%s%s", *a, a[1] ? " " : "\n");
	fprintf(stderr, "Exit code: %d\n", r->exit_code);
	fprintf(stderr, "Duration:  %.3f s\n", r->duration_s);
	fprintf(stderr, "Measured:  %s\n",
	        strcmp(r->mode, "energyd") == 0 ? "by energyd (interpolated to start and end)"
	                                        : "in-process (no energyd answered)");
	fprintf(stderr, "%-18s %14s %12s\n", "CHANNEL", "ENERGY", "MEAN POWER");
	const char *id;
	json_t *ch;
	json_object_foreach(r->channels, id, ch)
	{
		double j = json_number_value(json_object_get(ch, "joules"));
		char js[32], ws[32];
		cli_format_joules(j, js, sizeof(js));
		cli_format_watts(r->duration_s > 0 ? j / r->duration_s : 0, ws, sizeof(ws));
		fprintf(stderr, "%-18s %14s %12s  %s\n", id, js, ws,
		        json_is_true(json_object_get(ch, "measured")) ? "measured" : "estimated");
	}
	double hj = json_number_value(json_object_get(r->host, "joules"));
	char js[32], ws[32], cov[512] = "";
	cli_format_joules(hj, js, sizeof(js));
	cli_format_watts(r->duration_s > 0 ? hj / r->duration_s : 0, ws, sizeof(ws));
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(r->host, "coverage"), i, c)
	{
		snprintf(cov + strlen(cov), sizeof(cov) - strlen(cov), "%s%s", i ? " + " : "",
		         json_string_value(c));
	}
	fprintf(stderr, "%-18s %14s %12s  %s (%s)\n", "host total", js, ws,
	        json_is_true(json_object_get(r->host, "measured")) ? "measured" : "estimated",
	        cov[0] ? cov : "nothing");
	if (r->own) {
		double oj = json_number_value(json_object_get(r->own, "joules"));
		cli_format_joules(oj, js, sizeof(js));
		cli_format_watts(r->duration_s > 0 ? oj / r->duration_s : 0, ws, sizeof(ws));
		fprintf(stderr, "%-18s %14s %12s  estimated (%s, %.1f %% of the host total)\n",
		        "command's share", js, ws,
		        json_string_value(json_object_get(r->own, "method")),
		        100 * json_number_value(json_object_get(r->own, "share")));
	}
}

static void print_json(const struct run_options *o, const struct run_result *r)
{
	json_t *cmd = json_array();
	for (char **a = o->argv; *a; a++)
		json_array_append_new(cmd, json_string(*a));
	json_t *host = json_deep_copy(r->host);
	double hj = json_number_value(json_object_get(host, "joules"));
	json_object_set_new(host, "watts", json_real(r->duration_s > 0 ? hj / r->duration_s : 0));
	json_t *chs = json_deep_copy(r->channels);
	const char *id;
	json_t *ch;
	json_object_foreach(chs, id, ch)
	{
		double j = json_number_value(json_object_get(ch, "joules"));
		json_object_set_new(ch, "watts",
		                    json_real(r->duration_s > 0 ? j / r->duration_s : 0));
	}
	json_t *out = json_pack("{s:o, s:i, s:f, s:f, s:s, s:o, s:o}", "command", cmd, "exit_code",
	                        r->exit_code, "duration_s", r->duration_s, "resolution_s",
	                        r->resolution_s, "mode", r->mode, "channels", chs, "host", host);
	json_object_set(out, "attributed", r->own ? r->own : json_null());
	char *s = json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
	printf("%s\n", s);
	free(s);
	json_decref(out);
}

int cli_run(struct cli *cli, int argc, char **argv)
{
	struct run_options o = {.interval_s = 0.1, .sysfs_root = "/sys", .proc_root = "/proc"};
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--json") == 0) {
			o.json = true;
		} else if (strcmp(a, "--in-process") == 0) {
			o.in_process = true;
		} else if (strcmp(a, "--interval") == 0 && i + 1 < argc) {
			if (energy_parse_double(argv[++i], &o.interval_s) < 0 ||
			    o.interval_s < 0.01 || o.interval_s > 60) {
				fprintf(stderr, "energy run: --interval: 0.01 to 60 seconds\n");
				return 2;
			}
		} else if (strcmp(a, "--sysfs-root") == 0 && i + 1 < argc) {
			o.sysfs_root = argv[++i];
		} else if (strcmp(a, "--proc-root") == 0 && i + 1 < argc) {
			o.proc_root = argv[++i];
		} else if (a[0] == '-') {
			fprintf(stderr, "energy run: unknown option '%s'\n", a);
			return run_usage();
		} else {
			break; /* the command starts here */
		}
	}
	if (i >= argc)
		return run_usage();
	o.argv = argv + i;

	struct run_result r = {0};
	int rc;
	bool daemon = false;
	if (!o.in_process) {
		struct energy_client *c;
		if (energy_client_open(cli->socket, &c) == 0) {
			daemon = energy_client_ping(c);
			energy_client_close(c);
		}
		if (!daemon && cli->socket) {
			fprintf(stderr, "energy run: no energyd answers at %s\n", cli->socket);
			return 1;
		}
	}
	rc = daemon ? run_with_daemon(cli, &o, &r) : run_in_process(&o, &r);
	if (rc < 0)
		return r.exit_code ? r.exit_code : 1;
	if (o.json)
		print_json(&o, &r);
	else
		print_text(&o, &r);
	json_decref(r.channels);
	json_decref(r.host);
	json_decref(r.own);
	return r.exit_code;
}
