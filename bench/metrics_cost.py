#!/usr/bin/env python3
"""What scraping /metrics every second costs energyd, measured side by side.

Each run starts two identical release energyds (build-bench/), each on its own fake two-socket
powercap tree (8 channels) with the default configuration (store, attribution of the real /proc,
static carbon table), and scrapes one of them over loopback TCP every second, as Prometheus
would, while the other is left alone. Over the same DURATION seconds the CPU time of both
daemons (their process CPU clocks: every thread, ended ones included) is read; the extra cost
of scraping is (CPU scraped - CPU alone) / DURATION, in % of one core. Which daemon is scraped
alternates between runs, so that a difference between the two slots does not pass for a cost.
Prints the median and the range over RUNS runs, the answer's size and the CPU time per
scrape: with a new connection per scrape (what this script's scraper does) and on one kept
connection (what Prometheus does), each from BURST scrapes back to back minus what the other
daemon spent meanwhile. ENERGYD (default build-bench/energyd) measures another build the same way.

usage: bench/metrics_cost.py [RUNS [DURATION_S [ENERGYD]]]      (default 5 runs of 60 s)
"""
import http.client
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from daemon_cost import BUILD, process_cpu_s  # noqa: E402
from emulators.powercap import FakePowercap, Zone  # noqa: E402


BURST = 500


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, tmp, name):
    zones = []
    for p in range(2):
        zones.append(Zone(f"intel-rapl:{p}", f"package-{p}", 30.0, children=[
            Zone(f"intel-rapl:{p}:0", "core", 20.0), Zone(f"intel-rapl:{p}:1", "uncore", 2.0),
            Zone(f"intel-rapl:{p}:2", "dram", 5.0)]))
    fake = FakePowercap(str(Path(tmp) / f"sys-{name}"), zones, period_s=0.005).start()
    port = free_port()
    proc = subprocess.Popen([str(binary), "--sysfs-root", fake.root, "--listen",
                             f"127.0.0.1:{port}", "--interval", "0.1", "--state-dir",
                             f"{tmp}/state-{name}"], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    for _ in range(500):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            break
        except OSError:
            time.sleep(0.02)
    return proc, fake, url, port


def run(binary, tmp, k, duration):
    a = start(binary, tmp, f"{k}a")
    b = start(binary, tmp, f"{k}b")
    scraped, alone = (a, b) if k % 2 == 0 else (b, a)
    try:
        time.sleep(3.0)  # past start-up and the first attribution scans
        stop = threading.Event()
        sizes = []

        def scrape():
            next_t = time.monotonic()
            while not stop.is_set():
                sizes.append(len(urllib.request.urlopen(scraped[2], timeout=5).read()))
                next_t += 1.0
                stop.wait(max(0.0, next_t - time.monotonic()))
        c0 = (process_cpu_s(scraped[0].pid), process_cpu_s(alone[0].pid))
        th = threading.Thread(target=scrape)
        th.start()
        time.sleep(duration)
        c1 = (process_cpu_s(scraped[0].pid), process_cpu_s(alone[0].pid))
        stop.set()
        th.join()
        # The cost of one scrape, resolved: BURST scrapes back to back, minus what the other
        # daemon spent over the same time.
        b0 = (process_cpu_s(scraped[0].pid), process_cpu_s(alone[0].pid))
        for _ in range(BURST):
            urllib.request.urlopen(scraped[2], timeout=5).read()
        b1 = (process_cpu_s(scraped[0].pid), process_cpu_s(alone[0].pid))
        # The same on one kept connection, as Prometheus scrapes.
        conn = http.client.HTTPConnection("127.0.0.1", scraped[3], timeout=5)
        k0 = (process_cpu_s(scraped[0].pid), process_cpu_s(alone[0].pid))
        for _ in range(BURST):
            conn.request("GET", "/metrics")
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200, answer.status
        k1 = (process_cpu_s(scraped[0].pid), process_cpu_s(alone[0].pid))
        conn.close()
    finally:
        for proc, fake, _, _ in (a, b):
            proc.terminate()
            proc.wait()
            fake.close()
    cpu_scraped, cpu_alone = c1[0] - c0[0], c1[1] - c0[1]
    return {"scraped_pct": cpu_scraped / duration * 100, "alone_pct": cpu_alone / duration * 100,
            "extra_pct": (cpu_scraped - cpu_alone) / duration * 100, "scrapes": len(sizes),
            "bytes": statistics.median(sizes),
            "burst_us": ((b1[0] - b0[0]) - (b1[1] - b0[1])) / BURST * 1e6,
            "kept_us": ((k1[0] - k0[0]) - (k1[1] - k0[1])) / BURST * 1e6}


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    duration = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    binary = Path(sys.argv[3]).resolve() if len(sys.argv) > 3 else BUILD / "energyd"
    if not (BUILD / "build.ninja").exists():
        subprocess.run(["meson", "setup", str(BUILD), "--buildtype=release", "-Dtests=false"],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", str(BUILD)], check=True, stdout=subprocess.DEVNULL)
    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{runs} runs of {duration:.0f} s, load average {os.getloadavg()[0]:.2f}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {binary}")
    print("| run | scraped: CPU | alone: CPU | extra (% of a core) | scrapes | answer | "
          f"one scrape, new connection ({BURST} in a burst) | one scrape, kept connection |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)  # energyd drops to nobody and keeps its record there
        for k in range(runs):
            r = run(binary, tmp, k, duration)
            results.append(r)
            print(f"| {k + 1} | {r['scraped_pct']:.3f} % | {r['alone_pct']:.3f} % | "
                  f"{r['extra_pct']:+.4f} % | {r['scrapes']} | {r['bytes'] / 1024:.1f} KiB | "
                  f"{r['burst_us']:.0f} µs | {r['kept_us']:.0f} µs |",
                  flush=True)
    extra = [r["extra_pct"] for r in results]
    burst = [r["burst_us"] for r in results]
    kept = [r["kept_us"] for r in results]
    print(f"\nextra CPU from scraping every second, side by side: median "
          f"{statistics.median(extra):+.4f} % of a core, range {min(extra):+.4f} to "
          f"{max(extra):+.4f} %")
    print(f"one scrape: median {statistics.median(burst):.0f} µs, range {min(burst):.0f} to "
          f"{max(burst):.0f} µs, i.e. {statistics.median(burst) / 1e4:.4f} % of a core at one "
          "scrape a second (a new connection each)")
    print(f"one scrape on a kept connection: median {statistics.median(kept):.0f} µs, range "
          f"{min(kept):.0f} to {max(kept):.0f} µs")


if __name__ == "__main__":
    main()
