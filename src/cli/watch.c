/*
 * energy watch: a live view for a terminal, also over ssh at 80 columns. Channels with their
 * power and a short history, the host total, and the processes using the most (attributed)
 * power. Redraws in place on the alternate screen; q quits. Plain ANSI escapes (no curses):
 * cursor home, clear to end of line, clear to end of screen.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define WATCH_HISTORY_S 60

static volatile sig_atomic_t watch_stop;
static struct termios watch_saved;
static bool watch_raw;

static void on_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

static void term_restore(void)
{
	if (watch_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &watch_saved);
	watch_raw = false;
	fputs("\033[?25h\033[?1049l", stdout); /* cursor back, leave the alternate screen */
	fflush(stdout);
}

static void term_setup(void)
{
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &watch_saved) == 0) {
		struct termios t = watch_saved;
		t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		t.c_cc[VMIN] = 0;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
			watch_raw = true;
	}
	fputs("\033[?1049h\033[?25l", stdout);
}

static int term_cols(int *rows)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) {
		*rows = ws.ws_row;
		return ws.ws_col;
	}
	*rows = 24;
	return 80;
}

static bool locale_utf8(void)
{
	const char *vars[] = {"LC_ALL", "LC_CTYPE", "LANG"};
	for (int i = 0; i < 3; i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return strcasestr(v, "utf-8") || strcasestr(v, "utf8");
	}
	return false;
}

/* A sparkline of values (NaN for gaps) scaled to their maximum, width characters. */
static void sparkline(json_t *values, int width, bool utf8, char *out, size_t len)
{
	static const char *blocks[] = {"\u2581", "\u2582", "\u2583", "\u2584",
	                               "\u2585", "\u2586", "\u2587", "\u2588"};
	static const char ascii[] = "_.-:=+*#";
	size_t n = json_array_size(values);
	size_t first = n > (size_t)width ? n - (size_t)width : 0;
	double max = 0;
	for (size_t i = first; i < n; i++) {
		double v = json_number_value(json_array_get(values, i));
		if (json_is_number(json_array_get(values, i)) && v > max)
			max = v;
	}
	size_t pos = 0;
	out[0] = '\0';
	for (int k = 0; k < width - (int)(n - first); k++)
		pos += (size_t)snprintf(out + pos, len - pos, " ");
	for (size_t i = first; i < n && pos < len; i++) {
		json_t *j = json_array_get(values, i);
		if (!json_is_number(j)) {
			pos += (size_t)snprintf(out + pos, len - pos, " ");
			continue;
		}
		int level = max > 0 ? (int)(json_number_value(j) / max * 7.0 + 0.5) : 0;
		level = level < 0 ? 0 : level > 7 ? 7 : level;
		if (utf8)
			pos += (size_t)snprintf(out + pos, len - pos, "%s", blocks[level]);
		else
			pos += (size_t)snprintf(out + pos, len - pos, "%c", ascii[level]);
	}
}

static void line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void line(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs("\033[K\n", stdout);
}

