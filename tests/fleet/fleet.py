"""Helpers of the fleet tests: free ports, energyd "nodes" on emulated RAPL, a real Prometheus
started from Debian's package, local users, and the truth recorded from the emulators."""

from __future__ import annotations

import bisect
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from emulators import powercap  # noqa: E402
from helpers.energyd_transport import request  # noqa: E402

BUILD = Path(os.environ.get("ENERGY_BUILD_DIR", ROOT / "build"))
ENERGYD = BUILD / "energyd"
DEPLOY = ROOT / "deploy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=30.0, step=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = pred()
        except OSError as e:
            last = e
            last_ok = False
        else:
            last_ok = True
        if last_ok and last:
            return last
        time.sleep(step)
    raise TimeoutError(f"{what} not met within {timeout} s (last: {last!r})")


def terminate(proc: subprocess.Popen, timeout: float) -> bool:
    """SIGTERM, then SIGKILL after timeout; False when it took the kill."""
    if proc.poll() is not None:
        return True
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def unix_request(sock: str, method: str, path: str, body: str | None = None):
    """(status, JSON or text) of one request to energyd's unix socket (the package's
    transport, tests/helpers/energyd_transport.py)."""
    status, ctype, data = request(sock, method, path, body.encode() if body is not None else None)
    return status, (json.loads(data) if "json" in ctype else data.decode())


class Truth:
    """Samples a fake powercap's energy (the zones of the host total) every 20 ms with the wall
    clock: what the emulator wrote, to compare Prometheus's figures with."""

    def __init__(self, fake: powercap.FakePowercap, zones: list[str]):
        self.fake, self.zones = fake, zones
        self.t: list[float] = []
        self.uj: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            with self.fake._lock:
                uj = sum(self.fake.zone(z).total_uj for z in self.zones)
                t = time.time()
            self.t.append(t)
            self.uj.append(uj)
            time.sleep(0.02)

    def at(self, t: float) -> float:
        i = bisect.bisect_left(self.t, t)
        assert 0 < i < len(self.t), f"{t} outside the recorded truth"
        t0, t1 = self.t[i - 1], self.t[i]
        return self.uj[i - 1] + (self.uj[i] - self.uj[i - 1]) * (t - t0) / (t1 - t0)

    def joules(self, t0: float, t1: float) -> float:
        return (self.at(t1) - self.at(t0)) / 1e6

    def stop(self):
        self._stop.set()
        self._thread.join()


class Node:
    """One energyd on its own fake sysfs tree, on loopback TCP and a unix socket."""

    def __init__(self, name: str, tmp: Path, fake: powercap.FakePowercap, zones: list[str],
                 args: list[str], config: str):
        self.name, self.fake = name, fake
        self.port = free_port()
        self.sock = str(tmp / f"{name}.sock")
        self.log_path = tmp / f"{name}.log"
        conf = tmp / f"{name}.conf"
        conf.write_text(config)
        fake.period_s = 0.01  # three drivers in one process: 10 ms steps are plenty
        fake.start()
        self.truth = Truth(fake, zones)
        cmd = [str(ENERGYD), "--sysfs-root", fake.root, "--listen", f"127.0.0.1:{self.port}",
               "--listen", f"unix:{self.sock}", "--interval", "0.1", "--state-dir",
               str(tmp / f"{name}-state"), "--config", str(conf), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log_path, "w"))
        wait_until(lambda: self.proc.poll() is None and self.get("/api/v1/info"),
                   timeout=20, what=f"{name} answers")

    @property
    def instance(self) -> str:
        return f"127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: str | None = None):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {self.log()}")
        return unix_request(self.sock, method, path, body)

    def get(self, path: str):
        status, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        return body

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> str:
        """Stop energyd and the emulator; returns problems found in its log ("" if none)."""
        problems = "" if terminate(self.proc, 15) else f"{self.name} did not stop on SIGTERM\n"
        if self.proc.returncode not in (0, None):
            problems += f"{self.name} exited {self.proc.returncode}\n"
        log = self.log()
        if "ERROR: AddressSanitizer" in log or "runtime error:" in log:
            problems += f"{self.name}: sanitizer report:\n{log}\n"
        self.truth.stop()
        self.fake.close()
        return problems


class Prometheus:
    """Debian's prometheus on a free loopback port, storage in tmp, with the shipped rules."""

    def __init__(self, tmp: Path, targets: list[str], rule_files: list[Path]):
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                       "scrape_timeout": "900ms"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": "energyd",
                                "static_configs": [{"targets": targets}]}],
        }
        conf = tmp / "prometheus.yml"
        conf.write_text(json.dumps(config, indent=1))  # YAML is a superset of JSON
        self.log_path = tmp / "prometheus.log"
        exe = shutil.which("prometheus")
        assert exe, "prometheus (Debian package prometheus) is needed"
        self.proc = subprocess.Popen(
            [exe, f"--config.file={conf}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h",
             "--web.enable-lifecycle"],
            stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"), cwd=str(tmp))
        wait_until(self.ready, timeout=60, what="prometheus ready")

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited: {self.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=20) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, t: float) -> list[dict]:
        return self.api("query", query=expr, time=f"{t:.3f}")["result"]

    def stop(self):
        terminate(self.proc, 30)


class LocalUser:
    """A real local user, created with useradd (root only) and removed with userdel."""

    def __init__(self, name: str):
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", name], check=True, capture_output=True)
        self.name = name
        self.pw = pwd.getpwnam(name)

    def remove(self):
        subprocess.run(["userdel", self.name], capture_output=True)


# A CPU-bound loop with a duty cycle (busy fraction of every 20 ms); runs until killed.
BUSY = ("import sys, time\n"
        "duty = float(sys.argv[1])\n"
        "while True:\n"
        "    end = time.monotonic() + 0.02 * duty\n"
        "    while time.monotonic() < end:\n"
        "        pass\n"
        "    if duty < 1:\n"
        "        time.sleep(0.02 * (1 - duty))\n")


def busy_as(user: LocalUser, duty: float) -> subprocess.Popen:
    return subprocess.Popen(["/usr/bin/python3", "-c", BUSY, str(duty)], user=user.pw.pw_uid,
                            group=user.pw.pw_gid, extra_groups=[], cwd="/",
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
