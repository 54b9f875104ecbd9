#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* One line at priority to stderr (see log.h). */
static void log_vmsg(int priority, const char *fmt, va_list ap)
{
	static const char *names[] = {
	    [LOG_PRI_ERR] = "error", [LOG_PRI_WARN] = "warning", [LOG_PRI_INFO] = "info"};
	char line[2048];
	vsnprintf(line, sizeof(line), fmt, ap);
	if (getenv("JOURNAL_STREAM"))
		fprintf(stderr, "<%d>%s\n", priority, line);
	else
		fprintf(stderr, "energyd: %s: %s\n", names[priority], line);
}

void log_msg(int priority, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(priority, fmt, ap);
	va_end(ap);
}

int log_fail(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_PRI_ERR, fmt, ap);
	va_end(ap);
	return rc;
}
