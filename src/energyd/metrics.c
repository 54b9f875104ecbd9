/*
 * Label values, cgroup ids and the bounded cgroup series of /metrics (metrics.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "metrics.h"
#include "mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t metrics_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned c = s[0];
	size_t n;
	unsigned min, cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2, min = 0x80, cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3, min = 0x800, cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4, min = 0x10000, cp = c & 0x07;
	} else {
		return 0;
	}
	if (n > avail)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

void metrics_put_label(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strnlen(s, METRICS_LABEL_MAX);
	size_t i = 0;
	while (i < len) {
		size_t n = metrics_utf8_len(p + i, len - i);
		if (n == 0) {
			fputs("\xEF\xBF\xBD", f); /* U+FFFD */
			i++;
		} else if (p[i] == '\\') {
			fputs("\\\\", f), i++;
		} else if (p[i] == '"') {
			fputs("\\\"", f), i++;
		} else if (p[i] == '\n') {
			fputs("\\n", f), i++;
		} else {
			fwrite(p + i, 1, n, f);
			i += n;
		}
	}
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* A pod uid of 36 characters (8-4-4-4-12 hex) at s, with '-' or (systemd) '_' as dashes,
 * written with dashes to out. */
static bool pod_uid_at(const char *s, size_t n, char out[METRICS_POD_UID_MAX])
{
	char uid[37];
	if (n != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? (s[i] != '-' && s[i] != '_') : !all_hex(s + i, 1))
			return false;
		uid[i] = dash ? '-' : s[i];
	}
	uid[36] = '\0';
	memcpy(out, uid, sizeof(uid));
	return true;
}

void metrics_cgroup_ids(const char *path, char pod_uid[METRICS_POD_UID_MAX],
                        char container_id[METRICS_CONTAINER_MAX])
{
	static const char *const runtimes[] = {"cri-containerd-", "docker-", "crio-", "libpod-"};
	pod_uid[0] = container_id[0] = '\0';
	const char *c = path;
	while (*c) {
		while (*c == '/')
			c++;
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		/* cgroupfs driver: "pod<uid>"; systemd: "kubepods[-<qos>]-pod<uid_>.slice". */
		const char *pod = NULL;
		size_t pod_n = 0;
		if (n == 39 && strncmp(c, "pod", 3) == 0) {
			pod = c + 3, pod_n = 36;
		} else if (n > 15 && strncmp(c, "kubepods", 8) == 0 &&
		           strncmp(c + n - 6, ".slice", 6) == 0) {
			const char *q = c + n - 6 - 36 - 4;
			if (q >= c && strncmp(q, "-pod", 4) == 0)
				pod = q + 4, pod_n = 36;
		}
		if (pod)
			pod_uid_at(pod, pod_n, pod_uid);
		/* The container: a bare 64-hex directory, or a runtime's scope. */
		if (n == 64 && all_hex(c, 64)) {
			memcpy(container_id, c, 64);
			container_id[64] = '\0';
		} else if (n > 6 && strncmp(c + n - 6, ".scope", 6) == 0) {
			for (size_t r = 0; r < sizeof(runtimes) / sizeof(runtimes[0]); r++) {
				size_t pl = strlen(runtimes[r]);
				if (n == pl + 64 + 6 && strncmp(c, runtimes[r], pl) == 0 &&
				    all_hex(c + pl, 64)) {
					memcpy(container_id, c + pl, 64);
					container_id[64] = '\0';
				}
			}
		}
		c += n;
	}
}

/* ---- bounded cgroup series ----------------------------------------------------------------- */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* A cgroup is a leaf when no other path starts with its path and '/'. Paths are sorted by
 * strcmp, so the paths under p form one run that starts at the first path >= p + "/". */
static bool is_leaf(const struct attrib_cgroup *cg, size_t n, size_t i)
{
	const char *p = cg[i].path;
	if (strcmp(p, "/") == 0)
		return n == 1;
	char prefix[ATTRIB_CGROUP_MAX + 2];
	int len = snprintf(prefix, sizeof(prefix), "%s/", p);
	size_t lo = i + 1, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(cg[mid].path, prefix) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo >= n || strncmp(cg[lo].path, prefix, (size_t)len) != 0;
}

