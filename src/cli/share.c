/*
 * The command's own share for `energy run`: energyd watches the command's process tree from
 * before it executes (the child waits on a pipe until the watch exists) until after it has
 * exited (it stays a zombie until the share is read), then answers energy?scope=kernel:ID.
 * Without energyd, the share is estimated in-process from the child's CPU time.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "source.h"
#include "split.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *share_request(struct cli *cli, const char *method, const char *path,
                             const char *body, int *status)
{
	struct energy_client *c;
	if (energy_client_open(cli->socket, &c) < 0)
		return NULL;
	char *resp = NULL;
	int rc = energy_client_request(c, method, path, body, status, &resp);
	energy_client_close(c);
	if (rc < 0)
		return NULL;
	json_t *o = json_loads(resp, 0, NULL);
	free(resp);
	return o;
}

int share_watch(struct cli *cli, int pid)
{
	char body[96];
	snprintf(body, sizeof(body), "{\"pid\": %d, \"label\": \"energy run %d\"}", pid, pid);
	int status = 0;
	json_t *o = share_request(cli, "POST", "/api/v1/watch", body, &status);
	int id = status == 201 ? (int)json_integer_value(json_object_get(o, "id")) : 0;
	if (!id)
		fprintf(stderr,
		        "energy run: energyd did not watch the command (%d%s%s): no own share\n",
		        status, o ? ": " : "",
		        o ? json_string_value(json_object_get(o, "error")) : "");
	json_decref(o);
	return id;
}

json_t *share_fetch(struct cli *cli, int id, double t0, double t1)
{
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/energy?from=%.6f&to=%.6f&scope=kernel:%d", t0, t1,
	         id);
	/* The watch is split at the sample rate; wait (a few samples at most) until it covers
	 * the end of the command. */
	for (int i = 0; i < 100; i++) {
		int status = 0;
		json_t *o = share_request(cli, "GET", path, NULL, &status);
		if (status == 200 && !json_is_true(json_object_get(o, "clamped"))) {
			json_t *scope = json_incref(json_object_get(o, "scope"));
			json_decref(o);
			return scope;
		}
		json_decref(o);
		usleep(50000);
	}
	fprintf(stderr, "energy run: energyd has not attributed the command's interval yet\n");
	return NULL;
}

void share_unwatch(struct cli *cli, int id)
{
	char path[64];
	snprintf(path, sizeof(path), "/api/v1/watch/%d", id);
	int status;
	json_decref(share_request(cli, "DELETE", path, NULL, &status));
}

int share_read_cpu(const char *proc_root, uint64_t *busy, uint64_t *total)
{
	char path[600], buf[16384];
	snprintf(path, sizeof(path), "%s/stat", proc_root);
	int rc = energy_read_text_at(AT_FDCWD, path, buf, sizeof(buf), false);
	return rc < 0 ? rc : model_cpu_parse_stat(buf, busy, total, NULL);
}

json_t *share_in_process(double host_joules, double own_cpu_s, uint64_t busy_ticks,
                         uint64_t total_ticks)
{
	/* energyd's attribution (split.h): the host's energy splits into active and idle by the
	 * machine's busy share of CPU time, and the command gets the active part times its share
	 * of the busy CPU time. */
	long hz = sysconf(_SC_CLK_TCK);
	double busy_s = (double)busy_ticks / (double)(hz > 0 ? hz : 100);
	uint64_t e_uj = host_joules > 0 ? (uint64_t)llround(host_joules * 1e6) : 0;
	uint64_t active_uj = 0, idle_uj = 0;
	if (split_active_idle(e_uj, busy_ticks, total_ticks, &active_uj, &idle_uj) < 0)
		active_uj = 0;
	double joules = (double)active_uj / 1e6 * split_scope_share(own_cpu_s, busy_s);
	double share = host_joules > 0 ? joules / host_joules : 0;
	return json_pack("{s:s, s:f, s:f, s:s, s:b, s:f}", "scope", "command", "joules", joules,
	                 "share", share, "method", "cpu-time-share", "measured", false, "cpu_s",
	                 own_cpu_s);
}
