"""The CPU model calibrated against a measured channel (docs/model.md, "Calibration").

The emulated machine: 4 CPUs whose package draws IDLE_W + DYN_W x busy share, the busy share
changing every 1.7 s (so that the fit sees a spread of load and windows straddle the changes).
One driver steps FakeProc's /proc/stat and the powercap counter together, so that both files
describe the same step. energyd learns with RAPL, stops, and starts again with the model only,
on the same state directory; its estimate is compared with the truth computed from the busy
share FakeProc actually wrote.
"""

import json
import os
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import ENERGY, ENERGYD
from emulators import mcp39f511n
from emulators.powercap import FakePowercap, Zone, write_proc_stat
from emulators.procfs import FakeProc

IDLE_W, DYN_W, NCPU = 8.0, 30.0, 4
# Cloud Carbon Footprint's defaults for 4 CPUs (docs/model.md): what an uncalibrated model says.
DEFAULT_IDLE_W, DEFAULT_MAX_W = 0.74 * NCPU, 3.5 * NCPU
SHARES = (0.05, 0.9, 0.4, 0.7, 0.2, 0.95, 0.6)
STEP_S = 1.7
TOL = 0.10  # the acceptance bound: the calibrated model within 10 % of the truth
CPUFIT_MIN_WINDOWS = 20  # src/core/cpufit.h


def share_at(t: float, t_start: float) -> float:
    return SHARES[int((t - t_start) / STEP_S) % len(SHARES)]


class Machine:
    """FakeProc and FakePowercap stepped by one thread: each step first advances /proc/stat at
    the current busy rate, sets the package's watts for the same step, then picks the next
    rate."""

    def __init__(self, tmp_path, rapl: bool, on_watts=None):
        self.proc = FakeProc(tmp_path / "proc", ncpu=NCPU, busy_rate=0.0)
        self.t_start = time.time()
        self.proc.busy_rate = NCPU * 100 * share_at(self.t_start, self.t_start)
        self.fake = None
        self.thread = None
        self.stop_ev = threading.Event()
        self.on_watts = on_watts  # called with each step's package watts (a wall meter)
        if rapl:
            self.fake = FakePowercap(tmp_path / "sys", [Zone("intel-rapl:0", "package-0")],
                                     period_s=0.01)
            self.last = time.time()
            self.fake.start(on_step=self._step)
        else:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _advance(self, t: float) -> float:
        self.proc.step(t - self.last)
        self.last = t
        watts = IDLE_W + DYN_W * self.proc.busy_rate / (NCPU * 100)
        self.proc.busy_rate = NCPU * 100 * share_at(t, self.t_start)
        return watts

    def _step(self, fake, t) -> None:
        watts = self._advance(t)
        fake.zone("package-0").watts = watts
        if self.on_watts:
            self.on_watts(watts)

    def _run(self) -> None:
        self.last = time.time()
        while not self.stop_ev.is_set():
            time.sleep(0.01)
            watts = self._advance(time.time())
            if self.on_watts:
                self.on_watts(watts)

    def truth_joules(self, t0: float, t1: float) -> float:
        return (IDLE_W + DYN_W * self.proc.share_between(t0, t1)) * (t1 - t0)

    def close(self) -> None:
        if self.fake:
            self.fake.close()
        self.stop_ev.set()
        if self.thread:
            self.thread.join()
        self.proc.close()


def calibration(d) -> dict:
    """model_calibration of sources; info has it too (while fitting, a window may come in
    between the two requests: compare what cannot change)."""
    info = d.get("/api/v1/info")["model_calibration"]
    cal = d.get("/api/v1/sources")["model_calibration"]
    assert (info["state"], info["file"]) == (cal["state"], cal["file"]), (info, cal)
    return cal


# The log line that says where the calibration's readings of /proc/stat come from.
FED = "CPU model calibration: on the attribution's readings of /proc/stat"
OWN = "CPU model calibration: reading /proc/stat on its own"


