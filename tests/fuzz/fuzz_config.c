/*
 * energyd's config file as a hostile file would be: the whole options_parse() path (the INI
 * parser, every [energyd] and [carbon] key, the cross-checks), then the carbon config check and
 * the price schedule lookup that a parsed [carbon] section feeds.
 */
#define _GNU_SOURCE
#include "carbon.h"
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* config_parse_file() reads a path: give it the input as an in-memory file. */
	int fd = memfd_create("config", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	char path[64], flag[80];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(flag, sizeof(flag), "--config=%s", path);

	static const char *extra[][2] = {{NULL, NULL}, {"--interval", "0.5"}, {"--listen", "/x"}};
	char err[CONFIG_ERROR_MAX];
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		struct energyd_options o;
		options_defaults(&o);
		char *argv[] = {"energyd", flag, (char *)extra[i][0], (char *)extra[i][1], NULL};
		int argc = extra[i][0] ? 4 : 2;
		if (options_parse(&o, argc, argv, i == 0, err, sizeof(err)) < 0)
			continue;
		if (carbon_config_check(&o.carbon, err, sizeof(err)) < 0)
			continue;
		double next;
		for (double t = 0; t < 8 * 86400; t += 86400 / 3.0)
			(void)carbon_price_at(&o.carbon, 1.7e9 + t, &next);
	}
	close(fd);
	return 0;
}
