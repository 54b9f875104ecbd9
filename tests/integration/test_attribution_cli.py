"""The energy CLI's attribution: `energy run` with the command's own share, `energy watch` in a
real terminal (tmux)."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ENERGY
from emulators import powercap

PKG_W = 40.0
BUSY = ("import time\n"
        "end = time.process_time() + 0.6\n"
        "while time.process_time() < end:\n"
        "    pass\n")


def energy(*args, socket=None, check=True):
    env = dict(os.environ)
    env.pop("ENERGYD_SOCKET", None)
    env["XDG_RUNTIME_DIR"] = "/nonexistent-energy-test"
    if socket:
        env["ENERGYD_SOCKET"] = socket
    r = subprocess.run([str(ENERGY), *args], capture_output=True, text=True, env=env,
                       timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture
def daemon(tmp_path, start_energyd):
    fake = powercap.FakePowercap(tmp_path / "sys", [
        powercap.Zone("intel-rapl:0", "package-0", PKG_W)]).start()
    d = start_energyd(tmp_path / "sys")
    d.wait_ticks(3)
    yield d
    fake.close()


def test_run_reports_the_commands_own_share(daemon):
    r = energy("run", "--json", "--", sys.executable, "-c", BUSY, socket=daemon.socket)
    out = json.loads(r.stdout)
    run = out["runs"][0]
    own = run["attributed"]
    assert own["measured"] is False and own["method"] == "cpu-time-share"
    cpu = own["watch"]["cpu_s"]
    # The watch starts before the command executes: all of its CPU time is seen (0.6 s of
    # busy loop plus the interpreter's start-up).
    assert 0.6 <= cpu < 1.5
    # Active = P x busy/total, own = active x own/busy: P x own CPU / CPUs, within 15 % (the
    # kernel samples /proc/stat and per-process times separately).
    expected = PKG_W * cpu / os.cpu_count()
    assert abs(own["joules"] - expected) <= expected * 0.15, (own, expected)
    # share: of the host total over the same interval (energyd's samples around the command).
    assert abs(own["share"] - own["joules"] / run["host"]["joules"]) < 0.02
    assert out["summary"]["attributed"]["joules"]["mean"] == own["joules"]
    assert 0 < own["share"] <= 1
    # The watch is removed afterwards.
    assert daemon.get("/api/v1/watch")["watches"] == []
    r = energy("run", "--", sys.executable, "-c", BUSY, socket=daemon.socket)
    line = [x for x in r.stderr.splitlines() if x.startswith("command's share")][0]
    assert "estimated (cpu-time-share" in line and "% of the host total" in line


def test_run_in_process_share(tmp_path):
    fake = powercap.FakePowercap(tmp_path / "sys", [
        powercap.Zone("intel-rapl:0", "package-0", PKG_W)]).start()
    try:
        r = energy("run", "--json", "--in-process", "--sysfs-root", str(tmp_path / "sys"),
                   "--", sys.executable, "-c", BUSY)
        out = json.loads(r.stdout)
        run = out["runs"][0]
        own = run["attributed"]
        assert out["mode"] == "in-process" and own["method"] == "cpu-time-share"
        assert own["cpu_s"] >= 0.6
        # host x own CPU / all CPU time of the machine (from /proc/stat), within 15 %.
        expected = run["host"]["joules"] * own["cpu_s"] / (run["duration_s"] * os.cpu_count())
        assert abs(own["joules"] - expected) <= expected * 0.15, (own, expected)
    finally:
        fake.close()


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
def test_energy_watch_in_tmux(daemon, tmp_path):
    server = f"energy-test-{os.getpid()}"
    rc_file = tmp_path / "rc"
    tmux = ["tmux", "-L", server]
    busy = subprocess.Popen([sys.executable, "-c", BUSY.replace("0.6", "30")])
    cmd = (f"ENERGYD_SOCKET=unix:{daemon.socket} {ENERGY} watch --interval 0.5; "
           f"echo $? > {rc_file}; sleep 30")
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "24", "-s", "w", cmd],
                   check=True, timeout=10)
    try:
        screen = ""
        deadline = time.time() + 15
        while time.time() < deadline:
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "w"],
                                    capture_output=True, text=True).stdout
            if "rapl:package-0" in screen and f"{busy.pid}" in screen:
                break
            time.sleep(0.3)
        lines = screen.splitlines()
        assert any(x.startswith("rapl:package-0") and "W" in x for x in lines), screen
        assert any(x.startswith("host total") and "measured" in x for x in lines), screen
        assert any("PID" in x and "COMMAND" in x for x in lines), screen
        # The busy process is among the top processes, with its power and command.
        row = [x for x in lines if x.split()[:1] == [str(busy.pid)]]
        assert row and "python" in row[0] and " W " in row[0], screen
        assert all(len(x) <= 80 for x in lines)
        subprocess.run([*tmux, "send-keys", "-t", "w", "q"], check=True)
        deadline = time.time() + 10
        while not rc_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert rc_file.read_text().strip() == "0"
    finally:
        busy.kill()
        busy.wait()
        subprocess.run([*tmux, "kill-server"], capture_output=True)
