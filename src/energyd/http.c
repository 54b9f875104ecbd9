#define _GNU_SOURCE
#include "http.h"
#include "log.h"
#include "text.h"
#include "threads.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <microhttpd.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define HTTP_CONNECTIONS_MAX 256
#define HTTP_ROOT_RESERVE    32          /* connections only root's clients may use */
#define HTTP_LOG_INTERVAL_S  10          /* repeated complaints: one line per interval */
#define HTTP_KEY_TCP         ((uid_t)-2) /* the connection table's key for TCP peers */

struct http_conn {
	char *body;
	size_t len;
	bool too_large; /* the body passed its limit: the answer is 413 */
};

void http_error(struct http_response *res, int status, const char *error, const char *hint)
{
	json_t *o =
	    json_pack("{s:o, s:o}", "error", text_json(error), "hint", text_json(hint ? hint : ""));
	free(res->body);
	res->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	res->status = status;
	res->content_type = "application/json";
}

const char *http_query(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/*
 * The socket's directory, and every directory above it, must be writable only by root (or by
 * the account energyd runs as): whoever can write there can replace the socket with their own
 * and impersonate the API, or swap it for a symlink while root sets it up. A sticky directory
 * (/tmp), where others cannot remove or rename what is not theirs, is accepted above the
 * socket's own directory, and as that directory only when energyd does not run as root (the
 * fallback /tmp/energyd-UID.sock of a user's energyd).
 */
static int check_socket_dir(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *d = dirname(dir);
	bool own_dir = true;
	for (;;) {
		struct stat st;
		if (stat(d, &st) < 0) {
			snprintf(err, errlen, "cannot check the directory %s of %s: %s", d, path,
			         strerror(errno));
			return -1;
		}
		bool others_write = (st.st_mode & (S_IWGRP | S_IWOTH)) &&
		                    (!(st.st_mode & S_ISVTX) || (own_dir && geteuid() == 0));
		if (others_write || (st.st_uid != 0 && st.st_uid != geteuid())) {
			snprintf(
			    err, errlen,
			    "refusing to listen on %s: %s is %s (owner uid %u, mode %04o), so "
			    "another account could replace the socket; use a directory that only "
			    "root%s can write, such as /run/energyd",
			    path, d,
			    others_write ? "writable by other accounts"
			                 : "owned by another account",
			    (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
			    geteuid() ? " or you" : "");
			return -1;
		}
		if (strcmp(d, "/") == 0 || strcmp(d, ".") == 0)
			return 0;
		d = dirname(d);
		own_dir = false;
	}
}

/*
 * A unix socket at path: remove a stale one (nobody answers), refuse to steal a live one. The
 * mode (0666: the API is read-only but for registrations, which check the peer's uid) is set by
 * the umask at bind(), never by a chmod of the path afterwards, which would follow a symlink put
 * in the socket's place.
 */
static int listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "unix socket path too long: %s", path);
		return -1;
	}
	if (check_socket_dir(path, err, errlen) < 0)
		return -1;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			close(fd);
			return -1;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			snprintf(err, errlen, "another energyd is listening on %s", path);
			close(fd);
			return -1;
		}
		unlink(path);
		close(fd);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			return -1;
		}
	}
	mode_t old = umask(0111);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int bind_errno = errno;
	umask(old);
	if (rc < 0 || listen(fd, 64) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", path,
		         strerror(rc < 0 ? bind_errno : errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int listen_tcp(const char *address, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(address, ':');
	if (!colon || (size_t)(colon - address) >= sizeof(host)) {
		snprintf(err, errlen, "bad listen address '%s': use unix:PATH or 127.0.0.1:PORT",
		         address);
		return -1;
	}
	memcpy(host, address, (size_t)(colon - address));
	host[colon - address] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535) {
		snprintf(err, errlen, "bad port in listen address '%s'", address);
		return -1;
	}
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	struct sockaddr_storage ss = {0};
	socklen_t slen;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		slen = sizeof(*sin);
		if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
			goto not_loopback;
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		slen = sizeof(*sin6);
		if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			goto not_loopback;
	} else {
		snprintf(err, errlen, "bad host in listen address '%s'", address);
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, 64) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", address, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
not_loopback:
	snprintf(err, errlen,
	         "refusing to listen on %s: only loopback addresses (127.0.0.1, ::1) are served; "
	         "for remote access use a reverse proxy or Prometheus",
	         address);
	return -1;
}

