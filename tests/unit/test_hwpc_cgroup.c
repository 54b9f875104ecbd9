/* Cgroup watches' hardware counters (src/energyd/attribution/hwpc_cgroup.c): the bound on the
 * cgroups counted, a per-CPU cgroup counter's count over a window, and what opening leaves
 * behind when the kernel (or the directory) refuses. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "hwpc.h"

/* --hwpc-cgroups within HWPC_CGROUP_FDS_MAX descriptors, 3 per online CPU and cgroup. */
static void test_cgroups_max(void **state)
{
	(void)state;
	assert_int_equal(hwpc_cgroups_max(16, 2), 16);
	assert_int_equal(hwpc_cgroups_max(16, 8), 16);  /* 16 x 8 x 3 = 384: the budget */
	assert_int_equal(hwpc_cgroups_max(16, 9), 14);  /* 384 / 27 */
	assert_int_equal(hwpc_cgroups_max(16, 128), 1); /* 384 / 384 */
	assert_int_equal(hwpc_cgroups_max(64, 1), 64);
	assert_int_equal(hwpc_cgroups_max(64, 2), 64);
	assert_int_equal(hwpc_cgroups_max(16, 0), 0); /* no machine counters: no cgroups */
	assert_int_equal(hwpc_cgroups_max(0, 2), 0);
	/* A quarter for each user but root, at least 1. */
	assert_int_equal(hwpc_cgroups_per_user(16), 4);
	assert_int_equal(hwpc_cgroups_per_user(14), 3);
	assert_int_equal(hwpc_cgroups_per_user(7), 1);
	assert_int_equal(hwpc_cgroups_per_user(1), 1);
	assert_int_equal(hwpc_cgroups_per_user(64), 16);
}

/* A CPU the cgroup did not run on: its time there (enabled) stands still, and so does the
 * count: 0, where hwpc_counter_delta (a process's) says nothing is known. */
static void test_delta_idle_cpu_is_zero(void **state)
{
	(void)state;
	struct hwpc_reading a = {1000, 5000, 5000}, b = a;
	assert_true(hwpc_cgroup_delta(&a, &b) == 0.0);
	assert_true(isnan(hwpc_counter_delta(&a, &b)));
	struct hwpc_reading z = {0, 0, 0};
	assert_true(hwpc_cgroup_delta(&z, &z) == 0.0);
}

/* It ran: the count, scaled by enabled / running when multiplexed. */
static void test_delta_scaled(void **state)
{
	(void)state;
	struct hwpc_reading a = {1000, 5000, 5000};
	struct hwpc_reading full = {3000, 6000, 6000}, half = {3000, 7000, 6000};
	assert_true(fabs(hwpc_cgroup_delta(&a, &full) - 2000.0) < 1e-9);
	assert_true(fabs(hwpc_cgroup_delta(&a, &half) - 4000.0) < 1e-9); /* 2000 x 2000/1000 */
}

/* What cannot be: the cgroup ran there but the counter never did (multiplexed out all the
 * window), a count without time, or anything going backwards. */
static void test_delta_unknown(void **state)
{
	(void)state;
	struct hwpc_reading a = {1000, 5000, 5000};
	struct hwpc_reading out = {1000, 6000, 5000}, counted = {1500, 5000, 5000},
	                    back = {900, 6000, 6000};
	assert_true(isnan(hwpc_cgroup_delta(&a, &out)));
	assert_true(isnan(hwpc_cgroup_delta(&a, &counted)));
	assert_true(isnan(hwpc_cgroup_delta(&a, &back)));
}

/* Without a cgroup root, or when the kernel refuses (no PMU, as on most CI machines, or no
 * privilege), nothing stays open and the reason names the call; where it accepts (a PMU and
 * root), 3 counters per CPU are open and closing returns them all. */
static void test_open_refused_or_closed_clean(void **state)
{
	(void)state;
	struct hwpc *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	h->n_cpus = 2;
	h->cpu[0] = 0;
	h->cpu[1] = 1;
	struct hwpc_watch w = {.is_cgroup = true};
	strcpy(w.cgroup, "/sub");
	hwpc_cgroup_open(h, &w, -1);
	assert_false(w.open);
	assert_null(w.cfd);
	assert_int_equal(h->fds, 0);
	assert_int_equal(h->n_cgroups, 0);
	assert_non_null(strstr(w.reason, "cannot open the cgroup directory /sub"));

	char dir[] = "/tmp/hwpc-cgroup-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char sub[64];
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	int root = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(root >= 0);
	hwpc_cgroup_open(h, &w, root);
	if (w.open) {
		assert_int_equal(h->fds, 3 * 2);
		assert_int_equal(h->n_cgroups, 1);
		hwpc_cgroup_close(h, &w);
	} else {
		assert_non_null(strstr(w.reason, "perf_event_open(cycles, cgroup /sub, cpu 0): "));
		assert_non_null(strstr(w.reason, "split by CPU time"));
	}
	assert_false(w.open);
	assert_int_equal(h->fds, 0);
	assert_int_equal(h->n_cgroups, 0);
	close(root);
	rmdir(sub);
	rmdir(dir);
	free(h);
}

