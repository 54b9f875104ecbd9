/* The service manager's readiness protocol (sd_notify(3)), written out: one datagram of
 * "KEY=VALUE\n" lines to the AF_UNIX socket named in $NOTIFY_SOCKET. */
#ifndef ENERGY_NOTIFY_H
#define ENERGY_NOTIFY_H

/* Connect to $NOTIFY_SOCKET (a path, or '@' for the abstract namespace). Call it while still
 * root, before the privilege drop and energyd's own seccomp filter: afterwards notify_send
 * needs only send(2) on the descriptor, no path lookup or permission on the socket file.
 * Returns 1 when connected, 0 when no manager listens ($NOTIFY_SOCKET unset), or -errno. */
int notify_open(void);

/* Send state (e.g. "READY=1\nSTATUS=sampling"). Returns 1 when sent, 0 when notify_open found
 * no manager, or -errno. Never blocks. */
int notify_send(const char *state);

void notify_close(void);

#endif