/*
 * The Host values that name a TCP listener. A browser sends the name it resolved, so a page
 * whose name an attacker rebinds to 127.0.0.1 arrives with that name and is refused (421): only
 * the loopback names and the listener's own address, with its port, are served.
 */
static void tcp_host_names(struct http_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "";
	unsigned port = 0;
	if (getsockname(l->fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
			port = ntohs(sin->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
			port = ntohs(sin6->sin6_port);
		}
	}
	int n = 0;
	snprintf(l->hosts[n++], sizeof(l->hosts[0]), "127.0.0.1:%u", port);
	snprintf(l->hosts[n++], sizeof(l->hosts[0]), "localhost:%u", port);
	snprintf(l->hosts[n++], sizeof(l->hosts[0]), "[::1]:%u", port);
	if (addr[0] && strcmp(addr, "127.0.0.1") != 0 && strcmp(addr, "::1") != 0)
		snprintf(l->hosts[n++], sizeof(l->hosts[0]),
		         ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", addr, port);
	l->n_hosts = n;
}

static bool host_allowed(const struct http_listener *l, const char *host)
{
	for (int i = 0; host && i < l->n_hosts; i++)
		if (strcasecmp(host, l->hosts[i]) == 0)
			return true;
	return false;
}

int http_listen(struct http_server *srv, const char *const *addresses, int n, char *err,
                size_t errlen)
{
	memset(srv, 0, sizeof(*srv));
	pthread_mutex_init(&srv->stream_lock, NULL);
	atomic_init(&srv->wake_gen, 0);
	atomic_init(&srv->n_suspended, 0);
	atomic_init(&srv->stopping, false);
	for (int i = 0; i < n && i < HTTP_LISTENERS_MAX; i++) {
		struct http_listener *l = &srv->listeners[srv->n];
		const char *a = addresses[i];
		snprintf(l->address, sizeof(l->address), "%s", a);
		const char *path = strncmp(a, "unix:", 5) == 0 ? a + 5 : (a[0] == '/' ? a : NULL);
		if (path) {
			l->is_unix = true;
			snprintf(l->unix_path, sizeof(l->unix_path), "%s", path);
			l->fd = listen_unix(path, err, errlen);
		} else {
			l->fd = listen_tcp(a, err, errlen);
			if (l->fd >= 0)
				tcp_host_names(l);
		}
		if (l->fd < 0) {
			http_stop(srv);
			return -1;
		}
		srv->n++;
	}
	return 0;
}

static enum MHD_Result add_len(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
	(void)kind;
	*(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

/*
 * A streamed answer in progress. Its reader runs on a pool thread and must not wait there: with
 * nothing to send the connection is suspended (libmicrohttpd then neither polls nor times it
 * out) and http_wake_streams() resumes it. `suspended` is ours, under srv->stream_lock: it is set
 * only once MHD_suspend_connection() has returned, so a resume never meets a connection that is
 * not suspended (undefined in libmicrohttpd 0.9.75: it would cancel the next suspension).
 */
struct http_stream_conn {
	struct http_stream s;
	struct http_server *srv;
	struct MHD_Connection *conn;
	bool suspended;
	struct http_stream_conn *prev, *next; /* srv->streams */
};

static long stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct http_stream_conn *sc = cls;
	struct http_server *srv = sc->srv;
	for (;;) {
		unsigned gen = atomic_load(&srv->wake_gen);
		long n = atomic_load(&srv->stopping) ? -1 : sc->s.read(sc->s.ctx, buf, max);
		if (n < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (n > 0)
			return n;
		/* Counted before wake_gen is checked again, and http_wake_streams() bumps wake_gen
		 * before it reads the count: either it sees this stream waiting, or this sees its
		 * wake and reads again. No tick is lost in between. */
		pthread_mutex_lock(&srv->stream_lock);
		atomic_fetch_add(&srv->n_suspended, 1);
		if (atomic_load(&srv->stopping) || atomic_load(&srv->wake_gen) != gen) {
			atomic_fetch_sub(&srv->n_suspended, 1);
			pthread_mutex_unlock(&srv->stream_lock);
			continue;
		}
		MHD_suspend_connection(sc->conn);
		sc->suspended = true;
		pthread_mutex_unlock(&srv->stream_lock);
		return 0;
	}
}

void http_wake_streams(void *arg)
{
	struct http_server *srv = arg;
	atomic_fetch_add(&srv->wake_gen, 1);
	if (atomic_load(&srv->n_suspended) == 0)
		return;
	pthread_mutex_lock(&srv->stream_lock);
	for (struct http_stream_conn *sc = srv->streams; sc; sc = sc->next) {
		if (!sc->suspended)
			continue;
		sc->suspended = false;
		atomic_fetch_sub(&srv->n_suspended, 1);
		MHD_resume_connection(sc->conn);
	}
	pthread_mutex_unlock(&srv->stream_lock);
}

/* When libmicrohttpd lets go of the answer: the connection ended (never while suspended). */
static void stream_free(void *cls)
{
	struct http_stream_conn *sc = cls;
	struct http_server *srv = sc->srv;
	pthread_mutex_lock(&srv->stream_lock);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		srv->streams = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	if (sc->suspended)
		atomic_fetch_sub(&srv->n_suspended, 1);
	pthread_mutex_unlock(&srv->stream_lock);
	if (sc->s.free)
		sc->s.free(sc->s.ctx);
	free(sc);
}

static struct MHD_Response *stream_response(struct http_server *srv, struct MHD_Connection *conn,
                                            const struct http_stream *stream)
{
	struct http_stream_conn *sc = calloc(1, sizeof(*sc));
	if (!sc) {
		if (stream->free)
			stream->free(stream->ctx);
		return NULL;
	}
	sc->s = *stream;
	sc->srv = srv;
	sc->conn = conn;
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
	                                                           stream_read, sc, stream_free);
	if (!r) {
		if (sc->s.free)
			sc->s.free(sc->s.ctx);
		free(sc);
		return NULL;
	}
	pthread_mutex_lock(&srv->stream_lock);
	sc->next = srv->streams;
	if (sc->next)
		sc->next->prev = sc;
	srv->streams = sc;
	pthread_mutex_unlock(&srv->stream_lock);
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	return r;
}

static enum MHD_Result send_response(struct http_server *srv, struct MHD_Connection *conn,
                                     struct http_response *res)
{
	struct MHD_Response *r;
	if (res->stream.read) {
		r = stream_response(srv, conn, &res->stream);
	} else {
		if (!res->body)
			http_error(res, 500, "out of memory", "");
		const char *body = res->body ? res->body : "";
		r = MHD_create_response_from_buffer(strlen(body), (void *)body,
		                                    res->body ? MHD_RESPMEM_MUST_FREE
		                                              : MHD_RESPMEM_PERSISTENT);
		res->body = NULL;
	}
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type",
	                        res->content_type ? res->content_type : "application/json");
	if (res->retry_after_s > 0) {
		char v[16];
		snprintf(v, sizeof(v), "%d", res->retry_after_s);
		MHD_add_response_header(r, "Retry-After", v);
	}
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)res->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void pending_remove(struct http_listener *l, int fd);

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct http_listener *l = cls;
	struct http_server *srv = l->srv;
	struct http_conn *hc = *con_cls;
	if (!hc) {
		/* The headers are all in: the header deadline no longer applies. */
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci)
			pending_remove(l, ci->connect_fd);
		hc = calloc(1, sizeof(*hc));
		if (!hc)
			return MHD_NO;
		*con_cls = hc;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (hc->len + *upload_data_size > HTTP_MAX_BODY_BYTES) {
			hc->too_large = true;
		} else {
			char *nb = realloc(hc->body, hc->len + *upload_data_size + 1);
			if (!nb)
				return MHD_NO;
			hc->body = nb;
			memcpy(hc->body + hc->len, upload_data, *upload_data_size);
			hc->len += *upload_data_size;
			hc->body[hc->len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	struct http_response res = {.status = 200, .content_type = "application/json"};
	size_t header_bytes = strlen(url);
	MHD_get_connection_values(conn, MHD_HEADER_KIND, add_len, &header_bytes);
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_len, &header_bytes);
	if (header_bytes > HTTP_MAX_HEADER_BYTES) {
		http_error(&res, 431, "request headers too large",
		           "keep the request line and headers under 16 KiB");
		return send_response(srv, conn, &res);
	}
	if (!l->is_unix &&
	    !host_allowed(l, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host"))) {
		http_error(
		    &res, 421, "this Host is not served",
		    "energyd answers requests addressed to 127.0.0.1:PORT, localhost:PORT or "
		    "[::1]:PORT only (DNS rebinding)");
		return send_response(srv, conn, &res);
	}
	if (hc->too_large) {
		http_error(&res, 413, "request body too large", "bodies are at most 64 KiB");
		return send_response(srv, conn, &res);
	}

	struct http_request req = {
	    .method = method,
	    .path = url,
	    .body = hc->body ? hc->body : "",
	    .body_len = hc->len,
	    .conn = conn,
	};
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 &&
	    cred.pid > 0) {
		req.peer_known = true;
		req.peer_uid = cred.uid;
		req.peer_pid = cred.pid;
	}
	srv->handler(srv->ctx, &req, &res);
	return send_response(srv, conn, &res);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)conn, (void)toe;
	struct http_conn *hc = *con_cls;
	if (hc) {
		free(hc->body);
		free(hc);
		*con_cls = NULL;
	}
}

/* One line per interval for complaints that a peer can repeat at will; note says how many
 * were left out since the last line ("" when none). */
static bool log_limit_pass(struct http_log_limit *ll, char *note, size_t len)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&ll->lock);
	bool pass = ll->last_s == 0 || now.tv_sec - ll->last_s >= HTTP_LOG_INTERVAL_S;
	unsigned suppressed = ll->suppressed;
	if (pass) {
		ll->suppressed = 0;
		ll->last_s = now.tv_sec;
	} else {
		ll->suppressed++;
	}
	pthread_mutex_unlock(&ll->lock);
	if (pass && suppressed)
		snprintf(note, len, " (%u more like it since the last line not logged)",
		         suppressed);
	else if (pass)
		note[0] = '\0';
	return pass;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *srv = cls;
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	/* Connections handed over by accept_thread may be unix sockets: no TCP options there. */
	if (strstr(line, "TCP_NODELAY") || strstr(line, "TCP_CORK"))
		return;
	char note[96];
	if (log_limit_pass(&srv->mhd_log, note, sizeof(note)))
		log_warn("http: %s%s", line, note);
}