/* Counters opened before the drop are lent to one watch of their path at a time and come back
 * when it ends, still open and still counted. */
static void test_pool_lend_and_return(void **state)
{
	(void)state;
	struct hwpc *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	h->n_cpus = 1;
	h->n_pool = 1;
	h->n_cgroups = 1;
	struct hwpc_watch *p = &h->pool[0];
	p->is_cgroup = p->open = true;
	strcpy(p->cgroup, "/vec");
	p->cfd = malloc(HWPC_EVENTS * sizeof(int));
	p->clast = calloc(HWPC_EVENTS, sizeof(*p->clast));
	for (int e = 0; e < HWPC_EVENTS; e++)
		p->cfd[e] = -1;
	int *fds = p->cfd;
	struct hwpc_watch other = {.id = 3, .is_cgroup = true}, w = {.id = 7, .is_cgroup = true},
	                  twin = {.id = 8, .is_cgroup = true};
	strcpy(other.cgroup, "/mem");
	strcpy(w.cgroup, "/vec");
	strcpy(twin.cgroup, "/vec");
	assert_false(hwpc_pool_lend(h, &other));
	assert_true(hwpc_pool_lend(h, &w));
	assert_true(w.open && w.lent && w.cfd == fds);
	assert_true(p->lent && p->id == 7 && p->cfd == NULL);
	assert_false(hwpc_pool_lend(h, &twin)); /* one watch at a time */
	assert_false(hwpc_pool_return(h, &other));
	assert_true(hwpc_pool_return(h, &w));
	assert_false(w.open || w.lent);
	assert_null(w.cfd);
	assert_true(p->open && !p->lent && p->cfd == fds);
	assert_int_equal(h->n_cgroups, 1);
	assert_true(hwpc_pool_lend(h, &twin)); /* the next watch of the path */
	assert_true(hwpc_pool_return(h, &twin));
	hwpc_cgroup_close(h, p);
	assert_int_equal(h->n_cgroups, 0);
	free(h);
}

/* The machine's CPUs by socket (hwpc.c): sockets in increasing package id whatever the CPUs'
 * order, each CPU in its own package's socket; without a topology one socket (package -1);
 * beyond HWPC_SOCKETS_MAX packages the highest are left out (sock -1). */
static void test_sockets_map(void **state)
{
	(void)state;
	struct hwpc *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	const int pkg[] = {1, 1, 0, 0, 3};
	hwpc_sockets_map(h, pkg, 5);
	assert_int_equal(h->n_sockets, 3);
	assert_int_equal(h->socket_pkg[0], 0);
	assert_int_equal(h->socket_pkg[1], 1);
	assert_int_equal(h->socket_pkg[2], 3);
	const int want[] = {1, 1, 0, 0, 2};
	for (int i = 0; i < 5; i++)
		assert_int_equal(h->sock[i], want[i]);
	assert_int_equal(h->socket_cpus[0], 2);
	assert_int_equal(h->socket_cpus[1], 2);
	assert_int_equal(h->socket_cpus[2], 1);

	hwpc_sockets_map(h, NULL, 4);
	assert_int_equal(h->n_sockets, 1);
	assert_int_equal(h->socket_pkg[0], -1);
	assert_int_equal(h->socket_cpus[0], 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(h->sock[i], 0);

	/* One package more than kept, its CPU first: the lowest HWPC_SOCKETS_MAX are kept. */
	int many[HWPC_SOCKETS_MAX + 1];
	many[0] = HWPC_SOCKETS_MAX;
	for (int i = 1; i <= HWPC_SOCKETS_MAX; i++)
		many[i] = HWPC_SOCKETS_MAX - i;
	hwpc_sockets_map(h, many, HWPC_SOCKETS_MAX + 1);
	assert_int_equal(h->n_sockets, HWPC_SOCKETS_MAX);
	assert_int_equal(h->sock[0], -1);
	for (int i = 1; i <= HWPC_SOCKETS_MAX; i++) {
		assert_int_equal(h->sock[i], HWPC_SOCKETS_MAX - i);
		assert_int_equal(h->socket_pkg[HWPC_SOCKETS_MAX - i], HWPC_SOCKETS_MAX - i);
	}
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cgroups_max),
	    cmocka_unit_test(test_sockets_map),
	    cmocka_unit_test(test_delta_idle_cpu_is_zero),
	    cmocka_unit_test(test_delta_scaled),
	    cmocka_unit_test(test_delta_unknown),
	    cmocka_unit_test(test_open_refused_or_closed_clean),
	    cmocka_unit_test(test_pool_lend_and_return),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
