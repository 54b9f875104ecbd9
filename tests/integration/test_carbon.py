"""Carbon intensity, generation mix, emissions and cost: the real energyd on emulated RAPL, with
every live provider played by a local HTTP server that answers in the provider's real format
(tests/emulators/carbon_providers.py)."""

import json
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import ENERGY, ENERGYD
from emulators import powercap
from emulators.carbon_providers import EM_TOKEN, ENTSOE_TOKEN, Providers

J_PER_KWH = 3.6e6
ZONE_DE = "10Y1001A1001A82H"


@pytest.fixture
def providers():
    p = Providers()
    yield p
    p.close()


def write_config(tmp_path, carbon: dict, name="energyd.conf"):
    path = tmp_path / name
    lines = ["[carbon]"] + [f"{k} = {v}" for k, v in carbon.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_carbon(d, pred, timeout=10.0):
    """Poll /api/v1/carbon until pred(answer) holds."""
    deadline = time.time() + timeout
    c = None
    while time.time() < deadline:
        c = d.get("/api/v1/carbon")
        if pred(c):
            return c
        time.sleep(0.05)
    raise AssertionError(f"carbon never satisfied the condition: {c}")


def near(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


# -- ENTSO-E ------------------------------------------------------------------------------------

# Eight quarter hours and two hours: everything ends at periodStart + 2 h, so the latest instant
# every production series covers is periodStart + 1 h 45 min: position 8 of the PT15M series and
# position 2 of the PT60M one. Gas is an A03 curve whose positions 6-8 are left out: they repeat
# position 5 (400 MW). The pumped-storage consumption series (outBiddingZone) must not count.
ENTSOE_SERIES = [
    {"psr": "B19", "resolution": "PT15M", "quantities": [100, 200, 300, 400, 500, 600, 800, 900]},
    {"psr": "B16", "resolution": "PT15M", "quantities": [0, 0, 10, 50, 100, 150, 250, 300]},
    {"psr": "B04", "resolution": "PT15M", "curve": "A03",
     "quantities": [450, 450, 420, 420, 400, None, None, None]},
    {"psr": "B02", "resolution": "PT15M", "quantities": [500] * 8},
    {"psr": "B14", "resolution": "PT60M", "quantities": [650, 700]},
    {"psr": "B10", "resolution": "PT15M", "quantities": [0, 0, 0, 0, 0, 0, 50, 100]},
    {"psr": "B10", "resolution": "PT15M", "out": True, "quantities": [2000] * 8},
    {"psr": "B20", "resolution": "PT15M", "quantities": [50] * 8},
]


def test_entsoe_mix_and_intensity_by_hand(tmp_path, start_energyd, providers):
    providers.entsoe_series = ENTSOE_SERIES
    token = tmp_path / "entsoe.token"
    token.write_text(ENTSOE_TOKEN + "\n")
    token.chmod(0o600)  # read before energyd drops root
    cfg = write_config(tmp_path, {"provider": "entsoe", "zone": ZONE_DE, "token_file": token,
                                  "base_url": providers.url + "/entsoe/api"})
    d = start_energyd(None, "--config", str(cfg))
    c = wait_carbon(d, lambda c: c["status"] != "pending")
    assert c["status"] == "ok", c
    # By hand: MW at the latest instant, life-cycle factors of docs/carbon.md (g/kWh).
    mw = {"wind": 900, "solar": 300, "gas": 400, "lignite": 500, "nuclear": 700,
          "pumped": 100, "other": 50}
    factor = {"wind": 11, "solar": 48, "gas": 490, "lignite": 820, "nuclear": 12,
              "pumped": 24, "other": 700}
    total = sum(mw.values())  # 2950 MW
    intensity = sum(mw[k] * factor[k] for k in mw) / total  # 676100 / 2950
    assert near(c["intensity_g_per_kwh"], intensity)
    assert near(c["intensity_g_per_kwh"], 676100 / 2950)
    assert near(c["mix"]["renewable"], 1200 / total)
    assert near(c["mix"]["fossil"], 900 / total)
    assert near(c["mix"]["nuclear"], 700 / total)
    assert near(c["mix"]["storage"], 100 / total)
    assert near(c["mix"]["other"], 50 / total)
    assert c["provider"] == "entsoe" and c["zone"] == ZONE_DE and c["error"] is None
    # The request energyd made: token, document and process type, bidding zone, a window that
    # ends after now and starts six hours before the hour.
    q = [r for r in providers.requests if r["path"] == "/entsoe/api"][0]["query"]
    assert q["securityToken"] == ENTSOE_TOKEN
    assert (q["documentType"], q["processType"], q["in_Domain"]) == ("A75", "A16", ZONE_DE)
    start = datetime.strptime(q["periodStart"], "%Y%m%d%H%M").replace(tzinfo=timezone.utc)
    assert c["updated_at"] == (start + timedelta(hours=1, minutes=45)).timestamp()
    assert start.timestamp() < time.time() - 5 * 3600
    # The token never shows in the API.
    assert ENTSOE_TOKEN not in json.dumps(c)


def test_entsoe_bad_token_says_so(tmp_path, start_energyd, providers):
    token = tmp_path / "entsoe.token"
    token.write_text("not-the-token\n")
    cfg = write_config(tmp_path, {"provider": "entsoe", "zone": ZONE_DE, "token_file": token,
                                  "base_url": providers.url + "/entsoe/api"})
    d = start_energyd(None, "--config", str(cfg))
    c = wait_carbon(d, lambda c: c["status"] != "pending")
    assert c["status"] == "error" and "HTTP 401" in c["error"] and "token_file" in c["error"]
    assert "not-the-token" not in json.dumps(c)


def test_entsoe_no_matching_data_keeps_last_value(tmp_path, start_energyd, providers):
    providers.entsoe_series = ENTSOE_SERIES
    token = tmp_path / "entsoe.token"
    token.write_text(ENTSOE_TOKEN)
    cfg = write_config(tmp_path, {"provider": "entsoe", "zone": ZONE_DE, "token_file": token,
                                  "base_url": providers.url + "/entsoe/api", "refresh_s": 1})
    d = start_energyd(None, "--config", str(cfg))
    good = wait_carbon(d, lambda c: c["status"] == "ok")
    providers.entsoe_ack = ("No matching data found for Data item "
                            "ACTUAL_GENERATION_PER_PRODUCTION_TYPE [16.1.B&amp;C] "
                            f"({ZONE_DE}) and interval 2026-11-21T18:00:00.000Z/"
                            "2026-11-22T01:00:00.000Z.")
    c = wait_carbon(d, lambda c: c["status"] == "error")
    assert "No matching data found" in c["error"] and "reason 999" in c["error"]
    assert c["intensity_g_per_kwh"] == good["intensity_g_per_kwh"]  # the last good value
    assert c["updated_at"] == good["updated_at"] and c["age_s"] >= good["age_s"]
    d.wait_ticks(3)  # still sampling


# -- UK, RTE, Electricity Maps ------------------------------------------------------------------


def test_uk_intensity_and_mix(tmp_path, start_energyd, providers):
    cfg = write_config(tmp_path, {"provider": "uk", "base_url": providers.url + "/uk"})
    d = start_energyd(None, "--config", str(cfg))
    c = wait_carbon(d, lambda c: c["status"] != "pending")
    assert c["status"] == "ok" and c["zone"] == "GB"
    assert c["intensity_g_per_kwh"] == 176  # "actual" wins over the forecast
    total = 100.0  # the fixture's percentages add up to 100
    assert near(c["mix"]["renewable"], (5 + 2 + 4 + 30) / total)
    assert near(c["mix"]["fossil"], (1 + 35) / total)
    assert near(c["mix"]["nuclear"], 14 / total)
    assert near(c["mix"]["other"], 9 / total)  # imports
    assert c["mix"]["storage"] == 0
    assert {r["path"] for r in providers.requests} == {"/uk/intensity", "/uk/generation"}


def test_rte_intensity_and_mix(tmp_path, start_energyd, providers):
    providers.rte_record = {
        "perimetre": "France", "nature": "Données temps réel", "date": "2026-11-22",
        "heure": "01:30", "date_heure": "2026-11-22T00:30:00+00:00", "consommation": 55012,
        "prevision_j1": 54800, "prevision_j": 55100, "fioul": 120, "charbon": 3, "gaz": 3100,
        "nucleaire": 41000, "eolien": 5200, "solaire": 0, "hydraulique": 6400,
        "pompage": -900, "bioenergies": 1100, "ech_physiques": -2900, "taux_co2": 23,
        "hydraulique_fil_eau_eclusee": 3900, "hydraulique_lacs": 1700,
        "hydraulique_step_turbinage": 800, "stockage_batterie": -12,
        "destockage_batterie": 30, "eolien_terrestre": 4900, "eolien_offshore": 300}
    cfg = write_config(tmp_path, {"provider": "rte", "base_url": providers.url + "/rte"})
    d = start_energyd(None, "--config", str(cfg))
    c = wait_carbon(d, lambda c: c["status"] != "pending")
    assert c["status"] == "ok" and c["zone"] == "FR"
    assert c["intensity_g_per_kwh"] == 23  # RTE's own taux_co2
    assert c["updated_at"] == datetime(2026, 11, 22, 0, 30, tzinfo=timezone.utc).timestamp()
    # By hand: pumping, battery charging and exchanges are not generation; pumped-storage
    # turbining (800) and battery discharge (30) are storage, the rest of hydro is renewable.
    total = 120 + 3 + 3100 + 41000 + 5200 + 0 + 6400 + 1100 + 30
    assert near(c["mix"]["fossil"], 3223 / total)
    assert near(c["mix"]["nuclear"], 41000 / total)
    assert near(c["mix"]["renewable"], (5200 + 5600 + 1100) / total)
    assert near(c["mix"]["storage"], 830 / total)
    q = providers.requests[0]["query"]
    assert q["order_by"] == "date_heure desc" and q["where"] == "taux_co2 is not null"


def test_electricitymaps_token_and_mix(tmp_path, start_energyd, providers):
    providers.em_breakdown = {"nuclear": 0, "geothermal": None, "biomass": 3000, "coal": 9000,
                              "wind": 21000, "solar": 4000, "hydro": 1500, "gas": 6000,
                              "oil": 500, "unknown": 400, "hydro discharge": 600,
                              "battery discharge": 0}
    token = tmp_path / "em.token"
    token.write_text(EM_TOKEN + "\n")
    cfg = write_config(tmp_path, {"provider": "electricitymaps", "zone": "DE",
                                  "token_file": token, "base_url": providers.url + "/em"})
    d = start_energyd(None, "--config", str(cfg))
    c = wait_carbon(d, lambda c: c["status"] != "pending")
    assert c["status"] == "ok" and c["intensity_g_per_kwh"] == 302
    total = 3000 + 9000 + 21000 + 4000 + 1500 + 6000 + 500 + 400 + 600
    assert near(c["mix"]["renewable"], 29500 / total)
    assert near(c["mix"]["fossil"], 15500 / total)
    assert near(c["mix"]["storage"], 600 / total)
    assert near(c["mix"]["other"], 400 / total)
    assert all(r["headers"].get("auth-token") == EM_TOKEN for r in providers.requests)
    assert all(r["query"]["zone"] == "DE" for r in providers.requests)


def test_electricitymaps_bad_token_is_reported(tmp_path, start_energyd, providers):
    token = tmp_path / "em.token"
    token.write_text("wrong-token\n")
    cfg = write_config(tmp_path, {"provider": "electricitymaps", "zone": "DE",
                                  "token_file": token, "base_url": providers.url + "/em"})
    d = start_energyd(None, "--config", str(cfg))
    c = wait_carbon(d, lambda c: c["status"] != "pending")
    assert c["status"] == "error" and c["intensity_g_per_kwh"] is None
    assert "HTTP 401" in c["error"] and "token_file" in c["error"]
    now = d.get("/api/v1/now")
    assert now["host"]["emissions_g"] is None  # unknown, not zero


# -- emissions over time ------------------------------------------------------------------------


def test_emissions_are_the_step_wise_integral(tmp_path, start_energyd, providers):
    """Energy added in exact amounts (no driver thread: the counters move only when the test
    says), the intensity changes in between: grams = sum(joules_i * g/kWh_i) / 3.6e6."""
    fake = powercap.server(tmp_path / "sys")  # not started: counters stay put
    providers.uk_intensity = {"forecast": 100, "actual": None}
    cfg = write_config(tmp_path, {"provider": "uk", "base_url": providers.url + "/uk",
                                  "refresh_s": 1, "price_per_kwh": 0.25, "currency": "EUR"})
    d = start_energyd(tmp_path / "sys", "--config", str(cfg))
    wait_carbon(d, lambda c: c["status"] == "ok")
    # Interval ends half a sample interval before the newest sample, with several samples on
    # each side of every jump: there the host counter is flat, so interpolation is exact even
    # though the API prints times to the microsecond.
    t0 = d.wait_ticks(3)["time"] - 0.05
    e1_uj, e2_uj = 7_200_000, 3_600_000  # 7.2 J at 100 g/kWh, then 3.6 J at 300 g/kWh
    fake.advance("package-0", e1_uj)
    d.wait_ticks(5)
    providers.uk_intensity = {"forecast": 300, "actual": None}
    c = wait_carbon(d, lambda c: len(c["series"]) == 2)
    ts = c["series"][1]["t"]  # the sample at which energyd learned the new value
    assert c["series"][0]["t"] is None  # the first value also covers the time before it
    assert [s["intensity_g_per_kwh"] for s in c["series"]] == [100, 300]
    d.wait_ticks(5)
    fake.advance("package-0", e2_uj)
    t1 = d.wait_ticks(5)["time"] - 0.05
    assert t0 < ts < t1

    e = d.get(f"/api/v1/energy?from={t0}&to={t1}")
    assert near(e["host"]["joules"], 10.8)
    expect_g = (7.2 * 100 + 3.6 * 300) / J_PER_KWH  # 5e-4 g, not 10.8 J x 300 = 9e-4 g
    assert near(e["host"]["emissions_g"], expect_g)
    assert near(e["host"]["cost"], 10.8 * 0.25 / J_PER_KWH)
    assert e["host"]["currency"] == "EUR"
    # The piece before the change alone.
    before = d.get(f"/api/v1/energy?from={t0}&to={ts - 0.05}")
    assert near(before["host"]["joules"], 7.2)
    assert near(before["host"]["emissions_g"], 7.2 * 100 / J_PER_KWH)
    # Since start (the ledger behind `now`): no other energy was used, so the same grams.
    now = d.get("/api/v1/now")
    assert near(now["host"]["joules"], 10.8)
    assert near(now["host"]["emissions_g"], expect_g)
    assert near(now["host"]["cost"], 10.8 * 0.25 / J_PER_KWH)
    assert now["carbon"]["provider"] == "uk" and now["carbon"]["intensity_g_per_kwh"] == 300
    fake.close()


def test_static_table_and_constant_with_cost(tmp_path, start_energyd):
    fake = powercap.server(tmp_path / "sys").start()
    d = start_energyd(tmp_path / "sys")  # no [carbon]: static, world average
    c = d.get("/api/v1/carbon")
    assert c["provider"] == "static" and c["intensity_g_per_kwh"] == 485.99
    assert "Ember" in c["source"] and "World (2022)" in c["source"]
    now = d.wait_ticks(3)
    # Same snapshot: grams = joules x 485.99 / 3.6e6, to rounding.
    assert near(now["host"]["emissions_g"], now["host"]["joules"] * 485.99 / J_PER_KWH)
    assert now["host"]["cost"] is None and now["host"]["currency"] is None
    metrics = d.get("/metrics")
    assert 'energy_carbon_intensity_g_per_kwh{provider="static",zone=""} 485.99' in metrics
    assert 'energy_host_emissions_grams_total{provider="static",zone=""}' in metrics

    cfg = write_config(tmp_path, {"provider": "static", "zone": "FR"}, "fr.conf")
    d2 = start_energyd(tmp_path / "sys", "--config", str(cfg))
    assert d2.get("/api/v1/carbon")["intensity_g_per_kwh"] == 56.04

    cfg = write_config(tmp_path, {"provider": "constant", "intensity_g_per_kwh": 250,
                                  "price_per_kwh": 0.30, "currency": "EUR"}, "const.conf")
    d3 = start_energyd(tmp_path / "sys", "--config", str(cfg))
    t0 = d3.wait_ticks(3)["time"]
    t1 = d3.wait_ticks(10)["time"]
    e = d3.get(f"/api/v1/energy?from={t0}&to={t1}")
    j = e["host"]["joules"]
    # The emulated server draws 80 W (40 + 30 W packages, 6 + 4 W dram): joules within
    # 80 W x 50 ms per end of 80 x (t1 - t0) (docs/testing.md: samples are stamped after the
    # reads, which a loaded machine delays).
    assert abs(j - 80 * (t1 - t0)) <= 80 * 0.1
    assert near(e["host"]["emissions_g"], j * 250 / J_PER_KWH)
    assert near(e["host"]["cost"], j * 0.30 / J_PER_KWH)
    fake.close()


# -- a provider that misbehaves -----------------------------------------------------------------


def test_timeout_and_garbage_leave_sampling_untouched(tmp_path, start_energyd, providers):
    fake = powercap.server(tmp_path / "sys").start()
    cfg = write_config(tmp_path, {"provider": "uk", "base_url": providers.url + "/uk",
                                  "refresh_s": 1, "timeout_s": 0.5})
    d = start_energyd(tmp_path / "sys", "--config", str(cfg))
    good = wait_carbon(d, lambda c: c["status"] == "ok")
    fetches = providers.count("/uk/intensity")

    providers.mode = "slow"  # answers after 3 s; energyd gives up after 0.5 s
    providers.delay_s = 3.0
    tick0, t_start = d.get("/api/v1/now")["tick"], time.time()
    c = wait_carbon(d, lambda c: c["status"] == "error")
    assert "no answer within 0.5 s" in c["error"], c
    assert providers.count("/uk/intensity") > fetches
    time.sleep(max(0.0, 1.5 - (time.time() - t_start)))
    tick1, elapsed = d.get("/api/v1/now")["tick"], time.time() - t_start
    # At 0.1 s per tick, elapsed / 0.1 ticks are due. The sampler has its own thread; under
    # ASan on a loaded CI machine ticks can be late, so ask for half of them: a sampler
    # blocked by the 0.5 s fetches would fall far below.
    assert tick1 - tick0 >= 0.5 * elapsed / 0.1, (tick1 - tick0, elapsed)
    assert c["intensity_g_per_kwh"] == good["intensity_g_per_kwh"]  # the last good value

    for mode, words in (("garbage", "not JSON"), ("truncated", "not JSON"),
                        ("500", "HTTP 500")):
        providers.mode = mode
        c = wait_carbon(d, lambda c, w=words: c["error"] is not None and w in c["error"])
        assert c["status"] == "error" and c["intensity_g_per_kwh"] == good["intensity_g_per_kwh"]
        d.wait_ticks(2)
    status = subprocess.run([str(ENERGY), "--socket", d.socket, "status"], capture_output=True,
                            text=True, timeout=20)
    assert status.returncode == 0, status.stderr
    assert "Carbon provider error: carbonintensity.org.uk /intensity: HTTP 500" in status.stdout

    providers.mode = "ok"  # recovers
    c = wait_carbon(d, lambda c: c["status"] == "ok")
    assert c["error"] is None
    fake.close()


def test_entsoe_garbage_and_truncated_xml(tmp_path, start_energyd, providers):
    providers.entsoe_series = ENTSOE_SERIES
    providers.mode = "truncated"
    token = tmp_path / "entsoe.token"
    token.write_text(ENTSOE_TOKEN)
    cfg = write_config(tmp_path, {"provider": "entsoe", "zone": ZONE_DE, "token_file": token,
                                  "base_url": providers.url + "/entsoe/api", "refresh_s": 1})
    d = start_energyd(None, "--config", str(cfg))
    c = wait_carbon(d, lambda c: c["status"] == "error")
    assert "not well-formed XML" in c["error"] and c["intensity_g_per_kwh"] is None
    providers.mode = "garbage"
    c = wait_carbon(d, lambda c: "not well-formed XML" in (c["error"] or "")
                    and providers.count("/entsoe") >= 2)
    providers.mode = "ok"
    c = wait_carbon(d, lambda c: c["status"] == "ok")
    assert near(c["intensity_g_per_kwh"], 676100 / 2950)


# -- config and CLI -----------------------------------------------------------------------------


@pytest.mark.parametrize("text, words", [
    ("[carbon]\nprovider = static\nflavour = green\n",
     ":3: unknown key 'flavour' in [carbon]"),
    ("[carbon]\nprovider = coal\n", ":2: provider: 'coal' is not one of"),
    ("[carbon]\nrefresh_s = -5\n", ":2: refresh_s"),
    ("[carbon]\nbase_url = ftp://x\n", ":2: base_url"),
    ("[carbon]\nprovider = entsoe\nzone = 10YFR-RTE------C\n", "needs zone"),
    ("[carbon]\nzone = Atlantis\n", "not in the static table"),
    ("[carbon]\nprovider = electricitymaps\nzone = DE\ntoken_file = /nonexistent/t\n",
     "cannot read token_file /nonexistent/t"),
    ("[carbon]\nprice_per_kwh = 0.2\n", "needs currency"),
    ("[carbonn]\nzone = DE\n", ":2: unknown section [carbonn]"),
])
def test_bad_carbon_config_is_refused(tmp_path, text, words):
    cfg = tmp_path / "bad.conf"
    cfg.write_text(text)
    r = subprocess.run([str(ENERGYD), "--config", str(cfg), "--listen",
                        f"unix:{tmp_path}/s.sock", "--state-dir", str(tmp_path / "st")],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, r.stderr
    assert words in r.stderr, r.stderr


def test_cli_status_and_run_show_grams_and_cost(tmp_path, start_energyd):
    fake = powercap.server(tmp_path / "sys").start()
    cfg = write_config(tmp_path, {"provider": "constant", "intensity_g_per_kwh": 400,
                                  "price_per_kwh": 0.20, "currency": "EUR"})
    d = start_energyd(tmp_path / "sys", "--config", str(cfg))
    d.wait_ticks(3)
    st = subprocess.run([str(ENERGY), "--socket", d.socket, "status"], capture_output=True,
                        text=True, timeout=20)
    assert st.returncode == 0, st.stderr
    assert "Emissions:" in st.stdout and "CO₂e since energyd started" in st.stdout
    assert "constant: now 400.0 g/kWh" in st.stdout and "EUR since energyd started" in st.stdout

    r = subprocess.run([str(ENERGY), "--socket", d.socket, "run", "--json", "--", "sleep",
                        "0.5"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    host = out["runs"][0]["host"]
    j = host["joules"]
    assert near(host["emissions_g"], j * 400 / J_PER_KWH)
    assert near(host["cost"], j * 0.20 / J_PER_KWH)
    assert host["currency"] == "EUR" and out["carbon"]["provider"] == "constant"
    assert near(out["summary"]["host"]["emissions_g"]["mean"], j * 400 / J_PER_KWH)
    r = subprocess.run([str(ENERGY), "--socket", d.socket, "run", "--", "true"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    text = r.stdout + r.stderr
    assert "host emissions" in text and "CO₂e during the command" in text
    assert "constant, 400.0 g/kWh now" in text and "host cost" in text and "EUR" in text
    # Without energyd: unknown, not zero.
    r = subprocess.run([str(ENERGY), "run", "--in-process", "--json", "--sysfs-root",
                        str(tmp_path / "sys"), "--", "true"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["runs"][0]["host"]["emissions_g"] is None and out["carbon"] is None
    fake.close()


def test_stop_while_a_provider_hangs(tmp_path, start_energyd, providers):
    """SIGTERM during a fetch that would take 10 s: energyd stops at once (the transfer is
    aborted) and cleanly (the fixture fails a test whose energyd exits non-zero)."""
    providers.mode = "slow"
    providers.delay_s = 8.0
    cfg = write_config(tmp_path, {"provider": "uk", "base_url": providers.url + "/uk",
                                  "timeout_s": 10})
    d = start_energyd(None, "--config", str(cfg))
    deadline = time.time() + 5
    while providers.count("/uk/intensity") == 0 and time.time() < deadline:
        time.sleep(0.02)
    assert providers.count("/uk/intensity") == 1
    assert d.get("/api/v1/carbon")["status"] == "pending"
    t = time.time()
    assert d.stop() == 0
    assert time.time() - t < 3.0


def test_longterm_records_emissions_and_cost_per_step(tmp_path, start_energyd, providers):
    """The long-term record keeps emissions and cost per second, from the intensity and price
    that held at each moment, rolled up into the tiers with the energy. Energy is added in exact
    amounts on both sides of an intensity change, as in the step-wise test above."""
    import os
    import shutil
    import tempfile

    store = tempfile.mkdtemp(prefix="energyd-carbon-store-")
    os.chmod(store, 0o777)  # energyd drops root to nobody
    try:
        fake = powercap.server(tmp_path / "sys")  # not started: counters move only by advance
        providers.uk_intensity = {"forecast": 100, "actual": None}
        cfg = write_config(tmp_path, {"provider": "uk", "base_url": providers.url + "/uk",
                                      "refresh_s": 1, "price_per_kwh": 0.25,
                                      "currency": "EUR"})
        d = start_energyd(tmp_path / "sys", "--config", str(cfg), "--store",
                          f"{store}/energy.db", "--store-batch", "0.5")
        wait_carbon(d, lambda c: c["status"] == "ok")
        t0 = d.wait_ticks(3)["time"]
        e1, e2 = 72.0, 36.0  # joules at 100 g/kWh, then at 300 g/kWh
        fake.advance("package-0", round(e1 * 1e6))
        d.wait_ticks(5)
        providers.uk_intensity = {"forecast": 300, "actual": None}
        wait_carbon(d, lambda c: len(c["series"]) == 2)
        d.wait_ticks(5)
        fake.advance("package-0", round(e2 * 1e6))
        t1 = d.wait_ticks(5)["time"]
        deadline = time.time() + 20
        while (d.get("/api/v1/info")["store"]["recorded_to"] or 0) < t1 + 1:
            assert time.time() < deadline, d.get("/api/v1/info")["store"]
            time.sleep(0.1)

        frm, to = int(t0) - 1, int(t1) + 2
        sec = d.get(f"/api/v1/longterm?from={frm}&to={to}&tier=1s")
        host = sec["host"]
        joules = [j for j in host["joules"] if j is not None]
        grams = [g for g in host["emissions_g"] if g is not None]
        assert abs(sum(joules) - (e1 + e2)) < 1e-5
        # Each piece of a second is rounded to a microgram (and a nano-euro) when recorded;
        # a second is made of at most one piece per 0.5 s batch plus one: 4 pieces.
        rows = sum(1 for g in host["emissions_g"] if g is not None)
        expect_g = (e1 * 100 + e2 * 300) / J_PER_KWH  # 2 mg + 3 mg
        assert abs(sum(grams) - expect_g) <= rows * 4 * 0.5e-6
        costs = [c for c in host["cost"] if c is not None]
        assert abs(sum(costs) - (e1 + e2) * 0.25 / J_PER_KWH) <= rows * 4 * 0.5e-9
        assert host["currency"] == "EUR"
        # Intensity per step: the energy-weighted mean of what held in that second.
        # Its error is the rounding of the grams (at most 4 pieces x 0.5 ug) over the
        # second's energy: 2e-6 g x 3.6e6 / joules.
        for j, i in zip(host["joules"], sec["intensity_g_per_kwh"]):
            if j:  # energy was used in this second
                slack = 2e-6 * J_PER_KWH / j
                assert i is not None and 100 - slack <= i <= 300 + slack, (j, i)
        assert any(i is not None and abs(i - 100) < 0.5 for i in sec["intensity_g_per_kwh"])
        assert any(i is not None and abs(i - 300) < 0.5 for i in sec["intensity_g_per_kwh"])
        assert "carbon:emissions_ug" not in sec["channels"]  # not an energy channel
        # The generation mix per step (the fixture's: see test_uk_intensity_and_mix), weighted
        # by energy; each group's microjoules are rounded per piece (4 x 0.5 uJ at most).
        mix = sec["mix"]
        assert set(mix) == {"renewable", "fossil", "nuclear", "storage", "other"}
        expect_mix = {"renewable": 0.41, "fossil": 0.36, "nuclear": 0.14, "storage": 0.0,
                      "other": 0.09}
        used = [k for k, j in enumerate(host["joules"]) if j and j >= 1.0]
        assert used
        for k in used:
            for group, share in expect_mix.items():
                assert abs(mix[group][k] - share) <= 5 * 2e-6 / host["joules"][k], (group, k)
        assert all(mix["fossil"][k] is None for k, j in enumerate(host["joules"]) if j is None)
        # The minute tier holds the same grams, to the microgram.
        minute = d.get(f"/api/v1/longterm?from={frm - frm % 60}&to={to + 60 - to % 60}"
                       "&tier=1m")
        assert abs(sum(g for g in minute["host"]["emissions_g"] if g is not None)
                   - sum(grams)) < 1e-9
        fake.close()
    finally:
        shutil.rmtree(store, ignore_errors=True)