/* ---- connection limits ------------------------------------------------------------------ */

/* The key a connection is counted under: the peer's uid on a unix socket, one shared key for
 * TCP (no identity there). */
static uid_t peer_key(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &slen) == 0 && ss.ss_family == AF_UNIX &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		return cred.uid;
	return HTTP_KEY_TCP;
}

/* Count a new connection of key; false when key (or everyone but root) is at its limit. */
static bool conn_admit(struct http_server *srv, uid_t key)
{
	pthread_mutex_lock(&srv->lock);
	int free_slot = -1, i;
	for (i = 0; i < HTTP_PEERS_MAX; i++) {
		if (srv->peers[i].n > 0 && srv->peers[i].uid == key)
			break;
		if (srv->peers[i].n == 0 && free_slot < 0)
			free_slot = i;
	}
	bool ok = true;
	if (i == HTTP_PEERS_MAX) {
		i = free_slot;
		ok = i >= 0;
	}
	if (ok && key != 0 &&
	    (srv->peers[i].n >= srv->limits.conns_per_user ||
	     srv->total - srv->root_conns >= HTTP_CONNECTIONS_MAX - HTTP_ROOT_RESERVE))
		ok = false;
	if (ok && srv->total >= HTTP_CONNECTIONS_MAX)
		ok = false;
	if (ok) {
		srv->peers[i].uid = key;
		srv->peers[i].n++;
		srv->total++;
		srv->root_conns += key == 0;
	}
	pthread_mutex_unlock(&srv->lock);
	return ok;
}

