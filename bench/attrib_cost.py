#!/usr/bin/env python3
"""Attribution's cost with 2,000 extra processes: full scans once a second vs at the sample rate,
and watched trees (one process, like a Jupyter kernel; and all 2,000) at the sample rate.

Builds a release energyd (build-bench/), starts 2,000 `sleep` processes as children of one
helper, runs energyd (sample interval 0.1 s, one fake RAPL package) for DURATION seconds per
case and reads its CPU time (schedstat, all threads) and memory, plus the cost of its last full
scan as it reports it in /api/v1/processes.

usage: bench/attrib_cost.py [DURATION_S]      (default 20)
"""
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from emulators.powercap import FakePowercap, Zone  # noqa: E402
from daemon_cost import BUILD, UnixConn, get, proc_cpu_s, proc_mem_kib  # noqa: E402

N_PROCS = 2000
TREE = ("import os, signal, subprocess, sys\n"
        "kids = [subprocess.Popen(['sleep', '3600']) for _ in range(int(sys.argv[1]))]\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "for k in kids: k.kill()\n"
        "for k in kids: k.wait()\n")


def post(sock, path, body):
    c = UnixConn(sock)
    c.request("POST", path, body=json.dumps(body))
    r = c.getresponse()
    return r.status, json.loads(r.read())


def run(case, scan_interval, watch, duration, tmp, tree_pid, kernel_pid):
    sysfs = Path(tmp) / f"sys-{case}"
    fake = FakePowercap(str(sysfs), [Zone("intel-rapl:0", "package-0", 30.0)],
                        period_s=0.005).start()
    sock = f"{tmp}/bench-{case}.sock"
    proc = subprocess.Popen([str(BUILD / "energyd"), "--sysfs-root", str(sysfs), "--listen",
                             f"unix:{sock}", "--interval", "0.1", "--scan-interval",
                             str(scan_interval), "--state-dir", f"{tmp}/state"],
                            stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(sock):
            time.sleep(0.01)
        time.sleep(1.0)
        if watch:
            status, body = post(sock, "/api/v1/watch",
                                {"pid": tree_pid if watch == "tree" else kernel_pid})
            assert status == 201, body
        time.sleep(1.0)
        c0 = proc_cpu_s(proc.pid)
        time.sleep(duration)
        c1 = proc_cpu_s(proc.pid)
        procs = get(sock, "/api/v1/processes?top=1")
        mem = proc_mem_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
        fake.close()
    return {"cpu_percent": (c1 - c0) / duration * 100, "scanned": procs["processes_scanned"],
            "scan_ms": procs["scan_cost_s"] * 1e3, "rss_kib": mem["VmRSS"]}


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    if not (BUILD / "build.ninja").exists():
        subprocess.run(["meson", "setup", str(BUILD), "--buildtype=release", "-Dtests=false"],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", str(BUILD)], check=True, stdout=subprocess.DEVNULL)
    tree = subprocess.Popen([sys.executable, "-c", TREE, str(N_PROCS)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    kernel = subprocess.Popen(["sleep", "3600"])
    try:
        assert tree.stdout.readline().strip() == "ready"
        print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
              f"{len(os.listdir('/proc'))} /proc entries, {duration:.0f} s per case")
        print("| full scans | watches (at 0.1 s) | processes scanned | last scan | "
              "energyd CPU load | RSS |")
        print("| --- | --- | --- | --- | --- | --- |")
        with tempfile.TemporaryDirectory() as tmp:
            for case, scan, watch, what in (
                    ("a", 1.0, None, "none"),
                    ("b", 0.1, None, "none"),
                    ("c", 1.0, "kernel", "1 tree of 1 process"),
                    ("d", 1.0, "tree", f"1 tree of {N_PROCS + 1} processes")):
                r = run(case, scan, watch, duration, tmp, tree.pid, kernel.pid)
                print(f"| every {scan} s | {what} | {r['scanned']} | {r['scan_ms']:.1f} ms | "
                      f"{r['cpu_percent']:.2f} % | {r['rss_kib'] / 1024:.1f} MiB |")
    finally:
        tree.stdin.write("\n")
        tree.stdin.flush()
        tree.wait()
        kernel.send_signal(signal.SIGKILL)
        kernel.wait()


if __name__ == "__main__":
    main()
