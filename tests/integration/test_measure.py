"""Measuring code: `energy run` with repetitions, warm-ups, an idle baseline and statistics, and
the C API example, against a real energyd on emulated RAPL.

Emulated machine: one package (no psys), idle at IDLE_W. While the command under test holds the
marker file, the driver adds LOAD_W ("the command works"). So a run's energy is
IDLE_W x duration + LOAD_W x time the marker existed, and its active energy (minus the idle
baseline) is LOAD_W x marker time.

Expected energy: what the driver wrote (its log, tests/emulators/powercap.py), not the nominal
powers, which a late driver thread on a loaded machine does not deliver. `energy run` reports a
run's duration but not its start; the command prints the wall-clock times it created and removed
the marker, so the run started between (marker removed - duration) and (marker created): the
driver's energy over every such window is computed (written_range) and energyd's figure must lie
within that range, widened by 1 % and SKEW_S per end at the run's power (energyd reads the
counter, then stamps the sample). Counting only the load, or the idle power twice, is far out.
"""

import csv
import io
import json
import math
import os
import re
import statistics
import subprocess

import pytest

from conftest import BUILD, ENERGY
from emulators import powercap

IDLE_W = 10.0
LOAD_W = 30.0
END_S = 0.05    # per run end, at the run's power (the C example: no marker times)
SKEW_S = 0.005  # per end: counter read vs sample stamp


def written_range(fake, created, removed, duration):
    """(lo, hi) of the energy the driver wrote over [t, t + duration] for every start t with
    removed - duration <= t <= created (the run held the marker inside its window)."""
    return fake.energy_range(["package-0"], removed - duration, created, duration)


def near_written(joules, lo, hi, watts):
    slack = 0.01 * hi + 2 * watts * SKEW_S
    return lo - slack <= joules <= hi + slack


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
    yield d, marker, fake
    fake.close()


def energy_cli(*args, socket):
    env = dict(os.environ, ENERGYD_SOCKET=socket)
    return subprocess.run([str(ENERGY), *args], capture_output=True, text=True, env=env,
                          timeout=120)


# energyd gives the energy between two times by interpolating its counters linearly between the
# samples around each time (every 0.1 s here): exact where the power is constant between them,
# off by up to a quarter of LOAD_W x the sample gap where the load starts or stops inside that
# gap. So the command stays idle for QUIET_S after it starts and before it exits, and the load's
# edges never fall in the gaps around the run's ends.
QUIET_S = 0.25


def work_cmd(marker, seconds=0.4):
    # Hold the marker for `seconds`, QUIET_S after the start and before the end; print (to
    # stderr) the wall-clock times the marker was created and removed.
    return ["python3", "-c",
            f"import os,sys,time;m=sys.argv[1];time.sleep({QUIET_S});open(m,'w').close();"
            f"t=time.time();time.sleep({seconds});os.unlink(m);r=time.time();"
            f"time.sleep({QUIET_S});c=os.times();"
            "print(t,r,c.user+c.system,file=sys.stderr)", marker]


def marker_times(stderr):
    """[(created, removed)] from the commands' lines."""
    return [tuple(map(float, line.split()[:2])) for line in stderr.splitlines()
            if re.fullmatch(r"\d+\.\d+ \d+\.\d+ \d+(\.\d+)?", line)]


def command_cpu_s(stderr):
    """The CPU time (user + system) each command used, as it printed it."""
    return [float(line.split()[2]) for line in stderr.splitlines()
            if re.fullmatch(r"\d+\.\d+ \d+\.\d+ \d+(\.\d+)?", line)]


def printed_sd_error(values, digits=12):
    """How far the sample sd of `values` can be from that of the figures they were rounded
    from: `energy run --json` prints `digits` significant digits (half a unit in the last one
    each), and the sd moves by at most the sd of those errors, sqrt(n / (n - 1)) times the
    largest."""
    unit = max(0.5 * 10.0 ** (math.floor(math.log10(abs(v))) - (digits - 1)) for v in values)
    return unit * math.sqrt(len(values) / (len(values) - 1))


