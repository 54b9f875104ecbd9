#define _GNU_SOURCE
/* The INI parser and option handling. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"

struct seen {
	char text[1024];
};

static int record(void *ctx, const char *section, const char *key, const char *value, char *err,
                  size_t errlen)
{
	struct seen *s = ctx;
	if (strcmp(key, "bad") == 0) {
		snprintf(err, errlen, "bad key");
		return -1;
	}
	snprintf(s->text + strlen(s->text), sizeof(s->text) - strlen(s->text), "%s.%s=%s;", section,
	         key, value);
	return 0;
}

static void test_parse(void **state)
{
	(void)state;
	struct seen s = {""};
	char err[256];
	const char *text = "# comment\n[energyd]\ninterval = 0.5  # trailing\n\n"
	                   "  listen=unix:/tmp/x.sock\n[carbon]\nzone = DE\n";
	assert_int_equal(config_parse_string(text, record, &s, err, sizeof(err)), 0);
	assert_string_equal(s.text, "energyd.interval=0.5;energyd.listen=unix:/tmp/x.sock;"
	                            "carbon.zone=DE;");
}

static void test_errors_name_the_line(void **state)
{
	(void)state;
	struct seen s = {""};
	char err[256];
	assert_int_equal(
	    config_parse_string("[energyd]\ninterval 0.5\n", record, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "2: expected 'key = value', got 'interval 0.5'");
	assert_int_equal(config_parse_string("key = v\n", record, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "1: 'key' outside a [section]");
	assert_int_equal(config_parse_string("[a\n", record, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "1: malformed section header '[a'");
	assert_int_equal(config_parse_string("[a]\n\n\nbad = 1\n", record, &s, err, sizeof(err)),
	                 -1);
	assert_string_equal(err, "4: bad key");
}

static void test_options(void **state)
{
	(void)state;
	struct energyd_options o;
	char err[512];
	options_defaults(&o);
	char *argv[] = {"energyd",  "--interval",     "0.05",         "--listen=unix:/tmp/a.sock",
	                "--listen", "127.0.0.1:9999", "--sysfs-root", "/tmp/sys",
	                NULL};
	assert_int_equal(options_parse(&o, 8, argv, false, err, sizeof(err)), 0);
	assert_true(o.interval_s == 0.05);
	assert_int_equal(o.n_listen, 2);
	assert_string_equal(o.listen[1], "127.0.0.1:9999");
	assert_string_equal(o.sysfs_root, "/tmp/sys");

	options_defaults(&o);
	char *below[] = {"energyd", "--interval", "0.001", NULL};
	assert_int_equal(options_parse(&o, 3, below, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "below the floor"));
	options_defaults(&o);
	char *floor[] = {"energyd", "--min-interval", "0.001", "--interval", "0.001", NULL};
	assert_int_equal(options_parse(&o, 5, floor, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "only root"));
	options_defaults(&o);
	assert_int_equal(options_parse(&o, 5, floor, true, err, sizeof(err)), 0);

	options_defaults(&o);
	char *bad[] = {"energyd", "--interval", "nan", NULL};
	assert_int_equal(options_parse(&o, 3, bad, false, err, sizeof(err)), -1);
	char *unknown[] = {"energyd", "--frobnicate", NULL};
	assert_int_equal(options_parse(&o, 2, unknown, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--frobnicate"));
}

static void test_config_file(void **state)
{
	(void)state;
	char path[] = "/tmp/energyd-test-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs("[energyd]\ninterval = 0.2\nmodel_idle_watts = 5\nlisten = unix:/tmp/f.sock\n"
	      "bogus = 1\n",
	      f);
	fclose(f);
	struct energyd_options o;
	char err[512];
	options_defaults(&o);
	char *argv[] = {"energyd", "--config", path, NULL};
	assert_int_equal(options_parse(&o, 3, argv, false, err, sizeof(err)), -1);
	char expect[600];
	snprintf(expect, sizeof(expect),
	         "%s:5: unknown key 'bogus' in [energyd] (see energyd --help)", path);
	assert_string_equal(err, expect);

	f = fopen(path, "w");
	fputs("[energyd]\ninterval = 0.2\nmodel_idle_watts = 5\nlisten = unix:/tmp/f.sock\n", f);
	fclose(f);
	options_defaults(&o);
	char *argv2[] = {"energyd", "--config", path, "--interval", "0.3", NULL};
	assert_int_equal(options_parse(&o, 5, argv2, false, err, sizeof(err)), 0);
	assert_true(o.interval_s == 0.3); /* the flag wins */
	assert_true(o.model_idle_watts == 5);
	assert_int_equal(o.n_listen, 1);
	remove(path);
}

