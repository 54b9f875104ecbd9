"""energyd on fake powercap trees: joules asserted against the emulated power profile.

Exact checks: the fake counters are frozen while energyd takes its first reading, then the
driver runs, then it is frozen again; energyd's joules since start must equal what the driver
added, to the microjoule (the counters are integers and no interpolation is involved).

Rate checks: energy over a window [t0, t1] must be what the driver wrote over that window (its
log of (time, counter), taken at energyd's sample times and interpolated between them as energyd
does; not watts x duration, which a late driver thread on a loaded machine does not deliver),
within 1 % plus SKEW_S per end at the zone's power: energyd reads the counters, then stamps the
sample.
"""

import time

import pytest

from emulators import powercap

SKEW_S = 0.005  # per end: counter read vs sample stamp


def close_to(joules, written, watts, rel=0.01):
    return abs(joules - written) <= rel * written + 2 * watts * SKEW_S


def run_frozen_profile(fake, daemon, seconds):
    """Freeze, let energyd read, run the driver for `seconds`, freeze again, wait for energyd."""
    daemon.wait_ticks(2)
    fake.start()
    time.sleep(seconds)
    fake.stop()
    return daemon.wait_ticks(3)


def uj(joules):
    return round(joules * 1e6)


def test_two_socket_server(tmp_path, start_energyd):
    fake = powercap.server(tmp_path / "sys")
    d = start_energyd(tmp_path / "sys")
    src = d.get("/api/v1/sources")
    ids = [c["id"] for c in src["channels"]]
    assert ids == ["rapl:package-0", "rapl:dram-0", "rapl:package-1", "rapl:dram-1"]
    assert all(c["measured"] and c["status"] == "ok" for c in src["channels"])
    assert src["host"]["coverage"] == ids
    assert src["host"]["measured"] is True
    fam = {f["name"]: f for f in src["families"]}
    assert fam["powercap"]["status"] == "found"
    assert fam["model"]["status"] == "skipped"

    now = run_frozen_profile(fake, d, 1.5)
    expect = {
        "rapl:package-0": fake.zone("intel-rapl:0").total_uj,
        "rapl:dram-0": fake.zone("intel-rapl:0:0").total_uj,
        "rapl:package-1": fake.zone("intel-rapl:1").total_uj,
        "rapl:dram-1": fake.zone("intel-rapl:1:0").total_uj,
    }
    for cid, total in expect.items():
        assert total > 1_000_000
        assert uj(now["channels"][cid]["joules"]) == total, cid
    assert uj(now["host"]["joules"]) == sum(expect.values())
    assert now["host"]["coverage"] == ids and now["host"]["measured"] is True
    fake.close()


def test_server_rate_matches_profile(tmp_path, start_energyd):
    fake = powercap.server(tmp_path / "sys").start()
    d = start_energyd(tmp_path / "sys")
    time.sleep(2.2)
    t1 = d.get("/api/v1/now")["time"]
    t0 = t1 - 2.0
    e = d.get(f"/api/v1/energy?from={t0:.6f}&to={t1:.6f}")
    assert e["from"] == pytest.approx(t0, abs=1e-6) and e["to"] == pytest.approx(t1, abs=1e-6)
    watts = {"rapl:package-0": 40.0, "rapl:dram-0": 6.0, "rapl:package-1": 30.0,
             "rapl:dram-1": 4.0}
    ts = d.get("/api/v1/history?seconds=10")["t"]
    # resolution_s: how far apart the samples around each end were, 0 for an end that falls on
    # a sample (t1 is one; t0 may be too). Late samples on a loaded machine widen the gaps.
    gaps = [b - a for a, b in zip(ts, ts[1:]) if a <= t0 <= b or a <= t1 <= b]
    assert gaps and 0 <= e["resolution_s"] <= max(gaps) + 1e-6, (e["resolution_s"], gaps)
    zones = {"rapl:package-0": "intel-rapl:0", "rapl:dram-0": "intel-rapl:0:0",
             "rapl:package-1": "intel-rapl:1", "rapl:dram-1": "intel-rapl:1:0"}
    for cid, w in watts.items():
        written = fake.energy_between(zones[cid], t0, t1, ts)
        assert written > 0.3 * w * 2.0  # the driver ran
        assert close_to(e["channels"][cid]["joules"], written, w), (cid, e, written)
    host = fake.host_between(t0, t1, ts)
    assert close_to(e["host"]["joules"], host, 80.0), (e["host"], host)
    # History: every point of the last second against the emulated 80 W, within 1 % plus what
    # the driver's late writes (from its log) and 5 ms of skew per end can move over the
    # point's window (powercap.history_within_power); most points must have a tight bound.
    h = d.get("/api/v1/history?seconds=1")
    assert 8 <= len(h["t"]) <= 12
    assert set(h["channels"]) == set(watts)
    assert sum(x is None for x in h["host"]["watts"]) <= 2, h
    bad, shown, tight = powercap.history_within_power(fake, h["t"], h["host"]["watts"], 80.0,
                                                      SKEW_S)
    assert not bad, (bad, h)
    assert tight >= shown / 2, (tight, shown)
    fake.close()