def learn(tmp_path, start_energyd, state, *args, readings=FED, windows=25,
          timeout=120.0) -> dict:
    """Run energyd (with args) on the emulated RAPL until its fit has `windows` windows; stop
    it. readings: the log line energyd must write (FED, the default configuration, or OWN)."""
    m = Machine(tmp_path / "learn", rapl=True)
    try:
        d = start_energyd(m.fake.root, "--state-dir", str(state), *args,
                          proc_root=m.proc.root)
        cal = wait_for_fit(d, windows, timeout)
        assert d.stop() == 0
        assert readings in d.log() and (OWN if readings == FED else FED) not in d.log()
        # Started again on the same channels, energyd resumes from the stored sums.
        stored = json.loads((state / "cpu-model.json").read_text())
        d = start_energyd(m.fake.root, "--state-dir", str(state), proc_root=m.proc.root)
        again = calibration(d)
        assert again["state"] == "fitting" and again["fit"]["windows"] >= stored["windows"]
        assert again["detail"].startswith("calibrated on this machine")
        assert f"resuming the stored fit ({stored['windows']} windows)" in d.log()
        assert d.stop() == 0
    finally:
        m.close()
    return cal


def wait_for_fit(d, windows, timeout) -> dict:
    cal = calibration(d)
    assert cal["state"] == "fitting" and cal["fit"] is None, cal
    assert cal["detail"].startswith("learning")
    deadline = time.time() + timeout
    while time.time() < deadline:
        cal = calibration(d)
        if cal["fit"] and cal["fit"]["windows"] >= windows:
            return cal
        time.sleep(0.5)
    raise TimeoutError(f"no fit after {timeout} s: {cal}")


def check_rapl_fit(fit) -> None:
    assert fit["against"] == "rapl" and fit["fitted_to"] == ["rapl:package-0"]
    assert fit["measured"] is False
    assert fit["utilisation_min"] <= 0.1 and fit["utilisation_max"] >= 0.85, fit
    # The emulated package is exactly 8 W + 30 W x share; what is left is timing: each window's
    # mean watts divide the energy of the emulator's steps (10 ms apart, later on a loaded
    # machine) by energyd's clock, a few % of noise per window (rms_error_percent shows it,
    # about 4 % here). Over 25 windows that moves the idle end (extrapolated to no load) by
    # a few tenths of a watt, the full-load end less: 20 % and 10 %.
    assert abs(fit["idle_watts"] - IDLE_W) <= IDLE_W * 0.2, fit
    assert abs(fit["max_watts"] - (IDLE_W + DYN_W)) <= (IDLE_W + DYN_W) * TOL, fit
    assert fit["rms_error_percent"] < 15, fit


def test_calibrated_model_estimates_a_model_only_run(tmp_path, start_energyd):
    state = tmp_path / "state"
    cal = learn(tmp_path, start_energyd, state)
    fit = cal["fit"]
    check_rapl_fit(fit)
    stored = json.loads((state / "cpu-model.json").read_text())
    assert stored["version"] == 2 and stored["windows"] >= fit["windows"]
    assert "rest" not in stored and cal["rest"]["state"] == "none"  # no wall meter here
    assert not (state / "cpu-model.json.tmp").exists()
    # Readable by all: energyd started by a user falls back on the service's fit.
    assert (state / "cpu-model.json").stat().st_mode & 0o777 == 0o644

    # Model only (no RAPL), on the same state directory; beside it an energyd with a fresh
    # state directory, which can only use the defaults.
    m = Machine(tmp_path / "model", rapl=False)
    try:
        d = start_energyd(None, "--state-dir", str(state), proc_root=m.proc.root)
        plain = start_energyd(None, proc_root=m.proc.root)
        src = d.get("/api/v1/sources")
        assert [c["id"] for c in src["channels"]] == ["model:cpu"]
        ch = src["channels"][0]
        assert ch["measured"] is False
        day = stored["fitted_at"][:10]
        err = f"{stored['rms_error_percent']:.1f} %"
        assert f"calibrated on this machine on {day}, error {err}" in ch["description"], ch
        assert "calibrated" in ch["label"]
        fam = {f["name"]: f for f in src["families"]}
        assert f"calibrated on this machine on {day}" in fam["model"]["detail"]
        assert src["model_calibration"]["state"] == "used"
        assert src["model_calibration"]["fit"]["idle_watts"] == pytest.approx(
            stored["idle_watts"])
        assert "calibrated on this machine" in d.log()
        assert calibration(plain)["state"] == "none"

        time.sleep(9.0)
        t1 = min(d.get("/api/v1/now")["time"], plain.get("/api/v1/now")["time"])
        t0 = t1 - 8.0
        truth = m.truth_joules(t0, t1)
        e = d.get(f"/api/v1/energy?from={t0:.6f}&to={t1:.6f}")
        e_plain = plain.get(f"/api/v1/energy?from={t0:.6f}&to={t1:.6f}")
    finally:
        m.close()
    assert e["host"]["measured"] is False and e["from"] == pytest.approx(t0, abs=1e-3)
    assert abs(e["host"]["joules"] - truth) <= truth * TOL, (e["host"], truth)
    # The calibration is what made the difference: the defaults are far off this machine.
    assert abs(e_plain["host"]["joules"] - truth) > truth * TOL, (e_plain["host"], truth)


