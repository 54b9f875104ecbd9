/*
 * What energyd gives up after the privilege drop (docs/security.md): the capability bounding
 * set (dropped while still root), then no_new_privs and a seccomp filter that allows only the
 * system calls energyd's threads make. A call outside the filter kills the process with a log
 * line that names it.
 */
#ifndef ENERGY_SANDBOX_H
#define ENERGY_SANDBOX_H

#include <stddef.h>

/* Empty the capability bounding set; needs CAP_SETPCAP (call as root, before the drop).
 * 0 or -1 with err. */
int sandbox_drop_bounding_set(char *err, size_t errlen);
/* no_new_privs and the seccomp filter, for every thread of the process. 0 or -1 with err. */
int sandbox_apply(char *err, size_t errlen);

#endif
