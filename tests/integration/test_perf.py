"""energyd's perf power PMU family.

perf_event_open goes to the kernel, which only knows its real PMUs, so energyd runs under
tests/emulators/perf_shim.c, which plays the kernel's RAPL PMU (arch/x86/events/rapl.c) for the
fake PMU that tests/emulators/perf.py describes in sysfs. Checked: the counts times the PMU's
scale to the microjoule, and the same hardware counts read through powercap by a second energyd
over the same window. Without the shim the kernel refuses the fake PMU: energyd falls back to
powercap with the reason. A PMU whose counts stand still after opening (as in some virtual
machines) is not used. On a machine whose kernel exposes a RAPL PMU that counts, a last test
reads the real one (skipped elsewhere, with the reason).

The emulated counts move only when a test advances them: the tests that check them exactly
turn energyd's check that the PMU counts off (--perf-probe 0); the tests of that check set it.
"""

import os
import subprocess
import threading
import time

import pytest

from conftest import BUILD, ENERGYD
from emulators import perf, powercap

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


def uj(joules):
    return round(joules * 1e6)


def test_perf_counts_times_scale_through_the_shim(tmp_path, start_energyd):
    """Two packages with pkg and ram events: energyd's joules are the counts accumulated since
    it opened the events times 2^-32 J, to the microjoule (energyd converts the whole count:
    floor, plus at most 1 uJ of long double rounding), and powercap, also present, adds
    nothing perf already reads."""
    pc = powercap.server(tmp_path / "sys")
    fake = perf.FakePerfRapl(tmp_path / "sys", tmp_path / "perf",
                             topology=[(0, 0), (0, 1), (1, 0), (1, 1)])
    d = start_energyd(tmp_path / "sys", "--perf-probe", "0", env=fake.shim_env(BUILD, ENERGYD))
    src = d.get("/api/v1/sources")
    fam = {f["name"]: f for f in src["families"]}
    assert fam["perf"]["status"] == "found", fam["perf"]
    assert f"type {perf.FAKE_TYPE}" in fam["perf"]["detail"]
    chans = {c["id"]: c for c in src["channels"]}
    assert list(chans) == ["rapl:package-0", "rapl:package-1", "rapl:dram-0", "rapl:dram-1"]
    assert {c["family"] for c in chans.values()} == {"perf"}
    assert "power/energy-pkg on cpu 2" in chans["rapl:package-1"]["description"]
    d.wait_ticks(2)
    # Hardware counts in each MSR's unit: 2^-14 J for packages, 2^-16 J for Haswell-EP DRAM.
    steps = [{(0, "energy-pkg", 14): 40 << 14, (1, "energy-pkg", 14): 12345,
              (0, "energy-ram", 16): 6 << 16, (1, "energy-ram", 16): 1},
             {(0, "energy-pkg", 14): 1, (1, "energy-pkg", 14): 5_000_000,
              (0, "energy-ram", 16): 777, (1, "energy-ram", 16): 3 << 16}]
    ids = {"rapl:package-0": (0, "energy-pkg"), "rapl:package-1": (1, "energy-pkg"),
           "rapl:dram-0": (0, "energy-ram"), "rapl:dram-1": (1, "energy-ram")}
    for step in steps:
        for (pkg, ev, esu), hw in step.items():
            fake.advance(pkg, ev, hw, esu)
        now = d.wait_ticks(2)
        for cid, (pkg, ev) in ids.items():
            got = uj(now["channels"][cid]["joules"])
            assert abs(got - fake.expected_uj(pkg, ev)) <= 1, (cid, got, fake.expected_uj(pkg, ev))
    assert fake.joules(0, "energy-pkg") == 40 + 2**-14
    assert uj(now["host"]["joules"]) == pytest.approx(
        sum(fake.expected_uj(p, e) for p, e in ids.values()), abs=4)
    fake.close()
    pc.close()


def test_perf_and_powercap_agree_over_the_same_window(tmp_path, start_energyd):
    """One emulated package, read through perf by one energyd and through powercap by another,
    the hardware counter advancing between frozen reads. The kernel converts a powercap count
    with its integer unit in nanojoules (61035 nJ for 2^-14 J, rapl_check_unit_core) and perf
    with the exact 2^-32 J scale, so the two agree within 3 ppm (the unit's rounding, 2.6 ppm)
    plus 2 uJ of flooring; a wrong scale or unit in either path is off by far more."""
    pc = powercap.FakePowercap(tmp_path / "sys", [
        powercap.Zone("intel-rapl:0", "package-0", unit_nj=powercap.UNIT_2_14_NJ)])
    fake = perf.FakePerfRapl(tmp_path / "sys", tmp_path / "perf", topology=[(0, 0)],
                             events=("energy-pkg",))
    d_perf = start_energyd(tmp_path / "sys", "--perf-probe", "0",
                           env=fake.shim_env(BUILD, ENERGYD))
    d_powercap = start_energyd(tmp_path / "sys")
    assert d_perf.get("/api/v1/sources")["channels"][0]["family"] == "perf"
    assert d_powercap.get("/api/v1/sources")["channels"][0]["family"] == "powercap"
    d_perf.wait_ticks(2)
    d_powercap.wait_ticks(2)
    raw_total = 0
    for hw in (35 << 14, 123_457, 9 << 14):
        raw_total += hw
        fake.advance(0, "energy-pkg", hw, 14)
        pc.advance_counts("package-0", hw)  # energy_uj = floor(raw * 61035 / 1000)
        j_perf = d_perf.wait_ticks(2)["channels"]["rapl:package-0"]["joules"]
        j_powercap = d_powercap.wait_ticks(2)["channels"]["rapl:package-0"]["joules"]
        assert abs(j_perf - raw_total / 2**14) <= 1e-6
        assert abs(j_perf - j_powercap) <= 3e-6 * j_perf + 2e-6, (j_perf, j_powercap)
    fake.close()
    pc.close()


