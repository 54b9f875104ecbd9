/*
 * HTTP over unix sockets and loopback TCP (libmicrohttpd in epoll mode with a small pool of
 * threads per listener). Nothing that runs on a pool thread may block: an event stream that has
 * nothing to send is suspended and resumed by http_wake_streams(). http.c knows sockets, sizes
 * and errors; the routes live in api.c.
 */
#ifndef ENERGY_HTTP_H
#define ENERGY_HTTP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define HTTP_MAX_HEADER_BYTES (16 * 1024) /* above this: 431 */
#define HTTP_MAX_BODY_BYTES   (64 * 1024) /* above this: 413 */
#define HTTP_LISTENERS_MAX    8
#define HTTP_PEERS_MAX        64 /* distinct peers (uids, and TCP) counted at once */

/* Limits that hold against one local user (docs/security.md); energyd's options set them. */
struct http_limits {
	int conns_per_user; /* open connections per peer uid (all TCP peers share one count) */
	double timeout_s;   /* a connection idle this long (no byte either way), or without its
	                       complete request headers this long after it was accepted, is closed */
	int threads;        /* libmicrohttpd's thread pool per listener, HTTP_THREADS_MIN..MAX */
};
#define HTTP_DEFAULT_CONNS_PER_USER 16
#define HTTP_DEFAULT_TIMEOUT_S      5.0
#define HTTP_DEFAULT_THREADS        4
#define HTTP_THREADS_MIN            1
#define HTTP_THREADS_MAX            16

struct http_request {
	const char *method;
	const char *path;
	const char *body; /* NUL-terminated, may be empty */
	size_t body_len;
	bool peer_known; /* a unix-socket peer: uid and pid from SO_PEERCRED */
	uid_t peer_uid;
	pid_t peer_pid; /* unix socket only */
	void *conn;     /* struct MHD_Connection *, for http_query() */
};

/* A streamed body: read() fills buf and returns the byte count, -1 at the end, or 0 when it has
 * nothing yet: the connection is then suspended (it holds no thread) until the next
 * http_wake_streams(), and read() is asked again. read() must never block. */
struct http_stream {
	long (*read)(void *ctx, char *buf, size_t max);
	void (*free)(void *ctx); /* called once when the stream ends or the peer goes */
	void *ctx;
};

struct http_response {
	int status;
	char *body; /* malloc'd; freed by http.c */
	const char *content_type;
	int retry_after_s;         /* > 0: a Retry-After header */
	struct http_stream stream; /* used when stream.read is set */
};

typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
                                struct http_response *res);

#define HTTP_PENDING_MAX 264 /* connections waiting for their headers, per listener */

struct http_pending {
	int fd;
	double deadline; /* CLOCK_MONOTONIC seconds */
};

struct http_listener {
	char address[512]; /* as given: unix:PATH or HOST:PORT */
	int fd;
	bool is_unix;
	char unix_path[108]; /* the socket file to remove at the end ("" for TCP) */
	char hosts[4][64];   /* TCP: the Host values served */
	int n_hosts;
	void *daemon; /* struct MHD_Daemon * */
	struct http_server *srv;
	pthread_t accept_thread; /* accepts and holds connections until their headers come */
	int wake[2];             /* a pipe that wakes accept_thread to end */
	bool accepting;          /* accept_thread runs */
	struct http_pending pending[HTTP_PENDING_MAX]; /* under srv->lock */
	int n_pending;
};

struct http_stream_conn; /* a streamed answer in progress (http.c) */

struct http_log_limit {
	pthread_mutex_t lock;
	long last_s;         /* when the last line was logged (monotonic s) */
	unsigned suppressed; /* lines not logged since */
};

struct http_server {
	struct http_listener listeners[HTTP_LISTENERS_MAX];
	int n; /* listeners in use */
	http_handler_fn handler;
	void *ctx;
	struct http_limits limits;
	bool started;
	pthread_mutex_t lock; /* the connection counts */
	struct {
		uid_t uid;
		int n; /* its connections open */
	} peers[HTTP_PEERS_MAX];
	int total, root_conns; /* connections open, and those of root */
	/* One rate limit per kind of complaint. */
	struct http_log_limit mhd_log, refusal_log, deadline_log;
	/* The event streams: every one in progress, under stream_lock; n_suspended of them wait
	 * for http_wake_streams(), which bumps wake_gen. */
	pthread_mutex_t stream_lock;
	struct http_stream_conn *streams;
	atomic_uint wake_gen;
	atomic_int n_suspended;
	atomic_bool stopping; /* http_stop(): streams end instead of waiting */
};

/* Create the listening sockets (before privileges are dropped). Unix sockets get mode 0666
 * (set by the umask at bind): the API is read-only but for registrations, which check the peer's
 * uid; their directory must be writable by root (or energyd's own account) only. TCP addresses
 * must be loopback. 0, or -1 with err filled. */
int http_listen(struct http_server *srv, const char *const *addresses, int n, char *err,
                size_t errlen);
/* Start serving on every listener, within limits. */
int http_start(struct http_server *srv, http_handler_fn handler, void *ctx,
               const struct http_limits *limits, char *err, size_t errlen);
void http_stop(struct http_server *srv);
/* New data for the streams (the sampler's tick hook; srv is a struct http_server *): resume
 * every stream that waits for it. Cheap when none waits: one atomic add and one load. Safe from
 * any thread once http_listen() has returned. */
void http_wake_streams(void *srv);

/* A query parameter of the request, or NULL. */
const char *http_query(const struct http_request *req, const char *name);
/* Set a JSON error answer {"error", "hint"}. */
void http_error(struct http_response *res, int status, const char *error, const char *hint);

#endif
