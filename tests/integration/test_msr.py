"""energyd's MSR RAPL family on fake MSR device files (tests/emulators/msr.py).

Exact checks: the fake counters only change when the test advances them by a known number of
counts, so after energyd has read them, each channel's joules must be floor(counts * 1e6 / 2^ESU)
microjoules, to the microjoule (energyd converts its running total of counts, not each delta).
"""

from conftest import BUILD, ENERGYD
from emulators import msr


def uj(joules):
    return round(joules * 1e6)


def run(start_energyd, tmp_path, *args, env=None):
    return start_energyd(tmp_path / "sys", "--dev-root", str(tmp_path / "dev"), *args,
                         proc_root=tmp_path / "proc", env=env)


def test_intel_two_packages_with_wrap(tmp_path, start_energyd):
    fake = msr.FakeMsr(tmp_path / "dev", tmp_path / "sys", tmp_path / "proc", "intel",
                       [(0, 0), (0, 1), (1, 0), (1, 1)])
    # Package 0 starts just below 2^32 so that the first advance wraps the 32-bit counter.
    fake.set_counter(0, "package", 0xFFFF_F000)
    fake.set_counter(0, "core", 1_000)
    fake.set_counter(0, "dram", 5)
    fake.set_counter(0, "psys", 77)
    fake.set_counter(2, "package", 123_456)
    fake.set_counter(2, "dram", 9)
    # PP1 (uncore) stays 0 everywhere: not implemented, no channel.
    d = run(start_energyd, tmp_path)
    src = d.get("/api/v1/sources")
    ids = [c["id"] for c in src["channels"]]
    assert ids == ["rapl:package-0", "rapl:core-0", "rapl:dram-0", "rapl:psys",
                   "rapl:package-1", "rapl:dram-1"], ids
    assert {c["family"] for c in src["channels"]} == {"msr"}
    fam = {f["name"]: f for f in src["families"]}
    assert fam["msr"]["status"] == "found" and "intel" in fam["msr"]["detail"]
    assert src["host"]["coverage"] == ["rapl:psys"]
    d.wait_ticks(2)

    steps = [
        {(0, "package"): 0x2000, (0, "core"): 700, (0, "dram"): 333, (0, "psys"): 50_000,
         (2, "package"): 16384, (2, "dram"): 1},
        {(0, "package"): 0x0100_0000, (0, "core"): 1, (0, "dram"): 16383, (0, "psys"): 3,
         (2, "package"): 12345, (2, "dram"): 0},
        {(0, "package"): 99, (0, "core"): 0x0080_0000, (0, "dram"): 0, (0, "psys"): 1,
         (2, "package"): 7, (2, "dram"): 2},
    ]
    for step in steps:
        for (cpu, dom), counts in step.items():
            fake.advance(cpu, dom, counts)
        now = d.wait_ticks(2)
        for cid, (cpu, dom) in {"rapl:package-0": (0, "package"), "rapl:core-0": (0, "core"),
                                "rapl:dram-0": (0, "dram"), "rapl:psys": (0, "psys"),
                                "rapl:package-1": (2, "package"),
                                "rapl:dram-1": (2, "dram")}.items():
            assert uj(now["channels"][cid]["joules"]) == \
                fake.expected_uj(fake.total(cpu, dom), dom), cid
    # The first step wrapped package 0 (0xFFFFF000 + 0x2000 > 2^32) and energyd kept counting
    # up. Steps stay below the 20 kW plausibility bound (at most ~1 kJ per 0.1 s tick).
    assert fake.read(0, fake.regs["package"]) < 0xFFFF_F000
    assert uj(now["host"]["joules"]) == fake.expected_uj(fake.total(0, "psys"))
    assert all(c["status"] == "ok" for c in d.get("/api/v1/sources")["channels"])
    fake.close()


def test_haswell_ep_dram_counts_its_fixed_unit(tmp_path, start_energyd):
    """On a Haswell-EP server the DRAM counter counts 2^-16 J while the unit register says
    2^-14 J (kernel: rapl_defaults_hsw_server). The emulated hardware adds a known energy to
    each domain in its own unit; energyd must report that energy for rapl:dram-N within 0.1 %
    (a single unit for every domain reads DRAM 4x too high), and exactly to the microjoule."""
    fake = msr.FakeMsr(tmp_path / "dev", tmp_path / "sys", tmp_path / "proc", "intel",
                       [(0, 0), (0, 1), (1, 0), (1, 1)], model=msr.HASWELL_X)
    assert fake.domain_esu("dram") == 16 and fake.domain_esu("package") == 14
    for cpu in (0, 2):
        fake.set_counter(cpu, "package", 1000 + cpu)
        fake.set_counter(cpu, "dram", 7 + cpu)
    d = run(start_energyd, tmp_path)
    src = d.get("/api/v1/sources")
    assert [c["id"] for c in src["channels"]] == ["rapl:package-0", "rapl:dram-0",
                                                 "rapl:package-1", "rapl:dram-1"]
    d.wait_ticks(2)
    # 40 J and 30 J on the packages, 6 J and 4.5 J on the dram domains, in each domain's unit.
    joules = {(0, "package"): 40.0, (0, "dram"): 6.0, (2, "package"): 30.0, (2, "dram"): 4.5}
    for (cpu, dom), j in joules.items():
        fake.advance(cpu, dom, int(j * 2 ** fake.domain_esu(dom)))
    now = d.wait_ticks(2)
    for cid, (cpu, dom) in {"rapl:package-0": (0, "package"), "rapl:dram-0": (0, "dram"),
                            "rapl:package-1": (2, "package"), "rapl:dram-1": (2, "dram")}.items():
        got = now["channels"][cid]["joules"]
        emulated = fake.joules(cpu, dom)
        assert emulated == joules[(cpu, dom)]
        assert abs(got - emulated) <= 0.001 * emulated, (cid, got, emulated)
        assert uj(got) == fake.expected_uj(fake.total(cpu, dom), dom), cid
    dram = {c["id"]: c for c in d.get("/api/v1/sources")["channels"]}["rapl:dram-0"]
    assert "unit 15.259 uJ fixed for this CPU model" in dram["description"], dram
    fake.close()


