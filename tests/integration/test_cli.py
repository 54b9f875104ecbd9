"""The energy CLI against a real energyd on emulated hardware, and its in-process fallback."""

import json
import os
import subprocess
import time

import pytest

from conftest import ENERGY
from emulators import powercap

# A run's energy against what the driver wrote (its log): `energy run` reports the duration, and
# the run lies inside the CLI's own lifetime [t_before, t_after], so the expected energy is the
# range of the driver's energy over every window of that duration inside it
# (FakePowercap.energy_range), widened by 1 % and SKEW_S per end at the run's power (energyd
# reads the counters, then stamps the sample). Duration itself: `sleep 1` takes 1 s plus process
# start-up (< 0.2 s here).
SKEW_S = 0.005


def near_run(joules, fake, keys, t_before, t_after, duration, watts):
    lo, hi = fake.energy_range(keys, t_before, t_after - duration, duration)
    slack = 0.01 * hi + 2 * watts * SKEW_S
    assert lo > 0.3 * watts * duration  # the driver ran
    return lo - slack <= joules <= hi + slack


def energy(*args, socket=None, env_extra=None, check=True):
    env = dict(os.environ)
    env.pop("ENERGYD_SOCKET", None)
    env["XDG_RUNTIME_DIR"] = "/nonexistent-energy-test"  # never find a stray daemon
    if socket:
        env["ENERGYD_SOCKET"] = socket
    env.update(env_extra or {})
    r = subprocess.run([str(ENERGY), *args], capture_output=True, text=True, env=env,
                       timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture
def laptop(tmp_path, start_energyd):
    fake = powercap.laptop(tmp_path / "sys").start()
    d = start_energyd(tmp_path / "sys")
    d.wait_ticks(3)
    yield fake, d
    fake.close()


def test_run_sleep_reports_profile_energy(laptop):
    fake, d = laptop
    t_before = time.time()
    r = energy("run", "--json", "--", "sleep", "1", socket=d.socket)
    t_after = time.time()
    out = json.loads(r.stdout)
    assert out["mode"] == "energyd" and out["command"] == ["sleep", "1"]
    assert len(out["runs"]) == 1 and out["baseline"] is None
    run = out["runs"][0]
    assert run["exit_code"] == 0
    dur = run["duration_s"]
    assert 1.0 <= dur < 1.2
    # The host total is psys (20 W); package-0 is 12 W.
    assert near_run(run["host"]["joules"], fake, ["psys"], t_before, t_after, dur, 20.0), run
    assert run["host"]["coverage"] == ["rapl:psys"] and run["host"]["measured"] is True
    assert near_run(run["channels"]["rapl:package-0"]["joules"], fake, ["intel-rapl:0"],
                    t_before, t_after, dur, 12.0), run
    # The mean power is energyd's, over the interval the CLI asked for: its ends are sent at 1 us
    # and parsed back into doubles that resolve about 0.25 us at today's epoch, so the seconds it
    # divides by are within 1.5 us of the run's duration.
    assert run["host"]["watts"] == pytest.approx(run["host"]["joules"] / dur, rel=1.5e-6 / dur)
    assert out["summary"]["host"]["joules"]["mean"] == run["host"]["joules"]


def test_run_text_and_exit_code(laptop):
    fake, d = laptop
    r = energy("run", "--", "sh", "-c", "sleep 0.3; exit 7", socket=d.socket, check=False)
    assert r.returncode == 7
    assert "Exit code: 7" in r.stderr
    assert "host total" in r.stderr and "measured" in r.stderr and "rapl:psys" in r.stderr
    r = energy("run", "--", "/nonexistent/cmd", socket=d.socket, check=False)
    assert r.returncode == 127 and "cannot execute" in r.stderr


def test_run_in_process_without_daemon(tmp_path):
    fake = powercap.server(tmp_path / "sys").start()
    try:
        r = energy("--socket", f"unix:{tmp_path}/none.sock", "run", "--json", "--", "true",
                   check=False)
        assert r.returncode == 1 and "no energyd answers" in r.stderr
        # No daemon anywhere: sample in-process with the same sources.
        t_before = time.time()
        r = energy("run", "--json", "--sysfs-root", str(tmp_path / "sys"), "--", "sleep", "1",
                   env_extra={"ENERGYD_SOCKET": f"unix:{tmp_path}/none.sock"}, check=False)
        t_after = time.time()
        # ENERGYD_SOCKET pointing nowhere is not an explicit --socket: fall back.
        out = json.loads(r.stdout)
        assert out["mode"] == "in-process"
        run = out["runs"][0]
        dur = run["duration_s"]
        keys = ["intel-rapl:0", "intel-rapl:0:0", "intel-rapl:1", "intel-rapl:1:0"]
        assert near_run(run["host"]["joules"], fake, keys, t_before, t_after, dur, 80.0), run
        assert run["host"]["coverage"] == ["rapl:package-0", "rapl:dram-0", "rapl:package-1",
                                           "rapl:dram-1"]
    finally:
        fake.close()


def test_status_and_sources(laptop):
    fake, d = laptop
    out = energy("status", socket=d.socket).stdout
    for cid in ("rapl:package-0", "rapl:core-0", "rapl:uncore-0", "rapl:psys"):
        assert cid in out
    host = [line for line in out.splitlines() if line.startswith("host total")][0]
    assert "rapl:psys" in host and "measured" in host
    out = energy("sources", socket=d.socket).stdout
    assert "powercap   found" in out and "intel-rapl-mmio skipped" in out
    assert "Host total: rapl:psys (psys, measured)" in out


def test_sources_explains_missing_families(tmp_path, start_energyd):
    d = start_energyd(None)
    out = energy("sources", socket=d.socket).stdout
    assert "powercap   absent" in out and "modprobe intel_rapl_msr" in out
    assert "model:cpu" in out and "estimated" in out


def test_no_daemon_is_a_clear_error(tmp_path):
    r = energy("--socket", f"unix:{tmp_path}/none.sock", "status", check=False)
    assert r.returncode == 1
    assert "cannot reach energyd" in r.stderr


def test_status_shows_the_record_total(tmp_path, start_energyd):
    import shutil
    import tempfile
    import time

    store = tempfile.mkdtemp(prefix="energyd-cli-store-")
    os.chmod(store, 0o777)  # energyd drops root to nobody
    fake = powercap.wrapping(tmp_path / "sys", unit_nj=953)  # 4 kJ: no wrap
    try:
        d = start_energyd(tmp_path / "sys", "--store", f"{store}/energy.db", "--store-batch", "1")
        d.wait_ticks(2)
        fake.advance("package-0", 12_345_678)  # 12.346 J, exactly
        d.wait_ticks(2)
        deadline = time.time() + 10
        while d.get("/api/v1/now")["host"]["joules_total"] is None:
            assert time.time() < deadline, d.get("/api/v1/info")["store"]
            time.sleep(0.1)
        out = energy("status", socket=d.socket).stdout
        assert "Host total since the long-term record began: 12.346 J (measured)" in out
    finally:
        fake.close()
        shutil.rmtree(store, ignore_errors=True)
