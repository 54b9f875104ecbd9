"""energyd's hwmon and battery families on fake sysfs trees (tests/emulators/hwmon.py,
power_supply.py).

Energy counters (hwmon energyN_input) are checked exactly: the test sets the counter and energyd
must report the difference to the microjoule. Power sensors are integrated over time; at a
constant power P the energy over a window [t0, t1] is P * (t1 - t0) up to how far each end's
sample time lies from the moment its value was read: energyd stamps a tick after reading all
channels, a few ms at most even on this shared machine; we allow RATE_BOUND_S = 20 ms per end.

With a power step inside the window (power_step_window) the expected energy is the trapezoid
over energyd's sample times of the values the emulator wrote (its log), within 0.5 % (sample
stamps versus monotonic read times): a rectangle rule is off by half the step times a sample
interval, many times that.
"""

import time

from emulators.hwmon import FakeHwmon
from emulators.power_supply import FakeBattery

RATE_BOUND_S = 0.04  # two ends x 20 ms
STEP_REL = 0.005


def power_step_window(d, step, ticks=2):
    """Step the power right after a sample (so no sample reads it halfway), let energyd take
    `ticks` more samples; returns the sample times from the one before the step on."""
    t0 = d.wait_ticks(1)["time"]
    step()
    t1 = d.wait_ticks(ticks)["time"]
    ts = [t for t in d.get("/api/v1/history?seconds=10")["t"] if t0 <= t <= t1]
    assert ts[0] == t0 and len(ts) >= ticks + 1, ts
    return ts


def assert_trapezoid(d, cid, log, key, ts, scale):
    """energyd's energy over the samples ts against the trapezoid of what was written."""
    e = d.get(f"/api/v1/energy?from={ts[0]:.6f}&to={ts[-1]:.6f}")["channels"][cid]["joules"]
    trap, rect = log.trapezoid(key, ts, scale), log.rectangle(key, ts, scale)
    assert abs(trap - rect) > 4 * STEP_REL * trap  # the step makes the rules differ
    assert abs(e - trap) <= STEP_REL * trap, (cid, e, trap, rect)


def uj(joules):
    return round(joules * 1e6)


def window_joules(d, seconds):
    t1 = d.get("/api/v1/now")["time"]
    return d.get(f"/api/v1/energy?from={t1 - seconds:.6f}&to={t1:.6f}")


def test_hwmon_power_and_energy(tmp_path, start_energyd):
    hw = FakeHwmon(tmp_path / "sys")
    # A GPU with an averaged and an instantaneous power reading: the average is used.
    hw.add("amdgpu", {"power1_average": 45_000_000, "power1_input": 99_000_000,
                            "power1_label": "PPT"})
    # A device with an energy counter and a power file on the same rail: only the counter.
    acc = hw.add("amdgpu", {"energy1_input": 5_000_000, "power1_input": 1})
    hw.add("coretemp", {"temp1_input": 40000})  # no energy or power: ignored
    d = start_energyd(tmp_path / "sys")
    src = d.get("/api/v1/sources")
    chans = {c["id"]: c for c in src["channels"]}
    # The CPU model stands in for the CPU, which nothing here measures.
    assert list(chans) == ["hwmon:amdgpu-0", "hwmon:amdgpu-1", "model:cpu"]
    del chans["model:cpu"]
    assert chans["hwmon:amdgpu-0"]["label"] == "amdgpu PPT (hwmon)"
    assert "power1_average" in chans["hwmon:amdgpu-0"]["description"]
    assert "energy1_input" in chans["hwmon:amdgpu-1"]["description"]
    assert all(c["kind"] == "device" and c["measured"] for c in chans.values())
    # Not part of the host total (an amdgpu sensor may be inside the CPU package).
    assert not set(src["host"]["coverage"]) & set(chans)

    d.wait_ticks(2)
    total = 0
    for step in (1_000_000, 250_123, 7):
        total += step
        hw.set(acc, "energy1_input", 5_000_000 + total)
        now = d.wait_ticks(2)
        assert uj(now["channels"]["hwmon:amdgpu-1"]["joules"]) == total
    time.sleep(1.2)
    e = window_joules(d, 1.0)
    assert abs(e["channels"]["hwmon:amdgpu-0"]["joules"] - 45.0) <= 45.0 * RATE_BOUND_S
    # A step from 45 W to 120 W and back inside the window: trapezoid, not rectangles.
    gpu = "hwmon0"
    ts = power_step_window(d, lambda: hw.set(gpu, "power1_average", 120_000_000))
    assert_trapezoid(d, "hwmon:amdgpu-0", hw.log, f"{gpu}/power1_average", ts, 1e-6)
    ts = power_step_window(d, lambda: hw.set(gpu, "power1_average", 45_000_000))
    assert_trapezoid(d, "hwmon:amdgpu-0", hw.log, f"{gpu}/power1_average", ts, 1e-6)
    hw.close()


