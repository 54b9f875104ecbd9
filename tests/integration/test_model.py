"""The CPU model on a fake /proc/stat: watts = idle + (max - idle) * utilisation, estimated."""

import time

from emulators.powercap import write_proc_stat

# The model integrates its power over the time between its own reads; the history stamps a
# sample just after the reads. The difference (microseconds; a few ms when the sampler is
# preempted in between on a loaded machine, 5 ms per end as SKEW_S in test_powercap.py) is the
# only error: over a 1 s window at most 1 % of the power. The wrong readings of /proc/stat
# named below are 6 % off or more.
REL = 2 * 0.005 / 1.0


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


def test_model_counts_every_busy_column(tmp_path, start_energyd):
    """docs/model.md: busy = user + nice + system + irq + softirq + steal, idle = idle +
    iowait, guest already inside user. Each 10 ms the emulated /proc/stat gains 100 jiffies:
    user 10 (of which guest 4), nice 5, system 10, irq 5, softirq 5, steal 5 (busy 40) and
    idle 40, iowait 20 (idle 60): utilisation 40 %, 10 + 40 x 0.4 = 26 W. Counting iowait as
    busy gives 34 W, counting guest again 27.6 W, user alone 14 W, leaving out steal 24 W."""
    proc = tmp_path / "proc"
    cols = {c: 0 for c in ("nice", "system", "iowait", "irq", "softirq", "steal", "guest")}
    busy = idle = 0
    write_proc_stat(proc, busy, idle, columns=cols)
    d = start_energyd(None, "--model-idle-watts", "10", "--model-max-watts", "50",
                      proc_root=proc)
    end = time.time() + 2.0
    while time.time() < end:
        busy += 10  # user, guest included
        idle += 40
        for c, n in (("nice", 5), ("system", 10), ("irq", 5), ("softirq", 5), ("steal", 5),
                     ("iowait", 20), ("guest", 4)):
            cols[c] += n
        write_proc_stat(proc, busy, idle, columns=cols)
        time.sleep(0.01)
    now = d.get("/api/v1/now")
    assert abs(now["channels"]["model:cpu"]["watts"] - 26.0) <= 26.0 * REL, now
    t1 = now["time"]
    e = d.get(f"/api/v1/energy?from={t1 - 1.0}&to={t1}")
    assert abs(e["host"]["joules"] - 26.0) <= 26.0 * REL
