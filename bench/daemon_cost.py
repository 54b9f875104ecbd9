#!/usr/bin/env python3
"""energyd's own cost: CPU time per sample and resident memory, with 8 RAPL channels.

Builds a release energyd (build-bench/), lays out a fake two-socket tree with package, core,
uncore and dram per socket (8 channels) whose counters a driver thread advances, runs energyd at
each interval for DURATION seconds, and reads the daemon's utime+stime and VmRSS/VmHWM from
/proc (schedstat, summed over threads). CPU time per sample = CPU time / samples taken. No client polls during the run.

usage: bench/daemon_cost.py [DURATION_S]      (default 30)
"""
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import http.client
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from emulators.powercap import FakePowercap, Zone  # noqa: E402

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


def proc_mem_kib(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(("VmRSS", "VmHWM")):
            k, v = line.split(":")
            out[k] = int(v.split()[0])
    return out


# What runs besides the sampler: the long-term store (a batch every 2 s), the attribution thread
# (a full /proc scan every second) and the carbon module (static table: nothing to fetch).
CONFIGS = [
    ("default (store, attribution, carbon)", []),
    ("sampler alone (--store off, no process scans)", ["--store", "off", "--scan-interval",
                                                        "86400"]),
]


def run(interval, duration, tmp, extra=()):
    zones = []
    for p in range(2):
        zones.append(Zone(f"intel-rapl:{p}", f"package-{p}", 30.0, children=[
            Zone(f"intel-rapl:{p}:0", "core", 20.0), Zone(f"intel-rapl:{p}:1", "uncore", 2.0),
            Zone(f"intel-rapl:{p}:2", "dram", 5.0)]))
    sysfs = Path(tmp) / f"sys-{interval}-{len(extra)}"
    fake = FakePowercap(str(sysfs), zones, period_s=0.005).start()
    sock = f"{tmp}/bench-{interval}-{len(extra)}.sock"
    proc = subprocess.Popen([str(BUILD / "energyd"), "--sysfs-root", str(sysfs), "--listen",
                             f"unix:{sock}", "--interval", str(interval), "--state-dir",
                             f"{tmp}/state-{interval}-{len(extra)}", *extra],
                            stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(sock):
            time.sleep(0.01)
        time.sleep(1.0)  # past start-up
        t0, c0 = get(sock, "/api/v1/now")["tick"], proc_cpu_s(proc.pid)
        time.sleep(duration)
        t1, c1 = get(sock, "/api/v1/now")["tick"], proc_cpu_s(proc.pid)
        mem = proc_mem_kib(proc.pid)
        channels = len(get(sock, "/api/v1/sources")["channels"])
    finally:
        proc.terminate()
        proc.wait()
        fake.close()
    samples = t1 - t0
    return {"interval_s": interval, "channels": channels, "samples": samples,
            "cpu_s": c1 - c0, "cpu_us_per_sample": (c1 - c0) / samples * 1e6,
            "cpu_percent": (c1 - c0) / duration * 100, "rss_kib": mem["VmRSS"],
            "hwm_kib": mem["VmHWM"]}


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    if not (BUILD / "build.ninja").exists():
        subprocess.run(["meson", "setup", str(BUILD), "--buildtype=release", "-Dtests=false"],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", str(BUILD)], check=True, stdout=subprocess.DEVNULL)
    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{duration:.0f} s per interval")
    print("| energyd | interval | channels | samples | CPU time per sample | CPU load | RSS | "
          "peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        # Started as root, energyd drops to nobody: its state directory (the long-term store)
        # must stay writable for it, as /var/lib/energyd is in a real installation.
        os.chmod(tmp, 0o777)
        for name, extra in CONFIGS:
            for interval in (0.1, 0.01):
                r = run(interval, duration, tmp, extra)
                print(f"| {name} | {r['interval_s']} s | {r['channels']} | {r['samples']} | "
                      f"{r['cpu_us_per_sample']:.1f} µs | {r['cpu_percent']:.2f} % | "
                      f"{r['rss_kib'] / 1024:.1f} MiB | {r['hwm_kib'] / 1024:.1f} MiB |")


if __name__ == "__main__":
    main()
