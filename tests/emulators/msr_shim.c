/*
 * LD_PRELOAD shim that gives regular files the addressing of the msr driver, for MSRs whose
 * numbers are adjacent (AMD's 0xC0010299, 0xC001029A, 0xC001029B).
 *
 * The driver (arch/x86/kernel/msr.c) reads register N for pread(fd, buf, 8, N): the offset is a
 * register number, not a byte position, so adjacent registers do not overlap. A regular file
 * cannot do that; Intel's RAPL registers are at least 8 apart and regular files suffice for them
 * (tests/emulators/msr.py), AMD's are not. Under this shim, for files named ".../msr" below
 * $MSR_SHIM_ROOT, pread at offset N reads the file at byte offset N * 8, where the fake stores
 * register N. Nothing else changes.
 */
/* Define open and open64 (pread and pread64) as distinct symbols, as libc exports them. */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define SHIM_FDS 4096

static bool shim_fd[SHIM_FDS];

static bool shim_path(const char *path)
{
	const char *root = getenv("MSR_SHIM_ROOT");
	size_t n = path ? strlen(path) : 0;
	return root && n >= 4 && strncmp(path, root, strlen(root)) == 0 &&
	       strcmp(path + n - 4, "/msr") == 0;
}

static int track(int fd, const char *path)
{
	if (fd >= 0 && fd < SHIM_FDS)
		shim_fd[fd] = shim_path(path);
	return fd;
}

#define OPEN_SHIM(name, ...)                                                                       \
	do {                                                                                       \
		mode_t mode = 0;                                                                   \
		if (flags & (O_CREAT | O_TMPFILE)) {                                               \
			va_list ap;                                                                \
			va_start(ap, flags);                                                       \
			mode = va_arg(ap, mode_t);                                                 \
			va_end(ap);                                                                \
		}                                                                                  \
		static int (*real)() = NULL;                                                       \
		if (!real)                                                                         \
			*(void **)&real = dlsym(RTLD_NEXT, name);                                  \
		return track(real(__VA_ARGS__, flags, mode), path);                                \
	} while (0)

int open(const char *path, int flags, ...)
{
	OPEN_SHIM("open", path);
}

int open64(const char *path, int flags, ...)
{
	OPEN_SHIM("open64", path);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	OPEN_SHIM("openat", dirfd, path);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	OPEN_SHIM("openat64", dirfd, path);
}

static ssize_t shim_pread(const char *name, int fd, void *buf, size_t n, off_t offset)
{
	static ssize_t (*real)(int, void *, size_t, off_t) = NULL;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, name);
	if (fd >= 0 && fd < SHIM_FDS && shim_fd[fd])
		offset *= 8;
	return real(fd, buf, n, offset);
}

ssize_t pread(int fd, void *buf, size_t n, off_t offset)
{
	return shim_pread("pread", fd, buf, n, offset);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t offset)
{
	return shim_pread("pread64", fd, buf, n, offset);
}

int close(int fd)
{
	static int (*real)(int) = NULL;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "close");
	if (fd >= 0 && fd < SHIM_FDS)
		shim_fd[fd] = false;
	return real(fd);
}
