/*
 * The /proc parsers the attribution's scan runs on every process: PID/stat (procfs_parse_stat)
 * and a cgroup's cpu.stat (procfs_parse_cgroup_usage). A process chooses its own command name, so
 * the stat line is hostile input. An accepted line must give a positive pid equal to the line's
 * leading number, a state letter and the command name between the first '(' and the last ')'
 * (cut to the buffer); a refused one must leave the output zeroed.
 */
#include "fuzz.h"
#include "procfs.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstring(data, size);
	struct procfs_stat st;
	if (procfs_parse_stat(text, &st) == 0) {
		char *end;
		long pid = strtol(text, &end, 10);
		const char *open = strchr(text, '('), *close = strrchr(text, ')');
		if (st.pid <= 0 || st.pid != pid || st.ppid < 0 ||
		    !isalpha((unsigned char)st.state))
			abort();
		if (!open || !close || open != end + 1 || close < open)
			abort();
		size_t len = (size_t)(close - open - 1);
		if (len > PROCFS_COMM_MAX - 1)
			len = PROCFS_COMM_MAX - 1;
		if (memchr(st.comm, '\0', sizeof(st.comm)) == NULL || strlen(st.comm) > len ||
		    strncmp(st.comm, open + 1, len) != 0)
			abort();
		if (close[1] != ' ' || close[2] != st.state)
			abort();
	} else {
		static const struct procfs_stat zero;
		if (memcmp(&st, &zero, sizeof(st)) != 0)
			abort();
	}
	uint64_t usage;
	(void)procfs_parse_cgroup_usage(text, &usage);
	free(text);
	return 0;
}
