"""Type=notify by hand (src/energyd/notify.c): READY=1 after the first sample, STOPPING=1 on
SIGTERM, on a path or an abstract $NOTIFY_SOCKET, also after dropping root (the socket is
connected before the drop). Uses the build's energyd ($ENERGY_BUILD_DIR) on emulated RAPL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from emulators import powercap  # noqa: E402

ENERGYD = Path(os.environ.get("ENERGY_BUILD_DIR", ROOT / "build")) / "energyd"


@pytest.mark.parametrize("kind", ["abstract", "path"])
def test_ready_and_stopping(tmp_path, kind):
    sys_root = tmp_path / "sys"
    fake = powercap.server(sys_root).start()
    # A root-only directory for the path socket: only a connect made before the drop reaches it.
    sock_dir = Path(tempfile.mkdtemp(prefix="energyd-notify-"))
    os.chmod(sock_dir, 0o700)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if kind == "abstract":
        name = f"energyd-notify-test-{os.getpid()}-{time.monotonic_ns()}"
        notify.bind("\0" + name)
        env_name = "@" + name
    else:
        env_name = str(sock_dir / "notify")
        notify.bind(env_name)
    notify.settimeout(30)
    cmd = [str(ENERGYD), "--sysfs-root", str(sys_root), "--listen",
           f"unix:{tmp_path}/e.sock", "--state-dir", str(tmp_path / "state"), "--store", "off"]
    if os.geteuid() == 0:
        cmd += ["--user", "nobody"]
    log = open(tmp_path / "log", "w")
    proc = None
    try:
        proc = subprocess.Popen(cmd, env={**os.environ, "NOTIFY_SOCKET": env_name}, stderr=log)
        ready = notify.recv(4096).decode()
        assert ready.split("\n")[0] == "READY=1", ready
        # By then the socket answers (the first sample was taken before it was opened).
        assert os.path.exists(f"{tmp_path}/e.sock")
        proc.send_signal(signal.SIGTERM)
        assert notify.recv(4096).decode() == "STOPPING=1"
        assert proc.wait(15) == 0
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
        fake.close()
        log.close()
        for f in sock_dir.iterdir():
            f.unlink()
        sock_dir.rmdir()
    text = (tmp_path / "log").read_text()
    assert "service manager" not in text, text
    if os.geteuid() == 0:
        assert "dropped privileges to nobody" in text


def test_no_notify_socket_is_fine(tmp_path):
    sys_root = tmp_path / "sys"
    fake = powercap.server(sys_root).start()
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["NOTIFY_SOCKET"] = "not-absolute"  # neither a path nor '@': refused with a warning
    log = tmp_path / "log"
    proc = subprocess.Popen([str(ENERGYD), "--sysfs-root", str(sys_root), "--listen",
                             f"unix:{tmp_path}/e.sock", "--state-dir", str(tmp_path / "st"),
                             "--store", "off"], env=env, stderr=open(log, "w"))
    try:
        deadline = time.time() + 20
        while time.time() < deadline and "listening on" not in log.read_text():
            time.sleep(0.05)
        assert "cannot connect to the service manager" in log.read_text()
        assert proc.poll() is None  # a warning, not a failure
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        fake.close()
