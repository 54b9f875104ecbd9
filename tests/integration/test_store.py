"""The long-term record (SQLite): restart continuity, crash safety, a record that cannot be
written, tiers over a week of data, and `energy export`."""

import calendar
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, ENERGY, ENERGYD, Energyd
from emulators import powercap

STORE_FILL = BUILD / "tests" / "helpers" / "store-fill"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: drops to nobody")


@pytest.fixture
def store_dir():
    """A directory for the record that energyd can write after dropping root to nobody
    (pytest's tmp_path lies in a directory only root may enter)."""
    path = tempfile.mkdtemp(prefix="energyd-store-test-")
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def uj(joules):
    """Joules as the API prints them (microjoules / 1e6) back to whole microjoules."""
    return round(joules * 1e6)


def wait_for(pred, timeout=20.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise TimeoutError(what)


def wait_recorded(d, t, timeout=10.0):
    """Wait until the record holds everything up to time t."""
    return wait_for(lambda: (d.get("/api/v1/info")["store"]["recorded_to"] or 0) >= t,
                    timeout, f"recorded_to >= {t}")


def longterm(d, t0, t1, **params):
    q = "&".join(f"{k}={v}" for k, v in params.items())
    return d.get(f"/api/v1/longterm?from={t0}&to={t1}" + (f"&{q}" if q else ""))


def integrity(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def spawn(tmp_path):
    """Start an energyd outside the start_energyd fixture (for the ones a test kills with
    SIGKILL): spawn(name, sysfs, *args). Whatever is still running when the test ends, passed
    or failed, is stopped."""
    started = []

    def start(name, sysfs, *args):
        sock = str(tmp_path / f"{name}.sock")
        log = tmp_path / f"{name}.log"
        proc = subprocess.Popen([str(ENERGYD), "--sysfs-root", str(sysfs), "--listen",
                                 f"unix:{sock}", "--state-dir", str(tmp_path / f"{name}-state"),
                                 *args], stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        d = Energyd(proc, sock, log)
        started.append(d)

        def ready():
            assert proc.poll() is None, d.log()
            try:
                return d.request("GET", "/api/v1/info")[0] == 200
            except OSError:
                return False
        wait_for(ready, 10, "energyd answers")
        return d

    yield start
    for d in started:
        d.stop()


def test_restart_continues_the_record_exactly(tmp_path, start_energyd, store_dir):
    # Counters frozen but for exact steps: every figure below is exact to the microjoule.
    fake = powercap.server(tmp_path / "sys")
    db = os.path.join(store_dir, "energy.db")
    d1 = start_energyd(tmp_path / "sys", "--store", str(db), "--store-batch", "0.5")
    d1.wait_ticks(2)
    fake.advance("package-0", 1_234_567)
    fake.advance("intel-rapl:1:0", 2_000_001)
    n1 = d1.wait_ticks(3)
    pkg0, dram1, host1 = (n1["channels"]["rapl:package-0"], n1["channels"]["rapl:dram-1"],
                          n1["host"])
    assert uj(pkg0["joules"]) == 1_234_567 and uj(pkg0["joules_total"]) == 1_234_567
    assert uj(dram1["joules_total"]) == 2_000_001
    assert uj(host1["joules_total"]) == uj(host1["joules"]) == 3_234_568
    info1 = d1.get("/api/v1/info")
    assert info1["store"]["status"] == "ok" and info1["store_path"] == str(db)
    assert d1.stop() == 0
    stopped = time.time()

    time.sleep(2.5)  # energyd is down: at least one whole second nobody records
    fake.advance("package-0", 5_000_000)  # used while down: nobody saw it, it is not invented

    d2 = start_energyd(tmp_path / "sys", "--store", str(db), "--store-batch", "0.5")
    n2 = d2.wait_ticks(2)
    for cid, ch in n2["channels"].items():
        assert ch["joules"] == 0
        assert uj(ch["joules_total"]) == uj(n1["channels"][cid]["joules_total"]), cid
    assert uj(n2["host"]["joules_total"]) == 3_234_568
    fake.advance("package-0", 777_777)
    n3 = d2.wait_ticks(3)
    assert uj(n3["channels"]["rapl:package-0"]["joules_total"]) == 1_234_567 + 777_777
    assert uj(n3["host"]["joules_total"]) == 3_234_568 + 777_777

    # The record: seconds of both runs, the downtime between them as null.
    wait_recorded(d2, n3["time"])
    lt = longterm(d2, int(info1["started_at"]) - 1, int(n3["time"]) + 1, step=1)
    assert lt["tier"] == "1s" and lt["step_s"] == 1
    host = lt["host"]["joules"]
    assert sum(uj(j) for j in host if j is not None) == 3_234_568 + 777_777
    started2 = d2.get("/api/v1/info")["started_at"]
    gap = [t for t, j in zip(lt["t"], host) if j is None and stopped < t and t + 1 <= started2]
    assert len(gap) >= 1, lt
    for t, j, cov in zip(lt["t"], host, lt["covered_s"]):
        if info1["started_at"] + 1 <= t and t + 1 <= stopped - 1:
            assert j is not None and cov == 1.0, (t, lt)  # run 1: every second recorded


def test_kill9_loses_at_most_one_batch(tmp_path, store_dir, spawn):
    """SIGKILL while writing every 5 s (the default batch), early and late in a batch: the
    record keeps everything but the last batch interval, and the database is intact."""
    fake = powercap.server(tmp_path / "sys").start()  # host = 40 + 30 + 6 + 4 = 80 W
    db = os.path.join(store_dir, "energy.db")
    try:
        batch_s = 5.0
        for cycle, run_s in enumerate((6.3, 9.1)):
            d = spawn(f"k{cycle}", tmp_path / "sys", "--store", str(db))
            n0 = d.wait_ticks(1)
            base = n0["host"]["joules_total"] - n0["host"]["joules"]
            time.sleep(run_s)
            t_read = time.monotonic()
            n = d.get("/api/v1/now")
            os.kill(d.pid, 9)
            t_kill = time.monotonic()
            d.proc.wait()
            # What the run had when read, against what its successor finds in the record.
            d2 = spawn(f"r{cycle}", tmp_path / "sys", "--store", str(db))
            n2 = d2.wait_ticks(1)
            recorded = n2["host"]["joules_total"] - n2["host"]["joules"]
            lost = n["host"]["joules_total"] - recorded
            # At most one batch plus one sample interval (0.1 s) plus the commit and the store
            # thread's wake-up delay on a busy 2-CPU CI machine (0.5 s), at 80 W. Negative
            # only by what the run recorded between our read and the kill.
            assert lost <= 80 * (batch_s + 0.1 + 0.5), (lost, d.log())
            assert lost >= -80 * (t_kill - t_read + 0.1), lost
            assert recorded > base + 80 * (run_s - batch_s - 0.5)  # it did write while running
            assert integrity(db) == "ok"
            assert d2.stop() == 0
            assert integrity(db) == "ok"
    finally:
        fake.close()


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs CAP_SYS_ADMIN): {r.stderr}")


def assert_complete_record(d, started_at, n):
    """After the record has caught up: every second since the run began is there, and the
    seconds add up exactly to the energy since the record began."""
    wait_recorded(d, n["time"])
    lt = longterm(d, int(started_at), int(n["time"]) + 1, step=1)
    host = lt["host"]["joules"]
    assert all(j is not None for j in host), lt
    assert sum(uj(j) for j in host) == uj(n["host"]["joules_total"]), lt
    for cid, ch in lt["channels"].items():
        assert sum(uj(j) for j in ch["joules"]) == uj(n["channels"][cid]["joules_total"])
    assert d.get("/api/v1/info")["store"]["dropped_s"] == 0


@root_only
def test_disk_full_mid_run_keeps_serving_and_catches_up(tmp_path, start_energyd, store_dir):
    mnt = Path(store_dir)
    mount_tmpfs(mnt, "4m")  # mode 1777: writable after the drop to nobody
    fake = powercap.server(tmp_path / "sys").start()
    try:
        d = start_energyd(tmp_path / "sys", "--store", str(mnt / "energy.db"),
                          "--store-batch", "0.5", "--store-retry", "0.5")
        started = d.get("/api/v1/info")["started_at"]
        wait_recorded(d, started + 1)
        # Fill the filesystem to the last byte.
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for chunk in (65536, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * chunk)
                except OSError:
                    pass
        finally:
            os.close(fd)
        info = wait_for(lambda: (i := d.get("/api/v1/info"))["store"]["status"] == "degraded"
                        and i, 20, "store degraded")
        assert "full" in info["store"]["error"] and "energy.db" in info["store"]["error"]
        src = d.get("/api/v1/sources")
        assert src["store"]["status"] == "degraded" and "full" in src["store"]["error"]
        # Sampling and serving from memory go on.
        n0 = d.get("/api/v1/now")
        time.sleep(1.5)
        n = d.get("/api/v1/now")
        # What the driver wrote between the two samples, within 1 % and 5 ms per end at 80 W.
        wrote = fake.host_between(n0["time"], n["time"])
        assert wrote > 0.3 * 80 * 1.5
        assert abs(n["host"]["joules"] - n0["host"]["joules"] - wrote) <= 0.01 * wrote + 0.8
        assert n["host"]["joules_total"] is not None
        hist = d.get("/api/v1/history?seconds=2")
        assert len(hist["t"]) >= 19
        bad, shown, tight = powercap.history_within_power(fake, hist["t"],
                                                          hist["host"]["watts"], 80.0, 0.005)
        assert not bad and tight >= shown / 2, (bad, shown, tight)
        assert d.get("/api/v1/info")["store"]["pending_s"] >= 1.0
        os.unlink(mnt / "filler")
        wait_for(lambda: d.get("/api/v1/info")["store"]["status"] == "ok", 20, "store ok")
        fake.stop()  # freeze the counters: the totals stop moving
        n = d.wait_ticks(3)
        assert_complete_record(d, started, n)
        assert "writable again" in d.log()
        assert d.stop() == 0
    finally:
        fake.close()
        subprocess.run(["umount", "-l", str(mnt)])


def test_corrupt_database_then_replaced(tmp_path, start_energyd, store_dir):
    fake = powercap.server(tmp_path / "sys").start()
    db = Path(store_dir) / "energy.db"
    db.write_bytes(b"this is not an SQLite database\n" * 512)
    os.chmod(db, 0o666)  # writable by energyd's user (nobody when the tests run as root)
    try:
        # A record that cannot open stops energyd at start unless --store try says carry on.
        d = start_energyd(tmp_path / "sys", "--store", f"try:{db}", "--store-batch", "0.5",
                          "--store-retry", "0.5")
        started = d.get("/api/v1/info")["started_at"]
        info = d.get("/api/v1/info")
        assert info["store"]["status"] == "degraded"
        assert "not a database" in info["store"]["error"] and "move the file aside" in \
            info["store"]["error"]
        n = d.wait_ticks(5)
        assert n["host"]["joules"] > 0 and n["host"]["joules_total"] is None  # unknown yet
        assert d.get("/api/v1/history?seconds=2")["t"]
        status, body = d.request("GET", f"/api/v1/longterm?from={int(started)}")
        assert status == 503 and "not a database" in body["error"]
        time.sleep(1)
        os.rename(db, Path(store_dir) / "energy.db.corrupt")  # what the error told the operator
        wait_for(lambda: d.get("/api/v1/info")["store"]["status"] == "ok", 20, "store ok")
        fake.stop()
        n = d.wait_ticks(3)
        assert uj(n["host"]["joules_total"]) == uj(n["host"]["joules"])  # a new record
        assert_complete_record(d, started, n)
        assert d.stop() == 0
    finally:
        fake.close()


@root_only
def test_read_only_database_until_made_writable(tmp_path, start_energyd, store_dir):
    """energyd started as root drops to nobody, so the file mode applies to it. Counters move
    by exact steps only: the record's totals are checked to the microjoule."""
    db = os.path.join(store_dir, "energy.db")
    fake = powercap.server(tmp_path / "sys")
    try:
        d1 = start_energyd(tmp_path / "sys", "--store", db, "--store-batch", "0.5",
                           user="nobody")
        d1.wait_ticks(2)
        fake.advance("package-0", 1_000_000)
        n1 = d1.wait_ticks(3)
        assert d1.stop() == 0
        assert uj(n1["host"]["joules_total"]) == 1_000_000
        os.chmod(db, 0o444)
        d = start_energyd(tmp_path / "sys", "--store", f"try:{db}", "--store-batch", "0.5",
                          "--store-retry", "0.5", user="nobody")
        started = d.get("/api/v1/info")["started_at"]
        info = d.get("/api/v1/info")
        assert info["store"]["status"] == "degraded" and "read-only" in info["store"]["error"]
        assert d.get("/api/v1/sources")["store"]["status"] == "degraded"
        fake.advance("package-0", 2_500_000)
        n = d.wait_ticks(10)
        assert uj(n["host"]["joules"]) == 2_500_000  # sampling goes on
        assert n["host"]["joules_total"] is None     # the record's totals are not known yet
        assert d.get("/api/v1/history?seconds=1")["t"]
        # What was sampled waits in memory: the store adds it to pending_s at each batch (0.5 s),
        # so the figure trails the ticks by up to a batch; it only grows while nothing is written.
        wait_for(lambda: d.get("/api/v1/info")["store"]["pending_s"] >= 0.9, 20,
                 "pending_s to grow past 0.9 s")
        assert d.get("/api/v1/info")["store"]["dropped_s"] == 0
        os.chmod(db, 0o644)
        wait_for(lambda: d.get("/api/v1/info")["store"]["status"] == "ok", 20, "store ok")
        n = d.wait_ticks(3)
        # The first run's energy continues, and this run's caught up from memory.
        assert uj(n["host"]["joules_total"]) == 3_500_000
        wait_recorded(d, n["time"])
        lt = longterm(d, int(started) + 1, int(n["time"]) + 1, step=1)
        assert all(j is not None for j in lt["host"]["joules"]), lt  # no gap in this run
        everything = longterm(d, int(n1["time"]) - 60, int(n["time"]) + 1, step=1)
        assert sum(uj(j) for j in everything["host"]["joules"] if j is not None) == 3_500_000
        assert d.get("/api/v1/info")["store"]["dropped_s"] == 0
        assert d.stop() == 0
    finally:
        fake.close()


def week_profile_uj(channel, t0, t1, gap):
    """Energy the store-fill profile puts in [t0, t1): 10 + channel + (hour % 24) watts, none
    in the gap."""
    total = 0
    t = t0
    while t < t1:
        end = min(t1, (t // 3600 + 1) * 3600)
        seconds = (end - t) - max(0, min(end, gap[1]) - max(t, gap[0]))
        total += (10 + channel + (t // 3600) % 24) * 1_000_000 * seconds
        t = end
    return total


def test_longterm_week_tiers_add_up(tmp_path, start_energyd, store_dir):
    now = int(time.time())
    end = now // 3600 * 3600 - 3600            # ends an hour ago, on the hour
    start = end - 7 * 86400
    gap = (start + 2 * 86400 + 1800, start + 2 * 86400 + 1800 + 5400)  # 1.5 h down
    db = os.path.join(store_dir, "energy.db")
    r = subprocess.run([str(STORE_FILL), str(db), str(start), str(end - start), str(gap[0]),
                        str(gap[1])], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    written = {k: int(v) for k, v in (line.split() for line in r.stdout.splitlines())}
    for name in os.listdir(store_dir):  # energyd may run as nobody
        os.chmod(os.path.join(store_dir, name), 0o666)
    assert written["rapl:package-0"] == week_profile_uj(0, start, end, gap)
    assert written["host"] == week_profile_uj(0, start, end, gap) + \
        week_profile_uj(1, start, end, gap)

    d = start_energyd(None, "--store", str(db))
    n = d.wait_ticks(2)
    # The live run (the CPU model here) continues the host total of the record.
    assert uj(n["host"]["joules_total"]) - uj(n["host"]["joules"]) == written["host"]

    hourly = longterm(d, start, end, step=3600)
    assert hourly["tier"] == "1m"  # 1 s rows are kept for a day only
    assert len(hourly["t"]) == 7 * 24 and hourly["t"][0] == start
    hourly_h = longterm(d, start, end, step=3600, tier="1h")
    minutely = longterm(d, start, end, step=60)
    assert minutely["tier"] == "1m" and len(minutely["t"]) == 7 * 24 * 60
    for cid in ("rapl:package-0", "rapl:package-1"):
        c = int(cid[-1])
        h = hourly["channels"][cid]["joules"]
        assert h == hourly_h["channels"][cid]["joules"]
        m = minutely["channels"][cid]["joules"]
        for k, t in enumerate(hourly["t"]):
            expected = week_profile_uj(c, t, t + 3600, gap)
            if gap[0] <= t and t + 3600 <= gap[1]:
                assert h[k] is None and all(x is None for x in m[60 * k:60 * k + 60])
                continue
            assert uj(h[k]) == expected, (cid, t)
            assert sum(uj(x) for x in m[60 * k:60 * k + 60] if x is not None) == expected
        assert sum(uj(x) for x in h if x is not None) == written[cid]
    assert sum(uj(x) for x in hourly["host"]["joules"] if x is not None) == written["host"]
    assert hourly["host"]["coverage"] == [["rapl:package-0", "rapl:package-1"]]
    gap_hour = hourly["t"].index(gap[0] - 1800 + 3600)
    assert hourly["covered_s"][gap_hour] is None
    # Down from half past the hour before it to the end of it.
    assert hourly["covered_s"][gap_hour - 1] == 1800 and hourly["covered_s"][gap_hour + 1] == 3600

    # The last day is also in the finest tier: its seconds add up to the same hours.
    last = longterm(d, end - 6 * 3600, end, step=1)
    assert last["tier"] == "1s" and len(last["t"]) == 6 * 3600
    sec = last["host"]["joules"]
    for k in range(6):
        hour = sum(uj(x) for x in sec[3600 * k:3600 * (k + 1)])
        assert hour == uj(hourly["host"]["joules"][-6 + k])
    # Coarser steps than the tier: days from hours. Days are aligned to 00:00 UTC and a range
    # is widened to whole steps, so the days asked for end at the last midnight before `end`:
    # the day that holds `end` would also hold the live run's own record since then.
    end_day = end // 86400 * 86400
    daily = longterm(d, start, end_day, step=86400, tier="1h")
    assert daily["to"] == end_day
    assert sum(uj(x) for x in daily["host"]["joules"] if x is not None) == \
        sum(uj(x) for t, x in zip(hourly["t"], hourly["host"]["joules"])
            if x is not None and t < end_day)


def test_export_round_trips_with_energy(tmp_path, start_energyd, store_dir):
    fake = powercap.laptop(tmp_path / "sys").start()
    try:
        d = start_energyd(tmp_path / "sys", "--store-batch", "0.5", "--state-dir", store_dir)
        started = d.get("/api/v1/info")["started_at"]
        t0 = int(started) + 2
        t1 = t0 + 3
        wait_recorded(d, t1 + 0.2, timeout=15)
        energy = d.get(f"/api/v1/energy?from={t0}&to={t1}")
        assert energy["clamped"] is False

        env = dict(os.environ, ENERGYD_SOCKET=d.socket)
        r = subprocess.run([str(ENERGY), "export", "--from", str(t0), "--to", str(t1)],
                           capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        header = lines[0].split(",")
        assert header[:5] == ["start_unix_s", "start_utc", "step_s", "covered_s", "host_joules"]
        assert "rapl:psys_joules" in header and "rapl:package-0_joules" in header
        rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
        assert [int(row["start_unix_s"]) for row in rows] == [t0, t0 + 1, t0 + 2]
        assert rows[0]["start_utc"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0))
        # Each end of `energy` is interpolated between samples, the record rounds the
        # counter at each second to a whole microjoule: at most 1 uJ apart per end.
        for col, ref in (("host_joules", energy["host"]["joules"]),
                         ("rapl:package-0_joules",
                          energy["channels"]["rapl:package-0"]["joules"])):
            total = sum(float(row[col]) for row in rows)
            assert abs(total - ref) <= 2e-6, (col, total, ref)
        assert abs(sum(float(row["host_joules"]) for row in rows) - 20.0 * 3) <= 20.0 * 0.1

        iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
        r = subprocess.run([str(ENERGY), "export", "--from", iso(t0), "--to", iso(t1),
                            "--step", "1", "--format", "json"],
                           capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["t"] == [t0, t0 + 1, t0 + 2] and out["step_s"] == 1 and out["tier"] == "1s"
        assert abs(sum(out["host"]["joules"]) - energy["host"]["joules"]) <= 2e-6
        for cid, ch in out["channels"].items():
            assert abs(sum(ch["joules"]) - energy["channels"][cid]["joules"]) <= 2e-6, cid

        r = subprocess.run([str(ENERGY), "export", "--from", "yesterday"], capture_output=True,
                           text=True, env=env, timeout=30)
        assert r.returncode == 2 and "not a time" in r.stderr
    finally:
        fake.close()


BAD = [
    "/api/v1/longterm",                               # from missing
    "/api/v1/longterm?from=abc",
    "/api/v1/longterm?from=100&to=50",
    "/api/v1/longterm?from=1&step=0",
    "/api/v1/longterm?from=1&step=-60",
    "/api/v1/longterm?from=1&step=1.5",
    "/api/v1/longterm?from=1&step=nan",
    "/api/v1/longterm?from=1&tier=2s",
    "/api/v1/longterm?from=1&to=100000&step=1",        # the 1 s tier does not keep 1970
    "/api/v1/longterm?from=1&step=90&tier=1m",         # not a multiple of 60
    "/api/v1/longterm?from=1&to=1000000000&step=3600",  # too many steps
]


def test_longterm_bad_parameters(tmp_path, start_energyd):
    d = start_energyd()
    for path in BAD:
        status, body = d.request("GET", path)
        assert status == 400 and body["error"] and body["hint"], (path, body)
    assert d.get("/api/v1/now")["tick"] > 0  # still serving


def test_store_off_and_bad_options(tmp_path, start_energyd):
    d = start_energyd(None, "--store", "off")
    info = d.get("/api/v1/info")
    assert info["store_path"] is None and info["store"]["status"] == "off"
    assert d.get("/api/v1/now")["host"]["joules_total"] is None
    status, body = d.request("GET", "/api/v1/longterm?from=1")
    assert status == 404 and "off" in body["error"]
    d = start_energyd(None, "--store-keep-1s", "36h", "--store-keep-1m", "90d",
                      "--store-keep-1h", "forever", "--store-batch", "0.5")
    store = d.get("/api/v1/info")["store"]
    assert [t["keep_s"] for t in store["tiers"]] == [36 * 3600, 90 * 86400, None]
    assert [t["step_s"] for t in store["tiers"]] == [1, 60, 3600]
    assert store["batch_s"] == 0.5
    for args in (["--store-keep-1s", "10"], ["--store-keep-1m", "soon"],
                 ["--store-batch", "0"], ["--store-batch", "1000"]):
        r = subprocess.run([str(ENERGYD), "--state-dir", str(tmp_path / "x"), *args],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and args[0] in r.stderr, (args, r.stderr)