def test_fit_on_its_own_readings_when_attribution_batches_are_longer(tmp_path, start_energyd):
    """Attribution batches longer than a window (2 s): the calibration reads /proc/stat itself,
    on a thread of its own, and fits as well as on the attribution's readings (the default,
    the test above)."""
    state = tmp_path / "state"
    cal = learn(tmp_path, start_energyd, state, "--scan-interval", "2", "--attrib-batch", "2",
                readings=OWN)
    check_rapl_fit(cal["fit"])


def fit_file(windows, fitted_at="2026-11-30T10:00:00Z", against="rapl",
             fitted_to=("rapl:package-0",)) -> dict:
    """cpu-model.json for windows [(busy share, watts)], as docs/model.md describes it."""
    n = len(windows)
    su = sum(u for u, _ in windows)
    suu = sum(u * u for u, _ in windows)
    sp = sum(p for _, p in windows)
    sup = sum(u * p for u, p in windows)
    spp = sum(p * p for _, p in windows)
    b = (n * sup - su * sp) / (n * suu - su * su)
    a = (sp - b * su) / n
    rms = (sum((p - a - b * u) ** 2 for u, p in windows) / n) ** 0.5
    return {"version": 1, "idle_watts": a, "max_watts": a + b,
            "rms_error_percent": rms / (sp / n) * 100, "windows": n,
            "utilisation_min": min(u for u, _ in windows),
            "utilisation_max": max(u for u, _ in windows), "fitted_at": fitted_at,
            "against": against, "fitted_to": list(fitted_to), "measured": False,
            "sums": {"n": n, "su": su, "suu": suu, "sp": sp, "sup": sup, "spp": spp}}


# 6 W + 24 W x u, +-0.5 W alternating: idle 6, max 30, error 0.5 W on a mean of 18 W.
WINDOWS = [(k / 20, 6 + 24 * k / 20 + (0.5 if k % 2 else -0.5)) for k in range(21)]


def rest_file(windows, **cpu) -> dict:
    """A version 2 cpu-model.json: the CPU fit on WINDOWS and a rest fit on windows."""
    rest = {**fit_file(windows, against="rest", fitted_to=("mcp:ttyACM0:1",)),
            "subtracted": ["rapl:package-0", "rapl:dram-0"]}
    del rest["version"]
    return {**fit_file(WINDOWS), "version": 2, "rest": rest, **cpu}


REST_WINDOWS = [(u, p / 2 + 10) for u, p in WINDOWS]  # 13 W + 12 W x u


# /now's watts, the mean over the last second: the model integrates its power over the time
# between its own reads, the history stamps each sample just after them. On a loaded machine a
# preemption puts up to a few ms between the two (5 ms per end, as SKEW_S in test_powercap.py):
# 1 % of a 1 s window. The figures told apart here differ by far more (defaults 2.96 W, fits
# 6 W and 13 W, configured 10 W).
NOW_REL = 2 * 0.005 / 1.0


def model_only(tmp_path, start_energyd, state, *args, sysfs=None):
    """energyd with the model only on an idle /proc/stat (busy share 0: the model says its
    idle watts), on the given state directory (made by the test: no record there)."""
    proc = tmp_path / f"proc-{len(list(tmp_path.glob('proc-*')))}"
    write_proc_stat(proc, busy=100, idle=900, ncpu=NCPU)
    d = start_energyd(sysfs, "--state-dir", str(state), "--store", "off", *args, proc_root=proc)
    # `now` shows the mean power over the last second: wait until there is one (as
    # test_model.py does), and a few ticks more on a loaded machine.
    time.sleep(1.2)
    d.wait_ticks(3)
    return d, d.get("/api/v1/sources")