static void conn_release(struct http_server *srv, uid_t key)
{
	pthread_mutex_lock(&srv->lock);
	for (int i = 0; i < HTTP_PEERS_MAX; i++) {
		if (srv->peers[i].n > 0 && srv->peers[i].uid == key) {
			srv->peers[i].n--;
			srv->total--;
			srv->root_conns -= key == 0;
			break;
		}
	}
	pthread_mutex_unlock(&srv->lock);
}

/*
 * Connections whose request headers have not all arrived, with the time by which they must:
 * idle timeouts alone let a client that sends one byte every few seconds hold a connection
 * for ever. The accept thread closes (shutdown) those past their deadline.
 */
static void pending_add(struct http_listener *l, int fd, double deadline)
{
	pthread_mutex_lock(&l->srv->lock);
	int i = 0;
	while (i < l->n_pending && l->pending[i].fd != fd)
		i++; /* an entry left by a closed connection whose number was reused */
	if (i == l->n_pending && l->n_pending < HTTP_PENDING_MAX)
		l->n_pending++;
	if (i < l->n_pending)
		l->pending[i] = (struct http_pending){fd, deadline};
	pthread_mutex_unlock(&l->srv->lock);
}

static void pending_remove(struct http_listener *l, int fd)
{
	pthread_mutex_lock(&l->srv->lock);
	for (int i = 0; i < l->n_pending; i++)
		if (l->pending[i].fd == fd)
			l->pending[i--] = l->pending[--l->n_pending];
	pthread_mutex_unlock(&l->srv->lock);
}

