/*
 * A small HTTP/1.1 client for energyd's API: one connection per request ("Connection: close"),
 * over a unix socket or loopback TCP. It reads the whole answer, so it is for the JSON
 * endpoints, not for the event stream.
 */
#define _GNU_SOURCE
#include "energy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CLIENT_TIMEOUT_MS   10000
#define CLIENT_MAX_RESPONSE (64u << 20)

struct energy_client {
	char address[256];
	bool is_unix;   /* address is a socket path, else host and port */
	char path[108]; /* sun_path */
	char host[128];
	char port[16];
};

int energy_user_socket_path(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;
	if (xdg && *xdg)
		n = snprintf(buf, len, "%s/energyd.sock", xdg);
	else
		n = snprintf(buf, len, "/tmp/energyd-%u.sock", (unsigned)getuid());
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int client_set_address(struct energy_client *c, const char *address)
{
	snprintf(c->address, sizeof(c->address), "%s", address);
	const char *path = NULL;
	if (strncmp(address, "unix:", 5) == 0)
		path = address + 5;
	else if (address[0] == '/' || address[0] == '.')
		path = address;
	if (path) {
		if (strlen(path) >= sizeof(c->path))
			return -ENAMETOOLONG;
		c->is_unix = true;
		strcpy(c->path, path);
		return 0;
	}
	const char *colon = strrchr(address, ':');
	if (!colon || colon == address || strlen(colon + 1) >= sizeof(c->port) ||
	    (size_t)(colon - address) >= sizeof(c->host))
		return -EINVAL;
	c->is_unix = false;
	memcpy(c->host, address, (size_t)(colon - address));
	c->host[colon - address] = '\0';
	strcpy(c->port, colon + 1);
	return 0;
}

int energy_client_open(const char *address, struct energy_client **out)
{
	struct energy_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int rc;
	if (address && *address) {
		rc = client_set_address(c, address);
	} else if (getenv("ENERGYD_SOCKET") && *getenv("ENERGYD_SOCKET")) {
		rc = client_set_address(c, getenv("ENERGYD_SOCKET"));
	} else {
		/* The system daemon when it is there, else the user's own. */
		char user[256];
		rc = client_set_address(c, ENERGY_SYSTEM_SOCKET);
		if (rc == 0 && access(ENERGY_SYSTEM_SOCKET, F_OK) != 0 &&
		    energy_user_socket_path(user, sizeof(user)) == 0)
			rc = client_set_address(c, user);
	}
	if (rc < 0) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void energy_client_close(struct energy_client *c)
{
	free(c);
}

const char *energy_client_address(const struct energy_client *c)
{
	return c->address;
}

static int client_connect(const struct energy_client *c)
{
	if (c->is_unix) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		return fd;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
	if (getaddrinfo(c->host, c->port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	int fd = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (s < 0)
			continue;
		if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0) {
			fd = s;
			break;
		}
		fd = -errno;
		close(s);
	}
	freeaddrinfo(res);
	return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read until the peer closes, with a timeout per read. */
static int read_all(int fd, char **out, size_t *out_len)
{
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int pr = poll(&pfd, 1, CLIENT_TIMEOUT_MS);
		if (pr == 0) {
			free(buf);
			return -ETIMEDOUT;
		}
		if (pr < 0 && errno == EINTR)
			continue;
		if (len + 4096 + 1 > cap) {
			if (cap >= CLIENT_MAX_RESPONSE) {
				free(buf);
				return -EFBIG;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}

/* Decode a chunked body in place; returns its length or -EPROTO. */
static long dechunk(char *body, size_t len)
{
	char *in = body, *end = body + len, *outp = body;
	for (;;) {
		char *nl = memchr(in, '\n', (size_t)(end - in));
		if (!nl)
			return -EPROTO;
		unsigned long n = strtoul(in, NULL, 16);
		in = nl + 1;
		if (n == 0)
			break;
		if (n > (size_t)(end - in))
			return -EPROTO;
		memmove(outp, in, n);
		outp += n;
		in += n;
		if (in + 2 <= end && in[0] == '\r')
			in += 2;
		else if (in < end && in[0] == '\n')
			in++;
	}
	*outp = '\0';
	return outp - body;
}

int energy_client_request(struct energy_client *c, const char *method, const char *path,
                          const char *body, int *status, char **response)
{
	int fd = client_connect(c);
	if (fd < 0)
		return fd;
	size_t body_len = body ? strlen(body) : 0;
	char head[1024];
	int hn = snprintf(head, sizeof(head),
	                  "%s %s HTTP/1.1\r\nHost: energyd\r\nConnection: close\r\n"
	                  "Accept: application/json\r\n%s%s%zu\r\n\r\n",
	                  method, path, body ? "Content-Type: application/json\r\n" : "",
	                  "Content-Length: ", body_len);
	if (hn < 0 || (size_t)hn >= sizeof(head)) {
		close(fd);
		return -ENAMETOOLONG;
	}
	int rc = write_all(fd, head, (size_t)hn);
	if (rc == 0 && body_len)
		rc = write_all(fd, body, body_len);
	char *raw = NULL;
	size_t raw_len = 0;
	if (rc == 0)
		rc = read_all(fd, &raw, &raw_len);
	close(fd);
	if (rc < 0)
		return rc;

	int code;
	if (sscanf(raw, "HTTP/1.%*d %d", &code) != 1) {
		free(raw);
		return -EPROTO;
	}
	char *sep = strstr(raw, "\r\n\r\n");
	if (!sep) {
		free(raw);
		return -EPROTO;
	}
	*sep = '\0';
	char *payload = sep + 4;
	size_t payload_len = raw_len - (size_t)(payload - raw);
	bool chunked = false;
	for (char *line = strstr(raw, "\r\n"); line; line = strstr(line + 2, "\r\n"))
		if (strncasecmp(line + 2, "Transfer-Encoding:", 18) == 0 &&
		    strstr(line + 20, "chunked"))
			chunked = true;
	if (chunked) {
		long n = dechunk(payload, payload_len);
		if (n < 0) {
			free(raw);
			return (int)n;
		}
		payload_len = (size_t)n;
	}
	char *copy = malloc(payload_len + 1);
	if (!copy) {
		free(raw);
		return -ENOMEM;
	}
	memcpy(copy, payload, payload_len);
	copy[payload_len] = '\0';
	free(raw);
	*status = code;
	*response = copy;
	return 0;
}

bool energy_client_ping(struct energy_client *c)
{
	int status;
	char *body;
	if (energy_client_request(c, "GET", "/api/v1/info", NULL, &status, &body) < 0)
		return false;
	free(body);
	return status == 200;
}
