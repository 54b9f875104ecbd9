/*
 * What the hardware-counter model (hwpc-model, docs/attribution.md) adds to the attribution,
 * in process, measured side by side with the floor of the same work:
 *
 * - batch: what the attribution thread does for N watched scopes once per batch without the
 *   model (each scope's /proc/PID/stat, /proc/stat once, each scope's CPU-time share) is the
 *   floor; the same batch with the model's window on top (the machine's 3 counters per CPU, the
 *   frequency's 2 per CPU and the TSC, 3 per scope, each read(2) from a perf descriptor and
 *   scaled by time_enabled / time_running, the rates, each scope's predicted dynamic power and
 *   share) is the measured case. Floor and model blocks alternate within every run.
 * - fit: one nnls_fit over a full history (WINDOW x 4 columns: 3 rates and the intercept), one
 *   hwpc_model_add that ends the learning (the fit with its intercept and the error window
 *   restarted from its residuals), and one steady-state hwpc_model_add (the prediction, the
 *   error and its window's median; no fit), for the default window (60) and the largest (600).
 *
 * The counters are the kernel's software events (cpu-clock, task-clock, context switches),
 * because this class of machine (a VM) has no CPU PMU: the read(2) of a perf descriptor takes
 * the same path (perf_read, and an IPI for a CPU-wide event of another CPU) with a cheaper
 * event read. The watched scopes are sleeping children of this program.
 *
 * Times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID): on a shared machine the ratios
 * of one run are the figure, not the absolute times. Prints Markdown tables: median and range
 * (min to max) over RUNS runs of ITER repetitions each. Exits 1 when the fit does not recover
 * the synthetic model (the figures would be of a wrong computation).
 *
 * usage: hwpc_cost [-r RUNS] [-n ITER]        (default 9 runs of 2000 batches)
 */
#define _GNU_SOURCE
#include "hwpc.h"
#include "hwpc_model.h"
#include "nnls.h"
#include "procfs.h"
#include "split.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SCOPES_MAX 32
#define CPUS_MAX   64
#define RUNS_MAX   101

static const int scope_counts[] = {0, 1, 8, 32};
static const int windows[] = {HWPC_ERROR_WINDOW, HWPC_ERROR_WINDOW_HI};

/* The synthetic machine: watts = STATIC_W + coef . rates + noise (hwpc.py's coefficients). */
static const double true_coef[HWPC_EVENTS] = {1.5e-9, 2e-9, 1e-7};
#define STATIC_W 8.0
#define NOISE_W  0.5

struct bench {
	int n_cpus;
	int gfd[CPUS_MAX][HWPC_EVENTS], mfd[CPUS_MAX][2], tsc_fd;
	struct hwpc_reading glast[CPUS_MAX][HWPC_EVENTS], mlast[CPUS_MAX][2], tsc_last;
	pid_t child[SCOPES_MAX];
	int sfd[SCOPES_MAX][HWPC_EVENTS];
	struct hwpc_reading slast[SCOPES_MAX][HWPC_EVENTS];
	uint64_t sticks[SCOPES_MAX], sys_busy;
	int proc_fd, stat_fd;
	struct hwpc_model model; /* fitted: predicts the scopes' dynamic power */
	char counters_error[160];
};

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Keeps the compiler from dropping the work. */
static volatile double sink;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uniform(double lo, double hi)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

/* The attributes energyd's counters have (hwpc.c: read format, user space, inherit for a
 * process), with a software event: the same read path. */
