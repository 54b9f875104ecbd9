/* Helpers shared by energyd, the CLI and clients (energy_util.h): counter arithmetic, strict
 * parsing, clocks, small files. */
#define _GNU_SOURCE
#include "energy_util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int energy_counter_delta(uint64_t prev, uint64_t now, uint64_t max_uj, uint64_t *delta)
{
	if (max_uj != 0 && (now > max_uj || prev > max_uj))
		return -ERANGE;
	if (now >= prev) {
		*delta = now - prev;
		return 0;
	}
	if (max_uj == 0)
		return -ERANGE; /* a non-wrapping counter went backwards: a reset, not energy */
	*delta = (max_uj - prev) + now + 1;
	return 0;
}

static const char *skip_space(const char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	return s;
}

int energy_parse_u64(const char *s, uint64_t *out)
{
	if (!s)
		return -EINVAL;
	s = skip_space(s);
	if (!isdigit((unsigned char)*s))
		return -EINVAL; /* strtoull would accept "-1" and wrap it */
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*skip_space(end) != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

int energy_parse_double(const char *s, double *out)
{
	if (!s)
		return -EINVAL;
	s = skip_space(s);
	if (*s == '\0')
		return -EINVAL;
	/* strtod accepts "nan", "inf" and hex floats; a query parameter should be plain decimal. */
	for (const char *p = s; *p && !isspace((unsigned char)*p); p++)
		if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p))
			return -EINVAL;
	errno = 0;
	char *end;
	double v = strtod(s, &end);
	if (end == s || *skip_space(end) != '\0')
		return -EINVAL;
	if (errno == ERANGE || !isfinite(v))
		return -ERANGE;
	*out = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int parse_digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int parse_iso8601(const char *s, double *out)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0;
	double frac = 0;

	if (parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) || *p++ != '-' ||
	    parse_digits(&p, 2, &d))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
		return -EINVAL;
	int offset_s = 0;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &mi))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (parse_digits(&p, 2, &sec))
				return -EINVAL;
			if (*p == '.') {
				double scale = 0.1;
				p++;
				if (!isdigit((unsigned char)*p))
					return -EINVAL;
				while (isdigit((unsigned char)*p)) {
					frac += (*p++ - '0') * scale;
					scale /= 10;
				}
			}
		}
		if (h > 23 || mi > 59 || sec > 60)
			return -EINVAL;
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
			if (parse_digits(&p, 2, &oh))
				return -EINVAL;
			if (*p == ':')
				p++;
			if (*p && parse_digits(&p, 2, &om))
				return -EINVAL;
			if (oh > 23 || om > 59)
				return -EINVAL;
			offset_s = sign * (oh * 3600 + om * 60);
		}
	}
	if (*p != '\0')
		return -EINVAL;
	int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
	*out = (double)(days * 86400 + h * 3600 + mi * 60 + sec - offset_s) + frac;
	return 0;
}

int energy_parse_time(const char *s, double *out)
{
	if (!s)
		return -EINVAL;
	s = skip_space(s);
	if (strlen(s) >= 10 && s[4] == '-' && s[7] == '-')
		return parse_iso8601(s, out);
	return energy_parse_double(s, out);
}

/* The bytes read (0 for an empty file), NUL-terminated, or -errno. */
static int pread_text(int fd, char *buf, size_t len)
{
	if (len == 0)
		return -EINVAL;
	ssize_t n = pread(fd, buf, len - 1, 0);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

int energy_pread_text(int fd, char *buf, size_t len)
{
	int n = pread_text(fd, buf, len);
	return n == 0 ? -EIO : n;
}

int energy_read_text_at(int dirfd, const char *path, char *buf, size_t len, bool allow_empty)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int n = pread_text(fd, buf, len);
	close(fd);
	return n == 0 && !allow_empty ? -EIO : n;
}

int energy_pread_u64(int fd, uint64_t *out)
{
	char buf[64];
	int rc = energy_pread_text(fd, buf, sizeof(buf));
	return rc < 0 ? rc : energy_parse_u64(buf, out);
}

uint64_t energy_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double energy_wall_time(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
