#!/usr/bin/env python3
"""Attribution's cost with 2,000 extra processes: full scans once a second vs at the sample rate,
and watched trees (one process, like a Jupyter kernel; and all 2,000) at the sample rate.

Builds a release energyd (build-bench/), starts 2,000 `sleep` processes as children of one
helper, and for each case runs energyd (sample interval 0.1 s, one fake RAPL package of its own)
for DURATION seconds and reads its CPU time (the process CPU clock: every thread, ended ones
included) and memory, plus the cost of its last full scan as it reports it in /api/v1/processes.
Each case is run ROUNDS times. With BEFORE (another energyd binary, e.g. an older release
build), both daemons run each case at the same time, over the same window, and the table gives
this build ÷ BEFORE per round as well: the figure to compare, since both saw the same machine.

usage: bench/attrib_cost.py [DURATION_S [ROUNDS [BEFORE]]]      (defaults: 20 s, 1 round)
"""
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from emulators.powercap import FakePowercap, Zone  # noqa: E402
from daemon_cost import BUILD, UnixConn, get, proc_mem_kib, process_cpu_s  # noqa: E402

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


CASES = (("a", 1.0, None, "none"),
         ("b", 0.1, None, "none"),
         ("c", 1.0, "kernel", "1 tree of 1 process"),
         ("d", 1.0, "tree", f"1 tree of {N_PROCS + 1} processes"))


def start(binary, name, scan_interval, tmp):
    sysfs = Path(tmp) / f"sys-{name}"
    fake = FakePowercap(str(sysfs), [Zone("intel-rapl:0", "package-0", 30.0)],
                        period_s=0.005).start()
    sock = f"{tmp}/bench-{name}.sock"
    proc = subprocess.Popen([str(binary), "--sysfs-root", str(sysfs), "--listen",
                             f"unix:{sock}", "--interval", "0.1", "--scan-interval",
                             str(scan_interval), "--state-dir", f"{tmp}/state-{name}"],
                            stderr=subprocess.DEVNULL)
    return {"fake": fake, "sock": sock, "proc": proc}


def run(binaries, case, scan_interval, watch, duration, tmp, tree_pid, kernel_pid):
    """One case, every binary at the same time: CPU load, last scan and RSS of each."""
    daemons = []
    try:
        for k, binary in enumerate(binaries):
            daemons.append(start(binary, f"{case}{k}", scan_interval, tmp))
        for d in daemons:
            deadline = time.monotonic() + 30
            while not os.path.exists(d["sock"]):
                if d["proc"].poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"attrib_cost: energyd did not start ({d['sock']})")
                time.sleep(0.01)
        time.sleep(1.0)
        if watch:
            for d in daemons:
                status, body = post(d["sock"], "/api/v1/watch",
                                    {"pid": tree_pid if watch == "tree" else kernel_pid})
                assert status == 201, body
        time.sleep(1.0)
        c0 = [process_cpu_s(d["proc"].pid) for d in daemons]
        w0 = time.monotonic()
        time.sleep(duration)
        c1 = [process_cpu_s(d["proc"].pid) for d in daemons]
        window = time.monotonic() - w0
        out = []
        for d, a, b in zip(daemons, c0, c1):
            procs = get(d["sock"], "/api/v1/processes?top=1")
            out.append({"cpu_percent": (b - a) / window * 100,
                        "scanned": procs["processes_scanned"],
                        "scan_ms": procs["scan_cost_s"] * 1e3,
                        "rss_kib": proc_mem_kib(d["proc"].pid)["VmRSS"]})
        return out
    finally:
        for d in daemons:
            d["proc"].terminate()
            d["proc"].wait()
            d["fake"].close()


def med_range(xs, fmt):
    return (f"{fmt.format(statistics.median(xs))} "
            f"({fmt.format(min(xs))}–{fmt.format(max(xs))})")


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    binaries = [BUILD / "energyd"] + ([Path(sys.argv[3]).resolve()] if len(sys.argv) > 3 else [])
    if not (BUILD / "build.ninja").exists():
        subprocess.run(["meson", "setup", str(BUILD), "--buildtype=release", "-Dtests=false"],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", str(BUILD)], check=True, stdout=subprocess.DEVNULL)
    tree = subprocess.Popen([sys.executable, "-c", TREE, str(N_PROCS)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    kernel = subprocess.Popen(["sleep", "3600"])
    results = {case[0]: [] for case in CASES}
    try:
        assert tree.stdout.readline().strip() == "ready"
        print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
              f"{len(os.listdir('/proc'))} /proc entries, {duration:.0f} s per case, "
              f"{rounds} rounds, load average {os.getloadavg()[0]:.2f}, "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print("# " + " and ".join(str(b) for b in binaries)
              + (" at the same time" if len(binaries) > 1 else ""))
        with tempfile.TemporaryDirectory() as tmp:
            for k in range(rounds):
                for case, scan, watch, _ in CASES:
                    r = run(binaries, f"{case}{k}", scan, watch, duration, tmp, tree.pid,
                            kernel.pid)
                    results[case].append(r)
                    print(f"# round {k + 1} case {case}: "
                          + " / ".join(f"{x['cpu_percent']:.3f} % ({x['scan_ms']:.1f} ms)"
                                       for x in r), flush=True)
        print(f"# load average at the end {os.getloadavg()[0]:.2f}")
    finally:
        tree.stdin.write("\n")
        tree.stdin.flush()
        tree.wait()
        kernel.send_signal(signal.SIGKILL)
        kernel.wait()
    before = len(binaries) > 1
    print()
    print("| full scans | watches (at 0.1 s) | processes scanned | last scan | energyd CPU load | "
          "RSS |" + (" before: last scan | before: CPU load | **÷ before** (per round) |"
                     if before else ""))
    print("| --- | --- | --- | --- | --- | --- |" + (" --- | --- | --- |" if before else ""))
    for case, scan, _, what in CASES:
        rs = results[case]
        line = (f"| every {scan} s | {what} | {rs[0][0]['scanned']} | "
                f"{med_range([r[0]['scan_ms'] for r in rs], '{:.1f}')} ms | "
                f"{med_range([r[0]['cpu_percent'] for r in rs], '{:.2f}')} % | "
                f"{statistics.median(r[0]['rss_kib'] for r in rs) / 1024:.1f} MiB |")
        if before:
            ratios = [r[0]["cpu_percent"] / r[1]["cpu_percent"] for r in rs]
            line += (f" {med_range([r[1]['scan_ms'] for r in rs], '{:.1f}')} ms | "
                     f"{med_range([r[1]['cpu_percent'] for r in rs], '{:.2f}')} % | "
                     f"**{med_range(ratios, '{:.2f}')}×** |")
        print(line)


if __name__ == "__main__":
    main()
