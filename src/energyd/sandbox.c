#define _GNU_SOURCE
#include "sandbox.h"

#include <errno.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif

#define SANDBOX_NAMES_MAX 512

/*
 * What the threads call: the sampler (pread, clock_nanosleep), libmicrohttpd (accept, poll,
 * send/recv, epoll and eventfds of its thread pool), libcurl (sockets, its DNS resolver
 * thread, /etc files), SQLite in WAL mode (pread/pwrite, fsync, fcntl locks, mmap of the -shm file,
 * unlink of the journal), attribution (/proc and cgroup files by openat/getdents), jansson (memory
 * only), the serial meter (termios ioctls), NVML (dlopen'ed before the drop), and sd_notify
 * (sendmsg on an AF_UNIX datagram socket).
 */
static const char *const allowed[] = {
    /* memory and threads */
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "clone",
    "clone3",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "futex",
    "futex_waitv",
    "set_tid_address",
    "exit",
    "exit_group",
    "gettid",
    "getpid",
    "getppid",
    "tgkill",
    "sched_yield",
    "sched_getaffinity",
    "membarrier",
    "getcpu",
    "prlimit64",
    "getrlimit",
    /* signals */
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigtimedwait",
    "sigaltstack",
    "restart_syscall",
    /* time */
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    /* files */
    "openat",
    "open",
    "close",
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "lseek",
    "fstat",
    "newfstatat",
    "stat",
    "lstat",
    "statx",
    "fstatfs",
    "statfs",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getdents64",
    "getdents",
    "fcntl",
    "flock",
    "fsync",
    "msync",
    "fadvise64",
    "fdatasync",
    "ftruncate",
    "fallocate",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "getcwd",
    "ioctl",
    "dup",
    "dup2",
    "dup3",
    "pipe2",
    "pipe",
    "eventfd2",
    "umask",
    "fchmod",
    "fchown",
    "mkdir",
    "mkdirat",
    /* polling */
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    /* sockets: clients, the provider fetches and DNS */
    "socket",
    "socketpair",
    "connect",
    "accept",
    "accept4",
    "bind",
    "listen",
    "shutdown",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "sendfile",
    "uname",
    "getrandom",
    /* identity (read only) */
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "sysinfo",
    "sched_getparam",
    "sched_getscheduler",
    /* attribution: hardware counters of watched processes and cgroups, opened when they are
     * registered (the kernel checks the caller may trace the process, or count CPU-wide for a
     * cgroup; src/energyd/attribution/hwpc.h) */
    "perf_event_open",
};

#ifdef SANDBOX_SANITIZER
/* The sanitizer runtime of the test build: LeakSanitizer stops the world at exit with a tracer
 * that ptraces the threads; the reports read /proc/self/maps and symbolize. */
static const char *const allowed_sanitizer[] = {
    "ptrace", "wait4", "waitid", "prctl", "process_vm_readv", "sched_setaffinity", "kill",
    "execve", "vfork", "fork",   "dup2",
};
#endif

static const char *names[SANDBOX_NAMES_MAX];

/* A signal handler may only write: the line is assembled by hand. */
static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	(void)sig, (void)uctx;
	int nr = si->si_syscall;
	char line[256], num[16];
	int n = 0, k = 0;
	unsigned v = nr < 0 ? 0 : (unsigned)nr;
	do
		num[k++] = (char)('0' + v % 10);
	while ((v /= 10) && k < (int)sizeof(num));
	const char *parts[] = {"energyd: error: seccomp: system call ", NULL, " (",
	                       nr >= 0 && nr < SANDBOX_NAMES_MAX && names[nr] ? names[nr] : "?",
	                       ") is not allowed; energyd stops. Report it, or run with "
	                       "--sandbox off to work around it (docs/security.md)\n"};
	for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
		if (!parts[p]) {
			while (k > 0 && n < (int)sizeof(line) - 1)
				line[n++] = num[--k];
			continue;
		}
		for (const char *c = parts[p]; *c && n < (int)sizeof(line) - 1; c++)
			line[n++] = *c;
	}
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nothing else can be done */
	}
	_exit(159); /* 128 + SIGSYS, as if killed by it */
}

int sandbox_drop_bounding_set(char *err, size_t errlen)
{
	for (int cap = 0; cap <= 63; cap++) {
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
			break; /* past the last capability this kernel knows */
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			snprintf(err, errlen, "cannot drop capability %d from the bounding set: %s",
			         cap, strerror(errno));
			return -1;
		}
	}
	return 0;
}

#ifndef SANDBOX_SANITIZER
/*
 * prctl: thread names (glibc's pthread_setname_np, libmicrohttpd) and questions that change
 * nothing, which libraries ask when they are loaded late (libcap, loaded with the systemd NSS
 * module by the first getpwnam of a name not in /etc/passwd, reads the bounding set).
 */
static int allow_prctl_reads(scmp_filter_ctx ctx, char *err, size_t errlen)
{
	static const int options[] = {PR_SET_NAME,     PR_GET_NAME,       PR_CAPBSET_READ,
	                              PR_GET_DUMPABLE, PR_GET_SECUREBITS, PR_GET_NO_NEW_PRIVS,
	                              PR_GET_KEEPCAPS, PR_GET_PDEATHSIG,  PR_GET_TIMERSLACK};
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
		                     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)options[i])) < 0)
			goto fail;
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2,
	                     SCMP_A0(SCMP_CMP_EQ, PR_CAP_AMBIENT),
	                     SCMP_A1(SCMP_CMP_EQ, PR_CAP_AMBIENT_IS_SET)) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "seccomp: cannot allow prctl");
	return -1;
}
#endif

static int add_rules(scmp_filter_ctx ctx, const char *const *list, size_t n, char *err,
                     size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(list[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc < 0) {
			snprintf(err, errlen, "seccomp: cannot allow %s: %s", list[i],
			         strerror(-rc));
			return -1;
		}
	}
	return 0;
}

int sandbox_apply(char *err, size_t errlen)
{
	/* Names for the log line, resolved now: the handler cannot allocate. */
	for (int nr = 0; nr < SANDBOX_NAMES_MAX; nr++)
		if (!names[nr])
			names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	sigset_t sys;
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	if (sigaction(SIGSYS, &sa, NULL) < 0 || pthread_sigmask(SIG_UNBLOCK, &sys, NULL) != 0) {
		snprintf(err, errlen, "seccomp: cannot handle SIGSYS: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
		return -1;
	}
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	int rc = add_rules(ctx, allowed, sizeof(allowed) / sizeof(allowed[0]), err, errlen);
#ifdef SANDBOX_SANITIZER
	if (rc == 0)
		rc = add_rules(ctx, allowed_sanitizer,
		               sizeof(allowed_sanitizer) / sizeof(allowed_sanitizer[0]), err,
		               errlen);
#else
	if (rc == 0)
		rc = allow_prctl_reads(ctx, err, errlen);
#endif
	if (rc == 0) {
		seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
		rc = seccomp_load(ctx);
		if (rc < 0)
			snprintf(err, errlen, "seccomp: cannot load the filter: %s", strerror(-rc));
	}
	seccomp_release(ctx);
	return rc < 0 ? -1 : 0;
}
