/*
 * The HTTP API as a local user reaches it: the input is the raw bytes sent on a connection to
 * energyd's unix socket (request line, headers, body), served by the real http.c on
 * libmicrohttpd and the real routes of api_routes.c and the api_*.c files, in this process.
 *
 * energyd's state is set up once: a fake sysfs with one RAPL package zone and a cgroup, a fake
 * /proc with one process of the caller's uid, a few samples taken by hand with the attribution
 * thread scanning after each (then no thread but libmicrohttpd's, so that an input gives the
 * same answer when it is replayed; the sampler is marked stopped so that /api/v1/stream ends
 * after its headers), a long-term record in a temporary SQLite file holding
 * those samples, and the static carbon provider with a price. Each input is sent on a new
 * connection; the write side is then shut down and the answer read to the end.
 *
 * Checked besides the sanitizers: every connection ends with an answer or a close within
 * FUZZ_HTTP_ANSWER_S, an answer is HTTP, and no request is answered 500 (bad input gets a 4xx).
 */
#define _GNU_SOURCE
#include "api.h"
#include "attrib.h"
#include "carbon.h"
#include "energy.h"
#include "http.h"
#include "log.h"
#include "sampler.h"
#include "source.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define FUZZ_HTTP_ANSWER_S   20
#define FUZZ_HTTP_ANSWER_MAX (4 << 20)

static struct {
	char dir[80];
	char sock[128];
	int energy_fd;
	uint64_t energy_uj;
	struct channel_set set;
	struct sampler sampler;
	struct attrib attrib;
	struct store store;
	struct daemon daemon;
	struct api api;
	struct http_server http;
} g;

/* energyd's log (log.c is not linked): libmicrohttpd's complaints about malformed requests
 * would bury a sanitizer report; kept quiet unless FUZZ_HTTP_LOG is set. */
void log_msg(int priority, const char *fmt, ...)
{
	if (!getenv("FUZZ_HTTP_LOG"))
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "energyd: <%d> ", priority);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void die(const char *what)
{
	fprintf(stderr, "fuzz_http setup: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void put_file(const char *rel, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", g.dir, rel);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		die(path);
}

static void make_dir(const char *rel)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", g.dir, rel);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(path);
}

/* Remove the temporary tree at exit (files, then directories, deepest first). */
static void cleanup(void)
{
	if (g.http.n)
		http_stop(&g.http);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g.dir);
	if (g.dir[0] && system(cmd) != 0)
		fprintf(stderr, "fuzz_http: could not remove %s\n", g.dir);
}

