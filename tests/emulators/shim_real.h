/* The C library's own pread, open and close, for the LD_PRELOAD shims (perf_shim.c,
 * hwpc_shim.c), which override read, close and syscall and must reach the real files. */
#ifndef ENERGY_SHIM_REAL_H
#define ENERGY_SHIM_REAL_H

#include <dlfcn.h>
#include <sys/types.h>

static ssize_t real_pread(int fd, void *buf, size_t n, off_t offset)
{
	static ssize_t (*real)(int, void *, size_t, off_t) = NULL;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "pread");
	return real(fd, buf, n, offset);
}

static int real_open(const char *path, int flags)
{
	static int (*real)(const char *, int, ...) = NULL;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "open");
	return real(path, flags);
}

static int real_close(int fd)
{
	static int (*real)(int) = NULL;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "close");
	return real(fd);
}

#endif