def test_stored_fit_is_used_and_configuration_overrides_it(tmp_path, start_energyd):
    state = tmp_path / "state"
    state.mkdir()
    f = fit_file(WINDOWS)
    assert f["idle_watts"] == pytest.approx(6.0, rel=0.05)
    (state / "cpu-model.json").write_text(json.dumps(f))
    d, src = model_only(tmp_path, start_energyd, state)
    ch = src["channels"][0]
    assert f"{f['idle_watts']:.2f} W + ({f['max_watts']:.2f} W" in ch["description"], ch
    err = f"{f['rms_error_percent']:.1f} %"
    assert f"calibrated on this machine on 2026-11-30, error {err}" in ch["description"]
    assert src["model_calibration"]["state"] == "used"
    assert src["model_calibration"]["fit"]["windows"] == 21
    now = d.get("/api/v1/now")["channels"]["model:cpu"]
    assert now["watts"] == pytest.approx(f["idle_watts"], rel=NOW_REL) and not now["measured"]
    env = {**os.environ, "ENERGYD_SOCKET": d.socket, "XDG_RUNTIME_DIR": "/nonexistent"}
    out = subprocess.run([str(ENERGY), "sources"], capture_output=True, text=True, env=env,
                         timeout=60, check=True).stdout
    assert "CPU model calibration: used: " in out
    assert "calibrated on this machine on 2026-11-30" in out

    # Both watts configured: the fit is not used, and the detail says why.
    d, src = model_only(tmp_path, start_energyd, state, "--model-idle-watts", "10",
                        "--model-max-watts", "50")
    assert src["model_calibration"]["state"] == "overridden"
    fam = {x["name"]: x for x in src["families"]}
    assert "configured; overrides the calibration" in fam["model"]["detail"]
    assert "10.00 W + (50.00 W" in src["channels"][0]["description"]
    watts = d.get("/api/v1/now")["channels"]["model:cpu"]["watts"]
    assert watts == pytest.approx(10, rel=NOW_REL)

    # One configured: that one wins, the other comes from the fit.
    d, src = model_only(tmp_path, start_energyd, state, "--model-max-watts", "50")
    assert src["model_calibration"]["state"] == "used"
    assert f"{f['idle_watts']:.2f} W + (50.00 W" in src["channels"][0]["description"]
    fam = {x["name"]: x for x in src["families"]}
    assert "max watts configured: overrides the fitted value" in fam["model"]["detail"]


@pytest.mark.parametrize("name,content", [
    ("garbage", "{not json"),
    ("empty", ""),
    ("tampered", json.dumps({**fit_file(WINDOWS), "idle_watts": 1.0})),
    ("too-few-windows", json.dumps(fit_file(WINDOWS[:10]))),
    ("bad-date", json.dumps(fit_file(WINDOWS, fitted_at="yesterday"))),
    ("negative-sum", json.dumps({**fit_file(WINDOWS),
                                 "sums": {**fit_file(WINDOWS)["sums"], "sp": -1.0}})),
    ("too-long", json.dumps(fit_file(WINDOWS)) + " " * 70000),
    ("version-3", json.dumps({**fit_file(WINDOWS), "version": 3})),
    ("rest-in-version-1", json.dumps(rest_file(REST_WINDOWS, version=1))),
    ("rest-tampered", json.dumps(rest_file(REST_WINDOWS) | {
        "rest": rest_file(REST_WINDOWS)["rest"] | {"max_watts": 40.0}})),
    ("rest-too-few-windows", json.dumps(rest_file(REST_WINDOWS[:12]))),
    ("rest-against-rapl", json.dumps(rest_file(REST_WINDOWS) | {
        "rest": rest_file(REST_WINDOWS)["rest"] | {"against": "rapl"}})),
    ("rest-not-subtracting", json.dumps(rest_file(REST_WINDOWS) | {
        "rest": {k: v for k, v in rest_file(REST_WINDOWS)["rest"].items()
                 if k != "subtracted"}})),
])
def test_bad_stored_fit_is_ignored(tmp_path, start_energyd, name, content):
    state = tmp_path / "state"
    state.mkdir()
    (state / "cpu-model.json").write_text(content)
    d, src = model_only(tmp_path, start_energyd, state)
    cal = src["model_calibration"]
    assert cal["state"] == "none" and cal["fit"] is None, cal
    assert cal["rest"]["state"] == "none" and cal["rest"]["fit"] is None, cal
    assert "cpu-model.json ignored" in cal["detail"]
    assert "cpu-model.json ignored" in cal["rest"]["detail"]
    if name.startswith("rest-") and name != "rest-in-version-1":
        assert "cpu-model.json ignored: rest: " in cal["detail"], cal  # the rest was wrong
    assert "cpu-model.json ignored" in d.log() and "uses its defaults" in d.log()
    assert "calibrated" not in src["channels"][0]["description"]
    watts = d.get("/api/v1/now")["channels"]["model:cpu"]["watts"]
    assert watts == pytest.approx(DEFAULT_IDLE_W, rel=NOW_REL)