static int sw_counter(uint64_t config, int pid, int cpu)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_SOFTWARE;
	attr.size = sizeof(attr);
	attr.config = config;
	attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	attr.exclude_kernel = 1;
	attr.exclude_hv = 1;
	attr.inherit = pid > 0;
	long fd = syscall(SYS_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

static const uint64_t sw_event[HWPC_EVENTS] = {
    PERF_COUNT_SW_CPU_CLOCK, PERF_COUNT_SW_CONTEXT_SWITCHES, PERF_COUNT_SW_PAGE_FAULTS};

/* The counters of the machine (per CPU), of the frequency and of every scope; false with
 * b->counters_error when the kernel refuses them. */
static bool open_counters(struct bench *b)
{
	int fd = 0;
	for (int i = 0; i < b->n_cpus && fd >= 0; i++) {
		for (int e = 0; e < HWPC_EVENTS && fd >= 0; e++)
			fd = b->gfd[i][e] = sw_counter(sw_event[e], -1, i);
		for (int k = 0; k < 2 && fd >= 0; k++)
			fd = b->mfd[i][k] = sw_counter(PERF_COUNT_SW_CPU_CLOCK, -1, i);
	}
	if (fd >= 0)
		fd = b->tsc_fd = sw_counter(PERF_COUNT_SW_CPU_CLOCK, -1, 0);
	for (int s = 0; s < SCOPES_MAX && fd >= 0; s++)
		for (int e = 0; e < HWPC_EVENTS && fd >= 0; e++)
			fd = b->sfd[s][e] = sw_counter(
			    e == 0 ? PERF_COUNT_SW_TASK_CLOCK : sw_event[e], b->child[s], -1);
	if (fd < 0)
		snprintf(b->counters_error, sizeof(b->counters_error),
		         "perf_event_open (software events): %s", strerror(-fd));
	return fd >= 0;
}

static void start_children(struct bench *b)
{
	for (int s = 0; s < SCOPES_MAX; s++) {
		pid_t pid = fork();
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
		b->child[s] = pid;
	}
}

static void stop_children(struct bench *b)
{
	for (int s = 0; s < SCOPES_MAX; s++)
		if (b->child[s] > 0) {
			kill(b->child[s], SIGKILL);
			waitpid(b->child[s], NULL, 0);
		}
}

/* The batch without the model: each scope's CPU time, the machine's, the CPU-time shares. */
static void batch_floor(struct bench *b, int n)
{
	uint64_t busy = 0, total = 0, forks = 0, ticks[SCOPES_MAX];
	for (int s = 0; s < n; s++) {
		struct procfs_stat st;
		ticks[s] = procfs_read_stat(b->proc_fd, b->child[s], &st) == 0
		               ? procfs_total_ticks(&st)
		               : 0;
	}
	if (procfs_read_system(b->stat_fd, &busy, &total, &forks) < 0)
		busy = b->sys_busy;
	double busy_s = (double)(busy - b->sys_busy) + 1.0;
	for (int s = 0; s < n; s++) {
		sink += split_scope_share((double)(ticks[s] - b->sticks[s]), busy_s);
		b->sticks[s] = ticks[s];
	}
	b->sys_busy = busy;
}

/* Read one counter, its count since the last reading scaled for multiplexing. */
static double count(int fd, struct hwpc_reading *last)
{
	struct hwpc_reading r;
	if (hwpc_counter_read(fd, &r) < 0)
		return NAN;
	double d = hwpc_counter_delta(last, &r);
	*last = r;
	return d;
}

/* The model's window on top: every counter read and scaled, rates, predictions, shares. */
static void batch_model(struct bench *b, int n, double per_s)
{
	double rate[HWPC_EVENTS] = {0}, srate[SCOPES_MAX][HWPC_EVENTS], a = 0, m = 0;
	for (int i = 0; i < b->n_cpus; i++) {
		for (int e = 0; e < HWPC_EVENTS; e++)
			rate[e] += count(b->gfd[i][e], &b->glast[i][e]);
		a += count(b->mfd[i][0], &b->mlast[i][0]);
		m += count(b->mfd[i][1], &b->mlast[i][1]);
	}
	double tsc = count(b->tsc_fd, &b->tsc_last);
	for (int s = 0; s < n; s++)
		for (int e = 0; e < HWPC_EVENTS; e++)
			srate[s][e] = count(b->sfd[s][e], &b->slast[s][e]) / per_s;
	for (int e = 0; e < HWPC_EVENTS; e++)
		rate[e] /= per_s;
	double all = hwpc_model_dynamic(&b->model, rate);
	for (int s = 0; s < n; s++) {
		double share = all > 0 ? hwpc_model_dynamic(&b->model, srate[s]) / all : 0;
		sink += isfinite(share) ? share : 0;
	}
	sink += m > 0 ? a / m * tsc : 0;
}

static int cmp_double(const void *x, const void *y)
{
	double p = *(const double *)x, q = *(const double *)y;
	return (p > q) - (p < q);
}

struct stat3 {
	double med, lo, hi;
};

static struct stat3 summary(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return (struct stat3){n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[0], v[n - 1]};
}

static struct hwpc_sample synthetic(double t)
{
	struct hwpc_sample s = {.t = t, .seconds = 1.0};
	s.rate[0] = uniform(1e9, 5e9);
	s.rate[1] = s.rate[0] * uniform(0.3, 3.0);
	s.rate[2] = s.rate[1] * uniform(1e-5, 2e-2);
	s.watts = STATIC_W + uniform(-NOISE_W, NOISE_W);
	for (int k = 0; k < HWPC_EVENTS; k++)
		s.watts += true_coef[k] * s.rate[k];
	return s;
}

/* A model of `window` that has learned window - 1 windows (the next add fits the intercept). */
static int model_before_full(struct hwpc_model *m, int window, double *t)
{
	if (hwpc_model_init(m, window, 0) < 0)
		return -ENOMEM;
	for (int i = 0; i < window - 1; i++) {
		struct hwpc_sample s = synthetic(++*t);
		hwpc_model_add(m, &s);
	}
	return 0;
}

static void model_copy(struct hwpc_model *dst, const struct hwpc_model *src)
{
	struct hwpc_sample *hist = dst->hist;
	double *err = dst->err;
	*dst = *src;
	dst->hist = hist;
	dst->err = err;
	memcpy(hist, src->hist, (size_t)src->window * (sizeof(*hist) + sizeof(*err)));
}

/* Whether m recovered the synthetic machine: usable, coefficients and intercept close. */
static bool model_ok(const struct hwpc_model *m)
{
	char why[256];
	bool ok = hwpc_model_usable(m, why, sizeof(why)) && fabs(m->intercept - STATIC_W) < 1.0;
	for (int k = 0; k < 2; k++) /* the LLC term is too small a part of the power to pin */
		ok &= fabs(m->coef[k] - true_coef[k]) < 0.10 * true_coef[k];
	if (!ok)
		fprintf(stderr, "hwpc_cost: the fit is off: %s; intercept %.3f W, coef %g %g %g\n",
		        why, m->intercept, m->coef[0], m->coef[1], m->coef[2]);
	return ok;
}

static int bench_fits(int runs, int iter)
{
	printf("\n| fit (window = history) | nnls_fit, %d columns | add ending the learning "
	       "(fit with intercept) | add, fitted (prediction, error median) |\n",
	       HWPC_EVENTS + 1);
	printf("| --- | --- | --- | --- |\n");
	int rc = 0;
	for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
		int win = windows[w], n_iter = iter / 20 > 1 ? iter / 20 : 1;
		double t = 0, v[3][RUNS_MAX];
		struct hwpc_model base, m;
		if (model_before_full(&base, win, &t) < 0 || hwpc_model_init(&m, win, 0) < 0)
			return 1;
		double *x = malloc((size_t)win * (HWPC_EVENTS + 1) * sizeof(*x));
		double *y = malloc((size_t)win * sizeof(*y)), coef[NNLS_P_MAX];
		for (int i = 0; i < win; i++) {
			struct hwpc_sample s = synthetic(0);
			for (int k = 0; k < HWPC_EVENTS; k++)
				x[i * (HWPC_EVENTS + 1) + k] = s.rate[k];
			x[i * (HWPC_EVENTS + 1) + HWPC_EVENTS] = 1;
			y[i] = s.watts;
		}
		struct hwpc_sample last = synthetic(++t), next = synthetic(t + 1);
		next.t = t + 1;
		for (int r = 0; r < runs; r++) {
			double c0 = cpu_now();
			for (int i = 0; i < n_iter; i++) {
				nnls_fit(x, y, (size_t)win, HWPC_EVENTS + 1, coef, NULL);
				sink += coef[0];
			}
			double c1 = cpu_now();
			for (int i = 0; i < n_iter; i++) {
				model_copy(&m, &base);
				hwpc_model_add(&m, &last);
			}
			double c2 = cpu_now();
			for (int i = 0; i < n_iter; i++)
				hwpc_model_add(&m,
				               &next); /* fitted: no refit while the error is low */
			double c3 = cpu_now();
			v[0][r] = (c1 - c0) / n_iter * 1e6;
			v[1][r] = (c2 - c1) / n_iter * 1e6;
			v[2][r] = (c3 - c2) / n_iter * 1e6;
		}
		if (!model_ok(&m))
			rc = 1;
		struct stat3 s[3];
		for (int k = 0; k < 3; k++)
			s[k] = summary(v[k], runs);
		printf("| %d windows | %.2f µs (%.2f–%.2f) | %.2f µs (%.2f–%.2f) | %.3f µs "
		       "(%.3f–%.3f) |\n",
		       win, s[0].med, s[0].lo, s[0].hi, s[1].med, s[1].lo, s[1].hi, s[2].med,
		       s[2].lo, s[2].hi);
		free(x), free(y);
		hwpc_model_free(&base);
		hwpc_model_free(&m);
	}
	return rc;
}

