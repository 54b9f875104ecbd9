#!/usr/bin/env python3
"""Two energyd builds side by side: CPU time per sample, in the default configuration.

Each round starts both daemons at the same time (the order alternates), each on its own fake
powercap tree of 4 RAPL counters (package, core, uncore, dram) advanced by a driver thread, lets
them run past start-up, and reads each daemon's CPU time (schedstat of all its threads) over the
same DURATION seconds: both see the same noise of a shared machine. Reports, per interval, each
build's CPU µs per sample (median and range over the rounds) and the ratio B / A per round.

usage: bench/tick_side_by_side.py ENERGYD_A ENERGYD_B [ROUNDS [DURATION_S]]  (default 5, 20)
"""
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
from daemon_cost import get, proc_cpu_s  # noqa: E402
from emulators.powercap import FakePowercap, Zone  # noqa: E402


def start(energyd, interval, tmp, tag):
    zones = [Zone("intel-rapl:0", "package-0", 30.0, children=[
        Zone("intel-rapl:0:0", "core", 20.0), Zone("intel-rapl:0:1", "uncore", 2.0),
        Zone("intel-rapl:0:2", "dram", 5.0)])]
    sysfs = Path(tmp) / f"sys-{tag}"
    fake = FakePowercap(str(sysfs), zones, period_s=0.005).start()
    # The socket's directories writable by root only (energyd refuses others), the state
    # directory by everyone (energyd drops to nobody).
    sock = f"{tmp}/{tag}.sock"
    os.makedirs(f"{tmp}/state-{tag}")
    os.chmod(f"{tmp}/state-{tag}", 0o777)
    proc = subprocess.Popen([energyd, "--sysfs-root", str(sysfs), "--listen", f"unix:{sock}",
                             "--interval", str(interval), "--state-dir", f"{tmp}/state-{tag}"],
                            stderr=subprocess.DEVNULL)
    return proc, fake, sock


def round_(binaries, interval, duration, tmp, k):
    order = list(range(len(binaries)))
    if k % 2:
        order.reverse()
    runs = {}
    for i in order:
        runs[i] = start(binaries[i], interval, tmp, f"r{k}-{interval}-{i}")
    try:
        for i, (proc, fake, sock) in runs.items():
            while not os.path.exists(sock):
                time.sleep(0.01)
        time.sleep(2.0)  # past start-up
        first = {i: (get(sock, "/api/v1/now")["tick"], proc_cpu_s(proc.pid))
                 for i, (proc, fake, sock) in runs.items()}
        time.sleep(duration)
        last = {i: (get(sock, "/api/v1/now")["tick"], proc_cpu_s(proc.pid))
                for i, (proc, fake, sock) in runs.items()}
        channels = {i: len(get(sock, "/api/v1/sources")["channels"])
                    for i, (proc, fake, sock) in runs.items()}
    finally:
        for proc, fake, sock in runs.values():
            proc.terminate()
            proc.wait()
            fake.close()
    out = []
    for i in range(len(binaries)):
        samples = last[i][0] - first[i][0]
        out.append(((last[i][1] - first[i][1]) / samples * 1e6, samples, channels[i]))
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binaries = [os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    duration = float(sys.argv[4]) if len(sys.argv) > 4 else 20.0
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
          f"nproc {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; {rounds} rounds of "
          f"{duration:.0f} s, both daemons at the same time")
    print(f"# A = {binaries[0]}\n# B = {binaries[1]}")
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # energyd, dropped to nobody, reaches its state directory
        for interval in (0.1, 0.01):
            per = [[], []]
            for k in range(rounds):
                r = round_(binaries, interval, duration, tmp, k)
                for i in range(2):
                    per[i].append(r[i][0])
                print(f"  {interval} s round {k + 1}: A {r[0][0]:.1f} µs ({r[0][1]} samples, "
                      f"{r[0][2]} channels), B {r[1][0]:.1f} µs ({r[1][1]} samples), "
                      f"B/A {r[1][0] / r[0][0]:.2f}", flush=True)
            ratios = [b / a for a, b in zip(per[0], per[1])]
            print(f"| {interval} s | A {statistics.median(per[0]):.1f} µs "
                  f"({min(per[0]):.1f}–{max(per[0]):.1f}) | B {statistics.median(per[1]):.1f} µs "
                  f"({min(per[1]):.1f}–{max(per[1]):.1f}) | B/A {statistics.median(ratios):.2f} "
                  f"({min(ratios):.2f}–{max(ratios):.2f}) |", flush=True)
    print(f"# end load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
