/* The service manager's readiness protocol (sd_notify(3)), written out: one datagram of
 * "KEY=VALUE\n" lines to the AF_UNIX socket named in $NOTIFY_SOCKET. */
#ifndef ENERGY_NOTIFY_H
#define ENERGY_NOTIFY_H

/* Send state (e.g. "READY=1\nSTATUS=sampling") to $NOTIFY_SOCKET. Returns 1 when sent, 0 when
 * no manager listens ($NOTIFY_SOCKET unset), or a negative errno. Never blocks for long: the
 * socket is a datagram socket opened and closed per call. */
int notify_send(const char *state);

#endif
