"""The CPU model on a fake /proc/stat: watts = idle + (max - idle) * utilisation, estimated."""

import time

from emulators.powercap import write_proc_stat

# The model integrates its power over the time between its own reads; the history stamps a
# sample just after the reads. The difference (microseconds, jitter up to ~1 ms on a loaded
# machine) is the only error: over a 1 s window that is at most 0.1 % of the power.
REL = 1e-3


def test_model_follows_utilisation(tmp_path, start_energyd):
    proc = tmp_path / "proc"
    write_proc_stat(proc, busy=1000, idle=9000)
    d = start_energyd(None, "--model-idle-watts", "10", "--model-max-watts", "50",
                      proc_root=proc)
    src = d.get("/api/v1/sources")
    assert [c["id"] for c in src["channels"]] == ["model:cpu"]
    ch = src["channels"][0]
    assert ch["measured"] is False and ch["kind"] == "model"
    assert src["host"]["coverage"] == ["model:cpu"] and src["host"]["measured"] is False
    fam = {f["name"]: f for f in src["families"]}
    assert fam["powercap"]["status"] == "absent" and "modprobe" in fam["powercap"]["detail"]

    # The counters do not move: utilisation 0, the model says idle power exactly.
    time.sleep(1.2)
    now = d.get("/api/v1/now")
    assert abs(now["channels"]["model:cpu"]["watts"] - 10.0) <= 10.0 * REL
    assert now["channels"]["model:cpu"]["measured"] is False
    assert now["host"]["measured"] is False

    # 50 % busy from now on: 30 W. Advance the jiffies steadily, 100 per 10 ms, half busy.
    busy, idle = 1000, 9000
    end = time.time() + 2.0
    while time.time() < end:
        busy += 50
        idle += 50
        write_proc_stat(proc, busy, idle)
        time.sleep(0.01)
    now = d.get("/api/v1/now")
    assert abs(now["channels"]["model:cpu"]["watts"] - 30.0) <= 30.0 * REL
    t1 = now["time"]
    e = d.get(f"/api/v1/energy?from={t1 - 1.0}&to={t1}")
    assert abs(e["host"]["joules"] - 30.0) <= 30.0 * REL
    assert e["host"]["measured"] is False


def test_model_defaults_scale_with_cpus(tmp_path, start_energyd):
    proc = tmp_path / "proc"
    write_proc_stat(proc, busy=0, idle=100, ncpu=8)
    d = start_energyd(None, proc_root=proc)
    time.sleep(1.2)
    now = d.get("/api/v1/now")
    assert abs(now["channels"]["model:cpu"]["watts"] - 8 * 0.74) <= 8 * 0.74 * REL
    assert "Cloud Carbon Footprint" in d.get("/api/v1/sources")["families"][-1]["detail"]
