"""The arithmetic the API does for its clients (issue: clients display, energyd computes):
mean watts next to every joules figure of /energy, an idle baseline subtracted server-side
(idle_watts=), and /runs: the energy of up to 300 repeated runs with mean, sd and a 95 % interval.

Joules are checked against what the powercap emulator wrote (as in test_powercap.py); the
derived figures (watts, above-idle, statistics) against the answer's own joules and seconds,
with the formulas of docs/api.md written out here, to floating-point precision.
"""

import math
import statistics
import time

import pytest

from emulators import powercap

SKEW_S = 0.005  # per end: counter read vs sample stamp
ZONES = {"rapl:package-0": "intel-rapl:0", "rapl:dram-0": "intel-rapl:0:0",
         "rapl:package-1": "intel-rapl:1", "rapl:dram-1": "intel-rapl:1:0"}
WATTS = {"rapl:package-0": 40.0, "rapl:dram-0": 6.0, "rapl:package-1": 30.0, "rapl:dram-1": 4.0}
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776}


def close_to(joules, written, watts, rel=0.01):
    return abs(joules - written) <= rel * written + 2 * watts * SKEW_S


@pytest.fixture
def server(tmp_path, start_energyd):
    fake = powercap.server(tmp_path / "sys").start()
    d = start_energyd(tmp_path / "sys")
    time.sleep(2.2)
    yield fake, d
    fake.close()


def test_energy_gives_seconds_and_mean_watts(server):
    fake, d = server
    t1 = d.get("/api/v1/now")["time"]
    t0 = t1 - 1.5
    e = d.get(f"/api/v1/energy?from={t0:.6f}&to={t1:.6f}")
    assert e["seconds"] == pytest.approx(e["to"] - e["from"], abs=2e-6)  # from, to: 1 us
    assert e["seconds"] == pytest.approx(1.5, abs=1e-5)
    ts = d.get("/api/v1/history?seconds=10")["t"]
    for cid, ch in e["channels"].items():
        written = fake.energy_between(ZONES[cid], t0, t1, ts)
        assert close_to(ch["joules"], written, WATTS[cid]), (cid, ch, written)
        assert ch["watts"] == pytest.approx(ch["joules"] / e["seconds"], rel=1e-12)
    assert e["host"]["watts"] == pytest.approx(e["host"]["joules"] / e["seconds"], rel=1e-12)
    assert "idle_baseline_watts" not in e["host"]
    # An empty interval has no mean power: null, not a division by zero.
    z = d.get(f"/api/v1/energy?from={t0:.6f}&to={t0:.6f}")
    assert z["seconds"] == 0 and z["host"]["watts"] is None


def test_idle_baseline_is_subtracted_server_side(server):
    _, d = server
    t1 = d.get("/api/v1/now")["time"]
    t0 = t1 - 1.0
    q = f"/api/v1/energy?from={t0:.6f}&to={t1:.6f}"
    e = d.get(q + "&idle_watts=50")
    h = e["host"]
    assert h["idle_baseline_watts"] == 50
    assert h["joules_above_idle"] == pytest.approx(h["joules"] - 50 * e["seconds"], rel=1e-12)
    assert h["watts_above_idle"] == pytest.approx(h["watts"] - 50, rel=1e-9)
    assert all("joules_above_idle" not in c for c in e["channels"].values())
    # Per channel; a channel id holds colons, the watts follow the last one.
    e = d.get(q + "&idle_watts=host:70,rapl:package-0:35.5")
    p = e["channels"]["rapl:package-0"]
    assert p["idle_baseline_watts"] == 35.5
    assert p["joules_above_idle"] == pytest.approx(p["joules"] - 35.5 * e["seconds"], rel=1e-12)
    assert "joules_above_idle" not in e["channels"]["rapl:dram-0"]
    # Below the baseline the remainder is negative, not clamped: 80 W drawn, 200 W baseline.
    e = d.get(q + "&idle_watts=200")
    assert e["host"]["joules_above_idle"] < 0
    for bad, why in [("abc", "not a power"), ("-1", "not a power"), ("1e9", "not a power"),
                     ("rapl:nothing:3", "no channel 'rapl:nothing'"),
                     ("5,host:6", "given twice"), ("nan", "not a power")]:
        status, body = d.request("GET", q + "&idle_watts=" + bad)
        assert status == 400 and why in body["error"], (bad, body)


