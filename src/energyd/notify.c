/*
 * sd_notify(3) by hand: systemd passes Type=notify services the path of a datagram socket in
 * $NOTIFY_SOCKET, either a file system path or, when it starts with '@', a name in the abstract
 * namespace (the '@' stands for the leading NUL byte). The message is newline-separated
 * KEY=VALUE pairs in one datagram. Libsystemd would do the same in a few hundred lines more;
 * energyd needs no credentials or descriptors passed, so this is all of it. The socket is
 * connected once, as root, so that sending after the drop needs nothing but the descriptor.
 */
#define _GNU_SOURCE
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int notify_fd = -1;

int notify_open(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	/* An abstract name is exactly len bytes long; a path includes its terminating NUL. */
	socklen_t salen =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '@' ? 0 : 1));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, salen) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	notify_fd = fd;
	return 1;
}

int notify_send(const char *state)
{
	if (notify_fd < 0)
		return 0;
	if (send(notify_fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return -errno;
	return 1;
}

void notify_close(void)
{
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
}