def test_laptop_psys_is_the_host_total(tmp_path, start_energyd):
    fake = powercap.laptop(tmp_path / "sys")
    d = start_energyd(tmp_path / "sys")
    src = d.get("/api/v1/sources")
    chans = {c["id"]: c for c in src["channels"]}
    assert list(chans) == ["rapl:package-0", "rapl:core-0", "rapl:uncore-0", "rapl:psys"]
    assert chans["rapl:package-0"]["includes"] == ["rapl:core-0", "rapl:uncore-0"]
    assert chans["rapl:psys"]["includes"] == ["rapl:package-0", "rapl:core-0", "rapl:uncore-0"]
    fam = {f["name"]: f for f in src["families"]}
    assert "intel-rapl-mmio skipped" in fam["powercap"]["detail"]
    assert src["host"]["coverage"] == ["rapl:psys"] and src["host"]["rule"] == "psys"

    now = run_frozen_profile(fake, d, 1.2)
    psys = fake.zone("psys").total_uj
    assert psys > 20_000_000
    assert uj(now["host"]["joules"]) == psys
    assert uj(now["channels"]["rapl:psys"]["joules"]) == psys
    assert uj(now["channels"]["rapl:core-0"]["joules"]) == fake.zone("core").total_uj
    assert uj(now["channels"]["rapl:package-0"]["joules"]) == fake.zone("intel-rapl:0").total_uj
    fake.close()


def test_counter_wraps_many_times(tmp_path, start_energyd):
    # 10 W on a counter of 2^32 units of 1 nJ: a wrap every 0.43 s, about 5 in 2.5 s.
    fake = powercap.wrapping(tmp_path / "sys", watts=10.0, unit_nj=1)
    d = start_energyd(tmp_path / "sys")
    now = run_frozen_profile(fake, d, 2.5)
    z = fake.zone("package-0")
    assert z.wraps >= 2
    # Within 1 uJ: the kernel floors each reading to a microjoule and a wrap (2^32 nJ) is not
    # a whole number of them. Counting a wrap as max + 1 uJ is 0.7 uJ short per wrap.
    assert abs(uj(now["channels"]["rapl:package-0"]["joules"]) - z.total_uj) <= 1
    assert d.get("/api/v1/sources")["channels"][0]["status"] == "ok"
    fake.close()


def test_exact_steps_across_wraps(tmp_path, start_energyd):
    fake = powercap.wrapping(tmp_path / "sys")  # starts 300 mJ before the wrap
    d = start_energyd(tmp_path / "sys")
    d.wait_ticks(2)
    added = 0
    for step in (250_000, 999_000, 1, 700_000, 123_457):  # 999_000 crosses the wrap
        fake.advance("package-0", step)
        added += step
        now = d.wait_ticks(2)
        assert fake.zone("package-0").total_uj == added
        # Within 1 uJ once wrapped: a wrap of 2^32 nJ is not a whole number of microjoules.
        assert abs(uj(now["channels"]["rapl:package-0"]["joules"]) - added) <= 1
    assert fake.zone("package-0").wraps == 1
    fake.close()


