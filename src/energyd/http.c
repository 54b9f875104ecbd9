#define _GNU_SOURCE
#include "http.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#define HTTP_CONNECTIONS_MAX 256
#define HTTP_IDLE_TIMEOUT_S  60

struct http_conn {
	char *body;
	size_t len;
	bool too_large;
};

/* An error text may quote a request parameter, which need not be UTF-8 (jansson refuses it):
 * such bytes become '?' rather than turning a 400 into a 500. */
static const char *ascii_only(char *dst, size_t cap, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < cap; i++)
		dst[i] = (unsigned char)src[i] < 0x80 ? src[i] : '?';
	dst[i] = '\0';
	return dst;
}

void http_error(struct http_response *res, int status, const char *error, const char *hint)
{
	hint = hint ? hint : "";
	json_t *o = json_pack("{s:s, s:s}", "error", error, "hint", hint);
	if (!o) {
		char e[512], h[512];
		o = json_pack("{s:s, s:s}", "error", ascii_only(e, sizeof(e), error), "hint",
		              ascii_only(h, sizeof(h), hint));
	}
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

/* A unix socket at path: remove a stale one (nobody answers), refuse to steal a live one. */
static int listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "unix socket path too long: %s", path);
		return -1;
	}
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
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 ||
	    listen(fd, 64) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
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

int http_listen(struct http_server *srv, const char *const *addresses, int n, char *err,
                size_t errlen)
{
	memset(srv, 0, sizeof(*srv));
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

static long stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct http_stream *s = cls;
	for (;;) {
		long n = s->read(s->ctx, buf, max);
		if (n < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (n > 0)
			return n;
	}
}

static void stream_free(void *cls)
{
	struct http_stream *s = cls;
	if (s->free)
		s->free(s->ctx);
	free(s);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct http_response *res)
{
	struct MHD_Response *r;
	if (res->stream.read) {
		struct http_stream *s = malloc(sizeof(*s));
		if (!s) {
			res->stream.free(res->stream.ctx);
			return MHD_NO;
		}
		*s = res->stream;
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s,
		                                      stream_free);
		MHD_add_response_header(r, "Cache-Control", "no-cache");
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
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)res->status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct http_server *srv = cls;
	struct http_conn *hc = *con_cls;
	if (!hc) {
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
		return send_response(conn, &res);
	}
	if (hc->too_large) {
		http_error(&res, 413, "request body too large", "bodies are at most 64 KiB");
		return send_response(conn, &res);
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
	return send_response(conn, &res);
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

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warn("http: %s", line);
}

int http_start(struct http_server *srv, http_handler_fn handler, void *ctx, char *err,
               size_t errlen)
{
	srv->handler = handler;
	srv->ctx = ctx;
	for (int i = 0; i < srv->n; i++) {
		struct http_listener *l = &srv->listeners[i];
		l->daemon = MHD_start_daemon(
		    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
		        MHD_USE_ERROR_LOG,
		    0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		    MHD_OPTION_LISTEN_SOCKET, l->fd, MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned)HTTP_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned)HTTP_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		    (size_t)(128 * 1024), MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
		    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
		if (!l->daemon) {
			snprintf(err, errlen, "cannot start the HTTP server on %s", l->address);
			return -1;
		}
	}
	return 0;
}

void http_stop(struct http_server *srv)
{
	for (int i = 0; i < srv->n; i++) {
		struct http_listener *l = &srv->listeners[i];
		if (l->daemon) {
			MHD_stop_daemon(l->daemon); /* closes the listening socket too */
			l->daemon = NULL;
		} else if (l->fd >= 0) {
			close(l->fd);
		}
		l->fd = -1;
		if (l->is_unix)
			unlink(l->unix_path);
	}
	srv->n = 0;
}
