"""InfluxDB output: energyd writes line protocol to a real influxd (Debian's influxdb 1.6,
started here on free loopback ports with its data in /tmp); the values queried back with InfluxQL
must match energyd's own record. The server going away: the oldest batches are dropped and
counted, the sampler does not wait, and writing resumes when the server is back. The 2.x write
API (which 1.6 does not have) against a local endpoint that checks bucket, org and token."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from fleet import ENERGYD, free_port, terminate, unix_request, wait_until
from emulators import powercap


class Influxd:
    def __init__(self, tmp: Path):
        exe = shutil.which("influxd")
        assert exe, "influxd (Debian package influxdb) is needed"
        self.port, rpc = free_port(), free_port()
        conf = tmp / "influxdb.conf"
        conf.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{tmp}/meta"
[data]
  dir = "{tmp}/data"
  wal-dir = "{tmp}/wal"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
""")
        self.log = tmp / "influxd.log"
        self.proc = subprocess.Popen([exe, "-config", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "w"))
        wait_until(self.ping, timeout=60, what="influxd answers /ping")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def ping(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"influxd exited: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as r:
                return r.status == 204
        except OSError:
            return False

    def query(self, q: str, db: str | None = None) -> list[dict]:
        data = {"q": q, "epoch": "ms"}
        if db:
            data["db"] = db
        req = urllib.request.Request(f"{self.url}/query",
                                     data=urllib.parse.urlencode(data).encode())
        with urllib.request.urlopen(req, timeout=20) as r:
            body = json.loads(r.read())
        res = body["results"][0]
        assert "error" not in res, res
        return res.get("series", [])

    def stop(self):
        terminate(self.proc, 20)


@pytest.fixture(scope="module")
def influxd():
    tmp = Path(tempfile.mkdtemp(prefix="energy-influx-", dir="/tmp"))
    db = Influxd(tmp)
    yield db
    db.stop()
    shutil.rmtree(tmp, ignore_errors=True)


class Daemon:
    def __init__(self, tmp: Path, config: str, name="e"):
        self.fake = powercap.server(str(tmp / f"{name}-sys"))
        self.fake.start()
        self.sock = str(tmp / f"{name}.sock")
        conf = tmp / f"{name}.conf"
        conf.write_text(config)
        self.log_path = tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [str(ENERGYD), "--sysfs-root", self.fake.root, "--listen", f"unix:{self.sock}",
             "--interval", "0.1", "--state-dir", str(tmp / f"{name}-state"), "--store", "off",
             "--config",
             str(conf)], stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"))
        wait_until(lambda: self.proc.poll() is None and self.get("/api/v1/info"), timeout=20,
                   what="energyd answers")

    def get(self, path):
        if self.proc.poll() is not None:
            raise RuntimeError(f"energyd exited: {self.log()}")
        status, body = unix_request(self.sock, "GET", path)
        assert status == 200, (path, status, body)
        return body

    def metric(self, name):
        m = re.search(rf"^{name} (\S+)$", self.get("/metrics"), re.M)
        assert m, name
        return float(m.group(1))

    def log(self):
        return self.log_path.read_text()

    def stop(self):
        stopped = terminate(self.proc, 30)
        self.fake.close()
        log = self.log()
        assert stopped and self.proc.returncode == 0, log
        assert "AddressSanitizer" not in log and "runtime error:" not in log, log
        return log


@pytest.fixture
def tmp(tmp_path):
    os.chmod(tmp_path, 0o755)
    return tmp_path


def test_v1_points_match_the_record(influxd, tmp):
    influxd.query("CREATE DATABASE energy_v1")
    d = Daemon(tmp, f"[influxdb]\nurl = {influxd.url}\ndatabase = energy_v1\n"
                    "interval_s = 0.5\n")
    try:
        def points(n):
            s = influxd.query("SELECT joules_total, joules, watts FROM energy_host", "energy_v1")
            return s and len(s[0]["values"]) >= n and s[0]
        host = wait_until(lambda: points(8), timeout=30, what="8 points in InfluxDB")
        cols = host["columns"]
        rows = [dict(zip(cols, v)) for v in host["values"]]
        t0, t1 = rows[0]["time"] / 1e3, rows[-1]["time"] / 1e3
        # energyd's record over the same interval (the points are stamped with the sample
        # time, to the millisecond: 0.5 ms of 80 W at each end)
        rec = d.get(f"/api/v1/energy?from={t0}&to={t1}")
        got = rows[-1]["joules_total"] - rows[0]["joules_total"]
        assert got == pytest.approx(rec["host"]["joules"], abs=0.1), (got, rec)
        assert got == pytest.approx(80.0 * (t1 - t0), rel=0.05)
        # joules: energy since the previous point (the first: since energyd started)
        assert sum(r["joules"] for r in rows) == pytest.approx(rows[-1]["joules_total"],
                                                             rel=1e-9)
        assert all(r["watts"] == pytest.approx(80.0, rel=0.1) for r in rows[1:])
        # channels, per tag, against the record's per-channel figures
        chans = influxd.query(
            f"SELECT last(joules_total) - first(joules_total) FROM energy_channel "
            f"WHERE time >= {rows[0]['time']}ms AND time <= {rows[-1]['time']}ms "
            "GROUP BY channel", "energy_v1")
        assert len(chans) == 4
        for s in chans:
            ch = s["tags"]["channel"]
            assert s["values"][0][1] == pytest.approx(rec["channels"][ch]["joules"], abs=0.1)
        # users (attribution on the real /proc): estimates, with their uid and name
        users = influxd.query("SHOW TAG VALUES FROM energy_user WITH KEY = measured",
                              "energy_v1")
        assert users and [v[1] for v in users[0]["values"]] == ["false"]
        assert d.metric("energy_influxdb_batches_written_total") >= 8
        assert d.metric("energy_influxdb_batches_dropped_total") == 0
        newest = d.get("/api/v1/now")["time"]
    finally:
        d.stop()
    # the newest sample is written on the way out
    last = influxd.query("SELECT last(joules_total) FROM energy_host", "energy_v1")
    assert last[0]["values"][0][0] >= round(newest * 1e3)


def test_server_away_oldest_dropped_sampler_on_time(influxd, tmp):
    """No such database yet (InfluxDB answers 404): batches queue up to memory_s (5 of them),
    the oldest are dropped and counted, the sampler keeps its rhythm; once the database exists
    the queue is written with the next retry."""
    d = Daemon(tmp, f"[influxdb]\nurl = {influxd.url}\ndatabase = late\ninterval_s = 0.2\n"
                    "memory_s = 1\n")
    try:
        t_start = time.time()
        tick0 = d.get("/api/v1/now")["tick"]
        wait_until(lambda: d.metric("energy_influxdb_batches_dropped_total") >= 3, timeout=20,
                   what="batches dropped")
        assert d.metric("energy_influxdb_batches_pending") <= 5
        assert d.metric("energy_influxdb_write_failures_total") >= 2
        elapsed = time.time() - t_start
        ticks = d.get("/api/v1/now")["tick"] - tick0
        assert ticks >= 0.7 * elapsed / 0.1, (ticks, elapsed)
        assert "influxdb:" in d.log() and "404" in d.log()
        influxd.query("CREATE DATABASE late")
        wait_until(lambda: d.metric("energy_influxdb_batches_written_total") >= 5, timeout=40,
                   what="written after the database exists")
        dropped = d.metric("energy_influxdb_batches_dropped_total")
        s = influxd.query("SELECT joules_total FROM energy_host", "late")
        first = s[0]["values"][0][0] / 1e3
        # the oldest are gone: what is there starts after the daemon's first batches
        assert first > t_start + 0.2 * min(dropped, 5) - 0.3, (first - t_start, dropped)
        # and the queue that waited (full: five 0.2 s batches) was written as a whole
        assert sum(1 for v in s[0]["values"] if v[0] / 1e3 < first + 1.0) >= 4, s
        assert first < time.time()
        # Prometheus's checker still likes /metrics with these counters; with --store off
        # there is no record to report on (nor to alert about)
        text = d.get("/metrics")
        r = subprocess.run([shutil.which("promtool"), "check", "metrics"], input=text,
                           capture_output=True, text=True)
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r
        assert "energy_store_up" not in text
    finally:
        d.stop()


class V2Endpoint(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, self.headers.get("Authorization"), body.decode()))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_v2_write_api_with_a_root_only_token(tmp):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), V2Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp / "influx.token"
    token.write_text("s3cr3t-token==\n")
    os.chmod(token, 0o600)  # root's only: energyd reads it before it drops to nobody
    try:
        d = Daemon(tmp, f"[influxdb]\nurl = http://127.0.0.1:{server.server_port}/\n"
                        "bucket = energy b\norg = my org\n"
                        f"token_file = {token}\ninterval_s = 0.3\n")
        try:
            wait_until(lambda: len(V2Endpoint.seen) >= 2, timeout=20, what="2 writes")
            assert d.get("/api/v1/info")["uid"] != 0
        finally:
            d.stop()
    finally:
        server.shutdown()
    path, auth, body = V2Endpoint.seen[0]
    u = urllib.parse.urlsplit(path)
    q = urllib.parse.parse_qs(u.query)
    assert u.path == "/api/v2/write"
    assert q == {"bucket": ["energy b"], "org": ["my org"], "precision": ["ms"]}
    assert auth == "Token s3cr3t-token=="
    line = [x for x in body.splitlines() if x.startswith("energy_host,")][0]
    assert re.fullmatch(r"energy_host,host=\S+,measured=true,rule=CPU\\ packages\\ \+\\ dram "
                        r"joules_total=[0-9.]+,joules=[0-9.]+(,watts=[0-9.]+)? \d{13}", line), line