static int bench_batches(struct bench *b, int runs, int iter)
{
	printf("| scopes | floor: batch without hwpc | batch with hwpc | added | added per scope "
	       "(beyond 0 scopes) | with ÷ floor | a second at 0.1 s ÷ floor |\n");
	printf("| --- | --- | --- | --- | --- | --- | --- |\n");
	double add0[RUNS_MAX] = {0};
	for (size_t k = 0; k < sizeof(scope_counts) / sizeof(scope_counts[0]); k++) {
		int n = scope_counts[k];
		double f[RUNS_MAX], h[RUNS_MAX], add[RUNS_MAX], per[RUNS_MAX], ratio[RUNS_MAX],
		    second[RUNS_MAX];
		batch_floor(b, n);
		batch_model(b, n, 1.0);
		for (int r = 0; r < runs; r++) {
			/* Side by side: the floor and the model's batch alternate in halves. */
			double tf = 0, th = 0;
			for (int half = 0; half < 2; half++) {
				double c0 = cpu_now();
				for (int i = 0; i < iter / 2; i++)
					batch_floor(b, n);
				double c1 = cpu_now();
				for (int i = 0; i < iter / 2; i++) {
					batch_floor(b, n);
					batch_model(b, n, 1.0);
				}
				double c2 = cpu_now();
				tf += c1 - c0;
				th += c2 - c1;
			}
			int done = 2 * (iter / 2);
			f[r] = tf / done * 1e6;
			h[r] = th / done * 1e6;
			add[r] = h[r] - f[r];
			if (n == 0)
				add0[r] = add[r];
			per[r] = n ? (add[r] - add0[r]) / n : 0;
			ratio[r] = h[r] / f[r];
			/* The attribution wakes at every 0.1 s sample, the model's window once a
			 * second: ten floor batches and one window. */
			second[r] = (10 * f[r] + add[r]) / (10 * f[r]);
		}
		struct stat3 sf = summary(f, runs), sh = summary(h, runs), sa = summary(add, runs),
		             sp = summary(per, runs), sr = summary(ratio, runs),
		             ss = summary(second, runs);
		char per_s[64] = "—";
		if (n)
			snprintf(per_s, sizeof(per_s), "%.2f µs (%.2f–%.2f)", sp.med, sp.lo, sp.hi);
		printf(
		    "| %d | %.2f µs (%.2f–%.2f) | %.2f µs (%.2f–%.2f) | %.2f µs (%.2f–%.2f) | %s | "
		    "%.2f× (%.2f–%.2f) | %.3f× (%.3f–%.3f) |\n",
		    n, sf.med, sf.lo, sf.hi, sh.med, sh.lo, sh.hi, sa.med, sa.lo, sa.hi, per_s,
		    sr.med, sr.lo, sr.hi, ss.med, ss.lo, ss.hi);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int runs = 9, iter = 2000, opt;
	while ((opt = getopt(argc, argv, "r:n:")) != -1) {
		if (opt == 'r')
			runs = atoi(optarg);
		else if (opt == 'n')
			iter = atoi(optarg);
		else {
			fprintf(stderr, "usage: %s [-r RUNS] [-n ITER]\n", argv[0]);
			return 2;
		}
	}
	if (runs < 1 || runs > RUNS_MAX || iter < 2) {
		fprintf(stderr, "hwpc_cost: 1 to %d runs of at least 2 iterations\n", RUNS_MAX);
		return 2;
	}
	static struct bench b;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	b.n_cpus = ncpu < 1 ? 1 : ncpu > CPUS_MAX ? CPUS_MAX : (int)ncpu;
	b.proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	b.stat_fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
	if (b.proc_fd < 0 || b.stat_fd < 0) {
		perror("hwpc_cost: /proc");
		return 1;
	}
	/* The model the batches predict with: fitted over a full default window. */
	double t = 0;
	if (model_before_full(&b.model, HWPC_ERROR_WINDOW, &t) < 0)
		return 1;
	struct hwpc_sample s = synthetic(++t);
	hwpc_model_add(&b.model, &s);
	if (!model_ok(&b.model))
		return 1;
	start_children(&b);
	printf("# hwpc_cost: %d CPUs, %d runs of %d batches (fits: %d), thread CPU time; "
	       "median (min–max)\n\n",
	       b.n_cpus, runs, iter, iter / 20 > 1 ? iter / 20 : 1);
	int rc = 0;
	if (open_counters(&b))
		rc = bench_batches(&b, runs, iter);
	else
		printf("batches: not measured: %s\n", b.counters_error);
	rc |= bench_fits(runs, iter);
	stop_children(&b);
	hwpc_model_free(&b.model);
	return rc;
}
