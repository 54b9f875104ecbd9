/* Open as root, then drop (OpenBSD privilege separation). */
#ifndef ENERGY_PRIVILEGES_H
#define ENERGY_PRIVILEGES_H

#include <stddef.h>
#include <sys/types.h>

/* Look up user; fill uid/gid. 0 or -1 with err. */
int privileges_lookup(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen);
/* setgroups/setresgid/setresuid to uid/gid and verify that root cannot be regained. */
int privileges_drop(uid_t uid, gid_t gid, char *err, size_t errlen);

#endif
