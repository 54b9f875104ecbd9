/*
 * The attribution routes. Registrations (POST/DELETE /watch) need the caller's identity, which
 * only the unix socket gives (SO_PEERCRED): over TCP they are refused. Every attributed figure
 * is an estimate and says so ("measured": false) with its method.
 */
#define _GNU_SOURCE
#include "api.h"
#include "attrib.h"
#include "energy.h"
#include "hwpc.h"
#include "query.h"
#include "text.h"

#include <errno.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTRIB_API_TOP_MAX 10000

static const char *const policy =
    "CPU-side channels: active = energy x busy/total CPU time (/proc/stat), idle = the rest; a "
    "scope gets active x its CPU time / busy CPU time. GPUs: split by per-process utilisation "
    "when the source reports it, else unattributed. Watches (pid trees and cgroups): where "
    "hardware counters and RAPL "
    "are available, hwpc-model replaces the CPU time share by the share of the dynamic power a "
    "model of cycles, instructions and LLC misses predicts (GET /api/v1/model). Estimates, not "
    "measurements.";

/* A uid by number or name. */
static int parse_uid(const char *s, uid_t *uid)
{
	uint64_t v;
	if (energy_parse_u64(s, &v) == 0) {
		if (v >= UINT32_MAX)
			return -ERANGE;
		*uid = (uid_t)v;
		return 0;
	}
	struct passwd pw, *r = NULL;
	char tmp[1024];
	if (getpwnam_r(s, &pw, tmp, sizeof(tmp), &r) == 0 && r) {
		*uid = r->pw_uid;
		return 0;
	}
	return -ENOENT;
}

static int parse_pid(const char *s, int *pid)
{
	uint64_t v;
	if (energy_parse_u64(s, &v) < 0 || v == 0 || v > INT32_MAX)
		return -EINVAL;
	*pid = (int)v;
	return 0;
}

/* ---- watches --------------------------------------------------------------------------------- */

/* The method of attributed figures, with the lock held: CPU time shares, and GPU utilisation
 * shares when a GPU of the host total is split by them. */
static const char *method_of(const struct attrib *a, const struct channel_set *set)
{
	for (int c = 0; c < set->n; c++)
		if (attrib_channel_in_coverage(a, c) && attrib_channel_method(a, c) == SPLIT_GPU)
			return ATTRIB_METHOD "+" ATTRIB_METHOD_GPU;
	return ATTRIB_METHOD;
}

/* A watch's method, with the lock held: the hardware-counter model where it split the watch's
 * latest window (hwpc.h), else CPU time shares and why not; GPU shares added as above. */
static const char *watch_method(const struct attrib *a, const struct channel_set *set,
                                const struct attrib_watch *w, const char **reason)
{
	bool gpu = strcmp(method_of(a, set), ATTRIB_METHOD) != 0;
	const char *m = hwpc_watch_method(attrib_hwpc(a), w->id, reason);
	if (strcmp(m, HWPC_METHOD) == 0)
		return gpu ? HWPC_METHOD "+" ATTRIB_METHOD_GPU : HWPC_METHOD;
	return method_of(a, set);
}

static json_t *watch_json(const struct attrib *a, const struct channel_set *set,
                          const struct attrib_watch *w)
{
	const char *reason;
	const char *method = watch_method(a, set, w, &reason);
	return json_pack("{s:i, s:o, s:o, s:o, s:I, s:f, s:b, s:o, s:f, s:f, s:s, s:o, s:b}", "id",
	                 w->id, "label", text_json(w->label), "pid",
	                 w->is_cgroup ? json_null() : json_integer(w->pid), "cgroup",
	                 w->is_cgroup ? text_json(w->cgroup) : json_null(), "owner_uid",
	                 (json_int_t)w->owner, "created_at", w->created_at, "alive", w->alive,
	                 "ended_at", w->alive ? json_null() : json_real(w->ended_at), "joules",
	                 w->uj / 1e6, "cpu_s", w->cpu_s, "method", method, "method_reason",
	                 *reason ? text_json(reason) : json_null(), "measured", false);
}