class Mover:
    """Advances the emulated package by one hardware count a millisecond, as a RAPL MSR moves,
    until stopped."""

    def __init__(self, fake):
        self.fake, self.stop_ev = fake, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_ev.wait(0.001):
            self.fake.advance(0, "energy-pkg", 1)

    def stop(self):
        self.stop_ev.set()
        self.thread.join()


@pytest.mark.parametrize("moving", [False, True])
def test_pmu_that_does_not_count_is_not_used(tmp_path, start_energyd, moving):
    """A PMU that lists and opens its events but whose counts stand still for --perf-probe
    after opening (0 J, as in some virtual machines) is not used: powercap, also present here,
    measures instead, and the perf family says why. The same PMU moving as RAPL does (a count a
    millisecond here) is used."""
    pc = powercap.FakePowercap(tmp_path / "sys", [powercap.Zone("intel-rapl:0", "package-0")])
    fake = perf.FakePerfRapl(tmp_path / "sys", tmp_path / "perf", topology=[(0, 0)],
                             events=("energy-pkg",))
    mover = Mover(fake) if moving else None
    try:
        d = start_energyd(tmp_path / "sys", "--perf-probe", "0.2",
                          env=fake.shim_env(BUILD, ENERGYD))
    finally:
        if mover:
            mover.stop()
    src = d.get("/api/v1/sources")
    fam = {f["name"]: f for f in src["families"]}
    family = {c["id"]: c["family"] for c in src["channels"]}
    if moving:
        assert fam["perf"]["status"] == "found", fam["perf"]
        assert family == {"rapl:package-0": "perf"}
    else:
        assert fam["perf"]["status"] == "absent", fam["perf"]
        assert (f"the perf power PMU (type {perf.FAKE_TYPE}) does not count: power/energy-pkg "
                f"stood still for 0.2 s after opening") in fam["perf"]["detail"]
        assert family == {"rapl:package-0": "powercap"}
        assert "source perf: absent: the perf power PMU" in d.log()
    fake.close()
    pc.close()


def test_perf_probe_option_is_checked(tmp_path):
    for bad, why in (("-1", "'-1' is not 0 or a positive number of seconds"),
                     ("soon", "'soon' is not 0 or a positive number of seconds"),
                     ("2", "--perf-probe 2: give 0 to 1 seconds")):
        proc = subprocess.run([str(ENERGYD), "--perf-probe", bad, "--listen",
                               f"unix:{tmp_path}/x.sock", "--state-dir", str(tmp_path / "st")],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2 and why in proc.stderr, (bad, proc.stderr)


# The channel name of each event the PMU may list (src/sources/perf_rapl.c): rapl:NAME-PACKAGE,
# or rapl:psys for the one platform counter.
EVENT_CHANNELS = {"energy-pkg": "package", "energy-cores": "core", "energy-gpu": "uncore",
                  "energy-ram": "dram", "energy-psys": "psys"}


def channel_name(cid: str) -> str:
    name = cid.removeprefix("rapl:")
    return name if name == "psys" else name.rsplit("-", 1)[0]


def test_real_power_pmu_preferred_over_powercap(tmp_path, start_energyd):
    if not os.path.exists(os.path.join(POWER_PMU, "type")):
        pytest.skip("this kernel has no RAPL perf PMU (virtual machine or CPU without RAPL): "
                    "the perf family is covered by the emulated tests only")
    d = start_energyd("/sys", proc_root="/proc")
    src = d.get("/api/v1/sources")
    fam = {f["name"]: f for f in src["families"]}
    if fam["perf"]["status"] != "found":
        pytest.skip(f"the kernel's power PMU is not used here: {fam['perf']['detail']}")
    rapl = [c for c in src["channels"] if c["id"].startswith("rapl:")]
    ids = [c["id"] for c in rapl]
    assert len(ids) == len(set(ids))  # no domain twice
    perf_ids = {c["id"] for c in rapl if c["family"] == "perf"}
    # Each event the PMU lists gives channels of its own name, and only those.
    listed = {e for e in os.listdir(os.path.join(POWER_PMU, "events")) if e in EVENT_CHANNELS}
    assert {channel_name(i) for i in perf_ids} == {EVENT_CHANNELS[e] for e in listed}, (
        perf_ids, listed)
    # powercap, when present, only adds domains perf does not have.
    assert not perf_ids & {c["id"] for c in rapl if c["family"] == "powercap"}
    # One counter at least moves (energyd checked that at start); a package always does.
    before = d.wait_ticks(2)["channels"]
    time.sleep(0.5)
    after = d.wait_ticks(2)["channels"]
    assert any(after[i]["joules"] > before[i]["joules"] for i in perf_ids), (before, after)
    for i in perf_ids & {"rapl:package-0"}:
        assert after[i]["joules"] > before[i]["joules"]
