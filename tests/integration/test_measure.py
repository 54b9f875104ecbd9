"""Measuring code: `energy run` with repetitions, warm-ups, an idle baseline and statistics, and
the C API example, against a real energyd on emulated RAPL.

Emulated machine: one package (no psys), idle at IDLE_W. While the command under test holds the
marker file, the driver adds LOAD_W ("the command works"). So a run's energy is
IDLE_W x duration + LOAD_W x time the marker existed, and its active energy (minus the idle
baseline) is LOAD_W x marker time.

Bounds: run boundaries are matched to energyd's samples by time (50 ms per end at IDLE_W, as in
test_powercap), the driver sees the marker within its 2 ms period plus scheduling delay (allow
30 ms per edge at LOAD_W), and the marker time is measured by the command itself.
"""

import csv
import io
import json
import os
import re
import statistics
import subprocess

import pytest

from conftest import BUILD, ENERGY
from emulators import powercap

IDLE_W = 10.0
LOAD_W = 30.0
END_S = 0.05    # per run end, at the run's power
EDGE_S = 0.03   # per marker edge, at LOAD_W


def load_on_marker(marker):
    def step(fake, t):
        fake.zone("package-0").watts = IDLE_W + (LOAD_W if os.path.exists(marker) else 0.0)
    return step


@pytest.fixture
def machine(tmp_path, start_energyd):
    marker = str(tmp_path / "busy")
    fake = powercap.FakePowercap(str(tmp_path / "sys"), [
        powercap.Zone("intel-rapl:0", "package-0", IDLE_W)]).start(load_on_marker(marker))
    d = start_energyd(tmp_path / "sys")
    d.wait_ticks(3)
    yield d, marker
    fake.close()


