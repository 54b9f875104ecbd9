"""energyd on fake powercap trees: joules asserted against the emulated power profile.

Exact checks: the fake counters are frozen while energyd takes its first reading, then the
driver runs, then it is frozen again; energyd's joules since start must equal what the driver
added, to the microjoule (the counters are integers and no interpolation is involved).

Rate checks: energy over a window [t0, t1] must be watts * (t1 - t0) within
RATE_BOUND_S * watts: the driver rewrites counters every 2 ms and energyd stamps a sample after
reading it, so each end of the window may be off by the driver period plus scheduling delay;
we allow 50 ms per end on this shared 2-core machine.
"""

import time

import pytest

from emulators import powercap

RATE_BOUND_S = 0.1  # two ends x 50 ms


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
    assert 0 < e["resolution_s"] <= 0.2
    watts = {"rapl:package-0": 40.0, "rapl:dram-0": 6.0, "rapl:package-1": 30.0,
             "rapl:dram-1": 4.0}
    for cid, w in watts.items():
        assert abs(e["channels"][cid]["joules"] - w * 2.0) <= w * RATE_BOUND_S, cid
    assert abs(e["host"]["joules"] - 80.0 * 2.0) <= 80.0 * RATE_BOUND_S
    # History: watts per sample near the profile (each sample spans one 0.1 s tick, so the
    # same 50 ms per end applies: within 100% of a tick is too loose; use the 1 s means).
    now = d.get("/api/v1/now")
    assert abs(now["host"]["watts"] - 80.0) <= 80.0 * RATE_BOUND_S
    h = d.get("/api/v1/history?seconds=1")
    assert 8 <= len(h["t"]) <= 12
    assert set(h["channels"]) == set(watts)
    mean = sum(x for x in h["host"]["watts"] if x is not None) / len(h["host"]["watts"])
    assert abs(mean - 80.0) <= 80.0 * RATE_BOUND_S * 10  # per-tick noise: 50 ms in 100 ms
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
    # 10 W on a counter that wraps every 2 J: a wrap every 0.2 s, about 12 in 2.5 s.
    fake = powercap.wrapping(tmp_path / "sys", watts=10.0, max_uj=1_999_999)
    d = start_energyd(tmp_path / "sys")
    now = run_frozen_profile(fake, d, 2.5)
    total = fake.zone("package-0").total_uj
    assert total >= 2 * 2_000_000  # at least two wraps happened
    assert uj(now["channels"]["rapl:package-0"]["joules"]) == total
    assert d.get("/api/v1/sources")["channels"][0]["status"] == "ok"
    fake.close()


def test_exact_steps_across_wraps(tmp_path, start_energyd):
    fake = powercap.wrapping(tmp_path / "sys", max_uj=999_999)
    d = start_energyd(tmp_path / "sys")
    d.wait_ticks(2)
    added = 0
    for step in (250_000, 999_000, 1, 700_000, 123_457):  # 999_000 crosses the wrap
        fake.advance("package-0", step)
        added += step
        now = d.wait_ticks(2)
        assert uj(now["channels"]["rapl:package-0"]["joules"]) == added
    fake.close()


def test_garbage_reads_skip_and_recover(tmp_path, start_energyd):
    fake = powercap.wrapping(tmp_path / "sys", max_uj=999_999)
    d = start_energyd(tmp_path / "sys")
    d.wait_ticks(2)
    fake.advance("package-0", 400_000)
    d.wait_ticks(2)
    for garbage in (b"not a number\n", b"", b"-5\n", b"99999999999\n"):  # last: above range
        fake.write_raw("package-0", garbage)
        now = d.wait_ticks(2)
        assert uj(now["channels"]["rapl:package-0"]["joules"]) == 400_000
        ch = d.get("/api/v1/sources")["channels"][0]
        assert ch["status"] == "degraded" and ch["error"], garbage
    # Back to a valid value: counted from the last good reading, no jump, no zero.
    z = fake.zone("package-0")
    fake.write_raw("package-0", b"%d\n" % ((z.start_uj + 450_000) % (z.max_uj + 1)))
    deadline = time.time() + 10  # backoff may delay the retry a little
    while time.time() < deadline:
        now = d.wait_ticks(1)
        if d.get("/api/v1/sources")["channels"][0]["status"] == "ok":
            break
    assert uj(now["channels"]["rapl:package-0"]["joules"]) == 450_000
    assert d.get("/api/v1/sources")["channels"][0]["error"] is None
    fake.close()