/* What a refused registration answers: rc is attrib_watch_add's. */
static void watch_post_error(struct api *api, struct http_response *res, int rc, bool is_pid)
{
	static const struct {
		int rc, status;
		const char *error, *hint;
	} refusals[] = {
	    {-ESRCH, 404, "no such process (or its /proc entry cannot be read)",
	     "give the pid of a running process"},
	    {-ENOENT, 404, "no such cgroup (or it has no cpu.stat)",
	     "give a path under the cgroup v2 root, such as \"/user.slice\""},
	    {-EOPNOTSUPP, 404, "cgroup v2 is not available to energyd",
	     "mount cgroup2 or set --cgroup-root"},
	    {-EINVAL, 400, "bad cgroup path",
	     "an absolute path under the cgroup root, without '..' or '//'"},
	    {-ENOSPC, 503, "too many watches",
	     "the table is full; delete watches that are no longer needed"},
	};
	if (rc == -EPERM) {
		http_error(res, 403,
		           is_pid ? "you do not own this process" : "you do not own this cgroup",
		           "only root or the owner (by uid) may register it");
		return;
	}
	if (rc == -EDQUOT) {
		char msg[128];
		snprintf(msg, sizeof(msg), "you hold your quota of %d watches",
		         attrib_config_of(api->d->attrib)->watches_per_user);
		http_error(
		    res, 429, msg,
		    "delete watches you no longer need (DELETE /api/v1/watch/ID); ended ones "
		    "make room by themselves");
		return;
	}
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
		if (refusals[i].rc == rc) {
			http_error(res, refusals[i].status, refusals[i].error, refusals[i].hint);
			return;
		}
	http_error(res, 500, strerror(-rc), "");
}

static void watch_post(struct api *api, const struct http_request *req, struct http_response *res)
{
	if (!req->peer_known) {
		http_error(res, 403, "registrations need the caller's identity",
		           "register over the unix socket (SO_PEERCRED tells energyd who you are); "
		           "TCP clients cannot register");
		return;
	}
	json_error_t jerr;
	json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
	if (!json_is_object(body)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "the body is not a JSON object%s%s", body ? "" : ": ",
		         body ? "" : jerr.text);
		json_decref(body);
		http_error(res, 400, msg,
		           "send {\"pid\": N, \"label\": \"...\"} or {\"cgroup\": \"/path\", "
		           "\"label\": \"...\"}");
		return;
	}
	const char *key;
	json_t *val;
	json_object_foreach(body, key, val)
	{
		if (strcmp(key, "pid") && strcmp(key, "cgroup") && strcmp(key, "label")) {
			char msg[160];
			snprintf(msg, sizeof(msg), "unknown key '%.64s'", key);
			json_decref(body);
			http_error(res, 400, msg, "keys: pid or cgroup, and label");
			return;
		}
	}
	json_t *jpid = json_object_get(body, "pid"), *jcg = json_object_get(body, "cgroup");
	json_t *jlabel = json_object_get(body, "label");
	const char *err = NULL;
	if ((jpid != NULL) == (jcg != NULL))
		err = "give exactly one of pid and cgroup";
	else if (jpid && (!json_is_integer(jpid) || json_integer_value(jpid) <= 0 ||
	                  json_integer_value(jpid) > INT32_MAX))
		err = "pid must be a positive integer";
	else if (jcg && !json_is_string(jcg))
		err = "cgroup must be a path string such as \"/user.slice\"";
	else if (jlabel &&
	         (!json_is_string(jlabel) || strlen(json_string_value(jlabel)) >= ATTRIB_LABEL_MAX))
		err = "label must be a string of at most 127 bytes";
	if (err) {
		json_decref(body);
		http_error(res, 400, err, "send {\"pid\": N, \"label\": \"...\"}");
		return;
	}
	int id = 0;
	int rc = attrib_watch_add(api->d->attrib, jpid ? (int)json_integer_value(jpid) : 0,
	                          jcg ? json_string_value(jcg) : NULL,
	                          jlabel ? json_string_value(jlabel) : "", req->peer_uid, &id);
	json_decref(body);
	if (rc < 0) {
		watch_post_error(api, res, rc, jpid != NULL);
		return;
	}
	attrib_lock(api->d->attrib);
	char idtext[16];
	snprintf(idtext, sizeof(idtext), "%d", id);
	struct attrib_watch *w = attrib_watch_find(api->d->attrib, idtext, false, 0);
	json_t *o = w ? watch_json(api->d->attrib, api->d->set, w) : json_pack("{s:i}", "id", id);
	attrib_unlock(api->d->attrib);
	api_reply(res, 201, o);
}

