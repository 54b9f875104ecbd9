"""energyd's perf power PMU family.

The power PMU cannot be emulated in a fake sysfs tree: perf_event_open goes to the kernel, which
only knows its real PMUs. So: (1) a fake tree whose power PMU the kernel refuses shows the
fallback to powercap, with the reason; (2) on a machine whose kernel exposes the RAPL PMU and
lets the test open it, the real energyd reads it and powercap skips the domains perf took;
elsewhere that test is skipped with the reason.
"""

import os
import time

import pytest

from emulators import powercap

POWER_PMU = "/sys/bus/event_source/devices/power"


def fake_power_pmu(root, pmu_type=2147483000):
    base = os.path.join(str(root), "bus/event_source/devices/power")
    os.makedirs(os.path.join(base, "events"))
    with open(os.path.join(base, "type"), "w") as f:
        f.write(f"{pmu_type}\n")
    for event, config in (("energy-pkg", 2), ("energy-ram", 3)):
        for suffix, text in (("", f"event=0x{config:02x}"),
                             (".scale", "2.3283064365386962890625e-10"), (".unit", "Joules")):
            with open(os.path.join(base, "events", event + suffix), "w") as f:
                f.write(text + "\n")
    topo = os.path.join(str(root), "devices/system/cpu/cpu0/topology")
    os.makedirs(topo)
    for name in ("physical_package_id", "core_id"):
        with open(os.path.join(topo, name), "w") as f:
            f.write("0\n")


def test_refused_pmu_falls_back_to_powercap(tmp_path, start_energyd):
    fake = powercap.server(tmp_path / "sys")
    fake_power_pmu(tmp_path / "sys")  # a type number no kernel has
    d = start_energyd(tmp_path / "sys")
    src = d.get("/api/v1/sources")
    fam = {f["name"]: f for f in src["families"]}
    assert fam["perf"]["status"] in ("error", "denied")
    assert "perf_event_open(power/energy-pkg, cpu 0)" in fam["perf"]["detail"]
    assert fam["powercap"]["status"] == "found"
    ids = [c["id"] for c in src["channels"]]
    assert ids == ["rapl:package-0", "rapl:dram-0", "rapl:package-1", "rapl:dram-1"]
    assert {c["family"] for c in src["channels"]} == {"powercap"}
    fake.close()


def test_real_power_pmu_preferred_over_powercap(tmp_path, start_energyd):
    if not os.path.exists(os.path.join(POWER_PMU, "type")):
        pytest.skip("this kernel has no RAPL perf PMU (virtual machine or CPU without RAPL): "
                    "the perf family is covered by the fallback test only")
    d = start_energyd("/sys", proc_root="/proc")
    src = d.get("/api/v1/sources")
    fam = {f["name"]: f for f in src["families"]}
    if fam["perf"]["status"] != "found":
        pytest.skip(f"the kernel does not let the test open the power PMU: "
                    f"{fam['perf']['detail']}")
    rapl = [c for c in src["channels"] if c["id"].startswith("rapl:")]
    ids = [c["id"] for c in rapl]
    assert len(ids) == len(set(ids))  # no domain twice
    perf_ids = {c["id"] for c in rapl if c["family"] == "perf"}
    assert "rapl:package-0" in perf_ids
    # powercap, when present, only adds domains perf does not have.
    assert not perf_ids & {c["id"] for c in rapl if c["family"] == "powercap"}
    before = d.wait_ticks(2)["channels"]["rapl:package-0"]["joules"]
    time.sleep(0.5)
    after = d.wait_ticks(2)["channels"]["rapl:package-0"]["joules"]
    assert after > before  # a CPU package always draws some power
