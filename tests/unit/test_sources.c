/*
 * Families that see the same RAPL domain never both count it: a family preferred earlier (perf)
 * takes the channel id, and powercap and MSR skip ids already taken. Checked on a fake powercap
 * tree and fake MSR files built here.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "host.h"
#include "source.h"

extern const struct source_family powercap_family;
extern const struct source_family msr_rapl_family;

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void zone(const char *root, const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/class/powercap/%s", root, dir);
	assert_int_equal(mkdir(path, 0755), 0);
	write_file(path, "name", name);
	write_file(path, "energy_uj", "1000\n");
	write_file(path, "max_energy_range_uj", "262143328850\n");
}

static void test_powercap_skips_what_perf_took(void **state)
{
	(void)state;
	char root[] = "/tmp/energy-test-sources-XXXXXX", path[512];
	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/class", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/class/powercap", root);
	mkdir(path, 0755);
	zone(root, "intel-rapl:0", "package-0");
	zone(root, "intel-rapl:0:0", "dram");

	struct channel_set set = {0};
	/* What perf opened first: package 0 through the power PMU. */
	struct channel *perf = channel_set_add(&set, "rapl:package-0");
	perf->kind = CHANNEL_PACKAGE;
	perf->package = 0;
	struct source_config cfg = {.sysfs_root = root, .proc_root = "/proc", .dev_root = root};
	struct family_report r = {0};
	int added = powercap_family.open(&cfg, &set, &r);
	assert_int_equal(added, 1);
	assert_int_equal(set.n, 2);
	assert_string_equal(set.ch[1].id, "rapl:dram-0");
	assert_null(channel_set_add(&set, "rapl:package-0")); /* ids are unique */

	/* The host total has package 0 once. */
	struct host_coverage cov;
	assert_int_equal(host_select(set.ch, set.n, &cov), 2);

	/* MSR on the same machine: every domain taken already, so it opens nothing. */
	snprintf(path, sizeof(path), "%s/devices/system/cpu/cpu0/topology", root);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "mkdir -p %s %s/cpu/0", path, root);
	assert_int_equal(system(cmd), 0);
	write_file(path, "physical_package_id", "0\n");
	write_file(path, "core_id", "0\n");
	snprintf(path, sizeof(path), "%s/cpu/0/msr", root);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	uint64_t unit = 0xA0E03, pkg = 5, dram = 7;
	assert_int_equal(pwrite(fd, &unit, 8, 0x606), 8);
	assert_int_equal(pwrite(fd, &pkg, 8, 0x611), 8);
	assert_int_equal(pwrite(fd, &dram, 8, 0x619), 8);
	close(fd);
	cfg.msr_vendor = "intel";
	memset(&r, 0, sizeof(r));
	assert_int_equal(msr_rapl_family.probe(&cfg, &r), 1);
	assert_int_equal(msr_rapl_family.open(&cfg, &set, &r), 0);
	assert_int_equal(r.status, FAMILY_SKIPPED);
	assert_int_equal(set.n, 2);

	for (int i = 1; i < set.n; i++)
		set.ch[i].family = &powercap_family;
	set.ch[0].family = NULL; /* the stand-in for perf owns nothing */
	sources_close_all(&set);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_powercap_skips_what_perf_took),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
