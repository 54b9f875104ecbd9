"""energyd's NVML family against the stub libnvidia-ml.so.1 built by the test build
(tests/emulators/nvml_stub.c, driven by tests/emulators/nvml.py).

GPU 0 has the energy counter (Volta and newer): its joules are checked exactly, from the
millijoule values the test sets. GPU 1 answers NVML_ERROR_NOT_SUPPORTED for it and is integrated
from nvmlDeviceGetPowerUsage; at a constant power P its energy over a window is P * duration
within RATE_BOUND_S * P (each end's sample time lies at most a few ms from its read: 20 ms per
end allowed on this shared machine).
"""

import time

from conftest import BUILD
from emulators import nvml, powercap
from test_hwmon_battery import assert_trapezoid, power_step_window

RATE_BOUND_S = 0.04


def uj(joules):
    return round(joules * 1e6)


def two_gpus(tmp_path):
    return nvml.FakeNvml(tmp_path / "nvml", [
        {"name": "NVIDIA A100-SXM4-40GB", "energy_mj": 123_456_789, "power_mw": 250_000,
         "limit_mw": 400_000},
        {"name": "Tesla P100-PCIE-16GB", "energy_mj": None, "power_mw": 75_500,
         "limit_mw": 250_000},
    ])


def wait_status(d, cid, status, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        ch = {c["id"]: c for c in d.get("/api/v1/sources")["channels"]}[cid]
        if ch["status"] == status:
            return ch
        time.sleep(0.05)
    raise AssertionError(f"{cid} never {status}: {ch}")


def test_two_gpus_counter_and_power(tmp_path, start_energyd):
    fake = two_gpus(tmp_path)
    fake_rapl = powercap.server(tmp_path / "sys")
    d = start_energyd(tmp_path / "sys", "--nvml-lib", str(nvml.stub_library(BUILD)),
                      env=fake.env)
    src = d.get("/api/v1/sources")
    chans = {c["id"]: c for c in src["channels"]}
    assert chans["nvml:gpu-0"]["label"] == "NVIDIA A100-SXM4-40GB (NVML)"
    assert chans["nvml:gpu-0"]["kind"] == "gpu" and chans["nvml:gpu-0"]["measured"]
    assert "energy counter" in chans["nvml:gpu-0"]["description"]
    assert "limit 400.0 W" in chans["nvml:gpu-0"]["description"]
    assert "GPU-5eb1c0de" in chans["nvml:gpu-0"]["description"]
    assert "nvmlDeviceGetPowerUsage" in chans["nvml:gpu-1"]["description"]
    fam = {f["name"]: f for f in src["families"]}
    assert fam["nvml"]["status"] == "found" and "2 GPU(s)" in fam["nvml"]["detail"]
    # The host total adds discrete GPUs to the packages and dram.
    assert src["host"]["coverage"] == ["rapl:package-0", "rapl:dram-0", "rapl:package-1",
                                       "rapl:dram-1", "nvml:gpu-0", "nvml:gpu-1"]
    assert src["host"]["rule"] == "CPU packages + dram + GPUs"
    assert fake.calls() == ["init"]  # initialised once

    d.wait_ticks(2)
    added_mj = 0
    for step_mj in (1_000, 37_123, 1):
        added_mj += step_mj
        fake.set(0, "energy_mj", 123_456_789 + added_mj)
        now = d.wait_ticks(2)
        assert uj(now["channels"]["nvml:gpu-0"]["joules"]) == added_mj * 1000
    time.sleep(1.2)
    t1 = d.get("/api/v1/now")["time"]
    e = d.get(f"/api/v1/energy?from={t1 - 1.0:.6f}&to={t1:.6f}")
    assert abs(e["channels"]["nvml:gpu-1"]["joules"] - 75.5) <= 75.5 * RATE_BOUND_S
    # A step from 75.5 W to 250 W inside a window: the trapezoid over energyd's samples of
    # what the stub reported (test_hwmon_battery.power_step_window), not rectangles.
    ts = power_step_window(d, lambda: fake.set(1, "power_mw", 250_000))
    assert_trapezoid(d, "nvml:gpu-1", fake.log, "gpu1/power_mw", ts, 1e-3)
    assert d.stop() == 0
    assert fake.calls() == ["init", "shutdown"]  # shut down once, on exit
    fake.close()
    fake_rapl.close()


def test_gpu_lost_degrades_and_recovers(tmp_path, start_energyd):
    fake = two_gpus(tmp_path)
    d = start_energyd(tmp_path / "sys", "--nvml-lib", str(nvml.stub_library(BUILD)),
                      env=fake.env)
    d.wait_ticks(2)
    fake.set(0, "energy_mj", 123_456_789 + 5_000)
    held = d.wait_ticks(2)["channels"]["nvml:gpu-0"]["joules"]
    assert uj(held) == 5_000_000
    fake.set(0, "error", nvml.NVML_ERROR_GPU_IS_LOST)
    fake.set(0, "energy_mj", 123_456_789 + 6_000)  # not visible while the GPU is lost
    ch = wait_status(d, "nvml:gpu-0", "degraded")
    assert ch["error"] == ("nvmlDeviceGetTotalEnergyConsumption (GPU 0, NVIDIA "
                           "A100-SXM4-40GB): GPU is lost")
    assert d.get("/api/v1/now")["channels"]["nvml:gpu-0"]["joules"] == held
    # The other GPU keeps going.
    assert {c["id"]: c for c in d.get("/api/v1/sources")["channels"]}["nvml:gpu-1"]["status"] \
        == "ok"
    fake.set(0, "error", 0)
    wait_status(d, "nvml:gpu-0", "ok")
    now = d.wait_ticks(2)
    # Counted from the last good reading: the 1 J added meanwhile, no more, no less.
    assert uj(now["channels"]["nvml:gpu-0"]["joules"]) == 6_000_000
    fake.close()


def test_nvml_init_failure_is_explained(tmp_path, start_energyd):
    fake = two_gpus(tmp_path)
    (fake.dir / "init_error").write_text("9\n")  # NVML_ERROR_DRIVER_NOT_LOADED
    d = start_energyd(tmp_path / "sys", "--nvml-lib", str(nvml.stub_library(BUILD)),
                      env=fake.env)
    fam = {f["name"]: f for f in d.get("/api/v1/sources")["families"]}
    assert fam["nvml"]["status"] == "absent"
    assert "Driver Not Loaded" in fam["nvml"]["detail"]
    assert "load the nvidia kernel module" in fam["nvml"]["detail"]
    fake.close()