def test_a_wrap_is_worth_2_32_units_as_the_kernel_defines_it(tmp_path, start_energyd):
    """The kernel shows energy_uj = raw * unit / 1000 and max_energy_range_uj as that of
    0xFFFFFFFF (intel_rapl_common.c): a wrap of the 32-bit register adds max + one unit, 61 uJ
    for a package (2^-14 J) and 15.3 uJ for a Haswell-EP DRAM domain. energyd must count the
    wraps to within 1 uJ of what the counters added; max + 1 uJ per wrap is 60 uJ (and 14 uJ)
    short."""
    fake = powercap.FakePowercap(tmp_path / "sys", [
        powercap.Zone("intel-rapl:0", "package-0", unit_nj=powercap.UNIT_2_14_NJ,
                      start_uj=powercap.max_energy_range_uj(powercap.UNIT_2_14_NJ) - 200,
                      children=[powercap.Zone(
                          "intel-rapl:0:0", "dram", unit_nj=powercap.UNIT_DRAM_HSW_NJ,
                          start_uj=powercap.max_energy_range_uj(powercap.UNIT_DRAM_HSW_NJ) - 50)])])
    assert fake.zone("package-0").max_uj == 262143328850
    assert fake.zone("dram").max_uj == 65712999613
    d = start_energyd(tmp_path / "sys")
    chans = {c["id"]: c for c in d.get("/api/v1/sources")["channels"]}
    assert "2^32 units of 61035 nJ" in chans["rapl:package-0"]["description"]
    assert "2^32 units of 15300 nJ" in chans["rapl:dram-0"]["description"]
    d.wait_ticks(2)
    # Each counter starts a few units before the wrap; the first step crosses it.
    for counts in (10, 1, 12345):
        for key in ("package-0", "dram"):
            fake.advance_counts(key, counts)
        now = d.wait_ticks(2)
        for cid, key in (("rapl:package-0", "package-0"), ("rapl:dram-0", "dram")):
            z = fake.zone(key)
            assert z.wraps == 1, key
            assert abs(uj(now["channels"][cid]["joules"]) - z.total_uj) <= 1, (cid, z.total_uj)
    assert all(c["status"] == "ok" for c in d.get("/api/v1/sources")["channels"])
    fake.close()


def test_garbage_reads_skip_and_recover(tmp_path, start_energyd):
    fake = powercap.wrapping(tmp_path / "sys")
    d = start_energyd(tmp_path / "sys")
    d.wait_ticks(2)
    fake.advance("package-0", 400_000)
    d.wait_ticks(2)
    for garbage in (b"not a number\n", b"", b"-5\n", b"99999999999\n"):  # last: above range
        fake.write_raw("package-0", garbage)
        now = d.wait_ticks(2)
        # 400 mJ crossed the wrap: within 1 uJ (see test_exact_steps_across_wraps).
        assert abs(uj(now["channels"]["rapl:package-0"]["joules"]) - 400_000) <= 1
        ch = d.get("/api/v1/sources")["channels"][0]
        assert ch["status"] == "degraded" and ch["error"], garbage
    # Back to a valid value: counted from the last good reading, no jump, no zero.
    fake.write_raw("package-0", b"%d\n" % fake.reading_after("package-0", 50_000))
    deadline = time.time() + 10  # backoff may delay the retry a little
    while time.time() < deadline:
        now = d.wait_ticks(1)
        if d.get("/api/v1/sources")["channels"][0]["status"] == "ok":
            break
    assert abs(uj(now["channels"]["rapl:package-0"]["joules"]) - 450_000) <= 1
    assert d.get("/api/v1/sources")["channels"][0]["error"] is None
    fake.close()