struct leaf {
	uint64_t hash;
	double uj;
	size_t idx; /* index in the attribution's cgroup table */
};

static int cmp_leaf_hash(const void *x, const void *y)
{
	uint64_t a = ((const struct leaf *)x)->hash, b = ((const struct leaf *)y)->hash;
	return (a > b) - (a < b);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return (a > b) - (a < b);
}

static int cmp_leaf_uj_desc(const void *x, const void *y)
{
	double a = ((const struct leaf *)x)->uj, b = ((const struct leaf *)y)->uj;
	return (a < b) - (a > b);
}

static int top_find(const struct metrics_cgroups *m, const char *path)
{
	for (int k = 0; k < m->n_top; k++)
		if (strcmp(m->top[k], path) == 0)
			return k;
	return -1;
}

int metrics_cgroups_update(struct metrics_cgroups *m, const struct attrib_cgroup *cg, size_t n)
{
	struct leaf *leaves = malloc((n ? n : 1) * sizeof(*leaves));
	uint64_t *hash = malloc((n ? n : 1) * sizeof(*hash));
	double *uj = malloc((n ? n : 1) * sizeof(*uj));
	if (!leaves || !hash || !uj) {
		free(leaves), free(hash), free(uj);
		return -ENOMEM;
	}
	size_t nl = 0;
	for (size_t i = 0; i < n; i++)
		if (is_leaf(cg, n, i))
			leaves[nl++] = (struct leaf){fnv1a(cg[i].path), cg[i].uj, i};
	/* Slots of cgroups that are gone (or have children now) are freed. */
	for (int k = 0; k < m->n_top; k++)
		m->top_present[k] = false;
	for (size_t l = 0; l < nl; l++) {
		int k = top_find(m, cg[leaves[l].idx].path);
		if (k >= 0) {
			m->top_present[k] = true;
			m->top_uj[k] = leaves[l].uj;
		}
	}
	for (int k = 0; k < m->n_top; k++) {
		if (m->top_present[k])
			continue;
		m->n_top--;
		memmove(m->top[k], m->top[m->n_top], sizeof(m->top[k]));
		m->top_uj[k] = m->top_uj[m->n_top];
		m->top_present[k] = m->top_present[m->n_top];
		k--;
	}
	/* Free slots go to the biggest of the others: their energy so far (counted in other
	 * when they were there before) starts a series of their own. */
	qsort(leaves, nl, sizeof(*leaves), cmp_leaf_uj_desc);
	for (size_t l = 0; l < nl && m->n_top < METRICS_CGROUPS_TOP; l++) {
		const char *p = cg[leaves[l].idx].path;
		if (top_find(m, p) >= 0 || leaves[l].uj <= 0)
			continue;
		snprintf(m->top[m->n_top], sizeof(m->top[0]), "%s", p);
		m->top_uj[m->n_top] = leaves[l].uj;
		m->top_present[m->n_top++] = true;
	}
	/* What the other leaves gained since the last update. */
	for (size_t l = 0; l < nl; l++) {
		if (top_find(m, cg[leaves[l].idx].path) >= 0)
			continue;
		const uint64_t *prev = m->prev_hash ? bsearch(&leaves[l].hash, m->prev_hash,
		                                              m->n_prev, sizeof(uint64_t), cmp_u64)
		                                    : NULL;
		double before = prev ? m->prev_uj[prev - m->prev_hash] : 0;
		if (leaves[l].uj > before)
			m->other_uj += leaves[l].uj - before;
	}
	qsort(leaves, nl, sizeof(*leaves), cmp_leaf_hash);
	for (size_t l = 0; l < nl; l++) {
		hash[l] = leaves[l].hash;
		uj[l] = leaves[l].uj;
	}
	free(leaves);
	free(m->prev_hash);
	free(m->prev_uj);
	m->prev_hash = hash;
	m->prev_uj = uj;
	m->n_prev = nl;
	m->n_leaves = nl;
	return 0;
}

void metrics_cgroups_free(struct metrics_cgroups *m)
{
	MEM_FREE_NULL(m->prev_hash);
	MEM_FREE_NULL(m->prev_uj);
	m->n_prev = 0;
}
