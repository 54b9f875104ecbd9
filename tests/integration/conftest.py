"""Start the real energyd on emulated hardware and talk to it over its real socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from emulators import realtime  # noqa: E402
from helpers.energyd_transport import Connection, request  # noqa: E402
from runner.energyd_check import assert_clean  # noqa: E402

# The test's thread shares the interpreter lock with the emulators' drivers: it must not be
# what makes them late (emulators/realtime.py). energyd and the CLI still run at normal priority.
realtime.harness()

BUILD = Path(os.environ.get("ENERGY_BUILD_DIR", ROOT / "build"))
ENERGYD = BUILD / "energyd"
ENERGY = BUILD / "energy"


# The package's transport (tests/helpers/energyd_transport.py): a connection to a unix socket
# path, unix:PATH or HOST:PORT.
UnixHTTPConnection = Connection


class Energyd:
    """A running energyd process."""

    def __init__(self, proc: subprocess.Popen, socket_path: str, log_path: Path):
        self.proc = proc
        self.socket = socket_path
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def request(self, method: str, path: str, body: str | None = None):
        status, ctype, data = request(self.socket, method, path,
                                      body.encode() if body is not None else None)
        return status, (json.loads(data) if "json" in ctype else data.decode())

    def get(self, path: str):
        status, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        return body

    def wait_ticks(self, n: int = 2, timeout: float = 10.0) -> dict:
        """Wait until the sampler has taken n more ticks; returns the last `now`."""
        first = self.get("/api/v1/now")["tick"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            now = self.get("/api/v1/now")
            if now["tick"] >= first + n:
                return now
            time.sleep(0.01)
        raise TimeoutError("energyd did not tick")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def start_energyd(tmp_path):
    """start_energyd(sysfs_root, *extra_args) -> Energyd, stopped after the test."""
    started: list[Energyd] = []

    def start(sysfs_root=None, *args, proc_root=None, interval="0.1", user=None,
              wait=True, env=None) -> Energyd:
        n = len(started)
        sock = str(tmp_path / f"energyd{n}.sock")
        log = tmp_path / f"energyd{n}.log"
        if sysfs_root is None:
            sysfs_root = tmp_path / f"emptysys{n}"
            os.makedirs(sysfs_root, exist_ok=True)
        cmd = [str(ENERGYD), "--sysfs-root", str(sysfs_root), "--listen", f"unix:{sock}",
               "--interval", interval, "--state-dir", str(tmp_path / f"state{n}")]
        if proc_root:
            cmd += ["--proc-root", str(proc_root)]
        if user:
            cmd += ["--user", user]
        cmd += list(args)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                                env={**os.environ, **env} if env else None)
        d = Energyd(proc, sock, log)
        started.append(d)
        if wait:
            deadline = time.time() + 10
            while time.time() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"energyd exited {proc.returncode}: {d.log()}")
                try:
                    if d.request("GET", "/api/v1/info")[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.02)
            else:
                raise TimeoutError(d.log())
        return d

    yield start
    # A daemon that crashed (or failed a sanitizer check) fails the test that ran it.
    codes = [d.stop() for d in started]
    for d, rc in zip(started, codes):
        assert_clean("energyd", rc, d.log_path, pid=d.pid)