def test_run_repetitions_with_idle_baseline_json(machine):
    d, marker, fake = machine
    r = energy_cli("run", "-r", "5", "--warmup", "1", "--idle", "1", "--json", "--",
                   *work_cmd(marker), socket=d.socket)
    assert r.returncode == 0, r.stderr
    held = marker_times(r.stderr)  # 1 warm-up + 5 runs
    assert len(held) == 6
    out = json.loads(r.stdout)
    assert out["warmup"] == 1 and len(out["runs"]) == 5
    base = out["baseline"]
    assert 1.0 <= base["duration_s"] < 1.1
    # The baseline ran before the first command: idle power, 10 % (two 50 ms ends over 1 s).
    assert abs(base["host"]["watts"] - IDLE_W) <= IDLE_W * 2 * END_S / base["duration_s"]
    for run, (created, removed) in zip(out["runs"], held[1:]):
        dur = run["duration_s"]
        assert removed - created <= dur
        lo, hi = written_range(fake, created, removed, dur)
        assert near_written(run["host"]["joules"], lo, hi, IDLE_W + LOAD_W), (run, lo, hi)
        # Active: the run minus the baseline's power over the run's duration, exactly.
        assert run["host"]["active_joules"] == pytest.approx(
            run["host"]["joules"] - base["host"]["watts"] * dur, rel=1e-9, abs=1e-6)
        assert run["channels"]["rapl:package-0"]["measured"] is True
    s = out["summary"]
    joules = [run["host"]["joules"] for run in out["runs"]]
    assert s["runs"] == 5
    assert s["host"]["joules"]["mean"] == pytest.approx(statistics.mean(joules), rel=1e-9)
    # The summary is computed from the unrounded runs, the check here from the printed ones.
    sd, mean, err = statistics.stdev(joules), statistics.mean(joules), printed_sd_error(joules)
    assert abs(s["host"]["joules"]["sd"] - sd) <= err + 1e-9 * sd
    assert abs(s["host"]["joules"]["rel_sd"] - sd / mean) <= (err + 1e-9 * sd) / mean * 1.001
    active = [run["host"]["active_joules"] for run in out["runs"]]
    assert s["host"]["active_joules"]["mean"] == pytest.approx(statistics.mean(active), rel=1e-9)


def test_run_text_has_runs_mean_sd_and_baseline(machine):
    d, marker, fake = machine
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
    d, marker, fake = machine
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
    held = marker_times(r.stderr)
    assert len(held) == 3
    for row, (created, removed), cpu in zip(rows, held, command_cpu_s(r.stderr)):
        dur = float(row["duration_s"])
        assert row["exit_code"] == "0"
        # The command's own share (estimated, by CPU time) is a part of the host total; it also
        # holds the fork before exec and the interpreter's exit, which the command cannot count
        # itself, so its own CPU figure only shows it is small. The share against CPU time is
        # checked in test_attribution_cli.test_run_reports_the_commands_own_share.
        assert cpu < 0.3
        assert 0 <= float(row["command_joules"]) <= float(row["host_joules"])
        assert float(row["host_joules"]) == pytest.approx(float(row["rapl:package-0_joules"]))
        lo, hi = written_range(fake, created, removed, dur)
        assert near_written(float(row["host_joules"]), lo, hi, IDLE_W + LOAD_W), (row, lo, hi)


def test_run_stops_at_a_failing_run(machine):
    d, marker, fake = machine
    r = energy_cli("run", "-r", "4", "--json", "--", "sh", "-c", "exit 3", socket=d.socket)
    assert r.returncode == 3
    assert len(json.loads(r.stdout)["runs"]) == 1
    assert "run 1 exited 3: stopping" in r.stderr


@pytest.mark.parametrize("args", [["-r", "0"], ["-r", "x"], ["--idle", "-1"], ["--warmup", "-2"],
                                  ["--json", "--csv"], ["--delay-after", "nan"]])
def test_run_rejects_bad_options(machine, args):
    d, marker, fake = machine
    r = energy_cli("run", *args, "--", "true", socket=d.socket)
    assert r.returncode == 2 and r.stderr


def test_c_example_prints_profile_joules(machine):
    d, marker, fake = machine
    r = subprocess.run([str(BUILD / "measure"), f"unix:{d.socket}"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = [line.split() for line in r.stdout.splitlines()]
    dur = {tag: float(v) for tag, key, v in (x[:3] for x in lines if x[1] == "duration")}
    joules = {(x[0], x[1]): float(x[2]) for x in lines if x[1] != "duration"}
    assert set(dur) == {"sleep", "compute"}
    assert 1.0 <= dur["sleep"] < 1.2 and 0.5 <= dur["compute"] < 0.7
    for tag in ("sleep", "compute"):
        # Nothing holds the marker: idle power only. The example prints no times, so the
        # nominal power: 50 ms per end at IDLE_W (10 % of the 1 s sleep, 20 % of the 0.5 s
        # compute: the ends' timing, not the arithmetic).
        expect = IDLE_W * dur[tag]
        assert abs(joules[(tag, "rapl:package-0")] - expect) <= IDLE_W * 2 * END_S
        assert joules[(tag, "host")] == joules[(tag, "rapl:package-0")]
    assert any(x[:2] == ["sleep", "host"] and "measured" in x for x in lines)