void api_watch_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	const char *rest = req->path + strlen("/api/v1/watch");
	bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
	if (*rest == '\0') {
		if (strcmp(req->method, "POST") == 0) {
			watch_post(api, req, res);
			return;
		}
		if (!get) {
			http_error(res, 405, "method not allowed",
			           "GET lists watches, POST adds one");
			return;
		}
		json_t *a = json_array();
		struct attrib *at = api->d->attrib;
		attrib_lock(at);
		struct attrib_watch *const *watches;
		int n = attrib_watches_locked(at, &watches);
		for (int i = 0; i < n; i++)
			json_array_append_new(a, watch_json(at, api->d->set, watches[i]));
		attrib_unlock(at);
		api_reply(res, 200, json_pack("{s:o}", "watches", a));
		return;
	}
	int id;
	if (rest[0] != '/' || parse_pid(rest + 1, &id) < 0) {
		http_error(res, 404, "no such watch", "watch ids are positive integers");
		return;
	}
	if (get) {
		attrib_lock(api->d->attrib);
		struct attrib_watch *w = attrib_watch_find(api->d->attrib, rest + 1, false, 0);
		json_t *o = w ? watch_json(api->d->attrib, api->d->set, w) : NULL;
		attrib_unlock(api->d->attrib);
		if (o)
			api_reply(res, 200, o);
		else
			http_error(res, 404, "no such watch", "GET /api/v1/watch lists them");
		return;
	}
	if (strcmp(req->method, "DELETE") != 0) {
		http_error(res, 405, "method not allowed", "GET or DELETE /api/v1/watch/ID");
		return;
	}
	if (!req->peer_known) {
		http_error(res, 403, "deleting a watch needs the caller's identity",
		           "use the unix socket");
		return;
	}
	int rc = attrib_watch_remove(api->d->attrib, id, req->peer_uid);
	if (rc == -EPERM)
		http_error(res, 403, "not your watch",
		           "only root or who registered it may delete it");
	else if (rc < 0)
		http_error(res, 404, "no such watch", "GET /api/v1/watch lists them");
	else
		api_reply(res, 200, json_pack("{s:i}", "deleted", id));
}

/* ---- processes ------------------------------------------------------------------------------- */

static int cmp_watts_desc(const void *x, const void *y)
{
	const struct attrib_proc *a = *(const struct attrib_proc *const *)x;
	const struct attrib_proc *b = *(const struct attrib_proc *const *)y;
	if (a->watts != b->watts)
		return a->watts < b->watts ? 1 : -1;
	return (a->pid > b->pid) - (a->pid < b->pid);
}

