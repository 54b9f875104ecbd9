/* The helpers the sensor families share (registry.c), the enum names, threads_stop() and
 * MEM_FREE_NULL. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mem.h"
#include "source.h"
#include "split.h"
#include "threads.h"

/* Takes "nN" entries (N a number), keeps N. */
static bool take_numbered(const char *name, void *slot, void *ctx)
{
	int v, used = 0;
	(*(int *)ctx)++;
	if (sscanf(name, "n%d%n", &v, &used) != 1 || name[used])
		return false;
	*(int *)slot = v;
	return true;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static void test_scan_dir_takes_sorts_and_stops_at_max(void **state)
{
	(void)state;
	char dir[] = "/tmp/energy-scan-XXXXXX";
	assert_non_null(mkdtemp(dir));
	const char *names[] = {"n30", "n7", "other", "n12", "n5x"};
	char path[128];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		assert_int_equal(mkdir(path, 0700), 0);
	}
	int table[8] = {0}, offered = 0;
	assert_int_equal(
	    source_scan_dir(dir, table, sizeof(table[0]), 8, take_numbered, cmp_int, &offered), 3);
	assert_int_equal(table[0], 7);
	assert_int_equal(table[1], 12);
	assert_int_equal(table[2], 30);
	assert_int_equal(table[3], 0); /* nothing written past the entries taken */
	assert_true(offered >= 5);     /* every entry, with "." and ".." */

	memset(table, 0, sizeof(table));
	assert_int_equal(
	    source_scan_dir(dir, table, sizeof(table[0]), 2, take_numbered, cmp_int, &offered), 2);
	assert_int_equal(table[2], 0);
	assert_true(table[0] > 0 && table[1] > table[0]);

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		rmdir(path);
	}
	rmdir(dir);
	assert_int_equal(
	    source_scan_dir(dir, table, sizeof(table[0]), 2, take_numbered, cmp_int, &offered),
	    -ENOENT);
}

static void test_report_add_appends_and_cuts(void **state)
{
	(void)state;
	struct family_report r = {.name = "test"};
	snprintf(r.detail, sizeof(r.detail), "found 2");
	family_report_add(&r, "; %s: %d", "zone", 3);
	assert_string_equal(r.detail, "found 2; zone: 3");
	char big[FAMILY_DETAIL_MAX * 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	family_report_add(&r, "%s", big);
	assert_int_equal(strlen(r.detail), FAMILY_DETAIL_MAX - 1);
	assert_memory_equal(r.detail, "found 2; zone: 3x", 17);
	family_report_add(&r, "more"); /* full: nothing changes, nothing overflows */
	assert_int_equal(strlen(r.detail), FAMILY_DETAIL_MAX - 1);
}

struct fd_priv {
	int fd;
	char path[16];
};

static void test_close_fd_priv_closes_and_frees(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	struct fd_priv *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->fd = fds[0];
	struct channel ch = {.priv = p};
	source_close_fd_priv(&ch);
	assert_null(ch.priv);
	assert_int_equal(fcntl(fds[0], F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	source_close_fd_priv(&ch); /* again: nothing to do */
	assert_null(ch.priv);
	close(fds[1]);
}

/* The channel owns the descriptor from the start: on every refusal it is closed. */
static void test_add_fd_owns_the_descriptor(void **state)
{
	(void)state;
	static struct channel_set set;
	memset(&set, 0, sizeof(set));
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	struct channel *ch = channel_set_add_fd(&set, "test:a", fds[0], sizeof(struct fd_priv));
	assert_non_null(ch);
	assert_int_equal(set.n, 1);
	struct fd_priv *p = ch->priv;
	assert_int_equal(p->fd, fds[0]);
	assert_string_equal(p->path, ""); /* zeroed */

	int dup_fd = dup(fds[1]);
	assert_true(dup_fd >= 0);
	assert_null(channel_set_add_fd(&set, "test:a", dup_fd, sizeof(struct fd_priv))); /* taken */
	assert_int_equal(fcntl(dup_fd, F_GETFD), -1);
	assert_int_equal(set.n, 1);

	source_close_fd_priv(ch);
	assert_int_equal(fcntl(fds[0], F_GETFD), -1);
	set.n = CHANNELS_MAX; /* full */
	dup_fd = dup(fds[1]);
	assert_null(channel_set_add_fd(&set, "test:b", dup_fd, sizeof(struct fd_priv)));
	assert_int_equal(fcntl(dup_fd, F_GETFD), -1);
	close(fds[1]);
}

static void test_enum_names(void **state)
{
	(void)state;
	assert_string_equal(channel_kind_name(CHANNEL_PACKAGE), "package");
	assert_string_equal(channel_kind_name(CHANNEL_MODEL), "model");
	assert_string_equal(channel_kind_name((enum channel_kind)99), "unknown");
	assert_string_equal(family_status_name(FAMILY_SKIPPED), "skipped");
	assert_string_equal(family_status_name((enum family_status) - 1), "unknown");
	assert_string_equal(split_method_name(SPLIT_GPU), "gpu-process-utilisation");
	assert_string_equal(split_method_name((enum split_method)7), "unattributed");
}

static void *spin_until_stopped(void *arg)
{
	atomic_bool *stop = arg;
	while (!atomic_load(stop))
		usleep(1000);
	return NULL;
}

static void test_threads_stop(void **state)
{
	(void)state;
	struct threads_worker w = {0};
	atomic_bool stop = false;
	assert_false(threads_stop(&w, &stop)); /* never started */
	assert_false(atomic_load(&stop));
	assert_int_equal(threads_start(&w, "test-spinner", spin_until_stopped, &stop), 0);
	assert_true(threads_stop(&w, &stop));
	assert_true(atomic_load(&stop));
	assert_false(w.running);
	assert_false(threads_stop(&w, &stop));
}

static void *read_own_name(void *arg)
{
	char *name = arg; /* 16 bytes */
	if (pthread_getname_np(pthread_self(), name, 16) != 0)
		strcpy(name, "(no name)");
	return NULL;
}

/* The thread has its name before it runs fn, cut to the kernel's 15 characters. */
static void test_threads_named(void **state)
{
	(void)state;
	char seen[16] = "";
	struct threads_worker w = {0};
	assert_int_equal(threads_start(&w, "energy-sampler", read_own_name, seen), 0);
	assert_true(threads_join(&w));
	assert_string_equal(seen, "energy-sampler");
	assert_int_equal(threads_start(&w, "a-name-longer-than-fifteen", read_own_name, seen), 0);
	assert_true(threads_join(&w));
	assert_string_equal(seen, "a-name-longer-t");
}

static void test_mem_free_null(void **state)
{
	(void)state;
	double *v = malloc(4 * sizeof(*v));
	assert_non_null(v);
	MEM_FREE_NULL(v);
	assert_null(v);
	MEM_FREE_NULL(v); /* free(NULL) */
	assert_null(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scan_dir_takes_sorts_and_stops_at_max),
	    cmocka_unit_test(test_report_add_appends_and_cuts),
	    cmocka_unit_test(test_close_fd_priv_closes_and_frees),
	    cmocka_unit_test(test_add_fd_owns_the_descriptor),
	    cmocka_unit_test(test_enum_names),
	    cmocka_unit_test(test_threads_stop),
	    cmocka_unit_test(test_threads_named),
	    cmocka_unit_test(test_mem_free_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