def test_client_model_dram_uses_the_unit_register(tmp_path, start_energyd):
    """The fixed DRAM unit is a quirk of the server models only: on another family 6 model the
    DRAM counter counts in the unit register's unit like every other domain."""
    fake = msr.FakeMsr(tmp_path / "dev", tmp_path / "sys", tmp_path / "proc", "intel",
                       [(0, 0)], model=msr.SKYLAKE_L)
    fake.set_counter(0, "package", 1)
    fake.set_counter(0, "dram", 1)
    d = run(start_energyd, tmp_path)
    d.wait_ticks(2)
    fake.advance(0, "dram", 3 * 2 ** 14)  # 3 J at the register's 2^-14 J
    now = d.wait_ticks(2)
    assert fake.joules(0, "dram") == 3.0
    assert abs(now["channels"]["rapl:dram-0"]["joules"] - 3.0) <= 0.003
    fake.close()


def test_amd_package_and_cores_summed(tmp_path, start_energyd):
    # One package, two cores with two threads each: core energy is per core (cpu0, cpu2).
    fake = msr.FakeMsr(tmp_path / "dev", tmp_path / "sys", tmp_path / "proc", "amd",
                       [(0, 0), (0, 0), (0, 1), (0, 1)])
    fake.set_counter(0, "package", 0xFFFF_FF00)
    fake.set_counter(0, "core", 10)
    fake.set_counter(2, "core", 0xFFFF_FFF0)
    d = run(start_energyd, tmp_path, env=fake.shim_env(BUILD, ENERGYD))
    src = d.get("/api/v1/sources")
    assert [c["id"] for c in src["channels"]] == ["rapl:package-0", "rapl:core-0"]
    assert "amd" in {f["name"]: f for f in src["families"]}["msr"]["detail"]
    assert src["host"]["coverage"] == ["rapl:package-0"]
    d.wait_ticks(2)
    for pkg, c0, c2 in ((0x200, 1000, 0x20), (65536 * 3, 17, 65536), (1, 0, 5)):
        fake.advance(0, "package", pkg)
        fake.advance(0, "core", c0)
        fake.advance(2, "core", c2)  # wraps on the first step
        now = d.wait_ticks(2)
        assert uj(now["channels"]["rapl:package-0"]["joules"]) == \
            fake.expected_uj(fake.total(0, "package"))
        # The sum of the cores' counts, converted once.
        assert uj(now["channels"]["rapl:core-0"]["joules"]) == \
            fake.expected_uj(fake.total(0, "core") + fake.total(2, "core"))
    # The thread siblings' files (cpu1, cpu3) are never the source of core energy: changing
    # them changes nothing.
    fake.advance(1, "core", 1 << 20)
    now2 = d.wait_ticks(2)
    assert now2["channels"]["rapl:core-0"]["joules"] == now["channels"]["rapl:core-0"]["joules"]
    fake.close()


def test_vendor_override_and_no_msr_driver(tmp_path, start_energyd):
    fake = msr.FakeMsr(tmp_path / "dev", tmp_path / "sys", tmp_path / "proc", "intel",
                       [(0, 0)])
    fake.set_counter(0, "package", 1)
    # Told it is AMD, energyd reads the AMD unit register, which the Intel files lack.
    d = run(start_energyd, tmp_path, "--msr-vendor", "amd")
    fam = {f["name"]: f for f in d.get("/api/v1/sources")["families"]}
    assert fam["msr"]["status"] == "absent" and "unit register" in fam["msr"]["detail"]
    fake.close()
    # No /dev/cpu/N/msr at all: the msr driver is not loaded.
    d = start_energyd(tmp_path / "sys", "--dev-root", str(tmp_path / "nodev"),
                      proc_root=tmp_path / "proc")
    fam = {f["name"]: f for f in d.get("/api/v1/sources")["families"]}
    assert fam["msr"]["status"] == "absent" and "modprobe msr" in fam["msr"]["detail"]
