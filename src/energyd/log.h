/* Logging to stderr, one line per message, systemd-journal friendly ("<N>" priority prefix
 * when stderr is the journal, plain otherwise). */
#ifndef ENERGY_LOG_H
#define ENERGY_LOG_H

#define LOG_PRI_ERR  3
#define LOG_PRI_WARN 4
#define LOG_PRI_INFO 6

void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log an error and return rc: `return log_fail(1, "cannot ...", ...);`. */
int log_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_err(...)  log_msg(LOG_PRI_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_PRI_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_PRI_INFO, __VA_ARGS__)

#endif