def energy_cli(*args, socket):
    env = dict(os.environ, ENERGYD_SOCKET=socket)
    return subprocess.run([str(ENERGY), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def work_cmd(marker, seconds=0.4):
    # Hold the marker for `seconds`, measured by the command itself (printed to stderr).
    return ["python3", "-c",
            "import os,sys,time;m=sys.argv[1];open(m,'w').close();t=time.monotonic();"
            f"time.sleep({seconds});os.unlink(m);"
            "print(time.monotonic()-t,file=sys.stderr)", marker]


def test_run_repetitions_with_idle_baseline_json(machine):
    d, marker = machine
    r = energy_cli("run", "-r", "5", "--warmup", "1", "--idle", "1", "--json", "--",
                   *work_cmd(marker), socket=d.socket)
    assert r.returncode == 0, r.stderr
    held = [float(x) for x in r.stderr.split()]  # 1 warm-up + 5 runs
    assert len(held) == 6
    out = json.loads(r.stdout)
    assert out["warmup"] == 1 and len(out["runs"]) == 5
    base = out["baseline"]
    assert 1.0 <= base["duration_s"] < 1.1
    assert abs(base["host"]["watts"] - IDLE_W) <= IDLE_W * 2 * END_S / base["duration_s"]
    for run, t_load in zip(out["runs"], held[1:]):
        dur = run["duration_s"]
        assert t_load <= dur
        expect = IDLE_W * dur + LOAD_W * t_load
        bound = IDLE_W * 2 * END_S + LOAD_W * 2 * EDGE_S
        assert abs(run["host"]["joules"] - expect) <= bound
        assert abs(run["host"]["active_joules"] - LOAD_W * t_load) <= bound + \
            abs(base["host"]["watts"] - IDLE_W) * dur
        assert run["channels"]["rapl:package-0"]["measured"] is True
    s = out["summary"]
    joules = [run["host"]["joules"] for run in out["runs"]]
    assert s["runs"] == 5
    assert s["host"]["joules"]["mean"] == pytest.approx(statistics.mean(joules), rel=1e-9)
    assert s["host"]["joules"]["sd"] == pytest.approx(statistics.stdev(joules), rel=1e-9)
    assert s["host"]["joules"]["rel_sd"] == pytest.approx(
        statistics.stdev(joules) / statistics.mean(joules), rel=1e-9)
    active = [run["host"]["active_joules"] for run in out["runs"]]
    assert s["host"]["active_joules"]["mean"] == pytest.approx(statistics.mean(active), rel=1e-9)


def test_run_text_has_runs_mean_sd_and_baseline(machine):
    d, marker = machine
    r = energy_cli("run", "-r", "5", "--idle", "1", "--", *work_cmd(marker, 0.1),
                   socket=d.socket)
    assert r.returncode == 0, r.stderr
    text = r.stderr
    assert "Runs:      5 measured" in text
    assert "Idle:" in text and "baseline" in text
    rows = [line for line in text.splitlines() if re.match(r"^\d+\s+\d+\.\d+ s\s+\S+ m?J$", line)]
    assert [row.split()[0] for row in rows] == ["1", "2", "3", "4", "5"]
    host = [line for line in text.splitlines() if line.startswith("host total")][0]
    assert "±" in host and "%" in host and "measured (rapl:package-0)" in host
    assert sum(1 for line in text.splitlines() if line.startswith("  active")) == 2


def test_run_csv_one_row_per_run(machine, tmp_path):
    d, marker = machine
    out = tmp_path / "runs.csv"
    r = energy_cli("run", "-r", "3", "--idle", "0.5", "--csv", "-o", str(out), "--",
                   *work_cmd(marker, 0.1), socket=d.socket)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [row["run"] for row in rows] == ["1", "2", "3"]
    assert list(rows[0]) == ["run", "duration_s", "exit_code", "host_joules",
                             "host_active_joules", "rapl:package-0_joules",
                             "rapl:package-0_active_joules", "command_joules",
                             "host_emissions_g"]
    for row in rows:
        dur = float(row["duration_s"])
        assert row["exit_code"] == "0"
        # The command's own share (estimated): a part of the host total.
        assert 0 <= float(row["command_joules"]) <= float(row["host_joules"])
        assert float(row["host_joules"]) == pytest.approx(float(row["rapl:package-0_joules"]))
        assert abs(float(row["host_joules"]) - IDLE_W * dur - LOAD_W * 0.1) <= \
            IDLE_W * 2 * END_S + LOAD_W * (2 * EDGE_S + 0.05)


def test_run_stops_at_a_failing_run(machine):
    d, marker = machine
    r = energy_cli("run", "-r", "4", "--json", "--", "sh", "-c", "exit 3", socket=d.socket)
    assert r.returncode == 3
    assert len(json.loads(r.stdout)["runs"]) == 1
    assert "run 1 exited 3: stopping" in r.stderr


@pytest.mark.parametrize("args", [["-r", "0"], ["-r", "x"], ["--idle", "-1"], ["--warmup", "-2"],
                                  ["--json", "--csv"], ["--delay-after", "nan"]])
def test_run_rejects_bad_options(machine, args):
    d, marker = machine
    r = energy_cli("run", *args, "--", "true", socket=d.socket)
    assert r.returncode == 2 and r.stderr


def test_c_example_prints_profile_joules(machine):
    d, marker = machine
    r = subprocess.run([str(BUILD / "measure"), f"unix:{d.socket}"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = [line.split() for line in r.stdout.splitlines()]
    dur = {tag: float(v) for tag, key, v in (x[:3] for x in lines if x[1] == "duration")}
    joules = {(x[0], x[1]): float(x[2]) for x in lines if x[1] != "duration"}
    assert set(dur) == {"sleep", "compute"}
    assert 1.0 <= dur["sleep"] < 1.2 and 0.5 <= dur["compute"] < 0.7
    for tag in ("sleep", "compute"):
        # Nothing holds the marker: idle power only.
        expect = IDLE_W * dur[tag]
        assert abs(joules[(tag, "rapl:package-0")] - expect) <= IDLE_W * 2 * END_S
        assert joules[(tag, "host")] == joules[(tag, "rapl:package-0")]
    assert any(x[:2] == ["sleep", "host"] and "measured" in x for x in lines)
