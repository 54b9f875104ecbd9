#!/usr/bin/env python3
"""What the energyd benchmarks share: a client of energyd's unix socket, a process's CPU time
and memory from /proc.

energyd's own cost is measured by bench/floor_ratio.py (side by side with the floor program,
bench/floor.c); run as a script, this runs that one with the same arguments.

usage: bench/daemon_cost.py [floor_ratio.py's options]
"""
import ctypes
import json
import os
import socket
import http.client
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build-bench"


class UnixConn(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("energyd", timeout=10)
        self.path_ = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path_)


def get(sock, path):
    c = UnixConn(sock)
    c.request("GET", path)
    return json.loads(c.getresponse().read())


def proc_cpu_s(pid):
    """CPU time of all the daemon's threads, in seconds, from schedstat (nanoseconds; utime and
    stime in /proc/PID/stat only count 10 ms clock ticks)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{task}/schedstat").read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a connection thread that just ended
    return total / 1e9


_libc = ctypes.CDLL(None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def process_cpu_s(pid):
    """The process's CPU time, every thread's, ended ones included, in seconds (nanosecond
    resolution): its process CPU clock (clock_getcpuclockid). proc_cpu_s above, a sum over
    the live threads, loses a thread that ends in the window (a connection thread, a peer's
    timer thread)."""
    clock = ctypes.c_int()
    rc = _libc.clock_getcpuclockid(pid, ctypes.byref(clock))
    if rc != 0:
        raise OSError(rc, f"clock_getcpuclockid({pid}): {os.strerror(rc)}")
    ts = _Timespec()
    if _libc.clock_gettime(clock, ctypes.byref(ts)) != 0:
        raise OSError(ctypes.get_errno(), f"clock_gettime(CPU clock of {pid})")
    return ts.tv_sec + ts.tv_nsec / 1e9


def proc_mem_kib(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(("VmRSS", "VmHWM")):
            k, v = line.split(":")
            out[k] = int(v.split()[0])
    return out


def main():
    import floor_ratio  # noqa: E402  (bench/, the script's folder)

    floor_ratio.main()


if __name__ == "__main__":
    main()