static double monotonic_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Shut down the connections past their header deadline; libmicrohttpd then closes them. */
static void pending_expire(struct http_listener *l)
{
	double now = monotonic_s();
	int expired = 0;
	pthread_mutex_lock(&l->srv->lock);
	for (int i = 0; i < l->n_pending; i++) {
		if (l->pending[i].deadline > now)
			continue;
		shutdown(l->pending[i].fd, SHUT_RDWR);
		l->pending[i--] = l->pending[--l->n_pending];
		expired++;
	}
	pthread_mutex_unlock(&l->srv->lock);
	char note[96];
	if (expired && log_limit_pass(&l->srv->deadline_log, note, sizeof(note)))
		log_warn("http: closed %d connection(s) on %s that sent no complete request within "
		         "%.3g s%s",
		         expired, l->address, l->srv->limits.timeout_s, note);
}

struct conn_context {
	uid_t key; /* the connection table's key: the peer uid, HTTP_KEY_TCP for TCP */
	int fd;
};

/* MHD tells when a connection it was handed starts and ends: the count follows. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	struct http_listener *l = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		struct conn_context *cc = malloc(sizeof(*cc));
		if (cc) {
			cc->fd = ci ? ci->connect_fd : -1;
			cc->key = ci ? peer_key(ci->connect_fd) : HTTP_KEY_TCP;
		}
		*socket_context = cc;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
		struct conn_context *cc = *socket_context;
		pending_remove(l, cc->fd);
		conn_release(l->srv, cc->key);
		free(cc);
		*socket_context = NULL;
	}
}

/* Over the limit: a short JSON 429 written straight to the socket, then closed. */
static void refuse(struct http_server *srv, int fd, uid_t key)
{
	char body[512], msg[768];
	snprintf(body, sizeof(body),
	         "{\"error\":\"too many connections\",\"hint\":\"at most %d open connections per "
	         "user (connections_per_user); close idle ones and retry\"}",
	         srv->limits.conns_per_user);
	int n = snprintf(msg, sizeof(msg),
	                 "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
	                 "Retry-After: 1\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
	                 strlen(body), body);
	if (send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* nothing more to do: the peer is gone or not reading */
	}
	close(fd);
	char note[96];
	if (log_limit_pass(&srv->refusal_log, note, sizeof(note))) {
		if (key == HTTP_KEY_TCP)
			log_warn("http: TCP clients reached the connection limit; refusing%s",
			         note);
		else
			log_warn("http: uid %u reached the connection limit; refusing%s",
			         (unsigned)key, note);
	}
}

