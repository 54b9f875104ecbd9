#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void log_msg(int priority, const char *fmt, ...)
{
	static const char *names[] = {
	    [LOG_PRI_ERR] = "error", [LOG_PRI_WARN] = "warning", [LOG_PRI_INFO] = "info"};
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (getenv("JOURNAL_STREAM"))
		fprintf(stderr, "<%d>%s\n", priority, line);
	else
		fprintf(stderr, "energyd: %s: %s\n", names[priority], line);
}
