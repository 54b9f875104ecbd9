"""Emissions where they were caused: the intensity step at the provider's own data time, and a
column for them in `energy run --csv`. Against the emulated providers
(tests/emulators/carbon_providers.py); counters move only by exact steps, so every figure is
computed by hand from what the emulators were told."""

import csv
import io
import math
import os
import subprocess
import time
from datetime import datetime, timezone

import pytest

from conftest import ENERGY
from emulators import powercap
from test_carbon import J_PER_KWH, providers, wait_carbon, write_config  # noqa: F401 (fixture)


def rte(taux_co2, when):
    return {"perimetre": "France", "nature": "Données temps réel", "taux_co2": taux_co2,
            "date_heure": when.strftime("%Y-%m-%dT%H:%M:%S+00:00"), "consommation": 50000,
            "nucleaire": 40000, "gaz": 3000, "eolien": 5000, "hydraulique": 2000}


def test_intensity_step_at_the_providers_data_time(tmp_path, start_energyd, providers):
    fake = powercap.server(tmp_path / "sys")  # not started: counters move only by advance
    providers.rte_record = rte(23, datetime(2026, 11, 22, 0, 30, tzinfo=timezone.utc))
    cfg = write_config(tmp_path, {"provider": "rte", "base_url": providers.url + "/rte",
                                  "refresh_s": 1})
    d = start_energyd(tmp_path / "sys", "--config", str(cfg))
    wait_carbon(d, lambda c: c["status"] == "ok" and c["intensity_g_per_kwh"] == 23)
    e1, e2 = 36.0, 72.0
    fake.advance("package-0", round(e1 * 1e6))
    now = d.wait_ticks(3)["time"]
    # The provider's next value holds from data time D (whole seconds, as RTE gives them),
    # after e1 was used and before e2 is; energyd learns it only after e2.
    data_t = math.ceil(now) + 1
    while d.get("/api/v1/now")["time"] < data_t + 1.0:
        time.sleep(0.05)
    fake.advance("package-0", round(e2 * 1e6))
    d.wait_ticks(3)
    time.sleep(1.5)  # a refresh or more at the old value: e2 is booked at 23 g/kWh first
    providers.rte_record = rte(100, datetime.fromtimestamp(data_t, timezone.utc))
    c = wait_carbon(d, lambda c: c["intensity_g_per_kwh"] == 100)
    assert c["updated_at"] == data_t
    assert c["series"][-1]["t"] == data_t  # the step is at the data time, not when learned
    host = d.wait_ticks(2)["host"]
    assert abs(host["joules"] - (e1 + e2)) < 1e-6
    # e1 at 23 g/kWh, e2 (used after D) at 100 g/kWh; the old rule gave (e1 + e2) x 23.
    want = (e1 * 23 + e2 * 100) / J_PER_KWH
    assert abs(host["emissions_g"] - want) <= 1e-9, (host["emissions_g"], want)
    # An interval query cuts at the same step.
    e = d.get(f"/api/v1/energy?from={data_t - 0.5:.6f}&to={data_t + 0.5:.6f}")["host"]
    assert abs(e["emissions_g"] - 0.0) < 1e-12 and e["joules"] == pytest.approx(0, abs=1e-9)
    t_end = d.get("/api/v1/now")["time"]
    e = d.get(f"/api/v1/energy?from={data_t:.6f}&to={t_end:.6f}")["host"]
    assert abs(e["joules"] - e2) < 1e-6
    assert abs(e["emissions_g"] - e2 * 100 / J_PER_KWH) <= 1e-9
    fake.close()


def test_run_csv_has_an_emissions_column(tmp_path, start_energyd):
    fake = powercap.server(tmp_path / "sys").start()
    cfg = write_config(tmp_path, {"provider": "constant", "intensity_g_per_kwh": 400})
    d = start_energyd(tmp_path / "sys", "--config", str(cfg))
    d.wait_ticks(3)
    out = tmp_path / "runs.csv"
    r = subprocess.run([str(ENERGY), "--socket", d.socket, "run", "-r", "2", "--csv", "-o",
                        str(out), "--", "sleep", "0.2"], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 2 and list(rows[0])[-1] == "host_emissions_g"
    for row in rows:
        j = float(row["host_joules"])
        assert j > 0
        assert abs(float(row["host_emissions_g"]) - j * 400 / J_PER_KWH) <= 1e-6 * j
    fake.close()