static void draw(struct cli *cli, int top, bool utf8)
{
	int rows;
	int cols = term_cols(&rows);
	int spark_w = cols - 58;
	if (spark_w < 5)
		spark_w = 5;
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/history?seconds=%d&max_points=%d", WATCH_HISTORY_S,
	         spark_w);
	json_t *now = cli_get(cli, "/api/v1/now", true);
	json_t *hist = now ? cli_get(cli, path, true) : NULL;
	snprintf(path, sizeof(path), "/api/v1/processes?top=%d", top);
	json_t *procs = now ? cli_get(cli, path, true) : NULL;

	time_t t = time(NULL);
	char clock[16];
	strftime(clock, sizeof(clock), "%H:%M:%S", localtime(&t));
	fputs("\033[H", stdout);
	line("energy watch  %s  (q quits)", clock);
	if (!now) {
		line("%s", "");
		line("cannot reach energyd (--socket, $ENERGYD_SOCKET); retrying");
		fputs("\033[J", stdout);
		fflush(stdout);
		return;
	}
	line("%s", "");
	line("%-18s %10s  %-*s  %11s  %s", "CHANNEL", "POWER", spark_w, "LAST 60 s", "ENERGY", "");
	const char *id;
	json_t *ch;
	char w[32], j[32], spark[1024];
	json_t *hch = json_object_get(hist, "channels");
	int used = 4;
	json_object_foreach(json_object_get(now, "channels"), id, ch)
	{
		cli_format_reading(ch, w, j);
		sparkline(json_object_get(json_object_get(hch, id), "watts"), spark_w, utf8, spark,
		          sizeof(spark));
		line("%-18.18s %10s  %s  %11s  %s", id, w, spark, j, cli_measured_word(ch));
		used++;
	}
	json_t *host = json_object_get(now, "host");
	cli_format_reading(host, w, j);
	sparkline(json_object_get(json_object_get(hist, "host"), "watts"), spark_w, utf8, spark,
	          sizeof(spark));
	line("%-18s %10s  %s  %11s  %s", "host total", w, spark, j, cli_measured_word(host));
	line("%s", "");
	if (!procs) {
		line("processes: not available from this energyd");
	} else {
		json_t *ph = json_object_get(procs, "host");
		char aw[32], iw[32];
		cli_format_watts(json_number_value(json_object_get(ph, "active_watts")), aw,
		                 sizeof(aw));
		cli_format_watts(json_number_value(json_object_get(ph, "idle_watts")), iw,
		                 sizeof(iw));
		char text[256];
		snprintf(text, sizeof(text),
		         "Estimated (%s): active %s, idle %s, CPUs %.0f %% busy",
		         json_string_value(json_object_get(procs, "method")), aw, iw,
		         100 * json_number_value(json_object_get(ph, "busy_share")));
		line("%.*s", cols - 1, text);
		line("%7s %-10s %10s %6s  %s", "PID", "USER", "POWER", "CPU%", "COMMAND");
		used += 4;
		size_t i;
		json_t *p;
		json_array_foreach(json_object_get(procs, "processes"), i, p)
		{
			if (used >= rows - 1)
				break;
			cli_format_watts(json_number_value(json_object_get(p, "watts")), w,
			                 sizeof(w));
			line("%7lld %-10.10s %10s %6.1f  %.*s",
			     (long long)json_integer_value(json_object_get(p, "pid")),
			     json_string_value(json_object_get(p, "user")), w,
			     100 * json_number_value(json_object_get(p, "cpu_share")),
			     cols > 40 ? cols - 40 : 1,
			     json_string_value(json_object_get(p, "command")));
			used++;
		}
	}
	fputs("\033[J", stdout);
	fflush(stdout);
	json_decref(now);
	json_decref(hist);
	json_decref(procs);
}

int cli_watch(struct cli *cli, int argc, char **argv)
{
	double interval = 1.0;
	int top = 10;
	for (int i = 1; i < argc; i++) {
		double v;
		if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			if (energy_parse_double(argv[++i], &v) < 0 || v < 0.1 || v > 3600) {
				fprintf(stderr, "energy watch: --interval: 0.1 to 3600 seconds\n");
				return 2;
			}
			interval = v;
		} else if (strcmp(argv[i], "--top") == 0 && i + 1 < argc) {
			if (energy_parse_double(argv[++i], &v) < 0 || v < 1 || v > 1000) {
				fprintf(stderr, "energy watch: --top: 1 to 1000\n");
				return 2;
			}
			top = (int)v;
		} else {
			fprintf(stderr, "Usage: energy watch [--interval S] [--top N]\n");
			return 2;
		}
	}
	json_t *probe = cli_get(cli, "/api/v1/info", false);
	if (!probe)
		return 1;
	json_decref(probe);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	bool utf8 = locale_utf8();
	term_setup();
	while (!watch_stop) {
		draw(cli, top, utf8);
		uint64_t until = energy_monotonic_ns() + (uint64_t)(interval * 1e9);
		for (;;) {
			uint64_t now = energy_monotonic_ns();
			if (watch_stop || now >= until)
				break;
			struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
			int rc = poll(&pfd, 1, (int)((until - now) / 1000000 + 1));
			if (rc > 0) {
				char c;
				ssize_t n = read(STDIN_FILENO, &c, 1);
				if (n == 0 && !isatty(STDIN_FILENO))
					pfd.fd =
					    -1; /* stdin closed: keep refreshing until a signal */
				if (n == 1 && (c == 'q' || c == 'Q'))
					watch_stop = 1;
				if (n == 0)
					usleep(100000);
			}
		}
	}
	term_restore();
	return 0;
}