void api_processes_route(struct api *api, const struct http_request *req, struct http_response *res)
{
	char err[256];
	double top;
	if (query_positive("top", http_query(req, "top"), 10, ATTRIB_API_TOP_MAX, &top, err,
	                   sizeof(err)) < 0 ||
	    top != floor(top)) {
		http_error(res, 400, top != floor(top) ? "'top' must be a whole number" : err,
		           "top: 1 to 10000");
		return;
	}
	uid_t uid = 0;
	const char *user = http_query(req, "user");
	if (user && parse_uid(user, &uid) < 0) {
		http_error(res, 400, "'user' is not a uid or a known user name",
		           "user=UID or user=NAME");
		return;
	}
	struct attrib *a = api->d->attrib;
	attrib_lock(a);
	const struct attrib_proc *procs;
	size_t n_procs = attrib_procs_locked(a, &procs);
	const struct attrib_proc **sorted = calloc(n_procs ? n_procs : 1, sizeof(*sorted));
	if (!sorted) {
		attrib_unlock(a);
		http_error(res, 503, "out of memory", "");
		return;
	}
	size_t n = 0;
	for (size_t i = 0; i < n_procs; i++)
		if (!user || procs[i].uid == uid)
			sorted[n++] = &procs[i];
	qsort(sorted, n, sizeof(*sorted), cmp_watts_desc);
	json_t *list = json_array();
	for (size_t i = 0; i < n && i < (size_t)top; i++) {
		const struct attrib_proc *p = sorted[i];
		char name[64];
		attrib_user_name(p->uid, name, sizeof(name));
		json_array_append_new(
		    list,
		    json_pack("{s:i, s:i, s:I, s:s, s:o, s:f, s:f, s:f, s:f}", "pid", p->pid,
		              "ppid", p->ppid, "uid", (json_int_t)p->uid, "user", name, "command",
		              text_json(p->comm), "watts", p->watts, "cpu_share", p->cpu_share,
		              "cpu_s", p->cpu_s, "tree_joules", p->tree_uj / 1e6));
	}
	struct attrib_status st;
	attrib_status_locked(a, &st);
	json_t *o = json_pack(
	    "{s:o, s:f, s:f, s:I, s:f, s:o, s:{s:f, s:f, s:f}, s:s, s:b, s:s}", "time",
	    st.have_scan ? json_real(st.scan_t) : json_null(), "interval_s", st.scan_dt,
	    "scan_interval_s", attrib_config_of(a)->scan_interval_s, "processes_scanned",
	    (json_int_t)st.n_procs, "scan_cost_s", st.scan_cost_s, "processes", list, "host",
	    "active_watts", st.active_w, "idle_watts", st.idle_w, "busy_share", st.busy_share,
	    "method", method_of(a, api->d->set), "measured", false, "policy", policy);
	attrib_unlock(a);
	free(sorted);
	api_reply(res, 200, o);
}

static bool attrib_off(const struct daemon *d, struct http_response *res)
{
	const char *why = attrib_off_reason(d->attrib);
	if (!why)
		return false;
	http_error(res, 503, why, "start energyd with a readable --proc-root");
	return true;
}

bool api_attrib_off(struct api *api, struct http_response *res)
{
	return attrib_off(api->d, res);
}

/* ---- scopes ---------------------------------------------------------------------------------- */

enum scope_kind { SCOPE_PID, SCOPE_KERNEL, SCOPE_CGROUP, SCOPE_USER };

struct scope_ref {
	enum scope_kind kind;
	int pid;
	uid_t uid;
	const char *arg; /* the scope as given in the path (pid, uid or name, cgroup path) */
};

static int scope_parse(const char *scope, struct scope_ref *r, char *err, size_t errlen)
{
	const char *colon = strchr(scope, ':');
	if (!colon || !colon[1]) {
		snprintf(err, errlen, "scope '%.64s' is not KIND:VALUE", scope);
		return -EINVAL;
	}
	r->arg = colon + 1;
	size_t klen = (size_t)(colon - scope);
	if (klen == 3 && strncmp(scope, "pid", 3) == 0) {
		r->kind = SCOPE_PID;
		if (parse_pid(r->arg, &r->pid) < 0) {
			snprintf(err, errlen, "pid scope needs a positive integer");
			return -EINVAL;
		}
	} else if (klen == 6 && strncmp(scope, "kernel", 6) == 0) {
		r->kind = SCOPE_KERNEL;
	} else if (klen == 6 && strncmp(scope, "cgroup", 6) == 0) {
		r->kind = SCOPE_CGROUP;
		if (r->arg[0] != '/' || strstr(r->arg, "..") ||
		    strlen(r->arg) >= ATTRIB_CGROUP_MAX) {
			snprintf(err, errlen, "cgroup scope needs an absolute path without '..'");
			return -EINVAL;
		}
	} else if (klen == 4 && strncmp(scope, "user", 4) == 0) {
		r->kind = SCOPE_USER;
		if (parse_uid(r->arg, &r->uid) < 0) {
			snprintf(err, errlen, "user scope needs a uid or a known user name");
			return -EINVAL;
		}
	} else {
		snprintf(err, errlen, "unknown scope kind '%.*s'", (int)(klen > 32 ? 32 : klen),
		         scope);
		return -EINVAL;
	}
	return 0;
}

