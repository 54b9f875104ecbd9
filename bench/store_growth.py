#!/usr/bin/env python3
"""The long-term record's size and the cost of a batch commit.

Size: tests/helpers/store-fill writes synthetic per-second data through the store's own code
(history ring -> store_collect -> store_flush -> SQLite) for 1 and 4 channels (plus the host
total), one day and 31 days ending now, at the default tiers (1 s rows for a day, 1 min rows for
31 days, 1 h rows for ever; rows older than that are pruned as energyd prunes them). Reported:
the bytes the rows occupy ((page_count - freelist_count) * page_size after a checkpoint) and
the file size, and the bytes per channel (the difference between 4 and 1 channels, / 3).

Commit cost: a release energyd with 8 RAPL channels (two sockets x package, core, uncore, dram)
writes to the 31-day record with the default batch (5 s since f2e8404, 2 s before; the script
prints the one energyd reports); info.store.last_commit_s is read after every batch for
DURATION seconds.

usage: bench/store_growth.py [DURATION_S]      (default 60; 120 gives about 23 commits)
"""
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import http.client
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from emulators.powercap import FakePowercap, Zone  # noqa: E402

BUILD = ROOT / "build-bench-store"  # release, with the tests' helpers


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


def fill(db, channels, days):
    end = int(time.time()) - 60
    t0 = time.monotonic()
    subprocess.run([str(BUILD / "tests/helpers/store-fill"), db, str(end - days * 86400),
                    str(days * 86400), str(channels)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    took = time.monotonic() - t0
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = con.execute("PRAGMA page_size").fetchone()[0]
    used = (con.execute("PRAGMA page_count").fetchone()[0] -
            con.execute("PRAGMA freelist_count").fetchone()[0]) * page
    rows = {t: con.execute(f"SELECT COUNT(*) FROM energy_{t}").fetchone()[0]
            for t in ("1s", "1m", "1h")}
    con.close()
    return {"used": used, "file": os.path.getsize(db), "rows": rows, "fill_s": took}


def commit_cost(db, duration, tmp):
    zones = []
    for p in range(2):
        zones.append(Zone(f"intel-rapl:{p}", f"package-{p}", 30.0, children=[
            Zone(f"intel-rapl:{p}:0", "core", 20.0), Zone(f"intel-rapl:{p}:1", "uncore", 2.0),
            Zone(f"intel-rapl:{p}:2", "dram", 5.0)]))
    fake = FakePowercap(f"{tmp}/sys", zones, period_s=0.005).start()
    # The socket's directory only root may write (energyd refuses any other); tmp is open to
    # all for the record, which energyd writes as nobody.
    private = tempfile.mkdtemp(prefix="store-growth-")
    sock = f"{private}/bench.sock"
    log = open(f"{private}/energyd.log", "w+")
    proc = subprocess.Popen([str(BUILD / "energyd"), "--sysfs-root", f"{tmp}/sys", "--listen",
                             f"unix:{sock}", "--store", db, "--state-dir", f"{tmp}/state"],
                            stderr=log)
    costs = []
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise SystemExit("store_growth: energyd did not start:\n" + log.read())
            time.sleep(0.01)
        seen = 0
        deadline = time.time() + duration
        while time.time() < deadline:
            s = get(sock, "/api/v1/info")["store"]
            assert s["status"] == "ok", s
            if s["batches"] > seen and seen > 0:
                costs.append(s["last_commit_s"])
            seen = s["batches"]
            batch_s = s["batch_s"]
            time.sleep(0.5)
        channels = len(get(sock, "/api/v1/sources")["channels"])
    finally:
        proc.terminate()
        proc.wait()
        fake.close()
        log.close()
        shutil.rmtree(private)
    return channels, batch_s, costs


def main():
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    if not (BUILD / "build.ninja").exists():
        subprocess.run(["meson", "setup", str(BUILD), "--buildtype=release"], check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-j2", "-C", str(BUILD)], check=True, stdout=subprocess.DEVNULL)
    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"SQLite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)  # energyd started as root writes as nobody
        size = {}
        print("| record | channels | rows 1 s / 1 min / 1 h | bytes used | file size | "
              "fill time |")
        print("| --- | --- | --- | --- | --- | --- |")
        for days in (1, 31):
            for channels in (1, 4):
                db = f"{tmp}/r-{days}-{channels}.db"
                r = fill(db, channels, days)
                size[days, channels] = r
                print(f"| {days} day(s) | {channels} + host | {r['rows']['1s']} / "
                      f"{r['rows']['1m']} / {r['rows']['1h']} | {r['used'] / 1e6:.2f} MB | "
                      f"{r['file'] / 1e6:.2f} MB | {r['fill_s']:.1f} s |")
        print()
        for days in (1, 31):
            per = (size[days, 4]["used"] - size[days, 1]["used"]) / 3
            print(f"per channel after {days} day(s): {per / 1e6:.2f} MB")
        for name in os.listdir(tmp):
            os.chmod(f"{tmp}/{name}", 0o666)
        channels, batch_s, costs = commit_cost(f"{tmp}/r-31-4.db", duration, tmp)
        costs.sort()
        print(f"\nbatch commit, {channels} channels + host, {batch_s:g} s batches (the default), "
              f"{len(costs)} commits: "
              f"median {statistics.median(costs) * 1e3:.2f} ms, "
              f"p90 {costs[int(len(costs) * 0.9)] * 1e3:.2f} ms, max {costs[-1] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