def test_battery_discharging_and_charging(tmp_path, start_energyd):
    # BAT0 reports power_now; BAT1 only current_now and voltage_now (negative current while
    # discharging, as some drivers report it).
    bat0 = FakeBattery(tmp_path / "sys", "BAT0", "Discharging", power_uw=15_000_000)
    bat1 = FakeBattery(tmp_path / "sys", "BAT1", "Discharging", current_ua=-1_500_000,
                       voltage_uv=11_400_000)
    d = start_energyd(tmp_path / "sys")
    src = d.get("/api/v1/sources")
    chans = {c["id"]: c for c in src["channels"]}
    assert list(chans)[:2] == ["battery:BAT0", "battery:BAT1"]
    assert chans["battery:BAT0"]["kind"] == "battery"
    assert "current_now x voltage_now" in chans["battery:BAT1"]["description"]
    time.sleep(1.3)
    e = window_joules(d, 1.0)
    assert abs(e["channels"]["battery:BAT0"]["joules"] - 15.0) <= 15.0 * RATE_BOUND_S
    assert abs(e["channels"]["battery:BAT1"]["joules"] - 17.1) <= 17.1 * RATE_BOUND_S

    # Plugged in: charging, then full. Power flows into the battery; nothing is counted.
    for status in ("Charging", "Full"):
        bat0.set("status", status)
        bat1.set("status", status)
        d.wait_ticks(3)  # past the tick that straddles the change
        before = d.get("/api/v1/now")["channels"]
        time.sleep(0.5)
        after = d.wait_ticks(1)["channels"]
        for cid in ("battery:BAT0", "battery:BAT1"):
            assert after[cid]["joules"] == before[cid]["joules"], (status, cid)
            if status == "Full":  # by now the 1 s power window is all after the change
                assert after[cid]["watts"] == 0.0
    # Unplugged again: counting resumes at the battery's power.
    bat0.set("status", "Discharging")
    bat0.set("power_now", 9_000_000)
    time.sleep(1.3)
    e = window_joules(d, 1.0)
    assert abs(e["channels"]["battery:BAT0"]["joules"] - 9.0) <= 9.0 * RATE_BOUND_S
    # Steps inside a window: 9 W to 30 W on power_now, 17.1 W to 5.7 W on current x voltage.
    bat1.set("status", "Discharging")
    d.wait_ticks(2)
    ts = power_step_window(d, lambda: (bat0.set("power_now", 30_000_000),
                                       bat1.set("current_now", -500_000)))
    assert_trapezoid(d, "battery:BAT0", bat0.log, "power_now", ts, 1e-6)
    assert_trapezoid(d, "battery:BAT1", bat1.log, "current_now", ts, -11.4e-6)
    bat0.set("power_now", 9_000_000)
    d.wait_ticks(2)
    # A garbage reading degrades the channel, keeps its counter, and it recovers.
    held = d.wait_ticks(1)["channels"]["battery:BAT0"]["joules"]
    bat0.set("power_now", "n/a")
    deadline = time.time() + 5
    while time.time() < deadline:
        ch = {c["id"]: c for c in d.get("/api/v1/sources")["channels"]}["battery:BAT0"]
        if ch["status"] == "degraded":
            break
        time.sleep(0.05)
    assert ch["status"] == "degraded" and "not a number" in ch["error"]
    stuck = d.get("/api/v1/now")["channels"]["battery:BAT0"]["joules"]
    assert held <= stuck <= held + 9.0 * 0.2
    bat0.set("power_now", 9_000_000)
    deadline = time.time() + 10
    while time.time() < deadline:
        ch = {c["id"]: c for c in d.get("/api/v1/sources")["channels"]}["battery:BAT0"]
        if ch["status"] == "ok":
            break
        time.sleep(0.05)
    assert ch["status"] == "ok" and ch["error"] is None
    bat0.close()
    bat1.close()