/* Why a scan-based scope (pid, cgroup, user) is split by CPU time, with the lock held. */
static const char *scan_method_reason(const struct attrib *a)
{
	const struct hwpc *h = attrib_hwpc(a);
	if (!h || !h->on)
		return h ? h->error : "hardware counters are off";
	return "hardware counters follow watches (kernel:ID) only, of a pid tree or of a cgroup "
	       "(POST /api/v1/watch {\"cgroup\": PATH}); this scope is split by CPU time";
}

/* For a cgroup scope whose path a watch split by the hardware-counter model follows: the reason
 * names that watch (its figures are hwpc-model); NULL when there is none. With the lock held. */
static const char *cgroup_watch_reason(const struct attrib *a, const char *path, char *buf,
                                       size_t len)
{
	struct attrib_watch *const *watches;
	int n = attrib_watches_locked(a, &watches);
	for (int i = 0; i < n; i++) {
		const char *why;
		const struct attrib_watch *w = watches[i];
		if (!w->is_cgroup || !w->alive || strcmp(w->cgroup, path) != 0 ||
		    strcmp(hwpc_watch_method(attrib_hwpc(a), w->id, &why), HWPC_METHOD) != 0)
			continue;
		snprintf(
		    buf, len,
		    "the cgroup: scope is split by CPU time since energyd saw the cgroup; watch "
		    "%d follows this cgroup by its hardware counters (hwpc-model): scope=kernel:%d",
		    w->id, w->id);
		return buf;
	}
	return NULL;
}

static const char *scope_hint = "scope=pid:N, kernel:ID (a watch id or label), cgroup:/PATH "
                                "or user:UID";

int api_scope_clamp(struct daemon *d, const char *scope, double *t0, double *t1,
                    struct http_response *res)
{
	char err[160];
	struct scope_ref r;
	if (scope_parse(scope, &r, err, sizeof(err)) < 0) {
		http_error(res, 400, err, scope_hint);
		return -1;
	}
	if (attrib_off(d, res))
		return -1;
	struct attrib *a = d->attrib;
	struct attrib_status st;
	attrib_lock(a);
	attrib_status_locked(a, &st);
	attrib_unlock(a);
	/* Scan-based scopes are known up to the last scan, watches up to their last split,
	 * the active/idle split up to the newest sample handled. */
	double first = st.first_t;
	double last = r.kind == SCOPE_KERNEL ? st.split_t : st.scan_t;
	bool ready = r.kind == SCOPE_KERNEL ? st.split_t > 0 : st.have_scan && st.scan_dt > 0;
	if (!ready || first == 0) {
		http_error(res, 503, "no attribution yet",
		           "energyd has just started: attribution needs two scans; try again");
		return -1;
	}
	if (*t1 > last)
		*t1 = last;
	if (*t0 < first)
		*t0 = first;
	if (*t0 > *t1)
		*t0 = *t1;
	return 0;
}