def test_stored_rest_fit_is_shown(tmp_path, start_energyd):
    """A version 2 file: the CPU fit is used as from version 1, the rest fit is shown (stored,
    estimated); a version 2 file without a rest fit is read too."""
    state = tmp_path / "state"
    state.mkdir()
    f = rest_file(REST_WINDOWS)
    assert f["rest"]["idle_watts"] == pytest.approx(13.0, rel=0.05)
    (state / "cpu-model.json").write_text(json.dumps(f))
    d, src = model_only(tmp_path, start_energyd, state)
    cal = src["model_calibration"]
    assert cal["state"] == "used" and cal["fit"]["idle_watts"] == pytest.approx(f["idle_watts"])
    rest = cal["rest"]
    assert rest["state"] == "stored" and rest["fit"]["measured"] is False, rest
    for key in ("idle_watts", "max_watts", "rms_error_percent", "windows", "fitted_at",
                "fitted_to", "subtracted", "against"):
        assert rest["fit"][key] == pytest.approx(f["rest"][key]), key
    err = f"{f['rest']['rms_error_percent']:.1f} %"
    assert (f"calibrated on this machine on 2026-11-30, error {err} (fitted to mcp:ttyACM0:1 "
            f"- rapl:package-0 - rapl:dram-0 over 21 windows") in rest["detail"], rest
    assert d.get("/api/v1/info")["model_calibration"]["rest"] == rest
    env = {**os.environ, "ENERGYD_SOCKET": d.socket, "XDG_RUNTIME_DIR": "/nonexistent"}
    out = subprocess.run([str(ENERGY), "sources"], capture_output=True, text=True, env=env,
                         timeout=60, check=True).stdout
    assert f"Rest-of-machine model (estimated): stored: {rest['detail']}" in out, out

    del f["rest"]
    (state / "cpu-model.json").write_text(json.dumps(f))
    d, src = model_only(tmp_path, start_energyd, state)
    cal = src["model_calibration"]
    assert cal["state"] == "used" and cal["rest"]["state"] == "none", cal


@pytest.mark.parametrize("dram", [True, False])
def test_stored_rest_fit_runs_only_beside_the_channels_it_was_fitted_beside(
        tmp_path, start_energyd, dram):
    """model:rest runs only where the measured channels are the very ones the rest fit
    subtracted (rapl:package-0 and rapl:dram-0 here): without dram, the rest as fitted would
    leave dram out, so it is shown and not used. Where it runs it is a channel of its own,
    estimated; the host total stays the measured packages + dram (DESIGN.md §2), to the
    microjoule of what the emulator wrote."""
    state = tmp_path / "state"
    state.mkdir()
    f = rest_file(REST_WINDOWS)
    (state / "cpu-model.json").write_text(json.dumps(f))
    children = [Zone("intel-rapl:0:0", "dram", watts=3.0)] if dram else []
    fake = FakePowercap(tmp_path / "sys", [Zone("intel-rapl:0", "package-0", watts=10.0,
                                                children=children)])
    try:
        # The counters stand still while energyd takes its first readings (model_only waits
        # for ticks), then the driver runs and stops again before the last readings.
        d, src = model_only(tmp_path, start_energyd, state, sysfs=fake.root)
        fake.start()
        time.sleep(1.5)
        fake.stop()
        now = d.wait_ticks(3)
        wrote = {cid: fake.zone(key).total_uj for cid, key in
                 (("rapl:package-0", "intel-rapl:0"), ("rapl:dram-0", "intel-rapl:0:0"))
                 if dram or cid == "rapl:package-0"}
    finally:
        fake.close()
    rest = src["model_calibration"]["rest"]
    ids = [c["id"] for c in src["channels"]]
    assert src["host"]["coverage"] == list(wrote) and src["host"]["measured"] is True, src
    assert src["host"]["rule"] == ("CPU packages + dram" if dram else "CPU packages")
    assert now["host"]["coverage"] == list(wrote) and now["host"]["measured"] is True
    assert all(w > 1_000_000 for w in wrote.values()), wrote  # the driver ran
    assert round(now["host"]["joules"] * 1e6) == sum(wrote.values()), (now["host"], wrote)
    if dram:
        assert rest["state"] == "used", rest
        ch = {c["id"]: c for c in src["channels"]}["model:rest"]
        assert ch["kind"] == "rest" and ch["measured"] is False, ch
        assert "not part of the host total" in ch["description"], ch
        # /proc/stat does not move: busy share 0, the rest at its fitted idle watts.
        w = now["channels"]["model:rest"]
        assert w["watts"] == pytest.approx(f["rest"]["idle_watts"], rel=NOW_REL), w
        assert w["measured"] is False and w["joules"] > 0, w
    else:
        assert rest["state"] == "stored" and "model:rest" not in ids, (rest, ids)
        assert "not used: this start measures other channels than it subtracted" in \
            rest["detail"], rest