/* One sample: the package zone's counter advances by 2 J (20 W over 0.1 s of sample time). */
static void take_sample(void)
{
	char text[32];
	g.energy_uj += 2000000;
	int n = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)g.energy_uj);
	if (pwrite(g.energy_fd, text, (size_t)n, 0) != n)
		die("energy_uj");
	struct timespec ts = {0, 20000000}; /* lets the attribution thread catch up */
	nanosleep(&ts, NULL);
	sampler_tick(&g.sampler);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	signal(SIGPIPE, SIG_IGN);
	/* Under $TMPDIR when set (run.sh gives one it removes: a crash skips the atexit). */
	const char *tmp = getenv("TMPDIR");
	snprintf(g.dir, sizeof(g.dir), "%s/fuzz-http-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(g.dir))
		die("mkdtemp");
	atexit(cleanup);
	make_dir("sys");
	make_dir("sys/class");
	make_dir("sys/class/powercap");
	make_dir("sys/class/powercap/intel-rapl:0");
	put_file("sys/class/powercap/intel-rapl:0/name", "package-0\n");
	put_file("sys/class/powercap/intel-rapl:0/max_energy_range_uj", "262143328850\n");
	put_file("sys/class/powercap/intel-rapl:0/enabled", "1\n");
	put_file("sys/class/powercap/intel-rapl:0/energy_uj", "0\n");
	make_dir("proc");
	put_file("proc/stat", "cpu  100 0 50 1000 0 0 0 0 0 0\ncpu0 100 0 50 1000 0 0 0 0 0 0\n");
	/* One process of ours and one cgroup, so that watches can be added (and the table fill). */
	char text[512];
	make_dir("proc/1");
	put_file("proc/1/stat", "1 (kernel) R 0 1 1 0 -1 4194304 0 0 0 0 500 0 0 0 20 0 1 0 100 "
	                        "1000000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 "
	                        "0 0 0\n");
	unsigned uid = (unsigned)getuid();
	snprintf(text, sizeof(text), "Name:\tkernel\nState:\tR (running)\nUid:\t%u\t%u\t%u\t%u\n",
	         uid, uid, uid, uid);
	put_file("proc/1/status", text);
	make_dir("sys/fs");
	make_dir("sys/fs/cgroup");
	put_file("sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
	make_dir("sys/fs/cgroup/user.slice");
	put_file("sys/fs/cgroup/user.slice/cpu.stat", "usage_usec 5000\nuser_usec 5000\n");
	make_dir("dev");
	char path[256], sys[128], proc[128], dev[128];
	snprintf(path, sizeof(path), "%s/sys/class/powercap/intel-rapl:0/energy_uj", g.dir);
	g.energy_fd = open(path, O_WRONLY | O_CLOEXEC);
	if (g.energy_fd < 0)
		die(path);
	snprintf(sys, sizeof(sys), "%s/sys", g.dir);
	snprintf(proc, sizeof(proc), "%s/proc", g.dir);
	snprintf(dev, sizeof(dev), "%s/dev", g.dir);

	struct source_config scfg = {.sysfs_root = sys,
	                             .proc_root = proc,
	                             .dev_root = dev,
	                             .nvml_lib = "/nonexistent/libnvidia-ml.so.1"};
	g.daemon.n_families =
	    sources_open_all(&scfg, &g.set, g.daemon.families, DAEMON_FAMILIES_MAX);
	if (g.set.n < 1) {
		fprintf(stderr, "fuzz_http setup: the fake RAPL zone was not opened\n");
		exit(1);
	}
	char err[1024];
	struct carbon_config cc;
	carbon_config_defaults(&cc);
	if (carbon_config_set(&cc, "price_per_kwh", "0.25", err, sizeof(err)) < 0 ||
	    carbon_config_set(&cc, "currency", "EUR", err, sizeof(err)) < 0 ||
	    carbon_open(&cc, &g.daemon.carbon, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_http setup: carbon: %s\n", err);
		exit(1);
	}
	char cgroup[160];
	snprintf(cgroup, sizeof(cgroup), "%s/sys/fs/cgroup", g.dir);
	struct attrib_config acfg = {.proc_root = proc,
	                             .cgroup_root = cgroup,
	                             .scan_interval_s = 0.01, /* a scan per sample */
	                             .dram_by_cpu = true,
	                             .history_s = 900};
	if (attrib_open(&g.attrib, &acfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_http setup: attribution: %s\n", err);
		exit(1);
	}
	if (sampler_init(&g.sampler, &g.set, 0.1, 900) < 0)
		die("sampler_init");
	/* Attribution runs while the samples are taken (its scans need consecutive samples), then
	 * stops with the sampler: its state stays as it was. */
	if (attrib_start(&g.attrib, &g.sampler) < 0)
		die("attrib_start");
	for (int i = 0; i < 8; i++)
		take_sample();
	struct store_options sopt;
	store_options_defaults(&sopt);
	snprintf(sopt.path, sizeof(sopt.path), "%s/energy.db", g.dir);
	if (store_init_sampler(&g.store, &sopt, &g.sampler) < 0) {
		fprintf(stderr, "fuzz_http setup: cannot create the long-term store\n");
		exit(1);
	}
	store_collect(&g.store, &g.sampler.history);
	if (store_flush(&g.store, energy_wall_time()) < 0) {
		fprintf(stderr, "fuzz_http setup: store: %s\n", g.store.info.error);
		exit(1);
	}
	atomic_store(&g.sampler.stop, true); /* /api/v1/stream: no further tick will come */
	attrib_stop(&g.attrib);

	g.api.d = &g.daemon;
	g.daemon.sampler = &g.sampler;
	g.daemon.attrib = &g.attrib;
	g.daemon.set = &g.set;
	g.daemon.store = &g.store;
	snprintf(g.daemon.hostname, sizeof(g.daemon.hostname), "fuzz");
	g.daemon.uid = getuid();
	snprintf(g.daemon.user, sizeof(g.daemon.user), "fuzz");
	snprintf(g.daemon.privileges, sizeof(g.daemon.privileges), "running unprivileged");
	snprintf(g.daemon.state_dir, sizeof(g.daemon.state_dir), "%s", g.dir);
	g.daemon.min_interval_s = 0.01;
	g.daemon.history_s = 900;
	snprintf(g.sock, sizeof(g.sock), "unix:%s/sock", g.dir);
	const char *addr = g.sock;
	g.daemon.listen[g.daemon.n_listen++] = addr;
	struct http_limits limits = {.conns_per_user = HTTP_DEFAULT_CONNS_PER_USER,
	                             .timeout_s = HTTP_DEFAULT_TIMEOUT_S};
	if (http_listen(&g.http, &addr, 1, err, sizeof(err)) < 0 ||
	    http_start(&g.http, api_handle, &g.api, &limits, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_http setup: %s\n", err);
		exit(1);
	}
	return 0;
}

/* Read the whole answer (until the server closes); abort if it takes too long. */
static size_t read_answer(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	double deadline = (double)energy_monotonic_ns() / 1e9 + FUZZ_HTTP_ANSWER_S;
	for (;;) {
		double left = deadline - (double)energy_monotonic_ns() / 1e9;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&pfd, 1, (int)(left * 1000) + 1) == 0) {
			fprintf(stderr,
			        "fuzz_http: no complete answer within %d s (%zu bytes read)\n",
			        FUZZ_HTTP_ANSWER_S, len);
			abort();
		}
		char scratch[4096];
		char *dst = len < cap ? buf + len : scratch;
		size_t room = len < cap ? cap - len : sizeof(scratch);
		ssize_t n = read(fd, dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len < cap)
			len += (size_t)n;
	}
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", g.sock + 5);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "fuzz_http: cannot connect to %s: %s\n", sa.sun_path,
		        strerror(errno));
		abort();
	}
	/* The server may answer (and close) before it has read everything: stop writing then. */
	for (size_t off = 0; off < size;) {
		ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	static char answer[FUZZ_HTTP_ANSWER_MAX];
	size_t len = read_answer(fd, answer, sizeof(answer) - 1);
	close(fd);
	answer[len] = '\0';
	if (getenv("FUZZ_HTTP_SHOW")) /* when replaying an input: what energyd answered */
		fprintf(stderr, "%s\n", answer);
	if (len == 0)
		return 0; /* closed without an answer: a request MHD could not parse */
	if (strncmp(answer, "HTTP/1.", 7) != 0) {
		fprintf(stderr, "fuzz_http: the answer is not HTTP: %.80s\n", answer);
		abort();
	}
	const char *sp = strchr(answer, ' ');
	if (sp && strncmp(sp + 1, "500", 3) == 0) {
		fprintf(stderr, "fuzz_http: answered 500:\n%.2000s\n", answer);
		abort();
	}
	return 0;
}