json_t *api_scope(struct daemon *d, const struct http_request *req, const char *scope, double from,
                  double to, double host_joules, struct http_response *res)
{
	char err[160], key[ATTRIB_CGROUP_MAX + 16], why[256];
	struct scope_ref r;
	if (scope_parse(scope, &r, err, sizeof(err)) < 0) {
		http_error(res, 400, err, scope_hint);
		return NULL;
	}
	struct attrib *a = d->attrib;
	struct channel_set *set = d->set;
	attrib_lock(a);
	json_t *extra = NULL;
	bool known = true;
	const char *method = method_of(a, set), *method_reason = scan_method_reason(a);
	double resolution = attrib_config_of(a)->scan_interval_s;
	switch (r.kind) {
	case SCOPE_PID: {
		snprintf(key, sizeof(key), "pid:%d", r.pid);
		const struct attrib_proc *procs;
		size_t n_procs = attrib_procs_locked(a, &procs);
		bool alive = false;
		for (size_t i = 0; i < n_procs && !alive; i++)
			alive = procs[i].pid == r.pid;
		known = alive || attrib_has_series_locked(a, key);
		break;
	}
	case SCOPE_KERNEL: {
		struct attrib_watch *w =
		    attrib_watch_find(a, r.arg, req->peer_known, req->peer_uid);
		known = w != NULL;
		if (w) {
			snprintf(key, sizeof(key), "kernel:%d", w->id);
			extra = watch_json(a, set, w);
			method = watch_method(a, set, w, &method_reason);
			resolution = (double)d->sampler->interval_ns / 1e9;
			if (strncmp(method, HWPC_METHOD, strlen(HWPC_METHOD)) == 0)
				resolution = HWPC_WINDOW_MIN_S; /* split once per window */
		}
		break;
	}
	case SCOPE_CGROUP:
		snprintf(key, sizeof(key), "cgroup:%s", r.arg);
		known = attrib_has_series_locked(a, key);
		const struct attrib_cgroup *cgroups;
		size_t n_cgroups = attrib_cgroups_locked(a, &cgroups);
		for (size_t i = 0; i < n_cgroups && !known; i++)
			known = strcmp(cgroups[i].path, r.arg) == 0;
		const char *counted = cgroup_watch_reason(a, r.arg, why, sizeof(why));
		if (counted)
			method_reason = counted;
		break;
	case SCOPE_USER:
		snprintf(key, sizeof(key), "user:%u", (unsigned)r.uid);
		break;
	}
	if (!known) {
		attrib_unlock(a);
		json_decref(extra);
		if (r.kind == SCOPE_CGROUP && !attrib_has_cgroups(a))
			http_error(res, 404, "cgroup v2 is not available to energyd",
			           "mount cgroup2 or set --cgroup-root");
		else
			http_error(res, 404, "nothing known about this scope in the history held",
			           r.kind == SCOPE_KERNEL
			               ? "GET /api/v1/watch lists the watches"
			               : "the process or cgroup must have existed "
			                 "within the history held");
		return NULL;
	}
	double joules = (attrib_series_at(a, key, to) - attrib_series_at(a, key, from)) / 1e6;
	json_t *channels = json_object();
	double active = 0, idle = 0, unattr = 0;
	for (int c = 0; c < set->n; c++) {
		const char *id = set->ch[c].id;
		double v[3];
		const char *kinds[3] = {"active", "idle", "unattributed"};
		for (int k = 0; k < 3; k++) {
			snprintf(key, sizeof(key), "%s:%s", kinds[k], id);
			v[k] =
			    (attrib_series_at(a, key, to) - attrib_series_at(a, key, from)) / 1e6;
		}
		if (attrib_channel_in_coverage(a, c)) {
			active += v[0];
			idle += v[1];
			unattr += v[2];
		}
		json_t *cj = json_pack("{s:f, s:f, s:f, s:s}", "active_joules", v[0], "idle_joules",
		                       v[1], "unattributed_joules", v[2], "method",
		                       split_method_name(attrib_channel_method(a, c)));
		/* A GPU says what its split rests on, or why it is not split. */
		const struct channel *ch = &set->ch[c];
		if (attrib_channel_method(a, c) == SPLIT_GPU && ch->family->shares_source)
			json_object_set_new(cj, "source", json_string(ch->family->shares_source));
		else if (ch->kind == CHANNEL_GPU && attrib_channel_method(a, c) == SPLIT_NONE)
			json_object_set_new(cj, "reason",
			                    json_string(ch->shares_error[0]
			                                    ? ch->shares_error
			                                    : "its source does not report "
			                                      "per-process utilisation"));
		json_object_set_new(channels, id, cj);
	}
	json_t *o = json_pack(
	    "{s:o, s:f, s:o, s:s, s:o, s:b, s:f, s:f, s:f, s:f, s:o, s:s}", "scope",
	    text_json(scope), "joules", joules, "share",
	    api_jnum(host_joules > 0 ? joules / host_joules : NAN), "method", method,
	    "method_reason", *method_reason ? text_json(method_reason) : json_null(), "measured",
	    false, "resolution_s", resolution, "active_joules", active, "idle_joules", idle,
	    "unattributed_joules", unattr, "channels", channels, "policy", policy);
	attrib_unlock(a);
	if (extra)
		json_object_set_new(o, "watch", extra);
	return o;
}