def test_model_fit_falls_back_on_another_file(tmp_path, start_energyd):
    """--model-fit FILE (by default, for energyd started by a user, the system service's
    /var/lib/energyd/cpu-model.json): read when the state directory holds no fit."""
    system = tmp_path / "system"
    system.mkdir()
    f = fit_file(WINDOWS)
    (system / "cpu-model.json").write_text(json.dumps(f))
    path = str(system / "cpu-model.json")
    own = tmp_path / "own"
    own.mkdir()
    d, src = model_only(tmp_path, start_energyd, own, "--model-fit", path)
    cal = src["model_calibration"]
    assert cal["state"] == "used" and cal["file"] == path, cal
    desc = src["channels"][0]["description"]
    assert "calibrated on this machine on 2026-11-30" in desc and f"read from {path}" in desc
    now = d.get("/api/v1/now")["channels"]["model:cpu"]
    assert now["watts"] == pytest.approx(f["idle_watts"], rel=NOW_REL)

    # The state directory's own fit comes first.
    (own / "cpu-model.json").write_text(json.dumps(fit_file([(u, p + 2) for u, p in WINDOWS])))
    d, src = model_only(tmp_path, start_energyd, own, "--model-fit", path)
    assert src["model_calibration"]["file"] == str(own / "cpu-model.json")
    assert src["model_calibration"]["fit"]["idle_watts"] == pytest.approx(f["idle_watts"] + 2)

    # A relative path is a configuration error (energyd works inside its state directory).
    r = subprocess.run([str(ENERGYD), "--model-fit", "cpu-model.json", "--listen",
                        f"unix:{tmp_path}/never.sock", "--state-dir", str(own)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "--model-fit 'cpu-model.json': expected an absolute path or off" in r.stderr


def test_fit_to_a_whole_machine_wall_meter(tmp_path, start_energyd):
    """Without RAPL, a wall meter declared for the whole machine is what the model learns."""
    devdir = tempfile.mkdtemp(prefix="energyd-mcp-")  # reachable after the drop (test_mcp)
    os.chmod(devdir, 0o755)
    sim = mcp39f511n.McpSimulator(os.path.join(devdir, "ttyACM0"), watts=(IDLE_W, 0.0))
    mcp39f511n.usb_sysfs(tmp_path / "sys", "ttyACM0")
    m = Machine(tmp_path / "wall", rapl=False, on_watts=lambda w: sim.set_watts(w, 0.0))
    state = tmp_path / "state"
    try:
        d = start_energyd(tmp_path / "sys", "--dev-root", devdir, "--host-meter",
                          "mcp:ttyACM0:1", "--state-dir", str(state), proc_root=m.proc.root)
        fit = wait_for_fit(d, CPUFIT_MIN_WINDOWS, 120.0)["fit"]
        assert d.stop() == 0
    finally:
        m.close()
        sim.close()
        for f in os.listdir(devdir):
            os.unlink(os.path.join(devdir, f))
        os.rmdir(devdir)
    assert fit["against"] == "wall" and fit["fitted_to"] == ["mcp:ttyACM0:1"], fit
    # The meter reports power (10 mW steps) that energyd integrates by the trapezoid between
    # its samples: each load change costs up to half a step times a sample interval.
    assert abs(fit["idle_watts"] - IDLE_W) <= IDLE_W * 0.2, fit
    assert abs(fit["max_watts"] - (IDLE_W + DYN_W)) <= (IDLE_W + DYN_W) * TOL, fit
    assert json.loads((state / "cpu-model.json").read_text())["against"] == "wall"


# The rest of the machine (fans, disks, board, power supply losses): its own idle and slope, so
# that a rest fit which kept the package in, or subtracted it twice, lands far off.
REST_IDLE_W, REST_DYN_W = 20.0, 10.0


def rest_watts(package_watts: float) -> float:
    """The rest's power in the step whose package draws package_watts (the same busy share)."""
    return REST_IDLE_W + REST_DYN_W * (package_watts - IDLE_W) / DYN_W


class WallMeter:
    """An MCP39F511N emulator (channel 1) plugged at devdir/ttyACM0, with its USB sysfs entry
    beside the powercap tree; removed on close."""

    def __init__(self, sysfs_root):
        self.devdir = tempfile.mkdtemp(prefix="energyd-mcp-")  # reachable after the drop
        os.chmod(self.devdir, 0o755)
        self.sim = mcp39f511n.McpSimulator(os.path.join(self.devdir, "ttyACM0"),
                                           watts=(IDLE_W + REST_IDLE_W, 0.0))
        mcp39f511n.usb_sysfs(sysfs_root, "ttyACM0")

    def whole_machine(self, package_watts: float) -> None:
        self.sim.set_watts(package_watts + rest_watts(package_watts), 0.0)

    def close(self) -> None:
        self.sim.close()
        for f in os.listdir(self.devdir):
            os.unlink(os.path.join(self.devdir, f))
        os.rmdir(self.devdir)


def wait_for_rest_fit(d, windows, timeout) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        cal = calibration(d)
        rest = cal["rest"]
        assert rest["state"] == "fitting", cal
        if rest["fit"] and rest["fit"]["windows"] >= windows and cal["fit"]:
            return cal
        time.sleep(0.5)
    raise TimeoutError(f"no rest fit after {timeout} s: {cal}")


def test_rest_of_machine_fit_with_a_wall_meter_and_rapl(tmp_path, start_energyd):
    """Wall meter and RAPL together: the packages get the CPU fit, the wall meter minus the
    packages the rest fit; both are stored, resumed, and shown after a start without the meter.
    """
    state = tmp_path / "state"
    wall = None
    m = Machine(tmp_path / "learn", rapl=True, on_watts=lambda w: wall and
                wall.whole_machine(w))
    try:
        wall = WallMeter(m.fake.root)
        args = ("--dev-root", wall.devdir, "--host-meter", "mcp:ttyACM0:1", "--state-dir",
                str(state))
        d = start_energyd(m.fake.root, *args, proc_root=m.proc.root)
        cal = calibration(d)
        assert cal["rest"]["state"] == "fitting" and cal["rest"]["fit"] is None, cal
        assert cal["rest"]["detail"].startswith("learning")
        cal = wait_for_rest_fit(d, 25, 150.0)
        assert d.stop() == 0
        stored = json.loads((state / "cpu-model.json").read_text())
        # Started again on the same channels: both fits resume from the stored sums.
        d = start_energyd(m.fake.root, *args, proc_root=m.proc.root)
        again = calibration(d)
        assert again["rest"]["fit"]["windows"] >= stored["rest"]["windows"], again
        assert again["rest"]["detail"].startswith("calibrated on this machine"), again
        log = d.log()
        assert d.stop() == 0
    finally:
        m.close()
        if wall:
            wall.close()
    assert (f"rest-of-machine model calibration: resuming the stored fit "
            f"({stored['rest']['windows']} windows)") in log

    cpu, rest = cal["fit"], cal["rest"]["fit"]
    assert cpu["against"] == "rapl" and cpu["fitted_to"] == ["rapl:package-0"], cpu
    assert rest["against"] == "rest" and rest["fitted_to"] == ["mcp:ttyACM0:1"], rest
    assert rest["subtracted"] == ["rapl:package-0"] and rest["measured"] is False, rest
    assert rest["utilisation_min"] <= 0.1 and rest["utilisation_max"] >= 0.85, rest
    # The rest is a difference: the package's timing noise (see above) plus the wall meter's
    # (power in 10 mW steps, integrated by the trapezoid between samples 0.1 s apart: a load
    # change costs up to half a step of up to 34 W times 0.1 s in its window). Over 25 windows
    # that moves either end by well under a watt; 2 W at idle (10 %) and 3 W at full load
    # (10 %). Not subtracting the package would give 28 W and 68 W, subtracting it twice 12 W
    # and -8 W.
    assert abs(rest["idle_watts"] - REST_IDLE_W) <= 2.0, rest
    assert abs(rest["max_watts"] - (REST_IDLE_W + REST_DYN_W)) <= 3.0, rest
    assert 0 < rest["rms_error_percent"] < 15, rest
    # The CPU fit is still the package's alone.
    assert abs(cpu["max_watts"] - (IDLE_W + DYN_W)) <= (IDLE_W + DYN_W) * TOL, cpu

    # The file: version 2, the rest beside the CPU fit, with its sums.
    assert stored["version"] == 2 and stored["against"] == "rapl"
    srest = stored["rest"]
    assert srest["against"] == "rest" and srest["subtracted"] == ["rapl:package-0"]
    assert srest["windows"] >= rest["windows"] and srest["sums"]["n"] == srest["windows"]
    n, su, suu = srest["sums"]["n"], srest["sums"]["su"], srest["sums"]["suu"]
    sp, sup = srest["sums"]["sp"], srest["sums"]["sup"]
    b = (n * sup - su * sp) / (n * suu - su * su)
    assert srest["idle_watts"] == pytest.approx((sp - b * su) / n, rel=1e-6), srest

    # RAPL without the meter: nothing to fit the rest to. The stored fit runs as model:rest,
    # a channel of its own (estimated) beside the host total, which stays the measured
    # package; the fit stays in the file the CPU fit rewrites.
    m = Machine(tmp_path / "rapl-only", rapl=True)
    try:
        d = start_energyd(m.fake.root, "--state-dir", str(state), proc_root=m.proc.root)
        cal = calibration(d)
        src = d.get("/api/v1/sources")
        time.sleep(9.0)
        t1 = d.get("/api/v1/now")["time"]
        t0 = t1 - 8.0
        e = d.get(f"/api/v1/energy?from={t0:.6f}&to={t1:.6f}")
        ts = d.get("/api/v1/history?seconds=20")["t"]
        # What RAPL wrote, taken at energyd's samples as it interpolates between them.
        package = m.fake.energy_between("package-0", t0, t1, ts)
        assert d.stop() == 0
    finally:
        m.close()
    assert cal["state"] == "fitting" and cal["rest"]["state"] == "used", cal
    shown = cal["rest"]["fit"]
    assert shown["idle_watts"] == pytest.approx(srest["idle_watts"], rel=1e-9), shown
    assert shown["measured"] is False
    day, err = srest["fitted_at"][:10], f"{srest['rms_error_percent']:.1f} %"
    note = (f"calibrated on this machine on {day}, error {err} (fitted to mcp:ttyACM0:1 - "
            f"rapl:package-0 over")
    assert note in cal["rest"]["detail"], cal["rest"]
    ch = {c["id"]: c for c in src["channels"]}["model:rest"]
    assert ch["kind"] == "rest" and ch["measured"] is False, ch
    assert note in ch["description"] and "calibrated here" in ch["label"], ch
    fam = {f["name"]: f for f in src["families"]}
    assert "model:rest estimates the rest of the machine" in fam["model"]["detail"], fam
    assert "not part of the host total" in ch["description"], ch
    # The host total is the measured package alone (DESIGN.md §2), nothing estimated in it.
    assert src["host"]["coverage"] == ["rapl:package-0"], src["host"]
    assert src["host"]["measured"] is True and src["host"]["rule"] == "CPU packages"
    assert e["host"]["measured"] is True and e["host"]["coverage"] == ["rapl:package-0"]
    assert e["host"]["joules"] == pytest.approx(e["channels"]["rapl:package-0"]["joules"],
                                                rel=1e-12), e
    # Against what the emulator wrote: 1 % plus 5 ms of skew per end (counter read vs sample
    # stamp) at the package's highest power, as in test_powercap.py.
    assert abs(e["host"]["joules"] - package) <= package * 0.01 + 2 * 0.005 * (IDLE_W + DYN_W)
    # model:rest beside it, estimated, against the emulated rest: what the wall meter would
    # have shown minus RAPL, rest_watts() of each step's package watts, i.e. over the interval
    # REST_IDLE_W x seconds + REST_DYN_W / DYN_W x (the package's joules - IDLE_W x seconds).
    # The fit is a few hundredths of a watt off and reads the busy share from /proc/stat where
    # the package's steps follow it: within TOL (10 %); a model:rest that kept the package in
    # would be 20-50 % high.
    seconds = t1 - t0
    rest_truth = REST_IDLE_W * seconds + REST_DYN_W / DYN_W * (package - IDLE_W * seconds)
    r = e["channels"]["model:rest"]
    assert r["measured"] is False, r
    assert abs(r["joules"] - rest_truth) <= rest_truth * TOL, (r, rest_truth)
    assert json.loads((state / "cpu-model.json").read_text())["rest"]["sums"] == srest["sums"]