static void test_sensor_options(void **state)
{
	(void)state;
	struct energyd_options o;
	char err[512];
	options_defaults(&o);
	char *argv[] = {"energyd",
	                "--mcp",
	                "/dev/ttyACM0",
	                "--mcp=/dev/ttyACM1",
	                "--nvml-lib",
	                "/opt/libnvidia-ml.so.1",
	                "--msr-vendor",
	                "amd",
	                "--host-meter",
	                "mcp:ttyACM0:1",
	                NULL};
	assert_int_equal(options_parse(&o, 10, argv, false, err, sizeof(err)), 0);
	assert_int_equal(o.n_mcp, 2);
	assert_string_equal(o.mcp[1], "/dev/ttyACM1");
	assert_string_equal(o.nvml_lib, "/opt/libnvidia-ml.so.1");
	assert_string_equal(o.msr_vendor, "amd");
	assert_string_equal(o.host_meter, "mcp:ttyACM0:1");

	options_defaults(&o);
	char *vendor[] = {"energyd", "--msr-vendor", "via", NULL};
	assert_int_equal(options_parse(&o, 3, vendor, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected intel or amd"));
	options_defaults(&o);
	char *many[] = {"energyd", "--mcp", "a", "--mcp", "b", "--mcp", "c", "--mcp", "d", "--mcp",
	                "e",       "--mcp", "f", "--mcp", "g", "--mcp", "h", "--mcp", "i", NULL};
	assert_int_equal(options_parse(&o, 19, many, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at most 8"));
}

/* [influxdb] keys are the options influxdb-KEY: one table for flags, file and --help. */
static int parse_file(const char *text, struct energyd_options *o, char *err, size_t errlen)
{
	char path[] = "/tmp/energyd-test-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	options_defaults(o);
	char *argv[] = {"energyd", "--config", path, NULL};
	int rc = options_parse(o, 3, argv, false, err, errlen);
	remove(path);
	return rc;
}

static void test_influxdb_section(void **state)
{
	(void)state;
	struct energyd_options o;
	char err[1024];
	assert_int_equal(parse_file("[influxdb]\nurl = http://127.0.0.1:8086\ndatabase = energy\n"
	                            "interval_s = 5\ntoken-file = /etc/energyd/influx.token\n",
	                            &o, err, sizeof(err)),
	                 0);
	assert_string_equal(o.influxdb.url, "http://127.0.0.1:8086");
	assert_string_equal(o.influxdb.database, "energy");
	assert_string_equal(o.influxdb.token_file, "/etc/energyd/influx.token");
	assert_true(o.influxdb.interval_s == 5 && o.influxdb.memory_s == 3600);
	assert_int_equal(parse_file("[influxdb]\nurl = https://db:8086\nbucket = b\norg = o\n", &o,
	                            err, sizeof(err)),
	                 0);
	assert_string_equal(o.influxdb.bucket, "b");
	/* off by default */
	assert_int_equal(parse_file("[energyd]\n", &o, err, sizeof(err)), 0);
	assert_string_equal(o.influxdb.url, "");
	const char *bad[][2] = {
	    {"[influxdb]\nurl = http://x\nbogus = 1\n", "unknown key 'bogus' in [influxdb]"},
	    {"[influxdb]\nurl = http://x\n", "give database (InfluxDB 1.x) or bucket and org"},
	    {"[influxdb]\nurl = http://x\ndatabase = d\nbucket = b\norg = o\n", "not both"},
	    {"[influxdb]\nurl = http://x\nbucket = b\n", "bucket and org"},
	    {"[influxdb]\ndatabase = d\n", "url is missing"},
	    {"[influxdb]\nurl = ftp://x\ndatabase = d\n", "expected http://"},
	    {"[influxdb]\nurl = http://x\ndatabase = d\ninterval_s = 0\n", "not a positive"},
	    {"[influxdb]\nurl = http://x\ndatabase = d\ninterval_s = 60\nmemory_s = 10\n",
	     "below interval_s"},
	    {"[infux]\nurl = http://x\n", "unknown section [infux]"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse_file(bad[i][0], &o, err, sizeof(err)), -1);
		if (!strstr(err, bad[i][1]))
			fail_msg("'%s' gave '%s', expected '%s'", bad[i][0], err, bad[i][1]);
	}
	/* the same keys as flags */
	options_defaults(&o);
	char *argv[] = {"energyd", "--influxdb-url", "http://h:1", "--influxdb-database", "d",
	                NULL};
	assert_int_equal(options_parse(&o, 5, argv, false, err, sizeof(err)), 0);
	assert_string_equal(o.influxdb.url, "http://h:1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_sensor_options),
	    cmocka_unit_test(test_errors_name_the_line),
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_config_file),
	    cmocka_unit_test(test_influxdb_section),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
