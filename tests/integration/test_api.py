"""The HTTP API: answers, errors for bad input, and a daemon that keeps serving."""

import json
import socket
import subprocess
import time

import pytest

from conftest import ENERGYD, UnixHTTPConnection
from emulators import powercap


@pytest.fixture
def daemon(tmp_path, start_energyd):
    fake = powercap.server(tmp_path / "sys").start()
    d = start_energyd(tmp_path / "sys")
    d.wait_ticks(3)
    yield d
    fake.close()


def test_info(daemon):
    info = daemon.get("/api/v1/info")
    for key in ("version", "hostname", "started_at", "interval_s", "uid", "privileges"):
        assert key in info
    assert info["interval_s"] == 0.1
    assert abs(info["started_at"] - time.time()) < 60
    assert info["pid"] == daemon.pid


BAD = [
    "/api/v1/energy",                                  # from missing
    "/api/v1/energy?from=abc",
    "/api/v1/energy?from=nan",
    "/api/v1/energy?from=NaN&to=1",
    "/api/v1/energy?from=inf",
    "/api/v1/energy?from=1e999",
    "/api/v1/energy?from=1e300",                       # far in the future
    "/api/v1/energy?from=-1",
    "/api/v1/energy?from=200&to=100",                  # from > to
    "/api/v1/energy?from=0x10",
    "/api/v1/energy?from=" + "9" * 5000,
    "/api/v1/energy?from=1&scope=bogus:1",            # unknown scope kind
    "/api/v1/history?seconds=0",
    "/api/v1/history?seconds=-3",
    "/api/v1/history?seconds=1e12",
    "/api/v1/history?seconds=ten",
    "/api/v1/history?seconds=10&max_points=0",
]


@pytest.mark.parametrize("path", BAD)
def test_bad_parameters_get_400_json(daemon, path):
    status, body = daemon.request("GET", path)
    assert status == 400, body
    assert body["error"] and "hint" in body


def test_unknown_paths_and_methods(daemon):
    for path in ("/", "/api/v1", "/api/v2/now", "/api/v1/now/x", "/../../etc/passwd"):
        status, body = daemon.request("GET", path)
        assert status == 404 and body["error"], path
    status, body = daemon.request("POST", "/api/v1/now", body="{}")
    assert status == 405 and body["error"]
    status, body = daemon.request("DELETE", "/api/v1/info")
    assert status == 405


def test_interval_outside_history_is_404(daemon):
    status, body = daemon.request("GET", "/api/v1/energy?from=1000&to=2000")
    assert status == 404 and "outside" in body["error"]


def test_huge_header_gets_431_and_daemon_keeps_serving(daemon):
    s = socket.socket(socket.AF_UNIX)
    s.connect(daemon.socket)
    s.sendall(b"GET /api/v1/now HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 +
              b"\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431")
    assert json.loads(body)["error"] == "request headers too large"
    assert daemon.get("/api/v1/now")["channels"]


def test_garbage_on_the_socket(daemon):
    for junk in (b"\x00\xff\xfe garbage\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"POST /api/v1/now HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nabc"):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(daemon.socket)
        s.sendall(junk)
        try:
            s.recv(4096)
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
    # Many clients that connect and go away mid-request.
    for _ in range(50):
        s = socket.socket(socket.AF_UNIX)
        s.connect(daemon.socket)
        s.sendall(b"GET /api/v1/hist")
        s.close()
    assert daemon.get("/api/v1/now")["host"]["joules"] > 0
    assert daemon.proc.poll() is None


def test_history_columns(daemon):
    h = daemon.get("/api/v1/history?seconds=0.5")
    n = len(h["t"])
    assert 4 <= n <= 7
    assert all(b > a for a, b in zip(h["t"], h["t"][1:]))
    for ch in h["channels"].values():
        assert len(ch["watts"]) == n
    assert len(h["host"]["watts"]) == n
    capped = daemon.get("/api/v1/history?seconds=0.5&max_points=2")
    assert len(capped["t"]) == 2 and capped["t"][-1] >= h["t"][-1]


def test_energy_iso_times_and_clamping(daemon):
    now = daemon.get("/api/v1/now")["time"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600))
    e = daemon.get(f"/api/v1/energy?from={iso}")
    assert e["clamped"] is True
    assert e["from"] >= now - 60 and e["requested_from"] == pytest.approx(int(now) - 3600, abs=1)


def test_stream_sends_now_per_tick(daemon):
    conn = UnixHTTPConnection(daemon.socket)
    conn.request("GET", "/api/v1/stream")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("text/event-stream")
    events = []
    while len(events) < 4:
        line = resp.fp.readline().decode()
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
    conn.close()
    ticks = [e["tick"] for e in events]
    assert ticks == sorted(ticks) and len(set(ticks)) == 4
    assert all("host" in e and "channels" in e for e in events)
    # The daemon survives the client going away mid-stream.
    assert daemon.get("/api/v1/now")


def test_metrics(daemon):
    status, text = daemon.request("GET", "/metrics")
    assert status == 200
    assert 'energy_joules_total{channel="rapl:package-0",kind="package",measured="true"}' in text
    assert "energy_host_watts" in text


def test_loopback_tcp(tmp_path, start_energyd):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = start_energyd(None, "--listen", f"127.0.0.1:{port}", "--listen",
                      f"unix:{tmp_path}/second.sock")
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/api/v1/info")
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["version"]
    # and on the second unix socket
    c2 = UnixHTTPConnection(f"{tmp_path}/second.sock")
    c2.request("GET", "/api/v1/info")
    assert c2.getresponse().status == 200


@pytest.mark.parametrize("args,message", [
    (["--listen", "0.0.0.0:8080"], "only loopback"),
    (["--listen", "192.0.2.1:8080"], "only loopback"),
    (["--interval", "0.001"], "below the floor"),
    (["--interval", "abc"], "not a positive number"),
    (["--bogus"], "unknown option '--bogus'"),
    (["--http-threads", "17"], "--http-threads 17: give 1 to 16 threads"),
    (["--http-threads", "0"], "not a whole number from 1 to 4096"),
])
def test_bad_options_fail_clearly(tmp_path, args, message):
    r = subprocess.run([str(ENERGYD), "--listen", f"unix:{tmp_path}/x.sock", *args,
                        "--state-dir", str(tmp_path / "st")], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    assert message in r.stderr


def test_config_file_errors_name_the_line(tmp_path):
    conf = tmp_path / "energyd.conf"
    conf.write_text("[energyd]\ninterval = 0.2\n\nlisten unix:/tmp/x\n")
    r = subprocess.run([str(ENERGYD), "--config", str(conf)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2
    assert f"{conf}:4: expected 'key = value'" in r.stderr


def test_config_file_is_used(tmp_path, start_energyd):
    conf = tmp_path / "energyd.conf"
    conf.write_text("# test\n[energyd]\ninterval = 0.25\nmodel_idle_watts = 9\n")
    d = start_energyd(None, "--config", str(conf), interval="0.25")
    assert d.get("/api/v1/info")["interval_s"] == 0.25
    assert "9.00 W idle" in d.get("/api/v1/sources")["families"][-1]["detail"]


def test_help_documents_every_option():
    out = subprocess.run([str(ENERGYD), "--help"], capture_output=True, text=True).stdout
    for opt in ("--sysfs-root", "--proc-root", "--listen", "--interval", "--state-dir",
                "--config", "--user", "--model-idle-watts", "--model-max-watts"):
        assert opt in out