/* Accepts on one listener, counts the peer, and hands the connection to libmicrohttpd. */
static void *accept_thread(void *arg)
{
	struct http_listener *l = arg;
	threads_name_self("energy-accept");
	struct pollfd p[2] = {{.fd = l->fd, .events = POLLIN},
	                      {.fd = l->wake[0], .events = POLLIN}};
	for (;;) {
		int n = poll(p, 2, l->n_pending ? 250 : -1);
		if (n < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		pending_expire(l);
		if (n <= 0 || !p[0].revents)
			continue;
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				poll(NULL, 0, 100); /* out of descriptors: let connections end */
			continue;
		}
		uid_t key = l->is_unix ? peer_key(fd) : HTTP_KEY_TCP;
		if (!conn_admit(l->srv, key)) {
			refuse(l->srv, fd, key);
			continue;
		}
		pending_add(l, fd, monotonic_s() + l->srv->limits.timeout_s);
		if (MHD_add_connection(l->daemon, fd, (struct sockaddr *)&ss, len) != MHD_YES) {
			pending_remove(l, fd);
			conn_release(l->srv, key); /* libmicrohttpd closed it */
		}
	}
	return NULL;
}

int http_start(struct http_server *srv, http_handler_fn handler, void *ctx,
               const struct http_limits *limits, char *err, size_t errlen)
{
	srv->handler = handler;
	srv->ctx = ctx;
	srv->limits = *limits;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->mhd_log.lock, NULL);
	pthread_mutex_init(&srv->refusal_log.lock, NULL);
	pthread_mutex_init(&srv->deadline_log.lock, NULL);
	srv->started = true;
	unsigned timeout_s = (unsigned)ceil(limits->timeout_s);
	unsigned threads = (unsigned)limits->threads;
	if (threads < HTTP_THREADS_MIN || threads > HTTP_THREADS_MAX)
		threads = HTTP_DEFAULT_THREADS;
	for (int i = 0; i < srv->n; i++) {
		struct http_listener *l = &srv->listeners[i];
		l->srv = srv;
		/* energyd accepts itself (accept_thread) so that it can count each peer's
		 * connections by uid before libmicrohttpd takes the connection. A few threads,
		 * each with its own epoll set, serve them all (libmicrohttpd spreads connections by
		 * descriptor number); suspended streams hold none of them. */
		l->daemon = MHD_start_daemon(
		    MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
		        MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC,
		    0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
		    MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned)HTTP_CONNECTIONS_MAX + 8, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
		    MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024), MHD_OPTION_NOTIFY_COMPLETED,
		    on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
		    MHD_OPTION_END);
		if (!l->daemon) {
			snprintf(err, errlen, "cannot start the HTTP server on %s", l->address);
			return -1;
		}
		if (pipe2(l->wake, O_CLOEXEC) < 0 ||
		    pthread_create(&l->accept_thread, NULL, accept_thread, l) != 0) {
			snprintf(err, errlen, "cannot start the accept thread on %s", l->address);
			return -1;
		}
		l->accepting = true;
	}
	return 0;
}

void http_stop(struct http_server *srv)
{
	/* libmicrohttpd must not be stopped with a suspended connection (it aborts): from here on
	 * every stream ends instead of waiting, and those that wait are resumed to end. */
	pthread_mutex_lock(&srv->stream_lock);
	atomic_store(&srv->stopping, true);
	pthread_mutex_unlock(&srv->stream_lock);
	http_wake_streams(srv);
	for (int i = 0; i < srv->n; i++) {
		struct http_listener *l = &srv->listeners[i];
		if (l->accepting) {
			if (write(l->wake[1], "x", 1) < 0)
				log_warn("http: cannot wake the accept thread: %s",
				         strerror(errno));
			pthread_join(l->accept_thread, NULL);
			close(l->wake[0]);
			close(l->wake[1]);
			l->accepting = false;
		}
		if (l->daemon) {
			MHD_stop_daemon(l->daemon);
			l->daemon = NULL;
		}
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
		if (l->is_unix)
			unlink(l->unix_path);
	}
	srv->n = 0;
}
