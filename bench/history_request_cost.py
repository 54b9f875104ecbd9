#!/usr/bin/env python3
"""CPU time energyd spends on one GET /api/v1/history?seconds=900 at 0.1 s, whole request
(HTTP included), for two energyd binaries side by side: typically one built before the
streaming JSON writer and one after.

Both run at the same time on one fake powercap tree (package-0 with core and uncore, dram-0: 4
counters, advanced every 5 ms), with --store off and no process scans so that little else
runs, at --interval 0.1. After 905 s each holds 900 s of samples (9,000). Then ROUNDS rounds,
alternating which goes first: the daemon's CPU time (utime + stime, ended threads included) over REQUESTS
requests one after another, minus its sampling cost over the same wall time (measured just
before, idle, for as long). Per request = the difference / REQUESTS. Prints the median and the
range of the rounds.

usage: bench/history_request_cost.py ENERGYD_A ENERGYD_B [ROUNDS [REQUESTS]]
"""
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from emulators.powercap import FakePowercap, Zone  # noqa: E402
from daemon_cost import UnixConn  # noqa: E402  (bench/, the script's folder)

PATH = "/api/v1/history?seconds=900"


def get(sock, path):
    c = UnixConn(sock)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError(f"{path}: {r.status} {body[:200]!r}")
    return body


def proc_cpu_s(pid):
    """CPU time of the daemon with its ended threads (each request's connection thread ends
    with it, and schedstat of /proc/PID/task forgets it): utime + stime of /proc/PID/stat, in
    clock ticks (10 ms), so a round must be long enough (REQUESTS)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(proc, sock, requests):
    """(CPU ms per request net of sampling, bytes of the answer)."""
    c0, w0 = proc_cpu_s(proc.pid), time.monotonic()
    body = b""
    for _ in range(requests):
        body = get(sock, PATH)
    c1, w1 = proc_cpu_s(proc.pid), time.monotonic()
    # The sampling cost over as long, idle, right after.
    time.sleep(w1 - w0)
    c2, w2 = proc_cpu_s(proc.pid), time.monotonic()
    idle_rate = (c2 - c1) / (w2 - w1)
    return ((c1 - c0) - idle_rate * (w1 - w0)) / requests * 1e3, len(body)


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    binaries = sys.argv[1:3]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    requests = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    zones = [Zone("intel-rapl:0", "package-0", 30.0, children=[
        Zone("intel-rapl:0:0", "core", 20.0), Zone("intel-rapl:0:1", "uncore", 2.0),
        Zone("intel-rapl:0:2", "dram", 5.0)])]
    with tempfile.TemporaryDirectory() as tmp:
        fake = FakePowercap(f"{tmp}/sys", zones, period_s=0.005).start()
        procs, socks = [], []
        try:
            for k, exe in enumerate(binaries):
                sock = f"{tmp}/e{k}.sock"
                # Started as root, energyd drops to nobody: its state directory must stay
                # writable for it; the sockets' directory (tmp) writable by root only.
                os.mkdir(f"{tmp}/state{k}")
                os.chmod(f"{tmp}/state{k}", 0o777)
                procs.append(subprocess.Popen(
                    [exe, "--sysfs-root", f"{tmp}/sys", "--listen", f"unix:{sock}",
                     "--interval", "0.1", "--store", "off", "--scan-interval", "86400",
                     "--state-dir", f"{tmp}/state{k}"], stderr=subprocess.DEVNULL))
                socks.append(sock)
            for proc, sock in zip(procs, socks):
                while not os.path.exists(sock):
                    if proc.poll() is not None:
                        raise RuntimeError(f"{proc.args[0]} ended: {proc.returncode}")
                    time.sleep(0.05)
            print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
                  f"load {os.getloadavg()[0]:.2f} at start; filling 905 s of history",
                  flush=True)
            time.sleep(905)
            ms = [[], []]
            size = [0, 0]
            for r in range(rounds):
                for k in ([0, 1] if r % 2 == 0 else [1, 0]):
                    m, size[k] = one_round(procs[k], socks[k], requests)
                    ms[k].append(m)
            print(f"# load {os.getloadavg()[0]:.2f} at the end; {rounds} rounds of {requests} "
                  f"requests of {PATH}")
            print("| energyd | answer | CPU ms per request (median) | range |")
            print("| --- | --- | --- | --- |")
            for k, exe in enumerate(binaries):
                print(f"| {exe} | {size[k]} bytes | {statistics.median(ms[k]):.2f} | "
                      f"{min(ms[k]):.2f}–{max(ms[k]):.2f} |")
        finally:
            for p in procs:
                p.terminate()
                p.wait()
            fake.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
