/*
 * Pieces of the Prometheus exposition (api_metrics.c) that are pure logic, kept apart for the
 * unit tests: label values, the Kubernetes and systemd ids in a cgroup path, and the bounded
 * choice of cgroups that get their own series (docs/api.md#metrics).
 */
#ifndef ENERGY_METRICS_H
#define ENERGY_METRICS_H

#include "attrib.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define METRICS_CGROUPS_TOP   32  /* cgroups with a series of their own; the rest is "other" */
#define METRICS_USERS_MAX     256 /* users with a series of their own; the rest is "other" */
#define METRICS_LABEL_MAX     256 /* bytes of a label value taken from its source */
#define METRICS_POD_UID_MAX   40
#define METRICS_CONTAINER_MAX 72

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0 when it is not one:
 * no overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629). */
size_t metrics_utf8_len(const unsigned char *s, size_t avail);

/*
 * Write s as a label value of the text format: backslash, double quote and newline escaped,
 * every byte that is not part of valid UTF-8 replaced by U+FFFD, at most METRICS_LABEL_MAX
 * bytes of s taken (cut on a character boundary).
 */
void metrics_put_label(FILE *f, const char *s);

/*
 * The pod uid and the container id in a cgroup path, as the kubelet (cgroupfs or systemd
 * driver) and container runtimes name them: ".../pod<uid>/<64 hex>",
 * ".../kubepods-besteffort-pod<uid with _>.slice/cri-containerd-<64 hex>.scope", and
 * "docker-", "crio-", "libpod-" scopes. Each is "" when the path does not carry it.
 */
void metrics_cgroup_ids(const char *path, char pod_uid[METRICS_POD_UID_MAX],
                        char container_id[METRICS_CONTAINER_MAX]);

/*
 * Which leaf cgroups get a series: the first METRICS_CGROUPS_TOP by energy when a slot is free;
 * a cgroup keeps its slot while it exists, so that each series only grows. The energy of the
 * other leaves is added to `other_uj` as it arrives (also monotonic). Not thread-safe: the
 * caller serialises updates.
 */
struct metrics_cgroups {
	char top[METRICS_CGROUPS_TOP][ATTRIB_CGROUP_MAX];
	double top_uj[METRICS_CGROUPS_TOP];
	bool top_present[METRICS_CGROUPS_TOP]; /* the cgroup still exists */
	int n_top;
	uint64_t *prev_hash; /* leaves at the last update, sorted by hash, with their energy */
	double *prev_uj;
	size_t n_prev;
	double other_uj; /* energy of the leaves without a slot */
	size_t n_leaves; /* leaf cgroups at the last update */
};

/* Take the cgroups of the last scan (sorted by path, cumulative energy): 0 or -ENOMEM. */
int metrics_cgroups_update(struct metrics_cgroups *m, const struct attrib_cgroup *cg, size_t n);
void metrics_cgroups_free(struct metrics_cgroups *m);

#endif