def test_runs_each_as_energy_and_their_statistics(server):
    fake, d = server
    t = d.get("/api/v1/now")["time"]
    spans = [(t - 2.0, t - 1.6), (t - 1.5, t - 0.8), (t - 0.7, t - 0.2)]
    runs = ",".join(f"{a:.6f}/{b:.6f}" for a, b in spans)
    r = d.get(f"/api/v1/runs?runs={runs}&idle_watts=20")
    assert len(r["runs"]) == 3 and r["measured"] is True
    assert r["coverage"] == list(WATTS)
    ts = d.get("/api/v1/history?seconds=10")["t"]
    for (a, b), run in zip(spans, r["runs"]):
        # Each run is exactly what /energy answers for its interval.
        e = d.get(f"/api/v1/energy?from={a:.6f}&to={b:.6f}&idle_watts=20")
        assert run["host"]["joules"] == e["host"]["joules"]
        assert run["seconds"] == e["seconds"] == pytest.approx(b - a, abs=1e-5)
        assert run["host"]["joules_above_idle"] == e["host"]["joules_above_idle"]
        written = fake.host_between(a, b, ts)
        assert close_to(run["host"]["joules"], written, 80.0), (run["host"], written)
    st = r["stats"]

    def check(s, values):
        assert s["n"] == len(values)
        m, sd = statistics.mean(values), statistics.stdev(values)
        assert s["mean"] == pytest.approx(m, rel=1e-12)
        assert s["sd"] == pytest.approx(sd, rel=1e-9)
        assert s["rel_sd"] == pytest.approx(sd / abs(m), rel=1e-9)
        half = T975[len(values) - 1] * sd / math.sqrt(len(values))
        assert s["ci95_low"] == pytest.approx(m - half, rel=1e-9)
        assert s["ci95_high"] == pytest.approx(m + half, rel=1e-9)

    check(st["seconds"], [x["seconds"] for x in r["runs"]])
    check(st["host"]["joules"], [x["host"]["joules"] for x in r["runs"]])
    check(st["host"]["watts"], [x["host"]["watts"] for x in r["runs"]])
    check(st["host"]["joules_above_idle"], [x["host"]["joules_above_idle"] for x in r["runs"]])
    for cid in WATTS:
        check(st["channels"][cid]["joules"], [x["channels"][cid]["joules"] for x in r["runs"]])
    # The mean power of a steady 80 W profile over the three runs.
    assert st["host"]["watts"]["mean"] == pytest.approx(80.0, rel=0.1)
    # One run: mean only, the spread unknown.
    one = d.get(f"/api/v1/runs?runs={spans[0][0]:.6f}/{spans[0][1]:.6f}")["stats"]["host"]
    assert one["joules"]["n"] == 1 and one["joules"]["sd"] is None
    assert one["joules"]["ci95_low"] is None and one["joules"]["mean"] is not None


def test_runs_bad_input(server):
    _, d = server
    t = d.get("/api/v1/now")["time"]
    ok = f"{t - 1:.6f}/{t - 0.5:.6f}"
    many = ",".join(["1/2"] * 301)  # short: the request line stays under 16 KiB
    cases = [("", 400, "'runs' is required"),
             ("?runs=", 400, "'runs' is required"),
             (f"?runs={t - 1:.6f}", 400, "is not T0/T1"),
             (f"?runs={ok},", 400, "ends with a comma"),
             (f"?runs={t - 0.5:.6f}/{t - 1:.6f}", 400, "starts after it ends"),
             (f"?runs={ok},x/{t:.6f}", 400, "run 2"),
             (f"?runs={many}", 400, "more than 300 runs"),
             (f"?runs={ok},100/200", 404, "outside the samples held"),
             (f"?runs={ok}&idle_watts=oops", 400, "not a power")]
    for query, status, why in cases:
        got, body = d.request("GET", "/api/v1/runs" + query)
        assert got == status and why in body["error"], (query[:80], got, body)
    assert d.request("POST", "/api/v1/runs?runs=" + ok)[0] == 405
